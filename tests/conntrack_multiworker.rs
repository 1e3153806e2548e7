//! Connection tracking over two workers: the two ports of every connection are polled by
//! different workers (each port's rx queues moved to one worker with `ferroflowctl datapath
//! move-rxq`), so one direction of every connection arrives on a worker that does not own
//! it and is handed to the owner (docs/conntrack.md, "Several workers"). The stateful
//! firewall of tests/conntrack_switch.rs must behave exactly as with one worker: TCP and
//! UDP connections allowed by a rule or made by the protected host get their replies as
//! `+est`, inbound without a rule is refused, the ICMP error for a tracked UDP flow is
//! `+rel`, crafted invalid packets are dropped, and the counters (connections committed,
//! invalid and related packets, the hits of each rule) are those of the one-worker run.
//!
//! Two workers on this 2-core machine: lcores `0@0,1@1,2@1` put both workers on CPU 1
//! (the control plane keeps CPU 0) and `idle_sleep_us` lets an idle worker yield it. Every
//! EAL argument list here has --no-pci, its own --file-prefix, --in-memory and
//! --socket-limit (the `[eal]` section below, as tests/common's eal_section writes it).
//! Each run is bounded by ferroflowd's --exit-after (100 s) and takes about 10 s.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const TARGET: &str = "tcp:127.0.0.1:16637";
/// ferroflowd and the two hosts behind its tap ports (`hosts` derefs: `bench.a`,
/// `bench.serve(..)`).
struct Bench {
    _ff: Ferroflowd,
    hosts: TwoHosts,
    socket: std::path::PathBuf,
    _dir: TempDir,
}

impl std::ops::Deref for Bench {
    type Target = TwoHosts;
    fn deref(&self) -> &TwoHosts {
        &self.hosts
    }
}

impl std::ops::DerefMut for Bench {
    fn deref_mut(&mut self) -> &mut TwoHosts {
        &mut self.hosts
    }
}

/// ferroflowd with two tap ports (a: 198.18.7.1, port 1; b: 198.18.7.2, port 2) and
/// `workers` workers; with two, port a's rx queues are polled by the first worker and
/// port b's by the second.
fn bench(tag: &str, workers: usize) -> Bench {
    let dir = TempDir::new(&format!("ctmw-{tag}"));
    let socket = dir.path("api.sock");
    let lcores = if workers == 2 { "0@0,1@1,2@1" } else { "0-1" };
    let mut config = format!(
        "[eal]\nlcores = \"{lcores}\"\nmemory_mb = 256\nfile_prefix = \"ff-ctmw-{tag}\"\nin_memory = true\nextra_args = [\"--no-pci\"]\n"
    );
    config += "[openflow]\nlisten = [\"ptcp:127.0.0.1:16637\"]\n[datapath]\nidle_sleep_us = 200\n";
    config += &format!("[grpc]\nlisten = \"unix:{}\"\n", socket.display());
    for (i, name) in ["a", "b"].iter().enumerate() {
        config += &format!(
            "\n[[ports]]\nname = \"{name}\"\ndevargs = \"net_tap{i},iface=ffcm-{name}\"\nofport = {}\n",
            i + 1
        );
    }
    let ff = Ferroflowd::start(&format!("ctmw-{tag}"), &config, 100.0);
    let hosts = TwoHosts::new("ffcm", "198.18.7");
    ofctl_ok(&["del-flows", TARGET]);
    let bench = Bench {
        _ff: ff,
        hosts,
        socket,
        _dir: dir,
    };
    if workers == 2 {
        bench.place_ports();
    }
    bench
}

fn u(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

impl Bench {
    /// `ferroflowctl ARGS` against this switch: stdout, or a failed test.
    fn ctl(&self, args: &[&str]) -> String {
        let out = Command::new("timeout")
            .arg("30")
            .arg(ferroflowctl())
            .arg("--server")
            .arg(format!("unix:{}", self.socket.display()))
            .args(args)
            .output()
            .expect("ferroflowctl");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "ferroflowctl {args:?} failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    fn status(&self) -> Value {
        serde_json::from_str(&self.ctl(&["--json", "status"])).expect("status json")
    }

    /// Moves every rx queue of port a to the first worker and of port b to the second,
    /// and checks that the status shows them there.
    fn place_ports(&self) {
        let st = self.status();
        let workers = st["workers"].as_array().expect("workers");
        assert_eq!(workers.len(), 2, "two workers: {st}");
        let lcores: Vec<u64> = workers.iter().map(|w| u(&w["lcore"])).collect();
        for w in workers {
            for q in w["rx_queues"].as_array().unwrap() {
                let port = q["port"].as_str().unwrap();
                let to = if port == "a" { lcores[0] } else { lcores[1] };
                let out = self.ctl(&[
                    "datapath",
                    "move-rxq",
                    port,
                    &u(&q["queue"]).to_string(),
                    &to.to_string(),
                ]);
                assert!(out.contains(&format!("-> lcore {to}")), "{out}");
            }
        }
        let st = self.status();
        for (w, lcore) in st["workers"].as_array().unwrap().iter().zip(&lcores) {
            let want = if *lcore == lcores[0] { "a" } else { "b" };
            let queues = w["rx_queues"].as_array().unwrap();
            assert!(
                !queues.is_empty() && queues.iter().all(|q| q["port"] == want),
                "lcore {lcore} polls only port {want}'s queues: {st}"
            );
        }
    }
}

/// The firewall of tests/conntrack_switch.rs: a (port 1) is the protected instance.
const FLOWS: &[&str] = &[
    "table=0,priority=200,arp,in_port=1,actions=output:2",
    "table=0,priority=200,arp,in_port=2,actions=output:1",
    "table=0,priority=100,ip,actions=ct(table=1,zone=1)",
    "table=1,priority=300,ct_state=+inv+trk,ip,actions=drop",
    "table=1,priority=200,ct_state=-new+est-inv+trk,ip,actions=resubmit(,2)",
    "table=1,priority=200,ct_state=-new+rel-inv+trk,ip,actions=resubmit(,2)",
    "table=1,priority=100,ct_state=+new-est-inv+trk,ip,in_port=1,actions=ct(commit,zone=1,exec(set_field:0x1->ct_mark)),resubmit(,2)",
    "table=1,priority=100,ct_state=+new-est-inv+trk,tcp,in_port=2,nw_dst=198.18.7.1,tp_dst=8080,actions=ct(commit,zone=1),resubmit(,2)",
    "table=1,priority=100,ct_state=+new-est-inv+trk,udp,in_port=2,nw_dst=198.18.7.1,tp_dst=5353,actions=ct(commit,zone=1),resubmit(,2)",
    "table=1,priority=0,actions=drop",
    "table=2,priority=10,in_port=1,actions=output:2",
    "table=2,priority=10,in_port=2,actions=output:1",
];

/// What a run of the scenario shows: the clients' results and the counters that do not
/// depend on timing (TCP's retransmissions and delayed ACKs only change `+est` counts and
/// the drops of the refused connection, which are not compared).
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    results: Vec<String>,
    committed: u64,
    invalid: u64,
    related: u64,
    /// n_packets of: egress +new, ingress TCP rule, ingress UDP rule, +rel, +inv.
    rules: [u64; 5],
}

/// The firewall scenario; returns its outcome and the `conntrack stats` JSON.
fn scenario(bench: &mut Bench) -> (Outcome, Value) {
    let dir = TempDir::new("ctmw-flows");
    let path = dir.path("flows.txt");
    std::fs::write(&path, FLOWS.join("\n") + "\n").unwrap();
    ofctl_ok(&["add-flows", TARGET, path.to_str().unwrap()]);
    bench.serve('a', "tcp:8080 tcp:9090 udp:5353");
    bench.serve('b', "tcp:7070 udp:5353");
    let results = vec![
        // Allowed by a rule.
        bench.client('b', "tcp 198.18.7.1 8080"),
        bench.client('b', "udp 198.18.7.1 5353 4"),
        // No rule: refused although a listens.
        bench.client('b', "tcp 198.18.7.1 9090"),
        // a's own connections out: replies pass as +est.
        bench.client('a', "tcp 198.18.7.2 7070"),
        bench.client('a', "udp 198.18.7.2 5353 16"),
        // The port unreachable for a's tracked UDP flow is +rel.
        bench.client('a', "udp 198.18.7.2 5999"),
    ];
    // Crafted invalid packets from b: a SYN-ACK without a SYN, a SYN+FIN.
    let scapy = format!(
        "{CT_PYTHON} -c \"from scapy.all import *; \
         [sendp(Ether(src='{b}',dst='{a}')/IP(src='198.18.7.2',dst='198.18.7.1')/TCP(sport=4444,dport=8080,flags=f,seq=1000,ack=2000),iface='ffcm-b',verbose=0) for f in ['SA','SF']]\"",
        a = bench.a_mac,
        b = bench.b_mac
    );
    let out = bench.b.exec(&scapy);
    assert!(
        out.status.success(),
        "scapy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while n_packets(&ofctl_ok(&["dump-flows", TARGET]), "ct_state=+inv+trk") < 2 {
        assert!(Instant::now() < deadline, "the invalid packets never came");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The connections' last packets (FINs) settle.
    std::thread::sleep(Duration::from_millis(500));
    let dump = ofctl_ok(&["dump-flows", TARGET]);
    let est = n_packets(&dump, "ct_state=-new+est-inv+trk");
    assert!(est > 0, "replies pass as +est:\n{dump}");
    let rules = [
        n_packets(&dump, "ip,in_port=1 actions=ct(commit"),
        n_packets(&dump, "tcp,in_port=2,nw_dst=198.18.7.1,tp_dst=8080"),
        n_packets(&dump, "udp,in_port=2,nw_dst=198.18.7.1,tp_dst=5353"),
        n_packets(&dump, "ct_state=-new+rel-inv+trk"),
        n_packets(&dump, "ct_state=+inv+trk"),
    ];
    let stats: Value =
        serde_json::from_str(&bench.ctl(&["--json", "conntrack", "stats"])).expect("stats");
    let outcome = Outcome {
        results,
        committed: u(&stats["totals"]["committed"]),
        invalid: u(&stats["totals"]["invalid"]),
        related: u(&stats["related"]),
        rules,
    };
    (outcome, stats)
}

#[test]
fn two_workers_track_connections_whose_directions_arrive_on_different_workers() {
    let _lock = DatapathLock::take();
    let one = {
        let mut bench = bench("one", 1);
        let (outcome, stats) = scenario(&mut bench);
        assert_eq!(u(&stats["handed_off"]), 0, "one worker hands nothing off");
        outcome
    };
    eprintln!("one worker: {one:?}");
    assert_eq!(
        one.results,
        ["ok", "4", "timeout", "ok", "16", "refused"],
        "{one:?}"
    );
    assert!(
        one.committed == 23 && one.related >= 1 && one.rules[4] >= 2,
        "{one:?}"
    );

    let mut bench = bench("two", 2);
    let (two, stats) = scenario(&mut bench);
    eprintln!("two workers: {two:?}\n{stats}");
    // Every connection has one direction on the worker that does not own it.
    assert!(u(&stats["handed_off"]) > 0, "{stats}");
    assert_eq!(u(&stats["handoff_dropped"]), 0, "{stats}");
    assert_eq!(u(&stats["foreign"]), 0, "{stats}");
    assert_eq!(two, one, "two workers behave as one");
    // The connections are spread over both workers' tables, and the dump shows them all.
    let dump = bench.ctl(&["conntrack", "dump", "-s"]);
    let lcores: std::collections::BTreeSet<&str> = dump
        .lines()
        .filter_map(|l| l.rsplit("lcore=").next())
        .collect();
    assert_eq!(lcores.len(), 2, "connections on both workers:\n{dump}");
}
