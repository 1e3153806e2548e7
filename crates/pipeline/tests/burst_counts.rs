//! Counting table 0 once per burst ([`Pipeline::count_burst`], then
//! [`Pipeline::process_in_burst`] per packet) leaves every entry and table counter exactly
//! where counting each packet ([`Pipeline::process`]) leaves it: the same packets, in
//! bursts of one ingress port (as a worker's are) or mixed (not counted per burst) and of
//! mixed lengths, are walked through two identical pipelines, one each way, with flow-mods
//! between bursts, and every counter compared. Table 0 is by in_port; the walk goes on
//! through a hash table, wildcard-only tables and a resubmit to table 0 as from another
//! port (a nested walk, which counts its own lookup of table 0).

use std::time::Duration;

use packet::{extract, Field, VecBuf};
use pipeline::group::OFPG_ANY;
use pipeline::ports::OFPP_ANY;
use pipeline::{
    Action, BurstCounts, Emit, FlowModReq, FlowTables, Instructions, Match, Pipeline,
    PipelineConfig, PortInfo, Sink, WorkerContext,
};

struct Discard;

impl Sink<VecBuf> for Discard {
    fn output(&mut self, _: u32, _: Option<u32>, _: &VecBuf, _: Emit) {}
    fn clone_packet(&mut self, pkt: &VecBuf) -> Option<VecBuf> {
        Some(pkt.clone())
    }
}

/// The traffic both tests walk: random bursts and, now and then, a flow-mod between them.
struct Traffic(u64);

impl Traffic {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    /// A burst from one port (as the worker's are: `Some(port)`), sometimes of mixed
    /// ports (`None`), of 1-32 frames of mixed lengths.
    fn burst(&mut self) -> (Vec<(u32, Vec<u8>)>, Option<u32>) {
        let size = 1 + self.next(32) as usize;
        let one_port = self.next(4) != 0;
        let port = 1 + self.next(4) as u32;
        let burst = (0..size)
            .map(|_| {
                let p = if one_port {
                    port
                } else {
                    1 + self.next(4) as u32
                };
                let kind = self.next(6);
                (p, frame(kind, 60 + self.next(40) as usize))
            })
            .collect();
        (burst, one_port.then_some(port))
    }

    /// One time in 50, the same flow-mod into both tables: a new version, the counts
    /// carried over.
    fn maybe_flow_mod(&mut self, both: [&mut FlowTables; 2]) {
        if self.next(50) != 0 {
            return;
        }
        let prio = 1 + self.next(3) as u16;
        for ft in both {
            let m = Match::exact(&[(Field::InPort, 4)]);
            let i = Instructions {
                goto: Some(3),
                ..Default::default()
            };
            ft.apply_flow_mod(FlowModReq::add(0, prio, m, i), Duration::ZERO)
                .unwrap();
            ft.publish();
        }
    }
}

/// Table 0's counts for a burst of one port, counted once ([`Pipeline::count_burst`]);
/// none for a mixed burst.
fn counts_of<'p>(
    p: &'p Pipeline,
    ctx: &WorkerContext,
    burst: &[(u32, Vec<u8>)],
    port: Option<u32>,
) -> BurstCounts<'p> {
    match port {
        Some(port) => {
            let bytes = burst.iter().map(|(_, f)| f.len() as u64).sum();
            p.count_burst(ctx, port, burst.len() as u64, bytes)
        }
        None => BurstCounts::default(),
    }
}

fn tables() -> FlowTables {
    let mut ft = FlowTables::new(PipelineConfig {
        n_tables: 4,
        ..Default::default()
    });
    for p in 1..=4 {
        ft.set_port(PortInfo::new(p));
    }
    let mut add = |t: u8, prio: u16, m: Match, i: Instructions| {
        ft.apply_flow_mod(FlowModReq::add(t, prio, m, i), Duration::ZERO)
            .unwrap()
    };
    let goto = |t: u8, actions: Vec<Action>| Instructions {
        goto: Some(t),
        ..Instructions::apply(actions)
    };
    // Table 0: by in_port only (a port-indexed table), port 4 missing it.
    add(0, 10, Match::exact(&[(Field::InPort, 1)]), goto(1, vec![]));
    add(0, 10, Match::exact(&[(Field::InPort, 2)]), goto(2, vec![]));
    add(
        0,
        10,
        Match::exact(&[(Field::InPort, 3)]),
        goto(3, vec![Action::output(1)]),
    );
    // Table 1: by source MAC (a hash table: counted at once), the rest to table 3.
    for i in 0..4u128 {
        add(
            1,
            20,
            Match::exact(&[(Field::EthSrc, 0x0200_0000_0000 | i)]),
            goto(3, vec![Action::output(2)]),
        );
    }
    add(1, 0, Match::any(), goto(3, vec![]));
    // Table 2: wildcard-only, resubmits as from port 1 to table 0, then outputs.
    add(
        2,
        0,
        Match::any(),
        Instructions::apply(vec![
            Action::Resubmit {
                in_port: Some(1),
                table: Some(0),
            },
            Action::output(3),
        ]),
    );
    // Table 3: wildcard-only.
    add(
        3,
        5,
        Match::any(),
        Instructions::apply(vec![Action::output(4)]),
    );
    ft.publish();
    ft
}

fn frame(src: u64, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 0x99]);
    f[6..12].copy_from_slice(&(0x0200_0000_0000u64 | src).to_be_bytes()[2..]);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f
}

/// Every entry's (table, priority, packets, bytes) and every table's (lookups, matches).
type Counters = (Vec<(u8, u16, String, u64, u64)>, Vec<(u8, u64, u64)>);

fn counters(ft: &mut FlowTables) -> Counters {
    let mut entries: Vec<_> = ft
        .flow_counts(0xff, &Match::any(), 0, 0, OFPP_ANY, OFPG_ANY)
        .unwrap()
        .into_iter()
        .map(|c| {
            let m = format!("{:?}", c.entry.match_);
            (c.table_id, c.entry.priority, m, c.packets, c.bytes)
        })
        .collect();
    entries.sort();
    let t = ft
        .table_counts()
        .into_iter()
        .map(|t| (t.table_id, t.lookups, t.matches))
        .collect();
    (entries, t)
}

#[test]
fn counts_per_burst_equal_counts_per_packet() {
    let mut per_packet = tables();
    let mut per_burst = tables();
    assert!(per_burst.current().tables[0].counts_per_burst);
    assert!(!per_burst.current().tables[1].counts_per_burst);
    assert!(per_burst.current().tables[2].counts_per_burst);
    assert!(per_burst.current().tables[3].counts_per_burst);
    let mut ctx_a = per_packet.worker_context(0);
    let mut ctx_b = per_burst.worker_context(0);
    let mut traffic = Traffic(0x2545_f491_4f6c_dd1d);
    let mut sent = 0u64;
    for _ in 0..400 {
        let (burst, port) = traffic.burst();
        let (pa, pb) = (per_packet.current(), per_burst.current());
        for (p, f) in &burst {
            let mut key = extract(f, *p);
            pa.process(&mut VecBuf::new(f), &mut key, &mut ctx_a, &mut Discard);
        }
        let counts = counts_of(&pb, &ctx_b, &burst, port);
        for (p, f) in &burst {
            let mut key = extract(f, *p);
            pb.process_in_burst(
                &mut VecBuf::new(f),
                &mut key,
                &mut ctx_b,
                &mut Discard,
                counts,
            );
        }
        sent += burst.len() as u64;
        traffic.maybe_flow_mod([&mut per_packet, &mut per_burst]);
    }
    let (a, b) = (counters(&mut per_packet), counters(&mut per_burst));
    assert_eq!(a, b);
    let t0_lookups = b.1[0].1;
    assert!(t0_lookups > sent, "the resubmits look table 0 up again");
    assert!(
        b.0.iter().filter(|e| e.0 == 3).all(|e| e.3 > 0),
        "table 3 counted: {b:?}"
    );
}

/// The worker's walk ([`Pipeline::process_in_burst_tallied`], its table matches and misses
/// counted in the context and added once per burst by [`Pipeline::add_burst_matches`]) leaves every
/// counter where counting each packet leaves it, flow-mods between bursts included; and
/// until the burst's matches are added, the tables have not counted them (the tally is
/// what counts).
#[test]
fn tallied_matches_equal_counts_per_packet() {
    let mut per_packet = tables();
    let mut tallied = tables();
    let mut ctx_a = per_packet.worker_context(0);
    let mut ctx_b = tallied.worker_context(0);
    let mut traffic = Traffic(0x9e37_79b9_7f4a_7c15);
    let (mut held_back, mut held_back_misses) = (0u64, 0u64);
    for _ in 0..400 {
        let (burst, port) = traffic.burst();
        let (pa, pb) = (per_packet.current(), tallied.current());
        for (p, f) in &burst {
            let mut key = extract(f, *p);
            pa.process(&mut VecBuf::new(f), &mut key, &mut ctx_a, &mut Discard);
        }
        let counts = counts_of(&pb, &ctx_b, &burst, port);
        for (p, f) in &burst {
            let mut key = extract(f, *p);
            let mut pkt = VecBuf::new(f);
            let (_, out) =
                pb.process_in_burst_tallied(&mut pkt, &mut key, &mut ctx_b, &mut Discard, counts);
            let _ = out;
        }
        let sums = |ft: &mut FlowTables| -> (u64, u64) {
            let c = ft.table_counts();
            let matches = c.iter().map(|t| t.matches).sum::<u64>();
            (matches, c.iter().map(|t| t.lookups).sum::<u64>() - matches)
        };
        let before = sums(&mut tallied);
        pb.add_burst_matches(&mut ctx_b);
        let after = sums(&mut tallied);
        held_back += after.0 - before.0;
        held_back_misses += after.1 - before.1;
        traffic.maybe_flow_mod([&mut per_packet, &mut tallied]);
    }
    assert_eq!(counters(&mut per_packet), counters(&mut tallied));
    assert!(
        held_back > 0 && held_back_misses > 0,
        "the walks' matches and misses were added after the bursts"
    );
}
