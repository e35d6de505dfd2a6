//! Step `user`: Node-RED gets a dedicated system user that cannot log in, holds no password, and
//! belongs to no group that leads to root; and no unit runs Node-RED as root, as a login user or
//! as a user with sudo rights.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::install::{self, UnitInfo};
use super::{Action, Plan};
use crate::config::Config;
use crate::host::accounts::{AccountDb, GroupEntry, PasswdEntry, ShadowEntry};
use crate::host::{fs, paths, Root};
use crate::report::{Finding, Severity, Uninspected};

/// Groups whose members are root, or one step from it: sudo/wheel/admin grant sudo; adm and
/// systemd-journal read every log; disk, kmem and shadow read raw secrets; docker, lxd and
/// libvirt start root containers; staff writes /usr/local on Debian.
pub const PRIVILEGED_GROUPS: &[&str] = &[
    "root",
    "sudo",
    "wheel",
    "admin",
    "adm",
    "disk",
    "kmem",
    "shadow",
    "docker",
    "lxd",
    "libvirt",
    "systemd-journal",
    "staff",
];

/// Who a sudoers rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SudoSubject {
    All,
    User(String),
    Uid(u32),
    Group(String),
    Gid(u32),
}

/// The subjects of every rule in sudoers and its includes. Aliases are expanded; negations are
/// ignored (they can only take rights away).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sudoers {
    pub subjects: Vec<SudoSubject>,
}

impl Sudoers {
    /// Parses one sudoers file; returns the files and folders it includes.
    pub fn parse_into(
        &mut self,
        text: &str,
        aliases: &mut Vec<(String, Vec<String>)>,
    ) -> Vec<Include> {
        let mut includes = Vec::new();
        let joined = text.replace("\\\n", " ");
        for raw in joined.lines() {
            let line = raw.trim();
            let directive = line.strip_prefix('#').or_else(|| line.strip_prefix('@'));
            if let Some(rest) = directive {
                if let Some(dir) = rest.strip_prefix("includedir") {
                    includes.push(Include::Dir(PathBuf::from(dir.trim())));
                    continue;
                }
                if let Some(file) = rest.strip_prefix("include") {
                    includes.push(Include::File(PathBuf::from(file.trim())));
                    continue;
                }
                // `#1000 ALL=…` is a rule for uid 1000; any other `#` starts a comment.
                if line.starts_with('#') && !rest.starts_with(|c: char| c.is_ascii_digit()) {
                    continue;
                }
            }
            if line.is_empty() || line.starts_with("Defaults") {
                continue;
            }
            let Some((head, _)) = line.split_once('=') else {
                continue;
            };
            if let Some(spec) = line.strip_prefix("User_Alias") {
                for alias in spec.split(':') {
                    if let Some((name, members)) = alias.split_once('=') {
                        aliases.push((
                            name.trim().to_string(),
                            members.split(',').map(|m| m.trim().to_string()).collect(),
                        ));
                    }
                }
                continue;
            }
            if ["Runas_Alias", "Host_Alias", "Cmnd_Alias", "Cmd_Alias"]
                .iter()
                .any(|k| line.starts_with(k))
            {
                continue;
            }
            let normalised = head.replace(", ", ",").replace(" ,", ",");
            let Some(users) = normalised.split_whitespace().next() else {
                continue;
            };
            for user in users.split(',') {
                self.add_subject(user.trim(), aliases, 0);
            }
        }
        includes
    }

    fn add_subject(&mut self, word: &str, aliases: &[(String, Vec<String>)], depth: usize) {
        if word.starts_with('!') || word.is_empty() || depth > 8 {
            return;
        }
        if let Some((_, members)) = aliases.iter().find(|(name, _)| name == word) {
            for member in members.clone() {
                self.add_subject(&member, aliases, depth + 1);
            }
            return;
        }
        let subject = if word == "ALL" {
            SudoSubject::All
        } else if let Some(gid) = word.strip_prefix("%#").and_then(|g| g.parse().ok()) {
            SudoSubject::Gid(gid)
        } else if let Some(group) = word.strip_prefix('%') {
            SudoSubject::Group(group.to_string())
        } else if let Some(uid) = word.strip_prefix('#').and_then(|u| u.parse().ok()) {
            SudoSubject::Uid(uid)
        } else {
            SudoSubject::User(word.to_string())
        };
        self.subjects.push(subject);
    }

    /// Whether some rule names this user, directly or through one of `groups`.
    pub fn grants(&self, user: &PasswdEntry, groups: &[&GroupEntry]) -> bool {
        self.subjects.iter().any(|s| match s {
            SudoSubject::All => true,
            SudoSubject::User(name) => *name == user.name,
            SudoSubject::Uid(uid) => *uid == user.uid,
            SudoSubject::Group(name) => groups.iter().any(|g| g.name == *name),
            SudoSubject::Gid(gid) => *gid == user.gid || groups.iter().any(|g| g.gid == *gid),
        })
    }

    /// Whether some rule names this group.
    pub fn grants_group(&self, group: &GroupEntry) -> bool {
        self.subjects.iter().any(|s| match s {
            SudoSubject::Group(name) => *name == group.name,
            SudoSubject::Gid(gid) => *gid == group.gid,
            _ => false,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Include {
    File(PathBuf),
    Dir(PathBuf),
}

/// Reads /etc/sudoers and what it includes. None when sudo is not installed.
fn read_sudoers(
    root: &Root,
    uninspected: &mut Vec<Uninspected>,
) -> Result<Option<Sudoers>, crate::Error> {
    let mut sudoers = Sudoers::default();
    let mut aliases = Vec::new();
    let mut queue = vec![PathBuf::from(paths::SUDOERS)];
    let mut seen = 0;
    let mut found_main = false;
    while let Some(file) = queue.pop() {
        seen += 1;
        if seen > 256 || Root::check_clean(&file).is_err() {
            continue;
        }
        let host = root.resolve(&file)?;
        let text = match std::fs::read_to_string(&host) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                uninspected.push(Uninspected {
                    what: "sudo rules".into(),
                    path: Some(file),
                    reason: format!("{e} (run as root to inspect)"),
                });
                continue;
            }
        };
        found_main |= file == Path::new(paths::SUDOERS);
        for include in sudoers.parse_into(&text, &mut aliases) {
            match include {
                Include::File(path) => queue.push(path),
                Include::Dir(dir) => {
                    let Ok(entries) = std::fs::read_dir(root.resolve(&dir)?) else {
                        uninspected.push(Uninspected {
                            what: "sudo rules".into(),
                            path: Some(dir),
                            reason: "cannot list the folder (run as root to inspect)".into(),
                        });
                        continue;
                    };
                    let mut names: Vec<String> = entries
                        .filter_map(|e| e.ok()?.file_name().into_string().ok())
                        // sudo skips names with a dot or ending in `~` (editor backups).
                        .filter(|n| !n.contains('.') && !n.ends_with('~'))
                        .collect();
                    names.sort();
                    // Reverse, so the queue (a stack) reads them in order.
                    queue.extend(names.iter().rev().map(|n| dir.join(n)));
                }
            }
        }
    }
    if !found_main
        && uninspected
            .iter()
            .all(|u| u.path.as_deref() != Some(Path::new(paths::SUDOERS)))
    {
        return Ok(None);
    }
    Ok(Some(sudoers))
}

/// A change to the account database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountChange {
    CreateGroup {
        name: String,
        gid: u32,
    },
    CreateUser {
        name: String,
        /// The passwd comment (GECOS): what the account is for.
        comment: &'static str,
        uid: u32,
        gid: u32,
        home: PathBuf,
        shell: String,
    },
    SetShell {
        user: String,
        shell: String,
    },
    SetHome {
        user: String,
        home: PathBuf,
    },
    SetPrimaryGroup {
        user: String,
        gid: u32,
    },
    LockPassword {
        user: String,
    },
    /// Makes `groups` the user's exact set of supplementary groups.
    SetMemberships {
        user: String,
        groups: Vec<String>,
    },
}

impl std::fmt::Display for AccountChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::CreateGroup { name, gid } => write!(f, "create system group {name} (gid {gid})"),
            Self::CreateUser { name, uid, gid, home, shell, .. } => write!(
                f,
                "create system user {name} (uid {uid}, gid {gid}, home {}, shell {shell}, password locked)",
                home.display()
            ),
            Self::SetShell { user, shell } => write!(f, "set the login shell of {user} to {shell}"),
            Self::SetHome { user, home } => write!(f, "set the home of {user} to {}", home.display()),
            Self::SetPrimaryGroup { user, gid } => write!(f, "set the primary group of {user} to gid {gid}"),
            Self::LockPassword { user } => write!(f, "lock the password of {user}"),
            Self::SetMemberships { user, groups } => {
                write!(f, "set the supplementary groups of {user} to [{}]", groups.join(", "))
            }
        }
    }
}

/// What the step looks at.
#[derive(Debug, Clone)]
pub struct Observed {
    pub accounts: AccountDb,
    pub sudoers: Option<Sudoers>,
    pub unit: Option<UnitInfo>,
    /// The no-login shell to give a new user: the first one the root has.
    pub nologin_shell: String,
    pub uninspected: Vec<Uninspected>,
}

pub fn observe(root: &Root, _config: &Config) -> Result<Observed, crate::Error> {
    let accounts = AccountDb::load(root)?;
    let mut uninspected = Vec::new();
    if let Some(reason) = &accounts.shadow_unreadable {
        uninspected.push(Uninspected {
            what: "password lock state".into(),
            path: Some(PathBuf::from(paths::SHADOW)),
            reason: reason.clone(),
        });
    }
    let sudoers = read_sudoers(root, &mut uninspected)?;
    let nologin_shell = paths::NOLOGIN_SHELLS
        .iter()
        .find(|s| {
            root.resolve(Path::new(s))
                .ok()
                .and_then(|p| fs::lstat(&p).ok().flatten())
                .is_some()
        })
        .unwrap_or(&paths::NOLOGIN_SHELLS[0])
        .to_string();
    Ok(Observed {
        accounts,
        sudoers,
        unit: install::find_unit(root)?,
        nologin_shell,
        uninspected,
    })
}

fn is_login_shell(shell: &str) -> bool {
    !paths::NOLOGIN_SHELLS.contains(&shell)
}

pub fn plan(config: &Config, observed: &Observed) -> Plan {
    let mut plan = Plan {
        uninspected: observed.uninspected.clone(),
        ..Plan::default()
    };
    plan_service_user(config, observed, &mut plan);
    plan_unit_user(config, observed, &mut plan);
    plan_front_user(config, observed, &mut plan);
    plan
}

/// The TLS front door's own system user, while the front door is on: it alone reads the key,
/// and Node-RED's user can neither signal nor trace it.
fn plan_front_user(config: &Config, observed: &Observed, plan: &mut Plan) {
    let name = crate::host::FRONT_USER;
    let accounts = &observed.accounts;
    if !config.front.enabled || accounts.user(name).is_some() {
        return;
    }
    let finding = |fixable| {
        Finding::new(
            "user.front-missing",
            Severity::High,
            format!("the TLS front door's user {name} does not exist"),
            fixable,
        )
    };
    // Free ids are read from the accounts as they are: while the service account is still to be
    // made in this pass, this one waits for apply's next pass, so the two never share an id.
    let creating = plan.actions.iter().any(|a| {
        matches!(
            a,
            Action::Account(AccountChange::CreateUser { .. } | AccountChange::CreateGroup { .. })
        )
    });
    if creating {
        plan.findings.push(finding(true));
        return;
    }
    let existing = accounts.group.by_name(name).map(|g| g.gid);
    let gid = existing.or_else(|| accounts.free_system_id(None, accounts.ranges.sys_gid));
    let uid = gid.and_then(|gid| accounts.free_system_id(Some(gid), accounts.ranges.sys_uid));
    let (Some(gid), Some(uid)) = (gid, uid) else {
        plan.findings.push(finding(false));
        return;
    };
    plan.findings.push(finding(true));
    if existing.is_none() {
        plan.actions
            .push(Action::Account(AccountChange::CreateGroup {
                name: name.to_string(),
                gid,
            }));
    }
    plan.actions
        .push(Action::Account(AccountChange::CreateUser {
            name: name.to_string(),
            comment: "TLS front door (redwarden)",
            uid,
            gid,
            home: config.front.state_dir.as_path().to_path_buf(),
            shell: observed.nologin_shell.clone(),
        }));
}

fn is_privileged(group: &GroupEntry, sudoers: Option<&Sudoers>) -> bool {
    PRIVILEGED_GROUPS.contains(&group.name.as_str())
        || sudoers.is_some_and(|s| s.grants_group(group))
}

fn plan_service_user(config: &Config, observed: &Observed, plan: &mut Plan) {
    let accounts = &observed.accounts;
    let user_name = config.service.user.as_str();
    let group_name = config.service.group().as_str();
    let user_dir = config.nodered.user_dir.as_path();
    let sudoers = observed.sudoers.as_ref();

    let gid = match accounts.group.by_name(group_name) {
        Some(group) => Some(group.gid),
        None => {
            let gid = accounts.free_system_id(None, accounts.ranges.sys_gid);
            plan.findings.push(Finding::new(
                "user.group-missing",
                Severity::High,
                format!("the service group {group_name} does not exist"),
                gid.is_some(),
            ));
            if let Some(gid) = gid {
                plan.actions
                    .push(Action::Account(AccountChange::CreateGroup {
                        name: group_name.to_string(),
                        gid,
                    }));
            }
            gid
        }
    };

    // Exactly the configured hardware groups that exist, never a privileged one.
    let desired: BTreeSet<String> = config
        .service
        .hardware
        .iter()
        .filter_map(|h| accounts.group.by_name(h.group()?))
        .filter(|g| !is_privileged(g, sudoers))
        .map(|g| g.name.clone())
        .collect();

    let Some(user) = accounts.user(user_name) else {
        let uid = accounts.free_system_id(gid, accounts.ranges.sys_uid);
        plan.findings.push(Finding::new(
            "user.missing",
            Severity::High,
            format!("the dedicated service user {user_name} does not exist; Node-RED needs a user of its own"),
            uid.is_some() && gid.is_some(),
        ));
        if let (Some(uid), Some(gid)) = (uid, gid) {
            plan.actions
                .push(Action::Account(AccountChange::CreateUser {
                    name: user_name.to_string(),
                    comment: "Node-RED (redwarden)",
                    uid,
                    gid,
                    home: user_dir.to_path_buf(),
                    shell: observed.nologin_shell.clone(),
                }));
            if !desired.is_empty() {
                plan.actions
                    .push(Action::Account(AccountChange::SetMemberships {
                        user: user_name.to_string(),
                        groups: desired.into_iter().collect(),
                    }));
            }
        }
        return;
    };

    if !accounts.ranges.is_system_uid(user.uid) {
        plan.findings.push(Finding::new(
            "user.not-system",
            Severity::High,
            format!(
                "{user_name} has uid {}, outside the system range {}-{}: it looks like a person's account; configure another [service] user",
                user.uid, accounts.ranges.sys_uid.0, accounts.ranges.sys_uid.1
            ),
            false,
        ));
    }
    if is_login_shell(&user.shell) {
        plan.findings.push(Finding::new(
            "user.login-shell",
            Severity::High,
            format!("{user_name} has the login shell {}", user.shell),
            true,
        ));
        plan.actions.push(Action::Account(AccountChange::SetShell {
            user: user_name.to_string(),
            shell: observed.nologin_shell.clone(),
        }));
    }
    if Path::new(&user.home) != user_dir {
        plan.findings.push(Finding::new(
            "user.home",
            Severity::Medium,
            format!(
                "{user_name} has home {}, not the userDir {}",
                user.home,
                user_dir.display()
            ),
            true,
        ));
        plan.actions.push(Action::Account(AccountChange::SetHome {
            user: user_name.to_string(),
            home: user_dir.to_path_buf(),
        }));
    }
    if let Some(gid) = gid.filter(|&gid| gid != user.gid) {
        plan.findings.push(Finding::new(
            "user.primary-group",
            Severity::Medium,
            format!(
                "{user_name} has primary gid {}, not {group_name} ({gid})",
                user.gid
            ),
            true,
        ));
        plan.actions
            .push(Action::Account(AccountChange::SetPrimaryGroup {
                user: user_name.to_string(),
                gid,
            }));
    }
    if accounts.password_locked(user_name) == Some(false) {
        plan.findings.push(Finding::new(
            "user.password-usable",
            Severity::High,
            format!(
                "{user_name} has a usable password; a service account must not be able to log in"
            ),
            true,
        ));
        plan.actions
            .push(Action::Account(AccountChange::LockPassword {
                user: user_name.to_string(),
            }));
    }

    let current: BTreeSet<String> = accounts.group.memberships(user_name).into_iter().collect();
    for name in current.difference(&desired) {
        let privileged = accounts
            .group
            .by_name(name)
            .is_some_and(|g| is_privileged(g, sudoers));
        plan.findings.push(if privileged {
            Finding::new(
                "user.privileged-group",
                Severity::Critical,
                format!("{user_name} is in the privileged group {name}"),
                true,
            )
        } else {
            Finding::new(
                "user.extra-group",
                Severity::Medium,
                format!(
                    "{user_name} is in the group {name}, which is not a configured hardware group"
                ),
                true,
            )
        });
    }
    for name in desired.difference(&current) {
        plan.findings.push(Finding::new(
            "user.hardware-group-missing",
            Severity::Low,
            format!("{user_name} is not in the configured hardware group {name}"),
            true,
        ));
    }
    if current != desired {
        plan.actions
            .push(Action::Account(AccountChange::SetMemberships {
                user: user_name.to_string(),
                groups: desired.iter().cloned().collect(),
            }));
    }

    // Rights that survive the membership fix come from rules naming the user itself.
    let kept: Vec<&GroupEntry> = desired
        .iter()
        .filter_map(|n| accounts.group.by_name(n))
        .collect();
    if sudoers.is_some_and(|s| s.grants(user, &kept)) {
        plan.findings.push(Finding::new(
            "user.sudo-rights",
            Severity::Critical,
            format!("a sudoers rule grants {user_name} sudo rights; remove it from /etc/sudoers or /etc/sudoers.d"),
            false,
        ));
    }
}

fn plan_unit_user(config: &Config, observed: &Observed, plan: &mut Plan) {
    let Some(unit) = &observed.unit else { return };
    // A disabled unit (after adoption, say) starts nothing; DynamicUser= is systemd's own
    // throwaway user.
    if unit.dynamic_user || !unit.enabled {
        return;
    }
    let accounts = &observed.accounts;
    let name = unit.user.as_deref().unwrap_or("root");
    if name == config.service.user.as_str() {
        return; // the service user's own checks above cover it
    }
    let adopt = if config.nodered.adopt {
        "; apply adopts it into the dedicated user and redwarden.service (see adopt.*)"
    } else {
        "; set [nodered] adopt = true to have apply move it to the dedicated user"
    };
    let entry = accounts.user(name).or_else(|| {
        name.parse()
            .ok()
            .and_then(|uid| accounts.passwd.by_uid(uid))
    });
    if name == "root" || entry.is_some_and(|e| e.uid == 0) {
        plan.findings.push(
            Finding::new(
                "user.service-root",
                Severity::Critical,
                format!("Node-RED runs as root: every flow has full control of the device{adopt}"),
                false,
            )
            .at(unit.path.clone()),
        );
        return;
    }
    let Some(entry) = entry else { return };
    if is_login_shell(&entry.shell) {
        plan.findings.push(Finding::new("user.service-login-user", Severity::Critical, format!(
                "Node-RED runs as the login user {name} (shell {}): a flow can read and change that person's files{adopt}",
                entry.shell
            ), false).at(unit.path.clone()));
    }
    let groups: Vec<&GroupEntry> = accounts
        .group
        .memberships(name)
        .iter()
        .filter_map(|g| accounts.group.by_name(g))
        .chain(accounts.group.by_gid(entry.gid))
        .collect();
    let sudo_group = groups
        .iter()
        .find(|g| ["sudo", "wheel", "admin"].contains(&g.name.as_str()));
    let sudo_rule = observed
        .sudoers
        .as_ref()
        .is_some_and(|s| s.grants(entry, &groups));
    if sudo_rule || sudo_group.is_some() {
        let how = match sudo_group {
            Some(g) if !sudo_rule => format!("is in the group {}", g.name),
            _ => "has sudo rights in /etc/sudoers or /etc/sudoers.d".to_string(),
        };
        plan.findings.push(Finding::new("user.service-sudo", Severity::Critical, format!("Node-RED runs as {name}, who {how}: any flow (an exec node) can become root{adopt}"), false).at(unit.path.clone()));
    }
}

pub fn apply(root: &Root, change: &AccountChange) -> Result<(), crate::Error> {
    let mut db = AccountDb::load(root)?;
    match change {
        AccountChange::CreateGroup { name, gid } => {
            if db.group.by_name(name).is_none() {
                db.group.push(GroupEntry {
                    name: name.clone(),
                    password: "x".into(),
                    gid: *gid,
                    members: Vec::new(),
                });
            }
            if let Some(gshadow) = db.gshadow.as_mut().filter(|t| t.by_name(name).is_none()) {
                gshadow.push(ShadowEntry {
                    name: name.clone(),
                    password: "!*".into(),
                    rest: vec![String::new(), String::new()],
                });
            }
        }
        AccountChange::CreateUser {
            name,
            comment,
            uid,
            gid,
            home,
            shell,
        } => {
            if db.user(name).is_none() {
                db.passwd.push(PasswdEntry {
                    name: name.clone(),
                    password: if db.shadow.is_some() { "x" } else { "!*" }.into(),
                    uid: *uid,
                    gid: *gid,
                    gecos: (*comment).into(),
                    home: home.to_string_lossy().into_owned(),
                    shell: shell.clone(),
                });
            }
            lock_password(&mut db, name);
        }
        AccountChange::SetShell { user, shell } => {
            edit_user(&mut db, user, |e| e.shell = shell.clone())
        }
        AccountChange::SetHome { user, home } => edit_user(&mut db, user, |e| {
            e.home = home.to_string_lossy().into_owned()
        }),
        AccountChange::SetPrimaryGroup { user, gid } => edit_user(&mut db, user, |e| e.gid = *gid),
        AccountChange::LockPassword { user } => lock_password(&mut db, user),
        AccountChange::SetMemberships { user, groups } => {
            for group in db.group.records_mut() {
                set_member(&mut group.members, user, groups.contains(&group.name));
            }
            if let Some(gshadow) = db.gshadow.as_mut() {
                for group in gshadow.records_mut() {
                    let mut members = group.members();
                    set_member(&mut members, user, groups.contains(&group.name));
                    group.set_members(&members);
                }
            }
        }
    }
    db.save(root)?;
    Ok(())
}

fn edit_user(db: &mut AccountDb, name: &str, change: impl FnOnce(&mut PasswdEntry)) {
    if let Some(entry) = db.passwd.records_mut().find(|e| e.name == name) {
        change(entry);
    }
}

fn set_member(members: &mut Vec<String>, user: &str, wanted: bool) {
    let present = members.iter().any(|m| m == user);
    if wanted && !present {
        members.push(user.to_string());
    } else if !wanted && present {
        members.retain(|m| m != user);
    }
}

fn lock(password: &mut String) {
    if password.is_empty() {
        *password = "!*".into();
    } else if !password.starts_with('!') && !password.starts_with('*') {
        password.insert(0, '!');
    }
}

fn lock_password(db: &mut AccountDb, name: &str) {
    let defers_to_shadow = db.user(name).is_some_and(|e| e.password == "x");
    if !defers_to_shadow {
        edit_user(db, name, |e| lock(&mut e.password));
        return;
    }
    let Some(shadow) = db.shadow.as_mut() else {
        return;
    };
    if let Some(entry) = shadow.records_mut().find(|e| e.name == name) {
        lock(&mut entry.password);
        return;
    }
    shadow.push(ShadowEntry {
        name: name.to_string(),
        password: "!*".into(),
        rest: vec![String::new(); 7],
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::accounts::{IdRanges, Table};

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\npi:x:1000:1000:,,,:/home/pi:/bin/bash\n";
    const GROUP: &str =
        "root:x:0:\nsudo:x:27:pi\nadm:x:4:pi\ngpio:x:997:pi\ndialout:x:20:pi\npi:x:1000:\n";

    fn observed(passwd: &str, group: &str, shadow: &str, sudoers: &str) -> Observed {
        let p = Path::new("/etc/x");
        let mut rules = Sudoers::default();
        rules.parse_into(sudoers, &mut Vec::new());
        Observed {
            accounts: AccountDb {
                passwd: Table::<PasswdEntry>::parse(passwd, p).unwrap(),
                group: Table::<GroupEntry>::parse(group, p).unwrap(),
                shadow: Some(Table::<ShadowEntry>::parse(shadow, p).unwrap()),
                gshadow: None,
                ranges: IdRanges::default(),
                shadow_unreadable: None,
            },
            sudoers: Some(rules),
            unit: None,
            nologin_shell: "/usr/sbin/nologin".into(),
            uninspected: Vec::new(),
        }
    }

    fn ids(plan: &Plan) -> Vec<&'static str> {
        plan.findings.iter().map(|f| f.id).collect()
    }

    #[test]
    fn fresh_system_creates_group_then_user_with_matching_ids() {
        let plan = plan(&Config::default(), &observed(PASSWD, GROUP, "", ""));
        assert_eq!(ids(&plan), vec!["user.group-missing", "user.missing"]);
        assert_eq!(
            plan.actions,
            vec![
                Action::Account(AccountChange::CreateGroup {
                    name: "nodered".into(),
                    gid: 999
                }),
                Action::Account(AccountChange::CreateUser {
                    name: "nodered".into(),
                    comment: "Node-RED (redwarden)",
                    uid: 999,
                    gid: 999,
                    home: PathBuf::from("/var/lib/node-red"),
                    shell: "/usr/sbin/nologin".into(),
                }),
            ]
        );
    }

    #[test]
    fn the_front_door_gets_its_own_user_after_the_service_user() {
        let mut config = Config::default();
        config.front.enabled = true;
        // Both missing: the service account first; the front door's waits for the next pass.
        let first = plan(&config, &observed(PASSWD, GROUP, "", ""));
        assert_eq!(
            ids(&first),
            vec!["user.group-missing", "user.missing", "user.front-missing"]
        );
        assert_eq!(first.actions.len(), 2, "{:?}", first.actions);
        let passwd =
            format!("{PASSWD}nodered:x:999:999:Node-RED:/var/lib/node-red:/usr/sbin/nologin\n");
        let group = format!("{GROUP}nodered:x:999:\n");
        let second = plan(
            &config,
            &observed(&passwd, &group, "nodered:!*:::::::\n", ""),
        );
        assert_eq!(ids(&second), vec!["user.front-missing"]);
        assert_eq!(
            second.actions,
            vec![
                Action::Account(AccountChange::CreateGroup {
                    name: "redwarden-front".into(),
                    gid: 998
                }),
                Action::Account(AccountChange::CreateUser {
                    name: "redwarden-front".into(),
                    comment: "TLS front door (redwarden)",
                    uid: 998,
                    gid: 998,
                    home: PathBuf::from("/var/lib/redwarden-front"),
                    shell: "/usr/sbin/nologin".into(),
                }),
            ]
        );
    }

    #[test]
    fn compliant_user_plans_nothing() {
        let passwd =
            format!("{PASSWD}nodered:x:999:999:Node-RED:/var/lib/node-red:/usr/sbin/nologin\n");
        let group = format!("{GROUP}nodered:x:999:\n");
        let plan = plan(
            &Config::default(),
            &observed(
                &passwd,
                &group,
                "nodered:!*:::::::\n",
                "%sudo ALL=(ALL:ALL) ALL\n",
            ),
        );
        assert_eq!(plan, Plan::default());
    }

    #[test]
    fn a_drifted_user_gets_one_action_per_problem() {
        let passwd = format!("{PASSWD}nodered:x:999:1000:Node-RED:/home/nodered:/bin/bash\n");
        let group = "root:x:0:\nsudo:x:27:pi,nodered\nnetdev:x:108:nodered\ngpio:x:997:\ndialout:x:20:\npi:x:1000:\nnodered:x:999:\n";
        let mut config = Config::default();
        config.service.hardware = vec![crate::config::Hardware::Gpio, crate::config::Hardware::I2c];
        let plan = plan(
            &config,
            &observed(
                &passwd,
                group,
                "nodered:$y$j9T$x:1::::::\n",
                "%sudo ALL=(ALL:ALL) ALL\n",
            ),
        );
        assert_eq!(
            ids(&plan),
            vec![
                "user.login-shell",
                "user.home",
                "user.primary-group",
                "user.password-usable",
                "user.extra-group",
                "user.privileged-group",
                "user.hardware-group-missing",
            ]
        );
        assert_eq!(
            plan.actions.last(),
            Some(&Action::Account(AccountChange::SetMemberships {
                user: "nodered".into(),
                groups: vec!["gpio".into()]
            })),
            "i2c is configured but absent, so only gpio is kept"
        );
    }

    #[test]
    fn installer_unit_as_pi_is_a_login_user_with_sudo() {
        let mut obs = observed(
            PASSWD,
            GROUP,
            "",
            "#includedir /etc/sudoers.d\npi ALL=(ALL) NOPASSWD: ALL\n",
        );
        obs.unit = Some(UnitInfo {
            enabled: true,
            ..install::parse_unit(
                Path::new("/lib/systemd/system/nodered.service"),
                &["[Service]\nUser=pi\n"],
            )
        });
        let plan = plan(&Config::default(), &obs);
        let unit_ids: Vec<_> = ids(&plan)
            .into_iter()
            .filter(|i| i.starts_with("user.service"))
            .collect();
        assert_eq!(
            unit_ids,
            vec!["user.service-login-user", "user.service-sudo"]
        );
        assert!(plan
            .findings
            .iter()
            .filter(|f| f.id.starts_with("user.service"))
            .all(|f| !f.fixable && f.severity == Severity::Critical));

        obs.unit = Some(UnitInfo {
            enabled: true,
            ..install::parse_unit(
                Path::new("/x"),
                &["[Service]\nExecStart=/usr/bin/node-red\n"],
            )
        });
        assert!(ids(&plan_fn(&obs)).contains(&"user.service-root"));
    }

    fn plan_fn(obs: &Observed) -> Plan {
        plan(&Config::default(), obs)
    }

    #[test]
    fn sudoers_subjects_aliases_and_includes() {
        let mut s = Sudoers::default();
        let mut aliases = Vec::new();
        let includes = s.parse_into(
            "Defaults env_reset\n# comment\nUser_Alias ADMINS = alice, %wheel\nADMINS ALL=(ALL) ALL\n#1001 ALL=(ALL) ALL\n%#27 ALL = ALL\n!bob ALL=ALL\n@includedir /etc/sudoers.d\n#include /etc/sudoers.local\n",
            &mut aliases,
        );
        assert_eq!(
            s.subjects,
            vec![
                SudoSubject::User("alice".into()),
                SudoSubject::Group("wheel".into()),
                SudoSubject::Uid(1001),
                SudoSubject::Gid(27),
            ]
        );
        assert_eq!(
            includes,
            vec![
                Include::Dir(PathBuf::from("/etc/sudoers.d")),
                Include::File(PathBuf::from("/etc/sudoers.local")),
            ]
        );
    }
}
