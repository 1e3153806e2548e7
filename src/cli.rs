//! ferroflowd's command line, here rather than in its binary so that the
//! man page and shell completions (`cargo run -p xtask -- docs`) are generated
//! from the same definition the daemon parses.

use std::path::PathBuf;

use clap::Parser;

/// ferroflowd's arguments.
#[derive(Parser, Debug)]
#[command(name = "ferroflowd", version = crate::VERSION, about = "Ferroflow: a kernel-bypass OpenFlow switch on DPDK")]
pub struct Args {
    /// The configuration file (TOML).
    #[arg(long, short = 'c')]
    pub config: PathBuf,
    /// Check the configuration and exit without starting DPDK: exit status 0
    /// when it is valid (host problems are reported, with fixes, on stderr),
    /// 1 when it is not.
    #[arg(long)]
    pub check_config: bool,
    /// Write port and worker counters as JSON to this file every stats interval
    /// and at exit (written atomically).
    #[arg(long)]
    pub stats_file: Option<PathBuf>,
    /// Seconds between counter reports in the log and the stats file.
    #[arg(long, default_value_t = 1.0)]
    pub stats_interval: f64,
    /// Stop by itself after this many seconds (tests and benchmarks).
    #[arg(long)]
    pub exit_after: Option<f64>,
}
