//! A real OpenFlow controller: os-ken (PyPI, in a venv made by
//! tests/conformance/setup-osken.sh) running the classic `simple_switch_13`
//! learning switch. ferroflowd connects to it over `tcp:`; two namespace
//! hosts behind tap ports ping each other while flows are learned reactively
//! (PACKET_IN, FLOW_MOD, PACKET_OUT).

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn py_dir() -> PathBuf {
    PathBuf::from(
        std::env::var("FERROFLOW_PY_DIR").unwrap_or_else(|_| "/var/lib/ferroflow/python".into()),
    )
}

struct Controller(Child);

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_osken(dir: &TempDir, port: u16) -> Controller {
    let py = py_dir().join("venv/bin/python");
    let app = py_dir().join("apps/simple_switch_13.py");
    assert!(
        py.exists() && app.exists(),
        "os-ken IS NOT INSTALLED: run tests/conformance/setup-osken.sh (tests/run.sh does)"
    );
    let runner = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/osken_run.py");
    let child = Command::new(py)
        .arg(runner)
        .args([
            "--ofp-listen-host",
            "127.0.0.1",
            "--ofp-tcp-listen-port",
            &port.to_string(),
            "--verbose",
        ])
        .arg(app)
        .env("OSKEN_HUB_TYPE", "eventlet")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.path("osken.log")).unwrap())
        .stderr(std::fs::File::create(dir.path("osken.err")).unwrap())
        .spawn()
        .expect("start os-ken");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !run("ss -ltn").contains(&format!("127.0.0.1:{port} ")) {
        assert!(
            Instant::now() < deadline,
            "os-ken did not listen:\n{}",
            std::fs::read_to_string(dir.path("osken.err")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Controller(child)
}

#[test]
fn osken_simple_switch_13_learns_flows_reactively() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("osken");
    let _ctl = start_osken(&dir, 16653);
    let mut config = eal_section("ff-t-osken");
    config += "[bridge]\nfail_mode = \"secure\"\n[[bridge.controllers]]\ntarget = \"tcp:127.0.0.1:16653\"\n";
    config += "[openflow]\nlisten = [\"ptcp:16636:127.0.0.1\"]\n[datapath]\nidle_sleep_us = 200\n";
    for (i, name) in ["a", "b"].iter().enumerate() {
        config += &format!("\n[[ports]]\nname = \"{name}\"\ndevargs = \"net_tap{i},iface=ffok-{name}\"\nofport = {}\n", i + 1);
    }
    let mut ff = Ferroflowd::start("osken", &config, 300.0);
    let a = Netns::new("ffok-a");
    let b = Netns::new("ffok-b");
    for (ns, ifname, ip) in [
        (&a, "ffok-a", "198.18.5.1/24"),
        (&b, "ffok-b", "198.18.5.2/24"),
    ] {
        wait_for_interface(ifname);
        ns.adopt(ifname, ip);
    }
    // The controller installs its table-miss flow (to CONTROLLER) on connect.
    let target = "tcp:127.0.0.1:16636";
    ff.wait_until(
        Duration::from_secs(30),
        "the controller's table-miss flow",
        |_| {
            let out = sh(&format!(
                "timeout 10 ovs-ofctl -O OpenFlow13 dump-flows {target}"
            ));
            String::from_utf8_lossy(&out.stdout).contains("priority=0 actions=CONTROLLER:65535")
        },
    );
    let out = a.exec("ping -c 5 -i 0.3 -W 2 198.18.5.2");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let osken_log = || {
        std::fs::read_to_string(dir.path("osken.log")).unwrap_or_default()
            + &std::fs::read_to_string(dir.path("osken.err")).unwrap_or_default()
    };
    assert!(
        out.status.success(),
        "ping through os-ken's learning switch failed:\n{text}\n{}",
        osken_log()
    );
    let flows = run(&format!(
        "timeout 10 ovs-ofctl -O OpenFlow13 dump-flows {target}"
    ));
    let learned: Vec<&str> = flows
        .lines()
        .filter(|l| l.contains("priority=1,"))
        .collect();
    assert!(learned.len() >= 2, "no learned flows:\n{flows}");
    assert!(
        learned.iter().any(|l| !l.contains("n_packets=0")),
        "learned flows carry traffic:\n{flows}"
    );
    assert!(
        osken_log().contains("packet in"),
        "os-ken saw no packet-in:\n{}",
        osken_log()
    );
    drop(ff.stop());
}
