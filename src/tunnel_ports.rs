//! Tunnel ports that come and go at runtime: those `AddPort` creates (kept in the
//! switch's ports and the config store like any other port) and those the virtual-network
//! profile makes towards the peer hosts of its vxlan and geneve networks (derived from
//! the description, never stored). The datapath takes the whole set at once
//! ([`datapath::Datapath::set_tunnels`]); every change here hands it the new set.

use std::time::Duration;

use datapath::{TunnelKind, TunnelSpec};
use ferroflow_config::{NetworkKind, PortConfig};
use openflow::messages::{PortReason, PortStatus};
use pipeline::PortInfo;

use crate::datapath_conv::{tunnel_specs_of, vlan_policy};
use crate::switch::{PortChangeError, State};
use ofagent::AsyncEvent;

/// Every tunnel port: the switch's own (configured or added) and the profile's peers.
pub fn specs(ports: &[PortConfig], peers: &[vnet::Peer]) -> Result<Vec<TunnelSpec>, String> {
    let mut out = tunnel_specs_of(ports)?;
    out.extend(peers.iter().map(|p| {
        let kind = match p.kind {
            NetworkKind::Geneve => TunnelKind::Geneve,
            _ => TunnelKind::Vxlan,
        };
        TunnelSpec {
            name: p.name.clone(),
            ofport: p.ofport,
            kind,
            uplink: p.uplink,
            local_ip: p.local_ip.octets(),
            local_prefix: p.local_prefix,
            remote_ip: p.remote_ip.octets(),
            vni: None,
            dst_port: kind.default_port(),
            csum: false,
            ttl: 64,
        }
    }));
    Ok(out)
}

/// Hands the datapath the tunnel ports of `ports` and `peers` (no datapath: nothing to
/// do). On error the datapath keeps the set it had.
pub fn sync(st: &mut State, peers: &[vnet::Peer]) -> Result<(), String> {
    let mut specs = specs(&st.ports, peers)?;
    specs.sort_by_key(|s| s.ofport);
    let Some(dp) = st.datapath.as_mut() else {
        return Ok(());
    };
    if dp.tunnel_specs() == specs {
        return Ok(());
    }
    let settings = dp.tunnel_settings();
    dp.set_tunnels(&specs, settings).map_err(|e| e.to_string())
}

/// Adds tunnel port `pc` (checked against the configuration already): the datapath
/// encapsulates to it from now on, the pipeline and controllers learn it.
pub fn add(st: &mut State, pc: PortConfig, now: Duration) -> Result<(), PortChangeError> {
    if st.profile.peers().iter().any(|p| p.ofport == pc.ofport) {
        return Err(PortChangeError::OfportExists(pc.ofport));
    }
    st.ports.push(pc.clone());
    let peers = st.profile.peers().to_vec();
    if let Err(e) = sync(st, &peers) {
        st.ports.pop();
        return Err(PortChangeError::Invalid(format!("remote_ip: {e}")));
    }
    let mut info = PortInfo::new(pc.ofport);
    info.vlan = vlan_policy(&pc.vlan_mode());
    st.tables.set_port(info);
    st.tables.publish();
    crate::profile::ports_changed(st, now);
    if let Some(desc) = st.port_desc(pc.ofport) {
        st.events.push(AsyncEvent::PortStatus(PortStatus {
            reason: PortReason::Add,
            desc,
        }));
    }
    Ok(())
}

/// Removes tunnel port `pc`: nothing more is encapsulated to it or decapsulated from it.
pub fn remove(st: &mut State, pc: &PortConfig, now: Duration) -> Result<(), PortChangeError> {
    let desc = st.port_desc(pc.ofport);
    let kept: Vec<PortConfig> = st
        .ports
        .iter()
        .filter(|p| p.name != pc.name)
        .cloned()
        .collect();
    let old = std::mem::replace(&mut st.ports, kept);
    let peers = st.profile.peers().to_vec();
    if let Err(e) = sync(st, &peers) {
        st.ports = old;
        return Err(PortChangeError::Invalid(format!("port: {e}")));
    }
    st.tables.remove_port(pc.ofport);
    st.tables.mac_table().flush_port(pc.ofport);
    st.tables.publish();
    crate::profile::ports_changed(st, now);
    if let Some(desc) = desc {
        st.events.push(AsyncEvent::PortStatus(PortStatus {
            reason: PortReason::Delete,
            desc,
        }));
    }
    Ok(())
}

/// The tunnel port that uses port `name` as its uplink, if one does.
pub fn uplink_user(st: &State, name: &str) -> Option<String> {
    st.ports
        .iter()
        .find(|p| p.is_tunnel() && p.uplink.as_deref() == Some(name))
        .map(|p| format!("tunnel port {:?} (its uplink)", p.name))
}

/// What the port list shows as a tunnel port's driver (it has no ethdev).
pub fn driver_name(p: &PortConfig) -> Option<&'static str> {
    use ferroflow_config::PortKind;
    match p.kind {
        PortKind::Vxlan => Some("vxlan"),
        PortKind::Geneve => Some("geneve"),
        PortKind::Ethdev => None,
    }
}
