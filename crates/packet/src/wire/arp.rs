//! ARP for Ethernet and IPv4 (RFC 826), the only kind OpenFlow's arp_* fields describe.

use super::ethernet::Mac;
use super::field::{array, be16, put16, view};
use crate::error::WireError;

/// Fixed header plus two MAC and two IPv4 addresses.
pub const PACKET_LEN: usize = 28;

pub const OP_REQUEST: u16 = 1;
pub const OP_REPLY: u16 = 2;

view!(
    /// An Ethernet/IPv4 ARP packet.
    Packet
);

impl<T: AsRef<[u8]>> Packet<T> {
    fn check(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < PACKET_LEN {
            return Err(WireError::ArpTruncated);
        }
        if be16(b, 0) != 1 || be16(b, 2) != 0x0800 || b[4] != 6 || b[5] != 4 {
            return Err(WireError::ArpNotEthernetIpv4);
        }
        Ok(())
    }

    #[inline]
    pub fn hardware_type(&self) -> u16 {
        be16(self.buffer.as_ref(), 0)
    }

    #[inline]
    pub fn protocol_type(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }

    #[inline]
    pub fn operation(&self) -> u16 {
        be16(self.buffer.as_ref(), 6)
    }

    /// Sender hardware address.
    #[inline]
    pub fn sha(&self) -> Mac {
        array(self.buffer.as_ref(), 8)
    }

    /// Sender protocol address.
    #[inline]
    pub fn spa(&self) -> [u8; 4] {
        array(self.buffer.as_ref(), 14)
    }

    /// Target hardware address.
    #[inline]
    pub fn tha(&self) -> Mac {
        array(self.buffer.as_ref(), 18)
    }

    /// Target protocol address.
    #[inline]
    pub fn tpa(&self) -> [u8; 4] {
        array(self.buffer.as_ref(), 24)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the fixed Ethernet/IPv4 header so `new_checked` accepts the buffer.
    pub fn init_ethernet_ipv4(&mut self) {
        let b = self.buffer.as_mut();
        put16(b, 0, 1);
        put16(b, 2, 0x0800);
        b[4] = 6;
        b[5] = 4;
    }

    #[inline]
    pub fn set_operation(&mut self, op: u16) {
        put16(self.buffer.as_mut(), 6, op);
    }

    #[inline]
    pub fn set_sha(&mut self, mac: Mac) {
        self.buffer.as_mut()[8..14].copy_from_slice(&mac);
    }

    #[inline]
    pub fn set_spa(&mut self, ip: [u8; 4]) {
        self.buffer.as_mut()[14..18].copy_from_slice(&ip);
    }

    #[inline]
    pub fn set_tha(&mut self, mac: Mac) {
        self.buffer.as_mut()[18..24].copy_from_slice(&mac);
    }

    #[inline]
    pub fn set_tpa(&mut self, ip: [u8; 4]) {
        self.buffer.as_mut()[24..28].copy_from_slice(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let mut b = [0u8; 28];
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            WireError::ArpNotEthernetIpv4
        );
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.init_ethernet_ipv4();
        p.set_operation(OP_REPLY);
        p.set_sha([1; 6]);
        p.set_spa([10, 0, 0, 1]);
        p.set_tha([2; 6]);
        p.set_tpa([10, 0, 0, 2]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.operation(), 2);
        assert_eq!((p.hardware_type(), p.protocol_type()), (1, 0x0800));
        assert_eq!(
            (p.sha(), p.spa(), p.tha(), p.tpa()),
            ([1; 6], [10, 0, 0, 1], [2; 6], [10, 0, 0, 2])
        );
        assert_eq!(
            Packet::new_checked(&b[..27]).unwrap_err(),
            WireError::ArpTruncated
        );
    }
}
