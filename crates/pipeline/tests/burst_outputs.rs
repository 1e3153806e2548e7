//! A burst sent out whole from table 0's answer ([`Pipeline::burst_outputs`]: no key, no
//! walk; what the worker does for a port-to-port rule) goes exactly where walking each of
//! its packets ([`Pipeline::process`]) sends it: the same ports in the same order, every
//! output final, nothing to the controller, no drop reason. Random table-0 entries by
//! in_port (outputs to plain, unknown, blocked and reserved ports, the ingress port, gotos,
//! metadata writes, edits, CONTROLLER, NORMAL), random port states (down, no-forward,
//! no-flood) and miss policies, every ingress port including one with no entry; and the
//! answers that do not decide the walk must say so (`None`), which the walk shows by doing
//! something a port list cannot describe.

mod common;

use std::time::Duration;

use common::{set_random_ports, InOrder, XorShift};

use packet::{extract, Field, VecBuf};
use pipeline::ports::{
    OFPP_ALL, OFPP_CONTROLLER, OFPP_FLOOD, OFPP_IN_PORT, OFPP_LOCAL, OFPP_NORMAL,
};
use pipeline::{
    Action, Emit, FlowModReq, FlowTables, Instructions, Match, MissPolicy, PipelineConfig,
    BURST_OUTPUTS,
};

const PORTS: u32 = 6;

fn random_tables(rng: &mut XorShift) -> FlowTables {
    let mut ft = FlowTables::new(PipelineConfig {
        n_tables: 2,
        ..Default::default()
    });
    set_random_ports(&mut ft, rng, PORTS);
    let miss = match rng.next(3) {
        0 => MissPolicy::Drop,
        1 => MissPolicy::Controller { max_len: 128 },
        _ => MissPolicy::GotoNext,
    };
    ft.set_miss_policy(0, miss).unwrap();
    // Table 1 (a goto's target, a GotoNext miss's): one output.
    let i = Instructions::apply(vec![Action::output(3)]);
    ft.apply_flow_mod(FlowModReq::add(1, 0, Match::any(), i), Duration::ZERO)
        .unwrap();
    // Port 7 (no port) and LOCAL have no entry: they miss. (An entry matching LOCAL, a
    // port number too large for a port-indexed table, would make table 0 answer per
    // packet.)
    for in_port in 1..=PORTS {
        if rng.next(8) == 0 {
            continue;
        }
        let mut actions = Vec::new();
        for _ in 0..rng.next(5) {
            let a = match rng.next(16) {
                0 => Action::output(OFPP_IN_PORT),
                1 => Action::output(OFPP_ALL),
                2 => Action::output(OFPP_FLOOD),
                3 => Action::output(OFPP_LOCAL),
                4 => Action::output(in_port),
                5 => Action::output(9), // unknown to the switch
                6 if rng.next(3) == 0 => Action::output(OFPP_CONTROLLER),
                7 if rng.next(3) == 0 => Action::output(OFPP_NORMAL),
                8 if rng.next(3) == 0 => Action::SetField {
                    field: Field::EthDst,
                    value: 0x0200_0000_0001,
                },
                _ => Action::output(1 + rng.next(u64::from(PORTS)) as u32),
            };
            actions.push(a);
        }
        let mut i = Instructions::apply(actions);
        if rng.next(5) == 0 {
            i.goto = Some(1);
        }
        if rng.next(5) == 0 {
            i.metadata = Some((7, 0xff));
        }
        let m = Match::exact(&[(Field::InPort, u128::from(in_port))]);
        ft.apply_flow_mod(FlowModReq::add(0, 10, m, i), Duration::ZERO)
            .unwrap();
    }
    ft.publish();
    ft
}

#[test]
fn burst_outputs_are_where_the_walk_sends_each_packet() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let frame = {
        let mut f = vec![0u8; 64];
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 0x99]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f
    };
    let (mut decided, mut dropped, mut several, mut walked) = (0, 0, 0, 0);
    for _ in 0..400 {
        let ft = random_tables(&mut rng);
        let pl = ft.current();
        assert!(pl.tables[0].counts_per_burst);
        let mut ctx = ft.worker_context(0);
        for in_port in (1..=PORTS + 1).chain([OFPP_LOCAL]) {
            let answer = pl.burst_answer(in_port);
            let mut key = extract(&frame, in_port);
            let mut sink = InOrder::default();
            let v = pl.process(&mut VecBuf::new(&frame), &mut key, &mut ctx, &mut sink);
            let Some(outs) = pl.burst_outputs(&answer, in_port) else {
                walked += 1;
                continue;
            };
            decided += 1;
            dropped += usize::from(outs.is_empty());
            several += usize::from(outs.len() > 1);
            let want: Vec<u32> = sink.0.iter().map(|o| o.0).collect();
            assert_eq!(
                outs.as_slice(),
                &want[..],
                "in_port {in_port}, tables {ft:?}"
            );
            assert!(sink.0.iter().all(|o| o.2 == Emit::Final), "{:?}", sink.0);
            assert_eq!(v.outputs as usize, outs.len());
            assert_eq!(v.packet_ins, 0, "in_port {in_port}");
            assert!(!v.meter_drop && !v.invalid_ttl && !v.resubmit_limit);
            assert_eq!(v.action_errors, 0);
            assert!(outs.len() <= BURST_OUTPUTS);
        }
    }
    eprintln!("decided {decided}, dropped {dropped}, several {several}, walked {walked}");
    // Every kind of case came up often enough to mean something.
    assert!(
        decided > 1000 && dropped > 100 && several > 300 && walked > 300,
        "decided {decided}, dropped {dropped}, several {several}, walked {walked}"
    );
}
