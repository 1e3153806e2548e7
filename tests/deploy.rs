//! The deployment material in deploy/ and the host checks: every example
//! configuration is valid, the systemd unit passes `systemd-analyze verify`,
//! the vfio script only prints in its (default) dry run and refuses what it
//! must, `ferroflowctl doctor` finds deliberate problems in a fake host tree
//! and passes on a good one, and the Kubernetes manifest has what the node
//! needs. Nothing here binds a device or starts DPDK.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{TempDir, FERROFLOWD};
use serde_json::Value;

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const NIC: &str = "0000:3b:00.0";

fn repo(p: &str) -> PathBuf {
    Path::new(REPO).join(p)
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The example configurations: deploy/*.toml, and every complete one
/// (with [eal] and [[ports]]) in the README's toml blocks.
fn example_configs(dir: &TempDir) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for e in fs::read_dir(repo("deploy")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            out.push((p.display().to_string(), p));
        }
    }
    // The README and the documentation under docs/ (where the README's reference moved).
    let mut pages = vec![repo("README.md")];
    let mut docs: Vec<PathBuf> = fs::read_dir(repo("docs"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    docs.retain(|p| p.extension().is_some_and(|x| x == "md"));
    docs.sort();
    pages.extend(docs);
    let mut n = 0;
    for page in &pages {
        let text = fs::read_to_string(page).unwrap();
        for block in text.split("```toml\n").skip(1) {
            let body = block.split("\n```").next().unwrap();
            if body.contains("[eal]") && body.contains("[[ports]]") {
                n += 1;
                let p = dir.path(&format!("readme-{n}.toml"));
                fs::write(&p, body).unwrap();
                out.push((format!("{} toml block {n}", page.display()), p));
            }
        }
    }
    assert!(
        n >= 2,
        "the README and docs/ should carry complete example configurations (found {n})"
    );
    out
}

#[test]
fn every_example_config_passes_check_config() {
    let dir = TempDir::new("deploy-examples");
    let configs = example_configs(&dir);
    assert!(configs.iter().any(|(n, _)| n.ends_with("hypervisor.toml")));
    for (name, path) in &configs {
        let o = Command::new(FERROFLOWD)
            .arg("--config")
            .arg(path)
            .arg("--check-config")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "ferroflowd --check-config {name}: {}",
            text(&o)
        );
        assert!(
            String::from_utf8_lossy(&o.stdout).contains(": ok ("),
            "{name}: {}",
            text(&o)
        );
        let o = Command::new(common::ferroflowctl())
            .args(["--json", "check-config"])
            .arg(path)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "ferroflowctl check-config {name}: {}",
            text(&o)
        );
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["ok"], true, "{name}");
        assert!(
            v["checks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["status"] != "fail"),
            "{name}: {v}"
        );
    }
}

#[test]
fn check_config_refuses_a_pci_port_eal_will_not_probe() {
    let dir = TempDir::new("deploy-nopci");
    let hv = fs::read_to_string(repo("deploy/hypervisor.toml")).unwrap();
    for (what, config, expected) in [
        (
            "--no-pci with a PCI port",
            hv.replace(
                &format!("extra_args = [\"-a\", \"{NIC}\"]"),
                "extra_args = [\"--no-pci\"]",
            ),
            "has --no-pci",
        ),
        (
            "PCI port not on the allowlist",
            hv.replace(
                &format!("extra_args = [\"-a\", \"{NIC}\"]"),
                "extra_args = [\"-a\", \"0000:5e:00.0\"]",
            ),
            "not on EAL's allowlist",
        ),
    ] {
        assert_ne!(config, hv, "{what}: the example changed; update this test");
        let p = dir.path("bad.toml");
        fs::write(&p, &config).unwrap();
        let o = Command::new(FERROFLOWD)
            .arg("--config")
            .arg(&p)
            .arg("--check-config")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{what}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(expected),
            "{what}: {}",
            text(&o)
        );
        let o = Command::new(common::ferroflowctl())
            .arg("check-config")
            .arg(&p)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{what}: {}", text(&o));
    }
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    // `systemd-analyze verify` checks that every Exec*= binary exists, so it
    // runs against a root holding the unit, the binaries under test at the
    // paths the unit names, /bin/sh and the host's system units (the unit's
    // dependencies). Without --root it fails only because ferroflowd is not
    // installed in /usr/bin here.
    let analyze = Command::new("systemd-analyze").arg("--version").output();
    assert!(
        analyze.is_ok_and(|o| o.status.success()),
        "systemd-analyze is missing: install the systemd package (tests/setup-host.sh does)"
    );
    let dir = TempDir::new("deploy-systemd");
    let root = &dir.0;
    for d in ["usr/bin", "etc/systemd/system", "usr/lib/systemd"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    symlink("usr/bin", root.join("bin")).unwrap();
    fs::copy(FERROFLOWD, root.join("usr/bin/ferroflowd")).unwrap();
    fs::copy(common::ferroflowctl(), root.join("usr/bin/ferroflowctl")).unwrap();
    fs::copy("/bin/sh", root.join("usr/bin/sh")).unwrap();
    let units = Path::new("/usr/lib/systemd/system");
    assert!(units.is_dir(), "no {} on this host", units.display());
    common::run(&format!(
        "cp -a {} {}",
        units.display(),
        root.join("usr/lib/systemd/").display()
    ));
    let verify = |unit_text: &str| {
        fs::write(
            root.join("etc/systemd/system/ferroflowd.service"),
            unit_text,
        )
        .unwrap();
        Command::new("systemd-analyze")
            .arg("verify")
            .arg(format!("--root={}", root.display()))
            .arg("--man=no")
            .arg("/etc/systemd/system/ferroflowd.service")
            .output()
            .unwrap()
    };
    let unit = fs::read_to_string(repo("deploy/systemd/ferroflowd.service")).unwrap();
    let o = verify(&unit);
    assert!(
        o.status.success() && o.stdout.is_empty() && o.stderr.is_empty(),
        "systemd-analyze verify: {}",
        text(&o)
    );
    // verify reports mistakes on stderr (and often still exits 0): a broken
    // copy must produce them, or the check above proves nothing.
    let broken = unit
        .replace("Type=exec", "Type=sometimes")
        .replace("RestartSec=1", "RestartSecs=1");
    let o = verify(&broken);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("RestartSecs") && err.contains("sometimes"),
        "a broken unit went unnoticed: {}",
        text(&o)
    );
    // What the unit promises: capabilities instead of root, hugepages, the
    // socket directory kept across restarts, a restart policy.
    for needed in [
        "User=ferroflow",
        "AmbientCapabilities=CAP_IPC_LOCK",
        "CapabilityBoundingSet=",
        "nr_hugepages",
        "RuntimeDirectory=ferroflow",
        "RuntimeDirectoryPreserve=yes",
        "Restart=on-failure",
        "--check-config",
    ] {
        assert!(unit.contains(needed), "the unit lacks {needed}");
    }
}

/// A host tree in a temporary directory: a NIC at 0000:3b:00.0 (interface
/// eth1 while on its kernel driver), IOMMU groups, 4 CPUs with 2-3 isolated,
/// hugepages, DPDK plugins and a socket directory.
struct FakeHost {
    dir: TempDir,
}

impl FakeHost {
    fn new(tag: &str) -> FakeHost {
        let dir = TempDir::new(tag);
        let h = FakeHost { dir };
        let dev = h.sys(&format!("bus/pci/devices/{NIC}"));
        for d in [
            "bus/pci/drivers/vfio-pci",
            "bus/pci/drivers/ixgbe",
            "kernel/iommu_groups/12/devices",
            "class/net",
            "devices/system/cpu",
            "module/vfio/parameters",
        ] {
            fs::create_dir_all(h.sys(d)).unwrap();
        }
        fs::create_dir_all(&dev).unwrap();
        fs::write(dev.join("class"), "0x020000\n").unwrap();
        fs::write(dev.join("vendor"), "0x8086\n").unwrap();
        symlink(h.sys("kernel/iommu_groups/12"), dev.join("iommu_group")).unwrap();
        symlink(
            &dev,
            h.sys(&format!("kernel/iommu_groups/12/devices/{NIC}")),
        )
        .unwrap();
        fs::write(h.sys("devices/system/cpu/online"), "0-3\n").unwrap();
        fs::write(h.sys("devices/system/cpu/isolated"), "2-3\n").unwrap();
        fs::write(
            h.sys("module/vfio/parameters/enable_unsafe_noiommu_mode"),
            "N\n",
        )
        .unwrap();
        fs::create_dir_all(h.proc("net")).unwrap();
        fs::write(
            h.proc("mounts"),
            "sysfs /sys sysfs rw 0 0\nnodev /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n",
        )
        .unwrap();
        h.hugepages(1024, 1024);
        fs::write(
            h.proc("net/route"),
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
             eth0\t00000000\t0102000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n",
        )
        .unwrap();
        fs::write(h.proc("net/ipv6_route"), "").unwrap();
        fs::create_dir_all(h.pmds()).unwrap();
        for p in [
            "mempool_ring",
            "bus_pci",
            "bus_vdev",
            "net_vhost",
            "net_tap",
            "net_null",
        ] {
            fs::write(h.pmds().join(format!("librte_{p}.so.23")), "").unwrap();
        }
        fs::create_dir_all(h.run()).unwrap();
        h.bind(Some("vfio-pci"));
        h
    }

    fn sys(&self, rel: &str) -> PathBuf {
        self.dir.path("sys").join(rel)
    }
    fn proc(&self, rel: &str) -> PathBuf {
        self.dir.path("proc").join(rel)
    }
    fn pmds(&self) -> PathBuf {
        self.dir.path("pmds")
    }
    fn run(&self) -> PathBuf {
        self.dir.path("run")
    }

    fn hugepages(&self, total: u32, free: u32) {
        fs::write(
            self.proc("meminfo"),
            format!("MemTotal: 16000000 kB\nHugePages_Total: {total}\nHugePages_Free: {free}\nHugepagesize: 2048 kB\n"),
        )
        .unwrap();
    }

    /// Puts the NIC on a driver; on a kernel driver it has the interface eth1
    /// (down unless `set_flags` says otherwise).
    fn bind(&self, driver: Option<&str>) {
        let dev = self.sys(&format!("bus/pci/devices/{NIC}"));
        let _ = fs::remove_file(dev.join("driver"));
        let _ = fs::remove_dir_all(self.sys("class/net/eth1"));
        if let Some(d) = driver {
            symlink(
                self.sys(&format!("bus/pci/drivers/{d}")),
                dev.join("driver"),
            )
            .unwrap();
            if d != "vfio-pci" {
                let n = self.sys("class/net/eth1");
                fs::create_dir_all(&n).unwrap();
                symlink(&dev, n.join("device")).unwrap();
                fs::write(n.join("flags"), "0x1002\n").unwrap();
            }
        }
    }

    fn env(&self, cmd: &mut Command) {
        cmd.env("FERROFLOW_SYSFS_ROOT", self.dir.path("sys"))
            .env("FERROFLOW_PROC_ROOT", self.dir.path("proc"))
            .env("FERROFLOW_DPDK_PMD_DIR", self.pmds());
    }

    /// deploy/hypervisor.toml with its sockets in this tree.
    fn config(&self, edit: impl Fn(String) -> String) -> PathBuf {
        let hv = fs::read_to_string(repo("deploy/hypervisor.toml")).unwrap();
        let hv = hv.replace("/run/ferroflow/", &format!("{}/", self.run().display()));
        let p = self.dir.path("ferroflow.toml");
        fs::write(&p, edit(hv)).unwrap();
        p
    }

    fn doctor(&self, config: &Path) -> (Option<i32>, Value, Output) {
        let mut c = Command::new(common::ferroflowctl());
        c.args(["--json", "doctor", "--config"]).arg(config);
        self.env(&mut c);
        let o = c.output().unwrap();
        let v: Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("doctor --json: {e}: {}", text(&o)));
        (o.status.code(), v, o)
    }

    fn bind_vfio(&self, args: &[&str]) -> Output {
        let mut c = Command::new("bash");
        c.arg(repo("deploy/bind-vfio.sh")).args(args);
        self.env(&mut c);
        c.output().unwrap()
    }

    /// Every path in the tree with its content or link target.
    fn snapshot(&self) -> BTreeMap<PathBuf, String> {
        fn walk(p: &Path, out: &mut BTreeMap<PathBuf, String>) {
            let m = fs::symlink_metadata(p).unwrap();
            if m.file_type().is_symlink() {
                out.insert(
                    p.into(),
                    format!("-> {}", fs::read_link(p).unwrap().display()),
                );
            } else if m.is_dir() {
                out.insert(p.into(), "dir".into());
                for e in fs::read_dir(p).unwrap() {
                    walk(&e.unwrap().path(), out);
                }
            } else {
                out.insert(p.into(), fs::read_to_string(p).unwrap_or_default());
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.dir.0, &mut out);
        out
    }
}

fn check<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {v:#}"))
}

#[test]
fn doctor_passes_a_ready_host() {
    let h = FakeHost::new("deploy-doctor-good");
    let config = h.config(|s| s);
    let (code, v, o) = h.doctor(&config);
    assert_eq!(code, Some(0), "{}", text(&o));
    assert_eq!(v["ok"], true);
    for c in v["checks"].as_array().unwrap() {
        assert_eq!(c["status"], "ok", "on a ready host: {c}");
        assert_eq!(c["fix"], "", "{c}");
    }
    for name in [
        "config",
        "config.pci",
        "hugepages.reserved",
        "hugepages.free",
        "hugepages.mount",
        "cpus.online",
        "cpus.isolated",
        "pci.uplink",
        "iommu",
        "vfio",
        "socket.vm1",
        "socket.vm2",
        "socket.grpc",
        "dpdk.plugins",
    ] {
        check(&v, name);
    }
}

#[test]
fn doctor_names_each_problem_and_its_fix() {
    let h = FakeHost::new("deploy-doctor-bad");
    // Problems one at a time: (what, setup, check, status, words in the fix).
    type Setup = Box<dyn Fn(&FakeHost) -> PathBuf>;
    let cases: Vec<(&str, Setup, &str, &str, &str)> = vec![
        (
            "vhost socket directory missing",
            Box::new(|h: &FakeHost| {
                h.config(|s| s.replace("/run/vm1.sock", "/run/missing/vm1.sock"))
            }),
            "socket.vm1",
            "fail",
            "mkdir -p",
        ),
        (
            "NIC on its kernel driver",
            Box::new(|h: &FakeHost| {
                h.bind(Some("ixgbe"));
                h.config(|s| s)
            }),
            "pci.uplink",
            "fail",
            "bind-vfio.sh 0000:3b:00.0 --apply",
        ),
        (
            "NIC missing",
            Box::new(|h: &FakeHost| h.config(|s| s.replace(NIC, "0000:5e:00.0"))),
            "pci.uplink",
            "fail",
            "lspci",
        ),
        (
            "IOMMU off",
            Box::new(|h: &FakeHost| {
                fs::remove_dir_all(h.sys("kernel/iommu_groups")).unwrap();
                fs::remove_file(h.sys(&format!("bus/pci/devices/{NIC}/iommu_group"))).unwrap();
                h.config(|s| s)
            }),
            "iommu",
            "fail",
            "intel_iommu=on",
        ),
        (
            "vfio-pci not loaded",
            Box::new(|h: &FakeHost| {
                fs::remove_dir_all(h.sys("bus/pci/drivers/vfio-pci")).unwrap();
                h.config(|s| s)
            }),
            "vfio",
            "fail",
            "modprobe vfio-pci",
        ),
        (
            "no hugepages",
            Box::new(|h: &FakeHost| {
                h.hugepages(0, 0);
                h.config(|s| s)
            }),
            "hugepages.reserved",
            "fail",
            "echo 512 > /proc/sys/vm/nr_hugepages",
        ),
        (
            "too few hugepages free",
            Box::new(|h: &FakeHost| {
                h.hugepages(1024, 100);
                h.config(|s| s)
            }),
            "hugepages.free",
            "warn",
            "nr_hugepages",
        ),
        (
            "no hugetlbfs",
            Box::new(|h: &FakeHost| {
                fs::write(h.proc("mounts"), "sysfs /sys sysfs rw 0 0\n").unwrap();
                h.config(|s| s)
            }),
            "hugepages.mount",
            "fail",
            "mount -t hugetlbfs",
        ),
        (
            "workers not isolated",
            Box::new(|h: &FakeHost| {
                fs::write(h.sys("devices/system/cpu/isolated"), "\n").unwrap();
                h.config(|s| s)
            }),
            "cpus.isolated",
            "warn",
            "isolcpus=2,3",
        ),
        (
            "an lcore the host does not have",
            Box::new(|h: &FakeHost| h.config(|s| s.replace("\"0,2-3\"", "\"0,2-5\""))),
            "cpus.online",
            "fail",
            "lcores",
        ),
        (
            "vhost PMD missing",
            Box::new(|h: &FakeHost| {
                fs::remove_file(h.pmds().join("librte_net_vhost.so.23")).unwrap();
                h.config(|s| s)
            }),
            "dpdk.plugins",
            "fail",
            "apt-get install librte-net-vhost23",
        ),
    ];
    for (what, setup, name, status, fix) in cases {
        let h2 = FakeHost::new("deploy-doctor-case");
        let config = setup(&h2);
        let (code, v, o) = h2.doctor(&config);
        let c = check(&v, name);
        assert_eq!(c["status"], status, "{what}: {c}");
        assert!(
            c["fix"].as_str().unwrap().contains(fix),
            "{what}: fix should say {fix:?}: {c}"
        );
        let failed = status == "fail";
        assert_eq!(code, Some(i32::from(failed)), "{what}: {}", text(&o));
        assert_eq!(v["ok"], !failed, "{what}");
        // The other checks still pass: one problem, one finding.
        let others: Vec<&Value> = v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["name"] != name && c["status"] != "ok")
            .collect();
        let expected_others = match what {
            // Workers on CPUs the host lacks are not isolated either.
            "an lcore the host does not have" => {
                others.len() == 1 && others[0]["name"] == "cpus.isolated"
            }
            _ => others.is_empty(),
        };
        assert!(expected_others, "{what}: other findings {others:?}");
    }
    // The same for people: a table and the fixes.
    let mut cmd = Command::new(common::ferroflowctl());
    cmd.args(["doctor", "--config"])
        .arg(h.config(|s| s.replace("/run/vm1.sock", "/run/missing/vm1.sock")));
    h.env(&mut cmd);
    let o = cmd.output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(out.contains("FAIL") && out.contains("socket.vm1"), "{out}");
    assert!(out.contains("fix socket.vm1: mkdir -p"), "{out}");
    // An unreadable configuration is a failed check, not a crash.
    let mut cmd = Command::new(common::ferroflowctl());
    cmd.args([
        "--json",
        "doctor",
        "--config",
        "/nonexistent/ferroflow.toml",
    ]);
    let o = cmd.output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(check(&v, "config")["status"], "fail");
}

#[test]
fn doctor_passes_this_host_for_a_vdev_config() {
    // The real host as tests/setup-host.sh leaves it (hugepages reserved and
    // mounted, DPDK's plugins installed), with virtual ports only.
    let dir = TempDir::new("deploy-doctor-host");
    let config = dir.path("ff.toml");
    fs::write(
        &config,
        format!(
            "{}[bridge]\ndatapath_id = \"0000000000000001\"\n[grpc]\nlisten = \"unix:{}/ff.sock\"\n\
             [[ports]]\nname = \"vm1\"\ndevargs = \"net_vhost0,iface={}/vm1.sock,client=1\"\nofport = 1\n\
             [[ports]]\nname = \"t\"\ndevargs = \"net_tap0,iface=ffdoc0\"\nofport = 2\n",
            common::eal_section("ff-doctor"),
            dir.0.display(),
            dir.0.display()
        ),
    )
    .unwrap();
    let o = Command::new(common::ferroflowctl())
        .args(["--json", "doctor", "--config"])
        .arg(&config)
        .env_remove("FERROFLOW_SYSFS_ROOT")
        .env_remove("FERROFLOW_PROC_ROOT")
        .env_remove("FERROFLOW_DPDK_PMD_DIR")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    for name in [
        "hugepages.reserved",
        "hugepages.mount",
        "dpdk.plugins",
        "socket.vm1",
    ] {
        assert_eq!(check(&v, name)["status"], "ok", "{v:#}");
    }
}

#[test]
fn bind_vfio_dry_run_prints_the_steps_and_changes_nothing() {
    let h = FakeHost::new("deploy-vfio-dry");
    h.bind(Some("ixgbe"));
    let before = h.snapshot();
    for target in ["eth1", NIC, "3b:00.0"] {
        let o = h.bind_vfio(&[target]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{target}: {}", text(&o));
        assert!(out.contains("dry run (nothing changed)"), "{out}");
        for step in [
            "modprobe vfio-pci".to_owned(),
            format!(
                "echo {NIC} > {}/driver/unbind",
                h.sys(&format!("bus/pci/devices/{NIC}")).display()
            ),
            "echo vfio-pci > ".to_owned(),
            format!("echo {NIC} > {}", h.sys("bus/pci/drivers_probe").display()),
        ] {
            assert!(
                out.contains(&step),
                "{target}: missing step {step:?} in\n{out}"
            );
        }
        assert!(out.contains("(eth1, driver ixgbe)"), "{out}");
        assert_eq!(h.snapshot(), before, "the dry run changed the tree");
    }
    // Already on vfio-pci: nothing to do.
    h.bind(Some("vfio-pci"));
    let o = h.bind_vfio(&[NIC]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("already bound"));
}

#[test]
fn bind_vfio_refuses_what_it_must() {
    type Setup = Box<dyn Fn(&FakeHost)>;
    let cases: Vec<(&str, &[&str], Setup, &str)> = vec![
        (
            "interface up",
            &["eth1"],
            Box::new(|h: &FakeHost| fs::write(h.sys("class/net/eth1/flags"), "0x1003\n").unwrap()),
            "eth1 (0000:3b:00.0) is up",
        ),
        (
            "IPv4 default route",
            &[NIC],
            Box::new(|h: &FakeHost| {
                let r = fs::read_to_string(h.proc("net/route")).unwrap();
                fs::write(
                    h.proc("net/route"),
                    r + "eth1\t00000000\t0102000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n",
                )
                .unwrap()
            }),
            "carries a default route",
        ),
        (
            "IPv6 default route",
            &["eth1"],
            Box::new(|h: &FakeHost| {
                fs::write(
                    h.proc("net/ipv6_route"),
                    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth1\n",
                )
                .unwrap()
            }),
            "carries a default route",
        ),
        (
            "not a network device",
            &[NIC],
            Box::new(|h: &FakeHost| {
                fs::write(h.sys(&format!("bus/pci/devices/{NIC}/class")), "0x060000\n").unwrap()
            }),
            "is not a network device",
        ),
        (
            "IOMMU off",
            &["eth1"],
            Box::new(|h: &FakeHost| fs::remove_dir_all(h.sys("kernel/iommu_groups")).unwrap()),
            "the IOMMU is off",
        ),
        (
            "no such interface",
            &["eth9"],
            Box::new(|_: &FakeHost| {}),
            "no network interface eth9",
        ),
        (
            "no such PCI device",
            &["0000:5e:00.0"],
            Box::new(|_: &FakeHost| {}),
            "no PCI device 0000:5e:00.0",
        ),
        (
            "a virtual interface",
            &["dummy0"],
            Box::new(|h: &FakeHost| fs::create_dir_all(h.sys("class/net/dummy0")).unwrap()),
            "not a PCI device",
        ),
        (
            "a bad name",
            &["eth1;reboot"],
            Box::new(|_: &FakeHost| {}),
            "neither an interface name nor a PCI address",
        ),
    ];
    for (what, args, setup, expected) in cases {
        let h = FakeHost::new("deploy-vfio-refuse");
        h.bind(Some("ixgbe"));
        setup(&h);
        let before = h.snapshot();
        // Refusals come before --apply matters; the dry run is what runs here.
        let o = h.bind_vfio(args);
        assert_eq!(o.status.code(), Some(1), "{what}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(expected),
            "{what}: expected {expected:?}: {}",
            text(&o)
        );
        assert_eq!(h.snapshot(), before, "{what}: changed the tree");
    }
    let h = FakeHost::new("deploy-vfio-usage");
    for args in [&[][..], &["eth1", "eth2"][..], &["--bogus"][..]] {
        let o = h.bind_vfio(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
    }
}

#[test]
fn bind_vfio_refuses_this_hosts_default_route_nic() {
    // The real host, dry run: the interface with the default route (here the
    // machine's own NIC) must be refused before anything is printed to run.
    let route = fs::read_to_string("/proc/net/route").unwrap();
    let Some(iface) = route.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&"00000000")).then(|| f[0].to_owned())
    }) else {
        eprintln!("SKIPPED bind_vfio_refuses_this_hosts_default_route_nic: this host has no IPv4 default route");
        return;
    };
    let o = Command::new("bash")
        .arg(repo("deploy/bind-vfio.sh"))
        .arg(&iface)
        .env_remove("FERROFLOW_SYSFS_ROOT")
        .env_remove("FERROFLOW_PROC_ROOT")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{iface}: {}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("default route") || err.contains("not a PCI device"),
        "{iface}: {}",
        text(&o)
    );
    assert!(o.stdout.is_empty(), "{}", text(&o));
}

#[test]
fn kubernetes_daemonset_has_what_the_node_needs() {
    let text = fs::read_to_string(repo("deploy/k8s/ferroflow-daemonset.yaml")).unwrap();
    let docs: Vec<serde_yaml_ng::Value> = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("YAML parses"))
        .collect();
    let ds = docs
        .iter()
        .find(|d| d["kind"] == "DaemonSet")
        .expect("a DaemonSet");
    assert_eq!(ds["apiVersion"], "apps/v1");
    let sel = &ds["spec"]["selector"]["matchLabels"];
    let tmpl = &ds["spec"]["template"];
    assert_eq!(
        &tmpl["metadata"]["labels"], sel,
        "the selector matches the pods"
    );
    let ann = &tmpl["metadata"]["annotations"];
    assert_eq!(ann["prometheus.io/scrape"], "true");
    assert_eq!(ann["prometheus.io/path"], "/metrics");
    let spec = &tmpl["spec"];
    assert_eq!(spec["hostNetwork"], true);
    let c = &spec["containers"][0];
    let metrics_port = ann["prometheus.io/port"].as_str().unwrap();
    assert!(
        c["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|p| p["containerPort"]
                .as_u64()
                .map(|n| n.to_string())
                .as_deref()
                == Some(metrics_port)),
        "the scrape port is a container port"
    );
    // The metrics port is the one the example config listens on.
    let hv = fs::read_to_string(repo("deploy/hypervisor.toml")).unwrap();
    assert!(
        hv.contains(&format!(":{metrics_port}\"")),
        "hypervisor.toml listens on {metrics_port}"
    );
    let res = &c["resources"];
    let huge = res["limits"]
        .as_mapping()
        .unwrap()
        .keys()
        .find_map(|k| k.as_str().filter(|k| k.starts_with("hugepages-")))
        .expect("a hugepages limit");
    assert_eq!(
        res["requests"][huge], res["limits"][huge],
        "hugepages: requests = limits"
    );
    let caps: Vec<&str> = c["securityContext"]["capabilities"]["add"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    for cap in ["IPC_LOCK", "NET_ADMIN"] {
        assert!(caps.contains(&cap), "capability {cap}");
    }
    // The vhost-user socket directory is the host's, where the config puts the sockets.
    let vol = spec["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["hostPath"]["path"] == "/run/ferroflow")
        .expect("a hostPath volume for /run/ferroflow");
    let mount = c["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| m["name"] == vol["name"])
        .expect("mounted");
    assert_eq!(mount["mountPath"], "/run/ferroflow");
    assert!(hv.contains("iface=/run/ferroflow/vm1.sock"));
    let hp = spec["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| {
            v["emptyDir"]["medium"]
                .as_str()
                .is_some_and(|m| m.starts_with("HugePages"))
        })
        .expect("a hugepages volume");
    assert!(c["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .any(|m| m["name"] == hp["name"]));
}

#[test]
fn libvirt_and_qemu_attach_vms_in_vhost_user_client_mode() {
    // ferroflowd connects (client=1), so QEMU must be the server, with shared memory.
    let hv = fs::read_to_string(repo("deploy/hypervisor.toml")).unwrap();
    assert!(hv.contains("net_vhost0,iface=/run/ferroflow/vm1.sock,client=1"));
    let xml = fs::read_to_string(repo("deploy/libvirt/vm-interface.xml")).unwrap();
    let o = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, xml.etree.ElementTree as E\n\
             d = E.parse(sys.argv[1]).getroot()\n\
             i = d.find('devices/interface')\n\
             s = i.find('source')\n\
             print(i.get('type'), s.get('type'), s.get('path'), s.get('mode'),\n\
                   d.find('memoryBacking/access').get('mode'))",
        )
        .arg(repo("deploy/libvirt/vm-interface.xml"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "the libvirt XML parses: {}\n{xml}",
        text(&o)
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "vhostuser unix /run/ferroflow/vm1.sock server shared"
    );
    let qemu = fs::read_to_string(repo("deploy/qemu-vhost-user.sh")).unwrap();
    for needed in [
        "share=on",
        "-chardev socket,id=vhost0,path=\"$sock\",server=on",
        "-netdev vhost-user,id=net0,chardev=vhost0",
        "/run/ferroflow/vm1.sock",
    ] {
        assert!(
            qemu.contains(needed),
            "the QEMU command line lacks {needed}"
        );
    }
    let o = Command::new("bash")
        .args(["-n"])
        .arg(repo("deploy/qemu-vhost-user.sh"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}
