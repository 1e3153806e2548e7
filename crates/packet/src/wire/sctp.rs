//! SCTP common header (RFC 9260). Its checksum is a CRC32c over the whole packet, so it
//! cannot be updated incrementally.

use super::checksum;
use super::field::{be16, be32, put16, put32, view};
use crate::error::WireError;

pub const HEADER_LEN: usize = 12;
pub const CHECKSUM_OFFSET: usize = 8;

view!(
    /// An SCTP packet: common header and chunks.
    Packet
);

impl<T: AsRef<[u8]>> Packet<T> {
    fn check(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::SctpTruncated);
        }
        Ok(())
    }

    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 0)
    }

    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }

    #[inline]
    pub fn verification_tag(&self) -> u32 {
        be32(self.buffer.as_ref(), 4)
    }

    /// The CRC32c as a number (it is stored least-significant byte first).
    #[inline]
    pub fn checksum(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_le_bytes([b[8], b[9], b[10], b[11]])
    }

    /// CRC32c of the whole buffer with the checksum field taken as zero.
    pub fn compute_checksum(&self) -> u32 {
        let b = self.buffer.as_ref();
        let mut state = checksum::crc32c_raw(!0, &b[..CHECKSUM_OFFSET]);
        state = checksum::crc32c_raw(state, &[0; 4]);
        state = checksum::crc32c_raw(state, &b[HEADER_LEN..]);
        !state
    }

    #[inline]
    pub fn verify_checksum(&self) -> bool {
        self.checksum() == self.compute_checksum()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_src_port(&mut self, p: u16) {
        put16(self.buffer.as_mut(), 0, p);
    }

    #[inline]
    pub fn set_dst_port(&mut self, p: u16) {
        put16(self.buffer.as_mut(), 2, p);
    }

    #[inline]
    pub fn set_verification_tag(&mut self, v: u32) {
        put32(self.buffer.as_mut(), 4, v);
    }

    /// Recomputes the CRC32c over the whole buffer.
    pub fn fill_checksum(&mut self) {
        let c = self.compute_checksum();
        self.buffer.as_mut()[8..12].copy_from_slice(&c.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_crc() {
        let mut b = [0u8; 16];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_src_port(1);
        p.set_dst_port(2);
        p.set_verification_tag(3);
        p.fill_checksum();
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            (p.src_port(), p.dst_port(), p.verification_tag()),
            (1, 2, 3)
        );
        assert!(p.verify_checksum());
        let mut zeroed = b;
        zeroed[8..12].fill(0);
        assert_eq!(p.checksum(), checksum::crc32c(&zeroed));
        assert_eq!(
            Packet::new_checked(&b[..11]).unwrap_err(),
            WireError::SctpTruncated
        );
    }
}
