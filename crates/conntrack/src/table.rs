//! The tracker shard: a fixed-capacity entry array, an open-addressing index holding both
//! directions of every connection, and a clock-hand sweep for expiry.

use crate::nat::{NatKind, NatRange};
use crate::packet::{Packet, Quoted, L4, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use crate::tcp::{self, Outcome, Tcp, TcpState, Timeout};
use crate::{Addr, Config, Error};

/// One direction of a connection. For ICMP queries (echo...), `sport` is the identifier
/// and `dport` is the request's type times 2, plus 1 for the request itself (so a request
/// in the reply direction is a different connection, as in Linux).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Tuple {
    pub src: Addr,
    pub dst: Addr,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub v6: bool,
    pub zone: u16,
}

impl Tuple {
    /// The tuple of the other direction (before any NAT).
    pub fn invert(&self) -> Tuple {
        let is_icmp = self.proto == PROTO_ICMP || self.proto == PROTO_ICMPV6;
        let (sport, dport) = if is_icmp {
            (self.sport, self.dport ^ 1)
        } else {
            (self.dport, self.sport)
        };
        Tuple {
            src: self.dst,
            dst: self.src,
            sport,
            dport,
            ..*self
        }
    }

    fn has_ports(&self) -> bool {
        self.proto == PROTO_TCP || self.proto == PROTO_UDP
    }

    /// An ICMP query's tuple (`sport` is its identifier).
    fn is_icmp(&self) -> bool {
        self.proto == PROTO_ICMP || self.proto == PROTO_ICMPV6
    }
}

/// `ct_state` bits, with Open vSwitch's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CtState(pub u8);

impl CtState {
    pub const NEW: u8 = 0x01;
    pub const ESTABLISHED: u8 = 0x02;
    pub const RELATED: u8 = 0x04;
    pub const REPLY: u8 = 0x08;
    pub const INVALID: u8 = 0x10;
    pub const TRACKED: u8 = 0x20;
    pub const SNAT: u8 = 0x40;
    pub const DNAT: u8 = 0x80;

    pub fn has(self, bits: u8) -> bool {
        self.0 & bits == bits
    }

    /// The Linux `ct state` word for this verdict (what the kernel differential compares).
    pub fn linux_name(self) -> &'static str {
        if self.has(Self::INVALID) {
            "invalid"
        } else if self.has(Self::RELATED) {
            "related"
        } else if self.has(Self::ESTABLISHED) {
            "established"
        } else if self.has(Self::NEW) {
            "new"
        } else {
            "untracked"
        }
    }
}

impl std::fmt::Display for CtState {
    /// As `ovs-ofctl` prints `ct_state`: `+trk+new` ...
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (bit, name) in [
            (Self::NEW, "new"),
            (Self::ESTABLISHED, "est"),
            (Self::RELATED, "rel"),
            (Self::REPLY, "rpl"),
            (Self::INVALID, "inv"),
            (Self::TRACKED, "trk"),
            (Self::SNAT, "snat"),
            (Self::DNAT, "dnat"),
        ] {
            if self.0 & bit != 0 {
                write!(f, "+{name}")?;
            }
        }
        Ok(())
    }
}

/// Header edits NAT makes to this packet: new (address, port) for the source and/or the
/// destination. Ports are 0 and untouched for protocols without ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Rewrite {
    pub src: Option<(Addr, u16)>,
    pub dst: Option<(Addr, u16)>,
    /// For an ICMP error about a NATed connection: the new source and destination of the
    /// packet it quotes (translated back like the connection's other direction).
    pub quoted_src: Option<(Addr, u16)>,
    pub quoted_dst: Option<(Addr, u16)>,
    /// For an ICMP error quoting an ICMP query whose identifier a DNAT moved: the
    /// identifier the quoted packet had before (or gets after) the translation, so the
    /// client sees its own ping quoted.
    pub quoted_id: Option<u16>,
    /// For an ICMP query (echo...): the identifier to write, when a DNAT moved it so that
    /// the reply reaches the shard owning the connection (the reply direction gets the
    /// client's back), as a TCP/UDP source port is moved.
    pub id: Option<u16>,
}

/// The result of tracking one packet: what the `ct_*` match fields see afterwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CtResult {
    pub state: CtState,
    pub zone: u16,
    pub mark: u32,
    pub label: u128,
    /// The connection's original-direction tuple (`ct_nw_src`, `ct_tp_dst`, ...), when the
    /// packet belongs to a connection (committed or about to be).
    pub orig: Option<Tuple>,
    /// Edits to make when the action asked for `nat`.
    pub rewrite: Rewrite,
}

/// What `ct(...)` asks of the tracker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct TrackOptions {
    pub zone: u16,
    /// Store a new connection (and apply `set_mark`/`set_label`).
    pub commit: bool,
    /// `nat`: rewrite packets of NATed connections.
    pub nat: bool,
    /// `nat(src|dst=...)`: the translation set up when a new connection is committed.
    pub nat_range: Option<NatRange>,
    /// `(value, mask)` written to the connection's mark on commit.
    pub set_mark: Option<(u32, u32)>,
    pub set_label: Option<(u128, u128)>,
}

/// Counters of a shard (summed over shards by the control plane).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Stats {
    /// Connections in the table now.
    pub entries: u64,
    pub packets: u64,
    /// Connections committed.
    pub committed: u64,
    /// Packets found `+inv` (bad headers, out of window, invalid state changes...).
    pub invalid: u64,
    /// Of which: the packet could not be parsed.
    pub malformed: u64,
    /// New connections refused because the table was full.
    pub table_full: u64,
    /// New connections refused because no NAT translation was free.
    pub nat_exhausted: u64,
    /// New connections refused because their reply tuple belonged to another connection.
    pub collisions: u64,
    /// Connections removed by expiry (lazily on lookup or by the sweep).
    pub expired: u64,
    /// ICMP errors found related to a connection.
    pub related: u64,
    /// Packets tracked on a shard that does not own their connection ([`shard_of`]): with
    /// several workers, their addresses or ports were rewritten before `ct` (the datapath
    /// chose the worker by the packet as it arrived). Such a connection may be tracked
    /// apart in two shards; 0 with one worker.
    pub foreign: u64,
    /// Connections committed with a DNAT that also translated their source port, so that
    /// the reply hashes to this shard (or because the reply tuple was taken): see
    /// [`crate::nat::remap_source_ports`]. With W workers about (W-1)/W of the
    /// connections of a DNAT to one address and port.
    pub nat_source_remapped: u64,
}

/// Counters of one zone (what the per-zone metrics show). A shard keeps them for up to
/// [`MAX_ZONES`] zones; events of further zones are counted under zone `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ZoneStats {
    pub zone: Option<u16>,
    /// Connections in the table now.
    pub entries: u64,
    pub committed: u64,
    pub invalid: u64,
    pub table_full: u64,
}

/// Zones a shard counts separately (a fixed table allocated with the shard).
pub const MAX_ZONES: usize = 1024;
const ZONE_SLOTS: usize = MAX_ZONES * 2;

/// A connection as `ferroflowctl conntrack dump` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    pub orig: Tuple,
    pub reply: Tuple,
    pub tcp_state: Option<TcpState>,
    pub mark: u32,
    pub label: u128,
    pub expires_in_ms: u64,
    pub seen_reply: bool,
    pub assured: bool,
    pub snat: bool,
    pub dnat: bool,
}

const E_IN_USE: u8 = 0x01;
const E_SEEN_REPLY: u8 = 0x02;
const E_ASSURED: u8 = 0x04;
const E_SNAT: u8 = 0x08;
const E_DNAT: u8 = 0x10;

#[derive(Clone, Copy, Debug)]
struct Entry {
    tuples: [Tuple; 2],
    /// The index hashes of `tuples` (kept so that removing a connection hashes nothing).
    hashes: [u32; 2],
    expires: u64,
    tcp: Option<Tcp>,
    mark: u32,
    label: u128,
    flags: u8,
    next_free: u32,
}

const NIL: u32 = u32::MAX;

/// The longest IP packet (from its IP header on) [`Tracker::track_ip`] remembers.
const MEMO_BYTES: usize = 256;

/// The last IP packet [`Tracker::track_ip`] found new, kept whole, and the lookup made for
/// it. A pipeline's second `ct` on a packet (`ct(table=1)`, then `ct(commit)` in table 1)
/// sees the same bytes and skips the parse and the hash probe, as Open vSwitch keeps the
/// connection it found in the packet's metadata. A hit is the same input byte for byte
/// (and the lookup is reused only while the index is unchanged and for the same zone), so
/// every verdict and counter is what a fresh parse and lookup would give.
struct Memo {
    /// Bytes remembered; 0: none.
    len: usize,
    bytes: [u8; MEMO_BYTES],
    pkt: Packet,
    lookup: Option<MemoLookup>,
}

#[derive(Clone, Copy)]
struct MemoLookup {
    zone: u16,
    /// [`Tracker::index_epoch`] when the lookup was made.
    epoch: u64,
    /// The tuple's index hash (what a commit inserts it with).
    hash: u32,
    found: Option<(usize, usize)>,
}

/// One shard of the connection table. See the crate documentation.
pub struct Tracker {
    cfg: Config,
    entries: Vec<Entry>,
    free: u32,
    /// Open addressing, linear probing, backward-shift deletion: `(hash << 32) | ref + 1`
    /// where ref = entry index * 2 + direction; 0 is empty. At most half full.
    index: Vec<u64>,
    mask: usize,
    seed: u64,
    hand: usize,
    stats: Stats,
    /// Open addressing by zone, never deleted; `zones_used` of them are taken.
    zones: Vec<ZoneStats>,
    zones_used: usize,
    zone_overflow: ZoneStats,
    /// Counts changes of the index (inserts and removals): a lookup in `memo` holds while
    /// it has not moved.
    index_epoch: u64,
    memo: Box<Memo>,
    /// The result of the last packet tracked, written in place by every path (a
    /// `CtResult` is 240 bytes: returning one by value through the call chain cost a copy
    /// at every level); [`Tracker::track_ip_ref`] lends it to the caller.
    out: CtResult,
    /// `out.rewrite` may hold edits (else it is known to be empty).
    out_rewritten: bool,
}

impl Tracker {
    /// Allocates everything the shard will ever use.
    pub fn new(cfg: Config) -> Result<Tracker, Error> {
        if cfg.capacity == 0 || cfg.capacity > 1 << 26 {
            return Err(Error::Capacity(cfg.capacity));
        }
        if cfg.shards == 0 || cfg.shard >= cfg.shards {
            return Err(Error::Shard {
                index: cfg.shard,
                count: cfg.shards,
            });
        }
        let slots = (cfg.capacity * 4).next_power_of_two();
        let blank = Entry {
            tuples: [Tuple::default(); 2],
            hashes: [0; 2],
            expires: 0,
            tcp: None,
            mark: 0,
            label: 0,
            flags: 0,
            next_free: NIL,
        };
        let mut entries = vec![blank; cfg.capacity];
        for (i, e) in entries.iter_mut().enumerate() {
            e.next_free = if i + 1 < cfg.capacity {
                i as u32 + 1
            } else {
                NIL
            };
        }
        let seed = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(cfg.shard);
            h.finish() | 1
        };
        Ok(Tracker {
            cfg,
            entries,
            free: 0,
            index: vec![0; slots],
            mask: slots - 1,
            seed,
            hand: 0,
            stats: Stats::default(),
            zones: vec![ZoneStats::default(); ZONE_SLOTS],
            zones_used: 0,
            zone_overflow: ZoneStats::default(),
            index_epoch: 0,
            memo: Box::new(Memo {
                len: 0,
                bytes: [0; MEMO_BYTES],
                pkt: Packet {
                    v6: false,
                    src: 0,
                    dst: 0,
                    proto: 0,
                    l4: L4::Other,
                },
                lookup: None,
            }),
            out: CtResult::default(),
            out_rewritten: false,
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Per-zone counters of the zones seen (and, last, the overflow bucket if used).
    pub fn zone_stats(&self) -> impl Iterator<Item = ZoneStats> + '_ {
        let overflow = self.zone_overflow;
        self.zones
            .iter()
            .filter(|z| z.zone.is_some())
            .copied()
            .chain((overflow != ZoneStats::default()).then_some(overflow))
    }

    fn zone(&mut self, zone: u16) -> &mut ZoneStats {
        let mut i = (usize::from(zone).wrapping_mul(0x9e37)) & (ZONE_SLOTS - 1);
        loop {
            match self.zones[i].zone {
                Some(z) if z == zone => return &mut self.zones[i],
                None if self.zones_used < MAX_ZONES => {
                    self.zones_used += 1;
                    self.zones[i].zone = Some(zone);
                    return &mut self.zones[i];
                }
                None => return &mut self.zone_overflow,
                Some(_) => i = (i + 1) & (ZONE_SLOTS - 1),
            }
        }
    }

    /// Parses an IP packet and tracks it; a packet that does not parse is `+trk+inv`.
    /// The same bytes as the last packet found new (a pipeline's second `ct` on a packet,
    /// its `ct(commit)`) are not parsed again, and their lookup is reused (see [`Memo`]).
    pub fn track_ip(&mut self, l3: &[u8], o: &TrackOptions, now_ms: u64) -> CtResult {
        *self.track_ip_ref(l3, o, now_ms)
    }

    /// [`Tracker::track_ip`] without the copy of its result: the datapath reads the fields
    /// it needs from the tracker's own (valid until the next call).
    pub fn track_ip_ref(&mut self, l3: &[u8], o: &TrackOptions, now_ms: u64) -> &CtResult {
        let m = &mut *self.memo;
        // Bytes 8 to 15 (IPv4's TTL, protocol, checksum and source; IPv6's source) tell
        // most other packets apart before the whole comparison.
        if m.len != 0
            && m.len == l3.len()
            && l3.get(8..16) == Some(&m.bytes[8..16])
            && m.bytes[..m.len] == *l3
        {
            let pkt = m.pkt;
            // The usual second `ct`: the lookup still holds (same zone, index unchanged)
            // and found a live connection, so the packet goes straight to its state update,
            // as `track_packet` would take it (a packet kept here passed its other checks:
            // it was found new).
            if let Some(MemoLookup {
                zone,
                epoch,
                found: Some((idx, dir)),
                ..
            }) = m.lookup
            {
                if zone == o.zone && epoch == self.index_epoch && self.entries[idx].expires > now_ms
                {
                    self.stats.packets += 1;
                    if self.cfg.shards > 1 && shard_of(&pkt, self.cfg.shards) != self.cfg.shard {
                        self.stats.foreign += 1;
                    }
                    self.existing(idx, dir, &pkt, o, now_ms);
                    return &self.out;
                }
            }
            self.track_packet(&pkt, o, now_ms, true);
            return &self.out;
        }
        match crate::parse_ip(l3, self.cfg.verify_checksums) {
            Ok(p) => {
                let fits = l3.len() <= MEMO_BYTES;
                if fits {
                    // The lookup `track_packet` records is this packet's.
                    m.len = 0;
                    m.lookup = None;
                }
                self.track_packet(&p, o, now_ms, fits);
                // Kept only when a later `ct` is likely to see the packet again: found new
                // (a firewall's `ct(commit)` follows). Established packets, most of the
                // traffic, skip the copy.
                if fits && self.out.state.has(CtState::NEW) {
                    let m = &mut *self.memo;
                    m.bytes[..l3.len()].copy_from_slice(l3);
                    m.len = l3.len();
                    m.pkt = p;
                }
            }
            Err(_) => {
                self.stats.packets += 1;
                self.stats.malformed += 1;
                self.invalid(o.zone)
            }
        }
        &self.out
    }

    /// Tracks one packet at time `now_ms` (a monotonic clock in milliseconds).
    pub fn track(&mut self, pkt: &Packet, o: &TrackOptions, now_ms: u64) -> CtResult {
        self.track_packet(pkt, o, now_ms, false);
        self.out
    }

    /// `memo`: `pkt` is the one in [`Memo`], whose lookup may be reused and is recorded.
    #[inline]
    fn track_packet(&mut self, pkt: &Packet, o: &TrackOptions, now_ms: u64, memo: bool) {
        self.stats.packets += 1;
        // The datapath hands every packet to the worker of its connection's shard by the
        // packet as it arrived; a pipeline that rewrites addresses or ports before `ct`
        // can still bring it to another shard: tracked here all the same, and counted.
        if self.cfg.shards > 1 && shard_of(pkt, self.cfg.shards) != self.cfg.shard {
            self.stats.foreign += 1;
        }
        if let L4::IcmpError { quoted, .. } = pkt.l4 {
            return self.related(pkt, &quoted, o, now_ms);
        }
        let Some(t) = packet_tuple(pkt, o.zone) else {
            return self.invalid(o.zone);
        };
        if let L4::Tcp(seg) = &pkt.l4 {
            if !tcp::valid_flags(seg.flags) {
                return self.invalid(o.zone);
            }
        }
        let (found, h) = if memo {
            self.memo_lookup(&t, now_ms)
        } else {
            let h = self.hash(&t);
            (self.lookup_hashed(&t, h, now_ms), h)
        };
        match found {
            Some((idx, dir)) => self.existing(idx, dir, pkt, o, now_ms),
            None => self.new_conn(t, h, pkt, o, now_ms),
        }
    }

    fn invalid(&mut self, zone: u16) {
        self.stats.invalid += 1;
        self.zone(zone).invalid += 1;
        self.out = CtResult {
            state: CtState(CtState::TRACKED | CtState::INVALID),
            zone,
            ..CtResult::default()
        };
    }

    /// Writes the result for a packet of connection `idx` in direction `dir` into `out`,
    /// field by field.
    fn result(&mut self, idx: usize, dir: usize, state: u8, o: &TrackOptions) {
        let e = &self.entries[idx];
        let mut state = CtState::TRACKED | state;
        if e.flags & E_SNAT != 0 {
            state |= CtState::SNAT;
        }
        if e.flags & E_DNAT != 0 {
            state |= CtState::DNAT;
        }
        let out = &mut self.out;
        if o.nat && e.flags & (E_SNAT | E_DNAT) != 0 {
            let mut rewrite = Rewrite::default();
            let cur = e.tuples[dir];
            let want = e.tuples[1 - dir].invert();
            let ports = cur.has_ports();
            if want.src != cur.src || want.sport != cur.sport {
                rewrite.src = Some((want.src, if ports { want.sport } else { 0 }));
            }
            if want.dst != cur.dst || want.dport != cur.dport {
                rewrite.dst = Some((want.dst, if ports { want.dport } else { 0 }));
            }
            if cur.is_icmp() && want.sport != cur.sport {
                rewrite.id = Some(want.sport);
            }
            out.rewrite = rewrite;
            self.out_rewritten = true;
        } else if self.out_rewritten {
            // Most results have no edits: the 128 bytes are cleared only after some did.
            out.rewrite = Rewrite::default();
            self.out_rewritten = false;
        }
        out.state = CtState(state);
        out.zone = e.tuples[0].zone;
        out.mark = e.mark;
        out.label = e.label;
        out.orig = Some(e.tuples[0]);
    }

    fn apply_commit(&mut self, idx: usize, o: &TrackOptions) {
        let e = &mut self.entries[idx];
        if let Some((v, m)) = o.set_mark {
            e.mark = (e.mark & !m) | (v & m);
        }
        if let Some((v, m)) = o.set_label {
            e.label = (e.label & !m) | (v & m);
        }
    }

    fn existing(&mut self, idx: usize, dir: usize, pkt: &Packet, o: &TrackOptions, now: u64) {
        let timeouts = self.cfg.timeouts;
        let liberal = self.cfg.tcp_be_liberal;
        let e = &mut self.entries[idx];
        let seen_reply = e.flags & E_SEEN_REPLY != 0;
        let verdict = if dir == 1 {
            CtState::ESTABLISHED | CtState::REPLY
        } else if seen_reply {
            CtState::ESTABLISHED
        } else {
            CtState::NEW
        };
        let mut kill = false;
        match (&mut e.tcp, &pkt.l4) {
            (Some(tcp), L4::Tcp(seg)) => {
                let old = tcp.state;
                let assured = e.flags & E_ASSURED != 0;
                match tcp.packet(seg, dir, seen_reply, assured, liberal, &timeouts.tcp) {
                    Outcome::Invalid => return self.invalid(o.zone),
                    Outcome::Reopen => {
                        self.remove(idx);
                        let t = packet_tuple(pkt, o.zone).expect("a TCP packet has a tuple");
                        let h = self.hash(&t);
                        return self.new_conn(t, h, pkt, o, now);
                    }
                    Outcome::Ignore => {
                        if o.commit {
                            self.apply_commit(idx, o);
                        }
                        return self.result(idx, dir, verdict, o);
                    }
                    Outcome::Accept(t) => {
                        match t {
                            Timeout::Ms(ms) => e.expires = now.saturating_add(ms),
                            Timeout::Keep => {}
                            Timeout::Kill => kill = true,
                        }
                        if seen_reply && Tcp::assures(old, tcp.state) {
                            e.flags |= E_ASSURED;
                        }
                    }
                }
            }
            (None, _) => {
                let ms = match pkt.l4 {
                    L4::Udp { .. } if seen_reply || dir == 1 => timeouts.udp_stream_ms,
                    L4::Udp { .. } => timeouts.udp_ms,
                    L4::IcmpEcho { .. } => timeouts.icmp_ms,
                    _ => timeouts.other_ms,
                };
                e.expires = now.saturating_add(ms);
            }
            (Some(_), _) => return self.invalid(o.zone),
        }
        if dir == 1 {
            e.flags |= E_SEEN_REPLY;
        }
        if o.commit {
            self.apply_commit(idx, o);
        }
        self.result(idx, dir, verdict, o);
        if kill {
            self.remove(idx);
        }
    }

    /// `h`: `t`'s index hash.
    fn new_conn(&mut self, t: Tuple, h: u32, pkt: &Packet, o: &TrackOptions, now: u64) {
        let tcp = match &pkt.l4 {
            L4::Tcp(seg) => match Tcp::new(seg, self.cfg.tcp_loose) {
                Some(t) => Some(t),
                None => return self.invalid(o.zone),
            },
            L4::IcmpEcho { request: false, .. } => return self.invalid(o.zone),
            _ => None,
        };
        if !o.commit {
            self.out = CtResult {
                state: CtState(CtState::TRACKED | CtState::NEW),
                zone: o.zone,
                orig: Some(t),
                ..CtResult::default()
            };
            return;
        }
        let Some(idx) = self.alloc(now) else {
            self.stats.table_full += 1;
            self.zone(o.zone).table_full += 1;
            return self.invalid(o.zone);
        };
        let mut reply = t.invert();
        let mut flags = E_IN_USE;
        let mut source_remapped = false;
        if let Some(range) = &o.nat_range {
            match self.pick_nat(&t, range) {
                Some(r) => {
                    // The reply's destination is the original source: moved only by
                    // DNAT's remap of the source port (SNAT moves it by its range), or
                    // for an ICMP query its identifier (`sport` both ways).
                    source_remapped = range.kind == NatKind::Dst
                        && if t.is_icmp() {
                            r.sport != t.sport
                        } else {
                            r.dport != t.sport
                        };
                    reply = r;
                    flags |= match range.kind {
                        NatKind::Src => E_SNAT,
                        NatKind::Dst => E_DNAT,
                    };
                }
                None => {
                    self.release(idx);
                    self.stats.nat_exhausted += 1;
                    return self.invalid(o.zone);
                }
            }
        }
        let reply_hash = self.hash(&reply);
        if o.nat_range.is_none() && self.find_hashed(&reply, reply_hash).is_some() {
            self.release(idx);
            self.stats.collisions += 1;
            return self.invalid(o.zone);
        }
        let ms = match pkt.l4 {
            L4::Udp { .. } => self.cfg.timeouts.udp_ms,
            L4::IcmpEcho { .. } => self.cfg.timeouts.icmp_ms,
            L4::Tcp(_) => self.cfg.timeouts.tcp.syn_sent_ms,
            _ => self.cfg.timeouts.other_ms,
        };
        self.entries[idx] = Entry {
            tuples: [t, reply],
            hashes: [h, reply_hash],
            expires: now.saturating_add(ms),
            tcp,
            mark: 0,
            label: 0,
            flags,
            next_free: NIL,
        };
        self.insert(idx, 0);
        self.insert(idx, 1);
        self.stats.entries += 1;
        self.stats.committed += 1;
        let z = self.zone(t.zone);
        z.entries += 1;
        z.committed += 1;
        if let L4::Tcp(seg) = &pkt.l4 {
            // As in Linux: the first segment also goes through the state machine.
            let liberal = self.cfg.tcp_be_liberal;
            let timeouts = self.cfg.timeouts.tcp;
            let e = &mut self.entries[idx];
            let tcp = e.tcp.as_mut().expect("set above");
            match tcp.packet(seg, 0, false, false, liberal, &timeouts) {
                Outcome::Accept(Timeout::Ms(ms)) => e.expires = now.saturating_add(ms),
                Outcome::Accept(_) | Outcome::Ignore => {}
                Outcome::Invalid | Outcome::Reopen => {
                    self.remove(idx);
                    self.stats.committed -= 1;
                    self.zone(t.zone).committed -= 1;
                    return self.invalid(o.zone);
                }
            }
        }
        if source_remapped {
            self.stats.nat_source_remapped += 1;
        }
        self.apply_commit(idx, o);
        self.result(idx, 0, CtState::NEW, o)
    }

    /// An ICMP error: related to the connection its quoted packet belongs to, as Linux's
    /// `nf_conntrack_inet_error` decides (the error must be addressed to the side that sent
    /// the quoted packet).
    fn related(&mut self, pkt: &Packet, q: &Quoted, o: &TrackOptions, now: u64) {
        let quoted_icmp = q.proto == PROTO_ICMP || q.proto == PROTO_ICMPV6;
        let quoted = Tuple {
            src: q.src,
            dst: q.dst,
            sport: q.sport,
            dport: if quoted_icmp {
                match crate::packet::icmp_query(pkt.v6, q.dport as u8) {
                    Some((query, request)) => icmp_dport(query, request),
                    None => return self.invalid(o.zone),
                }
            } else {
                q.dport
            },
            proto: q.proto,
            v6: pkt.v6,
            zone: o.zone,
        };
        let Some((idx, dir)) = self.lookup(&quoted.invert(), now) else {
            return self.invalid(o.zone);
        };
        if self.entries[idx].tuples[dir].dst != pkt.dst {
            return self.invalid(o.zone);
        }
        self.stats.related += 1;
        let rel = if dir == 1 {
            CtState::RELATED | CtState::REPLY
        } else {
            CtState::RELATED
        };
        self.result(idx, dir, rel, &TrackOptions { nat: false, ..*o });
        let e = &self.entries[idx];
        let r = &mut self.out;
        if o.nat && e.flags & (E_SNAT | E_DNAT) != 0 {
            self.out_rewritten = true;
            // The outer header goes where the connection's other direction says (only the
            // addresses that are the connection's own: a router may have sent the error);
            // the quoted packet, sent in the other direction, is translated back too.
            let (cur, other) = (e.tuples[dir], e.tuples[1 - dir]);
            if other.src != cur.dst {
                r.rewrite.dst = Some((other.src, 0));
            }
            if pkt.src == cur.src && other.dst != cur.src {
                r.rewrite.src = Some((other.dst, 0));
            }
            let q_now = cur.invert();
            let ports = cur.has_ports();
            // Without ports only the addresses move (an ICMP query's `sport` is its
            // identifier, `dport` its type: the identifier is translated on its own).
            let (osport, odport, qsport, qdport) = if ports {
                (other.sport, other.dport, q_now.sport, q_now.dport)
            } else {
                (0, 0, 0, 0)
            };
            if (other.src, osport) != (q_now.src, qsport) {
                r.rewrite.quoted_src = Some((other.src, osport));
            }
            if (other.dst, odport) != (q_now.dst, qdport) {
                r.rewrite.quoted_dst = Some((other.dst, odport));
            }
            if cur.is_icmp() && other.sport != q_now.sport {
                r.rewrite.quoted_id = Some(other.sport);
            }
        }
    }

    // Out of line: only a commit with `nat(...)` calls it, and inlined it grew the
    // per-packet path around it (CTr 2,170 -> 2,161 instructions per packet).
    #[inline(never)]
    fn pick_nat(&self, t: &Tuple, range: &NatRange) -> Option<Tuple> {
        if range.v6 != t.v6 {
            return None;
        }
        let n_addr = range.addr_count();
        let ports = t.has_ports();
        let orig_port = match range.kind {
            NatKind::Src => t.sport,
            NatKind::Dst => t.dport,
        };
        let h = hash_tuple(self.seed, t);
        let mut attempts = u64::from(self.cfg.nat_attempts);
        // First the range as given (protocols without ports: addresses only); then, for
        // SNAT without ports, any ephemeral port.
        let passes: [Option<(u16, u16)>; 2] = [
            Some(if ports {
                range.ports.unwrap_or((orig_port, orig_port))
            } else {
                (0, 0)
            }),
            (range.kind == NatKind::Src && range.ports.is_none() && ports).then_some((1024, 65535)),
        ];
        for (lo, hi) in passes.into_iter().flatten() {
            let n_port = u64::from(hi - lo) + 1;
            let total = n_addr.saturating_mul(n_port);
            let start = h % total;
            for k in 0..total.min(attempts) {
                attempts -= 1;
                let c = ((u128::from(start) + u128::from(k)) % u128::from(total)) as u64;
                let addr = range.addr_min + u128::from(c / n_port);
                let port = lo + (c % n_port) as u16;
                let mut reply = t.invert();
                match range.kind {
                    NatKind::Src => {
                        reply.dst = addr;
                        if ports {
                            reply.dport = port;
                        }
                    }
                    NatKind::Dst => {
                        reply.src = addr;
                        if ports {
                            reply.sport = port;
                        }
                    }
                }
                if self.find(&reply).is_none()
                    && (self.cfg.shards == 1
                        || shard_of_tuple(&reply, self.cfg.shards) == self.cfg.shard)
                {
                    return Some(reply);
                }
            }
        }
        // DNAT with no destination left that is free and keeps the owner: translate the
        // source port too (nat::remap_source_ports), so the reply hashes to this shard.
        if range.kind == NatKind::Dst && ports {
            let (lo, hi) = crate::nat::remap_source_ports(t.sport);
            let n_sport = u64::from(hi - lo) + 1;
            let n_dport = range.ports.map_or(1, |(lo, hi)| u64::from(hi - lo) + 1);
            let n_dst = n_addr.saturating_mul(n_dport);
            let start = h.rotate_left(32);
            for k in 0..n_sport.min(attempts) {
                let c = ((u128::from(h) + u128::from(k)) % u128::from(n_dst)) as u64;
                let mut reply = t.invert();
                reply.src = range.addr_min + u128::from(c / n_dport);
                reply.sport = range
                    .ports
                    .map_or(t.dport, |(p, _)| p + (c % n_dport) as u16);
                reply.dport = lo + ((start % n_sport + k) % n_sport) as u16;
                if self.find(&reply).is_none()
                    && (self.cfg.shards == 1
                        || shard_of_tuple(&reply, self.cfg.shards) == self.cfg.shard)
                {
                    return Some(reply);
                }
            }
        }
        // The same for an ICMP query (echo...): its identifier, which both directions
        // carry, moves instead of a source port (any of 0-65535, as Linux and Open vSwitch
        // pick one for ICMP NAT).
        if range.kind == NatKind::Dst && t.is_icmp() {
            let start = h.rotate_left(32);
            for k in 0..65_536u64.min(attempts) {
                let c = ((u128::from(h) + u128::from(k)) % u128::from(n_addr)) as u64;
                let mut reply = t.invert();
                reply.src = range.addr_min + u128::from(c);
                reply.sport = ((start % 65_536 + k) % 65_536) as u16;
                if self.find(&reply).is_none()
                    && (self.cfg.shards == 1
                        || shard_of_tuple(&reply, self.cfg.shards) == self.cfg.shard)
                {
                    return Some(reply);
                }
            }
        }
        None
    }

    /// Frees expired connections: looks at most at `expire_per_call` entries, so a call
    /// costs a bounded time; call it once per burst (idle bursts included). Returns how
    /// many were freed. Expired entries never match a packet even before the sweep
    /// reaches them (lookups check the time), so the sweep only reclaims space.
    pub fn expire(&mut self, now_ms: u64) -> usize {
        let mut freed = 0;
        for _ in 0..self.cfg.expire_per_call.min(self.entries.len()) {
            let i = self.hand;
            self.hand = if i + 1 == self.entries.len() {
                0
            } else {
                i + 1
            };
            let e = &self.entries[i];
            if e.flags & E_IN_USE != 0 && e.expires <= now_ms {
                self.remove(i);
                self.stats.expired += 1;
                freed += 1;
            }
        }
        freed
    }

    /// Removes every connection (of one zone); control-plane work, not bounded.
    pub fn flush(&mut self, zone: Option<u16>) -> usize {
        let mut n = 0;
        for i in 0..self.entries.len() {
            let e = &self.entries[i];
            if e.flags & E_IN_USE != 0 && zone.is_none_or(|z| z == e.tuples[0].zone) {
                self.remove(i);
                n += 1;
            }
        }
        n
    }

    /// The live connections (of one zone), for dumps.
    pub fn connections(
        &self,
        zone: Option<u16>,
        now_ms: u64,
    ) -> impl Iterator<Item = ConnInfo> + '_ {
        self.entries
            .iter()
            .filter(move |e| {
                e.flags & E_IN_USE != 0
                    && e.expires > now_ms
                    && zone.is_none_or(|z| z == e.tuples[0].zone)
            })
            .map(move |e| ConnInfo {
                orig: e.tuples[0],
                reply: e.tuples[1],
                tcp_state: e.tcp.map(|t| t.state),
                mark: e.mark,
                label: e.label,
                expires_in_ms: e.expires - now_ms,
                seen_reply: e.flags & E_SEEN_REPLY != 0,
                assured: e.flags & E_ASSURED != 0,
                snat: e.flags & E_SNAT != 0,
                dnat: e.flags & E_DNAT != 0,
            })
    }

    // ---- the table ----

    fn alloc(&mut self, now: u64) -> Option<usize> {
        if self.free == NIL {
            // Full: reclaim one expired entry if the sweep finds one within its budget.
            self.expire(now);
        }
        if self.free == NIL {
            return None;
        }
        let i = self.free as usize;
        self.free = self.entries[i].next_free;
        Some(i)
    }

    fn release(&mut self, i: usize) {
        self.entries[i].flags = 0;
        self.entries[i].next_free = self.free;
        self.free = i as u32;
    }

    fn remove(&mut self, i: usize) {
        self.unlink(i, 0);
        self.unlink(i, 1);
        self.release(i);
        self.stats.entries -= 1;
        let zone = self.entries[i].tuples[0].zone;
        self.zone(zone).entries -= 1;
    }

    /// [`Tracker::lookup`] of the memo's packet: the one made before if the index has not
    /// changed since (a connection found then is still at its place; it is checked for
    /// expiry again), else a new one, remembered.
    /// Returns it with the tuple's hash.
    fn memo_lookup(&mut self, t: &Tuple, now: u64) -> (Option<(usize, usize)>, u32) {
        if let Some(m) = self.memo.lookup {
            if m.zone == t.zone && m.epoch == self.index_epoch {
                let found = m
                    .found
                    .and_then(|(idx, dir)| self.unless_expired(idx, dir, now));
                return (found, m.hash);
            }
        }
        let h = self.hash(t);
        let found = self.lookup_hashed(t, h, now);
        self.memo.lookup = Some(MemoLookup {
            zone: t.zone,
            epoch: self.index_epoch,
            hash: h,
            found,
        });
        (found, h)
    }

    /// Finds a tuple; an expired connection found on the way is removed (and not returned).
    fn lookup(&mut self, t: &Tuple, now: u64) -> Option<(usize, usize)> {
        let h = self.hash(t);
        self.lookup_hashed(t, h, now)
    }

    fn lookup_hashed(&mut self, t: &Tuple, h: u32, now: u64) -> Option<(usize, usize)> {
        let (idx, dir) = self.find_hashed(t, h)?;
        self.unless_expired(idx, dir, now)
    }

    /// A tuple's hash in the index.
    #[inline]
    fn hash(&self, t: &Tuple) -> u32 {
        hash_tuple(self.seed, t) as u32
    }

    #[inline]
    fn unless_expired(&mut self, idx: usize, dir: usize, now: u64) -> Option<(usize, usize)> {
        if self.entries[idx].expires <= now {
            self.remove(idx);
            self.stats.expired += 1;
            return None;
        }
        Some((idx, dir))
    }

    fn find(&self, t: &Tuple) -> Option<(usize, usize)> {
        self.find_hashed(t, self.hash(t))
    }

    fn find_hashed(&self, t: &Tuple, h: u32) -> Option<(usize, usize)> {
        let mut i = h as usize & self.mask;
        loop {
            let s = self.index[i];
            if s == 0 {
                return None;
            }
            if (s >> 32) as u32 == h {
                let r = (s as u32 - 1) as usize;
                if self.entries[r >> 1].tuples[r & 1] == *t {
                    return Some((r >> 1, r & 1));
                }
            }
            i = (i + 1) & self.mask;
        }
    }

    fn insert(&mut self, idx: usize, dir: usize) {
        self.index_epoch += 1;
        let h = self.entries[idx].hashes[dir];
        let mut i = h as usize & self.mask;
        while self.index[i] != 0 {
            i = (i + 1) & self.mask;
        }
        self.index[i] = (u64::from(h) << 32) | (idx as u64 * 2 + dir as u64 + 1);
    }

    fn unlink(&mut self, idx: usize, dir: usize) {
        self.index_epoch += 1;
        let want = idx as u64 * 2 + dir as u64 + 1;
        let h = self.entries[idx].hashes[dir];
        let mut i = h as usize & self.mask;
        while self.index[i] & 0xffff_ffff != want {
            debug_assert!(
                self.index[i] != 0,
                "an entry's tuple is missing from the index"
            );
            i = (i + 1) & self.mask;
        }
        // Backward-shift deletion: pull later members of the probe run into the hole.
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let s = self.index[j];
            if s == 0 {
                break;
            }
            let home = (s >> 32) as usize & self.mask;
            let movable = if i <= j {
                home <= i || home > j
            } else {
                home <= i && home > j
            };
            if movable {
                self.index[i] = s;
                i = j;
            }
        }
        self.index[i] = 0;
    }
}

fn packet_tuple(p: &Packet, zone: u16) -> Option<Tuple> {
    let (sport, dport) = match p.l4 {
        L4::Tcp(s) => (s.sport, s.dport),
        L4::Udp { sport, dport } => (sport, dport),
        L4::IcmpEcho { id, request, query } => (id, icmp_dport(query, request)),
        L4::IcmpError { .. } | L4::IcmpOther { .. } => return None,
        L4::Other => (0, 0),
    };
    Some(Tuple {
        src: p.src,
        dst: p.dst,
        sport,
        dport,
        proto: p.proto,
        v6: p.v6,
        zone,
    })
}

/// The `dport` of an ICMP query tuple (see [`Tuple`]).
fn icmp_dport(query: u8, request: bool) -> u16 {
    u16::from(query) << 1 | u16::from(request)
}

#[inline]
fn fold_mul(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

fn hash_tuple(seed: u64, t: &Tuple) -> u64 {
    const K: [u64; 4] = [
        0x243f_6a88_85a3_08d3,
        0x1319_8a2e_0370_7344,
        0xa409_3822_299f_31d0,
        0x082e_fa98_ec4e_6c89,
    ];
    let misc = u64::from(t.sport)
        | u64::from(t.dport) << 16
        | u64::from(t.proto) << 32
        | u64::from(t.v6) << 40
        | u64::from(t.zone) << 48;
    let a = fold_mul(t.src as u64 ^ seed, (t.src >> 64) as u64 ^ K[0]);
    let b = fold_mul(t.dst as u64 ^ K[1], (t.dst >> 64) as u64 ^ K[2]);
    fold_mul(a ^ b.rotate_left(23), misc ^ K[3] ^ seed)
}

/// Which of `shards` shards (workers) owns a packet's connection: a hash of the
/// connection's two endpoints that is the same for both directions (and, for an ICMP
/// error, that of the connection it quotes). Zones do not enter it (the shard is chosen
/// before the pipeline sets the zone).
pub fn shard_of(p: &Packet, shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    let (a, pa, b, pb, proto) = match p.l4 {
        L4::Tcp(s) => (p.src, s.sport, p.dst, s.dport, p.proto),
        L4::Udp { sport, dport } => (p.src, sport, p.dst, dport, p.proto),
        L4::IcmpEcho { id, .. } => (p.src, id, p.dst, id, p.proto),
        L4::IcmpError { quoted: q, .. } => {
            let icmp = q.proto == PROTO_ICMP || q.proto == PROTO_ICMPV6;
            let (sp, dp) = if icmp {
                (q.sport, q.sport)
            } else {
                (q.sport, q.dport)
            };
            (q.src, sp, q.dst, dp, q.proto)
        }
        L4::IcmpOther { .. } | L4::Other => (p.src, 0, p.dst, 0, p.proto),
    };
    symmetric(a, pa, b, pb, proto, shards)
}

/// The shard of an Ethernet frame's connection ([`shard_of`] of its IP packet, behind up
/// to two VLAN tags), or `None` when it is not IP or does not parse (such a packet is
/// `+inv` on any shard: the datapath leaves it where it arrived). Checksums are not
/// verified: they do not change the shard.
pub fn shard_of_frame(frame: &[u8], shards: usize) -> Option<usize> {
    if shards <= 1 {
        return Some(0);
    }
    crate::parse_ethernet(frame, false)
        .ok()
        .map(|p| shard_of(&p, shards))
}

fn shard_of_tuple(t: &Tuple, shards: usize) -> usize {
    let icmp = t.proto == PROTO_ICMP || t.proto == PROTO_ICMPV6;
    let dport = if icmp { t.sport } else { t.dport };
    symmetric(t.src, t.sport, t.dst, dport, t.proto, shards)
}

fn symmetric(a: Addr, pa: u16, b: Addr, pb: u16, proto: u8, shards: usize) -> usize {
    let ((lo, plo), (hi, phi)) = if (a, pa) <= (b, pb) {
        ((a, pa), (b, pb))
    } else {
        ((b, pb), (a, pa))
    };
    let t = Tuple {
        src: lo,
        dst: hi,
        sport: plo,
        dport: phi,
        proto,
        v6: false,
        zone: 0,
    };
    // A fixed seed: every shard must compute the same function. The finalizer spreads the
    // ports over the low bits the modulo keeps: without it, ports that differ only in
    // their low bits (a NAT's search for a port the owner keeps walks them in order)
    // moved the folded product's high half too little to change the shard, and a DNAT
    // search of 127 ports could find none on the owner (one try in four).
    let h = hash_tuple(0x9e37_79b9_7f4a_7c15, &t);
    (fmix64(h) % shards as u64) as usize
}

/// MurmurHash3's 64-bit finalizer: every input bit moves every output bit.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("config", &self.cfg)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index stays short-probed: hashes of similar tuples spread.
    #[test]
    fn probe_sequences_stay_short() {
        let mut t = Tracker::new(Config {
            capacity: 1 << 16,
            ..Config::default()
        })
        .unwrap();
        let commit = TrackOptions {
            commit: true,
            ..TrackOptions::default()
        };
        for i in 0..(1u32 << 16) {
            let p = Packet {
                v6: false,
                src: u128::from(0x0a00_0000 + i),
                dst: 0x0b00_0001,
                proto: 17,
                l4: L4::Udp {
                    sport: 1000,
                    dport: 53,
                },
            };
            assert!(t.track(&p, &commit, 0).state.has(CtState::NEW));
        }
        let mut total = 0usize;
        let mut worst = 0usize;
        for (i, &s) in t.index.iter().enumerate() {
            if s != 0 {
                let home = (s >> 32) as usize & t.mask;
                let d = (i + t.index.len() - home) & t.mask;
                total += d;
                worst = worst.max(d);
            }
        }
        let avg = total as f64 / (2.0 * 65536.0);
        assert!(
            avg < 1.0 && worst < 64,
            "average probe distance {avg}, worst {worst}"
        );
    }
}
