//! Actions and instructions: `output:2`, `set_field:10.0.0.1->ip_dst`,
//! `goto_table:1`, `write_actions(...)`.

use openflow::consts::{OFPCML_NO_BUFFER, OFPP_CONTROLLER, OFPVID_PRESENT};
use openflow::instruction::Instruction;
use openflow::oxm::{BasicOxm, OxmTlv};
use openflow::{Action, Match, OxmField};

use crate::fields::{field_by_name, format_port, format_value, oxm_name, parse_port, parse_value};
use crate::{bad, key_value, parse_uint, split_top, SyntaxError};

/// What an action's meaning depends on in the flow's match: `mod_vlan_vid`
/// pushes a tag only when the match does not say there is one, and
/// `mod_tp_dst` sets the port of the match's transport protocol.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ActionContext {
    pub vlan_tagged: bool,
    pub ip_proto: Option<u8>,
}

impl ActionContext {
    pub fn of(m: &Match) -> ActionContext {
        let vlan_tagged = m
            .get(OxmField::VlanVid)
            .is_some_and(|v| v.value() & u128::from(OFPVID_PRESENT) != 0);
        ActionContext {
            vlan_tagged,
            ip_proto: m.get(OxmField::IpProto).map(|p| p.value() as u8),
        }
    }
}

fn set_field(key: &str, f: OxmField, value: &str) -> Result<Action, SyntaxError> {
    let (v, m) = parse_value(key, f, value, None)?;
    if m.is_some() {
        return Err(SyntaxError::NotAllowed {
            key: key.to_owned(),
            why: "OpenFlow 1.3 set_field takes no mask".into(),
        });
    }
    BasicOxm::new(f, v)
        .map(|b| Action::SetField(OxmTlv::Basic(b)))
        .ok_or_else(|| bad(key, value, "too large for the field"))
}

fn need<'a>(key: &str, v: Option<&'a str>) -> Result<&'a str, SyntaxError> {
    v.filter(|s| !s.is_empty())
        .ok_or_else(|| SyntaxError::MissingValue(key.to_owned()))
}

fn num<T: TryFrom<u128>>(key: &str, v: Option<&str>, max: u128) -> Result<T, SyntaxError> {
    let s = need(key, v)?;
    let n = parse_uint(key, s, max)?;
    T::try_from(n).map_err(|_| bad(key, s, "out of range"))
}

/// One action in ovs-ofctl syntax. Most actions produce one OpenFlow action;
/// `mod_vlan_vid` on an untagged match produces a push and a set.
pub fn parse_action(tok: &str) -> Result<Vec<Action>, SyntaxError> {
    parse_action_in(tok, ActionContext::default())
}

pub(crate) fn parse_action_in(tok: &str, ctx: ActionContext) -> Result<Vec<Action>, SyntaxError> {
    // `set_mpls_ttl(4)` is how ovs-ofctl prints some actions with an argument.
    let (key, val) = match tok.split_once('(') {
        Some((k, rest)) if !k.contains([':', '=']) && rest.ends_with(')') => {
            (k, Some(&rest[..rest.len() - 1]))
        }
        _ => key_value(tok),
    };
    let lower = key.to_ascii_lowercase();
    let one = |a: Action| Ok(vec![a]);
    // A bare port: `2`, `NORMAL`, `LOCAL`.
    if val.is_none() && !matches!(lower.as_str(), "controller" | "drop") {
        if let Ok(p) = parse_port(key, key) {
            return one(Action::output(p));
        }
    }
    if let Some(r) = crate::nx::parse_nx_action(key, val) {
        return r;
    }
    match lower.as_str() {
        "output" => {
            let s = need(key, val)?;
            one(Action::output(parse_port(key, s)?))
        }
        "controller" => {
            let max_len = match val {
                None => OFPCML_NO_BUFFER,
                Some(v) => {
                    let v = v.trim_start_matches('(').trim_end_matches(')');
                    let v = v.strip_prefix("max_len=").unwrap_or(v);
                    parse_uint(key, v, 0xffff)? as u16
                }
            };
            one(Action::Output {
                port: OFPP_CONTROLLER,
                max_len,
            })
        }
        "drop" => Ok(vec![]),
        "group" => one(Action::Group(num(key, val, u128::from(u32::MAX))?)),
        "set_queue" => one(Action::SetQueue(num(key, val, u128::from(u32::MAX))?)),
        "push_vlan" => one(Action::PushVlan(num(key, val, 0xffff)?)),
        "pop_vlan" | "strip_vlan" => one(Action::PopVlan),
        // Not in ovs-ofctl (OVS has no PBB actions); named as ovs-ofctl would print them.
        "push_pbb" => one(Action::PushPbb(num(key, val, 0xffff)?)),
        "pop_pbb" => one(Action::PopPbb),
        "push_mpls" => one(Action::PushMpls(num(key, val, 0xffff)?)),
        "pop_mpls" => one(Action::PopMpls(num(key, val, 0xffff)?)),
        "dec_ttl" => one(Action::DecNwTtl),
        "mod_nw_ttl" | "set_nw_ttl" => one(Action::SetNwTtl(num(key, val, 255)?)),
        "dec_mpls_ttl" => one(Action::DecMplsTtl),
        "set_mpls_ttl" => one(Action::SetMplsTtl(num(key, val, 255)?)),
        "copy_ttl_out" => one(Action::CopyTtlOut),
        "copy_ttl_in" => one(Action::CopyTtlIn),
        "set_field" => {
            let s = need(key, val)?;
            let (value, field) = s
                .rsplit_once("->")
                .ok_or_else(|| bad(key, s, "expected VALUE->FIELD"))?;
            if let Some(r) = crate::nx::parse_register_set_field(key, value, field) {
                return r;
            }
            let f =
                field_by_name(field).ok_or_else(|| SyntaxError::UnknownKey(field.to_owned()))?;
            one(set_field(key, f, value)?)
        }
        "mod_vlan_vid" | "mod_vlan_pcp" => {
            let s = need(key, val)?;
            let set = if lower == "mod_vlan_vid" {
                let vid: u16 = num(key, val, 4095)?;
                set_field(key, OxmField::VlanVid, &(vid | OFPVID_PRESENT).to_string())?
            } else {
                set_field(key, OxmField::VlanPcp, s)?
            };
            if ctx.vlan_tagged {
                Ok(vec![set])
            } else {
                Ok(vec![Action::PushVlan(0x8100), set])
            }
        }
        "mod_dl_src" => one(set_field(key, OxmField::EthSrc, need(key, val)?)?),
        "mod_dl_dst" => one(set_field(key, OxmField::EthDst, need(key, val)?)?),
        "mod_nw_src" => one(set_field(key, OxmField::Ipv4Src, need(key, val)?)?),
        "mod_nw_dst" => one(set_field(key, OxmField::Ipv4Dst, need(key, val)?)?),
        "mod_nw_tos" => {
            let tos: u8 = num(key, val, 255)?;
            one(set_field(key, OxmField::IpDscp, &(tos >> 2).to_string())?)
        }
        "mod_nw_ecn" => one(set_field(key, OxmField::IpEcn, need(key, val)?)?),
        "mod_tp_src" | "mod_tp_dst" => {
            let src = lower == "mod_tp_src";
            let f = match (ctx.ip_proto, src) {
                (Some(6), true) => OxmField::TcpSrc,
                (Some(6), false) => OxmField::TcpDst,
                (Some(17), true) => OxmField::UdpSrc,
                (Some(17), false) => OxmField::UdpDst,
                (Some(132), true) => OxmField::SctpSrc,
                (Some(132), false) => OxmField::SctpDst,
                _ => {
                    return Err(SyntaxError::NotAllowed {
                        key: key.to_owned(),
                        why: "needs a tcp, udp or sctp match".into(),
                    })
                }
            };
            one(set_field(key, f, need(key, val)?)?)
        }
        _ => Err(SyntaxError::UnknownAction(key.to_owned())),
    }
}

/// The `actions=` part of a flow: apply-actions plus the instructions
/// (`meter`, `clear_actions`, `write_actions(...)`, `write_metadata`,
/// `goto_table`), returned in the order OpenFlow lists instruction types.
pub(crate) fn parse_instructions(
    s: &str,
    ctx: ActionContext,
) -> Result<Vec<Instruction>, SyntaxError> {
    let mut meter = None;
    let mut apply = Vec::new();
    let mut clear = false;
    let mut write: Option<Vec<Action>> = None;
    let mut metadata = None;
    let mut goto = None;
    for tok in split_top(s)? {
        let (key, val) = key_value(tok);
        match key.to_ascii_lowercase().as_str() {
            "meter" => meter = Some(num::<u32>(key, val, u128::from(u32::MAX))?),
            "goto_table" => goto = Some(num::<u8>(key, val, 254)?),
            "clear_actions" => clear = true,
            "write_metadata" => {
                let v = need(key, val)?;
                let (value, mask) = match v.split_once('/') {
                    Some((a, b)) => (a, Some(b)),
                    None => (v, None),
                };
                let value = parse_uint(key, value, u128::from(u64::MAX))? as u64;
                let mask = match mask {
                    Some(m) => parse_uint(key, m, u128::from(u64::MAX))? as u64,
                    None => u64::MAX,
                };
                metadata = Some((value, mask));
            }
            k if k.starts_with("write_actions(") => {
                let inner = tok["write_actions(".len()..]
                    .strip_suffix(')')
                    .ok_or_else(|| SyntaxError::Parentheses(tok.to_owned()))?;
                let mut acts = Vec::new();
                for t in split_top(inner)? {
                    acts.extend(parse_action_in(t, ctx)?);
                }
                write = Some(acts);
            }
            _ => apply.extend(parse_action_in(tok, ctx)?),
        }
    }
    Ok(InstructionParts {
        meter,
        apply,
        clear,
        write,
        metadata,
        goto,
    }
    .into_instructions())
}

/// The instructions a flow's `actions=` text names, gathered in any order; both parsers
/// (this one and `fast`) emit them in the one order OpenFlow 1.3 executes them.
pub(crate) struct InstructionParts {
    pub meter: Option<u32>,
    pub apply: Vec<Action>,
    pub clear: bool,
    pub write: Option<Vec<Action>>,
    pub metadata: Option<(u64, u64)>,
    pub goto: Option<u8>,
}

impl InstructionParts {
    pub(crate) fn into_instructions(self) -> Vec<Instruction> {
        let mut out = Vec::new();
        self.into_instructions_in(&mut out);
        out
    }

    /// [`Self::into_instructions`] into `out` (empty), sized exactly if it has no room.
    pub(crate) fn into_instructions_in(self, out: &mut Vec<Instruction>) {
        let n = usize::from(self.meter.is_some())
            + usize::from(!self.apply.is_empty())
            + usize::from(self.clear)
            + usize::from(self.write.is_some())
            + usize::from(self.metadata.is_some())
            + usize::from(self.goto.is_some());
        out.reserve_exact(n);
        if let Some(m) = self.meter {
            out.push(Instruction::Meter(m));
        }
        if !self.apply.is_empty() {
            out.push(Instruction::ApplyActions(self.apply));
        }
        if self.clear {
            out.push(Instruction::ClearActions);
        }
        if let Some(w) = self.write {
            out.push(Instruction::WriteActions(w));
        }
        if let Some((metadata, mask)) = self.metadata {
            out.push(Instruction::WriteMetadata { metadata, mask });
        }
        if let Some(t) = self.goto {
            out.push(Instruction::GotoTable(t));
        }
    }
}

/// One action as ovs-ofctl prints it.
pub fn format_action(a: &Action) -> String {
    match a {
        Action::Output { port, max_len } if *port == OFPP_CONTROLLER => {
            format!("CONTROLLER:{max_len}")
        }
        Action::Output { port, .. } if *port <= openflow::consts::OFPP_MAX => {
            format!("output:{port}")
        }
        Action::Output { port, .. } => format_port(*port),
        Action::CopyTtlOut => "copy_ttl_out".into(),
        Action::CopyTtlIn => "copy_ttl_in".into(),
        Action::SetMplsTtl(t) => format!("set_mpls_ttl({t})"),
        Action::DecMplsTtl => "dec_mpls_ttl".into(),
        Action::PushVlan(e) => format!("push_vlan:{e:#06x}"),
        Action::PopVlan => "pop_vlan".into(),
        Action::PushMpls(e) => format!("push_mpls:{e:#06x}"),
        Action::PopMpls(e) => format!("pop_mpls:{e:#06x}"),
        Action::SetQueue(q) => format!("set_queue:{q}"),
        Action::Group(g) => format!("group:{g}"),
        Action::SetNwTtl(t) => format!("mod_nw_ttl:{t}"),
        Action::DecNwTtl => "dec_ttl".into(),
        Action::SetField(OxmTlv::Basic(b)) => format!(
            "set_field:{}->{}",
            format_value(b.field(), b.value()),
            oxm_name(b.field())
        ),
        Action::SetField(tlv @ OxmTlv::Nxm(_)) => {
            format!("set_field:{}", crate::nx::format_set_field_tlv(tlv))
        }
        Action::SetField(OxmTlv::Experimenter(_)) => "set_field:experimenter".into(),
        Action::Nx(nx) => crate::nx::format_nx_action(nx),
        Action::PushPbb(e) => format!("push_pbb:{e:#06x}"),
        Action::PopPbb => "pop_pbb".into(),
        Action::Experimenter { experimenter, .. } => format!("experimenter:{experimenter:#x}"),
    }
}

pub fn format_actions(actions: &[Action]) -> String {
    actions
        .iter()
        .map(format_action)
        .collect::<Vec<_>>()
        .join(",")
}

/// Instructions as the `actions=` value ovs-ofctl prints (`drop` for none).
pub fn format_instructions(ins: &[Instruction]) -> String {
    let mut parts = Vec::new();
    for i in ins {
        match i {
            Instruction::Meter(m) => parts.push(format!("meter:{m}")),
            Instruction::ApplyActions(a) => parts.extend(a.iter().map(format_action)),
            Instruction::ClearActions => parts.push("clear_actions".into()),
            Instruction::WriteActions(a) => {
                parts.push(format!("write_actions({})", format_actions(a)))
            }
            Instruction::WriteMetadata { metadata, mask } => {
                if *mask == u64::MAX {
                    parts.push(format!("write_metadata:{metadata:#x}"))
                } else {
                    parts.push(format!("write_metadata:{metadata:#x}/{mask:#x}"))
                }
            }
            Instruction::GotoTable(t) => parts.push(format!("goto_table:{t}")),
            Instruction::Experimenter { experimenter, .. } => {
                parts.push(format!("experimenter:{experimenter:#x}"))
            }
        }
    }
    if parts.is_empty() {
        "drop".into()
    } else {
        parts.join(",")
    }
}
