use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use dpdk::{
    Eal, LaunchedWorker, LinkStatus, Mbuf, Mempool, Port, PortConfig as QueueConfig, PortStats,
};
use ferroflow_config::{Config, VlanMode};
use mac_learning::VlanPolicy;
use pipeline::FlowTables;
use serde::Serialize;
use tracing::{info, warn};

use crate::counters::{PortReport, WorkerCounters, WorkerReport};
use crate::ports::PortIndex;
use crate::worker::Worker;

/// Why the datapath could not start, naming the port or resource.
#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    #[error(
        "no worker lcores: [eal] lcores must list the control lcore and at least one worker lcore"
    )]
    NoWorkers,
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
}

/// A port created and started, not yet handed to the workers.
struct PreparedPort {
    entry: PortEntry,
    rx: Vec<dpdk::RxQueue>,
    tx: Vec<dpdk::TxQueue>,
}

impl WorkerLink {
    fn send(&mut self, mut cmd: Command) {
        // The queue holds four commands per possible port; a worker applies
        // them every loop, so it is never full for long.
        loop {
            match self.commands.push(cmd) {
                Ok(()) => break,
                Err(back) => {
                    cmd = back;
                    std::thread::sleep(Duration::from_micros(100));
                }
            }
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
    started: bool,
}

/// Most ports one datapath holds: sizes the workers' per-port counters.
pub const MAX_PORTS: usize = 256;

/// Commands from the control plane to a worker, applied between bursts.
pub(crate) enum Command {
    /// Start polling these rx queues and sending on this tx queue, per slot;
    /// all at once, so no packet is forwarded while some are unknown.
    AddPorts {
        ports: Vec<(usize, Vec<dpdk::RxQueue>, dpdk::TxQueue)>,
        index: Arc<PortIndex>,
    },
    /// Stop using `slot` (its packets in flight are sent or dropped first).
    RemovePort { slot: usize, index: Arc<PortIndex> },
}

/// A worker as the control plane reaches it.
struct WorkerLink {
    launched: LaunchedWorker,
    commands: Arc<ArrayQueue<Command>>,
    /// Commands the worker has applied; it writes, the control plane reads.
    applied: Arc<AtomicU64>,
    sent: u64,
    /// The (port, rx queue) pairs handed to this worker.
    rx_queues: Vec<(String, u16)>,
}

/// The running datapath: ports, workers and their counters. [`Datapath::stop`]
/// (or drop) stops the workers, then the ports, then frees the buffers; the
/// caller drops the [`Eal`] after it.
pub struct Datapath {
    ports: Vec<PortEntry>,
    index: Arc<PortIndex>,
    workers: Vec<WorkerLink>,
    counters: Vec<Arc<WorkerCounters>>,
    /// Frames from the control plane (packet-out), sent by the first worker on
    /// its own tx queues: a device may not have a queue to spare.
    inject: Arc<ArrayQueue<(usize, Mbuf)>>,
    stop: Arc<AtomicBool>,
    pool: Option<Mempool>,
    queue_config: (u16, u16),
}

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

/// The VLAN membership a port's configuration asks for.
pub fn policy(mode: &VlanMode) -> VlanPolicy {
    match mode {
        VlanMode::Trunk => VlanPolicy::Trunk,
        VlanMode::Trunks(v) => VlanPolicy::trunks(v),
        VlanMode::Access(t) => VlanPolicy::Access(*t),
    }
}

impl Datapath {
    /// Creates every configured port, gives each worker lcore its share of the
    /// rx queues and one tx queue per port, and starts the workers. The
    /// pipeline's current version is what workers forward with; its worker
    /// contexts 0..workers go to the workers. On error, whatever was created
    /// is removed again.
    pub fn start(
        eal: &Eal,
        config: &Config,
        tables: &FlowTables,
    ) -> Result<Datapath, DatapathError> {
        let lcores = eal.worker_lcores();
        if lcores.is_empty() {
            return Err(DatapathError::NoWorkers);
        }
        if config.ports.len() > MAX_PORTS {
            return Err(DatapathError::TooManyPorts);
        }
        let nworkers = lcores.len() as u32;
        let dp_cfg = &config.datapath;
        // Room for every rx and tx descriptor of up to 16 ports (more can be
        // added at runtime), a burst in flight per worker and port, and the
        // per-lcore caches.
        let nports = (config.ports.len() as u32).max(16);
        let needed = nports
            * nworkers
            * (u32::from(dp_cfg.rx_descriptors) + u32::from(dp_cfg.tx_descriptors))
            + nworkers * (nports + 1) * 64
            + 512 * (nworkers + 1);
        let count = if dp_cfg.mbufs > 0 {
            dp_cfg.mbufs
        } else {
            needed.max(16_383)
        };
        let pool = Mempool::pktmbuf(eal, "ff_mbufs", count, 256, 2048 + 128)
            .map_err(DatapathError::Mempool)?;
        info!(mbufs = count, "packet buffer pool ready");

        let mut dp = Datapath {
            ports: Vec::new(),
            index: Arc::new(PortIndex::new(Vec::new())),
            workers: Vec::new(),
            counters: Vec::new(),
            inject: Arc::new(ArrayQueue::new(INJECT_QUEUE)),
            stop: Arc::new(AtomicBool::new(false)),
            pool: Some(pool),
            queue_config: (dp_cfg.rx_descriptors, dp_cfg.tx_descriptors),
        };
        let idle_sleep =
            (dp_cfg.idle_sleep_us > 0).then(|| Duration::from_micros(dp_cfg.idle_sleep_us.into()));
        let tsc_epoch = dpdk::rdtsc();
        for (w, lcore) in lcores.iter().enumerate() {
            let counters = Arc::new(WorkerCounters::new(*lcore, MAX_PORTS));
            dp.counters.push(Arc::clone(&counters));
            let commands = Arc::new(ArrayQueue::new(4 * MAX_PORTS));
            let applied = Arc::new(AtomicU64::new(0));
            let worker = Worker {
                rx: Vec::new(),
                tx: Vec::new(),
                ports: Arc::clone(&dp.index),
                pipeline: tables.handle(),
                ctx: tables.worker_context(w),
                counters,
                stop: Arc::clone(&dp.stop),
                tsc_hz: dpdk::tsc_hz().max(1),
                tsc_epoch,
                idle_sleep,
                inject: (w == 0).then(|| Arc::clone(&dp.inject)),
                commands: Arc::clone(&commands),
                applied: Arc::clone(&applied),
                keys: Box::new([packet::FlowKey::default(); dpdk::BURST_SIZE]),
            };
            let launched =
                LaunchedWorker::launch(eal, *lcore, move || worker.run()).map_err(|cause| {
                    DatapathError::Launch {
                        lcore: *lcore,
                        cause,
                    }
                })?;
            dp.workers.push(WorkerLink {
                launched,
                commands,
                applied,
                sent: 0,
                rx_queues: Vec::new(),
            });
        }
        let mut prepared = Vec::new();
        for pc in &config.ports {
            match dp.prepare_port(eal, pc, &prepared) {
                Ok(p) => prepared.push(p),
                Err(e) => {
                    for p in prepared {
                        let _ = p.entry.port.stop();
                        let _ = p.entry.port.remove();
                    }
                    return Err(e);
                }
            }
        }
        dp.attach(prepared);
        Ok(dp)
    }

    /// Creates a port from its configuration and hands its queues to the
    /// workers, without disturbing the other ports. Returns once every worker
    /// polls it.
    pub fn add_port(
        &mut self,
        eal: &Eal,
        pc: &ferroflow_config::PortConfig,
    ) -> Result<(), DatapathError> {
        let prepared = self.prepare_port(eal, pc, &[])?;
        self.attach(vec![prepared]);
        Ok(())
    }

    /// Probes, configures and starts a port in a free slot (`taken`: slots
    /// already promised to other prepared ports); no worker uses it yet.
    fn prepare_port(
        &self,
        eal: &Eal,
        pc: &ferroflow_config::PortConfig,
        taken: &[PreparedPort],
    ) -> Result<PreparedPort, DatapathError> {
        if self
            .ports
            .iter()
            .any(|p| p.name == pc.name || p.ofport == pc.ofport)
            || taken
                .iter()
                .any(|p| p.entry.name == pc.name || p.entry.ofport == pc.ofport)
        {
            return Err(DatapathError::PortExists(pc.name.clone()));
        }
        let slot = (0..MAX_PORTS)
            .find(|s| {
                !self.ports.iter().any(|p| p.slot == *s)
                    && !taken.iter().any(|p| p.entry.slot == *s)
            })
            .ok_or(DatapathError::TooManyPorts)?;
        let err = |cause| DatapathError::Port {
            port: pc.name.clone(),
            cause,
        };
        let port = Port::probe(eal, &pc.devargs).map_err(err)?;
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
            rx_descriptors: self.queue_config.0,
            tx_descriptors: self.queue_config.1,
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
        if let Err(cause) = crate::socket::apply_access(pc) {
            cleanup(port);
            return Err(DatapathError::SocketAccess {
                port: pc.name.clone(),
                cause,
            });
        }
        info!(
            port = %pc.name, ofport = pc.ofport, device = port.name(), driver = %info.driver, slot,
            rx_queues, tx_queues = nworkers, link_up = port.link().up, "port started"
        );
        Ok(PreparedPort {
            entry: PortEntry {
                slot,
                port,
                name: pc.name.clone(),
                ofport: pc.ofport,
                mac: info.mac,
                driver: info.driver,
                vlan: pc.vlan_mode().to_string(),
                started: true,
            },
            rx,
            tx,
        })
    }

    /// Hands prepared ports to the workers in one step: each worker applies
    /// all of them before its next burst, so no packet is forwarded while
    /// some of them are still unknown to it.
    fn attach(&mut self, prepared: Vec<PreparedPort>) {
        let nworkers = self.workers.len();
        let mut entries = self.index.entries();
        entries.extend(prepared.iter().map(|p| (p.entry.ofport, p.entry.slot)));
        let index = Arc::new(PortIndex::from_entries(entries));
        let mut per_worker_ports: Vec<Vec<(usize, Vec<dpdk::RxQueue>, dpdk::TxQueue)>> =
            (0..nworkers).map(|_| Vec::new()).collect();
        for p in prepared {
            let slot = p.entry.slot;
            // Rx queues are spread from the slot on, so ports' first queues land on different workers.
            let mut per_worker: Vec<Vec<dpdk::RxQueue>> =
                (0..nworkers).map(|_| Vec::new()).collect();
            for (q, rxq) in p.rx.into_iter().enumerate() {
                let w = (slot + q) % nworkers;
                self.workers[w]
                    .rx_queues
                    .push((p.entry.name.clone(), rxq.queue_id()));
                per_worker[w].push(rxq);
            }
            for ((ports, rx), tx) in per_worker_ports.iter_mut().zip(per_worker).zip(p.tx) {
                ports.push((slot, rx, tx));
            }
            self.ports.push(p.entry);
        }
        for (link, ports) in self.workers.iter_mut().zip(per_worker_ports) {
            link.send(Command::AddPorts {
                ports,
                index: Arc::clone(&index),
            });
        }
        self.index = index;
        self.wait_applied();
    }

    /// Takes a port away from the workers, then stops and detaches it.
    pub fn remove_port(&mut self, name: &str) -> Result<(), DatapathError> {
        let i = self
            .ports
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| DatapathError::NoSuchPort(name.to_owned()))?;
        let slot = self.ports[i].slot;
        let index = Arc::new(PortIndex::from_entries(
            self.index
                .entries()
                .into_iter()
                .filter(|e| e.1 != slot)
                .collect(),
        ));
        for link in &mut self.workers {
            link.send(Command::RemovePort {
                slot,
                index: Arc::clone(&index),
            });
        }
        self.index = index;
        self.wait_applied();
        let p = self.ports.remove(i);
        for w in &mut self.workers {
            w.rx_queues.retain(|(port, _)| *port != p.name);
        }
        for c in &self.counters {
            c.ports[slot].reset();
        }
        let _ = p.port.stop();
        p.port.remove().map_err(|cause| DatapathError::Port {
            port: p.name.clone(),
            cause,
        })?;
        info!(port = %p.name, "port removed");
        Ok(())
    }

    /// Waits until every worker has applied every command sent (workers apply
    /// them between bursts, so this takes microseconds).
    fn wait_applied(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while self
            .workers
            .iter()
            .any(|w| w.applied.load(Ordering::Acquire) < w.sent)
        {
            if std::time::Instant::now() > deadline {
                warn!("a worker did not apply a port change within 5 s");
                return;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
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
            .map(|(i, c)| WorkerReport {
                rx_queues: self
                    .workers
                    .get(i)
                    .map(|w| w.rx_queues.clone())
                    .unwrap_or_default(),
                ..c.report()
            })
            .collect()
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

    pub fn workers_count(&self) -> usize {
        self.counters.len()
    }

    pub fn mempool(&self) -> Option<&Mempool> {
        self.pool.as_ref()
    }

    /// Stops the workers, then the ports, and frees the buffers.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Stops the workers and leaves the ports open, so that counters read
    /// afterwards are final and consistent with the drivers' own.
    pub fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for w in self.workers.drain(..) {
            let lcore = w.launched.lcore();
            let code = w.launched.wait();
            if code != 0 {
                warn!(lcore, code, "worker ended with an error (it panicked)");
            }
        }
    }

    fn shutdown(&mut self) {
        self.halt();
        for p in self.ports.drain(..) {
            if p.started {
                if let Err(e) = p.port.stop() {
                    warn!(port = %p.name, "{e}");
                }
            }
            if let Err(e) = p.port.remove() {
                warn!(port = %p.name, "{e}");
            }
        }
        self.pool = None;
    }
}

impl Drop for Datapath {
    fn drop(&mut self) {
        self.shutdown();
    }
}
