//! Conjunctive matches (`conjunction(id,k/n)`, `conj_id`) in the compiled tables:
//! - against the expanded cross product: random conjunctions (2-3 dimensions, a few clause
//!   entries each, over addresses, prefixes, masked ports and in_port) beside random
//!   ordinary entries, with churn (clause entries added and deleted between publishes,
//!   compactions, so clauses of one conjunction sit in several levels), answer every packet
//!   as a table holding, instead of the clauses, one entry per combination of one clause
//!   per dimension (their matches intersected);
//! - against Open vSwitch's algorithm written out literally (`common::ref_lookup`) where
//!   the cross product says nothing: priority ties between clauses and ordinary entries,
//!   `conj_id` entries with more fields or below the ordinary match, conjunctions sharing
//!   clauses, under every classifier strategy, traces included.

mod common;

use std::time::Duration;

use common::{frame, run_compiled, run_reference, run_trace, PktSpec, L3};
use packet::Field;
use pipeline::{
    Action, FlowModCommand, FlowModReq, FlowTables, Instructions, Match, MatchField,
    PipelineConfig, PortInfo, Strategy as Lookup,
};
use proptest::prelude::*;

const IPS: [u32; 4] = [0x0a00_0001, 0x0a00_0002, 0x0a00_0101, 0x0a01_0001];
const PLENS: [u32; 3] = [16, 24, 32];
const TPORTS: [u16; 4] = [22, 80, 443, 8080];
const PORT_MASKS: [u16; 3] = [0xffff, 0xfff0, 0xff00];

fn prefix(plen: u32) -> u128 {
    u128::from(u32::MAX << (32 - plen))
}

/// A random match over the fields conjunctions are made of (always IPv4 TCP, so any two
/// intersect unless their values conflict).
fn arb_fields() -> impl Strategy<Value = Vec<MatchField>> {
    (
        proptest::option::of((0usize..4, 0usize..3)),
        proptest::option::of((0usize..4, 0usize..3)),
        proptest::option::of((0usize..4, 0usize..3)),
        proptest::option::of(1u32..=3),
    )
        .prop_map(|(src, dst, dport, in_port)| {
            let mut f = vec![
                MatchField {
                    field: Field::EthType,
                    value: 0x0800,
                    mask: None,
                },
                MatchField {
                    field: Field::IpProto,
                    value: 6,
                    mask: None,
                },
            ];
            if let Some((i, l)) = src {
                let m = prefix(PLENS[l]);
                f.push(MatchField {
                    field: Field::Ipv4Src,
                    value: u128::from(IPS[i]) & m,
                    mask: Some(m),
                });
            }
            if let Some((i, l)) = dst {
                let m = prefix(PLENS[l]);
                f.push(MatchField {
                    field: Field::Ipv4Dst,
                    value: u128::from(IPS[i]) & m,
                    mask: Some(m),
                });
            }
            if let Some((i, m)) = dport {
                let m = PORT_MASKS[m];
                f.push(MatchField {
                    field: Field::TcpDst,
                    value: u128::from(TPORTS[i] & m),
                    mask: Some(u128::from(m)),
                });
            }
            if let Some(p) = in_port {
                f.push(MatchField {
                    field: Field::InPort,
                    value: p.into(),
                    mask: None,
                });
            }
            f
        })
}

fn arb_packet() -> impl Strategy<Value = (PktSpec, u32)> {
    (0usize..4, 0usize..4, 0usize..4, 0u16..3, 1u32..=3).prop_map(|(s, d, p, noise, in_port)| {
        (
            PktSpec {
                dst: 0x0200_0000_0001,
                src: 0x0200_0000_0002,
                vlan: None,
                l3: L3::Ipv4 {
                    src: IPS[s],
                    dst: IPS[d],
                    proto: 6,
                    ttl: 64,
                    sport: 1000,
                    dport: TPORTS[p] + noise,
                },
            },
            in_port,
        )
    })
}

/// The intersection of two matches' fields, `None` when no packet can match both.
fn intersect(a: &[MatchField], b: &[MatchField]) -> Option<Vec<MatchField>> {
    let mut out: Vec<MatchField> = a.to_vec();
    for f in b {
        match out.iter_mut().find(|g| g.field == f.field) {
            None => out.push(*f),
            Some(g) => {
                let full = f.field.value_mask();
                let (ma, mb) = (g.mask.unwrap_or(full), f.mask.unwrap_or(full));
                if (g.value ^ f.value) & ma & mb != 0 {
                    return None;
                }
                let m = ma | mb;
                g.value = (g.value & ma) | (f.value & mb);
                g.mask = (m != full).then_some(m);
            }
        }
    }
    Some(out)
}

/// One conjunction: its id, priority (odd, so never tied with the even-priority ordinary
/// entries), and the clause matches of each dimension.
#[derive(Clone, Debug)]
struct Conj {
    id: u32,
    priority: u16,
    dims: Vec<Vec<Vec<MatchField>>>,
}

fn arb_conj() -> impl Strategy<Value = Conj> {
    (
        1u32..1000,
        0u16..50,
        proptest::collection::vec(proptest::collection::vec(arb_fields(), 1..4), 2..4),
    )
        .prop_map(|(id, p, dims)| Conj {
            id,
            priority: 2 * p + 1,
            dims,
        })
}

/// One clause entry: its match, and the (dimension, clause) pairs of a [`Conj`] it serves.
type ClauseEntry = (Vec<MatchField>, Vec<(usize, usize)>);

/// The conjunction actions of a clause entry serving dimensions `members` of `c`.
fn clause_actions(c: &Conj, members: &[(usize, usize)]) -> Vec<Action> {
    let n = c.dims.len() as u8;
    members
        .iter()
        .map(|&(d, _)| Action::Conjunction {
            id: c.id,
            clause: d as u8,
            n_clauses: n,
        })
        .collect()
}

fn out_port(id: u32) -> u32 {
    1000 + id
}

fn tables(strategy: Lookup) -> FlowTables {
    let mut ft = FlowTables::new(PipelineConfig {
        n_tables: 1,
        strategy,
        ..Default::default()
    });
    for p in 1..=3 {
        ft.set_port(PortInfo::new(p));
    }
    ft
}

fn add(ft: &mut FlowTables, priority: u16, fields: &[MatchField], actions: Vec<Action>) {
    ft.apply_flow_mod(
        FlowModReq::add(
            0,
            priority,
            Match::from_fields(fields),
            Instructions::apply(actions),
        ),
        Duration::ZERO,
    )
    .unwrap();
}

fn delete_strict(ft: &mut FlowTables, priority: u16, fields: &[MatchField]) {
    let mut req = FlowModReq::delete(0, Match::from_fields(fields));
    req.command = FlowModCommand::DeleteStrict;
    req.priority = priority;
    ft.apply_flow_mod(req, Duration::ZERO).unwrap();
}

fn conj_id_match(id: u32) -> Vec<MatchField> {
    vec![MatchField {
        field: Field::ConjId,
        value: id.into(),
        mask: None,
    }]
}

/// The expanded table: the ordinary entries, and per conjunction every combination of one
/// live clause per dimension, intersected, acting as the conjunction's `conj_id` entry.
fn expanded(
    ordinary: &[(u16, Vec<MatchField>)],
    conjs: &[Conj],
    live: &[Vec<Vec<bool>>],
) -> FlowTables {
    let mut ft = tables(Lookup::Linear);
    for (i, (p, f)) in ordinary.iter().enumerate() {
        add(&mut ft, *p, f, vec![Action::output(2000 + i as u32)]);
    }
    for (c, lv) in conjs.iter().zip(live) {
        let mut combos: Vec<Vec<MatchField>> = vec![Vec::new()];
        for (d, dim) in c.dims.iter().enumerate() {
            let mut next = Vec::new();
            for acc in &combos {
                for (j, clause) in dim.iter().enumerate() {
                    if !lv[d][j] {
                        continue;
                    }
                    if let Some(m) = intersect(acc, clause) {
                        next.push(m);
                    }
                }
            }
            combos = next;
        }
        for m in combos {
            add(
                &mut ft,
                c.priority,
                &m,
                vec![Action::output(out_port(c.id))],
            );
        }
    }
    ft.publish();
    ft
}

/// The outputs only: which entries were hit differs between the two forms.
fn outputs(o: common::Outcome) -> Vec<u32> {
    o.outputs.iter().map(|x| x.0).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn conjunctions_equal_expanded_cross_product(
        conjs in proptest::collection::vec(arb_conj(), 1..4),
        ordinary in proptest::collection::vec((0u16..50, arb_fields()), 0..8),
        churn in proptest::collection::vec((0usize..4, 0usize..4, 0usize..4, 0u8..4), 0..24),
        packets in proptest::collection::vec(arb_packet(), 1..16),
        strategy in prop_oneof![Just(Lookup::Auto), Just(Lookup::Linear), Just(Lookup::Tuple), Just(Lookup::TupleWithTries)],
    ) {
        // Distinct ids and priorities: overlapping conjunctions at one priority are
        // undefined in Open vSwitch and have no cross product.
        let mut conjs = conjs;
        for (i, c) in conjs.iter_mut().enumerate() {
            c.id = c.id * 4 + i as u32;
            c.priority = c.priority * 4 + 2 * i as u16 + 1;
        }
        let ordinary: Vec<(u16, Vec<MatchField>)> = ordinary.into_iter().map(|(p, f)| (2 * p, f)).collect();
        let mut ft = tables(strategy);
        for (i, (p, f)) in ordinary.iter().enumerate() {
            add(&mut ft, *p, f, vec![Action::output(2000 + i as u32)]);
        }
        // A match serving several dimensions of one conjunction is one entry with
        // several conjunction actions (an ADD of the same match and priority replaces).
        let mut groups: Vec<Vec<ClauseEntry>> = Vec::new();
        let mut live: Vec<Vec<Vec<bool>>> = Vec::new();
        for c in &conjs {
            add(&mut ft, c.priority, &conj_id_match(c.id), vec![Action::output(out_port(c.id))]);
            let mut g: Vec<ClauseEntry> = Vec::new();
            for (d, dim) in c.dims.iter().enumerate() {
                for (j, f) in dim.iter().enumerate() {
                    match g.iter_mut().find(|x| Match::from_fields(&x.0) == Match::from_fields(f)) {
                        Some(x) => x.1.push((d, j)),
                        None => g.push((f.clone(), vec![(d, j)])),
                    }
                }
            }
            for (f, members) in &g {
                add(&mut ft, c.priority, f, clause_actions(c, members));
            }
            groups.push(g);
            live.push(c.dims.iter().map(|d| vec![true; d.len()]).collect());
        }
        ft.publish();
        let check = |ft: &FlowTables, live: &[Vec<Vec<bool>>], when: &str| -> Result<(), TestCaseError> {
            let want_ft = expanded(&ordinary, &conjs, live);
            for (spec, in_port) in &packets {
                let f = frame(spec);
                let got = run_compiled(ft, &f, *in_port);
                let want = run_compiled(&want_ft, &f, *in_port);
                prop_assert_eq!(outputs(got.clone()), outputs(want), "{} packet {:?} in_port {}", when, spec, in_port);
                prop_assert_eq!(&run_reference(ft, &f, *in_port), &got, "reference, {} packet {:?}", when, spec);
                prop_assert_eq!(&run_trace(ft, &f, *in_port), &got, "trace, {} packet {:?}", when, spec);
            }
            Ok(())
        };
        check(&ft, &live, "initial")?;
        // Churn: flip one clause (delete it, or add it back), publish (new clauses go into
        // a new level), now and then compact.
        for (k, (ci, gi, _, op)) in churn.iter().enumerate() {
            let ci = ci % conjs.len();
            let c = &conjs[ci];
            let (f, members) = &groups[ci][gi % groups[ci].len()];
            let (d0, j0) = members[0];
            if live[ci][d0][j0] {
                delete_strict(&mut ft, c.priority, f);
            } else {
                add(&mut ft, c.priority, f, clause_actions(c, members));
            }
            let now = !live[ci][d0][j0];
            for &(d, j) in members {
                live[ci][d][j] = now;
            }
            if *op == 0 {
                ft.compact();
            } else {
                ft.publish();
            }
            check(&ft, &live, &format!("after churn step {k}"))?;
        }
    }

    /// Cases the cross product cannot express, against the literal algorithm.
    #[test]
    fn conjunctions_equal_open_vswitch_algorithm(
        clauses in proptest::collection::vec((0u16..4, arb_fields(), proptest::collection::vec((0u32..3, 0u8..3, 2u8..4), 1..3)), 0..24),
        conj_flows in proptest::collection::vec((0u16..4, 0u32..3, proptest::option::of(arb_fields())), 0..6),
        ordinary in proptest::collection::vec((0u16..4, arb_fields()), 0..6),
        packets in proptest::collection::vec(arb_packet(), 1..16),
    ) {
        for strategy in [Lookup::Auto, Lookup::Linear, Lookup::Exact, Lookup::Tuple, Lookup::TupleWithTries] {
            let mut ft = tables(strategy);
            for (i, (p, f)) in ordinary.iter().enumerate() {
                add(&mut ft, *p, f, vec![Action::output(2000 + i as u32)]);
            }
            for (i, (p, f, refs)) in clauses.iter().enumerate() {
                let acts = refs.iter().map(|&(id, k, n)| Action::Conjunction { id, clause: k % n, n_clauses: n }).collect();
                add(&mut ft, *p, f, acts);
                if i % 5 == 4 {
                    ft.publish();
                }
            }
            for (i, (p, id, extra)) in conj_flows.iter().enumerate() {
                let mut f = conj_id_match(*id);
                f.extend(extra.iter().flatten().copied());
                add(&mut ft, *p, &f, vec![Action::output(3000 + i as u32)]);
            }
            ft.publish();
            for (spec, in_port) in &packets {
                let f = frame(spec);
                let got = run_compiled(&ft, &f, *in_port);
                prop_assert_eq!(&run_reference(&ft, &f, *in_port), &got, "{:?} packet {:?} in_port {}", strategy, spec, in_port);
                prop_assert_eq!(&run_trace(&ft, &f, *in_port), &got, "trace {:?} packet {:?}", strategy, spec);
            }
        }
    }
}

/// The OpenStack firewall driver's pattern: remote addresses x destination ports, one
/// conjunction, the conj_id entry outputs; the clauses themselves never match as entries.
#[test]
fn address_set_times_port_set() {
    let mut ft = tables(Lookup::Auto);
    let ip = |a: u32| MatchField {
        field: Field::Ipv4Src,
        value: a.into(),
        mask: None,
    };
    let base = [
        MatchField {
            field: Field::EthType,
            value: 0x0800,
            mask: None,
        },
        MatchField {
            field: Field::IpProto,
            value: 6,
            mask: None,
        },
    ];
    for a in [IPS[0], IPS[1]] {
        let mut f = base.to_vec();
        f.push(ip(a));
        add(
            &mut ft,
            70,
            &f,
            vec![Action::Conjunction {
                id: 9,
                clause: 0,
                n_clauses: 2,
            }],
        );
    }
    for (p, m) in [(80u16, 0xffffu16), (8080, 0xfff0)] {
        let mut f = base.to_vec();
        f.push(MatchField {
            field: Field::TcpDst,
            value: p.into(),
            mask: Some(m.into()),
        });
        add(
            &mut ft,
            70,
            &f,
            vec![Action::Conjunction {
                id: 9,
                clause: 1,
                n_clauses: 2,
            }],
        );
    }
    add(&mut ft, 70, &conj_id_match(9), vec![Action::output(2)]);
    add(&mut ft, 0, &[], vec![Action::output(3)]);
    ft.publish();
    let pkt = |src: u32, dport: u16| {
        frame(&PktSpec {
            dst: 1,
            src: 2,
            vlan: None,
            l3: L3::Ipv4 {
                src,
                dst: IPS[3],
                proto: 6,
                ttl: 64,
                sport: 999,
                dport,
            },
        })
    };
    let out = |src, dport| outputs(run_compiled(&ft, &pkt(src, dport), 1));
    assert_eq!(out(IPS[0], 80), vec![2]);
    assert_eq!(out(IPS[1], 8085), vec![2]);
    assert_eq!(out(IPS[2], 80), vec![3], "address not in the set");
    assert_eq!(out(IPS[0], 443), vec![3], "port not in the set");
}
