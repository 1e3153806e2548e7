//! Bit sets with OpenFlow's values (flow flags, port config, meter flags), so the pipeline
//! keeps no wire types; `ofproto` converts them bit for bit.

/// Declares a bit-set newtype over a raw integer. Unknown bits are kept so that a value
/// survives a decode/encode round trip unchanged.
macro_rules! flag_set {
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

pub(crate) use flag_set;
