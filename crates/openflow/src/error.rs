//! OpenFlow 1.3 error types and codes (`ofp_error_type` and its per-type code enums), the
//! decoder's error, and the ERROR reply an agent sends back.
//!
//! Every [`DecodeError`] maps to the exact `(type, code)` pair the spec asks a switch to
//! answer with, so the agent never has to guess how to refuse a malformed request.

use crate::header::MsgType;
use crate::messages::{ErrorMsg, Message};
use crate::wire::wire_enum;
use crate::OfpMessage;

/// How many bytes of the offending request an ERROR reply carries (spec: "at least 64 bytes
/// of the failed request"; we send exactly that much or the whole request if shorter).
pub const ERROR_DATA_LEN: usize = 64;

wire_enum! {
    /// `ofp_error_type`.
    pub enum ErrorType: u16 {
        HelloFailed = 0,
        BadRequest = 1,
        BadAction = 2,
        BadInstruction = 3,
        BadMatch = 4,
        FlowModFailed = 5,
        GroupModFailed = 6,
        PortModFailed = 7,
        TableModFailed = 8,
        QueueOpFailed = 9,
        SwitchConfigFailed = 10,
        RoleRequestFailed = 11,
        MeterModFailed = 12,
        TableFeaturesFailed = 13,
        Experimenter = 0xffff,
    }
}

wire_enum! {
    /// `ofp_hello_failed_code`.
    pub enum HelloFailedCode: u16 {
        Incompatible = 0,
        Eperm = 1,
    }
}

wire_enum! {
    /// `ofp_bad_request_code`.
    pub enum BadRequestCode: u16 {
        BadVersion = 0,
        BadType = 1,
        BadMultipart = 2,
        BadExperimenter = 3,
        BadExpType = 4,
        Eperm = 5,
        BadLen = 6,
        BufferEmpty = 7,
        BufferUnknown = 8,
        BadTableId = 9,
        IsSlave = 10,
        BadPort = 11,
        BadPacket = 12,
        MultipartBufferOverflow = 13,
    }
}

wire_enum! {
    /// `ofp_bad_action_code`.
    pub enum BadActionCode: u16 {
        BadType = 0,
        BadLen = 1,
        BadExperimenter = 2,
        BadExpType = 3,
        BadOutPort = 4,
        BadArgument = 5,
        Eperm = 6,
        TooMany = 7,
        BadQueue = 8,
        BadOutGroup = 9,
        MatchInconsistent = 10,
        UnsupportedOrder = 11,
        BadTag = 12,
        BadSetType = 13,
        BadSetLen = 14,
        BadSetArgument = 15,
    }
}

wire_enum! {
    /// `ofp_bad_instruction_code`.
    pub enum BadInstructionCode: u16 {
        UnknownInst = 0,
        UnsupInst = 1,
        BadTableId = 2,
        UnsupMetadata = 3,
        UnsupMetadataMask = 4,
        BadExperimenter = 5,
        BadExpType = 6,
        BadLen = 7,
        Eperm = 8,
    }
}

wire_enum! {
    /// `ofp_bad_match_code`.
    pub enum BadMatchCode: u16 {
        BadType = 0,
        BadLen = 1,
        BadTag = 2,
        BadDlAddrMask = 3,
        BadNwAddrMask = 4,
        BadWildcards = 5,
        BadField = 6,
        BadValue = 7,
        BadMask = 8,
        BadPrereq = 9,
        DupField = 10,
        Eperm = 11,
    }
}

wire_enum! {
    /// `ofp_flow_mod_failed_code`.
    pub enum FlowModFailedCode: u16 {
        Unknown = 0,
        TableFull = 1,
        BadTableId = 2,
        Overlap = 3,
        Eperm = 4,
        BadTimeout = 5,
        BadCommand = 6,
        BadFlags = 7,
    }
}

wire_enum! {
    /// `ofp_group_mod_failed_code`.
    pub enum GroupModFailedCode: u16 {
        GroupExists = 0,
        InvalidGroup = 1,
        WeightUnsupported = 2,
        OutOfGroups = 3,
        OutOfBuckets = 4,
        ChainingUnsupported = 5,
        WatchUnsupported = 6,
        Loop = 7,
        UnknownGroup = 8,
        ChainedGroup = 9,
        BadType = 10,
        BadCommand = 11,
        BadBucket = 12,
        BadWatch = 13,
        Eperm = 14,
    }
}

wire_enum! {
    /// `ofp_port_mod_failed_code`.
    pub enum PortModFailedCode: u16 {
        BadPort = 0,
        BadHwAddr = 1,
        BadConfig = 2,
        BadAdvertise = 3,
        Eperm = 4,
    }
}

wire_enum! {
    /// `ofp_table_mod_failed_code`.
    pub enum TableModFailedCode: u16 {
        BadTable = 0,
        BadConfig = 1,
        Eperm = 2,
    }
}

wire_enum! {
    /// `ofp_queue_op_failed_code`.
    pub enum QueueOpFailedCode: u16 {
        BadPort = 0,
        BadQueue = 1,
        Eperm = 2,
    }
}

wire_enum! {
    /// `ofp_switch_config_failed_code`.
    pub enum SwitchConfigFailedCode: u16 {
        BadFlags = 0,
        BadLen = 1,
        Eperm = 2,
    }
}

wire_enum! {
    /// `ofp_role_request_failed_code`.
    pub enum RoleRequestFailedCode: u16 {
        Stale = 0,
        Unsup = 1,
        BadRole = 2,
    }
}

wire_enum! {
    /// `ofp_meter_mod_failed_code`.
    pub enum MeterModFailedCode: u16 {
        Unknown = 0,
        MeterExists = 1,
        InvalidMeter = 2,
        UnknownMeter = 3,
        BadCommand = 4,
        BadFlags = 5,
        BadRate = 6,
        BadBurst = 7,
        BadBand = 8,
        BadBandValue = 9,
        OutOfMeters = 10,
        OutOfBands = 11,
    }
}

wire_enum! {
    /// `ofp_table_features_failed_code`.
    pub enum TableFeaturesFailedCode: u16 {
        BadTable = 0,
        BadMetadata = 1,
        BadType = 2,
        BadLen = 3,
        BadArgument = 4,
        Eperm = 5,
    }
}

/// A standard (non-experimenter) error: the type together with a code valid for that type,
/// so that a mismatched pair cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    HelloFailed(HelloFailedCode),
    BadRequest(BadRequestCode),
    BadAction(BadActionCode),
    BadInstruction(BadInstructionCode),
    BadMatch(BadMatchCode),
    FlowModFailed(FlowModFailedCode),
    GroupModFailed(GroupModFailedCode),
    PortModFailed(PortModFailedCode),
    TableModFailed(TableModFailedCode),
    QueueOpFailed(QueueOpFailedCode),
    SwitchConfigFailed(SwitchConfigFailedCode),
    RoleRequestFailed(RoleRequestFailedCode),
    MeterModFailed(MeterModFailedCode),
    TableFeaturesFailed(TableFeaturesFailedCode),
    /// Open vSwitch's NXBAC_BAD_CONJUNCTION: a `conjunction` action beside other actions,
    /// or `conjunction(id,k/n)` without 1 <= k <= n and 2 <= n <= 64. In OpenFlow 1.2+ it
    /// is an experimenter error (type 0xffff, exp_type [`NXBAC_BAD_CONJUNCTION`], vendor
    /// Nicira), which `ovs-ofctl` prints by name.
    NxBadConjunction,
    /// Open vSwitch's NXTTMFC_*: a TLV map change refused (experimenter error, vendor
    /// Nicira, exp_type [`crate::tlv::TlvTableModFailedCode::exp_type`]).
    NxTlvTableModFailed(crate::tlv::TlvTableModFailedCode),
}

/// exp_type of [`ErrorCode::NxBadConjunction`] (`NX1.2+(15)` in Open vSwitch's
/// `ofp-errors.h`).
pub const NXBAC_BAD_CONJUNCTION: u16 = 15;

impl ErrorCode {
    /// The `(type, code)` pair as sent on the wire.
    pub const fn type_code(self) -> (u16, u16) {
        use ErrorCode::*;
        match self {
            HelloFailed(c) => (ErrorType::HelloFailed.raw(), c.raw()),
            BadRequest(c) => (ErrorType::BadRequest.raw(), c.raw()),
            BadAction(c) => (ErrorType::BadAction.raw(), c.raw()),
            BadInstruction(c) => (ErrorType::BadInstruction.raw(), c.raw()),
            BadMatch(c) => (ErrorType::BadMatch.raw(), c.raw()),
            FlowModFailed(c) => (ErrorType::FlowModFailed.raw(), c.raw()),
            GroupModFailed(c) => (ErrorType::GroupModFailed.raw(), c.raw()),
            PortModFailed(c) => (ErrorType::PortModFailed.raw(), c.raw()),
            TableModFailed(c) => (ErrorType::TableModFailed.raw(), c.raw()),
            QueueOpFailed(c) => (ErrorType::QueueOpFailed.raw(), c.raw()),
            SwitchConfigFailed(c) => (ErrorType::SwitchConfigFailed.raw(), c.raw()),
            RoleRequestFailed(c) => (ErrorType::RoleRequestFailed.raw(), c.raw()),
            MeterModFailed(c) => (ErrorType::MeterModFailed.raw(), c.raw()),
            TableFeaturesFailed(c) => (ErrorType::TableFeaturesFailed.raw(), c.raw()),
            NxBadConjunction => (ErrorType::Experimenter.raw(), NXBAC_BAD_CONJUNCTION),
            NxTlvTableModFailed(c) => (ErrorType::Experimenter.raw(), c.exp_type()),
        }
    }

    /// Maps a wire pair back; `None` for pairs the spec does not define (and experimenter).
    pub fn from_type_code(err_type: u16, code: u16) -> Option<Self> {
        use ErrorCode as E;
        Some(match ErrorType::from_raw(err_type)? {
            ErrorType::HelloFailed => E::HelloFailed(HelloFailedCode::from_raw(code)?),
            ErrorType::BadRequest => E::BadRequest(BadRequestCode::from_raw(code)?),
            ErrorType::BadAction => E::BadAction(BadActionCode::from_raw(code)?),
            ErrorType::BadInstruction => E::BadInstruction(BadInstructionCode::from_raw(code)?),
            ErrorType::BadMatch => E::BadMatch(BadMatchCode::from_raw(code)?),
            ErrorType::FlowModFailed => E::FlowModFailed(FlowModFailedCode::from_raw(code)?),
            ErrorType::GroupModFailed => E::GroupModFailed(GroupModFailedCode::from_raw(code)?),
            ErrorType::PortModFailed => E::PortModFailed(PortModFailedCode::from_raw(code)?),
            ErrorType::TableModFailed => E::TableModFailed(TableModFailedCode::from_raw(code)?),
            ErrorType::QueueOpFailed => E::QueueOpFailed(QueueOpFailedCode::from_raw(code)?),
            ErrorType::SwitchConfigFailed => {
                E::SwitchConfigFailed(SwitchConfigFailedCode::from_raw(code)?)
            }
            ErrorType::RoleRequestFailed => {
                E::RoleRequestFailed(RoleRequestFailedCode::from_raw(code)?)
            }
            ErrorType::MeterModFailed => E::MeterModFailed(MeterModFailedCode::from_raw(code)?),
            ErrorType::TableFeaturesFailed => {
                E::TableFeaturesFailed(TableFeaturesFailedCode::from_raw(code)?)
            }
            ErrorType::Experimenter => return None,
        })
    }

    /// Builds the ERROR reply to `request` (the raw bytes received): same xid, and the data
    /// field carries the first [`ERROR_DATA_LEN`] bytes of the request so the controller can
    /// tell which message failed.
    pub fn reply_to(self, request: &[u8]) -> OfpMessage {
        let xid = request
            .get(4..8)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .unwrap_or(0);
        let data = request[..request.len().min(ERROR_DATA_LEN)].to_vec();
        OfpMessage {
            xid,
            body: Message::Error(ErrorMsg::new(self, data)),
        }
    }
}

impl From<BadMatchCode> for ErrorCode {
    fn from(c: BadMatchCode) -> Self {
        ErrorCode::BadMatch(c)
    }
}

impl From<BadActionCode> for ErrorCode {
    fn from(c: BadActionCode) -> Self {
        ErrorCode::BadAction(c)
    }
}

impl From<BadInstructionCode> for ErrorCode {
    fn from(c: BadInstructionCode) -> Self {
        ErrorCode::BadInstruction(c)
    }
}

impl From<BadRequestCode> for ErrorCode {
    fn from(c: BadRequestCode) -> Self {
        ErrorCode::BadRequest(c)
    }
}

/// Why a buffer could not be decoded. One variant per failure site; [`DecodeError::code`]
/// gives the error the switch must answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer than 8 bytes: not even an `ofp_header`.
    #[error("{available} bytes cannot hold the 8-byte OpenFlow header")]
    ShortHeader { available: usize },
    /// The header's length field is below the header's own size. The length field is 16
    /// bits, so the 65535 upper bound holds by construction.
    #[error("header length {length} is smaller than the header")]
    HeaderLength { length: u16 },
    /// The buffer ends before the length the header announces.
    #[error("message announces {length} bytes but only {available} are present")]
    Truncated { length: u16, available: usize },
    /// The buffer holds more than the one message the header announces.
    #[error("message announces {length} bytes but the buffer holds {available}")]
    TrailingBytes { length: u16, available: usize },
    /// A non-HELLO message with a version other than 0x04.
    #[error("unsupported OpenFlow version {version:#04x}")]
    BadVersion { version: u8 },
    /// A message type that OpenFlow 1.3 does not define.
    #[error("unknown message type {msg_type}")]
    UnknownMessageType { msg_type: u8 },
    /// A known message whose length does not fit its fixed layout.
    #[error("{msg_type:?} has invalid length {length}")]
    BadMessageLength { msg_type: MsgType, length: u16 },
    /// A HELLO element whose length is below 4 or runs past the message.
    #[error("HELLO element has invalid length {length}")]
    BadHelloElement { length: u16 },
    /// A multipart type that OpenFlow 1.3 does not define.
    #[error("unknown multipart type {mp_type}")]
    UnknownMultipartType { mp_type: u16 },
    /// A multipart body that does not fit its type's layout.
    #[error("multipart type {mp_type} has an invalid body length")]
    BadMultipartLength { mp_type: u16 },
    /// An `ofp_match` of a type other than OFPMT_OXM.
    #[error("unsupported match type {match_type}")]
    BadMatchType { match_type: u16 },
    /// An `ofp_match` length below 4 or past the enclosing message.
    #[error("match has invalid length {length}")]
    BadMatchLength { length: u16 },
    /// An OXM TLV whose length is wrong for its field or runs past the match.
    #[error("OXM {header:#010x} has an invalid length")]
    BadOxmLength { header: u32 },
    /// An OXM class that is neither OPENFLOW_BASIC nor EXPERIMENTER.
    #[error("unsupported OXM class {class:#06x}")]
    UnknownOxmClass { class: u16 },
    /// An OPENFLOW_BASIC field number above 39.
    #[error("unknown OXM basic field {field}")]
    UnknownOxmField { field: u8 },
    /// The same field appears twice in one match.
    #[error("OXM field {header:#010x} appears twice")]
    DuplicateOxmField { header: u32 },
    /// An action whose length is below 8, not a multiple of 8, past the list, or wrong for
    /// its type.
    #[error("action type {action_type} has invalid length {length}")]
    BadActionLength { action_type: u16, length: u16 },
    /// A Nicira extension action whose body does not fit its subtype's layout.
    #[error("Nicira action subtype {subtype} has an invalid body")]
    BadNxAction { subtype: u16 },
    /// An action type that OpenFlow 1.3 does not define.
    #[error("unknown action type {action_type}")]
    UnknownActionType { action_type: u16 },
    /// A SET_FIELD whose OXM does not fit the action or has the wrong length for its field.
    #[error("SET_FIELD action has an invalid OXM length")]
    BadSetFieldLength,
    /// A SET_FIELD naming a field this codec cannot represent.
    #[error("SET_FIELD on unsupported OXM {header:#010x}")]
    BadSetFieldType { header: u32 },
    /// A SET_FIELD carrying a mask, which OpenFlow 1.3 does not allow.
    #[error("SET_FIELD OXM {header:#010x} has a mask")]
    BadSetFieldArgument { header: u32 },
    /// An instruction whose length is below 8, not a multiple of 8, past the list, or wrong
    /// for its type.
    #[error("instruction type {inst_type} has invalid length {length}")]
    BadInstructionLength { inst_type: u16, length: u16 },
    /// An instruction type that OpenFlow 1.3 does not define.
    #[error("unknown instruction type {inst_type}")]
    UnknownInstructionType { inst_type: u16 },
    /// A FLOW_MOD command outside ADD..DELETE_STRICT.
    #[error("unknown flow-mod command {command}")]
    BadFlowModCommand { command: u8 },
    /// A GROUP_MOD command outside ADD..DELETE.
    #[error("unknown group-mod command {command}")]
    BadGroupCommand { command: u16 },
    /// A group type outside ALL..FF.
    #[error("unknown group type {group_type}")]
    BadGroupType { group_type: u8 },
    /// A bucket whose length is below 16 or past the list.
    #[error("bucket has invalid length {length}")]
    BadBucketLength { length: u16 },
    /// A METER_MOD command outside ADD..DELETE.
    #[error("unknown meter-mod command {command}")]
    BadMeterCommand { command: u16 },
    /// A meter band type other than DROP, DSCP_REMARK or EXPERIMENTER.
    #[error("unknown meter band type {band_type}")]
    UnknownMeterBandType { band_type: u16 },
    /// A meter band whose length is wrong for its type or past the list.
    #[error("meter band type {band_type} has invalid length {length}")]
    BadMeterBandLength { band_type: u16, length: u16 },
    /// A controller role outside NOCHANGE..SLAVE.
    #[error("unknown controller role {role}")]
    BadControllerRole { role: u32 },
    /// An `ofp_table_features` whose length is below 64 or past the body.
    #[error("table features entry has invalid length {length}")]
    BadTableFeaturesLength { length: u16 },
    /// A table feature property type that OpenFlow 1.3 does not define.
    #[error("unknown table feature property type {prop_type}")]
    UnknownTableFeatureProp { prop_type: u16 },
    /// A table feature property (or an id inside it) with an invalid length.
    #[error("table feature property type {prop_type} has invalid length {length}")]
    BadTableFeaturePropLength { prop_type: u16, length: u16 },
    /// An `ofp_packet_queue` or queue property with an invalid length.
    #[error("queue description has invalid length {length}")]
    BadQueueLength { length: u16 },
    /// A PACKET_OUT whose `actions_len` runs past the message.
    #[error("packet-out actions_len {actions_len} exceeds the message")]
    BadPacketOutActionsLength { actions_len: u16 },
    /// A list entry of a multipart reply (flow stats, group stats...) with an invalid length.
    #[error("multipart reply entry has invalid length {length}")]
    BadStatsEntryLength { length: u16 },
}

impl DecodeError {
    /// The error the switch must send back for this failure.
    pub const fn code(&self) -> ErrorCode {
        use DecodeError::*;
        use ErrorCode as E;
        match self {
            ShortHeader { .. }
            | HeaderLength { .. }
            | Truncated { .. }
            | TrailingBytes { .. }
            | BadMessageLength { .. }
            | BadHelloElement { .. }
            | BadMultipartLength { .. }
            | BadQueueLength { .. }
            | BadPacketOutActionsLength { .. }
            | BadStatsEntryLength { .. }
            | BadMeterBandLength { .. } => E::BadRequest(BadRequestCode::BadLen),
            BadVersion { .. } => E::BadRequest(BadRequestCode::BadVersion),
            UnknownMessageType { .. } => E::BadRequest(BadRequestCode::BadType),
            UnknownMultipartType { .. } => E::BadRequest(BadRequestCode::BadMultipart),
            BadMatchType { .. } => E::BadMatch(BadMatchCode::BadType),
            BadMatchLength { .. } | BadOxmLength { .. } => E::BadMatch(BadMatchCode::BadLen),
            UnknownOxmClass { .. } | UnknownOxmField { .. } => E::BadMatch(BadMatchCode::BadField),
            DuplicateOxmField { .. } => E::BadMatch(BadMatchCode::DupField),
            BadActionLength { .. } => E::BadAction(BadActionCode::BadLen),
            BadNxAction { .. } => E::BadAction(BadActionCode::BadArgument),
            UnknownActionType { .. } => E::BadAction(BadActionCode::BadType),
            BadSetFieldLength => E::BadAction(BadActionCode::BadSetLen),
            BadSetFieldType { .. } => E::BadAction(BadActionCode::BadSetType),
            BadSetFieldArgument { .. } => E::BadAction(BadActionCode::BadSetArgument),
            BadInstructionLength { .. } => E::BadInstruction(BadInstructionCode::BadLen),
            UnknownInstructionType { .. } => E::BadInstruction(BadInstructionCode::UnknownInst),
            BadFlowModCommand { .. } => E::FlowModFailed(FlowModFailedCode::BadCommand),
            BadGroupCommand { .. } => E::GroupModFailed(GroupModFailedCode::BadCommand),
            BadGroupType { .. } => E::GroupModFailed(GroupModFailedCode::BadType),
            BadBucketLength { .. } => E::GroupModFailed(GroupModFailedCode::BadBucket),
            BadMeterCommand { .. } => E::MeterModFailed(MeterModFailedCode::BadCommand),
            UnknownMeterBandType { .. } => E::MeterModFailed(MeterModFailedCode::BadBand),
            BadControllerRole { .. } => E::RoleRequestFailed(RoleRequestFailedCode::BadRole),
            BadTableFeaturesLength { .. } | BadTableFeaturePropLength { .. } => {
                E::TableFeaturesFailed(TableFeaturesFailedCode::BadLen)
            }
            UnknownTableFeatureProp { .. } => {
                E::TableFeaturesFailed(TableFeaturesFailedCode::BadType)
            }
        }
    }

    /// The ERROR reply for `request`, or `None` when the bytes are not yet a whole message
    /// (a framing layer should wait for more input instead of answering).
    pub fn reply_to(&self, request: &[u8]) -> Option<OfpMessage> {
        match self {
            DecodeError::ShortHeader { .. } | DecodeError::Truncated { .. } => None,
            _ => Some(self.code().reply_to(request)),
        }
    }
}

/// Why a value could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The message would exceed the 65535 bytes its 16-bit length can describe; multipart
    /// replies must be split (with the MORE flag) before this point.
    #[error("message of {length} bytes exceeds the 65535-byte OpenFlow limit")]
    TooLong { length: usize },
    /// One entry of a multipart reply (a flow with thousands of actions, a huge table
    /// features entry), or a reply that is not a list, needs a message of `length` bytes on
    /// its own: no split can send it.
    #[error("multipart type {mp_type} reply entry needs a {length}-byte message, over the limit")]
    MultipartEntryTooLong { mp_type: u16, length: usize },
}

impl EncodeError {
    /// The error a switch answers a request with when its reply cannot be encoded.
    /// OpenFlow 1.3.5 has no code for "reply too large"; BAD_REQUEST/MULTIPART_BUFFER_OVERFLOW
    /// ("multipart request overflowed the assigned buffer") is the closest: the switch's
    /// buffer for one reply message overflowed. Open vSwitch has no answer here (it
    /// asserts), so there is no de-facto code to follow.
    pub const fn code(&self) -> ErrorCode {
        ErrorCode::BadRequest(BadRequestCode::MultipartBufferOverflow)
    }
}
