//! Traces where state decides (meters, NORMAL's learning) and where nothing comes out:
//! a trace says what processing the next packet does, and leaves the state that decides
//! it as it was. (Every shape of the differential tests is traced in `differential.rs`.)

mod common;

use std::time::Duration;

use common::{frame, run_compiled, run_trace, PktSpec, L3};
use packet::Field;
use pipeline::meter::{Band, BandKind};
use pipeline::{
    Action, DropReason, FlowModReq, FlowTables, Instructions, Match, MatchField, MeterFlags,
    MeterModCommand, MeterModReq, MissPolicy, PipelineConfig, PortInfo, TraceStep,
};

const A: u64 = 0x0200_0000_000a;
const B: u64 = 0x0200_0000_000b;

fn tables() -> FlowTables {
    let mut ft = FlowTables::new(PipelineConfig {
        n_tables: 4,
        ..Default::default()
    });
    for p in 1..=3 {
        ft.set_port(PortInfo::new(p));
    }
    ft
}

fn ping(src: u64, dst: u64) -> Vec<u8> {
    frame(&PktSpec {
        dst,
        src,
        vlan: None,
        l3: L3::Ipv4 {
            src: 0x0a00_0001,
            dst: 0x0a00_0002,
            proto: 17,
            ttl: 64,
            sport: 1000,
            dport: 80,
        },
    })
}

fn apply(actions: Vec<Action>) -> Instructions {
    Instructions {
        apply: Some(actions.into()),
        ..Default::default()
    }
}

#[test]
fn a_trace_of_a_metered_flow_takes_no_tokens_and_agrees_with_the_next_packet() {
    let mut ft = tables();
    let now = Duration::ZERO;
    ft.apply_meter_mod(
        &MeterModReq {
            command: MeterModCommand::Add,
            flags: MeterFlags::PKTPS | MeterFlags::BURST,
            meter_id: 1,
            bands: vec![Some(Band {
                kind: BandKind::Drop,
                rate: 1,
                burst: 3,
            })],
        },
        now,
    )
    .unwrap();
    let insts = Instructions {
        meter: Some(1),
        ..apply(vec![Action::output(2)])
    };
    ft.apply_flow_mod(FlowModReq::add(0, 1, Match::any(), insts), now)
        .unwrap();
    ft.publish();
    let f = ping(A, B);
    // Traces alone never drain the bucket.
    for _ in 0..50 {
        let t = ft.current().trace(&f, 1, now);
        assert_eq!(t.outputs.len(), 1, "{t:?}");
        assert_eq!(t.drop_reason(), None);
    }
    assert_eq!(ft.meter_counts(1).unwrap().packets_in, 0);
    // Packets do; each time, the trace said what the packet then did.
    let mut dropped = false;
    for _ in 0..20 {
        let traced = run_trace(&ft, &f, 1);
        let got = run_compiled(&ft, &f, 1);
        assert_eq!(traced, got);
        if got.outputs.is_empty() {
            dropped = true;
            let t = ft.current().trace(&f, 1, now);
            assert_eq!(t.drop_reason(), Some(DropReason::Meter { id: 1 }));
            assert!(t.steps.iter().any(|s| matches!(
                s,
                TraceStep::Meter {
                    id: 1,
                    verdict: Some(pipeline::meter::MeterVerdict::Drop)
                }
            )));
            break;
        }
    }
    assert!(dropped, "the meter never dropped");
}

#[test]
fn a_trace_through_normal_learns_nothing() {
    let mut ft = tables();
    ft.set_miss_policy(0, MissPolicy::Normal).unwrap();
    ft.publish();
    let ab = ping(A, B);
    let ba = ping(B, A);
    // Nothing learned: B is flooded to from A, and a trace does not teach the switch A.
    assert_eq!(
        run_trace(&ft, &ab, 1)
            .outputs
            .iter()
            .map(|o| o.0)
            .collect::<Vec<_>>(),
        [2, 3]
    );
    assert_eq!(
        run_trace(&ft, &ba, 2)
            .outputs
            .iter()
            .map(|o| o.0)
            .collect::<Vec<_>>(),
        [1, 3]
    );
    assert!(ft.mac_table().entries(0).is_empty());
    // A packet does, and the trace then agrees with forwarding: B -> A goes to port 1 only.
    run_compiled(&ft, &ab, 1);
    let traced = run_trace(&ft, &ba, 2);
    assert_eq!(traced.outputs.iter().map(|o| o.0).collect::<Vec<_>>(), [1]);
    let t = ft.current().trace(&ba, 2, Duration::ZERO);
    assert!(t.steps.contains(&TraceStep::Normal {
        vlan: 0,
        learned: Some(1)
    }));
    assert_eq!(traced, run_compiled(&ft, &ba, 2));
}

#[test]
fn a_trace_names_entries_actions_and_the_fields_after_them_and_counts_nothing() {
    let mut ft = tables();
    let now = Duration::ZERO;
    let m = Match::from_fields(&[MatchField {
        field: Field::InPort,
        value: 1,
        mask: None,
    }]);
    let mut first = FlowModReq::add(
        0,
        100,
        m,
        Instructions {
            goto: Some(2),
            ..apply(vec![Action::SetField {
                field: Field::Ipv4Dst,
                value: 0x0a00_0063,
            }])
        },
    );
    first.cookie = 0xabc;
    ft.apply_flow_mod(first, now).unwrap();
    ft.apply_flow_mod(
        FlowModReq::add(2, 5, Match::any(), apply(vec![Action::output(3)])),
        now,
    )
    .unwrap();
    ft.publish();
    let f = ping(A, B);
    let t = ft.current().trace(&f, 1, now);
    let hits: Vec<(u8, u64, u16)> = t
        .hits()
        .map(|(table, h)| (table, h.cookie, h.priority))
        .collect();
    assert_eq!(hits, [(0, 0xabc, 100), (2, 0, 5)]);
    let edited = t
        .steps
        .iter()
        .find_map(|s| match s {
            TraceStep::Action {
                action: Action::SetField { .. },
                key,
                error: false,
            } => Some(key.get(Field::Ipv4Dst)),
            _ => None,
        })
        .expect("the set-field step");
    assert_eq!(edited, 0x0a00_0063);
    assert!(t.steps.contains(&TraceStep::Goto {
        to: 2,
        refused: false
    }));
    assert_eq!(t.outputs.len(), 1);
    assert_eq!(t.outputs[0].port, 3);
    assert_eq!(
        packet::extract(&t.outputs[0].frame, 3).get(Field::Ipv4Dst),
        0x0a00_0063
    );
    // No counter moved.
    for table in [0, 2] {
        for uid in ft.entries(table).map(|e| e.uid).collect::<Vec<_>>() {
            assert_eq!(ft.entry_counts(table, uid), Some((0, 0)));
        }
    }
    assert!(ft
        .table_counts()
        .iter()
        .all(|c| c.lookups == 0 && c.matches == 0));
    // From another port nothing matches in table 0, whose miss policy drops.
    let t = ft.current().trace(&f, 2, now);
    assert_eq!(t.drop_reason(), Some(DropReason::TableMiss { table: 0 }));
    // An entry without outputs is an explicit drop.
    ft.apply_flow_mod(
        FlowModReq::add(0, 1, Match::any(), Instructions::default()),
        now,
    )
    .unwrap();
    ft.publish();
    let t = ft.current().trace(&f, 2, now);
    assert_eq!(t.drop_reason(), Some(DropReason::NoOutput));
}
