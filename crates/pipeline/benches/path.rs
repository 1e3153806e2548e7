//! The worker's per-packet path (flow key extraction, then the pipeline walk with its
//! counters and a no-op sink; for a burst that table 0's answer decides whole, as A's are,
//! neither: the burst's answer, its count and the outputs, as the worker sends such a
//! burst) for tables shaped like /work/shared/bench/flows: A (one rule),
//! B1k (classifier by in_port+dl_src then switch by dl_dst, 1k instances, 1k flows), B10k
//! (10k instances, 100k flows), C10k (10k exact nw_dst priorities plus nw_src prefixes,
//! 100k flows), N (a learning switch: NORMAL from table 0, 1k hosts learned, on two ports
//! sending to each other), ACL (random headers against a handful of ACL rules on different
//! fields and prefix lengths) and B1k-md (B1k with every 10th flow to the metadata
//! service, which the DNAT rule rewrites with 3 set-fields), and the connection-tracking
//! firewall of `perf/flows/CT.flows` (ct to table 1, commit new connections, forward
//! established ones) over 10k connections: CTc (one UDP datagram per connection, one way:
//! every packet `+new` and committed again), CTe (a datagram and its reply: `+est`) and CTr
//! (a SYN and its RST+ACK: every pass opens each connection anew; the tracker's count of
//! committed connections is printed to show it).
//! The tunnel scenarios (VXe, VXd) are in `benches/tunnel_path.rs`: a binary of their own,
//! so this one keeps a single instantiation of `Pipeline::process`, as the worker has (a
//! second call site changes what the compiler inlines, and every scenario's count with it).
//!
//! Made to be counted, not timed: the machine has no hardware counters and shares its two
//! CPUs, so instruction counts are the stable measure. Run under callgrind, collecting only
//! the measured pass:
//!
//! ```text
//! cargo bench -p pipeline --bench path --no-run
//! valgrind --tool=callgrind --toggle-collect=ff_bench_measured \
//!     target/release/deps/path-<hash> B1k
//! ```
//!
//! and divide the instructions collected by the packets it prints (`perf/icount.sh` does
//! this for every shape and prints a table). Without valgrind it
//! prints ns/packet of the same pass (noisy here). The shapes are those of
//! `benches/lookup.rs` (both from `benches/common`), which measures the walk without extraction.

mod common;

use std::hint::black_box;
use std::time::Instant;

use packet::{FlowKey, PacketBuf, VecBuf};
use pipeline::{BurstCounts, Emit, FlowTables, MissPolicy, Pipeline, Sink, WorkerContext};

use common::*;

/// Table 0 misses into the learning switch.
fn shape_normal() -> FlowTables {
    let mut ft = tables(1);
    ft.set_miss_policy(0, MissPolicy::Normal).unwrap();
    ft.publish();
    ft
}

/// One pass over `pkts` the way the worker runs a burst.
#[inline(never)]
fn pass(pl: &Pipeline, pkts: &mut [(u32, VecBuf)], ctx: &mut WorkerContext, sink: &mut Count) {
    let mut keys = [FlowKey::default(); 32];
    for burst in pkts.chunks_mut(32) {
        // Table 0 answered for the burst where it can be, as the worker does (a worker's
        // bursts come from one port; N's here alternate between two).
        // The worker sums the burst's bytes for its port counters anyway; here only when
        // they are used.
        let port = burst[0].0;
        let per_burst = pl.tables[0].counts_per_burst && burst.iter().all(|b| b.0 == port);
        let bytes = |burst: &[(u32, VecBuf)]| burst.iter().map(|b| b.1.wire_len() as u64).sum();
        if per_burst && pl.may_decide_bursts() && send_decided(pl, burst, ctx, sink) {
            continue;
        }
        let each = |b| {
            let (port, pkt): &(u32, VecBuf) = b;
            (pkt.data(), *port)
        };
        pl.extract_plan.extract_each(burst, each, &mut keys);
        // What the worker hands the pipeline (dpdk::prefetch); a read stands in here.
        pl.prefetch_lookups(&keys[..burst.len()], |p| {
            black_box(p);
        });
        let counts = if per_burst {
            pl.count_burst(ctx, port, burst.len() as u64, bytes(burst))
        } else {
            BurstCounts::default()
        };
        for ((_, pkt), key) in burst.iter_mut().zip(keys.iter_mut()) {
            // The packet's one final output to a plain port comes back to the caller,
            // which sends it itself, as the worker does (to its tx batch).
            let (v, out) = pl.process_in_burst_tallied(pkt, key, ctx, sink, counts);
            if let Some(port) = out {
                sink.output(port, None, pkt, Emit::Final);
            }
            black_box(v);
        }
        pl.add_burst_matches(ctx);
    }
}

/// A burst from one port that table 0's answer decides whole (A's), sent as the worker
/// sends it: no key, no walk, the burst counted once and every packet handed to the ports
/// (the worker's tx batches; the sink here). False, and nothing done, for any other burst.
/// Not inlined, as the worker's is not: the walk's loop in `pass` compiles as it would
/// without it.
#[cold]
#[inline(never)]
fn send_decided(
    pl: &Pipeline,
    burst: &[(u32, VecBuf)],
    ctx: &mut WorkerContext,
    sink: &mut Count,
) -> bool {
    let port = burst[0].0;
    let answer = pl.burst_answer(port);
    let Some(outs) = pl.burst_outputs(&answer, port) else {
        return false;
    };
    let bytes = burst.iter().map(|b| b.1.wire_len() as u64).sum();
    answer.count(ctx, burst.len() as u64, bytes);
    for (_, pkt) in burst {
        for &out in &outs {
            sink.output(out, None, pkt, Emit::Final);
        }
    }
    true
}

/// The pass callgrind collects (`--toggle-collect=ff_bench_measured`); the symbol is
/// unmangled so the pattern stays the same from build to build.
#[no_mangle]
#[inline(never)]
fn ff_bench_measured(
    pl: &Pipeline,
    pkts: &mut [(u32, VecBuf)],
    ctx: &mut WorkerContext,
    sink: &mut Count,
) {
    pass(pl, pkts, ctx, sink);
}

/// (name, tables, instances, flows).
type Shape = (&'static str, fn() -> FlowTables, u64, u64);

/// The frames of a shape.
fn traffic(name: &str, instances: u64, flows: u64) -> Vec<(u32, VecBuf)> {
    match name {
        "ACL" => {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
            (0..flows)
                .map(|_| (1, VecBuf::new(&acl_frame(&mut rng))))
                .collect()
        }
        "N" => frames(instances, flows, true, 0),
        "B1k-md" => frames(instances, flows, false, 10),
        "CTc" | "CTe" | "CTr" => ct_frames(name, flows)
            .iter()
            .map(|f| (1, VecBuf::new(f)))
            .collect(),
        _ => frames(instances, flows, false, 0),
    }
}

fn main() {
    // cargo bench passes --bench; any other argument names the shapes to run.
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let shapes: [Shape; 10] = [
        ("A", shape_a, 1, 1000),
        ("B1k", || shape_b(1000), 1000, 1000),
        ("B10k", || shape_b(10_000), 10_000, 100_000),
        ("C10k", || shape_c(10_000), 10_000, 100_000),
        ("N", shape_normal, 1000, 1000),
        ("ACL", shape_acl, 0, 10_000),
        ("B1k-md", || shape_b(1000), 1000, 1000),
        // Flows here are connections (CTe and CTr send two packets each).
        ("CTc", shape_ct, 0, 10_000),
        ("CTe", shape_ct, 0, 10_000),
        ("CTr", shape_ct, 0, 10_000),
    ];
    for (name, build, instances, flows) in shapes {
        if !wanted.is_empty() && !wanted.iter().any(|w| w == name) {
            continue;
        }
        let ft = build();
        let pl = ft.current();
        let mut ctx = ft.worker_context(0);
        if name.starts_with("CT") {
            ctx.attach_conntrack(conntrack::Tracker::new(conntrack::Config::default()).unwrap());
        }
        // Frames that actions rewrite (B1k-md's DNAT) are restored between passes, outside
        // the measured function.
        let orig = traffic(name, instances, flows);
        let mut pkts = orig.clone();
        let mut sink = Count(0);
        // At least 100k packets measured, after one pass that learns and warms caches.
        let rounds = (100_000 / orig.len() as u64).max(1);
        pass(&pl, &mut pkts, &mut ctx, &mut sink);
        let mut measured = std::time::Duration::ZERO;
        for _ in 0..rounds {
            pkts.clone_from(&orig);
            let t = Instant::now();
            ff_bench_measured(&pl, &mut pkts, &mut ctx, &mut sink);
            measured += t.elapsed();
        }
        let n = rounds * orig.len() as u64;
        let ns = measured.as_nanos() as f64 / n as f64;
        let kinds: Vec<&str> = pl.tables.iter().map(|t| t.kind()).collect();
        let ct = ctx
            .conntrack
            .as_ref()
            .map(|t| {
                let s = t.stats();
                format!(
                    ", conntrack: {} committed, {} invalid, {} entries",
                    s.committed, s.invalid, s.entries
                )
            })
            .unwrap_or_default();
        println!(
            "{name}: {n} packets measured, {ns:.1} ns/packet, tables {kinds:?}, sink {}{ct}",
            black_box(sink.0)
        );
    }
}
