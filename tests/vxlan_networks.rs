//! Tunnel ports made at runtime and the virtual-network profile's `vxlan` kind, managed
//! as an operator does it (ferroflowctl over gRPC):
//!
//! - `port add --vxlan` towards a Linux `vxlan` device in a namespace: ping across once
//!   added, nothing after `port del`, the port back after a restart (the config store);
//!   a bad request refused naming its field;
//! - two ferroflowd whose `net_tap` uplinks meet on a bridge in an underlay namespace, one
//!   vxlan network each side with instances in namespaces: pings between the hosts, a
//!   broadcast (ARP for an unknown address) on the underlay exactly once, and a second
//!   network with the same instance addresses that sees nothing of the first; the peer
//!   tunnel port listed by `ferroflowctl ports` with its counters;
//! - a network's listed peer host (`--peer`) reached by broadcast and unknown unicast
//!   before any of its instances is known (a Linux `vxlan` device that is no instance).
//!
//! About 50 s once built (the three tests).

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.
mod mgmt;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{read_pcap, run, sh, wait_for_interface, DatapathLock, Netns, TempDir};
use mgmt::{config, ctl, eventually, port_toml, Daemon};
use packet::tunnel::{self, TunnelKind};
use serde_json::Value;

/// A capture stopped by its PID when dropped.
struct Capture(Child);

impl Capture {
    /// tcpdump on `iface` in `ns` into `file`.
    fn start(ns: &str, iface: &str, filter: &str, file: &std::path::Path) -> Capture {
        let c = Command::new("ip")
            .args(["netns", "exec", ns, "timeout", "120", "tcpdump", "-Unni"])
            .args([iface, "--immediate-mode", "-w", file.to_str().unwrap()])
            .args(filter.split_whitespace())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tcpdump");
        std::thread::sleep(Duration::from_millis(800));
        Capture(c)
    }

    /// Lets the capture drain, then SIGINT (tcpdump writes its file out).
    fn stop(mut self) {
        std::thread::sleep(Duration::from_millis(500));
        let _ = sh(&format!("kill -INT {}", self.0.id()));
        let _ = self.0.wait();
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ok(server: &str, args: &[&str]) -> String {
    let (code, out, err) = ctl(server, args);
    assert_eq!(code, 0, "ferroflowctl {args:?}: {out}{err}");
    out
}

fn json(server: &str, args: &[&str]) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    serde_json::from_str(&ok(server, &a)).expect("json")
}

/// Pings succeed (some of `n` answered) or not at all.
fn pings(ns: &Netns, dst: &str, n: u32) -> bool {
    ns.exec(&format!("ping -c {n} -i 0.2 -W 1 {dst}"))
        .status
        .success()
}

/// Waits until tunnel `name` (or every tunnel, for "") has its next hop's MAC.
fn wait_resolved(server: &str, name: &str) {
    eventually(
        Duration::from_secs(15),
        "the tunnel's next hop resolved",
        || {
            let t = json(server, &["tunnel", "list"]);
            let list = t["tunnels"].as_array().cloned().unwrap_or_default();
            let ready = !list.is_empty()
                && list
                    .iter()
                    .filter(|t| name.is_empty() || t["name"] == name)
                    .all(|t| !t["next_hop_mac"].as_str().unwrap_or("").is_empty());
            ready.then_some(())
        },
    );
}

/// Sends one Ethernet frame out of `ifname` in `ns` (AF_PACKET from python3's standard library).
fn send_raw(ns: &Netns, ifname: &str, frame: &[u8]) {
    let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
    let out = ns.exec(&format!(
        "python3 -c \"import socket; s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(('{ifname}', 0)); s.send(bytes.fromhex('{hex}'))\""
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An ARP request (broadcast) from `mac`/`spa` for `tpa`.
fn arp_request(mac: [u8; 6], spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&spa);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&tpa);
    f.resize(60, 0);
    f
}

fn parse_mac(s: &str) -> [u8; 6] {
    let v: Vec<u8> = s
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

#[test]
fn runtime_vxlan_port_to_a_linux_peer() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("vxrt");
    let socket = dir.path("api.sock");
    let server = format!("unix:{}", socket.display());
    let mut ports = port_toml("uplink", "net_tap0,iface=ffvr-up", 1);
    ports += &port_toml("inst", "net_tap1,iface=ffvr-i", 2);
    let text = config("ff-vxrt", &socket, None, &ports)
        + "\n[datapath]\nidle_sleep_us = 200\n[openflow]\nlisten = [\"ptcp:127.0.0.1:16695\"]\n";
    let cfg = dir.path("ff.toml");
    std::fs::write(&cfg, text).unwrap();
    let d = Daemon::start(&cfg, &server, 300.0);
    let remote = Netns::new("ffvr-remote");
    let inst = Netns::new("ffvr-inst");
    wait_for_interface("ffvr-up");
    wait_for_interface("ffvr-i");
    remote.adopt("ffvr-up", "192.0.2.2/24");
    inst.adopt("ffvr-i", "10.8.0.1/24");
    run("ip -n ffvr-inst link set ffvr-i mtu 1450");
    run("ip -n ffvr-remote link add vx0 type vxlan id 5000 local 192.0.2.2 remote 192.0.2.1 dstport 4789 dev ffvr-up");
    run("ip -n ffvr-remote addr add 10.8.0.2/24 dev vx0");
    run("ip -n ffvr-remote link set vx0 up");

    // Bad requests: INVALID_ARGUMENT (exit code 2) naming the field.
    for (args, field) in [
        (
            vec![
                "--uplink",
                "nope",
                "--local-ip",
                "192.0.2.1/24",
                "--remote-ip",
                "192.0.2.2",
            ],
            "uplink",
        ),
        (
            vec![
                "--uplink",
                "uplink",
                "--local-ip",
                "192.0.2.1/24",
                "--remote-ip",
                "x",
            ],
            "remote_ip",
        ),
        (
            vec![
                "--uplink",
                "uplink",
                "--local-ip",
                "192.0.2.1/24",
                "--remote-ip",
                "192.0.2.2",
                "--key",
                "99999999",
            ],
            "key",
        ),
    ] {
        let mut a = vec!["port", "add", "bad", "--vxlan"];
        a.extend(args);
        let (code, out, err) = ctl(&server, &a);
        assert_ne!(code, 0, "{a:?} accepted: {out}");
        assert!(err.contains(field), "{a:?}: the error names {field}: {err}");
    }
    assert!(json(&server, &["tunnel", "list"])["tunnels"]
        .as_array()
        .is_none_or(|t| t.is_empty()));

    let add = [
        "port",
        "add",
        "vx",
        "--vxlan",
        "--uplink",
        "uplink",
        "--local-ip",
        "192.0.2.1/24",
        "--remote-ip",
        "192.0.2.2",
        "--key",
        "5000",
        "--ofport",
        "10",
    ];
    let out = ok(&server, &add);
    assert!(out.contains("OpenFlow port 10"), "{out}");
    ok(
        &server,
        &[
            "flows",
            "add",
            "priority=100,in_port=2,actions=output:10",
            "priority=100,in_port=10,tun_id=5000,actions=output:2",
        ],
    );
    let t = json(&server, &["tunnel", "list"]);
    let vx = &t["tunnels"][0];
    assert_eq!(vx["name"], "vx", "{t}");
    assert_eq!(vx["ofport"], 10, "{t}");
    assert_eq!(vx["remote_ip"], "192.0.2.2", "{t}");
    assert_eq!(vx["vni"], "5000", "{t}");
    // OpenFlow sees the port.
    let desc = run("timeout 30 ovs-ofctl -O OpenFlow13 dump-ports-desc tcp:127.0.0.1:16695");
    assert!(desc.contains("10(vx)"), "{desc}");
    wait_resolved(&server, "vx");
    assert!(pings(&inst, "10.8.0.2", 5), "instance -> Linux vxlan peer");
    assert!(
        pings(&remote, "10.8.0.1", 3),
        "Linux vxlan peer -> instance"
    );
    let tx = json(&server, &["tunnel", "list"])["tunnels"][0]["tx_packets"]
        .as_u64()
        .unwrap();
    assert!(tx >= 3, "encapsulated: {tx}");

    // Deleted: nothing goes through.
    ok(&server, &["port", "del", "vx"]);
    assert!(json(&server, &["tunnel", "list"])["tunnels"]
        .as_array()
        .is_none_or(|t| t.is_empty()));
    run("ip -n ffvr-inst neigh flush all");
    assert!(!pings(&inst, "10.8.0.2", 3), "the tunnel port is gone");

    // Added again, it survives a restart (the store keeps it with its number).
    ok(&server, &add);
    assert!(d.kill("TERM").success());
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(
        text.contains("kind = \"vxlan\"") && text.contains("remote_ip = \"192.0.2.2\""),
        "the store has the tunnel port:\n{text}"
    );
    let _d = Daemon::start(&cfg, &server, 300.0);
    wait_for_interface("ffvr-up");
    wait_for_interface("ffvr-i");
    remote.adopt("ffvr-up", "192.0.2.2/24");
    inst.adopt("ffvr-i", "10.8.0.1/24");
    run("ip -n ffvr-inst link set ffvr-i mtu 1450");
    // The remote's vxlan device lost its underlay device with the tap: made again.
    let _ = remote.exec("ip link del vx0");
    run("ip -n ffvr-remote link add vx0 type vxlan id 5000 local 192.0.2.2 remote 192.0.2.1 dstport 4789 dev ffvr-up");
    run("ip -n ffvr-remote addr add 10.8.0.2/24 dev vx0");
    run("ip -n ffvr-remote link set vx0 up");
    let t = json(&server, &["tunnel", "list"]);
    assert_eq!(t["tunnels"][0]["name"], "vx", "{t}");
    assert_eq!(t["tunnels"][0]["ofport"], 10, "{t}");
    wait_resolved(&server, "vx");
    assert!(pings(&inst, "10.8.0.2", 5), "after the restart");
}

/// One side: a switch with an uplink on the underlay bridge and two instance ports.
struct Host {
    server: String,
    _d: Daemon,
    ip: &'static str,
}

/// Host a's OpenFlow listener in `vxlan_network_between_two_switches`.
const OF_A: &str = "tcp:127.0.0.1:16699";

#[test]
fn vxlan_network_between_two_switches() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("vxnet");
    let underlay = Netns::new("ffvx-ul");
    underlay.exec("ip link add br0 type bridge");
    run("ip -n ffvx-ul link set br0 up");
    let mut hosts = Vec::new();
    for (k, side) in ["a", "b"].iter().enumerate() {
        let socket = dir.path(&format!("api-{side}.sock"));
        let server = format!("unix:{}", socket.display());
        let mut ports = port_toml("up", &format!("net_tap{}0,iface=ffvx-u{side}", k), 1);
        ports += &port_toml("e5", &format!("net_tap{}1,iface=ffvx-{side}5", k), 2);
        ports += &port_toml("e6", &format!("net_tap{}2,iface=ffvx-{side}6", k), 3);
        // Two switches at once: their workers sleep when idle, so neither holds a core.
        let mut text = config(&format!("ff-vx-{side}"), &socket, None, &ports)
            + "\n[datapath]\nidle_sleep_us = 100\n";
        if k == 0 {
            text += &format!("\n[openflow]\nlisten = [\"p{OF_A}\"]\n");
        }
        let cfg = dir.path(&format!("ff-{side}.toml"));
        std::fs::write(&cfg, text).unwrap();
        let d = Daemon::start(&cfg, &server, 300.0);
        let ip = ["192.0.2.1", "192.0.2.2"][k];
        hosts.push(Host { server, _d: d, ip });
    }
    // Instances: network 5 has 10.5.0.1 on a and 10.5.0.2 on b; network 6 the same
    // addresses the other way round (and other MACs).
    let inst = [
        ("a", 5, "10.5.0.1", "02:00:00:05:00:01"),
        ("b", 5, "10.5.0.2", "02:00:00:05:00:02"),
        ("a", 6, "10.5.0.2", "02:00:00:06:00:02"),
        ("b", 6, "10.5.0.1", "02:00:00:06:00:01"),
    ];
    let mut ns = Vec::new();
    for (k, side) in ["a", "b"].iter().enumerate() {
        let up = format!("ffvx-u{side}");
        wait_for_interface(&up);
        // net_tap gives the kernel side the switch's own MAC: a bridge port with it would
        // take frames for the switch as the bridge's own (a local FDB entry).
        run(&format!("ip link set {up} address 02:00:00:ff:00:0{k}"));
        run(&format!("ip link set {up} netns ffvx-ul"));
        run(&format!("ip -n ffvx-ul link set {up} master br0 up"));
    }
    for (side, net, ip, mac) in inst {
        let tap = format!("ffvx-{side}{net}");
        wait_for_interface(&tap);
        run(&format!("ip link set {tap} address {mac}"));
        let n = Netns::new(&format!("ffvx-{side}{net}"));
        n.adopt(&tap, &format!("{ip}/24"));
        run(&format!("ip -n {} link set {tap} mtu 1450", n.0));
        ns.push(n);
    }
    for (k, h) in hosts.iter().enumerate() {
        let side = ["a", "b"][k];
        let peer = hosts[1 - k].ip;
        for net in ["5", "6"] {
            ok(
                &h.server,
                &[
                    "network",
                    "create",
                    net,
                    &format!("n{net}"),
                    "--kind",
                    "vxlan",
                    "--uplink",
                    "up",
                    "--local-ip",
                    &format!("{}/24", h.ip),
                ],
            );
        }
        for (s, net, ip, mac) in inst {
            let name = format!("{s}{net}");
            let net = net.to_string();
            let mut a = vec![
                "instance",
                "add",
                &name,
                "--network",
                &net,
                "--mac",
                mac,
                "--ip",
                ip,
            ];
            let port = format!("e{net}");
            if s == side {
                a.extend(["--port", &port]);
            } else {
                a.extend(["--host-ip", peer]);
            }
            ok(&h.server, &a);
        }
    }
    // The profile made one tunnel port towards the peer host, keyed by the flow.
    for (k, h) in hosts.iter().enumerate() {
        let t = json(&h.server, &["tunnel", "list"]);
        let list = t["tunnels"].as_array().unwrap();
        assert_eq!(list.len(), 1, "one tunnel port per peer host: {t}");
        assert_eq!(list[0]["remote_ip"], hosts[1 - k].ip, "{t}");
        assert_eq!(list[0]["vni"], "flow", "{t}");
        wait_resolved(&h.server, "");
    }

    let wire = dir.path("underlay.pcap");
    let other = dir.path("b6.pcap");
    let cap_wire = Capture::start("ffvx-ul", "ffvx-ua", "udp port 4789", &wire);
    let cap_b6 = Capture::start("ffvx-b6", "ffvx-b6", "", &other);
    let (a5, b5, a6, b6) = (&ns[0], &ns[1], &ns[2], &ns[3]);
    assert!(pings(a5, "10.5.0.2", 5), "a -> b over network 5");
    assert!(pings(b5, "10.5.0.1", 3), "b -> a over network 5");
    // ARP for an address nobody has: broadcast, replicated to the peer host once.
    send_raw(
        a5,
        "ffvx-a5",
        &arp_request(parse_mac(inst[0].3), [10, 5, 0, 1], [10, 5, 0, 99]),
    );
    cap_wire.stop();
    cap_b6.stop();

    let frames = read_pcap(&wire);
    let (mut vni5, mut unknown_arp) = (0, 0);
    for f in &frames {
        let Ok(Some(o)) = tunnel::parse_outer(f) else {
            continue;
        };
        let t = tunnel::parse_tunnel(f, &o, TunnelKind::Vxlan).expect("a vxlan header");
        assert_eq!(t.vni, 5, "only network 5 crossed: VNI {}", t.vni);
        vni5 += 1;
        let inner = &f[t.inner_offset..];
        if o.ip_src == [192, 0, 2, 1]
            && inner.len() >= 42
            && inner[12..14] == [0x08, 0x06]
            && inner[38..42] == [10, 5, 0, 99]
        {
            assert_eq!(&inner[0..6], &[0xff; 6]);
            unknown_arp += 1;
        }
    }
    assert!(
        vni5 >= 8,
        "network 5's pings on the underlay: {vni5} frames"
    );
    assert_eq!(unknown_arp, 1, "the broadcast crossed the underlay once");
    let seen = read_pcap(&other);
    assert!(
        seen.is_empty(),
        "network 6 saw {} frames of network 5",
        seen.len()
    );
    // Network 6 works on its own, with the same addresses.
    assert!(pings(a6, "10.5.0.1", 3), "a -> b over network 6");
    assert!(pings(b6, "10.5.0.2", 3), "b -> a over network 6");

    // The profile's tunnel port to the peer host is a port like the others: in
    // `ferroflowctl ports` with its counters, and in OpenFlow's port descriptions (live)
    // and port stats.
    let a = &hosts[0];
    let t = json(&a.server, &["tunnel", "list"]);
    let tun = &t["tunnels"][0];
    let (name, ofport) = (
        tun["name"].as_str().unwrap(),
        tun["ofport"].as_u64().unwrap(),
    );
    let ports = json(&a.server, &["ports"]);
    let p = ports
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("the peer tunnel port {name} not in ports: {ports}"));
    assert_eq!(p["ofport"], ofport, "{p}");
    assert_eq!(p["driver"], "vxlan", "{p}");
    assert_eq!(p["link_up"], true, "{p}");
    let c = &p["counters"];
    for k in ["tx_packets", "rx_packets", "tx_bytes", "rx_bytes"] {
        assert!(c[k].as_u64().unwrap_or(0) > 0, "{k} of {name}: {p}");
    }
    assert_eq!(
        c["tx_packets"], tun["tx_packets"],
        "ports and tunnel list agree"
    );
    let table = ok(&a.server, &["ports"]);
    assert!(table.contains(name), "{name} not in\n{table}");
    // Its number (0x7f000000 and up) is beyond what ovs-ofctl decodes in OpenFlow 1.3:
    // port descriptions leave it out, and so stay readable.
    let desc = run(&format!(
        "timeout 30 ovs-ofctl -O OpenFlow13 dump-ports-desc {OF_A}"
    ));
    assert!(
        !desc.contains("decode error") && desc.contains("1(up)") && !desc.contains(name),
        "{ofport}({name}) in\n{desc}"
    );
}

/// A vxlan network's listed peer host (`network create ... --peer IP`) gets the network's
/// broadcast and unknown unicast before any instance there is known: a Linux `vxlan`
/// device in a namespace, registered nowhere as an instance, answers the local
/// instance's ARP and pings. Without `--peer` nothing reaches it.
#[test]
fn listed_peer_host_reached_before_any_of_its_instances() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("vxpeer");
    let socket = dir.path("api.sock");
    let server = format!("unix:{}", socket.display());
    let mut ports = port_toml("uplink", "net_tap0,iface=ffvp-up", 1);
    ports += &port_toml("inst", "net_tap1,iface=ffvp-i", 2);
    let text = config("ff-vxpeer", &socket, None, &ports) + "\n[datapath]\nidle_sleep_us = 200\n";
    let cfg = dir.path("ff.toml");
    std::fs::write(&cfg, text).unwrap();
    let d = Daemon::start(&cfg, &server, 300.0);
    let remote = Netns::new("ffvp-remote");
    let inst = Netns::new("ffvp-inst");
    wait_for_interface("ffvp-up");
    wait_for_interface("ffvp-i");
    let mac = "02:00:00:07:00:01";
    run(&format!("ip link set ffvp-i address {mac}"));
    remote.adopt("ffvp-up", "192.0.2.2/24");
    inst.adopt("ffvp-i", "10.7.0.1/24");
    run("ip -n ffvp-inst link set ffvp-i mtu 1450");
    run("ip -n ffvp-remote link add vx0 type vxlan id 7 local 192.0.2.2 remote 192.0.2.1 dstport 4789 dev ffvp-up");
    run("ip -n ffvp-remote addr add 10.7.0.2/24 dev vx0");
    run("ip -n ffvp-remote link set vx0 up");
    let create = |peer: Option<&str>| {
        let mut a = vec![
            "network",
            "create",
            "7",
            "n7",
            "--kind",
            "vxlan",
            "--uplink",
            "uplink",
            "--local-ip",
            "192.0.2.1/24",
        ];
        if let Some(p) = peer {
            a.extend(["--peer", p]);
        }
        ok(&server, &a);
        ok(
            &server,
            &[
                "instance",
                "add",
                "a",
                "--network",
                "7",
                "--mac",
                mac,
                "--ip",
                "10.7.0.1",
                "--port",
                "inst",
            ],
        );
    };
    // Without the peer listed: no tunnel port, the Linux host is out of reach.
    create(None);
    assert!(json(&server, &["tunnel", "list"])["tunnels"]
        .as_array()
        .is_none_or(|t| t.is_empty()));
    assert!(!pings(&inst, "10.7.0.2", 1), "reached without a peer");
    ok(&server, &["instance", "remove", "a"]);
    ok(&server, &["network", "delete", "7"]);
    run("ip -n ffvp-inst neigh flush all");

    // Listed: a tunnel port to it at once, and ARP and pings both ways.
    create(Some("192.0.2.2"));
    let nets = json(&server, &["network", "list"]);
    assert_eq!(nets[0]["peers"], serde_json::json!(["192.0.2.2"]), "{nets}");
    let t = json(&server, &["tunnel", "list"]);
    let list = t["tunnels"].as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 1, "one tunnel port to the listed peer: {t}");
    assert_eq!(list[0]["remote_ip"], "192.0.2.2", "{t}");
    wait_resolved(&server, "");
    assert!(pings(&inst, "10.7.0.2", 3), "instance -> listed peer host");
    assert!(
        pings(&remote, "10.7.0.1", 3),
        "listed peer host -> instance"
    );
    // A bad peer is refused naming the field.
    let (code, out, err) = ctl(
        &server,
        &[
            "network",
            "create",
            "8",
            "n8",
            "--kind",
            "vxlan",
            "--uplink",
            "uplink",
            "--local-ip",
            "192.0.2.1/24",
            "--peer",
            "192.0.2.1",
        ],
    );
    assert_ne!(code, 0, "our own endpoint as a peer accepted: {out}");
    assert!(err.contains("peers[0]"), "the error names the field: {err}");

    // The store keeps the peer with the network.
    assert!(d.kill("TERM").success());
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(
        text.contains("peers = [\"192.0.2.2\"]"),
        "the store has the network's peer:\n{text}"
    );
}
