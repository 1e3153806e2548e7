//! What a gRPC peer can make the switch hold (docs/limits.md): request size,
//! TLS handshake time, connections, calls per connection; and which ports a
//! client may create (driver allowlist, file paths under `[grpc] port_paths`
//! after `..` and symlinks, no PCI), over a real TLS listener and ferroflowctl.

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.
mod mgmt;

use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{DatapathLock, TempDir};
use ferroflow::api::client::ServerAddr;
use ferroflow::api::pb;
use mgmt::{clients, ctl, port_toml, text_change, Daemon};
use tonic::Code;

fn make_pki(dir: &Path) {
    let d = dir.display();
    common::run(&format!(
        "cd {d} && \
         openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=ferroflow-test-ca 2>/dev/null && \
         openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1 2>/dev/null && \
         printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > server.ext && \
         openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext 2>/dev/null && \
         openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=ferroflowctl 2>/dev/null && \
         printf 'extendedKeyUsage=clientAuth\\n' > client.ext && \
         openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 -extfile client.ext 2>/dev/null"
    ));
}

/// The value of an unlabelled series in a /metrics scrape.
fn metric(metrics: &str, name: &str) -> u64 {
    let text = common::run(&format!("curl -sf http://{metrics}/metrics"));
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("{name} not in the scrape:\n{text}")) as u64
}

fn flows(n: usize) -> pb::ApplyFlowsRequest {
    pb::ApplyFlowsRequest {
        changes: (0..n)
            .map(|i| {
                text_change(
                    pb::FlowCommand::Add,
                    &format!(
                        "table=1,priority=10,tcp,tp_dst={},actions=drop",
                        1 + i % 60000
                    ),
                )
            })
            .collect(),
        ..Default::default()
    }
}

/// True when the server has closed `s` (EOF or reset) within `limit`.
fn closed_by_server(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut b = [0u8; 64];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_limits_size_streams_handshakes_connections() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("grpc-limits");
    make_pki(&dir.0);
    let d = dir.0.display();
    let (addr, metrics) = ("127.0.0.1:19931", "127.0.0.1:19471");
    let cfg = dir.path("ff.toml");
    std::fs::write(
        &cfg,
        format!(
            "{}\n[grpc]\nlisten = \"tcp:{addr}\"\ntls_certificate = \"{d}/server.pem\"\ntls_private_key = \"{d}/server.key\"\ntls_ca_certificate = \"{d}/ca.pem\"\n\
             max_request_bytes = 65536\nmax_flow_batch_bytes = 262144\nhandshake_timeout_s = 2\nmax_connections = 210\nmax_streams_per_connection = 4\n\
             \n[metrics]\nlisten = \"{metrics}\"\n\n[datapath]\nidle_sleep_us = 200\n{}",
            common::eal_section("ff-t-grpclim"),
            port_toml("p1", "net_null0,no-rx=1", 1)
        ),
    )
    .unwrap();
    let daemon = Daemon::start(&cfg, &format!("tcp:{addr}"), 90.0);
    let server = ServerAddr::Tls {
        addr: addr.into(),
        ca: dir.path("ca.pem"),
        cert: dir.path("client.pem"),
        key: dir.path("client.key"),
        domain: None,
    };
    let mut c = clients(&server).await;

    // Request size: one limit for every call, a larger one for flow batches.
    let big = pb::AddPortRequest {
        name: "x".repeat(100_000),
        device: Some(pb::add_port_request::Device::Devargs(
            "net_null1,no-rx=1".into(),
        )),
        ..Default::default()
    };
    let e = c.ports.add_port(big).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(
        e.message().contains("grpc.max_request_bytes (65536 bytes)"),
        "{e:?}"
    );
    // About 150 kB: over the request limit, within the batch limit.
    c.flows
        .apply_flows(flows(3000))
        .await
        .expect("a batch within max_flow_batch_bytes");
    let e = c.flows.apply_flows(flows(9000)).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(
        e.message()
            .contains("grpc.max_flow_batch_bytes (262144 bytes)"),
        "{e:?}"
    );
    // The same flows as one add-flows text (`add_text`): the same limit.
    let text: Vec<String> = flows(9000)
        .changes
        .into_iter()
        .filter_map(|c| match c.flow {
            Some(pb::flow_change::Flow::Text(t)) => Some(t),
            _ => None,
        })
        .collect();
    let e = c
        .flows
        .apply_flows(pb::ApplyFlowsRequest {
            add_text: text.join("\n").into_bytes(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(
        e.message()
            .contains("grpc.max_flow_batch_bytes (262144 bytes)"),
        "{e:?}"
    );
    let ports = c.ports.list_ports(pb::ListPortsRequest {}).await.unwrap();
    assert_eq!(ports.into_inner().ports.len(), 1, "nothing half-made");
    assert_eq!(
        metric(metrics, "ferroflow_grpc_requests_too_large_total"),
        3
    );

    // Calls in progress per connection: 4 event streams held open, the 5th refused.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(
            c.datapath
                .watch_events(pb::WatchEventsRequest {})
                .await
                .expect("a stream within the limit")
                .into_inner(),
        );
    }
    let e = c
        .datapath
        .watch_events(pb::WatchEventsRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(
        e.message().contains("grpc.max_streams_per_connection (4)"),
        "{e:?}"
    );
    // Another connection is not affected, and the first is served again once they end.
    let mut other = clients(&server).await;
    other
        .ports
        .list_ports(pb::ListPortsRequest {})
        .await
        .expect("another connection");
    drop(held);
    // Until the server has seen the streams end, a call is still refused, and counted:
    // the metric is the refusal above plus these, exactly.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut refused_meanwhile = 0;
    loop {
        match c.ports.list_ports(pb::ListPortsRequest {}).await {
            Ok(_) => break,
            Err(e) if e.code() == Code::ResourceExhausted && Instant::now() < deadline => {
                refused_meanwhile += 1;
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("the first connection after its streams ended: {e:?}"),
        }
    }
    assert_eq!(
        metric(metrics, "ferroflow_grpc_streams_refused_total"),
        1 + refused_meanwhile
    );

    // 200 peers that open TCP and never start TLS: a real client is served meanwhile...
    let mut half_open: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    let mut fresh = clients(&server).await;
    fresh
        .ports
        .list_ports(pb::ListPortsRequest {})
        .await
        .expect("a real client beside 200 half-open peers");
    // ...and with max_connections (210) open, one more is closed at accept.
    let open = metric(metrics, "ferroflow_grpc_connections_open") as usize;
    assert!((203..=210).contains(&open), "{open} connections open");
    let mut filler: Vec<TcpStream> = (open..210)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    let mut over = TcpStream::connect(addr).unwrap();
    assert!(
        closed_by_server(&mut over, Duration::from_secs(5)),
        "a connection over grpc.max_connections was kept"
    );
    assert!(metric(metrics, "ferroflow_grpc_connections_refused_total") >= 1);
    // After the handshake timeout (2 s) every half-open peer is dropped.
    for s in half_open.iter_mut().chain(filler.iter_mut()) {
        assert!(
            closed_by_server(s, Duration::from_secs(6)),
            "a peer without a TLS handshake was kept past grpc.handshake_timeout_s"
        );
    }
    assert!(metric(metrics, "ferroflow_grpc_handshake_timeouts_total") >= 200);
    fresh
        .ports
        .list_ports(pb::ListPortsRequest {})
        .await
        .expect("served after the half-open peers are gone");
    let open = metric(metrics, "ferroflow_grpc_connections_open");
    assert!(open <= 3, "{open} connections still open");
    drop(daemon);
}

#[test]
fn port_add_is_restricted_to_allowed_drivers_and_paths() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("grpc-port-rules");
    let allowed = dir.path("allowed");
    let outside = dir.path("outside");
    std::fs::create_dir_all(&allowed).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, allowed.join("link")).unwrap();
    let socket = dir.path("api.sock");
    let server = format!("unix:{}", socket.display());
    let cfg = dir.path("ff.toml");
    let mut text = common::eal_section("ff-t-portrules");
    text += &format!(
        "\n[grpc]\nlisten = \"{server}\"\nport_paths = [\"{}\"]\n\n[datapath]\nidle_sleep_us = 200\n",
        allowed.display()
    );
    text += &port_toml("p1", "net_null0,no-rx=1", 1);
    std::fs::write(&cfg, text).unwrap();
    let d = Daemon::start(&cfg, &server, 90.0);
    let a = allowed.display();
    let refused = |devargs: &str, rule: &str| {
        let (code, out, err) = ctl(&server, &["port", "add", "bad", "--devargs", devargs]);
        assert_ne!(code, 0, "{devargs} was accepted: {out}");
        assert!(err.contains(rule), "{devargs}: {err}");
    };
    refused("net_pcap1,tx_pcap=/etc/ferroflow-x.pcap", "grpc.port_paths");
    assert!(!Path::new("/etc/ferroflow-x.pcap").exists());
    refused(
        &format!("net_pcap1,tx_pcap={a}/../x.pcap"),
        "grpc.port_paths",
    );
    refused(
        &format!("net_pcap1,tx_pcap={a}/link/x.pcap"),
        "grpc.port_paths",
    );
    assert!(!outside.join("x.pcap").exists() && !dir.path("x.pcap").exists());
    refused("net_pcap1,tx_pcap=x.pcap", "absolute path");
    refused("net_memif0,role=server", "grpc.port_drivers");
    refused("0000:ff:1f.7", "grpc.port_pci");
    let (_, out, _) = ctl(&server, &["ports"]);
    assert!(!out.contains("bad"), "a refused port was half made: {out}");

    let ok = |args: &[&str]| {
        let (code, out, err) = ctl(&server, args);
        assert_eq!(
            code,
            0,
            "ferroflowctl {args:?}: {out}{err}\n{}",
            d.log_text()
        );
    };
    let pcap = format!("net_pcap1,tx_pcap={a}/cap.pcap");
    ok(&["port", "add", "cap", "--devargs", &pcap]);
    let sock = format!("{a}/vm1.sock");
    ok(&["port", "add", "vm1", "--vhost-server", &sock]);
    ok(&["port", "add", "sink", "--devargs", "net_null1,no-rx=1"]);
    let (_, out, _) = ctl(&server, &["ports"]);
    for p in ["cap", "vm1", "sink"] {
        assert!(out.contains(p), "{p} missing: {out}");
    }
    // The vhost socket outside the allowed directory, by the convenience flag too.
    let (code, _, err) = ctl(
        &server,
        &[
            "port",
            "add",
            "vm2",
            "--vhost-server",
            &format!("{}/vm2.sock", outside.display()),
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("grpc.port_paths"), "{err}");
    drop(d);
}
