/// How a frame leaves a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Egress {
    /// Without an 802.1Q tag.
    Untagged,
    /// With an 802.1Q tag carrying this VID.
    Tagged(u16),
}

/// A port's VLAN membership, as Open vSwitch's `tag` and `trunks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VlanPolicy {
    /// Every VLAN; untagged frames are VLAN 0 and leave untagged.
    Trunk,
    /// The VLANs whose bit is set (bit 0: untagged frames).
    Trunks(Box<[u64; 64]>),
    /// Untagged frames join this VLAN; tagged frames are dropped (OVS accepts a
    /// priority tag, VID 0, as untagged).
    Access(u16),
}

impl VlanPolicy {
    pub fn trunks(vlans: &[u16]) -> VlanPolicy {
        let mut bits = Box::new([0u64; 64]);
        for &v in vlans {
            let v = usize::from(v & 0xfff);
            bits[v / 64] |= 1 << (v % 64);
        }
        VlanPolicy::Trunks(bits)
    }

    #[inline]
    fn carries(&self, vlan: u16) -> bool {
        match self {
            VlanPolicy::Trunk => true,
            VlanPolicy::Trunks(bits) => bits[usize::from(vlan) / 64] & (1 << (vlan % 64)) != 0,
            VlanPolicy::Access(tag) => *tag == vlan,
        }
    }

    /// The VLAN of a frame that arrives with 802.1Q VID `tag` (None: untagged),
    /// or None when the port does not accept it.
    #[inline]
    pub fn ingress(&self, tag: Option<u16>) -> Option<u16> {
        match (self, tag) {
            (VlanPolicy::Access(t), None | Some(0)) => Some(*t),
            (VlanPolicy::Access(_), Some(_)) => None,
            (_, tag) => {
                let vlan = tag.unwrap_or(0);
                self.carries(vlan).then_some(vlan)
            }
        }
    }

    /// How a frame of `vlan` leaves the port, or None if the port is not in that VLAN.
    #[inline]
    pub fn egress(&self, vlan: u16) -> Option<Egress> {
        if !self.carries(vlan) {
            return None;
        }
        Some(match self {
            VlanPolicy::Access(_) => Egress::Untagged,
            _ if vlan == 0 => Egress::Untagged,
            _ => Egress::Tagged(vlan),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_port() {
        let p = VlanPolicy::Access(10);
        assert_eq!(p.ingress(None), Some(10));
        assert_eq!(p.ingress(Some(0)), Some(10));
        assert_eq!(p.ingress(Some(10)), None);
        assert_eq!(p.egress(10), Some(Egress::Untagged));
        assert_eq!(p.egress(11), None);
        assert_eq!(p.egress(0), None);
    }

    #[test]
    fn trunk_ports() {
        let all = VlanPolicy::Trunk;
        assert_eq!(all.ingress(None), Some(0));
        assert_eq!(all.ingress(Some(7)), Some(7));
        assert_eq!(all.egress(0), Some(Egress::Untagged));
        assert_eq!(all.egress(7), Some(Egress::Tagged(7)));
        let some = VlanPolicy::trunks(&[0, 20, 4094]);
        assert_eq!(some.ingress(Some(20)), Some(20));
        assert_eq!(some.ingress(Some(21)), None);
        assert_eq!(some.ingress(None), Some(0));
        assert_eq!(some.egress(4094), Some(Egress::Tagged(4094)));
        assert_eq!(some.egress(10), None);
        let tagged_only = VlanPolicy::trunks(&[20]);
        assert_eq!(tagged_only.ingress(None), None);
    }
}
