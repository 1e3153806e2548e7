//! Every entry matches in_port exactly or nothing at all (the first table of a
//! port-to-port pipeline, the A scenario): the answer for each port is known when
//! compiling, so a lookup is one indexed load, with no compare, hash or scan.

use super::RuleSpec;
use crate::flow::Words;
use packet::{Field, FieldPos};

/// Ports up to this number get an array slot; a table naming a higher port (OFPP_LOCAL,
/// large port numbers) is not built this way. Bounds the array to 16 KB.
pub const PORT_DIRECT_MAX: u32 = 4096;

/// Marks "no entry" in [`PortDirect::slots`].
const NONE: u32 = u32::MAX;

#[derive(Debug)]
pub struct PortDirect {
    /// The answer for in_port `p` at `slots[p]` ([`NONE`]: no entry matches).
    slots: Box<[u32]>,
    /// The answer for ports past `slots`: the best wildcard-all entry, or [`NONE`].
    other: u32,
    pos: FieldPos,
}

impl PortDirect {
    /// `None` unless every entry matches exactly in_port (and nothing else) or nothing,
    /// at least one matches in_port, and no port named is above [`PORT_DIRECT_MAX`].
    pub fn try_build(rules: &[RuleSpec<'_>]) -> Option<PortDirect> {
        let pos = Field::InPort.pos();
        let w = usize::from(pos.word);
        let port_mask = ((1u64 << pos.bits) - 1) << pos.shift;
        let mut other: Option<(u32, u64)> = None;
        let mut by_port: Vec<(u32, u32, u64)> = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            let others_zero = r.mask.iter().enumerate().all(|(j, &m)| j == w || m == 0);
            if !others_zero {
                return None;
            }
            match r.mask[w] {
                0 => {
                    if other.is_none_or(|(_, rank)| r.rank > rank) {
                        other = Some((i as u32, r.rank));
                    }
                }
                m if m == port_mask => {
                    let port = (r.value[w] >> pos.shift) as u32;
                    if port > PORT_DIRECT_MAX {
                        return None;
                    }
                    by_port.push((port, i as u32, r.rank));
                }
                _ => return None,
            }
        }
        let max_port = by_port.iter().map(|b| b.0).max()?;
        let mut best: Vec<Option<(u32, u64)>> = vec![other; max_port as usize + 1];
        for (port, slot, rank) in by_port {
            let b = &mut best[port as usize];
            if b.is_none_or(|(_, r)| rank > r) {
                *b = Some((slot, rank));
            }
        }
        Some(PortDirect {
            slots: best.iter().map(|b| b.map_or(NONE, |b| b.0)).collect(),
            other: other.map_or(NONE, |o| o.0),
            pos,
        })
    }

    #[inline(always)]
    pub fn lookup(&self, key: &Words) -> Option<u32> {
        let w = key[usize::from(self.pos.word) % key.len()];
        let port = (w >> self.pos.shift) as u32 as usize;
        let s = self.slots.get(port).copied().unwrap_or(self.other);
        (s != NONE).then_some(s)
    }
}
