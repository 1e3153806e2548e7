//! Group semantics (select, fast failover, group-mod errors) and the action-set order.

#[path = "../../pipeline/tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::{frame, run_compiled, PktSpec, L3};
use ofproto::OfFlowTables;
use openflow::consts::{OFPG_ANY, OFPP_ANY};
use openflow::messages::{Bucket as OfBucket, GroupMod, GroupModCommand, GroupType};
use openflow::{Action as OfAction, Instruction as OfInst, Match as OfMatch};
use packet::{extract, Field};
use pipeline::{
    Action, FlowModReq, FlowTables, Instructions, Match, PipelineConfig, PipelineError, PortInfo,
};

/// The OpenFlow error a refusal answers with.
trait Code {
    fn code(self) -> openflow::ErrorCode;
}

impl Code for pipeline::PipelineError {
    fn code(self) -> openflow::ErrorCode {
        ofproto::error_code(self)
    }
}

fn tables() -> FlowTables {
    let mut ft = FlowTables::new(PipelineConfig {
        n_tables: 2,
        ..Default::default()
    });
    for p in 1..=6 {
        ft.set_port(PortInfo::new(p));
    }
    ft
}

fn bucket(weight: u16, watch_port: u32, actions: Vec<OfAction>) -> OfBucket {
    OfBucket {
        weight,
        watch_port,
        watch_group: OFPG_ANY,
        actions,
    }
}

fn gm(
    command: GroupModCommand,
    group_type: GroupType,
    group_id: u32,
    buckets: Vec<OfBucket>,
) -> GroupMod {
    GroupMod {
        command,
        group_type,
        group_id,
        buckets,
    }
}

fn tcp(sport: u16) -> Vec<u8> {
    frame(&PktSpec {
        dst: 0x0200_0000_0002,
        src: 0x0200_0000_0001,
        vlan: None,
        l3: L3::Ipv4 {
            src: 0x0a00_0001,
            dst: 0x0a00_0002,
            proto: 6,
            ttl: 64,
            sport,
            dport: 80,
        },
    })
}

fn to_group(ft: &mut FlowTables, g: u32) {
    ft.flow_mod(
        &openflow::messages::FlowMod::add(
            0,
            1,
            OfMatch::any(),
            vec![OfInst::WriteActions(vec![OfAction::Group(g)])],
        ),
        Duration::ZERO,
    )
    .unwrap();
    ft.publish();
}

fn out_ports(ft: &FlowTables, f: &[u8]) -> Vec<u32> {
    run_compiled(ft, f, 1).outputs.iter().map(|o| o.0).collect()
}

#[test]
fn select_is_deterministic_per_flow_and_spreads_flows() {
    let mut ft = tables();
    let buckets = (2..=5)
        .map(|p| bucket(1, OFPP_ANY, vec![OfAction::output(p)]))
        .collect();
    ft.group_mod(
        &gm(GroupModCommand::Add, GroupType::Select, 1, buckets),
        Duration::ZERO,
    )
    .unwrap();
    to_group(&mut ft, 1);
    let mut seen = std::collections::BTreeSet::new();
    for sport in 1000..1100 {
        let a = out_ports(&ft, &tcp(sport));
        assert_eq!(a.len(), 1);
        assert_eq!(a, out_ports(&ft, &tcp(sport)), "same flow, same bucket");
        seen.insert(a[0]);
    }
    assert_eq!(seen.len(), 4, "100 flows use all 4 buckets");
    // Weight 0 buckets are never chosen; dead watched buckets neither.
    let buckets = vec![
        bucket(0, OFPP_ANY, vec![OfAction::output(2)]),
        bucket(5, 3, vec![OfAction::output(3)]),
        bucket(5, 4, vec![OfAction::output(4)]),
    ];
    ft.group_mod(
        &gm(GroupModCommand::Modify, GroupType::Select, 1, buckets),
        Duration::ZERO,
    )
    .unwrap();
    let mut p4 = PortInfo::new(4);
    p4.live = false;
    ft.set_port(p4);
    ft.publish();
    for sport in 1000..1050 {
        assert_eq!(out_ports(&ft, &tcp(sport)), vec![3]);
    }
    let c = ft.group_counts(1).unwrap();
    assert_eq!(c.buckets.len(), 3);
    assert_eq!(c.buckets[1].0, 50);
    assert_eq!(c.packets, 250, "group totals survive a modify");
}

#[test]
fn fast_failover_picks_first_live_bucket() {
    let mut ft = tables();
    let buckets = vec![
        bucket(0, 2, vec![OfAction::output(2)]),
        bucket(0, 3, vec![OfAction::output(3)]),
        bucket(0, 4, vec![OfAction::output(4)]),
    ];
    ft.group_mod(
        &gm(GroupModCommand::Add, GroupType::FastFailover, 9, buckets),
        Duration::ZERO,
    )
    .unwrap();
    to_group(&mut ft, 9);
    assert_eq!(out_ports(&ft, &tcp(1)), vec![2]);
    let mut p2 = PortInfo::new(2);
    p2.live = false;
    ft.set_port(p2);
    ft.publish();
    assert_eq!(out_ports(&ft, &tcp(1)), vec![3]);
    let mut p3 = PortInfo::new(3);
    p3.config = pipeline::PortConfig::PORT_DOWN;
    ft.set_port(p3);
    ft.publish();
    assert_eq!(out_ports(&ft, &tcp(1)), vec![4]);
    ft.set_port(PortInfo::new(2));
    ft.publish();
    assert_eq!(out_ports(&ft, &tcp(1)), vec![2]);
}

#[test]
fn group_mod_errors() {
    let mut ft = tables();
    let z = Duration::ZERO;
    let one = || vec![bucket(0, OFPP_ANY, vec![OfAction::output(2)])];
    ft.group_mod(&gm(GroupModCommand::Add, GroupType::Indirect, 1, one()), z)
        .unwrap();
    let e = ft
        .group_mod(&gm(GroupModCommand::Add, GroupType::Indirect, 1, one()), z)
        .unwrap_err();
    assert_eq!(e, PipelineError::GroupExists(1));
    let e = ft
        .group_mod(
            &gm(GroupModCommand::Modify, GroupType::Indirect, 2, one()),
            z,
        )
        .unwrap_err();
    assert_eq!(e, PipelineError::UnknownGroup(2));
    let e = ft
        .group_mod(
            &gm(GroupModCommand::Add, GroupType::All, 0xffff_fff0, one()),
            z,
        )
        .unwrap_err();
    assert_eq!(e, PipelineError::InvalidGroupId(0xffff_fff0));
    // 2 -> 1, then 1 -> 2 would loop.
    let chain = |g| vec![bucket(0, OFPP_ANY, vec![OfAction::Group(g)])];
    ft.group_mod(&gm(GroupModCommand::Add, GroupType::All, 2, chain(1)), z)
        .unwrap();
    let e = ft
        .group_mod(&gm(GroupModCommand::Modify, GroupType::All, 1, chain(2)), z)
        .unwrap_err();
    assert_eq!(e, PipelineError::GroupLoop(1));
    assert_eq!(
        e.code(),
        openflow::ErrorCode::GroupModFailed(openflow::error::GroupModFailedCode::Loop)
    );
    let e = ft
        .group_mod(&gm(GroupModCommand::Add, GroupType::All, 3, chain(3)), z)
        .unwrap_err();
    assert_eq!(e, PipelineError::GroupLoop(3));
    let e = ft
        .group_mod(&gm(GroupModCommand::Add, GroupType::All, 4, chain(99)), z)
        .unwrap_err();
    assert_eq!(e, PipelineError::BadOutGroup(99));
    let e = ft
        .group_mod(&gm(GroupModCommand::Delete, GroupType::All, 1, vec![]), z)
        .unwrap_err();
    assert_eq!(e, PipelineError::ChainedGroup(1));
    let two = vec![bucket(0, OFPP_ANY, vec![]), bucket(0, OFPP_ANY, vec![])];
    let e = ft
        .group_mod(&gm(GroupModCommand::Add, GroupType::Indirect, 5, two), z)
        .unwrap_err();
    assert_eq!(e, PipelineError::InvalidGroupBuckets);
    assert_eq!(
        e.code(),
        openflow::ErrorCode::GroupModFailed(openflow::error::GroupModFailedCode::InvalidGroup)
    );
    // Weights on ALL and INDIRECT, a SELECT group without weights: INVALID_GROUP too.
    for (kind, weights) in [
        (GroupType::All, vec![1, 0]),
        (GroupType::Indirect, vec![1]),
        (GroupType::Select, vec![0, 0]),
        (GroupType::Select, vec![0]),
    ] {
        let buckets = weights
            .iter()
            .map(|&w| {
                let mut b = bucket(0, OFPP_ANY, vec![]);
                b.weight = w;
                b
            })
            .collect();
        let e = ft
            .group_mod(&gm(GroupModCommand::Add, kind, 6, buckets), z)
            .unwrap_err();
        assert_eq!(
            e,
            PipelineError::InvalidGroupBuckets,
            "{kind:?} {weights:?}"
        );
    }
    let unwatched = vec![bucket(0, OFPP_ANY, vec![])];
    let e = ft
        .group_mod(
            &gm(GroupModCommand::Add, GroupType::FastFailover, 5, unwatched),
            z,
        )
        .unwrap_err();
    assert_eq!(e, PipelineError::BadWatch);
    // Chained group output through ALL -> INDIRECT.
    to_group(&mut ft, 2);
    assert_eq!(out_ports(&ft, &tcp(1)), vec![2]);
    // Deleting an unknown group is not an error; ALL deletes everything.
    ft.group_mod(&gm(GroupModCommand::Delete, GroupType::All, 77, vec![]), z)
        .unwrap();
    let removed = ft
        .group_mod(
            &gm(
                GroupModCommand::Delete,
                GroupType::All,
                openflow::consts::OFPG_ALL,
                vec![],
            ),
            z,
        )
        .unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(ft.groups().count(), 0);
}

/// Write-actions given in reverse order still run as the spec orders the action set:
/// push VLAN before setting its VID, TTL decrement, set-field, queue, and a group that
/// takes precedence over the output.
#[test]
fn action_set_runs_in_spec_order() {
    let mut ft = tables();
    let mut set_list = vec![
        Action::output(3),
        Action::SetQueue(7),
        Action::SetField {
            field: Field::VlanVid,
            value: 0x1000 | 42,
        },
        Action::DecNwTtl,
        Action::PushVlan(0x8100),
    ];
    let write = |list: &Vec<Action>| {
        let mut set = pipeline::ActionSet::default();
        for a in list {
            set.write(a);
        }
        Box::new(pipeline::WriteActions {
            list: list.clone().into(),
            set,
        })
    };
    let insts = Instructions {
        write: Some(write(&set_list)),
        ..Default::default()
    };
    ft.apply_flow_mod(FlowModReq::add(0, 1, Match::any(), insts), Duration::ZERO)
        .unwrap();
    ft.publish();
    let f = tcp(1);
    let o = run_compiled(&ft, &f, 1);
    assert_eq!(o.outputs.len(), 1);
    let (port, queue, bytes) = &o.outputs[0];
    assert_eq!((*port, *queue), (3, Some(7)));
    let k = extract(bytes, 3);
    assert_eq!(k.vlan_vid(), 0x1000 | 42, "push before set-field");
    assert_eq!(k.eth_type(), 0x0800);
    assert_eq!(bytes[4 + 14 + 8], 63, "TTL decremented once");

    // A group in the set wins over the output.
    ft.group_mod(
        &gm(
            GroupModCommand::Add,
            GroupType::Indirect,
            1,
            vec![bucket(0, OFPP_ANY, vec![OfAction::output(5)])],
        ),
        Duration::ZERO,
    )
    .unwrap();
    set_list.push(Action::Group(1));
    let insts = Instructions {
        write: Some(write(&set_list)),
        ..Default::default()
    };
    ft.apply_flow_mod(FlowModReq::add(0, 1, Match::any(), insts), Duration::ZERO)
        .unwrap();
    ft.publish();
    let o = run_compiled(&ft, &f, 1);
    assert_eq!(o.outputs.iter().map(|x| x.0).collect::<Vec<_>>(), vec![5]);

    // Clear-actions in a later table empties the set; write-metadata is visible to the match.
    let mut ft = tables();
    let insts = Instructions {
        write: Some(write(&vec![Action::output(3)])),
        metadata: Some((0xab, 0xff)),
        goto: Some(1),
        ..Default::default()
    };
    ft.apply_flow_mod(FlowModReq::add(0, 1, Match::any(), insts), Duration::ZERO)
        .unwrap();
    let md = Match::exact(&[(Field::Metadata, 0xab)]);
    let insts = Instructions {
        clear: true,
        apply: Some(vec![Action::output(4)].into()),
        ..Default::default()
    };
    ft.apply_flow_mod(FlowModReq::add(1, 1, md, insts), Duration::ZERO)
        .unwrap();
    ft.publish();
    let o = run_compiled(&ft, &f, 1);
    assert_eq!(o.outputs.iter().map(|x| x.0).collect::<Vec<_>>(), vec![4]);
}

/// Outputs before an edit are emitted as snapshots of the packet at that point; the last
/// ones as final (shareable) buffers.
#[test]
fn outputs_snapshot_before_edits() {
    let mut ft = tables();
    let apply = vec![
        Action::output(2),
        Action::SetField {
            field: Field::EthDst,
            value: 0x0200_0000_00ff,
        },
        Action::output(3),
        Action::output(4),
    ];
    ft.apply_flow_mod(
        FlowModReq::add(0, 1, Match::any(), Instructions::apply(apply)),
        Duration::ZERO,
    )
    .unwrap();
    ft.publish();
    let f = tcp(1);
    let pl = ft.current();
    let mut ctx = ft.worker_context(0);
    let mut b = packet::VecBuf::new(&f);
    let mut k = extract(&f, 1);
    let mut rec = common::Recorder::default();
    pl.process(&mut b, &mut k, &mut ctx, &mut rec);
    assert_eq!(rec.outputs.len(), 3);
    assert_eq!(rec.outputs[0].2, f, "port 2 got the original");
    assert_eq!(&rec.outputs[1].2[..6], &[2, 0, 0, 0, 0, 0xff]);
    assert_eq!(rec.finals, 2);
}
