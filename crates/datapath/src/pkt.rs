//! An mbuf as the pipeline's packet buffer.

use dpdk::Mbuf;
use packet::PacketBuf;

/// An [`Mbuf`] the pipeline can edit. Writes go through copy-on-write, so a
/// buffer shared with an earlier output is copied before it changes.
#[derive(Debug)]
pub struct Pkt(pub Mbuf);

impl PacketBuf for Pkt {
    #[inline]
    fn data(&self) -> &[u8] {
        self.0.data()
    }

    /// An empty slice when a shared buffer could not be copied (no mbuf): the
    /// edit then fails as for a too-short packet, and is counted as an action error.
    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        self.0.data_mut().unwrap_or_default()
    }

    #[inline]
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        self.0.prepend(n)
    }

    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        self.0.adj(n)
    }

    /// `pkt_len`: all segments of a chain.
    #[inline]
    fn wire_len(&self) -> usize {
        self.0.len()
    }
}
