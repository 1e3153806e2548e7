//! Property tests: generated matches, actions, instructions and flow-mods round-trip, and
//! decoding never panics on arbitrary, truncated or mutated input.

mod common;

use std::collections::HashSet;

use openflow::action::Action;
use openflow::consts::FlowModFlags;
use openflow::fuzzing::check_decode;
use openflow::instruction::Instruction;
use openflow::messages::{
    Bucket, FlowMod, FlowModCommand, GroupMod, GroupModCommand, GroupType, PacketOut,
};
use openflow::nx::{NxAction, NxmField, NxmOxm};
use openflow::oxm::{BasicOxm, ExperimenterOxm, Match, OxmField, OxmTlv};
use openflow::{decode, Message, OfpMessage};
use proptest::collection::vec;
use proptest::prelude::*;

fn basic_oxm(allow_mask: bool) -> impl Strategy<Value = BasicOxm> {
    (0..40u8, any::<u128>(), any::<u128>(), any::<bool>()).prop_map(move |(f, v, m, masked)| {
        let field = OxmField::from_raw(f).unwrap();
        let full = field.full_mask();
        if masked && allow_mask {
            // Masks on non-maskable fields must still round-trip: validate() refuses them.
            BasicOxm::masked(field, v & full, m & full).unwrap()
        } else {
            BasicOxm::new(field, v & full).unwrap()
        }
    })
}

fn experimenter_oxm() -> impl Strategy<Value = ExperimenterOxm> {
    (
        0..128u8,
        any::<bool>(),
        any::<u32>(),
        vec(any::<u8>(), 0..24),
    )
        .prop_map(|(f, m, e, p)| ExperimenterOxm::new(f, m, e, p).unwrap())
}

fn nxm_oxm(masked: bool) -> impl Strategy<Value = NxmOxm> {
    (
        prop_oneof![
            (0..16u8).prop_map(NxmField::Reg),
            (0..8u8).prop_map(NxmField::Xreg),
            Just(NxmField::ConjId)
        ],
        any::<u64>(),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(move |(f, v, m)| {
            let full = f.full_mask();
            NxmOxm::new(
                f,
                u128::from(v) & full,
                m.filter(|_| masked).map(|m| u128::from(m) & full),
            )
            .unwrap()
        })
}

fn nx_action() -> impl Strategy<Value = NxAction> {
    prop_oneof![
        (any::<u16>(), any::<u8>())
            .prop_map(|(in_port, table)| NxAction::Resubmit { in_port, table }),
        (
            any::<u16>(),
            any::<u16>(),
            any::<u16>(),
            any::<u32>(),
            any::<u32>()
        )
            .prop_map(|(n_bits, src_ofs, dst_ofs, src, dst)| NxAction::RegMove {
                n_bits,
                src_ofs,
                dst_ofs,
                src,
                dst
            }),
        (any::<u16>(), any::<u32>(), any::<u64>()).prop_map(|(ofs_nbits, dst, value)| {
            NxAction::RegLoad {
                ofs_nbits,
                dst,
                value,
            }
        }),
        basic_oxm(true).prop_map(|b| NxAction::RegLoad2(OxmTlv::Basic(b))),
        nxm_oxm(true).prop_map(|n| NxAction::RegLoad2(OxmTlv::Nxm(n))),
        (0..3usize)
            .prop_flat_map(|n| vec(any::<u8>(), n * 8 + 6))
            .prop_map(NxAction::Note),
        (any::<u8>(), any::<u8>(), any::<u32>()).prop_map(|(clause, n_clauses, id)| {
            NxAction::Conjunction {
                clause,
                n_clauses,
                id,
            }
        }),
        Just(NxAction::CtClear),
    ]
}

fn oxm_tlv() -> impl Strategy<Value = OxmTlv> {
    prop_oneof![
        8 => basic_oxm(true).prop_map(OxmTlv::Basic),
        1 => experimenter_oxm().prop_map(OxmTlv::Experimenter),
        2 => nxm_oxm(true).prop_map(OxmTlv::Nxm),
    ]
}

fn arb_match() -> impl Strategy<Value = Match> {
    vec(oxm_tlv(), 0..10).prop_map(|mut fields| {
        let mut seen = HashSet::new();
        fields.retain(|f| {
            let exp = match f {
                OxmTlv::Experimenter(e) => e.experimenter(),
                OxmTlv::Basic(_) | OxmTlv::Nxm(_) => 0,
            };
            seen.insert((f.header() >> 9, exp))
        });
        Match::new(fields)
    })
}

fn padded_data() -> impl Strategy<Value = Vec<u8>> {
    (0..3usize).prop_flat_map(|n| vec(any::<u8>(), n * 8))
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (any::<u32>(), any::<u16>()).prop_map(|(port, max_len)| Action::Output { port, max_len }),
        Just(Action::CopyTtlOut),
        Just(Action::CopyTtlIn),
        any::<u8>().prop_map(Action::SetMplsTtl),
        Just(Action::DecMplsTtl),
        any::<u16>().prop_map(Action::PushVlan),
        Just(Action::PopVlan),
        any::<u16>().prop_map(Action::PushMpls),
        any::<u16>().prop_map(Action::PopMpls),
        any::<u32>().prop_map(Action::SetQueue),
        any::<u32>().prop_map(Action::Group),
        any::<u8>().prop_map(Action::SetNwTtl),
        Just(Action::DecNwTtl),
        basic_oxm(false).prop_map(|b| Action::SetField(OxmTlv::Basic(b))),
        experimenter_oxm().prop_map(|e| Action::SetField(OxmTlv::Experimenter(e))),
        any::<u16>().prop_map(Action::PushPbb),
        Just(Action::PopPbb),
        (any::<u32>(), padded_data())
            .prop_filter("the Nicira id decodes as an extension", |(e, _)| *e
                != openflow::NX_VENDOR_ID)
            .prop_map(|(experimenter, data)| Action::Experimenter { experimenter, data }),
        nx_action().prop_map(Action::Nx),
        nxm_oxm(false).prop_map(|n| Action::SetField(OxmTlv::Nxm(n))),
    ]
}

fn instruction() -> impl Strategy<Value = Instruction> {
    prop_oneof![
        any::<u8>().prop_map(Instruction::GotoTable),
        (any::<u64>(), any::<u64>())
            .prop_map(|(metadata, mask)| Instruction::WriteMetadata { metadata, mask }),
        vec(action(), 0..5).prop_map(Instruction::WriteActions),
        vec(action(), 0..5).prop_map(Instruction::ApplyActions),
        Just(Instruction::ClearActions),
        any::<u32>().prop_map(Instruction::Meter),
        (any::<u32>(), padded_data())
            .prop_map(|(experimenter, data)| { Instruction::Experimenter { experimenter, data } }),
    ]
}

fn flow_mod() -> impl Strategy<Value = FlowMod> {
    (
        (
            any::<u64>(),
            any::<u64>(),
            any::<u8>(),
            0..5u8,
            any::<u16>(),
            any::<u16>(),
        ),
        (
            any::<u16>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u16>(),
        ),
        arb_match(),
        vec(instruction(), 0..5),
    )
        .prop_map(
            |(
                (cookie, cookie_mask, table_id, command, idle_timeout, hard_timeout),
                (priority, buffer_id, out_port, out_group, flags),
                match_,
                instructions,
            )| FlowMod {
                cookie,
                cookie_mask,
                table_id,
                command: FlowModCommand::from_raw(command).unwrap(),
                idle_timeout,
                hard_timeout,
                priority,
                buffer_id,
                out_port,
                out_group,
                flags: FlowModFlags(flags),
                match_,
                instructions,
            },
        )
}

fn roundtrip(body: Message) -> Result<(), TestCaseError> {
    let msg = OfpMessage::new(42, body);
    let bytes = msg.encode().unwrap();
    let back = decode(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, &msg);
    prop_assert_eq!(back.encode().unwrap(), bytes);
    Ok(())
}

/// A message with a correct header around arbitrary body bytes.
fn framed(version: u8, ty: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![version, ty, 0, 0, 0, 0, 0, 1];
    v.extend_from_slice(body);
    let len = v.len() as u16;
    v[2..4].copy_from_slice(&len.to_be_bytes());
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn matches_roundtrip(m in arb_match()) {
        let padded = m.wire_len();
        prop_assert_eq!(padded % 8, 0);
        roundtrip(Message::FlowMod(FlowMod::add(0, 0, m, vec![])))?;
    }

    #[test]
    fn actions_roundtrip(actions in vec(action(), 0..12), data in vec(any::<u8>(), 0..64)) {
        roundtrip(Message::PacketOut(PacketOut { buffer_id: 1, in_port: 2, actions, data }))?;
    }

    #[test]
    fn instructions_roundtrip(instructions in vec(instruction(), 0..8)) {
        roundtrip(Message::FlowMod(FlowMod::add(1, 2, Match::any(), instructions)))?;
    }

    #[test]
    fn flow_mods_roundtrip(fm in flow_mod()) {
        roundtrip(Message::FlowMod(fm))?;
    }

    #[test]
    fn group_mods_roundtrip(
        buckets in vec((any::<u16>(), any::<u32>(), any::<u32>(), vec(action(), 0..4)), 0..5),
        group_id in any::<u32>(),
    ) {
        let buckets = buckets
            .into_iter()
            .map(|(weight, watch_port, watch_group, actions)| Bucket {
                weight,
                watch_port,
                watch_group,
                actions,
            })
            .collect();
        roundtrip(Message::GroupMod(GroupMod {
            command: GroupModCommand::Modify,
            group_type: GroupType::Select,
            group_id,
            buckets,
        }))?;
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in vec(any::<u8>(), 0..600)) {
        check_decode(&bytes);
    }

    #[test]
    fn decode_never_panics_on_framed_bytes(
        version in prop_oneof![8 => Just(4u8), 1 => any::<u8>()],
        ty in 0..32u8,
        body in vec(any::<u8>(), 0..600),
    ) {
        check_decode(&framed(version, ty, &body));
    }

    #[test]
    fn decode_never_panics_on_mutated_samples(
        index in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        fix_length in any::<bool>(),
    ) {
        let samples = common::sample_messages();
        let msg = index.get(&samples);
        let mut bytes = msg.encode().unwrap();
        for (at, v) in &flips {
            let i = at.index(bytes.len());
            bytes[i] ^= v;
        }
        let keep = 8 + cut.index(bytes.len() - 7);
        bytes.truncate(keep);
        if fix_length {
            let len = bytes.len() as u16;
            bytes[2..4].copy_from_slice(&len.to_be_bytes());
        }
        check_decode(&bytes);
    }

    #[test]
    fn flow_mods_reject_trailing_garbage(fm in flow_mod(), extra in 1..8usize) {
        // Garbage after the instructions is an instruction-list error, never a panic or a
        // silent success.
        let mut bytes = OfpMessage::new(1, Message::FlowMod(fm)).encode().unwrap();
        bytes.extend(std::iter::repeat_n(0xa5, extra));
        let len = bytes.len() as u16;
        bytes[2..4].copy_from_slice(&len.to_be_bytes());
        prop_assert!(decode(&bytes).is_err());
    }
}
