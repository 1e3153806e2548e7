//! Conversion between the OpenFlow codec's types and the pipeline's, with the refusals the
//! spec asks for. Everything a flow-mod can get wrong is found here, before any state
//! changes, so a refused request leaves the tables as they were.

use std::sync::Arc;
use std::time::Duration;

use openflow::consts::{
    OFPP_ALL, OFPP_CONTROLLER, OFPP_FLOOD, OFPP_IN_PORT, OFPP_LOCAL, OFPP_MAX, OFPP_NORMAL,
    OFPP_TABLE, OFPTT_ALL,
};
use openflow::messages::{
    FlowMod, FlowModCommand, FlowRemoved, FlowRemovedReason, GroupMod, MeterBand as OfBand,
    MeterMod,
};
use openflow::multipart::{FlowStats, GroupDesc};
use openflow::oxm::BasicOxm;
use openflow::{
    Action as OfAction, Instruction as OfInstruction, Match as OfMatch, OxmField, OxmTlv,
    Prerequisite,
};
use packet::Field;

use pipeline::flow::{Action, ActionSet, FlowFlags, Instructions, Match, MatchField, WriteActions};
use pipeline::group::{Bucket, GroupEntry, GroupModReq};
use pipeline::meter::{Band, BandKind, MeterModReq};
use pipeline::pipeline::{FlowCounts, FlowModReq, FlowTables};
use pipeline::table::{RemovedFlow, RemovedReason};
use pipeline::PipelineError;

use crate::types::{
    flow_flags, flow_flags_to_of, flow_mod_command, group_mod_command, group_type,
    group_type_to_of, match_field_error, meter_flags, meter_mod_command,
};

pub(crate) fn field_of(f: OxmField) -> Field {
    Field::from_oxm(f.raw()).expect("the 40 basic OXM fields are the 40 key fields")
}

fn oxm_of(f: Field) -> OxmField {
    OxmField::from_raw(f.oxm_field()).expect("the 40 key fields are the 40 basic OXM fields")
}

/// An OFPMT_OXM match: per-field rules (BAD_MASK, BAD_VALUE, BAD_WILDCARDS), experimenter
/// fields (BAD_FIELD) and prerequisites (BAD_PREREQ).
pub fn convert_match(m: &OfMatch) -> Result<Match, PipelineError> {
    Ok(Match::from_field_list(match_fields(m)?))
}

/// [`convert_match`]'s checks and field list, without the key words: a flow-mod builds
/// those where its request is built (a `Match` is 530 bytes, each move of it a copy).
fn match_fields(m: &OfMatch) -> Result<Box<[MatchField]>, PipelineError> {
    let mut fields = Vec::with_capacity(m.fields.len());
    for tlv in &m.fields {
        if let OxmTlv::Nxm(n) = tlv {
            fields.push(crate::nx::match_field(n)?);
            continue;
        }
        let OxmTlv::Basic(b) = tlv else {
            return Err(PipelineError::MatchExperimenter);
        };
        b.validate()
            .map_err(|c| PipelineError::MatchField(match_field_error(c)))?;
        fields.push(MatchField {
            field: field_of(b.field()),
            value: b.value(),
            mask: b.mask(),
        });
    }
    m.check_prerequisites()
        .map_err(|_| PipelineError::MatchPrerequisite)?;
    // The list was sized to the match: boxing it keeps its allocation.
    Ok(fields.into_boxed_slice())
}

/// What is known, along an action list, about the fields set-field prerequisites look at.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Known {
    eth_type: Option<u128>,
    ip_proto: Option<u128>,
    icmpv6_type: Option<u128>,
    /// After a pop of MPLS or PBB the payload is whatever the controller says it is: the
    /// switch cannot tell, so it stops checking.
    anything: bool,
}

impl Known {
    /// What a match's field list (as [`Match::from_field_list`] takes it) pins exactly:
    /// what [`Match::exact_value`] reads from the key words, read from the list instead
    /// (two 256-byte keys built and zeroed for each of the three fields were about 200
    /// instructions of every flow-mod's conversion).
    pub(crate) fn from_fields(fields: &[MatchField]) -> Known {
        let mut eth_type = (0u128, 0u128);
        let mut ip_proto = (0u128, 0u128);
        let mut icmpv6_type = (0u128, 0u128);
        for f in fields {
            let slot = match f.field {
                Field::EthType => &mut eth_type,
                Field::IpProto => &mut ip_proto,
                Field::Icmpv6Type => &mut icmpv6_type,
                _ => continue,
            };
            // The bits the key gets, as `Match::from_field_list` ORs them in.
            let m = f.mask.unwrap_or(u128::MAX) & f.field.value_mask();
            slot.0 |= f.value & m;
            slot.1 |= m;
        }
        let exact = |field: Field, (value, mask): (u128, u128)| {
            (mask == field.value_mask()).then_some(value)
        };
        Known {
            eth_type: exact(Field::EthType, eth_type),
            ip_proto: exact(Field::IpProto, ip_proto),
            icmpv6_type: exact(Field::Icmpv6Type, icmpv6_type),
            anything: false,
        }
    }

    fn lenient() -> Known {
        Known {
            eth_type: None,
            ip_proto: None,
            icmpv6_type: None,
            anything: true,
        }
    }

    fn check(&self, field: Field) -> Result<(), PipelineError> {
        if self.anything || field.is_register() || field == Field::Metadata {
            return Ok(());
        }
        let ok = match oxm_of(field).prerequisite() {
            Prerequisite::Exact { field: pf, values } => {
                let known = match pf {
                    OxmField::EthType => self.eth_type,
                    OxmField::IpProto => self.ip_proto,
                    OxmField::Icmpv6Type => self.icmpv6_type,
                    _ => return Ok(()),
                };
                known.is_some_and(|v| values.contains(&v))
            }
            _ => true,
        };
        if ok {
            Ok(())
        } else {
            Err(PipelineError::SetFieldPrerequisite(field))
        }
    }

    /// Checks `a` and records what it changes.
    pub(crate) fn step(&mut self, a: &Action) -> Result<(), PipelineError> {
        match *a {
            Action::SetField { field, value } => {
                self.check(field)?;
                match field {
                    Field::EthType => self.eth_type = Some(value),
                    Field::IpProto => self.ip_proto = Some(value),
                    Field::Icmpv6Type => self.icmpv6_type = Some(value),
                    _ => {}
                }
            }
            Action::PushMpls(t) => {
                *self = Known {
                    eth_type: Some(t.into()),
                    ip_proto: None,
                    icmpv6_type: None,
                    anything: false,
                }
            }
            Action::PushPbb(t) => {
                *self = Known {
                    eth_type: Some(t.into()),
                    ip_proto: None,
                    icmpv6_type: None,
                    anything: false,
                }
            }
            Action::PopMpls(_) | Action::PopPbb => *self = Known::lenient(),
            // Reads and writes of header fields need their headers, as set-field does; the
            // value written is not known (a move) or partial (a load), so nothing is
            // recorded.
            Action::Move { .. } | Action::SetFieldMasked { .. } => {
                for f in crate::nx::fields_used(a).into_iter().flatten() {
                    self.check(f)?;
                }
                match crate::nx::fields_used(a) {
                    [_, Some(Field::EthType)] | [Some(Field::EthType), None] => {
                        self.eth_type = None
                    }
                    [_, Some(Field::IpProto)] | [Some(Field::IpProto), None] => {
                        self.ip_proto = None
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Where an action list is used: it decides which output ports and group references
/// are valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionUse {
    /// A flow entry: groups must exist.
    Flow,
    /// A group bucket: group references are checked by the group-mod (loops, self).
    Bucket,
    /// PACKET_OUT: OFPP_TABLE is allowed.
    PacketOut,
}

/// One action, without prerequisite checks (see [`convert_actions`]).
pub fn convert_action(
    a: &OfAction,
    tables: &FlowTables,
    usage: ActionUse,
) -> Result<Action, PipelineError> {
    Ok(match a {
        OfAction::Output { port, max_len } => {
            let ok = match *port {
                0 => false,
                p if p <= OFPP_MAX => true,
                OFPP_IN_PORT | OFPP_NORMAL | OFPP_FLOOD | OFPP_ALL | OFPP_CONTROLLER
                | OFPP_LOCAL => true,
                OFPP_TABLE => usage == ActionUse::PacketOut,
                _ => false,
            };
            if !ok {
                return Err(PipelineError::BadOutPort(*port));
            }
            Action::Output {
                port: *port,
                max_len: *max_len,
            }
        }
        OfAction::Group(g) => {
            if usage != ActionUse::Bucket && !tables.group_exists(*g) {
                return Err(PipelineError::BadOutGroup(*g));
            }
            Action::Group(*g)
        }
        OfAction::SetQueue(q) => Action::SetQueue(*q),
        OfAction::SetField(OxmTlv::Nxm(n)) => crate::nx::set_field(n)?,
        // A conjunction only makes sense in a flow entry's apply-actions.
        OfAction::Nx(openflow::NxAction::Conjunction { .. }) if usage != ActionUse::Flow => {
            return Err(PipelineError::BadConjunction)
        }
        OfAction::Nx(nx) => crate::nx::convert(nx)?,
        OfAction::SetField(tlv) => {
            let OxmTlv::Basic(b) = tlv else {
                return Err(PipelineError::SetFieldExperimenter);
            };
            let field = field_of(b.field());
            if matches!(
                field,
                Field::InPort | Field::InPhyPort | Field::Metadata | Field::Ipv6Exthdr
            ) {
                return Err(PipelineError::SetFieldNotSettable(field));
            }
            if b.value() & !field.value_mask() != 0 {
                return Err(PipelineError::SetFieldValue(field));
            }
            Action::SetField {
                field,
                value: b.value(),
            }
        }
        OfAction::PushVlan(t) => {
            if *t != 0x8100 && *t != 0x88a8 {
                return Err(PipelineError::BadPushEthertype(*t));
            }
            Action::PushVlan(*t)
        }
        OfAction::PopVlan => Action::PopVlan,
        OfAction::PushMpls(t) => {
            if *t != 0x8847 && *t != 0x8848 {
                return Err(PipelineError::BadPushEthertype(*t));
            }
            Action::PushMpls(*t)
        }
        OfAction::PopMpls(t) => Action::PopMpls(*t),
        OfAction::PushPbb(t) => {
            if *t != 0x88e7 {
                return Err(PipelineError::BadPushEthertype(*t));
            }
            Action::PushPbb(*t)
        }
        OfAction::PopPbb => Action::PopPbb,
        OfAction::SetMplsTtl(t) => Action::SetMplsTtl(*t),
        OfAction::DecMplsTtl => Action::DecMplsTtl,
        OfAction::SetNwTtl(t) => Action::SetNwTtl(*t),
        OfAction::DecNwTtl => Action::DecNwTtl,
        OfAction::CopyTtlOut => Action::CopyTtlOut,
        OfAction::CopyTtlIn => Action::CopyTtlIn,
        OfAction::Experimenter { .. } => return Err(PipelineError::ActionExperimenter),
    })
}

/// A list of actions executed in order (apply-actions, buckets, packet-out).
pub fn convert_actions(
    actions: &[OfAction],
    tables: &FlowTables,
    usage: ActionUse,
) -> Result<Vec<Action>, PipelineError> {
    // Sized to the list: boxing it then keeps the allocation (a collect into a `Result`
    // grows from 4 and shrinks again).
    let mut out = Vec::with_capacity(actions.len());
    for a in actions {
        out.push(convert_action(a, tables, usage)?);
    }
    Ok(out)
}

/// A write-actions instruction from its converted list: no extensions in an action set,
/// and the set's actions checked in the order they will run, after what `known` says
/// (the match and the apply-actions before it).
pub(crate) fn write_actions(
    list: Vec<Action>,
    known: Known,
) -> Result<Box<WriteActions>, PipelineError> {
    if list.iter().any(Action::is_extension) {
        return Err(PipelineError::ExtensionInActionSet);
    }
    let mut set = ActionSet::default();
    for a in &list {
        set.write(a);
    }
    let mut k = known;
    for a in set.ordered() {
        k.step(&a)?;
    }
    Ok(Box::new(WriteActions {
        list: list.into(),
        set,
    }))
}

fn convert_instructions(
    insts: &[OfInstruction],
    table_id: u8,
    fields: &[MatchField],
    tables: &FlowTables,
) -> Result<Arc<Instructions>, PipelineError> {
    let mut out = Instructions::default();
    let mut apply: Option<Vec<Action>> = None;
    let mut seen = 0u32;
    let mut known = Known::from_fields(fields);
    // Instructions run in the spec's order whatever order they were given in: by kind,
    // those of one kind in the order given (what a stable sort gives, without a list
    // allocated per flow-mod).
    let order = |i: &OfInstruction| match i {
        OfInstruction::Meter(_) => 0u8,
        OfInstruction::ApplyActions(_) => 1,
        OfInstruction::ClearActions => 2,
        OfInstruction::WriteActions(_) => 3,
        OfInstruction::WriteMetadata { .. } => 4,
        OfInstruction::GotoTable(_) => 5,
        OfInstruction::Experimenter { .. } => 6,
    };
    // Given in order (a single instruction always is), they are taken as they are; the
    // search by kind below cost ~70 instructions a flow-mod.
    let in_order = insts.windows(2).all(|w| order(&w[0]) <= order(&w[1]));
    let kinds = insts.iter().fold(0u8, |k, i| k | 1 << order(i));
    let by_kind = (0..if in_order { 0 } else { 7u8 })
        .filter(|k| kinds & 1 << k != 0)
        .flat_map(|k| insts.iter().filter(move |i| order(i) == k));
    let given = insts.iter().take(if in_order { insts.len() } else { 0 });
    for inst in given.chain(by_kind) {
        let bit = 1u32 << (inst.instruction_type().raw() & 31);
        if seen & bit != 0 {
            return Err(PipelineError::DuplicateInstruction);
        }
        seen |= bit;
        match inst {
            OfInstruction::GotoTable(g) => {
                if *g >= tables.n_tables() {
                    return Err(PipelineError::GotoBeyondLast(*g));
                }
                // For OFPTT_ALL the tables are known only once the entries are selected:
                // FlowTables checks the goto against each table it modifies.
                if table_id != OFPTT_ALL && *g <= table_id {
                    return Err(PipelineError::GotoBackward {
                        from: table_id,
                        to: *g,
                    });
                }
                out.goto = Some(*g);
            }
            OfInstruction::WriteMetadata { metadata, mask } => {
                out.metadata = Some((*metadata, *mask))
            }
            OfInstruction::WriteActions(list) => {
                let list = convert_actions(list, tables, ActionUse::Flow)?;
                out.write = Some(write_actions(list, known)?);
            }
            OfInstruction::ApplyActions(list) => {
                // Converted into this thread's scratch list: most batches repeat a few
                // lists, and one equal to a recent one's needs no allocation of its own.
                let mut scratch = apply_scratch();
                for a in list {
                    scratch.push(convert_action(a, tables, ActionUse::Flow)?);
                }
                for a in &scratch {
                    known.step(a)?;
                }
                apply = Some(scratch);
            }
            OfInstruction::ClearActions => out.clear = true,
            OfInstruction::Meter(id) => {
                if !tables.meter_exists(*id) {
                    return Err(PipelineError::UnknownMeterInInstruction(*id));
                }
                out.meter = Some(*id);
            }
            OfInstruction::Experimenter { .. } => {
                return Err(PipelineError::InstructionExperimenter)
            }
        }
    }
    finish_instructions(out, apply)
}

/// This thread's scratch list for converting apply-actions into, empty.
#[inline]
pub(crate) fn apply_scratch() -> Vec<Action> {
    let mut scratch = APPLY_SCRATCH.take();
    scratch.clear();
    scratch
}

/// The instructions `out` with `apply` (a list from [`apply_scratch`], given back to it)
/// as their apply-actions: the conjunction rules checked, and shared with equal recent
/// instructions ([`shared_instructions`]) without allocating for a list already kept.
// Inlined: a call here cost ~50 instructions a flow-mod.
#[inline(always)]
pub(crate) fn finish_instructions(
    mut out: Instructions,
    apply: Option<Vec<Action>>,
) -> Result<Arc<Instructions>, PipelineError> {
    let Some(list) = apply else {
        pipeline::conjunction::check(&out)?;
        return Ok(shared_instructions(out));
    };
    let conjunction = list.iter().any(|a| matches!(a, Action::Conjunction { .. }));
    if out.write.is_none() && !conjunction {
        // Nothing for the conjunction rules to look at (they need a conjunction action).
        let shared = shared_with_apply(out, Some(&list));
        APPLY_SCRATCH.set(list);
        return Ok(shared);
    }
    out.apply = Some(list.as_slice().into());
    APPLY_SCRATCH.set(list);
    pipeline::conjunction::check(&out)?;
    Ok(shared_instructions(out))
}

/// How many recently made instructions [`shared_instructions`] keeps per thread.
const SHARED_INSTRUCTIONS: usize = 4;

thread_local! {
    /// The instructions last handed out, most flow-mods of a batch repeat one of a few
    /// (pipeline B: `goto_table:1`, `output:2`), with the slot to replace next.
    /// Where apply-actions are converted before [`shared_with_apply`] looks for an equal
    /// list (its capacity kept from one flow-mod to the next).
    static APPLY_SCRATCH: std::cell::Cell<Vec<Action>> = const { std::cell::Cell::new(Vec::new()) };
    static RECENT_INSTRUCTIONS: std::cell::RefCell<(
        [Option<Arc<Instructions>>; SHARED_INSTRUCTIONS],
        usize,
    )> = const { std::cell::RefCell::new((
        [const { None }; SHARED_INSTRUCTIONS],
        0,
    )) };
}

/// `i` behind an `Arc`, shared with an equal one made recently on this thread: entries
/// never change their instructions in place (a modify replaces the `Arc`), so sharing is
/// invisible but for the memory. A fresh `Arc` was a fresh allocation per flow (~170
/// instructions and 80 bytes kept per entry); a shared one is a reference count. Only
/// instructions without write-actions are shared (comparing an action set is 2 KiB).
pub(crate) fn shared_instructions(mut i: Instructions) -> Arc<Instructions> {
    if i.write.is_some() {
        return Arc::new(i);
    }
    let apply = i.apply.take();
    shared_with_apply(i, apply.as_deref())
}

/// [`shared_instructions`] of `rest` (no apply-actions, no write-actions) with `apply` as
/// its apply-actions: the list is copied only when no recent instructions are equal.
fn shared_with_apply(mut rest: Instructions, apply: Option<&[Action]>) -> Arc<Instructions> {
    RECENT_INSTRUCTIONS.with(|recent| {
        let mut recent = recent.borrow_mut();
        let (slots, next) = &mut *recent;
        let same = |s: &Instructions| {
            s.write.is_none()
                && s.apply.as_deref() == apply
                && s.meter == rest.meter
                && s.clear == rest.clear
                && s.metadata == rest.metadata
                && s.goto == rest.goto
        };
        if let Some(hit) = slots.iter().flatten().find(|s| same(s)) {
            return Arc::clone(hit);
        }
        rest.apply = apply.map(Into::into);
        let made = Arc::new(rest);
        slots[*next] = Some(Arc::clone(&made));
        *next = (*next + 1) % SHARED_INSTRUCTIONS;
        made
    })
}

/// FLOW_MOD: table id, then match, then instructions (DELETE ignores instructions).
pub fn convert_flow_mod(fm: &FlowMod, tables: &FlowTables) -> Result<FlowModReq, PipelineError> {
    let n = tables.n_tables();
    let is_add = fm.command == FlowModCommand::Add;
    if fm.table_id >= n && (is_add || fm.table_id != OFPTT_ALL) {
        return Err(PipelineError::BadTableId(fm.table_id));
    }
    let fields = match_fields(&fm.match_)?;
    let instructions = match fm.command {
        FlowModCommand::Delete | FlowModCommand::DeleteStrict => {
            shared_instructions(Instructions::default())
        }
        _ => convert_instructions(&fm.instructions, fm.table_id, &fields, tables)?,
    };
    // Everything that can fail has been checked: the match's key words are built where
    // the request is.
    Ok(FlowModReq {
        command: flow_mod_command(fm.command),
        table_id: fm.table_id,
        priority: fm.priority,
        match_: Match::from_field_list(fields),
        instructions,
        cookie: fm.cookie,
        cookie_mask: if is_add { 0 } else { fm.cookie_mask },
        idle_timeout: fm.idle_timeout,
        hard_timeout: fm.hard_timeout,
        flags: flow_flags(fm.flags),
        out_port: fm.out_port,
        out_group: fm.out_group,
    })
}

/// What a converted flow-mod refers to that may be gone by the time it is applied: its
/// meter and the groups its actions use. A bundle keeps its flow-mods converted from the
/// moment they are added ([`convert_flow_mod`] against the tables then); its commit
/// checks these again against the tables as they are, in the order and with the errors
/// [`convert_flow_mod`] would give now (nothing else it checks depends on the tables but
/// their number, which does not change).
pub fn check_references(req: &FlowModReq, tables: &FlowTables) -> Result<(), PipelineError> {
    let insts = &req.instructions;
    if let Some(m) = insts.meter {
        if !tables.meter_exists(m) {
            return Err(PipelineError::UnknownMeterInInstruction(m));
        }
    }
    let apply = insts.apply.iter().flat_map(|l| l.iter());
    let write = insts.write.iter().flat_map(|w| w.list.iter());
    for a in apply.chain(write) {
        if let Action::Group(g) = a {
            if !tables.group_exists(*g) {
                return Err(PipelineError::BadOutGroup(*g));
            }
        }
    }
    Ok(())
}

/// GROUP_MOD: bucket actions; group existence, loops and bucket rules are the group
/// table's to check.
pub fn convert_group_mod(gm: &GroupMod, tables: &FlowTables) -> Result<GroupModReq, PipelineError> {
    let mut buckets = Vec::with_capacity(gm.buckets.len());
    for b in &gm.buckets {
        buckets.push(Bucket {
            weight: b.weight,
            watch_port: b.watch_port,
            watch_group: b.watch_group,
            actions: convert_actions(&b.actions, tables, ActionUse::Bucket)?.into(),
        });
    }
    Ok(GroupModReq {
        command: group_mod_command(gm.command),
        kind: group_type(gm.group_type),
        group_id: gm.group_id,
        buckets,
    })
}

/// METER_MOD: the id, flag and band checks are the meter table's, in its order; a band
/// type the switch does not implement stays in place as `None` for it to refuse.
pub fn convert_meter_mod(mm: &MeterMod) -> MeterModReq {
    MeterModReq {
        command: meter_mod_command(mm.command),
        meter_id: mm.meter_id,
        flags: meter_flags(mm.flags),
        bands: mm
            .bands
            .iter()
            .map(|b| match *b {
                OfBand::Drop { rate, burst_size } => Some(Band {
                    kind: BandKind::Drop,
                    rate,
                    burst: burst_size,
                }),
                OfBand::DscpRemark {
                    rate,
                    burst_size,
                    prec_level,
                } => Some(Band {
                    kind: BandKind::DscpRemark(prec_level),
                    rate,
                    burst: burst_size,
                }),
                OfBand::Experimenter { .. } => None,
            })
            .collect(),
    }
}

/// PACKET_OUT's actions; `in_port` must be a port number, CONTROLLER or LOCAL.
pub fn convert_packet_out(
    in_port: u32,
    actions: &[OfAction],
    tables: &FlowTables,
) -> Result<Vec<Action>, PipelineError> {
    if in_port == 0 || (in_port > OFPP_MAX && in_port != OFPP_CONTROLLER && in_port != OFPP_LOCAL) {
        return Err(PipelineError::BadInPort(in_port));
    }
    convert_actions(actions, tables, ActionUse::PacketOut)
}

// ---- back to the wire -----------------------------------------------------------------

pub fn match_to_of(m: &Match) -> OfMatch {
    let fields = m
        .fields()
        .iter()
        .filter_map(|f| {
            if f.field.is_register() {
                return crate::nx::match_tlv(f);
            }
            let of = oxm_of(f.field);
            let b = match f.mask {
                Some(mask) => BasicOxm::masked(of, f.value & mask, mask),
                None => BasicOxm::new(of, f.value),
            }?;
            Some(OxmTlv::Basic(b))
        })
        .collect();
    OfMatch::new(fields)
}

pub fn action_to_of(a: &Action) -> OfAction {
    if let Some(of) = crate::nx::to_of(a) {
        return of;
    }
    match *a {
        Action::Output { port, max_len } => OfAction::Output { port, max_len },
        Action::Group(g) => OfAction::Group(g),
        Action::SetQueue(q) => OfAction::SetQueue(q),
        Action::SetField { field, value } => {
            OfAction::set_field(oxm_of(field), value).unwrap_or(OfAction::SetField(OxmTlv::Basic(
                BasicOxm::new(oxm_of(field), 0).expect("zero fits every field"),
            )))
        }
        Action::PushVlan(t) => OfAction::PushVlan(t),
        Action::PopVlan => OfAction::PopVlan,
        Action::PushMpls(t) => OfAction::PushMpls(t),
        Action::PopMpls(t) => OfAction::PopMpls(t),
        Action::PushPbb(t) => OfAction::PushPbb(t),
        Action::PopPbb => OfAction::PopPbb,
        Action::SetMplsTtl(t) => OfAction::SetMplsTtl(t),
        Action::DecMplsTtl => OfAction::DecMplsTtl,
        Action::SetNwTtl(t) => OfAction::SetNwTtl(t),
        Action::DecNwTtl => OfAction::DecNwTtl,
        Action::CopyTtlOut => OfAction::CopyTtlOut,
        Action::CopyTtlIn => OfAction::CopyTtlIn,
        // Extensions all have a wire form (`nx::to_of`); one that could not be built (a
        // value that no longer fits) is dumped as a note saying so rather than lost.
        Action::Resubmit { .. }
        | Action::SetFieldMasked { .. }
        | Action::Move { .. }
        | Action::Note(_)
        | Action::CtClear
        | Action::Ct(_)
        | Action::Conjunction { .. } => {
            OfAction::Nx(openflow::NxAction::Note(b"unencodable".to_vec()))
        }
    }
}

/// Instructions in execution order.
pub fn instructions_to_of(i: &Instructions) -> Vec<OfInstruction> {
    let mut out = Vec::new();
    if let Some(m) = i.meter {
        out.push(OfInstruction::Meter(m));
    }
    if let Some(a) = &i.apply {
        out.push(OfInstruction::ApplyActions(
            a.iter().map(action_to_of).collect(),
        ));
    }
    if i.clear {
        out.push(OfInstruction::ClearActions);
    }
    if let Some(w) = &i.write {
        out.push(OfInstruction::WriteActions(
            w.list.iter().map(action_to_of).collect(),
        ));
    }
    if let Some((metadata, mask)) = i.metadata {
        out.push(OfInstruction::WriteMetadata { metadata, mask });
    }
    if let Some(g) = i.goto {
        out.push(OfInstruction::GotoTable(g));
    }
    out
}

fn split(d: Duration) -> (u32, u32) {
    (
        d.as_secs().min(u64::from(u32::MAX)) as u32,
        d.subsec_nanos(),
    )
}

/// One flow stats entry. Counters the entry asked not to keep (NO_PKT_COUNTS,
/// NO_BYT_COUNTS) are reported as all ones, as the spec says for unavailable counters.
pub fn flow_stats(fc: &FlowCounts, now: Duration) -> FlowStats {
    let e = &fc.entry;
    let (duration_sec, duration_nsec) = split(now.saturating_sub(e.created));
    FlowStats {
        table_id: fc.table_id,
        duration_sec,
        duration_nsec,
        priority: e.priority,
        idle_timeout: e.idle_timeout,
        hard_timeout: e.hard_timeout,
        flags: flow_flags_to_of(e.flags),
        cookie: e.cookie,
        packet_count: if e.flags.contains(FlowFlags::NO_PKT_COUNTS) {
            u64::MAX
        } else {
            fc.packets
        },
        byte_count: if e.flags.contains(FlowFlags::NO_BYT_COUNTS) {
            u64::MAX
        } else {
            fc.bytes
        },
        match_: match_to_of(&e.match_),
        instructions: instructions_to_of(&e.instructions),
    }
}

/// The FLOW_REMOVED message for a removed entry.
pub fn flow_removed(r: &RemovedFlow) -> FlowRemoved {
    let e = &r.entry;
    let (duration_sec, duration_nsec) = split(r.at.saturating_sub(e.created));
    FlowRemoved {
        cookie: e.cookie,
        priority: e.priority,
        reason: match r.reason {
            RemovedReason::IdleTimeout => FlowRemovedReason::IdleTimeout,
            RemovedReason::HardTimeout => FlowRemovedReason::HardTimeout,
            RemovedReason::Delete | RemovedReason::MeterDelete => FlowRemovedReason::Delete,
            RemovedReason::GroupDelete => FlowRemovedReason::GroupDelete,
        },
        table_id: r.table_id,
        duration_sec,
        duration_nsec,
        idle_timeout: e.idle_timeout,
        hard_timeout: e.hard_timeout,
        packet_count: if e.flags.contains(FlowFlags::NO_PKT_COUNTS) {
            u64::MAX
        } else {
            r.packets
        },
        byte_count: if e.flags.contains(FlowFlags::NO_BYT_COUNTS) {
            u64::MAX
        } else {
            r.bytes
        },
        match_: match_to_of(&e.match_),
    }
}

pub fn group_desc(g: &GroupEntry) -> GroupDesc {
    GroupDesc {
        group_type: group_type_to_of(g.kind),
        group_id: g.id,
        buckets: g
            .buckets
            .iter()
            .map(|b| openflow::messages::Bucket {
                weight: b.weight,
                watch_port: b.watch_port,
                watch_group: b.watch_group,
                actions: b.actions.iter().map(action_to_of).collect(),
            })
            .collect(),
    }
}
