//! The agent's own cost per BUNDLE_ADD, without the switch's: one connection reads HELLO,
//! a bundle open, N BUNDLE_ADDs of one FLOW_MOD each (pipeline B's second shape) and the
//! commit, through the agent's read loop, framing, dispatch and bundle staging; the switch
//! keeps each flow-mod as an empty box (no allocation) and commits nothing.
//!
//! ```sh
//! cargo build --release -p ofagent --example bundle_agent_cost
//! valgrind --tool=callgrind target/release/examples/bundle_agent_cost 100000
//! valgrind --tool=callgrind target/release/examples/bundle_agent_cost 0
//! ```
//! The difference of the two totals over N is the agent's instructions per BUNDLE_ADD.

use std::sync::Arc;

use ofagent::{OfSwitch, Staged};
use openflow::bundle::{BundleAdd, BundleCtrl, BundleCtrlType, BundleFlags};
use openflow::messages::{FlowMod, Hello, SwitchFeatures};
use openflow::{Action, ErrorCode, Instruction, Match, Message, OfpMessage, OxmTlv};

struct Keeper;

impl OfSwitch for Keeper {
    fn features(&self) -> SwitchFeatures {
        SwitchFeatures {
            datapath_id: 1,
            n_buffers: 0,
            n_tables: 254,
            auxiliary_id: 0,
            capabilities: openflow::consts::Capabilities::empty(),
            reserved: 0,
        }
    }
    fn handle(&self, _: &Message) -> Result<Vec<Message>, ErrorCode> {
        Ok(vec![])
    }
    fn barrier(&self) -> Result<(), ErrorCode> {
        Ok(())
    }
    fn try_barrier(&self) -> bool {
        true
    }
    fn bundle_check(&self, _: &Message) -> Result<(), ErrorCode> {
        Ok(())
    }
    fn bundle_commit(&self, _: &[Message]) -> Result<(), (usize, ErrorCode)> {
        Ok(())
    }
    fn bundle_stage_raw(&self, _raw: &[u8]) -> Option<Staged> {
        Some(Staged::Converted(Box::new(())))
    }
    fn bundle_commit_staged(&self, staged: Vec<Staged>) -> Result<(), (usize, ErrorCode)> {
        drop(staged);
        Ok(())
    }
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let flags = BundleFlags::ATOMIC | BundleFlags::ORDERED;
    let ctrl = |ctrl_type| BundleCtrl {
        bundle_id: 1,
        ctrl_type,
        flags,
        properties: Vec::new(),
    };
    let mut input = OfpMessage::new(1, Message::Hello(Hello::ofp13()))
        .encode()
        .unwrap();
    input.extend(
        OfpMessage::new(2, ctrl(BundleCtrlType::OpenRequest).to_message())
            .encode()
            .unwrap(),
    );
    let fm = FlowMod::add(
        1,
        100,
        Match::new(vec![OxmTlv::eth_dst([2, 0, 0, 0, 0, 7], None)]),
        vec![Instruction::ApplyActions(vec![Action::output(2)])],
    );
    for i in 0..n {
        let xid = 3 + i;
        let inner = OfpMessage::new(xid, Message::FlowMod(fm.clone()))
            .encode()
            .unwrap();
        let add = BundleAdd {
            bundle_id: 1,
            flags,
            message: inner,
            properties: Vec::new(),
        }
        .to_message();
        input.extend(OfpMessage::new(xid, add).encode().unwrap());
    }
    input.extend(
        OfpMessage::new(3 + n, ctrl(BundleCtrlType::CommitRequest).to_message())
            .encode()
            .unwrap(),
    );
    let sent = ofagent::fuzzing::serve_bytes(Arc::new(Keeper), input);
    println!("{n} BUNDLE_ADDs; the agent sent {} bytes", sent.len());
}
