//! `redwarden check --only npm` on the real Node-RED from npm: redwarden describes the installed
//! tree to npm as a lockfile, and npm's answer (a report, or why it could not ask the registry)
//! becomes one finding for that folder. A wrong lockfile shows as npm refusing it (ENOLOCK, a
//! parse error) or as a package count that differs from what is on disk.

use std::path::{Path, PathBuf};

mod common;

/// The package folders under a node_modules folder, counted the way npm lays them out: a
/// folder with a package.json that has a version, directly in node_modules or in an @scope
/// folder there, and again in each package's own node_modules.
fn installed_packages(modules: &Path) -> usize {
    let mut count = 0;
    let mut stack = vec![modules.to_path_buf()];
    while let Some(modules) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&modules) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !entry.file_type().is_ok_and(|t| t.is_dir()) || name.starts_with('.') {
                continue;
            }
            if name.starts_with('@') {
                dirs.extend(
                    std::fs::read_dir(entry.path())
                        .into_iter()
                        .flatten()
                        .flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|e| e.path()),
                );
            } else {
                dirs.push(entry.path());
            }
        }
        for dir in dirs {
            let versioned = std::fs::read(dir.join("package.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|p| p["version"].is_string());
            if versioned {
                count += 1;
                stack.push(dir.join("node_modules"));
            }
        }
    }
    count
}

#[test]
fn the_installed_node_red_tree_goes_to_npm_and_its_answer_becomes_a_finding() {
    let Some((install, node)) = common::test_nodered("npm audit") else {
        return;
    };
    // tests/run.sh installs Node-RED into a prefix of its own, as `npm install node-red` does:
    // its dependencies sit beside it, and the prefix is the project that is audited.
    let project = install
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    let expected = installed_packages(&project.join("node_modules"));
    assert!(
        expected > 100,
        "only {expected} packages under {}",
        project.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let user_dir = dir.path().join("userdir");
    std::fs::create_dir(&user_dir).unwrap();
    let config = dir.path().join("redwarden.toml");
    std::fs::write(
        &config,
        format!(
            "[nodered]\nuser_dir = {:?}\ninstall_dir = {:?}\nnode = {:?}\n",
            user_dir, install, node
        ),
    )
    .unwrap();
    let output = common::redwarden(&[
        "--config",
        config.to_str().unwrap(),
        "--json",
        "check",
        "--only",
        "npm",
    ]);
    let report = common::json(&output);
    let findings = report["findings"].as_array().unwrap();
    // The empty userDir has nothing installed, so only the Node-RED project is audited.
    assert_eq!(findings.len(), 1, "{report:#}");
    let finding = &findings[0];
    let message = finding["message"].as_str().unwrap();
    assert_eq!(finding["path"].as_str(), project.to_str(), "{message}");
    assert!(
        message.starts_with(&format!("npm audit of the {expected} packages in")),
        "{message}"
    );
    match finding["id"].as_str().unwrap() {
        "npm.advisories" => assert!(message.contains(" (") && message.contains("update")),
        "npm.audit-unavailable" => {
            // What stopped it must be the registry (unreachable, or refusing the audit
            // endpoint, as this workplace's registry proxy does), not npm refusing the tree.
            for wrong in ["ENOLOCK", "EJSONPARSE", "no JSON", "no npm", "metadata"] {
                assert!(!message.contains(wrong), "{message}");
            }
            assert_eq!(finding["severity"], "info", "{message}");
        }
        other => panic!("unexpected finding {other}: {message}"),
    }
    eprintln!("npm audit of {expected} packages: {message}");
}
