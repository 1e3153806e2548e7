//! Geneve options (issue 16): Open vSwitch's TLV map through `ovs-ofctl add-tlv-map`,
//! `dump-tlv-map` and `del-tlv-map` with its NXTTMFC_* refusals, flows that match
//! `tun_metadata0` and set it, the options a scapy Geneve peer (this kernel has no
//! geneve module) sends and receives, tun_id/tun_src/tun_metadata0 in packet-ins
//! (read by `ovs-ofctl monitor`), and `set_field:A->tun_src` choosing the outer source
//! among the addresses the switch owns on the uplink. About 20 s once built.

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.

use std::process::Command;
use std::time::Duration;

use common::*;

const OF: &str = "tcp:127.0.0.1:16695";

/// The peer pings the switch's local IP (ARP and ICMP echo answered by the switch), so
/// both sides have resolved each other; one reply is enough for that.
fn ping(ns: &Netns, dst: &str, ff: &Ferroflowd) {
    let out = ns.exec(&format!("ping -c 5 -i 0.3 -W 2 {dst}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("bytes from {dst}")),
        "ping {dst} from {} failed:\n{text}\n{}",
        ns.0,
        ff.log_text()
    );
}

/// The scapy peer (VNI 7000) from 10.9.3.2 to the instance's 10.9.3.1, `count` echo
/// requests with option `option`.
fn peer(
    hosts: &TunnelHosts,
    macs: &(String, String, String),
    option: &str,
    count: u32,
) -> GenevePeerRun {
    hosts.geneve_peer(macs, 7000, "10.9.3.2", "10.9.3.1", option, count)
}

#[test]
fn geneve_options_through_the_tlv_map() {
    let _lock = DatapathLock::take();
    let mut config = eal_section("ff-t-gnvo");
    config += "[datapath]\nidle_sleep_us = 200\n";
    config += &format!("[openflow]\nlisten = [\"p{OF}\"]\n");
    config += &tunnel_ports_toml("fftgo-up", "fftgo-i");
    config += r#"
[[ports]]
name = "gnv"
kind = "geneve"
ofport = 20
uplink = "uplink"
local_ip = "192.0.2.1/24"
remote_ip = "192.0.2.2"
key = 7000

# A second address the switch owns on the same uplink: a flow may send from it.
[[ports]]
name = "gnv2"
kind = "geneve"
ofport = 21
uplink = "uplink"
local_ip = "192.0.2.5/24"
remote_ip = "192.0.2.2"
key = 7001
"#;
    let mut ff = Ferroflowd::start("gnvo", &config, 120.0);
    let hosts = TunnelHosts::with_inst_mtu(
        "fftgo",
        "fftgo-up",
        "192.0.2.2/24",
        "fftgo-i",
        "10.9.3.1/24",
        1400,
    );
    run("ip -n fftgo-inst neigh add 10.9.3.2 lladdr 02:00:00:00:02:02 dev fftgo-i");

    // The TLV map: add, dump, and each refusal as Open vSwitch sends it.
    ofctl_ok(&["del-flows", OF]);
    ofctl_ok(&[
        "add-tlv-map",
        OF,
        "{class=0x0102,type=0x01,len=4}->tun_metadata0",
    ]);
    let dump = ofctl_ok(&["dump-tlv-map", OF]);
    eprintln!("dump-tlv-map:\n{dump}");
    assert!(dump.contains("max option space=8 max fields=2"), "{dump}");
    let row: Vec<&str> = dump
        .lines()
        .find(|l| l.contains("tun_metadata0"))
        .expect("the mapping in dump-tlv-map")
        .split_whitespace()
        .collect();
    assert_eq!(row, ["0x102", "0x1", "4", "tun_metadata0"], "{dump}");
    for (map, code) in [
        (
            "{class=0x0103,type=0x01,len=4}->tun_metadata0",
            "NXTTMFC_ALREADY_MAPPED",
        ),
        (
            "{class=0x0102,type=0x01,len=4}->tun_metadata1",
            "NXTTMFC_DUP_ENTRY",
        ),
        (
            "{class=0x0103,type=0x01,len=8}->tun_metadata1",
            "NXTTMFC_TABLE_FULL",
        ),
        (
            "{class=0x0103,type=0x01,len=4}->tun_metadata9",
            "NXTTMFC_BAD_FIELD_IDX",
        ),
    ] {
        let (ok, text) = ofctl(&["add-tlv-map", OF, map]);
        eprintln!("add-tlv-map {map}: {text}");
        assert!(!ok && text.contains(code), "{map}: want {code}, got {text}");
    }
    // A flow on an unmapped field is refused.
    let (ok, text) = ofctl(&["add-flow", OF, "in_port=20,tun_metadata1=0x1,actions=drop"]);
    assert!(!ok && text.contains("OFPBMC_BAD_FIELD"), "{text}");

    // Flows: option 0x7 goes to the instance, any other value to the controller; the
    // instance's traffic leaves with option 0x1234 and (owned) outer source 192.0.2.5.
    for flow in [
        "priority=100,in_port=20,tun_id=7000,tun_metadata0=0x7,actions=output:2",
        "priority=50,in_port=20,actions=CONTROLLER:128",
        "in_port=2,actions=set_field:0x1234->tun_metadata0,set_field:192.0.2.5->tun_src,output:20",
    ] {
        ofctl_ok(&["add-flow", OF, flow]);
    }
    let dump = ofctl_ok(&["dump-flows", OF]);
    eprintln!("dump-flows:\n{dump}");
    assert!(
        dump.contains("tun_id=0x1b58,tun_metadata0=0x7,in_port=20 actions=output:2"),
        "{dump}"
    );
    assert!(
        dump.contains(
            "actions=set_field:0x1234->tun_metadata0,set_field:192.0.2.5->tun_src,output:20"
        ),
        "{dump}"
    );
    // A mapping a flow matches on cannot go.
    let (ok, text) = ofctl(&[
        "del-tlv-map",
        OF,
        "{class=0x0102,type=0x01,len=4}->tun_metadata0",
    ]);
    assert!(!ok && text.contains("NXTTMFC_INVALID_TLV_DEL"), "{text}");

    // The peer resolves the switch's local IP, the switch the peer.
    ping(&hosts.remote, "192.0.2.1", &ff);
    ff.wait_neighbour("the next hop resolved", "192.0.2.2", None);
    let macs = hosts.geneve_peer_macs();

    // A controller-like reader of packet-ins (bounded; ended below by its pid).
    let monitor_out = TempDir::new("gnvo-monitor");
    let monitor_file = monitor_out.path("monitor.txt");
    // What it prints (the packet-ins on stderr with this ovs-ofctl), in one file.
    let monitor_log = std::fs::File::create(&monitor_file).unwrap();
    // Line-buffered (its stdout is a file here), with its control socket in the
    // test's directory (/var/run/openvswitch may not exist).
    let unixctl = format!("--unixctl={}", monitor_out.path("ctl").display());
    let mut monitor = Command::new("timeout")
        .args([
            "60",
            "stdbuf",
            "-oL",
            "ovs-ofctl",
            "-O",
            "OpenFlow13",
            &unixctl,
        ])
        .args(["monitor", OF, "65534"])
        .stdout(monitor_log.try_clone().unwrap())
        .stderr(monitor_log)
        .spawn()
        .expect("ovs-ofctl monitor");
    std::thread::sleep(Duration::from_secs(1));

    // Option 0x7: to the instance; its replies carry option 0x1234 from 192.0.2.5.
    let r = peer(&hosts, &macs, "7", 3);
    assert!(
        r.replies >= 2,
        "echo replies through Geneve: {}\n{}",
        r.text,
        ff.log_text()
    );
    for f in r.frames.iter().filter(|f| f["icmp_type"] == 0) {
        assert_eq!(f["vni"], 7000, "{f}");
        assert_eq!(f["outer_src"], "192.0.2.5", "set_field:...->tun_src: {f}");
        assert_eq!(
            f["options"],
            serde_json::json!([{"class": 0x0102, "type": 1, "data": "00001234"}]),
            "the mapped option on encap: {f}"
        );
    }
    // Option 0x8: misses the 0x7 flow; the controller sees the tunnel in the packet-in.
    let r = peer(&hosts, &macs, "8", 2);
    assert_eq!(
        r.replies, 0,
        "option 0x8 must not reach the instance: {}",
        r.text
    );
    let dump = ofctl_ok(&["dump-flows", OF]);
    assert!(n_packets(&dump, "tun_metadata0=0x7") >= 3, "{dump}");
    assert!(n_packets(&dump, "CONTROLLER:128") >= 2, "{dump}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut text = String::new();
    while std::time::Instant::now() < deadline && !text.contains("tun_metadata0=0x8") {
        std::thread::sleep(Duration::from_millis(200));
        text = std::fs::read_to_string(&monitor_file).unwrap_or_default();
    }
    eprintln!("monitor:\n{text}");
    let pin = text
        .lines()
        .find(|l| l.contains("OFPT_PACKET_IN") && l.contains("tun_metadata0=0x8"))
        .unwrap_or_else(|| panic!("a packet-in with the option:\n{text}"));
    for want in [
        "tun_id=0x1b58",
        "tun_src=192.0.2.2",
        "tun_dst=192.0.2.1",
        "in_port=20",
    ] {
        assert!(pin.contains(want), "{want} in the packet-in: {pin}");
    }

    // A tun_src the switch does not own on the uplink is not used: local_ip is.
    ofctl_ok(&[
        "mod-flows",
        OF,
        "in_port=2,actions=set_field:0x1234->tun_metadata0,set_field:198.51.100.7->tun_src,output:20",
    ]);
    let r = peer(&hosts, &macs, "7", 2);
    assert!(r.replies >= 1, "{}", r.text);
    for f in r.frames.iter().filter(|f| f["icmp_type"] == 0) {
        assert_eq!(f["outer_src"], "192.0.2.1", "unowned tun_src: {f}");
    }

    // Once no flow matches on it, the mapping can go, and the dump is empty.
    ofctl_ok(&["del-flows", OF]);
    ofctl_ok(&[
        "del-tlv-map",
        OF,
        "{class=0x0102,type=0x01,len=4}->tun_metadata0",
    ]);
    let dump = ofctl_ok(&["dump-tlv-map", OF]);
    assert!(!dump.contains("tun_metadata0"), "{dump}");

    run(&format!("kill -TERM {}", monitor.id()));
    let _ = monitor.wait();
    drop(hosts);
    let _ = ff.stop();
}
