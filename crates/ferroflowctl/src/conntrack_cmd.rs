//! `ferroflowctl conntrack dump|flush|stats [--zone N]`: the workers' connection trackers
//! (docs/conntrack.md). The dump prints like `ovs-appctl dpctl/dump-conntrack`.

use clap::{Args, Subcommand};
use ferroflow_api::pb;
use tonic::transport::Channel;

use super::{print_json, table, Result};

#[derive(Args, Debug)]
pub struct ZoneArg {
    /// Only this conntrack zone.
    #[arg(long, value_parser = clap::value_parser!(u16))]
    pub zone: Option<u16>,
}

#[derive(Subcommand, Debug)]
pub enum ConntrackCmd {
    /// The tracked connections, one a line as `ovs-appctl dpctl/dump-conntrack` prints them.
    Dump {
        #[command(flatten)]
        zone: ZoneArg,
        /// Connections per worker at most (the switch caps it at 10000).
        #[arg(long, default_value_t = 10_000)]
        limit: u32,
        /// Also print each connection's remaining timeout and the worker holding it.
        #[arg(short = 's', long)]
        stats: bool,
    },
    /// Removes the connections (of one zone): their next packet is +new again.
    Flush {
        #[command(flatten)]
        zone: ZoneArg,
    },
    /// Counters: entries, commits, invalid packets and table-full refusals, per zone.
    Stats {
        #[command(flatten)]
        zone: ZoneArg,
    },
}

/// ICMP(v6) query replies by request type (the tracker keys queries by request type).
fn icmp_reply_type(proto: u32, request: u32) -> u32 {
    match (proto, request) {
        (1, 8) => 0,
        (1, 13) => 14,
        (1, 15) => 16,
        (1, 17) => 18,
        (58, 128) => 129,
        (_, t) => t,
    }
}

fn tuple(e: &pb::ConntrackEntry, t: &pb::ConntrackTuple, reply: bool) -> String {
    let mut s = format!("src={},dst={}", t.src, t.dst);
    if matches!(e.ip_proto, 1 | 58) {
        let request = t.dport >> 1;
        let ty = if reply {
            icmp_reply_type(e.ip_proto, request)
        } else {
            request
        };
        s += &format!(",id={},type={ty},code=0", t.sport);
    } else if matches!(e.ip_proto, 6 | 17 | 132) {
        s += &format!(",sport={},dport={}", t.sport, t.dport);
    }
    s
}

/// One connection as `ovs-appctl dpctl/dump-conntrack` prints it (zone, mark and labels
/// only when not zero, as there).
pub fn dump_line(e: &pb::ConntrackEntry, stats: bool) -> String {
    let none = pb::ConntrackTuple::default();
    let orig = tuple(e, e.orig.as_ref().unwrap_or(&none), false);
    let reply = tuple(e, e.reply.as_ref().unwrap_or(&none), true);
    let mut s = format!("{},orig=({orig}),reply=({reply})", e.protocol);
    if stats {
        s += &format!(",timeout={}", e.expires_in_ms.div_ceil(1000));
    }
    if e.zone != 0 {
        s += &format!(",zone={}", e.zone);
    }
    if e.mark != 0 {
        s += &format!(",mark={}", e.mark);
    }
    if e.label != "0x0" && !e.label.is_empty() {
        s += &format!(",labels={}", e.label);
    }
    if !e.state.is_empty() {
        s += &format!(",protoinfo=(state={})", e.state);
    }
    if stats {
        s += &format!(",lcore={}", e.lcore);
    }
    s
}

pub async fn conntrack(ch: &Channel, cmd: &ConntrackCmd, json: bool) -> Result<()> {
    let mut c = pb::conntrack_service_client::ConntrackServiceClient::new(ch.clone());
    match cmd {
        ConntrackCmd::Dump { zone, limit, stats } => {
            let r = c
                .dump(pb::ConntrackDumpRequest {
                    zone: zone.zone.map(u32::from),
                    limit: *limit,
                })
                .await?
                .into_inner();
            if json {
                print_json(&r);
                return Ok(());
            }
            if !r.enabled {
                eprintln!("connection tracking is not enabled in the datapath");
            }
            for e in &r.entries {
                println!("{}", dump_line(e, *stats));
            }
            if r.truncated {
                eprintln!(
                    "(showing {} of {} connections: the dump is bounded per worker)",
                    r.entries.len(),
                    r.total
                );
            }
        }
        ConntrackCmd::Flush { zone } => {
            let r = c
                .flush(pb::ConntrackFlushRequest {
                    zone: zone.zone.map(u32::from),
                })
                .await?
                .into_inner();
            if json {
                print_json(&r);
                return Ok(());
            }
            match zone.zone {
                Some(z) => println!("flushed {} connections in zone {z}", r.flushed),
                None => println!("flushed {} connections", r.flushed),
            }
        }
        ConntrackCmd::Stats { zone } => {
            let r = c
                .stats(pb::ConntrackStatsRequest {
                    zone: zone.zone.map(u32::from),
                })
                .await?
                .into_inner();
            if json {
                print_json(&r);
                return Ok(());
            }
            if !r.enabled {
                println!("connection tracking is not enabled in the datapath");
                return Ok(());
            }
            let t = r.totals.unwrap_or_default();
            println!(
                "entries {} of {} (all workers); committed {} invalid {} table_full {}",
                t.entries, r.capacity, t.committed, t.invalid, t.table_full
            );
            if zone.zone.is_none() {
                println!(
                    "packets {} malformed {} related {} expired {} nat_exhausted {} collisions {}",
                    r.packets, r.malformed, r.related, r.expired, r.nat_exhausted, r.collisions
                );
                if r.handed_off + r.handoff_dropped + r.foreign > 0 {
                    println!(
                        "handed_off {} handoff_dropped {} foreign {}",
                        r.handed_off, r.handoff_dropped, r.foreign
                    );
                }
                if r.nat_source_remapped > 0 {
                    println!("nat_source_remapped {}", r.nat_source_remapped);
                }
            }
            let rows: Vec<Vec<String>> = r
                .zones
                .iter()
                .map(|z| {
                    let c = z.counters.unwrap_or_default();
                    vec![
                        z.zone.map_or_else(|| "other".to_owned(), |z| z.to_string()),
                        c.entries.to_string(),
                        c.committed.to_string(),
                        c.invalid.to_string(),
                        c.table_full.to_string(),
                    ]
                })
                .collect();
            table(
                &[">ZONE", ">ENTRIES", ">COMMITTED", ">INVALID", ">TABLE_FULL"],
                &rows,
            );
        }
    }
    Ok(())
}
