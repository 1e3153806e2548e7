//! What the pipeline needs to know about ports: which exist for FLOOD/ALL, which are live
//! for fast-failover and select liveness, which refuse forwarding or packet-in, and the
//! VLAN membership NORMAL uses. A port change publishes a new version (tables are shared,
//! so it costs a few Arc clones), which keeps liveness free of atomics on the fast path.

use hashbrown::HashMap;
use mac_learning::{Egress, VlanPolicy};

use crate::flags::flag_set;

flag_set! {
    /// A port's configuration, with `ofp_port_config`'s values.
    pub struct PortConfig: u32 {
        const PORT_DOWN = 1 << 0;
        const NO_RECV = 1 << 2;
        const NO_FWD = 1 << 5;
        const NO_PACKET_IN = 1 << 6;
    }
}

#[derive(Clone, Debug)]
pub struct PortInfo {
    pub port_no: u32,
    /// OFPPC_*: PORT_DOWN and NO_FWD stop output, NO_PACKET_IN stops packet-in from it.
    pub config: PortConfig,
    /// Link up and not blocked (OFPPS_LIVE): what fast-failover and select
    /// groups go by. Flooding does not look at it: a driver's link state can
    /// be wrong (a tap whose kernel side moved to another namespace reads as
    /// down), and sending on a down link costs nothing.
    pub live: bool,
    /// Left out of FLOOD and NORMAL flooding (OpenFlow 1.0's OFPPC_NO_FLOOD; the profile
    /// uses it for uplinks).
    pub no_flood: bool,
    /// VLAN membership for NORMAL.
    pub vlan: VlanPolicy,
}

impl PortInfo {
    pub fn new(port_no: u32) -> PortInfo {
        PortInfo {
            port_no,
            config: PortConfig::empty(),
            live: true,
            no_flood: false,
            vlan: VlanPolicy::Trunk,
        }
    }

    /// Usable for output at all.
    #[inline]
    pub fn forwards(&self) -> bool {
        !self
            .config
            .intersects(PortConfig(PortConfig::PORT_DOWN.0 | PortConfig::NO_FWD.0))
    }

    /// Live for fast-failover: up, link up.
    #[inline]
    pub fn is_live(&self) -> bool {
        self.live && !self.config.contains(PortConfig::PORT_DOWN)
    }
}

/// Port numbers below this are found by indexing an array ([`PortSet::get`] on the fast
/// path: NORMAL, packet-in, blocked outputs); others through a hash map.
const DENSE_PORTS: u32 = 1024;
/// Marks a number below [`DENSE_PORTS`] that is no port.
const NO_PORT: u32 = u32::MAX;

/// What NORMAL needs to know of a port, small enough that the decision for a learned
/// unicast address (and the ingress VLAN) costs one load instead of a walk from the port
/// index to its [`PortInfo`] and its [`VlanPolicy`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormalPort {
    /// Not a port of this version (an address learned on a port since removed).
    Unknown,
    /// A trunk of every VLAN (the default policy).
    TrunkAll { forwards: bool },
    /// An access port of VLAN `tag`.
    Access { tag: u16, forwards: bool },
    /// A trunk of some VLANs: its [`PortInfo`] decides.
    Other,
}

/// The ports NORMAL floods a VLAN's frame to (flood-enabled ports that forward and carry
/// the VLAN, by port number), computed when the ports change rather than per packet.
#[derive(Clone, Copy, Debug)]
pub enum FloodList<'a> {
    /// A VLAN some access tag or trunk list names: each port with its form.
    Named(&'a [(u32, Egress)]),
    /// Any other VLAN: only the trunks of every VLAN carry it, tagged (untagged for VLAN 0).
    TrunksOnly(&'a [u32]),
}

/// The ports of one version, sorted by number.
#[derive(Clone, Debug, Default)]
pub struct PortSet {
    ports: Vec<PortInfo>,
    /// Index in `ports` by port number, for numbers below [`DENSE_PORTS`] (as long as the
    /// highest such port; [`NO_PORT`] where there is none).
    dense: Box<[u32]>,
    /// Index in `ports` of the ports numbered from [`DENSE_PORTS`] up.
    index: HashMap<u32, u32>,
    /// Some port is down or refuses forwarding: when none is (the usual case), an output
    /// needs no port lookup.
    any_blocked: bool,
    /// NORMAL's view of each port numbered below [`DENSE_PORTS`] (as long as `dense`).
    normal: Box<[NormalPort]>,
    /// Flood-enabled, forwarding trunks of every VLAN.
    flood_trunks: Box<[u32]>,
    /// For each VLAN named by a flood-enabled, forwarding port's access tag or trunk list
    /// (at most 4096 lists), every port NORMAL floods it to.
    flood_named: HashMap<u16, Box<[(u32, Egress)]>>,
}

impl PortSet {
    pub fn new(mut ports: Vec<PortInfo>) -> PortSet {
        ports.sort_by_key(|p| p.port_no);
        ports.dedup_by_key(|p| p.port_no);
        let dense_len = ports
            .iter()
            .filter(|p| p.port_no < DENSE_PORTS)
            .map(|p| p.port_no as usize + 1)
            .max()
            .unwrap_or(0);
        let mut dense = vec![NO_PORT; dense_len];
        let mut index = HashMap::new();
        for (i, p) in ports.iter().enumerate() {
            if p.port_no < DENSE_PORTS {
                dense[p.port_no as usize] = i as u32;
            } else {
                index.insert(p.port_no, i as u32);
            }
        }
        let any_blocked = ports.iter().any(|p| !p.forwards());
        let normal = dense
            .iter()
            .map(|&i| match ports.get(i as usize) {
                None => NormalPort::Unknown,
                Some(p) => match p.vlan {
                    VlanPolicy::Trunk => NormalPort::TrunkAll {
                        forwards: p.forwards(),
                    },
                    VlanPolicy::Access(tag) => NormalPort::Access {
                        tag,
                        forwards: p.forwards(),
                    },
                    VlanPolicy::Trunks(_) => NormalPort::Other,
                },
            })
            .collect();
        let floods = || ports.iter().filter(|p| p.forwards() && !p.no_flood);
        let flood_trunks = floods()
            .filter(|p| p.vlan == VlanPolicy::Trunk)
            .map(|p| p.port_no)
            .collect();
        let mut named = Vec::new();
        for p in floods() {
            match &p.vlan {
                VlanPolicy::Trunk => {}
                VlanPolicy::Access(tag) => named.push(*tag),
                VlanPolicy::Trunks(_) => {
                    named.extend((0..4096u16).filter(|&v| p.vlan.egress(v).is_some()))
                }
            }
        }
        named.sort_unstable();
        named.dedup();
        let flood_named = named
            .into_iter()
            .map(|v| {
                let list = floods()
                    .filter_map(|p| Some((p.port_no, p.vlan.egress(v)?)))
                    .collect();
                (v, list)
            })
            .collect();
        PortSet {
            ports,
            dense: dense.into(),
            index,
            any_blocked,
            normal,
            flood_trunks,
            flood_named,
        }
    }

    /// NORMAL's view of `port`.
    #[inline]
    pub fn normal_port(&self, port: u32) -> NormalPort {
        if port < DENSE_PORTS {
            self.normal
                .get(port as usize)
                .copied()
                .unwrap_or(NormalPort::Unknown)
        } else if self.index.contains_key(&port) {
            NormalPort::Other
        } else {
            NormalPort::Unknown
        }
    }

    /// The ports NORMAL floods a frame of `vlan` to (the ingress port included: the
    /// caller skips it).
    #[inline]
    pub fn flood_list(&self, vlan: u16) -> FloodList<'_> {
        match self.flood_named.get(&vlan) {
            Some(list) => FloodList::Named(list),
            None => FloodList::TrunksOnly(&self.flood_trunks),
        }
    }

    #[inline]
    pub fn get(&self, port: u32) -> Option<&PortInfo> {
        let i = if port < DENSE_PORTS {
            *self.dense.get(port as usize)?
        } else {
            *self.index.get(&port)?
        };
        self.ports.get(i as usize)
    }

    /// A known port that does not forward (down or NO_FWD); unknown ports do not block.
    #[inline]
    pub fn blocks(&self, port: u32) -> bool {
        self.any_blocked && self.get(port).is_some_and(|i| !i.forwards())
    }

    pub fn iter(&self) -> impl Iterator<Item = &PortInfo> {
        self.ports.iter()
    }

    pub fn len(&self) -> usize {
        self.ports.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ports.is_empty()
    }

    /// Watch-port liveness; unknown ports are dead.
    #[inline]
    pub fn is_live(&self, port: u32) -> bool {
        self.get(port).is_some_and(PortInfo::is_live)
    }

    pub(crate) fn upsert(&mut self, info: PortInfo) {
        let mut v = std::mem::take(&mut self.ports);
        v.retain(|p| p.port_no != info.port_no);
        v.push(info);
        *self = PortSet::new(v);
    }

    pub(crate) fn remove(&mut self, port: u32) -> bool {
        let mut v = std::mem::take(&mut self.ports);
        let before = v.len();
        v.retain(|p| p.port_no != port);
        let removed = v.len() != before;
        *self = PortSet::new(v);
        removed
    }
}
