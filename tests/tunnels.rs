//! VXLAN tunnel ports against a real peer: a Linux `vxlan` device in a namespace (the
//! remote host) behind ferroflowd's uplink tap, and an instance namespace behind another
//! tap. Ping and iperf3 across the overlay both ways, the outer headers on the underlay,
//! bad tunnel frames dropped and counted, the next hop learned by ARP and re-learned after
//! its MAC changes, and the VNI chosen by `set_field:...->tun_id` through ovs-ofctl.

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.

use std::time::Duration;

use common::*;
use packet::tunnel::{self, Encap, TunnelKind};
use serde_json::Value;

const OF: &str = "tcp:127.0.0.1:16693";

fn ofctl(args: &str) -> String {
    run(&format!("timeout 30 ovs-ofctl -O OpenFlow13 {args}"))
}

/// Every echo of 3 answered; the switch's log on failure.
fn ping(ns: &Netns, dst: &str, ff: &Ferroflowd) {
    ping_all(ns, dst, 3, || ff.log_text());
}

#[test]
fn vxlan_to_a_linux_peer() {
    let _lock = DatapathLock::take();
    let mut config = eal_section("ff-t-tun");
    config += "[datapath]\nidle_sleep_us = 200\n";
    config += &format!("[openflow]\nlisten = [\"p{OF}\"]\n");
    config += "[tunnels]\nneighbour_timeout_s = 2\n";
    config += "[metrics]\nlisten = \"127.0.0.1:19473\"\n";
    config += "[grpc]\nlisten = \"unix:/tmp/ferroflow-test-tunnels.sock\"\n";
    config += &tunnel_ports_toml("fftn-up", "fftn-i");
    config += r#"
[[ports]]
name = "vx"
kind = "vxlan"
ofport = 10
uplink = "uplink"
local_ip = "192.0.2.1/24"
remote_ip = "192.0.2.2"
key = 5000
csum = true

[[ports]]
name = "vxflow"
kind = "vxlan"
ofport = 11
uplink = "uplink"
local_ip = "192.0.2.1/24"
remote_ip = "192.0.2.2"
key = "flow"
dst_port = 4790
"#;
    let mut ff = Ferroflowd::start("tun", &config, 120.0);
    // The overlay costs 50 bytes: instances get an MTU of 1450 (docs/tunnels.md).
    let hosts = TunnelHosts::new("fftn", "fftn-up", "192.0.2.2/24", "fftn-i", "10.9.0.1/24");
    let (remote, inst) = (&hosts.remote, &hosts.inst);
    run("ip -n fftn-inst addr add 10.9.1.1/24 dev fftn-i");
    hosts.linux_vxlan("vx0", 5000, "192.0.2.2", 4789, "10.9.0.2/24", "udpcsum");
    hosts.linux_vxlan("vx1", 6000, "192.0.2.2", 4790, "10.9.1.2/24", "udpcsum");
    ofctl(&format!("del-flows {OF}"));
    // 10.9.1.0/24 goes over the flow-keyed port with the VNI set by the flow.
    for f in [
        "priority=20,in_port=2,ip,nw_dst=10.9.1.0/24,actions=set_field:6000->tun_id,output:11",
        "priority=20,in_port=2,arp,arp_tpa=10.9.1.0/24,actions=set_field:6000->tun_id,output:11",
        "priority=10,in_port=2,actions=output:10",
        "priority=10,in_port=10,tun_id=5000,actions=output:2",
        "priority=10,in_port=11,tun_id=6000,actions=output:2",
    ] {
        ofctl(&format!("add-flow {OF} '{f}'"));
    }

    // The next hop is learned by ARP.
    let remote_mac = mac_in(remote, "fftn-up");
    ff.wait_neighbour("the next hop resolved", "192.0.2.2", Some(&remote_mac));

    // Capture the underlay while pinging both ways.
    let pcap = ff.dir.path("underlay.pcap");
    let capture = hosts.capture_underlay(&pcap);
    ping(inst, "10.9.0.2", &ff);
    ping(remote, "10.9.0.1", &ff);
    ping(inst, "10.9.1.2", &ff);
    capture.stop();

    // Outer headers: ours to the peer carry VNI 5000 on 4789 with a good UDP checksum and
    // a source port from the inner flow's hash; VNI 6000 (set by the flow) goes to 4790.
    let frames = read_pcap(&pcap);
    let mut ours = [0usize; 2];
    for f in &frames {
        let Ok(Some(o)) = tunnel::parse_outer(f) else {
            continue;
        };
        if o.ip_src != [192, 0, 2, 1] {
            continue;
        }
        assert_eq!(o.ip_dst, [192, 0, 2, 2]);
        assert!(o.src_port >= 49152, "source port {}", o.src_port);
        let t = tunnel::parse_tunnel(f, &o, TunnelKind::Vxlan).expect("vxlan header");
        match o.dst_port {
            4789 => {
                assert_eq!(t.vni, 5000);
                assert_ne!(&f[40..42], &[0, 0], "csum = true: UDP checksum filled");
                tunnel::verify_udp_checksum(f, &o).expect("udp checksum");
                ours[0] += 1;
            }
            4790 => {
                assert_eq!(t.vni, 6000);
                assert_eq!(&f[40..42], &[0, 0], "csum = false: no UDP checksum");
                ours[1] += 1;
            }
            p => panic!("unexpected destination port {p}"),
        }
    }
    assert!(
        ours[0] >= 6 && ours[1] >= 3,
        "encapsulated frames seen: {ours:?} of {}",
        frames.len()
    );

    // iperf3 both ways across the overlay.
    let mut server = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            "fftn-remote",
            "timeout",
            "30",
            "iperf3",
            "-s",
            "-1",
            "-B",
            "10.9.0.2",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("iperf3");
    std::thread::sleep(Duration::from_millis(500));
    let out = inst.exec("timeout 20 iperf3 -c 10.9.0.2 -t 2 -J");
    let _ = server.wait();
    assert!(
        out.status.success(),
        "iperf3 inst -> remote: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        ff.log_text()
    );
    let mut server = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            "fftn-inst",
            "timeout",
            "30",
            "iperf3",
            "-s",
            "-1",
            "-B",
            "10.9.0.1",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("iperf3");
    std::thread::sleep(Duration::from_millis(500));
    let out = remote.exec("timeout 20 iperf3 -c 10.9.0.1 -t 2 -J");
    let _ = server.wait();
    assert!(
        out.status.success(),
        "iperf3 remote -> inst: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Bad frames at our endpoint: a VNI no port has, a port no tunnel listens on, outer
    // headers cut short. Built here with the switch's own encapsulation.
    let before = ff.stats_json()["underlay"].clone();
    let our_mac: Vec<u8> = neighbour_mac_in(remote, "192.0.2.1", "fftn-up")
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    let rm: Vec<u8> = remote_mac
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    let inner = udp_frame([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 8], 1234);
    let build = |vni: u32, port: u16| {
        let mut b = packet::VecBuf::new(&inner);
        let e = Encap {
            kind: TunnelKind::Vxlan,
            eth_src: rm.clone().try_into().unwrap(),
            eth_dst: our_mac.clone().try_into().unwrap(),
            ip_src: [192, 0, 2, 2],
            ip_dst: [192, 0, 2, 1],
            dst_port: port,
            vni,
            ttl: 64,
            udp_checksum: true,
            geneve_options: &[],
        };
        tunnel::encap(&mut b, &e, 50000).unwrap();
        b.into_vec()
    };
    let wrong_vni = build(999, 4789);
    let wrong_port = build(5000, 4791);
    let mut truncated = build(5000, 4789);
    truncated.truncate(14 + 20 + 4);
    send_raw(
        remote,
        "fftn-up",
        &ff.dir,
        &[wrong_vni, wrong_port, truncated],
        0.0,
    );
    ff.wait_until(Duration::from_secs(5), "bad tunnel frames counted", |f| {
        let u = &f.stats_json()["underlay"];
        let more = |k: &str| u[k].as_u64().unwrap() > before[k].as_u64().unwrap();
        more("decap_wrong_vni") && more("decap_wrong_port") && more("decap_truncated")
    });

    // Counters per tunnel port.
    let s = ff.stats_json();
    let vx = tunnel_status(&s, "vx");
    assert!(
        vx["tx_packets"].as_u64().unwrap() >= 6 && vx["rx_packets"].as_u64().unwrap() >= 6,
        "{vx}"
    );
    assert_eq!(vx["next_hop_mac"], remote_mac.as_str());
    assert!(tunnel_status(&s, "vxflow")["tx_packets"].as_u64().unwrap() >= 3);
    assert!(
        s["underlay"]["arp_replies_sent"].as_u64().unwrap() >= 1,
        "{}",
        s["underlay"]
    );

    // The same through gRPC: ferroflowctl tunnel list / neighbours.
    let ctl = |args: &str| {
        run(&format!(
            "{} --server unix:/tmp/ferroflow-test-tunnels.sock {args}",
            ferroflowctl()
        ))
    };
    let list: Value = serde_json::from_str(&ctl("--json tunnel list")).unwrap();
    let vx = list["tunnels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "vx")
        .cloned()
        .unwrap();
    assert_eq!(vx["vni"], "5000");
    assert!(vx["tx_packets"].as_u64().unwrap() >= 6, "{list}");
    assert!(
        list["underlay"]["decap_wrong_vni"].as_u64().unwrap() >= 1,
        "{list}"
    );
    let text = ctl("tunnel neighbours");
    assert!(
        text.contains("192.0.2.2") && text.contains(&remote_mac) && text.contains("reachable"),
        "{text}"
    );

    // The same in /metrics.
    let m = run("curl -sf http://127.0.0.1:19473/metrics");
    for series in [
        "ferroflow_tunnel_tx_packets_total{port=\"vx\",remote=\"192.0.2.2\"}",
        "ferroflow_tunnel_decap_errors_total{reason=\"wrong_vni\"}",
        "ferroflow_tunnel_neighbour_resolved{ip=\"192.0.2.2\",uplink=\"1\"} 1",
    ] {
        assert!(m.contains(series), "{series} not in /metrics:\n{m}");
    }

    // ICMP echo to the switch's local IP is answered by the switch.
    ping(remote, "192.0.2.1", &ff);

    // The peer's MAC changes: re-resolved within the neighbour timeout, traffic flows again.
    let new_mac = "02:aa:bb:cc:dd:ee";
    run(&format!(
        "ip -n fftn-remote link set fftn-up address {new_mac}"
    ));
    ff.wait_neighbour("the next hop re-resolved", "192.0.2.2", Some(new_mac));
    ping(inst, "10.9.0.2", &ff);

    // An inner frame that no longer fits the uplink's 1500 bytes once encapsulated is
    // dropped and counted on the tunnel port.
    let before = tunnel_status(&ff.stats_json(), "vx")["mtu_drops"]
        .as_u64()
        .unwrap();
    run("ip -n fftn-inst link set fftn-i mtu 1500");
    let _ = inst.exec("ping -c 1 -W 1 -M do -s 1460 10.9.0.2");
    ff.wait_until(Duration::from_secs(5), "the oversized frame counted", |f| {
        tunnel_status(&f.stats_json(), "vx")["mtu_drops"]
            .as_u64()
            .unwrap()
            > before
    });
    drop(hosts);
    let _ = ff.stop();
}

#[test]
fn geneve_frames_checked_by_scapy() {
    let _lock = DatapathLock::take();
    let of = "tcp:127.0.0.1:16694";
    let mut config = eal_section("ff-t-gnv");
    config += "[datapath]\nidle_sleep_us = 200\n";
    config += &format!("[openflow]\nlisten = [\"p{of}\"]\n");
    config += &tunnel_ports_toml("fftg-up", "fftg-i");
    config += r#"
[[ports]]
name = "gnv"
kind = "geneve"
ofport = 20
uplink = "uplink"
local_ip = "192.0.2.1/24"
remote_ip = "192.0.2.2"
key = 7000
csum = true
"#;
    let mut ff = Ferroflowd::start("gnv", &config, 120.0);
    let hosts = TunnelHosts::new("fftg", "fftg-up", "192.0.2.2/24", "fftg-i", "10.9.2.1/24");
    let remote = &hosts.remote;
    run("ip -n fftg-inst neigh add 10.9.2.2 lladdr 02:00:00:00:02:02 dev fftg-i");
    ofctl(&format!("del-flows {of}"));
    ofctl(&format!("add-flow {of} 'in_port=2,actions=output:20'"));
    ofctl(&format!(
        "add-flow {of} 'in_port=20,tun_id=7000,actions=output:2'"
    ));
    // The remote resolves the switch's local IP (ARP answered by the switch) and the
    // switch resolves the remote.
    ping(remote, "192.0.2.1", &ff);
    ff.wait_neighbour("the next hop resolved", "192.0.2.2", None);
    let macs = hosts.geneve_peer_macs();
    let GenevePeerRun {
        frames,
        replies,
        text,
    } = hosts.geneve_peer(&macs, 7000, "10.9.2.2", "10.9.2.1", "7", 3);
    assert!(
        replies >= 2,
        "echo replies through Geneve: {text}\n{}",
        ff.log_text()
    );
    for r in &frames {
        assert_eq!(r["vni"], 7000, "{r}");
        assert_eq!(r["proto"], 0x6558, "{r}");
        assert_eq!(r["dport"], 6081, "{r}");
        assert!(r["sport"].as_u64().unwrap() >= 49152, "{r}");
        assert_ne!(r["udp_checksum"], 0, "csum = true: {r}");
        assert_eq!(r["udp_checksum_ok"], true, "{r}");
        assert_eq!(r["ip_df"], true, "{r}");
        assert_eq!(r["inner_dst"], "10.9.2.2", "{r}");
    }
    let s = ff.stats_json();
    let g = tunnel_status(&s, "gnv");
    assert!(
        g["rx_packets"].as_u64().unwrap() >= 3 && g["tx_packets"].as_u64().unwrap() >= 2,
        "{g}"
    );
    assert_eq!(g["kind"], "geneve");
    drop(hosts);
    let _ = ff.stop();
}
