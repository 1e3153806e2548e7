use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use arrayvec::ArrayVec;
use crossbeam_queue::ArrayQueue;
use dpdk::{rdtsc, Mbuf, MbufBurst, RxQueue, TxDrops, TxQueue, BURST_SIZE};
use packet::FlowKey;
use pipeline::{BurstCounts, Emit, PipelineHandle, Sink, WorkerContext, BURST_OUTPUTS};

use crate::capture::{CaptureTap, CAPTURE_RX, CAPTURE_TX};
use crate::counters::{burst_bucket, QueueCounters, WorkerCounters};
use crate::datapath::Command;
use crate::handoff::{DecapMeta, Handed, Handoff, HANDOFF_TAKE_PER_TURN};
use crate::health::WorkerHealth;
use crate::pkt::Pkt;
use crate::ports::PortIndex;
use crate::tunnel::{Rx, SharedCounter, SlowQueue, TunnelCounters, TunnelPort, Tunnels};

/// Polls without packets after which an idle-sleeping worker starts to sleep.
const IDLE_POLLS_BEFORE_SLEEP: u32 = 1024;

/// An rx queue as a worker polls it: the port's slot, the queue and its counters, which
/// travel with it between workers.
pub(crate) struct PolledQueue {
    pub slot: usize,
    pub queue: RxQueue,
    pub counters: Arc<QueueCounters>,
}

/// Everything one worker owns. Built by the control plane, moved to its lcore,
/// and never shared: the shared state it reads is the current pipeline version
/// (loaded once per burst), the MAC table inside it, and the stop flag.
pub(crate) struct Worker {
    /// The rx queues this worker polls.
    pub rx: Vec<PolledQueue>,
    /// One tx queue on every port, indexed by slot (None: free slot).
    pub tx: Vec<Option<TxQueue>>,
    pub ports: Arc<PortIndex>,
    pub pipeline: PipelineHandle,
    pub ctx: WorkerContext,
    pub counters: Arc<WorkerCounters>,
    pub stop: Arc<AtomicBool>,
    pub tsc_hz: u64,
    /// TSC at datapath start: the pipeline's clock counts from it.
    pub tsc_epoch: u64,
    pub idle_sleep: Option<Duration>,
    /// Control-plane frames to send (the first worker only).
    pub inject: Option<Arc<ArrayQueue<(usize, Mbuf)>>>,
    /// Port changes from the control plane.
    pub commands: Arc<ArrayQueue<Command>>,
    /// Where this worker acknowledges versions and commands (its slot: `id`).
    pub health: Arc<WorkerHealth>,
    pub id: usize,
    /// Queues of ports taken away by [`Command::RemovePort`], kept until the removal is
    /// either undone ([`Command::RestorePort`]) or the slot is reused: by slot, the rx
    /// queues and the tx queue.
    pub parked: Vec<(usize, Vec<PolledQueue>, Option<TxQueue>)>,
    /// The flow keys of the burst being forwarded, all extracted before the first walk.
    pub keys: Box<[FlowKey; BURST_SIZE]>,
    /// Tunnel ports and their uplinks ([`Command::SetTunnels`]).
    pub tunnels: Arc<Tunnels>,
    /// ARP and ICMP for the tunnels' local IPs, to the control plane.
    pub slow: Arc<SlowQueue>,
    /// Live capture: one flag load per burst and port when off.
    pub capture: Arc<CaptureTap>,
    /// With several workers: the rings that carry packets to the worker owning their
    /// connection ([`crate::handoff`]).
    pub handoff: Option<Handoff>,
}

/// Final outputs of the packet being walked that wait for the end of the walk.
const DEFERRED: usize = 16;
/// Final tunnel outputs of the packet being walked that wait for the end of the walk
/// (more, as in a head-end replication to many remotes, are copied at once).
const TUNNEL_DEFERRED: usize = 8;

/// One output to a tunnel port, as small as the usual case allows (16 bytes: it is
/// written at the output and read back after the walk): a port with fixed outer headers
/// ([`TunnelPort::fixed`]) needs only its index and the next hop's MAC; the rest of the
/// outer fields, taken from the packet's key at the output (a later `set_field` of
/// `tun_dst` or `tunnel_id` for another output does not change them), are a
/// [`GeneralOut`] beside it.
#[derive(Clone, Copy)]
struct TunnelOut {
    /// The port's index in [`Tunnels::ports`].
    port: u32,
    /// Where its [`GeneralOut`] is in `TxBatches::tunnel_general`; [`FIXED`]: none, the
    /// port's fixed headers.
    general: u32,
    /// The next hop's MAC as [`crate::tunnel::NeighbourMac`] holds it; 0: unresolved,
    /// the frame waits in `Tunnels::pending`.
    eth_dst: u64,
}

/// [`TunnelOut::general`] of an output with the port's fixed outer headers.
const FIXED: u32 = u32::MAX;

/// The outer fields of a tunnel output that the port does not fix: a flow-based remote,
/// a VNI from `tunnel_id`, a `tun_src` the flow set, Geneve options.
#[derive(Clone, Copy)]
struct GeneralOut {
    next_hop: [u8; 4],
    ip_src: [u8; 4],
    ip_dst: [u8; 4],
    vni: u32,
    options_len: u8,
    options: [u8; crate::tunnel::GENEVE_OPTIONS_ROOM],
}

/// Per-port tx batches; the pipeline's outputs land here.
struct TxBatches<'a> {
    bufs: &'a mut [MbufBurst],
    /// Outputs to ports this worker has no queue for.
    unknown_port: u64,
    /// Outputs handed to a port (queued, or counted as that port's tx drop).
    handed: u64,
    /// Copies that could not be made or queued (counted as the port's tx drops).
    failed: &'a mut [u64],
    ports: &'a PortIndex,
    tunnels: &'a Tunnels,
    /// The buffer of the packet being walked ([`Mbuf::id`]).
    current: usize,
    /// Ports (slots) the current packet goes to as it is at the end of the walk: they get
    /// it after the walk, the last one the packet itself, so the usual single output costs
    /// neither a reference count update nor a free.
    deferred: ArrayVec<u16, DEFERRED>,
    /// Tunnel outputs of the current packet as it is at the end of the walk, their outer
    /// headers' fields resolved when the output was taken: after the walk, the last one
    /// gets the packet itself, encapsulated in its own headroom, unless a port in
    /// `deferred` takes it as it is.
    tunnel_deferred: ArrayVec<TunnelOut, TUNNEL_DEFERRED>,
    /// The [`GeneralOut`]s of `tunnel_deferred`'s outputs that have one.
    tunnel_general: ArrayVec<GeneralOut, TUNNEL_DEFERRED>,
    /// Encapsulated packets and inner bytes not yet added to a tunnel port's shared
    /// counters: consecutive packets to one port are added together (see [`TunnelTally`]).
    tunnel_tally: TunnelTally,
    /// Walked packets that went nowhere, freed together after the burst
    /// ([`MbufBurst::free_all`]: one C call instead of one per packet).
    dropped: MbufBurst,
}

/// Adds `m` to the tx batch of slot `idx`. One rx burst puts at most a few copies per packet
/// on a port and the batches are flushed after every burst; a full batch is counted (as
/// the port's tx drop) and the copy freed.
#[inline]
fn queue_on(bufs: &mut [MbufBurst], failed: &mut [u64], idx: usize, m: Mbuf) {
    if bufs[idx].push(m).is_err() {
        failed[idx] += 1;
    }
}

impl TxBatches<'_> {
    /// [`queue_on`] for the walk's outputs (spelled out again: through `queue_on` the
    /// batches' and the counts' slices were loaded apart, 3 instructions per packet more).
    #[inline]
    fn queue(&mut self, idx: usize, m: Mbuf) {
        if self.bufs[idx].push(m).is_err() {
            self.failed[idx] += 1;
        }
    }

    /// Sends the walked packet to its deferred outputs, or keeps it to free with the
    /// burst's other drops if there are none.
    #[inline]
    fn finish(&mut self, m: Mbuf) {
        if !self.tunnel_deferred.is_empty() {
            self.finish_tunnels(m);
            return;
        }
        self.finish_ports(m);
    }

    /// [`Self::finish`] for a packet whose walk left its one final output, to `port`, to
    /// the worker ([`pipeline::Pipeline::process_in_burst_direct`]): with no other final
    /// output waiting and `port` a port slot (the usual packet), the packet goes straight
    /// to that slot's batch; otherwise the output is taken as the sink's would have been
    /// (a tunnel port, an unknown one) and the packet finished as usual.
    ///
    /// True when the packet went straight to the slot's batch (handed to a port, so
    /// forwarded; not added to `handed`, which the caller reads only otherwise).
    #[inline(always)]
    fn finish_direct(&mut self, port: u32, pkt: Pkt, key: &FlowKey) -> bool {
        if self.deferred.is_empty() && self.tunnel_deferred.is_empty() {
            if let Some(idx) = self.ports.index_of(port) {
                self.queue(idx, pkt.0);
                return true;
            }
        }
        self.output_keyed(port, None, &pkt, key, Emit::Final);
        self.finish(pkt.0);
        false
    }

    /// [`Self::finish`] for a packet without tunnel outputs.
    #[inline]
    fn finish_ports(&mut self, m: Mbuf) {
        let Some(last) = self.deferred.pop() else {
            // At most one packet per slot of the burst: never full (else freed at once).
            let _ = self.dropped.push(m);
            return;
        };
        for i in 0..self.deferred.len() {
            let idx = usize::from(self.deferred[i]);
            self.queue(idx, m.share());
        }
        self.deferred.clear();
        self.queue(usize::from(last), m);
    }
}

impl TxBatches<'_> {
    /// The outer IPv4 source for an encapsulation: the packet's `tun_src` when a flow set
    /// it to an address the switch owns on this tunnel's uplink (another tunnel's
    /// `local_ip` there), else the port's `local_ip`. A decapsulated packet's `tun_src`
    /// is its remote's address, which the switch does not own: it never leaks out.
    #[inline]
    fn outer_source(&self, t: &TunnelPort, key: &FlowKey) -> [u8; 4] {
        let src = key.tun_src();
        if src == [0; 4] || src == t.spec.local_ip || !self.tunnels.owns(t.uplink_slot, src) {
            t.spec.local_ip
        } else {
            src
        }
    }

    /// An output to tunnel port `ports[i]`: its outer headers' fields resolved from the
    /// key now, then, if the packet is final (no later action edits it), deferred to the
    /// end of the walk ([`Self::finish_tunnels`]: encapsulated in place when nothing else
    /// needs the frame as it is); otherwise encapsulated in a copy at once. What cannot
    /// be sent is counted on the tunnel port. Out of line: inlined, it made the sink's
    /// `output_keyed` too big for the walk to inline its outputs to plain ports
    /// (`Pipeline::flush` became a call for every packet; callgrind of
    /// benches/tunnel_path.rs, about 45 instructions per packet).
    #[inline(never)]
    fn tunnel_output(&mut self, i: usize, pkt: &Pkt, key: &FlowKey, emit: Emit) {
        let Some((mut out, general)) = self.resolve_tunnel(i, pkt, key) else {
            return;
        };
        self.handed += 1;
        if emit == Emit::Final && pkt.0.id() == self.current && !self.tunnel_deferred.is_full() {
            if let Some(g) = general {
                // No fuller than tunnel_deferred, which has room.
                out.general = self.tunnel_general.len() as u32;
                self.tunnel_general.push(g);
            }
            self.tunnel_deferred.push(out);
            return;
        }
        // Edited after this output, a group bucket's copy (the walk keeps it), or more
        // tunnel outputs than are deferred: a copy of the frame as it is now.
        let Some(m) = pkt.0.deep_copy() else {
            self.tunnels.ports[i].counters.encap_failed.add(1);
            return;
        };
        self.send_tunnel(&out, general.as_ref(), m);
    }

    /// The fields of an output to `ports[i]` that come from the packet's key: the outer
    /// destination and its next hop (`remote_ip = "flow"`: `tun_dst`), source, VNI and
    /// Geneve options. `None` when the output is dropped here (counted): no `tun_dst`, or
    /// too big for the uplink once encapsulated (IPv4 with DF: handed to the control plane
    /// to answer with ICMP fragmentation-needed).
    #[inline]
    fn resolve_tunnel(
        &mut self,
        i: usize,
        pkt: &Pkt,
        key: &FlowKey,
    ) -> Option<(TunnelOut, Option<GeneralOut>)> {
        let tunnels = self.tunnels;
        let t = &tunnels.ports[i];
        let c = &t.counters;
        let s = &t.spec;
        let flow_remote = if s.remote_is_flow() {
            let dst = key.tun_dst();
            let hop = (dst != crate::tunnel::REMOTE_FROM_FLOW)
                .then(|| crate::tunnel::route(&tunnels.settings, s.local_ip, s.local_prefix, dst))
                .flatten();
            let Some(hop) = hop else {
                c.no_tun_dst.add(1);
                return None;
            };
            let mac = tunnels.flow_hops.mac(t.uplink_slot, s.local_ip, hop);
            Some((dst, hop, crate::tunnel::raw_of_mac(mac)))
        } else {
            None
        };
        let ip_src = self.outer_source(t, key);
        let mut options = [0; crate::tunnel::GENEVE_OPTIONS_ROOM];
        let mut options_len = 0;
        // No TLV map load for VXLAN, nor for a packet without option data to send.
        let word = key.words[packet::TUN_METADATA_WORD];
        if s.kind == packet::tunnel::TunnelKind::Geneve && word != 0 {
            options_len =
                crate::tunnel::word_to_options(&tunnels.geneve_map.load(), word, &mut options);
        }
        let inner = pkt.0.data();
        if inner.len() + options_len > t.max_inner {
            c.mtu_drops.add(1);
            // DF set: the sender learns the path MTU by ICMP (from the control plane).
            if crate::tunnel::ipv4_df(inner) {
                let mtu = (t.max_inner.saturating_sub(14 + options_len)).min(usize::from(u16::MAX))
                    as u16;
                if let Some(slot) = self.ports.index_of(key.in_port()) {
                    if tunnels.too_big.push((slot, mtu, pkt.0.share())).is_ok() {
                        c.frag_needed.add(1);
                    }
                }
            }
            return None;
        }
        // `fixed` exists only for a port with its own remote and VNI.
        if t.fixed.is_some() && options_len == 0 && ip_src == s.local_ip {
            let out = TunnelOut {
                port: i as u32,
                general: FIXED,
                eth_dst: t.neighbour.raw(),
            };
            return Some((out, None));
        }
        let (ip_dst, next_hop, eth_dst) =
            flow_remote.unwrap_or((s.remote_ip, t.next_hop, t.neighbour.raw()));
        let out = TunnelOut {
            port: i as u32,
            general: FIXED,
            eth_dst,
        };
        let general = GeneralOut {
            next_hop,
            ip_src,
            ip_dst,
            vni: s.vni.unwrap_or(key.tunnel_id() as u32),
            options_len: options_len as u8,
            options,
        };
        Some((out, Some(general)))
    }

    /// Encapsulates `m` for `out` and queues it on the uplink (or, its next hop
    /// unresolved, hands it to the control plane to hold). The outer headers go into
    /// `m`'s own headroom when no one else holds it (the usual single output: no copy,
    /// as Open vSwitch's `tnl_push`); a shared buffer, or one without the headroom, is
    /// copied first. A port with fixed outer headers ([`TunnelPort::fixed`]) copies
    /// them whole and writes five fields; the UDP source port is hashed from the inner
    /// frame's headers, which the walk has just read (in cache).
    #[inline]
    fn send_tunnel(&mut self, out: &TunnelOut, general: Option<&GeneralOut>, mut m: Mbuf) {
        let tunnels = self.tunnels;
        let port = out.port as usize;
        let t = &tunnels.ports[port];
        let c = &t.counters;
        let options = general.map_or(&[][..], |g| &g.options[..usize::from(g.options_len)]);
        let overhead = t.template.overhead(options.len());
        if !m.can_prepend_in_place(overhead) {
            match m.deep_copy() {
                Some(copy) => m = copy,
                None => {
                    c.encap_failed.add(1);
                    return;
                }
            }
        }
        let Some(frame) = m.prepend_in_place(overhead) else {
            // A copy without the headroom (not from a pool of ours).
            c.encap_failed.add(1);
            return;
        };
        let inner_len = frame.len() - overhead;
        let src_port = packet::tunnel::udp_src_port(&frame[overhead..]);
        // Unresolved: filled in by the control plane when the ARP reply comes.
        let eth_dst = crate::tunnel::mac_of_raw(out.eth_dst);
        let filled = match (general, &t.fixed) {
            (None, Some(fixed)) => fixed.fill(frame, eth_dst, src_port),
            (Some(g), _) => t.template.fill(
                frame,
                &packet::tunnel::EncapFields {
                    eth_dst,
                    ip_src: g.ip_src,
                    ip_dst: g.ip_dst,
                    vni: g.vni,
                    src_port,
                    geneve_options: options,
                },
            ),
            // Not made: an output without its own fields is one of a fixed port.
            (None, None) => Err(packet::tunnel::EncapError::NoHeadroom),
        };
        if filled.is_err() {
            c.encap_failed.add(1);
            return;
        }
        self.tunnel_tally
            .add(&tunnels.ports, port, inner_len as u64, |c| {
                (&c.tx_packets, &c.tx_bytes)
            });
        if out.eth_dst == 0 {
            // Held until the next hop resolves (bounded: docs/tunnels.md).
            if tunnels
                .pending
                .push((t.uplink_slot, general.map_or(t.next_hop, |g| g.next_hop), m))
                .is_err()
            {
                c.no_neighbour.add(1);
            }
            return;
        }
        self.queue(t.uplink_slot, m);
    }

    /// [`Self::finish`] for a packet with tunnel outputs. The packet itself goes to the
    /// last one, encapsulated in place, unless a port takes it unencapsulated (then every
    /// tunnel output gets a copy and the ports share the original as usual). The copies
    /// are taken first: the in-place encapsulation changes the buffer under them.
    ///
    /// A copy rather than a header mbuf chained before a shared clone: the clone would
    /// need an indirect mbuf (a shared direct one has one data offset, which the in-place
    /// encapsulation or a port's view would move under the others), every uplink to
    /// transmit chains, and the UDP checksum to run over segments; for the frames a
    /// switch floods (ARP, broadcast, first packets) the copy of the frame costs about
    /// what the allocation and attachment cost.
    #[inline(never)]
    fn finish_tunnels(&mut self, m: Mbuf) {
        let n = self.tunnel_deferred.len();
        let in_place = self.deferred.is_empty();
        let copies = if in_place { n - 1 } else { n };
        for k in 0..copies {
            let out = self.tunnel_deferred[k];
            let general = self.general_of(&out);
            match m.deep_copy() {
                Some(copy) => self.send_tunnel(&out, general.as_ref(), copy),
                None => self.tunnels.ports[out.port as usize]
                    .counters
                    .encap_failed
                    .add(1),
            }
        }
        if in_place {
            let out = self.tunnel_deferred[n - 1];
            let general = self.general_of(&out);
            self.tunnel_deferred.clear();
            self.tunnel_general.clear();
            self.send_tunnel(&out, general.as_ref(), m);
        } else {
            self.tunnel_deferred.clear();
            self.tunnel_general.clear();
            self.finish_ports(m);
        }
    }

    /// A deferred output's [`GeneralOut`], if it has one (a copy: sending needs `self`).
    #[inline]
    fn general_of(&self, out: &TunnelOut) -> Option<GeneralOut> {
        (out.general != FIXED).then(|| self.tunnel_general[out.general as usize])
    }
}

impl Sink<Pkt> for TxBatches<'_> {
    #[inline]
    fn output_keyed(
        &mut self,
        port: u32,
        _queue: Option<u32>,
        pkt: &Pkt,
        key: &FlowKey,
        emit: Emit,
    ) {
        // One port lookup: a port slot, else perhaps a tunnel port.
        match self.ports.index_of(port) {
            Some(idx) => self.output_slot(idx, pkt, emit),
            None => match self.tunnels.index_of(port) {
                Some(i) => self.tunnel_output(i, pkt, key, emit),
                None => self.unknown_port += 1,
            },
        }
    }

    #[inline]
    fn output(&mut self, port: u32, _queue: Option<u32>, pkt: &Pkt, emit: Emit) {
        let Some(idx) = self.ports.index_of(port) else {
            self.unknown_port += 1;
            return;
        };
        self.output_slot(idx, pkt, emit)
    }

    fn clone_packet(&mut self, pkt: &Pkt) -> Option<Pkt> {
        pkt.0.deep_copy().map(Pkt)
    }
}

impl TxBatches<'_> {
    /// An output to the port in slot `idx`.
    #[inline(always)]
    fn output_slot(&mut self, idx: usize, pkt: &Pkt, emit: Emit) {
        self.handed += 1;
        let m = match emit {
            Emit::Final => {
                // Final: the packet no longer changes, so sending it as it is after the
                // walk is the same. Group buckets' copies are other buffers: shared now.
                if pkt.0.id() == self.current && !self.deferred.is_full() {
                    self.deferred.push(idx as u16);
                    return;
                }
                Some(pkt.0.share())
            }
            Emit::Snapshot => pkt.0.deep_copy(),
        };
        match m {
            Some(m) => self.queue(idx, m),
            None => self.failed[idx] += 1,
        }
    }
}

/// A tunnel port's packets and bytes, added to its shared (atomic) counters once per run
/// of consecutive packets of one port instead of once per packet: an atomic add is a
/// locked instruction, two of them per packet cost about as much as the encapsulation.
/// Flushed at the end of every burst, so the counters lag by at most one burst.
#[derive(Default)]
struct TunnelTally {
    port: usize,
    packets: u64,
    bytes: u64,
}

impl TunnelTally {
    #[inline]
    fn add(
        &mut self,
        ports: &[TunnelPort],
        port: usize,
        bytes: u64,
        which: fn(&TunnelCounters) -> (&SharedCounter, &SharedCounter),
    ) {
        if self.packets > 0 && self.port != port {
            self.flush(ports, which);
        }
        self.port = port;
        self.packets += 1;
        self.bytes += bytes;
    }

    #[inline]
    fn flush(
        &mut self,
        ports: &[TunnelPort],
        which: fn(&TunnelCounters) -> (&SharedCounter, &SharedCounter),
    ) {
        if self.packets > 0 {
            let (p, b) = which(&ports[self.port].counters);
            p.add(self.packets);
            b.add(self.bytes);
            self.packets = 0;
            self.bytes = 0;
        }
    }
}

/// Per-burst tallies for the ingress port, published once per burst. A packet is counted
/// forwarded unless it lands in `to_controller` or `dropped` (forwarded is what is left
/// of the burst): the usual packet adds nothing here.
#[derive(Default)]
struct Tally {
    bytes: u64,
    to_controller: u64,
    dropped: u64,
    rare: RareTally,
}

/// What a verdict rarely says (a meter drop, an expired TTL, action errors, the resubmit
/// limit), tested once per packet and added only when it says one of them.
#[derive(Default)]
struct RareTally {
    meter_drops: u64,
    invalid_ttl: u64,
    action_errors: u64,
    resubmit_limit_drops: u64,
}

impl Tally {
    /// A packet handed to no port: to the controller if it made packet-ins, else dropped.
    #[inline(always)]
    fn not_handed(&mut self, packet_ins: u32) {
        if packet_ins > 0 {
            self.to_controller += 1;
        } else {
            self.dropped += 1;
        }
    }
}

impl RareTally {
    #[cold]
    #[inline(never)]
    fn add(&mut self, meter_drop: bool, invalid_ttl: bool, action_errors: u32, limit: bool) {
        self.meter_drops += u64::from(meter_drop);
        self.invalid_ttl += u64::from(invalid_ttl);
        self.action_errors += u64::from(action_errors);
        self.resubmit_limit_drops += u64::from(limit);
    }
}

impl Worker {
    pub fn run(mut self) -> i32 {
        let mut bufs: Vec<MbufBurst> = Vec::new();
        let mut failed: Vec<u64> = Vec::new();
        let mut burst = MbufBurst::new();
        let mut idle_polls = 0u32;
        let mut last = rdtsc();
        let inject = self.inject.take();
        let tick_ns = TickNs::new(self.tsc_hz);
        // Whatever ends the loop (the stop flag, a panic unwinding), the control plane learns
        // that this worker uses nothing any more.
        let _exited = ExitedOnDrop(Arc::clone(&self.health), self.id);
        while !self.stop.load(Relaxed) {
            // Before the commands: a packet handed over from a port that a command removes
            // is walked before the removal, or dropped after it (its slot is unknown).
            let handed = if self.handoff.is_some() {
                self.take_handoffs(&mut bufs, &mut failed, tick_ns)
            } else {
                0
            };
            if !self.commands.is_empty() {
                self.apply_commands(&mut bufs, &mut failed);
            }
            // No version is held here: the next burst loads the published one or a newer one.
            self.health.ack(self.id, self.pipeline.published_version());
            let mut got = 0;
            for i in 0..self.rx.len() {
                let n = self.rx[i].queue.rx_burst(&mut burst);
                if n == 0 {
                    continue;
                }
                got += n;
                let in_port = self.rx[i].slot;
                if self.capture.flags(in_port) & CAPTURE_RX != 0 {
                    self.capture.copy(in_port, CAPTURE_RX, burst.as_slice());
                }
                let started = rdtsc();
                let now = started.wrapping_sub(self.tsc_epoch);
                self.ctx.set_now(Duration::from_nanos(tick_ns.ns(now)));
                self.forward(in_port, &mut burst, &mut bufs, &mut failed);
                self.flush(&mut bufs, &mut failed);
                // Per burst, not per packet: one more TSC read and three counter stores.
                let q = &self.rx[i].counters;
                q.packets.add(n as u64);
                q.busy_cycles.add(rdtsc().wrapping_sub(started));
                self.counters.bursts[burst_bucket(n)].add(1);
            }
            // Bounded expiry: at most `expire_per_call` connections per loop. An empty
            // tracker (a version without `ct`) has nothing to expire: its sweep read
            // `expire_per_call` free slots per loop, about 360 instructions per loop (11
            // per packet of a full burst; callgrind, examples/worker_icount).
            if let Some(t) = self.ctx.conntrack.as_deref_mut() {
                if t.stats().entries != 0 {
                    let now_ms = self.ctx.now_ns / 1_000_000;
                    t.expire(now_ms);
                }
            }
            if let Some(q) = &inject {
                if !q.is_empty() {
                    while let Some((port, m)) = q.pop() {
                        // A frame for a slot this worker has not applied yet, or no longer
                        // has, is dropped: its buffers are sized by the ports it knows.
                        if !self.tx.get(port).is_some_and(Option::is_some) {
                            drop(m);
                            self.counters.inject_dropped.add(1);
                            continue;
                        }
                        if let Err(m) = bufs[port].push(m) {
                            self.flush(&mut bufs, &mut failed);
                            if bufs[port].push(m).is_err() {
                                failed[port] += 1;
                            }
                        }
                    }
                    self.flush(&mut bufs, &mut failed);
                }
            }
            let t = rdtsc();
            let spent = t.wrapping_sub(last);
            last = t;
            // Total first: a reader that reads busy, then total, never sees busy > total.
            self.counters.total_cycles.add(spent);
            self.counters.iterations.add(1);
            if got > 0 || handed > 0 {
                self.counters.busy_cycles.add(spent);
                self.counters.busy_iterations.add(1);
                self.counters.packets.add(got as u64);
                idle_polls = 0;
            } else if let Some(d) = self.idle_sleep {
                idle_polls = idle_polls.saturating_add(1);
                if idle_polls > IDLE_POLLS_BEFORE_SLEEP {
                    // Holding no version: a barrier does not wait for this sleep.
                    self.health.set_asleep(self.id, true);
                    std::thread::sleep(d);
                    self.health.set_asleep(self.id, false);
                    // The sleep is idle time: busy share is of the worker's wall-clock
                    // time, which is what a rebalance compares.
                    let t = rdtsc();
                    self.counters.total_cycles.add(t.wrapping_sub(last));
                    last = t;
                }
            }
        }
        self.flush(&mut bufs, &mut failed);
        0
    }

    /// One burst from `in_port` through the current pipeline version.
    #[inline]
    fn forward(
        &mut self,
        in_port: usize,
        burst: &mut MbufBurst,
        bufs: &mut [MbufBurst],
        failed: &mut [u64],
    ) {
        if self.tunnels.is_uplink(in_port) {
            self.uplink_rx(in_port, burst, bufs, failed);
            if burst.is_empty() {
                return;
            }
        }
        if self.send_decided(in_port, burst, bufs, failed) {
            return;
        }
        self.walk(in_port, burst, bufs, failed, None, false);
    }

    /// Takes what is for the tunnel layer out of a burst from an uplink: decapsulates
    /// tunnel packets and walks them as from their tunnel port, hands ARP and ICMP for a
    /// local IP to the control plane, drops (and counts) bad ones; leaves the rest in
    /// `burst`. Each packet taken is counted on the uplink as received, and as forwarded,
    /// to the controller (the slow path) or dropped.
    #[cold]
    fn uplink_rx(
        &mut self,
        in_port: usize,
        burst: &mut MbufBurst,
        bufs: &mut [MbufBurst],
        failed: &mut [u64],
    ) {
        let tunnels = Arc::clone(&self.tunnels);
        let mut pass = MbufBurst::new();
        let mut decap = MbufBurst::new();
        let mut meta: [DecapMeta; BURST_SIZE] = [(0, 0, [0; 4], [0; 4], 0); BURST_SIZE];
        let (mut slow, mut dropped, mut bytes) = (0u64, 0u64, 0u64);
        let mut rx_tally = TunnelTally::default();
        for mut m in burst.drain() {
            match tunnels.classify(in_port, m.data()) {
                Rx::Pass => {
                    let _ = pass.push(m);
                    continue;
                }
                Rx::Slow => {
                    bytes += m.len() as u64;
                    tunnels.underlay.slow_path.add(1);
                    slow += 1;
                    if self.slow.push((in_port, m)).is_err() {
                        tunnels.underlay.slow_path_dropped.add(1);
                    }
                }
                Rx::Drop => {
                    bytes += m.len() as u64;
                    dropped += 1;
                }
                Rx::Decap(t, vni, inner, outer_src, options) => {
                    bytes += m.len() as u64;
                    let tp = &tunnels.ports[t];
                    if !m.adj(inner) {
                        dropped += 1;
                        continue;
                    }
                    rx_tally.add(&tunnels.ports, t, m.len() as u64, |c| {
                        (&c.rx_packets, &c.rx_bytes)
                    });
                    meta[decap.len()] = (tp.spec.ofport, vni, outer_src, tp.spec.local_ip, options);
                    let _ = decap.push(m);
                }
            }
        }
        rx_tally.flush(&tunnels.ports, |c| (&c.rx_packets, &c.rx_bytes));
        let taken = slow + dropped + decap.len() as u64;
        let c = &self.counters.ports[in_port];
        c.rx_packets.add(taken);
        c.rx_bytes.add(bytes);
        c.to_controller.add(slow);
        c.dropped.add(dropped);
        if !decap.is_empty() {
            let n = decap.len();
            self.walk(in_port, &mut decap, bufs, failed, Some(&meta[..n]), false);
        }
        *burst = pass;
    }

    /// Walks a burst through the pipeline; `tunnel`: per packet, the tunnel port it came
    /// from, its VNI and outer source and destination (the burst was decapsulated; its tallies still go to `in_port`,
    /// the uplink, apart from rx, counted by [`Self::uplink_rx`]). Unless `owned` (the
    /// packets were handed to this worker), packets whose connection another worker owns
    /// go to it first when the version tracks connections ([`Self::hand_off`]).
    #[inline]
    fn walk(
        &mut self,
        in_port: usize,
        burst: &mut MbufBurst,
        bufs: &mut [MbufBurst],
        failed: &mut [u64],
        tunnel: Option<&[DecapMeta]>,
        owned: bool,
    ) {
        let pipeline = self.pipeline.load();
        // Filled only when packets may be handed over (the usual walk does not pay for it).
        let mut kept_meta: [DecapMeta; BURST_SIZE];
        let tunnel = if !owned && pipeline.tracks && self.handoff.is_some() {
            kept_meta = [(0, 0, [0; 4], [0; 4], 0); BURST_SIZE];
            let kept = self.hand_off(in_port, burst, tunnel, &mut kept_meta);
            if kept == 0 {
                return;
            }
            tunnel.map(|_| &kept_meta[..kept])
        } else {
            tunnel
        };
        let n = burst.len();
        // Start loading every header of the burst before touching the first.
        for i in 0..n {
            burst.prefetch(i);
        }
        let ofport = self.ports.ofport(in_port);
        // Every key of the burst first, in place: the headers arrive while earlier ones are
        // parsed, and the walks then start from keys already in cache.
        // Only what this version's tables and actions read (its extraction plan): a
        // pipeline that matches nothing but in_port and only outputs needs no parse at
        // all, one that reads only L2 no IP parse. The keys are walked with this version.
        let mut t = Tally::default();
        let each = |m| {
            t.bytes += Mbuf::len(m) as u64;
            (Mbuf::data(m), ofport)
        };
        (pipeline.extract_plan).extract_each(burst.as_slice(), each, &mut self.keys[..]);
        if let Some(meta) = tunnel {
            for (key, &(ofport, vni, src, dst, options)) in self.keys.iter_mut().zip(meta) {
                key.set(packet::Field::InPort, u128::from(ofport));
                key.set(packet::Field::InPhyPort, u128::from(ofport));
                key.set_tunnel_id(u64::from(vni));
                key.set_tun_ipv4(src, dst);
                key.words[packet::TUN_METADATA_WORD] = options;
            }
        }
        if pipeline.prefetches {
            pipeline.prefetch_lookups(&self.keys[..n], dpdk::prefetch);
        }
        let mut sink = TxBatches {
            bufs,
            failed,
            ports: &self.ports,
            tunnels: &self.tunnels,
            unknown_port: 0,
            handed: 0,
            current: 0,
            deferred: ArrayVec::new(),
            tunnel_deferred: ArrayVec::new(),
            tunnel_general: ArrayVec::new(),
            tunnel_tally: TunnelTally::default(),
            dropped: MbufBurst::new(),
        };
        // Table 0 counted once for the burst when it answers from in_port alone (all the
        // burst's keys have in_port `ofport` unless decapsulated).
        let counts = if tunnel.is_none() {
            pipeline.count_burst(&self.ctx, ofport, n as u64, t.bytes)
        } else {
            BurstCounts::default()
        };
        for (m, key) in burst.drain().zip(self.keys.iter_mut()) {
            sink.current = m.id();
            let mut pkt = Pkt(m);
            let handed = sink.handed;
            let (v, out) =
                pipeline.process_in_burst_tallied(&mut pkt, key, &mut self.ctx, &mut sink, counts);
            match out {
                // A returned port comes with none of the verdict's rare events.
                Some(port) => {
                    if !sink.finish_direct(port, pkt, key) && sink.handed == handed {
                        t.not_handed(v.packet_ins);
                    }
                }
                None => {
                    sink.finish(pkt.0);
                    if sink.handed == handed {
                        t.not_handed(v.packet_ins);
                    }
                    if v.meter_drop | v.invalid_ttl | v.resubmit_limit | (v.action_errors != 0) {
                        let (m, ttl, r) = (v.meter_drop, v.invalid_ttl, v.resubmit_limit);
                        t.rare.add(m, ttl, v.action_errors, r);
                    }
                }
            }
        }
        // The burst's table matches, counted in the context by the walks above.
        pipeline.add_burst_matches(&mut self.ctx);
        sink.dropped.free_all();
        sink.tunnel_tally
            .flush(&self.tunnels.ports, |c| (&c.tx_packets, &c.tx_bytes));
        self.counters.unknown_port_outputs.add(sink.unknown_port);
        let c = &self.counters.ports[in_port];
        if tunnel.is_none() {
            c.rx_packets.add(n as u64);
            c.rx_bytes.add(t.bytes);
        }
        c.forwarded.add(n as u64 - t.to_controller - t.dropped);
        c.to_controller.add(t.to_controller);
        c.dropped.add(t.dropped);
        c.meter_drops.add(t.rare.meter_drops);
        c.invalid_ttl.add(t.rare.invalid_ttl);
        c.action_errors.add(t.rare.action_errors);
        c.resubmit_limit_drops.add(t.rare.resubmit_limit_drops);
    }

    /// The tx slots of OpenFlow ports `outs`, in order; `None` if one is not a port slot
    /// of this worker (a tunnel port, or one being added or removed: the walk handles those).
    #[inline]
    fn slots_of(&self, outs: &[u32]) -> Option<ArrayVec<u16, BURST_OUTPUTS>> {
        let mut slots = ArrayVec::new();
        for &port in outs {
            // Slots are below the port count, far below u16::MAX.
            slots.push(u16::try_from(self.ports.index_of(port)?).ok()?);
        }
        Some(slots)
    }

    /// Sends a burst from `in_port` (not decapsulated) out whole when table 0's answer
    /// for it decides every packet's walk ([`pipeline::Pipeline::burst_outputs`]) and its
    /// ports are all port slots here (a tunnel port, or one being added, takes the walk);
    /// false, and nothing done, otherwise. No key is extracted and no packet walked: the
    /// mbufs go straight to the ports' tx batches, the last port getting the packet itself
    /// and the others a shared reference, as a walk's deferred final outputs do, and every
    /// counter (table 0's entry and table, the ports' rx, forwarded, dropped, tx) ends
    /// where walking each packet leaves it. A version that hands packets to the worker
    /// owning their connection leaves the burst to [`Self::walk`], which does that first.
    /// Not inlined, and apart from the walk: kept inside [`Self::walk`] it cost the
    /// walked bursts about 8 instructions per packet in the walk's register allocation.
    #[inline(never)]
    fn send_decided(
        &mut self,
        in_port: usize,
        burst: &mut MbufBurst,
        bufs: &mut [MbufBurst],
        failed: &mut [u64],
    ) -> bool {
        let pipeline = self.pipeline.load();
        if !pipeline.may_decide_bursts() || (pipeline.tracks && self.handoff.is_some()) {
            return false;
        }
        let ofport = self.ports.ofport(in_port);
        let answer = pipeline.burst_answer(ofport);
        let Some(outs) = pipeline.burst_outputs(&answer, ofport) else {
            return false;
        };
        let Some(slots) = self.slots_of(&outs) else {
            return false;
        };
        let n = burst.len() as u64;
        let bytes: u64 = burst.as_slice().iter().map(|m| m.len() as u64).sum();
        answer.count(&self.ctx, n, bytes);
        let c = &self.counters.ports[in_port];
        c.rx_packets.add(n);
        c.rx_bytes.add(bytes);
        match *slots {
            [] => {
                burst.free_all();
                c.dropped.add(n);
                return true;
            }
            // The usual port-to-port rule: the burst's pointers move to the batch; what
            // does not fit is counted as the port's tx drops, as a full batch's pushes are.
            [only] => {
                let idx = usize::from(only);
                bufs[idx].append(burst);
                failed[idx] += burst.free_all() as u64;
            }
            [ref shared @ .., last] => {
                for m in burst.drain() {
                    for &s in shared {
                        queue_on(bufs, failed, usize::from(s), m.share());
                    }
                    queue_on(bufs, failed, usize::from(last), m);
                }
            }
        }
        c.forwarded.add(n);
        true
    }

    /// Takes the packets of `burst` whose connection another worker owns out of it and
    /// pushes them to that worker's ring; returns how many stay (their tunnel metadata, if
    /// any, moved to `kept_meta` in the same order). A full ring drops the packet: counted
    /// in `handoff_dropped` and as a drop on its ingress port.
    #[inline]
    fn hand_off(
        &mut self,
        in_port: usize,
        burst: &mut MbufBurst,
        tunnel: Option<&[DecapMeta]>,
        kept_meta: &mut [DecapMeta; BURST_SIZE],
    ) -> usize {
        let Some(h) = self.handoff.as_ref() else {
            return burst.len();
        };
        let shards = h.shards();
        let mut kept = MbufBurst::new();
        let (mut sent, mut dropped, mut dropped_bytes) = (0u64, 0u64, 0u64);
        for (i, m) in burst.drain().enumerate() {
            let meta = tunnel.and_then(|t| t.get(i).copied());
            match conntrack::shard_of_frame(m.data(), shards) {
                Some(owner) if owner != self.id => {
                    let Some(ring) = h.to.get(owner).and_then(Option::as_ref) else {
                        // Not reached: every other worker has a ring.
                        let _ = kept.push(m);
                        continue;
                    };
                    let len = m.len() as u64;
                    let handed = Handed {
                        m,
                        slot: in_port as u16,
                        tunnel: meta,
                    };
                    match ring.push(handed) {
                        Ok(()) => sent += 1,
                        Err(refused) => {
                            drop(refused);
                            dropped += 1;
                            dropped_bytes += len;
                        }
                    }
                }
                _ => {
                    if let Some(meta) = meta {
                        kept_meta[kept.len()] = meta;
                    }
                    // At most as many as the burst held: never full.
                    let _ = kept.push(m);
                }
            }
        }
        *burst = kept;
        self.counters.handed_off.add(sent);
        if dropped > 0 {
            self.counters.handoff_dropped.add(dropped);
            let c = &self.counters.ports[in_port];
            if tunnel.is_none() {
                c.rx_packets.add(dropped);
                c.rx_bytes.add(dropped_bytes);
            }
            c.dropped.add(dropped);
        }
        burst.len()
    }

    /// Walks the packets other workers handed to this one (at most
    /// [`HANDOFF_TAKE_PER_TURN`] per ring), in bursts of one ingress port each; returns
    /// how many it took. A packet from a port this worker no longer has is dropped
    /// (counted in `handoff_dropped`).
    fn take_handoffs(
        &mut self,
        bufs: &mut [MbufBurst],
        failed: &mut [u64],
        tick_ns: TickNs,
    ) -> usize {
        let Some(h) = self.handoff.take() else {
            return 0;
        };
        if h.from.iter().all(|r| r.is_empty()) {
            self.handoff = Some(h);
            return 0;
        }
        let now = rdtsc().wrapping_sub(self.tsc_epoch);
        self.ctx.set_now(Duration::from_nanos(tick_ns.ns(now)));
        let mut burst = MbufBurst::new();
        let mut meta: [DecapMeta; BURST_SIZE] = [(0, 0, [0; 4], [0; 4], 0); BURST_SIZE];
        // The ingress slot of the packets in `burst`, and whether they were decapsulated.
        let mut current: Option<(usize, bool)> = None;
        let mut taken = 0;
        let mut gone = 0u64;
        for ring in h.from.iter() {
            for _ in 0..HANDOFF_TAKE_PER_TURN {
                let Some(x) = ring.pop() else {
                    break;
                };
                let slot = usize::from(x.slot);
                if !self.tx.get(slot).is_some_and(Option::is_some) {
                    gone += 1;
                    continue;
                }
                let key = (slot, x.tunnel.is_some());
                if let Some(c) = current.filter(|&c| c != key || burst.is_full()) {
                    self.walk_handed(c, &mut burst, &meta, bufs, failed);
                }
                current = Some(key);
                if let Some(t) = x.tunnel {
                    meta[burst.len()] = t;
                }
                let _ = burst.push(x.m);
                taken += 1;
            }
        }
        if let Some(c) = current {
            self.walk_handed(c, &mut burst, &meta, bufs, failed);
        }
        self.counters.handoff_received.add(taken as u64);
        self.counters.handoff_dropped.add(gone);
        self.handoff = Some(h);
        taken
    }

    /// Walks a burst of handed-over packets from one port and sends what it outputs.
    fn walk_handed(
        &mut self,
        (slot, decapsulated): (usize, bool),
        burst: &mut MbufBurst,
        meta: &[DecapMeta; BURST_SIZE],
        bufs: &mut [MbufBurst],
        failed: &mut [u64],
    ) {
        if burst.is_empty() {
            return;
        }
        let n = burst.len();
        let tunnel = decapsulated.then(|| &meta[..n]);
        self.walk(slot, burst, bufs, failed, tunnel, true);
        self.flush(bufs, failed);
    }

    /// Hands every port's pending packets to its tx queue; what it refuses is dropped.
    #[inline]
    fn flush(&mut self, bufs: &mut [MbufBurst], failed: &mut [u64]) {
        for (p, buf) in bufs.iter_mut().enumerate() {
            if buf.is_empty() && failed[p] == 0 {
                continue;
            }
            if self.capture.flags(p) & CAPTURE_TX != 0 {
                self.capture.copy(p, CAPTURE_TX, buf.as_slice());
            }
            let c = &self.counters.ports[p];
            let (sent, cold) = self.tx[p].as_mut().map_or((0, TxDrops::default()), |q| {
                (q.tx_burst(buf), q.take_drops())
            });
            c.tx_packets.add(sent as u64);
            c.tx_dropped.add(
                buf.free_all() as u64
                    + std::mem::take(&mut failed[p])
                    + cold.dropped
                    + cold.oversize,
            );
            c.tx_oversize_dropped.add(cold.oversize);
        }
    }

    /// Port changes, between bursts: nothing of the old port set is in flight.
    #[cold]
    fn apply_commands(&mut self, bufs: &mut Vec<MbufBurst>, failed: &mut Vec<u64>) {
        self.flush(bufs, failed);
        while let Some(cmd) = self.commands.pop() {
            match cmd {
                Command::AddPorts { ports, index } => {
                    for (slot, rx, tx) in ports {
                        if self.tx.len() <= slot {
                            self.tx.resize_with(slot + 1, || None);
                            bufs.resize_with(slot + 1, MbufBurst::new);
                            failed.resize(slot + 1, 0);
                        }
                        // A new port in the slot: the old one's parked queues are obsolete.
                        self.parked.retain(|p| p.0 != slot);
                        self.tx[slot] = Some(tx);
                        self.rx.extend(rx);
                    }
                    self.ports = index;
                }
                Command::RemovePort { slot, index } => {
                    let mut rx = Vec::new();
                    let mut i = 0;
                    while i < self.rx.len() {
                        if self.rx[i].slot == slot {
                            rx.push(self.rx.remove(i));
                        } else {
                            i += 1;
                        }
                    }
                    let tx = self.tx.get_mut(slot).and_then(Option::take);
                    self.parked.retain(|p| p.0 != slot);
                    self.parked.push((slot, rx, tx));
                    self.ports = index;
                }
                Command::MoveRx { slot, queue, to } => {
                    let found = self
                        .rx
                        .iter()
                        .position(|q| q.slot == slot && q.queue.queue_id() == queue);
                    if let Some(i) = found {
                        let q = self.rx.remove(i);
                        // The control plane checked there is room; should the push fail
                        // anyway, the queue stays here rather than being lost.
                        if let Err(Command::TakeRx(q)) = to.push(Command::TakeRx(q)) {
                            self.rx.push(q);
                        }
                    }
                }
                Command::TakeRx(q) => self.rx.push(q),
                Command::RestorePort { slot, index } => {
                    if let Some(i) = self.parked.iter().position(|p| p.0 == slot) {
                        let (slot, rx, tx) = self.parked.swap_remove(i);
                        if let Some(tx) = tx {
                            self.tx[slot] = Some(tx);
                        }
                        self.rx.extend(rx);
                    }
                    self.ports = index;
                }
                Command::SetTunnels(tunnels) => {
                    // The previous set is freed by the control plane, which keeps it.
                    self.tunnels = tunnels;
                }
                Command::Conntrack(req) => {
                    let now_ms = self.ctx.now_ns / 1_000_000;
                    let lcore = self.health.lcore(self.id);
                    let mut reply = crate::ct_ops::answer(
                        self.ctx.conntrack.as_deref_mut(),
                        req.op,
                        lcore,
                        now_ms,
                    );
                    reply.handed_off = self.counters.handed_off.get();
                    reply.handoff_dropped = self.counters.handoff_dropped.get();
                    // The control plane may have given up waiting: the reply is dropped.
                    let _ = req.reply.try_send(reply);
                }
            }
            self.health.command_applied(self.id);
        }
    }
}

/// TSC ticks to nanoseconds as a multiply and a shift: the per-burst clock without the
/// 128-bit division (a libcall of tens of cycles) it cost before.
#[derive(Clone, Copy, Debug)]
struct TickNs {
    /// Nanoseconds per tick in 32.32 fixed point.
    mult: u64,
}

impl TickNs {
    fn new(tsc_hz: u64) -> TickNs {
        let mult = (1_000_000_000u128 << 32) / u128::from(tsc_hz.max(1));
        TickNs {
            mult: u64::try_from(mult).unwrap_or(u64::MAX),
        }
    }

    /// `ticks * 1e9 / tsc_hz`, rounded down, short by at most one nanosecond per 2^32
    /// ticks (the multiplier is truncated to 2^-32 ns): a relative error below 1e-9.
    #[inline]
    fn ns(self, ticks: u64) -> u64 {
        ((u128::from(ticks) * u128::from(self.mult)) >> 32) as u64
    }
}

/// Marks the worker as exited when its loop ends, however it ends.
struct ExitedOnDrop(Arc<WorkerHealth>, usize);

impl Drop for ExitedOnDrop {
    fn drop(&mut self) {
        self.0.set_exited(self.1);
    }
}

#[cfg(test)]
mod tests {
    use super::TickNs;

    /// The fixed-point clock agrees with the exact division to within the truncation
    /// bound over hours of ticks, for slow and fast TSCs.
    #[test]
    fn tick_ns_matches_the_division() {
        for hz in [1_000_000u64, 1_999_999_999, 2_100_000_000, 3_700_123_456] {
            let c = TickNs::new(hz);
            for ticks in [0u64, 1, 12_345, hz, hz * 3_600 + 17, hz * 36_000] {
                let exact = (u128::from(ticks) * 1_000_000_000 / u128::from(hz)) as u64;
                let got = c.ns(ticks);
                // Truncating the multiplier loses at most ticks * 2^-32 ns, plus one.
                let bound = ticks >> 32 | 1;
                assert!(
                    exact - got <= bound + 1,
                    "hz {hz} ticks {ticks}: {got} vs {exact}"
                );
            }
        }
    }
}
