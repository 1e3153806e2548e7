//! Bounds-checked reading and big-endian writing shared by every codec module.
//!
//! Every read goes through [`Reader`], which carries the [`DecodeError`] to report when the
//! input runs out. That keeps each failure site explicit (the caller picks the error that the
//! agent must send back) while making it impossible to index past the end of the input.

use crate::error::DecodeError;

/// A cursor over untrusted input. Running out of bytes yields the error given at creation.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    err: DecodeError,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], err: DecodeError) -> Self {
        Reader { buf, err }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Fails with this reader's error unless exactly `n` bytes are left.
    pub(crate) fn expect_exact(&self, n: usize) -> Result<(), DecodeError> {
        if self.buf.len() == n {
            Ok(())
        } else {
            Err(self.err)
        }
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        match self.buf.split_at_checked(n) {
            Some((head, tail)) => {
                self.buf = tail;
                Ok(head)
            }
            None => Err(self.err),
        }
    }

    /// Takes the next `n` bytes as a nested reader that reports `err` when it runs out.
    pub(crate) fn sub(&mut self, n: usize, err: DecodeError) -> Result<Reader<'a>, DecodeError> {
        let bytes = self.bytes(n)?;
        Ok(Reader::new(bytes, err))
    }

    /// Skips up to `n` bytes: trailing padding that a sloppy peer left off is tolerated.
    pub(crate) fn skip_lenient(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf = self.buf.get(n..).unwrap_or(&[]);
    }

    pub(crate) fn skip(&mut self, n: usize) -> Result<(), DecodeError> {
        self.bytes(n).map(|_| ())
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// Looks at the next bytes without consuming them.
    pub(crate) fn peek(&self, n: usize) -> Result<&'a [u8], DecodeError> {
        self.buf.get(..n).ok_or(self.err)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let b = self.bytes(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
}

pub(crate) fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

pub(crate) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_zeros(out: &mut Vec<u8>, n: usize) {
    out.resize(out.len() + n, 0);
}

/// Pads with zeros so that the bytes written since `start` are a multiple of 8.
pub(crate) fn pad_to_8(out: &mut Vec<u8>, start: usize) {
    let len = out.len() - start;
    put_zeros(out, round_up_8(len) - len);
}

pub(crate) const fn round_up_8(n: usize) -> usize {
    (n + 7) & !7
}

/// Writes a big-endian u16 length at `at`. Lengths that do not fit are truncated here and
/// caught by the whole-message check in [`crate::OfpMessage::encode`], since every inner
/// length is bounded by the message length.
/// Writes the number of bytes written since `from` as a big-endian u16 at `at`.
pub(crate) fn patch_len(out: &mut [u8], at: usize, from: usize) {
    let len = out.len() - from;
    patch_u16(out, at, len);
}

pub(crate) fn patch_u16(out: &mut [u8], at: usize, v: usize) {
    let bytes = (v as u16).to_be_bytes();
    if let Some(dst) = out.get_mut(at..at + 2) {
        dst.copy_from_slice(&bytes);
    }
}

/// Declares a fieldless enum mirroring a wire enumeration, with checked conversion from the
/// raw value (unknown values are a decode error at the call site, never a panic).
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident : $repr:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr($repr)]
        pub enum $name {
            $( $(#[$vmeta])* $variant = $value, )*
        }

        impl $name {
            /// Every value, in wire order.
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )* ];

            /// Maps a raw wire value; `None` for values the spec does not define.
            pub const fn from_raw(v: $repr) -> Option<Self> {
                match v {
                    $( $value => Some($name::$variant), )*
                    _ => None,
                }
            }

            /// The raw wire value.
            pub const fn raw(self) -> $repr {
                self as $repr
            }
        }
    };
}

/// Declares a bit-set newtype over a raw integer. Unknown bits are kept so that a value
/// survives a decode/encode round trip unchanged.
macro_rules! wire_flags {
    (
        $(#[$meta:meta])*
        pub struct $name:ident : $repr:ty {
            $( $(#[$fmeta:meta])* const $flag:ident = $value:expr; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(pub $repr);

        impl $name {
            $( $(#[$fmeta])* pub const $flag: $name = $name($value); )*

            /// The set with no bits.
            pub const fn empty() -> Self {
                $name(0)
            }

            /// The raw wire value.
            pub const fn bits(self) -> $repr {
                self.0
            }

            /// True when every bit of `other` is set here.
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }

            /// True when any bit of `other` is set here.
            pub const fn intersects(self, other: Self) -> bool {
                self.0 & other.0 != 0
            }

            /// True when no bit is set.
            pub const fn is_empty(self) -> bool {
                self.0 == 0
            }

            /// The bits this crate has a name for.
            pub const fn known() -> Self {
                $name(0 $( | $value )*)
            }
        }

        impl core::ops::BitOr for $name {
            type Output = Self;
            fn bitor(self, rhs: Self) -> Self {
                $name(self.0 | rhs.0)
            }
        }

        impl core::ops::BitOrAssign for $name {
            fn bitor_assign(&mut self, rhs: Self) {
                self.0 |= rhs.0;
            }
        }

        impl core::ops::BitAnd for $name {
            type Output = Self;
            fn bitand(self, rhs: Self) -> Self {
                $name(self.0 & rhs.0)
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                let mut first = true;
                write!(f, "{}(", stringify!($name))?;
                let mut rest = self.0;
                $(
                    if $value != 0 && self.0 & $value == $value {
                        if !first { write!(f, " | ")?; }
                        write!(f, "{}", stringify!($flag))?;
                        first = false;
                        rest &= !$value;
                    }
                )*
                if rest != 0 {
                    if !first { write!(f, " | ")?; }
                    write!(f, "{:#x}", rest)?;
                }
                write!(f, ")")
            }
        }
    };
}

pub(crate) use wire_enum;
pub(crate) use wire_flags;

/// A fixed-size, NUL-padded string field (port names, descriptions, table names).
///
/// The raw bytes are kept, not a `String`: the wire does not promise UTF-8 and a lossy
/// conversion would not survive a round trip.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FixedStr<const N: usize>(pub [u8; N]);

impl<const N: usize> FixedStr<N> {
    /// Builds the field from text, cut to `N - 1` bytes (at a character boundary) so that a
    /// terminating NUL always fits, as the spec requires.
    pub fn new(s: &str) -> Self {
        let mut end = s.len().min(N.saturating_sub(1));
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let mut raw = [0u8; N];
        raw[..end].copy_from_slice(&s.as_bytes()[..end]);
        FixedStr(raw)
    }

    /// The bytes before the first NUL.
    pub fn as_bytes(&self) -> &[u8] {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(N);
        &self.0[..end]
    }

    /// The text before the first NUL, with invalid UTF-8 replaced.
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(self.as_bytes()).into_owned()
    }
}

impl<const N: usize> Default for FixedStr<N> {
    fn default() -> Self {
        FixedStr([0u8; N])
    }
}

impl<const N: usize> core::fmt::Debug for FixedStr<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}", self.to_string_lossy())
    }
}

impl<const N: usize> From<&str> for FixedStr<N> {
    fn from(s: &str) -> Self {
        FixedStr::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::FlowModFlags;

    #[test]
    fn fixed_str_keeps_room_for_nul_and_char_boundaries() {
        let s = FixedStr::<4>::new("abcdef");
        assert_eq!(s.0, *b"abc\0");
        assert_eq!(s.to_string_lossy(), "abc");
        // 'é' is two bytes; cutting inside it would be invalid UTF-8.
        let s = FixedStr::<4>::new("aéé");
        assert_eq!(s.as_bytes(), "aé".as_bytes());
        assert_eq!(FixedStr::<0>::new("x").as_bytes(), b"");
    }

    #[test]
    fn reader_reports_its_error_and_never_overreads() {
        let err = DecodeError::BadMatchLength { length: 3 };
        let mut r = Reader::new(&[1, 2, 3], err);
        assert_eq!(r.u16(), Ok(0x0102));
        assert_eq!(r.u16(), Err(err));
        assert_eq!(r.remaining(), 1);
        r.skip_lenient(10);
        assert!(r.is_empty());
    }

    #[test]
    fn flags_debug_names_known_and_unknown_bits() {
        let f = FlowModFlags::SEND_FLOW_REM | FlowModFlags(0x100);
        assert_eq!(format!("{f:?}"), "FlowModFlags(SEND_FLOW_REM | 0x100)");
        assert!(f.contains(FlowModFlags::SEND_FLOW_REM));
        assert!(!f.contains(FlowModFlags::CHECK_OVERLAP));
        assert_eq!(FlowModFlags::known().bits(), 0x1f);
    }
}
