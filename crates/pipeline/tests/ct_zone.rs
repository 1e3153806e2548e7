//! `ct`'s zone as the worker's tracker gets it: an immediate `zone=N`, or 16 bits of a key
//! field taken per packet (`zone=NXM_NX_REG6[0..15]`, `[16..31]`), while the rest of the
//! action's tracker options are made once when the flow is decoded (`CtAction::track`).

mod common;

use std::time::Duration;

use common::{frame, PktSpec, L3};
use packet::{Field, FlowKey, PacketBuf, VecBuf};
use pipeline::flow::{CtAction, CtZone};
use pipeline::{
    Action, Emit, FlowModReq, FlowTables, Instructions, Match, PipelineConfig, PortInfo, Sink,
};

struct Discard;

impl Sink<VecBuf> for Discard {
    fn output(&mut self, _: u32, _: Option<u32>, _: &VecBuf, _: Emit) {}
    fn clone_packet(&mut self, pkt: &VecBuf) -> Option<VecBuf> {
        Some(pkt.clone())
    }
}

fn commit_in(zone: CtZone) -> Action {
    Action::Ct(std::sync::Arc::new(CtAction::new(
        true,
        false,
        zone,
        None,
        0,
        vec![],
    )))
}

#[test]
fn the_zone_comes_from_the_action_or_from_a_register_per_packet() {
    let mut ft = FlowTables::new(PipelineConfig {
        n_tables: 1,
        ..Default::default()
    });
    for p in 1..=3 {
        ft.set_port(PortInfo::new(p));
    }
    let reg6 = |port: u128, ofs: u16| {
        (
            Match::exact(&[(Field::InPort, port), (Field::EthType, 0x0800)]),
            Instructions::apply(vec![
                Action::SetField {
                    field: Field::Reg6,
                    value: 0x0009_0005,
                },
                commit_in(CtZone::Field {
                    field: Field::Reg6,
                    ofs,
                }),
            ]),
        )
    };
    let flows = [
        reg6(1, 0),
        reg6(2, 16),
        (
            Match::exact(&[(Field::InPort, 3), (Field::EthType, 0x0800)]),
            Instructions::apply(vec![commit_in(CtZone::Imm(7))]),
        ),
    ];
    for (m, i) in flows {
        ft.apply_flow_mod(FlowModReq::add(0, 10, m, i), Duration::ZERO)
            .unwrap();
    }
    ft.publish();
    let pl = ft.current();
    let mut ctx = ft.worker_context(0);
    ctx.attach_conntrack(conntrack::Tracker::new(conntrack::Config::default()).unwrap());
    for (port, zone) in [(1, 5), (2, 9), (3, 7), (1, 5)] {
        let mut pkt = VecBuf::new(&frame(&PktSpec {
            dst: 2,
            src: 1,
            vlan: None,
            l3: L3::Ipv4 {
                src: 0x0a00_0001,
                dst: 0x0a00_0002,
                proto: 17,
                ttl: 64,
                sport: 1000 + port as u16,
                dport: 53,
            },
        }));
        let mut key = FlowKey::default();
        pl.extract(pkt.data(), port, &mut key);
        pl.process(&mut pkt, &mut key, &mut ctx, &mut Discard);
        assert_eq!(key.get(Field::CtZone), zone, "port {port}");
        assert_eq!(key.get(Field::CtState) as u8 & 0x21, 0x21, "+trk+new");
    }
    let t = ctx.conntrack.as_ref().unwrap();
    let mut zones: Vec<_> = t
        .zone_stats()
        .map(|z| (z.zone, z.entries, z.committed))
        .collect();
    zones.sort();
    // The repeated packet of zone 5 finds its connection (committed once).
    assert_eq!(
        zones,
        vec![(Some(5), 1, 1), (Some(7), 1, 1), (Some(9), 1, 1)]
    );
}
