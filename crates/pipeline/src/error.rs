//! The crate's one error type. Every refusal names the place that refused, precisely
//! enough that `ofproto::error_code` can give the OpenFlow error the agent must answer
//! with, so the agent never has to guess a code from a message string.

use packet::Field;

/// Which per-field rule of a match field was broken (the spec's BAD_MATCH codes for them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchFieldError {
    /// A mask on a field that cannot be masked.
    BadMask,
    /// Value bits beyond the field's width.
    BadValue,
    /// Value bits where the mask is zero.
    BadWildcards,
}

/// Why a flow-mod, group-mod, meter-mod or packet-out was refused. The state is left as it
/// was before the request in every case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    /// The match carries an experimenter (non-basic) OXM.
    #[error("experimenter OXM in match")]
    MatchExperimenter,
    /// A basic OXM broke a per-field rule (mask on an unmaskable field, value bits beyond
    /// the field, value bits outside the mask).
    #[error("invalid match field: {0:?}")]
    MatchField(MatchFieldError),
    /// A field is matched without the eth_type/ip_proto/... it depends on.
    #[error("match prerequisite missing")]
    MatchPrerequisite,
    /// An experimenter action.
    #[error("experimenter action")]
    ActionExperimenter,
    /// SET_FIELD with an experimenter OXM.
    #[error("experimenter set-field")]
    SetFieldExperimenter,
    /// SET_FIELD on a field actions may not write (in_port, metadata, ipv6_exthdr...).
    #[error("field {0:?} cannot be set")]
    SetFieldNotSettable(Field),
    /// SET_FIELD value with bits beyond the field.
    #[error("set-field value out of range for {0:?}")]
    SetFieldValue(Field),
    /// SET_FIELD whose prerequisites the match (and the pushes before it) do not ensure.
    #[error("set-field of {0:?} without its prerequisites")]
    SetFieldPrerequisite(Field),
    /// OUTPUT to port 0, OFPP_ANY, an unknown reserved port, or TABLE outside packet-out.
    #[error("invalid output port {0:#x}")]
    BadOutPort(u32),
    /// GROUP action naming a group that does not exist.
    #[error("unknown group {0} in action")]
    BadOutGroup(u32),
    /// A push/pop action with an ethertype the spec does not allow for it.
    #[error("bad ethertype {0:#06x} for push")]
    BadPushEthertype(u16),
    /// An experimenter instruction.
    #[error("experimenter instruction")]
    InstructionExperimenter,
    /// The same instruction type twice in one flow-mod.
    #[error("duplicate instruction")]
    DuplicateInstruction,
    /// GOTO_TABLE to this table or an earlier one.
    #[error("goto_table {to} from table {from} does not go forward")]
    GotoBackward { from: u8, to: u8 },
    /// GOTO_TABLE past the last table.
    #[error("goto_table {0} beyond the last table")]
    GotoBeyondLast(u8),
    /// METER instruction naming a meter that does not exist.
    #[error("unknown meter {0} in instruction")]
    UnknownMeterInInstruction(u32),
    /// FLOW_MOD for a table that does not exist (or OFPTT_ALL where not allowed).
    #[error("bad table id {0}")]
    BadTableId(u8),
    /// ADD with CHECK_OVERLAP found an overlapping entry of the same priority.
    #[error("overlapping entry")]
    Overlap,
    /// The table holds as many entries as it may.
    #[error("table {0} full")]
    TableFull(u8),
    /// GROUP_MOD ADD of a group that exists.
    #[error("group {0} exists")]
    GroupExists(u32),
    /// GROUP_MOD MODIFY of a group that does not exist.
    #[error("unknown group {0}")]
    UnknownGroup(u32),
    /// A group id above OFPG_MAX (or ALL/ANY) where a real group is needed.
    #[error("invalid group id {0:#x}")]
    InvalidGroupId(u32),
    /// The group would forward to itself through its buckets.
    #[error("group chaining loop through {0}")]
    GroupLoop(u32),
    /// DELETE of a group that another group forwards to.
    #[error("group {0} is chained from another group")]
    ChainedGroup(u32),
    /// A bucket is not allowed for the group type (a weight in FAST_FAILOVER).
    #[error("bad bucket")]
    BadBucket,
    /// The buckets do not fit the group type: weights on ALL or INDIRECT, more than one
    /// bucket on INDIRECT, SELECT buckets none of which has a weight.
    #[error("buckets invalid for the group type")]
    InvalidGroupBuckets,
    /// FAST_FAILOVER bucket without a watch port or group.
    #[error("bad watch")]
    BadWatch,
    /// METER_MOD ADD of a meter that exists.
    #[error("meter {0} exists")]
    MeterExists(u32),
    /// METER_MOD MODIFY/DELETE of a meter that does not exist.
    #[error("unknown meter {0}")]
    UnknownMeter(u32),
    /// Meter id 0, or above OFPM_MAX and not a virtual meter we keep.
    #[error("invalid meter id {0:#x}")]
    InvalidMeter(u32),
    /// Meter flags neither KBPS nor PKTPS, or both.
    #[error("bad meter flags")]
    BadMeterFlags,
    /// A meter band of an unsupported type (experimenter) or none at all.
    #[error("bad meter band")]
    BadMeterBand,
    /// A band rate of zero.
    #[error("bad meter rate")]
    BadMeterRate,
    /// PACKET_OUT with an in_port that is not a port or CONTROLLER/LOCAL.
    #[error("bad packet-out in_port {0:#x}")]
    BadInPort(u32),
    /// An Open vSwitch extension action that cannot be put in an action set
    /// (write-actions): resubmit, move, a masked load, note, ct_clear.
    #[error("Open vSwitch extension action in write-actions")]
    ExtensionInActionSet,
    /// A `move`/`load` whose bit range does not fit its fields, or names a field it cannot
    /// read or write (an unknown header, in_port as destination...).
    #[error("move/load bit range does not fit its fields")]
    BadFieldRange,
    /// A `conjunction` action beside actions other than `note` (or other instructions),
    /// outside an entry's apply-actions, or `conjunction(id,k/n)` without 1 <= k <= n and
    /// 2 <= n <= 64 (Open vSwitch's NXBAC_BAD_CONJUNCTION).
    #[error("bad conjunction")]
    BadConjunction,
}
