//! Every refusal maps to the (type, code) the spec requires.

use openflow::error::*;
use openflow::oxm::{Match, OxmField, OxmTlv};
use openflow::{decode, frame_len, DecodeError, ErrorCode, Message};

/// A message with a correct header around `body`.
fn msg(version: u8, ty: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![version, ty, 0, 0, 0x12, 0x34, 0x56, 0x78];
    v.extend_from_slice(body);
    let len = v.len() as u16;
    v[2..4].copy_from_slice(&len.to_be_bytes());
    v
}

/// FLOW_MOD ADD with raw match and instruction bytes.
fn flow_mod(match_bytes: &[u8], insts: &[u8]) -> Vec<u8> {
    let mut body = vec![0u8; 40];
    body[22..24].copy_from_slice(&0x8000u16.to_be_bytes());
    body[24..36].fill(0xff);
    body.extend_from_slice(match_bytes);
    body.extend_from_slice(insts);
    msg(4, 14, &body)
}

/// An OXM match around raw TLV bytes, padded.
fn oxm_match(tlvs: &[u8]) -> Vec<u8> {
    let mut m = vec![0, 1, 0, 0];
    m.extend_from_slice(tlvs);
    let len = m.len() as u16;
    m[2..4].copy_from_slice(&len.to_be_bytes());
    while m.len() % 8 != 0 {
        m.push(0);
    }
    m
}

/// APPLY_ACTIONS around raw action bytes.
fn apply(actions: &[u8]) -> Vec<u8> {
    let mut i = vec![0, 4, 0, 0, 0, 0, 0, 0];
    i.extend_from_slice(actions);
    // Keep the instruction itself well-formed so the action list is what gets judged.
    while i.len() % 8 != 0 {
        i.push(0);
    }
    let len = i.len() as u16;
    i[2..4].copy_from_slice(&len.to_be_bytes());
    i
}

const EMPTY_MATCH: [u8; 8] = [0, 1, 0, 4, 0, 0, 0, 0];

fn code_of(bytes: &[u8]) -> ErrorCode {
    decode(bytes).expect_err("must not decode").code()
}

fn refusal_of(bytes: &[u8]) -> Option<ErrorCode> {
    decode(bytes).expect("must decode").experimenter_error()
}

#[test]
fn header_errors() {
    assert_eq!(
        code_of(&msg(4, 30, &[])),
        ErrorCode::BadRequest(BadRequestCode::BadType)
    );
    assert_eq!(
        code_of(&msg(1, 5, &[])),
        ErrorCode::BadRequest(BadRequestCode::BadVersion)
    );
    assert_eq!(
        code_of(&msg(5, 20, &[])),
        ErrorCode::BadRequest(BadRequestCode::BadVersion)
    );
    let short = [4, 5, 0, 7, 0, 0, 0, 0];
    assert_eq!(
        frame_len(&short),
        Err(DecodeError::HeaderLength { length: 7 })
    );
    assert_eq!(
        code_of(&short),
        ErrorCode::BadRequest(BadRequestCode::BadLen)
    );
    // Fixed-size messages with extra or missing bytes.
    for (ty, body) in [
        (5u8, vec![0u8]),
        (20, vec![0; 8]),
        (9, vec![0; 3]),
        (9, vec![0; 5]),
        (24, vec![0; 15]),
        (17, vec![0; 7]),
        (16, vec![0; 33]),
    ] {
        assert_eq!(
            code_of(&msg(4, ty, &body)),
            ErrorCode::BadRequest(BadRequestCode::BadLen),
            "type {ty}"
        );
    }
    // Truncated input is not answered: the framing layer waits for more.
    let full = msg(4, 2, b"abcd");
    let err = decode(&full[..10]).unwrap_err();
    assert!(matches!(err, DecodeError::Truncated { .. }));
    assert_eq!(err.reply_to(&full[..10]), None);
}

#[test]
fn error_reply_carries_xid_and_64_bytes() {
    let bytes = msg(4, 30, &[7; 100]);
    let reply = decode(&bytes).unwrap_err().reply_to(&bytes).unwrap();
    assert_eq!(reply.xid, 0x1234_5678);
    let Message::Error(e) = &reply.body else {
        panic!()
    };
    assert_eq!(
        e.code(),
        Some(ErrorCode::BadRequest(BadRequestCode::BadType))
    );
    assert_eq!(e.data(), &bytes[..64]);
    let wire = reply.encode().unwrap();
    assert_eq!(
        &wire[..12],
        &[4, 1, 0, 76, 0x12, 0x34, 0x56, 0x78, 0, 1, 0, 1]
    );
}

#[test]
fn multipart_errors() {
    assert_eq!(
        code_of(&msg(4, 18, &[0, 14, 0, 0, 0, 0, 0, 0])),
        ErrorCode::BadRequest(BadRequestCode::BadMultipart)
    );
    // DESC request with a body.
    assert_eq!(
        code_of(&msg(4, 18, &[0, 0, 0, 0, 0, 0, 0, 0, 1])),
        ErrorCode::BadRequest(BadRequestCode::BadLen)
    );
    // PORT_STATS request without its port.
    assert_eq!(
        code_of(&msg(4, 18, &[0, 4, 0, 0, 0, 0, 0, 0])),
        ErrorCode::BadRequest(BadRequestCode::BadLen)
    );
    // Experimenter multipart (Nicira flow monitor) decodes, then is refused.
    let exp = msg(
        4,
        18,
        &[0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x23, 0x20, 0, 0, 0, 2],
    );
    assert_eq!(
        refusal_of(&exp),
        Some(ErrorCode::BadRequest(BadRequestCode::BadExperimenter))
    );
}

#[test]
fn match_errors() {
    let in_port = [0x80, 0, 0, 4, 0, 0, 0, 1];
    // OK baseline.
    assert!(decode(&flow_mod(&oxm_match(&in_port), &[])).is_ok());
    // Nicira registers (NXM_1 field 0: reg0) decode; an NXM field this codec does not
    // know (NXM_0 field 0, OpenFlow 1.0's 16-bit in_port) is refused while decoding.
    assert!(decode(&flow_mod(&oxm_match(&[0, 1, 0, 4, 0, 0, 0, 1]), &[])).is_ok());
    assert_eq!(
        code_of(&flow_mod(&oxm_match(&[0, 0, 0, 2, 0, 1]), &[])),
        ErrorCode::BadMatch(BadMatchCode::BadField)
    );
    // Experimenter class decodes and is refused by the agent with BAD_FIELD.
    let exp = flow_mod(
        &oxm_match(&[0xff, 0xff, 0x02, 0x06, 0, 0, 0x23, 0x20, 0xaa, 0xbb]),
        &[],
    );
    assert_eq!(
        refusal_of(&exp),
        Some(ErrorCode::BadMatch(BadMatchCode::BadField))
    );
    // Experimenter OXM too short for its experimenter id.
    assert_eq!(
        code_of(&flow_mod(&oxm_match(&[0xff, 0xff, 0x02, 0x02, 0, 0]), &[])),
        ErrorCode::BadMatch(BadMatchCode::BadLen)
    );
    // Unknown basic field 40.
    assert_eq!(
        code_of(&flow_mod(&oxm_match(&[0x80, 0, 80, 4, 0, 0, 0, 1]), &[])),
        ErrorCode::BadMatch(BadMatchCode::BadField)
    );
    // IN_PORT with a 3-byte payload; and a masked IN_PORT of the wrong size.
    assert_eq!(
        code_of(&flow_mod(&oxm_match(&[0x80, 0, 0, 3, 0, 0, 1]), &[])),
        ErrorCode::BadMatch(BadMatchCode::BadLen)
    );
    assert_eq!(
        code_of(&flow_mod(&oxm_match(&[0x80, 0, 1, 4, 0, 0, 0, 1]), &[])),
        ErrorCode::BadMatch(BadMatchCode::BadLen)
    );
    // TLV running past the match.
    assert_eq!(
        code_of(&flow_mod(&oxm_match(&[0x80, 0, 0, 8, 0, 0, 0, 1]), &[])),
        ErrorCode::BadMatch(BadMatchCode::BadLen)
    );
    // Duplicate field.
    let mut dup = in_port.to_vec();
    dup.extend_from_slice(&[0x80, 0, 0, 4, 0, 0, 0, 2]);
    assert_eq!(
        code_of(&flow_mod(&oxm_match(&dup), &[])),
        ErrorCode::BadMatch(BadMatchCode::DupField)
    );
    // Masked and unmasked copies of one field are duplicates too.
    let mut dup = vec![0x80, 0, 0x18, 4, 10, 0, 0, 1];
    dup.extend_from_slice(&[0x80, 0, 0x19, 8, 10, 0, 0, 0, 255, 0, 0, 0]);
    assert_eq!(
        code_of(&flow_mod(&oxm_match(&dup), &[])),
        ErrorCode::BadMatch(BadMatchCode::DupField)
    );
    // OFPMT_STANDARD.
    assert_eq!(
        code_of(&flow_mod(&[0, 0, 0, 4, 0, 0, 0, 0], &[])),
        ErrorCode::BadMatch(BadMatchCode::BadType)
    );
    // Match length below 4, and padding missing.
    assert_eq!(
        code_of(&flow_mod(&[0, 1, 0, 2, 0, 0, 0, 0], &[])),
        ErrorCode::BadMatch(BadMatchCode::BadLen)
    );
    assert_eq!(
        code_of(&flow_mod(&[0, 1, 0, 0x0c, 0x80, 0, 0, 4, 0, 0, 0, 1], &[])),
        ErrorCode::BadMatch(BadMatchCode::BadLen)
    );
}

#[test]
fn match_validation() {
    let ok = Match::new(vec![
        OxmTlv::eth_type(0x0800),
        OxmTlv::ipv4_src([10, 0, 0, 0].into(), Some([255, 0, 0, 0].into())),
    ]);
    assert_eq!(ok.validate(), Ok(()));
    assert_eq!(ok.check_prerequisites(), Ok(()));
    let wild = Match::new(vec![OxmTlv::ipv4_src(
        [10, 0, 0, 1].into(),
        Some([255, 0, 0, 0].into()),
    )]);
    assert_eq!(wild.validate(), Err(BadMatchCode::BadWildcards));
    // Transport ports take masks (as Open vSwitch allows); ip_proto does not.
    let port_range = Match::new(vec![
        OxmTlv::masked(OxmField::TcpDst, 0x1000, 0xf000).unwrap()
    ]);
    assert_eq!(port_range.validate(), Ok(()));
    let bad_mask = Match::new(vec![OxmTlv::masked(OxmField::IpProto, 6, 0x0f).unwrap()]);
    assert_eq!(bad_mask.validate(), Err(BadMatchCode::BadMask));
    let bad_value = Match::new(vec![OxmTlv::exact(OxmField::IpDscp, 64).unwrap()]);
    assert_eq!(bad_value.validate(), Err(BadMatchCode::BadValue));
    // Prerequisites: ipv4 without eth_type, tcp with udp proto, vlan_pcp untagged.
    assert_eq!(wild.check_prerequisites(), Err(BadMatchCode::BadPrereq));
    let tcp_on_udp = Match::new(vec![
        OxmTlv::eth_type(0x0800),
        OxmTlv::ip_proto(17),
        OxmTlv::tcp_dst(80),
    ]);
    assert_eq!(
        tcp_on_udp.check_prerequisites(),
        Err(BadMatchCode::BadPrereq)
    );
    let udp = Match::new(vec![
        OxmTlv::eth_type(0x86dd),
        OxmTlv::ip_proto(17),
        OxmTlv::udp_dst(53),
    ]);
    assert_eq!(udp.check_prerequisites(), Ok(()));
    let pcp = |vid: u16| {
        Match::new(vec![
            OxmTlv::vlan_vid(vid, None),
            OxmTlv::exact(OxmField::VlanPcp, 3).unwrap(),
        ])
        .check_prerequisites()
    };
    assert_eq!(pcp(0x1000 | 5), Ok(()));
    assert_eq!(pcp(0), Err(BadMatchCode::BadPrereq));
    let nd = Match::new(vec![
        OxmTlv::eth_type(0x86dd),
        OxmTlv::ip_proto(58),
        OxmTlv::exact(OxmField::Icmpv6Type, 136).unwrap(),
        OxmTlv::exact(OxmField::Ipv6NdSll, 1).unwrap(),
    ]);
    assert_eq!(nd.check_prerequisites(), Err(BadMatchCode::BadPrereq));
}

#[test]
fn action_errors() {
    let output = [0, 0, 0, 16, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0];
    assert!(decode(&flow_mod(&EMPTY_MATCH, &apply(&output))).is_ok());
    // Unknown action type 1 (an OpenFlow 1.0 SET_VLAN_VID).
    assert_eq!(
        code_of(&flow_mod(&EMPTY_MATCH, &apply(&[0, 1, 0, 8, 0, 0, 0, 0]))),
        ErrorCode::BadAction(BadActionCode::BadType)
    );
    // OUTPUT of 8 bytes; a length not a multiple of 8; a length past the list; zero length.
    for bad in [
        &[0u8, 0, 0, 8, 0, 0, 0, 2][..],
        &[0, 0, 0, 12, 0, 0, 0, 2, 0, 0, 0, 0],
        &[0, 0, 0, 24, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0],
        &[0, 0, 0, 0, 0, 0, 0, 0],
        &[0, 0, 0],
    ] {
        assert_eq!(
            code_of(&flow_mod(&EMPTY_MATCH, &apply(bad))),
            ErrorCode::BadAction(BadActionCode::BadLen),
            "{bad:?}"
        );
    }
    // A Nicira action subtype this codec does not implement (NXAST_LEARN, 16) decodes as
    // a raw experimenter action, then BAD_EXPERIMENTER.
    let nx = [0xff, 0xff, 0, 16, 0, 0, 0x23, 0x20, 0, 16, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        refusal_of(&flow_mod(&EMPTY_MATCH, &apply(&nx))),
        Some(ErrorCode::BadAction(BadActionCode::BadExperimenter))
    );
    // Same inside a packet-out and a group bucket.
    let mut po = vec![
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfd, 0, 16, 0, 0, 0, 0, 0, 0,
    ];
    po.extend_from_slice(&nx);
    assert_eq!(
        refusal_of(&msg(4, 13, &po)),
        Some(ErrorCode::BadAction(BadActionCode::BadExperimenter))
    );
    let mut gm = vec![0, 0, 0, 0, 0, 0, 0, 1, 0, 32, 0, 0, 0xff, 0xff, 0xff, 0xff];
    gm.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    gm.extend_from_slice(&nx);
    assert_eq!(
        refusal_of(&msg(4, 15, &gm)),
        Some(ErrorCode::BadAction(BadActionCode::BadExperimenter))
    );
    // SET_FIELD: masked, unknown field, unknown class, experimenter class, bad OXM length.
    let sf = |oxm: &[u8]| {
        let mut a = vec![0, 25, 0, 0];
        a.extend_from_slice(oxm);
        while a.len() % 8 != 0 {
            a.push(0);
        }
        let len = a.len() as u16;
        a[2..4].copy_from_slice(&len.to_be_bytes());
        flow_mod(&EMPTY_MATCH, &apply(&a))
    };
    assert!(decode(&sf(&[0x80, 0, 0x0c, 2, 0x10, 0x64])).is_ok());
    assert_eq!(
        code_of(&sf(&[0x80, 0, 0x0d, 4, 0x10, 0x64, 0x1f, 0xff])),
        ErrorCode::BadAction(BadActionCode::BadSetArgument)
    );
    assert_eq!(
        code_of(&sf(&[0x80, 0, 100, 2, 0, 0])),
        ErrorCode::BadAction(BadActionCode::BadSetType)
    );
    // reg0 is settable; NXM_0 field 0 is no field this codec knows.
    assert!(decode(&sf(&[0, 1, 0, 4, 0, 0, 0, 0])).is_ok());
    assert_eq!(
        code_of(&sf(&[0, 0, 0, 2, 0, 0])),
        ErrorCode::BadAction(BadActionCode::BadSetType)
    );
    assert_eq!(
        refusal_of(&sf(&[0xff, 0xff, 0, 5, 0, 0, 0x23, 0x20, 1])),
        Some(ErrorCode::BadAction(BadActionCode::BadSetType))
    );
    assert_eq!(
        code_of(&sf(&[0x80, 0, 0x0c, 3, 0x10, 0x64, 0])),
        ErrorCode::BadAction(BadActionCode::BadSetLen)
    );
    assert_eq!(
        code_of(&sf(&[0x80, 0, 0x0c, 40, 0x10, 0x64])),
        ErrorCode::BadAction(BadActionCode::BadSetLen)
    );
}

#[test]
fn instruction_errors() {
    assert_eq!(
        code_of(&flow_mod(&EMPTY_MATCH, &[0, 7, 0, 8, 0, 0, 0, 0])),
        ErrorCode::BadInstruction(BadInstructionCode::UnknownInst)
    );
    assert_eq!(
        code_of(&flow_mod(
            &EMPTY_MATCH,
            &[0, 1, 0, 16, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        )),
        ErrorCode::BadInstruction(BadInstructionCode::BadLen)
    );
    assert_eq!(
        code_of(&flow_mod(&EMPTY_MATCH, &[0, 1, 0, 4])),
        ErrorCode::BadInstruction(BadInstructionCode::BadLen)
    );
    assert_eq!(
        refusal_of(&flow_mod(
            &EMPTY_MATCH,
            &[0xff, 0xff, 0, 8, 0, 0, 0x23, 0x20]
        )),
        Some(ErrorCode::BadInstruction(
            BadInstructionCode::BadExperimenter
        ))
    );
}

#[test]
fn command_and_type_errors() {
    let mut fm = flow_mod(&EMPTY_MATCH, &[]);
    fm[8 + 17] = 5;
    assert_eq!(
        code_of(&fm),
        ErrorCode::FlowModFailed(FlowModFailedCode::BadCommand)
    );
    assert_eq!(
        code_of(&msg(4, 15, &[0, 3, 0, 0, 0, 0, 0, 1])),
        ErrorCode::GroupModFailed(GroupModFailedCode::BadCommand)
    );
    assert_eq!(
        code_of(&msg(4, 15, &[0, 0, 4, 0, 0, 0, 0, 1])),
        ErrorCode::GroupModFailed(GroupModFailedCode::BadType)
    );
    assert_eq!(
        code_of(&msg(
            4,
            15,
            &[0, 0, 0, 0, 0, 0, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0]
        )),
        ErrorCode::GroupModFailed(GroupModFailedCode::BadBucket)
    );
    assert_eq!(
        code_of(&msg(4, 29, &[0, 3, 0, 1, 0, 0, 0, 1])),
        ErrorCode::MeterModFailed(MeterModFailedCode::BadCommand)
    );
    assert_eq!(
        code_of(&msg(
            4,
            29,
            &[0, 0, 0, 1, 0, 0, 0, 1, 0, 3, 0, 16, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0]
        )),
        ErrorCode::MeterModFailed(MeterModFailedCode::BadBand)
    );
    assert_eq!(
        code_of(&msg(
            4,
            24,
            &[0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        )),
        ErrorCode::RoleRequestFailed(RoleRequestFailedCode::BadRole)
    );
    // Table features entry shorter than its fixed part.
    assert_eq!(
        code_of(&msg(
            4,
            18,
            &[0, 12, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0]
        )),
        ErrorCode::TableFeaturesFailed(TableFeaturesFailedCode::BadLen)
    );
}

#[test]
fn table_feature_property_errors() {
    let mut entry = vec![0u8; 64];
    entry.extend_from_slice(&[0, 9, 0, 4, 0, 0, 0, 0]);
    let len = entry.len() as u16;
    entry[0..2].copy_from_slice(&len.to_be_bytes());
    let mut body = vec![0, 12, 0, 0, 0, 0, 0, 0];
    body.extend_from_slice(&entry);
    assert_eq!(
        code_of(&msg(4, 18, &body)),
        ErrorCode::TableFeaturesFailed(TableFeaturesFailedCode::BadType)
    );
    body[8 + 64 + 1] = 0; // INSTRUCTIONS
    body[8 + 64 + 3] = 2; // length below the header
    assert_eq!(
        code_of(&msg(4, 18, &body)),
        ErrorCode::TableFeaturesFailed(TableFeaturesFailedCode::BadLen)
    );
}

#[test]
fn error_codes_roundtrip_through_wire_pairs() {
    let mut n = 0;
    for t in 0..=13u16 {
        for c in 0..=20u16 {
            if let Some(code) = ErrorCode::from_type_code(t, c) {
                assert_eq!(code.type_code(), (t, c));
                n += 1;
            }
        }
    }
    // 2 + 14 + 16 + 9 + 12 + 8 + 15 + 5 + 3 + 3 + 3 + 3 + 12 + 6 codes in the spec.
    assert_eq!(n, 111);
    assert_eq!(ErrorCode::from_type_code(0xffff, 0), None);
}

#[test]
fn a_match_running_past_its_message_is_bad_match_bad_len() {
    // Match length 200 in a 64-byte FLOW_MOD.
    let mut m = oxm_match(&[0x80, 0, 0, 4, 0, 0, 0, 1]);
    m[2..4].copy_from_slice(&200u16.to_be_bytes());
    assert_eq!(
        code_of(&flow_mod(&m, &[])),
        ErrorCode::BadMatch(BadMatchCode::BadLen)
    );
}

#[test]
fn packet_out_in_port_and_set_config_flags_are_validated() {
    let packet_out = |in_port: u32| {
        let mut body = 0xffff_ffffu32.to_be_bytes().to_vec();
        body.extend_from_slice(&in_port.to_be_bytes());
        body.extend_from_slice(&[0; 8]);
        decode(&msg(4, 13, &body)).unwrap().body
    };
    for bad in [
        0,
        0xffff_ff01,
        0xffff_fff8,
        0xffff_fff9,
        0xffff_fffa,
        0xffff_fffb,
        0xffff_fffc,
        0xffff_ffff,
    ] {
        assert_eq!(
            packet_out(bad).validate(),
            Err(ErrorCode::BadRequest(BadRequestCode::BadPort)),
            "in_port {bad:#x}"
        );
    }
    for good in [1, 0xffff_ff00, 0xffff_fffd, 0xffff_fffe] {
        assert_eq!(packet_out(good).validate(), Ok(()), "in_port {good:#x}");
    }
    let set_config = |flags: u16| {
        let mut body = flags.to_be_bytes().to_vec();
        body.extend_from_slice(&128u16.to_be_bytes());
        decode(&msg(4, 9, &body)).unwrap().body
    };
    for good in 0..4 {
        assert_eq!(set_config(good).validate(), Ok(()));
    }
    for bad in [4, 0x10, 0x8000] {
        assert_eq!(
            set_config(bad).validate(),
            Err(ErrorCode::SwitchConfigFailed(
                SwitchConfigFailedCode::BadFlags
            ))
        );
    }
}

/// NXBAC_BAD_CONJUNCTION goes out as Open vSwitch sends it in OpenFlow 1.3: an experimenter
/// error (type 0xffff, exp_type 15, vendor Nicira), and reads back as itself.
#[test]
fn bad_conjunction_is_a_nicira_experimenter_error() {
    let request = flow_mod(&oxm_match(&[]), &[]);
    let bytes = ErrorCode::NxBadConjunction
        .reply_to(&request)
        .encode()
        .unwrap();
    assert_eq!(&bytes[8..10], &[0xff, 0xff], "type EXPERIMENTER");
    assert_eq!(&bytes[10..12], &[0, 15], "exp_type 15");
    assert_eq!(&bytes[12..16], &[0, 0, 0x23, 0x20], "Nicira");
    assert_eq!(&bytes[16..], &request[..], "the request as data");
    let Message::Error(e) = decode(&bytes).unwrap().body else {
        panic!("an error message")
    };
    assert_eq!(e.code(), Some(ErrorCode::NxBadConjunction));
}
