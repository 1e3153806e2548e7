//! Ferroflow's connection tracker (what `ct()` and the `ct_*` fields are built on).
//!
//! A [`Tracker`] is one shard: a fixed-capacity table owned by one datapath worker, used
//! with `&mut self` and no lock. Every allocation happens in [`Tracker::new`]; tracking a
//! packet allocates nothing and costs a bounded amount of work (one hash probe sequence, a
//! bounded NAT search, at most [`Config::expire_per_call`] expiries per
//! [`Tracker::expire`]). Workers shard connections with [`shard_of`], a hash that gives
//! both directions of a connection the same shard (NAT picks translations whose reply
//! direction stays on the shard: see [`nat`]).
//!
//! Semantics follow Linux's nf_conntrack (verdicts checked against the kernel by
//! `tests/kernel_diff.rs`) with Open vSwitch's commit model: a packet is tracked without
//! changing the table unless the action commits it.

pub mod nat;
pub mod packet;
mod table;
mod tcp;

pub use nat::{NatKind, NatRange};
pub use packet::{parse_ethernet, parse_ip, Addr, Packet, L4};
pub use table::{
    shard_of, shard_of_frame, ConnInfo, CtResult, CtState, Rewrite, Stats, TrackOptions, Tracker,
    Tuple, ZoneStats, MAX_ZONES,
};
pub use tcp::{TcpState, TcpTimeouts};

/// Everything that can go wrong in this crate: packet parsing (each makes the packet
/// `+inv` and is counted) and configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("packet truncated in the {0}")]
    Truncated(&'static str),
    #[error("bad {0}")]
    BadHeader(&'static str),
    #[error("bad checksum")]
    BadChecksum,
    /// IP fragments are not reassembled (Linux reassembles before conntrack; we do not).
    #[error("IP fragment")]
    Fragment,
    #[error("not IP (ethertype {0:#06x})")]
    NotIp(u16),
    #[error("conntrack capacity {0} is out of range (1 to 2^26 connections)")]
    Capacity(usize),
    #[error("shard {index} of {count} shards does not exist")]
    Shard { index: usize, count: usize },
    #[error("bad NAT range: {0}")]
    NatRange(&'static str),
}

/// Timeouts in milliseconds; the defaults are Linux's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp: TcpTimeouts,
    /// UDP before a reply is seen.
    pub udp_ms: u64,
    /// UDP once both directions have been seen.
    pub udp_stream_ms: u64,
    pub icmp_ms: u64,
    /// Other IP protocols.
    pub other_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp: TcpTimeouts::default(),
            udp_ms: 30_000,
            udp_stream_ms: 120_000,
            icmp_ms: 30_000,
            other_ms: 600_000,
        }
    }
}

/// A tracker shard's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Connections this shard holds; a full shard refuses new connections (counted in
    /// [`Stats::table_full`]) while existing ones continue.
    pub capacity: usize,
    /// This shard's index and the number of shards (workers).
    pub shard: usize,
    pub shards: usize,
    pub timeouts: Timeouts,
    /// Pick up TCP connections in the middle (Linux's `nf_conntrack_tcp_loose`, default on).
    pub tcp_loose: bool,
    /// Only out-of-window RSTs are invalid (Linux's `nf_conntrack_tcp_be_liberal`, default off).
    pub tcp_be_liberal: bool,
    /// Verify L4 checksums (a bad one is `+inv`, as Linux does on input).
    pub verify_checksums: bool,
    /// The most expired entries one [`Tracker::expire`] call frees (and the most timer
    /// slots it looks at): the bound on the time a worker spends expiring per burst.
    pub expire_per_call: usize,
    /// The most NAT translations tried for one new connection (the bound on its cost).
    pub nat_attempts: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            capacity: 65_536,
            shard: 0,
            shards: 1,
            timeouts: Timeouts::default(),
            tcp_loose: true,
            tcp_be_liberal: false,
            verify_checksums: true,
            expire_per_call: 32,
            nat_attempts: 128,
        }
    }
}
