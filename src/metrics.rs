//! Prometheus metrics at `/metrics` (`[metrics] listen`).
//!
//! Each scrape reads the switch afresh into a new registry: the datapath's
//! counters are per-worker atomics read with relaxed loads, the control
//! plane's state copied out in one bounded look ([`read`]) and formatted
//! after it is released, so a scrape never makes a worker wait and never
//! holds the switch while it formats. There is no burst-size histogram: it would need a per-burst
//! counter write in the workers' loop, which this change leaves alone.

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
}

fn read(sw: &crate::switch::Switch) -> Option<Reading> {
    let mut st = sw.lock().ok()?;
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
    for (name, network) in instances {
        let (packets, _) = crate::profile::spoofed(&mut st, &name);
        r.spoofed.push((name, network, packets));
    }
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
    let cc = &sw.counters;
    for (name, help, v) in [
        ("ferroflow_sync_timeouts_total", "Barriers and changes that gave up waiting for a worker to move to a new table version (a stuck worker).", &cc.sync_timeouts),
        ("ferroflow_state_busy_total", "Calls refused because the switch's state was busy past its bound.", &cc.busy),
        ("ferroflow_housekeeping_ticks_skipped_total", "Control-plane ticks skipped because the switch's state was busy.", &cc.ticks_skipped),
        ("ferroflow_packet_in_backlog_ticks_total", "Control-plane ticks that left packet-ins queued for the next tick (at most a bounded number is relayed per tick).", &cc.packet_in_backlog_ticks),
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
        packet_in_limited,
        versions_held,
        version,
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
    for wr in &workers {
        let l = [wr.lcore.to_string()];
        let l = [l[0].as_str()];
        wpackets.with_label_values(&l).inc_by(wr.packets);
        wbusy.with_label_values(&l).inc_by(wr.busy_cycles);
        wtotal.with_label_values(&l).inc_by(wr.total_cycles);
        wcpp.with_label_values(&l).set(wr.cycles_per_packet);
    }
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
        "Packets from an instance's port dropped because their source MAC, IP or ARP sender was not the instance's.",
        &["instance", "network"],
    );
    for (instance, network, packets) in &spoofed_counts {
        spoofed
            .with_label_values(&[instance, network])
            .inc_by(*packets);
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

    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&r.gather(), &mut out)
        .expect("text encoding");
    String::from_utf8(out).unwrap_or_default()
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
