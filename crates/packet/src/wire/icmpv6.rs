//! ICMPv6 (RFC 4443) and the Neighbor Discovery messages OpenFlow looks into (RFC 4861):
//! Neighbor Solicitation/Advertisement, their target and link-layer address options.

use super::ethernet::Mac;
use super::field::{array, be16, put16, view};
use crate::error::WireError;

pub const HEADER_LEN: usize = 4;
pub const CHECKSUM_OFFSET: usize = 2;

pub const ECHO_REQUEST: u8 = 128;
pub const ECHO_REPLY: u8 = 129;
pub const ND_NEIGHBOR_SOLICIT: u8 = 135;
pub const ND_NEIGHBOR_ADVERT: u8 = 136;

/// Source link-layer address option.
pub const ND_OPT_SLL: u8 = 1;
/// Target link-layer address option.
pub const ND_OPT_TLL: u8 = 2;

/// Header, reserved/flags word and target address.
pub const ND_LEN: usize = 24;
/// Offset of the target address in an NS/NA.
pub const ND_TARGET_OFFSET: usize = 8;
/// Offset of the MAC inside an Ethernet link-layer address option.
pub const ND_OPT_LL_OFFSET: usize = 2;

view!(
    /// An ICMPv6 message.
    Packet
);

impl<T: AsRef<[u8]>> Packet<T> {
    fn check(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Icmpv6Truncated);
        }
        Ok(())
    }

    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[0]
    }

    #[inline]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[1]
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), CHECKSUM_OFFSET)
    }

    /// NS or NA with code 0: the messages that carry an ND target.
    #[inline]
    pub fn is_nd(&self) -> bool {
        matches!(self.msg_type(), ND_NEIGHBOR_SOLICIT | ND_NEIGHBOR_ADVERT) && self.code() == 0
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_msg_type(&mut self, t: u8) {
        self.buffer.as_mut()[0] = t;
    }

    #[inline]
    pub fn set_code(&mut self, c: u8) {
        self.buffer.as_mut()[1] = c;
    }

    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        put16(self.buffer.as_mut(), CHECKSUM_OFFSET, c);
    }
}

view!(
    /// A Neighbor Solicitation or Advertisement, from the ICMPv6 type byte on.
    NdMessage
);

impl<T: AsRef<[u8]>> NdMessage<T> {
    fn check(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < ND_LEN {
            return Err(WireError::NdTruncated);
        }
        Ok(())
    }

    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[0]
    }

    /// NA flags: router, solicited, override (high bits of the reserved word).
    #[inline]
    pub fn na_flags(&self) -> u8 {
        self.buffer.as_ref()[4] >> 5
    }

    #[inline]
    pub fn target(&self) -> [u8; 16] {
        array(self.buffer.as_ref(), ND_TARGET_OFFSET)
    }

    /// Walks the options; stops at the first malformed one.
    #[inline]
    pub fn options(&self) -> NdOptions<'_> {
        NdOptions {
            bytes: self.buffer.as_ref(),
            pos: ND_LEN,
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> NdMessage<T> {
    #[inline]
    pub fn set_target(&mut self, target: [u8; 16]) {
        self.buffer.as_mut()[ND_TARGET_OFFSET..ND_LEN].copy_from_slice(&target);
    }

    #[inline]
    pub fn set_na_flags(&mut self, flags: u8) {
        self.buffer.as_mut()[4] = flags << 5;
    }
}

/// Iterator over ND options, yielding each one's offset from the ICMPv6 header and a view.
/// Allocation-free; a zero length or an option running past the end ends the walk, since
/// nothing after it can be located.
#[derive(Debug, Clone)]
pub struct NdOptions<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for NdOptions<'a> {
    type Item = Result<(usize, NdOption<&'a [u8]>), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.bytes.get(self.pos..)?;
        if rest.is_empty() {
            return None;
        }
        match NdOption::new_checked(rest) {
            Ok(opt) => {
                let at = self.pos;
                let len = opt.len_bytes();
                self.pos += len;
                Some(Ok((at, NdOption::new_unchecked(&rest[..len]))))
            }
            Err(e) => {
                self.pos = self.bytes.len();
                Some(Err(e))
            }
        }
    }
}

view!(
    /// One ND option: type, length in 8-byte units, data.
    NdOption
);

impl<T: AsRef<[u8]>> NdOption<T> {
    fn check(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < 2 || b[1] == 0 || b.len() < self.len_bytes() {
            return Err(WireError::NdOptionMalformed);
        }
        Ok(())
    }

    #[inline]
    pub fn opt_type(&self) -> u8 {
        self.buffer.as_ref()[0]
    }

    #[inline]
    pub fn len_bytes(&self) -> usize {
        usize::from(self.buffer.as_ref()[1]) * 8
    }

    /// The Ethernet address of an SLL/TLL option of length 1 (8 bytes), else `None`.
    #[inline]
    pub fn link_layer_addr(&self) -> Option<Mac> {
        let b = self.buffer.as_ref();
        (matches!(b[0], ND_OPT_SLL | ND_OPT_TLL) && b[1] == 1).then(|| array(b, ND_OPT_LL_OFFSET))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> NdOption<T> {
    /// Writes an 8-byte Ethernet link-layer address option.
    pub fn init_link_layer(&mut self, opt_type: u8, mac: Mac) {
        let b = self.buffer.as_mut();
        b[0] = opt_type;
        b[1] = 1;
        b[2..8].copy_from_slice(&mac);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nd_message_and_options() {
        let mut b = [0u8; 24 + 8 + 16];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_msg_type(ND_NEIGHBOR_SOLICIT);
        p.set_code(0);
        p.set_checksum(0x1234);
        let mut nd = NdMessage::new_checked(&mut b[..]).unwrap();
        nd.set_target([0xfe; 16]);
        NdOption::new_unchecked(&mut b[24..32]).init_link_layer(ND_OPT_SLL, [1, 2, 3, 4, 5, 6]);
        b[32] = 14; // nonce option, 2 units
        b[33] = 2;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.is_nd());
        assert_eq!((p.msg_type(), p.code(), p.checksum()), (135, 0, 0x1234));
        let nd = NdMessage::new_checked(&b[..]).unwrap();
        assert_eq!(nd.target(), [0xfe; 16]);
        let opts: Vec<_> = nd.options().map(|o| o.unwrap()).collect();
        assert_eq!(opts.len(), 2);
        assert_eq!(opts[0].0, 24);
        assert_eq!(opts[0].1.link_layer_addr(), Some([1, 2, 3, 4, 5, 6]));
        assert_eq!(
            (opts[1].0, opts[1].1.opt_type(), opts[1].1.link_layer_addr()),
            (32, 14, None)
        );
        // A zero-length option stops the walk with an error instead of looping.
        b[33] = 0;
        let nd = NdMessage::new_checked(&b[..]).unwrap();
        let mut it = nd.options();
        assert!(it.next().unwrap().is_ok());
        assert_eq!(
            it.next().unwrap().unwrap_err(),
            WireError::NdOptionMalformed
        );
        assert!(it.next().is_none());
        assert_eq!(
            NdMessage::new_checked(&b[..23]).unwrap_err(),
            WireError::NdTruncated
        );
        assert_eq!(
            Packet::new_checked(&b[..3]).unwrap_err(),
            WireError::Icmpv6Truncated
        );
    }
}
