//! Records the git commit the binaries are built from, for `--version`, and
//! compiles the gRPC API (`proto/ferroflow/v1`) with tonic and prost. protoc
//! comes from the protoc-bin-vendored crate, so no system package is needed.

use std::path::Path;
use std::process::Command;

const PROTOS: &[&str] = &[
    "proto/ferroflow/v1/ports.proto",
    "proto/ferroflow/v1/bridge.proto",
    "proto/ferroflow/v1/flows.proto",
    "proto/ferroflow/v1/datapath.proto",
    "proto/ferroflow/v1/networks.proto",
    "proto/ferroflow/v1/tunnels.proto",
    "proto/ferroflow/v1/trace.proto",
    "proto/ferroflow/v1/rebalance.proto",
    "proto/ferroflow/v1/conntrack.proto",
    "proto/ferroflow/v1/secgroups.proto",
];

fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
}

fn main() {
    let described =
        git(&["describe", "--always", "--dirty", "--tags"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=FERROFLOW_GIT={described}");
    // The commit changes with HEAD and "dirty" with the index. The git
    // directory is asked for rather than assumed at ../../.git: in a worktree
    // .git is a file, and a path that does not exist would rerun this script
    // (and recompile the protos) on every build. Outside a checkout (a source
    // tarball, a Docker context without .git) there is nothing to watch.
    let mut watched = Vec::new();
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        watched.push(Path::new(&dir).join("HEAD"));
        watched.push(Path::new(&dir).join("index"));
    }
    // A commit moves the branch, not HEAD (a worktree keeps branches in the
    // common directory).
    if let (Some(common), Some(branch)) = (
        git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]),
        git(&["symbolic-ref", "-q", "HEAD"]),
    ) {
        watched.push(Path::new(&common).join(branch));
    }
    for p in watched.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", p.display());
    }

    if std::env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path().expect("vendored protoc");
        std::env::set_var("PROTOC", protoc);
    }
    for p in PROTOS {
        println!("cargo:rerun-if-changed={p}");
    }
    tonic_build::configure()
        // ferroflowctl --json prints the messages as they are.
        .type_attribute(".", "#[derive(serde::Serialize)]")
        .compile_protos(PROTOS, &["proto"])
        .expect("compile proto/ferroflow/v1");
}
