//! NAT edits on real frames (those of the kernel differential): after the edit the packet
//! still parses with checksums verified, and carries the new addresses and ports.

use conntrack::nat::apply;
use conntrack::{parse_ip, Rewrite, L4};

fn frames() -> Vec<(String, Vec<u8>)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/kernel_verdicts.json"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["packets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let h = p["frame"].as_str().unwrap();
            let bytes = (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect();
            (p["case"].as_str().unwrap().to_string(), bytes)
        })
        .collect()
}

fn ports(l4: &L4) -> Option<(u16, u16)> {
    match *l4 {
        L4::Tcp(s) => Some((s.sport, s.dport)),
        L4::Udp { sport, dport } => Some((sport, dport)),
        _ => None,
    }
}

#[test]
fn rewrites_keep_every_checksum_right() {
    let mut edited = 0;
    for (case, frame) in frames() {
        let mut l3 = frame[14..].to_vec();
        let Ok(before) = parse_ip(&l3, true) else {
            continue;
        };
        let (new_src, new_dst) = if before.v6 {
            (
                0xfd00_0000_0000_0000_0000_0000_0000_0abc_u128,
                0xfd00_0000_0000_0000_0000_0000_0000_0def_u128,
            )
        } else {
            (0xc0a8_0a0a, 0x0909_0909)
        };
        let rw = Rewrite {
            src: Some((new_src, 61_000)),
            dst: Some((new_dst, 8080)),
            ..Rewrite::default()
        };
        apply(&mut l3, &rw).unwrap();
        let after = parse_ip(&l3, true).unwrap_or_else(|e| panic!("{case}: {e} after the rewrite"));
        assert_eq!((after.src, after.dst), (new_src, new_dst), "{case}");
        if ports(&before.l4).is_some() {
            assert_eq!(ports(&after.l4), Some((61_000, 8080)), "{case}");
        } else {
            assert_eq!(
                after.l4, before.l4,
                "{case}: no ports, nothing else changes"
            );
        }
        edited += 1;
    }
    assert!(edited > 50, "only {edited} frames edited");
}

/// An ICMP port unreachable about a SNATed UDP flow: the server sends it to the translated
/// address, quoting the translated datagram; the tracker finds it related and its rewrite
/// gives the client exactly the error it would have got without NAT (every checksum right).
#[test]
fn icmp_errors_about_natted_connections_are_translated_back() {
    use conntrack::{CtState, NatRange, TrackOptions, Tracker};
    let frames = frames();
    let get = |name: &str| frames.iter().find(|(c, _)| c == name).unwrap().1[14..].to_vec();
    for (v6, datagram, error, nat) in [
        (
            false,
            "v4 udp to a closed port",
            "v4 icmp port unreachable (tracked udp)",
            "src=192.168.7.7:30000-30010",
        ),
        (
            true,
            "v6 udp to a closed port",
            "v6 icmpv6 port unreachable (tracked udp)",
            "src=[fd07::7]:30000-30010",
        ),
    ] {
        let mut t = Tracker::new(conntrack::Config::default()).unwrap();
        let o = TrackOptions {
            commit: true,
            nat: true,
            nat_range: Some(NatRange::parse(nat).unwrap()),
            ..TrackOptions::default()
        };
        let r = t.track_ip(&get(datagram), &o, 0);
        assert!(r.state.has(CtState::NEW | CtState::SNAT), "{}", r.state);
        let (n_addr, n_port) = r.rewrite.src.unwrap();
        // What the server sends: to the translated address, quoting the translated datagram.
        let original = get(error);
        let mut from_server = original.clone();
        apply(
            &mut from_server,
            &Rewrite {
                dst: Some((n_addr, 0)),
                quoted_src: Some((n_addr, n_port)),
                ..Rewrite::default()
            },
        )
        .unwrap();
        let p = parse_ip(&from_server, true).expect("the server's error has good checksums");
        assert_eq!(p.dst, n_addr);
        let inner_at = if v6 { 48 } else { 28 };
        let inner = parse_ip(&from_server[inner_at..], true)
            .expect("the quoted datagram has good checksums");
        assert_eq!((inner.src, ports(&inner.l4).unwrap().0), (n_addr, n_port));
        // The tracker relates it and translates it back.
        let r = t.track_ip(
            &from_server,
            &TrackOptions {
                nat: true,
                ..TrackOptions::default()
            },
            1,
        );
        assert_eq!(r.state.to_string(), "+rel+rpl+trk+snat");
        let mut to_client = from_server.clone();
        apply(&mut to_client, &r.rewrite).unwrap();
        assert_eq!(
            to_client, original,
            "v6={v6}: the client gets the error as if there were no NAT"
        );
    }
}
