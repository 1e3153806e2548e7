//! The tunnel scenarios of `perf/icount.sh`, B1k through a VXLAN port: VXe encapsulates
//! what B1k outputs (a copy of the frame, the UDP source port hashed from it, the outer
//! headers: what the worker does on output to a tunnel port, with a reused buffer in place
//! of the mbuf it takes from its pool); VXd receives B1k's frames in VXLAN and does what
//! the worker does on an uplink before the walk (outer headers parsed and checked, the
//! VXLAN header read, the outer headers stripped, `in_port`, `tunnel_id`, `tun_src` and
//! `tun_dst` set). Neither counts the DPDK rx/tx or the tunnel counters' atomics.
//!
//! A binary of its own (not in `benches/path.rs`): each keeps one instantiation of
//! `Pipeline::process`, as the worker has. Counted under callgrind like path.rs
//! (`--toggle-collect=ff_bench_measured*`).

mod common;

use std::hint::black_box;
use std::time::Instant;

use packet::tunnel::{Encap, TunnelKind};
use packet::{FlowKey, PacketBuf, VecBuf};
use pipeline::{Emit, Pipeline, Sink, WorkerContext};

use common::*;

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

fn main() {
    // cargo bench passes --bench; any other argument names the scenarios to run.
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    for name in ["VXe", "VXd"] {
        if wanted.is_empty() || wanted.iter().any(|w| w == name) {
            run_tunnel(name);
        }
    }
}
