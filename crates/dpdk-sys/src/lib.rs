//! Raw DPDK bindings, generated at build time against the system DPDK (22.11 from
//! Debian's `libdpdk-dev`, found through `pkg-config libdpdk`).
//!
//! DPDK's hot-path functions (`rte_eth_rx_burst`, `rte_pktmbuf_alloc`, ...) are
//! `static inline` in its headers and have no symbol; `src/inline.c` re-exports
//! them as `ff_*` functions. Everything here is `unsafe` to call; the safe layer
//! is the `dpdk` crate.
#![allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code
)]
#![allow(clippy::all)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
