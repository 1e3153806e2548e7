//! TCP header (RFC 9293).

use super::field::{be16, be32, put16, put32, view};
use crate::error::WireError;

pub const MIN_HEADER_LEN: usize = 20;
pub const CHECKSUM_OFFSET: usize = 16;

view!(
    /// A TCP header with options and payload.
    Packet
);

impl<T: AsRef<[u8]>> Packet<T> {
    fn check(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(WireError::TcpTruncated);
        }
        let hl = self.header_len();
        if hl < MIN_HEADER_LEN || hl > b.len() {
            return Err(WireError::TcpBadHeaderLen);
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
    pub fn seq(&self) -> u32 {
        be32(self.buffer.as_ref(), 4)
    }

    #[inline]
    pub fn ack(&self) -> u32 {
        be32(self.buffer.as_ref(), 8)
    }

    /// Header length in bytes, from the data offset.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[12] >> 4) * 4
    }

    /// The 9 flag bits (NS through FIN).
    #[inline]
    pub fn flags(&self) -> u16 {
        be16(self.buffer.as_ref(), 12) & 0x01ff
    }

    #[inline]
    pub fn window(&self) -> u16 {
        be16(self.buffer.as_ref(), 14)
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), CHECKSUM_OFFSET)
    }

    #[inline]
    pub fn urgent(&self) -> u16 {
        be16(self.buffer.as_ref(), 18)
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
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
    pub fn set_seq(&mut self, v: u32) {
        put32(self.buffer.as_mut(), 4, v);
    }

    #[inline]
    pub fn set_ack(&mut self, v: u32) {
        put32(self.buffer.as_mut(), 8, v);
    }

    /// Header length in bytes (multiple of 4) and the flag bits, which share a word.
    #[inline]
    pub fn set_header_len_and_flags(&mut self, header_len: usize, flags: u16) {
        let v = (((header_len / 4) as u16) << 12) | (flags & 0x01ff);
        put16(self.buffer.as_mut(), 12, v);
    }

    #[inline]
    pub fn set_window(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 14, v);
    }

    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), CHECKSUM_OFFSET, v);
    }

    #[inline]
    pub fn set_urgent(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 18, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let mut b = [0u8; 26];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_src_port(1234);
        p.set_dst_port(80);
        p.set_seq(1);
        p.set_ack(2);
        p.set_header_len_and_flags(24, 0x012);
        p.set_window(1000);
        p.set_checksum(0xbeef);
        p.set_urgent(3);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            (p.src_port(), p.dst_port(), p.seq(), p.ack()),
            (1234, 80, 1, 2)
        );
        assert_eq!(
            (
                p.header_len(),
                p.flags(),
                p.window(),
                p.checksum(),
                p.urgent()
            ),
            (24, 0x12, 1000, 0xbeef, 3)
        );
        assert_eq!(p.payload().len(), 2);
        assert_eq!(
            Packet::new_checked(&b[..19]).unwrap_err(),
            WireError::TcpTruncated
        );
        assert_eq!(
            Packet::new_checked(&b[..22]).unwrap_err(),
            WireError::TcpBadHeaderLen
        );
    }
}
