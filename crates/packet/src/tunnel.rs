//! Tunnel encapsulation and decapsulation: the outer Ethernet/IPv4/UDP headers and the VXLAN
//! or Geneve header around an inner Ethernet frame, on any [`PacketBuf`].
//!
//! Encapsulation prepends everything in one step out of the buffer's headroom (an mbuf has
//! 128 bytes; VXLAN needs 50, Geneve 50 plus its options). Decapsulation is split in two so
//! the caller decides between the steps whether the packet is for one of its tunnel ports:
//! [`parse_outer`] reads the outer headers and [`parse_tunnel`] the tunnel header; the
//! caller then strips [`TunnelHeader::inner_offset`] bytes.

use crate::buf::PacketBuf;
use crate::wire::ethernet::{self, Mac};
use crate::wire::{checksum, ethertype, geneve, ip_proto, ipv4, udp, vxlan};

/// Which tunnel protocol a port speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelKind {
    Vxlan,
    Geneve,
}

impl TunnelKind {
    /// The IANA UDP port, what a port uses unless configured otherwise.
    pub const fn default_port(self) -> u16 {
        match self {
            TunnelKind::Vxlan => crate::wire::udp_port::VXLAN,
            TunnelKind::Geneve => crate::wire::udp_port::GENEVE,
        }
    }

    /// Tunnel header bytes without Geneve options.
    pub const fn header_len(self) -> usize {
        match self {
            TunnelKind::Vxlan => vxlan::HEADER_LEN,
            TunnelKind::Geneve => geneve::HEADER_LEN,
        }
    }
}

/// Outer Ethernet, IPv4 and UDP.
pub const OUTER_LEN: usize = ethernet::HEADER_LEN + ipv4::MIN_HEADER_LEN + udp::HEADER_LEN;

/// Everything about the outer headers but the inner frame's own UDP source port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encap<'a> {
    pub kind: TunnelKind,
    pub eth_src: Mac,
    pub eth_dst: Mac,
    pub ip_src: [u8; 4],
    pub ip_dst: [u8; 4],
    pub dst_port: u16,
    pub vni: u32,
    pub ttl: u8,
    /// Fill the outer UDP checksum (costs a pass over the inner frame); zero otherwise,
    /// which IPv4 allows and VXLAN recommends.
    pub udp_checksum: bool,
    /// Geneve options, already encoded ([`geneve::emit_option`]); must be empty for VXLAN.
    pub geneve_options: &'a [u8],
}

impl Encap<'_> {
    /// Bytes encapsulation adds in front of the inner frame.
    pub fn overhead(&self) -> usize {
        OUTER_LEN + self.kind.header_len() + self.geneve_options.len()
    }
}

/// Why a frame could not be encapsulated; the frame is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncapError {
    #[error("not enough headroom for the tunnel headers")]
    NoHeadroom,
    #[error("encapsulated frame would exceed the IPv4 total length")]
    TooLong,
}

/// The UDP source port for an inner frame: RFC 7348 asks for a hash of the inner headers
/// so that the underlay's ECMP spreads flows, kept in the dynamic range 49152-65535.
#[inline]
pub fn udp_src_port(inner: &[u8]) -> u16 {
    49152 | (inner_hash(inner) as u16 & 0x3fff)
}

/// A hash of the inner flow: for IPv4, its addresses and (TCP, UDP) ports, as Linux's
/// flow hash and the RSS hash Open vSwitch reuses; for other frames, the Ethernet
/// addresses and ethertype. The same for every packet of a flow, without parsing more
/// than the fixed offsets.
///
/// Each 8-byte word of those headers is multiplied by its own odd constant and the
/// products are XORed: the multiplies are independent of each other (no chain of
/// mix steps); an odd multiplier maps distinct words to distinct products, and one more
/// multiply after folding the high half down carries every input bit into the bits the
/// source port keeps. Inline for the usual frame (at least 38 bytes; IPv4 without
/// options, or not IPv4), where no offset needs a check; the rest out of line
/// ([`inner_hash_checked`], the same function).
#[inline]
pub fn inner_hash(inner: &[u8]) -> u32 {
    if inner.len() >= 38 {
        if inner[12..14] != ethertype::IPV4.to_be_bytes() {
            let h = hash_word(inner, 0).wrapping_mul(HASH_K[0])
                ^ hash_word(inner, 6).wrapping_mul(HASH_K[1]);
            return hash_fold(h);
        }
        if inner[14] & 0x0f == 5 {
            let mut h = hash_word(inner, 26).wrapping_mul(HASH_K[2]);
            if matches!(inner[23], ip_proto::TCP | ip_proto::UDP) {
                let mut p = [0u8; 4];
                p.copy_from_slice(&inner[34..38]);
                h ^= u64::from(u32::from_le_bytes(p)).wrapping_mul(HASH_K[3]);
            }
            return hash_fold(h);
        }
    }
    inner_hash_checked(inner)
}

const HASH_K: [u64; 4] = [
    0xff51_afd7_ed55_8ccd,
    0xc4ce_b9fe_1a85_ec53,
    0x9e37_79b9_7f4a_7c15,
    0xd6e8_feb8_6659_fd93,
];

#[inline(always)]
fn hash_word(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

#[inline(always)]
fn hash_fold(h: u64) -> u32 {
    // A product's high bits depend on every input bit at or below them, its low bits
    // on few: the high half folded down, mixed once more.
    let h = (h ^ (h >> 32)).wrapping_mul(HASH_K[1]);
    (h ^ (h >> 29)) as u32
}

/// [`inner_hash`] with every offset checked against the frame: short frames, IPv4 with
/// options.
#[cold]
#[inline(never)]
fn inner_hash_checked(inner: &[u8]) -> u32 {
    if inner.len() < ethernet::HEADER_LEN {
        let mut h: u64 = HASH_K[2];
        let mut w = [0u8; 8];
        for c in inner.chunks(8) {
            w[..c.len()].copy_from_slice(c);
            h = (h ^ u64::from_le_bytes(w)).wrapping_mul(HASH_K[0]);
        }
        return hash_fold(h);
    }
    if inner.len() >= 34 && inner[12..14] == ethertype::IPV4.to_be_bytes() {
        let mut h = hash_word(inner, 26).wrapping_mul(HASH_K[2]);
        let ihl = usize::from(inner[14] & 0x0f) * 4;
        let l4 = ethernet::HEADER_LEN + ihl;
        if matches!(inner[23], ip_proto::TCP | ip_proto::UDP) && inner.len() >= l4 + 4 {
            let mut p = [0u8; 4];
            p.copy_from_slice(&inner[l4..l4 + 4]);
            h ^= u64::from(u32::from_le_bytes(p)).wrapping_mul(HASH_K[3]);
        }
        return hash_fold(h);
    }
    // The two addresses and the ethertype as two overlapping 8-byte loads.
    let h =
        hash_word(inner, 0).wrapping_mul(HASH_K[0]) ^ hash_word(inner, 6).wrapping_mul(HASH_K[1]);
    hash_fold(h)
}

/// Prepends the outer headers and the tunnel header to the inner frame in `pkt`: one
/// [`EncapTemplate`] built for this call (a port that sends many packets keeps its own).
pub fn encap<P: PacketBuf + ?Sized>(
    pkt: &mut P,
    e: &Encap<'_>,
    src_port: u16,
) -> Result<(), EncapError> {
    EncapTemplate::new(e.kind, e.eth_src, e.dst_port, e.ttl, e.udp_checksum).encap(
        pkt,
        &EncapFields {
            eth_dst: e.eth_dst,
            ip_src: e.ip_src,
            ip_dst: e.ip_dst,
            vni: e.vni,
            src_port,
            geneve_options: e.geneve_options,
        },
    )
}

/// Outer Ethernet/IPv4/UDP and the tunnel header without Geneve options.
const TEMPLATE_LEN: usize = OUTER_LEN + vxlan::HEADER_LEN;
const _: () = assert!(vxlan::HEADER_LEN == geneve::HEADER_LEN);

/// A tunnel port's outer headers with every byte that is the same for all its packets
/// already in place, built when the port is set up: encapsulating a packet then copies
/// [`TEMPLATE_LEN`] bytes and patches the few that are not constant, and the IPv4 header
/// checksum is the sum of the constant words (kept here) plus those few, instead of
/// writing each field and summing the whole header per packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncapTemplate {
    kind: TunnelKind,
    udp_checksum: bool,
    header: [u8; TEMPLATE_LEN],
    /// One's-complement sum of the IPv4 header's constant words (version/IHL/DSCP,
    /// identification, flags, TTL/protocol): the checksum's part that never changes.
    ip_constant_sum: u64,
}

/// What an encapsulation takes from the packet rather than from its port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncapFields<'a> {
    /// The next hop's MAC (zero while unresolved: filled in when its ARP reply comes).
    pub eth_dst: Mac,
    pub ip_src: [u8; 4],
    pub ip_dst: [u8; 4],
    pub vni: u32,
    /// From the inner flow's hash ([`udp_src_port`]).
    pub src_port: u16,
    /// Geneve options, already encoded ([`geneve::emit_option`]): a multiple of 4 bytes,
    /// at most [`geneve::MAX_OPTIONS_LEN`]; must be empty for VXLAN.
    pub geneve_options: &'a [u8],
}

/// Offsets of the per-packet fields in the outer headers.
mod at {
    pub const ETH_DST: usize = 0;
    pub const IP_TOTAL_LEN: usize = 16;
    pub const IP_CHECKSUM: usize = 24;
    pub const IP_SRC: usize = 26;
    pub const IP_DST: usize = 30;
    pub const UDP_SRC_PORT: usize = 34;
    pub const UDP_LEN: usize = 38;
    pub const UDP_CHECKSUM: usize = 40;
    /// Geneve's option length, in 4-byte words (6 bits; the version bits are zero).
    pub const GENEVE_OPT_LEN: usize = 42;
    /// The VNI's 3 bytes: the same place in VXLAN and Geneve.
    pub const VNI: usize = 46;
}

impl EncapTemplate {
    /// The constant outer headers of a port: its uplink's MAC as the source, UDP to
    /// `dst_port`, `ttl`, DF set (RFC 7348: VTEPs must not fragment, and DF tells the
    /// underlay the same), identification 0, the tunnel header's flags and protocol.
    pub fn new(
        kind: TunnelKind,
        eth_src: Mac,
        dst_port: u16,
        ttl: u8,
        udp_checksum: bool,
    ) -> EncapTemplate {
        let mut h = [0u8; TEMPLATE_LEN];
        h[6..12].copy_from_slice(&eth_src);
        h[12..14].copy_from_slice(&ethertype::IPV4.to_be_bytes());
        {
            let mut ip = ipv4::Packet::new_unchecked(&mut h[14..34]);
            ip.set_version_and_header_len(ipv4::MIN_HEADER_LEN);
            ip.set_dscp(0);
            ip.set_ecn(0);
            ip.set_ident(0);
            ip.set_frag(true, false, 0);
            ip.set_ttl(ttl);
            ip.set_protocol(ip_proto::UDP);
        }
        h[36..38].copy_from_slice(&dst_port.to_be_bytes());
        let t = &mut h[OUTER_LEN..];
        match kind {
            TunnelKind::Vxlan => vxlan::Packet::new_unchecked(&mut t[..]).init(0),
            TunnelKind::Geneve => geneve::Packet::new_unchecked(&mut t[..]).init(
                0,
                geneve::PROTOCOL_ETHERNET,
                0,
                false,
            ),
        }
        // Every word but total length, checksum, source and destination (zero here).
        let ip_constant_sum = checksum::sum(&h[14..34]);
        EncapTemplate {
            kind,
            udp_checksum,
            header: h,
            ip_constant_sum,
        }
    }

    pub fn kind(&self) -> TunnelKind {
        self.kind
    }

    /// Bytes an encapsulation with `options_len` bytes of Geneve options adds.
    #[inline]
    pub fn overhead(&self, options_len: usize) -> usize {
        TEMPLATE_LEN + options_len
    }

    /// Prepends the outer headers and the tunnel header to the inner frame in `pkt`; on an
    /// error the frame is unchanged.
    #[inline]
    pub fn encap<P: PacketBuf + ?Sized>(
        &self,
        pkt: &mut P,
        f: &EncapFields<'_>,
    ) -> Result<(), EncapError> {
        let overhead = self.overhead(f.geneve_options.len());
        if pkt.data().len() + overhead - ethernet::HEADER_LEN > usize::from(u16::MAX) {
            return Err(EncapError::TooLong);
        }
        if pkt.prepend(overhead).is_none() {
            return Err(EncapError::NoHeadroom);
        }
        self.fill(pkt.data_mut(), f)
    }

    /// Writes the outer headers into `frame`: its first [`Self::overhead`] bytes are the
    /// room prepended for them, the inner frame follows. `TooLong` (nothing written) when
    /// the IPv4 total length would not fit 16 bits; `frame` must be at least the
    /// overhead long.
    #[inline]
    pub fn fill(&self, frame: &mut [u8], f: &EncapFields<'_>) -> Result<(), EncapError> {
        let options = f.geneve_options;
        debug_assert!(
            self.kind == TunnelKind::Geneve || options.is_empty(),
            "geneve options on a vxlan port"
        );
        debug_assert!(options.len().is_multiple_of(4) && options.len() <= geneve::MAX_OPTIONS_LEN);
        let overhead = self.overhead(options.len());
        let Ok(ip_len) = u16::try_from(frame.len() - ethernet::HEADER_LEN) else {
            return Err(EncapError::TooLong);
        };
        let h = &mut frame[..overhead];
        h[..TEMPLATE_LEN].copy_from_slice(&self.header);
        h[at::ETH_DST..at::ETH_DST + 6].copy_from_slice(&f.eth_dst);
        h[at::IP_TOTAL_LEN..at::IP_TOTAL_LEN + 2].copy_from_slice(&ip_len.to_be_bytes());
        h[at::IP_SRC..at::IP_SRC + 4].copy_from_slice(&f.ip_src);
        h[at::IP_DST..at::IP_DST + 4].copy_from_slice(&f.ip_dst);
        let s = self.ip_constant_sum
            + u64::from(ip_len)
            + checksum::sum(&f.ip_src)
            + checksum::sum(&f.ip_dst);
        h[at::IP_CHECKSUM..at::IP_CHECKSUM + 2]
            .copy_from_slice(&(!checksum::fold(s)).to_be_bytes());
        h[at::UDP_SRC_PORT..at::UDP_SRC_PORT + 2].copy_from_slice(&f.src_port.to_be_bytes());
        let udp_len = ip_len - ipv4::MIN_HEADER_LEN as u16;
        h[at::UDP_LEN..at::UDP_LEN + 2].copy_from_slice(&udp_len.to_be_bytes());
        h[at::VNI..at::VNI + 3].copy_from_slice(&(f.vni & 0x00ff_ffff).to_be_bytes()[1..]);
        if !options.is_empty() {
            h[at::GENEVE_OPT_LEN] = (options.len() / 4) as u8 & 0x3f;
            h[TEMPLATE_LEN..].copy_from_slice(options);
        }
        if self.udp_checksum {
            let seg = &frame[OUTER_LEN - udp::HEADER_LEN..];
            let c = checksum::transport_v4(f.ip_src, f.ip_dst, ip_proto::UDP, seg);
            // Zero means "no checksum" over IPv4: a computed zero is sent as all ones.
            let c = if c == 0 { 0xffff } else { c };
            frame[at::UDP_CHECKSUM..at::UDP_CHECKSUM + 2].copy_from_slice(&c.to_be_bytes());
        }
        Ok(())
    }
}

impl EncapTemplate {
    /// The complete outer headers of a port whose remote, source address and VNI are
    /// fixed (the usual VXLAN port): see [`FixedEncap`].
    pub fn fixed(&self, ip_src: [u8; 4], ip_dst: [u8; 4], vni: u32) -> FixedEncap {
        let mut header = self.header;
        header[at::IP_SRC..at::IP_SRC + 4].copy_from_slice(&ip_src);
        header[at::IP_DST..at::IP_DST + 4].copy_from_slice(&ip_dst);
        header[at::VNI..at::VNI + 3].copy_from_slice(&(vni & 0x00ff_ffff).to_be_bytes()[1..]);
        let partial = self.ip_constant_sum + checksum::sum(&ip_src) + checksum::sum(&ip_dst);
        FixedEncap {
            header,
            ip_partial: checksum::fold(partial),
            udp_checksum: self.udp_checksum,
            ip_src,
            ip_dst,
        }
    }
}

/// A tunnel port's outer Ethernet/IPv4/UDP and tunnel header (no Geneve options) with
/// every byte but five fields in place, built when the port is set up: per packet the 50
/// bytes are copied (a few wide stores) and only the next hop's MAC, the IPv4 total length
/// and checksum, the UDP source port and length are written. The IPv4 checksum is the
/// constant words' sum, folded once at setup, plus the total length: one add and one fold
/// per packet, as Open vSwitch's `netdev_tnl_push_ip_header` does. The next hop's MAC is
/// written per packet rather than kept here because ARP changes it under a port that
/// does not change (a 6-byte store against a copy of the template per resolution).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedEncap {
    header: [u8; TEMPLATE_LEN],
    /// One's-complement sum of every IPv4 header word but the total length and the
    /// checksum, folded to 16 bits.
    ip_partial: u16,
    udp_checksum: bool,
    ip_src: [u8; 4],
    ip_dst: [u8; 4],
}

impl FixedEncap {
    /// Bytes the encapsulation adds in front of the inner frame.
    pub const OVERHEAD: usize = TEMPLATE_LEN;

    /// Writes the outer headers into `frame`: its first [`Self::OVERHEAD`] bytes are the
    /// room prepended for them, the inner frame follows. `TooLong` (nothing written) when
    /// the IPv4 total length would not fit 16 bits; `frame` must be at least the
    /// overhead long.
    #[inline]
    pub fn fill(&self, frame: &mut [u8], eth_dst: Mac, src_port: u16) -> Result<(), EncapError> {
        let Ok(ip_len) = u16::try_from(frame.len() - ethernet::HEADER_LEN) else {
            return Err(EncapError::TooLong);
        };
        let h = &mut frame[..TEMPLATE_LEN];
        h.copy_from_slice(&self.header);
        h[at::ETH_DST..at::ETH_DST + 6].copy_from_slice(&eth_dst);
        h[at::IP_TOTAL_LEN..at::IP_TOTAL_LEN + 2].copy_from_slice(&ip_len.to_be_bytes());
        // Both terms are at most 0xffff: one end-around carry folds the sum.
        let s = u32::from(self.ip_partial) + u32::from(ip_len);
        let s = (s & 0xffff) + (s >> 16);
        h[at::IP_CHECKSUM..at::IP_CHECKSUM + 2].copy_from_slice(&(!(s as u16)).to_be_bytes());
        h[at::UDP_SRC_PORT..at::UDP_SRC_PORT + 2].copy_from_slice(&src_port.to_be_bytes());
        let udp_len = ip_len - ipv4::MIN_HEADER_LEN as u16;
        h[at::UDP_LEN..at::UDP_LEN + 2].copy_from_slice(&udp_len.to_be_bytes());
        if self.udp_checksum {
            self.fill_udp_checksum(frame);
        }
        Ok(())
    }

    #[cold]
    fn fill_udp_checksum(&self, frame: &mut [u8]) {
        let seg = &frame[OUTER_LEN - udp::HEADER_LEN..];
        let c = checksum::transport_v4(self.ip_src, self.ip_dst, ip_proto::UDP, seg);
        // Zero means "no checksum" over IPv4: a computed zero is sent as all ones.
        let c = if c == 0 { 0xffff } else { c };
        frame[at::UDP_CHECKSUM..at::UDP_CHECKSUM + 2].copy_from_slice(&c.to_be_bytes());
    }

    /// Prepends the outer headers to the inner frame in `pkt`; on an error the frame is
    /// unchanged.
    #[inline]
    pub fn encap<P: PacketBuf + ?Sized>(
        &self,
        pkt: &mut P,
        eth_dst: Mac,
        src_port: u16,
    ) -> Result<(), EncapError> {
        if pkt.data().len() + TEMPLATE_LEN - ethernet::HEADER_LEN > usize::from(u16::MAX) {
            return Err(EncapError::TooLong);
        }
        if pkt.prepend(TEMPLATE_LEN).is_none() {
            return Err(EncapError::NoHeadroom);
        }
        self.fill(pkt.data_mut(), eth_dst, src_port)
    }
}

/// The outer headers of a UDP/IPv4 frame, as decapsulation needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outer {
    pub eth_src: Mac,
    pub eth_dst: Mac,
    pub ip_src: [u8; 4],
    pub ip_dst: [u8; 4],
    pub src_port: u16,
    pub dst_port: u16,
    /// Where the UDP payload starts in the frame.
    pub payload: usize,
    /// Where the UDP payload ends (the UDP length, which may be shorter than the frame).
    pub payload_end: usize,
}

/// Why a frame addressed to a tunnel endpoint was not decapsulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecapError {
    /// The outer IPv4 or UDP header is cut short or inconsistent with the frame.
    #[error("outer headers truncated or inconsistent")]
    Truncated,
    /// The outer IPv4 header checksum is wrong.
    #[error("outer ipv4 checksum wrong")]
    Ipv4Checksum,
    /// The outer UDP checksum is present and wrong.
    #[error("outer udp checksum wrong")]
    UdpChecksum,
    /// A fragment: tunnel endpoints do not reassemble.
    #[error("outer ipv4 fragment")]
    Fragment,
    /// The tunnel header is cut short or malformed (also: VXLAN without the I flag).
    #[error("tunnel header malformed")]
    BadTunnelHeader,
    /// A Geneve payload that is not Ethernet, an OAM frame, or with critical options
    /// (the switch knows none, so RFC 8926 says to drop).
    #[error("geneve frame the switch does not take")]
    GeneveUnsupported,
}

/// Reads Ethernet/IPv4/UDP. `Ok(None)` when the frame is not UDP over IPv4 (ARP, other
/// traffic: not the tunnel layer's business); an error when it is, but broken. Verifies the
/// IPv4 header checksum; the UDP checksum is left to [`verify_udp_checksum`] (the caller
/// first checks the destination is one of its endpoints).
#[inline]
pub fn parse_outer(frame: &[u8]) -> Result<Option<Outer>, DecapError> {
    // The usual tunnel frame: IPv4 without options carrying UDP, read at fixed offsets
    // (every offset below is inside the 42 bytes checked first); anything else, and every
    // error, through the general parse, which gives the same answers.
    if frame.len() >= OUTER_LEN
        && frame[12..14] == ethertype::IPV4.to_be_bytes()
        && frame[14] == 0x45
        && frame[23] == ip_proto::UDP
    {
        let be16 = |at: usize| u16::from_be_bytes([frame[at], frame[at + 1]]);
        let total = usize::from(be16(16));
        let frag = be16(20);
        let ulen = usize::from(be16(38));
        // The header checksum over five 32-bit words (RFC 1071: the same folded sum).
        let word = |at: usize| {
            u64::from(u32::from_be_bytes([
                frame[at],
                frame[at + 1],
                frame[at + 2],
                frame[at + 3],
            ]))
        };
        let sum = word(14) + word(18) + word(22) + word(26) + word(30);
        if (ipv4::MIN_HEADER_LEN + udp::HEADER_LEN..=frame.len() - ethernet::HEADER_LEN)
            .contains(&total)
            && checksum::fold(sum) == 0xffff
            && frag & 0x3fff == 0
            && (udp::HEADER_LEN..=total - ipv4::MIN_HEADER_LEN).contains(&ulen)
        {
            let mac = |at: usize| -> Mac {
                [
                    frame[at],
                    frame[at + 1],
                    frame[at + 2],
                    frame[at + 3],
                    frame[at + 4],
                    frame[at + 5],
                ]
            };
            let ip = |at: usize| [frame[at], frame[at + 1], frame[at + 2], frame[at + 3]];
            return Ok(Some(Outer {
                eth_src: mac(6),
                eth_dst: mac(0),
                ip_src: ip(26),
                ip_dst: ip(30),
                src_port: be16(34),
                dst_port: be16(36),
                payload: OUTER_LEN,
                payload_end: OUTER_LEN - udp::HEADER_LEN + ulen,
            }));
        }
    }
    parse_outer_checked(frame)
}

/// [`parse_outer`] field by field, every length checked: every frame the fixed-offset
/// path does not take, and the errors.
#[inline(never)]
fn parse_outer_checked(frame: &[u8]) -> Result<Option<Outer>, DecapError> {
    let Ok(eth) = ethernet::Frame::new_checked(frame) else {
        return Ok(None);
    };
    if eth.ethertype() != ethertype::IPV4 {
        return Ok(None);
    }
    let l3 = &frame[ethernet::HEADER_LEN..];
    // Too short for a protocol byte: not classifiable as UDP, so not ours.
    if l3.len() <= ipv4::PROTOCOL_OFFSET || l3[ipv4::PROTOCOL_OFFSET] != ip_proto::UDP {
        return Ok(None);
    }
    let ip = ipv4::Packet::new_checked(l3).map_err(|_| DecapError::Truncated)?;
    let hl = ip.header_len();
    let total = usize::from(ip.total_len());
    if total > l3.len() || total < hl + udp::HEADER_LEN {
        return Err(DecapError::Truncated);
    }
    if !ip.verify_checksum() {
        return Err(DecapError::Ipv4Checksum);
    }
    if ip.is_fragment() {
        return Err(DecapError::Fragment);
    }
    let u = udp::Packet::new_unchecked(&l3[hl..total]);
    let ulen = usize::from(u.len());
    if ulen < udp::HEADER_LEN || ulen > total - hl {
        return Err(DecapError::Truncated);
    }
    let start = ethernet::HEADER_LEN + hl;
    Ok(Some(Outer {
        eth_src: eth.src(),
        eth_dst: eth.dst(),
        ip_src: ip.src(),
        ip_dst: ip.dst(),
        src_port: u.src_port(),
        dst_port: u.dst_port(),
        payload: start + udp::HEADER_LEN,
        payload_end: start + ulen,
    }))
}

/// Checks the outer UDP checksum when the sender filled one (zero: none, allowed over IPv4).
pub fn verify_udp_checksum(frame: &[u8], o: &Outer) -> Result<(), DecapError> {
    let seg = &frame[o.payload - udp::HEADER_LEN..o.payload_end];
    if seg[6..8] == [0, 0] {
        return Ok(());
    }
    let s = checksum::pseudo_v4(o.ip_src, o.ip_dst, ip_proto::UDP, seg.len() as u16)
        + checksum::sum(seg);
    if checksum::fold(s) == 0xffff || checksum::fold(s) == 0 {
        Ok(())
    } else {
        Err(DecapError::UdpChecksum)
    }
}

/// The tunnel header after the outer UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelHeader {
    pub vni: u32,
    /// Where the inner Ethernet frame starts in the whole frame.
    pub inner_offset: usize,
    /// Where the Geneve options are in the whole frame (empty for VXLAN).
    pub options: (usize, usize),
}

/// Reads the tunnel header of `kind` in `frame[o.payload..o.payload_end]`; the inner frame
/// must hold at least an Ethernet header.
pub fn parse_tunnel(frame: &[u8], o: &Outer, kind: TunnelKind) -> Result<TunnelHeader, DecapError> {
    let p = &frame[o.payload..o.payload_end];
    let (vni, hl, opts) = match kind {
        TunnelKind::Vxlan => {
            let v = vxlan::Packet::new_checked(p).map_err(|_| DecapError::BadTunnelHeader)?;
            let r = vxlan::Repr::parse(&v).ok_or(DecapError::BadTunnelHeader)?;
            (r.vni, vxlan::HEADER_LEN, (0, 0))
        }
        TunnelKind::Geneve => {
            let g = geneve::Packet::new_checked(p).map_err(|_| DecapError::BadTunnelHeader)?;
            let r = geneve::Repr::parse(&g).map_err(|_| DecapError::BadTunnelHeader)?;
            if r.protocol != geneve::PROTOCOL_ETHERNET || r.oam || r.critical {
                return Err(DecapError::GeneveUnsupported);
            }
            let start = o.payload + geneve::HEADER_LEN;
            (r.vni, g.header_len(), (start, start + r.options.len()))
        }
    };
    if p.len() < hl + ethernet::HEADER_LEN {
        return Err(DecapError::BadTunnelHeader);
    }
    Ok(TunnelHeader {
        vni,
        inner_offset: o.payload + hl,
        options: opts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::VecBuf;

    fn inner() -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[23] = 17;
        f[26..34].copy_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        f[34..38].copy_from_slice(&[0x30, 0x39, 0x00, 0x35]);
        f
    }

    fn encap_params(kind: TunnelKind, csum: bool, opts: &[u8]) -> Encap<'_> {
        Encap {
            kind,
            eth_src: [2, 0xff, 0, 0, 0, 1],
            eth_dst: [2, 0xff, 0, 0, 0, 2],
            ip_src: [192, 0, 2, 1],
            ip_dst: [192, 0, 2, 2],
            dst_port: kind.default_port(),
            vni: 5000,
            ttl: 64,
            udp_checksum: csum,
            geneve_options: opts,
        }
    }

    #[test]
    fn vxlan_encap_then_decap_gives_the_inner_frame_back() {
        for csum in [false, true] {
            let mut b = VecBuf::new(&inner());
            let e = encap_params(TunnelKind::Vxlan, csum, &[]);
            let sport = udp_src_port(&inner());
            encap(&mut b, &e, sport).unwrap();
            let f = b.data();
            assert_eq!(f.len(), 60 + 50);
            let o = parse_outer(f).unwrap().unwrap();
            assert_eq!((o.ip_src, o.ip_dst), (e.ip_src, e.ip_dst));
            assert_eq!((o.src_port, o.dst_port), (sport, 4789));
            assert_eq!((o.eth_src, o.eth_dst), (e.eth_src, e.eth_dst));
            assert_eq!(f[40..42] != [0, 0], csum);
            verify_udp_checksum(f, &o).unwrap();
            let t = parse_tunnel(f, &o, TunnelKind::Vxlan).unwrap();
            assert_eq!(t.vni, 5000);
            assert_eq!(&f[t.inner_offset..], &inner()[..]);
            assert!(ipv4::Packet::new_checked(&f[14..]).unwrap().dont_frag());
            // A flipped payload bit breaks a filled checksum.
            let mut bad = f.to_vec();
            bad[70] ^= 1;
            let o = parse_outer(&bad).unwrap().unwrap();
            assert_eq!(verify_udp_checksum(&bad, &o).is_err(), csum);
        }
    }

    #[test]
    fn geneve_with_options() {
        let mut opts = [0u8; 8];
        let n = geneve::emit_option(&mut opts, 0xffff, 1, &[9, 9, 9, 9]);
        let mut b = VecBuf::new(&inner());
        let e = encap_params(TunnelKind::Geneve, true, &opts[..n]);
        encap(&mut b, &e, 50000).unwrap();
        let f = b.data();
        let o = parse_outer(f).unwrap().unwrap();
        assert_eq!(o.dst_port, 6081);
        verify_udp_checksum(f, &o).unwrap();
        let t = parse_tunnel(f, &o, TunnelKind::Geneve).unwrap();
        assert_eq!(t.vni, 5000);
        assert_eq!(&f[t.options.0..t.options.1], &opts[..n]);
        assert_eq!(&f[t.inner_offset..], &inner()[..]);
    }

    #[test]
    fn bad_outer_headers() {
        let mut b = VecBuf::new(&inner());
        encap(&mut b, &encap_params(TunnelKind::Vxlan, false, &[]), 50000).unwrap();
        let f = b.data().to_vec();
        // Cut inside the outer IP header (past its protocol byte), inside UDP, inside VXLAN, inside the inner frame.
        for cut in [24, 36, 45, 50, 55] {
            let r = parse_outer(&f[..cut]);
            let r = r.and_then(|o| match o {
                Some(o) => parse_tunnel(&f[..cut], &o, TunnelKind::Vxlan).map(|_| ()),
                None => Ok(()),
            });
            assert!(r.is_err(), "cut at {cut} accepted");
        }
        let mut g = f.clone();
        g[24] ^= 0xff; // TTL: header checksum breaks
        assert_eq!(parse_outer(&g), Err(DecapError::Ipv4Checksum));
        let mut g = f.clone();
        g[42] = 0; // no I flag
        let o = parse_outer(&g).unwrap().unwrap();
        assert_eq!(
            parse_tunnel(&g, &o, TunnelKind::Vxlan),
            Err(DecapError::BadTunnelHeader)
        );
        // ARP is not the tunnel layer's business.
        let mut arp = inner();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(parse_outer(&arp), Ok(None));
        // No headroom.
        let mut small = VecBuf::with_headroom(&inner(), 10);
        assert_eq!(
            encap(&mut small, &encap_params(TunnelKind::Vxlan, false, &[]), 1),
            Err(EncapError::NoHeadroom)
        );
        assert_eq!(small.data(), &inner()[..]);
    }

    /// The fixed-offset path of `parse_outer` answers as the field-by-field parse does,
    /// on VXLAN frames with every byte of the outer headers flipped and every length cut.
    #[test]
    fn the_fast_outer_parse_is_the_checked_one() {
        let mut b = VecBuf::new(&inner());
        encap(&mut b, &encap_params(TunnelKind::Vxlan, true, &[]), 50000).unwrap();
        let good = b.data().to_vec();
        assert!(parse_outer(&good).unwrap().is_some());
        let mut frames = vec![good.clone()];
        for at in 0..OUTER_LEN {
            for bit in 0..8 {
                let mut f = good.clone();
                f[at] ^= 1 << bit;
                frames.push(f);
            }
        }
        for cut in 0..good.len() {
            frames.push(good[..cut].to_vec());
        }
        // Lengths at and around their bounds, with the checksum kept right.
        for (at, vals) in [
            (16usize, [27u16, 28, 29, 110, 111]),
            (38, [7, 8, 9, 76, 77]),
        ] {
            for v in vals {
                let mut f = good.clone();
                f[at..at + 2].copy_from_slice(&v.to_be_bytes());
                f[24..26].copy_from_slice(&[0, 0]);
                let c = checksum::internet(&f[14..34]);
                f[24..26].copy_from_slice(&c.to_be_bytes());
                frames.push(f);
            }
        }
        for f in &frames {
            assert_eq!(parse_outer(f), parse_outer_checked(f), "frame {f:02x?}");
        }
    }

    /// A buffer whose `prepend` hands back the whole frame, as an mbuf does.
    struct WholeFrame(VecBuf);

    impl PacketBuf for WholeFrame {
        fn data(&self) -> &[u8] {
            self.0.data()
        }
        fn data_mut(&mut self) -> &mut [u8] {
            self.0.data_mut()
        }
        fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
            self.0.prepend(n)?;
            Some(self.0.data_mut())
        }
        fn adj(&mut self, n: usize) -> bool {
            self.0.adj(n)
        }
    }

    #[test]
    fn geneve_encap_on_a_buffer_that_returns_the_whole_frame() {
        let mut opts = [0u8; 8];
        let n = geneve::emit_option(&mut opts, 0x0102, 1, &[0, 0, 0, 7]);
        let mut b = WholeFrame(VecBuf::new(&inner()));
        encap(
            &mut b,
            &encap_params(TunnelKind::Geneve, true, &opts[..n]),
            50000,
        )
        .unwrap();
        let f = b.data();
        let o = parse_outer(f).unwrap().unwrap();
        let t = parse_tunnel(f, &o, TunnelKind::Geneve).unwrap();
        assert_eq!(&f[t.inner_offset..], &inner()[..]);
        verify_udp_checksum(f, &o).unwrap();
    }

    /// The outer headers written field by field, as encapsulation did before templates:
    /// the reference the template's copy-and-patch must match byte for byte.
    fn reference_encap(inner: &[u8], e: &Encap<'_>, src_port: u16) -> Vec<u8> {
        let overhead = e.overhead();
        let ip_len = inner.len() + overhead - ethernet::HEADER_LEN;
        let mut h = vec![0u8; overhead];
        h[0..6].copy_from_slice(&e.eth_dst);
        h[6..12].copy_from_slice(&e.eth_src);
        h[12..14].copy_from_slice(&ethertype::IPV4.to_be_bytes());
        {
            let mut ip = ipv4::Packet::new_unchecked(&mut h[14..34]);
            ip.set_version_and_header_len(ipv4::MIN_HEADER_LEN);
            ip.set_total_len(ip_len as u16);
            ip.set_frag(true, false, 0);
            ip.set_ttl(e.ttl);
            ip.set_protocol(ip_proto::UDP);
            ip.set_src(e.ip_src);
            ip.set_dst(e.ip_dst);
            ip.fill_checksum();
        }
        {
            let mut u = udp::Packet::new_unchecked(&mut h[34..42]);
            u.set_src_port(src_port);
            u.set_dst_port(e.dst_port);
            u.set_len((ip_len - ipv4::MIN_HEADER_LEN) as u16);
        }
        let t = &mut h[42..];
        match e.kind {
            TunnelKind::Vxlan => vxlan::Packet::new_unchecked(&mut t[..]).init(e.vni),
            TunnelKind::Geneve => {
                geneve::Packet::new_unchecked(&mut t[..]).init(
                    e.vni,
                    geneve::PROTOCOL_ETHERNET,
                    e.geneve_options.len(),
                    false,
                );
                t[geneve::HEADER_LEN..].copy_from_slice(e.geneve_options);
            }
        }
        let mut f = h;
        f.extend_from_slice(inner);
        if e.udp_checksum {
            let c = checksum::transport_v4(e.ip_src, e.ip_dst, ip_proto::UDP, &f[34..]);
            let c = if c == 0 { 0xffff } else { c };
            f[40..42].copy_from_slice(&c.to_be_bytes());
        }
        f
    }

    /// One template reused for packets with other next hops, addresses, VNIs, lengths and
    /// options writes what a field-by-field encapsulation writes, and its IPv4 checksum
    /// (constant words summed once, the rest per packet) verifies.
    type Case<'a> = (&'a [u8], [u8; 4], [u8; 4], u32, usize);

    #[test]
    fn a_reused_template_matches_the_field_by_field_headers() {
        let mut opts = [0u8; 16];
        let n1 = geneve::emit_option(&mut opts, 0x0102, 3, &[1, 2, 3, 4]);
        let n2 = n1 + geneve::emit_option(&mut opts[n1..], 0xffff, 0x7f, &[0xff; 4]);
        for kind in [TunnelKind::Vxlan, TunnelKind::Geneve] {
            for csum in [false, true] {
                let base = encap_params(kind, csum, &[]);
                let t = EncapTemplate::new(kind, base.eth_src, base.dst_port, base.ttl, csum);
                // (options, outer source, outer destination, VNI, inner length)
                let cases: [Case<'_>; 5] = [
                    (&[], [192, 0, 2, 1], [192, 0, 2, 2], 5000, 60),
                    (
                        &opts[..n1],
                        [10, 255, 0, 1],
                        [255, 255, 255, 254],
                        0xff_ffff,
                        61,
                    ),
                    (&opts[..n2], [0, 0, 0, 0], [1, 2, 3, 4], 0, 1400),
                    (&[], [255; 4], [255; 4], 0x1_000_001, 14),
                    (&opts[..n1], [192, 168, 1, 1], [172, 16, 0, 9], 77, 1450),
                ];
                for (o, src, dst, vni, len) in cases {
                    let o = if kind == TunnelKind::Vxlan {
                        &[][..]
                    } else {
                        o
                    };
                    let mut frame = inner();
                    frame.resize(len.max(14), 0x5a);
                    let e = Encap {
                        eth_dst: [0x0a, 1, 2, 3, 4, (len & 0xff) as u8],
                        ip_src: src,
                        ip_dst: dst,
                        vni: vni & 0xff_ffff,
                        geneve_options: o,
                        ..base
                    };
                    let sport = udp_src_port(&frame);
                    let mut b = VecBuf::new(&frame);
                    let fields = EncapFields {
                        eth_dst: e.eth_dst,
                        ip_src: src,
                        ip_dst: dst,
                        vni,
                        src_port: sport,
                        geneve_options: o,
                    };
                    t.encap(&mut b, &fields).unwrap();
                    assert_eq!(
                        b.data(),
                        &reference_encap(&frame, &e, sport)[..],
                        "{kind:?} csum {csum} src {src:?} dst {dst:?} options {}",
                        o.len()
                    );
                    assert!(ipv4::Packet::new_checked(&b.data()[14..])
                        .unwrap()
                        .verify_checksum());
                    let outer = parse_outer(b.data()).unwrap().unwrap();
                    verify_udp_checksum(b.data(), &outer).unwrap();
                }
            }
        }
    }

    /// A port's complete header (fixed remote, source and VNI) writes what the template's
    /// copy-and-patch writes, for every length, address, VNI, next hop and checksum
    /// setting, on buffers that hand back the new bytes or the whole frame; its one-fold
    /// IPv4 checksum verifies at the sums' extremes.
    #[test]
    fn a_fixed_header_matches_the_template() {
        let addrs = [
            ([192, 0, 2, 1], [192, 0, 2, 2]),
            ([255; 4], [255; 4]),
            ([0; 4], [0, 0, 0, 1]),
            ([10, 255, 0, 1], [255, 255, 255, 254]),
        ];
        for kind in [TunnelKind::Vxlan, TunnelKind::Geneve] {
            for csum in [false, true] {
                for ttl in [1, 64, 255] {
                    let t = EncapTemplate::new(kind, [2, 0xff, 0, 0, 0, 1], 4789, ttl, csum);
                    for (src, dst) in addrs {
                        for vni in [0, 5000, 0xff_ffff, 0x1ff_ffff] {
                            let fixed = t.fixed(src, dst, vni);
                            for len in [14, 60, 61, 1450, 9000, 65_000] {
                                let mut frame = inner();
                                frame.resize(len, 0xa5);
                                let sport = udp_src_port(&frame);
                                let mac = [0x0a, 1, 2, 3, (len >> 8) as u8, len as u8];
                                let mut want = VecBuf::new(&frame);
                                let fields = EncapFields {
                                    eth_dst: mac,
                                    ip_src: src,
                                    ip_dst: dst,
                                    vni,
                                    src_port: sport,
                                    geneve_options: &[],
                                };
                                t.encap(&mut want, &fields).unwrap();
                                let mut got = VecBuf::new(&frame);
                                fixed.encap(&mut got, mac, sport).unwrap();
                                assert_eq!(
                                    got.data(),
                                    want.data(),
                                    "{kind:?} {csum} {src:?} {vni} {len}"
                                );
                                let mut whole = WholeFrame(VecBuf::new(&frame));
                                fixed.encap(&mut whole, mac, sport).unwrap();
                                assert_eq!(whole.data(), want.data());
                                assert!(ipv4::Packet::new_checked(&got.data()[14..])
                                    .unwrap()
                                    .verify_checksum());
                            }
                        }
                    }
                }
            }
        }
        // Too long for IPv4: refused, the frame unchanged.
        let t = EncapTemplate::new(TunnelKind::Vxlan, [2, 0, 0, 0, 0, 1], 4789, 64, false);
        let mut big = inner();
        big.resize(usize::from(u16::MAX) - 20, 0);
        let mut b = VecBuf::new(&big);
        assert_eq!(
            t.fixed([1; 4], [2; 4], 1).encap(&mut b, [0; 6], 1),
            Err(EncapError::TooLong)
        );
        assert_eq!(b.data(), &big[..]);
        let mut small = VecBuf::with_headroom(&inner(), 49);
        assert_eq!(
            t.fixed([1; 4], [2; 4], 1).encap(&mut small, [0; 6], 1),
            Err(EncapError::NoHeadroom)
        );
        assert_eq!(small.data(), &inner()[..]);
    }

    /// Flows that differ only in one field (an address, a port) get many different
    /// source ports, for the underlay's ECMP: of 4096 flows, the low 12 bits of a field
    /// counting up, most land on distinct ports of the 16384 (a uniform hash puts about 3,640
    /// of 4096 on distinct ports; well under that would mean a field is hashed badly).
    #[test]
    fn source_ports_spread_over_flows() {
        // (offset of the varied bytes, what they are, the ethertype): IPv4 flows by
        // addresses and ports, other frames (here ARP) by their Ethernet addresses.
        for (at, what, ethertype) in [
            (34, "udp ports", [0x08, 0x00]),
            (26, "ipv4 source", [0x08, 0x00]),
            (30, "ipv4 destination", [0x08, 0x00]),
            (0, "eth dst", [0x08, 0x06]),
            (6, "eth src", [0x08, 0x06]),
        ] {
            let mut ports = std::collections::HashSet::new();
            for i in 0u32..4096 {
                let mut f = inner();
                f[12..14].copy_from_slice(&ethertype);
                f[at..at + 4].copy_from_slice(&i.to_be_bytes());
                let p = udp_src_port(&f);
                assert!(p >= 49152);
                assert_eq!(p, udp_src_port(&f.clone()), "the same flow keeps its port");
                ports.insert(p);
            }
            assert!(
                ports.len() > 3400,
                "{what}: only {} distinct source ports",
                ports.len()
            );
        }
    }

    /// The inline hash and the checked one agree on every frame the inline one takes
    /// (so a flow keeps its port whichever path its packets take).
    #[test]
    fn the_inline_hash_is_the_checked_one() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        for i in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut f = inner();
            f.resize(14 + (seed as usize % 80), 0);
            for (k, b) in f.iter_mut().enumerate().skip(14) {
                *b = (seed >> (k % 56)) as u8 ^ k as u8;
            }
            // Mostly IPv4 with and without options, TCP/UDP/other; some not IPv4.
            if i % 7 != 0 {
                f[12..14].copy_from_slice(&[0x08, 0x00]);
            }
            if f.len() > 23 {
                f[14] = [0x45, 0x46, 0x4f, 0x45][i % 4];
                f[23] = [6, 17, 1, 17][(i / 4) % 4];
            }
            assert_eq!(inner_hash(&f), inner_hash_checked(&f), "frame {f:02x?}");
        }
    }

    #[test]
    fn source_port_follows_the_flow() {
        let a = inner();
        let mut b = inner();
        b[34] = 0x31; // another source port: usually another hash
        assert_eq!(udp_src_port(&a), udp_src_port(&a.clone()));
        assert!(udp_src_port(&a) >= 49152 && udp_src_port(&b) >= 49152);
        assert_ne!(inner_hash(&a), inner_hash(&b));
        // Short frames hash without panicking.
        let _ = udp_src_port(&[1, 2, 3]);
    }
}
