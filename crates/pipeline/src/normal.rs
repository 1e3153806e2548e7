//! OFPP_NORMAL: the built-in VLAN-aware learning switch, on [`mac_learning::MacTable`]
//! (shared by every worker and every pipeline version, so publishing flows never forgets
//! addresses) and each port's [`mac_learning::VlanPolicy`].

use mac_learning::{is_group, Egress, MacTable};
use packet::key::pos;
use packet::{FlowKey, Layers};

use crate::port::{FloodList, NormalPort, PortSet};

/// How a frame must look on the wire: untagged, or tagged with this VID.
pub type Form = Option<u16>;

/// Where NORMAL sends a frame.
#[derive(Debug)]
pub struct NormalPlan {
    /// The frame's VLAN inside the switch.
    pub vlan: u16,
    /// How the frame looks now.
    pub current: Form,
    /// Flood (unknown, broadcast or multicast destination) or the one learned port.
    pub known: Option<u32>,
}

#[derive(Debug)]
pub struct Normal<'a> {
    pub mac: &'a MacTable,
    pub ports: &'a PortSet,
}

impl Normal<'_> {
    /// Learns the source and decides the destination; `None`: the ingress port does not
    /// accept the frame's VLAN.
    #[inline]
    pub fn plan(&self, key: &FlowKey, now_secs: u32) -> Option<NormalPlan> {
        self.plan_learning(key, now_secs, true)
    }

    /// [`plan`](Self::plan) without learning the source (tracing): a destination equal
    /// to the source is where plan would have just learned it.
    pub fn plan_without_learning(&self, key: &FlowKey, now_secs: u32) -> Option<NormalPlan> {
        self.plan_learning(key, now_secs, false)
    }

    #[inline(always)]
    fn plan_learning(&self, key: &FlowKey, now_secs: u32, learn: bool) -> Option<NormalPlan> {
        let in_port = key.in_port();
        let current: Form = key
            .layers
            .contains(Layers::VLAN)
            .then(|| key.vlan_vid() & 0x0fff);
        let vlan = match self.ports.normal_port(in_port) {
            NormalPort::Unknown | NormalPort::TrunkAll { .. } => current.unwrap_or(0),
            NormalPort::Access { tag, .. } => match current {
                None | Some(0) => tag,
                Some(_) => return None,
            },
            NormalPort::Other => match self.ports.get(in_port) {
                Some(p) => p.vlan.ingress(current)?,
                None => current.unwrap_or(0),
            },
        };
        // Constant positions: no lookup of the field's place per packet.
        let src = key.get_pos(pos::ETH_SRC) as u64;
        let dst = key.get_pos(pos::ETH_DST) as u64;
        let known = if learn {
            self.mac
                .learn_and_lookup(vlan, src, in_port, dst, now_secs)
                .1
        } else if is_group(dst) {
            None
        } else if dst == src {
            Some(in_port)
        } else {
            self.mac.lookup(vlan, dst, now_secs)
        };
        Some(NormalPlan {
            vlan,
            current,
            known,
        })
    }

    /// The one output of a plan to a known unicast address, when the frame leaves as it is
    /// now (the usual case: no re-tagging): `Some(None)` when it goes nowhere (back to its
    /// ingress port, or to a port that does not forward or carry its VLAN), `None` when
    /// [`for_each_output`](Self::for_each_output) must decide.
    #[inline]
    pub fn unicast_as_is(&self, plan: &NormalPlan, in_port: u32) -> Option<Option<u32>> {
        let p = plan.known?;
        if p == in_port {
            return Some(None);
        }
        match self.ports.normal_port(p) {
            NormalPort::Unknown => return Some(Some(p)),
            NormalPort::TrunkAll { forwards: false }
            | NormalPort::Access {
                forwards: false, ..
            } => return Some(None),
            NormalPort::TrunkAll { forwards: true } => {
                let form = (plan.vlan != 0).then_some(plan.vlan);
                return (form == plan.current).then_some(Some(p));
            }
            NormalPort::Access {
                tag,
                forwards: true,
            } => {
                if tag != plan.vlan {
                    return Some(None);
                }
                return plan.current.is_none().then_some(Some(p));
            }
            NormalPort::Other => {}
        }
        let Some(info) = self.ports.get(p) else {
            return Some(Some(p));
        };
        if !info.forwards() {
            return Some(None);
        }
        let form = match info.vlan.egress(plan.vlan) {
            None => return Some(None),
            Some(Egress::Untagged) => None,
            Some(Egress::Tagged(v)) => Some(v),
        };
        (form == plan.current).then_some(Some(p))
    }

    /// Calls `f(port, form)` for every port the plan sends to.
    pub fn for_each_output(&self, plan: &NormalPlan, in_port: u32, mut f: impl FnMut(u32, Form)) {
        let form = |e: Egress| match e {
            Egress::Untagged => None,
            Egress::Tagged(v) => Some(v),
        };
        match plan.known {
            Some(p) if p == in_port => {}
            Some(p) => match self.ports.get(p) {
                Some(info) if info.forwards() => {
                    if let Some(e) = info.vlan.egress(plan.vlan) {
                        f(p, form(e));
                    }
                }
                Some(_) => {}
                None => f(p, plan.current),
            },
            None => match self.ports.flood_list(plan.vlan) {
                FloodList::Named(list) => {
                    for &(port, e) in list {
                        if port != in_port {
                            f(port, form(e));
                        }
                    }
                }
                FloodList::TrunksOnly(list) => {
                    let tagged = (plan.vlan != 0).then_some(plan.vlan);
                    for &port in list {
                        if port != in_port {
                            f(port, tagged);
                        }
                    }
                }
            },
        }
    }
}
