//! The profile's flows are valid ovs-ofctl text, identify entries uniquely,
//! and follow the description.

use ferroflow_config::MetadataMode;
use openflow::messages::FlowModCommand;
use std::net::Ipv6Addr;
use vnet::{compile, react, table, Model, Role};

mod common;
use common::sample;

#[test]
fn every_flow_parses_and_entries_are_unique() {
    for mode in [
        MetadataMode::PerConnection,
        MetadataMode::PerInstance,
        MetadataMode::Subnet,
        MetadataMode::Nat,
    ] {
        let (n, i, md, p) = sample(mode);
        let m = Model::build(&n, &i, Some(&md), &p).expect("valid");
        let flows = compile(&m);
        assert!(flows.len() > 50, "{mode:?}: {} flows", flows.len());
        let mut seen = std::collections::HashSet::new();
        for f in &flows {
            flow_syntax::parse_flow_mod(&f.text, FlowModCommand::Add)
                .unwrap_or_else(|e| panic!("{mode:?}: {}: {e}", f.text));
            assert!(
                seen.insert((f.table, f.priority, f.match_.clone())),
                "{mode:?}: two flows for one entry: {}",
                f.text
            );
            assert!(
                table::NAMES.iter().any(|(t, _)| *t == f.table),
                "{}",
                f.text
            );
        }
        // Every instance port ends in a counted drop.
        for port in 1..=5 {
            assert!(flows.iter().any(|f| f.table == 0
                && f.match_ == format!("in_port={port}")
                && f.text.ends_with("actions=drop")
                && Role::of_cookie(f.cookie) == Some(Role::Spoof)));
        }
        // The vnet sends PBB to the remote instance's host.
        assert!(flows.iter().any(|f| f.table == table::SWITCH_VNET
            && f.text.contains("push_pbb:0x88e7")
            && f.text.contains("02:bb:00:00:00:02->eth_dst")));
    }
}

#[test]
fn ipv6_from_instances_cannot_advertise_routes_spoof_sources_or_claim_others() {
    let (n, mut i, md, p) = sample(MetadataMode::PerInstance);
    i[0].ipv6 = vec!["fd00::1".parse().unwrap()];
    let m = Model::build(&n, &i, Some(&md), &p).unwrap();
    let flows = compile(&m);
    let find = |table: u8, priority: u16, match_: &str| {
        flows
            .iter()
            .find(|f| f.table == table && f.priority == priority && f.match_ == match_)
            .unwrap_or_else(|| panic!("no flow {priority} {match_}"))
    };
    let drop = |f: &vnet::ProfileFlow| {
        assert!(f.text.ends_with("actions=drop"), "{}", f.text);
        assert_eq!(Role::of_cookie(f.cookie), Some(Role::Spoof), "{}", f.text);
    };
    // Instance a (port 1, default network, L2; fd00::1) and e (port 5, vnet; link-local only).
    for (port, mac, ll, global) in [
        (1, "02:00:00:00:01:01", "fe80::ff:fe00:101", Some("fd00::1")),
        (5, "02:00:00:00:04:01", "fe80::ff:fe00:401", None),
    ] {
        let own: Vec<&str> = [Some(ll), global].into_iter().flatten().collect();
        for ty in [134, 137] {
            drop(find(
                0,
                229,
                &format!("in_port={port},icmp6,icmp_type={ty}"),
            ));
        }
        let from = format!("in_port={port},dl_src={mac},icmp6");
        for src in &own {
            for lla in [mac, "00:00:00:00:00:00"] {
                let f = find(
                    0,
                    228,
                    &format!("{from},icmp_type=135,ipv6_src={src},nd_sll={lla}"),
                );
                assert!(f.text.contains("goto_table:22"), "{}", f.text);
                for target in &own {
                    let f = find(
                        0,
                        228,
                        &format!(
                            "{from},icmp_type=136,ipv6_src={src},nd_target={target},nd_tll={lla}"
                        ),
                    );
                    assert!(f.text.contains("goto_table:"), "{}", f.text);
                }
            }
            find(
                0,
                225,
                &format!("in_port={port},dl_src={mac},ipv6,ipv6_src={src}"),
            );
            find(
                0,
                228,
                &format!(
                    "{from},icmp_type=135,ipv6_src=::,nd_target={src},nd_sll=00:00:00:00:00:00"
                ),
            );
        }
        // Exactly those: no advertisement for another's target, no source but its own.
        let n_na = flows
            .iter()
            .filter(|f| f.match_.starts_with(&from) && f.match_.contains("icmp_type=136"))
            .count();
        assert_eq!(n_na, own.len() * own.len() * 2);
        let n_src = flows
            .iter()
            .filter(|f| f.priority == 225 && f.match_.starts_with(&format!("in_port={port},")))
            .count();
        assert_eq!(n_src, own.len());
        for ty in [135, 136] {
            drop(find(
                0,
                227,
                &format!("in_port={port},icmp6,icmp_type={ty}"),
            ));
        }
        drop(find(0, 224, &format!("in_port={port},ipv6")));
        // Above the L2 pass-through of the instance's MAC, which would let them through.
        find(0, 220, &format!("in_port={port},dl_src={mac}"));
    }
    // The ND responder knows every address of the network, and nothing of others.
    for (net, target) in [
        (1, "fd00::1"),
        (1, "fe80::ff:fe00:101"),
        (1, "fe80::ff:fe00:102"),
        (4, "fe80::ff:fe00:409"),
    ] {
        let f = find(
            table::ND_RESPONDER,
            100,
            &format!("metadata={net:#x}/0xffffffff,icmp6,icmp_type=135,nd_target={target}"),
        );
        assert_eq!(Role::of_cookie(f.cookie), Some(Role::NdAnswer));
        assert!(f.text.ends_with("actions=controller"), "{}", f.text);
    }
    // Networks without the L2 pass-through drop IPv6 anyway (the port's last drop).
    assert!(!flows
        .iter()
        .any(|f| f.match_.starts_with("in_port=3,") && f.match_.contains("icmp6")));
}

#[test]
fn ipv6_addresses_are_checked() {
    let (n, mut i, md, p) = sample(MetadataMode::PerInstance);
    for (k, bad) in [
        (0, "::"),
        (0, "ff02::1"),
        (0, "::1"),
        (0, "::ffff:10.0.0.1"),
        (2, "fd00::2"),
    ] {
        let mut i = i.clone();
        i[k].ipv6 = vec![bad.parse().unwrap()];
        let e = Model::build(&n, &i, Some(&md), &p).unwrap_err();
        assert_eq!(e.field, format!("instances[{k}].ipv6"), "{bad}: {e}");
    }
    i[0].ipv6 = vec!["2001:db8::1".parse().unwrap()];
    Model::build(&n, &i, Some(&md), &p).unwrap();
}

/// An untagged NS from `src` (MAC, IPv6) for `target`, with a source link-layer option.
fn solicitation(src_mac: [u8; 6], src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let mut f = vec![0x33, 0x33, 0xff, 0, 0, 2];
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, 0, 32, 58, 255]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&"ff02::1:ff00:2".parse::<Ipv6Addr>().unwrap().octets());
    f.extend_from_slice(&[135, 0, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(&target.octets());
    f.extend_from_slice(&[1, 1]);
    f.extend_from_slice(&src_mac);
    f
}

/// The one's-complement sum over the pseudo-header and ICMPv6 message: 0xffff when the checksum holds.
fn icmp6_sum_ok(frame: &[u8]) -> bool {
    let icmp = &frame[54..];
    let mut words: Vec<u8> = frame[22..54].to_vec();
    words.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
    words.extend_from_slice(&[0, 0, 0, 58]);
    words.extend_from_slice(icmp);
    let mut sum: u32 = words
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}

#[test]
fn a_solicitation_for_a_known_address_is_answered_with_a_valid_advertisement() {
    let (n, mut i, md, p) = sample(MetadataMode::PerInstance);
    i[1].ipv6 = vec!["fd00::2".parse().unwrap()];
    let m = Model::build(&n, &i, Some(&md), &p).unwrap();
    let a_mac = [2, 0, 0, 0, 1, 1];
    let b_mac = [2, 0, 0, 0, 1, 2];
    let a_ll: Ipv6Addr = "fe80::ff:fe00:101".parse().unwrap();
    assert_eq!(vnet::link_local_of(a_mac), a_ll);
    let ns = solicitation(a_mac, a_ll, "fd00::2".parse().unwrap());
    let r = vnet::react(&m, Role::NdAnswer.cookie(1), 1, &ns).expect("the profile's");
    assert_eq!(r.refused, None);
    let na = r.reply.expect("an answer");
    assert_eq!(&na[0..6], &a_mac, "to the requester");
    assert_eq!(&na[6..12], &b_mac, "from the target's MAC");
    assert_eq!(&na[12..14], &[0x86, 0xdd]);
    assert_eq!(na[20], 58);
    assert_eq!(na[21], 255, "hop limit 255");
    assert_eq!(
        &na[22..38],
        &"fd00::2".parse::<Ipv6Addr>().unwrap().octets()
    );
    assert_eq!(&na[38..54], &a_ll.octets());
    assert_eq!(na[54], 136);
    assert_eq!(na[58], 0x60, "solicited and override");
    assert_eq!(
        &na[62..78],
        &"fd00::2".parse::<Ipv6Addr>().unwrap().octets()
    );
    assert_eq!(&na[78..80], &[2, 1], "target link-layer option");
    assert_eq!(&na[80..86], &b_mac);
    assert!(icmp6_sum_ok(&na), "checksum");
    assert_eq!(u16::from_be_bytes([na[18], na[19]]) as usize, na.len() - 54);
    // A link-local target is known too; an unknown one, or another network's, is refused.
    let ns = solicitation(a_mac, a_ll, "fe80::ff:fe00:102".parse().unwrap());
    let r = vnet::react(&m, Role::NdAnswer.cookie(1), 1, &ns).unwrap();
    assert!(icmp6_sum_ok(&r.reply.unwrap()));
    for (net, target) in [(1, "fd00::99"), (4, "fd00::2")] {
        let ns = solicitation(a_mac, a_ll, target.parse().unwrap());
        let r = vnet::react(&m, Role::NdAnswer.cookie(net), 1, &ns).unwrap();
        assert!(r.reply.is_none() && r.refused.is_some(), "{target}");
    }
    // Not a solicitation at all.
    let r = vnet::react(&m, Role::NdAnswer.cookie(1), 1, &[0u8; 60]).unwrap();
    assert!(r.reply.is_none() && r.refused.is_some());
}

#[test]
fn per_connection_metadata_installs_a_flow_pair() {
    let (n, i, md, p) = sample(MetadataMode::PerConnection);
    let m = Model::build(&n, &i, Some(&md), &p).unwrap();
    // A TCP SYN from instance a (10.0.0.1:40000) to 169.254.169.254:80.
    let mut f = Vec::new();
    f.extend_from_slice(&[0x02, 0xfe, 0, 0, 1, 1]);
    f.extend_from_slice(&[0x02, 0, 0, 0, 1, 1]);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&[
        0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 169, 254, 169, 254,
    ]);
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&80u16.to_be_bytes());
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&[0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    let r = react(&m, Role::MetadataMiss.cookie(0), 1, &f).expect("the profile's");
    assert!(r.reinject, "{r:?}");
    assert_eq!(r.flows.len(), 2);
    assert!(r.flows[0].text.contains("tp_src=40000") && r.flows[0].text.contains("output:LOCAL"));
    assert!(r.flows[1].text.contains("tp_dst=40000") && r.flows[1].text.contains("output:1"));
    for fl in &r.flows {
        flow_syntax::parse_flow_mod(&fl.text, FlowModCommand::Add).unwrap();
    }
    // From a port without an instance: refused.
    let r = react(&m, Role::MetadataMiss.cookie(0), 10, &f).unwrap();
    assert!(r.flows.is_empty() && r.refused.is_some());
    // Not the profile's cookie: not its business.
    assert!(react(&m, 0x1234, 1, &f).is_none());
}

/// Mode nat: every local instance's requests are committed to conntrack with DNAT to
/// the host's server (its port in ct_mark), the server's replies go through `ct(nat)` and
/// reach only the instance the mark names; no flow sends anything to the control plane
/// and no reply path exists outside conntrack.
#[test]
fn nat_metadata_is_conntrack_flows_without_packet_ins() {
    let (n, i, md, p) = sample(MetadataMode::Nat);
    let m = Model::build(&n, &i, Some(&md), &p).unwrap();
    let flows = compile(&m);
    assert!(
        !flows.iter().any(|f| matches!(
            Role::of_cookie(f.cookie),
            Some(Role::MetadataMiss | Role::MetadataConnection)
        )),
        "no per-connection flows in mode nat"
    );
    let in_table = |t: u8| flows.iter().filter(move |f| f.table == t);
    // Five local instances (a..e on ports 1..5); the remote one has none.
    let requests: Vec<_> = in_table(table::METADATA_NAT).collect();
    assert_eq!(requests.len(), 5, "{requests:#?}");
    for port in 1..=5u32 {
        let fwd = requests
            .iter()
            .find(|f| f.match_.contains(&format!(",in_port={port},")))
            .unwrap_or_else(|| panic!("no request flow for port {port}"));
        assert!(
            fwd.text.ends_with(&format!(
                "actions=ct(commit,zone=65535,nat(dst=10.255.0.1:8775),exec(set_field:{port:#x}->ct_mark)),set_field:02:00:00:00:ff:01->eth_dst,output:LOCAL"
            )),
            "{}",
            fwd.text
        );
        let back = in_table(table::METADATA_NAT_REPLY)
            .find(|f| f.match_ == format!("ct_state=-inv+rpl+trk,ct_mark={port:#x},tcp"))
            .unwrap_or_else(|| panic!("no reply flow for port {port}"));
        assert!(
            back.text.ends_with(&format!("output:{port}")),
            "{}",
            back.text
        );
    }
    // a's replies come from its network's gateway MAC to its own.
    assert!(in_table(table::METADATA_NAT_REPLY).any(|f| {
        f.text.ends_with(
        "actions=set_field:02:fe:00:00:01:01->eth_src,set_field:02:00:00:00:01:01->eth_dst,output:1"
    )
    }));
    // The server's packets are un-NATed by conntrack; untracked ones end in a drop.
    let from_local: Vec<_> = in_table(table::CLASSIFIER)
        .filter(|f| f.priority == 300)
        .collect();
    assert_eq!(from_local.len(), 1, "{from_local:#?}");
    assert_eq!(
        from_local[0].match_,
        "in_port=LOCAL,tcp,nw_src=10.255.0.1,tp_src=8775"
    );
    assert!(from_local[0]
        .text
        .ends_with("actions=ct(table=11,zone=65535,nat)"));
    assert!(in_table(table::METADATA_NAT_REPLY)
        .any(|f| f.priority == 1 && f.match_.is_empty() && f.text.ends_with("actions=drop")));
    // The requests still enter table 10 only from the instances' own addresses.
    assert!(in_table(table::CLASSIFIER).any(|f| f.priority == 290
        && f.match_ == "in_port=1,dl_src=02:00:00:00:01:01,tcp,nw_src=10.0.0.1,nw_dst=169.254.169.254,tp_dst=80"));
    // Nothing to react to: a miss cookie is refused in this mode.
    let r = react(&m, Role::MetadataMiss.cookie(0), 1, &[0u8; 60]).unwrap();
    assert!(r.flows.is_empty() && r.refused.is_some(), "{r:?}");
}

#[test]
fn bad_descriptions_name_the_field() {
    let (mut n, i, md, p) = sample(MetadataMode::PerInstance);
    n[2].vlan = None;
    let e = Model::build(&n, &i, Some(&md), &p).unwrap_err();
    assert_eq!(e.field, "networks[2].vlan");
    let (n, mut i, md, p) = sample(MetadataMode::PerInstance);
    i[1].port = Some("a".into());
    let e = Model::build(&n, &i, Some(&md), &p).unwrap_err();
    assert_eq!(e.field, "instances[1].port");
    let (n, mut i, md, p) = sample(MetadataMode::PerInstance);
    i[0].network = 99;
    assert_eq!(
        Model::build(&n, &i, Some(&md), &p).unwrap_err().field,
        "instances[0].network"
    );
    let (n, i, md, mut p) = sample(MetadataMode::PerInstance);
    p.pop();
    assert_eq!(
        Model::build(&n, &i, Some(&md), &p).unwrap_err().field,
        "metadata"
    );
}

/// The switch refuses a goto that does not go forward (the walk must end after one lookup
/// per table), so every stage of the profile only ever hands packets to a later one.
#[test]
fn every_goto_goes_forward() {
    for mode in [
        MetadataMode::PerConnection,
        MetadataMode::PerInstance,
        MetadataMode::Subnet,
        MetadataMode::Nat,
    ] {
        let (n, i, md, p) = sample(mode);
        let m = Model::build(&n, &i, Some(&md), &p).expect("valid");
        let mut gotos = 0;
        for f in compile(&m) {
            let fm = flow_syntax::parse_flow_mod(&f.text, FlowModCommand::Add).unwrap();
            assert_eq!(fm.table_id, f.table, "{}", f.text);
            for inst in &fm.instructions {
                if let openflow::Instruction::GotoTable(g) = inst {
                    assert!(*g > f.table, "{mode:?}: backward goto: {}", f.text);
                    gotos += 1;
                }
            }
        }
        assert!(
            gotos > 10,
            "{mode:?}: the profile chains its stages ({gotos} gotos)"
        );
    }
}
