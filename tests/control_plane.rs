//! The control plane cannot be wedged: what a hostile controller or a busy
//! operator does must be refused or finished in bounded time, and forwarding,
//! the API, the metrics and SIGTERM keep working through it (issue: "The
//! control plane never hangs"). Real parts throughout: ferroflowd, ovs-ofctl,
//! ferroflowctl, DPDK net_pcap/net_null vdevs, namespace hosts behind taps.

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.
mod mgmt;

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ofctl, DatapathLock, TempDir};
use mgmt::{config, ctl, eventually, port_toml, traffic, Daemon};
use serde_json::Value;

const OF_TARGET: &str = "tcp:127.0.0.1:16641";
const METRICS: &str = "127.0.0.1:19471";

/// The flows of a dump without their counters and durations, sorted: what
/// must not change when a change is refused.
fn flows_without_counters(dump: &str) -> Vec<String> {
    let mut v: Vec<String> = dump
        .lines()
        .filter(|l| l.contains("actions="))
        .map(|l| {
            l.split(", ")
                .filter(|f| {
                    let f = f.trim();
                    !(f.starts_with("duration=")
                        || f.starts_with("n_packets=")
                        || f.starts_with("n_bytes="))
                })
                .collect::<Vec<_>>()
                .join(", ")
                .split_whitespace()
                .filter(|f| !f.starts_with("n_bytes=") && !f.starts_with("n_packets="))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    v.sort();
    v
}

fn field(line: &str, name: &str) -> f64 {
    let at = line
        .find(&format!("{name}="))
        .unwrap_or_else(|| panic!("no {name} in {line}"));
    line[at + name.len() + 1..]
        .split([',', ' ', 's'])
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{name} in {line}"))
}

fn port_counter(server: &str, port: &str, counter: &str) -> u64 {
    let (code, out, err) = ctl(server, &["--json", "ports"]);
    assert_eq!(code, 0, "ferroflowctl ports: {out}{err}");
    let v: Value = serde_json::from_str(&out).expect("ports json");
    v.as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == port))
        .map_or(0, |p| p["counters"][counter].as_u64().unwrap_or(0))
}

/// A switch whose port 1 (`src`) receives the same 64 frames without end
/// (net_pcap, infinite_rx) and whose port 2 (`sink`) takes whatever it is sent,
/// with gRPC on `socket`, OpenFlow on [`OF_TARGET`] and metrics where asked.
fn endless_traffic_config(
    dir: &TempDir,
    prefix: &str,
    socket: &std::path::Path,
    metrics: Option<&str>,
) -> String {
    let pcap = traffic(dir, "in.pcap", 64);
    let mut ports = port_toml(
        "src",
        &format!("net_pcap0,rx_pcap={},infinite_rx=1", pcap.display()),
        1,
    );
    ports += &port_toml("sink", "net_null0,no-rx=1", 2);
    config(prefix, socket, metrics, &ports)
        + &format!("\n[openflow]\nlisten = [\"p{OF_TARGET}\"]\n")
}

/// SIGTERM ends ferroflowd within 2 s, cleanly.
fn stops_within_2s(d: Daemon) {
    let log = d.log.clone();
    let t = Instant::now();
    let status = d.kill("TERM");
    let took = t.elapsed();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        took < Duration::from_millis(2500),
        "SIGTERM took {took:?}:\n{text}"
    );
    assert!(status.success(), "ferroflowd exited {status}:\n{text}");
}

/// A goto that would loop (to its own table or back) is refused on every path
/// into the tables, nothing changes, and forwarding never stops.
#[test]
fn a_goto_loop_is_refused_on_every_path_and_forwarding_continues() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("cp-goto");
    let socket = dir.path("api.sock");
    let server = format!("unix:{}", socket.display());
    let mut cfg_text = endless_traffic_config(&dir, "ff-cp-goto", &socket, None);
    // With a controller configured the bridge starts without the NORMAL flow.
    cfg_text = cfg_text.replace(
        "[grpc]",
        "[bridge]\nfail_mode = \"secure\"\n\n[[bridge.controllers]]\ntarget = \"tcp:127.0.0.1:1\"\n\n[grpc]",
    );
    let cfg = dir.path("ff.toml");
    std::fs::write(&cfg, cfg_text).unwrap();
    let d = Daemon::start(&cfg, &server, 120.0);

    let flows = dir.path("flows.txt");
    std::fs::write(
        &flows,
        "table=0,priority=100,in_port=1,actions=goto_table:1\n\
         table=1,priority=10,in_port=1,actions=output:2\n",
    )
    .unwrap();
    let (ok, out) = ofctl(&["add-flows", OF_TARGET, flows.to_str().unwrap()]);
    assert!(ok, "add-flows: {out}");
    let moving = |what: &str| {
        let before = port_counter(&server, "sink", "tx_packets");
        eventually(Duration::from_secs(10), what, || {
            (port_counter(&server, "sink", "tx_packets") > before + 1000).then_some(())
        });
    };
    moving("traffic through table 0 and 1");
    let (_, before) = ofctl(&["dump-flows", OF_TARGET]);
    let before = flows_without_counters(&before);
    assert_eq!(before.len(), 2, "{before:?}");

    // MODIFY (non-strict) of table 1 to itself. (ovs-ofctl sends MODIFY to table 0
    // without table=, and never OFPTT_ALL: tests/openflow_protocol.rs sends that one raw.)
    let (ok, out) = ofctl(&["mod-flows", OF_TARGET, "table=1,actions=goto_table:1"]);
    assert!(
        !ok && out.contains("OFPBIC_BAD_TABLE_ID"),
        "mod-flows to table 1: {out}"
    );
    // MODIFY_STRICT of table 1's entry to itself.
    let (ok, out) = ofctl(&[
        "mod-flows",
        "--strict",
        OF_TARGET,
        "table=1,priority=10,in_port=1,actions=goto_table:1",
    ]);
    assert!(
        !ok && out.contains("OFPBIC_BAD_TABLE_ID"),
        "mod-flows --strict: {out}"
    );
    // ADD over table 1's entry, backwards to table 0.
    let (ok, out) = ofctl(&[
        "add-flow",
        OF_TARGET,
        "table=1,priority=10,in_port=1,actions=goto_table:0",
    ]);
    assert!(
        !ok && out.contains("OFPBIC_BAD_TABLE_ID"),
        "add-flow backwards: {out}"
    );
    // A bundle with a good flow and a looping one commits nothing.
    let bundle = dir.path("bundle.txt");
    std::fs::write(
        &bundle,
        "table=2,priority=1,actions=output:2\n\
         table=1,priority=10,in_port=1,actions=goto_table:1\n",
    )
    .unwrap();
    let (ok, out) = ofctl(&["--bundle", "add-flows", OF_TARGET, bundle.to_str().unwrap()]);
    assert!(!ok, "a bundle with a goto loop was accepted: {out}");
    // A gRPC batch likewise.
    let (code, out, err) = ctl(
        &server,
        &[
            "flows",
            "add",
            "table=2,priority=1,actions=output:2",
            "table=1,priority=10,in_port=1,actions=goto_table:1",
        ],
    );
    assert_ne!(code, 0, "a gRPC batch with a goto loop was accepted: {out}");
    assert!(
        (out.clone() + &err).contains("table"),
        "the refusal names the goto: {out}{err}"
    );

    let (_, after) = ofctl(&["dump-flows", OF_TARGET]);
    assert_eq!(
        flows_without_counters(&after),
        before,
        "flows changed:\n{after}"
    );
    moving("traffic after the refused loops");
    // Barriers are answered (add-flow waits for one) and the switch stops on SIGTERM.
    let (ok, out) = ofctl(&["add-flow", OF_TARGET, "table=3,priority=1,actions=drop"]);
    assert!(ok, "add-flow with its barrier: {out}");
    stops_within_2s(d);
}

/// A gRPC batch that fails half-way leaves every existing flow exactly as it
/// was: counters, duration, cookie, actions.
#[test]
fn a_grpc_batch_that_fails_half_way_keeps_every_flow_intact() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("cp-batch");
    let socket = dir.path("api.sock");
    let server = format!("unix:{}", socket.display());
    let pcap = traffic(&dir, "in.pcap", 200);
    let ports = port_toml("sink", "net_null0,no-rx=1", 2);
    let cfg = dir.path("ff.toml");
    std::fs::write(&cfg, config("ff-cp-batch", &socket, None, &ports)).unwrap();
    let d = Daemon::start(&cfg, &server, 120.0);
    let ok = |args: &[&str]| {
        let (code, out, err) = ctl(&server, args);
        assert_eq!(code, 0, "ferroflowctl {args:?}: {out}{err}");
        out
    };
    // Without the default NORMAL flow (a non-strict delete of table 0), then ours.
    ok(&["flows", "del", "table=0"]);
    ok(&[
        "flows",
        "add",
        "table=0,priority=100,cookie=0x77,in_port=1,actions=output:2",
    ]);
    // The source comes after the flow: its 200 frames all hit it.
    let devargs = format!("net_pcap0,rx_pcap={}", pcap.display());
    ok(&["port", "add", "src", "--devargs", &devargs, "--ofport", "1"]);
    let line = |dump: &str| {
        dump.lines()
            .find(|l| l.contains("in_port=1"))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no in_port=1 flow in {dump}"))
    };
    let before = eventually(
        Duration::from_secs(10),
        "the flow's counters to settle",
        || {
            let a = line(&ok(&["flows", "dump"]));
            std::thread::sleep(Duration::from_millis(300));
            let b = line(&ok(&["flows", "dump"]));
            (field(&a, "n_packets") == field(&b, "n_packets") && field(&b, "n_packets") > 0.0)
                .then_some(b)
        },
    );
    std::thread::sleep(Duration::from_millis(1100));

    // One good change to the same table, then one that fails when applied
    // (it overlaps the existing entry at the same priority).
    let (code, out, err) = ctl(
        &server,
        &[
            "flows",
            "add",
            "table=0,priority=50,in_port=2,actions=output:1",
            "table=0,priority=100,ip,in_port=1,check_overlap,actions=drop",
        ],
    );
    assert_ne!(code, 0, "an overlapping flow was accepted: {out}");
    assert!(
        (out + &err).to_lowercase().contains("overlap"),
        "the error names the overlap: {err}"
    );
    let dump = ok(&["flows", "dump"]);
    assert!(
        !dump.contains("in_port=2"),
        "half of a refused batch was applied:\n{dump}"
    );
    let after = line(&dump);
    assert_eq!(
        field(&after, "n_packets"),
        field(&before, "n_packets"),
        "{after}"
    );
    assert_eq!(
        field(&after, "n_bytes"),
        field(&before, "n_bytes"),
        "{after}"
    );
    assert!(
        field(&after, "duration") >= field(&before, "duration") + 1.0,
        "the flow's duration restarted: before {before}, after {after}"
    );
    assert!(after.contains("cookie=0x77"), "{after}");
    stops_within_2s(d);
}

/// GET /metrics over plain HTTP/1.1; the body.
fn scrape() -> Result<String, String> {
    let mut s = std::net::TcpStream::connect(METRICS).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(15)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut body = String::new();
    s.read_to_string(&mut body).map_err(|e| e.to_string())?;
    Ok(body)
}

/// Scrapes, port changes and virtual-network changes at once, for a minute,
/// with the whole process on one CPU next to a CPU hog: every call returns
/// within its bound and nothing deadlocks (test builds run parking_lot's
/// deadlock detector in ferroflowd, which aborts it on a deadlock).
#[test]
fn scrapes_port_changes_and_network_changes_together_never_deadlock() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("cp-lockorder");
    let socket = dir.path("api.sock");
    let server = format!("unix:{}", socket.display());
    let mut ports = port_toml("uplink", "net_null0,no-rx=1", 1);
    ports += &port_toml("vm", "net_null1,no-rx=1", 2);
    let mut text = config("ff-cp-lock", &socket, Some(METRICS), &ports);
    text += "\n[datapath]\nidle_sleep_us = 100\n";
    let cfg = dir.path("ff.toml");
    std::fs::write(&cfg, text).unwrap();
    let d = Daemon::start(&cfg, &server, 300.0);
    let pid = d.pid();
    // The whole process on CPU 0, and a hog beside it there.
    common::run(&format!("taskset -a -p -c 0 {pid} >/dev/null"));
    // The hog ends by itself after 90 s even if this test dies, and is killed by
    // PID when the test is done (a `timeout` wrapper killed with SIGKILL would
    // leave it spinning).
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let hog = KillOnDrop(
        Command::new("taskset")
            .args([
                "-c",
                "0",
                "bash",
                "-c",
                "end=$((SECONDS + 90)); while [ $SECONDS -lt $end ]; do :; done",
            ])
            .spawn()
            .expect("hog"),
    );

    let run_for = Duration::from_secs(60);
    let start = Instant::now();
    let worst = std::sync::Mutex::new(Vec::<(Duration, String)>::new());
    let note = |took: Duration, what: String| worst.lock().unwrap().push((took, what));
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut n = 0;
            while start.elapsed() < run_for {
                let t = Instant::now();
                let r = scrape();
                note(t.elapsed(), format!("scrape {n}"));
                let body = r.unwrap_or_else(|e| panic!("scrape {n}: {e}"));
                assert!(body.contains("ferroflow_state_readable 1"), "scrape {n}");
                n += 1;
            }
        });
        s.spawn(|| {
            let mut n = 0u32;
            while start.elapsed() < run_for {
                let name = format!("p{}", n % 4);
                let t = Instant::now();
                let (code, out, err) = ctl(
                    &server,
                    &[
                        "port",
                        "add",
                        &name,
                        "--devargs",
                        &format!("net_null{},no-rx=1", 10 + n % 4),
                        "--ofport",
                        &(10 + n % 4).to_string(),
                    ],
                );
                note(t.elapsed(), format!("port add {name}"));
                assert_eq!(code, 0, "port add {name}: {out}{err}");
                let t = Instant::now();
                let (code, out, err) = ctl(&server, &["port", "remove", &name]);
                note(t.elapsed(), format!("port remove {name}"));
                assert_eq!(code, 0, "port remove {name}: {out}{err}");
                n += 1;
            }
        });
        s.spawn(|| {
            let mut n = 0u32;
            while start.elapsed() < run_for {
                let id = (n % 3 + 1).to_string();
                let step = |args: &[&str]| {
                    let t = Instant::now();
                    let (code, out, err) = ctl(&server, args);
                    note(t.elapsed(), args.join(" "));
                    assert_eq!(code, 0, "ferroflowctl {args:?}: {out}{err}");
                };
                step(&[
                    "network",
                    "create",
                    &id,
                    &format!("n{id}"),
                    "--uplink",
                    "uplink",
                ]);
                step(&[
                    "instance",
                    "add",
                    &format!("i{id}"),
                    "--network",
                    &id,
                    "--port",
                    "vm",
                    "--mac",
                    &format!("52:54:00:00:00:0{id}"),
                    "--ip",
                    &format!("10.0.{id}.1"),
                ]);
                step(&["instance", "remove", &format!("i{id}")]);
                step(&["network", "delete", &id]);
                n += 1;
            }
        });
    });
    drop(hog);
    let calls = worst.into_inner().unwrap();
    let (longest, what) = calls
        .iter()
        .max_by_key(|(d, _)| *d)
        .cloned()
        .unwrap_or_default();
    eprintln!(
        "lock-order run: {} calls in {:?}, the longest {what} in {longest:?}",
        calls.len(),
        start.elapsed()
    );
    assert!(calls.len() > 30, "too few calls completed: {}", calls.len());
    // Bounded: the state is never waited for longer than LOCK_WAIT (5 s).
    assert!(
        longest < Duration::from_secs(8),
        "{what} took {longest:?}:\n{}",
        d.log_text()
    );
    stops_within_2s(d);
}

/// A packet-in flood (every packet to CONTROLLER, a controller that reads) does
/// not stop the control plane's tick: flows still expire, changes are still
/// published and answered, SIGTERM still ends it.
#[test]
fn a_packet_in_flood_keeps_the_tick_running() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("cp-flood");
    let socket = dir.path("api.sock");
    let server = format!("unix:{}", socket.display());
    let text = endless_traffic_config(&dir, "ff-cp-flood", &socket, Some(METRICS));
    let cfg = dir.path("ff.toml");
    std::fs::write(&cfg, text).unwrap();
    let d = Daemon::start(&cfg, &server, 120.0);
    // A controller-like reader of packet-ins.
    let mut monitor = Command::new("timeout")
        .args([
            "60",
            "ovs-ofctl",
            "-O",
            "OpenFlow13",
            "monitor",
            OF_TARGET,
            "65534",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("ovs-ofctl monitor");
    let (ok, out) = ofctl(&["del-flows", OF_TARGET]);
    assert!(ok, "{out}");
    let (ok, out) = ofctl(&[
        "add-flow",
        OF_TARGET,
        "table=0,priority=0,actions=CONTROLLER:64",
    ]);
    assert!(ok, "{out}");
    // Flooding now: every packet is a packet-in; the per-port limit lets a
    // bounded rate through to the queue and counts the rest.
    let limited = || -> f64 {
        scrape()
            .expect("metrics under the flood")
            .lines()
            .filter_map(|l| {
                l.strip_prefix("ferroflow_packet_ins_rate_limited_total{ofport=\"1\"} ")
            })
            .map(|v| v.trim().parse::<f64>().unwrap())
            .sum()
    };
    eventually(
        Duration::from_secs(20),
        "a packet-in flood, limited",
        || {
            (limited() > 100_000.0 && port_counter(&server, "src", "to_controller") > 100)
                .then_some(())
        },
    );
    // Expiry runs: a flow with a 1 s hard timeout goes away.
    let (ok, out) = ofctl(&[
        "add-flow",
        OF_TARGET,
        "table=5,priority=1,hard_timeout=1,actions=drop",
    ]);
    assert!(ok, "add-flow under the flood: {out}");
    eventually(
        Duration::from_secs(6),
        "the timed-out flow to expire",
        || {
            let (_, dump) = ofctl(&["dump-flows", OF_TARGET, "table=5"]);
            (!dump.contains("table=5")).then_some(())
        },
    );
    let body = scrape().expect("metrics under the flood");
    let longest: f64 = body
        .lines()
        .find_map(|l| l.strip_prefix("ferroflow_housekeeping_longest_tick_microseconds "))
        .expect("longest tick metric")
        .trim()
        .parse()
        .unwrap();
    eprintln!("packet-in flood: longest control-plane tick {longest} us");
    assert!(
        longest < 1_000_000.0,
        "a control-plane tick took {longest} us under the flood"
    );
    stops_within_2s(d);
    // SIGTERM to `timeout`, which passes it on to ovs-ofctl.
    common::run(&format!("kill -TERM {}", monitor.id()));
    let _ = monitor.wait();
}

/// The published table version, from /metrics.
fn table_version() -> u64 {
    scrape()
        .expect("metrics")
        .lines()
        .find_map(|l| l.strip_prefix("ferroflow_table_version "))
        .expect("ferroflow_table_version")
        .trim()
        .parse()
        .unwrap()
}

/// A virtual-network change whose flows do not fit (the tables' flow_limit)
/// is refused whole: no flow of it is installed, no version is published, and
/// the description stays as it was.
#[test]
fn a_profile_change_that_does_not_fit_publishes_nothing() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("cp-profile");
    let socket = dir.path("api.sock");
    let server = format!("unix:{}", socket.display());
    let mut ports = port_toml("uplink", "net_null0,no-rx=1", 1);
    ports += &port_toml("vm", "net_null1,no-rx=1", 2);
    let mut text = config("ff-cp-profile", &socket, Some(METRICS), &ports);
    text = text.replace("[grpc]", "[bridge]\nflow_limit = 6\n\n[grpc]");
    text += "\n[datapath]\nidle_sleep_us = 100\n";
    let cfg = dir.path("ff.toml");
    std::fs::write(&cfg, text).unwrap();
    let d = Daemon::start(&cfg, &server, 120.0);
    let ok = |args: &[&str]| {
        let (code, out, err) = ctl(&server, args);
        assert_eq!(code, 0, "ferroflowctl {args:?}: {out}{err}");
        out
    };
    // VLAN networks on one uplink until one no longer fits.
    let mut refused = None;
    for id in 1..=10u32 {
        let flows = flows_without_counters(&ok(&["flows", "dump"]));
        let networks = ok(&["network", "list"]);
        let version = table_version();
        let (code, out, err) = ctl(
            &server,
            &[
                "network",
                "create",
                &id.to_string(),
                &format!("n{id}"),
                "--kind",
                "vlan",
                "--vlan",
                &(100 + id).to_string(),
                "--uplink",
                "uplink",
            ],
        );
        if code != 0 {
            refused = Some((id, flows, networks, version, out + &err));
            break;
        }
    }
    let (id, flows, networks, version, err) =
        refused.expect("ten networks fit in tables of 6 flows");
    eprintln!("network {id} refused: {}", err.trim());
    assert!(err.contains("flow_limit"), "the refusal says why: {err}");
    assert_eq!(
        flows_without_counters(&ok(&["flows", "dump"])),
        flows,
        "a refused profile change left flows"
    );
    assert_eq!(
        ok(&["network", "list"]),
        networks,
        "the description changed"
    );
    assert_eq!(
        table_version(),
        version,
        "a refused profile change published a version"
    );
    stops_within_2s(d);
}
