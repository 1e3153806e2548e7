//! ferroflowctl is installed on workstations that have no DPDK: the package
//! must not depend on it (directly or through the switch's crates), and the
//! binary must not link it.

use std::process::Command;

/// Crates that need DPDK, or that only make sense next to it.
const SWITCH_CRATES: &[&str] = &["dpdk", "dpdk-sys", "datapath", "pipeline", "ferroflow"];

#[test]
fn the_package_depends_on_no_dpdk_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
    let out = Command::new(cargo)
        .args(["tree", "--locked", "-p", "ferroflowctl", "--prefix", "none"])
        .args(["--edges", "normal,build", "--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        names.contains(&"ferroflow-api") && names.contains(&"ferroflow-doctor"),
        "cargo tree output is not what this test reads:\n{tree}"
    );
    let switch: Vec<&&str> = names
        .iter()
        .filter(|n| SWITCH_CRATES.contains(n) || n.contains("dpdk"))
        .collect();
    assert!(
        switch.is_empty(),
        "ferroflowctl depends on {switch:?}:\n{tree}"
    );
}

#[test]
fn the_binary_links_no_dpdk_library() {
    let bin = env!("CARGO_BIN_EXE_ferroflowctl");
    let out = Command::new("ldd").arg(bin).output().expect("run ldd");
    assert!(out.status.success(), "ldd {bin} failed");
    let libs = String::from_utf8_lossy(&out.stdout);
    assert!(
        !libs.contains("librte_") && !libs.contains("libdpdk"),
        "ferroflowctl links DPDK:\n{libs}"
    );
    let version = Command::new(bin).arg("--version").output().expect("run");
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(
        version.starts_with(&format!("ferroflowctl {} (", env!("CARGO_PKG_VERSION"))),
        "--version names the version and the commit: {version:?}"
    );
}
