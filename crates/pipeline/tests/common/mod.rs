//! Test support: a frame builder, a recording sink, and the reference pipeline: a plain
//! linear scan per table (highest priority, ties to the later addition) and a walker
//! written directly from the spec's text, against which the compiled pipeline is checked.

#![allow(dead_code)]

use packet::{extract, EditError, FlowKey, PacketBuf, VecBuf};
use pipeline::ports::{
    OFPCML_NO_BUFFER, OFPP_ALL, OFPP_CONTROLLER, OFPP_FLOOD, OFPP_IN_PORT, OFPP_NORMAL,
};
use pipeline::{Action, ActionSet, Emit, FlowEntry, FlowTables, GroupType, PacketInReason, Sink};

// ---- frames ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub enum L3 {
    Ipv4 {
        src: u32,
        dst: u32,
        proto: u8,
        ttl: u8,
        sport: u16,
        dport: u16,
    },
    Arp {
        op: u16,
        spa: u32,
        tpa: u32,
    },
    Raw(u16),
}

#[derive(Clone, Debug)]
pub struct PktSpec {
    pub dst: u64,
    pub src: u64,
    pub vlan: Option<u16>,
    pub l3: L3,
}

fn mac(m: u64) -> [u8; 6] {
    let b = m.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

fn csum(data: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from(c[0]) << 8
        };
        s += u32::from(w);
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

pub fn frame(p: &PktSpec) -> Vec<u8> {
    let mut f = Vec::with_capacity(80);
    f.extend_from_slice(&mac(p.dst));
    f.extend_from_slice(&mac(p.src));
    if let Some(v) = p.vlan {
        f.extend_from_slice(&0x8100u16.to_be_bytes());
        f.extend_from_slice(&(v & 0x0fff).to_be_bytes());
    }
    match p.l3 {
        L3::Ipv4 {
            src,
            dst,
            proto,
            ttl,
            sport,
            dport,
        } => {
            f.extend_from_slice(&0x0800u16.to_be_bytes());
            let l4len = if proto == 6 { 20 } else { 8 };
            let total = 20 + l4len + 8;
            let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0, 0, ttl, proto, 0, 0];
            ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
            ip.extend_from_slice(&src.to_be_bytes());
            ip.extend_from_slice(&dst.to_be_bytes());
            let c = csum(&ip);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&ip);
            f.extend_from_slice(&sport.to_be_bytes());
            f.extend_from_slice(&dport.to_be_bytes());
            if proto == 6 {
                f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0x20, 0, 0, 0, 0, 0]);
            } else {
                f.extend_from_slice(&((8 + 8) as u16).to_be_bytes());
                f.extend_from_slice(&[0, 0]);
            }
            f.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        }
        L3::Arp { op, spa, tpa } => {
            f.extend_from_slice(&0x0806u16.to_be_bytes());
            f.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
            f.extend_from_slice(&op.to_be_bytes());
            f.extend_from_slice(&mac(p.src));
            f.extend_from_slice(&spa.to_be_bytes());
            f.extend_from_slice(&[0; 6]);
            f.extend_from_slice(&tpa.to_be_bytes());
        }
        L3::Raw(t) => {
            f.extend_from_slice(&t.to_be_bytes());
            f.extend_from_slice(&[0xaa; 30]);
        }
    }
    while f.len() < 60 {
        f.push(0);
    }
    f
}

// ---- recording sink -------------------------------------------------------------------

#[derive(Default, Debug)]
pub struct Recorder {
    pub outputs: Vec<(u32, Option<u32>, Vec<u8>)>,
    pub hits: Vec<(u8, u64)>,
    pub finals: usize,
}

impl Sink<VecBuf> for Recorder {
    fn output(&mut self, port: u32, queue: Option<u32>, pkt: &VecBuf, emit: Emit) {
        if emit == Emit::Final {
            self.finals += 1;
        }
        self.outputs.push((port, queue, pkt.data().to_vec()));
    }
    fn clone_packet(&mut self, pkt: &VecBuf) -> Option<VecBuf> {
        Some(pkt.clone())
    }
    fn table_hit(&mut self, table_id: u8, uid: u64) {
        self.hits.push((table_id, uid));
    }
}

/// A sink that keeps every output in order with its kind: port, queue, emit, frame.
#[derive(Default, Debug)]
pub struct InOrder(pub Vec<(u32, Option<u32>, Emit, Vec<u8>)>);

impl Sink<VecBuf> for InOrder {
    fn output(&mut self, port: u32, queue: Option<u32>, pkt: &VecBuf, emit: Emit) {
        self.0.push((port, queue, emit, pkt.data().to_vec()));
    }
    fn clone_packet(&mut self, pkt: &VecBuf) -> Option<VecBuf> {
        Some(pkt.clone())
    }
}

/// A seeded xorshift generator for random tables: the same seed gives the same tables.
pub struct XorShift(pub u64);

impl XorShift {
    /// The next value below `n`.
    pub fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Gives ports 1..=`ports` and LOCAL random states (no-forward, down, no-flood or plain), so
/// that random tables meet every kind of port an output can find.
pub fn set_random_ports(ft: &mut FlowTables, rng: &mut XorShift, ports: u32) {
    for p in (1..=ports).chain([pipeline::ports::OFPP_LOCAL]) {
        let mut info = pipeline::PortInfo::new(p);
        match rng.next(6) {
            0 => info.config = pipeline::port::PortConfig::NO_FWD,
            1 => info.config = pipeline::port::PortConfig::PORT_DOWN,
            2 => info.no_flood = true,
            _ => {}
        }
        ft.set_port(info);
    }
}

/// Everything observable about one packet's trip.
#[derive(Debug, Default, PartialEq, Eq, Clone)]
pub struct Outcome {
    pub hits: Vec<(u8, u64)>,
    /// Sorted: emission order is not part of the contract.
    pub outputs: Vec<(u32, Option<u32>, Vec<u8>)>,
    /// (reason, table, cookie, data)
    pub packet_ins: Vec<(u8, u8, u64, Vec<u8>)>,
    pub final_bytes: Vec<u8>,
    /// The packet hit the resubmit bounds and was dropped.
    pub resubmit_limit: bool,
}

/// A key as a worker's key array holds it after other packets: every word and layer
/// bit set to something no packet here has.
pub fn stale_key() -> FlowKey {
    let mut k = FlowKey::default();
    for (i, w) in k.words.iter_mut().enumerate() {
        *w = 0x9e37_79b9_7f4a_7c15u64.rotate_left(7 * i as u32) | 1;
    }
    k.layers = packet::Layers(u32::MAX);
    k
}

/// The compiled pipeline on one packet, its key extracted as the worker does: with the
/// version's plan (only the words its tables and actions read) over a [`stale_key`].
/// The reference always parses the whole frame into a fresh key, so the differential
/// tests check that extracting less is right.
pub fn run_compiled(ft: &FlowTables, frame: &[u8], in_port: u32) -> Outcome {
    run_compiled_with(ft, frame, in_port, false)
}

/// [`run_compiled`]; `full`: the key is the whole [`packet::extract`] instead.
pub fn run_compiled_with(ft: &FlowTables, frame: &[u8], in_port: u32, full: bool) -> Outcome {
    let pl = ft.current();
    let mut ctx = ft.worker_context(0);
    let q = ft.packet_in_queue();
    q.drain();
    let mut pkt = VecBuf::new(frame);
    let mut key = if full {
        extract(frame, in_port)
    } else {
        let mut k = stale_key();
        pl.extract(frame, in_port, &mut k);
        k
    };
    let mut rec = Recorder::default();
    let v = pl.process(&mut pkt, &mut key, &mut ctx, &mut rec);
    let mut outputs = rec.outputs;
    outputs.sort();
    if v.resubmit_limit {
        q.drain();
        return Outcome {
            resubmit_limit: true,
            hits: rec.hits,
            final_bytes: pkt.data().to_vec(),
            ..Default::default()
        };
    }
    Outcome {
        resubmit_limit: false,
        hits: rec.hits,
        outputs,
        packet_ins: q
            .drain()
            .into_iter()
            .map(|r| (r.reason as u8, r.table_id, r.cookie, r.data))
            .collect(),
        final_bytes: pkt.data().to_vec(),
    }
}

// ---- the reference --------------------------------------------------------------------

/// The linear classifier: the matching entry with the highest priority, ties to the
/// larger uid (the later addition); with conjunctions, Open vSwitch's classifier
/// (`classifier_lookup__`) written out literally: the best ordinary entry (the hard
/// match); then, priority by priority from the top down to above the hard match's, each
/// conjunction (lowest id first) all of whose dimensions some clause entry of that
/// priority matches, answered by the best ordinary entry for the key with that `conj_id`;
/// else the hard match.
pub fn ref_lookup<'a>(ft: &'a FlowTables, table: u8, key: &FlowKey) -> Option<&'a FlowEntry> {
    use pipeline::conjunction::clause_of;
    let ordinary = |k: &FlowKey| {
        ft.entries(table)
            .filter(|e| clause_of(&e.instructions).is_none() && e.match_.matches(&k.words))
            .max_by_key(|e| (e.priority, e.uid))
    };
    let hard = ordinary(key);
    let floor = hard.map_or(-1, |e| i32::from(e.priority));
    let soft: Vec<(u16, Vec<pipeline::conjunction::ConjRef>)> = ft
        .entries(table)
        .filter(|e| i32::from(e.priority) > floor && e.match_.matches(&key.words))
        .filter_map(|e| Some((e.priority, clause_of(&e.instructions)?)))
        .collect();
    let mut prios: Vec<u16> = soft.iter().map(|s| s.0).collect();
    prios.sort_unstable_by(|a, b| b.cmp(a));
    prios.dedup();
    for p in prios {
        let mut bits: std::collections::BTreeMap<(u32, u8), u64> = Default::default();
        for (_, refs) in soft.iter().filter(|s| s.0 == p) {
            for r in refs {
                *bits.entry((r.id, r.n_clauses)).or_default() |= 1u64 << r.clause;
            }
        }
        for ((id, n), b) in bits {
            let all = if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
            if b != all {
                continue;
            }
            let mut k = *key;
            k.set(packet::Field::ConjId, id.into());
            if let Some(e) = ordinary(&k) {
                return Some(e);
            }
        }
    }
    hard
}

struct RefCx<'a> {
    ft: &'a FlowTables,
    out: Outcome,
    table_id: u8,
    cookie: u64,
    table_miss: bool,
    in_port: u32,
    resubmit_depth: u32,
    resubmits: u32,
}

impl RefCx<'_> {
    fn send(&mut self, port: u32, queue: Option<u32>, pkt: &VecBuf) {
        let ports = self.ft.ports();
        match port {
            OFPP_IN_PORT => self
                .out
                .outputs
                .push((self.in_port, queue, pkt.data().to_vec())),
            OFPP_ALL | OFPP_FLOOD => {
                for p in ports.iter() {
                    if p.port_no == self.in_port || !p.forwards() {
                        continue;
                    }
                    if port == OFPP_FLOOD && (p.no_flood || !p.live) {
                        continue;
                    }
                    self.out
                        .outputs
                        .push((p.port_no, queue, pkt.data().to_vec()));
                }
            }
            p if p == self.in_port => {}
            p => {
                if ports.get(p).is_some_and(|i| !i.forwards()) {
                    return;
                }
                self.out.outputs.push((p, queue, pkt.data().to_vec()));
            }
        }
    }

    fn packet_in(&mut self, pkt: &VecBuf, reason: PacketInReason, max_len: u16) {
        let d = pkt.data();
        let n = if max_len == OFPCML_NO_BUFFER {
            d.len()
        } else {
            d.len().min(max_len.into())
        };
        self.out
            .packet_ins
            .push((reason as u8, self.table_id, self.cookie, d[..n].to_vec()));
    }

    /// One walk from `start`: the spec's table walk with its own action set; `resubmit`
    /// runs another one nested (fresh action set and queue, in_port replaced for it).
    /// false: the resubmit limit was hit (the packet is dropped).
    fn walk(&mut self, start: u8, pkt: &mut VecBuf, key: &mut FlowKey) -> bool {
        let ft = self.ft;
        let mut set = ActionSet::default();
        let mut queue = None;
        let mut table = start;
        let mut run_set = false;
        loop {
            if table >= ft.n_tables() {
                break;
            }
            let Some(e) = ref_lookup(ft, table, key) else {
                break;
            };
            self.out.hits.push((table, e.uid));
            self.table_id = table;
            self.cookie = e.cookie;
            self.table_miss = e.priority == 0 && e.match_.is_any();
            let insts = e.instructions.clone();
            let mut stopped = false;
            if let Some(apply) = &insts.apply {
                for a in apply.iter() {
                    if !self.exec(a, pkt, key, &mut queue, false) {
                        stopped = true;
                        break;
                    }
                }
            }
            if self.out.resubmit_limit {
                return false;
            }
            if stopped {
                break;
            }
            if insts.clear {
                set = ActionSet::default();
            }
            if let Some(w) = &insts.write {
                for a in w.list.iter() {
                    set.write(a);
                }
            }
            if let Some((v, m)) = insts.metadata {
                key.set_metadata((key.metadata() & !m) | (v & m));
            }
            match insts.goto {
                Some(g) => table = g,
                None => {
                    run_set = true;
                    break;
                }
            }
        }
        if run_set {
            let actions: Vec<Action> = set.ordered().collect();
            for a in &actions {
                if !self.exec(a, pkt, key, &mut queue, true) {
                    break;
                }
            }
        }
        !self.out.resubmit_limit
    }

    /// `key`'s field under `mask` set to `value`'s bits (move, load).
    fn write_masked(
        &mut self,
        pkt: &mut VecBuf,
        key: &mut FlowKey,
        field: packet::Field,
        value: u128,
        mask: u128,
    ) -> Result<(), EditError> {
        let new = (key.get(field) & !mask) | (value & mask);
        if field == packet::Field::Metadata {
            key.set_metadata(new as u64);
            Ok(())
        } else {
            packet::set_field(pkt, key, field, new)
        }
    }

    /// false: stop processing this packet.
    fn exec(
        &mut self,
        a: &Action,
        pkt: &mut VecBuf,
        key: &mut FlowKey,
        queue: &mut Option<u32>,
        in_place: bool,
    ) -> bool {
        let r: Result<(), EditError> = match *a {
            Action::Output {
                port: OFPP_CONTROLLER,
                max_len,
            } => {
                let reason = if self.table_miss {
                    PacketInReason::NoMatch
                } else {
                    PacketInReason::Action
                };
                self.packet_in(pkt, reason, max_len);
                Ok(())
            }
            Action::Output {
                port: OFPP_NORMAL, ..
            } => panic!("NORMAL is not in the reference"),
            Action::Output { port, .. } => {
                self.send(port, *queue, pkt);
                Ok(())
            }
            Action::SetQueue(q) => {
                *queue = Some(q);
                Ok(())
            }
            Action::Group(g) => {
                let Some(group) = self.ft.groups().find(|x| x.id == g) else {
                    return true;
                };
                let buckets: Vec<usize> = match group.kind {
                    GroupType::All => (0..group.buckets.len()).collect(),
                    GroupType::Indirect => (0..group.buckets.len().min(1)).collect(),
                    _ => panic!("only ALL and INDIRECT groups are in the reference"),
                };
                let last = buckets.last().copied();
                for b in buckets {
                    let acts = group.buckets[b].actions.clone();
                    if in_place && Some(b) == last {
                        for a in acts.iter() {
                            if !self.exec(a, pkt, key, queue, true) {
                                break;
                            }
                        }
                    } else {
                        let mut p2 = pkt.clone();
                        let mut k2 = *key;
                        let mut q2 = *queue;
                        for a in acts.iter() {
                            if !self.exec(a, &mut p2, &mut k2, &mut q2, true) {
                                break;
                            }
                        }
                    }
                }
                Ok(())
            }
            Action::SetField { field, value } => packet::set_field(pkt, key, field, value),
            Action::PushVlan(t) => packet::push_vlan(pkt, key, t),
            Action::PopVlan => packet::pop_vlan(pkt, key),
            Action::PushMpls(t) => packet::push_mpls(pkt, key, t),
            Action::PopMpls(t) => packet::pop_mpls(pkt, key, t),
            Action::PushPbb(t) => packet::push_pbb(pkt, key, t),
            Action::PopPbb => packet::pop_pbb(pkt, key),
            Action::SetMplsTtl(t) => packet::set_mpls_ttl(pkt, key, t),
            Action::DecMplsTtl => packet::dec_mpls_ttl(pkt, key),
            Action::SetNwTtl(t) => packet::set_nw_ttl(pkt, key, t),
            Action::DecNwTtl => packet::dec_nw_ttl(pkt, key),
            Action::CopyTtlOut => packet::copy_ttl_out(pkt, key),
            Action::CopyTtlIn => packet::copy_ttl_in(pkt, key),
            Action::SetFieldMasked {
                field, value, mask, ..
            } => self.write_masked(pkt, key, field, value, mask),
            Action::Move {
                src,
                src_ofs,
                dst,
                dst_ofs,
                n_bits,
            } => {
                let m = if n_bits >= 128 {
                    u128::MAX
                } else {
                    (1u128 << n_bits) - 1
                };
                let bits = (key.get(src) >> src_ofs) & m;
                self.write_masked(pkt, key, dst, bits << dst_ofs, m << dst_ofs)
            }
            Action::Resubmit { in_port, table } => {
                // Open vSwitch's bounds: 64 deep, 4096 in all.
                if self.resubmit_depth >= 64 || self.resubmits >= 4096 {
                    self.out.resubmit_limit = true;
                    return false;
                }
                self.resubmits += 1;
                let t = table.unwrap_or(self.table_id);
                let saved = (self.table_id, self.cookie, self.table_miss, self.in_port);
                let saved_port = key.get(packet::Field::InPort);
                if let Some(p) = in_port {
                    key.set(packet::Field::InPort, p.into());
                    self.in_port = p;
                }
                self.resubmit_depth += 1;
                let ok = self.walk(t, pkt, key);
                self.resubmit_depth -= 1;
                (self.table_id, self.cookie, self.table_miss, self.in_port) = saved;
                key.set(packet::Field::InPort, saved_port);
                if !ok {
                    return false;
                }
                Ok(())
            }
            Action::Note(_) | Action::Conjunction { .. } => Ok(()),
            Action::CtClear => {
                for w in &mut key.words[packet::CT_WORD..] {
                    *w = 0;
                }
                Ok(())
            }
            // The generators make no ct actions (the tracker has its own tests, and the
            // switch tests run it end to end).
            Action::Ct(_) => Ok(()),
        };
        if r == Err(EditError::InvalidTtl) {
            self.packet_in(pkt, PacketInReason::InvalidTtl, OFPCML_NO_BUFFER);
            return false;
        }
        true
    }
}

/// The reference walk (no meters, no NORMAL, no SELECT/FF groups, table-miss = drop).
pub fn run_reference(ft: &FlowTables, frame: &[u8], in_port: u32) -> Outcome {
    let mut pkt = VecBuf::new(frame);
    let mut key = extract(frame, in_port);
    let mut cx = RefCx {
        ft,
        out: Outcome::default(),
        table_id: 0,
        cookie: u64::MAX,
        table_miss: false,
        in_port,
        resubmit_depth: 0,
        resubmits: 0,
    };
    cx.walk(0, &mut pkt, &mut key);
    if cx.out.resubmit_limit {
        // What was sent before the limit is not part of the contract (see Verdict); the
        // entries hit up to it are.
        cx.out.outputs.clear();
        cx.out.packet_ins.clear();
    }
    cx.out.outputs.sort();
    cx.out.final_bytes = pkt.data().to_vec();
    cx.out
}

// ---- trace ----------------------------------------------------------------------------

/// [`pipeline::Pipeline::trace`] of the packet, as an [`Outcome`]: what the trace says
/// happens. It must equal what processing the packet did ([`run_compiled`]), and leave
/// no packet-in in the queue.
pub fn run_trace(ft: &FlowTables, frame: &[u8], in_port: u32) -> Outcome {
    let q = ft.packet_in_queue();
    q.drain();
    let t = ft
        .current()
        .trace(frame, in_port, std::time::Duration::ZERO);
    assert!(q.drain().is_empty(), "a trace queued a packet-in");
    let mut outputs: Vec<_> = t
        .outputs
        .iter()
        .map(|o| (o.port, o.queue, o.frame.clone()))
        .collect();
    outputs.sort();
    let hits: Vec<_> = t.hits().map(|(table, h)| (table, h.uid)).collect();
    if t.verdict.resubmit_limit {
        assert_eq!(
            t.drop_reason(),
            Some(pipeline::trace::DropReason::ResubmitLimit)
        );
        return Outcome {
            resubmit_limit: true,
            hits,
            final_bytes: t.final_frame.clone(),
            ..Default::default()
        };
    }
    Outcome {
        resubmit_limit: false,
        hits,
        outputs,
        packet_ins: t
            .packet_ins
            .iter()
            .map(|r| (r.reason as u8, r.table_id, r.cookie, r.data.clone()))
            .collect(),
        final_bytes: t.final_frame.clone(),
    }
}
