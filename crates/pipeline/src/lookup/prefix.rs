//! Binary tries over an IPv4 address field, used to prune tuple-space search: one walk
//! down the trie of all entries' prefixes on the field says, for every prefix length, whether
//! any entry's prefix of that length equals the packet's leading bits. A subtable whose
//! mask on the field is a prefix of a length the walk did not report cannot match and is
//! skipped without hashing (OVS's prefix tracking). Only the bits the entries themselves
//! mask are looked at, so the pruning is exact whatever else the packet holds.

use crate::flow::Words;
use packet::{Field, FieldPos};

/// The fields tries are built for.
pub const TRIE_FIELDS: [Field; 2] = [Field::Ipv4Dst, Field::Ipv4Src];

#[derive(Clone, Copy, Debug, Default)]
struct Node {
    /// 0: no child (the root is never a child).
    child: [u32; 2],
    /// Some entry's prefix ends here.
    end: bool,
}

#[derive(Debug)]
pub struct PrefixTrie {
    pos: FieldPos,
    nodes: Vec<Node>,
}

impl PrefixTrie {
    pub fn new(field: Field) -> PrefixTrie {
        PrefixTrie {
            pos: field.pos(),
            nodes: vec![Node::default()],
        }
    }

    /// The field's 32 bits of `words`.
    #[inline(always)]
    pub fn field_bits(&self, words: &Words) -> u32 {
        (words[usize::from(self.pos.word)] >> self.pos.shift) as u32
    }

    /// Adds the prefix `value/plen` (`plen` in 1..=32; `value`'s low bits are ignored).
    pub fn insert(&mut self, value: u32, plen: u8) {
        let mut n = 0usize;
        for depth in 0..plen {
            let bit = ((value >> (31 - depth)) & 1) as usize;
            let next = self.nodes[n].child[bit];
            n = if next == 0 {
                self.nodes.push(Node::default());
                let id = (self.nodes.len() - 1) as u32;
                self.nodes[n].child[bit] = id;
                id as usize
            } else {
                next as usize
            };
        }
        self.nodes[n].end = true;
    }

    /// Bit `p` set when some inserted prefix of length `p` matches the packet's field.
    #[inline]
    pub fn lengths(&self, key: &Words) -> u64 {
        let v = self.field_bits(key);
        let mut out = 0u64;
        let mut n = 0usize;
        let mut depth = 0u32;
        loop {
            let node = self.nodes[n];
            if node.end {
                out |= 1 << depth;
            }
            if depth == 32 {
                break;
            }
            let bit = ((v >> (31 - depth)) & 1) as usize;
            let next = node.child[bit];
            if next == 0 {
                break;
            }
            n = next as usize;
            depth += 1;
        }
        out
    }
}

/// The prefix length of a mask, if it is a non-empty prefix.
pub fn prefix_len(mask: u32) -> Option<u8> {
    let ones = mask.leading_ones();
    (ones > 0 && mask.count_ones() == ones).then_some(ones as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_report_matching_prefixes() {
        let mut t = PrefixTrie::new(Field::Ipv4Src);
        t.insert(0x0a00_0000, 8);
        t.insert(0xac10_0000, 12);
        t.insert(0x0a00_0400, 22);
        t.insert(0x0a00_0401, 32);
        let key_for = |ip: u32| {
            let mut w = [0u64; packet::FLOW_KEY_WORDS];
            w[5] = u64::from(ip) << 32;
            w
        };
        assert_eq!(t.lengths(&key_for(0x0a01_0203)), 1 << 8);
        assert_eq!(t.lengths(&key_for(0x0a00_0405)), (1 << 8) | (1 << 22));
        assert_eq!(
            t.lengths(&key_for(0x0a00_0401)),
            (1 << 8) | (1 << 22) | (1 << 32)
        );
        assert_eq!(t.lengths(&key_for(0xac1f_0001)), 1 << 12);
        assert_eq!(t.lengths(&key_for(0xc0a8_0001)), 0);
        assert_eq!(prefix_len(0xffff_0000), Some(16));
        assert_eq!(prefix_len(0xffff_00ff), None);
        assert_eq!(prefix_len(0), None);
    }
}
