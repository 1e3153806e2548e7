//! The virtual-network profile end to end (DESIGN.md section 3), managed the
//! way an operator does it (ferroflowctl over the gRPC API), with kernel hosts
//! in network namespaces behind `net_tap` ports:
//!
//! - a normal, a private and a vlan network on one switch: pings within each,
//!   nothing crosses between them (captures), VLAN tags on the uplink;
//! - the metadata service 169.254.169.254:80 answered by a server behind the
//!   LOCAL port in the seed's three modes, and refused to a non-instance port;
//! - spoofed MAC, IP and ARP from an instance dropped and counted;
//! - a vnet between two switches joined by a veth pair: PBB on the wire,
//!   instances on both sides reach each other.

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.
mod mgmt;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{
    free_local_addr, run, sh, wait_for_interface, DatapathLock, Netns, Operator, TempDir,
};
use mgmt::{config, ctl, eventually, port_toml, Daemon};

const LOCAL: u32 = 0xffff_fffe;
const HOST_MAC: &str = "02:00:00:00:ff:01";
const BODY: &str = "ferroflow-metadata-answer-42";

/// A child process (a server, a capture) stopped by its PID when dropped.
struct Bg(Child);

impl Bg {
    fn spawn(cmd: &str) -> Bg {
        Bg(Command::new("sh")
            .arg("-c")
            .arg(format!("exec {cmd}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn"))
    }

    /// SIGINT (tcpdump writes its file out), then waits.
    fn stop(mut self) {
        // Let the capture drain what the kernel still holds.
        std::thread::sleep(Duration::from_millis(400));
        let _ = sh(&format!("kill -INT {}", self.0.id()));
        let _ = self.0.wait();
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A capture on `iface` in `ns` (`filter` in tcpdump syntax) into `file`.
fn capture(ns: &Netns, iface: &str, filter: &str, file: &std::path::Path) -> Bg {
    let c = Bg::spawn(&format!(
        "ip netns exec {} tcpdump -Unni {iface} -w {} {filter}",
        ns.0,
        file.display()
    ));
    // tcpdump needs a moment before it sees packets.
    std::thread::sleep(Duration::from_millis(700));
    c
}

fn captured(file: &std::path::Path, filter: &str) -> usize {
    let out = sh(&format!(
        "tcpdump -nnr {} {filter} 2>/dev/null | wc -l",
        file.display()
    ));
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

fn ping(ns: &Netns, dst: &str) -> bool {
    common::ping_from(ns, dst, 3, 2)
}

fn curl(ns: &Netns) -> String {
    let out = ns.exec("curl -s -m 4 http://169.254.169.254/");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The operator's ferroflowctl, and the switch it runs against (stopped when dropped).
struct Switch {
    op: Operator,
    _d: Daemon,
}

impl std::ops::Deref for Switch {
    type Target = Operator;

    fn deref(&self) -> &Operator {
        &self.op
    }
}

#[test]
fn networks_metadata_service_and_anti_spoofing() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("vnet");
    let socket = dir.path("api.sock");
    let server = format!("unix:{}", socket.display());
    // name, OpenFlow port, namespace, address
    let hosts: &[(&str, u32, &str)] = &[
        ("ffv-a1", 1, "10.0.0.1/24"),
        ("ffv-a2", 2, "10.0.0.2/24"),
        ("ffv-p1", 3, "10.2.0.1/16"),
        ("ffv-p2", 4, "10.2.0.2/16"),
        ("ffv-v1", 5, "10.3.0.1/24"),
        ("ffv-x", 6, "10.0.0.50/24"),
        ("ffv-up", 10, "10.0.0.100/24"),
        ("ffv-md", LOCAL, "10.255.0.1/24"),
    ];
    let mut ports = String::new();
    for (i, (name, ofport, _)) in hosts.iter().enumerate() {
        let short = name.trim_start_matches("ffv-");
        ports += &port_toml(short, &format!("net_tap{i},iface={name}"), *ofport);
    }
    let cfg = dir.path("ff.toml");
    let metrics = free_local_addr();
    std::fs::write(&cfg, config("ff-vnet", &socket, Some(&metrics), &ports)).unwrap();
    let d = Daemon::start(&cfg, &server, 300.0);
    let sw = Switch {
        op: Operator::new(&server),
        _d: d,
    };
    let mut ns = std::collections::HashMap::new();
    for (name, _, cidr) in hosts {
        wait_for_interface(name);
        let n = Netns::new(name);
        if *name == "ffv-md" {
            run(&format!("ip link set {name} address {HOST_MAC}"));
        }
        n.adopt(name, cidr);
        ns.insert(*name, n);
    }
    let host = |n: &str| &ns[n];
    // The physical host on the uplink: untagged in the normal network; on
    // VLAN 100 (the vlan network) a small responder stands in for a VLAN
    // interface, which these machines' kernel lacks (no CONFIG_VLAN_8021Q).
    let up = host("ffv-up");
    let _vlan_host = Bg::spawn(&format!(
        "ip netns exec {} /usr/bin/python3 {}/tests/vnet/vlan_host.py ffv-up 100 10.3.0.100 02:00:00:00:0a:64 120",
        up.0,
        env!("CARGO_MANIFEST_DIR")
    ));
    // The metadata host routes instances' addresses back through LOCAL.
    // (Only the instances' networks: python's http.server looks its own name
    // up, and a route to the host's DNS server would stall it.)
    for net in ["10.0.0.0/24", "10.2.0.0/16", "10.3.0.0/24"] {
        run(&format!(
            "ip -n {} route add {net} dev ffv-md",
            host("ffv-md").0
        ));
    }

    // ---- the operator's walk-through (README) ----
    sw.ok(&[
        "network",
        "create",
        "1",
        "default",
        "--kind",
        "normal",
        "--uplink",
        "up",
        "--gateway",
        "10.0.0.254",
    ]);
    sw.ok(&[
        "network",
        "create",
        "2",
        "priv",
        "--kind",
        "private",
        "--prefix",
        "10.2.0.0/16",
        "--uplink",
        "up",
    ]);
    sw.ok(&[
        "network", "create", "3", "v100", "--kind", "vlan", "--vlan", "100", "--uplink", "up",
    ]);
    let inst = [
        ("a1", "1", "02:00:00:00:01:01", "10.0.0.1"),
        ("a2", "1", "02:00:00:00:01:02", "10.0.0.2"),
        ("p1", "2", "02:00:00:00:02:01", "10.2.0.1"),
        ("p2", "2", "02:00:00:00:02:02", "10.2.0.2"),
        ("v1", "3", "02:00:00:00:03:01", "10.3.0.1"),
    ];
    for (name, net, mac, ip) in inst {
        run(&format!(
            "ip -n ffv-{name} link set ffv-{name} address {mac}"
        ));
        sw.add_instance(name, net, mac, ip, &[]);
    }
    // Bad requests name the field and change nothing.
    let (code, _, err) = ctl(
        &sw.server,
        &[
            "network", "create", "9", "bad", "--kind", "vlan", "--uplink", "up",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("vlan"), "{err}");
    let (code, _, err) = ctl(
        &sw.server,
        &[
            "instance",
            "add",
            "zz",
            "--network",
            "1",
            "--port",
            "nope",
            "--mac",
            "02:00:00:00:09:09",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("port") && err.contains("nope"), "{err}");
    assert_eq!(sw.json(&["network", "list"]).as_array().unwrap().len(), 3);

    // The stages are named tables.
    let tables = sw.ok(&["tables"]);
    for name in [
        "classifier",
        "arp_responder",
        "arp_reply",
        "switch_normal",
        "switch_private",
        "switch_vlan",
    ] {
        assert!(tables.contains(name), "{name} missing from:\n{tables}");
    }

    // ---- within each network ----
    assert!(ping(host("ffv-a1"), "10.0.0.2"), "normal network: a1 -> a2");
    assert!(
        ping(host("ffv-a1"), "10.0.0.100"),
        "normal network: a1 -> the uplink host"
    );
    assert!(
        ping(host("ffv-p1"), "10.2.0.2"),
        "private network: p1 -> p2"
    );
    // A host behind the uplink with an address in the private network's
    // prefix gets through once verify_source has verified it (on demand); one
    // outside the prefix does not, and is remembered as refused.
    run(&format!("ip -n {} addr add 10.2.0.100/16 dev ffv-up", up.0));
    if !ping(up, "10.2.0.1") {
        let dump = sw.ok(&["flows", "dump"]);
        let interesting: Vec<&str> = dump
            .lines()
            .filter(|l| {
                l.contains("table=4") || l.contains("in_port=10") || l.contains("metadata=0x2")
            })
            .collect();
        panic!(
            "private network: the uplink host -> p1\n{}\n{}",
            interesting.join("\n"),
            sw.ok(&["instance", "list"])
        );
    }
    let vs = sw.ok(&["flows", "dump", "table=39"]);
    assert!(
        vs.contains("nw_src=10.2.0.100") && vs.contains("idle_timeout=300"),
        "verified on demand:\n{vs}"
    );
    run(&format!("ip -n {} addr add 10.9.9.9/24 dev ffv-up", up.0));
    assert!(
        !up.exec("ping -c 2 -W 1 -I 10.9.9.9 10.2.0.1")
            .status
            .success(),
        "a source outside the private prefixes got through"
    );
    let vs = sw.ok(&["flows", "dump", "table=39"]);
    assert!(
        vs.lines()
            .any(|l| l.contains("nw_src=10.9.9.9") && l.ends_with("actions=drop")),
        "refused sources are remembered:\n{vs}"
    );
    let tags = dir.path("uplink.pcap");
    let cap = capture(up, "ffv-up", "vlan 100", &tags);
    assert!(
        ping(host("ffv-v1"), "10.3.0.100"),
        "vlan network: v1 -> the uplink host on VLAN 100"
    );
    cap.stop();
    let n = captured(&tags, "vlan 100 and icmp");
    assert!(
        n >= 4,
        "ICMP tagged 100 on the uplink: {n}\n{}",
        String::from_utf8_lossy(
            &sh(&format!("tcpdump -enr {} 2>&1 | head", tags.display())).stdout
        )
    );

    // ---- ARP for a known instance is answered by the switch itself ----
    // a1 forgets a2's MAC and asks again; the request never reaches a2 (the
    // arp_responder table answers with set_field), yet a1 learns the right MAC.
    let arp_cap = dir.path("a2-arp.pcap");
    let c = capture(host("ffv-a2"), "ffv-a2", "arp", &arp_cap);
    run(&format!("ip -n {} neigh flush all", host("ffv-a1").0));
    assert!(ping(host("ffv-a1"), "10.0.0.2"), "a1 -> a2 after a new ARP");
    c.stop();
    let neigh = run(&format!("ip -n {} neigh show 10.0.0.2", host("ffv-a1").0));
    let a2_mac = run(&format!("ip -n {} -br link show ffv-a2", host("ffv-a2").0));
    let a2_mac = a2_mac
        .split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .to_owned();
    assert!(
        !a2_mac.is_empty() && neigh.contains(&a2_mac),
        "a1's neighbour entry for 10.0.0.2 ({neigh:?}) is not a2's MAC {a2_mac}"
    );
    assert_eq!(
        captured(&arp_cap, "arp[6:2] = 1 and arp[24:4] = 0x0a000002"),
        0,
        "a2 saw the ARP request for its own address: the switch did not answer it"
    );

    // ---- between networks: a flooded ARP and broadcast from a1 reach a2, never p1 or v1 ----
    let caps: Vec<(&str, std::path::PathBuf)> = ["ffv-a2", "ffv-p1", "ffv-v1"]
        .iter()
        .map(|n| (*n, dir.path(&format!("{n}.pcap"))))
        .collect();
    let running: Vec<Bg> = caps
        .iter()
        .map(|(n, f)| capture(host(n), n, "arp or icmp", f))
        .collect();
    let _ = host("ffv-a1").exec("ping -c 3 -i 0.2 -W 1 10.0.0.77");
    let _ = host("ffv-a1").exec("ping -b -c 3 -i 0.2 -W 1 10.0.0.255");
    for c in running {
        c.stop();
    }
    assert!(
        captured(&caps[0].1, "arp host 10.0.0.77") >= 1,
        "a2 sees a1's ARP for an unknown address"
    );
    assert!(captured(&caps[0].1, "icmp") >= 1, "a2 sees a1's broadcast");
    assert_eq!(
        captured(&caps[1].1, "net 10.0.0.0/24"),
        0,
        "the private network saw network 1's traffic"
    );
    assert_eq!(
        captured(&caps[2].1, "net 10.0.0.0/24"),
        0,
        "the vlan network saw network 1's traffic"
    );
    assert!(
        !ping(host("ffv-v1"), "10.2.0.1"),
        "vlan -> private must not get through"
    );

    // ---- the metadata service, three ways ----
    let www = dir.path("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), BODY).unwrap();
    let _server = Bg::spawn(&format!(
        "ip netns exec ffv-md /usr/bin/python3 -m http.server 8775 --bind 10.255.0.1 --directory {} 2>{}",
        www.display(),
        dir.path("http.log").display()
    ));
    eventually(
        Duration::from_secs(10),
        "the metadata server listening",
        || {
            let out = host("ffv-md").exec("ss -ltn");
            String::from_utf8_lossy(&out.stdout)
                .contains("10.255.0.1:8775")
                .then_some(())
        },
    );
    run("ip -n ffv-a1 route add 169.254.169.254 via 10.0.0.254");
    for mode in ["per-instance", "per-connection"] {
        sw.ok(&[
            "metadata",
            "set",
            mode,
            "--host-ip",
            "10.255.0.1",
            "--host-mac",
            HOST_MAC,
        ]);
        let got = curl(host("ffv-a1"));
        if got != BODY {
            let f = dir.path("md.pcap");
            let c = capture(host("ffv-md"), "ffv-md", "", &f);
            let f2 = dir.path("a1.pcap");
            let c2 = capture(host("ffv-a1"), "ffv-a1", "", &f2);
            let _ = curl(host("ffv-a1"));
            c.stop();
            c2.stop();
            eprintln!(
                "{}",
                String::from_utf8_lossy(
                    &sh(&format!(
                        "tcpdump -enr {} 2>&1 | head -20; tcpdump -enr {} 2>&1 | head -20",
                        f.display(),
                        f2.display()
                    ))
                    .stdout
                )
            );
            eprintln!(
                "http.log: {}",
                std::fs::read_to_string(dir.path("http.log")).unwrap_or_default()
            );
            eprintln!(
                "{}",
                sh("ip netns exec ffv-md ss -ltnp; ip netns exec ffv-md ip addr")
                    .stdout
                    .iter()
                    .map(|b| *b as char)
                    .collect::<String>()
            );
        }
        assert_eq!(got, BODY, "{mode}: curl http://169.254.169.254/ from a1");
    }
    let dump = sw.ok(&["flows", "dump", "table=10"]);
    assert!(
        dump.contains("idle_timeout=300") && dump.contains("tp_src="),
        "per-connection flows in metadata_nat:\n{dump}"
    );
    // Subnet mode: the instance talks to 169.254.169.254 on 169.254.169.252/30, no gateway.
    run("ip -n ffv-a1 route del 169.254.169.254 via 10.0.0.254");
    run("ip -n ffv-a1 addr add 169.254.169.253/30 dev ffv-a1");
    sw.ok(&[
        "metadata",
        "set",
        "subnet",
        "--host-ip",
        "10.255.0.1",
        "--host-mac",
        HOST_MAC,
    ]);
    assert_eq!(curl(host("ffv-a1")), BODY, "subnet: curl from a1");
    run("ip -n ffv-a1 addr del 169.254.169.253/30 dev ffv-a1");
    // A port that is not an instance cannot reach it, even knowing the gateway's MAC.
    sw.ok(&[
        "metadata",
        "set",
        "per-instance",
        "--host-ip",
        "10.255.0.1",
        "--host-mac",
        HOST_MAC,
    ]);
    run("ip -n ffv-a1 route add 169.254.169.254 via 10.0.0.254");
    assert_eq!(curl(host("ffv-a1")), BODY, "per-instance again");
    let x = host("ffv-x");
    run(&format!(
        "ip -n {} neigh add 10.0.0.254 lladdr 02:fe:00:00:01:01 dev ffv-x",
        x.0
    ));
    run(&format!(
        "ip -n {} route add 169.254.169.254 via 10.0.0.254",
        x.0
    ));
    assert_eq!(
        curl(x),
        "",
        "a non-instance port reached the metadata service"
    );
    let refused = sw.ok(&[
        "flows",
        "dump",
        "table=0,in_port=6,tcp,nw_dst=169.254.169.254,tp_dst=80",
    ]);
    assert!(
        refused.contains("n_packets=") && !refused.contains("n_packets=0,"),
        "the refusal is counted:\n{refused}"
    );

    // ---- spoofing from a1 ----
    let a2cap = dir.path("a2-spoof.pcap");
    let c = capture(host("ffv-a2"), "ffv-a2", "", &a2cap);
    let out = host("ffv-a1").exec(&format!(
        "/usr/bin/python3 {}/tests/vnet/spoof.py ffv-a1 02:00:00:00:01:01 10.0.0.1 10.0.0.2 5",
        env!("CARGO_MANIFEST_DIR")
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(500));
    c.stop();
    assert_eq!(
        captured(&a2cap, "ether src 02:66:66:66:66:66"),
        0,
        "spoofed MAC got through"
    );
    assert_eq!(
        captured(&a2cap, "src host 10.0.0.99"),
        0,
        "spoofed IP got through"
    );
    assert_eq!(
        captured(
            &a2cap,
            "arp and ether src 02:00:00:00:01:01 and arp[14:4] = 0x0a000002"
        ),
        0,
        "spoofed ARP got through"
    );
    let spoofed = eventually(
        Duration::from_secs(5),
        "a1's spoofed frames counted",
        || {
            let list = sw.json(&["instance", "list"]);
            let a1 = list.as_array()?.iter().find(|i| i["name"] == "a1")?.clone();
            let n = a1["spoofed_packets"].as_u64().unwrap_or(0);
            (n >= 15).then_some(n)
        },
    );
    assert!(spoofed >= 15, "{spoofed}");
    // Legitimate traffic still flows, and a2 counted nothing.
    assert!(ping(host("ffv-a1"), "10.0.0.2"));
    let list = sw.json(&["instance", "list"]);
    let a2 = list
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "a2")
        .unwrap();
    assert_eq!(a2["spoofed_packets"].as_u64().unwrap_or(0), 0, "{a2}");

    // The same numbers in Prometheus' format.
    let scrape = run(&format!("curl -sf http://{metrics}/metrics"));
    let line = scrape
        .lines()
        .find(|l| l.starts_with("ferroflow_instance_spoofed_packets_total{instance=\"a1\""))
        .unwrap_or_else(|| panic!("no spoof counter for a1:\n{scrape}"));
    let n: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 15, "{line}");
    assert!(
        scrape.contains("ferroflow_table_info{name=\"classifier\",table=\"0\"} 1"),
        "{scrape}"
    );
    assert!(
        scrape.contains("ferroflow_vnet_flows_on_demand_total "),
        "{scrape}"
    );

    // ---- removal: the instance's flows go, the port is free again ----
    sw.ok(&["instance", "remove", "p2"]);
    assert!(!ping(host("ffv-p1"), "10.2.0.2"), "p2 was removed");
    let (code, _, err) = ctl(&sw.server, &["port", "del", "a1"]);
    assert_eq!(code, 6, "a port with an instance cannot be removed: {err}");

    // ---- a restart comes back with the same description and flows ----
    let profile_flows = |sw: &Switch| {
        sw.ok(&["flows", "dump"])
            .lines()
            .filter(|l| l.contains("cookie=0xf10f01") || l.contains("cookie=0xf10f02"))
            .count()
    };
    let before = profile_flows(&sw);
    let Switch {
        op: Operator { server },
        _d: d,
    } = sw;
    d.kill("TERM");
    let sw = Switch {
        _d: Daemon::start(&cfg, &server, 300.0),
        op: Operator::new(&server),
    };
    assert_eq!(sw.json(&["network", "list"]).as_array().unwrap().len(), 3);
    assert_eq!(sw.json(&["instance", "list"]).as_array().unwrap().len(), 4);
    assert_eq!(sw.json(&["metadata", "show"])["mode"], "per-instance");
    assert_eq!(profile_flows(&sw), before, "the same flows after a restart");
}

#[test]
fn vnet_carries_instances_between_two_switches_over_pbb() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("vnet-pbb");
    let _ = sh("ip link del ffl-a 2>/dev/null");
    run("ip link add ffl-a type veth peer name ffl-b");
    run("ip link set ffl-a up && ip link set ffl-b up");
    run("sysctl -qw net.ipv6.conf.ffl-a.disable_ipv6=1 net.ipv6.conf.ffl-b.disable_ipv6=1");
    struct Link;
    impl Drop for Link {
        fn drop(&mut self) {
            let _ = sh("ip link del ffl-a");
        }
    }
    let _link = Link;
    let sides = [
        (
            "a",
            "ffl-a",
            "ffe-1",
            "10.4.0.1/24",
            "02:00:00:00:04:01",
            "02:bb:00:00:00:01",
        ),
        (
            "b",
            "ffl-b",
            "ffe-2",
            "10.4.0.2/24",
            "02:00:00:00:04:02",
            "02:bb:00:00:00:02",
        ),
    ];
    let mut switches = Vec::new();
    let mut hosts = Vec::new();
    for (i, (side, link, tap, _, _, _)) in sides.iter().enumerate() {
        let socket = dir.path(&format!("api-{side}.sock"));
        let server = format!("unix:{}", socket.display());
        let mut ports = port_toml("e", &format!("net_tap{i},iface={tap}"), 1);
        // net_pcap on the veth: af_packet would re-tag 802.1ad frames.
        ports += &port_toml(
            "link",
            &format!("net_pcap{i},rx_iface_in={link},tx_iface={link}"),
            2,
        );
        // Two switches at once: their workers sleep when idle, so neither holds a core.
        let text = config(&format!("ff-pbb-{side}"), &socket, None, &ports)
            + "\n[datapath]\nidle_sleep_us = 100\n";
        let cfg = dir.path(&format!("ff-{side}.toml"));
        std::fs::write(&cfg, text).unwrap();
        let d = Daemon::start(&cfg, &server, 300.0);
        switches.push(Switch {
            op: Operator::new(&server),
            _d: d,
        });
    }
    for (side, _, tap, cidr, mac, _) in &sides {
        wait_for_interface(tap);
        let n = Netns::new(&format!("ffpbb-{side}"));
        run(&format!("ip link set {tap} address {mac}"));
        n.adopt(tap, cidr);
        hosts.push(n);
    }
    for (k, sw) in switches.iter().enumerate() {
        let (_, _, _, cidr, mac, bmac) = sides[k];
        let (_, _, _, rcidr, rmac, rbmac) = sides[1 - k];
        sw.ok(&[
            "network",
            "create",
            "4",
            "vn",
            "--kind",
            "vnet",
            "--uplink",
            "link",
            "--backbone-mac",
            bmac,
        ]);
        let ip = cidr.split('/').next().unwrap();
        let rip = rcidr.split('/').next().unwrap();
        sw.ok(&[
            "instance",
            "add",
            "local",
            "--network",
            "4",
            "--port",
            "e",
            "--mac",
            mac,
            "--ip",
            ip,
        ]);
        sw.ok(&[
            "instance",
            "add",
            "remote",
            "--network",
            "4",
            "--host-mac",
            rbmac,
            "--mac",
            rmac,
            "--ip",
            rip,
        ]);
    }
    let wire = dir.path("wire.pcap");
    let c = Bg::spawn(&format!(
        "tcpdump -Unni ffl-a -w {} ether proto 0x88e7",
        wire.display()
    ));
    std::thread::sleep(Duration::from_millis(700));
    let ok = hosts[0]
        .exec("ping -c 5 -i 0.2 -W 2 10.4.0.2")
        .status
        .success();
    c.stop();
    assert!(
        ok,
        "instance on switch a -> instance on switch b over the vnet"
    );
    let n = captured(&wire, "ether proto 0x88e7");
    assert!(n >= 10, "PBB frames on the link: {n}");
    // The outer header: backbone MACs; the I-SID is the network id (4).
    let text = String::from_utf8_lossy(
        &sh(&format!(
            "tcpdump -enr {} 2>/dev/null | head -4",
            wire.display()
        ))
        .stdout,
    )
    .into_owned();
    assert!(
        text.contains("02:bb:00:00:00:01") && text.contains("02:bb:00:00:00:02"),
        "{text}"
    );
    let raw = sh(&format!(
        "tcpdump -xxnr {} 2>/dev/null | head -3",
        wire.display()
    ));
    let hex: String = String::from_utf8_lossy(&raw.stdout)
        .lines()
        .filter(|l| l.trim_start().starts_with("0x"))
        .filter_map(|l| l.split_once(':').map(|(_, h)| h.replace(' ', "")))
        .collect();
    // B-DA B-SA, then 88e7 and the I-TAG: flags byte, I-SID 000004.
    assert_eq!(&hex[24..28], "88e7", "{hex}");
    assert_eq!(&hex[30..36], "000004", "{hex}");
    assert!(
        hosts[1]
            .exec("ping -c 3 -i 0.2 -W 2 10.4.0.1")
            .status
            .success(),
        "b -> a"
    );
}

/// One case with a QEMU guest: a guest on a vhost-user port is an instance of
/// the normal network (declared in the config file this time), pings a
/// namespace instance behind a tap, and fetches the metadata service with
/// per-connection flows.
#[test]
fn a_qemu_guest_instance_pings_and_reaches_the_metadata_service() {
    let _lock = DatapathLock::take();
    let tools = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/guest");
    assert!(
        tools.join("run-guest.sh").exists(),
        "THE GUEST TOOLS ARE MISSING: {} (shared/ must be checked out beside the repository)",
        tools.display()
    );
    let cache = "/var/lib/ferroflow/guest";
    std::fs::create_dir_all(cache).unwrap();
    let build = Command::new(tools.join("build-guest.sh"))
        .arg(cache)
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "build-guest.sh: {}",
        String::from_utf8_lossy(&build.stderr)
    );
    let dir = TempDir::new("vnet-guest");
    let sock = dir.path("vm.sock");
    let console = dir.path("guest.log");
    // (busybox's static wget crashes in this guest; nc speaks HTTP/1.0 as well.)
    let script = "ip route add 169.254.169.254 via 10.0.0.254; \
                  n=0; until ping -c 1 -W 1 10.0.0.2 >/dev/null; do n=$((n+1)); [ $n -gt 30 ] && break; done; \
                  ping -c 3 -W 2 10.0.0.2 && \
                  printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 169.254.169.254 80";
    let mut guest = Command::new(tools.join("run-guest.sh"))
        .args([
            "-d",
            cache,
            "-N",
            sock.to_str().unwrap(),
            "-M",
            "52:54:00:00:00:11",
            "-i",
            "10.0.0.11/24",
            "-t",
            "120",
        ])
        .args(["-c", script, "-o", console.to_str().unwrap()])
        .spawn()
        .expect("run-guest.sh (apt-get install qemu-system-x86)");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !sock.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "QEMU did not create its socket"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let socket = dir.path("api.sock");
    let server = format!("unix:{}", socket.display());
    let mut ports = port_toml(
        "vm",
        &format!("net_vhost0,iface={},client=1", sock.display()),
        1,
    );
    ports += &port_toml("h", "net_tap0,iface=ffvg-h", 2);
    ports += &port_toml("md", "net_tap1,iface=ffvg-md", LOCAL);
    ports += r#"
[datapath]
idle_sleep_us = 100

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

[[instances]]
name = "nshost"
network = 1
port = "h"
mac = "02:00:00:00:01:02"
addresses = ["10.0.0.2"]

[metadata]
mode = "per-connection"
host_ip = "10.255.0.1"
host_mac = "02:00:00:00:ff:01"
"#;
    let cfg = dir.path("ff.toml");
    std::fs::write(&cfg, config("ff-vnet-guest", &socket, None, &ports)).unwrap();
    let d = Daemon::start(&cfg, &server, 150.0);
    let sw = Switch {
        op: Operator::new(&server),
        _d: d,
    };
    wait_for_interface("ffvg-h");
    wait_for_interface("ffvg-md");
    let h = Netns::new("ffvg-h");
    run("ip link set ffvg-h address 02:00:00:00:01:02");
    h.adopt("ffvg-h", "10.0.0.2/24");
    let md = Netns::new("ffvg-md");
    run(&format!("ip link set ffvg-md address {HOST_MAC}"));
    md.adopt("ffvg-md", "10.255.0.1/24");
    run("ip -n ffvg-md route add 10.0.0.0/24 dev ffvg-md");
    let www = dir.path("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), BODY).unwrap();
    let _server = Bg::spawn(&format!(
        "ip netns exec ffvg-md /usr/bin/python3 -m http.server 8775 --bind 10.255.0.1 --directory {}",
        www.display()
    ));
    let status = guest.wait().unwrap();
    let out = std::fs::read_to_string(&console).unwrap_or_default();
    assert!(
        status.success() && out.contains("GUEST-RC=0"),
        "the guest did not get through:\n{out}"
    );
    assert!(
        out.contains("3 packets received") && out.contains(BODY),
        "{out}"
    );
    let dump = sw.ok(&["flows", "dump", "table=10"]);
    assert!(
        dump.contains("idle_timeout=300") && dump.contains("in_port=1"),
        "{dump}"
    );
}

/// The spoof drops of instance `name` as `ferroflowctl instance list` shows them.
fn spoofed(sw: &Switch, name: &str) -> u64 {
    let list = sw.json(&["instance", "list"]);
    let i = list.as_array().unwrap().iter().find(|i| i["name"] == name);
    i.and_then(|i| i["spoofed_packets"].as_u64()).unwrap_or(0)
}

/// IPv6 from instances (issue 14 item 6): ping6 works, with the switch answering
/// neighbor solicitations for known addresses itself; a spoofed source, a forged
/// neighbor advertisement and a rogue router advertisement are dropped, counted
/// (gRPC, /metrics) and never reach the other instance.
#[test]
fn ipv6_anti_spoofing_and_the_nd_responder() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("vnet6");
    let socket = dir.path("api.sock");
    let server = format!("unix:{}", socket.display());
    let hosts = [
        ("ff6-a1", 1, "02:00:00:00:06:01", "fd00::1"),
        ("ff6-a2", 2, "02:00:00:00:06:02", "fd00::2"),
    ];
    let mut ports = String::new();
    for (i, (name, ofport, _, _)) in hosts.iter().enumerate() {
        ports += &port_toml(
            name.trim_start_matches("ff6-"),
            &format!("net_tap{i},iface={name}"),
            *ofport,
        );
    }
    let cfg = dir.path("ff.toml");
    let metrics = free_local_addr();
    std::fs::write(&cfg, config("ff-vnet6", &socket, Some(&metrics), &ports)).unwrap();
    let d = Daemon::start(&cfg, &server, 120.0);
    let sw = Switch {
        op: Operator::new(&server),
        _d: d,
    };
    sw.ok(&["network", "create", "1", "default", "--kind", "normal"]);
    let mut ns = Vec::new();
    for (name, _, mac, ip6) in hosts {
        wait_for_interface(name);
        let n = Netns::new(name);
        n.adopt(name, "");
        run(&format!("ip -n {name} link set {name} address {mac}"));
        // IPv6 on, after the MAC: the link-local address is derived from it.
        for (k, v) in [("accept_dad", 0), ("accept_ra", 0), ("disable_ipv6", 0)] {
            n.exec(&format!("sysctl -qw net.ipv6.conf.{name}.{k}={v}"));
        }
        run(&format!(
            "ip -n {name} -6 addr add {ip6}/64 dev {name} nodad"
        ));
        let short = name.trim_start_matches("ff6-");
        sw.ok(&[
            "instance",
            "add",
            short,
            "--network",
            "1",
            "--port",
            short,
            "--mac",
            mac,
            "--ipv6",
            ip6,
        ]);
        ns.push(n);
    }
    let (a1, a2) = (&ns[0], &ns[1]);
    let list = sw.ok(&["instance", "list"]);
    assert!(
        list.contains("fd00::1") && list.contains("fd00::2"),
        "{list}"
    );
    // The link-local address the switch expects is the kernel's.
    let ll = run(&format!(
        "ip -n {} -6 -br addr show dev ff6-a1 scope link",
        a1.0
    ));
    assert!(ll.contains("fe80::ff:fe00:601"), "{ll}");

    // ---- ping6, with the switch answering a1's solicitation for a2 ----
    let nd_cap = dir.path("a2-nd.pcap");
    let c = Bg::spawn(&format!(
        "ip netns exec {} tcpdump -Unni ff6-a2 -Q in -w {} icmp6",
        a2.0,
        nd_cap.display()
    ));
    std::thread::sleep(Duration::from_millis(700));
    let out = a1.exec("ping -6 -c 3 -i 0.2 -W 2 fd00::2");
    c.stop();
    let pcap =
        String::from_utf8_lossy(&sh(&format!("tcpdump -nnr {} 2>&1", nd_cap.display())).stdout)
            .into_owned();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains(" 0% packet loss"),
        "ping6 a1 -> a2: {}\n{pcap}\n{}",
        String::from_utf8_lossy(&out.stdout),
        sw.ok(&["flows", "dump", "table=0"])
    );
    let neigh = run(&format!("ip -n {} -6 neigh show fd00::2", a1.0));
    assert!(
        neigh.contains("02:00:00:00:06:02"),
        "a1's neighbour entry for fd00::2: {neigh:?}"
    );
    assert!(
        captured(&nd_cap, "icmp6 and ip6[40] = 128") >= 1,
        "a2 received the echo requests:\n{pcap}"
    );
    // NS (type 135) whose target (bytes 48..64 of the IPv6 packet) is fd00::2.
    assert_eq!(
        captured(
            &nd_cap,
            "icmp6 and ip6[40] = 135 and ip6[48:4] = 0xfd000000 and ip6[60:4] = 2"
        ),
        0,
        "a2 received a1's neighbor solicitation for fd00::2: the switch did not answer it\n{pcap}"
    );

    // ---- forged frames from a1 ----
    let before = spoofed(&sw, "a1");
    let cap = dir.path("a2-forged.pcap");
    let c = Bg::spawn(&format!(
        "ip netns exec {} tcpdump -Unni ff6-a2 -Q in -w {} ip6",
        a2.0,
        cap.display()
    ));
    std::thread::sleep(Duration::from_millis(700));
    const N: u64 = 5;
    let out = a1.exec(&format!(
        "/usr/bin/python3 {}/tests/vnet/ipv6_forge.py ff6-a1 02:00:00:00:06:01 fe80::ff:fe00:601 fd00::1 fd00::2 02:00:00:00:06:02 {N}",
        env!("CARGO_MANIFEST_DIR")
    ));
    assert!(
        out.status.success(),
        "ipv6_forge.py (needs python3-scapy: tests/setup-host.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The honest frames go last: let the switch forward them and tcpdump write them before
    // the capture stops (stopping at once lost them on a loaded machine).
    std::thread::sleep(Duration::from_millis(1500));
    c.stop();
    let udp = |port: u16| captured(&cap, &format!("udp port {port}"));
    assert_eq!(
        udp(4001),
        N as usize,
        "the honest UDP (the control) reached a2"
    );
    assert_eq!(udp(4000), 0, "a spoofed IPv6 source reached a2");
    assert_eq!(
        captured(&cap, "icmp6 and ip6[40] = 136"),
        0,
        "a forged neighbor advertisement reached a2"
    );
    assert_eq!(
        captured(&cap, "icmp6 and ip6[40] = 134"),
        0,
        "a rogue router advertisement reached a2"
    );
    let neigh = run(&format!("ip -n {} -6 neigh show fd00::2", a2.0));
    assert!(!neigh.contains("02:00:00:00:06:01"), "{neigh}");
    let drops = eventually(Duration::from_secs(5), "a1's forged frames counted", || {
        let n = spoofed(&sw, "a1") - before;
        (n >= 3 * N).then_some(n)
    });
    assert!(drops >= 3 * N, "spoof drops counted for a1: {drops}");
    assert_eq!(spoofed(&sw, "a2"), 0);
    let scrape = run(&format!("curl -sf http://{metrics}/metrics"));
    let line = scrape
        .lines()
        .find(|l| l.starts_with("ferroflow_instance_spoofed_packets_total") && l.contains("\"a1\""))
        .unwrap_or_else(|| panic!("no spoof counter for a1 in /metrics"));
    let n: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 3 * N, "{line}");
}
