//! `TraceService` (`proto/ferroflow/v1/trace.proto`): one packet through the published
//! table version ([`pipeline::Pipeline::trace`], the datapath's own walk without side
//! effects), reported in ovs-ofctl words; with `send`, injected for real afterwards.

use std::sync::Arc;

use packet::{Field, FlowKey, Layers};
use pipeline::ports::OFPP_TABLE;
use pipeline::trace::{DropReason, Trace, TraceStep};
use pipeline::{Action, FlowTables, Match, MatchField, MissPolicy};
use tonic::{Request, Response, Status};

use super::{pb, Api, ApiError};
use crate::switch::State;

pub struct Traces(pub Arc<Api>);

#[tonic::async_trait]
impl pb::trace_service_server::TraceService for Traces {
    async fn trace(
        &self,
        req: Request<pb::TraceRequest>,
    ) -> Result<Response<pb::TraceResponse>, Status> {
        let api = Arc::clone(&self.0);
        let r = req.into_inner();
        tokio::task::spawn_blocking(move || trace(&api, &r))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map(Response::new)
            .map_err(Status::from)
    }

    type CaptureStream = super::capture::CaptureStream;

    async fn capture(
        &self,
        req: Request<pb::CaptureRequest>,
    ) -> Result<Response<Self::CaptureStream>, Status> {
        // The state's lock may be waited for: on the blocking pool, like the other calls.
        let api = Arc::clone(&self.0);
        let r = req.into_inner();
        tokio::task::spawn_blocking(move || super::capture::start(&api, &r))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(Status::from)
    }

    async fn capture_status(
        &self,
        _: Request<pb::CaptureStatusRequest>,
    ) -> Result<Response<pb::CaptureStatusResponse>, Status> {
        let api = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || super::capture::status(&api))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map(Response::new)
            .map_err(Status::from)
    }
}

/// The trace of the packet `r` describes, on the version published now.
pub(crate) fn trace(api: &Api, r: &pb::TraceRequest) -> Result<pb::TraceResponse, ApiError> {
    use pb::trace_request::Packet;
    let now = api.sw.now();
    let mut st = api.sw.lock().map_err(super::busy)?;
    let (frame, in_port) = match &r.packet {
        Some(Packet::Flow(text)) => frame_from_flow(&st, text)?,
        Some(Packet::Frame(f)) if f.len() < 14 => {
            return Err(ApiError::invalid(
                "frame",
                format!("{} bytes: shorter than an Ethernet header", f.len()),
            ))
        }
        Some(Packet::Frame(f)) if f.len() > 9216 => {
            return Err(ApiError::invalid(
                "frame",
                format!("{} bytes: longer than 9216", f.len()),
            ))
        }
        Some(Packet::Frame(f)) => (f.clone(), r.in_port),
        None => return Err(ApiError::invalid("packet", "give a flow or a frame")),
    };
    if in_port == 0 {
        return Err(ApiError::invalid("in_port", "required (a port number)"));
    }
    let t = st.tables.current().trace(&frame, in_port, now);
    let mut out = response(&st, &t, &frame);
    if r.send {
        st.inject(now, in_port, &frame, &[Action::output(OFPP_TABLE)]);
        out.sent = true;
    }
    Ok(out)
}

/// The frame a flow-syntax description stands for, and its in_port (which may be given
/// by port name: `in_port=vm1`).
fn frame_from_flow(st: &State, text: &str) -> Result<(Vec<u8>, u32), ApiError> {
    let text: Vec<String> = text
        .split(',')
        .map(|tok| match tok.trim().split_once(['=', ':']) {
            Some(("in_port", name)) if name.parse::<u32>().is_err() => {
                match st.ports.iter().find(|p| p.name == name) {
                    Some(p) => format!("in_port={}", p.ofport),
                    None => tok.to_owned(),
                }
            }
            _ => tok.to_owned(),
        })
        .collect();
    let m = flow_syntax::parse_match(&text.join(","))
        .map_err(|e| ApiError::invalid("flow", e.to_string()))?;
    let m = ofproto::convert_match(&m).map_err(|e| ApiError::invalid("flow", e.to_string()))?;
    let mut fields = Vec::new();
    let mut in_port = 0;
    for f in m.fields() {
        if f.mask.is_some() {
            return Err(ApiError::invalid(
                "flow",
                format!("{}: a packet has exact values, not masks", f.field.name()),
            ));
        }
        if f.field == Field::InPort {
            in_port = f.value as u32;
        }
        fields.push((f.field, f.value));
    }
    let (frame, _) = packet::frame_from_fields(&fields)
        .map_err(|(field, e)| ApiError::invalid("flow", format!("{}: {e}", field.name())))?;
    Ok((frame, in_port))
}

/// The fields a key holds, in flow syntax (`icmp,in_port=1,dl_src=...,nw_dst=...`).
pub fn key_text(key: &FlowKey) -> String {
    use Field::*;
    let l = key.layers;
    let mut fields = vec![InPort, EthSrc, EthDst];
    if l.contains(Layers::VLAN) {
        fields.extend([VlanVid, VlanPcp]);
    }
    fields.push(EthType);
    if l.contains(Layers::MPLS) {
        fields.extend([MplsLabel, MplsTc, MplsBos]);
    }
    if l.contains(Layers::PBB) {
        fields.push(PbbIsid);
    }
    if l.contains(Layers::ARP) {
        fields.extend([ArpOp, ArpSpa, ArpTpa, ArpSha, ArpTha]);
    }
    if l.contains(Layers::IPV4) {
        fields.extend([Ipv4Src, Ipv4Dst, IpProto, IpDscp, IpEcn]);
    }
    if l.contains(Layers::IPV6) {
        fields.extend([Ipv6Src, Ipv6Dst, Ipv6Flabel, IpProto, IpDscp, IpEcn]);
    }
    if l.contains(Layers::TCP) {
        fields.extend([TcpSrc, TcpDst]);
    }
    if l.contains(Layers::UDP) {
        fields.extend([UdpSrc, UdpDst]);
    }
    if l.contains(Layers::SCTP) {
        fields.extend([SctpSrc, SctpDst]);
    }
    if l.contains(Layers::ICMPV4) {
        fields.extend([Icmpv4Type, Icmpv4Code]);
    }
    if l.contains(Layers::ICMPV6) {
        fields.extend([Icmpv6Type, Icmpv6Code]);
    }
    if key.metadata() != 0 {
        fields.push(Metadata);
    }
    let fields: Vec<MatchField> = fields
        .into_iter()
        .map(|field| MatchField {
            field,
            value: key.get(field),
            mask: None,
        })
        .collect();
    let m = ofproto::match_to_of(&Match::from_fields(&fields));
    flow_syntax::format_match(&m, 0x8000)
}

fn port_name(st: &State, port: u32) -> String {
    st.ports
        .iter()
        .find(|p| p.ofport == port)
        .map(|p| p.name.clone())
        .unwrap_or_else(|| flow_syntax::format_port(port))
}

fn miss_text(p: MissPolicy) -> &'static str {
    match p {
        MissPolicy::Drop => "drop",
        MissPolicy::Controller { .. } => "CONTROLLER",
        MissPolicy::GotoNext => "next table",
        MissPolicy::Normal => "NORMAL",
    }
}

fn drop_text(r: DropReason) -> String {
    match r {
        DropReason::TableMiss { table } => {
            format!("no match in table {table} and no table-miss entry (miss: drop)")
        }
        DropReason::PastLastTable => "no match in the last table (miss: drop)".into(),
        DropReason::Meter { id } => format!("meter {id} dropped it"),
        DropReason::InvalidTtl => "TTL expired (invalid TTL)".into(),
        DropReason::GotoGuard { to } => {
            format!("goto_table:{to} does not go forward: the walk ended")
        }
        DropReason::ActionError => "an action could not apply, and nothing output it".into(),
        DropReason::NormalToIngress => {
            "NORMAL: the destination is on the ingress port (not sent back)".into()
        }
        DropReason::NoOutput => "no output action (explicit drop)".into(),
        DropReason::ResubmitLimit => "resubmit depth or count limit (dropped, counted)".into(),
    }
}

fn entry(tables: &FlowTables, table: u8, uid: u64) -> Option<&pipeline::FlowEntry> {
    tables.entries(table).find(|e| e.uid == uid)
}

fn response(st: &State, t: &Trace, frame: &[u8]) -> pb::TraceResponse {
    let steps = t
        .steps
        .iter()
        .map(|s| {
            let mut p = pb::TraceStep::default();
            match s {
                TraceStep::Table { table, hit, miss } => {
                    p.kind = "table".into();
                    p.table_id = u32::from(*table);
                    if let Some(h) = hit {
                        p.matched = true;
                        p.cookie = h.cookie;
                        p.priority = u32::from(h.priority);
                        if let Some(e) = entry(&st.tables, *table, h.uid) {
                            p.r#match = flow_syntax::format_match(
                                &ofproto::match_to_of(&e.match_),
                                h.priority,
                            );
                            let insts = ofproto::instructions_to_of(&e.instructions);
                            p.text = flow_syntax::format_instructions(&insts);
                        }
                    } else if let Some(m) = miss {
                        p.text = format!("no match: miss policy {}", miss_text(*m));
                    }
                }
                TraceStep::Clause { table, hit } => {
                    p.kind = "conjunction".into();
                    p.table_id = u32::from(*table);
                    p.matched = true;
                    p.cookie = hit.cookie;
                    p.priority = u32::from(hit.priority);
                    if let Some(e) = entry(&st.tables, *table, hit.uid) {
                        p.r#match = flow_syntax::format_match(
                            &ofproto::match_to_of(&e.match_),
                            hit.priority,
                        );
                        let insts = ofproto::instructions_to_of(&e.instructions);
                        p.text = flow_syntax::format_instructions(&insts);
                    }
                }
                TraceStep::Action { action, error, key } => {
                    p.kind = "action".into();
                    p.text = flow_syntax::format_action(&ofproto::action_to_of(action));
                    p.error = *error;
                    p.fields = key_text(key);
                }
                TraceStep::Metadata { value } => {
                    p.kind = "metadata".into();
                    p.text = format!("metadata={value:#x}");
                }
                TraceStep::Goto { to, refused } => {
                    p.kind = "goto".into();
                    p.table_id = u32::from(*to);
                    p.text = format!("goto_table:{to}");
                    p.error = *refused;
                }
                TraceStep::ActionSet => {
                    p.kind = "action_set".into();
                    p.text = "write_actions set".into();
                }
                TraceStep::Group { id, buckets } => {
                    p.kind = "group".into();
                    p.port = *id;
                    match buckets {
                        Some(b) => {
                            p.buckets = b.iter().map(|&i| i as u32).collect();
                            p.text = format!(
                                "group:{id} buckets {}",
                                b.iter()
                                    .map(|i| i.to_string())
                                    .collect::<Vec<_>>()
                                    .join(",")
                            );
                        }
                        None => {
                            p.error = true;
                            p.text = format!("group:{id}: no such group (or nested too deep)");
                        }
                    }
                }
                TraceStep::Bucket { group, bucket } => {
                    p.kind = "bucket".into();
                    p.port = *group;
                    p.buckets = vec![*bucket as u32];
                    p.text = format!("group:{group} bucket {bucket}");
                }
                TraceStep::Meter { id, verdict } => {
                    use pipeline::meter::MeterVerdict;
                    p.kind = "meter".into();
                    p.port = *id;
                    p.text = match verdict {
                        None => format!("meter:{id}: no such meter (skipped)"),
                        Some(MeterVerdict::Pass) => format!("meter:{id}: pass"),
                        Some(MeterVerdict::Drop) => format!("meter:{id}: drop band"),
                        Some(MeterVerdict::Remark(n)) => {
                            format!("meter:{id}: dscp_remark by {n}")
                        }
                    };
                    p.error = matches!(verdict, Some(MeterVerdict::Drop));
                }
                TraceStep::Normal { vlan, learned } => {
                    p.kind = "normal".into();
                    p.text = match learned {
                        Some(port) => {
                            p.port = *port;
                            p.port_name = port_name(st, *port);
                            format!(
                                "NORMAL: vlan {vlan}, destination learned on {}",
                                p.port_name
                            )
                        }
                        None => format!("NORMAL: vlan {vlan}, destination unknown: flood"),
                    };
                }
                TraceStep::PacketIn { reason, table } => {
                    p.kind = "packet_in".into();
                    p.table_id = u32::from(*table);
                    p.text = format!("to the controller (reason {reason:?})");
                }
                TraceStep::Output { port, queue } => {
                    p.kind = "output".into();
                    p.port = *port;
                    p.port_name = port_name(st, *port);
                    p.text = match queue {
                        Some(q) => format!("output:{} queue {q}", p.port_name),
                        None => format!("output:{}", p.port_name),
                    };
                }
            }
            p
        })
        .collect();
    let outputs = t
        .outputs
        .iter()
        .map(|o| pb::TraceOutput {
            port: o.port,
            port_name: port_name(st, o.port),
            queue: o.queue,
            bytes: o.frame.len() as u32,
            fields: key_text(&packet::extract(&o.frame, o.port)),
        })
        .collect();
    pb::TraceResponse {
        version: t.version,
        in_port: t.in_port,
        in_port_name: port_name(st, t.in_port),
        packet: key_text(&t.initial),
        frame: frame.to_vec(),
        steps,
        outputs,
        packet_ins: t.packet_ins.len() as u32,
        drop_reason: t.drop_reason().map(drop_text).unwrap_or_default(),
        final_packet: key_text(&t.final_key),
        sent: false,
        steps_dropped: t.steps_dropped,
    }
}
