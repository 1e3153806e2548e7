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
        out.status.success() && stdout.contains("unexplained errors: 0, broken logs: 0"),
        "conformance cases failed:\n{stdout}\n{}",
        logs()
    );
}

/// The summariser on logs written here (no switch, no root): every chunk counts, a
/// failure in any chunk fails the run, and only listed tester bugs are let through.
mod summary {
    use super::*;

    const KNOWN: &str = "# test list\nfile C | c1 | tester bug for the test\n";

    /// Three test files A, B, C; returns the directory holding them and files.txt.
    fn setup(tag: &str) -> TempDir {
        let dir = TempDir::new(tag);
        let mut list = String::new();
        for f in ["A", "B", "C"] {
            let path = dir.path(&format!("{f}.json"));
            std::fs::write(&path, format!("[\"file {f}\", {{\"description\": \"x\"}}]")).unwrap();
            list += &format!("{}\n", path.display());
        }
        std::fs::write(dir.path("files.txt"), list).unwrap();
        std::fs::write(dir.path("known.txt"), KNOWN).unwrap();
        dir
    }

    /// One run of the tool over `cases` (file, case, verdict), with its report.
    fn chunk(cases: &[(&str, &str, &str)]) -> String {
        let mut log = String::new();
        let mut last = "";
        for (file, case, verdict) in cases {
            if *file != last {
                log += &format!("file {file}\n");
                last = file;
            }
            log += &format!("    {case:<100} {verdict}\n");
            if *verdict == "ERROR" {
                log += "        Receiving timeout: no packet-in\n";
            }
        }
        let errors = cases.iter().filter(|c| c.2 == "ERROR").count();
        log += "\n--- Test report ---\n";
        if errors > 0 {
            log += &format!("Receiving timeout({errors})\n");
            for (file, case, _) in cases.iter().filter(|c| c.2 == "ERROR") {
                log += &format!("    file {file:<35} {case}\n");
            }
        }
        log += &format!("\nOK({}) / ERROR({errors})\n", cases.len() - errors);
        log
    }

    /// Runs summarize.py over the logs; (exit status success, stdout).
    fn summarize(dir: &TempDir, logs: &[String]) -> (bool, String) {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/summarize.py");
        let mut paths = Vec::new();
        for (i, text) in logs.iter().enumerate() {
            let p = dir.path(&format!("chunk{i:02}.log"));
            std::fs::write(&p, text).unwrap();
            paths.push(p);
        }
        let out = Command::new("python3")
            .arg(script)
            .arg(dir.path("files.txt"))
            .arg(dir.path("failed.txt"))
            .args(["1", "test"])
            .arg(dir.path("known.txt"))
            .args(&paths)
            .output()
            .expect("python3");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }

    #[test]
    fn an_error_in_a_later_chunk_fails_the_run() {
        let dir = setup("summary-later");
        let first = chunk(&[("A", "a1", "OK"), ("A", "a2", "OK")]);
        let second = chunk(&[("B", "b1", "OK"), ("B", "b2", "ERROR")]);
        let (ok, text) = summarize(&dir, &[first.clone(), second.clone()]);
        assert!(
            !ok,
            "a failure in the second chunk must fail the run:\n{text}"
        );
        assert!(text.contains("OK 3 / ERROR 1"), "{text}");
        assert!(text.contains("!!! FAILED: file B: b2"), "{text}");
        let failed = std::fs::read_to_string(dir.path("failed.txt")).unwrap();
        assert!(failed.ends_with("B.json\n"), "{failed}");
        // The same chunks concatenated into one log (all.log): the report of the first
        // does not hide the second.
        let (ok, text) = summarize(&dir, &[first + &second]);
        assert!(!ok && text.contains("OK 3 / ERROR 1"), "{text}");
        // A later run of the failed case decides its verdict.
        let retry = chunk(&[("B", "b2", "OK")]);
        let (ok, text) = summarize(
            &dir,
            &[
                chunk(&[("A", "a1", "OK")]),
                chunk(&[("B", "b2", "ERROR")]),
                retry,
            ],
        );
        assert!(ok, "{text}");
        assert!(text.contains("OK 2 / ERROR 0"), "{text}");
    }

    #[test]
    fn listed_tester_bugs_pass_loudly_and_nothing_else_does() {
        let dir = setup("summary-known");
        let (ok, text) = summarize(
            &dir,
            &[chunk(&[("A", "a1", "OK")]), chunk(&[("C", "c1", "ERROR")])],
        );
        assert!(ok, "{text}");
        assert!(
            text.contains("OK 1 / ERROR 1"),
            "the error is still an error: {text}"
        );
        assert!(
            text.contains("known tester bugs: 1, unexplained errors: 0"),
            "{text}"
        );
        assert!(text.contains("!!! KNOWN TESTER BUG"), "{text}");
        // Another case of the same file is not covered.
        let (ok, text) = summarize(
            &dir,
            &[chunk(&[("C", "c1", "ERROR"), ("C", "c2", "ERROR")])],
        );
        assert!(!ok && text.contains("!!! FAILED: file C: c2"), "{text}");
    }

    #[test]
    fn a_chunk_without_its_report_or_with_other_counts_fails_the_run() {
        let dir = setup("summary-broken");
        // The tool died after two cases: no report.
        let died = "file A\n    a1   OK\n    a2   OK\n".to_string();
        let (ok, text) = summarize(&dir, &[died]);
        assert!(!ok && text.contains("no test report"), "{text}");
        // A report that counts a case the log does not show as such.
        let mut lying = chunk(&[("A", "a1", "OK")]);
        lying = lying.replace("OK(1) / ERROR(0)", "OK(1) / ERROR(1)");
        let (ok, text) = summarize(&dir, &[lying]);
        assert!(!ok && text.contains("BROKEN LOG"), "{text}");
    }
}
