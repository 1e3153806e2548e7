use std::ptr::{self, NonNull};

use dpdk_sys::rte_mbuf;

use crate::Mempool;

/// Packets per rx/tx call: DPDK's customary burst.
pub const BURST_SIZE: usize = 32;

/// An owned packet buffer, freed on drop.
///
/// An mbuf may be shared ([`Mbuf::share`], the DPDK way to flood one packet to
/// several ports without copying). Shared mbufs are read-only: every method that
/// writes first makes the buffer private ([`Mbuf::make_writable`]), copying it
/// if another owner still holds it.
#[derive(Debug)]
#[repr(transparent)]
pub struct Mbuf(NonNull<rte_mbuf>);

// SAFETY: an mbuf is plain memory owned by exactly one Mbuf (or by several that only read it).
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `raw` must be a valid mbuf that nobody else frees.
    pub(crate) unsafe fn from_raw(raw: *mut rte_mbuf) -> Option<Mbuf> {
        NonNull::new(raw).map(Mbuf)
    }

    #[cfg(test)]
    pub(crate) fn as_raw(&self) -> *mut rte_mbuf {
        self.0.as_ptr()
    }

    pub(crate) fn into_raw(self) -> *mut rte_mbuf {
        let raw = self.0.as_ptr();
        std::mem::forget(self);
        raw
    }

    /// A fresh, empty mbuf from the pool, or `None` when the pool is exhausted.
    pub fn alloc(pool: &Mempool) -> Option<Mbuf> {
        // SAFETY: the pool is alive; the returned mbuf is ours.
        unsafe { Mbuf::from_raw(dpdk_sys::ff_pktmbuf_alloc(pool.as_ptr())) }
    }

    /// A new mbuf holding a copy of `bytes`, for packets the control plane makes.
    pub fn from_bytes(pool: &Mempool, bytes: &[u8]) -> Option<Mbuf> {
        let m = Mbuf::alloc(pool)?;
        let len = u16::try_from(bytes.len()).ok()?;
        // SAFETY: the mbuf is private; append returns NULL when the tailroom is too small.
        let dst = unsafe { dpdk_sys::ff_pktmbuf_append(m.0.as_ptr(), len) };
        if dst.is_null() {
            return None;
        }
        // SAFETY: dst points to `len` writable bytes inside the mbuf.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), dst as *mut u8, bytes.len()) };
        Some(m)
    }

    /// The first segment's bytes: all of the packet for every PMD Ferroflow
    /// configures (no scatter rx).
    #[inline]
    pub fn data(&self) -> &[u8] {
        // SAFETY: mtod points to data_len initialised bytes owned by this mbuf.
        unsafe {
            let m = self.0.as_ptr();
            std::slice::from_raw_parts(mtod(m), usize::from((*m).data_len))
        }
    }

    /// Writable bytes, or `None` if the mbuf was shared and no copy could be made.
    #[inline]
    pub fn data_mut(&mut self) -> Option<&mut [u8]> {
        if !self.make_writable() {
            return None;
        }
        // SAFETY: the mbuf is private (refcnt 1), so no other reference to its data exists.
        Some(unsafe {
            let m = self.0.as_ptr();
            std::slice::from_raw_parts_mut(mtod(m), usize::from((*m).data_len))
        })
    }

    #[inline]
    pub fn len(&self) -> usize {
        // SAFETY: reads a field of a valid mbuf.
        unsafe { (*self.0.as_ptr()).pkt_len as usize }
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `tail` (and its own segments) to this packet's chain, as a PMD
    /// hands over a frame larger than one buffer. `Err(tail)` when the chain
    /// would exceed DPDK's segment limit.
    pub fn chain(&mut self, tail: Mbuf) -> Result<(), Mbuf> {
        let raw = tail.0.as_ptr();
        // SAFETY: both mbufs are valid; on success the head owns the tail (so it
        // must not be freed through `tail` again), on failure nothing changed.
        let rc = unsafe { dpdk_sys::ff_pktmbuf_chain(self.0.as_ptr(), raw) };
        if rc == 0 {
            std::mem::forget(tail);
            Ok(())
        } else {
            Err(tail)
        }
    }

    /// `rte_pktmbuf_headroom`: the data offset in the buffer, read here, not in C.
    #[inline]
    pub fn headroom(&self) -> usize {
        // SAFETY: reads a field of a valid mbuf.
        unsafe { usize::from((*self.0.as_ptr()).data_off) }
    }

    #[inline]
    pub fn is_shared(&self) -> bool {
        self.refcnt() > 1
    }

    /// `rte_mbuf_refcnt_read`, read here rather than through a C call (once or twice per
    /// packet on the encapsulation and edit paths): a relaxed atomic load, as DPDK's.
    #[inline]
    fn refcnt(&self) -> u16 {
        // SAFETY: the mbuf is valid and `refcnt` is an aligned u16 that DPDK only updates
        // atomically; other owners may update it concurrently, hence the atomic load.
        unsafe {
            let p = ptr::addr_of_mut!((*self.0.as_ptr()).refcnt);
            std::sync::atomic::AtomicU16::from_ptr(p).load(std::sync::atomic::Ordering::Relaxed)
        }
    }

    /// Whether the mbuf holds its data in its own buffer: neither attached to another
    /// mbuf's (`rte_pktmbuf_attach`, an indirect mbuf) nor to an external one. Only a
    /// direct mbuf with one owner may have its headroom written without a copy.
    #[inline]
    pub fn is_direct(&self) -> bool {
        const NOT_DIRECT: u64 = dpdk_sys::RTE_MBUF_F_INDIRECT | dpdk_sys::RTE_MBUF_F_EXTERNAL;
        // SAFETY: reads a field of a valid mbuf.
        unsafe { (*self.0.as_ptr()).ol_flags & NOT_DIRECT == 0 }
    }

    /// Whether [`Mbuf::prepend_in_place`] of `n` bytes would succeed: one owner, direct,
    /// `n` bytes of headroom.
    #[inline]
    pub fn can_prepend_in_place(&self, n: usize) -> bool {
        self.headroom() >= n && self.refcnt() == 1 && self.is_direct()
    }

    /// Grows the packet at the front by `n` bytes into its own headroom and returns the
    /// whole first segment, if that needs no copy: this is the buffer's only owner, the
    /// mbuf is direct and it has `n` bytes of headroom. `None`, and nothing changed,
    /// otherwise: unlike [`Mbuf::prepend`] it never copies, so the caller chooses what a
    /// copy is worth (a tunnel output pushes its outer headers here, as OVS does).
    #[inline]
    pub fn prepend_in_place(&mut self, n: usize) -> Option<&mut [u8]> {
        if !self.can_prepend_in_place(n) {
            return None;
        }
        let n = n as u16;
        let m = self.0.as_ptr();
        // SAFETY: the mbuf is valid, direct and ours alone (refcnt 1), so no other owner
        // reads its offsets or data; moving data_off back by at most data_off bytes (its
        // headroom, checked) keeps the data inside the mbuf's own buffer, as
        // rte_pktmbuf_prepend does.
        unsafe {
            (*m).data_off -= n;
            (*m).data_len += n;
            (*m).pkt_len += u32::from(n);
            Some(std::slice::from_raw_parts_mut(
                mtod(m),
                usize::from((*m).data_len),
            ))
        }
    }

    /// The buffer's identity (its address): two owners of one shared buffer have the same.
    #[inline]
    pub fn id(&self) -> usize {
        self.0.as_ptr() as usize
    }

    /// Another owner of the same buffer: both must only be read or transmitted.
    #[inline]
    pub fn share(&self) -> Mbuf {
        let m = self.0.as_ptr();
        // SAFETY: raising the refcnt makes the second owner's free balance out. A
        // free drops every segment's count, so a chain (a guest's TSO frame) has
        // all of them raised, or its tail would go back to the pool under the other owner.
        unsafe {
            if (*m).nb_segs == 1 {
                dpdk_sys::ff_mbuf_refcnt_update(m, 1);
            } else {
                dpdk_sys::ff_pktmbuf_refcnt_update(m, 1);
            }
        }
        Mbuf(self.0)
    }

    /// Makes this owner the only one, copying the packet if it is shared.
    /// False when the copy could not be allocated.
    #[inline]
    pub fn make_writable(&mut self) -> bool {
        if !self.is_shared() {
            return true;
        }
        self.copy_out()
    }

    /// A private copy of the packet (for an output taken before later edits),
    /// from the mbuf's own pool; `None` when the pool is exhausted.
    pub fn deep_copy(&self) -> Option<Mbuf> {
        let m = self.0.as_ptr();
        // SAFETY: m is valid; the copy is a new mbuf that we own.
        unsafe { Mbuf::from_raw(dpdk_sys::rte_pktmbuf_copy(m, (*m).pool, 0, u32::MAX)) }
    }

    #[cold]
    fn copy_out(&mut self) -> bool {
        let m = self.0.as_ptr();
        // SAFETY: m is valid; the copy comes from the mbuf's own pool.
        let copy = unsafe { dpdk_sys::rte_pktmbuf_copy(m, (*m).pool, 0, u32::MAX) };
        match NonNull::new(copy) {
            Some(copy) => {
                // SAFETY: drops our reference to the shared original.
                unsafe { dpdk_sys::ff_pktmbuf_free(m) };
                self.0 = copy;
                true
            }
            None => false,
        }
    }

    /// Grows the packet at the front by `n` bytes (into the headroom) and
    /// returns the whole packet; `None` if the headroom is too small.
    pub fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        if self.can_prepend_in_place(n) {
            return self.prepend_in_place(n);
        }
        let n = u16::try_from(n).ok()?;
        if !self.make_writable() {
            return None;
        }
        // SAFETY: the mbuf is private; prepend returns NULL when the headroom is too small.
        let p = unsafe { dpdk_sys::ff_pktmbuf_prepend(self.0.as_ptr(), n) };
        if p.is_null() {
            return None;
        }
        self.data_mut()
    }

    /// Removes `n` bytes from the front; false if the packet is shorter.
    pub fn adj(&mut self, n: usize) -> bool {
        let Ok(n) = u16::try_from(n) else {
            return false;
        };
        if !self.make_writable() {
            return false;
        }
        // SAFETY: the mbuf is private; adj returns NULL when the first segment is shorter.
        !unsafe { dpdk_sys::ff_pktmbuf_adj(self.0.as_ptr(), n) }.is_null()
    }

    /// The input port DPDK recorded at rx.
    pub fn port(&self) -> u16 {
        // SAFETY: reads a field of a valid mbuf.
        unsafe { (*self.0.as_ptr()).port }
    }

    /// Starts loading the packet's first cache line, a few packets ahead of use.
    #[inline]
    pub fn prefetch(&self) {
        // SAFETY: prefetching any address is harmless; this one is the packet data.
        unsafe { prefetch0(mtod(self.0.as_ptr())) }
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own one reference to a valid mbuf.
        unsafe { dpdk_sys::ff_pktmbuf_free(self.0.as_ptr()) }
    }
}

/// A burst of up to [`BURST_SIZE`] mbufs on the stack: rx fills it, tx drains it,
/// nothing is allocated per packet. Mbufs still inside on drop are freed.
pub struct MbufBurst {
    pub(crate) ptrs: [*mut rte_mbuf; BURST_SIZE],
    pub(crate) len: usize,
    /// Some mbuf in the burst carries more than one MTU of TCP (a guest's
    /// TSO): tx takes the segmenting path (crate::offload).
    pub(crate) oversize: bool,
}

// SAFETY: the burst owns its mbufs, which are Send.
unsafe impl Send for MbufBurst {}

impl Default for MbufBurst {
    fn default() -> Self {
        MbufBurst {
            ptrs: [ptr::null_mut(); BURST_SIZE],
            len: 0,
            oversize: false,
        }
    }
}

impl std::fmt::Debug for MbufBurst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MbufBurst").field("len", &self.len).finish()
    }
}

impl MbufBurst {
    pub fn new() -> Self {
        Self::default()
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == BURST_SIZE
    }

    /// Adds an mbuf; gives it back when the burst is full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        // One test: the slot exists exactly when the burst has room.
        let Some(slot) = self.ptrs.get_mut(self.len) else {
            return Err(m);
        };
        let raw = m.into_raw();
        // SAFETY: raw is a valid mbuf; ol_flags sits in the cache line share() just touched.
        self.oversize |= unsafe { (*raw).ol_flags } & crate::offload::SEGMENTATION_FLAGS != 0;
        *slot = raw;
        self.len += 1;
        Ok(())
    }

    /// Moves the mbufs of `from`, in order, to the end of this burst, as many as there is
    /// room for; the rest stay in `from` (at its front). Returns how many moved. A whole
    /// burst going to one port's tx batch costs a pointer copy per mbuf this way, not a
    /// [`MbufBurst::push`] each.
    #[inline]
    pub fn append(&mut self, from: &mut MbufBurst) -> usize {
        let k = (BURST_SIZE - self.len).min(from.len);
        let mut oversize = false;
        for (dst, &raw) in self.ptrs[self.len..self.len + k]
            .iter_mut()
            .zip(&from.ptrs[..k])
        {
            // SAFETY: the first from.len slots hold valid mbufs owned by `from`;
            // consume_front below hands exactly these k over to this burst.
            oversize |= unsafe { (*raw).ol_flags } & crate::offload::SEGMENTATION_FLAGS != 0;
            *dst = raw;
        }
        self.oversize |= oversize;
        self.len += k;
        from.consume_front(k);
        if from.len == 0 {
            from.oversize = false;
        }
        k
    }

    /// The mbufs in the burst, in order, left in it.
    #[inline]
    pub fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: Mbuf is a transparent NonNull<rte_mbuf> and the first len slots hold
        // valid, non-null mbufs the burst owns; the borrow keeps them there.
        unsafe { std::slice::from_raw_parts(self.ptrs.as_ptr() as *const Mbuf, self.len) }
    }

    /// Takes every mbuf out, in order.
    #[inline]
    pub fn drain(&mut self) -> impl Iterator<Item = Mbuf> + '_ {
        let n = std::mem::take(&mut self.len);
        self.oversize = false;
        // SAFETY: the first n slots hold owned, valid (non-null: `push`, `append` and the
        // rx burst store only mbufs) mbufs; len is reset, so each is handed out exactly
        // once. Unchecked: the walk's loop then has no None to test per packet.
        self.ptrs[..n].iter().map(|&p| unsafe {
            std::hint::assert_unchecked(!p.is_null());
            Mbuf(NonNull::new_unchecked(p))
        })
    }

    /// Prefetches the data of the packet at `i`, if any.
    #[inline]
    pub fn prefetch(&self, i: usize) {
        if i < self.len {
            // SAFETY: slot i holds a valid mbuf; prefetch only hints the cache.
            unsafe { prefetch0(mtod(self.ptrs[i])) }
        }
    }

    /// Frees every mbuf still in the burst (each reference and every segment, as
    /// dropping them one by one would) with one `rte_pktmbuf_free_bulk` call instead of
    /// one C call per mbuf; returns how many.
    #[inline]
    pub fn free_all(&mut self) -> usize {
        let n = std::mem::take(&mut self.len);
        self.oversize = false;
        if n != 0 {
            // SAFETY: the first n slots hold owned, valid mbufs (heads of their chains);
            // len is reset first, so none of them is handed out or freed again.
            unsafe { dpdk_sys::rte_pktmbuf_free_bulk(self.ptrs.as_mut_ptr(), n as u32) }
        }
        n
    }

    /// Drops the first `n` slots (sent by the driver, which now owns them)
    /// and moves the rest to the front.
    pub(crate) fn consume_front(&mut self, n: usize) {
        self.ptrs.copy_within(n..self.len, 0);
        self.len -= n;
    }
}

impl Drop for MbufBurst {
    fn drop(&mut self) {
        self.free_all();
    }
}

/// `rte_pktmbuf_mtod`, read here rather than through a C call: the hot loop
/// asks for it once or twice per packet.
///
/// # Safety
/// `m` must point to a valid mbuf.
#[inline(always)]
unsafe fn mtod(m: *const dpdk_sys::rte_mbuf) -> *mut u8 {
    // SAFETY: the caller's mbuf is valid; data_off lies within its buffer.
    unsafe { ((*m).buf_addr as *mut u8).add(usize::from((*m).data_off)) }
}

/// Starts loading the cache line at `p` (any address: a prefetch never faults), for code
/// that knows what it will read a few packets ahead, such as a flow table's buckets.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    // SAFETY: prefetch0 only hints the cache, whatever the address.
    unsafe { prefetch0(p as *const u8) }
}

/// `rte_prefetch0`: a hint only, any address is harmless.
#[inline(always)]
unsafe fn prefetch0(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetch has no architectural effect beyond the cache.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0)
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: as above, through DPDK's own helper.
    unsafe {
        dpdk_sys::ff_prefetch0(p as *const std::os::raw::c_void)
    }
}
