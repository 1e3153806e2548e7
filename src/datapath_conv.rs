//! The configuration file's port and datapath settings as the datapath takes them: the
//! control plane decides, the datapath crate knows nothing of the config file's types.

use std::time::Duration;

use datapath::{DatapathSettings, PortSpec, SocketAccess};
use ferroflow_config::{DatapathConfig, PortConfig, VlanMode};
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
