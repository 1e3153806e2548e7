//! `ferroflowctl trace` against a running ferroflowd with namespace hosts behind tap
//! ports: the trace of a ping names the entries and the port forwarding uses, and after
//! `--send` those entries' counters went up and the packet reached the host behind the
//! output port.

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn tap_port(name: &str, dev: u32, iface: &str, ofport: u32) -> String {
    format!("\n[[ports]]\nname = \"{name}\"\ndevargs = \"net_tap{dev},iface={iface}\"\nofport = {ofport}\n")
}

struct Ctl(String);

impl Ctl {
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(ferroflowctl())
            .arg("--server")
            .arg(&self.0)
            .args(args)
            .output()
            .expect("run ferroflowctl")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "ferroflowctl {args:?}: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_str(&self.ok(&a)).expect("json")
    }

    /// Packets of the flow whose dump text contains all of `parts`.
    fn packets(&self, parts: &[&str]) -> u64 {
        let flows = self.json(&["flows", "dump"]);
        let f = flows
            .as_array()
            .unwrap()
            .iter()
            .find(|f| {
                parts
                    .iter()
                    .all(|p| f["text"].as_str().unwrap().contains(p))
            })
            .unwrap_or_else(|| panic!("no flow with {parts:?} in {flows:#}"));
        f["packets"].as_u64().unwrap_or(0)
    }
}

fn mac(ns: &Netns, ifname: &str) -> String {
    let out = ns.exec(&format!("cat /sys/class/net/{ifname}/address"));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn a_trace_of_a_ping_names_the_entries_and_port_that_forward_it() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("trace");
    let sock = dir.path("ff.sock");
    let server = format!("unix:{}", sock.display());
    let mut config = eal_section("ff-t-trace");
    config += "[datapath]\nidle_sleep_us = 200\n";
    config += &format!("\n[grpc]\nlisten = \"{server}\"\n");
    config += &tap_port("a", 0, "fftr-a", 1);
    config += &tap_port("b", 1, "fftr-b", 2);
    let ff = Ferroflowd::start("trace", &config, 120.0);
    let (a, b) = (Netns::new("fftr-a"), Netns::new("fftr-b"));
    for (ns, ifname, ip) in [
        (&a, "fftr-a", "198.18.9.1/24"),
        (&b, "fftr-b", "198.18.9.2/24"),
    ] {
        wait_for_interface(ifname);
        ns.adopt(ifname, ip);
    }
    let ctl = Ctl(server);
    ctl.ok(&[
        "flows",
        "add",
        "table=0,priority=100,in_port=1,actions=goto_table:1",
        "table=0,priority=100,in_port=2,actions=output:1",
        "table=1,priority=50,icmp,nw_dst=198.18.9.2,actions=output:2",
        "table=1,priority=60,tcp,tp_dst=23,actions=drop",
        "table=1,priority=10,actions=output:2",
    ]);
    let out = a.exec("ping -c 2 -i 0.2 -W 2 198.18.9.2");
    assert!(
        out.status.success(),
        "ping a -> b: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        ff.log_text()
    );
    let (mac_a, mac_b) = (mac(&a, "fftr-a"), mac(&b, "fftr-b"));
    let flow =
        format!("in_port=a,icmp,dl_src={mac_a},dl_dst={mac_b},nw_src=198.18.9.1,nw_dst=198.18.9.2");

    // What the trace says.
    let t = ctl.json(&["trace", &flow]);
    let tables: Vec<(u64, u64, String)> = t["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "table" && s["matched"] == true)
        .map(|s| {
            (
                s["table_id"].as_u64().unwrap_or(0),
                s["priority"].as_u64().unwrap(),
                s["match"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(tables.len(), 2, "{t:#}");
    assert_eq!((tables[0].0, tables[0].1), (0, 100), "{t:#}");
    assert!(tables[0].2.contains("in_port=1"), "{t:#}");
    assert_eq!((tables[1].0, tables[1].1), (1, 50), "{t:#}");
    assert!(tables[1].2.contains("icmp"), "{t:#}");
    let outs = t["outputs"].as_array().unwrap();
    assert_eq!(outs.len(), 1, "{t:#}");
    assert_eq!(
        (outs[0]["port"].as_u64(), outs[0]["port_name"].as_str()),
        (Some(2), Some("b"))
    );
    assert_eq!(t["drop_reason"], "", "{t:#}");
    assert_eq!(t["sent"], false);
    // The same trace for people, as ofproto/trace prints it.
    let text = ctl.ok(&["trace", &flow]);
    assert!(text.contains("Datapath actions: output:b(2)"), "{text}");
    assert!(text.contains(" 1. priority=50,icmp"), "{text}");
    // A trace has no side effect on the counters.
    let before = (
        ctl.packets(&["table=0", "priority=100", "in_port=1"]),
        ctl.packets(&["table=1", "priority=50"]),
    );
    ctl.json(&["trace", &flow]);
    assert_eq!(
        before,
        (
            ctl.packets(&["table=0", "priority=100", "in_port=1"]),
            ctl.packets(&["table=1", "priority=50"]),
        )
    );

    // --send: the named entries count it, and host b receives it.
    let pcap = dir.path("b.pcap");
    let mut tcpdump = Command::new("ip")
        .args([
            "netns",
            "exec",
            "fftr-b",
            "tcpdump",
            "-nn",
            "-U",
            "--immediate-mode",
        ])
        .args(["-i", "fftr-b", "-w"])
        .arg(&pcap)
        .arg("icmp and src host 198.18.9.1")
        .stderr(Stdio::null())
        .spawn()
        .expect("tcpdump (apt-get install tcpdump)");
    std::thread::sleep(Duration::from_millis(1500));
    let sent = ctl.json(&["trace", "--send", &flow]);
    assert_eq!(sent["sent"], true, "{sent:#}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let after = (
            ctl.packets(&["table=0", "priority=100", "in_port=1"]),
            ctl.packets(&["table=1", "priority=50"]),
        );
        if after != before || Instant::now() > deadline {
            break after;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        after,
        (before.0 + 1, before.1 + 1),
        "counters of the traced entries"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = 0;
    while Instant::now() < deadline {
        let out = b.exec(&format!("tcpdump -nn -r {} 2>/dev/null", pcap.display()));
        got = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("198.18.9.1 > 198.18.9.2: ICMP echo request"))
            .count();
        if got > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    run(&format!("kill -INT {}", tcpdump.id()));
    let _ = tcpdump.wait();
    assert_eq!(got, 1, "the sent echo request on b's tap");

    // A drop says why.
    let tcp = format!("in_port=a,tcp,dl_src={mac_a},dl_dst={mac_b},nw_dst=198.18.9.2,tp_dst=23");
    let t = ctl.json(&["trace", &tcp]);
    assert_eq!(t["outputs"].as_array().map(Vec::len), Some(0), "{t:#}");
    assert!(
        t["drop_reason"]
            .as_str()
            .unwrap()
            .contains("no output action"),
        "{t:#}"
    );
    // Bad input gets a clear error and usage status.
    let o = ctl.run(&["trace", "in_port=a,tcp,nw_dst=198.18.9.0/24"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("exact values"), "{err}");
    ff.stop();
}

/// rx, tx and both packets and bytes of a port, from `ferroflowctl ports`.
fn port_counters(ctl: &Ctl, name: &str) -> (u64, u64, u64, u64) {
    let ports = ctl.json(&["ports"]);
    let p = ports
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no port {name} in {ports:#}"));
    let c = &p["counters"];
    let n = |k: &str| c[k].as_u64().unwrap_or(0);
    (
        n("rx_packets"),
        n("rx_bytes"),
        n("tx_packets"),
        n("tx_bytes"),
    )
}

/// (lines, total captured bytes) of a pcap file as tcpdump reads it.
fn tcpdump_read(pcap: &std::path::Path) -> Vec<String> {
    let out = sh(&format!("tcpdump -nn -e -r {} 2>&1", pcap.display()));
    assert!(
        out.status.success(),
        "tcpdump -r: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .map(str::to_owned)
        .collect()
}

/// The frame length tcpdump -e prints ("length 98:").
fn frame_len(line: &str) -> u64 {
    line.split("length ")
        .nth(1)
        .and_then(|s| s.split(':').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no length in {line}"))
}

/// Waits for a ferroflowctl child to exit by itself, bounded.
fn wait_child(c: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = c.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            let _ = c.wait();
            panic!("ferroflowctl capture did not stop by itself");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_live_capture_of_a_ping_is_what_the_port_counted_and_ends_with_its_client() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("capture");
    let sock = dir.path("ff.sock");
    let server = format!("unix:{}", sock.display());
    let mut config = eal_section("ff-t-capture");
    config += "[datapath]\nidle_sleep_us = 200\n";
    config += &format!("\n[grpc]\nlisten = \"{server}\"\n");
    config += &tap_port("a", 0, "ffcap-a", 1);
    config += &tap_port("b", 1, "ffcap-b", 2);
    let ff = Ferroflowd::start("capture", &config, 120.0);
    let (a, b) = (Netns::new("ffcap-a"), Netns::new("ffcap-b"));
    for (ns, ifname, ip) in [
        (&a, "ffcap-a", "198.18.10.1/24"),
        (&b, "ffcap-b", "198.18.10.2/24"),
    ] {
        wait_for_interface(ifname);
        ns.adopt(ifname, ip);
    }
    let ctl = Ctl(server.clone());
    ctl.ok(&[
        "flows",
        "add",
        "table=0,priority=100,in_port=1,actions=output:2",
        "table=0,priority=100,in_port=2,actions=output:1",
    ]);
    // ARP resolved first, so that the capture below holds only the pings.
    let out = a.exec("ping -c 1 -W 2 198.18.10.2");
    assert!(out.status.success(), "{}", ff.log_text());
    let capture = |args: &[&str]| {
        Command::new(ferroflowctl())
            .arg("--server")
            .arg(&server)
            .arg("capture")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ferroflowctl capture")
    };
    let wait_status = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = ctl.json(&["capture-status"]);
            let ports: Vec<&str> = s["ports"]
                .as_array()
                .map(|p| p.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            if ports.join(",") == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "capture status {s} never became {want:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };

    // Both directions on a: three echo requests in, three replies out, and the bytes
    // the port counted.
    let both = dir.path("both.pcap");
    let before = port_counters(&ctl, "a");
    let mut c = capture(&["a", "--both", "--count", "6", "-w", both.to_str().unwrap()]);
    wait_status("a");
    let out = a.exec("ping -c 3 -i 0.2 -W 2 198.18.10.2");
    assert!(out.status.success(), "{}", ff.log_text());
    assert!(wait_child(&mut c, Duration::from_secs(10)).success());
    wait_status("");
    std::thread::sleep(Duration::from_millis(600));
    let after = port_counters(&ctl, "a");
    let lines = tcpdump_read(&both);
    assert_eq!(lines.len(), 6, "{lines:#?}");
    let requests = lines
        .iter()
        .filter(|l| l.contains("ICMP echo request"))
        .count();
    let replies = lines
        .iter()
        .filter(|l| l.contains("ICMP echo reply"))
        .count();
    assert_eq!((requests, replies), (3, 3), "{lines:#?}");
    assert_eq!(
        (after.0 - before.0, after.2 - before.2),
        (3, 3),
        "port a's counters over the ping"
    );
    let bytes: u64 = lines.iter().map(|l| frame_len(l)).sum();
    assert_eq!(
        bytes,
        (after.1 - before.1) + (after.3 - before.3),
        "{lines:#?}"
    );

    // tx only on b, with a filter: the echo requests b sends, not the replies it takes in.
    let tx = dir.path("tx.pcap");
    let mut c = capture(&[
        "b",
        "--tx",
        "--filter",
        "icmp,icmp_type=8",
        "--count",
        "2",
        "-w",
        tx.to_str().unwrap(),
    ]);
    wait_status("b");
    let out = a.exec("ping -c 2 -i 0.2 -W 2 198.18.10.2");
    assert!(out.status.success());
    assert!(wait_child(&mut c, Duration::from_secs(10)).success());
    let lines = tcpdump_read(&tx);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("198.18.10.1 > 198.18.10.2: ICMP echo request")),
        "{lines:#?}"
    );

    // rx only (the default): a's requests, not the replies the switch sends it.
    let rx = dir.path("rx.pcap");
    let mut c = capture(&["a", "--count", "2", "-w", rx.to_str().unwrap()]);
    wait_status("a");
    let out = a.exec("ping -c 2 -i 0.2 -W 2 198.18.10.2");
    assert!(out.status.success());
    assert!(wait_child(&mut c, Duration::from_secs(10)).success());
    let lines = tcpdump_read(&rx);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines.iter().all(|l| l.contains("ICMP echo request")),
        "{lines:#?}"
    );

    // A client killed mid-capture: the switch ends the capture (the flag off) by itself.
    let mut c = capture(&["a", "-w", dir.path("killed.pcap").to_str().unwrap()]);
    wait_status("a");
    run(&format!("kill -KILL {}", c.id()));
    let _ = c.wait();
    wait_status("");
    // One capture at a time; a new one starts once the old one ended.
    let mut c = capture(&[
        "a",
        "--count",
        "1",
        "-w",
        dir.path("again.pcap").to_str().unwrap(),
    ]);
    wait_status("a");
    let o = ctl.run(&["capture", "b", "--count", "1"]);
    assert_eq!(
        o.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = a.exec("ping -c 1 -W 2 198.18.10.2");
    assert!(out.status.success());
    assert!(wait_child(&mut c, Duration::from_secs(10)).success());
    ff.stop();
}
