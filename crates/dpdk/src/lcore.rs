use std::os::raw::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{strerror, Error};
use crate::Eal;

type WorkerFn = Box<dyn FnOnce() -> i32 + Send + 'static>;

/// A closure running on a worker lcore; [`LaunchedWorker::wait`] joins it.
#[derive(Debug)]
pub struct LaunchedWorker {
    lcore: u32,
}

unsafe extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: arg is the Box<WorkerFn> leaked by launch, reclaimed exactly once here.
    let f: Box<WorkerFn> = unsafe { Box::from_raw(arg as *mut WorkerFn) };
    // A panic must not unwind into C: report it as a failed worker.
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(-1)
}

impl LaunchedWorker {
    /// Runs `f` on `lcore` (a worker lcore of `eal`, idle).
    pub fn launch(
        _eal: &Eal,
        lcore: u32,
        f: impl FnOnce() -> i32 + Send + 'static,
    ) -> Result<Self, Error> {
        let boxed: Box<WorkerFn> = Box::new(Box::new(f));
        let arg = Box::into_raw(boxed) as *mut c_void;
        // SAFETY: trampoline matches lcore_function_t and takes ownership of arg.
        let ret = unsafe { dpdk_sys::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
        if ret < 0 {
            // SAFETY: the launch failed, so the closure was not handed over; reclaim it.
            drop(unsafe { Box::from_raw(arg as *mut WorkerFn) });
            return Err(Error::Launch {
                lcore,
                reason: strerror(ret),
            });
        }
        Ok(LaunchedWorker { lcore })
    }

    pub fn lcore(&self) -> u32 {
        self.lcore
    }

    /// Waits for the closure to return and gives its result (-1 if it panicked).
    pub fn wait(self) -> i32 {
        // SAFETY: the lcore was launched by us; waiting is always valid.
        unsafe { dpdk_sys::rte_eal_wait_lcore(self.lcore) }
    }
}

/// The calling thread's lcore id (`u32::MAX` off EAL threads).
#[inline]
pub fn lcore_id() -> u32 {
    // SAFETY: reads a thread-local.
    unsafe { dpdk_sys::ff_lcore_id() }
}

/// The time-stamp counter: cheap cycle timestamps for the worker loop.
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: reads the TSC.
    unsafe { dpdk_sys::ff_rdtsc() }
}

/// TSC ticks per second, as EAL measured them.
pub fn tsc_hz() -> u64 {
    // SAFETY: EAL calibrated the TSC at init; before that this returns 0.
    unsafe { dpdk_sys::rte_get_tsc_hz() }
}
