//! Step `perms`: the userDir and what is in it. Node-RED may read its policy but not rewrite it,
//! its secrets are readable by its user alone, and nothing under the userDir (node_modules
//! included) is world-writable, setuid or owned by a stranger. Symlinks are never followed:
//! Node-RED can plant them.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use super::install::{self, Installation};
use super::Plan;
use crate::config::Config;
use crate::host::accounts::AccountDb;
use crate::host::fs::{self, Entry, Kind, Meta};
use crate::host::Root;
use crate::report::{Finding, Severity, Uninspected};

/// A change to a file or folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileChange {
    CreateDir {
        path: PathBuf,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// Changes an observed entry below `top` (both system paths), through a handle checked
    /// against the observed inode.
    Fix {
        top: PathBuf,
        rel: PathBuf,
        ino: u64,
        owner: Option<(u32, u32)>,
        mode: Option<u32>,
        was: (u32, u32, u32),
    },
}

impl fmt::Display for FileChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CreateDir {
                path,
                mode,
                uid,
                gid,
            } => write!(
                f,
                "create {} (mode {mode:04o}, owner {uid}:{gid})",
                path.display()
            ),
            Self::Fix {
                top,
                rel,
                owner,
                mode,
                was,
                ..
            } => {
                let mut parts = Vec::new();
                if let Some((uid, gid)) = owner {
                    parts.push(format!("chown {uid}:{gid} (was {}:{})", was.0, was.1));
                }
                if let Some(mode) = mode {
                    parts.push(format!("chmod {mode:04o} (was {:04o})", was.2));
                }
                write!(f, "{} {}", parts.join(", "), top.join(rel).display())
            }
        }
    }
}

/// What a file in the userDir is, by name: each kind has its own rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    UserDir,
    Settings,
    Credentials,
    Flows,
    TlsKey,
    Other,
}

/// Files that hold secrets or the key that decrypts them, and Node-RED's `.backup` copies.
fn is_credentials(name: &str) -> bool {
    let base = name
        .strip_suffix(".backup")
        .map(|b| b.trim_start_matches('.'))
        .unwrap_or(name);
    base.ends_with("_cred.json")
        || matches!(
            base,
            "config.runtime.json"
                | "config.users.json"
                | ".config.runtime.json"
                | ".config.users.json"
                | ".sessions.json"
                | "sessions.json"
        )
}

fn is_flows(name: &str) -> bool {
    let base = name
        .strip_suffix(".backup")
        .map(|b| b.trim_start_matches('.'))
        .unwrap_or(name);
    base.starts_with("flows") && base.ends_with(".json")
}

fn is_tls_key(name: &str) -> bool {
    name.ends_with(".key")
        || name.ends_with("key.pem")
        || (name.starts_with("privkey") && name.ends_with(".pem"))
}

fn classify(rel: &Path, settings_rel: Option<&Path>, extra_keys: &[PathBuf]) -> Class {
    if rel.as_os_str().is_empty() {
        return Class::UserDir;
    }
    if Some(rel) == settings_rel {
        return Class::Settings;
    }
    if extra_keys.iter().any(|k| k == rel) {
        return Class::TlsKey;
    }
    let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let top_level = rel.components().count() == 1;
    let in_node_modules = rel.components().any(|c| c.as_os_str() == "node_modules");
    if top_level && is_credentials(name) {
        Class::Credentials
    } else if top_level && is_flows(name) {
        Class::Flows
    } else if !in_node_modules && is_tls_key(name) {
        Class::TlsKey
    } else {
        Class::Other
    }
}

/// The owner a file of the installation should have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// One installation, observed.
#[derive(Debug, Clone)]
pub struct ObservedInstall {
    pub install: Installation,
    /// None when the user or group does not exist (yet): ownership cannot be judged.
    pub owner: Option<Owner>,
    /// The userDir itself; None when missing.
    pub top: Option<Meta>,
    pub entries: Vec<Entry>,
    /// The settings file when it lives outside the userDir.
    pub settings_outside: Option<Meta>,
    /// TLS keys configured outside the userDir, as (system path, meta).
    pub keys_outside: Vec<(PathBuf, Meta)>,
    /// Keys configured inside the userDir, relative to it.
    pub keys_inside: Vec<PathBuf>,
    pub configured: bool,
}

#[derive(Debug, Clone)]
pub struct Observed {
    pub installs: Vec<ObservedInstall>,
    pub binaries: install::Binaries,
    pub uninspected: Vec<Uninspected>,
}

pub fn observe(root: &Root, config: &Config) -> Result<Observed, crate::Error> {
    let accounts = AccountDb::load(root)?;
    let configured = Installation::configured(config);
    let mut installs = vec![configured.clone()];
    if let Some(unit) = install::find_unit(root)? {
        installs.extend(Installation::from_unit(&unit, &accounts, &configured));
    }
    let mut uninspected = Vec::new();
    let mut observed = Vec::new();
    for install in installs {
        let is_configured = install.unit.is_none();
        let owner = match (
            accounts.user(&install.user),
            accounts.group.by_name(&install.group),
        ) {
            (Some(user), Some(group)) => Some(Owner {
                uid: user.uid,
                gid: group.gid,
            }),
            _ => {
                uninspected.push(Uninspected {
                    what: format!("ownership of files under {}", install.user_dir.display()),
                    path: None,
                    reason: format!(
                        "user {} or group {} does not exist yet (apply creates it)",
                        install.user, install.group
                    ),
                });
                None
            }
        };
        let host_dir = root
            .resolve(install.user_dir.parent().unwrap_or(Path::new("/")))?
            .join(install.user_dir.file_name().unwrap_or_default());
        // A home folder closed to this user (Debian's 0700 homes, ProtectHome= in the unit):
        // the installation in it is not inspected, and the rest of the check goes on.
        let top = match fs::lstat(&host_dir) {
            Ok(top) => top,
            Err(e) if e.is_permission_denied() => {
                uninspected.push(Uninspected {
                    what: "the userDir".into(),
                    path: Some(install.user_dir.clone()),
                    reason: format!("{e} (run as root to inspect)"),
                });
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let mut entries = Vec::new();
        if top.as_ref().is_some_and(|m| m.kind == Kind::Dir) {
            let unreadable = match fs::walk(&host_dir, |e| entries.push(e.clone())) {
                Ok(unreadable) => unreadable,
                Err(e) if e.is_permission_denied() => vec![fs::Unreadable {
                    rel: PathBuf::new(),
                    reason: rustix::io::Errno::ACCESS,
                }],
                Err(e) => return Err(e.into()),
            };
            uninspected.extend(unreadable.into_iter().map(|u| {
                Uninspected {
                    what: "folder contents".into(),
                    // Joined by components, so the top itself gets no trailing slash.
                    path: Some(
                        install
                            .user_dir
                            .components()
                            .chain(u.rel.components())
                            .collect(),
                    ),
                    reason: format!("{} (run as root to inspect)", u.reason),
                }
            }));
        }
        let settings_outside = if install.settings.starts_with(&install.user_dir) {
            None
        } else {
            fs::lstat(&root.resolve(&install.settings)?)?
        };
        let mut keys_outside = Vec::new();
        let mut keys_inside = Vec::new();
        if is_configured {
            for key in &config.nodered.tls_keys {
                match key.as_path().strip_prefix(&install.user_dir) {
                    Ok(rel) => keys_inside.push(rel.to_path_buf()),
                    Err(_) => {
                        if let Some(meta) = fs::lstat(&root.resolve(key.as_path())?)? {
                            keys_outside.push((key.as_path().to_path_buf(), meta));
                        }
                    }
                }
            }
        }
        observed.push(ObservedInstall {
            install,
            owner,
            top,
            entries,
            settings_outside,
            keys_outside,
            keys_inside,
            configured: is_configured,
        });
    }
    let user_dirs: Vec<&Path> = observed
        .iter()
        .map(|o| o.install.user_dir.as_path())
        .collect();
    let binaries = install::find_binaries(root, config, &user_dirs);
    Ok(Observed {
        installs: observed,
        binaries,
        uninspected,
    })
}

pub fn plan(observed: &Observed) -> Plan {
    let mut plan = Plan {
        uninspected: observed.uninspected.clone(),
        ..Plan::default()
    };
    if observed.binaries.nodered.is_none() {
        plan.findings.push(Finding::new("install.nodered-missing", Severity::Medium, "Node-RED (red.js) was not found in the global npm folders or the userDir; install it or set [nodered] install_dir", false));
    }
    if observed.binaries.node.is_none() {
        plan.findings.push(Finding::new("install.node-missing", Severity::Medium, "node was not found in /usr/bin or /usr/local/bin; install Node.js or set [nodered] node", false));
    }
    for install in &observed.installs {
        plan_install(install, &mut plan);
    }
    plan
}

fn plan_install(observed: &ObservedInstall, plan: &mut Plan) {
    let install = &observed.install;
    let user_dir = &install.user_dir;
    match &observed.top {
        None if observed.configured => {
            plan.findings.push(
                Finding::new(
                    "perms.userdir-missing",
                    Severity::Medium,
                    "the userDir does not exist",
                    true,
                )
                .at(user_dir.clone()),
            );
            if let Some(owner) = observed.owner {
                plan.actions
                    .push(super::Action::File(FileChange::CreateDir {
                        path: user_dir.clone(),
                        mode: 0o750,
                        uid: owner.uid,
                        gid: owner.gid,
                    }));
            }
            return;
        }
        None => return,
        Some(meta) if meta.kind == Kind::Symlink => {
            plan.findings.push(Finding::new("perms.userdir-symlink", Severity::Critical, "the userDir is a symbolic link; redwarden will not follow it: make it a real folder", false).at(user_dir.clone()));
            return;
        }
        Some(meta) if meta.kind != Kind::Dir => {
            plan.findings.push(
                Finding::new(
                    "perms.userdir-not-a-folder",
                    Severity::Critical,
                    "the userDir is not a folder",
                    false,
                )
                .at(user_dir.clone()),
            );
            return;
        }
        Some(_) => {}
    }

    let settings_rel = install.settings.strip_prefix(user_dir).ok();
    let top = observed.top.clone().map(|meta| Entry {
        rel: PathBuf::new(),
        meta,
        link: None,
    });
    for entry in top.iter().chain(&observed.entries) {
        let class = classify(&entry.rel, settings_rel, &observed.keys_inside);
        judge(user_dir, entry, class, observed.owner, plan);
    }
    if let (Some(meta), Some(parent), Some(name)) = (
        &observed.settings_outside,
        install.settings.parent(),
        install.settings.file_name(),
    ) {
        let entry = Entry {
            rel: PathBuf::from(name),
            meta: meta.clone(),
            link: None,
        };
        judge(parent, &entry, Class::Settings, observed.owner, plan);
    }
    for (key, meta) in &observed.keys_outside {
        if let (Some(parent), Some(name)) = (key.parent(), key.file_name()) {
            let entry = Entry {
                rel: PathBuf::from(name),
                meta: meta.clone(),
                link: None,
            };
            judge(parent, &entry, Class::TlsKey, observed.owner, plan);
        }
    }
}

/// Judges one entry: the findings it raises and the single change that fixes them all.
fn judge(top: &Path, entry: &Entry, class: Class, owner: Option<Owner>, plan: &mut Plan) {
    let path = top.join(&entry.rel);
    let meta = &entry.meta;
    let mut found = |id: &'static str, severity: Severity, message: String, fixable: bool| {
        plan.findings
            .push(Finding::new(id, severity, message, fixable).at(path.clone()));
    };
    match meta.kind {
        Kind::Symlink => {
            if let Some(target) = &entry.link {
                if escapes(top, &entry.rel, target) {
                    found(
                        "perms.symlink-escapes",
                        Severity::Medium,
                        format!(
                            "a symbolic link points outside the userDir, to {}",
                            target.display()
                        ),
                        false,
                    );
                }
            }
            return;
        }
        Kind::Other => return,
        Kind::File | Kind::Dir => {}
    }

    let mut mode = meta.mode;
    let mut new_owner = None;
    match class {
        Class::UserDir => {
            if let Some(o) = owner.filter(|o| (meta.uid, meta.gid) != (o.uid, o.gid)) {
                found(
                    "perms.userdir-owner",
                    Severity::High,
                    format!(
                        "the userDir is owned by {}:{}, not the service user",
                        meta.uid, meta.gid
                    ),
                    true,
                );
                new_owner = Some((o.uid, o.gid));
            }
            mode = (mode & 0o750) | 0o700;
            if mode != meta.mode & 0o777 || meta.mode & 0o7000 != 0 {
                found(
                    "perms.userdir-mode",
                    Severity::Medium,
                    format!("the userDir has mode {:04o}; it should be 0750", meta.mode),
                    true,
                );
            }
        }
        Class::Settings | Class::TlsKey => {
            // Root owns it and the service group reads it: Node-RED uses it, cannot rewrite it.
            let (id, what, wanted, rule) = if class == Class::Settings {
                (
                    "perms.settings-writable",
                    "settings.js",
                    0o640,
                    "0640 root:<service group>, so Node-RED can read its policy but not rewrite it",
                )
            } else {
                (
                    "perms.tls-key-readable",
                    "a TLS private key",
                    meta.mode & 0o640,
                    "at most 0640 root:<service group>",
                )
            };
            let root_owned = owner.map_or(meta.uid == 0, |o| (meta.uid, meta.gid) == (0, o.gid));
            mode = wanted;
            if mode != meta.mode || !root_owned {
                found(
                    id,
                    Severity::High,
                    format!(
                        "{what} is {:04o} owned by {}:{}; it should be {rule}",
                        meta.mode, meta.uid, meta.gid
                    ),
                    true,
                );
            }
            if let Some(o) = owner.filter(|_| !root_owned) {
                new_owner = Some((0, o.gid));
            }
        }
        Class::Credentials => {
            if let Some(o) = owner.filter(|o| meta.uid != o.uid && meta.uid != 0) {
                new_owner = Some((o.uid, o.gid));
            }
            if meta.mode != 0o600 || new_owner.is_some() {
                found(
                    "perms.credentials-readable",
                    Severity::High,
                    format!("a credentials file is {:04o} owned by {}:{}; it should be 0600, readable by the service user alone", meta.mode, meta.uid, meta.gid),
                    true,
                );
            }
            mode = 0o600;
        }
        Class::Flows => {
            mode = (mode & 0o640) | 0o600;
            if mode != meta.mode {
                found(
                    "perms.flows-readable",
                    Severity::Medium,
                    format!(
                        "a flows file is {:04o}; it should be 0640 or tighter",
                        meta.mode
                    ),
                    true,
                );
            }
        }
        Class::Other => {}
    }

    if class == Class::Other {
        if let Some(o) = owner.filter(|o| meta.uid != 0 && meta.uid != o.uid) {
            found(
                "perms.foreign-owner",
                Severity::Medium,
                format!(
                    "owned by uid {}, neither root nor the service user",
                    meta.uid
                ),
                true,
            );
            new_owner = Some((o.uid, o.gid));
        }
    }
    if meta.mode & 0o002 != 0 {
        found(
            "perms.world-writable",
            Severity::High,
            format!("writable by every user (mode {:04o})", meta.mode),
            true,
        );
        mode &= !0o002;
    }
    if meta.kind == Kind::File && meta.mode & 0o6000 != 0 {
        found(
            "perms.setuid",
            Severity::High,
            format!(
                "a setuid/setgid file in the userDir (mode {:04o})",
                meta.mode
            ),
            true,
        );
        mode &= !0o6000;
    }
    let new_mode = Some(mode).filter(|&m| m != meta.mode);
    if new_mode.is_some() || new_owner.is_some() {
        plan.actions.push(super::Action::File(FileChange::Fix {
            top: top.to_path_buf(),
            rel: entry.rel.clone(),
            ino: meta.ino,
            owner: new_owner,
            mode: new_mode,
            was: (meta.uid, meta.gid, meta.mode),
        }));
    }
}

/// Whether a link at `top/rel` with this target points outside `top` (judged lexically: the
/// link is not followed).
fn escapes(top: &Path, rel: &Path, target: &Path) -> bool {
    let base = if target.is_absolute() {
        PathBuf::new()
    } else {
        top.join(rel.parent().unwrap_or(Path::new("")))
    };
    let mut resolved = PathBuf::new();
    for component in base.join(target).components() {
        match component {
            Component::ParentDir => {
                resolved.pop();
            }
            Component::CurDir => {}
            c => resolved.push(c),
        }
    }
    !resolved.starts_with(top)
}

pub fn apply(root: &Root, change: &FileChange) -> Result<(), crate::Error> {
    match change {
        FileChange::CreateDir {
            path,
            mode,
            uid,
            gid,
        } => {
            fs::create_dir(&root.resolve_parent(path)?, *mode, *uid, *gid)?;
        }
        FileChange::Fix {
            top,
            rel,
            ino,
            owner,
            mode,
            ..
        } => {
            fs::fix_entry(&root.resolve_parent(top)?, rel, *ino, *owner, *mode)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harden::Action;

    const OWNER: Owner = Owner { uid: 999, gid: 999 };

    fn entry(rel: &str, kind: Kind, mode: u32, uid: u32) -> Entry {
        Entry {
            rel: PathBuf::from(rel),
            meta: Meta {
                kind,
                mode,
                uid,
                gid: uid,
                ino: 7,
                modified_ns: 0,
            },
            link: None,
        }
    }

    fn install(entries: Vec<Entry>, top_mode: u32) -> Observed {
        Observed {
            installs: vec![ObservedInstall {
                install: Installation::configured(&Config::default()),
                owner: Some(OWNER),
                top: Some(Meta {
                    kind: Kind::Dir,
                    mode: top_mode,
                    uid: 999,
                    gid: 999,
                    ino: 1,
                    modified_ns: 0,
                }),
                entries,
                settings_outside: None,
                keys_outside: Vec::new(),
                keys_inside: Vec::new(),
                configured: true,
            }],
            binaries: install::Binaries {
                node: Some("/usr/bin/node".into()),
                nodered: Some("/usr/lib/node_modules/node-red".into()),
            },
            uninspected: Vec::new(),
        }
    }

    fn compliant() -> Vec<Entry> {
        let mut settings = entry("settings.js", Kind::File, 0o640, 0);
        settings.meta.gid = 999;
        vec![
            settings,
            entry("flows.json", Kind::File, 0o640, 999),
            entry("flows_cred.json", Kind::File, 0o600, 999),
            entry(".config.runtime.json", Kind::File, 0o600, 999),
            entry(".flows_cred.json.backup", Kind::File, 0o600, 999),
            entry("node_modules", Kind::Dir, 0o755, 999),
            entry("node_modules/x/index.js", Kind::File, 0o644, 999),
            entry("lib/root-owned.js", Kind::File, 0o644, 0),
        ]
    }

    #[test]
    fn compliant_user_dir_plans_nothing() {
        assert_eq!(plan(&install(compliant(), 0o750)), Plan::default());
        assert_eq!(
            plan(&install(compliant(), 0o700)),
            Plan::default(),
            "tighter is fine"
        );
    }

    #[test]
    fn each_rule_raises_its_finding_and_one_change() {
        // (entry, kind, mode, uid, the finding, the owner and mode the fix sets)
        type Case = (
            &'static str,
            Kind,
            u32,
            u32,
            &'static str,
            Option<(u32, u32)>,
            Option<u32>,
        );
        let cases: &[Case] = &[
            (
                "settings.js",
                Kind::File,
                0o644,
                999,
                "perms.settings-writable",
                Some((0, 999)),
                Some(0o640),
            ),
            (
                "flows_cred.json",
                Kind::File,
                0o644,
                999,
                "perms.credentials-readable",
                None,
                Some(0o600),
            ),
            (
                ".config.runtime.json",
                Kind::File,
                0o644,
                999,
                "perms.credentials-readable",
                None,
                Some(0o600),
            ),
            (
                ".sessions.json",
                Kind::File,
                0o664,
                999,
                "perms.credentials-readable",
                None,
                Some(0o600),
            ),
            (
                ".config.users.json.backup",
                Kind::File,
                0o644,
                999,
                "perms.credentials-readable",
                None,
                Some(0o600),
            ),
            (
                "flows.json",
                Kind::File,
                0o644,
                999,
                "perms.flows-readable",
                None,
                Some(0o640),
            ),
            (
                "certs/server.key",
                Kind::File,
                0o644,
                999,
                "perms.tls-key-readable",
                Some((0, 999)),
                Some(0o640),
            ),
            (
                "node_modules/a/b.js",
                Kind::File,
                0o666,
                999,
                "perms.world-writable",
                None,
                Some(0o664),
            ),
            (
                "node_modules/a",
                Kind::Dir,
                0o777,
                999,
                "perms.world-writable",
                None,
                Some(0o775),
            ),
            (
                "bin/tool",
                Kind::File,
                0o4755,
                999,
                "perms.setuid",
                None,
                Some(0o755),
            ),
            (
                "lib/x.js",
                Kind::File,
                0o644,
                1000,
                "perms.foreign-owner",
                Some((999, 999)),
                None,
            ),
        ];
        for (rel, kind, mode, uid, id, owner, new_mode) in cases {
            let plan = plan(&install(vec![entry(rel, *kind, *mode, *uid)], 0o750));
            let ids: Vec<_> = plan.findings.iter().map(|f| f.id).collect();
            assert_eq!(ids, vec![*id], "{rel}");
            match plan.actions.as_slice() {
                [Action::File(FileChange::Fix {
                    owner: o, mode: m, ..
                })] => {
                    assert_eq!((o, m), (owner, new_mode), "{rel}")
                }
                other => panic!("{rel}: expected one fix, got {other:?}"),
            }
        }
    }

    #[test]
    fn user_dir_mode_owner_and_missing() {
        let plan_open = plan(&install(Vec::new(), 0o777));
        let ids: Vec<_> = plan_open.findings.iter().map(|f| f.id).collect();
        assert_eq!(ids, vec!["perms.userdir-mode", "perms.world-writable"]);
        let mut missing = install(Vec::new(), 0);
        missing.installs[0].top = None;
        let plan_missing = plan(&missing);
        assert_eq!(
            plan_missing.actions,
            vec![Action::File(FileChange::CreateDir {
                path: "/var/lib/node-red".into(),
                mode: 0o750,
                uid: 999,
                gid: 999
            })]
        );
    }

    #[test]
    fn symlinks_are_judged_not_followed() {
        let mut inside = entry("node_modules/.bin/node-red", Kind::Symlink, 0o777, 1000);
        inside.link = Some(PathBuf::from("../node-red/red.js"));
        let mut outside = entry("evil", Kind::Symlink, 0o777, 999);
        outside.link = Some(PathBuf::from("/etc/shadow"));
        let mut sneaky = entry("a/b", Kind::Symlink, 0o777, 999);
        sneaky.link = Some(PathBuf::from("../../../etc"));
        let plan = plan(&install(vec![inside, outside, sneaky], 0o750));
        let ids: Vec<_> = plan.findings.iter().map(|f| (f.id, f.fixable)).collect();
        assert_eq!(
            ids,
            vec![
                ("perms.symlink-escapes", false),
                ("perms.symlink-escapes", false)
            ]
        );
        assert!(plan.actions.is_empty(), "links are never changed");
    }

    #[test]
    fn user_dir_symlink_is_refused() {
        let mut obs = install(Vec::new(), 0o777);
        obs.installs[0].top = Some(Meta {
            kind: Kind::Symlink,
            mode: 0o777,
            uid: 0,
            gid: 0,
            ino: 3,
            modified_ns: 0,
        });
        let plan = plan(&obs);
        assert_eq!(plan.findings[0].id, "perms.userdir-symlink");
        assert!(plan.actions.is_empty());
    }
}
