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
