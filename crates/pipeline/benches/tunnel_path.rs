//! The tunnel scenarios of `perf/icount.sh`, B1k through a VXLAN port: VXe encapsulates
//! what B1k outputs as the worker does (`TxBatches::tunnel_output`/`send_tunnel`): the
//! output is final, so it is deferred to the end of the walk, where the packet itself gets
//! the outer headers in its own headroom from the port's `FixedEncap` (fixed remote and
//! VNI), with the UDP source port hashed from the inner frame (the worker's copy for a
//! shared buffer is not taken: B1k outputs each packet once); VXd receives B1k's frames in VXLAN and does what
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

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use packet::tunnel::{Encap, EncapFields, EncapTemplate, FixedEncap, TunnelKind};
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

/// The worker's record of a deferred tunnel output (`TunnelOut`): the port, where its
/// general fields are (`FIXED`: none, the port's fixed headers), the next hop's MAC as
/// the neighbour cell holds it (0 unresolved, else `1 << 48 | mac`).
#[derive(Clone, Copy)]
struct TunnelOut {
    port: u32,
    general: u32,
    eth_dst: u64,
}

const FIXED: u32 = u32::MAX;

/// The worker's `GeneralOut`: the outer fields a port does not fix.
#[derive(Clone, Copy)]
struct GeneralOut {
    next_hop: [u8; 4],
    ip_src: [u8; 4],
    ip_dst: [u8; 4],
    vni: u32,
    options_len: u8,
    options: [u8; 16],
}

/// The sink of the tunnel scenarios: an output to `encap_port` is resolved as the worker
/// resolves it (`TxBatches::resolve_tunnel`: the outer source from `tun_src`, the MTU
/// check, the next hop's MAC from its atomic cell) and deferred; after the walk the packet
/// gets the port's fixed outer headers in its own headroom with the UDP source port hashed
/// from the inner frame (`TxBatches::send_tunnel`, [`TunnelSink::finish`]); the rest
/// counted as [`Count`] does.
struct TunnelSink {
    encap_port: Option<u32>,
    count: u64,
    template: EncapTemplate,
    fixed: Option<FixedEncap>,
    /// The next hop's MAC as workers read it: 0 unresolved, else `1 << 48 | mac`.
    neighbour: AtomicU64,
    max_inner: usize,
    mtu_drops: u64,
    deferred: Option<TunnelOut>,
    general: Option<GeneralOut>,
}

impl Sink<VecBuf> for TunnelSink {
    #[inline]
    fn output(&mut self, port: u32, _q: Option<u32>, _pkt: &VecBuf, _e: Emit) {
        self.count += u64::from(port);
    }

    #[inline]
    fn output_keyed(&mut self, port: u32, _q: Option<u32>, pkt: &VecBuf, key: &FlowKey, _e: Emit) {
        if self.encap_port != Some(port) {
            self.count += u64::from(port);
            return;
        }
        self.tunnel_output(port, pkt, key);
    }

    fn clone_packet(&mut self, pkt: &VecBuf) -> Option<VecBuf> {
        Some(pkt.clone())
    }
}

impl TunnelSink {
    /// Out of line, as the worker's: the sink's output stays small enough for the walk to
    /// inline its outputs to plain ports.
    #[inline(never)]
    fn tunnel_output(&mut self, port: u32, pkt: &VecBuf, key: &FlowKey) {
        let src = key.tun_src();
        let ip_src = if src == [0; 4] || src == TUN_LOCAL.0 {
            TUN_LOCAL.0
        } else {
            src
        };
        if pkt.data().len() > self.max_inner {
            self.mtu_drops += 1;
            return;
        }
        let eth_dst = self.neighbour.load(Relaxed);
        if self.fixed.is_some() && ip_src == TUN_LOCAL.0 {
            self.deferred = Some(TunnelOut {
                port,
                general: FIXED,
                eth_dst,
            });
            return;
        }
        self.general = Some(GeneralOut {
            next_hop: TUN_REMOTE.0,
            ip_src,
            ip_dst: TUN_REMOTE.0,
            vni: TUN_VNI,
            options_len: 0,
            options: [0; 16],
        });
        self.deferred = Some(TunnelOut {
            port,
            general: 0,
            eth_dst,
        });
    }

    /// After the walk: the deferred tunnel output gets the packet itself.
    #[inline]
    fn finish(&mut self, pkt: &mut VecBuf) {
        if let Some(out) = self.deferred.take() {
            self.send_tunnel(out, pkt);
        }
    }

    /// Out of line, as the worker's `finish_tunnels`.
    #[inline(never)]
    fn send_tunnel(&mut self, out: TunnelOut, pkt: &mut VecBuf) {
        let general = if out.general == FIXED {
            None
        } else {
            self.general.take()
        };
        let options = general
            .as_ref()
            .map_or(&[][..], |g| &g.options[..usize::from(g.options_len)]);
        let overhead = self.template.overhead(options.len());
        if pkt.prepend(overhead).is_none() {
            return;
        }
        let frame = pkt.data_mut();
        let src_port = packet::tunnel::udp_src_port(&frame[overhead..]);
        let b = (out.eth_dst << 16).to_be_bytes();
        let eth_dst = [b[0], b[1], b[2], b[3], b[4], b[5]];
        let filled = match (&general, &self.fixed) {
            (None, Some(f)) => f.fill(frame, eth_dst, src_port),
            (Some(g), _) => self.template.fill(
                frame,
                &EncapFields {
                    eth_dst,
                    ip_src: g.ip_src,
                    ip_dst: g.ip_dst,
                    vni: g.vni,
                    src_port,
                    geneve_options: options,
                },
            ),
            (None, None) => return,
        };
        if filled.is_err() {
            return;
        }
        if out.eth_dst == 0 {
            // The worker hands it to the control plane to hold until the hop resolves.
            let hop = general.map_or(TUN_REMOTE.0, |g| g.next_hop);
            self.count += u64::from(black_box(hop)[3]) + u64::from(out.port);
            return;
        }
        self.count += black_box(pkt.data()).len() as u64;
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
            sink.finish(pkt);
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
    let e = tunnel_encap();
    let template = EncapTemplate::new(e.kind, e.eth_src, e.dst_port, e.ttl, e.udp_checksum);
    let m = e.eth_dst;
    let mut sink = TunnelSink {
        encap_port: (!decap).then_some(2),
        count: 0,
        template,
        fixed: Some(template.fixed(e.ip_src, e.ip_dst, e.vni)),
        neighbour: AtomicU64::new(u64::from_be_bytes([
            0, 1, m[0], m[1], m[2], m[3], m[4], m[5],
        ])),
        max_inner: 1500 + 14 - template.overhead(0),
        mtu_drops: 0,
        deferred: None,
        general: None,
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
