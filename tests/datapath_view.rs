//! The datapath view (`ferroflowctl status`, gRPC, /metrics) agrees with the port counters,
//! and rx queues move between workers (by command and automatically) without losing or
//! repeating a packet.
//!
//! Two workers on this 2-core machine: lcores `0@0,1@1,2@1` put both workers on CPU 1
//! (the control plane keeps CPU 0), and `idle_sleep_us` lets an idle worker yield it.
//! Every EAL argument list here has --no-pci, its own --file-prefix, --in-memory and
//! --socket-limit (the `[eal]` section below, as tests/common's eal_section writes it).

mod common;
mod mgmt;

use std::time::Duration;

use common::{DatapathLock, Ferroflowd, TempDir};
use mgmt::{ctl, eventually, port_toml, traffic};
use serde_json::Value;

const METRICS: &str = "127.0.0.1:19471";

fn status(server: &str) -> Value {
    let (code, out, err) = ctl(server, &["--json", "status"]);
    assert_eq!(code, 0, "status: {err}");
    serde_json::from_str(&out).expect("status json")
}

fn u(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

/// The lcore polling rx queue 0 of `port`.
fn lcore_of(st: &Value, port: &str) -> u64 {
    st["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| {
            w["rx_queues"]
                .as_array()
                .is_some_and(|q| q.iter().any(|q| q["port"] == port))
        })
        .map(|w| u(&w["lcore"]))
        .unwrap_or_else(|| panic!("nobody polls {port}: {st}"))
}

fn worker_packets(st: &Value, lcore: u64) -> u64 {
    st["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| u(&w["lcore"]) == lcore)
        .map(|w| u(&w["packets"]))
        .unwrap()
}

#[test]
fn view_agrees_with_port_counters() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("dpview");
    let socket = dir.path("api.sock");
    let server = format!("unix:{}", socket.display());
    let pcap = traffic(&dir, "in.pcap", 1000);
    let mut config = common::eal_section("ff-t-dpview");
    config += &format!(
        "\n[grpc]\nlisten = \"{server}\"\n\n[metrics]\nlisten = \"{METRICS}\"\n\n[datapath]\nidle_sleep_us = 100\n"
    );
    config += &port_toml("src", &format!("net_pcap0,rx_pcap={}", pcap.display()), 1);
    config += &port_toml("sink", "net_null0,no-rx=1", 2);
    let d = Ferroflowd::start("dpview", &config, 60.0);
    eventually(Duration::from_secs(20), "1000 packets received", || {
        let st = d.stats_json();
        (u(&Ferroflowd::port(&st, "src")["switch_stats"]["rx_packets"]) == 1000).then_some(())
    });

    let st = status(&server);
    let w = &st["workers"][0];
    assert_eq!(u(&w["packets"]), 1000, "{w}");
    let queue_packets: u64 = w["rx_queues"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|q| q["port"] == "src")
        .map(|q| u(&q["packets"]))
        .sum();
    assert_eq!(queue_packets, 1000, "rx queue packets: {w}");
    let share = w["busy_share"].as_f64().unwrap();
    assert!(
        (0.0..=1.0).contains(&share) && share > 0.0,
        "busy share {share}"
    );
    assert!(w["cycles_per_packet"].as_f64().unwrap() > 0.0, "{w}");
    assert!(u(&w["iterations"]) >= u(&w["busy_iterations"]), "{w}");
    assert!(u(&w["busy_iterations"]) > 0, "{w}");
    assert_eq!(
        u(&w["total_cycles"]),
        u(&w["busy_cycles"]) + u(&w["idle_cycles"]),
        "{w}"
    );
    // Every packet came in some burst: the bursts' sizes bound the packet count.
    let hist: Vec<u64> = w["burst_histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(u)
        .collect();
    let bounds: Vec<u64> = w["burst_bucket_bounds"]
        .as_array()
        .unwrap()
        .iter()
        .map(u)
        .collect();
    assert_eq!(bounds, [1, 3, 7, 15, 31, 32]);
    let bursts: u64 = hist.iter().sum();
    let most: u64 = hist.iter().zip(&bounds).map(|(n, b)| n * b).sum();
    assert!(
        (1000 / 32..=1000).contains(&bursts) && most >= 1000,
        "bursts {hist:?} cannot hold 1000 packets"
    );
    let q = w["rx_queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["port"] == "src")
        .unwrap();
    let qshare = q["busy_share"].as_f64().unwrap();
    assert!(qshare > 0.0 && qshare <= 1.0, "{q}");

    // The text view and its watch.
    let (code, text, err) = ctl(&server, &["status"]);
    assert_eq!(code, 0, "{err}");
    for s in ["CYCLES/PKT", "PKTS/BURST", "BUSY_SHARE", "16-31", "src"] {
        assert!(text.contains(s), "no {s} in\n{text}");
    }
    let (code, text, err) = ctl(
        &server,
        &["status", "--watch", "--interval", "0.2", "--count", "2"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(text.matches("ferroflowd ").count(), 2, "{text}");
    assert!(text.contains("over the last"), "{text}");

    // /metrics: the same numbers.
    let m = common::run(&format!("curl -sf http://{METRICS}/metrics"));
    for line in [
        "ferroflow_rxq_packets_total{port=\"src\",queue=\"0\"} 1000",
        "ferroflow_worker_burst_packets_sum{lcore=\"1\"} 1000",
        "ferroflow_worker_burst_packets_bucket{lcore=\"1\",le=\"+Inf\"} ",
        "ferroflow_rxq_lcore{port=\"src\",queue=\"0\"} 1",
    ] {
        assert!(m.contains(line), "no {line:?} in /metrics:\n{m}");
    }
    for name in [
        "ferroflow_worker_busy_cycles_total",
        "ferroflow_worker_idle_cycles_total",
        "ferroflow_worker_iterations_total",
        "ferroflow_worker_busy_share",
        "ferroflow_rxq_busy_cycles_total",
    ] {
        assert!(m.contains(&format!("# HELP {name} ")), "no {name}:\n{m}");
    }
    let stats = d.stop();
    let src = Ferroflowd::port(&stats, "src");
    assert_eq!(u(&src["driver_stats"]["rx_packets"]), 1000, "{src}");
}

/// Two infinite pcap sources on one worker and an idle second worker.
fn uneven_config(tag: &str, server: &str, dir: &TempDir, datapath: &str) -> String {
    let pcap = traffic(dir, "in.pcap", 64);
    let mut config = format!(
        "[eal]\nlcores = \"0@0,1@1,2@1\"\nmemory_mb = 256\nfile_prefix = \"ff-t-{tag}\"\nin_memory = true\nextra_args = [\"--no-pci\"]\n"
    );
    config += &format!(
        "\n[grpc]\nlisten = \"{server}\"\n\n[bridge]\nfail_mode = \"secure\"\n\n[datapath]\nidle_sleep_us = 100\n{datapath}\n"
    );
    // Slots 0 and 2 start on the first worker, slot 1's two queues one on each.
    // One rx queue each (one file), a tx queue per worker (the sink takes the packets).
    let src = |n: u32| {
        format!(
            "net_pcap{n},rx_pcap={},infinite_rx=1,tx_pcap=/dev/null,tx_pcap=/dev/null",
            pcap.display()
        )
    };
    config += &port_toml("a", &src(0), 1);
    config += &port_toml("sink", "net_null0,no-rx=1", 2);
    config += &port_toml("b", &src(1), 3);
    config
}

fn add_flows(server: &str) {
    for f in ["in_port=1,actions=output:2", "in_port=3,actions=output:2"] {
        let (code, _, err) = ctl(server, &["flows", "add", f]);
        assert_eq!(code, 0, "flows add {f}: {err}");
    }
}

/// No packet lost or read twice: each source's packets as its driver delivered them were
/// received once (port counters, queue counters, worker counters), and went to the sink.
fn assert_conserved(stats: &Value) {
    let mut received = 0;
    for name in ["a", "b"] {
        let p = Ferroflowd::port(stats, name);
        let rx = u(&p["switch_stats"]["rx_packets"]);
        assert_eq!(rx, u(&p["driver_stats"]["rx_packets"]), "{p}");
        assert!(rx > 0, "{p}");
        let by_queue: u64 = stats["workers"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|w| w["rx_queue_stats"].as_array().unwrap().iter())
            .filter(|q| q["port"] == name)
            .map(|q| u(&q["packets"]))
            .sum();
        assert_eq!(by_queue, rx, "queue counters of {name}: {stats}");
        let s = &p["switch_stats"];
        assert_eq!(
            u(&s["forwarded"]) + u(&s["dropped"]) + u(&s["to_controller"]),
            rx,
            "{p}"
        );
        received += rx;
    }
    let by_worker: u64 = stats["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| u(&w["packets"]))
        .sum();
    assert_eq!(by_worker, received, "{stats}");
    let sink = Ferroflowd::port(stats, "sink");
    assert!(u(&sink["switch_stats"]["tx_packets"]) > 0, "{sink}");
}

#[test]
fn rebalance_by_command_evens_two_workers() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("dprebal");
    let server = format!("unix:{}", dir.path("api.sock").display());
    let d = Ferroflowd::start(
        "dprebal",
        &uneven_config("dprebal", &server, &dir, ""),
        60.0,
    );
    add_flows(&server);
    let st = status(&server);
    let (la, lb) = (lcore_of(&st, "a"), lcore_of(&st, "b"));
    assert_eq!(la, lb, "both sources start on one worker: {st}");
    let other = if la == 1 { 2 } else { 1 };
    // The idle worker forwards nothing.
    let before = status(&server);
    std::thread::sleep(Duration::from_millis(500));
    let after = status(&server);
    assert_eq!(
        worker_packets(&after, other),
        worker_packets(&before, other),
        "{after}"
    );
    assert!(worker_packets(&after, la) > worker_packets(&before, la));

    let (code, dry, err) = ctl(&server, &["datapath", "rebalance", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(dry.contains("would move"), "{dry}");
    assert_eq!(
        lcore_of(&status(&server), "a"),
        la,
        "a dry run moves nothing"
    );

    std::thread::sleep(Duration::from_millis(500));
    let (code, out, err) = ctl(&server, &["--json", "datapath", "rebalance"]);
    assert_eq!(code, 0, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(u(&r["moved"]), 1, "{r}");
    assert!(
        r["variance_after"].as_f64().unwrap() < r["variance_before"].as_f64().unwrap(),
        "{r}"
    );
    let st = status(&server);
    assert_ne!(lcore_of(&st, "a"), lcore_of(&st, "b"), "{st}");
    // Both workers forward now.
    let before = status(&server);
    std::thread::sleep(Duration::from_millis(500));
    let after = status(&server);
    for l in [1, 2] {
        assert!(
            worker_packets(&after, l) > worker_packets(&before, l),
            "worker {l} idle after the rebalance: {after}"
        );
    }
    // A second rebalance finds nothing better.
    let (code, out, err) = ctl(&server, &["--json", "datapath", "rebalance"]);
    assert_eq!(code, 0, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(u(&r["moved"]), 0, "{r}");
    assert_conserved(&d.stop());
}

#[test]
fn auto_rebalance_moves_a_queue_by_itself() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("dpauto");
    let server = format!("unix:{}", dir.path("api.sock").display());
    let auto = "auto_rebalance = true\nrebalance_interval_s = 1\nrebalance_load_threshold_percent = 50\nrebalance_improvement_percent = 25\n";
    let mut d = Ferroflowd::start(
        "dpauto",
        &uneven_config("dpauto", &server, &dir, auto),
        60.0,
    );
    add_flows(&server);
    d.wait_until(Duration::from_secs(20), "an automatic rebalance", |d| {
        d.log_text().contains("automatic rebalance")
    });
    let st = eventually(Duration::from_secs(5), "the sources on two workers", || {
        let st = status(&server);
        (lcore_of(&st, "a") != lcore_of(&st, "b")).then_some(st)
    });
    assert_ne!(lcore_of(&st, "a"), lcore_of(&st, "b"));
    assert_conserved(&d.stop());
}
