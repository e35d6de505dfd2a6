//! The Node-RED policy audit: what settings.js says about logins, hashes, TLS, modules and
//! exposure, what the flows do (exec, child_process, open HTTP routes, credentials in plain
//! text), and whether node and Node-RED have reached end of life or carry known advisories.
//!
//! settings.js is JavaScript that runs when loaded, so it is never loaded as root: a small
//! harness runs it under node as the service user (nobody when that user does not exist yet),
//! with a wall-clock, heap and output limit, and prints a flat description that is parsed
//! strictly. A settings.js that throws, loops, exits, floods or prints garbage is a finding.
//! A settings.js written to lie to the harness can; the policy redwarden enforces does not rely
//! on what it says.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::config::Config;
use crate::host::node::{self, Limits, Outcome};
use crate::host::{fs, paths, Root};
use crate::report::{Finding, Severity, Uninspected};

const HARNESS: &str = include_str!("settings_harness.js");

const LIMITS: Limits = Limits {
    wall: Duration::from_secs(10),
    heap_mib: 64,
    stdout_bytes: 256 * 1024,
};

/// A value the harness reports.
pub type Described = BTreeMap<String, Value>;

/// What came of evaluating settings.js.
#[derive(Debug, Clone, PartialEq)]
pub enum Evaluation {
    Described(Described),
    /// It could not be described: why, for the finding.
    Failed(String),
}

/// The keys the harness always prints; a description without them is not trusted.
const REQUIRED: &[&str] = &[
    "type",
    "uiHost",
    "https",
    "credentialSecret",
    "adminAuth",
    "httpNodeAuth",
    "functionExternalModules",
    "telemetry.enabled",
];

/// Reads the harness's output: the last line that starts with the nonce, as one flat JSON
/// object of scalars. Anything else is refused.
pub fn parse_description(outcome: &Outcome, nonce: &str) -> Evaluation {
    if outcome.timed_out {
        return Evaluation::Failed(format!(
            "it did not finish within {} s (an endless loop?)",
            LIMITS.wall.as_secs()
        ));
    }
    if outcome.flooded {
        return Evaluation::Failed(format!(
            "it printed more than {} KiB",
            LIMITS.stdout_bytes / 1024
        ));
    }
    let text = String::from_utf8_lossy(&outcome.stdout);
    let Some(line) = text
        .lines()
        .filter_map(|l| l.strip_prefix(nonce))
        .next_back()
    else {
        let how = match outcome.code {
            Some(code) => format!("it exited with code {code} before it could be described"),
            None => "it was killed before it could be described".into(),
        };
        let tail = if outcome.stderr_tail.is_empty() {
            String::new()
        } else {
            format!(": {}", outcome.stderr_tail)
        };
        return Evaluation::Failed(format!("{how}{tail}"));
    };
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(line) else {
        return Evaluation::Failed("the harness's description is not a JSON object".into());
    };
    if let Some(Value::String(error)) = object.get("error") {
        return Evaluation::Failed(format!("loading it throws: {error}"));
    }
    if object.values().any(|v| v.is_object() || v.is_array()) {
        return Evaluation::Failed("the harness's description has nested values".into());
    }
    if object.get("type").and_then(Value::as_str) != Some("object") {
        return Evaluation::Failed(format!(
            "it exports {} instead of an object",
            object
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("nothing")
        ));
    }
    if let Some(missing) = REQUIRED.iter().find(|k| !object.contains_key(**k)) {
        return Evaluation::Failed(format!("the harness's description lacks `{missing}`"));
    }
    Evaluation::Described(object.into_iter().collect())
}

/// Evaluates settings.js with node as `user`.
fn evaluate(node: &Path, settings: &Path, user: Option<(u32, u32)>) -> Result<Evaluation, String> {
    let dir = node::TempDir::new(0o755).map_err(|e| format!("a temp folder: {e}"))?;
    let harness = dir.path().join("harness.js");
    std::fs::write(&harness, HARNESS).map_err(|e| format!("{}: {e}", harness.display()))?;
    let mut random = [0u8; 16];
    let _ = rustix::rand::getrandom(&mut random, rustix::rand::GetRandomFlags::empty());
    let nonce: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let nonce = format!("redwarden-{nonce}:");
    let run = |file: &Path| {
        node::run(
            node,
            &[harness.as_os_str(), file.as_os_str()],
            dir.path(),
            user,
            &format!("{nonce}\n"),
            LIMITS,
        )
        .map(|outcome| parse_description(&outcome, &nonce))
        .map_err(|e| format!("running {}: {e}", node.display()))
    };
    match run(settings)? {
        // Another installation's settings.js (pi's, under a home folder the service user cannot
        // enter): a copy of it is evaluated instead, so relative requires may fail.
        Evaluation::Failed(why) if why.contains("EACCES") || why.contains("permission denied") => {
            let copy = dir.path().join("settings.js");
            let text = fs::read_nofollow(settings)
                .map_err(|e| e.to_string())?
                .unwrap_or_default();
            std::fs::write(&copy, text).map_err(|e| format!("{}: {e}", copy.display()))?;
            run(&copy)
        }
        evaluation => Ok(evaluation),
    }
}

/// What the flows file holds that matters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flows {
    pub exec_nodes: usize,
    /// Function nodes that load child_process or fs (in code or through their module list).
    pub risky_functions: Vec<String>,
    /// URLs of http-in nodes.
    pub http_routes: Vec<String>,
    pub dashboard_nodes: usize,
    /// Nodes that carry credentials inside the flows file rather than the encrypted one.
    pub plain_credentials: Vec<String>,
}

/// Reads a flows file's nodes; Err names what is wrong with it.
pub fn parse_flows(text: &str) -> Result<Flows, String> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| format!("line {}, column {}: {e}", e.line(), e.column()))?;
    let nodes = match &value {
        Value::Array(nodes) => nodes.clone(),
        // Node-RED also accepts {"flows": [...], "rev": ...}.
        Value::Object(o) => o
            .get("flows")
            .and_then(Value::as_array)
            .cloned()
            .ok_or("an object without a flows array")?,
        _ => return Err("neither an array of nodes nor an object with flows".into()),
    };
    let mut flows = Flows::default();
    for node in &nodes {
        let kind = node["type"].as_str().unwrap_or_default();
        let name = || {
            let label = node["name"]
                .as_str()
                .filter(|n| !n.is_empty())
                .or_else(|| node["id"].as_str())
                .unwrap_or("?");
            format!("{kind} {label}")
        };
        match kind {
            "exec" => flows.exec_nodes += 1,
            "function" => {
                let code = ["func", "initialize", "finalize"]
                    .iter()
                    .filter_map(|k| node[*k].as_str())
                    .collect::<String>();
                let libs = node["libs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|l| l["module"].as_str());
                let risky = |m: &str| {
                    matches!(
                        m,
                        "child_process"
                            | "fs"
                            | "node:child_process"
                            | "node:fs"
                            | "fs/promises"
                            | "node:fs/promises"
                    )
                };
                let required = code.contains("child_process")
                    || code.contains("require(\"fs\")")
                    || code.contains("require('fs')");
                if required || libs.into_iter().any(risky) {
                    flows.risky_functions.push(name());
                }
            }
            "http in" => flows
                .http_routes
                .push(node["url"].as_str().unwrap_or("?").to_string()),
            k if k.starts_with("ui_") || k.starts_with("ui-") => flows.dashboard_nodes += 1,
            _ => {}
        }
        let inline = node["credentials"].as_object().is_some_and(|c| {
            c.values()
                .any(|v| v.as_str().is_some_and(|s| !s.is_empty()))
        });
        if inline {
            flows.plain_credentials.push(name());
        }
    }
    Ok(flows)
}

/// End of life of Node.js release lines (nodejs.org release schedule), as (major, yyyy-mm-dd).
const NODE_EOL: &[(u32, &str)] = &[
    (14, "2023-04-30"),
    (16, "2023-09-11"),
    (18, "2025-04-30"),
    (20, "2026-04-30"),
    (22, "2027-04-30"),
    (24, "2028-04-30"),
];

/// Known Node-RED advisories (reference: nodered.md §5), as (id, fixed in, what).
const NODERED_ADVISORIES: &[(&str, (u32, u32, u32), &str)] = &[
    (
        "GHSA-8w65-xjc5-9w79",
        (0, 20, 8),
        "stored XSS in a flow's name field",
    ),
    (
        "GHSA-m33v-338h-4v9f",
        (1, 2, 8),
        "path traversal through the Projects API",
    ),
    (
        "GHSA-xp9c-82x8-7f67",
        (1, 2, 8),
        "prototype pollution through the admin API",
    ),
    (
        "node-red#5724/#5722",
        (4, 1, 11),
        "project files outside the project root; module names in uninstall and tgz install",
    ),
];

fn version_triple(text: &str) -> Option<(u32, u32, u32)> {
    let mut parts = text.trim().trim_start_matches('v').split(['.', '-']);
    Some((
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    ))
}

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub settings: PathBuf,
    pub settings_exists: bool,
    /// None: the settings file does not exist (Node-RED writes its default one).
    pub evaluation: Option<Evaluation>,
    pub flows: Option<Result<Flows, String>>,
    pub flows_path: PathBuf,
    pub node_version: Option<(u32, u32, u32)>,
    pub nodered_version: Option<(u32, u32, u32)>,
    /// Today, as yyyy-mm-dd, for the end-of-life table.
    pub today: String,
    pub uninspected: Vec<Uninspected>,
    pub enforcement: Enforcement,
}

/// What redwarden forces on Node-RED, and what is on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Enforcement {
    pub enforce: BTreeMap<String, Value>,
    pub allow_no_login: bool,
    /// Logins redwarden created or `redwarden passwd` set.
    pub logins: Vec<Login>,
    /// Whether the generated password still waits in its root-only file.
    pub generated_password: bool,
    /// The overrides file as it is; None when absent.
    pub overrides: Option<Vec<u8>>,
    /// Whether this user could read the logins and the overrides (they are root's).
    pub readable: bool,
    /// The service group, which may read the overrides.
    pub gid: Option<u32>,
    /// Node-RED runs under systemd here, so a changed overrides file needs a restart.
    pub restartable: bool,
    /// The running system, not an image (logins are made per device, at its first boot, never
    /// baked into an image that many devices share), and Node-RED runs, or will run, under
    /// `redwarden run`, which passes the overrides.
    pub live: bool,
}

/// An editor login: a user name and a bcrypt hash (never a password).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Login {
    pub username: String,
    pub hash: String,
}

/// `[nodered.enforce]`, and behind the TLS front door Node-RED on loopback only: the front
/// door is its one way in (the firewall refuses its port from outside too).
fn enforced_settings(config: &Config) -> BTreeMap<String, Value> {
    let mut enforce = config.nodered.enforce.clone();
    if config.front.enabled {
        enforce
            .entry("uiHost".into())
            .or_insert_with(|| "127.0.0.1".into());
    }
    enforce
}

/// Whether a path exists, a path this user may not look at included.
fn exists(path: &Path) -> bool {
    !matches!(fs::lstat(path), Ok(None))
}

/// The installation whose settings, flows and nodes are in use: until an installation that
/// another unit runs (the official installer's) is adopted, that one.
pub(super) fn in_use(
    root: &Root,
    config: &Config,
    accounts: &crate::host::accounts::AccountDb,
) -> Result<super::install::Installation, crate::Error> {
    let configured = super::install::Installation::configured(config);
    let legacy = super::install::find_unit(root)?
        .filter(|unit| unit.enabled)
        .and_then(|unit| super::install::Installation::from_unit(&unit, accounts, &configured));
    Ok(match legacy {
        Some(legacy) if !exists(&root.resolve(&configured.settings)?) => legacy,
        _ => configured,
    })
}

/// Who evaluates JavaScript from the userDir: the service user, as Node-RED would run it (nobody
/// while that user does not exist yet); never root. None: as we are, unprivileged already.
pub(super) fn evaluating_user(
    config: &Config,
    accounts: &crate::host::accounts::AccountDb,
) -> Option<(u32, u32)> {
    rustix::process::geteuid().is_root().then(|| {
        accounts
            .user(config.service.user.as_str())
            .map_or((65534, 65534), |e| (e.uid, e.gid))
    })
}

pub fn observe(root: &Root, config: &Config) -> Result<Observed, crate::Error> {
    let accounts = crate::host::accounts::AccountDb::load(root)?;
    let in_use = in_use(root, config, &accounts)?;
    // The overrides reach Node-RED only through `redwarden run`: the configured installation,
    // or one that apply adopts into it.
    let enforceable =
        in_use == super::install::Installation::configured(config) || config.nodered.adopt;
    let settings = in_use.settings.clone();
    let user_dir = in_use.user_dir.as_path();
    let binaries = super::install::find_binaries(root, config, &[user_dir]);
    let mut uninspected = Vec::new();
    let user = evaluating_user(config, &accounts);
    let host_settings = root.resolve(&settings)?;
    // A settings file this user may not look at counts as there, and as not inspected.
    let (settings_exists, readable) = match fs::lstat(&host_settings) {
        Ok(found) => (found.is_some(), true),
        Err(e) if e.is_permission_denied() => {
            uninspected.push(Uninspected::new("settings.js", e.to_string()).at(&settings));
            (true, false)
        }
        Err(e) => return Err(e.into()),
    };
    let evaluation = match (
        root.is_live(),
        binaries.node.as_deref(),
        settings_exists && readable,
    ) {
        (_, _, false) => None,
        (false, _, true) => {
            uninspected.push(
                Uninspected::new(
                    "settings.js",
                    "it is JavaScript and is only evaluated on the running system, by its node",
                )
                .at(&settings),
            );
            None
        }
        (true, None, true) => {
            uninspected
                .push(Uninspected::new("settings.js", "no node to evaluate it with").at(&settings));
            None
        }
        (true, Some(node), true) => match evaluate(node, &host_settings, user) {
            Ok(evaluation) => Some(evaluation),
            Err(why) => {
                uninspected.push(Uninspected::new("settings.js", why).at(&settings));
                None
            }
        },
    };
    let flow_file = match &evaluation {
        Some(Evaluation::Described(d)) => d
            .get("flowFile")
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    }
    .filter(|f| !f.contains('/'))
    .unwrap_or_else(|| "flows.json".into());
    let flows_path = user_dir.join(flow_file);
    let flows = match fs::read_nofollow(&root.resolve(&flows_path)?) {
        Ok(Some(bytes)) => Some(parse_flows(&String::from_utf8_lossy(&bytes))),
        Ok(None) => None,
        Err(e) if e.is_permission_denied() => {
            uninspected.push(Uninspected::new("the flows file", e.to_string()).at(&flows_path));
            None
        }
        Err(e) => Some(Err(e.to_string())),
    };
    let nodered_version = binaries.nodered.as_ref().and_then(|dir| {
        let package = fs::read_nofollow(&root.resolve(&dir.join("package.json")).ok()?).ok()??;
        let value: Value = serde_json::from_slice(&package).ok()?;
        version_triple(value["version"].as_str()?)
    });
    let node_version = match (root.is_live(), &binaries.node) {
        (true, Some(node)) => crate::host::node::version(node).and_then(|v| version_triple(&v)),
        _ => None,
    };
    // The logins and the overrides are root's: an unprivileged check cannot judge them.
    let mut readable = true;
    let mut read = |path: &str| -> Result<Option<Vec<u8>>, crate::Error> {
        match fs::read_nofollow(&root.resolve(Path::new(path))?) {
            Err(e) if e.is_permission_denied() => {
                readable = false;
                Ok(None)
            }
            other => Ok(other?),
        }
    };
    let logins = parse_logins(read(paths::LOGINS)?)?;
    let overrides = read(paths::NODERED_OVERRIDES)?;
    if !readable {
        uninspected.push(
            Uninspected::new(
                "the enforced settings and editor logins",
                "they are readable by root only",
            )
            .at(paths::LOGINS),
        );
    }
    let enforcement = Enforcement {
        enforce: enforced_settings(config),
        allow_no_login: config.nodered.allow_no_login,
        logins,
        generated_password: exists(&root.resolve(Path::new(paths::GENERATED_PASSWORD))?),
        overrides,
        readable,
        gid: accounts
            .group
            .by_name(config.service.group().as_str())
            .map(|g| g.gid),
        restartable: root.is_live() && crate::host::systemd::is_booted(root),
        live: root.is_live() && enforceable,
    };
    Ok(Observed {
        settings,
        settings_exists,
        evaluation,
        flows,
        flows_path,
        node_version,
        nodered_version,
        today: crate::host::node::today(),
        uninspected,
        enforcement,
    })
}

/// The kind of a password hash, as the harness reports it: ("bcrypt", cost), ("md5", _) …
pub fn classify_hash(hash: &str) -> (&'static str, Option<u64>) {
    let bytes = hash.as_bytes();
    let bcrypt = hash.len() == 60
        && hash.starts_with("$2")
        && bytes.get(3) == Some(&b'$')
        && bytes.get(6) == Some(&b'$')
        && matches!(bytes.get(2), Some(b'a' | b'b' | b'y'));
    if bcrypt {
        return ("bcrypt", hash.get(4..6).and_then(|c| c.parse().ok()));
    }
    if hash.len() == 32 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return ("md5", None);
    }
    ("plain", None)
}

/// The admin login enforced through the overrides file, if any: from the config, or the logins
/// redwarden keeps.
fn enforced_admin(enforcement: &Enforcement) -> Option<Value> {
    if let Some(admin) = enforcement.enforce.get("adminAuth") {
        return Some(admin.clone());
    }
    (!enforcement.logins.is_empty()).then(|| {
        let users: Vec<Value> = enforcement
            .logins
            .iter()
            .map(|login| serde_json::json!({"username": login.username, "password": login.hash, "permissions": "*"}))
            .collect();
        serde_json::json!({"type": "credentials", "users": users})
    })
}

/// The overrides file's contents: one flat object of `-D` keys.
pub fn overrides(enforcement: &Enforcement) -> Vec<u8> {
    let mut object: serde_json::Map<String, Value> = enforcement
        .enforce
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(admin) = enforced_admin(enforcement) {
        object.insert("adminAuth".into(), admin);
    }
    let mut text = serde_json::to_vec_pretty(&Value::Object(object)).unwrap_or_default();
    text.push(b'\n');
    text
}

/// settings.js as Node-RED will see it: the description with the enforced values on top, as
/// `-D` sets them after settings.js has loaded.
pub fn effective(described: &Described, enforcement: &Enforcement) -> Described {
    let mut d = described.clone();
    for (key, value) in &enforcement.enforce {
        if key == "adminAuth" {
            continue;
        }
        match value {
            Value::Object(_) | Value::Array(_) => {
                d.insert(
                    key.clone(),
                    Value::String(if value.is_array() { "array" } else { "object" }.into()),
                );
            }
            scalar => {
                d.insert(key.clone(), scalar.clone());
            }
        }
        if let Some(origin) = value
            .get("origin")
            .and_then(Value::as_str)
            .filter(|_| key == "httpNodeCors")
        {
            d.insert("httpNodeCors.origin".into(), Value::String(origin.into()));
        }
    }
    if let Some(admin) = enforced_admin(enforcement) {
        d.retain(|k, _| !k.starts_with("adminAuth"));
        d.insert("adminAuth".into(), "object".into());
        let users = admin["users"].as_array().cloned().unwrap_or_default();
        d.insert("adminAuth.users.count".into(), users.len().into());
        for (i, user) in users.iter().enumerate().take(10) {
            let hash = user["password"].as_str().unwrap_or_default();
            let (kind, cost) = classify_hash(hash);
            d.insert(format!("adminAuth.users.{i}.password.hash"), kind.into());
            if let Some(cost) = cost {
                d.insert(format!("adminAuth.users.{i}.password.cost"), cost.into());
            }
        }
        if let Some(anonymous) = admin.get("default") {
            d.insert("adminAuth.default".into(), "object".into());
            d.insert(
                "adminAuth.default.permissions".into(),
                anonymous["permissions"].clone(),
            );
        }
    }
    d
}

fn is_true(d: &Described, key: &str) -> bool {
    d.get(key) == Some(&Value::Bool(true))
}

fn is_false(d: &Described, key: &str) -> bool {
    d.get(key) == Some(&Value::Bool(false))
}

fn text<'a>(d: &'a Described, key: &str) -> Option<&'a str> {
    d.get(key).and_then(Value::as_str)
}

/// The findings of a described settings.js and the flows.
pub fn settings_findings(d: &Described, flows: Option<&Flows>, path: &Path) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut add = |id: &'static str, severity: Severity, message: String| {
        out.push(Finding::new(id, severity, message, false).at(path));
    };
    // httpAdminRoot: false leaves out the editor and the whole admin API, and with them the
    // logins and everything only that API exposes.
    let admin_api = !is_false(d, "httpAdminRoot");
    let admin = text(d, "adminAuth").unwrap_or("absent");
    if admin_api && (admin == "absent" || admin == "null" || admin == "boolean") {
        add("nodered.admin-auth-missing", Severity::Critical, "no adminAuth: anyone who reaches the editor can deploy flows, and flows run any command. Set adminAuth with a bcrypt password (`node-red admin hash-pw`)".into());
    }
    if admin_api {
        if text(d, "adminAuth.default") == Some("function") {
            add("nodered.anonymous-access", Severity::Medium, "adminAuth.default is a function: what it lets visitors who have not logged in do is decided while Node-RED runs, and redwarden cannot check it; remove `default` unless it resolves to null".into());
        } else if let Some(permissions) =
            text(d, "adminAuth.default.permissions").filter(|p| !p.is_empty())
        {
            let severity = if permissions == "*" {
                Severity::Critical
            } else {
                Severity::High
            };
            add("nodered.anonymous-access", severity, format!("adminAuth.default gives everyone `{permissions}` without a login; remove `default`"));
        }
    }
    let count = d
        .get("adminAuth.users.count")
        .and_then(Value::as_u64)
        .unwrap_or(0)
        .min(10);
    // A user without a password cannot log in with one (an OAuth strategy's users have none).
    let mut hashes: Vec<(String, String)> = (0..count)
        .map(|i| {
            (
                format!("adminAuth user {}", i + 1),
                format!("adminAuth.users.{i}.password"),
            )
        })
        .filter(|(_, prefix)| {
            !matches!(
                text(d, &format!("{prefix}.hash")),
                Some("absent" | "null") | None
            )
        })
        .collect();
    for key in ["httpNodeAuth", "httpStaticAuth"] {
        if text(d, key) == Some("object") {
            hashes.push((key.to_string(), format!("{key}.pass")));
        }
    }
    for (who, prefix) in hashes {
        let kind = text(d, &format!("{prefix}.hash")).unwrap_or("absent");
        let cost = d.get(&format!("{prefix}.cost")).and_then(Value::as_u64);
        let weak = if is_true(d, &format!("{prefix}.example")) {
            Some((Severity::Critical, "is the example hash from Node-RED's settings template (the password is `password`)".to_string()))
        } else {
            match (kind, cost) {
                ("bcrypt", Some(cost)) if cost < 10 => Some((
                    Severity::High,
                    format!("is bcrypt with cost {cost}; use 10 or more"),
                )),
                ("bcrypt", _) => None,
                ("md5", _) => Some((
                    Severity::High,
                    "is a 32-character legacy MD5 hash; use bcrypt".into(),
                )),
                ("plain", _) => Some((
                    Severity::Critical,
                    "is not a hash: the password is stored in clear".into(),
                )),
                (other, _) => Some((Severity::Medium, format!("is {other}, not a bcrypt hash"))),
            }
        };
        if let Some((severity, why)) = weak {
            add(
                "nodered.weak-hash",
                severity,
                format!("the password of {who} {why}"),
            );
        }
    }
    if let Some(flows) = flows {
        if text(d, "httpNodeAuth") == Some("absent")
            && (!flows.http_routes.is_empty() || flows.dashboard_nodes > 0)
        {
            let mut routes = flows.http_routes.clone();
            routes.truncate(5);
            add("nodered.http-node-auth-missing", Severity::Medium, format!("flows serve HTTP ({}{}) without httpNodeAuth: anyone who reaches the port can call them", routes.join(", "), if flows.dashboard_nodes > 0 { "; dashboard" } else { "" }));
        }
    }
    if text(d, "httpStatic").is_some_and(|s| s != "absent")
        && text(d, "httpStaticAuth") == Some("absent")
    {
        add(
            "nodered.http-static-auth-missing",
            Severity::Low,
            "httpStatic serves files without httpStaticAuth".into(),
        );
    }
    let host = text(d, "uiHost").unwrap_or("0.0.0.0");
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if text(d, "https") == Some("absent") && !loopback {
        add("nodered.plain-http", Severity::Critical, format!("Node-RED serves plain HTTP on {host}: logins and flows cross the network in clear text. Use https in settings.js, or uiHost 127.0.0.1 behind a TLS front door"));
    }
    // Node-RED takes a string as the key and anything else but false as no key at all.
    match text(d, "credentialSecret") {
        Some("false") => add("nodered.credentials-unencrypted", Severity::Critical, "credentialSecret is false: credentials are stored unencrypted".into()),
        Some("empty") => add("nodered.credentials-unencrypted", Severity::Critical, "credentialSecret is the empty string, which Node-RED uses as the key: anyone can decrypt the credentials".into()),
        Some("string" | "environment") => {}
        _ => add("nodered.credential-key-beside-credentials", Severity::Medium, "no credentialSecret (or not a string): the generated key sits in .config.runtime.json beside the credentials it protects; set credentialSecret from outside the userDir (an environment variable)".into()),
    }
    let deny_list = d
        .get("externalModules.modules.denyList")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if !is_false(d, "functionExternalModules") && deny_list == 0 {
        add("nodered.function-modules", Severity::High, "functionExternalModules is not false and no denyList is set: a Function node can load child_process and run commands".into());
    }
    if admin_api && !is_false(d, "externalModules.palette.allowInstall") {
        add("nodered.palette-install", Severity::Medium, "the editor may install nodes from npm (install scripts run as Node-RED); set externalModules.palette.allowInstall = false".into());
    }
    if admin_api && !is_false(d, "externalModules.palette.allowUpload") {
        add(
            "nodered.palette-upload",
            Severity::Medium,
            "the editor may upload node tarballs; set externalModules.palette.allowUpload = false"
                .into(),
        );
    }
    if admin_api && !is_false(d, "diagnostics.enabled") {
        add("nodered.diagnostics", Severity::Low, "diagnostics are on: /diagnostics reports versions, modules and which security settings are unset".into());
    }
    if admin_api && is_true(d, "runtimeState.enabled") {
        add(
            "nodered.runtime-state",
            Severity::Low,
            "runtimeState is on: POST /flows/state stops and starts flows".into(),
        );
    }
    if admin_api && is_true(d, "editorTheme.projects.enabled") {
        add("nodered.projects", Severity::Medium, "projects are on: git runs from the editor, SSH keys live in the userDir, and both path-traversal advisories need projects".into());
    }
    if text(d, "httpNodeCors.origin") == Some("*") {
        add("nodered.cors-any-origin", Severity::Medium, "httpNodeCors allows any origin: any web page a user opens may call the flows' HTTP routes".into());
    }
    if !is_true(d, "tlsConfigDisableLocalFiles") {
        add("nodered.tls-local-files", Severity::Low, "tlsConfigDisableLocalFiles is off: TLS config nodes may read key and certificate files from disk".into());
    }
    if !is_true(d, "logging.console.audit") {
        add("nodered.audit-log-off", Severity::Low, "audit logging is off: logins, failed logins and deploys leave no trace; set logging.console.audit = true".into());
    }
    if is_true(d, "telemetry.enabled") {
        add(
            "nodered.telemetry",
            Severity::Info,
            "telemetry is on: Node-RED reports to telemetry.nodered.org".into(),
        );
    }
    out
}

pub fn flows_findings(flows: &Flows, path: &Path) -> Vec<Finding> {
    let mut out = Vec::new();
    let list = |names: &[String]| {
        let mut shown = names.to_vec();
        shown.truncate(5);
        shown.join(", ")
    };
    if flows.exec_nodes > 0 {
        out.push(
            Finding::new(
                "nodered.flow-exec",
                Severity::Medium,
                format!(
                    "{} exec node(s): they run shell commands as Node-RED",
                    flows.exec_nodes
                ),
                false,
            )
            .at(path),
        );
    }
    if !flows.risky_functions.is_empty() {
        out.push(
            Finding::new(
                "nodered.flow-function-os",
                Severity::High,
                format!(
                    "function nodes load child_process or fs: {}",
                    list(&flows.risky_functions)
                ),
                false,
            )
            .at(path),
        );
    }
    if !flows.plain_credentials.is_empty() {
        out.push(Finding::new("nodered.flow-plain-credentials", Severity::High, format!("credentials in the flows file in clear text (not in the encrypted credentials file): {}", list(&flows.plain_credentials)), false).at(path));
    }
    out
}

fn version_findings(observed: &Observed) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some((major, minor, patch)) = observed.node_version {
        match NODE_EOL.iter().find(|(m, _)| *m == major) {
            Some((_, eol)) if observed.today.as_str() >= *eol => out.push(Finding::new("nodered.node-eol", Severity::High, format!("Node.js {major}.{minor}.{patch} reached its end of life on {eol}: no more security fixes"), false)),
            None if major % 2 == 1 || major < 14 => out.push(Finding::new("nodered.node-eol", Severity::High, format!("Node.js {major}.{minor}.{patch} is not a maintained LTS line"), false)),
            _ => {}
        }
    }
    if let Some(version) = observed.nodered_version {
        for (id, fixed, what) in NODERED_ADVISORIES {
            if version < *fixed {
                out.push(Finding::new(
                    "nodered.advisory",
                    Severity::High,
                    format!(
                        "Node-RED {}.{}.{} is affected by {id} ({what}), fixed in {}.{}.{}",
                        version.0, version.1, version.2, fixed.0, fixed.1, fixed.2
                    ),
                    false,
                ));
            }
        }
    }
    out
}

pub fn plan(observed: &Observed) -> super::Plan {
    let mut plan = super::Plan {
        uninspected: observed.uninspected.clone(),
        ..super::Plan::default()
    };
    let flows = match &observed.flows {
        Some(Ok(flows)) => Some(flows),
        Some(Err(why)) => {
            plan.findings.push(
                Finding::new(
                    "nodered.flows-unreadable",
                    Severity::Medium,
                    format!("the flows file cannot be read as Node-RED flows: {why}"),
                    false,
                )
                .at(&observed.flows_path),
            );
            None
        }
        None => None,
    };
    let enforcement = &observed.enforcement;
    match &observed.evaluation {
        Some(Evaluation::Described(d)) => plan.findings.extend(settings_findings(&effective(d, enforcement), flows, &observed.settings)),
        Some(Evaluation::Failed(why)) => plan.findings.push(Finding::new("nodered.settings-unevaluable", Severity::High, format!("settings.js could not be evaluated, so its security settings are unknown (and Node-RED may not start): {why}"), false).at(&observed.settings)),
        None => {}
    }
    if let Some(flows) = flows {
        plan.findings
            .extend(flows_findings(flows, &observed.flows_path));
    }
    plan.findings.extend(version_findings(observed));
    enforce(observed, &mut plan);
    plan
}

/// Logins and the overrides file.
fn enforce(observed: &Observed, plan: &mut super::Plan) {
    let enforcement = &observed.enforcement;
    if !enforcement.readable {
        // A login may well be enforced from the root-only files: not a finding we can make.
        plan.findings
            .retain(|f| f.id != "nodered.admin-auth-missing");
        return;
    }
    // No adminAuth anywhere (settings.js, when it could be read, the config, our logins):
    // secure by default means a login, unless the config says otherwise in writing.
    let settings_without_login = match &observed.evaluation {
        Some(Evaluation::Described(d)) => {
            // No admin API (httpAdminRoot false), nothing to log in to.
            let d = effective(d, enforcement);
            matches!(text(&d, "adminAuth"), Some("absent" | "null" | "boolean"))
                && !is_false(&d, "httpAdminRoot")
        }
        Some(Evaluation::Failed(_)) => false,
        // Without a settings file Node-RED writes its template, which has no login.
        None => !observed.settings_exists,
    };
    if settings_without_login
        && enforcement.live
        && enforced_admin(enforcement).is_none()
        && !enforcement.allow_no_login
    {
        plan.findings
            .retain(|f| f.id != "nodered.admin-auth-missing");
        plan.findings.push(Finding::new("nodered.admin-auth-missing", Severity::Critical, format!("no editor login anywhere: apply creates the login `{GENERATED_USER}` with a random password and enforces it (or set nodered.allow_no_login = true)"), true));
        plan.actions
            .push(super::Action::NodeRed(NodeRedChange::CreateLogin {
                username: GENERATED_USER.into(),
            }));
        return;
    }
    if enforcement.generated_password {
        plan.findings.push(Finding::new("nodered.generated-login", Severity::Info, format!("the editor login `{GENERATED_USER}` was created with a random password, kept in {} (root only); set your own with `redwarden passwd {GENERATED_USER}`", paths::GENERATED_PASSWORD), false).at(paths::GENERATED_PASSWORD));
    }
    let desired = overrides(enforcement);
    if enforcement.overrides.as_deref() == Some(&desired[..]) {
        return;
    }
    let Some(gid) = enforcement.gid else {
        // The service group comes with the user step; the next pass writes the file.
        return;
    };
    plan.findings.push(
        Finding::new(
            "nodered.overrides-drifted",
            Severity::Medium,
            format!(
                "{} does not hold the enforced settings",
                paths::NODERED_OVERRIDES
            ),
            true,
        )
        .at(paths::NODERED_OVERRIDES),
    );
    plan.actions
        .push(super::Action::NodeRed(NodeRedChange::WriteOverrides {
            contents: desired,
            gid,
        }));
    if enforcement.restartable {
        plan.actions
            .push(super::Action::Unit(super::unit::UnitChange::Restart {
                unit: super::unit::UNIT_NAME,
            }));
    }
}

/// The user name of a login apply creates.
pub const GENERATED_USER: &str = "admin";

/// bcrypt's cost for the logins redwarden makes: the audit's threshold, and what a Pi Zero's
/// Node-RED can check at a login without stalling.
const BCRYPT_COST: u32 = 10;

/// A change to Node-RED's enforced settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeRedChange {
    /// Creates a login with a random password: the hash goes to the logins file, the password
    /// to a root-only file, and both to the overrides file on the next pass.
    CreateLogin {
        username: String,
    },
    WriteOverrides {
        contents: Vec<u8>,
        gid: u32,
    },
}

impl std::fmt::Display for NodeRedChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::CreateLogin { username } => write!(
                f,
                "create the editor login {username} (password in {})",
                paths::GENERATED_PASSWORD
            ),
            Self::WriteOverrides { .. } => write!(
                f,
                "write {} (settings enforced on Node-RED)",
                paths::NODERED_OVERRIDES
            ),
        }
    }
}

pub fn apply(root: &Root, change: &NodeRedChange) -> Result<(), crate::Error> {
    match change {
        NodeRedChange::CreateLogin { username } => {
            let password = random_password();
            set_login(root, username, &password)?;
            let file = root.resolve_parent(Path::new(paths::GENERATED_PASSWORD))?;
            fs::write_file(
                &file,
                format!("user: {username}\npassword: {password}\n").as_bytes(),
                0o600,
                0,
                0,
            )?;
            tracing::warn!(
                "created the editor login {username}; its password is in {} (root only)",
                paths::GENERATED_PASSWORD
            );
        }
        NodeRedChange::WriteOverrides { contents, gid } => {
            let file = root.resolve_parent(Path::new(paths::NODERED_OVERRIDES))?;
            if let Some(parent) = file.parent().filter(|p| !p.exists()) {
                fs::create_dir(parent, 0o755, 0, 0)?;
            }
            fs::write_file(&file, contents, 0o640, 0, *gid)?;
        }
    }
    Ok(())
}

/// The logins file's contents (absent: none), or an error naming the file, line and column.
fn parse_logins(bytes: Option<Vec<u8>>) -> Result<Vec<Login>, crate::Error> {
    bytes.map_or(Ok(Vec::new()), |bytes| {
        serde_json::from_slice(&bytes).map_err(|e| {
            let (path, line, column) = (paths::LOGINS, e.line(), e.column());
            crate::Error::Logins(format!(
                "{path}:{line}:{column}: not redwarden's logins file: {e}"
            ))
        })
    })
}

/// Sets (or adds) a login's password in the logins file; the next apply enforces it.
fn set_login(root: &Root, username: &str, password: &str) -> Result<(), crate::Error> {
    let hash = bcrypt::hash(password, BCRYPT_COST)
        .map_err(|e| crate::Error::Logins(format!("bcrypt: {e}")))?;
    let file = root.resolve_parent(Path::new(paths::LOGINS))?;
    let mut logins = parse_logins(fs::read_nofollow(&file)?)?;
    logins.retain(|l| l.username != username);
    logins.push(Login {
        username: username.into(),
        hash,
    });
    if let Some(parent) = file.parent().filter(|p| !p.exists()) {
        fs::create_dir(parent, 0o755, 0, 0)?;
    }
    let mut text = serde_json::to_vec_pretty(&logins).unwrap_or_default();
    text.push(b'\n');
    fs::write_file(&file, &text, 0o600, 0, 0)?;
    Ok(())
}

/// `redwarden passwd`: a person's password for `username`. The generated one, if that was
/// this login's, is forgotten. The next apply of this step enforces it.
pub fn set_password(root: &Root, username: &str, password: &str) -> Result<(), crate::Error> {
    set_login(root, username, password)?;
    if username != GENERATED_USER {
        return Ok(());
    }
    let file = root.resolve_parent(Path::new(paths::GENERATED_PASSWORD))?;
    match std::fs::remove_file(&file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(fs::std_io("remove", &file)(e).into())
        }
        _ => Ok(()),
    }
}

/// 20 letters and digits: about 119 bits.
fn random_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut out = String::new();
    while out.len() < 20 {
        let mut byte = [0u8; 1];
        let _ = rustix::rand::getrandom(&mut byte, rustix::rand::GetRandomFlags::empty());
        // Rejection sampling keeps every character equally likely.
        if usize::from(byte[0]) < 256 - 256 % ALPHABET.len() {
            out.push(char::from(ALPHABET[usize::from(byte[0]) % ALPHABET.len()]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(stdout: &str) -> Outcome {
        Outcome {
            stdout: stdout.as_bytes().to_vec(),
            code: Some(0),
            timed_out: false,
            flooded: false,
            stderr_tail: String::new(),
        }
    }

    fn enforcement() -> Enforcement {
        Enforcement {
            enforce: crate::config::Config::default().nodered.enforce,
            allow_no_login: false,
            logins: Vec::new(),
            generated_password: false,
            overrides: None,
            gid: Some(995),
            readable: true,
            restartable: false,
            live: true,
        }
    }

    fn described(pairs: &[(&str, Value)]) -> Described {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn enforced_settings_and_logins_are_what_node_red_sees() {
        let mut enforcement = enforcement();
        enforcement.logins.push(Login {
            username: "admin".into(),
            hash: bcrypt::hash("x", 4).unwrap(),
        });
        let file: Value = serde_json::from_slice(&overrides(&enforcement)).unwrap();
        assert_eq!(file["diagnostics.enabled"], false);
        assert_eq!(file["adminAuth"]["users"][0]["username"], "admin");
        assert_eq!(file["adminAuth"]["users"][0]["permissions"], "*");
        let settings = described(&[
            ("adminAuth", "absent".into()),
            ("adminAuth.default", "object".into()),
            ("adminAuth.default.permissions", "*".into()),
            ("diagnostics.enabled", Value::Null),
        ]);
        let seen = effective(&settings, &enforcement);
        assert_eq!(seen["adminAuth"], "object");
        assert_eq!(seen["diagnostics.enabled"], false);
        assert_eq!(seen["adminAuth.users.0.password.hash"], "bcrypt");
        assert!(
            !seen.contains_key("adminAuth.default"),
            "the enforced adminAuth replaces settings.js's"
        );
        let ids: Vec<_> = settings_findings(&seen, None, Path::new("/s"))
            .iter()
            .map(|f| f.id)
            .collect();
        assert!(
            !ids.contains(&"nodered.admin-auth-missing") && !ids.contains(&"nodered.diagnostics"),
            "{ids:?}"
        );
        assert!(
            ids.contains(&"nodered.weak-hash"),
            "cost 4 is weak: {ids:?}"
        );
    }

    #[test]
    fn behind_the_front_door_node_red_listens_on_loopback() {
        let mut config = Config::default();
        assert_eq!(enforced_settings(&config).get("uiHost"), None);
        config.front.enabled = true;
        assert_eq!(enforced_settings(&config)["uiHost"], "127.0.0.1");
        let described = described(&[("uiHost", Value::String("0.0.0.0".into()))]);
        let enforcement = Enforcement {
            enforce: enforced_settings(&config),
            ..enforcement()
        };
        let seen = effective(&described, &enforcement);
        assert_eq!(seen["uiHost"], "127.0.0.1");
        assert!(!settings_findings(&seen, None, Path::new("/s.js"))
            .iter()
            .any(|f| f.id == "nodered.plain-http"));
    }

    #[test]
    fn a_damaged_logins_file_is_named_with_line_and_column() {
        assert_eq!(parse_logins(None).unwrap(), Vec::new());
        let err = parse_logins(Some(b"[\n  {\"username\": 1}\n]".to_vec())).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("editor logins: /var/lib/redwarden/logins.json:2:"),
            "{err}"
        );
    }

    #[test]
    fn hashes_are_classified_like_the_harness_does() {
        assert_eq!(
            classify_hash("$2a$08$zZWtXTja0fB1pzD4sHCMyOCMYz2Z6dNbM6tl8sJogENOMcxWV9DN."),
            ("bcrypt", Some(8))
        );
        assert_eq!(
            classify_hash("5f4dcc3b5aa765d61d8327deb882cf99"),
            ("md5", None)
        );
        assert_eq!(classify_hash("hunter2"), ("plain", None));
        let password = random_password();
        assert_eq!(password.len(), 20);
        assert!(password.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(password, random_password());
    }

    #[test]
    fn only_the_nonce_line_counts_and_it_must_be_complete() {
        let n = "redwarden-abc:";
        let good = format!("noise\n{n}{{\"type\":\"object\",\"uiHost\":null,\"https\":\"absent\",\"credentialSecret\":\"absent\",\"adminAuth\":\"absent\",\"httpNodeAuth\":\"absent\",\"functionExternalModules\":true,\"telemetry.enabled\":null}}\n");
        assert!(matches!(
            parse_description(&outcome(&good), n),
            Evaluation::Described(_)
        ));
        // A forged line without the nonce is ignored.
        let forged = "redwarden-zzz:{\"type\":\"object\"}\n";
        assert!(matches!(
            parse_description(&outcome(forged), n),
            Evaluation::Failed(_)
        ));
        let partial = format!("{n}{{\"type\":\"object\"}}\n");
        let Evaluation::Failed(why) = parse_description(&outcome(&partial), n) else {
            panic!()
        };
        assert!(why.contains("lacks"), "{why}");
        let nested = format!("{n}{{\"type\":{{}}}}\n");
        assert!(matches!(
            parse_description(&outcome(&nested), n),
            Evaluation::Failed(_)
        ));
    }

    #[test]
    fn flows_with_exec_child_process_open_routes_and_inline_credentials() {
        let flows = parse_flows(r#"[
            {"id":"1","type":"exec","command":"ls"},
            {"id":"2","type":"function","name":"shell","func":"const cp = require('child_process');"},
            {"id":"3","type":"function","func":"return msg;","libs":[{"var":"fs","module":"fs"}]},
            {"id":"4","type":"http in","url":"/api"},
            {"id":"5","type":"ui_button"},
            {"id":"6","type":"mqtt-broker","credentials":{"user":"u","password":"p"}},
            {"id":"7","type":"function","func":"return msg;"}
        ]"#).unwrap();
        assert_eq!(flows.exec_nodes, 1);
        assert_eq!(flows.risky_functions, ["function shell", "function 3"]);
        assert_eq!(flows.http_routes, ["/api"]);
        assert_eq!(flows.dashboard_nodes, 1);
        assert_eq!(flows.plain_credentials, ["mqtt-broker 6"]);
        assert!(parse_flows("{\"flows\": []}").is_ok());
        assert!(parse_flows("[{").unwrap_err().starts_with("line 1"));
    }

    #[test]
    fn end_of_life_and_advisories_come_from_the_built_in_tables() {
        let observed = Observed {
            settings: "/s".into(),
            settings_exists: true,
            evaluation: None,
            flows: None,
            flows_path: "/f".into(),
            node_version: Some((18, 20, 4)),
            nodered_version: Some((4, 1, 10)),
            today: "2026-11-27".into(),
            uninspected: Vec::new(),
            enforcement: enforcement(),
        };
        let ids: Vec<_> = version_findings(&observed)
            .iter()
            .map(|f| (f.id, f.message.clone()))
            .collect();
        assert!(
            ids.iter()
                .any(|(id, m)| *id == "nodered.node-eol" && m.contains("2025-04-30")),
            "{ids:?}"
        );
        assert!(
            ids.iter()
                .any(|(id, m)| *id == "nodered.advisory" && m.contains("4.1.11")),
            "{ids:?}"
        );
        let current = Observed {
            node_version: Some((22, 23, 3)),
            nodered_version: Some((5, 0, 7)),
            ..observed
        };
        assert!(version_findings(&current).is_empty());
    }
}
