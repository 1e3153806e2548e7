//! ferroflowctl end to end: ports and flows added from the command line,
//! traffic through them moves the counters it prints, errors give the exit
//! statuses scripts rely on, and everything can be removed again.

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.
mod mgmt;

use std::time::Duration;

use common::{DatapathLock, TempDir};
use mgmt::{config, ctl, eventually, traffic, Daemon};
use serde_json::Value;

fn port<'a>(ports: &'a Value, name: &str) -> Option<&'a Value> {
    ports.as_array()?.iter().find(|p| p["name"] == name)
}

fn counter(p: &Value, name: &str) -> u64 {
    p["counters"][name].as_u64().unwrap_or(0)
}

#[test]
fn ports_flows_and_counters_end_to_end() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("ctl-e2e");
    let socket = dir.path("api.sock");
    let server = format!("unix:{}", socket.display());
    let cfg = dir.path("ff.toml");
    std::fs::write(&cfg, config("ff-ctl", &socket, None, "")).unwrap();
    let pcap = traffic(&dir, "in.pcap", 100);
    let _d = Daemon::start(&cfg, &server, 300.0);
    let ok = |args: &[&str]| {
        let (code, out, err) = ctl(&server, args);
        assert_eq!(code, 0, "ferroflowctl {args:?}: {out}{err}");
        out
    };

    let out = ok(&[
        "port",
        "add",
        "sink",
        "--devargs",
        "net_null0,no-rx=1",
        "--ofport",
        "2",
    ]);
    assert!(out.contains("added port sink (OpenFlow port 2"), "{out}");
    ok(&[
        "flows",
        "add",
        "table=0,priority=100,in_port=1,actions=output:2",
    ]);
    let devargs = format!("net_pcap0,rx_pcap={}", pcap.display());
    ok(&["port", "add", "src", "--devargs", &devargs, "--ofport", "1"]);

    let ports: Value = eventually(
        Duration::from_secs(15),
        "100 packets from src to sink",
        || {
            let v: Value = serde_json::from_str(&ok(&["--json", "ports"])).ok()?;
            let (src, sink) = (port(&v, "src")?, port(&v, "sink")?);
            (counter(src, "rx_packets") == 100 && counter(sink, "tx_packets") == 100).then_some(v)
        },
    );
    assert_eq!(counter(port(&ports, "src").unwrap(), "forwarded"), 100);
    let dump = ok(&["flows", "dump", "table=0,in_port=1"]);
    assert!(
        dump.contains("n_packets=100, n_bytes=6000 priority=100,in_port=1 actions=output:2"),
        "{dump}"
    );

    // The table: a header, then one aligned row per port.
    let table = ok(&["ports"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("PORT") && lines[0].contains("RX_PKTS"),
        "{table}"
    );
    let col = lines[0].find("RX_PKTS").unwrap() + "RX_PKTS".len();
    let src_row = lines
        .iter()
        .find(|l| l.starts_with("src "))
        .expect("src row");
    assert_eq!(
        &src_row[col - 3..col],
        "100",
        "right-aligned counter under its header:\n{table}"
    );
    let status = ok(&["status"]);
    assert!(status.contains("CYCLES/PKT"), "{status}");
    let show = ok(&["port", "show", "src"]);
    assert!(
        show.contains("rx_packets") && show.contains("100"),
        "{show}"
    );
    let stats = ok(&["--json", "stats", "--watch", "0.2", "--count", "2"]);
    assert_eq!(stats.lines().count(), 2, "{stats}");
    let tables = ok(&["tables"]);
    assert!(tables.contains("LOOKUPS"), "{tables}");

    // Exit statuses.
    let expect = |code: i32, args: &[&str]| {
        let (c, out, err) = ctl(&server, args);
        assert_eq!(c, code, "ferroflowctl {args:?}: {out}{err}");
        err
    };
    let err = expect(
        5,
        &["port", "add", "sink", "--devargs", "net_null5,no-rx=1"],
    );
    assert!(err.contains("sink"), "{err}");
    expect(4, &["port", "remove", "nope"]);
    let err = expect(2, &["flows", "add", "in_port=1,frobnicate=2,actions=drop"]);
    assert!(err.contains("frobnicate"), "{err}");
    expect(6, &["flows", "add", "actions=group:7"]);
    // A file goes whole (the server splits its lines): a bad line is named by its
    // number, and the batch, the flows given as arguments with it included, is all or
    // nothing.
    let flows_file = dir.path("add.flows");
    std::fs::write(
        &flows_file,
        "# table 5\ntable=5,priority=1,actions=drop\n\ntable=5,frobnicate=1,actions=drop\n",
    )
    .unwrap();
    let file_arg = flows_file.to_str().unwrap();
    let err = expect(
        2,
        &[
            "flows",
            "add",
            "table=5,priority=9,actions=drop",
            "-f",
            file_arg,
        ],
    );
    assert!(
        err.contains("line 4") && err.contains("frobnicate"),
        "{err}"
    );
    std::fs::write(
        &flows_file,
        "# table 5\ntable=5,priority=1,actions=drop\n\n  table=5,priority=2,ip,actions=drop\n",
    )
    .unwrap();
    let added = ok(&[
        "--json",
        "flows",
        "add",
        "table=5,priority=9,actions=drop",
        "-f",
        file_arg,
    ]);
    let v: Value = serde_json::from_str(&added).unwrap();
    assert_eq!(v["changes"].as_u64(), Some(3), "{added}");
    let dump = ok(&["flows", "dump", "table=5"]);
    assert_eq!(dump.lines().count(), 3, "{dump}");
    let out = ok(&["flows", "del", "table=5"]);
    assert!(out.contains("deleted 3 flows"), "{out}");
    expect(2, &["port", "add", "x"]);
    let (c, _, err) = ctl("unix:/nonexistent/ferroflow.sock", &["ports"]);
    assert_eq!(c, 3, "{err}");
    let json = ctl(&server, &["--json", "port", "remove", "nope"]).1;
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (v["ok"].as_bool(), v["exit"].as_u64()),
        (Some(false), Some(4))
    );

    // Groups and meters from the command line.
    ok(&["groups", "add", "group_id=3,type=all,bucket=output:2"]);
    ok(&["meters", "add", "meter=4,pktps,band=type=drop,rate=10"]);
    assert!(ok(&["groups", "dump"]).contains("group_id=3,type=all"));
    assert!(ok(&["meters", "dump"]).contains("meter=4,pktps"));
    ok(&["groups", "del", "group_id=3"]);
    ok(&["meters", "del", "meter=4"]);

    // And away again.
    let out = ok(&["flows", "del", "table=0,in_port=1"]);
    assert!(out.contains("deleted 1 flows"), "{out}");
    ok(&["port", "remove", "src"]);
    ok(&["port", "del", "sink"]);
    let v: Value = serde_json::from_str(&ok(&["--json", "ports"])).unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(0), "{v}");
}
