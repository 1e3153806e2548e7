//! The control plane's side of the seed's "populate on demand" flows: what to
//! install when a profile flow sends a packet up (per-connection metadata NAT,
//! verifying a private network's sources, ARP for unknown private addresses,
//! neighbor solicitations for instances' IPv6 addresses).

use std::net::{Ipv4Addr, Ipv6Addr};

use ferroflow_config::MetadataMode;
use packet::Field;

use crate::compile::{metadata_forward, metadata_return, ProfileFlow};
use crate::model::Model;
use crate::table::*;
use crate::{mac_string, Role, IDLE_TIMEOUT_S, METADATA_IP};

/// What to do about one packet a profile flow sent to the control plane.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reaction {
    /// Flows to add first.
    pub flows: Vec<ProfileFlow>,
    /// Then run the packet through the tables again (from table 0, its own in_port).
    pub reinject: bool,
    /// Or send it, unchanged, out of this port.
    pub relay: Option<u32>,
    /// Or answer it: this frame goes back out of the port the packet came in on.
    pub reply: Option<Vec<u8>>,
    /// Why nothing else happens (for the log and the refusal counter).
    pub refused: Option<String>,
}

fn refused(why: impl Into<String>) -> Reaction {
    Reaction {
        refused: Some(why.into()),
        ..Reaction::default()
    }
}

/// Decides about `data` (a whole frame that came in on `in_port`), sent up
/// by the flow whose cookie is `cookie`. None: not the profile's packet.
pub fn react(m: &Model, cookie: u64, in_port: u32, data: &[u8]) -> Option<Reaction> {
    let role = Role::of_cookie(cookie)?;
    let key = packet::extract(data, in_port);
    let ip = |f: Field| Ipv4Addr::from(key.get(f) as u32);
    Some(match role {
        Role::MetadataMiss => {
            let Some(md) = m
                .metadata
                .as_ref()
                .filter(|md| md.mode == MetadataMode::PerConnection)
            else {
                return Some(refused("per-connection metadata flows are not configured"));
            };
            let Some(inst) = m.instance_on(in_port) else {
                return Some(refused(format!("port {in_port} has no instance")));
            };
            let Some(net) = m.network(inst.network) else {
                return Some(refused("the instance's network is gone"));
            };
            let src = ip(Field::Ipv4Src);
            if !key.has_field(Field::TcpSrc) || !inst.addresses.contains(&src) {
                return Some(refused(format!(
                    "not a TCP request from instance {}'s addresses",
                    inst.name
                )));
            }
            let sport = key.get(Field::TcpSrc) as u16;
            let cookie = Role::MetadataConnection.cookie(inst.subject);
            let fwd = ProfileFlow::with_timeout(
                METADATA_NAT,
                100,
                cookie,
                IDLE_TIMEOUT_S,
                &format!(
                    "in_port={in_port},dl_src={},tcp,nw_src={src},tp_src={sport},nw_dst={METADATA_IP},tp_dst=80",
                    mac_string(inst.mac)
                ),
                &metadata_forward(md),
            );
            let back = ProfileFlow::with_timeout(
                CLASSIFIER,
                300,
                cookie,
                IDLE_TIMEOUT_S,
                &format!(
                    "in_port=LOCAL,tcp,nw_src={},tp_src={},nw_dst={src},tp_dst={sport}",
                    md.host_ip, md.host_port
                ),
                &metadata_return(md, net, inst, in_port),
            );
            Reaction {
                flows: vec![fwd, back],
                reinject: true,
                ..Reaction::default()
            }
        }
        Role::VerifySourceMiss => {
            let id = cookie as u32;
            let Some(net) = m.network(id) else {
                return Some(refused(format!("network {id} is gone")));
            };
            let src = ip(Field::Ipv4Src);
            let match_ = format!("metadata={id:#x}/0xffffffff,ip,nw_src={src}");
            if net.in_prefixes(src) {
                Reaction {
                    flows: vec![ProfileFlow::with_timeout(
                        VERIFY_SOURCE,
                        100,
                        Role::VerifiedSource.cookie(id),
                        IDLE_TIMEOUT_S,
                        &match_,
                        &format!("goto_table:{SWITCH_PRIVATE}"),
                    )],
                    reinject: true,
                    ..Reaction::default()
                }
            } else {
                // Refused sources are remembered for a minute, so that a flood
                // of them costs one packet each, not one per packet.
                Reaction {
                    flows: vec![ProfileFlow::with_timeout(
                        VERIFY_SOURCE,
                        90,
                        Role::VerifiedSource.cookie(id),
                        60,
                        &match_,
                        "drop",
                    )],
                    refused: Some(format!("{src} is not in network {}'s prefixes", net.name)),
                    ..Reaction::default()
                }
            }
        }
        Role::ArpMiss => {
            let id = cookie as u32;
            let Some(net) = m.network(id) else {
                return Some(refused(format!("network {id} is gone")));
            };
            let target = ip(Field::ArpTpa);
            match net.uplink {
                Some(u) if net.in_prefixes(target) => Reaction {
                    relay: Some(u),
                    ..Reaction::default()
                },
                _ => refused(format!(
                    "ARP for {target}: not an address of network {}",
                    net.name
                )),
            }
        }
        Role::NdAnswer => {
            let id = cookie as u32;
            let Some(target) = solicited_target(data) else {
                return Some(refused("not a neighbor solicitation"));
            };
            let owner = m
                .instances
                .iter()
                .filter(|i| i.network == id)
                .find(|i| i.ipv6_sources().contains(&target));
            match owner.and_then(|i| neighbor_advertisement(data, i.mac)) {
                Some(na) => Reaction {
                    reply: Some(na),
                    ..Reaction::default()
                },
                None => refused(format!(
                    "neighbor solicitation for {target}: not an address of network {id}"
                )),
            }
        }
        _ => return None,
    })
}

const ETH: usize = 14;
const IP6: usize = 40;
const ICMP6: usize = ETH + IP6;
const NS_LEN: usize = 24;

/// The target of an untagged IPv6 neighbor solicitation without extension headers.
fn solicited_target(ns: &[u8]) -> Option<Ipv6Addr> {
    let ok = ns.len() >= ICMP6 + NS_LEN
        && ns[12..14] == [0x86, 0xdd]
        && ns[ETH] >> 4 == 6
        && ns[ETH + 6] == 58
        && ns[ICMP6] == 135
        && ns[ICMP6 + 1] == 0;
    ok.then(|| {
        let t: [u8; 16] = ns[ICMP6 + 8..ICMP6 + 24].try_into().unwrap_or_default();
        Ipv6Addr::from(t)
    })
}

/// The neighbor advertisement (RFC 4861 4.4) that answers solicitation `ns`
/// (a whole Ethernet frame) for its target, owned by `mac`: from the target,
/// to the solicitation's source (all nodes if that is `::`), solicited (when
/// it can be) and override flags set, the target link-layer option, the
/// ICMPv6 checksum, hop limit 255 (receivers drop anything else). None if
/// `ns` is not an untagged solicitation without extension headers.
pub fn neighbor_advertisement(ns: &[u8], mac: [u8; 6]) -> Option<Vec<u8>> {
    let target = solicited_target(ns)?;
    let src: [u8; 16] = ns[ETH + 8..ETH + 24].try_into().ok()?;
    let dad = Ipv6Addr::from(src).is_unspecified();
    let (eth_dst, ip_dst): ([u8; 6], [u8; 16]) = if dad {
        (
            [0x33, 0x33, 0, 0, 0, 1],
            Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1).octets(),
        )
    } else {
        (ns[6..12].try_into().ok()?, src)
    };
    let mut icmp = Vec::with_capacity(32);
    icmp.extend_from_slice(&[136, 0, 0, 0]);
    // Router: no; solicited: unless it answers duplicate address detection; override: yes.
    icmp.extend_from_slice(&[if dad { 0x20 } else { 0x60 }, 0, 0, 0]);
    icmp.extend_from_slice(&target.octets());
    icmp.extend_from_slice(&[2, 1]);
    icmp.extend_from_slice(&mac);
    let sum = icmp6_checksum(&target.octets(), &ip_dst, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut f = Vec::with_capacity(ICMP6 + icmp.len());
    f.extend_from_slice(&eth_dst);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x86, 0xdd]);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    f.extend_from_slice(&[58, 255]);
    f.extend_from_slice(&target.octets());
    f.extend_from_slice(&ip_dst);
    f.extend_from_slice(&icmp);
    Some(f)
}

/// The ICMPv6 checksum over the IPv6 pseudo-header (RFC 8200 8.1) and `icmp`.
fn icmp6_checksum(src: &[u8; 16], dst: &[u8; 16], icmp: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from(c[0]) << 8
            };
            sum += u32::from(w);
        }
    };
    add(src);
    add(dst);
    add(&(icmp.len() as u32).to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(icmp);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
