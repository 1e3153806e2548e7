//! Encapsulation into the packet's own headroom never changes what another output of the
//! same packet sends. A frame from an instance is sent to two VXLAN ports (VNI 5000 on
//! 4789 with UDP checksums, VNI 6000 on 4790) and a local port at once, to the two tunnel
//! ports only, and to a tunnel port and a local port with a `set_field` between them in
//! both orders. The underlay (in the remote's namespace) and the local port (in its own)
//! are captured, and every frame decoded: outer Ethernet/IPv4/UDP, VNI and checksums, and
//! the inner frame byte for byte as it was sent (or as the flow edited it, for the outputs
//! after the edit).

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.

use std::time::Duration;

use common::*;
use packet::tunnel::{self, TunnelKind};

const OF: &str = "tcp:127.0.0.1:16689";
/// Frames sent per case.
const N: usize = 3;
/// The MAC the edit cases write into the frame.
const EDITED_DST: [u8; 6] = [2, 0, 0, 0, 0x77, 0x77];

fn ofctl(args: &str) -> String {
    run(&format!("timeout 30 ovs-ofctl -O OpenFlow13 {args}"))
}

/// A UDP/IPv4 frame to `tp_dst` whose payload names the case and the copy.
fn frame(src: [u8; 6], tp_dst: u16, copy: u8) -> Vec<u8> {
    let mut f = udp_frame([2, 0, 0, 0, 0, 0x42], src, 40000);
    f[36..38].copy_from_slice(&tp_dst.to_be_bytes());
    f[42] = (tp_dst & 0xff) as u8;
    f[43] = copy;
    f
}

/// `f` as the flows' `set_field:02:00:00:00:77:77->eth_dst` leaves it.
fn edited(f: &[u8]) -> Vec<u8> {
    let mut e = f.to_vec();
    e[..6].copy_from_slice(&EDITED_DST);
    e
}

#[test]
fn in_place_encapsulation_leaves_every_other_output_intact() {
    let _lock = DatapathLock::take();
    let mut config = eal_section("ff-t-tunrep");
    config += "[datapath]\nidle_sleep_us = 200\n";
    config += &format!("[openflow]\nlisten = [\"p{OF}\"]\n");
    config += "[grpc]\nlisten = \"unix:/tmp/ferroflow-test-tunnels-replicate.sock\"\n";
    config += r#"
[[ports]]
name = "uplink"
devargs = "net_tap0,iface=fftx-up"
ofport = 1

[[ports]]
name = "inst"
devargs = "net_tap1,iface=fftx-i"
ofport = 2

[[ports]]
name = "loc"
devargs = "net_tap2,iface=fftx-l"
ofport = 3

[[ports]]
name = "vxa"
kind = "vxlan"
ofport = 10
uplink = "uplink"
local_ip = "192.0.2.1/24"
remote_ip = "192.0.2.2"
key = 5000
csum = true

[[ports]]
name = "vxb"
kind = "vxlan"
ofport = 11
uplink = "uplink"
local_ip = "192.0.2.1/24"
remote_ip = "192.0.2.2"
key = 6000
dst_port = 4790
"#;
    let mut ff = Ferroflowd::start("tunrep", &config, 90.0);
    let hosts = TunnelHosts::new("fftx", "fftx-up", "192.0.2.2/24", "fftx-i", "10.7.0.1/24");
    wait_for_interface("fftx-l");
    let loc = Netns::new("fftx-loc");
    loc.adopt("fftx-l", "");
    ofctl(&format!("del-flows {OF}"));
    let set = "set_field:02:00:00:00:77:77->eth_dst";
    for f in [
        // Flood: two tunnels and a local port.
        "in_port=2,udp,tp_dst=7001,actions=output:10,output:11,output:3".to_owned(),
        // Head-end replication: two tunnels, the last one encapsulates in place.
        "in_port=2,udp,tp_dst=7002,actions=output:10,output:11".to_owned(),
        // Edited after the tunnel output: the tunnel sends the frame as it was.
        format!("in_port=2,udp,tp_dst=7003,actions=output:10,{set},output:3"),
        // Edited before it: the local port gets the original, the tunnel the edit.
        format!("in_port=2,udp,tp_dst=7004,actions=output:3,{set},output:10"),
    ] {
        ofctl(&format!("add-flow {OF} '{f}'"));
    }
    let remote_mac = mac_in(&hosts.remote, "fftx-up");
    ff.wait_until(Duration::from_secs(10), "the next hop resolved", |f| {
        f.stats_json()["neighbours"].as_array().is_some_and(|n| {
            n.iter()
                .any(|n| n["ip"] == "192.0.2.2" && n["mac"] == remote_mac.as_str())
        })
    });
    let remote_mac: Vec<u8> = remote_mac
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();

    let inst_mac: Vec<u8> = mac_in(&hosts.inst, "fftx-i")
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    let src: [u8; 6] = inst_mac.try_into().unwrap();
    let cases = [7001u16, 7002, 7003, 7004];
    let mut sent = Vec::new();
    for copy in 0..N as u8 {
        for tp in cases {
            sent.push(frame(src, tp, copy));
        }
    }
    // Before the flows above replaced it, NORMAL flooded the taps' first frames to the
    // tunnels too: the counters are compared from here.
    let before = ff.stats_json();
    let underlay = ff.dir.path("underlay.pcap");
    let local = ff.dir.path("local.pcap");
    let cap_u = hosts.capture_underlay(&underlay);
    let cap_l = capture_in(&loc, "fftx-l", &local, "udp");
    send_raw(&hosts.inst, "fftx-i", &ff.dir, &sent, 0.05);
    cap_u.stop();
    cap_l.stop();

    // What each port must have sent, per case: (VNI 5000, VNI 6000, local) frames.
    let want = |tp: u16, copy: u8| -> [Option<Vec<u8>>; 3] {
        let f = frame(src, tp, copy);
        match tp {
            7001 => [Some(f.clone()), Some(f.clone()), Some(f)],
            7002 => [Some(f.clone()), Some(f), None],
            7003 => [Some(f.clone()), None, Some(edited(&f))],
            _ => [Some(edited(&f)), None, Some(f)],
        }
    };
    let mut got: [Vec<Vec<u8>>; 3] = Default::default();
    for f in &read_pcap(&underlay) {
        let Ok(Some(o)) = tunnel::parse_outer(f) else {
            continue;
        };
        if o.ip_src != [192, 0, 2, 1] {
            continue;
        }
        assert_eq!(o.ip_dst, [192, 0, 2, 2]);
        assert_eq!(&o.eth_dst[..], &remote_mac[..], "outer destination MAC");
        assert!(o.src_port >= 49152, "source port {}", o.src_port);
        let t = tunnel::parse_tunnel(f, &o, TunnelKind::Vxlan).expect("vxlan header");
        let which = match (o.dst_port, t.vni) {
            (4789, 5000) => {
                assert_ne!(&f[40..42], &[0, 0], "csum = true: UDP checksum filled");
                tunnel::verify_udp_checksum(f, &o).expect("udp checksum");
                0
            }
            (4790, 6000) => {
                assert_eq!(&f[40..42], &[0, 0], "csum = false: no UDP checksum");
                1
            }
            other => panic!("unexpected port and VNI {other:?}"),
        };
        got[which].push(f[t.inner_offset..].to_vec());
    }
    got[2] = read_pcap(&local)
        .into_iter()
        .filter(|f| f.len() >= 38 && (7001..=7004).contains(&u16::from_be_bytes([f[36], f[37]])))
        .collect();
    let names = ["vxa (VNI 5000)", "vxb (VNI 6000)", "the local port"];
    for (i, name) in names.iter().enumerate() {
        let mut expected: Vec<Vec<u8>> = (0..N as u8)
            .flat_map(|copy| {
                cases
                    .iter()
                    .filter_map(move |&tp| want(tp, copy)[i].clone())
            })
            .collect();
        let mut seen = got[i].clone();
        expected.sort();
        seen.sort();
        assert_eq!(
            seen,
            expected,
            "{name}: frames (inner frames for tunnels) differ from what the flows send\n{}",
            ff.log_text()
        );
    }
    let s = ff.stats_json();
    for (name, n) in [("vxa", 4 * N), ("vxb", 2 * N)] {
        let t = tunnel_status(&s, name);
        let t0 = tunnel_status(&before, name)["tx_packets"].as_u64().unwrap();
        assert_eq!(t["tx_packets"].as_u64().unwrap() - t0, n as u64, "{t}");
        assert_eq!(t["encap_failed"], 0, "{t}");
    }
    drop(loc);
    drop(hosts);
    let _ = ff.stop();
}
