use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use dpdk::{
    Eal, LaunchedWorker, LinkStatus, Mbuf, Mempool, Port, PortConfig as QueueConfig, PortStats,
};
use pipeline::FlowTables;
use serde::Serialize;
use tracing::{error, info, warn};

use crate::closer::{DetachedPort, PortCloser};
use crate::counters::{PortReport, QueueCounters, RxQueueReport, WorkerCounters, WorkerReport};
use crate::health::WorkerHealth;
use crate::ports::PortIndex;
use crate::rebalance::{QueueLoad, RebalancePlan};
use crate::spec::{DatapathSettings, PortSpec};
use crate::tunnel::{
    NeighbourStatus, SlowQueue, TunnelPort, TunnelSpec, TunnelStatus, Tunnels, Underlay,
    UnderlaySettings, UnderlayStatus, SLOW_QUEUE,
};
use crate::worker::{PolledQueue, Worker};

/// Why the datapath, a port or a port change failed, naming the port, worker or resource.
#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    #[error(
        "no worker lcores: [eal] lcores must list the control lcore and at least one worker lcore"
    )]
    NoWorkers,
    #[error("cannot create the connection tracker: {0}")]
    Conntrack(conntrack::Error),
    #[error("cannot create the packet buffer pool: {0}")]
    Mempool(dpdk::Error),
    #[error("port {port:?}: {cause}")]
    Port { port: String, cause: dpdk::Error },
    #[error("worker on lcore {lcore}: {cause}")]
    Launch { lcore: u32, cause: dpdk::Error },
    #[error("a datapath holds at most {MAX_PORTS} ports")]
    TooManyPorts,
    #[error("a port named {0:?} or with its OpenFlow number exists already")]
    PortExists(String),
    #[error("no port named {0:?}")]
    NoSuchPort(String),
    #[error("the datapath is stopping")]
    Stopped,
    /// The socket of a vhost-user server port could not be given its configured mode,
    /// owner or group; the port is removed again.
    #[error("port {port:?}: vhost-user socket: {cause}")]
    SocketAccess { port: String, cause: String },
    /// The path of a vhost-user server port is taken: by another process serving it, or by
    /// something that is not a socket. (A socket left by a dead process is removed instead.)
    #[error("port {port:?}: {cause}")]
    VhostSocket { port: String, cause: String },
    /// A port of that name is still being withdrawn after a port change a worker did not
    /// acknowledge in time; it goes once that worker catches up ([`Datapath::reap`]).
    #[error("port {0:?} is still being withdrawn from a worker that has not acknowledged it")]
    Retiring(String),
    /// A worker's command queue is full (it has not run for a long while); nothing changed.
    #[error("the worker on lcore {lcore} is not taking port changes (its command queue is full); nothing changed")]
    WorkerBusy { lcore: u32 },
    /// A worker did not acknowledge a port change within the datapath's `ack_timeout`; the
    /// change was undone (an added port withdrawn, a removed one kept), nothing was closed.
    #[error("the worker on lcore {lcore} did not acknowledge the port change within {:.3} s (stalled?); the change was undone", .waited.as_secs_f64())]
    WorkerTimeout { lcore: u32, waited: Duration },
    /// A tunnel port's uplink is not a port of this datapath.
    #[error("tunnel port {tunnel:?}: its uplink (OpenFlow port {uplink}) is not an ethdev port of the switch")]
    NoUplink { tunnel: String, uplink: u32 },
    /// No route, gateway or on-link prefix reaches a tunnel's remote endpoint.
    #[error("tunnel port {tunnel:?}: no route to {remote} (not on the local prefix, no [tunnels] route or gateway)")]
    NoRoute { tunnel: String, remote: String },
    /// No worker polls this rx queue of the port (it has fewer queues).
    #[error("port {port:?} has no rx queue {queue}")]
    NoSuchQueue { port: String, queue: u16 },
    /// Workers are numbered from 0 in lcore order.
    #[error("no worker {0} (workers are numbered from 0)")]
    NoSuchWorker(usize),
    /// An rx queue move is still waiting for a stalled worker to hand the queue over;
    /// nothing changed. It completes when that worker runs again.
    #[error(
        "an rx queue move is still waiting for a worker to hand the queue over; nothing changed"
    )]
    MoveInProgress,
    /// A worker did not hand over or take up a moved rx queue within the `ack_timeout`.
    /// The move is not undone: it completes when the worker runs again (until then the
    /// queue is not polled and port changes are refused with `MoveInProgress`).
    #[error("the worker on lcore {lcore} did not take part in the rx queue move within {:.3} s (stalled?); it completes when the worker runs again", .waited.as_secs_f64())]
    MoveTimeout { lcore: u32, waited: Duration },
    /// A worker did not answer a connection-tracking request within the `ack_timeout`
    /// (stalled?); nothing was waited for further.
    #[error("the worker on lcore {lcore} did not answer the connection-tracking request within {:.3} s (stalled?)", .waited.as_secs_f64())]
    ConntrackTimeout { lcore: u32, waited: Duration },
}

/// A port created and started, not yet handed to the workers.
struct PreparedPort {
    entry: PortEntry,
    rx: Vec<dpdk::RxQueue>,
    tx: Vec<dpdk::TxQueue>,
}

impl WorkerLink {
    /// Queues a command; the caller checked there is room ([`Datapath::check_room`]), and
    /// only the control plane pushes.
    fn push(&mut self, cmd: Command) {
        if self.commands.push(cmd).is_err() {
            unreachable!("room for the command was checked before");
        }
        self.sent += 1;
    }
}

/// A port as the control plane sees it: identity, link, the driver's counters
/// and the switch's.
#[derive(Debug, Clone, Serialize)]
pub struct PortStatus {
    pub name: String,
    pub ofport: u32,
    pub device: String,
    pub driver: String,
    pub vlan: String,
    /// `aa:bb:cc:dd:ee:ff` in JSON (stats file, `ferroflowctl --json`), as people and tools write it.
    #[serde(serialize_with = "mac_string")]
    pub mac: [u8; 6],
    pub link_up: bool,
    pub speed_mbps: u32,
    pub driver_stats: DriverStats,
    pub switch_stats: PortReport,
}

fn mac_string<S: serde::Serializer>(mac: &[u8; 6], s: S) -> Result<S::Ok, S::Error> {
    let [a, b, c, d, e, f] = mac;
    s.serialize_str(&format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}"))
}

/// `rte_eth_stats` of a port.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DriverStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_missed: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_nombuf: u64,
}

impl From<PortStats> for DriverStats {
    fn from(s: PortStats) -> Self {
        DriverStats {
            rx_packets: s.rx_packets,
            tx_packets: s.tx_packets,
            rx_bytes: s.rx_bytes,
            tx_bytes: s.tx_bytes,
            rx_missed: s.rx_missed,
            rx_errors: s.rx_errors,
            tx_errors: s.tx_errors,
            rx_nombuf: s.rx_nombuf,
        }
    }
}

struct PortEntry {
    /// Slot in the workers' per-port arrays (tx queues, batches, counters).
    slot: usize,
    port: Port,
    name: String,
    ofport: u32,
    mac: [u8; 6],
    driver: String,
    vlan: String,
    /// By rx queue id: the counters that travel with each queue between workers.
    rx_counters: Vec<Arc<QueueCounters>>,
}

impl PortEntry {
    fn detach(self) -> DetachedPort {
        DetachedPort {
            name: self.name,
            port: self.port,
        }
    }
}

/// A port withdrawn after an add that a worker did not acknowledge in time: closed once
/// every worker applied the commands up to `targets` (the add and its withdrawal).
struct Retiring {
    entry: PortEntry,
    /// Per worker, the command count that includes the withdrawal.
    targets: Vec<u64>,
}

/// Most ports one datapath holds: sizes the workers' per-port counters.
pub const MAX_PORTS: usize = 256;

/// Commands a worker's queue holds. Every port change needs at most two per worker (the
/// change and its undoing), and is refused while a worker's queue has no room for both.
const COMMAND_QUEUE: usize = 4 * MAX_PORTS;

/// How long dropping a [`Datapath`] without [`Datapath::stop`] waits for workers and ports.
const DROP_DEADLINE: Duration = Duration::from_secs(1);

/// Commands from the control plane to a worker, applied between bursts.
pub(crate) enum Command {
    /// Start polling these rx queues and sending on this tx queue, per slot;
    /// all at once, so no packet is forwarded while some are unknown.
    AddPorts {
        ports: Vec<(usize, Vec<PolledQueue>, dpdk::TxQueue)>,
        index: Arc<PortIndex>,
    },
    /// Stop using `slot` (its packets in flight are sent or dropped first); its queues are
    /// parked in the worker, in case the removal is undone.
    RemovePort { slot: usize, index: Arc<PortIndex> },
    /// Undo a [`Command::RemovePort`] of `slot`: use its parked queues again.
    RestorePort { slot: usize, index: Arc<PortIndex> },
    /// Use this set of tunnel ports from the next burst on.
    SetTunnels(Arc<Tunnels>),
    /// Stop polling rx queue `queue` of `slot` and hand it to the worker that reads `to`
    /// (as a [`Command::TakeRx`], before acknowledging this command): the queue is always
    /// owned by exactly one worker or in flight between two.
    MoveRx {
        slot: usize,
        queue: u16,
        to: Arc<ArrayQueue<Command>>,
    },
    /// Start polling a queue handed over by another worker.
    TakeRx(PolledQueue),
    /// Answer a connection-tracking request from this worker's tracker.
    Conntrack(crate::ct_ops::ConntrackRequest),
}

/// A worker as the control plane reaches it.
struct WorkerLink {
    /// `None` once joined.
    launched: Option<LaunchedWorker>,
    commands: Arc<ArrayQueue<Command>>,
    /// Commands pushed; the worker's count of those it applied is in [`WorkerHealth`].
    sent: u64,
    /// The (port, rx queue) pairs handed to this worker.
    rx_queues: Vec<(String, u16)>,
}

/// What [`Datapath::stop`] could not finish by its deadline (the exit path leaks it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StopReport {
    /// Lcores whose worker had not left its loop: their ports and buffers are left open.
    pub workers_not_stopped: Vec<u32>,
    /// Ports not closed by the deadline.
    pub ports_not_closed: Vec<String>,
}

/// The running datapath: ports, workers and their counters. [`Datapath::stop`]
/// (or drop) stops the workers, then the ports, then frees the buffers, each
/// with a deadline; the caller drops the [`Eal`] after it.
pub struct Datapath {
    ports: Vec<PortEntry>,
    index: Arc<PortIndex>,
    workers: Vec<WorkerLink>,
    counters: Vec<Arc<WorkerCounters>>,
    health: Arc<WorkerHealth>,
    /// Frames from the control plane (packet-out), sent by the first worker on
    /// its own tx queues: a device may not have a queue to spare.
    inject: Arc<ArrayQueue<(usize, Mbuf)>>,
    stop: Arc<AtomicBool>,
    pool: Option<Mempool>,
    settings: DatapathSettings,
    retiring: Vec<Retiring>,
    /// Port indexes sent to workers and replaced since: kept until no worker holds them, so
    /// that they are freed here and never in a worker's loop.
    old_indexes: Vec<Arc<PortIndex>>,
    closer: PortCloser,
    /// Set once stopped: dropping does nothing more.
    shut_down: bool,
    /// Tunnel ports as the workers use them; replaced ones kept until no worker holds them.
    tunnels: Arc<Tunnels>,
    old_tunnels: Vec<Arc<Tunnels>>,
    /// ARP and ICMP for the tunnels' local IPs, from the workers.
    slow: Arc<SlowQueue>,
    underlay: Underlay,
    /// Live capture ([`crate::capture`]), shared with every worker.
    capture: Arc<crate::capture::CaptureTap>,
    /// Per worker, the command counts that complete the last rx queue move: port changes
    /// and further moves wait for it.
    moving: Option<Vec<u64>>,
    /// Busy cycles of every rx queue, and the TSC, when loads were last sampled
    /// ([`Datapath::plan_rebalance`]): loads are measured from there.
    load_baseline: (u64, Vec<(QueueName, u64)>),
}

/// A port's name and one of its rx queues.
type QueueName = (String, u16);

/// Control-plane frames waiting for the first worker.
const INJECT_QUEUE: usize = 1024;

/// Why the control plane could not send a packet.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("no port with OpenFlow number {0}")]
    NoSuchPort(u32),
    #[error("no packet buffer available")]
    NoBuffer,
    #[error("too many control-plane packets in flight")]
    QueueFull,
}

impl Datapath {
    /// Creates the ports, gives each worker lcore its share of the rx queues and one tx
    /// queue per port, and starts the workers. The pipeline's current version is what
    /// workers forward with; its worker contexts 0..workers go to the workers.
    ///
    /// Starts with the ports that work: those that could not be created come back with
    /// their errors beside the datapath. Fails only if the buffer pool cannot be made or a
    /// worker cannot be launched.
    pub fn start(
        eal: &Eal,
        settings: &DatapathSettings,
        ports: &[PortSpec],
        tables: &FlowTables,
    ) -> Result<(Datapath, Vec<(String, DatapathError)>), DatapathError> {
        let lcores = eal.worker_lcores();
        if lcores.is_empty() {
            return Err(DatapathError::NoWorkers);
        }
        let nworkers = lcores.len() as u32;
        // Room for every rx and tx descriptor of up to 16 ports (more can be
        // added at runtime), a burst in flight per worker and port, and the
        // per-lcore caches.
        let nports = (ports.len().min(MAX_PORTS) as u32).max(16);
        let needed = nports
            * nworkers
            * (u32::from(settings.rx_descriptors) + u32::from(settings.tx_descriptors))
            + nworkers * (nports + 1) * 64
            + 512 * (nworkers + 1)
            // Packets on their way to the worker owning their connection.
            + nworkers * (nworkers - 1) * crate::handoff::HANDOFF_RING as u32;
        let count = if settings.mbufs > 0 {
            settings.mbufs
        } else {
            needed.max(16_383)
        };
        let pool = Mempool::pktmbuf(eal, "ff_mbufs", count, 256, 2048 + 128)
            .map_err(DatapathError::Mempool)?;
        info!(mbufs = count, "packet buffer pool ready");

        let health =
            Arc::new(WorkerHealth::new(&lcores, dpdk::tsc_hz()).following(tables.handle()));
        let mut dp = Datapath {
            ports: Vec::new(),
            index: Arc::new(PortIndex::new(Vec::new())),
            workers: Vec::new(),
            counters: Vec::new(),
            health: Arc::clone(&health),
            inject: Arc::new(ArrayQueue::new(INJECT_QUEUE)),
            stop: Arc::new(AtomicBool::new(false)),
            pool: Some(pool),
            settings: settings.clone(),
            retiring: Vec::new(),
            old_indexes: Vec::new(),
            closer: PortCloser::new(),
            shut_down: false,
            tunnels: Arc::new(Tunnels::default()),
            old_tunnels: Vec::new(),
            slow: Arc::new(SlowQueue::new(SLOW_QUEUE)),
            underlay: Underlay::default(),
            capture: Arc::new(crate::capture::CaptureTap::new(MAX_PORTS)),
            moving: None,
            load_baseline: (dpdk::rdtsc(), Vec::new()),
        };
        let tsc_epoch = dpdk::rdtsc();
        let mut handoffs = crate::handoff::mesh(lcores.len()).into_iter();
        for (w, lcore) in lcores.iter().enumerate() {
            let counters = Arc::new(WorkerCounters::new(*lcore, MAX_PORTS));
            dp.counters.push(Arc::clone(&counters));
            let commands = Arc::new(ArrayQueue::new(COMMAND_QUEUE));
            let mut ctx = tables.worker_context(w);
            let tracker = conntrack::Tracker::new(conntrack::Config {
                shard: w,
                shards: lcores.len(),
                ..settings.conntrack
            })
            .map_err(DatapathError::Conntrack)?;
            ctx.attach_conntrack(tracker);
            let worker = Worker {
                rx: Vec::new(),
                tx: Vec::new(),
                ports: Arc::clone(&dp.index),
                pipeline: tables.handle(),
                ctx,
                counters,
                stop: Arc::clone(&dp.stop),
                tsc_hz: dpdk::tsc_hz().max(1),
                tsc_epoch,
                idle_sleep: settings.idle_sleep,
                inject: (w == 0).then(|| Arc::clone(&dp.inject)),
                commands: Arc::clone(&commands),
                health: Arc::clone(&health),
                id: w,
                parked: Vec::new(),
                keys: Box::new([packet::FlowKey::default(); dpdk::BURST_SIZE]),
                tunnels: Arc::clone(&dp.tunnels),
                slow: Arc::clone(&dp.slow),
                capture: Arc::clone(&dp.capture),
                handoff: handoffs.next().flatten(),
            };
            let launched = match LaunchedWorker::launch(eal, *lcore, move || worker.run()) {
                Ok(l) => l,
                Err(cause) => {
                    // This worker and the later ones never run: nothing to wait for.
                    for later in w..lcores.len() {
                        health.set_exited(later);
                    }
                    return Err(DatapathError::Launch {
                        lcore: *lcore,
                        cause,
                    });
                }
            };
            dp.workers.push(WorkerLink {
                launched: Some(launched),
                commands,
                sent: 0,
                rx_queues: Vec::new(),
            });
        }
        let mut prepared = Vec::new();
        let mut failed = Vec::new();
        for spec in ports {
            match dp.prepare_port(eal, spec, &prepared) {
                Ok(p) => prepared.push(p),
                Err(e) => {
                    error!(port = %spec.name, "port not started: {e}");
                    failed.push((spec.name.clone(), e));
                }
            }
        }
        let names: Vec<String> = prepared.iter().map(|p| p.entry.name.clone()).collect();
        if let Err(e) = dp.attach(prepared) {
            // The workers never took the ports (they are retiring): none of them is up.
            for name in names {
                error!(port = %name, "port not started: {e}");
                let e = match &e {
                    DatapathError::WorkerTimeout { lcore, waited } => {
                        DatapathError::WorkerTimeout {
                            lcore: *lcore,
                            waited: *waited,
                        }
                    }
                    _ => DatapathError::Stopped,
                };
                failed.push((name, e));
            }
        }
        Ok((dp, failed))
    }

    /// Creates a port and hands its queues to the workers, without disturbing the other
    /// ports. Returns once every worker polls it; if one does not acknowledge within the
    /// `ack_timeout`, the port is withdrawn again (closed later, see [`Datapath::reap`]) and
    /// the call fails with [`DatapathError::WorkerTimeout`]: the port is not added.
    pub fn add_port(&mut self, eal: &Eal, spec: &PortSpec) -> Result<(), DatapathError> {
        self.check_room()?;
        let prepared = self.prepare_port(eal, spec, &[])?;
        self.attach(vec![prepared])
    }

    /// Refuses a port change while some worker's queue could not take it and its undoing,
    /// or while an rx queue move is not complete.
    fn check_room(&self) -> Result<(), DatapathError> {
        if self.shut_down || self.stop.load(Ordering::Relaxed) {
            return Err(DatapathError::Stopped);
        }
        if self
            .moving
            .as_ref()
            .is_some_and(|t| !self.health.applied_all(t))
        {
            return Err(DatapathError::MoveInProgress);
        }
        match self
            .workers
            .iter()
            .enumerate()
            .find(|(_, w)| w.commands.capacity() - w.commands.len() < 2)
        {
            Some((i, _)) => Err(DatapathError::WorkerBusy {
                lcore: self.health.lcore(i),
            }),
            None => Ok(()),
        }
    }

    /// Probes, configures and starts a port in a free slot (`taken`: slots
    /// already promised to other prepared ports); no worker uses it yet.
    fn prepare_port(
        &self,
        eal: &Eal,
        spec: &PortSpec,
        taken: &[PreparedPort],
    ) -> Result<PreparedPort, DatapathError> {
        if self.retiring.iter().any(|r| r.entry.name == spec.name) {
            return Err(DatapathError::Retiring(spec.name.clone()));
        }
        if self
            .ports
            .iter()
            .chain(self.retiring.iter().map(|r| &r.entry))
            .any(|p| p.name == spec.name || p.ofport == spec.ofport)
            || taken
                .iter()
                .any(|p| p.entry.name == spec.name || p.entry.ofport == spec.ofport)
        {
            return Err(DatapathError::PortExists(spec.name.clone()));
        }
        let slot = (0..MAX_PORTS)
            .find(|s| {
                !self.ports.iter().any(|p| p.slot == *s)
                    && !self.retiring.iter().any(|r| r.entry.slot == *s)
                    && !taken.iter().any(|p| p.entry.slot == *s)
            })
            .ok_or(DatapathError::TooManyPorts)?;
        if let Some(path) = &spec.vhost_server_socket {
            crate::socket::clear_stale_socket(std::path::Path::new(path)).map_err(|cause| {
                DatapathError::VhostSocket {
                    port: spec.name.clone(),
                    cause,
                }
            })?;
        }
        let err = |cause| DatapathError::Port {
            port: spec.name.clone(),
            cause,
        };
        let port = Port::probe(eal, &spec.devargs).map_err(err)?;
        let cleanup = |port: Port| {
            let _ = port.stop();
            let _ = port.remove();
        };
        let info = match port.info() {
            Ok(i) => i,
            Err(e) => {
                cleanup(port);
                return Err(err(e));
            }
        };
        let nworkers = self.workers.len() as u16;
        // A vhost-user guest may enable any of the port's queue pairs, and
        // frames it sends on a queue nobody polls are lost: poll them all
        // (spread over the workers). Other devices get a queue per worker.
        let rx_queues = if info.driver == "net_vhost" {
            info.max_rx_queues.max(1)
        } else {
            nworkers.min(info.max_rx_queues).max(1)
        };
        let qcfg = QueueConfig {
            rx_queues,
            tx_queues: nworkers,
            rx_descriptors: self.settings.rx_descriptors,
            tx_descriptors: self.settings.tx_descriptors,
        };
        let Some(pool) = self.pool.as_ref() else {
            cleanup(port);
            return Err(DatapathError::Stopped);
        };
        let (rx, tx) = match port
            .configure(&qcfg, pool)
            .and_then(|q| port.start().map(|()| q))
        {
            Ok(q) => q,
            Err(e) => {
                cleanup(port);
                return Err(err(e));
            }
        };
        if let Err(cause) = crate::socket::apply_access(spec) {
            cleanup(port);
            return Err(DatapathError::SocketAccess {
                port: spec.name.clone(),
                cause,
            });
        }
        info!(
            port = %spec.name, ofport = spec.ofport, device = port.name(), driver = %info.driver, slot,
            rx_queues, tx_queues = nworkers, link_up = port.link().up, "port started"
        );
        Ok(PreparedPort {
            entry: PortEntry {
                slot,
                port,
                name: spec.name.clone(),
                ofport: spec.ofport,
                mac: info.mac,
                driver: info.driver,
                vlan: spec.vlan.clone(),
                rx_counters: (0..rx.len())
                    .map(|_| Arc::new(QueueCounters::default()))
                    .collect(),
            },
            rx,
            tx,
        })
    }

    /// Per worker, the command count that includes everything pushed so far.
    fn targets(&self) -> Vec<u64> {
        self.workers.iter().map(|w| w.sent).collect()
    }

    /// Hands prepared ports to the workers in one step: each worker applies
    /// all of them before its next burst, so no packet is forwarded while
    /// some of them are still unknown to it. Waits for every worker's
    /// acknowledgement up to the `ack_timeout`; then withdraws the ports again and fails
    /// with [`DatapathError::WorkerTimeout`]. Every worker's queue has room for two commands
    /// (a fresh datapath, or the caller checked with [`Datapath::check_room`]).
    fn attach(&mut self, prepared: Vec<PreparedPort>) -> Result<(), DatapathError> {
        if prepared.is_empty() {
            return Ok(());
        }
        let nworkers = self.workers.len();
        let old_index = Arc::clone(&self.index);
        let mut entries = self.index.entries();
        entries.extend(prepared.iter().map(|p| (p.entry.ofport, p.entry.slot)));
        let index = Arc::new(PortIndex::from_entries(entries));
        let mut per_worker_ports: Vec<Vec<(usize, Vec<PolledQueue>, dpdk::TxQueue)>> =
            (0..nworkers).map(|_| Vec::new()).collect();
        let mut per_worker_rx_names: Vec<Vec<(String, u16)>> =
            (0..nworkers).map(|_| Vec::new()).collect();
        let mut new_entries = Vec::new();
        for p in prepared {
            let slot = p.entry.slot;
            // Rx queues are spread from the slot on, so ports' first queues land on different workers.
            let mut per_worker: Vec<Vec<PolledQueue>> = (0..nworkers).map(|_| Vec::new()).collect();
            for (q, rxq) in p.rx.into_iter().enumerate() {
                let w = (slot + q) % nworkers;
                per_worker_rx_names[w].push((p.entry.name.clone(), rxq.queue_id()));
                per_worker[w].push(PolledQueue {
                    slot,
                    counters: Arc::clone(&p.entry.rx_counters[usize::from(rxq.queue_id())]),
                    queue: rxq,
                });
            }
            for ((ports, rx), tx) in per_worker_ports.iter_mut().zip(per_worker).zip(p.tx) {
                ports.push((slot, rx, tx));
            }
            new_entries.push(p.entry);
        }
        for (link, ports) in self.workers.iter_mut().zip(per_worker_ports) {
            link.push(Command::AddPorts {
                ports,
                index: Arc::clone(&index),
            });
        }
        let started = Instant::now();
        let deadline = started + self.settings.ack_timeout;
        match self.health.wait_applied(&self.targets(), deadline) {
            Ok(()) => {
                for (link, names) in self.workers.iter_mut().zip(per_worker_rx_names) {
                    link.rx_queues.extend(names);
                }
                self.ports.extend(new_entries);
                self.set_index(index);
                Ok(())
            }
            Err(lag) => {
                // Withdraw behind the add: a worker that applied it lets go again, the
                // stalled one applies both in order when it runs again.
                for e in &new_entries {
                    for link in &mut self.workers {
                        link.push(Command::RemovePort {
                            slot: e.slot,
                            index: Arc::clone(&old_index),
                        });
                    }
                }
                self.retire_index(index);
                let targets = self.targets();
                for entry in new_entries {
                    warn!(
                        port = %entry.name, lcore = lag.lcore,
                        "a worker did not acknowledge the new port: withdrawn, closed once every worker let go"
                    );
                    self.retiring.push(Retiring {
                        entry,
                        targets: targets.clone(),
                    });
                }
                Err(DatapathError::WorkerTimeout {
                    lcore: lag.lcore,
                    waited: started.elapsed(),
                })
            }
        }
    }

    /// Takes a port away from the workers and hands it back detached: no worker polls or
    /// sends on it any more. Closing it ([`DetachedPort::close`], or a [`PortCloser`]) can
    /// block, so the caller does that without its locks. If a worker does not acknowledge
    /// within the `ack_timeout`, the removal is undone (the port stays, nothing is stopped)
    /// and the call fails with [`DatapathError::WorkerTimeout`].
    pub fn remove_port(&mut self, name: &str) -> Result<DetachedPort, DatapathError> {
        let i = self
            .ports
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| DatapathError::NoSuchPort(name.to_owned()))?;
        self.check_room()?;
        let slot = self.ports[i].slot;
        let old_index = Arc::clone(&self.index);
        let index = Arc::new(PortIndex::from_entries(
            self.index
                .entries()
                .into_iter()
                .filter(|e| e.1 != slot)
                .collect(),
        ));
        for link in &mut self.workers {
            link.push(Command::RemovePort {
                slot,
                index: Arc::clone(&index),
            });
        }
        // No more packet-outs to it from now on.
        self.set_index(index);
        let started = Instant::now();
        let deadline = started + self.settings.ack_timeout;
        if let Err(lag) = self.health.wait_applied(&self.targets(), deadline) {
            for link in &mut self.workers {
                link.push(Command::RestorePort {
                    slot,
                    index: Arc::clone(&old_index),
                });
            }
            let removed_index = std::mem::replace(&mut self.index, old_index);
            self.retire_index(removed_index);
            warn!(port = %name, lcore = lag.lcore, "a worker did not acknowledge the port removal: undone, the port stays");
            return Err(DatapathError::WorkerTimeout {
                lcore: lag.lcore,
                waited: started.elapsed(),
            });
        }
        let p = self.ports.remove(i);
        for w in &mut self.workers {
            w.rx_queues.retain(|(port, _)| *port != p.name);
        }
        for c in &self.counters {
            c.ports[slot].reset();
        }
        info!(port = %p.name, "port detached from the workers");
        Ok(p.detach())
    }

    /// Makes `index` the current port index; the previous one is kept until no worker
    /// holds it.
    fn set_index(&mut self, index: Arc<PortIndex>) {
        let old = std::mem::replace(&mut self.index, index);
        self.retire_index(old);
    }

    /// Keeps an index a worker may hold until no worker does (then drops it here).
    fn retire_index(&mut self, index: Arc<PortIndex>) {
        self.old_indexes.retain(|i| Arc::strong_count(i) > 1);
        self.old_indexes.push(index);
    }

    /// Ports withdrawn after a timed-out add that every worker has now let go: the caller
    /// closes them (without its locks). Call it now and then (the control plane's tick).
    pub fn reap(&mut self) -> Vec<DetachedPort> {
        let mut done = Vec::new();
        let mut i = 0;
        while i < self.retiring.len() {
            if self.health.applied_all(&self.retiring[i].targets) {
                let r = self.retiring.swap_remove(i);
                for c in &self.counters {
                    c.ports[r.entry.slot].reset();
                }
                info!(port = %r.entry.name, "withdrawn port released by every worker");
                done.push(r.entry.detach());
            } else {
                i += 1;
            }
        }
        done
    }

    /// Names of ports withdrawn and waiting for a worker to let go.
    pub fn retiring(&self) -> Vec<String> {
        self.retiring.iter().map(|r| r.entry.name.clone()).collect()
    }

    /// The workers' acknowledgements and heartbeats, to read without any lock.
    pub fn health(&self) -> Arc<WorkerHealth> {
        Arc::clone(&self.health)
    }

    /// The thread that closes this datapath's ports: hand it what [`Datapath::remove_port`]
    /// and [`Datapath::reap`] return, after releasing your locks.
    pub fn closer(&self) -> PortCloser {
        self.closer.clone()
    }

    /// The settings the datapath runs with.
    pub fn settings(&self) -> &DatapathSettings {
        &self.settings
    }

    pub fn ports(&self) -> Vec<PortStatus> {
        self.ports
            .iter()
            .map(|p| {
                let mut switch_stats = PortReport::default();
                for w in &self.counters {
                    switch_stats.add(&w.ports[p.slot]);
                }
                let LinkStatus { up, speed_mbps } = p.port.link();
                PortStatus {
                    name: p.name.clone(),
                    ofport: p.ofport,
                    device: p.port.name().to_owned(),
                    driver: p.driver.clone(),
                    vlan: p.vlan.clone(),
                    mac: p.mac,
                    link_up: up,
                    speed_mbps,
                    driver_stats: p.port.stats().map(DriverStats::from).unwrap_or_default(),
                    switch_stats,
                }
            })
            .collect()
    }

    /// Link state of every port, by OpenFlow number (cheap: no statistics).
    pub fn links(&self) -> Vec<(u32, bool)> {
        self.ports
            .iter()
            .map(|p| (p.ofport, p.port.link().up))
            .collect()
    }

    /// Driver-specific counters of a port (`rte_eth_xstats`).
    pub fn xstats(&self, name: &str) -> Vec<(String, u64)> {
        self.ports
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.port.xstats().ok())
            .map(|x| x.into_iter().map(|x| (x.name, x.value)).collect())
            .unwrap_or_default()
    }

    pub fn workers(&self) -> Vec<WorkerReport> {
        self.counters
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let report = c.report();
                let rx_queues = self
                    .workers
                    .get(i)
                    .map(|w| w.rx_queues.clone())
                    .unwrap_or_default();
                let rx_queue_stats = rx_queues
                    .iter()
                    .map(|(port, queue)| {
                        let q = self.queue_counters(port, *queue);
                        let (packets, busy) =
                            q.map_or((0, 0), |q| (q.packets.get(), q.busy_cycles.get()));
                        RxQueueReport {
                            port: port.clone(),
                            queue: *queue,
                            packets,
                            busy_cycles: busy,
                            busy_share: if report.busy_cycles == 0 {
                                0.0
                            } else {
                                (busy as f64 / report.busy_cycles as f64).min(1.0)
                            },
                        }
                    })
                    .collect();
                WorkerReport {
                    rx_queues,
                    rx_queue_stats,
                    ..report
                }
            })
            .collect()
    }

    /// Moves rx queue `queue` of `port` to worker `to` (0-based, in lcore order): the worker
    /// polling it lets it go between two bursts and hands it to `to`, which polls it from
    /// its next turn; packets arriving meanwhile wait in the queue's ring. Returns once
    /// both acknowledged, or fails with [`DatapathError::MoveTimeout`] after the
    /// `ack_timeout` (the move then completes when the stalled worker runs again).
    pub fn move_rx_queue(
        &mut self,
        port: &str,
        queue: u16,
        to: usize,
    ) -> Result<(), DatapathError> {
        self.check_room()?;
        let slot = self
            .ports
            .iter()
            .find(|p| p.name == port)
            .map(|p| p.slot)
            .ok_or_else(|| DatapathError::NoSuchPort(port.to_owned()))?;
        if to >= self.workers.len() {
            return Err(DatapathError::NoSuchWorker(to));
        }
        let is_it = |(p, q): &(String, u16)| p == port && *q == queue;
        let from = self
            .workers
            .iter()
            .position(|w| w.rx_queues.iter().any(is_it))
            .ok_or_else(|| DatapathError::NoSuchQueue {
                port: port.to_owned(),
                queue,
            })?;
        if from == to {
            return Ok(());
        }
        let target = Arc::clone(&self.workers[to].commands);
        self.workers[from].push(Command::MoveRx {
            slot,
            queue,
            to: target,
        });
        // The TakeRx the first worker pushes counts as sent to the second one.
        self.workers[to].sent += 1;
        self.workers[from].rx_queues.retain(|q| !is_it(q));
        self.workers[to].rx_queues.push((port.to_owned(), queue));
        let targets = self.targets();
        let started = Instant::now();
        let deadline = started + self.settings.ack_timeout;
        let result = self.health.wait_applied(&targets, deadline);
        self.moving = Some(targets);
        match result {
            Ok(()) => {
                info!(
                    port,
                    queue,
                    from_lcore = self.health.lcore(from),
                    to_lcore = self.health.lcore(to),
                    "rx queue moved"
                );
                Ok(())
            }
            Err(lag) => {
                warn!(port, queue, lcore = lag.lcore, "rx queue move not acknowledged in time: it completes when the worker runs again");
                Err(DatapathError::MoveTimeout {
                    lcore: lag.lcore,
                    waited: started.elapsed(),
                })
            }
        }
    }

    /// Sends a connection-tracking request to every worker, answered between two of its
    /// bursts; returns without waiting, so the caller can release its locks before
    /// [`crate::PendingConntrack::wait`] (bounded by the `ack_timeout`).
    pub fn conntrack_request(
        &mut self,
        op: crate::ConntrackOp,
    ) -> Result<crate::PendingConntrack, DatapathError> {
        self.check_room()?;
        // Requests to a stalled worker pile up in its queue (one per scrape): past a
        // quarter of it they are refused, so the room port changes need stays.
        if let Some(i) = self
            .workers
            .iter()
            .position(|w| w.commands.len() >= COMMAND_QUEUE / 4)
        {
            return Err(DatapathError::WorkerBusy {
                lcore: self.health.lcore(i),
            });
        }
        let started = Instant::now();
        let mut replies = Vec::with_capacity(self.workers.len());
        for i in 0..self.workers.len() {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            self.workers[i].push(Command::Conntrack(crate::ct_ops::ConntrackRequest {
                op,
                reply: tx,
            }));
            replies.push((self.health.lcore(i), rx));
        }
        Ok(crate::PendingConntrack {
            replies,
            deadline: started + self.settings.ack_timeout,
            started,
        })
    }

    /// Measures every rx queue's busy cycles since the last measurement (or the start) and
    /// plans a placement that evens the workers' loads ([`crate::rebalance::plan`]); with
    /// `restart`, the next measurement starts now (a dry run leaves it running). Nothing
    /// moves until [`Datapath::apply_rebalance`].
    pub fn plan_rebalance(&mut self, restart: bool) -> RebalancePlan {
        let now = dpdk::rdtsc();
        let mut loads = Vec::new();
        let mut baseline = Vec::new();
        for (w, link) in self.workers.iter().enumerate() {
            for (port, queue) in &link.rx_queues {
                let busy = self
                    .queue_counters(port, *queue)
                    .map_or(0, |c| c.busy_cycles.get());
                let key = (port.clone(), *queue);
                let before = self
                    .load_baseline
                    .1
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map_or(0, |(_, v)| *v);
                loads.push(QueueLoad {
                    port: port.clone(),
                    queue: *queue,
                    worker: w,
                    busy_cycles: busy.saturating_sub(before),
                });
                baseline.push((key, busy));
            }
        }
        let interval = now.wrapping_sub(self.load_baseline.0);
        if restart {
            self.load_baseline = (now, baseline);
        }
        crate::rebalance::plan(&loads, self.workers.len(), interval)
    }

    /// Carries out a plan's moves one by one ([`Datapath::move_rx_queue`]); stops at the
    /// first that fails, with the moves done so far in place.
    pub fn apply_rebalance(&mut self, plan: &RebalancePlan) -> Result<usize, DatapathError> {
        let mut done = 0;
        for m in &plan.moves {
            self.move_rx_queue(&m.port, m.queue, m.to_worker)?;
            done += 1;
        }
        Ok(done)
    }

    /// The counters of a port's rx queue.
    fn queue_counters(&self, port: &str, queue: u16) -> Option<&Arc<QueueCounters>> {
        self.ports
            .iter()
            .find(|p| p.name == port)
            .and_then(|p| p.rx_counters.get(usize::from(queue)))
    }

    /// Sends a frame out of a port from the control plane (packet-out): the
    /// first worker picks it up between bursts.
    pub fn send(&self, ofport: u32, frame: &[u8]) -> Result<(), SendError> {
        let idx = self
            .index
            .index_of(ofport)
            .ok_or(SendError::NoSuchPort(ofport))?;
        let pool = self.pool.as_ref().ok_or(SendError::NoBuffer)?;
        let m = Mbuf::from_bytes(pool, frame).ok_or(SendError::NoBuffer)?;
        self.inject.push((idx, m)).map_err(|_| SendError::QueueFull)
    }

    /// Replaces the tunnel ports: their uplinks must be ports of the datapath, their
    /// remotes reachable by the settings' prefix, routes or gateway. Workers take the new
    /// set between bursts (not waited for: a tunnel change moves no queues).
    /// Sets the Geneve TLV map: which options decapsulation puts in `tun_metadataN` and
    /// encapsulation to a Geneve port sends. Takes effect for the workers' next packets.
    pub fn set_geneve_options(&self, map: &crate::tunnel::GeneveOptionMap) {
        self.tunnels.geneve_map.store(map);
    }

    pub fn set_tunnels(
        &mut self,
        specs: &[TunnelSpec],
        settings: UnderlaySettings,
    ) -> Result<(), DatapathError> {
        self.check_room()?;
        self.underlay.settings = settings;
        self.underlay.apply_static_neighbours();
        let mut ports = Vec::new();
        for s in specs {
            let up = self
                .ports
                .iter()
                .find(|p| p.ofport == s.uplink)
                .ok_or_else(|| DatapathError::NoUplink {
                    tunnel: s.name.clone(),
                    uplink: s.uplink,
                })?;
            // A flow-based port's next hops are per packet (`Tunnels::flow_hops`).
            let (next_hop, neighbour) = if s.remote_is_flow() {
                (crate::tunnel::REMOTE_FROM_FLOW, Arc::default())
            } else {
                let next_hop = self
                    .underlay
                    .next_hop(s.local_ip, s.local_prefix, s.remote_ip)
                    .ok_or_else(|| DatapathError::NoRoute {
                        tunnel: s.name.clone(),
                        remote: crate::tunnel::ip_string(s.remote_ip),
                    })?;
                let neighbour = self
                    .underlay
                    .neighbour(up.slot, up.ofport, up.mac, s.local_ip, next_hop);
                (next_hop, neighbour)
            };
            let overhead = packet::tunnel::OUTER_LEN + s.kind.header_len();
            // Counters survive a change of the set for a port that stays.
            let counters = self
                .tunnels
                .get(s.ofport)
                .map(|p| Arc::clone(&p.counters))
                .unwrap_or_default();
            let template =
                packet::tunnel::EncapTemplate::new(s.kind, up.mac, s.dst_port, s.ttl, s.csum);
            let fixed = match s.vni {
                Some(vni) if !s.remote_is_flow() => {
                    Some(template.fixed(s.local_ip, s.remote_ip, vni))
                }
                _ => None,
            };
            ports.push(TunnelPort {
                spec: s.clone(),
                uplink_slot: up.slot,
                uplink_mac: up.mac,
                next_hop,
                neighbour,
                counters,
                max_inner: (usize::from(self.underlay.settings.uplink_mtu) + 14)
                    .saturating_sub(overhead),
                template,
                fixed,
            });
        }
        ports.sort_by_key(|p| p.spec.ofport);
        let mut uplinks: Vec<usize> = ports.iter().map(|p| p.uplink_slot).collect();
        uplinks.sort_unstable();
        uplinks.dedup();
        let tunnels = Arc::new(Tunnels {
            ports,
            uplinks,
            underlay: Arc::clone(&self.tunnels.underlay),
            settings: self.underlay.settings.clone(),
            flow_hops: Arc::clone(&self.tunnels.flow_hops),
            too_big: Arc::clone(&self.tunnels.too_big),
            pending: Arc::clone(&self.tunnels.pending),
            geneve_map: Arc::clone(&self.tunnels.geneve_map),
        });
        for link in &mut self.workers {
            link.push(Command::SetTunnels(Arc::clone(&tunnels)));
        }
        let old = std::mem::replace(&mut self.tunnels, tunnels);
        self.old_tunnels.retain(|t| Arc::strong_count(t) > 1);
        self.old_tunnels.push(old);
        info!(tunnels = specs.len(), "tunnel ports set");
        Ok(())
    }

    /// The underlay's control-plane work: answers ARP and ICMP echo for the tunnels' local
    /// IPs and resolves next hops. Bounded per call; call it from the tick.
    pub fn underlay_tick(&mut self) {
        if self.tunnels.ports.is_empty() {
            return;
        }
        let pool = self.pool.as_ref();
        let inject = &self.inject;
        let mut send = |slot: usize, frame: &[u8]| {
            let Some(m) = pool.and_then(|p| Mbuf::from_bytes(p, frame)) else {
                warn!("underlay: no buffer for an ARP/ICMP frame");
                return;
            };
            if inject.push((slot, m)).is_err() {
                warn!("underlay: control-plane send queue full");
            }
        };
        self.underlay
            .tick(&self.slow, &self.tunnels, Instant::now(), &mut send);
    }

    /// The tunnel ports as they were set.
    pub fn tunnel_specs(&self) -> Vec<TunnelSpec> {
        self.tunnels.ports.iter().map(|p| p.spec.clone()).collect()
    }

    /// The underlay settings the tunnel ports use (for a change of the set).
    pub fn tunnel_settings(&self) -> UnderlaySettings {
        self.underlay.settings.clone()
    }

    /// Every tunnel port with its counters.
    pub fn tunnels(&self) -> Vec<TunnelStatus> {
        self.tunnels
            .ports
            .iter()
            .map(crate::tunnel::tunnel_status)
            .collect()
    }

    /// The underlay's neighbour table.
    pub fn neighbours(&self) -> Vec<NeighbourStatus> {
        self.underlay.neighbours(Instant::now())
    }

    /// Frames on uplinks for a local IP that were not decapsulated, by reason.
    pub fn underlay_status(&self) -> UnderlayStatus {
        self.underlay.status(&self.tunnels.underlay)
    }

    /// The live-capture tap the workers copy into.
    pub fn capture_tap(&self) -> Arc<crate::capture::CaptureTap> {
        Arc::clone(&self.capture)
    }

    /// The slot (capture index) of an OpenFlow port.
    pub fn slot_of(&self, ofport: u32) -> Option<usize> {
        self.index.index_of(ofport)
    }

    pub fn workers_count(&self) -> usize {
        self.counters.len()
    }

    pub fn mempool(&self) -> Option<&Mempool> {
        self.pool.as_ref()
    }

    /// Stops the workers, then closes every port through the closer, then frees the
    /// buffers, all by `deadline`: what is not done by then is reported and leaked.
    pub fn stop(mut self, deadline: Instant) -> StopReport {
        self.shutdown(deadline)
    }

    /// Stops the workers and leaves the ports open, so that counters read afterwards are
    /// final and consistent with the drivers' own. Waits for each worker's own exit until
    /// `deadline`; gives the lcores of workers that had not stopped by then.
    pub fn halt(&mut self, deadline: Instant) -> Vec<u32> {
        self.stop.store(true, Ordering::SeqCst);
        let running = self.health.wait_exited(deadline);
        for (w, link) in self.workers.iter_mut().enumerate() {
            if !self.health.exited(w) {
                continue;
            }
            if let Some(launched) = link.launched.take() {
                let lcore = launched.lcore();
                // The worker left its loop: EAL sees it return within microseconds.
                let code = launched.wait();
                if code != 0 {
                    warn!(lcore, code, "worker ended with an error (it panicked)");
                }
            }
        }
        if !running.is_empty() {
            error!(lcores = ?running, "workers did not stop by the deadline");
        }
        running
    }

    fn shutdown(&mut self, deadline: Instant) -> StopReport {
        if self.shut_down {
            return StopReport::default();
        }
        self.shut_down = true;
        let workers_not_stopped = self.halt(deadline);
        let mut names: Vec<String> = self.ports.iter().map(|p| p.name.clone()).collect();
        names.extend(self.retiring.iter().map(|r| r.entry.name.clone()));
        if !workers_not_stopped.is_empty() {
            // A running worker may still poll any port and use any buffer: leave them all.
            error!(ports = ?names, "ports left open: a worker did not stop");
            std::mem::forget(self.pool.take());
            dpdk::forbid_cleanup();
            self.ports.clear();
            self.retiring.clear();
            return StopReport {
                workers_not_stopped,
                ports_not_closed: names,
            };
        }
        for p in self.ports.drain(..) {
            self.closer.close(p.detach());
        }
        for r in self.retiring.drain(..) {
            self.closer.close(r.entry.detach());
        }
        let ports_not_closed = self.closer.drain(deadline);
        if ports_not_closed.is_empty() {
            self.pool = None;
        } else {
            // A port still closing may hand buffers back to the pool: it must outlive it.
            error!(ports = ?ports_not_closed, "ports not closed by the deadline: left open");
            std::mem::forget(self.pool.take());
            dpdk::forbid_cleanup();
        }
        StopReport {
            workers_not_stopped,
            ports_not_closed,
        }
    }
}

impl Drop for Datapath {
    fn drop(&mut self) {
        self.shutdown(Instant::now() + DROP_DEADLINE);
    }
}
