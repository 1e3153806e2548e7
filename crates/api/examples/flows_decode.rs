//! What decoding a 100k-flow `ApplyFlowsRequest` costs the gRPC server, both ways a
//! client can send it: a `FlowChange` per flow (`changes`) or the whole file in
//! `add_text` (docs/flow-setup.md, "Round three"). For callgrind:
//!
//! ```sh
//! cargo build --release -p ferroflow-api --example flows_decode
//! valgrind --tool=callgrind --toggle-collect='flows_decode::decode*' \
//!     target/release/examples/flows_decode
//! callgrind_annotate --inclusive=yes callgrind.out.* | grep flows_decode::
//! ```
//!
//! Each request is built and encoded outside the counted functions; `decode_changes` and
//! `decode_text` decode one each (and drop what they decoded, as the server does once
//! the flows are parsed).

use ferroflow_api::pb;
use prost::Message;

/// Pipeline B with 50,000 instances (100,003 flows), one a line.
fn shape_b() -> Vec<String> {
    let mac = |i: u32| {
        format!(
            "02:00:00:{:02x}:{:02x}:{:02x}",
            (i >> 16) & 0xff,
            (i >> 8) & 0xff,
            i & 0xff
        )
    };
    let mut v = vec!["table=0,priority=1000,tcp,nw_dst=169.254.169.254,tp_dst=80,actions=mod_dl_dst:02:fe:00:00:00:01,mod_nw_dst:10.254.0.1,mod_tp_dst:8775,output:2".to_string()];
    v.extend((0..50_000).map(|i| {
        format!(
            "table=0,priority=100,in_port=1,dl_src={},actions=goto_table:1",
            mac(i)
        )
    }));
    v.push("table=0,priority=0,actions=drop".into());
    v.extend(
        (0..50_000).map(|i| format!("table=1,priority=100,dl_dst={},actions=output:2", mac(i))),
    );
    v.push("table=1,priority=0,actions=drop".into());
    v
}

#[inline(never)]
fn decode_changes(wire: &[u8]) -> usize {
    let r = pb::ApplyFlowsRequest::decode(wire).expect("decodes");
    r.changes.len()
}

#[inline(never)]
fn decode_text(wire: &[u8]) -> usize {
    let r = pb::ApplyFlowsRequest::decode(wire).expect("decodes");
    let text = std::str::from_utf8(&r.add_text).expect("UTF-8");
    text.lines().count()
}

fn main() {
    let flows = shape_b();
    let changes = pb::ApplyFlowsRequest {
        changes: flows
            .iter()
            .map(|t| pb::FlowChange {
                command: pb::FlowCommand::Add as i32,
                flow: Some(pb::flow_change::Flow::Text(t.clone())),
            })
            .collect(),
        ..Default::default()
    }
    .encode_to_vec();
    let text = pb::ApplyFlowsRequest {
        add_text: flows.join("\n").into_bytes(),
        ..Default::default()
    }
    .encode_to_vec();
    let t = std::time::Instant::now();
    let n = decode_changes(&changes);
    let a = t.elapsed();
    let t = std::time::Instant::now();
    let m = decode_text(&text);
    let b = t.elapsed();
    println!(
        "{n} flows as changes: {} bytes, decoded in {a:?}; {m} as add_text: {} bytes, decoded in {b:?}",
        changes.len(),
        text.len()
    );
}
