//! What `AddPort` may create (issue 14, item 4). DPDK devargs can make a
//! port write any file as root (`net_pcap,tx_pcap=/etc/x`) or take a PCI
//! device, so a gRPC client may only create what an operator means: drivers
//! from `[grpc] port_drivers`, files only under `[grpc] port_paths` (after
//! `..` and symlinks are resolved), PCI devices only with `[grpc] port_pci`.
//! The config file's `[[ports]]` stays the way to do anything else.

use std::path::{Component, Path, PathBuf};

use ferroflow_config::GrpcConfig;

/// Why a port's devargs are refused; each names the `[grpc]` rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortRuleError {
    #[error(
        "PCI device {0:?}: grpc.port_pci is false (add PCI ports in the config file's [[ports]])"
    )]
    Pci(String),
    #[error("driver of {name:?} is not in grpc.port_drivers ({allowed}); add such ports in the config file's [[ports]]")]
    Driver { name: String, allowed: String },
    #[error("{key}={value:?}: a file named in devargs must be an absolute path")]
    RelativePath { key: String, value: String },
    #[error(
        "{key}={value:?} resolves to {resolved:?}, which is not under grpc.port_paths ({allowed})"
    )]
    OutsidePaths {
        key: String,
        value: String,
        resolved: PathBuf,
        allowed: String,
    },
    #[error("{key}={value:?}: cannot resolve its directory: {message}")]
    Unresolvable {
        key: String,
        value: String,
        message: String,
    },
}

/// Keys that name a file whatever their value looks like (other values are
/// checked as files when they contain a `/`).
const FILE_KEYS: &[&str] = &["iface", "rx_pcap", "tx_pcap", "path", "socket", "file"];

/// Keys whose value is a network interface name, never a file.
fn names_interface(driver: &str, key: &str) -> bool {
    matches!(
        (driver, key),
        ("net_tap", "iface" | "remote")
            | ("net_af_packet", "iface")
            | (
                "net_pcap",
                "iface" | "rx_iface" | "rx_iface_in" | "tx_iface"
            )
    )
}

/// `DDDD:BB:DD.F` or `BB:DD.F`, as EAL takes a PCI address.
fn is_pci(name: &str) -> bool {
    let hex = |s: &str, n: usize| s.len() == n && s.chars().all(|c| c.is_ascii_hexdigit());
    let parts: Vec<&str> = name.split(':').collect();
    let (bus, devfn) = match parts.as_slice() {
        [dom, bus, devfn] if hex(dom, 4) => (*bus, *devfn),
        [bus, devfn] => (*bus, *devfn),
        _ => return false,
    };
    let Some((dev, func)) = devfn.split_once('.') else {
        return false;
    };
    hex(bus, 2) && hex(dev, 2) && func.len() == 1 && matches!(func.as_bytes()[0], b'0'..=b'7')
}

/// Resolves `path` as the kernel would open it: the directory (which must
/// exist) with `..` and symlinks resolved, then the file itself if it is a
/// symlink.
fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    if let Ok(p) = path.canonicalize() {
        return Ok(p);
    }
    // Not there yet (a capture file, a vhost server socket): its directory must be.
    let name = path.file_name().filter(|_| {
        !matches!(
            path.components().next_back(),
            Some(Component::ParentDir | Component::CurDir)
        )
    });
    let (Some(dir), Some(name)) = (path.parent(), name) else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a file path",
        ));
    };
    // A dangling symlink: where it points is where the file would be made.
    if let Ok(target) = std::fs::read_link(path) {
        let target = if target.is_absolute() {
            target
        } else {
            dir.join(target)
        };
        if target != path {
            return resolve(&target);
        }
    }
    Ok(dir.canonicalize()?.join(name))
}

/// Checks `devargs` against the rules of `cfg`.
pub fn check(devargs: &str, cfg: &GrpcConfig) -> Result<(), PortRuleError> {
    let mut parts = devargs.split(',');
    let name = parts.next().unwrap_or_default().trim();
    if is_pci(name) {
        if !cfg.port_pci {
            return Err(PortRuleError::Pci(name.to_owned()));
        }
        return Ok(());
    }
    let allowed = cfg.port_drivers();
    // EAL picks a virtual device's driver by the prefix of its name (net_vhost0 is net_vhost).
    let driver = allowed
        .iter()
        .filter(|d| {
            name.strip_prefix(d.as_str())
                .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        })
        .max_by_key(|d| d.len())
        .ok_or_else(|| PortRuleError::Driver {
            name: name.to_owned(),
            allowed: allowed.join(", "),
        })?;
    let dirs: Vec<PathBuf> = cfg
        .port_paths()
        .iter()
        .map(|d| d.canonicalize().unwrap_or_else(|_| d.clone()))
        .collect();
    for part in parts {
        let (key, value) = part.split_once('=').unwrap_or(("", part));
        let key = key.trim();
        if names_interface(driver, key) && !value.contains('/') {
            continue;
        }
        if !(FILE_KEYS.contains(&key) || value.contains('/')) {
            continue;
        }
        let path = Path::new(value);
        if !path.is_absolute() {
            return Err(PortRuleError::RelativePath {
                key: key.to_owned(),
                value: value.to_owned(),
            });
        }
        let resolved = resolve(path).map_err(|e| PortRuleError::Unresolvable {
            key: key.to_owned(),
            value: value.to_owned(),
            message: e.to_string(),
        })?;
        if !dirs.iter().any(|d| resolved.starts_with(d)) {
            return Err(PortRuleError::OutsidePaths {
                key: key.to_owned(),
                value: value.to_owned(),
                resolved,
                allowed: cfg
                    .port_paths()
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path) -> GrpcConfig {
        GrpcConfig {
            port_paths: Some(vec![dir.to_owned()]),
            ..GrpcConfig::default()
        }
    }

    #[test]
    fn drivers_pci_and_paths() {
        let base = std::env::temp_dir().join(format!("ff-port-rules-{}", std::process::id()));
        let ok_dir = base.join("ok");
        std::fs::create_dir_all(&ok_dir).unwrap();
        std::os::unix::fs::symlink("/etc", ok_dir.join("escape")).unwrap();
        std::os::unix::fs::symlink("/etc/x.pcap", ok_dir.join("dangling.pcap")).unwrap();
        let c = cfg(&ok_dir);
        let d = ok_dir.display();
        for good in [
            "net_null0,no-rx=1".to_owned(),
            "net_ring3".to_owned(),
            "net_tap0,iface=ff-tap0".to_owned(),
            format!("net_pcap1,tx_pcap={d}/out.pcap"),
            format!("net_vhost2,iface={d}/vm1.sock,client=1"),
            "net_af_packet0,iface=eth0".to_owned(),
        ] {
            assert_eq!(check(&good, &c), Ok(()), "{good}");
        }
        let refused = |devargs: String| check(&devargs, &c).unwrap_err();
        assert!(matches!(
            refused("net_pcap0,tx_pcap=/etc/x".into()),
            PortRuleError::OutsidePaths { .. }
        ));
        assert!(matches!(
            refused(format!("net_pcap0,tx_pcap={d}/../x.pcap")),
            PortRuleError::OutsidePaths { .. }
        ));
        assert!(matches!(
            refused(format!("net_pcap0,tx_pcap={d}/escape/x.pcap")),
            PortRuleError::OutsidePaths { .. }
        ));
        assert!(matches!(
            refused(format!("net_pcap0,tx_pcap={d}/dangling.pcap")),
            PortRuleError::OutsidePaths { .. }
        ));
        assert!(matches!(
            refused("net_pcap0,tx_pcap=x.pcap".into()),
            PortRuleError::RelativePath { .. }
        ));
        assert!(matches!(
            refused("net_memif0,socket=/run/x".into()),
            PortRuleError::Driver { .. }
        ));
        assert!(matches!(
            refused("eth_pcap0,tx_pcap=/etc/x".into()),
            PortRuleError::Driver { .. }
        ));
        assert!(matches!(
            refused("0000:3b:00.0".into()),
            PortRuleError::Pci(_)
        ));
        assert!(matches!(refused("3b:00.1".into()), PortRuleError::Pci(_)));
        let pci = GrpcConfig {
            port_pci: true,
            ..c.clone()
        };
        assert_eq!(check("0000:3b:00.0", &pci), Ok(()));
        let _ = std::fs::remove_dir_all(&base);
    }
}
