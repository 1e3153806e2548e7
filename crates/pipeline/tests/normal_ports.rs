//! NORMAL's port decisions precomputed when the ports change (per-VLAN flood lists, one
//! descriptor per port for a learned unicast address) against the same decisions taken
//! from each port's `PortInfo` the slow way, and a port change taking effect at once.

mod common;

use common::{frame, run_compiled, PktSpec, L3};
use mac_learning::{Egress, MacTable, VlanPolicy};
use pipeline::normal::{Form, Normal, NormalPlan};
use pipeline::{FlowTables, MissPolicy, PipelineConfig, PortConfig, PortInfo, PortSet};
use proptest::prelude::*;

fn form(e: Egress) -> Form {
    match e {
        Egress::Untagged => None,
        Egress::Tagged(v) => Some(v),
    }
}

/// Every (port, form) NORMAL sends to, from the `PortInfo`s alone.
fn reference(ports: &[PortInfo], plan: &NormalPlan, in_port: u32) -> Vec<(u32, Form)> {
    let mut sorted = ports.to_vec();
    sorted.sort_by_key(|p| p.port_no);
    sorted.dedup_by_key(|p| p.port_no);
    match plan.known {
        Some(p) if p == in_port => vec![],
        Some(p) => match sorted.iter().find(|i| i.port_no == p) {
            Some(i) if i.forwards() => i
                .vlan
                .egress(plan.vlan)
                .map(|e| (p, form(e)))
                .into_iter()
                .collect(),
            Some(_) => vec![],
            None => vec![(p, plan.current)],
        },
        None => sorted
            .iter()
            .filter(|i| i.port_no != in_port && i.forwards() && !i.no_flood)
            .filter_map(|i| Some((i.port_no, form(i.vlan.egress(plan.vlan)?))))
            .collect(),
    }
}

fn port_strategy() -> impl Strategy<Value = PortInfo> {
    let number = prop::sample::select(vec![1u32, 2, 3, 4, 5, 6, 1023, 1024, 5000]);
    let policy = prop_oneof![
        Just(VlanPolicy::Trunk),
        (0u16..4).prop_map(VlanPolicy::Access),
        prop::collection::vec(0u16..4, 0..4).prop_map(|v| VlanPolicy::trunks(&v)),
    ];
    (number, policy, any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(port_no, vlan, no_fwd, down, no_flood)| {
            let mut p = PortInfo::new(port_no);
            p.vlan = vlan;
            p.no_flood = no_flood;
            if no_fwd {
                p.config = PortConfig::NO_FWD;
            }
            if down {
                p.config = PortConfig::PORT_DOWN;
            }
            p
        },
    )
}

proptest! {
    /// The flood lists and per-port descriptors decide as the `PortInfo`s do, for every
    /// plan: flooded or learned, on a known, unknown or ingress port, in any form.
    #[test]
    fn precomputed_decisions_match_port_infos(
        ports in prop::collection::vec(port_strategy(), 0..8),
        in_port in prop::sample::select(vec![1u32, 2, 3, 5000, 7]),
        known in prop::option::of(prop::sample::select(vec![1u32, 2, 3, 4, 1024, 5000, 8])),
        vlan in 0u16..5,
        current in prop::option::of(0u16..5),
    ) {
        let set = PortSet::new(ports.clone());
        let mac = MacTable::new(64, 300);
        let n = Normal { mac: &mac, ports: &set };
        let plan = NormalPlan { vlan, current, known };
        let mut got = Vec::new();
        n.for_each_output(&plan, in_port, |p, f| got.push((p, f)));
        let want = reference(&ports, &plan, in_port);
        prop_assert_eq!(&got, &want);
        if let Some(out) = n.unicast_as_is(&plan, in_port) {
            // Only for a learned address, and only when the frame leaves as it is.
            prop_assert!(known.is_some());
            let as_is: Vec<(u32, Form)> = out.map(|p| (p, current)).into_iter().collect();
            prop_assert_eq!(as_is, want);
        }
    }
}

fn pkt(src: u64, dst: u64) -> Vec<u8> {
    frame(&PktSpec {
        dst,
        src,
        vlan: None,
        l3: L3::Raw(0x88b5),
    })
}

fn access(port: u32, tag: u16) -> PortInfo {
    let mut p = PortInfo::new(port);
    p.vlan = VlanPolicy::Access(tag);
    p
}

fn sent(ft: &FlowTables, src: u64, dst: u64, in_port: u32) -> Vec<u32> {
    run_compiled(ft, &pkt(src, dst), in_port)
        .outputs
        .iter()
        .map(|x| x.0)
        .collect()
}

#[test]
fn a_port_joining_or_leaving_a_vlan_is_flooded_to_at_once() {
    let mut ft = FlowTables::new(PipelineConfig {
        n_tables: 1,
        ..Default::default()
    });
    ft.set_port(access(1, 10));
    ft.set_port(access(2, 10));
    ft.set_port(access(3, 20));
    ft.set_miss_policy(0, MissPolicy::Normal).unwrap();
    ft.publish();
    let (a, unknown) = (0x0200_0000_000a, 0x0200_0000_00ff);
    assert_eq!(sent(&ft, a, unknown, 1), vec![2]);
    // Port 3 moves to VLAN 10 and a new port 4 joins it: both flooded from the next frame.
    ft.set_port(access(3, 10));
    ft.set_port(access(4, 10));
    ft.publish();
    assert_eq!(sent(&ft, a, unknown, 1), vec![2, 3, 4]);
    // A trunk of VLANs 10 and 30 joins; port 2 leaves for VLAN 30.
    let mut trunk = PortInfo::new(5);
    trunk.vlan = VlanPolicy::trunks(&[10, 30]);
    ft.set_port(trunk);
    ft.set_port(access(2, 30));
    ft.publish();
    assert_eq!(sent(&ft, a, unknown, 1), vec![3, 4, 5]);
    // Flooding turned off on port 4, forwarding on port 3, port 5 removed.
    let mut quiet = access(4, 10);
    quiet.no_flood = true;
    ft.set_port(quiet);
    let mut blocked = access(3, 10);
    blocked.config = PortConfig::NO_FWD;
    ft.set_port(blocked);
    ft.remove_port(5);
    ft.publish();
    assert_eq!(sent(&ft, a, unknown, 1), Vec::<u32>::new());
}

#[test]
fn a_mac_moving_ports_is_relearned_within_the_same_second() {
    let mut ft = FlowTables::new(PipelineConfig {
        n_tables: 1,
        ..Default::default()
    });
    for p in 1..=3 {
        ft.set_port(PortInfo::new(p));
    }
    ft.set_miss_policy(0, MissPolicy::Normal).unwrap();
    ft.publish();
    let (a, b) = (0x0200_0000_000a, 0x0200_0000_000b);
    sent(&ft, a, 0xffff_ffff_ffff, 1);
    sent(&ft, b, 0xffff_ffff_ffff, 2);
    assert_eq!(sent(&ft, b, a, 2), vec![1]);
    // a shows up on port 3 (a VM migrated): the next frame to it goes there, without
    // waiting for the once-a-second refresh of steady addresses.
    sent(&ft, a, b, 3);
    assert_eq!(sent(&ft, b, a, 2), vec![3]);
}
