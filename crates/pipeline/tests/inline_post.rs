//! The one-line form with entries ranked below its main rows (`POST_MAX` in
//! `pipeline::lookup::inline`): C10k's shape (prefixes on ipv4_src above exact ipv4_dst
//! rows, a 10/8 prefix and a table-miss entry below them) and random variants of it
//! (entries below the rows on other masks, some below the table-miss entry, priority
//! ties, deletes that take the table in and out of the form), against the reference: every
//! packet's hits, outputs, packet-ins and bytes, and at the end every entry's packet count.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{frame, run_compiled, run_reference, run_trace, PktSpec, L3};
use packet::Field;
use pipeline::{
    Action, FlowModCommand, FlowModReq, FlowTables, Instructions, Match, MatchField,
    PipelineConfig, PortInfo,
};
use proptest::prelude::*;

fn switch() -> FlowTables {
    let mut ft = FlowTables::new(PipelineConfig::default());
    for p in 1..=3 {
        ft.set_port(PortInfo::new(p));
    }
    ft
}

fn prefix(v: u32, plen: u32) -> Match {
    let mask = u32::MAX << (32 - plen);
    Match::from_fields(&[
        MatchField {
            field: Field::EthType,
            value: 0x0800,
            mask: None,
        },
        MatchField {
            field: Field::Ipv4Src,
            value: u128::from(v & mask),
            mask: Some(u128::from(mask)),
        },
    ])
}

fn dst(v: u32) -> Match {
    Match::exact(&[(Field::EthType, 0x0800), (Field::Ipv4Dst, v.into())])
}

fn add(ft: &mut FlowTables, priority: u16, m: Match, out: Option<u32>) {
    let req = FlowModReq::add(
        0,
        priority,
        m,
        Instructions::apply(out.map(Action::output).into_iter().collect()),
    );
    ft.apply_flow_mod(req, Duration::ZERO).unwrap();
}

fn packet(src: u32, dst: u32) -> Vec<u8> {
    frame(&PktSpec {
        dst: 0x0200_0000_0002,
        src: 0x0200_0000_0001,
        vlan: None,
        l3: L3::Ipv4 {
            src,
            dst,
            proto: 17,
            ttl: 64,
            sport: 1000,
            dport: 53,
        },
    })
}

/// C10k's table, small: it takes the form, and every kind of packet (a prefix above the
/// rows, a row, the 10/8 prefix below them, the table-miss entry) answers as the
/// reference does, counted per entry.
#[test]
fn c10k_shape_is_inline_and_equal_reference() {
    let mut ft = switch();
    add(&mut ft, 40000, prefix(0xac10_0000, 12), None);
    add(&mut ft, 39000, prefix(0xc0a8_0000, 16), None);
    add(&mut ft, 38000, prefix(0x0a00_0400, 22), Some(2));
    add(&mut ft, 37000, prefix(0x0a00_2000, 20), Some(2));
    for i in 0..64u32 {
        add(
            &mut ft,
            100 + i as u16,
            dst(0x0a00_0001 + i),
            Some(1 + i % 3),
        );
    }
    add(&mut ft, 10, prefix(0x0a00_0000, 8), Some(3));
    add(&mut ft, 0, Match::any(), None);
    ft.publish();
    assert_eq!(ft.current().tables[0].kind(), "inline");
    let srcs = [
        0xac10_0001,
        0xc0a8_0101,
        0x0a00_0405,
        0x0a00_2101,
        0x0a01_0001,
        0x0b00_0001,
    ];
    let dsts = [
        0x0a00_0001,
        0x0a00_0020,
        0x0a00_0040,
        0x0a00_0041,
        0x0b00_0001,
    ];
    for &s in &srcs {
        for &d in &dsts {
            let f = packet(s, d);
            let want = run_reference(&ft, &f, 1);
            assert_eq!(run_compiled(&ft, &f, 1), want, "src {s:#x} dst {d:#x}");
            assert_eq!(run_trace(&ft, &f, 1), want, "trace: src {s:#x} dst {d:#x}");
        }
    }
}

#[derive(Clone, Debug)]
enum Kind {
    /// A main row: an exact destination.
    Row(u32),
    /// A prefix on the source (above, between or below the rows, by its priority).
    Src(u32, u32),
    /// A wildcard entry.
    Any,
}

#[derive(Clone, Debug)]
enum Step {
    Add(Kind, u16, Option<u32>),
    Delete(usize),
    Publish,
}

fn arb_step() -> impl Strategy<Value = Step> {
    let kind = prop_oneof![
        6 => (0u32..16).prop_map(Kind::Row),
        3 => (0usize..4, prop_oneof![Just(8u32), Just(16), Just(24), Just(32)])
            .prop_map(|(i, plen)| Kind::Src([0x0a00_0001, 0x0a00_0102, 0x0a01_0001, 0xc0a8_0001][i], plen)),
        1 => Just(Kind::Any),
    ];
    // Rows' priorities mostly at 100-103; others anywhere (above, in the band, below,
    // at 0, under the table-miss entry).
    let priority =
        prop_oneof![4 => 100u16..104, 2 => Just(1000u16), 2 => 1u16..20, 1 => Just(0u16)];
    prop_oneof![
        8 => (kind, priority, proptest::option::of(1u32..4)).prop_map(|(k, p, o)| Step::Add(k, p, o)),
        1 => (0usize..64).prop_map(Step::Delete),
        2 => Just(Step::Publish),
    ]
}

impl Kind {
    fn match_(&self) -> Match {
        match *self {
            Kind::Row(i) => dst(0x0a00_0001 + i),
            Kind::Src(v, plen) => prefix(v, plen),
            Kind::Any => Match::any(),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Starts from eight rows (the form's minimum) and a table-miss entry, then random
    /// adds and deletes; after each publish every packet answers as the reference does.
    #[test]
    fn entries_below_rows_equal_reference(
        steps in proptest::collection::vec(arb_step(), 1..60),
        packets in proptest::collection::vec((0usize..5, 0u32..18), 1..16),
    ) {
        let now = Duration::ZERO;
        let mut ft = switch();
        for i in 0..8u32 {
            add(&mut ft, 100, dst(0x0a00_0001 + i), Some(1));
        }
        add(&mut ft, 0, Match::any(), None);
        let mut added: Vec<(Match, u16)> = Vec::new();
        let mut hits: HashMap<u64, u64> = HashMap::new();
        let srcs = [0x0a00_0001u32, 0x0a00_0102, 0x0a01_0001, 0xc0a8_0001, 0x0b00_0001];
        for step in steps.iter().chain([Step::Publish].iter()) {
            match step {
                Step::Add(k, p, o) => {
                    let m = k.match_();
                    let uid = |ft: &FlowTables| ft.entries(0).find(|e| e.priority == *p && e.match_ == m).map(|e| e.uid);
                    let old = uid(&ft);
                    add(&mut ft, *p, m.clone(), *o);
                    // An add over an equal entry keeps its counts under the new uid.
                    if let Some(old) = old {
                        let n = hits.remove(&old).unwrap_or(0);
                        hits.insert(uid(&ft).unwrap(), n);
                    }
                    added.push((m, *p));
                }
                Step::Delete(n) if !added.is_empty() => {
                    let (m, p) = added.remove(n % added.len());
                    let mut req = FlowModReq::delete(0, m);
                    req.command = FlowModCommand::DeleteStrict;
                    req.priority = p;
                    ft.apply_flow_mod(req, now).unwrap();
                }
                Step::Delete(_) => {}
                Step::Publish => {
                    ft.publish();
                    for &(s, d) in &packets {
                        let f = packet(srcs[s], 0x0a00_0001 + d);
                        let want = run_reference(&ft, &f, 1);
                        let got = run_compiled(&ft, &f, 1);
                        prop_assert_eq!(&got, &want, "src {:#x} dst {} kind {:?}", srcs[s], d, ft.current().tables[0].kind());
                        for &(_, uid) in &got.hits {
                            *hits.entry(uid).or_default() += 1;
                        }
                    }
                }
            }
        }
        let live: Vec<u64> = ft.entries(0).map(|e| e.uid).collect();
        for uid in live {
            let (p, _) = ft.entry_counts(0, uid).unwrap();
            prop_assert_eq!(p, hits.get(&uid).copied().unwrap_or(0), "packets of entry {}", uid);
        }
    }
}
