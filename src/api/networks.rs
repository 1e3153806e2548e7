//! NetworkService: the virtual-network profile's description, one change at a
//! time, checked by [`vnet::Model`] before anything is installed.

use std::sync::Arc;

use ferroflow_config::{InstanceConfig, MetadataConfig, MetadataMode, NetworkConfig, NetworkKind};
use tonic::{Request, Response, Status};

use super::{pb, Api, ApiError};
use crate::profile::{Description, ProfileChangeError};

pub struct Networks(pub Arc<Api>);

impl From<ProfileChangeError> for ApiError {
    fn from(e: ProfileChangeError) -> Self {
        match e {
            ProfileChangeError::Invalid(p) => {
                // networks[0].uplink -> uplink: the request has one entry.
                let field = p.field.rsplit('.').next().unwrap_or(&p.field).to_owned();
                ApiError::invalid(field, p.message)
            }
            e @ ProfileChangeError::TableFull { .. } => ApiError::ResourceExhausted(e.to_string()),
            e @ ProfileChangeError::Flow { .. } => ApiError::Internal(e.to_string()),
        }
    }
}

impl Api {
    /// The profile's description as the operator last set it.
    pub fn description(&self) -> Result<Description, ApiError> {
        let st = self.sw.lock().map_err(super::busy)?;
        Ok(st.profile.description().clone())
    }

    /// Changes the description with `f`, installs it, and saves it.
    pub fn change_profile(
        &self,
        f: impl FnOnce(&mut Description) -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        let _one = self.change.lock();
        {
            let mut st = self.sw.lock().map_err(super::busy)?;
            let mut desc = st.profile.description().clone();
            f(&mut desc)?;
            crate::profile::set(&mut st, self.sw.now(), desc)?;
        }
        self.sync()?;
        self.poll();
        self.save()
    }
}

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn ip(field: &str, s: &str) -> Result<std::net::Ipv4Addr, ApiError> {
    s.parse()
        .map_err(|_| ApiError::invalid(field, format!("{s:?} is not an IPv4 address")))
}

fn network_config(n: &pb::Network) -> Result<NetworkConfig, ApiError> {
    let kind = match n.kind.as_str() {
        "normal" | "" => NetworkKind::Normal,
        "private" => NetworkKind::Private,
        "vlan" => NetworkKind::Vlan,
        "vnet" => NetworkKind::Vnet,
        "vxlan" => NetworkKind::Vxlan,
        "geneve" => NetworkKind::Geneve,
        k => {
            return Err(ApiError::invalid(
                "kind",
                format!("{k:?}: normal, private, vlan, vnet, vxlan or geneve"),
            ))
        }
    };
    let vlan = match n.vlan {
        0 => None,
        v => Some(
            u16::try_from(v)
                .map_err(|_| ApiError::invalid("vlan", format!("{v} is outside 1..=4094")))?,
        ),
    };
    Ok(NetworkConfig {
        id: n.id,
        name: n.name.clone(),
        kind,
        uplink: opt(&n.uplink),
        vlan,
        gateway: if n.gateway.is_empty() {
            None
        } else {
            Some(ip("gateway", &n.gateway)?)
        },
        gateway_mac: opt(&n.gateway_mac),
        prefixes: n.prefixes.clone(),
        backbone_mac: opt(&n.backbone_mac),
        local_ip: opt(&n.local_ip),
        peers: n
            .peers
            .iter()
            .enumerate()
            .map(|(k, p)| ip(&format!("peers[{k}]"), p))
            .collect::<Result<_, _>>()?,
    })
}

fn network_pb(n: &NetworkConfig) -> pb::Network {
    pb::Network {
        id: n.id,
        name: n.name.clone(),
        kind: n.kind.as_str().into(),
        uplink: n.uplink.clone().unwrap_or_default(),
        vlan: n.vlan.map_or(0, u32::from),
        gateway: n.gateway.map(|g| g.to_string()).unwrap_or_default(),
        gateway_mac: n.gateway_mac.clone().unwrap_or_default(),
        prefixes: n.prefixes.clone(),
        backbone_mac: n.backbone_mac.clone().unwrap_or_default(),
        local_ip: n.local_ip.clone().unwrap_or_default(),
        peers: n.peers.iter().map(|p| p.to_string()).collect(),
    }
}

fn instance_config(i: &pb::Instance) -> Result<InstanceConfig, ApiError> {
    let addresses = i
        .addresses
        .iter()
        .enumerate()
        .map(|(k, a)| ip(&format!("addresses[{k}]"), a))
        .collect::<Result<_, _>>()?;
    let ipv6 = i
        .ipv6
        .iter()
        .enumerate()
        .map(|(k, a)| {
            a.parse::<std::net::Ipv6Addr>().map_err(|_| {
                ApiError::invalid(
                    format!("ipv6[{k}]"),
                    format!("{a:?} is not an IPv6 address"),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(InstanceConfig {
        name: i.name.clone(),
        network: i.network,
        mac: i.mac.clone(),
        addresses,
        ipv6,
        port: opt(&i.port),
        host_mac: opt(&i.host_mac),
        host_ip: if i.host_ip.is_empty() {
            None
        } else {
            Some(ip("host_ip", &i.host_ip)?)
        },
        security_groups: i.security_groups.clone(),
    })
}

fn instance_pb(api: &Api, i: &InstanceConfig) -> pb::Instance {
    let (spoofed_packets, spoofed_bytes) = api
        .sw
        .lock()
        .map(|mut st| crate::profile::spoofed(&mut st, &i.name))
        .unwrap_or_default();
    pb::Instance {
        name: i.name.clone(),
        network: i.network,
        mac: i.mac.clone(),
        addresses: i.addresses.iter().map(|a| a.to_string()).collect(),
        port: i.port.clone().unwrap_or_default(),
        host_mac: i.host_mac.clone().unwrap_or_default(),
        spoofed_packets,
        spoofed_bytes,
        ipv6: i.ipv6.iter().map(|a| a.to_string()).collect(),
        host_ip: i.host_ip.map(|a| a.to_string()).unwrap_or_default(),
        security_groups: i.security_groups.clone(),
    }
}

fn metadata_pb(md: Option<&MetadataConfig>) -> pb::MetadataService {
    match md {
        None => pb::MetadataService::default(),
        Some(md) => pb::MetadataService {
            enabled: true,
            mode: md.mode.as_str().into(),
            host_ip: md.host_ip.to_string(),
            host_mac: md.host_mac.clone(),
            host_port: u32::from(md.host_port),
        },
    }
}

pub(super) async fn blocking<T: Send + 'static>(
    api: &Arc<Api>,
    f: impl FnOnce(&Api) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, Status> {
    let api = Arc::clone(api);
    tokio::task::spawn_blocking(move || f(&api))
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(Status::from)
}

#[tonic::async_trait]
impl pb::network_service_server::NetworkService for Networks {
    async fn create_network(
        &self,
        req: Request<pb::Network>,
    ) -> Result<Response<pb::Network>, Status> {
        let n = network_config(&req.into_inner())?;
        let out = network_pb(&n);
        blocking(&self.0, move |api| {
            api.change_profile(|d| {
                if d.networks.iter().any(|m| m.id == n.id) {
                    return Err(ApiError::AlreadyExists(format!(
                        "network id {} exists",
                        n.id
                    )));
                }
                if d.networks.iter().any(|m| m.name == n.name) {
                    return Err(ApiError::AlreadyExists(format!(
                        "network {:?} exists",
                        n.name
                    )));
                }
                d.networks.push(n);
                Ok(())
            })
        })
        .await?;
        Ok(Response::new(out))
    }

    async fn delete_network(
        &self,
        req: Request<pb::DeleteNetworkRequest>,
    ) -> Result<Response<pb::DeleteNetworkResponse>, Status> {
        let id = req.into_inner().id;
        blocking(&self.0, move |api| {
            api.change_profile(|d| {
                if !d.networks.iter().any(|n| n.id == id) {
                    return Err(ApiError::NotFound(format!("no network with id {id}")));
                }
                if let Some(i) = d.instances.iter().find(|i| i.network == id) {
                    return Err(ApiError::FailedPrecondition(format!(
                        "instance {:?} is attached to network {id}: remove it first",
                        i.name
                    )));
                }
                d.networks.retain(|n| n.id != id);
                Ok(())
            })
        })
        .await?;
        Ok(Response::new(pb::DeleteNetworkResponse {}))
    }

    async fn list_networks(
        &self,
        _req: Request<pb::ListNetworksRequest>,
    ) -> Result<Response<pb::ListNetworksResponse>, Status> {
        let desc = blocking(&self.0, |api| api.description()).await?;
        Ok(Response::new(pb::ListNetworksResponse {
            networks: desc.networks.iter().map(network_pb).collect(),
        }))
    }

    async fn add_instance(
        &self,
        req: Request<pb::Instance>,
    ) -> Result<Response<pb::Instance>, Status> {
        let i = instance_config(&req.into_inner())?;
        let out = blocking(&self.0, move |api| {
            let shown = i.clone();
            api.change_profile(|d| {
                if d.instances.iter().any(|j| j.name == i.name) {
                    return Err(ApiError::AlreadyExists(format!(
                        "instance {:?} exists",
                        i.name
                    )));
                }
                d.instances.push(i);
                Ok(())
            })?;
            Ok(instance_pb(api, &shown))
        })
        .await?;
        Ok(Response::new(out))
    }

    async fn remove_instance(
        &self,
        req: Request<pb::RemoveInstanceRequest>,
    ) -> Result<Response<pb::RemoveInstanceResponse>, Status> {
        let name = req.into_inner().name;
        blocking(&self.0, move |api| {
            api.change_profile(|d| {
                let before = d.instances.len();
                d.instances.retain(|i| i.name != name);
                if d.instances.len() == before {
                    return Err(ApiError::NotFound(format!("no instance named {name:?}")));
                }
                Ok(())
            })
        })
        .await?;
        Ok(Response::new(pb::RemoveInstanceResponse {}))
    }

    async fn list_instances(
        &self,
        _req: Request<pb::ListInstancesRequest>,
    ) -> Result<Response<pb::ListInstancesResponse>, Status> {
        let instances = blocking(&self.0, |api| {
            let desc = api.description()?;
            Ok(desc.instances.iter().map(|i| instance_pb(api, i)).collect())
        })
        .await?;
        Ok(Response::new(pb::ListInstancesResponse { instances }))
    }

    async fn set_metadata_service(
        &self,
        req: Request<pb::MetadataService>,
    ) -> Result<Response<pb::MetadataService>, Status> {
        let r = req.into_inner();
        let md = if r.enabled {
            let mode = match r.mode.as_str() {
                "per-connection" => MetadataMode::PerConnection,
                "per-instance" => MetadataMode::PerInstance,
                "subnet" => MetadataMode::Subnet,
                "nat" => MetadataMode::Nat,
                m => {
                    return Err(ApiError::invalid(
                        "mode",
                        format!("{m:?}: per-connection, per-instance, subnet or nat"),
                    )
                    .into())
                }
            };
            Some(MetadataConfig {
                mode,
                host_ip: ip("host_ip", &r.host_ip)?,
                host_mac: r.host_mac.clone(),
                host_port: match r.host_port {
                    0 => 8775,
                    p => u16::try_from(p).map_err(|_| {
                        ApiError::invalid("host_port", format!("{p} is not a TCP port"))
                    })?,
                },
            })
        } else {
            None
        };
        let out = metadata_pb(md.as_ref());
        blocking(&self.0, move |api| {
            api.change_profile(|d| {
                d.metadata = md;
                Ok(())
            })
        })
        .await?;
        Ok(Response::new(out))
    }

    async fn get_metadata_service(
        &self,
        _req: Request<pb::GetMetadataServiceRequest>,
    ) -> Result<Response<pb::MetadataService>, Status> {
        let desc = blocking(&self.0, |api| api.description()).await?;
        Ok(Response::new(metadata_pb(desc.metadata.as_ref())))
    }
}
