//! Meters: DROP and DSCP_REMARK bands enforced with token buckets.
//!
//! Buckets are per worker, each filled at `rate / shares` (shares: the datapath workers,
//! `PipelineConfig::meter_shares`): no shared state on the fast
//! path, at the cost of a flow pinned to one worker getting only its share of the rate
//! (RSS spreads flows, so the aggregate is close to the configured rate when traffic is
//! spread, and stricter when it is not). Bucket state and statistics live in per-worker
//! single-writer cells (see [`crate::counters`]). Changing any meter resets the buckets.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hashbrown::HashMap;

use crate::counters::{fold_all, Counted, CounterBlock, Retired};
use crate::error::PipelineError;
use crate::flags::flag_set;

/// Highest usable meter number (`OFPM_MAX`).
pub const OFPM_MAX: u32 = 0xffff_0000;
/// All meters (a delete of every meter), `OFPM_ALL`.
pub const OFPM_ALL: u32 = 0xffff_ffff;

flag_set! {
    /// A meter's flags, with `ofp_meter_flags`' values.
    pub struct MeterFlags: u16 {
        const KBPS = 1 << 0;
        const PKTPS = 1 << 1;
        const BURST = 1 << 2;
        const STATS = 1 << 3;
    }
}

/// What a meter-mod does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MeterModCommand {
    Add,
    Modify,
    Delete,
}

/// A meter-mod in pipeline terms (`ofproto` makes one from the wire message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeterModReq {
    pub command: MeterModCommand,
    pub meter_id: u32,
    pub flags: MeterFlags,
    /// `None` stands for a band of a type the switch does not implement (experimenter):
    /// it is refused with [`PipelineError::BadMeterBand`] where it stands, after the id and
    /// flag checks, as the bands before it are checked.
    pub bands: Vec<Option<Band>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BandKind {
    Drop,
    /// Add this many drop-precedence levels to an AF DSCP.
    DscpRemark(u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Band {
    pub kind: BandKind,
    /// kb/s or packets/s.
    pub rate: u32,
    /// kb or packets; only with the BURST flag, otherwise a tenth of a second of rate.
    pub burst: u32,
}

#[derive(Clone, Debug)]
pub struct MeterEntry {
    pub id: u32,
    pub flags: MeterFlags,
    pub bands: Vec<Band>,
    pub created: Duration,
    /// packets in, bytes in, then (packets, bytes) per band.
    pub(crate) base: Vec<u64>,
}

/// What a meter decided for one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeterVerdict {
    Pass,
    Drop,
    Remark(u8),
}

#[derive(Debug)]
pub struct CompiledMeter {
    pub id: u32,
    pkts: bool,
    bands: Box<[Band]>,
    /// Per band: fill per second and capacity, in nano-units (1e9 per packet or per kbit).
    fill: Box<[u128]>,
    cap: Box<[u128]>,
    counter_base: u32,
    state_base: u32,
}

#[derive(Debug)]
pub struct CompiledMeters {
    index: HashMap<u32, u32>,
    meters: Box<[CompiledMeter]>,
    pub(crate) counters: CounterBlock,
    /// Per band: tokens (nano-units) and last refill (ns); per worker.
    state: CounterBlock,
}

impl Counted for CompiledMeters {
    fn counters(&self) -> &CounterBlock {
        &self.counters
    }
}

impl CompiledMeters {
    #[inline]
    pub fn get(&self, id: u32) -> Option<&CompiledMeter> {
        self.index.get(&id).map(|&i| &self.meters[i as usize])
    }

    /// Runs a packet of `bytes` through meter `m` at `now_ns` on `worker`.
    #[inline]
    pub fn apply(&self, worker: usize, m: &CompiledMeter, bytes: u64, now_ns: u64) -> MeterVerdict {
        self.run(worker, m, bytes, now_ns, true)
    }

    /// What [`apply`](Self::apply) would decide for that packet, leaving the counters and
    /// `worker`'s buckets as they are (tracing).
    pub fn peek(&self, worker: usize, m: &CompiledMeter, bytes: u64, now_ns: u64) -> MeterVerdict {
        self.run(worker, m, bytes, now_ns, false)
    }

    #[inline(always)]
    fn run(
        &self,
        worker: usize,
        m: &CompiledMeter,
        bytes: u64,
        now_ns: u64,
        commit: bool,
    ) -> MeterVerdict {
        let cb = m.counter_base as usize;
        if commit {
            self.counters.add(worker, cb, 1);
            self.counters.add(worker, cb + 1, bytes);
        }
        let cost: u128 = if m.pkts {
            1_000_000_000
        } else {
            u128::from(bytes) * 8 * 1_000_000
        };
        let mut hit: Option<usize> = None;
        for (i, band) in m.bands.iter().enumerate() {
            let sb = m.state_base as usize + 2 * i;
            let last = self.state.worker_value(worker, sb + 1);
            let mut tokens = u128::from(self.state.worker_value(worker, sb));
            if last == 0 {
                tokens = m.cap[i];
            } else {
                let dt = u128::from(now_ns.saturating_sub(last).min(1_000_000_000));
                tokens = (tokens + m.fill[i] * dt / 1_000_000_000).min(m.cap[i]);
            }
            if tokens >= cost {
                tokens -= cost;
            } else if hit.is_none_or(|h| band.rate > m.bands[h].rate) {
                hit = Some(i);
            }
            if commit {
                self.state_set(worker, sb, tokens.min(u128::from(u64::MAX)) as u64);
                self.state_set(worker, sb + 1, now_ns.max(1));
            }
        }
        match hit {
            None => MeterVerdict::Pass,
            Some(i) => {
                if commit {
                    self.counters.add(worker, cb + 2 + 2 * i, 1);
                    self.counters.add(worker, cb + 3 + 2 * i, bytes);
                }
                match m.bands[i].kind {
                    BandKind::Drop => MeterVerdict::Drop,
                    BandKind::DscpRemark(p) => MeterVerdict::Remark(p),
                }
            }
        }
    }

    #[inline]
    fn state_set(&self, worker: usize, idx: usize, v: u64) {
        let old = self.state.worker_value(worker, idx);
        self.state.add(worker, idx, v.wrapping_sub(old));
    }

    fn owner(&self, idx: usize) -> Option<(u32, usize)> {
        let i = self
            .meters
            .partition_point(|m| m.counter_base as usize <= idx);
        let m = self.meters.get(i.checked_sub(1)?)?;
        Some((m.id, idx - m.counter_base as usize))
    }
}

/// The DSCP after adding `levels` of drop precedence: AF classes (AFx1..AFx3) move towards
/// AFx3; other code points are left alone.
pub fn remark_dscp(dscp: u8, levels: u8) -> u8 {
    let class = dscp >> 3;
    let dp = (dscp >> 1) & 3;
    if (1..=4).contains(&class) && dscp & 1 == 0 && (1..=3).contains(&dp) {
        (class << 3) | ((dp.saturating_add(levels)).min(3) << 1)
    } else {
        dscp
    }
}

/// Meter statistics as OFPMP_METER reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeterCounts {
    pub packets_in: u64,
    pub bytes_in: u64,
    pub bands: Vec<(u64, u64)>,
}

/// The meters as they were when a transaction first touched them (see
/// [`crate::group::GroupSnapshot`]).
#[derive(Debug)]
pub(crate) struct MeterSnapshot {
    meters: BTreeMap<u32, MeterEntry>,
    retired: Vec<Retired<CompiledMeters>>,
    dirty: bool,
}

#[derive(Debug)]
pub(crate) struct MeterTable {
    pub meters: BTreeMap<u32, MeterEntry>,
    pub compiled: Arc<CompiledMeters>,
    retired: Vec<Retired<CompiledMeters>>,
    pub dirty: bool,
    workers: usize,
    /// The rate is split this many ways.
    shares: usize,
}

impl MeterTable {
    pub fn new(workers: usize, shares: usize) -> MeterTable {
        MeterTable {
            meters: BTreeMap::new(),
            compiled: Arc::new(CompiledMeters {
                index: HashMap::new(),
                meters: Box::new([]),
                counters: CounterBlock::new(workers, 0),
                state: CounterBlock::new(workers, 0),
            }),
            retired: Vec::new(),
            dirty: false,
            workers,
            shares: shares.max(1),
        }
    }

    pub fn exists(&self, id: u32) -> bool {
        self.meters.contains_key(&id)
    }

    /// O(meters): taken once per transaction, at its first meter change.
    pub fn snapshot(&self) -> MeterSnapshot {
        MeterSnapshot {
            meters: self.meters.clone(),
            retired: self.retired.clone(),
            dirty: self.dirty,
        }
    }

    pub fn restore(&mut self, s: MeterSnapshot) {
        self.meters = s.meters;
        self.retired = s.retired;
        self.dirty = s.dirty;
    }

    /// Applies a meter-mod; returns the ids of deleted meters (their flows go too).
    pub fn apply(&mut self, mm: &MeterModReq, now: Duration) -> Result<Vec<u32>, PipelineError> {
        let id = mm.meter_id;
        match mm.command {
            MeterModCommand::Add | MeterModCommand::Modify => {
                if id == 0 || id > OFPM_MAX {
                    return Err(PipelineError::InvalidMeter(id));
                }
                let exists = self.exists(id);
                if mm.command == MeterModCommand::Add && exists {
                    return Err(PipelineError::MeterExists(id));
                }
                if mm.command == MeterModCommand::Modify && !exists {
                    return Err(PipelineError::UnknownMeter(id));
                }
                if mm.flags.contains(MeterFlags::KBPS) == mm.flags.contains(MeterFlags::PKTPS) {
                    return Err(PipelineError::BadMeterFlags);
                }
                if mm.bands.is_empty() {
                    return Err(PipelineError::BadMeterBand);
                }
                let mut bands = Vec::with_capacity(mm.bands.len());
                for b in &mm.bands {
                    let Some(band) = *b else {
                        return Err(PipelineError::BadMeterBand);
                    };
                    if band.rate == 0 {
                        return Err(PipelineError::BadMeterRate);
                    }
                    bands.push(band);
                }
                self.fold();
                let created = self.meters.get(&id).map_or(now, |m| m.created);
                let mut base = vec![0; 2 + 2 * bands.len()];
                if let Some(old) = self.meters.get(&id) {
                    base[0] = old.base[0];
                    base[1] = old.base[1];
                }
                self.meters.insert(
                    id,
                    MeterEntry {
                        id,
                        flags: mm.flags,
                        bands,
                        created,
                        base,
                    },
                );
                self.dirty = true;
                Ok(vec![])
            }
            MeterModCommand::Delete => {
                let ids: Vec<u32> = if id == OFPM_ALL {
                    self.meters.keys().copied().collect()
                } else if self.exists(id) {
                    vec![id]
                } else {
                    vec![]
                };
                for m in &ids {
                    self.meters.remove(m);
                }
                self.dirty |= !ids.is_empty();
                Ok(ids)
            }
        }
    }

    pub fn compile(&mut self) -> Arc<CompiledMeters> {
        let workers = self.shares.max(1) as u128;
        let mut meters = Vec::new();
        let mut index = HashMap::new();
        let (mut cbase, mut sbase) = (0u32, 0u32);
        for m in self.meters.values() {
            let pkts = m.flags.contains(MeterFlags::PKTPS);
            let burst_flag = m.flags.contains(MeterFlags::BURST);
            let fill: Box<[u128]> = m
                .bands
                .iter()
                .map(|b| u128::from(b.rate) * 1_000_000_000 / workers)
                .collect();
            let cap: Box<[u128]> = m
                .bands
                .iter()
                .zip(fill.iter())
                .map(|(b, &f)| {
                    let burst = if burst_flag && b.burst > 0 {
                        u128::from(b.burst) * 1_000_000_000 / workers
                    } else {
                        f / 10
                    };
                    // At least one full-size packet fits, or nothing would ever pass.
                    burst.max(if pkts {
                        1_000_000_000
                    } else {
                        1500 * 8 * 1_000_000
                    })
                })
                .collect();
            index.insert(m.id, meters.len() as u32);
            meters.push(CompiledMeter {
                id: m.id,
                pkts,
                bands: m.bands.clone().into(),
                fill,
                cap,
                counter_base: cbase,
                state_base: sbase,
            });
            cbase += 2 + 2 * m.bands.len() as u32;
            sbase += 2 * m.bands.len() as u32;
        }
        let new = Arc::new(CompiledMeters {
            index,
            meters: meters.into(),
            counters: CounterBlock::new(self.workers, cbase as usize),
            state: CounterBlock::new(self.workers, sbase as usize),
        });
        let old = std::mem::replace(&mut self.compiled, new.clone());
        let map = &mut self.meters;
        self.retired
            .push(Retired::new(old, |c, idx, v| add_to(map, c, idx, v)));
        self.dirty = false;
        new
    }

    pub fn fold(&mut self) {
        let map = &mut self.meters;
        fold_all(&mut self.retired, |c, idx, v| add_to(map, c, idx, v));
    }

    pub fn counts(&mut self, id: u32) -> Option<MeterCounts> {
        self.fold();
        let m = self.meters.get(&id)?;
        let mut c = m.base.clone();
        if let Some(cm) = self.compiled.get(id) {
            if cm.bands.len() == m.bands.len() {
                for (i, v) in c.iter_mut().enumerate() {
                    *v += self.compiled.counters.sum(cm.counter_base as usize + i);
                }
            }
        }
        Some(MeterCounts {
            packets_in: c[0],
            bytes_in: c[1],
            bands: c[2..].chunks(2).map(|p| (p[0], p[1])).collect(),
        })
    }
}

fn add_to(map: &mut BTreeMap<u32, MeterEntry>, c: &CompiledMeters, idx: usize, v: u64) {
    if let Some((id, off)) = c.owner(idx) {
        if let Some(m) = map.get_mut(&id) {
            if off < 2 || c.get(id).is_some_and(|cm| cm.bands.len() == m.bands.len()) {
                if let Some(b) = m.base.get_mut(off) {
                    *b += v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn af_remark() {
        assert_eq!(remark_dscp(10, 1), 12); // AF11 -> AF12
        assert_eq!(remark_dscp(12, 5), 14); // AF12 -> AF13 (capped)
        assert_eq!(remark_dscp(46, 1), 46); // EF untouched
        assert_eq!(remark_dscp(0, 1), 0);
    }

    /// Packets `apply` lets through out of `n` sent at `pps` on worker 0.
    fn passed(c: &CompiledMeters, n: u64, pps: u64) -> u64 {
        let m = c.get(1).unwrap();
        (0..n)
            .filter(|i| c.apply(0, m, 100, 1 + i * 1_000_000_000 / pps) == MeterVerdict::Pass)
            .count() as u64
    }

    /// Regression (os-ken meter tests): with two contexts (a worker and the control
    /// plane's) the one worker that carries the traffic gets the whole rate, not half.
    #[test]
    fn rate_is_split_between_shares_not_contexts() {
        let mm = MeterModReq {
            command: MeterModCommand::Add,
            flags: MeterFlags::PKTPS,
            meter_id: 1,
            bands: vec![Some(Band {
                kind: BandKind::Drop,
                rate: 100,
                burst: 0,
            })],
        };
        for (shares, want) in [(1, 1000), (2, 500)] {
            let mut t = MeterTable::new(2, shares);
            t.apply(&mm, Duration::ZERO).unwrap();
            let c = t.compile();
            // 10 s at 200 packets/s through a 100 packets/s meter.
            let n = passed(&c, 2000, 200);
            assert!(
                n.abs_diff(want) <= 20,
                "{shares} shares: {n} passed, want ~{want}"
            );
        }
    }
}
