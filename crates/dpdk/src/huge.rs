//! Fixed-length arrays in 2 MiB pages, for lookup tables too big for the caches.
//!
//! A worker probing a 2 MiB row array in 4 KiB pages at random takes a TLB miss on almost
//! every probe (512 pages per array, two such arrays in B10k's pipeline, beside the
//! mbufs' and the keys'), and that miss is a page walk in front of the row's own cache
//! miss, which the burst's prefetch cannot hide. In 2 MiB pages the same array is one
//! TLB entry. The memory is ordinary anonymous memory (no EAL needed: tables are compiled
//! off the fast path, also in tests without DPDK), advised with `MADV_HUGEPAGE` so that
//! transparent huge pages back it when the kernel's THP mode is `always` or `madvise`;
//! with `never`, or when the kernel has no free huge page, it is the same memory in
//! 4 KiB pages, and only slower.
//!
//! Freed (unmapped) when dropped, like the `Box<[T]>` it replaces: a table version's rows
//! go when the version is reclaimed.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// The size of a transparent huge page on x86-64 and of the mappings' alignment.
pub const HUGE_PAGE_BYTES: usize = 2 << 20;

/// `len` elements of `T` in a mapping of whole, aligned 2 MiB pages advised for
/// transparent huge pages, or on the heap when they take less than one such page (the
/// rounding would waste more than it saves) or the mapping fails.
pub struct HugeSlice<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
    /// Bytes mapped at `ptr` (a multiple of [`HUGE_PAGE_BYTES`]); 0 when the elements are
    /// a leaked `Box<[T]>`.
    mapped: usize,
}

// SAFETY: a HugeSlice owns its elements as a Box<[T]> does; sending or sharing it sends
// or shares `T`s.
unsafe impl<T: Copy + Send> Send for HugeSlice<T> {}
// SAFETY: as above: `&HugeSlice<T>` only gives out `&[T]`.
unsafe impl<T: Copy + Sync> Sync for HugeSlice<T> {}

impl<T: Copy> HugeSlice<T> {
    /// `len` copies of `value`.
    pub fn filled(len: usize, value: T) -> HugeSlice<T> {
        let bytes = len
            .checked_mul(std::mem::size_of::<T>())
            .expect("HugeSlice: length overflows the address space");
        if bytes < HUGE_PAGE_BYTES || std::mem::align_of::<T>() > HUGE_PAGE_BYTES {
            return Self::on_heap(vec![value; len].into_boxed_slice());
        }
        let Some((base, mapped)) = map_aligned(bytes) else {
            return Self::on_heap(vec![value; len].into_boxed_slice());
        };
        let ptr = base.cast::<T>();
        for i in 0..len {
            // SAFETY: the mapping holds `mapped >= len * size_of::<T>()` writable bytes at
            // `base`, aligned to 2 MiB (so to `T`); element `i` is inside it. Writing
            // (not assigning) initialises it without reading the zeroed memory as a `T`.
            unsafe { ptr.as_ptr().add(i).write(value) };
        }
        HugeSlice { ptr, len, mapped }
    }

    fn on_heap(b: Box<[T]>) -> HugeSlice<T> {
        let len = b.len();
        let raw = Box::into_raw(b) as *mut T;
        HugeSlice {
            // A Box's pointer is never null (dangling but aligned when empty).
            ptr: NonNull::new(raw).expect("Box::into_raw is never null"),
            len,
            mapped: 0,
        }
    }

    /// The elements are in a mapping advised for huge pages (whether the kernel backed
    /// it with them is in `/proc/self/smaps`, `AnonHugePages`; see [`anon_huge_bytes`]).
    pub fn advised_huge(&self) -> bool {
        self.mapped != 0
    }
}

/// A [`HugeSlice`] whose length is a power of two (the rows of an open-addressing hash
/// table): [`HugeTable::wrapped`] reads element `i` modulo the length without a bounds
/// check, which a probe of a row its hash picked would otherwise pay on every step (the
/// index is masked to the length already, but the compiler cannot see it is in range).
pub struct HugeTable<T: Copy> {
    slice: HugeSlice<T>,
    /// `len - 1`, `len` a power of two (so at least 1).
    mask: usize,
}

impl<T: Copy> HugeTable<T> {
    /// `len` copies of `value`. Panics unless `len` is a power of two.
    pub fn filled(len: usize, value: T) -> HugeTable<T> {
        assert!(
            len.is_power_of_two(),
            "HugeTable: length {len} is not a power of two"
        );
        HugeTable {
            slice: HugeSlice::filled(len, value),
            mask: len - 1,
        }
    }

    /// Element `i % len`.
    #[inline(always)]
    pub fn wrapped(&self, i: usize) -> &T {
        // SAFETY: `len` is a power of two (asserted in `filled`, never changed), so
        // `i & (len - 1)` is below `len`, and `ptr` points to `len` initialised elements
        // this value owns (`HugeSlice::deref`).
        unsafe { &*self.slice.ptr.as_ptr().add(i & self.mask) }
    }

    /// The element `i % len` lives at (for a prefetch: only an address is made).
    #[inline(always)]
    pub fn wrapped_ptr(&self, i: usize) -> *const T {
        self.slice.ptr.as_ptr().wrapping_add(i & self.mask)
    }

    /// The elements are in a mapping advised for huge pages ([`HugeSlice::advised_huge`]).
    pub fn advised_huge(&self) -> bool {
        self.slice.advised_huge()
    }
}

impl<T: Copy> Deref for HugeTable<T> {
    type Target = [T];
    #[inline(always)]
    fn deref(&self) -> &[T] {
        &self.slice
    }
}

impl<T: Copy> DerefMut for HugeTable<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.slice
    }
}

impl<T: Copy> fmt::Debug for HugeTable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.slice.fmt(f)
    }
}

impl<T: Copy> Deref for HugeSlice<T> {
    type Target = [T];
    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` points to `len` initialised elements this value owns (written in
        // `filled`, or the Box's), alive until drop.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> DerefMut for HugeSlice<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> Drop for HugeSlice<T> {
    fn drop(&mut self) {
        if self.mapped == 0 {
            let raw = std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len);
            // SAFETY: made by `Box::into_raw` in `on_heap` with this length, freed once.
            drop(unsafe { Box::from_raw(raw) });
        } else {
            // SAFETY: unmaps exactly the mapping `map_aligned` made for this value, once;
            // `T: Copy` has no destructor to run first. A failure (it cannot fail for a
            // whole mapping of ours) would leak the memory, nothing worse.
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.mapped) };
        }
    }
}

impl<T: Copy> fmt::Debug for HugeSlice<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HugeSlice")
            .field("len", &self.len)
            .field("mapped", &self.mapped)
            .finish()
    }
}

/// An anonymous private mapping of `bytes` rounded up to whole huge pages, aligned to
/// [`HUGE_PAGE_BYTES`] (a huge page backs only an aligned 2 MiB range), advised with
/// `MADV_HUGEPAGE`; `None` when the kernel refuses the mapping. Zeroed, not yet touched.
fn map_aligned(bytes: usize) -> Option<(NonNull<u8>, usize)> {
    let mapped = bytes.checked_next_multiple_of(HUGE_PAGE_BYTES)?;
    let total = mapped.checked_add(HUGE_PAGE_BYTES)?;
    // SAFETY: a new anonymous mapping at an address the kernel picks: it aliases nothing.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            total,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    let start = p as usize;
    let aligned = start.next_multiple_of(HUGE_PAGE_BYTES);
    let head = aligned - start;
    let tail = total - head - mapped;
    // SAFETY: both ranges are parts of the mapping just made, outside the aligned range
    // kept, and nothing refers to them.
    unsafe {
        if head > 0 {
            libc::munmap(p, head);
        }
        if tail > 0 {
            libc::munmap((aligned + mapped) as *mut libc::c_void, tail);
        }
    }
    // SAFETY: advice on the mapping just made. A refusal (THP `never`, no THP in the
    // kernel) leaves it in 4 KiB pages: still correct memory, only slower.
    unsafe { libc::madvise(aligned as *mut libc::c_void, mapped, libc::MADV_HUGEPAGE) };
    Some((NonNull::new(aligned as *mut u8)?, mapped))
}

/// The kernel's transparent huge page mode (`always`, `madvise` or `never`, the bracketed
/// word of `/sys/kernel/mm/transparent_hugepage/enabled`), `None` when it has no THP.
pub fn thp_mode() -> Option<String> {
    let s = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").ok()?;
    let open = s.find('[')?;
    let close = s[open..].find(']')? + open;
    Some(s[open + 1..close].to_string())
}

/// Bytes of the mapping holding address `addr` that huge pages back (`AnonHugePages` of
/// its entry in `/proc/self/smaps`); `None` when no mapping holds it or smaps is not
/// readable.
pub fn anon_huge_bytes(addr: usize) -> Option<u64> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let mut inside = false;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((lo, hi)) = first.split_once('-') {
            if let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                inside = (lo..hi).contains(&addr);
                continue;
            }
        }
        if inside {
            if let Some(rest) = line.strip_prefix("AnonHugePages:") {
                let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
                return Some(kb * 1024);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_slices_stay_on_the_heap() {
        let s = HugeSlice::filled(1000, 7u64);
        assert!(!s.advised_huge());
        assert_eq!(s.len(), 1000);
        assert!(s.iter().all(|&v| v == 7));
        let e = HugeSlice::filled(0, [0u8; 64]);
        assert!(e.is_empty());
    }

    #[test]
    fn big_slices_are_aligned_filled_and_writable() {
        let mut s = HugeSlice::filled(HUGE_PAGE_BYTES / 8 * 3 + 5, 0x5au64);
        assert!(s.advised_huge());
        assert_eq!(s.as_ptr() as usize % HUGE_PAGE_BYTES, 0);
        assert!(s.iter().all(|&v| v == 0x5a));
        let n = s.len();
        s[n - 1] = 1;
        assert_eq!(s[n - 1], 1);
    }
}
