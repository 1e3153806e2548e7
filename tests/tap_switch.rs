//! The learning switch between kernel hosts: each host is a network namespace
//! holding the kernel side of a `net_tap` port of ferroflowd.

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.

use std::time::Duration;

use common::*;

fn tap_port(name: &str, dev: u32, iface: &str, ofport: u32, extra: &str) -> String {
    format!("\n[[ports]]\nname = \"{name}\"\ndevargs = \"net_tap{dev},iface={iface}\"\nofport = {ofport}\n{extra}\n")
}

/// Counts the packets in a capture that match a tcpdump filter.
fn count(ns: &Netns, pcap: &str, filter: &str) -> usize {
    let out = ns.exec(&format!("tcpdump -nn -r {pcap} '{filter}' 2>/dev/null"));
    // One line per packet starts with its timestamp; hex dumps of unknown
    // ethertypes follow on indented lines.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .count()
}

#[test]
fn hosts_ping_through_the_switch_and_learned_unicast_is_not_flooded() {
    let _lock = DatapathLock::take();
    let mut config = eal_section("ff-t-tap");
    config += "[datapath]\nidle_sleep_us = 200\n";
    config += &tap_port("a", 0, "fft-a", 1, "");
    config += &tap_port("b", 1, "fft-b", 2, "");
    config += &tap_port("c", 2, "fft-c", 3, "");
    let ff = Ferroflowd::start("tap", &config, 300.0);
    let (a, b, c) = (
        Netns::new("fft-a"),
        Netns::new("fft-b"),
        Netns::new("fft-c"),
    );
    for (ns, ifname, ip) in [
        (&a, "fft-a", "198.18.7.1/24"),
        (&b, "fft-b", "198.18.7.2/24"),
        (&c, "fft-c", "198.18.7.3/24"),
    ] {
        wait_for_interface(ifname);
        ns.adopt(ifname, ip);
    }
    let pcap = ff.dir.path("c.pcap");
    let pcap = pcap.to_str().unwrap();
    let mut tcpdump = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            "fft-c",
            "tcpdump",
            "-nn",
            "-U",
            "--immediate-mode",
            "-i",
            "fft-c",
            "-w",
            pcap,
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tcpdump (apt-get install tcpdump)");
    std::thread::sleep(Duration::from_millis(1500));

    let out = a.exec("ping -c 3 -i 0.2 -W 2 198.18.7.2");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ping a -> b failed:\n{text}\n{}",
        ff.log_text()
    );
    assert!(text.contains("3 received"), "{text}");

    std::thread::sleep(Duration::from_millis(500));
    run(&format!("kill -INT {}", tcpdump.id()));
    let _ = tcpdump.wait();
    // The first ARP request is broadcast: every host sees it. The replies and
    // the echo traffic are unicast to learned addresses: c never sees them.
    assert!(
        count(&c, pcap, "arp and arp[6:2] = 1 and src host 198.18.7.1") >= 1,
        "c missed the flooded ARP request"
    );
    assert_eq!(
        count(&c, pcap, "icmp"),
        0,
        "c saw unicast ICMP: the switch flooded learned traffic"
    );
    assert_eq!(
        count(&c, pcap, "arp and arp[6:2] = 2"),
        0,
        "c saw a unicast ARP reply"
    );

    let stats = ff.stop();
    let pa = Ferroflowd::port(&stats, "a");
    let s = &pa["switch_stats"];
    assert!(s["forwarded"].as_u64().unwrap() >= 4, "{pa}");
    assert_eq!(s["dropped"], 0, "{pa}");
}

/// Sends one raw Ethernet frame out of `ifname` inside `ns` (AF_PACKET, so it
/// needs no VLAN support in the kernel).
fn inject(ns: &Netns, ifname: &str, frame: &[u8]) {
    let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
    let py = format!(
        "import socket; s=socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(('{ifname}', 0)); s.send(bytes.fromhex('{hex}'))"
    );
    let out = ns.exec(&format!("python3 -c \"{py}\""));
    assert!(
        out.status.success(),
        "inject: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn capture(ns: &Netns, ifname: &str, pcap: &str) -> std::process::Child {
    std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.0,
            "tcpdump",
            "-nn",
            "-U",
            "--immediate-mode",
            "-e",
            "-i",
            ifname,
            "-w",
            pcap,
        ])
        .stderr(std::fs::File::create(format!("{pcap}.err")).unwrap())
        .spawn()
        .expect("tcpdump (apt-get install tcpdump)")
}

#[test]
fn vlans_keep_hosts_apart_and_trunks_carry_tags() {
    let _lock = DatapathLock::take();
    let mut config = eal_section("ff-t-vlan");
    config += "[datapath]\nidle_sleep_us = 200\n";
    config += &tap_port("a10", 0, "ffv-a", 1, "tag = 10");
    config += &tap_port("b10", 1, "ffv-b", 2, "tag = 10");
    config += &tap_port("c20", 2, "ffv-c", 3, "tag = 20");
    config += &tap_port("trunk", 3, "ffv-t", 4, "trunks = [10, 20]");
    let ff = Ferroflowd::start("vlan", &config, 300.0);
    let a = Netns::new("ffv-a");
    let b = Netns::new("ffv-b");
    let c = Netns::new("ffv-c");
    let t = Netns::new("ffv-t");
    for (ns, ifname, ip) in [
        (&a, "ffv-a", "198.18.8.1/24"),
        (&b, "ffv-b", "198.18.8.2/24"),
        (&c, "ffv-c", "198.18.8.3/24"),
        (&t, "ffv-t", ""),
    ] {
        wait_for_interface(ifname);
        ns.adopt(ifname, ip);
    }
    let tp = ff.dir.path("trunk.pcap");
    let cp = ff.dir.path("c.pcap");
    let (tp, cp) = (tp.to_str().unwrap(), cp.to_str().unwrap());
    let mut caps = [capture(&t, "ffv-t", tp), capture(&c, "ffv-c", cp)];
    std::thread::sleep(Duration::from_millis(1500));

    let ok = |ns: &Netns, dst: &str| {
        ns.exec(&format!("ping -c 2 -i 0.2 -W 1 {dst}"))
            .status
            .success()
    };
    assert!(
        ok(&a, "198.18.8.2"),
        "a and b share VLAN 10:\n{}",
        ff.log_text()
    );
    assert!(!ok(&a, "198.18.8.3"), "a (VLAN 10) reached c (VLAN 20)");
    // A broadcast from the trunk host in VLAN 20 reaches c untagged, and only c.
    let mut frame = vec![0xff; 6];
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0x20, 0x20, 0x81, 0x00, 0x00, 20, 0x88, 0xb5]);
    frame.resize(64, 0x5a);
    inject(&t, "ffv-t", &frame);
    std::thread::sleep(Duration::from_millis(500));
    for cap in caps.iter_mut() {
        run(&format!("kill -INT {}", cap.id()));
        let _ = cap.wait();
    }
    // a's ARP requests reach the trunk tagged with VLAN 10, never untagged or in VLAN 20.
    assert!(
        count(&t, tp, "vlan 10 and arp and arp[6:2] = 1") >= 1,
        "no VLAN 10 ARP on the trunk"
    );
    assert_eq!(
        count(&t, tp, "not vlan and arp"),
        0,
        "untagged ARP on the trunk"
    );
    // c saw the trunk's VLAN 20 broadcast without its tag, and none of VLAN 10's traffic.
    assert_eq!(
        count(&c, cp, "ether src 02:00:00:00:20:20 and ether proto 0x88b5"),
        1,
        "c did not get the VLAN 20 broadcast untagged"
    );
    assert_eq!(
        count(
            &c,
            cp,
            "arp and src host 198.18.8.1 and dst host 198.18.8.2"
        ),
        0,
        "c saw VLAN 10 traffic"
    );
    assert_eq!(count(&c, cp, "vlan"), 0, "tagged frame on an access port");

    let stats = ff.stop();
    let trunk = Ferroflowd::port(&stats, "trunk");
    // The injected VLAN 20 broadcast went out (to c20).
    assert!(
        trunk["switch_stats"]["forwarded"].as_u64().unwrap() >= 1,
        "{trunk}"
    );
}
