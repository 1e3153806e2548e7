//! Test support: a builder of valid frames with correct checksums, a from-scratch checksum
//! verifier, and proptest strategies.

#![allow(dead_code)]

use packet::key::Layers;
use packet::wire::checksum::{self, fold, pseudo_v4, pseudo_v6, sum};
use packet::{extract, FlowKey};
use proptest::prelude::*;

pub fn hex(s: &str) -> Vec<u8> {
    let s = s.trim();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[derive(Debug, Clone)]
pub enum L4 {
    Tcp {
        sport: u16,
        dport: u16,
        payload: Vec<u8>,
    },
    Udp {
        sport: u16,
        dport: u16,
        zero_csum: bool,
        payload: Vec<u8>,
    },
    Sctp {
        sport: u16,
        dport: u16,
        payload: Vec<u8>,
    },
    Icmp {
        msg_type: u8,
        code: u8,
        payload: Vec<u8>,
    },
    Raw {
        proto: u8,
        payload: Vec<u8>,
    },
}

#[derive(Debug, Clone)]
pub enum Ipv6L4 {
    Plain(L4),
    Nd {
        solicit: bool,
        target: [u8; 16],
        ll: Option<[u8; 6]>,
        extra_opt: bool,
    },
}

#[derive(Debug, Clone, Copy)]
pub enum Frag {
    None,
    First,
    Later,
}

#[derive(Debug, Clone)]
pub enum L3 {
    Ipv4 {
        src: [u8; 4],
        dst: [u8; 4],
        ttl: u8,
        tos: u8,
        opt_words: u8,
        frag: Frag,
        l4: L4,
    },
    Ipv6 {
        src: [u8; 16],
        dst: [u8; 16],
        hlim: u8,
        tc: u8,
        flabel: u32,
        hbh: bool,
        frag: Frag,
        l4: Ipv6L4,
    },
    Arp {
        op: u16,
        sha: [u8; 6],
        spa: [u8; 4],
        tha: [u8; 6],
        tpa: [u8; 4],
    },
    Mpls {
        labels: Vec<(u32, u8, u8)>,
        inner_ttl: u8,
    },
    Pbb {
        isid: u32,
        pcp: u8,
        inner: Box<Frame>,
    },
    Other {
        ethertype: u16,
        payload: Vec<u8>,
    },
}

#[derive(Debug, Clone)]
pub struct Frame {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    pub tags: Vec<(u16, u16)>,
    pub l3: L3,
    pub pad: usize,
}

fn l4_bytes(l4: &L4) -> (u8, Vec<u8>, usize) {
    // (protocol, bytes with zero checksum, checksum offset)
    match l4 {
        L4::Tcp {
            sport,
            dport,
            payload,
        } => {
            let mut b = vec![0u8; 20];
            b[0..2].copy_from_slice(&sport.to_be_bytes());
            b[2..4].copy_from_slice(&dport.to_be_bytes());
            b[4..8].copy_from_slice(&1u32.to_be_bytes());
            b[12] = 5 << 4;
            b[13] = 0x18;
            b[14] = 0x10;
            b.extend_from_slice(payload);
            (6, b, 16)
        }
        L4::Udp {
            sport,
            dport,
            payload,
            ..
        } => {
            let mut b = vec![0u8; 8];
            b[0..2].copy_from_slice(&sport.to_be_bytes());
            b[2..4].copy_from_slice(&dport.to_be_bytes());
            b[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
            b.extend_from_slice(payload);
            (17, b, 6)
        }
        L4::Sctp {
            sport,
            dport,
            payload,
        } => {
            let mut b = vec![0u8; 12];
            b[0..2].copy_from_slice(&sport.to_be_bytes());
            b[2..4].copy_from_slice(&dport.to_be_bytes());
            b[4..8].copy_from_slice(&0xdead_beefu32.to_be_bytes());
            b.extend_from_slice(payload);
            (132, b, 8)
        }
        L4::Icmp {
            msg_type,
            code,
            payload,
        } => {
            let mut b = vec![*msg_type, *code, 0, 0, 0, 1, 0, 2];
            b.extend_from_slice(payload);
            (0, b, 2)
        }
        L4::Raw { proto, payload } => (*proto, payload.clone(), usize::MAX),
    }
}

fn put_csum(b: &mut [u8], at: usize, c: u16) {
    b[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

fn sctp_fill(b: &mut [u8]) {
    b[8..12].fill(0);
    let c = checksum::crc32c(b);
    b[8..12].copy_from_slice(&c.to_le_bytes());
}

impl Frame {
    pub fn build(&self) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&self.dst);
        f.extend_from_slice(&self.src);
        let (ethertype, body) = self.l3_bytes();
        for (tpid, tci) in &self.tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&tci.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(&body);
        f.extend(std::iter::repeat_n(0xa5, self.pad));
        f
    }

    fn l3_bytes(&self) -> (u16, Vec<u8>) {
        match &self.l3 {
            L3::Ipv4 {
                src,
                dst,
                ttl,
                tos,
                opt_words,
                frag,
                l4,
            } => {
                let (proto, mut seg, csum_at) = l4_bytes(l4);
                let proto = if proto == 0 { 1 } else { proto };
                match l4 {
                    L4::Udp {
                        zero_csum: true, ..
                    } => {}
                    L4::Icmp { .. } => {
                        let c = checksum::internet(&seg);
                        put_csum(&mut seg, csum_at, c);
                    }
                    L4::Sctp { .. } => sctp_fill(&mut seg),
                    L4::Raw { .. } => {}
                    _ => {
                        let s = pseudo_v4(*src, *dst, proto, seg.len() as u16) + sum(&seg);
                        let mut c = !fold(s);
                        if proto == 17 && c == 0 {
                            c = 0xffff;
                        }
                        put_csum(&mut seg, csum_at, c);
                    }
                }
                let hl = 20 + 4 * usize::from(*opt_words);
                let mut h = vec![0u8; hl];
                h[0] = 0x40 | (hl / 4) as u8;
                h[1] = *tos;
                h[2..4].copy_from_slice(&((hl + seg.len()) as u16).to_be_bytes());
                h[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
                let fragw: u16 = match frag {
                    Frag::None => 0x4000,
                    Frag::First => 0x2000,
                    Frag::Later => 0x2000 | 50,
                };
                h[6..8].copy_from_slice(&fragw.to_be_bytes());
                h[8] = *ttl;
                h[9] = proto;
                h[12..16].copy_from_slice(src);
                h[16..20].copy_from_slice(dst);
                for i in 0..usize::from(*opt_words) {
                    h[20 + 4 * i] = 1; // NOP options
                    h[21 + 4 * i] = 1;
                    h[22 + 4 * i] = 1;
                    h[23 + 4 * i] = 1;
                }
                let c = checksum::internet(&h);
                put_csum(&mut h, 10, c);
                h.extend_from_slice(&seg);
                (0x0800, h)
            }
            L3::Ipv6 {
                src,
                dst,
                hlim,
                tc,
                flabel,
                hbh,
                frag,
                l4,
            } => {
                let (proto, mut seg, csum_at) = match l4 {
                    Ipv6L4::Plain(l4) => {
                        let (p, s, c) = l4_bytes(l4);
                        (if p == 0 { 58 } else { p }, s, c)
                    }
                    Ipv6L4::Nd {
                        solicit,
                        target,
                        ll,
                        extra_opt,
                    } => {
                        let mut b = vec![if *solicit { 135 } else { 136 }, 0, 0, 0, 0x60, 0, 0, 0];
                        b.extend_from_slice(target);
                        if *extra_opt {
                            b.extend_from_slice(&[14, 1, 1, 2, 3, 4, 5, 6]);
                        }
                        if let Some(mac) = ll {
                            b.extend_from_slice(&[if *solicit { 1 } else { 2 }, 1]);
                            b.extend_from_slice(mac);
                        }
                        (58, b, 2)
                    }
                };
                match l4 {
                    // A zero UDP checksum is not allowed over IPv6 (RFC 8200 8.1).
                    Ipv6L4::Plain(L4::Raw { .. }) => {}
                    Ipv6L4::Plain(L4::Sctp { .. }) => sctp_fill(&mut seg),
                    _ => {
                        let s = pseudo_v6(*src, *dst, proto, seg.len() as u32) + sum(&seg);
                        let mut c = !fold(s);
                        if proto == 17 && c == 0 {
                            c = 0xffff;
                        }
                        put_csum(&mut seg, csum_at, c);
                    }
                }
                let mut ext = Vec::new();
                let mut first = proto;
                if !matches!(frag, Frag::None) {
                    let off: u16 = if matches!(frag, Frag::Later) {
                        50 << 3
                    } else {
                        0
                    };
                    let mut fh = vec![first, 0];
                    fh.extend_from_slice(&(off | 1).to_be_bytes());
                    fh.extend_from_slice(&9u32.to_be_bytes());
                    ext.splice(0..0, fh);
                    first = 44;
                }
                if *hbh {
                    let hh = vec![first, 0, 1, 4, 0, 0, 0, 0];
                    ext.splice(0..0, hh);
                    first = 0;
                }
                let mut h = vec![0u8; 40];
                let w = (6u32 << 28) | (u32::from(*tc) << 20) | (flabel & 0xfffff);
                h[0..4].copy_from_slice(&w.to_be_bytes());
                h[4..6].copy_from_slice(&((ext.len() + seg.len()) as u16).to_be_bytes());
                h[6] = first;
                h[7] = *hlim;
                h[8..24].copy_from_slice(src);
                h[24..40].copy_from_slice(dst);
                h.extend_from_slice(&ext);
                h.extend_from_slice(&seg);
                (0x86dd, h)
            }
            L3::Arp {
                op,
                sha,
                spa,
                tha,
                tpa,
            } => {
                let mut b = vec![0, 1, 8, 0, 6, 4];
                b.extend_from_slice(&op.to_be_bytes());
                b.extend_from_slice(sha);
                b.extend_from_slice(spa);
                b.extend_from_slice(tha);
                b.extend_from_slice(tpa);
                (0x0806, b)
            }
            L3::Mpls { labels, inner_ttl } => {
                let mut b = Vec::new();
                for (i, (label, tc, ttl)) in labels.iter().enumerate() {
                    let bos = u32::from(i + 1 == labels.len());
                    let e = ((label & 0xfffff) << 12)
                        | (u32::from(tc & 7) << 9)
                        | (bos << 8)
                        | u32::from(*ttl);
                    b.extend_from_slice(&e.to_be_bytes());
                }
                let inner = Frame {
                    dst: [0; 6],
                    src: [0; 6],
                    tags: vec![],
                    l3: L3::Ipv4 {
                        src: [10, 1, 1, 1],
                        dst: [10, 2, 2, 2],
                        ttl: *inner_ttl,
                        tos: 0,
                        opt_words: 0,
                        frag: Frag::None,
                        l4: L4::Udp {
                            sport: 1,
                            dport: 2,
                            zero_csum: false,
                            payload: vec![1, 2, 3],
                        },
                    },
                    pad: 0,
                };
                b.extend_from_slice(&inner.l3_bytes().1);
                (0x8847, b)
            }
            L3::Pbb { isid, pcp, inner } => {
                let mut b = ((u32::from(*pcp & 7) << 29) | (isid & 0xffffff))
                    .to_be_bytes()
                    .to_vec();
                b.extend_from_slice(&inner.build());
                (0x88e7, b)
            }
            L3::Other { ethertype, payload } => (*ethertype, payload.clone()),
        }
    }
}

/// Recomputes every checksum the frame carries from scratch and compares. Fragments' L4
/// checksums are skipped (they cover the whole datagram), as are L4 checksums under an
/// IPv6 routing header (their pseudo-header uses the final destination).
pub fn verify_checksums(frame: &[u8]) -> Result<(), String> {
    let key = extract(frame, 0);
    let l3 = usize::from(key.offsets.l3);
    if key.layers.contains(Layers::MPLS) {
        let mut at = l3;
        while at + 4 <= frame.len() {
            let bos = frame[at + 2] & 1 != 0;
            at += 4;
            if bos {
                break;
            }
        }
        // MPLS does not say what it carries: only the IPv4 header the builder puts under
        // labels (recognised by its addresses) is checked, not payloads that look like one.
        if let Some(ip) = frame.get(at..) {
            if ip.len() >= 20 && ip[0] == 0x45 && ip[12..20] == [10, 1, 1, 1, 10, 2, 2, 2] {
                verify_ipv4_header(ip)?;
            }
        }
    }
    if key.layers.contains(Layers::PBB) {
        if let Some(inner) = frame.get(l3 + 4..) {
            return verify_checksums(inner).map_err(|e| format!("customer frame: {e}"));
        }
    }
    let v4 = key.layers.contains(Layers::IPV4);
    if v4 {
        verify_ipv4_header(&frame[l3..])?;
    }
    if key.layers.intersects(Layers::IP_FRAG) {
        return Ok(());
    }
    if !v4 && key.get(packet::Field::Ipv6Exthdr) as u16 & packet::key::ipv6_exthdr::ROUTER != 0 {
        return Ok(());
    }
    let l4 = usize::from(key.offsets.l4);
    let end = if v4 {
        l3 + usize::from(u16::from_be_bytes([frame[l3 + 2], frame[l3 + 3]]))
    } else if key.layers.contains(Layers::IPV6) {
        l3 + 40 + usize::from(u16::from_be_bytes([frame[l3 + 4], frame[l3 + 5]]))
    } else {
        return Ok(());
    };
    let end = end.min(frame.len());
    let seg = &frame[l4..end];
    let pseudo = |proto: u8| -> u64 {
        if v4 {
            let ip = &frame[l3..];
            pseudo_v4(
                ip[12..16].try_into().unwrap(),
                ip[16..20].try_into().unwrap(),
                proto,
                seg.len() as u16,
            )
        } else {
            let ip = &frame[l3..];
            pseudo_v6(
                ip[8..24].try_into().unwrap(),
                ip[24..40].try_into().unwrap(),
                proto,
                seg.len() as u32,
            )
        }
    };
    let check16 = |at: usize, base: u64, zero_ok: bool, name: &str| -> Result<(), String> {
        let stored = u16::from_be_bytes([seg[at], seg[at + 1]]);
        if zero_ok && stored == 0 {
            return Ok(());
        }
        let mut z = seg.to_vec();
        z[at] = 0;
        z[at + 1] = 0;
        let mut c = !fold(base + sum(&z));
        if zero_ok && c == 0 {
            c = 0xffff;
        }
        if c == stored {
            Ok(())
        } else {
            Err(format!(
                "{name} checksum {stored:#06x}, recomputed {c:#06x}"
            ))
        }
    };
    let l = key.layers;
    if l.contains(Layers::TCP) {
        check16(16, pseudo(6), false, "tcp")?;
    } else if l.contains(Layers::UDP) {
        check16(6, pseudo(17), v4, "udp")?;
    } else if l.contains(Layers::ICMPV4) {
        check16(2, 0, false, "icmpv4")?;
    } else if l.contains(Layers::ICMPV6) {
        check16(2, pseudo(58), false, "icmpv6")?;
    } else if l.contains(Layers::SCTP) {
        let mut z = seg.to_vec();
        z[8..12].fill(0);
        let c = checksum::crc32c(&z);
        let stored = u32::from_le_bytes(seg[8..12].try_into().unwrap());
        if c != stored {
            return Err(format!("sctp crc {stored:#010x}, recomputed {c:#010x}"));
        }
    }
    Ok(())
}

fn verify_ipv4_header(ip: &[u8]) -> Result<(), String> {
    let hl = usize::from(ip[0] & 15) * 4;
    if ip.len() < hl || hl < 20 {
        return Ok(());
    }
    let mut h = ip[..hl].to_vec();
    let stored = u16::from_be_bytes([h[10], h[11]]);
    h[10] = 0;
    h[11] = 0;
    let c = checksum::internet(&h);
    if c == stored {
        Ok(())
    } else {
        Err(format!(
            "ipv4 header checksum {stored:#06x}, recomputed {c:#06x}"
        ))
    }
}

/// The key `extract` gives, with the pipeline-only fields taken from `like`.
pub fn fresh_key(frame: &[u8], like: &FlowKey) -> FlowKey {
    let mut k = extract(frame, like.in_port());
    k.set(packet::Field::InPhyPort, like.get(packet::Field::InPhyPort));
    k.set_metadata(like.metadata());
    k.set_tunnel_id(like.tunnel_id());
    k
}

// ----- strategies -------------------------------------------------------------------------

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..24)
}

pub fn l4() -> impl Strategy<Value = L4> {
    prop_oneof![
        (any::<u16>(), any::<u16>(), payload()).prop_map(|(sport, dport, payload)| L4::Tcp {
            sport,
            dport,
            payload
        }),
        (any::<u16>(), any::<u16>(), any::<bool>(), payload()).prop_map(
            |(sport, dport, zero_csum, payload)| L4::Udp {
                sport,
                dport,
                zero_csum,
                payload
            }
        ),
        (any::<u16>(), any::<u16>(), payload()).prop_map(|(sport, dport, payload)| L4::Sctp {
            sport,
            dport,
            payload
        }),
        (any::<u8>(), any::<u8>(), payload()).prop_map(|(msg_type, code, payload)| L4::Icmp {
            msg_type,
            code,
            payload
        }),
        (prop_oneof![Just(47u8), Just(89u8), Just(103u8)], payload())
            .prop_map(|(proto, payload)| L4::Raw { proto, payload }),
    ]
}

fn frag() -> impl Strategy<Value = Frag> {
    prop_oneof![6 => Just(Frag::None), 1 => Just(Frag::First), 1 => Just(Frag::Later)]
}

fn ipv6_l4() -> impl Strategy<Value = Ipv6L4> {
    prop_oneof![
        3 => l4().prop_map(Ipv6L4::Plain),
        2 => (any::<bool>(), any::<[u8; 16]>(), prop::option::of(any::<[u8; 6]>()), any::<bool>())
            .prop_map(|(solicit, target, ll, extra_opt)| Ipv6L4::Nd { solicit, target, ll, extra_opt }),
    ]
}

fn ip_l3() -> impl Strategy<Value = L3> {
    prop_oneof![
        (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<u8>(),
            any::<u8>(),
            0u8..3,
            frag(),
            l4()
        )
            .prop_map(|(src, dst, ttl, tos, opt_words, frag, l4)| L3::Ipv4 {
                src,
                dst,
                ttl,
                tos,
                opt_words,
                frag,
                l4
            }),
        (
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            any::<u8>(),
            any::<u8>(),
            any::<u32>(),
            any::<bool>(),
            frag(),
            ipv6_l4()
        )
            .prop_map(|(src, dst, hlim, tc, flabel, hbh, frag, l4)| L3::Ipv6 {
                src,
                dst,
                hlim,
                tc,
                flabel: flabel & 0xfffff,
                hbh,
                frag,
                l4
            }),
        (
            1u16..3,
            any::<[u8; 6]>(),
            any::<[u8; 4]>(),
            any::<[u8; 6]>(),
            any::<[u8; 4]>()
        )
            .prop_map(|(op, sha, spa, tha, tpa)| L3::Arp {
                op,
                sha,
                spa,
                tha,
                tpa
            }),
        (
            prop::collection::vec((any::<u32>(), any::<u8>(), any::<u8>()), 1..3),
            any::<u8>()
        )
            .prop_map(|(labels, inner_ttl)| L3::Mpls { labels, inner_ttl }),
        (
            prop_oneof![Just(0x9000u16), Just(0x0042u16), Just(0x88ccu16)],
            payload()
        )
            .prop_map(|(ethertype, payload)| L3::Other { ethertype, payload }),
    ]
}

fn tags() -> impl Strategy<Value = Vec<(u16, u16)>> {
    prop::collection::vec(
        (prop_oneof![Just(0x8100u16), Just(0x88a8u16)], any::<u16>()),
        0..3,
    )
}

fn plain_frame() -> impl Strategy<Value = Frame> {
    (
        any::<[u8; 6]>(),
        any::<[u8; 6]>(),
        tags(),
        ip_l3(),
        prop_oneof![3 => Just(0usize), 1 => 1usize..8],
    )
        .prop_map(|(dst, src, tags, l3, pad)| Frame {
            dst,
            src,
            tags,
            l3,
            pad,
        })
}

/// Valid frames of every kind the parser knows, PBB wrapping any of the others.
pub fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        5 => plain_frame(),
        1 => (any::<[u8; 6]>(), any::<[u8; 6]>(), tags(), any::<u32>(), 0u8..8, plain_frame()).prop_map(
            |(dst, src, tags, isid, pcp, inner)| Frame {
                dst,
                src,
                tags,
                l3: L3::Pbb { isid: isid & 0xffffff, pcp, inner: Box::new(inner) },
                pad: 0
            }
        ),
    ]
}
