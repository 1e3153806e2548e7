//! A table in which no entry looks at the packet: the answer is fixed.

use super::RuleSpec;

#[derive(Debug)]
pub struct Empty {
    hit: Option<u32>,
}

impl Empty {
    /// `rules` must all be wildcard-all (or absent): the best of them always wins.
    pub fn build(rules: &[RuleSpec<'_>]) -> Empty {
        let hit = rules
            .iter()
            .enumerate()
            .max_by_key(|(_, r)| r.rank)
            .map(|(i, _)| i as u32);
        Empty { hit }
    }

    #[inline(always)]
    pub fn lookup(&self) -> Option<u32> {
        self.hit
    }
}
