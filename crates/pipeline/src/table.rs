//! One flow table: the control plane's entries (flow-mod semantics) and the immutable
//! [`CompiledTable`] workers look packets up in.

use std::sync::Arc;
use std::time::Duration;

use hashbrown::HashTable;

use crate::counters::{fold_all, Counted, CounterBlock, Retired};
use crate::error::PipelineError;
use crate::flow::{FlowEntry, Instructions, Match, Words};
use crate::lookup::inline::InlineExact;
use crate::lookup::{hash_words, Classifier, RuleSpec, Strategy};

/// What happens to a packet no entry of a table matches (not even a table-miss entry).
/// OpenFlow 1.3 says drop; the profile can choose otherwise per table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MissPolicy {
    #[default]
    Drop,
    /// PACKET_IN with reason NO_MATCH, `max_len` bytes.
    Controller { max_len: u16 },
    /// Continue in the next table (drop after the last).
    GotoNext,
    /// The built-in learning switch.
    Normal,
}

/// [`CompiledTable::counters`]: packets no entry matched, and packets some entry matched.
/// Lookups are their sum, so a packet costs the table one counter store, not two.
pub(crate) const TABLE_MISSES: usize = 0;
pub(crate) const TABLE_MATCHES: usize = 1;

/// An entry as workers see it.
#[derive(Debug)]
pub struct Rule {
    pub uid: u64,
    pub priority: u16,
    pub cookie: u64,
    /// Priority 0 and wildcard-all: its CONTROLLER outputs say NO_MATCH.
    pub table_miss: bool,
    pub insts: Arc<Instructions>,
    /// [`crate::flow::rank`]: what decides between the answers of two levels.
    pub rank: u64,
    /// Index of the entry in the control plane's table.
    pub(crate) idx: u32,
}

/// Outputs a [`Hit`] holds inline.
pub const HIT_OUTPUTS: usize = 3;

/// What a hit needs to act, in 48 bytes, so that the usual entry (a few plain outputs, a
/// metadata write, a goto) is run without following the rule to its instructions on the
/// heap. It sits in its own cache line in [`Level::hits`], and beside the entry's key
/// words in one line in the rows of the [`crate::lookup::inline`] form (where a hit is
/// then the probe's only load). Entries that do anything else have `simple == false` and
/// run their [`Instructions`] through [`Rule::insts`].
#[derive(Clone, Copy, Debug)]
#[repr(C, align(16))]
pub struct Hit {
    /// Write-metadata (value, mask), applied when `writes_metadata`.
    pub meta_value: u64,
    pub meta_mask: u64,
    pub cookie: u64,
    /// Output ports in order (any port but CONTROLLER, NORMAL and TABLE), `n_outs` of them.
    pub outs: [u32; HIT_OUTPUTS],
    /// The entry's slot in its level (its rule and counters).
    pub slot: u32,
    pub n_outs: u8,
    /// Goto-table, if any.
    pub goto: Option<u8>,
    pub table_miss: bool,
    pub writes_metadata: bool,
    /// No meter, no clear or write-actions, apply-actions only of plain outputs (at most
    /// [`HIT_OUTPUTS`]): the entry is entirely described by this record.
    pub simple: bool,
}

/// A [`Hit`] alone in its cache line.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub struct HitLine(pub Hit);

impl Hit {
    fn new(e: &FlowEntry, slot: u32) -> Hit {
        Hit::of_instructions(&e.instructions).for_entry(e, slot)
    }

    /// The part of a hit that its entry's instructions decide (the same for entries with
    /// equal instructions: a compile makes it once per run of them); `cookie`, `slot`
    /// and `table_miss` are left for [`Hit::for_entry`].
    fn of_instructions(insts: &Instructions) -> Hit {
        use crate::flow::Action;
        use crate::ports::{OFPP_CONTROLLER, OFPP_NORMAL, OFPP_TABLE};
        let mut outs = [0u32; HIT_OUTPUTS];
        let mut n = 0usize;
        let mut simple = insts.meter.is_none() && !insts.clear && insts.write.is_none();
        for a in insts.apply.iter().flat_map(|a| a.iter()) {
            match *a {
                Action::Output { port, .. }
                    if port != OFPP_CONTROLLER
                        && port != OFPP_NORMAL
                        && port != OFPP_TABLE
                        && n < HIT_OUTPUTS =>
                {
                    outs[n] = port;
                    n += 1;
                }
                _ => simple = false,
            }
        }
        let (meta_value, meta_mask) = insts.metadata.unwrap_or((0, 0));
        Hit {
            meta_value,
            meta_mask,
            cookie: 0,
            outs,
            slot: 0,
            n_outs: n as u8,
            goto: insts.goto,
            table_miss: false,
            writes_metadata: insts.metadata.is_some(),
            simple,
        }
    }

    /// This hit (from [`Hit::of_instructions`] of `e`'s instructions) for entry `e` at
    /// `slot`.
    #[inline]
    fn for_entry(self, e: &FlowEntry, slot: u32) -> Hit {
        Hit {
            cookie: e.cookie,
            slot,
            table_miss: e.is_table_miss(),
            ..self
        }
    }
}

/// What a compile takes from an entry's instructions, made once for a run of entries
/// with equal instructions (a batch's entries mostly come in such runs: `goto_table:1`,
/// `output:2`), where each entry walked its actions four times.
#[derive(Clone, Copy)]
struct InstructionFacts {
    /// [`crate::plan::for_instructions`].
    plan: packet::ExtractPlan,
    /// [`crate::plan::tracks`].
    tracks: bool,
    /// [`crate::conjunction::clause_of`] is `Some`.
    clause: bool,
    hit: Hit,
}

impl InstructionFacts {
    fn of(insts: &Instructions) -> InstructionFacts {
        InstructionFacts {
            plan: crate::plan::for_instructions(insts),
            tracks: crate::plan::tracks(insts),
            clause: crate::conjunction::clause_of(insts).is_some(),
            hit: Hit::of_instructions(insts),
        }
    }
}

/// Part of a table version: a classifier over some of the table's entries, with their
/// counters (packets, bytes per slot).
///
/// A table version is a few levels rather than one classifier so that a publish after a
/// small change costs about the change, not the table: new entries go into a new small
/// level, levels of similar size are merged (like the digits of a binary counter, so every
/// entry is recompiled O(log n) times while n entries arrive one by one), a delete or
/// modify rebuilds only the level holding the entry, and an idle table is compacted back
/// to one level. Unchanged levels are shared between versions (with their counters).
/// Worst case: a delete or modify in the largest level rebuilds that level, O(n), as
/// every publish did before levels.
#[derive(Debug)]
pub struct Level {
    serial: u64,
    pub classifier: Classifier,
    pub rules: Box<[Rule]>,
    /// `rules[i]`'s [`Hit`] at `hits[i]`.
    pub hits: Box<[HitLine]>,
    pub(crate) counters: CounterBlock,
    /// The best rank in the level: levels are probed best first, and a level whose best
    /// cannot beat the answer found so far is skipped.
    max_rank: u64,
    /// What the level's entries read from keys (see [`CompiledTable::extract_plan`]).
    extract_plan: packet::ExtractPlan,
    /// Some entry of the level runs `ct` (see [`CompiledTable::tracks`]).
    tracks: bool,
    /// Some entry of the level is a simple hit (see [`CompiledTable::plain`]).
    plain: bool,
    /// The level's conjunction clauses (at the slots after its ordinary entries, which
    /// `classifier` does not hold); see [`crate::conjunction`].
    pub clauses: Option<Box<crate::conjunction::Clauses>>,
}

impl Counted for Level {
    fn counters(&self) -> &CounterBlock {
        &self.counters
    }
}

impl Level {
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The structure the level is looked up in.
    pub fn kind(&self) -> &'static str {
        self.classifier.kind()
    }
}

/// One table of one pipeline version. `counters` holds the table's (misses, matches) in
/// this version (inline: one pointer less per packet and table than a block shared by all
/// versions); entry counters are in the levels.
#[derive(Debug)]
pub struct CompiledTable {
    pub table_id: u8,
    /// Highest `max_rank` first.
    pub levels: Box<[Arc<Level>]>,
    pub(crate) counters: CounterBlock,
    pub miss: MissPolicy,
    /// Some entry matches a header field (anything but in_port, in_phy_port, metadata and
    /// tunnel_id) or runs something that reads or edits headers (set-field, push/pop, TTL,
    /// groups, meters, NORMAL), or a miss goes to NORMAL: `extract_plan` parses something.
    pub reads_headers: bool,
    /// What the table's entries and miss policy read from a packet's key: the part of
    /// [`crate::Pipeline::extract_plan`] this table asks for ([`crate::plan`]).
    pub extract_plan: packet::ExtractPlan,
    /// Some level has hash tables worth prefetching ([`crate::Pipeline::prefetch_lookup`]).
    pub prefetches: bool,
    /// Some level has conjunction clauses: lookups combine them ([`crate::conjunction`]).
    pub conjunctive: bool,
    /// Some entry runs `ct`: [`crate::Pipeline::tracks`].
    pub tracks: bool,
    /// Some entry is a simple hit ([`Hit::simple`]): as table 0, the walk's plain
    /// prefix is worth trying ([`crate::Pipeline::plain_walks`]).
    pub plain: bool,
    /// Every level answers from in_port alone (`port` or `empty` classifiers, no
    /// conjunctions): the packets of one rx burst, which share their in_port, all get the
    /// same answer here, so a worker counts them once per burst when this is table 0
    /// ([`crate::Pipeline::count_burst`]) instead of once per packet.
    pub counts_per_burst: bool,
    /// The table's only level and its classifier, when that has the one-line exact form
    /// ([`crate::lookup::inline`]) and no conjunctions: the walk probes it inline
    /// ([`CompiledTable::lookup_fast`]), without testing the level's classifier kind.
    pub(crate) inline_level: Option<(Arc<InlineExact>, Arc<Level>)>,
    /// `conjunctive` or `inline_level.is_some()`: the walk's lookup tests this one flag
    /// for every other table, as it tested `conjunctive` alone before.
    special: bool,
}

impl Counted for CompiledTable {
    fn counters(&self) -> &CounterBlock {
        &self.counters
    }
}

impl CompiledTable {
    /// The entry a linear scan of the whole table would pick (highest rank among those
    /// matching `key`, conjunctive matches as [`crate::conjunction`] says): its level and
    /// slot.
    #[inline]
    pub fn lookup(&self, key: &Words) -> Option<(&Level, usize)> {
        let hard = self.lookup_ordinary(key);
        if !self.conjunctive {
            return hard;
        }
        crate::conjunction::resolve(self, key, hard)
    }

    /// [`lookup`](Self::lookup) with the entry's [`Hit`] (what the walk acts on).
    #[inline]
    pub fn lookup_hit(&self, key: &Words) -> Option<(&Level, &Hit)> {
        self.lookup(key).map(|(l, s)| (l, &l.hits[s].0))
    }

    /// [`lookup_hit`](Self::lookup_hit) with the one-line form's probe inlined into the
    /// caller (the walk) when the table has it.
    #[inline(always)]
    pub(crate) fn lookup_fast(&self, key: &Words) -> Option<(&Level, &Hit)> {
        if !self.special {
            // An empty table (a learning switch's table 0, which misses into NORMAL)
            // answers without the call.
            if self.levels.is_empty() {
                return None;
            }
            return self.lookup_ordinary(key).map(|(l, s)| (l, &l.hits[s].0));
        }
        if let Some((x, l)) = &self.inline_level {
            return x.lookup_without_post(key).map(|h| (&**l, h));
        }
        self.lookup_hit(key)
    }

    /// The best ordinary entry (conjunction clauses left out): each level answers with its
    /// best match; the best of those is the table's.
    #[inline]
    pub fn lookup_ordinary(&self, key: &Words) -> Option<(&Level, usize)> {
        if let [l] = &*self.levels {
            return l.classifier.lookup(key).map(|s| (&**l, s as usize));
        }
        let mut best: Option<(&Level, usize, u64)> = None;
        for l in self.levels.iter() {
            if best.is_some_and(|b| l.max_rank < b.2) {
                break;
            }
            if let Some(s) = l.classifier.lookup(key) {
                let s = s as usize;
                let r = l.rules[s].rank;
                if best.is_none_or(|b| r > b.2) {
                    best = Some((l, s, r));
                }
            }
        }
        best.map(|(l, s, _)| (l, s))
    }

    /// The structure of the version ("exact", "tuple", ...; "levels" while more than one
    /// level is in use).
    pub fn kind(&self) -> &'static str {
        match &*self.levels {
            [] => "empty",
            [l] => l.kind(),
            _ => "levels",
        }
    }

    pub fn len(&self) -> usize {
        self.levels.iter().map(|l| l.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.levels.iter().all(|l| l.is_empty())
    }
}

/// Why an entry left its table (FLOW_REMOVED's reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemovedReason {
    IdleTimeout,
    HardTimeout,
    Delete,
    GroupDelete,
    /// Its meter was deleted (reported as DELETE on the wire).
    MeterDelete,
}

/// An entry removed by a flow-mod, a timeout or a group/meter delete, with its final
/// counters: the agent sends FLOW_REMOVED for those with SEND_FLOW_REM.
#[derive(Clone, Debug)]
pub struct RemovedFlow {
    pub table_id: u8,
    pub entry: FlowEntry,
    pub reason: RemovedReason,
    pub packets: u64,
    pub bytes: u64,
    /// When it was removed.
    pub at: Duration,
}

/// What undoes one change of a transaction that is rolled back.
#[derive(Debug)]
enum Undo {
    Inserted(u32),
    /// The entry as it was, counters and place in its level included (boxed: a journal
    /// of 100k inserts is then 1.6 MB, not 65 MB of mostly unused entry-sized slots).
    Removed(u32, Box<FlowEntry>),
    Modified(u32, Box<FlowEntry>),
}

/// A table's changes since [`FlowTable::begin`], and the bookkeeping to put back as it
/// was, so that a rolled-back transaction leaves nothing to recompile or publish.
#[derive(Debug)]
struct Journal {
    undo: Vec<Undo>,
    slab_len: usize,
    stale_len: usize,
    pending_len: usize,
    dirty: bool,
    compact: bool,
    miss: MissPolicy,
}

#[derive(Debug)]
pub(crate) struct FlowTable {
    pub id: u8,
    slab: Vec<Option<FlowEntry>>,
    free: Vec<u32>,
    len: usize,
    /// Slab indices by (priority, match), for replace and the strict commands.
    by_match: HashTable<u32>,
    pub compiled: Arc<CompiledTable>,
    /// Replaced versions: their (lookups, matches) go to `base_*`.
    retired_versions: Vec<Retired<CompiledTable>>,
    base_lookups: u64,
    base_matches: u64,
    retired: Vec<Retired<Level>>,
    pub dirty: bool,
    /// Entries added since the last compile (slab indices; may hold indices of entries
    /// removed since, or twice the same index: filtered when compiling).
    pending: Vec<u32>,
    /// Levels that hold an entry removed or changed since the last compile.
    stale: Vec<u64>,
    /// The next compile merges every level into one.
    compact: bool,
    next_level: u64,
    /// On during a transaction: how to undo what it did so far.
    journal: Option<Journal>,
    pub miss: MissPolicy,
    pub max_entries: usize,
}

/// Hashes the words the mask looks at (with their positions): equal matches have equal
/// masks, so they hash the same, and a usual match (a few fields) costs a few words, not
/// all of [`Words`] (found by [`Match::used_words`], not by testing all 32).
#[inline]
fn match_hash(priority: u16, m: &Match) -> u64 {
    let mut h: u64 = 0x243f_6a88_85a3_08d3 ^ u64::from(priority);
    for (i, v, mask) in m.iter_words() {
        h = hash_words(&[h ^ i as u64, mask, v]);
    }
    h
}

impl FlowTable {
    pub fn new(id: u8, workers: usize, max_entries: usize) -> FlowTable {
        FlowTable {
            id,
            slab: Vec::new(),
            free: Vec::new(),
            len: 0,
            by_match: HashTable::new(),
            compiled: Arc::new(CompiledTable {
                table_id: id,
                levels: Box::new([]),
                counters: CounterBlock::new(workers, 2),
                miss: MissPolicy::Drop,
                reads_headers: false,
                extract_plan: packet::ExtractPlan::IN_PORT,
                prefetches: false,
                conjunctive: false,
                tracks: false,
                plain: false,
                counts_per_burst: false,
                inline_level: None,
                special: false,
            }),
            retired_versions: Vec::new(),
            base_lookups: 0,
            base_matches: 0,
            retired: Vec::new(),
            dirty: true,
            pending: Vec::new(),
            stale: Vec::new(),
            compact: false,
            next_level: 1,
            journal: None,
            miss: MissPolicy::Drop,
            max_entries,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn get(&self, idx: u32) -> Option<&FlowEntry> {
        self.slab.get(idx as usize)?.as_ref()
    }

    /// Changes to the entry reach packets at the next compile (its level is rebuilt).
    pub fn get_mut(&mut self, idx: u32) -> Option<&mut FlowEntry> {
        let e = self.slab.get_mut(idx as usize)?.as_mut()?;
        self.dirty = true;
        if e.level != 0 && !self.stale.contains(&e.level) {
            self.stale.push(e.level);
        }
        if let Some(j) = &mut self.journal {
            j.undo.push(Undo::Modified(idx, Box::new(e.clone())));
        }
        Some(e)
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &FlowEntry)> {
        self.slab
            .iter()
            .enumerate()
            .filter_map(|(i, e)| Some((i as u32, e.as_ref()?)))
    }

    pub fn find_strict(&self, priority: u16, m: &Match) -> Option<u32> {
        self.find_strict_hashed(match_hash(priority, m), priority, m)
    }

    /// The index's hash of (`priority`, `m`): [`FlowTable::find_strict_hashed`] and
    /// [`FlowTable::insert_hashed`] take it, so that an add hashes its match once.
    pub fn strict_hash(priority: u16, m: &Match) -> u64 {
        match_hash(priority, m)
    }

    /// [`FlowTable::find_strict`] with `h` = [`FlowTable::strict_hash`] of its arguments.
    pub fn find_strict_hashed(&self, h: u64, priority: u16, m: &Match) -> Option<u32> {
        debug_assert_eq!(h, match_hash(priority, m));
        self.by_match
            .find(h, |&i| {
                self.slab[i as usize]
                    .as_ref()
                    .is_some_and(|e| e.priority == priority && e.match_ == *m)
            })
            .copied()
    }

    /// Packets and bytes of an entry: folded totals plus its current level's counters.
    pub fn counts(&self, idx: u32) -> (u64, u64) {
        let Some(e) = self.get(idx) else {
            return (0, 0);
        };
        let (mut p, mut b) = (e.base_packets, e.base_bytes);
        if e.level == 0 {
            return (p, b);
        }
        let Some(l) = self.compiled.levels.iter().find(|l| l.serial == e.level) else {
            return (p, b);
        };
        if let Some(r) = l.rules.get(e.slot as usize) {
            if r.uid == e.uid {
                p = p.wrapping_add(l.counters.sum(2 * e.slot as usize));
                b = b.wrapping_add(l.counters.sum(2 * e.slot as usize + 1));
            }
        }
        (p, b)
    }

    /// Restarts an entry's counters at zero (RESET_COUNTS).
    pub fn reset_counts(&mut self, idx: u32) {
        let (p, b) = self.counts(idx);
        if let Some(e) = self.slab.get_mut(idx as usize).and_then(Option::as_mut) {
            if let Some(j) = &mut self.journal {
                j.undo.push(Undo::Modified(idx, Box::new(e.clone())));
            }
            e.base_packets = e.base_packets.wrapping_sub(p);
            e.base_bytes = e.base_bytes.wrapping_sub(b);
            e.last_seen_packets = 0;
        }
    }

    /// (lookups, matches) of the table.
    pub fn table_counts(&self) -> (u64, u64) {
        let c = &self.compiled.counters;
        let (misses, matches) = (c.sum(TABLE_MISSES), c.sum(TABLE_MATCHES));
        (
            self.base_lookups.wrapping_add(misses).wrapping_add(matches),
            self.base_matches.wrapping_add(matches),
        )
    }

    /// Adds an entry (compiled at the next compile); `h` is [`FlowTable::strict_hash`] of
    /// its priority and match.
    #[inline]
    pub fn insert_hashed(&mut self, h: u64, mut entry: FlowEntry) -> Result<u32, PipelineError> {
        if self.len >= self.max_entries {
            return Err(PipelineError::TableFull(self.id));
        }
        entry.slot = u32::MAX;
        entry.level = 0;
        let idx = self.put_hashed(h, entry, None);
        self.pending.push(idx);
        if let Some(j) = &mut self.journal {
            j.undo.push(Undo::Inserted(idx));
        }
        Ok(idx)
    }

    /// Room for `additional` more entries: a batch grows the slab and the (priority,
    /// match) index once instead of doubling them (each doubling copies the slab and
    /// rehashes the index) as its entries arrive.
    pub fn reserve(&mut self, additional: usize) {
        let fresh = additional.saturating_sub(self.free.len());
        self.slab.reserve(fresh);
        let slab = &self.slab;
        self.by_match.reserve(additional, |&i| {
            let e = slab[i as usize].as_ref().expect("indexed entries exist");
            match_hash(e.priority, &e.match_)
        });
        self.pending.reserve(additional);
        if let Some(j) = &mut self.journal {
            j.undo.reserve(additional);
        }
    }

    /// Stores an entry at a free index (`at`: that one, which must be free).
    fn put(&mut self, entry: FlowEntry, at: Option<u32>) -> u32 {
        let h = match_hash(entry.priority, &entry.match_);
        self.put_hashed(h, entry, at)
    }

    #[inline]
    fn put_hashed(&mut self, h: u64, entry: FlowEntry, at: Option<u32>) -> u32 {
        debug_assert_eq!(h, match_hash(entry.priority, &entry.match_));
        let idx = match at {
            Some(i) => {
                if let Some(p) = self.free.iter().rposition(|&f| f == i) {
                    self.free.swap_remove(p);
                }
                if self.slab.len() <= i as usize {
                    self.slab.resize_with(i as usize + 1, || None);
                }
                self.slab[i as usize] = Some(entry);
                i
            }
            None => match self.free.pop() {
                Some(i) => {
                    self.slab[i as usize] = Some(entry);
                    i
                }
                None => {
                    self.slab.push(Some(entry));
                    (self.slab.len() - 1) as u32
                }
            },
        };
        self.index(h, idx);
        idx
    }

    /// Puts the entry at `idx` into the (priority, match) index (`h`: its
    /// [`FlowTable::strict_hash`]) and counts it.
    fn index(&mut self, h: u64, idx: u32) {
        let slab = &self.slab;
        debug_assert!(slab[idx as usize]
            .as_ref()
            .is_some_and(|e| h == match_hash(e.priority, &e.match_)));
        self.by_match.insert_unique(h, idx, |&i| {
            let e = slab[i as usize].as_ref().expect("indexed entries exist");
            match_hash(e.priority, &e.match_)
        });
        self.len += 1;
        self.dirty = true;
    }

    pub fn remove(&mut self, idx: u32) -> Option<(FlowEntry, u64, u64)> {
        let (p, b) = self.counts(idx);
        let e = self.slab.get_mut(idx as usize)?.take()?;
        let h = match_hash(e.priority, &e.match_);
        if let Ok(o) = self.by_match.find_entry(h, |&i| i == idx) {
            o.remove();
        }
        self.free.push(idx);
        self.len -= 1;
        self.dirty = true;
        if e.level != 0 && !self.stale.contains(&e.level) {
            self.stale.push(e.level);
        }
        if let Some(j) = &mut self.journal {
            j.undo.push(Undo::Removed(idx, Box::new(e.clone())));
        }
        Some((e, p, b))
    }

    /// Starts recording changes so that [`FlowTable::rollback`] can undo them.
    pub fn begin(&mut self) {
        self.journal = Some(Journal {
            undo: Vec::new(),
            slab_len: self.slab.len(),
            stale_len: self.stale.len(),
            pending_len: self.pending.len(),
            dirty: self.dirty,
            compact: self.compact,
            miss: self.miss,
        });
    }

    /// Keeps the changes made since [`FlowTable::begin`].
    pub fn commit(&mut self) {
        self.journal = None;
    }

    /// Undoes every change since [`FlowTable::begin`], newest first: the entries (uids,
    /// cookies, flags, timeouts, install times), their counters and their places in the
    /// compiled levels, the miss policy, and what the next compile would rebuild are as
    /// they were. Indices of the slab come back in the same order (the free list is a
    /// stack, undone in reverse), so even later insertions land where they would have.
    pub fn rollback(&mut self) {
        let Some(j) = self.journal.take() else {
            return;
        };
        for u in j.undo.into_iter().rev() {
            match u {
                Undo::Inserted(idx) => {
                    self.remove(idx);
                }
                Undo::Removed(idx, e) => {
                    self.put(*e, Some(idx));
                }
                Undo::Modified(idx, e) => {
                    if let Some(slot) = self.slab.get_mut(idx as usize) {
                        *slot = Some(*e);
                    }
                }
            }
        }
        // Slots the transaction appended are empty again.
        debug_assert!(self.slab[j.slab_len.min(self.slab.len())..]
            .iter()
            .all(Option::is_none));
        self.slab.truncate(j.slab_len);
        let n = j.slab_len;
        self.free.retain(|&i| (i as usize) < n);
        self.stale.truncate(j.stale_len);
        self.pending.truncate(j.pending_len);
        self.dirty = j.dirty;
        self.compact = j.compact;
        self.miss = j.miss;
    }

    /// True between [`FlowTable::begin`] and its commit or rollback.
    pub fn in_transaction(&self) -> bool {
        self.journal.is_some()
    }

    /// Asks the next compile to merge every level into one (idle time: the fast path
    /// then probes one classifier per table). False when there is nothing to merge.
    pub fn request_compaction(&mut self) -> bool {
        if self.compiled.levels.len() > 1 && !self.compact {
            self.compact = true;
            self.dirty = true;
        }
        self.compact
    }

    /// Compiles the entries at `idxs` into a new level and records where each one went:
    /// ordinary entries first (the classifier's slots), then conjunction clauses.
    fn build_level(&mut self, idxs: &[u32], workers: usize, strategy: Strategy) -> Arc<Level> {
        let mut rules = Vec::with_capacity(idxs.len());
        let mut hits = Vec::with_capacity(idxs.len());
        let mut specs = Vec::with_capacity(idxs.len());
        let mut extract_plan = packet::ExtractPlan::IN_PORT;
        let mut tracks = false;
        let mut clause_idxs = Vec::new();
        // The extract plan's part that depends on the mask, for the last mask seen (a
        // level's entries come in runs of one mask), and the last entry's plan (most
        // entries need what the one before needed: nothing to add).
        let mut mask_plan: Option<(&Match, crate::plan::MaskPlan)> = None;
        // The whole mask of each run of equal masks, made once per run (matches store the
        // words they read only; the classifier builders take whole masks, and tell equal
        // ones by address). Walked in step with the loop below, which sees the same runs.
        let run_masks: Vec<Words> = {
            let mut last: Option<&Match> = None;
            let mut v = Vec::new();
            for &i in idxs {
                let Some(e) = self.slab[i as usize].as_ref() else {
                    continue;
                };
                if !last.is_some_and(|m| m.same_mask(&e.match_)) {
                    v.push(e.match_.mask_words());
                    last = Some(&e.match_);
                }
            }
            v
        };
        let mut run = usize::MAX;
        let mut last_plan = None;
        let mut last_insts: Option<(&Instructions, InstructionFacts)> = None;
        for &i in idxs {
            let Some(e) = self.slab[i as usize].as_ref() else {
                continue;
            };
            // `mask`: the first of the run's equal masks, which the classifier builders
            // then tell equal by address.
            let mp = match mask_plan {
                Some((m, p)) if m.same_mask(&e.match_) => p,
                _ => {
                    let p = crate::plan::for_mask(&e.match_);
                    mask_plan = Some((&e.match_, p));
                    run = run.wrapping_add(1);
                    p
                }
            };
            let mask = &run_masks[run];
            let insts: &Instructions = &e.instructions;
            let facts = match last_insts {
                Some((li, f)) if std::ptr::eq(li, insts) || *li == *insts => f,
                _ => {
                    let f = InstructionFacts::of(insts);
                    last_insts = Some((insts, f));
                    f
                }
            };
            let ep = crate::plan::for_entry_with(mp, &e.match_, facts.plan);
            if last_plan != Some(ep) {
                extract_plan = extract_plan.union(ep);
                last_plan = Some(ep);
            }
            tracks |= facts.tracks;
            if facts.clause {
                let conjs = crate::conjunction::clause_of(insts).expect("facts say it has some");
                clause_idxs.push((i, conjs, mask));
                continue;
            }
            hits.push(HitLine(facts.hit.for_entry(e, rules.len() as u32)));
            let rank = e.rank();
            rules.push(Rule {
                uid: e.uid,
                priority: e.priority,
                cookie: e.cookie,
                table_miss: e.is_table_miss(),
                insts: e.instructions.clone(),
                rank,
                idx: i,
            });
            specs.push(RuleSpec {
                value: (&e.match_).into(),
                mask,
                rank,
            });
        }
        // The one-line form where the general one would hash (a forced strategy keeps the
        // forced classifier, for the tests and benchmarks that choose one); not for
        // levels with conjunction clauses, whose lookups combine them.
        let classifier = Classifier::build_with_hits(
            &specs,
            strategy,
            clause_idxs.is_empty().then_some(&hits[..]),
        );
        let max_rank = rules.iter().map(|r| r.rank).max().unwrap_or(0);
        let mut clause_specs = Vec::with_capacity(clause_idxs.len());
        for (i, conjs, mask) in clause_idxs {
            let e = self.slab[i as usize]
                .as_ref()
                .expect("collected from live entries above");
            clause_specs.push(crate::conjunction::ClauseSpec {
                slot: rules.len() as u32,
                priority: e.priority,
                value: (&e.match_).into(),
                mask,
                rank: e.rank(),
                conjs,
            });
            hits.push(HitLine(Hit::new(e, rules.len() as u32)));
            rules.push(Rule {
                uid: e.uid,
                priority: e.priority,
                cookie: e.cookie,
                table_miss: false,
                insts: e.instructions.clone(),
                rank: e.rank(),
                idx: i,
            });
        }
        let clauses = crate::conjunction::Clauses::build(clause_specs, strategy).map(Box::new);
        let serial = self.next_level;
        self.next_level += 1;
        let n = rules.len();
        let plain = hits.iter().any(|h| h.0.simple);
        let level = Arc::new(Level {
            serial,
            classifier,
            max_rank,
            rules: rules.into(),
            hits: hits.into_boxed_slice(),
            counters: CounterBlock::new(workers, 2 * n),
            extract_plan,
            tracks,
            plain,
            clauses,
        });
        for (slot, r) in level.rules.iter().enumerate() {
            if let Some(e) = self.slab[r.idx as usize].as_mut() {
                e.level = serial;
                e.slot = slot as u32;
            }
        }
        level
    }

    /// Retires a level no longer in the table: what it counted so far goes to its
    /// entries now, what workers still count in it at later folds.
    fn retire(&mut self, old: Arc<Level>) {
        let slab = &mut self.slab;
        self.retired
            .push(Retired::new(old, |c, i, v| add_to(slab, c, i, v)));
    }

    /// The live entries of a level (removed and replaced ones left out).
    fn live(&self, l: &Level) -> Vec<u32> {
        l.rules
            .iter()
            .filter(|r| {
                self.slab[r.idx as usize]
                    .as_ref()
                    .is_some_and(|e| e.uid == r.uid)
            })
            .map(|r| r.idx)
            .collect()
    }

    /// Builds the next compiled version of this table, retiring the levels it replaces.
    /// Cost: the entries added since the last compile, the levels holding entries removed
    /// or changed since, and the merges these trigger (amortised O(log n) per added entry);
    /// O(n) when compacting.
    pub fn compile(&mut self, workers: usize, strategy: Strategy) -> Arc<CompiledTable> {
        let levels: Vec<Arc<Level>> = self.compiled.levels.to_vec();
        let stale = std::mem::take(&mut self.stale);
        // Stale levels are rebuilt now; when compacting, every level goes into one.
        let mut rebuilt: Vec<Arc<Level>> = Vec::with_capacity(levels.len() + 1);
        let mut carry: Vec<u32> = Vec::new();
        for l in levels {
            if self.compact {
                carry.extend(self.live(&l));
                self.retire(l);
            } else if stale.contains(&l.serial) {
                let idxs = self.live(&l);
                self.retire(l);
                if !idxs.is_empty() {
                    let nl = self.build_level(&idxs, workers, strategy);
                    rebuilt.push(nl);
                }
            } else {
                rebuilt.push(l);
            }
        }
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_unstable();
        pending.dedup();
        pending.retain(|&i| {
            self.slab
                .get(i as usize)
                .and_then(Option::as_ref)
                .is_some_and(|e| e.level == 0)
        });
        carry.extend(pending);
        if !carry.is_empty() {
            let nl = self.build_level(&carry, workers, strategy);
            rebuilt.push(nl);
        }
        self.compact = false;
        // Merge like a binary counter: sizes (largest first) at least halve from one level
        // to the next, so there are at most log2(n) + 1 levels.
        loop {
            rebuilt.sort_by_key(|l| std::cmp::Reverse(l.len()));
            let Some(i) = (0..rebuilt.len().saturating_sub(1))
                .rev()
                .find(|&i| rebuilt[i + 1].len() * 2 > rebuilt[i].len())
            else {
                break;
            };
            let b = rebuilt.remove(i + 1);
            let a = rebuilt.remove(i);
            let mut idxs = self.live(&a);
            idxs.extend(self.live(&b));
            self.retire(a);
            self.retire(b);
            let nl = self.build_level(&idxs, workers, strategy);
            rebuilt.push(nl);
        }
        rebuilt.sort_by_key(|l| std::cmp::Reverse(l.max_rank));
        let extract_plan = rebuilt
            .iter()
            .fold(crate::plan::for_miss(self.miss), |p, l| {
                p.union(l.extract_plan)
            });
        let reads_headers = extract_plan.parse != packet::Parse::InPort;
        let prefetches = rebuilt.iter().any(|l| l.classifier.prefetches());
        let conjunctive = rebuilt.iter().any(|l| l.clauses.is_some());
        let tracks = rebuilt.iter().any(|l| l.tracks);
        let plain = rebuilt.iter().any(|l| l.plain);
        let counts_per_burst = !conjunctive
            && rebuilt.iter().all(|l| {
                matches!(
                    l.classifier,
                    crate::lookup::Classifier::Port(_) | crate::lookup::Classifier::Empty(_)
                )
            });
        // A form with entries below its main rows is probed through the level's classifier
        // (`lookup_ordinary`, a call): their compares would lengthen the walk's inlined
        // probe for every table.
        let inline_level = match &rebuilt[..] {
            [l] if !conjunctive => match &l.classifier {
                Classifier::Inline(x) if !x.has_post() => Some((x.clone(), l.clone())),
                _ => None,
            },
            _ => None,
        };
        let new = Arc::new(CompiledTable {
            table_id: self.id,
            levels: rebuilt.into(),
            counters: CounterBlock::new(workers, 2),
            miss: self.miss,
            reads_headers,
            extract_plan,
            prefetches,
            conjunctive,
            tracks,
            plain,
            counts_per_burst,
            special: conjunctive || inline_level.is_some(),
            inline_level,
        });
        let old = std::mem::replace(&mut self.compiled, new.clone());
        let (bl, bm) = (&mut self.base_lookups, &mut self.base_matches);
        self.retired_versions
            .push(Retired::new(old, |_, i, v| add_table(bl, bm, i, v)));
        self.dirty = false;
        new
    }

    /// Folds the counts of retired levels into the entries; drops those no worker holds.
    pub fn fold(&mut self) {
        let (bl, bm) = (&mut self.base_lookups, &mut self.base_matches);
        fold_all(&mut self.retired_versions, |_, i, v| {
            add_table(bl, bm, i, v)
        });
        let slab = &mut self.slab;
        fold_all(&mut self.retired, |c, i, v| add_to(slab, c, i, v));
    }

    /// Mutable access that does not mark the table for recompilation (counter bookkeeping).
    pub(crate) fn slab_entry_mut(&mut self, idx: u32) -> &mut FlowEntry {
        self.slab[idx as usize]
            .as_mut()
            .expect("caller checked the entry exists")
    }
}

/// Folds `v` of counter `i` ([`TABLE_MISSES`] or [`TABLE_MATCHES`]): every miss and
/// every match was a lookup.
fn add_table(lookups: &mut u64, matches: &mut u64, i: usize, v: u64) {
    *lookups = lookups.wrapping_add(v);
    if i == TABLE_MATCHES {
        *matches = matches.wrapping_add(v);
    }
}

fn add_to(slab: &mut [Option<FlowEntry>], c: &Level, i: usize, v: u64) {
    if let Some(r) = c.rules.get(i / 2) {
        if let Some(Some(e)) = slab.get_mut(r.idx as usize) {
            if e.uid == r.uid {
                if i & 1 == 0 {
                    e.base_packets = e.base_packets.wrapping_add(v);
                } else {
                    e.base_bytes = e.base_bytes.wrapping_add(v);
                }
            }
        }
    }
}
