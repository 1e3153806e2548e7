//! A big table's rows live in 2 MiB pages: B10k's tables (10k `in_port,dl_src` entries in
//! table 0, 10k `dl_dst` entries in table 1, each a one-line form of 32k rows, 2 MiB)
//! compile to row arrays that the kernel backs with transparent huge pages (checked in
//! `/proc/self/smaps`, `AnonHugePages` of the mapping that holds them), and that memory
//! goes when the version holding it is reclaimed. Where the kernel's THP mode is `never`
//! (or it has no THP) the rows are in 4 KiB pages, which is correct but slower: the test
//! then checks the rest and says loudly why it did not check the pages.

use std::time::Duration;

use packet::Field;
use pipeline::lookup::Classifier;
use pipeline::{
    Action, FlowModReq, FlowTables, Instructions, Match, Pipeline, PipelineConfig, PortInfo,
};

const INSTANCES: u64 = 10_000;

fn mac(i: u64) -> u128 {
    u128::from(0x0200_0000_0000 | i)
}

/// Table `t`'s row array: (address, bytes, advised for huge pages).
fn rows_of(pl: &Pipeline, t: usize) -> (usize, usize, bool) {
    let levels = &pl.tables[t].levels;
    assert_eq!(levels.len(), 1, "table {t} compiled into one level");
    match &levels[0].classifier {
        Classifier::Inline(c) => c.row_memory(),
        other => panic!("table {t} is not in the one-line form: {}", kind(other)),
    }
}

fn kind(c: &Classifier) -> &'static str {
    match c {
        Classifier::Empty(_) => "empty",
        Classifier::Port(_) => "port",
        Classifier::Linear(_) => "linear",
        Classifier::Exact(_) => "exact",
        Classifier::Tuple(_) => "tuple",
        Classifier::Inline(_) => "inline",
    }
}

#[test]
fn b10k_rows_are_in_huge_pages_and_freed_with_their_version() {
    let mut ft = FlowTables::new(PipelineConfig {
        n_tables: 2,
        ..Default::default()
    });
    for p in 1..=2 {
        ft.set_port(PortInfo::new(p));
    }
    let add = |ft: &mut FlowTables, t: u8, m: Match, i: Instructions| {
        ft.apply_flow_mod(FlowModReq::add(t, 100, m, i), Duration::ZERO)
            .unwrap();
    };
    for i in 0..INSTANCES {
        let cls = Match::exact(&[(Field::InPort, 1), (Field::EthSrc, mac(i))]);
        let goto = Instructions {
            goto: Some(1),
            ..Default::default()
        };
        add(&mut ft, 0, cls, goto);
        let sw = Match::exact(&[(Field::EthDst, mac(i))]);
        add(&mut ft, 1, sw, Instructions::apply(vec![Action::output(2)]));
    }
    ft.publish();
    let pl = ft.current();
    let rows = [rows_of(&pl, 0), rows_of(&pl, 1)];
    for (t, &(addr, bytes, advised)) in rows.iter().enumerate() {
        assert!(
            bytes >= dpdk::HUGE_PAGE_BYTES,
            "table {t}: {bytes} bytes of rows"
        );
        assert!(
            advised,
            "table {t}: rows of {bytes} bytes not in a huge-page mapping"
        );
        assert_eq!(
            addr % dpdk::HUGE_PAGE_BYTES,
            0,
            "table {t}: rows not 2 MiB aligned"
        );
    }
    match dpdk::thp_mode().as_deref() {
        Some("always") | Some("madvise") => {
            for (t, &(addr, bytes, _)) in rows.iter().enumerate() {
                let huge = dpdk::anon_huge_bytes(addr).expect("the rows' mapping is in smaps");
                eprintln!("table {t}: {bytes} bytes of rows, {huge} in huge pages");
                assert!(
                    huge >= dpdk::HUGE_PAGE_BYTES as u64,
                    "table {t}: no huge page backs its {bytes} bytes of rows (AnonHugePages {huge})"
                );
            }
        }
        mode => eprintln!(
            "huge_rows: SKIPPED the AnonHugePages check: transparent huge pages are {mode:?} \
             on this kernel (not always/madvise), so the rows are in 4 KiB pages"
        ),
    }

    // Every entry gone, the levels holding the rows compacted away (a delete alone may
    // leave a level with the entry marked gone until compaction), the versions holding
    // them replaced and reclaimed: their mappings are gone too.
    drop(pl);
    for t in 0..2 {
        ft.apply_flow_mod(FlowModReq::delete(t, Match::any()), Duration::ZERO)
            .unwrap();
    }
    ft.publish();
    ft.compact();
    ft.reclaim();
    assert_eq!(ft.versions_held(), 0);
    for (t, &(addr, _, _)) in rows.iter().enumerate() {
        assert_eq!(
            dpdk::anon_huge_bytes(addr),
            None,
            "table {t}: its rows are still mapped after the version was reclaimed"
        );
    }
}
