//! vhost-user ports: `dpdk-testpmd` plays the guest with two `net_virtio_user`
//! ports, attached to two `net_vhost` ports of ferroflowd, in both socket
//! directions. testpmd's io forwarding sends what it receives on one port out
//! of the other, so after `--tx-first` traffic circulates through the switch.
//!
//! testpmd's lcores are both mapped to CPU 0 and ferroflowd's worker runs on
//! CPU 1: one busy-polling thread per core. Both are bounded by `timeout`.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn testpmd(dir: &TempDir, prefix: &str, sock0: &Path, sock1: &Path, server: bool) -> Child {
    let srv = if server { ",server=1" } else { "" };
    Command::new("timeout")
        .args([
            "-s",
            "INT",
            "40",
            "dpdk-testpmd",
            "--lcores",
            "0@0,1@0",
            "-n",
            "1",
            "--no-pci",
            "--in-memory",
        ])
        .args([
            "--single-file-segments",
            "--file-prefix",
            prefix,
            "--socket-limit",
            "256",
        ])
        .arg("--vdev")
        .arg(format!(
            "net_virtio_user0,path={}{srv},queues=1",
            sock0.display()
        ))
        .arg("--vdev")
        .arg(format!(
            "net_virtio_user1,path={}{srv},queues=1",
            sock1.display()
        ))
        .args([
            "--",
            "--forward-mode=io",
            "--tx-first",
            "--stats-period",
            "1",
            "--total-num-mbufs=8192",
        ])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.path("testpmd.out")).unwrap())
        .stderr(std::fs::File::create(dir.path("testpmd.err")).unwrap())
        .spawn()
        .expect("dpdk-testpmd (apt-get install dpdk-dev)")
}

/// RX-packets per port from testpmd's final forward statistics.
fn testpmd_rx(out: &str) -> Vec<u64> {
    let mut rx = Vec::new();
    let mut in_port_block = false;
    for line in out.lines() {
        if line.contains("Forward statistics for port") {
            in_port_block = true;
        } else if in_port_block && line.trim_start().starts_with("RX-packets:") {
            let n = line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            rx.push(n);
            in_port_block = false;
        }
    }
    rx
}

fn vhost_exchange(mode_client: bool) {
    let _lock = DatapathLock::take();
    let tag = if mode_client {
        "vhost-client"
    } else {
        "vhost-server"
    };
    let dir = TempDir::new(tag);
    let (s0, s1) = (dir.path("vhu0.sock"), dir.path("vhu1.sock"));
    let client = if mode_client { ",client=1" } else { "" };
    let mut config = eal_section(&format!("ff-t-{tag}"));
    for (i, s) in [&s0, &s1].iter().enumerate() {
        config += &format!(
            "\n[[ports]]\nname = \"vh{i}\"\ndevargs = \"net_vhost{i},iface={}{client},queues=1\"\nofport = {}\n",
            s.display(),
            i + 1
        );
    }
    // In client mode the guest side (testpmd) owns the sockets: it starts first.
    // virtio-user in server mode waits for a connection on each socket in turn,
    // and ferroflowd's client ports retry until their socket appears.
    let mut tp = None;
    if mode_client {
        tp = Some(testpmd(&dir, &format!("tp-{tag}"), &s0, &s1, true));
        let deadline = Instant::now() + Duration::from_secs(20);
        while !s0.exists() {
            assert!(
                Instant::now() < deadline,
                "testpmd never created its first socket"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let mut ff = Ferroflowd::start(tag, &config, 300.0);
    if !mode_client {
        tp = Some(testpmd(&dir, &format!("tp-{tag}"), &s0, &s1, false));
    }
    let mut tp = tp.unwrap();
    // Wait until both ports have carried traffic through the switch.
    ff.wait_until(
        Duration::from_secs(25),
        "traffic on both vhost ports",
        |f| {
            let s = f.stats_json();
            ["vh0", "vh1"].iter().all(|p| {
                Ferroflowd::port(&s, p)["driver_stats"]["rx_packets"]
                    .as_u64()
                    .unwrap_or(0)
                    > 1000
            })
        },
    );
    std::thread::sleep(Duration::from_secs(1));
    run(&format!("kill -INT {}", tp.id()));
    let status = tp.wait().unwrap();
    let out = std::fs::read_to_string(dir.path("testpmd.out")).unwrap();
    assert!(
        status.success(),
        "testpmd failed ({status}):\n{out}\n{}",
        std::fs::read_to_string(dir.path("testpmd.err")).unwrap()
    );
    let rx = testpmd_rx(&out);
    assert_eq!(rx.len(), 2, "testpmd statistics not found:\n{out}");
    assert!(
        rx.iter().all(|&n| n > 1000),
        "testpmd received too little through ferroflowd: {rx:?}"
    );
    let stats = ff.stop();
    for p in ["vh0", "vh1"] {
        let port = Ferroflowd::port(&stats, p);
        assert!(
            port["driver_stats"]["tx_packets"].as_u64().unwrap() > 1000,
            "{port}"
        );
        assert_eq!(port["driver"], "net_vhost");
    }
}

#[test]
fn vhost_server_mode_exchanges_traffic_with_virtio_user() {
    vhost_exchange(false);
}

#[test]
fn vhost_client_mode_exchanges_traffic_with_virtio_user() {
    vhost_exchange(true);
}
