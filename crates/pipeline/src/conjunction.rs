//! Conjunctive matches: Open vSwitch's `conjunction(id,k/n)` action and `conj_id` field
//! (ovs-fields(7), "Conjunctive Match Fields").
//!
//! Sets of values in several dimensions (source addresses x destination ports, as the
//! OpenStack firewall driver writes them) would need the cross product of the sets as
//! entries; conjunctions need their sum. An entry whose actions are only `conjunction`s (and
//! `note`s) is a *clause*: it never matches as an entry. A packet matches conjunction `X` at
//! priority `P` when, for each dimension `k` of `X`'s `n`, some clause of priority `P` with
//! `conjunction(X,k/n)` matches it. What a table then answers is Open vSwitch's
//! (`classifier_lookup__` in its `lib/classifier.c`):
//!
//! 1. the best ordinary entry (the *hard* match, `conj_id` 0 in the key);
//! 2. among the conjunctions satisfied at priorities above the hard match's, highest
//!    priority first (and, at one priority, lowest id first: Open vSwitch leaves that order
//!    undefined, as it does overlapping conjunctions), the best ordinary entry for the key
//!    with `conj_id` set to the conjunction's id, if there is one: usually the
//!    `conj_id=X` entry, or an ordinary entry that beats it;
//! 3. else the hard match.
//!
//! Compiled form: each level keeps its clauses out of its classifier (they sit after its
//! ordinary entries, with slots and counters but no way to match) and groups them by
//! priority and by the exact set of conjunctions they serve; one classifier per group
//! answers whether any clause of it matches. A lookup probes the groups above the hard
//! match's priority (one probe per group: a dimension, usually), sets one bit per
//! dimension in a per-conjunction bitmap, and looks the table up again for each satisfied
//! conjunction. Tables without clauses pay one flag test per lookup.

use std::cell::RefCell;

use crate::flow::{Action, Instructions, Words};
use crate::lookup::{Classifier, RuleSpec, Strategy};
use crate::table::{CompiledTable, Level};
use crate::PipelineError;

/// The key word of `conj_id` (its low 32 bits).
const CONJ_WORD: usize = packet::key::pos::CONJ_ID.word as usize;

/// Most dimensions a conjunction may have (Open vSwitch's limit: a 64-bit bitmap).
pub const MAX_CLAUSES: u8 = 64;

/// One `conjunction(id, clause+1/n_clauses)` of a clause entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConjRef {
    pub id: u32,
    /// Counts from 0.
    pub clause: u8,
    pub n_clauses: u8,
}

/// The conjunctions an entry is a clause of (sorted, deduplicated); `None` for an ordinary
/// entry (no `conjunction` action).
pub fn clause_of(insts: &Instructions) -> Option<Vec<ConjRef>> {
    let apply = insts.apply.as_ref()?;
    let mut refs: Vec<ConjRef> = apply
        .iter()
        .filter_map(|a| match *a {
            Action::Conjunction {
                id,
                clause,
                n_clauses,
            } => Some(ConjRef {
                id,
                clause,
                n_clauses,
            }),
            _ => None,
        })
        .collect();
    if refs.is_empty() {
        return None;
    }
    refs.sort_unstable();
    refs.dedup();
    Some(refs)
}

/// Open vSwitch's rules for an entry with `conjunction` actions (NXBAC_BAD_CONJUNCTION
/// otherwise): only `conjunction` and `note` actions, no other instruction, and each
/// `conjunction(id,k/n)` with 1 <= k <= n and 2 <= n <= 64.
pub fn check(insts: &Instructions) -> Result<(), PipelineError> {
    let in_write = insts
        .write
        .iter()
        .flat_map(|w| w.list.iter())
        .any(|a| matches!(a, Action::Conjunction { .. }));
    if in_write {
        return Err(PipelineError::BadConjunction);
    }
    let Some(apply) = &insts.apply else {
        return Ok(());
    };
    if !apply
        .iter()
        .any(|a| matches!(a, Action::Conjunction { .. }))
    {
        return Ok(());
    }
    let others = insts.meter.is_some()
        || insts.clear
        || insts.write.is_some()
        || insts.metadata.is_some()
        || insts.goto.is_some();
    if others {
        return Err(PipelineError::BadConjunction);
    }
    for a in apply.iter() {
        match *a {
            Action::Conjunction {
                clause, n_clauses, ..
            } if (2..=MAX_CLAUSES).contains(&n_clauses) && clause < n_clauses => {}
            Action::Note(_) => {}
            _ => return Err(PipelineError::BadConjunction),
        }
    }
    Ok(())
}

/// A level's clause entries of one priority that serve exactly the same conjunctions.
#[derive(Debug)]
pub struct ClauseGroup {
    pub priority: u16,
    classifier: Classifier,
    /// The level slot of each classifier slot.
    slots: Box<[u32]>,
    pub conjs: Box<[ConjRef]>,
}

/// The clauses of one level, highest priority first.
#[derive(Debug)]
pub struct Clauses {
    pub groups: Box<[ClauseGroup]>,
}

/// A clause entry as a level hands it over: its slot in the level, priority, match and
/// rank, and what it serves.
pub(crate) struct ClauseSpec<'a> {
    pub slot: u32,
    pub priority: u16,
    pub value: crate::flow::ValueWords<'a>,
    pub mask: &'a Words,
    pub rank: u64,
    pub conjs: Vec<ConjRef>,
}

impl Clauses {
    pub(crate) fn build(mut specs: Vec<ClauseSpec<'_>>, strategy: Strategy) -> Option<Clauses> {
        if specs.is_empty() {
            return None;
        }
        specs.sort_by(|a, b| {
            (std::cmp::Reverse(a.priority), &a.conjs)
                .cmp(&(std::cmp::Reverse(b.priority), &b.conjs))
        });
        let mut groups = Vec::new();
        let mut start = 0;
        while start < specs.len() {
            let end = start
                + specs[start..]
                    .iter()
                    .take_while(|s| {
                        s.priority == specs[start].priority && s.conjs == specs[start].conjs
                    })
                    .count();
            let part = &specs[start..end];
            let rules: Vec<RuleSpec<'_>> = part
                .iter()
                .map(|s| RuleSpec {
                    value: s.value,
                    mask: s.mask,
                    rank: s.rank,
                })
                .collect();
            groups.push(ClauseGroup {
                priority: part[0].priority,
                classifier: Classifier::build(&rules, strategy),
                slots: part.iter().map(|s| s.slot).collect(),
                conjs: part[0].conjs.clone().into(),
            });
            start = end;
        }
        Some(Clauses {
            groups: groups.into(),
        })
    }
}

/// Dimensions of one conjunction found so far in a lookup.
#[derive(Clone, Copy, Debug)]
struct Partial {
    priority: u16,
    id: u32,
    n_clauses: u8,
    bits: u64,
}

impl Partial {
    fn satisfied(&self) -> bool {
        let all = if self.n_clauses >= 64 {
            u64::MAX
        } else {
            (1u64 << self.n_clauses) - 1
        };
        self.bits == all
    }
}

thread_local! {
    /// Per-thread scratch of [`resolve`]: grows to the most conjunctions one packet has
    /// touched, then is reused (no allocation per packet).
    static SCRATCH: RefCell<Vec<Partial>> = const { RefCell::new(Vec::new()) };
}

/// The conjunctions `key` satisfies above priority `floor` (exclusive; -1: any), best
/// first (priority descending, then id ascending), into `out`.
fn satisfied(t: &CompiledTable, key: &Words, floor: i32, out: &mut Vec<Partial>) {
    out.clear();
    for l in t.levels.iter() {
        let Some(cl) = &l.clauses else {
            continue;
        };
        for g in cl.groups.iter() {
            if i32::from(g.priority) <= floor {
                break;
            }
            if g.classifier.lookup(key).is_none() {
                continue;
            }
            for c in g.conjs.iter() {
                let bit = 1u64.checked_shl(u32::from(c.clause)).unwrap_or(0);
                match out.iter_mut().find(|p| {
                    p.priority == g.priority && p.id == c.id && p.n_clauses == c.n_clauses
                }) {
                    Some(p) => p.bits |= bit,
                    None => out.push(Partial {
                        priority: g.priority,
                        id: c.id,
                        n_clauses: c.n_clauses,
                        bits: bit,
                    }),
                }
            }
        }
    }
    out.retain(Partial::satisfied);
    out.sort_unstable_by_key(|p| (std::cmp::Reverse(p.priority), p.id));
}

/// The table's answer given its hard match (see the module doc).
#[inline(never)]
pub(crate) fn resolve<'a>(
    t: &'a CompiledTable,
    key: &Words,
    hard: Option<(&'a Level, usize)>,
) -> Option<(&'a Level, usize)> {
    let floor = hard.map_or(-1, |(l, s)| i32::from(l.rules[s].priority));
    SCRATCH.with(|cell| {
        let Ok(mut sat) = cell.try_borrow_mut() else {
            // Not reentrant: a lookup never runs inside another.
            return hard;
        };
        satisfied(t, key, floor, &mut sat);
        if sat.is_empty() {
            return hard;
        }
        let mut k = *key;
        for p in sat.iter() {
            k[CONJ_WORD] = (key[CONJ_WORD] & !0xffff_ffff) | u64::from(p.id);
            if let Some(r) = t.lookup_ordinary(&k) {
                return Some(r);
            }
        }
        hard
    })
}

/// What a trace shows of a conjunctive match: the conjunction that decided the lookup, and
/// one matching clause entry per group that served it (level and slot).
#[derive(Debug)]
pub struct Explained<'a> {
    pub id: u32,
    pub priority: u16,
    pub clauses: Vec<(&'a Level, usize)>,
}

/// Why `t` answers `key` as it does, if a conjunction decided it (for traces; allocates).
pub fn explain<'a>(t: &'a CompiledTable, key: &Words) -> Option<Explained<'a>> {
    if !t.conjunctive {
        return None;
    }
    let hard = t.lookup_ordinary(key);
    let floor = hard.map_or(-1, |(l, s)| i32::from(l.rules[s].priority));
    let mut sat = Vec::new();
    satisfied(t, key, floor, &mut sat);
    let mut k = *key;
    for p in sat {
        k[CONJ_WORD] = (key[CONJ_WORD] & !0xffff_ffff) | u64::from(p.id);
        if t.lookup_ordinary(&k).is_none() {
            continue;
        }
        let mut clauses = Vec::new();
        for l in t.levels.iter() {
            for g in l.clauses.iter().flat_map(|c| c.groups.iter()) {
                let serves = g.priority == p.priority
                    && g.conjs
                        .iter()
                        .any(|c| c.id == p.id && c.n_clauses == p.n_clauses);
                if !serves {
                    continue;
                }
                if let Some(s) = g.classifier.lookup(key) {
                    clauses.push((&**l, g.slots[s as usize] as usize));
                }
            }
        }
        return Some(Explained {
            id: p.id,
            priority: p.priority,
            clauses,
        });
    }
    None
}
