//! Multipart replies split by encoded size: every part fits the 16-bit message length,
//! REPLY_MORE marks all parts but the last, the parts carry every entry in order, and an
//! entry that no message can hold is an error, never a silent drop.

use openflow::consts::{FlowModFlags, MultipartFlags};
use openflow::header::OFP_MAX_MSG_LEN;
use openflow::multipart::{FlowStats, TableStats};
use openflow::{
    decode, Action, EncodeError, Instruction, Match, Message, MultipartReply, MultipartReplyBody,
    OfpMessage,
};

fn flow(priority: u16, actions: usize) -> FlowStats {
    FlowStats {
        table_id: 0,
        duration_sec: 1,
        duration_nsec: 2,
        priority,
        idle_timeout: 0,
        hard_timeout: 0,
        flags: FlowModFlags::empty(),
        cookie: u64::from(priority),
        packet_count: 3,
        byte_count: 4,
        match_: Match::any(),
        instructions: vec![Instruction::ApplyActions(
            (0..actions).map(|i| Action::output(i as u32 + 1)).collect(),
        )],
    }
}

fn flows_of(parts: &[MultipartReply]) -> Vec<FlowStats> {
    parts
        .iter()
        .flat_map(|p| match &p.body {
            MultipartReplyBody::Flow(v) => v.clone(),
            other => panic!("not a flow reply: {other:?}"),
        })
        .collect()
}

/// Encodes every part, checks its size and flags, decodes it back.
fn check_parts(parts: &[MultipartReply], max: usize, more_on_last: bool) {
    for (i, p) in parts.iter().enumerate() {
        let bytes = OfpMessage::new(7, Message::MultipartReply(p.clone()))
            .encode()
            .expect("every part encodes");
        assert!(bytes.len() <= max, "part {i} is {} bytes", bytes.len());
        let more = p.flags.contains(MultipartFlags::MORE);
        assert_eq!(
            more,
            i + 1 < parts.len() || more_on_last,
            "MORE on part {i}"
        );
        assert_eq!(
            decode(&bytes).unwrap().body,
            Message::MultipartReply(p.clone())
        );
    }
}

#[test]
fn sixty_four_flows_of_a_hundred_actions_fit_in_several_messages() {
    let flows: Vec<FlowStats> = (0..64).map(|p| flow(p, 100)).collect();
    let reply = MultipartReply {
        flags: MultipartFlags::empty(),
        body: MultipartReplyBody::Flow(flows.clone()),
    };
    let whole = OfpMessage::new(1, Message::MultipartReply(reply.clone())).encode();
    assert!(
        matches!(whole, Err(EncodeError::TooLong { .. })),
        "the case is over the limit unsplit"
    );
    let parts = reply.split_to_fit(OFP_MAX_MSG_LEN).unwrap();
    assert!(parts.len() >= 2, "{} parts", parts.len());
    check_parts(&parts, OFP_MAX_MSG_LEN, false);
    assert_eq!(flows_of(&parts), flows, "every flow, in order");
}

#[test]
fn a_part_of_a_larger_reply_keeps_more_on_every_piece() {
    let reply = MultipartReply {
        flags: MultipartFlags::MORE,
        body: MultipartReplyBody::Flow((0..64).map(|p| flow(p, 100)).collect()),
    };
    let parts = reply.split_to_fit(OFP_MAX_MSG_LEN).unwrap();
    check_parts(&parts, OFP_MAX_MSG_LEN, true);
}

#[test]
fn small_limits_split_exactly_at_entry_boundaries() {
    let tables: Vec<TableStats> = (0..10)
        .map(|t| TableStats {
            table_id: t,
            active_count: 1,
            lookup_count: 2,
            matched_count: 3,
        })
        .collect();
    let reply = MultipartReply {
        flags: MultipartFlags::empty(),
        body: MultipartReplyBody::Table(tables.clone()),
    };
    // 16 bytes of headers + 24 per entry: 3 entries in 88 bytes, not 4.
    let parts = reply.split_to_fit(16 + 3 * 24).unwrap();
    assert_eq!(parts.len(), 4);
    check_parts(&parts, 16 + 3 * 24, false);
    let back: Vec<TableStats> = parts
        .iter()
        .flat_map(|p| match &p.body {
            MultipartReplyBody::Table(v) => v.clone(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(back, tables);
    // An empty list is still one (final) message.
    let empty = MultipartReply {
        flags: MultipartFlags::empty(),
        body: MultipartReplyBody::Flow(vec![]),
    };
    let parts = empty.split_to_fit(OFP_MAX_MSG_LEN).unwrap();
    assert_eq!(parts, vec![empty]);
}

#[test]
fn an_entry_too_large_for_any_message_is_an_error_with_a_code() {
    // 8200 outputs of 16 bytes: a 131 kB flow entry.
    let reply = MultipartReply {
        flags: MultipartFlags::empty(),
        body: MultipartReplyBody::Flow(vec![flow(1, 10), flow(2, 8200)]),
    };
    let e = reply.split_to_fit(OFP_MAX_MSG_LEN).unwrap_err();
    assert!(
        matches!(e, EncodeError::MultipartEntryTooLong { mp_type: 1, length } if length > OFP_MAX_MSG_LEN),
        "{e:?}"
    );
    assert_eq!(
        e.code(),
        openflow::ErrorCode::BadRequest(openflow::error::BadRequestCode::MultipartBufferOverflow)
    );
    // Just over the limit with the multipart header: 65520 bytes of entry.
    let n = (65_520 - 56 - 8 - 8) / 16 + 1;
    let reply = MultipartReply {
        flags: MultipartFlags::empty(),
        body: MultipartReplyBody::Flow(vec![flow(1, n)]),
    };
    assert!(reply.split_to_fit(OFP_MAX_MSG_LEN).is_err());
}
