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

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A directory of its own below the system's temp dir, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let p = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            Scratch(p)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// Every subcommand path an operator can type, as `["port", "add"]`.
    fn subcommand_paths(cmd: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
        for sub in cmd
            .get_subcommands()
            .filter(|s| s.get_name() != "help" && !s.is_hide_set())
        {
            let mut path = prefix.to_vec();
            path.push(sub.get_name().to_owned());
            out.push(path.clone());
            subcommand_paths(sub, &path, out);
        }
    }

    /// The page as `man` prints it to a pipe (plain ASCII text), so that roff
    /// escapes (`\-`) do not hide names.
    fn rendered(page: &Path) -> String {
        let out = Command::new("man")
            .arg("-l")
            .arg(page)
            .env("MANWIDTH", "200")
            .env("LC_ALL", "C")
            .env_remove("MAN_KEEP_FORMATTING")
            .output()
            .expect("run man -l");
        assert!(out.status.success(), "man -l {} failed", page.display());
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn man_pages_name_every_subcommand_and_option() {
        let dir = Scratch::new("man");
        write_docs(&dir.0).unwrap();
        let man1 = dir.0.join("man/man1");

        let ctl = ferroflowctl::command();
        let main_page = rendered(&man1.join("ferroflowctl.1"));
        let mut paths = Vec::new();
        subcommand_paths(&ctl, &[], &mut paths);
        assert!(
            paths.len() > 20,
            "ferroflowctl has its subcommands: {paths:?}"
        );
        for path in &paths {
            // The main page lists the top-level commands; each command,
            // nested or not, has its own page that names it in full.
            if path.len() == 1 {
                assert!(
                    main_page.contains(&path[0]),
                    "ferroflowctl(1) does not name `{}`",
                    path[0]
                );
            }
            let name = format!("ferroflowctl-{}", path.join("-"));
            let page = man1.join(format!("{name}.1"));
            assert!(page.exists(), "no man page {}", page.display());
            assert!(
                rendered(&page).contains(&name),
                "{name}.1 does not name its command"
            );
        }

        let daemon = rendered(&man1.join("ferroflowd.1"));
        let mut ferroflowd = ferroflow::cli::Args::command();
        ferroflowd.build();
        for arg in ferroflowd.get_arguments() {
            if let Some(long) = arg.get_long() {
                assert!(
                    daemon.contains(&format!("--{long}")),
                    "ferroflowd(1) does not name --{long}:\n{daemon}"
                );
            }
        }
    }

    #[test]
    fn bash_completion_loads_and_completes_subcommands() {
        let dir = Scratch::new("bash");
        write_docs(&dir.0).unwrap();
        for (bin, word, expect) in [
            ("ferroflowctl", "po", &["port", "ports"][..]),
            ("ferroflowd", "--c", &["--config", "--check-config"][..]),
        ] {
            let file = completion_path(&dir.0, Shell::Bash, bin);
            // Loads in a plain bash (no bash-completion package needed),
            // registers the command, and its function completes a prefix.
            let script = format!(
                "set -e; source '{}'; complete -p {bin}; \
                 COMP_WORDS=({bin} {word}); COMP_CWORD=1; _{bin} {bin} {word} {bin}; \
                 printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                file.display()
            );
            let out = Command::new("bash")
                .args(["--norc", "--noprofile", "-c", &script])
                .output()
                .expect("run bash");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{bin}'s completion does not load: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let mut lines = stdout.lines();
            let registered = lines.next().unwrap_or("");
            assert!(
                registered.starts_with("complete ") && registered.ends_with(&format!(" {bin}")),
                "complete -p {bin} printed {registered:?}"
            );
            let offered: Vec<&str> = lines.collect();
            for e in expect {
                assert!(
                    offered.contains(e),
                    "`{bin} {word}<TAB>` offers {offered:?}, not {e}"
                );
            }
        }
    }

    #[test]
    fn zsh_and_fish_completions_are_for_their_commands() {
        let dir = Scratch::new("shells");
        write_docs(&dir.0).unwrap();
        for bin in ["ferroflowd", "ferroflowctl"] {
            let zsh = fs::read_to_string(completion_path(&dir.0, Shell::Zsh, bin)).unwrap();
            assert!(zsh.starts_with(&format!("#compdef {bin}")), "{zsh:.80}");
            let fish = fs::read_to_string(completion_path(&dir.0, Shell::Fish, bin)).unwrap();
            assert!(fish.contains(&format!("complete -c {bin} ")), "{fish:.200}");
        }
    }
}
