//! The whole worker loop per packet, PMDs included (rx burst, extraction, the walk, tx
//! batching, the flush to the tx queue and the counters), for scenario A (one rule,
//! in_port=1 -> output:2): `perf/icount.sh` counts only the pipeline path, this counts
//! what the worker does around it. A net_null port receives (frames of zeros, enough for
//! an in_port-only table) and a net_null port with no rx transmits; the datapath runs
//! until its worker has forwarded `packets` packets, then stops.
//!
//! ```text
//! cargo build --release -p datapath --example worker_icount
//! flock /tmp/cpu.lock valgrind --tool=callgrind --toggle-collect='dpdk::lcore::trampoline' \
//!     target/release/examples/worker_icount 50000 --base-virtaddr=0x7000000000
//! callgrind_annotate --inclusive=yes callgrind.out.<pid> | grep -E 'Worker::(walk|flush) \[|rx_burst \['
//! ```
//!
//! With `FF_ICOUNT_WALK=1` the same forwarding takes two tables (in_port=1 -> goto 1,
//! then output:2), so every packet is walked instead of its burst being sent whole: the
//! worker's path for the bursts table 0 does not decide.
//!
//! With `FF_ICOUNT_WALK=b1k` the tables are B1k's (`../shared/bench/flows/B1k.flows`:
//! the metadata DNAT entry and 1k `in_port=1,dl_src` -> goto 1 in table 0, 1k `dl_dst` ->
//! output:2 in table 1, misses dropped) and the source is a `net_pcap` replaying B1k's 1k
//! frames (`../shared/bench/gen-pcap.py`'s addressing: instance `s` to `s + 1`, IPv4/TCP,
//! 60 bytes; written to a temporary file here), so every packet is a walked B1k packet
//! (two one-line lookups, one final output to a plain port):
//!
//! ```text
//! FF_ICOUNT_WALK=b1k flock /tmp/cpu.lock valgrind --tool=callgrind \
//!     --toggle-collect='dpdk::lcore::trampoline' \
//!     target/release/examples/worker_icount 50000 --base-virtaddr=0x7000000000
//! ```
//!
//! `FF_ICOUNT_WALK=b1k-md` is B1k-md: the same, with every tenth flow (`k % 10 == 9`, as
//! `gen-pcap.py --metadata-every 10` makes it) sent to the metadata service
//! 169.254.169.254:80, which the DNAT entry rewrites and outputs.
//!
//! With `FF_ICOUNT_WALK=b10k` the same for B10k's tables (10k instances: 2 MiB of rows
//! in each table, prefetched per burst) and 10k frames, one per instance (B10k's pcap has
//! 100k, 10 per instance with other source ports: the same rows), with the pool sized
//! for them:
//!
//! ```text
//! FF_ICOUNT_WALK=b10k flock /tmp/cpu.lock valgrind --tool=callgrind \
//!     --toggle-collect='dpdk::lcore::trampoline' \
//!     target/release/examples/worker_icount 50000 --base-virtaddr=0x7000000000
//! ```
//!
//! Arguments after the packet count go to EAL: under valgrind it needs
//! `--base-virtaddr` (valgrind refuses EAL's reservation of its memory segments' address
//! range at the default place). The worker's loop (`Worker::run`, inlined into the lcore
//! trampoline) also spins idle while the control plane adds the ports, slowly under
//! valgrind, so divide the inclusive counts of `Worker::walk` (extraction, the walks, the
//! tx batching), `Worker::flush` (the tx burst, the PMD freeing the mbufs) and
//! `ff_eth_rx_burst` by the packets printed (the entry's count), not the whole run's.
//! EAL runs with --no-pci, --in-memory, its own --file-prefix and --socket-limit; the
//! worker busy-polls for as long as it takes to forward the packets (seconds, a minute
//! under valgrind), under /tmp/cpu.lock taken by the caller.

use std::time::{Duration, Instant};

use datapath::{Datapath, DatapathSettings, PortSpec};
use dpdk::Eal;
use packet::Field;
use pipeline::{Action, FlowModReq, FlowTables, Instructions, Match, PipelineConfig, PortInfo};

fn main() {
    let packets: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let args: Vec<String> = [
        "worker-icount",
        "-l",
        "0-1",
        "--no-pci",
        "--in-memory",
        "--file-prefix",
        "ff-perfa-worker-icount",
        "--socket-limit",
        "256",
        "--log-level",
        "lib.eal:error",
    ]
    .iter()
    .map(|s| s.to_string())
    // Further EAL arguments (e.g. --legacy-mem, which valgrind needs: it refuses EAL's
    // reservation of the whole address range for memory segments).
    .chain(std::env::args().skip(2))
    .collect();
    let eal = Eal::init(&args).expect("EAL (hugepages: tests/setup-host.sh)");
    // FF_ICOUNT_WALK=1: the same forwarding in two tables (in_port=1 -> goto 1, then
    // output:2 for all), so that every packet is walked: the worker's path for the bursts
    // table 0 does not decide (B1k's and the like), around a walk of two wildcard lookups.
    let scenario = std::env::var("FF_ICOUNT_WALK").unwrap_or_default();
    let walked = scenario == "1";
    let b1k_md = scenario == "b1k-md";
    let instances = match scenario.as_str() {
        "b10k" => 10_000,
        _ => 1000,
    };
    let b1k = scenario == "b1k" || scenario == "b10k" || b1k_md;
    let mut tables = FlowTables::new(PipelineConfig {
        n_tables: if walked || b1k { 2 } else { 1 },
        workers: eal.worker_lcores().len() + 1,
        ..PipelineConfig::default()
    });
    for ofport in [1, 2] {
        tables.set_port(PortInfo::new(ofport));
    }
    let output = Instructions::apply(vec![Action::output(2)]);
    let flows = if b1k {
        b1k_flows(instances)
    } else if walked {
        let goto = Instructions {
            goto: Some(1),
            ..Instructions::default()
        };
        vec![
            FlowModReq::add(0, 100, Match::exact(&[(Field::InPort, 1)]), goto),
            FlowModReq::add(1, 0, Match::any(), output),
        ]
    } else {
        vec![FlowModReq::add(
            0,
            100,
            Match::exact(&[(Field::InPort, 1)]),
            output,
        )]
    };
    for f in flows {
        tables.apply_flow_mod(f, Duration::ZERO).unwrap();
    }
    tables.publish();
    let mut settings = DatapathSettings::default();
    if b1k {
        // net_pcap holds one mbuf per frame of its pcap for the whole run.
        settings.mbufs = instances as u32 + 16_384;
    }
    // B1k's frames, replayed for ever by net_pcap; removed when the run ends.
    let pcap = std::env::temp_dir().join(format!("ff-worker-icount-{}.pcap", std::process::id()));
    let source = if b1k {
        let frames: Vec<_> = (0..instances)
            .map(|k| b1k_frame(k, instances, b1k_md))
            .collect();
        write_pcap(&pcap, &frames);
        format!("net_pcap0,rx_pcap={},infinite_rx=1", pcap.display())
    } else {
        "net_null0,size=64".to_string()
    };
    let ports = [
        PortSpec::trunk("in", &source, 1),
        PortSpec::trunk("out", "net_null1,no-rx=1", 2),
    ];
    let (dp, failed) = Datapath::start(&eal, &settings, &ports, &tables).expect("datapath");
    assert!(failed.is_empty(), "{failed:?}");
    // Bounded: whatever happens, the worker stops within the deadline.
    let deadline = Instant::now() + Duration::from_secs(900);
    let forwarded = loop {
        let n: u64 = dp.workers().iter().map(|w| w.packets).sum();
        if n >= packets || Instant::now() > deadline {
            break n;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let report = dp.stop(Instant::now() + Duration::from_secs(30));
    let stats: Vec<_> = tables
        .flow_counts(
            0,
            &Match::any(),
            0,
            0,
            pipeline::ports::OFPP_ANY,
            pipeline::group::OFPG_ANY,
        )
        .unwrap()
        .into_iter()
        .map(|c| c.packets)
        .collect();
    let _ = std::fs::remove_file(&pcap);
    let stats = if b1k {
        format!("[{} in table 0]", stats.iter().sum::<u64>())
    } else {
        format!("{stats:?}")
    };
    println!("worker: {forwarded} packets measured (entry counts {stats}), stop {report:?}");
    drop(tables);
    drop(eal);
}

/// Instance `i`'s MAC, as `gen-pcap.py` and `gen-flows.py` make it.
fn mac(i: u64) -> u64 {
    0x0200_0000_0000 | (i & 0xff_ffff)
}

/// B1k's tables (`instances` 1000) or B10k's (10_000), as
/// `../shared/bench/flows/B1k.flows` and `B10k.flows` hold them.
fn b1k_flows(instances: u64) -> Vec<FlowModReq> {
    let dnat = Match::exact(&[
        (Field::EthType, 0x0800),
        (Field::IpProto, 6),
        (Field::Ipv4Dst, 0xa9fe_a9fe),
        (Field::TcpDst, 80),
    ]);
    let set = |field, value| Action::SetField { field, value };
    let mut flows = vec![FlowModReq::add(
        0,
        1000,
        dnat,
        Instructions::apply(vec![
            set(Field::EthDst, 0x0200_00fe_0001),
            set(Field::Ipv4Dst, 0x0afe_0001),
            set(Field::TcpDst, 8775),
            Action::output(2),
        ]),
    )];
    for i in 0..instances {
        let goto = Instructions {
            goto: Some(1),
            ..Instructions::default()
        };
        let cls = Match::exact(&[(Field::InPort, 1), (Field::EthSrc, mac(i).into())]);
        flows.push(FlowModReq::add(0, 100, cls, goto));
        let sw = Match::exact(&[(Field::EthDst, mac(i).into())]);
        let out = Instructions::apply(vec![Action::output(2)]);
        flows.push(FlowModReq::add(1, 100, sw, out));
    }
    for t in [0, 1] {
        flows.push(FlowModReq::add(t, 0, Match::any(), Instructions::default()));
    }
    flows
}

/// Flow `k` of B1k's traffic: instance `k` to instance `k + 1`, IPv4/TCP to port 80;
/// with `md`, every tenth flow to the metadata service (169.254.169.254:80) instead.
fn b1k_frame(k: u64, instances: u64, md: bool) -> Vec<u8> {
    let (s, d) = (k % instances, (k + 1) % instances);
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&mac(d).to_be_bytes()[2..]);
    f.extend_from_slice(&mac(s).to_be_bytes()[2..]);
    f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&(0x0a00_0001 + s as u32).to_be_bytes());
    let dst = if md && k % 10 == 9 {
        0xa9fe_a9fe
    } else {
        0x0a00_0001 + d as u32
    };
    f.extend_from_slice(&dst.to_be_bytes());
    f.extend_from_slice(&1024u16.to_be_bytes());
    f.extend_from_slice(&80u16.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0x20, 0, 0, 0, 0, 0]);
    f.resize(60, 0);
    f
}

/// A libpcap file (Ethernet) holding `frames`.
fn write_pcap(path: &std::path::Path, frames: &[Vec<u8>]) {
    // Magic, version 2.4, time zone, sigfigs, snaplen, link type Ethernet.
    let mut b = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
    b.extend(2u16.to_le_bytes());
    b.extend(4u16.to_le_bytes());
    for x in [0u32, 0, 65535, 1] {
        b.extend(x.to_le_bytes());
    }
    for f in frames {
        for x in [0u32, 0, f.len() as u32, f.len() as u32] {
            b.extend(x.to_le_bytes());
        }
        b.extend(f);
    }
    std::fs::write(path, b).expect("the pcap of B1k's frames");
}
