//! A real Prometheus server (the Debian package) scrapes ferroflowd's
//! /metrics, and a query over its HTTP API returns the port counters of
//! known traffic.

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.
mod mgmt;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{DatapathLock, TempDir};
use mgmt::{config, eventually, port_toml, traffic, Daemon};
use serde_json::Value;

const METRICS: &str = "127.0.0.1:19465";
const PROMETHEUS: &str = "127.0.0.1:19091";

/// Kills the Prometheus it started, by PID.
struct Prometheus(std::process::Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn query(q: &str) -> Option<f64> {
    let out = Command::new("curl")
        .args([
            "-sf",
            "--get",
            &format!("http://{PROMETHEUS}/api/v1/query"),
            "--data-urlencode",
        ])
        .arg(format!("query={q}"))
        .output()
        .ok()?;
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn prometheus_scrapes_port_counters() {
    assert!(
        Command::new("prometheus")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "THIS TEST NEEDS PROMETHEUS: apt-get install prometheus (tests/setup-host.sh does it)"
    );
    let _lock = DatapathLock::take();
    let dir = TempDir::new("prometheus");
    let socket = dir.path("api.sock");
    let pcap = traffic(&dir, "in.pcap", 100);
    let ports = port_toml("src", &format!("net_pcap0,rx_pcap={}", pcap.display()), 1)
        + &port_toml("sink", "net_null0,no-rx=1", 2);
    let cfg = dir.path("ff.toml");
    std::fs::write(&cfg, config("ff-prom", &socket, Some(METRICS), &ports)).unwrap();
    let _d = Daemon::start(&cfg, &format!("unix:{}", socket.display()), 300.0);

    // The exposition itself: names, help, labels.
    let text = common::run(&format!("curl -sf http://{METRICS}/metrics"));
    for name in [
        "ferroflow_port_rx_packets_total",
        "ferroflow_port_tx_bytes_total",
        "ferroflow_port_link_up",
        "ferroflow_table_lookups_total",
        "ferroflow_flow_mods_total",
        "ferroflow_worker_cycles_per_packet",
        "ferroflow_mempool_mbufs_in_use",
        "ferroflow_build_info",
        "ferroflow_packet_ins_sent_total",
    ] {
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "no help for {name}:\n{text}"
        );
    }
    assert!(
        text.contains("ferroflow_port_rx_packets_total{port=\"src\"}"),
        "{text}"
    );

    let prom_cfg = dir.path("prometheus.yml");
    std::fs::write(
        &prom_cfg,
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: ferroflow\n    static_configs:\n      - targets: ['{METRICS}']\n"),
    )
    .unwrap();
    let _prom = Prometheus(
        Command::new("prometheus")
            .arg(format!("--config.file={}", prom_cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path("data").display()
            ))
            .arg(format!("--web.listen-address={PROMETHEUS}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path("prometheus.log")).unwrap())
            .spawn()
            .expect("start prometheus"),
    );
    let rx = eventually(
        Duration::from_secs(60),
        "Prometheus to have scraped 100 packets",
        || query("ferroflow_port_rx_packets_total{port=\"src\"}").filter(|v| *v == 100.0),
    );
    assert_eq!(rx, 100.0);
    assert_eq!(
        query("ferroflow_port_tx_packets_total{port=\"sink\"}"),
        Some(100.0)
    );
    assert_eq!(
        query("ferroflow_port_rx_bytes_total{port=\"src\"}"),
        Some(6000.0)
    );
    assert_eq!(query("ferroflow_port_link_up{port=\"sink\"}"), Some(1.0));
}
