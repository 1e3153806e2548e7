//! vhost-user ports with real QEMU guests (the small guest that
//! ../shared/guest/build-guest.sh builds, under software emulation here):
//! two guests ping each other and run iperf3 through ferroflowd with a
//! two-table pipeline; ferroflowd is restarted under them (SIGTERM, then
//! SIGKILL) during a 10/s ping stream and the stall is measured; a guest
//! reaches a namespace host behind a tap port; a vhost-user port is added and
//! removed through ferroflowctl under running guests; a guest with two queue
//! pairs uses both and changes the count at runtime; with TSO (`tso=1`) a
//! guest's 64 KiB frames are cut to the MTU on a tap port or pass whole to a
//! guest that takes them, and are segmented in software for one that does not.

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

mod mgmt;

mod guest;
use guest::{
    build_guest, build_guest_in, guest_tools, Boot, Guest, GUEST_CACHE, GUEST_TOOLS_CACHE,
};

fn wrapper() -> String {
    let w = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vhost/ferroflowd-vhost.sh");
    format!("{} $SOCKDIR client", w.display())
}

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

/// While `guest` runs its script to the end: an iperf3 server (one test) in the namespace
/// `ns`, and a capture on its interface of the same name (`filter`: tcpdump options and
/// expression) into `pcap`. Returns the guest's console.
fn iperf3_server_and_capture(
    guest: &mut Guest,
    ns: &str,
    pcap: &std::path::Path,
    filter: &str,
) -> String {
    let exec = |cmd: &str| {
        Command::new("ip")
            .args(["netns", "exec", ns, "sh", "-c", cmd])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut server = exec("exec timeout 90 iperf3 -s -1");
    let mut capture = exec(&format!(
        "exec timeout 90 tcpdump -i {ns} -nn -s 0 -w {} {filter}",
        pcap.display()
    ));
    let text = guest.finish(Duration::from_secs(120));
    let _ = sh(&format!("kill -INT {}", capture.id()));
    let _ = capture.wait();
    let _ = sh(&format!("kill -TERM {}", server.id()));
    let _ = server.wait();
    text
}

/// A `[[ports]]` entry for a vhost-user client-mode port (QEMU serves `sock`):
/// device `net_vhost{index}`, OpenFlow port `index + 1`, `extra` devargs appended.
fn vhost_client_port(name: &str, index: u32, sock: &std::path::Path, extra: &str) -> String {
    mgmt::port_toml(
        name,
        &format!("net_vhost{index},iface={},client=1{extra}", sock.display()),
        index + 1,
    )
}

/// (transmitted, received) from a ping summary.
fn ping_summary(text: &str, prefix: &str) -> (u64, u64) {
    let l = text
        .lines()
        .find(|l| l.starts_with(prefix) && l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("no ping summary {prefix}:\n{text}"));
    let nums: Vec<u64> = l[prefix.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect();
    (nums[0], nums[1])
}

/// Guests A and B ping each other at 10/s the whole time; a vhost-user port
/// for guest C is added through ferroflowctl (client mode), C reaches B
/// through it, the port is removed under the running guest C, and C can no
/// longer reach B; the same again with guest D on a server-mode port. The
/// A-B stream must not notice any of the changes.
#[test]
fn a_vhost_port_is_added_and_removed_under_running_guests() {
    let _lock = DatapathLock::take();
    build_guest();
    let work = TempDir::new("guest-hotplug");
    let api = work.path("api.sock");
    let server = format!("unix:{}", api.display());
    let (sa, sb, sc, sd) = (
        work.path("vhu0.sock"),
        work.path("vhu1.sock"),
        work.path("vhu2.sock"),
        work.path("vhu3.sock"),
    );
    let (ipa, ipb, ipc, ipd) = ("198.18.12.1", "198.18.12.2", "198.18.12.3", "198.18.12.4");
    let b = Guest::boot(
        &work,
        "b",
        &sb,
        "52:54:00:00:12:02",
        &format!("{ipb}/24"),
        "sleep 150",
        &Boot::default(),
    );
    // A: wait for B, then a 10/s stream long enough to span C's whole life.
    let a_script = format!(
        "n=0; until ping -c 1 -W 1 {ipb} >/dev/null; do n=$((n+1)); [ $n -gt 60 ] && exit 1; done\n\
         echo STREAM-START\n\
         ping -i 0.1 -c 600 -W 2 {ipb} | sed 's/^/PS /'\n\
         echo STREAM-END\n"
    );
    let mut a = Guest::boot(
        &work,
        "a",
        &sa,
        "52:54:00:00:12:01",
        &format!("{ipa}/24"),
        &a_script,
        &Boot::default(),
    );
    let mut config = eal_section("ff-t-hotplug");
    config += &format!(
        "\n[bridge]\nfail_mode = \"standalone\"\n\n[grpc]\nlisten = \"{server}\"\nport_paths = [\"/tmp\"]\n\n[datapath]\nidle_sleep_us = 100\n"
    );
    config += &vhost_client_port("vma", 0, &sa, "");
    config += &vhost_client_port("vmb", 1, &sb, "");
    let cfg = work.path("ff.toml");
    std::fs::write(&cfg, config).unwrap();
    let ff = mgmt::Daemon::start(&cfg, &server, 200.0);
    let ctl = |args: &[&str]| {
        let (code, out, err) = mgmt::ctl(&server, args);
        assert_eq!(
            code,
            0,
            "ferroflowctl {args:?}: {out}{err}\n{}",
            ff.log_text()
        );
        out
    };
    a.wait_for("STREAM-START", Duration::from_secs(90));
    let stream_start = Instant::now();
    let mut events = Vec::new();
    // Let the stream run a little before the first change.
    std::thread::sleep(Duration::from_secs(2));

    // C (client mode: QEMU serves the socket) then D (server mode: the
    // switch creates it): reach B through the new port, report, then try
    // again after the port is gone (each try bounded) and report whether
    // anything got through.
    for (name, port, ofport, ip, sock, server_mode) in [
        ("c", "vmc", "3", ipc, &sc, false),
        ("d", "vmd", "4", ipd, &sd, true),
    ] {
        let script = format!(
            "n=0; until ping -c 1 -W 1 {ipb} >/dev/null; do n=$((n+1)); [ $n -gt 60 ] && exit 1; done\n\
             ping -c 5 -i 0.2 -W 2 {ipb} | sed 's/^/CP /'\n\
             echo C-REACHED\n\
             sleep 10\n\
             ping -c 5 -i 0.2 -W 1 {ipb} | sed 's/^/CG /'\n\
             echo C-DONE\n"
        );
        let mac = format!("52:54:00:00:12:0{ofport}");
        let add = |mode: &str| {
            let added = ctl(&[
                "port",
                "add",
                port,
                mode,
                sock.to_str().unwrap(),
                "--ofport",
                ofport,
            ]);
            let want = format!("added port {port} (OpenFlow port {ofport}");
            assert!(added.contains(&want), "{added}");
        };
        let boot = |qemu_server: bool| {
            Guest::boot(
                &work,
                name,
                sock,
                &mac,
                &format!("{ip}/24"),
                &script,
                &Boot {
                    qemu_server,
                    ..Boot::default()
                },
            )
        };
        let mut c = if server_mode {
            events.push((format!("add {port}"), stream_start.elapsed()));
            add("--vhost-server");
            boot(false)
        } else {
            let g = boot(true);
            events.push((format!("add {port}"), stream_start.elapsed()));
            add("--vhost-client");
            g
        };
        let text = c.wait_for("C-REACHED", Duration::from_secs(90));
        let (sent, got) = ping_summary(&text, "CP ");
        assert!(
            sent == 5 && got == 5,
            "guest {name} through the added port:\n{text}"
        );
        let ports: serde_json::Value = serde_json::from_str(&ctl(&["--json", "ports"])).unwrap();
        let p = ports
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == port)
            .unwrap_or_else(|| panic!("no {port} in {ports}"));
        assert!(p["link_up"] == true, "{p}");

        events.push((format!("del {port}"), stream_start.elapsed()));
        ctl(&["port", "del", port]);
        let ports = ctl(&["--json", "ports"]);
        assert!(
            !ports.contains(&format!("\"{port}\"")),
            "{port} still listed: {ports}"
        );
        // The port is closed by the closer thread after the call returns (a close can
        // block on a stalled peer, so never under the switch's state): wait for it.
        let closed = if server_mode { 2 } else { 1 };
        let deadline = Instant::now() + Duration::from_secs(10);
        let log = loop {
            let log = ff.log_text();
            if log.matches("port closed").count() >= closed || Instant::now() > deadline {
                break log;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(
            log.matches("port closed").count() == closed && !log.contains("did not acknowledge"),
            "{log}"
        );
        let status = ctl(&["--json", "status"]);
        assert!(!status.contains(port), "{port} still polled: {status}");
        assert!(
            !a.text().contains("STREAM-END"),
            "the A-B stream ended before the port was removed: make it longer"
        );

        let text = c.finish(Duration::from_secs(60));
        let (sent, got) = ping_summary(&text, "CG ");
        assert!(
            sent == 5 && got == 0,
            "guest {name} still reaches B after its port was removed:\n{text}"
        );
    }

    let text = a.finish(Duration::from_secs(120));
    let (sent, got) = ping_summary(&text, "PS ");
    let answered: std::collections::HashSet<u64> = text
        .lines()
        .filter(|l| l.starts_with("PS ") && l.contains("bytes from"))
        .filter_map(|l| l.split("seq=").nth(1)?.split(' ').next()?.parse().ok())
        .collect();
    let missing: Vec<u64> = (0..sent).filter(|q| !answered.contains(q)).collect();
    eprintln!(
        "A-B stream across the changes: {got}/{sent} replies; unanswered seq {missing:?} \
         (10/s from the stream start); changes at {events:?}"
    );
    // A frame or two in flight at the instant of a change may be lost; a
    // stall would lose dozens.
    assert!(
        sent == 600 && sent - got <= 2,
        "A-B stream disturbed:\n{text}"
    );
    drop(b);
    drop(ff);
}

/// The port's driver counters (`rte_eth_xstats`) by name, through ferroflowctl.
fn xstats(server: &str, port: &str) -> std::collections::HashMap<String, u64> {
    let (code, out, err) = mgmt::ctl(server, &["--json", "port", "show", port]);
    assert_eq!(code, 0, "ferroflowctl port show {port}: {out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["xstats"]
        .as_array()
        .unwrap_or_else(|| panic!("no xstats in {out}"))
        .iter()
        .map(|x| {
            (
                x["name"].as_str().unwrap().to_owned(),
                x["value"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// A guest with two queue pairs and two vCPUs sends from each vCPU (the
/// guest steers a CPU's frames to its own queue): the switch receives on both
/// of the port's queues. `ethtool -L eth0 combined 1` in the running guest
/// leaves one pair: traffic keeps flowing and the second queue stays
/// silent; back to 2, both carry traffic again.
#[test]
fn a_guest_with_two_queue_pairs_uses_both_and_can_change_the_count() {
    let _lock = DatapathLock::take();
    build_guest();
    build_guest_in(GUEST_TOOLS_CACHE, "ethtool tcpdump");
    let work = TempDir::new("guest-mq");
    let api = work.path("api.sock");
    let server = format!("unix:{}", api.display());
    let (sa, sb) = (work.path("vhu0.sock"), work.path("vhu1.sock"));
    let (ipa, ipb) = ("198.18.13.1", "198.18.13.2");
    let _b = Guest::boot(
        &work,
        "b",
        &sb,
        "52:54:00:00:13:02",
        &format!("{ipb}/24"),
        "sleep 150",
        &Boot::default(),
    );
    // Each phase: set the queue pairs, pause (the test reads the port's
    // per-queue counters), one 10/s ping stream pinned to each vCPU, pause
    // (read again).
    let phase = |n: u32, pairs: u32| {
        format!(
            "ethtool -L eth0 combined {pairs} || echo ETHTOOL-FAILED\n\
             ethtool -l eth0 | sed 's/^/L{n} /'\n\
             echo PHASE{n}-SET; sleep 3\n\
             taskset 1 ping -c 20 -i 0.1 -W 2 {ipb} | sed 's/^/P{n}Q0 /' &\n\
             taskset 2 ping -c 20 -i 0.1 -W 2 {ipb} | sed 's/^/P{n}Q1 /'\n\
             wait\n\
             echo PHASE{n}-DONE; sleep 3\n"
        )
    };
    let a_script = format!(
        "export PATH=$PATH:/usr/sbin\n\
         n=0; until ping -c 1 -W 1 {ipb} >/dev/null; do n=$((n+1)); [ $n -gt 60 ] && exit 1; done\n\
         {}{}{}",
        phase(1, 2),
        phase(2, 1),
        phase(3, 2)
    );
    let mut a = Guest::boot(
        &work,
        "a",
        &sa,
        "52:54:00:00:13:01",
        &format!("{ipa}/24"),
        &a_script,
        &Boot {
            dir: GUEST_TOOLS_CACHE,
            queues: 2,
            ..Boot::default()
        },
    );
    let mut config = eal_section("ff-t-mq");
    config += &format!(
        "\n[bridge]\nfail_mode = \"standalone\"\n\n[grpc]\nlisten = \"{server}\"\nport_paths = [\"/tmp\"]\n\n[datapath]\nidle_sleep_us = 100\n"
    );
    config += &vhost_client_port("vma", 0, &sa, ",queues=2");
    config += &vhost_client_port("vmb", 1, &sb, "");
    let cfg = work.path("ff.toml");
    std::fs::write(&cfg, config).unwrap();
    let ff = mgmt::Daemon::start(&cfg, &server, 200.0);

    let rx = |x: &std::collections::HashMap<String, u64>, q: u32| -> u64 {
        *x.get(&format!("rx_q{q}_packets"))
            .unwrap_or_else(|| panic!("no rx_q{q}_packets in {x:?}"))
    };
    // Frames received on each queue during each phase's streams.
    let mut per_phase = Vec::new();
    for n in 1..=3 {
        a.wait_for(&format!("PHASE{n}-SET"), Duration::from_secs(120));
        let before = xstats(&server, "vma");
        let text = a.wait_for(&format!("PHASE{n}-DONE"), Duration::from_secs(120));
        let after = xstats(&server, "vma");
        for q in 0..2 {
            let (sent, got) = ping_summary(&text, &format!("P{n}Q{q} "));
            assert!(
                sent == 20 && got >= 19,
                "phase {n}, stream from vCPU {q}: {got}/{sent}\n{text}\n{}",
                ff.log_text()
            );
        }
        per_phase.push([
            rx(&after, 0) - rx(&before, 0),
            rx(&after, 1) - rx(&before, 1),
        ]);
    }
    let text = a.finish(Duration::from_secs(60));
    assert!(!text.contains("ETHTOOL-FAILED"), "{text}");
    // ethtool -l prints the maximum, then the current settings.
    let combined = |n: u32| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with(&format!("L{n} Combined:")))
            .map(|l| l.split_whitespace().last().unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(combined(1), ["2", "2"], "{text}");
    assert_eq!(combined(2), ["2", "1"], "{text}");
    eprintln!(
        "frames received per queue [q0, q1]: two pairs {:?}, one pair {:?}, two again {:?}",
        per_phase[0], per_phase[1], per_phase[2]
    );
    let [two, one, again] = [per_phase[0], per_phase[1], per_phase[2]];
    assert!(two[0] >= 19 && two[1] >= 19, "two pairs: {two:?}");
    assert!(one[0] >= 38 && one[1] == 0, "one pair: {one:?}");
    assert!(again[0] >= 19 && again[1] >= 19, "two again: {again:?}");
    drop(ff);
}

/// Frames a guest sends through the switch onto a tap port are what a
/// kernel accepts: iperf3 from the guest to a namespace host behind net_tap,
/// captured on the host's side with tcpdump: every TCP segment from the guest
/// has a correct IP and TCP checksum and fits the 1500-byte MTU (the guest's
/// checksum offload is completed by the vhost-user port; no segmentation
/// offload reaches the wire unsegmented).
#[test]
fn guest_frames_on_a_tap_port_have_correct_checksums_and_sizes() {
    guest_iperf_to_a_tap_host("guest-csum", "198.18.14", "ffgc-h", false);
}

/// As above with TSO negotiated (`tso=1`): the guest sends TCP frames of up
/// to 64 KiB (the vhost-user port receives frames larger than the MTU), the
/// tap port's driver cuts them to the MTU, and every segment on the wire has
/// correct checksums; nothing is dropped as oversize.
#[test]
fn guest_tso_frames_are_segmented_with_correct_checksums_on_a_tap_port() {
    guest_iperf_to_a_tap_host("guest-tso", "198.18.15", "ffgt-t", true);
}

fn guest_iperf_to_a_tap_host(tag: &str, net: &str, tap: &str, tso: bool) {
    let _lock = DatapathLock::take();
    build_guest();
    let work = TempDir::new(tag);
    let sock = work.path("vhu0.sock");
    let (ipg, iph) = (format!("{net}.1"), format!("{net}.2"));
    let script = format!(
        "n=0; until ping -c 1 -W 1 {iph} >/dev/null; do n=$((n+1)); [ $n -gt 60 ] && exit 1; done\n\
         n=0; until iperf3 -c {iph} -t 3 -f m > /tmp/ip.txt 2>&1; do n=$((n+1)); [ $n -gt 10 ] && break; sleep 0.5; done\n\
         sed 's/^/IP /' /tmp/ip.txt\n\
         echo IPERF-DONE\n"
    );
    let mut guest = Guest::boot(
        &work,
        "g",
        &sock,
        "52:54:00:00:14:01",
        &format!("{ipg}/24"),
        &script,
        &Boot::default(),
    );
    let mut config = eal_section(&format!("ff-t-{tag}"));
    config += "\n[bridge]\nfail_mode = \"standalone\"\n\n[datapath]\nidle_sleep_us = 100\n";
    config += &mgmt::port_toml(
        "vm",
        &format!(
            "net_vhost0,iface={},client=1,tso={}",
            sock.display(),
            u8::from(tso)
        ),
        1,
    );
    config += &mgmt::port_toml("host", &format!("net_tap0,iface={tap}"), 2);
    let ff = Ferroflowd::start(tag, &config, 150.0);
    let host = Netns::new(tap);
    wait_for_interface(tap);
    host.adopt(tap, &format!("{iph}/24"));
    let pcap = work.path("tap.pcap");
    let text = iperf3_server_and_capture(
        &mut guest,
        tap,
        &pcap,
        &format!("-c 4000 tcp and src host {ipg}"),
    );
    assert!(
        text.contains("IP ") && text.contains("receiver"),
        "iperf3 from the guest failed:\n{text}\n{}",
        ff.log_text()
    );
    // tcpdump checks both checksums itself with -vv.
    if let Some(l) = text.lines().find(|l| l.contains("receiver")) {
        eprintln!("guest to tap host (tso={}): {l}", u8::from(tso));
    }
    let dump = run(&format!(
        "tcpdump -r {} -nn -vv 2>/dev/null",
        pcap.display()
    ));
    let frames = read_pcap(&pcap);
    let correct = dump.matches("(correct)").count();
    // TCP: "cksum 0x... (correct)" or "(incorrect -> 0x...)"; IPv4: "bad cksum".
    let incorrect = dump.matches("incorrect").count() + dump.matches("bad cksum").count();
    let largest = frames.iter().map(Vec::len).max().unwrap_or(0);
    eprintln!(
        "{} frames from the guest on the tap, largest {largest} bytes; checksums: {correct} correct, {incorrect} incorrect",
        frames.len()
    );
    let stats = ff.stop();
    let (vm, host) = (
        &Ferroflowd::port(&stats, "vm")["switch_stats"],
        &Ferroflowd::port(&stats, "host")["switch_stats"],
    );
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k}: {v}"));
    let mean_rx = n(vm, "rx_bytes") / n(vm, "rx_packets").max(1);
    eprintln!(
        "vhost port: {} frames received, {mean_rx} bytes on average; tap port: {} sent, {} dropped ({} oversize)",
        n(vm, "rx_packets"),
        n(host, "tx_packets"),
        n(host, "tx_dropped"),
        n(host, "tx_oversize_dropped")
    );
    assert!(frames.len() >= 1000, "too few frames captured:\n{text}");
    assert_eq!(
        incorrect,
        0,
        "bad checksums on the tap:\n{}",
        &dump[..dump.len().min(4000)]
    );
    assert_eq!(correct, frames.len(), "TCP checksums checked");
    assert!(
        largest <= 1514,
        "a {largest}-byte frame on a 1500-byte MTU link"
    );
    assert_eq!(n(host, "tx_oversize_dropped"), 0, "{stats}");
    if tso {
        // Frames above the MTU arrived: the guest used TSO.
        assert!(mean_rx > 1514, "no TSO frames from the guest: {vm}");
    } else {
        assert!(mean_rx <= 1514, "{vm}");
    }
}

/// A TSO frame that nothing can segment is dropped and counted, never sent
/// oversized: TCP over IPv6 from a `tso=1` guest to a namespace host behind
/// net_tap (net_tap's TSO and librte_gso do TCP over IPv4 only). The capture
/// on the tap holds no frame above the MTU, and the tap port counts the
/// guest's large frames in `tx_oversize_dropped` (and `tx_dropped`).
#[test]
fn guest_tso_frames_over_ipv6_to_a_tap_port_are_counted_drops_not_oversized_frames() {
    let _lock = DatapathLock::take();
    build_guest();
    let tag = "guest-tso6";
    let tap = "ffg6-h";
    let work = TempDir::new(tag);
    let sock = work.path("vhu0.sock");
    let (ipg, iph) = ("fd00:19::1", "fd00:19::2");
    let script = format!(
        "echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_dad\n\
         ip -6 addr add {ipg}/64 dev eth0\n\
         n=0; until ping6 -c 1 -W 1 {iph} >/dev/null; do n=$((n+1)); [ $n -gt 60 ] && exit 1; done\n\
         timeout 20 iperf3 -6 -c {iph} -t 2 -f m > /tmp/ip.txt 2>&1; echo IPERF-RC=$?\n\
         sed 's/^/IP /' /tmp/ip.txt\n"
    );
    let mut guest = Guest::boot(
        &work,
        "g",
        &sock,
        "52:54:00:00:19:01",
        "198.18.19.1/24",
        &script,
        &Boot::default(),
    );
    let mut config = eal_section(&format!("ff-t-{tag}"));
    config += "\n[bridge]\nfail_mode = \"standalone\"\n\n[datapath]\nidle_sleep_us = 100\n";
    config += &mgmt::port_toml(
        "vm",
        &format!("net_vhost0,iface={},client=1,tso=1", sock.display()),
        1,
    );
    config += &mgmt::port_toml("host", &format!("net_tap0,iface={tap}"), 2);
    let ff = Ferroflowd::start(tag, &config, 150.0);
    let host = Netns::new(tap);
    wait_for_interface(tap);
    host.adopt(tap, "198.18.19.2/24");
    // adopt() turns IPv6 off on the interface; this test needs it.
    run(&format!(
        "ip netns exec {tap} sh -c 'sysctl -qw net.ipv6.conf.{tap}.disable_ipv6=0 net.ipv6.conf.{tap}.accept_dad=0; ip -6 addr add {iph}/64 dev {tap}'"
    ));
    let pcap = work.path("tap.pcap");
    let text = iperf3_server_and_capture(
        &mut guest,
        tap,
        &pcap,
        &format!("ip6 and tcp and src host {ipg}"),
    );
    assert!(
        text.contains("IPERF-RC="),
        "the guest did not run iperf3:\n{text}"
    );
    let frames = read_pcap(&pcap);
    let largest = frames.iter().map(Vec::len).max().unwrap_or(0);
    let stats = ff.stop();
    let host = &Ferroflowd::port(&stats, "host")["switch_stats"];
    let n = |k: &str| host[k].as_u64().unwrap_or_else(|| panic!("{k}: {host}"));
    eprintln!(
        "IPv6 TSO to a tap: {} frames on the wire, largest {largest} bytes; tap port: {} sent, {} dropped, {} oversize",
        frames.len(),
        n("tx_packets"),
        n("tx_dropped"),
        n("tx_oversize_dropped")
    );
    assert!(
        !frames.is_empty(),
        "nothing from the guest on the tap:\n{text}"
    );
    assert!(
        largest <= 1514,
        "a {largest}-byte frame on a 1500-byte MTU link"
    );
    assert!(
        n("tx_oversize_dropped") > 0,
        "no TSO frame counted: {stats}\n{text}"
    );
    assert!(n("tx_dropped") >= n("tx_oversize_dropped"), "{stats}");
}

/// iperf3 between two guests over two vhost-user ports, without TSO, with
/// TSO on both ports (the 64 KiB frames pass through to the receiving guest
/// unsegmented), and with TSO from the sender only (the receiving guest turns
/// TSO off, `guest_tso4=off`: the switch segments in software with
/// librte_gso). iperf3 completes in each; the Gbit/s are printed, not
/// asserted (TCG guests).
#[test]
fn two_guests_run_iperf_over_vhost_ports_with_and_without_tso() {
    let _lock = DatapathLock::take();
    build_guest();
    let mut results = Vec::new();
    for (i, (tso, b_takes_tso)) in [(false, true), (true, true), (true, false)]
        .into_iter()
        .enumerate()
    {
        let tag = format!("guest-tso-pair{i}");
        let work = TempDir::new(&tag);
        let (sa, sb) = (work.path("vhu0.sock"), work.path("vhu1.sock"));
        let (ipa, ipb) = (
            format!("198.18.{}.1", 16 + i),
            format!("198.18.{}.2", 16 + i),
        );
        // B: the iperf3 server; its NIC without TSO in the third run.
        let nic_opts = if b_takes_tso {
            "vectors=0"
        } else {
            "vectors=0,guest_tso4=off,guest_tso6=off,guest_ecn=off,guest_ufo=off"
        };
        let mut b = Guest::boot(
            &work,
            "b",
            &sb,
            "52:54:00:00:16:02",
            &format!("{ipb}/24"),
            "timeout 120 iperf3 -s -1 > /tmp/s.txt 2>&1; echo SERVER-DONE",
            &Boot {
                env: &[("NIC_OPTS", nic_opts)],
                ..Boot::default()
            },
        );
        let script = format!(
            "n=0; until ping -c 1 -W 1 {ipb} >/dev/null; do n=$((n+1)); [ $n -gt 60 ] && exit 1; done\n\
             n=0; until iperf3 -c {ipb} -t 3 -f m > /tmp/ip.txt 2>&1; do n=$((n+1)); [ $n -gt 10 ] && break; sleep 0.5; done\n\
             sed 's/^/IP /' /tmp/ip.txt\n"
        );
        let mut a = Guest::boot(
            &work,
            "a",
            &sa,
            "52:54:00:00:16:01",
            &format!("{ipa}/24"),
            &script,
            &Boot::default(),
        );
        let mut config = eal_section(&format!("ff-t-{tag}"));
        config += "\n[bridge]\nfail_mode = \"standalone\"\n\n[datapath]\nidle_sleep_us = 100\n";
        let t = u8::from(tso);
        config += &vhost_client_port("vma", 0, &sa, &format!(",tso={t}"));
        config += &vhost_client_port("vmb", 1, &sb, &format!(",tso={t}"));
        let ff = Ferroflowd::start(&tag, &config, 200.0);
        let text = a.finish(Duration::from_secs(150));
        let _ = b.finish(Duration::from_secs(30));
        let log = ff.log_text();
        let stats = ff.stop();
        let receiver = text
            .lines()
            .find(|l| l.contains("receiver"))
            .unwrap_or_else(|| panic!("iperf3 from A to B failed (run {i}):\n{text}\n{log}"))
            .to_owned();
        let (va, vb) = (
            &Ferroflowd::port(&stats, "vma")["switch_stats"],
            &Ferroflowd::port(&stats, "vmb")["switch_stats"],
        );
        let n =
            |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k}: {v}"));
        let mean_rx = n(va, "rx_bytes") / n(va, "rx_packets").max(1);
        eprintln!(
            "run {i} (tso={t}, receiver takes TSO: {b_takes_tso}): A sent {} frames ({mean_rx} bytes on average), B got {} ({} dropped, {} oversize): {receiver}",
            n(va, "rx_packets"),
            n(vb, "tx_packets"),
            n(vb, "tx_dropped"),
            n(vb, "tx_oversize_dropped"),
        );
        assert_eq!(n(vb, "tx_oversize_dropped"), 0, "{stats}");
        if tso {
            assert!(mean_rx > 1514, "no TSO frames from A: {va}");
        }
        if tso && !b_takes_tso {
            // Segmented here: more frames out to B than came in from A.
            assert!(n(vb, "tx_packets") > n(va, "rx_packets"), "{stats}");
        }
        let mbits: f64 = receiver
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .find(|w| w[1] == "Mbits/sec")
            .and_then(|w| w[0].parse().ok())
            .unwrap_or(0.0);
        results.push((t, b_takes_tso, mbits));
    }
    for (t, b, mbits) in results {
        eprintln!(
            "RESULT iperf3 A->B tso={t} receiver-tso={b}: {:.3} Gbit/s",
            mbits / 1000.0
        );
    }
}

/// Server-mode sockets (the switch creates them) get the mode, owner and
/// group the config or `ferroflowctl port add` asks for, so QEMU running as
/// another user can connect; an unknown user is refused with the reason and
/// leaves no half-made port behind.
#[test]
fn vhost_server_sockets_get_the_configured_mode_owner_and_group() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let _lock = DatapathLock::take();
    let work = TempDir::new("vhost-sock-access");
    let api = work.path("api.sock");
    let server = format!("unix:{}", api.display());
    let s0 = work.path("vhu-cfg.sock");
    let mut config = mgmt::config("ff-t-sockacc", &api, None, "");
    config += "\n[datapath]\nidle_sleep_us = 200\n";
    config += &mgmt::port_toml("vm0", &format!("net_vhost0,iface={}", s0.display()), 1);
    config += "socket_mode = 0o640\nsocket_owner = \"nobody\"\nsocket_group = \"daemon\"\n";
    let cfg = work.path("ff.toml");
    std::fs::write(&cfg, &config).unwrap();
    let ff = mgmt::Daemon::start(&cfg, &server, 120.0);
    let meta = std::fs::metadata(&s0).expect("the server-mode socket exists");
    assert_eq!(
        (meta.permissions().mode() & 0o777, meta.uid(), meta.gid()),
        (0o640, 65534, 1),
        "socket from the config: mode {:o}",
        meta.permissions().mode()
    );

    // At runtime, through ferroflowctl, numeric ids; kept in the config file.
    let s1 = work.path("vhu-ctl.sock");
    let (code, out, err) = mgmt::ctl(
        &server,
        &[
            "port",
            "add",
            "vm1",
            "--vhost-server",
            s1.to_str().unwrap(),
            "--socket-mode",
            "0660",
            "--socket-group",
            "107",
        ],
    );
    assert_eq!(code, 0, "{out}{err}\n{}", ff.log_text());
    let meta = std::fs::metadata(&s1).unwrap();
    assert_eq!(
        (meta.permissions().mode() & 0o777, meta.gid()),
        (0o660, 107)
    );
    let saved = std::fs::read_to_string(&cfg).unwrap();
    assert!(
        saved.contains("socket_mode = 0o660") && saved.contains("socket_group = \"107\""),
        "{saved}"
    );

    // Refusals: an unknown user, and socket settings on a client-mode port.
    let s2 = work.path("vhu-bad.sock");
    let (code, out, err) = mgmt::ctl(
        &server,
        &[
            "port",
            "add",
            "vm2",
            "--vhost-server",
            s2.to_str().unwrap(),
            "--socket-owner",
            "no-such-user-ff",
        ],
    );
    assert!(
        code != 0 && err.contains("no user \"no-such-user-ff\""),
        "{code} {out}{err}"
    );
    let (code, out, err) = mgmt::ctl(
        &server,
        &[
            "port",
            "add",
            "vm3",
            "--vhost-client",
            s2.to_str().unwrap(),
            "--socket-mode",
            "0600",
        ],
    );
    assert!(
        code != 0 && err.contains("socket_mode") && err.contains("server ports only"),
        "{code} {out}{err}"
    );
    let (_, ports, _) = mgmt::ctl(&server, &["--json", "ports"]);
    assert!(
        ports.contains("\"vm0\"")
            && ports.contains("\"vm1\"")
            && !ports.contains("\"vm2\"")
            && !ports.contains("\"vm3\""),
        "{ports}"
    );
    drop(ff);

    // The same mistake in a config file is a configuration error.
    let bad = config.replace(
        &format!("net_vhost0,iface={}", s0.display()),
        &format!("net_vhost0,iface={},client=1", s0.display()),
    );
    std::fs::write(&cfg, bad).unwrap();
    let out = Command::new(FERROFLOWD)
        .args(["--check-config", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("ports[0].socket_mode"),
        "{text}"
    );
}

/// Guest B is reset (a reboot: its virtio device starts over) and later its
/// QEMU is stopped and started again on the same socket, while guest A pings
/// it at 5/s. The switch (client mode) reconnects each time without a
/// restart of its own, and the port's link state follows the guest in
/// PORT_STATUS (ovs-ofctl monitor), ferroflowctl and the metrics.
#[test]
fn a_guest_reboot_and_a_qemu_restart_reconnect_and_the_link_follows() {
    let _lock = DatapathLock::take();
    build_guest();
    let work = TempDir::new("guest-reconnect");
    let api = work.path("api.sock");
    let server = format!("unix:{}", api.display());
    const OF: &str = "tcp:127.0.0.1:16641";
    const METRICS: &str = "127.0.0.1:19471";
    let (sa, sb) = (work.path("vhu0.sock"), work.path("vhu1.sock"));
    let (ipa, ipb) = ("198.18.13.1", "198.18.13.2");
    let boot_b = |n: u32| {
        Guest::boot(
            &work,
            if n == 1 { "b1" } else { "b2" },
            &sb,
            "52:54:00:00:13:02",
            &format!("{ipb}/24"),
            "sleep 160",
            // A guest reboot resets the machine, as a hypervisor does.
            &Boot {
                monitor: true,
                ..Boot::default()
            },
        )
    };
    let mut b = boot_b(1);
    let a_script = format!(
        "n=0; until ping -c 1 -W 1 {ipb} >/dev/null; do n=$((n+1)); [ $n -gt 60 ] && exit 1; done\n\
         echo STREAM-START\n\
         ping -i 0.2 -c 500 -W 1 {ipb} | sed 's/^/PS /'\n\
         echo STREAM-END\n"
    );
    let mut a = Guest::boot(
        &work,
        "a",
        &sa,
        "52:54:00:00:13:01",
        &format!("{ipa}/24"),
        &a_script,
        &Boot::default(),
    );
    let mut config = mgmt::config("ff-t-reconn", &api, Some(METRICS), "");
    config += &format!(
        "\n[bridge]\nfail_mode = \"standalone\"\n\n[openflow]\nlisten = [\"p{}\"]\n\n[datapath]\nidle_sleep_us = 100\n",
        OF.replace("tcp:127.0.0.1:", "tcp:") + ":127.0.0.1"
    );
    config += &vhost_client_port("vma", 0, &sa, "");
    config += &vhost_client_port("vmb", 1, &sb, "");
    let cfg = work.path("ff.toml");
    std::fs::write(&cfg, config).unwrap();
    let ff = mgmt::Daemon::start(&cfg, &server, 240.0);
    let pid = ff.pid();

    let monitor_log = work.path("monitor.txt");
    let ctl_sock = format!("--unixctl={}", work.path("ofctl.ctl").display());
    let mut monitor = Command::new("timeout")
        .args([
            "-s",
            "INT",
            "200",
            "ovs-ofctl",
            "-O",
            "OpenFlow13",
            &ctl_sock,
            "monitor",
            OF,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&monitor_log).unwrap())
        .spawn()
        .unwrap();
    let link_of_b = || -> Option<bool> {
        let (code, out, _) = mgmt::ctl(&server, &["--json", "ports"]);
        if code != 0 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&out).ok()?;
        v.as_array()?.iter().find(|p| p["name"] == "vmb")?["link_up"].as_bool()
    };
    let metric_of_b = || -> Option<String> {
        let text = run(&format!("curl -sf http://{METRICS}/metrics"));
        text.lines()
            .find(|l| l.starts_with("ferroflow_port_link_up") && l.contains("port=\"vmb\""))
            .map(|l| l.rsplit(' ').next().unwrap_or_default().to_owned())
    };

    a.wait_for("STREAM-START", Duration::from_secs(120));
    let start = Instant::now();
    let mut events = Vec::new();
    std::thread::sleep(Duration::from_secs(3));

    // 1. The guest reboots (a hard reset; QEMU keeps running).
    events.push(("reset B", start.elapsed()));
    b.monitor().execute("system_reset");
    b.wait_for_count("GUEST-READY", 2, Duration::from_secs(60));
    events.push(("B up again", start.elapsed()));
    std::thread::sleep(Duration::from_secs(5));

    // 2. QEMU stops: the link goes down everywhere it is shown.
    events.push(("stop B's QEMU", start.elapsed()));
    drop(b);
    mgmt::eventually(
        Duration::from_secs(15),
        "vmb link down in ferroflowctl",
        || (link_of_b() == Some(false)).then_some(()),
    );
    mgmt::eventually(Duration::from_secs(10), "vmb link down in /metrics", || {
        (metric_of_b().as_deref() == Some("0")).then_some(())
    });
    // 3. A new QEMU on the same socket: the switch reconnects by itself.
    std::thread::sleep(Duration::from_secs(2));
    events.push(("start B's QEMU", start.elapsed()));
    let mut b = boot_b(2);
    b.wait_for("GUEST-READY", Duration::from_secs(60));
    mgmt::eventually(
        Duration::from_secs(15),
        "vmb link up in ferroflowctl",
        || (link_of_b() == Some(true)).then_some(()),
    );
    mgmt::eventually(Duration::from_secs(10), "vmb link up in /metrics", || {
        (metric_of_b().as_deref() == Some("1")).then_some(())
    });
    events.push(("B reachable again", start.elapsed()));
    std::thread::sleep(Duration::from_secs(8));

    run(&format!("kill -INT {}", monitor.id()));
    let _ = monitor.wait();
    let text = a.finish(Duration::from_secs(150));
    drop(b);
    assert_eq!(ff.pid(), pid, "the switch was not restarted");
    let log = ff.log_text();
    drop(ff);

    // Replies by sequence number (5/s from the stream start).
    let answered: std::collections::BTreeSet<u64> = text
        .lines()
        .filter(|l| l.starts_with("PS ") && l.contains("bytes from"))
        .filter_map(|l| l.split("seq=").nth(1)?.split(' ').next()?.parse().ok())
        .collect();
    let (sent, got) = ping_summary(&text, "PS ");
    let at = |name: &str| events.iter().find(|e| e.0 == name).unwrap().1.as_secs_f64();
    let seq_at = |secs: f64| ((secs * 5.0) as u64).min(sent);
    // The longest run of unanswered pings between two moments, in seconds.
    let longest_gap = |from: f64, to: f64| {
        let (mut run, mut best) = (0u64, 0u64);
        for q in seq_at(from)..seq_at(to) {
            run = if answered.contains(&q) { 0 } else { run + 1 };
            best = best.max(run);
        }
        best as f64 / 5.0
    };
    let reset_stall = longest_gap(at("reset B"), at("stop B's QEMU"));
    let restart_stall = longest_gap(at("stop B's QEMU"), at("B reachable again") + 5.0);
    eprintln!(
        "A->B at 5/s: {got}/{sent} replies; events {events:?}; longest stall {reset_stall:.1} s \
         around the guest reset, {restart_stall:.1} s around the QEMU stop and start"
    );
    assert!(sent == 500, "{text}");
    // Replies came back between the reset and the QEMU stop.
    assert!(
        answered
            .range(seq_at(at("B up again"))..seq_at(at("stop B's QEMU")))
            .next()
            .is_some(),
        "no reply after the guest reset (longest stall {reset_stall} s):\n{text}"
    );
    // Everything after B came back is answered but a frame in flight.
    let tail_from = seq_at(at("B reachable again") + 1.0);
    let tail: Vec<u64> = (tail_from..sent)
        .filter(|q| !answered.contains(q))
        .collect();
    assert!(
        tail.len() <= 2,
        "unanswered after B came back: {tail:?}\n--- ferroflowd log ---\n{log}"
    );

    let mon = std::fs::read_to_string(&monitor_log).unwrap();
    let status: Vec<&str> = mon
        .lines()
        .filter(|l| l.contains("OFPT_PORT_STATUS"))
        .collect();
    let b_lines: Vec<String> = mon
        .split("OFPT_PORT_STATUS")
        .skip(1)
        .filter(|m| m.contains("2(vmb)"))
        .map(|m| m.lines().take(6).collect::<Vec<_>>().join(" "))
        .collect();
    assert!(
        b_lines.iter().any(|m| m.contains("LINK_DOWN"))
            && b_lines.last().is_some_and(|m| !m.contains("LINK_DOWN")),
        "PORT_STATUS for vmb should say LINK_DOWN, then up ({} messages):\n{mon}",
        status.len()
    );
}
