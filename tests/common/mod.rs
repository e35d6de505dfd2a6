//! Builds image roots in temp folders: the state Node-RED's official installer leaves on a
//! Raspberry Pi, for the fake-root and privileged tiers.
#![allow(dead_code)] // each test binary uses its own part of this module

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const PI_UID: u32 = 1000;

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Tier 3 tests chown to other users; without root they say so and pass vacuously.
#[macro_export]
macro_rules! require_root {
    () => {
        if !common::is_root() {
            eprintln!(
                "SKIP {}: needs root to chown files to other users (CI runs it as root)",
                module_path!()
            );
            return;
        }
    };
}

pub fn write(root: &Path, rel: &str, contents: &str, mode: u32, owner: Option<(u32, u32)>) {
    let path = root.join(rel.trim_start_matches('/'));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, contents).unwrap();
    set_mode_owner(&path, mode, owner);
}

pub fn mkdir(root: &Path, rel: &str, mode: u32, owner: Option<(u32, u32)>) {
    let path = root.join(rel.trim_start_matches('/'));
    std::fs::create_dir_all(&path).unwrap();
    set_mode_owner(&path, mode, owner);
}

fn set_mode_owner(path: &Path, mode: u32, owner: Option<(u32, u32)>) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
    }
}

pub const INSTALLER_UNIT: &str = "[Unit]\nDescription=Node-RED graphical event wiring tool\nWants=network.target\n\n[Service]\nType=simple\nUser=pi\nGroup=pi\nWorkingDirectory=/home/pi\nEnvironment=\"NODE_OPTIONS=--max_old_space_size=512\"\nEnvironmentFile=-/home/pi/.node-red/environment\nExecStart=/usr/bin/env node-red-pi $NODE_OPTIONS -- $NODE_RED_OPTIONS\nKillSignal=SIGINT\nRestart=on-failure\nRestartSec=20\nSyslogIdentifier=Node-RED\n\n[Install]\nWantedBy=multi-user.target\n";

/// The account files and system folders of a Raspberry Pi OS image, without Node-RED.
pub fn base_image(root: &Path) {
    let owner = is_root().then_some((0, 0));
    for dir in [
        "etc",
        "bin",
        "usr/sbin",
        "usr/bin",
        "var/lib",
        "root",
        "lib/systemd/system",
        "etc/sudoers.d",
    ] {
        mkdir(root, dir, 0o755, owner);
    }
    write(root, "etc/passwd", "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\npi:x:1000:1000:,,,:/home/pi:/bin/bash\n", 0o644, owner);
    write(root, "etc/group", "root:x:0:\ndaemon:x:1:\nadm:x:4:pi\ndialout:x:20:pi\nsudo:x:27:pi\nvideo:x:44:pi\nshadow:x:42:\ngpio:x:997:pi\ni2c:x:998:pi\npi:x:1000:\n", 0o644, owner);
    let shadow_owner = is_root().then_some((0, 42));
    write(root, "etc/shadow", "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\npi:$y$j9T$abcdefgh$ijklmnop:19000:0:99999:7:::\n", 0o640, shadow_owner);
    write(root, "etc/gshadow", "root:*::\ndaemon:*::\nadm:*::pi\ndialout:*::pi\nsudo:*::pi\nvideo:*::pi\nshadow:*::\ngpio:!::pi\ni2c:!::pi\npi:!::\n", 0o640, shadow_owner);
    write(root, "etc/login.defs", "UID_MIN 1000\nUID_MAX 60000\nSYS_UID_MIN 100\nSYS_UID_MAX 999\nSYS_GID_MIN 100\nSYS_GID_MAX 999\n", 0o644, owner);
    write(root, "etc/sudoers", "Defaults env_reset\nroot ALL=(ALL:ALL) ALL\n%sudo ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n", 0o440, owner);
    write(
        root,
        "etc/sudoers.d/010_pi-nopasswd",
        "pi ALL=(ALL) NOPASSWD: ALL\n",
        0o440,
        owner,
    );
    write(root, "usr/sbin/nologin", "", 0o755, owner);
    write(root, "bin/bash", "", 0o755, owner);
    write(root, "usr/bin/node", "", 0o755, owner);
    write(
        root,
        "usr/lib/node_modules/node-red/red.js",
        "// red.js\n",
        0o644,
        owner,
    );
}

/// What the official installer leaves: Node-RED run by `pi` from /home/pi/.node-red, every file
/// created with umask 022.
pub fn installer_state(root: &Path) {
    base_image(root);
    let pi = is_root().then_some((PI_UID, PI_UID));
    write(
        root,
        "lib/systemd/system/nodered.service",
        INSTALLER_UNIT,
        0o644,
        is_root().then_some((0, 0)),
    );
    // `systemctl enable nodered.service`, as the installer runs it.
    mkdir(
        root,
        "etc/systemd/system/multi-user.target.wants",
        0o755,
        is_root().then_some((0, 0)),
    );
    symlink(
        "/lib/systemd/system/nodered.service",
        root.join("etc/systemd/system/multi-user.target.wants/nodered.service"),
    )
    .unwrap();
    mkdir(root, "home/pi", 0o755, pi);
    mkdir(root, "home/pi/.node-red", 0o755, pi);
    for (name, contents) in [
        (
            "settings.js",
            "module.exports = { flowFile: 'flows.json' }\n",
        ),
        ("flows.json", "[]\n"),
        ("flows_cred.json", "{\"$\":\"abc\"}\n"),
        (".config.runtime.json", "{\"_credentialSecret\":\"0123\"}\n"),
        (".config.users.json", "{}\n"),
        (".flows_cred.json.backup", "{}\n"),
        ("package.json", "{}\n"),
    ] {
        write(
            root,
            &format!("home/pi/.node-red/{name}"),
            contents,
            0o644,
            pi,
        );
    }
    node_modules(root, "home/pi/.node-red/node_modules", 3, 4, pi);
}

/// A node_modules tree: `packages` packages, each with lib/ and `files` files, a .bin link.
pub fn node_modules(
    root: &Path,
    rel: &str,
    packages: usize,
    files: usize,
    owner: Option<(u32, u32)>,
) {
    for p in 0..packages {
        let pkg = format!("{rel}/pkg-{p}");
        write(root, &format!("{pkg}/package.json"), "{}", 0o644, owner);
        for f in 0..files {
            write(
                root,
                &format!("{pkg}/lib/file-{f}.js"),
                "module.exports = 1;\n",
                0o644,
                owner,
            );
        }
        mkdir(root, &format!("{rel}/.bin"), 0o755, owner);
        let link = root.join(format!("{rel}/.bin/pkg-{p}").trim_start_matches('/'));
        let _ = symlink(format!("../pkg-{p}/lib/file-0.js"), link);
    }
}

pub fn redwarden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_redwarden"))
        .args(args)
        .env_remove("JOURNAL_STREAM")
        .output()
        .unwrap()
}

pub fn run_on(root: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--root", root.to_str().unwrap()];
    all.extend_from_slice(args);
    redwarden(&all)
}

pub fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): stdout {} stderr {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

pub fn ids(report: &serde_json::Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

pub fn fixable(report: &serde_json::Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["fixable"] == true)
        .map(|f| format!("{} {}", f["id"], f["path"]))
        .collect()
}

/// A digest of everything in a tree (paths, kinds, modes, owners, contents, link targets), to
/// prove a command changed nothing.
pub fn tree_digest(root: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let mut lines = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path: PathBuf = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let body = if meta.file_type().is_symlink() {
                std::fs::read_link(&path)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            } else if meta.is_file() {
                String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned()
            } else {
                stack.push(path.clone());
                String::new()
            };
            lines.push(format!(
                "{} {:o} {}:{} {body:?}",
                path.display(),
                meta.mode(),
                meta.uid(),
                meta.gid()
            ));
        }
    }
    lines.sort();
    lines.join("\n")
}

/// Asserts that a tree is as `before` (a [`tree_digest`]), naming only the lines that differ.
pub fn assert_unchanged(before: &str, root: &Path, what: &str) {
    let after = tree_digest(root);
    if before != after {
        let old: std::collections::BTreeSet<&str> = before.lines().collect();
        let new: std::collections::BTreeSet<&str> = after.lines().collect();
        let gone: Vec<_> = old.difference(&new).collect();
        let added: Vec<_> = new.difference(&old).collect();
        panic!("{what} changed the tree:\n- {gone:#?}\n+ {added:#?}");
    }
}

pub fn mode_owner(path: &Path) -> (u32, u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).unwrap();
    (meta.mode() & 0o7777, meta.uid(), meta.gid())
}

/// The real Node-RED the tiers that run it use: its package folder (REDWARDEN_TEST_NODERED,
/// which tests/run.sh installs from npm) and node from PATH; None, after saying why, when the
/// tier cannot run (never in CI).
pub fn test_nodered(tier: &str) -> Option<(PathBuf, PathBuf)> {
    let missing = |why: String| {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the {tier} tier: {why}"
        );
        eprintln!("SKIP {tier}: {why} (tests/run.sh installs Node-RED from npm)");
        None
    };
    let Some(dir) = std::env::var_os("REDWARDEN_TEST_NODERED").map(PathBuf::from) else {
        return missing("REDWARDEN_TEST_NODERED is not set".into());
    };
    if !dir.join("red.js").is_file() {
        return missing(format!("no red.js in {}", dir.display()));
    }
    let node = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("node"))
            .find(|n| n.is_file())
    });
    match node {
        Some(node) => Some((dir, node)),
        None => missing("node is not on PATH".into()),
    }
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
