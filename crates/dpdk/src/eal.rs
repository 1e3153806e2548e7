use std::ffi::CString;
use std::os::raw::c_char;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::error::{last_error, Error};

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// Proof that EAL is initialised: constructors of DPDK objects take `&Eal`.
/// Dropping it runs `rte_eal_cleanup`, which releases hugepage memory; drop it
/// only after every port and mempool is gone.
#[derive(Debug)]
pub struct Eal {
    args: Vec<String>,
}

impl Eal {
    /// Initialises EAL from a full argument list (the first is the program name).
    pub fn init(args: &[String]) -> Result<Eal, Error> {
        if INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(Error::EalAlreadyInitialised);
        }
        let cstrings = args
            .iter()
            .map(|a| CString::new(a.as_str()).map_err(|_| Error::NulInArgument(a.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        // EAL may permute argv, so it gets its own pointer array; the strings
        // stay alive in `cstrings` and are leaked below because EAL keeps
        // pointers into them (e.g. the file prefix) for the life of the process.
        let mut argv: Vec<*mut c_char> =
            cstrings.iter().map(|c| c.as_ptr() as *mut c_char).collect();
        // SAFETY: argv holds argc valid NUL-terminated strings that outlive EAL (leaked below).
        let ret = unsafe { dpdk_sys::rte_eal_init(argv.len() as i32, argv.as_mut_ptr()) };
        std::mem::forget(cstrings);
        std::mem::forget(argv);
        if ret < 0 {
            INITIALISED.store(false, Ordering::SeqCst);
            return Err(Error::EalInit {
                args: args.to_vec(),
                reason: last_error(),
            });
        }
        Ok(Eal {
            args: args.to_vec(),
        })
    }

    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// The lcore that runs the control plane (the first of `-l`).
    pub fn main_lcore(&self) -> u32 {
        // SAFETY: EAL is initialised.
        unsafe { dpdk_sys::rte_get_main_lcore() }
    }

    /// Lcores available to workers, in order.
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut out = Vec::new();
        // SAFETY: EAL is initialised; rte_get_next_lcore walks its lcore table.
        let mut id = unsafe { dpdk_sys::rte_get_next_lcore(u32::MAX, 1, 0) };
        while (id as usize) < dpdk_sys::RTE_MAX_LCORE as usize {
            out.push(id);
            // SAFETY: as above.
            id = unsafe { dpdk_sys::rte_get_next_lcore(id, 1, 0) };
        }
        out
    }

    /// EAL's runtime directory (`/var/run/dpdk/<file-prefix>`).
    pub fn runtime_dir(&self) -> std::path::PathBuf {
        // SAFETY: EAL is initialised; the string is static for its life.
        let dir = unsafe { std::ffi::CStr::from_ptr(dpdk_sys::rte_eal_get_runtime_dir()) };
        std::path::PathBuf::from(dir.to_string_lossy().into_owned())
    }

    pub fn version() -> String {
        // SAFETY: rte_version returns a static string.
        unsafe { std::ffi::CStr::from_ptr(dpdk_sys::rte_version()) }
            .to_string_lossy()
            .into_owned()
    }
}

/// Devices being closed right now plus, for good, one per [`forbid_cleanup`] call: while
/// non-zero, dropping the [`Eal`] skips `rte_eal_cleanup`.
static CLEANUP_BLOCKERS: AtomicUsize = AtomicUsize::new(0);

/// Marks EAL as not safe to clean up for the rest of the process: something (a port a
/// stalled worker may still poll, a buffer pool a leaked port may still use) was left open.
/// `rte_eal_cleanup` would close every remaining device itself, under its user or behind
/// the same blocked driver call; with `--in-memory` skipping it leaves nothing behind.
pub fn forbid_cleanup() {
    CLEANUP_BLOCKERS.fetch_add(1, Ordering::SeqCst);
}

/// Held around a device close: a close that blocks (a vhost-user port behind a stalled peer)
/// makes cleanup block too, so cleanup is skipped while one runs.
pub(crate) struct ClosingDevice(());

impl ClosingDevice {
    pub(crate) fn begin() -> ClosingDevice {
        CLEANUP_BLOCKERS.fetch_add(1, Ordering::SeqCst);
        ClosingDevice(())
    }
}

impl Drop for ClosingDevice {
    fn drop(&mut self) {
        CLEANUP_BLOCKERS.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        let runtime_dir = self.runtime_dir();
        let blockers = CLEANUP_BLOCKERS.load(Ordering::SeqCst);
        if blockers == 0 {
            // SAFETY: the owner drops ports and mempools before the Eal token, so
            // nothing uses EAL memory after cleanup; no device close is in progress.
            unsafe {
                dpdk_sys::rte_eal_cleanup();
            }
        } else {
            eprintln!(
                "EAL cleanup skipped: a device is still being closed or was left open ({blockers})"
            );
        }
        // The runtime directory belongs to this process's file prefix; after
        // cleanup it holds at most the telemetry socket. Leave nothing behind.
        let _ = std::fs::remove_dir_all(runtime_dir);
    }
}
