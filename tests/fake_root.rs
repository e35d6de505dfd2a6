//! Tier 2: the binary against image roots in temp folders. Nothing here needs root; tests that
//! chown to other users live in `privileged.rs`.

mod common;

use common::*;
use std::path::Path;

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn bad_configs_exit_78_naming_file_line_and_column_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    installer_state(&root);
    let cases = [
        (
            "[service]\nuser = \"nodered\"\nsudo = true\n",
            ":3:1: unknown field `sudo`",
        ),
        (
            "[nodered]\nport = 70000\n",
            ":2:8: invalid value: integer `70000`",
        ),
        (
            "[nodered]\nuser_dir = \"relative/dir\"\n",
            ":2:12: `relative/dir` must be an absolute path",
        ),
        (
            "[service]\nhardware = [\"gpio\", \"disk\"]\n",
            ":2:21: unknown variant `disk`",
        ),
        (
            "[service]\nuser = 5\n",
            ":2:8: invalid type: integer `5`, expected a string",
        ),
        ("[nodered\nport = 1\n", ":1:9:"),
    ];
    for (text, expected) in cases {
        let config = dir.path().join("redwarden.toml");
        std::fs::write(&config, text).unwrap();
        let before = tree_digest(&root);
        for command in ["apply", "check", "config"] {
            let out = run_on(&root, &["--config", config.to_str().unwrap(), command]);
            assert_eq!(
                out.status.code(),
                Some(78),
                "{command} with {text:?}: {}",
                stderr(&out)
            );
            let want = format!("{}{expected}", config.display());
            assert!(
                stderr(&out).contains(&want),
                "{command}: stderr {:?} lacks {want:?}",
                stderr(&out)
            );
        }
        assert_unchanged(&before, &root, "a bad config");
    }
}

#[test]
fn the_config_inside_the_root_is_used_and_a_missing_one_means_defaults() {
    let dir = tempfile::tempdir().unwrap();
    base_image(dir.path());
    let defaults = run_on(dir.path(), &["config"]);
    assert_eq!(defaults.status.code(), Some(0));
    let text = String::from_utf8(defaults.stdout).unwrap();
    assert!(
        text.contains("user = \"nodered\"") && text.contains("user_dir = \"/var/lib/node-red\""),
        "{text}"
    );

    write(
        dir.path(),
        "etc/redwarden/redwarden.toml",
        "[service]\nuser = \"flows\"\n",
        0o644,
        is_root().then_some((0, 0)),
    );
    let custom = run_on(dir.path(), &["config"]);
    assert!(String::from_utf8(custom.stdout)
        .unwrap()
        .contains("user = \"flows\""));

    let example = run_on(dir.path(), &["config", "--example"]);
    assert_eq!(example.status.code(), Some(0));
    assert!(String::from_utf8(example.stdout)
        .unwrap()
        .starts_with("# /etc/redwarden/redwarden.toml"));
}

#[test]
fn usage_errors_exit_64() {
    assert_eq!(redwarden(&["frobnicate"]).status.code(), Some(64));
    assert_eq!(
        redwarden(&["--root", "/nonexistent/image", "check"])
            .status
            .code(),
        Some(64)
    );
    assert_eq!(redwarden(&["--help"]).status.code(), Some(0));
    let help = String::from_utf8(redwarden(&["--help"]).stdout).unwrap();
    for listed in ["check", "apply", "config", "run", "status"] {
        assert!(help.contains(listed), "{help}");
    }
    // `run` works on the live system only: an image has nothing to supervise.
    let image = tempfile::tempdir().unwrap();
    let run = redwarden(&["--root", image.path().to_str().unwrap(), "run"]);
    assert_eq!(run.status.code(), Some(64), "{}", stderr(&run));
}

#[test]
fn status_without_a_supervisor_says_so() {
    if std::path::Path::new(redwarden::supervise::status::STATUS_FILE).exists() {
        eprintln!("SKIP status_without_a_supervisor_says_so: a supervisor runs on this machine");
        return;
    }
    let out = redwarden(&["status"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("`redwarden run` is not running"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_malformed_passwd_is_a_clear_failure_that_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    installer_state(dir.path());
    write(
        dir.path(),
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\npi:x:1000\n",
        0o644,
        is_root().then_some((0, 0)),
    );
    let before = tree_digest(dir.path());
    for command in ["check", "apply"] {
        let out = run_on(dir.path(), &[command]);
        assert_eq!(out.status.code(), Some(2), "{command}");
        let want = format!(
            "{}:2: expected 7 fields, found 3",
            dir.path()
                .canonicalize()
                .unwrap()
                .join("etc/passwd")
                .display()
        );
        assert!(stderr(&out).contains(&want), "{command}: {}", stderr(&out));
    }
    assert_unchanged(&before, dir.path(), "a malformed passwd");
}

#[test]
fn check_on_the_installer_state_reports_the_known_problems_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    installer_state(dir.path());
    let before = tree_digest(dir.path());
    let out = run_on(dir.path(), &["--json", "check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    let ids = ids(&report);
    for expected in [
        "user.missing",
        "user.group-missing",
        "user.service-login-user",
        "user.service-sudo",
        "perms.userdir-missing",
        "perms.settings-writable",
        "perms.credentials-readable",
        "perms.flows-readable",
    ] {
        assert!(
            ids.contains(&expected.to_string()),
            "{expected} missing from {ids:?}"
        );
    }
    let cred = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/home/pi/.node-red/flows_cred.json")
        .expect("flows_cred.json is reported under its path in the image");
    assert_eq!(cred["severity"], "high");
    assert_eq!(cred["fixable"], true);
    assert_unchanged(&before, dir.path(), "check");
}

#[test]
fn a_symlinked_user_dir_is_refused_and_its_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    base_image(root);
    let owner = is_root().then_some((0, 0));
    mkdir(root, "srv/target", 0o777, owner);
    write(root, "srv/target/flows_cred.json", "{}", 0o666, owner);
    std::os::unix::fs::symlink("/srv/target", root.join("var/lib/node-red")).unwrap();
    let out = run_on(root, &["--json", "check"]);
    let report = json(&out);
    assert!(ids(&report).contains(&"perms.userdir-symlink".to_string()));
    let before = mode_owner(&root.join("srv/target/flows_cred.json"));
    if is_root() {
        let applied = run_on(root, &["apply"]);
        assert_eq!(
            applied.status.code(),
            Some(1),
            "the refused userDir remains a finding"
        );
    }
    assert_eq!(before, mode_owner(&root.join("srv/target/flows_cred.json")));
    assert_eq!(mode_owner(&root.join("srv/target")).0, 0o777);
}

#[test]
fn unprivileged_check_of_the_live_system_works_and_says_what_it_skipped() {
    // The README's first command: it must run on any Linux and never fail outright.
    let out = redwarden(&["--json", "check"]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    let report = json(&out);
    assert!(report["findings"].is_array() && report["uninspected"].is_array());
    assert_eq!(report["root"], "/");
}

#[test]
fn apply_refuses_an_etc_that_others_can_write_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    installer_state(dir.path());
    std::fs::set_permissions(
        dir.path().join("etc"),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let before = tree_digest(dir.path());
    let out = run_on(dir.path(), &["apply"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let want = format!(
        "{}: the folder is writable by group or others",
        dir.path().canonicalize().unwrap().join("etc").display()
    );
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));
    assert_unchanged(&before, dir.path(), "a refused apply");
}

/// The files in systemd/ are what packagers install: they must be exactly what `redwarden unit
/// --write` generates for a Raspberry Pi set up by the official installer (regenerate them with
/// `REDWARDEN_BLESS=1 cargo test --test fake_root shipped`).
#[test]
fn the_shipped_systemd_files_are_the_generated_ones() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    installer_state(&root);
    write(
        &root,
        "usr/bin/redwarden",
        "",
        0o755,
        is_root().then_some((0, 0)),
    );
    let out_dir = dir.path().join("out");
    let out = run_on(&root, &["unit", "--write", out_dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    let generated = String::from_utf8(out.stdout).unwrap();
    assert!(generated.lines().count() >= 5, "{generated}");
    for line in generated.lines() {
        let relative = Path::new(line).strip_prefix(&out_dir).unwrap();
        let fresh = std::fs::read_to_string(line).unwrap();
        let path = shipped.join(relative);
        if std::env::var_os("REDWARDEN_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &fresh).unwrap();
        }
        let kept = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            kept,
            fresh,
            "systemd/{} is stale: regenerate with REDWARDEN_BLESS=1",
            relative.display()
        );
    }
}
