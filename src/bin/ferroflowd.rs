//! ferroflowd: the Ferroflow switch daemon.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use datapath::Datapath;
use dpdk::host::Hugepages;
use dpdk::Eal;
use ferroflow::stats::{write_atomically, StatsSnapshot};
use ferroflow_config::Config;
use tracing::{error, info, warn};

#[derive(Parser, Debug)]
#[command(name = "ferroflowd", version = ferroflow::VERSION, about = "Ferroflow: a kernel-bypass OpenFlow switch on DPDK")]
struct Args {
    /// The configuration file (TOML).
    #[arg(long, short = 'c')]
    config: PathBuf,
    /// Check the configuration and exit without starting DPDK.
    #[arg(long)]
    check_config: bool,
    /// Write port and worker counters as JSON to this file every stats interval
    /// and at exit (written atomically).
    #[arg(long)]
    stats_file: Option<PathBuf>,
    /// Seconds between counter reports in the log and the stats file.
    #[arg(long, default_value_t = 1.0)]
    stats_interval: f64,
    /// Stop by itself after this many seconds (tests and benchmarks).
    #[arg(long)]
    exit_after: Option<f64>,
}

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

fn run(args: &Args) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    if args.check_config {
        println!(
            "{}: ok ({} ports)",
            args.config.display(),
            config.ports.len()
        );
        return Ok(());
    }
    for (what, set) in [
        (
            "[bridge.controllers]",
            !config.bridge.controllers.is_empty(),
        ),
        ("[openflow] listen", !config.openflow.listen.is_empty()),
        ("[grpc]", config.grpc.is_some()),
        ("[metrics]", config.metrics.is_some()),
    ] {
        if set {
            warn!("{what} is configured but this build does not serve it yet; forwarding is the built-in learning switch");
        }
    }
    check_host(&config)?;

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }

    let eal_args = config.eal_args("ferroflowd");
    info!(args = ?eal_args, "starting DPDK {}", Eal::version());
    let eal = Eal::init(&eal_args)?;
    let mut dp = Datapath::start(&eal, &config)?;
    info!(
        ports = config.ports.len(),
        workers = dp.workers().len(),
        "ferroflowd running"
    );

    let started = Instant::now();
    let interval = Duration::from_secs_f64(args.stats_interval.max(0.05));
    let mut next_report = started + interval;
    let mut last = StatsSnapshot::take(&dp, started);
    let deadline = args
        .exit_after
        .map(|s| started + Duration::from_secs_f64(s));
    loop {
        if stop.load(Ordering::Relaxed) {
            info!("signal received, stopping");
            break;
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            info!("--exit-after reached, stopping");
            break;
        }
        if now >= next_report {
            let snap = StatsSnapshot::take(&dp, started);
            snap.log_rates(&last);
            if let Some(path) = &args.stats_file {
                write_atomically(path, &snap.to_json())?;
            }
            last = snap;
            next_report += interval;
        }
        // Wait on deadlines, not sleep lengths: tap ports interrupt sleeps.
        std::thread::sleep(Duration::from_millis(20));
    }
    dp.halt();
    let snap = StatsSnapshot::take(&dp, started);
    snap.log_totals();
    dp.stop();
    if let Some(path) = &args.stats_file {
        write_atomically(path, &snap.to_json())?;
    }
    drop(eal);
    info!("stopped");
    Ok(())
}
