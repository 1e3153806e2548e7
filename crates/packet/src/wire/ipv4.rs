//! IPv4 header (RFC 791) with options and fragmentation fields.

use super::checksum;
use super::field::{array, be16, put16, view};
use crate::error::WireError;

/// Header without options.
pub const MIN_HEADER_LEN: usize = 20;
/// Offset of the header checksum.
pub const CHECKSUM_OFFSET: usize = 10;
/// Offset of the TTL byte.
pub const TTL_OFFSET: usize = 8;
/// Offset of the protocol byte.
pub const PROTOCOL_OFFSET: usize = 9;

view!(
    /// An IPv4 header, its options and as much payload as the buffer holds.
    Packet
);

impl<T: AsRef<[u8]>> Packet<T> {
    /// The header (with options) must be all there and self-consistent; the payload may be
    /// cut short (a truncated capture still has meaningful addresses).
    fn check(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(WireError::Ipv4Truncated);
        }
        if b[0] >> 4 != 4 {
            return Err(WireError::Ipv4BadVersion);
        }
        let hl = self.header_len();
        if hl < MIN_HEADER_LEN {
            return Err(WireError::Ipv4BadHeaderLen);
        }
        if b.len() < hl {
            return Err(WireError::Ipv4Truncated);
        }
        if usize::from(self.total_len()) < hl {
            return Err(WireError::Ipv4BadTotalLen);
        }
        Ok(())
    }

    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    /// Header length in bytes, from the IHL.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[0] & 0x0f) * 4
    }

    #[inline]
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[1] >> 2
    }

    #[inline]
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[1] & 3
    }

    #[inline]
    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }

    #[inline]
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), 4)
    }

    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.buffer.as_ref()[6] & 0x40 != 0
    }

    #[inline]
    pub fn more_frags(&self) -> bool {
        self.buffer.as_ref()[6] & 0x20 != 0
    }

    /// Fragment offset in 8-byte units.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        be16(self.buffer.as_ref(), 6) & 0x1fff
    }

    /// Any fragment of a larger datagram, the first included.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }

    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[TTL_OFFSET]
    }

    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[PROTOCOL_OFFSET]
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), CHECKSUM_OFFSET)
    }

    #[inline]
    pub fn src(&self) -> [u8; 4] {
        array(self.buffer.as_ref(), 12)
    }

    #[inline]
    pub fn dst(&self) -> [u8; 4] {
        array(self.buffer.as_ref(), 16)
    }

    /// The options between the fixed header and the payload.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[MIN_HEADER_LEN..self.header_len()]
    }

    /// The payload up to the total length, or to the end of the buffer when cut short:
    /// Ethernet padding after a short datagram is not payload.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = usize::from(self.total_len()).min(b.len());
        &b[self.header_len()..end]
    }

    /// True when the header checksum sums to zero.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(&self.buffer.as_ref()[..self.header_len()])) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets version 4 and the header length in bytes (a multiple of 4).
    #[inline]
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[0] = 0x40 | ((header_len / 4) as u8 & 0x0f);
    }

    #[inline]
    pub fn set_dscp(&mut self, dscp: u8) {
        let b = &mut self.buffer.as_mut()[1];
        *b = (*b & 3) | (dscp << 2);
    }

    #[inline]
    pub fn set_ecn(&mut self, ecn: u8) {
        let b = &mut self.buffer.as_mut()[1];
        *b = (*b & !3) | (ecn & 3);
    }

    #[inline]
    pub fn set_total_len(&mut self, len: u16) {
        put16(self.buffer.as_mut(), 2, len);
    }

    #[inline]
    pub fn set_ident(&mut self, ident: u16) {
        put16(self.buffer.as_mut(), 4, ident);
    }

    /// Flags and fragment offset (in 8-byte units) together, as they share a word.
    #[inline]
    pub fn set_frag(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let v = (u16::from(dont_frag) << 14) | (u16::from(more_frags) << 13) | (offset & 0x1fff);
        put16(self.buffer.as_mut(), 6, v);
    }

    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[TTL_OFFSET] = ttl;
    }

    #[inline]
    pub fn set_protocol(&mut self, proto: u8) {
        self.buffer.as_mut()[PROTOCOL_OFFSET] = proto;
    }

    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        put16(self.buffer.as_mut(), CHECKSUM_OFFSET, c);
    }

    #[inline]
    pub fn set_src(&mut self, ip: [u8; 4]) {
        self.buffer.as_mut()[12..16].copy_from_slice(&ip);
    }

    #[inline]
    pub fn set_dst(&mut self, ip: [u8; 4]) {
        self.buffer.as_mut()[16..20].copy_from_slice(&ip);
    }

    /// Recomputes the header checksum from scratch.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = checksum::internet(&self.buffer.as_ref()[..hl]);
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> [u8; 28] {
        let mut b = [0u8; 28];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_version_and_header_len(24);
        p.set_dscp(46);
        p.set_ecn(1);
        p.set_total_len(26);
        p.set_ident(0x1234);
        p.set_frag(false, true, 0);
        p.set_ttl(64);
        p.set_protocol(17);
        p.set_src([10, 0, 0, 1]);
        p.set_dst([10, 0, 0, 2]);
        p.fill_checksum();
        b
    }

    #[test]
    fn fields_round_trip() {
        let b = sample();
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            (p.version(), p.header_len(), p.dscp(), p.ecn()),
            (4, 24, 46, 1)
        );
        assert_eq!(
            (p.total_len(), p.ident(), p.ttl(), p.protocol()),
            (26, 0x1234, 64, 17)
        );
        assert!(p.more_frags() && !p.dont_frag() && p.is_fragment());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!((p.src(), p.dst()), ([10, 0, 0, 1], [10, 0, 0, 2]));
        assert_eq!(p.options().len(), 4);
        assert_eq!(
            p.payload().len(),
            2,
            "payload stops at total length, not at buffer end"
        );
        assert!(p.verify_checksum());
    }

    #[test]
    fn rejects_bad_headers() {
        let b = sample();
        assert_eq!(
            Packet::new_checked(&b[..19]).unwrap_err(),
            WireError::Ipv4Truncated
        );
        assert_eq!(
            Packet::new_checked(&b[..22]).unwrap_err(),
            WireError::Ipv4Truncated
        );
        let mut v = b;
        v[0] = 0x65;
        assert_eq!(
            Packet::new_checked(&v[..]).unwrap_err(),
            WireError::Ipv4BadVersion
        );
        v[0] = 0x44;
        assert_eq!(
            Packet::new_checked(&v[..]).unwrap_err(),
            WireError::Ipv4BadHeaderLen
        );
        let mut v = b;
        v[2] = 0;
        v[3] = 10;
        assert_eq!(
            Packet::new_checked(&v[..]).unwrap_err(),
            WireError::Ipv4BadTotalLen
        );
    }
}
