//! The control plane's side of the seed's "populate on demand" flows: what to
//! install when a profile flow sends a packet up (per-connection metadata NAT,
//! verifying a private network's sources, ARP for unknown private addresses).

use std::net::Ipv4Addr;

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
        _ => return None,
    })
}
