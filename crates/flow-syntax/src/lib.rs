//! ovs-ofctl's text syntax for flows, groups and meters, to and from the
//! OpenFlow 1.3 messages of the `openflow` crate.
//!
//! People who run Open vSwitch already write `table=0,priority=100,in_port=1,
//! actions=output:2`; ferroflowctl and the gRPC API take the same strings, and
//! dumps print entries the way `ovs-ofctl -O OpenFlow13 dump-flows` does, so
//! that output can be pasted back as input. The common match fields and
//! actions are covered; anything else is refused with an error that names the
//! unknown key rather than being ignored.

mod actions;
mod fast;
mod fields;
mod flow;
mod group;
mod meter;
mod nx;

pub use actions::{format_action, format_actions, format_instructions, parse_action};
pub use fast::FlowLines;
pub use fields::{field_by_name, format_masked, format_port, format_value, oxm_name, parse_port};
pub use flow::{
    format_flow, format_match, parse_flow_mod, parse_flow_mod_into, parse_match, parse_match_field,
    FlowText,
};
pub use group::{format_group, parse_group_mod};
pub use meter::{format_meter, parse_meter_mod};

/// Why a text could not be turned into an OpenFlow message. Each names the
/// key, action or value at fault, as the user wrote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    #[error("unknown key {0:?}")]
    UnknownKey(String),
    #[error("unknown action {0:?}")]
    UnknownAction(String),
    #[error("{key}: bad value {value:?}: {why}")]
    BadValue {
        key: String,
        value: String,
        why: String,
    },
    #[error("{0}: needs a value")]
    MissingValue(String),
    #[error("{key}: {why}")]
    NotAllowed { key: String, why: String },
    #[error("{field}: match prerequisites not met: {needs}")]
    Prerequisite { field: String, needs: String },
    #[error("{0}: required")]
    Required(String),
    #[error("unbalanced parentheses in {0:?}")]
    Parentheses(String),
}

pub(crate) fn bad(key: &str, value: &str, why: impl Into<String>) -> SyntaxError {
    SyntaxError::BadValue {
        key: key.to_owned(),
        value: value.to_owned(),
        why: why.into(),
    }
}

/// Parses an unsigned integer in decimal or `0x` hexadecimal, no larger than `max`.
pub(crate) fn parse_uint(key: &str, s: &str, max: u128) -> Result<u128, SyntaxError> {
    let t = s.trim();
    let v = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u128::from_str_radix(h, 16)
    } else {
        t.parse::<u128>()
    }
    .map_err(|_| bad(key, s, "not a number"))?;
    if v > max {
        return Err(bad(key, s, format!("larger than {max}")));
    }
    Ok(v)
}

/// Splits on commas (and whitespace, as ovs-ofctl does) outside parentheses.
pub(crate) fn split_top(s: &str) -> Result<Vec<&str>, SyntaxError> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(SyntaxError::Parentheses(s.to_owned()));
                }
            }
            ',' | ' ' | '\t' | '\n' if depth == 0 => {
                if i > start {
                    out.push(&s[start..i]);
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(SyntaxError::Parentheses(s.to_owned()));
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    Ok(out)
}

/// `key=value` or `key:value` (ovs-ofctl accepts both), or a bare `key`.
pub(crate) fn key_value(tok: &str) -> (&str, Option<&str>) {
    match tok.find(['=', ':']) {
        Some(i) => (&tok[..i], Some(&tok[i + 1..])),
        None => (tok, None),
    }
}
