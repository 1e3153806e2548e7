//! ns per packet through `Pipeline::process` (lookup, counters, actions, a no-op sink) for
//! tables shaped like /work/shared/bench/flows: A (one rule), B (classifier by
//! in_port+dl_src, then switch by dl_dst, plus the metadata DNAT rule) and C (distinct
//! priorities on exact nw_dst plus nw_src prefixes), at 1, 1k and 100k instances. Each
//! iteration runs a batch of distinct flows, as the pcap generator makes them.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use packet::{extract, Field, FlowKey, VecBuf};
use pipeline::{Action, FlowModReq, FlowTables, Instructions, Match};

use common::*;

type Packets = Vec<(VecBuf, FlowKey)>;

/// Flow k: source instance k mod m, destination the next one, source port 1024 + k / m.
fn packets(instances: u64, flows: u64) -> Packets {
    (0..flows)
        .map(|k| {
            let s = k % instances;
            let d = (s + 1) % instances;
            let f = frame(mac(s), mac(d), ip(s), ip(d), (1024 + k / instances) as u16);
            let key = extract(&f, 1);
            (VecBuf::new(&f), key)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("process");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20);
    let cases: Vec<(String, FlowTables, Packets)> = vec![
        ("A/1".into(), shape_a(), packets(1, 1)),
        ("B/1".into(), shape_b(1), packets(1, 1)),
        ("B/1k".into(), shape_b(1000), packets(1000, 1000)),
        ("B/100k".into(), shape_b(100_000), packets(100_000, 100_000)),
        ("C/1".into(), shape_c(1), packets(1, 1)),
        ("C/1k".into(), shape_c(1000), packets(1000, 1000)),
        ("C/100k".into(), shape_c(100_000), packets(100_000, 100_000)),
    ];
    for (name, ft, mut pkts) in cases {
        let pl = ft.current();
        let kinds: Vec<&str> = pl.tables.iter().map(|t| t.kind()).collect();
        eprintln!("{name}: tables {kinds:?}");
        let mut ctx = ft.worker_context(0);
        const BATCH: usize = 1024;
        g.throughput(Throughput::Elements(BATCH as u64));
        let mut next = 0usize;
        let n_pkts = pkts.len();
        g.bench_function(&name, |b| {
            b.iter_batched_ref(
                || (),
                |_| {
                    let mut sink = Count(0);
                    for _ in 0..BATCH {
                        let (pkt, key) = &mut pkts[next];
                        next = if next + 1 == n_pkts { 0 } else { next + 1 };
                        let mut k = *key;
                        black_box(pl.process(pkt, &mut k, &mut ctx, &mut sink));
                    }
                    black_box(sink.0)
                },
                BatchSize::SmallInput,
            )
        });
        // Lookup alone, table 0.
        let t0 = pl.tables[0].clone();
        g.bench_function(format!("{name}/lookup-t0"), |b| {
            b.iter(|| {
                let mut acc = 0u32;
                for _ in 0..BATCH {
                    let (_, key) = &pkts[next];
                    next = if next + 1 == pkts.len() { 0 } else { next + 1 };
                    acc = acc.wrapping_add(t0.lookup(&key.words).map_or(0, |(_, s)| s as u32));
                }
                black_box(acc)
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("compile");
    g.measurement_time(Duration::from_secs(2)).sample_size(10);
    g.bench_function("B 100k flow-mods + publish", |b| {
        b.iter(|| black_box(shape_b(50_000)))
    });
    // The O(change) claim: 100k flow-mods, each published on its own (levels are merged
    // as they come), then one compaction to a single level per table.
    g.bench_function("B 100k single-flow-mod publishes + compact", |b| {
        b.iter(|| {
            let mut ft = shape_b_publishing(50_000, true);
            ft.compact();
            black_box(ft)
        })
    });
    // One flow-mod and its publish on a compacted 100k-entry table: add, then delete.
    let mut big = shape_b(50_000);
    big.compact();
    let mut i = 0x80_0000u64;
    g.bench_function("B/100k 1 add + publish + 1 delete + publish", |b| {
        b.iter(|| {
            i += 1;
            let m = Match::exact(&[(Field::EthDst, mac(i).into())]);
            add(
                &mut big,
                1,
                100,
                m.clone(),
                Instructions::apply(vec![Action::output(2)]),
            );
            big.publish();
            let mut del = FlowModReq::delete(1, m);
            del.command = pipeline::FlowModCommand::DeleteStrict;
            del.priority = 100;
            big.apply_flow_mod(del, Duration::ZERO).unwrap();
            black_box(big.publish())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
