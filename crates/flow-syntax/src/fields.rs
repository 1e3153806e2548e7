//! Match fields: ovs-ofctl's names for them and their value syntax.

use std::net::{Ipv4Addr, Ipv6Addr};

use openflow::consts::{
    OFPP_ALL, OFPP_ANY, OFPP_CONTROLLER, OFPP_FLOOD, OFPP_IN_PORT, OFPP_LOCAL, OFPP_MAX,
    OFPP_NORMAL, OFPP_TABLE,
};
use openflow::OxmField;

use crate::{bad, parse_uint, SyntaxError};

/// How a field's value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Decimal,
    Hex,
    Mac,
    Ipv4,
    Ipv6,
    Port,
}

/// The name ovs-ofctl prints in `set_field:...->NAME`, and the value syntax.
pub fn oxm_name(f: OxmField) -> &'static str {
    spec(f).0
}

pub(crate) fn kind(f: OxmField) -> Kind {
    spec(f).1
}

fn spec(f: OxmField) -> (&'static str, Kind) {
    use Kind::*;
    use OxmField::*;
    match f {
        InPort => ("in_port", Port),
        InPhyPort => ("in_phy_port", Port),
        Metadata => ("metadata", Hex),
        EthDst => ("eth_dst", Mac),
        EthSrc => ("eth_src", Mac),
        EthType => ("eth_type", Hex),
        VlanVid => ("vlan_vid", Decimal),
        VlanPcp => ("vlan_pcp", Decimal),
        IpDscp => ("ip_dscp", Decimal),
        IpEcn => ("ip_ecn", Decimal),
        IpProto => ("ip_proto", Decimal),
        Ipv4Src => ("ip_src", Ipv4),
        Ipv4Dst => ("ip_dst", Ipv4),
        TcpSrc => ("tcp_src", Decimal),
        TcpDst => ("tcp_dst", Decimal),
        UdpSrc => ("udp_src", Decimal),
        UdpDst => ("udp_dst", Decimal),
        SctpSrc => ("sctp_src", Decimal),
        SctpDst => ("sctp_dst", Decimal),
        Icmpv4Type => ("icmp_type", Decimal),
        Icmpv4Code => ("icmp_code", Decimal),
        ArpOp => ("arp_op", Decimal),
        ArpSpa => ("arp_spa", Ipv4),
        ArpTpa => ("arp_tpa", Ipv4),
        ArpSha => ("arp_sha", Mac),
        ArpTha => ("arp_tha", Mac),
        Ipv6Src => ("ipv6_src", Ipv6),
        Ipv6Dst => ("ipv6_dst", Ipv6),
        Ipv6Flabel => ("ipv6_label", Hex),
        Icmpv6Type => ("icmpv6_type", Decimal),
        Icmpv6Code => ("icmpv6_code", Decimal),
        Ipv6NdTarget => ("nd_target", Ipv6),
        Ipv6NdSll => ("nd_sll", Mac),
        Ipv6NdTll => ("nd_tll", Mac),
        MplsLabel => ("mpls_label", Decimal),
        MplsTc => ("mpls_tc", Decimal),
        MplsBos => ("mpls_bos", Decimal),
        PbbIsid => ("pbb_isid", Hex),
        TunnelId => ("tun_id", Hex),
        Ipv6Exthdr => ("ipv6_exthdr", Hex),
    }
}

/// The OXM field a name denotes (both ovs-ofctl's OpenFlow 1.0-style names
/// and the OXM names). Names whose field depends on the rest of the match
/// (`nw_src` on ARP, `tp_dst`, `icmp_type` on IPv6) are resolved by the flow
/// parser, not here.
pub fn field_by_name(name: &str) -> Option<OxmField> {
    use OxmField::*;
    Some(match name {
        "in_port" => InPort,
        "in_phy_port" => InPhyPort,
        "metadata" => Metadata,
        "dl_dst" | "eth_dst" => EthDst,
        "dl_src" | "eth_src" => EthSrc,
        "dl_type" | "eth_type" => EthType,
        "vlan_vid" => VlanVid,
        "dl_vlan_pcp" | "vlan_pcp" => VlanPcp,
        "ip_dscp" => IpDscp,
        "nw_ecn" | "ip_ecn" => IpEcn,
        "nw_proto" | "ip_proto" => IpProto,
        "nw_src" | "ip_src" | "ipv4_src" => Ipv4Src,
        "nw_dst" | "ip_dst" | "ipv4_dst" => Ipv4Dst,
        "tcp_src" => TcpSrc,
        "tcp_dst" => TcpDst,
        "udp_src" => UdpSrc,
        "udp_dst" => UdpDst,
        "sctp_src" => SctpSrc,
        "sctp_dst" => SctpDst,
        "icmp_type" | "icmpv4_type" => Icmpv4Type,
        "icmp_code" | "icmpv4_code" => Icmpv4Code,
        "arp_op" => ArpOp,
        "arp_spa" => ArpSpa,
        "arp_tpa" => ArpTpa,
        "arp_sha" => ArpSha,
        "arp_tha" => ArpTha,
        "ipv6_src" => Ipv6Src,
        "ipv6_dst" => Ipv6Dst,
        "ipv6_label" => Ipv6Flabel,
        "icmpv6_type" => Icmpv6Type,
        "icmpv6_code" => Icmpv6Code,
        "nd_target" => Ipv6NdTarget,
        "nd_sll" => Ipv6NdSll,
        "nd_tll" => Ipv6NdTll,
        "mpls_label" => MplsLabel,
        "mpls_tc" => MplsTc,
        "mpls_bos" => MplsBos,
        "pbb_isid" => PbbIsid,
        "tun_id" | "tunnel_id" => TunnelId,
        _ => return None,
    })
}

pub(crate) const RESERVED_PORTS: [(&str, u32); 8] = [
    ("IN_PORT", OFPP_IN_PORT),
    ("TABLE", OFPP_TABLE),
    ("NORMAL", OFPP_NORMAL),
    ("FLOOD", OFPP_FLOOD),
    ("ALL", OFPP_ALL),
    ("CONTROLLER", OFPP_CONTROLLER),
    ("LOCAL", OFPP_LOCAL),
    ("ANY", OFPP_ANY),
];

/// A port number or a reserved port's name (`LOCAL`, `CONTROLLER`, ...).
pub fn parse_port(key: &str, s: &str) -> Result<u32, SyntaxError> {
    if let Some((_, p)) = RESERVED_PORTS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(s))
    {
        return Ok(*p);
    }
    if s.eq_ignore_ascii_case("NONE") {
        return Ok(OFPP_ANY);
    }
    let v = parse_uint(key, s, u128::from(u32::MAX))? as u32;
    if v == 0 || (v > OFPP_MAX && !RESERVED_PORTS.iter().any(|(_, p)| *p == v)) {
        return Err(bad(
            key,
            s,
            "not a port number (1 to 4294967040) or a reserved port",
        ));
    }
    Ok(v)
}

pub fn format_port(p: u32) -> String {
    match RESERVED_PORTS.iter().find(|(_, n)| *n == p) {
        Some((name, _)) => (*name).to_owned(),
        None => p.to_string(),
    }
}

fn parse_mac(key: &str, s: &str) -> Result<u128, SyntaxError> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(bad(key, s, "not a MAC address (xx:xx:xx:xx:xx:xx)"));
    }
    let mut v = 0u128;
    for p in parts {
        let b = u8::from_str_radix(p, 16).map_err(|_| bad(key, s, "not a MAC address"))?;
        v = (v << 8) | u128::from(b);
    }
    Ok(v)
}

fn format_mac(v: u128) -> String {
    let b = (v as u64).to_be_bytes();
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[2], b[3], b[4], b[5], b[6], b[7]
    )
}

/// A value and, when given, its mask. Addresses take `/prefix` as well as
/// `/mask`.
pub(crate) fn parse_value(
    key: &str,
    f: OxmField,
    value: &str,
    mask: Option<&str>,
) -> Result<(u128, Option<u128>), SyntaxError> {
    let full = bits_mask(f);
    let (value, mask) = match mask {
        Some(m) => (value, Some(m)),
        None => match value.split_once('/') {
            Some((v, m)) => (v, Some(m)),
            None => (value, None),
        },
    };
    let one = |s: &str| -> Result<u128, SyntaxError> {
        match kind(f) {
            Kind::Mac => parse_mac(key, s),
            Kind::Ipv4 => s
                .parse::<Ipv4Addr>()
                .map(|a| u128::from(u32::from(a)))
                .map_err(|_| bad(key, s, "not an IPv4 address")),
            Kind::Ipv6 => s
                .parse::<Ipv6Addr>()
                .map(u128::from)
                .map_err(|_| bad(key, s, "not an IPv6 address")),
            Kind::Port => parse_port(key, s).map(u128::from),
            Kind::Decimal | Kind::Hex => parse_uint(key, s, full),
        }
    };
    let v = one(value)?;
    if v & !full != 0 {
        return Err(bad(key, value, "too large for the field"));
    }
    let m = match mask {
        None => None,
        Some(m) => {
            let prefix = matches!(kind(f), Kind::Ipv4 | Kind::Ipv6)
                && !m.contains(['.', ':'])
                && m.parse::<u32>().is_ok();
            let mv = if prefix {
                let bits = f.width() as u32 * 8;
                let n: u32 = m.parse().unwrap_or(0);
                if n > bits {
                    return Err(bad(key, m, format!("prefix longer than {bits} bits")));
                }
                prefix_mask(full, bits, n)
            } else if m == "-1" {
                full
            } else {
                one(m)?
            };
            if !f.maskable() && mv != full && mv != f.full_mask() {
                return Err(SyntaxError::NotAllowed {
                    key: key.to_owned(),
                    why: "this field cannot be masked in OpenFlow 1.3".into(),
                });
            }
            Some(mv)
        }
    };
    match m {
        // ovs-ofctl keeps only the value bits the mask selects.
        Some(m) if m == full || m == f.full_mask() => Ok((v, None)),
        Some(m) => Ok((v & m, Some(m))),
        None => Ok((v, None)),
    }
}

pub fn format_value(f: OxmField, v: u128) -> String {
    match kind(f) {
        Kind::Mac => format_mac(v),
        Kind::Ipv4 => Ipv4Addr::from(v as u32).to_string(),
        Kind::Ipv6 => Ipv6Addr::from(v).to_string(),
        Kind::Port => format_port(v as u32),
        Kind::Decimal => v.to_string(),
        Kind::Hex => format!("{v:#x}"),
    }
}

/// `value` or `value/mask`, with prefixes for CIDR masks as ovs-ofctl prints them.
pub fn format_masked(f: OxmField, v: u128, mask: Option<u128>) -> String {
    let Some(m) = mask else {
        return format_value(f, v);
    };
    if matches!(kind(f), Kind::Ipv4 | Kind::Ipv6) {
        let bits = f.width() as u32 * 8;
        let ones = m.count_ones();
        let full = f.full_mask();
        if ones > 0 && ones < bits && ((full >> (bits - ones)) << (bits - ones)) == m {
            return format!("{}/{}", format_value(f, v), ones);
        }
    }
    if kind(f) == Kind::Decimal {
        // ovs-ofctl prints masked integers (tp_dst=0x1000/0xf000) in hex.
        return format!("{}/{}", crate::nx::c_hex(v), crate::nx::c_hex(m));
    }
    format!("{}/{}", format_value(f, v), format_value(f, m))
}

/// All ones over the bits the field uses (13 for VLAN_VID with its present bit).
pub(crate) fn bits_mask(f: OxmField) -> u128 {
    let bits = f.bits();
    if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

/// The mask of an `n`-bit prefix of a `bits`-bit field whose full mask is `full`
/// (`n <= bits`; `/0` masks nothing).
pub(crate) fn prefix_mask(full: u128, bits: u32, n: u32) -> u128 {
    if n == 0 {
        0
    } else {
        (full >> (bits - n)) << (bits - n)
    }
}
