//! `ovs-ofctl -O OpenFlow13` (Open vSwitch's own tool) against ferroflowd's
//! `ptcp:` listener, with namespace hosts behind `net_tap` ports so that flow
//! counters, packet-out and port changes can be seen on real traffic.

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const TARGET: &str = "tcp:127.0.0.1:16634";
/// Table 0 classifies by in_port, table 1 floods ARP and forwards IP between ports 1 and 2.
const TWO_TABLE_FLOWS: &str = "table=0,priority=100,in_port=1,actions=goto_table:1\n\
     table=0,priority=100,in_port=2,actions=goto_table:1\n\
     table=1,priority=10,arp,actions=FLOOD\n\
     table=1,priority=20,ip,in_port=1,actions=output:2\n\
     table=1,priority=20,ip,in_port=2,actions=output:1\n";

struct Bench {
    ff: Ferroflowd,
    a: Netns,
    b: Netns,
}

/// ferroflowd with two tap ports, their kernel sides in namespaces a (198.18.3.1)
/// and b (198.18.3.2), listening for OpenFlow tools.
fn bench(tag: &str) -> Bench {
    let mut config = eal_section(&format!("ff-t-{tag}"));
    config += "[openflow]\nlisten = [\"ptcp:127.0.0.1:16634\"]\n[datapath]\nidle_sleep_us = 200\n";
    for (i, name) in ["a", "b"].iter().enumerate() {
        config += &format!("\n[[ports]]\nname = \"{name}\"\ndevargs = \"net_tap{i},iface=ffof-{name}\"\nofport = {}\n", i + 1);
    }
    let ff = Ferroflowd::start(tag, &config, 300.0);
    let a = Netns::new("ffof-a");
    let b = Netns::new("ffof-b");
    for (ns, ifname, ip) in [
        (&a, "ffof-a", "198.18.3.1/24"),
        (&b, "ffof-b", "198.18.3.2/24"),
    ] {
        wait_for_interface(ifname);
        ns.adopt(ifname, ip);
    }
    Bench { ff, a, b }
}

fn pings(ns: &Netns, dst: &str) -> bool {
    ns.exec(&format!("ping -c 2 -i 0.2 -W 1 {dst}"))
        .status
        .success()
}

#[test]
fn ovs_ofctl_reads_the_switch() {
    let _lock = DatapathLock::take();
    let bench = bench("ofctl-read");
    let show = ofctl_ok(&["show", TARGET]);
    assert!(show.contains("dpid:0000000000000001"), "{show}");
    assert!(show.contains("n_tables:255"), "{show}");
    assert!(
        show.contains("1(a): addr:") && show.contains("2(b): addr:"),
        "{show}"
    );
    let desc = ofctl_ok(&["dump-desc", TARGET]);
    assert!(desc.contains("Manufacturer: Ferroflow"), "{desc}");
    let tables = ofctl_ok(&["dump-tables", TARGET]);
    assert!(
        tables.contains("table 0:") && tables.contains("active=1"),
        "{tables}"
    );
    let features = ofctl_ok(&["dump-table-features", TARGET]);
    assert!(
        features.contains("table 254"),
        "every table is described: {features:.2000}"
    );
    assert!(
        features.contains("goto_table") && features.contains("apply_actions"),
        "{features:.2000}"
    );
    let ports = ofctl_ok(&["dump-ports", TARGET]);
    assert!(ports.contains("2 ports"), "{ports}");
    let desc = ofctl_ok(&["dump-ports-desc", TARGET]);
    assert!(
        desc.contains("config:     0") && desc.contains("speed: 10000 Mbps now"),
        "{desc}"
    );
    // The default table-miss entry, as an Open vSwitch bridge has.
    let flows = ofctl_ok(&["dump-flows", TARGET]);
    assert!(flows.contains("priority=0 actions=NORMAL"), "{flows}");
    assert!(pings(&bench.a, "198.18.3.2"), "NORMAL forwards");
    let flows = ofctl_ok(&["dump-flows", TARGET]);
    assert!(
        n_packets(&flows, "actions=NORMAL") >= 4,
        "counters move with traffic:\n{flows}"
    );
    drop(bench.ff.stop());
}

#[test]
fn flows_added_modified_and_deleted_steer_real_traffic() {
    let _lock = DatapathLock::take();
    let bench = bench("ofctl-flows");
    let dir = TempDir::new("ofctl-flows-file");
    // A two-table pipeline: table 0 classifies by in_port (+ ARP), table 1 forwards by
    // destination MAC after learning nothing: explicit outputs.
    ofctl_ok(&["del-flows", TARGET]);
    assert!(
        !pings(&bench.a, "198.18.3.2"),
        "no flows: everything is dropped"
    );
    let file = dir.path("flows.txt");
    std::fs::write(&file, TWO_TABLE_FLOWS).unwrap();
    ofctl_ok(&["add-flows", TARGET, file.to_str().unwrap()]);
    let flows = ofctl_ok(&["dump-flows", TARGET]);
    assert_eq!(
        flows.lines().filter(|l| l.contains("cookie=")).count(),
        5,
        "{flows}"
    );
    assert!(
        pings(&bench.a, "198.18.3.2"),
        "the two-table pipeline forwards:\n{flows}"
    );
    let flows = ofctl_ok(&["dump-flows", TARGET]);
    assert!(
        n_packets(&flows, "priority=20,ip,in_port=1") >= 2,
        "{flows}"
    );
    let agg = ofctl_ok(&["dump-aggregate", TARGET]);
    assert!(agg.contains("flow_count=5"), "{agg}");

    // mod-flows replaces the actions of every matching flow: IP from a is now dropped.
    ofctl_ok(&["mod-flows", TARGET, "table=1,ip,in_port=1,actions=drop"]);
    assert!(!pings(&bench.a, "198.18.3.2"), "modified flow drops");
    // A strict delete removes exactly one flow; ARP still floods.
    ofctl_ok(&[
        "--strict",
        "del-flows",
        TARGET,
        "table=1,priority=20,ip,in_port=1",
    ]);
    let flows = ofctl_ok(&["dump-flows", TARGET]);
    assert_eq!(
        flows.lines().filter(|l| l.contains("cookie=")).count(),
        4,
        "{flows}"
    );
    ofctl_ok(&[
        "add-flow",
        TARGET,
        "table=1,priority=20,ip,in_port=1,actions=output:2",
    ]);
    assert!(pings(&bench.a, "198.18.3.2"), "re-added flow forwards");
    // A non-strict delete of table 1 removes the three table-1 flows.
    ofctl_ok(&["del-flows", TARGET, "table=1"]);
    let flows = ofctl_ok(&["dump-flows", TARGET]);
    assert_eq!(
        flows.lines().filter(|l| l.contains("cookie=")).count(),
        2,
        "{flows}"
    );
    assert!(!pings(&bench.a, "198.18.3.2"));

    // Bad flows get OpenFlow errors and change nothing.
    let (success, text) = ofctl(&[
        "add-flow",
        TARGET,
        "table=0,priority=1,actions=goto_table:0",
    ]);
    assert!(
        !success && text.contains("OFPBIC_BAD_TABLE_ID"),
        "backward goto refused: {text}"
    );
    let (success, text) = ofctl(&["add-flow", TARGET, "table=0,priority=1,actions=group:99"]);
    assert!(
        !success && text.contains("OFPBAC_BAD_OUT_GROUP"),
        "unknown group refused: {text}"
    );
    drop(bench.ff.stop());
}

#[test]
fn packet_out_groups_meters_and_port_mod() {
    let _lock = DatapathLock::take();
    let bench = bench("ofctl-misc");
    // packet-out: an ARP request from the controller appears on b.
    let pcap = bench.ff.dir.path("b.pcap");
    let pcap = pcap.to_str().unwrap().to_owned();
    let mut cap = Command::new("ip")
        .args([
            "netns",
            "exec",
            "ffof-b",
            "tcpdump",
            "-nn",
            "-U",
            "--immediate-mode",
            "-i",
            "ffof-b",
            "-w",
            &pcap,
        ])
        .stderr(Stdio::null())
        .spawn()
        .expect("tcpdump");
    std::thread::sleep(Duration::from_millis(1500));
    let arp = "ffffffffffff02000000aaaa08060001080006040001\
               02000000aaaac6120363000000000000c6120302";
    ofctl_ok(&[
        "packet-out",
        TARGET,
        &format!("in_port=controller packet={arp} actions=output:2"),
    ]);
    std::thread::sleep(Duration::from_millis(500));
    run(&format!("kill -INT {}", cap.id()));
    let _ = cap.wait();
    let seen = bench.b.exec(&format!(
        "tcpdump -nn -e -r {pcap} ether src 02:00:00:00:aa:aa"
    ));
    let seen = String::from_utf8_lossy(&seen.stdout).into_owned();
    assert!(
        seen.contains("Request who-has 198.18.3.2 tell 198.18.3.99"),
        "packet-out not seen on b:\n{seen}"
    );

    // Groups: an ALL group used by a flow, counters move.
    ofctl_ok(&["add-group", TARGET, "group_id=1,type=all,bucket=output:2"]);
    let groups = ofctl_ok(&["dump-groups", TARGET]);
    assert!(
        groups.contains("group_id=1,type=all,bucket=actions=output:2"),
        "{groups}"
    );
    ofctl_ok(&[
        "add-flow",
        TARGET,
        "table=0,priority=50,in_port=1,ip,actions=group:1",
    ]);
    assert!(pings(&bench.a, "198.18.3.2"));
    let stats = ofctl_ok(&["dump-group-stats", TARGET]);
    assert!(
        stats.contains("ref_count=1") && !stats.contains("packet_count=0,"),
        "{stats}"
    );
    let (success, text) = ofctl(&["add-group", TARGET, "group_id=1,type=all,bucket=output:1"]);
    assert!(!success && text.contains("OFPGMFC_GROUP_EXISTS"), "{text}");

    // Meters: a drop band; meter stats count the packets metered.
    ofctl_ok(&[
        "add-meter",
        TARGET,
        "meter=1,pktps,band=type=drop,rate=1000",
    ]);
    ofctl_ok(&[
        "add-flow",
        TARGET,
        "table=0,priority=60,in_port=2,ip,actions=meter:1,output:1",
    ]);
    assert!(pings(&bench.a, "198.18.3.2"));
    let meters = ofctl_ok(&["meter-stats", TARGET]);
    assert!(
        meters.contains("meter:1 flow_count:1") && !meters.contains("packet_in_count:0 "),
        "{meters}"
    );
    let config = ofctl_ok(&["dump-meters", TARGET]);
    assert!(
        config.contains("meter=1 pktps bands=") && config.contains("type=drop rate=1000"),
        "{config}"
    );

    // mod-port: down stops output to the port, up restores it.
    ofctl_ok(&["mod-port", TARGET, "2", "down"]);
    let desc = ofctl_ok(&["dump-ports-desc", TARGET]);
    assert!(desc.contains("PORT_DOWN"), "{desc}");
    assert!(
        !pings(&bench.a, "198.18.3.2"),
        "a port that is down forwards nothing"
    );
    ofctl_ok(&["mod-port", TARGET, "2", "up"]);
    assert!(pings(&bench.a, "198.18.3.2"));
    drop(bench.ff.stop());
}

#[test]
fn monitor_sees_packet_ins_and_port_status() {
    let _lock = DatapathLock::take();
    let bench = bench("ofctl-monitor");
    ofctl_ok(&[
        "add-flow",
        TARGET,
        "table=0,priority=200,icmp,actions=CONTROLLER:128",
    ]);
    let log = bench.ff.dir.path("monitor.txt");
    // monitor keeps a control socket; give it one in the test's directory.
    let ctl = format!("--unixctl={}", bench.ff.dir.path("ofctl.ctl").display());
    let mut monitor = Command::new("timeout")
        .args([
            "-s",
            "INT",
            "30",
            "ovs-ofctl",
            "-O",
            "OpenFlow13",
            &ctl,
            "monitor",
            TARGET,
            "65534",
        ])
        .stdout(Stdio::null())
        // ovs-ofctl monitor prints the messages it receives on stderr.
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let _ = pings(&bench.a, "198.18.3.2");
    ofctl_ok(&["mod-port", TARGET, "1", "down"]);
    std::thread::sleep(Duration::from_millis(1000));
    run(&format!("kill -INT {}", monitor.id()));
    let _ = monitor.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("OFPT_PACKET_IN") && text.contains("icmp"),
        "no packet-in in monitor output:\n{text}"
    );
    assert!(
        text.contains("OFPT_PORT_STATUS") && text.contains("PORT_DOWN"),
        "no port status:\n{text}"
    );
    drop(bench.ff.stop());
}

/// `ovs-ofctl --bundle` (the ONF bundle extension with OpenFlow 1.3): a bundle lands
/// whole, a bundle with one bad flow-mod lands not at all and ovs-ofctl reports the
/// error, replace-flows and del-flows work as bundles.
#[test]
fn bundles_apply_all_or_nothing() {
    let _lock = DatapathLock::take();
    let bench = bench("ofctl-bundle");
    let dir = TempDir::new("ofctl-bundle-file");
    let count = || {
        ofctl_ok(&["dump-flows", TARGET])
            .lines()
            .filter(|l| l.contains("cookie="))
            .count()
    };
    ofctl_ok(&["del-flows", TARGET]);
    let good = dir.path("good.txt");
    std::fs::write(&good, TWO_TABLE_FLOWS).unwrap();
    ofctl_ok(&["--bundle", "add-flows", TARGET, good.to_str().unwrap()]);
    assert_eq!(count(), 5);
    assert!(
        pings(&bench.a, "198.18.3.2"),
        "the bundled pipeline forwards"
    );

    // One bad flow-mod (an unknown group) among good ones: nothing of the bundle lands,
    // the rest keeps forwarding.
    let bad = dir.path("bad.txt");
    std::fs::write(
        &bad,
        "table=2,priority=5,ip,actions=drop\n\
         table=0,priority=200,in_port=1,actions=group:99\n\
         table=2,priority=6,arp,actions=drop\n",
    )
    .unwrap();
    let (success, text) = ofctl(&["--bundle", "add-flows", TARGET, bad.to_str().unwrap()]);
    assert!(!success, "a bundle with a bad flow-mod fails:\n{text}");
    // The commit fails too (OFPBFC_MSG_FAILED), which ovs-ofctl reports as a protocol
    // error of the bundle after the error of the flow-mod that caused it.
    assert!(
        text.contains("OFPBAC_BAD_OUT_GROUP"),
        "ovs-ofctl names the bad flow-mod's error:\n{text}"
    );
    assert_eq!(count(), 5, "nothing of the failed bundle was applied");
    assert!(pings(&bench.a, "198.18.3.2"));

    // replace-flows: the table becomes exactly the file (in_port 1 no longer forwards).
    let replace = dir.path("replace.txt");
    std::fs::write(
        &replace,
        "table=0,priority=100,in_port=2,actions=goto_table:1\n\
         table=1,priority=10,arp,actions=FLOOD\n\
         table=1,priority=20,ip,in_port=2,actions=output:1\n",
    )
    .unwrap();
    ofctl_ok(&[
        "--bundle",
        "replace-flows",
        TARGET,
        replace.to_str().unwrap(),
    ]);
    let flows = ofctl_ok(&["dump-flows", TARGET]);
    assert_eq!(count(), 3, "{flows}");
    assert!(!flows.contains("in_port=1"), "{flows}");
    assert!(
        !pings(&bench.a, "198.18.3.2"),
        "a's flows were replaced away"
    );

    ofctl_ok(&["--bundle", "del-flows", TARGET]);
    assert_eq!(count(), 0);
    let log = bench.ff.log_text();
    assert!(!log.contains("panicked"), "{log}");
    drop(bench.ff.stop());
}
