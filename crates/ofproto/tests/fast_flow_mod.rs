//! `ofproto::flow_mod_from_wire` (a FLOW_MOD read straight into the pipeline's request)
//! against the general path (`openflow::decode` then `ofproto::convert_flow_mod`), over
//! generated FLOW_MODs, valid and malformed: where the direct reader answers, the general
//! path answers the same request; where the general path takes a flow-mod the direct
//! reader is meant for (ADD/MODIFY, basic match fields, standard instructions and actions),
//! the direct reader takes it too.

use std::cell::Cell;

use openflow::consts::{OFPG_ANY, OFPP_ANY, OFPP_CONTROLLER, OFPP_TABLE};
use openflow::messages::{
    Bucket, FlowMod, FlowModCommand, GroupMod, GroupModCommand, GroupType, MeterBand, MeterMod,
    MeterModCommand,
};
use openflow::{
    Action as OfAction, BasicOxm, Instruction as OfInst, Match as OfMatch, Message, NxAction,
    OfpMessage, OxmField, OxmTlv,
};
use pipeline::{FlowTables, PipelineConfig, PortInfo};
use proptest::prelude::*;

use ofproto::OfFlowTables;

/// Four tables, ports 1-4, groups 1-3, meters 1-2.
fn tables() -> FlowTables {
    let mut ft = FlowTables::new(PipelineConfig {
        n_tables: 4,
        ..Default::default()
    });
    for p in 1..=4 {
        ft.set_port(PortInfo::new(p));
    }
    for g in 1..=3 {
        ft.group_mod(
            &GroupMod {
                command: GroupModCommand::Add,
                group_type: GroupType::Indirect,
                group_id: g,
                buckets: vec![Bucket {
                    weight: 0,
                    watch_port: OFPP_ANY,
                    watch_group: OFPG_ANY,
                    actions: vec![OfAction::output(2)],
                }],
            },
            std::time::Duration::ZERO,
        )
        .unwrap();
    }
    for m in 1..=2 {
        ft.meter_mod(
            &MeterMod {
                command: MeterModCommand::Add,
                flags: openflow::consts::MeterFlags(openflow::consts::MeterFlags::PKTPS.0),
                meter_id: m,
                bands: vec![MeterBand::Drop {
                    rate: 10,
                    burst_size: 0,
                }],
            },
            std::time::Duration::ZERO,
        )
        .unwrap();
    }
    ft.publish();
    ft
}

/// A field, mostly those flow tables use, with a value that is often valid for it.
fn field() -> impl Strategy<Value = OxmField> {
    prop_oneof![
        6 => prop::sample::select(vec![
            OxmField::InPort,
            OxmField::Metadata,
            OxmField::EthDst,
            OxmField::EthSrc,
            OxmField::EthType,
            OxmField::VlanVid,
            OxmField::IpProto,
            OxmField::Ipv4Src,
            OxmField::Ipv4Dst,
            OxmField::TcpDst,
            OxmField::UdpSrc,
        ]),
        1 => prop::sample::select(OxmField::ALL.to_vec()),
    ]
}

fn value_for(f: OxmField) -> impl Strategy<Value = u128> {
    let full = f.full_mask();
    let plausible: Vec<u128> = match f {
        OxmField::EthType => vec![0x800, 0x806, 0x86dd, 0x8847],
        OxmField::IpProto => vec![6, 17, 1, 58],
        OxmField::VlanVid => vec![0x1000 | 5, 0x1000, 0, 0x2000],
        OxmField::Icmpv6Type => vec![135, 136],
        _ => vec![0, 1, 2],
    };
    prop_oneof![
        2 => prop::sample::select(plausible),
        1 => any::<u128>().prop_map(move |v| v & full),
        1 => (0u32..16).prop_map(|b| (1u128 << b) - 1),
    ]
}

fn oxm() -> impl Strategy<Value = OxmTlv> {
    field().prop_flat_map(|f| {
        (value_for(f), prop::option::weighted(0.3, value_for(f))).prop_map(move |(v, m)| {
            let (v, m) = (v & f.full_mask(), m.map(|m| m & f.full_mask()));
            let b = match m {
                Some(m) => BasicOxm::masked(f, v & m, m),
                None => BasicOxm::new(f, v),
            };
            OxmTlv::Basic(b.expect("values fit their field"))
        })
    })
}

fn action() -> impl Strategy<Value = OfAction> {
    let port = prop::sample::select(vec![
        0,
        1,
        1,
        2,
        2,
        2,
        3,
        7,
        OFPP_CONTROLLER,
        OFPP_TABLE,
        0xffff_fffa,
        0xffff_fffb,
        0xffff_ff00,
        OFPP_ANY,
    ]);
    prop_oneof![
        6 => (port, any::<u16>()).prop_map(|(port, max_len)| OfAction::Output { port, max_len }),
        2 => (0u32..5).prop_map(OfAction::Group),
        1 => any::<u32>().prop_map(OfAction::SetQueue),
        3 => oxm().prop_map(|t| match t {
            OxmTlv::Basic(b) => OfAction::SetField(OxmTlv::Basic(
                BasicOxm::new(b.field(), b.value()).expect("fits"),
            )),
            t => OfAction::SetField(t),
        }),
        1 => prop::sample::select(vec![0x8100u16, 0x88a8, 0x1234]).prop_map(OfAction::PushVlan),
        1 => Just(OfAction::PopVlan),
        1 => prop::sample::select(vec![0x8847u16, 0x8848, 0x800]).prop_map(OfAction::PushMpls),
        1 => prop::sample::select(vec![0x800u16, 0x86dd]).prop_map(OfAction::PopMpls),
        1 => prop::sample::select(vec![0x88e7u16, 0x8100]).prop_map(OfAction::PushPbb),
        1 => Just(OfAction::PopPbb),
        1 => any::<u8>().prop_map(OfAction::SetNwTtl),
        1 => Just(OfAction::DecNwTtl),
        1 => any::<u8>().prop_map(OfAction::SetMplsTtl),
        1 => Just(OfAction::DecMplsTtl),
        1 => Just(OfAction::CopyTtlOut),
        1 => Just(OfAction::CopyTtlIn),
        // Not the direct reader's: the general path answers.
        1 => (0u8..5).prop_map(|table| OfAction::Nx(NxAction::Resubmit { in_port: 0xfff8, table })),
    ]
}

fn instruction() -> impl Strategy<Value = OfInst> {
    let actions = || prop::collection::vec(action(), 0..4);
    prop_oneof![
        3 => (0u8..6).prop_map(OfInst::GotoTable),
        2 => (any::<u64>(), any::<u64>())
            .prop_map(|(metadata, mask)| OfInst::WriteMetadata { metadata, mask }),
        6 => actions().prop_map(OfInst::ApplyActions),
        2 => actions().prop_map(OfInst::WriteActions),
        1 => Just(OfInst::ClearActions),
        1 => (0u32..4).prop_map(OfInst::Meter),
        1 => Just(OfInst::Experimenter { experimenter: 0x2320, data: vec![0; 4] }),
    ]
}

fn flow_mod() -> impl Strategy<Value = FlowMod> {
    (
        (
            prop::sample::select(vec![
                FlowModCommand::Add,
                FlowModCommand::Add,
                FlowModCommand::Add,
                FlowModCommand::Modify,
                FlowModCommand::ModifyStrict,
                FlowModCommand::Delete,
                FlowModCommand::DeleteStrict,
            ]),
            prop_oneof![6 => 0u8..5, 1 => Just(0xffu8)],
            any::<u16>(),
            any::<u64>(),
            any::<u64>(),
        ),
        (
            any::<u16>(),
            any::<u16>(),
            0u16..64,
            any::<u32>(),
            any::<u32>(),
        ),
        prop::collection::vec(oxm(), 0..4),
        prop::collection::vec(instruction(), 0..4),
    )
        .prop_map(
            |(
                (command, table_id, priority, cookie, cookie_mask),
                (idle_timeout, hard_timeout, flags, out_port, out_group),
                fields,
                instructions,
            )| FlowMod {
                cookie,
                cookie_mask,
                table_id,
                command,
                idle_timeout,
                hard_timeout,
                priority,
                buffer_id: openflow::consts::OFP_NO_BUFFER,
                out_port,
                out_group,
                flags: openflow::consts::FlowModFlags(flags),
                match_: OfMatch::new(fields),
                instructions,
            },
        )
}

/// How the encoded message is damaged: not at all, a byte changed, cut short or lengthened
/// (with or without the header's length following), or an inner length field changed.
#[derive(Debug, Clone)]
enum Damage {
    None,
    Byte(usize, u8),
    Resize(usize, bool),
    Word(usize, u16),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        10 => Just(Damage::None),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Damage::Byte(at, b)),
        1 => (0usize..200, any::<bool>()).prop_map(|(n, fix)| Damage::Resize(n, fix)),
        2 => (any::<usize>(), 0u16..40).prop_map(|(at, w)| Damage::Word(at, w)),
    ]
}

fn apply(raw: &mut Vec<u8>, d: &Damage) {
    match *d {
        Damage::None => {}
        Damage::Byte(at, b) => {
            let n = raw.len();
            raw[at % n] = b;
        }
        Damage::Resize(n, fix) => {
            raw.resize(n.max(8), 0);
            if fix {
                let len = raw.len() as u16;
                raw[2..4].copy_from_slice(&len.to_be_bytes());
            }
        }
        Damage::Word(at, w) => {
            // An even offset past the header: a length or type field, often.
            let n = raw.len();
            let at = (8 + (at % (n - 8))) & !1;
            if at + 2 <= n {
                raw[at..at + 2].copy_from_slice(&w.to_be_bytes());
            }
        }
    }
}

/// Whether the direct reader is meant to take this (decoded) flow-mod.
fn is_common(fm: &FlowMod) -> bool {
    let actions_ok = |l: &[OfAction]| {
        l.iter().all(|a| match a {
            OfAction::Nx(_) | OfAction::Experimenter { .. } => false,
            OfAction::SetField(t) => matches!(t, OxmTlv::Basic(_)),
            _ => true,
        })
    };
    !matches!(
        fm.command,
        FlowModCommand::Delete | FlowModCommand::DeleteStrict
    ) && fm
        .match_
        .fields
        .iter()
        .all(|f| matches!(f, OxmTlv::Basic(_)))
        && fm.instructions.iter().all(|i| match i {
            OfInst::Experimenter { .. } => false,
            OfInst::ApplyActions(l) | OfInst::WriteActions(l) => actions_ok(l),
            _ => true,
        })
}

thread_local! {
    /// (cases, taken by the direct reader, refused by the general path).
    static SEEN: Cell<(u32, u32, u32)> = const { Cell::new((0, 0, 0)) };
}

const CASES: u32 = 4000;

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn the_direct_reader_answers_as_decode_and_convert(
        fm in flow_mod(),
        xid in any::<u32>(),
        d in damage(),
    ) {
        let ft = tables();
        let mut raw = OfpMessage::new(xid, Message::FlowMod(fm)).encode().unwrap();
        apply(&mut raw, &d);
        let fast = ofproto::flow_mod_from_wire(&raw, &ft);
        // Built in its box, the same request.
        let boxed = ofproto::flow_mod_from_wire_boxed(&raw, &ft);
        prop_assert_eq!(format!("{:?}", boxed.as_deref()), format!("{:?}", fast.as_ref()));
        let general = match openflow::decode(&raw) {
            Ok(OfpMessage { body: Message::FlowMod(fm), .. }) => {
                let common = is_common(&fm) && fm.experimenter_free();
                Some((common, ofproto::convert_flow_mod(&fm, &ft)))
            }
            _ => None,
        };
        let (mut n, mut taken, mut refused) = SEEN.with(Cell::get);
        n += 1;
        match (&fast, &general) {
            (Some(req), Some((_, Ok(want)))) => {
                taken += 1;
                prop_assert_eq!(format!("{req:?}"), format!("{want:?}"));
                prop_assert_eq!(req.match_.fields(), want.match_.fields());
            }
            (Some(req), other) => {
                prop_assert!(false, "direct reader took {req:?}; the general path: {other:?}");
            }
            (None, Some((true, Ok(want)))) => {
                prop_assert!(false, "direct reader refused a common flow-mod {want:?}");
            }
            (None, Some((_, Err(_)))) | (None, None) => refused += 1,
            (None, Some((false, Ok(_)))) => {}
        }
        SEEN.with(|s| s.set((n, taken, refused)));
        if n % 1000 == 0 { eprintln!("{n} cases: direct reader took {taken}, general path refused {refused}"); }
        if n == CASES {
            // Both sides of the comparison must be exercised, not one of them.
            prop_assert!(taken > CASES / 20, "direct reader took {taken} of {n}");
            prop_assert!(refused > CASES / 10, "general path refused {refused} of {n}");
        }
    }
}

trait ExperimenterFree {
    fn experimenter_free(&self) -> bool;
}

impl ExperimenterFree for FlowMod {
    fn experimenter_free(&self) -> bool {
        OfpMessage::new(0, Message::FlowMod(self.clone()))
            .experimenter_error()
            .is_none()
    }
}

/// Pipeline B's two flow shapes (as `ovs-ofctl` encodes them) take the direct reader.
#[test]
fn pipeline_b_flows_take_the_direct_reader() {
    let ft = tables();
    let classifier = FlowMod::add(
        0,
        100,
        OfMatch::new(vec![
            OxmTlv::in_port(3),
            OxmTlv::eth_src([2, 0, 0, 0, 0, 7], None),
        ]),
        vec![OfInst::GotoTable(1)],
    );
    let switch = FlowMod::add(
        1,
        100,
        OfMatch::new(vec![OxmTlv::eth_dst([2, 0, 0, 0, 0, 7], None)]),
        vec![OfInst::ApplyActions(vec![OfAction::output(2)])],
    );
    for fm in [classifier, switch] {
        let raw = OfpMessage::new(1, Message::FlowMod(fm.clone()))
            .encode()
            .unwrap();
        let fast = ofproto::flow_mod_from_wire(&raw, &ft).expect("taken");
        let want = ofproto::convert_flow_mod(&fm, &ft).unwrap();
        assert_eq!(format!("{fast:?}"), format!("{want:?}"));
    }
}

/// Tables as [`tables`] with `n` tables.
fn tables_of(n: u8) -> FlowTables {
    let mut ft = FlowTables::new(PipelineConfig {
        n_tables: n,
        ..Default::default()
    });
    for p in 1..=4 {
        ft.set_port(PortInfo::new(p));
    }
    ft.publish();
    ft
}

/// Instruction lists from a small set, so that the same bytes come again in another
/// table, pipeline or match: those the direct reader remembers by their bytes (goto,
/// metadata, clear, outputs, good and bad) and those it must read each time.
fn repeated_instructions() -> impl Strategy<Value = Vec<OfInst>> {
    let inst = prop_oneof![
        3 => (0u8..5).prop_map(OfInst::GotoTable),
        1 => Just(OfInst::WriteMetadata { metadata: 1, mask: 3 }),
        1 => Just(OfInst::ClearActions),
        3 => prop::sample::select(vec![0u32, 1, 2, 5, OFPP_CONTROLLER, OFPP_TABLE])
            .prop_map(|p| OfInst::ApplyActions(vec![OfAction::output(p)])),
        1 => Just(OfInst::ApplyActions(vec![])),
        1 => (0u32..3).prop_map(|g| OfInst::ApplyActions(vec![OfAction::Group(g)])),
        1 => Just(OfInst::ApplyActions(vec![OfAction::SetField(OxmTlv::ip_proto(6))])),
        1 => Just(OfInst::WriteActions(vec![OfAction::output(2)])),
        1 => (0u32..2).prop_map(OfInst::Meter),
    ];
    prop::collection::vec(inst, 0..3)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// The instructions the direct reader remembers by their bytes answer what reading
    /// them again would: a run of flow-mods repeating a few instruction lists in tables
    /// of pipelines of 2 and 4 tables, with matches that do and do not give set-fields
    /// their prerequisites, each against decode + convert.
    #[test]
    fn remembered_instructions_answer_as_read_ones(
        mods in prop::collection::vec(
            (any::<bool>(), 0u8..5, any::<bool>(), repeated_instructions()),
            1..40,
        ),
    ) {
        let (two, four) = (tables_of(2), tables_of(4));
        for (small, table_id, ip, instructions) in mods {
            let ft = if small { &two } else { &four };
            let fields = if ip {
                vec![OxmTlv::eth_type(0x0800), OxmTlv::ip_proto(17)]
            } else {
                vec![OxmTlv::in_port(1)]
            };
            let fm = FlowMod::add(table_id, 7, OfMatch::new(fields), instructions);
            let raw = OfpMessage::new(1, Message::FlowMod(fm.clone())).encode().unwrap();
            let fast = ofproto::flow_mod_from_wire(&raw, ft);
            let general = ofproto::convert_flow_mod(&fm, ft);
            match (&fast, &general) {
                (Some(req), Ok(want)) => {
                    prop_assert_eq!(format!("{req:?}"), format!("{want:?}"));
                }
                (Some(req), Err(e)) => prop_assert!(false, "took {req:?}, general: {e:?}"),
                (None, Ok(want)) => prop_assert!(false, "refused {want:?}"),
                (None, Err(_)) => {}
            }
        }
    }
}
