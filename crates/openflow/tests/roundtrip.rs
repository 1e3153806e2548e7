//! Encode-then-decode gives back the same value, for every message kind and multipart body.

mod common;

use std::collections::BTreeSet;

use openflow::{decode, frame_len, Message, MsgType, MultipartType, OfpMessage};

fn roundtrip(msg: &OfpMessage) {
    let bytes = msg.encode().unwrap();
    assert_eq!(
        usize::from(u16::from_be_bytes([bytes[2], bytes[3]])),
        bytes.len(),
        "length field of {:?}",
        msg.body.msg_type()
    );
    assert_eq!(bytes[1], msg.body.msg_type().raw());
    assert_eq!(frame_len(&bytes), Ok(Some(bytes.len())));
    let back = decode(&bytes).unwrap_or_else(|e| panic!("{:?}: {e}", msg.body.msg_type()));
    assert_eq!(&back, msg);
    assert_eq!(back.encode().unwrap(), bytes, "re-encoding is stable");
}

#[test]
fn every_sample_roundtrips() {
    for m in common::sample_messages() {
        roundtrip(&m);
    }
}

#[test]
fn samples_cover_every_message_type() {
    let seen: BTreeSet<MsgType> = common::sample_messages()
        .iter()
        .map(|m| m.body.msg_type())
        .collect();
    let all: BTreeSet<MsgType> = MsgType::ALL.iter().copied().collect();
    assert_eq!(seen, all);
}

#[test]
fn samples_cover_every_multipart_body() {
    let mut req = BTreeSet::new();
    let mut rep = BTreeSet::new();
    for m in common::sample_messages() {
        match m.body {
            Message::MultipartRequest(r) => {
                req.insert(r.body.multipart_type());
            }
            Message::MultipartReply(r) => {
                rep.insert(r.body.multipart_type());
            }
            _ => {}
        }
    }
    let all: BTreeSet<MultipartType> = MultipartType::ALL.iter().copied().collect();
    assert_eq!(req, all);
    assert_eq!(rep, all);
}

#[test]
fn multipart_more_flag_is_preserved() {
    use openflow::consts::MultipartFlags;
    let n = common::sample_messages()
        .into_iter()
        .filter(|m| match &m.body {
            Message::MultipartRequest(r) => r.flags.contains(MultipartFlags::MORE),
            Message::MultipartReply(r) => r.flags.contains(MultipartFlags::MORE),
            _ => false,
        })
        .inspect(roundtrip)
        .count();
    assert!(n >= 2);
}

#[test]
fn framing_splits_a_stream() {
    let msgs = common::sample_messages();
    let mut stream = Vec::new();
    for m in &msgs {
        m.encode_into(&mut stream).unwrap();
    }
    let mut decoded = Vec::new();
    let mut buf = &stream[..];
    // Feed a growing prefix to check that partial input asks for more.
    while !buf.is_empty() {
        assert_eq!(frame_len(&buf[..buf.len().min(7)]), Ok(None));
        let n = frame_len(buf).unwrap().unwrap();
        if n > 8 {
            assert_eq!(frame_len(&buf[..n - 1]), Ok(None));
        }
        decoded.push(decode(&buf[..n]).unwrap());
        buf = &buf[n..];
    }
    assert_eq!(decoded, msgs);
}

#[test]
fn oversized_message_is_refused_by_the_encoder() {
    let m = OfpMessage::new(1, Message::EchoRequest(vec![0; 65535 - 8 + 1]));
    let mut out = vec![1, 2, 3];
    assert!(matches!(
        m.encode_into(&mut out),
        Err(openflow::EncodeError::TooLong { length: 65536 })
    ));
    assert_eq!(out, vec![1, 2, 3]);
    let ok = OfpMessage::new(1, Message::EchoRequest(vec![0; 65535 - 8]));
    roundtrip(&ok);
}
