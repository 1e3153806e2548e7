/// OpenFlow port numbers to the datapath's port slots, for the outputs of
/// every packet: an array indexed by port number for the usual small numbers
/// (one load per output), and a sorted array searched by bisection for the
/// others (OFPP_LOCAL, large numbers). Immutable: a port change makes a new
/// index for the workers.
#[derive(Debug, Clone)]
pub struct PortIndex {
    /// Slot -> OpenFlow port number (0: free slot).
    ofports: Box<[u32]>,
    /// (OpenFlow port number, slot), sorted by number.
    by_number: Box<[(u32, usize)]>,
    /// Port number -> slot ([`NO_SLOT`]: none) for numbers below
    /// [`DIRECT_PORTS`] up to the highest such port in use.
    direct: Box<[u32]>,
}

/// Port numbers below this are looked up in [`PortIndex::direct`] (16 KB at
/// most).
const DIRECT_PORTS: u32 = 4096;
const NO_SLOT: u32 = u32::MAX;

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
        let small = by_number.iter().filter(|e| e.0 < DIRECT_PORTS);
        let mut direct = vec![NO_SLOT; small.clone().map(|e| e.0 as usize + 1).max().unwrap_or(0)];
        for &(p, s) in small {
            direct[p as usize] = u32::try_from(s).unwrap_or(NO_SLOT);
        }
        PortIndex {
            ofports: ofports.into(),
            by_number: by_number.into(),
            direct: direct.into(),
        }
    }

    pub fn entries(&self) -> Vec<(u32, usize)> {
        self.by_number.to_vec()
    }

    #[inline]
    pub fn index_of(&self, ofport: u32) -> Option<usize> {
        if let Some(&s) = self.direct.get(ofport as usize) {
            return (s != NO_SLOT).then_some(s as usize);
        }
        if ofport < DIRECT_PORTS {
            return None;
        }
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

    /// The direct array and the bisection agree for every number, small or not,
    /// in use or not.
    #[test]
    fn direct_lookup_equals_search() {
        let ports = vec![7, 1, 0xfffffffe, 3, 4095, 4096, 0, 70_000];
        let p = PortIndex::new(ports.clone());
        for n in (0..5000).chain([0xfffffffe, 0xffffffff, 70_000, 69_999]) {
            let want = ports.iter().position(|&x| x == n);
            assert_eq!(p.index_of(n), want, "port {n}");
        }
        assert_eq!(PortIndex::new(Vec::new()).index_of(1), None);
    }
}
