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
