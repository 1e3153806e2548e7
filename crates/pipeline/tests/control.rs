//! What the control plane relies on to never hang: gotos only go forward on every path
//! into the tables, transactions apply whole or leave exactly what was there, replaced
//! versions are freed on the control plane only, and packet-ins are limited per port
//! before they are queued.

mod common;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{frame, PktSpec, Recorder, L3};
use ofproto::{OfFlowTables, OfTransaction};
use openflow::consts::FlowModFlags;
use openflow::error::BadInstructionCode;
use openflow::messages::{FlowMod, FlowModCommand as OfFlowModCommand};
use openflow::{Action as OfAction, ErrorCode, Instruction as OfInst, Match as OfMatch, OxmTlv};
use packet::{extract, VecBuf};
use pipeline::group::OFPG_ANY;
use pipeline::meter::{Band, BandKind};
use pipeline::ports::{OFPP_ANY, OFPP_CONTROLLER};
use pipeline::{
    Action, Bucket, FlowFlags, FlowModReq, FlowTables, GroupModReq, GroupType, Instructions, Match,
    MatchField, MissPolicy, PipelineConfig, PipelineError, PortInfo,
};
use pipeline::{
    FlowModCommand, GroupModCommand, MeterFlags, MeterModCommand, MeterModReq, OFPTT_ALL,
};
use proptest::prelude::*;

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

fn pkt() -> Vec<u8> {
    frame(&PktSpec {
        dst: 0x0200_0000_0002,
        src: 0x0200_0000_0001,
        vlan: None,
        l3: L3::Ipv4 {
            src: 0x0a00_0001,
            dst: 0x0a00_0002,
            proto: 17,
            ttl: 64,
            sport: 1000,
            dport: 53,
        },
    })
}

/// Runs `n` packets from `in_p` through the current version with worker context 0;
/// returns the ports they went out of (all packets together).
fn send(ft: &FlowTables, in_p: u32, n: usize) -> Vec<u32> {
    let pl = ft.current();
    let mut ctx = ft.worker_context(0);
    let mut rec = Recorder::default();
    for _ in 0..n {
        let f = pkt();
        let mut b = VecBuf::new(&f);
        let mut k = extract(&f, in_p);
        pl.process(&mut b, &mut k, &mut ctx, &mut rec);
    }
    rec.outputs.iter().map(|o| o.0).collect()
}

/// Like [`send`]; returns the (table, uid) of every entry hit.
fn send_hits(ft: &FlowTables, in_p: u32, n: usize) -> Vec<(u8, u64)> {
    let pl = ft.current();
    let mut ctx = ft.worker_context(0);
    let mut rec = Recorder::default();
    for _ in 0..n {
        let f = pkt();
        let mut b = VecBuf::new(&f);
        let mut k = extract(&f, in_p);
        pl.process(&mut b, &mut k, &mut ctx, &mut rec);
    }
    rec.hits
}

/// Everything flow stats can tell about every entry, sorted: what must not change when a
/// change is refused or rolled back.
type EntryState = (
    u8,
    u64,
    u16,
    Vec<MatchField>,
    String,
    u64,
    u16,
    u16,
    u16,
    Duration,
    u64,
    u64,
);

fn state(ft: &mut FlowTables) -> Vec<EntryState> {
    let mut v: Vec<EntryState> = ft
        .flow_counts(OFPTT_ALL, &Match::any(), 0, 0, OFPP_ANY, OFPG_ANY)
        .unwrap()
        .into_iter()
        .map(|c| {
            let e = c.entry;
            (
                c.table_id,
                e.uid,
                e.priority,
                e.match_.fields().to_vec(),
                format!("{:?}", e.instructions),
                e.cookie,
                e.idle_timeout,
                e.hard_timeout,
                e.flags.bits(),
                e.created,
                c.packets,
                c.bytes,
            )
        })
        .collect();
    v.sort_by_key(|e| (e.0, e.1));
    v
}

fn goto(t: u8) -> Vec<OfInst> {
    vec![OfInst::GotoTable(t)]
}

fn bad_table_id(e: PipelineError) {
    assert_eq!(
        e.code(),
        ErrorCode::BadInstruction(BadInstructionCode::BadTableId),
        "{e}"
    );
}

/// The reproduction: table 0 goes to table 1, table 1 outputs; then gotos that
/// would go backward or to the same table, on every path, are refused and change nothing,
/// and the packets keep going where they went.
#[test]
fn backward_and_self_gotos_are_refused_on_every_path() {
    let mut ft = tables();
    ft.flow_mod(&FlowMod::add(0, 1, OfMatch::any(), goto(1)), s(0))
        .unwrap();
    ft.flow_mod(
        &FlowMod::add(
            1,
            1,
            OfMatch::any(),
            vec![OfInst::ApplyActions(vec![OfAction::output(2)])],
        ),
        s(0),
    )
    .unwrap();
    ft.publish();
    assert_eq!(send(&ft, 1, 1), vec![2]);
    let version = ft.published_version();
    let before = state(&mut ft);

    // MODIFY to all tables, empty match: table 1's entry would go to itself.
    let mut all = FlowMod::add(OFPTT_ALL, 0, OfMatch::any(), goto(1));
    all.command = OfFlowModCommand::Modify;
    bad_table_id(ft.flow_mod(&all, s(1)).unwrap_err());
    // The same to table 2: table 0 could, table 1 could, but nothing may be left half done.
    let mut all2 = all.clone();
    all2.instructions = goto(2);
    // Table 1's entry may go to 2 (forward) and table 0's too: accepted only if every
    // table holding a selected entry goes forward; here both do.
    // A goto to 1 from all: refused; a MODIFY_STRICT to all tables the same.
    let mut strict = FlowMod::add(OFPTT_ALL, 1, OfMatch::any(), goto(1));
    strict.command = OfFlowModCommand::ModifyStrict;
    bad_table_id(ft.flow_mod(&strict, s(1)).unwrap_err());
    // MODIFY and MODIFY_STRICT on table 1 itself.
    let mut one = FlowMod::add(1, 1, OfMatch::any(), goto(1));
    one.command = OfFlowModCommand::Modify;
    bad_table_id(ft.flow_mod(&one, s(1)).unwrap_err());
    one.command = OfFlowModCommand::ModifyStrict;
    bad_table_id(ft.flow_mod(&one, s(1)).unwrap_err());
    // ADD backward and to itself, through the wire conversion and as a request built
    // directly (the path the profile and tests use).
    bad_table_id(
        ft.flow_mod(&FlowMod::add(2, 5, OfMatch::any(), goto(1)), s(1))
            .unwrap_err(),
    );
    let direct = FlowModReq::add(
        1,
        9,
        Match::any(),
        Instructions {
            goto: Some(1),
            ..Default::default()
        },
    );
    bad_table_id(ft.apply_flow_mod(direct.clone(), s(1)).unwrap_err());
    let mut direct_mod = direct.clone();
    direct_mod.command = FlowModCommand::Modify;
    direct_mod.table_id = OFPTT_ALL;
    bad_table_id(ft.apply_flow_mod(direct_mod, s(1)).unwrap_err());
    // A bundle-shaped transaction: a good change, then the loop.
    {
        let mut tx = ft.transaction(s(1));
        tx.of_flow_mod(&FlowMod::add(2, 5, in_port(3), goto(3)))
            .unwrap();
        let (i, e) = tx.of_flow_mod(&all).unwrap_err();
        assert_eq!(i, 1);
        bad_table_id(e);
        let (i, _) = tx.commit().unwrap_err();
        assert_eq!(i, 1);
    }
    assert_eq!(state(&mut ft), before, "nothing changed");
    ft.publish();
    assert_eq!(ft.published_version(), version, "nothing to publish");
    assert_eq!(send(&ft, 1, 1), vec![2], "traffic goes on");

    // Forward from every table holding a selected entry: accepted.
    ft.flow_mod(&all2, s(2)).unwrap();
    ft.publish();
    assert!(send(&ft, 1, 1).is_empty(), "both entries now go to table 2");
}

/// Misses that go to the next table and gotos that go forward never revisit a table, so
/// the number of lookups is at most the number of tables.
#[test]
fn a_walk_visits_each_table_at_most_once() {
    let mut ft = tables();
    for t in 0..4 {
        ft.set_miss_policy(t, MissPolicy::GotoNext).unwrap();
    }
    ft.flow_mod(&FlowMod::add(1, 1, OfMatch::any(), goto(3)), s(0))
        .unwrap();
    ft.publish();
    let pl = ft.current();
    let mut ctx = ft.worker_context(0);
    let f = pkt();
    let v = pl.process(
        &mut VecBuf::new(&f),
        &mut extract(&f, 1),
        &mut ctx,
        &mut Recorder::default(),
    );
    assert_eq!((v.lookups, v.action_errors), (3, 0), "tables 0, 1, 3");
}

// ---- transactions ---------------------------------------------------------------------

#[derive(Clone, Debug)]
struct FlowGen {
    table: u8,
    priority: u16,
    port: u32,
    cookie: u64,
    idle: u16,
    hard: u16,
    send_flow_rem: bool,
    out: u32,
}

fn arb_flow() -> impl Strategy<Value = FlowGen> {
    (
        0u8..3,
        1u16..4,
        1u32..=4,
        any::<u64>(),
        0u16..3,
        0u16..3,
        any::<bool>(),
        1u32..=4,
    )
        .prop_map(
            |(table, priority, port, cookie, idle, hard, send_flow_rem, out)| FlowGen {
                table,
                priority,
                port,
                cookie,
                idle: idle * 100,
                hard: hard * 100,
                send_flow_rem,
                out,
            },
        )
}

fn flow_req(g: &FlowGen, command: FlowModCommand) -> FlowModReq {
    let mut insts = Instructions::apply(vec![Action::output(g.out)]);
    if g.table < 2 {
        insts.goto = Some(g.table + 1);
    }
    FlowModReq {
        command,
        cookie: g.cookie,
        cookie_mask: if command == FlowModCommand::Add {
            0
        } else {
            u64::MAX
        },
        idle_timeout: g.idle,
        hard_timeout: g.hard,
        flags: if g.send_flow_rem {
            FlowFlags::SEND_FLOW_REM
        } else {
            FlowFlags::empty()
        },
        ..FlowModReq::add(
            g.table,
            g.priority,
            Match::exact(&[(packet::Field::InPort, g.port.into())]),
            insts,
        )
    }
}

#[derive(Clone, Debug)]
enum Op {
    Add(FlowGen),
    /// ADD of an existing entry's (priority, match) with RESET_COUNTS.
    Replace(usize),
    Modify(usize, u32),
    Delete(usize),
    DeleteAll(u8),
    Group(u32),
    Meter(u32),
    MissPolicy(u8),
    Port(u32),
    /// Deletes the group or meter the flow on port 4 uses: the flow goes too.
    DeleteGroup,
    DeleteMeter,
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        arb_flow().prop_map(Op::Add),
        (0usize..64).prop_map(Op::Replace),
        ((0usize..64), 1u32..=4).prop_map(|(i, o)| Op::Modify(i, o)),
        (0usize..64).prop_map(Op::Delete),
        (0u8..3).prop_map(Op::DeleteAll),
        (1u32..4).prop_map(Op::Group),
        (1u32..4).prop_map(Op::Meter),
        (0u8..3).prop_map(Op::MissPolicy),
        (1u32..=6).prop_map(Op::Port),
        Just(Op::DeleteGroup),
        Just(Op::DeleteMeter),
    ]
}

fn meter_add(id: u32) -> MeterModReq {
    MeterModReq {
        command: MeterModCommand::Add,
        flags: MeterFlags::PKTPS,
        meter_id: id,
        bands: vec![Some(Band {
            kind: BandKind::Drop,
            rate: 1000,
            burst: 0,
        })],
    }
}

/// Applies `op` (chosen against the entries in `flows`) in `tx`: one change each.
fn apply_op(
    tx: &mut pipeline::Transaction<'_>,
    flows: &[FlowGen],
    op: &Op,
) -> Result<(), (usize, PipelineError)> {
    let pick = |i: usize| flows.get(i % flows.len().max(1)).cloned();
    match op {
        Op::Add(g) => tx.flow_mod(flow_req(g, FlowModCommand::Add)),
        Op::Replace(i) => match pick(*i) {
            Some(g) => {
                let mut r = flow_req(&g, FlowModCommand::Add);
                r.flags |= FlowFlags::RESET_COUNTS;
                tx.flow_mod(r)
            }
            None => unreachable!("flows is never empty"),
        },
        Op::Modify(i, out) => match pick(*i) {
            Some(mut g) => {
                g.out = *out;
                let mut r = flow_req(&g, FlowModCommand::ModifyStrict);
                r.flags = FlowFlags::RESET_COUNTS;
                tx.flow_mod(r)
            }
            None => unreachable!("flows is never empty"),
        },
        Op::Delete(i) => match pick(*i) {
            Some(g) => tx.flow_mod(flow_req(&g, FlowModCommand::DeleteStrict)),
            None => unreachable!("flows is never empty"),
        },
        Op::DeleteAll(t) => tx.flow_mod(FlowModReq::delete(*t, Match::any())),
        Op::Group(id) => tx.group_mod(GroupModReq {
            command: GroupModCommand::Add,
            kind: GroupType::All,
            group_id: *id,
            buckets: vec![Bucket::new(vec![Action::output(2)])],
        }),
        Op::Meter(id) => tx.meter_mod(&meter_add(*id)),
        Op::MissPolicy(t) => tx.set_miss_policy(*t, MissPolicy::GotoNext),
        Op::DeleteGroup => tx.group_mod(GroupModReq {
            command: GroupModCommand::Delete,
            kind: GroupType::All,
            group_id: 10,
            buckets: vec![],
        }),
        Op::DeleteMeter => {
            let mut m = meter_add(10);
            m.command = MeterModCommand::Delete;
            tx.meter_mod(&m)
        }
        Op::Port(p) => {
            if *p > 4 {
                tx.set_port(PortInfo::new(*p))
            } else {
                tx.remove_port(*p)
            }
        }
    }
}

/// Groups (id, definition, packets), meters (id, packets in), ports, miss policies.
type Others = (Vec<(u32, String, u64)>, Vec<(u32, u64)>, Vec<u32>, String);

/// The group, meter and port state a rollback must restore.
fn others(ft: &mut FlowTables) -> Others {
    let ids: Vec<u32> = ft.groups().map(|g| g.id).collect();
    let groups = ids
        .into_iter()
        .map(|id| {
            let g = ft.groups().find(|g| g.id == id).unwrap().clone();
            let c = ft.group_counts(id).unwrap();
            (id, format!("{:?}{:?}", g.kind, g.buckets), c.packets)
        })
        .collect();
    let mids: Vec<u32> = ft.meters().map(|m| m.id).collect();
    let meters = mids
        .into_iter()
        .map(|id| (id, ft.meter_counts(id).unwrap().packets_in))
        .collect();
    let ports = ft.ports().iter().map(|p| p.port_no).collect();
    let pl = ft.current();
    let miss = format!("{:?}", pl.tables.iter().map(|t| t.miss).collect::<Vec<_>>());
    (groups, meters, ports, miss)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random flows (with a group and a meter in use), counters advanced by real packets,
    /// then a transaction of random changes that is refused part way: every entry keeps
    /// its uid, cookie, flags, timeouts, install time and counters, groups and meters
    /// keep theirs, nothing is published, and counting goes on where it was. The same
    /// changes without the refusal publish exactly one version.
    #[test]
    fn a_refused_transaction_leaves_exactly_what_was_there(
        flows in proptest::collection::vec(arb_flow(), 1..24),
        ops in proptest::collection::vec(arb_op(), 0..24),
        traffic in proptest::collection::vec((1u32..=4, 1usize..4), 1..8),
        fail_at_end in any::<bool>(),
    ) {
        let mut ft = tables();
        ft.apply_group_mod(GroupModReq {
            command: GroupModCommand::Add,
            kind: GroupType::All,
            group_id: 10,
            buckets: vec![Bucket::new(vec![Action::output(3)])],
        }, s(0)).unwrap();
        ft.apply_meter_mod(&meter_add(10), s(0)).unwrap();
        let mut g = FlowModReq::add(
            0,
            100,
            Match::exact(&[(packet::Field::InPort, 4)]),
            Instructions::apply(vec![Action::Group(10)]),
        );
        Arc::make_mut(&mut g.instructions).meter = Some(10);
        ft.apply_flow_mod(g, s(0)).unwrap();
        for (i, f) in flows.iter().enumerate() {
            ft.apply_flow_mod(flow_req(f, FlowModCommand::Add), s(i as u64)).unwrap();
            // Some in their own versions, so entries sit in several levels.
            if i % 5 == 0 {
                ft.publish();
            }
        }
        ft.publish();
        for &(port, n) in &traffic {
            send(&ft, port, n);
        }
        let version = ft.published_version();
        let entries = state(&mut ft);
        let rest = others(&mut ft);
        let next_uid_probe = {
            // The uid the next ADD gets, seen through a throwaway transaction.
            let mut tx = ft.transaction(s(50));
            tx.flow_mod(FlowModReq::add(3, 1, Match::any(), Instructions::default())).unwrap();
            let uid = tx.tables().entries(3).map(|e| e.uid).max().unwrap();
            tx.abort();
            uid
        };
        {
            let mut tx = ft.transaction(s(60));
            let mut first_refusal = None;
            for op in &ops {
                if let Err(r) = apply_op(&mut tx, &flows, op) {
                    first_refusal.get_or_insert(r);
                }
            }
            // After a refusal the transaction takes no more changes.
            prop_assert_eq!(tx.len(), first_refusal.map_or(ops.len(), |(i, _)| i + 1));
            // Refused: a backward goto (at the end, or first so the rest is not applied).
            let bad = FlowModReq::add(2, 1, Match::any(), Instructions { goto: Some(1), ..Default::default() });
            if fail_at_end {
                let r = tx.flow_mod(bad);
                prop_assert_eq!(r.is_err(), true);
                // The first refusal is the one reported, with its index.
                let expected = first_refusal
                    .unwrap_or((ops.len(), PipelineError::GotoBackward { from: 2, to: 1 }));
                prop_assert_eq!(tx.commit().unwrap_err(), expected);
            } else {
                drop(tx);
            }
        }
        prop_assert_eq!(state(&mut ft), entries.clone());
        prop_assert_eq!(others(&mut ft), rest);
        prop_assert_eq!(ft.published_version(), version);
        ft.publish();
        prop_assert_eq!(ft.published_version(), version, "a rollback leaves nothing to publish");
        // Uids continue where they were.
        {
            let mut tx = ft.transaction(s(50));
            tx.flow_mod(FlowModReq::add(3, 1, Match::any(), Instructions::default())).unwrap();
            prop_assert_eq!(tx.tables().entries(3).map(|e| e.uid).max().unwrap(), next_uid_probe);
        }
        // Counting goes on in the entries as they were: each entry's count moves by the
        // packets that hit it.
        let mut hits: std::collections::BTreeMap<(u8, u64), u64> = Default::default();
        for &(port, n) in &traffic {
            for h in send_hits(&ft, port, n) {
                *hits.entry(h).or_default() += 1;
            }
        }
        let after = state(&mut ft);
        prop_assert_eq!(after.len(), entries.len());
        for (a, b) in after.iter().zip(entries.iter()) {
            let n = hits.get(&(b.0, b.1)).copied().unwrap_or(0);
            prop_assert_eq!(a.10, b.10 + n, "entry {:?}", b);
        }
        // And the same changes committed publish exactly one version (or none if they
        // changed nothing).
        let mut tx = ft.transaction(s(70));
        for op in &ops {
            let _ = apply_op(&mut tx, &flows, op);
        }
        match tx.commit() {
            Ok(c) => {
                // One version, or none when the changes changed nothing (a delete that
                // matched nothing).
                prop_assert!(c.version == version + 1 || c.version == version);
                prop_assert_eq!(ft.published_version(), c.version);
            }
            Err(_) => prop_assert_eq!(ft.published_version(), version),
        }
    }
}

/// A batch touching several tables, groups, meters and ports becomes visible as one
/// version, and only at commit.
#[test]
fn a_committed_transaction_publishes_one_version() {
    let mut ft = tables();
    let handle = ft.handle();
    let v = ft.published_version();
    let mut tx = ft.transaction(s(1));
    tx.group_mod(GroupModReq {
        command: GroupModCommand::Add,
        kind: GroupType::All,
        group_id: 1,
        buckets: vec![Bucket::new(vec![Action::output(3)])],
    })
    .unwrap();
    tx.meter_mod(&meter_add(1)).unwrap();
    // Uses the group added just before, in the same transaction.
    tx.of_flow_mod(&FlowMod::add(
        1,
        1,
        OfMatch::any(),
        vec![OfInst::ApplyActions(vec![OfAction::Group(1)])],
    ))
    .unwrap();
    tx.of_flow_mod(&FlowMod::add(0, 1, OfMatch::any(), goto(1)))
        .unwrap();
    tx.set_port(PortInfo::new(9)).unwrap();
    tx.set_miss_policy(2, MissPolicy::GotoNext).unwrap();
    assert_eq!(handle.load().version, v, "nothing visible before commit");
    let c = tx.commit().unwrap();
    assert_eq!(c.version, v + 1);
    assert_eq!(handle.published_version(), v + 1);
    assert_eq!(handle.load().version, v + 1);
    assert_eq!(send(&ft, 1, 1), vec![3]);
}

/// A worker holding a version while the control plane replaces it does not free it when
/// it lets go: only `reclaim` on the control plane does.
#[test]
fn replaced_versions_are_freed_by_reclaim_not_by_the_worker() {
    let mut ft = tables();
    ft.flow_mod(
        &FlowMod::add(
            0,
            1,
            OfMatch::any(),
            vec![OfInst::ApplyActions(vec![OfAction::output(2)])],
        ),
        s(0),
    )
    .unwrap();
    let v1 = ft.publish();
    let handle = ft.handle();
    assert_eq!(handle.published_version(), v1);
    let loaded = Arc::new(Barrier::new(2));
    let replaced = Arc::new(Barrier::new(2));
    let worker = {
        let (handle, loaded, replaced) = (handle.clone(), loaded.clone(), replaced.clone());
        std::thread::spawn(move || {
            // A burst's guard (arc-swap's cheap load: a debt, not a count).
            let guard = handle.load();
            let weak = Arc::downgrade(&*guard);
            assert_eq!(guard.version, v1);
            loaded.wait();
            replaced.wait();
            // The control plane published meanwhile: the worker acknowledges a newer one.
            assert!(handle.published_version() > v1);
            drop(guard);
            // Dropping the guard was not the last reference.
            assert_eq!(weak.strong_count(), 1, "the control plane still holds it");
            weak
        })
    };
    loaded.wait();
    ft.flow_mod(
        &FlowMod::add(
            0,
            2,
            OfMatch::any(),
            vec![OfInst::ApplyActions(vec![OfAction::output(3)])],
        ),
        s(0),
    )
    .unwrap();
    let v2 = ft.publish();
    assert_eq!(ft.published_version(), v2);
    assert_eq!(ft.versions_held(), 1, "held by the worker");
    assert!(!ft.is_quiescent());
    replaced.wait();
    let weak = worker.join().unwrap();
    assert_eq!(weak.strong_count(), 1);
    assert!(ft.is_quiescent());
    assert_eq!(weak.strong_count(), 0, "is_quiescent reclaimed it");
    assert_eq!(ft.reclaim(), 0);
    assert_eq!(ft.versions_held(), 0);
    assert_eq!(handle.load().version, v2);
}

#[test]
fn reclaim_frees_a_version_released_by_its_last_holder() {
    let mut ft = tables();
    let held = ft.handle().load_full();
    let weak = Arc::downgrade(&held);
    ft.set_miss_policy(0, MissPolicy::GotoNext).unwrap();
    ft.publish();
    drop(held);
    assert_eq!(weak.strong_count(), 1, "not freed by the holder's drop");
    assert_eq!(ft.reclaim(), 1);
    assert_eq!(weak.strong_count(), 0);
}

// ---- packet-in limits -----------------------------------------------------------------

/// A flood to CONTROLLER from one port: at most burst + rate x time reach the queue, the
/// rest are counted per port without a record being built, and another port's
/// packet-ins still get through.
#[test]
fn packet_ins_are_limited_per_port_before_the_queue() {
    let mut ft = FlowTables::new(PipelineConfig {
        n_tables: 1,
        packet_in_rate: 100,
        packet_in_burst: 20,
        packet_in_capacity: 4096,
        ..Default::default()
    });
    for p in 1..=3 {
        ft.set_port(PortInfo::new(p));
    }
    ft.set_miss_policy(0, MissPolicy::Controller { max_len: 64 })
        .unwrap();
    ft.publish();
    let pl = ft.current();
    let q = ft.packet_in_queue();
    let mut ctx = ft.worker_context(0);
    let f = pkt();
    let run = |ctx: &mut pipeline::WorkerContext, port: u32| {
        pl.process(
            &mut VecBuf::new(&f),
            &mut extract(&f, port),
            ctx,
            &mut Recorder::default(),
        )
    };
    // One second of flood from port 1, 1000 packets per 10 ms step.
    let mut limited = 0u64;
    for step in 0..=100u64 {
        ctx.now_ns = 1_000_000_000 + step * 10_000_000;
        for _ in 0..1000 {
            limited += u64::from(run(&mut ctx, 1).packet_ins_limited);
        }
    }
    let queued = q.len() as u64;
    assert_eq!(queued, 20 + 100, "burst + one second of rate");
    assert_eq!(queued + limited, 101_000);
    // Port 2 still gets its packet-ins through, port 1 does not.
    assert_eq!(run(&mut ctx, 2).packet_ins, 1);
    assert_eq!(run(&mut ctx, 1).packet_ins_limited, 1);
    limited += 1;
    assert_eq!(q.len() as u64, queued + 1);
    assert_eq!(ft.packet_in_limited(), vec![(1, limited)]);
    assert_eq!(q.dropped(), 0, "nothing reached a full queue");
    // The control plane drains a bounded number per call.
    assert_eq!(q.pop_batch(50).len(), 50);
    assert_eq!(q.len() as u64, queued + 1 - 50);
    let rest = q.pop_batch(1000);
    assert_eq!(rest.len() as u64, queued + 1 - 50);
    assert!(rest.iter().any(|r| r.in_port == 2));
}

/// With the limit off (rate 0) a full queue still refuses before building the record,
/// and counts.
#[test]
fn a_full_queue_counts_without_building_the_record() {
    let mut ft = FlowTables::new(PipelineConfig {
        n_tables: 1,
        packet_in_rate: 0,
        packet_in_capacity: 8,
        ..Default::default()
    });
    ft.set_port(PortInfo::new(1));
    let mut fm = FlowMod::add(
        0,
        1,
        OfMatch::any(),
        vec![OfInst::ApplyActions(vec![OfAction::output(
            OFPP_CONTROLLER,
        )])],
    );
    fm.flags = FlowModFlags::empty();
    ft.flow_mod(&fm, s(0)).unwrap();
    ft.publish();
    let pl = ft.current();
    let mut ctx = ft.worker_context(0);
    let f = pkt();
    for _ in 0..20 {
        pl.process(
            &mut VecBuf::new(&f),
            &mut extract(&f, 1),
            &mut ctx,
            &mut Recorder::default(),
        );
    }
    let q = ft.packet_in_queue();
    assert_eq!((q.len(), q.dropped()), (8, 12));
    assert!(ft.packet_in_limited().is_empty());
}
