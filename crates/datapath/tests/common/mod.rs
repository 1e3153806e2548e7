//! What the datapath crate's vdev tests share.

use dpdk::Eal;

/// EAL for a test process on `lcores` ("0", "0-1"): never probes PCI (this machine's own
/// NIC is a virtio PCI device), keeps its hugepage files in memory under its own
/// `--file-prefix`, and takes at most `socket_mb` MB of hugepages.
pub fn eal(program: &str, lcores: &str, prefix: &str, socket_mb: u32) -> Eal {
    let socket_mb = socket_mb.to_string();
    let args: Vec<String> = [
        program,
        "-l",
        lcores,
        "--no-pci",
        "--in-memory",
        "--file-prefix",
        prefix,
        "--socket-limit",
        &socket_mb,
        "--log-level",
        "lib.eal:error",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    Eal::init(&args).expect("EAL (hugepages: tests/setup-host.sh)")
}
