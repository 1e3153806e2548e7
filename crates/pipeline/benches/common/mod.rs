//! Tables and frames shaped like /work/shared/bench/flows, shared by the benches: A (one
//! rule), B (classifier by in_port+dl_src, then switch by dl_dst, plus the metadata DNAT rule)
//! and C (distinct priorities on exact nw_dst plus nw_src prefixes).
#![allow(dead_code)]

use std::time::Duration;

use packet::{Field, VecBuf};
use pipeline::{
    Action, Emit, FlowModReq, FlowTables, Instructions, Match, MatchField, PipelineConfig,
    PortInfo, Sink,
};

pub struct Count(pub u64);

impl Sink<VecBuf> for Count {
    #[inline]
    fn output(&mut self, port: u32, _q: Option<u32>, _pkt: &VecBuf, _e: Emit) {
        self.0 += u64::from(port);
    }
    fn clone_packet(&mut self, pkt: &VecBuf) -> Option<VecBuf> {
        Some(pkt.clone())
    }
}

pub fn mac(i: u64) -> u64 {
    0x0200_0000_0000 | (i & 0xff_ffff)
}

pub fn ip(i: u64) -> u32 {
    0x0a00_0000 + i as u32 + 1
}

pub fn frame(src: u64, dst: u64, sip: u32, dip: u32, sport: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst.to_be_bytes()[2..]);
    f.extend_from_slice(&src.to_be_bytes()[2..]);
    f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&sip.to_be_bytes());
    f.extend_from_slice(&dip.to_be_bytes());
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&80u16.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0x20, 0, 0, 0, 0, 0]);
    f.resize(60, 0);
    f
}

pub fn tables(n_tables: u8) -> FlowTables {
    let mut ft = FlowTables::new(PipelineConfig {
        n_tables,
        ..Default::default()
    });
    for p in 1..=3 {
        ft.set_port(PortInfo::new(p));
    }
    ft
}

pub fn add(ft: &mut FlowTables, t: u8, prio: u16, m: Match, i: Instructions) {
    ft.apply_flow_mod(FlowModReq::add(t, prio, m, i), Duration::ZERO)
        .unwrap();
}

pub fn shape_a() -> FlowTables {
    let mut ft = tables(1);
    add(
        &mut ft,
        0,
        100,
        Match::exact(&[(Field::InPort, 1)]),
        Instructions::apply(vec![Action::output(2)]),
    );
    ft.publish();
    ft
}

pub fn shape_b(n: u64) -> FlowTables {
    shape_b_publishing(n, false)
}

/// Shape B; with `each`, published after every flow-mod, as a barrier after each
/// flow-mod of `ovs-ofctl add-flows` does.
pub fn shape_b_publishing(n: u64, each: bool) -> FlowTables {
    let mut ft = tables(2);
    let dnat = Match::exact(&[
        (Field::EthType, 0x0800),
        (Field::IpProto, 6),
        (Field::Ipv4Dst, 0xa9fe_a9fe),
        (Field::TcpDst, 80),
    ]);
    add(
        &mut ft,
        0,
        1000,
        dnat,
        Instructions::apply(vec![
            Action::SetField {
                field: Field::EthDst,
                value: 0x0200_00fe_0001,
            },
            Action::SetField {
                field: Field::Ipv4Dst,
                value: 0x0afe_0001,
            },
            Action::SetField {
                field: Field::TcpDst,
                value: 8775,
            },
            Action::output(2),
        ]),
    );
    for i in 0..n {
        let cls = Match::exact(&[(Field::InPort, 1), (Field::EthSrc, mac(i).into())]);
        add(
            &mut ft,
            0,
            100,
            cls,
            Instructions {
                goto: Some(1),
                ..Default::default()
            },
        );
        if each {
            ft.publish();
        }
        let sw = Match::exact(&[(Field::EthDst, mac(i).into())]);
        add(
            &mut ft,
            1,
            100,
            sw,
            Instructions::apply(vec![Action::output(2)]),
        );
        if each {
            ft.publish();
        }
    }
    add(&mut ft, 0, 0, Match::any(), Instructions::default());
    add(&mut ft, 1, 0, Match::any(), Instructions::default());
    ft.publish();
    ft
}

pub fn shape_c(n: u64) -> FlowTables {
    let mut ft = tables(1);
    for i in 0..n {
        let m = Match::exact(&[(Field::EthType, 0x0800), (Field::Ipv4Dst, ip(i).into())]);
        add(
            &mut ft,
            0,
            (100 + i).min(65000) as u16,
            m,
            Instructions::apply(vec![Action::output(2)]),
        );
    }
    let prefixes: [(u32, u32, u16, bool); 5] = [
        (0xac10_0000, 12, 40000, false),
        (0xc0a8_0000, 16, 39000, false),
        (0x0a00_0400, 22, 38000, true),
        (0x0a00_2000, 20, 37000, true),
        (0x0a00_0000, 8, 10, true),
    ];
    for (v, plen, prio, out) in prefixes {
        let mask = u128::from(u32::MAX << (32 - plen));
        let m = Match::from_fields(&[
            MatchField {
                field: Field::EthType,
                value: 0x0800,
                mask: None,
            },
            MatchField {
                field: Field::Ipv4Src,
                value: v.into(),
                mask: Some(mask),
            },
        ]);
        let acts = if out { vec![Action::output(2)] } else { vec![] };
        add(&mut ft, 0, prio, m, Instructions::apply(acts));
    }
    add(&mut ft, 0, 0, Match::any(), Instructions::default());
    ft.publish();
    ft
}

/// A handful of ACL rules on different fields and prefix lengths (one table, every rule a
/// different mask), allow by default: the case where OVS's megaflow masks explode, since
/// every random header unwildcards a different set of bits. perf/flows/ACL.flows is the
/// same table in ovs-ofctl syntax.
pub fn shape_acl() -> FlowTables {
    let mut ft = tables(1);
    let f = |field, value: u128, mask: Option<u128>| MatchField { field, value, mask };
    let ip4 = f(Field::EthType, 0x0800, None);
    let tcp = f(Field::IpProto, 6, None);
    let udp = f(Field::IpProto, 17, None);
    let rules: Vec<(u16, Vec<MatchField>, Vec<Action>)> = vec![
        // tcp from 10/8 to port 22: drop.
        (
            500,
            vec![
                ip4,
                tcp,
                f(Field::Ipv4Src, 0x0a00_0000, Some(0xff00_0000)),
                f(Field::TcpDst, 22, None),
            ],
            vec![],
        ),
        // anything to 192.168/16: drop.
        (
            400,
            vec![ip4, f(Field::Ipv4Dst, 0xc0a8_0000, Some(0xffff_0000))],
            vec![],
        ),
        // DNS from 172.16/12 to port 3.
        (
            300,
            vec![
                ip4,
                udp,
                f(Field::Ipv4Src, 0xac10_0000, Some(0xfff0_0000)),
                f(Field::UdpDst, 53, None),
            ],
            vec![Action::output(3)],
        ),
        // 10.10.0.0/20 to 10.20.0.0/28: drop.
        (
            200,
            vec![
                ip4,
                f(Field::Ipv4Src, 0x0a0a_0000, Some(0xffff_f000)),
                f(Field::Ipv4Dst, 0x0a14_0000, Some(0xffff_fff0)),
            ],
            vec![],
        ),
        // Expedited forwarding to port 3.
        (
            150,
            vec![ip4, f(Field::IpDscp, 46, None)],
            vec![Action::output(3)],
        ),
        // tcp to 10.0.0.0/24 port 443 to port 3.
        (
            120,
            vec![
                ip4,
                tcp,
                f(Field::Ipv4Dst, 0x0a00_0000, Some(0xffff_ff00)),
                f(Field::TcpDst, 443, None),
            ],
            vec![Action::output(3)],
        ),
        // Locally administered sources of one OUI: drop.
        (
            100,
            vec![f(Field::EthSrc, 0x0600_0000_0000, Some(0xffff_ff00_0000))],
            vec![],
        ),
        // Allow the rest.
        (0, vec![], vec![Action::output(2)]),
    ];
    for (prio, m, acts) in rules {
        add(
            &mut ft,
            0,
            prio,
            Match::from_fields(&m),
            Instructions::apply(acts),
        );
    }
    ft.publish();
    ft
}

/// A small deterministic generator (xorshift64*) for random headers.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Random headers for the ACL shape: addresses drawn half from the ACL's ranges, half
/// from anywhere; TCP or UDP; random ports (a small set of well-known destination ports
/// among them), DSCP and source MAC.
pub fn acl_frame(rng: &mut Rng) -> Vec<u8> {
    let ranges: [(u32, u32); 5] = [
        (0x0a00_0000, 0xff00_0000),
        (0xc0a8_0000, 0xffff_0000),
        (0xac10_0000, 0xfff0_0000),
        (0x0a0a_0000, 0xffff_f000),
        (0x0a14_0000, 0xffff_fff0),
    ];
    let addr = |rng: &mut Rng| {
        let r = rng.next();
        let a = (r >> 32) as u32;
        if r & 1 == 0 {
            let (v, m) = ranges[(r >> 1) as usize % ranges.len()];
            v | (a & !m)
        } else {
            a
        }
    };
    let sip = addr(rng);
    let dip = addr(rng);
    let r = rng.next();
    let udp = r & 1 == 1;
    let dport = [22u16, 53, 80, 443][(r >> 1) as usize % 4];
    let dport = if r & 8 == 0 { dport } else { (r >> 16) as u16 };
    let sport = (r >> 32) as u16;
    let dscp = [0u8, 46, 10, (r >> 58) as u8 & 0x3f][(r >> 4) as usize % 4];
    let src = 0x0200_0000_0000 | (r & 0x0400_00ff_ffff);
    let mut f = frame(src, mac(1), sip, dip, sport);
    f[23] = if udp { 17 } else { 6 };
    f[15] = dscp << 2;
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    f
}

/// The connection-tracking firewall of `perf/flows/CT.flows`: table 0 sends IP through
/// the tracker (zone 1) to table 1, which commits new connections and forwards them,
/// forwards established ones and drops the rest.
pub fn shape_ct() -> FlowTables {
    use pipeline::flow::{CtAction, CtZone};
    let mut ft = tables(2);
    let ct = |commit, table| {
        Action::Ct(std::sync::Arc::new(CtAction::new(
            commit,
            false,
            CtZone::Imm(1),
            table,
            0,
            Vec::new(),
        )))
    };
    let ip4 = MatchField {
        field: Field::EthType,
        value: 0x0800,
        mask: None,
    };
    let state = |value, mask| MatchField {
        field: Field::CtState,
        value,
        mask: Some(mask),
    };
    add(
        &mut ft,
        0,
        100,
        Match::from_fields(&[ip4]),
        Instructions::apply(vec![ct(false, Some(1))]),
    );
    // +trk+new-est-inv: commit and forward.
    add(
        &mut ft,
        1,
        200,
        Match::from_fields(&[ip4, state(0x21, 0x33)]),
        Instructions::apply(vec![ct(true, None), Action::output(2)]),
    );
    // +trk+est-inv: forward.
    add(
        &mut ft,
        1,
        100,
        Match::from_fields(&[ip4, state(0x22, 0x32)]),
        Instructions::apply(vec![Action::output(2)]),
    );
    add(&mut ft, 1, 0, Match::any(), Instructions::apply(vec![]));
    ft.publish();
    ft
}

/// The ones' complement sum of `b` (16-bit big-endian words) added to `sum`.
fn csum_add(mut sum: u32, b: &[u8]) -> u32 {
    for c in b.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    sum
}

fn csum_fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A 60-byte frame carrying IPv4 with `l4` (a UDP or TCP header and payload) of
/// protocol `proto`, every checksum right (the tracker verifies them, as Linux does).
pub fn ip_frame(sip: u32, dip: u32, proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&mac(2).to_be_bytes()[2..]);
    f.extend_from_slice(&mac(1).to_be_bytes()[2..]);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + l4.len()) as u16;
    let mut ip = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0,
        0,
        64,
        proto,
        0,
        0,
    ];
    ip.extend_from_slice(&sip.to_be_bytes());
    ip.extend_from_slice(&dip.to_be_bytes());
    let c = csum_fold(csum_add(0, &ip));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut l4 = l4.to_vec();
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&sip.to_be_bytes());
    pseudo.extend_from_slice(&dip.to_be_bytes());
    pseudo.extend_from_slice(&[0, proto]);
    pseudo.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    let at = if proto == 6 { 16 } else { 6 };
    let c = csum_fold(csum_add(csum_add(0, &pseudo), &l4));
    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&l4);
    f.resize(60, 0);
    f
}

/// A UDP datagram with 18 bytes of payload (a 60-byte frame).
pub fn udp_frame(sip: u32, sport: u16, dip: u32, dport: u16) -> Vec<u8> {
    let mut l4 = Vec::new();
    l4.extend_from_slice(&sport.to_be_bytes());
    l4.extend_from_slice(&dport.to_be_bytes());
    l4.extend_from_slice(&26u16.to_be_bytes());
    l4.extend_from_slice(&[0, 0]);
    l4.extend_from_slice(&[0x5a; 18]);
    ip_frame(sip, dip, 17, &l4)
}

/// A TCP segment without payload.
pub fn tcp_frame(
    sip: u32,
    sport: u16,
    dip: u32,
    dport: u16,
    flags: u8,
    seq: u32,
    ack: u32,
) -> Vec<u8> {
    let mut l4 = Vec::new();
    l4.extend_from_slice(&sport.to_be_bytes());
    l4.extend_from_slice(&dport.to_be_bytes());
    l4.extend_from_slice(&seq.to_be_bytes());
    l4.extend_from_slice(&ack.to_be_bytes());
    l4.extend_from_slice(&[0x50, flags, 0xfa, 0xf0, 0, 0, 0, 0]);
    ip_frame(sip, dip, 6, &l4)
}

/// The server every conntrack benchmark connection goes to.
pub const CT_SERVER: u32 = 0x0ac8_0001;

/// Traffic of `conns` connections from client k (10.0.0.0 + k + 1, port 1024 + k % 64)
/// to [`CT_SERVER`], as `perf/gen-ct-pcap.py` writes it: `CTc` one UDP datagram per
/// connection one way (each is `+new`: no reply is ever seen, and the commit finds the
/// connection), `CTe` a datagram and its reply per connection (all `+est` once seen),
/// `CTr` a SYN and the server's RST+ACK per connection (refused: every pass opens each
/// connection anew, so half the packets are new connections).
pub fn ct_frames(kind: &str, conns: u64) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for k in 0..conns {
        let c = ip(k);
        let sport = 1024 + (k % 64) as u16;
        match kind {
            "CTc" => out.push(udp_frame(c, sport, CT_SERVER, 53)),
            "CTe" => {
                out.push(udp_frame(c, sport, CT_SERVER, 53));
                out.push(udp_frame(CT_SERVER, 53, c, sport));
            }
            _ => {
                let isn = 1000 + k as u32;
                out.push(tcp_frame(c, sport, CT_SERVER, 80, 0x02, isn, 0));
                out.push(tcp_frame(CT_SERVER, 80, c, sport, 0x14, 0, isn + 1));
            }
        }
    }
    out
}

/// Flow k: source instance k mod m, destination the next one, source port 1024 + k / m
/// (gen-pcap.py's flows).
/// `two_ports`: instance s sits on port 1 + s % 2 (for the learning switch), otherwise all
/// come in on port 1. `md_every`: every md_every-th flow (k % md_every == md_every - 1)
/// goes to the metadata service 169.254.169.254:80 instead (gen-pcap.py --metadata-every).
pub fn frames(instances: u64, flows: u64, two_ports: bool, md_every: u64) -> Vec<(u32, VecBuf)> {
    (0..flows)
        .map(|k| {
            let s = k % instances;
            let d = (s + 1) % instances;
            let sport = (1024 + k / instances) as u16;
            let f = if md_every != 0 && k % md_every == md_every - 1 {
                let mut f = frame(mac(s), mac(d), ip(s), 0xa9fe_a9fe, sport);
                f[36..38].copy_from_slice(&80u16.to_be_bytes());
                f
            } else {
                frame(mac(s), mac(d), ip(s), ip(d), sport)
            };
            let port = if two_ports { 1 + (s % 2) as u32 } else { 1 };
            (port, VecBuf::new(&f))
        })
        .collect()
}
