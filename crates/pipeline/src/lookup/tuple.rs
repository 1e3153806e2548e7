//! Tuple-space search: one [`Subtable`] per distinct mask, probed from the subtable with the
//! best entry down, stopping as soon as the best match found outranks everything the
//! remaining subtables hold. Ranks are unique, so the answer is exactly the linear scan's.

use arrayvec::ArrayVec;
use hashbrown::HashMap;

use super::prefix::{prefix_len, PrefixTrie, TRIE_FIELDS};
use super::subtable::{SinglePair, Subtable};
use super::RuleSpec;
use crate::flow::Words;
use packet::{FlowKey, FLOW_KEY_WORDS};

#[derive(Debug)]
pub struct Tuple {
    subs: Box<[Subtable]>,
    /// The subtables worth prefetching ([`Subtable::big`]).
    big: Box<[u32]>,
    tries: ArrayVec<PrefixTrie, 2>,
    /// The search order of a table without tries: `subs` in the same order, with each
    /// single-row subtable on at most two key words (a prefix ACL entry above a big exact
    /// table, a catch-all below it) copied into a run of [`Step::Singles`], where its test
    /// is two masked compares without the subtable's dispatch on its row width and row
    /// count.
    steps: Box<[Step]>,
}

/// One entry of [`Tuple::steps`].
#[derive(Debug)]
enum Step {
    /// Best rank first, all on the key words `words` (the deeper header's word first: it
    /// tells entries apart more often, so the test usually ends at the first compare).
    /// The run is its own allocation: the walk reads it through its pointer and length.
    Singles { run: Box<[Single]>, words: [u8; 2] },
    /// `subs[i]`, whose best entry has rank `max_rank`.
    Sub { i: u32, max_rank: u64 },
}

/// A subtable of one row on at most two key words (those of its [`Step::Singles`]).
#[derive(Clone, Copy, Debug)]
struct Single {
    mask: [u64; 2],
    val: [u64; 2],
    rank: u64,
    slot: u32,
}

impl Single {
    /// `a` and `b`: the key's words of the run.
    #[inline(always)]
    fn matches(&self, a: u64, b: u64) -> bool {
        a & self.mask[0] == self.val[0] && b & self.mask[1] == self.val[1]
    }
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
        let mut steps: Vec<Step> = Vec::new();
        // The run being gathered, with its words.
        let mut run: Vec<Single> = Vec::new();
        let mut run_words = [0u8; 2];
        for (i, s) in subs.iter().enumerate() {
            let Some(SinglePair {
                mut words,
                mut mask,
                vals: mut val,
                slot,
                rank,
            }) = s.single_pair()
            else {
                if !run.is_empty() {
                    steps.push(Step::Singles {
                        run: std::mem::take(&mut run).into(),
                        words: run_words,
                    });
                }
                steps.push(Step::Sub {
                    i: i as u32,
                    max_rank: s.max_rank,
                });
                continue;
            };
            if words[1] > words[0] && mask[1] != 0 {
                words.swap(0, 1);
                mask.swap(0, 1);
                val.swap(0, 1);
            }
            if !run.is_empty() && run_words != words {
                steps.push(Step::Singles {
                    run: std::mem::take(&mut run).into(),
                    words: run_words,
                });
            }
            run_words = words;
            run.push(Single {
                mask,
                val,
                rank,
                slot,
            });
        }
        if !run.is_empty() {
            steps.push(Step::Singles {
                run: run.into(),
                words: run_words,
            });
        }
        Tuple {
            big,
            subs: subs.into(),
            tries,
            steps: steps.into(),
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

    #[inline(always)]
    pub fn lookup(&self, key: &Words) -> Option<u32> {
        if self.tries.is_empty() {
            return self.lookup_without_tries(key);
        }
        self.lookup_with_tries(key)
    }

    /// Kept out of line: the trie walks' state would otherwise take registers and stack
    /// from every lookup of a table without tries.
    #[inline(never)]
    fn lookup_with_tries(&self, key: &Words) -> Option<u32> {
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
    /// subtable. A single row that matches with a rank above the best found so far is the
    /// answer (every later step ranks below it); a single row ranked below the best ends
    /// the search, as a subtable whose best entry does.
    #[inline(always)]
    fn lookup_without_tries(&self, key: &Words) -> Option<u32> {
        // (slot, rank) of the best match so far.
        let mut best: Option<(u32, u64)> = None;
        for step in self.steps.iter() {
            match step {
                Step::Singles { run, words } => {
                    let a = key[usize::from(words[0]) % FLOW_KEY_WORDS];
                    let b = key[usize::from(words[1]) % FLOW_KEY_WORDS];
                    match best {
                        None => {
                            for s in run.iter() {
                                if s.matches(a, b) {
                                    return Some(s.slot);
                                }
                            }
                        }
                        Some((slot, r)) => {
                            for s in run.iter() {
                                if r > s.rank {
                                    return Some(slot);
                                }
                                if s.matches(a, b) {
                                    return Some(s.slot);
                                }
                            }
                        }
                    }
                }
                &Step::Sub { i, max_rank } => {
                    if let Some((slot, r)) = best {
                        if r > max_rank {
                            return Some(slot);
                        }
                    }
                    let Some(s) = self.subs.get(i as usize) else {
                        continue;
                    };
                    if let Some((sl, r)) = s.find(key) {
                        if best.is_none_or(|(_, b)| r > b) {
                            best = Some((sl, r));
                        }
                    }
                }
            }
        }
        best.map(|b| b.0)
    }
}
