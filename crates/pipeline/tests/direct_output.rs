//! A walk that hands its one final plain output back to the caller
//! ([`Pipeline::process_in_burst_direct`]: the worker then sends the packet to that port's
//! tx batch itself) emits exactly what [`Pipeline::process`] emits once the caller sends
//! the returned output last: the same ports, queues, emit kinds and frames in the same
//! order, the same verdict, the same packet-ins and the same entry counts. Random tables of
//! three tables: plain, unknown, blocked, LOCAL and reserved outputs (IN_PORT, ALL, FLOOD,
//! CONTROLLER), outputs to the ingress port, set-queue, header edits between outputs,
//! groups (an ALL group with an edit in a bucket), resubmits, gotos, write-actions and
//! misses of every policy; packets from every port. Both kinds of answer (an output handed
//! back, or none) must come up often.

mod common;

use std::time::Duration;

use common::{set_random_ports, InOrder, XorShift};

use packet::{extract, Field, FlowKey, PacketBuf, VecBuf};
use pipeline::ports::{OFPP_ALL, OFPP_CONTROLLER, OFPP_FLOOD, OFPP_IN_PORT, OFPP_LOCAL};
use pipeline::{
    Action, ActionSet, Bucket, BurstCounts, Emit, FlowModReq, FlowTables, GroupModCommand,
    GroupModReq, GroupType, Instructions, Match, MissPolicy, PipelineConfig, Sink, WriteActions,
};

const PORTS: u32 = 5;
const TABLES: u8 = 3;

fn random_action(rng: &mut XorShift, in_port: u32) -> Action {
    match rng.next(20) {
        0 => Action::output(OFPP_IN_PORT),
        1 => Action::output(OFPP_ALL),
        2 => Action::output(OFPP_FLOOD),
        3 => Action::output(OFPP_LOCAL),
        4 => Action::output(in_port),
        5 => Action::output(9), // unknown to the switch
        6 if rng.next(3) == 0 => Action::output(OFPP_CONTROLLER),
        7 => Action::SetQueue(1 + rng.next(3) as u32),
        8 => Action::SetField {
            field: Field::EthDst,
            value: 0x0200_0000_0000 | u128::from(rng.next(256)),
        },
        9 => Action::Group(1),
        10 if rng.next(2) == 0 => Action::Resubmit {
            in_port: (rng.next(2) == 0).then(|| 1 + rng.next(u64::from(PORTS)) as u32),
            table: Some(rng.next(u64::from(TABLES)) as u8),
        },
        _ => Action::output(1 + rng.next(u64::from(PORTS)) as u32),
    }
}

fn random_tables(rng: &mut XorShift) -> FlowTables {
    let mut ft = FlowTables::new(PipelineConfig {
        n_tables: TABLES,
        ..Default::default()
    });
    set_random_ports(&mut ft, rng, PORTS);
    ft.apply_group_mod(
        GroupModReq {
            command: GroupModCommand::Add,
            kind: GroupType::All,
            group_id: 1,
            buckets: vec![
                Bucket::new(vec![Action::output(2)]),
                Bucket::new(vec![
                    Action::SetField {
                        field: Field::EthSrc,
                        value: 0x0200_0000_00ee,
                    },
                    Action::output(3),
                ]),
            ],
        },
        Duration::ZERO,
    )
    .unwrap();
    for t in 0..TABLES {
        let miss = match rng.next(4) {
            0 => MissPolicy::Drop,
            1 => MissPolicy::Controller { max_len: 128 },
            _ => MissPolicy::GotoNext,
        };
        ft.set_miss_policy(t, miss).unwrap();
        for in_port in 1..=PORTS {
            if rng.next(4) == 0 {
                continue;
            }
            let actions = (0..rng.next(4))
                .map(|_| random_action(rng, in_port))
                .collect();
            let mut i = Instructions::apply(actions);
            if rng.next(4) == 0 {
                let list: Vec<Action> = (0..1 + rng.next(2))
                    .map(|_| random_action(rng, in_port))
                    .collect();
                let mut set = ActionSet::default();
                for a in &list {
                    set.write(a);
                }
                i.write = Some(Box::new(WriteActions {
                    list: list.into(),
                    set,
                }));
            }
            if t + 1 < TABLES && rng.next(3) == 0 {
                i.goto = Some(t + 1 + rng.next(u64::from(TABLES - t - 1)) as u8);
            }
            if rng.next(5) == 0 {
                i.metadata = Some((7, 0xff));
            }
            // Some entries by in_port and source MAC (a hash table), some by in_port alone.
            let m = if rng.next(2) == 0 {
                Match::exact(&[(Field::InPort, u128::from(in_port))])
            } else {
                Match::exact(&[
                    (Field::InPort, u128::from(in_port)),
                    (Field::EthSrc, 0x0200_0000_0001),
                ])
            };
            ft.apply_flow_mod(FlowModReq::add(t, 10, m, i), Duration::ZERO)
                .unwrap();
        }
    }
    ft.publish();
    ft
}

/// Packets and bytes of every entry of every table.
fn entry_counts(ft: &mut FlowTables) -> Vec<(u64, u64)> {
    let all = ft
        .flow_counts(
            pipeline::pipeline::OFPTT_ALL,
            &Match::any(),
            0,
            0,
            pipeline::ports::OFPP_ANY,
            pipeline::group::OFPG_ANY,
        )
        .unwrap();
    all.into_iter().map(|c| (c.packets, c.bytes)).collect()
}

#[test]
fn direct_output_equals_the_walk() {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let frame = {
        let mut f = vec![0u8; 64];
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 0x99]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f
    };
    let (mut handed_back, mut not) = (0, 0);
    // Versions whose direct walks start with the plain prefix (table 0 has a simple
    // entry), and those without it.
    let (mut plain, mut general) = (0, 0);
    for _ in 0..1000 {
        // The same tables twice: each way of walking counts on its own copy.
        let seed = rng.next(u64::MAX) | 1;
        let mut walked = random_tables(&mut XorShift(seed));
        let mut direct = random_tables(&mut XorShift(seed));
        let (pw, pd) = (walked.current(), direct.current());
        if pd.plain_walks {
            plain += 1;
        } else {
            general += 1;
        }
        let (mut cw, mut cd) = (walked.worker_context(0), direct.worker_context(0));
        for in_port in (1..=PORTS + 1).chain([OFPP_LOCAL]) {
            let mut kw = extract(&frame, in_port);
            let mut kd: FlowKey = kw;
            let (mut bw, mut bd) = (VecBuf::new(&frame), VecBuf::new(&frame));
            let (mut rw, mut rd) = (InOrder::default(), InOrder::default());
            let vw = pw.process(&mut bw, &mut kw, &mut cw, &mut rw);
            let counts = BurstCounts::default();
            let (vd, out) = pd.process_in_burst_direct(&mut bd, &mut kd, &mut cd, &mut rd, counts);
            match out {
                Some(port) => {
                    handed_back += 1;
                    rd.output(port, None, &bd, Emit::Final);
                }
                None => not += 1,
            }
            assert_eq!(rw.0, rd.0, "in_port {in_port}, tables {walked:?}");
            assert_eq!(vw, vd, "in_port {in_port}");
            assert_eq!(bw.data(), bd.data());
            assert!(kw == kd, "the keys differ after the walks");
            let packet_ins = |ft: &FlowTables| -> Vec<(u8, u8, u64, Vec<u8>)> {
                let q = ft.packet_in_queue().drain();
                q.into_iter()
                    .map(|r| (r.reason as u8, r.table_id, r.cookie, r.data))
                    .collect()
            };
            assert_eq!(packet_ins(&walked), packet_ins(&direct));
        }
        drop((pw, pd, cw, cd));
        assert_eq!(entry_counts(&mut walked), entry_counts(&mut direct));
        // Table lookups and matches too (the direct walk counts them in the context).
        let tables = |ft: &mut FlowTables| -> Vec<(u8, u64, u64)> {
            let c = ft.table_counts();
            c.into_iter()
                .map(|t| (t.table_id, t.lookups, t.matches))
                .collect()
        };
        assert_eq!(tables(&mut walked), tables(&mut direct));
    }
    assert!(
        plain > 300 && general > 20,
        "plain {plain}, general {general}"
    );
    eprintln!("handed back {handed_back}, not {not}");
    assert!(
        handed_back > 400 && not > 1000,
        "handed back {handed_back}, not {not}"
    );
}
