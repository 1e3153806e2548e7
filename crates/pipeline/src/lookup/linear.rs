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
    /// pairs are `pairs[i * width..][..width]`, padded with (0, 0) past `words`.
    pairs: Box<[(u64, u64)]>,
    /// `words.len()` rounded up to 1, 2, 4, 8 or 16: a fixed-size compare per entry.
    width: usize,
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
        let width = words.len().next_power_of_two();
        let words_ref = &words;
        let pairs = order
            .iter()
            .flat_map(|&i| {
                let r = &rules[i];
                (0..width).map(move |j| match words_ref.get(j) {
                    Some(&w) => (r.mask[usize::from(w)], r.value[usize::from(w)]),
                    None => (0, 0),
                })
            })
            .collect();
        Linear {
            pairs,
            width,
            slots: order.iter().map(|&i| i as u32).collect(),
            words,
        }
    }

    /// The first entry (best rank) whose `K` pairs all match the gathered key words.
    #[inline(always)]
    fn scan<const K: usize>(&self, key: &[u64; FLOW_KEY_WORDS]) -> Option<u32> {
        let mut kw = [0u64; K];
        for (j, &w) in self.words.iter().enumerate().take(K) {
            kw[j] = key[usize::from(w) % FLOW_KEY_WORDS];
        }
        let i = self.pairs.chunks_exact(K).position(|row| {
            let mut diff = 0u64;
            for j in 0..K {
                diff |= (kw[j] & row[j].0) ^ row[j].1;
            }
            diff == 0
        })?;
        self.slots.get(i).copied()
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
            _ => match self.width {
                2 => self.scan::<2>(key),
                4 => self.scan::<4>(key),
                8 => self.scan::<8>(key),
                _ => self.scan::<16>(key),
            },
        }
    }
}
