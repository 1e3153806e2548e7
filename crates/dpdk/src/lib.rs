//! The safe layer over DPDK. Together with `dpdk-sys` this is the only place in
//! Ferroflow with `unsafe`; every block says why it holds.
//!
//! EAL is process-global state, so [`Eal`] is a token: holding one proves EAL is
//! initialised, and everything that needs EAL takes `&Eal`.

mod eal;
mod error;
mod huge;
mod lcore;
mod mbuf;
mod mempool;
mod offload;
mod port;

pub use eal::{forbid_cleanup, Eal};
pub use error::{strerror, Error};
pub use huge::{anon_huge_bytes, thp_mode, HugeSlice, HugeTable, HUGE_PAGE_BYTES};
pub use lcore::{lcore_id, rdtsc, tsc_hz, LaunchedWorker};
pub use mbuf::{prefetch, Mbuf, MbufBurst, BURST_SIZE};
pub use mempool::Mempool;
pub use offload::TxDrops;
pub use port::{LinkStatus, Port, PortConfig, PortInfo, PortStats, RxQueue, TxQueue, Xstat};
