//! The metadata service in mode nat (docs/virtual-networks.md), end to end: two namespace
//! instances behind `net_tap` ports fetch http://169.254.169.254/ from a server behind the
//! LOCAL port; conntrack translates each connection (DNAT to the server, the reply back),
//! so no packet reaches the control plane however many connections there are; the flows
//! and the conntrack table show the translations; a packet the server sends first is
//! dropped; and per-connection mode (one packet-in per connection) still works beside it.

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

#[test]
fn nat_mode_serves_metadata_without_packet_ins() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("vnet-mdnat");
    let socket = dir.path("api.sock");
    let server = format!("unix:{}", socket.display());
    let mut ports = String::new();
    for (i, (name, ofport, _, _)) in INSTANCES.iter().enumerate() {
        ports += &port_toml(name, &format!("net_tap{i},iface=ffmd-{name}"), *ofport);
    }
    ports += &port_toml("md", "net_tap9,iface=ffmd-md", LOCAL);
    let metrics = free_local_addr();
    let cfg = dir.path("ff.toml");
    std::fs::write(&cfg, config("ff-vnet-md", &socket, Some(&metrics), &ports)).unwrap();
    let _d = Daemon::start(&cfg, &server, 120.0);
    let sw = Switch {
        op: Operator::new(&server),
        metrics,
    };
    let ns: Vec<Netns> = INSTANCES
        .iter()
        .map(|(name, _, mac, ip)| tap_host(&format!("ffmd-{name}"), mac, &format!("{ip}/24")))
        .collect();
    let md = tap_host("ffmd-md", HOST_MAC, &format!("{HOST_IP}/24"));
    // The metadata host routes the instances' addresses back through LOCAL.
    run(&format!("ip -n {} route add 10.8.0.0/24 dev ffmd-md", md.0));
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
    let _server = Server(
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
