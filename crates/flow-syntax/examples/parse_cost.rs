//! The flow-text parser alone on a gRPC batch's flows, for callgrind
//! (docs/flow-setup.md, "Round three"):
//!
//! ```sh
//! cargo build --release -p flow-syntax --example parse_cost
//! valgrind --tool=callgrind --toggle-collect='parse_cost::parse_all' \
//!     target/release/examples/parse_cost [FILE]
//! ```
//!
//! Without FILE it parses pipeline B with 50,000 instances (100,003 flows, as
//! `../shared/bench/gen-flows.py B -n 50000` writes them), split into lines as the gRPC
//! server splits an `add_text`. The instructions of `parse_all` divided by the flows are
//! the parser's cost per flow, the memory the parsed flows keep included.

use openflow::messages::{FlowMod, FlowModCommand};

#[path = "../../../perf/flows/shape_b.rs"]
mod shape_b;
use shape_b::shape_b;

#[inline(never)]
fn parse_all(text: &str) -> Vec<FlowMod> {
    // As the gRPC server sizes its batch (services.rs, `apply_flows`).
    let mut mods = Vec::with_capacity(text.len() / 40 + 1);
    for l in text.lines().map(str::trim) {
        if !l.is_empty() && !l.starts_with('#') {
            mods.push(flow_syntax::parse_flow_mod(l, FlowModCommand::Add).expect("valid flow"));
        }
    }
    mods
}

fn main() {
    let text = match std::env::args().nth(1) {
        Some(f) => std::fs::read_to_string(f).expect("readable flow file"),
        None => shape_b(50_000).join("\n"),
    };
    let t = std::time::Instant::now();
    let mods = parse_all(&text);
    println!("{} flows parsed in {:?}", mods.len(), t.elapsed());
}
