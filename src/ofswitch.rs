//! What OpenFlow messages mean to this switch: the [`OfSwitch`] the agent
//! calls for every request it does not answer itself.

use std::sync::Arc;
use std::time::Duration;

use ofagent::{OfSwitch, Staged};
use ofproto::{OfFlowTables, OfTransaction};
use openflow::consts::{
    Capabilities, ConfigFlags, MultipartFlags, PortConfig, PortFeatures, PortState, OFPP_ANY,
    OFPP_LOCAL, OFPP_MAX, OFP_DEFAULT_MISS_SEND_LEN, OFP_NO_BUFFER,
};
use openflow::error::{BadRequestCode, PortModFailedCode, TableFeaturesFailedCode};
use openflow::messages::{Port, QueueGetConfigReply, SwitchConfig, SwitchFeatures};
use openflow::multipart::{
    AggregateStats, BucketCounter, Desc, FeatureId, GroupFeatures, GroupStats, MeterBandStats,
    MeterFeatures, MeterStats, MultipartReply, MultipartReplyBody as Reply,
    MultipartRequestBody as Req, OxmId, PortStats, TableFeatureProp, TableFeatures, TableStats,
};
use openflow::{ErrorCode, FixedStr, Message, OxmField};
use packet::{PacketBuf, VecBuf};
use parking_lot::Mutex;
use pipeline::{Emit, Sink};

use crate::switch::{State, Switch, N_TABLES};

/// Entries per multipart reply message: keeps each under 64 KiB.
const PER_REPLY: usize = 64;

pub struct OpenFlowSwitch {
    sw: Arc<Switch>,
    /// SET_CONFIG's flags and miss_send_len: the agent's own, a leaf lock.
    config: Mutex<SwitchConfig>,
}

/// What a request gets when the switch cannot do it now (its state busy past
/// [`crate::switch::LOCK_WAIT`], or a worker that does not take a new version):
/// OpenFlow has no "try again" code; the reason is logged and counted.
pub const UNAVAILABLE: ErrorCode = ErrorCode::BadRequest(BadRequestCode::Eperm);

impl OpenFlowSwitch {
    pub fn new(sw: Arc<Switch>) -> OpenFlowSwitch {
        OpenFlowSwitch {
            sw,
            config: Mutex::new(SwitchConfig {
                flags: ConfigFlags::FRAG_NORMAL,
                miss_send_len: OFP_DEFAULT_MISS_SEND_LEN,
            }),
        }
    }

    fn lock(&self) -> Result<crate::switch::Locked<'_>, ErrorCode> {
        self.sw.lock().map_err(|_| UNAVAILABLE)
    }

    /// A Geneve TLV map message: a change (all or nothing, refused while a flow matches
    /// on a mapping it deletes) reaches the datapath at once; a request gets the map.
    fn tlv(&self, m: &openflow::tlv::TlvMsg) -> Result<Vec<Message>, ErrorCode> {
        use openflow::tlv::TlvMsg;
        let mut st = self.lock()?;
        match m {
            TlvMsg::Request => Ok(vec![st.geneve_tlv.reply()]),
            TlvMsg::Mod { command, mappings } => {
                let n_tables = st.tables.n_tables();
                let tables = &st.tables;
                let in_use = |i: usize| {
                    let Some(f) = packet::Field::TUN_METADATA.get(i) else {
                        return false;
                    };
                    let p = f.pos();
                    let bits = ((1u64 << p.bits) - 1) << p.shift;
                    (0..n_tables).any(|t| {
                        tables
                            .entries(t)
                            .any(|e| e.match_.mask_word(usize::from(p.word)) & bits != 0)
                    })
                };
                let mut next = st.geneve_tlv;
                next.apply(*command, mappings, in_use)
                    .map_err(ErrorCode::NxTlvTableModFailed)?;
                st.geneve_tlv = next;
                if let Some(dp) = st.datapath.as_ref() {
                    dp.set_geneve_options(&next.map);
                }
                Ok(vec![])
            }
            TlvMsg::Reply(_) => Err(ErrorCode::BadRequest(BadRequestCode::BadType)),
        }
    }

    fn port_mod(&self, pm: &openflow::messages::PortMod) -> Result<(), ErrorCode> {
        let mut st = self.lock()?;
        let desc = st
            .port_desc(pm.port_no)
            .ok_or(ErrorCode::PortModFailed(PortModFailedCode::BadPort))?;
        if desc.hw_addr != pm.hw_addr {
            return Err(ErrorCode::PortModFailed(PortModFailedCode::BadHwAddr));
        }
        st.modify_port_config(
            pm.port_no,
            ofproto::port_config(pm.config),
            ofproto::port_config(pm.mask),
        )
        .ok_or(ErrorCode::PortModFailed(PortModFailedCode::BadPort))
    }

    fn packet_out(&self, po: &openflow::messages::PacketOut) -> Result<(), ErrorCode> {
        if po.buffer_id != OFP_NO_BUFFER {
            // This switch never buffers packets (n_buffers = 0).
            return Err(ErrorCode::BadRequest(BadRequestCode::BufferUnknown));
        }
        let now = self.sw.now();
        let mut st = self.lock()?;
        let actions = ofproto::convert_packet_out(po.in_port, &po.actions, &st.tables)
            .map_err(ofproto::error_code)?;
        let pipeline = st.tables.current();
        let mut key = packet::extract(&po.data, po.in_port);
        let mut pkt = VecBuf::new(&po.data);
        let mut sink = Collect::default();
        st.packet_out_ctx.set_now(now);
        pipeline.packet_out(
            &actions,
            &mut pkt,
            &mut key,
            &mut st.packet_out_ctx,
            &mut sink,
        );
        st.send_frames(sink.out, "packet-out");
        // Packet-ins the packet-out made go out with its reply, not a tick later.
        st.drain_packet_ins(
            now,
            &self.sw.profile_counters,
            crate::switch::PACKET_INS_PER_TICK,
        );
        Ok(())
    }

    fn multipart(&self, body: &Req) -> Result<Vec<Message>, ErrorCode> {
        let now = self.sw.now();
        // One look at the state for the whole reply; encoding happens after it is released.
        let mut st = self.lock()?;
        let one = |b: Reply| Ok(vec![reply(MultipartFlags::empty(), b)]);
        match body {
            Req::Desc => one(Reply::Desc(Box::new(Desc {
                mfr_desc: FixedStr::new("Ferroflow"),
                hw_desc: FixedStr::new(&format!("DPDK {}", dpdk::Eal::version())),
                sw_desc: FixedStr::new(crate::VERSION),
                serial_num: FixedStr::new(""),
                dp_desc: FixedStr::new(&self.sw.config.bridge.name),
            }))),
            Req::PortDesc => Ok(chunked(st.port_descs(), Reply::PortDesc)),
            Req::PortStats { port_no } => {
                let ports = st.datapath.as_ref().map(|d| d.ports()).unwrap_or_default();
                // Tunnel ports (configured or the profile's): their inner packets.
                let mut tunnels = st
                    .datapath
                    .as_ref()
                    .map(|d| d.tunnels())
                    .unwrap_or_default();
                tunnels.retain(|t| t.ofport < OF_TOOLS_PORT_LIMIT);
                if *port_no != OFPP_ANY
                    && !ports.iter().any(|p| p.ofport == *port_no)
                    && !tunnels.iter().any(|t| t.ofport == *port_no)
                {
                    return Err(ErrorCode::BadRequest(BadRequestCode::BadPort));
                }
                let up = self.sw.started.elapsed();
                let tunnel_stats = tunnels
                    .iter()
                    .filter(|t| *port_no == OFPP_ANY || t.ofport == *port_no)
                    .map(|t| PortStats {
                        port_no: t.ofport,
                        rx_packets: t.rx_packets,
                        tx_packets: t.tx_packets,
                        rx_bytes: t.rx_bytes,
                        tx_bytes: t.tx_bytes,
                        tx_dropped: crate::tunnels::tx_dropped(t),
                        duration_sec: up.as_secs() as u32,
                        duration_nsec: up.subsec_nanos(),
                        ..PortStats::default()
                    })
                    .collect::<Vec<_>>();
                let stats = ports
                    .iter()
                    .filter(|p| *port_no == OFPP_ANY || p.ofport == *port_no)
                    .map(|p| PortStats {
                        port_no: p.ofport,
                        rx_packets: p.driver_stats.rx_packets,
                        tx_packets: p.driver_stats.tx_packets,
                        rx_bytes: p.driver_stats.rx_bytes,
                        tx_bytes: p.driver_stats.tx_bytes,
                        rx_dropped: p.driver_stats.rx_missed + p.switch_stats.dropped,
                        tx_dropped: p.switch_stats.tx_dropped,
                        rx_errors: p.driver_stats.rx_errors,
                        tx_errors: p.driver_stats.tx_errors,
                        duration_sec: up.as_secs() as u32,
                        duration_nsec: up.subsec_nanos(),
                        ..PortStats::default()
                    })
                    .chain(tunnel_stats)
                    .collect();
                Ok(chunked(stats, Reply::PortStats))
            }
            Req::Queue { .. } => one(Reply::Queue(Vec::new())),
            Req::Table => {
                let counts = st.tables.table_counts();
                let stats = counts
                    .iter()
                    .map(|c| TableStats {
                        table_id: c.table_id,
                        active_count: c.active,
                        lookup_count: c.lookups,
                        matched_count: c.matches,
                    })
                    .collect();
                Ok(chunked(stats, Reply::Table))
            }
            Req::TableFeatures(set) if !set.is_empty() => Err(ErrorCode::TableFeaturesFailed(
                TableFeaturesFailedCode::Eperm,
            )),
            // About 2.3 KB per table: 16 tables keep a message well under 64 KiB.
            Req::TableFeatures(_) => Ok(chunked_by(table_features(&st), 16, Reply::TableFeatures)),
            Req::Flow(r) | Req::Aggregate(r) => {
                let m = ofproto::convert_match(&r.match_).map_err(ofproto::error_code)?;
                let counts = st
                    .tables
                    .flow_counts(
                        r.table_id,
                        &m,
                        r.cookie,
                        r.cookie_mask,
                        r.out_port,
                        r.out_group,
                    )
                    .map_err(ofproto::error_code)?;
                if matches!(body, Req::Aggregate(_)) {
                    return one(Reply::Aggregate(AggregateStats {
                        packet_count: counts.iter().map(|c| c.packets).sum(),
                        byte_count: counts.iter().map(|c| c.bytes).sum(),
                        flow_count: counts.len() as u32,
                    }));
                }
                Ok(chunked(
                    counts.iter().map(|c| ofproto::flow_stats(c, now)).collect(),
                    Reply::Flow,
                ))
            }
            Req::Group { group_id } => {
                let tables = &mut st.tables;
                let ids: Vec<u32> = tables
                    .groups()
                    .map(|g| g.id)
                    .filter(|id| *group_id == openflow::consts::OFPG_ALL || id == group_id)
                    .collect();
                let created: Vec<Duration> = tables
                    .groups()
                    .filter(|g| ids.contains(&g.id))
                    .map(|g| g.created)
                    .collect();
                let stats = ids
                    .iter()
                    .zip(created)
                    .map(|(&id, created)| {
                        let c = tables.group_counts(id).unwrap_or(pipeline::GroupCounts {
                            packets: 0,
                            bytes: 0,
                            buckets: Vec::new(),
                        });
                        let age = now.saturating_sub(created);
                        GroupStats {
                            group_id: id,
                            ref_count: tables.group_ref_count(id),
                            packet_count: c.packets,
                            byte_count: c.bytes,
                            duration_sec: age.as_secs() as u32,
                            duration_nsec: age.subsec_nanos(),
                            bucket_stats: c
                                .buckets
                                .iter()
                                .map(|(p, b)| BucketCounter {
                                    packet_count: *p,
                                    byte_count: *b,
                                })
                                .collect(),
                        }
                    })
                    .collect();
                Ok(chunked(stats, Reply::Group))
            }
            Req::GroupDesc => {
                let tables = &st.tables;
                Ok(chunked(
                    tables.groups().map(ofproto::group_desc).collect(),
                    Reply::GroupDesc,
                ))
            }
            Req::GroupFeatures => one(Reply::GroupFeatures(GroupFeatures {
                types: 0b1111,
                capabilities: openflow::consts::GroupCapabilities::SELECT_LIVENESS
                    | openflow::consts::GroupCapabilities::CHAINING,
                max_groups: [65535; 4],
                actions: [action_bitmap(); 4],
            })),
            Req::Meter { meter_id } | Req::MeterConfig { meter_id } => {
                let tables = &mut st.tables;
                let meters: Vec<_> = tables
                    .meters()
                    .filter(|m| *meter_id == openflow::consts::OFPM_ALL || m.id == *meter_id)
                    .map(|m| {
                        (
                            m.id,
                            ofproto::meter_flags_to_of(m.flags),
                            m.created,
                            meter_bands(&m.bands),
                        )
                    })
                    .collect();
                if matches!(body, Req::MeterConfig { .. }) {
                    let cfg = meters
                        .into_iter()
                        .map(|(id, flags, _, bands)| openflow::multipart::MeterConfig {
                            flags,
                            meter_id: id,
                            bands,
                        })
                        .collect();
                    return Ok(chunked(cfg, Reply::MeterConfig));
                }
                let stats = meters
                    .into_iter()
                    .map(|(id, _, created, _)| {
                        let c = tables.meter_counts(id).unwrap_or(pipeline::MeterCounts {
                            packets_in: 0,
                            bytes_in: 0,
                            bands: Vec::new(),
                        });
                        let age = now.saturating_sub(created);
                        MeterStats {
                            meter_id: id,
                            flow_count: tables.meter_flow_count(id),
                            packet_in_count: c.packets_in,
                            byte_in_count: c.bytes_in,
                            duration_sec: age.as_secs() as u32,
                            duration_nsec: age.subsec_nanos(),
                            band_stats: c
                                .bands
                                .iter()
                                .map(|(p, b)| MeterBandStats {
                                    packet_band_count: *p,
                                    byte_band_count: *b,
                                })
                                .collect(),
                        }
                    })
                    .collect();
                Ok(chunked(stats, Reply::Meter))
            }
            Req::MeterFeatures => one(Reply::MeterFeatures(MeterFeatures {
                max_meter: 65535,
                band_types: (1 << 1) | (1 << 2),
                capabilities: 0b1111,
                max_bands: 8,
                max_color: 0,
            })),
            Req::Experimenter(_) => Err(ErrorCode::BadRequest(BadRequestCode::BadExperimenter)),
        }
    }
}

fn meter_bands(bands: &[pipeline::meter::Band]) -> Vec<openflow::messages::MeterBand> {
    use openflow::messages::MeterBand;
    use pipeline::meter::BandKind;
    bands
        .iter()
        .map(|b| match b.kind {
            BandKind::Drop => MeterBand::Drop {
                rate: b.rate,
                burst_size: b.burst,
            },
            BandKind::DscpRemark(prec_level) => MeterBand::DscpRemark {
                rate: b.rate,
                burst_size: b.burst,
                prec_level,
            },
        })
        .collect()
}

/// Port numbers from here up to the reserved ones are not decoded by ovs-ofctl in
/// OpenFlow 1.3 (it maps them to OVS's 16-bit numbers).
const OF_TOOLS_PORT_LIMIT: u32 = 0xff00;

/// The OpenFlow description of every port: identity, admin state, link.
pub fn port_descs(st: &State) -> Vec<Port> {
    let status = st.datapath.as_ref().map(|d| d.ports()).unwrap_or_default();
    // The profile's tunnel ports (one per peer host) are the datapath's, not configured.
    // Only those whose numbers OpenFlow 1.3 tools decode: ovs-ofctl refuses a whole
    // PORT_DESC reply holding a port above 0xff00 (OFPBAC_BAD_OUT_PORT), and the profile
    // numbers its peer ports from 0x7f000000.
    let profile_tunnels: Vec<(u32, String)> =
        crate::tunnels::unconfigured(&st.ports, st.datapath.as_ref())
            .into_iter()
            .filter(|t| t.ofport < OF_TOOLS_PORT_LIMIT)
            .map(|t| (t.ofport, t.name))
            .collect();
    st.ports
        .iter()
        .map(|p| (p.ofport, p.name.as_str(), p.is_tunnel()))
        .chain(profile_tunnels.iter().map(|(o, n)| (*o, n.as_str(), true)))
        .map(|(ofport, name, tunnel)| {
            let s = status.iter().find(|s| s.ofport == ofport);
            // A tunnel port has no link of its own: it is live (as in OVS).
            let up = tunnel || s.is_some_and(|s| s.link_up);
            let speed_kbps = s.map_or(0, |s| s.speed_mbps.saturating_mul(1000));
            let config = st
                .tables
                .ports()
                .get(ofport)
                .map_or(PortConfig::empty(), |i| {
                    ofproto::port_config_to_of(i.config)
                });
            let mut state = if up {
                PortState::LIVE
            } else {
                PortState::LINK_DOWN
            };
            if config.contains(PortConfig::PORT_DOWN) {
                state = PortState::LINK_DOWN;
            }
            Port {
                port_no: ofport,
                hw_addr: s.map_or([0; 6], |s| s.mac),
                name: FixedStr::new(name),
                config,
                state,
                curr: PortFeatures::RATE_10GB_FD | PortFeatures::COPPER,
                advertised: PortFeatures::empty(),
                supported: PortFeatures::empty(),
                peer: PortFeatures::empty(),
                curr_speed: speed_kbps,
                max_speed: speed_kbps,
            }
        })
        .collect()
}

fn reply(flags: MultipartFlags, body: Reply) -> Message {
    Message::MultipartReply(MultipartReply { flags, body })
}

/// Splits a list reply over several messages, REPLY_MORE on all but the last.
fn chunked<T>(items: Vec<T>, make: fn(Vec<T>) -> Reply) -> Vec<Message> {
    chunked_by(items, PER_REPLY, make)
}

fn chunked_by<T>(items: Vec<T>, per_reply: usize, make: fn(Vec<T>) -> Reply) -> Vec<Message> {
    if items.is_empty() {
        return vec![reply(MultipartFlags::empty(), make(items))];
    }
    let n = items.len().div_ceil(per_reply);
    let mut out = Vec::with_capacity(n);
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        let part: Vec<T> = items.by_ref().take(per_reply).collect();
        let flags = if items.peek().is_some() {
            MultipartFlags::MORE
        } else {
            MultipartFlags::empty()
        };
        out.push(reply(flags, make(part)));
    }
    out
}

/// Every action type but experimenter, as a bitmap of `1 << type` (group features).
fn action_bitmap() -> u32 {
    ACTION_TYPES.iter().fold(0, |acc, t| acc | (1 << t))
}

const ACTION_TYPES: [u16; 16] = [
    0, 11, 12, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27,
];
const INSTRUCTION_TYPES: [u16; 6] = [1, 2, 3, 4, 5, 6];

/// The TABLE_FEATURES reply: every table supports every field, action and
/// instruction, and may go to any later table. ovs-ofctl requires the eight
/// properties in every table.
fn table_features(st: &State) -> Vec<TableFeatures> {
    let fields: Vec<OxmField> = (0..=39u8).filter_map(OxmField::from_raw).collect();
    // Open vSwitch registers (NXM_NX_REGn, OXM_OF_PKT_REGn) and tunnel addresses
    // (NXM_NX_TUN_IPV4_SRC/DST): matched, masked and set.
    let regs: Vec<openflow::NxmField> = (0..openflow::nx::N_REGS)
        .map(openflow::NxmField::Reg)
        .chain((0..openflow::nx::N_XREGS).map(openflow::NxmField::Xreg))
        .chain([openflow::NxmField::TunSrc, openflow::NxmField::TunDst])
        // The Geneve options the key holds (tun_metadata0..): matched, masked and set.
        .chain((0..packet::TUN_METADATA_FIELDS as u8).map(openflow::NxmField::TunMetadata))
        .collect();
    let reg_id = |f: &openflow::NxmField, masked: bool| OxmId {
        header: f.header(masked),
        experimenter: None,
    };
    let ids = |masked: bool| -> Vec<OxmId> {
        fields
            .iter()
            .map(|f| OxmId::basic(*f, masked && f.maskable()))
            .chain(regs.iter().map(|f| reg_id(f, masked)))
            // conj_id: matched exactly (never masked), never set.
            .chain([reg_id(&openflow::NxmField::ConjId, false)])
            .collect()
    };
    let settable: Vec<OxmId> = fields
        .iter()
        .filter(|f| {
            !matches!(
                f,
                OxmField::InPort | OxmField::InPhyPort | OxmField::Metadata | OxmField::Ipv6Exthdr
            )
        })
        .map(|f| OxmId::basic(*f, false))
        .chain(regs.iter().map(|f| reg_id(f, false)))
        .collect();
    let actions: Vec<FeatureId> = ACTION_TYPES.iter().map(|t| FeatureId::Type(*t)).collect();
    // OpenFlow 1.3 names experimenter actions by vendor only: the Nicira extensions
    // (resubmit, move, load, note, ct_clear) run in apply-actions, not in action sets.
    let apply_actions: Vec<FeatureId> = actions
        .iter()
        .copied()
        .chain([FeatureId::Experimenter(openflow::NX_VENDOR_ID)])
        .collect();
    let instructions: Vec<FeatureId> = INSTRUCTION_TYPES
        .iter()
        .map(|t| FeatureId::Type(*t))
        .collect();
    (0..N_TABLES)
        .map(|t| {
            let next: Vec<u8> = (t + 1..N_TABLES).collect();
            let mut properties = Vec::new();
            for miss in [false, true] {
                properties.push(TableFeatureProp::Instructions {
                    miss,
                    ids: instructions.clone(),
                });
                properties.push(TableFeatureProp::NextTables {
                    miss,
                    tables: next.clone(),
                });
                properties.push(TableFeatureProp::WriteActions {
                    miss,
                    ids: actions.clone(),
                });
                properties.push(TableFeatureProp::ApplyActions {
                    miss,
                    ids: apply_actions.clone(),
                });
                properties.push(TableFeatureProp::WriteSetfield {
                    miss,
                    ids: settable.clone(),
                });
                properties.push(TableFeatureProp::ApplySetfield {
                    miss,
                    ids: settable.clone(),
                });
            }
            properties.push(TableFeatureProp::Match(ids(true)));
            properties.push(TableFeatureProp::Wildcards(ids(false)));
            TableFeatures {
                table_id: t,
                name: FixedStr::new(&st.table_name(t)),
                metadata_match: u64::MAX,
                metadata_write: u64::MAX,
                config: openflow::consts::TableConfig(0),
                max_entries: 1 << 20,
                properties,
            }
        })
        .collect()
}

/// Packet-out outputs, as frames for the control plane's tx queues.
#[derive(Default)]
pub(crate) struct Collect {
    pub(crate) out: Vec<(u32, Vec<u8>)>,
}

impl Sink<VecBuf> for Collect {
    fn output(&mut self, port: u32, _queue: Option<u32>, pkt: &VecBuf, _emit: Emit) {
        if port <= OFPP_MAX || port == OFPP_LOCAL {
            self.out.push((port, pkt.data().to_vec()));
        }
    }

    fn clone_packet(&mut self, pkt: &VecBuf) -> Option<VecBuf> {
        Some(VecBuf::new(pkt.data()))
    }
}

impl OfSwitch for OpenFlowSwitch {
    fn features(&self) -> SwitchFeatures {
        SwitchFeatures {
            datapath_id: self.sw.config.datapath_id().unwrap_or(1),
            n_buffers: 0,
            n_tables: N_TABLES,
            auxiliary_id: 0,
            capabilities: Capabilities::FLOW_STATS
                | Capabilities::TABLE_STATS
                | Capabilities::PORT_STATS
                | Capabilities::GROUP_STATS,
            reserved: 0,
        }
    }

    fn handle(&self, request: &Message) -> Result<Vec<Message>, ErrorCode> {
        let now = self.sw.now();
        match request {
            Message::GetConfigRequest => Ok(vec![Message::GetConfigReply(*self.config.lock())]),
            Message::SetConfig(c) => {
                *self.config.lock() = *c;
                Ok(vec![])
            }
            Message::FlowMod(fm) => {
                let mut st = self.lock()?;
                st.geneve_tlv.check_flow_mod(fm)?;
                let removed = st.tables.flow_mod(fm, now).map_err(ofproto::error_code)?;
                st.mark_dirty();
                st.flows_removed(removed);
                Ok(vec![])
            }
            Message::GroupMod(gm) => {
                let mut st = self.lock()?;
                let removed = st.tables.group_mod(gm, now).map_err(ofproto::error_code)?;
                st.mark_dirty();
                st.flows_removed(removed);
                Ok(vec![])
            }
            Message::MeterMod(mm) => {
                let mut st = self.lock()?;
                let removed = st.tables.meter_mod(mm, now).map_err(ofproto::error_code)?;
                st.mark_dirty();
                st.flows_removed(removed);
                Ok(vec![])
            }
            Message::PortMod(pm) => self.port_mod(pm).map(|()| vec![]),
            // OpenFlow 1.3 table config bits are all deprecated: accepted, nothing to do.
            Message::TableMod(_) => Ok(vec![]),
            Message::PacketOut(po) => self.packet_out(po).map(|()| vec![]),
            Message::MultipartRequest(m) => self.multipart(&m.body),
            Message::Experimenter(e) => match openflow::tlv::TlvMsg::parse(e) {
                Some(Ok(m)) => self.tlv(&m),
                Some(Err(code)) => Err(ErrorCode::NxTlvTableModFailed(code)),
                None => Err(ErrorCode::BadRequest(BadRequestCode::BadExperimenter)),
            },
            Message::QueueGetConfigRequest { port } => {
                Ok(vec![Message::QueueGetConfigReply(QueueGetConfigReply {
                    port: *port,
                    queues: Vec::new(),
                })])
            }
            _ => Err(ErrorCode::BadRequest(BadRequestCode::BadType)),
        }
    }

    fn barrier(&self) -> Result<(), ErrorCode> {
        self.sw.sync().map_err(|e| {
            tracing::warn!("BARRIER refused: {e}");
            UNAVAILABLE
        })
    }

    fn try_barrier(&self) -> bool {
        self.sw.try_sync().unwrap_or(false)
    }

    fn bundle_check(&self, request: &Message) -> Result<(), ErrorCode> {
        match request {
            Message::FlowMod(fm) => {
                let st = self.lock()?;
                st.geneve_tlv.check_flow_mod(fm)?;
                ofproto::convert_flow_mod(fm, &st.tables).map_err(ofproto::error_code)?;
                Ok(())
            }
            _ => Err(ErrorCode::BadRequest(BadRequestCode::BadType)),
        }
    }

    fn bundle_commit(&self, requests: &[Message]) -> Result<(), (usize, ErrorCode)> {
        self.commit_bundle(|tx| {
            for (i, m) in requests.iter().enumerate() {
                match m {
                    Message::FlowMod(fm) => tx
                        .of_flow_mod(fm)
                        .map_err(|(i, e)| (i, ofproto::error_code(e)))?,
                    _ => return Err((i, ErrorCode::BadRequest(BadRequestCode::BadType))),
                }
            }
            Ok(())
        })
    }

    /// Keeps the flow-mod converted (checked as [`OfSwitch::bundle_check`] does): the
    /// commit then applies it without converting it again.
    fn bundle_stage(&self, request: Message) -> Result<Staged, ErrorCode> {
        match request {
            Message::FlowMod(fm) => {
                let st = self.lock()?;
                st.geneve_tlv.check_flow_mod(&fm)?;
                let req =
                    ofproto::convert_flow_mod(&fm, &st.tables).map_err(ofproto::error_code)?;
                Ok(Staged::Converted(Box::new(req)))
            }
            _ => Err(ErrorCode::BadRequest(BadRequestCode::BadType)),
        }
    }

    /// A common flow-mod read from its bytes and applied as `handle` applies a decoded
    /// one (`ofproto::flow_mod_from_wire`; no Geneve option for the TLV map to check).
    fn flow_mod_raw(&self, raw: &[u8]) -> Option<Result<(), ErrorCode>> {
        let now = self.sw.now();
        let mut st = self.lock().ok()?;
        let req = ofproto::flow_mod_from_wire(raw, &st.tables)?;
        Some(match st.tables.apply_flow_mod(req, now) {
            Ok(removed) => {
                st.mark_dirty();
                st.flows_removed(removed);
                Ok(())
            }
            Err(e) => Err(ofproto::error_code(e)),
        })
    }

    /// A common flow-mod read from its bytes into the converted form `bundle_stage`
    /// keeps, without decoding it first (`ofproto::flow_mod_from_wire`). It has only
    /// OPENFLOW_BASIC fields and standard actions, so no Geneve option the TLV map
    /// checks.
    fn bundle_stage_raw(&self, raw: &[u8]) -> Option<Staged> {
        let st = self.lock().ok()?;
        // Built in its box: the ~600-byte request is not moved from the reader into it.
        ofproto::flow_mod_from_wire_boxed(raw, &st.tables).map(|req| Staged::Converted(req))
    }

    fn bundle_commit_staged(&self, staged: Vec<Staged>) -> Result<(), (usize, ErrorCode)> {
        self.commit_bundle(|tx| {
            reserve_for_adds(
                tx,
                staged.iter().filter_map(|s| match s {
                    Staged::Converted(c) => c
                        .downcast_ref::<pipeline::FlowModReq>()
                        .filter(|r| r.command == pipeline::FlowModCommand::Add)
                        .map(|r| r.table_id),
                    Staged::Message(_) => None,
                }),
            );
            for (i, s) in staged.into_iter().enumerate() {
                match s {
                    Staged::Converted(c) => {
                        let Ok(req) = c.downcast::<pipeline::FlowModReq>() else {
                            return Err((i, ErrorCode::BadRequest(BadRequestCode::BadType)));
                        };
                        // What it refers to may have gone since it was converted:
                        // checked in its box (the index is the one this change would
                        // get), then moved out once (a `flow_mod_with` closure moved
                        // the ~600-byte request twice).
                        ofproto::check_references(&req, tx.tables())
                            .map_err(|e| (tx.len(), ofproto::error_code(e)))?;
                        tx.flow_mod(*req)
                            .map_err(|(i, e)| (i, ofproto::error_code(e)))?
                    }
                    Staged::Message(Message::FlowMod(fm)) => tx
                        .of_flow_mod(&fm)
                        .map_err(|(i, e)| (i, ofproto::error_code(e)))?,
                    Staged::Message(_) => {
                        return Err((i, ErrorCode::BadRequest(BadRequestCode::BadType)))
                    }
                }
            }
            Ok(())
        })
    }
}

impl OpenFlowSwitch {
    /// A bundle's commit: `apply` runs its changes in one transaction, published once
    /// if all of them are taken, none if one is refused (its index and error).
    fn commit_bundle(
        &self,
        apply: impl FnOnce(&mut pipeline::Transaction<'_>) -> Result<(), (usize, ErrorCode)>,
    ) -> Result<(), (usize, ErrorCode)> {
        let now = self.sw.now();
        {
            let mut st = self.lock().map_err(|e| (0, e))?;
            // An error drops `tx`: nothing changed.
            let mut tx = st.tables.transaction(now);
            apply(&mut tx)?;
            let removed = tx
                .commit()
                .map_err(|(i, e)| (i, ofproto::error_code(e)))?
                .removed;
            // One publish for the whole bundle.
            st.mark_dirty();
            st.publish_pending();
            st.flows_removed(removed);
        }
        // The reply waits for the workers; a stuck one is logged and counted
        // (the commit itself is applied: the next barrier reports it).
        if let Err(e) = self.sw.sync() {
            tracing::warn!("bundle committed, but: {e}");
        }
        Ok(())
    }
}

/// Tells the transaction how many entries a batch adds to each table (`adds`: the table
/// of each add), so that each table grows once.
pub(crate) fn reserve_for_adds(tx: &mut pipeline::Transaction<'_>, adds: impl Iterator<Item = u8>) {
    let mut per_table = [0usize; 256];
    for t in adds {
        per_table[usize::from(t)] += 1;
    }
    for (t, &n) in per_table.iter().enumerate() {
        if n > 0 {
            tx.reserve(t as u8, n);
        }
    }
}
