//! OpenFlow 1.3 conformance: a representative subset of the os-ken switch test
//! tool (matches, actions, a group and a meter) with ferroflowd as the target
//! and a private Open vSwitch bridge as the tester, run by
//! `tests/conformance/osken-switch-test.sh`. The whole suite (991 cases) is the
//! same script without `-t` (see the README); it is not part of `cargo test`.
//!
//! The script takes /tmp/cpu.lock itself for each span in which ferroflowd
//! busy-polls, so this test does not hold it.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

/// A few matches and actions of every kind: 72 cases. The tool's group and meter cases are
/// left to the full run: every one of them judges a rate the Python tester itself has to
/// reach (2 Mbps through the tester bridge), so on a loaded 2-core machine they fail for
/// the tester's sake (seen: 1.5 Mbps offered, "unexpected throughput"), which would make
/// them timed assertions. Groups and meters are asserted without timing in
/// tests/openflow_ofctl.rs and the pipeline crate's tests.
const SUBSET: &[&str] = &[
    "match/00_IN_PORT.json",
    "match/05_ETH_TYPE.json",
    "match/11_IPV4_SRC_Mask.json",
    "match/14_TCP_DST_IPv4.json",
    "match/37_PBB_ISID.json",
    "action/00_OUTPUT.json",
    "action/17_PUSH_VLAN.json",
    "action/18_POP_VLAN.json",
    "action/24_DEC_NW_TTL_IPv4.json",
    "action/25_SET_FIELD/10_IP_PROTO_IPv4.json",
    "action/25_SET_FIELD/11_IPV4_SRC.json",
];

#[test]
fn osken_switch_test_subset_passes() {
    require_root();
    let dir = TempDir::new("conformance");
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/osken-switch-test.sh");
    // Bounded: the script waits for /tmp/cpu.lock between chunks.
    let mut cmd = Command::new("timeout");
    cmd.arg("1800").arg(&script);
    for t in SUBSET {
        cmd.arg("-t").arg(t);
    }
    // A failed file runs once more: the tester (Open vSwitch's userspace datapath) now and
    // then loses a packet-in right after a flow change (../shared/conformance/README.md).
    let out = cmd
        .args(["-r", "1"])
        .arg("-o")
        .arg(dir.path("logs"))
        .env("FERROFLOWD", FERROFLOWD)
        .env("OFC_DIR", dir.path("work"))
        // Its own namespace and veth names: a manual full run may use the defaults.
        .env("OFC_NS", "ffconf")
        .env("PFX", "ffcf")
        .output()
        .expect("run osken-switch-test.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let logs = || {
        let mut s = String::new();
        for e in std::fs::read_dir(dir.path("logs")).into_iter().flatten() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "log") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                // the failing cases and what the tool said about them
                let lines: Vec<&str> = text.lines().collect();
                for (i, l) in lines.iter().enumerate() {
                    if l.ends_with(" ERROR") {
                        s += &format!("{l}\n    {}\n", lines.get(i + 1).unwrap_or(&""));
                    }
                }
            }
        }
        s
    };
    assert!(
        stdout.contains("SUMMARY"),
        "no summary from the test tool:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && stdout.contains(" / ERROR 0 "),
        "conformance cases failed:\n{stdout}\n{}",
        logs()
    );
}
