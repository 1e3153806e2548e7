//! Every RPC of the management API against a running ferroflowd, with the
//! status codes and messages of its error cases; TCP only with client
//! certificates.

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.
mod mgmt;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{DatapathLock, TempDir};
use ferroflow::api::client::ServerAddr;
use ferroflow::api::pb;
use mgmt::{clients, config, port_toml, text_change, Daemon};
use tonic::Code;

fn code<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> (Code, String) {
    let e = r.expect_err("the call must fail");
    (e.code(), e.message().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_and_its_errors() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("grpc-api");
    let socket = dir.path("api.sock");
    let cfg = dir.path("ff.toml");
    std::fs::write(
        &cfg,
        config(
            "ff-grpc",
            &socket,
            None,
            &port_toml("p1", "net_null0,no-rx=1", 1),
        ),
    )
    .unwrap();
    let _d = Daemon::start(&cfg, &format!("unix:{}", socket.display()), 300.0);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the API socket is for its owner only");
    let mut c = clients(&ServerAddr::Unix(socket.clone())).await;
    let mut events = c
        .datapath
        .watch_events(pb::WatchEventsRequest {})
        .await
        .unwrap()
        .into_inner();

    // Ports.
    let p = c
        .ports
        .add_port(pb::AddPortRequest {
            name: "p2".into(),
            device: Some(pb::add_port_request::Device::Devargs(
                "net_null1,no-rx=1".into(),
            )),
            ofport: 0,
            tag: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (p.name.as_str(), p.ofport, p.vlan.as_str()),
        ("p2", 2, "access tag=10")
    );
    assert!(p.admin_up);
    let add = |name: &str, devargs: &str, ofport: u32, tag: u32| pb::AddPortRequest {
        name: name.into(),
        device: Some(pb::add_port_request::Device::Devargs(devargs.into())),
        ofport,
        tag,
        ..Default::default()
    };
    let (k, m) = code(c.ports.add_port(add("p2", "net_null2,no-rx=1", 0, 0)).await);
    assert_eq!(k, Code::AlreadyExists, "{m}");
    assert!(m.contains("p2"), "{m}");
    let (k, m) = code(c.ports.add_port(add("p3", "net_null2,no-rx=1", 1, 0)).await);
    assert_eq!(k, Code::AlreadyExists, "{m}");
    let (k, m) = code(c.ports.add_port(add("", "net_null2,no-rx=1", 0, 0)).await);
    assert_eq!(
        (k, m.starts_with("name:")),
        (Code::InvalidArgument, true),
        "{m}"
    );
    let (k, m) = code(
        c.ports
            .add_port(add("p3", "net_null2,no-rx=1", 0, 5000))
            .await,
    );
    assert_eq!(
        (k, m.starts_with("tag:")),
        (Code::InvalidArgument, true),
        "{m}"
    );
    // Socket permissions belong to sockets the switch creates (vhost-user server mode).
    let (k, m) = code(
        c.ports
            .add_port(pb::AddPortRequest {
                socket_mode: Some(0o660),
                ..add("p3", "net_null2,no-rx=1", 0, 0)
            })
            .await,
    );
    assert_eq!(
        (k, m.contains("socket_mode") && m.contains("server")),
        (Code::InvalidArgument, true),
        "{m}"
    );
    // A driver outside [grpc] port_drivers is refused before DPDK sees it (docs/limits.md).
    let (k, m) = code(c.ports.add_port(add("p3", "net_bogus7", 0, 0)).await);
    assert_eq!(
        (k, m.contains("grpc.port_drivers")),
        (Code::PermissionDenied, true),
        "{m}"
    );
    let list = c
        .ports
        .list_ports(pb::ListPortsRequest {})
        .await
        .unwrap()
        .into_inner()
        .ports;
    let names: Vec<(&str, u32)> = list.iter().map(|p| (p.name.as_str(), p.ofport)).collect();
    assert_eq!(names, [("p1", 1), ("p2", 2)]);
    let p1 = c
        .ports
        .get_port(pb::GetPortRequest { name: "p1".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p1.driver, "net_null");
    assert!(p1.counters.is_some());
    let (k, _) = code(
        c.ports
            .get_port(pb::GetPortRequest {
                name: "nope".into(),
            })
            .await,
    );
    assert_eq!(k, Code::NotFound);
    let down = c
        .ports
        .set_port_admin_state(pb::SetPortAdminStateRequest {
            name: "p2".into(),
            up: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!down.admin_up);
    let (k, _) = code(
        c.ports
            .set_port_admin_state(pb::SetPortAdminStateRequest {
                name: "nope".into(),
                up: true,
            })
            .await,
    );
    assert_eq!(k, Code::NotFound);
    let (k, m) = code(
        c.ports
            .remove_port(pb::RemovePortRequest {
                name: "nope".into(),
            })
            .await,
    );
    assert_eq!(k, Code::NotFound, "{m}");

    // Bridge and controllers.
    let b = c
        .bridges
        .list_bridges(pb::ListBridgesRequest {})
        .await
        .unwrap()
        .into_inner()
        .bridges;
    assert_eq!((b.len(), b[0].name.as_str()), (1, "br0"));
    let (k, m) = code(
        c.bridges
            .set_controllers(pb::SetControllersRequest {
                bridge: String::new(),
                targets: vec!["bogus".into()],
            })
            .await,
    );
    assert_eq!(
        (k, m.starts_with("targets[0]:")),
        (Code::InvalidArgument, true),
        "{m}"
    );
    let (k, _) = code(
        c.bridges
            .set_controllers(pb::SetControllersRequest {
                bridge: "br9".into(),
                targets: vec![],
            })
            .await,
    );
    assert_eq!(k, Code::NotFound);
    // Nothing listens on port 1: the controller is kept but not connected.
    let b = c
        .bridges
        .set_controllers(pb::SetControllersRequest {
            bridge: "br0".into(),
            targets: vec!["tcp:127.0.0.1:1".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(b.controllers.len(), 1);
    assert_eq!(b.controllers[0].target, "tcp:127.0.0.1:1");
    assert!(!b.controllers[0].connected);
    let l = c
        .bridges
        .list_controllers(pb::ListControllersRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(l.controllers.len(), 1);
    c.bridges
        .set_controllers(pb::SetControllersRequest::default())
        .await
        .unwrap();
    let l = c
        .bridges
        .list_controllers(pb::ListControllersRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(l.controllers.is_empty());

    // Flows: text, structured, errors, atomic batches.
    use pb::FlowCommand::*;
    c.flows
        .apply_flows(pb::ApplyFlowsRequest {
            changes: vec![
                text_change(Add, "table=0,priority=100,in_port=1,actions=output:2"),
                text_change(Add, "table=1,priority=50,ip,nw_dst=10.0.0.0/8,actions=drop"),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
    let structured = pb::Flow {
        table_id: 1,
        priority: 40,
        r#match: vec![pb::MatchField {
            name: "eth_type".into(),
            value: "0x0806".into(),
            mask: String::new(),
        }],
        instructions: Some(pb::Instructions {
            apply_actions: vec![pb::Action {
                action: Some(pb::action::Action::Output(pb::Output {
                    port: "CONTROLLER".into(),
                    max_len: 128,
                })),
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    c.flows
        .apply_flows(pb::ApplyFlowsRequest {
            changes: vec![pb::FlowChange {
                command: Add as i32,
                flow: Some(pb::flow_change::Flow::Structured(structured)),
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    let dump = |f: &str| pb::DumpFlowsRequest { filter: f.into() };
    let t1 = c
        .flows
        .dump_flows(dump("table=1"))
        .await
        .unwrap()
        .into_inner()
        .flows;
    let texts: Vec<&str> = t1
        .iter()
        .map(|f| f.text.split(", ").last().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "n_bytes=0 priority=50,ip,nw_dst=10.0.0.0/8 actions=drop",
            "n_bytes=0 priority=40,arp actions=CONTROLLER:128"
        ]
    );
    let s = t1[1].flow.as_ref().unwrap();
    assert_eq!(s.r#match[0].name, "eth_type");
    let (k, m) = code(
        c.flows
            .apply_flows(pb::ApplyFlowsRequest {
                changes: vec![
                    text_change(Add, "table=2,priority=1,actions=drop"),
                    text_change(Add, "table=2,frobnicate=1,actions=drop"),
                ],
                ..Default::default()
            })
            .await,
    );
    assert_eq!(k, Code::InvalidArgument);
    assert!(
        m.contains("changes[1].text") && m.contains("frobnicate"),
        "{m}"
    );
    let (k, m) = code(
        c.flows
            .apply_flows(pb::ApplyFlowsRequest {
                changes: vec![text_change(Add, "table=2,actions=group:9")],
                ..Default::default()
            })
            .await,
    );
    assert_eq!(k, Code::FailedPrecondition, "{m}");
    // The second change overlaps an existing flow: the first must not stay.
    let (k, m) = code(
        c.flows
            .apply_flows(pb::ApplyFlowsRequest {
                changes: vec![
                    text_change(Add, "table=2,priority=7,actions=drop"),
                    text_change(
                        Add,
                        "check_overlap,table=0,priority=100,in_port=1,actions=output:1",
                    ),
                ],
                ..Default::default()
            })
            .await,
    );
    assert_eq!(k, Code::FailedPrecondition, "{m}");
    assert!(m.contains("changes[1]"), "{m}");
    let t2 = c
        .flows
        .dump_flows(dump("table=2"))
        .await
        .unwrap()
        .into_inner()
        .flows;
    assert!(t2.is_empty(), "half a batch was applied: {t2:?}");
    // A whole add-flows file in one field: a refused line is named by its number
    // (comments and blank lines counted), whether the parser or the tables refuse it,
    // and nothing of the batch stays.
    let file = |text: &str, changes: Vec<pb::FlowChange>| pb::ApplyFlowsRequest {
        changes,
        add_text: text.as_bytes().to_vec(),
    };
    let (k, m) = code(
        c.flows
            .apply_flows(file(
                "# two flows\ntable=2,priority=1,actions=drop\n\n table=2,frobnicate=1,actions=drop\n",
                vec![],
            ))
            .await,
    );
    assert_eq!(k, Code::InvalidArgument);
    assert!(
        m.contains("add_text line 4") && m.contains("frobnicate"),
        "{m}"
    );
    let (k, m) = code(
        c.flows
            .apply_flows(file(
                "table=2,priority=3,actions=drop\r\n#\ncheck_overlap,table=0,priority=100,in_port=1,actions=output:1",
                vec![text_change(Add, "table=2,priority=2,actions=drop")],
            ))
            .await,
    );
    assert_eq!(k, Code::FailedPrecondition, "{m}");
    assert!(m.contains("add_text line 3"), "{m}");
    // The text's flows are parsed as they are applied, yet the answer is still that of
    // parsing everything first: a later flow that does not parse wins over an earlier
    // one the tables refuse (in the changes or in the text).
    let (k, m) = code(
        c.flows
            .apply_flows(file(
                "table=2,priority=4,actions=group:9\n#\ntable=2,frobnicate=2,actions=drop",
                vec![text_change(Add, "table=2,actions=group:9")],
            ))
            .await,
    );
    assert_eq!(k, Code::InvalidArgument, "{m}");
    assert!(
        m.contains("add_text line 3") && m.contains("frobnicate"),
        "{m}"
    );
    let (k, m) = code(
        c.flows
            .apply_flows(file(
                "table=2,priority=4,actions=drop\ntable=2,priority=5,actions=group:9\ntable=2,priority=6,actions=drop",
                vec![],
            ))
            .await,
    );
    assert_eq!(k, Code::FailedPrecondition, "{m}");
    assert!(m.contains("add_text line 2"), "{m}");
    let (k, m) = code(c.flows.apply_flows(file("\n# nothing\n  \n", vec![])).await);
    assert_eq!(k, Code::InvalidArgument);
    assert!(m.contains("no changes"), "{m}");
    let (k, m) = code(
        c.flows
            .apply_flows(pb::ApplyFlowsRequest {
                add_text: b"table=2,priority=1,actions=drop\n\xff".to_vec(),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(k, Code::InvalidArgument);
    assert!(m.contains("add_text") && m.contains("UTF-8"), "{m}");
    let t2 = c
        .flows
        .dump_flows(dump("table=2"))
        .await
        .unwrap()
        .into_inner()
        .flows;
    assert!(t2.is_empty(), "half a batch was applied: {t2:?}");
    // Taken whole: the changes, then the text's flows.
    c.flows
        .apply_flows(file(
            "table=2,priority=3,actions=drop\n\ttable=2,priority=4,ip,actions=drop",
            vec![text_change(Add, "table=2,priority=2,actions=drop")],
        ))
        .await
        .unwrap();
    let t2 = c
        .flows
        .dump_flows(dump("table=2"))
        .await
        .unwrap()
        .into_inner()
        .flows;
    assert_eq!(t2.len(), 3, "{t2:?}");
    let r = c
        .flows
        .apply_flows(pb::ApplyFlowsRequest {
            changes: vec![text_change(Delete, "table=2")],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.removed, 3);
    let t0 = c
        .flows
        .dump_flows(dump("table=0,in_port=1"))
        .await
        .unwrap()
        .into_inner()
        .flows;
    assert_eq!(t0.len(), 1);
    assert!(t0[0].text.ends_with("actions=output:2"), "{}", t0[0].text);
    let (k, _) = code(c.flows.dump_flows(dump("nw_dst=10.0.0.1")).await);
    assert_eq!(k, Code::InvalidArgument);
    c.flows
        .apply_flows(pb::ApplyFlowsRequest {
            changes: vec![text_change(Modify, "table=1,ip,actions=output:2")],
            ..Default::default()
        })
        .await
        .unwrap();
    let t1 = c
        .flows
        .dump_flows(dump("table=1,ip"))
        .await
        .unwrap()
        .into_inner()
        .flows;
    assert!(t1[0].text.ends_with("actions=output:2"), "{}", t1[0].text);
    let r = c
        .flows
        .apply_flows(pb::ApplyFlowsRequest {
            changes: vec![text_change(Delete, "table=1")],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.removed, 2);
    let tables = c
        .flows
        .dump_tables(pb::DumpTablesRequest {})
        .await
        .unwrap()
        .into_inner()
        .tables;
    assert!(tables.iter().any(|t| t.table_id == 0 && t.active >= 1));

    // Groups and meters.
    let group = |command: pb::GroupCommand, t: &str| pb::ApplyGroupsRequest {
        changes: vec![pb::GroupChange {
            command: command as i32,
            group: Some(pb::group_change::Group::Text(t.into())),
        }],
    };
    c.flows
        .apply_groups(group(
            pb::GroupCommand::Add,
            "group_id=1,type=all,bucket=output:1,bucket=output:2",
        ))
        .await
        .unwrap();
    let (k, _) = code(
        c.flows
            .apply_groups(group(
                pb::GroupCommand::Add,
                "group_id=1,type=all,bucket=output:1",
            ))
            .await,
    );
    assert_eq!(k, Code::AlreadyExists);
    let (k, m) = code(
        c.flows
            .apply_groups(group(pb::GroupCommand::Add, "group_id=2,type=sometimes"))
            .await,
    );
    assert_eq!(k, Code::InvalidArgument, "{m}");
    let g = c
        .flows
        .dump_groups(pb::DumpGroupsRequest {})
        .await
        .unwrap()
        .into_inner()
        .groups;
    assert_eq!(
        g[0].text,
        "group_id=1,type=all,bucket=actions=output:1,bucket=actions=output:2"
    );
    let meter = |command: pb::MeterCommand, t: &str| pb::ApplyMetersRequest {
        changes: vec![pb::MeterChange {
            command: command as i32,
            meter: Some(pb::meter_change::Meter::Text(t.into())),
        }],
    };
    c.flows
        .apply_meters(meter(
            pb::MeterCommand::Add,
            "meter=1,kbps,band=type=drop,rate=1000",
        ))
        .await
        .unwrap();
    c.flows
        .apply_flows(pb::ApplyFlowsRequest {
            changes: vec![text_change(
                Add,
                "table=3,priority=1,actions=meter:1,group:1",
            )],
            ..Default::default()
        })
        .await
        .unwrap();
    let m = c
        .flows
        .dump_meters(pb::DumpMetersRequest {})
        .await
        .unwrap()
        .into_inner()
        .meters;
    assert_eq!(
        (m[0].text.as_str(), m[0].flow_count),
        ("meter=1,kbps,band=type=drop,rate=1000", 1)
    );
    c.flows
        .apply_groups(group(pb::GroupCommand::Delete, "group_id=1"))
        .await
        .unwrap();
    assert!(c
        .flows
        .dump_groups(pb::DumpGroupsRequest {})
        .await
        .unwrap()
        .into_inner()
        .groups
        .is_empty());

    // Status.
    let st = c
        .datapath
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(st.workers.len(), 1);
    assert!(st.mbufs_available > 0);
    // Every port's rx queue is polled by the (one) worker, and reported so.
    let ports = c
        .ports
        .list_ports(pb::ListPortsRequest {})
        .await
        .unwrap()
        .into_inner()
        .ports;
    for p in &ports {
        assert!(
            st.workers[0]
                .rx_queues
                .iter()
                .any(|q| q.port == p.name && q.queue == 0),
            "port {} missing from the rx queue assignment {:?}",
            p.name,
            st.workers[0].rx_queues
        );
    }

    // Events seen since the start: the added port and the flow changes.
    let mut saw_port = false;
    let mut saw_flow = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !(saw_port && saw_flow) {
        let e = tokio::time::timeout_at(deadline, events.message())
            .await
            .expect("events within 10 s")
            .unwrap()
            .unwrap();
        match e.event {
            Some(pb::event::Event::Port(p)) if p.name == "p2" => saw_port = true,
            Some(pb::event::Event::Flow(f))
                if f.changes.iter().any(|c| c.contains("in_port=1")) =>
            {
                saw_flow = true
            }
            _ => {}
        }
    }

    // Removing a port.
    c.ports
        .remove_port(pb::RemovePortRequest { name: "p2".into() })
        .await
        .unwrap();
    let list = c
        .ports
        .list_ports(pb::ListPortsRequest {})
        .await
        .unwrap()
        .into_inner()
        .ports;
    assert_eq!(list.len(), 1);
}

/// Makes a throwaway CA, a server certificate for 127.0.0.1 and a client
/// certificate, with openssl.
fn make_pki(dir: &TempDir) {
    let d = dir.0.display();
    common::run(&format!(
        "cd {d} && \
         openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=ferroflow-test-ca 2>/dev/null && \
         openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1 2>/dev/null && \
         printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > server.ext && \
         openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext 2>/dev/null && \
         openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=ferroflowctl 2>/dev/null && \
         printf 'extendedKeyUsage=clientAuth\\n' > client.ext && \
         openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 -extfile client.ext 2>/dev/null && \
         openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 2 -subj /CN=stranger 2>/dev/null"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_over_tcp_requires_client_certificates() {
    let dir = TempDir::new("grpc-tls");
    // Unauthenticated TCP is refused before anything starts.
    let plain = dir.path("plain.toml");
    std::fs::write(
        &plain,
        format!(
            "{}\n[grpc]\nlisten = \"tcp:127.0.0.1:19911\"\n",
            common::eal_section("ff-tls0")
        ),
    )
    .unwrap();
    let out = std::process::Command::new(common::ferroflowctl())
        .arg("check-config")
        .arg(&plain)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("grpc.listen") && err.contains("unauthenticated TCP"),
        "{err}"
    );

    let _lock = DatapathLock::take();
    // Fixed TCP ports in tests stay below the kernel's ephemeral range (32768-60999): a
    // port in it can be any outgoing connection's local port at that moment (50912 was
    // taken once in CI: "Address already in use").
    make_pki(&dir);
    let d = dir.0.display();
    let cfg = dir.path("ff.toml");
    std::fs::write(
        &cfg,
        format!(
            "{}\n[grpc]\nlisten = \"tcp:127.0.0.1:19912\"\ntls_certificate = \"{d}/server.pem\"\ntls_private_key = \"{d}/server.key\"\ntls_ca_certificate = \"{d}/ca.pem\"\n{}",
            common::eal_section("ff-tls1"),
            port_toml("p1", "net_null0,no-rx=1", 1)
        ),
    )
    .unwrap();
    let _daemon = Daemon::start(&cfg, "tcp:127.0.0.1:19912", 300.0);
    let tls = |cert: &str, key: &str| ServerAddr::Tls {
        addr: "127.0.0.1:19912".into(),
        ca: dir.path("ca.pem"),
        cert: dir.path(cert),
        key: dir.path(key),
        domain: None,
    };
    let mut c = clients(&tls("client.pem", "client.key")).await;
    let ports = c
        .ports
        .list_ports(pb::ListPortsRequest {})
        .await
        .unwrap()
        .into_inner()
        .ports;
    assert_eq!(ports[0].name, "p1");
    // A certificate the CA did not sign gets nothing.
    let refused = match ferroflow::api::client::connect(&tls("other.pem", "other.key")).await {
        Err(_) => true,
        Ok(ch) => pb::port_service_client::PortServiceClient::new(ch)
            .list_ports(pb::ListPortsRequest {})
            .await
            .is_err(),
    };
    assert!(refused, "a client with a foreign certificate was served");
    // ferroflowctl over TLS.
    let (code, out, err) = mgmt::ctl(
        "tcp:127.0.0.1:19912",
        &[
            "--tls-ca",
            &format!("{d}/ca.pem"),
            "--tls-cert",
            &format!("{d}/client.pem"),
            "--tls-key",
            &format!("{d}/client.key"),
            "ports",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("p1"), "{out}");
    let (code, _, err) = mgmt::ctl("tcp:127.0.0.1:19912", &["ports"]);
    assert_eq!(code, 2, "{err}");
}
