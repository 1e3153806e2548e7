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
    Some(register_tlv(key, f, val))
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
            OxmTlv::Nxm(n) => Some(n),
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
        _ => return None,
    };
    Some(r)
}

fn need<'a>(key: &str, v: Option<&'a str>) -> Result<&'a str, SyntaxError> {
    v.filter(|s| !s.is_empty())
        .ok_or_else(|| SyntaxError::MissingValue(key.to_owned()))
}

/// `resubmit:PORT`, `resubmit(PORT,TABLE)`, `resubmit(,TABLE)`.
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
        if p >= 0xffff_ff00 {
            p as u16
        } else if p < 0xff00 {
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
    if digits.len() % 2 != 0 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad(key, s, "expected hex bytes such as 01.02.ab"));
    }
    let mut bytes: Vec<u8> = (0..digits.len() / 2)
        .map(|i| u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect();
    // The action is 10 bytes of header and subtype, then the note, to a multiple of 8.
    while (10 + bytes.len()) % 8 != 0 {
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
        OxmTlv::Nxm(n) => format!("{}->{}", hex_masked(n.value(), n.mask()), n.field().name()),
        OxmTlv::Experimenter(_) => "experimenter".into(),
    }
}
