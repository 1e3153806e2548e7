//! Runs the fuzz target's body (`packet::fuzz::exercise`) on a corpus: every scapy fixture
//! frame, each of its truncations, and single-bit flips of it.

mod common;

use common::hex;

#[test]
fn fuzz_body_survives_the_fixture_corpus() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let mut frames = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "hex") {
            frames.push(hex(&std::fs::read_to_string(&path).unwrap()));
        }
    }
    for line in std::fs::read_to_string(format!("{dir}/extract.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
    {
        if let Some(h) = line.split('|').nth(1) {
            frames.push(hex(h));
        }
    }
    assert!(frames.len() > 50);
    let mut runs = 0;
    for f in &frames {
        for len in 0..=f.len() {
            packet::fuzz::exercise(&f[..len]);
            runs += 1;
        }
        for bit in 0..f.len() * 8 {
            let mut g = f.clone();
            g[bit / 8] ^= 1 << (bit % 8);
            packet::fuzz::exercise(&g);
            runs += 1;
        }
        // Edit selectors in front of real headers: the first bytes pick the edits.
        for sel in 0..=255u8 {
            let mut g = f.clone();
            g[0] = sel;
            g[2] = sel.wrapping_mul(7);
            packet::fuzz::exercise(&g);
            runs += 1;
        }
    }
    assert!(runs > 10_000);
}
