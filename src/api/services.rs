//! The tonic services: request checking and replies around [`Api`]. Calls
//! that lock the switch run on the blocking pool, off the runtime's threads.

use std::pin::Pin;
use std::sync::Arc;

use ferroflow_config::PortConfig;
use openflow::messages::{FlowModCommand, GroupModCommand, MeterModCommand};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::convert::{self, ConvertError};
use super::{add_lines, pb, Api, ApiError};

pub struct Ports(pub Arc<Api>);
pub struct Bridges(pub Arc<Api>);
pub struct Flows(pub Arc<Api>);
pub struct Datapath(pub Arc<Api>);

/// Runs switch work on the blocking pool.
async fn blocking<T: Send + 'static>(
    api: &Arc<Api>,
    f: impl FnOnce(&Api) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, Status> {
    let api = Arc::clone(api);
    tokio::task::spawn_blocking(move || f(&api))
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(Status::from)
}

impl From<ConvertError> for ApiError {
    fn from(e: ConvertError) -> Self {
        match &e {
            ConvertError::Syntax { field, source } => {
                ApiError::invalid(field.clone(), source.to_string())
            }
            ConvertError::Invalid { field, why } => ApiError::invalid(field.clone(), why.clone()),
        }
    }
}

pub(crate) fn meter_bands(bands: &[pipeline::meter::Band]) -> Vec<openflow::messages::MeterBand> {
    use openflow::messages::MeterBand;
    use pipeline::meter::BandKind;
    bands
        .iter()
        .map(|b| match b.kind {
            BandKind::Drop => MeterBand::Drop {
                rate: b.rate,
                burst_size: b.burst,
            },
            BandKind::DscpRemark(prec_level) => MeterBand::DscpRemark {
                rate: b.rate,
                burst_size: b.burst,
                prec_level,
            },
        })
        .collect()
}

fn mac(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// Every port (or the one named), with counters; xstats for a named one.
pub(crate) fn ports(api: &Api, only: Option<&str>) -> Result<Vec<pb::Port>, ApiError> {
    let state = api.sw.lock().map_err(super::busy)?;
    let configs = &state.ports;
    let dp = state.datapath.as_ref();
    // The profile's tunnel ports (one per peer host) are listed after the configured ones.
    let profile_tunnels = crate::tunnels::unconfigured(configs, dp);
    if let Some(name) = only {
        if !configs.iter().any(|p| p.name == name)
            && !profile_tunnels.iter().any(|t| t.name == name)
        {
            return Err(ApiError::NotFound(format!("no port named {name:?}")));
        }
    }
    let status = dp.map(|d| d.ports()).unwrap_or_default();
    let tunnels = dp.map(|d| d.tunnels()).unwrap_or_default();
    let tunnel_counters = |t: &datapath::TunnelStatus| pb::PortCounters {
        rx_packets: t.rx_packets,
        rx_bytes: t.rx_bytes,
        tx_packets: t.tx_packets,
        tx_bytes: t.tx_bytes,
        tx_dropped: crate::tunnels::tx_dropped(t),
        ..Default::default()
    };
    let mut out = configs
        .iter()
        .filter(|p| only.is_none_or(|n| n == p.name))
        .map(|p| {
            let st = status.iter().find(|s| s.name == p.name);
            let counters = st.map(|s| {
                let (d, w) = (&s.driver_stats, &s.switch_stats);
                pb::PortCounters {
                    rx_packets: d.rx_packets,
                    rx_bytes: d.rx_bytes,
                    tx_packets: d.tx_packets,
                    tx_bytes: d.tx_bytes,
                    rx_missed: d.rx_missed,
                    rx_errors: d.rx_errors,
                    tx_errors: d.tx_errors,
                    rx_nombuf: d.rx_nombuf,
                    forwarded: w.forwarded,
                    to_controller: w.to_controller,
                    dropped: w.dropped,
                    meter_drops: w.meter_drops,
                    invalid_ttl: w.invalid_ttl,
                    action_errors: w.action_errors,
                    tx_dropped: w.tx_dropped,
                    tx_oversize_dropped: w.tx_oversize_dropped,
                    resubmit_limit_drops: w.resubmit_limit_drops,
                }
            });
            let counters = counters.or_else(|| {
                tunnels
                    .iter()
                    .find(|t| t.ofport == p.ofport)
                    .map(tunnel_counters)
            });
            let xstats = match (only, dp) {
                (Some(_), Some(d)) => d
                    .xstats(&p.name)
                    .into_iter()
                    .map(|(name, value)| pb::Xstat { name, value })
                    .collect(),
                _ => Vec::new(),
            };
            pb::Port {
                name: p.name.clone(),
                ofport: p.ofport,
                devargs: p.devargs.clone(),
                device: st.map(|s| s.device.clone()).unwrap_or_default(),
                driver: st.map(|s| s.driver.clone()).unwrap_or_else(|| {
                    crate::tunnel_ports::driver_name(p)
                        .unwrap_or_default()
                        .into()
                }),
                vlan: p.vlan_mode().to_string(),
                mac: st.map(|s| mac(s.mac)).unwrap_or_default(),
                // A tunnel port has no link of its own: up, as OpenFlow describes it.
                link_up: p.is_tunnel() || st.is_some_and(|s| s.link_up),
                admin_up: state.port_admin_up(p.ofport),
                speed_mbps: st.map_or(0, |s| s.speed_mbps),
                counters,
                xstats,
            }
        })
        .collect::<Vec<_>>();
    out.extend(
        profile_tunnels
            .iter()
            .filter(|t| only.is_none_or(|n| n == t.name))
            .map(|t| pb::Port {
                name: t.name.clone(),
                ofport: t.ofport,
                devargs: String::new(),
                device: String::new(),
                driver: t.kind.into(),
                vlan: String::new(),
                mac: String::new(),
                link_up: true,
                admin_up: state.port_admin_up(t.ofport),
                speed_mbps: 0,
                counters: Some(tunnel_counters(t)),
                xstats: Vec::new(),
            }),
    );
    Ok(out)
}

/// The port a request describes; devargs made from the kind with a vdev
/// name no port uses yet.
fn port_config(api: &Api, r: &pb::AddPortRequest) -> Result<PortConfig, ApiError> {
    use pb::add_port_request::Device;
    if r.name.is_empty() {
        return Err(ApiError::invalid("name", "required"));
    }
    let existing = api.sw.lock().map_err(super::busy)?.ports.clone();
    let free_vdev = |driver: &str| {
        (0..)
            .map(|n| format!("{driver}{n}"))
            .find(|d| !existing.iter().any(|p| p.device_name() == d))
            .unwrap_or_default()
    };
    if let Some(t) = &r.tunnel {
        return tunnel_port_config(r, t, &existing);
    }
    let devargs = match &r.device {
        None => {
            return Err(ApiError::invalid(
                "device",
                "give devargs, vhost_client, vhost_server or tap",
            ))
        }
        Some(Device::Devargs(d)) if d.trim().is_empty() => {
            return Err(ApiError::invalid("devargs", "empty"))
        }
        Some(Device::Devargs(d)) => d.clone(),
        Some(Device::VhostClient(s)) | Some(Device::VhostServer(s))
            if s.is_empty() || s.contains(',') =>
        {
            return Err(ApiError::invalid(
                "vhost",
                format!("{s:?}: a socket path without commas"),
            ))
        }
        Some(Device::VhostClient(s)) => format!("{},iface={s},client=1", free_vdev("net_vhost")),
        Some(Device::VhostServer(s)) => format!("{},iface={s}", free_vdev("net_vhost")),
        Some(Device::Tap(i)) if i.is_empty() || i.len() > 15 || i.contains(',') => {
            return Err(ApiError::invalid(
                "tap",
                format!("{i:?}: 1 to 15 characters, no commas"),
            ))
        }
        Some(Device::Tap(i)) => format!("{},iface={i}", free_vdev("net_tap")),
    };
    let ofport = if r.ofport != 0 {
        r.ofport
    } else {
        (1..)
            .find(|n| !existing.iter().any(|p| p.ofport == *n))
            .unwrap_or(1)
    };
    let tag = if r.tag == 0 {
        None
    } else {
        Some(
            u16::try_from(r.tag)
                .map_err(|_| ApiError::invalid("tag", format!("{} is outside 1..=4094", r.tag)))?,
        )
    };
    let trunks = if r.trunks.is_empty() {
        None
    } else {
        Some(
            r.trunks
                .iter()
                .map(|v| {
                    u16::try_from(*v).map_err(|_| {
                        ApiError::invalid("trunks", format!("VLAN {v} is outside 0..=4094"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        )
    };
    let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    Ok(PortConfig {
        name: r.name.clone(),
        devargs,
        ofport,
        tag,
        trunks,
        socket_mode: r.socket_mode,
        socket_owner: text(&r.socket_owner),
        socket_group: text(&r.socket_group),
        ..Default::default()
    })
}

/// A tunnel port a request describes; the configuration's checks run when it is added.
fn tunnel_port_config(
    r: &pb::AddPortRequest,
    t: &pb::TunnelPortRequest,
    existing: &[PortConfig],
) -> Result<PortConfig, ApiError> {
    use ferroflow_config::{PortKind, TunnelKey};
    if r.device.is_some() {
        return Err(ApiError::invalid(
            "device",
            "a tunnel port has no device: give tunnel or a device, not both",
        ));
    }
    if r.tag != 0 || !r.trunks.is_empty() {
        return Err(ApiError::invalid(
            "tag",
            "a tunnel port has no VLAN settings",
        ));
    }
    let kind = match t.kind.as_str() {
        "vxlan" => PortKind::Vxlan,
        "geneve" => PortKind::Geneve,
        k => return Err(ApiError::invalid("kind", format!("{k:?}: vxlan or geneve"))),
    };
    let key = match t.key.as_str() {
        "" => None,
        "flow" => Some(TunnelKey::Flow),
        k => Some(TunnelKey::Fixed(k.parse().map_err(|_| {
            ApiError::invalid("key", format!("{k:?}: a VNI (0..=16777215) or \"flow\""))
        })?)),
    };
    let dst_port =
        match t.dst_port {
            0 => None,
            p => Some(u16::try_from(p).ok().filter(|p| *p != 0).ok_or_else(|| {
                ApiError::invalid("dst_port", format!("{p} is outside 1..=65535"))
            })?),
        };
    let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let ofport = if r.ofport != 0 {
        r.ofport
    } else {
        (1..)
            .find(|n| !existing.iter().any(|p| p.ofport == *n))
            .unwrap_or(1)
    };
    Ok(PortConfig {
        name: r.name.clone(),
        ofport,
        kind,
        uplink: text(&t.uplink),
        local_ip: text(&t.local_ip),
        remote_ip: text(&t.remote_ip),
        key,
        dst_port,
        csum: t.csum,
        ..Default::default()
    })
}

#[tonic::async_trait]
impl pb::port_service_server::PortService for Ports {
    async fn add_port(
        &self,
        req: Request<pb::AddPortRequest>,
    ) -> Result<Response<pb::Port>, Status> {
        let r = req.into_inner();
        let port = blocking(&self.0, move |api| {
            let pc = port_config(api, &r)?;
            let name = pc.name.clone();
            api.add_port(pc)?;
            ports(api, Some(&name))?
                .pop()
                .ok_or_else(|| ApiError::Internal("the port vanished".into()))
        })
        .await?;
        Ok(Response::new(port))
    }

    async fn remove_port(
        &self,
        req: Request<pb::RemovePortRequest>,
    ) -> Result<Response<pb::RemovePortResponse>, Status> {
        let name = req.into_inner().name;
        if name.is_empty() {
            return Err(ApiError::invalid("name", "required").into());
        }
        blocking(&self.0, move |api| api.remove_port(&name)).await?;
        Ok(Response::new(pb::RemovePortResponse {}))
    }

    async fn list_ports(
        &self,
        _: Request<pb::ListPortsRequest>,
    ) -> Result<Response<pb::ListPortsResponse>, Status> {
        let ports = blocking(&self.0, |api| ports(api, None)).await?;
        Ok(Response::new(pb::ListPortsResponse { ports }))
    }

    async fn get_port(
        &self,
        req: Request<pb::GetPortRequest>,
    ) -> Result<Response<pb::Port>, Status> {
        let name = req.into_inner().name;
        if name.is_empty() {
            return Err(ApiError::invalid("name", "required").into());
        }
        let mut p = blocking(&self.0, move |api| ports(api, Some(&name))).await?;
        Ok(Response::new(
            p.pop().ok_or_else(|| Status::internal("no port"))?,
        ))
    }

    async fn set_port_admin_state(
        &self,
        req: Request<pb::SetPortAdminStateRequest>,
    ) -> Result<Response<pb::Port>, Status> {
        let r = req.into_inner();
        if r.name.is_empty() {
            return Err(ApiError::invalid("name", "required").into());
        }
        let mut p = blocking(&self.0, move |api| {
            api.set_port_admin(&r.name, r.up)?;
            ports(api, Some(&r.name))
        })
        .await?;
        Ok(Response::new(
            p.pop().ok_or_else(|| Status::internal("no port"))?,
        ))
    }
}

fn bridge(api: &Api) -> pb::Bridge {
    let c = &api.sw.config;
    pb::Bridge {
        name: c.bridge.name.clone(),
        datapath_id: c.bridge.datapath_id.clone(),
        fail_mode: format!("{:?}", c.bridge.fail_mode).to_lowercase(),
        controllers: api.controllers(),
        openflow_listen: c.openflow.listen.clone(),
        openflow_connections: api.agent().map_or(0, |a| a.connections() as u32),
    }
}

#[tonic::async_trait]
impl pb::bridge_service_server::BridgeService for Bridges {
    async fn list_bridges(
        &self,
        _: Request<pb::ListBridgesRequest>,
    ) -> Result<Response<pb::ListBridgesResponse>, Status> {
        Ok(Response::new(pb::ListBridgesResponse {
            bridges: vec![bridge(&self.0)],
        }))
    }

    async fn set_controllers(
        &self,
        req: Request<pb::SetControllersRequest>,
    ) -> Result<Response<pb::Bridge>, Status> {
        let r = req.into_inner();
        if !r.bridge.is_empty() && r.bridge != self.0.sw.config.bridge.name {
            return Err(ApiError::NotFound(format!("no bridge named {:?}", r.bridge)).into());
        }
        blocking(&self.0, move |api| api.set_controllers(r.targets)).await?;
        Ok(Response::new(bridge(&self.0)))
    }

    async fn list_controllers(
        &self,
        _: Request<pb::ListControllersRequest>,
    ) -> Result<Response<pb::ListControllersResponse>, Status> {
        Ok(Response::new(pb::ListControllersResponse {
            controllers: self.0.controllers(),
        }))
    }
}

fn flow_command(c: i32) -> Result<FlowModCommand, ApiError> {
    Ok(
        match pb::FlowCommand::try_from(c)
            .map_err(|_| ApiError::invalid("command", format!("{c} is not a FlowCommand")))?
        {
            pb::FlowCommand::Add => FlowModCommand::Add,
            pb::FlowCommand::Modify => FlowModCommand::Modify,
            pb::FlowCommand::ModifyStrict => FlowModCommand::ModifyStrict,
            pb::FlowCommand::Delete => FlowModCommand::Delete,
            pb::FlowCommand::DeleteStrict => FlowModCommand::DeleteStrict,
        },
    )
}

pub(crate) fn dump_flows(api: &Api, filter: &str) -> Result<Vec<pb::FlowEntry>, ApiError> {
    let f = flow_syntax::parse_flow_mod(filter, FlowModCommand::Delete)
        .map_err(|e| ApiError::invalid("filter", e.to_string()))?;
    let m = ofproto::convert_match(&f.match_)
        .map_err(|e| ApiError::invalid("filter", e.to_string()))?;
    let now = api.sw.now();
    let mut stats: Vec<_> = api
        .sw
        .lock()
        .map_err(super::busy)?
        .tables
        .flow_counts(
            f.table_id,
            &m,
            f.cookie,
            f.cookie_mask,
            f.out_port,
            f.out_group,
        )
        .map_err(|e| ApiError::invalid("filter", e.to_string()))?
        .iter()
        .map(|c| ofproto::flow_stats(c, now))
        .collect();
    stats.sort_by(|a, b| {
        (a.table_id, std::cmp::Reverse(a.priority))
            .cmp(&(b.table_id, std::cmp::Reverse(b.priority)))
    });
    Ok(stats
        .iter()
        .map(|s| {
            let duration = f64::from(s.duration_sec) + f64::from(s.duration_nsec) / 1e9;
            let text = flow_syntax::format_flow(&flow_syntax::FlowText {
                table_id: s.table_id,
                priority: s.priority,
                cookie: s.cookie,
                idle_timeout: s.idle_timeout,
                hard_timeout: s.hard_timeout,
                flags: s.flags,
                match_: &s.match_,
                instructions: &s.instructions,
                counters: Some((duration, s.packet_count, s.byte_count)),
            });
            pb::FlowEntry {
                flow: Some(convert::flow_to_pb(s)),
                text,
                packets: s.packet_count,
                bytes: s.byte_count,
                duration_s: duration,
            }
        })
        .collect())
}

#[tonic::async_trait]
impl pb::flow_service_server::FlowService for Flows {
    async fn apply_flows(
        &self,
        req: Request<pb::ApplyFlowsRequest>,
    ) -> Result<Response<pb::ApplyFlowsResponse>, Status> {
        let r = req.into_inner();
        let add_text = std::str::from_utf8(&r.add_text).map_err(|e| {
            ApiError::invalid("add_text", format!("not UTF-8 at byte {}", e.valid_up_to()))
        })?;
        if r.changes.is_empty() && add_lines(add_text).next().is_none() {
            return Err(ApiError::invalid("changes", "no changes").into());
        }
        let n_changes = r.changes.len();
        // Each flow-mod is named (`changes[i]`, `add_text line N`) only in an error: a
        // batch of 100k flows keeps no name per flow. The text's flows are parsed one at
        // a time as they are applied (`Api::apply_flow_batch`); a line's number is found
        // again from its index when one is refused at the commit.
        let field = |i: usize| format!("changes[{i}]");
        let mut mods = Vec::with_capacity(n_changes);
        for (i, c) in r.changes.into_iter().enumerate() {
            let cmd = flow_command(c.command).map_err(|_| {
                ApiError::invalid(format!("{}.command", field(i)), "unknown command")
            })?;
            let fm = match &c.flow {
                Some(pb::flow_change::Flow::Text(t)) => flow_syntax::parse_flow_mod(t, cmd)
                    .map_err(|e| ApiError::invalid(format!("{}.text", field(i)), e.to_string()))?,
                Some(pb::flow_change::Flow::Structured(f)) => {
                    convert::flow_from_pb(&format!("{}.structured", field(i)), f, cmd)
                        .map_err(ApiError::from)?
                }
                None => {
                    return Err(ApiError::invalid(
                        format!("{}.flow", field(i)),
                        "give text or structured",
                    )
                    .into())
                }
            };
            mods.push(fm);
        }
        let text = r.add_text;
        let removed = blocking(&self.0, move |api| {
            // Checked as UTF-8 above.
            let text = std::str::from_utf8(&text).unwrap_or_default();
            let field = |i: usize| match i.checked_sub(n_changes) {
                None => format!("changes[{i}]"),
                Some(k) => match add_lines(text).nth(k) {
                    Some((line, _)) => format!("add_text line {line}"),
                    None => format!("add_text flow {k}"),
                },
            };
            api.apply_flow_batch(mods, text, &field, true)
        })
        .await?;
        Ok(Response::new(pb::ApplyFlowsResponse { removed }))
    }

    async fn dump_flows(
        &self,
        req: Request<pb::DumpFlowsRequest>,
    ) -> Result<Response<pb::DumpFlowsResponse>, Status> {
        let filter = req.into_inner().filter;
        let flows = blocking(&self.0, move |api| dump_flows(api, &filter)).await?;
        Ok(Response::new(pb::DumpFlowsResponse { flows }))
    }

    async fn dump_tables(
        &self,
        _: Request<pb::DumpTablesRequest>,
    ) -> Result<Response<pb::DumpTablesResponse>, Status> {
        let tables = blocking(&self.0, |api| {
            let mut st = api.sw.lock().map_err(super::busy)?;
            let counts = st.tables.table_counts();
            Ok(counts
                .into_iter()
                .filter(|t| t.active > 0 || t.lookups > 0)
                .map(|t| pb::TableStats {
                    table_id: u32::from(t.table_id),
                    active: t.active,
                    lookups: t.lookups,
                    matches: t.matches,
                    name: st.table_name(t.table_id),
                })
                .collect())
        })
        .await?;
        Ok(Response::new(pb::DumpTablesResponse { tables }))
    }

    async fn apply_groups(
        &self,
        req: Request<pb::ApplyGroupsRequest>,
    ) -> Result<Response<pb::ApplyGroupsResponse>, Status> {
        let r = req.into_inner();
        let mut mods = Vec::new();
        for (i, c) in r.changes.iter().enumerate() {
            let field = format!("changes[{i}]");
            let cmd = match pb::GroupCommand::try_from(c.command) {
                Ok(pb::GroupCommand::Add) => GroupModCommand::Add,
                Ok(pb::GroupCommand::Modify) => GroupModCommand::Modify,
                Ok(pb::GroupCommand::Delete) => GroupModCommand::Delete,
                Err(_) => {
                    return Err(
                        ApiError::invalid(format!("{field}.command"), "unknown command").into(),
                    )
                }
            };
            mods.push(match &c.group {
                Some(pb::group_change::Group::Text(t)) => flow_syntax::parse_group_mod(t, cmd)
                    .map_err(|e| ApiError::invalid(format!("{field}.text"), e.to_string()))?,
                Some(pb::group_change::Group::Structured(g)) => {
                    convert::group_from_pb(&format!("{field}.structured"), g, cmd)
                        .map_err(ApiError::from)?
                }
                None => {
                    return Err(ApiError::invalid(
                        format!("{field}.group"),
                        "give text or structured",
                    )
                    .into())
                }
            });
        }
        if mods.is_empty() {
            return Err(ApiError::invalid("changes", "no changes").into());
        }
        blocking(&self.0, move |api| api.apply_groups(mods, true)).await?;
        Ok(Response::new(pb::ApplyGroupsResponse {}))
    }

    async fn dump_groups(
        &self,
        _: Request<pb::DumpGroupsRequest>,
    ) -> Result<Response<pb::DumpGroupsResponse>, Status> {
        let groups = blocking(&self.0, |api| {
            let mut st = api.sw.lock().map_err(super::busy)?;
            let tables = &mut st.tables;
            let descs: Vec<_> = tables.groups().map(ofproto::group_desc).collect();
            Ok(descs
                .into_iter()
                .map(|d| {
                    let c = tables.group_counts(d.group_id);
                    pb::GroupEntry {
                        group: Some(convert::group_to_pb(d.group_id, d.group_type, &d.buckets)),
                        text: flow_syntax::format_group(&d),
                        packets: c.as_ref().map_or(0, |c| c.packets),
                        bytes: c.as_ref().map_or(0, |c| c.bytes),
                        ref_count: tables.group_ref_count(d.group_id),
                    }
                })
                .collect())
        })
        .await?;
        Ok(Response::new(pb::DumpGroupsResponse { groups }))
    }

    async fn apply_meters(
        &self,
        req: Request<pb::ApplyMetersRequest>,
    ) -> Result<Response<pb::ApplyMetersResponse>, Status> {
        let r = req.into_inner();
        let mut mods = Vec::new();
        for (i, c) in r.changes.iter().enumerate() {
            let field = format!("changes[{i}]");
            let cmd = match pb::MeterCommand::try_from(c.command) {
                Ok(pb::MeterCommand::Add) => MeterModCommand::Add,
                Ok(pb::MeterCommand::Modify) => MeterModCommand::Modify,
                Ok(pb::MeterCommand::Delete) => MeterModCommand::Delete,
                Err(_) => {
                    return Err(
                        ApiError::invalid(format!("{field}.command"), "unknown command").into(),
                    )
                }
            };
            mods.push(match &c.meter {
                Some(pb::meter_change::Meter::Text(t)) => flow_syntax::parse_meter_mod(t, cmd)
                    .map_err(|e| ApiError::invalid(format!("{field}.text"), e.to_string()))?,
                Some(pb::meter_change::Meter::Structured(m)) => {
                    convert::meter_from_pb(&format!("{field}.structured"), m, cmd)
                        .map_err(ApiError::from)?
                }
                None => {
                    return Err(ApiError::invalid(
                        format!("{field}.meter"),
                        "give text or structured",
                    )
                    .into())
                }
            });
        }
        if mods.is_empty() {
            return Err(ApiError::invalid("changes", "no changes").into());
        }
        blocking(&self.0, move |api| api.apply_meters(mods, true)).await?;
        Ok(Response::new(pb::ApplyMetersResponse {}))
    }

    async fn dump_meters(
        &self,
        _: Request<pb::DumpMetersRequest>,
    ) -> Result<Response<pb::DumpMetersResponse>, Status> {
        let meters = blocking(&self.0, |api| {
            let mut st = api.sw.lock().map_err(super::busy)?;
            let tables = &mut st.tables;
            let list: Vec<_> = tables
                .meters()
                .map(|m| {
                    (
                        m.id,
                        ofproto::meter_flags_to_of(m.flags),
                        meter_bands(&m.bands),
                    )
                })
                .collect();
            Ok(list
                .into_iter()
                .map(|(id, flags, bands)| {
                    let c = tables.meter_counts(id);
                    pb::MeterEntry {
                        meter: Some(convert::meter_to_pb(id, flags, &bands)),
                        text: flow_syntax::format_meter(id, flags, &bands),
                        packets_in: c.as_ref().map_or(0, |c| c.packets_in),
                        bytes_in: c.as_ref().map_or(0, |c| c.bytes_in),
                        flow_count: tables.meter_flow_count(id),
                    }
                })
                .collect())
        })
        .await?;
        Ok(Response::new(pb::DumpMetersResponse { meters }))
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::Event, Status>> + Send>>;

#[tonic::async_trait]
impl pb::datapath_service_server::DatapathService for Datapath {
    async fn get_status(
        &self,
        _: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::DatapathStatus>, Status> {
        let st = blocking(&self.0, |api| {
            let health = api.sw.health();
            let st = api.sw.lock().map_err(super::busy)?;
            let (workers, in_use, avail) = match st.datapath.as_ref() {
                Some(d) => (
                    d.workers(),
                    d.mempool().map_or(0, |p| p.in_use()),
                    d.mempool().map_or(0, |p| p.available()),
                ),
                None => (Vec::new(), 0, 0),
            };
            let now = api.sw.now().as_secs() as u32;
            let mac_entries = st.tables.mac_table().entries(now).len() as u32;
            drop(st);
            Ok(pb::DatapathStatus {
                version: crate::VERSION.into(),
                dpdk_version: dpdk::Eal::version(),
                uptime_s: api.sw.started.elapsed().as_secs_f64(),
                workers: workers
                    .into_iter()
                    .enumerate()
                    .map(|(i, w)| pb::Worker {
                        acked_version: health.acked_version(i),
                        since_heartbeat_ms: health.since_heartbeat(i).as_secs_f64() * 1e3,
                        stuck: health.since_heartbeat(i) >= crate::switch::STUCK_AFTER
                            && !health.exited(i),
                        lcore: w.lcore,
                        packets: w.packets,
                        busy_cycles: w.busy_cycles,
                        total_cycles: w.total_cycles,
                        cycles_per_packet: w.cycles_per_packet,
                        idle_cycles: w.idle_cycles,
                        busy_share: w.busy_share,
                        iterations: w.iterations,
                        busy_iterations: w.busy_iterations,
                        burst_histogram: w.burst_histogram.to_vec(),
                        burst_bucket_bounds: datapath::BURST_BUCKET_BOUNDS
                            .iter()
                            .map(|b| u32::from(*b))
                            .collect(),
                        rx_queues: w
                            .rx_queue_stats
                            .into_iter()
                            .map(|q| pb::RxQueue {
                                port: q.port,
                                queue: q.queue.into(),
                                packets: q.packets,
                                busy_cycles: q.busy_cycles,
                                busy_share: q.busy_share,
                            })
                            .collect(),
                    })
                    .collect(),
                mbufs_in_use: in_use,
                mbufs_available: avail,
                mac_entries,
                config_unsaved: api.unsaved().unwrap_or_default(),
            })
        })
        .await?;
        Ok(Response::new(st))
    }

    type WatchEventsStream = EventStream;

    // A stream item is a Result with tonic's (large) Status, as the trait wants.
    #[allow(clippy::result_large_err)]
    async fn watch_events(
        &self,
        _: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        use tokio_stream::wrappers::{errors::BroadcastStreamRecvError, BroadcastStream};
        use tokio_stream::StreamExt;
        let rx = self.0.subscribe();
        let stream = BroadcastStream::new(rx).map(|r| match r {
            Ok(e) => Ok(e),
            Err(BroadcastStreamRecvError::Lagged(n)) => Ok(pb::Event {
                time: super::now_epoch(),
                event: Some(pb::event::Event::Lagged(n)),
            }),
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
