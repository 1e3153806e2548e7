//! One mask's entries: a hash table from the masked key words to the best entry with those
//! words. Entries with the same mask and value match the same packets, so only the best
//! of them can ever be returned and only it is kept.
//!
//! The masked words of a row sit in the hash table's bucket together with the row's slot
//! and rank, as a fixed-size array (the mask's word count rounded up to 1, 2, 4, 8 or 16,
//! padded with zeros): a probe is one hash, usually one bucket load and a compare of a
//! constant number of words, with no call to `memcmp` and no further dependent load.

use arrayvec::ArrayVec;

use dpdk::HugeSlice;

use super::{hash_words, RuleSpec};
use crate::flow::Words;
use packet::{FlowKey, FLOW_KEY_WORDS};

#[derive(Clone, Copy, Debug)]
struct Row<const K: usize> {
    vals: [u64; K],
    rank: u64,
    slot: u32,
}

/// Word-by-word equality folded into one branch: a fixed-size compare the compiler
/// unrolls (a slice or array `==` may become a call to `memcmp`).
#[inline(always)]
fn same<const K: usize>(a: &[u64; K], b: &[u64; K]) -> bool {
    let mut d = 0u64;
    for j in 0..K {
        d |= a[j] ^ b[j];
    }
    d == 0
}

/// Bucket arrays from this size on are prefetched ahead of their lookups (see
/// [`Subtable::prefetch`]); smaller ones are assumed to stay in the caches.
const PREFETCH_MIN_BYTES: usize = 256 * 1024;

/// Marks a free bucket of [`Rows::buckets`].
const FREE: u32 = u32::MAX;

/// Rows of `K` words in an open-addressing table with linear probing, at most half full:
/// a probe usually reads one bucket, one cache line, where a SwissTable reads its control
/// bytes and then the bucket. A single row is compared directly, without hashing.
#[derive(Debug)]
struct Rows<const K: usize> {
    one: Option<Row<K>>,
    /// Power-of-two length (empty for zero or one row); free buckets have slot [`FREE`].
    /// 2 MiB and bigger in huge pages (a probe then takes no TLB miss of its own).
    buckets: HugeSlice<Row<K>>,
    len: usize,
}

impl<const K: usize> Rows<K> {
    fn build(words: &[u8], rules: &[RuleSpec<'_>], members: &[u32]) -> Rows<K> {
        let free = Row {
            vals: [0u64; K],
            rank: 0,
            slot: FREE,
        };
        let cap = (members.len() * 2).next_power_of_two().max(2);
        let mut buckets = HugeSlice::filled(cap, free);
        let mask = cap - 1;
        let mut len = 0;
        for &slot in members {
            let r = &rules[slot as usize];
            let mut vals = [0u64; K];
            for (j, &w) in words.iter().enumerate() {
                vals[j] = r.value[usize::from(w)];
            }
            let mut i = hash_words(&vals) as usize & mask;
            loop {
                let b = &mut buckets[i];
                if b.slot == FREE {
                    *b = Row {
                        vals,
                        rank: r.rank,
                        slot,
                    };
                    len += 1;
                    break;
                }
                if same(&b.vals, &vals) {
                    if r.rank > b.rank {
                        b.rank = r.rank;
                        b.slot = slot;
                    }
                    break;
                }
                i = (i + 1) & mask;
            }
        }
        if len == 1 {
            let one = buckets.iter().find(|b| b.slot != FREE).copied();
            return Rows {
                one,
                buckets: HugeSlice::filled(0, free),
                len,
            };
        }
        if len == 0 {
            buckets = HugeSlice::filled(0, free);
        }
        Rows {
            one: None,
            buckets,
            len,
        }
    }

    /// The bucket a probe for `key` starts at.
    fn big(&self) -> bool {
        self.buckets.len() * std::mem::size_of::<Row<K>>() >= PREFETCH_MIN_BYTES
    }

    #[inline(always)]
    fn bucket_of(
        &self,
        words: &[u8; FLOW_KEY_WORDS],
        mask: &Words,
        key: &Words,
    ) -> Option<*const u8> {
        if self.buckets.is_empty() {
            return None;
        }
        let mut probe = [0u64; K];
        for j in 0..K {
            probe[j] = key[usize::from(words[j]) % FLOW_KEY_WORDS] & mask[j];
        }
        let i = hash_words(&probe) as usize & (self.buckets.len() - 1);
        Some(&self.buckets[i] as *const Row<K> as *const u8)
    }

    fn iter(&self) -> impl Iterator<Item = &Row<K>> {
        self.one
            .iter()
            .chain(self.buckets.iter().filter(|b| b.slot != FREE))
    }

    #[inline(always)]
    fn find(&self, words: &[u8; FLOW_KEY_WORDS], mask: &Words, key: &Words) -> Option<(u32, u64)> {
        let mut probe = [0u64; K];
        for j in 0..K {
            probe[j] = key[usize::from(words[j]) % FLOW_KEY_WORDS] & mask[j];
        }
        if let Some(row) = &self.one {
            return same(&row.vals, &probe).then_some((row.slot, row.rank));
        }
        let n = self.buckets.len();
        if n == 0 {
            return None;
        }
        let mut i = hash_words(&probe) as usize & (n - 1);
        // At most half full: a free bucket always ends the probe.
        loop {
            let b = &self.buckets[i];
            if b.slot == FREE {
                return None;
            }
            if same(&b.vals, &probe) {
                return Some((b.slot, b.rank));
            }
            i = (i + 1) & (n - 1);
        }
    }
}

#[derive(Debug)]
enum AnyRows {
    K1(Rows<1>),
    K2(Rows<2>),
    K4(Rows<4>),
    K8(Rows<8>),
    K16(Rows<16>),
}

/// The one row of a subtable on at most two key words ([`Subtable::single_pair`]).
#[derive(Clone, Copy, Debug)]
pub struct SinglePair {
    /// The key words, their masks and the row's masked values (padding: word 0 under
    /// mask 0, value 0).
    pub words: [u8; 2],
    pub mask: [u64; 2],
    pub vals: [u64; 2],
    pub slot: u32,
    pub rank: u64,
}

#[derive(Debug)]
pub struct Subtable {
    /// Key words the mask touches, and the mask of each; past the mask's word count, word 0
    /// with mask 0, so a padded probe word is always 0.
    words: [u8; FLOW_KEY_WORDS],
    packed_mask: Words,
    k: usize,
    rows: AnyRows,
    len: usize,
    /// The buckets are too many to stay cached: worth prefetching.
    pub big: bool,
    pub max_rank: u64,
    pub min_rank: u64,
    /// (trie, prefix length): skip this subtable when the trie says no entry's prefix of
    /// that length matches the packet.
    pub prefix: Option<(u8, u8)>,
    full_mask: Words,
}

impl Subtable {
    /// All `members` (indices into `rules`) share `mask`.
    pub fn build(mask: &Words, rules: &[RuleSpec<'_>], members: &[u32]) -> Subtable {
        let mut used: ArrayVec<u8, FLOW_KEY_WORDS> = ArrayVec::new();
        let mut words = [0u8; FLOW_KEY_WORDS];
        let mut m = [0u64; FLOW_KEY_WORDS];
        for (i, &w) in mask.iter().enumerate() {
            if w != 0 {
                words[used.len()] = i as u8;
                m[used.len()] = w;
                used.push(i as u8);
            }
        }
        let k = used.len();
        let rows = match k {
            0..=1 => AnyRows::K1(Rows::build(&used, rules, members)),
            2 => AnyRows::K2(Rows::build(&used, rules, members)),
            3..=4 => AnyRows::K4(Rows::build(&used, rules, members)),
            5..=8 => AnyRows::K8(Rows::build(&used, rules, members)),
            _ => AnyRows::K16(Rows::build(&used, rules, members)),
        };
        let mut s = Subtable {
            words,
            packed_mask: m,
            k,
            rows,
            len: 0,
            big: false,
            max_rank: 0,
            min_rank: 0,
            prefix: None,
            full_mask: *mask,
        };
        let ranks = || s.iter_rows().map(|(_, rank)| rank);
        let (len, max_rank, min_rank) = (
            match &s.rows {
                AnyRows::K1(r) => r.len,
                AnyRows::K2(r) => r.len,
                AnyRows::K4(r) => r.len,
                AnyRows::K8(r) => r.len,
                AnyRows::K16(r) => r.len,
            },
            ranks().max().unwrap_or(0),
            ranks().min().unwrap_or(0),
        );
        s.len = len;
        s.big = match &s.rows {
            AnyRows::K1(r) => r.big(),
            AnyRows::K2(r) => r.big(),
            AnyRows::K4(r) => r.big(),
            AnyRows::K8(r) => r.big(),
            AnyRows::K16(r) => r.big(),
        };
        s.max_rank = max_rank;
        s.min_rank = min_rank;
        s
    }

    /// For a subtable of one row on at most two key words: the row, tested in place by
    /// tuple-space search.
    pub fn single_pair(&self) -> Option<SinglePair> {
        let (vals, slot, rank) = match &self.rows {
            AnyRows::K1(r) => r.one.map(|o| ([o.vals[0], 0], o.slot, o.rank)),
            AnyRows::K2(r) => r.one.map(|o| (o.vals, o.slot, o.rank)),
            _ => None,
        }?;
        Some(SinglePair {
            words: [self.words[0], self.words[1]],
            mask: [self.packed_mask[0], self.packed_mask[1]],
            vals,
            slot,
            rank,
        })
    }

    pub fn mask(&self) -> &Words {
        &self.full_mask
    }

    pub fn rows(&self) -> usize {
        self.len
    }

    /// Every row's value as full key words, with its rank (for building tries).
    pub fn iter_rows(&self) -> impl Iterator<Item = (Words, u64)> + '_ {
        fn full<'a, const K: usize>(
            s: &'a Subtable,
            rows: &'a Rows<K>,
        ) -> impl Iterator<Item = (Words, u64)> + 'a {
            rows.iter().map(move |r| {
                let mut out = [0u64; FLOW_KEY_WORDS];
                for j in 0..s.k {
                    out[usize::from(s.words[j])] = r.vals[j];
                }
                (out, r.rank)
            })
        }
        let it: Box<dyn Iterator<Item = (Words, u64)> + '_> = match &self.rows {
            AnyRows::K1(r) => Box::new(full(self, r)),
            AnyRows::K2(r) => Box::new(full(self, r)),
            AnyRows::K4(r) => Box::new(full(self, r)),
            AnyRows::K8(r) => Box::new(full(self, r)),
            AnyRows::K16(r) => Box::new(full(self, r)),
        };
        it
    }

    /// Hands `prefetch` the address of the bucket a lookup of `key` will read first, when
    /// this subtable is too big to stay cached: the worker calls it for a whole burst
    /// before walking it, so the packets' misses overlap instead of queueing one after the
    /// other. Only an address is computed; nothing is read through it here.
    #[inline]
    pub fn prefetch(&self, key: &Words, prefetch: &mut impl FnMut(*const u8)) {
        if !self.big {
            return;
        }
        let b = match &self.rows {
            AnyRows::K1(r) => r.bucket_of(&self.words, &self.packed_mask, key),
            AnyRows::K2(r) => r.bucket_of(&self.words, &self.packed_mask, key),
            AnyRows::K4(r) => r.bucket_of(&self.words, &self.packed_mask, key),
            AnyRows::K8(r) => r.bucket_of(&self.words, &self.packed_mask, key),
            AnyRows::K16(r) => r.bucket_of(&self.words, &self.packed_mask, key),
        };
        if let Some(b) = b {
            prefetch(b);
        }
    }

    /// [`Self::prefetch`] for every key of a burst, the test for a big subtable and the
    /// dispatch on its row width made once.
    #[inline]
    pub fn prefetch_keys(&self, keys: &[FlowKey], prefetch: &mut impl FnMut(*const u8)) {
        if !self.big {
            return;
        }
        fn each<const K: usize>(
            s: &Subtable,
            r: &Rows<K>,
            keys: &[FlowKey],
            prefetch: &mut impl FnMut(*const u8),
        ) {
            for k in keys {
                if let Some(b) = r.bucket_of(&s.words, &s.packed_mask, &k.words) {
                    prefetch(b);
                }
            }
        }
        match &self.rows {
            AnyRows::K1(r) => each(self, r, keys, prefetch),
            AnyRows::K2(r) => each(self, r, keys, prefetch),
            AnyRows::K4(r) => each(self, r, keys, prefetch),
            AnyRows::K8(r) => each(self, r, keys, prefetch),
            AnyRows::K16(r) => each(self, r, keys, prefetch),
        }
    }

    /// (slot, rank) of the best entry of this mask matching `key`.
    #[inline(always)]
    pub fn find(&self, key: &Words) -> Option<(u32, u64)> {
        match &self.rows {
            AnyRows::K1(r) => r.find(&self.words, &self.packed_mask, key),
            AnyRows::K2(r) => r.find(&self.words, &self.packed_mask, key),
            AnyRows::K4(r) => r.find(&self.words, &self.packed_mask, key),
            AnyRows::K8(r) => r.find(&self.words, &self.packed_mask, key),
            AnyRows::K16(r) => r.find(&self.words, &self.packed_mask, key),
        }
    }
}
