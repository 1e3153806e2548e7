//! QEMU guests for the soak suite: the small guest that ../shared/guest/build-guest.sh
//! builds, booted by run-guest.sh (software emulation here: /dev/kvm cannot boot it),
//! on one vhost-user NIC that QEMU serves (the switch connects: client mode), with a
//! QMP monitor to reset it as a hypervisor does. Stopped by PID when dropped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{sh, TempDir};

/// Guests are built once per machine (about 5 s) and cached (the same cache as
/// tests/vhost_guests.rs).
pub const GUEST_CACHE: &str = "/var/lib/ferroflow/guest";

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

/// Builds the guest into [`GUEST_CACHE`] (a no-op when it is there).
pub fn build_guest() {
    std::fs::create_dir_all(GUEST_CACHE).unwrap();
    let build = Command::new(guest_tools().join("build-guest.sh"))
        .arg(GUEST_CACHE)
        .output()
        .expect("build-guest.sh");
    assert!(
        build.status.success(),
        "build-guest.sh: {}",
        String::from_utf8_lossy(&build.stderr)
    );
}

/// One running guest: its console in a file, its QMP socket beside it.
pub struct Guest {
    child: Option<Child>,
    pub console: PathBuf,
    pub qmp: PathBuf,
    pub name: String,
}

impl Guest {
    /// Boots guest `name` on vhost-user socket `sock` (QEMU serves it), running
    /// `script` (busybox sh) after every boot: a reset boots the guest again and runs
    /// it again (QEMU is told to reset on a guest reboot instead of exiting). QEMU
    /// ends by itself after `limit_s` seconds.
    pub fn boot(
        work: &TempDir,
        name: &str,
        sock: &Path,
        mac: &str,
        ip: &str,
        script: &str,
        limit_s: u64,
    ) -> Guest {
        let console = work.path(&format!("{name}.log"));
        let qmp = work.path(&format!("{name}.qmp"));
        let cmd_file = work.path(&format!("{name}.sh"));
        std::fs::write(&cmd_file, script).unwrap();
        let child = Command::new(guest_tools().join("run-guest.sh"))
            .args(["-d", GUEST_CACHE, "-N", sock.to_str().unwrap(), "-M", mac])
            .args(["-i", ip, "-t", &limit_s.to_string()])
            .args(["-f", cmd_file.to_str().unwrap()])
            .args(["-o", console.to_str().unwrap()])
            .env(
                "QEMU_EXTRA",
                format!(
                    "-action reboot=reset -qmp unix:{},server=on,wait=off",
                    qmp.display()
                ),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(work.path(&format!("{name}.err"))).unwrap())
            .spawn()
            .expect("run-guest.sh (apt-get install qemu-system-x86)");
        let g = Guest {
            child: Some(child),
            console,
            qmp,
            name: name.to_owned(),
        };
        g.wait_path(sock, Duration::from_secs(30), "QEMU's vhost-user socket");
        g.wait_path(&g.qmp, Duration::from_secs(30), "QEMU's QMP socket");
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

    /// A QMP session with this guest's QEMU.
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
