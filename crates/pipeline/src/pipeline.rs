//! The control plane's pipeline state ([`FlowTables`]) and the immutable versions workers
//! run ([`Pipeline`]).
//!
//! Flow-mods, group-mods, meter-mods and port changes edit [`FlowTables`] only. Nothing a
//! worker sees changes until [`FlowTables::publish`] compiles the tables changed since the
//! last publish (unchanged tables, groups and meters are shared with the previous version
//! through their `Arc`) and stores the new version with one atomic pointer swap: a batch of
//! changes becomes visible to packets all at once. A worker loads the current version once
//! per burst ([`PipelineHandle::load`]) and uses it for the whole burst, so a packet never
//! sees half a batch.
//!
//! Changes that must land together (a bundle, a gRPC batch, a profile change) go through a
//! [`Transaction`]: published once on commit, or rolled back to exactly what was there.
//!
//! Old versions are freed on the control plane, never by a worker: [`FlowTables`] keeps a
//! strong reference to every version it replaced until [`FlowTables::reclaim`] finds that
//! no worker holds it any more, so a worker letting go of a version only ever decrements a
//! count that is not the last. (arc-swap's cheap [`PipelineHandle::load`] guards hold a
//! "debt" instead of a count; the swap in [`FlowTables::publish`] pays every debt on the
//! version it replaces, turning those guards into counted references before it returns,
//! so the count `reclaim` looks at covers them.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use mac_learning::MacTable;

use crate::error::PipelineError;
use crate::flow::{FlowEntry, FlowFlags, Instructions, Match};
use crate::group::{CompiledGroups, GroupCounts, GroupEntry, GroupModReq, GroupTable, OFPG_ANY};
use crate::lookup::Strategy;
use crate::meter::{CompiledMeters, MeterCounts, MeterEntry, MeterModReq, MeterTable};
use crate::packet_in::{PacketInDrops, PacketInLimiter, PacketInQueue};
use crate::port::{PortInfo, PortSet};
use crate::ports::OFPP_ANY;
use crate::table::{CompiledTable, FlowTable, MissPolicy, RemovedFlow, RemovedReason};
use crate::transaction::Transaction;

/// Sizes and policies fixed when the switch starts.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// Number of flow tables, 1 to 255.
    pub n_tables: u8,
    /// Number of worker threads (each gets its own counters).
    pub workers: usize,
    pub max_entries_per_table: usize,
    /// Classifier choice; `Auto` outside tests and benchmarks.
    pub strategy: Strategy,
    pub packet_in_capacity: usize,
    pub mac_capacity: usize,
    /// Seconds.
    pub mac_aging: u32,
    /// How many contexts a meter's rate is split between (each context's bucket fills at
    /// `rate / meter_shares`); 0 means all `workers`. A switch whose last context is the
    /// control plane's (packet-out) gives the number of datapath workers, so that one
    /// worker carrying all the traffic gets the whole rate.
    pub meter_shares: usize,
    /// Packet-ins per second each worker lets through per ingress port; 0: no limit.
    /// Default 1000: a controller learning addresses or connections needs a few per new
    /// flow, and 1000 per port and worker keeps a flooding guest to a fraction of the
    /// queue while the others still get through.
    pub packet_in_rate: u32,
    /// Packet-ins a port may send at once after a quiet time. Default 200.
    pub packet_in_burst: u32,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            n_tables: 255,
            workers: 1,
            max_entries_per_table: 1 << 20,
            strategy: Strategy::Auto,
            packet_in_capacity: 4096,
            mac_capacity: 8192,
            mac_aging: 300,
            meter_shares: 0,
            packet_in_rate: 1000,
            packet_in_burst: 200,
        }
    }
}

/// One immutable version of the whole pipeline.
#[derive(Debug)]
pub struct Pipeline {
    pub version: u64,
    pub tables: Box<[Arc<CompiledTable>]>,
    pub groups: Arc<CompiledGroups>,
    pub meters: Arc<CompiledMeters>,
    pub ports: Arc<PortSet>,
    pub(crate) mac: Arc<MacTable>,
    /// Some table reads packet headers ([`CompiledTable::reads_headers`]): otherwise a
    /// packet's key needs only its in_port ([`Pipeline::extract`]).
    pub reads_headers: bool,
    /// What this version's tables read from a packet's key, all together
    /// ([`crate::plan`]): a worker extracts its burst's keys with it
    /// ([`Pipeline::extract`]) and walks them with this version only.
    pub extract_plan: packet::ExtractPlan,
    /// One of the tables [`Pipeline::prefetch_lookup`] looks into has hash tables worth
    /// prefetching: otherwise a worker skips the prefetch pass over the burst.
    pub prefetches: bool,
    /// Some entry or group bucket runs `ct`: with several workers, each packet is handed
    /// to the worker that owns its connection before it is walked (docs/conntrack.md).
    pub tracks: bool,
    /// Table 0 has a simple entry ([`crate::CompiledTable::plain`]): the worker's walk
    /// tries its plain prefix (simple hits, one output kept in a register) first. A
    /// version whose table 0 has none (a learning switch, a firewall sending everything
    /// to `ct`) walks without it.
    pub plain_walks: bool,
}

/// A worker's own state: its counter index, its clock, the packet-in queue and its
/// packet-in rate limit.
#[derive(Debug)]
pub struct WorkerContext {
    pub(crate) worker: usize,
    /// Monotonic nanoseconds (meters, packet-in limit); set by the worker once per burst.
    pub now_ns: u64,
    /// Seconds (MAC learning); set by the worker once per burst.
    pub now_secs: u32,
    pub(crate) packet_in: Arc<PacketInQueue>,
    pub(crate) packet_in_limit: PacketInLimiter,
    /// This worker's connection-tracker shard, owned and used without a lock (see
    /// [`WorkerContext::attach_conntrack`]); `None`: `ct` marks every packet `+trk+inv`.
    pub conntrack: Option<Box<conntrack::Tracker>>,
    /// Matches per table id of the burst being walked, not yet added to the tables'
    /// counters: [`Pipeline::process_in_burst_tallied`] counts its walks' hits here (an
    /// add to the worker's own line instead of the table's counter block per hit) and
    /// [`Pipeline::add_burst_matches`] adds them, zeroing these, after the burst. Zero
    /// between bursts.
    pub(crate) burst_matches: [u64; 256],
    /// Misses per table id of the burst, as `burst_matches` counts matches.
    pub(crate) burst_misses: [u64; 256],
}

impl WorkerContext {
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// Gives this worker its tracker shard. Connections are per worker: both directions of
    /// a connection must reach the same worker (true with one worker, or one rx queue per
    /// port per worker when RSS hashes both directions alike; see docs/conntrack.md).
    pub fn attach_conntrack(&mut self, tracker: conntrack::Tracker) {
        self.conntrack = Some(Box::new(tracker));
    }

    /// Milliseconds of the monotonic clock (the tracker's time).
    pub fn now_ms(&self) -> u64 {
        self.now_ns / 1_000_000
    }

    /// Sets both clocks from one monotonic time.
    pub fn set_now(&mut self, now: Duration) {
        self.now_ns = now.as_nanos() as u64;
        self.now_secs = now.as_secs() as u32;
    }
}

/// The last published version number, alone on its cache line: workers read it between
/// bursts, and no write to a neighbour should make them miss.
#[derive(Debug, Default)]
#[repr(align(128))]
struct PublishedVersion(AtomicU64);

/// What workers hold to find the current version.
#[derive(Clone, Debug)]
pub struct PipelineHandle {
    current: Arc<ArcSwap<Pipeline>>,
    published: Arc<PublishedVersion>,
}

impl PipelineHandle {
    /// The last version the control plane published. It is stored after the version is
    /// swapped in, so a worker that reads `v` here and then [`PipelineHandle::load`]s runs
    /// a version >= `v`: reading it between bursts and reporting it is how a worker
    /// acknowledges "from now on I use a version >= v".
    #[inline]
    pub fn published_version(&self) -> u64 {
        self.published.0.load(Ordering::Acquire)
    }

    /// The current version, for one burst. Cheap (no reference count change on the fast
    /// path of arc-swap); drop it at the end of the burst.
    #[inline]
    pub fn load(&self) -> arc_swap::Guard<Arc<Pipeline>> {
        self.current.load()
    }

    /// The current version as an owned `Arc`.
    pub fn load_full(&self) -> Arc<Pipeline> {
        self.current.load_full()
    }
}

/// The union of the tables' extraction plans: what a version needs in its keys.
fn extract_plan(tables: &[FlowTable]) -> packet::ExtractPlan {
    tables.iter().fold(packet::ExtractPlan::IN_PORT, |p, t| {
        p.union(t.compiled.extract_plan)
    })
}

/// Every table at once (`OFPTT_ALL`): deletes, modifies and counts that name no one table.
pub const OFPTT_ALL: u8 = 0xff;

/// What a flow-mod does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowModCommand {
    Add,
    Modify,
    ModifyStrict,
    Delete,
    DeleteStrict,
}

/// A flow-mod in pipeline terms (`ofproto::convert_flow_mod` makes one from the wire
/// type).
#[derive(Clone, Debug)]
pub struct FlowModReq {
    pub command: FlowModCommand,
    pub table_id: u8,
    pub priority: u16,
    pub match_: Match,
    pub instructions: Arc<Instructions>,
    pub cookie: u64,
    pub cookie_mask: u64,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub flags: FlowFlags,
    pub out_port: u32,
    pub out_group: u32,
}

impl FlowModReq {
    /// An ADD with no cookie, timeouts or flags.
    pub fn add(
        table_id: u8,
        priority: u16,
        match_: Match,
        instructions: Instructions,
    ) -> FlowModReq {
        FlowModReq {
            command: FlowModCommand::Add,
            table_id,
            priority,
            match_,
            instructions: Arc::new(instructions),
            cookie: 0,
            cookie_mask: 0,
            idle_timeout: 0,
            hard_timeout: 0,
            flags: FlowFlags::empty(),
            out_port: OFPP_ANY,
            out_group: OFPG_ANY,
        }
    }

    /// A DELETE (non-strict) of everything `match_` covers in `table_id` (or OFPTT_ALL).
    pub fn delete(table_id: u8, match_: Match) -> FlowModReq {
        FlowModReq {
            command: FlowModCommand::Delete,
            ..FlowModReq::add(table_id, 0, match_, Instructions::default())
        }
    }

    fn cookie_ok(&self, cookie: u64) -> bool {
        (cookie ^ self.cookie) & self.cookie_mask == 0
    }
}

/// An entry with its counters, for flow stats.
#[derive(Clone, Debug)]
pub struct FlowCounts {
    pub table_id: u8,
    pub entry: FlowEntry,
    pub packets: u64,
    pub bytes: u64,
}

/// Per-table statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableCounts {
    pub table_id: u8,
    pub active: u32,
    pub lookups: u64,
    pub matches: u64,
}

/// The pipeline state owned by the control plane.
#[derive(Debug)]
pub struct FlowTables {
    config: PipelineConfig,
    pub(crate) tables: Vec<FlowTable>,
    pub(crate) groups: GroupTable,
    pub(crate) meters: MeterTable,
    pub(crate) ports: Arc<PortSet>,
    pub(crate) ports_dirty: bool,
    mac: Arc<MacTable>,
    packet_in: Arc<PacketInQueue>,
    /// Per context index: what its packet-in limit dropped.
    packet_in_drops: Box<[Arc<PacketInDrops>]>,
    current: Arc<ArcSwap<Pipeline>>,
    published: Arc<PublishedVersion>,
    /// Versions replaced by a publish, held until no worker uses them (see
    /// [`FlowTables::reclaim`]).
    older: Vec<Arc<Pipeline>>,
    pub(crate) next_uid: u64,
    version: u64,
}

impl FlowTables {
    pub fn new(config: PipelineConfig) -> FlowTables {
        let n = config.n_tables.max(1);
        let workers = config.workers.max(1);
        let tables: Vec<FlowTable> = (0..n)
            .map(|i| FlowTable::new(i, workers, config.max_entries_per_table))
            .collect();
        let groups = GroupTable::new(workers);
        let shares = match config.meter_shares {
            0 => workers,
            n => n.min(workers),
        };
        let meters = MeterTable::new(workers, shares);
        let mac = Arc::new(MacTable::new(config.mac_capacity, config.mac_aging));
        let ports = Arc::new(PortSet::default());
        let first = Pipeline {
            version: 0,
            tables: tables.iter().map(|t| t.compiled.clone()).collect(),
            groups: groups.compiled.clone(),
            meters: meters.compiled.clone(),
            ports: ports.clone(),
            mac: mac.clone(),
            reads_headers: tables.iter().any(|t| t.compiled.reads_headers),
            extract_plan: extract_plan(&tables),
            prefetches: false,
            tracks: false,
            plain_walks: false,
        };
        let packet_in = Arc::new(PacketInQueue::new(config.packet_in_capacity));
        let mut ft = FlowTables {
            config: PipelineConfig {
                n_tables: n,
                workers,
                ..config
            },
            tables,
            groups,
            meters,
            ports,
            ports_dirty: false,
            mac,
            packet_in,
            packet_in_drops: (0..workers)
                .map(|_| Arc::new(PacketInDrops::new()))
                .collect(),
            current: Arc::new(ArcSwap::from_pointee(first)),
            published: Arc::new(PublishedVersion::default()),
            older: Vec::new(),
            next_uid: 1,
            version: 0,
        };
        ft.publish();
        ft
    }

    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    pub fn n_tables(&self) -> u8 {
        self.config.n_tables
    }

    /// For workers.
    pub fn handle(&self) -> PipelineHandle {
        PipelineHandle {
            current: self.current.clone(),
            published: self.published.clone(),
        }
    }

    /// The context of worker `worker` (0-based, below `config.workers`). One per worker
    /// thread: two threads sharing an index would lose counts.
    pub fn worker_context(&self, worker: usize) -> WorkerContext {
        assert!(worker < self.config.workers, "worker index out of range");
        WorkerContext {
            worker,
            now_ns: 0,
            now_secs: 0,
            packet_in: self.packet_in.clone(),
            packet_in_limit: PacketInLimiter::new(
                self.config.packet_in_rate,
                self.config.packet_in_burst,
                self.packet_in_drops[worker].clone(),
            ),
            conntrack: None,
            burst_matches: [0; 256],
            burst_misses: [0; 256],
        }
    }

    /// Packet-ins the per-port rate limit dropped, per ingress port (summed over
    /// contexts; ports sharing the overflow bucket as OFPP_ANY), sorted by port.
    pub fn packet_in_limited(&self) -> Vec<(u32, u64)> {
        let mut by_port: std::collections::BTreeMap<u32, u64> = Default::default();
        for d in self.packet_in_drops.iter() {
            for (port, n) in d.per_port() {
                *by_port.entry(port).or_default() += n;
            }
        }
        by_port.into_iter().collect()
    }

    /// Where packet-in records arrive.
    pub fn packet_in_queue(&self) -> Arc<PacketInQueue> {
        self.packet_in.clone()
    }

    pub fn mac_table(&self) -> &Arc<MacTable> {
        &self.mac
    }

    pub fn group_exists(&self, id: u32) -> bool {
        self.groups.exists(id)
    }

    pub fn meter_exists(&self, id: u32) -> bool {
        self.meters.exists(id)
    }

    /// The version workers run now.
    pub fn current(&self) -> Arc<Pipeline> {
        self.current.load_full()
    }

    // ---- flow-mods ----------------------------------------------------------------

    /// Applies a flow-mod. Returns the entries removed (DELETE*), whose FLOW_REMOVED the
    /// agent sends when they have SEND_FLOW_REM. Not visible to packets before
    /// [`FlowTables::publish`].
    pub fn apply_flow_mod(
        &mut self,
        req: FlowModReq,
        now: Duration,
    ) -> Result<Vec<RemovedFlow>, PipelineError> {
        let n = self.config.n_tables;
        match req.command {
            FlowModCommand::Add => {
                if req.table_id >= n {
                    return Err(PipelineError::BadTableId(req.table_id));
                }
                self.add(req, now)?;
                Ok(vec![])
            }
            FlowModCommand::Modify | FlowModCommand::ModifyStrict => {
                if req.table_id >= n && req.table_id != OFPTT_ALL {
                    return Err(PipelineError::BadTableId(req.table_id));
                }
                self.modify(&req)?;
                Ok(vec![])
            }
            FlowModCommand::Delete | FlowModCommand::DeleteStrict => {
                if req.table_id >= n && req.table_id != OFPTT_ALL {
                    return Err(PipelineError::BadTableId(req.table_id));
                }
                Ok(self.delete(&req, now))
            }
        }
    }

    /// Starts a transaction: flow-mods, group-mods, meter-mods, port and miss-policy
    /// changes applied through it become visible together at its
    /// [`Transaction::commit`] (one published version), or are all undone when it is
    /// dropped or [`Transaction::abort`]ed. `now` is the install time of what it adds.
    pub fn transaction(&mut self, now: Duration) -> Transaction<'_> {
        Transaction::new(self, now)
    }

    /// Refuses a goto that does not go strictly forward from `table_id`: the tables then
    /// form a chain that every walk leaves after at most `n_tables` lookups.
    fn check_goto(&self, table_id: u8, insts: &Instructions) -> Result<(), PipelineError> {
        match insts.goto {
            Some(g) if g >= self.config.n_tables => Err(PipelineError::GotoBeyondLast(g)),
            Some(g) if g <= table_id => Err(PipelineError::GotoBackward {
                from: table_id,
                to: g,
            }),
            _ => Ok(()),
        }
    }

    fn add(&mut self, req: FlowModReq, now: Duration) -> Result<(), PipelineError> {
        self.check_goto(req.table_id, &req.instructions)?;
        let t = &mut self.tables[usize::from(req.table_id)];
        if req.flags.contains(FlowFlags::CHECK_OVERLAP)
            && t.iter()
                .any(|(_, e)| e.priority == req.priority && e.match_.overlaps(&req.match_))
        {
            return Err(PipelineError::Overlap);
        }
        // Hashed once for the lookup and the insert.
        let h = FlowTable::strict_hash(req.priority, &req.match_);
        let replaced = t.find_strict_hashed(h, req.priority, &req.match_);
        if replaced.is_none() && t.len() >= t.max_entries {
            return Err(PipelineError::TableFull(req.table_id));
        }
        let (base_packets, base_bytes) = match replaced {
            Some(idx) => {
                let (_, p, b) = t.remove(idx).expect("found entries exist");
                if req.flags.contains(FlowFlags::RESET_COUNTS) {
                    (0, 0)
                } else {
                    (p, b)
                }
            }
            None => (0, 0),
        };
        let uid = self.next_uid;
        self.next_uid += 1;
        let entry = FlowEntry {
            uid,
            priority: req.priority,
            match_: req.match_,
            instructions: req.instructions,
            cookie: req.cookie,
            idle_timeout: req.idle_timeout,
            hard_timeout: req.hard_timeout,
            flags: req.flags,
            created: now,
            base_packets,
            base_bytes,
            last_used: now,
            last_seen_packets: base_packets,
            level: 0,
            slot: u32::MAX,
        };
        t.insert_hashed(h, entry)?;
        Ok(())
    }

    fn table_range(&self, table_id: u8) -> std::ops::Range<usize> {
        if table_id == OFPTT_ALL {
            0..self.tables.len()
        } else {
            usize::from(table_id)..usize::from(table_id) + 1
        }
    }

    /// The entries of `t` a modify/delete selects.
    fn selected(t: &FlowTable, req: &FlowModReq, strict: bool, filters: bool) -> Vec<u32> {
        let ok = |e: &FlowEntry| {
            req.cookie_ok(e.cookie)
                && (!filters
                    || (e.instructions.outputs_to(req.out_port)
                        && e.instructions.uses_group(req.out_group)))
        };
        if strict {
            t.find_strict(req.priority, &req.match_)
                .filter(|&i| t.get(i).is_some_and(ok))
                .into_iter()
                .collect()
        } else {
            t.iter()
                .filter(|(_, e)| req.match_.covers(&e.match_) && ok(e))
                .map(|(i, _)| i)
                .collect()
        }
    }

    /// Changes the instructions of the selected entries, in one table or all. A goto must
    /// go forward from every table holding a selected entry (MODIFY to all tables with
    /// `goto_table:1` would make table 1 go to itself): checked for all before anything
    /// changes.
    fn modify(&mut self, req: &FlowModReq) -> Result<(), PipelineError> {
        let strict = req.command == FlowModCommand::ModifyStrict;
        let mut chosen = Vec::new();
        for ti in self.table_range(req.table_id) {
            let idxs = Self::selected(&self.tables[ti], req, strict, false);
            if !idxs.is_empty() {
                self.check_goto(ti as u8, &req.instructions)?;
                chosen.push((ti, idxs));
            }
        }
        for (ti, idxs) in chosen {
            let t = &mut self.tables[ti];
            for idx in idxs {
                if req.flags.contains(FlowFlags::RESET_COUNTS) {
                    t.reset_counts(idx);
                }
                if let Some(e) = t.get_mut(idx) {
                    e.instructions = req.instructions.clone();
                }
            }
        }
        Ok(())
    }

    fn delete(&mut self, req: &FlowModReq, now: Duration) -> Vec<RemovedFlow> {
        let strict = req.command == FlowModCommand::DeleteStrict;
        let mut out = Vec::new();
        for ti in self.table_range(req.table_id) {
            let t = &mut self.tables[ti];
            for idx in Self::selected(t, req, strict, true) {
                if let Some((entry, packets, bytes)) = t.remove(idx) {
                    out.push(RemovedFlow {
                        table_id: ti as u8,
                        entry,
                        reason: RemovedReason::Delete,
                        packets,
                        bytes,
                        at: now,
                    });
                }
            }
        }
        out
    }

    fn remove_where(
        &mut self,
        reason: RemovedReason,
        now: Duration,
        pred: impl Fn(&FlowEntry) -> bool,
    ) -> Vec<RemovedFlow> {
        let mut out = Vec::new();
        for (ti, t) in self.tables.iter_mut().enumerate() {
            let idxs: Vec<u32> = t.iter().filter(|(_, e)| pred(e)).map(|(i, _)| i).collect();
            for idx in idxs {
                if let Some((entry, packets, bytes)) = t.remove(idx) {
                    out.push(RemovedFlow {
                        table_id: ti as u8,
                        entry,
                        reason,
                        packets,
                        bytes,
                        at: now,
                    });
                }
            }
        }
        out
    }

    // ---- groups, meters, ports, tables --------------------------------------------

    /// Applies a group-mod. Deleting groups removes the flows that use them (returned
    /// with reason GROUP_DELETE).
    pub fn apply_group_mod(
        &mut self,
        req: GroupModReq,
        now: Duration,
    ) -> Result<Vec<RemovedFlow>, PipelineError> {
        let deleted = self.groups.apply(req, now)?;
        if deleted.is_empty() {
            return Ok(vec![]);
        }
        Ok(self.remove_where(RemovedReason::GroupDelete, now, |e| {
            deleted.iter().any(|&g| e.instructions.uses_group(g))
        }))
    }

    /// Applies a meter-mod. Deleting meters removes the flows that use them.
    pub fn apply_meter_mod(
        &mut self,
        mm: &MeterModReq,
        now: Duration,
    ) -> Result<Vec<RemovedFlow>, PipelineError> {
        let deleted = self.meters.apply(mm, now)?;
        if deleted.is_empty() {
            return Ok(vec![]);
        }
        Ok(self.remove_where(RemovedReason::MeterDelete, now, |e| {
            deleted.iter().any(|&m| e.instructions.uses_meter(m))
        }))
    }

    /// Adds or changes a port (config, liveness, VLAN policy).
    pub fn set_port(&mut self, info: PortInfo) {
        self.set_port_entry(info);
    }

    /// Removes a port and forgets the addresses learned on it.
    pub fn remove_port(&mut self, port: u32) {
        if self.remove_port_entry(port) {
            self.mac.flush_port(port);
        }
    }

    pub(crate) fn set_port_entry(&mut self, info: PortInfo) {
        Arc::make_mut(&mut self.ports).upsert(info);
        self.ports_dirty = true;
    }

    /// False when there was no such port.
    pub(crate) fn remove_port_entry(&mut self, port: u32) -> bool {
        let gone = Arc::make_mut(&mut self.ports).remove(port);
        self.ports_dirty |= gone;
        gone
    }

    pub fn ports(&self) -> &PortSet {
        &self.ports
    }

    /// What a table does with packets no entry matches.
    pub fn set_miss_policy(&mut self, table_id: u8, miss: MissPolicy) -> Result<(), PipelineError> {
        let t = self
            .tables
            .get_mut(usize::from(table_id))
            .ok_or(PipelineError::BadTableId(table_id))?;
        if t.miss != miss {
            t.miss = miss;
            t.dirty = true;
        }
        Ok(())
    }

    // ---- publishing ---------------------------------------------------------------

    /// Compiles what changed since the last publish and makes it the version workers use,
    /// with one pointer swap. Returns the new version number (the current one when nothing
    /// changed). The version replaced stays referenced here until [`FlowTables::reclaim`].
    pub fn publish(&mut self) -> u64 {
        debug_assert!(
            !self.tables.iter().any(FlowTable::in_transaction),
            "publish inside a transaction"
        );
        let workers = self.config.workers;
        let strategy = self.config.strategy;
        let mut changed = false;
        for t in &mut self.tables {
            if t.dirty {
                t.compile(workers, strategy);
                changed = true;
            }
            t.fold();
        }
        if self.groups.dirty || self.ports_dirty {
            self.groups.compile(&self.ports);
            changed = true;
        }
        self.groups.fold();
        if self.meters.dirty {
            self.meters.compile();
            changed = true;
        }
        self.meters.fold();
        if self.ports_dirty {
            self.ports_dirty = false;
            changed = true;
        }
        if !changed && self.version > 0 {
            return self.version;
        }
        self.version += 1;
        let next = Arc::new(Pipeline {
            version: self.version,
            tables: self.tables.iter().map(|t| t.compiled.clone()).collect(),
            groups: self.groups.compiled.clone(),
            meters: self.meters.compiled.clone(),
            ports: self.ports.clone(),
            mac: self.mac.clone(),
            reads_headers: self.tables.iter().any(|t| t.compiled.reads_headers),
            extract_plan: extract_plan(&self.tables),
            prefetches: self
                .tables
                .iter()
                .take(crate::exec::PREFETCH_TABLES)
                .any(|t| t.compiled.prefetches),
            tracks: self.groups.compiled.tracks || self.tables.iter().any(|t| t.compiled.tracks),
            plain_walks: self.tables.first().is_some_and(|t| t.compiled.plain),
        });
        // The swap pays arc-swap's debts on `old` before it returns: guards workers still
        // hold on it are counted references from here on (see the module docs).
        let old = self.current.swap(next);
        self.published.0.store(self.version, Ordering::Release);
        self.older.push(old);
        self.reclaim();
        self.version
    }

    /// The last version published (what [`PipelineHandle::published_version`] reads).
    pub fn published_version(&self) -> u64 {
        self.published.0.load(Ordering::Relaxed)
    }

    /// Frees, here on the control plane, the replaced versions no worker holds any more;
    /// returns how many. Call it from housekeeping ([`FlowTables::publish`] and
    /// [`FlowTables::fold_counters`] call it too): the worker's loop never frees a version.
    pub fn reclaim(&mut self) -> usize {
        let before = self.older.len();
        // Nothing can take a new reference to a replaced version (it is no longer in the
        // ArcSwap, and its debts were paid at the swap), so a count of 1 stays 1: dropping
        // ours is then the last drop, and Arc's own release/acquire protocol orders it
        // after every worker's last use.
        self.older.retain(|v| Arc::strong_count(v) > 1);
        before - self.older.len()
    }

    /// Replaced versions still held by someone (a worker mid-burst, or one that is stuck).
    pub fn versions_held(&self) -> usize {
        self.older.len()
    }

    /// Merges the levels of every table into one (see [`crate::table::Level`]) and
    /// publishes (pending changes too), so that packets probe one classifier per table.
    /// O(entries of the tables concerned): for idle time. Returns whether anything was
    /// merged.
    pub fn compact(&mut self) -> bool {
        let mut any = false;
        for t in &mut self.tables {
            any |= t.request_compaction();
        }
        self.publish();
        any
    }

    /// True when nothing holds a version older than the last published one (after
    /// reclaiming those nobody holds): every change published so far is seen by every
    /// packet (BARRIER_REPLY may go out). A control-plane reader holding an old
    /// [`FlowTables::current`] counts as a holder too; per-worker acknowledgements of
    /// [`PipelineHandle::published_version`] answer the same question per worker.
    pub fn is_quiescent(&mut self) -> bool {
        self.reclaim();
        self.older.is_empty()
    }

    /// Folds counters of versions workers no longer use into the entries' totals.
    pub fn fold_counters(&mut self) {
        self.reclaim();
        for t in &mut self.tables {
            t.fold();
        }
        self.groups.fold();
        self.meters.fold();
    }

    // ---- timeouts -----------------------------------------------------------------

    /// Removes entries whose hard timeout has passed or that saw no packet for their idle
    /// timeout. Idle time is measured by sampling the entry's packet count at each call: an
    /// entry counts as used at `now` if its count moved since the previous call, so the
    /// resolution is the calling interval (call it every second or so). Returns the removed
    /// entries (FLOW_REMOVED for those with SEND_FLOW_REM).
    pub fn expire(&mut self, now: Duration) -> Vec<RemovedFlow> {
        self.fold_counters();
        let mut out = Vec::new();
        for (ti, t) in self.tables.iter_mut().enumerate() {
            let mut gone: Vec<(u32, RemovedReason)> = Vec::new();
            let candidates: Vec<u32> = t
                .iter()
                .filter(|(_, e)| e.idle_timeout != 0 || e.hard_timeout != 0)
                .map(|(i, _)| i)
                .collect();
            for idx in candidates {
                let (packets, _) = t.counts(idx);
                let Some(e) = t.get(idx) else { continue };
                let (hard, idle, created) = (e.hard_timeout, e.idle_timeout, e.created);
                if hard != 0 && now.saturating_sub(created) >= Duration::from_secs(hard.into()) {
                    gone.push((idx, RemovedReason::HardTimeout));
                    continue;
                }
                if idle != 0 {
                    let e = t.slab_entry_mut(idx);
                    if packets != e.last_seen_packets {
                        e.last_seen_packets = packets;
                        e.last_used = now;
                    } else if now.saturating_sub(e.last_used) >= Duration::from_secs(idle.into()) {
                        gone.push((idx, RemovedReason::IdleTimeout));
                    }
                }
            }
            for (idx, reason) in gone {
                if let Some((entry, packets, bytes)) = t.remove(idx) {
                    out.push(RemovedFlow {
                        table_id: ti as u8,
                        entry,
                        reason,
                        packets,
                        bytes,
                        at: now,
                    });
                }
            }
        }
        out
    }

    // ---- reading ------------------------------------------------------------------

    /// The entries of a table (unordered).
    pub fn entries(&self, table_id: u8) -> impl Iterator<Item = &FlowEntry> {
        self.tables
            .get(usize::from(table_id))
            .into_iter()
            .flat_map(|t| t.iter().map(|(_, e)| e))
    }

    /// Entries selected like a non-strict delete (match covers, cookie, out_port,
    /// out_group), with counters: the body of flow and aggregate stats.
    pub fn flow_counts(
        &mut self,
        table_id: u8,
        match_: &Match,
        cookie: u64,
        cookie_mask: u64,
        out_port: u32,
        out_group: u32,
    ) -> Result<Vec<FlowCounts>, PipelineError> {
        if table_id >= self.config.n_tables && table_id != OFPTT_ALL {
            return Err(PipelineError::BadTableId(table_id));
        }
        self.fold_counters();
        let req = FlowModReq {
            command: FlowModCommand::Delete,
            cookie,
            cookie_mask,
            out_port,
            out_group,
            ..FlowModReq::delete(table_id, match_.clone())
        };
        let mut out = Vec::new();
        for ti in self.table_range(table_id) {
            let t = &self.tables[ti];
            for idx in Self::selected(t, &req, false, true) {
                let (packets, bytes) = t.counts(idx);
                if let Some(e) = t.get(idx) {
                    out.push(FlowCounts {
                        table_id: ti as u8,
                        entry: e.clone(),
                        packets,
                        bytes,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Packets and bytes of the entry with `uid` in `table_id`.
    pub fn entry_counts(&mut self, table_id: u8, uid: u64) -> Option<(u64, u64)> {
        self.fold_counters();
        let t = self.tables.get(usize::from(table_id))?;
        let (idx, _) = t.iter().find(|(_, e)| e.uid == uid)?;
        Some(t.counts(idx))
    }

    /// (packets, bytes) of the entry with exactly this priority and match in
    /// `table_id`: one hash lookup, whatever the table holds (metrics read
    /// single entries this way under the switch's lock). Call
    /// [`FlowTables::fold_counters`] first for counts of replaced versions.
    pub fn strict_entry_counts(
        &self,
        table_id: u8,
        priority: u16,
        m: &Match,
    ) -> Option<(u64, u64)> {
        let t = self.tables.get(usize::from(table_id))?;
        t.find_strict(priority, m).map(|idx| t.counts(idx))
    }

    pub fn table_counts(&mut self) -> Vec<TableCounts> {
        self.fold_counters();
        self.tables
            .iter()
            .map(|t| {
                let (lookups, matches) = t.table_counts();
                TableCounts {
                    table_id: t.id,
                    active: t.len() as u32,
                    lookups,
                    matches,
                }
            })
            .collect()
    }

    pub fn groups(&self) -> impl Iterator<Item = &GroupEntry> {
        self.groups.groups.values()
    }

    pub fn group_counts(&mut self, id: u32) -> Option<GroupCounts> {
        self.groups.counts(id)
    }

    /// Flows and groups that forward to group `id` (group stats ref_count).
    pub fn group_ref_count(&self, id: u32) -> u32 {
        let flows: usize = self
            .tables
            .iter()
            .map(|t| {
                t.iter()
                    .filter(|(_, e)| e.instructions.uses_group(id))
                    .count()
            })
            .sum();
        flows as u32 + self.groups.chained_refs(id)
    }

    pub fn meters(&self) -> impl Iterator<Item = &MeterEntry> {
        self.meters.meters.values()
    }

    pub fn meter_counts(&mut self, id: u32) -> Option<MeterCounts> {
        self.meters.counts(id)
    }

    /// Flows using meter `id` (meter stats flow_count).
    pub fn meter_flow_count(&self, id: u32) -> u32 {
        self.tables
            .iter()
            .map(|t| {
                t.iter()
                    .filter(|(_, e)| e.instructions.uses_meter(id))
                    .count()
            })
            .sum::<usize>() as u32
    }
}
