//! Records the git commit the binaries are built from, for `--version`, and
//! compiles the gRPC API (`proto/ferroflow/v1`) with tonic and prost. protoc
//! comes from the protoc-bin-vendored crate, so no system package is needed.

use std::process::Command;

const PROTOS: &[&str] = &[
    "proto/ferroflow/v1/ports.proto",
    "proto/ferroflow/v1/bridge.proto",
    "proto/ferroflow/v1/flows.proto",
    "proto/ferroflow/v1/datapath.proto",
    "proto/ferroflow/v1/networks.proto",
];

fn main() {
    let git = Command::new("git")
        .args(["describe", "--always", "--dirty", "--tags"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=FERROFLOW_GIT={git}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");

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
