//! The headers the tracker reads, parsed from an IPv4 or IPv6 packet (or an Ethernet frame).
//!
//! Parsing is separate from tracking so that the datapath, which has already located the
//! L3 header, pays only for the L4 fields conntrack needs, and so that tests can feed the
//! tracker frames read from a capture. No allocation; every length is checked against the
//! buffer, so a malformed packet is an [`Error`], never a panic.

use crate::Error;

/// An IP address; IPv4 addresses are kept in the low 32 bits.
pub type Addr = u128;

/// IP protocol numbers the tracker understands.
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;

/// TCP flag bits as they appear in the header's 13th byte.
pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_PSH: u8 = 0x08;
pub const TCP_ACK: u8 = 0x10;
pub const TCP_URG: u8 = 0x20;
pub const TCP_ECE: u8 = 0x40;
pub const TCP_CWR: u8 = 0x80;

/// What window tracking needs from a TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TcpSegment {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    /// Payload bytes (the segment after the TCP header and options).
    pub payload_len: u32,
    /// The window-scale option, if present (clamped to 14 as RFC 7323 says).
    pub wscale: Option<u8>,
    pub sack_permitted: bool,
    /// The highest right edge of the SACK blocks, if the segment carries any.
    pub sack_right_edge: Option<u32>,
}

/// The transport header of the packet that an ICMP error quotes: it names the connection
/// the error is about, as seen in the direction the quoted packet travelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quoted {
    pub src: Addr,
    pub dst: Addr,
    pub proto: u8,
    /// Ports, or for a quoted ICMP echo: the identifier in `sport` and the type in `dport`.
    pub sport: u16,
    pub dport: u16,
}

/// The transport layer as the tracker sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4 {
    Tcp(TcpSegment),
    Udp {
        sport: u16,
        dport: u16,
    },
    /// An ICMP/ICMPv6 query or its answer: echo, and as Linux tracks them, ICMPv4
    /// timestamp, information and address-mask, ICMPv6 node information. `query` is the
    /// request's type (8 for an echo request and an echo reply alike).
    IcmpEcho {
        id: u16,
        request: bool,
        query: u8,
    },
    /// An ICMP/ICMPv6 error quoting a packet.
    IcmpError {
        icmp_type: u8,
        quoted: Quoted,
    },
    /// Any other ICMP message (router advertisements, neighbour discovery, ...).
    IcmpOther {
        icmp_type: u8,
    },
    /// A protocol tracked by addresses only.
    Other,
}

/// A parsed packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    pub v6: bool,
    pub src: Addr,
    pub dst: Addr,
    pub proto: u8,
    pub l4: L4,
}

/// Parses an Ethernet frame (with up to two VLAN tags) carrying IPv4 or IPv6.
pub fn parse_ethernet(frame: &[u8], verify_checksums: bool) -> Result<Packet, Error> {
    let mut off = 12;
    let mut tags = 0;
    loop {
        let ethertype = be16(frame, off).ok_or(Error::Truncated("ethernet"))?;
        off += 2;
        match ethertype {
            0x8100 | 0x88a8 if tags < 2 => {
                tags += 1;
                off += 2;
            }
            0x0800 | 0x86dd => return parse_ip(&frame[off..], verify_checksums),
            other => return Err(Error::NotIp(other)),
        }
    }
}

/// Parses an IPv4 or IPv6 packet starting at its IP header. Bytes past the IP length
/// (Ethernet padding) are ignored.
pub fn parse_ip(l3: &[u8], verify_checksums: bool) -> Result<Packet, Error> {
    match l3.first().map(|b| b >> 4) {
        Some(4) => parse_ipv4(l3, verify_checksums),
        Some(6) => parse_ipv6(l3, verify_checksums),
        Some(v) => Err(Error::BadHeader(if v == 0 {
            "IP version 0"
        } else {
            "IP version"
        })),
        None => Err(Error::Truncated("IP header")),
    }
}

fn parse_ipv4(b: &[u8], verify: bool) -> Result<Packet, Error> {
    if b.len() < 20 {
        return Err(Error::Truncated("IPv4 header"));
    }
    let ihl = usize::from(b[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([b[2], b[3]]));
    if ihl < 20 || total < ihl {
        return Err(Error::BadHeader("IPv4 header length"));
    }
    if total > b.len() {
        return Err(Error::Truncated("IPv4 packet"));
    }
    if verify {
        // The usual header, without options, as three loads rather than `sum`'s loop.
        let header = if ihl == 20 {
            sum64(&[be64(b, 0), be64(b, 8), u64::from(be32(b, 16))], 0)
        } else {
            sum(&b[..ihl], 0)
        };
        if fold(header) != 0xffff {
            return Err(Error::BadChecksum);
        }
    }
    let frag = u16::from_be_bytes([b[6], b[7]]);
    if frag & 0x3fff != 0 {
        return Err(Error::Fragment);
    }
    let proto = b[9];
    let src = Addr::from(u32::from_be_bytes([b[12], b[13], b[14], b[15]]));
    let dst = Addr::from(u32::from_be_bytes([b[16], b[17], b[18], b[19]]));
    let l4 = &b[ihl..total];
    let pseudo = if verify {
        u32::from(fold(sum64(&[be64(b, 12)], u64::from(proto))))
    } else {
        0
    };
    let l4 = parse_l4(proto, false, l4, verify, pseudo)?;
    Ok(Packet {
        v6: false,
        src,
        dst,
        proto,
        l4,
    })
}

/// Walks IPv6 extension headers (at most 8: a documented bound) and returns the upper-layer
/// protocol and its offset.
pub(crate) fn ipv6_upper(b: &[u8], mut next: u8, mut off: usize) -> Result<(u8, usize), Error> {
    for _ in 0..8 {
        match next {
            0 | 43 | 60 => {
                let len =
                    (usize::from(*b.get(off + 1).ok_or(Error::Truncated("IPv6 ext"))?) + 1) * 8;
                next = b[off];
                off += len;
                if off > b.len() {
                    return Err(Error::Truncated("IPv6 ext"));
                }
            }
            44 => return Err(Error::Fragment),
            _ => return Ok((next, off)),
        }
    }
    Err(Error::BadHeader("too many IPv6 extension headers"))
}

fn parse_ipv6(b: &[u8], verify: bool) -> Result<Packet, Error> {
    if b.len() < 40 {
        return Err(Error::Truncated("IPv6 header"));
    }
    let total = 40 + usize::from(u16::from_be_bytes([b[4], b[5]]));
    if total > b.len() {
        return Err(Error::Truncated("IPv6 packet"));
    }
    let b = &b[..total];
    let src = u128::from_be_bytes(b[8..24].try_into().expect("16 bytes"));
    let dst = u128::from_be_bytes(b[24..40].try_into().expect("16 bytes"));
    let (proto, off) = ipv6_upper(b, b[6], 40)?;
    let l4 = &b[off..];
    let pseudo = if verify {
        u32::from(fold(sum(&b[8..40], u32::from(proto))))
    } else {
        0
    };
    let l4 = parse_l4(proto, true, l4, verify, pseudo)?;
    Ok(Packet {
        v6: true,
        src,
        dst,
        proto,
        l4,
    })
}

/// `pseudo`: the folded sum of the pseudo header's addresses and protocol (the length,
/// which UDP takes from its own header, is added here).
fn parse_l4(proto: u8, v6: bool, l4: &[u8], verify: bool, pseudo: u32) -> Result<L4, Error> {
    match proto {
        PROTO_TCP => {
            if l4.len() < 20 {
                return Err(Error::Truncated("TCP header"));
            }
            let doff = usize::from(l4[12] >> 4) * 4;
            if doff < 20 || doff > l4.len() {
                return Err(Error::BadHeader("TCP data offset"));
            }
            if verify && fold(sum(l4, pseudo + l4.len() as u32)) != 0xffff {
                return Err(Error::BadChecksum);
            }
            let mut seg = TcpSegment {
                sport: u16::from_be_bytes([l4[0], l4[1]]),
                dport: u16::from_be_bytes([l4[2], l4[3]]),
                seq: u32::from_be_bytes([l4[4], l4[5], l4[6], l4[7]]),
                ack: u32::from_be_bytes([l4[8], l4[9], l4[10], l4[11]]),
                flags: l4[13],
                window: u16::from_be_bytes([l4[14], l4[15]]),
                payload_len: (l4.len() - doff) as u32,
                ..TcpSegment::default()
            };
            tcp_options(&l4[20..doff], &mut seg);
            Ok(L4::Tcp(seg))
        }
        PROTO_UDP => {
            if l4.len() < 8 {
                return Err(Error::Truncated("UDP header"));
            }
            let len = usize::from(u16::from_be_bytes([l4[4], l4[5]]));
            if len < 8 || len > l4.len() {
                return Err(Error::BadHeader("UDP length"));
            }
            let csum = u16::from_be_bytes([l4[6], l4[7]]);
            if verify && (csum != 0 || v6) && fold(sum(&l4[..len], pseudo + len as u32)) != 0xffff {
                return Err(Error::BadChecksum);
            }
            Ok(L4::Udp {
                sport: u16::from_be_bytes([l4[0], l4[1]]),
                dport: u16::from_be_bytes([l4[2], l4[3]]),
            })
        }
        PROTO_ICMP | PROTO_ICMPV6 if (proto == PROTO_ICMPV6) == v6 => {
            if l4.len() < 8 {
                return Err(Error::Truncated("ICMP header"));
            }
            // ICMPv4's checksum has no pseudo header.
            let init = if v6 { pseudo + l4.len() as u32 } else { 0 };
            if verify && fold(sum(l4, init)) != 0xffff {
                return Err(Error::BadChecksum);
            }
            let icmp_type = l4[0];
            let id = u16::from_be_bytes([l4[4], l4[5]]);
            let is_error = if v6 {
                icmp_type < 128
            } else {
                matches!(icmp_type, 3 | 4 | 5 | 11 | 12)
            };
            if let Some((query, request)) = icmp_query(v6, icmp_type) {
                Ok(L4::IcmpEcho { id, request, query })
            } else if is_error {
                Ok(L4::IcmpError {
                    icmp_type,
                    quoted: parse_quoted(&l4[8..], v6)?,
                })
            } else {
                Ok(L4::IcmpOther { icmp_type })
            }
        }
        _ => Ok(L4::Other),
    }
}

/// For an ICMP query or answer type: the request's type and whether this is the request
/// (Linux's `invmap` of icmp and icmpv6).
pub fn icmp_query(v6: bool, icmp_type: u8) -> Option<(u8, bool)> {
    let pairs: &[(u8, u8)] = if v6 {
        &[(128, 129), (139, 140)]
    } else {
        &[(8, 0), (13, 14), (15, 16), (17, 18)]
    };
    pairs.iter().find_map(|&(req, rep)| {
        if icmp_type == req {
            Some((req, true))
        } else if icmp_type == rep {
            Some((req, false))
        } else {
            None
        }
    })
}

/// The quoted packet of an ICMP error: its IP header and the first 8 bytes after it.
fn parse_quoted(b: &[u8], v6: bool) -> Result<Quoted, Error> {
    let (src, dst, proto, off) = if v6 {
        if b.len() < 40 {
            return Err(Error::Truncated("quoted IPv6 header"));
        }
        let (proto, off) = ipv6_upper(b, b[6], 40)?;
        (
            u128::from_be_bytes(b[8..24].try_into().expect("16 bytes")),
            u128::from_be_bytes(b[24..40].try_into().expect("16 bytes")),
            proto,
            off,
        )
    } else {
        if b.len() < 20 || b[0] >> 4 != 4 {
            return Err(Error::Truncated("quoted IPv4 header"));
        }
        let ihl = usize::from(b[0] & 0x0f) * 4;
        if ihl < 20 {
            return Err(Error::BadHeader("quoted IPv4 header length"));
        }
        (
            Addr::from(u32::from_be_bytes([b[12], b[13], b[14], b[15]])),
            Addr::from(u32::from_be_bytes([b[16], b[17], b[18], b[19]])),
            b[9],
            ihl,
        )
    };
    let l4 = b
        .get(off..off + 8)
        .ok_or(Error::Truncated("quoted transport header"))?;
    let (sport, dport) = match proto {
        PROTO_TCP | PROTO_UDP => (
            u16::from_be_bytes([l4[0], l4[1]]),
            u16::from_be_bytes([l4[2], l4[3]]),
        ),
        PROTO_ICMP | PROTO_ICMPV6 => (u16::from_be_bytes([l4[4], l4[5]]), u16::from(l4[0])),
        _ => (0, 0),
    };
    Ok(Quoted {
        src,
        dst,
        proto,
        sport,
        dport,
    })
}

/// The TCP options window tracking reads (as Linux's `tcp_options`/`tcp_sack` do: a
/// malformed option ends the walk, keeping what was read before it).
fn tcp_options(mut o: &[u8], seg: &mut TcpSegment) {
    while let Some(&kind) = o.first() {
        match kind {
            0 => return,
            1 => o = &o[1..],
            _ => {
                let Some(&len) = o.get(1) else { return };
                let len = usize::from(len);
                if len < 2 || len > o.len() {
                    return;
                }
                match (kind, len) {
                    (3, 3) => seg.wscale = Some(o[2].min(14)),
                    (4, 2) => seg.sack_permitted = true,
                    (5, l) if l >= 10 && (l - 2) % 8 == 0 => {
                        for block in o[2..l].chunks_exact(8) {
                            let right =
                                u32::from_be_bytes([block[4], block[5], block[6], block[7]]);
                            if seg
                                .sack_right_edge
                                .is_none_or(|r| crate::tcp::after(right, r))
                            {
                                seg.sack_right_edge = Some(right);
                            }
                        }
                    }
                    _ => {}
                }
                o = &o[len..];
            }
        }
    }
}

fn be16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(off)?, *b.get(off + 1)?]))
}

/// The one's-complement sum of `b` (big-endian 16-bit words) plus `init`, not yet folded
/// to 16 bits. Eight bytes at a time, with the carry added back in: a big-endian 64-bit
/// word is four 16-bit words, and 2^16 = 1 modulo 2^16 - 1, so the folded sum is the same
/// (RFC 1071's "parallel summation") in a quarter of the additions.
#[inline]
fn sum(b: &[u8], init: u32) -> u32 {
    let mut acc = u64::from(init);
    let mut words = b.chunks_exact(8);
    for w in &mut words {
        let (s, carry) = acc.overflowing_add(u64::from_be_bytes([
            w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7],
        ]));
        acc = s + u64::from(carry);
    }
    // 0 to 7 bytes left: a 32-bit word, a 16-bit word, an odd last byte (the high byte
    // of a word padded with zero, as RFC 1071 pads it).
    let rest = words.remainder();
    let mut tail = 0u64;
    let mut at = 0;
    if let [a, b, c, d, ..] = *rest {
        tail += u64::from(u32::from_be_bytes([a, b, c, d]));
        at = 4;
    }
    if let [a, b, ..] = rest[at..] {
        tail += u64::from(u16::from_be_bytes([a, b]));
        at += 2;
    }
    if let [last] = rest[at..] {
        tail += u64::from(last) << 8;
    }
    let (s, carry) = acc.overflowing_add(tail);
    acc = s + u64::from(carry);
    let acc = (acc & 0xffff_ffff) + (acc >> 32);
    ((acc & 0xffff_ffff) + (acc >> 32)) as u32
}

/// [`sum`] of big-endian 64-bit words already loaded (a fixed-size header), plus `init`.
#[inline]
fn sum64(words: &[u64], init: u64) -> u32 {
    let mut acc = init;
    for &w in words {
        let (s, carry) = acc.overflowing_add(w);
        acc = s + u64::from(carry);
    }
    let acc = (acc & 0xffff_ffff) + (acc >> 32);
    ((acc & 0xffff_ffff) + (acc >> 32)) as u32
}

/// The big-endian 64-bit word at `at` (the caller has checked the length).
#[inline]
fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 1071's sum, 16 bits at a time: what `sum` must agree with.
    fn sum16(b: &[u8], init: u32) -> u16 {
        let mut acc = u64::from(init);
        for c in b.chunks(2) {
            acc += u64::from(c[0]) << 8 | u64::from(*c.get(1).unwrap_or(&0));
        }
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    proptest! {
        /// Four bytes at a time folds to the same 16-bit sum as two at a time, for every
        /// length (odd ones padded) and initial value a caller passes.
        #[test]
        fn sum_by_words_is_rfc1071(b in proptest::collection::vec(any::<u8>(), 0..200),
                                   init in 0u32..0x3_0000) {
            prop_assert_eq!(fold(sum(&b, init)), sum16(&b, init));
        }
    }

    proptest! {
        /// The fixed IPv4 header's three loads fold to the same sum as `sum` over its 20
        /// bytes, and the pseudo header's addresses word to that of its 8 bytes.
        #[test]
        fn sum64_is_sum(b in proptest::collection::vec(any::<u8>(), 20..21), init in 0u8..=255) {
            let words = [be64(&b, 0), be64(&b, 8), u64::from(be32(&b, 16))];
            prop_assert_eq!(fold(sum64(&words, 0)), fold(sum(&b, 0)));
            prop_assert_eq!(
                fold(sum64(&[be64(&b, 12)], u64::from(init))),
                fold(sum(&b[12..20], u32::from(init)))
            );
        }
    }

    /// All-ones data sums to 0xffff (a checksum that verifies), zeros to 0: the two
    /// one's-complement zeros stay apart.
    #[test]
    fn sum_keeps_both_zeros_apart() {
        assert_eq!(fold(sum(&[0xff; 8], 0)), 0xffff);
        assert_eq!(fold(sum(&[0; 9], 0)), 0);
    }
}
