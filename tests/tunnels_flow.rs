//! Flow-based VXLAN (`remote_ip = "flow"`, `key = "flow"`) against two real peers: a
//! namespace with two underlay addresses, each with its own Linux `vxlan` device (VNI 100
//! at 192.0.2.2, VNI 200 at 192.0.2.3), behind ferroflowd's uplink tap, and an instance
//! namespace behind another tap. Flows pick the peer with `set_field:...->tun_dst` (the
//! issue's ovs-ofctl example word for word), decapsulated packets are told apart by
//! `tun_src`/`tun_dst` matches that send them to different tables, and an output without
//! a `tun_dst` is dropped and counted. A ping with DF too big for the underlay once
//! encapsulated gets ICMP fragmentation-needed with the MTU left for it. The first ping
//! of the fresh switch, sent while the next hop is still unresolved, is not lost.

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.

use std::time::Duration;

use common::*;
use packet::tunnel::{self, TunnelKind};
use serde_json::Value;

const OF: &str = "tcp:127.0.0.1:16695";

fn ofctl(args: &str) -> String {
    run(&format!("timeout 30 ovs-ofctl -O OpenFlow13 {args}"))
}

/// Every echo of 3 answered; on failure the switch's stats, the remote's links and
/// neighbours, and the switch's log.
fn ping(ns: &Netns, dst: &str, ff: &Ferroflowd) {
    ping_all(ns, dst, 3, || {
        format!(
            "stats: {}\nremote: {}\n{}",
            ff.stats_json(),
            sh("ip -n fftf-remote -s link show; ip -n fftf-remote neigh; ip -n fftf-inst neigh")
                .stdout
                .iter()
                .map(|&b| b as char)
                .collect::<String>(),
            ff.log_text()
        )
    });
}

#[test]
fn flow_based_vxlan_to_two_linux_peers() {
    let _lock = DatapathLock::take();
    let mut config = eal_section("ff-t-tunf");
    config += "[datapath]\nidle_sleep_us = 200\n";
    config += &format!("[openflow]\nlisten = [\"p{OF}\"]\n");
    config += "[grpc]\nlisten = \"unix:/tmp/ferroflow-test-tunnels-flow.sock\"\n";
    config += "[metrics]\nlisten = \"127.0.0.1:19474\"\n";
    config += r#"
[[ports]]
name = "inst"
devargs = "net_tap0,iface=fftf-i"
ofport = 1

[[ports]]
name = "uplink"
devargs = "net_tap1,iface=fftf-up"
ofport = 3

[[ports]]
name = "vxf"
kind = "vxlan"
ofport = 10
uplink = "uplink"
local_ip = "192.0.2.1/24"
remote_ip = "flow"
key = "flow"
"#;
    let mut ff = Ferroflowd::start("tunf", &config, 120.0);
    let hosts = TunnelHosts::new("fftf", "fftf-up", "192.0.2.2/24", "fftf-i", "10.8.0.1/24");
    let (remote, inst) = (&hosts.remote, &hosts.inst);
    run("ip -n fftf-remote addr add 192.0.2.3/24 dev fftf-up");
    run("ip -n fftf-inst addr add 10.8.1.1/24 dev fftf-i");
    // Two VTEPs in the remote namespace: one per underlay address, each its own VNI.
    hosts.linux_vxlan("vx2", 100, "192.0.2.2", 4789, "10.8.0.2/24", "");
    hosts.linux_vxlan("vx3", 200, "192.0.2.3", 4789, "10.8.1.3/24", "");
    ofctl(&format!("del-flows {OF}"));
    // The issue's example as it is, for the first peer; 10.8.1.0/24 goes to the second.
    ofctl(&format!(
        "add-flow {OF} 'in_port=1,actions=set_field:100->tun_id,set_field:192.0.2.2->tun_dst,output:10'"
    ));
    for f in [
        "priority=40000,in_port=1,ip,nw_dst=10.8.1.0/24,actions=set_field:200->tun_id,set_field:192.0.2.3->tun_dst,output:10",
        "priority=40000,in_port=1,arp,arp_tpa=10.8.1.0/24,actions=set_field:200->tun_id,set_field:192.0.2.3->tun_dst,output:10",
        // No tun_dst: dropped and counted on the tunnel port.
        "priority=40000,in_port=1,udp,tp_dst=9999,actions=output:10",
        // Decapsulated: the outer source picks the table, the outer destination is ours.
        "in_port=10,tun_src=192.0.2.2,actions=goto_table:1",
        "in_port=10,tun_src=192.0.2.3,actions=goto_table:2",
        "table=1,tun_id=100,tun_dst=192.0.2.1,actions=output:1",
        "table=2,tun_id=200,tun_dst=192.0.2.1/24,actions=output:1",
    ] {
        ofctl(&format!("add-flow {OF} '{f}'"));
    }
    // The matches and actions come back as ovs-ofctl wrote them.
    let dump = ofctl(&format!("dump-flows {OF}"));
    for part in [
        "in_port=1 actions=set_field:0x64->tun_id,set_field:192.0.2.2->tun_dst,output:10",
        "tun_src=192.0.2.2,in_port=10 actions=goto_table:1",
        "tun_id=0x64,tun_dst=192.0.2.1 actions=output:1",
        "tun_id=0xc8,tun_dst=192.0.2.0/24 actions=output:1",
    ] {
        assert!(dump.contains(part), "{part:?} not in\n{dump}");
    }

    // Capture the underlay while pinging each peer both ways.
    let pcap = ff.dir.path("underlay.pcap");
    let capture = hosts.capture_underlay(&pcap);
    // The very first packets toward each peer (the instance's ARP, then its ping) find
    // the next hop unresolved: they are held until its ARP reply and nothing is lost.
    for dst in ["10.8.0.2", "10.8.1.3"] {
        let out = inst.exec(&format!("ping -c 1 -W 3 {dst}"));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(" 1 received"),
            "the first ping to {dst} was lost:\n{text}\n{}",
            ff.log_text()
        );
    }
    ping(inst, "10.8.0.2", &ff);
    ping(inst, "10.8.1.3", &ff);
    ping(remote, "10.8.0.1", &ff);
    ping(remote, "10.8.1.1", &ff);
    capture.stop();

    // Our outer headers: VNI 100 to 192.0.2.2, VNI 200 to 192.0.2.3, nothing else.
    let mut ours = [0usize; 2];
    for f in &read_pcap(&pcap) {
        let Ok(Some(o)) = tunnel::parse_outer(f) else {
            continue;
        };
        if o.ip_src != [192, 0, 2, 1] {
            continue;
        }
        assert_eq!(o.dst_port, 4789);
        let t = tunnel::parse_tunnel(f, &o, TunnelKind::Vxlan).expect("vxlan header");
        match (o.ip_dst, t.vni) {
            ([192, 0, 2, 2], 100) => ours[0] += 1,
            ([192, 0, 2, 3], 200) => ours[1] += 1,
            other => panic!("outer destination and VNI {other:?}"),
        }
    }
    assert!(
        ours[0] >= 6 && ours[1] >= 6,
        "encapsulated frames per peer: {ours:?}"
    );

    // tun_src sent each peer's packets through its own table.
    let dump = ofctl(&format!("dump-flows {OF}"));
    assert!(n_packets(&dump, "table=1,") >= 3, "{dump}");
    assert!(n_packets(&dump, "table=2,") >= 3, "{dump}");

    // Both next hops resolved by ARP.
    let s = ff.stats_json();
    for ip in ["192.0.2.2", "192.0.2.3"] {
        assert!(
            s["neighbours"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["ip"] == ip && n["mac"] != ""),
            "{ip} not resolved: {}",
            s["neighbours"]
        );
    }
    let u = &s["underlay"];
    assert!(
        u["neighbour_queued"].as_u64().unwrap() >= 2
            && u["neighbour_queue_sent"].as_u64().unwrap() >= 2
            && u["neighbour_queue_overflow"] == 0
            && u["neighbour_queue_timeouts"] == 0,
        "{u}"
    );
    let vxf = tunnel_status(&s, "vxf");
    assert_eq!(vxf["remote_ip"], "flow");
    assert!(vxf["tx_packets"].as_u64().unwrap() >= 12, "{vxf}");
    assert!(vxf["rx_packets"].as_u64().unwrap() >= 12, "{vxf}");

    // Path MTU: with DF, a frame that no longer fits the 1500-byte underlay once
    // encapsulated is answered with ICMP fragmentation-needed advertising 1500 - 50; the
    // advertised size then passes.
    run("ip -n fftf-inst link set fftf-i mtu 1500");
    let out = inst.exec("ping -c 1 -W 2 -M do -s 1460 10.8.0.2");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Frag needed and DF set (mtu = 1450)"),
        "no fragmentation-needed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = inst.exec("ping -c 2 -i 0.3 -w 10 -M do -s 1422 10.8.0.2");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(" 2 received"), "1450-byte pings:\n{text}");
    let s = ff.stats_json();
    let vxf = tunnel_status(&s, "vxf");
    assert!(vxf["frag_needed"].as_u64().unwrap() >= 1, "{vxf}");
    assert!(vxf["mtu_drops"].as_u64().unwrap() >= 1, "{vxf}");
    assert!(
        s["underlay"]["icmp_frag_needed_sent"].as_u64().unwrap() >= 1,
        "{}",
        s["underlay"]
    );

    // An output without tun_dst: dropped, counted in the stats, gRPC and /metrics.
    let before = vxf["no_tun_dst_drops"].as_u64().unwrap();
    let _ = inst.exec("bash -c 'echo x > /dev/udp/10.8.0.2/9999'");
    ff.wait_until(
        Duration::from_secs(5),
        "the output without tun_dst counted",
        |f| {
            tunnel_status(&f.stats_json(), "vxf")["no_tun_dst_drops"]
                .as_u64()
                .unwrap()
                > before
        },
    );
    let list: Value = serde_json::from_str(&run(&format!(
        "{} --server unix:/tmp/ferroflow-test-tunnels-flow.sock --json tunnel list",
        ferroflowctl()
    )))
    .unwrap();
    let t = &list["tunnels"][0];
    assert_eq!(t["remote_ip"], "flow", "{list}");
    assert!(t["no_tun_dst_drops"].as_u64().unwrap() > before, "{list}");
    let m = run("curl -sf http://127.0.0.1:19474/metrics");
    let series = "ferroflow_tunnel_no_tun_dst_drops_total{port=\"vxf\",remote=\"flow\"}";
    assert!(m.contains(series), "{series} not in /metrics:\n{m}");
    drop(hosts);
    let _ = ff.stop();
}
