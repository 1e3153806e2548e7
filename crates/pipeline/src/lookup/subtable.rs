//! One mask's entries: a hash table from the masked key words to the best entry with those
//! words. Entries with the same mask and value match the same packets, so only the best
//! of them can ever be returned and only it is kept.

use arrayvec::ArrayVec;
use hashbrown::HashTable;

use super::{hash_words, RuleSpec};
use crate::flow::Words;
use packet::FLOW_KEY_WORDS;

#[derive(Debug)]
pub struct Subtable {
    /// Key words the mask touches, and the mask of each.
    words: ArrayVec<u8, FLOW_KEY_WORDS>,
    mask: ArrayVec<u64, FLOW_KEY_WORDS>,
    /// Row r's masked words are `vals[r * k..][..k]`.
    vals: Box<[u64]>,
    slots: Box<[u32]>,
    ranks: Box<[u64]>,
    /// Rows by hash; unused with a single row (compared directly).
    index: HashTable<u32>,
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
        let mut words = ArrayVec::new();
        let mut m = ArrayVec::new();
        for (i, &w) in mask.iter().enumerate() {
            if w != 0 {
                words.push(i as u8);
                m.push(w);
            }
        }
        let k = words.len();
        let mut vals: Vec<u64> = Vec::with_capacity(members.len() * k);
        let mut slots: Vec<u32> = Vec::with_capacity(members.len());
        let mut ranks: Vec<u64> = Vec::with_capacity(members.len());
        let mut index: HashTable<u32> = HashTable::with_capacity(members.len());
        let mut row_vals = [0u64; FLOW_KEY_WORDS];
        for &slot in members {
            let r = &rules[slot as usize];
            for (j, &w) in words.iter().enumerate() {
                row_vals[j] = r.value[w as usize];
            }
            let row = &row_vals[..k];
            let h = hash_words(row);
            let found = index
                .find(h, |&x| &vals[x as usize * k..][..k] == row)
                .copied();
            match found {
                Some(x) => {
                    if r.rank > ranks[x as usize] {
                        ranks[x as usize] = r.rank;
                        slots[x as usize] = slot;
                    }
                }
                None => {
                    let x = slots.len() as u32;
                    vals.extend_from_slice(row);
                    slots.push(slot);
                    ranks.push(r.rank);
                    index.insert_unique(h, x, |&y| hash_words(&vals[y as usize * k..][..k]));
                }
            }
        }
        if slots.len() <= 1 {
            index = HashTable::new();
        }
        let max_rank = ranks.iter().copied().max().unwrap_or(0);
        let min_rank = ranks.iter().copied().min().unwrap_or(0);
        Subtable {
            words,
            mask: m,
            vals: vals.into(),
            slots: slots.into(),
            ranks: ranks.into(),
            index,
            max_rank,
            min_rank,
            prefix: None,
            full_mask: *mask,
        }
    }

    pub fn mask(&self) -> &Words {
        &self.full_mask
    }

    pub fn rows(&self) -> usize {
        self.slots.len()
    }

    /// Row values as full key words, for building tries.
    pub fn row_words(&self, r: usize) -> Words {
        let k = self.words.len();
        let mut out = [0u64; FLOW_KEY_WORDS];
        for (j, &w) in self.words.iter().enumerate() {
            out[w as usize] = self.vals[r * k + j];
        }
        out
    }

    /// (slot, rank) of the best entry of this mask matching `key`.
    #[inline(always)]
    pub fn find(&self, key: &Words) -> Option<(u32, u64)> {
        let k = self.words.len();
        let mut buf = [0u64; FLOW_KEY_WORDS];
        for j in 0..k {
            buf[j] = key[self.words[j] as usize] & self.mask[j];
        }
        let probe = &buf[..k];
        let row = if self.slots.len() <= 1 {
            if self.slots.is_empty() || self.vals[..] != *probe {
                return None;
            }
            0
        } else {
            let h = hash_words(probe);
            *self
                .index
                .find(h, |&x| &self.vals[x as usize * k..][..k] == probe)? as usize
        };
        Some((self.slots[row], self.ranks[row]))
    }
}
