//! Where the control plane's time goes when 100k flow-mods arrive as one batch, phase by
//! phase, without a switch around it: the flow text parsed (what a gRPC batch costs the
//! server before anything else), FLOW_MODs encoded (what `ovs-ofctl` does) and decoded
//! (what the agent does per BUNDLE_ADD); then a bundle as ferroflowd runs one (each
//! flow-mod converted when added and kept converted; at the commit, its references
//! checked again, applied in one transaction, compiled and published) and a gRPC batch
//! (converted and applied in one transaction, compiled and published).
//!
//! ```sh
//! cargo run --release -p ofproto --example flowmod_cost [-- FILE|- [ROUNDS]]
//! ```
//! FILE holds flows in `ovs-ofctl add-flows` syntax (default: pipeline B with 50k
//! instances, 100,003 flows, as `perf/run.sh`'s `flowmod:100000` loads). Prints, per
//! phase, the best wall time over ROUNDS (3) and the minor page faults of the last round
//! (fresh memory the phase touched). The machine is shared: compare page faults and the
//! phases' shares rather than absolute times, or count instructions with
//! `valgrind --tool=callgrind` (docs/flow-setup.md).

use std::time::{Duration, Instant};

use openflow::messages::FlowModCommand;
use openflow::{Message, OfpMessage};
use pipeline::{FlowTables, PipelineConfig, PortInfo};

#[path = "../../../perf/flows/shape_b.rs"]
mod shape_b;
use shape_b::shape_b;

/// Minor page faults of this process so far (`/proc/self/stat` field 10).
fn minflt() -> u64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit_once(')').map_or("", |(_, r)| r);
    after
        .split_whitespace()
        .nth(7)
        .and_then(|f| f.parse().ok())
        .unwrap_or(0)
}

struct Phase {
    name: &'static str,
    best: Duration,
    faults: u64,
}

fn timed<T>(phases: &mut Vec<Phase>, round: usize, name: &'static str, f: impl FnOnce() -> T) -> T {
    let (f0, t0) = (minflt(), Instant::now());
    let r = f();
    let (dt, df) = (t0.elapsed(), minflt() - f0);
    if round == 0 {
        phases.push(Phase {
            name,
            best: dt,
            faults: df,
        });
    } else if let Some(p) = phases.iter_mut().find(|p| p.name == name) {
        p.best = p.best.min(dt);
        p.faults = df;
    }
    r
}

fn tables() -> FlowTables {
    let mut ft = FlowTables::new(PipelineConfig {
        workers: 2,
        ..Default::default()
    });
    for p in 1..=3 {
        ft.set_port(PortInfo::new(p));
    }
    ft.publish();
    ft
}

/// As ferroflowd does before a batch: room for each table's adds (all are adds here).
fn reserve(tx: &mut pipeline::Transaction<'_>, tables: impl Iterator<Item = u8>) {
    let mut per_table = [0usize; 256];
    for t in tables {
        per_table[usize::from(t)] += 1;
    }
    for (t, &n) in per_table.iter().enumerate() {
        if n > 0 {
            tx.reserve(t as u8, n);
        }
    }
}

fn check(ft: &mut FlowTables, n: usize) {
    let active: u64 = ft.table_counts().iter().map(|t| u64::from(t.active)).sum();
    assert_eq!(active, n as u64, "every flow-mod added an entry");
}

/// A bundle's server side as ferroflowd's agent runs it, from the BUNDLE_ADD messages
/// bytes to the published version: each message read (the bundle header from the bytes
/// as they are, the inner FLOW_MOD decoded), converted and kept boxed; at the commit the kept
/// requests' references checked again, applied in one transaction, compiled and
/// published. Not inlined, so that `valgrind --tool=callgrind
/// --toggle-collect=flowmod_cost::bundle_server` counts it alone.
#[inline(never)]
fn bundle_server(adds: &[Vec<u8>], ft: &mut FlowTables) {
    // FLOWMOD_COST_GENERAL=1: every flow-mod decoded and converted (the path before
    // `flow_mod_from_wire`, and still the one for flow-mods it leaves), to compare.
    let general = std::env::var_os("FLOWMOD_COST_GENERAL").is_some();
    let mut kept: Vec<Box<dyn std::any::Any + Send + Sync>> = Vec::new();
    for raw in adds {
        let xid = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]);
        let Some(Ok(openflow::bundle::BundleMsgRef::Add(a))) =
            openflow::bundle::BundleMsg::parse_raw(raw)
        else {
            panic!("not a BUNDLE_ADD")
        };
        // As the agent does: read straight from the bytes when the flow-mod is a common
        // one (`OfSwitch::bundle_stage_raw`), else decoded and converted.
        // (built in its box, as ferroflowd keeps it).
        let fast = (!general)
            .then(|| ofproto::flow_mod_from_wire_boxed(a.message, ft))
            .flatten();
        let req = match fast {
            Some(req) => req,
            None => {
                let Message::FlowMod(fm) = a.inner(xid).expect("decodes").body else {
                    panic!("not a flow-mod")
                };
                Box::new(ofproto::convert_flow_mod(&fm, ft).expect("converts"))
            }
        };
        kept.push(req);
    }
    let mut tx = ft.transaction(Duration::ZERO);
    reserve(
        &mut tx,
        kept.iter()
            .filter_map(|k| k.downcast_ref::<pipeline::FlowModReq>())
            .map(|r| r.table_id),
    );
    for k in kept {
        let req = k.downcast::<pipeline::FlowModReq>().expect("a flow-mod");
        // Checked in its box, then moved out once (as ferroflowd's commit does).
        ofproto::check_references(&req, tx.tables()).expect("references exist");
        tx.flow_mod(*req).expect("applies");
    }
    tx.commit().expect("commits");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let lines: Vec<String> = match args.get(1) {
        Some(f) if f != "-" => std::fs::read_to_string(f)
            .expect("readable flow file")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect(),
        _ => shape_b(50_000),
    };
    let rounds: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(3);
    let mut phases = Vec::new();
    for round in 0..rounds {
        let mut ft = tables();
        let mods = timed(&mut phases, round, "parse flow text (gRPC server)", || {
            lines
                .iter()
                .map(|l| flow_syntax::parse_flow_mod(l, FlowModCommand::Add).expect("valid flow"))
                .collect::<Vec<_>>()
        });
        let wire = timed(&mut phases, round, "encode FLOW_MODs (ovs-ofctl)", || {
            mods.iter()
                .enumerate()
                .map(|(i, fm)| {
                    OfpMessage::new(i as u32, Message::FlowMod(fm.clone()))
                        .encode()
                        .expect("encodes")
                })
                .collect::<Vec<_>>()
        });
        let decoded = timed(&mut phases, round, "decode FLOW_MODs (agent)", || {
            wire.iter()
                .map(|b| match openflow::decode(b).expect("decodes").body {
                    Message::FlowMod(fm) => fm,
                    m => panic!("not a flow-mod: {m:?}"),
                })
                .collect::<Vec<_>>()
        });
        let adds: Vec<Vec<u8>> = wire
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let m = openflow::bundle::BundleAdd {
                    bundle_id: 1,
                    flags: openflow::bundle::BundleFlags::ATOMIC
                        | openflow::bundle::BundleFlags::ORDERED,
                    message: w.clone(),
                    properties: Vec::new(),
                }
                .to_message();
                OfpMessage::new(i as u32, m).encode().expect("encodes")
            })
            .collect();
        let mut ft3 = tables();
        timed(&mut phases, round, "bundle as the agent runs it", || {
            bundle_server(&adds, &mut ft3)
        });
        check(&mut ft3, lines.len());
        drop((adds, ft3));
        // A bundle: each FLOW_MOD converted as it is added, kept converted, applied at
        // the commit after its references are checked again.
        let staged = timed(&mut phases, round, "bundle add: convert and keep", || {
            decoded
                .iter()
                .map(|fm| ofproto::convert_flow_mod(fm, &ft).expect("converts"))
                .collect::<Vec<_>>()
        });
        let mut tx = ft.transaction(Duration::ZERO);
        timed(&mut phases, round, "bundle commit: apply kept", || {
            reserve(&mut tx, staged.iter().map(|r| r.table_id));
            for req in staged {
                tx.flow_mod_with(|t| {
                    ofproto::check_references(&req, t)?;
                    Ok(req)
                })
                .expect("applies");
            }
        });
        timed(
            &mut phases,
            round,
            "bundle commit: compile + publish",
            || {
                tx.commit().expect("commits");
            },
        );
        check(&mut ft, lines.len());
        // A gRPC batch: parsed FlowMods converted and applied in one transaction.
        let mut ft2 = tables();
        let mut tx = ft2.transaction(Duration::ZERO);
        timed(&mut phases, round, "gRPC: convert + apply", || {
            reserve(&mut tx, mods.iter().map(|fm| fm.table_id));
            for fm in &mods {
                ofproto::OfTransaction::of_flow_mod(&mut tx, fm).expect("applies");
            }
        });
        timed(&mut phases, round, "gRPC: compile + publish", || {
            tx.commit().expect("commits");
        });
        check(&mut ft2, lines.len());
        timed(&mut phases, round, "drop decoded messages", || {
            drop((decoded, wire, mods))
        });
        drop(ft2);
        timed(&mut phases, round, "drop the tables", || drop(ft));
    }
    println!("{} flow-mods, best of {rounds} rounds", lines.len());
    println!("{:<36} {:>10} {:>12}", "phase", "ms", "page faults");
    for p in &phases {
        println!(
            "{:<36} {:>10.1} {:>12}",
            p.name,
            p.best.as_secs_f64() * 1e3,
            p.faults
        );
    }
}
