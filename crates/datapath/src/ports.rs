/// OpenFlow port numbers to the datapath's port slots, for the outputs of
/// every packet: a sorted array searched by bisection (ports are few; no
/// hashing). Immutable: a port change makes a new index for the workers.
#[derive(Debug, Clone)]
pub struct PortIndex {
    /// Slot -> OpenFlow port number (0: free slot).
    ofports: Box<[u32]>,
    /// (OpenFlow port number, slot), sorted by number.
    by_number: Box<[(u32, usize)]>,
}

impl PortIndex {
    /// Ports in slots 0, 1, ... in order.
    pub fn new(ofports: Vec<u32>) -> PortIndex {
        PortIndex::from_entries(
            ofports
                .into_iter()
                .enumerate()
                .map(|(i, p)| (p, i))
                .collect(),
        )
    }

    /// From (OpenFlow port number, slot) pairs.
    pub fn from_entries(mut by_number: Vec<(u32, usize)>) -> PortIndex {
        by_number.sort_unstable();
        let slots = by_number.iter().map(|e| e.1 + 1).max().unwrap_or(0);
        let mut ofports = vec![0; slots];
        for (p, s) in &by_number {
            ofports[*s] = *p;
        }
        PortIndex {
            ofports: ofports.into(),
            by_number: by_number.into(),
        }
    }

    pub fn entries(&self) -> Vec<(u32, usize)> {
        self.by_number.to_vec()
    }

    #[inline]
    pub fn index_of(&self, ofport: u32) -> Option<usize> {
        self.by_number
            .binary_search_by_key(&ofport, |e| e.0)
            .ok()
            .map(|i| self.by_number[i].1)
    }

    #[inline]
    pub fn ofport(&self, index: usize) -> u32 {
        self.ofports[index]
    }

    /// Ports in the index.
    pub fn len(&self) -> usize {
        self.by_number.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_number.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_both_ways() {
        let p = PortIndex::new(vec![7, 1, 0xfffffffe, 3]);
        assert_eq!(p.index_of(7), Some(0));
        assert_eq!(p.index_of(0xfffffffe), Some(2));
        assert_eq!(p.index_of(2), None);
        assert_eq!(p.ofport(3), 3);
        let q = PortIndex::from_entries(vec![(9, 5), (4, 1)]);
        assert_eq!(q.index_of(9), Some(5));
        assert_eq!(q.ofport(1), 4);
        assert_eq!(q.len(), 2);
    }
}
