//! The common shape of generated tables (classifier by in_port + dl_src, L2 switch by
//! dl_dst or metadata + dl_dst), answered with one hash of at most two key words and one
//! cache line: a level whose entries are
//! - a few entries ranked above all others, with any masks (the metadata DNAT rule above
//!   a classifier): compared one by one first ([`PRE_MAX`] of them, [`PRE_WORDS`] key
//!   words each);
//! - then entries that all share one mask touching at most two key words (the "main"
//!   rows, any number);
//! - then a few entries ranked below every main row, with any masks (a catch-all prefix
//!   below an exact table): compared one by one when no main row matches ([`POST_MAX`]
//!   of them, [`PRE_WORDS`] key words each);
//! - and wildcard-all entries ranked below every main row (the table-miss entry): the
//!   best of them answers when no main row and no entry above it does.
//!
//! Each main row holds its masked key words and the entry's [`Hit`] (what a simple entry
//! does: outputs, metadata write, goto, its slot for the counters) in one 64-byte line,
//! so a hit is one dependent load after the hash, where the general classifier reads a
//! bucket row, then the level's hits, then the rule. The table compiler builds this form
//! ([`super::Classifier::Inline`]) in place of the exact or tuple classifier it would
//! otherwise build, under [`super::Strategy::Auto`] only; the walk probes it inlined
//! (`CompiledTable::lookup_fast`), every other caller through
//! [`super::Classifier::lookup`].
//!
//! Cost of a probe: the pre entries' compares (about four instructions per word), two
//! masked loads, two folded multiplies, and a linear probe that a free row ends (the
//! table is at most half full, so usually one row). Memory: 64 bytes per row, twice the
//! main rows rounded up to a power of two of them (the general form's rows are 32 bytes,
//! with the hits in a second array).

use super::{fold_mul, RuleSpec};
use crate::flow::Words;
use crate::table::{Hit, HitLine};
use dpdk::HugeTable;
use packet::{FlowKey, FLOW_KEY_WORDS};

/// Entries ranked above the main rows that the form accepts (each is compared per packet).
pub const PRE_MAX: usize = 4;
/// Entries ranked below the main rows (and above the best wildcard-all one) that the
/// form accepts (compared only when no main row matches).
pub const POST_MAX: usize = 2;
/// Key words a pre or post entry's mask may touch.
pub const PRE_WORDS: usize = 4;
/// Fewer main rows than this and the level keeps its general classifier alone (a scan or
/// an in_port array is as cheap, and the row array's memory is not worth it).
pub const MIN_ROWS: usize = 8;

/// Marks a free row ([`Hit::slot`]).
const FREE: u32 = u32::MAX;

/// Row arrays from this size on are prefetched ahead of their lookups, as
/// [`super::subtable`]'s are.
const PREFETCH_MIN_BYTES: usize = 256 * 1024;

/// One main row: the masked key words and the entry's hit, in one cache line.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Row {
    key: [u64; 2],
    hit: Hit,
}

/// An entry ranked above the main rows: `(word, mask, value)` per key word it reads,
/// padded with (0, 0, 0), which always holds.
#[derive(Clone, Copy, Debug)]
struct Pre {
    words: [(u8, u64, u64); PRE_WORDS],
    hit: Hit,
}

impl Pre {
    #[inline(always)]
    fn matches(&self, key: &Words) -> bool {
        let mut d = 0u64;
        for &(w, m, v) in &self.words {
            d |= (key[usize::from(w) % FLOW_KEY_WORDS] & m) ^ v;
        }
        d == 0
    }
}

#[derive(Debug)]
pub struct InlineExact {
    /// The two key words of the main mask and their masks (a one-word mask reads word 0
    /// with mask 0 as its second).
    words: [usize; 2],
    masks: [u64; 2],
    /// [`hash2`]'s rotation of the first word.
    rot: u32,
    /// Power-of-two length, at most half full; 2 MiB and bigger in huge pages (one TLB
    /// entry per 32k rows, where 4 KiB pages took a TLB miss per probe).
    rows: HugeTable<Row>,
    pre: Box<[Pre]>,
    /// Entries below the main rows and above `fallback`, best first (same form as `pre`).
    post: Box<[Pre]>,
    fallback: Option<Hit>,
    len: usize,
    big: bool,
}

/// The two masked words folded into one (the first rotated by `rot`, chosen when
/// building so that its mask's bits land where the second's are zero: in_port's bits
/// beside eth_src's, metadata's below eth_dst's) and mixed by one folded multiply.
/// Distinct keys folding to the same word cost a longer probe, never a wrong answer (rows
/// compare both words).
#[inline(always)]
fn hash2(a: u64, b: u64, rot: u32) -> u64 {
    fold_mul(a.rotate_left(rot) ^ b, 0x9e37_79b9_7f4a_7c15)
}

/// The rotation of the first word's mask that overlaps the second's least.
fn best_rotation(m0: u64, m1: u64) -> u32 {
    (0..64)
        .min_by_key(|&r| (m0.rotate_left(r) & m1).count_ones())
        .unwrap_or(0)
}

impl InlineExact {
    /// The form for these entries (`rules[i]`'s hit is `hits[i]`, whose
    /// [`Hit::slot`] is `i`), or `None` when they do not have its shape.
    pub fn try_build(rules: &[RuleSpec<'_>], hits: &[HitLine]) -> Option<InlineExact> {
        debug_assert_eq!(rules.len(), hits.len());
        let words_of = |m: &Words| m.iter().filter(|&&w| w != 0).count();
        // The main mask: the most common mask among entries that look at the key. Each
        // entry's mask is compared once, here (a batch's entries mostly come in runs of
        // one mask: the last one found is tried first).
        // Per mask: the mask, its entries, their lowest and highest rank.
        let mut masks: Vec<(&Words, usize, u64, u64)> = Vec::new();
        // Each entry's index in `masks` (NO_MASK: wildcard-all), so that the main rows
        // are told by an index, not by comparing masks a second time.
        const NO_MASK: u8 = u8::MAX;
        let mut mask_idx: Vec<u8> = Vec::with_capacity(rules.len());
        let mut last = usize::MAX;
        for r in rules {
            // Equal masks mostly share their words (the table compiler passes a run's
            // first mask for all of it): the address compare answers without reading them.
            if let Some(e) = masks
                .get_mut(last)
                .filter(|e| std::ptr::eq(e.0, r.mask) || e.0 == r.mask)
            {
                e.1 += 1;
                (e.2, e.3) = (e.2.min(r.rank), e.3.max(r.rank));
                mask_idx.push(last as u8);
                continue;
            }
            if r.mask.iter().all(|&w| w == 0) {
                mask_idx.push(NO_MASK);
                continue;
            }
            match masks.iter().position(|e| e.0 == r.mask) {
                Some(i) => {
                    let e = &mut masks[i];
                    e.1 += 1;
                    (e.2, e.3) = (e.2.min(r.rank), e.3.max(r.rank));
                    last = i;
                }
                None => {
                    masks.push((r.mask, 1, r.rank, r.rank));
                    last = masks.len() - 1;
                }
            }
            mask_idx.push(last as u8);
            if masks.len() > PRE_MAX + POST_MAX + 1 {
                return None;
            }
        }
        let (main_idx, &(main, n_main, min_main, max_main)) =
            masks.iter().enumerate().max_by_key(|(_, e)| e.1)?;
        if n_main < MIN_ROWS || words_of(main) > 2 {
            return None;
        }
        let main_idx = main_idx as u8;
        let mut pre: Vec<(u64, Pre)> = Vec::new();
        let mut post: Vec<(u64, Pre)> = Vec::new();
        let mut fallback: Option<(u64, Hit)> = None;
        // An entry's mask as (word, mask, value) per key word it reads, padded, in the
        // order the compiled compare reads them (it stops at the first word that
        // differs): the word with the most bits first, since a wide field (an address)
        // differs most often (the metadata DNAT entry's ipv4_dst word is 0 in every
        // packet the plan does not parse in full, so those leave after one word); among
        // equally wide words the deepest header's first, since the Ethernet word's type
        // is the same in every IPv4 packet.
        let words_form = |r: &RuleSpec<'_>| {
            let mut words = [(0u8, 0u64, 0u64); PRE_WORDS];
            let mut n = 0;
            for (w, &m) in r.mask.iter().enumerate() {
                if m == 0 {
                    continue;
                }
                if n == PRE_WORDS {
                    return None;
                }
                words[n] = (w as u8, m, r.value[w] & m);
                n += 1;
            }
            words[..n].reverse();
            words[..n].sort_by_key(|&(_, m, _)| std::cmp::Reverse(m.count_ones()));
            Some(words)
        };
        for ((r, h), &mi) in rules.iter().zip(hits).zip(&mask_idx) {
            if mi == main_idx {
                continue;
            }
            let h = &h.0;
            if r.rank > max_main {
                pre.push((
                    r.rank,
                    Pre {
                        words: words_form(r)?,
                        hit: *h,
                    },
                ));
                if pre.len() > PRE_MAX {
                    return None;
                }
            } else if r.rank >= min_main {
                return None;
            } else if words_of(r.mask) == 0 {
                if fallback.is_none_or(|(fr, _)| r.rank > fr) {
                    fallback = Some((r.rank, *h));
                }
            } else {
                post.push((
                    r.rank,
                    Pre {
                        words: words_form(r)?,
                        hit: *h,
                    },
                ));
            }
        }
        pre.sort_by_key(|p| std::cmp::Reverse(p.0));
        // Entries below the best wildcard-all one never answer.
        post.retain(|p| fallback.is_none_or(|(fr, _)| p.0 > fr));
        if post.len() > POST_MAX {
            return None;
        }
        post.sort_by_key(|p| std::cmp::Reverse(p.0));

        let mut used = main
            .iter()
            .enumerate()
            .filter(|(_, &m)| m != 0)
            .map(|(w, &m)| (w, m));
        let (w0, m0) = used.next()?;
        let (w1, m1) = used.next().unwrap_or((0, 0));
        // Free rows hold a key no probe can have (a bit outside a mask), so that a probe's
        // compare alone tells a hit: two words that are both whole 64-bit fields have no
        // such key and keep the general form.
        let free_key = if m1 != u64::MAX {
            [0, !m1]
        } else if m0 != u64::MAX {
            [!m0, 0]
        } else {
            return None;
        };
        let free = Row {
            key: free_key,
            hit: Hit {
                slot: FREE,
                ..hits[0].0
            },
        };
        let rot = best_rotation(m0, m1);
        let cap = (n_main * 2).next_power_of_two();
        let mut rows = HugeTable::filled(cap, free);
        let mut len = 0;
        for ((r, h), &mi) in rules.iter().zip(hits).zip(&mask_idx) {
            if mi != main_idx {
                continue;
            }
            let h = &h.0;
            let key = [r.value[w0] & m0, r.value[w1] & m1];
            let mut i = hash2(key[0], key[1], rot) as usize & (cap - 1);
            loop {
                let row = &mut rows[i];
                if row.hit.slot == FREE {
                    *row = Row { key, hit: *h };
                    len += 1;
                    break;
                }
                if row.key == key {
                    // Same mask and value: only the better entry can ever answer (a
                    // row's hit's slot is its entry's index in `rules`).
                    if r.rank > rules[row.hit.slot as usize].rank {
                        row.hit = *h;
                    }
                    break;
                }
                i = (i + 1) & (cap - 1);
            }
        }
        Some(InlineExact {
            words: [w0, w1],
            masks: [m0, m1],
            rot,
            big: cap * std::mem::size_of::<Row>() >= PREFETCH_MIN_BYTES,
            rows,
            pre: pre.into_iter().map(|p| p.1).collect(),
            post: post.into_iter().map(|p| p.1).collect(),
            fallback: fallback.map(|f| f.1),
            len,
        })
    }

    /// Distinct main rows.
    pub fn rows(&self) -> usize {
        self.len
    }

    /// Where the row array is (address, bytes) and whether it was advised for huge pages
    /// (for tests that check the kernel backs it with them).
    pub fn row_memory(&self) -> (usize, usize, bool) {
        (
            self.rows.as_ptr() as usize,
            std::mem::size_of_val(&*self.rows),
            self.rows.advised_huge(),
        )
    }

    /// The row array is too big to stay cached: worth prefetching.
    pub fn prefetches(&self) -> bool {
        self.big
    }

    /// The masked key words and the row their hash picks, not yet wrapped to the
    /// array's length ([`HugeTable::wrapped`] does it).
    #[inline(always)]
    fn start(&self, key: &Words) -> (u64, u64, usize) {
        let k0 = key[self.words[0] % FLOW_KEY_WORDS] & self.masks[0];
        let k1 = key[self.words[1] % FLOW_KEY_WORDS] & self.masks[1];
        (k0, k1, hash2(k0, k1, self.rot) as usize)
    }

    /// Hands `prefetch` the row a lookup of `key` reads first, when the rows are too many
    /// to stay cached (see [`super::subtable::Subtable::prefetch`]).
    #[inline]
    pub fn prefetch(&self, key: &Words, prefetch: &mut impl FnMut(*const u8)) {
        if !self.big {
            return;
        }
        let (_, _, i) = self.start(key);
        prefetch(self.rows.wrapped_ptr(i) as *const u8);
    }

    /// [`Self::prefetch`] for every key of a burst, the test for a big array made once:
    /// the worker's prefetch pass runs this per table instead of per packet.
    #[inline]
    pub fn prefetch_keys(&self, keys: &[FlowKey], prefetch: &mut impl FnMut(*const u8)) {
        if !self.big {
            return;
        }
        for k in keys {
            let (_, _, i) = self.start(&k.words);
            prefetch(self.rows.wrapped_ptr(i) as *const u8);
        }
    }

    /// The hit of the entry a linear scan of the level would pick for `key`.
    #[inline(always)]
    pub fn lookup(&self, key: &Words) -> Option<&Hit> {
        self.find(key, true)
    }

    /// [`lookup`](Self::lookup) of a form without entries below its main rows
    /// (`!self.has_post()`): the walk's inlined probe, as short as before they existed.
    #[inline(always)]
    pub fn lookup_without_post(&self, key: &Words) -> Option<&Hit> {
        debug_assert!(self.post.is_empty());
        self.find(key, false)
    }

    /// Some entry with a mask ranks below the main rows (see [`POST_MAX`]).
    pub fn has_post(&self) -> bool {
        !self.post.is_empty()
    }

    #[inline(always)]
    fn find(&self, key: &Words, post: bool) -> Option<&Hit> {
        for p in self.pre.iter() {
            if p.matches(key) {
                return Some(&p.hit);
            }
        }
        let (k0, k1, mut i) = self.start(key);
        // At most half full: a free row always ends the probe.
        loop {
            let r = self.rows.wrapped(i);
            // A free row's key never equals a probe's (see `try_build`).
            if ((r.key[0] ^ k0) | (r.key[1] ^ k1)) == 0 {
                return Some(&r.hit);
            }
            if r.hit.slot == FREE {
                if post {
                    for p in self.post.iter() {
                        if p.matches(key) {
                            return Some(&p.hit);
                        }
                    }
                }
                return self.fallback.as_ref();
            }
            i = i.wrapping_add(1);
        }
    }
}

// A row is one cache line: the key words and the whole hit.
const _: () = assert!(std::mem::size_of::<Row>() == 64);
const _: () = assert!(std::mem::size_of::<Hit>() == 48);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hit(slot: u32) -> Hit {
        Hit {
            meta_value: 0,
            meta_mask: 0,
            cookie: u64::from(slot),
            outs: [0; crate::table::HIT_OUTPUTS],
            slot,
            n_outs: 0,
            goto: None,
            table_miss: false,
            writes_metadata: false,
            simple: true,
        }
    }

    /// Main mask on words 0 (in_port) and 4 (eth_src); pre masks elsewhere.
    fn mask_of(kind: u8) -> Words {
        let mut m = [0u64; FLOW_KEY_WORDS];
        match kind {
            0 => {
                m[0] = 0xffff_ffff_0000_0000;
                m[4] = 0xffff_ffff_ffff_0000;
            }
            1 => {
                m[3] = 0xffff;
                m[5] = 0xffff_ffff;
                m[6] = 0xff00_0000_0000_ffff;
            }
            2 => m[5] = 0xffff_ff00_0000_0000,
            _ => {}
        }
        m
    }

    proptest! {
        /// Random levels (main rows with duplicates at other ranks, pre entries, wildcard
        /// entries at random ranks): whenever the form builds, it answers every key as a
        /// linear scan does; and a level of at least MIN_ROWS main rows over a wildcard
        /// one always builds.
        #[test]
        fn inline_equals_linear_scan(
            rules in proptest::collection::vec((0u8..4, 0u64..6, 0u64..40, 0u64..1000), MIN_ROWS + 1..200),
            keys in proptest::collection::vec((0u64..7, 0u64..42, 0u64..2), 1..64),
            main_only in any::<bool>(),
        ) {
            let specs: Vec<(Words, Words, u64)> = rules
                .iter()
                .enumerate()
                .map(|(i, &(kind, port, src, rank))| {
                    let kind = if main_only { if i == 0 { 3 } else { 0 } } else { kind };
                    let mask = mask_of(kind);
                    let mut v = [0u64; FLOW_KEY_WORDS];
                    v[0] = port << 32;
                    v[3] = 0x0800;
                    v[4] = (0x0200_0000_0000 | src) << 16;
                    v[5] = ((src & 3) << 56) | 0xa9fe_a9fe;
                    v[6] = (6 << 56) | 80;
                    for w in 0..FLOW_KEY_WORDS {
                        v[w] &= mask[w];
                    }
                    // Main rows rank above the wildcard in `main_only` levels; unique
                    // ranks, as flow ranks are.
                    let rank = if main_only && i == 0 { 0 } else { (rank << 16) | (i as u64 + 1) };
                    (v, mask, rank)
                })
                .collect();
            let rs: Vec<RuleSpec<'_>> = specs
                .iter()
                .map(|(v, m, r)| RuleSpec { value: v.into(), mask: m, rank: *r })
                .collect();
            let hits: Vec<HitLine> = (0..rs.len() as u32).map(|s| HitLine(hit(s))).collect();
            let built = InlineExact::try_build(&rs, &hits);
            if main_only {
                prop_assert!(built.is_some());
            }
            let Some(x) = built else { return Ok(()) };
            for &(port, src, dnat) in &keys {
                let mut k = [0u64; FLOW_KEY_WORDS];
                k[0] = (port << 32) | port;
                k[3] = (0x0200_0000_0009 << 16) | 0x0800;
                k[4] = ((0x0200_0000_0000 | src) << 16) | 5;
                k[5] = ((src & 3) << 56) | if dnat == 1 { 0xa9fe_a9fe } else { 0x0a00_0001 };
                k[6] = (6 << 56) | (1234 << 16) | 80;
                let want = rs
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| (0..FLOW_KEY_WORDS).all(|w| k[w] & r.mask[w] == r.value[w]))
                    .max_by_key(|(_, r)| r.rank)
                    .map(|(i, _)| i as u32);
                prop_assert_eq!(x.lookup(&k).map(|h| h.slot), want);
            }
        }
    }
}
