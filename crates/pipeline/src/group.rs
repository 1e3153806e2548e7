//! Groups: the control-plane table (group-mod semantics and their errors) and the compiled
//! form workers execute, with bucket liveness and the select table precomputed for the
//! version's ports.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use hashbrown::HashMap;

use crate::ports::OFPP_ANY;

use crate::counters::{fold_all, Counted, CounterBlock, Retired};
use crate::error::PipelineError;
use crate::flow::{Action, Words};
use crate::lookup::hash_words;
use crate::port::PortSet;

/// Highest usable group number (`OFPG_MAX`).
pub const OFPG_MAX: u32 = 0xffff_ff00;
/// All groups (a delete of every group), `OFPG_ALL`.
pub const OFPG_ALL: u32 = 0xffff_fffc;
/// No group / any group (`watch_group`, flow filters), `OFPG_ANY`.
pub const OFPG_ANY: u32 = 0xffff_ffff;

/// How a group runs its buckets (`ofp_group_type`'s cases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupType {
    /// Every bucket, each on a copy.
    All,
    /// One live bucket, chosen by a hash of the flow, weighted.
    Select,
    /// The one bucket.
    Indirect,
    /// The first live bucket.
    FastFailover,
}

/// What a group-mod does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupModCommand {
    Add,
    Modify,
    Delete,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub weight: u16,
    pub watch_port: u32,
    pub watch_group: u32,
    pub actions: Box<[Action]>,
}

impl Bucket {
    pub fn new(actions: Vec<Action>) -> Bucket {
        Bucket {
            weight: 0,
            watch_port: OFPP_ANY,
            watch_group: OFPG_ANY,
            actions: actions.into(),
        }
    }

    fn chained(&self) -> impl Iterator<Item = u32> + '_ {
        self.actions.iter().filter_map(|a| match a {
            Action::Group(g) => Some(*g),
            _ => None,
        })
    }
}

#[derive(Clone, Debug)]
pub struct GroupEntry {
    pub id: u32,
    pub kind: GroupType,
    pub buckets: Vec<Bucket>,
    pub created: Duration,
    pub(crate) base: Vec<u64>,
}

impl GroupEntry {
    fn counter_len(&self) -> usize {
        2 + 2 * self.buckets.len()
    }
}

/// Group statistics as OFPMP_GROUP reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupCounts {
    pub packets: u64,
    pub bytes: u64,
    /// (packets, bytes) per bucket.
    pub buckets: Vec<(u64, u64)>,
}

/// One group as workers run it.
#[derive(Debug)]
pub struct CompiledGroup {
    pub id: u32,
    pub kind: GroupType,
    pub buckets: Box<[Bucket]>,
    /// Index of the group's packet counter; bytes follow, then per bucket (packets, bytes).
    pub(crate) counter_base: u32,
    /// SELECT: (cumulative weight, bucket) over live buckets with a weight.
    select: Box<[(u64, u32)]>,
    /// FAST_FAILOVER: the first live bucket.
    failover: Option<u32>,
}

impl CompiledGroup {
    /// The buckets a packet with `key` goes through: every bucket (ALL), one (INDIRECT),
    /// the one the flow hashes to (SELECT) or the first live one (FAST_FAILOVER).
    #[inline]
    pub fn chosen(&self, key: &Words) -> std::ops::Range<usize> {
        match self.kind {
            GroupType::All => 0..self.buckets.len(),
            GroupType::Indirect => 0..self.buckets.len().min(1),
            GroupType::FastFailover => match self.failover {
                Some(b) => b as usize..b as usize + 1,
                None => 0..0,
            },
            _ => {
                let Some(&(total, _)) = self.select.last() else {
                    return 0..0;
                };
                let h = select_hash(key) % total;
                let i = self.select.partition_point(|&(cum, _)| cum <= h);
                let b = self.select[i].1 as usize;
                b..b + 1
            }
        }
    }
}

/// The fields SELECT hashes: L2 addresses, eth_type, VLAN, IPv4 addresses, ip_proto and
/// L4 ports, IPv6 addresses (key words 3 to 10). in_port and metadata are left out so a
/// flow keeps its bucket whichever way it arrived.
#[inline]
fn select_hash(key: &Words) -> u64 {
    hash_words(&key[3..11])
}

#[derive(Debug)]
pub struct CompiledGroups {
    index: HashMap<u32, u32>,
    groups: Box<[CompiledGroup]>,
    pub(crate) counters: CounterBlock,
    /// Some bucket runs `ct`: [`crate::Pipeline::tracks`].
    pub tracks: bool,
}

impl Counted for CompiledGroups {
    fn counters(&self) -> &CounterBlock {
        &self.counters
    }
}

impl CompiledGroups {
    #[inline]
    pub fn get(&self, id: u32) -> Option<&CompiledGroup> {
        self.index.get(&id).map(|&i| &self.groups[i as usize])
    }

    #[inline]
    pub(crate) fn count(
        &self,
        worker: usize,
        g: &CompiledGroup,
        bucket: Option<usize>,
        bytes: u64,
    ) {
        let base = g.counter_base as usize;
        match bucket {
            None => {
                self.counters.add(worker, base, 1);
                self.counters.add(worker, base + 1, bytes);
            }
            Some(b) => {
                self.counters.add(worker, base + 2 + 2 * b, 1);
                self.counters.add(worker, base + 3 + 2 * b, bytes);
            }
        }
    }

    /// Which group (id) and counter offset an index belongs to.
    fn owner(&self, idx: usize) -> Option<(u32, usize)> {
        let i = self
            .groups
            .partition_point(|g| g.counter_base as usize <= idx);
        let g = self.groups.get(i.checked_sub(1)?)?;
        Some((g.id, idx - g.counter_base as usize))
    }
}

/// A group-mod in pipeline terms.
#[derive(Clone, Debug)]
pub struct GroupModReq {
    pub command: GroupModCommand,
    pub kind: GroupType,
    pub group_id: u32,
    pub buckets: Vec<Bucket>,
}

/// The groups as they were when a transaction first touched them: what its rollback puts
/// back (definitions, folded counters, what the next compile would do).
#[derive(Debug)]
pub(crate) struct GroupSnapshot {
    groups: BTreeMap<u32, GroupEntry>,
    retired: Vec<Retired<CompiledGroups>>,
    dirty: bool,
}

/// The control plane's groups.
#[derive(Debug)]
pub(crate) struct GroupTable {
    pub groups: BTreeMap<u32, GroupEntry>,
    pub compiled: Arc<CompiledGroups>,
    retired: Vec<Retired<CompiledGroups>>,
    pub dirty: bool,
    workers: usize,
}

impl GroupTable {
    pub fn new(workers: usize) -> GroupTable {
        GroupTable {
            groups: BTreeMap::new(),
            compiled: Arc::new(CompiledGroups {
                index: HashMap::new(),
                groups: Box::new([]),
                counters: CounterBlock::new(workers, 0),
                tracks: false,
            }),
            retired: Vec::new(),
            dirty: false,
            workers,
        }
    }

    pub fn exists(&self, id: u32) -> bool {
        self.groups.contains_key(&id)
    }

    /// O(groups): taken once per transaction, at its first group change.
    pub fn snapshot(&self) -> GroupSnapshot {
        GroupSnapshot {
            groups: self.groups.clone(),
            retired: self.retired.clone(),
            dirty: self.dirty,
        }
    }

    pub fn restore(&mut self, s: GroupSnapshot) {
        self.groups = s.groups;
        self.retired = s.retired;
        self.dirty = s.dirty;
    }

    /// Would `id` with `buckets` reach itself through chained group actions?
    fn loops(&self, id: u32, buckets: &[Bucket]) -> bool {
        let mut stack: Vec<u32> = buckets.iter().flat_map(|b| b.chained()).collect();
        let mut seen = BTreeSet::new();
        while let Some(g) = stack.pop() {
            if g == id {
                return true;
            }
            if seen.insert(g) {
                if let Some(e) = self.groups.get(&g) {
                    stack.extend(e.buckets.iter().flat_map(|b| b.chained()));
                }
            }
        }
        false
    }

    fn check_buckets(kind: GroupType, buckets: &[Bucket]) -> Result<(), PipelineError> {
        match kind {
            // OpenFlow 1.3.5 (5.6.1, and OFTest's group cases): a group whose buckets do
            // not fit its type is an invalid group, not a bad bucket.
            GroupType::Indirect if buckets.len() > 1 => {
                return Err(PipelineError::InvalidGroupBuckets)
            }
            GroupType::All | GroupType::Indirect if buckets.iter().any(|b| b.weight != 0) => {
                return Err(PipelineError::InvalidGroupBuckets)
            }
            // A SELECT group none of whose buckets has a weight can never choose one.
            GroupType::Select if !buckets.is_empty() && buckets.iter().all(|b| b.weight == 0) => {
                return Err(PipelineError::InvalidGroupBuckets)
            }
            GroupType::FastFailover if buckets.iter().any(|b| b.weight != 0) => {
                return Err(PipelineError::BadBucket)
            }
            GroupType::FastFailover
                if buckets
                    .iter()
                    .any(|b| b.watch_port == OFPP_ANY && b.watch_group == OFPG_ANY) =>
            {
                return Err(PipelineError::BadWatch)
            }
            _ => {}
        }
        Ok(())
    }

    /// Applies a group-mod. Returns the ids of deleted groups, whose flows the caller
    /// removes.
    pub fn apply(&mut self, req: GroupModReq, now: Duration) -> Result<Vec<u32>, PipelineError> {
        use GroupModCommand as C;
        let id = req.group_id;
        match req.command {
            C::Add | C::Modify => {
                if id > OFPG_MAX {
                    return Err(PipelineError::InvalidGroupId(id));
                }
                let exists = self.exists(id);
                if req.command == C::Add && exists {
                    return Err(PipelineError::GroupExists(id));
                }
                if req.command == C::Modify && !exists {
                    return Err(PipelineError::UnknownGroup(id));
                }
                Self::check_buckets(req.kind, &req.buckets)?;
                for b in &req.buckets {
                    for g in b.chained() {
                        if g != id && !self.exists(g) {
                            return Err(PipelineError::BadOutGroup(g));
                        }
                    }
                }
                if self.loops(id, &req.buckets) {
                    return Err(PipelineError::GroupLoop(id));
                }
                // A modified group keeps its totals (the compiled version still counting
                // folds into them when it retires); bucket counters restart.
                let mut base = vec![0; 2 + 2 * req.buckets.len()];
                if let Some(old) = self.groups.get(&id) {
                    base[0] = old.base[0];
                    base[1] = old.base[1];
                }
                let created = self.groups.get(&id).map_or(now, |g| g.created);
                let entry = GroupEntry {
                    id,
                    kind: req.kind,
                    buckets: req.buckets,
                    created,
                    base,
                };
                self.groups.insert(id, entry);
                self.dirty = true;
                Ok(vec![])
            }
            C::Delete => {
                let ids: Vec<u32> = if id == OFPG_ALL {
                    self.groups.keys().copied().collect()
                } else if self.groups.contains_key(&id) {
                    let chained_from = self.groups.values().any(|g| {
                        g.id != id && g.buckets.iter().any(|b| b.chained().any(|c| c == id))
                    });
                    if chained_from {
                        return Err(PipelineError::ChainedGroup(id));
                    }
                    vec![id]
                } else {
                    vec![]
                };
                for g in &ids {
                    self.groups.remove(g);
                }
                self.dirty |= !ids.is_empty();
                Ok(ids)
            }
        }
    }

    /// Builds the compiled groups for `ports`, retiring the previous ones.
    pub fn compile(&mut self, ports: &PortSet) -> Arc<CompiledGroups> {
        let mut live: HashMap<u32, bool> = HashMap::new();
        fn group_live(
            t: &BTreeMap<u32, GroupEntry>,
            ports: &PortSet,
            memo: &mut HashMap<u32, bool>,
            id: u32,
            depth: u32,
        ) -> bool {
            if let Some(&l) = memo.get(&id) {
                return l;
            }
            let l = depth < 32
                && t.get(&id).is_some_and(|g| {
                    g.buckets
                        .iter()
                        .any(|b| bucket_live(t, ports, memo, b, depth + 1))
                });
            memo.insert(id, l);
            l
        }
        fn bucket_live(
            t: &BTreeMap<u32, GroupEntry>,
            ports: &PortSet,
            memo: &mut HashMap<u32, bool>,
            b: &Bucket,
            depth: u32,
        ) -> bool {
            (b.watch_port == OFPP_ANY || ports.is_live(b.watch_port))
                && (b.watch_group == OFPG_ANY || group_live(t, ports, memo, b.watch_group, depth))
        }
        let mut groups = Vec::with_capacity(self.groups.len());
        let mut index = HashMap::new();
        let mut base = 0u32;
        for g in self.groups.values() {
            let mut select = Vec::new();
            let mut cum = 0u64;
            let mut failover = None;
            for (i, b) in g.buckets.iter().enumerate() {
                let l = bucket_live(&self.groups, ports, &mut live, b, 0);
                if l && b.weight > 0 {
                    cum += u64::from(b.weight);
                    select.push((cum, i as u32));
                }
                if l && failover.is_none() {
                    failover = Some(i as u32);
                }
            }
            index.insert(g.id, groups.len() as u32);
            groups.push(CompiledGroup {
                id: g.id,
                kind: g.kind,
                buckets: g.buckets.clone().into(),
                counter_base: base,
                select: select.into(),
                failover,
            });
            base += g.counter_len() as u32;
        }
        let tracks = groups.iter().any(|g: &CompiledGroup| {
            g.buckets
                .iter()
                .any(|b| b.actions.iter().any(|a| matches!(a, Action::Ct(_))))
        });
        let new = Arc::new(CompiledGroups {
            index,
            groups: groups.into(),
            counters: CounterBlock::new(self.workers, base as usize),
            tracks,
        });
        let old = std::mem::replace(&mut self.compiled, new.clone());
        let groups_map = &mut self.groups;
        self.retired
            .push(Retired::new(old, |c, idx, v| add_to(groups_map, c, idx, v)));
        self.dirty = false;
        new
    }

    /// Folds retired compiled groups into the entries' totals.
    pub fn fold(&mut self) {
        let groups_map = &mut self.groups;
        fold_all(&mut self.retired, |c, idx, v| add_to(groups_map, c, idx, v));
    }

    fn live_counts(&self, g: &GroupEntry) -> GroupCounts {
        let mut c: Vec<u64> = g.base.clone();
        if let Some(cg) = self.compiled.get(g.id) {
            if cg.buckets.len() == g.buckets.len() {
                for (i, v) in c.iter_mut().enumerate() {
                    *v += self.compiled.counters.sum(cg.counter_base as usize + i);
                }
            } else {
                c[0] += self.compiled.counters.sum(cg.counter_base as usize);
                c[1] += self.compiled.counters.sum(cg.counter_base as usize + 1);
            }
        }
        GroupCounts {
            packets: c[0],
            bytes: c[1],
            buckets: c[2..].chunks(2).map(|p| (p[0], p[1])).collect(),
        }
    }

    /// Counters of a group (folded and live).
    pub fn counts(&mut self, id: u32) -> Option<GroupCounts> {
        self.fold();
        let g = self.groups.get(&id)?;
        Some(self.live_counts(g))
    }

    /// Groups that chain to `id` (for ref counts in group stats: flows are counted by the
    /// caller).
    pub fn chained_refs(&self, id: u32) -> u32 {
        self.groups
            .values()
            .map(|g| {
                g.buckets
                    .iter()
                    .flat_map(|b| b.chained())
                    .filter(|&c| c == id)
                    .count() as u32
            })
            .sum()
    }
}

fn add_to(groups: &mut BTreeMap<u32, GroupEntry>, c: &CompiledGroups, idx: usize, v: u64) {
    let Some((id, off)) = c.owner(idx) else {
        return;
    };
    let Some(g) = groups.get_mut(&id) else {
        return;
    };
    let same_layout = c
        .get(id)
        .is_some_and(|cg| cg.buckets.len() == g.buckets.len());
    if off < 2 || same_layout {
        if let Some(b) = g.base.get_mut(off) {
            *b += v;
        }
    }
}
