//! One MPLS label stack entry (RFC 3032): label, traffic class, bottom of stack, TTL.

use super::field::{be32, put32, view};
use crate::error::WireError;

/// One label stack entry.
pub const LABEL_LEN: usize = 4;

view!(
    /// A label stack entry followed by the rest of the stack or the payload.
    Label
);

impl<T: AsRef<[u8]>> Label<T> {
    fn check(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < LABEL_LEN {
            return Err(WireError::MplsTruncated);
        }
        Ok(())
    }

    #[inline]
    fn entry(&self) -> u32 {
        be32(self.buffer.as_ref(), 0)
    }

    #[inline]
    pub fn label(&self) -> u32 {
        self.entry() >> 12
    }

    #[inline]
    pub fn tc(&self) -> u8 {
        ((self.entry() >> 9) & 7) as u8
    }

    #[inline]
    pub fn bos(&self) -> bool {
        self.entry() & 0x100 != 0
    }

    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[3]
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[LABEL_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Label<T> {
    #[inline]
    fn set_entry(&mut self, v: u32) {
        put32(self.buffer.as_mut(), 0, v);
    }

    #[inline]
    pub fn set_label(&mut self, label: u32) {
        let e = (self.entry() & 0xfff) | ((label & 0xf_ffff) << 12);
        self.set_entry(e);
    }

    #[inline]
    pub fn set_tc(&mut self, tc: u8) {
        let e = (self.entry() & !0xe00) | (u32::from(tc & 7) << 9);
        self.set_entry(e);
    }

    #[inline]
    pub fn set_bos(&mut self, bos: bool) {
        let e = (self.entry() & !0x100) | (u32::from(bos) << 8);
        self.set_entry(e);
    }

    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[3] = ttl;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let mut b = [0u8; 4];
        let mut l = Label::new_checked(&mut b[..]).unwrap();
        l.set_label(0xabcde);
        l.set_tc(5);
        l.set_bos(true);
        l.set_ttl(64);
        assert_eq!(
            (l.label(), l.tc(), l.bos(), l.ttl()),
            (0xabcde, 5, true, 64)
        );
        assert_eq!(b, [0xab, 0xcd, 0xeb, 0x40]);
        assert_eq!(
            Label::new_checked(&b[..2]).unwrap_err(),
            WireError::MplsTruncated
        );
    }
}
