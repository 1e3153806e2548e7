//! The `vxlan` and `geneve` network kinds: L2 virtual networks across hosts over tunnels,
//! as OVN builds them. The profile makes one tunnel port per peer host (the host's tunnel
//! endpoint IP that remote instances are registered with, or that the network lists among
//! its `peers`), with `key = "flow"`: the VNI,
//! which is the network id, is set by `set_field:ID->tun_id` before each output, and a
//! decapsulated packet belongs to the network its VNI names and to no other.
//!
//! Flows of network ID (table [`SWITCH_TUNNEL`]):
//! - classifier, 160: `in_port=PEER,tun_id=ID` writes the network's metadata (150: any
//!   other VNI from a peer is dropped; 140: anything else from the uplink, the underlay's
//!   own traffic, too);
//! - 100 per instance: a local one's MAC to its port, a remote one's to its host's tunnel;
//! - 2 per peer: what else came from a tunnel goes to the local instances only (the
//!   sending host replicated it to every other host already: split horizon);
//! - 1: broadcast and unknown unicast from here go to every local instance and, once
//!   each, to every peer host of the network (head-end replication).

use std::fmt::Write;
use std::net::Ipv4Addr;

use ferroflow_config::NetworkKind;

use crate::compile::ProfileFlow;
use crate::model::{Model, Network};
use crate::table::{CLASSIFIER, SWITCH_TUNNEL};
use crate::{mac_string, Role};

/// A tunnel port the profile makes towards one peer host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// `vx-` or `gn-` and the remote IP in hex (fits OpenFlow's 16-byte port names).
    pub name: String,
    /// Chosen by [`peers`]: not a port of the switch.
    pub ofport: u32,
    /// Vxlan or geneve.
    pub kind: NetworkKind,
    /// The uplink's OpenFlow number.
    pub uplink: u32,
    pub local_ip: Ipv4Addr,
    pub local_prefix: u8,
    pub remote_ip: Ipv4Addr,
}

/// Where peer ports' numbers start: far above the numbers operators give ports, below
/// OpenFlow's reserved ones. The low 24 bits are the remote IP's, so a peer keeps its
/// number while others come and go (unless two remotes share their low 24 bits).
const PEER_OFPORT_VXLAN: u32 = 0x7f00_0000;
const PEER_OFPORT_GENEVE: u32 = 0x7e00_0000;

/// Checks a vxlan or geneve network's `local_ip` (`A.B.C.D/LEN`).
pub(crate) fn local_ip(
    kind: NetworkKind,
    v: Option<&str>,
) -> Result<Option<(Ipv4Addr, u8)>, String> {
    match (kind.is_overlay(), v) {
        (true, Some(s)) => {
            let (ip, len) = ferroflow_config::parse_ipv4_prefix(s)?;
            if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() {
                return Err(format!("{s:?} is not a unicast address"));
            }
            Ok(Some((ip, len)))
        }
        (true, None) => Err(format!(
            "a {} network needs this host's tunnel endpoint (A.B.C.D/LEN)",
            kind.as_str()
        )),
        (false, Some(_)) => Err("only vxlan and geneve networks have a local_ip".into()),
        (false, None) => Ok(None),
    }
}

/// The tunnel ports the model needs: one per (kind, uplink, local endpoint, remote host)
/// of the remote instances of its vxlan and geneve networks, numbered clear of `taken`.
pub(crate) fn peers(m: &Model) -> Vec<Peer> {
    let mut out: Vec<Peer> = Vec::new();
    // The hosts of remote instances, then the networks' listed peer hosts.
    let remotes = m
        .instances
        .iter()
        .filter_map(|i| Some((i.host_ip?, m.network(i.network)?)))
        .chain(
            m.networks
                .iter()
                .flat_map(|n| n.peer_hosts.iter().map(move |&p| (p, n))),
        );
    for (remote, net) in remotes {
        let (Some(uplink), Some((local, len))) = (net.uplink, net.local_ip) else {
            continue;
        };
        let same = |p: &Peer| {
            p.kind == net.kind && p.uplink == uplink && p.local_ip == local && p.remote_ip == remote
        };
        if out.iter().any(same) {
            continue;
        }
        out.push(Peer {
            name: String::new(),
            ofport: 0,
            kind: net.kind,
            uplink,
            local_ip: local,
            local_prefix: len,
            remote_ip: remote,
        });
    }
    // Numbered in a fixed order, so the same description gives the same numbers.
    out.sort_by_key(|p| {
        (
            p.kind == NetworkKind::Geneve,
            p.remote_ip,
            p.uplink,
            p.local_ip,
        )
    });
    let mut used: Vec<u32> = m.ports.clone();
    for p in &mut out {
        let (base, prefix) = match p.kind {
            NetworkKind::Geneve => (PEER_OFPORT_GENEVE, "gn"),
            _ => (PEER_OFPORT_VXLAN, "vx"),
        };
        let mut n = base | (u32::from(p.remote_ip) & 0x00ff_ffff);
        while used.contains(&n) {
            n = base | (n.wrapping_add(1) & 0x00ff_ffff);
        }
        used.push(n);
        p.ofport = n;
        p.name = format!("{prefix}-{:08x}", u32::from(p.remote_ip));
    }
    out
}

/// The peer port that reaches `remote` for network `net`.
fn peer_of<'a>(m: &'a Model, net: &Network, remote: Ipv4Addr) -> Option<&'a Peer> {
    let (uplink, (local, _)) = (net.uplink?, net.local_ip?);
    m.peers.iter().find(|p| {
        p.kind == net.kind && p.uplink == uplink && p.local_ip == local && p.remote_ip == remote
    })
}

/// The flows of a vxlan or geneve network (see the module's documentation);
/// `flood_locals`: `output:P,` for each local instance.
pub(crate) fn compile_network(
    out: &mut Vec<ProfileFlow>,
    m: &Model,
    net: &Network,
    flood_locals: &str,
) {
    let id = net.id;
    let base = Role::Base.cookie(0);
    let meta = format!("metadata={id:#x}/0xffffffff");
    // The peers of this network: the hosts of its remote instances and its listed
    // peer hosts (known before any of their instances).
    let mut peers: Vec<&Peer> = Vec::new();
    let remotes = m
        .instances
        .iter()
        .filter(|i| i.network == id)
        .filter_map(|i| i.host_ip)
        .chain(net.peer_hosts.iter().copied());
    for r in remotes {
        if let Some(p) = peer_of(m, net, r) {
            if !peers.iter().any(|q| q.ofport == p.ofport) {
                peers.push(p);
            }
        }
    }
    peers.sort_by_key(|p| p.ofport);
    let to_peer = |p: &Peer| format!("set_field:{id:#x}->tun_id,output:{}", p.ofport);
    // What reaches the switch on the underlay without being the tunnel layer's (the
    // underlay's own broadcasts, IPv6 neighbour discovery...) is no instance's business:
    // dropped, once per uplink, below the flows of other kinds on it (150, 160).
    let first_on_uplink = m
        .networks
        .iter()
        .find(|n| n.kind.is_overlay() && n.uplink == net.uplink)
        .map(|n| n.id);
    if let (Some(u), Some(true)) = (net.uplink, first_on_uplink.map(|f| f == id)) {
        out.push(ProfileFlow::new(
            CLASSIFIER,
            140,
            base,
            &format!("in_port={u}"),
            "drop",
        ));
    }
    // Whatever else comes from a peer (a VNI none of its networks has) is dropped: once,
    // with the first overlay network.
    if m.networks
        .iter()
        .find(|n| n.kind.is_overlay())
        .map(|n| n.id)
        == Some(id)
    {
        for p in &m.peers {
            out.push(ProfileFlow::new(
                CLASSIFIER,
                150,
                base,
                &format!("in_port={}", p.ofport),
                "drop",
            ));
        }
    }
    for p in &peers {
        out.push(ProfileFlow::new(
            CLASSIFIER,
            160,
            base,
            &format!("in_port={},tun_id={id:#x}", p.ofport),
            &format!("write_metadata:{id:#x}/0xffffffff,goto_table:{SWITCH_TUNNEL}"),
        ));
    }
    for i in m.instances.iter().filter(|i| i.network == id) {
        let acts = match (i.port, i.host_ip.and_then(|r| peer_of(m, net, r))) {
            (Some(p), _) => format!("output:{p}"),
            (None, Some(peer)) => to_peer(peer),
            (None, None) => continue,
        };
        out.push(ProfileFlow::new(
            SWITCH_TUNNEL,
            100,
            base,
            &format!("{meta},dl_dst={}", mac_string(i.mac)),
            &acts,
        ));
    }
    let locals = flood_locals.trim_end_matches(',');
    for p in &peers {
        out.push(ProfileFlow::new(
            SWITCH_TUNNEL,
            2,
            base,
            &format!("{meta},in_port={}", p.ofport),
            if locals.is_empty() { "drop" } else { locals },
        ));
    }
    let mut all = flood_locals.to_owned();
    for p in &peers {
        let _ = write!(all, "{},", to_peer(p));
    }
    let all = all.trim_end_matches(',');
    out.push(ProfileFlow::new(
        SWITCH_TUNNEL,
        1,
        base,
        &meta,
        if all.is_empty() { "drop" } else { all },
    ));
}
