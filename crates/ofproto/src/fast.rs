//! A FLOW_MOD read from its bytes straight into the pipeline's request, for the flow-mods
//! bulk loads send (`ovs-ofctl --bundle add-flows`: 100k of them).
//!
//! The general path decodes the message into `openflow::FlowMod` (a `Vec` of OXM TLVs, one
//! of instructions, one per action list) and converts that ([`crate::convert_flow_mod`]):
//! about 2,800 instructions and eight allocations a flow-mod, half of them freed again at
//! once. This one reads the bytes once and allocates only what the request keeps (the
//! match's field list, the action lists, the instructions).
//!
//! It takes ADD, MODIFY and MODIFY_STRICT with OPENFLOW_BASIC match fields, the standard
//! instructions and the standard actions. Anything else, and anything wrong (whatever the
//! general path would refuse, for whatever reason), is "not mine": it returns `None` and
//! the caller runs the general path, which then gives the request or the error exactly as
//! before. So where it answers, it must answer what the general path answers; the
//! proptest in `tests/fast_flow_mod.rs` checks that over generated, valid and malformed,
//! FLOW_MODs.

use std::sync::Arc;

use openflow::consts::OFPTT_ALL;
use openflow::messages::FlowModCommand as OfCommand;
use openflow::oxm::{OFPMT_OXM, OFPXMC_OPENFLOW_BASIC};
use openflow::{
    Action as OfAction, BasicOxm, MsgType, OxmField, OxmTlv, Prerequisite, OFP_HEADER_LEN,
    OFP_VERSION,
};
use pipeline::flow::{Action, FlowFlags, Instructions, Match, MatchField};
use pipeline::pipeline::{FlowModReq, FlowTables};

use crate::conv::{
    apply_scratch, convert_action, field_of, finish_instructions, write_actions, ActionUse, Known,
};
use crate::types::flow_mod_command;

/// Bytes of FLOW_MOD before its match (header included).
const FIXED: usize = OFP_HEADER_LEN + 40;

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("eight bytes"))
}

/// Up to 16 big-endian bytes as a number.
#[inline]
fn be_n(b: &[u8]) -> u128 {
    b.iter().fold(0u128, |acc, &x| (acc << 8) | u128::from(x))
}

/// One whole FLOW_MOD message (`raw`: header included, exactly its length) as the
/// pipeline's request, checked against `tables` as [`crate::convert_flow_mod`] checks it;
/// `None` when the general path must answer (see the module documentation).
pub fn flow_mod_from_wire(raw: &[u8], tables: &FlowTables) -> Option<FlowModReq> {
    let (fields, instructions) = read_checked(raw, tables)?;
    Some(request(raw, fields, instructions))
}

/// [`flow_mod_from_wire`] built in its box, for a caller that keeps it boxed (a bundle's
/// staged flow-mod): everything is checked before the box is allocated and the request
/// is written into it, where a boxed [`flow_mod_from_wire`] moved the ~600-byte request
/// twice more (out of the reader, into the box).
pub fn flow_mod_from_wire_boxed(raw: &[u8], tables: &FlowTables) -> Option<Box<FlowModReq>> {
    let (fields, instructions) = read_checked(raw, tables)?;
    Some(Box::write(
        Box::new_uninit(),
        request(raw, fields, instructions),
    ))
}

/// Everything of the flow-mod that can refuse it, checked: its match's field list and its
/// instructions. The rest of the request is read from fixed places once these passed.
#[inline(always)]
fn read_checked(raw: &[u8], tables: &FlowTables) -> Option<(Box<[MatchField]>, Arc<Instructions>)> {
    if raw.len() < FIXED + 4
        || raw[0] != OFP_VERSION
        || raw[1] != MsgType::FlowMod.raw()
        || usize::from(be16(raw, 2)) != raw.len()
    {
        return None;
    }
    let table_id = raw[24];
    let command = OfCommand::from_raw(raw[25])?;
    if matches!(command, OfCommand::Delete | OfCommand::DeleteStrict) {
        return None;
    }
    let is_add = command == OfCommand::Add;
    if table_id >= tables.n_tables() && (is_add || table_id != OFPTT_ALL) {
        return None;
    }
    // The match: type, length, padding within the message.
    if be16(raw, FIXED) != OFPMT_OXM {
        return None;
    }
    let match_len = usize::from(be16(raw, FIXED + 2));
    let padded = match_len.checked_add(7)? & !7;
    if match_len < 4 || FIXED + padded > raw.len() {
        return None;
    }
    let fields = read_match(&raw[FIXED + 4..FIXED + match_len])?;
    let instructions = read_instructions(&raw[FIXED + padded..], table_id, &fields, tables)?;
    Some((fields, instructions))
}

/// The request of a FLOW_MOD that [`read_checked`] took; inlined so that it is built
/// where the caller keeps it.
#[inline(always)]
fn request(raw: &[u8], fields: Box<[MatchField]>, instructions: Arc<Instructions>) -> FlowModReq {
    let command = OfCommand::from_raw(raw[25]).expect("checked by read_checked");
    let is_add = command == OfCommand::Add;
    FlowModReq {
        command: flow_mod_command(command),
        table_id: raw[24],
        priority: be16(raw, 30),
        match_: Match::from_field_list(fields),
        instructions,
        cookie: be64(raw, 8),
        cookie_mask: if is_add { 0 } else { be64(raw, 16) },
        idle_timeout: be16(raw, 26),
        hard_timeout: be16(raw, 28),
        flags: FlowFlags(be16(raw, 44)),
        out_port: be32(raw, 36),
        out_group: be32(raw, 40),
    }
}

/// One OPENFLOW_BASIC TLV at the front of `b`: the field, value, mask and the TLV's length.
#[inline]
fn read_oxm(b: &[u8]) -> Option<(OxmField, u128, Option<u128>, usize)> {
    if b.len() < 4 {
        return None;
    }
    let header = be32(b, 0);
    if (header >> 16) as u16 != OFPXMC_OPENFLOW_BASIC {
        return None;
    }
    let field = OxmField::from_raw(((header >> 9) & 0x7f) as u8)?;
    let has_mask = header & 0x100 != 0;
    let len = (header & 0xff) as usize;
    let w = field.width();
    if len != if has_mask { 2 * w } else { w } || b.len() < 4 + len {
        return None;
    }
    let value = be_n(&b[4..4 + w]);
    let mask = has_mask.then(|| be_n(&b[4 + w..4 + 2 * w]));
    Some((field, value, mask, 4 + len))
}

/// Most match fields the direct reader takes (pipeline B's flows have two, a 5-tuple ACL
/// six); a longer match goes the general way.
const MAX_FIELDS: usize = 8;

/// The match's TLVs (`b`: after the match header, without padding): each field once,
/// valid on its own ([`BasicOxm::validate`]), prerequisites met; the list the match keeps.
fn read_match(b: &[u8]) -> Option<Box<[MatchField]>> {
    // Read once into the stack; the list the match keeps is allocated once at its size.
    let mut found = [(OxmField::InPort, 0u128, None::<u128>); MAX_FIELDS];
    let mut n = 0;
    let mut at = 0;
    let mut seen = 0u64;
    while at < b.len() {
        let (field, value, mask, len) = read_oxm(&b[at..])?;
        let bit = 1u64 << field.raw();
        if seen & bit != 0 || n == MAX_FIELDS {
            return None;
        }
        seen |= bit;
        let oxm = match mask {
            Some(m) => BasicOxm::masked(field, value, m)?,
            None => BasicOxm::new(field, value)?,
        };
        oxm.validate().ok()?;
        found[n] = (field, value, mask);
        n += 1;
        at += len;
    }
    let fields = &found[..n];
    let get = |f: OxmField| fields.iter().find(|(g, _, _)| *g == f);
    for &(field, _, _) in fields {
        let ok = match field.prerequisite() {
            Prerequisite::None => true,
            Prerequisite::Present(f) => seen & 1 << f.raw() != 0,
            Prerequisite::Exact { field, values } => {
                get(field).is_some_and(|&(_, v, m)| m.is_none() && values.contains(&v))
            }
            Prerequisite::VlanTagged => get(OxmField::VlanVid).is_some_and(|&(f, v, m)| {
                let present = u128::from(openflow::consts::OFPVID_PRESENT);
                v & present != 0 && m.unwrap_or(f.full_mask()) & present != 0
            }),
        };
        if !ok {
            return None;
        }
    }
    Some(
        fields
            .iter()
            .map(|&(field, value, mask)| MatchField {
                field: field_of(field),
                value,
                mask,
            })
            .collect(),
    )
}

/// Instruction bytes [`read_instructions`] remembers at most (`goto_table:1` is 8 bytes,
/// `actions=output:2` 24).
const REMEMBERED_BYTES: usize = 32;

/// How many recent instruction byte strings [`read_instructions`] remembers.
const REMEMBERED: usize = 4;

/// Instructions read before from these bytes, in this table of a pipeline with this many
/// tables.
struct Remembered {
    table_id: u8,
    n_tables: u8,
    len: u8,
    bytes: [u8; REMEMBERED_BYTES],
    instructions: Arc<Instructions>,
}

thread_local! {
    /// The instructions of recent flow-mods whose reading depends on nothing but their
    /// bytes, their table and the number of tables, with the slot to replace next.
    static REMEMBERED_INSTRUCTIONS: std::cell::RefCell<([Option<Remembered>; REMEMBERED], usize)> =
        const { std::cell::RefCell::new(([const { None }; REMEMBERED], 0)) };
}

/// The instructions (`b`: everything after the match's padding), in the spec's order
/// whatever order they came in, each kind at most once.
///
/// A bulk load repeats a few instruction lists (pipeline B: `goto_table:1`, `output:2`),
/// and reading one, converting its actions and finding the equal instructions already
/// shared ([`crate::conv::finish_instructions`]) cost ~600 instructions a flow-mod. Lists
/// whose reading depends only on their bytes, the table and the number of tables (goto,
/// write-metadata, clear, and apply-actions of outputs only: no meter, group or set-field
/// to look up or check against the match) are remembered by their bytes, and the same
/// bytes in the same place answer the same shared instructions without being read again.
#[inline(always)]
fn read_instructions(
    b: &[u8],
    table_id: u8,
    fields: &[MatchField],
    tables: &FlowTables,
) -> Option<Arc<Instructions>> {
    let n_tables = tables.n_tables();
    let mut key = [0u8; REMEMBERED_BYTES];
    let short = b.len() <= REMEMBERED_BYTES;
    if short {
        key[..b.len()].copy_from_slice(b);
        let hit = REMEMBERED_INSTRUCTIONS.with_borrow(|(slots, _)| {
            slots.iter().flatten().find_map(|r| {
                (usize::from(r.len) == b.len()
                    && r.table_id == table_id
                    && r.n_tables == n_tables
                    && r.bytes == key)
                    .then(|| Arc::clone(&r.instructions))
            })
        });
        if hit.is_some() {
            return hit;
        }
    }
    let (instructions, pure) = read_instructions_once(b, table_id, fields, tables)?;
    if short && pure {
        REMEMBERED_INSTRUCTIONS.with_borrow_mut(|(slots, next)| {
            slots[*next] = Some(Remembered {
                table_id,
                n_tables,
                len: b.len() as u8,
                bytes: key,
                instructions: Arc::clone(&instructions),
            });
            *next = (*next + 1) % REMEMBERED;
        });
    }
    Some(instructions)
}

/// [`read_instructions`] read from the bytes, and whether the answer depends on nothing
/// but them, the table and the number of tables.
fn read_instructions_once(
    b: &[u8],
    table_id: u8,
    fields: &[MatchField],
    tables: &FlowTables,
) -> Option<(Arc<Instructions>, bool)> {
    let mut apply: Option<&[u8]> = None;
    let mut write: Option<&[u8]> = None;
    let mut out = Instructions::default();
    let mut seen = 0u32;
    let mut at = 0;
    while at < b.len() {
        if b.len() - at < 4 {
            return None;
        }
        let ty = be16(b, at);
        let len = usize::from(be16(b, at + 2));
        if len < 8 || len % 8 != 0 || len > b.len() - at {
            return None;
        }
        let i = &b[at..at + len];
        at += len;
        if !(1..=6).contains(&ty) || seen & 1 << ty != 0 {
            return None;
        }
        seen |= 1 << ty;
        match (ty, len) {
            // GOTO_TABLE
            (1, 8) => {
                let g = i[4];
                if g >= tables.n_tables() || (table_id != OFPTT_ALL && g <= table_id) {
                    return None;
                }
                out.goto = Some(g);
            }
            // WRITE_METADATA
            (2, 24) => out.metadata = Some((be64(i, 8), be64(i, 16))),
            (3, _) => write = Some(&i[8..]),
            (4, _) => apply = Some(&i[8..]),
            // CLEAR_ACTIONS
            (5, 8) => out.clear = true,
            // METER
            (6, 8) => {
                let id = be32(i, 4);
                if !tables.meter_exists(id) {
                    return None;
                }
                out.meter = Some(id);
            }
            _ => return None,
        }
    }
    let mut known = Known::from_fields(fields);
    let mut apply_list = None;
    let mut pure = write.is_none() && out.meter.is_none();
    if let Some(list) = apply {
        let mut scratch = apply_scratch();
        read_actions(list, tables, &mut scratch)?;
        for a in &scratch {
            known.step(a).ok()?;
        }
        pure &= scratch.iter().all(|a| matches!(a, Action::Output { .. }));
        apply_list = Some(scratch);
    }
    if let Some(list) = write {
        let mut actions = Vec::new();
        read_actions(list, tables, &mut actions)?;
        out.write = Some(write_actions(actions, known).ok()?);
    }
    Some((finish_instructions(out, apply_list).ok()?, pure))
}

/// One standard action at the front of `b` and its length.
#[inline]
fn read_action(b: &[u8]) -> Option<(OfAction, usize)> {
    if b.len() < 8 {
        return None;
    }
    let ty = be16(b, 0);
    let len = usize::from(be16(b, 2));
    if len < 8 || len % 8 != 0 || len > b.len() {
        return None;
    }
    let a = match (ty, len) {
        (0, 16) => OfAction::Output {
            port: be32(b, 4),
            max_len: be16(b, 8),
        },
        (11, 8) => OfAction::CopyTtlOut,
        (12, 8) => OfAction::CopyTtlIn,
        (15, 8) => OfAction::SetMplsTtl(b[4]),
        (16, 8) => OfAction::DecMplsTtl,
        (17, 8) => OfAction::PushVlan(be16(b, 4)),
        (18, 8) => OfAction::PopVlan,
        (19, 8) => OfAction::PushMpls(be16(b, 4)),
        (20, 8) => OfAction::PopMpls(be16(b, 4)),
        (21, 8) => OfAction::SetQueue(be32(b, 4)),
        (22, 8) => OfAction::Group(be32(b, 4)),
        (23, 8) => OfAction::SetNwTtl(b[4]),
        (24, 8) => OfAction::DecNwTtl,
        (25, _) => {
            let (field, value, mask, oxm_len) = read_oxm(&b[4..len])?;
            if mask.is_some() || oxm_len > len - 4 {
                return None;
            }
            OfAction::SetField(OxmTlv::Basic(BasicOxm::new(field, value)?))
        }
        (26, 8) => OfAction::PushPbb(be16(b, 4)),
        (27, 8) => OfAction::PopPbb,
        _ => return None,
    };
    Some((a, len))
}

/// An action list that fills `b` exactly, converted for a flow entry, appended to `out`
/// (sized to the list first: a write-actions list is kept as it is).
fn read_actions(b: &[u8], tables: &FlowTables, out: &mut Vec<Action>) -> Option<()> {
    let mut n = 0;
    let mut at = 0;
    while at < b.len() {
        let (_, len) = read_action(&b[at..])?;
        n += 1;
        at += len;
    }
    out.reserve_exact(n);
    let mut at = 0;
    while at < b.len() {
        let (a, len) = read_action(&b[at..])?;
        out.push(convert_action(&a, tables, ActionUse::Flow).ok()?);
        at += len;
    }
    Some(())
}
