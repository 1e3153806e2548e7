//! The datapath on a real EAL with net_null/net_ring ports: workers acknowledge published
//! pipeline versions and port changes, removed ports come back detached and close through
//! the closer, a port that cannot be made is reported beside the datapath, and stop keeps
//! to its deadline. (A worker that stops acknowledging is tested end to end with ptrace in
//! the root package's `tests/datapath_faults.rs`.)
//!
//! EAL runs with --no-pci, its own --file-prefix, --in-memory and --socket-limit; the
//! worker busy-polls only between idle sleeps, under /tmp/cpu.lock.

mod common;

use std::fs::File;
use std::time::{Duration, Instant};

use datapath::{Datapath, DatapathError, DatapathSettings, PortSpec, StopReport};
use pipeline::{FlowModReq, FlowTables, Instructions, Match, PipelineConfig, PortInfo};

#[test]
fn versions_and_port_changes_are_acknowledged_and_stop_keeps_its_deadline() {
    let lock = File::create("/tmp/cpu.lock").expect("lock file");
    lock.lock().expect("flock /tmp/cpu.lock");
    let eal = common::eal("epochs-test", "0-1", "ff-t-dp-epochs", 256);
    let mut tables = FlowTables::new(PipelineConfig {
        n_tables: 4,
        workers: eal.worker_lcores().len() + 1,
        ..PipelineConfig::default()
    });
    for ofport in [1, 2, 3] {
        tables.set_port(PortInfo::new(ofport));
    }
    let first = tables.publish();
    let settings = DatapathSettings {
        idle_sleep: Some(Duration::from_micros(200)),
        ack_timeout: Duration::from_secs(2),
        ..DatapathSettings::default()
    };
    let ports = [
        PortSpec::trunk("a", "net_null0,no-rx=1", 1),
        PortSpec::trunk("bad", "net_nosuchdriver0", 9),
        PortSpec::trunk("b", "net_ring0", 2),
    ];
    let (mut dp, failed) = Datapath::start(&eal, &settings, &ports, &tables).expect("datapath");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, "bad");
    assert!(
        matches!(failed[0].1, DatapathError::Port { .. }),
        "{:?}",
        failed[0].1
    );
    let names = |dp: &Datapath| dp.ports().into_iter().map(|p| p.name).collect::<Vec<_>>();
    assert_eq!(names(&dp), ["a", "b"]);

    // Every worker moves to a published version; waiting for one never published gives up
    // on time and names the worker.
    let health = dp.health();
    let bound = Duration::from_secs(5);
    health
        .wait_for_version(first, Instant::now() + bound)
        .expect("workers on the first version");
    tables
        .apply_flow_mod(
            FlowModReq::add(0, 1, Match::any(), Instructions::apply(vec![])),
            Duration::ZERO,
        )
        .unwrap();
    let second = tables.publish();
    assert!(second > first);
    let t = Instant::now();
    health
        .wait_for_version(second, Instant::now() + bound)
        .expect("workers on the new version");
    assert!(t.elapsed() < bound);
    let t = Instant::now();
    let stuck = health
        .wait_for_version(second + 1000, Instant::now() + Duration::from_millis(100))
        .unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(stuck.workers.len(), health.len());
    assert_eq!(stuck.workers[0].lcore, 1);
    assert!(
        health.stuck(Duration::from_secs(1)).is_empty(),
        "running workers are not stuck"
    );

    // A port added and removed: acknowledged, detached, closed by the closer.
    dp.add_port(&eal, &PortSpec::trunk("c", "net_null1,no-rx=1", 3))
        .expect("add c");
    assert!(matches!(
        dp.add_port(&eal, &PortSpec::trunk("c", "net_null2,no-rx=1", 3)),
        Err(DatapathError::PortExists(_))
    ));
    assert_eq!(names(&dp), ["a", "b", "c"]);
    dp.send(3, &[0u8; 60]).expect("packet-out to c");
    let detached = dp.remove_port("c").expect("remove c");
    assert_eq!(detached.name(), "c");
    assert_eq!(names(&dp), ["a", "b"]);
    assert!(
        dp.send(3, &[0u8; 60]).is_err(),
        "no packet-out to a removed port"
    );
    let closer = dp.closer();
    closer.close(detached);
    assert!(closer.drain(Instant::now() + bound).is_empty());
    assert!(dp.reap().is_empty(), "nothing was withdrawn");
    // Its slot and device name can be used again.
    dp.add_port(&eal, &PortSpec::trunk("c2", "net_null1,no-rx=1", 3))
        .expect("add c2 in the freed slot");

    let deadline = Instant::now() + bound;
    let report = dp.stop(deadline);
    assert_eq!(report, StopReport::default());
    assert!(Instant::now() < deadline + Duration::from_millis(500));
    drop(tables);
    drop(eal);
}
