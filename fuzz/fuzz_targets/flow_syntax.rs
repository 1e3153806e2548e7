//! The ovs-ofctl flow, group and meter syntax parsers on any text: no panic, and a flow
//! that parses is a FLOW_MOD the codec sends and reads back unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openflow::messages::{FlowModCommand, GroupModCommand, MeterModCommand};
use openflow::{decode, EncodeError, Message, OfpMessage};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(fm) = flow_syntax::parse_flow_mod(text, FlowModCommand::Add) {
        let msg = OfpMessage::new(1, Message::FlowMod(fm));
        match msg.encode() {
            Ok(bytes) => {
                let back = decode(&bytes).expect("a parsed flow encodes to a valid FLOW_MOD");
                assert_eq!(back, msg, "the FLOW_MOD reads back as parsed");
            }
            Err(EncodeError::TooLong { .. }) => {}
            Err(e) => panic!("a parsed flow must encode: {e}"),
        }
    }
    let _ = flow_syntax::parse_flow_mod(text, FlowModCommand::DeleteStrict);
    let _ = flow_syntax::parse_match(text);
    let _ = flow_syntax::parse_action(text);
    let _ = flow_syntax::parse_group_mod(text, GroupModCommand::Add);
    let _ = flow_syntax::parse_meter_mod(text, MeterModCommand::Add);
});
