//! Packet edits behind OpenFlow 1.3 actions: set-field, push/pop of VLAN, MPLS and PBB
//! tags, and the TTL actions.
//!
//! Every edit takes the frame and the key `extract` made for it, uses the key's layers and
//! offsets instead of parsing again, and leaves the key equal to what `extract` would give
//! for the edited frame (metadata, tunnel_id and in_port carried over), so the next action
//! or table sees a consistent packet. Checksums (IPv4 header, TCP, UDP, ICMPv4, ICMPv6) are
//! patched incrementally per RFC 1624; SCTP's CRC32c is recomputed. A UDP checksum of zero
//! ("none") stays zero. On error the frame and key are unchanged.
//!
//! Edits that change what the parser would see below the edited header (pop_mpls, pop_pbb,
//! set-field of eth_type, ip_proto or icmpv6 type/code) re-parse from that header: they are
//! rare and the new layers are not known without looking.

use crate::buf::PacketBuf;
use crate::error::EditError;
use crate::extract::{parse_frame, parse_l3};
use crate::key::{ipv6_exthdr, pos, Field, FlowKey, Layers, OFPVID_PRESENT};
use crate::wire::checksum;
use crate::wire::ethertype as et;
use crate::wire::field::{be16, be32, put16, put24, put32};
use crate::wire::{ipv4, ipv6, mpls, sctp, tcp, udp};

/// A 16-bit checksum to patch: where it is, where the area it covers starts (for byte
/// parity), and whether zero means "absent" (UDP).
#[derive(Clone, Copy)]
struct Csum {
    at: usize,
    area: usize,
    zero_is_none: bool,
}

impl Csum {
    fn ones(at: usize, area: usize) -> Self {
        Self {
            at,
            area,
            zero_is_none: false,
        }
    }
}

#[inline]
fn need(key: &FlowKey, layers: Layers, err: EditError) -> Result<(), EditError> {
    if key.layers.intersects(layers) {
        Ok(())
    } else {
        Err(err)
    }
}

#[inline]
fn fits(data: &[u8], off: usize, len: usize) -> Result<(), EditError> {
    if off.checked_add(len).is_some_and(|end| end <= data.len()) {
        Ok(())
    } else {
        Err(EditError::Truncated)
    }
}

/// Applies `old_sum -> new_sum` to the checksum `c`.
#[inline(always)]
fn patch(data: &mut [u8], c: Csum, old_sum: u16, new_sum: u16) {
    let cur = be16(data, c.at);
    if c.zero_is_none && cur == 0 {
        return;
    }
    let mut new = checksum::update(cur, old_sum, new_sum);
    if c.zero_is_none && new == 0 {
        new = 0xffff;
    }
    put16(data, c.at, new);
}

/// Overwrites `data[off..off + new.len()]` and patches every checksum in `sums` that covers
/// it. Bounds are checked before anything is written. Inlined so that each caller's
/// constant length makes the copy and the sums a few moves instead of calls to `memcpy`.
#[inline(always)]
fn write(data: &mut [u8], off: usize, new: &[u8], sums: &[Csum]) -> Result<(), EditError> {
    fits(data, off, new.len())?;
    for c in sums {
        fits(data, c.at, 2)?;
    }
    for c in sums {
        let odd = (off - c.area) % 2 == 1;
        let old_sum = checksum::sum_at(&data[off..off + new.len()], odd);
        let new_sum = checksum::sum_at(new, odd);
        patch(data, *c, old_sum, new_sum);
    }
    data[off..off + new.len()].copy_from_slice(new);
    Ok(())
}

/// The L4 checksum of the packet, if it has one we can patch (first fragments included:
/// the checksum covers the reassembled datagram, and an incremental patch stays right).
fn l4_csum(key: &FlowKey) -> Option<Csum> {
    let l4 = usize::from(key.offsets.l4);
    let l = key.layers;
    if l.contains(Layers::TCP) {
        Some(Csum::ones(l4 + tcp::CHECKSUM_OFFSET, l4))
    } else if l.contains(Layers::UDP) {
        Some(Csum {
            at: l4 + udp::CHECKSUM_OFFSET,
            area: l4,
            zero_is_none: true,
        })
    } else if l.intersects(Layers::ICMPV4 | Layers::ICMPV6) {
        Some(Csum::ones(l4 + 2, l4))
    } else {
        None
    }
}

/// The L4 checksum whose pseudo-header holds the IP addresses (not ICMPv4's).
fn pseudo_csum(key: &FlowKey) -> Option<Csum> {
    if key.layers.contains(Layers::ICMPV4) {
        None
    } else {
        l4_csum(key)
    }
}

fn ipv4_csum(key: &FlowKey) -> Csum {
    let l3 = usize::from(key.offsets.l3);
    Csum::ones(l3 + ipv4::CHECKSUM_OFFSET, l3)
}

/// End of the IP datagram in the frame (Ethernet padding excluded).
fn ip_end(data: &[u8], key: &FlowKey) -> usize {
    let l3 = usize::from(key.offsets.l3);
    let end = if key.layers.contains(Layers::IPV4) {
        l3 + usize::from(be16(data, l3 + 2))
    } else {
        l3 + ipv6::HEADER_LEN + usize::from(be16(data, l3 + 4))
    };
    end.min(data.len())
}

/// Writes an address (or any bytes) inside the IP header that the L4 pseudo-header also
/// covers, patching the IPv4 header checksum (if given) and the L4 checksum.
#[inline(always)]
fn write_addr(
    data: &mut [u8],
    off: usize,
    new: &[u8],
    ip_csum: Option<Csum>,
    l4: Option<Csum>,
) -> Result<(), EditError> {
    fits(data, off, new.len())?;
    let (old_sum, new_sum) = (
        checksum::sum_at(&data[off..off + new.len()], false),
        checksum::sum_at(new, false),
    );
    if let Some(c) = l4 {
        fits(data, c.at, 2)?;
    }
    let sums: &[Csum] = match &ip_csum {
        Some(c) => std::slice::from_ref(c),
        None => &[],
    };
    write(data, off, new, sums)?;
    if let Some(c) = l4 {
        patch(data, c, old_sum, new_sum);
    }
    Ok(())
}

fn recompute_sctp(data: &mut [u8], key: &FlowKey) {
    if key.layers.contains(Layers::IP_FRAG) {
        // The CRC covers the whole reassembled packet, which we do not have.
        return;
    }
    let l4 = usize::from(key.offsets.l4);
    let end = ip_end(data, key);
    if let Some(region) = data.get_mut(l4..end) {
        if let Ok(mut s) = sctp::Packet::new_checked(region) {
            s.fill_checksum();
        }
    }
}

#[inline]
fn mac_bytes(v: u128) -> [u8; 6] {
    let b = (v as u64).to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

/// Parses the frame again from the innermost ethertype on, keeping L2 as it is.
fn reparse_l3(data: &[u8], key: &mut FlowKey) {
    clear_l3(key);
    parse_l3(data, key, key.eth_type(), usize::from(key.offsets.l3));
}

/// Drops everything the key knows past the innermost ethertype.
fn clear_l3(key: &mut FlowKey) {
    for w in &mut key.words[pos::IPV4_SRC.word as usize..] {
        *w = 0;
    }
    key.layers = Layers(key.layers.0 & Layers::L2.0);
    key.offsets.l4 = 0;
    key.offsets.nd_option = 0;
    key.offsets.ip_proto = 0;
}

/// Parses the whole frame again, keeping the pipeline fields (in_port, in_phy_port,
/// metadata, tunnel_id).
fn reextract(data: &[u8], key: &mut FlowKey) {
    let mut fresh = FlowKey::default();
    fresh.words[..pos::ETH_DST.word as usize]
        .copy_from_slice(&key.words[..pos::ETH_DST.word as usize]);
    parse_frame(data, &mut fresh);
    *key = fresh;
}

/// OFPAT_SET_FIELD. `value` is the OXM payload as a big-endian integer (bits beyond the
/// field's width are ignored; for vlan_vid, OFPVID_PRESENT may be set or not).
///
/// in_port, in_phy_port, metadata and ipv6_exthdr cannot be set (metadata has its own
/// instruction). tunnel_id only changes the key. Setting ipv6_dst on a packet with a routing
/// header leaves the L4 checksum alone, since its pseudo-header uses the final destination.
///
/// Never inlined: small now that only the common fields are in it, it was inlined into the
/// NORMAL action's VLAN retagging and made that hot path longer (N +1 per packet).
#[inline(never)]
pub fn set_field<P: PacketBuf + ?Sized>(
    pkt: &mut P,
    key: &mut FlowKey,
    field: Field,
    value: u128,
) -> Result<(), EditError> {
    use Field::*;
    match field {
        EthDst | EthSrc | Ipv4Src | Ipv4Dst | TcpSrc | TcpDst | UdpSrc | UdpDst => {
            set_common(pkt.data_mut(), key, field, value)
        }
        _ => set_other(pkt.data_mut(), key, field, value),
    }
}

/// The sum [`checksum::sum_at`] gives for a 32-bit big-endian value at an even offset.
#[inline(always)]
fn sum32(v: u32) -> u16 {
    checksum::fold(u64::from(v >> 16) + u64::from(v & 0xffff))
}

/// The set-fields rewrites and NAT use (Ethernet addresses, IPv4 addresses, TCP and UDP
/// ports), each with its width, key position and checksums known here: the key's value is
/// stored at its fixed position without the field table, the old and new sums of an
/// address are computed once for both checksums that cover it, and a port's old and new
/// values are its sums. The checksums, key and errors are those of the general path: the
/// same RFC 1624 update with the same sums, bounds checked before anything is written.
#[inline(always)]
fn set_common(
    data: &mut [u8],
    key: &mut FlowKey,
    field: Field,
    value: u128,
) -> Result<(), EditError> {
    use Field::*;
    match field {
        EthDst | EthSrc => {
            need(key, Layers::ETH, EditError::NoEthernet)?;
            let (off, p) = if field == EthDst {
                (0, pos::ETH_DST)
            } else {
                (6, pos::ETH_SRC)
            };
            fits(data, off, 6)?;
            data[off..off + 6].copy_from_slice(&mac_bytes(value));
            key.put(p, value as u64);
        }
        Ipv4Src | Ipv4Dst => {
            need(key, Layers::IPV4, EditError::NoIpv4)?;
            let l3 = usize::from(key.offsets.l3);
            let (off, p) = if field == Ipv4Src {
                (l3 + 12, pos::IPV4_SRC)
            } else {
                (l3 + 16, pos::IPV4_DST)
            };
            let ip = ipv4_csum(key);
            let l4 = pseudo_csum(key);
            fits(data, off, 4)?;
            fits(data, ip.at, 2)?;
            if let Some(c) = l4 {
                fits(data, c.at, 2)?;
            }
            // Both areas (the IPv4 header, the pseudo-header) hold the address at an even
            // offset.
            let new = value as u32;
            let (old_sum, new_sum) = (sum32(be32(data, off)), sum32(new));
            patch(data, ip, old_sum, new_sum);
            if let Some(c) = l4 {
                patch(data, c, old_sum, new_sum);
            }
            put32(data, off, new);
            key.put(p, u64::from(new));
        }
        _ => {
            let (layer, err) = if matches!(field, TcpSrc | TcpDst) {
                (Layers::TCP, EditError::NoTcp)
            } else {
                (Layers::UDP, EditError::NoUdp)
            };
            need(key, layer, err)?;
            let l4 = usize::from(key.offsets.l4);
            let (off, p) = if matches!(field, TcpSrc | UdpSrc) {
                (l4, pos::TP_SRC)
            } else {
                (l4 + 2, pos::TP_DST)
            };
            let c = l4_csum(key).ok_or(err)?;
            fits(data, off, 2)?;
            fits(data, c.at, 2)?;
            // The port is a 16-bit word at an even offset of the segment: its sum.
            let new = value as u16;
            patch(data, c, be16(data, off), new);
            put16(data, off, new);
            key.put(p, u64::from(new));
        }
    }
    Ok(())
}

/// [`set_field`] for every field [`set_common`] does not take. Kept out of line: inlined,
/// its many arms made `set_field` save and restore registers for every common set-field.
#[inline(never)]
fn set_other(
    data: &mut [u8],
    key: &mut FlowKey,
    field: Field,
    value: u128,
) -> Result<(), EditError> {
    use Field::*;
    let value = value & field.value_mask();
    let l3 = usize::from(key.offsets.l3);
    let l4 = usize::from(key.offsets.l4);
    let v8 = value as u8;
    let v16 = (value as u16).to_be_bytes();
    match field {
        InPort | InPhyPort | Metadata | Ipv6Exthdr => return Err(EditError::NotSettable(field)),
        // Registers live in the key only.
        TunnelId => {}
        f if f.is_register() => {}
        EthDst | EthSrc => {
            need(key, Layers::ETH, EditError::NoEthernet)?;
            write(
                data,
                if field == EthDst { 0 } else { 6 },
                &mac_bytes(value),
                &[],
            )?;
        }
        EthType => {
            need(key, Layers::ETH, EditError::NoEthernet)?;
            write(data, ethertype_at(key)?, &v16, &[])?;
            reextract(data, key);
            return Ok(());
        }
        VlanVid | VlanPcp => {
            need(key, Layers::VLAN, EditError::NoVlan)?;
            fits(data, 14, 2)?;
            let tci = be16(data, 14);
            let tci = if field == VlanVid {
                (tci & 0xf000) | (value as u16 & 0x0fff)
            } else {
                (tci & 0x1fff) | (u16::from(v8 & 7) << 13)
            };
            put16(data, 14, tci);
            if field == VlanVid {
                key.set(
                    VlanVid,
                    u128::from((value as u16 & 0x0fff) | OFPVID_PRESENT),
                );
                return Ok(());
            }
        }
        IpDscp | IpEcn => {
            need(key, Layers::IPV4 | Layers::IPV6, EditError::NoIp)?;
            if key.layers.contains(Layers::IPV4) {
                fits(data, l3, ipv4::MIN_HEADER_LEN)?;
                let tos = data[l3 + 1];
                let tos = if field == IpDscp {
                    (tos & 3) | (v8 << 2)
                } else {
                    (tos & !3) | v8
                };
                write(data, l3 + 1, &[tos], &[ipv4_csum(key)])?;
            } else {
                fits(data, l3, ipv6::HEADER_LEN)?;
                let mut ip = ipv6::Packet::new_unchecked(&mut data[l3..]);
                let tc = ip.traffic_class();
                ip.set_traffic_class(if field == IpDscp {
                    (tc & 3) | (v8 << 2)
                } else {
                    (tc & !3) | v8
                });
            }
        }
        IpProto => {
            need(key, Layers::IPV4 | Layers::IPV6, EditError::NoIp)?;
            let at = usize::from(key.offsets.ip_proto);
            fits(data, at, 1)?;
            // The protocol is also in the pseudo-header of the L4 checksum (TCP, UDP,
            // ICMPv6; ICMPv4 has none) as the low byte of a 16-bit word: the checksum of
            // the segment that stays in place is patched for it.
            let l4c = pseudo_csum(key);
            if let Some(c) = l4c {
                fits(data, c.at, 2)?;
            }
            let old = data[at];
            if key.layers.contains(Layers::IPV4) {
                write(data, at, &[v8], &[ipv4_csum(key)])?;
            } else {
                write(data, at, &[v8], &[])?;
            }
            if let Some(c) = l4c {
                patch(data, c, u16::from(old), u16::from(v8));
            }
            reparse_l3(data, key);
            return Ok(());
        }
        Ipv4Src | Ipv4Dst => {
            need(key, Layers::IPV4, EditError::NoIpv4)?;
            let off = l3 + if field == Ipv4Src { 12 } else { 16 };
            let new = (value as u32).to_be_bytes();
            write_addr(data, off, &new, Some(ipv4_csum(key)), pseudo_csum(key))?;
        }
        TcpSrc | TcpDst | UdpSrc | UdpDst | SctpSrc | SctpDst => {
            let (layer, err) = match field {
                TcpSrc | TcpDst => (Layers::TCP, EditError::NoTcp),
                UdpSrc | UdpDst => (Layers::UDP, EditError::NoUdp),
                _ => (Layers::SCTP, EditError::NoSctp),
            };
            need(key, layer, err)?;
            let off = l4
                + if matches!(field, TcpSrc | UdpSrc | SctpSrc) {
                    0
                } else {
                    2
                };
            if layer == Layers::SCTP {
                write(data, off, &v16, &[])?;
                recompute_sctp(data, key);
            } else {
                let c = l4_csum(key).ok_or(err)?;
                write(data, off, &v16, &[c])?;
            }
        }
        Icmpv4Type | Icmpv4Code | Icmpv6Type | Icmpv6Code => {
            let v6 = matches!(field, Icmpv6Type | Icmpv6Code);
            if v6 {
                need(key, Layers::ICMPV6, EditError::NoIcmpv6)?;
            } else {
                need(key, Layers::ICMPV4, EditError::NoIcmpv4)?;
            }
            let off = l4 + usize::from(matches!(field, Icmpv4Code | Icmpv6Code));
            write(data, off, &[v8], &[Csum::ones(l4 + 2, l4)])?;
            if v6 {
                // Type and code decide whether the ND target and options exist.
                reparse_l3(data, key);
                return Ok(());
            }
        }
        ArpOp | ArpSpa | ArpTpa | ArpSha | ArpTha => {
            need(key, Layers::ARP, EditError::NoArp)?;
            match field {
                ArpOp => write(data, l3 + 6, &v16, &[])?,
                ArpSpa => write(data, l3 + 14, &(value as u32).to_be_bytes(), &[])?,
                ArpTpa => write(data, l3 + 24, &(value as u32).to_be_bytes(), &[])?,
                ArpSha => write(data, l3 + 8, &mac_bytes(value), &[])?,
                _ => write(data, l3 + 18, &mac_bytes(value), &[])?,
            }
        }
        Ipv6Src | Ipv6Dst => {
            need(key, Layers::IPV6, EditError::NoIpv6)?;
            let off = l3 + if field == Ipv6Src { 8 } else { 24 };
            let routed = key.get(Ipv6Exthdr) as u16 & ipv6_exthdr::ROUTER != 0;
            let l4c = if field == Ipv6Dst && routed {
                None
            } else {
                pseudo_csum(key)
            };
            write_addr(data, off, &value.to_be_bytes(), None, l4c)?;
        }
        Ipv6Flabel => {
            need(key, Layers::IPV6, EditError::NoIpv6)?;
            fits(data, l3, ipv6::HEADER_LEN)?;
            ipv6::Packet::new_unchecked(&mut data[l3..]).set_flow_label(value as u32);
        }
        Ipv6NdTarget => {
            need(key, Layers::ND_NS | Layers::ND_NA, EditError::NoNdTarget)?;
            write(
                data,
                l4 + 8,
                &value.to_be_bytes(),
                &[Csum::ones(l4 + 2, l4)],
            )?;
        }
        Ipv6NdSll | Ipv6NdTll => {
            if field == Ipv6NdSll {
                need(key, Layers::ND_SLL, EditError::NoNdSll)?;
            } else {
                need(key, Layers::ND_TLL, EditError::NoNdTll)?;
            }
            let off = usize::from(key.offsets.nd_option) + 2;
            write(data, off, &mac_bytes(value), &[Csum::ones(l4 + 2, l4)])?;
        }
        MplsLabel | MplsTc | MplsBos => {
            need(key, Layers::MPLS, EditError::NoMpls)?;
            fits(data, l3, mpls::LABEL_LEN)?;
            let mut label = mpls::Label::new_unchecked(&mut data[l3..]);
            match field {
                MplsLabel => label.set_label(value as u32),
                MplsTc => label.set_tc(v8),
                _ => label.set_bos(v8 != 0),
            }
        }
        PbbIsid => {
            need(key, Layers::PBB, EditError::NoPbb)?;
            fits(data, l3, 4)?;
            put24(data, l3 + 1, value as u32);
        }
        _ => {}
    }
    key.set(field, value);
    Ok(())
}

/// Where the innermost ethertype is: just before the header it names.
#[inline]
fn ethertype_at(key: &FlowKey) -> Result<usize, EditError> {
    usize::from(key.offsets.l3)
        .checked_sub(2)
        .ok_or(EditError::Truncated)
}

/// Moves every known offset by `delta` bytes after a tag was inserted or removed in front
/// of them. Zero offsets mean "absent" and stay zero.
fn shift_offsets(key: &mut FlowKey, delta: isize) {
    let o = &mut key.offsets;
    for off in [&mut o.l3, &mut o.l4, &mut o.nd_option, &mut o.ip_proto] {
        if *off != 0 {
            *off = (*off as isize + delta) as u16;
        }
    }
}

/// The shortest Ethernet frame (without FCS): shorter ones are padded by the sender.
pub const MIN_FRAME_LEN: usize = 60;

/// Removes `data[start..start + n]` (a tag or header being popped). A frame of at least
/// [`MIN_FRAME_LEN`] bytes does not become shorter than that: it keeps zero padding at
/// the end, as a sender pads a short frame (a veth or tap does not pad what it is given).
/// Returns whether it padded.
fn remove_bytes<P: PacketBuf + ?Sized>(
    pkt: &mut P,
    start: usize,
    n: usize,
) -> Result<bool, EditError> {
    let len = pkt.data().len();
    fits(pkt.data(), start, n)?;
    let target = if len >= MIN_FRAME_LEN {
        (len - n).max(MIN_FRAME_LEN)
    } else {
        len - n
    };
    // `pad` bytes of the removal are taken from the end (the rest moves back over the
    // popped header and zeros fill the tail); the others from the front.
    let pad = target - (len - n);
    let data = pkt.data_mut();
    if data.len() != len {
        return Err(EditError::Truncated);
    }
    if pad > 0 {
        data.copy_within(start + n..len, start + n - pad);
        data[len - pad..].fill(0);
    }
    let front = n - pad;
    data.copy_within(0..start, front);
    if !pkt.adj(front) {
        return Err(EditError::Truncated);
    }
    Ok(pad > 0)
}

/// OFPAT_PUSH_VLAN: a new outermost tag right after the MAC addresses, with `tpid`
/// (0x8100 or 0x88a8) as its ethertype. VID and PCP are copied from the tag that was
/// outermost, or zero when there was none (OpenFlow 1.3 section 5.12.1); eth_type does not
/// change.
pub fn push_vlan<P: PacketBuf + ?Sized>(
    pkt: &mut P,
    key: &mut FlowKey,
    tpid: u16,
) -> Result<(), EditError> {
    if tpid != et::VLAN && tpid != et::QINQ {
        return Err(EditError::BadEthertype(tpid));
    }
    need(key, Layers::ETH, EditError::NoEthernet)?;
    fits(pkt.data(), 0, 14)?;
    let had_tag = key.layers.contains(Layers::VLAN);
    let (vid, pcp) = if had_tag {
        (key.vlan_vid() & 0x0fff, key.get(Field::VlanPcp) as u16)
    } else {
        (0, 0)
    };
    pkt.prepend(4).ok_or(EditError::NoHeadroom)?;
    let data = pkt.data_mut();
    data.copy_within(4..16, 0);
    put16(data, 12, tpid);
    put16(data, 14, (pcp << 13) | vid);
    if had_tag {
        key.layers.insert(Layers::VLAN_QINQ);
    }
    key.layers.insert(Layers::VLAN);
    key.set_pos(pos::VLAN_VID, u128::from(vid | OFPVID_PRESENT));
    key.set_pos(pos::VLAN_PCP, u128::from(pcp));
    key.offsets.vlan_tags = key.offsets.vlan_tags.saturating_add(1);
    shift_offsets(key, 4);
    Ok(())
}

/// OFPAT_POP_VLAN: removes the outermost tag; the next one (if any) becomes outermost.
pub fn pop_vlan<P: PacketBuf + ?Sized>(pkt: &mut P, key: &mut FlowKey) -> Result<(), EditError> {
    need(key, Layers::VLAN, EditError::NoVlan)?;
    let tags = key.offsets.vlan_tags.saturating_sub(1);
    // The tag that becomes outermost must be whole: checked before anything moves.
    fits(pkt.data(), 0, if tags >= 1 { 22 } else { 18 })?;
    if remove_bytes(pkt, 12, 4)? {
        // Zeros where a truncated frame ended may read as more headers.
        reextract(pkt.data(), key);
        return Ok(());
    }
    key.offsets.vlan_tags = tags;
    shift_offsets(key, -4);
    if tags >= 1 {
        let tci = be16(pkt.data(), 14);
        key.set_pos(pos::VLAN_VID, u128::from((tci & 0x0fff) | OFPVID_PRESENT));
        key.set_pos(pos::VLAN_PCP, u128::from(tci >> 13));
        if tags < 2 {
            key.layers.remove(Layers::VLAN_QINQ);
        }
    } else {
        key.set_pos(pos::VLAN_VID, 0);
        key.set_pos(pos::VLAN_PCP, 0);
        key.layers.remove(Layers::VLAN | Layers::VLAN_QINQ);
    }
    Ok(())
}

/// OFPAT_PUSH_MPLS: a new top label after any VLAN tags, the innermost ethertype becoming
/// `ethertype` (0x8847 or 0x8848). Label, TC and TTL are copied from the previous top label;
/// with none, label and TC are zero, BoS is set and the TTL comes from the IP header (zero
/// if the packet is not IP). The key then stops at the label, as `extract` does.
pub fn push_mpls<P: PacketBuf + ?Sized>(
    pkt: &mut P,
    key: &mut FlowKey,
    ethertype: u16,
) -> Result<(), EditError> {
    if ethertype != et::MPLS && ethertype != et::MPLS_MCAST {
        return Err(EditError::BadEthertype(ethertype));
    }
    need(key, Layers::ETH, EditError::NoEthernet)?;
    let l3 = usize::from(key.offsets.l3);
    let type_at = ethertype_at(key)?;
    let data = pkt.data();
    fits(data, 0, l3)?;
    let byte = |at: usize| data.get(at).copied().ok_or(EditError::Truncated);
    let (label, tc, ttl, bos) = if key.layers.contains(Layers::MPLS) {
        fits(data, l3, mpls::LABEL_LEN)?;
        let top = mpls::Label::new_unchecked(&data[l3..]);
        (top.label(), top.tc(), top.ttl(), false)
    } else if key.layers.contains(Layers::IPV4) {
        (0, 0, byte(l3 + ipv4::TTL_OFFSET)?, true)
    } else if key.layers.contains(Layers::IPV6) {
        (0, 0, byte(l3 + ipv6::HOP_LIMIT_OFFSET)?, true)
    } else {
        (0, 0, 0, true)
    };
    pkt.prepend(mpls::LABEL_LEN).ok_or(EditError::NoHeadroom)?;
    let data = pkt.data_mut();
    data.copy_within(4..4 + l3, 0);
    put32(
        data,
        l3,
        (label << 12) | (u32::from(tc) << 9) | (u32::from(bos) << 8) | u32::from(ttl),
    );
    put16(data, type_at, ethertype);
    clear_l3(key);
    key.set_pos(pos::ETH_TYPE, u128::from(ethertype));
    key.set_pos(pos::MPLS_LABEL, u128::from(label));
    key.set_pos(pos::MPLS_TC, u128::from(tc));
    key.set_pos(pos::MPLS_BOS, u128::from(bos));
    key.layers.insert(Layers::MPLS);
    Ok(())
}

/// OFPAT_POP_MPLS: removes the top label and sets the innermost ethertype to `ethertype`
/// (the caller's word for what lies beneath), then parses what is now exposed.
pub fn pop_mpls<P: PacketBuf + ?Sized>(
    pkt: &mut P,
    key: &mut FlowKey,
    ethertype: u16,
) -> Result<(), EditError> {
    need(key, Layers::MPLS, EditError::NoMpls)?;
    let l3 = usize::from(key.offsets.l3);
    let type_at = ethertype_at(key)?;
    fits(pkt.data(), l3, mpls::LABEL_LEN)?;
    remove_bytes(pkt, l3, mpls::LABEL_LEN)?;
    let data = pkt.data_mut();
    put16(data, type_at, ethertype);
    reextract(data, key);
    Ok(())
}

/// OFPAT_PUSH_PBB: MAC-in-MAC encapsulation. The I-TAG is inserted right after the MAC
/// addresses with `ethertype` (only 0x88e7) before it, followed by the customer's own
/// addresses (C-DA, C-SA) and the rest of the original frame, tags included. The backbone
/// addresses start as copies of the customer's (OpenFlow 1.3 table "fields copied on push");
/// the I-SID is copied from an existing I-TAG or zero, the I-PCP from the outermost VLAN PCP
/// or zero. The key becomes that of the new frame: eth_type 0x88e7, no VLAN, pbb_isid.
pub fn push_pbb<P: PacketBuf + ?Sized>(
    pkt: &mut P,
    key: &mut FlowKey,
    ethertype: u16,
) -> Result<(), EditError> {
    if ethertype != et::PBB {
        return Err(EditError::BadEthertype(ethertype));
    }
    need(key, Layers::ETH, EditError::NoEthernet)?;
    fits(pkt.data(), 0, 14)?;
    let isid = if key.layers.contains(Layers::PBB) {
        key.get(Field::PbbIsid) as u32
    } else {
        0
    };
    let pcp = if key.layers.contains(Layers::VLAN) {
        key.get(Field::VlanPcp) as u8
    } else {
        0
    };
    pkt.prepend(18).ok_or(EditError::NoHeadroom)?;
    let data = pkt.data_mut();
    data.copy_within(18..30, 0);
    put16(data, 12, et::PBB);
    put32(data, 14, (u32::from(pcp) << 29) | isid);

    let mut fresh = FlowKey::default();
    fresh.words[..pos::ETH_DST.word as usize]
        .copy_from_slice(&key.words[..pos::ETH_DST.word as usize]);
    fresh.set_pos(pos::ETH_DST, key.get_pos(pos::ETH_DST));
    fresh.set_pos(pos::ETH_SRC, key.get_pos(pos::ETH_SRC));
    fresh.set_pos(pos::ETH_TYPE, u128::from(et::PBB));
    fresh.set_pos(pos::PBB_ISID, u128::from(isid));
    fresh.layers = Layers::ETH | Layers::PBB;
    fresh.offsets.l3 = 14;
    *key = fresh;
    Ok(())
}

/// OFPAT_POP_PBB: drops the backbone header (B-DA, B-SA, any B-TAG, ethertype, I-TAG),
/// leaving the customer frame, and parses it.
pub fn pop_pbb<P: PacketBuf + ?Sized>(pkt: &mut P, key: &mut FlowKey) -> Result<(), EditError> {
    need(key, Layers::PBB, EditError::NoPbb)?;
    let customer = usize::from(key.offsets.l3) + 4;
    fits(pkt.data(), customer, 14)?;
    remove_bytes(pkt, 0, customer)?;
    reextract(pkt.data(), key);
    Ok(())
}

/// OFPAT_SET_MPLS_TTL on the top label.
pub fn set_mpls_ttl<P: PacketBuf + ?Sized>(
    pkt: &mut P,
    key: &FlowKey,
    ttl: u8,
) -> Result<(), EditError> {
    need(key, Layers::MPLS, EditError::NoMpls)?;
    let at = usize::from(key.offsets.l3) + 3;
    write(pkt.data_mut(), at, &[ttl], &[])
}

/// OFPAT_DEC_MPLS_TTL. A TTL of 0 or 1 gives [`EditError::InvalidTtl`] and is left alone.
pub fn dec_mpls_ttl<P: PacketBuf + ?Sized>(pkt: &mut P, key: &FlowKey) -> Result<(), EditError> {
    need(key, Layers::MPLS, EditError::NoMpls)?;
    let at = usize::from(key.offsets.l3) + 3;
    let data = pkt.data_mut();
    fits(data, at, 1)?;
    if data[at] <= 1 {
        return Err(EditError::InvalidTtl);
    }
    data[at] -= 1;
    Ok(())
}

fn nw_ttl_at(key: &FlowKey) -> Result<(usize, Option<Csum>), EditError> {
    let l3 = usize::from(key.offsets.l3);
    if key.layers.contains(Layers::IPV4) {
        Ok((l3 + ipv4::TTL_OFFSET, Some(ipv4_csum(key))))
    } else if key.layers.contains(Layers::IPV6) {
        Ok((l3 + ipv6::HOP_LIMIT_OFFSET, None))
    } else {
        Err(EditError::NoIp)
    }
}

fn write_ttl(data: &mut [u8], at: usize, csum: Option<Csum>, ttl: u8) -> Result<(), EditError> {
    match csum {
        Some(c) => write(data, at, &[ttl], &[c]),
        None => write(data, at, &[ttl], &[]),
    }
}

/// OFPAT_SET_NW_TTL: IPv4 TTL (checksum patched) or IPv6 hop limit.
pub fn set_nw_ttl<P: PacketBuf + ?Sized>(
    pkt: &mut P,
    key: &FlowKey,
    ttl: u8,
) -> Result<(), EditError> {
    let (at, csum) = nw_ttl_at(key)?;
    write_ttl(pkt.data_mut(), at, csum, ttl)
}

/// OFPAT_DEC_NW_TTL. A TTL of 0 or 1 gives [`EditError::InvalidTtl`] and is left alone:
/// the packet must go to the controller (OFPR_INVALID_TTL) or be dropped, not forwarded.
pub fn dec_nw_ttl<P: PacketBuf + ?Sized>(pkt: &mut P, key: &FlowKey) -> Result<(), EditError> {
    let (at, csum) = nw_ttl_at(key)?;
    let data = pkt.data_mut();
    fits(data, at, 1)?;
    let ttl = data[at];
    if ttl <= 1 {
        return Err(EditError::InvalidTtl);
    }
    write_ttl(data, at, csum, ttl - 1)
}

/// What holds the TTL just inside the top MPLS label.
enum InnerTtl {
    /// The TTL byte of the second label.
    Label(usize),
    /// An IPv4 header at this offset (TTL and checksum inside).
    Ipv4(usize),
    /// An IPv6 header at this offset.
    Ipv6(usize),
}

/// The next-to-outermost TTL under the top label: the next label, or an IP header under a
/// bottom-of-stack label, told apart by its version nibble as MPLS carries no type.
fn inner_ttl(data: &[u8], key: &FlowKey) -> Result<InnerTtl, EditError> {
    need(key, Layers::MPLS, EditError::NoMpls)?;
    let l3 = usize::from(key.offsets.l3);
    let inner = l3 + mpls::LABEL_LEN;
    fits(data, l3, mpls::LABEL_LEN)?;
    if !mpls::Label::new_unchecked(&data[l3..]).bos() {
        fits(data, inner, mpls::LABEL_LEN).map_err(|_| EditError::NoInnerTtl)?;
        return Ok(InnerTtl::Label(inner + 3));
    }
    let rest = &data[inner..];
    match rest.first().map(|b| b >> 4) {
        Some(4) if ipv4::Packet::new_checked(rest).is_ok() => Ok(InnerTtl::Ipv4(inner)),
        Some(6) if ipv6::Packet::new_checked(rest).is_ok() => Ok(InnerTtl::Ipv6(inner)),
        _ => Err(EditError::NoInnerTtl),
    }
}

/// OFPAT_COPY_TTL_OUT: next-to-outermost TTL to the top MPLS label (MPLS-MPLS, IP-MPLS).
/// IP-in-IP is not parsed, so an IP packet without MPLS gives [`EditError::NoMpls`].
pub fn copy_ttl_out<P: PacketBuf + ?Sized>(pkt: &mut P, key: &FlowKey) -> Result<(), EditError> {
    let data = pkt.data_mut();
    let ttl = match inner_ttl(data, key)? {
        InnerTtl::Label(at) => data[at],
        InnerTtl::Ipv4(ip) => data[ip + ipv4::TTL_OFFSET],
        InnerTtl::Ipv6(ip) => data[ip + ipv6::HOP_LIMIT_OFFSET],
    };
    data[usize::from(key.offsets.l3) + 3] = ttl;
    Ok(())
}

/// OFPAT_COPY_TTL_IN: top MPLS label's TTL to the next-to-outermost header (MPLS-MPLS,
/// MPLS-IP, the IPv4 checksum patched).
pub fn copy_ttl_in<P: PacketBuf + ?Sized>(pkt: &mut P, key: &FlowKey) -> Result<(), EditError> {
    let data = pkt.data_mut();
    let inner = inner_ttl(data, key)?;
    let ttl = data[usize::from(key.offsets.l3) + 3];
    match inner {
        InnerTtl::Label(at) => data[at] = ttl,
        InnerTtl::Ipv4(ip) => write(
            data,
            ip + ipv4::TTL_OFFSET,
            &[ttl],
            &[Csum::ones(ip + ipv4::CHECKSUM_OFFSET, ip)],
        )?,
        InnerTtl::Ipv6(ip) => data[ip + ipv6::HOP_LIMIT_OFFSET] = ttl,
    }
    Ok(())
}

/// The MPLS TTL of the top label, for callers that report it (it is not a match field).
pub fn mpls_ttl(data: &[u8], key: &FlowKey) -> Option<u8> {
    if !key.layers.contains(Layers::MPLS) {
        return None;
    }
    data.get(usize::from(key.offsets.l3) + 3).copied()
}

/// The IPv4 TTL or IPv6 hop limit, for callers that report it.
pub fn nw_ttl(data: &[u8], key: &FlowKey) -> Option<u8> {
    let (at, _) = nw_ttl_at(key).ok()?;
    data.get(at).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::VecBuf;
    use crate::extract::extract;

    /// Ethernet, IPv4 (TTL 64), UDP with the given checksum, 2 bytes of payload.
    fn udp_frame(udp_csum: u16) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        let mut ip = [
            0x45, 0, 0, 30, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let c = checksum::internet(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0, 7, 0, 9, 0, 10]);
        f.extend_from_slice(&udp_csum.to_be_bytes());
        f.extend_from_slice(&[0xaa, 0xbb]);
        f
    }

    #[test]
    fn refuses_what_openflow_refuses() {
        let f = udp_frame(0);
        let mut buf = VecBuf::new(&f);
        let mut key = extract(&f, 1);
        for field in [
            Field::InPort,
            Field::InPhyPort,
            Field::Metadata,
            Field::Ipv6Exthdr,
        ] {
            assert_eq!(
                set_field(&mut buf, &mut key, field, 1),
                Err(EditError::NotSettable(field))
            );
        }
        assert_eq!(
            set_field(&mut buf, &mut key, Field::ArpOp, 1),
            Err(EditError::NoArp)
        );
        assert_eq!(
            set_field(&mut buf, &mut key, Field::TcpSrc, 1),
            Err(EditError::NoTcp)
        );
        assert_eq!(
            set_field(&mut buf, &mut key, Field::VlanVid, 1),
            Err(EditError::NoVlan)
        );
        assert_eq!(
            push_vlan(&mut buf, &mut key, 0x0800),
            Err(EditError::BadEthertype(0x0800))
        );
        assert_eq!(
            push_mpls(&mut buf, &mut key, 0x8100),
            Err(EditError::BadEthertype(0x8100))
        );
        assert_eq!(
            push_pbb(&mut buf, &mut key, 0x8100),
            Err(EditError::BadEthertype(0x8100))
        );
        assert_eq!(pop_vlan(&mut buf, &mut key), Err(EditError::NoVlan));
        assert_eq!(pop_mpls(&mut buf, &mut key, 0x0800), Err(EditError::NoMpls));
        assert_eq!(pop_pbb(&mut buf, &mut key), Err(EditError::NoPbb));
        assert_eq!(copy_ttl_out(&mut buf, &key), Err(EditError::NoMpls));
        assert_eq!(buf.data(), &f[..]);
        assert_eq!(key, extract(&f, 1));
    }

    #[test]
    fn push_without_headroom_fails_cleanly() {
        let f = udp_frame(0);
        let mut buf = VecBuf::with_headroom(&f, 2);
        let mut key = extract(&f, 1);
        assert_eq!(
            push_vlan(&mut buf, &mut key, 0x8100),
            Err(EditError::NoHeadroom)
        );
        assert_eq!(
            push_pbb(&mut buf, &mut key, 0x88e7),
            Err(EditError::NoHeadroom)
        );
        assert_eq!(buf.data(), &f[..]);
        assert_eq!(key, extract(&f, 1));
    }

    #[test]
    fn udp_zero_checksum_stays_zero_and_nonzero_is_patched() {
        let f = udp_frame(0);
        let mut buf = VecBuf::new(&f);
        let mut key = extract(&f, 1);
        set_field(&mut buf, &mut key, Field::Ipv4Dst, 0x0a00_0063).unwrap();
        set_field(&mut buf, &mut key, Field::UdpDst, 53).unwrap();
        assert_eq!(&buf.data()[40..42], &[0, 0]);
        let ip = ipv4::Packet::new_checked(&buf.data()[14..]).unwrap();
        assert!(ip.verify_checksum());

        // A checksum of 0xffff ("zero" computed) is patched, never turned into 0.
        let mut f = udp_frame(0);
        let seg = f[34..].to_vec();
        let c = checksum::transport_v4([10, 0, 0, 1], [10, 0, 0, 2], 17, &seg);
        f[40..42].copy_from_slice(&c.to_be_bytes());
        let mut buf = VecBuf::new(&f);
        let mut key = extract(&f, 1);
        set_field(&mut buf, &mut key, Field::UdpSrc, 1000).unwrap();
        let d = buf.data();
        let mut seg = d[34..].to_vec();
        seg[6..8].fill(0);
        let want = checksum::transport_v4([10, 0, 0, 1], [10, 0, 0, 2], 17, &seg);
        assert_eq!(be16(d, 40), if want == 0 { 0xffff } else { want });
    }

    #[test]
    fn ttl_actions() {
        let f = udp_frame(0);
        let mut buf = VecBuf::new(&f);
        let mut key = extract(&f, 1);
        dec_nw_ttl(&mut buf, &key).unwrap();
        assert_eq!(nw_ttl(buf.data(), &key), Some(63));
        set_nw_ttl(&mut buf, &key, 1).unwrap();
        assert_eq!(dec_nw_ttl(&mut buf, &key), Err(EditError::InvalidTtl));
        assert_eq!(nw_ttl(buf.data(), &key), Some(1));
        assert!(ipv4::Packet::new_checked(&buf.data()[14..])
            .unwrap()
            .verify_checksum());

        set_nw_ttl(&mut buf, &key, 9).unwrap();
        push_mpls(&mut buf, &mut key, et::MPLS).unwrap();
        assert_eq!(
            mpls_ttl(buf.data(), &key),
            Some(9),
            "push_mpls copies the IP TTL"
        );
        set_mpls_ttl(&mut buf, &key, 2).unwrap();
        dec_mpls_ttl(&mut buf, &key).unwrap();
        assert_eq!(dec_mpls_ttl(&mut buf, &key), Err(EditError::InvalidTtl));
        copy_ttl_in(&mut buf, &key).unwrap();
        assert_eq!(buf.data()[18 + 8], 1, "IP TTL under the label");
        assert!(ipv4::Packet::new_checked(&buf.data()[18..])
            .unwrap()
            .verify_checksum());
        set_mpls_ttl(&mut buf, &key, 50).unwrap();
        copy_ttl_out(&mut buf, &key).unwrap();
        assert_eq!(mpls_ttl(buf.data(), &key), Some(1));
        assert_eq!(
            nw_ttl(buf.data(), &key),
            None,
            "no IP layer in the key under MPLS"
        );
    }

    /// Ethernet, IPv4, TCP (checksum filled) with `payload` bytes after the header.
    fn tcp_frame(payload: usize) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        let total = (20 + 20 + payload) as u16;
        let mut ip = [
            0x45, 0, 0, 0, 0, 1, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        let c = checksum::internet(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        let mut seg = vec![
            0x2b, 0x67, 0x08, 0xae, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0x20, 0,
        ];
        seg.extend_from_slice(&[0; 4]);
        seg.extend((0..payload).map(|i| i as u8 + 1));
        let c = checksum::transport_v4([10, 0, 0, 1], [10, 0, 0, 2], 6, &seg);
        seg[16..18].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&seg);
        f
    }

    /// Regression (os-ken set_field ip_proto): the TCP checksum stays right for the new
    /// protocol number in its pseudo-header, as a sender would have computed it.
    #[test]
    fn set_ip_proto_patches_the_pseudo_header_checksum() {
        let f = tcp_frame(8);
        let mut buf = VecBuf::new(&f);
        let mut key = extract(&f, 1);
        set_field(&mut buf, &mut key, Field::IpProto, 17).unwrap();
        let d = buf.data();
        assert_eq!(d[23], 17);
        assert!(ipv4::Packet::new_checked(&d[14..])
            .unwrap()
            .verify_checksum());
        let mut seg = d[34..].to_vec();
        seg[16..18].fill(0);
        let want = checksum::transport_v4([10, 0, 0, 1], [10, 0, 0, 2], 17, &seg);
        assert_eq!(be16(d, 34 + 16), want);
    }

    /// Regression (os-ken pop_mpls with a short packet): a popped minimum-size frame is
    /// padded back to 60 bytes with zeros; longer frames just lose the tag.
    #[test]
    fn pops_keep_minimum_size_frames() {
        // 14 + 20 + 20 = 54 bytes, padded to 60 by its sender.
        let mut plain = tcp_frame(0);
        plain.resize(60, 0);
        let mut buf = VecBuf::new(&plain);
        let mut key = extract(&plain, 1);
        push_mpls(&mut buf, &mut key, et::MPLS).unwrap();
        assert_eq!(buf.data().len(), 64);
        // What the wire gives: the 64-byte MPLS frame.
        let tagged = buf.data().to_vec();
        let mut buf = VecBuf::new(&tagged);
        let mut key = extract(&tagged, 1);
        pop_mpls(&mut buf, &mut key, et::IPV4).unwrap();
        assert_eq!(buf.data(), &plain[..]);
        assert_eq!(key, extract(&plain, 1));

        // 60 bytes with a VLAN tag: 56 after the pop, padded to 60.
        let mut short = tcp_frame(0);
        short.resize(56, 0xee);
        let mut vbuf = VecBuf::new(&short);
        let mut vkey = extract(&short, 1);
        push_vlan(&mut vbuf, &mut vkey, et::VLAN).unwrap();
        let tagged = vbuf.data().to_vec();
        assert_eq!(tagged.len(), 60);
        let mut vbuf = VecBuf::new(&tagged);
        let mut vkey = extract(&tagged, 1);
        pop_vlan(&mut vbuf, &mut vkey).unwrap();
        let mut want = short.clone();
        want.resize(60, 0);
        assert_eq!(vbuf.data(), &want[..]);
        assert_eq!(vkey, extract(&want, 1));

        // Long frames shrink; runts are not padded.
        for len in [200usize, 40] {
            let mut f = tcp_frame(0);
            f.resize(len.max(f.len()), 0);
            f.truncate(len);
            let mut b = VecBuf::new(&f);
            let mut k = extract(&f, 1);
            push_vlan(&mut b, &mut k, et::VLAN).unwrap();
            pop_vlan(&mut b, &mut k).unwrap();
            assert_eq!(b.data(), &f[..], "{len} bytes");
        }
    }
}
