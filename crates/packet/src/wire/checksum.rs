//! Internet checksum (RFC 1071), pseudo-headers, incremental update (RFC 1624) and the
//! CRC32c that SCTP uses.

/// One's-complement partial sum of `data` as big-endian 16-bit words, the odd last byte
/// padded with zero. Kept unfolded so sums of pieces can be added before folding.
#[inline]
pub fn sum(data: &[u8]) -> u64 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        acc += (w >> 48) + ((w >> 32) & 0xffff) + ((w >> 16) & 0xffff) + (w & 0xffff);
    }
    let mut words = chunks.remainder().chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds a partial sum into 16 bits with end-around carry. Two end-around-carry additions
/// (64 to 32 bits, 32 to 16) instead of a loop: each keeps the sum's residue modulo 0xffff
/// and yields zero only for two zero halves, so the result is the same (in 1..=0xffff for a
/// non-zero sum, 0 for 0) without a branch.
#[inline]
pub fn fold(s: u64) -> u16 {
    let (s32, carry) = (s as u32).overflowing_add((s >> 32) as u32);
    let s32 = s32 + u32::from(carry);
    let (s16, carry) = (s32 as u16).overflowing_add((s32 >> 16) as u16);
    s16 + u16::from(carry)
}

/// The checksum field value for `data` (whose checksum field must be zero).
#[inline]
pub fn internet(data: &[u8]) -> u16 {
    !fold(sum(data))
}

/// Partial sum of the IPv4 pseudo-header for TCP/UDP.
#[inline]
pub fn pseudo_v4(src: [u8; 4], dst: [u8; 4], proto: u8, len: u16) -> u64 {
    sum(&src) + sum(&dst) + u64::from(proto) + u64::from(len)
}

/// Partial sum of the IPv6 pseudo-header for TCP/UDP/ICMPv6.
#[inline]
pub fn pseudo_v6(src: [u8; 16], dst: [u8; 16], next_header: u8, len: u32) -> u64 {
    sum(&src) + sum(&dst) + u64::from(next_header) + u64::from(len >> 16) + u64::from(len & 0xffff)
}

/// TCP/UDP checksum over IPv4: `segment` is the L4 header and payload with a zero checksum
/// field. UDP callers turn a zero result into 0xffff (zero means "no checksum").
#[inline]
pub fn transport_v4(src: [u8; 4], dst: [u8; 4], proto: u8, segment: &[u8]) -> u16 {
    !fold(pseudo_v4(src, dst, proto, segment.len() as u16) + sum(segment))
}

/// TCP/UDP/ICMPv6 checksum over IPv6 (pseudo-header with the upper-layer length).
#[inline]
pub fn transport_v6(src: [u8; 16], dst: [u8; 16], next_header: u8, segment: &[u8]) -> u16 {
    !fold(pseudo_v6(src, dst, next_header, segment.len() as u32) + sum(segment))
}

/// The sum of `bytes` as they contribute to a checksum when they start at an odd offset
/// from the checksummed area: one's-complement sums commute with byte swapping, so this is
/// the even-aligned sum swapped.
#[inline]
pub fn sum_at(bytes: &[u8], odd: bool) -> u16 {
    let s = fold(sum(bytes));
    if odd {
        s.swap_bytes()
    } else {
        s
    }
}

/// RFC 1624 eqn. 3: the new checksum after data summing to `old_sum` became data summing to
/// `new_sum`. Never yields 0xffff for a non-zero area, matching a from-scratch computation.
#[inline]
pub fn update(checksum: u16, old_sum: u16, new_sum: u16) -> u16 {
    !fold(u64::from(!checksum) + u64::from(!old_sum) + u64::from(new_sum))
}

/// [`update`] for one 16-bit word.
#[inline]
pub fn update16(checksum: u16, old: u16, new: u16) -> u16 {
    update(checksum, old, new)
}

const CRC32C_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82f6_3b78
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// CRC32c (Castagnoli), as SCTP computes it over the packet with a zero checksum field.
/// The result goes on the wire least-significant byte first (RFC 4960 appendix B).
pub fn crc32c(data: &[u8]) -> u32 {
    !crc32c_raw(!0, data)
}

/// The CRC32c register after feeding `data` into `state`, without the initial and final
/// inversions, so a checksum over pieces can be chained.
#[inline]
pub fn crc32c_raw(mut state: u32, data: &[u8]) -> u32 {
    for &b in data {
        state = CRC32C_TABLE[((state ^ u32::from(b)) & 0xff) as usize] ^ (state >> 8);
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data)), 0xddf2);
        assert_eq!(internet(&data), !0xddf2);
    }

    #[test]
    fn fold_equals_the_end_around_carry_loop() {
        fn by_loop(mut s: u64) -> u16 {
            while s >> 16 != 0 {
                s = (s & 0xffff) + (s >> 16);
            }
            s as u16
        }
        let edges = [
            0,
            1,
            0xffff,
            0x1_0000,
            0x1_fffe,
            0xffff_ffff,
            0x1_0000_0000,
            0x1_ffff_fffe,
            0xffff_0000_0000,
            0xffff_ffff_ffff,
            u64::MAX,
            u64::MAX - 1,
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let random = (0..10_000).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x >> (x % 48)
        });
        for s in edges.into_iter().chain(random) {
            assert_eq!(fold(s), by_loop(s), "{s:#x}");
        }
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(fold(sum(&[0x12, 0x34, 0x56])), 0x1234 + 0x5600);
    }

    #[test]
    fn incremental_matches_full_recompute() {
        let mut data = [
            0x45u8, 0, 0, 0x54, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let c = internet(&data);
        let old = sum_at(&data[8..9], false);
        data[8] = 63;
        let new = sum_at(&data[8..9], false);
        let inc = update(c, old, new);
        assert_eq!(inc, internet(&data));
        // An odd-offset byte (the TOS byte).
        let old = sum_at(&data[1..2], true);
        data[1] = 0xb8;
        let new = sum_at(&data[1..2], true);
        assert_eq!(update(inc, old, new), internet(&data));
    }

    #[test]
    fn update16_rfc1624_example() {
        // RFC 1624 section 4: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285 gives 0x0000.
        assert_eq!(update16(0xdd2f, 0x5555, 0x3285), 0x0000);
    }

    #[test]
    fn transport_checksums_verify_to_zero() {
        let mut udp = [0x30u8, 0x39, 0x00, 0x35, 0x00, 0x0a, 0, 0, 0xab, 0xcd];
        let c = transport_v4([10, 0, 0, 1], [10, 0, 0, 2], 17, &udp);
        udp[6..8].copy_from_slice(&c.to_be_bytes());
        assert_eq!(
            fold(pseudo_v4([10, 0, 0, 1], [10, 0, 0, 2], 17, 10) + sum(&udp)),
            0xffff
        );
        let mut icmp = [128u8, 0, 0, 0, 0, 1, 0, 1];
        let c = transport_v6([1; 16], [2; 16], 58, &icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        assert_eq!(
            fold(pseudo_v6([1; 16], [2; 16], 58, 8) + sum(&icmp)),
            0xffff
        );
    }

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }
}
