//! The body of the `extract` fuzz target (crates/packet/fuzz), kept in the library so unit
//! tests run exactly the same code on a corpus without cargo-fuzz or nightly.

use crate::action::{
    self, copy_ttl_in, copy_ttl_out, dec_mpls_ttl, dec_nw_ttl, set_mpls_ttl, set_nw_ttl,
};
use crate::buf::{PacketBuf, VecBuf};
use crate::error::EditError;
use crate::extract::extract;
use crate::key::{Field, FlowKey};
use crate::wire::{
    arp, ethernet, geneve, icmpv4, icmpv6, ipv4, ipv6, mpls, pbb, sctp, tcp, udp, vlan, vxlan,
};

/// One OpenFlow packet action, for driving edits generically in tests and fuzzing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edit {
    SetField(Field, u128),
    PushVlan(u16),
    PopVlan,
    PushMpls(u16),
    PopMpls(u16),
    PushPbb(u16),
    PopPbb,
    SetMplsTtl(u8),
    DecMplsTtl,
    SetNwTtl(u8),
    DecNwTtl,
    CopyTtlOut,
    CopyTtlIn,
}

impl Edit {
    pub fn apply<P: PacketBuf + ?Sized>(
        self,
        pkt: &mut P,
        key: &mut FlowKey,
    ) -> Result<(), EditError> {
        match self {
            Edit::SetField(f, v) => action::set_field(pkt, key, f, v),
            Edit::PushVlan(t) => action::push_vlan(pkt, key, t),
            Edit::PopVlan => action::pop_vlan(pkt, key),
            Edit::PushMpls(t) => action::push_mpls(pkt, key, t),
            Edit::PopMpls(t) => action::pop_mpls(pkt, key, t),
            Edit::PushPbb(t) => action::push_pbb(pkt, key, t),
            Edit::PopPbb => action::pop_pbb(pkt, key),
            Edit::SetMplsTtl(t) => set_mpls_ttl(pkt, key, t),
            Edit::DecMplsTtl => dec_mpls_ttl(pkt, key),
            Edit::SetNwTtl(t) => set_nw_ttl(pkt, key, t),
            Edit::DecNwTtl => dec_nw_ttl(pkt, key),
            Edit::CopyTtlOut => copy_ttl_out(pkt, key),
            Edit::CopyTtlIn => copy_ttl_in(pkt, key),
        }
    }

    /// A varied edit chosen by two bytes of fuzz input.
    pub fn from_bytes(sel: u8, arg: u8) -> Edit {
        let wide = u128::from(arg) * 0x0101_0101_0101_0101_0101_0101_0101_0101;
        match sel % 16 {
            0..=3 => Edit::SetField(Field::ALL[usize::from(arg) % Field::ALL.len()], wide),
            4 => Edit::PushVlan(if arg & 1 == 0 { 0x8100 } else { 0x88a8 }),
            5 => Edit::PopVlan,
            6 => Edit::PushMpls(if arg & 1 == 0 { 0x8847 } else { 0x8848 }),
            7 => Edit::PopMpls([0x0800, 0x86dd, 0x8847, 0x0806, 0x8100][usize::from(arg) % 5]),
            8 => Edit::PushPbb(0x88e7),
            9 => Edit::PopPbb,
            10 => Edit::SetMplsTtl(arg),
            11 => Edit::DecMplsTtl,
            12 => Edit::SetNwTtl(arg),
            13 => Edit::DecNwTtl,
            14 => Edit::CopyTtlOut,
            _ => Edit::CopyTtlIn,
        }
    }
}

/// The fuzz target: parse, read every view, and run edits checking that each successful
/// one leaves the key equal to a fresh extraction of the edited frame.
pub fn exercise(data: &[u8]) {
    let key = extract(data, 1);
    all_views(data);
    for off in [key.offsets.l3, key.offsets.l4, key.offsets.nd_option] {
        if let Some(rest) = data.get(usize::from(off)..) {
            all_views(rest);
        }
    }
    tunnels(data);
    // Edits chosen by the first bytes, applied in sequence to one buffer.
    let mut buf = VecBuf::new(data);
    let mut k = key;
    k.set_metadata(0x0123_4567_89ab_cdef);
    k.set_tunnel_id(42);
    for pair in data.chunks_exact(2).take(4) {
        let edit = Edit::from_bytes(pair[0], pair[1]);
        let before = (buf.clone(), k);
        match edit.apply(&mut buf, &mut k) {
            Ok(()) => assert_consistent(buf.data(), &k, edit),
            Err(_) => assert!(
                buf == before.0 && k == before.1,
                "failed {edit:?} changed state"
            ),
        }
    }
}

/// Decapsulation of any frame as VXLAN and as Geneve, and encapsulation of it: an accepted
/// tunnel header must give an inner frame inside the buffer, and decapsulating what was
/// encapsulated must give the frame back.
pub fn tunnels(data: &[u8]) {
    use crate::tunnel::{self, TunnelKind};
    if let Ok(v) = vxlan::Packet::new_checked(data) {
        let _ = (v.vni_valid(), v.vni(), v.payload().len());
    }
    if let Ok(g) = geneve::Packet::new_checked(data) {
        let _ = (
            g.oam(),
            g.critical(),
            g.protocol(),
            g.vni(),
            g.payload().len(),
        );
        for o in geneve::Options::new(g.options()) {
            let _ = o.map(|o| o.critical());
        }
    }
    if let Ok(Some(o)) = tunnel::parse_outer(data) {
        assert!(o.payload <= o.payload_end && o.payload_end <= data.len());
        let _ = tunnel::verify_udp_checksum(data, &o);
        for kind in [TunnelKind::Vxlan, TunnelKind::Geneve] {
            if let Ok(t) = tunnel::parse_tunnel(data, &o, kind) {
                assert!(t.inner_offset + 14 <= o.payload_end);
                assert!(t.options.0 <= t.options.1 && t.options.1 <= t.inner_offset);
            }
        }
    }
    let opts = data.get(..data.len().min(8) & !3).unwrap_or_default();
    for (kind, options) in [(TunnelKind::Vxlan, &[][..]), (TunnelKind::Geneve, opts)] {
        let e = tunnel::Encap {
            kind,
            eth_src: [2, 0, 0, 0, 0, 1],
            eth_dst: [2, 0, 0, 0, 0, 2],
            ip_src: [192, 0, 2, 1],
            ip_dst: [192, 0, 2, 2],
            dst_port: kind.default_port(),
            vni: data.len() as u32,
            ttl: 64,
            udp_checksum: data.len().is_multiple_of(2),
            geneve_options: options,
        };
        let mut b = VecBuf::new(data);
        if tunnel::encap(&mut b, &e, tunnel::udp_src_port(data)).is_err() {
            continue;
        }
        let f = b.data();
        let o = tunnel::parse_outer(f)
            .expect("own outer headers")
            .expect("own frame is udp");
        tunnel::verify_udp_checksum(f, &o).expect("own checksum");
        // Geneve options from fuzz bytes may be malformed; the inner frame may be < 14 bytes.
        if let Ok(t) = tunnel::parse_tunnel(f, &o, kind) {
            assert_eq!(&f[t.inner_offset..], data);
            assert_eq!(t.vni, e.vni & 0xff_ffff);
        }
    }
}

/// Panics unless `key` is what `extract` gives for `frame`, pipeline fields aside.
pub fn assert_consistent(frame: &[u8], key: &FlowKey, edit: Edit) {
    let mut fresh = extract(frame, key.in_port());
    fresh.set(Field::InPhyPort, key.get(Field::InPhyPort));
    fresh.set_metadata(key.metadata());
    fresh.set_tunnel_id(key.tunnel_id());
    assert_eq!(
        &fresh, key,
        "key out of step after {edit:?} on {frame:02x?}"
    );
}

/// Every view's `new_checked` and, when it accepts, every getter.
pub fn all_views(b: &[u8]) {
    if let Ok(v) = ethernet::Frame::new_checked(b) {
        let _ = (v.dst(), v.src(), v.ethertype(), v.payload().len());
    }
    if let Ok(v) = vlan::Tag::new_checked(b) {
        let _ = (
            v.tci(),
            v.pcp(),
            v.dei(),
            v.vid(),
            v.ethertype(),
            v.payload().len(),
        );
    }
    if let Ok(v) = pbb::ITag::new_checked(b) {
        let _ = (
            v.pcp(),
            v.dei(),
            v.uca(),
            v.isid(),
            v.payload().len(),
            v.customer_frame().is_ok(),
        );
    }
    if let Ok(v) = mpls::Label::new_checked(b) {
        let _ = (v.label(), v.tc(), v.bos(), v.ttl(), v.payload().len());
    }
    if let Ok(v) = arp::Packet::new_checked(b) {
        let _ = (
            v.hardware_type(),
            v.protocol_type(),
            v.operation(),
            v.sha(),
            v.spa(),
            v.tha(),
            v.tpa(),
        );
    }
    if let Ok(v) = ipv4::Packet::new_checked(b) {
        let _ = (
            v.version(),
            v.header_len(),
            v.dscp(),
            v.ecn(),
            v.total_len(),
            v.ident(),
        );
        let _ = (
            v.dont_frag(),
            v.more_frags(),
            v.frag_offset(),
            v.ttl(),
            v.protocol(),
            v.checksum(),
        );
        let _ = (
            v.src(),
            v.dst(),
            v.options().len(),
            v.payload().len(),
            v.verify_checksum(),
        );
    }
    if let Ok(v) = ipv6::Packet::new_checked(b) {
        let _ = (
            v.version(),
            v.traffic_class(),
            v.dscp(),
            v.ecn(),
            v.flow_label(),
            v.payload_len(),
        );
        let _ = (
            v.next_header(),
            v.hop_limit(),
            v.src(),
            v.dst(),
            v.payload().len(),
        );
    }
    if let Ok(v) = ipv6::ExtHeader::new_checked(b) {
        let _ = (
            v.next_header(),
            v.header_len(),
            v.routing_type(),
            v.segments_left(),
            v.data().len(),
        );
    }
    if let Ok(v) = ipv6::FragmentHeader::new_checked(b) {
        let _ = (v.next_header(), v.frag_offset(), v.more_frags(), v.ident());
    }
    if let Ok(v) = ipv6::AuthHeader::new_checked(b) {
        let _ = (v.next_header(), v.header_len(), v.spi(), v.sequence());
    }
    if let Ok(v) = ipv6::EspHeader::new_checked(b) {
        let _ = (v.spi(), v.sequence());
    }
    if let Ok(v) = tcp::Packet::new_checked(b) {
        let _ = (
            v.src_port(),
            v.dst_port(),
            v.seq(),
            v.ack(),
            v.header_len(),
            v.flags(),
        );
        let _ = (v.window(), v.checksum(), v.urgent(), v.payload().len());
    }
    if let Ok(v) = udp::Packet::new_checked(b) {
        let _ = (
            v.src_port(),
            v.dst_port(),
            v.len(),
            v.checksum(),
            v.payload().len(),
        );
    }
    if let Ok(v) = sctp::Packet::new_checked(b) {
        let _ = (
            v.src_port(),
            v.dst_port(),
            v.verification_tag(),
            v.verify_checksum(),
        );
    }
    if let Ok(v) = icmpv4::Packet::new_checked(b) {
        let _ = (
            v.msg_type(),
            v.code(),
            v.checksum(),
            v.payload().len(),
            v.verify_checksum(),
        );
    }
    if let Ok(v) = icmpv6::Packet::new_checked(b) {
        let _ = (
            v.msg_type(),
            v.code(),
            v.checksum(),
            v.is_nd(),
            v.payload().len(),
        );
    }
    if let Ok(v) = icmpv6::NdMessage::new_checked(b) {
        let _ = (v.msg_type(), v.na_flags(), v.target());
        for opt in v.options().flatten() {
            let _ = (
                opt.0,
                opt.1.opt_type(),
                opt.1.len_bytes(),
                opt.1.link_layer_addr(),
            );
        }
    }
    if let Ok(v) = icmpv6::NdOption::new_checked(b) {
        let _ = (v.opt_type(), v.len_bytes(), v.link_layer_addr());
    }
}
