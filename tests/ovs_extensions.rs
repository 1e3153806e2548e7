//! The Open vSwitch extensions real flow tables use (`resubmit`, registers, `move`,
//! `load`, `note`, `ct_clear`, masked transport ports), written by the real
//! `ovs-ofctl -O OpenFlow13` into ferroflowd and proven on traffic between namespace
//! hosts behind `net_tap` ports. Dumps must print each flow exactly as Open vSwitch
//! prints the same flow (`ovs-ofctl parse-flow` is the reference).

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.

use std::time::Duration;

use common::*;

const TARGET: &str = "tcp:127.0.0.1:16635";

/// The switch and its two hosts (`bench.a`, `bench.a_mac`, ... through [`TwoHosts`]).
struct Bench {
    ff: Ferroflowd,
    hosts: TwoHosts,
    /// The gRPC server (`unix:...`) for ferroflowctl.
    grpc: String,
    _grpc_dir: TempDir,
}

impl std::ops::Deref for Bench {
    type Target = TwoHosts;

    fn deref(&self) -> &TwoHosts {
        &self.hosts
    }
}

/// ferroflowd with two tap ports, their kernel sides in namespaces a (198.18.5.1) and b
/// (198.18.5.2), an OpenFlow listener for ovs-ofctl, and no flows at all.
fn bench(tag: &str) -> Bench {
    let grpc_dir = TempDir::new(&format!("ovsext-{tag}-grpc"));
    let grpc = format!("unix:{}", grpc_dir.path("ff.sock").display());
    let mut config = eal_section(&format!("ff-x-{tag}"));
    config += "[openflow]\nlisten = [\"ptcp:127.0.0.1:16635\"]\n[datapath]\nidle_sleep_us = 200\n";
    config += &format!("[grpc]\nlisten = \"{grpc}\"\n");
    for (i, name) in ["a", "b"].iter().enumerate() {
        config += &format!(
            "\n[[ports]]\nname = \"{name}\"\ndevargs = \"net_tap{i},iface=ffox-{name}\"\nofport = {}\n",
            i + 1
        );
    }
    let ff = Ferroflowd::start(tag, &config, 100.0);
    let hosts = TwoHosts::new("ffox", "198.18.5");
    ofctl_ok(&["del-flows", TARGET]);
    Bench {
        ff,
        hosts,
        grpc,
        _grpc_dir: grpc_dir,
    }
}

fn pings(ns: &Netns, dst: &str, extra: &str) -> bool {
    ns.exec(&format!("ping -c 2 -i 0.2 -W 1 {extra} {dst}"))
        .status
        .success()
}

/// A dump-flows line without the counters and the age: what follows `n_bytes=N, `.
fn dumped(line: &str) -> String {
    let rest = line.split("n_bytes=").nth(1).unwrap_or(line);
    rest.split_once(", ")
        .map(|x| x.1)
        .unwrap_or(rest)
        .trim()
        .to_owned()
}

/// What Open vSwitch prints for `flow` (without its table), from `ovs-ofctl parse-flow`.
fn ovs_text(flow: &str) -> String {
    let out = ofctl_ok(&["parse-flow", flow]);
    let line = out.lines().last().unwrap_or_default();
    let body = line.split_once("ADD ").map(|x| x.1).unwrap_or(line).trim();
    body.split(' ')
        .filter(|w| !w.starts_with("table:"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The seed's L2 tables (classifier, switch_normal) verbatim, `resubmit(,N)` and all, with
/// its variables filled in; then registers carrying a value from one table to another,
/// which decides where traffic goes.
#[test]
fn seed_flows_with_resubmit_and_registers_carry_traffic() {
    let _lock = DatapathLock::take();
    let bench = bench("seed");
    let (classifier, switch_normal) = (0, 1);
    let dir = TempDir::new("ovsext-seed");
    // From /work/shared/seed/openflow-integration.md, "L2 switching, default network".
    let seed = [
        format!(
            "table={classifier},priority=10,in_port=1,dl_src={},action=resubmit(,{switch_normal})",
            bench.a_mac
        ),
        format!("table={classifier},priority=10,in_port=2,action=resubmit(,{switch_normal})"),
        format!(
            "table={switch_normal},dl_dst={},action=output:2",
            bench.b_mac
        ),
        format!(
            "table={switch_normal},dl_dst={},action=output:1",
            bench.a_mac
        ),
        // Unknown unicast and broadcast flood within the network.
        format!("table={switch_normal},priority=1,action=FLOOD"),
    ];
    let file = dir.path("seed.flows");
    std::fs::write(&file, seed.join("\n") + "\n").unwrap();
    ofctl_ok(&["add-flows", TARGET, file.to_str().unwrap()]);
    assert!(
        pings(&bench.a, "198.18.5.2", ""),
        "a reaches b through resubmit"
    );
    let dump = ofctl_ok(&["dump-flows", TARGET]);
    let needle = format!("dl_src={} actions=resubmit(,1)", bench.a_mac);
    assert!(n_packets(&dump, &needle) >= 2, "{dump}");
    assert!(
        n_packets(&dump, &format!("dl_dst={} actions=output:2", bench.b_mac)) >= 2,
        "{dump}"
    );
    for flow in &seed {
        let want = ovs_text(flow);
        assert!(
            dump.lines().any(|l| dumped(l) == want),
            "dump lacks {want:?} (as Open vSwitch prints {flow:?}):\n{dump}"
        );
    }
    // A spoofed source from a is not classified: the seed's anti-spoofing holds.
    bench
        .a
        .exec("ip link set ffox-a address 02:00:00:00:0a:0a && ip neigh flush all");
    assert!(
        !pings(&bench.a, "198.18.5.2", ""),
        "a frame from an unknown MAC on port 1 matches no classifier entry"
    );
    bench
        .a
        .exec(&format!("ip link set ffox-a address {}", bench.a_mac));

    // Registers: table 0 writes reg0 (load) and reg1 (set_field) per ingress port and
    // resubmits; table 1 forwards only when both carry what table 0 wrote, then copies
    // reg0 into reg2 (move) and table 2 outputs on reg2. ICMP with TOS 0x20 goes through
    // the register path only.
    ofctl_ok(&["del-flows", TARGET]);
    let regs = [
        "table=0,priority=100,ip,nw_tos=32,in_port=1,actions=load:0x2->NXM_NX_REG0[],set_field:0xa1->reg1,resubmit(,1)",
        "table=0,priority=100,ip,nw_tos=32,in_port=2,actions=load:0x1->NXM_NX_REG0[],set_field:0xb2->reg1,resubmit(,1)",
        "table=0,priority=10,actions=NORMAL",
        "table=1,priority=100,reg0=0x2,reg1=0xa1,actions=move:NXM_NX_REG0[]->NXM_NX_REG2[],resubmit(,2)",
        "table=1,priority=100,reg0=0x1,reg1=0xb2,actions=move:NXM_NX_REG0[]->NXM_NX_REG2[],resubmit(,2)",
        "table=2,priority=100,reg2=0x2,actions=output:2",
        "table=2,priority=100,reg2=0x1,actions=output:1",
    ];
    let file = dir.path("regs.flows");
    std::fs::write(&file, regs.join("\n") + "\n").unwrap();
    ofctl_ok(&["add-flows", TARGET, file.to_str().unwrap()]);
    assert!(
        pings(&bench.a, "198.18.5.2", "-Q 0x20"),
        "registers carry the output port"
    );
    let dump = ofctl_ok(&["dump-flows", TARGET]);
    assert!(n_packets(&dump, "reg2=0x2 actions=output:2") >= 2, "{dump}");
    assert!(n_packets(&dump, "reg2=0x1 actions=output:1") >= 2, "{dump}");
    for flow in &regs {
        let want = ovs_text(flow);
        assert!(
            dump.lines().any(|l| dumped(l) == want),
            "dump lacks {want:?}:\n{dump}"
        );
    }
    // Break the chain in table 1: the register match fails, the TOS 0x20 pings die, the
    // plain ones still pass through NORMAL.
    ofctl_ok(&[
        "mod-flows",
        TARGET,
        "table=1,reg0=0x2,reg1=0xa1,actions=move:NXM_NX_REG0[]->NXM_NX_REG3[],resubmit(,2)",
    ]);
    assert!(
        !pings(&bench.a, "198.18.5.2", "-Q 0x20"),
        "reg2 unset: no output"
    );
    assert!(pings(&bench.a, "198.18.5.2", ""));
    drop(bench.ff.stop());
}

/// Every extension through `add-flow` comes back from `dump-flows` exactly as Open vSwitch
/// prints the same flow; the same flows through `--bundle`; a resubmit loop hits the
/// depth limit, is counted, and the switch keeps forwarding.
#[test]
fn every_extension_round_trips_and_a_resubmit_loop_is_bounded() {
    let _lock = DatapathLock::take();
    let bench = bench("round");
    let flows = [
        "table=0,priority=10,in_port=1,actions=resubmit(,1)",
        "table=0,priority=11,in_port=2,actions=resubmit:1",
        "table=0,priority=12,in_port=2,tcp,actions=resubmit(1,3)",
        "table=0,priority=13,reg0=0x5,actions=resubmit(LOCAL,4),resubmit(,0)",
        "table=1,priority=20,tcp,tp_dst=0x1000/0xf000,actions=load:0x5->NXM_NX_REG1[0..7],set_field:0x7->reg2,move:NXM_NX_REG0[]->NXM_NX_REG3[]",
        "table=1,priority=21,reg3=0x10/0xf0,reg15=0x1,actions=set_field:0x5/0xff->reg3,note:01.02.03,ct_clear,output:2",
        "table=1,priority=22,actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],load:0x1->OXM_OF_METADATA[],load:0xaabb->NXM_OF_ETH_DST[0..15]",
        "table=1,priority=23,tcp,tp_src=0x400/0xff00,actions=move:NXM_NX_REG0[0..15]->NXM_OF_TCP_DST[],move:OXM_OF_METADATA[0..31]->NXM_NX_REG5[],move:NXM_OF_IP_SRC[]->NXM_NX_REG6[]",
        "table=2,priority=24,udp,reg1=0x2,metadata=0x1,in_port=1,tp_src=0x8/0xfff8,actions=set_field:0x5->xreg1,load:0x1->NXM_NX_REG4[31]",
        "table=2,priority=25,actions=set_field:0x1/0x3->reg0,set_field:0x50/0xf0f0->reg1,move:NXM_NX_REG1[3..6]->NXM_NX_REG2[10..13]",
        "table=2,priority=26,udp,tp_dst=0x35/0xfff0,actions=set_field:0x3->reg7,write_actions(output:1)",
    ];
    for f in &flows {
        ofctl_ok(&["add-flow", TARGET, f]);
    }
    let dump = ofctl_ok(&["dump-flows", TARGET]);
    for flow in &flows {
        let want = ovs_text(flow);
        assert!(
            dump.lines().any(|l| dumped(l) == want),
            "dump lacks {want:?} (as Open vSwitch prints {flow:?}):\n{dump}"
        );
    }
    // The same through a bundle (the ONF extension ovs-ofctl --bundle uses).
    ofctl_ok(&["del-flows", TARGET]);
    let dir = TempDir::new("ovsext-round");
    let file = dir.path("all.flows");
    std::fs::write(&file, flows.join("\n") + "\n").unwrap();
    ofctl_ok(&["--bundle", "add-flows", TARGET, file.to_str().unwrap()]);
    let dump2 = ofctl_ok(&["dump-flows", TARGET]);
    for flow in &flows {
        let want = ovs_text(flow);
        assert!(
            dump2.lines().any(|l| dumped(l) == want),
            "bundle: dump lacks {want:?}:\n{dump2}"
        );
    }
    // Refusals as Open vSwitch words them: an extension in write-actions, a load past
    // its field.
    let (okay, text) = ofctl(&[
        "add-flow",
        TARGET,
        "table=3,actions=write_actions(resubmit(,1))",
    ]);
    assert!(!okay, "{text}");
    let (okay, text) = ofctl(&[
        "add-flow",
        TARGET,
        "table=3,actions=load:0x1ff->NXM_NX_REG0[0..7]",
    ]);
    assert!(!okay, "ovs-ofctl itself refuses a value too wide: {text}");
    // Table features say so: the registers are matchable and the Nicira vendor's actions
    // are in apply-actions.
    let features = ofctl_ok(&["dump-table-features", TARGET]);
    assert!(
        features.contains("reg0") && features.contains("xreg7"),
        "{features:.3000}"
    );

    // A loop: ICMP with TOS 0x20 resubmits between tables 0 and 1 forever; the rest goes
    // NORMAL.
    ofctl_ok(&["del-flows", TARGET]);
    for f in [
        "table=0,priority=100,ip,nw_tos=32,actions=resubmit(,1)",
        "table=1,priority=100,ip,nw_tos=32,actions=resubmit(,0)",
        "table=0,priority=10,actions=NORMAL",
    ] {
        ofctl_ok(&["add-flow", TARGET, f]);
    }
    assert!(
        !pings(&bench.a, "198.18.5.2", "-Q 0x20"),
        "looping packets are dropped"
    );
    assert!(
        pings(&bench.a, "198.18.5.2", ""),
        "the switch keeps forwarding"
    );
    let mut ff = bench.ff;
    ff.wait_until(Duration::from_secs(5), "the drops in the stats", |f| {
        let s = f.stats_json();
        Ferroflowd::port(&s, "a")["switch_stats"]["resubmit_limit_drops"]
            .as_u64()
            .unwrap_or(0)
            >= 2
    });
    let dump = ofctl_ok(&["dump-flows", TARGET]);
    assert!(
        n_packets(&dump, "nw_tos=32 actions=resubmit(,1)") >= 2,
        "the loop entry counts the packets: {dump}"
    );
    drop(ff.stop());
}

fn ctl(server: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(ferroflowctl())
        .arg("--server")
        .arg(server)
        .args(args)
        .output()
        .expect("run ferroflowctl")
}

/// A TCP connection attempt from `ns` to `dst:port`: `Some(true)` if the peer answered
/// (accepted or refused: the SYN went through), `Some(false)` if nothing came back in 2 s.
fn tcp_answered(ns: &Netns, dst: &str, port: u16) -> bool {
    let o = ns.exec(&format!(
        "timeout 2 bash -c 'exec 3<>/dev/tcp/{dst}/{port}' 2>&1; echo rc=$?"
    ));
    let text = String::from_utf8_lossy(&o.stdout);
    !text.contains("rc=124")
}

/// The OpenStack firewall driver's conjunctive pattern (remote addresses x destination
/// ports) through `ovs-ofctl add-flows`: traffic in both sets passes, traffic outside
/// either is dropped; the dump prints every flow as Open vSwitch does; `ferroflowctl
/// trace` shows the clause entries, then the conj_id entry; a conjunction beside another
/// action is refused.
#[test]
fn conjunctive_address_set_times_port_set_filters_traffic() {
    let _lock = DatapathLock::take();
    let bench = bench("conj");
    let dir = TempDir::new("ovsext-conj");
    let flows = [
        "table=0,priority=100,arp,actions=FLOOD",
        // Replies from b always pass (a stateless stand-in for ct's +est).
        "table=0,priority=50,ip,nw_src=198.18.5.2,actions=output:1",
        // Remote group {198.18.5.1, 198.18.5.7} x {ICMP echo, TCP 8080-8095}.
        "table=0,priority=70,ip,nw_src=198.18.5.1,actions=conjunction(10,1/2)",
        "table=0,priority=70,ip,nw_src=198.18.5.7,actions=conjunction(10,1/2)",
        "table=0,priority=70,icmp,icmp_type=8,actions=conjunction(10,2/2)",
        "table=0,priority=70,tcp,tp_dst=0x1f90/0xfff0,actions=conjunction(10,2/2)",
        "table=0,priority=70,conj_id=10,ip,actions=output:2",
        "table=0,priority=0,actions=drop",
    ];
    let file = dir.path("conj.flows");
    std::fs::write(&file, flows.join("\n") + "\n").unwrap();
    ofctl_ok(&["add-flows", TARGET, file.to_str().unwrap()]);
    assert!(
        pings(&bench.a, "198.18.5.2", ""),
        "ICMP echo from the group passes"
    );
    assert!(
        tcp_answered(&bench.a, "198.18.5.2", 8081),
        "TCP 8081 passes (b refuses it)"
    );
    assert!(
        !tcp_answered(&bench.a, "198.18.5.2", 9000),
        "TCP 9000 is in no clause: dropped"
    );

    // The dump prints each flow as Open vSwitch prints the same flow.
    let dump = ofctl_ok(&["dump-flows", TARGET]);
    for f in flows {
        let want = ovs_text(f);
        assert!(
            dump.lines().any(|l| dumped(l) == want),
            "{f} dumped as {want:?} in:\n{dump}"
        );
    }
    assert!(
        n_packets(&dump, "conj_id=10") >= 2,
        "the conj_id entry counts: {dump}"
    );

    // The trace: both clauses that matched, then the conj_id entry and its output.
    let t = ctl(
        &bench.grpc,
        &[
            "trace",
            &format!(
                "in_port=a,dl_src={},dl_dst={},icmp,nw_src=198.18.5.1,nw_dst=198.18.5.2,icmp_type=8",
                bench.a_mac, bench.b_mac
            ),
        ],
    );
    let text = String::from_utf8_lossy(&t.stdout);
    assert!(
        t.status.success(),
        "trace: {text}{}",
        String::from_utf8_lossy(&t.stderr)
    );
    // Shown with --nocapture (docs/conjunctions.md quotes it).
    eprintln!("{dump}\n{text}");
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in the trace:\n{text}"))
    };
    let (c1, c2, conj) = (
        at("conjunction(10,1/2)"),
        at("conjunction(10,2/2)"),
        at("conj_id=10"),
    );
    assert!(
        c1 < conj && c2 < conj,
        "clauses before the conj_id entry:\n{text}"
    );
    assert!(
        text[conj..].contains("output:b"),
        "then its output:\n{text}"
    );

    // Without its ICMP clause the conjunction no longer covers pings.
    ofctl_ok(&[
        "--strict",
        "del-flows",
        TARGET,
        "table=0,priority=70,icmp,icmp_type=8",
    ]);
    assert!(
        !pings(&bench.a, "198.18.5.2", ""),
        "no ICMP clause: dropped"
    );
    assert!(
        tcp_answered(&bench.a, "198.18.5.2", 8090),
        "the TCP clause still passes"
    );

    // Open vSwitch's refusal: a conjunction beside another action (ovs-ofctl checks this
    // itself; the gRPC path goes to the switch).
    let o = ctl(
        &bench.grpc,
        &[
            "flows",
            "add",
            "table=0,priority=70,ip,nw_src=198.18.5.9,actions=conjunction(10,1/2),output:2",
        ],
    );
    assert!(!o.status.success(), "conjunction with output refused");
    let err = String::from_utf8_lossy(&o.stderr).to_lowercase();
    assert!(err.contains("conjunction"), "the refusal names it: {err}");
    drop(bench.ff.stop());
}
