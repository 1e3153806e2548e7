//! Connection tracking in the switch: `ct()` and the `ct_*` matches written by the real
//! `ovs-ofctl -O OpenFlow13` into ferroflowd, as a stateful firewall in the style of
//! OpenStack's OVS firewall driver, proven on traffic between namespace hosts behind
//! `net_tap` ports (docs/conntrack.md). Host a (198.18.6.1, port 1) is the protected
//! instance: new connections to it are allowed only by a rule (TCP 8080, UDP 5353), its
//! own connections out are allowed, replies and related ICMP always pass, invalid packets
//! are dropped.

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.

use std::process::Command;

use common::*;

const TARGET: &str = "tcp:127.0.0.1:16636";
/// ferroflowd and the two hosts behind its tap ports (`hosts` derefs: `bench.a`,
/// `bench.serve(..)`).
struct Bench {
    ff: Ferroflowd,
    hosts: TwoHosts,
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

/// ferroflowd with two tap ports, their kernel sides in namespaces a (198.18.6.1) and b
/// (198.18.6.2), `extra` appended to its config, no flows.
fn bench(tag: &str, extra: &str) -> Bench {
    let mut config = eal_section(&format!("ff-ct-{tag}"));
    config += "[openflow]\nlisten = [\"ptcp:127.0.0.1:16636\"]\n[datapath]\nidle_sleep_us = 200\n";
    config += extra;
    for (i, name) in ["a", "b"].iter().enumerate() {
        config += &format!(
            "\n[[ports]]\nname = \"{name}\"\ndevargs = \"net_tap{i},iface=ffct-{name}\"\nofport = {}\n",
            i + 1
        );
    }
    let ff = Ferroflowd::start(tag, &config, 100.0);
    let hosts = TwoHosts::new("ffct", "198.18.6");
    ofctl_ok(&["del-flows", TARGET]);
    Bench { ff, hosts }
}

/// The firewall: table 0 sends IP through the tracker (zone 1) to table 1; table 1 drops
/// invalid, passes established and related, commits new connections a rule allows; table
/// 2 forwards between the two ports.
fn firewall_flows() -> Vec<String> {
    [
        "table=0,priority=200,arp,in_port=1,actions=output:2",
        "table=0,priority=200,arp,in_port=2,actions=output:1",
        "table=0,priority=100,ip,actions=ct(table=1,zone=1)",
        "table=1,priority=300,ct_state=+inv+trk,ip,actions=drop",
        "table=1,priority=200,ct_state=-new+est-inv+trk,ip,actions=resubmit(,2)",
        "table=1,priority=200,ct_state=-new+rel-inv+trk,ip,actions=resubmit(,2)",
        // Egress of instance a: everything.
        "table=1,priority=100,ct_state=+new-est-inv+trk,ip,in_port=1,actions=ct(commit,zone=1,exec(set_field:0x1->ct_mark)),resubmit(,2)",
        // Ingress rules of instance a: TCP 8080 (written as the driver's masked range) and UDP 5353.
        "table=1,priority=100,ct_state=+new-est-inv+trk,tcp,in_port=2,nw_dst=198.18.6.1,tp_dst=0x1f90/0xffff,actions=ct(commit,zone=1),resubmit(,2)",
        "table=1,priority=100,ct_state=+new-est-inv+trk,udp,in_port=2,nw_dst=198.18.6.1,tp_dst=5353,actions=ct(commit,zone=1),resubmit(,2)",
        "table=1,priority=0,actions=drop",
        "table=2,priority=10,in_port=1,actions=output:2",
        "table=2,priority=10,in_port=2,actions=output:1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn install(flows: &[String]) {
    let dir = TempDir::new("ct-flows");
    let path = dir.path("flows.txt");
    std::fs::write(&path, flows.join("\n") + "\n").unwrap();
    ofctl_ok(&["add-flows", TARGET, path.to_str().unwrap()]);
}

#[test]
fn stateful_firewall_allows_rules_and_replies_refuses_the_rest() {
    let _lock = DatapathLock::take();
    let mut bench = bench("fw", "");
    install(&firewall_flows());
    bench.serve('a', "tcp:8080 tcp:9090 udp:5353");
    bench.serve('b', "tcp:7070 udp:5353");

    // Allowed by a rule.
    assert_eq!(
        bench.client('b', "tcp 198.18.6.1 8080"),
        "ok",
        "TCP 8080 has a rule"
    );
    assert_eq!(
        bench.client('b', "udp 198.18.6.1 5353"),
        "1",
        "UDP 5353 has a rule"
    );
    // No rule: refused although a listens (the SYN never reaches it).
    assert_eq!(
        bench.client('b', "tcp 198.18.6.1 9090"),
        "timeout",
        "TCP 9090 has no rule"
    );
    // a's own connections out work: the replies pass as +est.
    assert_eq!(bench.client('a', "tcp 198.18.6.2 7070"), "ok");
    assert_eq!(bench.client('a', "udp 198.18.6.2 5353 3"), "3");
    // The port-unreachable for a's tracked UDP flow arrives as +rel.
    assert_eq!(bench.client('a', "udp 198.18.6.2 5999"), "refused");

    // Crafted invalid packets from b (a SYN-ACK without a SYN, a SYN+FIN) are dropped.
    let dump = ofctl_ok(&["dump-flows", TARGET]);
    let inv_before = n_packets(&dump, "ct_state=+inv+trk");
    let rel = n_packets(&dump, "ct_state=-new+rel-inv+trk");
    assert!(
        rel >= 1,
        "the ICMP error went through the +rel flow:\n{dump}"
    );
    let scapy = format!(
        "{CT_PYTHON} -c \"from scapy.all import *; \
         [sendp(Ether(src='{b}',dst='{a}')/IP(src='198.18.6.2',dst='198.18.6.1')/TCP(sport=4444,dport=8080,flags=f,seq=1000,ack=2000),iface='ffct-b',verbose=0) for f in ['SA','SF']]\"",
        a = bench.a_mac,
        b = bench.b_mac
    );
    let out = bench.b.exec(&scapy);
    assert!(
        out.status.success(),
        "scapy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let dump = ofctl_ok(&["dump-flows", TARGET]);
        let inv = n_packets(&dump, "ct_state=+inv+trk");
        if inv >= inv_before + 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the invalid packets were not dropped as +inv ({inv_before} -> {inv}):\n{dump}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Connections a started carry the mark their commit set; the rule's do not.
    let dump = ofctl_ok(&["dump-flows", TARGET]);
    assert!(
        dump.contains("ct(commit,zone=1,exec(set_field:0x1->ct_mark))"),
        "dump shows the ct action as written:\n{dump}"
    );
    let _ = &bench.ff;
}

/// A table of 4 connections: a's fifth and later new connections cannot be committed
/// (counted as table-full, the packet is +inv), so their replies find no connection and
/// are refused as new inbound traffic; the four committed ones get their replies.
#[test]
fn a_full_table_refuses_new_connections_and_keeps_existing_ones() {
    let _lock = DatapathLock::take();
    let mut bench = bench("full", "[conntrack]\nmax_connections = 4\n");
    install(&firewall_flows());
    bench.serve('b', "udp:5353");
    assert_eq!(bench.client('a', "udp 198.18.6.2 5353 8"), "4");
    // The committed connections keep working.
    let dump = ofctl_ok(&["dump-flows", TARGET]);
    assert!(n_packets(&dump, "ct_state=-new+est-inv+trk") >= 4, "{dump}");
}

/// Every ct form through add-flow and dump-flows prints exactly as Open vSwitch prints it.
#[test]
fn dump_flows_round_trip_of_every_ct_form() {
    let _lock = DatapathLock::take();
    let _bench = bench("dump", "");
    let flows = [
        "table=0,priority=5,ip,actions=ct(commit,table=1)",
        "table=0,priority=6,ip,actions=ct(table=2,zone=NXM_NX_REG6[0..15],nat)",
        "table=0,priority=7,ip,actions=ct(commit,zone=5,exec(set_field:0x1->ct_mark,set_field:0x2/0xff->ct_label),nat(src=10.0.0.1-10.0.0.5:1000-2000))",
        "table=0,priority=8,ip,actions=ct(commit,nat(dst=10.0.0.1:80))",
        "table=0,priority=9,ip,actions=ct(commit,force,zone=1,table=3,exec(set_field:0x5/0xff->ct_mark)),output:1",
        "table=0,priority=10,ip,actions=ct(commit,exec(load:0x1->NXM_NX_CT_MARK[]))",
        "table=1,priority=11,ct_state=+trk+new-est,ct_zone=5,ct_mark=0x1/0xff,ct_label=0x5,ip,ct_nw_src=10.0.0.1,ct_nw_dst=10.0.0.0/8,actions=ct_clear",
        "table=1,priority=12,reg0=1,ct_state=-trk+est+rel+rpl+inv+snat+dnat,tcp,ct_nw_proto=6,ct_tp_src=80,ct_tp_dst=0x1000/0xf000,actions=drop",
        "table=1,priority=13,ct_state=+trk,ct_mark=0x7,ct_label=0x1/0xf,ip,actions=resubmit(,2)",
    ];
    for f in flows {
        ofctl_ok(&["add-flow", TARGET, f]);
    }
    let dump = ofctl_ok(&["dump-flows", TARGET]);
    let mut wrong = Vec::new();
    for f in flows {
        let theirs = ofctl_ok(&["parse-flow", f]);
        let line = theirs.lines().last().unwrap_or_default();
        let body = line.split_once("ADD ").map(|x| x.1).unwrap_or(line).trim();
        let want: String = body
            .split(' ')
            .filter(|w| !w.starts_with("table:"))
            .collect::<Vec<_>>()
            .join(" ");
        let prio = f.split(',').nth(1).unwrap();
        let got = dump
            .lines()
            .find(|l| l.contains(&format!(" {prio},")) || l.contains(&format!(" {prio} ")))
            .map(|l| {
                let rest = l.split("n_bytes=").nth(1).unwrap_or(l);
                rest.split_once(", ")
                    .map(|x| x.1)
                    .unwrap_or(rest)
                    .trim()
                    .to_owned()
            })
            .unwrap_or_default();
        let want = format!("{prio},{}", want.trim_start_matches(&format!("{prio},")));
        if got != want {
            wrong.push(format!("{f}\n  dump:      {got}\n  ovs-ofctl: {want}"));
        }
    }
    assert!(wrong.is_empty(), "{}\nfull dump:\n{dump}", wrong.join("\n"));
}

/// DNAT in the datapath: b connects to 198.18.6.100:8080, which `ct(commit,nat(dst=...))`
/// translates to a (198.18.6.1); a's replies are translated back by `ct(nat)`, so b's
/// socket sees its connection answered by 198.18.6.100. The same for UDP.
#[test]
fn dnat_rewrites_both_directions() {
    let _lock = DatapathLock::take();
    let mut bench = bench("nat", "");
    let flows: Vec<String> = [
        "table=0,priority=200,arp,in_port=1,actions=output:2",
        "table=0,priority=200,arp,in_port=2,actions=output:1",
        "table=0,priority=100,ip,in_port=2,nw_dst=198.18.6.100,actions=ct(commit,table=1,zone=2,nat(dst=198.18.6.1))",
        "table=0,priority=100,ip,in_port=1,actions=ct(table=1,zone=2,nat)",
        "table=1,priority=100,ct_state=+trk+dnat,ip,in_port=2,nw_dst=198.18.6.1,actions=output:1",
        "table=1,priority=100,ct_state=+trk+est+rpl,ip,in_port=1,nw_src=198.18.6.100,actions=output:2",
        "table=1,priority=0,actions=drop",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    install(&flows);
    let neigh = bench.b.exec(&format!(
        "ip neigh replace 198.18.6.100 lladdr {} dev ffct-b",
        bench.a_mac
    ));
    assert!(neigh.status.success());
    bench.serve('a', "tcp:8080 udp:5353");
    assert_eq!(bench.client('b', "tcp 198.18.6.100 8080"), "ok");
    assert_eq!(bench.client('b', "udp 198.18.6.100 5353 2"), "2");
    // Nothing addressed to a directly passes: only translated traffic has a flow.
    assert_eq!(bench.client('b', "tcp 198.18.6.1 8080"), "timeout");
}

/// `ferroflowctl conntrack` against `bench`'s API socket: stdout, or a failed test.
fn ctl(socket: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("timeout")
        .arg("30")
        .arg(ferroflowctl())
        .arg("--server")
        .arg(format!("unix:{}", socket.display()))
        .arg("conntrack")
        .args(args)
        .output()
        .expect("ferroflowctl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "ferroflowctl conntrack {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The value of the series whose line starts with `series ` in a /metrics text.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Operations: a TCP connection b made to a's rule port shows in `ferroflowctl conntrack
/// dump` with both tuples, its zone and state (and only under its zone), `stats` and
/// /metrics count it, `flush` empties the table, and the connection's next packet is
/// tracked as new again (the ingress rule commits it anew, and its data is echoed).
#[test]
fn conntrack_dump_stats_metrics_and_flush() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("ct-ops");
    let socket = dir.path("api.sock");
    let mut bench = bench(
        "ops",
        &format!(
            "[grpc]\nlisten = \"unix:{}\"\n[metrics]\nlisten = \"127.0.0.1:19636\"\n",
            socket.display()
        ),
    );
    install(&firewall_flows());
    bench.serve('a', "hold:8080");
    let trigger = dir.path("send");
    let out = dir.path("client.out");
    let spawned = bench.b.exec(&format!(
        "sh -c 'timeout 90 {CT_PYTHON} {CT_PEER} hold 198.18.6.1 8080 {} >{} 2>&1 & echo $!'",
        trigger.display(),
        out.display()
    ));
    let pid: u32 = String::from_utf8_lossy(&spawned.stdout)
        .trim()
        .parse()
        .expect("client pid");
    bench.servers.push(pid);
    let read_out = || std::fs::read_to_string(&out).unwrap_or_default();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !read_out().contains("ok") {
        assert!(
            std::time::Instant::now() < deadline,
            "the client never connected: {}",
            read_out()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    // The dump, as ovs-appctl dpctl/dump-conntrack prints it.
    let dump = ctl(&socket, &["dump"]);
    let line = dump
        .lines()
        .find(|l| l.starts_with("tcp,orig=(src=198.18.6.2,dst=198.18.6.1,"))
        .unwrap_or_else(|| panic!("no connection from b to a in the dump:\n{dump}"));
    let sport = line
        .split("sport=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap();
    assert_eq!(
        line,
        format!(
            "tcp,orig=(src=198.18.6.2,dst=198.18.6.1,sport={sport},dport=8080),\
             reply=(src=198.18.6.1,dst=198.18.6.2,sport=8080,dport={sport}),\
             zone=1,protoinfo=(state=ESTABLISHED)"
        ),
        "{dump}"
    );
    // --zone filters.
    assert!(ctl(&socket, &["dump", "--zone", "1"]).contains(line));
    let other = ctl(&socket, &["dump", "--zone", "2"]);
    assert!(other.trim().is_empty(), "zone 2 has nothing:\n{other}");
    let json: serde_json::Value =
        serde_json::from_str(&ctl(&socket, &["--json", "dump", "--zone", "1"])).unwrap();
    assert_eq!(json["total"], 1, "{json}");
    assert_eq!(json["entries"][0]["state"], "ESTABLISHED", "{json}");

    // Stats count it, per zone too.
    let stats: serde_json::Value =
        serde_json::from_str(&ctl(&socket, &["--json", "stats"])).unwrap();
    assert_eq!(stats["enabled"], true, "{stats}");
    assert_eq!(stats["totals"]["entries"], 1, "{stats}");
    assert_eq!(stats["totals"]["committed"], 1, "{stats}");
    let z1: serde_json::Value =
        serde_json::from_str(&ctl(&socket, &["--json", "stats", "--zone", "1"])).unwrap();
    assert_eq!(z1["totals"]["entries"], 1, "{z1}");
    let z2: serde_json::Value =
        serde_json::from_str(&ctl(&socket, &["--json", "stats", "--zone", "2"])).unwrap();
    assert_eq!(z2["totals"]["entries"], 0, "{z2}");
    let text = ctl(&socket, &["stats"]);
    assert!(text.contains("committed 1"), "{text}");

    // /metrics has the series (stats only).
    let scrape = run("curl -s --max-time 10 http://127.0.0.1:19636/metrics");
    assert_eq!(metric(&scrape, "ferroflow_conntrack_readable"), Some(1.0));
    assert_eq!(
        metric(&scrape, "ferroflow_conntrack_entries{zone=\"1\"}"),
        Some(1.0),
        "{scrape}"
    );
    assert_eq!(
        metric(&scrape, "ferroflow_conntrack_committed_total{zone=\"1\"}"),
        Some(1.0)
    );
    assert!(metric(&scrape, "ferroflow_conntrack_invalid_total{zone=\"1\"}").is_some());
    assert_eq!(
        metric(&scrape, "ferroflow_conntrack_table_full_total{zone=\"1\"}"),
        Some(0.0)
    );
    assert!(
        scrape.contains("ferroflow_conntrack_worker_capacity{lcore="),
        "{scrape}"
    );

    // Flush: another zone's flush removes nothing, zone 1's removes the connection.
    assert_eq!(
        ctl(&socket, &["flush", "--zone", "2"]).trim(),
        "flushed 0 connections in zone 2"
    );
    assert_eq!(
        ctl(&socket, &["flush", "--zone", "1"]).trim(),
        "flushed 1 connections in zone 1"
    );
    let empty = ctl(&socket, &["dump"]);
    assert!(empty.trim().is_empty(), "nothing left:\n{empty}");

    // The connection's next packet is new again: the ingress rule commits it anew.
    let rule = "tcp,in_port=2,nw_dst=198.18.6.1";
    let before = n_packets(&ofctl_ok(&["dump-flows", TARGET]), rule);
    std::fs::write(&trigger, "").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !read_out().contains("echo") && !read_out().contains("timeout") {
        assert!(std::time::Instant::now() < deadline, "{}", read_out());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(read_out().contains("echo"), "{}", read_out());
    let after = n_packets(&ofctl_ok(&["dump-flows", TARGET]), rule);
    assert!(
        after > before,
        "the packet after the flush went through the +new rule ({before} -> {after})"
    );
    let again = ctl(&socket, &["dump", "--zone", "1"]);
    assert!(
        again.contains(&format!("sport={sport},dport=8080)")),
        "the connection is tracked again:\n{again}"
    );
}
