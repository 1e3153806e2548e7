//! Open vSwitch extension syntax: `resubmit(,1)`, `load:0x5->NXM_NX_REG0[0..7]`,
//! `move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]`, `set_field:0x5->reg0`, `note:01.02`,
//! `ct_clear`, and `reg0=0x5/0xff` in matches, parsed into the same wire actions
//! `ovs-ofctl -O OpenFlow13` sends and printed as it prints them.

use openflow::nx::{header_by_name, header_name, FieldRef, NxAction, NxmField, NxmOxm};
use openflow::{Action, OxmTlv};

use crate::fields::parse_port;
use crate::{bad, parse_uint, SyntaxError};

/// A register match (`reg0=0x5`, `reg0=0x5/0xff`, `xreg1=7`), or `None` if `key` is no
/// register name.
pub(crate) fn parse_register_match(key: &str, val: &str) -> Option<Result<OxmTlv, SyntaxError>> {
    let f = NxmField::from_name(key)?;
    Some(match f {
        NxmField::CtState => ct_state_tlv(key, val),
        NxmField::CtNwSrc | NxmField::CtNwDst | NxmField::TunSrc | NxmField::TunDst => {
            ct_addr_tlv(key, f, val)
        }
        _ => register_tlv(key, f, val),
    })
}

/// `ct_state` flag names by bit (`CS_*`), in the order ovs-ofctl prints them.
const CT_STATE_FLAGS: [(&str, u32); 8] = [
    ("new", 0x01),
    ("est", 0x02),
    ("rel", 0x04),
    ("rpl", 0x08),
    ("inv", 0x10),
    ("trk", 0x20),
    ("snat", 0x40),
    ("dnat", 0x80),
];

/// `ct_state=+trk+est-new` (or a number, `0x21/0x23`).
fn ct_state_tlv(key: &str, val: &str) -> Result<OxmTlv, SyntaxError> {
    if !val.starts_with(['+', '-']) {
        return register_tlv(key, NxmField::CtState, val);
    }
    let (mut v, mut m) = (0u32, 0u32);
    let mut rest = val;
    while let Some(sign) = rest.chars().next() {
        let body = &rest[1..];
        let end = body.find(['+', '-']).unwrap_or(body.len());
        let name = &body[..end];
        let bit = CT_STATE_FLAGS
            .iter()
            .find(|f| f.0 == name)
            .map(|f| f.1)
            .ok_or_else(|| bad(key, val, format!("unknown flag {name:?}")))?;
        match sign {
            '+' => v |= bit,
            '-' => v &= !bit,
            _ => return Err(bad(key, val, "expected +FLAG or -FLAG")),
        }
        m |= bit;
        rest = &body[end..];
    }
    NxmOxm::new(NxmField::CtState, v.into(), Some(m.into()))
        .map(OxmTlv::Nxm)
        .ok_or_else(|| bad(key, val, "bad flags"))
}

/// `ct_nw_src=10.0.0.0/8`, `tun_dst=192.0.2.2` (an address, with a prefix length or a
/// mask).
fn ct_addr_tlv(key: &str, f: NxmField, val: &str) -> Result<OxmTlv, SyntaxError> {
    let ip = |s: &str| -> Result<u128, SyntaxError> {
        s.parse::<std::net::Ipv4Addr>()
            .map(|a| u128::from(u32::from(a)))
            .map_err(|_| bad(key, val, "expected an IPv4 address"))
    };
    let (v, m) = match val.split_once('/') {
        None => (ip(val)?, None),
        Some((a, p)) if !p.contains('.') => {
            let n = parse_uint(key, p, 32)? as u32;
            let m = if n == 0 { 0 } else { u32::MAX << (32 - n) };
            (ip(a)?, Some(u128::from(m)))
        }
        Some((a, p)) => (ip(a)?, Some(ip(p)?)),
    };
    let m = m.filter(|&m| m != 0xffff_ffff);
    NxmOxm::new(f, m.map_or(v, |m| v & m), m)
        .map(OxmTlv::Nxm)
        .ok_or_else(|| bad(key, val, "bad address"))
}

/// A conntrack match field's value as ovs-ofctl prints it.
fn format_ct_match(n: &NxmOxm) -> String {
    let v = n.value();
    let value = match (n.field(), n.mask()) {
        (NxmField::CtState, m) => {
            let m = m.unwrap_or(0xffff_ffff) as u32;
            let mut s = String::new();
            for (name, bit) in CT_STATE_FLAGS {
                if m & bit != 0 {
                    s.push(if v as u32 & bit != 0 { '+' } else { '-' });
                    s.push_str(name);
                }
            }
            let unknown = m & !0xff;
            if unknown != 0 || s.is_empty() {
                hex_masked(v, n.mask())
            } else {
                s
            }
        }
        (NxmField::CtNwSrc | NxmField::CtNwDst, m) => format_ipv4(v, m),
        (NxmField::CtZone | NxmField::CtNwProto, _) => v.to_string(),
        (NxmField::CtTpSrc | NxmField::CtTpDst, None) => v.to_string(),
        (_, m) => hex_masked(v, m),
    };
    format!("{}={value}", n.field().name())
}

/// An IPv4 address field's value (`10.0.0.0/8`, `10.0.0.1/255.0.0.255`).
fn format_ipv4(v: u128, m: Option<u128>) -> String {
    let a = std::net::Ipv4Addr::from(v as u32);
    match m {
        None => a.to_string(),
        Some(m) => {
            let m = m as u32;
            if m.leading_ones() + m.trailing_zeros() == 32 {
                format!("{a}/{}", m.leading_ones())
            } else {
                format!("{a}/{}", std::net::Ipv4Addr::from(m))
            }
        }
    }
}

/// Tunnel fields of a match as ovs-ofctl prints them (after `tun_id`): the outer
/// addresses, then the Geneve options (`tun_metadata0=0x1234`) in index order.
pub(crate) fn format_tunnel_matches(m: &openflow::Match) -> Vec<String> {
    let mut out: Vec<String> = [NxmField::TunSrc, NxmField::TunDst]
        .iter()
        .filter_map(|f| {
            m.fields.iter().find_map(|t| match t {
                OxmTlv::Nxm(n) if n.field() == *f => {
                    Some(format!("{}={}", f.name(), format_ipv4(n.value(), n.mask())))
                }
                _ => None,
            })
        })
        .collect();
    let mut md: Vec<&NxmOxm> = m
        .fields
        .iter()
        .filter_map(|t| match t {
            OxmTlv::Nxm(n) if matches!(n.field(), NxmField::TunMetadata(_)) => Some(n),
            _ => None,
        })
        .collect();
    md.sort_by_key(|n| n.field().field());
    out.extend(
        md.iter()
            .map(|n| format!("{}={}", n.field().name(), hex_masked(n.value(), n.mask()))),
    );
    out
}

/// `conj_id=N` as ovs-ofctl prints it (decimal, before the conntrack fields).
pub(crate) fn format_conj_id(m: &openflow::Match) -> Option<String> {
    m.fields.iter().find_map(|t| match t {
        OxmTlv::Nxm(n) if n.field() == NxmField::ConjId => Some(format!("conj_id={}", n.value())),
        _ => None,
    })
}

/// Conntrack fields of a match as ovs-ofctl prints them (before the protocol shorthand).
pub(crate) fn format_ct_matches(m: &openflow::Match) -> Vec<String> {
    let order = [
        NxmField::CtState,
        NxmField::CtZone,
        NxmField::CtMark,
        NxmField::CtLabel,
        NxmField::CtNwSrc,
        NxmField::CtNwDst,
        NxmField::CtNwProto,
        NxmField::CtTpSrc,
        NxmField::CtTpDst,
    ];
    order
        .iter()
        .filter_map(|f| {
            m.fields.iter().find_map(|t| match t {
                OxmTlv::Nxm(n) if n.field() == *f => Some(format_ct_match(n)),
                _ => None,
            })
        })
        .collect()
}

fn register_tlv(key: &str, f: NxmField, val: &str) -> Result<OxmTlv, SyntaxError> {
    let full = f.full_mask();
    let (v, m) = match val.split_once('/') {
        Some((v, m)) => (parse_uint(key, v, full)?, Some(parse_uint(key, m, full)?)),
        None => (parse_uint(key, val, full)?, None),
    };
    let m = m.filter(|&m| m != full);
    if m.is_some() && !f.maskable() {
        return Err(SyntaxError::NotAllowed {
            key: key.to_owned(),
            why: "this field cannot be masked".into(),
        });
    }
    let v = m.map_or(v, |m| v & m);
    NxmOxm::new(f, v, m)
        .map(OxmTlv::Nxm)
        .ok_or_else(|| bad(key, val, "too large for the field"))
}

/// Register fields of a match as ovs-ofctl prints them (`reg0=0x5,reg3=0x10/0xf0`), in
/// register order.
pub(crate) fn format_register_matches(m: &openflow::Match) -> Vec<String> {
    let mut regs: Vec<&NxmOxm> = m
        .fields
        .iter()
        .filter_map(|f| match f {
            OxmTlv::Nxm(n)
                if !n.field().is_ct()
                    && !n.field().is_tunnel()
                    && !matches!(n.field(), NxmField::TunMetadata(_))
                    && n.field() != NxmField::ConjId =>
            {
                Some(n)
            }
            _ => None,
        })
        .collect();
    regs.sort_by_key(|n| (n.field().class(), n.field().field()));
    regs.iter()
        .map(|n| format!("{}={}", n.field().name(), hex_masked(n.value(), n.mask())))
        .collect()
}

fn hex_masked(v: u128, m: Option<u128>) -> String {
    match m {
        Some(m) => format!("{}/{}", c_hex(v), c_hex(m)),
        None => c_hex(v),
    }
}

/// C's `%#x`, which ovs-ofctl prints with: `0` for zero, `0x..` otherwise.
pub(crate) fn c_hex(v: u128) -> String {
    if v == 0 {
        "0".into()
    } else {
        format!("{v:#x}")
    }
}

/// `NAME[]`, `NAME[n]` or `NAME[a..b]`: the header and the bit range (offset, bits).
fn parse_subfield(key: &str, s: &str) -> Result<(u32, u16, u16), SyntaxError> {
    let (name, range) = match s.split_once('[') {
        Some((n, r)) => (
            n,
            Some(
                r.strip_suffix(']')
                    .ok_or_else(|| bad(key, s, "expected FIELD[] or FIELD[a..b]"))?,
            ),
        ),
        None => (s, None),
    };
    let header = header_by_name(name).ok_or_else(|| SyntaxError::UnknownKey(name.to_owned()))?;
    let bits = FieldRef::from_header(header)
        .map(|r| r.bits())
        .ok_or_else(|| SyntaxError::UnknownKey(name.to_owned()))? as u16;
    let (ofs, n) = match range {
        None | Some("") => (0, bits),
        Some(r) => {
            let (a, b) = match r.split_once("..") {
                Some((a, b)) => (a, b),
                None => (r, r),
            };
            let a = parse_uint(key, a, u128::from(bits))? as u16;
            let b = parse_uint(key, b, u128::from(bits))? as u16;
            if b < a || b >= bits {
                return Err(bad(
                    key,
                    s,
                    format!("bit range past the field's {bits} bits"),
                ));
            }
            (a, b - a + 1)
        }
    };
    Ok((header, ofs, n))
}

fn format_subfield(header: u32, ofs: u16, n: u16) -> String {
    let name = header_name(header).unwrap_or_else(|| format!("{header:#010x}"));
    let bits = FieldRef::from_header(header).map_or(0, |r| r.bits()) as u16;
    if ofs == 0 && n == bits {
        format!("{name}[]")
    } else if n == 1 {
        format!("{name}[{ofs}]")
    } else {
        format!("{name}[{ofs}..{}]", ofs + n - 1)
    }
}

/// An extension action, or `None` if `key` names none.
pub(crate) fn parse_nx_action(
    key: &str,
    val: Option<&str>,
) -> Option<Result<Vec<Action>, SyntaxError>> {
    let r = match key.to_ascii_lowercase().as_str() {
        "resubmit" => parse_resubmit(key, val),
        "load" => parse_load(key, val),
        "move" => parse_move(key, val),
        "note" => parse_note(key, val),
        "ct_clear" => Ok(vec![Action::Nx(NxAction::CtClear)]),
        "conjunction" => parse_conjunction(key, val),
        "ct" => parse_ct(key, val.unwrap_or("")),
        "nat" => parse_nat(key, val.unwrap_or("")).map(|n| vec![Action::Nx(NxAction::Nat(n))]),
        _ => return None,
    };
    Some(r)
}

fn need<'a>(key: &str, v: Option<&'a str>) -> Result<&'a str, SyntaxError> {
    v.filter(|s| !s.is_empty())
        .ok_or_else(|| SyntaxError::MissingValue(key.to_owned()))
}

/// `ct(commit,force,zone=N|zone=FIELD[a..b],table=T,alg=ftp,nat(...),exec(...))`.
fn parse_ct(key: &str, val: &str) -> Result<Vec<Action>, SyntaxError> {
    let (mut flags, mut zone_src, mut zone, mut table, mut alg) =
        (0u16, 0u32, 0u16, openflow::nx::NX_CT_RECIRC_NONE, 0u16);
    let mut actions = Vec::new();
    for tok in crate::split_top(val)? {
        let (k, v) = match tok.split_once('(') {
            Some((k, rest)) if rest.ends_with(')') => (k, Some(&rest[..rest.len() - 1])),
            _ => crate::key_value(tok),
        };
        match (k, v) {
            ("commit", None) => flags |= openflow::nx::NX_CT_F_COMMIT,
            ("force", None) => flags |= openflow::nx::NX_CT_F_FORCE,
            ("table", Some(t)) => table = parse_uint(key, t, 254)? as u8,
            ("zone", Some(z)) if z.starts_with(|c: char| c.is_ascii_digit()) => {
                zone = parse_uint(key, z, 0xffff)? as u16;
            }
            ("zone", Some(z)) => {
                let (h, ofs, n) = parse_subfield(key, z)?;
                if n != 16 {
                    return Err(bad(key, z, "a zone field must be 16 bits"));
                }
                zone_src = h;
                zone = (ofs << 6) | (n - 1);
            }
            ("alg", Some(a)) => {
                alg = match a {
                    "ftp" => 21,
                    "tftp" => 69,
                    n => parse_uint(key, n, 0xffff)? as u16,
                }
            }
            ("nat", v) => actions.push(Action::Nx(NxAction::Nat(parse_nat(key, v.unwrap_or(""))?))),
            ("exec", Some(inner)) => {
                for t in crate::split_top(inner)? {
                    for a in crate::actions::parse_action(t)? {
                        let ok = match &a {
                            Action::SetField(OxmTlv::Nxm(n)) => {
                                matches!(n.field(), NxmField::CtMark | NxmField::CtLabel)
                            }
                            Action::Nx(NxAction::RegLoad { dst, .. }) => {
                                [NxmField::CtMark, NxmField::CtLabel]
                                    .iter()
                                    .any(|f| f.header(false) == *dst)
                            }
                            Action::Nx(NxAction::Nat(_)) => true,
                            _ => false,
                        };
                        if !ok {
                            return Err(bad(key, t, "exec() may only set ct_mark and ct_label"));
                        }
                        actions.push(a);
                    }
                }
            }
            _ => return Err(bad(key, tok, "unknown ct argument")),
        }
    }
    Ok(vec![Action::Nx(NxAction::Ct {
        flags,
        zone_src,
        zone,
        table,
        alg,
        actions,
    })])
}

/// `nat`, `nat(src=IP[-IP][:PORT[-PORT]],persistent,hash,random)`, `dst=` likewise
/// (IPv6 addresses in brackets).
fn parse_nat(key: &str, val: &str) -> Result<openflow::nx::NxNat, SyntaxError> {
    use openflow::nx::*;
    let mut n = NxNat::default();
    for tok in crate::split_top(val)? {
        match crate::key_value(tok) {
            ("persistent", None) => n.flags |= NX_NAT_F_PERSISTENT,
            ("hash", None) => n.flags |= NX_NAT_F_PROTO_HASH,
            ("random", None) => n.flags |= NX_NAT_F_PROTO_RANDOM,
            (dir @ ("src" | "dst"), r) => {
                if n.flags & (NX_NAT_F_SRC | NX_NAT_F_DST) != 0 {
                    return Err(bad(key, tok, "only one of src and dst"));
                }
                n.flags |= if dir == "src" {
                    NX_NAT_F_SRC
                } else {
                    NX_NAT_F_DST
                };
                let Some(r) = r else { continue };
                let (addrs, ports) = if let Some(rest) = r.strip_prefix('[') {
                    // [a]-[b]:p-q
                    let close = rest.rfind(']').ok_or_else(|| bad(key, r, "unclosed ["))?;
                    let a = &r[..close + 2];
                    let p = r[close + 2..].strip_prefix(':');
                    (a, p)
                } else {
                    match r.split_once(':') {
                        Some((a, p)) => (a, Some(p)),
                        None => (r, None),
                    }
                };
                let addr = |s: &str| -> Result<std::net::IpAddr, SyntaxError> {
                    s.trim_matches(['[', ']'])
                        .parse()
                        .map_err(|_| bad(key, s, "not an IP address"))
                };
                let (lo, hi) = match addrs.split_once("]-[") {
                    Some((a, b)) => (a, Some(b)),
                    None if !addrs.starts_with('[') => match addrs.split_once('-') {
                        Some((a, b)) => (a, Some(b)),
                        None => (addrs, None),
                    },
                    None => (addrs, None),
                };
                n.addr_min = Some(addr(lo)?);
                n.addr_max = hi.map(addr).transpose()?;
                if let Some(p) = ports {
                    let (a, b) = match p.split_once('-') {
                        Some((a, b)) => (a, Some(b)),
                        None => (p, None),
                    };
                    n.port_min = Some(parse_uint(key, a, 0xffff)? as u16);
                    n.port_max = b
                        .map(|b| parse_uint(key, b, 0xffff).map(|v| v as u16))
                        .transpose()?;
                }
            }
            _ => return Err(bad(key, tok, "unknown nat argument")),
        }
    }
    Ok(n)
}

fn format_nat(n: &openflow::nx::NxNat) -> String {
    use openflow::nx::*;
    let mut s = String::from("nat");
    if n.flags & (NX_NAT_F_SRC | NX_NAT_F_DST) == 0 {
        return s;
    }
    let ip = |a: std::net::IpAddr| match a {
        std::net::IpAddr::V4(v) => v.to_string(),
        std::net::IpAddr::V6(v) => format!("[{v}]"),
    };
    s.push_str(if n.flags & NX_NAT_F_SRC != 0 {
        "(src="
    } else {
        "(dst="
    });
    if let Some(a) = n.addr_min {
        s.push_str(&ip(a));
        if let Some(b) = n.addr_max.filter(|b| *b != a) {
            s.push('-');
            s.push_str(&ip(b));
        }
        if let Some(p) = n.port_min.filter(|&p| p != 0) {
            s.push_str(&format!(":{p}"));
            if let Some(q) = n.port_max.filter(|&q| q != 0 && q != p) {
                s.push_str(&format!("-{q}"));
            }
        }
    }
    s.push(',');
    for (bit, name) in [
        (NX_NAT_F_PERSISTENT, "persistent"),
        (NX_NAT_F_PROTO_HASH, "hash"),
        (NX_NAT_F_PROTO_RANDOM, "random"),
    ] {
        if n.flags & bit != 0 {
            s.push_str(name);
            s.push(',');
        }
    }
    s.pop();
    s.push(')');
    s
}

/// `resubmit:PORT`, `resubmit(PORT,TABLE)`, `resubmit(,TABLE)`.
/// `conjunction(id,k/n)`, with ovs-ofctl's checks (2 <= n <= 64, 1 <= k <= n).
fn parse_conjunction(key: &str, val: Option<&str>) -> Result<Vec<Action>, SyntaxError> {
    let s = need(key, val)?;
    let (id, kn) = s
        .split_once(',')
        .ok_or_else(|| bad(key, s, "expected conjunction(id,k/n)"))?;
    let (k, n) = kn
        .split_once('/')
        .ok_or_else(|| bad(key, s, "expected conjunction(id,k/n)"))?;
    let id = parse_uint(key, id.trim(), u128::from(u32::MAX))? as u32;
    let k = parse_uint(key, k.trim(), 255)? as u8;
    let n = parse_uint(key, n.trim(), 255)? as u8;
    if !(2..=64).contains(&n) {
        return Err(bad(key, s, "a conjunction has 2 to 64 clauses"));
    }
    if k == 0 || k > n {
        return Err(bad(
            key,
            s,
            "the clause index must be between 1 and the number of clauses",
        ));
    }
    Ok(vec![Action::Nx(NxAction::Conjunction {
        clause: k - 1,
        n_clauses: n,
        id,
    })])
}

fn parse_resubmit(key: &str, val: Option<&str>) -> Result<Vec<Action>, SyntaxError> {
    let s = need(key, val)?;
    let (port, table) = match s.split_once(',') {
        Some((p, t)) => (p.trim(), Some(t.trim())),
        None => (s.trim(), None),
    };
    let in_port = if port.is_empty() {
        openflow::nx::NX_IN_PORT
    } else {
        let p = parse_port(key, port)?;
        if !(0xff00..0xffff_ff00).contains(&p) {
            p as u16
        } else {
            return Err(bad(key, port, "resubmit takes a 16-bit port"));
        }
    };
    let table = match table {
        None | Some("") => 0xff,
        Some(t) => parse_uint(key, t, 254)? as u8,
    };
    if in_port == openflow::nx::NX_IN_PORT && table == 0xff {
        return Err(bad(key, s, "needs an in_port or a table"));
    }
    Ok(vec![Action::Nx(NxAction::Resubmit { in_port, table })])
}

/// `load:VALUE->FIELD[a..b]`.
fn parse_load(key: &str, val: Option<&str>) -> Result<Vec<Action>, SyntaxError> {
    let s = need(key, val)?;
    let (v, dst) = s
        .split_once("->")
        .ok_or_else(|| bad(key, s, "expected VALUE->FIELD[a..b]"))?;
    let (header, ofs, n) = parse_subfield(key, dst)?;
    if n > 64 {
        return Err(bad(key, s, "load writes at most 64 bits"));
    }
    let max = if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
    let value = parse_uint(key, v, u128::from(max))? as u64;
    Ok(vec![Action::Nx(NxAction::RegLoad {
        ofs_nbits: (ofs << 6) | (n - 1),
        dst: header,
        value,
    })])
}

/// `move:SRC[a..b]->DST[c..d]`.
fn parse_move(key: &str, val: Option<&str>) -> Result<Vec<Action>, SyntaxError> {
    let s = need(key, val)?;
    let (src, dst) = s
        .split_once("->")
        .ok_or_else(|| bad(key, s, "expected SRC[a..b]->DST[c..d]"))?;
    let (src, src_ofs, sn) = parse_subfield(key, src)?;
    let (dst, dst_ofs, dn) = parse_subfield(key, dst)?;
    if sn != dn {
        return Err(bad(key, s, "source and destination differ in width"));
    }
    Ok(vec![Action::Nx(NxAction::RegMove {
        n_bits: sn,
        src_ofs,
        dst_ofs,
        src,
        dst,
    })])
}

/// `note:01.02.ab` (hex bytes, dots optional between them). Padded with zeros as
/// ovs-ofctl sends it, so it prints back with the padding.
fn parse_note(key: &str, val: Option<&str>) -> Result<Vec<Action>, SyntaxError> {
    let s = val.unwrap_or("");
    let digits: String = s.chars().filter(|&c| c != '.').collect();
    if !digits.len().is_multiple_of(2) || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad(key, s, "expected hex bytes such as 01.02.ab"));
    }
    let mut bytes: Vec<u8> = (0..digits.len() / 2)
        .map(|i| u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect();
    // The action is 10 bytes of header and subtype, then the note, to a multiple of 8.
    while !(10 + bytes.len()).is_multiple_of(8) {
        bytes.push(0);
    }
    Ok(vec![Action::Nx(NxAction::Note(bytes))])
}

/// `set_field:V[/M]->regN` (and `xregN`): OFPAT_SET_FIELD for a whole field; a masked
/// one becomes one `load` per run of mask bits, as ovs-ofctl sends it.
pub(crate) fn parse_register_set_field(
    key: &str,
    value: &str,
    field: &str,
) -> Option<Result<Vec<Action>, SyntaxError>> {
    let f = NxmField::from_name(field)?;
    if f.is_tunnel() {
        return Some(ct_addr_tlv(key, f, value).map(|tlv| vec![Action::SetField(tlv)]));
    }
    Some(register_tlv(key, f, value).map(|tlv| {
        let OxmTlv::Nxm(n) = tlv else {
            return vec![Action::SetField(tlv)];
        };
        let Some(mut m) = n.mask() else {
            return vec![Action::SetField(tlv)];
        };
        let mut out = Vec::new();
        while m != 0 {
            let ofs = m.trailing_zeros();
            let n_bits = (m >> ofs).trailing_ones();
            out.push(Action::Nx(NxAction::RegLoad {
                ofs_nbits: ((ofs as u16) << 6) | (n_bits as u16 - 1),
                dst: f.header(false),
                value: ((n.value() >> ofs) & ((1u128 << n_bits) - 1)) as u64,
            }));
            m &= !(((1u128 << n_bits) - 1) << ofs);
        }
        out
    }))
}

/// An extension action as ovs-ofctl prints it.
pub(crate) fn format_nx_action(a: &NxAction) -> String {
    match a {
        NxAction::Resubmit { in_port, table } => {
            let port = (*in_port != openflow::nx::NX_IN_PORT).then(|| {
                let p = if *in_port >= 0xff00 {
                    0xffff_0000 | u32::from(*in_port)
                } else {
                    u32::from(*in_port)
                };
                crate::fields::format_port(p)
            });
            match (port, *table) {
                (Some(p), 0xff) => format!("resubmit:{p}"),
                (p, t) => format!(
                    "resubmit({},{})",
                    p.unwrap_or_default(),
                    if t == 0xff {
                        String::new()
                    } else {
                        t.to_string()
                    }
                ),
            }
        }
        NxAction::RegMove {
            n_bits,
            src_ofs,
            dst_ofs,
            src,
            dst,
        } => format!(
            "move:{}->{}",
            format_subfield(*src, *src_ofs, *n_bits),
            format_subfield(*dst, *dst_ofs, *n_bits)
        ),
        NxAction::RegLoad {
            ofs_nbits,
            dst,
            value,
        } => format!(
            "load:{}->{}",
            c_hex(u128::from(*value)),
            format_subfield(
                *dst,
                NxAction::load_ofs(*ofs_nbits),
                NxAction::load_n_bits(*ofs_nbits)
            )
        ),
        NxAction::RegLoad2(tlv) => format!("set_field:{}", format_set_field_tlv(tlv)),
        NxAction::Note(bytes) => {
            let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("note:{}", hex.join("."))
        }
        NxAction::Conjunction {
            clause,
            n_clauses,
            id,
        } => format!("conjunction({id},{}/{n_clauses})", u16::from(*clause) + 1),
        NxAction::CtClear => "ct_clear".into(),
        NxAction::Nat(n) => format_nat(n),
        NxAction::Ct {
            flags,
            zone_src,
            zone,
            table,
            alg,
            actions,
        } => {
            let mut parts: Vec<String> = Vec::new();
            if flags & openflow::nx::NX_CT_F_COMMIT != 0 {
                parts.push("commit".into());
            }
            if flags & openflow::nx::NX_CT_F_FORCE != 0 {
                parts.push("force".into());
            }
            if *table != openflow::nx::NX_CT_RECIRC_NONE {
                parts.push(format!("table={table}"));
            }
            if *zone_src != 0 {
                parts.push(format!(
                    "zone={}",
                    format_subfield(*zone_src, zone >> 6, (zone & 0x3f) + 1)
                ));
            } else if *zone != 0 {
                parts.push(format!("zone={zone}"));
            }
            let mut rest = actions.as_slice();
            if let Some((Action::Nx(NxAction::Nat(n)), tail)) = rest.split_first() {
                parts.push(format_nat(n));
                rest = tail;
            }
            if !rest.is_empty() {
                parts.push(format!("exec({})", crate::actions::format_actions(rest)));
            }
            match alg {
                0 => {}
                21 => parts.push("alg=ftp".into()),
                69 => parts.push("alg=tftp".into()),
                a => parts.push(format!("alg={a}")),
            }
            format!("ct({})", parts.join(","))
        }
    }
}

/// `VALUE[/MASK]->NAME` of a set-field TLV.
pub(crate) fn format_set_field_tlv(tlv: &OxmTlv) -> String {
    match tlv {
        OxmTlv::Basic(b) => format!(
            "{}->{}",
            crate::fields::format_masked(b.field(), b.value(), b.mask()),
            crate::fields::oxm_name(b.field())
        ),
        OxmTlv::Nxm(n) if n.field().is_tunnel() => {
            format!("{}->{}", format_ipv4(n.value(), n.mask()), n.field().name())
        }
        OxmTlv::Nxm(n) => format!("{}->{}", hex_masked(n.value(), n.mask()), n.field().name()),
        OxmTlv::Experimenter(_) => "experimenter".into(),
    }
}
