//! The config store: what the API changes survives a restart (SIGTERM and
//! SIGKILL alike) with the same ports, OpenFlow port numbers and flows, and a
//! hand-broken file is refused with its line while the last good one is kept.

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.
mod mgmt;

use common::{DatapathLock, TempDir};
use mgmt::{config, ctl, port_toml, Daemon};
use serde_json::Value;

/// Flows without their counters and age, which a restart resets.
fn flows(server: &str) -> Vec<String> {
    let (code, out, err) = ctl(server, &["--json", "flows", "dump"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let mut list: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            f["text"]
                .as_str()
                .unwrap()
                .split(", ")
                .filter(|p| !p.starts_with("duration=") && !p.starts_with("n_packets="))
                .map(|p| {
                    p.strip_prefix("n_bytes=")
                        .map_or(p, |r| r.split_once(' ').map_or("", |x| x.1))
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    list.sort();
    list
}

fn state(server: &str) -> (Vec<(String, u64)>, Vec<String>, String, String) {
    let (_, out, _) = ctl(server, &["--json", "ports"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let ports = v
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["ofport"].as_u64().unwrap(),
            )
        })
        .collect();
    let groups = ctl(server, &["groups", "dump"]).1;
    let meters = ctl(server, &["meters", "dump"]).1;
    let strip = |s: String| {
        s.lines()
            .map(|l| l.split("  ").next().unwrap_or("").to_owned())
            .collect::<Vec<_>>()
            .join("\n")
    };
    (ports, flows(server), strip(groups), strip(meters))
}

#[test]
fn restart_restores_ports_numbers_and_flows() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("store");
    let socket = dir.path("api.sock");
    let server = format!("unix:{}", socket.display());
    let cfg = dir.path("ff.toml");
    let original = format!(
        "# operator's note\n{}",
        config(
            "ff-store",
            &socket,
            None,
            &port_toml("p1", "net_null0,no-rx=1", 1)
        )
    );
    std::fs::write(&cfg, &original).unwrap();
    let d = Daemon::start(&cfg, &server, 300.0);
    let ok = |args: &[&str]| {
        let (code, out, err) = ctl(&server, args);
        assert_eq!(code, 0, "ferroflowctl {args:?}: {out}{err}");
    };
    ok(&[
        "port",
        "add",
        "vm7",
        "--devargs",
        "net_null3,no-rx=1",
        "--ofport",
        "7",
        "--tag",
        "10",
    ]);
    ok(&["port", "add", "vm2", "--devargs", "net_null4,no-rx=1"]);
    ok(&["meters", "add", "meter=1,kbps,band=type=drop,rate=5000"]);
    ok(&[
        "groups",
        "add",
        "group_id=2,type=select,bucket=weight:60,output:7,bucket=weight:40,output:2",
    ]);
    ok(&[
        "flows",
        "add",
        "table=0,priority=100,in_port=1,actions=goto_table:1",
        "table=1,priority=10,cookie=0x7,idle_timeout=600,ip,nw_dst=10.1.0.0/16,actions=meter:1,group:2",
        "table=1,priority=5,arp,actions=output:7,NORMAL",
    ]);
    // The bridge's default NORMAL flow, deleted, must stay deleted.
    ok(&["flows", "del", "--strict", "table=0,priority=0"]);
    let before = state(&server);
    assert_eq!(
        before.0,
        [
            ("p1".to_owned(), 1),
            ("vm7".to_owned(), 7),
            ("vm2".to_owned(), 2)
        ]
    );
    assert_eq!(before.1.len(), 3, "{:?}", before.1);
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(
        text.starts_with("# operator's note"),
        "the store keeps the operator's comments:\n{text}"
    );

    // SIGKILL: nothing is written at exit; what is on disk must do.
    assert!(!d.kill("KILL").success());
    let d = Daemon::start(&cfg, &server, 300.0);
    assert_eq!(state(&server), before, "after SIGKILL");
    // A clean stop, then the same again.
    assert!(d.kill("TERM").success());
    let d = Daemon::start(&cfg, &server, 300.0);
    assert_eq!(state(&server), before, "after SIGTERM");
    ok(&["port", "remove", "vm2"]);
    ok(&["flows", "del", "table=1,arp"]);
    let after = state(&server);
    assert!(d.kill("KILL").code().is_none());
    let d = Daemon::start(&cfg, &server, 300.0);
    assert_eq!(state(&server), after, "removals persist too");
    drop(d);
}

#[test]
fn truncated_config_keeps_last_good() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("store-broken");
    let socket = dir.path("api.sock");
    let server = format!("unix:{}", socket.display());
    let cfg = dir.path("ff.toml");
    std::fs::write(
        &cfg,
        config(
            "ff-broken",
            &socket,
            None,
            &port_toml("p1", "net_null0,no-rx=1", 1),
        ),
    )
    .unwrap();
    let d = Daemon::start(&cfg, &server, 300.0);
    let (code, _, err) = ctl(
        &server,
        &[
            "port",
            "add",
            "vm3",
            "--devargs",
            "net_null1,no-rx=1",
            "--ofport",
            "3",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(d.kill("TERM").success());
    let good = std::fs::read_to_string(&cfg).unwrap();
    let last_good = dir.path("ff.toml.last-good");
    assert_eq!(std::fs::read_to_string(&last_good).unwrap(), good);

    // Cut the file in the middle of a string, as a crash of an editor would.
    let cut = good.find("net_null1").unwrap() + 4;
    std::fs::write(&cfg, &good[..cut]).unwrap();
    let out = std::process::Command::new(common::FERROFLOWD)
        .arg("--config")
        .arg(&cfg)
        .arg("--exit-after")
        .arg("5")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let line = good[..cut].lines().count();
    assert!(
        err.contains(&format!("ff.toml:{line}:")),
        "the error names the line ({line}):\n{err}"
    );
    assert!(
        err.contains("ff.toml.last-good"),
        "the error says where the last good file is:\n{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&last_good).unwrap(),
        good,
        "the last good file is kept"
    );
    assert_eq!(
        std::fs::read_to_string(&cfg).unwrap(),
        &good[..cut],
        "the broken file is left for the operator"
    );

    // Restoring the last good file brings everything back.
    std::fs::copy(&last_good, &cfg).unwrap();
    let _d = Daemon::start(&cfg, &server, 300.0);
    let (_, out, _) = ctl(&server, &["--json", "ports"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["p1", "vm3"]);
}
