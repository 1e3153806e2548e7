//! The Grafana dashboard (deploy/grafana/ferroflow.json) and the Prometheus alerting rules
//! (deploy/prometheus/alerts.yml) against a running switch: promtool accepts the rules, a
//! real Prometheus evaluates every rule without error, and every dashboard expression and
//! rule expression evaluates and reads only series the switch exports.
//!
//! The switch's EAL arguments come from tests/common's eal_section: --no-pci, its own
//! --file-prefix, --in-memory and a --socket-limit memory cap.

mod common;
mod mgmt;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{DatapathLock, TempDir};
use mgmt::{config, eventually, port_toml, traffic, Daemon};
use serde_json::Value;

const METRICS: &str = "127.0.0.1:19472";
const PROMETHEUS: &str = "127.0.0.1:19092";
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Kills the Prometheus it started, by PID.
struct Prometheus(std::process::Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn need(tool: &str) {
    assert!(
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "THIS TEST NEEDS {tool}: apt-get install prometheus (tests/setup-host.sh does it)"
    );
}

fn api(path: &str, query: Option<&str>) -> Value {
    let mut c = Command::new("curl");
    c.args(["-s", "--get", &format!("http://{PROMETHEUS}{path}")]);
    if let Some(q) = query {
        c.arg("--data-urlencode").arg(format!("query={q}"));
    }
    let out = c.output().expect("curl");
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// The metric names an expression reads (`ferroflow_...` and `up`).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while let Some(at) = expr[i..].find("ferroflow_") {
        let start = i + at;
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
            end += 1;
        }
        names.insert(expr[start..end].to_owned());
        i = end;
    }
    names
}

fn dashboard_exprs() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(Path::new(ROOT).join("deploy/grafana/ferroflow.json"))
        .expect("deploy/grafana/ferroflow.json");
    let d: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert_eq!(d["uid"], "ferroflow");
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().expect("a PromQL target");
            out.push((
                p["title"].as_str().unwrap_or("").to_owned(),
                expr.to_owned(),
            ));
        }
    }
    assert!(out.len() > 20, "{out:?}");
    out
}

fn alert_rules() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(Path::new(ROOT).join("deploy/prometheus/alerts.yml"))
        .expect("deploy/prometheus/alerts.yml");
    let y: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("YAML");
    let mut out = Vec::new();
    for g in y["groups"].as_sequence().expect("groups") {
        for r in g["rules"].as_sequence().expect("rules") {
            out.push((
                r["alert"].as_str().expect("alert name").to_owned(),
                r["expr"].as_str().expect("expr").to_owned(),
            ));
        }
    }
    out
}

#[test]
fn promtool_accepts_the_alerting_rules() {
    need("promtool");
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(Path::new(ROOT).join("deploy/prometheus/alerts.yml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check rules:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let names: Vec<String> = alert_rules().into_iter().map(|r| r.0).collect();
    for expected in [
        "FerroflowPortDown",
        "FerroflowDropsRising",
        "FerroflowWorkerSaturated",
        "FerroflowWorkerStuck",
        "FerroflowSyncTimeouts",
        "FerroflowTableNearFull",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "no {expected}: {names:?}"
        );
    }
}

#[test]
fn every_dashboard_and_alert_expression_evaluates_on_a_running_switch() {
    need("prometheus");
    let _lock = DatapathLock::take();
    let dir = TempDir::new("dashboards");
    let socket = dir.path("api.sock");
    let pcap = traffic(&dir, "in.pcap", 100);
    let ports = port_toml("src", &format!("net_pcap0,rx_pcap={}", pcap.display()), 1)
        + &port_toml("sink", "net_null0,no-rx=1", 2);
    let mut cfg_text = config("ff-t-dash", &socket, Some(METRICS), &ports);
    // A controller that is never there: its connection state is exported too.
    cfg_text += "\n[bridge]\nfail_mode = \"standalone\"\n\n[[bridge.controllers]]\ntarget = \"tcp:127.0.0.1:9\"\n\n[openflow]\nlisten = [\"ptcp:127.0.0.1:16641\"]\n\n[datapath]\nidle_sleep_us = 100\n";
    let cfg = dir.path("ff.toml");
    std::fs::write(&cfg, cfg_text).unwrap();
    let _d = Daemon::start(&cfg, &format!("unix:{}", socket.display()), 120.0);

    let rules = dir.path("alerts.yml");
    std::fs::copy(Path::new(ROOT).join("deploy/prometheus/alerts.yml"), &rules).unwrap();
    let prom_cfg = dir.path("prometheus.yml");
    std::fs::write(
        &prom_cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: ferroflow\n    static_configs:\n      - targets: ['{METRICS}']\n",
            rules.display()
        ),
    )
    .unwrap();
    let _prom = Prometheus(
        Command::new("prometheus")
            .arg(format!("--config.file={}", prom_cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path("data").display()
            ))
            .arg(format!("--web.listen-address={PROMETHEUS}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path("prometheus.log")).unwrap())
            .spawn()
            .expect("start prometheus"),
    );
    // Enough scrapes for a rate over 10 s.
    eventually(Duration::from_secs(60), "12 scrapes of the switch", || {
        let v = api(
            "/api/v1/query",
            Some("count_over_time(ferroflow_uptime_seconds[1m])"),
        );
        v["data"]["result"][0]["value"][1]
            .as_str()?
            .parse::<f64>()
            .ok()
            .filter(|n| *n >= 12.0)
    });

    let evaluate = |what: &str, expr: &str| -> Value {
        let q = expr
            .replace("$__rate_interval", "10s")
            .replace("$instance", ".*");
        let v = api("/api/v1/query", Some(&q));
        assert_eq!(v["status"], "success", "{what}: {q}\n{v}");
        v["data"]["result"].clone()
    };
    let mut missing = Vec::new();
    let mut checked = BTreeSet::new();
    let mut check_names = |what: &str, expr: &str| {
        for name in metric_names(expr) {
            if !checked.insert(name.clone()) {
                continue;
            }
            let v = api("/api/v1/query", Some(&format!("count({name})")));
            if v["data"]["result"].as_array().is_none_or(|r| r.is_empty()) {
                missing.push(format!("{name} (read by {what})"));
            }
        }
    };

    // The dashboard: every panel shows something on a running switch.
    for (title, expr) in dashboard_exprs() {
        let result = evaluate(&title, &expr);
        check_names(&title, &expr);
        assert!(
            result.as_array().is_some_and(|r| !r.is_empty()),
            "panel {title:?}: {expr} returns no series"
        );
    }
    // The alerts: every expression evaluates (a healthy switch fires few) and reads only
    // exported series, and Prometheus's own rule evaluation reports no error.
    let alerts = alert_rules();
    for (name, expr) in &alerts {
        evaluate(name, expr);
        check_names(name, expr);
    }
    assert!(
        missing.is_empty(),
        "series the switch does not export: {missing:?}"
    );
    let v = eventually(Duration::from_secs(30), "every rule evaluated", || {
        let v = api("/api/v1/rules", None);
        let rules: Vec<Value> = v["data"]["groups"]
            .as_array()?
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        (rules.len() == alerts.len()
            && rules
                .iter()
                .all(|r| r["lastEvaluation"] != "0001-01-01T00:00:00Z"))
        .then_some(rules)
    });
    for r in &v {
        assert_eq!(r["health"], "ok", "rule {}: {}", r["name"], r["lastError"]);
    }
    // The one alert that fires here: the controller that is never there (after its `for`).
    let up = api("/api/v1/query", Some("ferroflow_controller_connected"));
    assert_eq!(up["data"]["result"][0]["value"][1], "0", "{up}");
}
