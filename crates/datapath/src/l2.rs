//! The frame edits the learning switch needs: reading the addresses and the
//! 802.1Q tag, and adding, removing or rewriting the tag on egress.

use dpdk::Mbuf;
use mac_learning::Egress;

const TPID_8021Q: u16 = 0x8100;
const ETH_HLEN: usize = 14;

/// The parts of an Ethernet header the learning switch reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2Header {
    pub dst: u64,
    pub src: u64,
    /// The 802.1Q TCI, if the frame is tagged.
    pub tci: Option<u16>,
}

#[inline]
fn mac_at(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes([
        0,
        0,
        b[at],
        b[at + 1],
        b[at + 2],
        b[at + 3],
        b[at + 4],
        b[at + 5],
    ])
}

impl L2Header {
    /// None for frames shorter than an Ethernet header (or a truncated tag).
    #[inline]
    pub fn parse(frame: &[u8]) -> Option<L2Header> {
        if frame.len() < ETH_HLEN {
            return None;
        }
        let tpid = u16::from_be_bytes([frame[12], frame[13]]);
        let tci = if tpid == TPID_8021Q {
            if frame.len() < ETH_HLEN + 4 {
                return None;
            }
            Some(u16::from_be_bytes([frame[14], frame[15]]))
        } else {
            None
        };
        Some(L2Header {
            dst: mac_at(frame, 0),
            src: mac_at(frame, 6),
            tci,
        })
    }

    #[inline]
    pub fn vid(&self) -> Option<u16> {
        self.tci.map(|t| t & 0xfff)
    }
}

/// Makes the frame leave as `want`, given the tag it carries now. Keeps the
/// priority bits of an existing tag. False when the mbuf could not be edited
/// (shared and no copy available, or no headroom).
#[inline]
pub fn set_egress_tag(m: &mut Mbuf, tci: Option<u16>, want: Egress) -> bool {
    match (tci, want) {
        (None, Egress::Untagged) => true,
        (Some(t), Egress::Tagged(vid)) if t & 0xfff == vid => true,
        (Some(t), Egress::Tagged(vid)) => {
            let Some(d) = m.data_mut() else { return false };
            let tci = (t & 0xf000) | vid;
            d[14..16].copy_from_slice(&tci.to_be_bytes());
            true
        }
        (None, Egress::Tagged(vid)) => {
            let Some(d) = m.prepend(4) else { return false };
            d.copy_within(4..16, 0);
            d[12..14].copy_from_slice(&TPID_8021Q.to_be_bytes());
            d[14..16].copy_from_slice(&vid.to_be_bytes());
            true
        }
        (Some(_), Egress::Untagged) => {
            let Some(d) = m.data_mut() else { return false };
            d.copy_within(0..12, 4);
            m.adj(4)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_untagged_tagged_and_short() {
        let mut f = vec![0u8; 60];
        f[0..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let h = L2Header::parse(&f).unwrap();
        assert_eq!(h.dst, 0xffff_ffff_ffff);
        assert_eq!(h.src, 0x0200_0000_0001);
        assert_eq!(h.tci, None);
        f[12..16].copy_from_slice(&[0x81, 0x00, 0x20, 0x0a]);
        let h = L2Header::parse(&f).unwrap();
        assert_eq!(h.tci, Some(0x200a));
        assert_eq!(h.vid(), Some(10));
        assert_eq!(L2Header::parse(&f[..13]), None);
        assert_eq!(L2Header::parse(&f[..15]), None, "truncated tag");
    }
}
