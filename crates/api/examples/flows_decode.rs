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

#[path = "../../../perf/flows/shape_b.rs"]
mod shape_b;
use shape_b::shape_b;

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
    let flows = shape_b(50_000);
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
