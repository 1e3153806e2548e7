use std::sync::atomic::{AtomicBool, Ordering};
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
    pub mac: [u8; 6],
    pub link_up: bool,
    pub speed_mbps: u32,
    pub driver_stats: DriverStats,
    pub switch_stats: PortReport,
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
    port: Port,
    name: String,
    ofport: u32,
    mac: [u8; 6],
    driver: String,
    vlan: String,
    started: bool,
}

/// The running datapath: ports, workers and their counters. [`Datapath::stop`]
/// (or drop) stops the workers, then the ports, then frees the buffers; the
/// caller drops the [`Eal`] after it.
pub struct Datapath {
    ports: Vec<PortEntry>,
    index: Arc<PortIndex>,
    workers: Vec<LaunchedWorker>,
    counters: Vec<Arc<WorkerCounters>>,
    /// Frames from the control plane (packet-out), sent by the first worker on
    /// its own tx queues: a device may not have a queue to spare.
    inject: Arc<ArrayQueue<(usize, Mbuf)>>,
    stop: Arc<AtomicBool>,
    pool: Option<Mempool>,
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
    /// rx queues and one tx queue per port, and starts the workers.
    /// On error, whatever was created is removed again.
    /// The pipeline's current version is what workers forward with; its
    /// worker contexts 0..workers go to the workers (the control plane keeps
    /// the last one, for packet-out).
    pub fn start(
        eal: &Eal,
        config: &Config,
        tables: &FlowTables,
    ) -> Result<Datapath, DatapathError> {
        let lcores = eal.worker_lcores();
        if lcores.is_empty() {
            return Err(DatapathError::NoWorkers);
        }
        let nworkers = lcores.len() as u16;
        let dp_cfg = &config.datapath;
        let nports = config.ports.len() as u32;
        // Every rx and tx descriptor may hold an mbuf, plus a burst in flight per
        // worker and port, plus the per-lcore caches.
        let needed = nports
            * u32::from(nworkers)
            * (u32::from(dp_cfg.rx_descriptors) + u32::from(dp_cfg.tx_descriptors))
            + u32::from(nworkers) * (nports + 1) * 64
            + 512 * (u32::from(nworkers) + 1);
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
            workers: Vec::new(),
            index: Arc::new(PortIndex::new(
                config.ports.iter().map(|p| p.ofport).collect(),
            )),
            counters: Vec::new(),
            inject: Arc::new(ArrayQueue::new(INJECT_QUEUE)),
            stop: Arc::new(AtomicBool::new(false)),
            pool: None,
        };
        let mut rx_assign: Vec<Vec<(usize, dpdk::RxQueue)>> =
            (0..nworkers).map(|_| Vec::new()).collect();
        let mut tx_assign: Vec<Vec<dpdk::TxQueue>> = (0..nworkers).map(|_| Vec::new()).collect();
        let mut next_worker = 0usize;
        for (idx, pc) in config.ports.iter().enumerate() {
            let err = |cause| DatapathError::Port {
                port: pc.name.clone(),
                cause,
            };
            let port = Port::probe(eal, &pc.devargs).map_err(err)?;
            let info = match port.info() {
                Ok(i) => i,
                Err(e) => {
                    dp.ports.push(PortEntry {
                        port,
                        name: pc.name.clone(),
                        ofport: pc.ofport,
                        mac: [0; 6],
                        driver: String::new(),
                        vlan: String::new(),
                        started: false,
                    });
                    return Err(err(e));
                }
            };
            let vlan = pc.vlan_mode().to_string();
            dp.ports.push(PortEntry {
                port: port.clone(),
                name: pc.name.clone(),
                ofport: pc.ofport,
                mac: info.mac,
                driver: info.driver.clone(),
                vlan,
                started: false,
            });
            let rx_queues = nworkers.min(info.max_rx_queues).max(1);
            let qcfg = QueueConfig {
                rx_queues,
                tx_queues: nworkers,
                rx_descriptors: dp_cfg.rx_descriptors,
                tx_descriptors: dp_cfg.tx_descriptors,
            };
            let (rxqs, txqs) = port.configure(&qcfg, &pool).map_err(err)?;
            port.start().map_err(err)?;
            dp.ports[idx].started = true;
            for q in rxqs {
                rx_assign[next_worker % nworkers as usize].push((idx, q));
                next_worker += 1;
            }
            for (w, q) in txqs.into_iter().enumerate() {
                tx_assign[w].push(q);
            }
            let link = port.link();
            info!(
                port = %pc.name, ofport = pc.ofport, device = port.name(), driver = %info.driver,
                rx_queues, tx_queues = nworkers, link_up = link.up, "port started"
            );
        }

        let idle_sleep =
            (dp_cfg.idle_sleep_us > 0).then(|| Duration::from_micros(dp_cfg.idle_sleep_us.into()));
        let tsc_epoch = dpdk::rdtsc();
        for ((lcore, rx), tx) in lcores.iter().zip(rx_assign).zip(tx_assign) {
            let counters = Arc::new(WorkerCounters::new(*lcore, config.ports.len()));
            dp.counters.push(Arc::clone(&counters));
            if rx.is_empty() {
                warn!(
                    lcore,
                    "worker has no rx queue to poll: more worker lcores than port queues"
                );
            }
            let queues: Vec<String> = rx
                .iter()
                .map(|(p, q)| format!("{}:{}", config.ports[*p].name, q.queue_id()))
                .collect();
            let worker = Worker {
                rx,
                tx,
                ports: Arc::clone(&dp.index),
                pipeline: tables.handle(),
                ctx: tables.worker_context(dp.counters.len() - 1),
                inject: (dp.counters.len() == 1).then(|| Arc::clone(&dp.inject)),
                counters,
                stop: Arc::clone(&dp.stop),
                tsc_hz: dpdk::tsc_hz().max(1),
                tsc_epoch,
                idle_sleep,
            };
            let launched =
                LaunchedWorker::launch(eal, *lcore, move || worker.run()).map_err(|cause| {
                    DatapathError::Launch {
                        lcore: *lcore,
                        cause,
                    }
                })?;
            info!(lcore, rx_queues = ?queues, "worker started");
            dp.workers.push(launched);
        }
        dp.pool = Some(pool);
        Ok(dp)
    }

    pub fn ports(&self) -> Vec<PortStatus> {
        self.ports
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut switch_stats = PortReport::default();
                for w in &self.counters {
                    switch_stats.add(&w.ports[i]);
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

    pub fn workers(&self) -> Vec<WorkerReport> {
        self.counters.iter().map(|c| c.report()).collect()
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
            let lcore = w.lcore();
            let code = w.wait();
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
