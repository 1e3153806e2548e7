//! The OpenFlow 1.3 messages and their bodies (everything but multipart, which lives in
//! [`crate::multipart`]).

use crate::action::{decode_actions, encode_actions, Action};
use crate::consts::{
    Capabilities, ConfigFlags, FlowModFlags, MeterFlags, PortConfig, PortFeatures, PortState,
    TableConfig, OFPP_CONTROLLER, OFPP_LOCAL, OFPP_MAX,
};
use crate::error::{DecodeError, ErrorCode, HelloFailedCode};
use crate::header::{MsgType, OFP_VERSION};
use crate::instruction::{decode_instructions, encode_instructions, Instruction};
use crate::multipart::{MultipartReply, MultipartRequest};
use crate::oxm::Match;
use crate::wire::{
    pad_to_8, patch_len, put_u16, put_u32, put_u64, put_u8, put_zeros, round_up_8, wire_enum,
    FixedStr, Reader,
};

/// Declares an enum for a reason field sent by the switch. Later OpenFlow versions add
/// reasons, so unknown values are kept rather than refused.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident : $repr:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this version of the spec does not name.
            Other($repr),
        }

        impl $name {
            pub const fn from_raw(v: $repr) -> Self {
                match v {
                    $( $value => $name::$variant, )*
                    other => $name::Other(other),
                }
            }

            pub const fn raw(self) -> $repr {
                match self {
                    $( $name::$variant => $value, )*
                    $name::Other(v) => v,
                }
            }
        }
    };
}

/// A decoded message with its transaction id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfpMessage {
    pub xid: u32,
    pub body: Message,
}

/// Every OpenFlow 1.3 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Hello(Hello),
    Error(ErrorMsg),
    EchoRequest(Vec<u8>),
    EchoReply(Vec<u8>),
    Experimenter(ExperimenterMsg),
    FeaturesRequest,
    FeaturesReply(SwitchFeatures),
    GetConfigRequest,
    GetConfigReply(SwitchConfig),
    SetConfig(SwitchConfig),
    PacketIn(PacketIn),
    FlowRemoved(FlowRemoved),
    PortStatus(PortStatus),
    PacketOut(PacketOut),
    FlowMod(FlowMod),
    GroupMod(GroupMod),
    PortMod(PortMod),
    TableMod(TableMod),
    MultipartRequest(MultipartRequest),
    MultipartReply(MultipartReply),
    BarrierRequest,
    BarrierReply,
    QueueGetConfigRequest { port: u32 },
    QueueGetConfigReply(QueueGetConfigReply),
    RoleRequest(RoleMsg),
    RoleReply(RoleMsg),
    GetAsyncRequest,
    GetAsyncReply(AsyncConfig),
    SetAsync(AsyncConfig),
    MeterMod(MeterMod),
}

// ---------------------------------------------------------------------------------------
// HELLO

/// `ofp_hello_elem_type` OFPHET_VERSIONBITMAP.
pub const OFPHET_VERSIONBITMAP: u16 = 1;

/// HELLO. Unlike every other message it is decoded whatever its header version, since
/// version negotiation is its purpose; `version` is that header version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub version: u8,
    pub elements: Vec<HelloElement>,
}

/// `ofp_hello_elem_header` and its bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloElement {
    /// Bit `n` of word `n / 32` set means version `n` is supported.
    VersionBitmap(Vec<u32>),
    /// The spec requires unknown elements to be ignored, so they are kept, not refused.
    Unknown { elem_type: u16, data: Vec<u8> },
}

impl Hello {
    /// The HELLO this switch sends: version 0x04 with a bitmap naming only 0x04 (bitmap
    /// 0x10), which both OVS and os-ken accept.
    pub fn ofp13() -> Hello {
        Hello {
            version: OFP_VERSION,
            elements: vec![HelloElement::VersionBitmap(vec![1 << OFP_VERSION])],
        }
    }

    /// The peer's version bitmap, if it sent one.
    pub fn bitmap(&self) -> Option<&[u32]> {
        self.elements.iter().find_map(|e| match e {
            HelloElement::VersionBitmap(b) => Some(b.as_slice()),
            HelloElement::Unknown { .. } => None,
        })
    }

    /// Negotiates with a peer that sent this HELLO: with a bitmap, 0x04 must be in it;
    /// without, the peer's header version must be at least 0x04 (the spec's "smaller of
    /// the two versions"). Failing either, the answer is HELLO_FAILED/INCOMPATIBLE.
    pub fn negotiate(&self) -> Result<u8, ErrorCode> {
        let ok = match self.bitmap() {
            Some(words) => words.first().is_some_and(|w| w & (1 << OFP_VERSION) != 0),
            None => self.version >= OFP_VERSION,
        };
        if ok {
            Ok(OFP_VERSION)
        } else {
            Err(ErrorCode::HelloFailed(HelloFailedCode::Incompatible))
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        for e in &self.elements {
            let start = out.len();
            match e {
                HelloElement::VersionBitmap(words) => {
                    put_u16(out, OFPHET_VERSIONBITMAP);
                    put_u16(out, 0);
                    for w in words {
                        put_u32(out, *w);
                    }
                }
                HelloElement::Unknown { elem_type, data } => {
                    put_u16(out, *elem_type);
                    put_u16(out, 0);
                    out.extend_from_slice(data);
                }
            }
            patch_len(out, start + 2, start);
            pad_to_8(out, start);
        }
    }

    fn decode(version: u8, r: &mut Reader<'_>) -> Result<Hello, DecodeError> {
        let mut elements = Vec::new();
        while !r.is_empty() {
            let head = r
                .peek(4)
                .map_err(|_| DecodeError::BadHelloElement { length: 0 })?;
            let elem_type = u16::from_be_bytes([head[0], head[1]]);
            let length = u16::from_be_bytes([head[2], head[3]]);
            let err = DecodeError::BadHelloElement { length };
            let len = usize::from(length);
            if len < 4 {
                return Err(err);
            }
            let mut e = r.sub(len, err)?;
            r.skip_lenient(round_up_8(len) - len);
            e.skip(4)?;
            let body = e.rest();
            elements.push(if elem_type == OFPHET_VERSIONBITMAP {
                if body.len() % 4 != 0 {
                    return Err(err);
                }
                HelloElement::VersionBitmap(
                    body.chunks_exact(4)
                        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                )
            } else {
                HelloElement::Unknown {
                    elem_type,
                    data: body.to_vec(),
                }
            });
        }
        Ok(Hello { version, elements })
    }
}

// ---------------------------------------------------------------------------------------
// ERROR and EXPERIMENTER

/// ERROR. Experimenter errors (type 0xffff) have their own layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorMsg {
    /// Raw type and code so that errors this codec does not name still decode; see
    /// [`ErrorMsg::code`] for the typed view. `err_type` is never 0xffff (that layout is
    /// [`ErrorMsg::Experimenter`]); the decoder never produces it.
    Standard {
        err_type: u16,
        code: u16,
        data: Vec<u8>,
    },
    Experimenter {
        exp_type: u16,
        experimenter: u32,
        data: Vec<u8>,
    },
}

impl ErrorMsg {
    pub fn new(code: ErrorCode, data: Vec<u8>) -> Self {
        if let ErrorCode::NxBadConjunction | ErrorCode::NxTlvTableModFailed(_) = code {
            return ErrorMsg::Experimenter {
                exp_type: code.type_code().1,
                experimenter: crate::nx::NX_VENDOR_ID,
                data,
            };
        }
        let (err_type, code) = code.type_code();
        ErrorMsg::Standard {
            err_type,
            code,
            data,
        }
    }

    /// The typed error, if this is a standard one the spec defines.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ErrorMsg::Standard { err_type, code, .. } => {
                ErrorCode::from_type_code(*err_type, *code)
            }
            ErrorMsg::Experimenter {
                exp_type: crate::error::NXBAC_BAD_CONJUNCTION,
                experimenter: crate::nx::NX_VENDOR_ID,
                ..
            } => Some(ErrorCode::NxBadConjunction),
            ErrorMsg::Experimenter {
                exp_type,
                experimenter: crate::nx::NX_VENDOR_ID,
                ..
            } => crate::tlv::TlvTableModFailedCode::from_exp_type(*exp_type)
                .map(ErrorCode::NxTlvTableModFailed),
            ErrorMsg::Experimenter { .. } => None,
        }
    }

    pub fn data(&self) -> &[u8] {
        match self {
            ErrorMsg::Standard { data, .. } | ErrorMsg::Experimenter { data, .. } => data,
        }
    }
}

/// Body of an EXPERIMENTER message and of an experimenter multipart request or reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExperimenterMsg {
    pub experimenter: u32,
    pub exp_type: u32,
    pub data: Vec<u8>,
}

impl ExperimenterMsg {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.experimenter);
        put_u32(out, self.exp_type);
        out.extend_from_slice(&self.data);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ExperimenterMsg {
            experimenter: r.u32()?,
            exp_type: r.u32()?,
            data: r.rest().to_vec(),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Switch features and configuration

/// FEATURES_REPLY (`ofp_switch_features`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwitchFeatures {
    pub datapath_id: u64,
    pub n_buffers: u32,
    pub n_tables: u8,
    pub auxiliary_id: u8,
    pub capabilities: Capabilities,
    pub reserved: u32,
}

/// GET_CONFIG_REPLY / SET_CONFIG (`ofp_switch_config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwitchConfig {
    pub flags: ConfigFlags,
    /// Bytes of a table-miss packet sent to the controller (OFPCML_NO_BUFFER: all).
    pub miss_send_len: u16,
}

// ---------------------------------------------------------------------------------------
// Ports

/// Length of `ofp_port`.
pub const OFP_PORT_LEN: usize = 64;

/// `ofp_port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Port {
    pub port_no: u32,
    pub hw_addr: [u8; 6],
    pub name: FixedStr<16>,
    pub config: PortConfig,
    pub state: PortState,
    pub curr: PortFeatures,
    pub advertised: PortFeatures,
    pub supported: PortFeatures,
    pub peer: PortFeatures,
    /// kbps.
    pub curr_speed: u32,
    /// kbps.
    pub max_speed: u32,
}

impl Port {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.port_no);
        put_zeros(out, 4);
        out.extend_from_slice(&self.hw_addr);
        put_zeros(out, 2);
        out.extend_from_slice(&self.name.0);
        put_u32(out, self.config.0);
        put_u32(out, self.state.0);
        put_u32(out, self.curr.0);
        put_u32(out, self.advertised.0);
        put_u32(out, self.supported.0);
        put_u32(out, self.peer.0);
        put_u32(out, self.curr_speed);
        put_u32(out, self.max_speed);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let port_no = r.u32()?;
        r.skip(4)?;
        let hw_addr = r.array()?;
        r.skip(2)?;
        Ok(Port {
            port_no,
            hw_addr,
            name: FixedStr(r.array()?),
            config: PortConfig(r.u32()?),
            state: PortState(r.u32()?),
            curr: PortFeatures(r.u32()?),
            advertised: PortFeatures(r.u32()?),
            supported: PortFeatures(r.u32()?),
            peer: PortFeatures(r.u32()?),
            curr_speed: r.u32()?,
            max_speed: r.u32()?,
        })
    }
}

open_enum! {
    /// `ofp_port_reason`.
    pub enum PortReason: u8 {
        Add = 0,
        Delete = 1,
        Modify = 2,
    }
}

/// PORT_STATUS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortStatus {
    pub reason: PortReason,
    pub desc: Port,
}

/// PORT_MOD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortMod {
    pub port_no: u32,
    /// Must match the port's address; guards against a renumbered port.
    pub hw_addr: [u8; 6],
    pub config: PortConfig,
    /// Which bits of `config` to change.
    pub mask: PortConfig,
    /// Zero means "do not change".
    pub advertise: PortFeatures,
}

/// TABLE_MOD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableMod {
    pub table_id: u8,
    pub config: TableConfig,
}

// ---------------------------------------------------------------------------------------
// Packet-in, flow-removed, packet-out

open_enum! {
    /// `ofp_packet_in_reason`.
    pub enum PacketInReason: u8 {
        NoMatch = 0,
        Action = 1,
        InvalidTtl = 2,
    }
}

/// PACKET_IN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketIn {
    pub buffer_id: u32,
    /// Length of the frame on the switch; `data` may be a prefix of it.
    pub total_len: u16,
    pub reason: PacketInReason,
    pub table_id: u8,
    pub cookie: u64,
    /// The packet's pipeline fields (at least IN_PORT).
    pub match_: Match,
    pub data: Vec<u8>,
}

open_enum! {
    /// `ofp_flow_removed_reason`.
    pub enum FlowRemovedReason: u8 {
        IdleTimeout = 0,
        HardTimeout = 1,
        Delete = 2,
        GroupDelete = 3,
    }
}

/// FLOW_REMOVED.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRemoved {
    pub cookie: u64,
    pub priority: u16,
    pub reason: FlowRemovedReason,
    pub table_id: u8,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub packet_count: u64,
    pub byte_count: u64,
    pub match_: Match,
}

/// PACKET_OUT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketOut {
    /// OFP_NO_BUFFER when the frame is in `data`.
    pub buffer_id: u32,
    pub in_port: u32,
    pub actions: Vec<Action>,
    pub data: Vec<u8>,
}

// ---------------------------------------------------------------------------------------
// FLOW_MOD

wire_enum! {
    /// `ofp_flow_mod_command`.
    pub enum FlowModCommand: u8 {
        Add = 0,
        Modify = 1,
        ModifyStrict = 2,
        Delete = 3,
        DeleteStrict = 4,
    }
}

/// FLOW_MOD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowMod {
    pub cookie: u64,
    pub cookie_mask: u64,
    pub table_id: u8,
    pub command: FlowModCommand,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub priority: u16,
    pub buffer_id: u32,
    pub out_port: u32,
    pub out_group: u32,
    pub flags: FlowModFlags,
    pub match_: Match,
    pub instructions: Vec<Instruction>,
}

impl FlowMod {
    /// An ADD into `table_id` with the defaults ovs-ofctl uses (no cookie, no timeouts,
    /// no buffer, ANY port/group).
    pub fn add(table_id: u8, priority: u16, match_: Match, instructions: Vec<Instruction>) -> Self {
        FlowMod {
            cookie: 0,
            cookie_mask: 0,
            table_id,
            command: FlowModCommand::Add,
            idle_timeout: 0,
            hard_timeout: 0,
            priority,
            buffer_id: crate::consts::OFP_NO_BUFFER,
            out_port: crate::consts::OFPP_ANY,
            out_group: crate::consts::OFPG_ANY,
            flags: FlowModFlags::empty(),
            match_,
            instructions,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Groups

wire_enum! {
    /// `ofp_group_mod_command`.
    pub enum GroupModCommand: u16 {
        Add = 0,
        Modify = 1,
        Delete = 2,
    }
}

wire_enum! {
    /// `ofp_group_type`.
    pub enum GroupType: u8 {
        All = 0,
        Select = 1,
        Indirect = 2,
        FastFailover = 3,
    }
}

/// `ofp_bucket`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// Only meaningful for SELECT groups.
    pub weight: u16,
    /// Only meaningful for FAST_FAILOVER groups (OFPP_ANY: none).
    pub watch_port: u32,
    /// Only meaningful for FAST_FAILOVER groups (OFPG_ANY: none).
    pub watch_group: u32,
    pub actions: Vec<Action>,
}

impl Bucket {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        put_u16(out, 0);
        put_u16(out, self.weight);
        put_u32(out, self.watch_port);
        put_u32(out, self.watch_group);
        put_zeros(out, 4);
        encode_actions(&self.actions, out);
        patch_len(out, start, start);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let length = u16::from_be_bytes(
            r.peek(2)
                .map_err(|_| DecodeError::BadBucketLength { length: 0 })?
                .try_into()
                .map_err(|_| DecodeError::BadBucketLength { length: 0 })?,
        );
        let err = DecodeError::BadBucketLength { length };
        if usize::from(length) < 16 {
            return Err(err);
        }
        let mut b = r.sub(usize::from(length), err)?;
        b.skip(2)?;
        let weight = b.u16()?;
        let watch_port = b.u32()?;
        let watch_group = b.u32()?;
        b.skip(4)?;
        Ok(Bucket {
            weight,
            watch_port,
            watch_group,
            actions: decode_actions(b.rest())?,
        })
    }
}

pub(crate) fn decode_buckets(buf: &[u8]) -> Result<Vec<Bucket>, DecodeError> {
    let mut r = Reader::new(buf, DecodeError::BadBucketLength { length: 0 });
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(Bucket::decode(&mut r)?);
    }
    Ok(out)
}

/// GROUP_MOD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMod {
    pub command: GroupModCommand,
    pub group_type: GroupType,
    pub group_id: u32,
    pub buckets: Vec<Bucket>,
}

// ---------------------------------------------------------------------------------------
// Meters

wire_enum! {
    /// `ofp_meter_mod_command`.
    pub enum MeterModCommand: u16 {
        Add = 0,
        Modify = 1,
        Delete = 2,
    }
}

wire_enum! {
    /// `ofp_meter_band_type`.
    pub enum MeterBandType: u16 {
        Drop = 1,
        DscpRemark = 2,
        Experimenter = 0xffff,
    }
}

/// A meter band (`ofp_meter_band_*`). Rates are in kb/s or packets/s per the meter's flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeterBand {
    Drop {
        rate: u32,
        burst_size: u32,
    },
    DscpRemark {
        rate: u32,
        burst_size: u32,
        /// How many drop-precedence levels to add to the DSCP.
        prec_level: u8,
    },
    /// Decoded so the agent can refuse it (METER_MOD_FAILED/BAD_BAND). `data` follows the
    /// experimenter id; the encoder pads it to a multiple of 8.
    Experimenter {
        rate: u32,
        burst_size: u32,
        experimenter: u32,
        data: Vec<u8>,
    },
}

impl MeterBand {
    pub fn band_type(&self) -> MeterBandType {
        match self {
            MeterBand::Drop { .. } => MeterBandType::Drop,
            MeterBand::DscpRemark { .. } => MeterBandType::DscpRemark,
            MeterBand::Experimenter { .. } => MeterBandType::Experimenter,
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        put_u16(out, self.band_type().raw());
        put_u16(out, 0);
        match self {
            MeterBand::Drop { rate, burst_size } => {
                put_u32(out, *rate);
                put_u32(out, *burst_size);
                put_zeros(out, 4);
            }
            MeterBand::DscpRemark {
                rate,
                burst_size,
                prec_level,
            } => {
                put_u32(out, *rate);
                put_u32(out, *burst_size);
                put_u8(out, *prec_level);
                put_zeros(out, 3);
            }
            MeterBand::Experimenter {
                rate,
                burst_size,
                experimenter,
                data,
            } => {
                put_u32(out, *rate);
                put_u32(out, *burst_size);
                put_u32(out, *experimenter);
                out.extend_from_slice(data);
                pad_to_8(out, start);
            }
        }
        patch_len(out, start + 2, start);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let head = r.peek(4).map_err(|_| DecodeError::BadMeterBandLength {
            band_type: 0,
            length: 0,
        })?;
        let band_type = u16::from_be_bytes([head[0], head[1]]);
        let length = u16::from_be_bytes([head[2], head[3]]);
        let err = DecodeError::BadMeterBandLength { band_type, length };
        let len = usize::from(length);
        if len < 16 || len % 8 != 0 {
            return Err(err);
        }
        let mut b = r.sub(len, err)?;
        b.skip(4)?;
        let ty = MeterBandType::from_raw(band_type)
            .ok_or(DecodeError::UnknownMeterBandType { band_type })?;
        let rate = b.u32()?;
        let burst_size = b.u32()?;
        Ok(match ty {
            MeterBandType::Drop => {
                b.expect_exact(4)?;
                MeterBand::Drop { rate, burst_size }
            }
            MeterBandType::DscpRemark => {
                b.expect_exact(4)?;
                MeterBand::DscpRemark {
                    rate,
                    burst_size,
                    prec_level: b.u8()?,
                }
            }
            MeterBandType::Experimenter => MeterBand::Experimenter {
                rate,
                burst_size,
                experimenter: b.u32()?,
                data: b.rest().to_vec(),
            },
        })
    }
}

pub(crate) fn decode_bands(buf: &[u8]) -> Result<Vec<MeterBand>, DecodeError> {
    let mut r = Reader::new(
        buf,
        DecodeError::BadMeterBandLength {
            band_type: 0,
            length: 0,
        },
    );
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(MeterBand::decode(&mut r)?);
    }
    Ok(out)
}

/// METER_MOD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterMod {
    pub command: MeterModCommand,
    pub flags: MeterFlags,
    pub meter_id: u32,
    pub bands: Vec<MeterBand>,
}

// ---------------------------------------------------------------------------------------
// Queues

/// `ofp_queue_properties`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueProp {
    /// In 1/10 of a percent; > 1000 means disabled.
    MinRate(u16),
    /// In 1/10 of a percent; > 1000 means disabled.
    MaxRate(u16),
    Experimenter {
        experimenter: u32,
        data: Vec<u8>,
    },
    /// A property type this spec does not name (sent by the switch; kept, not refused).
    Other {
        property: u16,
        data: Vec<u8>,
    },
}

/// `ofp_queue_properties` values.
pub const OFPQT_MIN_RATE: u16 = 1;
/// See [`OFPQT_MIN_RATE`].
pub const OFPQT_MAX_RATE: u16 = 2;
/// See [`OFPQT_MIN_RATE`].
pub const OFPQT_EXPERIMENTER: u16 = 0xffff;

/// `ofp_packet_queue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketQueue {
    pub queue_id: u32,
    pub port: u32,
    pub properties: Vec<QueueProp>,
}

impl PacketQueue {
    fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        put_u32(out, self.queue_id);
        put_u32(out, self.port);
        put_u16(out, 0);
        put_zeros(out, 6);
        for p in &self.properties {
            let ps = out.len();
            match p {
                QueueProp::MinRate(rate) | QueueProp::MaxRate(rate) => {
                    let ty = if matches!(p, QueueProp::MinRate(_)) {
                        OFPQT_MIN_RATE
                    } else {
                        OFPQT_MAX_RATE
                    };
                    put_u16(out, ty);
                    put_u16(out, 16);
                    put_zeros(out, 4);
                    put_u16(out, *rate);
                    put_zeros(out, 6);
                }
                QueueProp::Experimenter { experimenter, data } => {
                    put_u16(out, OFPQT_EXPERIMENTER);
                    put_u16(out, 0);
                    put_zeros(out, 4);
                    put_u32(out, *experimenter);
                    put_zeros(out, 4);
                    out.extend_from_slice(data);
                    pad_to_8(out, ps);
                }
                QueueProp::Other { property, data } => {
                    put_u16(out, *property);
                    put_u16(out, 0);
                    put_zeros(out, 4);
                    out.extend_from_slice(data);
                    pad_to_8(out, ps);
                }
            }
            patch_len(out, ps + 2, ps);
        }
        patch_len(out, start + 8, start);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let head = r
            .peek(16)
            .map_err(|_| DecodeError::BadQueueLength { length: 0 })?;
        let length = u16::from_be_bytes([head[8], head[9]]);
        let err = DecodeError::BadQueueLength { length };
        if length < 16 {
            return Err(err);
        }
        let mut q = r.sub(usize::from(length), err)?;
        let queue_id = q.u32()?;
        let port = q.u32()?;
        q.skip(8)?;
        let mut properties = Vec::new();
        while !q.is_empty() {
            let ph = q.peek(8)?;
            let property = u16::from_be_bytes([ph[0], ph[1]]);
            let plen = u16::from_be_bytes([ph[2], ph[3]]);
            let perr = DecodeError::BadQueueLength { length: plen };
            if plen < 8 || plen % 8 != 0 {
                return Err(perr);
            }
            let mut p = q.sub(usize::from(plen), perr)?;
            p.skip(8)?;
            properties.push(match property {
                OFPQT_MIN_RATE | OFPQT_MAX_RATE => {
                    p.expect_exact(8)?;
                    let rate = p.u16()?;
                    if property == OFPQT_MIN_RATE {
                        QueueProp::MinRate(rate)
                    } else {
                        QueueProp::MaxRate(rate)
                    }
                }
                OFPQT_EXPERIMENTER => {
                    let experimenter = p.u32()?;
                    p.skip(4)?;
                    QueueProp::Experimenter {
                        experimenter,
                        data: p.rest().to_vec(),
                    }
                }
                _ => QueueProp::Other {
                    property,
                    data: p.rest().to_vec(),
                },
            });
        }
        Ok(PacketQueue {
            queue_id,
            port,
            properties,
        })
    }
}

/// QUEUE_GET_CONFIG_REPLY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueGetConfigReply {
    pub port: u32,
    pub queues: Vec<PacketQueue>,
}

// ---------------------------------------------------------------------------------------
// Roles and async configuration

wire_enum! {
    /// `ofp_controller_role`.
    pub enum ControllerRole: u32 {
        NoChange = 0,
        Equal = 1,
        Master = 2,
        Slave = 3,
    }
}

/// ROLE_REQUEST / ROLE_REPLY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleMsg {
    pub role: ControllerRole,
    pub generation_id: u64,
}

/// GET_ASYNC_REPLY / SET_ASYNC (`ofp_async_config`). Index 0 applies when the connection
/// is MASTER or EQUAL, index 1 when SLAVE; bit `1 << reason` enables a reason (see
/// [`crate::consts::async_mask`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AsyncConfig {
    pub packet_in_mask: [u32; 2],
    pub port_status_mask: [u32; 2],
    pub flow_removed_mask: [u32; 2],
}

// ---------------------------------------------------------------------------------------
// Dispatch

/// Whether a PACKET_OUT may claim `in_port` (OpenFlow 1.3.5, 7.3.7: "a valid standard
/// switch port or OFPP_CONTROLLER"). LOCAL is let through because it is a real port of a
/// switch that has one (Open vSwitch accepts it; the switch then decides whether it
/// exists). Port 0, the numbers between MAX and the reserved ports, ANY, and the reserved
/// ports that only make sense as outputs (IN_PORT, TABLE, NORMAL, FLOOD, ALL) are not
/// inputs.
pub fn packet_out_in_port_valid(in_port: u32) -> bool {
    matches!(in_port, 1..=OFPP_MAX | OFPP_CONTROLLER | OFPP_LOCAL)
}

impl Message {
    /// The checks a request must pass that need no switch state, with the error each
    /// failure gets: a PACKET_OUT's `in_port` (BAD_REQUEST/BAD_PORT), SET_CONFIG's flags
    /// (SWITCH_CONFIG_FAILED/BAD_FLAGS: only the fragment bits are defined). The agent runs
    /// it after the role check, so a slave hears IS_SLAVE first.
    pub fn validate(&self) -> Result<(), ErrorCode> {
        use crate::error::{BadRequestCode, SwitchConfigFailedCode};
        match self {
            Message::PacketOut(p) if !packet_out_in_port_valid(p.in_port) => {
                Err(ErrorCode::BadRequest(BadRequestCode::BadPort))
            }
            Message::SetConfig(c) if !ConfigFlags::known().contains(c.flags) => Err(
                ErrorCode::SwitchConfigFailed(SwitchConfigFailedCode::BadFlags),
            ),
            _ => Ok(()),
        }
    }

    pub fn msg_type(&self) -> MsgType {
        use Message as M;
        match self {
            M::Hello(_) => MsgType::Hello,
            M::Error(_) => MsgType::Error,
            M::EchoRequest(_) => MsgType::EchoRequest,
            M::EchoReply(_) => MsgType::EchoReply,
            M::Experimenter(_) => MsgType::Experimenter,
            M::FeaturesRequest => MsgType::FeaturesRequest,
            M::FeaturesReply(_) => MsgType::FeaturesReply,
            M::GetConfigRequest => MsgType::GetConfigRequest,
            M::GetConfigReply(_) => MsgType::GetConfigReply,
            M::SetConfig(_) => MsgType::SetConfig,
            M::PacketIn(_) => MsgType::PacketIn,
            M::FlowRemoved(_) => MsgType::FlowRemoved,
            M::PortStatus(_) => MsgType::PortStatus,
            M::PacketOut(_) => MsgType::PacketOut,
            M::FlowMod(_) => MsgType::FlowMod,
            M::GroupMod(_) => MsgType::GroupMod,
            M::PortMod(_) => MsgType::PortMod,
            M::TableMod(_) => MsgType::TableMod,
            M::MultipartRequest(_) => MsgType::MultipartRequest,
            M::MultipartReply(_) => MsgType::MultipartReply,
            M::BarrierRequest => MsgType::BarrierRequest,
            M::BarrierReply => MsgType::BarrierReply,
            M::QueueGetConfigRequest { .. } => MsgType::QueueGetConfigRequest,
            M::QueueGetConfigReply(_) => MsgType::QueueGetConfigReply,
            M::RoleRequest(_) => MsgType::RoleRequest,
            M::RoleReply(_) => MsgType::RoleReply,
            M::GetAsyncRequest => MsgType::GetAsyncRequest,
            M::GetAsyncReply(_) => MsgType::GetAsyncReply,
            M::SetAsync(_) => MsgType::SetAsync,
            M::MeterMod(_) => MsgType::MeterMod,
        }
    }

    /// Writes the body (everything after `ofp_header`).
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        use Message as M;
        match self {
            M::Hello(h) => h.encode(out),
            M::Error(ErrorMsg::Standard {
                err_type,
                code,
                data,
            }) => {
                put_u16(out, *err_type);
                put_u16(out, *code);
                out.extend_from_slice(data);
            }
            M::Error(ErrorMsg::Experimenter {
                exp_type,
                experimenter,
                data,
            }) => {
                put_u16(out, 0xffff);
                put_u16(out, *exp_type);
                put_u32(out, *experimenter);
                out.extend_from_slice(data);
            }
            M::EchoRequest(d) | M::EchoReply(d) => out.extend_from_slice(d),
            M::Experimenter(e) => e.encode(out),
            M::FeaturesRequest
            | M::GetConfigRequest
            | M::BarrierRequest
            | M::BarrierReply
            | M::GetAsyncRequest => {}
            M::FeaturesReply(f) => {
                put_u64(out, f.datapath_id);
                put_u32(out, f.n_buffers);
                put_u8(out, f.n_tables);
                put_u8(out, f.auxiliary_id);
                put_zeros(out, 2);
                put_u32(out, f.capabilities.0);
                put_u32(out, f.reserved);
            }
            M::GetConfigReply(c) | M::SetConfig(c) => {
                put_u16(out, c.flags.0);
                put_u16(out, c.miss_send_len);
            }
            M::PacketIn(p) => {
                put_u32(out, p.buffer_id);
                put_u16(out, p.total_len);
                put_u8(out, p.reason.raw());
                put_u8(out, p.table_id);
                put_u64(out, p.cookie);
                p.match_.encode(out);
                put_zeros(out, 2);
                out.extend_from_slice(&p.data);
            }
            M::FlowRemoved(f) => {
                put_u64(out, f.cookie);
                put_u16(out, f.priority);
                put_u8(out, f.reason.raw());
                put_u8(out, f.table_id);
                put_u32(out, f.duration_sec);
                put_u32(out, f.duration_nsec);
                put_u16(out, f.idle_timeout);
                put_u16(out, f.hard_timeout);
                put_u64(out, f.packet_count);
                put_u64(out, f.byte_count);
                f.match_.encode(out);
            }
            M::PortStatus(s) => {
                put_u8(out, s.reason.raw());
                put_zeros(out, 7);
                s.desc.encode(out);
            }
            M::PacketOut(p) => {
                put_u32(out, p.buffer_id);
                put_u32(out, p.in_port);
                let len_at = out.len();
                put_u16(out, 0);
                put_zeros(out, 6);
                let actions_start = out.len();
                encode_actions(&p.actions, out);
                patch_len(out, len_at, actions_start);
                out.extend_from_slice(&p.data);
            }
            M::FlowMod(f) => {
                put_u64(out, f.cookie);
                put_u64(out, f.cookie_mask);
                put_u8(out, f.table_id);
                put_u8(out, f.command.raw());
                put_u16(out, f.idle_timeout);
                put_u16(out, f.hard_timeout);
                put_u16(out, f.priority);
                put_u32(out, f.buffer_id);
                put_u32(out, f.out_port);
                put_u32(out, f.out_group);
                put_u16(out, f.flags.0);
                put_zeros(out, 2);
                f.match_.encode(out);
                encode_instructions(&f.instructions, out);
            }
            M::GroupMod(g) => {
                put_u16(out, g.command.raw());
                put_u8(out, g.group_type.raw());
                put_zeros(out, 1);
                put_u32(out, g.group_id);
                for b in &g.buckets {
                    b.encode(out);
                }
            }
            M::PortMod(p) => {
                put_u32(out, p.port_no);
                put_zeros(out, 4);
                out.extend_from_slice(&p.hw_addr);
                put_zeros(out, 2);
                put_u32(out, p.config.0);
                put_u32(out, p.mask.0);
                put_u32(out, p.advertise.0);
                put_zeros(out, 4);
            }
            M::TableMod(t) => {
                put_u8(out, t.table_id);
                put_zeros(out, 3);
                put_u32(out, t.config.0);
            }
            M::MultipartRequest(m) => m.encode(out),
            M::MultipartReply(m) => m.encode(out),
            M::QueueGetConfigRequest { port } => {
                put_u32(out, *port);
                put_zeros(out, 4);
            }
            M::QueueGetConfigReply(q) => {
                put_u32(out, q.port);
                put_zeros(out, 4);
                for queue in &q.queues {
                    queue.encode(out);
                }
            }
            M::RoleRequest(r) | M::RoleReply(r) => {
                put_u32(out, r.role.raw());
                put_zeros(out, 4);
                put_u64(out, r.generation_id);
            }
            M::GetAsyncReply(a) | M::SetAsync(a) => {
                for w in a
                    .packet_in_mask
                    .iter()
                    .chain(&a.port_status_mask)
                    .chain(&a.flow_removed_mask)
                {
                    put_u32(out, *w);
                }
            }
            M::MeterMod(m) => {
                put_u16(out, m.command.raw());
                put_u16(out, m.flags.0);
                put_u32(out, m.meter_id);
                for b in &m.bands {
                    b.encode(out);
                }
            }
        }
    }

    /// Decodes a body. `r` holds exactly the bytes after the header and reports
    /// BAD_REQUEST/BAD_LEN for this message type when it runs out.
    pub(crate) fn decode_body(
        ty: MsgType,
        version: u8,
        r: &mut Reader<'_>,
    ) -> Result<Message, DecodeError> {
        use Message as M;
        let msg = match ty {
            MsgType::Hello => M::Hello(Hello::decode(version, r)?),
            MsgType::Error => {
                let err_type = r.u16()?;
                if err_type == 0xffff {
                    M::Error(ErrorMsg::Experimenter {
                        exp_type: r.u16()?,
                        experimenter: r.u32()?,
                        data: r.rest().to_vec(),
                    })
                } else {
                    M::Error(ErrorMsg::Standard {
                        err_type,
                        code: r.u16()?,
                        data: r.rest().to_vec(),
                    })
                }
            }
            MsgType::EchoRequest => M::EchoRequest(r.rest().to_vec()),
            MsgType::EchoReply => M::EchoReply(r.rest().to_vec()),
            MsgType::Experimenter => M::Experimenter(ExperimenterMsg::decode(r)?),
            MsgType::FeaturesRequest => M::FeaturesRequest,
            MsgType::GetConfigRequest => M::GetConfigRequest,
            MsgType::BarrierRequest => M::BarrierRequest,
            MsgType::BarrierReply => M::BarrierReply,
            MsgType::GetAsyncRequest => M::GetAsyncRequest,
            MsgType::FeaturesReply => {
                let datapath_id = r.u64()?;
                let n_buffers = r.u32()?;
                let n_tables = r.u8()?;
                let auxiliary_id = r.u8()?;
                r.skip(2)?;
                M::FeaturesReply(SwitchFeatures {
                    datapath_id,
                    n_buffers,
                    n_tables,
                    auxiliary_id,
                    capabilities: Capabilities(r.u32()?),
                    reserved: r.u32()?,
                })
            }
            MsgType::GetConfigReply | MsgType::SetConfig => {
                let c = SwitchConfig {
                    flags: ConfigFlags(r.u16()?),
                    miss_send_len: r.u16()?,
                };
                if ty == MsgType::SetConfig {
                    M::SetConfig(c)
                } else {
                    M::GetConfigReply(c)
                }
            }
            MsgType::PacketIn => {
                let buffer_id = r.u32()?;
                let total_len = r.u16()?;
                let reason = PacketInReason::from_raw(r.u8()?);
                let table_id = r.u8()?;
                let cookie = r.u64()?;
                let match_ = Match::decode(r)?;
                r.skip(2)?;
                M::PacketIn(PacketIn {
                    buffer_id,
                    total_len,
                    reason,
                    table_id,
                    cookie,
                    match_,
                    data: r.rest().to_vec(),
                })
            }
            MsgType::FlowRemoved => M::FlowRemoved(FlowRemoved {
                cookie: r.u64()?,
                priority: r.u16()?,
                reason: FlowRemovedReason::from_raw(r.u8()?),
                table_id: r.u8()?,
                duration_sec: r.u32()?,
                duration_nsec: r.u32()?,
                idle_timeout: r.u16()?,
                hard_timeout: r.u16()?,
                packet_count: r.u64()?,
                byte_count: r.u64()?,
                match_: Match::decode(r)?,
            }),
            MsgType::PortStatus => {
                let reason = PortReason::from_raw(r.u8()?);
                r.skip(7)?;
                M::PortStatus(PortStatus {
                    reason,
                    desc: Port::decode(r)?,
                })
            }
            MsgType::PacketOut => {
                let buffer_id = r.u32()?;
                let in_port = r.u32()?;
                let actions_len = r.u16()?;
                r.skip(6)?;
                let actions = r
                    .bytes(usize::from(actions_len))
                    .map_err(|_| DecodeError::BadPacketOutActionsLength { actions_len })?;
                M::PacketOut(PacketOut {
                    buffer_id,
                    in_port,
                    actions: decode_actions(actions)?,
                    data: r.rest().to_vec(),
                })
            }
            MsgType::FlowMod => {
                let cookie = r.u64()?;
                let cookie_mask = r.u64()?;
                let table_id = r.u8()?;
                let command = r.u8()?;
                let command = FlowModCommand::from_raw(command)
                    .ok_or(DecodeError::BadFlowModCommand { command })?;
                let idle_timeout = r.u16()?;
                let hard_timeout = r.u16()?;
                let priority = r.u16()?;
                let buffer_id = r.u32()?;
                let out_port = r.u32()?;
                let out_group = r.u32()?;
                let flags = FlowModFlags(r.u16()?);
                r.skip(2)?;
                let match_ = Match::decode(r)?;
                M::FlowMod(FlowMod {
                    cookie,
                    cookie_mask,
                    table_id,
                    command,
                    idle_timeout,
                    hard_timeout,
                    priority,
                    buffer_id,
                    out_port,
                    out_group,
                    flags,
                    match_,
                    instructions: decode_instructions(r.rest())?,
                })
            }
            MsgType::GroupMod => {
                let command = r.u16()?;
                let command = GroupModCommand::from_raw(command)
                    .ok_or(DecodeError::BadGroupCommand { command })?;
                let group_type = r.u8()?;
                let group_type = GroupType::from_raw(group_type)
                    .ok_or(DecodeError::BadGroupType { group_type })?;
                r.skip(1)?;
                M::GroupMod(GroupMod {
                    command,
                    group_type,
                    group_id: r.u32()?,
                    buckets: decode_buckets(r.rest())?,
                })
            }
            MsgType::PortMod => {
                let port_no = r.u32()?;
                r.skip(4)?;
                let hw_addr = r.array()?;
                r.skip(2)?;
                let pm = PortMod {
                    port_no,
                    hw_addr,
                    config: PortConfig(r.u32()?),
                    mask: PortConfig(r.u32()?),
                    advertise: PortFeatures(r.u32()?),
                };
                r.skip(4)?;
                M::PortMod(pm)
            }
            MsgType::TableMod => {
                let table_id = r.u8()?;
                r.skip(3)?;
                M::TableMod(TableMod {
                    table_id,
                    config: TableConfig(r.u32()?),
                })
            }
            MsgType::MultipartRequest => M::MultipartRequest(MultipartRequest::decode(r)?),
            MsgType::MultipartReply => M::MultipartReply(MultipartReply::decode(r)?),
            MsgType::QueueGetConfigRequest => {
                let port = r.u32()?;
                r.skip(4)?;
                M::QueueGetConfigRequest { port }
            }
            MsgType::QueueGetConfigReply => {
                let port = r.u32()?;
                r.skip(4)?;
                let mut queues = Vec::new();
                while !r.is_empty() {
                    queues.push(PacketQueue::decode(r)?);
                }
                M::QueueGetConfigReply(QueueGetConfigReply { port, queues })
            }
            MsgType::RoleRequest | MsgType::RoleReply => {
                let role = r.u32()?;
                let role = ControllerRole::from_raw(role)
                    .ok_or(DecodeError::BadControllerRole { role })?;
                r.skip(4)?;
                let m = RoleMsg {
                    role,
                    generation_id: r.u64()?,
                };
                if ty == MsgType::RoleRequest {
                    M::RoleRequest(m)
                } else {
                    M::RoleReply(m)
                }
            }
            MsgType::GetAsyncReply | MsgType::SetAsync => {
                let a = AsyncConfig {
                    packet_in_mask: [r.u32()?, r.u32()?],
                    port_status_mask: [r.u32()?, r.u32()?],
                    flow_removed_mask: [r.u32()?, r.u32()?],
                };
                if ty == MsgType::SetAsync {
                    M::SetAsync(a)
                } else {
                    M::GetAsyncReply(a)
                }
            }
            MsgType::MeterMod => {
                let command = r.u16()?;
                let command = MeterModCommand::from_raw(command)
                    .ok_or(DecodeError::BadMeterCommand { command })?;
                M::MeterMod(MeterMod {
                    command,
                    flags: MeterFlags(r.u16()?),
                    meter_id: r.u32()?,
                    bands: decode_bands(r.rest())?,
                })
            }
        };
        // Fixed-layout messages must not carry trailing bytes.
        r.expect_exact(0)?;
        Ok(msg)
    }
}
