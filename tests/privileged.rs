//! Tier 3: apply for real — accounts created, files chowned to other users — but always inside a
//! `--root` folder, never on the host. Needs root; without it each test says so and returns.

mod common;

use common::*;
use proptest::prelude::*;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;
use std::process::Command;

/// apply (which must change something), apply again (which must not), then check: no fixable
/// finding may remain.
fn apply_twice_then_check(root: &Path) -> serde_json::Value {
    apply_then_check(root, true)
}

/// The same after an interrupted apply, whose successor may have nothing left to do.
fn apply_and_check(root: &Path) -> serde_json::Value {
    apply_then_check(root, false)
}

fn apply_then_check(root: &Path, first_must_change: bool) -> serde_json::Value {
    let first = run_on(root, &["--json", "apply"]);
    assert!(
        matches!(first.status.code(), Some(0 | 1)),
        "apply failed: {}",
        String::from_utf8_lossy(&first.stderr)
    );
    if first_must_change {
        assert!(
            !json(&first)["changes"].as_array().unwrap().is_empty(),
            "the first apply changed nothing"
        );
    }
    let second = run_on(root, &["--json", "apply"]);
    let second = json(&second);
    assert_eq!(
        second["changes"],
        serde_json::json!([]),
        "the second apply changed something"
    );
    let check = json(&run_on(root, &["--json", "check"]));
    assert_eq!(
        fixable(&check),
        Vec::<String>::new(),
        "check after apply still has fixable findings"
    );
    check
}

fn passwd_line(root: &Path, name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{name}:")))
        .unwrap_or_else(|| panic!("{name} not in passwd:\n{text}"));
    line.split(':').map(str::to_string).collect()
}

#[test]
fn apply_hardens_the_installer_state_and_shadow_utils_agree() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    installer_state(root);
    let check = apply_twice_then_check(root);

    // Node-RED was adopted; in an image nothing runs yet, so redwarden.service starts on
    // probation at first boot (it hands back to nodered.service if it fails).
    assert_eq!(ids(&check), vec!["adopt.probation"]);
    let user = passwd_line(root, "nodered");
    let uid: u32 = user[2].parse().unwrap();
    assert!(
        (100..=999).contains(&uid),
        "uid {uid} outside the image's system range"
    );
    assert_eq!(user[3], user[2], "uid and gid match");
    assert_eq!(
        (user[5].as_str(), user[6].as_str()),
        ("/var/lib/node-red", "/usr/sbin/nologin")
    );
    let shadow = std::fs::read_to_string(root.join("etc/shadow")).unwrap();
    assert!(
        shadow.lines().any(|l| l.starts_with("nodered:!")),
        "{shadow}"
    );
    assert_eq!(
        mode_owner(&root.join("etc/shadow")),
        (0o640, 0, 42),
        "shadow kept its mode and group"
    );
    assert_eq!(
        mode_owner(&root.join("var/lib/node-red")),
        (0o750, uid, uid)
    );
    assert_adopted(root, uid);

    let nr = root.join("home/pi/.node-red");
    assert_eq!(mode_owner(&nr.join("settings.js")), (0o640, 0, PI_UID));
    for secret in [
        "flows_cred.json",
        ".config.runtime.json",
        ".config.users.json",
        ".flows_cred.json.backup",
    ] {
        assert_eq!(
            mode_owner(&nr.join(secret)),
            (0o600, PI_UID, PI_UID),
            "{secret}"
        );
    }
    assert_eq!(mode_owner(&nr.join("flows.json")).0, 0o640);
    assert_eq!(mode_owner(&nr).0, 0o750);
    // pi's own account is not redwarden's to change.
    assert_eq!(passwd_line(root, "pi")[6], "/bin/bash");

    // shadow-utils' own checkers accept the files redwarden wrote.
    for tool in ["pwck", "grpck"] {
        let out = Command::new(tool)
            .args(["-r", "-R"])
            .arg(root)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{tool} -r -R {}: {text}",
            root.display()
        );
    }
}

const WANTS: &str = "etc/systemd/system/multi-user.target.wants";

/// Whether the unit's wants-link exists (it points into the image, so it is not followed).
fn enabled(root: &Path, unit: &str) -> bool {
    std::fs::symlink_metadata(root.join(WANTS).join(unit)).is_ok()
}

/// Each file has the same bytes in the copy as in the original, and belongs to `uid` there.
fn assert_same_and_owned(old: &Path, new: &Path, files: &[&str], uid: u32) {
    for file in files {
        assert_eq!(
            std::fs::read(old.join(file)).unwrap(),
            std::fs::read(new.join(file)).unwrap(),
            "{file}"
        );
        assert_eq!(
            mode_owner(&new.join(file)).1,
            uid,
            "{file} owned by nodered"
        );
    }
}

/// The installer's Node-RED now lives in /var/lib/node-red, owned by nodered, byte for byte
/// (flows, credentials and the key that decrypts them, installed nodes), and redwarden.service
/// replaced nodered.service at boot. The original is untouched.
fn assert_adopted(root: &Path, uid: u32) {
    let old = root.join("home/pi/.node-red");
    let new = root.join("var/lib/node-red");
    assert_same_and_owned(
        &old,
        &new,
        &[
            "flows.json",
            "flows_cred.json",
            ".config.runtime.json",
            "package.json",
            "node_modules/pkg-1/lib/file-3.js",
        ],
        uid,
    );
    assert_eq!(
        std::fs::read_link(new.join("node_modules/.bin/pkg-0")).unwrap(),
        Path::new("../pkg-0/lib/file-0.js")
    );
    assert_eq!(mode_owner(&new.join("settings.js")), (0o640, 0, uid));
    assert_eq!(mode_owner(&new.join("flows_cred.json")).0, 0o600);
    assert!(
        !enabled(root, "nodered.service"),
        "nodered.service still enabled"
    );
    assert_eq!(
        std::fs::read_link(root.join(WANTS).join("redwarden.service")).unwrap(),
        Path::new("/etc/systemd/system/redwarden.service")
    );
    assert!(
        root.join("lib/systemd/system/nodered.service").exists(),
        "the installer's unit was removed"
    );
    assert_eq!(
        mode_owner(&old.join("flows_cred.json")),
        (0o600, PI_UID, PI_UID),
        "the original moved"
    );
    let state = std::fs::read_to_string(root.join("var/lib/redwarden/adoption")).unwrap();
    assert!(
        state.starts_with("phase=probation\nfrom=/home/pi/.node-red\n"),
        "{state}"
    );
    let probation = std::fs::read_to_string(
        root.join("etc/systemd/system/redwarden.service.d/60-adoption-probation.conf"),
    )
    .unwrap();
    assert!(
        probation.contains("OnFailure=nodered.service") && probation.contains("Restart=no"),
        "{probation}"
    );
}

#[test]
fn undo_adopt_switches_back_and_apply_then_leaves_it() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    installer_state(root);
    apply_twice_then_check(root);
    let undo = run_on(root, &["--json", "apply", "--undo-adopt"]);
    assert_eq!(
        undo.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&undo.stderr)
    );
    assert!(enabled(root, "nodered.service"));
    assert!(!enabled(root, "redwarden.service"));
    assert!(
        root.join("var/lib/node-red/flows.json").exists(),
        "the adopted copy stays"
    );
    // pi's Node-RED is back, with its findings; apply respects the undo and adopts nothing.
    let again = json(&run_on(root, &["--json", "apply"]));
    assert_eq!(again["changes"], serde_json::json!([]));
    let mut remaining = ids(&again);
    remaining.sort();
    assert_eq!(
        remaining,
        vec!["user.service-login-user", "user.service-sudo"]
    );
}

/// What pi's Node-RED writes between the copy and its stop (a deploy, a new context file) lands
/// in the adopted copy when adopt-sync runs before the adopted Node-RED starts; what the copy
/// changed itself is kept; journald gets plain priority-prefixed lines.
#[test]
fn adopt_sync_carries_later_writes_into_the_copy() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    installer_state(root);
    apply_twice_then_check(root);
    let probation = std::fs::read_to_string(
        root.join("etc/systemd/system/redwarden.service.d/60-adoption-probation.conf"),
    )
    .unwrap();
    assert!(
        probation.contains("ExecStartPre=+/usr/bin/redwarden adopt-sync"),
        "{probation}"
    );
    let (old, new) = (
        root.join("home/pi/.node-red"),
        root.join("var/lib/node-red"),
    );
    let uid = mode_owner(&new.join("flows.json")).1;
    std::fs::write(
        old.join("flows.json"),
        "[{\"deployed\":\"after the copy\"}]\n",
    )
    .unwrap();
    std::fs::create_dir_all(old.join("context/global")).unwrap();
    std::fs::write(old.join("context/global/global.json"), "{\"n\":1}\n").unwrap();
    std::fs::write(old.join("package.json"), "{\"old\":1}\n").unwrap();
    std::fs::write(new.join("package.json"), "{\"new\":1}\n").unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_redwarden"))
        .args(["--root", root.to_str().unwrap(), "adopt-sync"])
        .env("JOURNAL_STREAM", "8:1")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(
        log.contains("<4>redwarden: ") && log.contains("package.json: changed in both folders"),
        "{log}"
    );
    assert!(log.contains("files=2 bytes=40 links=0"), "{log}");
    assert!(
        !log.contains('\x1b'),
        "colour codes in the journal: {log:?}"
    );
    assert_same_and_owned(
        &old,
        &new,
        &["flows.json", "context/global/global.json"],
        uid,
    );
    assert_eq!(mode_owner(&new.join("context")), (0o700, uid, uid));
    assert_eq!(
        std::fs::read_to_string(new.join("package.json")).unwrap(),
        "{\"new\":1}\n"
    );
    // Once confirmed there is nothing to carry: the probation is over.
    std::fs::write(
        root.join("var/lib/redwarden/adoption"),
        "phase=adopted\nfrom=/home/pi/.node-red\nunit=nodered.service\nreason=\n",
    )
    .unwrap();
    std::fs::write(old.join("flows.json"), "[]\n").unwrap();
    let out = run_on(root, &["adopt-sync"]);
    assert_eq!(out.status.code(), Some(0));
    assert_ne!(std::fs::read(new.join("flows.json")).unwrap(), b"[]\n");
}

#[test]
fn a_user_dir_holding_another_node_red_blocks_adoption() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    installer_state(root);
    write(
        root,
        "var/lib/node-red/flows.json",
        "[{\"id\":\"mine\"}]",
        0o600,
        Some((0, 0)),
    );
    let before = std::fs::read(root.join("var/lib/node-red/flows.json")).unwrap();
    let out = run_on(root, &["--json", "apply"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(ids(&json(&out)).contains(&"adopt.blocked".to_string()));
    assert_eq!(
        std::fs::read(root.join("var/lib/node-red/flows.json")).unwrap(),
        before
    );
    assert!(
        enabled(root, "nodered.service"),
        "pi's Node-RED still starts"
    );
}

#[test]
fn a_drifted_service_user_is_brought_back() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    base_image(root);
    let owner = Some((0, 0));
    write(root, "etc/passwd", "root:x:0:0:root:/root:/bin/bash\nnodered:x:990:1000:x:/home/nodered:/bin/bash\npi:x:1000:1000:,,,:/home/pi:/bin/bash\n", 0o644, owner);
    write(root, "etc/group", "root:x:0:\nsudo:x:27:pi,nodered\nadm:x:4:nodered\ngpio:x:997:pi\ndialout:x:20:\nshadow:x:42:\npi:x:1000:\nnodered:x:990:\n", 0o644, owner);
    write(
        root,
        "etc/shadow",
        "root:*:1::::::\nnodered:$6$salt$hash:1::::::\npi:$6$x:1::::::\n",
        0o640,
        Some((0, 42)),
    );
    write(
        root,
        "etc/redwarden/redwarden.toml",
        "[service]\nhardware = [\"gpio\", \"serial\", \"i2c\"]\n",
        0o644,
        owner,
    );
    apply_twice_then_check(root);
    let user = passwd_line(root, "nodered");
    assert_eq!(
        (user[3].as_str(), user[5].as_str(), user[6].as_str()),
        ("990", "/var/lib/node-red", "/usr/sbin/nologin")
    );
    let group = std::fs::read_to_string(root.join("etc/group")).unwrap();
    assert!(
        group.contains("sudo:x:27:pi\n") && group.contains("adm:x:4:\n"),
        "{group}"
    );
    assert!(
        group.contains("gpio:x:997:pi,nodered\n") && group.contains("dialout:x:20:nodered\n"),
        "{group}"
    );
    assert!(std::fs::read_to_string(root.join("etc/shadow"))
        .unwrap()
        .contains("nodered:!$6$salt$hash:"));
}

#[test]
fn the_front_door_gets_its_user_and_units_and_loses_the_units_when_turned_off() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    base_image(root);
    installer_state(root);
    let config = |text: &str| {
        write(
            root,
            "etc/redwarden/redwarden.toml",
            text,
            0o644,
            Some((0, 0)),
        )
    };
    config("[front]\nenabled = true\nlisten = \"0.0.0.0:443\"\n");
    apply_twice_then_check(root);
    let front = passwd_line(root, "redwarden-front");
    let service = passwd_line(root, "nodered");
    assert_ne!(
        front[2], service[2],
        "the front door shares the service user's uid"
    );
    assert_eq!(
        (front[4].as_str(), front[5].as_str(), front[6].as_str()),
        (
            "TLS front door (redwarden)",
            "/var/lib/redwarden-front",
            "/usr/sbin/nologin"
        )
    );
    let units = root.join("etc/systemd/system");
    assert!(
        std::fs::read_to_string(units.join("redwarden-front.service"))
            .unwrap()
            .contains("\nUser=redwarden-front\n")
    );
    assert!(
        std::fs::read_to_string(units.join("redwarden-front.socket"))
            .unwrap()
            .contains("\nListenStream=0.0.0.0:443\n")
    );
    let link = units.join("sockets.target.wants/redwarden-front.socket");
    assert!(
        std::fs::symlink_metadata(&link).is_ok(),
        "the socket is not enabled"
    );
    // Off again: the socket must not keep the port for a front door that refuses to start.
    config("[front]\nenabled = false\n");
    let check = apply_twice_then_check(root);
    assert!(!ids(&check).contains(&"unit.front-stale".to_string()));
    for gone in [
        units.join("redwarden-front.service"),
        units.join("redwarden-front.socket"),
        link,
    ] {
        assert!(
            std::fs::symlink_metadata(&gone).is_err(),
            "{} is still there",
            gone.display()
        );
    }
}

#[test]
fn hostile_symlinks_in_the_user_dir_are_never_followed() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    installer_state(root);
    let outside = dir.path().join("outside-the-image");
    std::fs::create_dir(&outside).unwrap();
    let victim = outside.join("victim");
    write(&outside, "victim", "secret", 0o666, Some((0, 0)));
    let nr = root.join("home/pi/.node-red");
    std::fs::remove_file(nr.join("flows_cred.json")).unwrap();
    symlink(&victim, nr.join("flows_cred.json")).unwrap();
    symlink(&victim, nr.join("server.key")).unwrap();
    symlink("/etc", nr.join("lib-escape")).unwrap();
    std::fs::remove_file(nr.join("settings.js")).unwrap();
    symlink(&victim, nr.join("settings.js")).unwrap();

    let check = json(&run_on(root, &["--json", "check"]));
    let escapes = ids(&check)
        .iter()
        .filter(|i| *i == "perms.symlink-escapes")
        .count();
    assert_eq!(escapes, 4, "{check}");
    apply_twice_then_check(root);
    assert_eq!(
        mode_owner(&victim),
        (0o666, 0, 0),
        "a link's target was changed"
    );
    assert_eq!(mode_owner(&root.join("etc")).0, 0o755);
}

/// One file of a generated userDir: where, and the mode and owner it starts with.
#[derive(Debug, Clone)]
struct Spec {
    rel: String,
    mode: u32,
    uid: u32,
}

fn spec() -> impl Strategy<Value = Spec> {
    let names = prop_oneof![
        Just("settings.js".to_string()),
        Just("flows.json".to_string()),
        Just("flows_cred.json".to_string()),
        Just(".config.runtime.json".to_string()),
        Just(".sessions.json".to_string()),
        Just("certs/tls.key".to_string()),
        "node_modules/[a-c]/lib/[a-d]\\.js",
        "node_modules/[a-c]/bin/[a-b]",
        "lib/[a-c]/[a-c]\\.json",
    ];
    let modes = prop_oneof![
        Just(0o644u32),
        Just(0o666),
        Just(0o777),
        Just(0o4755),
        Just(0o2775),
        Just(0o600),
        Just(0o000),
        0u32..0o7777
    ];
    let uids = prop_oneof![Just(0u32), Just(PI_UID), Just(1001), Just(65534)];
    (names, modes, uids).prop_map(|(rel, mode, uid)| Spec { rel, mode, uid })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_modes_and_owners_converge_in_one_apply(files in prop::collection::vec(spec(), 1..40), top_mode in 0u32..0o7777) {
        if !is_root() {
            eprintln!("SKIP random_modes_and_owners_converge_in_one_apply: needs root to chown (CI runs it as root)");
            return Ok(());
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        base_image(root);
        mkdir(root, "var/lib/node-red", 0o755, Some((PI_UID, PI_UID)));
        for f in &files {
            let path = format!("var/lib/node-red/{}", f.rel);
            if root.join(&path).exists() { continue; }
            write(root, &path, "x", 0o644, Some((f.uid, f.uid)));
            // chmod after chown: chown clears setuid bits.
            std::fs::set_permissions(root.join(&path), std::os::unix::fs::PermissionsExt::from_mode(f.mode)).unwrap();
        }
        std::fs::set_permissions(root.join("var/lib/node-red"), std::os::unix::fs::PermissionsExt::from_mode(top_mode)).unwrap();
        let check = apply_twice_then_check(root);
        prop_assert!(ids(&check).iter().all(|i| !i.starts_with("perms.")), "{}", check);
    }
}

#[test]
fn unprivileged_check_reports_what_it_could_not_inspect() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let root = dir.path().join("image");
    installer_state(&root);
    std::fs::set_permissions(
        root.join("home/pi/.node-red"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    // A copy nobody can execute wherever the checkout lives.
    let bin = dir.path().join("redwarden");
    std::fs::copy(env!("CARGO_BIN_EXE_redwarden"), &bin).unwrap();
    // `check --json` as nobody: findings (exit 1), never a failure.
    let check_as_nobody = || {
        let out = Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .arg(&bin)
            .arg("--root")
            .arg(&root)
            .args(["--json", "check"])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        json(&out)
    };
    let report = check_as_nobody();
    let skipped: Vec<String> = report["uninspected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            format!(
                "{} {}",
                u["what"].as_str().unwrap(),
                u["path"].as_str().unwrap_or("")
            )
        })
        .collect();
    for expected in [
        "password lock state /etc/shadow",
        "sudo rules /etc/sudoers",
        "folder contents /home/pi/.node-red",
    ] {
        assert!(
            skipped.iter().any(|s| s == expected),
            "{expected} not in {skipped:?}"
        );
    }
    // What it could read is still judged: the installer's unit runs Node-RED as pi.
    assert!(ids(&report).contains(&"user.service-login-user".to_string()));

    // A home folder closed to others (Debian's default 0700; ProtectHome= in the unit, where
    // the supervisor audits as the service user): reported as not inspected, not a failure.
    std::fs::set_permissions(
        root.join("home/pi"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let report = check_as_nobody();
    assert!(
        report["uninspected"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["what"] == "the userDir" && u["path"] == "/home/pi/.node-red"),
        "{report}"
    );
}

#[test]
fn the_shipped_sysusers_and_tmpfiles_agree_with_apply() {
    require_root!();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    base_image(root);
    for tool in ["systemd-sysusers", "systemd-tmpfiles"] {
        if Command::new(tool).arg("--version").output().is_err() {
            eprintln!("SKIP {tool}: not installed");
            return;
        }
    }
    let sysusers = Command::new("systemd-sysusers")
        .arg(format!("--root={}", root.display()))
        .arg(shipped.join("sysusers.d/redwarden.conf"))
        .output()
        .unwrap();
    assert!(
        sysusers.status.success(),
        "{}",
        String::from_utf8_lossy(&sysusers.stderr)
    );
    let tmpfiles = Command::new("systemd-tmpfiles")
        .arg("--create")
        .arg(format!("--root={}", root.display()))
        .arg(shipped.join("tmpfiles.d/redwarden.conf"))
        .output()
        .unwrap();
    assert!(
        tmpfiles.status.success(),
        "{}",
        String::from_utf8_lossy(&tmpfiles.stderr)
    );
    // What sysusers and tmpfiles made already satisfies apply's user and perms steps.
    let check = json(&run_on(root, &["--json", "check"]));
    let user_or_perms: Vec<String> = ids(&check)
        .into_iter()
        .filter(|i| i.starts_with("user.") || i.starts_with("perms."))
        .collect();
    assert_eq!(user_or_perms, Vec::<String>::new(), "{check}");
}

/// kill -9 at points spread over a whole adopting apply (20 runs): the image always boots one
/// of the two Node-REDs, never neither, and the next apply finishes the job.
#[test]
fn a_killed_adoption_always_leaves_one_node_red_to_boot() {
    require_root!();
    let adopting_image = || {
        let dir = tempfile::tempdir().unwrap();
        installer_state(dir.path());
        // A bigger node_modules, so the copy is a phase of its own.
        node_modules(
            dir.path(),
            "home/pi/.node-red/node_modules",
            30,
            20,
            Some((PI_UID, PI_UID)),
        );
        dir
    };
    let apply = |root: &Path| {
        Command::new(env!("CARGO_BIN_EXE_redwarden"))
            .args(["--root", root.to_str().unwrap(), "apply"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // How long a whole apply takes here, so the kills cover all of it.
    let reference = adopting_image();
    let started = std::time::Instant::now();
    apply(reference.path()).wait().unwrap();
    let whole = started.elapsed();

    let runs = 20u32;
    let mut killed_mid_way = 0;
    for run in 0..runs {
        let dir = adopting_image();
        let root = dir.path();
        let mut child = apply(root);
        std::thread::sleep(whole * run / runs);
        let _ = child.kill();
        let status = child.wait().unwrap();
        killed_mid_way += usize::from(status.code().is_none());

        let probation =
            root.join("etc/systemd/system/redwarden.service.d/60-adoption-probation.conf");
        let marked = std::fs::read_to_string(root.join("var/lib/node-red/.redwarden-adopted-from"))
            .is_ok_and(|from| from.trim() == "/home/pi/.node-red");
        let new_one_boots = enabled(root, "redwarden.service") && probation.exists() && marked;
        assert!(
            enabled(root, "nodered.service") || new_one_boots,
            "run {run}: neither Node-RED would boot (killed: {status})"
        );
        // The next apply completes what was cut.
        let check = apply_and_check(root);
        assert_eq!(ids(&check), vec!["adopt.probation"], "run {run}");
        assert!(
            enabled(root, "redwarden.service") && !enabled(root, "nodered.service"),
            "run {run}"
        );
    }
    println!(
        "a whole apply took {whole:?}; {killed_mid_way} of {runs} were killed before they finished"
    );
    assert!(
        killed_mid_way >= 10,
        "only {killed_mid_way} of {runs} applies were cut mid-way: the test proves little"
    );

    // The narrowest window, which the timed kills above reach only now and then (CI saw it
    // once at run 18 of 20): the probation recorded, the boot links not yet switched. Without
    // the drop-in too, as a revert cut off before it recorded the failure leaves it.
    let dir = adopting_image();
    let root = dir.path();
    let old_link = root.join(WANTS).join("nodered.service");
    let old_target = std::fs::read_link(&old_link).unwrap();
    apply(root).wait().unwrap();
    std::os::unix::fs::symlink(&old_target, &old_link).unwrap();
    std::fs::remove_file(root.join(WANTS).join("redwarden.service")).unwrap();
    let probation = root.join("etc/systemd/system/redwarden.service.d/60-adoption-probation.conf");
    std::fs::remove_file(&probation).unwrap();
    let check = apply_and_check(root);
    assert_eq!(
        ids(&check),
        vec!["adopt.probation"],
        "cut before the switch"
    );
    assert!(
        enabled(root, "redwarden.service")
            && !enabled(root, "nodered.service")
            && probation.exists(),
        "the next apply finishes the switch, under the probation's safety net"
    );
}

#[test]
fn passwd_stores_only_a_hash_and_enforces_the_login_through_the_overrides() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    installer_state(root);
    apply_twice_then_check(root);
    let out = run_on_with_stdin(root, &["passwd", "alice"], "correct horse battery\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let logins = root.join("var/lib/redwarden/logins.json");
    let meta = std::fs::metadata(&logins).unwrap();
    assert_eq!((meta.mode() & 0o777, meta.uid()), (0o600, 0), "root only");
    let text = std::fs::read_to_string(&logins).unwrap();
    assert!(!text.contains("correct horse"), "never the password itself");
    let stored: serde_json::Value = serde_json::from_str(&text).unwrap();
    let hash = stored[0]["hash"].as_str().unwrap();
    assert!(bcrypt::verify("correct horse battery", hash).unwrap());
    assert!(hash.starts_with("$2b$10$"), "{hash}");
    let overrides = root.join("etc/redwarden/nodered.json");
    let meta = std::fs::metadata(&overrides).unwrap();
    let nodered_gid = group_gid(root, "nodered");
    assert_eq!(
        (meta.mode() & 0o777, meta.uid(), meta.gid()),
        (0o640, 0, nodered_gid)
    );
    let enforced: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&overrides).unwrap()).unwrap();
    assert_eq!(enforced["adminAuth"]["users"][0]["username"], "alice");
    assert_eq!(enforced["adminAuth"]["users"][0]["password"], hash);
    assert_eq!(enforced["diagnostics.enabled"], false);
    // Too short, and a bad name: refused, nothing changed.
    let short = run_on_with_stdin(root, &["passwd", "alice"], "short\n");
    assert_eq!(short.status.code(), Some(64));
    assert_eq!(std::fs::read_to_string(&logins).unwrap(), text);
    assert_eq!(
        run_on_with_stdin(root, &["passwd", "a b"], "long enough pw\n")
            .status
            .code(),
        Some(64)
    );
}

fn run_on_with_stdin(root: &Path, args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_redwarden"))
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A refused call may exit before it reads: a closed pipe is its answer, not an error here.
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    child.wait_with_output().unwrap()
}

fn group_gid(root: &Path, name: &str) -> u32 {
    std::fs::read_to_string(root.join("etc/group"))
        .unwrap()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f[0] == name).then(|| f[2].parse().unwrap())
        })
        .unwrap()
}
