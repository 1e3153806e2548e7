//! Publication under load: a control thread flips the rules between two sets A and B with
//! one batch per publish, while workers process bursts, each loading the current version
//! once per burst. Every packet must get exactly A's or B's complete answer, and the
//! counters must add up to the packets processed.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{frame, PktSpec, L3};
use packet::{extract, Field, PacketBuf, VecBuf};
use pipeline::group::OFPG_ANY;
use pipeline::ports::OFPP_ANY;
use pipeline::FlowModCommand;
use pipeline::{
    Action, Emit, FlowModReq, FlowTables, Instructions, Match, PipelineConfig, PortInfo, Sink,
};

const MAC_A: u128 = 0x0200_0000_00aa;
const MAC_B: u128 = 0x0200_0000_00bb;

struct Last {
    out: Vec<(u32, [u8; 6])>,
}

impl Sink<VecBuf> for Last {
    fn output(&mut self, port: u32, _q: Option<u32>, pkt: &VecBuf, _e: Emit) {
        let mut d = [0u8; 6];
        d.copy_from_slice(&pkt.data()[..6]);
        self.out.push((port, d));
    }
    fn clone_packet(&mut self, pkt: &VecBuf) -> Option<VecBuf> {
        Some(pkt.clone())
    }
}

/// Rule set A: table 0 sets eth_dst=AA and goes to table 1, which outputs to 2.
/// Rule set B: eth_dst=BB, and table 1 outputs to 3. Both are applied as MODIFY_STRICT so
/// the entries (and their counters) persist.
fn set(ft: &mut FlowTables, b: bool, command: FlowModCommand) {
    let (mac, port) = if b { (MAC_B, 3) } else { (MAC_A, 2) };
    let t0 = Instructions {
        apply: Some(
            vec![Action::SetField {
                field: Field::EthDst,
                value: mac,
            }]
            .into(),
        ),
        goto: Some(1),
        ..Default::default()
    };
    let mut r0 = FlowModReq::add(0, 10, Match::exact(&[(Field::InPort, 1)]), t0);
    r0.command = command;
    let mut r1 = FlowModReq::add(
        1,
        10,
        Match::any(),
        Instructions::apply(vec![Action::output(port)]),
    );
    r1.command = command;
    ft.apply_flow_mod(r0, Duration::ZERO).unwrap();
    ft.apply_flow_mod(r1, Duration::ZERO).unwrap();
}

#[test]
fn workers_see_whole_versions_and_counters_add_up() {
    const WORKERS: usize = 2;
    let mut ft = FlowTables::new(PipelineConfig {
        n_tables: 2,
        workers: WORKERS,
        ..Default::default()
    });
    for p in 1..=3 {
        ft.set_port(PortInfo::new(p));
    }
    set(&mut ft, false, FlowModCommand::Add);
    ft.publish();
    let handle = ft.handle();
    let stop = Arc::new(AtomicBool::new(false));
    let f = frame(&PktSpec {
        dst: 0x0200_0000_0002,
        src: 0x0200_0000_0001,
        vlan: None,
        l3: L3::Ipv4 {
            src: 1,
            dst: 2,
            proto: 17,
            ttl: 9,
            sport: 1,
            dport: 2,
        },
    });
    let a_answer = vec![(2u32, [2, 0, 0, 0, 0, 0xaa])];
    let b_answer = vec![(3u32, [2, 0, 0, 0, 0, 0xbb])];
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let mut ctx = ft.worker_context(w);
            let handle = handle.clone();
            let stop = stop.clone();
            let (f, a, b) = (f.clone(), a_answer.clone(), b_answer.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                let (mut seen_a, mut seen_b) = (0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    let pl = handle.load();
                    for _ in 0..32 {
                        let mut pkt = VecBuf::new(&f);
                        let mut key = extract(&f, 1);
                        let mut sink = Last { out: Vec::new() };
                        pl.process(&mut pkt, &mut key, &mut ctx, &mut sink);
                        if sink.out == a {
                            seen_a += 1;
                        } else if sink.out == b {
                            seen_b += 1;
                        } else {
                            panic!("mixed answer {:?}", sink.out);
                        }
                        n += 1;
                    }
                }
                (n, seen_a, seen_b)
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut flips = 0u32;
    while Instant::now() < deadline {
        flips += 1;
        set(&mut ft, flips % 2 == 1, FlowModCommand::ModifyStrict);
        ft.publish();
        // Lets retired versions go and folds their counts while workers run.
        ft.fold_counters();
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    let (mut ta, mut tb) = (0, 0);
    for h in workers {
        let (n, a, b) = h.join().unwrap();
        total += n;
        ta += a;
        tb += b;
    }
    assert!(flips > 100, "flips {flips}");
    assert!(ta > 0 && tb > 0, "both versions were seen: {ta} {tb}");
    assert!(ft.is_quiescent());
    let stats = ft.table_counts();
    assert_eq!(stats[0].lookups, total);
    assert_eq!(stats[0].matches, total);
    assert_eq!(stats[1].lookups, total);
    let c0 = ft
        .flow_counts(0, &Match::any(), 0, 0, OFPP_ANY, OFPG_ANY)
        .unwrap();
    let c1 = ft
        .flow_counts(1, &Match::any(), 0, 0, OFPP_ANY, OFPG_ANY)
        .unwrap();
    assert_eq!(
        c0.iter().map(|c| c.packets).sum::<u64>(),
        total,
        "per-entry hits across {flips} versions"
    );
    assert_eq!(c1.iter().map(|c| c.packets).sum::<u64>(), total);
    assert_eq!(c0[0].bytes, total * f.len() as u64);
}
