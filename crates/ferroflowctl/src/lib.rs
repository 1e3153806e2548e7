//! ferroflowctl: the Ferroflow command line, over ferroflowd's gRPC API.
//!
//! Commands read like ovs-vsctl and ovs-ofctl (`port add`, `flows add`,
//! `flows dump`), print aligned tables for people and `--json` for scripts,
//! and exit with a status that says what went wrong (see `EXIT STATUS` in
//! `--help`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ferroflow_api::client::{connect, ServerAddr};
use ferroflow_api::pb;
use ferroflow_config::{Config, DEFAULT_GRPC_SOCKET};
use serde::Serialize;
use tonic::transport::Channel;

mod capture_cmd;
mod conntrack_cmd;
mod datapath_cmd;
mod doctor_cmd;
mod output;
mod secgroup_cmd;
mod trace_cmd;
mod tunnel_cmd;
mod vnet_cmd;

const EXIT_HELP: &str = "EXIT STATUS:
  0  success
  1  failure (the switch could not do it; the message says why)
  2  usage error, or an argument the switch refused (INVALID_ARGUMENT)
  3  cannot reach ferroflowd
  4  not found (no such port, bridge...)
  5  already exists
  6  precondition failed (a missing group or meter, an overlapping flow...)
check-config and doctor (offline): 0 ok (doctor: warnings may be listed), 1 a check failed,
  2 usage error.";

#[derive(Parser, Debug)]
#[command(name = "ferroflowctl", version = ferroflow_api::VERSION, about = "Ferroflow command line", after_help = EXIT_HELP)]
struct Cli {
    /// Where ferroflowd serves its API: unix:PATH (default unix:/run/ferroflow/ferroflow.sock)
    /// or tcp:HOST:PORT (with --tls-ca, --tls-cert and --tls-key).
    #[arg(long, global = true, env = "FERROFLOW_SERVER")]
    server: Option<String>,
    /// CA certificate that signed the server's certificate (tcp:).
    #[arg(long, global = true, env = "FERROFLOW_TLS_CA")]
    tls_ca: Option<PathBuf>,
    /// This client's certificate and key (tcp:).
    #[arg(long, global = true, env = "FERROFLOW_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    #[arg(long, global = true, env = "FERROFLOW_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// The name in the server's certificate, if not the host of --server.
    #[arg(long, global = true)]
    tls_name: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List ports with link state and counters (ovs-vsctl list-ports, ovs-ofctl dump-ports).
    Ports,
    /// Add, remove, show and set ports up or down.
    #[command(subcommand)]
    Port(PortCmd),
    /// The bridge and its controllers.
    Bridge,
    /// Set, remove or list controllers (ovs-vsctl set-controller / del-controller).
    #[command(subcommand)]
    Controller(ControllerCmd),
    /// Add, modify, delete and dump flows in ovs-ofctl syntax.
    #[command(subcommand)]
    Flows(FlowsCmd),
    /// Per-table entries, lookups and matches (ovs-ofctl dump-tables).
    Tables,
    /// Groups in ovs-ofctl add-group syntax.
    #[command(subcommand)]
    Groups(GroupsCmd),
    /// Meters in ovs-ofctl add-meter syntax.
    #[command(subcommand)]
    Meters(MetersCmd),
    /// The datapath view: per worker busy share, cycles per packet, packets per burst,
    /// iterations; rx queues with their worker, packets and share of its cycles; packet
    /// buffers. `--watch` refreshes it with figures over each interval.
    Status(datapath_cmd::StatusArgs),
    /// Rx queue placement: `datapath rebalance [--dry-run]`.
    #[command(subcommand)]
    Datapath(datapath_cmd::DatapathCmd),
    /// Port packet rates; --watch repeats every interval.
    Stats {
        /// Repeat every SECONDS (default 1) until interrupted.
        #[arg(long, num_args = 0..=1, default_missing_value = "1")]
        watch: Option<f64>,
        /// With --watch: stop after this many reports.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Stream port and flow events (one per line).
    Events {
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Parse and validate a ferroflowd configuration file offline, and show what it sets up.
    CheckConfig { file: PathBuf },
    /// Check this host for a configuration (hugepages, IOMMU and vfio-pci for PCI ports,
    /// socket directories, isolated CPUs, DPDK plugins) and say what to fix. Offline.
    #[command(after_help = doctor_cmd::EXIT_HELP)]
    Doctor {
        /// The configuration ferroflowd will run with.
        #[arg(long, short, default_value = "/etc/ferroflow/ferroflow.toml")]
        config: PathBuf,
    },
    /// Print ferroflowctl's completion script for a shell (offline), e.g.
    /// `ferroflowctl completions bash > ~/.local/share/bash-completion/completions/ferroflowctl`.
    Completions {
        #[arg(value_parser = ["bash", "zsh", "fish"])]
        shell: String,
    },
    /// Virtual networks: create, delete, list.
    #[command(subcommand)]
    Network(vnet_cmd::NetworkCmd),
    /// Instances attached to virtual networks, with their anti-spoofing counters.
    #[command(subcommand)]
    Instance(vnet_cmd::InstanceCmd),
    /// The metadata service at 169.254.169.254 for instances.
    #[command(subcommand)]
    Metadata(vnet_cmd::MetadataCmd),
    /// Security groups of instances: groups, rules, and their counters.
    #[command(subcommand, alias = "security-group")]
    Secgroup(secgroup_cmd::SecgroupCmd),
    /// Tunnel ports (VXLAN, Geneve) and the underlay's neighbours.
    #[command(subcommand)]
    Tunnel(tunnel_cmd::TunnelCmd),
    /// Connection tracking: dump, flush and counters of the workers' trackers.
    #[command(subcommand)]
    Conntrack(conntrack_cmd::ConntrackCmd),
    /// Trace a packet through the live flow tables (ovs-appctl ofproto/trace).
    Trace(trace_cmd::TraceArgs),
    /// Capture a port's frames live, as pcap (tcpdump on a DPDK port).
    Capture(capture_cmd::CaptureArgs),
    /// Whether a capture runs, and on which port.
    CaptureStatus,
}

#[derive(Subcommand, Debug)]
enum PortCmd {
    /// Add a port: ferroflowctl port add vm1 --vhost-client /run/vm1.sock
    #[command(group(clap::ArgGroup::new("device").required(true).multiple(false).args(["vhost_client", "vhost_server", "tap", "devargs", "vxlan", "geneve"])))]
    Add(Box<PortAdd>),
    /// Remove a port (ovs-vsctl del-port).
    #[command(alias = "del", alias = "rm")]
    Remove { name: String },
    /// One port with the driver's extended statistics.
    Show { name: String },
    /// Set a port administratively up.
    Up { name: String },
    /// Set a port administratively down (it neither receives nor sends).
    Down { name: String },
}

#[derive(Args, Debug)]
#[group(skip)]
struct PortAdd {
    name: String,
    /// vhost-user socket QEMU serves (ferroflowd reconnects after restarts).
    #[arg(long)]
    vhost_client: Option<String>,
    /// vhost-user socket ferroflowd creates for QEMU to connect to.
    #[arg(long)]
    vhost_server: Option<String>,
    /// A tap interface to the host kernel with this name.
    #[arg(long)]
    tap: Option<String>,
    /// DPDK devargs as they are (net_pcap0,rx_pcap=in.pcap, a PCI address...).
    #[arg(long)]
    devargs: Option<String>,
    /// OpenFlow port number (default: the lowest free one).
    #[arg(long)]
    ofport: Option<u32>,
    /// Access VLAN (ovs-vsctl tag=).
    #[arg(long)]
    tag: Option<u32>,
    /// Trunked VLANs, comma-separated (ovs-vsctl trunks=).
    #[arg(long, value_delimiter = ',')]
    trunks: Vec<u32>,
    /// With --vhost-server: the socket's permission bits, in octal (0660).
    #[arg(long, value_parser = parse_octal_mode)]
    socket_mode: Option<u32>,
    /// With --vhost-server: the socket's owner (user name or uid).
    #[arg(long)]
    socket_owner: Option<String>,
    /// With --vhost-server: the socket's group (group name or gid), e.g. kvm.
    #[arg(long)]
    socket_group: Option<String>,
    #[command(flatten)]
    tunnel: tunnel_cmd::TunnelPortArgs,
}

/// A permission mode as chmod(1) takes it: octal digits, "0660" or "660".
fn parse_octal_mode(s: &str) -> std::result::Result<u32, String> {
    let digits = s.trim_start_matches("0o");
    u32::from_str_radix(digits, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{s:?} is not an octal permission mode such as 0660"))
}

#[derive(Subcommand, Debug)]
enum ControllerCmd {
    /// Replace the controllers: ferroflowctl controller set tcp:127.0.0.1:6653
    Set {
        targets: Vec<String>,
    },
    /// Remove every controller.
    #[command(alias = "remove")]
    Del,
    List,
}

#[derive(Subcommand, Debug)]
enum FlowsCmd {
    /// Add flows; several (and those in --file) are applied as one batch, all or none.
    Add {
        flows: Vec<String>,
        /// Read flows from FILE, one per line ('-': standard input; '#' starts a comment).
        #[arg(long, short)]
        file: Option<PathBuf>,
    },
    /// Change the actions of flows matching (ovs-ofctl mod-flows).
    #[command(alias = "modify")]
    Mod {
        flow: String,
        #[arg(long)]
        strict: bool,
    },
    /// Delete flows matching (all when no match is given).
    #[command(alias = "delete", alias = "remove")]
    Del {
        #[arg(default_value = "")]
        r#match: String,
        #[arg(long)]
        strict: bool,
    },
    /// Print flows with their counters (ovs-ofctl dump-flows).
    Dump {
        #[arg(default_value = "")]
        r#match: String,
    },
}

#[derive(Subcommand, Debug)]
enum GroupsCmd {
    /// ferroflowctl groups add 'group_id=1,type=all,bucket=output:1,bucket=output:2'
    Add {
        group: String,
    },
    #[command(alias = "modify")]
    Mod {
        group: String,
    },
    /// Delete a group ('group_id=1'), or all.
    #[command(alias = "delete")]
    Del {
        #[arg(default_value = "")]
        group: String,
    },
    Dump,
}

#[derive(Subcommand, Debug)]
enum MetersCmd {
    /// ferroflowctl meters add 'meter=1,kbps,band=type=drop,rate=1000'
    Add {
        meter: String,
    },
    #[command(alias = "modify")]
    Mod {
        meter: String,
    },
    /// Delete a meter ('meter=1'), or all.
    #[command(alias = "delete")]
    Del {
        #[arg(default_value = "")]
        meter: String,
    },
    Dump,
}

/// A failure and the exit status that tells scripts what kind it was.
struct Failure {
    code: u8,
    message: String,
}

impl From<tonic::Status> for Failure {
    fn from(s: tonic::Status) -> Self {
        use tonic::Code;
        let code = match s.code() {
            Code::InvalidArgument => 2,
            Code::Unavailable => 3,
            Code::NotFound => 4,
            Code::AlreadyExists => 5,
            Code::FailedPrecondition => 6,
            _ => 1,
        };
        Failure {
            code,
            message: s.message().to_owned(),
        }
    }
}

fn fail(code: u8, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

type Result<T> = std::result::Result<T, Failure>;

/// The command line as clap defines it, for the man page and the shell
/// completions (`cargo run -p xtask -- docs`).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Runs ferroflowctl on the process's arguments; the binary is only this.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::CheckConfig { file } => return check_config(file, cli.json),
        Command::Doctor { config } => return doctor_cmd::run(config, cli.json),
        Command::Completions { shell } => {
            let shell = match shell.as_str() {
                "bash" => clap_complete::Shell::Bash,
                "zsh" => clap_complete::Shell::Zsh,
                _ => clap_complete::Shell::Fish,
            };
            clap_complete::generate(
                shell,
                &mut command(),
                "ferroflowctl",
                &mut std::io::stdout(),
            );
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ferroflowctl: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(&cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"ok": false, "error": f.message, "exit": f.code})
                );
            }
            eprintln!("ferroflowctl: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn server_addr(cli: &Cli) -> Result<ServerAddr> {
    let s = cli
        .server
        .clone()
        .unwrap_or_else(|| format!("unix:{DEFAULT_GRPC_SOCKET}"));
    if let Some(addr) = s.strip_prefix("tcp:") {
        let need = |v: &Option<PathBuf>, what: &str| {
            v.clone()
                .ok_or_else(|| fail(2, format!("--server tcp: needs {what} (the API is only served over TLS with client certificates)")))
        };
        return Ok(ServerAddr::Tls {
            addr: addr.to_owned(),
            ca: need(&cli.tls_ca, "--tls-ca")?,
            cert: need(&cli.tls_cert, "--tls-cert")?,
            key: need(&cli.tls_key, "--tls-key")?,
            domain: cli.tls_name.clone(),
        });
    }
    let path = s.strip_prefix("unix:").unwrap_or(&s);
    Ok(ServerAddr::Unix(PathBuf::from(path)))
}

async fn channel(cli: &Cli) -> Result<Channel> {
    let addr = server_addr(cli)?;
    connect(&addr).await.map_err(|e| {
        fail(
            3,
            format!("{e} (is ferroflowd running? --server or FERROFLOW_SERVER say where)"),
        )
    })
}

fn print_json<T: Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Prints rows under a header with every column as wide as its widest cell;
/// columns whose header starts with '>' are right-aligned (numbers).
fn table(header: &[&str], rows: &[Vec<String>]) {
    print!("{}", table_string(header, rows));
}

/// [`table`]'s text.
fn table_string(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut text = String::new();
    let mut widths: Vec<usize> = header
        .iter()
        .map(|h| h.trim_start_matches('>').len())
        .collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.len());
        }
    }
    let mut line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            let right = header[i].starts_with('>');
            let last = i + 1 == cells.len();
            if right {
                out.push_str(&format!("{c:>w$}", w = widths[i]));
            } else if last {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}", w = widths[i]));
            }
            if !last {
                out.push_str("  ");
            }
        }
        text.push_str(out.trim_end());
        text.push('\n');
    };
    line(header.iter().map(|h| h.trim_start_matches('>')).collect());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
    text
}

fn updown(b: bool) -> String {
    if b { "up" } else { "down" }.to_owned()
}

fn port_rows(ports: &[pb::Port]) {
    let rows: Vec<Vec<String>> = ports
        .iter()
        .map(|p| {
            let c = p.counters.unwrap_or_default();
            vec![
                p.name.clone(),
                p.ofport.to_string(),
                updown(p.link_up),
                updown(p.admin_up),
                p.vlan.clone(),
                c.rx_packets.to_string(),
                c.tx_packets.to_string(),
                (c.rx_missed + c.dropped).to_string(),
                c.tx_dropped.to_string(),
                (c.rx_errors + c.tx_errors).to_string(),
                p.devargs.clone(),
            ]
        })
        .collect();
    table(
        &[
            "PORT", ">OFPORT", "LINK", "ADMIN", "VLAN", ">RX_PKTS", ">TX_PKTS", ">RX_DROP",
            ">TX_DROP", ">ERRORS", "DEVARGS",
        ],
        &rows,
    );
}

async fn run(cli: &Cli) -> Result<()> {
    let ch = channel(cli).await?;
    let mut ports = pb::port_service_client::PortServiceClient::new(ch.clone());
    let mut bridges = pb::bridge_service_client::BridgeServiceClient::new(ch.clone());
    let mut flows = pb::flow_service_client::FlowServiceClient::new(ch.clone());
    let dp_channel = ch.clone();
    let mut dp = pb::datapath_service_client::DatapathServiceClient::new(ch);
    let json = cli.json;
    match &cli.command {
        Command::CheckConfig { .. } | Command::Doctor { .. } | Command::Completions { .. } => {
            unreachable!("handled without a server")
        }
        Command::Network(c) => vnet_cmd::network(&dp_channel, c, json).await?,
        Command::Instance(c) => vnet_cmd::instance(&dp_channel, c, json).await?,
        Command::Metadata(c) => vnet_cmd::metadata(&dp_channel, c, json).await?,
        Command::Secgroup(c) => secgroup_cmd::secgroup(&dp_channel, c, json).await?,
        Command::Tunnel(c) => tunnel_cmd::tunnel(&dp_channel, c, json).await?,
        Command::Conntrack(c) => conntrack_cmd::conntrack(&dp_channel, c, json).await?,
        Command::Trace(a) => trace_cmd::run(&dp_channel, a, json).await?,
        Command::Capture(a) => capture_cmd::run(&dp_channel, a, json).await?,
        Command::CaptureStatus => capture_cmd::status(&dp_channel, json).await?,
        Command::Ports => {
            let list = ports
                .list_ports(pb::ListPortsRequest {})
                .await?
                .into_inner()
                .ports;
            if json {
                print_json(&list);
            } else {
                port_rows(&list);
            }
        }
        Command::Port(cmd) => match cmd {
            PortCmd::Add(a) => {
                use pb::add_port_request::Device;
                let tunnel = a.tunnel.request();
                let device = if tunnel.is_some() {
                    None
                } else if let Some(s) = &a.vhost_client {
                    Some(Device::VhostClient(s.clone()))
                } else if let Some(s) = &a.vhost_server {
                    Some(Device::VhostServer(s.clone()))
                } else if let Some(s) = &a.tap {
                    Some(Device::Tap(s.clone()))
                } else {
                    Some(Device::Devargs(a.devargs.clone().unwrap_or_default()))
                };
                let p = ports
                    .add_port(pb::AddPortRequest {
                        name: a.name.clone(),
                        device,
                        tunnel,
                        ofport: a.ofport.unwrap_or(0),
                        tag: a.tag.unwrap_or(0),
                        trunks: a.trunks.clone(),
                        socket_mode: a.socket_mode,
                        socket_owner: a.socket_owner.clone().unwrap_or_default(),
                        socket_group: a.socket_group.clone().unwrap_or_default(),
                    })
                    .await?
                    .into_inner();
                if json {
                    print_json(&p);
                } else {
                    println!(
                        "added port {} (OpenFlow port {}, {})",
                        p.name,
                        p.ofport,
                        if p.devargs.is_empty() {
                            &p.driver
                        } else {
                            &p.devargs
                        }
                    );
                }
            }
            PortCmd::Remove { name } => {
                ports
                    .remove_port(pb::RemovePortRequest { name: name.clone() })
                    .await?;
                if json {
                    print_json(&serde_json::json!({"ok": true}));
                } else {
                    println!("removed port {name}");
                }
            }
            PortCmd::Show { name } => {
                let p = ports
                    .get_port(pb::GetPortRequest { name: name.clone() })
                    .await?
                    .into_inner();
                if json {
                    print_json(&p);
                } else {
                    show_port(&p);
                }
            }
            PortCmd::Up { name } | PortCmd::Down { name } => {
                let up = matches!(cmd, PortCmd::Up { .. });
                let p = ports
                    .set_port_admin_state(pb::SetPortAdminStateRequest {
                        name: name.clone(),
                        up,
                    })
                    .await?
                    .into_inner();
                if json {
                    print_json(&p);
                } else {
                    println!("port {} is administratively {}", p.name, updown(p.admin_up));
                }
            }
        },
        Command::Bridge => {
            let b = bridges
                .list_bridges(pb::ListBridgesRequest {})
                .await?
                .into_inner()
                .bridges;
            if json {
                print_json(&b);
            } else {
                for b in &b {
                    println!(
                        "bridge {}  datapath_id {}  fail_mode {}  OpenFlow connections {}",
                        b.name, b.datapath_id, b.fail_mode, b.openflow_connections
                    );
                    for l in &b.openflow_listen {
                        println!("  listening {l}");
                    }
                    controller_rows(&b.controllers);
                }
            }
        }
        Command::Controller(cmd) => {
            let list = match cmd {
                ControllerCmd::Set { targets } => {
                    bridges
                        .set_controllers(pb::SetControllersRequest {
                            bridge: String::new(),
                            targets: targets.clone(),
                        })
                        .await?
                        .into_inner()
                        .controllers
                }
                ControllerCmd::Del => {
                    bridges
                        .set_controllers(pb::SetControllersRequest::default())
                        .await?
                        .into_inner()
                        .controllers
                }
                ControllerCmd::List => {
                    bridges
                        .list_controllers(pb::ListControllersRequest {})
                        .await?
                        .into_inner()
                        .controllers
                }
            };
            if json {
                print_json(&list);
            } else {
                controller_rows(&list);
            }
        }
        Command::Flows(cmd) => flows_cmd(&mut flows, cmd, json).await?,
        Command::Tables => {
            let t = flows
                .dump_tables(pb::DumpTablesRequest {})
                .await?
                .into_inner()
                .tables;
            if json {
                print_json(&t);
            } else {
                let rows: Vec<Vec<String>> = t
                    .iter()
                    .map(|t| {
                        vec![
                            t.table_id.to_string(),
                            t.name.clone(),
                            t.active.to_string(),
                            t.lookups.to_string(),
                            t.matches.to_string(),
                        ]
                    })
                    .collect();
                table(
                    &[">TABLE", "NAME", ">ENTRIES", ">LOOKUPS", ">MATCHES"],
                    &rows,
                );
            }
        }
        Command::Groups(cmd) => {
            use pb::group_change::Group;
            let change = |command: pb::GroupCommand, text: &str| pb::ApplyGroupsRequest {
                changes: vec![pb::GroupChange {
                    command: command as i32,
                    group: Some(Group::Text(text.to_owned())),
                }],
            };
            match cmd {
                GroupsCmd::Add { group } => drop(
                    flows
                        .apply_groups(change(pb::GroupCommand::Add, group))
                        .await?,
                ),
                GroupsCmd::Mod { group } => drop(
                    flows
                        .apply_groups(change(pb::GroupCommand::Modify, group))
                        .await?,
                ),
                GroupsCmd::Del { group } => drop(
                    flows
                        .apply_groups(change(pb::GroupCommand::Delete, group))
                        .await?,
                ),
                GroupsCmd::Dump => {
                    let g = flows
                        .dump_groups(pb::DumpGroupsRequest {})
                        .await?
                        .into_inner()
                        .groups;
                    if json {
                        print_json(&g);
                    } else {
                        for g in &g {
                            println!(
                                " {}  packets={} bytes={} ref_count={}",
                                g.text, g.packets, g.bytes, g.ref_count
                            );
                        }
                    }
                    return Ok(());
                }
            }
            if json {
                print_json(&serde_json::json!({"ok": true}));
            }
        }
        Command::Meters(cmd) => {
            use pb::meter_change::Meter;
            let change = |command: pb::MeterCommand, text: &str| pb::ApplyMetersRequest {
                changes: vec![pb::MeterChange {
                    command: command as i32,
                    meter: Some(Meter::Text(text.to_owned())),
                }],
            };
            match cmd {
                MetersCmd::Add { meter } => drop(
                    flows
                        .apply_meters(change(pb::MeterCommand::Add, meter))
                        .await?,
                ),
                MetersCmd::Mod { meter } => drop(
                    flows
                        .apply_meters(change(pb::MeterCommand::Modify, meter))
                        .await?,
                ),
                MetersCmd::Del { meter } => drop(
                    flows
                        .apply_meters(change(pb::MeterCommand::Delete, meter))
                        .await?,
                ),
                MetersCmd::Dump => {
                    let m = flows
                        .dump_meters(pb::DumpMetersRequest {})
                        .await?
                        .into_inner()
                        .meters;
                    if json {
                        print_json(&m);
                    } else {
                        for m in &m {
                            println!(
                                " {}  packets_in={} bytes_in={} flows={}",
                                m.text, m.packets_in, m.bytes_in, m.flow_count
                            );
                        }
                    }
                    return Ok(());
                }
            }
            if json {
                print_json(&serde_json::json!({"ok": true}));
            }
        }
        Command::Status(args) => datapath_cmd::status(&dp_channel, args, json).await?,
        Command::Datapath(c) => datapath_cmd::datapath(&dp_channel, c, json).await?,
        Command::Stats { watch, count } => stats(&mut ports, *watch, *count, json).await?,
        Command::Events { count } => {
            let mut stream = dp
                .watch_events(pb::WatchEventsRequest {})
                .await?
                .into_inner();
            let mut n = 0;
            while count.is_none_or(|c| n < c) {
                let Some(e) = stream.message().await? else {
                    break;
                };
                if json {
                    println!("{}", serde_json::to_string(&e).unwrap_or_default());
                } else {
                    println!("{}", describe_event(&e));
                }
                n += 1;
            }
        }
    }
    Ok(())
}

fn describe_event(e: &pb::Event) -> String {
    match &e.event {
        Some(pb::event::Event::Port(p)) => {
            let kind = pb::port_event::Kind::try_from(p.kind).map_or("?".into(), |k| {
                k.as_str_name().trim_start_matches("KIND_").to_lowercase()
            });
            format!("port {} ({}) {kind}", p.name, p.ofport)
        }
        Some(pb::event::Event::Flow(f)) if !f.changes.is_empty() => {
            format!("flows {}", f.changes.join("; "))
        }
        Some(pb::event::Event::Flow(f)) => {
            format!("table {} now has {} entries", f.table_id, f.entries)
        }
        Some(pb::event::Event::Lagged(n)) => format!("({n} events lost: this client fell behind)"),
        None => "?".into(),
    }
}

fn controller_rows(list: &[pb::Controller]) {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|c| {
            vec![
                c.target.clone(),
                if c.connected {
                    "connected"
                } else {
                    "not connected"
                }
                .into(),
            ]
        })
        .collect();
    table(&["CONTROLLER", "STATE"], &rows);
}

fn show_port(p: &pb::Port) {
    println!(
        "port {}: OpenFlow port {}, {} ({}), link {}, admin {}, {} Mb/s, mac {}, {}",
        p.name,
        p.ofport,
        p.device,
        p.driver,
        updown(p.link_up),
        updown(p.admin_up),
        p.speed_mbps,
        p.mac,
        p.vlan
    );
    println!("devargs: {}", p.devargs);
    let c = p.counters.unwrap_or_default();
    let rows = vec![
        vec!["rx_packets".into(), c.rx_packets.to_string()],
        vec!["rx_bytes".into(), c.rx_bytes.to_string()],
        vec!["tx_packets".into(), c.tx_packets.to_string()],
        vec!["tx_bytes".into(), c.tx_bytes.to_string()],
        vec!["rx_missed".into(), c.rx_missed.to_string()],
        vec!["rx_errors".into(), c.rx_errors.to_string()],
        vec!["tx_errors".into(), c.tx_errors.to_string()],
        vec!["rx_nombuf".into(), c.rx_nombuf.to_string()],
        vec!["forwarded".into(), c.forwarded.to_string()],
        vec!["to_controller".into(), c.to_controller.to_string()],
        vec!["dropped".into(), c.dropped.to_string()],
        vec!["meter_drops".into(), c.meter_drops.to_string()],
        vec!["tx_dropped".into(), c.tx_dropped.to_string()],
        vec![
            "tx_oversize_dropped".into(),
            c.tx_oversize_dropped.to_string(),
        ],
    ];
    table(&["COUNTER", ">VALUE"], &rows);
    if !p.xstats.is_empty() {
        let rows: Vec<Vec<String>> = p
            .xstats
            .iter()
            .map(|x| vec![x.name.clone(), x.value.to_string()])
            .collect();
        table(&["XSTAT", ">VALUE"], &rows);
    }
}

/// How many flows an add-flows file holds: its lines that are neither blank nor a `#`
/// comment once trimmed (the lines the server reads from `add_text`).
fn add_flow_lines(text: &[u8]) -> usize {
    text.split(|&c| c == b'\n')
        .filter(|l| {
            let l = l.trim_ascii();
            !l.is_empty() && l[0] != b'#'
        })
        .count()
}

async fn flows_cmd(
    flows: &mut pb::flow_service_client::FlowServiceClient<Channel>,
    cmd: &FlowsCmd,
    json: bool,
) -> Result<()> {
    use pb::flow_change::Flow;
    let change = |command: pb::FlowCommand, text: &str| pb::FlowChange {
        command: command as i32,
        flow: Some(Flow::Text(text.to_owned())),
    };
    let mut add_text = Vec::new();
    let mut n_text = 0;
    let changes = match cmd {
        FlowsCmd::Dump { r#match } => {
            let list = flows
                .dump_flows(pb::DumpFlowsRequest {
                    filter: r#match.clone(),
                })
                .await?
                .into_inner()
                .flows;
            if json {
                print_json(&list);
            } else {
                for f in &list {
                    println!(" {}", f.text);
                }
            }
            return Ok(());
        }
        FlowsCmd::Add { flows: list, file } => {
            // The file goes as it is, in one field: the server splits it into lines (and
            // names a refused one by its line number), so neither side keeps a string
            // per flow.
            if let Some(f) = file {
                add_text = if f.as_os_str() == "-" {
                    let mut b = Vec::new();
                    std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)
                        .map_err(|e| fail(1, format!("standard input: {e}")))?;
                    b
                } else {
                    std::fs::read(f).map_err(|e| fail(1, format!("{}: {e}", f.display())))?
                };
                n_text = add_flow_lines(&add_text);
            }
            if list.is_empty() && n_text == 0 {
                return Err(fail(2, "no flows given"));
            }
            list.iter()
                .map(|t| change(pb::FlowCommand::Add, t))
                .collect::<Vec<_>>()
        }
        FlowsCmd::Mod { flow, strict } => vec![change(
            if *strict {
                pb::FlowCommand::ModifyStrict
            } else {
                pb::FlowCommand::Modify
            },
            flow,
        )],
        FlowsCmd::Del { r#match, strict } => vec![change(
            if *strict {
                pb::FlowCommand::DeleteStrict
            } else {
                pb::FlowCommand::Delete
            },
            r#match,
        )],
    };
    let n = changes.len() + n_text;
    let r = flows
        .apply_flows(pb::ApplyFlowsRequest { changes, add_text })
        .await?
        .into_inner();
    if json {
        print_json(&serde_json::json!({"ok": true, "changes": n, "removed": r.removed}));
    } else if matches!(cmd, FlowsCmd::Del { .. }) {
        println!("deleted {} flows", r.removed);
    }
    Ok(())
}

#[derive(Serialize)]
struct Rate {
    port: String,
    rx_pps: f64,
    tx_pps: f64,
    rx_bps: f64,
    tx_bps: f64,
    rx_packets: u64,
    tx_packets: u64,
    drops: u64,
}

async fn stats(
    ports: &mut pb::port_service_client::PortServiceClient<Channel>,
    watch: Option<f64>,
    count: Option<u64>,
    json: bool,
) -> Result<()> {
    let interval = Duration::from_secs_f64(watch.unwrap_or(1.0).max(0.1));
    let mut last = ports
        .list_ports(pb::ListPortsRequest {})
        .await?
        .into_inner()
        .ports;
    let mut at = std::time::Instant::now();
    let mut n = 0;
    loop {
        tokio::time::sleep(interval).await;
        let now = ports
            .list_ports(pb::ListPortsRequest {})
            .await?
            .into_inner()
            .ports;
        let dt = at.elapsed().as_secs_f64().max(1e-6);
        at = std::time::Instant::now();
        let rates: Vec<Rate> = now
            .iter()
            .map(|p| {
                let c = p.counters.unwrap_or_default();
                let o = last
                    .iter()
                    .find(|q| q.name == p.name)
                    .and_then(|q| q.counters)
                    .unwrap_or_default();
                let d = |a: u64, b: u64| a.saturating_sub(b) as f64 / dt;
                Rate {
                    port: p.name.clone(),
                    rx_pps: d(c.rx_packets, o.rx_packets),
                    tx_pps: d(c.tx_packets, o.tx_packets),
                    rx_bps: 8.0 * d(c.rx_bytes, o.rx_bytes),
                    tx_bps: 8.0 * d(c.tx_bytes, o.tx_bytes),
                    rx_packets: c.rx_packets,
                    tx_packets: c.tx_packets,
                    drops: c.rx_missed + c.dropped + c.tx_dropped,
                }
            })
            .collect();
        if json {
            println!("{}", serde_json::to_string(&rates).unwrap_or_default());
        } else {
            let rows: Vec<Vec<String>> = rates
                .iter()
                .map(|r| {
                    vec![
                        r.port.clone(),
                        format!("{:.0}", r.rx_pps),
                        format!("{:.0}", r.tx_pps),
                        format!("{:.1}", r.rx_bps / 1e6),
                        format!("{:.1}", r.tx_bps / 1e6),
                        r.rx_packets.to_string(),
                        r.tx_packets.to_string(),
                        r.drops.to_string(),
                    ]
                })
                .collect();
            table(
                &[
                    "PORT", ">RX_PPS", ">TX_PPS", ">RX_MBPS", ">TX_MBPS", ">RX_PKTS", ">TX_PKTS",
                    ">DROPS",
                ],
                &rows,
            );
        }
        last = now;
        n += 1;
        if watch.is_none() || count.is_some_and(|c| n >= c) {
            return Ok(());
        }
        if !json {
            println!();
        }
    }
}

fn check_config(file: &std::path::Path, json: bool) -> ExitCode {
    match Config::load(file) {
        Ok(c) => {
            // What EAL will make of the file (PCI ports against --no-pci and the
            // allowlist, vhost socket paths) decides too; the host does not.
            let checks = ferroflow_doctor::config_checks(&c);
            let failed: Vec<_> = checks
                .iter()
                .filter(|k| k.status == ferroflow_doctor::Status::Fail)
                .collect();
            if !failed.is_empty() {
                let error = failed
                    .iter()
                    .map(|k| format!("{}: {} (fix: {})", k.name, k.message, k.fix))
                    .collect::<Vec<_>>()
                    .join("; ");
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"ok": false, "error": error, "checks": checks})
                    );
                } else {
                    eprintln!("ferroflowctl: {}: {error}", file.display());
                }
                return ExitCode::from(1);
            }
            if json {
                let ports: Vec<_> = c
                    .ports
                    .iter()
                    .map(|p| serde_json::json!({"name": p.name, "ofport": p.ofport, "devargs": p.devargs, "vlan": p.vlan_mode().to_string()}))
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({"ok": true, "eal_args": c.eal_args("ferroflowd"), "ports": ports, "checks": checks})
                );
            } else {
                println!("{}: ok", file.display());
                println!("EAL: {}", c.eal_args("ferroflowd")[1..].join(" "));
                let rows: Vec<Vec<String>> = c
                    .ports
                    .iter()
                    .map(|p| {
                        vec![
                            p.name.clone(),
                            p.ofport.to_string(),
                            p.vlan_mode().to_string(),
                            p.devargs.clone(),
                        ]
                    })
                    .collect();
                table(&["PORT", ">OFPORT", "VLAN", "DEVARGS"], &rows);
                for k in checks
                    .iter()
                    .filter(|k| k.status != ferroflow_doctor::Status::Ok)
                {
                    println!(
                        "{} {}: {} (fix: {})",
                        k.status.as_str(),
                        k.name,
                        k.message,
                        k.fix
                    );
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"ok": false, "error": e.to_string()})
                );
            } else {
                eprintln!("ferroflowctl: {e}");
            }
            ExitCode::from(1)
        }
    }
}
