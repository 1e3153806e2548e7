use std::ffi::{CStr, CString};

use crate::error::{strerror, Error};
use crate::mbuf::MbufBurst;
use crate::{Eal, Mempool};

/// An ethdev made from devargs at runtime (hot-plug through `rte_dev_probe`).
///
/// The handle is cheap and does not own the device: [`Port::remove`] detaches
/// it. Rx/tx happen through [`RxQueue`]/[`TxQueue`], which are handed out once
/// by [`Port::configure`] so that each queue has exactly one polling thread.
#[derive(Debug, Clone)]
pub struct Port {
    id: u16,
    name: String,
    devargs: String,
}

/// Queue sizes and counts for [`Port::configure`].
#[derive(Debug, Clone, Copy)]
pub struct PortConfig {
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_descriptors: u16,
    pub tx_descriptors: u16,
}

#[derive(Debug, Clone)]
pub struct PortInfo {
    pub driver: String,
    pub max_rx_queues: u16,
    pub max_tx_queues: u16,
    pub mac: [u8; 6],
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStatus {
    pub up: bool,
    pub speed_mbps: u32,
}

/// The generic ethdev counters (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Packets the NIC dropped because no rx descriptor was free.
    pub rx_missed: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_nombuf: u64,
}

/// One driver-specific counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Xstat {
    pub name: String,
    pub value: u64,
}

fn check(ret: i32) -> Result<(), String> {
    if ret < 0 {
        Err(strerror(ret))
    } else {
        Ok(())
    }
}

impl Port {
    /// Creates the device that `devargs` describes (`net_tap0,iface=x`,
    /// `net_vhost0,iface=/run/vm1.sock,client=1`, a PCI address, ...) and finds
    /// its ethdev, named as the devargs' first field.
    pub fn probe(_eal: &Eal, devargs: &str) -> Result<Port, Error> {
        let name = devargs
            .split(',')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let c = CString::new(devargs).map_err(|_| Error::NulInArgument(devargs.to_owned()))?;
        // SAFETY: EAL is initialised and c is a valid C string.
        let ret = unsafe { dpdk_sys::rte_dev_probe(c.as_ptr()) };
        if ret < 0 {
            return Err(Error::DevProbe {
                devargs: devargs.to_owned(),
                reason: strerror(ret),
            });
        }
        let cname = CString::new(name.as_str()).map_err(|_| Error::NulInArgument(name.clone()))?;
        let mut id = 0u16;
        // SAFETY: cname is a valid C string and id a valid out pointer.
        let ret = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        if ret < 0 {
            return Err(Error::PortNotFound {
                name,
                devargs: devargs.to_owned(),
            });
        }
        Ok(Port {
            id,
            name,
            devargs: devargs.to_owned(),
        })
    }

    pub fn id(&self) -> u16 {
        self.id
    }

    /// The ethdev name (`net_tap0`, `0000:00:03.0`).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn devargs(&self) -> &str {
        &self.devargs
    }

    fn raw_info(&self) -> Result<dpdk_sys::rte_eth_dev_info, Error> {
        let mut info = dpdk_sys::rte_eth_dev_info::default();
        // SAFETY: info is a valid out struct; the port exists.
        check(unsafe { dpdk_sys::rte_eth_dev_info_get(self.id, &mut info) }).map_err(|reason| {
            Error::DevInfo {
                port: self.name.clone(),
                reason,
            }
        })?;
        Ok(info)
    }

    pub fn info(&self) -> Result<PortInfo, Error> {
        let info = self.raw_info()?;
        let driver = if info.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: driver_name is a static NUL-terminated string owned by the driver.
            unsafe { CStr::from_ptr(info.driver_name) }
                .to_string_lossy()
                .into_owned()
        };
        let mut mac = dpdk_sys::rte_ether_addr::default();
        // SAFETY: mac is a valid out struct. A failure leaves it zero, which is fine for display.
        unsafe { dpdk_sys::rte_eth_macaddr_get(self.id, &mut mac) };
        Ok(PortInfo {
            driver,
            max_rx_queues: info.max_rx_queues,
            max_tx_queues: info.max_tx_queues,
            mac: mac.addr_bytes,
        })
    }

    /// Sets up queues with rx buffers from `pool` and hands out the queues.
    /// Fails before touching the device if it has too few queues.
    pub fn configure(
        &self,
        cfg: &PortConfig,
        pool: &Mempool,
    ) -> Result<(Vec<RxQueue>, Vec<TxQueue>), Error> {
        let info = self.raw_info()?;
        if cfg.rx_queues > info.max_rx_queues {
            return Err(Error::TooFewQueues {
                port: self.name.clone(),
                what: "rx",
                wanted: cfg.rx_queues,
                max: info.max_rx_queues,
            });
        }
        if cfg.tx_queues > info.max_tx_queues {
            return Err(Error::TooFewQueues {
                port: self.name.clone(),
                what: "tx",
                wanted: cfg.tx_queues,
                max: info.max_tx_queues,
            });
        }
        let mut conf = dpdk_sys::rte_eth_conf::default();
        // What the driver can do of checksums, TSO and chained mbufs: a guest's TSO
        // frame then leaves whole where the driver segments it (net_tap, a vhost
        // guest that negotiated TSO) and crate::offload segments it elsewhere.
        let tx_offloads = info.tx_offload_capa & crate::offload::WANTED_TX_OFFLOADS;
        conf.txmode.offloads = tx_offloads;
        // SAFETY: the port exists and is stopped; conf is a valid configuration.
        check(unsafe {
            dpdk_sys::rte_eth_dev_configure(self.id, cfg.rx_queues, cfg.tx_queues, &conf)
        })
        .map_err(|reason| Error::Configure {
            port: self.name.clone(),
            reason,
        })?;
        let mut rx_desc = cfg.rx_descriptors;
        let mut tx_desc = cfg.tx_descriptors;
        // SAFETY: valid pointers to our descriptor counts; the driver clamps them to its limits.
        check(unsafe {
            dpdk_sys::rte_eth_dev_adjust_nb_rx_tx_desc(self.id, &mut rx_desc, &mut tx_desc)
        })
        .map_err(|reason| Error::Configure {
            port: self.name.clone(),
            reason,
        })?;
        // SAFETY: the port exists.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(self.id) };
        // SOCKET_ID_ANY (-1) is a macro bindgen cannot see.
        let socket = if socket < 0 { -1 } else { socket };
        for q in 0..cfg.rx_queues {
            // SAFETY: configured port, queue index in range, default queue conf (NULL), live pool.
            check(unsafe {
                dpdk_sys::rte_eth_rx_queue_setup(
                    self.id,
                    q,
                    rx_desc,
                    socket as u32,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            })
            .map_err(|reason| Error::RxQueueSetup {
                port: self.name.clone(),
                queue: q,
                reason,
            })?;
        }
        for q in 0..cfg.tx_queues {
            // SAFETY: configured port, queue index in range, default queue conf (NULL).
            check(unsafe {
                dpdk_sys::rte_eth_tx_queue_setup(
                    self.id,
                    q,
                    tx_desc,
                    socket as u32,
                    std::ptr::null(),
                )
            })
            .map_err(|reason| Error::TxQueueSetup {
                port: self.name.clone(),
                queue: q,
                reason,
            })?;
        }
        let rx = (0..cfg.rx_queues)
            .map(|queue| RxQueue {
                port: self.id,
                queue,
            })
            .collect();
        let vhost = !info.driver_name.is_null()
            // SAFETY: driver_name is a static NUL-terminated string owned by the driver.
            && unsafe { CStr::from_ptr(info.driver_name) }.to_bytes() == b"net_vhost";
        let tx = (0..cfg.tx_queues)
            .map(|queue| TxQueue {
                port: self.id,
                queue,
                offloads: tx_offloads,
                vhost,
                pool: pool.as_ptr(),
                drops: Default::default(),
            })
            .collect();
        Ok((rx, tx))
    }

    pub fn start(&self) -> Result<(), Error> {
        // SAFETY: the port is configured.
        check(unsafe { dpdk_sys::rte_eth_dev_start(self.id) }).map_err(|reason| Error::Start {
            port: self.name.clone(),
            reason,
        })?;
        // Switch ports see every frame; drivers without the notion return
        // ENOTSUP, which is fine.
        // SAFETY: the port is started.
        unsafe { dpdk_sys::rte_eth_promiscuous_enable(self.id) };
        Ok(())
    }

    pub fn stop(&self) -> Result<(), Error> {
        // SAFETY: no worker polls the port any more (the caller stopped them).
        check(unsafe { dpdk_sys::rte_eth_dev_stop(self.id) }).map_err(|reason| Error::Stop {
            port: self.name.clone(),
            reason,
        })
    }

    /// Closes the ethdev and detaches its device (the reverse of [`Port::probe`]).
    pub fn remove(self) -> Result<(), Error> {
        let _closing = crate::eal::ClosingDevice::begin();
        let info = self.raw_info()?;
        // SAFETY: the port is stopped; closing releases its queues.
        unsafe { dpdk_sys::rte_eth_dev_close(self.id) };
        if info.device.is_null() {
            return Ok(());
        }
        // SAFETY: device came from dev_info of this port and is still registered.
        check(unsafe { dpdk_sys::rte_dev_remove(info.device) }).map_err(|reason| Error::Remove {
            port: self.name.clone(),
            reason,
        })
    }

    pub fn link(&self) -> LinkStatus {
        let mut link = dpdk_sys::rte_eth_link::default();
        // SAFETY: link is a valid out struct; a failure leaves it zero (down).
        unsafe { dpdk_sys::rte_eth_link_get_nowait(self.id, &mut link) };
        LinkStatus {
            up: link.link_status() != 0,
            speed_mbps: link.link_speed,
        }
    }

    pub fn stats(&self) -> Result<PortStats, Error> {
        let mut s = dpdk_sys::rte_eth_stats::default();
        // SAFETY: s is a valid out struct.
        check(unsafe { dpdk_sys::rte_eth_stats_get(self.id, &mut s) }).map_err(|reason| {
            Error::Stats {
                port: self.name.clone(),
                reason,
            }
        })?;
        Ok(PortStats {
            rx_packets: s.ipackets,
            tx_packets: s.opackets,
            rx_bytes: s.ibytes,
            tx_bytes: s.obytes,
            rx_missed: s.imissed,
            rx_errors: s.ierrors,
            tx_errors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    pub fn xstats(&self) -> Result<Vec<Xstat>, Error> {
        let err = |ret: i32| Error::Stats {
            port: self.name.clone(),
            reason: strerror(ret),
        };
        // SAFETY: a NULL array asks for the count only.
        let n = unsafe { dpdk_sys::rte_eth_xstats_get_names(self.id, std::ptr::null_mut(), 0) };
        if n < 0 {
            return Err(err(n));
        }
        let mut names = vec![dpdk_sys::rte_eth_xstat_name::default(); n as usize];
        let mut values = vec![dpdk_sys::rte_eth_xstat::default(); n as usize];
        // SAFETY: both arrays hold n entries.
        let got_names =
            unsafe { dpdk_sys::rte_eth_xstats_get_names(self.id, names.as_mut_ptr(), n as u32) };
        // SAFETY: as above.
        let got = unsafe { dpdk_sys::rte_eth_xstats_get(self.id, values.as_mut_ptr(), n as u32) };
        if got_names < 0 {
            return Err(err(got_names));
        }
        if got < 0 {
            return Err(err(got));
        }
        let count = (got as usize).min(got_names as usize).min(n as usize);
        Ok(values[..count]
            .iter()
            .filter_map(|v| {
                let name = names.get(v.id as usize)?;
                // SAFETY: xstat names are NUL-terminated within their fixed array.
                let name = unsafe { CStr::from_ptr(name.name.as_ptr()) }
                    .to_string_lossy()
                    .into_owned();
                Some(Xstat {
                    name,
                    value: v.value,
                })
            })
            .collect())
    }
}

/// An rx queue: exactly one thread polls it.
#[derive(Debug)]
pub struct RxQueue {
    port: u16,
    queue: u16,
}

/// A tx queue: exactly one thread sends on it.
#[derive(Debug)]
pub struct TxQueue {
    pub(crate) port: u16,
    queue: u16,
    /// The tx offloads configured on the port (`RTE_ETH_TX_OFFLOAD_*`).
    pub(crate) offloads: u64,
    /// A net_vhost port: TSO depends on what its guest negotiated.
    pub(crate) vhost: bool,
    /// Buffers for segments made in software (the port's rx pool, which
    /// outlives its queues).
    pub(crate) pool: *mut dpdk_sys::rte_mempool,
    pub(crate) drops: crate::offload::TxDrops,
}

impl RxQueue {
    pub fn port_id(&self) -> u16 {
        self.port
    }

    pub fn queue_id(&self) -> u16 {
        self.queue
    }

    /// Fills the empty slots of `burst`; returns how many packets arrived.
    #[inline]
    pub fn rx_burst(&mut self, burst: &mut MbufBurst) -> usize {
        let room = burst.ptrs.len() - burst.len;
        // SAFETY: the queue is polled only by its owner (&mut self); the slots
        // past len are free and receive owned mbufs.
        let n = unsafe {
            dpdk_sys::ff_eth_rx_burst(
                self.port,
                self.queue,
                burst.ptrs.as_mut_ptr().add(burst.len),
                room as u16,
            )
        } as usize;
        burst.len += n;
        n
    }
}

impl TxQueue {
    pub fn port_id(&self) -> u16 {
        self.port
    }

    pub fn queue_id(&self) -> u16 {
        self.queue
    }

    /// Hands the burst to the driver; mbufs it could not take stay in the burst.
    /// A burst with a TSO frame goes whole through the segmenting path, which
    /// leaves nothing behind and records what it dropped ([`TxQueue::take_drops`]).
    #[inline]
    pub fn tx_burst(&mut self, burst: &mut MbufBurst) -> usize {
        if burst.len == 0 {
            return 0;
        }
        if burst.oversize {
            return self.tx_burst_segmenting(burst);
        }
        // SAFETY: the queue has one sender (&mut self); the driver takes ownership of the
        // first n mbufs, which consume_front then forgets.
        let n = unsafe {
            dpdk_sys::ff_eth_tx_burst(
                self.port,
                self.queue,
                burst.ptrs.as_mut_ptr(),
                burst.len as u16,
            )
        } as usize;
        burst.consume_front(n);
        n
    }
}

// SAFETY: queue handles are indices; moving one to its polling lcore is the point.
unsafe impl Send for RxQueue {}
// SAFETY: as above.
unsafe impl Send for TxQueue {}
