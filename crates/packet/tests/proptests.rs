//! Property tests: the parser never panics, keeps what it can from truncated frames, and
//! every edit leaves a key equal to a fresh extraction and checksums that verify.

mod common;

use common::{fresh_key, verify_checksums, Frame};
use packet::fuzz::{self, Edit};
use packet::key::Layers;
use packet::{extract, Field, FlowKey, PacketBuf, VecBuf, OFPVID_PRESENT};
use proptest::prelude::*;

fn edit() -> impl Strategy<Value = Edit> {
    let value = prop_oneof![any::<u128>(), (0u128..4), any::<u8>().prop_map(u128::from)];
    prop_oneof![
        6 => (0usize..Field::ALL.len(), value).prop_map(|(i, v)| Edit::SetField(Field::ALL[i], v)),
        1 => prop_oneof![Just(0x8100u16), Just(0x88a8), Just(0x0800)].prop_map(Edit::PushVlan),
        1 => Just(Edit::PopVlan),
        1 => prop_oneof![Just(0x8847u16), Just(0x8848), Just(0x0800)].prop_map(Edit::PushMpls),
        1 => prop_oneof![Just(0x0800u16), Just(0x86dd), Just(0x8847), Just(0x0806), Just(0x8100)].prop_map(Edit::PopMpls),
        1 => prop_oneof![Just(0x88e7u16), Just(0x8100)].prop_map(Edit::PushPbb),
        1 => Just(Edit::PopPbb),
        1 => any::<u8>().prop_map(Edit::SetMplsTtl),
        1 => Just(Edit::DecMplsTtl),
        1 => any::<u8>().prop_map(Edit::SetNwTtl),
        1 => Just(Edit::DecNwTtl),
        1 => Just(Edit::CopyTtlOut),
        1 => Just(Edit::CopyTtlIn),
    ]
}

/// What each successful edit promises beyond "the key matches the frame".
fn check_promise(edit: Edit, before: &FlowKey, after: &FlowKey) {
    match edit {
        Edit::SetField(f, v) => {
            let v = v & f.value_mask();
            let structural =
                f == Field::EthType || (f == Field::IpProto && after.layers.contains(Layers::IPV6));
            if structural {
                return;
            }
            let want = if f == Field::VlanVid {
                (v & 0xfff) | u128::from(OFPVID_PRESENT)
            } else {
                v
            };
            assert_eq!(after.get(f), want, "{f:?}");
        }
        Edit::PushVlan(_) => {
            assert!(after.layers.contains(Layers::VLAN));
            assert_eq!(after.eth_type(), before.eth_type());
            let vid = if before.layers.contains(Layers::VLAN) {
                before.vlan_vid()
            } else {
                OFPVID_PRESENT
            };
            assert_eq!(after.vlan_vid(), vid);
            assert_eq!(after.offsets.vlan_tags, before.offsets.vlan_tags + 1);
        }
        Edit::PopVlan => assert_eq!(after.offsets.vlan_tags + 1, before.offsets.vlan_tags),
        Edit::PushMpls(t) => {
            assert_eq!(after.eth_type(), t);
            assert!(after.layers.contains(Layers::MPLS));
            assert_eq!(
                after.get(Field::MplsBos),
                u128::from(!before.layers.contains(Layers::MPLS))
            );
        }
        Edit::PushPbb(_) => {
            assert_eq!(after.eth_type(), 0x88e7);
            assert_eq!(after.get(Field::EthDst), before.get(Field::EthDst));
            assert_eq!(after.get(Field::EthSrc), before.get(Field::EthSrc));
        }
        _ => {}
    }
}

fn apply_checked(buf: &mut VecBuf, key: &mut FlowKey, edit: Edit) -> bool {
    apply_checked_with(buf, key, edit, true)
}

/// Rewriting ip_proto, eth_type or mpls_bos, or popping a label with an ethertype that does not name
/// what lies beneath (the generated frames carry IPv4 under the bottom label), makes the
/// payload mean something else, whose checksums were never computed for it: `verify` is
/// false from then on.
fn reinterprets(edit: Edit, before: &FlowKey) -> bool {
    match edit {
        Edit::SetField(Field::IpProto | Field::EthType | Field::MplsBos, _) => true,
        Edit::PopMpls(t) => {
            let bos = before.get(Field::MplsBos) == 1;
            !((bos && t == 0x0800) || (!bos && (t == 0x8847 || t == 0x8848)))
        }
        _ => false,
    }
}

fn apply_checked_with(buf: &mut VecBuf, key: &mut FlowKey, edit: Edit, verify: bool) -> bool {
    let (buf_before, key_before) = (buf.clone(), *key);
    match edit.apply(buf, key) {
        Ok(()) => {
            assert_eq!(
                *key,
                fresh_key(buf.data(), key),
                "key out of step after {edit:?}"
            );
            if verify && !reinterprets(edit, &key_before) {
                verify_checksums(buf.data()).unwrap_or_else(|e| panic!("after {edit:?}: {e}"));
            }
            check_promise(edit, &key_before, key);
            true
        }
        Err(_) => {
            assert_eq!(*buf, buf_before, "failed {edit:?} changed the frame");
            assert_eq!(*key, key_before, "failed {edit:?} changed the key");
            false
        }
    }
}

/// Fields whose value legitimately changes when a later header is cut off.
fn depends_on_rest(f: Field, key: &FlowKey) -> bool {
    // A cut VLAN tag leaves its TPID as eth_type and no vlan_vid.
    matches!(
        f,
        Field::EthType | Field::VlanVid | Field::Ipv6Exthdr | Field::Ipv6NdSll | Field::Ipv6NdTll
    ) || (f == Field::IpProto && key.layers.contains(Layers::IPV6))
}

/// The L3 and L4 fields whose set-field patches checksums in place (no re-parse).
const L3_L4_FIELDS: [Field; 13] = [
    Field::IpDscp,
    Field::IpEcn,
    Field::Ipv4Src,
    Field::Ipv4Dst,
    Field::Ipv6Src,
    Field::Ipv6Dst,
    Field::Ipv6Flabel,
    Field::TcpSrc,
    Field::TcpDst,
    Field::UdpSrc,
    Field::UdpDst,
    Field::Icmpv4Type,
    Field::Icmpv4Code,
];

/// 512 cases by default; PROPTEST_CASES raises it for a longer soak.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let k = extract(&bytes, 3);
        prop_assert_eq!(k.in_port(), 3);
        fuzz::exercise(&bytes);
    }

    #[test]
    fn random_bytes_behind_known_headers_never_panic(
        ethertype in prop_oneof![Just(0x0800u16), Just(0x86dd), Just(0x0806), Just(0x8847), Just(0x88e7), Just(0x8100)],
        first in prop_oneof![Just(0x45u8), Just(0x46), Just(0x60), any::<u8>()],
        tail in prop::collection::vec(any::<u8>(), 0..120),
    ) {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.push(first);
        f.extend_from_slice(&tail);
        let _ = extract(&f, 1);
        fuzz::exercise(&f);
    }

    #[test]
    fn valid_frames_parse_and_checksum(frame in common::frame()) {
        let bytes = frame.build();
        verify_checksums(&bytes).map_err(TestCaseError::fail)?;
        let key = extract(&bytes, 1);
        prop_assert!(key.layers.contains(Layers::ETH));
        prop_assert_eq!(key.offsets.vlan_tags as usize, frame.tags.len());
        if let Some((_, tci)) = frame.tags.first() {
            prop_assert_eq!(key.vlan_vid(), (tci & 0xfff) | OFPVID_PRESENT);
        } else {
            prop_assert_eq!(key.vlan_vid(), 0);
        }
        match &frame.l3 {
            common::L3::Ipv4 { src, l4, frag, .. } => {
                prop_assert!(key.layers.contains(Layers::IPV4));
                prop_assert_eq!(key.get(Field::Ipv4Src), u128::from(u32::from_be_bytes(*src)));
                if let (common::L4::Tcp { sport, dport, .. }, common::Frag::None) = (l4, frag) {
                    prop_assert!(key.layers.contains(Layers::TCP));
                    prop_assert_eq!(key.get(Field::TcpSrc), u128::from(*sport));
                    prop_assert_eq!(key.get(Field::TcpDst), u128::from(*dport));
                }
                if matches!(frag, common::Frag::Later) {
                    prop_assert_eq!(key.get(Field::TcpSrc), 0);
                }
            }
            common::L3::Ipv6 { dst, l4, frag, .. } => {
                prop_assert!(key.layers.contains(Layers::IPV6));
                prop_assert_eq!(key.get(Field::Ipv6Dst), u128::from_be_bytes(*dst));
                if let (common::Ipv6L4::Nd { solicit, target, ll, .. }, common::Frag::None) = (l4, frag) {
                    prop_assert_eq!(key.get(Field::Ipv6NdTarget), u128::from_be_bytes(*target));
                    let f = if *solicit { Field::Ipv6NdSll } else { Field::Ipv6NdTll };
                    let want = ll.map_or(0, |m| u128::from(u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]])));
                    prop_assert_eq!(key.get(f), want);
                }
            }
            common::L3::Arp { op, .. } => prop_assert_eq!(key.get(Field::ArpOp), u128::from(*op)),
            common::L3::Mpls { labels, .. } => {
                prop_assert_eq!(key.get(Field::MplsLabel), u128::from(labels[0].0 & 0xfffff));
                prop_assert_eq!(key.get(Field::MplsBos), u128::from(labels.len() == 1));
                prop_assert_eq!(key.get(Field::Ipv4Src), 0);
            }
            common::L3::Pbb { isid, .. } => {
                prop_assert_eq!(key.get(Field::PbbIsid), u128::from(*isid));
                prop_assert_eq!(key.eth_type(), 0x88e7);
            }
            common::L3::Other { ethertype, payload } => {
                // An 802.3 length is no type: 0x05FF, or the SNAP type behind an LLC/SNAP
                // header of OUI 0 (OpenFlow 1.3.5, OXM_OF_ETH_TYPE).
                let want = match (*ethertype, payload.get(..8)) {
                    (t, _) if t >= 0x0600 => t,
                    (_, Some([0xaa, 0xaa, 0x03, 0, 0, 0, a, b])) => u16::from_be_bytes([*a, *b]),
                    _ => packet::extract::OFP_DL_TYPE_NOT_ETH_TYPE,
                };
                prop_assert_eq!(key.eth_type(), want)
            }
        }
    }

    #[test]
    fn truncated_frames_keep_what_is_there(frame in common::frame()) {
        let bytes = frame.build();
        let full = extract(&bytes, 1);
        for len in 0..=bytes.len() {
            let cut = &bytes[..len];
            let k = extract(cut, 1);
            prop_assert!(full.layers.contains(k.layers), "len {}: {:?} not within {:?}", len, k.layers, full.layers);
            for f in Field::ALL {
                if k.has_field(f) && !depends_on_rest(f, &k) {
                    prop_assert_eq!(k.get(f), full.get(f), "len {} field {:?}", len, f);
                }
            }
            fuzz::exercise(cut);
        }
    }

    #[test]
    fn edits_keep_key_and_checksums(frame in common::frame(), edits in prop::collection::vec(edit(), 1..6)) {
        let bytes = frame.build();
        let mut buf = VecBuf::new(&bytes);
        let mut key = extract(&bytes, 9);
        key.set_metadata(0xfeed);
        key.set_tunnel_id(0xbeef);
        let mut tunnel_id = 0xbeef;
        let mut verify = true;
        for e in edits {
            let before = key;
            let applied = apply_checked_with(&mut buf, &mut key, e, verify);
            verify &= !(applied && reinterprets(e, &before));
            if applied {
                if let Edit::SetField(Field::TunnelId, v) = e {
                    tunnel_id = v as u64;
                }
            }
        }
        prop_assert_eq!(key.metadata(), 0xfeed);
        prop_assert_eq!(key.tunnel_id(), tunnel_id);
    }

    #[test]
    fn push_then_pop_restores_the_frame(frame in common::frame()) {
        let bytes = frame.build();
        let key0 = extract(&bytes, 1);
        let mut pairs: Vec<(Edit, Edit)> = vec![
            (Edit::PushVlan(0x8100), Edit::PopVlan),
            (Edit::PushVlan(0x88a8), Edit::PopVlan),
            (Edit::PushPbb(0x88e7), Edit::PopPbb),
        ];
        // An 802.3 frame has no ethertype a pop could restore.
        if key0.eth_type() != packet::extract::OFP_DL_TYPE_NOT_ETH_TYPE {
            pairs.push((Edit::PushMpls(0x8847), Edit::PopMpls(key0.eth_type())));
        }
        for (push, pop) in pairs {
            let mut buf = VecBuf::new(&bytes);
            let mut key = key0;
            prop_assert!(apply_checked(&mut buf, &mut key, push));
            let pushed = buf.data().len();
            prop_assert!(apply_checked(&mut buf, &mut key, pop));
            // A pop does not take a frame below the Ethernet minimum it had reached.
            let mut want = bytes.clone();
            if pushed >= packet::action::MIN_FRAME_LEN {
                want.resize(want.len().max(packet::action::MIN_FRAME_LEN), 0);
            }
            prop_assert_eq!(buf.data(), &want[..], "{:?} then {:?}", push, pop);
            prop_assert_eq!(key, extract(&want, 1));
        }
    }

    /// The set-fields NAT and rewrites use, chained as a DNAT entry chains them (address,
    /// then port, then more), on IPv4/IPv6 frames with TCP, UDP or ICMP: every edit the
    /// frame has the headers for succeeds, and leaves checksums a full recomputation
    /// verifies and the key a fresh extraction gives.
    #[test]
    fn l3_l4_set_fields_keep_checksums_right(
        frame in common::frame().prop_filter("IP with TCP, UDP or ICMP", |f| {
            let l = extract(&f.build(), 1).layers;
            l.intersects(Layers::IPV4 | Layers::IPV6)
                && l.intersects(Layers::TCP | Layers::UDP | Layers::ICMPV4 | Layers::ICMPV6)
        }),
        edits in prop::collection::vec((0usize..L3_L4_FIELDS.len(), any::<u128>()), 1..5),
    ) {
        let bytes = frame.build();
        let key0 = extract(&bytes, 1);
        let mut buf = VecBuf::new(&bytes);
        let mut key = key0;
        for (i, v) in edits {
            let field = L3_L4_FIELDS[i];
            let before = key;
            let applied = apply_checked(&mut buf, &mut key, Edit::SetField(field, v));
            prop_assert_eq!(applied, before.has_field(field), "{:?}", field);
        }
    }

    #[test]
    fn set_field_and_back_restores_the_frame(frame in common::frame(), i in 0usize..Field::ALL.len(), v in any::<u128>()) {
        // eth_type and ip_proto can move the headers after them, so "back" is elsewhere.
        let fields: Vec<Field> = Field::ALL.into_iter().filter(|f| !matches!(f, Field::EthType | Field::IpProto)).collect();
        let field = fields[i % fields.len()];
        let bytes = frame.build();
        let key0 = extract(&bytes, 1);
        let old = key0.get(field);
        let mut buf = VecBuf::new(&bytes);
        let mut key = key0;
        if apply_checked(&mut buf, &mut key, Edit::SetField(field, v)) {
            prop_assert!(apply_checked(&mut buf, &mut key, Edit::SetField(field, old)));
            prop_assert_eq!(buf.data(), &bytes[..], "{:?}", field);
            prop_assert_eq!(key, key0);
        }
    }
}

#[test]
fn ttl_expiry_is_reported_and_leaves_the_packet() {
    let frame = Frame {
        dst: [2; 6],
        src: [4; 6],
        tags: vec![],
        l3: common::L3::Ipv4 {
            src: [1, 1, 1, 1],
            dst: [2, 2, 2, 2],
            ttl: 1,
            tos: 0,
            opt_words: 0,
            frag: common::Frag::None,
            l4: common::L4::Udp {
                sport: 1,
                dport: 2,
                zero_csum: false,
                payload: vec![],
            },
        },
        pad: 0,
    }
    .build();
    let mut buf = VecBuf::new(&frame);
    let key = extract(&frame, 1);
    assert_eq!(
        packet::dec_nw_ttl(&mut buf, &key),
        Err(packet::EditError::InvalidTtl)
    );
    assert_eq!(buf.data(), &frame[..]);
    assert_eq!(
        packet::dec_mpls_ttl(&mut buf, &key),
        Err(packet::EditError::NoMpls)
    );
}
