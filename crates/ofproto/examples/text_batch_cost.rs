//! A gRPC batch's flow text, from the text to the flows applied in the transaction (the
//! compile at the commit left out: both ways run the same), as ferroflowd's server runs
//! it (`Api::apply_flow_batch`), for callgrind (docs/flow-setup.md, branch ftext):
//!
//! ```sh
//! cargo build --release -p ofproto --example text_batch_cost
//! valgrind --tool=callgrind --toggle-collect='text_batch_cost::batch_*' \
//!     target/release/examples/text_batch_cost [vec] [FILE]
//! ```
//!
//! By default each line is parsed into one reused `FlowMod` and converted and applied
//! before the next is parsed; with `vec`, as the server did before: every line parsed into
//! a vector of `FlowMod`s first, then each converted and applied, then the vector dropped.
//! `FLOW_LINES=general` finds the lines as the server did before (`str::lines`, `trim`).
//! Without FILE, pipeline B with 50,000 instances (100,003 flows). The instructions of
//! `batch_*` divided by the flows are the batch's cost per flow before its compile.

use std::time::Duration;

use ofproto::OfTransaction;
use openflow::messages::{FlowMod, FlowModCommand};
use pipeline::{FlowTables, PipelineConfig, PortInfo};

#[path = "../../../perf/flows/shape_b.rs"]
mod shape_b;
use shape_b::shape_b;

/// As the server finds the flows of the text (`FLOW_LINES=general`: as it did before).
fn lines(text: &str) -> Box<dyn Iterator<Item = &str> + '_> {
    if std::env::var_os("FLOW_LINES").is_some_and(|v| v == "general") {
        Box::new(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#')),
        )
    } else {
        Box::new(flow_syntax::FlowLines::new(text).map(|(_, l)| l))
    }
}

/// The server before: all parsed, then all applied, then the `FlowMod`s dropped.
#[inline(never)]
fn batch_vec(text: &str, tx: &mut pipeline::Transaction<'_>) {
    let mut mods = Vec::with_capacity(text.len() / 40 + 1);
    for l in lines(text) {
        mods.push(flow_syntax::parse_flow_mod(l, FlowModCommand::Add).expect("valid flow"));
    }
    for fm in &mods {
        tx.of_flow_mod(fm).expect("applies");
    }
    drop(mods);
}

/// The server now: each flow parsed into one `FlowMod` and applied before the next.
#[inline(never)]
fn batch_reused(text: &str, tx: &mut pipeline::Transaction<'_>) {
    let mut fm = FlowMod::add(0, 0, openflow::Match::any(), Vec::new());
    for l in lines(text) {
        flow_syntax::parse_flow_mod_into(l, FlowModCommand::Add, &mut fm).expect("valid flow");
        tx.of_flow_mod(&fm).expect("applies");
    }
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let vec = args.first().is_some_and(|a| a == "vec");
    if vec {
        args.remove(0);
    }
    let text = match args.first() {
        Some(f) => std::fs::read_to_string(f).expect("readable flow file"),
        None => shape_b(50_000).join("\n"),
    };
    let mut ft = FlowTables::new(PipelineConfig {
        workers: 2,
        ..Default::default()
    });
    for p in 1..=3 {
        ft.set_port(PortInfo::new(p));
    }
    ft.publish();
    let n = lines(&text).count();
    let mut tx = ft.transaction(Duration::ZERO);
    // As ferroflowd reserves before the batch (both ways the same).
    tx.reserve(0, n / 2 + 2);
    tx.reserve(1, n / 2 + 1);
    let t = std::time::Instant::now();
    if vec {
        batch_vec(&text, &mut tx);
    } else {
        batch_reused(&text, &mut tx);
    }
    let dt = t.elapsed();
    tx.commit().expect("commits");
    println!(
        "{n} flows parsed, converted and applied ({}) in {dt:?}",
        if vec { "vec" } else { "reused" }
    );
}
