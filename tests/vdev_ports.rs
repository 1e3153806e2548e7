//! Port kinds made from devargs: `net_pcap`, `net_null`, `net_ring`, with the
//! default pipeline (table 0: `priority=0 actions=NORMAL`). Each run is bounded
//! by `--exit-after`, and the counters must add up: every packet a port
//! received was forwarded, sent to the controller or dropped, and every copy
//! sent to a port was transmitted or counted as a tx drop.

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.

use std::time::Duration;

use common::*;
use serde_json::Value;

fn port(name: &str, devargs: &str, ofport: u32) -> String {
    format!("\n[[ports]]\nname = \"{name}\"\ndevargs = \"{devargs}\"\nofport = {ofport}\n")
}

fn u(v: &Value, path: &[&str]) -> u64 {
    let mut x = v;
    for p in path {
        x = &x[*p];
    }
    x.as_u64()
        .unwrap_or_else(|| panic!("{path:?} missing in {v}"))
}

/// Runs a config to its `--exit-after` and returns the final stats.
fn run_for(tag: &str, config: &str, seconds: f64) -> Value {
    let mut ff = Ferroflowd::start(tag, config, seconds);
    let status = ff.wait_exit(Duration::from_secs_f64(seconds + 30.0));
    assert!(status.success(), "ferroflowd failed:\n{}", ff.log_text());
    ff.stats_json()
}

/// The per-port accounting every datapath run must satisfy.
fn assert_accounting(stats: &Value) {
    for p in stats["ports"].as_array().unwrap() {
        let s = &p["switch_stats"];
        assert_eq!(
            u(p, &["driver_stats", "rx_packets"]),
            u(s, &["rx_packets"]),
            "driver rx vs switch rx: {p}"
        );
        let handled = u(s, &["forwarded"]) + u(s, &["to_controller"]) + u(s, &["dropped"]);
        assert_eq!(
            u(s, &["rx_packets"]),
            handled,
            "rx != forwarded + to_controller + dropped: {p}"
        );
        assert_eq!(
            u(p, &["driver_stats", "tx_packets"]),
            u(s, &["tx_packets"]),
            "driver tx vs switch tx: {p}"
        );
    }
}

fn frames(n: u16) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let src = [0x02, 0, 0, 0, 0, 1 + (i % 2) as u8];
            // Destinations that never send: unknown unicast, flooded.
            udp_frame([0x02, 0, 0, 0, 0x99, 0x99], src, 1000 + i)
        })
        .collect()
}

#[test]
fn pcap_to_null_counts_add_up() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("pcap-null");
    let input = dir.path("in.pcap");
    write_pcap(&input, &frames(64));
    let mut config = eal_section("ff-t-pcapnull");
    config += &port(
        "src",
        &format!("net_pcap0,rx_pcap={},infinite_rx=1", input.display()),
        1,
    );
    config += &port("sink", "net_null0,no-rx=1", 2);
    let stats = run_for("pcap-null", &config, 3.0);
    assert_accounting(&stats);
    let src = Ferroflowd::port(&stats, "src");
    let sink = Ferroflowd::port(&stats, "sink");
    let rx = u(&src, &["driver_stats", "rx_packets"]);
    assert!(rx > 100_000, "only {rx} packets in 3 s: {src}");
    // Two ports: every packet of src is a copy for sink.
    let copies = u(&src, &["switch_stats", "forwarded"]);
    assert_eq!(copies + u(&src, &["switch_stats", "dropped"]), rx);
    assert_eq!(
        u(&sink, &["switch_stats", "tx_packets"]) + u(&sink, &["switch_stats", "tx_dropped"]),
        copies
    );
    assert!(copies > 0);
    // A clean stop leaves no hugepage file and no runtime directory behind.
    let leftovers: Vec<_> = std::fs::read_dir("/dev/hugepages")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !leftovers.iter().any(|f| f.starts_with("ff-t-pcapnull")),
        "hugepage files left: {leftovers:?}"
    );
    assert!(
        !std::path::Path::new("/var/run/dpdk/ff-t-pcapnull").exists(),
        "runtime directory left"
    );
}

#[test]
fn null_generator_frames_are_hairpin_drops() {
    // net_null receives all-zero frames: source and destination 00:00:00:00:00:00.
    // The source is learned on the ingress port before the destination is
    // looked up, so the destination is that port, and the switch never sends
    // a frame back where it came from.
    let _lock = DatapathLock::take();
    let mut config = eal_section("ff-t-null");
    config += &port("gen", "net_null0", 1);
    config += &port("sink", "net_null1,no-rx=1", 2);
    let stats = run_for("null", &config, 2.0);
    assert_accounting(&stats);
    let gen = Ferroflowd::port(&stats, "gen");
    let rx = u(&gen, &["driver_stats", "rx_packets"]);
    assert!(rx > 100_000, "{gen}");
    assert_eq!(u(&gen, &["switch_stats", "dropped"]), rx, "{gen}");
    let sink = Ferroflowd::port(&stats, "sink");
    assert_eq!(u(&sink, &["driver_stats", "tx_packets"]), 0, "{sink}");
}

#[test]
fn pcap_out_holds_exactly_the_frames_in() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("pcap-pcap");
    let input = dir.path("in.pcap");
    let output = dir.path("out.pcap");
    let sent = frames(50);
    write_pcap(&input, &sent);
    let mut config = eal_section("ff-t-pcap");
    config += &port("src", &format!("net_pcap0,rx_pcap={}", input.display()), 1);
    config += &port("dst", &format!("net_pcap1,tx_pcap={}", output.display()), 2);
    let stats = run_for("pcap-pcap", &config, 2.0);
    assert_accounting(&stats);
    let got = read_pcap(&output);
    assert_eq!(got.len(), sent.len(), "frames written: {stats}");
    assert_eq!(got, sent, "frames were altered on the way");
}

#[test]
fn ring_port_loops_back_and_the_switch_learns_the_move() {
    // A net_ring port made from devargs alone is a loopback: what the switch
    // sends to it comes back in. The flood from src returns on ring, so the
    // sources move to ring, and their later frames are forwarded or hairpin-dropped.
    let _lock = DatapathLock::take();
    let dir = TempDir::new("ring");
    let input = dir.path("in.pcap");
    write_pcap(&input, &frames(8));
    let mut config = eal_section("ff-t-ring");
    config += &port("src", &format!("net_pcap0,rx_pcap={}", input.display()), 1);
    config += &port("ring", "net_ring0", 2);
    config += &port("sink", "net_null0,no-rx=1", 3);
    let stats = run_for("ring", &config, 2.0);
    assert_accounting(&stats);
    let ring = Ferroflowd::port(&stats, "ring");
    assert!(u(&ring, &["driver_stats", "tx_packets"]) > 0, "{ring}");
    assert!(
        u(&ring, &["driver_stats", "rx_packets"]) > 0,
        "nothing came back from the ring: {ring}"
    );
}
