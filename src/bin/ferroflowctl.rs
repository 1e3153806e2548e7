//! ferroflowctl: the Ferroflow command line.
//!
//! Today it checks configuration files offline; the management commands
//! (ports, flows, stats) arrive with the gRPC API.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ferroflow_config::Config;

#[derive(Parser, Debug)]
#[command(name = "ferroflowctl", version = ferroflow::VERSION, about = "Ferroflow command line")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse and validate a ferroflowd configuration file, and show what it sets up.
    CheckConfig {
        file: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file, json } => match Config::load(&file) {
            Ok(c) => {
                if json {
                    let ports: Vec<_> = c
                        .ports
                        .iter()
                        .map(|p| serde_json::json!({"name": p.name, "ofport": p.ofport, "devargs": p.devargs, "vlan": p.vlan_mode().to_string()}))
                        .collect();
                    println!(
                        "{}",
                        serde_json::json!({"ok": true, "eal_args": c.eal_args("ferroflowd"), "ports": ports})
                    );
                } else {
                    println!("{}: ok", file.display());
                    println!("EAL: {}", c.eal_args("ferroflowd")[1..].join(" "));
                    println!("{:<16} {:>7}  {:<14} DEVARGS", "PORT", "OFPORT", "VLAN");
                    for p in &c.ports {
                        println!(
                            "{:<16} {:>7}  {:<14} {}",
                            p.name,
                            p.ofport,
                            p.vlan_mode().to_string(),
                            p.devargs
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
        },
    }
}
