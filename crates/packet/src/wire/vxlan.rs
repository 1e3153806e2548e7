//! VXLAN header (RFC 7348): 8 bytes after the outer UDP header, a 24-bit network identifier.

use super::field::{be24, put24, view};
use crate::error::WireError;

pub const HEADER_LEN: usize = 8;
/// The I flag: the VNI is valid. RFC 7348 says receivers ignore the other flag bits.
pub const FLAG_VNI: u8 = 0x08;

view!(
    /// A VXLAN header and the inner Ethernet frame after it.
    Packet
);

impl<T: AsRef<[u8]>> Packet<T> {
    fn check(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::VxlanTruncated);
        }
        Ok(())
    }

    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[0]
    }

    /// A frame without the I flag carries no network identifier: it is not for any port.
    #[inline]
    pub fn vni_valid(&self) -> bool {
        self.flags() & FLAG_VNI != 0
    }

    #[inline]
    pub fn vni(&self) -> u32 {
        be24(self.buffer.as_ref(), 4)
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the whole header: the I flag, the VNI and zeroed reserved fields.
    #[inline]
    pub fn init(&mut self, vni: u32) {
        let b = self.buffer.as_mut();
        b[..HEADER_LEN].fill(0);
        b[0] = FLAG_VNI;
        put24(b, 4, vni & 0x00ff_ffff);
    }
}

/// A VXLAN header in high-level form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub vni: u32,
}

impl Repr {
    /// `None` for a header without the I flag: well-formed, but it names no network.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Option<Repr> {
        p.vni_valid().then(|| Repr { vni: p.vni() })
    }

    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.init(self.vni);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rfc_layout() {
        let mut b = [0xffu8; 10];
        let mut p = Packet::new_unchecked(&mut b[..]);
        Repr { vni: 0x0012_3456 }.emit(&mut p);
        assert_eq!(&b[..8], &[0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p), Some(Repr { vni: 0x12_3456 }));
        assert_eq!(p.payload(), &[0xff, 0xff]);
        // Only the low 24 bits of a VNI exist on the wire.
        let mut c = [0u8; 8];
        Packet::new_unchecked(&mut c[..]).init(0x0100_0001);
        assert_eq!(Packet::new_unchecked(&c[..]).vni(), 1);
    }

    #[test]
    fn no_i_flag_and_short() {
        let b = [0u8, 0, 0, 0, 0, 0, 5, 0];
        assert_eq!(Repr::parse(&Packet::new_checked(&b[..]).unwrap()), None);
        assert_eq!(
            Packet::new_checked(&b[..7]).unwrap_err(),
            WireError::VxlanTruncated
        );
    }
}
