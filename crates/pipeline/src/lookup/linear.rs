//! A few entries scanned in rank order: for tiny tables this beats any hash.

use arrayvec::ArrayVec;

use super::RuleSpec;
use crate::flow::Words;
use packet::FLOW_KEY_WORDS;

#[derive(Debug)]
pub struct Linear {
    /// Key words some entry's mask touches: only these are compared (one word for the
    /// usual in_port rule instead of sixteen).
    words: ArrayVec<u8, FLOW_KEY_WORDS>,
    /// (value, mask, slot), best rank first; value and mask hold `words` only, in order.
    rules: Box<[(Words, Words, u32)]>,
}

impl Linear {
    pub fn build(rules: &[RuleSpec<'_>]) -> Linear {
        let words: ArrayVec<u8, FLOW_KEY_WORDS> = (0..FLOW_KEY_WORDS)
            .filter(|&w| rules.iter().any(|r| r.mask[w] != 0))
            .map(|w| w as u8)
            .collect();
        let mut v: Vec<(u64, Words, Words, u32)> = rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut val = [0u64; FLOW_KEY_WORDS];
                let mut mask = [0u64; FLOW_KEY_WORDS];
                for (j, &w) in words.iter().enumerate() {
                    val[j] = r.value[usize::from(w)];
                    mask[j] = r.mask[usize::from(w)];
                }
                (r.rank, val, mask, i as u32)
            })
            .collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.0));
        Linear {
            words,
            rules: v.into_iter().map(|(_, val, m, s)| (val, m, s)).collect(),
        }
    }

    #[inline]
    pub fn lookup(&self, key: &Words) -> Option<u32> {
        for (value, mask, slot) in self.rules.iter() {
            let mut diff = 0u64;
            for (j, &w) in self.words.iter().enumerate() {
                diff |= (key[usize::from(w) % FLOW_KEY_WORDS] & mask[j]) ^ value[j];
            }
            if diff == 0 {
                return Some(*slot);
            }
        }
        None
    }
}
