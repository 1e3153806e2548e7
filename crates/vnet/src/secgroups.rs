//! Security groups: named sets of stateful rules that instances join, compiled into
//! conntrack-based tables in the style of OpenStack's OVS firewall driver.
//!
//! An instance in at least one group is *filtered*; one in none is not (anti-spoofing
//! only, as before groups existed: attach it to a group without rules to shut it off).
//! For a filtered instance on port P of network N (conntrack zone N, so N <= 65535):
//!
//! - **egress**: its IPv4/IPv6 (which the classifier already checked for spoofing) goes
//!   to [`SG_EGRESS`] instead of the network's switch table, is tracked with
//!   `ct(table=SG_EGRESS_CT,zone=N)`, and then: `+inv` dropped (counted as invalid),
//!   `+est`/`+rel` (replies, and ICMP errors about its connections) switched, `+new`
//!   matching an egress rule committed and switched (counted as allowed), any other
//!   dropped (counted as no rule).
//! - **ingress**: every `output:P` of the switch tables becomes
//!   `set_field:P->reg6,resubmit(,SG_INGRESS)` (unicast and flood alike), where IP is
//!   tracked with `ct(table=SG_INGRESS_CT,zone=N)` and judged as above against the ingress
//!   rules; non-IP (ARP) and neighbor discovery/MLD pass untracked in both directions
//!   (the tracker calls ND invalid, as Linux does; the classifier already checked it).
//!
//! Both directions share the network's zone: a connection between two filtered
//! instances is committed by the sender's egress and checked again by the receiver's
//! ingress, which sees it `+new` until the first reply (the receiver's rules still decide).
//! The metadata service (table 10 and its return path) is not filtered.

use std::collections::HashSet;
use std::fmt::Write;
use std::net::IpAddr;

use ferroflow_config::{Direction, SecurityGroupConfig};

use crate::compile::{switch_table, ProfileFlow};
use crate::model::{Instance, Model, ProfileError};
use crate::table::*;
use crate::{mac_string, Role};

/// What a rule's packets carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Any,
    Tcp,
    Udp,
    Icmp,
}

/// The other end of a rule's connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    Anywhere,
    /// (network address, prefix length), of the rule's ethertype.
    Prefix(IpAddr, u8),
    /// The addresses of this group's member instances.
    Group(String),
}

/// A checked rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub direction: Direction,
    pub ipv6: bool,
    pub protocol: Protocol,
    /// Destination ports (inclusive), tcp/udp only.
    pub ports: Option<(u16, u16)>,
    /// Source ports (inclusive), tcp/udp only.
    pub source_ports: Option<(u16, u16)>,
    /// ICMP (ICMPv6) type of the opening message, and maybe its code; icmp only.
    pub icmp: Option<(u8, Option<u8>)>,
    pub remote: Remote,
}

/// A checked group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityGroup {
    pub name: String,
    pub rules: Vec<Rule>,
}

fn err<T>(field: String, message: impl Into<String>) -> Result<T, ProfileError> {
    Err(ProfileError {
        field,
        message: message.into(),
    })
}

/// Parses `"80"` or `"8000-8010"`.
pub fn parse_ports(s: &str) -> Option<(u16, u16)> {
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
        None => {
            let p = s.trim().parse().ok()?;
            (p, p)
        }
    };
    (lo <= hi).then_some((lo, hi))
}

/// The fewest value/mask pairs whose union is exactly `lo..=hi` (each pair is an
/// aligned power-of-two block, the decomposition Open vSwitch's firewall driver uses);
/// a mask of 0 means any port.
pub fn port_masks(lo: u16, hi: u16) -> Vec<(u16, u16)> {
    let (mut lo, hi) = (u32::from(lo), u32::from(hi));
    let mut out = Vec::new();
    while lo <= hi {
        let mut k = if lo == 0 {
            16
        } else {
            lo.trailing_zeros().min(16)
        };
        while lo + (1 << k) - 1 > hi {
            k -= 1;
        }
        out.push((lo as u16, (0xffff_u32 << k) as u16));
        lo += 1 << k;
    }
    out
}

fn parse_rule(
    f: &dyn Fn(&str) -> String,
    r: &ferroflow_config::SecurityRuleConfig,
    names: &HashSet<&str>,
) -> Result<Rule, ProfileError> {
    let ipv6 = match r.ethertype.as_str() {
        "ipv4" | "" => false,
        "ipv6" => true,
        e => return err(f("ethertype"), format!("{e:?}: ipv4 or ipv6")),
    };
    let protocol = match r.protocol.as_deref() {
        None | Some("any") | Some("") => Protocol::Any,
        Some("tcp") => Protocol::Tcp,
        Some("udp") => Protocol::Udp,
        Some("icmp") => Protocol::Icmp,
        Some(p) => return err(f("protocol"), format!("{p:?}: tcp, udp, icmp or any")),
    };
    let port_range = |key: &str, v: Option<&str>| match v {
        None | Some("") => Ok(None),
        Some(s) => {
            if !matches!(protocol, Protocol::Tcp | Protocol::Udp) {
                return err(f(key), format!("{key} need protocol tcp or udp"));
            }
            parse_ports(s).map(Some).ok_or_else(|| ProfileError {
                field: f(key),
                message: format!("{s:?} is not PORT or LOW-HIGH (0..=65535, LOW <= HIGH)"),
            })
        }
    };
    let ports = port_range("ports", r.ports.as_deref())?;
    let source_ports = port_range("source_ports", r.source_ports.as_deref())?;
    let icmp = match (r.icmp_type, r.icmp_code) {
        (None, None) => None,
        (None, Some(_)) => return err(f("icmp_code"), "an ICMP code needs an ICMP type"),
        (Some(_), _) if protocol != Protocol::Icmp => {
            return err(f("icmp_type"), "an ICMP type needs protocol icmp")
        }
        (Some(t), code) => Some((t, code)),
    };
    let remote = match (r.remote_prefix.as_deref(), r.remote_group.as_deref()) {
        (Some(_), Some(_)) => {
            return err(
                f("remote_group"),
                "a rule has a remote prefix or a remote group, not both",
            )
        }
        (Some(p), None) => {
            let parsed = p.split_once('/').and_then(|(a, l)| {
                let a: IpAddr = a.parse().ok()?;
                let max = if a.is_ipv6() { 128 } else { 32 };
                Some((a, l.parse::<u8>().ok().filter(|l| *l <= max)?))
            });
            let Some((a, len)) = parsed else {
                return err(f("remote_prefix"), format!("{p:?} is not ADDRESS/LENGTH"));
            };
            if a.is_ipv6() != ipv6 {
                return err(
                    f("remote_prefix"),
                    format!("{p:?} is not an {} prefix", r.ethertype),
                );
            }
            if len == 0 {
                Remote::Anywhere
            } else {
                Remote::Prefix(a, len)
            }
        }
        (None, Some(g)) => {
            if !names.contains(g) {
                return err(f("remote_group"), format!("no security group named {g:?}"));
            }
            Remote::Group(g.to_owned())
        }
        (None, None) => Remote::Anywhere,
    };
    Ok(Rule {
        direction: r.direction,
        ipv6,
        protocol,
        ports,
        source_ports,
        icmp,
        remote,
    })
}

impl Model {
    /// Checks the security groups and the instances' references to them, and keeps
    /// them in the model for [`compile`].
    pub fn with_security_groups(
        mut self,
        groups: &[SecurityGroupConfig],
    ) -> Result<Model, ProfileError> {
        let mut names = HashSet::new();
        for (i, g) in groups.iter().enumerate() {
            if g.name.is_empty() || !names.insert(g.name.as_str()) {
                return err(
                    format!("security_groups[{i}].name"),
                    format!("{:?}: empty or used by two groups", g.name),
                );
            }
        }
        let mut out = Vec::new();
        for (i, g) in groups.iter().enumerate() {
            let mut rules: Vec<Rule> = Vec::new();
            for (j, r) in g.rules.iter().enumerate() {
                let f = |k: &str| format!("security_groups[{i}].rules[{j}].{k}");
                let rule = parse_rule(&f, r, &names)?;
                if rules.contains(&rule) {
                    return err(f("direction"), "the group has this rule already");
                }
                rules.push(rule);
            }
            out.push(SecurityGroup {
                name: g.name.clone(),
                rules,
            });
        }
        for (i, inst) in self.instances.iter().enumerate() {
            let field = format!("instances[{i}].security_groups");
            let mut seen = HashSet::new();
            for g in &inst.security_groups {
                if !names.contains(g.as_str()) {
                    return err(field, format!("no security group named {g:?}"));
                }
                if !seen.insert(g) {
                    return err(field, format!("{g:?} is listed twice"));
                }
            }
            if inst.port.is_some() && !inst.security_groups.is_empty() && inst.network > 0xffff {
                return err(
                    field,
                    format!(
                        "network {} is above 65535: a filtered instance's network id is its conntrack zone",
                        inst.network
                    ),
                );
            }
            let metadata_nat = self
                .metadata
                .as_ref()
                .is_some_and(|md| md.mode == ferroflow_config::MetadataMode::Nat);
            if metadata_nat
                && inst.port.is_some()
                && !inst.security_groups.is_empty()
                && inst.network == u32::from(crate::METADATA_ZONE)
            {
                return err(
                    field,
                    format!(
                        "network {} is the metadata service's conntrack zone in mode nat (a filtered instance's network id is its zone)",
                        inst.network
                    ),
                );
            }
        }
        self.security_groups = out;
        Ok(self)
    }

    /// The instances that are members of group `name` (local and remote).
    pub fn members_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Instance> + 'a {
        self.instances
            .iter()
            .filter(move |i| i.security_groups.iter().any(|g| g == name))
    }

    /// The local instances whose traffic the security groups filter, with their ports.
    pub fn filtered(&self) -> impl Iterator<Item = (&Instance, u32)> {
        self.instances
            .iter()
            .filter(|i| !i.security_groups.is_empty())
            .filter_map(|i| i.port.map(|p| (i, p)))
    }
}

/// The match parts (after `ct_state` and the instance) of one rule: one per remote
/// address, destination port block and source port block (the product: a rule with
/// both ranges costs as many entries as their block counts multiplied, at most
/// 30 x 30); empty if it cannot match (a remote group without members).
fn rule_matches(m: &Model, rule: &Rule) -> Vec<String> {
    let proto = match (rule.protocol, rule.ipv6) {
        (Protocol::Any, false) => "ip",
        (Protocol::Tcp, false) => "tcp",
        (Protocol::Udp, false) => "udp",
        (Protocol::Icmp, false) => "icmp",
        (Protocol::Any, true) => "ipv6",
        (Protocol::Tcp, true) => "tcp6",
        (Protocol::Udp, true) => "udp6",
        (Protocol::Icmp, true) => "icmp6",
    };
    // The remote end is the source of ingress connections, the destination of egress ones.
    let field = match (rule.direction, rule.ipv6) {
        (Direction::Ingress, false) => "nw_src",
        (Direction::Egress, false) => "nw_dst",
        (Direction::Ingress, true) => "ipv6_src",
        (Direction::Egress, true) => "ipv6_dst",
    };
    let remotes: Vec<String> = match &rule.remote {
        Remote::Anywhere => vec![String::new()],
        Remote::Prefix(a, len) => vec![format!(",{field}={a}/{len}")],
        Remote::Group(g) => {
            let mut addrs: Vec<String> = if rule.ipv6 {
                m.members_of(g)
                    .flat_map(|i| i.ipv6.iter().map(|a| a.to_string()))
                    .collect()
            } else {
                m.members_of(g)
                    .flat_map(|i| i.addresses.iter().map(|a| a.to_string()))
                    .collect()
            };
            addrs.sort();
            addrs.dedup();
            addrs.iter().map(|a| format!(",{field}={a}")).collect()
        }
    };
    let blocks = |range: Option<(u16, u16)>, field: &str| -> Vec<String> {
        match range {
            None => vec![String::new()],
            Some((lo, hi)) => port_masks(lo, hi)
                .into_iter()
                .map(|(v, mask)| match mask {
                    0 => String::new(),
                    0xffff => format!(",{field}={v}"),
                    _ => format!(",{field}={v:#x}/{mask:#x}"),
                })
                .collect(),
        }
    };
    let ports = blocks(rule.ports, "tp_dst");
    let source_ports = blocks(rule.source_ports, "tp_src");
    let icmp = match rule.icmp {
        None => String::new(),
        Some((t, None)) => format!(",icmp_type={t}"),
        Some((t, Some(c))) => format!(",icmp_type={t},icmp_code={c}"),
    };
    let mut out = Vec::new();
    for r in &remotes {
        for p in &ports {
            for s in &source_ports {
                out.push(format!("{proto}{r}{p}{s}{icmp}"));
            }
        }
    }
    out
}

/// Replaces the top-level action `output:{p}` in `actions` with `with`.
fn replace_output(actions: &str, p: u32, with: &str) -> Option<String> {
    let target = format!("output:{p}");
    let mut depth = 0;
    let mut parts = Vec::new();
    let mut start = 0;
    for (k, c) in actions.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&actions[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    parts.push(&actions[start..]);
    if !parts.contains(&target.as_str()) {
        return None;
    }
    Some(
        parts
            .iter()
            .map(|a| if *a == target { with } else { a })
            .collect::<Vec<_>>()
            .join(","),
    )
}

fn actions_of(f: &ProfileFlow) -> &str {
    f.text.rsplit_once("actions=").map_or("", |(_, a)| a)
}

/// Neighbor discovery and MLD (ICMPv6 types) a filtered instance receives without
/// tracking: the tracker finds them invalid, as Linux does, and they carry no connection.
const ICMP6_UNTRACKED: [u8; 8] = [130, 131, 132, 133, 134, 135, 136, 143];

/// Adds the security groups' flows to `out` (the rest of the profile's flows) and
/// reroutes the filtered instances' traffic through them.
pub fn compile(m: &Model, out: &mut Vec<ProfileFlow>) {
    let base = Role::Base.cookie(0);
    for (i, p) in m.filtered() {
        let Some(net) = m.network(i.network) else {
            continue;
        };
        let sw = switch_table(net.kind);
        let zone = net.id;
        let mac = mac_string(i.mac);
        let allowed = Role::SgAllowed.cookie(i.subject);
        let no_rule = Role::SgNoRule.cookie(i.subject);
        let invalid = Role::SgInvalid.cookie(i.subject);
        let egress_from = [
            format!("in_port={p},dl_src={mac},ip,nw_src="),
            format!("in_port={p},dl_src={mac},ipv6,ipv6_src="),
        ];
        let to_ingress = format!("set_field:{p}->reg6,resubmit(,{SG_INGRESS})");
        for f in out.iter_mut() {
            let actions = actions_of(f);
            let rewritten = if f.table == CLASSIFIER {
                if f.cookie != base || !egress_from.iter().any(|e| f.match_.starts_with(e)) {
                    continue;
                }
                let goto = format!("goto_table:{sw}");
                let Some(head) = actions.strip_suffix(&goto) else {
                    continue;
                };
                format!("{head}goto_table:{SG_EGRESS}")
            } else if (SWITCH_NORMAL..SG_EGRESS).contains(&f.table) {
                match replace_output(actions, p, &to_ingress) {
                    Some(a) => a,
                    None => continue,
                }
            } else {
                continue;
            };
            *f = ProfileFlow::new(f.table, f.priority, f.cookie, &f.match_, &rewritten);
        }

        // ---- egress ----
        for t in ICMP6_UNTRACKED {
            out.push(ProfileFlow::new(
                SG_EGRESS,
                300,
                base,
                &format!("in_port={p},icmp6,icmp_type={t}"),
                &format!("resubmit(,{sw})"),
            ));
        }
        for l3 in ["ip", "ipv6"] {
            out.push(ProfileFlow::new(
                SG_EGRESS,
                100,
                base,
                &format!("in_port={p},{l3}"),
                &format!("ct(table={SG_EGRESS_CT},zone={zone})"),
            ));
        }
        let judge = |out: &mut Vec<ProfileFlow>, table: u8, who: &str, pass: &str, d: Direction| {
            out.push(ProfileFlow::new(
                table,
                300,
                invalid,
                &format!("ct_state=+inv+trk,{who}"),
                "drop",
            ));
            out.push(ProfileFlow::new(
                table,
                290,
                base,
                &format!("ct_state=-new-inv+trk,{who}"),
                pass,
            ));
            for g in &i.security_groups {
                let Some(group) = m.security_groups.iter().find(|x| &x.name == g) else {
                    continue;
                };
                for rule in group.rules.iter().filter(|r| r.direction == d) {
                    for mt in rule_matches(m, rule) {
                        out.push(ProfileFlow::new(
                            table,
                            200,
                            allowed,
                            &format!("ct_state=+new-est-inv+trk,{who},{mt}"),
                            &format!("ct(commit,zone={zone}),{pass}"),
                        ));
                    }
                }
            }
            out.push(ProfileFlow::new(table, 100, no_rule, who, "drop"));
        };
        judge(
            out,
            SG_EGRESS_CT,
            &format!("in_port={p}"),
            &format!("resubmit(,{sw})"),
            Direction::Egress,
        );

        // ---- ingress ----
        let who = format!("reg6={p}");
        for t in ICMP6_UNTRACKED {
            out.push(ProfileFlow::new(
                SG_INGRESS,
                300,
                base,
                &format!("{who},icmp6,icmp_type={t}"),
                &format!("output:{p}"),
            ));
        }
        for l3 in ["ip", "ipv6"] {
            out.push(ProfileFlow::new(
                SG_INGRESS,
                200,
                base,
                &format!("{who},{l3}"),
                &format!("ct(table={SG_INGRESS_CT},zone={zone})"),
            ));
        }
        out.push(ProfileFlow::new(
            SG_INGRESS,
            100,
            base,
            &who,
            &format!("output:{p}"),
        ));
        judge(
            out,
            SG_INGRESS_CT,
            &who,
            &format!("output:{p}"),
            Direction::Ingress,
        );
    }
}

/// A rule as `ferroflowctl secgroup list` shows it: `ingress ipv4 tcp 8000-8010 from 10.0.0.0/8`.
pub fn describe(r: &ferroflow_config::SecurityRuleConfig) -> String {
    let mut s = format!(
        "{} {} {}",
        r.direction.as_str(),
        if r.ethertype.is_empty() {
            "ipv4"
        } else {
            &r.ethertype
        },
        r.protocol.as_deref().unwrap_or("any")
    );
    if let Some(p) = &r.ports {
        let _ = write!(s, " {p}");
    }
    if let Some(p) = &r.source_ports {
        let _ = write!(s, " source {p}");
    }
    if let Some(t) = r.icmp_type {
        let _ = write!(s, " type {t}");
    }
    if let Some(c) = r.icmp_code {
        let _ = write!(s, " code {c}");
    }
    let dir = match r.direction {
        Direction::Ingress => "from",
        Direction::Egress => "to",
    };
    match (&r.remote_prefix, &r.remote_group) {
        (Some(p), _) => {
            let _ = write!(s, " {dir} {p}");
        }
        (None, Some(g)) => {
            let _ = write!(s, " {dir} group {g}");
        }
        (None, None) => {
            let _ = write!(s, " {dir} anywhere");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covered(pairs: &[(u16, u16)]) -> Vec<u16> {
        (0..=65535u16)
            .filter(|x| pairs.iter().any(|(v, m)| x & m == v & m))
            .collect()
    }

    #[test]
    fn port_ranges_are_exact_and_minimal() {
        assert_eq!(
            port_masks(8000, 8010),
            vec![(8000, 0xfff8), (8008, 0xfffe), (8010, 0xffff)]
        );
        assert_eq!(port_masks(80, 80), vec![(80, 0xffff)]);
        assert_eq!(port_masks(0, 65535), vec![(0, 0)]);
        assert_eq!(port_masks(1024, 65535).len(), 6);
        assert_eq!(port_masks(1, 65534).len(), 30);
        for (lo, hi) in [(8000, 8010), (1, 65534), (5, 5), (0, 1023), (4097, 8191)] {
            let pairs = port_masks(lo, hi);
            assert_eq!(covered(&pairs), (lo..=hi).collect::<Vec<_>>(), "{lo}-{hi}");
        }
    }

    #[test]
    fn ports_parse() {
        assert_eq!(parse_ports("8000-8010"), Some((8000, 8010)));
        assert_eq!(parse_ports("22"), Some((22, 22)));
        assert_eq!(parse_ports("10-9"), None);
        assert_eq!(parse_ports("70000"), None);
        assert_eq!(parse_ports("a-b"), None);
    }

    #[test]
    fn outputs_are_replaced_only_at_top_level_and_exactly() {
        assert_eq!(
            replace_output("output:1,output:12,output:2", 1, "X"),
            Some("X,output:12,output:2".into())
        );
        assert_eq!(replace_output("output:12", 1, "X"), None);
        assert_eq!(replace_output("write_actions(output:1)", 1, "X"), None);
    }
}
