//! One OpenFlow connection's whole life through the agent (framing, decoding, roles,
//! bundles, replies split by size) fed any sequence of messages: no panic, no hang, only
//! valid messages back. The body lives in `ofagent::fuzzing` so a unit test runs it on the
//! seeds on stable.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ofagent::fuzzing::check_session(data);
});
