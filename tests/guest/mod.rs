//! QEMU guests for the vhost-user and soak tests: the small guest that
//! ../shared/guest/build-guest.sh builds, booted by run-guest.sh (software emulation
//! here: /dev/kvm cannot boot it) on a vhost-user NIC, optionally with a QMP monitor
//! to reset it as a hypervisor does. Stopped by PID when dropped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{sh, TempDir};

/// Guests are built once per machine (about 5 s) and cached.
pub const GUEST_CACHE: &str = "/var/lib/ferroflow/guest";

/// The guest with ethtool and tcpdump (multiqueue and capture tests); its own cache,
/// so the plain guest stays small.
pub const GUEST_TOOLS_CACHE: &str = "/var/lib/ferroflow/guest-tools";

/// ../shared/guest beside the repository, or $FERROFLOW_GUEST_TOOLS (a git
/// worktree lives elsewhere).
pub fn guest_tools() -> PathBuf {
    let dir = std::env::var_os("FERROFLOW_GUEST_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/guest"));
    assert!(
        dir.join("run-guest.sh").exists(),
        "THE GUEST TOOLS ARE MISSING: {} (shared/ must be checked out beside the repository, \
         or set FERROFLOW_GUEST_TOOLS)",
        dir.display()
    );
    dir
}

/// Builds the plain guest into [`GUEST_CACHE`] (a no-op when it is there).
pub fn build_guest() {
    build_guest_in(GUEST_CACHE, "");
}

/// Builds a guest with `extra_bins` (busybox-less tools such as ethtool) into `dir`,
/// reusing the kernel package the plain guest downloaded (no second download).
pub fn build_guest_in(dir: &str, extra_bins: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let mut cmd = Command::new(guest_tools().join("build-guest.sh"));
    cmd.arg(dir).env("EXTRA_BINS", extra_bins);
    if dir != GUEST_CACHE {
        let deb = std::fs::read_dir(format!("{GUEST_CACHE}/.dl"))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "deb"));
        if let Some(deb) = deb {
            cmd.env("KERNEL_DEB", deb);
        }
    }
    let build = cmd.output().expect("build-guest.sh");
    assert!(
        build.status.success(),
        "build-guest.sh: {}",
        String::from_utf8_lossy(&build.stderr)
    );
}

/// How a guest boots; `Boot::default()` is the plain guest on one queue pair, QEMU
/// serving the vhost-user socket, no monitor, ending by itself after 170 s.
pub struct Boot<'a> {
    /// The built guest ([`GUEST_CACHE`] or [`GUEST_TOOLS_CACHE`]).
    pub dir: &'a str,
    /// Queue pairs; more than one: one vCPU per queue pair and multiqueue virtio-net.
    pub queues: u32,
    /// true: QEMU serves the socket (the switch's client mode); false: the switch
    /// serves it and QEMU connects.
    pub qemu_server: bool,
    /// QEMU ends by itself after this many seconds.
    pub limit_s: u64,
    /// A QMP monitor beside the console ([`Guest::monitor`]), and a guest reboot
    /// resets the machine as a hypervisor does (run-guest.sh passes -no-reboot,
    /// under which a reboot would end QEMU).
    pub monitor: bool,
    /// More environment for run-guest.sh.
    pub env: &'a [(&'a str, &'a str)],
}

impl Default for Boot<'_> {
    fn default() -> Self {
        Boot {
            dir: GUEST_CACHE,
            queues: 1,
            qemu_server: true,
            limit_s: 170,
            monitor: false,
            env: &[],
        }
    }
}

/// One running guest: its console in a file, its QMP socket beside it when asked for.
/// Stopped by PID (SIGTERM to run-guest.sh, which stops QEMU) if still running when
/// dropped.
pub struct Guest {
    child: Option<Child>,
    pub console: PathBuf,
    pub qmp: PathBuf,
    pub name: String,
}

impl Guest {
    /// Boots guest `name` on vhost-user socket `sock`, running `script` (busybox sh)
    /// after every boot (a reset boots the guest again and runs it again).
    #[allow(clippy::too_many_arguments)]
    pub fn boot(
        work: &TempDir,
        name: &str,
        sock: &Path,
        mac: &str,
        ip: &str,
        script: &str,
        how: &Boot,
    ) -> Guest {
        let console = work.path(&format!("{name}.log"));
        let qmp = work.path(&format!("{name}.qmp"));
        let cmd_file = work.path(&format!("{name}.sh"));
        std::fs::write(&cmd_file, script).unwrap();
        let mut cmd = Command::new(guest_tools().join("run-guest.sh"));
        cmd.args(["-d", how.dir]);
        let mut extra = Vec::new();
        if how.queues == 1 {
            let side = if how.qemu_server { "-N" } else { "-n" };
            cmd.args([side, sock.to_str().unwrap(), "-M", mac]);
        } else {
            // run-guest.sh has no multiqueue option: the NIC comes whole from
            // QEMU_EXTRA (the guest calls the first NIC eth0 all the same).
            // vectors=0 as run-guest.sh sets under TCG (MSI-X crashes QEMU 7.2 there).
            let q = how.queues;
            extra.push(format!(
                "-smp {q} -chardev socket,id=mq0,path={},server=on,wait=off \
                 -netdev vhost-user,id=mqn0,chardev=mq0,queues={q} \
                 -device virtio-net-pci,netdev=mqn0,mac={mac},mq=on,vectors=0",
                sock.display()
            ));
        }
        if how.monitor {
            extra.push(format!(
                "-action reboot=reset -qmp unix:{},server=on,wait=off",
                qmp.display()
            ));
        }
        if !extra.is_empty() {
            cmd.env("QEMU_EXTRA", extra.join(" "));
        }
        cmd.args(["-i", ip, "-t", &how.limit_s.to_string()])
            .args(["-f", cmd_file.to_str().unwrap()])
            .args(["-o", console.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(work.path(&format!("{name}.err"))).unwrap());
        for (k, v) in how.env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .expect("run-guest.sh (apt-get install qemu-system-x86)");
        let g = Guest {
            child: Some(child),
            console,
            qmp,
            name: name.to_owned(),
        };
        g.wait_path(sock, Duration::from_secs(30), "the vhost-user socket");
        if how.monitor {
            g.wait_path(&g.qmp, Duration::from_secs(30), "QEMU's QMP socket");
        }
        g
    }

    fn wait_path(&self, p: &Path, limit: Duration, what: &str) {
        let deadline = Instant::now() + limit;
        while !p.exists() {
            assert!(
                Instant::now() < deadline,
                "guest {}: {what} never appeared: {p:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.console).unwrap_or_default()
    }

    /// Waits for `marker` on the console; fails if QEMU ends first or `limit` passes.
    pub fn wait_for(&mut self, marker: &str, limit: Duration) -> String {
        self.wait_for_count(marker, 1, limit)
    }

    /// Waits until `marker` has appeared `n` times on the console (each boot prints
    /// its markers again); fails if QEMU ends first or `limit` passes.
    pub fn wait_for_count(&mut self, marker: &str, n: usize, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let t = self.text();
            if t.matches(marker).count() >= n {
                return t;
            }
            let ended = self.child.as_mut().unwrap().try_wait().unwrap();
            assert!(
                ended.is_none() && Instant::now() < deadline,
                "guest {}: {marker} seen {} of {n} times ({}):\n{t}",
                self.name,
                t.matches(marker).count(),
                if ended.is_some() {
                    "QEMU ended"
                } else {
                    "timed out"
                }
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the guest to power off (its script ended) and returns its console;
    /// fails if it exits with an error or does not finish within `limit`.
    pub fn finish(&mut self, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        let mut child = self.child.take().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let t = self.text();
                assert!(
                    status.success(),
                    "guest {} exited with {status}:\n{t}",
                    self.name
                );
                return t;
            }
            if Instant::now() > deadline {
                let _ = sh(&format!("kill -TERM {}", child.id()));
                let _ = child.wait();
                panic!("guest {} did not finish:\n{}", self.name, self.text());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A QMP session with this guest's QEMU (booted with `monitor: true`).
    pub fn monitor(&self) -> Qmp {
        Qmp::connect(&self.qmp)
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // run-guest.sh forwards SIGTERM to QEMU and waits for it.
            let _ = sh(&format!("kill -TERM {}", c.id()));
            let _ = c.wait();
        }
    }
}

/// QEMU's JSON monitor: one command at a time, events skipped.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    fn connect(path: &Path) -> Qmp {
        let s = UnixStream::connect(path).unwrap_or_else(|e| panic!("QMP {path:?}: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut q = Qmp {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
        };
        let mut greeting = String::new();
        q.reader.read_line(&mut greeting).expect("QMP greeting");
        q.execute("qmp_capabilities");
        q
    }

    /// Runs `command` (no arguments); panics on an error reply.
    pub fn execute(&mut self, command: &str) {
        writeln!(self.writer, "{{\"execute\": \"{command}\"}}").expect("QMP write");
        loop {
            let mut line = String::new();
            let n = self
                .reader
                .read_line(&mut line)
                .unwrap_or_else(|e| panic!("QMP {command}: {e}"));
            assert!(n > 0, "QMP {command}: QEMU closed the monitor");
            let v: serde_json::Value = serde_json::from_str(&line).expect("QMP json");
            if v.get("event").is_some() {
                continue;
            }
            assert!(v.get("error").is_none(), "QMP {command}: {line}");
            return;
        }
    }
}
