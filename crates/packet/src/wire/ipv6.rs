//! IPv6 header (RFC 8200) and its extension headers: hop-by-hop, routing, destination
//! options (one generic view), fragment, authentication (RFC 4302) and ESP (RFC 4303).

use super::field::{array, be16, be32, put16, put32, view};
use crate::error::WireError;

pub const HEADER_LEN: usize = 40;
/// Offset of the next-header byte.
pub const NEXT_HEADER_OFFSET: usize = 6;
/// Offset of the hop limit byte.
pub const HOP_LIMIT_OFFSET: usize = 7;

view!(
    /// An IPv6 header and as much payload as the buffer holds.
    Packet
);

impl<T: AsRef<[u8]>> Packet<T> {
    fn check(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Ipv6Truncated);
        }
        if b[0] >> 4 != 6 {
            return Err(WireError::Ipv6BadVersion);
        }
        Ok(())
    }

    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (be16(self.buffer.as_ref(), 0) >> 4) as u8
    }

    #[inline]
    pub fn dscp(&self) -> u8 {
        self.traffic_class() >> 2
    }

    #[inline]
    pub fn ecn(&self) -> u8 {
        self.traffic_class() & 3
    }

    #[inline]
    pub fn flow_label(&self) -> u32 {
        be32(self.buffer.as_ref(), 0) & 0x000f_ffff
    }

    #[inline]
    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), 4)
    }

    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[NEXT_HEADER_OFFSET]
    }

    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[HOP_LIMIT_OFFSET]
    }

    #[inline]
    pub fn src(&self) -> [u8; 16] {
        array(self.buffer.as_ref(), 8)
    }

    #[inline]
    pub fn dst(&self) -> [u8; 16] {
        array(self.buffer.as_ref(), 24)
    }

    /// The payload up to the payload length, or to the end of the buffer when cut short.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = (HEADER_LEN + usize::from(self.payload_len())).min(b.len());
        &b[HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Version 6, traffic class and flow label at once, as they share the first word.
    #[inline]
    pub fn set_version_tc_flow(&mut self, traffic_class: u8, flow_label: u32) {
        let w = (6 << 28) | (u32::from(traffic_class) << 20) | (flow_label & 0x000f_ffff);
        put32(self.buffer.as_mut(), 0, w);
    }

    #[inline]
    pub fn set_traffic_class(&mut self, tc: u8) {
        let w = be32(self.buffer.as_ref(), 0);
        put32(
            self.buffer.as_mut(),
            0,
            (w & 0xf00f_ffff) | (u32::from(tc) << 20),
        );
    }

    #[inline]
    pub fn set_flow_label(&mut self, label: u32) {
        let w = be32(self.buffer.as_ref(), 0);
        put32(
            self.buffer.as_mut(),
            0,
            (w & 0xfff0_0000) | (label & 0x000f_ffff),
        );
    }

    #[inline]
    pub fn set_payload_len(&mut self, len: u16) {
        put16(self.buffer.as_mut(), 4, len);
    }

    #[inline]
    pub fn set_next_header(&mut self, nh: u8) {
        self.buffer.as_mut()[NEXT_HEADER_OFFSET] = nh;
    }

    #[inline]
    pub fn set_hop_limit(&mut self, hl: u8) {
        self.buffer.as_mut()[HOP_LIMIT_OFFSET] = hl;
    }

    #[inline]
    pub fn set_src(&mut self, ip: [u8; 16]) {
        self.buffer.as_mut()[8..24].copy_from_slice(&ip);
    }

    #[inline]
    pub fn set_dst(&mut self, ip: [u8; 16]) {
        self.buffer.as_mut()[24..40].copy_from_slice(&ip);
    }
}

view!(
    /// Hop-by-hop options, destination options or routing header: they share the
    /// next-header/length prefix, length in 8-byte units not counting the first 8.
    ExtHeader
);

impl<T: AsRef<[u8]>> ExtHeader<T> {
    fn check(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < 8 || b.len() < self.header_len() {
            return Err(WireError::Ipv6ExtTruncated);
        }
        Ok(())
    }

    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[0]
    }

    /// Whole header length in bytes.
    #[inline]
    pub fn header_len(&self) -> usize {
        (usize::from(self.buffer.as_ref()[1]) + 1) * 8
    }

    /// Routing type (routing header only).
    #[inline]
    pub fn routing_type(&self) -> u8 {
        self.buffer.as_ref()[2]
    }

    /// Segments left (routing header only).
    #[inline]
    pub fn segments_left(&self) -> u8 {
        self.buffer.as_ref()[3]
    }

    /// Options (hop-by-hop/destination) or type-specific data (routing).
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[2..self.header_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ExtHeader<T> {
    #[inline]
    pub fn set_next_header(&mut self, nh: u8) {
        self.buffer.as_mut()[0] = nh;
    }

    /// Length in 8-byte units beyond the first 8 bytes, as on the wire.
    #[inline]
    pub fn set_len_units(&mut self, units: u8) {
        self.buffer.as_mut()[1] = units;
    }
}

/// The fixed size of the fragment header.
pub const FRAGMENT_HEADER_LEN: usize = 8;

view!(
    /// The fragment extension header.
    FragmentHeader
);

impl<T: AsRef<[u8]>> FragmentHeader<T> {
    fn check(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < FRAGMENT_HEADER_LEN {
            return Err(WireError::Ipv6ExtTruncated);
        }
        Ok(())
    }

    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[0]
    }

    /// Offset in 8-byte units.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        be16(self.buffer.as_ref(), 2) >> 3
    }

    #[inline]
    pub fn more_frags(&self) -> bool {
        self.buffer.as_ref()[3] & 1 != 0
    }

    #[inline]
    pub fn ident(&self) -> u32 {
        be32(self.buffer.as_ref(), 4)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> FragmentHeader<T> {
    #[inline]
    pub fn set_next_header(&mut self, nh: u8) {
        self.buffer.as_mut()[0] = nh;
    }

    #[inline]
    pub fn set_frag(&mut self, offset: u16, more: bool) {
        put16(self.buffer.as_mut(), 2, (offset << 3) | u16::from(more));
    }

    #[inline]
    pub fn set_ident(&mut self, ident: u32) {
        put32(self.buffer.as_mut(), 4, ident);
    }
}

view!(
    /// The authentication header; its length field counts 4-byte units minus 2.
    AuthHeader
);

impl<T: AsRef<[u8]>> AuthHeader<T> {
    fn check(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < 12 || b.len() < self.header_len() {
            return Err(WireError::Ipv6ExtTruncated);
        }
        Ok(())
    }

    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[0]
    }

    #[inline]
    pub fn header_len(&self) -> usize {
        (usize::from(self.buffer.as_ref()[1]) + 2) * 4
    }

    #[inline]
    pub fn spi(&self) -> u32 {
        be32(self.buffer.as_ref(), 4)
    }

    #[inline]
    pub fn sequence(&self) -> u32 {
        be32(self.buffer.as_ref(), 8)
    }
}

view!(
    /// The ESP header: only SPI and sequence number are in the clear, so nothing after it
    /// can be parsed.
    EspHeader
);

impl<T: AsRef<[u8]>> EspHeader<T> {
    fn check(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < 8 {
            return Err(WireError::Ipv6ExtTruncated);
        }
        Ok(())
    }

    #[inline]
    pub fn spi(&self) -> u32 {
        be32(self.buffer.as_ref(), 0)
    }

    #[inline]
    pub fn sequence(&self) -> u32 {
        be32(self.buffer.as_ref(), 4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let mut b = [0u8; 50];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_version_tc_flow(0xb9, 0xabcde);
        p.set_payload_len(8);
        p.set_next_header(17);
        p.set_hop_limit(255);
        p.set_src([1; 16]);
        p.set_dst([2; 16]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            (p.version(), p.traffic_class(), p.dscp(), p.ecn()),
            (6, 0xb9, 0x2e, 1)
        );
        assert_eq!(
            (
                p.flow_label(),
                p.payload_len(),
                p.next_header(),
                p.hop_limit()
            ),
            (0xabcde, 8, 17, 255)
        );
        assert_eq!((p.src(), p.dst()), ([1; 16], [2; 16]));
        assert_eq!(p.payload().len(), 8);
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_traffic_class(0x04);
        p.set_flow_label(1);
        assert_eq!((p.traffic_class(), p.flow_label(), p.version()), (4, 1, 6));
        assert_eq!(
            Packet::new_checked(&b[..39]).unwrap_err(),
            WireError::Ipv6Truncated
        );
        b[0] = 0x45;
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            WireError::Ipv6BadVersion
        );
    }

    #[test]
    fn extension_headers() {
        let mut b = [0u8; 16];
        let mut h = ExtHeader::new_unchecked(&mut b[..]);
        h.set_next_header(6);
        h.set_len_units(1);
        let h = ExtHeader::new_checked(&b[..]).unwrap();
        assert_eq!(
            (h.next_header(), h.header_len(), h.data().len()),
            (6, 16, 14)
        );
        assert_eq!(
            ExtHeader::new_checked(&b[..12]).unwrap_err(),
            WireError::Ipv6ExtTruncated
        );

        let mut f = [0u8; 8];
        let mut fh = FragmentHeader::new_unchecked(&mut f[..]);
        fh.set_next_header(17);
        fh.set_frag(185, true);
        fh.set_ident(7);
        let fh = FragmentHeader::new_checked(&f[..]).unwrap();
        assert_eq!(
            (
                fh.next_header(),
                fh.frag_offset(),
                fh.more_frags(),
                fh.ident()
            ),
            (17, 185, true, 7)
        );

        let ah = [6u8, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 9];
        let ah = AuthHeader::new_checked(&ah[..]).unwrap();
        assert_eq!(
            (ah.next_header(), ah.header_len(), ah.spi(), ah.sequence()),
            (6, 12, 256, 9)
        );
        let esp = [0u8, 0, 0, 5, 0, 0, 0, 6];
        let esp = EspHeader::new_checked(&esp[..]).unwrap();
        assert_eq!((esp.spi(), esp.sequence()), (5, 6));
    }
}
