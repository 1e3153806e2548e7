//! The description as flows, table by table (the seed's "Required flows").
//!
//! Priorities in the classifier, highest first: metadata return paths (300),
//! metadata requests (290), drops of metadata requests from ports that are not
//! instances (280), ARP requests (260), other ARP (250), IP (240), drops of
//! anything else IP or ARP from an instance (230), IPv6 router advertisements and
//! redirects from instances (229, dropped), neighbor discovery from the instance's
//! own addresses about its own addresses and MAC (228) and any other (227,
//! dropped), MLD reports of duplicate address detection (226), IPv6 from the
//! instance's own addresses (225) and any other (224, dropped), other L2 traffic of
//! L2 networks (220), the last drop of an instance port (210), uplinks (150-160).
//! Ports the profile does not know fall through to the bridge's own flows.

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use ferroflow_config::{MetadataMode, NetworkKind, OFPP_LOCAL};

use crate::model::{Instance, Metadata, Model, Network};
use crate::table::*;
use crate::{mac_string, Role, HOST_NETWORK, METADATA_IP, METADATA_MAC, METADATA_SUBNET_CLIENT};

/// One flow in ovs-ofctl syntax (`text` carries table, priority and cookie too).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProfileFlow {
    pub table: u8,
    pub priority: u16,
    pub cookie: u64,
    /// The match part alone, as the switch identifies the entry (with table and priority).
    pub match_: String,
    pub text: String,
}

impl ProfileFlow {
    pub fn new(table: u8, priority: u16, cookie: u64, match_: &str, actions: &str) -> Self {
        Self::with_timeout(table, priority, cookie, 0, match_, actions)
    }

    pub fn with_timeout(
        table: u8,
        priority: u16,
        cookie: u64,
        idle_timeout: u16,
        match_: &str,
        actions: &str,
    ) -> Self {
        let mut text = format!("table={table},priority={priority},cookie={cookie:#x},");
        if idle_timeout != 0 {
            let _ = write!(text, "idle_timeout={idle_timeout},");
        }
        if !match_.is_empty() {
            text.push_str(match_);
            text.push(',');
        }
        let _ = write!(text, "actions={actions}");
        ProfileFlow {
            table,
            priority,
            cookie,
            match_: match_.to_owned(),
            text,
        }
    }
}

fn port(p: u32) -> String {
    if p == OFPP_LOCAL {
        "LOCAL".into()
    } else {
        p.to_string()
    }
}

fn meta(id: u32) -> String {
    format!("metadata={id:#x}/0xffffffff")
}

fn write_meta(id: u32) -> String {
    format!("write_metadata:{id:#x}/0xffffffff")
}

pub fn switch_table(kind: NetworkKind) -> u8 {
    match kind {
        NetworkKind::Normal => SWITCH_NORMAL,
        NetworkKind::Private => SWITCH_PRIVATE,
        NetworkKind::Vlan => SWITCH_VLAN,
        NetworkKind::Vnet => SWITCH_VNET,
        NetworkKind::Vxlan | NetworkKind::Geneve => SWITCH_TUNNEL,
    }
}

/// The actions that rewrite a reply from the host's metadata server back into
/// one from 169.254.169.254:80 to instance `i`.
pub(crate) fn metadata_return(md: &Metadata, net: &Network, i: &Instance, port_no: u32) -> String {
    let (src_mac, dst_ip) = match md.mode {
        MetadataMode::Subnet => (METADATA_MAC, Some(METADATA_SUBNET_CLIENT)),
        _ => (net.gateway_mac(), None),
    };
    let mut a = format!(
        "set_field:{METADATA_IP}->ip_src,set_field:80->tcp_src,set_field:{}->eth_src,set_field:{}->eth_dst,",
        mac_string(src_mac),
        mac_string(i.mac)
    );
    if let Some(d) = dst_ip {
        let _ = write!(a, "set_field:{d}->ip_dst,");
    }
    let _ = write!(a, "output:{port_no}");
    a
}

/// The actions that send a request for 169.254.169.254:80 to the host's server.
pub(crate) fn metadata_forward(md: &Metadata) -> String {
    format!(
        "set_field:{}->eth_dst,set_field:{}->ip_dst,set_field:{}->tcp_dst,output:LOCAL",
        mac_string(md.host_mac),
        md.host_ip,
        md.host_port
    )
}

/// The match of a request from instance `i` (on `port_no`, from `ip`) to the metadata service.
fn metadata_request(port_no: u32, i: &Instance, ip: Ipv4Addr) -> String {
    format!(
        "in_port={port_no},dl_src={},tcp,nw_src={ip},nw_dst={METADATA_IP},tp_dst=80",
        mac_string(i.mac)
    )
}

/// Every flow of the profile. Deterministic: the same model gives the same
/// flows in the same order, so the switch can diff two versions.
pub fn compile(m: &Model) -> Vec<ProfileFlow> {
    let mut out = Vec::new();
    if m.is_empty() {
        return out;
    }
    let base = Role::Base.cookie(0);
    let md = m.metadata.as_ref();
    let subnet = md.is_some_and(|md| md.mode == MetadataMode::Subnet);

    // ---- instances: classifier, ARP answers about and to them ----
    for i in &m.instances {
        let Some(net) = m.network(i.network) else {
            continue;
        };
        let sw = switch_table(net.kind);
        let mac = mac_string(i.mac);
        let Some(p) = i.port else { continue };
        let spoof = Role::Spoof.cookie(i.subject);
        // The addresses it may speak from (and ARP for).
        let mut sources: Vec<Ipv4Addr> = i.addresses.clone();
        if subnet {
            sources.push(METADATA_SUBNET_CLIENT);
        }
        if let Some(md) = md {
            if md.mode == MetadataMode::Subnet {
                let own = i.addresses[0];
                out.push(ProfileFlow::new(
                    CLASSIFIER,
                    290,
                    base,
                    &metadata_request(p, i, METADATA_SUBNET_CLIENT),
                    &format!(
                        "set_field:{own}->ip_src,{},goto_table:{METADATA_NAT}",
                        write_meta(net.id)
                    ),
                ));
            } else {
                for ip in &i.addresses {
                    out.push(ProfileFlow::new(
                        CLASSIFIER,
                        290,
                        base,
                        &metadata_request(p, i, *ip),
                        &format!("{},goto_table:{METADATA_NAT}", write_meta(net.id)),
                    ));
                }
            }
        }
        for ip in &sources {
            out.push(ProfileFlow::new(
                CLASSIFIER,
                260,
                base,
                &format!("in_port={p},dl_src={mac},arp,arp_op=1,arp_spa={ip},arp_sha={mac}"),
                &format!("{},goto_table:{ARP_RESPONDER}", write_meta(net.id)),
            ));
            out.push(ProfileFlow::new(
                CLASSIFIER,
                250,
                base,
                &format!("in_port={p},dl_src={mac},arp,arp_spa={ip},arp_sha={mac}"),
                &format!("{},goto_table:{sw}", write_meta(net.id)),
            ));
            // The answer's destination: the requester.
            out.push(ProfileFlow::new(
                ARP_REPLY,
                100,
                base,
                &format!("in_port={p},arp,arp_spa={ip}"),
                &format!(
                    "set_field:{mac}->eth_dst,set_field:{mac}->arp_tha,set_field:{ip}->arp_tpa,write_actions(output:IN_PORT)"
                ),
            ));
        }
        for ip in &i.addresses {
            out.push(ProfileFlow::new(
                CLASSIFIER,
                240,
                base,
                &format!("in_port={p},dl_src={mac},ip,nw_src={ip}"),
                &format!("{},goto_table:{sw}", write_meta(net.id)),
            ));
            // Its own address (gratuitous ARP, duplicate address probes) is not answered for it.
            out.push(ProfileFlow::new(
                ARP_RESPONDER,
                110,
                base,
                &format!("{},in_port={p},arp,arp_op=1,arp_tpa={ip}", meta(net.id)),
                &format!("goto_table:{sw}"),
            ));
        }
        out.push(ProfileFlow::new(
            CLASSIFIER,
            230,
            spoof,
            &format!("in_port={p},ip"),
            "drop",
        ));
        out.push(ProfileFlow::new(
            CLASSIFIER,
            230,
            spoof,
            &format!("in_port={p},arp"),
            "drop",
        ));
        if matches!(net.kind, NetworkKind::Normal | NetworkKind::Vnet) || net.kind.is_overlay() {
            ipv6_classifier(&mut out, i, p, net.id, sw);
            // L2 networks carry other protocols from the instance's own MAC.
            out.push(ProfileFlow::new(
                CLASSIFIER,
                220,
                base,
                &format!("in_port={p},dl_src={mac}"),
                &format!("{},goto_table:{sw}", write_meta(net.id)),
            ));
        }
        out.push(ProfileFlow::new(
            CLASSIFIER,
            210,
            spoof,
            &format!("in_port={p}"),
            "drop",
        ));
    }

    // ---- ARP answers: per network, every address the profile knows ----
    for net in &m.networks {
        let mut known: Vec<(Ipv4Addr, [u8; 6])> = Vec::new();
        for i in m.instances.iter().filter(|i| i.network == net.id) {
            known.extend(i.addresses.iter().map(|a| (*a, i.mac)));
        }
        if let Some((g, gm)) = net.gateway {
            known.push((g, gm));
        }
        if subnet {
            known.push((METADATA_IP, METADATA_MAC));
        }
        for (ip, mac) in known {
            out.push(arp_answer(net.id, ip, mac));
        }
        let sw = switch_table(net.kind);
        let miss = match net.kind {
            NetworkKind::Private => ProfileFlow::new(
                ARP_RESPONDER,
                1,
                Role::ArpMiss.cookie(net.id),
                &format!("{},arp", meta(net.id)),
                "controller",
            ),
            _ => ProfileFlow::new(
                ARP_RESPONDER,
                1,
                base,
                &format!("{},arp", meta(net.id)),
                &format!("goto_table:{sw}"),
            ),
        };
        out.push(miss);
    }

    // ---- ND answers: solicitations for an instance's IPv6 address go to the
    // control plane, which answers them (an advertisement needs flags and a
    // checksum that no set_field writes); the rest go on to the network ----
    for net in &m.networks {
        if !matches!(net.kind, NetworkKind::Normal | NetworkKind::Vnet) && !net.kind.is_overlay() {
            continue;
        }
        let mut targets: Vec<Ipv6Addr> = Vec::new();
        for i in m.instances.iter().filter(|i| i.network == net.id) {
            targets.extend(i.ipv6_sources());
        }
        targets.sort();
        targets.dedup();
        for t in targets {
            out.push(ProfileFlow::new(
                ND_RESPONDER,
                100,
                Role::NdAnswer.cookie(net.id),
                &format!("{},icmp6,icmp_type=135,nd_target={t}", meta(net.id)),
                "controller",
            ));
        }
        out.push(ProfileFlow::new(
            ND_RESPONDER,
            1,
            base,
            &meta(net.id),
            &format!("goto_table:{}", switch_table(net.kind)),
        ));
    }

    // ---- the metadata service ----
    if let Some(md) = md {
        // The host asks for instances' addresses (to answer them).
        let host = mac_string(md.host_mac);
        out.push(ProfileFlow::new(
            CLASSIFIER,
            260,
            base,
            &format!(
                "in_port=LOCAL,dl_src={host},arp,arp_op=1,arp_spa={},arp_sha={host}",
                md.host_ip
            ),
            &format!("{},goto_table:{ARP_RESPONDER}", write_meta(HOST_NETWORK)),
        ));
        out.push(ProfileFlow::new(
            ARP_REPLY,
            100,
            base,
            &format!("in_port=LOCAL,arp,arp_spa={}", md.host_ip),
            &format!(
                "set_field:{host}->eth_dst,set_field:{host}->arp_tha,set_field:{}->arp_tpa,write_actions(output:IN_PORT)",
                md.host_ip
            ),
        ));
        for i in m.instances.iter().filter(|i| i.port.is_some()) {
            for ip in &i.addresses {
                out.push(arp_answer(HOST_NETWORK, *ip, i.mac));
            }
        }
        match md.mode {
            MetadataMode::PerConnection => out.push(ProfileFlow::new(
                METADATA_NAT,
                1,
                Role::MetadataMiss.cookie(0),
                &format!("tcp,nw_dst={METADATA_IP},tp_dst=80"),
                "controller",
            )),
            MetadataMode::PerInstance => {
                for i in &m.instances {
                    let (Some(p), Some(net)) = (i.port, m.network(i.network)) else {
                        continue;
                    };
                    for ip in &i.addresses {
                        out.push(ProfileFlow::new(
                            METADATA_NAT,
                            100,
                            base,
                            &format!("{},{}", meta(net.id), metadata_request(p, i, *ip)),
                            &metadata_forward(md),
                        ));
                    }
                }
            }
            MetadataMode::Subnet => out.push(ProfileFlow::new(
                METADATA_NAT,
                100,
                base,
                &format!("tcp,nw_dst={METADATA_IP},tp_dst=80"),
                &metadata_forward(md),
            )),
            MetadataMode::Nat => metadata_nat(&mut out, m, md),
        }
        if matches!(md.mode, MetadataMode::PerInstance | MetadataMode::Subnet) {
            for i in &m.instances {
                let (Some(p), Some(net)) = (i.port, m.network(i.network)) else {
                    continue;
                };
                let ips: &[Ipv4Addr] = if md.mode == MetadataMode::Subnet {
                    &i.addresses[..1]
                } else {
                    &i.addresses
                };
                for ip in ips {
                    out.push(ProfileFlow::new(
                        CLASSIFIER,
                        300,
                        base,
                        &format!(
                            "in_port=LOCAL,tcp,nw_src={},tp_src={},nw_dst={ip}",
                            md.host_ip, md.host_port
                        ),
                        &metadata_return(md, net, i, p),
                    ));
                }
            }
        }
        // Ports that are not instances may not reach it; LOCAL carries nothing else.
        for p in &m.ports {
            if *p != OFPP_LOCAL && m.instance_on(*p).is_none() {
                out.push(ProfileFlow::new(
                    CLASSIFIER,
                    280,
                    Role::NotInstance.cookie(*p),
                    &format!("in_port={},tcp,nw_dst={METADATA_IP},tp_dst=80", port(*p)),
                    "drop",
                ));
            }
        }
        out.push(ProfileFlow::new(
            CLASSIFIER,
            200,
            Role::NotInstance.cookie(OFPP_LOCAL),
            "in_port=LOCAL",
            "drop",
        ));
    }

    // ---- networks: uplinks and the switch_* stages ----
    for net in &m.networks {
        let id = net.id;
        let locals: Vec<(&Instance, u32)> = m.local_members(id).collect();
        let flood_locals: String = locals.iter().map(|(_, p)| format!("output:{p},")).collect();
        match net.kind {
            NetworkKind::Normal => {
                if let Some(u) = net.uplink {
                    out.push(ProfileFlow::new(
                        CLASSIFIER,
                        150,
                        base,
                        &format!("in_port={u}"),
                        &format!("{},goto_table:{SWITCH_NORMAL}", write_meta(id)),
                    ));
                }
                for (i, p) in &locals {
                    out.push(ProfileFlow::new(
                        SWITCH_NORMAL,
                        100,
                        base,
                        &format!("{},dl_dst={}", meta(id), mac_string(i.mac)),
                        &format!("output:{p}"),
                    ));
                }
                let up = net
                    .uplink
                    .map(|u| format!("output:{u},"))
                    .unwrap_or_default();
                out.push(flood(SWITCH_NORMAL, id, &format!("{flood_locals}{up}")));
            }
            NetworkKind::Vlan => {
                let (u, v) = (net.uplink.unwrap_or_default(), net.vlan.unwrap_or_default());
                out.push(ProfileFlow::new(
                    CLASSIFIER,
                    160,
                    base,
                    &format!("in_port={u},dl_vlan={v}"),
                    &format!("pop_vlan,{},goto_table:{SWITCH_VLAN}", write_meta(id)),
                ));
                for (i, p) in &locals {
                    out.push(ProfileFlow::new(
                        SWITCH_VLAN,
                        100,
                        base,
                        &format!("{},dl_dst={}", meta(id), mac_string(i.mac)),
                        &format!("output:{p}"),
                    ));
                }
                out.push(flood(
                    SWITCH_VLAN,
                    id,
                    &format!(
                        "{flood_locals}push_vlan:0x8100,set_field:{}->vlan_vid,output:{u},",
                        0x1000 | v
                    ),
                ));
            }
            NetworkKind::Vnet => {
                let u = net.uplink.unwrap_or_default();
                let bmac = mac_string(net.backbone_mac.unwrap_or_default());
                out.push(ProfileFlow::new(
                    CLASSIFIER,
                    160,
                    base,
                    &format!("in_port={u},dl_type=0x88e7,pbb_isid={id:#x}"),
                    &format!("pop_pbb,{},goto_table:{SWITCH_VNET}", write_meta(id)),
                ));
                let encap = |bda: &str| {
                    format!("push_pbb:0x88e7,set_field:{id:#x}->pbb_isid,set_field:{bda}->eth_dst,set_field:{bmac}->eth_src,output:{u},")
                };
                for i in m.instances.iter().filter(|i| i.network == id) {
                    let dst = format!("{},dl_dst={}", meta(id), mac_string(i.mac));
                    let acts = match (i.port, i.host_mac) {
                        (Some(p), _) => format!("output:{p}"),
                        (None, Some(h)) => encap(&mac_string(h)).trim_end_matches(',').to_owned(),
                        (None, None) => continue,
                    };
                    out.push(ProfileFlow::new(SWITCH_VNET, 100, base, &dst, &acts));
                }
                out.push(flood(
                    SWITCH_VNET,
                    id,
                    &format!("{flood_locals}{}", encap("ff:ff:ff:ff:ff:ff")),
                ));
            }
            NetworkKind::Vxlan | NetworkKind::Geneve => {
                crate::overlay::compile_network(&mut out, m, net, &flood_locals)
            }
            NetworkKind::Private => {
                for (i, p) in &locals {
                    let mac = mac_string(i.mac);
                    for ip in &i.addresses {
                        out.push(ProfileFlow::new(
                            SWITCH_PRIVATE,
                            100,
                            base,
                            &format!("{},ip,dl_dst={mac},nw_dst={ip}", meta(id)),
                            &format!("output:{p}"),
                        ));
                    }
                    out.push(ProfileFlow::new(
                        SWITCH_PRIVATE,
                        100,
                        base,
                        &format!("{},arp,dl_dst={mac}", meta(id)),
                        &format!("output:{p}"),
                    ));
                }
                if let Some(u) = net.uplink {
                    for (i, p) in &locals {
                        for ip in &i.addresses {
                            out.push(ProfileFlow::new(
                                CLASSIFIER,
                                160,
                                base,
                                &format!("in_port={u},ip,nw_dst={ip}"),
                                &format!("{},goto_table:{VERIFY_SOURCE}", write_meta(id)),
                            ));
                            out.push(ProfileFlow::new(
                                CLASSIFIER,
                                160,
                                base,
                                &format!("in_port={u},arp,arp_tpa={ip}"),
                                &format!("output:{p}"),
                            ));
                        }
                    }
                    out.push(ProfileFlow::new(
                        SWITCH_PRIVATE,
                        50,
                        base,
                        &format!("{},in_port={u}", meta(id)),
                        "drop",
                    ));
                    out.push(ProfileFlow::new(
                        SWITCH_PRIVATE,
                        10,
                        base,
                        &format!("{},arp", meta(id)),
                        &format!("output:{u}"),
                    ));
                    out.push(ProfileFlow::new(
                        VERIFY_SOURCE,
                        1,
                        Role::VerifySourceMiss.cookie(id),
                        &format!("{},ip", meta(id)),
                        "controller",
                    ));
                    for (a, len) in &net.prefixes {
                        out.push(ProfileFlow::new(
                            VERIFY_DESTINATION,
                            100,
                            base,
                            &format!("{},ip,nw_dst={a}/{len}", meta(id)),
                            &format!("output:{u}"),
                        ));
                    }
                }
                out.push(ProfileFlow::new(
                    SWITCH_PRIVATE,
                    1,
                    base,
                    &format!("{},ip", meta(id)),
                    &format!("goto_table:{VERIFY_DESTINATION}"),
                ));
            }
        }
    }
    crate::secgroups::compile(m, &mut out);
    out
}

/// What IPv6 instance `i` (on port `p`, in network `id` switched by table `sw`)
/// may send: its own source addresses (link-local, configured) only; no router
/// advertisements or redirects (an instance is no router); neighbor
/// solicitations from its own addresses naming its own MAC (or none), which
/// go to the ND responder; duplicate address detection (from `::`) for its own
/// addresses only; neighbor advertisements for its own addresses with its own
/// MAC (or none). Every refusal is a counted spoof drop, as for IPv4 and ARP.
fn ipv6_classifier(out: &mut Vec<ProfileFlow>, i: &Instance, p: u32, id: u32, sw: u8) {
    let mac = mac_string(i.mac);
    let spoof = Role::Spoof.cookie(i.subject);
    let base = Role::Base.cookie(0);
    let go = format!("{},goto_table:{sw}", write_meta(id));
    let own = i.ipv6_sources();
    let none = "00:00:00:00:00:00";
    let any = Ipv6Addr::UNSPECIFIED;
    for icmp_type in [134, 137] {
        out.push(ProfileFlow::new(
            CLASSIFIER,
            229,
            spoof,
            &format!("in_port={p},icmp6,icmp_type={icmp_type}"),
            "drop",
        ));
    }
    let from = format!("in_port={p},dl_src={mac},icmp6");
    for src in &own {
        for lla in [mac.as_str(), none] {
            out.push(ProfileFlow::new(
                CLASSIFIER,
                228,
                base,
                &format!("{from},icmp_type=135,ipv6_src={src},nd_sll={lla}"),
                &format!("{},goto_table:{ND_RESPONDER}", write_meta(id)),
            ));
            for target in &own {
                out.push(ProfileFlow::new(
                    CLASSIFIER,
                    228,
                    base,
                    &format!("{from},icmp_type=136,ipv6_src={src},nd_target={target},nd_tll={lla}"),
                    &go,
                ));
            }
        }
    }
    for target in &own {
        out.push(ProfileFlow::new(
            CLASSIFIER,
            228,
            base,
            &format!("{from},icmp_type=135,ipv6_src={any},nd_target={target},nd_sll={none}"),
            &go,
        ));
    }
    for icmp_type in [135, 136] {
        out.push(ProfileFlow::new(
            CLASSIFIER,
            227,
            spoof,
            &format!("in_port={p},icmp6,icmp_type={icmp_type}"),
            "drop",
        ));
    }
    // A host joins its solicited-node group before it owns an address (RFC 3810 5.2.13).
    out.push(ProfileFlow::new(
        CLASSIFIER,
        226,
        base,
        &format!("{from},icmp_type=143,ipv6_src={any}"),
        &go,
    ));
    for src in &own {
        out.push(ProfileFlow::new(
            CLASSIFIER,
            225,
            base,
            &format!("in_port={p},dl_src={mac},ipv6,ipv6_src={src}"),
            &go,
        ));
    }
    out.push(ProfileFlow::new(
        CLASSIFIER,
        224,
        spoof,
        &format!("in_port={p},ipv6"),
        "drop",
    ));
}

/// Metadata mode nat: conntrack translates instead of the control plane.
///
/// - `metadata_nat`, per local instance on port P (its requests, which the
///   classifier checked): `ct(commit,zone=METADATA_ZONE,nat(dst=HOST_IP:HOST_PORT),
///   exec(set_field:P->ct_mark))` (nat first: as ovs-ofctl prints it), the host's MAC, `output:LOCAL`;
/// - `classifier` (300), from the server (`in_port=LOCAL`, its address and port):
///   `ct(table=metadata_nat_reply,zone=METADATA_ZONE,nat)`, which translates a
///   tracked reply back to 169.254.169.254:80;
/// - `metadata_nat_reply`: a reply (`+rpl`, not `+inv`) with `ct_mark=P` gets the
///   network's gateway MAC as source, the instance's MAC as destination and goes
///   out of P; anything else (the server talking to an instance first, an invalid
///   segment) is dropped.
fn metadata_nat(out: &mut Vec<ProfileFlow>, m: &Model, md: &Metadata) {
    let base = Role::Base.cookie(0);
    let zone = crate::METADATA_ZONE;
    for i in &m.instances {
        let (Some(p), Some(net)) = (i.port, m.network(i.network)) else {
            continue;
        };
        if i.addresses.is_empty() {
            continue;
        }
        out.push(ProfileFlow::new(
            METADATA_NAT,
            100,
            base,
            &format!(
                "{},in_port={p},tcp,nw_dst={METADATA_IP},tp_dst=80",
                meta(net.id)
            ),
            &format!(
                "ct(commit,zone={zone},nat(dst={}:{}),exec(set_field:{p:#x}->ct_mark)),set_field:{}->eth_dst,output:LOCAL",
                md.host_ip,
                md.host_port,
                mac_string(md.host_mac)
            ),
        ));
        out.push(ProfileFlow::new(
            METADATA_NAT_REPLY,
            100,
            base,
            &format!("ct_state=-inv+rpl+trk,ct_mark={p:#x},tcp"),
            &format!(
                "set_field:{}->eth_src,set_field:{}->eth_dst,output:{p}",
                mac_string(net.gateway_mac()),
                mac_string(i.mac)
            ),
        ));
    }
    out.push(ProfileFlow::new(
        CLASSIFIER,
        300,
        base,
        &format!(
            "in_port=LOCAL,tcp,nw_src={},tp_src={}",
            md.host_ip, md.host_port
        ),
        &format!("ct(table={METADATA_NAT_REPLY},zone={zone},nat)"),
    ));
    out.push(ProfileFlow::new(METADATA_NAT_REPLY, 1, base, "", "drop"));
}

/// Unknown and broadcast destinations go to every port of the network.
fn flood(table: u8, id: u32, outputs: &str) -> ProfileFlow {
    let acts = outputs.trim_end_matches(',');
    ProfileFlow::new(
        table,
        1,
        Role::Base.cookie(0),
        &meta(id),
        if acts.is_empty() { "drop" } else { acts },
    )
}

/// Answers an ARP request for `ip` in network `id` with `mac`: the source
/// side here; [`ARP_REPLY`] addresses it back to the requester. The sender
/// address goes into the action set so that the requester's table can still
/// match the request's own.
fn arp_answer(id: u32, ip: Ipv4Addr, mac: [u8; 6]) -> ProfileFlow {
    let mac = mac_string(mac);
    ProfileFlow::new(
        ARP_RESPONDER,
        100,
        Role::Base.cookie(0),
        &format!("{},arp,arp_op=1,arp_tpa={ip}", meta(id)),
        &format!(
            "set_field:{mac}->eth_src,set_field:2->arp_op,set_field:{mac}->arp_sha,write_actions(set_field:{ip}->arp_spa),goto_table:{ARP_REPLY}"
        ),
    )
}
