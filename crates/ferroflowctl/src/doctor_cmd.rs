//! `ferroflowctl doctor`: whether this host can run ferroflowd with a
//! configuration, and what to fix if not. Works offline, like `check-config`:
//! it reads the file and the host, not the running switch.

use std::path::Path;
use std::process::ExitCode;

use ferroflow_doctor::{self as doctor, Check, Host, Status};

use super::table;

/// The exit statuses, for `--help` and the README.
pub const EXIT_HELP: &str =
    "doctor exits 0 when no check failed (warnings may be listed), 1 when at \
least one failed, 2 on a usage error. FERROFLOW_SYSFS_ROOT, FERROFLOW_PROC_ROOT and \
FERROFLOW_DPDK_PMD_DIR read another tree than /sys, /proc and DPDK's plugin directory.";

pub fn run(config: &Path, json: bool) -> ExitCode {
    let checks = doctor::diagnose(config, &Host::from_env());
    let worst = doctor::worst(&checks);
    let code = u8::from(worst == Status::Fail);
    if json {
        println!(
            "{}",
            serde_json::json!({
                "ok": worst != Status::Fail,
                "config": config.display().to_string(),
                "checks": checks,
                "exit": code,
            })
        );
    } else {
        print_checks(&checks);
        let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
        println!(
            "{} checks: {} ok, {} warnings, {} failed",
            checks.len(),
            count(Status::Ok),
            count(Status::Warn),
            count(Status::Fail)
        );
    }
    ExitCode::from(code)
}

/// One row per check, then the fixes of those that did not pass.
pub fn print_checks(checks: &[Check]) {
    let rows: Vec<Vec<String>> = checks
        .iter()
        .map(|c| {
            vec![
                c.status.as_str().to_uppercase(),
                c.name.clone(),
                c.message.clone(),
            ]
        })
        .collect();
    table(&["STATUS", "CHECK", "MESSAGE"], &rows);
    let fixes: Vec<&Check> = checks.iter().filter(|c| !c.fix.is_empty()).collect();
    if !fixes.is_empty() {
        println!();
        for c in fixes {
            println!("fix {}: {}", c.name, c.fix);
        }
    }
}
