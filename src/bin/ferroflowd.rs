//! ferroflowd: the Ferroflow switch daemon.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use dpdk::Eal;
use ferroflow::api::Api;
use ferroflow::cli::Args;
use ferroflow::doctor;
use ferroflow::doctor::host::Hugepages;
use ferroflow::metrics::CountingSwitch;
use ferroflow::ofswitch::OpenFlowSwitch;
use ferroflow::stats::{write_atomically, StatsSnapshot};
use ferroflow::switch::Switch;
use ferroflow_config::{Config, GrpcConfig};
use ofagent::{Agent, AgentConfig, Target, Tls, TlsFiles};
use tracing::{error, info, warn};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERROFLOW_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            eprintln!("ferroflowd: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn check_host(config: &Config) -> anyhow::Result<()> {
    if !config.eal.hugepages {
        return Ok(());
    }
    let h = Hugepages::read();
    if h.mounts.is_empty() {
        anyhow::bail!(
            "no hugetlbfs is mounted: run `mkdir -p /dev/hugepages && mount -t hugetlbfs nodev /dev/hugepages` \
             (or set [eal] hugepages = false to run on ordinary memory)"
        );
    }
    if h.free_pages == 0 {
        anyhow::bail!(
            "no free hugepages ({} reserved, none free): reserve some with `echo 1024 > /proc/sys/vm/nr_hugepages`",
            h.total_pages
        );
    }
    if h.free_mb() < u64::from(config.eal.memory_mb) {
        warn!(
            free_mb = h.free_mb(),
            memory_mb = config.eal.memory_mb,
            "fewer hugepages free than [eal] memory_mb allows; DPDK may run short"
        );
    }
    Ok(())
}

/// `--check-config`: the configuration's own checks decide the exit status
/// (1 when one fails: ferroflowd could not work as configured anywhere); the
/// host checks are reported with their fixes but do not, because the file is
/// often checked somewhere else than where it will run (CI, an image build).
/// `ferroflowctl doctor` is the strict check of the host.
fn check_config(path: &std::path::Path, config: &Config) -> anyhow::Result<()> {
    let config_checks = doctor::config_checks(config);
    let host_checks = doctor::host_checks(config, &doctor::Host::from_env());
    for c in config_checks.iter().chain(&host_checks) {
        if c.status != doctor::Status::Ok {
            let scope = if c.name.starts_with("config") {
                ""
            } else {
                "host: "
            };
            eprintln!("{scope}{} {}: {}", c.status.as_str(), c.name, c.message);
            if !c.fix.is_empty() {
                eprintln!("  fix: {}", c.fix);
            }
        }
    }
    if doctor::worst(&config_checks) == doctor::Status::Fail {
        anyhow::bail!(
            "{}: the configuration cannot work as written (see above)",
            path.display()
        );
    }
    let host = doctor::worst(&host_checks);
    println!(
        "{}: ok ({} ports){}",
        path.display(),
        config.ports.len(),
        match host {
            doctor::Status::Ok => "",
            _ => "; this host is not ready for it (see above, and `ferroflowctl doctor`)",
        }
    );
    Ok(())
}

fn run(args: &Args) -> anyhow::Result<()> {
    let config = Config::load(&args.config).map_err(|e| {
        // The store keeps a copy of the last file that loaded.
        let good = ferroflow::store::Store::last_good_path(&args.config);
        if good.exists() {
            anyhow::anyhow!(
                "{e} (the last good configuration is kept in {})",
                good.display()
            )
        } else {
            anyhow::anyhow!("{e}")
        }
    })?;
    if args.check_config {
        return check_config(&args.config, &config);
    }
    // A save this process's predecessor was killed in the middle of leaves its temp file.
    ferroflow::store::Store::remove_stale_temp_files(&args.config);
    let listeners = config
        .openflow
        .listen
        .iter()
        .map(|t| Target::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    let controllers = config
        .bridge
        .controllers
        .iter()
        .map(|c| Target::parse(&c.target))
        .collect::<Result<Vec<_>, _>>()?;
    check_host(&config)?;

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    stop_watchdog(Arc::clone(&stop), args.exit_after);
    #[cfg(feature = "deadlock-detection")]
    deadlock_detector();

    let eal_args = config.eal_args("ferroflowd");
    info!(args = ?eal_args, "starting DPDK {}", Eal::version());
    let eal = Arc::new(Eal::init(&eal_args)?);
    let nports = config.ports.len();
    let workers = eal.worker_lcores().len();
    let sw = Switch::start(Arc::clone(&eal), config)?;
    info!(ports = nports, workers, "ferroflowd running");

    // The control plane runs on the main lcore's CPU: threads made now inherit
    // its affinity, away from the workers.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ferroflow-ctl")
        .enable_all()
        .build()?;
    let result = rt.block_on(control_plane(args, &sw, listeners, controllers, stop));
    // Every step of the stop is bounded; the watchdog ends the process if the
    // whole takes longer than STOP_GRACE all the same.
    sw.halt();
    let snap = StatsSnapshot::take_within(&sw, Some(Duration::from_millis(200)));
    if let Some(snap) = &snap {
        snap.log_totals();
    }
    sw.stop();
    if let (Some(path), Some(snap)) = (&args.stats_file, &snap) {
        write_atomically(path, &snap.to_json())?;
    }
    // The runtime holds the agent, which holds the switch, which holds EAL:
    // EAL is cleaned up when the last of them goes, after the datapath stopped.
    // Tasks still blocked (a call waiting for the state) are not waited for.
    rt.shutdown_timeout(Duration::from_millis(300));
    drop(sw);
    drop(eal);
    result?;
    info!("stopped");
    Ok(())
}

/// How long a stop (signal or `--exit-after`) may take before the process
/// is ended without the orderly shutdown: the promise is that SIGTERM ends
/// ferroflowd within 2 s in every state, so that systemd, an orchestrator or
/// an operator restarting it never waits on a stuck peer or DPDK call.
const STOP_GRACE: Duration = Duration::from_millis(1900);

/// A SIGTERM must stop the switch even if the control plane is stuck (say,
/// behind a DPDK call that never returns): after [`STOP_GRACE`] this thread
/// logs why and aborts the process (a core dump where the host keeps them, for
/// the post-mortem). EAL runs with `--in-memory`, so no hugepage files are
/// left; vhost-user guests in client mode reconnect to the next ferroflowd,
/// and stale server-mode sockets are removed at the next start.
fn stop_watchdog(stop: Arc<AtomicBool>, exit_after: Option<f64>) {
    let started = Instant::now();
    let spawned = std::thread::Builder::new()
        .name("ferroflow-stop".into())
        .spawn(move || {
            let asked = loop {
                if stop.load(Ordering::Relaxed) {
                    break "a signal";
                }
                if exit_after.is_some_and(|s| started.elapsed().as_secs_f64() >= s) {
                    break "--exit-after";
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            std::thread::sleep(STOP_GRACE);
            tracing::error!(
                "stop asked by {asked} did not finish within {} ms: aborting without the orderly shutdown",
                STOP_GRACE.as_millis()
            );
            eprintln!(
                "ferroflowd: stop asked by {asked} did not finish within {} ms: aborting",
                STOP_GRACE.as_millis()
            );
            std::process::abort();
        });
    if let Err(e) = spawned {
        warn!("no stop watchdog: {e}");
    }
}

/// Test builds: checks every second whether threads wait on each other's
/// locks, and if so names them and aborts (a deadlock must fail a test, not
/// hang it until its timeout).
#[cfg(feature = "deadlock-detection")]
fn deadlock_detector() {
    let spawned = std::thread::Builder::new()
        .name("ferroflow-deadlock".into())
        .spawn(|| loop {
            std::thread::sleep(Duration::from_secs(1));
            let deadlocks = parking_lot::deadlock::check_deadlock();
            if deadlocks.is_empty() {
                continue;
            }
            for (i, threads) in deadlocks.iter().enumerate() {
                for t in threads {
                    eprintln!(
                        "ferroflowd: DEADLOCK {i}: thread {:?}\n{:?}",
                        t.thread_id(),
                        t.backtrace()
                    );
                }
            }
            eprintln!("ferroflowd: DEADLOCK detected: aborting");
            std::process::abort();
        });
    if let Err(e) = spawned {
        warn!("no deadlock detector: {e}");
    }
}

/// Serves OpenFlow, expires flows, relays packet-ins and reports counters
/// until a signal or `--exit-after`.
async fn control_plane(
    args: &Args,
    sw: &Arc<Switch>,
    listeners: Vec<Target>,
    controllers: Vec<Target>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let of = &sw.config.openflow;
    let tls = match (
        &of.tls_certificate,
        &of.tls_private_key,
        &of.tls_ca_certificate,
    ) {
        (Some(certificate), Some(private_key), Some(ca_certificate)) => {
            Some(Tls::load(&TlsFiles {
                certificate: certificate.clone(),
                private_key: private_key.clone(),
                ca_certificate: ca_certificate.clone(),
            })?)
        }
        _ => None,
    };
    let mut limits = ofagent::AgentLimits::default();
    let l = &of.limits;
    if let Some(v) = l.bundles_per_connection {
        limits.bundles.per_connection = v;
    }
    if let Some(v) = l.bundle_messages {
        limits.bundles.messages_per_bundle = v;
    }
    if let Some(v) = l.bundle_messages_total {
        limits.bundles.messages_total = v;
    }
    if let Some(v) = l.bundle_idle_timeout_s {
        limits.bundles.idle_timeout = Duration::from_secs(v);
    }
    if let Some(v) = l.connections_per_listener {
        limits.connections_per_listener = v;
    }
    if let Some(v) = l.handshake_timeout_s {
        limits.handshake_timeout = Duration::from_secs(v);
    }
    let agent_config = AgentConfig {
        probe_interval: Duration::from_secs(of.probe_interval_s.into()),
        tls,
        limits,
        ..AgentConfig::default()
    };
    let api = Api::new(Arc::clone(sw), Some(args.config.clone()));
    let agent = Arc::new(Agent::new(
        Arc::new(CountingSwitch {
            inner: Arc::new(OpenFlowSwitch::new(Arc::clone(sw))),
            counters: Arc::clone(&api.flow_mods),
        }),
        agent_config,
    ));
    sw.set_agent(Arc::downgrade(&agent));
    api.set_agent(&agent);
    {
        let api = Arc::clone(&api);
        let config = sw.config.clone();
        let path = args.config.clone();
        tokio::task::spawn_blocking(move || api.restore(&config, &path)).await??;
    }
    for t in &listeners {
        agent.listen(t).await?;
    }
    api.connect_controllers(controllers);
    // gRPC on a unix socket unless [grpc] says otherwise. Without [grpc], a
    // socket another ferroflowd already answers on is left to it.
    let _grpc = match &sw.config.grpc {
        Some(g) => Some(ferroflow::api::serve(Arc::clone(&api), g).await?),
        None => match ferroflow::api::serve(Arc::clone(&api), &GrpcConfig::default()).await {
            Ok(s) => Some(s),
            Err(e) => {
                warn!("management API not served: {e}");
                None
            }
        },
    };
    if let Some(m) = &sw.config.metrics {
        ferroflow::metrics::serve(Arc::clone(&api), &m.listen).await?;
    }
    api.spawn_watcher();
    let started = Instant::now();
    let interval = Duration::from_secs_f64(args.stats_interval.max(0.05));
    let mut next_report = started + interval;
    let mut last = StatsSnapshot::take(sw);
    let deadline = args
        .exit_after
        .map(|s| started + Duration::from_secs_f64(s));
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    loop {
        tick.tick().await;
        if stop.load(Ordering::Relaxed) {
            info!("signal received, stopping");
            return Ok(());
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            info!("--exit-after reached, stopping");
            return Ok(());
        }
        // Flow changes since the last tick become one new version.
        let sw2 = Arc::clone(sw);
        tokio::task::block_in_place(|| sw2.housekeeping());
        if now >= next_report {
            // A port being added or removed holds the datapath: report next tick.
            if let Some(snap) = StatsSnapshot::take_within(sw, Some(Duration::from_millis(20))) {
                snap.log_rates(&last);
                if let Some(path) = &args.stats_file {
                    write_atomically(path, &snap.to_json())?;
                }
                last = snap;
                next_report += interval;
            }
        }
    }
}
