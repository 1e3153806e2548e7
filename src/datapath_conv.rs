//! The configuration file's port and datapath settings as the datapath takes them: the
//! control plane decides, the datapath crate knows nothing of the config file's types.

use std::time::Duration;

use datapath::{
    DatapathSettings, PortSpec, SocketAccess, TunnelKind, TunnelSpec, UnderlaySettings,
};
use ferroflow_config::{
    parse_ipv4_prefix, parse_route, Config, DatapathConfig, PortConfig, PortKind, TunnelKey,
    TunnelsConfig, VlanMode,
};
use mac_learning::VlanPolicy;

/// The VLAN membership a port's configuration asks for.
pub fn vlan_policy(mode: &VlanMode) -> VlanPolicy {
    match mode {
        VlanMode::Trunk => VlanPolicy::Trunk,
        VlanMode::Trunks(v) => VlanPolicy::trunks(v),
        VlanMode::Access(t) => VlanPolicy::Access(*t),
    }
}

/// A configured port as the datapath creates it; fails when its socket owner or group does
/// not exist on this host.
pub fn port_spec(pc: &PortConfig) -> Result<PortSpec, String> {
    Ok(PortSpec {
        name: pc.name.clone(),
        ofport: pc.ofport,
        devargs: pc.devargs.clone(),
        vlan: pc.vlan_mode().to_string(),
        vhost_server_socket: pc.vhost_server_socket().map(str::to_owned),
        socket_access: SocketAccess::resolve(
            pc.socket_mode,
            pc.socket_owner.as_deref(),
            pc.socket_group.as_deref(),
        )
        .map_err(|e| format!("port {:?}: {e}", pc.name))?,
    })
}

/// The tracker's configuration from the `[conntrack]` section.
pub fn conntrack_config(c: &ferroflow_config::ConntrackConfig) -> conntrack::Config {
    let mut t = conntrack::Timeouts::default();
    t.tcp.established_ms = c.tcp_established_timeout_s.saturating_mul(1000);
    t.udp_ms = c.udp_timeout_s.saturating_mul(1000);
    t.udp_stream_ms = c.udp_stream_timeout_s.saturating_mul(1000);
    t.icmp_ms = c.icmp_timeout_s.saturating_mul(1000);
    t.other_ms = c.other_timeout_s.saturating_mul(1000);
    conntrack::Config {
        capacity: c.max_connections,
        timeouts: t,
        ..conntrack::Config::default()
    }
}

/// The datapath's settings from the `[datapath]` section.
pub fn datapath_settings(c: &DatapathConfig) -> DatapathSettings {
    DatapathSettings {
        rx_descriptors: c.rx_descriptors,
        tx_descriptors: c.tx_descriptors,
        mbufs: c.mbufs,
        idle_sleep: (c.idle_sleep_us > 0).then(|| Duration::from_micros(c.idle_sleep_us.into())),
        ..DatapathSettings::default()
    }
}

/// The configured tunnel ports as the datapath takes them (the configuration was
/// validated: addresses parse, uplinks exist).
pub fn tunnel_specs(config: &Config) -> Result<Vec<TunnelSpec>, String> {
    tunnel_specs_of(&config.ports)
}

/// The tunnel ports among `ports` (checked: addresses parse, uplinks exist).
pub fn tunnel_specs_of(ports: &[PortConfig]) -> Result<Vec<TunnelSpec>, String> {
    let mut out = Vec::new();
    for pc in ports.iter().filter(|p| p.is_tunnel()) {
        let kind = match pc.kind {
            PortKind::Vxlan => TunnelKind::Vxlan,
            _ => TunnelKind::Geneve,
        };
        let bad = |what: &str| format!("port {:?}: {what}", pc.name);
        let remote = match pc.remote_ip.as_deref() {
            Some("flow") => datapath::REMOTE_FROM_FLOW,
            r => r
                .and_then(|r| r.parse::<std::net::Ipv4Addr>().ok())
                .ok_or_else(|| bad("remote_ip"))?
                .octets(),
        };
        let (local, len) =
            parse_ipv4_prefix(pc.local_ip.as_deref().unwrap_or_default()).map_err(|e| bad(&e))?;
        let uplink = ports
            .iter()
            .find(|p| Some(p.name.as_str()) == pc.uplink.as_deref())
            .ok_or_else(|| bad("uplink"))?;
        out.push(TunnelSpec {
            name: pc.name.clone(),
            ofport: pc.ofport,
            kind,
            uplink: uplink.ofport,
            local_ip: local.octets(),
            local_prefix: len,
            remote_ip: remote,
            vni: match pc.key {
                None => Some(0),
                Some(TunnelKey::Fixed(v)) => Some(v),
                Some(TunnelKey::Flow) => None,
            },
            dst_port: pc.dst_port.unwrap_or(kind.default_port()),
            csum: pc.csum,
            ttl: 64,
        });
    }
    Ok(out)
}

/// The `[tunnels]` section as the datapath takes it.
pub fn underlay_settings(t: &TunnelsConfig) -> Result<UnderlaySettings, String> {
    let mut routes = Vec::new();
    for r in &t.routes {
        let (p, l, h) = parse_route(r)?;
        routes.push((p.octets(), l, h.octets()));
    }
    let gateway = match &t.gateway {
        Some(g) => Some(
            g.parse::<std::net::Ipv4Addr>()
                .map_err(|_| format!("tunnels.gateway: {g:?}"))?
                .octets(),
        ),
        None => None,
    };
    Ok(UnderlaySettings {
        routes,
        gateway,
        neighbour_timeout: Duration::from_secs(t.neighbour_timeout_s.max(1).into()),
        uplink_mtu: t.uplink_mtu,
        static_neighbours: t
            .neighbours
            .iter()
            .map(|n| {
                ferroflow_config::parse_neighbour(n)
                    .map(|(ip, mac)| (ip.octets(), mac))
                    .map_err(|e| format!("tunnels.neighbours: {e}"))
            })
            .collect::<Result<_, _>>()?,
    })
}
