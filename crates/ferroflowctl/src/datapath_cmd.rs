//! `ferroflowctl status [--watch]` (the datapath view, as OVS's `pmd-perf-show` and
//! `pmd-rxq-show`) and `ferroflowctl datapath rebalance`.

use std::time::Duration;

use clap::{Args, Subcommand};
use ferroflow_api::pb;
use tonic::transport::Channel;

use super::{print_json, table, Result};

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Refresh the view every --interval seconds (Ctrl-C stops), with rates and shares over
    /// each interval instead of since start.
    #[arg(long)]
    watch: bool,
    /// Seconds between refreshes with --watch.
    #[arg(long, default_value_t = 1.0)]
    interval: f64,
    /// With --watch: stop after this many refreshes.
    #[arg(long)]
    count: Option<u64>,
}

#[derive(Subcommand, Debug)]
pub enum DatapathCmd {
    /// Move rx queues between workers so that their loads (busy cycles since the last
    /// measurement) are even; prints the plan and the moves.
    Rebalance {
        /// Only show what would move.
        #[arg(long)]
        dry_run: bool,
    },
    /// Move one rx queue to the worker on LCORE (`ferroflowctl status` lists them).
    MoveRxq {
        port: String,
        queue: u32,
        lcore: u32,
    },
}

pub async fn status(ch: &Channel, args: &StatusArgs, json: bool) -> Result<()> {
    let mut dp = pb::datapath_service_client::DatapathServiceClient::new(ch.clone());
    let mut prev: Option<pb::DatapathStatus> = None;
    let mut n = 0u64;
    loop {
        let s = dp.get_status(pb::GetStatusRequest {}).await?.into_inner();
        if json {
            if args.watch {
                println!("{}", serde_json::to_string(&s).unwrap_or_default());
            } else {
                print_json(&s);
            }
        } else {
            if args.watch {
                // Clear the screen and home the cursor, as watch(1) does.
                print!("\x1b[2J\x1b[H");
            }
            print!("{}", render(&s, prev.as_ref()));
        }
        n += 1;
        if !args.watch || args.count.is_some_and(|c| n >= c) {
            return Ok(());
        }
        prev = Some(s);
        tokio::time::sleep(Duration::from_secs_f64(args.interval.max(0.1))).await;
    }
}

/// The difference of two counters read from one worker (0 if the worker restarted).
fn delta(now: u64, before: Option<u64>) -> u64 {
    before.map_or(now, |b| now.saturating_sub(b))
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// The status as text; with `prev` (a watch), counters are over the interval since it.
pub fn render(s: &pb::DatapathStatus, prev: Option<&pb::DatapathStatus>) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "ferroflowd {}  DPDK {}  up {:.0}s",
        s.version, s.dpdk_version, s.uptime_s
    );
    let _ = writeln!(
        out,
        "packet buffers: {} in use, {} free; MAC entries: {}",
        s.mbufs_in_use, s.mbufs_available, s.mac_entries
    );
    if !s.config_unsaved.is_empty() {
        let _ = writeln!(
            out,
            "config: UNSAVED (running changes are not in the file; retrying): {}",
            s.config_unsaved
        );
    }
    let span = match prev {
        Some(p) => format!("over the last {:.1} s", s.uptime_s - p.uptime_s),
        None => "since start".to_owned(),
    };
    let _ = writeln!(out, "workers ({span}):");
    let before = |w: &pb::Worker| prev.and_then(|p| p.workers.iter().find(|x| x.lcore == w.lcore));
    let rows: Vec<Vec<String>> = s
        .workers
        .iter()
        .map(|w| {
            let b = before(w);
            let busy = delta(w.busy_cycles, b.map(|b| b.busy_cycles));
            let total = delta(w.total_cycles, b.map(|b| b.total_cycles));
            let packets = delta(w.packets, b.map(|b| b.packets));
            let iterations = delta(w.iterations, b.map(|b| b.iterations));
            let busy_iterations = delta(w.busy_iterations, b.map(|b| b.busy_iterations));
            let bursts: u64 = w
                .burst_histogram
                .iter()
                .enumerate()
                .map(|(i, c)| delta(*c, b.and_then(|b| b.burst_histogram.get(i).copied())))
                .sum();
            vec![
                w.lcore.to_string(),
                packets.to_string(),
                format!("{:.1}%", 100.0 * ratio(busy, total)),
                format!("{:.1}", ratio(busy, packets)),
                format!("{:.1}", ratio(packets, bursts)),
                iterations.to_string(),
                busy_iterations.to_string(),
                w.acked_version.to_string(),
                if w.stuck {
                    format!("STUCK {:.0} ms", w.since_heartbeat_ms)
                } else {
                    "ok".to_owned()
                },
            ]
        })
        .collect();
    out.push_str(&table_text(
        &[
            ">LCORE",
            ">PACKETS",
            ">BUSY",
            ">CYCLES/PKT",
            ">PKTS/BURST",
            ">ITERATIONS",
            ">BUSY_ITER",
            ">VERSION",
            "STATE",
        ],
        &rows,
    ));
    // Bursts by size, one row per worker.
    if let Some(w0) = s.workers.first() {
        let mut header = vec![">LCORE".to_owned()];
        let mut low = 1;
        for b in &w0.burst_bucket_bounds {
            header.push(if low == *b {
                format!(">{b}")
            } else {
                format!(">{low}-{b}")
            });
            low = b + 1;
        }
        let rows: Vec<Vec<String>> = s
            .workers
            .iter()
            .map(|w| {
                let b = before(w);
                let mut r = vec![w.lcore.to_string()];
                r.extend(w.burst_histogram.iter().enumerate().map(|(i, c)| {
                    delta(*c, b.and_then(|b| b.burst_histogram.get(i).copied())).to_string()
                }));
                r
            })
            .collect();
        let _ = writeln!(out, "rx bursts by packets per burst:");
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        out.push_str(&table_text(&header, &rows));
    }
    let _ = writeln!(out, "rx queues:");
    let rows: Vec<Vec<String>> = s
        .workers
        .iter()
        .flat_map(|w| {
            let b = before(w);
            let worker_busy = delta(w.busy_cycles, b.map(|b| b.busy_cycles));
            w.rx_queues.iter().map(move |q| {
                // A queue that moved here since the last refresh counts from zero.
                let qb = prev.and_then(|p| {
                    p.workers
                        .iter()
                        .flat_map(|w| &w.rx_queues)
                        .find(|x| x.port == q.port && x.queue == q.queue)
                });
                let packets = delta(q.packets, qb.map(|x| x.packets));
                let busy = delta(q.busy_cycles, qb.map(|x| x.busy_cycles));
                vec![
                    q.port.clone(),
                    q.queue.to_string(),
                    w.lcore.to_string(),
                    packets.to_string(),
                    format!("{:.1}%", 100.0 * ratio(busy, worker_busy).min(1.0)),
                ]
            })
        })
        .collect();
    out.push_str(&table_text(
        &["PORT", ">QUEUE", ">LCORE", ">PACKETS", ">BUSY_SHARE"],
        &rows,
    ));
    out
}

/// [`table`] into a string.
fn table_text(header: &[&str], rows: &[Vec<String>]) -> String {
    super::table_string(header, rows)
}

pub async fn datapath(ch: &Channel, cmd: &DatapathCmd, json: bool) -> Result<()> {
    let mut c = pb::rebalance_service_client::RebalanceServiceClient::new(ch.clone());
    match cmd {
        DatapathCmd::MoveRxq { port, queue, lcore } => {
            let m = c
                .move_rx_queue(pb::MoveRxQueueRequest {
                    port: port.clone(),
                    queue: *queue,
                    to_lcore: *lcore,
                })
                .await?
                .into_inner();
            if json {
                print_json(&m);
            } else {
                println!(
                    "port {} queue {}: lcore {} -> lcore {}",
                    m.port, m.queue, m.from_lcore, m.to_lcore
                );
            }
        }
        DatapathCmd::Rebalance { dry_run } => {
            let r = c
                .rebalance(pb::RebalanceRequest { dry_run: *dry_run })
                .await?
                .into_inner();
            if json {
                print_json(&r);
                return Ok(());
            }
            println!(
                "loads over the last {:.1} s (share of the interval spent on each worker's queues):",
                r.interval_s
            );
            let rows: Vec<Vec<String>> = r
                .loads
                .iter()
                .map(|l| {
                    vec![
                        l.lcore.to_string(),
                        format!("{:.1}%", 100.0 * l.before),
                        format!("{:.1}%", 100.0 * l.after),
                    ]
                })
                .collect();
            table(&[">LCORE", ">NOW", ">AFTER"], &rows);
            if r.moves.is_empty() {
                println!("no move makes the loads more even: nothing moved");
                return Ok(());
            }
            for m in &r.moves {
                println!(
                    "{} port {} queue {}: lcore {} -> lcore {}",
                    if *dry_run { "would move" } else { "moved" },
                    m.port,
                    m.queue,
                    m.from_lcore,
                    m.to_lcore
                );
            }
            println!(
                "variance of the loads {:.4} -> {:.4} ({:.0}% better)",
                r.variance_before, r.variance_after, r.improvement_percent
            );
        }
    }
    Ok(())
}
