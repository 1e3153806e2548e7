//! Shared by the datapath tests: a ferroflowd child process bounded in time,
//! network namespaces, pcap files. Everything a test creates is removed when
//! its guard drops, and datapath tests take a lock so that no two run at once
//! (the machines have two cores).
#![allow(dead_code)]

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod tunnel;
mod vnet;
// Each test binary uses a part of these.
#[allow(unused_imports)]
pub use tunnel::*;
#[allow(unused_imports)]
pub use vnet::*;

pub const FERROFLOWD: &str = env!("CARGO_BIN_EXE_ferroflowd");

/// The ferroflowctl binary. It is a package of its own (it builds without
/// DPDK), and cargo only builds and names (`CARGO_BIN_EXE_*`) the binaries of
/// the package whose tests run, so the first call builds it with the cargo
/// running these tests, in the same profile and target directory (a no-op
/// when it is up to date), and returns the path cargo reports; later calls
/// return the same path. A failed build fails the test with cargo's output.
pub fn ferroflowctl() -> &'static str {
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATH.get_or_init(build_ferroflowctl)
}

fn build_ferroflowctl() -> String {
    // This test binary is target/<profile dir>/deps/<name>; `debug` is the
    // directory of the `dev` and `test` profiles.
    let exe = std::env::current_exe().expect("current_exe");
    let profile = match exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
    {
        Some("debug") | None => "dev".to_owned(),
        Some(p) => p.to_owned(),
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
    let out = Command::new(cargo)
        .args([
            "build",
            "--locked",
            "-p",
            "ferroflowctl",
            "--bin",
            "ferroflowctl",
        ])
        .args([
            "--profile",
            &profile,
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::piped())
        .output()
        .expect("run cargo to build ferroflowctl");
    assert!(
        out.status.success(),
        "cargo build -p ferroflowctl failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "ferroflowctl")
        .find_map(|m| m["executable"].as_str().map(str::to_owned))
        .expect("cargo build -p ferroflowctl reported no ferroflowctl executable")
}

/// Fails the test with the reason when it cannot run as it must: these tests
/// need root for namespaces, taps and hugepages.
pub fn require_root() {
    let uid = fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("Uid:")
                .map(|v| v.split_whitespace().next().unwrap_or("").to_owned())
        })
        .unwrap_or_default();
    assert_eq!(
        uid, "0",
        "THIS TEST NEEDS ROOT (namespaces, tap devices, hugepages): run `./tests/run.sh` as root"
    );
}

/// Held while a busy-polling process runs: one at a time on this machine.
pub struct DatapathLock(File);

impl DatapathLock {
    pub fn take() -> DatapathLock {
        require_root();
        let f = File::create("/tmp/cpu.lock").expect("lock file");
        f.lock().expect("flock");
        DatapathLock(f)
    }
}

/// The `[eal]` section every test config uses: no PCI probing, its own file
/// prefix, in-memory, a memory cap.
pub fn eal_section(prefix: &str) -> String {
    format!(
        "[eal]\nlcores = \"0-1\"\nmemory_mb = 256\nfile_prefix = \"{prefix}\"\nin_memory = true\nextra_args = [\"--no-pci\"]\n"
    )
}

pub fn sh(cmd: &str) -> Output {
    Command::new("sh").arg("-c").arg(cmd).output().expect("sh")
}

/// Runs a command that must succeed.
pub fn run(cmd: &str) -> String {
    let out = sh(cmd);
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("ferroflow-test-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The path of a `unix:` gRPC listener in a ferroflowd config (`[grpc]` `listen = "unix:..."`).
fn grpc_unix_socket(config: &str) -> Option<PathBuf> {
    let grpc = &config[config.find("[grpc]")?..];
    let line = grpc
        .lines()
        .find(|l| l.trim_start().starts_with("listen"))?;
    let path = line.split_once("\"unix:")?.1.split('"').next()?;
    Some(PathBuf::from(path))
}

/// A ferroflowd child that stops by itself after `exit_after` seconds whatever
/// happens to the test, and is killed by PID if the guard drops first.
pub struct Ferroflowd {
    child: Option<Child>,
    pub dir: TempDir,
    pub log: PathBuf,
    pub stats: PathBuf,
}

impl Ferroflowd {
    pub fn start(tag: &str, config: &str, exit_after: f64) -> Ferroflowd {
        let dir = TempDir::new(&format!("{tag}-daemon"));
        let cfg = dir.path("ferroflow.toml");
        fs::write(&cfg, config).unwrap();
        let log = dir.path("ferroflowd.log");
        let stats = dir.path("stats.json");
        let child = Command::new(FERROFLOWD)
            .arg("--config")
            .arg(&cfg)
            .arg("--stats-file")
            .arg(&stats)
            .arg("--stats-interval")
            .arg("0.2")
            .arg("--exit-after")
            .arg(exit_after.to_string())
            .stdin(Stdio::null())
            .stdout(File::create(dir.path("stdout.log")).unwrap())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("spawn ferroflowd");
        let mut f = Ferroflowd {
            child: Some(child),
            dir,
            log,
            stats,
        };
        f.wait_until(Duration::from_secs(20), "the first stats report", |f| {
            f.stats.exists()
        });
        // The gRPC server starts beside the datapath, not before its first stats report: a
        // test that calls the API at once must find the socket listening.
        if let Some(sock) = grpc_unix_socket(config) {
            f.wait_until(Duration::from_secs(20), "the gRPC socket", |_| {
                sock.exists()
            });
        }
        f
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for `cond`, failing with the daemon's log if it never holds or the daemon exits.
    pub fn wait_until(&mut self, limit: Duration, what: &str, cond: impl Fn(&Ferroflowd) -> bool) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if cond(self) {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "ferroflowd exited ({status}) before {what}:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("timed out waiting for {what}:\n{}", self.log_text());
    }

    pub fn stats_json(&self) -> Value {
        let text = fs::read_to_string(&self.stats).expect("stats file");
        serde_json::from_str(&text).expect("stats json")
    }

    /// The port's entry in the stats file.
    pub fn port(stats: &Value, name: &str) -> Value {
        stats["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no port {name} in {stats}"))
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends SIGTERM and waits for a clean exit; returns the final stats.
    pub fn stop(mut self) -> Value {
        let pid = self.pid();
        run(&format!("kill -TERM {pid}"));
        let status = self.wait_exit(Duration::from_secs(20));
        assert!(
            status.success(),
            "ferroflowd exited with {status}:\n{}",
            self.log_text()
        );
        assert!(
            self.log_text().contains("stopped"),
            "no clean stop in log:\n{}",
            self.log_text()
        );
        self.stats_json()
    }

    /// Waits for the daemon to exit by itself (e.g. --exit-after).
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "ferroflowd did not exit:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Ferroflowd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            if std::thread::panicking() {
                eprintln!("--- ferroflowd log ---\n{}", self.log_text());
            }
        }
    }
}

/// A network namespace, deleted on drop.
pub struct Netns(pub String);

impl Netns {
    pub fn new(name: &str) -> Netns {
        let _ = sh(&format!("ip netns del {name} 2>/dev/null"));
        run(&format!("ip netns add {name}"));
        run(&format!("ip -n {name} link set lo up"));
        Netns(name.to_owned())
    }

    /// Moves a kernel interface into the namespace, gives it an address and
    /// brings it up, with IPv6 off so that only the test's traffic flows.
    pub fn adopt(&self, ifname: &str, cidr: &str) {
        run(&format!("ip link set {ifname} netns {}", self.0));
        run(&format!(
            "ip netns exec {} sysctl -qw net.ipv6.conf.{ifname}.disable_ipv6=1",
            self.0
        ));
        if !cidr.is_empty() {
            run(&format!("ip -n {} addr add {cidr} dev {ifname}", self.0));
        }
        run(&format!("ip -n {} link set {ifname} up", self.0));
    }

    pub fn exec(&self, cmd: &str) -> Output {
        sh(&format!("ip netns exec {} {cmd}", self.0))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = sh(&format!("ip netns del {}", self.0));
    }
}

/// Waits for a kernel interface (a tap made by ferroflowd) to appear.
pub fn wait_for_interface(ifname: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !Path::new(&format!("/sys/class/net/{ifname}")).exists() {
        assert!(
            Instant::now() < deadline,
            "interface {ifname} never appeared"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes frames as a pcap file (microsecond timestamps, Ethernet).
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut f = File::create(path).unwrap();
    let mut hdr = Vec::new();
    hdr.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    hdr.extend_from_slice(&2u16.to_le_bytes());
    hdr.extend_from_slice(&4u16.to_le_bytes());
    hdr.extend_from_slice(&0i32.to_le_bytes());
    hdr.extend_from_slice(&0u32.to_le_bytes());
    hdr.extend_from_slice(&65535u32.to_le_bytes());
    hdr.extend_from_slice(&1u32.to_le_bytes());
    f.write_all(&hdr).unwrap();
    for (i, fr) in frames.iter().enumerate() {
        let mut rec = Vec::new();
        rec.extend_from_slice(&(i as u32).to_le_bytes());
        rec.extend_from_slice(&0u32.to_le_bytes());
        rec.extend_from_slice(&(fr.len() as u32).to_le_bytes());
        rec.extend_from_slice(&(fr.len() as u32).to_le_bytes());
        rec.extend_from_slice(fr);
        f.write_all(&rec).unwrap();
    }
}

/// Reads the frames of a pcap file written by `write_pcap` or DPDK's net_pcap.
pub fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let b = fs::read(path).unwrap();
    assert!(b.len() >= 24, "pcap {path:?} too short");
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= b.len() {
        let caplen = u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16;
        if at + caplen > b.len() {
            break;
        }
        out.push(b[at..at + caplen].to_vec());
        at += caplen;
    }
    out
}

/// A UDP/IPv4 frame from `src` to `dst` MAC, padded to 60 bytes.
pub fn udp_frame(dst: [u8; 6], src: [u8; 6], sport: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    let ip = [
        0x45, 0, 0, 46, 0, 1, 0, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2,
    ];
    f.extend_from_slice(&ip);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&9u16.to_be_bytes());
    f.extend_from_slice(&26u16.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.resize(60, 0xab);
    f
}

/// `ovs-ofctl -O OpenFlow13 ARGS`, bounded by 60 s: whether it succeeded, and its stdout and
/// stderr together.
pub fn ofctl(args: &[&str]) -> (bool, String) {
    let out = Command::new("timeout")
        .args(["60", "ovs-ofctl", "-O", "OpenFlow13"])
        .args(args)
        .output()
        .expect("ovs-ofctl (apt-get install openvswitch-common)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// [`ofctl`] that must succeed: its output.
pub fn ofctl_ok(args: &[&str]) -> String {
    let (success, text) = ofctl(args);
    assert!(success, "ovs-ofctl {args:?} failed:\n{text}");
    text
}

/// The MAC address of `ifname` inside `ns` (tunnel tests: the peer's underlay MAC).
pub fn mac_in(ns: &Netns, ifname: &str) -> String {
    let out = ns.exec(&format!("cat /sys/class/net/{ifname}/address"));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The MAC `ns` resolved for `ip` on `dev` (tunnel tests: the switch's MAC on the
/// underlay, learned by the peer's ARP); panics if unresolved.
pub fn neighbour_mac_in(ns: &Netns, ip: &str, dev: &str) -> String {
    let neigh = String::from_utf8_lossy(&ns.exec(&format!("ip neigh show {ip} dev {dev}")).stdout)
        .into_owned();
    neigh
        .split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .unwrap_or_else(|| panic!("{} has not resolved {ip} on {dev}: {neigh}", ns.0))
        .to_owned()
}

/// `ferroflowctl` against one switch's gRPC socket, as an operator runs it: the
/// virtual-network tests' hands (vnet_profile, vnet_secgroups, vnet_metadata_nat).
pub struct Operator {
    /// `unix:PATH`, as `--server` takes it.
    pub server: String,
}

impl Operator {
    pub fn new(server: &str) -> Operator {
        Operator {
            server: server.to_owned(),
        }
    }

    /// (exit code, stdout, stderr) of `ferroflowctl --server S ARGS`.
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(ferroflowctl())
            .arg("--server")
            .arg(&self.server)
            .args(args)
            .output()
            .expect("run ferroflowctl");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Its stdout; the test fails with both outputs if it exits non-zero.
    pub fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "ferroflowctl {args:?}: {out}{err}");
        out
    }

    /// Its `--json` output, parsed.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_str(&self.ok(&a)).expect("json")
    }
}

/// `count` pings from `ns` to `dst` (0.2 s apart, waiting `wait_s` for each answer):
/// true if any was answered.
pub fn ping_from(ns: &Netns, dst: &str, count: u32, wait_s: u32) -> bool {
    ns.exec(&format!("ping -c {count} -i 0.2 -W {wait_s} {dst}"))
        .status
        .success()
}

/// Processes started in the background (servers in namespaces), killed by PID when
/// dropped.
#[derive(Default)]
pub struct Background(pub Vec<u32>);

impl Drop for Background {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = sh(&format!("kill {pid} 2>/dev/null"));
        }
    }
}
/// The hosts of the tunnel tests (tests/tunnels.rs, tests/tunnels_flow.rs): `remote`, a
/// namespace behind the uplink tap standing for the far host (its Linux `vxlan` devices
/// are the tunnel peers), and `inst`, a namespace behind another tap standing for an
/// instance, with the overlay's MTU (docs/tunnels.md: the underlay's 1500 less 50).
pub struct TunnelHosts {
    pub remote: Netns,
    pub inst: Netns,
    /// The uplink tap's name (in `remote`).
    pub uplink: String,
    /// The instance tap's name (in `inst`).
    pub inst_if: String,
}

impl TunnelHosts {
    /// `{tag}-remote` takes `uplink` with `remote_cidr`, `{tag}-inst` takes `inst_if` with
    /// `inst_cidr` and MTU 1450; both taps are ferroflowd's (waited for).
    pub fn new(
        tag: &str,
        uplink: &str,
        remote_cidr: &str,
        inst_if: &str,
        inst_cidr: &str,
    ) -> TunnelHosts {
        Self::with_inst_mtu(tag, uplink, remote_cidr, inst_if, inst_cidr, 1450)
    }

    /// [`TunnelHosts::new`] with the instance's MTU `inst_mtu` (Geneve options take room
    /// beyond the 50 bytes).
    pub fn with_inst_mtu(
        tag: &str,
        uplink: &str,
        remote_cidr: &str,
        inst_if: &str,
        inst_cidr: &str,
        inst_mtu: u32,
    ) -> TunnelHosts {
        let remote = Netns::new(&format!("{tag}-remote"));
        let inst = Netns::new(&format!("{tag}-inst"));
        wait_for_interface(uplink);
        wait_for_interface(inst_if);
        remote.adopt(uplink, remote_cidr);
        inst.adopt(inst_if, inst_cidr);
        run(&format!(
            "ip -n {} link set {inst_if} mtu {inst_mtu}",
            inst.0
        ));
        TunnelHosts {
            remote,
            inst,
            uplink: uplink.to_owned(),
            inst_if: inst_if.to_owned(),
        }
    }

    /// A Linux `vxlan` device `dev` in `remote`: VNI `vni` from `local` to ferroflowd's
    /// 192.0.2.1 on UDP `dst_port` over the uplink, with the overlay address `addr`;
    /// `extra`: more `ip link add` options (`udpcsum`).
    pub fn linux_vxlan(
        &self,
        dev: &str,
        vni: u32,
        local: &str,
        dst_port: u16,
        addr: &str,
        extra: &str,
    ) {
        let (ns, up) = (&self.remote.0, &self.uplink);
        run(&format!(
            "ip -n {ns} link add {dev} type vxlan id {vni} local {local} remote 192.0.2.1 dstport {dst_port} dev {up} {extra}"
        ));
        run(&format!("ip -n {ns} addr add {addr} dev {dev}"));
        run(&format!("ip -n {ns} link set {dev} up"));
    }

    /// tcpdump of the uplink's UDP in `remote` into `file` (stopped by [`Capture::stop`]).
    pub fn capture_underlay(&self, file: &Path) -> Capture {
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.remote.0,
                "timeout",
                "60",
                "tcpdump",
                "-nn",
                "-U",
            ])
            .args(["--immediate-mode", "-i", &self.uplink, "-w"])
            .arg(file)
            .arg("udp")
            .stderr(Stdio::null())
            .spawn()
            .expect("tcpdump");
        // tcpdump has no "ready" signal on a file: give it a moment to open the interface.
        std::thread::sleep(Duration::from_millis(1000));
        Capture(Some(child))
    }
}

/// tcpdump of `ifname` in `ns` into `file`, only what `filter` (a pcap filter) takes
/// (stopped by [`Capture::stop`]): a capture beside [`TunnelHosts::capture_underlay`],
/// e.g. of an instance port.
pub fn capture_in(ns: &Netns, ifname: &str, file: &Path, filter: &str) -> Capture {
    let child = Command::new("ip")
        .args([
            "netns", "exec", &ns.0, "timeout", "60", "tcpdump", "-nn", "-U",
        ])
        .args(["--immediate-mode", "-i", ifname, "-w"])
        .arg(file)
        .arg(filter)
        .stderr(Stdio::null())
        .spawn()
        .expect("tcpdump");
    // tcpdump has no "ready" signal on a file: give it a moment to open the interface.
    std::thread::sleep(Duration::from_millis(1000));
    Capture(Some(child))
}

/// A capture process, stopped by SIGINT (so it flushes) by [`Capture::stop`] or on drop.
pub struct Capture(Option<Child>);

impl Capture {
    pub fn stop(mut self) {
        self.end();
    }

    fn end(&mut self) {
        if let Some(mut c) = self.0.take() {
            // Frames in flight still land in the file.
            std::thread::sleep(Duration::from_millis(500));
            let _ = sh(&format!("kill -INT {}", c.id()));
            let _ = c.wait();
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.end();
    }
}

/// Tunnel port `name` in the stats file's `tunnels`.
pub fn tunnel_status(stats: &Value, name: &str) -> Value {
    stats["tunnels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no tunnel {name} in {stats}"))
}

/// `ping -c N` from `ns` that every echo is answered. `-w` (a deadline) and not `-W`:
/// with `-W`, once one reply came iputils' ping waits only two round trips after its
/// last request ("otherwise ping waits for two RTTs", ping(8)), so a reply delayed past
/// that on this loaded 2-core machine counted as lost although it arrived. With `-w`
/// ping waits for all N replies, or the deadline. `diag` is printed on failure.
pub fn ping_all(ns: &Netns, dst: &str, n: u32, diag: impl Fn() -> String) {
    let out = ns.exec(&format!("ping -c {n} -i 0.2 -w 10 {dst}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(" {n} received")),
        "ping {dst} from {}: not every echo answered:\n{text}\n{}",
        ns.0,
        diag()
    );
}

/// `n_packets` of the first flow in an `ovs-ofctl dump-flows` output whose line contains
/// `needle`; panics (with the dump) if there is none.
pub fn n_packets(dump: &str, needle: &str) -> u64 {
    n_packets_all(dump, &[needle])
}

/// `n_packets` of the first flow whose dump line contains every one of `needles`.
pub fn n_packets_all(dump: &str, needles: &[&str]) -> u64 {
    let line = dump
        .lines()
        .find(|l| needles.iter().all(|n| l.contains(n)))
        .unwrap_or_else(|| panic!("no flow with {needles:?} in:\n{dump}"));
    line.split([',', ' '])
        .find_map(|w| w.strip_prefix("n_packets="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no n_packets in {line}"))
}

/// Two hosts in namespaces behind a running ferroflowd's tap ports `{prefix}-a` and
/// `{prefix}-b` (addresses `{net}.1/24` and `{net}.2/24`; each namespace is named after
/// its tap), with tests/conntrack/peer.py servers and clients in them: the conntrack
/// tests' traffic (conntrack_switch, conntrack_multiworker), and the hosts of
/// ovs_extensions. Servers are killed by PID when dropped.
pub struct TwoHosts {
    pub a: Netns,
    pub b: Netns,
    pub a_mac: String,
    pub b_mac: String,
    /// Server processes started in the namespaces.
    pub servers: Vec<u32>,
    /// Their output files (removed on drop).
    server_dirs: Vec<TempDir>,
}

/// tests/conntrack/peer.py, run by Debian's python3 (it has python3-scapy, which
/// tests/setup-host.sh installs).
pub const CT_PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conntrack/peer.py");
pub const CT_PYTHON: &str = "/usr/bin/python3";

impl TwoHosts {
    pub fn new(prefix: &str, net: &str) -> TwoHosts {
        let (ifa, ifb) = (format!("{prefix}-a"), format!("{prefix}-b"));
        let a = Netns::new(&ifa);
        let b = Netns::new(&ifb);
        for (ns, ifname, ip) in [
            (&a, &ifa, format!("{net}.1/24")),
            (&b, &ifb, format!("{net}.2/24")),
        ] {
            wait_for_interface(ifname);
            ns.adopt(ifname, &ip);
        }
        let (a_mac, b_mac) = (mac_in(&a, &ifa), mac_in(&b, &ifb));
        TwoHosts {
            a,
            b,
            a_mac,
            b_mac,
            servers: Vec::new(),
            server_dirs: Vec::new(),
        }
    }

    /// Starts `peer.py serve SPECS` in `which`'s namespace ('a' or 'b'; bounded to 90 s)
    /// and waits until it listens.
    pub fn serve(&mut self, which: char, specs: &str) {
        let ns = if which == 'a' { &self.a } else { &self.b };
        let dir = TempDir::new(&format!("ct-serve-{which}"));
        let ready = dir.path("ready");
        let out = ns.exec(&format!(
            "sh -c 'timeout 90 {CT_PYTHON} {CT_PEER} serve {specs} >{} 2>&1 & echo $!'",
            ready.display()
        ));
        let pid: u32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("server pid");
        self.servers.push(pid);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(&ready)
            .unwrap_or_default()
            .contains("ready")
        {
            assert!(Instant::now() < deadline, "server never ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.server_dirs.push(dir);
    }

    /// `peer.py ARGS` in `which`'s namespace (bounded to 30 s): its stdout.
    pub fn client(&self, which: char, args: &str) -> String {
        let ns = if which == 'a' { &self.a } else { &self.b };
        let out = ns.exec(&format!("timeout 30 {CT_PYTHON} {CT_PEER} {args}"));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for TwoHosts {
    fn drop(&mut self) {
        for pid in &self.servers {
            let _ = sh(&format!("kill {pid} 2>/dev/null"));
        }
    }
}
