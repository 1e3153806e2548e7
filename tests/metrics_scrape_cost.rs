//! A Prometheus scrape's work under the switch's lock does not grow with the
//! flow count: with 100k flows installed, the flow entries a scrape reads
//! while holding the state (`ferroflow_metrics_scrape_entries_visited`) are
//! the instances' own anti-spoofing entries, as many as with none.

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.
mod mgmt;

use std::time::Instant;

use common::{DatapathLock, TempDir};
use ferroflow::api::client::ServerAddr;
use ferroflow::api::pb;
use mgmt::{clients, config, port_toml, text_change, Daemon};

fn scrape(metrics: &str) -> String {
    common::run(&format!("curl -sf http://{metrics}/metrics"))
}

fn value(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("{name} not in the scrape:\n{text}")) as u64
}

const PROFILE: &str = r#"
[[networks]]
id = 1
name = "default"
kind = "normal"
gateway = "10.0.0.254"

[[instances]]
name = "guest"
network = 1
port = "vm"
mac = "52:54:00:00:00:11"
addresses = ["10.0.0.11"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_reads_no_flow_entries_per_flow_under_the_lock() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("scrape-cost");
    let socket = dir.path("api.sock");
    let metrics = "127.0.0.1:19473";
    let cfg = dir.path("ff.toml");
    let mut text = config(
        "ff-t-scrape",
        &socket,
        Some(metrics),
        &(port_toml("p1", "net_null0,no-rx=1", 1) + &port_toml("vm", "net_null1,no-rx=1", 2)),
    );
    text += "\n[datapath]\nidle_sleep_us = 200\n";
    text += PROFILE;
    std::fs::write(&cfg, text).unwrap();
    let d = Daemon::start(&cfg, &format!("unix:{}", socket.display()), 120.0);

    let before = scrape(metrics);
    let visited_before = value(&before, "ferroflow_metrics_scrape_entries_visited");
    assert!(
        before.contains("ferroflow_instance_spoofed_packets_total{"),
        "the instance's spoof counter is exported:\n{before}"
    );
    assert!(
        (1..=16).contains(&visited_before),
        "{visited_before} entries for one instance"
    );

    let mut c = clients(&ServerAddr::Unix(socket.clone())).await;
    let t = Instant::now();
    c.flows
        .apply_flows(pb::ApplyFlowsRequest {
            changes: (0..100_000u32)
                .map(|i| {
                    text_change(
                        pb::FlowCommand::Add,
                        &format!(
                            "table=200,priority=10,ip,nw_dst=10.{}.{}.{},actions=drop",
                            i >> 16,
                            (i >> 8) & 255,
                            i & 255
                        ),
                    )
                })
                .collect(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("100k flows: {e:?}\n{}", d.log_text()));
    eprintln!("100k flows applied in {:?}", t.elapsed());

    let mut holds = Vec::new();
    for _ in 0..5 {
        let after = scrape(metrics);
        assert_eq!(
            value(&after, "ferroflow_metrics_scrape_entries_visited"),
            visited_before,
            "a scrape read more flow entries under the lock with 100k flows"
        );
        assert!(after.contains("ferroflow_table_entries{"), "{after}");
        holds.push(value(
            &after,
            "ferroflow_metrics_scrape_lock_hold_microseconds",
        ));
    }
    eprintln!(
        "scrape lock hold with 100k flows (us): {holds:?}; entries visited: {visited_before}; without flows: {} us",
        value(&before, "ferroflow_metrics_scrape_lock_hold_microseconds")
    );
    drop(d);
}
