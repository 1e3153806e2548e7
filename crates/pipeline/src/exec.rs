//! The OpenFlow 1.3 multi-table walk over one pipeline version.
//!
//! Outputs are not sent while the walk runs: an output is recorded as pending and emitted
//! to the [`Sink`] either just before the next edit of the packet ([`Emit::Snapshot`]: the
//! datapath must copy the packet as it is now) or when the walk ends ([`Emit::Final`]: the
//! packet will not change any more, so the datapath can share one buffer between all final
//! outputs by reference count and send the original to the last). A packet that is output
//! and never edited afterwards is therefore never copied.
//!
//! Nothing here allocates, locks or performs an atomic read-modify-write per packet, except
//! packet-in (a copy of the frame into the queue, on the slow path by definition).

use arrayvec::ArrayVec;
use packet::{EditError, Field, FlowKey, Layers, PacketBuf};

use crate::flow::{Action, ActionSet, CtAction, CtNat, CtZone};
use crate::lookup::Classifier;
use crate::meter::{remark_dscp, MeterVerdict};
use crate::normal::{Form, Normal};
use crate::packet_in::{PacketInReason, PacketInRecord};
use crate::pipeline::{Pipeline, WorkerContext};
use crate::ports::{
    OFPCML_NO_BUFFER, OFPP_ALL, OFPP_CONTROLLER, OFPP_FLOOD, OFPP_IN_PORT, OFPP_MAX, OFPP_NORMAL,
    OFPP_TABLE,
};
use crate::table::{CompiledTable, Hit, Level, MissPolicy, TABLE_MATCHES, TABLE_MISSES};
use crate::trace::Event;

/// How the datapath must treat a packet handed to [`Sink::output`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emit {
    /// The packet will be edited after this call: copy it now.
    Snapshot,
    /// The packet is final: share the buffer (or send the original to the last output).
    Final,
}

/// What the datapath provides to the walk.
pub trait Sink<P: PacketBuf> {
    /// Send `pkt` (as it is now) to `port` (a port number, or OFPP_LOCAL), on `queue` if a
    /// set-queue action chose one.
    fn output(&mut self, port: u32, queue: Option<u32>, pkt: &P, emit: Emit);
    /// [`Sink::output`] with the packet's key as it is at the output: a tunnel port takes
    /// its VNI (`tunnel_id`) from it. Sinks without tunnel ports need not implement it.
    #[inline(always)]
    fn output_keyed(&mut self, port: u32, queue: Option<u32>, pkt: &P, _key: &FlowKey, emit: Emit) {
        self.output(port, queue, pkt, emit)
    }
    /// A deep copy for group buckets (ALL, and groups in apply-actions, run on copies).
    /// `None` (no buffer) skips the bucket.
    fn clone_packet(&mut self, pkt: &P) -> Option<P>;
    /// Called for every table entry the packet hits (tracing, tests); free when not used.
    #[inline(always)]
    fn table_hit(&mut self, _table_id: u8, _uid: u64) {}
    /// A trace ([`crate::trace`]): the walk leaves counters, meter buckets, MAC learning
    /// and the packet-in queue alone and reports each step to [`Sink::observe`]. A
    /// constant, so that the datapath's walk compiles without either.
    const TRACING: bool = false;
    /// One step of the walk, with the packet's key and the verdict so far after it.
    #[inline(always)]
    fn observe(&mut self, _event: Event<'_>, _key: &FlowKey, _verdict: &Verdict) {}
}

/// A summary of what happened to one packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Calls made to [`Sink::output`].
    pub outputs: u32,
    /// Packet-in records queued (or dropped for a full queue).
    pub packet_ins: u32,
    /// Packet-ins refused by the per-port rate limit (see [`crate::PacketInLimiter`]).
    pub packet_ins_limited: u32,
    /// Tables looked up.
    pub lookups: u32,
    /// A meter band dropped the packet.
    pub meter_drop: bool,
    /// A TTL decrement found TTL 0 or 1: the packet went to the controller, not out.
    pub invalid_ttl: bool,
    /// Actions that could not apply to this packet (pop of an absent tag, set-field of an
    /// absent header...): skipped, as the spec leaves them undefined.
    pub action_errors: u32,
    /// The packet hit [`MAX_RESUBMIT_DEPTH`] or [`MAX_RESUBMITS`] and was dropped: outputs
    /// not yet sent were discarded (outputs sent as snapshots before a later edit are gone).
    pub resubmit_limit: bool,
}

/// Tables [`Pipeline::prefetch_lookup`] looks ahead into.
pub(crate) const PREFETCH_TABLES: usize = 2;
/// Pending outputs kept before they must be emitted as snapshots.
const PENDING: usize = 16;
/// Nesting limit for group chains and packet-out TABLE (group loops are refused at
/// group-mod time; this only bounds the walk whatever happens).
const MAX_DEPTH: u8 = 16;
/// Group buckets one packet may run, all groups together: chains without loops can still
/// fan out (a bucket list naming the same group twice at every level of 16), and this
/// keeps a packet's cost bounded whatever the groups hold. An ALL group flooding to every
/// port of a large switch stays well within it.
const MAX_BUCKETS: u16 = 4096;
/// Nesting limit for `resubmit` (Open vSwitch's is 64 too). Resubmits may go back to an
/// earlier table, so tables can loop; past this the packet is dropped and counted
/// ([`Verdict::resubmit_limit`]).
pub const MAX_RESUBMIT_DEPTH: u8 = 64;
/// Resubmits one packet may run in all, nested or one after another (Open vSwitch: 4096):
/// a table that resubmits to two tables that each do the same fans out exponentially
/// within the depth limit. Past this the packet is dropped and counted.
pub const MAX_RESUBMITS: u16 = 4096;

#[derive(Clone, Copy)]
struct Pending {
    port: u32,
    queue: Option<u32>,
}

/// Outputs recorded against one packet buffer.
struct Outs {
    pending: ArrayVec<Pending, PENDING>,
    queue: Option<u32>,
}

impl Outs {
    fn new(queue: Option<u32>) -> Outs {
        Outs {
            pending: ArrayVec::new(),
            queue,
        }
    }
}

/// Walk-wide state: who to tell, and which entry is acting (for packet-in).
struct Cx<'c, S> {
    ctx: &'c mut WorkerContext,
    sink: &'c mut S,
    verdict: Verdict,
    table_id: u8,
    cookie: u64,
    table_miss: bool,
    depth: u8,
    packet_out: bool,
    /// Group buckets left to run for this packet ([`MAX_BUCKETS`]).
    buckets_left: u16,
    /// Resubmits nested now, and left for this packet.
    resubmit_depth: u8,
    resubmits_left: u16,
}

impl<'c, S> Cx<'c, S> {
    /// The state of one packet's walk from its start: from table `table_id`, or
    /// (`packet_out`) a packet-out's action list.
    #[inline(always)]
    fn new(ctx: &'c mut WorkerContext, sink: &'c mut S, table_id: u8, packet_out: bool) -> Self {
        Cx {
            ctx,
            sink,
            verdict: Verdict::default(),
            table_id,
            cookie: u64::MAX,
            table_miss: false,
            depth: 0,
            packet_out,
            buckets_left: MAX_BUCKETS,
            resubmit_depth: 0,
            resubmits_left: MAX_RESUBMITS,
        }
    }
}

/// A burst's table-0 lookup, made and counted once for the whole burst
/// ([`Pipeline::count_burst`]) when table 0 answers from in_port alone
/// ([`crate::CompiledTable::counts_per_burst`]; A's one rule): every packet of an rx burst
/// has the same in_port, so all of them get the same answer there, and the burst costs
/// table 0 one lookup and one add per counter instead of one each per packet.
/// [`Pipeline::process_in_burst`] then starts each walk from that answer (nested walks, a
/// resubmit to table 0 with another in_port, still look up and count theirs).
#[derive(Clone, Copy, Debug, Default)]
pub struct BurstCounts<'p> {
    /// Table 0's answer for every packet of the burst, counted already: `Some(None)` a
    /// miss. `None`: nothing counted, the walk looks table 0 up and counts.
    table0: Option<Option<(&'p Level, &'p Hit)>>,
}

/// Table 0's answer for a burst from one port ([`Pipeline::burst_answer`]), looked up once
/// and not yet counted: [`BurstAnswer::count`] counts it for the burst and gives the
/// [`BurstCounts`] its walks start from. Between the two, [`Pipeline::burst_outputs`] says
/// whether the answer decides every packet's walk.
#[derive(Clone, Copy, Debug, Default)]
pub struct BurstAnswer<'p> {
    /// Table 0, when it answers from in_port alone; `None`: no answer for the burst.
    table: Option<&'p CompiledTable>,
    /// Its answer (`None`: a miss).
    answer: Option<(&'p Level, &'p Hit)>,
}

impl<'p> BurstAnswer<'p> {
    /// Adds a burst of `packets` packets and `bytes` bytes to table 0's entry (or miss)
    /// and to the table, one add each, if there is an answer; the walks of the burst's
    /// packets ([`Pipeline::process_in_burst`]) then start from it without counting.
    #[inline]
    pub fn count(self, ctx: &WorkerContext, packets: u64, bytes: u64) -> BurstCounts<'p> {
        let Some(table) = self.table else {
            return BurstCounts::default();
        };
        match self.answer {
            Some((level, hit)) => {
                table.counters.add(ctx.worker, TABLE_MATCHES, packets);
                level
                    .counters
                    .add_pair(ctx.worker, 2 * hit.slot as usize, packets, bytes);
            }
            None => table.counters.add(ctx.worker, TABLE_MISSES, packets),
        }
        BurstCounts {
            table0: Some(self.answer),
        }
    }
}

/// The most ports [`Pipeline::burst_outputs`] lists; a burst whose packets would go to
/// more is walked packet by packet.
pub const BURST_OUTPUTS: usize = 16;

#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

impl Pipeline {
    /// Runs `pkt` (whose key is `key`, as [`packet::extract`] made it with in_port set)
    /// through the tables from table 0. `key` follows every edit; on return it describes the
    /// packet as it was last edited. Counts every hit at once (a worker walking bursts uses
    /// [`process_in_burst`](Self::process_in_burst)).
    pub fn process<P: PacketBuf, S: Sink<P>>(
        &self,
        pkt: &mut P,
        key: &mut FlowKey,
        ctx: &mut WorkerContext,
        sink: &mut S,
    ) -> Verdict {
        let mut cx = Cx::new(ctx, sink, 0, false);
        self.walk_inline(0, pkt, key, &mut cx, Emit::Final, None, false, None);
        cx.verdict
    }

    /// [`process`](Self::process) for one packet of a burst whose table-0 counts
    /// [`count_burst`](Self::count_burst) already added (`counts`, from the same version).
    pub fn process_in_burst<'p, P: PacketBuf, S: Sink<P>>(
        &'p self,
        pkt: &mut P,
        key: &mut FlowKey,
        ctx: &mut WorkerContext,
        sink: &mut S,
        counts: BurstCounts<'p>,
    ) -> Verdict {
        let mut cx = Cx::new(ctx, sink, 0, false);
        self.walk_inline(
            0,
            pkt,
            key,
            &mut cx,
            Emit::Final,
            counts.table0,
            false,
            None,
        );
        cx.verdict
    }

    /// [`process_in_burst`](Self::process_in_burst) for a caller that sends the usual
    /// packet itself: when the walk ends with one output left to emit, to a plain port
    /// (not IN_PORT, ALL or FLOOD, not the ingress port, not a port that does not
    /// forward) with no queue set, and the verdict has no action error, invalid TTL, meter
    /// drop or resubmit limit (a caller need not look at those for a returned port),
    /// that output is not handed to `sink` but returned, and
    /// the caller sends the packet there as it is on return (final: [`Emit::Final`]),
    /// after every output the sink got, as the walk's own flush would have. It counts in
    /// [`Verdict::outputs`]. A worker so sends a packet with one final output straight to
    /// its port's tx batch, without the sink's call and its deferred-output record
    /// (`tests/direct_output.rs` compares it with [`process`](Self::process)); the worker
    /// walks with [`process_in_burst_tallied`](Self::process_in_burst_tallied), which is
    /// this with the table matches and misses added once per burst instead of after each
    /// packet.
    pub fn process_in_burst_direct<'p, P: PacketBuf, S: Sink<P>>(
        &'p self,
        pkt: &mut P,
        key: &mut FlowKey,
        ctx: &mut WorkerContext,
        sink: &mut S,
        counts: BurstCounts<'p>,
    ) -> (Verdict, Option<u32>) {
        let r = self.process_in_burst_tallied(pkt, key, ctx, sink, counts);
        self.add_burst_matches(ctx);
        r
    }

    /// [`process_in_burst_direct`](Self::process_in_burst_direct) for a worker's burst:
    /// each lookup's table match or miss is counted in `ctx` (one add to the worker's own
    /// line) rather than in the table's counter block (a multiply, bounds checks and an
    /// add per table per packet), and [`add_burst_matches`](Self::add_burst_matches) adds
    /// the burst's matches and misses to the tables, once per table, after its last
    /// packet. The caller must call it then, with this same version (the counts are this
    /// version's tables'): the tables' counters are exact at the end of every burst.
    #[inline]
    pub fn process_in_burst_tallied<'p, P: PacketBuf, S: Sink<P>>(
        &'p self,
        pkt: &mut P,
        key: &mut FlowKey,
        ctx: &mut WorkerContext,
        sink: &mut S,
        counts: BurstCounts<'p>,
    ) -> (Verdict, Option<u32>) {
        let mut cx = Cx::new(ctx, sink, 0, false);
        // Two copies of the walk: the versions whose table 0 has no simple entry walk
        // without the plain prefix's code around theirs.
        let out = if self.plain_walks {
            let prefix = Some(Ok(()));
            self.walk_inline(
                0,
                pkt,
                key,
                &mut cx,
                Emit::Final,
                counts.table0,
                true,
                prefix,
            )
        } else {
            self.walk_inline(0, pkt, key, &mut cx, Emit::Final, counts.table0, true, None)
        };
        (cx.verdict, out)
    }

    /// Adds the table matches and misses that
    /// [`process_in_burst_tallied`](Self::process_in_burst_tallied)
    /// counted in `ctx` to this version's tables, once per table, and zeroes them. Out of
    /// line: once per burst.
    #[inline(never)]
    pub fn add_burst_matches(&self, ctx: &mut WorkerContext) {
        let worker = ctx.worker;
        let counts = ctx
            .burst_matches
            .iter_mut()
            .zip(ctx.burst_misses.iter_mut());
        for (table, (n, m)) in self.tables.iter().zip(counts) {
            if *n != 0 {
                table.counters.add(worker, TABLE_MATCHES, *n);
                *n = 0;
            }
            if *m != 0 {
                table.counters.add(worker, TABLE_MISSES, *m);
                *m = 0;
            }
        }
    }

    /// Adds table 0's counts for a burst of `packets` packets and `bytes` bytes that all
    /// arrived on `in_port` (their keys' in_port: not a decapsulated burst, whose packets
    /// each take their tunnel port's), when table 0 gives every such packet the same answer
    /// ([`CompiledTable::counts_per_burst`]); what it returns tells
    /// [`process_in_burst`](Self::process_in_burst) whether it did. Every packet of the
    /// burst must then be walked with `process_in_burst` and this version (a packet that
    /// is not is counted all the same).
    #[inline]
    pub fn count_burst(
        &self,
        ctx: &WorkerContext,
        in_port: u32,
        packets: u64,
        bytes: u64,
    ) -> BurstCounts<'_> {
        self.burst_answer(in_port).count(ctx, packets, bytes)
    }

    /// Table 0's answer for the packets of a burst that all arrived on `in_port` (their
    /// keys' in_port: not a decapsulated burst), when table 0 gives every such packet the
    /// same answer ([`CompiledTable::counts_per_burst`]); not counted yet
    /// ([`BurstAnswer::count`]: [`count_burst`](Self::count_burst) in two steps).
    #[inline]
    pub fn burst_answer(&self, in_port: u32) -> BurstAnswer<'_> {
        let Some(table) = self.tables.first().filter(|t| t.counts_per_burst) else {
            return BurstAnswer::default();
        };
        let mut key = FlowKey::default();
        key.set(Field::InPort, u128::from(in_port));
        BurstAnswer {
            table: Some(table),
            answer: table.lookup_hit(&key.words),
        }
    }

    /// Whether [`burst_outputs`](Self::burst_outputs) can answer for some port: table 0
    /// answers from in_port alone and has an entry, or drops its misses. A worker asks
    /// this first (a few loads), and looks table 0 up for the burst only when it can.
    #[inline]
    pub fn may_decide_bursts(&self) -> bool {
        self.tables.first().is_some_and(|t| {
            t.counts_per_burst
                && (t.miss == MissPolicy::Drop || t.levels.iter().any(|l| !l.hits.is_empty()))
        })
    }

    /// The ports every packet of a burst from `in_port` goes out of, in the order its walk
    /// would emit them, when table 0's answer for the burst decides the whole walk: a hit
    /// on an entry that does nothing but output ([`crate::table::Hit::simple`]: no goto,
    /// meter, write-actions or edits), or a miss in a table whose misses drop (no ports).
    /// The ports are resolved as the walk resolves them for a packet from `in_port`
    /// (IN_PORT, ALL, FLOOD expanded; a plain output to `in_port` itself or to a port
    /// that does not forward left out), and every output is final ([`Emit::Final`]:
    /// nothing edits the packet after it). `None`: the packets must be walked (any other
    /// answer, none, or more than [`BURST_OUTPUTS`] ports). The packets' key is not read:
    /// a worker that sends them so extracts nothing. `tests/burst_outputs.rs` compares
    /// this with the walk.
    pub fn burst_outputs(
        &self,
        answer: &BurstAnswer<'_>,
        in_port: u32,
    ) -> Option<ArrayVec<u32, BURST_OUTPUTS>> {
        let table = answer.table?;
        let mut outs = ArrayVec::new();
        let Some((_, hit)) = answer.answer else {
            return (table.miss == MissPolicy::Drop).then_some(outs);
        };
        if !hit.simple || hit.goto.is_some() {
            return None;
        }
        // As `flush` and `emit_reserved` emit them.
        for &port in &hit.outs[..usize::from(hit.n_outs)] {
            match port {
                OFPP_IN_PORT => outs.try_push(in_port).ok()?,
                OFPP_ALL | OFPP_FLOOD => {
                    let flood = port == OFPP_FLOOD;
                    for info in self.ports.iter() {
                        if info.port_no == in_port || !info.forwards() || (flood && info.no_flood) {
                            continue;
                        }
                        outs.try_push(info.port_no).ok()?;
                    }
                }
                port if port == in_port || self.ports.blocks(port) => {}
                port => outs.try_push(port).ok()?,
            }
        }
        Some(outs)
    }

    /// The key [`process`](Self::process) needs for `frame` arriving on `in_port` under
    /// this version: [`Pipeline::extract_plan`] (only the words some table or action of
    /// the version reads; the others keep what `key` held). A key made here is for this
    /// version only: a worker extracts and walks a burst with the same version.
    #[inline]
    pub fn extract(&self, frame: &[u8], in_port: u32, key: &mut FlowKey) {
        self.extract_plan.extract(frame, in_port, key);
    }

    /// Hands `prefetch` the addresses the lookups of `key` in the first tables will read
    /// first, for hash tables too big to stay cached. A worker calls it for every packet of
    /// a burst before walking the first, so that the burst's cache misses overlap. Later
    /// tables are prefetched with the key as it is now (a guess when an earlier table
    /// writes metadata or edits the packet: a wrong guess costs a wasted prefetch, never a
    /// wrong answer). Does nothing when [`Pipeline::prefetches`] is false (small tables):
    /// a worker can then skip calling it for the burst.
    #[inline]
    pub fn prefetch_lookup(&self, key: &FlowKey, mut prefetch: impl FnMut(*const u8)) {
        if !self.prefetches {
            return;
        }
        for t in self.tables.iter().take(PREFETCH_TABLES) {
            if !t.prefetches {
                continue;
            }
            for l in t.levels.iter() {
                match &l.classifier {
                    Classifier::Exact(c) => c.prefetch(&key.words, &mut prefetch),
                    Classifier::Tuple(c) => c.prefetch(&key.words, &mut prefetch),
                    Classifier::Inline(c) => c.prefetch(&key.words, &mut prefetch),
                    Classifier::Empty(_) | Classifier::Port(_) | Classifier::Linear(_) => {}
                }
            }
        }
    }

    /// [`Self::prefetch_lookup`] for every key of a burst, table by table: each table's
    /// classifier is found and tested once per burst, not once per packet, and the first
    /// table's addresses are all handed out before the second's (the first lookups' lines
    /// are asked for first). The worker calls it once per burst, after extracting the keys.
    #[inline]
    pub fn prefetch_lookups(&self, keys: &[FlowKey], mut prefetch: impl FnMut(*const u8)) {
        if !self.prefetches {
            return;
        }
        for t in self.tables.iter().take(PREFETCH_TABLES) {
            if !t.prefetches {
                continue;
            }
            for l in t.levels.iter() {
                match &l.classifier {
                    Classifier::Exact(c) => c.prefetch_keys(keys, &mut prefetch),
                    Classifier::Tuple(c) => c.prefetch_keys(keys, &mut prefetch),
                    Classifier::Inline(c) => c.prefetch_keys(keys, &mut prefetch),
                    Classifier::Empty(_) | Classifier::Port(_) | Classifier::Linear(_) => {}
                }
            }
        }
    }

    /// PACKET_OUT: runs `actions` on the packet; an output to OFPP_TABLE runs the pipeline
    /// from table 0 (`key`'s in_port is the packet-out's in_port).
    pub fn packet_out<P: PacketBuf, S: Sink<P>>(
        &self,
        actions: &[Action],
        pkt: &mut P,
        key: &mut FlowKey,
        ctx: &mut WorkerContext,
        sink: &mut S,
    ) -> Verdict {
        let mut cx = Cx::new(ctx, sink, 0xff, true);
        let mut outs = Outs::new(None);
        for a in actions {
            if self.action(a, pkt, key, &mut cx, &mut outs, false) == Flow::Stop {
                break;
            }
        }
        self.flush(&mut outs, pkt, key, &mut cx, Emit::Final);
        cx.verdict
    }

    /// [`walk_inline`](Self::walk_inline) as a call, for the nested walks (resubmit,
    /// packet-out to TABLE): one copy of the walk for them.
    #[inline(never)]
    fn walk<P: PacketBuf, S: Sink<P>>(
        &self,
        start: usize,
        pkt: &mut P,
        key: &mut FlowKey,
        cx: &mut Cx<'_, S>,
        last_emit: Emit,
    ) {
        self.walk_inline(start, pkt, key, cx, last_emit, None, false, None);
    }

    /// The rest of a direct walk whose plain prefix stopped at table `t` (its answer
    /// `table0`, counted, and the prefix's one output `one`, if any): out of line, so
    /// that the walk inlined into the worker's loop keeps the prefix and the usual walk
    /// for versions without it, and this copy serves the packets the prefix hands over.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn walk_rest<'p, P: PacketBuf, S: Sink<P>>(
        &'p self,
        t: usize,
        pkt: &mut P,
        key: &mut FlowKey,
        cx: &mut Cx<'_, S>,
        last_emit: Emit,
        table0: Option<(&'p Level, &'p Hit)>,
        one: Option<u32>,
    ) -> Option<u32> {
        self.walk_inline(t, pkt, key, cx, last_emit, Some(table0), true, one.map(Err))
    }

    /// The walk from table `start`; inlined into [`process`](Self::process), the
    /// per-packet entry, so that a packet's walk costs no call and its walk-wide state
    /// stays in the caller's frame. `direct` (a constant at each call): the last pending
    /// output is returned rather than emitted when it is the only one and a plain port
    /// ([`process_in_burst_direct`](Self::process_in_burst_direct)); always `None`
    /// otherwise. With `direct` the walk's table matches and misses are also counted in
    /// the context (`WorkerContext::burst_matches`, `burst_misses`), for
    /// [`Pipeline::add_burst_matches`] to add. `prefix` (with `direct` only):
    /// `Some(Ok(()))` walks the plain prefix first (`walk_rest` takes over where it
    /// stops); `Some(Err(port))` starts with that output pending (the prefix's, carried
    /// into `walk_rest`); `None` neither.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn walk_inline<'p, P: PacketBuf, S: Sink<P>>(
        &'p self,
        start: usize,
        pkt: &mut P,
        key: &mut FlowKey,
        cx: &mut Cx<'_, S>,
        last_emit: Emit,
        mut table0: Option<Option<(&'p Level, &'p Hit)>>,
        direct: bool,
        prefix: Option<Result<(), u32>>,
    ) -> Option<u32> {
        // Made on the first write-actions only: most walks never write one, and building
        // an empty set costs more than its absence.
        let mut set: Option<ActionSet> = None;
        let worker = cx.ctx.worker;
        let mut t = start;
        if direct && !S::TRACING && prefix == Some(Ok(())) {
            // The plain prefix: simple hits with at most one output among them, each
            // going forward or ending the walk. Nothing in it can set a queue, an action
            // set, a rare verdict or edit the packet, so its one output is kept in a
            // register (not recorded as pending) and the end needs only the port's tests.
            // Any other answer is counted here and handed to the loop below as table 0's
            // burst answer is (`table0`: counted already).
            let mut one: Option<u32> = None;
            while let Some(table) = self.tables.get(t) {
                let (answer, counted) = match table0.take() {
                    Some(a) => (a, true),
                    None => (table.lookup_fast(&key.words), false),
                };
                if !counted {
                    match answer {
                        None => cx.ctx.burst_misses[t % 256] += 1,
                        Some((level, hit)) => {
                            cx.ctx.burst_matches[t % 256] += 1;
                            let len = pkt.wire_len() as u64;
                            level
                                .counters
                                .add_pair_known(worker, 2 * hit.slot as usize, 1, len);
                        }
                    }
                }
                let Some((level, hit)) = answer.filter(|(_, h)| {
                    h.simple
                        && u32::from(h.n_outs) + u32::from(one.is_some()) <= 1
                        && h.goto.is_none_or(|g| usize::from(g) > t)
                }) else {
                    return self.walk_rest(t, pkt, key, cx, last_emit, answer, one);
                };
                cx.verdict.lookups += 1;
                let uid = level.rules.get(hit.slot as usize).map_or(0, |r| r.uid);
                cx.sink.table_hit(t as u8, uid);
                if hit.n_outs != 0 {
                    one = Some(hit.outs[0]);
                }
                if hit.writes_metadata {
                    let (value, mask) = (hit.meta_value, hit.meta_mask);
                    key.set_metadata((key.metadata() & !mask) | (value & mask));
                }
                match hit.goto {
                    Some(next) => t = usize::from(next),
                    None => match one {
                        None => return None,
                        Some(port) if port <= OFPP_MAX => {
                            if port == key.in_port() || self.ports.blocks(port) {
                                return None;
                            }
                            cx.verdict.outputs += 1;
                            return Some(port);
                        }
                        Some(port) => {
                            let mut outs = Outs::new(None);
                            outs.pending.push(Pending { port, queue: None });
                            self.flush(&mut outs, pkt, key, cx, last_emit);
                            return None;
                        }
                    },
                }
            }
            // Past the last table (a goto no flow-mod accepts): as the loop below ends.
            return self.walk_rest(t, pkt, key, cx, last_emit, None, one);
        }
        let mut outs = Outs::new(None);
        // A plain prefix's one output, carried into the rest of its walk.
        if let Some(Err(port)) = prefix {
            outs.pending.push(Pending { port, queue: None });
        }
        let run_set = loop {
            let Some(table) = self.tables.get(t) else {
                break false;
            };
            cx.verdict.lookups += 1;
            // Table 0 (the first lookup) looked up and counted already for the burst
            // ([`Pipeline::count_burst`]), or the table the plain prefix stopped at;
            // every later lookup counts.
            let (answer, counted) = match table0.take() {
                Some(answer) => (answer, true),
                None => (table.lookup_fast(&key.words), false),
            };
            let Some((level, hit)) = answer else {
                if !S::TRACING && !counted {
                    if direct {
                        cx.ctx.burst_misses[t % 256] += 1;
                    } else {
                        table.counters.add_known(worker, TABLE_MISSES, 1);
                    }
                }
                let miss = Event::Miss {
                    table: t as u8,
                    policy: table.miss,
                };
                cx.sink.observe(miss, key, &cx.verdict);
                cx.table_id = t as u8;
                cx.cookie = u64::MAX;
                match table.miss {
                    MissPolicy::Drop => break false,
                    MissPolicy::Controller { max_len } => {
                        self.packet_in(pkt, key, cx, PacketInReason::NoMatch, max_len);
                        break false;
                    }
                    MissPolicy::GotoNext => {
                        t += 1;
                        continue;
                    }
                    MissPolicy::Normal => {
                        self.normal(pkt, key, cx, &mut outs);
                        break false;
                    }
                }
            };
            let slot = hit.slot as usize;
            if !S::TRACING && !counted {
                let len = pkt.wire_len() as u64;
                // A table's block holds both table counters, a level's two per slot of
                // its classifier.
                if direct {
                    // Added to the table after the burst (`add_burst_matches`).
                    cx.ctx.burst_matches[t % 256] += 1;
                } else {
                    table.counters.add_known(worker, TABLE_MATCHES, 1);
                }
                level.counters.add_pair_known(worker, 2 * slot, 1, len);
            }
            // Only sinks that want it (tests, traces) read the rule's line for its uid.
            let uid = level.rules.get(slot).map_or(0, |r| r.uid);
            cx.sink.table_hit(t as u8, uid);
            if S::TRACING {
                if let Some(x) = crate::conjunction::explain(table, &key.words) {
                    for (l, s) in x.clauses {
                        let ev = Event::Clause {
                            table: t as u8,
                            rule: &l.rules[s],
                        };
                        cx.sink.observe(ev, key, &cx.verdict);
                    }
                }
                let ev = Event::Hit {
                    table: t as u8,
                    rule: &level.rules[slot],
                };
                cx.sink.observe(ev, key, &cx.verdict);
            }
            let n = usize::from(hit.n_outs);
            // A trace takes the general path, which reports each action.
            if !S::TRACING && hit.simple && outs.pending.remaining_capacity() >= n {
                // The usual entry, run from its hit alone (room checked above: no push
                // can fail). The acting entry is recorded only for an action set to come
                // (its packet-in and resubmit read it): a simple hit's outputs read none
                // of it, a later entry with instructions records itself, a miss resets it.
                if set.is_some() {
                    cx.table_id = t as u8;
                    cx.cookie = hit.cookie;
                    cx.table_miss = hit.table_miss;
                }
                for &port in &hit.outs[..n.min(hit.outs.len())] {
                    let _ = outs.pending.try_push(Pending {
                        port,
                        queue: outs.queue,
                    });
                }
                if hit.writes_metadata {
                    let (value, mask) = (hit.meta_value, hit.meta_mask);
                    key.set_metadata((key.metadata() & !mask) | (value & mask));
                }
            } else {
                cx.table_id = t as u8;
                cx.cookie = hit.cookie;
                cx.table_miss = hit.table_miss;
                if self.instructions(level, slot, pkt, key, cx, &mut outs, &mut set) == Flow::Stop {
                    break false;
                }
            }
            match hit.goto {
                // Only ever forward: the walk visits each table at most once whatever the
                // tables hold, so no entry can make it loop. Flow-mods refuse other gotos;
                // one that got here anyway ends the walk as a drop (action set discarded).
                Some(next) if usize::from(next) > t => {
                    let ev = Event::Goto {
                        to: next,
                        refused: false,
                    };
                    cx.sink.observe(ev, key, &cx.verdict);
                    t = usize::from(next)
                }
                Some(next) => {
                    cx.verdict.action_errors += 1;
                    let ev = Event::Goto {
                        to: next,
                        refused: true,
                    };
                    cx.sink.observe(ev, key, &cx.verdict);
                    break false;
                }
                None => break true,
            }
        };
        if let (true, Some(set)) = (run_set, &set) {
            cx.sink.observe(Event::ActionSet, key, &cx.verdict);
            for a in set.ordered() {
                if self.action(&a, pkt, key, cx, &mut outs, true) == Flow::Stop {
                    break;
                }
            }
        }
        if cx.verdict.resubmit_limit {
            outs.pending.clear();
        }
        if direct {
            match *outs.pending.as_slice() {
                // Nothing left to emit (outputs nested walks made, a drop): no flush.
                [] => return None,
                // As `flush` would emit it, but to the caller.
                [p] if p.queue.is_none()
                    && p.port <= OFPP_MAX
                    && cx.verdict.action_errors == 0
                    && !(cx.verdict.invalid_ttl | cx.verdict.meter_drop) =>
                {
                    if p.port == key.in_port() || self.ports.blocks(p.port) {
                        return None;
                    }
                    cx.verdict.outputs += 1;
                    return Some(p.port);
                }
                _ => {}
            }
        }
        self.flush(&mut outs, pkt, key, cx, last_emit);
        None
    }

    /// An entry's instructions but goto (which [`crate::table::Hit`] holds), in the order
    /// of OpenFlow 1.3 section 5.9: meter, apply-actions, clear-actions, write-actions,
    /// write-metadata. Takes the entry as its level and slot (the entry's rule is read
    /// here, not in the walk, which reads only the hit for the usual entry).
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn instructions<P: PacketBuf, S: Sink<P>>(
        &self,
        level: &Level,
        slot: usize,
        pkt: &mut P,
        key: &mut FlowKey,
        cx: &mut Cx<'_, S>,
        outs: &mut Outs,
        set: &mut Option<ActionSet>,
    ) -> Flow {
        let insts = &*level.rules[slot].insts;
        if let Some(m) = insts.meter {
            if self.meter(m, pkt, key, cx, outs) == Flow::Stop {
                return Flow::Stop;
            }
        }
        if let Some(apply) = &insts.apply {
            for a in apply.iter() {
                // The common action, recorded here without the call to `action`.
                if let Action::Output { port, .. } = *a {
                    if port != OFPP_CONTROLLER
                        && port != OFPP_NORMAL
                        && port != OFPP_TABLE
                        && !outs.pending.is_full()
                    {
                        outs.pending.push(Pending {
                            port,
                            queue: outs.queue,
                        });
                        if S::TRACING {
                            let ev = Event::Action {
                                action: a,
                                error: false,
                            };
                            cx.sink.observe(ev, key, &cx.verdict);
                        }
                        continue;
                    }
                }
                if self.action(a, pkt, key, cx, outs, false) == Flow::Stop {
                    return Flow::Stop;
                }
            }
        }
        if insts.clear {
            *set = None;
        }
        if let Some(w) = &insts.write {
            set.get_or_insert_with(ActionSet::default).merge(&w.set);
        }
        if let Some((value, mask)) = insts.metadata {
            key.set_metadata((key.metadata() & !mask) | (value & mask));
            if S::TRACING {
                let ev = Event::Metadata {
                    value: key.metadata(),
                };
                cx.sink.observe(ev, key, &cx.verdict);
            }
        }
        Flow::Continue
    }

    /// Emits pending outputs. Inlined for the usual one or two outputs to plain ports; the
    /// reserved ports go through [`Self::emit_reserved`].
    #[inline]
    fn flush<P: PacketBuf, S: Sink<P>>(
        &self,
        outs: &mut Outs,
        pkt: &P,
        key: &FlowKey,
        cx: &mut Cx<'_, S>,
        emit: Emit,
    ) {
        let in_port = key.in_port();
        for i in 0..outs.pending.len() {
            let p = outs.pending[i];
            match p.port {
                OFPP_IN_PORT | OFPP_ALL | OFPP_FLOOD => {
                    self.emit_reserved(p, in_port, pkt, key, cx, emit)
                }
                port => {
                    // Sending back out of the ingress port needs OFPP_IN_PORT (spec 4.5).
                    if port == in_port || self.ports.blocks(port) {
                        continue;
                    }
                    cx.sink.output_keyed(port, p.queue, pkt, key, emit);
                    cx.verdict.outputs += 1;
                }
            }
        }
        outs.pending.clear();
    }

    /// An output to OFPP_IN_PORT, OFPP_ALL or OFPP_FLOOD.
    #[inline(never)]
    fn emit_reserved<P: PacketBuf, S: Sink<P>>(
        &self,
        p: Pending,
        in_port: u32,
        pkt: &P,
        key: &FlowKey,
        cx: &mut Cx<'_, S>,
        emit: Emit,
    ) {
        if p.port == OFPP_IN_PORT {
            cx.sink.output_keyed(in_port, p.queue, pkt, key, emit);
            cx.verdict.outputs += 1;
            return;
        }
        let flood = p.port == OFPP_FLOOD;
        for info in self.ports.iter() {
            if info.port_no == in_port || !info.forwards() || (flood && info.no_flood) {
                continue;
            }
            cx.sink.output_keyed(info.port_no, p.queue, pkt, key, emit);
            cx.verdict.outputs += 1;
        }
    }

    #[inline]
    fn before_edit<P: PacketBuf, S: Sink<P>>(
        &self,
        outs: &mut Outs,
        pkt: &P,
        key: &FlowKey,
        cx: &mut Cx<'_, S>,
    ) {
        if !outs.pending.is_empty() {
            self.flush(outs, pkt, key, cx, Emit::Snapshot);
        }
    }

    fn edit_result<S>(&self, r: Result<(), EditError>, cx: &mut Cx<'_, S>) {
        if r.is_err() {
            cx.verdict.action_errors += 1;
        }
    }

    /// Runs one action. `in_place`: a group may use the packet itself for its last bucket
    /// (true only for the action set, after which nothing else happens to the packet).
    #[inline(always)]
    fn action<P: PacketBuf, S: Sink<P>>(
        &self,
        a: &Action,
        pkt: &mut P,
        key: &mut FlowKey,
        cx: &mut Cx<'_, S>,
        outs: &mut Outs,
        in_place: bool,
    ) -> Flow {
        if !S::TRACING {
            return self.run_action(a, pkt, key, cx, outs, in_place);
        }
        // A group is told before its buckets run, every other action after it ran, with
        // the key it left.
        if let Action::Group(_) = a {
            let ev = Event::Action {
                action: a,
                error: false,
            };
            cx.sink.observe(ev, key, &cx.verdict);
            return self.run_action(a, pkt, key, cx, outs, in_place);
        }
        let errors = cx.verdict.action_errors;
        let flow = self.run_action(a, pkt, key, cx, outs, in_place);
        let ev = Event::Action {
            action: a,
            error: cx.verdict.action_errors > errors,
        };
        cx.sink.observe(ev, key, &cx.verdict);
        flow
    }

    fn run_action<P: PacketBuf, S: Sink<P>>(
        &self,
        a: &Action,
        pkt: &mut P,
        key: &mut FlowKey,
        cx: &mut Cx<'_, S>,
        outs: &mut Outs,
        in_place: bool,
    ) -> Flow {
        match *a {
            Action::Output { port, max_len } => match port {
                OFPP_CONTROLLER => {
                    let reason = if cx.table_miss {
                        PacketInReason::NoMatch
                    } else {
                        PacketInReason::Action
                    };
                    self.packet_in(pkt, key, cx, reason, max_len);
                }
                OFPP_NORMAL => self.normal(pkt, key, cx, outs),
                OFPP_TABLE => {
                    if cx.packet_out && cx.depth < MAX_DEPTH {
                        self.before_edit(outs, pkt, key, cx);
                        cx.depth += 1;
                        let saved = (cx.table_id, cx.cookie, cx.table_miss, cx.packet_out);
                        cx.packet_out = false;
                        self.walk(0, pkt, key, cx, Emit::Snapshot);
                        (cx.table_id, cx.cookie, cx.table_miss, cx.packet_out) = saved;
                        cx.depth -= 1;
                    } else {
                        cx.verdict.action_errors += 1;
                    }
                }
                _ => {
                    if outs.pending.is_full() {
                        self.flush(outs, pkt, key, cx, Emit::Snapshot);
                    }
                    outs.pending.push(Pending {
                        port,
                        queue: outs.queue,
                    });
                }
            },
            Action::SetQueue(q) => outs.queue = Some(q),
            Action::Group(g) => return self.group(g, pkt, key, cx, outs, in_place),
            Action::SetField { field, value } => {
                if field.is_register() {
                    key.set(field, value);
                } else {
                    self.before_edit(outs, pkt, key, cx);
                    let r = packet::set_field(pkt, key, field, value);
                    self.edit_result(r, cx);
                }
            }
            Action::SetFieldMasked {
                field, value, mask, ..
            } => self.write_masked(field, value, mask, pkt, key, cx, outs),
            Action::Move {
                src,
                src_ofs,
                dst,
                dst_ofs,
                n_bits,
            } => {
                let m = low_bits(n_bits);
                let bits = (key.get(src) >> src_ofs) & m;
                let dst_ofs = u32::from(dst_ofs);
                self.write_masked(dst, bits << dst_ofs, m << dst_ofs, pkt, key, cx, outs);
            }
            Action::Resubmit { in_port, table } => {
                return self.resubmit(in_port, table, pkt, key, cx, outs)
            }
            // Clause entries never match as entries; a conjunction reached any other way
            // (none can be built) does nothing, like a note.
            Action::Note(_) | Action::Conjunction { .. } => {}
            Action::CtClear => clear_ct(key),
            Action::Ct(ref ct) => return self.conntrack(ct, pkt, key, cx, outs),
            Action::PushVlan(t) => {
                self.before_edit(outs, pkt, key, cx);
                let r = packet::push_vlan(pkt, key, t);
                self.edit_result(r, cx);
            }
            Action::PopVlan => {
                self.before_edit(outs, pkt, key, cx);
                let r = packet::pop_vlan(pkt, key);
                self.edit_result(r, cx);
            }
            Action::PushMpls(t) => {
                self.before_edit(outs, pkt, key, cx);
                let r = packet::push_mpls(pkt, key, t);
                self.edit_result(r, cx);
            }
            Action::PopMpls(t) => {
                self.before_edit(outs, pkt, key, cx);
                let r = packet::pop_mpls(pkt, key, t);
                self.edit_result(r, cx);
            }
            Action::PushPbb(t) => {
                self.before_edit(outs, pkt, key, cx);
                let r = packet::push_pbb(pkt, key, t);
                self.edit_result(r, cx);
            }
            Action::PopPbb => {
                self.before_edit(outs, pkt, key, cx);
                let r = packet::pop_pbb(pkt, key);
                self.edit_result(r, cx);
            }
            Action::SetMplsTtl(ttl) => {
                self.before_edit(outs, pkt, key, cx);
                let r = packet::set_mpls_ttl(pkt, key, ttl);
                self.edit_result(r, cx);
            }
            Action::SetNwTtl(ttl) => {
                self.before_edit(outs, pkt, key, cx);
                let r = packet::set_nw_ttl(pkt, key, ttl);
                self.edit_result(r, cx);
            }
            Action::DecMplsTtl | Action::DecNwTtl => {
                self.before_edit(outs, pkt, key, cx);
                let r = if *a == Action::DecNwTtl {
                    packet::dec_nw_ttl(pkt, key)
                } else {
                    packet::dec_mpls_ttl(pkt, key)
                };
                if r == Err(EditError::InvalidTtl) {
                    cx.verdict.invalid_ttl = true;
                    self.packet_in(pkt, key, cx, PacketInReason::InvalidTtl, OFPCML_NO_BUFFER);
                    return Flow::Stop;
                }
                self.edit_result(r, cx);
            }
            Action::CopyTtlOut => {
                self.before_edit(outs, pkt, key, cx);
                let r = packet::copy_ttl_out(pkt, key);
                self.edit_result(r, cx);
            }
            Action::CopyTtlIn => {
                self.before_edit(outs, pkt, key, cx);
                let r = packet::copy_ttl_in(pkt, key);
                self.edit_result(r, cx);
            }
        }
        Flow::Continue
    }

    /// Sets the bits of `field` under `mask` (move, load): registers and metadata in the
    /// key, header fields in the frame too.
    #[allow(clippy::too_many_arguments)]
    fn write_masked<P: PacketBuf, S: Sink<P>>(
        &self,
        field: Field,
        value: u128,
        mask: u128,
        pkt: &mut P,
        key: &mut FlowKey,
        cx: &mut Cx<'_, S>,
        outs: &mut Outs,
    ) {
        let new = (key.get(field) & !mask) | (value & mask);
        if field == Field::Metadata {
            key.set_metadata(new as u64);
        } else if field.is_register() {
            key.set(field, new);
        } else {
            self.before_edit(outs, pkt, key, cx);
            let r = packet::set_field(pkt, key, field, new);
            self.edit_result(r, cx);
        }
    }

    /// `resubmit`: a walk from `table` nested in this one. Outputs recorded so far are
    /// sent first (as snapshots: the nested walk may edit the packet), the nested walk's own
    /// outputs are snapshots too, and its write-actions form their own action set, run when
    /// it ends. Past [`MAX_RESUBMIT_DEPTH`] or [`MAX_RESUBMITS`] the packet is dropped.
    fn resubmit<P: PacketBuf, S: Sink<P>>(
        &self,
        in_port: Option<u32>,
        table: Option<u8>,
        pkt: &mut P,
        key: &mut FlowKey,
        cx: &mut Cx<'_, S>,
        outs: &mut Outs,
    ) -> Flow {
        if cx.resubmit_depth >= MAX_RESUBMIT_DEPTH || cx.resubmits_left == 0 {
            cx.verdict.resubmit_limit = true;
        }
        if cx.verdict.resubmit_limit {
            outs.pending.clear();
            return Flow::Stop;
        }
        cx.resubmits_left -= 1;
        let t = table.unwrap_or(cx.table_id);
        self.before_edit(outs, pkt, key, cx);
        let saved_port = key.in_port();
        if let Some(p) = in_port {
            key.set(Field::InPort, p.into());
        }
        let saved = (cx.table_id, cx.cookie, cx.table_miss);
        cx.resubmit_depth += 1;
        self.walk(usize::from(t), pkt, key, cx, Emit::Snapshot);
        cx.resubmit_depth -= 1;
        (cx.table_id, cx.cookie, cx.table_miss) = saved;
        if in_port.is_some() {
            key.set(Field::InPort, saved_port.into());
        }
        if cx.verdict.resubmit_limit {
            outs.pending.clear();
            return Flow::Stop;
        }
        Flow::Continue
    }

    /// `ct(...)`: tracks the packet in the worker's shard, writes the `ct_*` key fields,
    /// makes NAT's edits, and with `table=T` walks from T (a resubmit for the bounds:
    /// [`MAX_RESUBMIT_DEPTH`], [`MAX_RESUBMITS`]), after which the rest of the actions see
    /// the packet untracked again, as in Open vSwitch (but with NAT's edits kept).
    fn conntrack<P: PacketBuf, S: Sink<P>>(
        &self,
        ct: &CtAction,
        pkt: &mut P,
        key: &mut FlowKey,
        cx: &mut Cx<'_, S>,
        outs: &mut Outs,
    ) -> Flow {
        let ip = key.layers.intersects(Layers::IPV4 | Layers::IPV6);
        let now_ms = cx.ctx.now_ms();
        let l3 = usize::from(key.offsets.l3);
        // The tracker's result is read where it lies (in the tracker) and only what the key
        // and NAT need is taken from it.
        let mut rewrite = None;
        match (cx.ctx.conntrack.as_deref_mut(), ip) {
            (Some(tracker), true) if l3 < pkt.data().len() => {
                let field_zone;
                let opts = match ct.zone {
                    CtZone::Imm(_) => &ct.track,
                    CtZone::Field { field, ofs } => {
                        field_zone = conntrack::TrackOptions {
                            zone: (key.get(field) >> ofs) as u16,
                            ..ct.track
                        };
                        &field_zone
                    }
                };
                let result = tracker.track_ip_ref(&pkt.data()[l3..], opts, now_ms);
                write_ct(key, result);
                if ct.nat.is_some() && result.rewrite != conntrack::Rewrite::default() {
                    rewrite = Some(result.rewrite);
                }
            }
            _ => {
                let zone = match ct.zone {
                    CtZone::Imm(z) => z,
                    CtZone::Field { field, ofs } => (key.get(field) >> ofs) as u16,
                };
                write_ct(key, &invalid(zone));
            }
        }
        if let Some(rw) = rewrite {
            self.before_edit(outs, pkt, key, cx);
            let r = conntrack::nat::apply(&mut pkt.data_mut()[l3..], &rw);
            if r.is_ok() {
                nat_key(key, &rw);
            } else {
                cx.verdict.action_errors += 1;
            }
        }
        match ct.table {
            Some(t) => {
                let f = self.resubmit(None, Some(t), pkt, key, cx, outs);
                clear_ct(key);
                f
            }
            None => Flow::Continue,
        }
    }

    fn group<P: PacketBuf, S: Sink<P>>(
        &self,
        id: u32,
        pkt: &mut P,
        key: &mut FlowKey,
        cx: &mut Cx<'_, S>,
        outs: &mut Outs,
        in_place: bool,
    ) -> Flow {
        let Some(g) = self.groups.get(id).filter(|_| cx.depth < MAX_DEPTH) else {
            cx.verdict.action_errors += 1;
            let ev = Event::Group { id, buckets: None };
            cx.sink.observe(ev, key, &cx.verdict);
            return Flow::Continue;
        };
        let worker = cx.ctx.worker;
        let len = pkt.wire_len() as u64;
        if !S::TRACING {
            self.groups.count(worker, g, None, len);
        }
        let chosen = g.chosen(&key.words);
        let ev = Event::Group {
            id,
            buckets: Some(chosen.clone()),
        };
        cx.sink.observe(ev, key, &cx.verdict);
        let last = chosen.end.saturating_sub(1);
        cx.depth += 1;
        for b in chosen {
            if cx.buckets_left == 0 {
                cx.verdict.action_errors += 1;
                break;
            }
            cx.buckets_left -= 1;
            if !S::TRACING {
                self.groups.count(worker, g, Some(b), len);
            }
            let ev = Event::Bucket {
                group: id,
                bucket: b,
            };
            cx.sink.observe(ev, key, &cx.verdict);
            let actions = &g.buckets[b].actions;
            if in_place && b == last {
                for a in actions.iter() {
                    if self.action(a, pkt, key, cx, outs, true) == Flow::Stop {
                        break;
                    }
                }
            } else {
                let Some(mut copy) = cx.sink.clone_packet(pkt) else {
                    cx.verdict.action_errors += 1;
                    continue;
                };
                let mut k = *key;
                let mut o = Outs::new(outs.queue);
                for a in actions.iter() {
                    if self.action(a, &mut copy, &mut k, cx, &mut o, true) == Flow::Stop {
                        break;
                    }
                }
                self.flush(&mut o, &copy, &k, cx, Emit::Final);
            }
        }
        cx.depth -= 1;
        Flow::Continue
    }

    fn meter<P: PacketBuf, S: Sink<P>>(
        &self,
        id: u32,
        pkt: &mut P,
        key: &mut FlowKey,
        cx: &mut Cx<'_, S>,
        outs: &mut Outs,
    ) -> Flow {
        let Some(m) = self.meters.get(id) else {
            let ev = Event::Meter { id, verdict: None };
            cx.sink.observe(ev, key, &cx.verdict);
            return Flow::Continue;
        };
        let bytes = pkt.wire_len() as u64;
        let v = if S::TRACING {
            self.meters.peek(cx.ctx.worker, m, bytes, cx.ctx.now_ns)
        } else {
            self.meters.apply(cx.ctx.worker, m, bytes, cx.ctx.now_ns)
        };
        let ev = Event::Meter {
            id,
            verdict: Some(v),
        };
        cx.sink.observe(ev, key, &cx.verdict);
        match v {
            MeterVerdict::Pass => Flow::Continue,
            MeterVerdict::Drop => {
                cx.verdict.meter_drop = true;
                Flow::Stop
            }
            MeterVerdict::Remark(levels) => {
                if key.layers.intersects(Layers::IPV4 | Layers::IPV6) {
                    let dscp = key.get(Field::IpDscp) as u8;
                    let new = remark_dscp(dscp, levels);
                    if new != dscp {
                        self.before_edit(outs, pkt, key, cx);
                        let r = packet::set_field(pkt, key, Field::IpDscp, u128::from(new));
                        self.edit_result(r, cx);
                    }
                }
                Flow::Continue
            }
        }
    }

    fn packet_in<P: PacketBuf, S: Sink<P>>(
        &self,
        pkt: &P,
        key: &FlowKey,
        cx: &mut Cx<'_, S>,
        reason: PacketInReason,
        max_len: u16,
    ) {
        let in_port = key.in_port();
        if self
            .ports
            .get(in_port)
            .is_some_and(|p| p.config.contains(crate::port::PortConfig::NO_PACKET_IN))
        {
            return;
        }
        // Both refusals come before the record is built: a flood costs no allocation.
        if !S::TRACING && !cx.ctx.packet_in_limit.admit(in_port, cx.ctx.now_ns) {
            cx.verdict.packet_ins_limited += 1;
            return;
        }
        if !S::TRACING && cx.ctx.packet_in.is_full() {
            cx.ctx.packet_in.count_dropped();
            cx.verdict.packet_ins += 1;
            return;
        }
        let data = pkt.data();
        let n = if max_len == OFPCML_NO_BUFFER {
            data.len()
        } else {
            data.len().min(usize::from(max_len))
        };
        let rec = PacketInRecord {
            reason,
            table_id: cx.table_id,
            cookie: cx.cookie,
            in_port,
            in_phy_port: key.get(Field::InPhyPort) as u32,
            metadata: key.metadata(),
            tunnel_id: key.tunnel_id(),
            tun_src: key.tun_src(),
            tun_dst: key.tun_dst(),
            tun_metadata: key.words[packet::TUN_METADATA_WORD],
            total_len: data.len().min(usize::from(u16::MAX)) as u16,
            data: data[..n].to_vec(),
        };
        cx.verdict.packet_ins += 1;
        if S::TRACING {
            cx.sink.observe(Event::PacketIn(&rec), key, &cx.verdict);
            return;
        }
        cx.ctx.packet_in.push(rec);
    }

    /// OFPP_NORMAL: learns, then outputs each port in the form (tagged or not) its VLAN
    /// policy wants, re-tagging the packet between forms and restoring it afterwards.
    fn normal<P: PacketBuf, S: Sink<P>>(
        &self,
        pkt: &mut P,
        key: &mut FlowKey,
        cx: &mut Cx<'_, S>,
        outs: &mut Outs,
    ) {
        let n = Normal {
            mac: &self.mac,
            ports: &self.ports,
        };
        let plan = if S::TRACING {
            n.plan_without_learning(key, cx.ctx.now_secs)
        } else {
            n.plan(key, cx.ctx.now_secs)
        };
        let Some(plan) = plan else {
            return;
        };
        let ev = Event::Normal {
            vlan: plan.vlan,
            learned: plan.known,
        };
        cx.sink.observe(ev, key, &cx.verdict);
        let in_port = key.in_port();
        if let Some(out) = n.unicast_as_is(&plan, in_port) {
            if let Some(port) = out {
                if outs.pending.is_full() {
                    self.flush(outs, pkt, key, cx, Emit::Snapshot);
                }
                outs.pending.push(Pending {
                    port,
                    queue: outs.queue,
                });
            }
            return;
        }
        let mut others: [bool; 2] = [false; 2];
        let forms: [Form; 2] = [None, Some(plan.vlan)];
        n.for_each_output(&plan, in_port, |port, form| {
            if form == plan.current {
                if outs.pending.is_full() {
                    self.flush(outs, pkt, key, cx, Emit::Snapshot);
                }
                outs.pending.push(Pending {
                    port,
                    queue: outs.queue,
                });
            } else {
                others[usize::from(form.is_some())] = true;
            }
        });
        for (i, form) in forms.into_iter().enumerate() {
            if !others[i] {
                continue;
            }
            self.before_edit(outs, pkt, key, cx);
            let restore = retag(pkt, key, plan.current, form);
            n.for_each_output(&plan, in_port, |port, f| {
                if f == form {
                    if outs.pending.is_full() {
                        self.flush(outs, pkt, key, cx, Emit::Snapshot);
                    }
                    outs.pending.push(Pending {
                        port,
                        queue: outs.queue,
                    });
                }
            });
            self.before_edit(outs, pkt, key, cx);
            restore_tag(pkt, key, restore);
        }
    }
}

/// The low `n` bits set (n up to 128).
/// `+trk+inv`: a packet `ct` cannot track (not IP, no tracker).
fn invalid(zone: u16) -> conntrack::CtResult {
    conntrack::CtResult {
        state: conntrack::CtState(conntrack::CtState::TRACKED | conntrack::CtState::INVALID),
        zone,
        ..Default::default()
    }
}

/// The tracker's NAT range for a `nat(...)` with a range.
pub(crate) fn nat_range(n: CtNat) -> Option<conntrack::NatRange> {
    let kind = if n.flags & 1 != 0 {
        conntrack::NatKind::Src
    } else if n.flags & 2 != 0 {
        conntrack::NatKind::Dst
    } else {
        return None;
    };
    let min = n.addr_min?;
    Some(conntrack::NatRange {
        kind,
        v6: n.v6,
        addr_min: min,
        addr_max: n.addr_max.unwrap_or(min).max(min),
        ports: n
            .port_min
            .filter(|&p| p != 0)
            .map(|p| (p, n.port_max.filter(|&q| q >= p).unwrap_or(p))),
    })
}

/// The key after NAT's edits of addresses and ports.
fn nat_key(key: &mut FlowKey, rw: &conntrack::Rewrite) {
    let v6 = key.layers.contains(Layers::IPV6);
    let ports = key.layers.intersects(Layers::TCP | Layers::UDP);
    let (src_f, dst_f) = if v6 {
        (Field::Ipv6Src, Field::Ipv6Dst)
    } else {
        (Field::Ipv4Src, Field::Ipv4Dst)
    };
    if let Some((a, p)) = rw.src {
        key.set(src_f, a);
        if ports {
            key.set(Field::TcpSrc, p.into());
        }
    }
    if let Some((a, p)) = rw.dst {
        key.set(dst_f, a);
        if ports {
            key.set(Field::TcpDst, p.into());
        }
    }
}

/// Writes what `ct` found into the `ct_*` key fields.
fn write_ct(key: &mut FlowKey, r: &conntrack::CtResult) {
    // The ct words are composed whole and stored once (every field of them is written or
    // zero), rather than cleared and then set field by field with read-modify-writes.
    const CT: usize = packet::CT_WORD;
    let mut w = [0u64; packet::TUN_WORD - packet::CT_WORD];
    let mut put = |f: Field, v: u64| {
        let p = f.pos();
        debug_assert!(p.bits <= 64 && (p.bits == 64 || v >> p.bits == 0));
        w[usize::from(p.word) - CT] |= v << p.shift;
    };
    put(Field::CtState, r.state.0.into());
    put(Field::CtZone, r.zone.into());
    put(Field::CtMark, r.mark.into());
    if let Some(t) = &r.orig {
        put(Field::CtNwProto, t.proto.into());
        // ct_nw_src/dst are IPv4 only (an IPv6 connection's are zero, as in Open vSwitch,
        // even for addresses below 2^32 such as ::1).
        if !t.v6 {
            put(Field::CtNwSrc, t.src as u64);
            put(Field::CtNwDst, t.dst as u64);
        }
        if matches!(t.proto, 6 | 17 | 132) {
            put(Field::CtTpSrc, t.sport.into());
            put(Field::CtTpDst, t.dport.into());
        }
    }
    let label = usize::from(Field::CtLabel.pos().word) - CT;
    w[label] = (r.label >> 64) as u64;
    w[label + 1] = r.label as u64;
    key.words[CT..packet::TUN_WORD].copy_from_slice(&w);
}

/// `ct_clear`: every `ct_*` field back to zero (untracked).
fn clear_ct(key: &mut FlowKey) {
    for w in &mut key.words[packet::CT_WORD..packet::TUN_WORD] {
        *w = 0;
    }
}

fn low_bits(n: u16) -> u128 {
    if n >= 128 {
        u128::MAX
    } else {
        (1u128 << n) - 1
    }
}

/// How to undo [`retag`].
enum Restore {
    Nothing,
    Pop,
    Push { tpid: u16, tci: u16 },
    SetVid(u16),
}

fn retag<P: PacketBuf>(pkt: &mut P, key: &mut FlowKey, current: Form, want: Form) -> Restore {
    let vid_field = |v: u16| u128::from(v | packet::OFPVID_PRESENT);
    match (current, want) {
        (None, Some(v)) => {
            if packet::push_vlan(pkt, key, 0x8100).is_err() {
                return Restore::Nothing;
            }
            let _ = packet::set_field(pkt, key, Field::VlanVid, vid_field(v));
            Restore::Pop
        }
        (Some(_), None) => {
            let d = pkt.data();
            if d.len() < 16 {
                return Restore::Nothing;
            }
            let tpid = u16::from_be_bytes([d[12], d[13]]);
            let tci = u16::from_be_bytes([d[14], d[15]]);
            if packet::pop_vlan(pkt, key).is_err() {
                return Restore::Nothing;
            }
            Restore::Push { tpid, tci }
        }
        (Some(old), Some(v)) => {
            let _ = packet::set_field(pkt, key, Field::VlanVid, vid_field(v));
            Restore::SetVid(old)
        }
        (None, None) => Restore::Nothing,
    }
}

fn restore_tag<P: PacketBuf>(pkt: &mut P, key: &mut FlowKey, r: Restore) {
    match r {
        Restore::Nothing => {}
        Restore::Pop => {
            let _ = packet::pop_vlan(pkt, key);
        }
        Restore::Push { tpid, tci } => {
            if packet::push_vlan(pkt, key, tpid).is_ok() {
                let _ = packet::set_field(
                    pkt,
                    key,
                    Field::VlanVid,
                    u128::from((tci & 0x0fff) | 0x1000),
                );
                let _ = packet::set_field(pkt, key, Field::VlanPcp, u128::from(tci >> 13));
            }
        }
        Restore::SetVid(v) => {
            let _ = packet::set_field(pkt, key, Field::VlanVid, u128::from(v | 0x1000));
        }
    }
}

#[cfg(test)]
mod ct_key_tests {
    use super::{clear_ct, write_ct};
    use packet::{Field, FlowKey};

    /// The ct words composed at once read back field by field as `FlowKey::set` would
    /// have written them, replace whatever a previous `ct` left, and touch no other word.
    #[test]
    fn write_ct_reads_back_field_by_field() {
        let orig = conntrack::Tuple {
            src: 0x0a00_0001,
            dst: 0x0ac8_0001,
            sport: 1024,
            dport: 53,
            proto: 17,
            v6: false,
            zone: 7,
        };
        let r = conntrack::CtResult {
            state: conntrack::CtState(0xa1),
            zone: 7,
            mark: 0xdead_beef,
            label: 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
            orig: Some(orig),
            rewrite: conntrack::Rewrite::default(),
        };
        let mut key = FlowKey::default();
        for w in key.words.iter_mut() {
            *w = u64::MAX;
        }
        write_ct(&mut key, &r);
        let mut want = FlowKey::default();
        for w in want.words.iter_mut() {
            *w = u64::MAX;
        }
        clear_ct(&mut want);
        for (f, v) in [
            (Field::CtState, 0xa1),
            (Field::CtZone, 7),
            (Field::CtMark, 0xdead_beef),
            (Field::CtLabel, r.label),
            (Field::CtNwProto, 17),
            (Field::CtNwSrc, 0x0a00_0001),
            (Field::CtNwDst, 0x0ac8_0001),
            (Field::CtTpSrc, 1024),
            (Field::CtTpDst, 53),
        ] {
            want.set(f, v);
            assert_eq!(key.get(f), v, "{f:?}");
        }
        assert_eq!(key.words, want.words);
        // IPv6 and ICMP: no ct_nw_src/dst, no ports; a second write leaves nothing behind.
        let v6 = conntrack::CtResult {
            orig: Some(conntrack::Tuple {
                src: 1 << 100,
                dst: 2,
                proto: 58,
                v6: true,
                ..orig
            }),
            ..r
        };
        write_ct(&mut key, &v6);
        assert_eq!(key.get(Field::CtNwSrc), 0);
        assert_eq!(key.get(Field::CtNwDst), 0, "::2 is not an IPv4 address");
        assert_eq!(key.get(Field::CtTpSrc), 0);
        assert_eq!(key.get(Field::CtNwProto), 58);
        assert_eq!(key.get(Field::CtMark), 0xdead_beef);
    }
}

#[cfg(test)]
mod tests {
    //! The walk's own bounds, on tables no flow-mod could build: entries edited in place
    //! behind the checks, then compiled and published as usual.

    use std::sync::Arc;
    use std::time::Duration;

    use crate::group::GroupModCommand;
    use packet::{extract, PacketBuf, VecBuf};

    use super::{Emit, Sink, Verdict, MAX_BUCKETS};
    use crate::flow::{Action, Instructions, Match};
    use crate::group::{Bucket, GroupModReq, GroupType};
    use crate::pipeline::{FlowModReq, FlowTables, PipelineConfig};
    use crate::port::PortInfo;

    #[derive(Default)]
    struct Count(Vec<u32>);

    impl Sink<VecBuf> for Count {
        fn output(&mut self, port: u32, _: Option<u32>, _: &VecBuf, _: Emit) {
            self.0.push(port);
        }
        fn clone_packet(&mut self, pkt: &VecBuf) -> Option<VecBuf> {
            Some(VecBuf::new(pkt.data()))
        }
    }

    fn run(ft: &FlowTables) -> (Verdict, Vec<u32>) {
        let f = [0u8; 60];
        let mut ctx = ft.worker_context(0);
        let mut sink = Count::default();
        let v = ft.current().process(
            &mut VecBuf::new(&f),
            &mut extract(&f, 1),
            &mut ctx,
            &mut sink,
        );
        (v, sink.0)
    }

    fn goto(t: u8, out: u32) -> Instructions {
        Instructions {
            goto: Some(t),
            ..Instructions::apply(vec![Action::output(out)])
        }
    }

    /// A table 1 entry that goes to itself (the hang) or back to table 0 ends the
    /// walk as a drop, counted, after one lookup per table.
    #[test]
    fn a_goto_that_does_not_go_forward_ends_the_walk() {
        for back in [1u8, 0] {
            let mut ft = FlowTables::new(PipelineConfig {
                n_tables: 3,
                ..Default::default()
            });
            for p in 1..=3 {
                ft.set_port(PortInfo::new(p));
            }
            let z = Duration::ZERO;
            ft.apply_flow_mod(FlowModReq::add(0, 1, Match::any(), goto(1, 2)), z)
                .unwrap();
            ft.apply_flow_mod(FlowModReq::add(1, 1, Match::any(), goto(2, 3)), z)
                .unwrap();
            ft.publish();
            assert_eq!(run(&ft).0.lookups, 3);
            // Behind the checks: table 1's entry now goes to `back`.
            let idx = ft.tables[1].iter().next().unwrap().0;
            ft.tables[1].get_mut(idx).unwrap().instructions = Arc::new(goto(back, 3));
            ft.publish();
            let (v, outs) = run(&ft);
            assert_eq!((v.lookups, v.action_errors), (2, 1), "goto {back}");
            // Apply-actions ran as they came; the walk stopped there.
            assert_eq!(outs, vec![2, 3]);
        }
    }

    /// A table that resubmits to itself loops until the depth bound; tables that resubmit
    /// twice to the next one fan out until the total bound. Either way the packet is
    /// dropped (outputs recorded before are discarded) and the verdict says why.
    #[test]
    fn resubmit_loops_and_fan_out_are_bounded() {
        use super::{MAX_RESUBMITS, MAX_RESUBMIT_DEPTH};
        let z = Duration::ZERO;
        let resubmit = |t: u8| Action::Resubmit {
            in_port: None,
            table: Some(t),
        };
        // A loop: output first, then back to table 0.
        let mut ft = FlowTables::new(PipelineConfig {
            n_tables: 2,
            ..Default::default()
        });
        ft.set_port(PortInfo::new(2));
        ft.apply_flow_mod(
            FlowModReq::add(
                0,
                1,
                Match::any(),
                Instructions::apply(vec![Action::output(2), resubmit(0)]),
            ),
            z,
        )
        .unwrap();
        ft.publish();
        let (v, outs) = run(&ft);
        assert!(v.resubmit_limit);
        assert_eq!(v.lookups, u32::from(MAX_RESUBMIT_DEPTH) + 1);
        // Each level's output was emitted before its nested walk (which may edit the
        // packet); the limit drops only what was still pending: the last level's.
        assert_eq!(outs.len(), usize::from(MAX_RESUBMIT_DEPTH));
        // Fan-out: 14 tables, each resubmitting twice to the next.
        let mut ft = FlowTables::new(PipelineConfig {
            n_tables: 15,
            ..Default::default()
        });
        for t in 0..14u8 {
            ft.apply_flow_mod(
                FlowModReq::add(
                    t,
                    1,
                    Match::any(),
                    Instructions::apply(vec![resubmit(t + 1), resubmit(t + 1)]),
                ),
                z,
            )
            .unwrap();
        }
        ft.publish();
        let (v, _) = run(&ft);
        assert!(v.resubmit_limit);
        assert_eq!(v.lookups, u32::from(MAX_RESUBMITS) + 1);
        // Without a loop or a fan-out, resubmit returns and the next action runs.
        let mut ft = FlowTables::new(PipelineConfig {
            n_tables: 2,
            ..Default::default()
        });
        ft.set_port(PortInfo::new(2));
        ft.set_port(PortInfo::new(3));
        ft.apply_flow_mod(
            FlowModReq::add(
                0,
                1,
                Match::any(),
                Instructions::apply(vec![resubmit(1), Action::output(3)]),
            ),
            z,
        )
        .unwrap();
        ft.apply_flow_mod(
            FlowModReq::add(
                1,
                1,
                Match::any(),
                Instructions::apply(vec![Action::output(2)]),
            ),
            z,
        )
        .unwrap();
        ft.publish();
        let (v, outs) = run(&ft);
        assert!(!v.resubmit_limit);
        assert_eq!(outs, vec![2, 3]);
    }

    /// Group chains without loops can still fan out exponentially; the buckets one packet
    /// runs are bounded.
    #[test]
    fn group_fan_out_is_bounded_per_packet() {
        let mut ft = FlowTables::new(PipelineConfig {
            n_tables: 1,
            ..Default::default()
        });
        ft.set_port(PortInfo::new(2));
        let z = Duration::ZERO;
        let add = |ft: &mut FlowTables, id: u32, actions: Vec<Action>| {
            ft.apply_group_mod(
                GroupModReq {
                    command: GroupModCommand::Add,
                    kind: GroupType::All,
                    group_id: id,
                    buckets: vec![Bucket::new(actions.clone()), Bucket::new(actions)],
                },
                z,
            )
            .unwrap();
        };
        // 14 levels of two buckets each: 2^14 outputs without the bound, within the
        // nesting limit.
        add(&mut ft, 14, vec![Action::output(2)]);
        for id in (1..14).rev() {
            add(&mut ft, id, vec![Action::Group(id + 1)]);
        }
        ft.apply_flow_mod(
            FlowModReq::add(
                0,
                1,
                Match::any(),
                Instructions::apply(vec![Action::Group(1)]),
            ),
            z,
        )
        .unwrap();
        ft.publish();
        let (v, outs) = run(&ft);
        assert!(v.action_errors > 0);
        assert!(!outs.is_empty() && outs.len() <= usize::from(MAX_BUCKETS));
    }
}
