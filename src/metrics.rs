//! Prometheus metrics at `/metrics` (`[metrics] listen`).
//!
//! Each scrape reads the switch afresh into a new registry: the datapath's
//! counters are per-worker atomics read with relaxed loads, the control
//! plane's state copied out in one bounded look ([`read`]) and formatted
//! after it is released, so a scrape never makes a worker wait and never
//! holds the switch while it formats. The burst-size histogram is the workers' own fixed
//! buckets (one counter store per burst), written out as a Prometheus histogram.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use ofagent::OfSwitch;
use openflow::{ErrorCode, Message};
use prometheus::{Encoder, GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::api::{Api, FlowModCounters};

/// Why the metrics endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("metrics.listen {listen:?}: {source}")]
    Bind {
        listen: String,
        source: std::io::Error,
    },
}

/// Counts OpenFlow flow-mods, applied and refused, on their way to the switch.
pub struct CountingSwitch {
    pub inner: Arc<dyn OfSwitch>,
    pub counters: Arc<FlowModCounters>,
}

impl OfSwitch for CountingSwitch {
    fn features(&self) -> openflow::messages::SwitchFeatures {
        self.inner.features()
    }

    fn handle(&self, request: &Message) -> Result<Vec<Message>, ErrorCode> {
        let r = self.inner.handle(request);
        if matches!(request, Message::FlowMod(_)) {
            let c = if r.is_ok() {
                &self.counters.openflow_applied
            } else {
                &self.counters.openflow_refused
            };
            c.fetch_add(1, Relaxed);
        }
        r
    }

    fn barrier(&self) -> Result<(), ErrorCode> {
        self.inner.barrier()
    }

    fn try_barrier(&self) -> bool {
        self.inner.try_barrier()
    }

    fn bundle_check(&self, request: &Message) -> Result<(), ErrorCode> {
        let r = self.inner.bundle_check(request);
        if r.is_err() {
            self.counters.openflow_refused.fetch_add(1, Relaxed);
        }
        r
    }

    fn bundle_commit(&self, requests: &[Message]) -> Result<(), (usize, ErrorCode)> {
        let r = self.inner.bundle_commit(requests);
        let (c, n) = match r {
            Ok(()) => (&self.counters.openflow_applied, requests.len() as u64),
            Err(_) => (&self.counters.openflow_refused, 1),
        };
        c.fetch_add(n, Relaxed);
        r
    }

    fn bundle_stage(&self, request: Message) -> Result<ofagent::Staged, ErrorCode> {
        let r = self.inner.bundle_stage(request);
        if r.is_err() {
            self.counters.openflow_refused.fetch_add(1, Relaxed);
        }
        r
    }

    fn flow_mod_raw(&self, raw: &[u8]) -> Option<Result<(), ErrorCode>> {
        let r = self.inner.flow_mod_raw(raw)?;
        let c = if r.is_ok() {
            &self.counters.openflow_applied
        } else {
            &self.counters.openflow_refused
        };
        c.fetch_add(1, Relaxed);
        Some(r)
    }

    fn bundle_stage_raw(&self, raw: &[u8]) -> Option<ofagent::Staged> {
        // Takes only what it accepts: refusals come from `bundle_stage`, counted there.
        self.inner.bundle_stage_raw(raw)
    }

    fn bundle_commit_staged(&self, staged: Vec<ofagent::Staged>) -> Result<(), (usize, ErrorCode)> {
        let n = staged.len() as u64;
        let r = self.inner.bundle_commit_staged(staged);
        let (c, n) = match r {
            Ok(()) => (&self.counters.openflow_applied, n),
            Err(_) => (&self.counters.openflow_refused, 1),
        };
        c.fetch_add(n, Relaxed);
        r
    }
}

/// Registers and returns a metric; the names are constants, so a failure is a bug.
fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("metric definition");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("metric definition");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

fn fgauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels).expect("metric definition");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

/// What a scrape reads from the switch's state, in one look: the state is
/// held only while this is copied out, never while metrics are formatted.
#[derive(Default)]
struct Reading {
    ports: Vec<datapath::PortStatus>,
    xstats: Vec<(String, Vec<(String, u64)>)>,
    admin_up: Vec<bool>,
    workers: Vec<datapath::WorkerReport>,
    pool: Option<(u32, u32)>,
    /// (counts, name) of tables with entries or lookups.
    tables: Vec<(pipeline::TableCounts, String)>,
    /// (instance, network, spoofed packets).
    spoofed: Vec<(String, String, u64)>,
    /// Packet-ins dropped by the per-port rate limit, by OpenFlow port.
    packet_in_limited: Vec<(u32, u64)>,
    /// Table versions still held (the current one and those a worker has not let go).
    versions_held: usize,
    /// The table version published last.
    version: u64,
    /// Flow entries read while the switch's state was held (each instance's
    /// anti-spoofing entries, by hash lookup): never the tables' other flows.
    entries_visited: usize,
    /// How long the state was held, in microseconds.
    lock_held_us: u64,
    /// Tunnel ports, the underlay's counters and neighbours.
    tunnels: crate::tunnels::TunnelReading,
    /// What the security groups did with each filtered instance's packets.
    firewall: Vec<(String, crate::profile::FirewallCounters)>,
}

fn read(sw: &crate::switch::Switch) -> Option<Reading> {
    let mut st = sw.lock().ok()?;
    let held = std::time::Instant::now();
    let mut r = Reading::default();
    if let Some(d) = st.datapath.as_ref() {
        r.ports = d.ports();
        r.xstats = r
            .ports
            .iter()
            .map(|s| (s.name.clone(), d.xstats(&s.name)))
            .collect();
        r.workers = d.workers();
        r.pool = d.mempool().map(|m| (m.in_use(), m.available()));
        r.tunnels = crate::tunnels::TunnelReading::read(d);
    }
    r.admin_up = r.ports.iter().map(|p| st.port_admin_up(p.ofport)).collect();
    r.version = st.tables.published_version();
    r.packet_in_limited = st.tables.packet_in_limited();
    r.versions_held = st.tables.versions_held();
    let counts = st.tables.table_counts();
    r.tables = counts
        .into_iter()
        .filter(|tc| tc.active > 0 || tc.lookups > 0)
        .map(|tc| {
            let name = st.table_name(tc.table_id);
            (tc, name)
        })
        .collect();
    let instances: Vec<(String, String)> = st
        .profile
        .description()
        .instances
        .iter()
        .filter(|i| i.port.is_some())
        .map(|i| (i.name.clone(), i.network.to_string()))
        .collect();
    // table_counts folded the counters; each instance is a few hash lookups.
    for (name, network) in instances {
        let ((packets, _), visited) = crate::profile::spoofed_folded(&st, &name);
        r.entries_visited += visited;
        r.spoofed.push((name, network, packets));
    }
    for name in crate::profile::filtered_instances(&st) {
        if let Some((c, visited)) = crate::profile::firewall_counters_folded(&st, &name) {
            r.entries_visited += visited;
            r.firewall.push((name, c));
        }
    }
    drop(st);
    r.lock_held_us = held.elapsed().as_micros() as u64;
    Some(r)
}

/// The text exposition of every metric, read now.
pub fn render(api: &Api) -> String {
    let r = Registry::new();
    let sw = &api.sw;
    let reading = read(sw);
    gauge(
        &r,
        "ferroflow_state_readable",
        "1 when this scrape could read the switch's state; 0 when it was busy past its bound (the switch's own series are then missing from this scrape).",
        &[],
    )
    .with_label_values(&[])
    .set(i64::from(reading.is_some()));
    let reading = reading.unwrap_or_default();
    gauge(
        &r,
        "ferroflow_metrics_scrape_entries_visited",
        "Flow entries this scrape read while holding the switch's state: each instance's anti-spoofing entries by hash lookup, never a scan of the tables (docs/limits.md).",
        &[],
    )
    .with_label_values(&[])
    .set(reading.entries_visited as i64);
    gauge(
        &r,
        "ferroflow_metrics_scrape_lock_hold_microseconds",
        "How long this scrape held the switch's state.",
        &[],
    )
    .with_label_values(&[])
    .set(reading.lock_held_us as i64);
    let cc = &sw.counters;
    for (name, help, v) in [
        ("ferroflow_sync_timeouts_total", "Barriers and changes that gave up waiting for a worker to move to a new table version (a stuck worker).", &cc.sync_timeouts),
        ("ferroflow_state_busy_total", "Calls refused because the switch's state was busy past its bound.", &cc.busy),
        ("ferroflow_housekeeping_ticks_skipped_total", "Control-plane ticks skipped because the switch's state was busy.", &cc.ticks_skipped),
        ("ferroflow_packet_in_backlog_ticks_total", "Control-plane ticks that left packet-ins queued for the next tick (at most a bounded number is relayed per tick).", &cc.packet_in_backlog_ticks),
        ("ferroflow_rebalances_total", "Rx queue rebalances by command (ferroflowctl datapath rebalance) that moved queues.", &cc.rebalances),
        ("ferroflow_auto_rebalances_total", "Rx queue rebalances made by [datapath] auto_rebalance.", &cc.auto_rebalances),
        ("ferroflow_rxq_moves_total", "Rx queues moved between workers by rebalances.", &cc.rx_queue_moves),
    ] {
        counter(&r, name, help, &[]).with_label_values(&[]).inc_by(v.load(Relaxed));
    }
    gauge(
        &r,
        "ferroflow_housekeeping_longest_tick_microseconds",
        "Longest control-plane tick since start.",
        &[],
    )
    .with_label_values(&[])
    .set(cc.longest_tick_us.load(Relaxed) as i64);

    gauge(
        &r,
        "ferroflow_build_info",
        "Version of ferroflowd and of DPDK; always 1.",
        &["version", "dpdk"],
    )
    .with_label_values(&[crate::VERSION, &dpdk::Eal::version()])
    .set(1);
    fgauge(
        &r,
        "ferroflow_uptime_seconds",
        "Seconds since the datapath started.",
        &[],
    )
    .with_label_values(&[])
    .set(sw.started.elapsed().as_secs_f64());

    let p = ["port"];
    let rx_packets = counter(
        &r,
        "ferroflow_port_rx_packets_total",
        "Packets received (driver).",
        &p,
    );
    let rx_bytes = counter(
        &r,
        "ferroflow_port_rx_bytes_total",
        "Bytes received (driver).",
        &p,
    );
    let tx_packets = counter(
        &r,
        "ferroflow_port_tx_packets_total",
        "Packets sent (driver).",
        &p,
    );
    let tx_bytes = counter(
        &r,
        "ferroflow_port_tx_bytes_total",
        "Bytes sent (driver).",
        &p,
    );
    let rx_missed = counter(
        &r,
        "ferroflow_port_rx_missed_total",
        "Packets the device dropped for lack of rx descriptors (driver).",
        &p,
    );
    let rx_errors = counter(
        &r,
        "ferroflow_port_rx_errors_total",
        "Erroneous received packets (driver).",
        &p,
    );
    let tx_errors = counter(
        &r,
        "ferroflow_port_tx_errors_total",
        "Failed transmissions (driver).",
        &p,
    );
    let rx_nombuf = counter(
        &r,
        "ferroflow_port_rx_nombuf_total",
        "Receive failures for lack of packet buffers (driver).",
        &p,
    );
    let forwarded = counter(
        &r,
        "ferroflow_port_forwarded_total",
        "Received packets the pipeline sent to at least one port.",
        &p,
    );
    let to_ctl = counter(
        &r,
        "ferroflow_port_to_controller_total",
        "Received packets the pipeline sent only to the controller.",
        &p,
    );
    let dropped = counter(
        &r,
        "ferroflow_port_dropped_total",
        "Received packets the pipeline sent nowhere (miss, drop, meter, VLAN).",
        &p,
    );
    let meter_drops = counter(
        &r,
        "ferroflow_port_meter_drops_total",
        "Received packets dropped by a meter band.",
        &p,
    );
    let resubmit_drops = counter(
        &r,
        "ferroflow_port_resubmit_limit_drops_total",
        "Received packets dropped for resubmitting past the depth (64) or total (4096) bound.",
        &p,
    );
    let tx_dropped = counter(
        &r,
        "ferroflow_port_tx_dropped_total",
        "Copies for this port its tx queue refused or that found no buffer.",
        &p,
    );
    let tx_oversize = counter(
        &r,
        "ferroflow_port_tx_oversize_dropped_total",
        "TSO frames for this port that could not be segmented to its MTU (also in tx_dropped).",
        &p,
    );
    let link = gauge(
        &r,
        "ferroflow_port_link_up",
        "1 when the port's link is up.",
        &p,
    );
    let admin = gauge(
        &r,
        "ferroflow_port_admin_up",
        "1 unless the port is administratively down.",
        &p,
    );
    let xstat = gauge(
        &r,
        "ferroflow_port_xstat",
        "The driver's extended statistics (rte_eth_xstats), by its names; most are counters.",
        &["port", "name"],
    );

    let w = ["lcore"];
    let wpackets = counter(
        &r,
        "ferroflow_worker_packets_total",
        "Packets a worker processed.",
        &w,
    );
    let wbusy = counter(
        &r,
        "ferroflow_worker_busy_cycles_total",
        "TSC cycles a worker spent on polls that returned packets.",
        &w,
    );
    let wtotal = counter(
        &r,
        "ferroflow_worker_cycles_total",
        "TSC cycles a worker spent in its loop.",
        &w,
    );
    let wcpp = fgauge(
        &r,
        "ferroflow_worker_cycles_per_packet",
        "Busy cycles per packet since start.",
        &w,
    );
    let mbufs_used = gauge(
        &r,
        "ferroflow_mempool_mbufs_in_use",
        "Packet buffers in use.",
        &[],
    );
    let mbufs_free = gauge(
        &r,
        "ferroflow_mempool_mbufs_available",
        "Packet buffers free.",
        &[],
    );

    let Reading {
        ports: status_ports,
        xstats,
        admin_up,
        workers,
        pool,
        tables,
        spoofed: spoofed_counts,
        firewall,
        packet_in_limited,
        versions_held,
        version,
        tunnels,
        ..
    } = reading;
    gauge(
        &r,
        "ferroflow_table_version",
        "The table version published last (each change, bundle, batch or profile change publishes one; a refused one none).",
        &[],
    )
    .with_label_values(&[])
    .set(version as i64);
    let limited = counter(
        &r,
        "ferroflow_packet_ins_rate_limited_total",
        "Packets to the controller dropped by the per-port packet-in rate limit, before the queue, by ingress OpenFlow port (4294967295: ports beyond the limiter's table).",
        &["ofport"],
    );
    // Every port's series exists from the start (at 0), so that rates and alerts on it
    // evaluate before the first limited packet.
    for p in &status_ports {
        limited
            .with_label_values(&[&p.ofport.to_string()])
            .inc_by(0);
    }
    for (port, n) in &packet_in_limited {
        limited.with_label_values(&[&port.to_string()]).inc_by(*n);
    }
    gauge(
        &r,
        "ferroflow_table_versions_held",
        "Compiled table versions in memory: the current one plus any a worker has not let go yet (freed on the control plane).",
        &[],
    )
    .with_label_values(&[])
    .set(versions_held as i64);
    let status = Some((status_ports, xstats));
    if let Some((ports, x)) = &status {
        for s in ports {
            let l = [s.name.as_str()];
            let (d, k) = (&s.driver_stats, &s.switch_stats);
            rx_packets.with_label_values(&l).inc_by(d.rx_packets);
            rx_bytes.with_label_values(&l).inc_by(d.rx_bytes);
            tx_packets.with_label_values(&l).inc_by(d.tx_packets);
            tx_bytes.with_label_values(&l).inc_by(d.tx_bytes);
            rx_missed.with_label_values(&l).inc_by(d.rx_missed);
            rx_errors.with_label_values(&l).inc_by(d.rx_errors);
            tx_errors.with_label_values(&l).inc_by(d.tx_errors);
            rx_nombuf.with_label_values(&l).inc_by(d.rx_nombuf);
            forwarded.with_label_values(&l).inc_by(k.forwarded);
            to_ctl.with_label_values(&l).inc_by(k.to_controller);
            dropped.with_label_values(&l).inc_by(k.dropped);
            meter_drops.with_label_values(&l).inc_by(k.meter_drops);
            resubmit_drops
                .with_label_values(&l)
                .inc_by(k.resubmit_limit_drops);
            tx_dropped.with_label_values(&l).inc_by(k.tx_dropped);
            tx_oversize
                .with_label_values(&l)
                .inc_by(k.tx_oversize_dropped);
            link.with_label_values(&l).set(i64::from(s.link_up));
        }
        for (s, up) in ports.iter().zip(&admin_up) {
            admin
                .with_label_values(&[s.name.as_str()])
                .set(i64::from(*up));
        }
        for (port, stats) in x {
            for (name, v) in stats {
                xstat.with_label_values(&[port, name]).set(*v as i64);
            }
        }
    }
    let heartbeat = fgauge(
        &r,
        "ferroflow_worker_since_heartbeat_seconds",
        "Seconds since the worker's loop last turned (microseconds when healthy).",
        &["lcore"],
    );
    let wstuck = gauge(
        &r,
        "ferroflow_worker_stuck",
        "1 while the worker's loop has not turned for 500 ms: barriers and port changes fail rather than wait for it.",
        &["lcore"],
    );
    let acked = gauge(
        &r,
        "ferroflow_worker_acked_version",
        "The table version the worker acknowledged.",
        &["lcore"],
    );
    let health = sw.health();
    for (i, wr) in workers.iter().enumerate() {
        let l = wr.lcore.to_string();
        let since = health.since_heartbeat(i);
        heartbeat.with_label_values(&[&l]).set(since.as_secs_f64());
        wstuck.with_label_values(&[&l]).set(i64::from(
            since >= crate::switch::STUCK_AFTER && !health.exited(i),
        ));
        acked
            .with_label_values(&[&l])
            .set(health.acked_version(i) as i64);
    }
    let widle = counter(
        &r,
        "ferroflow_worker_idle_cycles_total",
        "TSC cycles a worker spent on polls that returned nothing, and in idle sleeps.",
        &w,
    );
    let wshare = fgauge(
        &r,
        "ferroflow_worker_busy_share",
        "Busy cycles over all cycles since start, in [0, 1]; for a recent share use rate(busy_cycles) / rate(cycles).",
        &w,
    );
    let witer = counter(
        &r,
        "ferroflow_worker_iterations_total",
        "Turns of a worker's loop (each polls every rx queue once).",
        &w,
    );
    let wbusy_iter = counter(
        &r,
        "ferroflow_worker_busy_iterations_total",
        "Turns of a worker's loop in which some rx queue returned packets.",
        &w,
    );
    let q = ["port", "queue"];
    let qpackets = counter(
        &r,
        "ferroflow_rxq_packets_total",
        "Packets received on an rx queue (the count follows the queue when a rebalance moves it).",
        &q,
    );
    let qbusy = counter(
        &r,
        "ferroflow_rxq_busy_cycles_total",
        "TSC cycles the polling worker spent forwarding an rx queue's bursts.",
        &q,
    );
    let qlcore = gauge(
        &r,
        "ferroflow_rxq_lcore",
        "The lcore of the worker polling an rx queue now.",
        &q,
    );
    for wr in &workers {
        let l = [wr.lcore.to_string()];
        let l = [l[0].as_str()];
        wpackets.with_label_values(&l).inc_by(wr.packets);
        wbusy.with_label_values(&l).inc_by(wr.busy_cycles);
        wtotal.with_label_values(&l).inc_by(wr.total_cycles);
        wcpp.with_label_values(&l).set(wr.cycles_per_packet);
        widle.with_label_values(&l).inc_by(wr.idle_cycles);
        wshare.with_label_values(&l).set(wr.busy_share);
        witer.with_label_values(&l).inc_by(wr.iterations);
        wbusy_iter.with_label_values(&l).inc_by(wr.busy_iterations);
        for rq in &wr.rx_queue_stats {
            let queue = rq.queue.to_string();
            let ql = [rq.port.as_str(), queue.as_str()];
            qpackets.with_label_values(&ql).inc_by(rq.packets);
            qbusy.with_label_values(&ql).inc_by(rq.busy_cycles);
            qlcore.with_label_values(&ql).set(i64::from(wr.lcore));
        }
    }
    let tsc = gauge(
        &r,
        "ferroflow_tsc_hz",
        "TSC cycles per second: divides the cycle counters into seconds.",
        &[],
    );
    tsc.with_label_values(&[]).set(dpdk::tsc_hz() as i64);
    if let Some((used, free)) = pool {
        mbufs_used.with_label_values(&[]).set(i64::from(used));
        mbufs_free.with_label_values(&[]).set(i64::from(free));
    }

    let t = ["table"];
    let lookups = counter(
        &r,
        "ferroflow_table_lookups_total",
        "Packets looked up in the table.",
        &t,
    );
    let matches = counter(
        &r,
        "ferroflow_table_matches_total",
        "Lookups that matched an entry.",
        &t,
    );
    let entries = gauge(
        &r,
        "ferroflow_table_entries",
        "Flow entries in the table.",
        &t,
    );
    gauge(
        &r,
        "ferroflow_table_flow_limit",
        "Most entries one flow table may hold ([bridge] flow_limit): a change past it is refused.",
        &[],
    )
    .with_label_values(&[])
    .set(i64::from(sw.config.bridge.flow_limit));
    for (tc, _) in &tables {
        let id = tc.table_id.to_string();
        lookups.with_label_values(&[&id]).inc_by(tc.lookups);
        matches.with_label_values(&[&id]).inc_by(tc.matches);
        entries.with_label_values(&[&id]).set(i64::from(tc.active));
    }

    let info = gauge(
        &r,
        "ferroflow_table_info",
        "Always 1: the table's name (the virtual-network stage it holds, or tableN).",
        &["table", "name"],
    );
    for (tc, name) in &tables {
        let id = tc.table_id.to_string();
        info.with_label_values(&[&id, name]).set(1);
    }
    let spoofed = counter(
        &r,
        "ferroflow_instance_spoofed_packets_total",
        "Packets from an instance's port dropped because their source MAC, IPv4 or IPv6 source, ARP sender or neighbor discovery was not the instance's, or they were router advertisements.",
        &["instance", "network"],
    );
    for (instance, network, packets) in &spoofed_counts {
        spoofed
            .with_label_values(&[instance, network])
            .inc_by(*packets);
    }
    let fw = counter(
        &r,
        "ferroflow_instance_firewall_packets_total",
        "Packets of a security-group-filtered instance (both directions), by verdict: allowed_new (a new connection a rule allowed), no_rule (a new connection no rule allowed, dropped), invalid (conntrack found it invalid, dropped).",
        &["instance", "verdict"],
    );
    for (instance, c) in &firewall {
        for (verdict, n) in [
            ("allowed_new", c.allowed_new),
            ("no_rule", c.dropped_no_rule),
            ("invalid", c.dropped_invalid),
        ] {
            fw.with_label_values(&[instance, verdict]).inc_by(n);
        }
    }
    let vc = &sw.profile_counters;
    let vnet_pin = counter(
        &r,
        "ferroflow_vnet_packet_ins_total",
        "Packets the virtual networks' flows sent to the switch's control plane, by outcome (acted on: flows installed or packet relayed; refused).",
        &["result"],
    );
    vnet_pin
        .with_label_values(&["handled"])
        .inc_by(vc.packet_ins.load(Relaxed));
    vnet_pin
        .with_label_values(&["refused"])
        .inc_by(vc.refused.load(Relaxed));
    counter(
        &r,
        "ferroflow_vnet_flows_on_demand_total",
        "Flows the virtual networks installed on demand (metadata connections, verified sources).",
        &[],
    )
    .with_label_values(&[])
    .inc_by(vc.flows_on_demand.load(Relaxed));

    let fm = counter(&r, "ferroflow_flow_mods_total", "Flow changes by where they came from (grpc, openflow) and whether they were applied or refused.", &["source", "result"]);
    let c = &api.flow_mods;
    for (src, res, v) in [
        ("grpc", "applied", &c.grpc_applied),
        ("grpc", "refused", &c.grpc_refused),
        ("openflow", "applied", &c.openflow_applied),
        ("openflow", "refused", &c.openflow_refused),
    ] {
        fm.with_label_values(&[src, res]).inc_by(v.load(Relaxed));
    }

    let pin_sent = counter(
        &r,
        "ferroflow_packet_ins_sent_total",
        "PACKET_IN messages sent to controllers.",
        &[],
    );
    let pin_dropped = counter(
        &r,
        "ferroflow_packet_ins_dropped_total",
        "PACKET_INs dropped by the rate limit or a full connection.",
        &[],
    );
    let conns = gauge(
        &r,
        "ferroflow_openflow_connections",
        "OpenFlow connections (controllers and tools) past the handshake.",
        &[],
    );
    if let Some(agent) = api.agent() {
        let ac = agent.counters();
        pin_sent
            .with_label_values(&[])
            .inc_by(ac.packet_ins_sent.load(Relaxed));
        pin_dropped
            .with_label_values(&[])
            .inc_by(ac.packet_ins_dropped.load(Relaxed));
        conns.with_label_values(&[]).set(agent.connections() as i64);
        for (name, help, v) in [
            ("ferroflow_openflow_replies_too_long_total", "Multipart replies with an entry no OpenFlow message can hold (answered MULTIPART_BUFFER_OVERFLOW).", &ac.replies_too_long),
            ("ferroflow_openflow_bundles_refused_total", "Bundles refused because a connection had too many open (OUT_OF_BUNDLES).", &ac.bundles_out_of_bundles),
            ("ferroflow_openflow_bundle_messages_refused_total", "Bundle messages refused over the per-bundle or total limit (MSG_TOO_MANY).", &ac.bundle_messages_too_many),
            ("ferroflow_openflow_bundles_expired_total", "Bundles discarded after their idle timeout (BUNDLE_FAILED/TIMEOUT).", &ac.bundles_expired),
            ("ferroflow_openflow_connections_refused_total", "Connections closed at accept because the listener was at its limit.", &ac.connections_refused),
            ("ferroflow_openflow_handshake_timeouts_total", "Connections dropped for not completing TLS or sending a first message in time.", &ac.handshake_timeouts),
        ] {
            counter(&r, name, help, &[]).with_label_values(&[]).inc_by(v.load(Relaxed));
        }
    }
    let ctl = gauge(
        &r,
        "ferroflow_controller_connected",
        "1 while the controller's connection is up.",
        &["target"],
    );
    for c in api.controllers() {
        ctl.with_label_values(&[&c.target])
            .set(i64::from(c.connected));
    }

    grpc_limits(&r, &api.grpc);
    gauge(
        &r,
        "ferroflow_config_unsaved",
        "1 while a change could not be written to the config file (the switch runs ahead of it and retries every 2 s; ferroflowctl status says why).",
        &[],
    )
    .with_label_values(&[])
    .set(i64::from(api.unsaved().is_some()));
    crate::tunnels::register_metrics(&r, &tunnels);
    conntrack_metrics(&r, sw);

    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&r.gather(), &mut out)
        .expect("text encoding");
    let mut text = String::from_utf8(out).unwrap_or_default();
    burst_histogram(&mut text, &workers);
    text
}

/// The connection trackers' counters (stats only, never a dump), asked of every worker
/// through its command queue after the switch's state was released: the wait, bounded by
/// the datapath's `ack_timeout`, holds no lock. A worker that does not answer leaves
/// `ferroflow_conntrack_readable` at 0 and the series out of this scrape.
fn conntrack_metrics(r: &Registry, sw: &crate::switch::Switch) {
    let replies = sw.conntrack(datapath::ConntrackOp::Stats);
    gauge(
        r,
        "ferroflow_conntrack_readable",
        "1 when every worker answered this scrape's connection-tracking stats request; 0 when one did not in time (stalled or busy) or the datapath is not running.",
        &[],
    )
    .with_label_values(&[])
    .set(i64::from(replies.is_ok()));
    let Ok(replies) = replies else {
        return;
    };
    let capacity = sw.config.conntrack.max_connections as i64;
    let worker_entries = gauge(
        r,
        "ferroflow_conntrack_worker_entries",
        "Connections in the worker's table (each worker has its own, of ferroflow_conntrack_worker_capacity).",
        &["lcore"],
    );
    let worker_capacity = gauge(
        r,
        "ferroflow_conntrack_worker_capacity",
        "Connections the worker's table holds at most ([conntrack] max_connections); a full table refuses new connections.",
        &["lcore"],
    );
    let handed_off = counter(
        r,
        "ferroflow_conntrack_handed_off_total",
        "Packets the worker handed to the worker owning their connection (several workers; docs/conntrack.md).",
        &["lcore"],
    );
    let handoff_dropped = counter(
        r,
        "ferroflow_conntrack_handoff_dropped_total",
        "Packets dropped on their way to the worker owning their connection (its ring was full).",
        &["lcore"],
    );
    let nat_source_remapped = counter(
        r,
        "ferroflow_conntrack_nat_source_remapped_total",
        "Connections whose source port a DNAT also translated so that their replies reach the worker owning them (docs/conntrack.md).",
        &["lcore"],
    );
    for w in replies.iter().filter(|w| w.enabled) {
        let lcore = w.lcore.to_string();
        nat_source_remapped
            .with_label_values(&[&lcore])
            .inc_by(w.stats.nat_source_remapped);
        worker_entries
            .with_label_values(&[&lcore])
            .set(w.stats.entries as i64);
        worker_capacity.with_label_values(&[&lcore]).set(capacity);
        handed_off.with_label_values(&[&lcore]).inc_by(w.handed_off);
        handoff_dropped
            .with_label_values(&[&lcore])
            .inc_by(w.handoff_dropped);
    }
    let stats = crate::api::conntrack::stats_reply(&replies, None, capacity as u64);
    let entries = gauge(
        r,
        "ferroflow_conntrack_entries",
        "Tracked connections, by zone (zone=\"other\": zones beyond the 1024 a worker counts separately).",
        &["zone"],
    );
    let committed = counter(
        r,
        "ferroflow_conntrack_committed_total",
        "Connections committed (ct(commit)), by zone; its rate is new connections per second.",
        &["zone"],
    );
    let invalid = counter(
        r,
        "ferroflow_conntrack_invalid_total",
        "Packets found +inv (malformed, out of window, invalid state change), by zone.",
        &["zone"],
    );
    let table_full = counter(
        r,
        "ferroflow_conntrack_table_full_total",
        "New connections refused because the worker's table was full, by zone.",
        &["zone"],
    );
    for z in &stats.zones {
        let zone = z.zone.map_or_else(|| "other".to_owned(), |z| z.to_string());
        let c = z.counters.unwrap_or_default();
        entries.with_label_values(&[&zone]).set(c.entries as i64);
        committed.with_label_values(&[&zone]).inc_by(c.committed);
        invalid.with_label_values(&[&zone]).inc_by(c.invalid);
        table_full.with_label_values(&[&zone]).inc_by(c.table_full);
    }
}

/// `ferroflow_worker_burst_packets`, a histogram of packets per non-empty rx burst per
/// worker, from the workers' fixed buckets (the registry's histograms can only observe
/// one value at a time).
fn burst_histogram(text: &mut String, workers: &[datapath::WorkerReport]) {
    use std::fmt::Write;
    if workers.is_empty() {
        return;
    }
    let name = "ferroflow_worker_burst_packets";
    let _ = writeln!(
        text,
        "# HELP {name} Packets per non-empty rx burst (at most 32): a worker whose bursts are full is falling behind.\n# TYPE {name} histogram"
    );
    for w in workers {
        let mut cumulative = 0;
        for (count, bound) in w.burst_histogram.iter().zip(datapath::BURST_BUCKET_BOUNDS) {
            cumulative += count;
            let _ = writeln!(
                text,
                "{name}_bucket{{lcore=\"{}\",le=\"{bound}\"}} {cumulative}",
                w.lcore
            );
        }
        let l = w.lcore;
        let _ = writeln!(
            text,
            "{name}_bucket{{lcore=\"{l}\",le=\"+Inf\"}} {cumulative}"
        );
        let _ = writeln!(text, "{name}_sum{{lcore=\"{l}\"}} {}", w.packets);
        let _ = writeln!(text, "{name}_count{{lcore=\"{l}\"}} {cumulative}");
    }
}

/// The gRPC server's limits at work (docs/limits.md).
fn grpc_limits(r: &Registry, g: &crate::api::limits::GrpcCounters) {
    for (name, help, v) in [
        ("ferroflow_grpc_handshake_timeouts_total", "gRPC peers dropped because their TLS handshake did not finish within grpc.handshake_timeout_s.", &g.handshake_timeouts),
        ("ferroflow_grpc_handshake_failures_total", "gRPC TLS handshakes that failed (no or a bad client certificate).", &g.handshake_failures),
        ("ferroflow_grpc_connections_refused_total", "gRPC connections closed at accept because grpc.max_connections were open.", &g.connections_refused),
        ("ferroflow_grpc_streams_refused_total", "gRPC calls refused (RESOURCE_EXHAUSTED) because grpc.max_streams_per_connection were in progress on their connection.", &g.streams_refused),
        ("ferroflow_grpc_requests_too_large_total", "gRPC calls refused (RESOURCE_EXHAUSTED) because a request message was over grpc.max_request_bytes (grpc.max_flow_batch_bytes for FlowService).", &g.requests_too_large),
        ("ferroflow_grpc_ports_refused_total", "gRPC AddPort calls refused by the port rules (grpc.port_drivers, grpc.port_paths, grpc.port_pci).", &g.ports_refused),
    ] {
        counter(r, name, help, &[]).with_label_values(&[]).inc_by(v.load(Relaxed));
    }
    gauge(
        r,
        "ferroflow_grpc_connections_open",
        "gRPC connections open now (handshaking or serving).",
        &[],
    )
    .with_label_values(&[])
    .set(g.connections_open.load(Relaxed) as i64);
}

/// Serves `/metrics` on `listen` in the background.
pub async fn serve(api: Arc<Api>, listen: &str) -> Result<(), MetricsError> {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| MetricsError::Bind {
            listen: listen.to_owned(),
            source,
        })?;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let api = Arc::clone(&api);
            async move {
                let body = tokio::task::spawn_blocking(move || render(&api))
                    .await
                    .unwrap_or_default();
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    body,
                )
            }
        }),
    );
    tracing::info!(%listen, "Prometheus metrics at /metrics");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!("metrics server stopped: {e}");
        }
    });
    Ok(())
}
