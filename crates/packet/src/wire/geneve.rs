//! Geneve header (RFC 8926) with its variable-length options.
//!
//! ```text
//! |Ver|Opt Len|O|C|  Rsvd.   |        Protocol Type          |
//! |        Virtual Network Identifier (VNI)       |  Reserved  |
//! |                 Variable-Length Options                    |
//! option: | Option Class (16) | Type (8) | R R R | Length (5) | data (Length * 4 bytes)
//! ```

use super::field::{be16, be24, put16, put24, view};
use crate::error::WireError;

/// The fixed part, without options.
pub const HEADER_LEN: usize = 8;
/// Options take at most 63 words.
pub const MAX_OPTIONS_LEN: usize = 63 * 4;
/// Protocol type of an Ethernet payload (Transparent Ethernet Bridging).
pub const PROTOCOL_ETHERNET: u16 = 0x6558;
/// Option header: class, type, length.
pub const OPTION_HEADER_LEN: usize = 4;

view!(
    /// A Geneve header, its options and the payload after them.
    Packet
);

impl<T: AsRef<[u8]>> Packet<T> {
    /// The fixed part, a version we know and every option byte the length claims.
    fn check(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::GeneveTruncated);
        }
        if self.version() != 0 {
            return Err(WireError::GeneveBadVersion);
        }
        if b.len() < self.header_len() {
            return Err(WireError::GeneveTruncated);
        }
        Ok(())
    }

    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 6
    }

    /// Length of the options in bytes.
    #[inline]
    pub fn options_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[0] & 0x3f) * 4
    }

    /// Fixed header plus options: where the payload starts.
    #[inline]
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options_len()
    }

    /// O bit: a control message, not data.
    #[inline]
    pub fn oam(&self) -> bool {
        self.buffer.as_ref()[1] & 0x80 != 0
    }

    /// C bit: some option is critical.
    #[inline]
    pub fn critical(&self) -> bool {
        self.buffer.as_ref()[1] & 0x40 != 0
    }

    #[inline]
    pub fn protocol(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }

    #[inline]
    pub fn vni(&self) -> u32 {
        be24(self.buffer.as_ref(), 4)
    }

    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the fixed part; the caller writes `options_len` bytes of options after it.
    /// `options_len` is a multiple of 4 no larger than [`MAX_OPTIONS_LEN`].
    #[inline]
    pub fn init(&mut self, vni: u32, protocol: u16, options_len: usize, critical: bool) {
        debug_assert!(options_len.is_multiple_of(4) && options_len <= MAX_OPTIONS_LEN);
        let b = self.buffer.as_mut();
        b[0] = (options_len / 4) as u8 & 0x3f;
        b[1] = if critical { 0x40 } else { 0 };
        put16(b, 2, protocol);
        put24(b, 4, vni & 0x00ff_ffff);
        b[7] = 0;
    }
}

/// One option as the wire has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opt<'a> {
    pub class: u16,
    pub type_: u8,
    pub data: &'a [u8],
}

impl Opt<'_> {
    /// The high bit of the type: a receiver that does not know the option must drop.
    pub fn critical(&self) -> bool {
        self.type_ & 0x80 != 0
    }
}

/// The options of a header, in order; a malformed one ends the walk with an error.
pub struct Options<'a> {
    rest: &'a [u8],
}

impl<'a> Options<'a> {
    pub fn new(options: &'a [u8]) -> Self {
        Options { rest: options }
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<Opt<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        if self.rest.len() < OPTION_HEADER_LEN {
            self.rest = &[];
            return Some(Err(WireError::GeneveOptionMalformed));
        }
        let len = usize::from(self.rest[3] & 0x1f) * 4;
        let end = OPTION_HEADER_LEN + len;
        if self.rest.len() < end {
            self.rest = &[];
            return Some(Err(WireError::GeneveOptionMalformed));
        }
        let o = Opt {
            class: be16(self.rest, 0),
            type_: self.rest[2],
            data: &self.rest[OPTION_HEADER_LEN..end],
        };
        self.rest = &self.rest[end..];
        Some(Ok(o))
    }
}

/// Writes one option (class, type, data padded to whole words) at the start of `out`;
/// returns the bytes written. `data` is at most 124 bytes and `out` long enough.
pub fn emit_option(out: &mut [u8], class: u16, type_: u8, data: &[u8]) -> usize {
    let words = data.len().div_ceil(4);
    debug_assert!(words <= 31);
    put16(out, 0, class);
    out[2] = type_;
    out[3] = words as u8 & 0x1f;
    out[4..4 + data.len()].copy_from_slice(data);
    out[4 + data.len()..4 + words * 4].fill(0);
    OPTION_HEADER_LEN + words * 4
}

/// A Geneve header in high-level form; the options stay raw bytes (already encoded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr<'a> {
    pub vni: u32,
    pub protocol: u16,
    pub oam: bool,
    pub critical: bool,
    pub options: &'a [u8],
}

impl<'a> Repr<'a> {
    /// Checks every option's length as well.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &'a Packet<&'a T>) -> Result<Repr<'a>, WireError> {
        let options = &p.buffer.as_ref()[HEADER_LEN..p.header_len()];
        for o in Options::new(options) {
            o?;
        }
        Ok(Repr {
            vni: p.vni(),
            protocol: p.protocol(),
            oam: p.oam(),
            critical: p.critical(),
            options,
        })
    }

    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.options.len()
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.init(self.vni, self.protocol, self.options.len(), self.critical);
        let b = p.buffer.as_mut();
        if self.oam {
            b[1] |= 0x80;
        }
        b[HEADER_LEN..HEADER_LEN + self.options.len()].copy_from_slice(self.options);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_options() {
        let mut opts = [0u8; 16];
        let n = emit_option(&mut opts, 0x0102, 0x80, &[1, 2, 3, 4, 5]);
        assert_eq!(n, 12);
        let repr = Repr {
            vni: 0xabcdef,
            protocol: PROTOCOL_ETHERNET,
            oam: false,
            critical: true,
            options: &opts[..n],
        };
        let mut b = vec![0u8; repr.buffer_len() + 2];
        repr.emit(&mut Packet::new_unchecked(&mut b[..]));
        assert_eq!(&b[..8], &[3, 0x40, 0x65, 0x58, 0xab, 0xcd, 0xef, 0]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), repr);
        assert_eq!(p.payload().len(), 2);
        let o: Vec<_> = Options::new(p.options()).collect();
        assert_eq!(
            o,
            vec![Ok(Opt {
                class: 0x0102,
                type_: 0x80,
                data: &[1, 2, 3, 4, 5, 0, 0, 0]
            })]
        );
        assert!(o[0].unwrap().critical());
    }

    #[test]
    fn malformed() {
        // Options claim 2 words, only 1 present.
        let b = [2u8, 0, 0x65, 0x58, 0, 0, 1, 0, 0, 1, 2, 0];
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            WireError::GeneveTruncated
        );
        // Version 1.
        let b = [0x40u8, 0, 0x65, 0x58, 0, 0, 1, 0];
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            WireError::GeneveBadVersion
        );
        // One option word whose own length says 3 words.
        let b = [1u8, 0, 0x65, 0x58, 0, 0, 1, 0, 0, 1, 2, 3];
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            Repr::parse(&p).unwrap_err(),
            WireError::GeneveOptionMalformed
        );
        assert_eq!(
            Packet::new_checked(&b[..7]).unwrap_err(),
            WireError::GeneveTruncated
        );
    }
}
