//! Security groups compile into conntrack tables that every filtered instance's IP
//! traffic goes through, in both directions, on every kind of network.

use ferroflow_config::{
    Direction, InstanceConfig, MetadataMode, SecurityGroupConfig, SecurityRuleConfig,
};
use openflow::messages::FlowModCommand;
use vnet::{compile, table, Model, Role};

mod common;
use common::sample;

fn rule(direction: Direction, protocol: &str, ports: Option<&str>) -> SecurityRuleConfig {
    SecurityRuleConfig {
        direction,
        ethertype: "ipv4".into(),
        protocol: Some(protocol.into()),
        ports: ports.map(Into::into),
        ..Default::default()
    }
}

fn groups() -> Vec<SecurityGroupConfig> {
    let mut from_web = rule(Direction::Ingress, "tcp", Some("5432"));
    from_web.remote_group = Some("web".into());
    let mut v6 = rule(Direction::Ingress, "icmp", None);
    v6.ethertype = "ipv6".into();
    v6.remote_prefix = Some("fd00::/64".into());
    vec![
        SecurityGroupConfig {
            name: "web".into(),
            rules: vec![
                rule(Direction::Ingress, "tcp", Some("8000-8010")),
                rule(Direction::Egress, "any", None),
                v6,
            ],
        },
        SecurityGroupConfig {
            name: "db".into(),
            rules: vec![from_web],
        },
    ]
}

fn model(mut instances: Vec<InstanceConfig>) -> Model {
    let (n, _, md, p) = sample(MetadataMode::PerInstance);
    for i in &mut instances {
        if i.port.is_some() && i.name != "b" {
            i.security_groups = vec!["web".into()];
        }
    }
    Model::build(&n, &instances, Some(&md), &p)
        .expect("valid")
        .with_security_groups(&groups())
        .expect("valid groups")
}

#[test]
fn filtered_traffic_goes_through_conntrack_both_ways() {
    let (_, instances, _, _) = sample(MetadataMode::PerInstance);
    let m = model(instances);
    let flows = compile(&m);
    let mut seen = std::collections::HashSet::new();
    for f in &flows {
        flow_syntax::parse_flow_mod(&f.text, FlowModCommand::Add)
            .unwrap_or_else(|e| panic!("{}: {e}", f.text));
        assert!(
            seen.insert((f.table, f.priority, f.match_.clone())),
            "{}",
            f.text
        );
        assert!(
            table::NAMES.iter().any(|(t, _)| *t == f.table),
            "{}",
            f.text
        );
    }
    // Ports 1 (a), 3 (c), 4 (d), 5 (e) are filtered; 2 (b) is not.
    for p in [1, 3, 4, 5] {
        for f in flows
            .iter()
            .filter(|f| f.table >= table::SWITCH_NORMAL && f.table < table::SG_EGRESS)
        {
            let actions = f.text.rsplit_once("actions=").unwrap().1;
            assert!(
                !actions.split(',').any(|a| a == format!("output:{p}")),
                "the switch tables reach filtered port {p} only through sg_ingress: {}",
                f.text
            );
        }
        assert!(flows.iter().any(|f| f.table == table::SG_INGRESS_CT
            && f.match_ == format!("reg6={p}")
            && Role::of_cookie(f.cookie) == Some(Role::SgNoRule)));
        assert!(flows.iter().any(|f| f.table == table::SG_EGRESS_CT
            && f.match_ == format!("in_port={p}")
            && Role::of_cookie(f.cookie) == Some(Role::SgNoRule)));
        assert!(flows.iter().any(|f| f.table == 0
            && f.match_.starts_with(&format!("in_port={p},"))
            && f.match_.contains(",ip,nw_src=")
            && f.text
                .ends_with(&format!("goto_table:{}", table::SG_EGRESS))));
    }
    assert!(flows
        .iter()
        .any(|f| f.table == table::SWITCH_NORMAL && f.text.ends_with("actions=output:2")));
    // 8000-8010 is three masked entries per filtered instance.
    let range: Vec<_> = flows
        .iter()
        .filter(|f| {
            f.table == table::SG_INGRESS_CT
                && f.match_.starts_with("ct_state=+new-est-inv+trk,reg6=1,tcp")
        })
        .map(|f| f.match_.rsplit_once(',').unwrap().1.to_owned())
        .collect();
    assert_eq!(
        range,
        [
            "tp_dst=0x1f40/0xfff8",
            "tp_dst=0x1f48/0xfffe",
            "tp_dst=8010"
        ]
    );
    assert!(flows.iter().any(|f| f.table == table::SG_INGRESS_CT
        && f.match_ == "ct_state=+new-est-inv+trk,reg6=1,icmp6,ipv6_src=fd00::/64"));
    assert!(flows.iter().any(|f| f.table == table::SG_EGRESS_CT
        && f.match_ == "ct_state=+new-est-inv+trk,in_port=1,ip"
        && f.text.ends_with("actions=ct(commit,zone=1),resubmit(,30)")));
}

#[test]
fn remote_groups_follow_membership() {
    let (_, mut instances, _, _) = sample(MetadataMode::PerInstance);
    // b (10.0.0.2) is in db, which lets web's members reach it on 5432.
    instances[1].security_groups = vec!["db".into()];
    let db_rules = |m: &Model| -> Vec<String> {
        compile(m)
            .into_iter()
            .filter(|f| f.table == table::SG_INGRESS_CT && f.match_.contains("reg6=2,tcp"))
            .map(|f| f.match_)
            .collect()
    };
    let mut m = model(instances.clone());
    m.instances[1].security_groups = vec!["db".into()];
    let all = db_rules(&m);
    // web's local members: a, c, d, e.
    assert_eq!(all.len(), 4, "{all:?}");
    assert!(all
        .iter()
        .any(|r| r.contains("nw_src=10.0.0.1,tp_dst=5432")));
    // a leaves web: its address is no longer allowed.
    let mut m = model(instances);
    m.instances[1].security_groups = vec!["db".into()];
    m.instances[0].security_groups = vec![];
    let fewer = db_rules(&m);
    assert_eq!(fewer.len(), 3, "{fewer:?}");
    assert!(!fewer.iter().any(|r| r.contains("nw_src=10.0.0.1,")));
}

#[test]
fn bad_groups_name_the_field() {
    let (n, mut i, md, p) = sample(MetadataMode::PerInstance);
    i[0].security_groups = vec!["nope".into()];
    let e = Model::build(&n, &i, Some(&md), &p)
        .unwrap()
        .with_security_groups(&groups())
        .unwrap_err();
    assert_eq!(e.field, "instances[0].security_groups");
    type Edit<'a> = &'a dyn Fn(&mut SecurityRuleConfig);
    let cases: [(Edit, &str); 5] = [
        (&|r| r.ports = Some("9-8".into()), "ports"),
        (&|r| r.protocol = Some("sctp".into()), "protocol"),
        (
            &|r| r.remote_prefix = Some("fd00::/8".into()),
            "remote_prefix",
        ),
        (&|r| r.remote_group = Some("ghost".into()), "remote_group"),
        (
            &|r| {
                r.protocol = Some("icmp".into());
            },
            "ports",
        ),
    ];
    let (n, i, md, p) = sample(MetadataMode::PerInstance);
    for (edit, field) in cases {
        let mut g = groups();
        edit(&mut g[0].rules[0]);
        let e = Model::build(&n, &i, Some(&md), &p)
            .unwrap()
            .with_security_groups(&g)
            .unwrap_err();
        assert_eq!(
            e.field,
            format!("security_groups[0].rules[0].{field}"),
            "{e}"
        );
    }
}

/// Source-port ranges compile to `tp_src` blocks as destination ranges do to `tp_dst`
/// (their product when a rule has both); ICMP rules match the opening message's type and
/// code, for ICMPv6 too; every entry is valid flow text.
#[test]
fn source_ports_and_icmp_type_and_code_compile_to_their_fields() {
    let mut ssh = rule(Direction::Ingress, "tcp", Some("22"));
    ssh.source_ports = Some("1024-65535".into());
    let mut echo = rule(Direction::Ingress, "icmp", None);
    echo.icmp_type = Some(8);
    echo.icmp_code = Some(0);
    let mut unreachable = rule(Direction::Egress, "icmp", None);
    unreachable.icmp_type = Some(3);
    let mut echo6 = rule(Direction::Ingress, "icmp", None);
    echo6.ethertype = "ipv6".into();
    echo6.icmp_type = Some(128);
    let mut dns = rule(Direction::Egress, "udp", Some("53"));
    dns.source_ports = Some("5000-5001".into());
    let g = vec![SecurityGroupConfig {
        name: "web".into(),
        rules: vec![ssh, echo, unreachable, echo6, dns],
    }];
    let (n, mut i, md, p) = sample(MetadataMode::PerInstance);
    i[0].security_groups = vec!["web".into()];
    let m = Model::build(&n, &i, Some(&md), &p)
        .unwrap()
        .with_security_groups(&g)
        .unwrap();
    let flows = compile(&m);
    for f in &flows {
        flow_syntax::parse_flow_mod(&f.text, FlowModCommand::Add)
            .unwrap_or_else(|e| panic!("{}: {e}", f.text));
    }
    let rules = |table: u8, who: &str| -> Vec<String> {
        let head = format!("ct_state=+new-est-inv+trk,{who},");
        flows
            .iter()
            .filter(|f| f.table == table && Role::of_cookie(f.cookie) == Some(Role::SgAllowed))
            .filter_map(|f| f.match_.strip_prefix(&head).map(str::to_owned))
            .collect()
    };
    assert_eq!(
        rules(table::SG_INGRESS_CT, "reg6=1"),
        [
            "tcp,tp_dst=22,tp_src=0x400/0xfc00",
            "tcp,tp_dst=22,tp_src=0x800/0xf800",
            "tcp,tp_dst=22,tp_src=0x1000/0xf000",
            "tcp,tp_dst=22,tp_src=0x2000/0xe000",
            "tcp,tp_dst=22,tp_src=0x4000/0xc000",
            "tcp,tp_dst=22,tp_src=0x8000/0x8000",
            "icmp,icmp_type=8,icmp_code=0",
            "icmp6,icmp_type=128",
        ]
    );
    assert_eq!(
        rules(table::SG_EGRESS_CT, "in_port=1"),
        ["icmp,icmp_type=3", "udp,tp_dst=53,tp_src=0x1388/0xfffe",]
    );
    let text = vnet::secgroups::describe(&g[0].rules[0]);
    assert_eq!(text, "ingress ipv4 tcp 22 source 1024-65535 from anywhere");
    let text = vnet::secgroups::describe(&g[0].rules[1]);
    assert_eq!(text, "ingress ipv4 icmp type 8 code 0 from anywhere");
}

#[test]
fn bad_source_ports_and_icmp_fields_name_the_field() {
    type Edit<'a> = &'a dyn Fn(&mut SecurityRuleConfig);
    let cases: [(Edit, &str); 5] = [
        (&|r| r.source_ports = Some("2-1".into()), "source_ports"),
        (&|r| r.source_ports = Some("x".into()), "source_ports"),
        (&|r| r.icmp_type = Some(8), "icmp_type"),
        (
            &|r| {
                r.protocol = Some("icmp".into());
                r.ports = None;
                r.icmp_code = Some(0);
            },
            "icmp_code",
        ),
        (
            &|r| {
                r.protocol = Some("icmp".into());
                r.ports = None;
                r.source_ports = Some("80".into());
            },
            "source_ports",
        ),
    ];
    let (n, i, md, p) = sample(MetadataMode::PerInstance);
    for (edit, field) in cases {
        let mut g = groups();
        edit(&mut g[0].rules[0]);
        let e = Model::build(&n, &i, Some(&md), &p)
            .unwrap()
            .with_security_groups(&g)
            .unwrap_err();
        assert_eq!(
            e.field,
            format!("security_groups[0].rules[0].{field}"),
            "{e}"
        );
    }
    // Two rules that differ only in their ICMP code are two rules.
    let mut g = groups();
    let mut a = rule(Direction::Ingress, "icmp", None);
    a.icmp_type = Some(3);
    let mut b = a.clone();
    b.icmp_code = Some(4);
    g[0].rules.extend([a.clone(), b]);
    assert!(Model::build(&n, &i, Some(&md), &p)
        .unwrap()
        .with_security_groups(&g)
        .is_ok());
    g[0].rules.push(a);
    assert!(Model::build(&n, &i, Some(&md), &p)
        .unwrap()
        .with_security_groups(&g)
        .is_err());
}

/// Metadata mode nat tracks its connections in zone 65535, so a filtered instance's
/// network (its zone) may not be 65535 then; in the other modes it may.
#[test]
fn the_metadata_zone_is_no_filtered_network_in_mode_nat() {
    for (mode, ok) in [
        (MetadataMode::Nat, false),
        (MetadataMode::PerInstance, true),
    ] {
        let (mut n, mut i, md, p) = sample(mode);
        n[0].id = 65535;
        for inst in i.iter_mut().filter(|x| x.network == 1) {
            inst.network = 65535;
        }
        i[0].security_groups = vec!["web".into()];
        let r = Model::build(&n, &i, Some(&md), &p)
            .unwrap()
            .with_security_groups(&groups());
        match r {
            Ok(_) => assert!(ok, "{mode:?}: accepted"),
            Err(e) => {
                assert!(!ok, "{mode:?}: {e}");
                assert_eq!(e.field, "instances[0].security_groups");
                assert!(e.message.contains("metadata"), "{e}");
            }
        }
    }
}
