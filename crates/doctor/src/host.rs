//! The host's hugepages, read before EAL starts, so that a missing hugepage
//! mount is reported as such rather than as EAL's generic failure. Here rather
//! than in the `dpdk` crate because it only reads /proc: ferroflowd and the
//! doctor (in ferroflowctl, without DPDK) share it.

use std::fs;

/// Hugepage state of the host, from /proc.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hugepages {
    /// Mount points of hugetlbfs.
    pub mounts: Vec<String>,
    pub total_pages: u64,
    pub free_pages: u64,
    pub page_size_kb: u64,
}

impl Hugepages {
    pub fn read() -> Hugepages {
        let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
        let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Hugepages::parse(&mounts, &meminfo)
    }

    pub fn parse(mounts: &str, meminfo: &str) -> Hugepages {
        let mounts = mounts
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let (_, at, fstype) = (f.next()?, f.next()?, f.next()?);
                (fstype == "hugetlbfs").then(|| at.to_owned())
            })
            .collect();
        let field = |key: &str| {
            meminfo
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Hugepages {
            mounts,
            total_pages: field("HugePages_Total:"),
            free_pages: field("HugePages_Free:"),
            page_size_kb: field("Hugepagesize:"),
        }
    }

    pub fn free_mb(&self) -> u64 {
        self.free_pages * self.page_size_kb / 1024
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mounts_and_meminfo() {
        let h = Hugepages::parse(
            "sysfs /sys sysfs rw 0 0\nnodev /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n",
            "MemTotal: 1 kB\nHugePages_Total:    1024\nHugePages_Free:     1000\nHugepagesize:       2048 kB\n",
        );
        assert_eq!(h.mounts, vec!["/dev/hugepages".to_owned()]);
        assert_eq!(
            (h.total_pages, h.free_pages, h.page_size_kb),
            (1024, 1000, 2048)
        );
        assert_eq!(h.free_mb(), 2000);
    }

    #[test]
    fn no_mount_no_pages() {
        let h = Hugepages::parse("proc /proc proc rw 0 0\n", "MemTotal: 1 kB\n");
        assert!(h.mounts.is_empty());
        assert_eq!(h.free_mb(), 0);
    }
}
