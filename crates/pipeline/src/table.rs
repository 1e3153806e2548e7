//! One flow table: the control plane's entries (flow-mod semantics) and the immutable
//! [`CompiledTable`] workers look packets up in.

use std::sync::Arc;
use std::time::Duration;

use hashbrown::HashTable;

use crate::counters::{fold_all, Counted, CounterBlock, Retired};
use crate::error::PipelineError;
use crate::flow::{FlowEntry, Instructions, Match};
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

/// An entry as workers see it.
#[derive(Debug)]
pub struct Rule {
    pub uid: u64,
    pub priority: u16,
    pub cookie: u64,
    /// Priority 0 and wildcard-all: its CONTROLLER outputs say NO_MATCH.
    pub table_miss: bool,
    pub insts: Arc<Instructions>,
    /// Index of the entry in the control plane's table.
    pub(crate) idx: u32,
}

/// One table of one pipeline version. Counters: per slot (packets, bytes), then the
/// table's (lookups, matches).
#[derive(Debug)]
pub struct CompiledTable {
    pub table_id: u8,
    pub classifier: Classifier,
    pub rules: Box<[Rule]>,
    pub(crate) counters: CounterBlock,
    pub miss: MissPolicy,
}

impl Counted for CompiledTable {
    fn counters(&self) -> &CounterBlock {
        &self.counters
    }
}

impl CompiledTable {
    #[inline]
    pub(crate) fn lookups_idx(&self) -> usize {
        2 * self.rules.len()
    }

    /// The structure picked for this version ("exact", "tuple", ...).
    pub fn kind(&self) -> &'static str {
        self.classifier.kind()
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
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

#[derive(Debug)]
pub(crate) struct FlowTable {
    pub id: u8,
    slab: Vec<Option<FlowEntry>>,
    free: Vec<u32>,
    len: usize,
    /// Slab indices by (priority, match), for replace and the strict commands.
    by_match: HashTable<u32>,
    pub compiled: Arc<CompiledTable>,
    retired: Vec<Retired<CompiledTable>>,
    pub dirty: bool,
    pub miss: MissPolicy,
    base_lookups: u64,
    base_matches: u64,
    pub max_entries: usize,
}

fn match_hash(priority: u16, m: &Match) -> u64 {
    hash_words(&m.value) ^ hash_words(&m.mask).rotate_left(17) ^ u64::from(priority)
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
                classifier: Classifier::build(&[], Strategy::Auto),
                rules: Box::new([]),
                counters: CounterBlock::new(workers, 2),
                miss: MissPolicy::Drop,
            }),
            retired: Vec::new(),
            dirty: true,
            miss: MissPolicy::Drop,
            base_lookups: 0,
            base_matches: 0,
            max_entries,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn get(&self, idx: u32) -> Option<&FlowEntry> {
        self.slab.get(idx as usize)?.as_ref()
    }

    pub fn get_mut(&mut self, idx: u32) -> Option<&mut FlowEntry> {
        self.dirty = true;
        self.slab.get_mut(idx as usize)?.as_mut()
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &FlowEntry)> {
        self.slab
            .iter()
            .enumerate()
            .filter_map(|(i, e)| Some((i as u32, e.as_ref()?)))
    }

    pub fn find_strict(&self, priority: u16, m: &Match) -> Option<u32> {
        let h = match_hash(priority, m);
        self.by_match
            .find(h, |&i| {
                self.slab[i as usize]
                    .as_ref()
                    .is_some_and(|e| e.priority == priority && e.match_ == *m)
            })
            .copied()
    }

    /// Packets and bytes of an entry: folded totals plus the current version's counters.
    pub fn counts(&self, idx: u32) -> (u64, u64) {
        let Some(e) = self.get(idx) else {
            return (0, 0);
        };
        let (mut p, mut b) = (e.base_packets, e.base_bytes);
        let c = &self.compiled;
        if let Some(r) = c.rules.get(e.slot as usize) {
            if r.uid == e.uid {
                p = p.wrapping_add(c.counters.sum(2 * e.slot as usize));
                b = b.wrapping_add(c.counters.sum(2 * e.slot as usize + 1));
            }
        }
        (p, b)
    }

    /// Restarts an entry's counters at zero (RESET_COUNTS).
    pub fn reset_counts(&mut self, idx: u32) {
        let (p, b) = self.counts(idx);
        if let Some(e) = self.slab.get_mut(idx as usize).and_then(Option::as_mut) {
            e.base_packets = e.base_packets.wrapping_sub(p);
            e.base_bytes = e.base_bytes.wrapping_sub(b);
            e.last_seen_packets = 0;
        }
    }

    /// (lookups, matches) of the table.
    pub fn table_counts(&self) -> (u64, u64) {
        let c = &self.compiled;
        let i = c.lookups_idx();
        (
            self.base_lookups + c.counters.sum(i),
            self.base_matches + c.counters.sum(i + 1),
        )
    }

    pub fn insert(&mut self, mut entry: FlowEntry) -> Result<u32, PipelineError> {
        if self.len >= self.max_entries {
            return Err(PipelineError::TableFull(self.id));
        }
        let h = match_hash(entry.priority, &entry.match_);
        entry.slot = u32::MAX;
        let idx = match self.free.pop() {
            Some(i) => {
                self.slab[i as usize] = Some(entry);
                i
            }
            None => {
                self.slab.push(Some(entry));
                (self.slab.len() - 1) as u32
            }
        };
        let slab = &self.slab;
        self.by_match.insert_unique(h, idx, |&i| {
            let e = slab[i as usize].as_ref().expect("indexed entries exist");
            match_hash(e.priority, &e.match_)
        });
        self.len += 1;
        self.dirty = true;
        Ok(idx)
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
        Some((e, p, b))
    }

    /// Builds the next compiled version of this table, retiring the current one. O(n).
    pub fn compile(&mut self, workers: usize, strategy: Strategy) -> Arc<CompiledTable> {
        let mut rules = Vec::with_capacity(self.len);
        let mut specs = Vec::with_capacity(self.len);
        for (i, e) in self.slab.iter().enumerate() {
            let Some(e) = e else { continue };
            rules.push(Rule {
                uid: e.uid,
                priority: e.priority,
                cookie: e.cookie,
                table_miss: e.is_table_miss(),
                insts: e.instructions.clone(),
                idx: i as u32,
            });
            specs.push(RuleSpec {
                value: &e.match_.value,
                mask: &e.match_.mask,
                rank: e.rank(),
            });
        }
        let classifier = Classifier::build(&specs, strategy);
        let n = rules.len();
        let new = Arc::new(CompiledTable {
            table_id: self.id,
            classifier,
            rules: rules.into(),
            counters: CounterBlock::new(workers, 2 * n + 2),
            miss: self.miss,
        });
        let old = std::mem::replace(&mut self.compiled, new.clone());
        let (slab, bl, bm) = (
            &mut self.slab,
            &mut self.base_lookups,
            &mut self.base_matches,
        );
        self.retired
            .push(Retired::new(old, |c, i, v| add_to(slab, bl, bm, c, i, v)));
        for (slot, r) in new.rules.iter().enumerate() {
            if let Some(e) = self.slab[r.idx as usize].as_mut() {
                e.slot = slot as u32;
            }
        }
        self.dirty = false;
        new
    }

    /// Folds the counts of retired versions into the entries; drops those no worker holds.
    pub fn fold(&mut self) {
        let (slab, bl, bm) = (
            &mut self.slab,
            &mut self.base_lookups,
            &mut self.base_matches,
        );
        fold_all(&mut self.retired, |c, i, v| add_to(slab, bl, bm, c, i, v));
    }
}

fn add_to(
    slab: &mut [Option<FlowEntry>],
    base_lookups: &mut u64,
    base_matches: &mut u64,
    c: &CompiledTable,
    i: usize,
    v: u64,
) {
    let n = c.rules.len();
    if i == 2 * n {
        *base_lookups += v;
    } else if i == 2 * n + 1 {
        *base_matches += v;
    } else if let Some(r) = c.rules.get(i / 2) {
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

impl FlowTable {
    /// Mutable access that does not mark the table for recompilation (counter bookkeeping).
    pub(crate) fn slab_entry_mut(&mut self, idx: u32) -> &mut FlowEntry {
        self.slab[idx as usize]
            .as_mut()
            .expect("caller checked the entry exists")
    }
}
