//! Packets the bench and the instruction-count example both track (one copy, so the two
//! figures measure the same traffic).

use conntrack::packet::TcpSegment;
use conntrack::{Packet, L4};

pub const CONNS: u32 = 65_536;

pub fn udp(src: u32, sport: u16, dst: u32, dport: u16) -> Packet {
    Packet {
        v6: false,
        src: u128::from(src),
        dst: u128::from(dst),
        proto: 17,
        l4: L4::Udp { sport, dport },
    }
}

#[allow(clippy::too_many_arguments)] // a packet literal, argument per header field
pub fn tcp(
    src: u32,
    sport: u16,
    dst: u32,
    dport: u16,
    flags: u8,
    seq: u32,
    ack: u32,
    len: u32,
) -> Packet {
    Packet {
        v6: false,
        src: u128::from(src),
        dst: u128::from(dst),
        proto: 6,
        l4: L4::Tcp(TcpSegment {
            sport,
            dport,
            seq,
            ack,
            flags,
            window: 65535,
            payload_len: len,
            ..TcpSegment::default()
        }),
    }
}
