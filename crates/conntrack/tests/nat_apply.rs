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
