//! The packet buffer abstraction edits work on.

/// A frame with headroom in front of it. A DPDK mbuf implements this with
/// `rte_pktmbuf_prepend`/`rte_pktmbuf_adj`; [`VecBuf`] does for tests and slow paths.
pub trait PacketBuf {
    /// The frame, first byte first.
    fn data(&self) -> &[u8];
    /// The frame, writable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Grows the frame by `n` bytes at the front, out of the headroom, and returns the new
    /// bytes (their content is unspecified). `None` when the headroom is too small; the
    /// frame is then unchanged.
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]>;
    /// Drops `n` bytes from the front. `false` (and no change) when the frame is shorter.
    fn adj(&mut self, n: usize) -> bool;
    /// The whole packet's length, every segment of a chained buffer included (a guest's
    /// TSO frame): what byte counters and meters count. `data` may be only the first segment.
    #[inline]
    fn wire_len(&self) -> usize {
        self.data().len()
    }
}

/// Headroom [`VecBuf::new`] leaves, the same as DPDK's default RTE_PKTMBUF_HEADROOM.
pub const DEFAULT_HEADROOM: usize = 128;

/// A heap-backed [`PacketBuf`]: `buf[head..]` is the frame, `buf[..head]` the headroom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VecBuf {
    buf: Vec<u8>,
    head: usize,
}

impl VecBuf {
    /// Copies `frame` behind [`DEFAULT_HEADROOM`] bytes of headroom.
    pub fn new(frame: &[u8]) -> Self {
        Self::with_headroom(frame, DEFAULT_HEADROOM)
    }

    /// Copies `frame` behind `headroom` bytes of headroom.
    pub fn with_headroom(frame: &[u8], headroom: usize) -> Self {
        let mut buf = vec![0u8; headroom + frame.len()];
        buf[headroom..].copy_from_slice(frame);
        Self {
            buf,
            head: headroom,
        }
    }

    pub fn headroom(&self) -> usize {
        self.head
    }

    pub fn len(&self) -> usize {
        self.buf.len() - self.head
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frame as an owned vector, headroom dropped.
    pub fn into_vec(mut self) -> Vec<u8> {
        self.buf.drain(..self.head);
        self.buf
    }
}

impl PacketBuf for VecBuf {
    #[inline]
    fn data(&self) -> &[u8] {
        &self.buf[self.head..]
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.head..]
    }

    #[inline]
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.head {
            return None;
        }
        self.head -= n;
        Some(&mut self.buf[self.head..self.head + n])
    }

    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        self.head += n;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepend_and_adj() {
        let mut b = VecBuf::with_headroom(&[1, 2, 3], 4);
        assert_eq!(b.headroom(), 4);
        b.prepend(2).unwrap().copy_from_slice(&[9, 9]);
        assert_eq!(b.data(), &[9, 9, 1, 2, 3]);
        assert!(b.prepend(3).is_none());
        assert_eq!(b.len(), 5);
        assert!(b.adj(3));
        assert_eq!(b.data(), &[2, 3]);
        assert!(!b.adj(3));
        b.data_mut()[0] = 7;
        assert_eq!(b.clone().into_vec(), vec![7, 3]);
        assert!(!b.is_empty());
    }
}
