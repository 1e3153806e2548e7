//! Zero-copy header views, one module per protocol, in the style of smoltcp's `wire`.
//!
//! Every view wraps a byte buffer (`T: AsRef<[u8]>`, writable when `T: AsMut<[u8]>`) that
//! starts at its header. `new_checked` guarantees that every getter is in bounds, so code
//! that got a view from it cannot panic on any input; `new_unchecked` is for buffers the
//! caller has already measured.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub(crate) mod field;
pub mod geneve;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod mpls;
pub mod pbb;
pub mod sctp;
pub mod tcp;
pub mod udp;
pub mod vlan;
pub mod vxlan;

/// Ethertypes the parser knows.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    /// 802.1Q customer tag.
    pub const VLAN: u16 = 0x8100;
    pub const IPV6: u16 = 0x86dd;
    pub const MPLS: u16 = 0x8847;
    pub const MPLS_MCAST: u16 = 0x8848;
    /// 802.1ad service tag.
    pub const QINQ: u16 = 0x88a8;
    /// 802.1ah backbone service instance tag.
    pub const PBB: u16 = 0x88e7;
}

/// IP protocol numbers and IPv6 next-header values the parser knows.
pub mod ip_proto {
    pub const HOPOPT: u8 = 0;
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const IPV6_ROUTE: u8 = 43;
    pub const IPV6_FRAG: u8 = 44;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const IPV6_NONXT: u8 = 59;
    pub const IPV6_OPTS: u8 = 60;
    pub const SCTP: u8 = 132;
}

/// UDP destination ports of the tunnel protocols (IANA).
pub mod udp_port {
    /// VXLAN, RFC 7348.
    pub const VXLAN: u16 = 4789;
    /// Geneve, RFC 8926.
    pub const GENEVE: u16 = 6081;
}
