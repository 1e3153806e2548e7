//! Every entry that looks at the packet shares one mask: one hash probe answers, and the
//! wildcard-all entries (all ranked below) are the fallback. This is the common shape of
//! generated pipelines (classifier by in_port+dl_src, L2 by metadata+dl_dst, NAT by
//! 5-tuple).

use super::subtable::Subtable;
use super::RuleSpec;
use crate::flow::Words;
use packet::FlowKey;

#[derive(Debug)]
pub struct Exact {
    sub: Subtable,
    fallback: Option<u32>,
}

impl Exact {
    /// `None` unless the table has exactly one non-empty mask and every wildcard-all entry
    /// ranks below every entry with that mask.
    pub fn try_build(rules: &[RuleSpec<'_>]) -> Option<Exact> {
        let mut mask: Option<&Words> = None;
        let mut members = Vec::with_capacity(rules.len());
        let mut fallback: Option<(u32, u64)> = None;
        for (i, r) in rules.iter().enumerate() {
            if r.mask.iter().all(|&m| m == 0) {
                if fallback.is_none_or(|(_, fr)| r.rank > fr) {
                    fallback = Some((i as u32, r.rank));
                }
                continue;
            }
            match mask {
                None => mask = Some(r.mask),
                Some(m) if m == r.mask => {}
                Some(_) => return None,
            }
            members.push(i as u32);
        }
        let sub = Subtable::build(mask?, rules, &members);
        if let Some((_, fr)) = fallback {
            if fr > sub.min_rank {
                return None;
            }
        }
        Some(Exact {
            sub,
            fallback: fallback.map(|f| f.0),
        })
    }

    pub fn prefetches(&self) -> bool {
        self.sub.big
    }

    #[inline]
    pub fn prefetch(&self, key: &Words, prefetch: &mut impl FnMut(*const u8)) {
        self.sub.prefetch(key, prefetch);
    }

    #[inline]
    pub fn prefetch_keys(&self, keys: &[FlowKey], prefetch: &mut impl FnMut(*const u8)) {
        self.sub.prefetch_keys(keys, prefetch);
    }

    #[inline]
    pub fn lookup(&self, key: &Words) -> Option<u32> {
        match self.sub.find(key) {
            Some((slot, _)) => Some(slot),
            None => self.fallback,
        }
    }
}
