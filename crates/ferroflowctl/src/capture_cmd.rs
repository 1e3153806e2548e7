//! `ferroflowctl capture`: live capture on a port of a running switch, written as pcap
//! (nanosecond timestamps) that tcpdump and Wireshark read.

use std::io::Write;

use clap::Args;
use ferroflow_api::pb;
use tonic::transport::Channel;

use super::{fail, print_json, Result};

#[derive(Args, Debug)]
#[command(after_help = "EXAMPLES:
  ferroflowctl capture vm1 --count 10 -w vm1.pcap && tcpdump -nn -r vm1.pcap
  ferroflowctl capture 2 --both --filter icmp -w - | tcpdump -nn -r -
Stops after --count frames, or on Ctrl-C. One capture at a time per switch.")]
pub struct CaptureArgs {
    /// The port: its name or OpenFlow number.
    port: String,
    /// Frames the port receives (the default).
    #[arg(long, conflicts_with_all = ["tx", "both"])]
    rx: bool,
    /// Frames the switch sends out of the port.
    #[arg(long, conflicts_with = "both")]
    tx: bool,
    /// Both directions.
    #[arg(long)]
    both: bool,
    /// Stop after this many frames.
    #[arg(long, short)]
    count: Option<u64>,
    /// Write pcap to FILE ('-': standard output); without it, one line per frame.
    #[arg(short = 'w', value_name = "FILE")]
    write: Option<String>,
    /// Only frames matching this flow-syntax match ("icmp,nw_dst=10.0.0.2").
    #[arg(long)]
    filter: Option<String>,
}

/// The pcap file header: nanosecond timestamps, little-endian, Ethernet, 65535 snaplen.
fn pcap_header() -> Vec<u8> {
    let mut h = Vec::with_capacity(24);
    h.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&0i32.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&65535u32.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    h
}

fn pcap_record(f: &pb::CapturedFrame) -> Vec<u8> {
    let mut r = Vec::with_capacity(16 + f.data.len());
    r.extend_from_slice(&((f.timestamp_ns / 1_000_000_000) as u32).to_le_bytes());
    r.extend_from_slice(&((f.timestamp_ns % 1_000_000_000) as u32).to_le_bytes());
    r.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
    r.extend_from_slice(&f.orig_len.to_le_bytes());
    r.extend_from_slice(&f.data);
    r
}

pub async fn run(ch: &Channel, a: &CaptureArgs, json: bool) -> Result<()> {
    let mut client = pb::trace_service_client::TraceServiceClient::new(ch.clone());
    let mut stream = client
        .capture(pb::CaptureRequest {
            port: a.port.clone(),
            rx: a.rx || a.both || !a.tx,
            tx: a.tx || a.both,
            count: a.count.unwrap_or(0),
            filter: a.filter.clone().unwrap_or_default(),
        })
        .await?
        .into_inner();
    let mut out: Option<Box<dyn Write>> = match a.write.as_deref() {
        None => None,
        Some("-") => Some(Box::new(std::io::stdout())),
        Some(path) => Some(Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| fail(1, format!("-w {path}: {e}")))?,
        ))),
    };
    let io = |e: std::io::Error| fail(1, format!("writing the capture: {e}"));
    // A reader that has had enough (`tcpdump -r - -c 2`) ends the capture, as for tcpdump.
    let closed = |e: &std::io::Error| e.kind() == std::io::ErrorKind::BrokenPipe;
    if let Some(w) = out.as_mut() {
        w.write_all(&pcap_header()).map_err(io)?;
        w.flush().map_err(io)?;
    }
    let (mut frames, mut dropped) = (0u64, 0u64);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let f = tokio::select! {
            m = stream.message() => match m? {
                Some(f) => f,
                None => break,
            },
            _ = &mut ctrl_c => break,
        };
        frames += 1;
        dropped = f.dropped;
        match out.as_mut() {
            Some(w) => {
                // A reader of a pipe (tcpdump -r -) sees frames as they come.
                let r = w.write_all(&pcap_record(&f)).and_then(|()| {
                    if a.write.as_deref() == Some("-") {
                        w.flush()
                    } else {
                        Ok(())
                    }
                });
                match r {
                    Err(e) if closed(&e) => {
                        out = None;
                        break;
                    }
                    r => r.map_err(io)?,
                }
            }
            None if json => print_json(&serde_json::json!({
                "timestamp_ns": f.timestamp_ns,
                "direction": f.direction,
                "orig_len": f.orig_len,
                "data": f.data.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            })),
            None => {
                let head: String = f.data.iter().take(34).map(|b| format!("{b:02x}")).collect();
                println!(
                    "{}.{:09} {} {} bytes {head}...",
                    f.timestamp_ns / 1_000_000_000,
                    f.timestamp_ns % 1_000_000_000,
                    f.direction,
                    f.orig_len
                );
            }
        }
        if a.count.is_some_and(|c| frames >= c) {
            break;
        }
    }
    if let Some(w) = out.as_mut() {
        w.flush().map_err(io)?;
    }
    eprintln!("ferroflowctl: {frames} frames captured on {}, {dropped} dropped by the switch (reader behind)", a.port);
    Ok(())
}

/// `ferroflowctl capture-status`: the port being captured, if any.
pub async fn status(ch: &Channel, json: bool) -> Result<()> {
    let mut client = pb::trace_service_client::TraceServiceClient::new(ch.clone());
    let s = client
        .capture_status(pb::CaptureStatusRequest {})
        .await?
        .into_inner();
    if json {
        print_json(&s);
    } else if s.ports.is_empty() {
        println!(
            "no capture running (frames captured since start: {}, dropped: {})",
            s.captured, s.dropped
        );
    } else {
        println!(
            "capturing on {} (frames captured since start: {}, dropped: {})",
            s.ports.join(", "),
            s.captured,
            s.dropped
        );
    }
    Ok(())
}
