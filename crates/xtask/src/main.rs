//! Build chores run with `cargo run -p xtask -- COMMAND`:
//!
//! - `docs DIR`: man pages and bash, zsh and fish completions for ferroflowd
//!   and ferroflowctl, generated from the clap definitions the binaries parse
//!   (so they cannot drift from `--help`), laid out as under `/usr/share`:
//!   `man/man1/`, `bash-completion/completions/`, `zsh/vendor-completions/`,
//!   `fish/vendor_completions.d/`. The Dockerfile installs them with
//!   `COPY --from=build /out/share/ /usr/share/`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

/// The binaries documented, each with its command line.
fn commands() -> [clap::Command; 2] {
    [ferroflow::cli::Args::command(), ferroflowctl::command()]
}

/// Where each shell looks for a command's completion under `/usr/share`, and
/// the file name it expects.
fn completion_path(share: &Path, shell: Shell, bin: &str) -> PathBuf {
    match shell {
        Shell::Bash => share.join("bash-completion/completions").join(bin),
        Shell::Zsh => share.join("zsh/vendor-completions").join(format!("_{bin}")),
        Shell::Fish => share
            .join("fish/vendor_completions.d")
            .join(format!("{bin}.fish")),
        _ => unreachable!("only bash, zsh and fish are generated"),
    }
}

/// Writes the man pages (one for each binary and one for each subcommand, as
/// `ferroflowctl-port-add.1`) and the completions below `share`.
fn write_docs(share: &Path) -> io::Result<()> {
    let man1 = share.join("man/man1");
    fs::create_dir_all(&man1)?;
    for mut cmd in commands() {
        cmd.build();
        write_man_pages(&cmd, &man1)?;
        let bin = cmd.get_name().to_owned();
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let path = completion_path(share, shell, &bin);
            fs::create_dir_all(path.parent().expect("a file below share"))?;
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, &bin, &mut out);
            fs::write(&path, out)?;
        }
    }
    Ok(())
}

/// One page for `cmd` and, recursively, one for each of its subcommands
/// except clap's `help` (whose pages would only repeat the others) and hidden
/// ones. `cmd` is built, so subcommands carry their full names
/// (`ferroflowctl-port-add`).
fn write_man_pages(cmd: &clap::Command, dir: &Path) -> io::Result<()> {
    let name = cmd.get_display_name().unwrap_or(cmd.get_name());
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    fs::write(dir.join(format!("{name}.1")), page)?;
    for sub in cmd
        .get_subcommands()
        .filter(|s| s.get_name() != "help" && !s.is_hide_set())
    {
        write_man_pages(sub, dir)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [cmd, dir] if cmd == "docs" => match write_docs(Path::new(dir)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("xtask docs: cannot write below {dir}: {e}");
                ExitCode::from(1)
            }
        },
        _ => {
            eprintln!("usage: cargo run -p xtask -- docs DIR   (man pages and completions, DIR as /usr/share)");
            ExitCode::from(2)
        }
    }
}
