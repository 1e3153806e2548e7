//! A few entries scanned in rank order: for tiny tables this beats any hash.

use arrayvec::ArrayVec;

use super::RuleSpec;
use packet::FLOW_KEY_WORDS;

#[derive(Debug)]
pub struct Linear {
    /// Key words some entry's mask touches: only these are compared (one word for the
    /// usual in_port rule instead of sixteen).
    words: ArrayVec<u8, FLOW_KEY_WORDS>,
    /// (mask, value) of each of `words` for each entry, best rank first, flat: entry i's
    /// pairs are `pairs[i * words.len()..][..words.len()]`.
    pairs: Box<[(u64, u64)]>,
    /// The slot of each entry, in the same order.
    slots: Box<[u32]>,
}

impl Linear {
    pub fn build(rules: &[RuleSpec<'_>]) -> Linear {
        let words: ArrayVec<u8, FLOW_KEY_WORDS> = (0..FLOW_KEY_WORDS)
            .filter(|&w| rules.iter().any(|r| r.mask[w] != 0))
            .map(|w| w as u8)
            .collect();
        let mut order: Vec<usize> = (0..rules.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(rules[i].rank));
        let pairs = order
            .iter()
            .flat_map(|&i| {
                let r = &rules[i];
                words.iter().map(move |&w| {
                    let w = usize::from(w);
                    (r.mask[w], r.value[w])
                })
            })
            .collect();
        Linear {
            words,
            pairs,
            slots: order.iter().map(|&i| i as u32).collect(),
        }
    }

    #[inline]
    pub fn lookup(&self, key: &[u64; FLOW_KEY_WORDS]) -> Option<u32> {
        match *self.words.as_slice() {
            // Wildcard-all entries only: the best one.
            [] => self.slots.first().copied(),
            // One word (in_port rules): a load, an and and a compare per entry.
            [w] => {
                let x = key[usize::from(w) % FLOW_KEY_WORDS];
                let i = self.pairs.iter().position(|&(m, v)| x & m == v)?;
                self.slots.get(i).copied()
            }
            ref words => {
                let mut kw = [0u64; FLOW_KEY_WORDS];
                for (j, &w) in words.iter().enumerate() {
                    kw[j] = key[usize::from(w) % FLOW_KEY_WORDS];
                }
                let i = self.pairs.chunks_exact(words.len()).position(|pairs| {
                    let mut diff = 0u64;
                    for (j, &(m, v)) in pairs.iter().enumerate() {
                        diff |= (kw[j] & m) ^ v;
                    }
                    diff == 0
                })?;
                self.slots.get(i).copied()
            }
        }
    }
}
