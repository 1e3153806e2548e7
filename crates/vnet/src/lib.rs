//! The virtual-network profile of `../shared/DESIGN.md` section 3, from the
//! seed (`shared/seed/openflow-integration.md`): an operator describes
//! networks, the instances attached to them and the metadata service; this
//! crate turns that description into the seed's named, staged flow tables
//! ([`compile`]) and decides what the switch does with the packets those
//! tables send to the control plane ([`react`]).
//!
//! The output is ovs-ofctl flow text, so every flow the profile installs can
//! be read, dumped and reproduced with the same syntax an operator uses. The
//! profile's flows carry cookies under [`COOKIE_TAG`]: the switch replaces them
//! as a set when the description changes, and leaves every other flow (a
//! controller's, the API's) alone.

mod compile;
mod model;
mod overlay;
mod react;
pub mod secgroups;

pub use compile::{compile, ProfileFlow};
pub use model::{link_local_of, Instance, Model, Network, ProfileError};
pub use overlay::Peer;
pub use react::{neighbor_advertisement, react, Reaction};

/// The seed's stages and the tables they live in. Controllers may use the
/// tables in between.
pub mod table {
    pub const CLASSIFIER: u8 = 0;
    pub const METADATA_NAT: u8 = 10;
    /// Metadata mode nat: replies from the host's server, translated back by conntrack,
    /// are sent to the instance whose port the connection's ct_mark holds.
    pub const METADATA_NAT_REPLY: u8 = 11;
    pub const ARP_RESPONDER: u8 = 20;
    pub const ARP_REPLY: u8 = 21;
    /// Neighbor solicitations from instances: known targets answered by the control plane.
    pub const ND_RESPONDER: u8 = 22;
    pub const SWITCH_NORMAL: u8 = 30;
    /// Before switch_private: a table may only go to later ones.
    pub const VERIFY_SOURCE: u8 = 39;
    pub const SWITCH_PRIVATE: u8 = 40;
    pub const VERIFY_DESTINATION: u8 = 42;
    pub const SWITCH_VLAN: u8 = 50;
    pub const SWITCH_VNET: u8 = 60;
    /// L2 virtual networks over VXLAN and Geneve tunnels.
    pub const SWITCH_TUNNEL: u8 = 61;
    /// Security groups (crate::secgroups): traffic from a filtered instance is tracked here...
    pub const SG_EGRESS: u8 = 90;
    /// ... and judged here (rules, replies, invalid), then switched.
    pub const SG_EGRESS_CT: u8 = 91;
    /// Traffic switched to a filtered instance (reg6 = its port) is tracked here...
    pub const SG_INGRESS: u8 = 95;
    /// ... and judged here, then output.
    pub const SG_INGRESS_CT: u8 = 96;

    /// (table, name) as TABLE_FEATURES, dumps and metrics show them.
    pub const NAMES: &[(u8, &str)] = &[
        (CLASSIFIER, "classifier"),
        (METADATA_NAT, "metadata_nat"),
        (METADATA_NAT_REPLY, "metadata_nat_reply"),
        (ARP_RESPONDER, "arp_responder"),
        (ARP_REPLY, "arp_reply"),
        (ND_RESPONDER, "nd_responder"),
        (SWITCH_NORMAL, "switch_normal"),
        (VERIFY_SOURCE, "verify_source"),
        (SWITCH_PRIVATE, "switch_private"),
        (VERIFY_DESTINATION, "verify_destination"),
        (SWITCH_VLAN, "switch_vlan"),
        (SWITCH_VNET, "switch_vnet"),
        (SWITCH_TUNNEL, "switch_tunnel"),
        (SG_EGRESS, "sg_egress"),
        (SG_EGRESS_CT, "sg_egress_ct"),
        (SG_INGRESS, "sg_ingress"),
        (SG_INGRESS_CT, "sg_ingress_ct"),
    ];
}

/// The high 16 bits of every profile flow's cookie.
pub const COOKIE_TAG: u64 = 0xf10f << 48;
/// Selects the tag: `cookie=COOKIE_TAG/COOKIE_TAG_MASK` is every profile flow.
pub const COOKIE_TAG_MASK: u64 = 0xffff << 48;
/// Selects tag and role: all flows of one role.
pub const COOKIE_ROLE_MASK: u64 = 0x00ff_ffff << 40;

/// What a profile flow is for (cookie bits 40..48); the low 32 bits name the
/// subject (an instance, a network).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Role {
    /// Forwarding, classification, ARP answers.
    Base = 1,
    /// Drops traffic from an instance whose addresses are not its own.
    Spoof = 2,
    /// Drops traffic to the metadata service from ports that are not instances.
    NotInstance = 3,
    /// Sends a new connection to the metadata service to the control plane.
    MetadataMiss = 4,
    /// A per-connection metadata NAT flow pair.
    MetadataConnection = 5,
    /// Sends an unverified source on a private network to the control plane.
    VerifySourceMiss = 6,
    /// A source the control plane verified (or refused).
    VerifiedSource = 7,
    /// Sends ARP for an unknown address on a private network to the control plane.
    ArpMiss = 8,
    /// Sends a neighbor solicitation for a known IPv6 address (subject: the
    /// network) to the control plane, which answers it.
    NdAnswer = 9,
    /// Security groups (subject: the instance): a new connection a rule allowed (committed).
    SgAllowed = 0x20,
    /// ... a new connection no rule allowed (dropped).
    SgNoRule = 0x21,
    /// ... a packet conntrack found invalid (dropped).
    SgInvalid = 0x22,
}

impl Role {
    pub fn cookie(self, subject: u32) -> u64 {
        COOKIE_TAG | (u64::from(self as u8) << 40) | u64::from(subject)
    }

    pub fn of_cookie(cookie: u64) -> Option<Role> {
        if cookie & COOKIE_TAG_MASK != COOKIE_TAG {
            return None;
        }
        Some(match (cookie >> 40) as u8 {
            1 => Role::Base,
            2 => Role::Spoof,
            3 => Role::NotInstance,
            4 => Role::MetadataMiss,
            5 => Role::MetadataConnection,
            6 => Role::VerifySourceMiss,
            7 => Role::VerifiedSource,
            8 => Role::ArpMiss,
            9 => Role::NdAnswer,
            0x20 => Role::SgAllowed,
            0x21 => Role::SgNoRule,
            0x22 => Role::SgInvalid,
            _ => return None,
        })
    }
}

/// A stable 32-bit name for an instance in cookies (FNV-1a of its name), so
/// that its counters can be found again after the description changes.
pub fn subject_of(name: &str) -> u32 {
    name.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The metadata service's address as instances see it.
pub const METADATA_IP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(169, 254, 169, 254);
/// An instance's own address on the dedicated metadata subnet 169.254.169.252/30.
pub const METADATA_SUBNET_CLIENT: std::net::Ipv4Addr = std::net::Ipv4Addr::new(169, 254, 169, 253);
/// The MAC that answers for 169.254.169.254 on the metadata subnet (a9:fe:a9:fe is the address).
pub const METADATA_MAC: [u8; 6] = [0x02, 0xa9, 0xfe, 0xa9, 0xfe, 0xfe];
/// Metadata value of ARP requests from the host (LOCAL) to instances.
pub const HOST_NETWORK: u32 = 0xffff_ffff;
/// The conntrack zone of metadata connections in mode nat: one zone for every
/// network, because a reply from the host's server carries nothing that names the
/// network (the instance's port travels in the connection's ct_mark). Security
/// groups use the network id as zone, so a filtered instance's network may not be
/// this one while the mode is nat.
pub const METADATA_ZONE: u16 = 0xffff;
/// How long per-connection and verified-source flows live without traffic.
pub const IDLE_TIMEOUT_S: u16 = 300;

pub fn mac_string(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split([':', '-']);
    for b in &mut out {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}
