//! Sample messages shared by the integration tests: at least one of every message kind and
//! every multipart body, filled with non-default values so that a field codec mixing up
//! two fields shows up in a round trip.
#![allow(dead_code)]

use openflow::action::Action;
use openflow::consts::*;
use openflow::instruction::Instruction;
use openflow::messages::*;
use openflow::multipart::*;
use openflow::oxm::{ExperimenterOxm, Match, OxmField, OxmTlv};
use openflow::{FixedStr, Message, OfpMessage};

pub fn sample_match() -> Match {
    Match::new(vec![
        OxmTlv::in_port(1),
        OxmTlv::eth_type(0x0800),
        OxmTlv::eth_src([0, 1, 2, 3, 4, 5], Some([0xff, 0xff, 0xff, 0, 0, 0])),
        OxmTlv::vlan_vid(OFPVID_PRESENT | 10, None),
        OxmTlv::ip_proto(6),
        OxmTlv::ipv4_dst([10, 0, 0, 0].into(), Some([255, 0, 0, 0].into())),
        OxmTlv::tcp_dst(80),
        OxmTlv::metadata(0xdead_beef, Some(0xffff_ffff)),
        OxmTlv::exact(OxmField::Ipv6NdTarget, 0x2001_0db8 << 96).unwrap(),
        OxmTlv::pbb_isid(0x12_3456, None),
    ])
}

pub fn sample_actions() -> Vec<Action> {
    vec![
        Action::Output {
            port: OFPP_CONTROLLER,
            max_len: OFPCML_NO_BUFFER,
        },
        Action::CopyTtlOut,
        Action::CopyTtlIn,
        Action::SetMplsTtl(9),
        Action::DecMplsTtl,
        Action::PushVlan(0x8100),
        Action::PopVlan,
        Action::PushMpls(0x8847),
        Action::PopMpls(0x0800),
        Action::SetQueue(3),
        Action::Group(7),
        Action::SetNwTtl(64),
        Action::DecNwTtl,
        Action::set_field(OxmField::EthDst, 0x0a0b_0c0d_0e0f).unwrap(),
        Action::set_field(OxmField::Ipv6Src, u128::MAX).unwrap(),
        Action::PushPbb(0x88e7),
        Action::PopPbb,
        Action::output(2),
    ]
}

pub fn sample_instructions() -> Vec<Instruction> {
    vec![
        Instruction::Meter(5),
        Instruction::ApplyActions(sample_actions()),
        Instruction::ClearActions,
        Instruction::WriteActions(vec![Action::output(3), Action::Group(1)]),
        Instruction::WriteMetadata {
            metadata: 0x1122_3344_5566_7788,
            mask: 0xffff_0000_ffff_0000,
        },
        Instruction::GotoTable(4),
    ]
}

pub fn sample_flow_mod() -> FlowMod {
    FlowMod {
        cookie: 0x0102_0304_0506_0708,
        cookie_mask: 0xffff,
        table_id: 3,
        command: FlowModCommand::ModifyStrict,
        idle_timeout: 10,
        hard_timeout: 20,
        priority: 1000,
        buffer_id: OFP_NO_BUFFER,
        out_port: OFPP_ANY,
        out_group: OFPG_ANY,
        flags: FlowModFlags::SEND_FLOW_REM | FlowModFlags::CHECK_OVERLAP,
        match_: sample_match(),
        instructions: sample_instructions(),
    }
}

pub fn sample_port(n: u32) -> Port {
    Port {
        port_no: n,
        hw_addr: [2, 0, 0, 0, 0, n as u8],
        name: FixedStr::new(&format!("vhost{n}")),
        config: PortConfig::NO_PACKET_IN,
        state: PortState::LIVE,
        curr: PortFeatures::RATE_10GB_FD | PortFeatures::COPPER,
        advertised: PortFeatures::RATE_1GB_FD,
        supported: PortFeatures::AUTONEG,
        peer: PortFeatures(0),
        curr_speed: 10_000_000,
        max_speed: 10_000_000,
    }
}

pub fn sample_buckets() -> Vec<Bucket> {
    vec![
        Bucket {
            weight: 1,
            watch_port: OFPP_ANY,
            watch_group: OFPG_ANY,
            actions: vec![Action::output(1)],
        },
        Bucket {
            weight: 2,
            watch_port: 4,
            watch_group: 9,
            actions: vec![Action::PopVlan, Action::output(2)],
        },
        Bucket {
            weight: 0,
            watch_port: OFPP_ANY,
            watch_group: OFPG_ANY,
            actions: vec![],
        },
    ]
}

pub fn sample_bands() -> Vec<MeterBand> {
    vec![
        MeterBand::Drop {
            rate: 1000,
            burst_size: 100,
        },
        MeterBand::DscpRemark {
            rate: 500,
            burst_size: 50,
            prec_level: 1,
        },
    ]
}

/// The 8 properties ovs-ofctl requires per table, plus their MISS twins and extras.
pub fn sample_table_features() -> TableFeatures {
    use openflow::ActionType as A;
    use openflow::InstructionType as I;
    let insts: Vec<FeatureId> = [I::GotoTable, I::WriteMetadata, I::ApplyActions]
        .iter()
        .map(|i| FeatureId::Type(i.raw()))
        .collect();
    let acts: Vec<FeatureId> = [A::Output, A::SetField, A::PushVlan]
        .iter()
        .map(|a| FeatureId::Type(a.raw()))
        .collect();
    let oxms: Vec<OxmId> = OxmField::ALL
        .iter()
        .map(|f| OxmId::basic(*f, false))
        .collect();
    let wild: Vec<OxmId> = OxmField::ALL
        .iter()
        .filter(|f| f.maskable())
        .map(|f| OxmId::basic(*f, true))
        .collect();
    TableFeatures {
        table_id: 0,
        name: FixedStr::new("classifier"),
        metadata_match: u64::MAX,
        metadata_write: u64::MAX,
        config: TableConfig(0),
        max_entries: 1_000_000,
        properties: vec![
            TableFeatureProp::Instructions {
                miss: false,
                ids: insts.clone(),
            },
            TableFeatureProp::Instructions {
                miss: true,
                ids: insts,
            },
            TableFeatureProp::NextTables {
                miss: false,
                tables: (1..=5).collect(),
            },
            TableFeatureProp::NextTables {
                miss: true,
                tables: vec![1, 2, 3, 4, 5, 6, 7, 8, 9],
            },
            TableFeatureProp::WriteActions {
                miss: false,
                ids: acts.clone(),
            },
            TableFeatureProp::WriteActions {
                miss: true,
                ids: acts.clone(),
            },
            TableFeatureProp::ApplyActions {
                miss: false,
                ids: acts.clone(),
            },
            TableFeatureProp::ApplyActions {
                miss: true,
                ids: vec![FeatureId::Experimenter(NICIRA_ID)],
            },
            TableFeatureProp::Match(oxms.clone()),
            TableFeatureProp::Wildcards(wild),
            TableFeatureProp::WriteSetfield {
                miss: false,
                ids: oxms.clone(),
            },
            TableFeatureProp::WriteSetfield {
                miss: true,
                ids: vec![],
            },
            TableFeatureProp::ApplySetfield {
                miss: false,
                ids: oxms,
            },
            TableFeatureProp::ApplySetfield {
                miss: true,
                ids: vec![OxmId {
                    header: 0xffff_0004,
                    experimenter: Some(NICIRA_ID),
                }],
            },
            TableFeatureProp::Experimenter {
                miss: false,
                experimenter: NICIRA_ID,
                exp_type: 1,
                data: vec![1, 2, 3, 4],
            },
            TableFeatureProp::Experimenter {
                miss: true,
                experimenter: NICIRA_ID,
                exp_type: 2,
                data: vec![],
            },
        ],
    }
}

pub const NICIRA_ID: u32 = openflow::consts::experimenter::NICIRA;

fn req(flags: MultipartFlags, body: MultipartRequestBody) -> Message {
    Message::MultipartRequest(MultipartRequest { flags, body })
}

fn rep(flags: MultipartFlags, body: MultipartReplyBody) -> Message {
    Message::MultipartReply(MultipartReply { flags, body })
}

/// One or more samples of every message and multipart body.
pub fn sample_messages() -> Vec<OfpMessage> {
    let none = MultipartFlags::empty();
    let more = MultipartFlags::MORE;
    let fsr = FlowStatsRequest {
        table_id: OFPTT_ALL,
        out_port: OFPP_ANY,
        out_group: OFPG_ANY,
        cookie: 5,
        cookie_mask: 0xff,
        match_: sample_match(),
    };
    let bodies = vec![
        Message::Hello(Hello::ofp13()),
        Message::Hello(Hello {
            version: 4,
            elements: vec![],
        }),
        Message::Hello(Hello {
            version: 6,
            elements: vec![
                HelloElement::Unknown {
                    elem_type: 9,
                    data: vec![1, 2, 3],
                },
                HelloElement::VersionBitmap(vec![0x52, 0]),
            ],
        }),
        Message::Error(ErrorMsg::new(
            openflow::ErrorCode::BadMatch(openflow::error::BadMatchCode::BadPrereq),
            vec![4, 14, 0, 8, 0, 0, 0, 1],
        )),
        Message::Error(ErrorMsg::Experimenter {
            exp_type: 7,
            experimenter: NICIRA_ID,
            data: vec![9; 5],
        }),
        Message::EchoRequest(vec![]),
        Message::EchoRequest(b"ping".to_vec()),
        Message::EchoReply(b"pong".to_vec()),
        Message::Experimenter(ExperimenterMsg {
            experimenter: NICIRA_ID,
            exp_type: 16,
            data: vec![0, 0, 0, 1],
        }),
        Message::FeaturesRequest,
        Message::FeaturesReply(SwitchFeatures {
            datapath_id: 0x0000_0203_0405_0607,
            n_buffers: 0,
            n_tables: 254,
            auxiliary_id: 0,
            capabilities: Capabilities::FLOW_STATS
                | Capabilities::TABLE_STATS
                | Capabilities::PORT_STATS
                | Capabilities::GROUP_STATS,
            reserved: 0,
        }),
        Message::GetConfigRequest,
        Message::GetConfigReply(SwitchConfig {
            flags: ConfigFlags::FRAG_NORMAL,
            miss_send_len: 128,
        }),
        Message::SetConfig(SwitchConfig {
            flags: ConfigFlags::FRAG_DROP,
            miss_send_len: OFPCML_NO_BUFFER,
        }),
        Message::PacketIn(PacketIn {
            buffer_id: OFP_NO_BUFFER,
            total_len: 60,
            reason: PacketInReason::Action,
            table_id: 2,
            cookie: 0xabcd,
            match_: Match::new(vec![OxmTlv::in_port(3)]),
            data: vec![0xaa; 60],
        }),
        Message::PacketIn(PacketIn {
            buffer_id: 17,
            total_len: 1500,
            reason: PacketInReason::Other(5),
            table_id: 0,
            cookie: u64::MAX,
            match_: Match::any(),
            data: vec![],
        }),
        Message::FlowRemoved(FlowRemoved {
            cookie: 1,
            priority: 2,
            reason: FlowRemovedReason::GroupDelete,
            table_id: 3,
            duration_sec: 4,
            duration_nsec: 5,
            idle_timeout: 6,
            hard_timeout: 7,
            packet_count: 8,
            byte_count: 9,
            match_: sample_match(),
        }),
        Message::PortStatus(PortStatus {
            reason: PortReason::Modify,
            desc: sample_port(7),
        }),
        Message::PacketOut(PacketOut {
            buffer_id: OFP_NO_BUFFER,
            in_port: OFPP_CONTROLLER,
            actions: vec![Action::output(OFPP_TABLE)],
            data: vec![0x55; 64],
        }),
        Message::PacketOut(PacketOut {
            buffer_id: 3,
            in_port: 1,
            actions: vec![],
            data: vec![],
        }),
        Message::FlowMod(sample_flow_mod()),
        Message::FlowMod(FlowMod::add(0, 0, Match::any(), vec![])),
        Message::GroupMod(GroupMod {
            command: GroupModCommand::Add,
            group_type: GroupType::Select,
            group_id: 1,
            buckets: sample_buckets(),
        }),
        Message::GroupMod(GroupMod {
            command: GroupModCommand::Delete,
            group_type: GroupType::All,
            group_id: OFPG_ALL,
            buckets: vec![],
        }),
        Message::PortMod(PortMod {
            port_no: 1,
            hw_addr: [2, 0, 0, 0, 0, 1],
            config: PortConfig::PORT_DOWN,
            mask: PortConfig::PORT_DOWN | PortConfig::NO_FWD,
            advertise: PortFeatures(0),
        }),
        Message::TableMod(TableMod {
            table_id: OFPTT_ALL,
            config: TableConfig(3),
        }),
        req(none, MultipartRequestBody::Desc),
        req(none, MultipartRequestBody::Flow(fsr.clone())),
        req(none, MultipartRequestBody::Aggregate(fsr)),
        req(none, MultipartRequestBody::Table),
        req(none, MultipartRequestBody::PortStats { port_no: OFPP_ANY }),
        req(
            none,
            MultipartRequestBody::Queue {
                port_no: OFPP_ANY,
                queue_id: OFPQ_ALL,
            },
        ),
        req(none, MultipartRequestBody::Group { group_id: OFPG_ALL }),
        req(none, MultipartRequestBody::GroupDesc),
        req(none, MultipartRequestBody::GroupFeatures),
        req(none, MultipartRequestBody::Meter { meter_id: OFPM_ALL }),
        req(none, MultipartRequestBody::MeterConfig { meter_id: 3 }),
        req(none, MultipartRequestBody::MeterFeatures),
        req(none, MultipartRequestBody::TableFeatures(vec![])),
        req(
            more,
            MultipartRequestBody::TableFeatures(vec![sample_table_features()]),
        ),
        req(none, MultipartRequestBody::PortDesc),
        req(
            none,
            MultipartRequestBody::Experimenter(ExperimenterMsg {
                experimenter: NICIRA_ID,
                exp_type: 0,
                data: vec![1, 2],
            }),
        ),
        rep(
            none,
            MultipartReplyBody::Desc(Box::new(Desc {
                mfr_desc: FixedStr::new("Ferroflow project"),
                hw_desc: FixedStr::new("DPDK"),
                sw_desc: FixedStr::new("0.1.0"),
                serial_num: FixedStr::new("None"),
                dp_desc: FixedStr::new("br0"),
            })),
        ),
        rep(
            more,
            MultipartReplyBody::Flow(vec![
                FlowStats {
                    table_id: 1,
                    duration_sec: 2,
                    duration_nsec: 3,
                    priority: 4,
                    idle_timeout: 5,
                    hard_timeout: 6,
                    flags: FlowModFlags::SEND_FLOW_REM,
                    cookie: 7,
                    packet_count: 8,
                    byte_count: 9,
                    match_: sample_match(),
                    instructions: sample_instructions(),
                },
                FlowStats {
                    table_id: 0,
                    duration_sec: 0,
                    duration_nsec: 0,
                    priority: 0,
                    idle_timeout: 0,
                    hard_timeout: 0,
                    flags: FlowModFlags::empty(),
                    cookie: 0,
                    packet_count: 0,
                    byte_count: 0,
                    match_: Match::any(),
                    instructions: vec![],
                },
            ]),
        ),
        rep(none, MultipartReplyBody::Flow(vec![])),
        rep(
            none,
            MultipartReplyBody::Aggregate(AggregateStats {
                packet_count: 1,
                byte_count: 2,
                flow_count: 3,
            }),
        ),
        rep(
            none,
            MultipartReplyBody::Table(vec![
                TableStats {
                    table_id: 0,
                    active_count: 1,
                    lookup_count: 2,
                    matched_count: 3,
                },
                TableStats {
                    table_id: 1,
                    active_count: 4,
                    lookup_count: 5,
                    matched_count: 6,
                },
            ]),
        ),
        rep(
            none,
            MultipartReplyBody::PortStats(vec![PortStats {
                port_no: 1,
                rx_packets: 2,
                tx_packets: 3,
                rx_bytes: 4,
                tx_bytes: 5,
                rx_dropped: 6,
                tx_dropped: 7,
                rx_errors: 8,
                tx_errors: 9,
                rx_frame_err: 10,
                rx_over_err: 11,
                rx_crc_err: 12,
                collisions: 13,
                duration_sec: 14,
                duration_nsec: 15,
            }]),
        ),
        rep(
            none,
            MultipartReplyBody::Queue(vec![QueueStats {
                port_no: 1,
                queue_id: 2,
                tx_bytes: 3,
                tx_packets: 4,
                tx_errors: 5,
                duration_sec: 6,
                duration_nsec: 7,
            }]),
        ),
        rep(
            none,
            MultipartReplyBody::Group(vec![GroupStats {
                group_id: 1,
                ref_count: 2,
                packet_count: 3,
                byte_count: 4,
                duration_sec: 5,
                duration_nsec: 6,
                bucket_stats: vec![
                    BucketCounter {
                        packet_count: 7,
                        byte_count: 8,
                    },
                    BucketCounter {
                        packet_count: 9,
                        byte_count: 10,
                    },
                ],
            }]),
        ),
        rep(
            none,
            MultipartReplyBody::GroupDesc(vec![GroupDesc {
                group_type: GroupType::FastFailover,
                group_id: 3,
                buckets: sample_buckets(),
            }]),
        ),
        rep(
            none,
            MultipartReplyBody::GroupFeatures(GroupFeatures {
                types: 0b1111,
                capabilities: GroupCapabilities::SELECT_WEIGHT | GroupCapabilities::CHAINING,
                max_groups: [1, 2, 3, 4],
                actions: [5, 6, 7, 8],
            }),
        ),
        rep(
            none,
            MultipartReplyBody::Meter(vec![MeterStats {
                meter_id: 1,
                flow_count: 2,
                packet_in_count: 3,
                byte_in_count: 4,
                duration_sec: 5,
                duration_nsec: 6,
                band_stats: vec![MeterBandStats {
                    packet_band_count: 7,
                    byte_band_count: 8,
                }],
            }]),
        ),
        rep(
            none,
            MultipartReplyBody::MeterConfig(vec![MeterConfig {
                flags: MeterFlags::KBPS | MeterFlags::STATS,
                meter_id: 4,
                bands: sample_bands(),
            }]),
        ),
        rep(
            none,
            MultipartReplyBody::MeterFeatures(MeterFeatures {
                max_meter: 100,
                band_types: 0b110,
                capabilities: 0xf,
                max_bands: 4,
                max_color: 0,
            }),
        ),
        rep(
            none,
            MultipartReplyBody::TableFeatures(vec![sample_table_features(), {
                let mut t = sample_table_features();
                t.table_id = 1;
                t.properties.truncate(8);
                t
            }]),
        ),
        rep(
            none,
            MultipartReplyBody::PortDesc(vec![sample_port(1), sample_port(2)]),
        ),
        rep(
            none,
            MultipartReplyBody::Experimenter(ExperimenterMsg {
                experimenter: NICIRA_ID,
                exp_type: 3,
                data: vec![],
            }),
        ),
        Message::BarrierRequest,
        Message::BarrierReply,
        Message::QueueGetConfigRequest { port: 1 },
        Message::QueueGetConfigReply(QueueGetConfigReply {
            port: 1,
            queues: vec![
                PacketQueue {
                    queue_id: 1,
                    port: 1,
                    properties: vec![
                        QueueProp::MinRate(100),
                        QueueProp::MaxRate(900),
                        QueueProp::Experimenter {
                            experimenter: NICIRA_ID,
                            data: vec![1; 8],
                        },
                        QueueProp::Other {
                            property: 7,
                            data: vec![],
                        },
                    ],
                },
                PacketQueue {
                    queue_id: 2,
                    port: 1,
                    properties: vec![],
                },
            ],
        }),
        Message::RoleRequest(RoleMsg {
            role: ControllerRole::Master,
            generation_id: 12,
        }),
        Message::RoleReply(RoleMsg {
            role: ControllerRole::Slave,
            generation_id: u64::MAX,
        }),
        Message::GetAsyncRequest,
        Message::GetAsyncReply(AsyncConfig {
            packet_in_mask: [0b11, 0b1],
            port_status_mask: [0b111, 0b111],
            flow_removed_mask: [0b1111, 0],
        }),
        Message::SetAsync(AsyncConfig::default()),
        Message::MeterMod(MeterMod {
            command: MeterModCommand::Add,
            flags: MeterFlags::PKTPS | MeterFlags::BURST,
            meter_id: 1,
            bands: sample_bands(),
        }),
        Message::MeterMod(MeterMod {
            command: MeterModCommand::Delete,
            flags: MeterFlags::empty(),
            meter_id: OFPM_ALL,
            bands: vec![],
        }),
        // Experimenter pieces that decode (for the agent to refuse).
        Message::FlowMod(FlowMod::add(
            0,
            1,
            Match::new(vec![OxmTlv::Experimenter(
                ExperimenterOxm::new(3, false, 0x4f4e_4600, vec![1, 2]).unwrap(),
            )]),
            vec![
                Instruction::Experimenter {
                    experimenter: NICIRA_ID,
                    data: vec![0; 8],
                },
                // Subtype 16 (NXAST_LEARN) is no extension this codec implements.
                Instruction::ApplyActions(vec![Action::Experimenter {
                    experimenter: NICIRA_ID,
                    data: vec![0, 16, 2, 3, 0, 0, 0, 0],
                }]),
            ],
        )),
        Message::MeterMod(MeterMod {
            command: MeterModCommand::Modify,
            flags: MeterFlags::KBPS,
            meter_id: 2,
            bands: vec![MeterBand::Experimenter {
                rate: 1,
                burst_size: 2,
                experimenter: NICIRA_ID,
                data: vec![7; 8],
            }],
        }),
    ];
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| OfpMessage::new(0x1000 + i as u32, body))
        .collect()
}
