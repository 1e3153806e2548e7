//! Checks that a host can run ferroflowd with a given configuration, each with
//! the fix to apply. DPDK reports a missing hugepage mount, a NIC left on its
//! kernel driver or a missing PMD plugin late and vaguely (or, for a NIC on the
//! wrong driver, not at all: the port just does not exist); these checks name
//! the cause before EAL starts.
//!
//! `ferroflowctl doctor` prints all of them; `ferroflowd --check-config` and
//! `ferroflowctl check-config` fail on the configuration checks and report the
//! host checks. The host is read below a sysfs and a procfs root
//! (`FERROFLOW_SYSFS_ROOT`, `FERROFLOW_PROC_ROOT`) and DPDK's plugin directory
//! (`FERROFLOW_DPDK_PMD_DIR`), so that tests can point them at a fake tree.
//!
//! Nothing here links DPDK: the checks only read files, so `ferroflowctl`
//! runs them on a machine without it.

pub mod host;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ferroflow_config::{Config, DEFAULT_GRPC_SOCKET};
use serde::Serialize;

use crate::host::Hugepages;

/// Where Debian's DPDK 22.11 looks for PMD plugins (`RTE_EAL_PMD_PATH` in
/// `rte_build_config.h`); EAL loads every library there at start.
pub const DEFAULT_PMD_DIR: &str = "/usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One finding: what was checked, how it stands, and what to do about it.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub message: String,
    /// What to run or change; empty when the check passed.
    pub fix: String,
}

fn ok(name: impl Into<String>, message: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        status: Status::Ok,
        message: message.into(),
        fix: String::new(),
    }
}

fn warn(name: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        status: Status::Warn,
        message: message.into(),
        fix: fix.into(),
    }
}

fn fail(name: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        status: Status::Fail,
        message: message.into(),
        fix: fix.into(),
    }
}

/// The worst status among checks (Ok for none).
pub fn worst(checks: &[Check]) -> Status {
    checks.iter().map(|c| c.status).max().unwrap_or(Status::Ok)
}

/// Where the host's state is read from.
#[derive(Debug, Clone)]
pub struct Host {
    pub sysfs: PathBuf,
    pub procfs: PathBuf,
    pub pmd_dir: PathBuf,
}

impl Host {
    /// The real host, unless `FERROFLOW_SYSFS_ROOT`, `FERROFLOW_PROC_ROOT` or
    /// `FERROFLOW_DPDK_PMD_DIR` point elsewhere.
    pub fn from_env() -> Host {
        let var = |k: &str, d: &str| PathBuf::from(std::env::var_os(k).unwrap_or_else(|| d.into()));
        Host {
            sysfs: var("FERROFLOW_SYSFS_ROOT", "/sys"),
            procfs: var("FERROFLOW_PROC_ROOT", "/proc"),
            pmd_dir: var("FERROFLOW_DPDK_PMD_DIR", DEFAULT_PMD_DIR),
        }
    }

    fn sys(&self, rel: &str) -> PathBuf {
        self.sysfs.join(rel)
    }

    fn read_sys(&self, rel: &str) -> Option<String> {
        fs::read_to_string(self.sys(rel))
            .ok()
            .map(|s| s.trim().to_owned())
    }
}

/// A PCI address in the long form sysfs uses (`0000:3b:00.0`), if the devargs
/// name a PCI device.
pub fn pci_address(devargs: &str) -> Option<String> {
    let dev = devargs.split(',').next()?.trim().to_ascii_lowercase();
    let long = if dev.matches(':').count() == 1 {
        format!("0000:{dev}")
    } else {
        dev
    };
    let b = long.as_bytes();
    let hex = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_hexdigit);
    (b.len() == 12
        && hex(0..4)
        && b[4] == b':'
        && hex(5..7)
        && b[7] == b':'
        && hex(8..10)
        && b[10] == b'.'
        && (b'0'..=b'7').contains(&b[11]))
    .then_some(long)
}

/// The PCI allowlist (`-a`/`--allow`) in EAL arguments, as long addresses.
fn eal_allowlist(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let value = if a == "-a" || a == "--allow" {
            it.next().cloned()
        } else if let Some(v) = a.strip_prefix("--allow=") {
            Some(v.to_owned())
        } else {
            a.strip_prefix("-a")
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        if let Some(addr) = value.as_deref().and_then(pci_address) {
            out.push(addr);
        }
    }
    out
}

/// The vhost-user socket and mode of a `net_vhost` port.
fn vhost_socket(devargs: &str) -> Option<(String, bool)> {
    let mut parts = devargs.split(',');
    if !parts.next()?.trim().starts_with("net_vhost") {
        return None;
    }
    let mut iface = None;
    let mut client = false;
    for kv in parts {
        match kv.split_once('=') {
            Some(("iface", v)) => iface = Some(v.trim().to_owned()),
            Some(("client", v)) => client = v.trim() == "1",
            _ => {}
        }
    }
    Some((iface.unwrap_or_default(), client))
}

/// The PMD a virtual device's name asks for: `net_vhost0` -> `net_vhost`.
fn vdev_driver(device: &str) -> Option<String> {
    let d = device.trim_end_matches(|c: char| c.is_ascii_digit());
    if !d.starts_with("net_") {
        return None;
    }
    // net_virtio_user is one of the virtio PMD's devices.
    Some(if d == "net_virtio_user" {
        "net_virtio".into()
    } else {
        d.to_owned()
    })
}

/// Debian's package for a DPDK library: `net_vhost` -> `librte-net-vhost23`.
fn debian_package(driver: &str) -> String {
    let base = format!("librte-{}", driver.replace('_', "-"));
    if base.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{base}-23")
    } else {
        format!("{base}23")
    }
}

fn list(v: &[String]) -> String {
    v.join(", ")
}

/// Checks of the configuration against itself and what EAL will make of it:
/// a failure here means ferroflowd cannot work as configured on any host.
pub fn config_checks(config: &Config) -> Vec<Check> {
    let mut out = Vec::new();
    let extra = &config.eal.extra_args;
    let no_pci = extra.iter().any(|a| a == "--no-pci");
    let pci: Vec<(String, String)> = config
        .ports
        .iter()
        .filter_map(|p| pci_address(&p.devargs).map(|a| (p.name.clone(), a)))
        .collect();
    let allow = eal_allowlist(extra);
    if pci.is_empty() {
        if no_pci {
            out.push(ok(
                "config.pci",
                "no PCI ports; EAL probes no PCI device (--no-pci)",
            ));
        } else {
            out.push(warn(
                "config.pci",
                "no PCI ports, but without --no-pci EAL probes every PCI device a DPDK driver can take",
                "add \"--no-pci\" to [eal] extra_args",
            ));
        }
    } else if no_pci {
        out.push(fail(
            "config.pci",
            format!(
                "ports {} are PCI devices, but [eal] extra_args has --no-pci: EAL will not probe them",
                list(&pci.iter().map(|(n, a)| format!("{n} ({a})")).collect::<Vec<_>>())
            ),
            format!(
                "replace \"--no-pci\" in [eal] extra_args by {}",
                pci.iter()
                    .map(|(_, a)| format!("\"-a\", \"{a}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    } else if allow.is_empty() {
        out.push(warn(
            "config.pci",
            "no PCI allowlist: EAL probes every PCI device a DPDK driver can take, not only the ports'",
            format!(
                "add {} to [eal] extra_args",
                pci.iter()
                    .map(|(_, a)| format!("\"-a\", \"{a}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    } else {
        let missing: Vec<String> = pci
            .iter()
            .filter(|(_, a)| !allow.contains(a))
            .map(|(n, a)| format!("{n} ({a})"))
            .collect();
        if missing.is_empty() {
            out.push(ok(
                "config.pci",
                format!("PCI ports {} are on EAL's allowlist", list(&allow)),
            ));
        } else {
            out.push(fail(
                "config.pci",
                format!(
                    "ports {} are not on EAL's allowlist (-a {}): EAL will not probe them",
                    list(&missing),
                    list(&allow)
                ),
                "add \"-a\", \"ADDRESS\" to [eal] extra_args for each",
            ));
        }
    }
    for p in &config.ports {
        let Some((iface, _)) = vhost_socket(&p.devargs) else {
            continue;
        };
        let name = format!("config.vhost.{}", p.name);
        if iface.is_empty() {
            out.push(fail(
                name,
                format!("{:?} names no socket", p.devargs),
                "add iface=/run/ferroflow/NAME.sock to the devargs",
            ));
        } else if !iface.starts_with('/') {
            out.push(warn(
                name,
                format!("socket {iface:?} is relative to ferroflowd's working directory"),
                "use an absolute path (under /run/ferroflow)",
            ));
        }
    }
    out
}

/// Checks of the host for this configuration.
pub fn host_checks(config: &Config, host: &Host) -> Vec<Check> {
    let mut out = Vec::new();
    hugepages(config, host, &mut out);
    cpus(config, host, &mut out);
    pci_ports(config, host, &mut out);
    sockets(config, &mut out);
    plugins(config, host, &mut out);
    out
}

fn hugepages(config: &Config, host: &Host, out: &mut Vec<Check>) {
    if !config.eal.hugepages {
        out.push(ok(
            "hugepages",
            "not used ([eal] hugepages = false: ordinary memory, about half speed)",
        ));
        return;
    }
    let mounts = fs::read_to_string(host.procfs.join("mounts")).unwrap_or_default();
    let meminfo = fs::read_to_string(host.procfs.join("meminfo")).unwrap_or_default();
    let h = Hugepages::parse(&mounts, &meminfo);
    let want = u64::from(config.eal.memory_mb);
    // Without a hugepage size in meminfo, count in the usual 2 MB pages.
    let page_kb = if h.page_size_kb == 0 {
        2048
    } else {
        h.page_size_kb
    };
    let pages_for = |mb: u64| mb * 1024 / page_kb;
    if h.total_pages == 0 {
        out.push(fail(
            "hugepages.reserved",
            "no hugepages are reserved",
            format!(
                "echo {} > /proc/sys/vm/nr_hugepages (or hugepages={} on the kernel command line; deploy/systemd/ferroflowd.service reserves them)",
                pages_for(want).max(512),
                pages_for(want).max(512)
            ),
        ));
    } else {
        out.push(ok(
            "hugepages.reserved",
            format!("{} pages of {} kB reserved", h.total_pages, h.page_size_kb),
        ));
    }
    if h.total_pages > 0 && h.free_pages == 0 {
        out.push(fail(
            "hugepages.free",
            format!("none of the {} hugepages is free", h.total_pages),
            "reserve more (/proc/sys/vm/nr_hugepages) or stop what holds them (leftover files in the hugetlbfs mount?)",
        ));
    } else if h.total_pages > 0 && h.free_mb() < want {
        out.push(warn(
            "hugepages.free",
            format!(
                "{} MB of hugepages free, [eal] memory_mb allows {want} MB: DPDK may run short",
                h.free_mb()
            ),
            format!(
                "reserve at least {} pages (/proc/sys/vm/nr_hugepages), or lower memory_mb",
                h.total_pages - h.free_pages + pages_for(want)
            ),
        ));
    } else if h.total_pages > 0 {
        out.push(ok(
            "hugepages.free",
            format!("{} MB free, memory_mb is {want}", h.free_mb()),
        ));
    }
    if h.mounts.is_empty() {
        out.push(fail(
            "hugepages.mount",
            "no hugetlbfs is mounted",
            "mkdir -p /dev/hugepages && mount -t hugetlbfs nodev /dev/hugepages (systemd's dev-hugepages.mount does it at boot)",
        ));
    } else {
        out.push(ok(
            "hugepages.mount",
            format!("hugetlbfs at {}", list(&h.mounts)),
        ));
    }
}

/// The kernel's CPU list format (`0-3,8,10-11`), as in sysfs.
fn cpu_list(s: &str) -> Option<BTreeSet<u32>> {
    let mut out = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.parse::<u32>().ok()?..=b.parse::<u32>().ok()?),
            None => {
                out.insert(part.parse().ok()?);
            }
        }
    }
    Some(out)
}

fn cpus(config: &Config, host: &Host, out: &mut Vec<Check>) {
    let lcores = config.lcores();
    let workers: Vec<u32> = lcores.iter().skip(1).copied().collect();
    let set = |rel: &str| -> Option<BTreeSet<u32>> {
        let s = host.read_sys(rel)?;
        if s.is_empty() {
            return Some(BTreeSet::new());
        }
        cpu_list(&s)
    };
    let fmt = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    match set("devices/system/cpu/online") {
        Some(online) => {
            let offline: Vec<u32> = lcores
                .iter()
                .filter(|c| !online.contains(c))
                .copied()
                .collect();
            if offline.is_empty() {
                out.push(ok(
                    "cpus.online",
                    format!("lcores {} are online CPUs", config.eal.lcores),
                ));
            } else {
                out.push(fail(
                    "cpus.online",
                    format!(
                        "lcores {} are not online CPUs of this host (online: {}): EAL will not start",
                        fmt(&offline),
                        fmt(&online.iter().copied().collect::<Vec<_>>())
                    ),
                    "change [eal] lcores to CPUs this host has",
                ));
            }
        }
        None => out.push(warn(
            "cpus.online",
            "cannot read devices/system/cpu/online",
            "run on the host (with /sys mounted)",
        )),
    }
    let isolated = set("devices/system/cpu/isolated").unwrap_or_default();
    let shared: Vec<u32> = workers
        .iter()
        .filter(|c| !isolated.contains(c))
        .copied()
        .collect();
    if shared.is_empty() {
        out.push(ok(
            "cpus.isolated",
            format!("worker lcores {} are isolated", fmt(&workers)),
        ));
    } else {
        let w = fmt(&shared);
        out.push(warn(
            "cpus.isolated",
            format!(
                "worker lcores {w} are not isolated (isolated: {}): the kernel schedules other work on them, which costs latency and drops under load",
                if isolated.is_empty() { "none".into() } else { fmt(&isolated.iter().copied().collect::<Vec<_>>()) }
            ),
            format!("isolcpus={w} nohz_full={w} rcu_nocbs={w} on the kernel command line"),
        ));
    }
}

fn pci_ports(config: &Config, host: &Host, out: &mut Vec<Check>) {
    let pci: Vec<(String, String)> = config
        .ports
        .iter()
        .filter_map(|p| pci_address(&p.devargs).map(|a| (p.name.clone(), a)))
        .collect();
    if pci.is_empty() {
        return;
    }
    let mut need_vfio = false;
    for (name, addr) in &pci {
        let check = format!("pci.{name}");
        let dev = host.sys(&format!("bus/pci/devices/{addr}"));
        if !dev.exists() {
            out.push(fail(
                check,
                format!("no PCI device {addr} on this host"),
                "find the NIC's address with `lspci -D | grep -i ether` or `ethtool -i IFACE` and fix the port's devargs",
            ));
            continue;
        }
        let driver = fs::read_link(dev.join("driver"))
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
        let bind = format!("deploy/bind-vfio.sh {addr} --apply");
        match driver.as_deref() {
            Some("vfio-pci") => {
                need_vfio = true;
                out.push(ok(check, format!("{addr} is bound to vfio-pci")));
            }
            // Mellanox NICs stay on their kernel driver (DPDK's mlx PMDs are bifurcated).
            Some(d @ ("mlx4_core" | "mlx5_core")) => out.push(ok(
                check,
                format!("{addr} is on {d}, which DPDK's mlx PMD uses as it is"),
            )),
            Some(d @ ("uio_pci_generic" | "igb_uio")) => out.push(warn(
                check,
                format!(
                    "{addr} is bound to {d}: no IOMMU protection, and DPDK needs full root for it"
                ),
                bind,
            )),
            Some(d) => out.push(fail(
                check,
                format!("{addr} is bound to the kernel driver {d}: DPDK cannot use it"),
                bind,
            )),
            None => out.push(fail(check, format!("{addr} is bound to no driver"), bind)),
        }
        if !dev.join("iommu_group").exists() {
            need_vfio = true;
        }
    }
    if need_vfio {
        let groups = fs::read_dir(host.sys("kernel/iommu_groups"))
            .map(|d| d.count())
            .unwrap_or(0);
        let noiommu = host
            .read_sys("module/vfio/parameters/enable_unsafe_noiommu_mode")
            .is_some_and(|v| v == "Y" || v == "1");
        if groups > 0 {
            out.push(ok("iommu", format!("IOMMU on ({groups} groups)")));
        } else if noiommu {
            out.push(warn(
                "iommu",
                "no IOMMU; vfio runs in unsafe no-IOMMU mode (a device can DMA anywhere)",
                "enable VT-d/AMD-Vi in the firmware and intel_iommu=on iommu=pt (or amd_iommu=on) on the kernel command line",
            ));
        } else {
            out.push(fail(
                "iommu",
                "no IOMMU groups: the IOMMU is off, so vfio-pci cannot take the NIC",
                "enable VT-d/AMD-Vi in the firmware and add intel_iommu=on iommu=pt (or amd_iommu=on) to the kernel command line, then reboot",
            ));
        }
        if host.sys("bus/pci/drivers/vfio-pci").exists() {
            out.push(ok("vfio", "the vfio-pci driver is loaded"));
        } else {
            out.push(fail(
                "vfio",
                "the vfio-pci driver is not loaded",
                "modprobe vfio-pci && echo vfio-pci > /etc/modules-load.d/vfio-pci.conf",
            ));
        }
    }
}

/// Socket directories: vhost-user sockets (client mode: QEMU creates them and
/// ferroflowd connects; server mode: ferroflowd creates them) and the gRPC
/// socket.
fn sockets(config: &Config, out: &mut Vec<Check>) {
    for p in &config.ports {
        let Some((iface, client)) = vhost_socket(&p.devargs) else {
            continue;
        };
        if iface.is_empty() {
            continue;
        }
        let name = format!("socket.{}", p.name);
        let sock = Path::new(&iface);
        let dir = sock.parent().unwrap_or(Path::new("/"));
        match dir_problem(dir, !client) {
            Some(c) => out.push(Check { name, ..c }),
            None if client => match fs::symlink_metadata(sock) {
                Ok(m) if m.file_type().is_socket() => out.push(ok(
                    name,
                    format!("{iface}: QEMU's socket is there (client mode)"),
                )),
                Ok(_) => out.push(fail(
                    name,
                    format!("{iface} exists and is not a socket"),
                    format!("remove {iface}; QEMU creates the socket (-chardev socket,path={iface},server=on)"),
                )),
                Err(_) => out.push(ok(
                    name,
                    format!(
                        "{iface}: not there yet (client mode): ferroflowd connects once QEMU creates it"
                    ),
                )),
            },
            None => out.push(ok(
                name,
                format!("{}: ferroflowd creates {iface} (server mode)", dir.display()),
            )),
        }
    }
    let grpc = config
        .grpc
        .as_ref()
        .map(|g| g.listen.clone())
        .unwrap_or_else(|| format!("unix:{DEFAULT_GRPC_SOCKET}"));
    if let Some(path) = grpc.strip_prefix("unix:") {
        let dir = Path::new(path).parent().unwrap_or(Path::new("/"));
        match dir_problem(dir, true) {
            // ferroflowd makes the API socket's directory itself.
            Some(c) if !dir.exists() => out.push(ok(
                "socket.grpc",
                format!("{}: {} (ferroflowd creates it)", dir.display(), c.message),
            )),
            Some(c) => out.push(Check {
                name: "socket.grpc".into(),
                ..c
            }),
            None => out.push(ok(
                "socket.grpc",
                format!("{}: ferroflowd creates {path}", dir.display()),
            )),
        }
    }
}

/// What is wrong with a socket directory, if anything; `create`: ferroflowd
/// itself must create files there.
fn dir_problem(dir: &Path, create: bool) -> Option<Check> {
    let d = dir.display();
    let meta = match fs::metadata(dir) {
        Ok(m) => m,
        Err(_) => {
            return Some(fail(
                "",
                format!("directory {d} does not exist"),
                format!(
                    "mkdir -p {d} (deploy/systemd/ferroflowd.service makes /run/ferroflow with RuntimeDirectory=)"
                ),
            ))
        }
    };
    if !meta.is_dir() {
        return Some(fail(
            "",
            format!("{d} is not a directory"),
            "point the socket at a directory",
        ));
    }
    let mode = meta.permissions().mode();
    if mode & 0o002 != 0 && mode & 0o1000 == 0 {
        return Some(warn(
            "",
            format!(
                "{d} is writable by everyone (mode {:o}): anyone can replace the socket",
                mode & 0o7777
            ),
            format!("chmod 0770 {d} and give QEMU's group access (chgrp kvm {d})"),
        ));
    }
    if create {
        // Whether this process may create files there: try it.
        let probe = dir.join(format!(".ferroflow-doctor-{}", std::process::id()));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
        {
            Ok(_) => {
                let _ = fs::remove_file(&probe);
            }
            Err(e) => {
                return Some(fail(
                    "",
                    format!("cannot create files in {d}: {e}"),
                    format!("run ferroflowd as the owner of {d}, or chown it to ferroflowd's user"),
                ))
            }
        }
    }
    None
}

fn plugins(config: &Config, host: &Host, out: &mut Vec<Check>) {
    let dir = &host.pmd_dir;
    let present: BTreeSet<String> = match fs::read_dir(dir) {
        Ok(d) => d
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => {
            out.push(fail(
                "dpdk.plugins",
                format!("DPDK's plugin directory {} is missing", dir.display()),
                "apt-get install dpdk (or the librte-* packages of the drivers you use)",
            ));
            return;
        }
    };
    // Every DPDK app needs the ring mempool driver; each port its PMD.
    let mut need: BTreeSet<String> = BTreeSet::from(["mempool_ring".to_owned()]);
    for p in &config.ports {
        if pci_address(&p.devargs).is_some() {
            need.insert("bus_pci".into());
        } else if let Some(d) = vdev_driver(p.device_name()) {
            need.insert("bus_vdev".into());
            need.insert(d);
        }
    }
    let missing: Vec<&String> = need
        .iter()
        .filter(|d| {
            !present
                .iter()
                .any(|f| f.starts_with(&format!("librte_{d}.so")))
        })
        .collect();
    if missing.is_empty() {
        out.push(ok(
            "dpdk.plugins",
            format!(
                "{} in {}",
                need.iter().cloned().collect::<Vec<_>>().join(", "),
                dir.display()
            ),
        ));
    } else {
        out.push(fail(
            "dpdk.plugins",
            format!(
                "missing from {}: {}",
                dir.display(),
                missing
                    .iter()
                    .map(|d| d.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            format!(
                "apt-get install {}",
                missing
                    .iter()
                    .map(|d| debian_package(d))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        ));
    }
}

/// Loads the configuration and runs every check: the result of
/// `ferroflowctl doctor`.
pub fn diagnose(path: &Path, host: &Host) -> Vec<Check> {
    match Config::load(path) {
        Ok(config) => {
            let mut out = vec![ok(
                "config",
                format!("{}: valid, {} ports", path.display(), config.ports.len()),
            )];
            out.extend(config_checks(&config));
            out.extend(host_checks(&config, host));
            out
        }
        Err(e) => vec![fail(
            "config",
            e.to_string(),
            "fix the file where the message says",
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses() {
        assert_eq!(pci_address("0000:3b:00.0").as_deref(), Some("0000:3b:00.0"));
        assert_eq!(pci_address("3B:00.1,x=1").as_deref(), Some("0000:3b:00.1"));
        assert_eq!(pci_address("net_tap0,iface=a"), None);
        assert_eq!(pci_address("0000:3b:00.8"), None);
        let args: Vec<String> = [
            "-a",
            "0000:3b:00.0",
            "--allow=3c:00.1",
            "-a0000:5e:00.0,x=1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            eal_allowlist(&args),
            ["0000:3b:00.0", "0000:3c:00.1", "0000:5e:00.0"]
        );
    }

    #[test]
    fn drivers_and_packages() {
        assert_eq!(vdev_driver("net_vhost12").as_deref(), Some("net_vhost"));
        assert_eq!(
            vdev_driver("net_virtio_user0").as_deref(),
            Some("net_virtio")
        );
        assert_eq!(debian_package("net_vhost"), "librte-net-vhost23");
        assert_eq!(debian_package("net_e1000"), "librte-net-e1000-23");
        assert_eq!(
            vhost_socket("net_vhost0,iface=/run/ff/a.sock,client=1"),
            Some(("/run/ff/a.sock".into(), true))
        );
    }
}
