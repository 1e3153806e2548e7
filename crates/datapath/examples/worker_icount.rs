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
    let walked = std::env::var("FF_ICOUNT_WALK").is_ok_and(|v| v == "1");
    let mut tables = FlowTables::new(PipelineConfig {
        n_tables: if walked { 2 } else { 1 },
        workers: eal.worker_lcores().len() + 1,
        ..PipelineConfig::default()
    });
    for ofport in [1, 2] {
        tables.set_port(PortInfo::new(ofport));
    }
    let output = Instructions::apply(vec![Action::output(2)]);
    let flows = if walked {
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
    let settings = DatapathSettings::default();
    let ports = [
        PortSpec::trunk("in", "net_null0,size=64", 1),
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
    println!("worker: {forwarded} packets measured (entry counts {stats:?}), stop {report:?}");
    drop(tables);
    drop(eal);
}
