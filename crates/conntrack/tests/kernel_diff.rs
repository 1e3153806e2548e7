//! The differential check against the Linux kernel: the same crafted packet sequences
//! (tests/kernel_diff.py, 136 packets: handshakes, out-of-order and out-of-window segments,
//! window scaling, RSTs in and out of window, simultaneous open, reopening from TIME_WAIT,
//! SYN-ACKs without SYN, bad flags and checksums, UDP, ICMP echo and ICMP errors, IPv4
//! and IPv6)
//! go through a namespace router whose nftables rules count each packet's `ct state`, and
//! through our tracker (every packet committed, as the kernel confirms every forwarded
//! packet's connection). The verdicts must be the same.
//!
//! `recorded_kernel_verdicts` replays the verdicts recorded on Linux 6.18
//! (tests/data/kernel_verdicts.json) and runs anywhere; `live_kernel_verdicts` records
//! them again on this machine's kernel (root, nftables and python3-scapy, which
//! tests/setup-host.sh installs) and compares.

use conntrack::{parse_ethernet, Config, TrackOptions, Tracker};
use std::path::Path;
use std::process::Command;

struct Record {
    case: String,
    frame: Vec<u8>,
    kernel: String,
}

fn load(path: &Path) -> (String, Vec<Record>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: serde_json::Value = serde_json::from_str(&text).expect("kernel verdicts are JSON");
    let records = v["packets"]
        .as_array()
        .expect("packets")
        .iter()
        .map(|p| Record {
            case: p["case"].as_str().unwrap().to_string(),
            frame: hex(p["frame"].as_str().unwrap()),
            kernel: p["kernel"].as_str().unwrap().to_string(),
        })
        .collect();
    (v["kernel"].as_str().unwrap_or("?").to_string(), records)
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Feeds the frames to one tracker, committing every packet, and returns the mismatches.
fn compare(kernel: &str, records: &[Record]) {
    let mut tracker = Tracker::new(Config {
        capacity: 1024,
        ..Config::default()
    })
    .unwrap();
    let commit = TrackOptions {
        commit: true,
        ..TrackOptions::default()
    };
    let mut mismatches = Vec::new();
    println!(
        "{:<12} {:<12} {:<16} case",
        "kernel", "ours", "our ct_state"
    );
    for (i, r) in records.iter().enumerate() {
        let ours = match parse_ethernet(&r.frame, true) {
            Ok(p) => tracker.track(&p, &commit, 1_000 + i as u64).state,
            Err(_) => {
                tracker
                    .track_ip(&r.frame[14..], &commit, 1_000 + i as u64)
                    .state
            }
        };
        let ours_name = ours.linux_name();
        println!(
            "{:<12} {:<12} {:<16} {}",
            r.kernel,
            ours_name,
            ours.to_string(),
            r.case
        );
        if ours_name != r.kernel {
            mismatches.push(format!(
                "{}: kernel {} ours {} ({ours})",
                r.case, r.kernel, ours_name
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} verdicts differ from Linux {kernel}:\n{}",
        mismatches.len(),
        records.len(),
        mismatches.join("\n")
    );
    assert!(
        records.len() >= 70,
        "the sequences lost packets: {}",
        records.len()
    );
}

#[test]
fn recorded_kernel_verdicts() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/kernel_verdicts.json");
    let (kernel, records) = load(&path);
    compare(&kernel, &records);
}

#[test]
fn live_kernel_verdicts() {
    // Root, from /proc/self/status (no libc dependency for one call).
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"));
    if !root {
        eprintln!("SKIPPED live_kernel_verdicts: needs root (network namespaces, nftables)");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kernel_diff.py");
    let out = std::env::temp_dir().join(format!("ferroflow-ct-kernel-{}.json", std::process::id()));
    // Debian's python3 (python3-scapy lives there), not a virtualenv's.
    let status = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(&out)
        .status()
        .expect("run /usr/bin/python3 (install python3-scapy and nftables: tests/setup-host.sh)");
    assert!(
        status.success(),
        "{} failed (it needs iproute2, nftables and python3-scapy: tests/setup-host.sh installs them)",
        script.display()
    );
    let (kernel, records) = load(&out);
    let _ = std::fs::remove_file(&out);
    compare(&kernel, &records);
}
