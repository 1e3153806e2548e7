//! The tunnel tests' peers (tests/tunnels.rs, tests/tunnels_geneve.rs): the switch's next
//! hop on the underlay, and the scapy Geneve endpoint (tests/tunnels/geneve_peer.py) that
//! stands in for the remote host, this kernel having no geneve module.
//!
//! The `[[ports]]` written here name net_tap vdevs; the EAL argument list they run under is
//! tests/common's eal_section: --no-pci, its own --file-prefix, --in-memory and a
//! --socket-limit memory cap.

use std::time::Duration;

use serde_json::Value;

use super::{mac_in, neighbour_mac_in, Ferroflowd, Netns, TempDir, TunnelHosts};

/// The inner source MAC of the scapy peer's echo requests: the instance needs a neighbour
/// entry for it (`ip neigh add ... lladdr GENEVE_PEER_INNER_MAC`) to answer.
pub const GENEVE_PEER_INNER_MAC: &str = "02:00:00:00:02:02";

/// tests/tunnels/geneve_peer.py, run by Debian's python3 (it has python3-scapy, which
/// tests/setup-host.sh installs).
const GENEVE_PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tunnels/geneve_peer.py");

/// The `[[ports]]` of a tunnel test's two taps: `uplink` (OpenFlow port 1) on the
/// kernel interface `uplink_if`, towards the remote host, and `inst` (port 2) on
/// `inst_if`, towards the instance ([`TunnelHosts`] takes both).
pub fn tunnel_ports_toml(uplink_if: &str, inst_if: &str) -> String {
    format!(
        "\n[[ports]]\nname = \"uplink\"\ndevargs = \"net_tap0,iface={uplink_if}\"\nofport = 1\n\n[[ports]]\nname = \"inst\"\ndevargs = \"net_tap1,iface={inst_if}\"\nofport = 2\n"
    )
}

impl Ferroflowd {
    /// Waits (10 s) until the switch has resolved the underlay neighbour `ip` (to `mac`
    /// when given, else to any MAC), as its stats file shows.
    pub fn wait_neighbour(&mut self, what: &str, ip: &str, mac: Option<&str>) {
        self.wait_until(Duration::from_secs(10), what, |f| {
            f.stats_json()["neighbours"].as_array().is_some_and(|n| {
                n.iter().any(|n| {
                    n["ip"] == ip
                        && match mac {
                            Some(mac) => n["mac"] == mac,
                            None => n["mac"] != "",
                        }
                })
            })
        });
    }
}

/// What the scapy peer saw.
pub struct GenevePeerRun {
    /// The Geneve frames the switch sent it, one JSON object each (geneve_peer.py says
    /// which fields).
    pub frames: Vec<Value>,
    /// The echo replies among them.
    pub replies: u64,
    /// Its whole output, for failure messages.
    pub text: String,
}

impl TunnelHosts {
    /// What the scapy peer needs to address its frames: (the remote's uplink MAC, the
    /// switch's MAC as the remote resolved 192.0.2.1, the instance's MAC).
    pub fn geneve_peer_macs(&self) -> (String, String, String) {
        (
            mac_in(&self.remote, &self.uplink),
            neighbour_mac_in(&self.remote, "192.0.2.1", &self.uplink),
            mac_in(&self.inst, &self.inst_if),
        )
    }

    /// geneve_peer.py in `remote` (bounded to 60 s; the test fails if it does): `count`
    /// ICMP echo requests from `inner_src` (MAC [`GENEVE_PEER_INNER_MAC`]) to the instance's
    /// `inner_dst`, in Geneve with VNI `vni` and one option carrying `option` (hex), from
    /// 192.0.2.2 to the switch's 192.0.2.1; `macs` from [`TunnelHosts::geneve_peer_macs`].
    pub fn geneve_peer(
        &self,
        macs: &(String, String, String),
        vni: u32,
        inner_src: &str,
        inner_dst: &str,
        option: &str,
        count: u32,
    ) -> GenevePeerRun {
        let (remote_mac, switch_mac, inst_mac) = macs;
        let out = self.remote.exec(&format!(
            "timeout 60 /usr/bin/python3 {GENEVE_PEER} {} {remote_mac} {switch_mac} 192.0.2.2 192.0.2.1 {vni} {GENEVE_PEER_INNER_MAC} {inst_mac} {inner_src} {inner_dst} --option {option} --count {count}",
            self.uplink
        ));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "geneve_peer.py (needs python3-scapy): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut frames: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let summary = frames.pop().expect("summary line");
        GenevePeerRun {
            frames,
            replies: summary["replies"].as_u64().unwrap(),
            text,
        }
    }
}

/// Sends raw frames out of `ifname` in `ns` (AF_PACKET from python3's standard library),
/// `gap_s` seconds apart.
pub fn send_raw(ns: &Netns, ifname: &str, dir: &TempDir, frames: &[Vec<u8>], gap_s: f64) {
    let hex: Vec<String> = frames
        .iter()
        .map(|f| f.iter().map(|b| format!("{b:02x}")).collect())
        .collect();
    let script = dir.path("send.py");
    std::fs::write(
        &script,
        format!(
            "import socket, time\ns = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\ns.bind(('{ifname}', 0))\nfor h in {hex:?}:\n    s.send(bytes.fromhex(h))\n    time.sleep({gap_s})\n"
        ),
    )
    .unwrap();
    let out = ns.exec(&format!("python3 {}", script.display()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
