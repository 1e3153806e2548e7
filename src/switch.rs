//! The switch's state and its one owner.
//!
//! Everything the control plane changes (ports, flow tables, groups, meters,
//! the datapath, the virtual-network profile, link and fail-mode state) lives
//! in one [`State`], reached only through [`Switch::lock`], which waits a
//! bounded time ([`LOCK_WAIT`]) and then fails with [`Busy`] rather than queue
//! forever. There is no second switch lock to take in the wrong order: code
//! that holds the state works on `&mut State` and never reaches for
//! [`Switch::lock`] again (parking_lot's locks are not reentrant, and test
//! builds run its deadlock detector, so a slip shows at once).
//!
//! Rules the code below keeps, because a hypervisor switch that hangs takes
//! every VM on the host with it:
//! - the state is never held across a wait on workers or peers: a barrier
//!   publishes under the lock, then waits for the workers' acknowledgements
//!   without it, with a deadline, and fails honestly when it passes;
//! - asynchronous OpenFlow messages produced under the lock are queued in the
//!   state and sent after it is released ([`Locked`]'s drop);
//! - per-tick work is bounded (packet-ins per tick, a short lock wait).

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::datapath_conv::{datapath_settings, port_spec, vlan_policy as policy};
use datapath::{Datapath, DatapathSettings};
use dpdk::Eal;

use ferroflow_config::{Config, FailMode, PortConfig};
use ofagent::{Agent, AsyncEvent};
use openflow::consts::OFPP_NORMAL;
use openflow::messages::{PortReason, PortStatus};
use parking_lot::{Mutex, MutexGuard};
use pipeline::{
    Action, FlowModReq, FlowTables, Instructions, Match, MissPolicy, PipelineConfig, PortInfo,
};

use crate::profile::{ProfileCounters, ProfileState};

/// Tables in the pipeline: OpenFlow's maximum, as ovs-ofctl and controllers expect.
pub const N_TABLES: u8 = 255;

/// Longest wait for the switch's state. Every holder's work is bounded (a
/// compile of a large table is the longest, well under this), so a caller that
/// waits longer is told the switch is busy instead of queueing without end.
pub const LOCK_WAIT: Duration = Duration::from_secs(5);

/// Longest a barrier (or any change that promises its effect is visible)
/// waits for the workers to move to the new version.
pub const SYNC_WAIT: Duration = Duration::from_secs(2);

/// A worker whose loop has not turned for this long is reported stuck
/// (status, metrics); a healthy one turns it every few microseconds, an
/// idle-sleeping one every `idle_sleep_us`.
pub const STUCK_AFTER: Duration = Duration::from_millis(500);

/// Packet-ins relayed (or handled by the profile) per housekeeping tick: a
/// flood must not keep the tick from expiring flows, publishing and stopping.
/// At one tick per 5 ms this is up to 51200 per second; the rest wait in the
/// bounded queue, and what does not fit there is dropped and counted.
pub const PACKET_INS_PER_TICK: usize = 256;

/// How long the stop path waits for the state: a stop must end the process
/// within 2 s even when a call holds the state.
const STOP_LOCK_WAIT: Duration = Duration::from_millis(300);

/// The state could not be had within [`LOCK_WAIT`].
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the switch is busy: its state was not free within {} s; try again", LOCK_WAIT.as_secs())]
pub struct Busy;

/// Why a change could not be made visible to every packet.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Busy(#[from] Busy),
    /// Workers that still run an older version after [`SYNC_WAIT`]. The
    /// change is applied and published; the workers will run it when they
    /// resume, but it cannot be promised now.
    #[error("the change is published, but {0} worker(s) did not move to it within {1:?}: a worker is stuck (see `ferroflowctl status`)")]
    Stuck(usize, Duration),
}

/// Why a rebalance by command did not complete.
#[derive(Debug, thiserror::Error)]
pub enum RebalanceError {
    #[error(transparent)]
    Busy(#[from] Busy),
    #[error("the datapath is not running")]
    NoDatapath,
    /// A move failed; the moves before it are in place.
    #[error(transparent)]
    Datapath(datapath::DatapathError),
    #[error("no worker runs on lcore {0}")]
    NoSuchLcore(u32),
}

/// Why a connection-tracking operation (dump, flush, stats) did not complete.
#[derive(Debug, thiserror::Error)]
pub enum ConntrackOpsError {
    #[error(transparent)]
    Busy(#[from] Busy),
    #[error("the datapath is not running")]
    NoDatapath,
    /// A worker's queue was full, or a worker did not answer in time.
    #[error(transparent)]
    Datapath(datapath::DatapathError),
}

/// Control-plane counters, exported as metrics.
#[derive(Debug, Default)]
pub struct ControlCounters {
    /// Barriers and syncs that gave up waiting for a worker.
    pub sync_timeouts: AtomicU64,
    /// Calls refused because the state was busy longer than [`LOCK_WAIT`].
    pub busy: AtomicU64,
    /// Housekeeping ticks skipped because the state was busy.
    pub ticks_skipped: AtomicU64,
    /// Housekeeping ticks that left packet-ins queued for the next one.
    pub packet_in_backlog_ticks: AtomicU64,
    /// Longest housekeeping tick, in microseconds.
    pub longest_tick_us: AtomicU64,
    /// Rebalances that moved queues: by command, and by the automatic rebalance.
    pub rebalances: AtomicU64,
    pub auto_rebalances: AtomicU64,
    /// Rx queues moved between workers.
    pub rx_queue_moves: AtomicU64,
}

pub struct Switch {
    /// The configuration it started with.
    pub config: Config,
    pub started: Instant,
    state: Mutex<State>,
    /// Where asynchronous OpenFlow messages go. A leaf lock: only taken to
    /// clone the pointer, never while another lock is taken after it.
    agent: Mutex<Weak<Agent>>,
    pub counters: ControlCounters,
    pub profile_counters: ProfileCounters,
    /// The workers' acknowledgements and heartbeats: read without the state.
    health: Arc<datapath::WorkerHealth>,
    /// Last, so that it is dropped after the datapath.
    eal: Arc<Eal>,
}

/// The switch's state: one owner, changed only through [`Switch::lock`].
pub struct State {
    /// The ports now, as configured (ports come and go at runtime).
    pub ports: Vec<PortConfig>,
    pub tables: FlowTables,
    pub datapath: Option<Datapath>,
    /// The virtual-network profile (networks, instances, metadata service).
    pub profile: ProfileState,
    /// Flows, groups and meters the management API added (and so persists).
    pub api_owned: crate::api::Owned,
    /// The control plane's pipeline contexts: OpenFlow packet-out, and the
    /// profile's re-injected packets.
    pub packet_out_ctx: pipeline::WorkerContext,
    inject_ctx: pipeline::WorkerContext,
    /// Flow changes not yet published to the workers.
    dirty: bool,
    /// When the tables last changed, and whether they changed since the last
    /// compaction: an idle second after changes merges each table's levels
    /// into one (see `pipeline::Level`).
    last_change: Instant,
    uncompacted: bool,
    /// Standalone fail mode: since when no controller has been connected, and
    /// whether NORMAL has taken over table-miss.
    fail_open: (Option<Instant>, bool),
    last_expiry: Instant,
    /// When the last paced publish happened and how long it took.
    publish_pacing: (Instant, Duration),
    last_link_check: Instant,
    /// Last link state seen per OpenFlow port.
    links: HashMap<u32, bool>,
    /// Asynchronous messages made under the lock, sent once it is released.
    pub(crate) events: Vec<AsyncEvent>,
    /// When the automatic rebalance last measured the queues' loads.
    last_rebalance_check: Instant,
    /// The Geneve TLV map (`ovs-ofctl add-tlv-map`), also in the datapath.
    pub geneve_tlv: crate::geneve_tlv::TlvTable,
}

/// The switch's state, held. Dropping it releases the state and then sends
/// the asynchronous messages queued while it was held.
pub struct Locked<'a> {
    sw: &'a Switch,
    guard: Option<MutexGuard<'a, State>>,
}

impl Deref for Locked<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        self.guard.as_ref().expect("held until dropped")
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut State {
        self.guard.as_mut().expect("held until dropped")
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let events = match self.guard.as_mut() {
            Some(g) => std::mem::take(&mut g.events),
            None => Vec::new(),
        };
        drop(self.guard.take());
        if !events.is_empty() {
            if let Some(agent) = self.sw.agent() {
                for e in &events {
                    agent.publish(e);
                }
            }
        }
    }
}

/// How long halting the workers, and then closing the ports, may each take at stop.
const DATAPATH_STOP_WAIT: Duration = Duration::from_secs(1);

/// Why a runtime port change was refused.
#[derive(Debug, thiserror::Error)]
pub enum PortChangeError {
    #[error("{0}")]
    Invalid(String),
    #[error("a port named {0:?} exists already")]
    NameExists(String),
    #[error("OpenFlow port {0} is in use")]
    OfportExists(u32),
    #[error("no port named {0:?}")]
    NoSuchPort(String),
    #[error("the switch is stopping")]
    Stopped,
    #[error("port {0:?} is used by {1}: remove that first")]
    InUse(String, String),
    #[error(transparent)]
    Busy(#[from] Busy),
    #[error(transparent)]
    Datapath(#[from] datapath::DatapathError),
}

impl Switch {
    /// Builds the tables and starts the datapath on them. A bridge without
    /// controllers starts with table 0 `priority=0 actions=NORMAL`, as an Open
    /// vSwitch bridge does; with controllers it starts empty and the
    /// controllers install what they want.
    pub fn start(eal: Arc<Eal>, config: Config) -> anyhow::Result<Arc<Switch>> {
        let workers = eal.worker_lcores().len();
        let mut tables = FlowTables::new(PipelineConfig {
            n_tables: N_TABLES,
            // The control plane has its own contexts after the workers': one
            // for OpenFlow packet-out (the last), one for the virtual-network
            // profile's re-injected packets.
            workers: workers + 2,
            meter_shares: workers,
            mac_capacity: config.bridge.mac_table_size as usize,
            mac_aging: config.bridge.mac_aging_s,
            max_entries_per_table: config.bridge.flow_limit.max(1) as usize,
            ..PipelineConfig::default()
        });
        for p in &config.ports {
            let mut info = PortInfo::new(p.ofport);
            info.vlan = policy(&p.vlan_mode());
            tables.set_port(info);
        }
        if config.bridge.controllers.is_empty() {
            // Without a controller the bridge starts as a learning switch.
            let normal = FlowModReq::add(
                0,
                0,
                Match::any(),
                Instructions::apply(vec![Action::output(OFPP_NORMAL)]),
            );
            tables
                .apply_flow_mod(normal, Duration::ZERO)
                .map_err(|e| anyhow::anyhow!("default flow: {e}"))?;
        }
        tables.publish();
        let mut specs = Vec::new();
        let mut failed: Vec<anyhow::Error> = Vec::new();
        for p in config.ports.iter().filter(|p| !p.is_tunnel()) {
            match port_spec(p) {
                Ok(s) => specs.push(s),
                Err(e) => failed.push(anyhow::anyhow!(e)),
            }
        }
        let (mut dp, dp_failed) = Datapath::start(
            &eal,
            &DatapathSettings {
                conntrack: crate::datapath_conv::conntrack_config(&config.conntrack),
                ..datapath_settings(&config.datapath)
            },
            &specs,
            &tables,
        )?;
        failed.extend(dp_failed.into_iter().map(|(_, e)| anyhow::Error::from(e)));
        crate::tunnels::start(&mut dp, &config)?;
        // A port that cannot start is left down and the switch runs with the others; when
        // none of the configured ports starts, the configuration is what is wrong.
        let ethdevs = config.ports.iter().filter(|p| !p.is_tunnel()).count();
        if ethdevs > 0 && failed.len() == ethdevs {
            return Err(failed.remove(0));
        }
        for e in &failed {
            tracing::error!("port could not be started, the switch runs without it: {e}");
        }
        let inject_ctx = tables.worker_context(workers);
        let packet_out_ctx = tables.worker_context(workers + 1);
        let desc = crate::profile::Description {
            networks: config.networks.clone(),
            instances: config.instances.clone(),
            metadata: config.metadata.clone(),
            security_groups: config.security_groups.clone(),
        };
        let mut api_owned = crate::api::Owned::default();
        if config.bridge.controllers.is_empty() {
            // The default NORMAL flow is the bridge's own; the API may delete it.
            api_owned
                .flows
                .insert(crate::api::flow_key(0, 0, &openflow::Match::any()));
        }
        let now = Instant::now();
        let health = dp.health();
        let state = State {
            ports: config.ports.clone(),
            tables,
            datapath: Some(dp),
            profile: ProfileState::default(),
            api_owned,
            packet_out_ctx,
            inject_ctx,
            dirty: false,
            last_change: now,
            uncompacted: false,
            fail_open: (Some(now), false),
            last_expiry: now,
            publish_pacing: (now, Duration::ZERO),
            last_link_check: now,
            links: HashMap::new(),
            events: Vec::new(),
            last_rebalance_check: now,
            geneve_tlv: Default::default(),
        };
        let sw = Arc::new(Switch {
            config,
            started: now,
            state: Mutex::new(state),
            agent: Mutex::new(Weak::new()),
            counters: ControlCounters::default(),
            profile_counters: ProfileCounters::default(),
            health,
            eal,
        });
        if !desc.networks.is_empty() || !desc.security_groups.is_empty() {
            let mut st = sw.lock()?;
            let now = sw.now();
            crate::profile::set(&mut st, now, desc)
                .map_err(|e| anyhow::anyhow!("virtual networks: {e}"))?;
        }
        Ok(sw)
    }

    /// The switch's state, waiting at most [`LOCK_WAIT`] for it.
    pub fn lock(&self) -> Result<Locked<'_>, Busy> {
        self.lock_within(LOCK_WAIT).ok_or_else(|| {
            self.counters.busy.fetch_add(1, Relaxed);
            tracing::warn!("the switch's state was busy for {LOCK_WAIT:?}: call refused");
            Busy
        })
    }

    /// The switch's state if it can be had within `wait`.
    pub fn lock_within(&self, wait: Duration) -> Option<Locked<'_>> {
        let guard = self.state.try_lock_for(wait)?;
        Some(Locked {
            sw: self,
            guard: Some(guard),
        })
    }

    /// Where asynchronous OpenFlow messages go.
    pub fn set_agent(&self, agent: Weak<Agent>) {
        *self.agent.lock() = agent;
    }

    pub fn agent(&self) -> Option<Arc<Agent>> {
        self.agent.lock().upgrade()
    }

    /// Time since start, the pipeline's clock for timeouts.
    pub fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// Publishes pending changes; the version every worker must acknowledge
    /// before they are visible to every packet.
    fn publish_for_sync(&self) -> Result<u64, Busy> {
        let mut st = self.lock()?;
        st.publish_pending();
        Ok(st.tables.published_version())
    }

    /// Publishes pending changes; true when every worker already runs a
    /// version with them (then [`Switch::sync`] would return at once). Never
    /// waits for the workers (only, boundedly, for the state).
    pub fn try_sync(&self) -> Result<bool, Busy> {
        let v = self.publish_for_sync()?;
        Ok(self.health.wait_for_version(v, Instant::now()).is_ok())
    }

    /// Publishes pending changes and waits, without holding the state, until
    /// every worker has acknowledged the new version (workers acknowledge
    /// between bursts, so this takes microseconds): afterwards every packet
    /// sees every change made before. Gives up after [`SYNC_WAIT`] with
    /// [`SyncError::Stuck`], logged and counted: the change stays published,
    /// but nothing is promised about the stuck worker.
    pub fn sync(&self) -> Result<(), SyncError> {
        let v = self.publish_for_sync()?;
        self.health
            .wait_for_version(v, Instant::now() + SYNC_WAIT)
            .map_err(|stuck| {
                self.counters.sync_timeouts.fetch_add(1, Relaxed);
                tracing::error!("{stuck}");
                SyncError::Stuck(stuck.workers.len().max(1), SYNC_WAIT)
            })
    }

    /// The workers' acknowledgements and heartbeats (status, metrics).
    pub fn health(&self) -> &Arc<datapath::WorkerHealth> {
        &self.health
    }

    /// The control plane's periodic work: publish pending changes, follow
    /// links and fail mode, expire timed-out flows (FLOW_REMOVED where asked),
    /// relay a bounded number of packet-ins. Skips the tick (counted) when the
    /// state is busy: the caller's loop must keep reading its stop flag.
    pub fn housekeeping(&self) {
        let t0 = Instant::now();
        let Some(mut st) = self.lock_within(Duration::from_millis(20)) else {
            self.counters.ticks_skipped.fetch_add(1, Relaxed);
            return;
        };
        let now = self.now();
        let connected = self.agent().map(|a| a.controllers_connected() > 0);
        st.check_fail_mode(&self.config, connected.unwrap_or(false));
        st.check_links();
        // Compiling a large table costs time: while flow-mods stream in,
        // publish at most once per ten compile durations, so that the
        // compile work stays a tenth of the control plane's time rather
        // than growing with the square of the table (a barrier publishes
        // at once).
        if st.dirty
            && st.publish_pacing.0.elapsed()
                >= (st.publish_pacing.1 * 10).max(Duration::from_millis(5))
        {
            let t = Instant::now();
            st.publish_pending();
            st.publish_pacing = (Instant::now(), t.elapsed());
        }
        // Idle for a second after changes: one level per table again.
        if !st.dirty && st.last_change.elapsed() >= Duration::from_secs(1) && st.uncompacted {
            st.uncompacted = false;
            let t = Instant::now();
            if st.tables.compact() {
                tracing::debug!("tables compacted in {:?}", t.elapsed());
            }
        }
        // Timeouts have a resolution of a second; expiry reads every counter.
        if st.last_expiry.elapsed() >= Duration::from_secs(1) {
            st.last_expiry = Instant::now();
            let removed = st.tables.expire(now);
            if !removed.is_empty() {
                st.tables.publish();
            }
            st.flows_removed(removed);
        }
        self.auto_rebalance(&mut st);
        let left = st.drain_packet_ins(now, &self.profile_counters, PACKET_INS_PER_TICK);
        // Ports withdrawn after a worker timed out, once every worker let go of them:
        // closed by the closer thread, never under the state.
        if let Some(d) = st.datapath.as_mut() {
            d.underlay_tick();
        }
        let reaped = st.datapath.as_mut().map(|d| (d.closer(), d.reap()));
        drop(st);
        if let Some((closer, ports)) = reaped {
            ports.into_iter().for_each(|p| closer.close(p));
        }
        if left {
            self.counters.packet_in_backlog_ticks.fetch_add(1, Relaxed);
        }
        let us = t0.elapsed().as_micros() as u64;
        self.counters.longest_tick_us.fetch_max(us, Relaxed);
    }

    /// The automatic rebalance (`[datapath] auto_rebalance`): every interval, measures the
    /// queues' loads and moves queues when the busiest worker is above the threshold and
    /// the moves improve the variance of the workers' loads by the configured margin.
    /// Bounded: a move that a worker does not acknowledge gives up after the datapath's
    /// ack timeout, and the following ones are refused at once.
    fn auto_rebalance(&self, st: &mut State) {
        let c = &self.config.datapath;
        if !c.auto_rebalance
            || st.last_rebalance_check.elapsed()
                < Duration::from_secs(c.rebalance_interval_s.into())
        {
            return;
        }
        st.last_rebalance_check = Instant::now();
        let Some(dp) = st.datapath.as_mut() else {
            return;
        };
        let plan = dp.plan_rebalance(true);
        let busiest = plan.load_before.iter().cloned().fold(0.0, f64::max);
        if plan.moves.is_empty()
            || busiest * 100.0 < f64::from(c.rebalance_load_threshold_percent)
            || plan.improvement_percent() < f64::from(c.rebalance_improvement_percent)
        {
            return;
        }
        tracing::info!(
            busiest = format!("{:.2}", busiest),
            improvement_percent = format!("{:.0}", plan.improvement_percent()),
            moves = plan.moves.len(),
            "automatic rebalance"
        );
        let moved = match dp.apply_rebalance(&plan) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("automatic rebalance stopped: {e}");
                0
            }
        };
        self.counters.auto_rebalances.fetch_add(1, Relaxed);
        self.counters
            .rx_queue_moves
            .fetch_add(moved as u64, Relaxed);
    }

    /// Rebalances rx queues now, from the loads measured since the previous measurement
    /// (the last rebalance, automatic check or start; a dry run does not count): moves queues when that makes the
    /// workers' loads more even, or only plans with `dry_run`. Returns the plan and the
    /// moves done.
    pub fn rebalance(
        &self,
        dry_run: bool,
    ) -> Result<(datapath::RebalancePlan, usize), RebalanceError> {
        let mut st = self.lock()?;
        let dp = st.datapath.as_mut().ok_or(RebalanceError::NoDatapath)?;
        // A dry run leaves the measurement running for the real one.
        let plan = dp.plan_rebalance(!dry_run);
        if dry_run || plan.moves.is_empty() {
            return Ok((plan, 0));
        }
        let moved = dp.apply_rebalance(&plan);
        let n = moved.as_ref().map_or(0, |n| *n);
        self.counters.rebalances.fetch_add(1, Relaxed);
        self.counters.rx_queue_moves.fetch_add(n as u64, Relaxed);
        moved.map_err(RebalanceError::Datapath)?;
        Ok((plan, n))
    }

    /// Moves rx queue `queue` of `port` to the worker on `to_lcore`; returns the lcore it
    /// was on.
    pub fn move_rx_queue(
        &self,
        port: &str,
        queue: u16,
        to_lcore: u32,
    ) -> Result<u32, RebalanceError> {
        let mut st = self.lock()?;
        let dp = st.datapath.as_mut().ok_or(RebalanceError::NoDatapath)?;
        let health = dp.health();
        let worker = (0..dp.workers_count())
            .find(|&w| health.lcore(w) == to_lcore)
            .ok_or(RebalanceError::NoSuchLcore(to_lcore))?;
        let from = dp
            .workers()
            .iter()
            .find(|w| w.rx_queues.iter().any(|(p, q)| p == port && *q == queue))
            .map(|w| w.lcore);
        dp.move_rx_queue(port, queue, worker)
            .map_err(RebalanceError::Datapath)?;
        if from != Some(to_lcore) {
            self.counters.rx_queue_moves.fetch_add(1, Relaxed);
        }
        Ok(from.unwrap_or(to_lcore))
    }

    /// Asks every worker's connection tracker (dump, flush or stats) and waits for the
    /// answers without holding the state: the request is queued under the lock, the wait
    /// (bounded by the datapath's `ack_timeout`) happens after it is released.
    pub fn conntrack(
        &self,
        op: datapath::ConntrackOp,
    ) -> Result<Vec<datapath::ConntrackReply>, ConntrackOpsError> {
        let pending = {
            let mut st = self.lock()?;
            let dp = st.datapath.as_mut().ok_or(ConntrackOpsError::NoDatapath)?;
            dp.conntrack_request(op)
                .map_err(ConntrackOpsError::Datapath)?
        };
        pending.wait().map_err(ConntrackOpsError::Datapath)
    }

    /// Adds a port at runtime: the datapath creates it and hands its queues to
    /// the workers, the pipeline learns it, controllers get PORT_STATUS ADD.
    pub fn add_port(&self, pc: PortConfig) -> Result<(), PortChangeError> {
        let mut st = self.lock()?;
        if st.ports.iter().any(|p| p.name == pc.name) {
            return Err(PortChangeError::NameExists(pc.name));
        }
        if st.ports.iter().any(|p| p.ofport == pc.ofport) {
            return Err(PortChangeError::OfportExists(pc.ofport));
        }
        let mut check = self.config.clone();
        check.ports = st.ports.clone();
        check.ports.push(pc.clone());
        check
            .validate_ports()
            .map_err(|(key, msg)| PortChangeError::Invalid(format!("{key}: {msg}")))?;
        if pc.is_tunnel() {
            let now = self.now();
            return crate::tunnel_ports::add(&mut st, pc, now);
        }
        let spec = port_spec(&pc).map_err(PortChangeError::Invalid)?;
        let dp = st.datapath.as_mut().ok_or(PortChangeError::Stopped)?;
        // Ports withdrawn earlier that every worker has let go: closed off the lock.
        let (closer, reaped) = (dp.closer(), dp.reap());
        let added = dp.add_port(&self.eal, &spec);
        if let Err(e) = added {
            drop(st);
            reaped.into_iter().for_each(|p| closer.close(p));
            return Err(e.into());
        }
        let mut info = PortInfo::new(pc.ofport);
        info.vlan = policy(&pc.vlan_mode());
        st.tables.set_port(info);
        st.tables.publish();
        let ofport = pc.ofport;
        st.ports.push(pc);
        crate::profile::ports_changed(&mut st, self.now());
        if let Some(desc) = st.port_desc(ofport) {
            st.events.push(AsyncEvent::PortStatus(PortStatus {
                reason: PortReason::Add,
                desc,
            }));
        }
        drop(st);
        reaped.into_iter().for_each(|p| closer.close(p));
        Ok(())
    }

    /// Removes a port at runtime; the other ports keep forwarding.
    pub fn remove_port(&self, name: &str) -> Result<(), PortChangeError> {
        let mut st = self.lock()?;
        let pc = st.ports.iter().find(|p| p.name == name).cloned();
        let pc = pc.ok_or_else(|| PortChangeError::NoSuchPort(name.to_owned()))?;
        if let Some(user) = crate::profile::port_user(&st, name, pc.ofport) {
            return Err(PortChangeError::InUse(name.to_owned(), user));
        }
        if let Some(user) = crate::tunnel_ports::uplink_user(&st, name) {
            return Err(PortChangeError::InUse(name.to_owned(), user));
        }
        if pc.is_tunnel() {
            let now = self.now();
            return crate::tunnel_ports::remove(&mut st, &pc, now);
        }
        let desc = st.port_desc(pc.ofport);
        let dp = st.datapath.as_mut().ok_or(PortChangeError::Stopped)?;
        let (closer, mut detached) = (dp.closer(), dp.reap());
        let removed = dp.remove_port(name);
        let removed = match removed {
            Ok(p) => p,
            Err(e) => {
                drop(st);
                detached.into_iter().for_each(|p| closer.close(p));
                return Err(e.into());
            }
        };
        detached.push(removed);
        st.tables.remove_port(pc.ofport);
        st.tables.mac_table().flush_port(pc.ofport);
        st.tables.publish();
        st.ports.retain(|p| p.name != name);
        crate::profile::ports_changed(&mut st, self.now());
        if let Some(desc) = desc {
            st.events.push(AsyncEvent::PortStatus(PortStatus {
                reason: PortReason::Delete,
                desc,
            }));
        }
        // Closing can block (a vhost port with a stalled peer): never under the lock.
        drop(st);
        detached.into_iter().for_each(|p| closer.close(p));
        Ok(())
    }

    /// Administrative up/down of a port (OpenFlow's OFPPC_PORT_DOWN): a down
    /// port neither receives nor sends through the pipeline. Controllers get
    /// PORT_STATUS MODIFY. Shared by the management API and PORT_MOD.
    pub fn set_port_admin(&self, name: &str, up: bool) -> Result<(), PortChangeError> {
        let mut st = self.lock()?;
        let ofport = st
            .ports
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.ofport)
            .ok_or_else(|| PortChangeError::NoSuchPort(name.to_owned()))?;
        let down = pipeline::PortConfig::PORT_DOWN;
        let mask = pipeline::PortConfig(down.0);
        let config = if up { pipeline::PortConfig(0) } else { down };
        st.modify_port_config(ofport, config, mask)
            .ok_or_else(|| PortChangeError::NoSuchPort(name.to_owned()))?;
        Ok(())
    }

    /// Stops the workers (counters become final), keeping the ports open.
    pub fn halt(&self) {
        if let Some(mut st) = self.lock_within(STOP_LOCK_WAIT) {
            if let Some(dp) = st.datapath.as_mut() {
                dp.halt(Instant::now() + DATAPATH_STOP_WAIT);
            }
        }
    }

    /// Stops everything and releases the ports and buffers.
    pub fn stop(&self) {
        let dp = self
            .lock_within(STOP_LOCK_WAIT)
            .and_then(|mut st| st.datapath.take());
        if let Some(dp) = dp {
            let left = dp.stop(Instant::now() + DATAPATH_STOP_WAIT);
            if left != datapath::StopReport::default() {
                tracing::error!(?left, "datapath not fully stopped; left open");
            }
        }
    }

    /// The EAL the switch runs on.
    pub fn eal(&self) -> &Arc<Eal> {
        &self.eal
    }
}

impl State {
    /// Records that the tables changed; the next housekeeping tick (or a
    /// barrier) publishes one version for all changes since the last.
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
        self.last_change = Instant::now();
        self.uncompacted = true;
    }

    /// Publishes the changes made since the last publish, if any.
    pub fn publish_pending(&mut self) {
        if std::mem::take(&mut self.dirty) {
            self.tables.publish();
        }
    }

    /// Queues an asynchronous message for the controllers; it is sent when the
    /// state is released.
    pub fn publish_event(&mut self, event: AsyncEvent) {
        self.events.push(event);
    }

    /// FLOW_REMOVED for the removed flows that asked for it.
    pub fn flows_removed(&mut self, removed: Vec<pipeline::RemovedFlow>) {
        for r in removed {
            if r.entry.flags.contains(pipeline::FlowFlags::SEND_FLOW_REM) {
                self.events
                    .push(AsyncEvent::FlowRemoved(ofproto::flow_removed(&r)));
            }
        }
    }

    /// The name of table `t` (TABLE_FEATURES, dumps, metrics): the profile's
    /// stages by their seed names.
    pub fn table_name(&self, t: u8) -> String {
        if self.profile.is_active() {
            if let Some((_, n)) = vnet::table::NAMES.iter().find(|(id, _)| *id == t) {
                return (*n).to_owned();
            }
        }
        format!("table{t}")
    }

    /// Whether a port is administratively up (not OFPPC_PORT_DOWN).
    pub fn port_admin_up(&self, ofport: u32) -> bool {
        self.tables
            .ports()
            .get(ofport)
            .is_none_or(|i| !i.config.contains(pipeline::PortConfig::PORT_DOWN))
    }

    /// Changes a port's OpenFlow config bits under `mask`; PORT_STATUS MODIFY
    /// to the controllers. None if the pipeline has no such port.
    pub fn modify_port_config(
        &mut self,
        ofport: u32,
        config: pipeline::PortConfig,
        mask: pipeline::PortConfig,
    ) -> Option<()> {
        let mut info = self.tables.ports().get(ofport).cloned()?;
        info.config = pipeline::PortConfig((info.config.0 & !mask.0) | (config.0 & mask.0));
        self.tables.set_port(info);
        self.mark_dirty();
        if let Some(desc) = self.port_desc(ofport) {
            self.events.push(AsyncEvent::PortStatus(PortStatus {
                reason: PortReason::Modify,
                desc,
            }));
        }
        Some(())
    }

    /// The OpenFlow description of every port: identity, admin state, link.
    pub fn port_descs(&self) -> Vec<openflow::messages::Port> {
        crate::ofswitch::port_descs(self)
    }

    /// One port's description, if it exists.
    pub fn port_desc(&self, ofport: u32) -> Option<openflow::messages::Port> {
        self.port_descs().into_iter().find(|p| p.port_no == ofport)
    }

    /// Runs `data` (as if it came in on `in_port`) through `actions` (an
    /// output to TABLE runs the flow tables) and sends what comes out.
    pub fn inject(&mut self, now: Duration, in_port: u32, data: &[u8], actions: &[Action]) {
        let pipeline = self.tables.current();
        let mut key = packet::extract(data, in_port);
        let mut pkt = packet::VecBuf::new(data);
        let mut sink = crate::ofswitch::Collect::default();
        self.inject_ctx.set_now(now);
        pipeline.packet_out(actions, &mut pkt, &mut key, &mut self.inject_ctx, &mut sink);
        self.send_frames(sink.out, "injected packet");
    }

    /// Hands frames to the first worker for sending; never blocks (a full
    /// queue drops the frame, logged at debug level and counted by the datapath).
    pub fn send_frames(&self, frames: Vec<(u32, Vec<u8>)>, what: &str) {
        if let Some(dp) = self.datapath.as_ref() {
            for (port, frame) in frames {
                if let Err(e) = dp.send(port, &frame) {
                    tracing::debug!("{what} to {port}: {e}");
                }
            }
        }
    }

    /// Sends up to `max` queued packet-ins to the controllers (or to the
    /// profile, for its own flows). True when some are left for the next tick.
    pub fn drain_packet_ins(
        &mut self,
        now: Duration,
        counters: &ProfileCounters,
        max: usize,
    ) -> bool {
        let queue = self.tables.packet_in_queue();
        for r in queue.pop_batch(max) {
            if vnet::Role::of_cookie(r.cookie).is_some()
                && crate::profile::packet_in(self, now, counters, &r)
            {
                continue;
            }
            self.events
                .push(AsyncEvent::PacketIn(ofproto::packet_in(&r)));
        }
        !queue.is_empty()
    }

    /// Standalone fail mode: when the configured controllers have all been
    /// gone for three probe intervals, NORMAL takes table 0's table-miss until
    /// one returns. Secure mode never changes the tables.
    fn check_fail_mode(&mut self, config: &Config, connected: bool) {
        if config.bridge.fail_mode != FailMode::Standalone || config.bridge.controllers.is_empty() {
            return;
        }
        let limit = Duration::from_secs(3 * u64::from(config.openflow.probe_interval_s));
        let (since, open) = &mut self.fail_open;
        let change = match (connected, *open) {
            (true, true) => Some(MissPolicy::Drop),
            (false, false) if since.get_or_insert_with(Instant::now).elapsed() >= limit => {
                Some(MissPolicy::Normal)
            }
            _ => None,
        };
        if connected {
            *since = None;
        }
        if let Some(policy) = change {
            *open = policy == MissPolicy::Normal;
            let open = *open;
            if self.tables.set_miss_policy(0, policy).is_ok() {
                self.tables.publish();
            }
            if open {
                tracing::warn!(
                    "no controller for {limit:?}: fail mode standalone, NORMAL handles table-miss"
                );
            } else {
                tracing::info!("a controller is back: table-miss returns to the flow tables");
            }
        }
    }

    /// Follows link changes (a vhost-user guest connecting or going away, a
    /// tap's kernel side going down): the pipeline's liveness for
    /// fast-failover groups, and PORT_STATUS to controllers.
    fn check_links(&mut self) {
        if self.last_link_check.elapsed() < Duration::from_millis(200) {
            return;
        }
        self.last_link_check = Instant::now();
        let Some(dp) = self.datapath.as_ref() else {
            return;
        };
        let mut changed = Vec::new();
        for (ofport, up) in dp.links() {
            if self.links.insert(ofport, up).is_some_and(|was| was != up) {
                changed.push((ofport, up));
            }
        }
        if changed.is_empty() {
            return;
        }
        for (ofport, up) in &changed {
            if let Some(mut info) = self.tables.ports().get(*ofport).cloned() {
                info.live = *up;
                self.tables.set_port(info);
            }
        }
        self.tables.publish();
        for (ofport, up) in changed {
            tracing::info!(ofport, up, "link changed");
            if let Some(desc) = self.port_desc(ofport) {
                self.events.push(AsyncEvent::PortStatus(PortStatus {
                    reason: PortReason::Modify,
                    desc,
                }));
            }
        }
    }
}
