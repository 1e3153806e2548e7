//! Bad configurations, devargs DPDK rejects, and a host without hugepages give
//! a clear error naming the cause, and exit 1 without a panic.

mod common;

use std::process::Command;

use common::*;

struct Outcome {
    code: Option<i32>,
    stderr: String,
}

fn ferroflowd(dir: &TempDir, config: &str, wrapper: &[&str]) -> Outcome {
    let path = dir.path("bad.toml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = if wrapper.is_empty() {
        Command::new(FERROFLOWD)
    } else {
        let mut c = Command::new(wrapper[0]);
        c.args(&wrapper[1..]).arg(FERROFLOWD);
        c
    };
    let out = cmd
        .arg("--config")
        .arg(&path)
        .arg("--exit-after")
        .arg("5")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "ferroflowd panicked:\n{stderr}"
    );
    Outcome {
        code: out.status.code(),
        stderr,
    }
}

fn good() -> String {
    eal_section("ff-t-cfg")
        + "\n[[ports]]\nname = \"n1\"\ndevargs = \"net_null0,no-rx=1\"\nofport = 1\n"
}

#[test]
fn syntax_and_validation_errors_name_the_place() {
    let dir = TempDir::new("cfg-syntax");
    let cases: &[(&str, String, &str)] = &[
        (
            "syntax",
            good().replace("ofport = 1", "ofport = = 1"),
            "bad.toml:",
        ),
        (
            "unknown key",
            good().replace("ofport = 1", "ofport = 1\nofprot = 2"),
            "unknown field `ofprot`",
        ),
        (
            "missing eal",
            "[bridge]\n".to_owned(),
            "missing field `eal`",
        ),
        (
            "duplicate ofport",
            good() + "\n[[ports]]\nname = \"n2\"\ndevargs = \"net_null1\"\nofport = 1\n",
            "ports[1].ofport: 1 is used by two ports",
        ),
        (
            "one lcore",
            good().replace("lcores = \"0-1\"", "lcores = \"0\""),
            "eal.lcores",
        ),
        (
            "bad dpid",
            good() + "[bridge]\ndatapath_id = \"zz\"\n",
            "bridge.datapath_id",
        ),
        (
            "eal override",
            good().replace("[\"--no-pci\"]", "[\"--no-pci\", \"--file-prefix=x\"]"),
            "eal.extra_args",
        ),
    ];
    for (what, config, expected) in cases {
        let o = ferroflowd(&dir, config, &[]);
        assert_eq!(o.code, Some(1), "{what}: {}", o.stderr);
        assert!(
            o.stderr.contains(expected),
            "{what}: expected {expected:?} in:\n{}",
            o.stderr
        );
        // ferroflowctl says the same without starting anything.
        let out = Command::new(common::ferroflowctl())
            .arg("check-config")
            .arg(dir.path("bad.toml"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{what}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(expected),
            "{what}: ferroflowctl"
        );
    }
    let missing = ferroflowd(&dir, &good(), &[]);
    assert_eq!(
        missing.code,
        Some(0),
        "the good config runs: {}",
        missing.stderr
    );
}

#[test]
fn check_config_accepts_a_good_file() {
    let dir = TempDir::new("cfg-check");
    let path = dir.path("good.toml");
    std::fs::write(&path, good()).unwrap();
    let out = Command::new(FERROFLOWD)
        .arg("--config")
        .arg(&path)
        .arg("--check-config")
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = Command::new(common::ferroflowctl())
        .args(["check-config", "--json"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ports"][0]["name"], "n1");
    assert!(v["eal_args"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "--no-pci"));
}

#[test]
fn devargs_dpdk_rejects_are_named() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("cfg-devargs");
    let bogus = good().replace("net_null0,no-rx=1", "net_bogus0,x=1");
    let o = ferroflowd(&dir, &bogus, &[]);
    assert_eq!(o.code, Some(1), "{}", o.stderr);
    assert!(
        o.stderr
            .contains("port \"n1\": DPDK rejected devargs \"net_bogus0,x=1\""),
        "{}",
        o.stderr
    );

    let long_tap = good().replace(
        "net_null0,no-rx=1",
        "net_tap0,iface=a-name-longer-than-ifnamsiz",
    );
    let o = ferroflowd(&dir, &long_tap, &[]);
    assert_eq!(o.code, Some(1), "{}", o.stderr);
    assert!(
        o.stderr
            .contains("DPDK rejected devargs \"net_tap0,iface=a-name-longer-than-ifnamsiz\""),
        "{}",
        o.stderr
    );
}

#[test]
fn a_port_that_cannot_start_is_named() {
    // A vhost-user server socket in a directory that does not exist: the
    // device probes, but starting it (which binds the socket) fails.
    let _lock = DatapathLock::take();
    let dir = TempDir::new("cfg-start");
    let config = good().replace(
        "net_null0,no-rx=1",
        "net_vhost0,iface=/nonexistent/dir/vm.sock",
    );
    let o = ferroflowd(&dir, &config, &[]);
    assert_eq!(o.code, Some(1), "{}", o.stderr);
    assert!(o.stderr.contains("port \"n1\""), "{}", o.stderr);
}

#[test]
fn missing_hugepage_mount_is_named() {
    // In a private mount namespace without hugetlbfs: the host's mounts are untouched.
    let _lock = DatapathLock::take();
    let dir = TempDir::new("cfg-huge");
    let wrapper = [
        "unshare",
        "-m",
        "sh",
        "-c",
        "umount -a -t hugetlbfs && exec \"$0\" \"$@\"",
    ];
    let o = ferroflowd(&dir, &good(), &wrapper);
    assert_eq!(o.code, Some(1), "{}", o.stderr);
    assert!(o.stderr.contains("no hugetlbfs is mounted"), "{}", o.stderr);
}
