//! Bursts that table 0 decides whole (its entry by in_port only outputs, or its miss
//! drops: the worker sends the burst out without extracting keys or walking packets) go
//! exactly where walking every packet would send them, and every counter users read says
//! so: net_pcap sources of distinct frames, one per rule kind (two outputs, one output, a
//! FLOOD, a dropping miss), into net_pcap sinks whose files must hold each source's frames
//! in order, with the ports' rx/forwarded/dropped/tx, the entries' packets and bytes and
//! table 0's lookups and matches exact.
//!
//! EAL runs with --no-pci, its own --file-prefix, --in-memory and --socket-limit; the
//! worker busy-polls only between idle sleeps, for a few seconds, under /tmp/cpu.lock.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use datapath::{Datapath, DatapathSettings, PortSpec};
use packet::Field;
use pipeline::group::OFPG_ANY;
use pipeline::ports::{OFPP_ANY, OFPP_FLOOD};
use pipeline::{Action, FlowModReq, FlowTables, Instructions, Match, PipelineConfig, PortInfo};

/// Frames per source.
const FRAMES: usize = 200;

/// Source `src`'s frame `i`: its own source MAC and sequence number, lengths 60 to 187.
fn frame(src: u8, i: usize) -> Vec<u8> {
    let mut f = vec![0u8; 60 + (i * 7) % 128];
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0x99, 0x99]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, src, 1]);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f[14..16].copy_from_slice(&(i as u16).to_be_bytes());
    f
}

fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
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
    std::fs::write(path, b).unwrap();
}

fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let b = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= b.len() {
        let len = u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
        out.push(b[at + 16..at + 16 + len].to_vec());
        at += 16 + len;
    }
    out
}

/// The frames of `path` from source `src`, in the order written.
fn from_source(frames: &[Vec<u8>], src: u8) -> Vec<Vec<u8>> {
    frames.iter().filter(|f| f[10] == src).cloned().collect()
}

#[test]
fn decided_bursts_go_where_the_walk_sends_them_and_count_exactly() {
    let lock = File::create("/tmp/cpu.lock").expect("lock file");
    lock.lock().expect("flock /tmp/cpu.lock");
    let dir = PathBuf::from(format!("/tmp/ff-t-decided-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let eal = common::eal("decided-bursts-test", "0-1", "ff-t-dp-decided", 256);
    let mut tables = FlowTables::new(PipelineConfig {
        n_tables: 2,
        workers: eal.worker_lcores().len() + 1,
        ..PipelineConfig::default()
    });
    // Sources 1, 4, 5, 6 (left out of FLOOD: they have no tx file); sinks 2 and 3.
    for ofport in 1..=6 {
        let mut info = PortInfo::new(ofport);
        info.no_flood = ![2, 3].contains(&ofport);
        tables.set_port(info);
    }
    let rule = |in_port: u128, actions: Vec<Action>| {
        FlowModReq::add(
            0,
            10,
            Match::exact(&[(Field::InPort, in_port)]),
            Instructions::apply(actions),
        )
    };
    for req in [
        rule(1, vec![Action::output(2), Action::output(3)]),
        rule(4, vec![Action::output(3)]),
        rule(5, vec![Action::output(OFPP_FLOOD)]),
        // Source 6 has no entry: table 0's misses drop.
    ] {
        tables.apply_flow_mod(req, Duration::ZERO).unwrap();
    }
    tables.publish();
    let sources = [(1u8, "s1"), (4, "s4"), (5, "s5"), (6, "s6")];
    let mut specs = Vec::new();
    for (i, &(ofport, name)) in sources.iter().enumerate() {
        let input = dir.join(format!("{name}.pcap"));
        let frames: Vec<_> = (0..FRAMES).map(|k| frame(ofport, k)).collect();
        write_pcap(&input, &frames);
        let devargs = format!("net_pcap{i},rx_pcap={},tx_pcap=/dev/null", input.display());
        specs.push(PortSpec::trunk(name, &devargs, u32::from(ofport)));
    }
    for (i, ofport) in [(4, 2u32), (5, 3)] {
        let out = dir.join(format!("out{ofport}.pcap"));
        let devargs = format!("net_pcap{i},tx_pcap={}", out.display());
        specs.push(PortSpec::trunk(&format!("o{ofport}"), &devargs, ofport));
    }
    let settings = DatapathSettings {
        idle_sleep: Some(Duration::from_micros(200)),
        ..DatapathSettings::default()
    };
    let (dp, failed) = Datapath::start(&eal, &settings, &specs, &tables).expect("datapath");
    assert!(failed.is_empty(), "{failed:?}");
    // Until every source's frames were received and the sinks sent what they got.
    let want_tx = |name: &str| match name {
        "o2" => 2 * FRAMES as u64,
        "o3" => 3 * FRAMES as u64,
        _ => 0,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let ports = loop {
        let ports = dp.ports();
        let done = ports.iter().all(|p| {
            let s = &p.switch_stats;
            let rx = if p.name.starts_with('s') {
                FRAMES as u64
            } else {
                0
            };
            s.rx_packets == rx && s.tx_packets + s.tx_dropped == want_tx(&p.name)
        });
        if done || Instant::now() > deadline {
            break ports;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let report = dp.stop(Instant::now() + Duration::from_secs(10));
    assert!(report.workers_not_stopped.is_empty(), "{report:?}");
    for p in &ports {
        let s = &p.switch_stats;
        let bytes: u64 = (0..FRAMES).map(|k| frame(1, k).len() as u64).sum();
        match p.name.as_str() {
            "s6" => {
                assert_eq!(
                    (s.rx_packets, s.dropped, s.forwarded),
                    (FRAMES as u64, FRAMES as u64, 0),
                    "{p:?}"
                );
                assert_eq!(s.rx_bytes, bytes, "{p:?}");
            }
            n if n.starts_with('s') => {
                assert_eq!(
                    (s.rx_packets, s.forwarded, s.dropped),
                    (FRAMES as u64, FRAMES as u64, 0),
                    "{p:?}"
                );
                assert_eq!(s.rx_bytes, bytes, "{p:?}");
            }
            n => {
                assert_eq!((s.tx_packets, s.tx_dropped), (want_tx(n), 0), "{p:?}");
                assert_eq!(p.driver_stats.tx_packets, want_tx(n), "{p:?}");
            }
        }
        if p.name.starts_with('s') {
            assert_eq!(
                s.tx_packets + s.tx_dropped,
                0,
                "no output to a source: {p:?}"
            );
        }
        assert_eq!(
            s.to_controller + s.action_errors + s.meter_drops,
            0,
            "{p:?}"
        );
    }
    // The sinks' files: each source's frames, whole and in order.
    let sent = |src: u8| (0..FRAMES).map(|k| frame(src, k)).collect::<Vec<_>>();
    let out2 = read_pcap(&dir.join("out2.pcap"));
    let out3 = read_pcap(&dir.join("out3.pcap"));
    assert_eq!(out2.len(), 2 * FRAMES);
    assert_eq!(out3.len(), 3 * FRAMES);
    for (out, srcs) in [(&out2, &[1u8, 5][..]), (&out3, &[1, 4, 5][..])] {
        for &src in srcs {
            assert_eq!(from_source(out, src), sent(src), "source {src}");
        }
    }
    // Entries and table 0 counted per burst, exactly.
    let entries = tables
        .flow_counts(0, &Match::any(), 0, 0, OFPP_ANY, OFPG_ANY)
        .unwrap();
    assert_eq!(entries.len(), 3);
    let bytes: u64 = sent(1).iter().map(|f| f.len() as u64).sum();
    for e in &entries {
        assert_eq!(
            (e.packets, e.bytes),
            (FRAMES as u64, bytes),
            "{:?}",
            e.entry.match_
        );
    }
    let t0 = tables.table_counts()[0];
    assert_eq!(
        (t0.lookups, t0.matches),
        (4 * FRAMES as u64, 3 * FRAMES as u64)
    );
    drop(tables);
    drop(eal);
    std::fs::remove_dir_all(&dir).unwrap();
}
