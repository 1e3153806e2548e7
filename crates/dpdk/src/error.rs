use std::ffi::CStr;

/// Every way the DPDK layer can fail, one variant per failure site, each
/// naming the object involved and carrying DPDK's own reason.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `rte_eal_init` refused the argument list (bad option, no hugepages, a
    /// file prefix in use, ...). DPDK also logs the detail to stderr.
    #[error("EAL initialisation failed with arguments {args:?}: {reason}")]
    EalInit { args: Vec<String>, reason: String },
    /// EAL can be initialised once per process.
    #[error("EAL is already initialised in this process")]
    EalAlreadyInitialised,
    /// An argument contained a NUL byte and cannot be passed to C.
    #[error("argument {0:?} contains a NUL byte")]
    NulInArgument(String),
    #[error("cannot create mempool {name:?} of {count} mbufs: {reason}")]
    MempoolCreate {
        name: String,
        count: u32,
        reason: String,
    },
    /// `rte_dev_probe` rejected the devargs: an unknown driver, a bad key, a
    /// socket path it cannot use, a duplicate name.
    #[error("DPDK rejected devargs {devargs:?}: {reason}")]
    DevProbe { devargs: String, reason: String },
    /// Probe succeeded but no ethdev of that name appeared.
    #[error("no ethdev named {name:?} after probing {devargs:?}")]
    PortNotFound { name: String, devargs: String },
    #[error("cannot read device info of port {port}: {reason}")]
    DevInfo { port: String, reason: String },
    #[error("port {port}: needs {wanted} {what} queues but the device supports {max}")]
    TooFewQueues {
        port: String,
        what: &'static str,
        wanted: u16,
        max: u16,
    },
    #[error("cannot configure port {port}: {reason}")]
    Configure { port: String, reason: String },
    #[error("cannot set up rx queue {queue} of port {port}: {reason}")]
    RxQueueSetup {
        port: String,
        queue: u16,
        reason: String,
    },
    #[error("cannot set up tx queue {queue} of port {port}: {reason}")]
    TxQueueSetup {
        port: String,
        queue: u16,
        reason: String,
    },
    #[error("cannot start port {port}: {reason}")]
    Start { port: String, reason: String },
    #[error("cannot stop port {port}: {reason}")]
    Stop { port: String, reason: String },
    #[error("cannot remove device of port {port}: {reason}")]
    Remove { port: String, reason: String },
    #[error("cannot read statistics of port {port}: {reason}")]
    Stats { port: String, reason: String },
    #[error("lcore {lcore} cannot run a worker: {reason}")]
    Launch { lcore: u32, reason: String },
}

/// DPDK's text for an error number (negative return codes are accepted too).
pub fn strerror(code: i32) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local NUL-terminated string.
    unsafe { CStr::from_ptr(dpdk_sys::rte_strerror(code.abs())) }
        .to_string_lossy()
        .into_owned()
}

/// The reason for the last failure of a DPDK call that reports through `rte_errno`.
pub(crate) fn last_error() -> String {
    // SAFETY: reads the calling thread's rte_errno.
    strerror(unsafe { dpdk_sys::ff_errno() })
}
