//! Ferroflow's packet layer: header views ([`wire`]), the OpenFlow 1.3 flow key
//! ([`key::FlowKey`]), its extraction from a frame ([`extract()`]) and the packet edits
//! OpenFlow actions make ([`action`]), on any buffer implementing [`PacketBuf`].
//!
//! Plain safe Rust with no allocation on the per-packet paths, so the same code runs in the
//! DPDK workers, in the control plane (packet-out, packet-in) and in tests.

#![forbid(unsafe_code)]

pub mod action;
pub mod buf;
pub mod emit;
pub mod error;
pub mod extract;
#[doc(hidden)]
pub mod fuzz;
pub mod key;
pub mod tunnel;
pub mod wire;

pub use action::{
    copy_ttl_in, copy_ttl_out, dec_mpls_ttl, dec_nw_ttl, pop_mpls, pop_pbb, pop_vlan, push_mpls,
    push_pbb, push_vlan, set_field, set_mpls_ttl, set_nw_ttl,
};
pub use buf::{PacketBuf, VecBuf};
pub use emit::frame_from_fields;
pub use error::{EditError, WireError};
pub use extract::{extract, extract_into, extract_port_only, ExtractPlan, Parse, FULL_FOR_DSTS};
pub use key::{
    Field, FieldPos, FlowKey, Layers, Offsets, CT_WORD, FLOW_KEY_WORDS, OFPVID_NONE,
    OFPVID_PRESENT, REG_WORD, TUN_METADATA_FIELDS, TUN_METADATA_WORD, TUN_WORD,
};
