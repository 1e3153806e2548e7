//! `Tracker::track_ip` remembers the last packet it parsed and the lookup made for it, so
//! that a pipeline's second `ct` on a packet skips both. It must change nothing: the same
//! bytes tracked through `track_ip` (memo) and through `parse_ip` + `track` (no memo) give
//! the same results, counters and connections, whatever the zones, commits, marks, time
//! and the table's changes in between.

use conntrack::{parse_ip, Config, CtResult, TrackOptions, Tracker};
use proptest::prelude::*;

fn csum(b: &[u8], init: u32) -> u16 {
    let mut s = init;
    for c in b.chunks(2) {
        s += u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An IPv4 packet with right checksums (`corrupt`: the L4 checksum off by one).
fn ipv4(src: u32, dst: u32, proto: u8, mut l4: Vec<u8>, corrupt: bool) -> Vec<u8> {
    let total = 20 + l4.len();
    let mut ip = vec![
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
        0,
        0,
    ];
    ip.extend_from_slice(&src.to_be_bytes());
    ip.extend_from_slice(&dst.to_be_bytes());
    let c = csum(&ip, 0);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let at = match proto {
        6 => 16,
        17 => 6,
        _ => 2,
    };
    let pseudo = if proto == 1 {
        0
    } else {
        let mut s = u32::from(proto) + l4.len() as u32;
        for w in [src, dst] {
            s += (w >> 16) + (w & 0xffff);
        }
        s
    };
    let mut c = csum(&l4, pseudo);
    if corrupt {
        c ^= 1;
    }
    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&l4);
    ip
}

const HOSTS: [u32; 3] = [0x0a00_0001, 0x0a00_0002, 0xc0a8_0001];

/// A packet of a few endpoints, so that connections and identical packets recur.
fn packet(kind: u8, a: usize, b: usize, port: u16, flags: u8, seq: u32, corrupt: bool) -> Vec<u8> {
    let (src, dst) = (HOSTS[a % 3], HOSTS[b % 3]);
    let (sport, dport) = if a <= b {
        (1000 + port, 80)
    } else {
        (80, 1000 + port)
    };
    match kind {
        0 => {
            let flags = [0x02, 0x12, 0x10, 0x04, 0x11, 0x14, 0x18][usize::from(flags) % 7];
            let mut l4 = Vec::new();
            l4.extend_from_slice(&sport.to_be_bytes());
            l4.extend_from_slice(&dport.to_be_bytes());
            l4.extend_from_slice(&seq.to_be_bytes());
            l4.extend_from_slice(&seq.wrapping_add(1).to_be_bytes());
            l4.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
            ipv4(src, dst, 6, l4, corrupt)
        }
        1 => {
            let mut l4 = Vec::new();
            l4.extend_from_slice(&sport.to_be_bytes());
            l4.extend_from_slice(&dport.to_be_bytes());
            l4.extend_from_slice(&[0, 12, 0, 0, 1, 2, 3, 4]);
            ipv4(src, dst, 17, l4, corrupt)
        }
        2 => {
            // Echo request or reply, identifier by port.
            let t = if flags & 1 == 0 { 8 } else { 0 };
            let mut l4 = vec![t, 0, 0, 0];
            l4.extend_from_slice(&port.to_be_bytes());
            l4.extend_from_slice(&[0, 1]);
            ipv4(src, dst, 1, l4, corrupt)
        }
        _ => {
            // Port unreachable quoting the UDP datagram dst -> src.
            let mut quoted = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0];
            quoted.extend_from_slice(&dst.to_be_bytes());
            quoted.extend_from_slice(&src.to_be_bytes());
            quoted.extend_from_slice(&dport.to_be_bytes());
            quoted.extend_from_slice(&sport.to_be_bytes());
            quoted.extend_from_slice(&[0, 8, 0, 0]);
            let mut l4 = vec![3, 3, 0, 0, 0, 0, 0, 0];
            l4.extend_from_slice(&quoted);
            ipv4(src, dst, 1, l4, corrupt)
        }
    }
}

fn config() -> Config {
    Config {
        capacity: 6,
        expire_per_call: 2,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Each step tracks one packet as a firewall pipeline does (`ct(zone)` and maybe
    /// `ct(commit, zone2)` on the same bytes), with time moving on, expiry sweeps and
    /// packets recurring between steps.
    #[test]
    fn the_memo_changes_no_result(
        steps in proptest::collection::vec(
            (
                (0u8..4, 0usize..3, 0usize..3, 0u16..3, any::<u8>(), 0u32..3, proptest::bool::weighted(0.05)),
                (any::<bool>(), 0u16..2, 0u16..2, any::<bool>(), any::<bool>(), 0u64..4, proptest::bool::weighted(0.3)),
            ),
            1..200,
        )
    ) {
        let mut memo = Tracker::new(config()).unwrap();
        let mut plain = Tracker::new(config()).unwrap();
        let mut now = 0u64;
        let mut bytes = Vec::new();
        for ((kind, a, b, port, flags, seq, corrupt), (second, z1, z2, commit1, sweep, dt, repeat)) in steps {
            now += dt * 11_000;
            // Often the same bytes again (a retransmission, or the memo's packet found
            // expired or removed since).
            if !repeat || bytes.is_empty() {
                bytes = packet(kind, a, b, port, flags, seq * 1000, corrupt);
            }
            let firsts = TrackOptions { zone: z1, commit: commit1, set_mark: Some((seq, 0xff)), ..TrackOptions::default() };
            let seconds = TrackOptions { zone: z2, commit: true, set_label: Some((u128::from(flags), 0xf)), ..TrackOptions::default() };
            let runs: &[TrackOptions] = if second { &[firsts, seconds] } else { &[firsts] };
            for o in runs {
                let got = memo.track_ip(&bytes, o, now);
                let want: CtResult = match parse_ip(&bytes, true) {
                    Ok(p) => plain.track(&p, o, now),
                    Err(_) => plain.track_ip(&bytes, o, now),
                };
                prop_assert_eq!(got, want);
                prop_assert_eq!(memo.stats(), plain.stats());
            }
            if sweep {
                prop_assert_eq!(memo.expire(now), plain.expire(now));
            }
            let mut m: Vec<_> = memo.connections(None, now).map(|c| format!("{c:?}")).collect();
            let mut p: Vec<_> = plain.connections(None, now).map(|c| format!("{c:?}")).collect();
            m.sort();
            p.sort();
            prop_assert_eq!(m, p);
        }
    }
}
