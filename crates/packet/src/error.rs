//! The two error types of the crate: one for reading headers, one for editing packets.
//!
//! Each variant names the exact place that failed so that a counter or a log line can say
//! which header was bad without carrying the bytes around.

use crate::key::Field;

/// Why a header view refused a buffer in `new_checked`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Fewer than 14 bytes: no destination, source and ethertype.
    #[error("ethernet header truncated")]
    EthernetTruncated,
    /// Fewer than 4 bytes after a 0x8100/0x88a8 TPID.
    #[error("vlan tag truncated")]
    VlanTruncated,
    /// Fewer than 4 bytes after the 0x88e7 ethertype.
    #[error("pbb i-tag truncated")]
    PbbTruncated,
    /// Fewer than 4 bytes where an MPLS label stack entry should be.
    #[error("mpls label truncated")]
    MplsTruncated,
    /// Fewer than 28 bytes of ARP.
    #[error("arp packet truncated")]
    ArpTruncated,
    /// ARP for some other hardware or protocol than Ethernet and IPv4.
    #[error("arp packet is not ethernet/ipv4")]
    ArpNotEthernetIpv4,
    /// Fewer than 20 bytes, or fewer than the IHL says.
    #[error("ipv4 header truncated")]
    Ipv4Truncated,
    /// Version nibble is not 4.
    #[error("ipv4 version is not 4")]
    Ipv4BadVersion,
    /// IHL below 5 words.
    #[error("ipv4 header length below 20 bytes")]
    Ipv4BadHeaderLen,
    /// Total length shorter than the header itself.
    #[error("ipv4 total length shorter than header")]
    Ipv4BadTotalLen,
    /// Fewer than 40 bytes.
    #[error("ipv6 header truncated")]
    Ipv6Truncated,
    /// Version nibble is not 6.
    #[error("ipv6 version is not 6")]
    Ipv6BadVersion,
    /// An IPv6 extension header is cut short (its fixed part or its declared length).
    #[error("ipv6 extension header truncated")]
    Ipv6ExtTruncated,
    /// Fewer than 20 bytes of TCP.
    #[error("tcp header truncated")]
    TcpTruncated,
    /// Data offset below 5 words or past the end of the buffer.
    #[error("tcp data offset invalid")]
    TcpBadHeaderLen,
    /// Fewer than 8 bytes of UDP.
    #[error("udp header truncated")]
    UdpTruncated,
    /// Fewer than 12 bytes of SCTP common header.
    #[error("sctp header truncated")]
    SctpTruncated,
    /// Fewer than 4 bytes of ICMP.
    #[error("icmpv4 header truncated")]
    Icmpv4Truncated,
    /// Fewer than 4 bytes of ICMPv6.
    #[error("icmpv6 header truncated")]
    Icmpv6Truncated,
    /// An NS/NA shorter than its 24 bytes (header, reserved word, target).
    #[error("neighbor discovery message truncated")]
    NdTruncated,
    /// An ND option whose length is zero or runs past the buffer.
    #[error("neighbor discovery option malformed")]
    NdOptionMalformed,
    /// Fewer than 8 bytes of VXLAN header.
    #[error("vxlan header truncated")]
    VxlanTruncated,
    /// Fewer than 8 bytes of Geneve header, or fewer than its option length says.
    #[error("geneve header truncated")]
    GeneveTruncated,
    /// A Geneve version other than 0 (RFC 8926 says to drop it).
    #[error("geneve version is not 0")]
    GeneveBadVersion,
    /// A Geneve option whose length runs past the options area.
    #[error("geneve option malformed")]
    GeneveOptionMalformed,
}

/// Why a packet edit could not be applied. The packet is left unchanged in every case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The frame has no complete Ethernet header.
    #[error("no ethernet header")]
    NoEthernet,
    /// pop_vlan or a VLAN set-field on a frame without a tag.
    #[error("no vlan tag")]
    NoVlan,
    /// An MPLS edit on a frame without a label stack.
    #[error("no mpls label")]
    NoMpls,
    /// pop_pbb or pbb_isid set-field on a frame without an I-TAG.
    #[error("no pbb i-tag")]
    NoPbb,
    /// ARP set-field on something that is not Ethernet/IPv4 ARP.
    #[error("no arp header")]
    NoArp,
    /// An IP TTL or DSCP/ECN/proto edit on a packet that is neither IPv4 nor IPv6.
    #[error("no ip header")]
    NoIp,
    /// An IPv4 address edit on a non-IPv4 packet.
    #[error("no ipv4 header")]
    NoIpv4,
    /// An IPv6 field edit on a non-IPv6 packet.
    #[error("no ipv6 header")]
    NoIpv6,
    /// A TCP port edit without a (first-fragment) TCP header.
    #[error("no tcp header")]
    NoTcp,
    /// A UDP port edit without a (first-fragment) UDP header.
    #[error("no udp header")]
    NoUdp,
    /// An SCTP port edit without an SCTP header.
    #[error("no sctp header")]
    NoSctp,
    /// An ICMPv4 type/code edit without an ICMPv4 header.
    #[error("no icmpv4 header")]
    NoIcmpv4,
    /// An ICMPv6 type/code edit without an ICMPv6 header.
    #[error("no icmpv6 header")]
    NoIcmpv6,
    /// ipv6_nd_target set-field on something that is not NS/NA.
    #[error("no neighbor discovery target")]
    NoNdTarget,
    /// ipv6_nd_sll set-field on an NS without a source link-layer address option.
    #[error("no nd source link-layer option")]
    NoNdSll,
    /// ipv6_nd_tll set-field on an NA without a target link-layer address option.
    #[error("no nd target link-layer option")]
    NoNdTll,
    /// copy_ttl_in/out with nothing under the top label whose TTL we can reach.
    #[error("no inner ttl to copy")]
    NoInnerTtl,
    /// A set-field on a field OpenFlow does not let actions write.
    #[error("field {0:?} cannot be set")]
    NotSettable(Field),
    /// A push action with an ethertype the spec does not allow for it.
    #[error("ethertype {0:#06x} not allowed for this push")]
    BadEthertype(u16),
    /// The buffer has no headroom left for a push.
    #[error("no headroom for push")]
    NoHeadroom,
    /// The key's offsets point past the end of the buffer (key and buffer disagree).
    #[error("packet shorter than the key says")]
    Truncated,
    /// dec_nw_ttl/dec_mpls_ttl found a TTL of 0 or 1: the packet must not be forwarded,
    /// the caller sends it to the controller with OFPR_INVALID_TTL or drops it.
    #[error("ttl expired")]
    InvalidTtl,
}
