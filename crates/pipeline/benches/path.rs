//! The worker's per-packet path (flow key extraction, then the pipeline walk with its
//! counters and a no-op sink) for tables shaped like /work/shared/bench/flows: A (one rule),
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
//! committed connections is printed to show it). VXe and VXd are B1k through a
//! VXLAN port: VXe encapsulates what B1k outputs (a copy of the frame, the UDP source port
//! hashed from it, the outer headers: what the worker does on output to a tunnel port, with
//! a reused buffer in place of the mbuf it takes from its pool); VXd receives B1k's frames in VXLAN and does
//! what the worker does on an uplink before the walk (outer headers parsed and checked,
//! the VXLAN header read, the outer headers stripped, `in_port`, `tunnel_id`, `tun_src`
//! and `tun_dst` set). Neither counts the DPDK rx/tx or the tunnel counters' atomics.
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

use packet::tunnel::{Encap, TunnelKind};
use packet::{FlowKey, PacketBuf, VecBuf};
use pipeline::{Emit, FlowTables, MissPolicy, Pipeline, Sink, WorkerContext};

use common::*;

/// Table 0 misses into the learning switch.
fn shape_normal() -> FlowTables {
    let mut ft = tables(1);
    ft.set_miss_policy(0, MissPolicy::Normal).unwrap();
    ft.publish();
    ft
}

/// Flow k: source instance k mod m, destination the next one, source port 1024 + k / m
/// (gen-pcap.py's flows).
/// `two_ports`: instance s sits on port 1 + s % 2 (for the learning switch), otherwise all
/// come in on port 1. `md_every`: every md_every-th flow (k % md_every == md_every - 1)
/// goes to the metadata service 169.254.169.254:80 instead (gen-pcap.py --metadata-every).
fn frames(instances: u64, flows: u64, two_ports: bool, md_every: u64) -> Vec<(u32, VecBuf)> {
    (0..flows)
        .map(|k| {
            let s = k % instances;
            let d = (s + 1) % instances;
            let sport = (1024 + k / instances) as u16;
            let f = if md_every != 0 && k % md_every == md_every - 1 {
                let mut f = frame(mac(s), mac(d), ip(s), 0xa9fe_a9fe, sport);
                f[36..38].copy_from_slice(&80u16.to_be_bytes());
                f
            } else {
                frame(mac(s), mac(d), ip(s), ip(d), sport)
            };
            let port = if two_ports { 1 + (s % 2) as u32 } else { 1 };
            (port, VecBuf::new(&f))
        })
        .collect()
}

/// One pass over `pkts` the way the worker runs a burst.
#[inline(never)]
fn pass(pl: &Pipeline, pkts: &mut [(u32, VecBuf)], ctx: &mut WorkerContext, sink: &mut Count) {
    let mut keys = [FlowKey::default(); 32];
    for burst in pkts.chunks_mut(32) {
        for ((port, pkt), key) in burst.iter().zip(keys.iter_mut()) {
            pl.extract(pkt.data(), *port, key);
        }
        for key in &keys[..burst.len()] {
            // What the worker hands the pipeline (dpdk::prefetch); a read stands in here.
            pl.prefetch_lookup(key, |p| {
                black_box(p);
            });
        }
        for ((_, pkt), key) in burst.iter_mut().zip(keys.iter_mut()) {
            black_box(pl.process(pkt, key, ctx, sink));
        }
    }
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

/// The tunnel scenarios' addresses (perf/tunnel-bench.sh's): the switch 192.0.2.1 at
/// 02:00:00:00:ee:01, the remote VTEP 192.0.2.2 at 02:00:00:00:ee:02, VNI 5000.
const TUN_LOCAL: ([u8; 4], [u8; 6]) = ([192, 0, 2, 1], [2, 0, 0, 0, 0xee, 1]);
const TUN_REMOTE: ([u8; 4], [u8; 6]) = ([192, 0, 2, 2], [2, 0, 0, 0, 0xee, 2]);
const TUN_VNI: u32 = 5000;

fn tunnel_encap() -> Encap<'static> {
    Encap {
        kind: TunnelKind::Vxlan,
        eth_src: TUN_LOCAL.1,
        eth_dst: TUN_REMOTE.1,
        ip_src: TUN_LOCAL.0,
        ip_dst: TUN_REMOTE.0,
        dst_port: 4789,
        vni: TUN_VNI,
        ttl: 64,
        udp_checksum: false,
        geneve_options: &[],
    }
}

/// An mbuf's stand-in for the encapsulated copy: a fixed buffer reused for every packet
/// (the worker takes an mbuf from its pool's per-core cache, which no allocator call
/// here should outweigh), DPDK's 128 bytes of headroom in front of the frame.
struct Scratch {
    buf: [u8; 2048],
    head: usize,
    end: usize,
}

impl Scratch {
    fn fill(&mut self, frame: &[u8]) {
        self.head = packet::buf::DEFAULT_HEADROOM;
        self.end = self.head + frame.len();
        self.buf[self.head..self.end].copy_from_slice(frame);
    }
}

impl PacketBuf for Scratch {
    fn data(&self) -> &[u8] {
        &self.buf[self.head..self.end]
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.head..self.end]
    }
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        self.head = self.head.checked_sub(n)?;
        Some(&mut self.buf[self.head..self.head + n])
    }
    fn adj(&mut self, n: usize) -> bool {
        if self.head + n > self.end {
            return false;
        }
        self.head += n;
        true
    }
}

/// The sink of the tunnel scenarios: outputs to `encap_port` are copied and encapsulated
/// (VXe), the rest counted as [`Count`] does.
struct TunnelSink {
    encap_port: Option<u32>,
    count: u64,
    scratch: Box<Scratch>,
}

impl Sink<VecBuf> for TunnelSink {
    #[inline]
    fn output(&mut self, port: u32, _q: Option<u32>, pkt: &VecBuf, _e: Emit) {
        if self.encap_port == Some(port) {
            let inner = pkt.data();
            let out = &mut *self.scratch;
            out.fill(inner);
            let src_port = packet::tunnel::udp_src_port(inner);
            if packet::tunnel::encap(out, &tunnel_encap(), src_port).is_ok() {
                self.count += black_box(out.data()).len() as u64;
            }
        } else {
            self.count += u64::from(port);
        }
    }
    fn clone_packet(&mut self, pkt: &VecBuf) -> Option<VecBuf> {
        Some(pkt.clone())
    }
}

/// One pass of a tunnel scenario: `decap`, the frames are VXLAN from the uplink (port 1)
/// and walk as from tunnel port 1 (B1k's flows match in_port=1).
#[inline(never)]
fn pass_tunnel(
    pl: &Pipeline,
    pkts: &mut [(u32, VecBuf)],
    ctx: &mut WorkerContext,
    sink: &mut TunnelSink,
    decap: bool,
) {
    use packet::tunnel::{parse_outer, parse_tunnel, verify_udp_checksum};
    let mut keys = [FlowKey::default(); 32];
    let mut meta = [(0u32, [0u8; 4]); 32];
    for burst in pkts.chunks_mut(32) {
        let mut n = 0;
        for (port, pkt) in burst.iter_mut() {
            if decap {
                let f = pkt.data();
                let Ok(Some(o)) = parse_outer(f) else {
                    continue;
                };
                if o.ip_dst != TUN_LOCAL.0 || o.dst_port != 4789 {
                    continue;
                }
                if verify_udp_checksum(f, &o).is_err() {
                    continue;
                }
                let Ok(t) = parse_tunnel(f, &o, TunnelKind::Vxlan) else {
                    continue;
                };
                if t.vni != TUN_VNI || o.ip_src != TUN_REMOTE.0 {
                    continue;
                }
                meta[n] = (t.vni, o.ip_src);
                pkt.adj(t.inner_offset);
            }
            pl.extract(pkt.data(), *port, &mut keys[n]);
            n += 1;
        }
        if decap {
            for (key, &(vni, src)) in keys[..n].iter_mut().zip(&meta) {
                key.set(packet::Field::InPort, 1);
                key.set(packet::Field::InPhyPort, 1);
                key.set_tunnel_id(u64::from(vni));
                key.set_tun_ipv4(src, TUN_LOCAL.0);
            }
        }
        for key in &keys[..n] {
            pl.prefetch_lookup(key, |p| {
                black_box(p);
            });
        }
        for ((_, pkt), key) in burst.iter_mut().zip(keys[..n].iter_mut()) {
            black_box(pl.process(pkt, key, ctx, sink));
        }
    }
}

/// The tunnel scenarios' measured pass (`perf/icount.sh` collects `ff_bench_measured*`).
#[no_mangle]
#[inline(never)]
fn ff_bench_measured_tunnel(
    pl: &Pipeline,
    pkts: &mut [(u32, VecBuf)],
    ctx: &mut WorkerContext,
    sink: &mut TunnelSink,
    decap: bool,
) {
    pass_tunnel(pl, pkts, ctx, sink, decap);
}

/// B1k's frames in VXLAN as the remote VTEP sends them (perf/gen-vxlan-pcap.py's).
fn vxlan_frames(instances: u64, flows: u64) -> Vec<(u32, VecBuf)> {
    frames(instances, flows, false, 0)
        .into_iter()
        .map(|(port, inner)| {
            let mut out = inner.clone();
            let e = Encap {
                eth_src: TUN_REMOTE.1,
                eth_dst: TUN_LOCAL.1,
                ip_src: TUN_REMOTE.0,
                ip_dst: TUN_LOCAL.0,
                ..tunnel_encap()
            };
            packet::tunnel::encap(&mut out, &e, packet::tunnel::udp_src_port(inner.data()))
                .expect("headroom");
            (port, VecBuf::new(out.data()))
        })
        .collect()
}

/// Runs VXe or VXd: B1k's tables, 1k flows, at least 100k packets measured.
fn run_tunnel(name: &str) {
    let decap = name == "VXd";
    let ft = shape_b(1000);
    let pl = ft.current();
    let mut ctx = ft.worker_context(0);
    let orig = if decap {
        vxlan_frames(1000, 1000)
    } else {
        frames(1000, 1000, false, 0)
    };
    let mut pkts = orig.clone();
    let mut sink = TunnelSink {
        encap_port: (!decap).then_some(2),
        count: 0,
        scratch: Box::new(Scratch {
            buf: [0; 2048],
            head: 0,
            end: 0,
        }),
    };
    pass_tunnel(&pl, &mut pkts, &mut ctx, &mut sink, decap);
    let rounds = 100;
    let mut measured = std::time::Duration::ZERO;
    for _ in 0..rounds {
        pkts.clone_from(&orig);
        let t = Instant::now();
        ff_bench_measured_tunnel(&pl, &mut pkts, &mut ctx, &mut sink, decap);
        measured += t.elapsed();
    }
    let n = rounds * orig.len() as u64;
    let ns = measured.as_nanos() as f64 / n as f64;
    let kinds: Vec<&str> = pl.tables.iter().map(|t| t.kind()).collect();
    println!(
        "{name}: {n} packets measured, {ns:.1} ns/packet, tables {kinds:?}, sink {}",
        black_box(sink.count)
    );
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
    for name in ["VXe", "VXd"] {
        if wanted.iter().any(|w| w == name) {
            run_tunnel(name);
        }
    }
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
