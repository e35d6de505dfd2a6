//! Where Node-RED is and who runs it: the configured installation, the one a unit file (such as
//! the official installer's nodered.service) really runs, and the node and Node-RED binaries.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::host::accounts::AccountDb;
use crate::host::{fs, paths, Root};

/// The targets whose wants-links start a service at boot.
const BOOT_TARGETS: &[&str] = &["multi-user.target", "graphical.target", "default.target"];

/// Units that run Node-RED: the official installer's name, and the one some distributions use.
const NODERED_UNITS: &[&str] = &["nodered.service", "node-red.service"];

/// What a Node-RED unit says about the process it starts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnitInfo {
    /// The unit file, as a system path.
    pub path: PathBuf,
    /// `User=`; None means the service runs as root.
    pub user: Option<String>,
    pub group: Option<String>,
    pub dynamic_user: bool,
    /// `--userDir`/`-u` from ExecStart, if given.
    pub user_dir: Option<PathBuf>,
    /// `--settings`/`-s` from ExecStart, if given.
    pub settings: Option<PathBuf>,
    /// Whether it starts at boot (a wants-link exists): a disabled unit runs nothing.
    pub enabled: bool,
}

/// Parses a unit file and its drop-ins (in order) the way systemd merges them: a later
/// assignment wins, an empty `ExecStart=` resets.
pub fn parse_unit(path: &Path, texts: &[&str]) -> UnitInfo {
    let mut info = UnitInfo {
        path: path.to_path_buf(),
        ..UnitInfo::default()
    };
    let mut exec_start = String::new();
    for text in texts {
        let mut section = String::new();
        let mut logical = String::new();
        for raw in text.lines() {
            if let Some(continued) = raw.strip_suffix('\\') {
                logical.push_str(continued);
                logical.push(' ');
                continue;
            }
            logical.push_str(raw);
            let line = std::mem::take(&mut logical);
            let line = line.trim();
            if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
                continue;
            }
            if line.starts_with('[') {
                section = line.trim_matches(['[', ']']).to_string();
                continue;
            }
            if section != "Service" {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim().to_string();
            match key.trim() {
                "User" => info.user = Some(value).filter(|v| !v.is_empty()),
                "Group" => info.group = Some(value).filter(|v| !v.is_empty()),
                "DynamicUser" => {
                    info.dynamic_user = matches!(value.as_str(), "yes" | "true" | "1" | "on")
                }
                "ExecStart" => exec_start = value,
                _ => {}
            }
        }
    }
    let words: Vec<&str> = exec_start.split_whitespace().collect();
    for (index, word) in words.iter().enumerate() {
        let next = words
            .get(index + 1)
            .map(|w| PathBuf::from(w.trim_matches('"')));
        match *word {
            "-u" | "--userDir" => info.user_dir = next,
            "-s" | "--settings" => info.settings = next,
            w => {
                if let Some(dir) = w.strip_prefix("--userDir=") {
                    info.user_dir = Some(PathBuf::from(dir));
                } else if let Some(file) = w.strip_prefix("--settings=") {
                    info.settings = Some(PathBuf::from(file));
                }
            }
        }
    }
    info
}

/// Finds the first Node-RED unit in systemd's search order and reads its drop-ins.
pub fn find_unit(root: &Root) -> Result<Option<UnitInfo>, crate::Error> {
    for name in NODERED_UNITS {
        for dir in paths::UNIT_DIRS {
            let system = Path::new(dir).join(name);
            let host = root.resolve(&system)?;
            let Ok(main) = std::fs::read_to_string(&host) else {
                continue;
            };
            let mut texts = vec![main];
            for drop_dir in paths::UNIT_DIRS {
                let folder = root.resolve(&Path::new(drop_dir).join(format!("{name}.d")))?;
                let Ok(entries) = std::fs::read_dir(&folder) else {
                    continue;
                };
                let mut confs: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "conf"))
                    .collect();
                confs.sort();
                texts.extend(confs.iter().filter_map(|p| std::fs::read_to_string(p).ok()));
            }
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let mut info = parse_unit(&system, &refs);
            for target in BOOT_TARGETS {
                let link = crate::host::systemd::wants_link(name, target);
                info.enabled |= std::fs::symlink_metadata(root.resolve_parent(&link)?).is_ok();
            }
            return Ok(Some(info));
        }
    }
    Ok(None)
}

/// Who owns an installation: the user Node-RED runs as and its group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    pub user: String,
    pub group: String,
    pub user_dir: PathBuf,
    pub settings: PathBuf,
    /// The unit that runs it, when it was found through one rather than configured.
    pub unit: Option<PathBuf>,
    /// Whether that unit starts at boot.
    pub unit_enabled: bool,
}

impl Installation {
    pub fn configured(config: &Config) -> Self {
        Self {
            user: config.service.user.to_string(),
            group: config.service.group().to_string(),
            user_dir: config.nodered.user_dir.as_path().to_path_buf(),
            settings: config.nodered.settings_path(),
            unit: None,
            unit_enabled: false,
        }
    }

    /// The installation a unit runs, when it is not the configured one: Node-RED's default
    /// userDir is `$HOME/.node-red` of the user it runs as.
    pub fn from_unit(unit: &UnitInfo, accounts: &AccountDb, configured: &Self) -> Option<Self> {
        if unit.dynamic_user {
            return None;
        }
        let user = unit.user.clone().unwrap_or_else(|| "root".to_string());
        let entry = accounts.user(&user);
        let user_dir = match &unit.user_dir {
            Some(dir) => dir.clone(),
            None => Path::new(&entry?.home).join(".node-red"),
        };
        if user_dir == configured.user_dir || Root::check_clean(&user_dir).is_err() {
            return None;
        }
        let group = match &unit.group {
            Some(group) => group.clone(),
            None => {
                let gid = entry?.gid;
                accounts.group.by_gid(gid)?.name.clone()
            }
        };
        let settings = unit
            .settings
            .clone()
            .filter(|s| s.is_absolute())
            .unwrap_or_else(|| user_dir.join("settings.js"));
        Some(Self {
            user,
            group,
            user_dir,
            settings,
            unit: Some(unit.path.clone()),
            unit_enabled: unit.enabled,
        })
    }
}

/// Where node and Node-RED are installed, found or configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    pub node: Option<PathBuf>,
    /// The node-red package folder, holding red.js.
    pub nodered: Option<PathBuf>,
}

pub fn find_binaries(root: &Root, config: &Config, user_dirs: &[&Path]) -> Binaries {
    let exists = |system: &Path| {
        root.resolve(system)
            .ok()
            .and_then(|host| fs::lstat(&host).ok().flatten())
            .is_some()
    };
    let nodered = match &config.nodered.install_dir {
        Some(path) => Some(path.as_path().to_path_buf()),
        None => paths::GLOBAL_NODE_MODULES
            .iter()
            .map(|d| Path::new(d).join("node-red"))
            .chain(user_dirs.iter().map(|d| d.join("node_modules/node-red")))
            .find(|p| exists(&p.join("red.js"))),
    };
    // The node that installed Node-RED sits under the same prefix (/usr/local/lib/node_modules
    // goes with /usr/local/bin/node): a distribution's older node may also be on the system, and
    // Node-RED 5 refuses Node 18. Otherwise the first on the default PATH.
    let beside_nodered = nodered
        .as_deref()
        .and_then(|dir| dir.ancestors().nth(3))
        .map(|prefix| prefix.join("bin/node"))
        .filter(|node| exists(node));
    let node = match &config.nodered.node {
        Some(path) => Some(path.as_path().to_path_buf()),
        None => beside_nodered.or_else(|| {
            paths::NODE_BINARIES
                .iter()
                .map(PathBuf::from)
                .find(|p| exists(p))
        }),
    };
    Binaries { node, nodered }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSTALLER_UNIT: &str = "[Unit]\nDescription=Node-RED graphical event wiring tool\nWants=network.target\n\n[Service]\nType=simple\nUser=pi\nGroup=pi\nWorkingDirectory=/home/pi\nEnvironment=\"NODE_OPTIONS=--max_old_space_size=512\"\nExecStart=/usr/bin/env node-red-pi $NODE_OPTIONS -- $NODE_RED_OPTIONS\nKillSignal=SIGINT\nRestart=on-failure\nRestartSec=20\n\n[Install]\nWantedBy=multi-user.target\n";

    #[test]
    fn installer_unit_runs_as_pi_with_the_default_user_dir() {
        let info = parse_unit(
            Path::new("/lib/systemd/system/nodered.service"),
            &[INSTALLER_UNIT],
        );
        assert_eq!(info.user.as_deref(), Some("pi"));
        assert_eq!(info.group.as_deref(), Some("pi"));
        assert_eq!(info.user_dir, None);
    }

    #[test]
    fn drop_ins_override_and_exec_start_options_are_read() {
        let drop_in = "[Service]\nUser=\nExecStart=\nExecStart=/usr/bin/node /usr/lib/node_modules/node-red/red.js \\\n  --userDir /srv/nr --settings=/etc/nr/settings.js\n";
        let info = parse_unit(Path::new("/x"), &[INSTALLER_UNIT, drop_in]);
        assert_eq!(info.user, None, "an empty User= resets to root");
        assert_eq!(info.user_dir, Some(PathBuf::from("/srv/nr")));
        assert_eq!(info.settings, Some(PathBuf::from("/etc/nr/settings.js")));
    }
}
