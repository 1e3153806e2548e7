//! The tracker's contract: commit semantics, zones, marks and labels, the table limit,
//! expiry, NAT both ways, sharding, and the index against a model.

use conntrack::packet::{Quoted, TcpSegment, TCP_ACK, TCP_SYN};
use conntrack::{shard_of, Config, CtState, NatRange, Packet, TrackOptions, Tracker, L4};
use proptest::prelude::*;
use std::collections::HashMap;

const A: u128 = 0x0a01_0002;
const B: u128 = 0x0a02_0002;

fn udp(src: u128, sport: u16, dst: u128, dport: u16) -> Packet {
    Packet {
        v6: false,
        src,
        dst,
        proto: 17,
        l4: L4::Udp { sport, dport },
    }
}

fn tcp(src: u128, sport: u16, dst: u128, dport: u16, flags: u8, seq: u32, ack: u32) -> Packet {
    Packet {
        v6: false,
        src,
        dst,
        proto: 6,
        l4: L4::Tcp(TcpSegment {
            sport,
            dport,
            seq,
            ack,
            flags,
            window: 65535,
            ..TcpSegment::default()
        }),
    }
}

fn commit() -> TrackOptions {
    TrackOptions {
        commit: true,
        ..TrackOptions::default()
    }
}

fn tracker(capacity: usize) -> Tracker {
    Tracker::new(Config {
        capacity,
        ..Config::default()
    })
    .unwrap()
}

#[test]
fn uncommitted_connections_are_not_stored() {
    let mut t = tracker(16);
    let look = TrackOptions::default();
    let r = t.track(&udp(A, 1000, B, 53), &look, 0);
    assert_eq!(r.state, CtState(CtState::TRACKED | CtState::NEW));
    // The reply of a connection never committed is a new connection of its own.
    let r = t.track(&udp(B, 53, A, 1000), &look, 1);
    assert_eq!(r.state, CtState(CtState::TRACKED | CtState::NEW));
    assert_eq!(t.stats().entries, 0);
    t.track(&udp(A, 1000, B, 53), &commit(), 2);
    let r = t.track(&udp(B, 53, A, 1000), &look, 3);
    assert_eq!(
        r.state,
        CtState(CtState::TRACKED | CtState::ESTABLISHED | CtState::REPLY)
    );
    assert_eq!(r.orig.unwrap().src, A);
    assert_eq!(t.stats().entries, 1);
}

#[test]
fn tcp_handshake_then_invalid_syn_ack() {
    let mut t = tracker(16);
    let c = commit();
    assert!(t
        .track(&tcp(A, 4000, B, 80, TCP_SYN, 100, 0), &c, 0)
        .state
        .has(CtState::NEW));
    let r = t.track(&tcp(B, 80, A, 4000, TCP_SYN | TCP_ACK, 900, 101), &c, 1);
    assert!(
        r.state.has(CtState::ESTABLISHED | CtState::REPLY),
        "{}",
        r.state
    );
    let r = t.track(&tcp(A, 4000, B, 80, TCP_ACK, 101, 901), &c, 2);
    assert_eq!(r.state.to_string(), "+est+trk");
    let conn = t.connections(None, 2).next().unwrap();
    assert_eq!(conn.tcp_state, Some(conntrack::TcpState::Established));
    // A SYN-ACK with no SYN before it.
    let r = t.track(&tcp(B, 80, A, 4001, TCP_SYN | TCP_ACK, 900, 101), &c, 3);
    assert!(r.state.has(CtState::INVALID));
    assert_eq!(t.stats().invalid, 1);
}

#[test]
fn zones_separate_connections_and_marks_labels_are_masked() {
    let mut t = tracker(16);
    let z1 = TrackOptions {
        zone: 1,
        set_mark: Some((0xab, 0xff)),
        set_label: Some((1 << 100, 1 << 100)),
        ..commit()
    };
    t.track(&udp(A, 1, B, 2), &z1, 0);
    let r = t.track(
        &udp(B, 2, A, 1),
        &TrackOptions {
            zone: 1,
            ..Default::default()
        },
        1,
    );
    assert!(r.state.has(CtState::ESTABLISHED));
    assert_eq!((r.zone, r.mark, r.label), (1, 0xab, 1 << 100));
    // The same packet in zone 2 is a different connection.
    let r = t.track(
        &udp(B, 2, A, 1),
        &TrackOptions {
            zone: 2,
            ..Default::default()
        },
        1,
    );
    assert!(r.state.has(CtState::NEW));
    // A later commit writes only the masked bits.
    let again = TrackOptions {
        zone: 1,
        set_mark: Some((0x1200, 0xff00)),
        ..commit()
    };
    let r = t.track(&udp(A, 1, B, 2), &again, 2);
    assert_eq!(r.mark, 0x12ab);
    let zone1 = t.zone_stats().find(|z| z.zone == Some(1)).unwrap();
    assert_eq!((zone1.entries, zone1.committed), (1, 1));
    assert_eq!(t.flush(Some(2)), 0);
    assert_eq!(t.flush(Some(1)), 1);
    assert_eq!(
        t.zone_stats().find(|z| z.zone == Some(1)).unwrap().entries,
        0
    );
}

#[test]
fn a_full_table_refuses_new_connections_and_keeps_established_ones() {
    let mut t = tracker(4);
    for port in 0..4 {
        assert!(t
            .track(&udp(A, port, B, 53), &commit(), 0)
            .state
            .has(CtState::NEW));
    }
    let r = t.track(&udp(A, 99, B, 53), &commit(), 1);
    assert!(r.state.has(CtState::INVALID));
    assert_eq!(t.stats().table_full, 1);
    let zone0 = t.zone_stats().next().unwrap();
    assert_eq!(
        (zone0.zone, zone0.entries, zone0.table_full, zone0.invalid),
        (Some(0), 4, 1, 1)
    );
    for port in 0..4 {
        let r = t.track(&udp(B, 53, A, port), &commit(), 2);
        assert!(r.state.has(CtState::ESTABLISHED | CtState::REPLY));
    }
    // Once a connection expires, its place is taken (the allocator sweeps when full).
    let later = 2 + 120_001;
    assert!(t
        .track(&udp(A, 99, B, 53), &commit(), later)
        .state
        .has(CtState::NEW));
}

#[test]
fn expiry_is_exact_for_lookups_and_bounded_per_call() {
    let mut t = Tracker::new(Config {
        capacity: 1000,
        expire_per_call: 32,
        ..Config::default()
    })
    .unwrap();
    for port in 0..1000 {
        t.track(&udp(A, port, B, 53), &commit(), 0);
    }
    // Unreplied UDP lives 30 s.
    assert!(t
        .track(&udp(B, 53, A, 7), &TrackOptions::default(), 29_999)
        .state
        .has(CtState::ESTABLISHED));
    assert!(t
        .track(&udp(B, 53, A, 8), &TrackOptions::default(), 30_000)
        .state
        .has(CtState::NEW));
    let mut calls = 0;
    loop {
        let freed = t.expire(30_000);
        assert!(freed <= 32);
        calls += 1;
        // The connection that saw a reply lives on (UDP streams: 120 s).
        if t.stats().entries == 1 {
            break;
        }
        assert!(calls < 1000, "the sweep makes no progress");
    }
    // 1000 entries, 32 looked at per call (plus the ones freed on lookup).
    assert!(calls <= 1000 / 32 + 1, "{calls} calls");
    assert_eq!(t.stats().expired, 999);
    let left = t.connections(None, 30_000).next().unwrap();
    assert_eq!(
        (left.orig.sport, left.seen_reply, left.expires_in_ms),
        (7, true, 119_999)
    );
}

#[test]
fn snat_translates_both_directions() {
    let mut t = tracker(64);
    let nat = TrackOptions {
        nat: true,
        nat_range: Some(NatRange::parse("src=192.168.0.10:20000-20009").unwrap()),
        ..commit()
    };
    let r = t.track(&udp(A, 5555, B, 53), &nat, 0);
    assert!(r.state.has(CtState::NEW | CtState::SNAT));
    let (addr, port) = r.rewrite.src.expect("source rewritten");
    assert_eq!(addr, 0xc0a8_000a);
    assert!((20000..=20009).contains(&port));
    assert_eq!(r.rewrite.dst, None);
    // The reply comes to the translated address and goes back to the client.
    let r = t.track(
        &udp(B, 53, addr, port),
        &TrackOptions {
            nat: true,
            ..Default::default()
        },
        1,
    );
    assert!(r
        .state
        .has(CtState::ESTABLISHED | CtState::REPLY | CtState::SNAT));
    assert_eq!(r.rewrite.dst, Some((A, 5555)));
    assert_eq!(r.rewrite.src, None);
    // Ten ports, ten connections; the eleventh finds none free.
    for p in 1..10 {
        assert!(t
            .track(&udp(A, 5555 + p, B, 53), &nat, 2)
            .state
            .has(CtState::NEW));
    }
    assert!(t
        .track(&udp(A, 7000, B, 53), &nat, 3)
        .state
        .has(CtState::INVALID));
    assert_eq!(t.stats().nat_exhausted, 1);
}

/// The tracker writes each result over the last one in place (`track_ip_ref` lends it):
/// a packet tracked without `nat`, or without edits, after one with edits carries none,
/// whatever came before (a commit with SNAT, its reply, an ICMP error translated back).
#[test]
fn a_result_without_edits_follows_one_with_edits() {
    let mut t = tracker(64);
    let snat = TrackOptions {
        nat: true,
        nat_range: Some(NatRange::parse("src=192.168.0.10:20000").unwrap()),
        ..commit()
    };
    let plain = TrackOptions::default();
    let with_nat = TrackOptions {
        nat: true,
        ..TrackOptions::default()
    };
    let r = t.track(&udp(A, 5555, B, 53), &snat, 0);
    assert!(r.rewrite.src.is_some());
    // The same connection without `nat`: +snat, no edits.
    let r = t.track(&udp(A, 5555, B, 53), &plain, 1);
    assert!(r.state.has(CtState::SNAT));
    assert_eq!(r.rewrite, Default::default());
    // Its reply with `nat` has edits, then an unrelated connection with `nat` has none.
    let r = t.track(&udp(B, 53, 0xc0a8_000a, 20000), &with_nat, 2);
    assert_eq!(r.rewrite.dst, Some((A, 5555)));
    let r = t.track(&udp(A, 6000, B, 53), &with_nat, 3);
    assert_eq!(r.rewrite, Default::default());
    // An ICMP error about the connection, translated back, then a plain established packet.
    let err = Packet {
        v6: false,
        src: B,
        dst: 0xc0a8_000a,
        proto: 1,
        l4: L4::IcmpError {
            icmp_type: 3,
            quoted: Quoted {
                src: 0xc0a8_000a,
                dst: B,
                proto: 17,
                sport: 20000,
                dport: 53,
            },
        },
    };
    let r = t.track(&err, &with_nat, 4);
    assert!(r.state.has(CtState::RELATED));
    assert_ne!(r.rewrite, Default::default());
    let r = t.track(&udp(A, 5555, B, 53), &plain, 5);
    assert_eq!(r.rewrite, Default::default());
    assert_eq!(r.orig.map(|o| o.sport), Some(5555));
}

#[test]
fn snat_of_echo_translates_addresses_only() {
    let mut t = tracker(16);
    let nat = TrackOptions {
        nat: true,
        nat_range: Some(NatRange::parse("src=192.168.0.10-192.168.0.11").unwrap()),
        ..commit()
    };
    let echo = |src, dst, request| Packet {
        v6: false,
        src,
        dst,
        proto: 1,
        l4: L4::IcmpEcho {
            id: 7,
            request,
            query: 8,
        },
    };
    let r = t.track(&echo(A, B, true), &nat, 0);
    assert!(r.state.has(CtState::NEW | CtState::SNAT), "{}", r.state);
    let (addr, port) = r.rewrite.src.unwrap();
    assert!((0xc0a8_000a..=0xc0a8_000b).contains(&addr) && port == 0);
    let r = t.track(
        &echo(B, addr, false),
        &TrackOptions {
            nat: true,
            ..Default::default()
        },
        1,
    );
    assert_eq!(r.state.to_string(), "+est+rpl+trk+snat");
    assert_eq!(r.rewrite.dst, Some((A, 0)));
    // A range of the other family translates nothing: refused and counted.
    let v6_range = TrackOptions {
        nat_range: Some(NatRange::parse("src=[fd00::1]").unwrap()),
        ..nat
    };
    assert!(t
        .track(&udp(A, 1, B, 2), &v6_range, 2)
        .state
        .has(CtState::INVALID));
    assert_eq!(t.stats().nat_exhausted, 1);
}

#[test]
fn dnat_translates_and_the_reply_is_rewritten_back() {
    let mut t = tracker(64);
    let nat = TrackOptions {
        nat: true,
        nat_range: Some(NatRange::parse("dst=10.9.9.9:8080").unwrap()),
        ..commit()
    };
    let vip = 0xa9fe_a9fe; // 169.254.169.254
    let r = t.track(&tcp(A, 4000, vip, 80, TCP_SYN, 1, 0), &nat, 0);
    assert!(r.state.has(CtState::NEW | CtState::DNAT));
    assert_eq!(r.rewrite.dst, Some((0x0a09_0909, 8080)));
    let r = t.track(
        &tcp(0x0a09_0909, 8080, A, 4000, TCP_SYN | TCP_ACK, 50, 2),
        &TrackOptions {
            nat: true,
            ..Default::default()
        },
        1,
    );
    assert!(
        r.state
            .has(CtState::ESTABLISHED | CtState::REPLY | CtState::DNAT),
        "{}",
        r.state
    );
    assert_eq!(r.rewrite.src, Some((vip, 80)));
    let orig = r.orig.unwrap();
    assert_eq!(
        (orig.dst, orig.dport),
        (vip, 80),
        "ct_nw_dst/ct_tp_dst are the original ones"
    );
}

#[test]
fn icmp_errors_are_related_only_to_their_connection() {
    let mut t = tracker(16);
    t.track(&udp(A, 1234, B, 9), &commit(), 0);
    let err = |quoted_sport, to| Packet {
        v6: false,
        src: B,
        dst: to,
        proto: 1,
        l4: L4::IcmpError {
            icmp_type: 3,
            quoted: Quoted {
                src: A,
                dst: B,
                proto: 17,
                sport: quoted_sport,
                dport: 9,
            },
        },
    };
    let r = t.track(&err(1234, A), &TrackOptions::default(), 1);
    assert_eq!(r.state.to_string(), "+rel+rpl+trk");
    assert!(t
        .track(&err(1235, A), &TrackOptions::default(), 1)
        .state
        .has(CtState::INVALID));
    // Addressed to someone else than the sender of the quoted packet.
    assert!(t
        .track(&err(1234, 0x0a03_0003), &TrackOptions::default(), 1)
        .state
        .has(CtState::INVALID));
}

#[test]
fn nat_keeps_replies_on_the_shard_that_owns_the_connection() {
    for shard in 0..4 {
        let mut t = Tracker::new(Config {
            capacity: 256,
            shard,
            shards: 4,
            ..Config::default()
        })
        .unwrap();
        let nat = TrackOptions {
            nat: true,
            nat_range: Some(NatRange::parse("src=192.168.0.10").unwrap()),
            ..commit()
        };
        let mut made = 0;
        for port in 1000..1400 {
            let p = udp(A, port, B, 53);
            if shard_of(&p, 4) != shard {
                continue;
            }
            let r = t.track(&p, &nat, 0);
            assert!(r.state.has(CtState::NEW), "{}", r.state);
            let (addr, nport) = r.rewrite.src.unwrap();
            let reply = udp(B, 53, addr, nport);
            assert_eq!(
                shard_of(&reply, 4),
                shard,
                "the reply lands on the owning shard"
            );
            assert!(t
                .track(&reply, &TrackOptions::default(), 1)
                .state
                .has(CtState::REPLY));
            made += 1;
        }
        assert!(made > 50);
    }
}

proptest! {
    #[test]
    fn shard_of_is_the_same_both_ways(src: u32, dst: u32, sport: u16, dport: u16, shards in 1usize..16) {
        let there = udp(u128::from(src), sport, u128::from(dst), dport);
        let back = udp(u128::from(dst), dport, u128::from(src), sport);
        prop_assert_eq!(shard_of(&there, shards), shard_of(&back, shards));
        prop_assert!(shard_of(&there, shards) < shards);
    }

    #[test]
    fn parsing_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), v6: bool) {
        let mut b = bytes;
        if let Some(first) = b.first_mut() {
            *first = (*first & 0x0f) | if v6 { 0x60 } else { 0x45 };
        }
        let _ = conntrack::parse_ip(&b, true);
        let _ = conntrack::parse_ip(&b, false);
        let _ = conntrack::parse_ethernet(&b, false);
    }

    /// Random commits, lookups, flushes and expiry in a small, crowded table agree with
    /// a plain map (this exercises the index's probing and backward-shift deletion).
    #[test]
    fn the_table_agrees_with_a_model(ops in proptest::collection::vec((0u8..4, 0u16..40, 0u64..3), 1..400)) {
        let mut t = Tracker::new(Config { capacity: 24, expire_per_call: 5, ..Config::default() }).unwrap();
        let mut model: HashMap<u16, (u64, bool)> = HashMap::new(); // port -> (expiry, replied)
        let mut now = 0u64;
        for (op, port, dt) in ops {
            now += dt * 10_000;
            model.retain(|_, (exp, _)| *exp > now);
            match op {
                0 | 1 => {
                    let r = t.track(&udp(A, port, B, 53), &commit(), now);
                    if let Some((exp, replied)) = model.get_mut(&port) {
                        let want = if *replied { CtState::ESTABLISHED } else { CtState::NEW };
                        prop_assert!(r.state.has(want), "{}", r.state);
                        *exp = now + if *replied { 120_000 } else { 30_000 };
                    } else if model.len() < 24 {
                        prop_assert!(r.state.has(CtState::NEW), "{}", r.state);
                        model.insert(port, (now + 30_000, false));
                    } else {
                        // Full, unless the allocator's sweep found an expired entry: the model
                        // has none left, so it is full.
                        prop_assert!(r.state.has(CtState::INVALID), "{}", r.state);
                    }
                }
                2 => {
                    let r = t.track(&udp(B, 53, A, port), &TrackOptions::default(), now);
                    if let Some((exp, replied)) = model.get_mut(&port) {
                        prop_assert!(r.state.has(CtState::REPLY), "{}", r.state);
                        *exp = now + 120_000;
                        *replied = true;
                    } else {
                        prop_assert!(r.state.has(CtState::NEW), "{}", r.state);
                    }
                }
                _ => {
                    t.expire(now);
                }
            }
            let live = t.connections(None, now).count();
            prop_assert_eq!(live, model.len());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Any sequence of TCP segments, UDP datagrams and ICMP errors over a few endpoints, in
    /// both directions, with and without commit and NAT, in a small table, keeps the table
    /// consistent: no panic, the live connections are the ones counted, and every live
    /// connection is found again from both of its tuples.
    #[test]
    fn random_traffic_keeps_the_table_consistent(
        ops in proptest::collection::vec(
            (0u8..4, 0u16..3, any::<bool>(), 0u8..0x40, any::<u32>(), any::<u32>(), 0u32..2000, any::<bool>(), 0u64..5),
            1..300,
        )
    ) {
        let mut t = Tracker::new(Config { capacity: 8, expire_per_call: 3, ..Config::default() }).unwrap();
        let nat = NatRange::parse("src=192.168.0.1:1000-1003").unwrap();
        let mut now = 0u64;
        for (kind, port, reply, flags, seq, ack, len, commit, dt) in ops {
            now += dt * 7_000;
            let (c, s) = ((A, 40_000 + port), (B, 80));
            let ((src, sport), (dst, dport)) = if reply { (s, c) } else { (c, s) };
            let pkt = match kind {
                0 | 1 => {
                    let mut p = tcp(src, sport, dst, dport, flags, seq, ack);
                    if let L4::Tcp(seg) = &mut p.l4 {
                        seg.payload_len = len;
                        seg.window = (seq >> 16) as u16;
                        seg.wscale = (len % 3 == 0).then_some((len % 16) as u8);
                    }
                    p
                }
                2 => udp(src, sport, dst, dport),
                _ => Packet {
                    v6: false,
                    src: dst,
                    dst: src,
                    proto: 1,
                    l4: L4::IcmpError {
                        icmp_type: 3,
                        quoted: Quoted { src, dst, proto: if seq % 2 == 0 { 6 } else { 17 }, sport, dport },
                    },
                },
            };
            let o = TrackOptions {
                commit,
                nat: true,
                nat_range: (len % 5 == 0).then_some(nat),
                set_mark: Some((seq, ack)),
                ..TrackOptions::default()
            };
            let r = t.track(&pkt, &o, now);
            prop_assert!(r.state.has(CtState::TRACKED));
            t.expire(now);
            let live: Vec<_> = t.connections(None, now).collect();
            let counted = t.stats().entries as usize;
            prop_assert!(live.len() <= counted && counted <= 8);
            for conn in live {
                for (tuple, want_reply) in [(conn.orig, false), (conn.reply, true)] {
                    let icmp = tuple.proto == 1;
                    let l4 = if tuple.proto == 6 {
                        L4::Tcp(TcpSegment { sport: tuple.sport, dport: tuple.dport, flags: TCP_ACK, ..TcpSegment::default() })
                    } else if icmp {
                        L4::IcmpEcho { id: tuple.sport, request: tuple.dport & 1 == 1, query: (tuple.dport >> 1) as u8 }
                    } else {
                        L4::Udp { sport: tuple.sport, dport: tuple.dport }
                    };
                    let p = Packet { v6: false, src: tuple.src, dst: tuple.dst, proto: tuple.proto, l4 };
                    // Looked up without commit: a TCP ACK may be out of window (+inv);
                    // otherwise it is this connection, in this direction.
                    let r = t.track(&p, &TrackOptions::default(), now);
                    if !r.state.has(CtState::INVALID) {
                        prop_assert_eq!(r.orig, Some(conn.orig), "{}", r.state);
                        let want = if want_reply || conn.seen_reply { CtState::ESTABLISHED } else { CtState::NEW };
                        prop_assert!(r.state.has(want), "{:?}: {}", tuple, r.state);
                        prop_assert_eq!(r.state.has(CtState::REPLY), want_reply);
                    }
                }
            }
        }
    }
}
