//! NORMAL (learning, flooding, VLAN egress forms) and PACKET_OUT to TABLE.

#[path = "../../pipeline/tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::{frame, run_compiled, PktSpec, L3};
use mac_learning::VlanPolicy;
use ofproto::OfFlowTables;
use openflow::consts::{OFPP_CONTROLLER, OFPP_NORMAL, OFPP_TABLE};
use openflow::{Action as OfAction, Match as OfMatch};
use packet::{extract, VecBuf};
use pipeline::{
    Action, FlowModReq, FlowTables, Instructions, Match, MissPolicy, PipelineConfig, PortInfo,
};

fn pkt(src: u64, dst: u64, vlan: Option<u16>) -> Vec<u8> {
    frame(&PktSpec {
        dst,
        src,
        vlan,
        l3: L3::Raw(0x88b5),
    })
}

#[test]
fn normal_learns_floods_and_retags() {
    let mut ft = FlowTables::new(PipelineConfig {
        n_tables: 1,
        ..Default::default()
    });
    let mut access = PortInfo::new(1);
    access.vlan = VlanPolicy::Access(10);
    ft.set_port(access);
    ft.set_port(PortInfo::new(2)); // trunk
    let mut other = PortInfo::new(3);
    other.vlan = VlanPolicy::Access(20);
    ft.set_port(other);
    let mut access10 = PortInfo::new(4);
    access10.vlan = VlanPolicy::Access(10);
    ft.set_port(access10);
    ft.apply_flow_mod(
        FlowModReq::add(
            0,
            0,
            Match::any(),
            Instructions::apply(vec![Action::output(OFPP_NORMAL)]),
        ),
        Duration::ZERO,
    )
    .unwrap();
    ft.publish();
    let (a, b) = (0x0200_0000_000a, 0x0200_0000_000b);
    // Unknown destination from access port 1 (VLAN 10): flood to the trunk (tagged 10)
    // and to access port 4 (untagged), not to VLAN 20's port 3.
    let f = pkt(a, b, None);
    let o = run_compiled(&ft, &f, 1);
    let ports: Vec<u32> = o.outputs.iter().map(|x| x.0).collect();
    assert_eq!(ports, vec![2, 4]);
    let trunk = &o.outputs.iter().find(|x| x.0 == 2).unwrap().2;
    assert_eq!(extract(trunk, 2).vlan_vid(), 0x1000 | 10);
    let untagged = &o.outputs.iter().find(|x| x.0 == 4).unwrap().2;
    assert_eq!(untagged, &f);
    assert_eq!(o.final_bytes, f, "the packet is restored after re-tagging");
    // b answers from the trunk, tagged 10: a is known on port 1, output untagged there.
    let tagged = pkt(b, a, Some(10));
    let o = run_compiled(&ft, &tagged, 2);
    assert_eq!(o.outputs.len(), 1);
    assert_eq!(o.outputs[0].0, 1);
    let mut untagged = tagged.clone();
    untagged.drain(12..16);
    // A popped minimum-size frame keeps the Ethernet minimum (zero padding).
    if tagged.len() >= packet::action::MIN_FRAME_LEN {
        untagged.resize(untagged.len().max(packet::action::MIN_FRAME_LEN), 0);
    }
    assert_eq!(o.outputs[0].2, untagged);
    // Now b is known on the trunk.
    let o = run_compiled(&ft, &pkt(a, b, None), 1);
    assert_eq!(o.outputs.iter().map(|x| x.0).collect::<Vec<_>>(), vec![2]);
    // A table miss policy NORMAL does the same without an entry.
    let mut ft2 = FlowTables::new(PipelineConfig {
        n_tables: 1,
        ..Default::default()
    });
    ft2.set_port(PortInfo::new(1));
    ft2.set_port(PortInfo::new(2));
    ft2.set_miss_policy(0, MissPolicy::Normal).unwrap();
    ft2.publish();
    assert_eq!(run_compiled(&ft2, &pkt(a, b, None), 1).outputs.len(), 1);
}

#[test]
fn packet_out_to_table_runs_the_pipeline() {
    let mut ft = FlowTables::new(PipelineConfig {
        n_tables: 2,
        ..Default::default()
    });
    for p in 1..=3 {
        ft.set_port(PortInfo::new(p));
    }
    ft.flow_mod(
        &openflow::messages::FlowMod::add(
            0,
            1,
            OfMatch::any(),
            vec![openflow::Instruction::ApplyActions(vec![OfAction::output(
                3,
            )])],
        ),
        Duration::ZERO,
    )
    .unwrap();
    ft.publish();
    let actions = ofproto::convert_packet_out(
        OFPP_CONTROLLER,
        &[OfAction::output(2), OfAction::output(OFPP_TABLE)],
        &ft,
    )
    .unwrap();
    assert!(ofproto::convert_packet_out(0, &[], &ft).is_err());
    let f = pkt(1, 2, None);
    let mut b = VecBuf::new(&f);
    let mut k = extract(&f, OFPP_CONTROLLER);
    let mut rec = common::Recorder::default();
    let mut ctx = ft.worker_context(0);
    let v = ft
        .current()
        .packet_out(&actions, &mut b, &mut k, &mut ctx, &mut rec);
    let mut ports: Vec<u32> = rec.outputs.iter().map(|o| o.0).collect();
    ports.sort();
    assert_eq!(ports, vec![2, 3]);
    assert_eq!(v.lookups, 1);
}

/// Known unicast destinations, where NORMAL sends the frame as it is without planning every
/// port: the learned port gets it unchanged (also a port numbered past the dense port
/// index), and nothing goes out when the address sits on the ingress port, on a port that
/// does not forward, or on a port outside the frame's VLAN.
#[test]
fn normal_known_unicast_leaves_as_is() {
    let mut ft = FlowTables::new(PipelineConfig {
        n_tables: 1,
        ..Default::default()
    });
    for (p, vlan) in [(1, 10), (2, 10), (3, 20), (5000, 10), (6, 10)] {
        let mut info = PortInfo::new(p);
        info.vlan = VlanPolicy::Access(vlan);
        ft.set_port(info);
    }
    ft.set_miss_policy(0, MissPolicy::Normal).unwrap();
    ft.publish();
    let hosts: [(u64, u32); 5] = [
        (0x0200_0000_0001, 1),
        (0x0200_0000_0002, 2),
        (0x0200_0000_0003, 3),
        (0x0200_0000_5000, 5000),
        (0x0200_0000_0006, 6),
    ];
    // Everyone speaks once (to the broadcast address): all learned.
    for (mac, port) in hosts {
        run_compiled(&ft, &pkt(mac, 0xffff_ffff_ffff, None), port);
    }
    fn sent(ft: &FlowTables, src: u64, dst: u64, in_port: u32) -> Vec<u32> {
        let f = pkt(src, dst, None);
        let o = run_compiled(ft, &f, in_port);
        for x in &o.outputs {
            assert_eq!(x.2, f, "sent as it is");
        }
        o.outputs.iter().map(|x| x.0).collect()
    }
    let h = |i: usize| hosts[i].0;
    assert_eq!(sent(&ft, h(0), h(1), 1), vec![2]);
    assert_eq!(sent(&ft, h(1), h(0), 2), vec![1]);
    assert_eq!(sent(&ft, h(0), h(3), 1), vec![5000]);
    assert_eq!(sent(&ft, h(3), h(0), 5000), vec![1]);
    // A new host on port 1 talking to 0001, which is on port 1 too: nothing goes out.
    assert_eq!(sent(&ft, 0x0200_0000_0099, h(0), 1), Vec::<u32>::new());
    // 0003 was learned in VLAN 20: from VLAN 10 it is unknown, flooded in VLAN 10 only.
    let flood = sent(&ft, h(0), h(2), 1);
    assert!(!flood.contains(&3), "{flood:?}");
    assert!(flood.contains(&2), "{flood:?}");
    // A port that stops forwarding gets nothing, even with its host learned.
    let mut down = PortInfo::new(6);
    down.vlan = VlanPolicy::Access(10);
    down.config = pipeline::PortConfig::NO_FWD;
    ft.set_port(down);
    ft.publish();
    assert_eq!(sent(&ft, h(0), h(4), 1), Vec::<u32>::new());
}
