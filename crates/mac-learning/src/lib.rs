//! The VLAN-aware learning switch that OpenFlow calls NORMAL.
//!
//! [`MacTable`] is shared by every worker without a lock: each slot is two
//! atomic words, workers read with plain loads, and write only when they learn
//! a new address, see one move, or refresh one that was last seen more than a
//! second ago. So a steady flow costs no shared-cache-line writes per packet.
//! [`VlanPolicy`] decides which VLAN a frame belongs to on ingress and how it
//! leaves each port (OVS's `tag` and `trunks`).

mod table;
mod vlan;

pub use table::{Learn, MacEntry, MacTable};
pub use vlan::{Egress, VlanPolicy};

/// An Ethernet address as the 48 low bits of a u64 (first byte most significant).
pub type Mac = u64;

/// Reads a MAC address from 6 bytes.
#[inline]
pub fn mac_from_bytes(b: &[u8; 6]) -> Mac {
    u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
}

/// Multicast and broadcast addresses have the group bit set; they are never learned.
#[inline]
pub fn is_group(mac: Mac) -> bool {
    mac & (1 << 40) != 0
}

pub fn format_mac(mac: Mac) -> String {
    let b = mac.to_be_bytes();
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[2], b[3], b[4], b[5], b[6], b[7]
    )
}
