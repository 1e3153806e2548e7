//! The control plane's view of the switch: configuration, the flow tables
//! (which publish pipeline versions to the workers), and the datapath.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::datapath_conv::{datapath_settings, port_spec, vlan_policy as policy};
use datapath::Datapath;
use dpdk::Eal;

use ferroflow_config::{Config, FailMode, PortConfig};
use ofagent::{Agent, AsyncEvent};
use openflow::consts::OFPP_NORMAL;
use openflow::messages::{PortReason, PortStatus};
use parking_lot::Mutex;
use pipeline::{
    Action, FlowModReq, FlowTables, Instructions, Match, MissPolicy, PipelineConfig, PortInfo,
};

/// Tables in the pipeline: OpenFlow's maximum, as ovs-ofctl and controllers expect.
pub const N_TABLES: u8 = 255;

pub struct Switch {
    /// The configuration it started with.
    pub config: Config,
    /// The ports now, as configured (ports come and go at runtime).
    pub ports: Mutex<Vec<PortConfig>>,
    pub tables: Mutex<FlowTables>,
    pub datapath: Mutex<Option<Datapath>>,
    pub started: Instant,
    /// Flow changes not yet published to the workers.
    dirty: AtomicBool,
    /// When the tables last changed ([`Switch::now`] in nanoseconds), and whether they
    /// changed since the last compaction: an idle second after changes merges each
    /// table's levels into one (see `pipeline::Level`).
    last_change: AtomicU64,
    uncompacted: AtomicBool,
    agent: Mutex<Weak<Agent>>,
    /// Standalone fail mode: since when no controller has been connected, and
    /// whether NORMAL has taken over table-miss.
    fail_open: Mutex<(Option<Instant>, bool)>,
    last_expiry: Mutex<Instant>,
    /// When the last paced publish happened and how long it took.
    publish_pacing: Mutex<(Instant, Duration)>,
    last_link_check: Mutex<Instant>,
    /// Last link state seen per OpenFlow port.
    links: Mutex<std::collections::HashMap<u32, bool>>,
    /// The virtual-network profile (networks, instances, metadata service).
    pub profile: crate::profile::Profile,
    /// The profile's pipeline context, for packets it sends through the tables.
    inject_ctx: Mutex<pipeline::WorkerContext>,
    /// Last, so that it is dropped after the datapath.
    eal: Arc<Eal>,
}

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
        for p in &config.ports {
            match port_spec(p) {
                Ok(s) => specs.push(s),
                Err(e) => failed.push(anyhow::anyhow!(e)),
            }
        }
        let (dp, dp_failed) =
            Datapath::start(&eal, &datapath_settings(&config.datapath), &specs, &tables)?;
        failed.extend(dp_failed.into_iter().map(|(_, e)| anyhow::Error::from(e)));
        // A port that cannot start is left down and the switch runs with the others; when
        // none of the configured ports starts, the configuration is what is wrong.
        if !config.ports.is_empty() && failed.len() == config.ports.len() {
            return Err(failed.remove(0));
        }
        for e in &failed {
            tracing::error!("port could not be started, the switch runs without it: {e}");
        }
        let inject_ctx = Mutex::new(tables.worker_context(workers));
        let profile = crate::profile::Description {
            networks: config.networks.clone(),
            instances: config.instances.clone(),
            metadata: config.metadata.clone(),
        };
        let sw = Arc::new(Switch {
            profile: crate::profile::Profile::default(),
            inject_ctx,
            ports: Mutex::new(config.ports.clone()),
            config,
            eal,
            last_expiry: Mutex::new(Instant::now()),
            publish_pacing: Mutex::new((Instant::now(), Duration::ZERO)),
            last_link_check: Mutex::new(Instant::now()),
            links: Mutex::new(std::collections::HashMap::new()),
            tables: Mutex::new(tables),
            datapath: Mutex::new(Some(dp)),
            started: Instant::now(),
            dirty: AtomicBool::new(false),
            last_change: AtomicU64::new(0),
            uncompacted: AtomicBool::new(false),
            agent: Mutex::new(Weak::new()),
            fail_open: Mutex::new((Some(Instant::now()), false)),
        });
        if !profile.networks.is_empty() {
            sw.profile
                .set(&sw, profile)
                .map_err(|e| anyhow::anyhow!("virtual networks: {e}"))?;
        }
        Ok(sw)
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

    /// Runs `data` (as if it came in on `in_port`) through `actions` (an
    /// output to TABLE runs the flow tables) and sends what comes out.
    pub fn inject(&self, in_port: u32, data: &[u8], actions: &[Action]) {
        let pipeline = self.tables.lock().current();
        let mut key = packet::extract(data, in_port);
        let mut pkt = packet::VecBuf::new(data);
        let mut sink = crate::ofswitch::Collect::default();
        {
            let mut ctx = self.inject_ctx.lock();
            ctx.set_now(self.now());
            pipeline.packet_out(actions, &mut pkt, &mut key, &mut ctx, &mut sink);
        }
        if let Some(dp) = self.datapath.lock().as_ref() {
            for (port, frame) in sink.out {
                if let Err(e) = dp.send(port, &frame) {
                    tracing::debug!("injected packet to {port}: {e}");
                }
            }
        }
    }

    /// Where asynchronous OpenFlow messages go.
    pub fn set_agent(&self, agent: Weak<Agent>) {
        *self.agent.lock() = agent;
    }

    pub fn publish_event(&self, event: AsyncEvent) {
        if let Some(agent) = self.agent.lock().upgrade() {
            agent.publish(&event);
        }
    }

    /// Records that the tables changed; the next housekeeping tick (or a
    /// barrier) publishes one version for all changes since the last.
    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
        self.last_change
            .store(self.now().as_nanos() as u64, Ordering::Relaxed);
        self.uncompacted.store(true, Ordering::Relaxed);
    }

    /// Publishes pending changes; true when no worker still uses an older
    /// version (then [`Switch::sync`] would return at once). Never waits.
    pub fn try_sync(&self) -> bool {
        let mut tables = self.tables.lock();
        if self.dirty.swap(false, Ordering::AcqRel) {
            tables.publish();
        }
        tables.is_quiescent()
    }

    /// Publishes pending changes and waits until no worker still uses an
    /// older version: afterwards every packet sees every change made before.
    pub fn sync(&self) {
        let mut tables = self.tables.lock();
        if self.dirty.swap(false, Ordering::AcqRel) {
            tables.publish();
        }
        // A busy worker lets go of the old version after its current burst (a few
        // microseconds; an idle one holds none): yield first, so that a barrier after each
        // flow-mod does not cost a sleep's granularity each time, then sleep.
        let start = Instant::now();
        let deadline = start + Duration::from_secs(2);
        while !tables.is_quiescent() && Instant::now() < deadline {
            if start.elapsed() < Duration::from_micros(200) {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }

    /// Standalone fail mode: when the configured controllers have all been
    /// gone for three probe intervals, NORMAL takes table 0's table-miss until
    /// one returns. Secure mode never changes the tables.
    fn check_fail_mode(&self) {
        if self.config.bridge.fail_mode != FailMode::Standalone
            || self.config.bridge.controllers.is_empty()
        {
            return;
        }
        let connected = self
            .agent
            .lock()
            .upgrade()
            .is_some_and(|a| a.controllers_connected() > 0);
        let limit = Duration::from_secs(3 * u64::from(self.config.openflow.probe_interval_s));
        let mut state = self.fail_open.lock();
        let (since, open) = &mut *state;
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
            let mut tables = self.tables.lock();
            if tables.set_miss_policy(0, policy).is_ok() {
                tables.publish();
            }
            if *open {
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
    fn check_links(&self) {
        {
            let mut last = self.last_link_check.lock();
            if last.elapsed() < Duration::from_millis(200) {
                return;
            }
            *last = Instant::now();
        }
        // A port being added or removed holds the datapath for a while: look
        // again on a later tick rather than stall the control plane.
        let links = match self
            .datapath
            .try_lock_for(Duration::from_millis(20))
            .as_deref()
        {
            Some(Some(dp)) => dp.links(),
            _ => return,
        };
        let mut changed = Vec::new();
        {
            let mut known = self.links.lock();
            for (ofport, up) in links {
                if known.insert(ofport, up).is_some_and(|was| was != up) {
                    changed.push((ofport, up));
                }
            }
        }
        if changed.is_empty() {
            return;
        }
        {
            let mut tables = self.tables.lock();
            for (ofport, up) in &changed {
                if let Some(mut info) = tables.ports().get(*ofport).cloned() {
                    info.live = *up;
                    tables.set_port(info);
                }
            }
            tables.publish();
        }
        for (ofport, up) in changed {
            tracing::info!(ofport, up, "link changed");
            if let Some(desc) = crate::ofswitch::port_desc(self, ofport) {
                self.publish_event(AsyncEvent::PortStatus(PortStatus {
                    reason: PortReason::Modify,
                    desc,
                }));
            }
        }
    }

    /// Sends queued packet-ins to the controllers.
    pub fn drain_packet_ins(&self) {
        let queue = self.tables.lock().packet_in_queue();
        while let Some(r) = queue.pop() {
            if vnet::Role::of_cookie(r.cookie).is_some() && self.profile.packet_in(self, &r) {
                continue;
            }
            self.publish_event(AsyncEvent::PacketIn(r.to_message()));
        }
    }

    /// The control plane's periodic work: publish pending changes, relay
    /// packet-ins, expire timed-out flows (FLOW_REMOVED where asked).
    pub fn housekeeping(&self) {
        self.check_fail_mode();
        self.check_links();
        let removed = {
            let mut tables = self.tables.lock();
            // Compiling a large table costs time: while flow-mods stream in,
            // publish at most once per ten compile durations, so that the
            // compile work stays a tenth of the control plane's time rather
            // than growing with the square of the table (a barrier publishes
            // at once).
            let mut pacing = self.publish_pacing.lock();
            if self.dirty.load(Ordering::Acquire)
                && pacing.0.elapsed() >= (pacing.1 * 10).max(Duration::from_millis(5))
            {
                self.dirty.store(false, Ordering::Release);
                let t = Instant::now();
                tables.publish();
                *pacing = (Instant::now(), t.elapsed());
            }
            drop(pacing);
            // Idle for a second after changes: one level per table again.
            let idle = self.now().saturating_sub(Duration::from_nanos(
                self.last_change.load(Ordering::Relaxed),
            ));
            if !self.dirty.load(Ordering::Acquire)
                && idle >= Duration::from_secs(1)
                && self.uncompacted.swap(false, Ordering::Relaxed)
            {
                let t = Instant::now();
                if tables.compact() {
                    tracing::debug!("tables compacted in {:?}", t.elapsed());
                }
            }
            // Timeouts have a resolution of a second; expiry reads every counter.
            let mut last = self.last_expiry.lock();
            if last.elapsed() < Duration::from_secs(1) {
                Vec::new()
            } else {
                *last = Instant::now();
                let removed = tables.expire(self.now());
                if !removed.is_empty() {
                    tables.publish();
                }
                removed
            }
        };
        for r in removed {
            if r.entry
                .flags
                .contains(openflow::consts::FlowModFlags::SEND_FLOW_REM)
            {
                self.publish_event(AsyncEvent::FlowRemoved(pipeline::ofconv::flow_removed(&r)));
            }
        }
        self.drain_packet_ins();
    }

    /// Adds a port at runtime: the datapath creates it and hands its queues to
    /// the workers, the pipeline learns it, controllers get PORT_STATUS ADD.
    pub fn add_port(&self, pc: PortConfig) -> Result<(), PortChangeError> {
        {
            let ports = self.ports.lock();
            if ports.iter().any(|p| p.name == pc.name) {
                return Err(PortChangeError::NameExists(pc.name));
            }
            if ports.iter().any(|p| p.ofport == pc.ofport) {
                return Err(PortChangeError::OfportExists(pc.ofport));
            }
            let mut check = self.config.clone();
            check.ports = ports.clone();
            check.ports.push(pc.clone());
            check
                .validate_ports()
                .map_err(|(key, msg)| PortChangeError::Invalid(format!("{key}: {msg}")))?;
        }
        let spec = port_spec(&pc).map_err(PortChangeError::Invalid)?;
        {
            let mut guard = self.datapath.lock();
            let dp = guard.as_mut().ok_or(PortChangeError::Stopped)?;
            let closer = dp.closer();
            let reaped = dp.reap();
            let added = dp.add_port(&self.eal, &spec);
            drop(guard);
            reaped.into_iter().for_each(|p| closer.close(p));
            added?;
        }
        {
            let mut tables = self.tables.lock();
            let mut info = PortInfo::new(pc.ofport);
            info.vlan = policy(&pc.vlan_mode());
            tables.set_port(info);
            tables.publish();
        }
        let ofport = pc.ofport;
        self.ports.lock().push(pc);
        self.profile.ports_changed(self);
        if let Some(desc) = crate::ofswitch::port_desc(self, ofport) {
            self.publish_event(AsyncEvent::PortStatus(PortStatus {
                reason: PortReason::Add,
                desc,
            }));
        }
        Ok(())
    }

    /// Removes a port at runtime; the other ports keep forwarding.
    pub fn remove_port(&self, name: &str) -> Result<(), PortChangeError> {
        let pc = self.ports.lock().iter().find(|p| p.name == name).cloned();
        let pc = pc.ok_or_else(|| PortChangeError::NoSuchPort(name.to_owned()))?;
        if let Some(user) = self.profile.port_user(name, pc.ofport) {
            return Err(PortChangeError::InUse(name.to_owned(), user));
        }
        let desc = crate::ofswitch::port_desc(self, pc.ofport);
        {
            let mut tables = self.tables.lock();
            tables.remove_port(pc.ofport);
            tables.mac_table().flush_port(pc.ofport);
            tables.publish();
        }
        {
            let mut guard = self.datapath.lock();
            let dp = guard.as_mut().ok_or(PortChangeError::Stopped)?;
            let closer = dp.closer();
            let mut detached = dp.reap();
            let removed = dp.remove_port(name);
            drop(guard);
            let removed = removed.map(|p| detached.push(p));
            // Closing can block (a vhost port with a stalled peer): never under the lock.
            detached.into_iter().for_each(|p| closer.close(p));
            removed?;
        }
        self.ports.lock().retain(|p| p.name != name);
        self.profile.ports_changed(self);
        if let Some(desc) = desc {
            self.publish_event(AsyncEvent::PortStatus(PortStatus {
                reason: PortReason::Delete,
                desc,
            }));
        }
        Ok(())
    }

    /// Time since start, the pipeline's clock for timeouts.
    pub fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// Stops the workers (counters become final), keeping the ports open.
    pub fn halt(&self) {
        if let Some(dp) = self.datapath.lock().as_mut() {
            dp.halt(Instant::now() + Duration::from_secs(1));
        }
    }

    /// Stops everything and releases the ports and buffers.
    pub fn stop(&self) {
        let dp = self.datapath.lock().take();
        if let Some(dp) = dp {
            let left = dp.stop(Instant::now() + Duration::from_secs(1));
            if left != datapath::StopReport::default() {
                tracing::error!(?left, "datapath not fully stopped; left open");
            }
        }
    }
    /// Administrative up/down of a port (OpenFlow's OFPPC_PORT_DOWN): a down
    /// port neither receives nor sends through the pipeline. Controllers get
    /// PORT_STATUS MODIFY. Shared by the management API and PORT_MOD.
    pub fn set_port_admin(&self, name: &str, up: bool) -> Result<(), PortChangeError> {
        let ofport = self
            .ports
            .lock()
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.ofport)
            .ok_or_else(|| PortChangeError::NoSuchPort(name.to_owned()))?;
        {
            let mut tables = self.tables.lock();
            let mut info = tables
                .ports()
                .get(ofport)
                .cloned()
                .ok_or_else(|| PortChangeError::NoSuchPort(name.to_owned()))?;
            let down = openflow::consts::PortConfig::PORT_DOWN;
            info.config = if up {
                openflow::consts::PortConfig(info.config.0 & !down.0)
            } else {
                openflow::consts::PortConfig(info.config.0 | down.0)
            };
            tables.set_port(info);
        }
        self.mark_dirty();
        if let Some(desc) = crate::ofswitch::port_desc(self, ofport) {
            self.publish_event(AsyncEvent::PortStatus(PortStatus {
                reason: PortReason::Modify,
                desc,
            }));
        }
        Ok(())
    }

    /// Whether a port is administratively up (not OFPPC_PORT_DOWN).
    pub fn port_admin_up(&self, ofport: u32) -> bool {
        self.tables
            .lock()
            .ports()
            .get(ofport)
            .is_none_or(|i| !i.config.contains(openflow::consts::PortConfig::PORT_DOWN))
    }
}
