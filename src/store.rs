//! The config store: what the management API changes (ports, controllers,
//! flows, groups, meters) is written back into the configuration file, so a
//! restart comes back the same. Edits go through `toml_edit`, which keeps
//! the operator's comments and layout; the new text must load as a valid
//! configuration before it replaces the file (temp file, fsync, rename), and
//! a copy of each good version is kept beside it as `FILE.last-good`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use ferroflow_config::{Config, ConfigError, PortConfig};
use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, Value};

/// Why the store could not save; the file on disk is unchanged in every case.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not TOML any more ({message}); fix it or restore {last_good}")]
    Parse {
        path: PathBuf,
        message: String,
        last_good: PathBuf,
    },
    #[error("the updated configuration would not load, so it was not written: {0}")]
    Invalid(ConfigError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What the store writes: the state the API manages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreState {
    pub ports: Vec<PortConfig>,
    pub controllers: Vec<String>,
    pub flows: Vec<String>,
    pub groups: Vec<String>,
    pub meters: Vec<String>,
    /// The virtual networks' description (`[[networks]]`, `[[instances]]`, `[metadata]`).
    pub profile: crate::profile::Description,
}

#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
}

impl Store {
    pub fn new(path: &Path) -> Store {
        Store {
            path: path.to_owned(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the last configuration that loaded is kept.
    pub fn last_good_path(path: &Path) -> PathBuf {
        let mut name = path.file_name().unwrap_or_default().to_owned();
        name.push(".last-good");
        path.with_file_name(name)
    }

    /// Removes the temp files a save of this config can leave when the process dies between
    /// creating one and renaming it (a SIGKILL or power loss mid-save): `.FILE.tmp` and
    /// `.FILE.last-good.tmp`. Only those two names, so nothing an operator keeps beside the
    /// file is touched. Called once at start, before anything saves: one ferroflowd owns
    /// a config file, so a temp file present then is a dead process's. Returns what it
    /// removed; a file that cannot be removed is only logged (the next save of that name
    /// replaces it anyway).
    pub fn remove_stale_temp_files(path: &Path) -> Vec<PathBuf> {
        let mut removed = Vec::new();
        for tmp in [temp_path(path), temp_path(&Self::last_good_path(path))] {
            match std::fs::remove_file(&tmp) {
                Ok(()) => {
                    tracing::warn!(
                        file = %tmp.display(),
                        "removed a temp file an interrupted save left"
                    );
                    removed.push(tmp);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(
                    file = %tmp.display(),
                    "cannot remove a temp file an interrupted save left: {e}"
                ),
            }
        }
        removed
    }

    /// Records the file as it is now (it just loaded) as the last good one.
    pub fn keep_last_good(&self) -> Result<(), StoreError> {
        let text = std::fs::read_to_string(&self.path).map_err(|source| StoreError::Read {
            path: self.path.clone(),
            source,
        })?;
        write_atomically(&Self::last_good_path(&self.path), &text)
    }

    /// Writes `state` into the file, keeping everything else in it.
    pub fn save(&self, state: &StoreState) -> Result<(), StoreError> {
        let last_good = Self::last_good_path(&self.path);
        let text = std::fs::read_to_string(&self.path).map_err(|source| StoreError::Read {
            path: self.path.clone(),
            source,
        })?;
        let mut doc: DocumentMut =
            text.parse()
                .map_err(|e: toml_edit::TomlError| StoreError::Parse {
                    path: self.path.clone(),
                    message: e.message().to_owned(),
                    last_good: last_good.clone(),
                })?;
        set_ports(&mut doc, &state.ports);
        set_controllers(&mut doc, &state.controllers);
        set_profile(&mut doc, &state.profile);
        let store = doc
            .entry("store")
            .or_insert(Item::Table(Table::new()))
            .as_table_mut();
        if let Some(store) = store {
            store.insert("flows", Item::Value(Value::Array(lines(&state.flows))));
            for (key, list) in [("groups", &state.groups), ("meters", &state.meters)] {
                if list.is_empty() {
                    store.remove(key);
                } else {
                    store.insert(key, Item::Value(Value::Array(lines(list))));
                }
            }
        }
        let new = doc.to_string();
        Config::parse(&new, &self.path).map_err(StoreError::Invalid)?;
        write_atomically(&self.path, &new)?;
        // The file is saved; the copy beside it is a convenience.
        if let Err(e) = write_atomically(&last_good, &new) {
            tracing::warn!("saved, but could not keep a copy: {e}");
        }
        Ok(())
    }
}

/// One string per line, which diffs and reads well.
fn lines(items: &[String]) -> Array {
    let mut a = Array::new();
    for s in items {
        let mut v = Value::from(s.as_str());
        v.decor_mut().set_prefix("\n    ");
        a.push_formatted(v);
    }
    a.set_trailing_comma(!items.is_empty());
    a.set_trailing(if items.is_empty() { "" } else { "\n" });
    a
}

fn port_table(p: &PortConfig) -> Table {
    let mut t = Table::new();
    t.insert("name", toml_edit::value(p.name.as_str()));
    if !p.devargs.is_empty() {
        t.insert("devargs", toml_edit::value(p.devargs.as_str()));
    }
    t.insert("ofport", toml_edit::value(i64::from(p.ofport)));
    crate::tunnels::port_table(p, &mut t);
    if let Some(tag) = p.tag {
        t.insert("tag", toml_edit::value(i64::from(tag)));
    }
    if let Some(trunks) = &p.trunks {
        let mut a = Array::new();
        for v in trunks {
            a.push(i64::from(*v));
        }
        t.insert("trunks", toml_edit::value(a));
    }
    if let Some(mode) = p.socket_mode {
        // Octal, as people write modes (TOML reads 0o660 back as the same integer).
        let v: Value = format!("{mode:#o}")
            .parse()
            .unwrap_or_else(|_| Value::from(i64::from(mode)));
        t.insert("socket_mode", toml_edit::value(v));
    }
    for (key, v) in [
        ("socket_owner", &p.socket_owner),
        ("socket_group", &p.socket_group),
    ] {
        if let Some(v) = v {
            t.insert(key, toml_edit::value(v.as_str()));
        }
    }
    t
}

/// Keeps an existing `[[ports]]` entry (and its comments) when it still says
/// the same; writes new ones for the rest.
fn set_ports(doc: &mut DocumentMut, ports: &[PortConfig]) {
    let old: Vec<Table> = doc
        .get("ports")
        .and_then(Item::as_array_of_tables)
        .map(|a| a.iter().cloned().collect())
        .unwrap_or_default();
    let mut aot = ArrayOfTables::new();
    for p in ports {
        let kept = old
            .iter()
            .find(|t| toml::from_str::<PortConfig>(&t.to_string()).is_ok_and(|q| &q == p));
        aot.push(kept.cloned().unwrap_or_else(|| port_table(p)));
    }
    if ports.is_empty() {
        doc.remove("ports");
    } else {
        doc.insert("ports", Item::ArrayOfTables(aot));
    }
}

fn set_controllers(doc: &mut DocumentMut, targets: &[String]) {
    let bridge = doc.entry("bridge").or_insert(Item::Table(Table::new()));
    let Some(bridge) = bridge.as_table_mut() else {
        return;
    };
    if targets.is_empty() {
        bridge.remove("controllers");
        return;
    }
    let mut aot = ArrayOfTables::new();
    for t in targets {
        let mut c = Table::new();
        c.insert("target", toml_edit::value(t.as_str()));
        aot.push(c);
    }
    bridge.insert("controllers", Item::ArrayOfTables(aot));
}

/// Writes the description's entries as TOML tables (serde's spelling, which
/// is the config file's).
fn set_profile(doc: &mut DocumentMut, p: &crate::profile::Description) {
    fn table<T: serde::Serialize>(v: &T) -> Table {
        toml::to_string(v)
            .ok()
            .and_then(|t| t.parse::<DocumentMut>().ok())
            .map(|d| d.as_table().clone())
            .unwrap_or_default()
    }
    fn list<T: serde::Serialize>(doc: &mut DocumentMut, key: &str, items: &[T]) {
        if items.is_empty() {
            doc.remove(key);
            return;
        }
        let mut aot = ArrayOfTables::new();
        for i in items {
            aot.push(table(i));
        }
        doc.insert(key, Item::ArrayOfTables(aot));
    }
    list(doc, "networks", &p.networks);
    list(doc, "instances", &p.instances);
    // A group's rules as an array of inline tables: nested `[[security_groups.rules]]`
    // tables carried over from another document keep that document's positions, and would
    // be written before their group's header.
    if p.security_groups.is_empty() {
        doc.remove("security_groups");
    } else {
        let mut aot = ArrayOfTables::new();
        for g in &p.security_groups {
            let mut t = Table::new();
            t.insert("name", toml_edit::value(g.name.as_str()));
            if !g.rules.is_empty() {
                let mut rules = Array::new();
                for r in &g.rules {
                    let mut rule = table(r).into_inline_table();
                    rule.fmt();
                    rules.push(rule);
                    if let Some(v) = rules.iter_mut().last() {
                        v.decor_mut().set_prefix("\n  ");
                    }
                }
                rules.set_trailing("\n");
                rules.set_trailing_comma(true);
                t.insert("rules", toml_edit::value(rules));
            }
            aot.push(t);
        }
        doc.insert("security_groups", Item::ArrayOfTables(aot));
    }
    match &p.metadata {
        Some(md) => {
            doc.insert("metadata", Item::Table(table(md)));
        }
        None => {
            doc.remove("metadata");
        }
    }
}

/// Where [`write_atomically`] writes `path`'s next version before the rename: `.NAME.tmp`
/// beside it (hidden, and on the same filesystem, so the rename is atomic).
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(".tmp");
    path.with_file_name(name)
}

/// Temp file in the same directory, fsync, rename, fsync the directory: a
/// reader (or a crash) sees the old file or the new one, never half of one.
/// The new file keeps the old one's mode and owner; on any error the temp
/// file is removed and the old file is untouched.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), StoreError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let err = |source| StoreError::Write {
        path: path.to_owned(),
        source,
    };
    let tmp = temp_path(path);
    let old = std::fs::metadata(path).ok();
    let written = (|| {
        let mut f = File::create(&tmp)?;
        if let Some(m) = &old {
            f.set_permissions(std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
            // Only root may give a file away; anyone else keeps it theirs.
            if let Err(e) = std::os::unix::fs::fchown(&f, Some(m.uid()), Some(m.gid())) {
                if e.kind() != std::io::ErrorKind::PermissionDenied {
                    return Err(e);
                }
            }
        }
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// The 1-based line on which `needle` first appears in the file, to name it
/// in errors about a stored flow.
pub fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.find(needle)
        .map(|at| text[..at].matches('\n').count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "# my switch\n[eal]\nlcores = \"0-1\" # two\n\n[[ports]]\n# the first VM\nname = \"vm1\"\ndevargs = \"net_null0\"\nofport = 1\n";

    #[test]
    fn save_keeps_comments_and_round_trips() {
        let dir = std::env::temp_dir().join(format!("ff-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ff.toml");
        std::fs::write(&path, BASE).unwrap();
        let store = Store::new(&path);
        let mut ports = Config::parse(BASE, &path).unwrap().ports;
        ports.push(PortConfig {
            name: "vm2".into(),
            devargs: "net_null1".into(),
            ofport: 7,
            tag: Some(10),
            trunks: None,
            socket_mode: None,
            socket_owner: None,
            socket_group: None,
            ..Default::default()
        });
        let state = StoreState {
            ports: ports.clone(),
            controllers: vec!["tcp:127.0.0.1:6653".into()],
            flows: vec!["table=0,priority=5 in_port=1 actions=output:7".into()],
            groups: vec![],
            meters: vec!["meter=1,kbps,band=type=drop,rate=100".into()],
            profile: crate::profile::Description {
                networks: vec![ferroflow_config::NetworkConfig {
                    id: 7,
                    name: "v7".into(),
                    kind: ferroflow_config::NetworkKind::Vlan,
                    uplink: Some("vm1".into()),
                    vlan: Some(7),
                    gateway: None,
                    gateway_mac: None,
                    prefixes: vec![],
                    backbone_mac: None,
                    local_ip: None,
                    peers: vec![],
                }],
                instances: vec![ferroflow_config::InstanceConfig {
                    name: "i1".into(),
                    network: 7,
                    mac: "02:00:00:00:00:01".into(),
                    addresses: vec!["10.7.0.1".parse().unwrap()],
                    ipv6: vec![],
                    port: Some("vm2".into()),
                    host_mac: None,
                    host_ip: None,
                    security_groups: vec!["web".into()],
                }],
                metadata: Some(ferroflow_config::MetadataConfig {
                    mode: ferroflow_config::MetadataMode::PerConnection,
                    host_ip: "10.255.0.1".parse().unwrap(),
                    host_mac: "02:00:00:00:ff:01".into(),
                    host_port: 8775,
                }),
                security_groups: vec![ferroflow_config::SecurityGroupConfig {
                    name: "web".into(),
                    rules: vec![
                        ferroflow_config::SecurityRuleConfig {
                            direction: ferroflow_config::Direction::Ingress,
                            ethertype: "ipv4".into(),
                            protocol: Some("tcp".into()),
                            ports: Some("8000-8010".into()),
                            remote_prefix: Some("10.0.0.0/8".into()),
                            remote_group: None,
                            source_ports: Some("1024-65535".into()),
                            icmp_type: None,
                            icmp_code: None,
                        },
                        ferroflow_config::SecurityRuleConfig {
                            direction: ferroflow_config::Direction::Ingress,
                            ethertype: "ipv4".into(),
                            protocol: Some("icmp".into()),
                            icmp_type: Some(8),
                            icmp_code: Some(0),
                            ..Default::default()
                        },
                    ],
                }],
            },
        };
        store.save(&state).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("# the first VM") && text.contains("# two"),
            "{text}"
        );
        let c = Config::load(&path).unwrap();
        assert_eq!(c.ports, ports);
        assert_eq!(c.bridge.controllers[0].target, "tcp:127.0.0.1:6653");
        assert_eq!(c.store.flows.as_deref(), Some(&state.flows[..]));
        assert_eq!(c.store.meters, state.meters);
        assert_eq!(c.networks, state.profile.networks);
        assert_eq!(c.instances, state.profile.instances);
        assert_eq!(c.metadata, state.profile.metadata);
        assert_eq!(c.security_groups, state.profile.security_groups);
        assert_eq!(
            std::fs::read_to_string(Store::last_good_path(&path)).unwrap(),
            text
        );
        // Removing everything again.
        store
            .save(&StoreState {
                ports: ports[..1].to_vec(),
                ..StoreState::default()
            })
            .unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(c.ports.len(), 1);
        assert!(c.bridge.controllers.is_empty());
        assert!(c.networks.is_empty() && c.instances.is_empty() && c.metadata.is_none());
        assert_eq!(c.store.flows.as_deref(), Some(&[][..]));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn stale_temp_files_of_this_config_are_removed_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("ff-store-stale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ff.toml");
        std::fs::write(&path, BASE).unwrap();
        // What a kill between create and rename leaves, and files that are not ours.
        let ours = [dir.join(".ff.toml.tmp"), dir.join(".ff.toml.last-good.tmp")];
        let others = [
            dir.join(".other.toml.tmp"),
            dir.join("ff.toml.last-good"),
            dir.join("ff.toml.tmp"),
        ];
        for f in ours.iter().chain(&others) {
            std::fs::write(f, "half a file").unwrap();
        }
        let mut removed = Store::remove_stale_temp_files(&path);
        removed.sort();
        let mut want = ours.to_vec();
        want.sort();
        assert_eq!(removed, want);
        for f in &ours {
            assert!(!f.exists(), "{f:?} left");
        }
        for f in others.iter().chain([&path]) {
            assert!(f.exists(), "{f:?} removed");
        }
        // Nothing left: nothing to do.
        assert!(Store::remove_stale_temp_files(&path).is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_broken_file_is_not_overwritten() {
        let dir = std::env::temp_dir().join(format!("ff-store-broken-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ff.toml");
        std::fs::write(&path, "[eal]\nlcores = \"0-").unwrap();
        let err = Store::new(&path).save(&StoreState::default()).unwrap_err();
        assert!(matches!(err, StoreError::Parse { .. }), "{err}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "[eal]\nlcores = \"0-"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
