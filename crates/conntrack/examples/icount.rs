//! Instructions per tracked packet, counted by callgrind over `ct_icount_measured` only
//! (setup excluded), so the figure does not depend on the load of the machine:
//!
//! ```text
//! cargo build --release -p conntrack --example icount
//! valgrind --tool=callgrind --toggle-collect=ct_icount_measured --callgrind-out-file=/tmp/ct.out \
//!     target/release/examples/icount udp-est 100000
//! ```
//! and divide the "Collected" count by the packet count. Modes: `udp-est`, `tcp-est`,
//! `tcp-new` (commit of a SYN into a table that the sweep keeps room in).

use conntrack::packet::{TCP_ACK, TCP_SYN};
use conntrack::{Config, Packet, TrackOptions, Tracker};
use std::hint::black_box;

#[path = "../benches/common/mod.rs"]
mod common;
use common::{tcp, udp, CONNS};

#[inline(never)]
#[no_mangle]
fn ct_icount_measured(
    t: &mut Tracker,
    pkts: &[Packet],
    o: &TrackOptions,
    expire_every: usize,
) -> u64 {
    let mut acc = 0u64;
    for (i, p) in pkts.iter().enumerate() {
        let now = if expire_every > 0 {
            10 + (i / 16_384) as u64 * 2
        } else {
            1
        };
        acc += u64::from(t.track(p, o, now).state.0);
        if expire_every > 0 && i % expire_every == 0 {
            t.expire(now);
        }
    }
    acc
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("udp-est");
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let commit = TrackOptions {
        commit: true,
        ..TrackOptions::default()
    };
    let mut cfg = Config {
        capacity: CONNS as usize * 2,
        ..Config::default()
    };
    if mode == "tcp-new" {
        cfg.capacity = CONNS as usize;
        cfg.timeouts.tcp.syn_sent_ms = 1;
    }
    let mut t = Tracker::new(cfg).unwrap();
    let (pkts, expire_every): (Vec<Packet>, usize) = match mode {
        "udp-est" => {
            for i in 0..CONNS {
                t.track(&udp(0x0a00_0000 + i, 1000, 0x0b00_0001, 53), &commit, 0);
                t.track(&udp(0x0b00_0001, 53, 0x0a00_0000 + i, 1000), &commit, 0);
            }
            (
                (0..n)
                    .map(|i| {
                        udp(
                            0x0a00_0000 + (i as u32).wrapping_mul(40_503) % CONNS,
                            1000,
                            0x0b00_0001,
                            53,
                        )
                    })
                    .collect(),
                0,
            )
        }
        "tcp-est" => {
            for i in 0..CONNS {
                let c = 0x0a00_0000 + i;
                t.track(
                    &tcp(c, 1000, 0x0b00_0001, 80, TCP_SYN, 100, 0, 0),
                    &commit,
                    0,
                );
                t.track(
                    &tcp(0x0b00_0001, 80, c, 1000, TCP_SYN | TCP_ACK, 500, 101, 0),
                    &commit,
                    0,
                );
                t.track(
                    &tcp(c, 1000, 0x0b00_0001, 80, TCP_ACK, 101, 501, 0),
                    &commit,
                    0,
                );
            }
            let mut seqs = vec![101u32; CONNS as usize];
            (
                (0..n)
                    .map(|i| {
                        let k = (i as u32).wrapping_mul(40_503) % CONNS;
                        let seq = seqs[k as usize];
                        seqs[k as usize] = seq.wrapping_add(100);
                        tcp(
                            0x0a00_0000 + k,
                            1000,
                            0x0b00_0001,
                            80,
                            TCP_ACK,
                            seq,
                            501,
                            100,
                        )
                    })
                    .collect(),
                0,
            )
        }
        "tcp-new" => (
            (0..n)
                .map(|i| {
                    tcp(
                        0x0a00_0000 + i as u32,
                        1000,
                        0x0b00_0001,
                        80,
                        TCP_SYN,
                        1,
                        0,
                        0,
                    )
                })
                .collect(),
            32,
        ),
        other => panic!("unknown mode {other}"),
    };
    let acc = ct_icount_measured(&mut t, &pkts, &commit, expire_every);
    let s = t.stats();
    println!(
        "{mode}: {n} packets, state sum {acc}, invalid {}, table_full {}, entries {}",
        s.invalid, s.table_full, s.entries
    );
    black_box(acc);
}
