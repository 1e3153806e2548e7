//! Counter snapshots: logged as rates while running and written as JSON for
//! scripts (`--stats-file`), until the metrics endpoint serves them.

use std::io::Write;
use std::path::Path;

use datapath::{NeighbourStatus, PortStatus, TunnelStatus, UnderlayStatus, WorkerReport};

use crate::switch::Switch;
use serde::Serialize;
use tracing::info;

#[derive(Debug, Clone, Serialize)]
pub struct StatsSnapshot {
    /// Seconds since the datapath started.
    pub uptime_s: f64,
    pub ports: Vec<PortStatus>,
    pub workers: Vec<WorkerReport>,
    pub mac_entries: usize,
    pub mbufs_in_use: u32,
    /// Tunnel ports with their counters (docs/tunnels.md).
    pub tunnels: Vec<TunnelStatus>,
    /// The underlay's next hops.
    pub neighbours: Vec<NeighbourStatus>,
    /// Frames for a local tunnel IP not decapsulated, by reason; ARP/ICMP answered.
    pub underlay: UnderlayStatus,
}

impl StatsSnapshot {
    /// The counters now; waits for the switch's state as long as any call
    /// may ([`crate::switch::LOCK_WAIT`]), and is empty if it never came.
    pub fn take(sw: &Switch) -> Self {
        Self::take_within(sw, Some(crate::switch::LOCK_WAIT)).unwrap_or_else(|| StatsSnapshot {
            uptime_s: sw.started.elapsed().as_secs_f64(),
            ports: Vec::new(),
            workers: Vec::new(),
            mac_entries: 0,
            mbufs_in_use: 0,
            tunnels: Vec::new(),
            neighbours: Vec::new(),
            underlay: UnderlayStatus::default(),
        })
    }

    /// As [`StatsSnapshot::take`], but gives up (`None`) when the switch's
    /// state is busy for longer than `limit` (a port being created or
    /// removed): the control plane's periodic report must not stall signals
    /// and housekeeping.
    pub fn take_within(sw: &Switch, limit: Option<std::time::Duration>) -> Option<Self> {
        let uptime_s = sw.started.elapsed().as_secs_f64();
        let now = sw.now().as_secs() as u32;
        let st = sw.lock_within(limit.unwrap_or(crate::switch::LOCK_WAIT))?;
        let mac_entries = st.tables.mac_table().entries(now).len();
        Some(match st.datapath.as_ref() {
            Some(dp) => StatsSnapshot {
                uptime_s,
                ports: dp.ports(),
                workers: dp.workers(),
                mac_entries,
                mbufs_in_use: dp.mempool().map_or(0, |p| p.in_use()),
                tunnels: dp.tunnels(),
                neighbours: dp.neighbours(),
                underlay: dp.underlay_status(),
            },
            None => StatsSnapshot {
                uptime_s,
                ports: Vec::new(),
                workers: Vec::new(),
                mac_entries,
                mbufs_in_use: 0,
                tunnels: Vec::new(),
                neighbours: Vec::new(),
                underlay: UnderlayStatus::default(),
            },
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("stats serialise")
    }

    /// Logs per-port packet rates since `prev`.
    pub fn log_rates(&self, prev: &StatsSnapshot) {
        let dt = (self.uptime_s - prev.uptime_s).max(1e-9);
        for (p, q) in self.ports.iter().zip(&prev.ports) {
            let rx = p
                .driver_stats
                .rx_packets
                .saturating_sub(q.driver_stats.rx_packets) as f64
                / dt;
            let tx = p
                .driver_stats
                .tx_packets
                .saturating_sub(q.driver_stats.tx_packets) as f64
                / dt;
            info!(port = %p.name, link_up = p.link_up, rx_pps = rx as u64, tx_pps = tx as u64, "rate");
        }
    }

    pub fn log_totals(&self) {
        for p in &self.ports {
            let s = &p.switch_stats;
            info!(
                port = %p.name, rx = p.driver_stats.rx_packets, tx = p.driver_stats.tx_packets,
                forwarded = s.forwarded, to_controller = s.to_controller, dropped = s.dropped, tx_dropped = s.tx_dropped,
                "totals"
            );
        }
        for w in &self.workers {
            info!(
                lcore = w.lcore,
                packets = w.packets,
                cycles_per_packet = format!("{:.1}", w.cycles_per_packet),
                "worker totals"
            );
        }
    }
}

/// Writes `text` to `path` through a temporary file and a rename, so readers
/// never see half a file.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
