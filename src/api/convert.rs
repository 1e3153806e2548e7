//! The API's structured messages to and from the OpenFlow types the switch
//! applies. Field names and values follow ovs-ofctl, through `flow-syntax`.

use flow_syntax::{format_masked, format_port, oxm_name, parse_port, SyntaxError};
use openflow::consts::{FlowModFlags, MeterFlags, OFPCML_NO_BUFFER, OFPG_ANY, OFPP_ANY};
use openflow::messages::{
    Bucket, FlowMod, FlowModCommand, GroupMod, GroupType, MeterBand, MeterMod,
};
use openflow::{Action, Instruction, Match, OxmTlv};

use super::pb;

/// A structured message field the switch cannot use: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("{field}: {source}")]
    Syntax { field: String, source: SyntaxError },
    #[error("{field}: {why}")]
    Invalid { field: String, why: String },
}

impl ConvertError {
    fn invalid(field: &str, why: impl Into<String>) -> ConvertError {
        ConvertError::Invalid {
            field: field.to_owned(),
            why: why.into(),
        }
    }
    fn syntax(field: &str, source: SyntaxError) -> ConvertError {
        ConvertError::Syntax {
            field: field.to_owned(),
            source,
        }
    }
}

fn small<T: TryFrom<u32>>(field: &str, v: u32) -> Result<T, ConvertError> {
    T::try_from(v).map_err(|_| ConvertError::invalid(field, format!("{v} is out of range")))
}

pub fn match_to_pb(m: &Match) -> Vec<pb::MatchField> {
    m.fields
        .iter()
        .filter_map(OxmTlv::as_basic)
        .map(|b| {
            let f = b.field();
            pb::MatchField {
                name: oxm_name(f).to_owned(),
                value: format_masked(f, b.value(), None),
                mask: b
                    .mask()
                    .map(|m| flow_syntax::format_value(f, m))
                    .unwrap_or_default(),
            }
        })
        .collect()
}

pub fn match_from_pb(field: &str, fields: &[pb::MatchField]) -> Result<Match, ConvertError> {
    let text = fields
        .iter()
        .map(|f| {
            if f.mask.is_empty() {
                format!("{}={}", f.name, f.value)
            } else {
                format!("{}={}/{}", f.name, f.value, f.mask)
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    flow_syntax::parse_match(&text).map_err(|e| ConvertError::syntax(field, e))
}

pub fn action_to_pb(a: &Action) -> pb::Action {
    use pb::action::Action as A;
    let action = match a {
        Action::Output { port, max_len } => A::Output(pb::Output {
            port: format_port(*port),
            max_len: if *max_len == OFPCML_NO_BUFFER {
                0
            } else {
                u32::from(*max_len)
            },
        }),
        Action::Group(g) => A::Group(*g),
        Action::SetField(OxmTlv::Basic(b)) => A::SetField(pb::SetField {
            field: oxm_name(b.field()).to_owned(),
            value: flow_syntax::format_value(b.field(), b.value()),
        }),
        Action::PushVlan(e) => A::PushVlan(u32::from(*e)),
        Action::PopVlan => A::PopVlan(true),
        Action::PushMpls(e) => A::PushMpls(u32::from(*e)),
        Action::PopMpls(e) => A::PopMpls(u32::from(*e)),
        Action::SetQueue(q) => A::SetQueue(*q),
        Action::DecNwTtl => A::DecNwTtl(true),
        Action::SetNwTtl(t) => A::SetNwTtl(u32::from(*t)),
        Action::DecMplsTtl => A::DecMplsTtl(true),
        Action::SetMplsTtl(t) => A::SetMplsTtl(u32::from(*t)),
        Action::CopyTtlOut => A::CopyTtlOut(true),
        Action::CopyTtlIn => A::CopyTtlIn(true),
        // Not produced by this API; shown as their text.
        other => A::SetField(pb::SetField {
            field: "unsupported".into(),
            value: flow_syntax::format_action(other),
        }),
    };
    pb::Action {
        action: Some(action),
    }
}

pub fn action_from_pb(field: &str, a: &pb::Action) -> Result<Action, ConvertError> {
    use pb::action::Action as A;
    let a = a
        .action
        .as_ref()
        .ok_or_else(|| ConvertError::invalid(field, "empty action"))?;
    Ok(match a {
        A::Output(o) => {
            let port = parse_port("port", &o.port)
                .map_err(|e| ConvertError::syntax(&format!("{field}.output.port"), e))?;
            let max_len = if o.max_len == 0 {
                OFPCML_NO_BUFFER
            } else {
                small(&format!("{field}.output.max_len"), o.max_len)?
            };
            Action::Output { port, max_len }
        }
        A::Group(g) => Action::Group(*g),
        A::SetField(s) => {
            let f = flow_syntax::field_by_name(&s.field).ok_or_else(|| {
                ConvertError::syntax(
                    &format!("{field}.set_field.field"),
                    SyntaxError::UnknownKey(s.field.clone()),
                )
            })?;
            let acts =
                flow_syntax::parse_action(&format!("set_field:{}->{}", s.value, oxm_name(f)))
                    .map_err(|e| ConvertError::syntax(&format!("{field}.set_field"), e))?;
            acts.into_iter()
                .next()
                .ok_or_else(|| ConvertError::invalid(field, "empty set_field"))?
        }
        A::PushVlan(e) => Action::PushVlan(small(&format!("{field}.push_vlan"), *e)?),
        A::PopVlan(_) => Action::PopVlan,
        A::PushMpls(e) => Action::PushMpls(small(&format!("{field}.push_mpls"), *e)?),
        A::PopMpls(e) => Action::PopMpls(small(&format!("{field}.pop_mpls"), *e)?),
        A::SetQueue(q) => Action::SetQueue(*q),
        A::DecNwTtl(_) => Action::DecNwTtl,
        A::SetNwTtl(t) => Action::SetNwTtl(small(&format!("{field}.set_nw_ttl"), *t)?),
        A::DecMplsTtl(_) => Action::DecMplsTtl,
        A::SetMplsTtl(t) => Action::SetMplsTtl(small(&format!("{field}.set_mpls_ttl"), *t)?),
        A::CopyTtlOut(_) => Action::CopyTtlOut,
        A::CopyTtlIn(_) => Action::CopyTtlIn,
    })
}

fn actions_from_pb(field: &str, list: &[pb::Action]) -> Result<Vec<Action>, ConvertError> {
    list.iter()
        .enumerate()
        .map(|(i, a)| action_from_pb(&format!("{field}[{i}]"), a))
        .collect()
}

pub fn instructions_to_pb(ins: &[Instruction]) -> pb::Instructions {
    let mut out = pb::Instructions::default();
    for i in ins {
        match i {
            Instruction::ApplyActions(a) => {
                out.apply_actions = a.iter().map(action_to_pb).collect()
            }
            Instruction::ClearActions => out.clear_actions = true,
            Instruction::WriteActions(a) => {
                out.write_actions = a.iter().map(action_to_pb).collect()
            }
            Instruction::WriteMetadata { metadata, mask } => {
                out.write_metadata = Some(*metadata);
                out.write_metadata_mask = *mask;
            }
            Instruction::GotoTable(t) => out.goto_table = Some(u32::from(*t)),
            Instruction::Meter(m) => out.meter = Some(*m),
            Instruction::Experimenter { .. } => {}
        }
    }
    out
}

pub fn instructions_from_pb(
    field: &str,
    p: &pb::Instructions,
) -> Result<Vec<Instruction>, ConvertError> {
    let mut out = Vec::new();
    if let Some(m) = p.meter {
        out.push(Instruction::Meter(m));
    }
    if !p.apply_actions.is_empty() {
        out.push(Instruction::ApplyActions(actions_from_pb(
            &format!("{field}.apply_actions"),
            &p.apply_actions,
        )?));
    }
    if p.clear_actions {
        out.push(Instruction::ClearActions);
    }
    if !p.write_actions.is_empty() {
        out.push(Instruction::WriteActions(actions_from_pb(
            &format!("{field}.write_actions"),
            &p.write_actions,
        )?));
    }
    if let Some(metadata) = p.write_metadata {
        let mask = if p.write_metadata_mask == 0 {
            u64::MAX
        } else {
            p.write_metadata_mask
        };
        out.push(Instruction::WriteMetadata { metadata, mask });
    }
    if let Some(t) = p.goto_table {
        out.push(Instruction::GotoTable(small(
            &format!("{field}.goto_table"),
            t,
        )?));
    }
    Ok(out)
}

pub fn flow_to_pb(s: &openflow::multipart::FlowStats) -> pb::Flow {
    pb::Flow {
        table_id: u32::from(s.table_id),
        priority: u32::from(s.priority),
        cookie: s.cookie,
        cookie_mask: 0,
        idle_timeout: u32::from(s.idle_timeout),
        hard_timeout: u32::from(s.hard_timeout),
        send_flow_rem: s.flags.contains(FlowModFlags::SEND_FLOW_REM),
        check_overlap: s.flags.contains(FlowModFlags::CHECK_OVERLAP),
        r#match: match_to_pb(&s.match_),
        instructions: Some(instructions_to_pb(&s.instructions)),
        out_port: 0,
        out_group: 0,
    }
}

/// A structured flow as a FLOW_MOD. Adds default to table 0; the priority is
/// taken as given (0 is a valid priority).
pub fn flow_from_pb(
    field: &str,
    f: &pb::Flow,
    command: FlowModCommand,
) -> Result<FlowMod, ConvertError> {
    let m = match_from_pb(&format!("{field}.match"), &f.r#match)?;
    let is_delete = matches!(
        command,
        FlowModCommand::Delete | FlowModCommand::DeleteStrict
    );
    let instructions = match (&f.instructions, is_delete) {
        (Some(_), true) => {
            return Err(ConvertError::invalid(
                &format!("{field}.instructions"),
                "deletes take no instructions",
            ))
        }
        (Some(i), false) => instructions_from_pb(&format!("{field}.instructions"), i)?,
        (None, _) => Vec::new(),
    };
    let mut fm = FlowMod::add(
        small(&format!("{field}.table_id"), f.table_id)?,
        small(&format!("{field}.priority"), f.priority)?,
        m,
        instructions,
    );
    fm.command = command;
    fm.cookie = f.cookie;
    fm.cookie_mask = if command == FlowModCommand::Add {
        0
    } else {
        f.cookie_mask
    };
    fm.idle_timeout = small(&format!("{field}.idle_timeout"), f.idle_timeout)?;
    fm.hard_timeout = small(&format!("{field}.hard_timeout"), f.hard_timeout)?;
    if f.send_flow_rem {
        fm.flags |= FlowModFlags::SEND_FLOW_REM;
    }
    if f.check_overlap {
        fm.flags |= FlowModFlags::CHECK_OVERLAP;
    }
    if !is_delete && command != FlowModCommand::Add && f.cookie_mask == 0 && f.cookie != 0 {
        fm.cookie_mask = u64::MAX;
    }
    fm.out_port = if f.out_port == 0 {
        OFPP_ANY
    } else {
        f.out_port
    };
    fm.out_group = if f.out_group == 0 {
        OFPG_ANY
    } else {
        f.out_group
    };
    Ok(fm)
}

pub fn group_type_from_str(field: &str, s: &str) -> Result<GroupType, ConvertError> {
    Ok(match s {
        "all" => GroupType::All,
        "select" => GroupType::Select,
        "indirect" => GroupType::Indirect,
        "ff" | "fast_failover" => GroupType::FastFailover,
        _ => {
            return Err(ConvertError::invalid(
                field,
                format!("{s:?}: expected all, select, indirect or ff"),
            ))
        }
    })
}

pub fn group_type_name(t: GroupType) -> &'static str {
    match t {
        GroupType::All => "all",
        GroupType::Select => "select",
        GroupType::Indirect => "indirect",
        GroupType::FastFailover => "ff",
    }
}

pub fn group_to_pb(id: u32, t: GroupType, buckets: &[Bucket]) -> pb::Group {
    pb::Group {
        group_id: id,
        r#type: group_type_name(t).into(),
        buckets: buckets
            .iter()
            .map(|b| pb::Bucket {
                weight: u32::from(b.weight),
                watch_port: if b.watch_port == OFPP_ANY {
                    String::new()
                } else {
                    format_port(b.watch_port)
                },
                watch_group: if b.watch_group == OFPG_ANY {
                    0
                } else {
                    b.watch_group
                },
                actions: b.actions.iter().map(action_to_pb).collect(),
            })
            .collect(),
    }
}

pub fn group_from_pb(
    field: &str,
    g: &pb::Group,
    command: openflow::messages::GroupModCommand,
) -> Result<GroupMod, ConvertError> {
    let group_type =
        if command == openflow::messages::GroupModCommand::Delete && g.r#type.is_empty() {
            GroupType::All
        } else {
            group_type_from_str(&format!("{field}.type"), &g.r#type)?
        };
    let mut buckets = Vec::new();
    for (i, b) in g.buckets.iter().enumerate() {
        let bf = format!("{field}.buckets[{i}]");
        buckets.push(Bucket {
            weight: small(&format!("{bf}.weight"), b.weight)?,
            watch_port: if b.watch_port.is_empty() {
                OFPP_ANY
            } else {
                parse_port("watch_port", &b.watch_port)
                    .map_err(|e| ConvertError::syntax(&format!("{bf}.watch_port"), e))?
            },
            watch_group: if b.watch_group == 0 {
                OFPG_ANY
            } else {
                b.watch_group
            },
            actions: actions_from_pb(&format!("{bf}.actions"), &b.actions)?,
        });
    }
    Ok(GroupMod {
        command,
        group_type,
        group_id: g.group_id,
        buckets,
    })
}

pub fn meter_to_pb(id: u32, flags: MeterFlags, bands: &[MeterBand]) -> pb::Meter {
    pb::Meter {
        meter_id: id,
        pktps: flags.contains(MeterFlags::PKTPS),
        burst: flags.contains(MeterFlags::BURST),
        stats: flags.contains(MeterFlags::STATS),
        bands: bands
            .iter()
            .map(|b| match b {
                MeterBand::Drop { rate, burst_size } => pb::Band {
                    r#type: "drop".into(),
                    rate: *rate,
                    burst_size: *burst_size,
                    prec_level: 0,
                },
                MeterBand::DscpRemark {
                    rate,
                    burst_size,
                    prec_level,
                } => pb::Band {
                    r#type: "dscp_remark".into(),
                    rate: *rate,
                    burst_size: *burst_size,
                    prec_level: u32::from(*prec_level),
                },
                MeterBand::Experimenter { rate, .. } => pb::Band {
                    r#type: "experimenter".into(),
                    rate: *rate,
                    ..pb::Band::default()
                },
            })
            .collect(),
    }
}

pub fn meter_from_pb(
    field: &str,
    m: &pb::Meter,
    command: openflow::messages::MeterModCommand,
) -> Result<MeterMod, ConvertError> {
    let mut flags = if m.pktps {
        MeterFlags::PKTPS
    } else {
        MeterFlags::KBPS
    };
    if m.burst {
        flags |= MeterFlags::BURST;
    }
    if m.stats {
        flags |= MeterFlags::STATS;
    }
    let mut bands = Vec::new();
    for (i, b) in m.bands.iter().enumerate() {
        let bf = format!("{field}.bands[{i}]");
        bands.push(match b.r#type.as_str() {
            "drop" => MeterBand::Drop {
                rate: b.rate,
                burst_size: b.burst_size,
            },
            "dscp_remark" => MeterBand::DscpRemark {
                rate: b.rate,
                burst_size: b.burst_size,
                prec_level: small(&format!("{bf}.prec_level"), b.prec_level)?,
            },
            t => {
                return Err(ConvertError::invalid(
                    &format!("{bf}.type"),
                    format!("{t:?}: expected drop or dscp_remark"),
                ))
            }
        });
    }
    Ok(MeterMod {
        command,
        flags,
        meter_id: m.meter_id,
        bands,
    })
}
