//! One mask's entries: a hash table from the masked key words to the best entry with those
//! words. Entries with the same mask and value match the same packets, so only the best
//! of them can ever be returned and only it is kept.
//!
//! The masked words of a row sit in the hash table's bucket together with the row's slot
//! and rank, as a fixed-size array (the mask's word count rounded up to 2, 4, 8 or 16,
//! padded with zeros): a probe is one hash, one bucket load and a compare of a constant
//! number of words, with no call to `memcmp` and no further dependent load.

use arrayvec::ArrayVec;
use hashbrown::HashTable;

use super::{hash_words, RuleSpec};
use crate::flow::Words;
use packet::FLOW_KEY_WORDS;

#[derive(Clone, Copy, Debug)]
struct Row<const K: usize> {
    vals: [u64; K],
    rank: u64,
    slot: u32,
}

/// Word-by-word equality folded into one branch: a fixed-size compare the compiler
/// unrolls (a slice or array `==` may become a call to `memcmp`).
#[inline(always)]
fn same<const K: usize>(a: &[u64; K], b: &[u64; K]) -> bool {
    let mut d = 0u64;
    for j in 0..K {
        d |= a[j] ^ b[j];
    }
    d == 0
}

/// Rows of `K` words. A single row is compared directly, without hashing.
#[derive(Debug)]
struct Rows<const K: usize> {
    one: Option<Row<K>>,
    index: HashTable<Row<K>>,
}

impl<const K: usize> Rows<K> {
    fn build(words: &[u8], rules: &[RuleSpec<'_>], members: &[u32]) -> Rows<K> {
        let mut index: HashTable<Row<K>> = HashTable::with_capacity(members.len());
        for &slot in members {
            let r = &rules[slot as usize];
            let mut vals = [0u64; K];
            for (j, &w) in words.iter().enumerate() {
                vals[j] = r.value[usize::from(w)];
            }
            let h = hash_words(&vals);
            match index.find_mut(h, |x| same(&x.vals, &vals)) {
                Some(x) => {
                    if r.rank > x.rank {
                        x.rank = r.rank;
                        x.slot = slot;
                    }
                }
                None => {
                    index.insert_unique(
                        h,
                        Row {
                            vals,
                            rank: r.rank,
                            slot,
                        },
                        |y| hash_words(&y.vals),
                    );
                }
            }
        }
        if index.len() == 1 {
            let one = index.iter().next().copied();
            return Rows {
                one,
                index: HashTable::new(),
            };
        }
        Rows { one: None, index }
    }

    fn iter(&self) -> impl Iterator<Item = &Row<K>> {
        self.one.iter().chain(self.index.iter())
    }

    #[inline(always)]
    fn find(&self, words: &[u8; FLOW_KEY_WORDS], mask: &Words, key: &Words) -> Option<(u32, u64)> {
        let mut probe = [0u64; K];
        for j in 0..K {
            probe[j] = key[usize::from(words[j]) % FLOW_KEY_WORDS] & mask[j];
        }
        let row = match &self.one {
            Some(row) => {
                if !same(&row.vals, &probe) {
                    return None;
                }
                row
            }
            None => self
                .index
                .find(hash_words(&probe), |x| same(&x.vals, &probe))?,
        };
        Some((row.slot, row.rank))
    }
}

#[derive(Debug)]
enum AnyRows {
    K2(Rows<2>),
    K4(Rows<4>),
    K8(Rows<8>),
    K16(Rows<16>),
}

#[derive(Debug)]
pub struct Subtable {
    /// Key words the mask touches, and the mask of each; past the mask's word count, word 0
    /// with mask 0, so a padded probe word is always 0.
    words: [u8; FLOW_KEY_WORDS],
    packed_mask: Words,
    k: usize,
    rows: AnyRows,
    len: usize,
    pub max_rank: u64,
    pub min_rank: u64,
    /// (trie, prefix length): skip this subtable when the trie says no entry's prefix of
    /// that length matches the packet.
    pub prefix: Option<(u8, u8)>,
    full_mask: Words,
}

impl Subtable {
    /// All `members` (indices into `rules`) share `mask`.
    pub fn build(mask: &Words, rules: &[RuleSpec<'_>], members: &[u32]) -> Subtable {
        let mut used: ArrayVec<u8, FLOW_KEY_WORDS> = ArrayVec::new();
        let mut words = [0u8; FLOW_KEY_WORDS];
        let mut m = [0u64; FLOW_KEY_WORDS];
        for (i, &w) in mask.iter().enumerate() {
            if w != 0 {
                words[used.len()] = i as u8;
                m[used.len()] = w;
                used.push(i as u8);
            }
        }
        let k = used.len();
        let rows = match k {
            0..=2 => AnyRows::K2(Rows::build(&used, rules, members)),
            3..=4 => AnyRows::K4(Rows::build(&used, rules, members)),
            5..=8 => AnyRows::K8(Rows::build(&used, rules, members)),
            _ => AnyRows::K16(Rows::build(&used, rules, members)),
        };
        let mut s = Subtable {
            words,
            packed_mask: m,
            k,
            rows,
            len: 0,
            max_rank: 0,
            min_rank: 0,
            prefix: None,
            full_mask: *mask,
        };
        let ranks = || s.iter_rows().map(|(_, rank)| rank);
        let (len, max_rank, min_rank) = (
            ranks().count(),
            ranks().max().unwrap_or(0),
            ranks().min().unwrap_or(0),
        );
        s.len = len;
        s.max_rank = max_rank;
        s.min_rank = min_rank;
        s
    }

    pub fn mask(&self) -> &Words {
        &self.full_mask
    }

    pub fn rows(&self) -> usize {
        self.len
    }

    /// Every row's value as full key words, with its rank (for building tries).
    pub fn iter_rows(&self) -> impl Iterator<Item = (Words, u64)> + '_ {
        fn full<'a, const K: usize>(
            s: &'a Subtable,
            rows: &'a Rows<K>,
        ) -> impl Iterator<Item = (Words, u64)> + 'a {
            rows.iter().map(move |r| {
                let mut out = [0u64; FLOW_KEY_WORDS];
                for j in 0..s.k {
                    out[usize::from(s.words[j])] = r.vals[j];
                }
                (out, r.rank)
            })
        }
        let it: Box<dyn Iterator<Item = (Words, u64)> + '_> = match &self.rows {
            AnyRows::K2(r) => Box::new(full(self, r)),
            AnyRows::K4(r) => Box::new(full(self, r)),
            AnyRows::K8(r) => Box::new(full(self, r)),
            AnyRows::K16(r) => Box::new(full(self, r)),
        };
        it
    }

    /// (slot, rank) of the best entry of this mask matching `key`.
    #[inline(always)]
    pub fn find(&self, key: &Words) -> Option<(u32, u64)> {
        match &self.rows {
            AnyRows::K2(r) => r.find(&self.words, &self.packed_mask, key),
            AnyRows::K4(r) => r.find(&self.words, &self.packed_mask, key),
            AnyRows::K8(r) => r.find(&self.words, &self.packed_mask, key),
            AnyRows::K16(r) => r.find(&self.words, &self.packed_mask, key),
        }
    }
}
