//! Ethernet II header.

use super::field::{array, be16, put16, view};
use crate::error::WireError;

/// Destination, source and ethertype.
pub const HEADER_LEN: usize = 14;

/// A MAC address in wire order.
pub type Mac = [u8; 6];

view!(
    /// An Ethernet II frame: destination, source, ethertype, payload.
    Frame
);

impl<T: AsRef<[u8]>> Frame<T> {
    fn check(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::EthernetTruncated);
        }
        Ok(())
    }

    #[inline]
    pub fn dst(&self) -> Mac {
        array(self.buffer.as_ref(), 0)
    }

    #[inline]
    pub fn src(&self) -> Mac {
        array(self.buffer.as_ref(), 6)
    }

    /// The outermost ethertype (a TPID when the frame is tagged).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), 12)
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    #[inline]
    pub fn set_dst(&mut self, mac: Mac) {
        self.buffer.as_mut()[0..6].copy_from_slice(&mac);
    }

    #[inline]
    pub fn set_src(&mut self, mac: Mac) {
        self.buffer.as_mut()[6..12].copy_from_slice(&mac);
    }

    #[inline]
    pub fn set_ethertype(&mut self, ethertype: u16) {
        put16(self.buffer.as_mut(), 12, ethertype);
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let mut b = [0u8; 20];
        let mut f = Frame::new_checked(&mut b[..]).unwrap();
        f.set_dst([1, 2, 3, 4, 5, 6]);
        f.set_src([7, 8, 9, 10, 11, 12]);
        f.set_ethertype(0x0800);
        f.payload_mut()[0] = 0x45;
        assert_eq!(f.dst(), [1, 2, 3, 4, 5, 6]);
        assert_eq!(f.src(), [7, 8, 9, 10, 11, 12]);
        assert_eq!(f.ethertype(), 0x0800);
        assert_eq!(f.payload().len(), 6);
        assert_eq!(b[14], 0x45);
        assert_eq!(
            Frame::new_checked(&b[..13]).unwrap_err(),
            WireError::EthernetTruncated
        );
    }
}
