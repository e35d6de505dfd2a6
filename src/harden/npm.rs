//! `npm audit` of the packages Node-RED loads: the nodes installed in the userDir and Node-RED
//! itself with its dependencies. A check only: it asks the registry, so apply (on the boot path)
//! never runs it, and a device that cannot reach the registry gets an info finding saying so.
//!
//! npm audits a lockfile, and neither a global Node-RED install nor a userDir whose nodes were
//! installed without one has it; a lockfile that exists may also disagree with what is installed.
//! So the installed tree itself is described: every package.json under node_modules becomes an
//! entry of a lockfile written into a temp folder, with the audited package.json beside it, and
//! npm audits that (`--package-lock-only`). The audited folders are only read, never written,
//! and npm runs unprivileged (the service user), without the userDir's .npmrc.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::host::node::{self, Limits, TempDir};
use crate::host::{fs, Root};
use crate::report::{Finding, Severity, Uninspected};

/// npm needs more heap than a settings.js, and the registry its time; the report of a tree with
/// many advisories runs to megabytes.
const LIMITS: Limits = Limits {
    wall: Duration::from_secs(60),
    heap_mib: 512,
    stdout_bytes: 16 << 20,
};

/// Bounds on the walk of a tree the service user can write: a planted maze stops here.
const MAX_PACKAGES: usize = 20_000;
const MAX_DEPTH: usize = 24;
const MAX_PACKAGE_JSON: u64 = 1 << 20;

/// Advisory counts by severity, as npm names them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub critical: u64,
    pub high: u64,
    pub moderate: u64,
    pub low: u64,
    pub info: u64,
}

/// What npm audit said of one folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The report: counts, and the vulnerable packages, worst first.
    Report {
        counts: Counts,
        packages: Vec<String>,
    },
    /// It could not run or did not answer: why.
    Unavailable(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audited {
    /// The folder whose node_modules was audited.
    pub dir: PathBuf,
    pub packages: usize,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    pub audited: Vec<Audited>,
    pub uninspected: Vec<Uninspected>,
}

pub fn observe(root: &Root, config: &Config) -> Result<Observed, crate::Error> {
    let mut observed = Observed::default();
    let accounts = crate::host::accounts::AccountDb::load(root)?;
    let in_use = super::nodered::in_use(root, config, &accounts)?;
    let binaries = super::install::find_binaries(root, config, &[in_use.user_dir.as_path()]);
    let mut dirs = vec![in_use.user_dir.clone()];
    dirs.extend(binaries.nodered.as_deref().map(nodered_project));
    dirs.dedup();
    if !root.is_live() {
        observed.uninspected.push(Uninspected::new(
            "npm audit",
            "it asks the registry about the installed packages, on the running system only",
        ));
        return Ok(observed);
    }
    let user = super::nodered::evaluating_user(config, &accounts);
    for dir in dirs {
        let host_dir = root.resolve(&dir)?;
        let tree = match describe_tree(&host_dir) {
            Ok(Some(tree)) => tree,
            Ok(None) => continue,
            Err(e) if e.is_permission_denied() => {
                observed
                    .uninspected
                    .push(Uninspected::new("npm audit", e.to_string()).at(&dir));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let packages = tree.packages;
        let outcome = match binaries.node.as_deref() {
            None => Outcome::Unavailable("no node to run npm with".into()),
            Some(node) => match find_npm(node) {
                None => Outcome::Unavailable(format!("no npm beside {}", node.display())),
                Some(npm) => audit(node, &npm, &tree, user)
                    .unwrap_or_else(|e| Outcome::Unavailable(e.to_string())),
            },
        };
        observed.audited.push(Audited {
            dir,
            packages,
            outcome,
        });
    }
    Ok(observed)
}

pub fn plan(observed: &Observed) -> super::Plan {
    let mut plan = super::Plan {
        uninspected: observed.uninspected.clone(),
        ..super::Plan::default()
    };
    for audited in &observed.audited {
        let what = format!("npm audit of the {} packages in", audited.packages);
        match &audited.outcome {
            Outcome::Unavailable(why) => plan.findings.push(
                Finding::new(
                    "npm.audit-unavailable",
                    Severity::Info,
                    format!("{what} {} could not run: {why}", audited.dir.display()),
                    false,
                )
                .at(&audited.dir),
            ),
            Outcome::Report { counts, packages } => {
                let Some(severity) = worst(counts) else {
                    continue;
                };
                let mut named = packages.clone();
                let more = named.len().saturating_sub(8);
                named.truncate(8);
                plan.findings.push(
                    Finding::new(
                        "npm.advisories",
                        severity,
                        format!(
                            "{what} {}: {} ({}{}); update them (the editor's Manage palette, or `npm update` in that folder as the service user)",
                            audited.dir.display(),
                            summary(counts),
                            named.join(", "),
                            if more > 0 { format!(" and {more} more") } else { String::new() },
                        ),
                        false,
                    )
                    .at(&audited.dir),
                );
            }
        }
    }
    plan
}

fn worst(counts: &Counts) -> Option<Severity> {
    [
        (counts.critical, Severity::Critical),
        (counts.high, Severity::High),
        (counts.moderate, Severity::Medium),
        (counts.low, Severity::Low),
        (counts.info, Severity::Info),
    ]
    .into_iter()
    .find(|(n, _)| *n > 0)
    .map(|(_, severity)| severity)
}

fn summary(counts: &Counts) -> String {
    [
        (counts.critical, "critical"),
        (counts.high, "high"),
        (counts.moderate, "moderate"),
        (counts.low, "low"),
        (counts.info, "info"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, name)| format!("{n} {name}"))
    .collect::<Vec<_>>()
    .join(", ")
}

/// The project folder a Node-RED install belongs to: the prefix whose node_modules holds it
/// (`npm install node-red` in a folder, where its dependencies sit beside it), or the node-red
/// package itself (a global install, which nests them).
fn nodered_project(nodered: &Path) -> PathBuf {
    nodered
        .parent()
        .filter(|modules| modules.file_name().is_some_and(|n| n == "node_modules"))
        .and_then(Path::parent)
        .filter(|prefix| prefix.join("package.json").is_file())
        .unwrap_or(nodered)
        .to_path_buf()
}

/// The installed tree of a folder, as a package.json and a lockfile for npm.
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    pub package_json: Value,
    pub lockfile: Value,
    pub packages: usize,
}

/// Describes what is installed under `dir`; None when it has no package.json or nothing is
/// installed. Symlinked packages (`npm link`, local folders) are not followed: what they hold is
/// not from the registry.
pub fn describe_tree(dir: &Path) -> Result<Option<Tree>, fs::FsError> {
    let Some(root_package) = read_package(&dir.join("package.json"))? else {
        return Ok(None);
    };
    let mut entries = Map::new();
    let mut stack = vec![(dir.join("node_modules"), String::new(), 0)];
    while let Some((modules, prefix, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            continue;
        }
        for (name, path) in package_dirs(&modules)? {
            if entries.len() >= MAX_PACKAGES {
                break;
            }
            let Some(package) = read_package(&path.join("package.json"))? else {
                continue;
            };
            let Some(version) = package.get("version").and_then(Value::as_str) else {
                continue;
            };
            let key = format!("{prefix}node_modules/{name}");
            let mut entry = Map::new();
            entry.insert("version".into(), json!(version));
            for field in ["dependencies", "optionalDependencies"] {
                if let Some(deps) = package.get(field).filter(|d| d.is_object()) {
                    entry.insert(field.into(), deps.clone());
                }
            }
            entries.insert(key.clone(), Value::Object(entry));
            stack.push((path.join("node_modules"), format!("{key}/"), depth + 1));
        }
    }
    if entries.is_empty() {
        return Ok(None);
    }
    let mut top = Map::new();
    for field in ["name", "version", "dependencies", "optionalDependencies"] {
        if let Some(value) = root_package.get(field) {
            top.insert(field.into(), value.clone());
        }
    }
    let packages = entries.len();
    let mut all = Map::new();
    all.insert(String::new(), Value::Object(top.clone()));
    all.extend(entries);
    Ok(Some(Tree {
        package_json: Value::Object(top),
        lockfile: json!({ "lockfileVersion": 3, "requires": true, "packages": all }),
        packages,
    }))
}

/// The package folders in a node_modules folder, scoped ones (`@scope/name`) included, by name.
fn package_dirs(modules: &Path) -> Result<Vec<(String, PathBuf)>, fs::FsError> {
    let mut found = Vec::new();
    for (name, path) in fs::subdirs(modules)? {
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('@') {
            for (inner, path) in fs::subdirs(&path)? {
                if let Some(inner) = inner.to_str() {
                    found.push((format!("{name}/{inner}"), path));
                }
            }
        } else if !name.starts_with('.') {
            found.push((name.to_string(), path));
        }
    }
    Ok(found)
}

/// A package.json as JSON; None when absent, a symlink, too large or not a JSON object (npm
/// would not load that package either).
fn read_package(path: &Path) -> Result<Option<Value>, fs::FsError> {
    let bytes = match fs::read_nofollow_upto(path, MAX_PACKAGE_JSON) {
        Ok(bytes) => bytes,
        Err(fs::FsError::Symlink { .. }) => None,
        Err(e) => return Err(e),
    };
    Ok(bytes
        .filter(|b| b.len() as u64 <= MAX_PACKAGE_JSON)
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .filter(Value::is_object))
}

/// npm's CLI script beside node (`bin/npm`, a link to npm-cli.js in every layout: the official
/// tarball, NodeSource and Debian), run with that node so that no PATH lookup is involved.
fn find_npm(node: &Path) -> Option<PathBuf> {
    let npm = std::fs::canonicalize(node.parent()?.join("npm")).ok()?;
    (npm.extension().is_some_and(|e| e == "js") && npm.is_file()).then_some(npm)
}

/// Runs npm audit on a described tree, in a temp folder of the evaluating user's.
fn audit(
    node: &Path,
    npm: &Path,
    tree: &Tree,
    user: Option<(u32, u32)>,
) -> std::io::Result<Outcome> {
    let temp = TempDir::new(0o700)?;
    let write = |name: &str, value: &Value| {
        std::fs::write(temp.path().join(name), serde_json::to_vec(value)?)
    };
    write("package.json", &tree.package_json)?;
    write("package-lock.json", &tree.lockfile)?;
    if let Some((uid, gid)) = user {
        use rustix::fs::{chown, Gid, Uid};
        for path in [
            temp.path().to_path_buf(),
            temp.path().join("package.json"),
            temp.path().join("package-lock.json"),
        ] {
            chown(&path, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
        }
    }
    let cache = temp.path().join("cache");
    let args: Vec<&std::ffi::OsStr> = vec![
        npm.as_os_str(),
        "audit".as_ref(),
        "--json".as_ref(),
        "--package-lock-only".as_ref(),
        "--cache".as_ref(),
        cache.as_os_str(),
        "--logs-max=0".as_ref(),
        "--no-update-notifier".as_ref(),
        "--fetch-retries=0".as_ref(),
        "--fetch-timeout=30000".as_ref(),
    ];
    let outcome = node::run(node, &args, temp.path(), user, "", LIMITS)?;
    Ok(if outcome.timed_out {
        Outcome::Unavailable(format!(
            "no answer within {} s (is the registry reachable?)",
            LIMITS.wall.as_secs()
        ))
    } else {
        parse_report(&outcome.stdout).unwrap_or_else(|why| {
            Outcome::Unavailable(format!(
                "{why} (exit {}; {})",
                outcome.code.map_or("by a signal".into(), |c| c.to_string()),
                outcome.stderr_tail
            ))
        })
    })
}

/// Reads `npm audit --json` (report version 2, npm 7 and later, or the advisories of npm 6),
/// or the error npm printed as JSON instead.
pub fn parse_report(stdout: &[u8]) -> Result<Outcome, String> {
    let report: Value =
        serde_json::from_slice(stdout).map_err(|e| format!("npm printed no JSON report ({e})"))?;
    if let Some(error) = report.get("error") {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").trim().to_string();
        let summary = text(error.get("summary"));
        let message = text(report.get("message"));
        let code = text(error.get("code"));
        let why = [summary, message]
            .into_iter()
            .find(|s| !s.is_empty())
            .unwrap_or_else(|| "npm audit failed".into());
        return Ok(Outcome::Unavailable(if code.is_empty() {
            why
        } else {
            format!("{code}: {why}")
        }));
    }
    let totals = report
        .pointer("/metadata/vulnerabilities")
        .and_then(Value::as_object)
        .ok_or("npm's report has no metadata.vulnerabilities")?;
    let count = |name: &str| totals.get(name).and_then(Value::as_u64).unwrap_or(0);
    let counts = Counts {
        critical: count("critical"),
        high: count("high"),
        moderate: count("moderate"),
        low: count("low"),
        info: count("info"),
    };
    let rank = |severity: &str| match severity {
        "critical" => 0,
        "high" => 1,
        "moderate" => 2,
        "low" => 3,
        _ => 4,
    };
    // Version 2 lists vulnerable packages; npm 6 lists advisories, each naming its module.
    let mut named: BTreeMap<String, u8> = BTreeMap::new();
    let listed = report
        .get("vulnerabilities")
        .or_else(|| report.get("advisories"))
        .and_then(Value::as_object);
    for (key, entry) in listed.into_iter().flatten() {
        let name = entry
            .get("name")
            .or_else(|| entry.get("module_name"))
            .and_then(Value::as_str)
            .unwrap_or(key);
        let severity = rank(entry.get("severity").and_then(Value::as_str).unwrap_or(""));
        let best = named.entry(name.to_string()).or_insert(severity);
        *best = (*best).min(severity);
    }
    let mut packages: Vec<(u8, String)> = named.into_iter().map(|(n, r)| (r, n)).collect();
    packages.sort();
    Ok(Outcome::Report {
        counts,
        packages: packages.into_iter().map(|(_, n)| n).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of npm's own JSON reporter (npm-audit-report's snapshot
    /// `test/reporters/json.js TAP all-severity-levels.json`), cut to what is read here.
    const REPORT_V2: &str = r#"{
      "auditReportVersion": 2,
      "vulnerabilities": {
        "handlebars": {"name": "handlebars", "severity": "critical", "isDirect": false,
          "via": [{"source": 755, "title": "Prototype Pollution", "severity": "critical"}, "optimist"],
          "effects": [], "range": "<=4.7.3", "nodes": ["node_modules/handlebars"], "fixAvailable": true},
        "minimist": {"name": "minimist", "severity": "low", "isDirect": false, "via": [],
          "effects": ["optimist"], "range": "<0.2.1", "nodes": ["node_modules/minimist"], "fixAvailable": true},
        "optimist": {"name": "optimist", "severity": "high", "isDirect": false, "via": ["minimist"],
          "effects": ["handlebars"], "range": ">=0.6.0", "nodes": ["node_modules/optimist"], "fixAvailable": true}
      },
      "metadata": {
        "vulnerabilities": {"info": 0, "low": 1, "moderate": 0, "high": 1, "critical": 1, "total": 3},
        "dependencies": {"prod": 10, "dev": 0, "optional": 0, "peer": 0, "peerOptional": 0, "total": 9}
      }
    }"#;

    #[test]
    fn a_report_counts_by_severity_and_names_the_worst_packages_first() {
        let outcome = parse_report(REPORT_V2.as_bytes()).unwrap();
        let Outcome::Report { counts, packages } = &outcome else {
            panic!("{outcome:?}");
        };
        assert_eq!((counts.critical, counts.high, counts.low), (1, 1, 1));
        assert_eq!(packages, &["handlebars", "optimist", "minimist"]);
        let plan = plan(&Observed {
            audited: vec![Audited {
                dir: "/var/lib/node-red".into(),
                packages: 10,
                outcome,
            }],
            uninspected: Vec::new(),
        });
        assert_eq!(plan.findings.len(), 1);
        let finding = &plan.findings[0];
        assert_eq!(
            (finding.id, finding.severity),
            ("npm.advisories", Severity::Critical)
        );
        assert!(
            finding
                .message
                .contains("1 critical, 1 high, 1 low (handlebars, optimist, minimist)"),
            "{}",
            finding.message
        );
    }

    #[test]
    fn a_clean_report_is_no_finding_and_an_error_is_an_info_naming_it() {
        let clean = r#"{"auditReportVersion":2,"vulnerabilities":{},"metadata":{"vulnerabilities":{"info":0,"low":0,"moderate":0,"high":0,"critical":0,"total":0}}}"#;
        let offline = r#"{"message":"request to https://registry.npmjs.org/-/npm/v1/security/advisories/bulk failed, reason: getaddrinfo ENOTFOUND registry.npmjs.org","errno":"ENOTFOUND","code":"ENOTFOUND","error":{"summary":"","detail":""}}"#;
        let audited = |json: &str| Audited {
            dir: "/var/lib/node-red".into(),
            packages: 3,
            outcome: parse_report(json.as_bytes()).unwrap(),
        };
        let plan = plan(&Observed {
            audited: vec![audited(clean), audited(offline)],
            uninspected: Vec::new(),
        });
        assert_eq!(plan.findings.len(), 1, "{:?}", plan.findings);
        assert_eq!(plan.findings[0].id, "npm.audit-unavailable");
        assert_eq!(plan.findings[0].severity, Severity::Info);
        assert!(plan.findings[0].message.contains("getaddrinfo ENOTFOUND"));
        assert!(parse_report(b"npm ERR! not json").is_err());
        assert!(parse_report(br#"{"auditReportVersion":2}"#).is_err());
    }

    #[test]
    fn the_installed_tree_becomes_a_lockfile_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let put = |rel: &str, json: &str| {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, json).unwrap();
        };
        put(
            "package.json",
            r#"{"name":"node-red-project","version":"0.0.1","dependencies":{"node-red-node-a":"~1.0.0","@scope/b":"2"}}"#,
        );
        put(
            "node_modules/node-red-node-a/package.json",
            r#"{"name":"node-red-node-a","version":"1.0.3","dependencies":{"lodash":"^4"}}"#,
        );
        put(
            "node_modules/node-red-node-a/node_modules/lodash/package.json",
            r#"{"name":"lodash","version":"4.17.20"}"#,
        );
        put(
            "node_modules/@scope/b/package.json",
            r#"{"name":"@scope/b","version":"2.0.0"}"#,
        );
        put("node_modules/broken/package.json", "{ not json");
        put("node_modules/.bin/package.json", r#"{"version":"9"}"#);
        std::os::unix::fs::symlink("/usr", dir.path().join("node_modules/linked")).unwrap();
        let tree = describe_tree(dir.path()).unwrap().unwrap();
        let packages = tree.lockfile["packages"].as_object().unwrap();
        let keys: Vec<&str> = packages.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "",
                "node_modules/@scope/b",
                "node_modules/node-red-node-a",
                "node_modules/node-red-node-a/node_modules/lodash"
            ]
        );
        assert_eq!(tree.packages, 3);
        assert_eq!(
            packages["node_modules/node-red-node-a/node_modules/lodash"]["version"],
            "4.17.20"
        );
        assert_eq!(tree.package_json["name"], "node-red-project");
        let empty = tempfile::tempdir().unwrap();
        std::fs::write(empty.path().join("package.json"), "{}").unwrap();
        assert_eq!(describe_tree(empty.path()).unwrap(), None);
    }
}
