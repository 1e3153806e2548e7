//! The one-line exact form (`pipeline::lookup::inline`) against the linear reference:
//! random tables of its shape (a classifier on in_port + eth_src writing metadata, a
//! switch on metadata + eth_dst or on eth_dst alone), with a few entries above them on
//! other fields, table-miss entries, duplicate matches at other priorities, values drawn
//! from small sets so that packets hit, miss and collide, and entries now and then that
//! break the shape (a wildcard entry between the rows, a third mask) so that versions
//! move between this form and the general classifiers. Adds, deletes, modifies,
//! publishes and compactions are interleaved; after each publish every packet's hits,
//! outputs, packet-ins and bytes must equal the reference's, and at the end every entry's
//! packet count must be the number of packets that hit it.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{frame, run_compiled, run_reference, PktSpec, L3};
use packet::Field;
use pipeline::ports::OFPP_CONTROLLER;
use pipeline::{
    Action, FlowModCommand, FlowModReq, FlowTables, Instructions, Match, MatchField,
    PipelineConfig, PortInfo,
};
use proptest::prelude::*;

const MACS: u64 = 24;
const PORTS: u32 = 3;

fn mac(i: u64) -> u64 {
    0x0200_0000_0000 | (i * 0x0101)
}

#[derive(Clone, Debug)]
enum Acts {
    Out(u32),
    Two(u32, u32),
    /// More outputs than a hit holds inline: run from the rule's instructions.
    Four,
    Controller,
    Drop,
}

impl Acts {
    fn actions(&self) -> Vec<Action> {
        match *self {
            Acts::Out(p) => vec![Action::output(p)],
            Acts::Two(a, b) => vec![Action::output(a), Action::output(b)],
            Acts::Four => (1..=4).map(Action::output).collect(),
            Acts::Controller => vec![Action::output(OFPP_CONTROLLER)],
            Acts::Drop => vec![],
        }
    }
}

#[derive(Clone, Debug)]
enum Kind {
    /// Table 0: in_port + eth_src, writes metadata = network, goto 1.
    Classifier { port: u32, src: u64, net: u64 },
    /// Table 1: metadata + eth_dst, or eth_dst alone.
    Switch { net: Option<u64>, dst: u64 },
    /// Above the rows: the metadata-service DNAT shape (eth_type, ip_proto, ipv4_dst,
    /// tcp_dst), in either table.
    Pre { table: u8, dport: u16 },
    /// A wildcard entry (a table-miss entry at priority 0, anything else at another).
    Any { table: u8 },
    /// A mask the form does not take (eth_type + ipv4_src).
    Other { table: u8, ip: u32 },
}

#[derive(Clone, Debug)]
struct Rule {
    kind: Kind,
    priority: u16,
    acts: Acts,
    cookie: u64,
}

fn arb_acts() -> impl Strategy<Value = Acts> {
    prop_oneof![
        6 => (1..=PORTS + 1).prop_map(Acts::Out),
        1 => (1..=PORTS + 1, 1..=PORTS + 1).prop_map(|(a, b)| Acts::Two(a, b)),
        1 => Just(Acts::Four),
        1 => Just(Acts::Controller),
        1 => Just(Acts::Drop),
    ]
}

fn arb_rule() -> impl Strategy<Value = Rule> {
    let kind = prop_oneof![
        10 => (1..=PORTS, 0..MACS, 0u64..3).prop_map(|(port, src, net)| Kind::Classifier { port, src, net }),
        10 => (proptest::option::of(0u64..3), 0..MACS).prop_map(|(net, dst)| Kind::Switch { net, dst }),
        1 => (0u8..2, prop_oneof![Just(80u16), Just(443)]).prop_map(|(table, dport)| Kind::Pre { table, dport }),
        1 => (0u8..2).prop_map(|table| Kind::Any { table }),
        1 => (0u8..2, 0u32..4).prop_map(|(table, ip)| Kind::Other { table, ip }),
    ];
    // Priorities mostly in the rows' band (ties and duplicates included); the others
    // above it, at 0, or in between.
    let priority = prop_oneof![
        8 => 100u16..104,
        2 => Just(1000u16),
        2 => Just(0u16),
        1 => 101u16..102,
    ];
    (kind, priority, arb_acts(), 0u64..4).prop_map(|(kind, priority, acts, cookie)| Rule {
        kind,
        priority,
        acts,
        cookie,
    })
}

impl Rule {
    fn table(&self) -> u8 {
        match self.kind {
            Kind::Classifier { .. } => 0,
            Kind::Switch { .. } => 1,
            Kind::Pre { table, .. } | Kind::Any { table } | Kind::Other { table, .. } => table,
        }
    }

    fn match_(&self) -> Match {
        match self.kind {
            Kind::Classifier { port, src, .. } => Match::exact(&[
                (Field::InPort, port.into()),
                (Field::EthSrc, mac(src).into()),
            ]),
            Kind::Switch { net: Some(n), dst } => Match::exact(&[
                (Field::Metadata, n.into()),
                (Field::EthDst, mac(dst).into()),
            ]),
            Kind::Switch { net: None, dst } => Match::exact(&[(Field::EthDst, mac(dst).into())]),
            Kind::Pre { dport, .. } => Match::exact(&[
                (Field::EthType, 0x0800),
                (Field::IpProto, 6),
                (Field::Ipv4Dst, 0xa9fe_a9fe),
                (Field::TcpDst, dport.into()),
            ]),
            Kind::Any { .. } => Match::any(),
            Kind::Other { ip, .. } => Match::from_fields(&[
                MatchField {
                    field: Field::EthType,
                    value: 0x0800,
                    mask: None,
                },
                MatchField {
                    field: Field::Ipv4Src,
                    value: u128::from(0x0a00_0000 + ip),
                    mask: None,
                },
            ]),
        }
    }

    fn req(&self) -> FlowModReq {
        let mut insts = Instructions::apply(self.acts.actions());
        match self.kind {
            Kind::Classifier { net, .. } => {
                insts.metadata = Some((net, u64::MAX));
                insts.goto = Some(1);
            }
            // Entries of table 0 other than the classifier's go on to table 1 now and then.
            Kind::Pre { table: 0, .. } | Kind::Any { table: 0 } | Kind::Other { table: 0, .. }
                if self.cookie & 1 == 0 =>
            {
                insts.goto = Some(1);
            }
            _ => {}
        }
        let mut req = FlowModReq::add(self.table(), self.priority, self.match_(), insts);
        req.cookie = self.cookie;
        req
    }
}

#[derive(Clone, Debug)]
enum Step {
    Add(Rule),
    DeleteStrict(usize),
    /// A modify of an added entry's actions (its level is rebuilt).
    Modify(usize, Acts),
    Publish,
    Compact,
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        10 => arb_rule().prop_map(Step::Add),
        3 => (0usize..256).prop_map(Step::DeleteStrict),
        2 => (0usize..256, arb_acts()).prop_map(|(n, a)| Step::Modify(n, a)),
        2 => Just(Step::Publish),
        1 => Just(Step::Compact),
    ]
}

fn arb_packet() -> impl Strategy<Value = (PktSpec, u32)> {
    (
        0..MACS + 2,
        0..MACS + 2,
        1..=PORTS + 1,
        prop_oneof![Just(0xa9fe_a9feu32), 0x0a00_0000u32..0x0a00_0005],
        prop_oneof![Just(80u16), Just(443), Just(22)],
    )
        .prop_map(|(src, dst, port, dip, dport)| {
            let spec = PktSpec {
                dst: mac(dst),
                src: mac(src),
                vlan: None,
                l3: L3::Ipv4 {
                    src: 0x0a00_0000 + (src as u32 % 5),
                    dst: dip,
                    proto: 6,
                    ttl: 64,
                    sport: 1000,
                    dport,
                },
            };
            (spec, port)
        })
}

fn switch() -> FlowTables {
    let mut ft = FlowTables::new(PipelineConfig {
        n_tables: 2,
        ..Default::default()
    });
    for p in 1..=PORTS + 1 {
        ft.set_port(PortInfo::new(p));
    }
    ft
}

/// A table in the form's shape: many rows, one entry above, a table-miss entry.
fn shaped(ft: &mut FlowTables) {
    let now = Duration::ZERO;
    for i in 0..MACS {
        let r = Rule {
            kind: Kind::Classifier {
                port: 1 + (i as u32 % PORTS),
                src: i,
                net: i % 3,
            },
            priority: 100,
            acts: Acts::Drop,
            cookie: i,
        };
        ft.apply_flow_mod(r.req(), now).unwrap();
        let s = Rule {
            kind: Kind::Switch {
                net: Some(i % 3),
                dst: i,
            },
            priority: 100,
            acts: Acts::Out(1 + (i as u32 % (PORTS + 1))),
            cookie: i,
        };
        ft.apply_flow_mod(s.req(), now).unwrap();
    }
    for t in 0..2 {
        let p = Rule {
            kind: Kind::Pre {
                table: t,
                dport: 80,
            },
            priority: 1000,
            acts: Acts::Out(2),
            cookie: 9,
        };
        ft.apply_flow_mod(p.req(), now).unwrap();
        let m = Rule {
            kind: Kind::Any { table: t },
            priority: 0,
            acts: Acts::Controller,
            cookie: 7,
        };
        ft.apply_flow_mod(m.req(), now).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn inline_tables_equal_reference(
        shaped_start in any::<bool>(),
        steps in proptest::collection::vec(arb_step(), 1..120),
        packets in proptest::collection::vec(arb_packet(), 1..16),
    ) {
        let now = Duration::ZERO;
        let mut ft = switch();
        if shaped_start {
            shaped(&mut ft);
            ft.compact();
            // The start is in the form: the test exercises it, not only the others.
            let kinds: Vec<&str> = ft.current().tables.iter().map(|t| t.kind()).collect();
            prop_assert_eq!(kinds, vec!["inline", "inline"]);
        }
        let mut added: Vec<Rule> = Vec::new();
        let mut hits: HashMap<u64, u64> = HashMap::new();
        let uid_of = |ft: &FlowTables, table: u8, priority: u16, m: &Match| {
            ft.entries(table).find(|e| e.priority == priority && e.match_ == *m).map(|e| e.uid)
        };
        // A shaped start is checked as it is before the first change.
        let start = if shaped_start { vec![Step::Compact] } else { vec![] };
        for step in start.iter().chain(steps.iter()).chain([Step::Publish, Step::Compact].iter()) {
            match step {
                Step::Add(r) => {
                    let old = uid_of(&ft, r.table(), r.priority, &r.match_());
                    ft.apply_flow_mod(r.req(), now).unwrap();
                    if let Some(old) = old {
                        let n = hits.remove(&old).unwrap_or(0);
                        hits.insert(uid_of(&ft, r.table(), r.priority, &r.match_()).unwrap(), n);
                    }
                    added.push(r.clone());
                }
                Step::DeleteStrict(n) if !added.is_empty() => {
                    let r = &added[added.len() - 1 - n % added.len()];
                    let mut req = FlowModReq::delete(r.table(), r.match_());
                    req.command = FlowModCommand::DeleteStrict;
                    req.priority = r.priority;
                    ft.apply_flow_mod(req, now).unwrap();
                }
                Step::Modify(n, acts) if !added.is_empty() => {
                    let r = &added[added.len() - 1 - n % added.len()];
                    let mut req = Rule { acts: acts.clone(), ..r.clone() }.req();
                    req.command = FlowModCommand::ModifyStrict;
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
                        let got = run_compiled(&ft, &f, *in_port);
                        prop_assert_eq!(&got, &want, "packet {:?} in_port {} after {:?}", spec, in_port, step);
                        for &(_, uid) in &got.hits {
                            *hits.entry(uid).or_default() += 1;
                        }
                    }
                }
            }
        }
        for t in 0..2 {
            let live: Vec<u64> = ft.entries(t).map(|e| e.uid).collect();
            for uid in live {
                let (p, _) = ft.entry_counts(t, uid).unwrap();
                prop_assert_eq!(p, hits.get(&uid).copied().unwrap_or(0), "packets of entry {} in table {}", uid, t);
            }
        }
    }
}

/// The bench's B1k shape compiles to the form in both tables, and every one of its
/// classifier entries, its DNAT entry and its misses answer as the reference does.
#[test]
fn b1k_shape_is_inline_and_equal_reference() {
    let mut ft = switch();
    shaped(&mut ft);
    ft.publish();
    ft.compact();
    let kinds: Vec<&str> = ft.current().tables.iter().map(|t| t.kind()).collect();
    assert_eq!(kinds, vec!["inline", "inline"]);
    for src in 0..MACS + 2 {
        for dst in 0..MACS + 2 {
            for port in 1..=PORTS + 1 {
                for dip in [0xa9fe_a9fe, 0x0a00_0001] {
                    let spec = PktSpec {
                        dst: mac(dst),
                        src: mac(src),
                        vlan: None,
                        l3: L3::Ipv4 {
                            src: 0x0a00_0001,
                            dst: dip,
                            proto: 6,
                            ttl: 64,
                            sport: 1000,
                            dport: 80,
                        },
                    };
                    let f = frame(&spec);
                    assert_eq!(
                        run_compiled(&ft, &f, port),
                        run_reference(&ft, &f, port),
                        "{spec:?} in_port {port}"
                    );
                }
            }
        }
    }
}
