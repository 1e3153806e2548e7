//! Flow-mod semantics, conversion refusals, timeouts, counters, table-miss policies,
//! meters and publication.

#[path = "../../pipeline/tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::{frame, run_compiled, PktSpec, Recorder, L3};
use ofproto::OfFlowTables;
use openflow::consts::{FlowModFlags, MeterFlags, OFPG_ANY, OFPP_ANY, OFPP_CONTROLLER, OFPTT_ALL};
use openflow::error::{
    BadActionCode, BadInstructionCode, BadMatchCode, FlowModFailedCode, MeterModFailedCode,
};
use openflow::messages::{
    FlowMod, FlowModCommand, MeterBand, MeterMod, MeterModCommand, PacketInReason,
};
use openflow::{
    Action as OfAction, ErrorCode, Instruction as OfInst, Match as OfMatch, OxmField, OxmTlv,
};
use packet::{extract, VecBuf};
use pipeline::{FlowTables, MissPolicy, PipelineConfig, PortInfo};

/// The OpenFlow error a refusal answers with.
trait Code {
    fn code(self) -> openflow::ErrorCode;
}

impl Code for pipeline::PipelineError {
    fn code(self) -> openflow::ErrorCode {
        ofproto::error_code(self)
    }
}

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn tables() -> FlowTables {
    let mut ft = FlowTables::new(PipelineConfig {
        n_tables: 4,
        ..Default::default()
    });
    for p in 1..=4 {
        ft.set_port(PortInfo::new(p));
    }
    ft.publish();
    ft
}

fn in_port(p: u32) -> OfMatch {
    OfMatch::new(vec![OxmTlv::in_port(p)])
}

fn out(p: u32) -> Vec<OfInst> {
    vec![OfInst::ApplyActions(vec![OfAction::output(p)])]
}

fn pkt() -> Vec<u8> {
    frame(&PktSpec {
        dst: 0x0200_0000_0002,
        src: 0x0200_0000_0001,
        vlan: None,
        l3: L3::Ipv4 {
            src: 0x0a00_0001,
            dst: 0x0a00_0002,
            proto: 6,
            ttl: 64,
            sport: 1000,
            dport: 80,
        },
    })
}

fn ports_out(ft: &FlowTables, in_p: u32) -> Vec<u32> {
    run_compiled(ft, &pkt(), in_p)
        .outputs
        .iter()
        .map(|o| o.0)
        .collect()
}

fn send(ft: &FlowTables, in_p: u32, n: usize) {
    let pl = ft.current();
    let mut ctx = ft.worker_context(0);
    for _ in 0..n {
        let f = pkt();
        let mut b = VecBuf::new(&f);
        let mut k = extract(&f, in_p);
        pl.process(&mut b, &mut k, &mut ctx, &mut Recorder::default());
    }
}

fn code(r: Result<Vec<pipeline::RemovedFlow>, pipeline::PipelineError>) -> ErrorCode {
    r.expect_err("must be refused").code()
}

#[test]
fn add_replaces_identical_entry_and_keeps_counters() {
    let mut ft = tables();
    ft.flow_mod(&FlowMod::add(0, 10, in_port(1), out(2)), s(0))
        .unwrap();
    ft.publish();
    send(&ft, 1, 3);
    ft.flow_mod(&FlowMod::add(0, 10, in_port(1), out(3)), s(1))
        .unwrap();
    ft.publish();
    assert_eq!(ft.entries(0).count(), 1);
    assert_eq!(ports_out(&ft, 1), vec![3]);
    let all = ft
        .flow_counts(0, &pipeline::Match::any(), 0, 0, OFPP_ANY, OFPG_ANY)
        .unwrap();
    assert_eq!(
        all[0].packets, 4,
        "3 before the replace are kept, plus the probe"
    );
    // RESET_COUNTS on the replacing add clears them.
    let mut fm = FlowMod::add(0, 10, in_port(1), out(4));
    fm.flags = FlowModFlags::RESET_COUNTS;
    ft.flow_mod(&fm, s(2)).unwrap();
    ft.publish();
    let all = ft
        .flow_counts(0, &pipeline::Match::any(), 0, 0, OFPP_ANY, OFPG_ANY)
        .unwrap();
    assert_eq!(all[0].packets, 0);
}

#[test]
fn check_overlap() {
    let mut ft = tables();
    ft.flow_mod(&FlowMod::add(0, 10, in_port(1), out(2)), s(0))
        .unwrap();
    let mut fm = FlowMod::add(0, 10, OfMatch::any(), out(3));
    fm.flags = FlowModFlags::CHECK_OVERLAP;
    assert_eq!(
        code(ft.flow_mod(&fm, s(0))),
        ErrorCode::FlowModFailed(FlowModFailedCode::Overlap)
    );
    // Disjoint match or other priority: fine.
    let mut fm2 = FlowMod::add(0, 10, in_port(2), out(3));
    fm2.flags = FlowModFlags::CHECK_OVERLAP;
    ft.flow_mod(&fm2, s(0)).unwrap();
    fm.priority = 11;
    ft.flow_mod(&fm, s(0)).unwrap();
    assert_eq!(ft.entries(0).count(), 3);
}

#[test]
fn modify_and_modify_strict() {
    let mut ft = tables();
    let m_eth = OfMatch::new(vec![OxmTlv::in_port(1), OxmTlv::eth_type(0x0800)]);
    let mut a = FlowMod::add(0, 10, in_port(1), out(2));
    a.cookie = 0x11;
    ft.flow_mod(&a, s(0)).unwrap();
    let mut b = FlowMod::add(0, 20, m_eth.clone(), out(2));
    b.cookie = 0x22;
    ft.flow_mod(&b, s(0)).unwrap();
    ft.publish();
    send(&ft, 1, 2);

    // Non-strict with a cookie filter touches only the cookie-0x22 entry.
    let mut m = FlowMod::add(0, 0, in_port(1), out(3));
    m.command = FlowModCommand::Modify;
    m.cookie = 0x22;
    m.cookie_mask = 0xff;
    ft.flow_mod(&m, s(1)).unwrap();
    ft.publish();
    assert_eq!(ports_out(&ft, 1), vec![3]);
    let c = ft
        .flow_counts(0, &pipeline::Match::any(), 0x22, 0xff, OFPP_ANY, OFPG_ANY)
        .unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].packets, 3, "modify keeps counters (2 before, 1 probe)");

    // Strict needs the exact match and priority.
    let mut ms = FlowMod::add(0, 10, in_port(1), out(4));
    ms.command = FlowModCommand::ModifyStrict;
    ft.flow_mod(&ms, s(2)).unwrap();
    let e10 = ft.entries(0).find(|e| e.priority == 10).unwrap();
    assert_eq!(
        e10.instructions.apply.as_deref(),
        Some(&[pipeline::Action::output(4)][..])
    );
    let e20 = ft.entries(0).find(|e| e.priority == 20).unwrap();
    assert_eq!(e20.cookie, 0x22, "modify does not change the cookie");
    // Modify matching nothing adds nothing (OpenFlow 1.3).
    let mut none = FlowMod::add(0, 10, in_port(4), out(4));
    none.command = FlowModCommand::Modify;
    ft.flow_mod(&none, s(2)).unwrap();
    assert_eq!(ft.entries(0).count(), 2);
}

#[test]
fn delete_filters() {
    let mut ft = tables();
    ft.flow_mod(&FlowMod::add(0, 10, in_port(1), out(2)), s(0))
        .unwrap();
    ft.flow_mod(&FlowMod::add(0, 11, in_port(2), out(3)), s(0))
        .unwrap();
    ft.flow_mod(&FlowMod::add(1, 12, in_port(1), out(3)), s(0))
        .unwrap();
    let mut sfr = FlowMod::add(2, 13, in_port(3), out(2));
    sfr.flags = FlowModFlags::SEND_FLOW_REM;
    ft.flow_mod(&sfr, s(0)).unwrap();
    ft.publish();
    send(&ft, 1, 5);

    // out_port: only entries outputting to 3, in all tables.
    let mut d = FlowMod::add(OFPTT_ALL, 0, OfMatch::any(), vec![]);
    d.command = FlowModCommand::Delete;
    d.out_port = 3;
    let removed = ft.flow_mod(&d, s(1)).unwrap();
    let mut prios: Vec<u16> = removed.iter().map(|r| r.entry.priority).collect();
    prios.sort();
    assert_eq!(prios, vec![11, 12]);

    // Strict: priority must agree.
    let mut ds = FlowMod::add(0, 99, in_port(1), vec![]);
    ds.command = FlowModCommand::DeleteStrict;
    assert!(ft.flow_mod(&ds, s(1)).unwrap().is_empty());
    ds.priority = 10;
    let r = ft.flow_mod(&ds, s(1)).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].packets, 5, "removed entries carry their counters");

    // Non-strict covers more specific entries; the removed one asked for FLOW_REMOVED.
    let mut dn = FlowMod::add(OFPTT_ALL, 0, OfMatch::any(), vec![]);
    dn.command = FlowModCommand::Delete;
    let r = ft.flow_mod(&dn, s(3)).unwrap();
    assert_eq!(r.len(), 1);
    assert!(r[0]
        .entry
        .flags
        .contains(pipeline::FlowFlags::SEND_FLOW_REM));
    let msg = ofproto::flow_removed(&r[0]);
    assert_eq!(msg.duration_sec, 3);
    assert_eq!(msg.match_, in_port(3));
    assert_eq!(
        ft.entries(0).count() + ft.entries(1).count() + ft.entries(2).count(),
        0
    );
}

#[test]
fn out_group_filter_and_group_delete_removes_flows() {
    let mut ft = tables();
    let gm = openflow::messages::GroupMod {
        command: openflow::messages::GroupModCommand::Add,
        group_type: openflow::messages::GroupType::Indirect,
        group_id: 7,
        buckets: vec![openflow::messages::Bucket {
            weight: 0,
            watch_port: OFPP_ANY,
            watch_group: OFPG_ANY,
            actions: vec![OfAction::output(2)],
        }],
    };
    ft.group_mod(&gm, s(0)).unwrap();
    let to_group = vec![OfInst::WriteActions(vec![OfAction::Group(7)])];
    ft.flow_mod(&FlowMod::add(0, 5, in_port(1), to_group), s(0))
        .unwrap();
    ft.flow_mod(&FlowMod::add(0, 5, in_port(2), out(2)), s(0))
        .unwrap();
    ft.publish();
    assert_eq!(ports_out(&ft, 1), vec![2]);
    let c = ft
        .flow_counts(0, &pipeline::Match::any(), 0, 0, OFPP_ANY, 7)
        .unwrap();
    assert_eq!(c.len(), 1);
    let mut del = gm.clone();
    del.command = openflow::messages::GroupModCommand::Delete;
    let removed = ft.group_mod(&del, s(1)).unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].reason, pipeline::RemovedReason::GroupDelete);
    assert_eq!(ft.entries(0).count(), 1);
}

#[test]
fn refusals_carry_the_spec_codes() {
    let mut ft = tables();
    let bad_table = FlowMod::add(9, 1, OfMatch::any(), vec![]);
    assert_eq!(
        code(ft.flow_mod(&bad_table, s(0))),
        ErrorCode::FlowModFailed(FlowModFailedCode::BadTableId)
    );
    let all_add = FlowMod::add(OFPTT_ALL, 1, OfMatch::any(), vec![]);
    assert_eq!(
        code(ft.flow_mod(&all_add, s(0))),
        ErrorCode::FlowModFailed(FlowModFailedCode::BadTableId)
    );
    let back = FlowMod::add(2, 1, OfMatch::any(), vec![OfInst::GotoTable(1)]);
    assert_eq!(
        code(ft.flow_mod(&back, s(0))),
        ErrorCode::BadInstruction(BadInstructionCode::BadTableId)
    );
    let beyond = FlowMod::add(2, 1, OfMatch::any(), vec![OfInst::GotoTable(4)]);
    assert_eq!(
        code(ft.flow_mod(&beyond, s(0))),
        ErrorCode::BadInstruction(BadInstructionCode::BadTableId)
    );
    let prereq = FlowMod::add(0, 1, OfMatch::new(vec![OxmTlv::tcp_dst(80)]), vec![]);
    assert_eq!(
        code(ft.flow_mod(&prereq, s(0))),
        ErrorCode::BadMatch(BadMatchCode::BadPrereq)
    );
    let port0 = FlowMod::add(0, 1, OfMatch::any(), out(0));
    assert_eq!(
        code(ft.flow_mod(&port0, s(0))),
        ErrorCode::BadAction(BadActionCode::BadOutPort)
    );
    let any = FlowMod::add(0, 1, OfMatch::any(), out(OFPP_ANY));
    assert_eq!(
        code(ft.flow_mod(&any, s(0))),
        ErrorCode::BadAction(BadActionCode::BadOutPort)
    );
    let table_port = FlowMod::add(0, 1, OfMatch::any(), out(openflow::consts::OFPP_TABLE));
    assert_eq!(
        code(ft.flow_mod(&table_port, s(0))),
        ErrorCode::BadAction(BadActionCode::BadOutPort)
    );
    let group = FlowMod::add(
        0,
        1,
        OfMatch::any(),
        vec![OfInst::ApplyActions(vec![OfAction::Group(5)])],
    );
    assert_eq!(
        code(ft.flow_mod(&group, s(0))),
        ErrorCode::BadAction(BadActionCode::BadOutGroup)
    );
    let set_ip = OfAction::set_field(OxmField::Ipv4Dst, 0x0a00_0001).unwrap();
    let no_prereq = FlowMod::add(
        0,
        1,
        OfMatch::any(),
        vec![OfInst::ApplyActions(vec![set_ip.clone()])],
    );
    assert_eq!(
        code(ft.flow_mod(&no_prereq, s(0))),
        ErrorCode::BadAction(BadActionCode::MatchInconsistent)
    );
    let ok = FlowMod::add(
        0,
        1,
        OfMatch::new(vec![OxmTlv::eth_type(0x0800)]),
        vec![OfInst::ApplyActions(vec![set_ip])],
    );
    ft.flow_mod(&ok, s(0)).unwrap();
    // A label may be set after a push_mpls.
    let mpls = FlowMod::add(
        0,
        2,
        OfMatch::new(vec![OxmTlv::eth_type(0x0800)]),
        vec![OfInst::ApplyActions(vec![
            OfAction::PushMpls(0x8847),
            OfAction::set_field(OxmField::MplsLabel, 17).unwrap(),
        ])],
    );
    ft.flow_mod(&mpls, s(0)).unwrap();
    let set_in_port = OfAction::set_field(OxmField::InPort, 1).unwrap();
    let bad_set = FlowMod::add(
        0,
        1,
        OfMatch::any(),
        vec![OfInst::ApplyActions(vec![set_in_port])],
    );
    assert_eq!(
        code(ft.flow_mod(&bad_set, s(0))),
        ErrorCode::BadAction(BadActionCode::BadSetType)
    );
    let exp = FlowMod::add(
        0,
        1,
        OfMatch::any(),
        vec![OfInst::Experimenter {
            experimenter: 0x2320,
            data: vec![],
        }],
    );
    assert_eq!(
        code(ft.flow_mod(&exp, s(0))),
        ErrorCode::BadInstruction(BadInstructionCode::BadExperimenter)
    );
    let meter = FlowMod::add(0, 1, OfMatch::any(), vec![OfInst::Meter(3)]);
    assert_eq!(
        code(ft.flow_mod(&meter, s(0))),
        ErrorCode::MeterModFailed(MeterModFailedCode::UnknownMeter)
    );
    let bad_mask = FlowMod::add(
        0,
        1,
        OfMatch::new(vec![OxmTlv::masked(OxmField::InPort, 1, 1).unwrap()]),
        vec![],
    );
    assert_eq!(
        code(ft.flow_mod(&bad_mask, s(0))),
        ErrorCode::BadMatch(BadMatchCode::BadMask)
    );
    // Refusals leave the state as it was.
    assert_eq!(ft.entries(0).count(), 2);
}

#[test]
fn hard_and_idle_timeouts() {
    let mut ft = tables();
    let mut hard = FlowMod::add(0, 10, in_port(1), out(2));
    hard.hard_timeout = 10;
    ft.flow_mod(&hard, s(0)).unwrap();
    let mut idle = FlowMod::add(0, 10, in_port(2), out(3));
    idle.idle_timeout = 5;
    idle.flags = FlowModFlags::SEND_FLOW_REM;
    ft.flow_mod(&idle, s(0)).unwrap();
    ft.publish();
    assert!(ft.expire(s(3)).is_empty());
    send(&ft, 2, 1); // used at ~3 s (seen by the expire at 4 s)
    assert!(ft.expire(s(4)).is_empty());
    assert!(
        ft.expire(s(8)).is_empty(),
        "idle counts from the last observed use"
    );
    let r = ft.expire(s(9));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].reason, pipeline::RemovedReason::IdleTimeout);
    assert_eq!(r[0].packets, 1);
    let r = ft.expire(s(10));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].reason, pipeline::RemovedReason::HardTimeout);
    assert_eq!(ft.entries(0).count(), 0);
}

#[test]
fn no_counts_flags_report_all_ones() {
    let mut ft = tables();
    let mut fm = FlowMod::add(0, 10, in_port(1), out(2));
    fm.flags = FlowModFlags(FlowModFlags::NO_PKT_COUNTS.0 | FlowModFlags::NO_BYT_COUNTS.0);
    ft.flow_mod(&fm, s(0)).unwrap();
    ft.publish();
    send(&ft, 1, 2);
    let c = ft
        .flow_counts(0, &pipeline::Match::any(), 0, 0, OFPP_ANY, OFPG_ANY)
        .unwrap();
    let st = ofproto::flow_stats(&c[0], s(1));
    assert_eq!(st.packet_count, u64::MAX);
    assert_eq!(st.byte_count, u64::MAX);
    assert_eq!(
        c[0].packets, 2,
        "still counted internally (idle timeouts need it)"
    );
}

#[test]
fn table_miss_entry_and_policies() {
    let mut ft = tables();
    // No entry at all: dropped (OpenFlow 1.3 default).
    assert_eq!(
        run_compiled(&ft, &pkt(), 1),
        common::Outcome {
            final_bytes: pkt(),
            ..Default::default()
        }
    );
    // Table-miss entry to CONTROLLER: reason NO_MATCH, with its cookie.
    let mut miss = FlowMod::add(
        0,
        0,
        OfMatch::any(),
        vec![OfInst::ApplyActions(vec![OfAction::Output {
            port: OFPP_CONTROLLER,
            max_len: 20,
        }])],
    );
    miss.cookie = 0xabc;
    ft.flow_mod(&miss, s(0)).unwrap();
    ft.publish();
    let o = run_compiled(&ft, &pkt(), 1);
    assert_eq!(
        o.packet_ins,
        vec![(
            PacketInReason::NoMatch.raw(),
            0,
            0xabc,
            pkt()[..20].to_vec()
        )]
    );
    // An ordinary entry to CONTROLLER says ACTION.
    ft.flow_mod(&FlowMod::add(0, 5, in_port(1), out(OFPP_CONTROLLER)), s(0))
        .unwrap();
    ft.publish();
    assert_eq!(
        run_compiled(&ft, &pkt(), 1).packet_ins[0].0,
        PacketInReason::Action.raw()
    );

    // Per-table miss policies for the profile.
    let mut ft = tables();
    ft.set_miss_policy(0, MissPolicy::GotoNext).unwrap();
    ft.flow_mod(&FlowMod::add(1, 1, OfMatch::any(), out(4)), s(0))
        .unwrap();
    ft.set_miss_policy(2, MissPolicy::Controller { max_len: 128 })
        .unwrap();
    ft.publish();
    assert_eq!(ports_out(&ft, 1), vec![4]);
    let mut d = FlowMod::add(1, 1, OfMatch::any(), vec![]);
    d.command = FlowModCommand::Delete;
    ft.flow_mod(&d, s(0)).unwrap();
    ft.set_miss_policy(1, MissPolicy::GotoNext).unwrap();
    ft.publish();
    let o = run_compiled(&ft, &pkt(), 1);
    assert_eq!(o.packet_ins.len(), 1);
    assert_eq!((o.packet_ins[0].1, o.packet_ins[0].2), (2, u64::MAX));
    let stats = ft.table_counts();
    assert_eq!(
        (stats[0].lookups, stats[1].lookups, stats[2].lookups),
        (2, 2, 1)
    );
}

#[test]
fn meter_drop_band_limits_rate() {
    let mut ft = tables();
    let mm = MeterMod {
        command: MeterModCommand::Add,
        flags: MeterFlags(MeterFlags::PKTPS.0 | MeterFlags::BURST.0),
        meter_id: 1,
        bands: vec![MeterBand::Drop {
            rate: 10,
            burst_size: 5,
        }],
    };
    ft.meter_mod(&mm, s(0)).unwrap();
    ft.flow_mod(
        &FlowMod::add(
            0,
            1,
            OfMatch::any(),
            vec![OfInst::Meter(1), out(2).remove(0)],
        ),
        s(0),
    )
    .unwrap();
    ft.publish();
    let pl = ft.current();
    let mut ctx = ft.worker_context(0);
    let mut passed = 0;
    // 100 packets within 100 ms: the burst (5) plus about 1 token.
    for i in 0..100u64 {
        ctx.set_now(Duration::from_millis(1000 + i));
        let f = pkt();
        let mut b = VecBuf::new(&f);
        let mut k = extract(&f, 1);
        let v = pl.process(&mut b, &mut k, &mut ctx, &mut Recorder::default());
        if !v.meter_drop {
            passed += 1;
        }
    }
    assert!((5..=7).contains(&passed), "passed {passed}");
    let mc = ft.meter_counts(1).unwrap();
    assert_eq!(mc.packets_in, 100);
    assert_eq!(mc.bands[0].0, 100 - passed);
    // Deleting the meter removes the flows using it.
    let mut del = mm.clone();
    del.command = MeterModCommand::Delete;
    assert_eq!(ft.meter_mod(&del, s(1)).unwrap().len(), 1);
}

#[test]
fn publish_is_atomic_per_batch_and_barrier_waits_for_workers() {
    let mut ft = tables();
    let handle = ft.handle();
    ft.flow_mod(&FlowMod::add(0, 1, in_port(1), out(2)), s(0))
        .unwrap();
    // Not visible before publish.
    assert!(ports_out(&ft, 1).is_empty());
    let v = ft.publish();
    assert_eq!(handle.load().version, v);
    let held = handle.load_full();
    ft.flow_mod(&FlowMod::add(0, 2, in_port(1), out(3)), s(0))
        .unwrap();
    ft.publish();
    assert!(!ft.is_quiescent(), "a worker still holds the old version");
    drop(held);
    assert!(ft.is_quiescent());
    // Unchanged tables are shared between versions.
    let a = ft.current();
    ft.flow_mod(&FlowMod::add(1, 1, in_port(1), out(3)), s(0))
        .unwrap();
    ft.publish();
    let b = ft.current();
    assert!(std::sync::Arc::ptr_eq(&a.tables[0], &b.tables[0]));
    assert!(!std::sync::Arc::ptr_eq(&a.tables[1], &b.tables[1]));
}

/// The flow-mods of a bundle commit: a failure part way leaves the tables exactly as they
/// were (entries, instructions, counters, what packets see); success applies them all.
#[test]
fn atomic_batch_is_all_or_nothing() {
    let conv = |ft: &FlowTables, fm: &FlowMod| ofproto::convert_flow_mod(fm, ft).unwrap();
    let mut ft = tables();
    ft.flow_mod(&FlowMod::add(0, 10, in_port(1), out(2)), s(0))
        .unwrap();
    ft.flow_mod(&FlowMod::add(0, 10, in_port(2), out(1)), s(0))
        .unwrap();
    ft.publish();
    send(&ft, 1, 3);
    let before = |ft: &mut FlowTables| {
        let mut v: Vec<_> = ft
            .flow_counts(OFPTT_ALL, &pipeline::Match::any(), 0, 0, OFPP_ANY, OFPG_ANY)
            .unwrap()
            .into_iter()
            .map(|c| {
                (
                    c.table_id,
                    c.entry.uid,
                    c.entry.priority,
                    c.entry.instructions,
                    c.packets,
                )
            })
            .collect();
        v.sort_by_key(|c| (c.0, c.1));
        v
    };
    let snapshot = before(&mut ft);
    // Replace (in_port 1 -> 3), modify (in_port 2 -> 4), add, delete, then an overlap.
    let mut modify = FlowMod::add(0, 10, in_port(2), out(4));
    modify.command = FlowModCommand::ModifyStrict;
    let mut reset = FlowMod::add(0, 10, in_port(1), out(3));
    reset.flags = FlowModFlags::RESET_COUNTS;
    let mut del = FlowMod::add(0, 10, in_port(1), vec![]);
    del.command = FlowModCommand::DeleteStrict;
    let mut overlap = FlowMod::add(0, 10, OfMatch::any(), out(3));
    overlap.flags = FlowModFlags::CHECK_OVERLAP;
    let batch = [
        reset,
        modify,
        FlowMod::add(1, 5, in_port(3), out(1)),
        del,
        overlap,
    ];
    let reqs: Vec<_> = batch.iter().map(|fm| conv(&ft, fm)).collect();
    let mut tx = ft.transaction(s(1));
    for r in reqs {
        let _ = tx.flow_mod(r);
    }
    let (i, e) = tx.commit().unwrap_err();
    assert_eq!(
        (i, e.code()),
        (4, ErrorCode::FlowModFailed(FlowModFailedCode::Overlap))
    );
    ft.publish();
    assert_eq!(
        before(&mut ft),
        snapshot,
        "nothing of the failed batch remains"
    );
    assert_eq!(ports_out(&ft, 1), vec![2]);
    send(&ft, 1, 1);
    assert_eq!(
        before(&mut ft)[0].4,
        5,
        "counters keep counting (3 + probe + 1)"
    );
    // Without the overlap the batch applies.
    let reqs: Vec<_> = batch[..4].iter().map(|fm| conv(&ft, fm)).collect();
    let mut tx = ft.transaction(s(1));
    for r in reqs {
        tx.flow_mod(r).unwrap();
    }
    let removed = tx.commit().unwrap().removed;
    assert_eq!(removed.len(), 1);
    assert!(ports_out(&ft, 1).is_empty(), "in_port 1 deleted");
    assert_eq!(ports_out(&ft, 2), vec![4], "in_port 2 modified");
    assert_eq!(ft.entries(0).count() + ft.entries(1).count(), 2);
}

/// A pipeline that matches only in_port and only outputs lets workers skip parsing
/// (`Pipeline::reads_headers` false, `Pipeline::extract` gives in_port alone) and still
/// forwards and counts as with a parsed key; a header match, a header edit, a group or
/// NORMAL on a miss turns parsing back on from the next version: the whole key for an
/// edit or a group, the Ethernet words for an eth_type match or NORMAL.
#[test]
fn headers_are_parsed_only_when_some_table_reads_them() {
    use packet::Field;
    use pipeline::{Action, FlowModReq, Instructions, Match};
    let mut ft = tables();
    fn add(ft: &mut FlowTables, t: u8, prio: u16, m: Match, i: Instructions) {
        ft.apply_flow_mod(FlowModReq::add(t, prio, m, i), s(0))
            .unwrap();
        ft.publish();
    }
    assert!(!ft.current().reads_headers, "empty tables read nothing");
    let goto1 = Instructions {
        goto: Some(1),
        metadata: Some((7, 0xff)),
        ..Default::default()
    };
    add(&mut ft, 0, 10, Match::exact(&[(Field::InPort, 1)]), goto1);
    add(
        &mut ft,
        1,
        10,
        Match::exact(&[(Field::Metadata, 7)]),
        Instructions::apply(vec![Action::output(2), Action::output(OFPP_CONTROLLER)]),
    );
    let pl = ft.current();
    assert!(!pl.reads_headers);
    let f = pkt();
    let mut key = packet::FlowKey::default();
    pl.extract(&f, 1, &mut key);
    assert_eq!(key, {
        let mut k = packet::FlowKey::default();
        packet::extract_port_only(1, &mut k);
        k
    });
    assert_eq!(key.in_port(), 1);
    assert_eq!(key.get(Field::InPhyPort), 1);
    assert_eq!(key.get(Field::EthDst), 0, "nothing parsed");
    assert_eq!(ports_out(&ft, 1), vec![2]);
    assert_eq!(ports_out(&ft, 3), Vec::<u32>::new());
    send(&ft, 1, 3);
    let stats = ft.table_counts();
    // 2 packets from ports_out (one from port 3, which no entry takes) and 3 sent.
    assert_eq!((stats[0].lookups, stats[0].matches), (5, 4));
    assert_eq!((stats[1].lookups, stats[1].matches), (4, 4));

    // Each of these makes some table read headers.
    type Change = Box<dyn Fn(&mut FlowTables)>;
    let changes: Vec<(&str, Change)> = vec![
        (
            "a header match",
            Box::new(|ft| {
                add(
                    ft,
                    2,
                    5,
                    Match::exact(&[(Field::EthType, 0x0800)]),
                    Instructions::default(),
                )
            }),
        ),
        (
            "a set-field",
            Box::new(|ft| {
                let i = Instructions::apply(vec![Action::SetField {
                    field: Field::IpDscp,
                    value: 1,
                }]);
                add(ft, 2, 5, Match::exact(&[(Field::InPort, 4)]), i)
            }),
        ),
        (
            "a group",
            Box::new(|ft| {
                add(
                    ft,
                    2,
                    5,
                    Match::any(),
                    Instructions::apply(vec![Action::Group(1)]),
                )
            }),
        ),
        (
            "NORMAL",
            Box::new(|ft| {
                add(
                    ft,
                    2,
                    5,
                    Match::any(),
                    Instructions::apply(vec![Action::output(openflow::consts::OFPP_NORMAL)]),
                )
            }),
        ),
        (
            "a NORMAL miss",
            Box::new(|ft| {
                ft.set_miss_policy(3, MissPolicy::Normal).unwrap();
                ft.publish();
            }),
        ),
    ];
    for (what, change) in changes {
        let mut ft2 = tables();
        add(
            &mut ft2,
            0,
            10,
            Match::exact(&[(Field::InPort, 1)]),
            Instructions::apply(vec![Action::output(2)]),
        );
        assert!(!ft2.current().reads_headers);
        change(&mut ft2);
        let pl = ft2.current();
        assert!(pl.reads_headers, "{what}");
        let mut key = packet::FlowKey::default();
        pl.extract(&f, 1, &mut key);
        if pl.extract_plan.parse == packet::Parse::L2 {
            assert!(
                what == "a header match" || what.contains("NORMAL"),
                "{what}"
            );
            assert_eq!(key.words[..5], extract(&f, 1).words[..5], "{what}: L2");
        } else {
            assert_eq!(key, extract(&f, 1), "{what}: the whole key");
        }
    }
}

/// Small tables stay cached, so the version says there is nothing to prefetch and
/// workers skip the pass; a hash table past the prefetch size in one of the first two
/// tables turns it on, and prefetch_lookup then hands out its bucket addresses.
#[test]
fn prefetch_only_for_big_tables() {
    use packet::Field;
    use pipeline::{Action, FlowModReq, Instructions, Match};
    let mut ft = tables();
    let add = |ft: &mut FlowTables, i: u64| {
        let m = Match::exact(&[(Field::EthDst, u128::from(0x0200_0000_0000 | i))]);
        let req = FlowModReq::add(1, 10, m, Instructions::apply(vec![Action::output(2)]));
        ft.apply_flow_mod(req, s(0)).unwrap();
    };
    for i in 0..100 {
        add(&mut ft, i);
    }
    ft.publish();
    let pl = ft.current();
    assert!(!pl.prefetches);
    let key = extract(&pkt(), 1);
    let mut n = 0;
    pl.prefetch_lookup(&key, |_| n += 1);
    assert_eq!(n, 0);
    for i in 100..20_000 {
        add(&mut ft, i);
    }
    ft.publish();
    ft.compact();
    let pl = ft.current();
    assert!(pl.prefetches);
    pl.prefetch_lookup(&key, |_| n += 1);
    assert_eq!(n, 1, "one bucket of table 1's hash table");
}

/// A bundle keeps its flow-mods converted from the moment they are added; a group or
/// meter they use may be deleted before the commit. `check_references` refuses them
/// then with the error a conversion at the commit would give (and the error code
/// `ovs-ofctl` reports), and accepts them while what they use exists.
#[test]
fn converted_flow_mods_are_refused_once_their_group_or_meter_is_gone() {
    let mut ft = tables();
    let group = openflow::messages::GroupMod {
        command: openflow::messages::GroupModCommand::Add,
        group_type: openflow::messages::GroupType::Indirect,
        group_id: 7,
        buckets: vec![openflow::messages::Bucket {
            weight: 0,
            watch_port: OFPP_ANY,
            watch_group: OFPG_ANY,
            actions: vec![OfAction::output(2)],
        }],
    };
    let meter = MeterMod {
        command: MeterModCommand::Add,
        flags: MeterFlags(MeterFlags::PKTPS.0),
        meter_id: 3,
        bands: vec![MeterBand::Drop {
            rate: 10,
            burst_size: 0,
        }],
    };
    ft.group_mod(&group, s(0)).unwrap();
    ft.meter_mod(&meter, s(0)).unwrap();
    let apply_group = FlowMod::add(
        0,
        5,
        in_port(1),
        vec![OfInst::ApplyActions(vec![OfAction::Group(7)])],
    );
    let write_group = FlowMod::add(
        0,
        6,
        in_port(1),
        vec![OfInst::WriteActions(vec![OfAction::Group(7)])],
    );
    let metered = FlowMod::add(0, 7, in_port(1), vec![OfInst::Meter(3), out(2).remove(0)]);
    let plain = FlowMod::add(0, 8, in_port(1), out(2));
    let staged: Vec<pipeline::FlowModReq> = [&apply_group, &write_group, &metered, &plain]
        .iter()
        .map(|fm| ofproto::convert_flow_mod(fm, &ft).unwrap())
        .collect();
    for req in &staged {
        assert_eq!(ofproto::check_references(req, &ft), Ok(()));
    }

    let mut del = group.clone();
    del.command = openflow::messages::GroupModCommand::Delete;
    ft.group_mod(&del, s(1)).unwrap();
    let mut del = meter.clone();
    del.command = MeterModCommand::Delete;
    ft.meter_mod(&del, s(1)).unwrap();
    let now: Vec<_> = staged
        .iter()
        .map(|r| ofproto::check_references(r, &ft).map_err(|e| e.code()))
        .collect();
    let bad_group = ErrorCode::BadAction(BadActionCode::BadOutGroup);
    assert_eq!(
        now,
        vec![
            Err(bad_group),
            Err(bad_group),
            Err(ErrorCode::MeterModFailed(MeterModFailedCode::UnknownMeter)),
            Ok(()),
        ]
    );
    // The same errors as converting them now.
    for (fm, r) in [&apply_group, &write_group, &metered, &plain]
        .iter()
        .zip(&now)
    {
        assert_eq!(
            &ofproto::convert_flow_mod(fm, &ft)
                .map(|_| ())
                .map_err(|e| e.code()),
            r
        );
    }
}

/// Conversion shares equal instructions between flow-mods (one allocation for a batch's
/// repeated `output:2`): what each request holds must still be exactly its own
/// instructions, an empty apply-actions list stays one (not "no apply-actions"), and
/// instructions that are not repeated come out as they went in.
#[test]
fn repeated_instructions_are_shared_and_each_request_keeps_its_own() {
    use pipeline::flow::{Action, Instructions};
    let ft = tables();
    let convert = |insts: Vec<OfInst>| {
        ofproto::convert_flow_mod(&FlowMod::add(0, 10, in_port(1), insts), &ft)
            .unwrap()
            .instructions
    };
    let output = |port| Action::Output {
        port,
        max_len: 0xffff,
    };
    let a = convert(out(2));
    let b = convert(out(2));
    assert!(std::sync::Arc::ptr_eq(&a, &b), "equal instructions share");
    assert_eq!(*a, Instructions::apply(vec![output(2)]));
    // More kinds in turn than the few kept recently, each one checked every time.
    let kinds: Vec<(Vec<OfInst>, Instructions)> = vec![
        (out(2), Instructions::apply(vec![output(2)])),
        (out(3), Instructions::apply(vec![output(3)])),
        (
            vec![OfInst::ApplyActions(vec![])],
            Instructions::apply(vec![]),
        ),
        (vec![], Instructions::default()),
        (
            vec![OfInst::GotoTable(1)],
            Instructions {
                goto: Some(1),
                ..Default::default()
            },
        ),
        (
            vec![
                OfInst::GotoTable(1),
                OfInst::ApplyActions(vec![OfAction::output(2)]),
            ],
            Instructions {
                goto: Some(1),
                ..Instructions::apply(vec![output(2)])
            },
        ),
        (
            vec![OfInst::ClearActions],
            Instructions {
                clear: true,
                ..Default::default()
            },
        ),
    ];
    for _ in 0..3 {
        for (insts, want) in &kinds {
            assert_eq!(*convert(insts.clone()), *want, "{insts:?}");
        }
    }
    assert_ne!(Instructions::apply(vec![]), Instructions::default());
}

/// Set-field prerequisites are read from the match's fields: an exact eth_type allows
/// an IPv4 set-field, none refuses it, as before.
#[test]
fn set_field_prerequisites_follow_the_match() {
    let ft = tables();
    let set_ip = OfAction::set_field(OxmField::Ipv4Dst, 0x0a00_0001).unwrap();
    let with = |m: OfMatch| {
        ofproto::convert_flow_mod(
            &FlowMod::add(0, 10, m, vec![OfInst::ApplyActions(vec![set_ip.clone()])]),
            &ft,
        )
        .map(|_| ())
    };
    let ip = OfMatch::new(vec![OxmTlv::in_port(1), OxmTlv::eth_type(0x0800)]);
    assert_eq!(with(ip), Ok(()));
    let arp = OfMatch::new(vec![OxmTlv::eth_type(0x0806)]);
    assert!(with(arp).is_err());
    assert!(with(in_port(1)).is_err());
}
