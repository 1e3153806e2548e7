//! Tuple-space search: one [`Subtable`] per distinct mask, probed from the subtable with the
//! best entry down, stopping as soon as the best match found outranks everything the
//! remaining subtables hold. Ranks are unique, so the answer is exactly the linear scan's.

use arrayvec::ArrayVec;
use hashbrown::HashMap;

use super::prefix::{prefix_len, PrefixTrie, TRIE_FIELDS};
use super::subtable::Subtable;
use super::RuleSpec;
use crate::flow::Words;
use packet::FlowKey;

#[derive(Debug)]
pub struct Tuple {
    subs: Box<[Subtable]>,
    /// The subtables worth prefetching ([`Subtable::big`]).
    big: Box<[u32]>,
    tries: ArrayVec<PrefixTrie, 2>,
}

/// Under `Auto`, a trie is built for a field when at least this many subtables with a
/// prefix mask on it hold more than one row (single-row subtables are a direct compare,
/// cheaper than a trie walk).
const TRIE_MIN_HASHED_SUBTABLES: usize = 2;

impl Tuple {
    pub fn build(rules: &[RuleSpec<'_>], force_tries: bool) -> Tuple {
        let mut by_mask: HashMap<&Words, Vec<u32>> = HashMap::new();
        let mut order: Vec<&Words> = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            by_mask
                .entry(r.mask)
                .or_insert_with(|| {
                    order.push(r.mask);
                    Vec::new()
                })
                .push(i as u32);
        }
        let mut subs: Vec<Subtable> = order
            .iter()
            .map(|m| Subtable::build(m, rules, &by_mask[*m]))
            .collect();
        subs.sort_by_key(|s| std::cmp::Reverse(s.max_rank));

        let mut tries = ArrayVec::new();
        for field in TRIE_FIELDS {
            let mut trie = PrefixTrie::new(field);
            let plen_of = |s: &Subtable| prefix_len(trie.field_bits(s.mask()));
            let hashed = subs
                .iter()
                .filter(|s| s.rows() > 1 && plen_of(s).is_some())
                .count();
            let any = subs.iter().any(|s| plen_of(s).is_some());
            if !any || (!force_tries && hashed < TRIE_MIN_HASHED_SUBTABLES) {
                continue;
            }
            let t = tries.len() as u8;
            for s in subs.iter_mut() {
                let Some(plen) = prefix_len(trie.field_bits(s.mask())) else {
                    continue;
                };
                for (row, _) in s.iter_rows() {
                    let v = trie.field_bits(&row);
                    trie.insert(v, plen);
                }
                // A subtable prunable by two fields keeps the first trie only.
                if s.prefix.is_none() {
                    s.prefix = Some((t, plen));
                }
            }
            tries.push(trie);
        }
        let big = (0..subs.len() as u32)
            .filter(|&i| subs[i as usize].big)
            .collect();
        Tuple {
            big,
            subs: subs.into(),
            tries,
        }
    }

    pub fn has_tries(&self) -> bool {
        !self.tries.is_empty()
    }

    pub fn subtables(&self) -> usize {
        self.subs.len()
    }

    pub fn prefetches(&self) -> bool {
        !self.big.is_empty()
    }

    /// Prefetches the big subtables' buckets for `key` (see [`Subtable::prefetch`]).
    #[inline]
    pub fn prefetch(&self, key: &Words, prefetch: &mut impl FnMut(*const u8)) {
        for &i in self.big.iter() {
            if let Some(s) = self.subs.get(i as usize) {
                s.prefetch(key, prefetch);
            }
        }
    }

    /// [`Self::prefetch`] for every key of a burst, subtable by subtable.
    #[inline]
    pub fn prefetch_keys(&self, keys: &[FlowKey], prefetch: &mut impl FnMut(*const u8)) {
        for &i in self.big.iter() {
            if let Some(s) = self.subs.get(i as usize) {
                s.prefetch_keys(keys, prefetch);
            }
        }
    }

    #[inline]
    pub fn lookup(&self, key: &Words) -> Option<u32> {
        if self.tries.is_empty() {
            return self.lookup_without_tries(key);
        }
        let mut best: Option<(u32, u64)> = None;
        // Trie walks are done on first need only.
        let mut lens: [Option<u64>; 2] = [None, None];
        for s in self.subs.iter() {
            if let Some((_, r)) = best {
                if r > s.max_rank {
                    break;
                }
            }
            if let Some((t, plen)) = s.prefix {
                let t = usize::from(t);
                let l = *lens[t].get_or_insert_with(|| self.tries[t].lengths(key));
                if l & (1u64 << plen) == 0 {
                    continue;
                }
            }
            if let Some((slot, rank)) = s.find(key) {
                if best.is_none_or(|(_, r)| rank > r) {
                    best = Some((slot, rank));
                }
            }
        }
        best.map(|b| b.0)
    }

    /// [`lookup`](Self::lookup) of a table without tries (most): no prefix test per
    /// subtable. The first match is the best unless a later subtable's best entry
    /// outranks it.
    #[inline]
    fn lookup_without_tries(&self, key: &Words) -> Option<u32> {
        let mut subs = self.subs.iter();
        let (mut slot, mut rank) = loop {
            let s = subs.next()?;
            if let Some(found) = s.find(key) {
                break found;
            }
        };
        for s in subs {
            if rank > s.max_rank {
                break;
            }
            if let Some((sl, r)) = s.find(key) {
                if r > rank {
                    (slot, rank) = (sl, r);
                }
            }
        }
        Some(slot)
    }
}
