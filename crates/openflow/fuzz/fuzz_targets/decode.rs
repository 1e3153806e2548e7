//! Decodes arbitrary bytes; whatever decodes must re-encode and decode to the same value.
//! The property lives in the library so the unit tests run it on stable too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    openflow::fuzzing::check_decode(data);
});
