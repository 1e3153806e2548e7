//! The description the profile tests compile: ports, one network of each kind, local
//! instances on each and a remote one, and the metadata service (shared by compile.rs and
//! secgroups.rs).
#![allow(dead_code)]

use ferroflow_config::{
    InstanceConfig, MetadataConfig, MetadataMode, NetworkConfig, NetworkKind, PortConfig,
    OFPP_LOCAL,
};

/// A port as the description names it: its devargs are never handed to DPDK here (these
/// tests start no EAL, so there is no argument list to carry `--no-pci`).
pub fn port(name: &str, ofport: u32) -> PortConfig {
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

pub fn net(id: u32, name: &str, kind: NetworkKind) -> NetworkConfig {
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
        local_ip: None,
        peers: vec![],
    }
}

pub fn inst(name: &str, network: u32, mac: &str, ip: &str, port: Option<&str>) -> InstanceConfig {
    InstanceConfig {
        name: name.into(),
        network,
        mac: mac.into(),
        addresses: vec![ip.parse().unwrap()],
        ipv6: vec![],
        port: port.map(Into::into),
        host_mac: None,
        host_ip: None,
        security_groups: vec![],
    }
}

pub fn sample(
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
