//! The settings.js corpus: every `tests/settings_corpus/NN-name.js` is evaluated by the built
//! binary (`check --only nodered`) in a userDir of its own, and the nodered.* findings must be
//! exactly the ones its first line lists. Realistic files (Node-RED's template, the Pi
//! installer's `node-red admin init`, docker- and FlowFuse-style, hardened and weak ones) and
//! hostile ones (loops, exits, throws, floods, forged output, writes, prototype patches).
//!
//! A case's leading comment lines:
//!   `// expect: id id …`   exactly the findings (nodered.node-eol and nodered.advisory ignored:
//!                          they depend on the host's node and Node-RED)
//!   `// <what it is>`      and, for realistic ones, where that shape comes from
//!   `// flows: KIND [FILE]` a flows file in the userDir: http, dashboard, risky or broken
//!                          (FILE defaults to flows.json)
//!   `// module: NAME`      a stub package NAME in the userDir's node_modules
//!   `// must-not-exist: PATH …` absolute paths always, userDir-relative ones when the test runs
//!                          as root (evaluation is then unprivileged and cannot write there)
//!   `// evaluator-writes: PATH …` a userDir-relative file settings.js writes: its folder is made
//!                          writable for the evaluating user, and the file must be owned by it
//!   `// outlived-by: WORD`  as root, no process whose command line holds WORD may be left once
//!                          the check has returned (settings.js runs in a pid namespace then)
//!
//! As root, settings.js is evaluated as the configured service user, here `rwcorpus`, which does
//! not exist, so as nobody (65534); otherwise as the current user. The config enforces nothing
//! (`[nodered.enforce]` empty), so each settings.js is judged on its own.

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const IGNORED: &[&str] = &["nodered.node-eol", "nodered.advisory"];

const KNOWN: &[&str] = &[
    "nodered.admin-auth-missing",
    "nodered.anonymous-access",
    "nodered.weak-hash",
    "nodered.http-node-auth-missing",
    "nodered.http-static-auth-missing",
    "nodered.plain-http",
    "nodered.credentials-unencrypted",
    "nodered.credential-key-beside-credentials",
    "nodered.function-modules",
    "nodered.palette-install",
    "nodered.palette-upload",
    "nodered.diagnostics",
    "nodered.runtime-state",
    "nodered.projects",
    "nodered.cors-any-origin",
    "nodered.tls-local-files",
    "nodered.audit-log-off",
    "nodered.telemetry",
    "nodered.settings-unevaluable",
    "nodered.flow-exec",
    "nodered.flow-function-os",
    "nodered.flow-plain-credentials",
    "nodered.flows-unreadable",
];

/// The binary's own limit is 10 s of wall clock per evaluation; this is for a hang around it.
const CASE_TIMEOUT: Duration = Duration::from_secs(30);

/// The service user of the test config: it must not exist, so root evaluates as nobody.
const SERVICE_USER: &str = "rwcorpus";

struct Case {
    name: String,
    text: String,
    expect: BTreeSet<String>,
    flows: Option<(String, String)>,
    modules: Vec<String>,
    must_not_exist: Vec<String>,
    evaluator_writes: Vec<String>,
    outlived_by: Option<String>,
}

fn parse_case(name: &str, text: &str) -> Result<Case, String> {
    let header: Vec<&str> = text
        .lines()
        .take_while(|l| l.starts_with("//"))
        .map(|l| l.trim_start_matches("//").trim())
        .collect();
    let expect_line = header
        .first()
        .and_then(|l| l.strip_prefix("expect:"))
        .ok_or("the first line is not `// expect: …`")?;
    let expect: BTreeSet<String> = expect_line.split_whitespace().map(str::to_string).collect();
    if let Some(unknown) = expect.iter().find(|id| !KNOWN.contains(&id.as_str())) {
        return Err(format!("expects unknown finding id {unknown}"));
    }
    let description = header.get(1).copied().unwrap_or_default();
    let markers = [
        "expect:",
        "flows:",
        "module:",
        "must-not-exist:",
        "evaluator-writes:",
        "outlived-by:",
    ];
    if description.is_empty() || markers.iter().any(|m| description.starts_with(m)) {
        return Err("the second line does not say what the case is".into());
    }
    let mut case = Case {
        name: name.to_string(),
        text: text.to_string(),
        expect,
        flows: None,
        modules: Vec::new(),
        must_not_exist: Vec::new(),
        evaluator_writes: Vec::new(),
        outlived_by: None,
    };
    for line in header.iter().skip(2) {
        let words = |rest: &str| {
            rest.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        if let Some(rest) = line.strip_prefix("flows:") {
            let mut w = words(rest).into_iter();
            let kind = w.next().ok_or("`flows:` without a kind")?;
            if flows_text(&kind).is_none() {
                return Err(format!("unknown flows kind {kind}"));
            }
            case.flows = Some((kind, w.next().unwrap_or_else(|| "flows.json".into())));
        } else if let Some(rest) = line.strip_prefix("module:") {
            case.modules.extend(words(rest));
        } else if let Some(rest) = line.strip_prefix("must-not-exist:") {
            case.must_not_exist.extend(words(rest));
        } else if let Some(rest) = line.strip_prefix("evaluator-writes:") {
            case.evaluator_writes.extend(words(rest));
        } else if let Some(rest) = line.strip_prefix("outlived-by:") {
            case.outlived_by = words(rest).into_iter().next();
        }
    }
    Ok(case)
}

fn flows_text(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "http" => {
            r#"[
    {"id":"t1","type":"tab","label":"Flow 1","disabled":false,"info":""},
    {"id":"n1","type":"http in","z":"t1","name":"status","url":"/api/status","method":"get","upload":false,"swaggerDoc":"","x":120,"y":80,"wires":[["n2"]]},
    {"id":"n2","type":"function","z":"t1","name":"reply","func":"msg.payload = {ok: true};\nreturn msg;","outputs":1,"timeout":0,"noerr":0,"initialize":"","finalize":"","libs":[],"x":300,"y":80,"wires":[["n3"]]},
    {"id":"n3","type":"http response","z":"t1","name":"","statusCode":"","headers":{},"x":470,"y":80,"wires":[]}
]
"#
        }
        "dashboard" => {
            r#"[
    {"id":"t1","type":"tab","label":"Greenhouse","disabled":false,"info":""},
    {"id":"u1","type":"ui_tab","name":"Home","icon":"dashboard","disabled":false,"hidden":false},
    {"id":"u2","type":"ui_group","name":"Pump","tab":"u1","order":1,"disp":true,"width":"6","collapse":false},
    {"id":"n1","type":"ui_button","z":"t1","name":"","group":"u2","order":1,"label":"Pump on","payload":"on","payloadType":"str","topic":"pump","x":110,"y":80,"wires":[["n2"]]},
    {"id":"n2","type":"ui_gauge","z":"t1","name":"","group":"u2","order":2,"gtype":"gage","title":"Moisture","min":0,"max":"100","x":300,"y":80,"wires":[]}
]
"#
        }
        "risky" => {
            r#"[
    {"id":"t1","type":"tab","label":"Maintenance","disabled":false,"info":""},
    {"id":"n1","type":"http in","z":"t1","name":"","url":"/reboot","method":"post","upload":false,"swaggerDoc":"","x":110,"y":60,"wires":[["n2"]]},
    {"id":"n2","type":"exec","z":"t1","command":"sudo reboot","addpay":"","append":"","useSpawn":"false","timer":"","winHide":false,"oldrc":false,"name":"","x":300,"y":60,"wires":[[],[],[]]},
    {"id":"n3","type":"function","z":"t1","name":"disk usage","func":"const cp = global.get('cp') || require('child_process');\nmsg.payload = cp.execSync('df -h').toString();\nreturn msg;","outputs":1,"libs":[],"x":300,"y":120,"wires":[[]]},
    {"id":"b1","type":"mqtt-broker","name":"plant","broker":"mqtt.example.org","port":"1883","clientid":"","usetls":false,"protocolVersion":"4","keepalive":"60","cleansession":true,"credentials":{"user":"greenhouse","password":"hunter2"}}
]
"#
        }
        "broken" => "[\n    {\"id\":\"t1\",\"type\":\"tab\",\"label\":\"Kitchen\"},\n    {\"id\":\"n1\",\"type\":\"inject\",\"z\":\"t1\",\"na",
        _ => return None,
    })
}

fn find_node() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("node"))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The uid and gid settings.js runs as.
fn evaluator() -> (u32, u32) {
    if !rustix::process::geteuid().is_root() {
        return (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        );
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && f[0] == SERVICE_USER)
        .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        .unwrap_or((65534, 65534))
}

/// The pids of the processes whose command line holds `word`.
fn processes_with(word: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(word))
        })
        .collect()
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every path under `dir`, relative to it.
fn listing(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path.clone());
            }
            out.insert(path.strip_prefix(dir).unwrap().to_path_buf());
        }
    }
    out
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
    timed_out: bool,
}

fn run_binary(config: &Path) -> Run {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_redwarden"))
        .arg("--config")
        .arg(config)
        .args(["--json", "check", "--only", "nodered"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the redwarden binary starts");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() >= CASE_TIMEOUT {
            timed_out = true;
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out_thread.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&err_thread.join().unwrap()).into_owned();
    Run {
        code: status.and_then(|s| s.code()),
        stdout,
        stderr,
        elapsed,
        timed_out,
    }
}

/// Runs one case; Err lists what went wrong.
fn run_case(
    case: &Case,
    node: &Path,
    root: bool,
    (uid, gid): (u32, u32),
) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let dir = tempfile::Builder::new()
        .prefix("rw-corpus-")
        .tempdir()
        .expect("a temp folder");
    let user_dir = dir.path();
    // Readable (and the folder searchable) by the evaluating user, writable by nobody but us.
    set_mode(user_dir, 0o755);
    let settings = user_dir.join("settings.js");
    std::fs::write(&settings, &case.text).unwrap();
    set_mode(&settings, 0o444);
    if let Some((kind, file)) = &case.flows {
        let path = user_dir.join(file);
        std::fs::write(&path, flows_text(kind).unwrap()).unwrap();
        set_mode(&path, 0o644);
    }
    for module in &case.modules {
        let package = user_dir.join("node_modules").join(module);
        std::fs::create_dir_all(&package).unwrap();
        set_mode(&user_dir.join("node_modules"), 0o755);
        set_mode(&package, 0o755);
        let index = package.join("index.js");
        std::fs::write(
            &index,
            format!("// A stand-in for {module}.\nexports.Strategy = function Strategy(options, verify) {{ this.name = {module:?}; }};\n"),
        )
        .unwrap();
        set_mode(&index, 0o644);
    }
    for file in &case.evaluator_writes {
        let parent = user_dir.join(file).parent().unwrap().to_path_buf();
        std::fs::create_dir_all(&parent).unwrap();
        set_mode(&parent, 0o755);
        if root {
            std::os::unix::fs::chown(&parent, Some(uid), Some(gid)).unwrap();
        }
    }
    let config = user_dir.join("redwarden.toml");
    std::fs::write(
        &config,
        format!(
            "[service]\nuser = \"{SERVICE_USER}\"\n\n[nodered]\nuser_dir = \"{}\"\nnode = \"{}\"\n\n# Nothing enforced on top: each settings.js is judged on its own.\n[nodered.enforce]\n",
            user_dir.display(),
            node.display()
        ),
    )
    .unwrap();
    // Paths settings.js must not manage to create.
    let forbidden: Vec<PathBuf> = case
        .must_not_exist
        .iter()
        .map(PathBuf::from)
        .filter_map(|p| {
            if p.is_absolute() {
                Some(p)
            } else {
                root.then(|| user_dir.join(p))
            }
        })
        .collect();
    for path in &forbidden {
        if path.symlink_metadata().is_ok() {
            problems.push(format!(
                "{} exists before the run: remove it first",
                path.display()
            ));
        }
    }
    let before = listing(user_dir);

    let run = run_binary(&config);

    if run.timed_out {
        problems.push(format!(
            "the binary did not finish within {} s",
            CASE_TIMEOUT.as_secs()
        ));
    }
    if !matches!(run.code, Some(0 | 1)) && !run.timed_out {
        problems.push(format!(
            "exit code {:?} (not 0 or 1); stderr: {}",
            run.code,
            run.stderr.trim()
        ));
    }
    match serde_json::from_str::<serde_json::Value>(&run.stdout) {
        Ok(report) => {
            let got: BTreeSet<String> = report["findings"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["id"].as_str())
                .filter(|id| !IGNORED.contains(id))
                .map(str::to_string)
                .collect();
            if got != case.expect {
                let missing: Vec<_> = case.expect.difference(&got).collect();
                let extra: Vec<_> = got.difference(&case.expect).collect();
                let messages: Vec<String> = report["findings"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|f| f["id"].as_str().is_some_and(|id| !IGNORED.contains(&id)))
                    .map(|f| format!("{}: {}", f["id"], f["message"]))
                    .collect();
                problems.push(format!(
                    "findings differ: missing {missing:?}, unexpected {extra:?}\n        reported: {}",
                    messages.join("\n                  ")
                ));
            }
            let uninspected = report["uninspected"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !uninspected.is_empty() {
                problems.push(format!(
                    "left uninspected (settings.js was not evaluated?): {uninspected:?}"
                ));
            }
        }
        Err(e) => problems.push(format!(
            "stdout is not a JSON report ({e}): {:?}; stderr: {}",
            run.stdout.chars().take(300).collect::<String>(),
            run.stderr.trim()
        )),
    }

    for path in &forbidden {
        if path.symlink_metadata().is_ok() {
            let owner = path.symlink_metadata().map(|m| m.uid()).unwrap_or(0);
            problems.push(format!(
                "settings.js created {} (owned by uid {owner}): it ran with too much privilege",
                path.display()
            ));
            if path.is_absolute() && !path.starts_with(user_dir) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
    if let Some(word) = case.outlived_by.as_deref().filter(|_| root) {
        let left = processes_with(word);
        if !left.is_empty() {
            problems.push(format!(
                "processes settings.js started outlive the check: {left:?}"
            ));
            for pid in left {
                if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
        }
    }
    if std::fs::read_to_string(&settings).ok().as_deref() != Some(case.text.as_str()) {
        problems.push("settings.js was changed by its own evaluation".into());
    }
    for file in &case.evaluator_writes {
        match user_dir.join(file).symlink_metadata() {
            Ok(m) if m.uid() == uid => {}
            Ok(m) => problems.push(format!(
                "{file} is owned by uid {}, not by the evaluating user {uid}",
                m.uid()
            )),
            Err(e) => problems.push(format!("{file} was not written by settings.js: {e}")),
        }
    }
    if root {
        let written: BTreeSet<PathBuf> = case.evaluator_writes.iter().map(PathBuf::from).collect();
        let appeared: Vec<_> = listing(user_dir)
            .difference(&before)
            .filter(|p| !written.contains(*p))
            .cloned()
            .collect();
        if !appeared.is_empty() {
            problems.push(format!(
                "files appeared in the userDir, which the evaluating user cannot write: {appeared:?}"
            ));
        }
    }
    if problems.is_empty() {
        eprintln!("ok   {} ({} ms)", case.name, run.elapsed.as_millis());
        Ok(())
    } else {
        eprintln!("FAIL {} ({} ms)", case.name, run.elapsed.as_millis());
        Err(problems)
    }
}

#[test]
fn every_corpus_settings_file_gives_exactly_its_expected_findings() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/settings_corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .expect("tests/settings_corpus")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "js"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 25,
        "the corpus has {} files; it should have at least 25",
        files.len()
    );

    let Some(node) = find_node() else {
        if std::env::var_os("CI").is_some() {
            panic!("node is not on PATH, and CI is set: tests/run.sh installs nodejs");
        }
        eprintln!("SKIP settings corpus: node is not on PATH");
        return;
    };
    // redwarden's own logins on this host would stand in for every settings.js's adminAuth.
    let host_state = [
        "/var/lib/redwarden/logins.json",
        "/var/lib/redwarden/admin-password",
    ];
    if let Some(state) = host_state.iter().find(|p| Path::new(p).exists()) {
        if std::env::var_os("CI").is_some() {
            panic!("{state} exists on this host, and CI is set: the corpus needs a host without redwarden's logins");
        }
        eprintln!("SKIP settings corpus: {state} exists, so redwarden's logins replace each settings.js's adminAuth");
        return;
    }
    let root = rustix::process::geteuid().is_root();
    let evaluating = evaluator();

    let mut failures = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let well_named = name.len() > 6
            && name.as_bytes()[..2].iter().all(u8::is_ascii_digit)
            && name.as_bytes()[2] == b'-';
        let text = std::fs::read_to_string(file).unwrap();
        let case = match parse_case(&name, &text) {
            Ok(case) if well_named => case,
            Ok(_) => {
                failures.push(format!("{name}: not named NN-short-name.js"));
                continue;
            }
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        if let Err(problems) = run_case(&case, &node, root, evaluating) {
            failures.push(format!("{name}:\n    {}", problems.join("\n    ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases failed (node {}, evaluated as uid {}):\n{}",
        failures.len(),
        files.len(),
        node.display(),
        evaluating.0,
        failures.join("\n")
    );
}
