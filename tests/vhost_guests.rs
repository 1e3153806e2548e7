//! vhost-user ports with real QEMU guests (the small guest that
//! ../shared/guest/build-guest.sh builds, under software emulation here):
//! two guests ping each other and run iperf3 through ferroflowd with a
//! two-table pipeline; ferroflowd is restarted under them (SIGTERM, then
//! SIGKILL) during a 10/s ping stream and the stall is measured; a guest
//! reaches a namespace host behind a tap port.

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.

use std::path::PathBuf;
use std::process::Command;

use common::*;

fn guest_tools() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/guest");
    assert!(
        dir.join("e2e-pair.sh").exists(),
        "THE GUEST TOOLS ARE MISSING: {} (shared/ must be checked out beside the repository)",
        dir.display()
    );
    dir
}

fn wrapper() -> String {
    let w = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vhost/ferroflowd-vhost.sh");
    format!("{} $SOCKDIR client", w.display())
}

/// Guests are built once per machine (about 5 s) and cached.
const GUEST_CACHE: &str = "/var/lib/ferroflow/guest";

struct Results {
    text: String,
}

impl Results {
    fn line(&self, what: &str) -> &str {
        self.text
            .lines()
            .find(|l| l.starts_with(&format!("RESULT {what}:")))
            .unwrap_or_else(|| panic!("no RESULT {what}:\n{}", self.text))
    }

    /// (longest stall in seconds, lost replies) of the restart line.
    fn restart(&self) -> (f64, u64) {
        let l = self.line("restart");
        let stall = l
            .split("longest stall ")
            .nth(1)
            .and_then(|s| s.split('s').next())
            .and_then(|s| s.parse().ok())
            .unwrap();
        let lost = l
            .split(", ")
            .last()
            .and_then(|s| s.split(' ').next())
            .and_then(|s| s.parse().ok())
            .unwrap();
        (stall, lost)
    }
}

/// ../shared/guest/e2e-pair.sh with ferroflowd as the switch (client mode).
fn e2e_pair(tag: &str, env: &[(&str, &str)]) -> Results {
    let _lock = DatapathLock::take();
    let work = TempDir::new(tag);
    std::fs::create_dir_all(GUEST_CACHE).unwrap();
    let _ = std::os::unix::fs::symlink(GUEST_CACHE, work.path("guest"));
    let mut cmd = Command::new("timeout");
    cmd.args([
        "600",
        guest_tools().join("e2e-pair.sh").to_str().unwrap(),
        work.0.to_str().unwrap(),
        "-m",
        "client",
        "-t",
        "5",
        "-r",
    ])
    .args(["-S", &wrapper()])
    .env("FERROFLOWD", FERROFLOWD)
    .env("FF_PREFIX", format!("ff-t-{tag}"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("e2e-pair.sh");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let logs = std::fs::read_dir(work.path("run"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("switch"))
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    assert!(
        text.contains("E2E PASS"),
        "e2e-pair.sh failed:\n{text}\n--- switch logs ---\n{logs}"
    );
    Results { text }
}

#[test]
fn two_guests_ping_and_iperf_and_survive_a_sigterm_restart() {
    let r = e2e_pair("guests-term", &[]);
    assert!(r.line("ping").contains("ok"), "{}", r.text);
    assert!(r.line("iperf3").contains("Mbits/sec"), "{}", r.text);
    let (stall, lost) = r.restart();
    eprintln!("{}", r.text);
    // OVS-DPDK and testpmd stall about 1.1 s here; a restart must stay near that.
    assert!(
        stall < 3.0 && lost <= 3,
        "restart stall {stall}s, {lost} lost:\n{}",
        r.text
    );
}

#[test]
fn guests_survive_a_sigkill_of_the_switch() {
    let r = e2e_pair("guests-kill", &[("FF_STOP_SIGNAL", "KILL")]);
    let (stall, lost) = r.restart();
    eprintln!("{}", r.text);
    assert!(
        stall < 3.0 && lost <= 3,
        "restart after SIGKILL: stall {stall}s, {lost} lost:\n{}",
        r.text
    );
}

#[test]
fn a_guest_reaches_a_namespace_host_behind_a_tap_port() {
    let _lock = DatapathLock::take();
    let work = TempDir::new("guest-tap");
    std::fs::create_dir_all(GUEST_CACHE).unwrap();
    let build = Command::new(guest_tools().join("build-guest.sh"))
        .arg(GUEST_CACHE)
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "build-guest.sh: {}",
        String::from_utf8_lossy(&build.stderr)
    );
    let sock = work.path("vhu0.sock");
    // QEMU is the vhost-user server: it starts first and waits for the switch.
    let console = work.path("guest.log");
    let script = "n=0; until ping -c 1 -W 1 198.18.11.2 >/dev/null; do n=$((n+1)); [ $n -gt 30 ] && break; done; \
                  ping -c 3 -W 2 198.18.11.2";
    let mut guest = Command::new(guest_tools().join("run-guest.sh"))
        .args([
            "-d",
            GUEST_CACHE,
            "-N",
            sock.to_str().unwrap(),
            "-i",
            "198.18.11.1/24",
            "-t",
            "120",
        ])
        .args(["-c", script, "-o", console.to_str().unwrap()])
        .spawn()
        .expect("run-guest.sh (apt-get install qemu-system-x86)");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !sock.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "QEMU did not create its socket"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let mut config = eal_section("ff-t-guest-tap");
    config += &format!(
        "[datapath]\nidle_sleep_us = 100\n\n[[ports]]\nname = \"vm\"\ndevargs = \"net_vhost0,iface={},client=1\"\nofport = 1\n",
        sock.display()
    );
    config += "\n[[ports]]\nname = \"host\"\ndevargs = \"net_tap0,iface=ffgt-h\"\nofport = 2\n";
    let ff = Ferroflowd::start("guest-tap", &config, 150.0);
    let host = Netns::new("ffgt-h");
    wait_for_interface("ffgt-h");
    host.adopt("ffgt-h", "198.18.11.2/24");
    let status = guest.wait().unwrap();
    let out = std::fs::read_to_string(&console).unwrap_or_default();
    assert!(
        status.success() && out.contains("GUEST-RC=0"),
        "the guest did not reach the host:\n{out}\n{}",
        ff.log_text()
    );
    assert!(out.contains("3 packets received"), "{out}");
    drop(ff.stop());
}
