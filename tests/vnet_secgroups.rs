//! Security groups of the virtual-network profile end to end (issue 17 item 4), managed
//! with ferroflowctl over gRPC, on kernel hosts in network namespaces behind `net_tap`
//! ports, all three in network 1:
//!
//! - a (10.7.0.1) in group web: ingress tcp 8000-8010, udp 5353, icmp; egress anything;
//! - b (10.7.0.2) in no group at first (not filtered);
//! - c (10.7.0.3) in group db: ingress tcp 5432 and ICMP echo requests (type 8 code 0)
//!   from the members of web, tcp and udp 6000 from source ports 40000-40009 only;
//!   egress anything.
//!
//! Rules let connections in (TCP in a port range, UDP, ICMP echo, TCP and UDP from a
//! source port range), others are refused
//! (an ICMP timestamp request where only echo requests have a rule)
//! while replies to the instances' own connections pass, the remote-group rule follows
//! web's membership, crafted invalid packets are dropped, the per-instance counters in
//! ferroflowctl and /metrics match what was sent, and a restart keeps the groups.

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.
mod mgmt;

use std::time::Duration;

use common::{
    free_local_addr, ping_from, run, tap_host, Background, DatapathLock, Netns, Operator, TempDir,
    VnetSwitch,
};
use mgmt::{config, eventually, port_toml, Daemon};

const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conntrack/peer.py");
/// Debian's python3 (it has python3-scapy, which tests/setup-host.sh installs).
const PYTHON: &str = "/usr/bin/python3";

type Switch = VnetSwitch;

impl Switch {
    /// (allowed_new, dropped_no_rule, dropped_invalid) of a filtered instance.
    fn counters(&self, instance: &str) -> (u64, u64, u64) {
        let v = self.json(&["secgroup", "counters", instance]);
        let c = &v[0];
        let n = |k: &str| c[k].as_u64().unwrap_or(0);
        (n("allowed_new"), n("dropped_no_rule"), n("dropped_invalid"))
    }

    fn metric(&self, instance: &str, verdict: &str) -> u64 {
        self.metrics_value(&format!(
            "ferroflow_instance_firewall_packets_total{{instance=\"{instance}\",verdict=\"{verdict}\"}}"
        ))
    }
}

fn serve(ns: &Netns, specs: &str, dir: &TempDir, servers: &mut Background) {
    let out = dir.path(&format!("serve-{}.out", ns.0));
    let pid = run(&format!(
        "ip netns exec {} sh -c 'timeout 150 {PYTHON} {PEER} serve {specs} >{} 2>&1 & echo $!'",
        ns.0,
        out.display()
    ));
    servers.0.push(pid.trim().parse().expect("server pid"));
    eventually(Duration::from_secs(10), "servers ready", || {
        std::fs::read_to_string(&out)
            .ok()
            .filter(|t| t.contains("ready"))
    });
}

fn client(ns: &Netns, args: &str) -> String {
    let out = ns.exec(&format!("timeout 30 {PYTHON} {PEER} {args}"));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn ping(ns: &Netns, dst: &str) -> bool {
    ping_from(ns, dst, 2, 1)
}

const HOSTS: [(&str, &str, &str); 3] = [
    ("a", "02:00:00:00:07:01", "10.7.0.1"),
    ("b", "02:00:00:00:07:02", "10.7.0.2"),
    ("c", "02:00:00:00:07:03", "10.7.0.3"),
];

fn add_instance(sw: &Switch, name: &str, groups: &[&str]) {
    let (_, mac, ip) = HOSTS.iter().find(|h| h.0 == name).unwrap();
    sw.add_instance(name, "1", mac, ip, groups);
}

#[test]
fn security_groups_allow_by_rule_pass_replies_and_drop_the_rest() {
    let _lock = DatapathLock::take();
    let started = std::time::Instant::now();
    let dir = TempDir::new("vnet-sg");
    let socket = dir.path("api.sock");
    let server = format!("unix:{}", socket.display());
    let mut ports = String::new();
    for (i, (name, _, _)) in HOSTS.iter().enumerate() {
        ports += &port_toml(name, &format!("net_tap{i},iface=ffsg-{name}"), i as u32 + 1);
    }
    let metrics = free_local_addr();
    let cfg = dir.path("ff.toml");
    std::fs::write(&cfg, config("ff-vnet-sg", &socket, Some(&metrics), &ports)).unwrap();
    let d = Daemon::start(&cfg, &server, 150.0);
    let sw = Switch {
        op: Operator::new(&server),
        metrics,
    };
    let ns: Vec<Netns> = HOSTS
        .iter()
        .map(|(name, mac, ip)| tap_host(&format!("ffsg-{name}"), mac, &format!("{ip}/24")))
        .collect();
    let (a, b, c) = (&ns[0], &ns[1], &ns[2]);

    // ---- the operator's commands (docs/virtual-networks.md) ----
    sw.ok(&["network", "create", "1", "default", "--kind", "normal"]);
    sw.ok(&["secgroup", "add", "web"]);
    sw.ok(&["secgroup", "add", "db"]);
    for rule in [
        "web --direction ingress --protocol tcp --ports 8000-8010",
        "web --direction ingress --protocol udp --ports 5353",
        "web --direction ingress --protocol icmp",
        "web --direction egress",
        "db --direction ingress --protocol tcp --ports 5432 --remote-group web",
        "db --direction ingress --protocol icmp --icmp-type 8 --icmp-code 0 --remote-group web",
        "db --direction egress",
        "db --direction ingress --protocol tcp --ports 6000 --source-ports 40000-40009",
        "db --direction ingress --protocol udp --ports 6000 --source-ports 40000-40009",
    ] {
        let mut args = vec!["secgroup", "rule", "add"];
        args.extend(rule.split(' '));
        sw.ok(&args);
    }
    // Bad rules name the field and change nothing.
    let (code, _, err) = sw.run(&[
        "secgroup",
        "rule",
        "add",
        "web",
        "--direction",
        "ingress",
        "--protocol",
        "icmp",
        "--ports",
        "22",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("ports"), "{err}");
    add_instance(&sw, "a", &["web"]);
    add_instance(&sw, "b", &[]);
    add_instance(&sw, "c", &["db"]);
    let list = sw.ok(&["secgroup", "list"]);
    assert!(
        list.contains("ingress ipv4 tcp 8000-8010 from anywhere")
            && list.contains("ingress ipv4 tcp 5432 from group web")
            && list.contains("ingress ipv4 icmp type 8 code 0 from group web")
            && list.contains("ingress ipv4 tcp 6000 source 40000-40009 from anywhere")
            && list.contains("ingress ipv4 udp 6000 source 40000-40009 from anywhere"),
        "{list}"
    );
    // The range is three masked entries (tp_dst=0x1f40/0xfff8 covers 8000-8007).
    // Source ports 40000-40009 likewise: 0x9c40/0xfff8 (40000-40007) and 0x9c48/0xfffe.
    let flows = sw.ok(&["flows", "dump", "table=96"]);
    assert!(
        flows.contains("tp_dst=0x1f40/0xfff8")
            && flows.contains("tp_dst=0x1f48/0xfffe")
            && flows.contains("tp_src=0x9c40/0xfff8,tp_dst=6000")
            && flows.contains("tp_src=0x9c48/0xfffe,tp_dst=6000"),
        "{flows}"
    );

    let mut servers = Background::default();
    serve(a, "tcp:8005 tcp:8011 udp:5353 udp:5999", &dir, &mut servers);
    serve(b, "tcp:7070 udp:5353", &dir, &mut servers);
    serve(c, "tcp:5432 tcp:6000 udp:6000", &dir, &mut servers);

    // ---- rules let connections in; replies pass; the rest is refused ----
    let before = sw.counters("a");
    assert_eq!(client(b, "tcp 10.7.0.1 8005"), "ok", "8005 is in 8000-8010");
    assert_eq!(client(b, "udp 10.7.0.1 5353 3"), "3", "UDP 5353 has a rule");
    let after = sw.counters("a");
    // The SYN (a rule allowed it) and three datagrams (three new connections).
    assert_eq!(after.0 - before.0, 4, "allowed_new {before:?} -> {after:?}");
    assert_eq!(
        client(b, "tcp 10.7.0.1 8011"),
        "timeout",
        "8011 is outside 8000-8010: the SYN never reaches a"
    );
    let before = sw.counters("a");
    assert_eq!(
        client(b, "udp 10.7.0.1 5999 3"),
        "0",
        "UDP 5999 has no rule"
    );
    let after = sw.counters("a");
    assert_eq!(after.1 - before.1, 3, "no_rule {before:?} -> {after:?}");
    // a's own connections out (egress anything): the replies pass as +est.
    assert_eq!(client(a, "tcp 10.7.0.2 7070"), "ok");
    assert_eq!(client(a, "udp 10.7.0.2 5353 2"), "2");
    // ICMP echo: a has a rule, c has none.
    assert!(ping(b, "10.7.0.1"), "web allows icmp");
    assert!(
        !ping(b, "10.7.0.3"),
        "db lets only web's members ping, b is not one"
    );
    assert!(
        ping(c, "10.7.0.1"),
        "c's own echo goes out, and web lets it in"
    );

    // ---- remote group: db lets web's members reach 5432 and ping ----
    assert_eq!(client(a, "tcp 10.7.0.3 5432"), "ok", "a is in web");
    assert!(
        ping(a, "10.7.0.3"),
        "a is in web: its echo requests have a rule"
    );
    // ... but no other ICMP: a timestamp request (type 13) from a has no rule at c.
    let before = sw.counters("c");
    let timestamp = format!(
        "{PYTHON} -c \"from scapy.all import *; \
         sendp(Ether(src='{a}',dst='{c}')/IP(src='10.7.0.1',dst='10.7.0.3')/ICMP(type=13),iface='ffsg-a',verbose=0)\"",
        a = HOSTS[0].1,
        c = HOSTS[2].1
    );
    let out = a.exec(&timestamp);
    assert!(
        out.status.success(),
        "scapy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = eventually(Duration::from_secs(5), "c's timestamp drop", || {
        let now = sw.counters("c");
        (now.1 > before.1).then_some(now)
    });
    assert_eq!(after.1 - before.1, 1, "no_rule {before:?} -> {after:?}");
    assert_eq!(after.0, before.0, "the timestamp request was not allowed");
    assert_eq!(client(b, "tcp 10.7.0.3 5432"), "timeout", "b is not in web");

    // ---- source ports: db lets port 6000 in from source ports 40000-40009 only ----
    let before = sw.counters("c");
    assert_eq!(
        client(b, "tcp 10.7.0.3 6000 40005"),
        "ok",
        "40005 is allowed"
    );
    assert_eq!(
        client(b, "udp 10.7.0.3 6000 2 40008"),
        "2",
        "40008-40009 too"
    );
    let after = sw.counters("c");
    // The SYN and two datagrams, each a new connection a rule allowed.
    assert_eq!(after.0 - before.0, 3, "allowed_new {before:?} -> {after:?}");
    assert_eq!(
        after.1, before.1,
        "nothing refused: {before:?} -> {after:?}"
    );
    let before = after;
    assert_eq!(
        client(b, "udp 10.7.0.3 6000 2 40010"),
        "0",
        "40010 and 40011 are outside 40000-40009"
    );
    assert_eq!(
        client(b, "tcp 10.7.0.3 6000 39999"),
        "timeout",
        "39999 is outside 40000-40009: the SYN never reaches c"
    );
    let after = sw.counters("c");
    assert_eq!(after.0, before.0, "none allowed: {before:?} -> {after:?}");
    // Two datagrams and the SYN with its retransmissions.
    assert!(after.1 - before.1 >= 3, "no_rule {before:?} -> {after:?}");

    // ---- a crafted SYN-ACK without a SYN and a SYN+FIN from b are invalid at a ----
    let before = sw.counters("a");
    let scapy = format!(
        "{PYTHON} -c \"from scapy.all import *; \
         [sendp(Ether(src='{b}',dst='{a}')/IP(src='10.7.0.2',dst='10.7.0.1')/TCP(sport=4444,dport=8005,flags=f,seq=1000,ack=2000),iface='ffsg-b',verbose=0) for f in ['SA','SF']]\"",
        a = HOSTS[0].1,
        b = HOSTS[1].1
    );
    let out = b.exec(&scapy);
    assert!(
        out.status.success(),
        "scapy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = eventually(Duration::from_secs(5), "two invalid packets", || {
        let now = sw.counters("a");
        (now.2 >= before.2 + 2).then_some(now)
    });
    assert_eq!(after.2 - before.2, 2, "invalid {before:?} -> {after:?}");
    assert_eq!(after.0, before.0, "neither was allowed as new");

    // ---- b joins web: db's rule now lets it in ----
    sw.ok(&["instance", "remove", "b"]);
    add_instance(&sw, "b", &["web"]);
    let members = sw.ok(&["secgroup", "list"]);
    assert!(members.contains("a b"), "{members}");
    assert_eq!(client(b, "tcp 10.7.0.3 5432"), "ok", "b is in web now");

    // ---- the counters in ferroflowctl and /metrics agree ----
    let table = sw.ok(&["secgroup", "counters"]);
    eprintln!("$ ferroflowctl secgroup list\n{members}$ ferroflowctl secgroup counters\n{table}");
    for name in ["a", "b", "c"] {
        assert!(table.contains(&format!("\n{name} ")), "{table}");
        let (allowed, no_rule, invalid) = sw.counters(name);
        assert_eq!(sw.metric(name, "allowed_new"), allowed, "{name}");
        assert_eq!(sw.metric(name, "no_rule"), no_rule, "{name}");
        assert_eq!(sw.metric(name, "invalid"), invalid, "{name}");
    }
    let a_counts = sw.counters("a");
    assert!(
        a_counts.0 >= 5 && a_counts.1 >= 4 && a_counts.2 == 2,
        "{a_counts:?}"
    );

    // ---- a restart keeps groups, rules and memberships ----
    drop(servers);
    d.kill("TERM");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(
        text.contains("[[security_groups]]") && text.contains("security_groups = [\"web\"]"),
        "{text}"
    );
    let _d = Daemon::start(&cfg, &sw.server, 60.0);
    let groups = sw.json(&["secgroup", "list"]);
    let web = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "web")
        .expect("web after restart");
    assert_eq!(web["rules"].as_array().unwrap().len(), 4, "{groups}");
    assert_eq!(web["members"], serde_json::json!(["a", "b"]), "{groups}");
    let db = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "db")
        .expect("db after restart");
    assert!(
        db["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["protocol"] == "icmp"
                && r["icmp_type"] == 8
                && r["icmp_code"] == 0
                && r["remote_group"] == "web"),
        "{groups}"
    );
    assert!(text.contains("icmp_type = 8, icmp_code = 0"), "{text}");
    assert!(
        db["rules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["source_ports"] == "40000-40009" && r["ports"] == "6000")
            .count()
            == 2,
        "{groups}"
    );
    let flows = sw.ok(&["flows", "dump", "table=96"]);
    assert!(flows.contains("tp_dst=0x1f40/0xfff8"), "{flows}");
    eprintln!(
        "{flows}\nsaved:\n{text}\nthe test ran {:?} after taking the lock",
        started.elapsed()
    );
}
