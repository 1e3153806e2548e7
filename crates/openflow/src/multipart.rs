//! MULTIPART_REQUEST / MULTIPART_REPLY and every body type, including table features.

use crate::consts::{FlowModFlags, GroupCapabilities, MeterFlags, MultipartFlags, TableConfig};
use crate::error::{DecodeError, EncodeError};
use crate::instruction::{decode_instructions, encode_instructions, Instruction};
use crate::messages::{
    decode_bands, decode_buckets, Bucket, ExperimenterMsg, GroupType, MeterBand, Port, OFP_PORT_LEN,
};
use crate::oxm::{Match, OFPXMC_EXPERIMENTER};
use crate::wire::{
    pad_to_8, patch_len, put_u16, put_u32, put_u64, put_u8, put_zeros, round_up_8, wire_enum,
    FixedStr, Reader,
};

wire_enum! {
    /// `ofp_multipart_type`.
    pub enum MultipartType: u16 {
        Desc = 0,
        Flow = 1,
        Aggregate = 2,
        Table = 3,
        PortStats = 4,
        Queue = 5,
        Group = 6,
        GroupDesc = 7,
        GroupFeatures = 8,
        Meter = 9,
        MeterConfig = 10,
        MeterFeatures = 11,
        TableFeatures = 12,
        PortDesc = 13,
        Experimenter = 0xffff,
    }
}

/// MULTIPART_REQUEST. `flags` carries REQ_MORE when a request spans several messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartRequest {
    pub flags: MultipartFlags,
    pub body: MultipartRequestBody,
}

/// MULTIPART_REPLY. `flags` carries REPLY_MORE on every message of a reply but the last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartReply {
    pub flags: MultipartFlags,
    pub body: MultipartReplyBody,
}

/// Request bodies, one per multipart type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultipartRequestBody {
    Desc,
    Flow(FlowStatsRequest),
    Aggregate(FlowStatsRequest),
    Table,
    /// OFPP_ANY for all ports.
    PortStats {
        port_no: u32,
    },
    /// OFPP_ANY / OFPQ_ALL for all.
    Queue {
        port_no: u32,
        queue_id: u32,
    },
    /// OFPG_ALL for all groups.
    Group {
        group_id: u32,
    },
    GroupDesc,
    GroupFeatures,
    /// OFPM_ALL for all meters.
    Meter {
        meter_id: u32,
    },
    MeterConfig {
        meter_id: u32,
    },
    MeterFeatures,
    /// Empty to query; non-empty to set the tables' features.
    TableFeatures(Vec<TableFeatures>),
    PortDesc,
    Experimenter(ExperimenterMsg),
}

/// Reply bodies, one per multipart type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultipartReplyBody {
    /// Boxed: 1056 bytes of fixed strings would bloat every message otherwise.
    Desc(Box<Desc>),
    Flow(Vec<FlowStats>),
    Aggregate(AggregateStats),
    Table(Vec<TableStats>),
    PortStats(Vec<PortStats>),
    Queue(Vec<QueueStats>),
    Group(Vec<GroupStats>),
    GroupDesc(Vec<GroupDesc>),
    GroupFeatures(GroupFeatures),
    Meter(Vec<MeterStats>),
    MeterConfig(Vec<MeterConfig>),
    MeterFeatures(MeterFeatures),
    TableFeatures(Vec<TableFeatures>),
    PortDesc(Vec<Port>),
    Experimenter(ExperimenterMsg),
}

impl MultipartRequestBody {
    pub fn multipart_type(&self) -> MultipartType {
        use MultipartRequestBody as B;
        match self {
            B::Desc => MultipartType::Desc,
            B::Flow(_) => MultipartType::Flow,
            B::Aggregate(_) => MultipartType::Aggregate,
            B::Table => MultipartType::Table,
            B::PortStats { .. } => MultipartType::PortStats,
            B::Queue { .. } => MultipartType::Queue,
            B::Group { .. } => MultipartType::Group,
            B::GroupDesc => MultipartType::GroupDesc,
            B::GroupFeatures => MultipartType::GroupFeatures,
            B::Meter { .. } => MultipartType::Meter,
            B::MeterConfig { .. } => MultipartType::MeterConfig,
            B::MeterFeatures => MultipartType::MeterFeatures,
            B::TableFeatures(_) => MultipartType::TableFeatures,
            B::PortDesc => MultipartType::PortDesc,
            B::Experimenter(_) => MultipartType::Experimenter,
        }
    }
}

impl MultipartReplyBody {
    pub fn multipart_type(&self) -> MultipartType {
        use MultipartReplyBody as B;
        match self {
            B::Desc(_) => MultipartType::Desc,
            B::Flow(_) => MultipartType::Flow,
            B::Aggregate(_) => MultipartType::Aggregate,
            B::Table(_) => MultipartType::Table,
            B::PortStats(_) => MultipartType::PortStats,
            B::Queue(_) => MultipartType::Queue,
            B::Group(_) => MultipartType::Group,
            B::GroupDesc(_) => MultipartType::GroupDesc,
            B::GroupFeatures(_) => MultipartType::GroupFeatures,
            B::Meter(_) => MultipartType::Meter,
            B::MeterConfig(_) => MultipartType::MeterConfig,
            B::MeterFeatures(_) => MultipartType::MeterFeatures,
            B::TableFeatures(_) => MultipartType::TableFeatures,
            B::PortDesc(_) => MultipartType::PortDesc,
            B::Experimenter(_) => MultipartType::Experimenter,
        }
    }
}

/// Reads the multipart header and returns the type, leaving `r` at the body.
fn decode_mp_header(r: &mut Reader<'_>) -> Result<(MultipartType, MultipartFlags), DecodeError> {
    let mp_type = r.u16()?;
    let flags = MultipartFlags(r.u16()?);
    r.skip(4)?;
    let ty =
        MultipartType::from_raw(mp_type).ok_or(DecodeError::UnknownMultipartType { mp_type })?;
    Ok((ty, flags))
}

fn body_reader<'a>(r: &mut Reader<'a>, ty: MultipartType) -> Reader<'a> {
    Reader::new(
        r.rest(),
        DecodeError::BadMultipartLength { mp_type: ty.raw() },
    )
}

/// Decodes entries of a variable-length list until the body is used up.
fn decode_list<'a, T>(
    r: &mut Reader<'a>,
    mut f: impl FnMut(&mut Reader<'a>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(f(r)?);
    }
    Ok(out)
}

/// Takes one length-prefixed entry whose 16-bit length sits at `len_offset` and must be at
/// least `min`.
fn take_entry<'a>(
    r: &mut Reader<'a>,
    len_offset: usize,
    min: usize,
) -> Result<Reader<'a>, DecodeError> {
    let head = r
        .peek(len_offset + 2)
        .map_err(|_| DecodeError::BadStatsEntryLength { length: 0 })?;
    let length = u16::from_be_bytes([head[len_offset], head[len_offset + 1]]);
    let err = DecodeError::BadStatsEntryLength { length };
    if usize::from(length) < min {
        return Err(err);
    }
    r.sub(usize::from(length), err)
}

/// OpenFlow header plus `ofp_multipart_reply`'s own 8 bytes: what each part costs besides
/// its entries.
pub const MULTIPART_HEADER_LEN: usize = crate::OFP_HEADER_LEN + 8;

/// Cuts `items` into runs whose encodings each take at most `budget` bytes; always at
/// least one (possibly empty) run.
fn split_list<T: Clone>(
    items: &[T],
    budget: usize,
    mp_type: u16,
    encode: impl Fn(&T, &mut Vec<u8>),
    wrap: impl Fn(Vec<T>) -> MultipartReplyBody,
) -> Result<Vec<MultipartReplyBody>, EncodeError> {
    let mut parts = Vec::new();
    let mut run: Vec<T> = Vec::new();
    let mut used = 0;
    let mut scratch = Vec::new();
    for item in items {
        scratch.clear();
        encode(item, &mut scratch);
        let len = scratch.len();
        // An entry's own length field is 16 bits wide too (flow stats, table features...).
        if len > budget || len > usize::from(u16::MAX) {
            return Err(EncodeError::MultipartEntryTooLong {
                mp_type,
                length: len + MULTIPART_HEADER_LEN,
            });
        }
        if used + len > budget {
            parts.push(wrap(std::mem::take(&mut run)));
            used = 0;
        }
        run.push(item.clone());
        used += len;
    }
    parts.push(wrap(run));
    Ok(parts)
}

impl MultipartRequest {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_u16(out, self.body.multipart_type().raw());
        put_u16(out, self.flags.0);
        put_zeros(out, 4);
        use MultipartRequestBody as B;
        match &self.body {
            B::Desc
            | B::Table
            | B::GroupDesc
            | B::GroupFeatures
            | B::MeterFeatures
            | B::PortDesc => {}
            B::Flow(f) | B::Aggregate(f) => f.encode(out),
            B::PortStats { port_no } => {
                put_u32(out, *port_no);
                put_zeros(out, 4);
            }
            B::Queue { port_no, queue_id } => {
                put_u32(out, *port_no);
                put_u32(out, *queue_id);
            }
            B::Group { group_id } => {
                put_u32(out, *group_id);
                put_zeros(out, 4);
            }
            B::Meter { meter_id } | B::MeterConfig { meter_id } => {
                put_u32(out, *meter_id);
                put_zeros(out, 4);
            }
            B::TableFeatures(t) => t.iter().for_each(|t| t.encode(out)),
            B::Experimenter(e) => e.encode(out),
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (ty, flags) = decode_mp_header(r)?;
        let mut b = body_reader(r, ty);
        use MultipartRequestBody as B;
        let body = match ty {
            MultipartType::Desc => B::Desc,
            MultipartType::Table => B::Table,
            MultipartType::GroupDesc => B::GroupDesc,
            MultipartType::GroupFeatures => B::GroupFeatures,
            MultipartType::MeterFeatures => B::MeterFeatures,
            MultipartType::PortDesc => B::PortDesc,
            MultipartType::Flow => B::Flow(FlowStatsRequest::decode(&mut b)?),
            MultipartType::Aggregate => B::Aggregate(FlowStatsRequest::decode(&mut b)?),
            MultipartType::PortStats => {
                let port_no = b.u32()?;
                b.skip(4)?;
                B::PortStats { port_no }
            }
            MultipartType::Queue => B::Queue {
                port_no: b.u32()?,
                queue_id: b.u32()?,
            },
            MultipartType::Group => {
                let group_id = b.u32()?;
                b.skip(4)?;
                B::Group { group_id }
            }
            MultipartType::Meter | MultipartType::MeterConfig => {
                let meter_id = b.u32()?;
                b.skip(4)?;
                if ty == MultipartType::Meter {
                    B::Meter { meter_id }
                } else {
                    B::MeterConfig { meter_id }
                }
            }
            MultipartType::TableFeatures => {
                B::TableFeatures(decode_list(&mut b, TableFeatures::decode)?)
            }
            MultipartType::Experimenter => B::Experimenter(ExperimenterMsg::decode(&mut b)?),
        };
        b.expect_exact(0)?;
        Ok(MultipartRequest { flags, body })
    }
}

impl MultipartReply {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_u16(out, self.body.multipart_type().raw());
        put_u16(out, self.flags.0);
        put_zeros(out, 4);
        use MultipartReplyBody as B;
        match &self.body {
            B::Desc(d) => d.encode(out),
            B::Flow(v) => v.iter().for_each(|x| x.encode(out)),
            B::Aggregate(a) => {
                put_u64(out, a.packet_count);
                put_u64(out, a.byte_count);
                put_u32(out, a.flow_count);
                put_zeros(out, 4);
            }
            B::Table(v) => v.iter().for_each(|t| t.encode(out)),
            B::PortStats(v) => v.iter().for_each(|p| p.encode(out)),
            B::Queue(v) => v.iter().for_each(|q| q.encode(out)),
            B::Group(v) => v.iter().for_each(|g| g.encode(out)),
            B::GroupDesc(v) => v.iter().for_each(|g| g.encode(out)),
            B::GroupFeatures(g) => g.encode(out),
            B::Meter(v) => v.iter().for_each(|m| m.encode(out)),
            B::MeterConfig(v) => v.iter().for_each(|m| m.encode(out)),
            B::MeterFeatures(m) => {
                put_u32(out, m.max_meter);
                put_u32(out, m.band_types);
                put_u32(out, m.capabilities);
                put_u8(out, m.max_bands);
                put_u8(out, m.max_color);
                put_zeros(out, 2);
            }
            B::TableFeatures(v) => v.iter().for_each(|t| t.encode(out)),
            B::PortDesc(v) => v.iter().for_each(|p| p.encode(out)),
            B::Experimenter(e) => e.encode(out),
        }
    }

    /// Splits the reply into messages of at most `max_len` encoded bytes each (header
    /// included), so that no reply is ever too long to send: list bodies (flows, tables,
    /// ports, queues, groups, meters, table features...) are cut between entries, in order;
    /// every part but the last carries REPLY_MORE, and all of them do when `self` already
    /// did (a reply the caller had cut into parts itself). An empty list stays one message.
    ///
    /// Fails with [`EncodeError::MultipartEntryTooLong`] when a single entry (or a body that
    /// is not a list) cannot fit in one message: the caller must answer with an error
    /// rather than send nothing (see [`EncodeError::code`]).
    pub fn split_to_fit(&self, max_len: usize) -> Result<Vec<MultipartReply>, EncodeError> {
        let budget = max_len.saturating_sub(MULTIPART_HEADER_LEN);
        let mp_type = self.body.multipart_type().raw();
        use MultipartReplyBody as B;
        let bodies = match &self.body {
            B::Flow(v) => split_list(v, budget, mp_type, FlowStats::encode, B::Flow)?,
            B::Table(v) => split_list(v, budget, mp_type, TableStats::encode, B::Table)?,
            B::PortStats(v) => split_list(v, budget, mp_type, PortStats::encode, B::PortStats)?,
            B::Queue(v) => split_list(v, budget, mp_type, QueueStats::encode, B::Queue)?,
            B::Group(v) => split_list(v, budget, mp_type, GroupStats::encode, B::Group)?,
            B::GroupDesc(v) => split_list(v, budget, mp_type, GroupDesc::encode, B::GroupDesc)?,
            B::Meter(v) => split_list(v, budget, mp_type, MeterStats::encode, B::Meter)?,
            B::MeterConfig(v) => {
                split_list(v, budget, mp_type, MeterConfig::encode, B::MeterConfig)?
            }
            B::TableFeatures(v) => {
                split_list(v, budget, mp_type, TableFeatures::encode, B::TableFeatures)?
            }
            B::PortDesc(v) => split_list(v, budget, mp_type, Port::encode, B::PortDesc)?,
            B::Desc(_)
            | B::Aggregate(_)
            | B::GroupFeatures(_)
            | B::MeterFeatures(_)
            | B::Experimenter(_) => {
                let mut out = Vec::new();
                self.encode(&mut out);
                let length = out.len() + crate::OFP_HEADER_LEN;
                if length > max_len {
                    return Err(EncodeError::MultipartEntryTooLong { mp_type, length });
                }
                vec![self.body.clone()]
            }
        };
        let last = bodies.len() - 1;
        Ok(bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| MultipartReply {
                flags: if i < last || self.flags.contains(MultipartFlags::MORE) {
                    MultipartFlags::MORE
                } else {
                    MultipartFlags::empty()
                },
                body,
            })
            .collect())
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (ty, flags) = decode_mp_header(r)?;
        let mut b = body_reader(r, ty);
        use MultipartReplyBody as B;
        let body = match ty {
            MultipartType::Desc => B::Desc(Box::new(Desc::decode(&mut b)?)),
            MultipartType::Flow => B::Flow(decode_list(&mut b, FlowStats::decode)?),
            MultipartType::Aggregate => {
                let a = AggregateStats {
                    packet_count: b.u64()?,
                    byte_count: b.u64()?,
                    flow_count: b.u32()?,
                };
                b.skip(4)?;
                B::Aggregate(a)
            }
            MultipartType::Table => B::Table(decode_list(&mut b, |b| {
                let table_id = b.u8()?;
                b.skip(3)?;
                Ok(TableStats {
                    table_id,
                    active_count: b.u32()?,
                    lookup_count: b.u64()?,
                    matched_count: b.u64()?,
                })
            })?),
            MultipartType::PortStats => B::PortStats(decode_list(&mut b, PortStats::decode)?),
            MultipartType::Queue => B::Queue(decode_list(&mut b, |b| {
                Ok(QueueStats {
                    port_no: b.u32()?,
                    queue_id: b.u32()?,
                    tx_bytes: b.u64()?,
                    tx_packets: b.u64()?,
                    tx_errors: b.u64()?,
                    duration_sec: b.u32()?,
                    duration_nsec: b.u32()?,
                })
            })?),
            MultipartType::Group => B::Group(decode_list(&mut b, GroupStats::decode)?),
            MultipartType::GroupDesc => B::GroupDesc(decode_list(&mut b, GroupDesc::decode)?),
            MultipartType::GroupFeatures => B::GroupFeatures(GroupFeatures::decode(&mut b)?),
            MultipartType::Meter => B::Meter(decode_list(&mut b, MeterStats::decode)?),
            MultipartType::MeterConfig => B::MeterConfig(decode_list(&mut b, MeterConfig::decode)?),
            MultipartType::MeterFeatures => {
                let m = MeterFeatures {
                    max_meter: b.u32()?,
                    band_types: b.u32()?,
                    capabilities: b.u32()?,
                    max_bands: b.u8()?,
                    max_color: b.u8()?,
                };
                b.skip(2)?;
                B::MeterFeatures(m)
            }
            MultipartType::TableFeatures => {
                B::TableFeatures(decode_list(&mut b, TableFeatures::decode)?)
            }
            MultipartType::PortDesc => B::PortDesc(decode_list(&mut b, |b| {
                let mut p = b.sub(OFP_PORT_LEN, DecodeError::BadStatsEntryLength { length: 0 })?;
                Port::decode(&mut p)
            })?),
            MultipartType::Experimenter => B::Experimenter(ExperimenterMsg::decode(&mut b)?),
        };
        b.expect_exact(0)?;
        Ok(MultipartReply { flags, body })
    }
}

// ---------------------------------------------------------------------------------------
// DESC

/// `ofp_desc`: the switch's self-description.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Desc {
    pub mfr_desc: FixedStr<256>,
    pub hw_desc: FixedStr<256>,
    pub sw_desc: FixedStr<256>,
    pub serial_num: FixedStr<32>,
    pub dp_desc: FixedStr<256>,
}

impl Desc {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.mfr_desc.0);
        out.extend_from_slice(&self.hw_desc.0);
        out.extend_from_slice(&self.sw_desc.0);
        out.extend_from_slice(&self.serial_num.0);
        out.extend_from_slice(&self.dp_desc.0);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Desc {
            mfr_desc: FixedStr(r.array()?),
            hw_desc: FixedStr(r.array()?),
            sw_desc: FixedStr(r.array()?),
            serial_num: FixedStr(r.array()?),
            dp_desc: FixedStr(r.array()?),
        })
    }
}

// ---------------------------------------------------------------------------------------
// FLOW and AGGREGATE

/// `ofp_flow_stats_request` / `ofp_aggregate_stats_request` (same layout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStatsRequest {
    /// OFPTT_ALL for all tables.
    pub table_id: u8,
    /// OFPP_ANY: no restriction.
    pub out_port: u32,
    /// OFPG_ANY: no restriction.
    pub out_group: u32,
    pub cookie: u64,
    /// Zero: cookie not checked.
    pub cookie_mask: u64,
    pub match_: Match,
}

impl FlowStatsRequest {
    fn encode(&self, out: &mut Vec<u8>) {
        put_u8(out, self.table_id);
        put_zeros(out, 3);
        put_u32(out, self.out_port);
        put_u32(out, self.out_group);
        put_zeros(out, 4);
        put_u64(out, self.cookie);
        put_u64(out, self.cookie_mask);
        self.match_.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let table_id = r.u8()?;
        r.skip(3)?;
        let out_port = r.u32()?;
        let out_group = r.u32()?;
        r.skip(4)?;
        Ok(FlowStatsRequest {
            table_id,
            out_port,
            out_group,
            cookie: r.u64()?,
            cookie_mask: r.u64()?,
            match_: Match::decode(r)?,
        })
    }
}

/// `ofp_flow_stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStats {
    pub table_id: u8,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub priority: u16,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub flags: FlowModFlags,
    pub cookie: u64,
    pub packet_count: u64,
    pub byte_count: u64,
    pub match_: Match,
    pub instructions: Vec<Instruction>,
}

impl FlowStats {
    fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        put_u16(out, 0);
        put_u8(out, self.table_id);
        put_zeros(out, 1);
        put_u32(out, self.duration_sec);
        put_u32(out, self.duration_nsec);
        put_u16(out, self.priority);
        put_u16(out, self.idle_timeout);
        put_u16(out, self.hard_timeout);
        put_u16(out, self.flags.0);
        put_zeros(out, 4);
        put_u64(out, self.cookie);
        put_u64(out, self.packet_count);
        put_u64(out, self.byte_count);
        self.match_.encode(out);
        encode_instructions(&self.instructions, out);
        patch_len(out, start, start);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut e = take_entry(r, 0, 56)?;
        e.skip(2)?;
        let table_id = e.u8()?;
        e.skip(1)?;
        let duration_sec = e.u32()?;
        let duration_nsec = e.u32()?;
        let priority = e.u16()?;
        let idle_timeout = e.u16()?;
        let hard_timeout = e.u16()?;
        let flags = FlowModFlags(e.u16()?);
        e.skip(4)?;
        Ok(FlowStats {
            table_id,
            duration_sec,
            duration_nsec,
            priority,
            idle_timeout,
            hard_timeout,
            flags,
            cookie: e.u64()?,
            packet_count: e.u64()?,
            byte_count: e.u64()?,
            match_: Match::decode(&mut e)?,
            instructions: decode_instructions(e.rest())?,
        })
    }
}

/// `ofp_aggregate_stats_reply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggregateStats {
    pub packet_count: u64,
    pub byte_count: u64,
    pub flow_count: u32,
}

// ---------------------------------------------------------------------------------------
// TABLE, PORT_STATS, QUEUE

/// `ofp_table_stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableStats {
    pub table_id: u8,
    pub active_count: u32,
    pub lookup_count: u64,
    pub matched_count: u64,
}

impl TableStats {
    fn encode(&self, out: &mut Vec<u8>) {
        put_u8(out, self.table_id);
        put_zeros(out, 3);
        put_u32(out, self.active_count);
        put_u64(out, self.lookup_count);
        put_u64(out, self.matched_count);
    }
}

/// `ofp_port_stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortStats {
    pub port_no: u32,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_frame_err: u64,
    pub rx_over_err: u64,
    pub rx_crc_err: u64,
    pub collisions: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
}

impl PortStats {
    fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.port_no);
        put_zeros(out, 4);
        for v in [
            self.rx_packets,
            self.tx_packets,
            self.rx_bytes,
            self.tx_bytes,
            self.rx_dropped,
            self.tx_dropped,
            self.rx_errors,
            self.tx_errors,
            self.rx_frame_err,
            self.rx_over_err,
            self.rx_crc_err,
            self.collisions,
        ] {
            put_u64(out, v);
        }
        put_u32(out, self.duration_sec);
        put_u32(out, self.duration_nsec);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let port_no = r.u32()?;
        r.skip(4)?;
        Ok(PortStats {
            port_no,
            rx_packets: r.u64()?,
            tx_packets: r.u64()?,
            rx_bytes: r.u64()?,
            tx_bytes: r.u64()?,
            rx_dropped: r.u64()?,
            tx_dropped: r.u64()?,
            rx_errors: r.u64()?,
            tx_errors: r.u64()?,
            rx_frame_err: r.u64()?,
            rx_over_err: r.u64()?,
            rx_crc_err: r.u64()?,
            collisions: r.u64()?,
            duration_sec: r.u32()?,
            duration_nsec: r.u32()?,
        })
    }
}

/// `ofp_queue_stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueStats {
    pub port_no: u32,
    pub queue_id: u32,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
}

impl QueueStats {
    fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.port_no);
        put_u32(out, self.queue_id);
        put_u64(out, self.tx_bytes);
        put_u64(out, self.tx_packets);
        put_u64(out, self.tx_errors);
        put_u32(out, self.duration_sec);
        put_u32(out, self.duration_nsec);
    }
}

// ---------------------------------------------------------------------------------------
// GROUP, GROUP_DESC, GROUP_FEATURES

/// `ofp_bucket_counter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketCounter {
    pub packet_count: u64,
    pub byte_count: u64,
}

/// `ofp_group_stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStats {
    pub group_id: u32,
    pub ref_count: u32,
    pub packet_count: u64,
    pub byte_count: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub bucket_stats: Vec<BucketCounter>,
}

impl GroupStats {
    fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        put_u16(out, 0);
        put_zeros(out, 2);
        put_u32(out, self.group_id);
        put_u32(out, self.ref_count);
        put_zeros(out, 4);
        put_u64(out, self.packet_count);
        put_u64(out, self.byte_count);
        put_u32(out, self.duration_sec);
        put_u32(out, self.duration_nsec);
        for b in &self.bucket_stats {
            put_u64(out, b.packet_count);
            put_u64(out, b.byte_count);
        }
        patch_len(out, start, start);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut e = take_entry(r, 0, 40)?;
        e.skip(4)?;
        let group_id = e.u32()?;
        let ref_count = e.u32()?;
        e.skip(4)?;
        Ok(GroupStats {
            group_id,
            ref_count,
            packet_count: e.u64()?,
            byte_count: e.u64()?,
            duration_sec: e.u32()?,
            duration_nsec: e.u32()?,
            bucket_stats: decode_list(&mut e, |e| {
                Ok(BucketCounter {
                    packet_count: e.u64()?,
                    byte_count: e.u64()?,
                })
            })?,
        })
    }
}

/// `ofp_group_desc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDesc {
    pub group_type: GroupType,
    pub group_id: u32,
    pub buckets: Vec<Bucket>,
}

impl GroupDesc {
    fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        put_u16(out, 0);
        put_u8(out, self.group_type.raw());
        put_zeros(out, 1);
        put_u32(out, self.group_id);
        for b in &self.buckets {
            b.encode(out);
        }
        patch_len(out, start, start);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut e = take_entry(r, 0, 8)?;
        e.skip(2)?;
        let group_type = e.u8()?;
        let group_type =
            GroupType::from_raw(group_type).ok_or(DecodeError::BadGroupType { group_type })?;
        e.skip(1)?;
        Ok(GroupDesc {
            group_type,
            group_id: e.u32()?,
            buckets: decode_buckets(e.rest())?,
        })
    }
}

/// `ofp_group_features`. Index `i` of the arrays is group type `i` (ALL, SELECT, INDIRECT,
/// FF); `actions` are bitmaps of `1 << action_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupFeatures {
    /// Bitmap of `1 << group_type`.
    pub types: u32,
    pub capabilities: GroupCapabilities,
    pub max_groups: [u32; 4],
    pub actions: [u32; 4],
}

impl GroupFeatures {
    fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.types);
        put_u32(out, self.capabilities.0);
        for v in self.max_groups.iter().chain(&self.actions) {
            put_u32(out, *v);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(GroupFeatures {
            types: r.u32()?,
            capabilities: GroupCapabilities(r.u32()?),
            max_groups: [r.u32()?, r.u32()?, r.u32()?, r.u32()?],
            actions: [r.u32()?, r.u32()?, r.u32()?, r.u32()?],
        })
    }
}

// ---------------------------------------------------------------------------------------
// METER, METER_CONFIG, METER_FEATURES

/// `ofp_meter_band_stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeterBandStats {
    pub packet_band_count: u64,
    pub byte_band_count: u64,
}

/// `ofp_meter_stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterStats {
    pub meter_id: u32,
    pub flow_count: u32,
    pub packet_in_count: u64,
    pub byte_in_count: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub band_stats: Vec<MeterBandStats>,
}

impl MeterStats {
    fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        put_u32(out, self.meter_id);
        put_u16(out, 0);
        put_zeros(out, 6);
        put_u32(out, self.flow_count);
        put_u64(out, self.packet_in_count);
        put_u64(out, self.byte_in_count);
        put_u32(out, self.duration_sec);
        put_u32(out, self.duration_nsec);
        for b in &self.band_stats {
            put_u64(out, b.packet_band_count);
            put_u64(out, b.byte_band_count);
        }
        patch_len(out, start + 4, start);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut e = take_entry(r, 4, 40)?;
        let meter_id = e.u32()?;
        e.skip(8)?;
        Ok(MeterStats {
            meter_id,
            flow_count: e.u32()?,
            packet_in_count: e.u64()?,
            byte_in_count: e.u64()?,
            duration_sec: e.u32()?,
            duration_nsec: e.u32()?,
            band_stats: decode_list(&mut e, |e| {
                Ok(MeterBandStats {
                    packet_band_count: e.u64()?,
                    byte_band_count: e.u64()?,
                })
            })?,
        })
    }
}

/// `ofp_meter_config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterConfig {
    pub flags: MeterFlags,
    pub meter_id: u32,
    pub bands: Vec<MeterBand>,
}

impl MeterConfig {
    fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        put_u16(out, 0);
        put_u16(out, self.flags.0);
        put_u32(out, self.meter_id);
        for b in &self.bands {
            b.encode(out);
        }
        patch_len(out, start, start);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut e = take_entry(r, 0, 8)?;
        e.skip(2)?;
        Ok(MeterConfig {
            flags: MeterFlags(e.u16()?),
            meter_id: e.u32()?,
            bands: decode_bands(e.rest())?,
        })
    }
}

/// `ofp_meter_features`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MeterFeatures {
    pub max_meter: u32,
    /// Bitmap of `1 << band_type`.
    pub band_types: u32,
    /// Supported `ofp_meter_flags` bits; the wire field is 32 bits wide while
    /// [`MeterFlags`] is 16, so it stays raw to round-trip every value.
    pub capabilities: u32,
    pub max_bands: u8,
    pub max_color: u8,
}

// ---------------------------------------------------------------------------------------
// TABLE_FEATURES

wire_enum! {
    /// `ofp_table_feature_prop_type`.
    pub enum TableFeaturePropType: u16 {
        Instructions = 0,
        InstructionsMiss = 1,
        NextTables = 2,
        NextTablesMiss = 3,
        WriteActions = 4,
        WriteActionsMiss = 5,
        ApplyActions = 6,
        ApplyActionsMiss = 7,
        Match = 8,
        Wildcards = 10,
        WriteSetfield = 12,
        WriteSetfieldMiss = 13,
        ApplySetfield = 14,
        ApplySetfieldMiss = 15,
        Experimenter = 0xfffe,
        ExperimenterMiss = 0xffff,
    }
}

/// An instruction or action id in a table feature property: the 4-byte type/length header,
/// or an experimenter id with its experimenter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeatureId {
    /// A standard instruction or action type (never 0xffff).
    Type(u16),
    Experimenter(u32),
}

/// An OXM id in a table feature property: the 32-bit OXM header, plus the experimenter
/// id for class OFPXMC_EXPERIMENTER.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OxmId {
    pub header: u32,
    /// Present exactly when the header's class is OFPXMC_EXPERIMENTER.
    pub experimenter: Option<u32>,
}

impl OxmId {
    /// The id of a basic field (as announced in MATCH, WILDCARDS, *_SETFIELD properties).
    pub fn basic(field: crate::oxm::OxmField, has_mask: bool) -> Self {
        OxmId {
            header: field.header(has_mask),
            experimenter: None,
        }
    }
}

/// One `ofp_table_feature_prop_*`. `miss` selects the *_MISS variant (the capabilities of
/// the table-miss entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableFeatureProp {
    Instructions {
        miss: bool,
        ids: Vec<FeatureId>,
    },
    NextTables {
        miss: bool,
        tables: Vec<u8>,
    },
    WriteActions {
        miss: bool,
        ids: Vec<FeatureId>,
    },
    ApplyActions {
        miss: bool,
        ids: Vec<FeatureId>,
    },
    Match(Vec<OxmId>),
    Wildcards(Vec<OxmId>),
    WriteSetfield {
        miss: bool,
        ids: Vec<OxmId>,
    },
    ApplySetfield {
        miss: bool,
        ids: Vec<OxmId>,
    },
    Experimenter {
        miss: bool,
        experimenter: u32,
        exp_type: u32,
        data: Vec<u8>,
    },
}

impl TableFeatureProp {
    pub fn prop_type(&self) -> TableFeaturePropType {
        use TableFeaturePropType as T;
        let pick = |miss: bool, hit: T, m: T| if miss { m } else { hit };
        match self {
            Self::Instructions { miss, .. } => pick(*miss, T::Instructions, T::InstructionsMiss),
            Self::NextTables { miss, .. } => pick(*miss, T::NextTables, T::NextTablesMiss),
            Self::WriteActions { miss, .. } => pick(*miss, T::WriteActions, T::WriteActionsMiss),
            Self::ApplyActions { miss, .. } => pick(*miss, T::ApplyActions, T::ApplyActionsMiss),
            Self::Match(_) => T::Match,
            Self::Wildcards(_) => T::Wildcards,
            Self::WriteSetfield { miss, .. } => pick(*miss, T::WriteSetfield, T::WriteSetfieldMiss),
            Self::ApplySetfield { miss, .. } => pick(*miss, T::ApplySetfield, T::ApplySetfieldMiss),
            Self::Experimenter { miss, .. } => pick(*miss, T::Experimenter, T::ExperimenterMiss),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        put_u16(out, self.prop_type().raw());
        put_u16(out, 0);
        match self {
            Self::Instructions { ids, .. }
            | Self::WriteActions { ids, .. }
            | Self::ApplyActions { ids, .. } => {
                for id in ids {
                    match id {
                        FeatureId::Type(t) => {
                            put_u16(out, *t);
                            put_u16(out, 4);
                        }
                        FeatureId::Experimenter(e) => {
                            put_u16(out, 0xffff);
                            put_u16(out, 8);
                            put_u32(out, *e);
                        }
                    }
                }
            }
            Self::NextTables { tables, .. } => out.extend_from_slice(tables),
            Self::Match(ids)
            | Self::Wildcards(ids)
            | Self::WriteSetfield { ids, .. }
            | Self::ApplySetfield { ids, .. } => {
                for id in ids {
                    put_u32(out, id.header);
                    if let Some(e) = id.experimenter {
                        put_u32(out, e);
                    }
                }
            }
            Self::Experimenter {
                experimenter,
                exp_type,
                data,
                ..
            } => {
                put_u32(out, *experimenter);
                put_u32(out, *exp_type);
                out.extend_from_slice(data);
            }
        }
        patch_len(out, start + 2, start);
        pad_to_8(out, start);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let head = r
            .peek(4)
            .map_err(|_| DecodeError::BadTableFeaturePropLength {
                prop_type: 0,
                length: 0,
            })?;
        let prop_type = u16::from_be_bytes([head[0], head[1]]);
        let length = u16::from_be_bytes([head[2], head[3]]);
        let err = DecodeError::BadTableFeaturePropLength { prop_type, length };
        let len = usize::from(length);
        if len < 4 {
            return Err(err);
        }
        let mut p = r.sub(len, err)?;
        r.skip_lenient(round_up_8(len) - len);
        p.skip(4)?;
        let ty = TableFeaturePropType::from_raw(prop_type)
            .ok_or(DecodeError::UnknownTableFeatureProp { prop_type })?;
        use TableFeaturePropType as T;
        let miss = matches!(
            ty,
            T::InstructionsMiss
                | T::NextTablesMiss
                | T::WriteActionsMiss
                | T::ApplyActionsMiss
                | T::WriteSetfieldMiss
                | T::ApplySetfieldMiss
                | T::ExperimenterMiss
        );
        Ok(match ty {
            T::Instructions | T::InstructionsMiss => Self::Instructions {
                miss,
                ids: decode_feature_ids(&mut p, err)?,
            },
            T::WriteActions | T::WriteActionsMiss => Self::WriteActions {
                miss,
                ids: decode_feature_ids(&mut p, err)?,
            },
            T::ApplyActions | T::ApplyActionsMiss => Self::ApplyActions {
                miss,
                ids: decode_feature_ids(&mut p, err)?,
            },
            T::NextTables | T::NextTablesMiss => Self::NextTables {
                miss,
                tables: p.rest().to_vec(),
            },
            T::Match => Self::Match(decode_oxm_ids(&mut p)?),
            T::Wildcards => Self::Wildcards(decode_oxm_ids(&mut p)?),
            T::WriteSetfield | T::WriteSetfieldMiss => Self::WriteSetfield {
                miss,
                ids: decode_oxm_ids(&mut p)?,
            },
            T::ApplySetfield | T::ApplySetfieldMiss => Self::ApplySetfield {
                miss,
                ids: decode_oxm_ids(&mut p)?,
            },
            T::Experimenter | T::ExperimenterMiss => Self::Experimenter {
                miss,
                experimenter: p.u32()?,
                exp_type: p.u32()?,
                data: p.rest().to_vec(),
            },
        })
    }
}

fn decode_feature_ids(r: &mut Reader<'_>, err: DecodeError) -> Result<Vec<FeatureId>, DecodeError> {
    decode_list(r, |r| {
        let ty = r.u16()?;
        let len = usize::from(r.u16()?);
        if len < 4 {
            return Err(err);
        }
        let mut body = r.sub(len - 4, err)?;
        Ok(if ty == 0xffff {
            FeatureId::Experimenter(body.u32()?)
        } else {
            FeatureId::Type(ty)
        })
    })
}

fn decode_oxm_ids(r: &mut Reader<'_>) -> Result<Vec<OxmId>, DecodeError> {
    decode_list(r, |r| {
        let header = r.u32()?;
        let experimenter = if (header >> 16) as u16 == OFPXMC_EXPERIMENTER {
            Some(r.u32()?)
        } else {
            None
        };
        Ok(OxmId {
            header,
            experimenter,
        })
    })
}

/// `ofp_table_features`: one table's capabilities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFeatures {
    pub table_id: u8,
    pub name: FixedStr<32>,
    /// Metadata bits the table can match.
    pub metadata_match: u64,
    /// Metadata bits the table can write.
    pub metadata_write: u64,
    pub config: TableConfig,
    pub max_entries: u32,
    pub properties: Vec<TableFeatureProp>,
}

impl TableFeatures {
    fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        put_u16(out, 0);
        put_u8(out, self.table_id);
        put_zeros(out, 5);
        out.extend_from_slice(&self.name.0);
        put_u64(out, self.metadata_match);
        put_u64(out, self.metadata_write);
        put_u32(out, self.config.0);
        put_u32(out, self.max_entries);
        for p in &self.properties {
            p.encode(out);
        }
        patch_len(out, start, start);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let head = r
            .peek(2)
            .map_err(|_| DecodeError::BadTableFeaturesLength { length: 0 })?;
        let length = u16::from_be_bytes([head[0], head[1]]);
        let err = DecodeError::BadTableFeaturesLength { length };
        if length < 64 {
            return Err(err);
        }
        let mut e = r.sub(usize::from(length), err)?;
        e.skip(2)?;
        let table_id = e.u8()?;
        e.skip(5)?;
        Ok(TableFeatures {
            table_id,
            name: FixedStr(e.array()?),
            metadata_match: e.u64()?,
            metadata_write: e.u64()?,
            config: TableConfig(e.u32()?),
            max_entries: e.u32()?,
            properties: decode_list(&mut e, TableFeatureProp::decode)?,
        })
    }
}
