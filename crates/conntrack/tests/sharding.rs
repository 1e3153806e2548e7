//! The owner of a connection over several workers ([`shard_of`], [`shard_of_frame`]): the
//! same for both directions, for ICMP errors about the connection, and after NAT (the
//! translated packet and its reply stay with the worker that committed the connection),
//! so the datapath can hand each packet to one owner by the packet as it arrives.

use conntrack::packet::Quoted;
use conntrack::{
    shard_of, shard_of_frame, Config, CtState, NatKind, NatRange, Packet, TrackOptions, Tracker, L4,
};
use proptest::prelude::*;

fn udp(src: u128, sport: u16, dst: u128, dport: u16) -> Packet {
    Packet {
        v6: false,
        src,
        dst,
        proto: 17,
        l4: L4::Udp { sport, dport },
    }
}

/// An Ethernet frame with `tags` VLAN tags carrying an IPv4 packet of `proto` from
/// `src:sport` to `dst:dport` (checksums left zero: they do not choose the owner).
fn frame(src: u32, sport: u16, dst: u32, dport: u16, proto: u8, tags: usize) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    for _ in 0..tags {
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
    }
    f.extend_from_slice(&[0x08, 0x00]);
    let l4_len = if proto == 6 { 20 } else { 8 };
    let total = (20 + l4_len) as u16;
    f.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0,
        0,
        64,
        proto,
    ]);
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&src.to_be_bytes());
    f.extend_from_slice(&dst.to_be_bytes());
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    if proto == 6 {
        // seq, ack, data offset 5, ACK, window.
        f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0]);
    } else {
        f.extend_from_slice(&[0, 8, 0, 0]);
    }
    f
}

fn nat_range(kind: NatKind, addr: u32, n_addr: u32, ports: Option<(u16, u16)>) -> NatRange {
    NatRange {
        kind,
        v6: false,
        addr_min: u128::from(addr),
        addr_max: u128::from(addr) + u128::from(n_addr),
        ports,
    }
}

proptest! {
    /// Both directions, ICMP errors about the connection (either way), and the frame as
    /// the datapath sees it (behind 0-2 VLAN tags) have the one owner.
    #[test]
    fn one_owner_for_both_directions_and_icmp_errors(
        src: u32, dst: u32, sport: u16, dport: u16, tcp: bool, shards in 1usize..9, tags in 0usize..3,
    ) {
        let proto = if tcp { 6 } else { 17 };
        let (s, d) = (u128::from(src), u128::from(dst));
        let mk = |a, pa, b, pb| {
            let mut p = udp(a, pa, b, pb);
            p.proto = proto;
            if tcp {
                p.l4 = L4::Tcp(conntrack::packet::TcpSegment { sport: pa, dport: pb, ..Default::default() });
            }
            p
        };
        let there = mk(s, sport, d, dport);
        let back = mk(d, dport, s, sport);
        let owner = shard_of(&there, shards);
        prop_assert!(owner < shards);
        prop_assert_eq!(shard_of(&back, shards), owner);
        // An ICMP error from a router (any address) quoting either direction.
        for (q, to) in [((s, sport, d, dport), s), ((d, dport, s, sport), d)] {
            let e = Packet {
                v6: false,
                src: 0x0a63_6301,
                dst: to,
                proto: 1,
                l4: L4::IcmpError {
                    icmp_type: 3,
                    quoted: Quoted { src: q.0, sport: q.1, dst: q.2, dport: q.3, proto },
                },
            };
            prop_assert_eq!(shard_of(&e, shards), owner);
        }
        prop_assert_eq!(shard_of_frame(&frame(src, sport, dst, dport, proto, tags), shards), Some(owner));
        prop_assert_eq!(shard_of_frame(&frame(dst, dport, src, sport, proto, tags), shards), Some(owner));
    }

    /// NAT keeps the owner: a connection committed with `nat(src=...)` or `nat(dst=...)`
    /// by its owner gets a translation whose translated packet (which a later `ct` in
    /// another zone tracks) and whose reply (which arrives translated) both hash to that
    /// owner; the reply is then found by the owner as `+est+rpl`, and nothing is foreign.
    #[test]
    fn nat_translations_keep_the_owner(
        src: u32, dst: u32, sport in 1u16.., dport in 1u16.., shards in 2usize..9,
        snat: bool, base: u32, n_addr in 0u32..4, ports in proptest::option::of((1024u16..2048, 0u16..64)),
    ) {
        prop_assume!(src != dst);
        let p = udp(u128::from(src), sport, u128::from(dst), dport);
        let owner = shard_of(&p, shards);
        let mut t = Tracker::new(Config { capacity: 64, shard: owner, shards, ..Config::default() }).unwrap();
        let kind = if snat { NatKind::Src } else { NatKind::Dst };
        let range = nat_range(kind, base, n_addr, ports.map(|(lo, n)| (lo, lo + n)));
        let o = TrackOptions {
            commit: true,
            nat: true,
            nat_range: Some(range),
            ..TrackOptions::default()
        };
        let r = t.track(&p, &o, 0);
        // DNAT of a port-carrying protocol always finds one: the source port as a last
        // resort (a miss is (W-1)/W per attempt, 128 attempts).
        prop_assert!(snat || t.stats().nat_exhausted == 0, "{:?}", t.stats());
        if t.stats().nat_exhausted > 0 {
            // No free translation keeps the owner: refused, never sent elsewhere.
            prop_assert!(r.state.has(CtState::INVALID));
            return Ok(());
        }
        prop_assert!(r.state.has(CtState::NEW), "{}", r.state);
        let (mut a, mut pa, mut b, mut pb) = (p.src, sport, p.dst, dport);
        if let Some((addr, port)) = r.rewrite.src {
            a = addr;
            pa = port;
        }
        if let Some((addr, port)) = r.rewrite.dst {
            b = addr;
            pb = port;
        }
        let translated = udp(a, pa, b, pb);
        prop_assert_eq!(shard_of(&translated, shards), owner, "translated {:?}", translated);
        let reply = udp(b, pb, a, pa);
        prop_assert_eq!(shard_of(&reply, shards), owner, "reply {:?}", reply);
        let back = t.track(&reply, &TrackOptions { nat: true, ..TrackOptions::default() }, 1);
        prop_assert!(back.state.has(CtState::ESTABLISHED) && back.state.has(CtState::REPLY), "{}", back.state);
        prop_assert_eq!(t.stats().foreign, 0);
    }
}

/// A packet tracked by a shard that does not own it (rewritten before `ct`) is tracked
/// all the same and counted.
#[test]
fn tracking_on_the_wrong_shard_is_counted() {
    let p = udp(0x0a00_0001, 1000, 0x0a00_0002, 53);
    let owner = shard_of(&p, 2);
    let mut t = Tracker::new(Config {
        capacity: 16,
        shard: 1 - owner,
        shards: 2,
        ..Config::default()
    })
    .unwrap();
    let r = t.track(
        &p,
        &TrackOptions {
            commit: true,
            ..TrackOptions::default()
        },
        0,
    );
    assert!(r.state.has(CtState::NEW));
    assert_eq!(t.stats().foreign, 1);
}

/// What the datapath leaves where it arrived: not IP, or not parseable.
#[test]
fn frames_without_a_connection_have_no_owner() {
    let mut arp = frame(1, 2, 3, 4, 17, 0);
    arp[12] = 0x08;
    arp[13] = 0x06;
    assert_eq!(shard_of_frame(&arp, 2), None);
    assert_eq!(shard_of_frame(&[0u8; 10], 2), None);
    let truncated = &frame(1, 2, 3, 4, 6, 1)[..30];
    assert_eq!(shard_of_frame(truncated, 2), None);
    // One worker owns everything.
    assert_eq!(shard_of_frame(&arp, 1), Some(0));
}

fn tcp_syn(src: u128, sport: u16, dst: u128, dport: u16) -> Packet {
    Packet {
        v6: false,
        src,
        dst,
        proto: 6,
        l4: L4::Tcp(conntrack::packet::TcpSegment {
            sport,
            dport,
            flags: 0x02,
            seq: 1000,
            window: 64240,
            ..Default::default()
        }),
    }
}

const METADATA: u128 = 0xa9fe_a9fe; // 169.254.169.254
const SERVER: u128 = 0x0aff_0801; // 10.255.8.1

/// `nat(dst=10.255.8.1:8775)` as the metadata service commits it: over two shards every
/// connection is taken by its owner; the source port is kept where the server's reply
/// hashes to the owner anyway, and translated (within 1024-65535, or 600-1023 for a
/// privileged one) where it would not, so the reply always comes back to the owner, is
/// `+est+rpl`, and is translated back to 169.254.169.254:80 and the client's own port.
#[test]
fn dnat_to_one_address_and_port_remaps_the_source_port_for_the_owner() {
    let client = 0x0a08_0001;
    let range = NatRange::parse("dst=10.255.8.1:8775").unwrap();
    let o = TrackOptions {
        commit: true,
        nat: true,
        nat_range: Some(range),
        ..TrackOptions::default()
    };
    let mut trackers: Vec<Tracker> = (0..2)
        .map(|shard| {
            Tracker::new(Config {
                capacity: 256,
                shard,
                shards: 2,
                ..Config::default()
            })
            .unwrap()
        })
        .collect();
    let (mut kept, mut remapped) = (0, 0);
    // Source ports the server already sees: an earlier connection may have been moved to
    // a later connection's own port (600-1023 is small), and then that one moves too.
    let mut seen_by_server = std::collections::HashSet::new();
    for sport in (40000..40064).chain(700..716) {
        let syn = tcp_syn(client, sport, METADATA, 80);
        let owner = shard_of(&syn, 2);
        let natural = shard_of(&tcp_syn(SERVER, 8775, client, sport), 2);
        let t = &mut trackers[owner];
        let r = t.track(&syn, &o, 0);
        assert!(
            r.state.has(CtState::NEW) && r.state.has(CtState::DNAT),
            "{}",
            r.state
        );
        let (daddr, dport) = r.rewrite.dst.expect("DNAT");
        assert_eq!((daddr, dport), (SERVER, 8775));
        let new_sport = match r.rewrite.src {
            None => {
                assert_eq!(natural, owner, "port {sport} kept though its reply leaves");
                assert!(!seen_by_server.contains(&sport), "port {sport} used twice");
                kept += 1;
                sport
            }
            Some((saddr, p)) => {
                assert_eq!(saddr, client, "only the port moves");
                assert!(
                    natural != owner || seen_by_server.contains(&sport),
                    "port {sport} moved though it fitted and was free"
                );
                let (lo, hi) = if sport < 1024 {
                    (600, 1023)
                } else {
                    (1024, 65535)
                };
                assert!((lo..=hi).contains(&p), "{sport} -> {p}");
                remapped += 1;
                p
            }
        };
        assert!(seen_by_server.insert(new_sport), "{new_sport} given twice");
        let mut reply = tcp_syn(SERVER, 8775, client, new_sport);
        if let L4::Tcp(seg) = &mut reply.l4 {
            seg.flags = 0x12;
            seg.seq = 5000;
            seg.ack = 1001;
        }
        assert_eq!(
            shard_of(&reply, 2),
            owner,
            "the reply comes back to the owner"
        );
        let back = t.track(
            &reply,
            &TrackOptions {
                nat: true,
                ..TrackOptions::default()
            },
            1,
        );
        assert!(
            back.state.has(CtState::ESTABLISHED) && back.state.has(CtState::REPLY),
            "{}",
            back.state
        );
        assert_eq!(back.rewrite.src, Some((METADATA, 80)));
        assert_eq!(
            back.rewrite.dst,
            (new_sport != sport).then_some((client, sport)),
            "the client sees its own port"
        );
    }
    for t in &trackers {
        let s = t.stats();
        assert_eq!((s.nat_exhausted, s.foreign, s.invalid), (0, 0, 0), "{s:?}");
    }
    assert!(
        kept > 10 && remapped > 10,
        "kept {kept}, remapped {remapped}"
    );
    // Each shard counted the connections whose source port it moved, and only those.
    let counted: u64 = trackers.iter().map(|t| t.stats().nat_source_remapped).sum();
    assert_eq!(counted, remapped);
}

/// An IPv4 echo request or reply with right checksums.
fn echo_bytes(src: u32, dst: u32, request: bool, id: u16) -> Vec<u8> {
    let csum = inet_csum;
    let mut ip = vec![0x45, 0, 0, 36, 0, 0, 0, 0, 64, 1, 0, 0];
    ip.extend_from_slice(&src.to_be_bytes());
    ip.extend_from_slice(&dst.to_be_bytes());
    let c = csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut icmp = vec![if request { 8 } else { 0 }, 0, 0, 0];
    icmp.extend_from_slice(&id.to_be_bytes());
    icmp.extend_from_slice(&[0, 1, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a]);
    let c = csum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&icmp);
    ip
}

/// A router between the switch and the server (it sends ICMP errors about the server).
const ROUTER: u32 = 0x0aff_08fe;

/// The request as the DNAT sends it on.
fn out_request(request: &[u8], rw: &conntrack::Rewrite) -> Vec<u8> {
    let mut out = request.to_vec();
    conntrack::nat::apply(&mut out, rw).unwrap();
    out
}

/// An ICMP host-unreachable from `src` to `dst` quoting `quoted`'s IP header and first
/// eight bytes, with right checksums.
fn icmp_error_bytes(src: u32, dst: u32, quoted: &[u8]) -> Vec<u8> {
    let quote = &quoted[..28];
    let mut ip = vec![0x45, 0, 0, 56, 0, 0, 0, 0, 64, 1, 0, 0];
    ip.extend_from_slice(&src.to_be_bytes());
    ip.extend_from_slice(&dst.to_be_bytes());
    let c = inet_csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut icmp = vec![3, 1, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(quote);
    let c = inet_csum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&icmp);
    ip
}

fn inet_csum(b: &[u8]) -> u16 {
    let mut s: u32 = b
        .chunks(2)
        .map(|c| u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0)))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// `nat(dst=10.255.8.1)` of pings over two shards: the echo identifier moves where the
/// server's reply would hash to the other shard, as a TCP/UDP source port does, so every
/// ping is taken by its owner and its reply comes back there, `+est+rpl`, translated back
/// to 169.254.169.254 and the client's own identifier; the edited packets carry right
/// checksums, and each shard counts the identifiers it moved. An ICMP error about a
/// ping is translated back too, the quoted identifier included.
#[test]
fn dnat_of_echo_remaps_the_identifier_for_the_owner() {
    let client: u32 = 0x0a08_0001;
    let o = TrackOptions {
        commit: true,
        nat: true,
        nat_range: Some(NatRange::parse("dst=10.255.8.1").unwrap()),
        ..TrackOptions::default()
    };
    let mut trackers: Vec<Tracker> = (0..2)
        .map(|shard| {
            Tracker::new(Config {
                capacity: 256,
                shard,
                shards: 2,
                ..Config::default()
            })
            .unwrap()
        })
        .collect();
    let (mut kept, mut moved) = (0u64, 0u64);
    for id in 100..164u16 {
        let request = echo_bytes(client, METADATA as u32, true, id);
        let owner = shard_of_frame(&[&[0u8; 12][..], &[8, 0], &request].concat(), 2).unwrap();
        let t = &mut trackers[owner];
        let r = t.track_ip(&request, &o, 0);
        assert!(r.state.has(CtState::NEW | CtState::DNAT), "{}", r.state);
        let mut out = request.clone();
        conntrack::nat::apply(&mut out, &r.rewrite).unwrap();
        let sent = conntrack::parse_ip(&out, true).expect("checksums right after DNAT");
        assert_eq!((sent.src, sent.dst), (u128::from(client), SERVER));
        let L4::IcmpEcho { id: new_id, .. } = sent.l4 else {
            panic!("{sent:?}")
        };
        match r.rewrite.id {
            None => {
                assert_eq!(new_id, id);
                kept += 1;
            }
            Some(n) => {
                assert_eq!((n, new_id == id), (new_id, false));
                moved += 1;
            }
        }
        // The server's reply, to the identifier it saw, comes back to the owner.
        let reply = echo_bytes(SERVER as u32, client, false, new_id);
        let frame = [&[0u8; 12][..], &[8, 0], &reply].concat();
        assert_eq!(
            shard_of_frame(&frame, 2),
            Some(owner),
            "id {id} -> {new_id}"
        );
        let nat_only = TrackOptions {
            nat: true,
            ..TrackOptions::default()
        };
        let back = t.track_ip(&reply, &nat_only, 1);
        assert_eq!(back.state.to_string(), "+est+rpl+trk+dnat");
        let mut out = reply.clone();
        conntrack::nat::apply(&mut out, &back.rewrite).unwrap();
        let got = conntrack::parse_ip(&out, true).expect("checksums right back");
        assert_eq!((got.src, got.dst), (METADATA, u128::from(client)));
        assert!(
            matches!(got.l4, L4::IcmpEcho { id: i, request: false, .. } if i == id),
            "the client sees its own identifier: {got:?}"
        );
        // A router on the way to the server cannot reach it and tells the client, quoting
        // the request as it left (to the server, with the identifier the DNAT chose): the
        // client gets the error quoting its own request (address and identifier) back,
        // byte for byte, with the error's checksum right.
        let error = icmp_error_bytes(ROUTER, client, &out_request(&request, &r.rewrite));
        let frame = [&[0u8; 12][..], &[8, 0], &error].concat();
        assert_eq!(shard_of_frame(&frame, 2), Some(owner), "id {id}");
        let rel = t.track_ip(&error, &nat_only, 2);
        assert!(rel.state.has(CtState::RELATED), "{}", rel.state);
        assert_eq!(rel.rewrite.quoted_id, r.rewrite.id.map(|_| id));
        let mut out = error.clone();
        conntrack::nat::apply(&mut out, &rel.rewrite).unwrap();
        conntrack::parse_ip(&out, true).expect("the error's checksum is right after the rewrite");
        assert_eq!(&out[..20], &error[..20], "the router's own addresses stay");
        assert_eq!(
            &out[28..],
            &request[..28],
            "the client's request quoted back, id {id}"
        );
    }
    assert!(kept > 10 && moved > 10, "kept {kept}, moved {moved}");
    let s: Vec<_> = trackers.iter().map(|t| t.stats()).collect();
    assert_eq!(s.iter().map(|s| s.nat_source_remapped).sum::<u64>(), moved);
    assert!(
        s.iter().all(|s| s.nat_exhausted == 0 && s.invalid == 0),
        "{s:?}"
    );
}

/// On one shard, a DNAT whose translation clashes with a connection already there (the
/// client reached the server's address and port directly from the same port) moves the
/// source port instead of refusing, as Linux does.
#[test]
fn dnat_clash_remaps_the_source_port() {
    let client = 0x0a08_0001;
    let mut t = Tracker::new(Config {
        capacity: 16,
        ..Config::default()
    })
    .unwrap();
    let commit = TrackOptions {
        commit: true,
        ..TrackOptions::default()
    };
    let direct = t.track(&tcp_syn(client, 40000, SERVER, 8775), &commit, 0);
    assert!(direct.state.has(CtState::NEW));
    let o = TrackOptions {
        nat: true,
        nat_range: Some(NatRange::parse("dst=10.255.8.1:8775").unwrap()),
        ..commit
    };
    let r = t.track(&tcp_syn(client, 40000, METADATA, 80), &o, 0);
    assert!(
        r.state.has(CtState::NEW) && r.state.has(CtState::DNAT),
        "{}",
        r.state
    );
    let (addr, port) = r.rewrite.src.expect("the source port moves");
    assert_eq!(addr, client);
    assert_ne!(port, 40000);
    assert_eq!(t.stats().nat_exhausted, 0);
    assert_eq!(t.stats().entries, 2);
    assert_eq!(t.stats().nat_source_remapped, 1);
}

/// CI's failing case (stop 23): DNAT to one address and port, eight workers. Every tracker
/// seed must find a source port that keeps the owner within its attempts; with the owner
/// hash's old mixing, consecutive source ports kept one shard and a quarter of the seeds
/// found none.
#[test]
fn dnat_to_one_address_finds_an_owner_port_for_every_seed() {
    let (src, dst, sport, dport, base) = (
        3_549_626_004u32,
        1_417_196_701u32,
        20211,
        16935,
        3_131_307_494u32,
    );
    let p = udp(u128::from(src), sport, u128::from(dst), dport);
    let shards = 8;
    let owner = shard_of(&p, shards);
    let o = TrackOptions {
        commit: true,
        nat: true,
        nat_range: Some(nat_range(NatKind::Dst, base, 0, None)),
        ..TrackOptions::default()
    };
    for _ in 0..500 {
        let mut t = Tracker::new(Config {
            capacity: 16,
            shard: owner,
            shards,
            ..Config::default()
        })
        .unwrap();
        let r = t.track(&p, &o, 0);
        assert!(r.state.has(CtState::NEW), "{} {:?}", r.state, t.stats());
    }
}
