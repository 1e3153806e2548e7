//! Compiled classifiers: each returns, for a key, the slot of the entry a linear scan would
//! return (highest [`crate::flow::rank`], i.e. highest priority, ties to the later
//! addition), or `None`.
//!
//! One of six shapes is picked per table version by [`Classifier::build`]:
//! - [`empty`]: no entry looks at the key (none at all, or only wildcard-all entries);
//! - [`port`]: every entry matches in_port exactly or nothing: an array indexed by in_port;
//! - [`linear`]: a handful of entries, scanned in rank order;
//! - [`exact`]: every entry shares one mask (plus wildcard-all entries below them): one
//!   hash probe;
//! - [`tuple`]: tuple-space search, one hash table per distinct mask, probed in order of
//!   their best rank with early exit;
//! - [`prefix`]: tries over IPv4 addresses that let tuple-space search skip subtables whose
//!   prefix cannot match, as OVS does.

pub mod empty;
pub mod exact;
pub mod inline;
pub mod linear;
pub mod port;
pub mod prefix;
pub mod subtable;
pub mod tuple;

use crate::flow::{ValueWords, Words};

/// One entry as the classifier builder sees it; its slot is its index in the slice.
#[derive(Clone, Copy, Debug)]
pub struct RuleSpec<'a> {
    pub value: ValueWords<'a>,
    pub mask: &'a Words,
    pub rank: u64,
}

/// Which structure to build. Anything but `Auto` is for tests and benchmarks; every forced
/// choice is valid for every table (an "exact" request on a table with several masks falls
/// back to tuple-space search).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Strategy {
    #[default]
    Auto,
    Linear,
    Exact,
    Tuple,
    /// Tuple-space search with prefix tries on every IPv4 address field that has prefix
    /// subtables, whatever their size.
    TupleWithTries,
}

/// Tables up to this size are scanned linearly under `Auto`.
pub const LINEAR_MAX: usize = 4;

/// Tables up to this size whose entries all have different masks (a few ACL rules on
/// different fields and prefixes) are scanned linearly under `Auto` too: tuple-space
/// search would probe one single-row subtable per entry, gathering and dispatching per
/// subtable, where a scan compares the few words the table uses.
pub const LINEAR_DISTINCT_MAX: usize = 16;

/// One per table version; the variants stay inline (no box) to save a pointer chase per
/// lookup.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Classifier {
    Empty(empty::Empty),
    Port(port::PortDirect),
    Linear(linear::Linear),
    Exact(exact::Exact),
    Tuple(tuple::Tuple),
    /// Made by the table compiler only, which has the entries' hits
    /// ([`inline::InlineExact::try_build`]); [`Classifier::build`] never returns it.
    /// Shared with the table version ([`crate::CompiledTable`]'s inline probe), which
    /// reaches it without testing this enum.
    Inline(std::sync::Arc<inline::InlineExact>),
}

impl Classifier {
    pub fn build(rules: &[RuleSpec<'_>], strategy: Strategy) -> Classifier {
        Self::build_with_hits(rules, strategy, None)
    }

    /// [`Classifier::build`], except that with `hits` (`rules[i]`'s hit is `hits[i]`) and
    /// [`Strategy::Auto`], entries that would be hashed ([`Classifier::Exact`] or
    /// [`Classifier::Tuple`]) get the one-line form ([`Classifier::Inline`]) when they have
    /// its shape, without the general form being built first (that was a second hash
    /// table built and thrown away per compile: 500 instructions per entry).
    pub fn build_with_hits(
        rules: &[RuleSpec<'_>],
        strategy: Strategy,
        hits: Option<&[crate::table::HitLine]>,
    ) -> Classifier {
        let nonzero = |r: &RuleSpec<'_>| r.mask.iter().any(|&m| m != 0);
        match strategy {
            Strategy::Linear => return Classifier::Linear(linear::Linear::build(rules)),
            Strategy::Tuple => return Classifier::Tuple(tuple::Tuple::build(rules, false)),
            Strategy::TupleWithTries => return Classifier::Tuple(tuple::Tuple::build(rules, true)),
            Strategy::Exact | Strategy::Auto => {}
        }
        if !rules.iter().any(nonzero) {
            return Classifier::Empty(empty::Empty::build(rules));
        }
        if strategy == Strategy::Auto {
            if let Some(p) = port::PortDirect::try_build(rules) {
                return Classifier::Port(p);
            }
        }
        let distinct_masks = || {
            rules
                .iter()
                .enumerate()
                .all(|(i, r)| rules[..i].iter().all(|q| q.mask != r.mask))
        };
        if strategy == Strategy::Auto
            && (rules.len() <= LINEAR_MAX
                || (rules.len() <= LINEAR_DISTINCT_MAX && distinct_masks()))
        {
            return Classifier::Linear(linear::Linear::build(rules));
        }
        if let Some(hits) = hits.filter(|_| strategy == Strategy::Auto) {
            if let Some(x) = inline::InlineExact::try_build(rules, hits) {
                return Classifier::Inline(std::sync::Arc::new(x));
            }
        }
        if let Some(e) = exact::Exact::try_build(rules) {
            return Classifier::Exact(e);
        }
        Classifier::Tuple(tuple::Tuple::build(rules, false))
    }

    #[inline(always)]
    pub fn lookup(&self, key: &Words) -> Option<u32> {
        match self {
            Classifier::Empty(c) => c.lookup(),
            Classifier::Port(c) => c.lookup(key),
            Classifier::Linear(c) => c.lookup(key),
            Classifier::Exact(c) => c.lookup(key),
            Classifier::Tuple(c) => c.lookup(key),
            Classifier::Inline(c) => c.lookup(key).map(|h| h.slot),
        }
    }

    /// Some hash table of this classifier is big enough to be worth prefetching
    /// (see [`subtable::Subtable::prefetch`]).
    pub fn prefetches(&self) -> bool {
        match self {
            Classifier::Exact(c) => c.prefetches(),
            Classifier::Tuple(c) => c.prefetches(),
            Classifier::Inline(c) => c.prefetches(),
            Classifier::Empty(_) | Classifier::Port(_) | Classifier::Linear(_) => false,
        }
    }

    /// The structure's name, for logs, metrics and benchmark labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Classifier::Empty(_) => "empty",
            Classifier::Port(_) => "port",
            Classifier::Linear(_) => "linear",
            Classifier::Exact(_) => "exact",
            Classifier::Tuple(t) if t.has_tries() => "tuple+prefix",
            Classifier::Tuple(_) => "tuple",
            Classifier::Inline(_) => "inline",
        }
    }
}

#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Hash of masked key words: a folded multiply per word (foldhash's mixer). The masked
/// words are computed once per subtable probe and hashed once.
#[inline(always)]
pub(crate) fn hash_words(ws: &[u64]) -> u64 {
    let mut h: u64 = 0x243f_6a88_85a3_08d3;
    for &w in ws {
        h = fold_mul(h ^ w, 0x9e37_79b9_7f4a_7c15);
    }
    fold_mul(h, 0xff51_afd7_ed55_8ccd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use packet::FLOW_KEY_WORDS;

    fn specs(masks: &[Words]) -> Vec<RuleSpec<'_>> {
        masks
            .iter()
            .enumerate()
            .map(|(i, m)| RuleSpec {
                value: m.into(),
                mask: m,
                rank: i as u64,
            })
            .collect()
    }

    /// Up to LINEAR_DISTINCT_MAX entries with pairwise different masks are scanned; more,
    /// or repeated masks, get hash tables.
    #[test]
    fn auto_scans_few_distinct_masks() {
        let mask = |i: usize| {
            let mut m = [0u64; FLOW_KEY_WORDS];
            m[3 + i % 4] = u64::MAX << (i / 4);
            m
        };
        let distinct: Vec<Words> = (0..LINEAR_DISTINCT_MAX).map(mask).collect();
        let c = Classifier::build(&specs(&distinct), Strategy::Auto);
        assert_eq!(c.kind(), "linear");
        let more: Vec<Words> = (0..=LINEAR_DISTINCT_MAX).map(mask).collect();
        assert_eq!(
            Classifier::build(&specs(&more), Strategy::Auto).kind(),
            "tuple"
        );
        let mut shared: Vec<Words> = (0..LINEAR_MAX).map(mask).collect();
        shared.push(mask(0));
        assert_ne!(
            Classifier::build(&specs(&shared), Strategy::Auto).kind(),
            "linear"
        );
    }
}
