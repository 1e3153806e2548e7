//! NAT ranges as `ct(nat(src=...))` / `ct(nat(dst=...))` write them, and the search for a
//! free translation.
//!
//! A translation is chosen when a connection is committed and kept for its life: the
//! original direction is rewritten to the translated tuple, the reply direction back. The
//! search starts at a hash of the connection (so connections spread over the range), tries
//! at most [`crate::Config::nat_attempts`] candidates (the bound on a new connection's
//! cost), and takes the first whose reply tuple is not in use and, with several shards,
//! whose reply direction hashes to this shard ([`crate::shard_of`]), so that replies reach
//! the worker that owns the connection. With one address and no port range and several
//! shards, some connections find no such translation: they are refused and counted in
//! [`crate::Stats::nat_exhausted`]; give SNAT a port range (OVS's own default for SNAT
//! without ports is to pick a source port too, which we do as well).

use crate::{Addr, Error};
use std::net::IpAddr;

/// Which side of the original direction is translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatKind {
    Src,
    Dst,
}

/// `src|dst=ADDR[-ADDR][:PORT[-PORT]]`. IPv6 addresses are written in brackets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
