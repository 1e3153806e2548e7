//! Fail modes without a reachable controller: `secure` forwards nothing the
//! flow tables do not say; `standalone` hands table-miss to NORMAL once the
//! controller has been gone for three probe intervals.

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.

use std::time::{Duration, Instant};

use common::*;

fn bench(tag: &str, mode: &str) -> (Ferroflowd, Netns, Netns) {
    let mut config = eal_section(&format!("ff-t-{tag}"));
    // Nobody listens on this port: the controller stays unreachable.
    config += &format!("[bridge]\nfail_mode = \"{mode}\"\n[[bridge.controllers]]\ntarget = \"tcp:127.0.0.1:16698\"\n");
    config += "[openflow]\nprobe_interval_s = 1\n[datapath]\nidle_sleep_us = 200\n";
    let pfx = &tag[..4];
    for (i, name) in ["a", "b"].iter().enumerate() {
        config += &format!("\n[[ports]]\nname = \"{name}\"\ndevargs = \"net_tap{i},iface={pfx}-{name}\"\nofport = {}\n", i + 1);
    }
    let ff = Ferroflowd::start(tag, &config, 300.0);
    let a = Netns::new(&format!("{pfx}-a"));
    let b = Netns::new(&format!("{pfx}-b"));
    for (ns, ip) in [(&a, "198.18.9.1/24"), (&b, "198.18.9.2/24")] {
        wait_for_interface(&ns.0);
        ns.adopt(&ns.0, ip);
    }
    (ff, a, b)
}

#[test]
fn secure_mode_forwards_nothing_without_flows() {
    let _lock = DatapathLock::take();
    let (ff, a, _b) = bench("fsec-mode", "secure");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        assert!(
            !a.exec("ping -c 1 -W 1 198.18.9.2").status.success(),
            "secure mode forwarded without a flow"
        );
    }
    let stats = ff.stop();
    assert_eq!(
        Ferroflowd::port(&stats, "b")["driver_stats"]["tx_packets"],
        0,
        "{stats}"
    );
}

#[test]
fn standalone_mode_falls_back_to_normal() {
    let _lock = DatapathLock::take();
    let (ff, a, _b) = bench("fsta-mode", "standalone");
    // Three probe intervals (3 s) after start, NORMAL takes over table-miss.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if a.exec("ping -c 1 -W 1 198.18.9.2").status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "standalone mode never forwarded:\n{}",
            ff.log_text()
        );
    }
    assert!(
        ff.log_text().contains("fail mode standalone"),
        "{}",
        ff.log_text()
    );
    drop(ff.stop());
}
