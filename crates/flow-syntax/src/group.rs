//! Groups: `group_id=1,type=select,bucket=weight:50,output:1,bucket=weight:50,output:2`.

use openflow::consts::{OFPG_ALL, OFPG_ANY, OFPP_ANY};
use openflow::messages::{Bucket, GroupMod, GroupModCommand, GroupType};
use openflow::multipart::GroupDesc;

use crate::actions::{format_actions, parse_action};
use crate::fields::{format_port, parse_port};
use crate::{key_value, parse_uint, split_top, SyntaxError};

fn group_type(s: &str) -> Result<GroupType, SyntaxError> {
    Ok(match s {
        "all" => GroupType::All,
        "select" => GroupType::Select,
        "indirect" => GroupType::Indirect,
        "ff" | "fast_failover" => GroupType::FastFailover,
        _ => {
            return Err(crate::bad(
                "type",
                s,
                "expected all, select, indirect or ff",
            ))
        }
    })
}

pub(crate) fn type_name(t: GroupType) -> &'static str {
    match t {
        GroupType::All => "all",
        GroupType::Select => "select",
        GroupType::Indirect => "indirect",
        GroupType::FastFailover => "ff",
    }
}

/// Splits `...,bucket=A,bucket=B` into the head and each bucket's text.
fn split_buckets(text: &str) -> (&str, Vec<&str>) {
    let mut cuts = Vec::new();
    let mut search = 0;
    while let Some(i) = text[search..].find("bucket=") {
        let at = search + i;
        if at == 0 || matches!(text.as_bytes()[at - 1], b',' | b' ') {
            cuts.push(at);
        }
        search = at + 1;
    }
    let Some(&first) = cuts.first() else {
        return (text, Vec::new());
    };
    let mut buckets = Vec::new();
    for (n, &c) in cuts.iter().enumerate() {
        let end = cuts.get(n + 1).copied().unwrap_or(text.len());
        buckets.push(text[c + "bucket=".len()..end].trim_end_matches([',', ' ']));
    }
    (&text[..first], buckets)
}

fn parse_bucket(text: &str, select: bool) -> Result<Bucket, SyntaxError> {
    let mut b = Bucket {
        weight: if select { 1 } else { 0 },
        watch_port: OFPP_ANY,
        watch_group: OFPG_ANY,
        actions: Vec::new(),
    };
    let (head, actions) = match text.find("actions=") {
        Some(i) => (&text[..i], Some(&text[i + "actions=".len()..])),
        None => (text, None),
    };
    let mut action_toks: Vec<&str> = Vec::new();
    for tok in split_top(head)? {
        let (key, val) = key_value(tok);
        let need = || val.ok_or_else(|| SyntaxError::MissingValue(key.to_owned()));
        match key {
            "weight" => b.weight = parse_uint(key, need()?, 0xffff)? as u16,
            "watch_port" => b.watch_port = parse_port(key, need()?)?,
            "watch_group" => b.watch_group = parse_uint(key, need()?, u128::from(u32::MAX))? as u32,
            _ => action_toks.push(tok),
        }
    }
    if let Some(a) = actions {
        action_toks.extend(split_top(a)?);
    }
    for t in action_toks {
        b.actions.extend(parse_action(t)?);
    }
    Ok(b)
}

/// Parses a group for `command`; deletes need only `group_id` (absent or
/// `all`: every group).
pub fn parse_group_mod(text: &str, command: GroupModCommand) -> Result<GroupMod, SyntaxError> {
    let (head, buckets) = split_buckets(text.trim());
    let mut id = None;
    let mut ty = None;
    for tok in split_top(head)? {
        let (key, val) = key_value(tok);
        let v = val.ok_or_else(|| SyntaxError::MissingValue(key.to_owned()))?;
        match key {
            "group_id" if v == "all" => id = Some(OFPG_ALL),
            "group_id" => id = Some(parse_uint(key, v, u128::from(u32::MAX))? as u32),
            "type" => ty = Some(group_type(v)?),
            _ => return Err(SyntaxError::UnknownKey(key.to_owned())),
        }
    }
    if command == GroupModCommand::Delete {
        if !buckets.is_empty() {
            return Err(SyntaxError::NotAllowed {
                key: "bucket".into(),
                why: "deletes take no buckets".into(),
            });
        }
        return Ok(GroupMod {
            command,
            group_type: GroupType::All,
            group_id: id.unwrap_or(OFPG_ALL),
            buckets: Vec::new(),
        });
    }
    let group_id = id.ok_or_else(|| SyntaxError::Required("group_id".into()))?;
    let group_type = ty.ok_or_else(|| SyntaxError::Required("type".into()))?;
    let buckets = buckets
        .into_iter()
        .map(|b| parse_bucket(b, group_type == GroupType::Select))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(GroupMod {
        command,
        group_type,
        group_id,
        buckets,
    })
}

/// A group as ovs-ofctl dump-groups prints it (and as add-group takes it).
pub fn format_group(g: &GroupDesc) -> String {
    let mut out = format!("group_id={},type={}", g.group_id, type_name(g.group_type));
    for b in &g.buckets {
        out.push_str(",bucket=");
        if g.group_type == GroupType::Select {
            out.push_str(&format!("weight:{},", b.weight));
        }
        if b.watch_port != OFPP_ANY {
            out.push_str(&format!("watch_port:{},", format_port(b.watch_port)));
        }
        if b.watch_group != OFPG_ANY {
            out.push_str(&format!("watch_group:{},", b.watch_group));
        }
        out.push_str("actions=");
        out.push_str(&if b.actions.is_empty() {
            "drop".to_owned()
        } else {
            format_actions(&b.actions)
        });
    }
    out
}
