//! The sockets of vhost-user server ports (the switch creates them).
//!
//! - Access: QEMU usually runs as another user than ferroflowd (libvirt's `libvirt-qemu`,
//!   group `kvm`), and DPDK creates the socket with the daemon's umask and identity. The
//!   mode, owner and group the control plane resolved are applied once the socket exists,
//!   before any guest can be told to connect.
//! - Stale sockets: a process killed with SIGKILL leaves its socket file, and DPDK refuses to
//!   listen on an existing path. Before the port is created, a socket nobody accepts on is
//!   removed; one that accepts belongs to another process, and the port is refused.

use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::spec::PortSpec;

/// Applies the port's socket mode, owner and group. Does nothing for a port that asks for
/// none of them.
pub(crate) fn apply_access(spec: &PortSpec) -> Result<(), String> {
    let access = spec.socket_access;
    if !access.is_set() {
        return Ok(());
    }
    let path = spec
        .vhost_server_socket
        .as_deref()
        .ok_or("socket access applies to vhost-user server ports only")?;
    let path = Path::new(path);
    if !path.exists() {
        return Err(format!(
            "{} does not exist after the port started",
            path.display()
        ));
    }
    if access.uid.is_some() || access.gid.is_some() {
        std::os::unix::fs::chown(path, access.uid, access.gid)
            .map_err(|e| format!("chown {}: {e}", path.display()))?;
    }
    if let Some(mode) = access.mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("chmod {mode:o} {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Makes the path of a server socket free for DPDK: nothing there, or a socket left by a
/// process that died (connect refused), which is removed. A socket something accepts on, or
/// a file that is not a socket, is an error that says so.
pub(crate) fn clear_stale_socket(path: &Path) -> Result<(), String> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    if !meta.file_type().is_socket() {
        return Err(format!(
            "{} exists and is not a socket; remove it or choose another iface",
            path.display()
        ));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(format!(
            "{} is served by another process (a connect was accepted); stop it or choose another iface",
            path.display()
        )),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            std::fs::remove_file(path)
                .map_err(|e| format!("removing the stale socket {}: {e}", path.display()))?;
            tracing::info!(path = %path.display(), "removed a stale vhost-user socket nobody serves");
            Ok(())
        }
        Err(e) => Err(format!("probing {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    fn dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("ff-sock-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_stale_socket_is_removed_a_served_one_refused() {
        let d = dir("stale");
        let path = d.join("vm.sock");
        assert_eq!(clear_stale_socket(&path), Ok(()));
        // A listener that is gone leaves its file: connect is refused.
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        assert_eq!(clear_stale_socket(&path), Ok(()));
        assert!(!path.exists());
        let live = UnixListener::bind(&path).unwrap();
        let err = clear_stale_socket(&path).unwrap_err();
        assert!(err.contains("served by another process"), "{err}");
        assert!(path.exists());
        drop(live);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"not a socket").unwrap();
        let err = clear_stale_socket(&path).unwrap_err();
        assert!(err.contains("not a socket"), "{err}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
