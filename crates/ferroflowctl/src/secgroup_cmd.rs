//! `ferroflowctl secgroup`: the virtual-network profile's security groups, their
//! rules, and what they did with each filtered instance's packets.

use clap::{Args, Subcommand};
use ferroflow_api::pb;
use tonic::transport::Channel;

use super::output::{print_deleted, print_done, print_list, print_list_rows};
use super::Result;

#[derive(Subcommand, Debug)]
pub enum SecgroupCmd {
    /// ferroflowctl secgroup add web (no rules: members accept no new connection)
    #[command(alias = "create")]
    Add { name: String },
    /// Delete a group no instance is in and no rule names.
    #[command(alias = "delete", alias = "rm")]
    Del { name: String },
    /// Groups with their rules and members.
    List,
    /// Add or delete rules.
    #[command(subcommand)]
    Rule(RuleCmd),
    /// Per filtered instance: packets of new connections allowed by a rule, dropped
    /// because no rule allowed them, dropped as invalid.
    Counters { instance: Option<String> },
}

#[derive(Subcommand, Debug)]
pub enum RuleCmd {
    /// ferroflowctl secgroup rule add web --direction ingress --protocol tcp --ports 8000-8010 --remote-prefix 10.0.0.0/8
    Add(RuleArgs),
    /// Deletes the group's rule with exactly these arguments.
    #[command(alias = "delete", alias = "rm")]
    Del(RuleArgs),
}

#[derive(Args, Debug)]
pub struct RuleArgs {
    group: String,
    /// ingress (connections opened towards the members) or egress.
    #[arg(long)]
    direction: String,
    /// ipv4 or ipv6.
    #[arg(long, default_value = "ipv4")]
    ethertype: String,
    /// tcp, udp, icmp or any.
    #[arg(long, default_value = "any")]
    protocol: String,
    /// tcp/udp destination port or range: 22, 8000-8010.
    #[arg(long)]
    ports: Option<String>,
    /// The remote end: a prefix (default anywhere) ...
    #[arg(long, conflicts_with = "remote_group")]
    remote_prefix: Option<String>,
    /// ... or the addresses of a group's members.
    #[arg(long)]
    remote_group: Option<String>,
    /// tcp/udp source port or range of the opening packet: 1024-65535.
    #[arg(long)]
    source_ports: Option<String>,
    /// icmp: the opening message's type (8: echo request; ICMPv6 128).
    #[arg(long)]
    icmp_type: Option<u8>,
    /// icmp, with --icmp-type: its code.
    #[arg(long, requires = "icmp_type")]
    icmp_code: Option<u8>,
}

fn client(ch: &Channel) -> pb::security_group_service_client::SecurityGroupServiceClient<Channel> {
    pb::security_group_service_client::SecurityGroupServiceClient::new(ch.clone())
}

/// A rule as one line: `ingress ipv4 tcp 8000-8010 from 10.0.0.0/8`,
/// `ingress ipv4 tcp 22 source 1024-65535 from anywhere`, `ingress ipv4 icmp type 8 code 0 ...`.
fn describe(r: &pb::SecurityRule) -> String {
    let mut s = format!("{} {} {}", r.direction, r.ethertype, r.protocol);
    if !r.ports.is_empty() {
        s += &format!(" {}", r.ports);
    }
    if !r.source_ports.is_empty() {
        s += &format!(" source {}", r.source_ports);
    }
    if let Some(t) = r.icmp_type {
        s += &format!(" type {t}");
    }
    if let Some(c) = r.icmp_code {
        s += &format!(" code {c}");
    }
    let dir = if r.direction == "egress" {
        "to"
    } else {
        "from"
    };
    if !r.remote_prefix.is_empty() {
        s += &format!(" {dir} {}", r.remote_prefix);
    } else if !r.remote_group.is_empty() {
        s += &format!(" {dir} group {}", r.remote_group);
    } else {
        s += &format!(" {dir} anywhere");
    }
    s
}

fn request(a: &RuleArgs) -> pb::SecurityRuleRequest {
    pb::SecurityRuleRequest {
        group: a.group.clone(),
        rule: Some(pb::SecurityRule {
            direction: a.direction.clone(),
            ethertype: a.ethertype.clone(),
            protocol: a.protocol.clone(),
            ports: a.ports.clone().unwrap_or_default(),
            remote_prefix: a.remote_prefix.clone().unwrap_or_default(),
            remote_group: a.remote_group.clone().unwrap_or_default(),
            source_ports: a.source_ports.clone().unwrap_or_default(),
            icmp_type: a.icmp_type.map(u32::from),
            icmp_code: a.icmp_code.map(u32::from),
        }),
    }
}

pub async fn secgroup(ch: &Channel, cmd: &SecgroupCmd, json: bool) -> Result<()> {
    let mut c = client(ch);
    match cmd {
        SecgroupCmd::Add { name } => {
            let g = c
                .create_group(pb::SecurityGroup {
                    name: name.clone(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            print_done(json, &g, |g| format!("added security group {}", g.name));
        }
        SecgroupCmd::Del { name } => {
            c.delete_group(pb::DeleteSecurityGroupRequest { name: name.clone() })
                .await?;
            print_deleted(json, || format!("deleted security group {name}"));
        }
        SecgroupCmd::List => {
            let groups = c
                .list_groups(pb::ListSecurityGroupsRequest {})
                .await?
                .into_inner()
                .groups;
            print_list_rows(json, &groups, &["GROUP", "RULE", "MEMBERS"], |g| {
                let members = g.members.join(" ");
                if g.rules.is_empty() {
                    return vec![vec![g.name.clone(), "(no rules)".into(), members]];
                }
                // The members once, on the group's first rule.
                let mut who = Some(members);
                g.rules
                    .iter()
                    .map(|r| {
                        let members = who.take().unwrap_or_default();
                        vec![g.name.clone(), describe(r), members]
                    })
                    .collect()
            });
        }
        SecgroupCmd::Rule(r) => {
            let (a, verb) = match r {
                RuleCmd::Add(a) => (a, "added"),
                RuleCmd::Del(a) => (a, "deleted"),
            };
            let g = match r {
                RuleCmd::Add(_) => c.add_rule(request(a)).await?,
                RuleCmd::Del(_) => c.delete_rule(request(a)).await?,
            }
            .into_inner();
            print_done(json, &g, |g| {
                let shown = request(a).rule.map(|r| describe(&r)).unwrap_or_default();
                format!("{verb} rule to {}: {shown}", g.name)
            });
        }
        SecgroupCmd::Counters { instance } => {
            let list = c
                .counters(pb::SecurityGroupCountersRequest {
                    instance: instance.clone().unwrap_or_default(),
                })
                .await?
                .into_inner()
                .instances;
            print_list(
                json,
                &list,
                &["INSTANCE", ">ALLOWED_NEW", ">NO_RULE", ">INVALID"],
                |i| {
                    vec![
                        i.instance.clone(),
                        i.allowed_new.to_string(),
                        i.dropped_no_rule.to_string(),
                        i.dropped_invalid.to_string(),
                    ]
                },
            );
        }
    }
    Ok(())
}
