//! NAT ranges as `ct(nat(src=...))` / `ct(nat(dst=...))` write them, and the search for a
//! free translation.
//!
//! A translation is chosen when a connection is committed and kept for its life: the
//! original direction is rewritten to the translated tuple, the reply direction back. The
//! search starts at a hash of the connection (so connections spread over the range), tries
//! at most [`crate::Config::nat_attempts`] candidates (the bound on a new connection's
//! cost), and takes the first whose reply tuple is not in use and, with several shards,
//! whose reply direction hashes to this shard ([`crate::shard_of`]), so that replies reach
//! the worker that owns the connection. SNAT without a port range picks a source port
//! when the original one does not fit (Open vSwitch's default too). DNAT, when no
//! destination in its range fits (typically one address and port, `nat(dst=IP:PORT)`,
//! whose reply hashes to another shard for about (W-1)/W of the connections over W
//! workers, or clashes with a connection already there), also translates the source
//! port, as Linux and Open vSwitch do on a clash: a port from
//! [`remap_source_ports`] whose reply hashes to this shard (the server sees that port; the
//! client never does). A connection that still finds no translation within the attempts
//! is refused and counted in [`crate::Stats::nat_exhausted`].

use crate::{Addr, Error};
use std::net::IpAddr;

/// Which side of the original direction is translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NatKind {
    Src,
    Dst,
}

/// `src|dst=ADDR[-ADDR][:PORT[-PORT]]`. IPv6 addresses are written in brackets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NatRange {
    pub kind: NatKind,
    pub v6: bool,
    pub addr_min: Addr,
    pub addr_max: Addr,
    /// `None`: keep the port (SNAT still picks another one if the original is taken).
    pub ports: Option<(u16, u16)>,
}

impl NatRange {
    /// Parses the argument of `nat(...)`: `src=10.0.0.1-10.0.0.9:1024-2047`,
    /// `dst=[fd00::1]:80`.
    pub fn parse(s: &str) -> Result<NatRange, Error> {
        let (kind, rest) = if let Some(r) = s.strip_prefix("src=") {
            (NatKind::Src, r)
        } else if let Some(r) = s.strip_prefix("dst=") {
            (NatKind::Dst, r)
        } else {
            return Err(Error::NatRange("expected src= or dst="));
        };
        let (addrs, ports) = if rest.starts_with('[') {
            // [a]-[b]:p-q
            match rest.rfind("]:") {
                Some(i) => (&rest[..=i], Some(&rest[i + 2..])),
                None => (rest, None),
            }
        } else {
            match rest.split_once(':') {
                Some((a, p)) => (a, Some(p)),
                None => (rest, None),
            }
        };
        let parse_addr = |a: &str| -> Result<IpAddr, Error> {
            a.trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| Error::NatRange("bad address"))
        };
        let (lo, hi) = match addrs.split_once("-") {
            Some((a, b)) => (parse_addr(a)?, parse_addr(b)?),
            None => (parse_addr(addrs)?, parse_addr(addrs)?),
        };
        let (v6, addr_min, addr_max) = match (lo, hi) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                (false, u128::from(u32::from(a)), u128::from(u32::from(b)))
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => (true, u128::from(a), u128::from(b)),
            _ => return Err(Error::NatRange("mixed address families")),
        };
        if addr_min > addr_max {
            return Err(Error::NatRange("first address above the last"));
        }
        let ports = match ports {
            None => None,
            Some(p) => {
                let num = |x: &str| x.parse::<u16>().map_err(|_| Error::NatRange("bad port"));
                let (a, b) = match p.split_once('-') {
                    Some((a, b)) => (num(a)?, num(b)?),
                    None => (num(p)?, num(p)?),
                };
                if a > b || a == 0 {
                    return Err(Error::NatRange("bad port range"));
                }
                Some((a, b))
            }
        };
        Ok(NatRange {
            kind,
            v6,
            addr_min,
            addr_max,
            ports,
        })
    }

    /// Addresses in the range, saturated at `u64::MAX` (enough for any search).
    pub(crate) fn addr_count(&self) -> u64 {
        u64::try_from(self.addr_max - self.addr_min).map_or(u64::MAX, |n| n.saturating_add(1))
    }
}

impl std::fmt::Display for NatRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let addr = |a: Addr| {
            if self.v6 {
                format!("[{}]", std::net::Ipv6Addr::from(a))
            } else {
                std::net::Ipv4Addr::from(a as u32).to_string()
            }
        };
        f.write_str(match self.kind {
            NatKind::Src => "src=",
            NatKind::Dst => "dst=",
        })?;
        f.write_str(&addr(self.addr_min))?;
        if self.addr_max != self.addr_min {
            write!(f, "-{}", addr(self.addr_max))?;
        }
        match self.ports {
            Some((a, b)) if a == b => write!(f, ":{a}"),
            Some((a, b)) => write!(f, ":{a}-{b}"),
            None => Ok(()),
        }
    }
}

/// The source ports a DNAT may move a connection to when its destination alone keeps no
/// translation free on the owner's shard: Open vSwitch's choice (`set_sport_range` in its
/// userspace conntrack), which keeps a privileged source port privileged: 1-511 for a
/// port below 512, 600-1023 below 1024, else 1024-65535.
pub fn remap_source_ports(sport: u16) -> (u16, u16) {
    match sport {
        0..=511 => (1, 511),
        512..=1023 => (600, 1023),
        _ => (1024, 65535),
    }
}

/// Makes a [`crate::Rewrite`]'s edits to an IP packet (starting at its IP header):
/// addresses, TCP/UDP ports, an ICMP query's identifier, and every checksum they enter
/// (IPv4 header, TCP, UDP unless an IPv4 UDP checksum is 0, ICMP, ICMPv6), updated
/// incrementally (RFC 1624). The packet must
/// parse (see [`crate::parse_ip`]); its length does not change.
pub fn apply(l3: &mut [u8], rw: &crate::Rewrite) -> Result<(), Error> {
    if rw.quoted_src.is_some() || rw.quoted_dst.is_some() || rw.quoted_id.is_some() {
        return apply_icmp_error(l3, rw);
    }
    if rw.src.is_none() && rw.dst.is_none() && rw.id.is_none() {
        return Ok(());
    }
    let v6 = match l3.first().map(|b| b >> 4) {
        Some(4) if l3.len() >= 20 => false,
        Some(6) if l3.len() >= 40 => true,
        _ => return Err(Error::Truncated("IP header")),
    };
    let (proto, l4_off, src_at, alen) = if v6 {
        let (proto, off) = crate::packet::ipv6_upper(l3, l3[6], 40)?;
        (proto, off, 8, 16)
    } else {
        (l3[9], usize::from(l3[0] & 0x0f) * 4, 12, 4)
    };
    // Where the L4 checksum lives, if the addresses/ports enter it.
    let l4_csum = match proto {
        crate::packet::PROTO_TCP => Some(l4_off + 16),
        crate::packet::PROTO_UDP => {
            let at = l4_off + 6;
            let zero = l3.get(at..at + 2).is_some_and(|c| c == [0, 0]);
            (!zero || v6).then_some(at)
        }
        crate::packet::PROTO_ICMPV6 => Some(l4_off + 2),
        _ => None,
    };
    let pseudo = matches!(
        proto,
        crate::packet::PROTO_TCP | crate::packet::PROTO_UDP | crate::packet::PROTO_ICMPV6
    );
    let ports = matches!(proto, crate::packet::PROTO_TCP | crate::packet::PROTO_UDP);
    if let Some(at) = l4_csum {
        if l3.len() < at + 2 {
            return Err(Error::Truncated("transport header"));
        }
    }
    if ports && l3.len() < l4_off + 4 {
        return Err(Error::Truncated("transport header"));
    }
    for (which, edit) in [(0usize, rw.src), (1, rw.dst)] {
        let Some((addr, port)) = edit else { continue };
        let at = src_at + which * alen;
        let mut new_buf = [0u8; 16];
        if v6 {
            new_buf = addr.to_be_bytes();
        } else {
            new_buf[..4].copy_from_slice(&(addr as u32).to_be_bytes());
        }
        let new_addr = &new_buf[..alen];
        let mut old_addr = [0u8; 16];
        old_addr[..alen].copy_from_slice(&l3[at..at + alen]);
        l3[at..at + alen].copy_from_slice(new_addr);
        if !v6 {
            let c = u16::from_be_bytes([l3[10], l3[11]]);
            l3[10..12].copy_from_slice(&csum_replace(c, &old_addr[..alen], new_addr).to_be_bytes());
        }
        if let (Some(c_at), true) = (l4_csum, pseudo) {
            let c = u16::from_be_bytes([l3[c_at], l3[c_at + 1]]);
            let c = csum_replace(c, &old_addr[..alen], new_addr);
            l3[c_at..c_at + 2].copy_from_slice(&udp_fix(proto, c).to_be_bytes());
        }
        if ports {
            let p_at = l4_off + which * 2;
            let old = [l3[p_at], l3[p_at + 1]];
            let new = port.to_be_bytes();
            l3[p_at..p_at + 2].copy_from_slice(&new);
            if let Some(c_at) = l4_csum {
                let c = u16::from_be_bytes([l3[c_at], l3[c_at + 1]]);
                let c = csum_replace(c, &old, &new);
                l3[c_at..c_at + 2].copy_from_slice(&udp_fix(proto, c).to_be_bytes());
            }
        }
    }
    // An ICMP query's identifier (bytes 4-5 of its header), under the ICMP checksum
    // (bytes 2-3; no pseudo header for ICMPv4, the addresses done above for ICMPv6).
    if let (Some(id), crate::packet::PROTO_ICMP | crate::packet::PROTO_ICMPV6) = (rw.id, proto) {
        if l3.len() < l4_off + 6 {
            return Err(Error::Truncated("ICMP header"));
        }
        let at = l4_off + 4;
        let old = [l3[at], l3[at + 1]];
        let new = id.to_be_bytes();
        l3[at..at + 2].copy_from_slice(&new);
        let c = u16::from_be_bytes([l3[l4_off + 2], l3[l4_off + 3]]);
        l3[l4_off + 2..l4_off + 4].copy_from_slice(&csum_replace(c, &old, &new).to_be_bytes());
    }
    Ok(())
}

/// An ICMP error about a NATed connection: the outer addresses (IPv4 header checksum, the
/// ICMPv6 pseudo header), then the quoted packet's addresses and ports with its own IPv4
/// header checksum and, when quoted whole enough, its TCP/UDP checksum; every byte changed
/// inside the ICMP message also updates the ICMP checksum.
fn apply_icmp_error(l3: &mut [u8], rw: &crate::Rewrite) -> Result<(), Error> {
    use crate::packet::{PROTO_TCP, PROTO_UDP};
    let pkt = crate::parse_ip(l3, false)?;
    let crate::L4::IcmpError { .. } = pkt.l4 else {
        return Err(Error::BadHeader(
            "quoted-packet rewrite of a packet that is no ICMP error",
        ));
    };
    let (v6, alen) = (pkt.v6, if pkt.v6 { 16 } else { 4 });
    let icmp_off = if v6 {
        crate::packet::ipv6_upper(l3, l3[6], 40)?.1
    } else {
        usize::from(l3[0] & 0x0f) * 4
    };
    let icmp_sum = icmp_off + 2;
    let outer_src = if v6 { 8 } else { 12 };
    for (which, edit) in [(0usize, rw.src), (1, rw.dst)] {
        if let Some((addr, _)) = edit {
            let sums: &[usize] = if v6 { &[icmp_sum] } else { &[10] };
            put(
                l3,
                outer_src + which * alen,
                &addr_bytes(addr, v6)[..alen],
                sums,
                None,
            );
        }
    }
    // The quoted packet.
    let inner = icmp_off + 8;
    let (inner_proto, inner_l4) = if v6 {
        crate::packet::ipv6_upper(l3, l3[inner + 6], inner + 40)?
    } else {
        (l3[inner + 9], inner + usize::from(l3[inner] & 0x0f) * 4)
    };
    let inner_src = inner + if v6 { 8 } else { 12 };
    let l4_sum = match inner_proto {
        PROTO_UDP
            if l3.len() >= inner_l4 + 8 && (v6 || l3[inner_l4 + 6..inner_l4 + 8] != [0, 0]) =>
        {
            Some(inner_l4 + 6)
        }
        PROTO_TCP if l3.len() >= inner_l4 + 18 => Some(inner_l4 + 16),
        _ => None,
    };
    let ports = matches!(inner_proto, PROTO_TCP | PROTO_UDP) && l3.len() >= inner_l4 + 4;
    for (which, edit) in [(0usize, rw.quoted_src), (1, rw.quoted_dst)] {
        let Some((addr, port)) = edit else { continue };
        let mut sums = [0usize; 2];
        let mut n = 0;
        if !v6 {
            sums[n] = inner + 10;
            n += 1;
        }
        if let Some(at) = l4_sum {
            sums[n] = at;
            n += 1;
        }
        put(
            l3,
            inner_src + which * alen,
            &addr_bytes(addr, v6)[..alen],
            &sums[..n],
            Some(icmp_sum),
        );
        if ports {
            let l4_only: &[usize] = match l4_sum {
                Some(ref at) => std::slice::from_ref(at),
                None => &[],
            };
            put(
                l3,
                inner_l4 + which * 2,
                &port.to_be_bytes(),
                l4_only,
                Some(icmp_sum),
            );
        }
    }
    // A quoted ICMP query's identifier (type, code, checksum, identifier), in its own
    // checksum when the quote holds it and in the error's.
    if let (Some(id), crate::packet::PROTO_ICMP | crate::packet::PROTO_ICMPV6) =
        (rw.quoted_id, inner_proto)
    {
        if l3.len() >= inner_l4 + 6 {
            put(
                l3,
                inner_l4 + 4,
                &id.to_be_bytes(),
                &[inner_l4 + 2],
                Some(icmp_sum),
            );
        }
    }
    Ok(())
}

fn addr_bytes(addr: Addr, v6: bool) -> [u8; 16] {
    let mut b = [0u8; 16];
    if v6 {
        b = addr.to_be_bytes();
    } else {
        b[..4].copy_from_slice(&(addr as u32).to_be_bytes());
    }
    b
}

/// Writes `new` at `at`, updating the checksum fields at `sums` for the change, and, when
/// the bytes (and those checksum fields) lie inside a region summed by `outer`, that one too.
fn put(l3: &mut [u8], at: usize, new: &[u8], sums: &[usize], outer: Option<usize>) {
    let mut old = [0u8; 16];
    let old = &mut old[..new.len()];
    old.copy_from_slice(&l3[at..at + new.len()]);
    l3[at..at + new.len()].copy_from_slice(new);
    for &f in sums {
        let before = [l3[f], l3[f + 1]];
        let c = csum_replace(u16::from_be_bytes(before), old, new);
        l3[f..f + 2].copy_from_slice(&c.to_be_bytes());
        if let Some(o) = outer {
            let oc = csum_replace(
                u16::from_be_bytes([l3[o], l3[o + 1]]),
                &before,
                &c.to_be_bytes(),
            );
            l3[o..o + 2].copy_from_slice(&oc.to_be_bytes());
        }
    }
    if let Some(o) = outer {
        let oc = csum_replace(u16::from_be_bytes([l3[o], l3[o + 1]]), old, new);
        l3[o..o + 2].copy_from_slice(&oc.to_be_bytes());
    }
}

/// A UDP checksum that computes to 0 is sent as 0xffff (0 means "none").
fn udp_fix(proto: u8, c: u16) -> u16 {
    if proto == crate::packet::PROTO_UDP && c == 0 {
        0xffff
    } else {
        c
    }
}

/// RFC 1624's HC' = ~(~HC + ~m + m') over the 16-bit words of `old` and `new`.
fn csum_replace(csum: u16, old: &[u8], new: &[u8]) -> u16 {
    let mut s = u32::from(!csum);
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        s += u32::from(!u16::from_be_bytes([o[0], o[1]]));
        s += u32::from(u16::from_be_bytes([n[0], n[1]]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_print_back() {
        for s in [
            "src=10.0.0.1",
            "src=10.0.0.1-10.0.0.9:1024-2047",
            "dst=192.168.1.5:80",
            "dst=[fd00::1]:80",
            "src=[fd00::1]-[fd00::9]",
        ] {
            assert_eq!(NatRange::parse(s).unwrap().to_string(), s);
        }
        assert!(NatRange::parse("src=10.0.0.9-10.0.0.1").is_err());
        assert!(NatRange::parse("src=10.0.0.1-[fd00::1]").is_err());
        assert!(NatRange::parse("dst=10.0.0.1:0").is_err());
        assert!(NatRange::parse("foo=10.0.0.1").is_err());
    }
}
