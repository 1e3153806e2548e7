//! The datapath under faults, through the real `ferroflowd` and `ferroflowctl`:
//! - a stalled worker (one thread stopped with ptrace): port changes fail in bounded time
//!   with the worker-timeout error and are undone; once it runs again the port set is
//!   consistent and traffic flows;
//! - a stalled vhost-user peer (it sends a message header and never the payload, holding
//!   the vhost-events thread in a read): removing its port returns at once, the other ports
//!   keep forwarding, and SIGTERM still ends the process;
//! - SIGKILL with a server-mode vhost port, then a restart on the same config: the stale
//!   socket is removed and a guest-side peer connects; a port that cannot start is reported
//!   and the switch runs with the others; a socket another process serves is refused.

mod common;
mod mgmt;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap; testpmd's below
// carries the same.

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use mgmt::{config, ctl, eventually, port_toml, Daemon};
use serde_json::Value;

/// A port change a stalled worker never acknowledges must fail within this.
const CHANGE_BOUND: Duration = Duration::from_secs(5);

fn tap(name: &str, dev: u32, iface: &str, ofport: u32) -> String {
    port_toml(name, &format!("net_tap{dev},iface={iface}"), ofport)
}

/// The names in `ferroflowctl --json ports` of the ports the datapath runs (they have a
/// device), sorted.
fn port_names(server: &str) -> Vec<String> {
    listed(server, true)
}

/// The names in `ferroflowctl --json ports`, sorted: all of them, or those with a device.
fn listed(server: &str, running_only: bool) -> Vec<String> {
    let (code, out, err) = ctl(server, &["--json", "ports"]);
    assert_eq!(code, 0, "ferroflowctl ports: {out}{err}");
    let v: Value = serde_json::from_str(&out).expect("ports json");
    let mut names: Vec<String> = v
        .as_array()
        .expect("a list of ports")
        .iter()
        .filter(|p| !running_only || p["device"].as_str().is_some_and(|d| !d.is_empty()))
        .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    names.sort();
    names
}

/// The thread of `pid` whose name is `comm` (DPDK 22.11 names its worker threads
/// `rte-worker-N`, later versions `lcore-worker-N`).
fn thread_id(pid: u32, comm: &str) -> i32 {
    let mut seen = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("task list") {
        let task = task.unwrap().path();
        let name = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        if name.trim() == comm {
            return task.file_name().unwrap().to_str().unwrap().parse().unwrap();
        }
        seen.push(name.trim().to_owned());
    }
    panic!("no thread {comm:?} in process {pid}: {seen:?}");
}

/// One thread stopped under ptrace (the rest of the process runs on), by
/// `tests/common/stall_thread.py`; let go when dropped (its stdin closes).
struct StoppedThread(std::process::Child);

impl StoppedThread {
    fn stop(tid: i32) -> StoppedThread {
        use std::io::BufRead;
        let mut child = std::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/common/stall_thread.py"
            ))
            .arg(tid.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 tests/common/stall_thread.py");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            format!("stopped {tid}"),
            "stall_thread.py failed"
        );
        StoppedThread(child)
    }
}

impl Drop for StoppedThread {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

const OF_TARGET: &str = "tcp:127.0.0.1:16652";

fn ofctl(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("timeout")
        .args(["60", "ovs-ofctl", "-O", "OpenFlow13"])
        .args(args)
        .output()
        .expect("ovs-ofctl (apt-get install openvswitch-common)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// Whether `from` pings `ip`.
fn pings(ns: &Netns, ip: &str) -> bool {
    ns.exec(&format!("ping -c 2 -i 0.2 -W 1 {ip}"))
        .status
        .success()
}

#[test]
fn a_stalled_worker_fails_port_changes_in_bounded_time_and_nothing_breaks() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("dpf-stall");
    let socket = dir.path("api.sock");
    let server = format!("unix:{}", socket.display());
    let cfg = dir.path("ff.toml");
    let mut ports = tap("a", 0, "ffdf-a", 1) + &tap("b", 1, "ffdf-b", 2);
    ports += &port_toml("spare", "net_null0,no-rx=1", 3);
    let mut text = config("ff-t-dpf-stall", &socket, None, &ports);
    text += &format!("\n[openflow]\nlisten = [\"p{OF_TARGET}\"]\n");
    std::fs::write(&cfg, text).unwrap();
    let d = Daemon::start(&cfg, &server, 60.0);
    let (a, b) = (Netns::new("ffdf-a"), Netns::new("ffdf-b"));
    for (ns, ifname, ip) in [
        (&a, "ffdf-a", "198.18.9.1/24"),
        (&b, "ffdf-b", "198.18.9.2/24"),
    ] {
        wait_for_interface(ifname);
        ns.adopt(ifname, ip);
    }
    assert!(pings(&a, "198.18.9.2"), "a reaches b before the stall");

    let worker = thread_id(d.pid(), "rte-worker-1");
    let stopped = StoppedThread::stop(worker);

    let start = Instant::now();
    let (code, out, err) = ctl(
        &server,
        &[
            "port",
            "add",
            "x",
            "--devargs",
            "net_null1,no-rx=1",
            "--ofport",
            "7",
        ],
    );
    let took = start.elapsed();
    assert_ne!(code, 0, "port add succeeded with a stopped worker: {out}");
    eprintln!(
        "port add with a stopped worker failed after {took:?}: {}",
        err.trim()
    );
    assert!(took < CHANGE_BOUND, "port add took {took:?}");
    assert!(
        err.contains("did not acknowledge") && err.contains("lcore 1"),
        "the error names the stalled worker: {err}"
    );

    let start = Instant::now();
    let (code, out, err) = ctl(&server, &["port", "remove", "spare"]);
    let took = start.elapsed();
    assert_ne!(
        code, 0,
        "port remove succeeded with a stopped worker: {out}"
    );
    eprintln!(
        "port remove with a stopped worker failed after {took:?}: {}",
        err.trim()
    );
    assert!(took < CHANGE_BOUND, "port remove took {took:?}");
    assert!(err.contains("did not acknowledge"), "{err}");
    assert_eq!(
        port_names(&server),
        ["a", "b", "spare"],
        "while stalled: the add withdrawn, the removal undone"
    );

    // A barrier cannot be promised while a worker is stopped: the BARRIER after
    // ovs-ofctl's FLOW_MOD gets an error (OFPBRC_EPERM) in bounded time instead of a
    // reply (ovs-ofctl ends on any answer to its barrier, so the log shows it), and a
    // gRPC flow change, which promises the same, fails with UNAVAILABLE.
    let start = Instant::now();
    let (_, text) = ofctl(&["add-flow", OF_TARGET, "table=9,priority=1,actions=drop"]);
    let took = start.elapsed();
    eprintln!("barrier with a stopped worker: {took:?} {}", text.trim());
    assert!(took < CHANGE_BOUND, "the barrier took {took:?}");
    assert!(
        d.log_text().contains("BARRIER refused"),
        "the barrier was answered with a stopped worker:\n{}",
        d.log_text()
    );
    let start = Instant::now();
    let (code, out, err) = ctl(
        &server,
        &["flows", "add", "table=9,priority=3,actions=drop"],
    );
    let took = start.elapsed();
    eprintln!(
        "gRPC flow add with a stopped worker: {took:?} {}",
        err.trim()
    );
    assert_ne!(
        code, 0,
        "a flow change promised with a stopped worker: {out}"
    );
    assert!(err.contains("did not move to it"), "{err}");
    assert!(took < CHANGE_BOUND, "the flow change took {took:?}");
    let (code, status, err) = ctl(&server, &["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        status.contains("STUCK"),
        "status shows the stuck worker:\n{status}"
    );

    drop(stopped);
    let (ok, text) = ofctl(&["add-flow", OF_TARGET, "table=9,priority=2,actions=drop"]);
    assert!(ok, "a barrier once the worker runs again: {text}");
    let (code, status, err) = ctl(&server, &["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(!status.contains("STUCK"), "{status}");
    let pid = d.pid();
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "ferroflowd survived"
    );
    assert!(
        pings(&a, "198.18.9.2"),
        "a reaches b once the worker runs again"
    );
    assert_eq!(port_names(&server), ["a", "b", "spare"]);
    // Port changes work again; the withdrawn port is closed once the worker let it go.
    let (code, out, err) = ctl(
        &server,
        &[
            "port",
            "add",
            "y",
            "--devargs",
            "net_null2,no-rx=1",
            "--ofport",
            "8",
        ],
    );
    assert_eq!(code, 0, "port add after the stall: {out}{err}");
    assert_eq!(port_names(&server), ["a", "b", "spare", "y"]);
    eventually(Duration::from_secs(10), "the withdrawn port closed", || {
        let log = d.log_text();
        (log.contains("withdrawn port released by every worker") && log.contains("port closed"))
            .then_some(())
    });
    assert!(pings(&b, "198.18.9.1"), "b reaches a");
    let status = d.kill("TERM");
    assert!(status.success(), "exit after SIGTERM: {status}");
}

/// A vhost-user front end that connects to nothing: it serves `path`, accepts the switch's
/// connection, sends the header of VHOST_USER_GET_FEATURES with an 8-byte payload announced
/// and never sends the payload, holding the connection open: DPDK's vhost-events thread
/// stays in its read.
fn stalled_vhost_peer(path: &Path) -> std::thread::JoinHandle<()> {
    let listener = UnixListener::bind(path).expect("bind the peer socket");
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("the switch connects");
        // request 1 (GET_FEATURES), flags: version 1, size 8: the payload never comes.
        let mut header = Vec::new();
        for v in [1u32, 1, 8] {
            header.extend_from_slice(&v.to_le_bytes());
        }
        conn.write_all(&header).unwrap();
        std::thread::sleep(Duration::from_secs(90));
        drop(conn);
    })
}

#[test]
fn a_stalled_vhost_peer_blocks_neither_port_removal_nor_traffic_nor_exit() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("dpf-vhost");
    let socket = dir.path("api.sock");
    let server = format!("unix:{}", socket.display());
    let peer = dir.path("peer.sock");
    let _peer = stalled_vhost_peer(&peer);
    let cfg = dir.path("ff.toml");
    let mut ports = tap("a", 0, "ffdv-a", 1) + &tap("b", 1, "ffdv-b", 2);
    ports += &port_toml(
        "vm",
        &format!("net_vhost0,iface={},client=1", peer.display()),
        3,
    );
    std::fs::write(&cfg, config("ff-t-dpf-vhost", &socket, None, &ports)).unwrap();
    let d = Daemon::start(&cfg, &server, 60.0);
    let (a, b) = (Netns::new("ffdv-a"), Netns::new("ffdv-b"));
    for (ns, ifname, ip) in [
        (&a, "ffdv-a", "198.18.10.1/24"),
        (&b, "ffdv-b", "198.18.10.2/24"),
    ] {
        wait_for_interface(ifname);
        ns.adopt(ifname, ip);
    }
    assert_eq!(port_names(&server), ["a", "b", "vm"]);
    assert!(pings(&a, "198.18.10.2"), "a reaches b");
    // Give the events thread time to get into its read.
    std::thread::sleep(Duration::from_millis(500));

    let start = Instant::now();
    let (code, out, err) = ctl(&server, &["port", "remove", "vm"]);
    let took = start.elapsed();
    assert_eq!(code, 0, "port remove: {out}{err}");
    eprintln!("port remove beside a stalled vhost peer took {took:?}");
    assert!(took < CHANGE_BOUND, "port remove took {took:?}");
    assert_eq!(port_names(&server), ["a", "b"]);
    assert!(pings(&a, "198.18.10.2"), "a still reaches b");
    assert!(pings(&b, "198.18.10.1"), "b still reaches a");
    // The API answers while the close is stuck.
    let start = Instant::now();
    let (code, out, err) = ctl(
        &server,
        &[
            "port",
            "add",
            "n",
            "--devargs",
            "net_null0,no-rx=1",
            "--ofport",
            "9",
        ],
    );
    assert_eq!(code, 0, "port add beside the stuck close: {out}{err}");
    assert!(start.elapsed() < CHANGE_BOUND);

    let pid = d.pid();
    let start = Instant::now();
    run(&format!("kill -TERM {pid}"));
    let gone = |pid: u32| {
        // A zombie (exited, not yet reaped by the test) counts as gone.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |s| s.split_whitespace().nth(2) == Some("Z"))
    };
    while !gone(pid) && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = start.elapsed();
    eprintln!("SIGTERM with a port stuck closing: gone after {took:?}");
    if !gone(pid) && std::env::var_os("FF_DEBUG_STACKS").is_some() {
        let out = sh(&format!(
            "gdb -p {pid} -batch -ex 'thread apply all bt' 2>&1"
        ));
        eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    }
    assert!(
        gone(pid),
        "SIGTERM did not end ferroflowd with a port stuck closing:\n{}",
        d.log_text()
    );
    assert!(
        d.log_text().contains("not closed by the deadline"),
        "the datapath gave up on the stuck port:\n{}",
        d.log_text()
    );
}

fn vhost_server_port(name: &str, sock: &Path, ofport: u32) -> String {
    port_toml(
        name,
        &format!("net_vhost0,iface={}", sock.display()),
        ofport,
    )
}

/// `dpdk-testpmd` as the guest side of a vhost-user port: one `net_virtio_user` on `sock`,
/// bounded in time, on CPU 0 (ferroflowd's worker runs on CPU 1).
fn guest(dir: &TempDir, sock: &Path) -> std::process::Child {
    Command::new("timeout")
        .args([
            "-s",
            "INT",
            "20",
            "dpdk-testpmd",
            "--lcores",
            "0@0,1@0",
            "-n",
            "1",
        ])
        .args(["--no-pci", "--in-memory", "--single-file-segments"])
        .args(["--file-prefix", "ff-t-dpf-guest", "--socket-limit", "256"])
        .arg("--vdev")
        .arg(format!("net_virtio_user0,path={},queues=1", sock.display()))
        .args(["--", "--forward-mode=txonly", "--stats-period", "1"])
        .args(["--total-num-mbufs=4096"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.path("testpmd.out")).unwrap())
        .stderr(std::fs::File::create(dir.path("testpmd.err")).unwrap())
        .spawn()
        .expect("dpdk-testpmd (apt-get install dpdk)")
}

fn link_up(server: &str, name: &str) -> Option<bool> {
    let (code, out, _) = ctl(server, &["--json", "ports"]);
    if code != 0 {
        return None;
    }
    let v: Value = serde_json::from_str(&out).ok()?;
    let p = v.as_array()?.iter().find(|p| p["name"] == name)?.clone();
    p["link_up"].as_bool()
}

#[test]
fn after_sigkill_the_stale_vhost_socket_goes_and_a_guest_reconnects() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("dpf-restart");
    let socket = dir.path("api.sock");
    let server = format!("unix:{}", socket.display());
    let vm = dir.path("vm.sock");
    let cfg = dir.path("ff.toml");
    let mut ports = vhost_server_port("vm", &vm, 1);
    ports += &port_toml("sink", "net_null0,no-rx=1", 2);
    // A driver that does not exist: reported, and the switch runs without it.
    ports += &port_toml("broken", "net_nosuchdriver0,x=1", 3);
    std::fs::write(&cfg, config("ff-t-dpf-restart", &socket, None, &ports)).unwrap();

    let d = Daemon::start(&cfg, &server, 60.0);
    assert_eq!(port_names(&server), ["sink", "vm"], "{}", d.log_text());
    assert_eq!(
        listed(&server, false),
        ["broken", "sink", "vm"],
        "the failed port stays configured, down"
    );
    assert_eq!(link_up(&server, "broken"), Some(false));
    assert!(
        d.log_text().contains("port could not be started") && d.log_text().contains("broken"),
        "the failed port is reported:\n{}",
        d.log_text()
    );
    assert!(vm.exists(), "the server socket is made");
    let status = d.kill("KILL");
    assert!(!status.success());
    assert!(vm.exists(), "SIGKILL leaves the socket file behind");
    let _ = std::fs::remove_file(&socket);

    let d = Daemon::start(&cfg, &server, 60.0);
    assert!(
        d.log_text().contains("removed a stale vhost-user socket"),
        "{}",
        d.log_text()
    );
    assert_eq!(port_names(&server), ["sink", "vm"], "{}", d.log_text());
    assert_eq!(link_up(&server, "vm"), Some(false), "no guest yet");

    let mut testpmd = guest(&dir, &vm);
    eventually(Duration::from_secs(15), "the guest connects", || {
        link_up(&server, "vm").filter(|up| *up)
    });
    let rx = eventually(Duration::from_secs(10), "the guest's frames arrive", || {
        let (_, out, _) = ctl(&server, &["--json", "ports"]);
        let v: Value = serde_json::from_str(&out).ok()?;
        let p = v.as_array()?.iter().find(|p| p["name"] == "vm")?.clone();
        let rx = p["counters"]["rx_packets"].as_u64()?;
        (rx > 0).then_some(rx)
    });
    assert!(rx > 0);
    // SIGTERM to `timeout`, which passes it on: killing `timeout` itself would leave
    // the busy-polling testpmd running.
    common::run(&format!("kill -TERM {}", testpmd.id()));
    let _ = testpmd.wait();
    let _ = testpmd.wait();

    // A second switch on the same socket path while the first serves it: refused, named.
    let cfg2 = dir.path("ff2.toml");
    let socket2 = dir.path("api2.sock");
    let server2 = format!("unix:{}", socket2.display());
    let mut ports2 = vhost_server_port("vm", &vm, 1);
    ports2 += &port_toml("sink", "net_null0,no-rx=1", 2);
    let mut c2 = config("ff-t-dpf-second", &socket2, None, &ports2);
    c2 += "\n[datapath]\nidle_sleep_us = 500\n";
    std::fs::write(&cfg2, c2).unwrap();
    let d2 = Daemon::start(&cfg2, &server2, 30.0);
    assert_eq!(port_names(&server2), ["sink"], "{}", d2.log_text());
    assert!(
        d2.log_text().contains("served by another process"),
        "{}",
        d2.log_text()
    );
    assert!(vm.exists(), "the live socket was left alone");
    assert!(d2.kill("TERM").success());
    assert!(d.kill("TERM").success());
}
