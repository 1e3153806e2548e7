use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::{is_group, Mac};

/// Slots probed from a key's home slot before the table counts as full for it.
const PROBE: usize = 8;
const USED: u64 = 1 << 63;

/// A learned address, as the control plane lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacEntry {
    pub vlan: u16,
    pub mac: Mac,
    pub port: u32,
    /// Seconds since the address was last seen.
    pub age: u32,
}

/// What [`MacTable::learn`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learn {
    /// Known on this port and seen recently: nothing written.
    Known,
    /// Known on this port; its last-seen time was refreshed.
    Refreshed,
    /// A new address.
    Learned,
    /// The address moved from another port.
    Moved { from: u32 },
    /// No free slot near the address's home: it stays unknown (frames to it flood).
    Full,
    /// A group address: never learned.
    Ignored,
}

/// A slot's key and value side by side, 16-byte aligned: a lookup or a learn touches one
/// cache line per slot probed instead of one in a key array and one in a value array.
#[repr(C, align(16))]
struct Slot {
    key: AtomicU64,
    value: AtomicU64,
}

/// A fixed-size open-addressing table of (VLAN, MAC) -> port, shared without
/// locks. A slot's `key` word holds USED | vlan << 48 | mac; its `value` word
/// holds the port (low 32 bits) and the last-seen second (high 32 bits) .
///
/// Writers claim a slot with a compare-and-swap on `key`, then store `value`.
/// A reader that catches a slot between the two, or a value written for a
/// slot's previous key, sees a stale port: the frame goes to a port that
/// recently had the address or floods, exactly as when learning had not
/// happened yet. The value therefore carries a check of the key it was written
/// for (8 bits of the key's hash in the port field's top byte).
pub struct MacTable {
    slots: Box<[Slot]>,
    mask: usize,
    aging: u32,
}

impl std::fmt::Debug for MacTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MacTable")
            .field("capacity", &self.slots.len())
            .field("aging", &self.aging)
            .finish()
    }
}

#[inline]
fn key_of(vlan: u16, mac: Mac) -> u64 {
    USED | (u64::from(vlan & 0xfff) << 48) | (mac & 0xffff_ffff_ffff)
}

#[inline]
fn hash(key: u64) -> u64 {
    // A multiplicative hash: the table is power-of-two sized, so take the high bits.
    key.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

#[inline]
fn check_of(key: u64) -> u32 {
    ((hash(key) >> 24) as u32 & 0xff) << 24
}

#[inline]
fn pack(port: u32, key: u64, now: u32) -> u64 {
    (u64::from(now) << 32) | u64::from((port & 0x00ff_ffff) | check_of(key))
}

impl MacTable {
    /// A table for about `capacity` addresses (rounded up to a power of two)
    /// that forgets an address `aging` seconds after it was last seen.
    /// Port numbers are stored in 24 bits.
    pub fn new(capacity: usize, aging: u32) -> MacTable {
        let size = capacity.max(PROBE).next_power_of_two();
        MacTable {
            slots: (0..size)
                .map(|_| Slot {
                    key: AtomicU64::new(0),
                    value: AtomicU64::new(0),
                })
                .collect(),
            mask: size - 1,
            aging,
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub fn aging(&self) -> u32 {
        self.aging
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        (hash(key) >> 32) as usize & self.mask
    }

    #[inline]
    fn live(&self, value: u64, now: u32) -> bool {
        now.wrapping_sub((value >> 32) as u32) <= self.aging
    }

    /// The port that `mac` was last seen on in `vlan`, if within the aging time.
    #[inline]
    pub fn lookup(&self, vlan: u16, mac: Mac, now: u32) -> Option<u32> {
        let key = key_of(vlan, mac);
        let home = self.home(key);
        for i in 0..PROBE {
            let slot = (home + i) & self.mask;
            let k = self.slots[slot].key.load(Relaxed);
            if k == key {
                let v = self.slots[slot].value.load(Relaxed);
                let port = v as u32;
                return (port & 0xff00_0000 == check_of(key) && self.live(v, now))
                    .then_some(port & 0x00ff_ffff);
            }
            if k == 0 {
                return None;
            }
        }
        None
    }

    /// Records that `mac` in `vlan` was seen on `port` at second `now`.
    #[inline]
    pub fn learn(&self, vlan: u16, mac: Mac, port: u32, now: u32) -> Learn {
        if is_group(mac) {
            return Learn::Ignored;
        }
        let key = key_of(vlan, mac);
        let home = self.home(key);
        let mut reusable = None;
        for i in 0..PROBE {
            let slot = (home + i) & self.mask;
            let k = self.slots[slot].key.load(Relaxed);
            if k == key {
                let v = self.slots[slot].value.load(Relaxed);
                let old = (v as u32) & 0x00ff_ffff;
                let valid = (v as u32) & 0xff00_0000 == check_of(key) && self.live(v, now);
                if valid && old == port {
                    if (v >> 32) as u32 == now {
                        return Learn::Known;
                    }
                    self.slots[slot].value.store(pack(port, key, now), Relaxed);
                    return Learn::Refreshed;
                }
                self.slots[slot].value.store(pack(port, key, now), Relaxed);
                return if valid {
                    Learn::Moved { from: old }
                } else {
                    Learn::Learned
                };
            }
            if k == 0 {
                reusable.get_or_insert((slot, 0));
                break;
            }
            if reusable.is_none() && !self.live(self.slots[slot].value.load(Relaxed), now) {
                reusable = Some((slot, k));
            }
        }
        let Some((slot, seen)) = reusable else {
            return Learn::Full;
        };
        // Another worker may claim the same slot at the same moment: the loser
        // just does not learn this time; the next frame will.
        if self.slots[slot]
            .key
            .compare_exchange(seen, key, Relaxed, Relaxed)
            .is_err()
        {
            return Learn::Full;
        }
        self.slots[slot].value.store(pack(port, key, now), Relaxed);
        Learn::Learned
    }

    /// Forgets every address learned on `port` (the port went away).
    pub fn flush_port(&self, port: u32) {
        for Slot { key: k, value: v } in self.slots.iter() {
            if k.load(Relaxed) != 0 && (v.load(Relaxed) as u32) & 0x00ff_ffff == port {
                // Expire rather than empty the slot: emptying would cut the probe
                // chains of keys stored after it.
                v.store(0, Relaxed);
            }
        }
    }

    /// Every live entry (for the control plane; walks the whole table).
    pub fn entries(&self, now: u32) -> Vec<MacEntry> {
        self.slots
            .iter()
            .filter_map(|Slot { key: k, value: v }| {
                let (k, v) = (k.load(Relaxed), v.load(Relaxed));
                (k != 0 && (v as u32) & 0xff00_0000 == check_of(k) && self.live(v, now)).then(
                    || MacEntry {
                        vlan: ((k >> 48) & 0xfff) as u16,
                        mac: k & 0xffff_ffff_ffff,
                        port: (v as u32) & 0x00ff_ffff,
                        age: now.wrapping_sub((v >> 32) as u32),
                    },
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Arc;

    const A: Mac = 0x02_00_00_00_00_01;
    const B: Mac = 0x02_00_00_00_00_02;

    #[test]
    fn learn_lookup_move_age() {
        let t = MacTable::new(64, 300);
        assert_eq!(t.lookup(0, A, 10), None);
        assert_eq!(t.learn(0, A, 1, 10), Learn::Learned);
        assert_eq!(t.learn(0, A, 1, 10), Learn::Known);
        assert_eq!(t.learn(0, A, 1, 11), Learn::Refreshed);
        assert_eq!(t.lookup(0, A, 11), Some(1));
        // VLANs are separate address spaces.
        assert_eq!(t.lookup(5, A, 11), None);
        assert_eq!(t.learn(0, A, 2, 12), Learn::Moved { from: 1 });
        assert_eq!(t.lookup(0, A, 12), Some(2));
        assert_eq!(t.lookup(0, A, 12 + 300), Some(2));
        assert_eq!(t.lookup(0, A, 12 + 301), None, "aged out");
        assert_eq!(t.learn(0, A, 3, 12 + 301), Learn::Learned);
    }

    #[test]
    fn group_addresses_are_not_learned() {
        let t = MacTable::new(64, 300);
        assert_eq!(t.learn(0, 0xff_ff_ff_ff_ff_ff, 1, 0), Learn::Ignored);
        assert_eq!(t.learn(0, 0x01_00_5e_00_00_01, 1, 0), Learn::Ignored);
        assert_eq!(t.lookup(0, 0xff_ff_ff_ff_ff_ff, 0), None);
    }

    #[test]
    fn flush_port_forgets_only_that_port() {
        let t = MacTable::new(64, 300);
        t.learn(0, A, 1, 0);
        t.learn(0, B, 2, 0);
        t.flush_port(1);
        assert_eq!(t.lookup(0, A, 0), None);
        assert_eq!(t.lookup(0, B, 0), Some(2));
        assert_eq!(t.entries(0).len(), 1);
    }

    #[test]
    fn full_neighbourhood_reports_full_and_reuses_expired() {
        let t = MacTable::new(8, 10);
        let mut learned = 0;
        for i in 0..64u64 {
            if t.learn(0, 0x0200_0000_0000 + i, 1, 0) == Learn::Learned {
                learned += 1;
            }
        }
        assert_eq!(learned, 8);
        assert_eq!(t.learn(0, 0x0200_0000_1000, 1, 0), Learn::Full);
        // After aging, slots are reused.
        assert_eq!(t.learn(0, 0x0200_0000_1000, 1, 11), Learn::Learned);
        assert_eq!(t.lookup(0, 0x0200_0000_1000, 11), Some(1));
    }

    #[test]
    fn concurrent_learners_never_return_a_port_nobody_wrote() {
        let t = Arc::new(MacTable::new(1024, 300));
        let threads: Vec<_> = (0..4u32)
            .map(|w| {
                let t = Arc::clone(&t);
                std::thread::spawn(move || {
                    for round in 0..2000u32 {
                        for m in 0..200u64 {
                            // Each MAC only ever lives on ports 100+m or 200+m.
                            let port = if (round + w) % 2 == 0 {
                                100 + m as u32
                            } else {
                                200 + m as u32
                            };
                            t.learn(0, 0x0200_0000_0000 + m, port, round / 100);
                            if let Some(p) = t.lookup(0, 0x0200_0000_0000 + m, round / 100) {
                                assert!(
                                    p == 100 + m as u32 || p == 200 + m as u32,
                                    "mac {m} on port {p}"
                                );
                            }
                        }
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().unwrap();
        }
        let entries = t.entries(20);
        let by_mac: HashMap<_, _> = entries.iter().map(|e| (e.mac, e.port)).collect();
        assert_eq!(by_mac.len(), 200);
    }

    proptest::proptest! {
        /// Against a HashMap model (one writer, no aging): the table answers as
        /// the model does for every address it could store.
        #[test]
        fn matches_a_map(ops in proptest::collection::vec((0u16..3, 0u64..40, 1u32..5), 1..300)) {
            let t = MacTable::new(256, 1000);
            let mut model = HashMap::new();
            for (vlan, m, port) in ops {
                let mac = 0x0200_0000_0000 + m;
                let r = t.learn(vlan, mac, port, 0);
                proptest::prop_assert_ne!(r, Learn::Full);
                model.insert((vlan, mac), port);
            }
            for ((vlan, mac), port) in &model {
                proptest::prop_assert_eq!(t.lookup(*vlan, *mac, 0), Some(*port));
            }
            proptest::prop_assert_eq!(t.entries(0).len(), model.len());
        }
    }
}
