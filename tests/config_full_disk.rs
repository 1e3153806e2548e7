//! A change that cannot be saved (the config file's filesystem is full) leaves
//! the file exactly as it was, no temp file behind, and the switch saying it
//! runs unsaved (ferroflowctl status, `ferroflow_config_unsaved`) until a retry
//! succeeds once there is space again; the file keeps its mode.

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.
mod mgmt;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use common::{DatapathLock, TempDir};
use mgmt::{config, ctl, eventually, port_toml, Daemon};

/// A 64 KiB tmpfs, unmounted when dropped.
struct SmallFs(PathBuf);

impl SmallFs {
    fn mount(at: PathBuf) -> SmallFs {
        std::fs::create_dir_all(&at).unwrap();
        common::run(&format!(
            "mount -t tmpfs -o size=64k ff-test-full {}",
            at.display()
        ));
        SmallFs(at)
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = common::sh(&format!("umount {}", self.0.display()));
    }
}

fn unsaved_metric(metrics: &str) -> String {
    let text = common::run(&format!("curl -sf http://{metrics}/metrics"));
    text.lines()
        .find(|l| l.starts_with("ferroflow_config_unsaved "))
        .unwrap_or_else(|| panic!("no ferroflow_config_unsaved:\n{text}"))
        .to_owned()
}

#[test]
fn a_change_on_a_full_disk_leaves_the_file_intact_and_is_saved_later() {
    let _lock = DatapathLock::take();
    let dir = TempDir::new("full-disk");
    let fs = SmallFs::mount(dir.path("etc"));
    let socket = dir.path("api.sock");
    let server = format!("unix:{}", socket.display());
    let metrics = "127.0.0.1:19472";
    let cfg = fs.0.join("ff.toml");
    std::fs::write(
        &cfg,
        config(
            "ff-t-fulldisk",
            &socket,
            Some(metrics),
            &(port_toml("p1", "net_null0,no-rx=1", 1) + "\n[datapath]\nidle_sleep_us = 200\n"),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o640)).unwrap();
    let d = Daemon::start(&cfg, &server, 90.0);
    let ok = |args: &[&str]| {
        let (code, out, err) = ctl(&server, args);
        assert_eq!(
            code,
            0,
            "ferroflowctl {args:?}: {out}{err}\n{}",
            d.log_text()
        );
        out
    };
    ok(&["flows", "add", "table=0,priority=7,in_port=1,actions=drop"]);
    let before = std::fs::read(&cfg).unwrap();
    assert!(String::from_utf8_lossy(&before).contains("priority=7"));

    // Fill the filesystem.
    let _ = common::sh(&format!(
        "dd if=/dev/zero of={}/filler bs=1k 2>/dev/null",
        fs.0.display()
    ));
    let (code, out, err) = ctl(
        &server,
        &["flows", "add", "table=0,priority=9,in_port=1,actions=drop"],
    );
    assert_ne!(code, 0, "a change on a full disk reported saved: {out}");
    assert!(err.contains("not saved"), "{err}");
    assert_eq!(std::fs::read(&cfg).unwrap(), before, "the file changed");
    let left: Vec<_> = std::fs::read_dir(&fs.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "temp files left behind: {left:?}");
    let status = ok(&["status"]);
    assert!(status.contains("config: UNSAVED"), "{status}");
    assert_eq!(unsaved_metric(metrics), "ferroflow_config_unsaved 1");

    // Space again: the retry saves what runs.
    std::fs::remove_file(fs.0.join("filler")).unwrap();
    eventually(Duration::from_secs(10), "the retried save", || {
        std::fs::read_to_string(&cfg)
            .ok()
            .filter(|t| t.contains("priority=9"))
    });
    assert!(!ok(&["status"]).contains("UNSAVED"));
    assert_eq!(unsaved_metric(metrics), "ferroflow_config_unsaved 0");
    let mode = std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o640, "the file's mode changed");
    drop(d);
    drop(fs);
}
