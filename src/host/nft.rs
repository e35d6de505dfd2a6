//! nftables through the `nft` binary: validate, load as one transaction, list as JSON. redwarden
//! only ever names its own table, `inet redwarden`.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub const FAMILY: &str = "inet";
pub const TABLE: &str = "redwarden";

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("nft is not installed: the firewall needs nftables (apt-get install nftables), or set firewall.enabled = false")]
    Missing,
    #[error("nft {op}: {stderr}")]
    Failed { op: &'static str, stderr: String },
    #[error("nft {op}: {source}")]
    Io {
        op: &'static str,
        source: std::io::Error,
    },
    #[error("firewall rollback: {0}")]
    Rollback(String),
    #[error("nft {op}: output is not the JSON nft prints: {message}")]
    Json { op: &'static str, message: String },
}

/// Runs a command with `input` on stdin; its stdout, or its stderr as the error.
fn run(mut command: Command, op: &'static str, input: Option<&str>) -> Result<String, NftError> {
    command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => NftError::Missing,
        _ => NftError::Io { op, source },
    })?;
    // A child that exits before reading its input breaks the pipe; what it said and how it
    // exited explain that better than the broken pipe, so the write error waits for them.
    let write_error = match (input, child.stdin.take()) {
        (Some(text), Some(mut stdin)) => stdin.write_all(text.as_bytes()).err(),
        _ => None,
    };
    let out = child
        .wait_with_output()
        .map_err(|source| NftError::Io { op, source })?;
    // 127 with nothing said is a program that could not be executed, as glibc's posix_spawn
    // reports it where the exec error cannot travel back (qemu-user).
    if out.status.code() == Some(127) && out.stderr.is_empty() {
        return Err(NftError::Missing);
    }
    if !out.status.success() {
        return Err(NftError::Failed {
            op,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    if let Some(source) = write_error {
        return Err(NftError::Io { op, source });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn nft(args: &[&str]) -> Command {
    let mut command = Command::new("nft");
    command.args(args);
    command
}

/// Parses and checks a ruleset against the running kernel without loading it.
pub fn validate(ruleset: &str) -> Result<(), NftError> {
    run(nft(&["-c", "-f", "-"]), "-c -f (validate)", Some(ruleset)).map(|_| ())
}

/// Loads a ruleset as one transaction: the kernel holds all of it or none.
pub fn load(ruleset: &str) -> Result<(), NftError> {
    run(nft(&["-f", "-"]), "-f (load)", Some(ruleset)).map(|_| ())
}

/// `nft [-j] list table inet redwarden`; None when the table does not exist.
fn list(json: bool, op: &'static str) -> Result<Option<String>, NftError> {
    let args: &[&str] = if json {
        &["-j", "list", "table", FAMILY, TABLE]
    } else {
        &["list", "table", FAMILY, TABLE]
    };
    match run(nft(args), op, None) {
        Ok(text) => Ok(Some(text)),
        Err(NftError::Failed { stderr, .. }) if stderr.contains("No such file or directory") => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The table as nft prints it in JSON; None when it does not exist. `Missing` says nft is not
/// installed.
pub fn list_json() -> Result<Option<Value>, NftError> {
    list(true, "-j list table")?
        .map(|text| parse(&text, "-j list table"))
        .transpose()
}

/// The table as an nft script that recreates it; None when it does not exist.
pub fn list_text() -> Result<Option<String>, NftError> {
    list(false, "list table")
}

/// What the kernel makes of `ruleset`, loaded into a throwaway network namespace and listed as
/// JSON: the desired state in the same form as the observed one, so they compare by meaning.
pub fn as_loaded(ruleset: &str) -> Result<Value, NftError> {
    let mut command = Command::new("unshare");
    command.args([
        "--net",
        "--",
        "sh",
        "-c",
        "nft -f - && exec nft -j list table inet redwarden",
    ]);
    let text = run(command, "load into a scratch namespace", Some(ruleset))?;
    parse(&text, "load into a scratch namespace")
}

fn parse(text: &str, op: &'static str) -> Result<Value, NftError> {
    serde_json::from_str(text).map_err(|e| NftError::Json {
        op,
        message: e.to_string(),
    })
}

/// The meaning of a listed table: without handles, counter values, the addresses a dynamic
/// set has learnt, and nft's version banner.
pub fn canonical(listed: &Value) -> Vec<Value> {
    let objects = listed["nftables"].as_array().cloned().unwrap_or_default();
    objects
        .into_iter()
        .filter(|object| object.get("metainfo").is_none())
        .map(|mut object| {
            if let Some(inner) = object.as_object_mut().and_then(|o| o.values_mut().next()) {
                if let Some(fields) = inner.as_object_mut() {
                    fields.remove("handle");
                    if fields.contains_key("packets") {
                        fields.insert("packets".into(), 0.into());
                        fields.insert("bytes".into(), 0.into());
                    }
                    let dynamic =
                        fields
                            .get("flags")
                            .and_then(Value::as_array)
                            .is_some_and(|flags| {
                                flags.iter().any(|f| f == "dynamic" || f == "timeout")
                            });
                    if dynamic {
                        fields.remove("elem");
                    }
                }
            }
            object
        })
        .collect()
}

/// The named counters of a listed table and their packet counts.
pub fn counters(listed: &Value) -> Vec<(String, u64)> {
    listed["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|object| {
            let counter = object.get("counter")?;
            Some((
                counter["name"].as_str()?.to_string(),
                counter["packets"].as_u64()?,
            ))
        })
        .collect()
}

/// Where `apply --confirm` keeps the table to go back to until `redwarden confirm`.
pub const ROLLBACK_FILE: &str = "/run/redwarden-firewall.rollback";

/// Saves the way back and starts a detached watcher that takes it unless `redwarden confirm`
/// removes the file first.
pub fn arm_rollback(script: &str, within: Duration) -> Result<(), crate::Error> {
    let path = std::path::Path::new(ROLLBACK_FILE);
    super::fs::write_file(path, script.as_bytes(), 0o600, 0, 0)?;
    let exe = std::env::current_exe().map_err(|e| {
        NftError::Rollback(format!(
            "finding redwarden's own binary for the rollback: {e}"
        ))
    })?;
    std::process::Command::new(exe)
        .args([
            "firewall-rollback",
            "--after",
            &within.as_secs().to_string(),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| NftError::Rollback(format!("starting the rollback watcher: {e}")))?;
    Ok(())
}

/// The watcher: after `after`, loads the saved table unless the file is gone.
pub fn rollback_after(after: Duration) -> Result<bool, crate::Error> {
    std::thread::sleep(after);
    let path = std::path::Path::new(ROLLBACK_FILE);
    let Some(script) = super::fs::read_nofollow(path)? else {
        return Ok(false);
    };
    load(&String::from_utf8_lossy(&script))?;
    let _ = std::fs::remove_file(path);
    Ok(true)
}

/// `redwarden confirm`: keeps the new table. False when nothing was waiting.
pub fn confirm() -> Result<bool, crate::Error> {
    match std::fs::remove_file(ROLLBACK_FILE) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(super::fs::std_io("remove", std::path::Path::new(ROLLBACK_FILE))(e).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// More than a pipe holds, so that writing it to a child that has exited breaks the pipe.
    fn big_input() -> String {
        "x".repeat(1 << 20)
    }

    fn sh(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    #[test]
    fn a_program_that_could_not_run_is_missing_even_when_its_input_broke_the_pipe() {
        // What qemu-user's posix_spawn leaves of an exec that failed: exit 127, nothing said.
        let result = run(sh("exit 127"), "-f (load)", Some(&big_input()));
        assert!(matches!(result, Err(NftError::Missing)), "{result:?}");
    }

    #[test]
    fn a_failure_before_reading_the_input_reports_what_the_program_said() {
        let result = run(
            sh("echo 'bad rule' >&2; exit 1"),
            "-f (load)",
            Some(&big_input()),
        );
        match result {
            Err(NftError::Failed { stderr, .. }) => assert_eq!(stderr, "bad rule"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_success_that_left_its_input_unread_is_still_an_error() {
        let result = run(sh("exit 0"), "-f (load)", Some(&big_input()));
        assert!(matches!(result, Err(NftError::Io { .. })), "{result:?}");
    }

    #[test]
    fn canonical_form_ignores_handles_counts_and_learnt_addresses() {
        let listed: Value = serde_json::from_str(r#"{"nftables": [
            {"metainfo": {"version": "1.0.6"}},
            {"table": {"family": "inet", "name": "redwarden", "handle": 7}},
            {"counter": {"family": "inet", "name": "refused", "table": "redwarden", "handle": 3, "packets": 12, "bytes": 720}},
            {"set": {"name": "rate4", "type": "ipv4_addr", "handle": 4, "flags": ["timeout"], "elem": [{"elem": {"val": "10.0.0.9"}}]}},
            {"set": {"name": "sources4", "type": "ipv4_addr", "handle": 5, "flags": ["interval"], "elem": [{"prefix": {"addr": "10.0.0.0", "len": 8}}]}}
        ]}"#).unwrap();
        let canonical = canonical(&listed);
        assert_eq!(canonical.len(), 4);
        let text = serde_json::to_string(&canonical).unwrap();
        assert!(
            !text.contains("handle") && !text.contains("10.0.0.9") && !text.contains("720"),
            "{text}"
        );
        assert!(text.contains("10.0.0.0"), "static set elements are meaning");
        assert_eq!(counters(&listed), [("refused".to_string(), 12)]);
    }
}
