//! The compiled pipeline against the reference: random tables (masks over several fields,
//! prefixes, overlapping entries and priority ties, forward goto chains, write-metadata
//! with masks, set-field and tag actions, groups), random packets made to hit them, under
//! every classifier strategy. Entries hit, outputs, packet-ins and final bytes must agree,
//! and a trace of each packet must say what processing it did (with no side effect: the
//! entry counts checked at the end of the interleaved test count processed packets only).

mod common;

use std::time::Duration;

use common::{frame, run_compiled, run_compiled_with, run_reference, run_trace, PktSpec, L3};
use packet::{Field, FlowKey};
use pipeline::lookup::{Classifier, RuleSpec};
use pipeline::ports::{OFPP_ALL, OFPP_CONTROLLER, OFPP_FLOOD, OFPP_IN_PORT, OFPP_NORMAL};
use pipeline::{
    Action, Bucket, FlowModReq, FlowTables, GroupModCommand, GroupModReq, GroupType, Instructions,
    Match, MatchField, PipelineConfig, PortInfo, Strategy as Lookup,
};
use proptest::prelude::*;

const MACS: [u64; 4] = [
    0x0200_0000_0001,
    0x0200_0000_0002,
    0x0200_0000_0003,
    0xffff_ffff_ffff,
];
const IPS: [u32; 5] = [
    0x0a00_0001,
    0x0a00_0002,
    0x0a00_0101,
    0x0a01_0001,
    0xc0a8_0001,
];
const TPORTS: [u16; 3] = [80, 443, 1000];
/// Masks on transport ports: exact, and ranges that group some of TPORTS.
const PORT_MASKS: [Option<u16>; 3] = [None, Some(0xff00), Some(0xfff0)];
const PLENS: [u32; 5] = [8, 16, 24, 31, 32];
const N_TABLES: u8 = 3;

fn prefix(plen: u32) -> u128 {
    u128::from(u32::MAX << (32 - plen))
}

#[derive(Clone, Debug)]
struct RuleGen {
    table: u8,
    priority: u16,
    fields: Vec<MatchField>,
    apply: Vec<Action>,
    clear: bool,
    write: Vec<Action>,
    metadata: Option<(u64, u64)>,
    goto_offset: Option<u8>,
}

fn arb_fields() -> impl Strategy<Value = Vec<MatchField>> {
    (
        proptest::option::of(1u32..=4),
        proptest::option::of((0usize..4, any::<bool>())),
        0u8..3,
        proptest::option::of((0usize..5, 0usize..5)),
        proptest::option::of((0usize..5, 0usize..5)),
        proptest::option::of((any::<bool>(), proptest::option::of(0usize..3))),
        proptest::option::of(0u8..3),
        proptest::option::of((0u64..4, prop_oneof![Just(u64::MAX), Just(0xff), Just(0x0f)])),
        proptest::option::of((0usize..2, 0u32..4, any::<bool>())),
    )
        .prop_map(|(in_port, eth_dst, l3, src, dst, l4, vlan, md, reg)| {
            let mut f = Vec::new();
            let exact = |field, value| MatchField {
                field,
                value,
                mask: None,
            };
            if let Some(p) = in_port {
                f.push(exact(Field::InPort, p.into()));
            }
            if let Some((i, masked)) = eth_dst {
                let mask = masked.then_some(0xffff_ffff_ff00u128);
                f.push(MatchField {
                    field: Field::EthDst,
                    value: u128::from(MACS[i]) & mask.unwrap_or(u128::MAX),
                    mask,
                });
            }
            if let Some(v) = vlan {
                f.push(match v {
                    0 => exact(Field::VlanVid, 0),
                    1 => exact(Field::VlanVid, 0x1000 | 10),
                    _ => MatchField {
                        field: Field::VlanVid,
                        value: 0x1000,
                        mask: Some(0x1000),
                    },
                });
            }
            if let Some((r, v, masked)) = reg {
                let mask = masked.then_some(0x3u128);
                f.push(MatchField {
                    field: Field::REGS[r],
                    value: u128::from(v) & mask.unwrap_or(u128::MAX),
                    mask,
                });
            }
            if let Some((v, m)) = md {
                f.push(MatchField {
                    field: Field::Metadata,
                    value: u128::from(v & m),
                    mask: Some(m.into()),
                });
            }
            match l3 {
                1 => {
                    f.push(exact(Field::EthType, 0x0800));
                    for (field, sel) in [(Field::Ipv4Src, src), (Field::Ipv4Dst, dst)] {
                        if let Some((ip, pl)) = sel {
                            let m = prefix(PLENS[pl]);
                            let mask = (PLENS[pl] < 32).then_some(m);
                            f.push(MatchField {
                                field,
                                value: u128::from(IPS[ip]) & m,
                                mask,
                            });
                        }
                    }
                    if let Some((tcp, port)) = l4 {
                        f.push(exact(Field::IpProto, if tcp { 6 } else { 17 }));
                        if let Some(p) = port {
                            let field = if tcp { Field::TcpDst } else { Field::UdpDst };
                            // Port ranges as Open vSwitch masks them (tp_dst=0x1000/0xf000).
                            match PORT_MASKS[p % PORT_MASKS.len()] {
                                None => f.push(exact(field, TPORTS[p].into())),
                                Some(m) => f.push(MatchField {
                                    field,
                                    value: u128::from(TPORTS[p] & m),
                                    mask: Some(m.into()),
                                }),
                            }
                        }
                    }
                }
                2 => {
                    f.push(exact(Field::EthType, 0x0806));
                    if let Some((ip, _)) = src {
                        f.push(exact(Field::ArpSpa, IPS[ip].into()));
                    }
                }
                _ => {}
            }
            f
        })
}

fn arb_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => prop_oneof![
            (1u32..=4).prop_map(Action::output),
            Just(Action::output(OFPP_IN_PORT)),
            Just(Action::output(OFPP_FLOOD)),
            Just(Action::output(OFPP_ALL)),
            Just(Action::Output { port: OFPP_CONTROLLER, max_len: 40 }),
        ],
        2 => (0usize..4).prop_map(|i| Action::SetField { field: Field::EthDst, value: MACS[i].into() }),
        1 => (0usize..5).prop_map(|i| Action::SetField { field: Field::Ipv4Dst, value: IPS[i].into() }),
        1 => Just(Action::SetField { field: Field::VlanVid, value: 0x1000 | 20 }),
        1 => Just(Action::PushVlan(0x8100)),
        1 => Just(Action::PopVlan),
        1 => Just(Action::DecNwTtl),
        1 => (1u32..3).prop_map(Action::SetQueue),
        1 => (1u32..=2).prop_map(Action::Group),
        // Open vSwitch extensions: registers written (set_field, load, move), resubmit
        // (back to earlier tables too: loops end at the bounds), note, ct_clear.
        1 => (0usize..2, 0u128..4).prop_map(|(r, value)| Action::SetField { field: Field::REGS[r], value }),
        1 => (0usize..2, 0u128..4, prop_oneof![Just(0x3u128), Just(0x2)]).prop_map(|(r, v, mask)| {
            Action::SetFieldMasked { field: Field::REGS[r], value: v & mask, mask, form: pipeline::flow::LoadForm::RegLoad }
        }),
        1 => prop_oneof![
            Just(Action::Move { src: Field::InPort, src_ofs: 0, dst: Field::Reg0, dst_ofs: 0, n_bits: 2 }),
            Just(Action::Move { src: Field::Reg0, src_ofs: 0, dst: Field::Reg1, dst_ofs: 0, n_bits: 32 }),
            Just(Action::Move { src: Field::EthSrc, src_ofs: 0, dst: Field::EthDst, dst_ofs: 0, n_bits: 48 }),
            Just(Action::Move { src: Field::Reg1, src_ofs: 0, dst: Field::Metadata, dst_ofs: 0, n_bits: 2 }),
        ],
        1 => (proptest::option::of(1u32..=4), proptest::option::of(0u8..N_TABLES))
            .prop_map(|(in_port, table)| Action::Resubmit { in_port, table }),
        1 => Just(Action::Note(std::sync::Arc::from(&[1u8, 2, 0, 0, 0, 0][..]))),
        1 => Just(Action::CtClear),
    ]
}

fn arb_rule() -> impl Strategy<Value = RuleGen> {
    (
        0u8..N_TABLES,
        prop_oneof![Just(0u16), Just(1), Just(5), Just(10), Just(100), 0u16..200],
        arb_fields(),
        proptest::collection::vec(arb_action(), 0..3),
        any::<bool>(),
        proptest::collection::vec(arb_action(), 0..3),
        proptest::option::of((0u64..4, prop_oneof![Just(u64::MAX), Just(0xff), Just(0x0f)])),
        proptest::option::of(1u8..3),
    )
        .prop_map(
            |(table, priority, fields, apply, clear, write, metadata, goto_offset)| RuleGen {
                table,
                priority,
                fields,
                apply,
                clear,
                write,
                metadata,
                goto_offset,
            },
        )
}

fn arb_packet() -> impl Strategy<Value = (PktSpec, u32)> {
    let l3 = prop_oneof![
        6 => (0usize..5, 0usize..5, any::<bool>(), 1u8..4, 0usize..3, 0usize..3).prop_map(
            |(s, d, tcp, ttl, sp, dp)| L3::Ipv4 {
                src: IPS[s],
                dst: IPS[d],
                proto: if tcp { 6 } else { 17 },
                ttl,
                sport: TPORTS[sp],
                dport: TPORTS[dp],
            }
        ),
        2 => (0usize..5, 0usize..5).prop_map(|(s, d)| L3::Arp { op: 1, spa: IPS[s], tpa: IPS[d] }),
        1 => Just(L3::Raw(0x88cc)),
    ];
    (
        0usize..4,
        0usize..3,
        prop_oneof![Just(None), Just(Some(10u16)), Just(Some(20u16))],
        l3,
        1u32..=4,
    )
        .prop_map(|(d, s, vlan, l3, in_port)| {
            (
                PktSpec {
                    dst: MACS[d],
                    src: MACS[s],
                    vlan,
                    l3,
                },
                in_port,
            )
        })
}

/// An ADD for the rule.
fn rule_req(r: &RuleGen) -> FlowModReq {
    let goto = r.goto_offset.map(|o| r.table + o).filter(|&t| t < N_TABLES);
    let insts = Instructions {
        meter: None,
        apply: (!r.apply.is_empty()).then(|| r.apply.clone().into()),
        clear: r.clear,
        write: (!r.write.is_empty()).then(|| {
            let mut set = pipeline::ActionSet::default();
            for a in &r.write {
                set.write(a);
            }
            Box::new(pipeline::WriteActions {
                list: r.write.clone().into(),
                set,
            })
        }),
        metadata: r.metadata,
        goto,
    };
    FlowModReq::add(r.table, r.priority, Match::from_fields(&r.fields), insts)
}

/// One step of a control-plane history: a change, or a publish after which packets are
/// checked.
#[derive(Clone, Debug)]
enum Step {
    Add(RuleGen),
    /// Strict delete of the rule added `n` adds ago (modulo the adds so far).
    DeleteStrict(usize),
    /// Non-strict delete in one table of everything its match (in_port only) covers.
    Delete(u8, Option<u32>),
    /// Strict modify of an earlier rule's instructions to those of `RuleGen`.
    Modify(usize, RuleGen),
    Publish,
    Compact,
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => arb_rule().prop_map(Step::Add),
        3 => (0usize..64).prop_map(Step::DeleteStrict),
        1 => (0u8..N_TABLES, proptest::option::of(1u32..=4)).prop_map(|(t, p)| Step::Delete(t, p)),
        2 => ((0usize..64), arb_rule()).prop_map(|(n, r)| Step::Modify(n, r)),
        4 => Just(Step::Publish),
        1 => Just(Step::Compact),
    ]
}

fn build(strategy: Lookup, rules: &[RuleGen]) -> FlowTables {
    let mut ft = FlowTables::new(PipelineConfig {
        n_tables: N_TABLES,
        strategy,
        ..Default::default()
    });
    for p in 1..=4 {
        let mut info = PortInfo::new(p);
        info.no_flood = p == 3;
        ft.set_port(info);
    }
    let now = Duration::ZERO;
    ft.apply_group_mod(
        GroupModReq {
            command: GroupModCommand::Add,
            kind: GroupType::All,
            group_id: 1,
            buckets: vec![
                Bucket::new(vec![Action::output(2)]),
                Bucket::new(vec![
                    Action::SetField {
                        field: Field::EthDst,
                        value: 0x0200_0000_00ee,
                    },
                    Action::output(3),
                ]),
            ],
        },
        now,
    )
    .unwrap();
    ft.apply_group_mod(
        GroupModReq {
            command: GroupModCommand::Add,
            kind: GroupType::Indirect,
            group_id: 2,
            buckets: vec![Bucket::new(vec![
                Action::PushVlan(0x8100),
                Action::output(4),
            ])],
        },
        now,
    )
    .unwrap();
    for r in rules {
        ft.apply_flow_mod(rule_req(r), now).unwrap();
    }
    ft.publish();
    ft
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    /// Random interleavings of adds, deletes, modifies, publishes and compactions (so
    /// tables are made of several levels, rebuilt and merged in every way): after each
    /// publish the compiled pipeline agrees with the linear reference, and at the end every
    /// entry's packet count is the number of packets that hit it (counters survive level
    /// rebuilds, merges and replacing adds).
    #[test]
    fn interleaved_changes_equal_reference(
        steps in proptest::collection::vec(arb_step(), 1..80),
        packets in proptest::collection::vec(arb_packet(), 1..12),
        strategy in prop_oneof![Just(Lookup::Auto), Just(Lookup::Linear), Just(Lookup::Tuple)],
        port_only in proptest::bool::weighted(0.3),
    ) {
        use std::collections::HashMap;
        let mut ft = build(strategy, &[]);
        let now = Duration::ZERO;
        let mut added: Vec<RuleGen> = Vec::new();
        let mut hits: HashMap<u64, u64> = HashMap::new();
        let find = |ft: &FlowTables, r: &RuleGen| {
            let m = Match::from_fields(&r.fields);
            ft.entries(r.table).find(|e| e.priority == r.priority && e.match_ == m).map(|e| e.uid)
        };
        for step in steps.iter().chain([Step::Publish].iter()) {
            match step {
                Step::Add(r) => {
                    // Port-only histories: every match is in_port or nothing, the tables
                    // Auto compiles to in_port-indexed arrays (churn included).
                    let r = &if port_only {
                        RuleGen { fields: r.fields.iter().filter(|f| f.field == Field::InPort).cloned().collect(), ..r.clone() }
                    } else {
                        r.clone()
                    };
                    let old = find(&ft, r);
                    ft.apply_flow_mod(rule_req(r), now).unwrap();
                    // A replacing add keeps the counts of the entry it replaces.
                    if let Some(old) = old {
                        let n = hits.remove(&old).unwrap_or(0);
                        hits.insert(find(&ft, r).unwrap(), n);
                    }
                    added.push(r.clone());
                }
                Step::DeleteStrict(n) if !added.is_empty() => {
                    let r = &added[added.len() - 1 - n % added.len()];
                    let mut req = FlowModReq::delete(r.table, Match::from_fields(&r.fields));
                    req.command = pipeline::FlowModCommand::DeleteStrict;
                    req.priority = r.priority;
                    ft.apply_flow_mod(req, now).unwrap();
                }
                Step::Delete(t, port) => {
                    let fields: Vec<MatchField> = port.iter().map(|&p| MatchField { field: Field::InPort, value: p.into(), mask: None }).collect();
                    ft.apply_flow_mod(FlowModReq::delete(*t, Match::from_fields(&fields)), now).unwrap();
                }
                Step::Modify(n, with) if !added.is_empty() => {
                    let r = &added[added.len() - 1 - n % added.len()];
                    let mut req = rule_req(&RuleGen { table: r.table, priority: r.priority, fields: r.fields.clone(), ..with.clone() });
                    req.command = pipeline::FlowModCommand::ModifyStrict;
                    ft.apply_flow_mod(req, now).unwrap();
                }
                Step::DeleteStrict(_) | Step::Modify(..) => {}
                Step::Publish | Step::Compact => {
                    if matches!(step, Step::Compact) {
                        ft.compact();
                    } else {
                        ft.publish();
                    }
                    for (spec, in_port) in &packets {
                        let f = frame(spec);
                        let want = run_reference(&ft, &f, *in_port);
                        let traced = run_trace(&ft, &f, *in_port);
                        let got = run_compiled(&ft, &f, *in_port);
                        prop_assert_eq!(&got, &want, "strategy {:?} port_only {} packet {:?} in_port {} after {:?}", strategy, port_only, spec, in_port, step);
                        prop_assert_eq!(&traced, &got, "trace: strategy {:?} port_only {} packet {:?} in_port {} after {:?}", strategy, port_only, spec, in_port, step);
                        for &(_, uid) in &got.hits {
                            *hits.entry(uid).or_default() += 1;
                        }
                    }
                }
            }
        }
        for t in 0..N_TABLES {
            let live: Vec<u64> = ft.entries(t).map(|e| e.uid).collect();
            for uid in live {
                let (p, _) = ft.entry_counts(t, uid).unwrap();
                prop_assert_eq!(p, hits.get(&uid).copied().unwrap_or(0), "packets of entry {} in table {}", uid, t);
            }
        }
    }

    #[test]
    fn compiled_pipeline_equals_reference(
        rules in proptest::collection::vec(arb_rule(), 0..40),
        packets in proptest::collection::vec(arb_packet(), 1..24),
    ) {
        for strategy in [Lookup::Auto, Lookup::Linear, Lookup::Exact, Lookup::Tuple, Lookup::TupleWithTries] {
            let ft = build(strategy, &rules);
            for (spec, in_port) in &packets {
                let f = frame(spec);
                let want = run_reference(&ft, &f, *in_port);
                let got = run_compiled(&ft, &f, *in_port);
                prop_assert_eq!(&got, &want, "strategy {:?} packet {:?} in_port {}", strategy, spec, in_port);
                prop_assert_eq!(&run_trace(&ft, &f, *in_port), &got, "trace: strategy {:?} packet {:?} in_port {}", strategy, spec, in_port);
            }
        }
    }

    /// Each version's extraction plan against full extraction: random tables cut down to
    /// what an in_port-only plan reads (in_port, metadata and register matches; outputs,
    /// packet-ins, register writes, resubmits), to that plus NORMAL (an L2 plan for
    /// NORMAL's sake alone), to what an L2 plan reads (Ethernet and VLAN matches too), or
    /// left whole, or (cut 4) cut as for L2 but for entries that match IPv4 packets to
    /// one destination exactly (a metadata-service DNAT entry's shape), left whole with
    /// their actions: a plan that parses in full only for those destinations
    /// ([`packet::ExtractPlan::full_for`]); random packets. Two identical switches (their
    /// learning tables evolve alike), one extracting with the plan over stale keys, the
    /// other with `packet::extract` into fresh ones: every packet's hits, outputs,
    /// packet-ins and final bytes must agree, and the plan must be no more than the cut
    /// asks for (so each plan is exercised).
    #[test]
    fn plans_give_the_results_of_full_extraction(
        rules in proptest::collection::vec(arb_rule(), 0..30),
        packets in proptest::collection::vec(arb_packet(), 1..24),
        cut in 0u8..5,
        normal_miss in any::<bool>(),
        strategy in prop_oneof![Just(Lookup::Auto), Just(Lookup::Linear), Just(Lookup::Tuple)],
    ) {
        use packet::Parse;
        let keep_field = |f: &MatchField| match cut {
            0 => matches!(f.field, Field::InPort | Field::Metadata) || f.field.is_register(),
            1 => matches!(f.field, Field::InPort | Field::Metadata) || f.field.is_register(),
            2 | 4 => matches!(f.field, Field::InPort | Field::Metadata | Field::EthDst | Field::VlanVid) || f.field.is_register(),
            _ => true,
        };
        let keep_action = |a: &Action| match a {
            Action::Output { .. } | Action::Resubmit { .. } | Action::SetQueue(_) | Action::Note(_) | Action::CtClear => true,
            Action::SetField { field, .. } | Action::SetFieldMasked { field, .. } => field.is_register() || cut == 3,
            Action::Move { src, dst, .. } => (src.is_register() || *src == Field::InPort) && (dst.is_register() || *dst == Field::Metadata) || cut == 3,
            _ => cut == 3,
        };
        let rules: Vec<RuleGen> = rules.iter().enumerate().map(|(i, r)| {
            // Cut 4: every IPv4 entry made one for a single destination (four of them at
            // most, as a plan keeps), left whole.
            let ipv4 = r.fields.iter().any(|f| f.field == Field::EthType && f.value == 0x0800);
            if cut == 4 && ipv4 {
                let mut fields: Vec<MatchField> = r.fields.iter().filter(|f| f.field != Field::Ipv4Dst).cloned().collect();
                fields.push(MatchField { field: Field::Ipv4Dst, value: IPS[i % 4].into(), mask: None });
                return RuleGen { fields, ..r.clone() };
            }
            let mut apply: Vec<Action> = r.apply.iter().filter(|a| keep_action(a)).cloned().collect();
            // Some entries go to NORMAL where the cut allows it.
            if cut >= 1 && i % 2 == 0 {
                apply.push(Action::output(OFPP_NORMAL));
            }
            RuleGen {
                fields: r.fields.iter().filter(|f| keep_field(f)).cloned().collect(),
                apply,
                write: r.write.iter().filter(|a| keep_action(a)).cloned().collect(),
                ..r.clone()
            }
        }).collect();
        let setup = |ft: &mut FlowTables| {
            if normal_miss && cut >= 1 {
                ft.set_miss_policy(N_TABLES - 1, pipeline::MissPolicy::Normal).unwrap();
                ft.publish();
            }
        };
        let mut planned = build(strategy, &rules);
        let mut full = build(strategy, &rules);
        setup(&mut planned);
        setup(&mut full);
        let plan = planned.current().extract_plan;
        let most = [Parse::InPort, Parse::L2, Parse::L2, Parse::Full, Parse::L2][usize::from(cut)];
        prop_assert!(plan.parse <= most, "cut {} gave {:?}", cut, plan);
        for (spec, in_port) in &packets {
            let f = frame(spec);
            let got = run_compiled_with(&planned, &f, *in_port, false);
            let want = run_compiled_with(&full, &f, *in_port, true);
            prop_assert_eq!(&got, &want, "plan {:?} packet {:?} in_port {}", plan, spec, in_port);
        }
    }

    /// The classifiers alone on larger tables: many prefixes on both IPv4 addresses, L4
    /// ports, ties; keys drawn near the rules so most probes hit something.
    #[test]
    fn classifiers_equal_linear_scan(
        rules in proptest::collection::vec(
            (0u16..50, 0usize..5, 0usize..5, 0usize..5, 0usize..5, proptest::option::of(0usize..3), any::<bool>()),
            0..300),
        keys in proptest::collection::vec((0usize..5, 0usize..5, 0usize..3, any::<u8>()), 1..64),
    ) {
        let mut matches = Vec::new();
        for (i, &(prio, s, sl, d, dl, port, any_src)) in rules.iter().enumerate() {
            let mut f = vec![MatchField { field: Field::EthType, value: 0x0800, mask: None }];
            if !any_src {
                f.push(MatchField { field: Field::Ipv4Src, value: u128::from(IPS[s]) & prefix(PLENS[sl]), mask: Some(prefix(PLENS[sl])) });
            }
            f.push(MatchField { field: Field::Ipv4Dst, value: u128::from(IPS[d]) & prefix(PLENS[dl]), mask: Some(prefix(PLENS[dl])) });
            if let Some(p) = port {
                f.push(MatchField { field: Field::IpProto, value: 6, mask: None });
                let mask = PORT_MASKS[i % PORT_MASKS.len()];
                f.push(MatchField {
                    field: Field::TcpDst,
                    value: u128::from(TPORTS[p] & mask.unwrap_or(u16::MAX)),
                    mask: mask.map(u128::from),
                });
            }
            matches.push((Match::from_fields(&f), pipeline::flow::rank(prio, i as u64 + 1)));
        }
        // A catch-all at the bottom now and then.
        if rules.len() % 3 == 0 {
            matches.push((Match::any(), pipeline::flow::rank(0, 100_000)));
        }
        let masks: Vec<pipeline::flow::Words> = matches.iter().map(|(m, _)| m.mask_words()).collect();
        let specs: Vec<RuleSpec<'_>> = matches.iter().zip(&masks).map(|((m, r), mk)| RuleSpec { value: m.into(), mask: mk, rank: *r }).collect();
        let classifiers: Vec<Classifier> = [Lookup::Auto, Lookup::Linear, Lookup::Exact, Lookup::Tuple, Lookup::TupleWithTries]
            .into_iter().map(|s| Classifier::build(&specs, s)).collect();
        for (s, d, p, noise) in keys {
            let mut k = FlowKey::default();
            k.set(Field::EthType, 0x0800);
            k.set(Field::Ipv4Src, u128::from(IPS[s] ^ u32::from(noise & 3)));
            k.set(Field::Ipv4Dst, u128::from(IPS[d] ^ (u32::from(noise >> 2) << 8)));
            k.set(Field::IpProto, if noise & 0x80 != 0 { 17 } else { 6 });
            k.set(Field::TcpDst, TPORTS[p].into());
            let want = specs.iter().enumerate().filter(|(_, r)| {
                (0..16).all(|i| k.words[i] & r.mask[i] == r.value[i])
            }).max_by_key(|(_, r)| r.rank).map(|(i, _)| i as u32);
            for c in &classifiers {
                prop_assert_eq!(c.lookup(&k.words), want, "{}", c.kind());
            }
        }
    }

    /// Tuple-space search's single rows tested in place (`Step::Singles` in
    /// `lookup/tuple.rs`): single-row subtables on one or two key words (prefixes on either
    /// address, an IPv4-only entry, a catch-all) in runs above, between and below hashed
    /// subtables (exact destinations, prefixes shared by several entries), entries on three
    /// words that stay subtables, priority ties among them and rank 0 (priority 0, uid 0).
    #[test]
    fn tuple_single_rows_equal_linear_scan(
        rules in proptest::collection::vec((0u8..7, 0u16..6, 0usize..5, 0usize..5), 1..60),
        keys in proptest::collection::vec((0usize..5, 0usize..5, 0usize..3, any::<u8>()), 1..48),
    ) {
        let mut matches = Vec::new();
        for (i, &(kind, prio, ip, pl)) in rules.iter().enumerate() {
            let ip4 = MatchField { field: Field::EthType, value: 0x0800, mask: None };
            let src = MatchField { field: Field::Ipv4Src, value: u128::from(IPS[ip]) & prefix(PLENS[pl]), mask: Some(prefix(PLENS[pl])) };
            let dst = |v: u32| MatchField { field: Field::Ipv4Dst, value: v.into(), mask: None };
            let f = match kind {
                // Hashed: exact destinations, several per priority.
                0 | 1 => vec![ip4, dst(IPS[(ip + i) % IPS.len()] ^ (i as u32 & 0x30))],
                2 => vec![ip4, src],
                3 => vec![ip4],
                4 => vec![],
                5 => vec![MatchField { field: Field::Ipv4Src, value: u128::from(IPS[ip]) & prefix(PLENS[pl]), mask: Some(prefix(PLENS[pl])) }],
                _ => vec![ip4, src, MatchField { field: Field::TcpDst, value: TPORTS[ip % 3].into(), mask: None }, MatchField { field: Field::IpProto, value: 6, mask: None }],
            };
            matches.push((Match::from_fields(&f), pipeline::flow::rank(prio, i as u64)));
        }
        let masks: Vec<pipeline::flow::Words> = matches.iter().map(|(m, _)| m.mask_words()).collect();
        let specs: Vec<RuleSpec<'_>> = matches.iter().zip(&masks).map(|((m, r), mk)| RuleSpec { value: m.into(), mask: mk, rank: *r }).collect();
        let classifiers: Vec<Classifier> = [Lookup::Auto, Lookup::Exact, Lookup::Tuple, Lookup::TupleWithTries]
            .into_iter().map(|s| Classifier::build(&specs, s)).collect();
        for (s, d, p, noise) in keys {
            let mut k = FlowKey::default();
            if noise & 0x40 == 0 {
                k.set(Field::EthType, 0x0800);
            }
            k.set(Field::Ipv4Src, u128::from(IPS[s] ^ u32::from(noise & 3)));
            k.set(Field::Ipv4Dst, u128::from(IPS[d] ^ (u32::from(noise >> 2) & 0x30)));
            k.set(Field::IpProto, if noise & 0x80 != 0 { 17 } else { 6 });
            k.set(Field::TcpDst, TPORTS[p].into());
            let want = specs.iter().enumerate().filter(|(_, r)| {
                (0..packet::FLOW_KEY_WORDS).all(|i| k.words[i] & r.mask[i] == r.value[i])
            }).max_by_key(|(_, r)| r.rank).map(|(i, _)| i as u32);
            for c in &classifiers {
                prop_assert_eq!(c.lookup(&k.words), want, "{}", c.kind());
            }
        }
    }

    /// Tables of in_port-only and wildcard-all entries (ports up to 6, ties, a catch-all
    /// now and then): Auto builds the in_port array, which must answer as a linear scan
    /// does for every port, including ports no entry names and port 0.
    #[test]
    fn port_direct_equals_linear_scan(
        rules in proptest::collection::vec((0u16..20, proptest::option::of(0u32..6)), 1..40),
    ) {
        let matches: Vec<(Match, u64)> = rules.iter().enumerate().map(|(i, &(prio, port))| {
            let f: Vec<MatchField> = port.iter().map(|&p| MatchField { field: Field::InPort, value: p.into(), mask: None }).collect();
            (Match::from_fields(&f), pipeline::flow::rank(prio, i as u64 + 1))
        }).collect();
        let masks: Vec<pipeline::flow::Words> = matches.iter().map(|(m, _)| m.mask_words()).collect();
        let specs: Vec<RuleSpec<'_>> = matches.iter().zip(&masks).map(|((m, r), mk)| RuleSpec { value: m.into(), mask: mk, rank: *r }).collect();
        let c = Classifier::build(&specs, Lookup::Auto);
        if rules.iter().any(|r| r.1.is_some()) {
            prop_assert_eq!(c.kind(), "port");
        }
        for port in 0..10u32 {
            let mut k = FlowKey::default();
            k.set(Field::InPort, port.into());
            k.set(Field::InPhyPort, port.into());
            let want = specs.iter().enumerate().filter(|(_, r)| {
                (0..16).all(|i| k.words[i] & r.mask[i] == r.value[i])
            }).max_by_key(|(_, r)| r.rank).map(|(i, _)| i as u32);
            prop_assert_eq!(c.lookup(&k.words), want, "in_port {}", port);
        }
    }
}
