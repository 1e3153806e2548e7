//! `Pipeline::prefetch_lookups` (the worker's prefetch pass, table by table over a burst)
//! hands out exactly the addresses `Pipeline::prefetch_lookup` gives key by key, table
//! 0's for every key before table 1's, for big tables of each prefetched form: the
//! one-line form (B10k's in_port + dl_src and dl_dst tables), a one-mask subtable
//! (`exact`) and tuple-space search over several big subtables; and nothing for a version
//! whose tables are small.

use std::time::Duration;

use packet::{Field, FlowKey};
use pipeline::lookup::Classifier;
use pipeline::{
    Action, FlowModReq, FlowTables, Instructions, Match, Pipeline, PipelineConfig, PortInfo,
};

const N: u64 = 10_000;

fn mac(i: u64) -> u128 {
    u128::from(0x0200_0000_0000 | i)
}

fn tables() -> FlowTables {
    let mut ft = FlowTables::new(PipelineConfig {
        n_tables: 2,
        ..Default::default()
    });
    for p in 1..=2 {
        ft.set_port(PortInfo::new(p));
    }
    ft
}

fn add(ft: &mut FlowTables, t: u8, prio: u16, m: Match, i: Instructions) {
    ft.apply_flow_mod(FlowModReq::add(t, prio, m, i), Duration::ZERO)
        .unwrap();
}

fn goto1() -> Instructions {
    Instructions {
        goto: Some(1),
        ..Default::default()
    }
}

/// Keys that hit, keys that miss, and keys of other ports, as a burst.
fn keys() -> Vec<FlowKey> {
    (0..32u64)
        .map(|i| {
            let mut k = FlowKey::default();
            let n = i * 997 % (N + 500);
            k.set(Field::InPort, u128::from(1 + (i % 5 == 4) as u32));
            k.set(Field::EthSrc, mac(n));
            k.set(Field::EthDst, mac((n + 1) % N));
            k.set(Field::EthType, 0x0800);
            k.set(Field::Ipv4Src, u128::from(0x0a00_0000 + n as u32));
            k.set(Field::Ipv4Dst, u128::from(0x0a00_0001 + n as u32));
            k
        })
        .collect()
}

fn kinds(pl: &Pipeline) -> Vec<&'static str> {
    pl.tables
        .iter()
        .flat_map(|t| t.levels.iter())
        .map(|l| match &l.classifier {
            Classifier::Empty(_) => "empty",
            Classifier::Port(_) => "port",
            Classifier::Linear(_) => "linear",
            Classifier::Exact(_) => "exact",
            Classifier::Tuple(_) => "tuple",
            Classifier::Inline(_) => "inline",
        })
        .collect()
}

/// The burst pass against the key-by-key one: the same addresses, and with the tables'
/// order kept (every address of the first prefetched table before the next's).
fn check(pl: &Pipeline, want_per_key: usize) {
    let keys = keys();
    let mut per_key: Vec<Vec<usize>> = Vec::new();
    for k in &keys {
        let mut v = Vec::new();
        pl.prefetch_lookup(k, |p| v.push(p as usize));
        assert_eq!(v.len(), want_per_key, "addresses per key ({:?})", kinds(pl));
        per_key.push(v);
    }
    let mut burst = Vec::new();
    pl.prefetch_lookups(&keys, |p| burst.push(p as usize));
    // Per key the walk's order is table by table, subtable by subtable; the burst's is
    // the same order with the keys inside: address j of key i is burst[j * len + i].
    let mut expect = Vec::new();
    for j in 0..want_per_key {
        for v in &per_key {
            expect.push(v[j]);
        }
    }
    assert_eq!(burst, expect, "{:?}", kinds(pl));
    let mut none = 0;
    pl.prefetch_lookups(&[], |_| none += 1);
    assert_eq!(none, 0);
}

#[test]
fn burst_prefetch_hands_out_the_per_key_addresses() {
    // B10k: both tables in the one-line form, 2 MiB of rows each.
    let mut ft = tables();
    for i in 0..N {
        let cls = Match::exact(&[(Field::InPort, 1), (Field::EthSrc, mac(i))]);
        add(&mut ft, 0, 100, cls, goto1());
        let sw = Match::exact(&[(Field::EthDst, mac(i))]);
        add(
            &mut ft,
            1,
            100,
            sw,
            Instructions::apply(vec![Action::output(2)]),
        );
    }
    ft.publish();
    let pl = ft.current();
    assert_eq!(kinds(&pl), ["inline", "inline"]);
    assert!(pl.prefetches);
    check(&pl, 2);

    // One mask of 4 words (not the one-line form: more than two words) in table 0, and
    // tuple-space search over two big subtables in table 1.
    let mut ft = tables();
    for i in 0..N {
        let m = Match::exact(&[
            (Field::InPort, 1),
            (Field::EthSrc, mac(i)),
            (Field::EthType, 0x0800),
            (Field::Ipv4Src, u128::from(0x0a00_0000 + i as u32)),
        ]);
        add(&mut ft, 0, 100, m, goto1());
        let dst = Match::exact(&[
            (Field::EthType, 0x0800),
            (Field::Ipv4Dst, u128::from(0x0a00_0001 + i as u32)),
        ]);
        add(
            &mut ft,
            1,
            200,
            dst,
            Instructions::apply(vec![Action::output(2)]),
        );
        let src = Match::exact(&[
            (Field::EthType, 0x0800),
            (Field::Ipv4Src, u128::from(0x0a00_0000 + i as u32)),
        ]);
        add(
            &mut ft,
            1,
            100,
            src,
            Instructions::apply(vec![Action::output(2)]),
        );
    }
    ft.publish();
    ft.compact();
    let pl = ft.current();
    assert_eq!(kinds(&pl), ["exact", "tuple"]);
    assert!(pl.prefetches);
    check(&pl, 3);

    // Small tables: nothing to prefetch, per key or per burst.
    let mut ft = tables();
    for i in 0..100 {
        let sw = Match::exact(&[(Field::EthDst, mac(i))]);
        add(
            &mut ft,
            0,
            100,
            sw,
            Instructions::apply(vec![Action::output(2)]),
        );
    }
    ft.publish();
    let pl = ft.current();
    assert!(!pl.prefetches);
    check(&pl, 0);
}
