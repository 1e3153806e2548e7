//! Runs the `cargo fuzz` target's check (see fuzz/) on stable over a small corpus: every
//! sample message, each of its truncations (with the header length fixed up so the body
//! parsers see the short input), and each single-byte corruption.

mod common;

use openflow::fuzzing::check_decode;

#[test]
fn fuzz_check_over_sample_corpus() {
    let mut inputs = 0usize;
    for msg in common::sample_messages() {
        let bytes = msg.encode().unwrap();
        check_decode(&bytes);
        for keep in 0..bytes.len() {
            let mut t = bytes[..keep].to_vec();
            check_decode(&t);
            if keep >= 8 {
                t[2..4].copy_from_slice(&(keep as u16).to_be_bytes());
                check_decode(&t);
            }
            inputs += 2;
        }
        for i in 0..bytes.len() {
            for v in [0x00, 0xff, bytes[i] ^ 0x80, bytes[i].wrapping_add(1)] {
                let mut m = bytes.clone();
                m[i] = v;
                check_decode(&m);
                inputs += 1;
            }
        }
    }
    assert!(inputs > 10_000);
}
