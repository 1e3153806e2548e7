//! Byte counters and meters count a whole packet, every segment of a chained
//! mbuf (a guest's TSO frame), not only the first segment: a 3-segment
//! 9000-byte frame counts 9000 bytes in flow and meter stats, and a kbps meter
//! polices it as 9000 bytes.
//!
//! EAL runs with --no-pci, its own --file-prefix, --in-memory and --socket-limit;
//! nothing busy-polls (no workers start), so /tmp/cpu.lock is not needed.

mod common;

use std::time::Duration;

use datapath::Pkt;
use dpdk::{Mbuf, Mempool};
use packet::PacketBuf;
use pipeline::meter::{Band, BandKind};
use pipeline::{
    Action, Emit, FlowModReq, FlowTables, Instructions, Match, MeterFlags, MeterModCommand,
    MeterModReq, PipelineConfig, PortInfo, Sink, OFPTT_ALL,
};

#[derive(Default)]
struct Outputs(u32);

impl Sink<Pkt> for Outputs {
    fn output(&mut self, _port: u32, _queue: Option<u32>, _pkt: &Pkt, _emit: Emit) {
        self.0 += 1;
    }
    fn clone_packet(&mut self, pkt: &Pkt) -> Option<Pkt> {
        pkt.0.deep_copy().map(Pkt)
    }
}

fn udp_frame(len: usize) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00, 0x45, 0];
    f.extend_from_slice(&((len - 14) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    f.extend_from_slice(&[0x13, 0x88, 0x00, 0x35]);
    f.extend_from_slice(&((len - 34) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.resize(len, 0x5a);
    f
}

#[test]
fn a_chained_frame_counts_all_its_bytes_in_flows_and_meters() {
    let eal = common::eal("chained-len-test", "0", "ff-t-dp-chained", 128);
    // 3000 bytes of data per buffer, plus headroom.
    let pool = Mempool::pktmbuf(&eal, "chained", 255, 0, 3000 + 128).expect("mempool");
    let frame = udp_frame(9000);
    let chained = || {
        let mut parts = frame.chunks(3000);
        let mut head = Mbuf::from_bytes(&pool, parts.next().unwrap()).unwrap();
        for p in parts {
            head.chain(Mbuf::from_bytes(&pool, p).unwrap())
                .expect("chain");
        }
        Pkt(head)
    };
    let p = chained();
    assert_eq!((p.data().len(), p.wire_len()), (3000, 9000));
    drop(p);

    let mut tables = FlowTables::new(PipelineConfig {
        n_tables: 2,
        workers: 1,
        ..PipelineConfig::default()
    });
    tables.set_port(PortInfo::new(1));
    tables.set_port(PortInfo::new(2));
    // 1000 kbps with a 100 kbit burst: one 9000-byte frame (72 kbit) fits at once, a
    // second does not; counted by the first segment (24 kbit) four would.
    tables
        .apply_meter_mod(
            &MeterModReq {
                command: MeterModCommand::Add,
                flags: MeterFlags::KBPS | MeterFlags::BURST,
                meter_id: 1,
                bands: vec![Some(Band {
                    kind: BandKind::Drop,
                    rate: 1000,
                    burst: 100,
                })],
            },
            Duration::ZERO,
        )
        .unwrap();
    let mut instructions = Instructions::apply(vec![Action::Output {
        port: 2,
        max_len: 0,
    }]);
    instructions.meter = Some(1);
    tables
        .apply_flow_mod(
            FlowModReq::add(0, 10, Match::any(), instructions),
            Duration::ZERO,
        )
        .unwrap();
    tables.publish();

    let pl = tables.current();
    let mut ctx = tables.worker_context(0);
    ctx.now_ns = 1_000_000_000;
    let mut out = Outputs::default();
    let mut dropped = 0;
    for _ in 0..4 {
        let mut pkt = chained();
        let mut key = packet::extract(pkt.data(), 1);
        if pl
            .process(&mut pkt, &mut key, &mut ctx, &mut out)
            .meter_drop
        {
            dropped += 1;
        }
    }
    assert_eq!(
        (out.0, dropped),
        (1, 3),
        "a kbps meter policed by the first segment only"
    );
    drop(pl);
    let flows = tables
        .flow_counts(
            OFPTT_ALL,
            &Match::any(),
            0,
            0,
            pipeline::ports::OFPP_ANY,
            pipeline::group::OFPG_ANY,
        )
        .unwrap();
    let flow = flows.iter().find(|f| f.entry.priority == 10).unwrap();
    assert_eq!((flow.packets, flow.bytes), (4, 36_000));
    let m = tables.meter_counts(1).unwrap();
    assert_eq!((m.packets_in, m.bytes_in), (4, 36_000));
    assert_eq!(m.bands[0], (3, 27_000));
}
