/// OpenFlow port numbers to the datapath's port indices, for the outputs of
/// every packet: a sorted array searched by bisection (ports are few; no hashing).
#[derive(Debug, Clone)]
pub struct PortIndex {
    /// Index -> OpenFlow port number.
    ofports: Box<[u32]>,
    /// (OpenFlow port number, index), sorted by number.
    by_number: Box<[(u32, usize)]>,
}

impl PortIndex {
    pub fn new(ofports: Vec<u32>) -> PortIndex {
        let mut by_number: Vec<(u32, usize)> =
            ofports.iter().enumerate().map(|(i, p)| (*p, i)).collect();
        by_number.sort_unstable();
        PortIndex {
            ofports: ofports.into(),
            by_number: by_number.into(),
        }
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

    pub fn len(&self) -> usize {
        self.ofports.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ofports.is_empty()
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
    }
}
