use std::ffi::CString;
use std::ptr::NonNull;

use crate::error::{last_error, Error};
use crate::Eal;

/// A pool of packet buffers. Ports take their rx buffers from one; it must
/// outlive every port configured with it and every mbuf taken from it.
#[derive(Debug)]
pub struct Mempool {
    raw: NonNull<dpdk_sys::rte_mempool>,
    name: String,
}

// SAFETY: DPDK mempools are multi-producer/multi-consumer safe; the handle is a pointer.
unsafe impl Send for Mempool {}
// SAFETY: as above: all operations on a mempool are thread-safe.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// A pool of `count` mbufs with `data_room` bytes each (headroom included),
    /// with a per-lcore cache so workers rarely touch the shared ring.
    pub fn pktmbuf(
        _eal: &Eal,
        name: &str,
        count: u32,
        cache: u32,
        data_room: u16,
    ) -> Result<Mempool, Error> {
        let cname = CString::new(name).map_err(|_| Error::NulInArgument(name.to_owned()))?;
        // SAFETY: EAL is initialised (the token proves it); cname is a valid C string.
        let raw = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                count,
                cache,
                0,
                data_room,
                dpdk_sys::rte_socket_id() as i32,
            )
        };
        NonNull::new(raw)
            .map(|raw| Mempool {
                raw,
                name: name.to_owned(),
            })
            .ok_or_else(|| Error::MempoolCreate {
                name: name.to_owned(),
                count,
                reason: last_error(),
            })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn as_ptr(&self) -> *mut dpdk_sys::rte_mempool {
        self.raw.as_ptr()
    }

    /// Mbufs free in the pool (per-lcore caches included).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is alive for &self.
        unsafe { dpdk_sys::ff_mempool_avail_count(self.raw.as_ptr()) }
    }

    /// Mbufs held by ports, queues and the pipeline.
    pub fn in_use(&self) -> u32 {
        // SAFETY: the pool is alive for &self.
        unsafe { dpdk_sys::ff_mempool_in_use_count(self.raw.as_ptr()) }
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // SAFETY: the owner drops the pool after the ports that used it are closed.
        unsafe { dpdk_sys::rte_mempool_free(self.raw.as_ptr()) }
    }
}
