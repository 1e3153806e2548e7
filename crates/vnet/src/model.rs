//! The checked description: every reference resolved, every address parsed,
//! so that compiling cannot fail.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use ferroflow_config::{
    InstanceConfig, MetadataConfig, MetadataMode, NetworkConfig, NetworkKind, PortConfig,
    OFPP_LOCAL,
};

use crate::{parse_mac, subject_of, HOST_NETWORK, METADATA_SUBNET_CLIENT};

/// Why a description cannot be used; `field` names the offending entry as the
/// API request or config file spells it (`networks[1].uplink`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ProfileError {
    pub field: String,
    pub message: String,
}

fn err<T>(field: impl Into<String>, message: impl Into<String>) -> Result<T, ProfileError> {
    Err(ProfileError {
        field: field.into(),
        message: message.into(),
    })
}

#[derive(Debug, Clone)]
pub struct Network {
    pub id: u32,
    pub name: String,
    pub kind: NetworkKind,
    pub uplink: Option<u32>,
    pub vlan: Option<u16>,
    pub gateway: Option<(Ipv4Addr, [u8; 6])>,
    /// (address, prefix length)
    pub prefixes: Vec<(Ipv4Addr, u8)>,
    pub backbone_mac: Option<[u8; 6]>,
    /// Vxlan and geneve: this host's tunnel endpoint and the uplink's on-link prefix length.
    pub local_ip: Option<(Ipv4Addr, u8)>,
    /// Vxlan and geneve: other hosts' endpoints in the network (its description's
    /// `peers`), replicated to as the hosts of its remote instances are.
    pub peer_hosts: Vec<Ipv4Addr>,
}

impl Network {
    /// The gateway's MAC, or one derived from the id (locally administered).
    pub fn gateway_mac(&self) -> [u8; 6] {
        match self.gateway {
            Some((_, m)) => m,
            None => derived_gateway_mac(self.id),
        }
    }

    pub fn in_prefixes(&self, ip: Ipv4Addr) -> bool {
        self.prefixes.iter().any(|(net, len)| {
            let mask = if *len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(ip) & mask == u32::from(*net) & mask
        })
    }
}

pub fn derived_gateway_mac(id: u32) -> [u8; 6] {
    let b = id.to_be_bytes();
    [0x02, 0xfe, b[1], b[2], b[3], 0x01]
}

#[derive(Debug, Clone)]
pub struct Instance {
    pub name: String,
    pub subject: u32,
    pub network: u32,
    pub mac: [u8; 6],
    pub addresses: Vec<Ipv4Addr>,
    /// Configured IPv6 addresses (the link-local one is [`Instance::link_local`]).
    pub ipv6: Vec<Ipv6Addr>,
    /// Local: the OpenFlow port it is attached to.
    pub port: Option<u32>,
    /// Remote (vnet): the backbone MAC of its host.
    pub host_mac: Option<[u8; 6]>,
    /// Remote (vxlan, geneve): the tunnel endpoint of its host.
    pub host_ip: Option<Ipv4Addr>,
    /// Its security groups (checked by [`Model::with_security_groups`]).
    pub security_groups: Vec<String>,
}

impl Instance {
    /// The link-local address a host derives from its MAC (modified EUI-64,
    /// RFC 4291 appendix A): the one IPv6 address an instance has before any
    /// is configured, and the source of its router and neighbor discovery.
    pub fn link_local(&self) -> Ipv6Addr {
        link_local_of(self.mac)
    }

    /// Every IPv6 source address it may use: its link-local one, then the configured ones.
    pub fn ipv6_sources(&self) -> Vec<Ipv6Addr> {
        let ll = self.link_local();
        let mut v = vec![ll];
        v.extend(self.ipv6.iter().copied().filter(|a| *a != ll));
        v
    }
}

/// The EUI-64 link-local address of `mac`: fe80::(mac0^2)mac1:mac2ff:fe mac3:mac4mac5.
pub fn link_local_of(mac: [u8; 6]) -> Ipv6Addr {
    let m = mac;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        m[0] ^ 0x02,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ])
}

#[derive(Debug, Clone)]
pub struct Metadata {
    pub mode: MetadataMode,
    pub host_ip: Ipv4Addr,
    pub host_mac: [u8; 6],
    pub host_port: u16,
}

/// A checked profile description, with the switch's ports it refers to.
#[derive(Debug, Clone, Default)]
pub struct Model {
    pub networks: Vec<Network>,
    pub instances: Vec<Instance>,
    pub metadata: Option<Metadata>,
    /// Every port of the switch (OpenFlow numbers), LOCAL included if configured.
    pub ports: Vec<u32>,
    /// The tunnel ports to the peer hosts of vxlan and geneve networks.
    pub peers: Vec<crate::overlay::Peer>,
    /// Checked security groups ([`Model::with_security_groups`]).
    pub security_groups: Vec<crate::secgroups::SecurityGroup>,
}

impl Model {
    pub fn network(&self, id: u32) -> Option<&Network> {
        self.networks.iter().find(|n| n.id == id)
    }

    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    pub fn has_local(&self) -> bool {
        self.ports.contains(&OFPP_LOCAL)
    }

    /// The local instances of network `id`.
    pub fn local_members(&self, id: u32) -> impl Iterator<Item = (&Instance, u32)> {
        self.instances
            .iter()
            .filter(move |i| i.network == id)
            .filter_map(|i| i.port.map(|p| (i, p)))
    }

    /// The local instance on OpenFlow port `port`.
    pub fn instance_on(&self, port: u32) -> Option<&Instance> {
        self.instances.iter().find(|i| i.port == Some(port))
    }

    /// Checks a description against the switch's ports.
    pub fn build(
        networks: &[NetworkConfig],
        instances: &[InstanceConfig],
        metadata: Option<&MetadataConfig>,
        ports: &[PortConfig],
    ) -> Result<Model, ProfileError> {
        let port_of: HashMap<&str, u32> =
            ports.iter().map(|p| (p.name.as_str(), p.ofport)).collect();
        let mut model = Model {
            ports: ports.iter().map(|p| p.ofport).collect(),
            ..Model::default()
        };
        let mut ids = HashSet::new();
        let mut names = HashSet::new();
        let mut untagged_uplinks = HashSet::new();
        for (i, n) in networks.iter().enumerate() {
            let f = |k: &str| format!("networks[{i}].{k}");
            if n.id == 0 || n.id > 0xff_ffff {
                return err(
                    f("id"),
                    format!("{} is outside 1..=16777215 (the PBB I-SID range)", n.id),
                );
            }
            if !ids.insert(n.id) {
                return err(f("id"), format!("{} is used by two networks", n.id));
            }
            if n.name.is_empty() || !names.insert(n.name.as_str()) {
                return err(
                    f("name"),
                    format!("{:?}: empty or used by two networks", n.name),
                );
            }
            let uplink = match &n.uplink {
                None => None,
                Some(u) => match port_of.get(u.as_str()) {
                    Some(&p) if p == OFPP_LOCAL => {
                        return err(
                            f("uplink"),
                            "the LOCAL port belongs to the metadata service",
                        )
                    }
                    Some(&p) => Some(p),
                    None => return err(f("uplink"), format!("no port named {u:?}")),
                },
            };
            match n.kind {
                NetworkKind::Vlan
                | NetworkKind::Vnet
                | NetworkKind::Vxlan
                | NetworkKind::Geneve
                    if uplink.is_none() =>
                {
                    return err(
                        f("uplink"),
                        format!("a {} network needs an uplink port", n.kind.as_str()),
                    )
                }
                _ => {}
            }
            let vlan = match (n.kind, n.vlan) {
                (NetworkKind::Vlan, Some(v)) if (1..=4094).contains(&v) => Some(v),
                (NetworkKind::Vlan, Some(v)) => {
                    return err(f("vlan"), format!("{v} is outside 1..=4094"))
                }
                (NetworkKind::Vlan, None) => {
                    return err(f("vlan"), "a vlan network needs its VLAN id")
                }
                (_, Some(_)) => return err(f("vlan"), "only vlan networks have a VLAN id"),
                (_, None) => None,
            };
            if matches!(n.kind, NetworkKind::Normal) {
                if let Some(u) = uplink {
                    if !untagged_uplinks.insert(u) {
                        return err(f("uplink"), "two normal networks cannot share an uplink (its untagged traffic would belong to both)");
                    }
                }
            }
            let gateway_mac = match &n.gateway_mac {
                Some(m) => Some(parse_mac(m).ok_or_else(|| ProfileError {
                    field: f("gateway_mac"),
                    message: format!("{m:?} is not a MAC address"),
                })?),
                None => None,
            };
            if gateway_mac.is_some() && n.gateway.is_none() {
                return err(f("gateway_mac"), "a gateway MAC needs a gateway address");
            }
            let gateway = n
                .gateway
                .map(|g| (g, gateway_mac.unwrap_or_else(|| derived_gateway_mac(n.id))));
            let mut prefixes = Vec::new();
            for (j, p) in n.prefixes.iter().enumerate() {
                let parsed = p.split_once('/').and_then(|(a, l)| {
                    Some((
                        a.parse::<Ipv4Addr>().ok()?,
                        l.parse::<u8>().ok().filter(|l| *l <= 32)?,
                    ))
                });
                match parsed {
                    Some(x) => prefixes.push(x),
                    None => {
                        return err(
                            format!("networks[{i}].prefixes[{j}]"),
                            format!("{p:?} is not ADDRESS/LENGTH"),
                        )
                    }
                }
            }
            if !prefixes.is_empty() && n.kind != NetworkKind::Private {
                return err(f("prefixes"), "only private networks have prefixes");
            }
            let backbone_mac = match (&n.backbone_mac, n.kind) {
                (Some(m), NetworkKind::Vnet) => Some(parse_mac(m).ok_or_else(|| ProfileError {
                    field: f("backbone_mac"),
                    message: format!("{m:?} is not a MAC address"),
                })?),
                (None, NetworkKind::Vnet) => {
                    return err(
                        f("backbone_mac"),
                        "a vnet network needs this host's backbone MAC",
                    )
                }
                (Some(_), _) => {
                    return err(f("backbone_mac"), "only vnet networks have a backbone MAC")
                }
                (None, _) => None,
            };
            let local_ip =
                crate::overlay::local_ip(n.kind, n.local_ip.as_deref()).map_err(|m| {
                    ProfileError {
                        field: f("local_ip"),
                        message: m,
                    }
                })?;
            let mut peer_hosts: Vec<Ipv4Addr> = Vec::new();
            for (k, &p) in n.peers.iter().enumerate() {
                let field = f(&format!("peers[{k}]"));
                if !n.kind.is_overlay() {
                    return err(field, "only vxlan and geneve networks have peers");
                }
                if p.is_unspecified() || p.is_multicast() || p.is_broadcast() || p.is_loopback() {
                    return err(field, format!("{p} is not a unicast address"));
                }
                if local_ip.is_some_and(|(l, _)| l == p) {
                    return err(field, format!("{p} is this host's own endpoint"));
                }
                if peer_hosts.contains(&p) {
                    return err(field, format!("{p} is listed twice"));
                }
                peer_hosts.push(p);
            }
            model.networks.push(Network {
                id: n.id,
                name: n.name.clone(),
                kind: n.kind,
                uplink,
                vlan,
                gateway,
                prefixes,
                backbone_mac,
                local_ip,
                peer_hosts,
            });
        }
        let uplinks: HashSet<u32> = model.networks.iter().filter_map(|n| n.uplink).collect();
        let mut inames = HashSet::new();
        let mut used_ports = HashSet::new();
        for (i, inst) in instances.iter().enumerate() {
            let f = |k: &str| format!("instances[{i}].{k}");
            if inst.name.is_empty() || !inames.insert(inst.name.as_str()) {
                return err(
                    f("name"),
                    format!("{:?}: empty or used by two instances", inst.name),
                );
            }
            let Some(net) = model.network(inst.network) else {
                return err(f("network"), format!("no network with id {}", inst.network));
            };
            let mac = parse_mac(&inst.mac).ok_or_else(|| ProfileError {
                field: f("mac"),
                message: format!("{:?} is not a MAC address", inst.mac),
            })?;
            if mac[0] & 1 == 1 {
                return err(f("mac"), format!("{} is a multicast address", inst.mac));
            }
            let port = match &inst.port {
                None => None,
                Some(p) => match port_of.get(p.as_str()) {
                    None => return err(f("port"), format!("no port named {p:?}")),
                    Some(&o) if o == OFPP_LOCAL => {
                        return err(f("port"), "the LOCAL port cannot be an instance")
                    }
                    Some(&o) if uplinks.contains(&o) => {
                        return err(f("port"), format!("{p:?} is an uplink"))
                    }
                    Some(&o) if !used_ports.insert(o) => {
                        return err(
                            f("port"),
                            format!("{p:?} already has an instance (one interface per port)"),
                        )
                    }
                    Some(&o) => Some(o),
                },
            };
            let host_mac = match &inst.host_mac {
                None => None,
                Some(m) => Some(parse_mac(m).ok_or_else(|| ProfileError {
                    field: f("host_mac"),
                    message: format!("{m:?} is not a MAC address"),
                })?),
            };
            match (port, inst.host_ip, net.kind.is_overlay()) {
                (Some(_), Some(_), _) => {
                    return err(
                        f("host_ip"),
                        "a local instance (with a port) has no remote host",
                    )
                }
                (_, Some(_), false) => {
                    return err(
                        f("host_ip"),
                        "remote instances are reached by host_ip on vxlan and geneve networks only",
                    )
                }
                (None, None, true) if host_mac.is_none() => {
                    return err(
                        f("port"),
                        "an instance needs a port, or host_ip if it lives on another host",
                    )
                }
                (_, Some(ip), true)
                    if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() =>
                {
                    return err(f("host_ip"), format!("{ip} is not a unicast address"))
                }
                _ => {}
            }
            match (port, host_mac) {
                (Some(_), Some(_)) => {
                    return err(
                        f("host_mac"),
                        "a local instance (with a port) has no remote host",
                    )
                }
                (None, None) if inst.host_ip.is_none() => {
                    return err(
                        f("port"),
                        "an instance needs a port, or host_mac if it lives on another host",
                    )
                }
                (None, Some(_)) if net.kind != NetworkKind::Vnet => {
                    return err(
                        f("host_mac"),
                        "remote instances are known on vnet networks only",
                    )
                }
                _ => {}
            }
            if port.is_some() && inst.addresses.is_empty() && net.kind == NetworkKind::Private {
                return err(
                    f("addresses"),
                    "an instance on a private network needs an address",
                );
            }
            if inst.addresses.iter().any(|a| {
                *a == METADATA_SUBNET_CLIENT
                    || a.is_multicast()
                    || a.is_broadcast()
                    || a.is_unspecified()
            }) {
                return err(
                    f("addresses"),
                    "an address is reserved, multicast, broadcast or unspecified",
                );
            }
            if net.kind == NetworkKind::Private
                && !net.prefixes.is_empty()
                && inst.addresses.iter().any(|a| !net.in_prefixes(*a))
            {
                return err(
                    f("addresses"),
                    format!("outside the prefixes of network {}", net.name),
                );
            }
            if inst.ipv6.iter().any(|a| {
                a.is_unspecified()
                    || a.is_loopback()
                    || a.is_multicast()
                    || a.to_ipv4_mapped().is_some()
            }) {
                return err(
                    f("ipv6"),
                    "an IPv6 address is unspecified, loopback, multicast or IPv4-mapped",
                );
            }
            if !inst.ipv6.is_empty()
                && !matches!(net.kind, NetworkKind::Normal | NetworkKind::Vnet)
                && !net.kind.is_overlay()
            {
                return err(
                    f("ipv6"),
                    format!(
                        "a {} network does not carry IPv6 (normal and vnet networks do)",
                        net.kind.as_str()
                    ),
                );
            }
            model.instances.push(Instance {
                name: inst.name.clone(),
                subject: subject_of(&inst.name),
                network: inst.network,
                mac,
                addresses: inst.addresses.clone(),
                ipv6: inst.ipv6.clone(),
                port,
                host_mac,
                host_ip: inst.host_ip,
                security_groups: inst.security_groups.clone(),
            });
        }
        if let Some(md) = metadata {
            let host_mac = parse_mac(&md.host_mac).ok_or_else(|| ProfileError {
                field: "metadata.host_mac".into(),
                message: format!("{:?} is not a MAC address", md.host_mac),
            })?;
            if !model.has_local() {
                return err(
                    "metadata",
                    format!("the metadata service is reached through the bridge's LOCAL port: add a port with ofport = {OFPP_LOCAL}"),
                );
            }
            if md.host_port == 0 {
                return err("metadata.host_port", "must be 1..=65535");
            }
            if md.mode == MetadataMode::Subnet {
                if let Some(i) = model
                    .instances
                    .iter()
                    .find(|i| i.port.is_some() && i.addresses.is_empty())
                {
                    return err("metadata.mode", format!("subnet mode rewrites the subnet address to the instance's own: instance {:?} has none", i.name));
                }
            }
            model.metadata = Some(Metadata {
                mode: md.mode,
                host_ip: md.host_ip,
                host_mac,
                host_port: md.host_port,
            });
        }
        model.peers = crate::overlay::peers(&model);
        debug_assert!(!model.networks.iter().any(|n| n.id == HOST_NETWORK));
        Ok(model)
    }
}
