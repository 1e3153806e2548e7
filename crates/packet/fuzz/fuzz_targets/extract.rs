//! Arbitrary bytes into extract, every header view and a chain of edits chosen by the input.
//! The body lives in `packet::fuzz::exercise` so unit tests run it on a corpus on stable.
//!
//! Run: `cd crates/packet/fuzz && cargo +nightly fuzz run extract`

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    packet::fuzz::exercise(data);
});
