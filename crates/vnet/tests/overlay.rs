//! The vxlan and geneve network kinds: one tunnel port per peer host, the VNI set to the
//! network id before each output, head-end replication once per peer, decapsulated
//! packets taken into the network their VNI names, and the description checked.

use ferroflow_config::{InstanceConfig, NetworkConfig, NetworkKind, PortConfig};
use openflow::messages::FlowModCommand;
use vnet::{compile, table, Model};

/// A port as the description names it: its devargs are never handed to DPDK here (these
/// tests start no EAL, so there is no argument list to carry `--no-pci`).
fn port(name: &str, ofport: u32) -> PortConfig {
    PortConfig {
        name: name.into(),
        devargs: format!("net_null_{name}"),
        ofport,
        ..Default::default()
    }
}

fn net(id: u32, kind: NetworkKind) -> NetworkConfig {
    NetworkConfig {
        id,
        name: format!("n{id}"),
        kind,
        uplink: Some("up".into()),
        vlan: None,
        gateway: None,
        gateway_mac: None,
        prefixes: vec![],
        backbone_mac: None,
        local_ip: Some("192.0.2.1/24".into()),
        peers: vec![],
    }
}

fn inst(name: &str, network: u32, mac: &str, ip: &str, at: Result<&str, &str>) -> InstanceConfig {
    InstanceConfig {
        name: name.into(),
        network,
        mac: mac.into(),
        addresses: vec![ip.parse().unwrap()],
        ipv6: vec![],
        port: at.ok().map(Into::into),
        host_mac: None,
        host_ip: at.err().map(|h| h.parse().unwrap()),
        security_groups: vec![],
    }
}

fn sample() -> (Vec<NetworkConfig>, Vec<InstanceConfig>, Vec<PortConfig>) {
    let ports = vec![port("a", 1), port("b", 2), port("up", 10)];
    let nets = vec![net(5, NetworkKind::Vxlan), net(6, NetworkKind::Vxlan)];
    let instances = vec![
        inst("a", 5, "02:00:00:05:00:01", "10.5.0.1", Ok("a")),
        inst("r1", 5, "02:00:00:05:00:02", "10.5.0.2", Err("192.0.2.2")),
        inst("r2", 5, "02:00:00:05:00:03", "10.5.0.3", Err("192.0.2.3")),
        inst("r3", 5, "02:00:00:05:00:04", "10.5.0.4", Err("192.0.2.3")),
        inst("b", 6, "02:00:00:06:00:01", "10.5.0.1", Ok("b")),
        inst("r4", 6, "02:00:00:06:00:02", "10.5.0.2", Err("192.0.2.2")),
    ];
    (nets, instances, ports)
}

fn texts(m: &Model) -> Vec<String> {
    compile(m).into_iter().map(|f| f.text).collect()
}

#[test]
fn one_tunnel_port_per_peer_host_and_every_flow_parses() {
    let (n, i, p) = sample();
    let m = Model::build(&n, &i, None, &p).expect("valid");
    assert_eq!(m.peers.len(), 2, "{:?}", m.peers);
    let remotes: Vec<String> = m.peers.iter().map(|p| p.remote_ip.to_string()).collect();
    assert_eq!(remotes, ["192.0.2.2", "192.0.2.3"]);
    for peer in &m.peers {
        assert!(!p.iter().any(|q| q.ofport == peer.ofport));
        assert!(peer.name.len() < 16, "{}", peer.name);
        assert_eq!(peer.uplink, 10);
    }
    assert_ne!(m.peers[0].ofport, m.peers[1].ofport);
    // The same description numbers its peers the same way.
    let again = Model::build(&n, &i, None, &p).unwrap();
    assert_eq!(again.peers, m.peers);
    for f in compile(&m) {
        flow_syntax::parse_flow_mod(&f.text, FlowModCommand::Add)
            .unwrap_or_else(|e| panic!("{}: {e}", f.text));
    }
}

#[test]
fn vni_is_the_network_id_and_broadcast_goes_once_to_each_peer() {
    let (n, i, p) = sample();
    let m = Model::build(&n, &i, None, &p).unwrap();
    let (p2, p3) = (m.peers[0].ofport, m.peers[1].ofport);
    let t = texts(&m);
    let has = |s: &str| t.iter().any(|f| f.contains(s));
    let sw = table::SWITCH_TUNNEL;
    // Decapsulated with VNI 5 from either peer: network 5; VNI 6 only from the peer that has it.
    assert!(has(&format!(
        "in_port={p2},tun_id=0x5,actions=write_metadata:0x5/0xffffffff,goto_table:{sw}"
    )));
    assert!(has(&format!(
        "in_port={p3},tun_id=0x5,actions=write_metadata:0x5/0xffffffff,goto_table:{sw}"
    )));
    assert!(has(&format!("in_port={p2},tun_id=0x6,")));
    assert!(!has(&format!("in_port={p3},tun_id=0x6,")));
    // Any other VNI from a peer: dropped (not left to the bridge's own flows), once.
    for p in [p2, p3] {
        let drops = t
            .iter()
            .filter(|f| {
                f.contains("priority=150,") && f.ends_with(&format!("in_port={p},actions=drop"))
            })
            .count();
        assert_eq!(drops, 1, "{t:#?}");
    }
    // The underlay's own traffic reaches no instance.
    assert_eq!(
        t.iter()
            .filter(|f| f.contains("priority=140,") && f.ends_with("in_port=10,actions=drop"))
            .count(),
        1
    );
    // Unicast to a remote instance: to its host's tunnel with the network's VNI.
    assert!(has(&format!(
        "dl_dst=02:00:00:05:00:03,actions=set_field:0x5->tun_id,output:{p3}"
    )));
    assert!(has(&format!(
        "dl_dst=02:00:00:06:00:02,actions=set_field:0x6->tun_id,output:{p2}"
    )));
    // Flooding: the local instance and each peer host once.
    let flood5 = t
        .iter()
        .find(|f| f.contains(&format!("table={sw},priority=1,")) && f.contains("metadata=0x5/"))
        .expect("network 5's flood");
    assert!(
        flood5.ends_with(&format!(
            "actions=output:1,set_field:0x5->tun_id,output:{p2},set_field:0x5->tun_id,output:{p3}"
        )),
        "{flood5}"
    );
    // From a tunnel: the local instances only (split horizon).
    assert!(has(&format!(
        "metadata=0x5/0xffffffff,in_port={p3},actions=output:1"
    )));
    // ARP for a remote instance is answered here.
    assert!(has(
        "metadata=0x5/0xffffffff,arp,arp_op=1,arp_tpa=10.5.0.3,"
    ));
}

#[test]
fn the_description_is_checked() {
    let (n, i, p) = sample();
    let field =
        |n: &[NetworkConfig], i: &[InstanceConfig]| Model::build(n, i, None, &p).unwrap_err().field;
    let mut no_local = n.clone();
    no_local[0].local_ip = None;
    assert_eq!(field(&no_local, &i), "networks[0].local_ip");
    let mut bad_local = n.clone();
    bad_local[0].local_ip = Some("192.0.2.300/24".into());
    assert_eq!(field(&bad_local, &i), "networks[0].local_ip");
    let mut normal = n.clone();
    normal[0].kind = NetworkKind::Normal;
    assert_eq!(field(&normal, &i), "networks[0].local_ip");
    let mut no_uplink = n.clone();
    no_uplink[1].uplink = None;
    assert_eq!(field(&no_uplink, &i), "networks[1].uplink");
    let mut both = i.clone();
    both[1].port = Some("b".into());
    assert_eq!(field(&n, &both), "instances[1].host_ip");
    let mut nowhere = i.clone();
    nowhere[1].host_ip = None;
    assert_eq!(field(&n, &nowhere), "instances[1].port");
    let mut pbb = i.clone();
    pbb[1].host_ip = None;
    pbb[1].host_mac = Some("02:bb:00:00:00:02".into());
    assert_eq!(field(&n, &pbb), "instances[1].host_mac");
}

#[test]
fn geneve_networks_have_their_own_peer_ports() {
    let (mut n, i, p) = sample();
    n[1].kind = NetworkKind::Geneve;
    let m = Model::build(&n, &i, None, &p).unwrap();
    // 192.0.2.2 is a peer of network 5 (vxlan) and of network 6 (geneve): two ports.
    assert_eq!(m.peers.len(), 3, "{:?}", m.peers);
    assert!(m
        .peers
        .iter()
        .any(|p| p.kind == NetworkKind::Geneve && p.name.starts_with("gn-")));
}

#[test]
fn listed_peer_hosts_get_a_port_and_the_flood_before_any_instance_there() {
    let p = vec![port("a", 1), port("up", 10)];
    let mut n5 = net(5, NetworkKind::Vxlan);
    n5.peers = vec!["192.0.2.7".parse().unwrap(), "192.0.2.2".parse().unwrap()];
    let i = vec![
        inst("a", 5, "02:00:00:05:00:01", "10.5.0.1", Ok("a")),
        // A remote instance on a listed peer: one port for both reasons.
        inst("r1", 5, "02:00:00:05:00:02", "10.5.0.2", Err("192.0.2.2")),
    ];
    let m = Model::build(&[n5.clone()], &i, None, &p).expect("valid");
    let remotes: Vec<String> = m.peers.iter().map(|p| p.remote_ip.to_string()).collect();
    assert_eq!(remotes, ["192.0.2.2", "192.0.2.7"], "{:?}", m.peers);
    let (p2, p7) = (m.peers[0].ofport, m.peers[1].ofport);
    let t = texts(&m);
    let sw = table::SWITCH_TUNNEL;
    // Broadcast and unknown unicast: the local instance, then each peer host once.
    let flood = t
        .iter()
        .find(|f| f.contains(&format!("table={sw},priority=1,")) && f.contains("metadata=0x5/"))
        .unwrap_or_else(|| panic!("no flood flow in {t:#?}"));
    let (lo, hi) = (p2.min(p7), p2.max(p7));
    assert!(
        flood.ends_with(&format!(
            "actions=output:1,set_field:0x5->tun_id,output:{lo},set_field:0x5->tun_id,output:{hi}"
        )),
        "{flood}"
    );
    // What the listed peer sends with the network's VNI is taken into it.
    assert!(t.iter().any(|f| f.contains(&format!(
        "in_port={p7},tun_id=0x5,actions=write_metadata:0x5/0xffffffff,goto_table:{sw}"
    ))));
    // Refused: peers on a network that is not an overlay, our own endpoint, twice.
    let field = |n: NetworkConfig| Model::build(&[n], &i[..1], None, &p).unwrap_err();
    let mut normal = net(5, NetworkKind::Normal);
    normal.local_ip = None;
    normal.peers = vec!["192.0.2.7".parse().unwrap()];
    assert_eq!(field(normal).field, "networks[0].peers[0]");
    let mut own = net(5, NetworkKind::Vxlan);
    own.peers = vec!["192.0.2.1".parse().unwrap()];
    assert_eq!(field(own).field, "networks[0].peers[0]");
    let mut twice = net(5, NetworkKind::Vxlan);
    twice.peers = vec!["192.0.2.7".parse().unwrap(), "192.0.2.7".parse().unwrap()];
    assert_eq!(field(twice).field, "networks[0].peers[1]");
    let mut bcast = net(5, NetworkKind::Vxlan);
    bcast.peers = vec!["255.255.255.255".parse().unwrap()];
    assert_eq!(field(bcast).field, "networks[0].peers[0]");
}
