//! The metadata service in mode nat (docs/virtual-networks.md), end to end: two namespace
//! instances behind `net_tap` ports fetch http://169.254.169.254/ from a server behind the
//! LOCAL port; conntrack translates each connection (DNAT to the server, the reply back),
//! so no packet reaches the control plane however many connections there are; the flows
//! and the conntrack table show the translations; a packet the server sends first is
//! dropped; and per-connection mode (one packet-in per connection) still works beside it.
//! Then the same with two datapath workers, an instance's port on one and LOCAL on the
//! other: every connection is answered, whichever worker owns it, its source port moved
//! by conntrack exactly when the server's reply would otherwise hash to the other worker.

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.
mod mgmt;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{
    free_local_addr, n_packets_all, run, tap_host, DatapathLock, Netns, Operator, TempDir,
    VnetSwitch,
};
use mgmt::{config, eventually, port_toml, Daemon};

const LOCAL: u32 = 0xffff_fffe;
const HOST_MAC: &str = "02:00:00:00:ff:08";
const HOST_IP: &str = "10.255.8.1";
/// Debian's python3 (it has python3-scapy, which tests/setup-host.sh installs).
const PYTHON: &str = "/usr/bin/python3";
/// (name, OpenFlow port, MAC, address): the two instances.
const INSTANCES: [(&str, u32, &str, &str); 2] = [
    ("a", 1, "02:00:00:00:08:01", "10.8.0.1"),
    ("b", 2, "02:00:00:00:08:02", "10.8.0.2"),
];
/// Connections each instance opens per mode.
const CONNECTIONS: usize = 5;

/// The metadata server, stopped by its PID when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

type Switch = VnetSwitch;

impl Switch {
    /// Packets the profile's flows sent to the control plane (handled and refused).
    fn packet_ins(&self) -> u64 {
        ["handled", "refused"]
            .iter()
            .map(|r| {
                self.metrics_value(&format!(
                    "ferroflow_vnet_packet_ins_total{{result=\"{r}\"}}"
                ))
            })
            .sum()
    }
}

fn curl(ns: &Netns) -> String {
    let out = ns.exec("curl -s -m 4 http://169.254.169.254/");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// ferroflowd with the two instances and the metadata host in namespaces, network 1
/// and the metadata server up (not yet a metadata mode). Fields drop in order: the
/// server, the namespaces, then the switch.
struct Setup {
    _server: Server,
    md: Netns,
    ns: Vec<Netns>,
    sw: Switch,
    _d: Daemon,
    _dir: TempDir,
    body: &'static str,
}

/// Starts it all with interfaces `{tag}-a`, `{tag}-b`, `{tag}-md`; with `workers` 2, two
/// datapath workers share CPU 1 (lcores `0@0,1@1,2@1`, as tests/conntrack_multiworker.rs)
/// and yield it when idle.
fn setup(tag: &str, workers: usize) -> Setup {
    let dir = TempDir::new(&format!("vnet-{tag}"));
    let socket = dir.path("api.sock");
    let server = format!("unix:{}", socket.display());
    let mut ports = String::new();
    for (i, (name, ofport, _, _)) in INSTANCES.iter().enumerate() {
        ports += &port_toml(name, &format!("net_tap{i},iface={tag}-{name}"), *ofport);
    }
    ports += &port_toml("md", &format!("net_tap9,iface={tag}-md"), LOCAL);
    let metrics = free_local_addr();
    let cfg = dir.path("ff.toml");
    let mut text = config(&format!("ff-vnet-{tag}"), &socket, Some(&metrics), &ports);
    if workers == 2 {
        text = text.replacen("lcores = \"0-1\"", "lcores = \"0@0,1@1,2@1\"", 1)
            + "\n[datapath]\nidle_sleep_us = 200\n";
        assert!(text.contains("0@0,1@1,2@1"), "{text}");
    }
    std::fs::write(&cfg, text).unwrap();
    let d = Daemon::start(&cfg, &server, 120.0);
    let sw = Switch {
        op: Operator::new(&server),
        metrics,
    };
    let ns: Vec<Netns> = INSTANCES
        .iter()
        .map(|(name, _, mac, ip)| tap_host(&format!("{tag}-{name}"), mac, &format!("{ip}/24")))
        .collect();
    let md_if = format!("{tag}-md");
    let md = tap_host(&md_if, HOST_MAC, &format!("{HOST_IP}/24"));
    // The metadata host routes the instances' addresses back through LOCAL.
    run(&format!("ip -n {} route add 10.8.0.0/24 dev {md_if}", md.0));
    for n in &ns {
        run(&format!(
            "ip -n {} route add 169.254.169.254 via 10.8.0.254",
            n.0
        ));
    }

    sw.ok(&[
        "network",
        "create",
        "1",
        "default",
        "--kind",
        "normal",
        "--gateway",
        "10.8.0.254",
    ]);
    for (name, _, mac, ip) in INSTANCES {
        sw.add_instance(name, "1", mac, ip, &[]);
    }
    let www = dir.path("www");
    std::fs::create_dir_all(&www).unwrap();
    let body = "ferroflow-metadata-through-conntrack";
    std::fs::write(www.join("index.html"), body).unwrap();
    let server = Server(
        Command::new("ip")
            .args(["netns", "exec", &md.0, "timeout", "110", PYTHON])
            .args([
                "-m",
                "http.server",
                "8775",
                "--bind",
                HOST_IP,
                "--directory",
            ])
            .arg(&www)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("http.server"),
    );
    eventually(
        Duration::from_secs(10),
        "the metadata server listening",
        || {
            let out = md.exec("ss -ltn");
            String::from_utf8_lossy(&out.stdout)
                .contains(&format!("{HOST_IP}:8775"))
                .then_some(())
        },
    );
    Setup {
        _server: server,
        md,
        ns,
        sw,
        _d: d,
        _dir: dir,
        body,
    }
}

#[test]
fn nat_mode_serves_metadata_without_packet_ins() {
    let _lock = DatapathLock::take();
    let setup = setup("ffmd", 1);
    let (sw, ns, md, body) = (&setup.sw, &setup.ns, &setup.md, setup.body);

    // ---- mode nat: every connection translated by conntrack, none sent up ----
    sw.ok(&[
        "metadata",
        "set",
        "nat",
        "--host-ip",
        HOST_IP,
        "--host-mac",
        HOST_MAC,
    ]);
    let table10 = sw.ok(&["flows", "dump", "table=10"]);
    assert!(
        !table10.contains("CONTROLLER") && !table10.contains("controller"),
        "{table10}"
    );
    let before = sw.packet_ins();
    for round in 0..CONNECTIONS {
        for (n, (name, ..)) in ns.iter().zip(INSTANCES) {
            assert_eq!(curl(n), body, "nat: connection {round} from {name}");
        }
    }
    assert_eq!(
        sw.packet_ins(),
        before,
        "{} connections sent packets to the control plane",
        2 * CONNECTIONS
    );
    // The per-instance ct flows counted them (a SYN, a request, ACKs, a FIN each).
    let table10 = sw.ok(&["flows", "dump", "table=10"]);
    let table11 = sw.ok(&["flows", "dump", "table=11"]);
    eprintln!("$ ferroflowctl flows dump table=10\n{table10}$ ferroflowctl flows dump table=11\n{table11}");
    for (_, port, mac, _) in INSTANCES {
        let fwd = n_packets_all(
            &table10,
            &[
                &format!("in_port={port},"),
                &format!("ct(commit,zone=65535,nat(dst={HOST_IP}:8775),exec(set_field:{port:#x}->ct_mark))"),
            ],
        );
        assert!(fwd >= 3 * CONNECTIONS as u64, "port {port}: {fwd} packets");
        let back = n_packets_all(
            &table11,
            &[&format!("ct_mark={port:#x}"), &format!("{mac}->eth_dst")],
        );
        assert!(
            back >= 3 * CONNECTIONS as u64,
            "port {port}: {back} replies"
        );
    }
    // The conntrack table holds the translated connections, each marked with its port.
    let dump = sw.ok(&["conntrack", "dump", "--zone", "65535"]);
    eprintln!("$ ferroflowctl conntrack dump --zone 65535\n{dump}");
    for (_, port, _, ip) in INSTANCES {
        let theirs: Vec<&str> = dump
            .lines()
            .filter(|l| l.contains(&format!("orig=(src={ip},dst=169.254.169.254,")))
            .collect();
        assert!(!theirs.is_empty(), "{ip}: no connection in\n{dump}");
        for l in theirs {
            assert!(
                l.contains(&format!("reply=(src={HOST_IP},dst={ip},sport=8775,"))
                    && l.contains(&format!(",zone=65535,mark={port},")),
                "{l}"
            );
        }
    }

    // ---- the server cannot open a connection to an instance through LOCAL ----
    let table11 = sw.ok(&["flows", "dump", "table=11"]);
    let dropped = n_packets_all(&table11, &["priority=1 ", "actions=drop"]);
    let scapy = format!(
        "{PYTHON} -c \"from scapy.all import *; \
         sendp([Ether(src='{HOST_MAC}',dst='{mac}')/IP(src='{HOST_IP}',dst='10.8.0.1')/TCP(sport=8775,dport=4000+i,flags='S') for i in range(3)],iface='ffmd-md',verbose=0)\"",
        mac = INSTANCES[0].2
    );
    let out = md.exec(&scapy);
    assert!(
        out.status.success(),
        "scapy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let now = eventually(
        Duration::from_secs(5),
        "three untracked SYNs dropped",
        || {
            let n = n_packets_all(
                &sw.ok(&["flows", "dump", "table=11"]),
                &["priority=1 ", "actions=drop"],
            );
            (n >= dropped + 3).then_some(n)
        },
    );
    assert_eq!(now, dropped + 3);

    // ---- per-connection mode beside it: one packet-in per connection ----
    sw.ok(&[
        "metadata",
        "set",
        "per-connection",
        "--host-ip",
        HOST_IP,
        "--host-mac",
        HOST_MAC,
    ]);
    let table11 = sw.ok(&["flows", "dump", "table=11"]);
    assert!(!table11.contains("ct_mark"), "nat flows left:\n{table11}");
    let before = sw.packet_ins();
    for (n, (name, ..)) in ns.iter().zip(INSTANCES) {
        assert_eq!(curl(n), body, "per-connection from {name}");
    }
    let after = sw.packet_ins();
    assert!(
        after >= before + 2,
        "per-connection mode sends each connection's first packet up: {before} -> {after}"
    );
}

/// A JSON number, or a 64-bit one printed as a string (gRPC's JSON form).
fn u(v: &serde_json::Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// A field `name=VALUE` of a `conntrack dump -s` line, the first after `after`.
fn field<'a>(line: &'a str, after: &str, name: &str) -> &'a str {
    let rest = &line[line
        .find(after)
        .unwrap_or_else(|| panic!("{after} in {line}"))..];
    let at = rest
        .find(&format!("{name}="))
        .unwrap_or_else(|| panic!("{name}= in {line}"));
    let v = &rest[at + name.len() + 1..];
    &v[..v.find([',', ')']).unwrap_or(v.len())]
}

/// Two datapath workers, instance a's port polled by one, instance b's port and LOCAL by
/// the other. The DNAT to the server changes the connection's endpoints, so the server's
/// reply would hash to the other worker for about half the connections; conntrack then
/// also translates the source port (docs/conntrack.md, "NAT over several workers") so
/// the reply comes back to the worker that committed the connection. The test picks the
/// instances' source ports (curl --local-port) from the owner hash so that every case
/// occurs, for each instance: the connection owned by either worker, and with the
/// server's reply to the original port hashing to the owner (port kept) or not (port
/// moved); every curl must get the page and the conntrack dump must show exactly that.
#[test]
fn nat_mode_with_the_instance_and_local_on_different_workers() {
    use conntrack::packet::TcpSegment;
    use conntrack::{shard_of, Packet, L4};
    let _lock = DatapathLock::take();
    let setup = setup("ffm2", 2);
    let (sw, ns, body) = (&setup.sw, &setup.ns, setup.body);

    // a's rx queues on the first worker, b's and LOCAL's on the second.
    let status = sw.json(&["status"]);
    let workers = status["workers"].as_array().expect("workers");
    assert_eq!(workers.len(), 2, "two workers: {status}");
    let lcores: Vec<u64> = workers
        .iter()
        .map(|w| u(&w["lcore"]).expect("lcore"))
        .collect();
    let home = |port: &str| if port == "a" { lcores[0] } else { lcores[1] };
    for w in workers {
        for q in w["rx_queues"].as_array().unwrap() {
            let port = q["port"].as_str().unwrap();
            let queue = u(&q["queue"]).unwrap().to_string();
            let to = home(port).to_string();
            sw.ok(&["datapath", "move-rxq", port, &queue, &to]);
        }
    }
    let status = sw.json(&["status"]);
    for w in status["workers"].as_array().unwrap() {
        for q in w["rx_queues"].as_array().unwrap() {
            assert_eq!(
                u(&w["lcore"]),
                Some(home(q["port"].as_str().unwrap())),
                "{status}"
            );
        }
    }
    sw.ok(&[
        "metadata",
        "set",
        "nat",
        "--host-ip",
        HOST_IP,
        "--host-mac",
        HOST_MAC,
    ]);

    let tcp = |src: &str, sport: u16, dst: &str, dport: u16| Packet {
        v6: false,
        src: u128::from(u32::from(src.parse::<std::net::Ipv4Addr>().unwrap())),
        dst: u128::from(u32::from(dst.parse::<std::net::Ipv4Addr>().unwrap())),
        proto: 6,
        l4: L4::Tcp(TcpSegment {
            sport,
            dport,
            ..TcpSegment::default()
        }),
    };
    // (instance, source port, owner shard, whether the port must move).
    let mut plan = Vec::new();
    for (_, _, _, ip) in INSTANCES {
        let mut wanted = [[0usize; 2]; 2];
        for sport in 42000u16.. {
            let owner = shard_of(&tcp(ip, sport, "169.254.169.254", 80), 2);
            let moves = shard_of(&tcp(HOST_IP, 8775, ip, sport), 2) != owner;
            if wanted[owner][usize::from(moves)] < 2 {
                wanted[owner][usize::from(moves)] += 1;
                plan.push((ip, sport, owner, moves));
            }
            if wanted.iter().flatten().all(|&n| n == 2) {
                break;
            }
        }
    }
    let before = sw.packet_ins();
    for &(ip, sport, ..) in &plan {
        let n = &ns[INSTANCES.iter().position(|i| i.3 == ip).unwrap()];
        let out = n.exec(&format!(
            "curl -s -m 4 --local-port {sport} http://169.254.169.254/"
        ));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            body,
            "from {ip}:{sport}"
        );
    }
    assert_eq!(sw.packet_ins(), before, "no packet-in");

    let dump = sw.ok(&["conntrack", "dump", "-s", "--zone", "65535"]);
    eprintln!("$ ferroflowctl conntrack dump -s --zone 65535\n{dump}");
    let mut lcore_of_shard: [Option<String>; 2] = [None, None];
    for &(ip, sport, owner, moves) in &plan {
        let line = dump
            .lines()
            .find(|l| {
                l.contains(&format!(
                    "orig=(src={ip},dst=169.254.169.254,sport={sport},dport=80)"
                ))
            })
            .unwrap_or_else(|| panic!("no connection from {ip}:{sport} in\n{dump}"));
        let reply_port: u16 = field(line, "reply=", "dport").parse().unwrap();
        assert!(
            line.contains(&format!("reply=(src={HOST_IP},dst={ip},sport=8775,")),
            "{line}"
        );
        assert_eq!(reply_port != sport, moves, "source port moved: {line}");
        if moves {
            assert!(reply_port >= 1024, "{line}");
        }
        let lcore = field(line, "protoinfo", "lcore").to_owned();
        let seen = lcore_of_shard[owner].get_or_insert_with(|| lcore.clone());
        assert_eq!(*seen, lcore, "shard {owner}'s connections on one worker");
    }
    assert_ne!(
        lcore_of_shard[0], lcore_of_shard[1],
        "the two owners are two workers:\n{dump}"
    );
    let stats = sw.json(&["conntrack", "stats"]);
    eprintln!("$ ferroflowctl --json conntrack stats\n{stats}");
    let n = |k: &str| u(&stats[k]).unwrap_or(0);
    assert_eq!(
        (n("nat_exhausted"), n("handoff_dropped"), n("foreign")),
        (0, 0, 0),
        "{stats}"
    );
    assert!(n("handed_off") > 0, "{stats}");
    assert_eq!(
        u(&stats["totals"]["committed"]),
        Some(plan.len() as u64),
        "{stats}"
    );
    // Every moved port counted, on its owner, and nothing else.
    let moved = plan.iter().filter(|p| p.3).count() as u64;
    assert_eq!(n("nat_source_remapped"), moved, "{stats}");
}
