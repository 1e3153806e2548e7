//! ns per packet through `Pipeline::process` (lookup, counters, actions, a no-op sink) for
//! tables shaped like /work/shared/bench/flows: A (one rule), B (classifier by
//! in_port+dl_src, then switch by dl_dst, plus the metadata DNAT rule) and C (distinct
//! priorities on exact nw_dst plus nw_src prefixes), at 1, 1k and 100k instances. Each
//! iteration runs a batch of distinct flows, as the pcap generator makes them.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use packet::{extract, Field, FlowKey, VecBuf};
use pipeline::{
    Action, Emit, FlowModReq, FlowTables, Instructions, Match, MatchField, PipelineConfig,
    PortInfo, Sink,
};

struct Count(u64);

impl Sink<VecBuf> for Count {
    #[inline]
    fn output(&mut self, port: u32, _q: Option<u32>, _pkt: &VecBuf, _e: Emit) {
        self.0 += u64::from(port);
    }
    fn clone_packet(&mut self, pkt: &VecBuf) -> Option<VecBuf> {
        Some(pkt.clone())
    }
}

fn mac(i: u64) -> u64 {
    0x0200_0000_0000 | (i & 0xff_ffff)
}

fn ip(i: u64) -> u32 {
    0x0a00_0000 + i as u32 + 1
}

fn frame(src: u64, dst: u64, sip: u32, dip: u32, sport: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst.to_be_bytes()[2..]);
    f.extend_from_slice(&src.to_be_bytes()[2..]);
    f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&sip.to_be_bytes());
    f.extend_from_slice(&dip.to_be_bytes());
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&80u16.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0x20, 0, 0, 0, 0, 0]);
    f.resize(60, 0);
    f
}

fn tables(n_tables: u8) -> FlowTables {
    let mut ft = FlowTables::new(PipelineConfig {
        n_tables,
        ..Default::default()
    });
    for p in 1..=3 {
        ft.set_port(PortInfo::new(p));
    }
    ft
}

fn add(ft: &mut FlowTables, t: u8, prio: u16, m: Match, i: Instructions) {
    ft.apply_flow_mod(FlowModReq::add(t, prio, m, i), Duration::ZERO)
        .unwrap();
}

fn shape_a() -> FlowTables {
    let mut ft = tables(1);
    add(
        &mut ft,
        0,
        100,
        Match::exact(&[(Field::InPort, 1)]),
        Instructions::apply(vec![Action::output(2)]),
    );
    ft.publish();
    ft
}

fn shape_b(n: u64) -> FlowTables {
    shape_b_publishing(n, false)
}

/// Shape B; with `each`, published after every flow-mod, as a barrier after each
/// flow-mod of `ovs-ofctl add-flows` does.
fn shape_b_publishing(n: u64, each: bool) -> FlowTables {
    let mut ft = tables(2);
    let dnat = Match::exact(&[
        (Field::EthType, 0x0800),
        (Field::IpProto, 6),
        (Field::Ipv4Dst, 0xa9fe_a9fe),
        (Field::TcpDst, 80),
    ]);
    add(
        &mut ft,
        0,
        1000,
        dnat,
        Instructions::apply(vec![
            Action::SetField {
                field: Field::EthDst,
                value: 0x0200_00fe_0001,
            },
            Action::SetField {
                field: Field::Ipv4Dst,
                value: 0x0afe_0001,
            },
            Action::SetField {
                field: Field::TcpDst,
                value: 8775,
            },
            Action::output(2),
        ]),
    );
    for i in 0..n {
        let cls = Match::exact(&[(Field::InPort, 1), (Field::EthSrc, mac(i).into())]);
        add(
            &mut ft,
            0,
            100,
            cls,
            Instructions {
                goto: Some(1),
                ..Default::default()
            },
        );
        if each {
            ft.publish();
        }
        let sw = Match::exact(&[(Field::EthDst, mac(i).into())]);
        add(
            &mut ft,
            1,
            100,
            sw,
            Instructions::apply(vec![Action::output(2)]),
        );
        if each {
            ft.publish();
        }
    }
    add(&mut ft, 0, 0, Match::any(), Instructions::default());
    add(&mut ft, 1, 0, Match::any(), Instructions::default());
    ft.publish();
    ft
}

fn shape_c(n: u64) -> FlowTables {
    let mut ft = tables(1);
    for i in 0..n {
        let m = Match::exact(&[(Field::EthType, 0x0800), (Field::Ipv4Dst, ip(i).into())]);
        add(
            &mut ft,
            0,
            (100 + i).min(65000) as u16,
            m,
            Instructions::apply(vec![Action::output(2)]),
        );
    }
    let prefixes: [(u32, u32, u16, bool); 5] = [
        (0xac10_0000, 12, 40000, false),
        (0xc0a8_0000, 16, 39000, false),
        (0x0a00_0400, 22, 38000, true),
        (0x0a00_2000, 20, 37000, true),
        (0x0a00_0000, 8, 10, true),
    ];
    for (v, plen, prio, out) in prefixes {
        let mask = u128::from(u32::MAX << (32 - plen));
        let m = Match::from_fields(&[
            MatchField {
                field: Field::EthType,
                value: 0x0800,
                mask: None,
            },
            MatchField {
                field: Field::Ipv4Src,
                value: v.into(),
                mask: Some(mask),
            },
        ]);
        let acts = if out { vec![Action::output(2)] } else { vec![] };
        add(&mut ft, 0, prio, m, Instructions::apply(acts));
    }
    add(&mut ft, 0, 0, Match::any(), Instructions::default());
    ft.publish();
    ft
}

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
            del.command = openflow::messages::FlowModCommand::DeleteStrict;
            del.priority = 100;
            big.apply_flow_mod(del, Duration::ZERO).unwrap();
            black_box(big.publish())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
