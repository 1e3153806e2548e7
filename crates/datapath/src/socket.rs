//! Access to the vhost-user sockets the switch creates (server mode): QEMU usually runs as
//! another user than ferroflowd (libvirt's `libvirt-qemu`, group `kvm`), and DPDK creates the
//! socket with the daemon's umask and identity. The configured mode, owner and group are
//! applied once the socket exists, before any guest can be told to connect.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ferroflow_config::PortConfig;

/// Applies the port's `socket_mode`, `socket_owner` and `socket_group`. Does nothing for a
/// port that asks for none of them.
pub(crate) fn apply_access(pc: &PortConfig) -> Result<(), String> {
    if !pc.sets_socket_access() {
        return Ok(());
    }
    let path = pc
        .vhost_server_socket()
        .ok_or("socket access applies to vhost-user server ports only")?;
    let path = Path::new(path);
    if !path.exists() {
        return Err(format!(
            "{} does not exist after the port started",
            path.display()
        ));
    }
    let uid = pc.socket_owner.as_deref().map(user_id).transpose()?;
    let gid = pc.socket_group.as_deref().map(group_id).transpose()?;
    if uid.is_some() || gid.is_some() {
        std::os::unix::fs::chown(path, uid, gid)
            .map_err(|e| format!("chown {}: {e}", path.display()))?;
    }
    if let Some(mode) = pc.socket_mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("chmod {mode:o} {}: {e}", path.display()))?;
    }
    Ok(())
}

fn user_id(name: &str) -> Result<u32, String> {
    match name.parse() {
        Ok(uid) => Ok(uid),
        Err(_) => uzers::get_user_by_name(name)
            .map(|u| u.uid())
            .ok_or_else(|| format!("socket_owner: no user {name:?} on this host")),
    }
}

fn group_id(name: &str) -> Result<u32, String> {
    match name.parse() {
        Ok(gid) => Ok(gid),
        Err(_) => uzers::get_group_by_name(name)
            .map(|g| g.gid())
            .ok_or_else(|| format!("socket_group: no group {name:?} on this host")),
    }
}
