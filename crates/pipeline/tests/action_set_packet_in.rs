//! The packet-in an action set sends carries the table and cookie of the walk's last
//! entry, also when that entry is a simple one (outputs only, run from its hit: the walk
//! records the acting entry for it only when an action set is pending). Table 0 writes
//! output:CONTROLLER to the action set and goes to table 1, whose entry (cookie 0x77)
//! only outputs; each way of walking a packet must report table 1 and cookie 0x77.

mod common;

use std::time::Duration;

use common::InOrder;
use packet::{extract, Field, VecBuf};
use pipeline::ports::OFPP_CONTROLLER;
use pipeline::{
    Action, ActionSet, BurstCounts, FlowModReq, FlowTables, Instructions, Match, PipelineConfig,
    WriteActions,
};

fn tables() -> FlowTables {
    let mut ft = FlowTables::new(PipelineConfig {
        n_tables: 2,
        ..Default::default()
    });
    let list = vec![Action::output(OFPP_CONTROLLER)];
    let mut set = ActionSet::default();
    for a in &list {
        set.write(a);
    }
    let mut first = Instructions::apply(vec![]);
    first.write = Some(Box::new(WriteActions {
        list: list.into(),
        set,
    }));
    first.goto = Some(1);
    let mut req = FlowModReq::add(0, 10, Match::exact(&[(Field::InPort, 1)]), first);
    req.cookie = 0x55;
    ft.apply_flow_mod(req, Duration::ZERO).unwrap();
    let second = Instructions::apply(vec![Action::output(2)]);
    let mut req = FlowModReq::add(1, 10, Match::exact(&[(Field::InPort, 1)]), second);
    req.cookie = 0x77;
    ft.apply_flow_mod(req, Duration::ZERO).unwrap();
    ft.publish();
    ft
}

#[test]
fn action_set_packet_in_names_the_last_entry() {
    let mut frame = vec![0u8; 60];
    frame[12] = 0x08;
    frame[14] = 0x45;
    for way in [
        "process",
        "process_in_burst_direct",
        "process_in_burst_tallied",
    ] {
        let ft = tables();
        let p = ft.current();
        let mut ctx = ft.worker_context(0);
        let mut key = extract(&frame, 1);
        let mut buf = VecBuf::new(&frame);
        let mut sink = InOrder::default();
        let counts = BurstCounts::default();
        match way {
            "process" => {
                p.process(&mut buf, &mut key, &mut ctx, &mut sink);
            }
            "process_in_burst_direct" => {
                p.process_in_burst_direct(&mut buf, &mut key, &mut ctx, &mut sink, counts);
            }
            _ => {
                p.process_in_burst_tallied(&mut buf, &mut key, &mut ctx, &mut sink, counts);
                p.add_burst_matches(&mut ctx);
            }
        }
        let ins: Vec<(u8, u64)> = ft
            .packet_in_queue()
            .drain()
            .into_iter()
            .map(|r| (r.table_id, r.cookie))
            .collect();
        assert_eq!(ins, vec![(1, 0x77)], "{way}");
    }
}
