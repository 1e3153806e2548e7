//! Flows: `table=0,priority=100,ip,in_port=1,nw_dst=10.0.0.0/8,actions=output:2`.

use openflow::consts::{
    FlowModFlags, OFPG_ANY, OFPP_ANY, OFPTT_ALL, OFPVID_PRESENT, OFP_NO_BUFFER,
};
use openflow::instruction::Instruction;
use openflow::messages::{FlowMod, FlowModCommand};
use openflow::oxm::{BasicOxm, OxmTlv};
use openflow::{Match, OxmField, Prerequisite};

use crate::actions::{format_instructions, parse_instructions, ActionContext};
use crate::fields::{field_by_name, format_masked, oxm_name, parse_port, parse_value};
use crate::{bad, key_value, parse_uint, split_top, SyntaxError};

/// OpenFlow's default priority, which ovs-ofctl uses when none is given.
pub(crate) const DEFAULT_PRIORITY: u16 = 0x8000;

/// Protocol shorthands: the ethertype and IP protocol each stands for.
pub(crate) const SHORTHANDS: [(&str, u16, Option<u8>); 14] = [
    ("ip", 0x0800, None),
    ("icmp", 0x0800, Some(1)),
    ("tcp", 0x0800, Some(6)),
    ("udp", 0x0800, Some(17)),
    ("sctp", 0x0800, Some(132)),
    ("ipv6", 0x86dd, None),
    ("icmp6", 0x86dd, Some(58)),
    ("tcp6", 0x86dd, Some(6)),
    ("udp6", 0x86dd, Some(17)),
    ("sctp6", 0x86dd, Some(132)),
    ("arp", 0x0806, None),
    ("rarp", 0x8035, None),
    ("mpls", 0x8847, None),
    ("mplsm", 0x8848, None),
];

/// Keys a dump prints that mean nothing as input; accepted so that a dumped
/// line can be pasted back.
pub(crate) const DUMP_ONLY: [&str; 5] =
    ["duration", "n_packets", "n_bytes", "idle_age", "hard_age"];

/// Splits off `actions=...`, which takes the rest of the string.
fn split_actions(text: &str) -> (&str, Option<&str>) {
    let mut search = 0;
    while let Some(i) = text[search..].find("actions=") {
        let at = search + i;
        let boundary = at == 0 || matches!(text.as_bytes()[at - 1], b',' | b' ' | b'\t');
        // `write_actions=` is not it; `apply_actions=` is an alias ovs-ofctl takes.
        let apply_alias = text[..at].ends_with("apply_");
        if boundary || apply_alias {
            let start = if apply_alias { at - "apply_".len() } else { at };
            return (&text[..start], Some(&text[at + "actions=".len()..]));
        }
        search = at + 1;
    }
    (text, None)
}

/// Parses a flow for `command`. Adds default to table 0 and priority 32768;
/// modifies and deletes default to every table and, unless strict, ignore the
/// priority. Deletes take no actions.
///
/// Additions in the common syntax (the fields and actions of a virtual-network
/// profile or a classifier) take a single-pass path that allocates only what the
/// `FlowMod` keeps; anything else, errors included, takes the general parser, so
/// both accept the same texts with the same results and errors.
pub fn parse_flow_mod(text: &str, command: FlowModCommand) -> Result<FlowMod, SyntaxError> {
    if command == FlowModCommand::Add {
        if let Some(fm) = crate::fast::parse_add(text) {
            return Ok(fm);
        }
    }
    parse_flow_mod_general(text, command)
}

/// [`parse_flow_mod`] into `fm`, reusing the vectors it holds: a batch parsed one flow at
/// a time into one `FlowMod` (each converted before the next is parsed) allocates nothing
/// for the common flows. After an error `fm` holds nothing meaningful.
pub fn parse_flow_mod_into(
    text: &str,
    command: FlowModCommand,
    fm: &mut FlowMod,
) -> Result<(), SyntaxError> {
    if command == FlowModCommand::Add && crate::fast::parse_add_into(text, fm) {
        return Ok(());
    }
    *fm = parse_flow_mod_general(text, command)?;
    Ok(())
}

/// The general parser: every syntax the crate accepts, and every error it reports.
pub(crate) fn parse_flow_mod_general(
    text: &str,
    command: FlowModCommand,
) -> Result<FlowMod, SyntaxError> {
    let (head, actions) = split_actions(text.trim());
    let is_add = command == FlowModCommand::Add;
    let is_delete = matches!(
        command,
        FlowModCommand::Delete | FlowModCommand::DeleteStrict
    );
    let mut fm = FlowMod::add(0, DEFAULT_PRIORITY, Match::any(), Vec::new());
    fm.command = command;
    fm.buffer_id = OFP_NO_BUFFER;
    if !is_add {
        fm.table_id = OFPTT_ALL;
    }
    let mut fields: Vec<(&str, &str)> = Vec::new();
    let mut cookie_given = false;
    for tok in split_top(head)? {
        let (key, val) = key_value(tok);
        let need = || {
            val.filter(|v| !v.is_empty())
                .ok_or_else(|| SyntaxError::MissingValue(key.to_owned()))
        };
        match key {
            "table" => {
                let v = need()?;
                fm.table_id = if v.eq_ignore_ascii_case("all") {
                    OFPTT_ALL
                } else {
                    parse_uint(key, v, 254)? as u8
                };
            }
            "priority" => fm.priority = parse_uint(key, need()?, 0xffff)? as u16,
            "idle_timeout" => fm.idle_timeout = parse_uint(key, need()?, 0xffff)? as u16,
            "hard_timeout" => fm.hard_timeout = parse_uint(key, need()?, 0xffff)? as u16,
            "send_flow_rem" => fm.flags |= FlowModFlags::SEND_FLOW_REM,
            "check_overlap" => fm.flags |= FlowModFlags::CHECK_OVERLAP,
            "reset_counts" => fm.flags |= FlowModFlags::RESET_COUNTS,
            "no_packet_counts" => fm.flags |= FlowModFlags::NO_PKT_COUNTS,
            "no_byte_counts" => fm.flags |= FlowModFlags::NO_BYT_COUNTS,
            "cookie" => {
                let v = need()?;
                let (value, mask) = match v.split_once('/') {
                    Some((a, b)) => (a, Some(b)),
                    None => (v, None),
                };
                fm.cookie = parse_uint(key, value, u128::from(u64::MAX))? as u64;
                fm.cookie_mask = match mask {
                    Some(_) if is_add => {
                        return Err(SyntaxError::NotAllowed {
                            key: key.into(),
                            why: "flow additions cannot use a cookie mask".into(),
                        })
                    }
                    Some("-1") => u64::MAX,
                    Some(m) => parse_uint(key, m, u128::from(u64::MAX))? as u64,
                    None if is_add => 0,
                    None => u64::MAX,
                };
                cookie_given = true;
            }
            "out_port" | "out_group" if is_add => {
                return Err(SyntaxError::NotAllowed {
                    key: key.into(),
                    why: "only for deletes and dumps".into(),
                })
            }
            "out_port" => fm.out_port = parse_port(key, need()?)?,
            "out_group" => fm.out_group = parse_uint(key, need()?, u128::from(u32::MAX))? as u32,
            k if DUMP_ONLY.contains(&k) => {}
            _ => fields.push((key, val.unwrap_or(""))),
        }
    }
    let _ = cookie_given;
    fm.match_ = build_match(&fields)?;
    match actions {
        Some(_) if is_delete => {
            return Err(SyntaxError::NotAllowed {
                key: "actions".into(),
                why: "deletes take no actions".into(),
            })
        }
        Some(a) => fm.instructions = parse_instructions(a, ActionContext::of(&fm.match_))?,
        None if is_delete => {}
        None => return Err(SyntaxError::Required("actions".into())),
    }
    if is_add {
        fm.out_port = OFPP_ANY;
        fm.out_group = OFPG_ANY;
    }
    Ok(fm)
}

/// A match alone, in the same syntax (`ip,nw_dst=10.0.0.0/8`).
pub fn parse_match(text: &str) -> Result<Match, SyntaxError> {
    let mut fields = Vec::new();
    for tok in split_top(text)? {
        let (key, val) = key_value(tok);
        fields.push((key, val.unwrap_or("")));
    }
    build_match(&fields)
}

/// One structured match field (the gRPC API's `MatchField`): ovs-ofctl's
/// name, its value, and an optional mask. Names whose meaning depends on the
/// rest of the match (`nw_src` on ARP, `tp_dst`) need the whole match: use
/// [`parse_match`] for those.
pub fn parse_match_field(name: &str, value: &str, mask: &str) -> Result<OxmTlv, SyntaxError> {
    let joined = if mask.is_empty() {
        value.to_owned()
    } else {
        format!("{value}/{mask}")
    };
    if let Some(r) = crate::nx::parse_register_match(name, &joined) {
        return r;
    }
    let f = field_by_name(name).ok_or_else(|| SyntaxError::UnknownKey(name.to_owned()))?;
    let mask = (!mask.is_empty()).then_some(mask);
    let (v, m) = parse_value(name, f, value, mask)?;
    tlv(name, f, v, m, value)
}

fn tlv(
    key: &str,
    f: OxmField,
    v: u128,
    m: Option<u128>,
    text: &str,
) -> Result<OxmTlv, SyntaxError> {
    match m {
        Some(m) => BasicOxm::masked(f, v, m),
        None => BasicOxm::new(f, v),
    }
    .map(OxmTlv::Basic)
    .ok_or_else(|| bad(key, text, "too large for the field"))
}

fn build_match(fields: &[(&str, &str)]) -> Result<Match, SyntaxError> {
    let mut out: Vec<(OxmField, u128, Option<u128>)> = Vec::new();
    let mut regs: Vec<OxmTlv> = Vec::new();
    let mut set = |f: OxmField, v: u128, m: Option<u128>| {
        out.retain(|e| e.0 != f);
        out.push((f, v, m));
    };
    // Shorthands and dl_type first: field names like nw_src depend on them.
    let mut eth_type = None;
    let mut ip_proto = None;
    for (key, val) in fields {
        if let Some((_, t, p)) = SHORTHANDS.iter().find(|s| s.0 == *key) {
            if !val.is_empty() {
                return Err(bad(key, val, "a protocol shorthand takes no value"));
            }
            eth_type = Some(*t);
            if p.is_some() {
                ip_proto = *p;
            }
        } else if matches!(*key, "dl_type" | "eth_type") {
            eth_type = Some(parse_uint(key, val, 0xffff)? as u16);
        } else if matches!(*key, "nw_proto" | "ip_proto") && eth_type != Some(0x0806) {
            ip_proto = Some(parse_uint(key, val, 255)? as u8);
        }
    }
    if let Some(t) = eth_type {
        set(OxmField::EthType, u128::from(t), None);
    }
    let arp = matches!(eth_type, Some(0x0806) | Some(0x8035));
    let ipv6 = eth_type == Some(0x86dd);
    if let Some(p) = ip_proto {
        if !arp {
            set(OxmField::IpProto, u128::from(p), None);
        }
    }
    for (key, val) in fields {
        let key = *key;
        if SHORTHANDS.iter().any(|s| s.0 == key)
            || matches!(key, "dl_type" | "eth_type")
            || (matches!(key, "nw_proto" | "ip_proto") && !arp)
        {
            continue;
        }
        if let Some(r) = crate::nx::parse_register_match(key, val) {
            let tlv = r?;
            regs.retain(|t| t.header() & !0x1ff != tlv.header() & !0x1ff);
            regs.push(tlv);
            continue;
        }
        if val.is_empty() {
            return Err(if field_by_name(key).is_some() || is_alias(key) {
                SyntaxError::MissingValue(key.to_owned())
            } else {
                SyntaxError::UnknownKey(key.to_owned())
            });
        }
        let f = match key {
            "dl_vlan" => {
                let vid = parse_uint(key, val, 0xffff)?;
                let v = if vid == 0xffff {
                    0
                } else if vid <= 4095 {
                    vid | u128::from(OFPVID_PRESENT)
                } else {
                    return Err(bad(key, val, "a VLAN id is 0 to 4095 (0xffff: no VLAN)"));
                };
                set(OxmField::VlanVid, v, None);
                continue;
            }
            "vlan_tci" => {
                let (v, m) = match val.split_once('/') {
                    Some((v, m)) => (parse_uint(key, v, 0xffff)?, parse_uint(key, m, 0xffff)?),
                    None => (parse_uint(key, val, 0xffff)?, 0xffff),
                };
                let (vid, vid_mask) = (v & 0x1fff, m & 0x1fff);
                if vid_mask == 0x1fff {
                    set(OxmField::VlanVid, vid, None);
                } else if vid_mask != 0 {
                    set(OxmField::VlanVid, vid & vid_mask, Some(vid_mask));
                }
                if m & 0xe000 == 0xe000 {
                    set(OxmField::VlanPcp, (v >> 13) & 7, None);
                }
                continue;
            }
            "nw_tos" => {
                let tos = parse_uint(key, val, 255)?;
                set(OxmField::IpDscp, tos >> 2, None);
                continue;
            }
            "nw_src" if arp => OxmField::ArpSpa,
            "nw_dst" if arp => OxmField::ArpTpa,
            "nw_proto" | "ip_proto" if arp => OxmField::ArpOp,
            "tp_src" | "tp_dst" => {
                let src = key == "tp_src";
                match (ip_proto, src) {
                    (Some(6), true) => OxmField::TcpSrc,
                    (Some(6), false) => OxmField::TcpDst,
                    (Some(17), true) => OxmField::UdpSrc,
                    (Some(17), false) => OxmField::UdpDst,
                    (Some(132), true) => OxmField::SctpSrc,
                    (Some(132), false) => OxmField::SctpDst,
                    _ => {
                        return Err(SyntaxError::Prerequisite {
                            field: key.to_owned(),
                            needs: "tcp, udp or sctp (nw_proto=6, 17 or 132)".into(),
                        })
                    }
                }
            }
            "icmp_type" if ipv6 => OxmField::Icmpv6Type,
            "icmp_code" if ipv6 => OxmField::Icmpv6Code,
            _ => field_by_name(key).ok_or_else(|| SyntaxError::UnknownKey(key.to_owned()))?,
        };
        let (v, m) = parse_value(key, f, val, None)?;
        set(f, v, m);
    }
    let mut tlvs = Vec::with_capacity(out.len());
    out.sort_by_key(|e| e.0.raw());
    for (f, v, m) in out {
        tlvs.push(tlv(oxm_name(f), f, v, m, "")?);
    }
    // In field-number order, as Open vSwitch sends them (registers before ct_*).
    regs.sort_by_key(|t| t.header() & !0x1ff);
    tlvs.extend(regs);
    let m = Match::new(tlvs);
    check_prerequisites(&m)?;
    Ok(m)
}

fn is_alias(key: &str) -> bool {
    matches!(key, "dl_vlan" | "vlan_tci" | "nw_tos" | "tp_src" | "tp_dst")
}

/// Names the first field whose prerequisite the match lacks, and what it needs.
pub(crate) fn check_prerequisites(m: &Match) -> Result<(), SyntaxError> {
    for b in m.fields.iter().filter_map(OxmTlv::as_basic) {
        let ok = match b.field().prerequisite() {
            Prerequisite::None => true,
            Prerequisite::Present(f) => m.get(f).is_some(),
            Prerequisite::VlanTagged => m
                .get(OxmField::VlanVid)
                .is_some_and(|v| v.value() & u128::from(OFPVID_PRESENT) != 0),
            Prerequisite::Exact { field, values } => m
                .get(field)
                .is_some_and(|p| p.mask().is_none() && values.contains(&p.value())),
        };
        if !ok {
            let needs = match b.field().prerequisite() {
                Prerequisite::Exact { field, values } => {
                    let vals: Vec<String> = values
                        .iter()
                        .map(|v| crate::fields::format_value(field, *v))
                        .collect();
                    format!("{}={}", oxm_name(field), vals.join(" or "))
                }
                Prerequisite::Present(f) => oxm_name(f).to_owned(),
                Prerequisite::VlanTagged => "a VLAN match (dl_vlan)".into(),
                Prerequisite::None => String::new(),
            };
            return Err(SyntaxError::Prerequisite {
                field: oxm_name(b.field()).to_owned(),
                needs,
            });
        }
    }
    Ok(())
}

/// The match (with the priority first, unless it is the default) as
/// ovs-ofctl prints it: `priority=100,tcp,in_port=1,tp_dst=80`.
pub fn format_match(m: &Match, priority: u16) -> String {
    let mut parts: Vec<String> = Vec::new();
    if priority != DEFAULT_PRIORITY {
        parts.push(format!("priority={priority}"));
    }
    let get = |f: OxmField| m.get(f).map(|b| (b.value(), b.mask()));
    let exact = |f: OxmField| m.get(f).filter(|b| b.mask().is_none()).map(|b| b.value());
    let eth_type = exact(OxmField::EthType).map(|v| v as u16);
    let proto = exact(OxmField::IpProto).map(|v| v as u8);
    let mut skip_type = false;
    let mut skip_proto = false;
    parts.extend(crate::nx::format_conj_id(m));
    parts.extend(crate::nx::format_ct_matches(m));
    if let Some(t) = eth_type {
        let with_proto = SHORTHANDS
            .iter()
            .find(|s| s.1 == t && s.2.is_some() && s.2 == proto);
        let plain = SHORTHANDS.iter().find(|s| s.1 == t && s.2.is_none());
        if let Some(s) = with_proto {
            parts.push(s.0.into());
            skip_type = true;
            skip_proto = true;
        } else if let Some(s) = plain {
            parts.push(s.0.into());
            skip_type = true;
        }
    }
    parts.extend(crate::nx::format_register_matches(m));
    let mut put = |name: &str, f: OxmField| {
        if let Some((v, m)) = get(f) {
            parts.push(format!("{name}={}", format_masked(f, v, m)));
        }
    };
    put("tun_id", OxmField::TunnelId);
    parts.extend(crate::nx::format_tunnel_matches(m));
    let mut put = |name: &str, f: OxmField| {
        if let Some((v, m)) = get(f) {
            parts.push(format!("{name}={}", format_masked(f, v, m)));
        }
    };
    put("metadata", OxmField::Metadata);
    put("in_port", OxmField::InPort);
    put("in_phy_port", OxmField::InPhyPort);
    match get(OxmField::VlanVid) {
        Some((v, None)) if v & u128::from(OFPVID_PRESENT) != 0 => {
            parts.push(format!("dl_vlan={}", v & 0xfff))
        }
        Some((v, m)) => {
            let m = m.unwrap_or(0x1fff);
            parts.push(format!("vlan_tci={v:#06x}/{m:#06x}"))
        }
        None => {}
    }
    let mut put = |name: &str, f: OxmField| {
        if let Some((v, m)) = get(f) {
            parts.push(format!("{name}={}", format_masked(f, v, m)));
        }
    };
    put("dl_vlan_pcp", OxmField::VlanPcp);
    put("dl_src", OxmField::EthSrc);
    put("dl_dst", OxmField::EthDst);
    if !skip_type {
        put("dl_type", OxmField::EthType);
    }
    if eth_type == Some(0x86dd) {
        put("ipv6_src", OxmField::Ipv6Src);
        put("ipv6_dst", OxmField::Ipv6Dst);
        put("ipv6_label", OxmField::Ipv6Flabel);
    } else if matches!(eth_type, Some(0x0806) | Some(0x8035)) {
        put("arp_spa", OxmField::ArpSpa);
        put("arp_tpa", OxmField::ArpTpa);
    } else {
        put("nw_src", OxmField::Ipv4Src);
        put("nw_dst", OxmField::Ipv4Dst);
    }
    if !skip_proto {
        put("nw_proto", OxmField::IpProto);
    }
    put("arp_op", OxmField::ArpOp);
    put("arp_sha", OxmField::ArpSha);
    put("arp_tha", OxmField::ArpTha);
    if let Some((v, _)) = get(OxmField::IpDscp) {
        parts.push(format!("nw_tos={}", v << 2));
    }
    let mut put = |name: &str, f: OxmField| {
        if let Some((v, m)) = get(f) {
            parts.push(format!("{name}={}", format_masked(f, v, m)));
        }
    };
    put("nw_ecn", OxmField::IpEcn);
    put("mpls_label", OxmField::MplsLabel);
    put("mpls_tc", OxmField::MplsTc);
    put("mpls_bos", OxmField::MplsBos);
    put("pbb_isid", OxmField::PbbIsid);
    put("icmp_type", OxmField::Icmpv4Type);
    put("icmp_code", OxmField::Icmpv4Code);
    put("icmp_type", OxmField::Icmpv6Type);
    put("icmp_code", OxmField::Icmpv6Code);
    put("nd_target", OxmField::Ipv6NdTarget);
    put("nd_sll", OxmField::Ipv6NdSll);
    put("nd_tll", OxmField::Ipv6NdTll);
    for (f, name) in [
        (OxmField::TcpSrc, "tp_src"),
        (OxmField::TcpDst, "tp_dst"),
        (OxmField::UdpSrc, "tp_src"),
        (OxmField::UdpDst, "tp_dst"),
        (OxmField::SctpSrc, "tp_src"),
        (OxmField::SctpDst, "tp_dst"),
    ] {
        put(name, f);
    }
    put("ipv6_exthdr", OxmField::Ipv6Exthdr);
    parts.join(",")
}

/// A flow entry, for printing.
#[derive(Debug, Clone, Copy)]
pub struct FlowText<'a> {
    pub table_id: u8,
    pub priority: u16,
    pub cookie: u64,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub flags: FlowModFlags,
    pub match_: &'a Match,
    pub instructions: &'a [Instruction],
    /// Counters and age: printed as dump-flows does when present.
    pub counters: Option<(f64, u64, u64)>,
}

/// The entry as ovs-ofctl dump-flows prints it (with counters), or as a spec
/// that parses back to the same flow (without). Both parse back.
pub fn format_flow(f: &FlowText) -> String {
    let mut head: Vec<String> = Vec::new();
    match f.counters {
        Some((duration, packets, bytes)) => {
            head.push(format!("cookie={:#x}", f.cookie));
            head.push(format!("duration={duration:.3}s"));
            head.push(format!("table={}", f.table_id));
            head.push(format!("n_packets={packets}"));
            head.push(format!("n_bytes={bytes}"));
        }
        None => {
            head.push(format!("table={}", f.table_id));
            if f.cookie != 0 {
                head.push(format!("cookie={:#x}", f.cookie));
            }
        }
    }
    if f.idle_timeout != 0 {
        head.push(format!("idle_timeout={}", f.idle_timeout));
    }
    if f.hard_timeout != 0 {
        head.push(format!("hard_timeout={}", f.hard_timeout));
    }
    for (flag, name) in [
        (FlowModFlags::SEND_FLOW_REM, "send_flow_rem"),
        (FlowModFlags::CHECK_OVERLAP, "check_overlap"),
        (FlowModFlags::RESET_COUNTS, "reset_counts"),
        (FlowModFlags::NO_PKT_COUNTS, "no_packet_counts"),
        (FlowModFlags::NO_BYT_COUNTS, "no_byte_counts"),
    ] {
        if f.flags.contains(flag) {
            head.push(name.into());
        }
    }
    let sep = if f.counters.is_some() { ", " } else { "," };
    let m = format_match(f.match_, f.priority);
    let mut out = head.join(sep);
    if !m.is_empty() {
        out.push(' ');
        out.push_str(&m);
    }
    out.push_str(" actions=");
    out.push_str(&format_instructions(f.instructions));
    out
}
