//! The pipeline on the datapath, driven through the Rust API in this process
//! (no OpenFlow agent): a two-table pipeline in the shape of the seed's
//! classifier and switch stages, between kernel hosts behind `net_tap` ports.
//!
//! Table 0 (classifier) admits a frame only from the port its source MAC
//! belongs to and sends it to table 1; table 1 (switch) forwards by
//! destination MAC and FLOODs broadcasts. Spoofed frames are dropped.

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.

use std::path::Path;
use std::time::Duration;

use common::*;
use datapath::Datapath;
use dpdk::Eal;
use ferroflow::datapath_conv::{datapath_settings, port_spec, vlan_policy as policy};
use ferroflow_config::Config;
use openflow::consts::OFPP_FLOOD;
use packet::Field;
use pipeline::{Action, FlowModReq, FlowTables, Instructions, Match, PipelineConfig, PortInfo};

const MACS: [u64; 3] = [
    0x02_00_00_0a_0a_01,
    0x02_00_00_0a_0a_02,
    0x02_00_00_0a_0a_03,
];

fn mac_text(m: u64) -> String {
    let b = m.to_be_bytes();
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[2], b[3], b[4], b[5], b[6], b[7]
    )
}

fn goto(table: u8) -> Instructions {
    Instructions {
        goto: Some(table),
        ..Instructions::default()
    }
}

#[test]
fn classifier_and_switch_tables_forward_allowed_traffic_and_drop_the_rest() {
    let _lock = DatapathLock::take();
    let names = ["ffin-a", "ffin-b", "ffin-c"];
    let mut toml = eal_section("ff-t-inproc");
    for (i, n) in names.iter().enumerate() {
        toml += &format!(
            "\n[[ports]]\nname = \"{n}\"\ndevargs = \"net_tap{i},iface={n}\"\nofport = {}\n",
            i + 1
        );
    }
    let config = Config::parse(&toml, Path::new("inline.toml")).unwrap();
    let eal = Eal::init(&config.eal_args("pipeline-datapath-test")).expect("EAL");
    let workers = eal.worker_lcores().len();

    let mut tables = FlowTables::new(PipelineConfig {
        n_tables: 2,
        workers: workers + 1,
        ..PipelineConfig::default()
    });
    for p in &config.ports {
        let mut info = PortInfo::new(p.ofport);
        info.vlan = policy(&p.vlan_mode());
        tables.set_port(info);
    }
    // The classifier: in_port + eth_src, one mask for every entry (one hash table).
    for (i, mac) in MACS.iter().enumerate() {
        let m = Match::exact(&[
            (Field::InPort, i as u128 + 1),
            (Field::EthSrc, u128::from(*mac)),
        ]);
        tables
            .apply_flow_mod(FlowModReq::add(0, 100, m, goto(1)), Duration::ZERO)
            .unwrap();
    }
    // The switch: eth_dst to its port; broadcast floods.
    for (i, mac) in MACS.iter().enumerate() {
        let m = Match::exact(&[(Field::EthDst, u128::from(*mac))]);
        let out = Instructions::apply(vec![Action::output(i as u32 + 1)]);
        tables
            .apply_flow_mod(FlowModReq::add(1, 100, m, out), Duration::ZERO)
            .unwrap();
    }
    let bcast = Match::exact(&[(Field::EthDst, 0xffff_ffff_ffff)]);
    tables
        .apply_flow_mod(
            FlowModReq::add(
                1,
                100,
                bcast,
                Instructions::apply(vec![Action::output(OFPP_FLOOD)]),
            ),
            Duration::ZERO,
        )
        .unwrap();
    tables.publish();

    let specs: Vec<_> = config.ports.iter().map(|p| port_spec(p).unwrap()).collect();
    let (mut dp, failed) =
        Datapath::start(&eal, &datapath_settings(&config.datapath), &specs, &tables)
            .expect("datapath");
    assert!(failed.is_empty(), "{failed:?}");
    let hosts: Vec<Netns> = names.iter().map(|n| Netns::new(n)).collect();
    for (i, (ns, ifname)) in hosts.iter().zip(names).enumerate() {
        wait_for_interface(ifname);
        run(&format!(
            "ip link set {ifname} address {}",
            mac_text(MACS[i])
        ));
        ns.adopt(ifname, &format!("198.18.6.{}/24", i + 1));
    }
    let ping = |from: usize, to: usize| {
        hosts[from]
            .exec(&format!("ping -c 2 -i 0.2 -W 1 198.18.6.{}", to + 1))
            .status
            .success()
    };
    assert!(ping(0, 1), "a reaches b through classifier and switch");
    assert!(ping(2, 0), "c reaches a");

    let before = dp.ports();
    let dropped_a = before[0].switch_stats.dropped;
    // a now claims another MAC: the classifier drops everything it sends.
    run(&format!(
        "ip -n ffin-a link set ffin-a address {}",
        mac_text(0x02_00_00_0a_0a_99)
    ));
    assert!(!ping(0, 1), "a spoofed source MAC is dropped");
    let after = dp.ports();
    assert!(
        after[0].switch_stats.dropped >= dropped_a + 2,
        "spoofed frames counted as drops: {:?}",
        after[0].switch_stats
    );
    assert_eq!(
        after[1].switch_stats.rx_packets, before[1].switch_stats.rx_packets,
        "b never answered: nothing reached it"
    );

    // Per-table counters: table 0 looked up every frame; table 1 only admitted ones.
    let counts = tables.table_counts();
    assert!(
        counts[0].lookups > counts[1].lookups && counts[1].lookups > 0,
        "{counts:?}"
    );
    assert!(
        counts[0].matches < counts[0].lookups,
        "the spoofed frames missed table 0: {counts:?}"
    );

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    assert!(dp.halt(deadline).is_empty());
    assert_eq!(dp.stop(deadline), datapath::StopReport::default());
    drop(tables);
    drop(eal);
}
