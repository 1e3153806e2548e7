//! OpenFlow switch semantics on top of the pipeline: FLOW_MOD, GROUP_MOD, METER_MOD and
//! PACKET_OUT converted into the pipeline's requests (with every refusal the spec asks
//! for found before any state changes), flow stats, FLOW_REMOVED, group descriptions and
//! PACKET_IN built back from the pipeline's state, and the OpenFlow error each
//! [`PipelineError`] answers with. The pipeline crate itself has no wire types; this is
//! the one place that knows both.
//!
//! [`OfFlowTables`] and [`OfTransaction`] add the wire-message methods to
//! `pipeline::FlowTables` and `pipeline::Transaction`.

#![forbid(unsafe_code)]

mod conv;
mod fast;
pub mod nx;
mod types;

use std::time::Duration;

use openflow::consts::{OFPP_MAX, OFP_NO_BUFFER};
use openflow::error::{
    BadActionCode, BadInstructionCode, BadMatchCode, BadRequestCode, FlowModFailedCode,
    GroupModFailedCode, MeterModFailedCode,
};
use openflow::messages::{FlowMod, GroupMod, MeterMod, PacketIn};
use openflow::{ErrorCode, Match as OfMatch, OxmField, OxmTlv};
use pipeline::{FlowTables, PacketInRecord, PipelineError, RemovedFlow, Transaction};

pub use conv::{
    action_to_of, check_references, convert_action, convert_actions, convert_flow_mod,
    convert_group_mod, convert_match, convert_meter_mod, convert_packet_out, flow_removed,
    flow_stats, group_desc, instructions_to_of, match_to_of, ActionUse,
};
pub use fast::{flow_mod_from_wire, flow_mod_from_wire_boxed};
pub use types::{
    flow_flags, flow_flags_to_of, flow_mod_command, group_mod_command, group_type,
    group_type_to_of, meter_flags, meter_flags_to_of, meter_mod_command, packet_in_reason_to_of,
    port_config, port_config_to_of,
};

/// The OpenFlow error to answer a refusal with.
pub fn error_code(e: PipelineError) -> ErrorCode {
    use PipelineError::*;
    match e {
        MatchExperimenter => ErrorCode::BadMatch(BadMatchCode::BadField),
        MatchField(c) => ErrorCode::BadMatch(types::match_field_code(c)),
        MatchPrerequisite => ErrorCode::BadMatch(BadMatchCode::BadPrereq),
        ActionExperimenter => ErrorCode::BadAction(BadActionCode::BadExperimenter),
        SetFieldExperimenter | SetFieldNotSettable(_) => {
            ErrorCode::BadAction(BadActionCode::BadSetType)
        }
        SetFieldValue(_) => ErrorCode::BadAction(BadActionCode::BadSetArgument),
        SetFieldPrerequisite(_) => ErrorCode::BadAction(BadActionCode::MatchInconsistent),
        BadOutPort(_) => ErrorCode::BadAction(BadActionCode::BadOutPort),
        BadOutGroup(_) => ErrorCode::BadAction(BadActionCode::BadOutGroup),
        BadPushEthertype(_) => ErrorCode::BadAction(BadActionCode::BadArgument),
        InstructionExperimenter => ErrorCode::BadInstruction(BadInstructionCode::BadExperimenter),
        DuplicateInstruction => ErrorCode::BadInstruction(BadInstructionCode::UnsupInst),
        GotoBackward { .. } | GotoBeyondLast(_) => {
            ErrorCode::BadInstruction(BadInstructionCode::BadTableId)
        }
        UnknownMeterInInstruction(_) | UnknownMeter(_) => {
            ErrorCode::MeterModFailed(MeterModFailedCode::UnknownMeter)
        }
        BadTableId(_) => ErrorCode::FlowModFailed(FlowModFailedCode::BadTableId),
        Overlap => ErrorCode::FlowModFailed(FlowModFailedCode::Overlap),
        TableFull(_) => ErrorCode::FlowModFailed(FlowModFailedCode::TableFull),
        GroupExists(_) => ErrorCode::GroupModFailed(GroupModFailedCode::GroupExists),
        UnknownGroup(_) => ErrorCode::GroupModFailed(GroupModFailedCode::UnknownGroup),
        InvalidGroupId(_) => ErrorCode::GroupModFailed(GroupModFailedCode::InvalidGroup),
        GroupLoop(_) => ErrorCode::GroupModFailed(GroupModFailedCode::Loop),
        ChainedGroup(_) => ErrorCode::GroupModFailed(GroupModFailedCode::ChainedGroup),
        BadBucket => ErrorCode::GroupModFailed(GroupModFailedCode::BadBucket),
        InvalidGroupBuckets => ErrorCode::GroupModFailed(GroupModFailedCode::InvalidGroup),
        BadWatch => ErrorCode::GroupModFailed(GroupModFailedCode::BadWatch),
        MeterExists(_) => ErrorCode::MeterModFailed(MeterModFailedCode::MeterExists),
        InvalidMeter(_) => ErrorCode::MeterModFailed(MeterModFailedCode::InvalidMeter),
        BadMeterFlags => ErrorCode::MeterModFailed(MeterModFailedCode::BadFlags),
        BadMeterBand => ErrorCode::MeterModFailed(MeterModFailedCode::BadBand),
        BadMeterRate => ErrorCode::MeterModFailed(MeterModFailedCode::BadRate),
        BadInPort(_) => ErrorCode::BadRequest(BadRequestCode::BadPort),
        ExtensionInActionSet => ErrorCode::BadAction(BadActionCode::UnsupportedOrder),
        BadFieldRange => ErrorCode::BadAction(BadActionCode::BadArgument),
        BadConjunction => ErrorCode::NxBadConjunction,
    }
}

/// The PACKET_IN message body for a record: the match carries in_port, and in_phy_port,
/// metadata and tunnel_id when they say something. The switch does not buffer packets:
/// buffer_id is always OFP_NO_BUFFER.
pub fn packet_in(r: &PacketInRecord) -> PacketIn {
    let mut fields = vec![OxmTlv::in_port(r.in_port)];
    if r.in_phy_port != r.in_port && r.in_port <= OFPP_MAX {
        if let Some(f) = OxmTlv::exact(OxmField::InPhyPort, r.in_phy_port.into()) {
            fields.push(f);
        }
    }
    if r.metadata != 0 {
        fields.push(OxmTlv::metadata(r.metadata, None));
    }
    if r.tunnel_id != 0 {
        fields.push(OxmTlv::tunnel_id(r.tunnel_id, None));
    }
    // A decapsulated packet's tunnel, as Open vSwitch reports it: tun_src, tun_dst and
    // the Geneve options the TLV map names (those that are nonzero).
    let tun = [
        (openflow::NxmField::TunSrc, u32::from_be_bytes(r.tun_src)),
        (openflow::NxmField::TunDst, u32::from_be_bytes(r.tun_dst)),
    ]
    .into_iter()
    .chain((0..packet::TUN_METADATA_FIELDS).map(|i| {
        (
            openflow::NxmField::TunMetadata(i as u8),
            (r.tun_metadata >> (32 * (1 - i % 2))) as u32,
        )
    }));
    for (f, v) in tun {
        if v != 0 {
            if let Some(n) = openflow::NxmOxm::new(f, v.into(), None) {
                fields.push(OxmTlv::Nxm(n));
            }
        }
    }
    PacketIn {
        buffer_id: OFP_NO_BUFFER,
        total_len: r.total_len,
        reason: packet_in_reason_to_of(r.reason),
        table_id: r.table_id,
        cookie: r.cookie,
        match_: OfMatch::new(fields),
        data: r.data.clone(),
    }
}

/// OpenFlow messages applied to [`FlowTables`] directly (one change, not yet published).
/// On error nothing changed.
pub trait OfFlowTables {
    /// Converts and applies a FLOW_MOD; returns the entries a delete removed.
    fn flow_mod(&mut self, fm: &FlowMod, now: Duration) -> Result<Vec<RemovedFlow>, PipelineError>;
    /// Converts and applies a GROUP_MOD. Deleting groups removes the flows that use them
    /// (returned with reason GROUP_DELETE).
    fn group_mod(
        &mut self,
        gm: &GroupMod,
        now: Duration,
    ) -> Result<Vec<RemovedFlow>, PipelineError>;
    /// Converts and applies a METER_MOD. Deleting meters removes the flows that use them.
    fn meter_mod(
        &mut self,
        mm: &MeterMod,
        now: Duration,
    ) -> Result<Vec<RemovedFlow>, PipelineError>;
}

impl OfFlowTables for FlowTables {
    fn flow_mod(&mut self, fm: &FlowMod, now: Duration) -> Result<Vec<RemovedFlow>, PipelineError> {
        let req = convert_flow_mod(fm, self)?;
        self.apply_flow_mod(req, now)
    }

    fn group_mod(
        &mut self,
        gm: &GroupMod,
        now: Duration,
    ) -> Result<Vec<RemovedFlow>, PipelineError> {
        let req = convert_group_mod(gm, self)?;
        self.apply_group_mod(req, now)
    }

    fn meter_mod(
        &mut self,
        mm: &MeterMod,
        now: Duration,
    ) -> Result<Vec<RemovedFlow>, PipelineError> {
        self.apply_meter_mod(&convert_meter_mod(mm), now)
    }
}

/// OpenFlow messages as changes of a [`Transaction`], each converted against the tables
/// as the changes before it left them; a refused conversion is a refused change (its index
/// and error, as the transaction's own methods report them).
pub trait OfTransaction {
    fn of_flow_mod(&mut self, fm: &FlowMod) -> Result<(), (usize, PipelineError)>;
    fn of_group_mod(&mut self, gm: &GroupMod) -> Result<(), (usize, PipelineError)>;
    fn of_meter_mod(&mut self, mm: &MeterMod) -> Result<(), (usize, PipelineError)>;
}

impl OfTransaction for Transaction<'_> {
    fn of_flow_mod(&mut self, fm: &FlowMod) -> Result<(), (usize, PipelineError)> {
        self.flow_mod_with(|t| convert_flow_mod(fm, t))
    }

    fn of_group_mod(&mut self, gm: &GroupMod) -> Result<(), (usize, PipelineError)> {
        self.group_mod_with(|t| convert_group_mod(gm, t))
    }

    fn of_meter_mod(&mut self, mm: &MeterMod) -> Result<(), (usize, PipelineError)> {
        self.meter_mod(&convert_meter_mod(mm))
    }
}
