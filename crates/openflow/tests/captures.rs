//! Decoding of byte captures written by hand from the spec, as the named tools send them.

use openflow::action::Action;
use openflow::consts::*;
use openflow::error::{BadRequestCode, HelloFailedCode};
use openflow::instruction::Instruction;
use openflow::messages::{FlowMod, FlowModCommand, Hello, HelloElement, PacketInReason};
use openflow::multipart::MultipartRequestBody;
use openflow::oxm::{Match, OxmTlv};
use openflow::{decode, ErrorCode, Message, OfpMessage};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn os_ken_plain_hello() {
    // os-ken with only OpenFlow 1.3 enabled: an 8-byte HELLO without elements.
    let bytes = hex("04 00 00 08 7a 3b 00 01");
    let m = decode(&bytes).unwrap();
    assert_eq!(m.xid, 0x7a3b_0001);
    let Message::Hello(h) = &m.body else {
        panic!("{m:?}")
    };
    assert_eq!(h.elements, vec![]);
    assert_eq!(h.negotiate(), Ok(4));
    assert_eq!(m.encode().unwrap(), bytes);
}

#[test]
fn ovs_hello_with_version_bitmap() {
    // ovs-ofctl -O OpenFlow13: version bitmap element with only bit 4 (0x10).
    let bytes = hex("04 00 00 10 00 00 00 05  00 01 00 08 00 00 00 10");
    let m = decode(&bytes).unwrap();
    assert_eq!(
        m.body,
        Message::Hello(Hello {
            version: 4,
            elements: vec![HelloElement::VersionBitmap(vec![0x10])],
        })
    );
    assert_eq!(
        OfpMessage::new(5, Message::Hello(Hello::ofp13()))
            .encode()
            .unwrap(),
        bytes
    );
}

#[test]
fn hello_negotiation() {
    // A newer peer without bitmap: the smaller version (ours) wins.
    let newer = decode(&hex("06 00 00 08 00 00 00 01")).unwrap();
    let Message::Hello(h) = newer.body else {
        panic!()
    };
    assert_eq!(h.negotiate(), Ok(4));
    // An OpenFlow 1.0 peer.
    let older = decode(&hex("01 00 00 08 00 00 00 01")).unwrap();
    let Message::Hello(h) = older.body else {
        panic!()
    };
    assert_eq!(
        h.negotiate(),
        Err(ErrorCode::HelloFailed(HelloFailedCode::Incompatible))
    );
    // A 1.5 peer whose bitmap offers 1.0 and 1.5 only (bits 1 and 6).
    let bytes = hex("06 00 00 10 00 00 00 01  00 01 00 08 00 00 00 42");
    let Message::Hello(h) = decode(&bytes).unwrap().body else {
        panic!()
    };
    assert_eq!(
        h.negotiate(),
        Err(ErrorCode::HelloFailed(HelloFailedCode::Incompatible))
    );
    // A 1.5 peer offering 1.0, 1.3, 1.5 (0x52).
    let bytes = hex("06 00 00 10 00 00 00 01  00 01 00 08 00 00 00 52");
    let Message::Hello(h) = decode(&bytes).unwrap().body else {
        panic!()
    };
    assert_eq!(h.negotiate(), Ok(4));
}

#[test]
fn ovs_ofctl_add_flow() {
    // ovs-ofctl -O OpenFlow13 add-flow br0 in_port=1,actions=output:2
    let bytes = hex("04 0e 00 58 00 00 00 02
         00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
         00 00 00 00 00 00 80 00  ff ff ff ff ff ff ff ff
         ff ff ff ff 00 00 00 00
         00 01 00 0c 80 00 00 04  00 00 00 01 00 00 00 00
         00 04 00 18 00 00 00 00  00 00 00 10 00 00 00 02
         00 00 00 00 00 00 00 00");
    let m = decode(&bytes).unwrap();
    let mut expected = FlowMod::add(
        0,
        OFP_DEFAULT_PRIORITY,
        Match::new(vec![OxmTlv::in_port(1)]),
        vec![Instruction::ApplyActions(vec![Action::Output {
            port: 2,
            max_len: 0,
        }])],
    );
    expected.command = FlowModCommand::Add;
    assert_eq!(m, OfpMessage::new(2, Message::FlowMod(expected)));
    assert_eq!(m.encode().unwrap(), bytes);
}

#[test]
fn ovs_ofctl_table_features_request() {
    // The request ovs-ofctl sends before every flow-mod: an empty TABLE_FEATURES body.
    let bytes = hex("04 12 00 10 00 00 00 03  00 0c 00 00 00 00 00 00");
    let m = decode(&bytes).unwrap();
    let Message::MultipartRequest(r) = &m.body else {
        panic!()
    };
    assert_eq!(r.body, MultipartRequestBody::TableFeatures(vec![]));
    assert!(r.flags.is_empty());
    assert_eq!(m.encode().unwrap(), bytes);
}

#[test]
fn packet_in_no_match() {
    let mut bytes = hex("04 0a 00 54 00 00 00 00
         ff ff ff ff 00 2a 00 00  00 00 00 00 00 00 00 00
         00 01 00 0c 80 00 00 04  00 00 00 05 00 00 00 00
         00 00");
    bytes.extend_from_slice(&[0xab; 42]);
    let m = decode(&bytes).unwrap();
    let Message::PacketIn(p) = &m.body else {
        panic!()
    };
    assert_eq!(p.buffer_id, OFP_NO_BUFFER);
    assert_eq!(p.total_len, 42);
    assert_eq!(p.reason, PacketInReason::NoMatch);
    assert_eq!(p.match_, Match::new(vec![OxmTlv::in_port(5)]));
    assert_eq!(p.data, vec![0xab; 42]);
    assert_eq!(m.encode().unwrap(), bytes);
}

#[test]
fn nicira_set_packet_in_format_is_refused() {
    // ovs-ofctl monitor first asks for NXT_SET_PACKET_IN_FORMAT (experimenter 0x2320,
    // subtype 16); the switch answers BAD_REQUEST/BAD_EXPERIMENTER with the request echoed.
    let bytes = hex("04 04 00 14 00 00 00 09  00 00 23 20 00 00 00 10  00 00 00 01");
    let m = decode(&bytes).unwrap();
    let code = m.experimenter_error().unwrap();
    assert_eq!(code, ErrorCode::BadRequest(BadRequestCode::BadExperimenter));
    let reply = code.reply_to(&bytes).encode().unwrap();
    let mut expected = hex("04 01 00 20 00 00 00 09  00 01 00 03");
    expected.extend_from_slice(&bytes);
    assert_eq!(reply, expected);
}

#[test]
fn set_field_vlan_as_ovs_sends_it() {
    // APPLY_ACTIONS with set_field:4196->vlan_vid (0x1064), padded to 16 bytes.
    let bytes = hex("04 0e 00 60 00 00 00 02
         00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
         00 00 00 00 00 00 80 00  ff ff ff ff ff ff ff ff
         ff ff ff ff 00 00 00 00
         00 01 00 04 00 00 00 00
         00 04 00 28 00 00 00 00  00 19 00 10 80 00 0c 02
         10 64 00 00 00 00 00 00  00 00 00 10 ff ff ff fa
         00 00 00 00 00 00 00 00");
    let m = decode(&bytes).unwrap();
    let Message::FlowMod(f) = &m.body else {
        panic!()
    };
    assert_eq!(
        f.instructions,
        vec![Instruction::ApplyActions(vec![
            Action::SetField(OxmTlv::vlan_vid(OFPVID_PRESENT | 100, None)),
            Action::Output {
                port: OFPP_NORMAL,
                max_len: 0
            },
        ])]
    );
    assert_eq!(m.encode().unwrap(), bytes);
}
