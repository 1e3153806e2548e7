//! `ferroflowctl completions SHELL` is how a workstation install (no
//! packaging, no xtask) gets completion: what it prints must load.

use std::process::Command;

fn completions(shell: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ferroflowctl"))
        .args(["completions", shell])
        .output()
        .expect("run ferroflowctl")
}

#[test]
fn bash_completion_loads_and_completes_commands() {
    let out = completions("bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = std::env::temp_dir().join(format!("ferroflowctl-completions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ferroflowctl");
    std::fs::write(&file, &out.stdout).unwrap();
    let script = format!(
        "set -e; source '{}'; complete -p ferroflowctl; \
         COMP_WORDS=(ferroflowctl flows d); COMP_CWORD=2; _ferroflowctl ferroflowctl d flows; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.display()
    );
    let run = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &script])
        .output()
        .expect("run bash");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    let mut lines = stdout.lines();
    let registered = lines.next().unwrap_or("");
    assert!(
        registered.starts_with("complete ") && registered.ends_with(" ferroflowctl"),
        "complete -p ferroflowctl printed {registered:?}"
    );
    let offered: Vec<&str> = lines.collect();
    assert!(
        offered.contains(&"del") && offered.contains(&"dump"),
        "`ferroflowctl flows d<TAB>` offers {offered:?}"
    );
}

#[test]
fn zsh_and_fish_scripts_name_the_command_and_an_unknown_shell_is_a_usage_error() {
    let zsh = completions("zsh");
    assert!(String::from_utf8_lossy(&zsh.stdout).starts_with("#compdef ferroflowctl"));
    let fish = completions("fish");
    assert!(String::from_utf8_lossy(&fish.stdout).contains("complete -c ferroflowctl "));
    let bad = completions("tcsh");
    assert_eq!(bad.status.code(), Some(2), "a usage error exits 2");
    assert!(bad.stdout.is_empty());
}
