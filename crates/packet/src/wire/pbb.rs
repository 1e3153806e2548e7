//! 802.1ah Provider Backbone Bridging I-TAG. The view starts after the 0x88e7 ethertype:
//! the 4-byte I-TAG TCI, then the whole customer frame (C-DA, C-SA, its ethertype or tags).

use super::ethernet;
use super::field::{be24, view};
use crate::error::WireError;

/// I-PCP, I-DEI, UCA, reserved bits and the 24-bit I-SID.
pub const ITAG_LEN: usize = 4;

view!(
    /// The I-TAG and the encapsulated customer frame.
    ITag
);

impl<T: AsRef<[u8]>> ITag<T> {
    fn check(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < ITAG_LEN {
            return Err(WireError::PbbTruncated);
        }
        Ok(())
    }

    /// I-PCP, the backbone service priority.
    #[inline]
    pub fn pcp(&self) -> u8 {
        self.buffer.as_ref()[0] >> 5
    }

    #[inline]
    pub fn dei(&self) -> bool {
        self.buffer.as_ref()[0] & 0x10 != 0
    }

    /// Use customer addresses: set when the backbone MACs were derived from the customer's.
    #[inline]
    pub fn uca(&self) -> bool {
        self.buffer.as_ref()[0] & 0x08 != 0
    }

    /// Backbone service instance identifier.
    #[inline]
    pub fn isid(&self) -> u32 {
        be24(self.buffer.as_ref(), 1)
    }

    /// The customer frame after the I-TAG, as bytes.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[ITAG_LEN..]
    }

    /// The customer frame after the I-TAG, as an Ethernet view.
    #[inline]
    pub fn customer_frame(&self) -> Result<ethernet::Frame<&[u8]>, WireError> {
        ethernet::Frame::new_checked(self.payload())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ITag<T> {
    #[inline]
    pub fn set_pcp(&mut self, pcp: u8) {
        let b = &mut self.buffer.as_mut()[0];
        *b = (*b & 0x1f) | ((pcp & 7) << 5);
    }

    #[inline]
    pub fn set_dei(&mut self, dei: bool) {
        let b = &mut self.buffer.as_mut()[0];
        *b = (*b & !0x10) | (u8::from(dei) << 4);
    }

    #[inline]
    pub fn set_uca(&mut self, uca: bool) {
        let b = &mut self.buffer.as_mut()[0];
        *b = (*b & !0x08) | (u8::from(uca) << 3);
    }

    #[inline]
    pub fn set_isid(&mut self, isid: u32) {
        super::field::put24(self.buffer.as_mut(), 1, isid & 0x00ff_ffff);
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[ITAG_LEN..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let mut b = [0u8; 18];
        let mut t = ITag::new_checked(&mut b[..]).unwrap();
        t.set_pcp(3);
        t.set_dei(true);
        t.set_uca(true);
        t.set_isid(0x12_3456);
        t.payload_mut()[12] = 0x08;
        assert_eq!(
            (t.pcp(), t.dei(), t.uca(), t.isid()),
            (3, true, true, 0x12_3456)
        );
        assert_eq!(&b[..4], &[0x78, 0x12, 0x34, 0x56]);
        let t = ITag::new_checked(&b[..]).unwrap();
        assert_eq!(t.customer_frame().unwrap().ethertype(), 0x0800);
        assert_eq!(
            ITag::new_checked(&b[..3]).unwrap_err(),
            WireError::PbbTruncated
        );
        assert!(ITag::new_checked(&b[..10])
            .unwrap()
            .customer_frame()
            .is_err());
    }
}
