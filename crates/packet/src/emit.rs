//! Frames made from field values: the packet a flow-syntax description
//! (`in_port=1,tcp,nw_src=10.0.0.1,tp_dst=80`) stands for, so that a trace or a test can
//! run a real frame through the pipeline without capturing one.
//!
//! The layers come from eth_type and ip_proto (and vlan_vid for a tag); every other field
//! is written with [`crate::set_field`], the same edit the pipeline's set-field action
//! uses, so checksums are right and the frame extracts back to the values given. Fields
//! left out are zero, except those a host would never send as zero: IP TTL/hop limit 64,
//! ICMP echo request, ARP request, TCP SYN. Frames are padded to 60 bytes; ICMP echoes carry
//! 56 bytes of payload, as `ping` sends.

use crate::buf::VecBuf;
use crate::error::EditError;
use crate::key::{Field, FlowKey, OFPVID_PRESENT};
use crate::wire::checksum;
use crate::PacketBuf;

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const ETH_ARP: u16 = 0x0806;
const ETH_VLAN: u16 = 0x8100;

/// Builds the frame whose headers hold `fields` (exact values; in_port is ignored: it is
/// not in the frame). Returns the frame and its key (with in_port 0), or the field that
/// cannot be written and why: [`EditError::NotSettable`] for fields that are not part of a
/// frame (metadata, in_phy_port, tunnel_id, ipv6_exthdr), the set-field error for a field
/// the frame's headers lack (tp_dst without tcp, udp or sctp...).
pub fn frame_from_fields(
    fields: &[(Field, u128)],
) -> Result<(Vec<u8>, FlowKey), (Field, EditError)> {
    let get = |f: Field| fields.iter().find(|(g, _)| *g == f).map(|&(_, v)| v);
    let eth_type = get(Field::EthType).unwrap_or(0) as u16;
    let proto = get(Field::IpProto).unwrap_or(0) as u8;
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&eth_type.to_be_bytes());
    match eth_type {
        ETH_IPV4 => {
            let l4 = l4_skeleton(proto, false);
            let total = (20 + l4.len()) as u16;
            let mut ip = [0u8; 20];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            ip[8] = 64;
            ip[9] = proto;
            let c = checksum::internet(&ip);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&ip);
            let start = f.len();
            f.extend_from_slice(&l4);
            l4_checksum(&mut f[start..], proto, |seg| {
                checksum::transport_v4([0; 4], [0; 4], proto, seg)
            });
        }
        ETH_IPV6 => {
            let l4 = l4_skeleton(proto, true);
            let mut ip = [0u8; 40];
            ip[0] = 0x60;
            ip[4..6].copy_from_slice(&(l4.len() as u16).to_be_bytes());
            ip[6] = proto;
            ip[7] = 64;
            f.extend_from_slice(&ip);
            let start = f.len();
            f.extend_from_slice(&l4);
            l4_checksum(&mut f[start..], proto, |seg| {
                checksum::transport_v6([0; 16], [0; 16], proto, seg)
            });
        }
        ETH_ARP => {
            // Ethernet/IPv4 request: htype 1, ptype 0x0800, hlen 6, plen 4, op 1.
            f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
            f.extend_from_slice(&[0; 20]);
        }
        _ => {}
    }
    while f.len() < 60 {
        f.push(0);
    }
    let mut pkt = VecBuf::new(&f);
    let mut key = crate::extract(&f, 0);
    if let Some(vid) = get(Field::VlanVid).filter(|v| v & u128::from(OFPVID_PRESENT) != 0) {
        crate::push_vlan(&mut pkt, &mut key, ETH_VLAN).map_err(|e| (Field::VlanVid, e))?;
        crate::set_field(&mut pkt, &mut key, Field::VlanVid, vid)
            .map_err(|e| (Field::VlanVid, e))?;
    }
    for &(field, value) in fields {
        match field {
            Field::InPort | Field::EthType | Field::IpProto | Field::VlanVid => {}
            Field::Metadata | Field::InPhyPort | Field::TunnelId | Field::Ipv6Exthdr => {
                return Err((field, EditError::NotSettable(field)))
            }
            _ => crate::set_field(&mut pkt, &mut key, field, value).map_err(|e| (field, e))?,
        }
    }
    Ok((pkt.data().to_vec(), key))
}

/// The L4 header (and ICMP echo payload) for `proto`, checksum zero.
fn l4_skeleton(proto: u8, v6: bool) -> Vec<u8> {
    match proto {
        // TCP: data offset 5, SYN, window 65535.
        6 => {
            let mut h = vec![0u8; 20];
            h[12] = 5 << 4;
            h[13] = 0x02;
            h[14..16].copy_from_slice(&[0xff, 0xff]);
            h
        }
        17 => {
            let mut h = vec![0u8; 8];
            h[4..6].copy_from_slice(&8u16.to_be_bytes());
            h
        }
        132 => vec![0u8; 12],
        // ICMP echo request (type 8, or 128 for ICMPv6), id 1, seq 1, 56 bytes of data.
        1 | 58 => {
            let mut h = vec![0u8; 8 + 56];
            h[0] = if v6 { 128 } else { 8 };
            h[5] = 1;
            h[7] = 1;
            for (i, b) in h[8..].iter_mut().enumerate() {
                *b = i as u8;
            }
            h
        }
        _ => Vec::new(),
    }
}

/// Fills the checksum of the L4 segment: `pseudo` computes it for TCP/UDP/ICMPv6, ICMPv4
/// has none.
fn l4_checksum(seg: &mut [u8], proto: u8, pseudo: impl Fn(&[u8]) -> u16) {
    let at = match proto {
        6 => 16,
        17 => 6,
        1 => {
            let c = checksum::internet(seg);
            seg[2..4].copy_from_slice(&c.to_be_bytes());
            return;
        }
        58 => 2,
        _ => return,
    };
    let c = pseudo(seg);
    seg[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tcp_frame_extracts_to_the_values_given() {
        let fields = [
            (Field::EthType, 0x0800),
            (Field::IpProto, 6),
            (Field::EthSrc, 0x0200_0000_0001),
            (Field::Ipv4Src, 0x0a00_0001),
            (Field::Ipv4Dst, 0x0a00_0002),
            (Field::TcpDst, 80),
            (Field::VlanVid, u128::from(OFPVID_PRESENT | 10)),
        ];
        let (f, _) = frame_from_fields(&fields).unwrap();
        let k = crate::extract(&f, 7);
        for (field, v) in fields {
            assert_eq!(k.get(field), v, "{field:?}");
        }
        assert_eq!(k.get(Field::InPort), 7);
        // Checksums hold: IPv4 header sums to zero, TCP with its pseudo-header too.
        let ip = &f[18..38];
        assert_eq!(checksum::internet(ip), 0);
        assert_eq!(
            checksum::transport_v4([10, 0, 0, 1], [10, 0, 0, 2], 6, &f[38..58]),
            0
        );
    }

    #[test]
    fn an_icmp_echo_is_what_ping_sends() {
        let (f, _) = frame_from_fields(&[(Field::EthType, 0x0800), (Field::IpProto, 1)]).unwrap();
        assert_eq!(f.len(), 14 + 20 + 64);
        let k = crate::extract(&f, 1);
        assert_eq!(k.get(Field::Icmpv4Type), 8);
        assert_eq!(checksum::internet(&f[34..]), 0);
    }

    #[test]
    fn fields_the_headers_lack_are_refused() {
        let e = frame_from_fields(&[(Field::EthType, 0x0800), (Field::TcpDst, 80)]).unwrap_err();
        assert_eq!(e.0, Field::TcpDst);
        assert_eq!(
            frame_from_fields(&[(Field::Metadata, 1)]).unwrap_err(),
            (Field::Metadata, EditError::NotSettable(Field::Metadata))
        );
    }
}
