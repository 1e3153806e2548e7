//! The profile's flows are valid ovs-ofctl text, identify entries uniquely,
//! and follow the description.

use ferroflow_config::{
    InstanceConfig, MetadataConfig, MetadataMode, NetworkConfig, NetworkKind, PortConfig,
    OFPP_LOCAL,
};
use openflow::messages::FlowModCommand;
use vnet::{compile, react, table, Model, Role};

fn port(name: &str, ofport: u32) -> PortConfig {
    PortConfig {
        name: name.into(),
        devargs: format!("net_null_{name}"),
        ofport,
        tag: None,
        trunks: None,
        socket_mode: None,
        socket_owner: None,
        socket_group: None,
        ..Default::default()
    }
}

fn net(id: u32, name: &str, kind: NetworkKind) -> NetworkConfig {
    NetworkConfig {
        id,
        name: name.into(),
        kind,
        uplink: None,
        vlan: None,
        gateway: None,
        gateway_mac: None,
        prefixes: vec![],
        backbone_mac: None,
    }
}

fn inst(name: &str, network: u32, mac: &str, ip: &str, port: Option<&str>) -> InstanceConfig {
    InstanceConfig {
        name: name.into(),
        network,
        mac: mac.into(),
        addresses: vec![ip.parse().unwrap()],
        port: port.map(Into::into),
        host_mac: None,
    }
}

fn sample(
    mode: MetadataMode,
) -> (
    Vec<NetworkConfig>,
    Vec<InstanceConfig>,
    MetadataConfig,
    Vec<PortConfig>,
) {
    let ports = vec![
        port("a", 1),
        port("b", 2),
        port("c", 3),
        port("d", 4),
        port("e", 5),
        port("up", 10),
        port("local", OFPP_LOCAL),
    ];
    let mut normal = net(1, "default", NetworkKind::Normal);
    normal.gateway = Some("10.0.0.254".parse().unwrap());
    normal.uplink = Some("up".into());
    let mut private = net(2, "priv", NetworkKind::Private);
    private.prefixes = vec!["10.2.0.0/16".into()];
    private.uplink = Some("up".into());
    let mut vlan = net(3, "v100", NetworkKind::Vlan);
    vlan.vlan = Some(100);
    vlan.uplink = Some("up".into());
    let mut vnet_ = net(4, "vn", NetworkKind::Vnet);
    vnet_.uplink = Some("up".into());
    vnet_.backbone_mac = Some("02:bb:00:00:00:01".into());
    let mut remote = inst("r", 4, "02:00:00:00:04:09", "10.4.0.9", None);
    remote.host_mac = Some("02:bb:00:00:00:02".into());
    let instances = vec![
        inst("a", 1, "02:00:00:00:01:01", "10.0.0.1", Some("a")),
        inst("b", 1, "02:00:00:00:01:02", "10.0.0.2", Some("b")),
        inst("c", 2, "02:00:00:00:02:01", "10.2.0.1", Some("c")),
        inst("d", 3, "02:00:00:00:03:01", "10.3.0.1", Some("d")),
        inst("e", 4, "02:00:00:00:04:01", "10.4.0.1", Some("e")),
        remote,
    ];
    let md = MetadataConfig {
        mode,
        host_ip: "10.255.0.1".parse().unwrap(),
        host_mac: "02:00:00:00:ff:01".into(),
        host_port: 8775,
    };
    (vec![normal, private, vlan, vnet_], instances, md, ports)
}

#[test]
fn every_flow_parses_and_entries_are_unique() {
    for mode in [
        MetadataMode::PerConnection,
        MetadataMode::PerInstance,
        MetadataMode::Subnet,
    ] {
        let (n, i, md, p) = sample(mode);
        let m = Model::build(&n, &i, Some(&md), &p).expect("valid");
        let flows = compile(&m);
        assert!(flows.len() > 50, "{mode:?}: {} flows", flows.len());
        let mut seen = std::collections::HashSet::new();
        for f in &flows {
            flow_syntax::parse_flow_mod(&f.text, FlowModCommand::Add)
                .unwrap_or_else(|e| panic!("{mode:?}: {}: {e}", f.text));
            assert!(
                seen.insert((f.table, f.priority, f.match_.clone())),
                "{mode:?}: two flows for one entry: {}",
                f.text
            );
            assert!(
                table::NAMES.iter().any(|(t, _)| *t == f.table),
                "{}",
                f.text
            );
        }
        // Every instance port ends in a counted drop.
        for port in 1..=5 {
            assert!(flows.iter().any(|f| f.table == 0
                && f.match_ == format!("in_port={port}")
                && f.text.ends_with("actions=drop")
                && Role::of_cookie(f.cookie) == Some(Role::Spoof)));
        }
        // The vnet sends PBB to the remote instance's host.
        assert!(flows.iter().any(|f| f.table == table::SWITCH_VNET
            && f.text.contains("push_pbb:0x88e7")
            && f.text.contains("02:bb:00:00:00:02->eth_dst")));
    }
}

#[test]
fn ipv6_from_instances_cannot_advertise_routes_or_claim_other_macs() {
    let (n, i, md, p) = sample(MetadataMode::PerInstance);
    let m = Model::build(&n, &i, Some(&md), &p).unwrap();
    let flows = compile(&m);
    let find = |table: u8, priority: u16, match_: &str| {
        flows
            .iter()
            .find(|f| f.table == table && f.priority == priority && f.match_ == match_)
            .unwrap_or_else(|| panic!("no flow {priority} {match_}"))
    };
    // Instance a (port 1, default network, L2) and e (port 5, vnet).
    for (port, mac) in [(1, "02:00:00:00:01:01"), (5, "02:00:00:00:04:01")] {
        for ty in [134, 137] {
            let f = find(0, 229, &format!("in_port={port},icmp6,icmp_type={ty}"));
            assert!(f.text.ends_with("actions=drop"));
            assert_eq!(Role::of_cookie(f.cookie), Some(Role::Spoof));
        }
        for (ty, opt) in [(135, "nd_sll"), (136, "nd_tll")] {
            for lla in [mac, "00:00:00:00:00:00"] {
                let f = find(
                    0,
                    228,
                    &format!("in_port={port},dl_src={mac},icmp6,icmp_type={ty},{opt}={lla}"),
                );
                assert!(f.text.contains("goto_table:"), "{}", f.text);
            }
            let f = find(0, 227, &format!("in_port={port},icmp6,icmp_type={ty}"));
            assert!(f.text.ends_with("actions=drop"));
            assert_eq!(Role::of_cookie(f.cookie), Some(Role::Spoof));
        }
        // Above the L2 pass-through of the instance's MAC, which would let them through.
        find(0, 220, &format!("in_port={port},dl_src={mac}"));
    }
    // Networks without the L2 pass-through drop IPv6 anyway (the port's last drop).
    assert!(!flows
        .iter()
        .any(|f| f.match_.starts_with("in_port=3,") && f.match_.contains("icmp6")));
}

#[test]
fn per_connection_metadata_installs_a_flow_pair() {
    let (n, i, md, p) = sample(MetadataMode::PerConnection);
    let m = Model::build(&n, &i, Some(&md), &p).unwrap();
    // A TCP SYN from instance a (10.0.0.1:40000) to 169.254.169.254:80.
    let mut f = Vec::new();
    f.extend_from_slice(&[0x02, 0xfe, 0, 0, 1, 1]);
    f.extend_from_slice(&[0x02, 0, 0, 0, 1, 1]);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&[
        0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 169, 254, 169, 254,
    ]);
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&80u16.to_be_bytes());
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&[0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    let r = react(&m, Role::MetadataMiss.cookie(0), 1, &f).expect("the profile's");
    assert!(r.reinject, "{r:?}");
    assert_eq!(r.flows.len(), 2);
    assert!(r.flows[0].text.contains("tp_src=40000") && r.flows[0].text.contains("output:LOCAL"));
    assert!(r.flows[1].text.contains("tp_dst=40000") && r.flows[1].text.contains("output:1"));
    for fl in &r.flows {
        flow_syntax::parse_flow_mod(&fl.text, FlowModCommand::Add).unwrap();
    }
    // From a port without an instance: refused.
    let r = react(&m, Role::MetadataMiss.cookie(0), 10, &f).unwrap();
    assert!(r.flows.is_empty() && r.refused.is_some());
    // Not the profile's cookie: not its business.
    assert!(react(&m, 0x1234, 1, &f).is_none());
}

#[test]
fn bad_descriptions_name_the_field() {
    let (mut n, i, md, p) = sample(MetadataMode::PerInstance);
    n[2].vlan = None;
    let e = Model::build(&n, &i, Some(&md), &p).unwrap_err();
    assert_eq!(e.field, "networks[2].vlan");
    let (n, mut i, md, p) = sample(MetadataMode::PerInstance);
    i[1].port = Some("a".into());
    let e = Model::build(&n, &i, Some(&md), &p).unwrap_err();
    assert_eq!(e.field, "instances[1].port");
    let (n, mut i, md, p) = sample(MetadataMode::PerInstance);
    i[0].network = 99;
    assert_eq!(
        Model::build(&n, &i, Some(&md), &p).unwrap_err().field,
        "instances[0].network"
    );
    let (n, i, md, mut p) = sample(MetadataMode::PerInstance);
    p.pop();
    assert_eq!(
        Model::build(&n, &i, Some(&md), &p).unwrap_err().field,
        "metadata"
    );
}

/// The switch refuses a goto that does not go forward (the walk must end after one lookup
/// per table), so every stage of the profile only ever hands packets to a later one.
#[test]
fn every_goto_goes_forward() {
    for mode in [
        MetadataMode::PerConnection,
        MetadataMode::PerInstance,
        MetadataMode::Subnet,
    ] {
        let (n, i, md, p) = sample(mode);
        let m = Model::build(&n, &i, Some(&md), &p).expect("valid");
        let mut gotos = 0;
        for f in compile(&m) {
            let fm = flow_syntax::parse_flow_mod(&f.text, FlowModCommand::Add).unwrap();
            assert_eq!(fm.table_id, f.table, "{}", f.text);
            for inst in &fm.instructions {
                if let openflow::Instruction::GotoTable(g) = inst {
                    assert!(*g > f.table, "{mode:?}: backward goto: {}", f.text);
                    gotos += 1;
                }
            }
        }
        assert!(
            gotos > 10,
            "{mode:?}: the profile chains its stages ({gotos} gotos)"
        );
    }
}
