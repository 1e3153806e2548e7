//! 802.1Q (C-TAG, TPID 0x8100) and 802.1ad (S-TAG, TPID 0x88a8) tags. The view starts after
//! the TPID, so the same view reads both kinds: TCI then the encapsulated ethertype.

use super::field::{be16, put16, view};
use crate::error::WireError;

/// TCI and the inner ethertype.
pub const TAG_LEN: usize = 4;

view!(
    /// One VLAN tag, from the TCI to the ethertype it encapsulates.
    Tag
);

impl<T: AsRef<[u8]>> Tag<T> {
    fn check(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < TAG_LEN {
            return Err(WireError::VlanTruncated);
        }
        Ok(())
    }

    #[inline]
    pub fn tci(&self) -> u16 {
        be16(self.buffer.as_ref(), 0)
    }

    #[inline]
    pub fn pcp(&self) -> u8 {
        self.buffer.as_ref()[0] >> 5
    }

    /// Drop eligible indicator (was CFI in 802.1Q-2005).
    #[inline]
    pub fn dei(&self) -> bool {
        self.buffer.as_ref()[0] & 0x10 != 0
    }

    #[inline]
    pub fn vid(&self) -> u16 {
        self.tci() & 0x0fff
    }

    /// The ethertype of what follows the tag (another TPID for stacked tags).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[TAG_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Tag<T> {
    #[inline]
    pub fn set_tci(&mut self, tci: u16) {
        put16(self.buffer.as_mut(), 0, tci);
    }

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
    pub fn set_vid(&mut self, vid: u16) {
        let tci = (self.tci() & 0xf000) | (vid & 0x0fff);
        self.set_tci(tci);
    }

    #[inline]
    pub fn set_ethertype(&mut self, ethertype: u16) {
        put16(self.buffer.as_mut(), 2, ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let mut b = [0u8; 4];
        let mut t = Tag::new_checked(&mut b[..]).unwrap();
        t.set_vid(0xabc);
        t.set_pcp(5);
        t.set_dei(true);
        t.set_ethertype(0x86dd);
        assert_eq!(
            (t.vid(), t.pcp(), t.dei(), t.ethertype()),
            (0xabc, 5, true, 0x86dd)
        );
        assert_eq!(b, [0xba, 0xbc, 0x86, 0xdd]);
        assert_eq!(
            Tag::new_checked(&b[..3]).unwrap_err(),
            WireError::VlanTruncated
        );
    }
}
