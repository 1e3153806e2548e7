//! A few entries scanned in rank order: for tiny tables this beats any hash.

use super::RuleSpec;
use crate::flow::Words;
use packet::FLOW_KEY_WORDS;

#[derive(Debug)]
pub struct Linear {
    /// (value, mask, slot), best rank first.
    rules: Box<[(Words, Words, u32)]>,
}

impl Linear {
    pub fn build(rules: &[RuleSpec<'_>]) -> Linear {
        let mut v: Vec<(u64, Words, Words, u32)> = rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.rank, *r.value, *r.mask, i as u32))
            .collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.0));
        Linear {
            rules: v.into_iter().map(|(_, val, m, s)| (val, m, s)).collect(),
        }
    }

    #[inline]
    pub fn lookup(&self, key: &Words) -> Option<u32> {
        for (value, mask, slot) in self.rules.iter() {
            let mut diff = 0u64;
            for i in 0..FLOW_KEY_WORDS {
                diff |= (key[i] & mask[i]) ^ value[i];
            }
            if diff == 0 {
                return Some(*slot);
            }
        }
        None
    }
}
