//! SecurityGroupService: the profile's security groups, one change at a time, each
//! checked and compiled with the rest of the description ([`Api::change_profile`]) and
//! saved with it.

use std::sync::Arc;

use ferroflow_config::{Direction, SecurityGroupConfig, SecurityRuleConfig};
use tonic::{Request, Response, Status};

use super::networks::blocking;
use super::{pb, Api, ApiError};

pub struct SecurityGroups(pub Arc<Api>);

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn rule_config(r: &pb::SecurityRule) -> Result<SecurityRuleConfig, ApiError> {
    let direction = match r.direction.as_str() {
        "ingress" => Direction::Ingress,
        "egress" => Direction::Egress,
        d => {
            return Err(ApiError::invalid(
                "direction",
                format!("{d:?}: ingress or egress"),
            ))
        }
    };
    let byte = |field: &str, v: Option<u32>| -> Result<Option<u8>, ApiError> {
        v.map(|v| {
            u8::try_from(v).map_err(|_| ApiError::invalid(field, format!("{v} is not 0..=255")))
        })
        .transpose()
    };
    Ok(SecurityRuleConfig {
        direction,
        ethertype: if r.ethertype.is_empty() {
            "ipv4".into()
        } else {
            r.ethertype.clone()
        },
        protocol: opt(&r.protocol).filter(|p| p != "any"),
        ports: opt(&r.ports),
        remote_prefix: opt(&r.remote_prefix),
        remote_group: opt(&r.remote_group),
        source_ports: opt(&r.source_ports),
        icmp_type: byte("icmp_type", r.icmp_type)?,
        icmp_code: byte("icmp_code", r.icmp_code)?,
    })
}

fn rule_pb(r: &SecurityRuleConfig) -> pb::SecurityRule {
    pb::SecurityRule {
        direction: r.direction.as_str().into(),
        ethertype: r.ethertype.clone(),
        protocol: r.protocol.clone().unwrap_or_else(|| "any".into()),
        ports: r.ports.clone().unwrap_or_default(),
        remote_prefix: r.remote_prefix.clone().unwrap_or_default(),
        remote_group: r.remote_group.clone().unwrap_or_default(),
        source_ports: r.source_ports.clone().unwrap_or_default(),
        icmp_type: r.icmp_type.map(u32::from),
        icmp_code: r.icmp_code.map(u32::from),
    }
}

fn group_pb(d: &crate::profile::Description, g: &SecurityGroupConfig) -> pb::SecurityGroup {
    pb::SecurityGroup {
        name: g.name.clone(),
        rules: g.rules.iter().map(rule_pb).collect(),
        members: d
            .instances
            .iter()
            .filter(|i| i.security_groups.contains(&g.name))
            .map(|i| i.name.clone())
            .collect(),
    }
}

/// Changes group `name` with `f` and answers it as it is afterwards.
async fn change_group(
    api: &Arc<Api>,
    name: String,
    f: impl FnOnce(&mut SecurityGroupConfig) -> Result<(), ApiError> + Send + 'static,
) -> Result<pb::SecurityGroup, Status> {
    blocking(api, move |api| {
        api.change_profile(|d| {
            let g = d
                .security_groups
                .iter_mut()
                .find(|g| g.name == name)
                .ok_or_else(|| ApiError::NotFound(format!("no security group named {name:?}")))?;
            f(g)
        })?;
        let d = api.description()?;
        let g = d
            .security_groups
            .iter()
            .find(|g| g.name == name)
            .ok_or_else(|| ApiError::NotFound(format!("no security group named {name:?}")))?;
        Ok(group_pb(&d, g))
    })
    .await
}

#[tonic::async_trait]
impl pb::security_group_service_server::SecurityGroupService for SecurityGroups {
    async fn create_group(
        &self,
        req: Request<pb::SecurityGroup>,
    ) -> Result<Response<pb::SecurityGroup>, Status> {
        let r = req.into_inner();
        let g = SecurityGroupConfig {
            name: r.name.clone(),
            rules: r.rules.iter().map(rule_config).collect::<Result<_, _>>()?,
        };
        let out = blocking(&self.0, move |api| {
            let name = g.name.clone();
            api.change_profile(|d| {
                if d.security_groups.iter().any(|x| x.name == g.name) {
                    return Err(ApiError::AlreadyExists(format!(
                        "security group {:?} exists",
                        g.name
                    )));
                }
                d.security_groups.push(g);
                Ok(())
            })?;
            let d = api.description()?;
            let g = d.security_groups.iter().find(|g| g.name == name);
            Ok(g.map(|g| group_pb(&d, g)).unwrap_or_default())
        })
        .await?;
        Ok(Response::new(out))
    }

    async fn delete_group(
        &self,
        req: Request<pb::DeleteSecurityGroupRequest>,
    ) -> Result<Response<pb::DeleteSecurityGroupReply>, Status> {
        let name = req.into_inner().name;
        blocking(&self.0, move |api| {
            api.change_profile(|d| {
                if !d.security_groups.iter().any(|g| g.name == name) {
                    return Err(ApiError::NotFound(format!(
                        "no security group named {name:?}"
                    )));
                }
                if let Some(i) = d
                    .instances
                    .iter()
                    .find(|i| i.security_groups.contains(&name))
                {
                    return Err(ApiError::FailedPrecondition(format!(
                        "instance {:?} is a member of {name:?}: take it out first",
                        i.name
                    )));
                }
                if let Some(g) = d.security_groups.iter().find(|g| {
                    g.name != name
                        && g.rules
                            .iter()
                            .any(|r| r.remote_group.as_deref() == Some(&name))
                }) {
                    return Err(ApiError::FailedPrecondition(format!(
                        "a rule of group {:?} names {name:?} as its remote group: delete it first",
                        g.name
                    )));
                }
                d.security_groups.retain(|g| g.name != name);
                Ok(())
            })
        })
        .await?;
        Ok(Response::new(pb::DeleteSecurityGroupReply {}))
    }

    async fn list_groups(
        &self,
        _req: Request<pb::ListSecurityGroupsRequest>,
    ) -> Result<Response<pb::ListSecurityGroupsReply>, Status> {
        let d = blocking(&self.0, |api| api.description()).await?;
        Ok(Response::new(pb::ListSecurityGroupsReply {
            groups: d.security_groups.iter().map(|g| group_pb(&d, g)).collect(),
        }))
    }

    async fn add_rule(
        &self,
        req: Request<pb::SecurityRuleRequest>,
    ) -> Result<Response<pb::SecurityGroup>, Status> {
        let r = req.into_inner();
        let rule = rule_config(&r.rule.unwrap_or_default())?;
        let out = change_group(&self.0, r.group, move |g| {
            if g.rules.contains(&rule) {
                return Err(ApiError::AlreadyExists(format!(
                    "group {:?} has this rule already",
                    g.name
                )));
            }
            g.rules.push(rule);
            Ok(())
        })
        .await?;
        Ok(Response::new(out))
    }

    async fn delete_rule(
        &self,
        req: Request<pb::SecurityRuleRequest>,
    ) -> Result<Response<pb::SecurityGroup>, Status> {
        let r = req.into_inner();
        let rule = rule_config(&r.rule.unwrap_or_default())?;
        let out = change_group(&self.0, r.group, move |g| {
            let before = g.rules.len();
            g.rules.retain(|x| *x != rule);
            if g.rules.len() == before {
                return Err(ApiError::NotFound(format!(
                    "group {:?} has no rule {}",
                    g.name,
                    vnet::secgroups::describe(&rule)
                )));
            }
            Ok(())
        })
        .await?;
        Ok(Response::new(out))
    }

    async fn counters(
        &self,
        req: Request<pb::SecurityGroupCountersRequest>,
    ) -> Result<Response<pb::SecurityGroupCountersReply>, Status> {
        let want = req.into_inner().instance;
        let instances = blocking(&self.0, move |api| {
            let mut st = api.sw.lock().map_err(super::busy)?;
            st.tables.fold_counters();
            let names = crate::profile::filtered_instances(&st);
            if !want.is_empty() && !names.contains(&want) {
                return Err(ApiError::NotFound(format!(
                    "no instance named {want:?} in a security group"
                )));
            }
            Ok(names
                .into_iter()
                .filter(|n| want.is_empty() || *n == want)
                .filter_map(|n| {
                    let (c, _) = crate::profile::firewall_counters_folded(&st, &n)?;
                    Some(pb::InstanceFirewallCounters {
                        instance: n,
                        allowed_new: c.allowed_new,
                        dropped_no_rule: c.dropped_no_rule,
                        dropped_invalid: c.dropped_invalid,
                    })
                })
                .collect())
        })
        .await?;
        Ok(Response::new(pb::SecurityGroupCountersReply { instances }))
    }
}
