// EAL argument lists come from tests/common's eal_section: --no-pci, its own
// --file-prefix, --in-memory and a --socket-limit memory cap.
//! Shared by the management-plane tests: a ferroflowd whose config file
//! outlives it (restarts read it back), gRPC clients, and known traffic.
#![allow(dead_code)]

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferroflow::api::client::{connect, ServerAddr};
use ferroflow::api::pb;
use tonic::transport::Channel;

use crate::common::{self, TempDir};

/// A ferroflowd on a config file in `dir`, killed by PID when dropped.
pub struct Daemon {
    child: Option<Child>,
    pub config: PathBuf,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts ferroflowd on `config` and waits until `ready` (a unix socket or
    /// TCP address) accepts connections.
    pub fn start(config: &Path, ready: &str, exit_after: f64) -> Daemon {
        // Built (or found up to date) before the switch starts, so that no timed call
        // of a test includes the build.
        common::ferroflowctl();
        let n = fs::read_dir(config.parent().unwrap()).unwrap().count();
        let log = config.with_file_name(format!("ferroflowd-{n}.log"));
        let child = Command::new(common::FERROFLOWD)
            .arg("--config")
            .arg(config)
            .arg("--exit-after")
            .arg(exit_after.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("spawn ferroflowd");
        let mut d = Daemon {
            child: Some(child),
            config: config.to_owned(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = match ready.strip_prefix("unix:") {
                Some(p) => std::os::unix::net::UnixStream::connect(p).is_ok(),
                None => std::net::TcpStream::connect(ready.trim_start_matches("tcp:")).is_ok(),
            };
            if up {
                return d;
            }
            if let Some(s) = d.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "ferroflowd exited ({s}) before serving {ready}:\n{}",
                    d.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "ferroflowd never served {ready}:\n{}",
                d.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends `signal` and waits for the exit.
    pub fn kill(mut self, signal: &str) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        common::run(&format!("kill -{signal} {}", c.id()));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "ferroflowd ignored SIG{signal}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
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

/// A config with gRPC on `socket`, metrics where asked, and these ports.
pub fn config(prefix: &str, socket: &Path, metrics: Option<&str>, ports: &str) -> String {
    let mut c = common::eal_section(prefix);
    c.push_str(&format!(
        "\n[grpc]\nlisten = \"unix:{}\"\nport_paths = [\"/tmp\"]\n",
        socket.display()
    ));
    if let Some(m) = metrics {
        c.push_str(&format!("\n[metrics]\nlisten = \"{m}\"\n"));
    }
    c.push_str(ports);
    c
}

pub fn port_toml(name: &str, devargs: &str, ofport: u32) -> String {
    format!("\n[[ports]]\nname = \"{name}\"\ndevargs = \"{devargs}\"\nofport = {ofport}\n")
}

pub struct Clients {
    pub ports: pb::port_service_client::PortServiceClient<Channel>,
    pub bridges: pb::bridge_service_client::BridgeServiceClient<Channel>,
    pub flows: pb::flow_service_client::FlowServiceClient<Channel>,
    pub datapath: pb::datapath_service_client::DatapathServiceClient<Channel>,
}

pub async fn clients(addr: &ServerAddr) -> Clients {
    let ch = connect(addr).await.expect("connect to the API");
    Clients {
        ports: pb::port_service_client::PortServiceClient::new(ch.clone()),
        bridges: pb::bridge_service_client::BridgeServiceClient::new(ch.clone()),
        flows: pb::flow_service_client::FlowServiceClient::new(ch.clone()),
        datapath: pb::datapath_service_client::DatapathServiceClient::new(ch),
    }
}

pub fn text_change(command: pb::FlowCommand, text: &str) -> pb::FlowChange {
    pb::FlowChange {
        command: command as i32,
        flow: Some(pb::flow_change::Flow::Text(text.to_owned())),
    }
}

/// `n` UDP frames from one MAC to another, as a pcap file for net_pcap.
pub fn traffic(dir: &TempDir, name: &str, n: u16) -> PathBuf {
    let path = dir.path(name);
    let frames: Vec<Vec<u8>> = (0..n)
        .map(|i| common::udp_frame([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1], 1000 + i))
        .collect();
    common::write_pcap(&path, &frames);
    path
}

/// Runs ferroflowctl against `server`; returns (exit code, stdout, stderr).
pub fn ctl(server: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(common::ferroflowctl())
        .arg("--server")
        .arg(server)
        .args(args)
        .output()
        .expect("run ferroflowctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Polls `f` until it returns Some, for up to `limit`.
pub fn eventually<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
