//! The single-pass path of [`crate::parse_flow_mod`] for flow additions.
//!
//! A gRPC batch of 100k flows is parsed before anything else happens to it, so the
//! parser's cost per flow is most of what the batch costs the server. This path reads
//! the text once as bytes, resolves keys and action names by `match` on borrowed
//! slices, parses numbers, MACs and IPv4 addresses from bytes, and allocates only the
//! vectors the `FlowMod` keeps (its match fields, its instructions, its apply-actions).
//!
//! It covers the fields and actions that flow tables of a virtual-network profile or a
//! classifier use, and returns `None` for anything else: other keys and actions,
//! parentheses, tabs, non-ASCII bytes, numbers in forms it does not read
//! (`+1`, leading zeros in an address), and every text the general parser refuses. The
//! caller then runs the general parser, which gives the result or the error. So a
//! `Some` here is always what the general parser returns for the same text (a
//! differential test in this module checks it over generated texts, invalid ones
//! included), and errors are only ever reported by the general parser.

use openflow::consts::{FlowModFlags, OFPCML_NO_BUFFER, OFPP_CONTROLLER, OFPP_MAX, OFPTT_ALL};
use openflow::instruction::Instruction;
use openflow::messages::FlowMod;
use openflow::oxm::{BasicOxm, OxmTlv};
use openflow::{Action, Match, OxmField};

use crate::actions::ActionContext;
use crate::fields::{bits_mask, field_by_name, kind, Kind, RESERVED_PORTS};
use crate::flow::{check_prerequisites, DEFAULT_PRIORITY, DUMP_ONLY, SHORTHANDS};

/// Most match fields one text may set on this path; more go to the general parser.
const MAX_FIELDS: usize = 12;

const ONES: u64 = 0x0101_0101_0101_0101;

/// A bit at the top of each zero byte of `x` (and maybe above the first one: only the
/// lowest is exact, and only the lowest is read).
fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & (ONES << 7)
}

fn is_separator(c: u8) -> bool {
    c == b',' || c == b' '
}

/// The eight bytes of `b` from `i`, as a little-endian word, if there are eight.
fn word_at(b: &[u8], i: usize) -> Option<u64> {
    let w: [u8; 8] = b.get(i..i + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(w))
}

/// A bit at the top of each byte of `w` that is a comma or a space (exact for the lowest).
fn separators(w: u64) -> u64 {
    zero_bytes(w ^ (ONES * u64::from(b','))) | zero_bytes(w ^ (ONES * u64::from(b' ')))
}

/// The same for `=` and `:`, which end a key.
fn key_ends(w: u64) -> u64 {
    zero_bytes(w ^ (ONES * u64::from(b'='))) | zero_bytes(w ^ (ONES * u64::from(b':')))
}

/// The first comma or space in `b` from `i`, or `b`'s length: eight bytes at a time,
/// then byte by byte.
fn separator_from(b: &[u8], mut i: usize) -> usize {
    while let Some(w) = word_at(b, i) {
        let h = separators(w);
        if h != 0 {
            return i + (h.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && !is_separator(b[i]) {
        i += 1;
    }
    i
}

/// The first comma, space, `=` or `:` in `b` from `i`, or `b`'s length.
fn key_end_from(b: &[u8], mut i: usize) -> usize {
    while let Some(w) = word_at(b, i) {
        let h = separators(w) | key_ends(w);
        if h != 0 {
            return i + (h.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && !matches!(b[i], b',' | b' ' | b'=' | b':') {
        i += 1;
    }
    i
}

/// One piece of a text: `key=value`, `key:value` (split at the first `=` or `:`, as
/// `key_value` splits) or a bare `key`.
#[derive(Clone, Copy)]
struct Token<'a> {
    all: &'a str,
    key: &'a str,
    val: Option<&'a str>,
}

/// The non-empty pieces of `s` between commas and spaces. That is how `split_top` splits
/// a text without parentheses, tabs or newlines; a text with any of those has them in
/// some piece, where no parser here accepts them (values this path ignores are checked
/// with [`plain`]), so it goes to the general parser.
struct Tokens<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> Tokens<'a> {
    fn new(s: &'a str) -> Self {
        Tokens { s, at: 0 }
    }

    fn next(&mut self) -> Option<Token<'a>> {
        let b = self.s.as_bytes();
        let mut i = self.at;
        while i < b.len() && is_separator(b[i]) {
            i += 1;
        }
        if i == b.len() {
            self.at = i;
            return None;
        }
        // All the ends below are at ASCII bytes or the text's end: character boundaries.
        let k = key_end_from(b, i);
        if k < b.len() && matches!(b[k], b'=' | b':') {
            let end = separator_from(b, k + 1);
            self.at = end;
            Some(Token {
                all: &self.s[i..end],
                key: &self.s[i..k],
                val: Some(&self.s[k + 1..end]),
            })
        } else {
            self.at = k;
            Some(Token {
                all: &self.s[i..k],
                key: &self.s[i..k],
                val: None,
            })
        }
    }
}

/// The flows of an add-flows file, each with its line number from 1: the lines trimmed,
/// blank ones and `#` comments skipped. What
/// `text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())).filter(..)` gives (a test
/// below checks it), the newlines found eight bytes at a time and the common line (no
/// whitespace or non-ASCII byte at either end) taken as it is: the general iterators
/// cost about 400 instructions a line, as much as converting it.
pub struct FlowLines<'a> {
    text: &'a str,
    at: usize,
    line: usize,
}

impl<'a> FlowLines<'a> {
    pub fn new(text: &'a str) -> Self {
        FlowLines {
            text,
            at: 0,
            line: 0,
        }
    }
}

/// `s.trim()`, without looking for whitespace where `s` starts and ends with a visible
/// ASCII character (a flow's line, trimmed once already, always does).
#[inline(always)]
fn trim(s: &str) -> &str {
    let plain = |c: Option<&u8>| c.is_some_and(|&c| c > b' ' && c < 0x80);
    if plain(s.as_bytes().first()) && plain(s.as_bytes().last()) {
        s
    } else {
        s.trim()
    }
}

/// The first newline in `b` from `i`, or `b`'s length.
fn newline_from(b: &[u8], mut i: usize) -> usize {
    while let Some(w) = word_at(b, i) {
        let h = zero_bytes(w ^ (ONES * u64::from(b'\n')));
        if h != 0 {
            return i + (h.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && b[i] != b'\n' {
        i += 1;
    }
    i
}

impl<'a> Iterator for FlowLines<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<(usize, &'a str)> {
        let b = self.text.as_bytes();
        while self.at < b.len() {
            let start = self.at;
            // At an ASCII byte or the end: character boundaries.
            let end = newline_from(b, start);
            self.at = end + 1;
            self.line += 1;
            // (A `\r` before the newline is whitespace: `trim` takes it off where `lines`
            // leaves it.)
            let l = trim(&self.text[start..end]);
            if !l.is_empty() && !l.starts_with('#') {
                return Some((self.line, l));
            }
        }
        None
    }
}

/// A value that means nothing (a flag's, a dump's counter, `drop:x`) and holds nothing
/// the general parser splits on or reads specially (parentheses, tabs, `=`).
fn plain(v: Option<&str>) -> bool {
    v.is_none_or(|v| {
        v.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
    })
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decimal or `0x` hexadecimal up to 64 bits, no larger than `max` (a subset of what
/// `parse_uint` reads, with the same value).
fn uint(s: &str, max: u128) -> Option<u128> {
    let b = s.as_bytes();
    let v = if b.len() > 2 && b[0] == b'0' && (b[1] | 0x20) == b'x' {
        let h = &b[2..];
        if h.len() > 16 {
            return None;
        }
        let mut v = 0u64;
        for &c in h {
            v = (v << 4) | u64::from(hex_digit(c)?);
        }
        v
    } else {
        if b.is_empty() || b.len() > 19 {
            return None;
        }
        let mut v = 0u64;
        for &c in b {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            v = v * 10 + u64::from(d);
        }
        v
    };
    let v = u128::from(v);
    (v <= max).then_some(v)
}

/// A non-empty value (as `need`).
fn need(v: Option<&str>) -> Option<&str> {
    v.filter(|s| !s.is_empty())
}

fn num(v: Option<&str>, max: u128) -> Option<u128> {
    uint(need(v)?, max)
}

/// `xx:xx:xx:xx:xx:xx` with one or two hex digits per byte.
fn mac(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut v = 0u64;
    for n in 0..6 {
        if n > 0 {
            if b.get(i) != Some(&b':') {
                return None;
            }
            i += 1;
        }
        let mut byte = hex_digit(*b.get(i)?)?;
        i += 1;
        if let Some(lo) = b.get(i).and_then(|&c| hex_digit(c)) {
            byte = (byte << 4) | lo;
            i += 1;
        }
        v = (v << 8) | u64::from(byte);
    }
    (i == b.len()).then_some(u128::from(v))
}

/// Dotted-quad IPv4, octets 0 to 255 without leading zeros.
fn ipv4(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut v = 0u32;
    for n in 0..4 {
        if n > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let start = i;
        let mut octet = 0u32;
        while i < b.len() && b[i].is_ascii_digit() && i - start < 3 {
            octet = octet * 10 + u32::from(b[i] - b'0');
            i += 1;
        }
        if i == start || octet > 255 || (i - start > 1 && b[start] == b'0') {
            return None;
        }
        v = (v << 8) | octet;
    }
    (i == b.len()).then_some(u128::from(v))
}

/// A port number or a reserved port's name (as `parse_port`, for what it accepts).
fn port(s: &str) -> Option<u32> {
    if s.as_bytes().first()?.is_ascii_digit() {
        let v = uint(s, u128::from(u32::MAX))? as u32;
        if v == 0 || (v > OFPP_MAX && !RESERVED_PORTS.iter().any(|(_, p)| *p == v)) {
            return None;
        }
        return Some(v);
    }
    if let Some((_, p)) = RESERVED_PORTS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(s))
    {
        return Some(*p);
    }
    s.eq_ignore_ascii_case("NONE")
        .then_some(openflow::consts::OFPP_ANY)
}

/// `xx:xx:xx:xx:xx:xx` with exactly two hex digits per byte (the form flow files and
/// dumps write), from a table: what [`mac`] returns for these 17 bytes.
fn mac17(b: &[u8]) -> Option<u128> {
    let b: &[u8; 17] = b.try_into().ok()?;
    let mut v = 0u64;
    let mut bad = 0u8;
    for n in 0..6 {
        let (hi, lo) = (HEX[usize::from(b[3 * n])], HEX[usize::from(b[3 * n + 1])]);
        bad |= hi | lo;
        v = (v << 8) | u64::from(hi << 4 | (lo & 0xf));
    }
    let colons = [b[2], b[5], b[8], b[11], b[14]] == [b':'; 5];
    (bad & 0xf0 == 0 && colons).then_some(u128::from(v))
}

/// Each byte's value as a hexadecimal digit, 0xff for a byte that is not one.
const HEX: [u8; 256] = {
    let mut t = [0xff; 256];
    let mut c = 0;
    while c < 10 {
        t[b'0' as usize + c] = c as u8;
        c += 1;
    }
    let mut c = 0;
    while c < 6 {
        t[b'a' as usize + c] = 10 + c as u8;
        t[b'A' as usize + c] = 10 + c as u8;
        c += 1;
    }
    t
};

/// A field's value and optional mask, as `parse_value` reads them (`None` where that
/// fails or where this path does not read the syntax).
fn value(f: OxmField, s: &str) -> Option<(u128, Option<u128>)> {
    let full = bits_mask(f);
    let k = kind(f);
    // A whole MAC without a mask, as most of a classifier's or a switch table's flows
    // have: 17 bytes read once (a '/' would not be a hex digit or a colon).
    if k == Kind::Mac {
        if let Some(v) = mac17(s.as_bytes()) {
            return Some((v, None));
        }
    }
    let (value, mask) = match s.bytes().position(|c| c == b'/') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let one = |s: &str| match k {
        Kind::Mac => mac(s),
        Kind::Ipv4 => ipv4(s),
        Kind::Port => port(s).map(u128::from),
        Kind::Decimal | Kind::Hex => uint(s, full),
        Kind::Ipv6 => None,
    };
    let v = one(value)?;
    if v & !full != 0 {
        return None;
    }
    let Some(m) = mask else {
        return Some((v, None));
    };
    let mv = if matches!(k, Kind::Ipv4 | Kind::Ipv6)
        && !m.is_empty()
        && m.bytes().all(|c| c.is_ascii_digit())
    {
        if m.len() > 9 {
            return None;
        }
        let bits = f.width() as u32 * 8;
        let n = uint(m, u128::from(u32::MAX))? as u32;
        if n > bits {
            return None;
        }
        crate::fields::prefix_mask(full, bits, n)
    } else if m == "-1" {
        full
    } else {
        one(m)?
    };
    if !f.maskable() && mv != full && mv != f.full_mask() {
        return None;
    }
    if mv == full || mv == f.full_mask() {
        Some((v, None))
    } else {
        Some((v & mv, Some(mv)))
    }
}

/// A match key as the general parser's `build_match` treats it.
#[derive(Clone, Copy)]
enum MatchKey {
    /// `ip`, `tcp`, ...: an ethertype and maybe an IP protocol.
    Shorthand(u16, Option<u8>),
    EthType,
    IpProto,
    /// `nw_src`/`nw_dst`: ARP addresses on ARP.
    NwSrc,
    NwDst,
    /// `tp_src`/`tp_dst`: the port of the match's transport protocol.
    TpSrc,
    TpDst,
    DlVlan,
    Field(OxmField),
}

fn match_key(key: &str) -> Option<MatchKey> {
    use OxmField::*;
    Some(MatchKey::Field(match key {
        "in_port" => InPort,
        "dl_src" | "eth_src" => EthSrc,
        "dl_dst" | "eth_dst" => EthDst,
        "metadata" => Metadata,
        "ip_src" | "ipv4_src" => Ipv4Src,
        "ip_dst" | "ipv4_dst" => Ipv4Dst,
        "tcp_src" => TcpSrc,
        "tcp_dst" => TcpDst,
        "udp_src" => UdpSrc,
        "udp_dst" => UdpDst,
        "sctp_src" => SctpSrc,
        "sctp_dst" => SctpDst,
        "vlan_vid" => VlanVid,
        "dl_vlan_pcp" | "vlan_pcp" => VlanPcp,
        "ip_dscp" => IpDscp,
        "nw_ecn" | "ip_ecn" => IpEcn,
        "tun_id" | "tunnel_id" => TunnelId,
        "nw_src" => return Some(MatchKey::NwSrc),
        "nw_dst" => return Some(MatchKey::NwDst),
        "tp_src" => return Some(MatchKey::TpSrc),
        "tp_dst" => return Some(MatchKey::TpDst),
        "dl_vlan" => return Some(MatchKey::DlVlan),
        "dl_type" | "eth_type" => return Some(MatchKey::EthType),
        "nw_proto" | "ip_proto" => return Some(MatchKey::IpProto),
        _ => {
            let (_, t, p) = SHORTHANDS.iter().find(|s| s.0 == key)?;
            return Some(MatchKey::Shorthand(*t, *p));
        }
    }))
}

/// The transport port field of `ip_proto`, as the general parser picks it.
fn transport(ip_proto: Option<u8>, src: bool) -> Option<OxmField> {
    use OxmField::*;
    Some(match (ip_proto?, src) {
        (6, true) => TcpSrc,
        (6, false) => TcpDst,
        (17, true) => UdpSrc,
        (17, false) => UdpDst,
        (132, true) => SctpSrc,
        (132, false) => SctpDst,
        _ => return None,
    })
}

/// The fields a match sets, each once (a later one replaces an earlier one).
struct Fields {
    set: [(OxmField, u128, Option<u128>); MAX_FIELDS],
    len: usize,
}

impl Fields {
    fn set(&mut self, f: OxmField, v: u128, m: Option<u128>) -> Option<()> {
        let len = self.len;
        if let Some(e) = self.set[..len].iter_mut().find(|e| e.0 == f) {
            *e = (f, v, m);
            return Some(());
        }
        *self.set.get_mut(len)? = (f, v, m);
        self.len += 1;
        Some(())
    }

    /// Into `tlvs` (empty; sized exactly if it has no room), in field-number order, as
    /// the general parser sorts them.
    fn sorted_match(&mut self, tlvs: &mut Vec<OxmTlv>) -> Option<()> {
        let set = &mut self.set[..self.len];
        set.sort_unstable_by_key(|e| e.0.raw());
        tlvs.reserve_exact(set.len());
        for &(f, v, m) in set.iter() {
            let b = match m {
                Some(m) => BasicOxm::masked(f, v, m),
                None => BasicOxm::new(f, v),
            }?;
            tlvs.push(OxmTlv::Basic(b));
        }
        Some(())
    }
}

/// The match of the head's match keys, as `build_match` builds it, into `m` (empty).
fn build_match(keys: &[(MatchKey, &str)], m: &mut Match) -> Option<()> {
    let mut eth_type = None;
    let mut ip_proto = None;
    for &(k, val) in keys {
        match k {
            MatchKey::Shorthand(t, p) => {
                if !val.is_empty() {
                    return None;
                }
                eth_type = Some(t);
                if p.is_some() {
                    ip_proto = p;
                }
            }
            MatchKey::EthType => eth_type = Some(uint(val, 0xffff)? as u16),
            MatchKey::IpProto if eth_type != Some(0x0806) => ip_proto = Some(uint(val, 255)? as u8),
            _ => {}
        }
    }
    let mut fields = Fields {
        set: [(OxmField::InPort, 0, None); MAX_FIELDS],
        len: 0,
    };
    if let Some(t) = eth_type {
        fields.set(OxmField::EthType, u128::from(t), None)?;
    }
    let arp = matches!(eth_type, Some(0x0806) | Some(0x8035));
    if let Some(p) = ip_proto {
        if !arp {
            fields.set(OxmField::IpProto, u128::from(p), None)?;
        }
    }
    for &(k, val) in keys {
        let f = match k {
            MatchKey::Shorthand(..) | MatchKey::EthType => continue,
            // On ARP, nw_proto is the ARP opcode: the general parser's case.
            MatchKey::IpProto if !arp => continue,
            _ if val.is_empty() => return None,
            MatchKey::DlVlan => {
                let vid = uint(val, 0xffff)?;
                let v = match vid {
                    0xffff => 0,
                    0..=4095 => vid | u128::from(openflow::consts::OFPVID_PRESENT),
                    _ => return None,
                };
                fields.set(OxmField::VlanVid, v, None)?;
                continue;
            }
            MatchKey::NwSrc if !arp => OxmField::Ipv4Src,
            MatchKey::NwDst if !arp => OxmField::Ipv4Dst,
            MatchKey::TpSrc => transport(ip_proto, true)?,
            MatchKey::TpDst => transport(ip_proto, false)?,
            MatchKey::Field(f) => f,
            MatchKey::IpProto | MatchKey::NwSrc | MatchKey::NwDst => return None,
        };
        let (v, m) = value(f, val)?;
        fields.set(f, v, m)?;
    }
    fields.sorted_match(&mut m.fields)?;
    check_prerequisites(m).ok()
}

/// `key` in ASCII lower case in `buf`, or `None` if it is longer than `buf`.
fn lower<'b>(key: &str, buf: &'b mut [u8; 16]) -> Option<&'b [u8]> {
    let out = buf.get_mut(..key.len())?;
    for (o, c) in out.iter_mut().zip(key.bytes()) {
        *o = c.to_ascii_lowercase();
    }
    Some(out)
}

/// A `set_field` of a basic field (no mask), as the general parser's `set_field`.
fn set_field(f: OxmField, value_text: &str) -> Option<Action> {
    let (v, m) = value(f, value_text)?;
    if m.is_some() {
        return None;
    }
    Some(Action::SetField(OxmTlv::Basic(BasicOxm::new(f, v)?)))
}

/// One action, as `parse_action_in` reads it, pushed onto `out`.
fn action(
    key: &str,
    lower: &[u8],
    val: Option<&str>,
    ctx: ActionContext,
    out: &mut Vec<Action>,
) -> Option<()> {
    // A bare port: `2`, `NORMAL`, `LOCAL`.
    if val.is_none() && lower != b"controller" && lower != b"drop" {
        if let Some(p) = port(key) {
            out.push(Action::output(p));
            return Some(());
        }
    }
    let push_vlan = |out: &mut Vec<Action>| {
        if !ctx.vlan_tagged {
            out.push(Action::PushVlan(0x8100));
        }
    };
    let a = match lower {
        b"output" => Action::output(port(need(val)?)?),
        b"controller" => {
            let max_len = match val {
                None => OFPCML_NO_BUFFER,
                Some(v) => uint(v.strip_prefix("max_len=").unwrap_or(v), 0xffff)? as u16,
            };
            Action::Output {
                port: OFPP_CONTROLLER,
                max_len,
            }
        }
        b"drop" => return plain(val).then_some(()),
        b"group" => Action::Group(num(val, u128::from(u32::MAX))? as u32),
        b"set_queue" => Action::SetQueue(num(val, u128::from(u32::MAX))? as u32),
        b"push_vlan" => Action::PushVlan(num(val, 0xffff)? as u16),
        b"pop_vlan" | b"strip_vlan" if plain(val) => Action::PopVlan,
        b"dec_ttl" if plain(val) => Action::DecNwTtl,
        b"mod_nw_ttl" | b"set_nw_ttl" => Action::SetNwTtl(num(val, 255)? as u8),
        b"copy_ttl_out" if plain(val) => Action::CopyTtlOut,
        b"copy_ttl_in" if plain(val) => Action::CopyTtlIn,
        b"set_field" => {
            let (value_text, field) = need(val)?.rsplit_once("->")?;
            if openflow::nx::NxmField::from_name(field).is_some() {
                return None;
            }
            set_field(field_by_name(field)?, value_text)?
        }
        b"mod_vlan_vid" => {
            let vid = num(val, 4095)?;
            let set = BasicOxm::new(
                OxmField::VlanVid,
                vid | u128::from(openflow::consts::OFPVID_PRESENT),
            )?;
            push_vlan(out);
            Action::SetField(OxmTlv::Basic(set))
        }
        b"mod_vlan_pcp" => {
            let set = set_field(OxmField::VlanPcp, need(val)?)?;
            push_vlan(out);
            set
        }
        b"mod_dl_src" => set_field(OxmField::EthSrc, need(val)?)?,
        b"mod_dl_dst" => set_field(OxmField::EthDst, need(val)?)?,
        b"mod_nw_src" => set_field(OxmField::Ipv4Src, need(val)?)?,
        b"mod_nw_dst" => set_field(OxmField::Ipv4Dst, need(val)?)?,
        b"mod_nw_tos" => {
            let tos = num(val, 255)?;
            Action::SetField(OxmTlv::Basic(BasicOxm::new(OxmField::IpDscp, tos >> 2)?))
        }
        b"mod_nw_ecn" => set_field(OxmField::IpEcn, need(val)?)?,
        b"mod_tp_src" => set_field(transport(ctx.ip_proto, true)?, need(val)?)?,
        b"mod_tp_dst" => set_field(transport(ctx.ip_proto, false)?, need(val)?)?,
        // The Open vSwitch extensions and everything else: the general parser.
        _ => return None,
    };
    out.push(a);
    Some(())
}

/// The `actions=` part, as `parse_instructions` reads it, into `out` (empty), with
/// `apply` (empty) as the apply-actions' list.
fn instructions(
    s: &str,
    ctx: ActionContext,
    mut apply: Vec<Action>,
    out: &mut Vec<Instruction>,
) -> Option<()> {
    let mut meter = None;
    let mut clear = false;
    let mut metadata = None;
    let mut goto = None;
    let mut tokens = Tokens::new(s);
    while let Some(Token { key, val, .. }) = tokens.next() {
        let mut buf = [0u8; 16];
        let lower = lower(key, &mut buf)?;
        match lower {
            b"meter" => meter = Some(num(val, u128::from(u32::MAX))? as u32),
            b"goto_table" => goto = Some(num(val, 254)? as u8),
            b"clear_actions" if plain(val) => clear = true,
            b"write_metadata" => {
                let v = need(val)?;
                let (value, mask) = match v.split_once('/') {
                    Some((a, b)) => (a, Some(b)),
                    None => (v, None),
                };
                let value = uint(value, u128::from(u64::MAX))? as u64;
                let mask = match mask {
                    Some(m) => uint(m, u128::from(u64::MAX))? as u64,
                    None => u64::MAX,
                };
                metadata = Some((value, mask));
            }
            _ => action(key, lower, val, ctx, &mut apply)?,
        }
    }
    crate::actions::InstructionParts {
        meter,
        apply,
        clear,
        write: None,
        metadata,
        goto,
    }
    .into_instructions_in(out);
    Some(())
}

/// `key` at `at` in `b`, followed by one to `digits` decimal digits (a number no larger
/// than `max`) and a comma: the number and where the comma ends.
#[inline(always)]
fn head_number(b: &[u8], at: usize, key: &[u8], digits: usize, max: u32) -> Option<(u32, usize)> {
    let mut i = at + key.len();
    if b.get(at..i)? != key {
        return None;
    }
    let mut v = 0u32;
    let start = i;
    while let Some(d) = b.get(i).map(|c| c.wrapping_sub(b'0')).filter(|&d| d <= 9) {
        v = v * 10 + u32::from(d);
        i += 1;
        if i - start > digits {
            return None;
        }
    }
    (i > start && v <= max && b.get(i) == Some(&b',')).then_some((v, i + 1))
}

/// A flow addition, or `None` for the general parser to read (see the module's doc).
pub(crate) fn parse_add(text: &str) -> Option<FlowMod> {
    let mut fm = FlowMod::add(0, DEFAULT_PRIORITY, Match::any(), Vec::new());
    parse_add_in(text, &mut fm, Vec::new())?;
    Some(fm)
}

/// [`parse_add`] into `fm`, reusing its vectors (the match's fields, the instructions and
/// the apply-actions' list): a batch parsed one flow at a time into one `FlowMod`
/// allocates nothing for the flows this path reads. `false`: the general parser's text,
/// and `fm` holds nothing meaningful.
pub(crate) fn parse_add_into(text: &str, fm: &mut FlowMod) -> bool {
    let mut fields = std::mem::take(&mut fm.match_.fields);
    fields.clear();
    let mut instructions = std::mem::take(&mut fm.instructions);
    let mut apply = instructions
        .drain(..)
        .find_map(|i| match i {
            Instruction::ApplyActions(list) => Some(list),
            _ => None,
        })
        .unwrap_or_default();
    apply.clear();
    instructions.clear();
    *fm = FlowMod::add(0, DEFAULT_PRIORITY, Match { fields }, instructions);
    parse_add_in(text, fm, apply).is_some()
}

/// [`parse_add`] into `fm` (as `FlowMod::add` makes it, its vectors empty), with `apply`
/// (empty) for the apply-actions.
fn parse_add_in(text: &str, fm: &mut FlowMod, apply: Vec<Action>) -> Option<()> {
    let text = trim(text);
    let mut keys = [(MatchKey::EthType, ""); MAX_FIELDS];
    let mut n_keys = 0;
    let mut tokens = Tokens::new(text);
    // Most files start every flow with `table=N,priority=N,`: read here without the
    // tokens and the key dispatch below (what those would read: decimal digits, then a
    // comma). Anything else, a larger number included, is left to them.
    let b = text.as_bytes();
    if let Some((t, at)) = head_number(b, 0, b"table=", 3, 254) {
        fm.table_id = t as u8;
        tokens.at = at;
        if let Some((p, at)) = head_number(b, at, b"priority=", 5, 0xffff) {
            fm.priority = p as u16;
            tokens.at = at;
        }
    }
    // The general parser splits at the first `actions=` that starts a token or follows
    // `apply_`. Here, that is the first token starting with either: a value read below
    // never holds `=` (those that would are refused), so no `apply_actions=` can hide
    // inside an earlier token.
    let actions = loop {
        let Token { all, key, val } = tokens.next()?;
        if let Some(rest) = all.strip_prefix("actions=") {
            break &text[tokens.at - rest.len()..];
        }
        if let Some(rest) = all.strip_prefix("apply_actions=") {
            break &text[tokens.at - rest.len()..];
        }
        let flag = match key {
            "table" => {
                let v = need(val)?;
                fm.table_id = if v.eq_ignore_ascii_case("all") {
                    OFPTT_ALL
                } else {
                    uint(v, 254)? as u8
                };
                continue;
            }
            "priority" => {
                fm.priority = num(val, 0xffff)? as u16;
                continue;
            }
            "idle_timeout" => {
                fm.idle_timeout = num(val, 0xffff)? as u16;
                continue;
            }
            "hard_timeout" => {
                fm.hard_timeout = num(val, 0xffff)? as u16;
                continue;
            }
            // A cookie mask is refused on additions: the general parser says so.
            "cookie" => {
                fm.cookie = num(val, u128::from(u64::MAX))? as u64;
                continue;
            }
            "send_flow_rem" => FlowModFlags::SEND_FLOW_REM,
            "check_overlap" => FlowModFlags::CHECK_OVERLAP,
            "reset_counts" => FlowModFlags::RESET_COUNTS,
            "no_packet_counts" => FlowModFlags::NO_PKT_COUNTS,
            "no_byte_counts" => FlowModFlags::NO_BYT_COUNTS,
            k if DUMP_ONLY.contains(&k) => FlowModFlags::empty(),
            k => {
                *keys.get_mut(n_keys)? = (match_key(k)?, val.unwrap_or(""));
                n_keys += 1;
                continue;
            }
        };
        // A value that means nothing: refused unless plain, as it could hide an
        // `apply_actions=` or a separator.
        if !plain(val) {
            return None;
        }
        fm.flags |= flag;
    };
    build_match(&keys[..n_keys], &mut fm.match_)?;
    instructions(
        actions,
        ActionContext::of(&fm.match_),
        apply,
        &mut fm.instructions,
    )
}

#[cfg(test)]
mod tests {
    use openflow::messages::{FlowMod, FlowModCommand};
    use proptest::prelude::*;

    use super::parse_add;
    use crate::flow::parse_flow_mod_general;

    /// Both paths on one text: where this path answers, the general parser answers the
    /// same. Returns whether this path answered.
    fn same(text: &str) -> bool {
        let general = parse_flow_mod_general(text, FlowModCommand::Add);
        match parse_add(text) {
            Some(fm) => {
                assert_eq!(Ok(&fm), general.as_ref(), "{text:?}");
                true
            }
            None => false,
        }
    }

    /// What perf/run.sh's flowmod scenario and the virtual-network profile load: each
    /// must take this path, or the batch is slow again without a test saying so.
    const COMMON: &[&str] = &[
        "table=0,priority=1000,tcp,nw_dst=169.254.169.254,tp_dst=80,actions=mod_dl_dst:02:fe:00:00:00:01,mod_nw_dst:10.254.0.1,mod_tp_dst:8775,output:2",
        "table=0,priority=100,in_port=1,dl_src=02:00:00:00:00:00,actions=goto_table:1",
        "table=0,priority=0,actions=drop",
        "table=1,priority=100,dl_dst=02:00:00:00:c3:4f,actions=output:2",
        "table=1,priority=0,actions=drop",
        "priority=10,ip,in_port=3,dl_src=fa:16:3e:00:00:01,nw_src=10.0.0.5,actions=write_metadata:0x5/0xffffffff,goto_table:2",
        "table=2,priority=50,metadata=0x5/0xffffffff,dl_dst=ff:ff:ff:ff:ff:ff,actions=output:1,output:3,LOCAL",
        "table=3 priority=7 udp tp_dst=67 actions=CONTROLLER:128",
        "table=0,cookie=0x1234,idle_timeout=300,hard_timeout=0,send_flow_rem,tcp,nw_src=10.0.0.0/8,tcp_dst=0x1000/0xf000,actions=set_field:10.0.0.1->ip_dst,NORMAL",
        "table=4,dl_vlan=10,actions=strip_vlan,mod_vlan_vid:20,push_vlan:0x88a8,set_queue:1,group:7,dec_ttl,controller",
        "table=5,arp,actions=mod_vlan_pcp:3,mod_nw_tos:16,meter:2,clear_actions,output:IN_PORT",
    ];

    #[test]
    fn common_flows_take_the_fast_path_with_the_general_result() {
        for text in COMMON {
            assert!(same(text), "not taken by the fast path: {text:?}");
        }
    }

    #[test]
    fn texts_it_does_not_read_go_to_the_general_parser() {
        for text in [
            "",
            "actions",
            "priority=1",
            "table=0,in_port=1,actions=resubmit(,2)",
            "reg0=5,actions=drop",
            "in_port=0,actions=drop",
            "in_port=1,actions=output:0",
            "cookie=1/2,actions=drop",
            "out_port=1,actions=drop",
            "tp_dst=80,actions=drop",
            "nw_src=10.0.0.1,actions=drop",
            "ip,nw_src=010.0.0.1,actions=drop",
            "dl_src=02:00:00:00:00,actions=drop",
            "priority=65536,actions=drop",
            "priority=+5,actions=drop",
            "table=255,actions=drop",
            "tcp=1,actions=drop",
            "in_port=1,actions=bogus",
            "in_port=1\tactions=drop",
            "in_port=1,actions=mod_tp_dst:80",
            "ipv6,ipv6_src=::1,actions=drop",
            "in_port=1,actions=set_field:1->reg0",
            "arp,nw_src=10.0.0.1,actions=drop",
        ] {
            assert!(!same(text), "taken by the fast path: {text:?}");
        }
    }

    /// Pieces of flow texts, valid and not, in the forms both paths read and some only
    /// the general parser does.
    const HEAD: &[&str] = &[
        "table=0",
        "table=1",
        "table=254",
        "table=255",
        "table=all",
        "table=",
        "table",
        "table=0x3",
        "table=007",
        "table=1000",
        "priority=00100",
        "priority=123456",
        "table=1table=2",
        "priority=5,table=3",
        "priority=0",
        "priority=100",
        "priority=65535",
        "priority=65536",
        "priority=+1",
        "priority",
        "idle_timeout=10",
        "hard_timeout=0x10",
        "cookie=0x5",
        "cookie=5/1",
        "cookie=-1",
        "send_flow_rem",
        "check_overlap",
        "reset_counts=1",
        "no_packet_counts",
        "no_byte_counts",
        "duration=1.5s",
        "n_packets=3",
        "out_port=1",
        "out_group=2",
        "ip",
        "tcp",
        "udp",
        "sctp",
        "arp",
        "rarp",
        "ipv6",
        "icmp",
        "mpls",
        "tcp=1",
        "dl_type=0x0800",
        "dl_type=0x806",
        "eth_type=2048",
        "dl_type=0x10000",
        "nw_proto=6",
        "nw_proto=17",
        "ip_proto=1",
        "nw_proto=256",
        "nw_proto=",
        "in_port=1",
        "in_port=0",
        "in_port=LOCAL",
        "in_port=local",
        "in_port=NONE",
        "in_port=4294967295",
        "in_port=4294967040",
        "in_port=4294967041",
        "in_port=1/1",
        "in_port=+1",
        "in_port",
        "dl_src=02:00:00:00:00:01",
        "dl_src=2:0:0:0:0:1",
        "dl_src=02:00:00:00:00:001",
        "dl_src=02:00:00:00:00",
        "eth_src=02:00:00:00:00:01/ff:ff:ff:00:00:00",
        "dl_dst=01:00:00:00:00:00/01:00:00:00:00:00",
        "dl_dst=ff:ff:ff:ff:ff:ff/-1",
        "dl_dst=gg:00:00:00:00:00",
        "dl_dst=",
        "nw_src=10.0.0.1",
        "nw_src=10.0.0.0/8",
        "nw_src=10.0.0.0/0",
        "nw_src=10.0.0.0/32",
        "nw_src=10.0.0.0/33",
        "nw_src=10.0.0.0/255.0.0.0",
        "nw_src=10.1.2.3/255.255.0.0",
        "nw_src=10.0.0.1/-1",
        "nw_dst=256.0.0.1",
        "nw_dst=1.2.3",
        "nw_dst=01.2.3.4",
        "ip_dst=1.2.3.4",
        "ipv4_src=1.2.3.4/+8",
        "tp_src=80",
        "tp_dst=0x1000/0xf000",
        "tp_dst=65536",
        "tcp_dst=22",
        "udp_src=53",
        "sctp_dst=9",
        "tcp_src=1/-1",
        "metadata=0x5",
        "metadata=0x5/0xff",
        "metadata=5/-1",
        "metadata=0x10000000000000000",
        "dl_vlan=10",
        "dl_vlan=0xffff",
        "dl_vlan=4096",
        "vlan_vid=0x1005",
        "vlan_vid=0x1005/0x1fff",
        "dl_vlan_pcp=3",
        "vlan_pcp=8",
        "ip_dscp=46",
        "nw_ecn=3",
        "ip_ecn=4",
        "tun_id=0x5",
        "tunnel_id=7/0xff",
        "reg0=5",
        "ct_state=+trk",
        "nw_tos=8",
        "icmp_type=3",
        "ipv6_src=::1",
        "in_port=1(",
        "bogus=1",
        "Table=0",
        "in_port=1\t",
        "dl_src=é",
        "send_flow_rem=a(b",
        "duration=x=y",
        "send_flow_rem=apply_actions=drop",
        "in_port=1\tdl_src=02:00:00:00:00:01",
        "n_packets=3)",
        "reset_counts=x\ty",
        "check_overlap=1.5",
        "xapply_actions=output:1",
        "in_port=1\tactions=drop",
    ];
    const ACTIONS: &[&str] = &[
        "output:2",
        "output=3",
        "output:0",
        "output:",
        "output",
        "output:LOCAL",
        "2",
        "0",
        "NORMAL",
        "normal",
        "LOCAL",
        "in_port",
        "ALL",
        "flood",
        "none",
        "ANY",
        "table",
        "controller",
        "CONTROLLER:128",
        "controller:max_len=64",
        "controller:",
        "drop",
        "drop:1",
        "goto_table:1",
        "goto_table:255",
        "GOTO_TABLE:3",
        "goto_table",
        "meter:1",
        "meter",
        "clear_actions",
        "write_metadata:0x5",
        "write_metadata:5/0xff",
        "write_metadata:5/-1",
        "write_metadata",
        "group:1",
        "group",
        "set_queue:3",
        "push_vlan:0x8100",
        "push_vlan:0x10000",
        "pop_vlan",
        "strip_vlan",
        "dec_ttl",
        "mod_nw_ttl:64",
        "set_nw_ttl:256",
        "copy_ttl_out",
        "copy_ttl_in",
        "set_field:10.0.0.1->ip_dst",
        "set_field:10.0.0.1/8->ip_dst",
        "set_field:10.0.0.1/32->ip_dst",
        "set_field:02:00:00:00:00:01->eth_src",
        "set_field:5->reg0",
        "set_field:5->tun_src",
        "set_field:5",
        "set_field:80->tcp_dst",
        "set_field:1->in_port",
        "set_field:7->vlan_pcp",
        "set_field:::1->ipv6_src",
        "mod_vlan_vid:5",
        "mod_vlan_vid:4096",
        "mod_vlan_pcp:3",
        "mod_vlan_pcp:8",
        "mod_dl_src:02:00:00:00:00:01",
        "mod_dl_dst:02:00:00:00:00",
        "mod_nw_src:1.2.3.4",
        "mod_nw_dst:1.2.3.4/8",
        "mod_nw_tos:16",
        "mod_nw_tos:256",
        "mod_nw_ecn:3",
        "mod_tp_src:80",
        "mod_tp_dst:8775",
        "resubmit(,2)",
        "resubmit:2",
        "ct_clear",
        "note:01",
        "bogus",
        "write_actions(output:2)",
        "write_actions",
        "a_very_long_action_name_indeed",
        "drop:(x",
        "clear_actions:a=b",
        "pop_vlan:)",
        "dec_ttl\toutput:1",
        "output:1(",
        "drop:x",
        "strip_vlan:1",
        "actions=drop",
    ];

    fn flow() -> impl Strategy<Value = String> {
        (
            prop::collection::vec(prop::sample::select(HEAD), 0..6),
            prop::collection::vec(prop::sample::select(ACTIONS), 0..4),
            prop::sample::select(&[",", " ", ", ", ",,", " , "][..]),
            prop::sample::select(&["actions=", " actions=", "apply_actions=", ""][..]),
            prop::bool::weighted(0.05),
        )
            .prop_map(|(head, actions, sep, actions_key, pad)| {
                let mut t = head.join(sep);
                if !actions_key.is_empty() {
                    if !t.is_empty() && !actions_key.starts_with(' ') {
                        t.push_str(sep);
                    }
                    t.push_str(actions_key);
                    t.push_str(&actions.join(sep));
                }
                if pad {
                    t = format!("  {t} ");
                }
                t
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        /// Generated flows, valid and not: the fast path answers only with what the
        /// general parser answers, and everything else is left to it.
        #[test]
        fn fast_path_agrees_with_the_general_parser(text in flow()) {
            same(&text);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// One `FlowMod` parsed into text after text, as a gRPC batch parses: each gives
        /// what a fresh parse gives (or the same error), whatever the text before it left
        /// in the `FlowMod` (a failed parse included).
        #[test]
        fn a_reused_flow_mod_parses_as_a_fresh_one(
            texts in prop::collection::vec(prop_oneof![
                flow(),
                prop::sample::select(COMMON).prop_map(str::to_owned),
            ], 1..8),
        ) {
            let mut fm = FlowMod::add(0, 0, openflow::Match::any(), Vec::new());
            for t in &texts {
                let fresh = crate::parse_flow_mod(t, FlowModCommand::Add);
                let into = crate::parse_flow_mod_into(t, FlowModCommand::Add, &mut fm)
                    .map(|()| fm.clone());
                prop_assert_eq!(into, fresh, "{:?}", t);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5_000))]

        /// The lines of a flow file as the general iterators find them.
        #[test]
        fn flow_lines_are_the_trimmed_lines(
            pieces in prop::collection::vec(prop::sample::select(&[
                "\n", "\r\n", "\r", " ", "\t", "#", "a", "table=1,actions=drop",
                "\u{a0}", "\u{2028}", "é", "\x0b", "\x0c", "0123456789abcdef",
            ][..]), 0..24),
        ) {
            let text = pieces.concat();
            let general: Vec<(usize, &str)> = text
                .lines()
                .enumerate()
                .map(|(i, l)| (i + 1, l.trim()))
                .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
                .collect();
            let fast: Vec<(usize, &str)> = super::FlowLines::new(&text).collect();
            prop_assert_eq!(fast, general, "{:?}", text);
        }
    }

    /// Flows of one shape parsed into one `FlowMod` keep its vectors: the batch's
    /// common flows allocate nothing.
    #[test]
    fn a_reused_flow_mod_keeps_its_vectors() {
        use openflow::instruction::Instruction;
        let apply_ptr = |fm: &FlowMod| match &fm.instructions[..] {
            [Instruction::ApplyActions(l)] => l.as_ptr(),
            other => panic!("{other:?}"),
        };
        let mut fm = FlowMod::add(0, 0, openflow::Match::any(), Vec::new());
        crate::parse_flow_mod_into(COMMON[3], FlowModCommand::Add, &mut fm).unwrap();
        let ptrs = (
            fm.match_.fields.as_ptr(),
            fm.instructions.as_ptr(),
            apply_ptr(&fm),
        );
        let next = "table=1,priority=100,dl_dst=02:00:00:00:c3:50,actions=output:3";
        crate::parse_flow_mod_into(next, FlowModCommand::Add, &mut fm).unwrap();
        assert_eq!(
            Ok(&fm),
            crate::parse_flow_mod(next, FlowModCommand::Add).as_ref()
        );
        let again = (
            fm.match_.fields.as_ptr(),
            fm.instructions.as_ptr(),
            apply_ptr(&fm),
        );
        assert_eq!(ptrs, again);
    }

    /// The generated texts reach both outcomes often (a differential test where one path
    /// never answers would pass while checking nothing).
    #[test]
    fn the_generated_texts_take_both_paths() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let mut runner = TestRunner::deterministic();
        let (mut fast, mut general) = (0, 0);
        for _ in 0..5000 {
            let text = flow().new_tree(&mut runner).unwrap().current();
            if same(&text) {
                fast += 1;
            } else {
                general += 1;
            }
        }
        assert!(
            fast > 250 && general > 250,
            "fast {fast}, general {general}"
        );
    }
}
