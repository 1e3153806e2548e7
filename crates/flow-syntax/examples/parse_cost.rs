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

/// Pipeline B as ../shared/bench/gen-flows.py writes it.
fn shape_b(n: u32) -> String {
    let mac = |i: u32| {
        format!(
            "02:00:00:{:02x}:{:02x}:{:02x}",
            (i >> 16) & 0xff,
            (i >> 8) & 0xff,
            i & 0xff
        )
    };
    let mut v = vec!["table=0,priority=1000,tcp,nw_dst=169.254.169.254,tp_dst=80,actions=mod_dl_dst:02:fe:00:00:00:01,mod_nw_dst:10.254.0.1,mod_tp_dst:8775,output:2".to_string()];
    v.extend((0..n).map(|i| {
        format!(
            "table=0,priority=100,in_port=1,dl_src={},actions=goto_table:1",
            mac(i)
        )
    }));
    v.push("table=0,priority=0,actions=drop".into());
    v.extend((0..n).map(|i| format!("table=1,priority=100,dl_dst={},actions=output:2", mac(i))));
    v.push("table=1,priority=0,actions=drop".into());
    v.join("\n")
}

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
        None => shape_b(50_000),
    };
    let t = std::time::Instant::now();
    let mods = parse_all(&text);
    println!("{} flows parsed in {:?}", mods.len(), t.elapsed());
}
