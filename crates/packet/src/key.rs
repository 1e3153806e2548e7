//! The flow key: every OpenFlow 1.3 OXM basic field at a fixed bit position in an array of
//! 64-bit words, so that a match is `(key.words[i] & mask.words[i]) == value.words[i]` for
//! each word and a hash of the masked words finds a candidate entry, as OVS's miniflow does.
//!
//! # Layout
//!
//! 24 words: 16 for the packet's headers and metadata (128 bytes, two cache lines), then 8
//! for the Open vSwitch registers `reg0`-`reg15` (the third line, which only flows that
//! use registers ever match on). The first line (words 0-7) holds what the common
//! classifiers look at: in_port, metadata, Ethernet, VLAN, IPv4 and L4 ports. Positions are
//! `(word, shift, bits)` with `shift` counted from the least significant bit; 128-bit
//! fields take two whole words, high half first.
//!
//! | word | bits 63..0 |
//! |------|------------|
//! | 0 | `in_port` 63..32, `in_phy_port` 31..0 |
//! | 1 | `metadata` |
//! | 2 | `tunnel_id` |
//! | 3 | `eth_dst` 63..16, `eth_type` 15..0 |
//! | 4 | `eth_src` 63..16, `vlan_vid` 15..3 (13 bits, with OFPVID_PRESENT), `vlan_pcp` 2..0 |
//! | 5 | `ipv4_src` = `arp_spa` 63..32, `ipv4_dst` = `arp_tpa` 31..0 |
//! | 6 | `ip_proto` 63..56, `ip_dscp` 55..50, `ip_ecn` 49..48, `arp_op` 47..32, `tcp_src` = `udp_src` = `sctp_src` 31..16, `tcp_dst` = `udp_dst` = `sctp_dst` 15..0 |
//! | 7-8 | `ipv6_src` |
//! | 9-10 | `ipv6_dst` |
//! | 11-12 | `ipv6_nd_target` |
//! | 13 | `arp_sha` = `ipv6_nd_sll` 63..16, `icmpv4_type` = `icmpv6_type` 15..8, `icmpv4_code` = `icmpv6_code` 7..0 |
//! | 14 | `arp_tha` = `ipv6_nd_tll` 63..16, `mpls_tc` 15..13, `mpls_bos` 12, (11..9 zero), `ipv6_exthdr` 8..0 |
//! | 15 | `ipv6_flabel` 63..44, `mpls_label` 43..24, `pbb_isid` 23..0 |
//! | 16-23 | `reg2n` 63..32, `reg2n+1` 31..0 in word 16+n, which is also `xregn` |
//! | 24 | `ct_state` 63..56, `ct_nw_proto` 55..48, `ct_zone` 47..32, `ct_mark` 31..0 |
//! | 25 | `ct_nw_src` 63..32, `ct_nw_dst` 31..0 |
//! | 26 | `ct_tp_src` 63..48, `ct_tp_dst` 47..32 |
//! | 27-28 | `ct_label` |
//! | 29 | `tun_src` 63..32, `tun_dst` 31..0 |
//! | 30 | `conj_id` 31..0 |
//! | 31 | `tun_metadata0` 63..32, `tun_metadata1` 31..0 |
//!
//! The connection-tracking words (24-28) are written only by the `ct` action (and cleared
//! by `ct_clear`); like the registers they start at zero for every packet. The tunnel
//! word (29) holds the outer IPv4 addresses of a decapsulated packet (zero for any other)
//! and what `set_field:A->tun_dst` writes for a `remote_ip = "flow"` tunnel port.
//! Word 31 holds the data of the (at most [`TUN_METADATA_FIELDS`]) Geneve options the
//! switch's TLV map names, 4 bytes each, filled on Geneve decapsulation and by
//! `set_field`; zero for other packets (an absent option reads as zero).
//! `conj_id` (word 30) is zero in every packet's key: only a table's own lookup sets it, in
//! a copy of the key, to find the `conj_id=X` entries of a satisfied conjunctive match.
//!
//! Fields joined by `=` share storage. They can never both be meaningful for one packet
//! (ARP vs IPv4, TCP vs UDP vs SCTP, ICMPv4 vs ICMPv6, ARP vs ND), and OpenFlow requires every
//! match on one of them to also match the eth_type/ip_proto/icmp type that tells them apart,
//! so sharing is invisible to a correct match; it is what keeps the key within 128 bytes.
//! [`FlowKey::has_field`] says whether a field means anything for the packet at hand.
//!
//! Besides the words the key records which headers were parsed ([`Layers`]) and where they
//! start ([`Offsets`]), so actions edit the frame without parsing it again.

use std::fmt;

/// Number of 64-bit words in [`FlowKey::words`]: the words fields use (up to the tunnel
/// word, 29) rounded up to a power of two, because lookups index the key with
/// `w % FLOW_KEY_WORDS`, which is then a mask rather than a division per word (at 29 it
/// was a multiply-shift-subtract per probed word: +100 instructions per packet at B1k)
/// and still spares the bounds check. Word 31 belongs to no field and stays zero; word 30
/// (`conj_id`) is set only in a conjunctive lookup's copy of the key.
pub const FLOW_KEY_WORDS: usize = 32;

/// The first word of the registers ([`Field::Reg0`]...): words before it are what
/// extraction fills from the frame (and in_port, metadata, tunnel_id), words from it on
/// are set only by actions. Registers start at zero for every packet.
pub const REG_WORD: usize = 16;

/// The first connection-tracking word ([`Field::CtState`]...), up to [`TUN_WORD`].
pub const CT_WORD: usize = 24;

/// The tunnel metadata word: `tun_src` and `tun_dst`.
pub const TUN_WORD: usize = 29;

/// The Geneve option word: `tun_metadata0` and `tun_metadata1`.
pub const TUN_METADATA_WORD: usize = 31;

/// How many `tun_metadataN` fields the key holds (`tun_metadata0`..): what keeps the key
/// at 32 words. Open vSwitch has 64 (and 256 bytes of options in all).
pub const TUN_METADATA_FIELDS: usize = 2;

/// OFPVID_PRESENT: set in `vlan_vid` when the frame has a tag.
pub const OFPVID_PRESENT: u16 = 0x1000;
/// OFPVID_NONE: the `vlan_vid` of an untagged frame.
pub const OFPVID_NONE: u16 = 0x0000;

/// The OFPIEH_* bits of the `ipv6_exthdr` pseudo-field (OpenFlow 1.3 section 7.2.3.8).
pub mod ipv6_exthdr {
    /// "No next header" encountered.
    pub const NONEXT: u16 = 1 << 0;
    /// Encrypted security payload.
    pub const ESP: u16 = 1 << 1;
    /// Authentication header.
    pub const AUTH: u16 = 1 << 2;
    /// One or two destination options headers.
    pub const DEST: u16 = 1 << 3;
    /// Fragment header.
    pub const FRAG: u16 = 1 << 4;
    /// Router header.
    pub const ROUTER: u16 = 1 << 5;
    /// Hop-by-hop header.
    pub const HOP: u16 = 1 << 6;
    /// Unexpected repeats encountered.
    pub const UNREP: u16 = 1 << 7;
    /// Unexpected sequencing encountered.
    pub const UNSEQ: u16 = 1 << 8;
}

/// Where a field lives: bits `shift..shift+bits` of `words[word]`; a 128-bit field is
/// `words[word]` (high) and `words[word + 1]` (low).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FieldPos {
    pub word: u8,
    pub shift: u8,
    pub bits: u8,
}

const fn at(word: u8, shift: u8, bits: u8) -> FieldPos {
    FieldPos { word, shift, bits }
}

/// The position of every field, by name, for code that wants a constant position.
pub mod pos {
    use super::{at, FieldPos};
    pub const IN_PORT: FieldPos = at(0, 32, 32);
    pub const IN_PHY_PORT: FieldPos = at(0, 0, 32);
    pub const METADATA: FieldPos = at(1, 0, 64);
    pub const TUNNEL_ID: FieldPos = at(2, 0, 64);
    pub const ETH_DST: FieldPos = at(3, 16, 48);
    pub const ETH_TYPE: FieldPos = at(3, 0, 16);
    pub const ETH_SRC: FieldPos = at(4, 16, 48);
    pub const VLAN_VID: FieldPos = at(4, 3, 13);
    pub const VLAN_PCP: FieldPos = at(4, 0, 3);
    pub const IPV4_SRC: FieldPos = at(5, 32, 32);
    pub const IPV4_DST: FieldPos = at(5, 0, 32);
    pub const ARP_SPA: FieldPos = IPV4_SRC;
    pub const ARP_TPA: FieldPos = IPV4_DST;
    pub const IP_PROTO: FieldPos = at(6, 56, 8);
    pub const IP_DSCP: FieldPos = at(6, 50, 6);
    pub const IP_ECN: FieldPos = at(6, 48, 2);
    pub const ARP_OP: FieldPos = at(6, 32, 16);
    pub const TP_SRC: FieldPos = at(6, 16, 16);
    pub const TP_DST: FieldPos = at(6, 0, 16);
    pub const IPV6_SRC: FieldPos = at(7, 0, 128);
    pub const IPV6_DST: FieldPos = at(9, 0, 128);
    pub const IPV6_ND_TARGET: FieldPos = at(11, 0, 128);
    pub const ARP_SHA: FieldPos = at(13, 16, 48);
    pub const IPV6_ND_SLL: FieldPos = ARP_SHA;
    pub const ICMP_TYPE: FieldPos = at(13, 8, 8);
    pub const ICMP_CODE: FieldPos = at(13, 0, 8);
    pub const ARP_THA: FieldPos = at(14, 16, 48);
    pub const IPV6_ND_TLL: FieldPos = ARP_THA;
    pub const MPLS_TC: FieldPos = at(14, 13, 3);
    pub const MPLS_BOS: FieldPos = at(14, 12, 1);
    pub const IPV6_EXTHDR: FieldPos = at(14, 0, 9);
    pub const IPV6_FLABEL: FieldPos = at(15, 44, 20);
    pub const MPLS_LABEL: FieldPos = at(15, 24, 20);
    pub const PBB_ISID: FieldPos = at(15, 0, 24);
    /// `reg(n)`: 32 bits, two to a word, the even one high.
    pub const fn reg(n: u8) -> FieldPos {
        at(16 + n / 2, if n.is_multiple_of(2) { 32 } else { 0 }, 32)
    }
    /// `xreg(n)`: the whole word 16+n (`reg2n` high, `reg2n+1` low, as in Open vSwitch).
    pub const fn xreg(n: u8) -> FieldPos {
        at(16 + n, 0, 64)
    }
    pub const CT_STATE: FieldPos = at(24, 56, 8);
    pub const CT_NW_PROTO: FieldPos = at(24, 48, 8);
    pub const CT_ZONE: FieldPos = at(24, 32, 16);
    pub const CT_MARK: FieldPos = at(24, 0, 32);
    pub const CT_NW_SRC: FieldPos = at(25, 32, 32);
    pub const CT_NW_DST: FieldPos = at(25, 0, 32);
    pub const CT_TP_SRC: FieldPos = at(26, 48, 16);
    pub const CT_TP_DST: FieldPos = at(26, 32, 16);
    pub const CT_LABEL: FieldPos = at(27, 0, 128);
    pub const TUN_SRC: FieldPos = at(29, 32, 32);
    pub const TUN_DST: FieldPos = at(29, 0, 32);
    pub const CONJ_ID: FieldPos = at(30, 0, 32);
    pub const TUN_METADATA0: FieldPos = at(31, 32, 32);
    pub const TUN_METADATA1: FieldPos = at(31, 0, 32);
}

/// An OXM_OF_* field of class OFPXMC_OPENFLOW_BASIC; the discriminant is its oxm_field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Field {
    InPort = 0,
    InPhyPort = 1,
    Metadata = 2,
    EthDst = 3,
    EthSrc = 4,
    EthType = 5,
    VlanVid = 6,
    VlanPcp = 7,
    IpDscp = 8,
    IpEcn = 9,
    IpProto = 10,
    Ipv4Src = 11,
    Ipv4Dst = 12,
    TcpSrc = 13,
    TcpDst = 14,
    UdpSrc = 15,
    UdpDst = 16,
    SctpSrc = 17,
    SctpDst = 18,
    Icmpv4Type = 19,
    Icmpv4Code = 20,
    ArpOp = 21,
    ArpSpa = 22,
    ArpTpa = 23,
    ArpSha = 24,
    ArpTha = 25,
    Ipv6Src = 26,
    Ipv6Dst = 27,
    Ipv6Flabel = 28,
    Icmpv6Type = 29,
    Icmpv6Code = 30,
    Ipv6NdTarget = 31,
    Ipv6NdSll = 32,
    Ipv6NdTll = 33,
    MplsLabel = 34,
    MplsTc = 35,
    MplsBos = 36,
    PbbIsid = 37,
    TunnelId = 38,
    Ipv6Exthdr = 39,
    // Open vSwitch registers (NXM_NX_REGn): metadata that actions set and matches read,
    // never in the frame. Not OPENFLOW_BASIC fields: `from_oxm` does not return them.
    Reg0 = 40,
    Reg1 = 41,
    Reg2 = 42,
    Reg3 = 43,
    Reg4 = 44,
    Reg5 = 45,
    Reg6 = 46,
    Reg7 = 47,
    Reg8 = 48,
    Reg9 = 49,
    Reg10 = 50,
    Reg11 = 51,
    Reg12 = 52,
    Reg13 = 53,
    Reg14 = 54,
    Reg15 = 55,
    // 64-bit views of register pairs (OXM_OF_PKT_REGn): xreg n = reg 2n : reg 2n+1.
    Xreg0 = 56,
    Xreg1 = 57,
    Xreg2 = 58,
    Xreg3 = 59,
    Xreg4 = 60,
    Xreg5 = 61,
    Xreg6 = 62,
    Xreg7 = 63,
    // Open vSwitch connection-tracking fields (NXM_NX_CT_*), written by the ct action.
    CtState = 64,
    CtZone = 65,
    CtMark = 66,
    CtLabel = 67,
    CtNwProto = 68,
    CtNwSrc = 69,
    CtNwDst = 70,
    CtTpSrc = 71,
    CtTpDst = 72,
    // Open vSwitch tunnel metadata (NXM_NX_TUN_IPV4_SRC/DST): the outer addresses.
    TunSrc = 73,
    TunDst = 74,
    /// Open vSwitch `conj_id` (NXM_NX_CONJ_ID): the id of the conjunctive match a table
    /// lookup found, zero in packets; matched only, never written by actions.
    ConjId = 75,
    /// Open vSwitch `tun_metadata0`/`tun_metadata1` (NXM_NX_TUN_METADATAn): the data of
    /// the Geneve option the TLV map assigns to that index, 4 bytes at most.
    TunMetadata0 = 76,
    TunMetadata1 = 77,
}

struct FieldInfo {
    name: &'static str,
    pos: FieldPos,
    byte_len: u8,
    maskable: bool,
}

const fn info(name: &'static str, pos: FieldPos, byte_len: u8, maskable: bool) -> FieldInfo {
    FieldInfo {
        name,
        pos,
        byte_len,
        maskable,
    }
}

/// Indexed by oxm_field (then the registers). Byte lengths and maskability are OpenFlow
/// 1.3 table 12, with the transport ports maskable as Open vSwitch allows.
const INFO: [FieldInfo; 78] = [
    info("in_port", pos::IN_PORT, 4, false),
    info("in_phy_port", pos::IN_PHY_PORT, 4, false),
    info("metadata", pos::METADATA, 8, true),
    info("eth_dst", pos::ETH_DST, 6, true),
    info("eth_src", pos::ETH_SRC, 6, true),
    info("eth_type", pos::ETH_TYPE, 2, false),
    info("vlan_vid", pos::VLAN_VID, 2, true),
    info("vlan_pcp", pos::VLAN_PCP, 1, false),
    info("ip_dscp", pos::IP_DSCP, 1, false),
    info("ip_ecn", pos::IP_ECN, 1, false),
    info("ip_proto", pos::IP_PROTO, 1, false),
    info("ipv4_src", pos::IPV4_SRC, 4, true),
    info("ipv4_dst", pos::IPV4_DST, 4, true),
    info("tcp_src", pos::TP_SRC, 2, true),
    info("tcp_dst", pos::TP_DST, 2, true),
    info("udp_src", pos::TP_SRC, 2, true),
    info("udp_dst", pos::TP_DST, 2, true),
    info("sctp_src", pos::TP_SRC, 2, true),
    info("sctp_dst", pos::TP_DST, 2, true),
    info("icmpv4_type", pos::ICMP_TYPE, 1, false),
    info("icmpv4_code", pos::ICMP_CODE, 1, false),
    info("arp_op", pos::ARP_OP, 2, false),
    info("arp_spa", pos::ARP_SPA, 4, true),
    info("arp_tpa", pos::ARP_TPA, 4, true),
    info("arp_sha", pos::ARP_SHA, 6, true),
    info("arp_tha", pos::ARP_THA, 6, true),
    info("ipv6_src", pos::IPV6_SRC, 16, true),
    info("ipv6_dst", pos::IPV6_DST, 16, true),
    info("ipv6_flabel", pos::IPV6_FLABEL, 4, true),
    info("icmpv6_type", pos::ICMP_TYPE, 1, false),
    info("icmpv6_code", pos::ICMP_CODE, 1, false),
    info("ipv6_nd_target", pos::IPV6_ND_TARGET, 16, false),
    info("ipv6_nd_sll", pos::IPV6_ND_SLL, 6, false),
    info("ipv6_nd_tll", pos::IPV6_ND_TLL, 6, false),
    info("mpls_label", pos::MPLS_LABEL, 4, false),
    info("mpls_tc", pos::MPLS_TC, 1, false),
    info("mpls_bos", pos::MPLS_BOS, 1, false),
    info("pbb_isid", pos::PBB_ISID, 3, true),
    info("tunnel_id", pos::TUNNEL_ID, 8, true),
    info("ipv6_exthdr", pos::IPV6_EXTHDR, 2, true),
    info("reg0", pos::reg(0), 4, true),
    info("reg1", pos::reg(1), 4, true),
    info("reg2", pos::reg(2), 4, true),
    info("reg3", pos::reg(3), 4, true),
    info("reg4", pos::reg(4), 4, true),
    info("reg5", pos::reg(5), 4, true),
    info("reg6", pos::reg(6), 4, true),
    info("reg7", pos::reg(7), 4, true),
    info("reg8", pos::reg(8), 4, true),
    info("reg9", pos::reg(9), 4, true),
    info("reg10", pos::reg(10), 4, true),
    info("reg11", pos::reg(11), 4, true),
    info("reg12", pos::reg(12), 4, true),
    info("reg13", pos::reg(13), 4, true),
    info("reg14", pos::reg(14), 4, true),
    info("reg15", pos::reg(15), 4, true),
    info("xreg0", pos::xreg(0), 8, true),
    info("xreg1", pos::xreg(1), 8, true),
    info("xreg2", pos::xreg(2), 8, true),
    info("xreg3", pos::xreg(3), 8, true),
    info("xreg4", pos::xreg(4), 8, true),
    info("xreg5", pos::xreg(5), 8, true),
    info("xreg6", pos::xreg(6), 8, true),
    info("xreg7", pos::xreg(7), 8, true),
    info("ct_state", pos::CT_STATE, 4, true),
    info("ct_zone", pos::CT_ZONE, 2, false),
    info("ct_mark", pos::CT_MARK, 4, true),
    info("ct_label", pos::CT_LABEL, 16, true),
    info("ct_nw_proto", pos::CT_NW_PROTO, 1, false),
    info("ct_nw_src", pos::CT_NW_SRC, 4, true),
    info("ct_nw_dst", pos::CT_NW_DST, 4, true),
    info("ct_tp_src", pos::CT_TP_SRC, 2, true),
    info("ct_tp_dst", pos::CT_TP_DST, 2, true),
    info("tun_src", pos::TUN_SRC, 4, true),
    info("tun_dst", pos::TUN_DST, 4, true),
    info("conj_id", pos::CONJ_ID, 4, false),
    info("tun_metadata0", pos::TUN_METADATA0, 4, true),
    info("tun_metadata1", pos::TUN_METADATA1, 4, true),
];

impl Field {
    /// Every field in oxm_field order.
    pub const ALL: [Field; 40] = [
        Field::InPort,
        Field::InPhyPort,
        Field::Metadata,
        Field::EthDst,
        Field::EthSrc,
        Field::EthType,
        Field::VlanVid,
        Field::VlanPcp,
        Field::IpDscp,
        Field::IpEcn,
        Field::IpProto,
        Field::Ipv4Src,
        Field::Ipv4Dst,
        Field::TcpSrc,
        Field::TcpDst,
        Field::UdpSrc,
        Field::UdpDst,
        Field::SctpSrc,
        Field::SctpDst,
        Field::Icmpv4Type,
        Field::Icmpv4Code,
        Field::ArpOp,
        Field::ArpSpa,
        Field::ArpTpa,
        Field::ArpSha,
        Field::ArpTha,
        Field::Ipv6Src,
        Field::Ipv6Dst,
        Field::Ipv6Flabel,
        Field::Icmpv6Type,
        Field::Icmpv6Code,
        Field::Ipv6NdTarget,
        Field::Ipv6NdSll,
        Field::Ipv6NdTll,
        Field::MplsLabel,
        Field::MplsTc,
        Field::MplsBos,
        Field::PbbIsid,
        Field::TunnelId,
        Field::Ipv6Exthdr,
    ];

    /// The field for an OFPXMC_OPENFLOW_BASIC oxm_field number, `None` past 39.
    #[inline]
    pub fn from_oxm(oxm_field: u8) -> Option<Field> {
        Field::ALL.get(usize::from(oxm_field)).copied()
    }

    #[inline]
    pub fn oxm_field(self) -> u8 {
        self as u8
    }

    #[inline]
    fn info(self) -> &'static FieldInfo {
        &INFO[self as usize]
    }

    /// The OXM name without prefix, e.g. `"eth_dst"`.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The field whose [`name`](Self::name) is `name`.
    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL
            .iter()
            .chain(Field::REGS.iter())
            .chain(Field::XREGS.iter())
            .chain(Field::CT.iter())
            .chain(Field::TUN.iter())
            .chain([Field::ConjId].iter())
            .chain(Field::TUN_METADATA.iter())
            .copied()
            .find(|f| f.name() == name)
    }

    /// The connection-tracking fields.
    pub const CT: [Field; 9] = [
        Field::CtState,
        Field::CtZone,
        Field::CtMark,
        Field::CtLabel,
        Field::CtNwProto,
        Field::CtNwSrc,
        Field::CtNwDst,
        Field::CtTpSrc,
        Field::CtTpDst,
    ];

    /// A connection-tracking field: written by `ct` only (`ct_mark`/`ct_label` through
    /// its `exec`), never by set_field, load or move.
    #[inline]
    pub fn is_ct(self) -> bool {
        (Field::CtState as u8..=Field::CtTpDst as u8).contains(&(self as u8))
    }

    /// The tunnel metadata fields.
    pub const TUN: [Field; 2] = [Field::TunSrc, Field::TunDst];

    /// The Geneve option fields, by index (`tun_metadata0`, `tun_metadata1`).
    pub const TUN_METADATA: [Field; TUN_METADATA_FIELDS] =
        [Field::TunMetadata0, Field::TunMetadata1];

    /// `reg0`-`reg15` in order.
    pub const REGS: [Field; 16] = [
        Field::Reg0,
        Field::Reg1,
        Field::Reg2,
        Field::Reg3,
        Field::Reg4,
        Field::Reg5,
        Field::Reg6,
        Field::Reg7,
        Field::Reg8,
        Field::Reg9,
        Field::Reg10,
        Field::Reg11,
        Field::Reg12,
        Field::Reg13,
        Field::Reg14,
        Field::Reg15,
    ];

    /// `xreg0`-`xreg7` in order.
    pub const XREGS: [Field; 8] = [
        Field::Xreg0,
        Field::Xreg1,
        Field::Xreg2,
        Field::Xreg3,
        Field::Xreg4,
        Field::Xreg5,
        Field::Xreg6,
        Field::Xreg7,
    ];

    /// Every field: the 40 OXM basic fields, then the registers.
    pub fn every() -> impl Iterator<Item = Field> {
        Field::ALL
            .into_iter()
            .chain(Field::REGS)
            .chain(Field::XREGS)
            .chain(Field::CT)
            .chain(Field::TUN)
            .chain([Field::ConjId])
            .chain(Field::TUN_METADATA)
    }

    /// `reg0`-`reg15`, `xreg0`-`xreg7`, the connection-tracking and the tunnel fields:
    /// metadata in the key, set by actions (and decapsulation), never from the frame.
    #[inline]
    pub fn is_register(self) -> bool {
        self as u8 >= Field::Reg0 as u8
    }

    /// Meaningful bits: 13 for vlan_vid (12-bit VID plus OFPVID_PRESENT), 20 for
    /// ipv6_flabel and mpls_label, 9 for ipv6_exthdr...
    #[inline]
    pub fn bit_width(self) -> u32 {
        u32::from(self.info().pos.bits)
    }

    /// Payload length of the OXM TLV without mask.
    #[inline]
    pub fn byte_len(self) -> usize {
        usize::from(self.info().byte_len)
    }

    /// Whether OpenFlow 1.3 allows an OXM mask (HASMASK) for this field.
    #[inline]
    pub fn maskable(self) -> bool {
        self.info().maskable
    }

    #[inline]
    pub fn pos(self) -> FieldPos {
        self.info().pos
    }

    /// All meaningful bits set: values and masks are cut to this.
    #[inline]
    pub fn value_mask(self) -> u128 {
        low_mask128(self.bit_width())
    }
}

#[inline(always)]
const fn low_mask(bits: u8) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

#[inline(always)]
const fn low_mask128(bits: u32) -> u128 {
    if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

/// The headers `extract` found complete, as a bit set.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Layers(pub u32);

impl Layers {
    /// A full 14-byte Ethernet header.
    pub const ETH: Layers = Layers(1 << 0);
    /// At least one complete VLAN tag (vlan_vid/vlan_pcp come from the outermost).
    pub const VLAN: Layers = Layers(1 << 1);
    /// At least two complete VLAN tags.
    pub const VLAN_QINQ: Layers = Layers(1 << 2);
    /// A complete top MPLS label (nothing beneath is parsed).
    pub const MPLS: Layers = Layers(1 << 3);
    /// A complete PBB I-TAG (the customer frame is not parsed).
    pub const PBB: Layers = Layers(1 << 4);
    /// A complete Ethernet/IPv4 ARP packet.
    pub const ARP: Layers = Layers(1 << 5);
    /// A complete and sane IPv4 header, options included.
    pub const IPV4: Layers = Layers(1 << 6);
    /// A complete IPv6 fixed header.
    pub const IPV6: Layers = Layers(1 << 7);
    /// The IP packet is a fragment (first or later).
    pub const IP_FRAG: Layers = Layers(1 << 8);
    /// The IP packet is a non-first fragment: it has no L4 header.
    pub const IP_LATER_FRAG: Layers = Layers(1 << 9);
    pub const TCP: Layers = Layers(1 << 10);
    pub const UDP: Layers = Layers(1 << 11);
    pub const SCTP: Layers = Layers(1 << 12);
    pub const ICMPV4: Layers = Layers(1 << 13);
    pub const ICMPV6: Layers = Layers(1 << 14);
    /// A complete Neighbor Solicitation (target read).
    pub const ND_NS: Layers = Layers(1 << 15);
    /// A complete Neighbor Advertisement (target read).
    pub const ND_NA: Layers = Layers(1 << 16);
    /// The NS carries an Ethernet source link-layer address option.
    pub const ND_SLL: Layers = Layers(1 << 17);
    /// The NA carries an Ethernet target link-layer address option.
    pub const ND_TLL: Layers = Layers(1 << 18);

    const NAMES: [&'static str; 19] = [
        "eth",
        "vlan",
        "qinq",
        "mpls",
        "pbb",
        "arp",
        "ipv4",
        "ipv6",
        "frag",
        "later_frag",
        "tcp",
        "udp",
        "sctp",
        "icmpv4",
        "icmpv6",
        "nd_ns",
        "nd_na",
        "nd_sll",
        "nd_tll",
    ];

    pub const NONE: Layers = Layers(0);
    /// What survives a change below L2.5 (an MPLS push/pop or an ethertype change).
    pub const L2: Layers = Layers(Self::ETH.0 | Self::VLAN.0 | Self::VLAN_QINQ.0);

    /// All of `other` present.
    #[inline]
    pub fn contains(self, other: Layers) -> bool {
        self.0 & other.0 == other.0
    }

    /// Any of `other` present.
    #[inline]
    pub fn intersects(self, other: Layers) -> bool {
        self.0 & other.0 != 0
    }

    #[inline]
    pub fn insert(&mut self, other: Layers) {
        self.0 |= other.0;
    }

    #[inline]
    pub fn remove(&mut self, other: Layers) {
        self.0 &= !other.0;
    }
}

impl std::ops::BitOr for Layers {
    type Output = Layers;
    fn bitor(self, rhs: Layers) -> Layers {
        Layers(self.0 | rhs.0)
    }
}

impl fmt::Debug for Layers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut set = f.debug_set();
        for (i, name) in Self::NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                set.entry(&format_args!("{name}"));
            }
        }
        set.finish()
    }
}

/// Byte offsets into the frame, valid for the layers present (zero otherwise).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Debug)]
pub struct Offsets {
    /// The header after the innermost ethertype: MPLS label stack, PBB I-TAG, ARP, IPv4 or
    /// IPv6. Two bytes before it is the ethertype that names it.
    pub l3: u16,
    /// TCP/UDP/SCTP/ICMP header.
    pub l4: u16,
    /// The ND SLL (for NS) or TLL (for NA) option.
    pub nd_option: u16,
    /// The byte holding the L4 protocol number: IPv4 protocol, or the next-header byte of the
    /// last IPv6 header before the L4 header.
    pub ip_proto: u16,
    /// Number of complete VLAN tags.
    pub vlan_tags: u16,
}

/// A parsed flow key. See the module documentation for the layout of `words`.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
#[repr(C, align(64))]
pub struct FlowKey {
    /// Field storage, the only part a classifier hashes and masks.
    pub words: [u64; FLOW_KEY_WORDS],
    /// Headers present.
    pub layers: Layers,
    /// Where the headers start.
    pub offsets: Offsets,
}

impl FlowKey {
    /// The key of no packet: every word zero, no layer. Stores the words in two halves of
    /// 128 bytes, which the compiler writes inline; `*key = FlowKey::default()` on the whole
    /// 256 bytes became a call to memset (+16 instructions per packet).
    #[inline(always)]
    pub fn reset(&mut self) {
        let (low, high) = self.words.split_at_mut(REG_WORD);
        for w in low.iter_mut() {
            *w = 0;
        }
        std::hint::black_box(&mut *high);
        for w in high.iter_mut() {
            *w = 0;
        }
        self.layers = Layers::default();
        self.offsets = Offsets::default();
    }

    /// Reads a field by position; wide fields come back whole as a `u128`.
    #[inline(always)]
    pub fn get_pos(&self, p: FieldPos) -> u128 {
        let w = usize::from(p.word);
        if p.bits > 64 {
            (u128::from(self.words[w]) << 64) | u128::from(self.words[w + 1])
        } else {
            u128::from((self.words[w] >> p.shift) & low_mask(p.bits))
        }
    }

    /// Writes a field by position; bits beyond its width are dropped.
    #[inline(always)]
    pub fn set_pos(&mut self, p: FieldPos, value: u128) {
        let w = usize::from(p.word);
        if p.bits > 64 {
            self.words[w] = (value >> 64) as u64;
            self.words[w + 1] = value as u64;
        } else {
            let m = low_mask(p.bits) << p.shift;
            self.words[w] = (self.words[w] & !m) | (((value as u64) << p.shift) & m);
        }
    }

    /// [`set_pos`](Self::set_pos) for fields of at most 64 bits, the parser's fast path.
    #[inline(always)]
    pub(crate) fn put(&mut self, p: FieldPos, value: u64) {
        let w = usize::from(p.word);
        let m = low_mask(p.bits) << p.shift;
        self.words[w] = (self.words[w] & !m) | ((value << p.shift) & m);
    }

    /// The field's value as the OXM payload reads as a big-endian integer.
    #[inline]
    pub fn get(&self, field: Field) -> u128 {
        self.get_pos(field.pos())
    }

    /// Stores a field value (for vlan_vid, include OFPVID_PRESENT as OpenFlow does).
    #[inline]
    pub fn set(&mut self, field: Field, value: u128) {
        self.set_pos(field.pos(), value);
    }

    /// A mask key with `value_mask` in this field's bits and zero elsewhere; OR several
    /// together (or use [`FlowKey::or_mask`]) to build a match mask.
    #[inline]
    pub fn mask_for(field: Field, value_mask: u128) -> FlowKey {
        let mut k = FlowKey::default();
        k.set(field, value_mask);
        k
    }

    /// A mask covering the whole field (an exact match on it).
    #[inline]
    pub fn exact_mask(field: Field) -> FlowKey {
        Self::mask_for(field, u128::MAX)
    }

    /// Adds `value_mask` for `field` to this mask.
    #[inline]
    pub fn or_mask(&mut self, field: Field, value_mask: u128) {
        let m = Self::mask_for(field, value_mask);
        for (w, mw) in self.words.iter_mut().zip(m.words) {
            *w |= mw;
        }
    }

    /// The words of this key under `mask` (layers and offsets dropped: they are not match
    /// state).
    #[inline]
    pub fn masked(&self, mask: &FlowKey) -> FlowKey {
        let mut out = FlowKey::default();
        for i in 0..FLOW_KEY_WORDS {
            out.words[i] = self.words[i] & mask.words[i];
        }
        out
    }

    /// True when this key under `mask` equals `value` (which must already be masked).
    #[inline]
    pub fn matches(&self, value: &FlowKey, mask: &FlowKey) -> bool {
        let mut diff = 0u64;
        for i in 0..FLOW_KEY_WORDS {
            diff |= (self.words[i] & mask.words[i]) ^ value.words[i];
        }
        diff == 0
    }

    /// Whether `field` describes this packet: its OpenFlow prerequisites hold and its header
    /// was parsed. A field that does not is zero, or (for shared storage) another field.
    pub fn has_field(&self, field: Field) -> bool {
        use Field::*;
        let l = self.layers;
        match field {
            InPort | InPhyPort | Metadata | TunnelId => true,
            f if f.is_register() => true,
            EthDst | EthSrc | EthType | VlanVid => l.contains(Layers::ETH),
            VlanPcp => l.contains(Layers::VLAN),
            IpDscp | IpEcn | IpProto => l.intersects(Layers::IPV4 | Layers::IPV6),
            Ipv4Src | Ipv4Dst => l.contains(Layers::IPV4),
            TcpSrc | TcpDst => l.contains(Layers::TCP),
            UdpSrc | UdpDst => l.contains(Layers::UDP),
            SctpSrc | SctpDst => l.contains(Layers::SCTP),
            Icmpv4Type | Icmpv4Code => l.contains(Layers::ICMPV4),
            ArpOp | ArpSpa | ArpTpa | ArpSha | ArpTha => l.contains(Layers::ARP),
            Ipv6Src | Ipv6Dst | Ipv6Flabel | Ipv6Exthdr => l.contains(Layers::IPV6),
            Icmpv6Type | Icmpv6Code => l.contains(Layers::ICMPV6),
            Ipv6NdTarget => l.intersects(Layers::ND_NS | Layers::ND_NA),
            Ipv6NdSll => l.contains(Layers::ND_NS),
            Ipv6NdTll => l.contains(Layers::ND_NA),
            MplsLabel | MplsTc | MplsBos => l.contains(Layers::MPLS),
            PbbIsid => l.contains(Layers::PBB),
            _ => true,
        }
    }

    #[inline]
    pub fn in_port(&self) -> u32 {
        self.get_pos(pos::IN_PORT) as u32
    }

    #[inline]
    pub fn metadata(&self) -> u64 {
        self.words[pos::METADATA.word as usize]
    }

    /// Write-metadata instruction and caller-provided metadata land here.
    #[inline]
    pub fn set_metadata(&mut self, metadata: u64) {
        self.words[pos::METADATA.word as usize] = metadata;
    }

    #[inline]
    pub fn tunnel_id(&self) -> u64 {
        self.words[pos::TUNNEL_ID.word as usize]
    }

    #[inline]
    pub fn set_tunnel_id(&mut self, tunnel_id: u64) {
        self.words[pos::TUNNEL_ID.word as usize] = tunnel_id;
    }

    /// The outer IPv4 source of a decapsulated packet (0: none).
    #[inline]
    pub fn tun_src(&self) -> [u8; 4] {
        (self.get_pos(pos::TUN_SRC) as u32).to_be_bytes()
    }

    /// The outer IPv4 destination: the local endpoint after decapsulation, the remote a
    /// `remote_ip = "flow"` tunnel port sends to (0: none).
    #[inline]
    pub fn tun_dst(&self) -> [u8; 4] {
        (self.get_pos(pos::TUN_DST) as u32).to_be_bytes()
    }

    /// The Geneve option data of `tun_metadata<index>` (0: absent, or zero).
    #[inline]
    pub fn tun_metadata(&self, index: usize) -> u32 {
        (self.words[TUN_METADATA_WORD] >> (32 * (1 - index % 2))) as u32
    }

    /// Sets the Geneve option data of `tun_metadata<index>` (decapsulation).
    #[inline]
    pub fn set_tun_metadata(&mut self, index: usize, data: u32) {
        let shift = 32 * (1 - index % 2);
        let w = &mut self.words[TUN_METADATA_WORD];
        *w = (*w & !(0xffff_ffffu64 << shift)) | (u64::from(data) << shift);
    }

    /// Both outer addresses at once (decapsulation).
    #[inline]
    pub fn set_tun_ipv4(&mut self, src: [u8; 4], dst: [u8; 4]) {
        self.words[TUN_WORD] =
            (u64::from(u32::from_be_bytes(src)) << 32) | u64::from(u32::from_be_bytes(dst));
    }

    #[inline]
    pub fn eth_type(&self) -> u16 {
        self.get_pos(pos::ETH_TYPE) as u16
    }

    /// With OFPVID_PRESENT when tagged, OFPVID_NONE when not.
    #[inline]
    pub fn vlan_vid(&self) -> u16 {
        self.get_pos(pos::VLAN_VID) as u16
    }

    #[inline]
    pub fn ip_proto(&self) -> u8 {
        self.get_pos(pos::IP_PROTO) as u8
    }
}

impl fmt::Debug for FlowKey {
    /// Lists the fields that describe this packet, by OXM name, then layers and offsets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("FlowKey");
        for field in Field::ALL {
            let v = self.get(field);
            if self.has_field(field) && (v != 0 || matches!(field, Field::InPort | Field::EthType))
            {
                s.field(field.name(), &format_args!("{v:#x}"));
            }
        }
        s.field("layers", &self.layers)
            .field("offsets", &self.offsets)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_fits_two_cache_lines() {
        // Header words in two lines, registers in a third.
        assert_eq!(std::mem::size_of::<[u64; REG_WORD]>(), 128);
        assert_eq!(std::mem::size_of::<[u64; FLOW_KEY_WORDS]>(), 256);
        assert!(FLOW_KEY_WORDS.is_power_of_two());
        for f in Field::every() {
            assert_eq!(
                usize::from(f.pos().word) >= REG_WORD,
                f.is_register(),
                "{f:?}"
            );
        }
        assert_eq!(std::mem::align_of::<FlowKey>(), 64);
    }

    #[test]
    fn table_is_consistent() {
        for (i, f) in Field::ALL.iter().enumerate() {
            assert_eq!(f.oxm_field() as usize, i);
            assert_eq!(Field::from_oxm(i as u8), Some(*f));
            let p = f.pos();
            assert!(usize::from(p.word) < FLOW_KEY_WORDS);
            if p.bits > 64 {
                assert_eq!((p.bits, p.shift), (128, 0));
                assert!(usize::from(p.word) + 1 < FLOW_KEY_WORDS);
            } else {
                assert!(u32::from(p.shift) + u32::from(p.bits) <= 64, "{f:?}");
            }
            assert!(f.bit_width() <= f.byte_len() as u32 * 8, "{f:?}");
        }
        assert_eq!(Field::from_oxm(40), None);
        assert_eq!(Field::from_name("ipv6_nd_sll"), Some(Field::Ipv6NdSll));
        assert_eq!(Field::from_name("nope"), None);
        assert_eq!(Field::VlanVid.bit_width(), 13);
        assert_eq!(Field::Ipv6Exthdr.byte_len(), 2);
        assert_eq!(Field::PbbIsid.byte_len(), 3);
    }

    /// Fields overlap only where the module documentation says they share storage.
    #[test]
    fn only_documented_fields_share_bits() {
        let shared = |a: Field, b: Field| {
            let group = |f: Field| match f {
                Field::Ipv4Src | Field::ArpSpa => 1,
                Field::Ipv4Dst | Field::ArpTpa => 2,
                Field::TcpSrc | Field::UdpSrc | Field::SctpSrc => 3,
                Field::TcpDst | Field::UdpDst | Field::SctpDst => 4,
                Field::Icmpv4Type | Field::Icmpv6Type => 5,
                Field::Icmpv4Code | Field::Icmpv6Code => 6,
                Field::ArpSha | Field::Ipv6NdSll => 7,
                Field::ArpTha | Field::Ipv6NdTll => 8,
                _ => 100 + f as u32,
            };
            group(a) == group(b)
        };
        for a in Field::ALL {
            for b in Field::ALL {
                if a == b {
                    continue;
                }
                let ma = FlowKey::exact_mask(a);
                let mb = FlowKey::exact_mask(b);
                let overlap = ma.words.iter().zip(mb.words).any(|(x, y)| x & y != 0);
                assert_eq!(overlap, shared(a, b), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn get_set_mask_round_trip() {
        let mut k = FlowKey::default();
        for f in Field::ALL {
            k.set(f, u128::MAX);
            assert_eq!(k.get(f), f.value_mask(), "{f:?}");
            k.set(f, 0);
            assert_eq!(k.get(f), 0);
        }
        k.set(Field::Ipv6Src, 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
        assert_eq!(
            k.get(Field::Ipv6Src),
            0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10
        );
        k.set(Field::VlanVid, 0x1abc);
        k.set(Field::EthType, 0x0800);
        let mut mask = FlowKey::mask_for(Field::VlanVid, 0x1000);
        mask.or_mask(Field::EthType, u128::MAX);
        let value = k.masked(&mask);
        assert!(k.matches(&value, &mask));
        k.set(Field::VlanVid, 0);
        assert!(!k.matches(&value, &mask));
    }

    #[test]
    fn debug_lists_present_fields() {
        let mut k = FlowKey::default();
        k.set(Field::InPort, 3);
        let s = format!("{k:?}");
        assert!(s.contains("in_port: 0x3"), "{s}");
    }
}
