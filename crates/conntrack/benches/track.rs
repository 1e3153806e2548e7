//! Per-packet cost of tracking: established traffic in a table of 64k connections (UDP
//! and TCP data segments), and the connection rate (commit of a new connection, with the
//! expiry sweep making room). `cargo bench -p conntrack`.

use conntrack::packet::{TCP_ACK, TCP_SYN};
use conntrack::{Config, Packet, TrackOptions, Tracker};
mod common;

use common::{tcp, udp, CONNS};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

fn bench(c: &mut Criterion) {
    let commit = TrackOptions {
        commit: true,
        ..TrackOptions::default()
    };
    let mut g = c.benchmark_group("conntrack");
    g.throughput(Throughput::Elements(1));

    let mut t = Tracker::new(Config {
        capacity: CONNS as usize * 2,
        ..Config::default()
    })
    .unwrap();
    for i in 0..CONNS {
        t.track(&udp(0x0a00_0000 + i, 1000, 0x0b00_0001, 53), &commit, 0);
        t.track(&udp(0x0b00_0001, 53, 0x0a00_0000 + i, 1000), &commit, 0);
    }
    let pkts: Vec<Packet> = (0..CONNS)
        .map(|i| {
            udp(
                0x0a00_0000 + (i.wrapping_mul(40_503) % CONNS),
                1000,
                0x0b00_0001,
                53,
            )
        })
        .collect();
    let mut i = 0;
    g.bench_function("udp established, 64k connections", |b| {
        b.iter(|| {
            i = (i + 1) % pkts.len();
            black_box(t.track(&pkts[i], &commit, 1).state)
        })
    });

    // TCP data segments moving forward in window, in one of 64k connections.
    let mut t = Tracker::new(Config {
        capacity: CONNS as usize * 2,
        ..Config::default()
    })
    .unwrap();
    let mut seqs = vec![0u32; CONNS as usize];
    for i in 0..CONNS {
        let (c, s) = (0x0a00_0000 + i, 0x0b00_0001);
        t.track(&tcp(c, 1000, s, 80, TCP_SYN, 100, 0, 0), &commit, 0);
        t.track(
            &tcp(s, 80, c, 1000, TCP_SYN | TCP_ACK, 500, 101, 0),
            &commit,
            0,
        );
        t.track(&tcp(c, 1000, s, 80, TCP_ACK, 101, 501, 0), &commit, 0);
        seqs[i as usize] = 101;
    }
    let mut k = 0usize;
    g.bench_function("tcp established data, 64k connections", |b| {
        b.iter(|| {
            k = (k + 40_503) % CONNS as usize;
            let seq = seqs[k];
            seqs[k] = seq.wrapping_add(100);
            let p = tcp(
                0x0a00_0000 + k as u32,
                1000,
                0x0b00_0001,
                80,
                TCP_ACK,
                seq,
                501,
                100,
            );
            let r = t.track(&p, &commit, 1);
            // Keep the receiver's window open: the server acknowledges every 100 segments.
            if seq.wrapping_sub(101) % 10_000 == 9_900 {
                let ack = tcp(
                    0x0b00_0001,
                    80,
                    0x0a00_0000 + k as u32,
                    1000,
                    TCP_ACK,
                    501,
                    seq + 100,
                    0,
                );
                t.track(&ack, &commit, 1);
            }
            black_box(r.state)
        })
    });

    // New connections: commit a TCP SYN each time; connections expire after 1 s of the
    // benchmark's clock, and the sweep (32 entries per call, as once per burst) frees them.
    let mut t = Tracker::new(Config {
        capacity: CONNS as usize,
        timeouts: conntrack::Timeouts {
            tcp: conntrack::TcpTimeouts {
                syn_sent_ms: 1,
                ..Default::default()
            },
            ..Default::default()
        },
        ..Config::default()
    })
    .unwrap();
    let mut n = 0u64;
    g.bench_function("new tcp connection (commit), with expiry", |b| {
        b.iter(|| {
            n += 1;
            let now = n / 16_384; // a table's worth of connections every 4 ms of clock
            let p = tcp(
                0x0a00_0000 + (n as u32 & 0xffffff),
                (n >> 24) as u16,
                0x0b00_0001,
                80,
                TCP_SYN,
                1,
                0,
                0,
            );
            let r = t.track(&p, &commit, now);
            if n.is_multiple_of(32) {
                t.expire(now);
            }
            black_box(r.state)
        })
    });
    assert_eq!(t.stats().table_full, 0, "the sweep kept up");
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
