//! `redwarden status`'s findings count, from a `redwarden check` child.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::config::Source;
use crate::harden;

/// The audit behind `redwarden status`'s findings count: `redwarden check` as this user, in a
/// child process. It evaluates settings.js with node and walks the userDir, which takes seconds
/// on a Pi Zero and must delay neither Node-RED's start nor the supervision loop; in a child,
/// what it allocates leaves with it instead of staying in the supervisor's heap for good.
/// npm audit is left to `check`: at every start, on a board, it would cost a minute of CPU and
/// a question to the registry.
pub struct Audit {
    exe: Option<PathBuf>,
    findings: Arc<Mutex<Option<usize>>>,
    running: Option<tokio::task::JoinHandle<()>>,
}

impl Default for Audit {
    fn default() -> Self {
        // Resolved now: after a package upgrade /proc/self/exe names a deleted file.
        let exe = std::env::current_exe()
            .map_err(|e| {
                tracing::warn!(
                    "no audit for `redwarden status`: finding redwarden's own binary: {e}"
                )
            })
            .ok();
        Self {
            exe,
            findings: Arc::default(),
            running: None,
        }
    }
}

impl Audit {
    pub fn findings(&self) -> Option<usize> {
        self.findings.lock().ok().and_then(|f| *f)
    }

    /// Starts an audit of the configuration at `source`, ending one still running (its
    /// configuration may be the old one).
    pub fn start(&mut self, source: &Source) {
        let Some(exe) = &self.exe else { return };
        if let Some(previous) = self.running.take() {
            previous.abort();
        }
        let mut command = tokio::process::Command::new(exe);
        command.args(audit_args(source));
        for name in super::child::SERVICE_CONTRACT {
            command.env_remove(name);
        }
        command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            // Its errors go where the supervisor's go (the journal).
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true);
        let into = self.findings.clone();
        self.running = Some(tokio::spawn(async move {
            let count = match command.output().await {
                Ok(out) => findings_count(&out.status, &out.stdout),
                Err(e) => Err(format!("starting `redwarden check`: {e}")),
            };
            let count = count
                .map_err(|e| tracing::warn!("audit as the service user: {e}"))
                .ok();
            if let Ok(mut findings) = into.lock() {
                *findings = count;
            }
        }));
    }
}

fn audit_args(source: &Source) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec!["--json".into(), "--quiet".into()];
    if let Source::Explicit(path) = source {
        args.push("--config".into());
        args.push(path.into());
    }
    let steps: Vec<&str> = harden::checks()
        .filter(|step| *step != harden::Step::Npm)
        .map(|step| step.name())
        .collect();
    args.extend(["check".into(), "--only".into(), steps.join(",").into()]);
    args
}

/// The number of findings in `redwarden check --json`'s answer; it exits 0 when there are
/// none and 1 when there are some, anything else is a failure to audit. The findings are
/// counted, not kept: a userDir full of wrongly owned files makes thousands of them, and
/// their strings would stay in the supervisor's heap.
fn findings_count(status: &std::process::ExitStatus, stdout: &[u8]) -> Result<usize, String> {
    if !matches!(status.code(), Some(0 | 1)) {
        return Err(format!("`redwarden check` failed ({status})"));
    }
    match serde_json::from_slice::<CheckOutput>(stdout) {
        Ok(output) => Ok(output.findings.0),
        Err(e) if e.is_data() => Err(format!(
            "`redwarden check --json` printed no findings list: {e}"
        )),
        Err(e) => Err(format!("`redwarden check --json` printed no JSON: {e}")),
    }
}

#[derive(serde::Deserialize)]
struct CheckOutput {
    findings: Counted,
}

/// A JSON list, counted as it is read.
struct Counted(usize);

impl<'de> serde::Deserialize<'de> for Counted {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Counter;
        impl<'de> serde::de::Visitor<'de> for Counter {
            type Value = Counted;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of findings")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Counted, A::Error> {
                let mut count = 0;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    count += 1;
                }
                Ok(Counted(count))
            }
        }
        deserializer.deserialize_seq(Counter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Finding, Report, Severity};
    use std::os::unix::process::ExitStatusExt;
    use std::path::Path;

    fn exited(code: i32) -> std::process::ExitStatus {
        std::process::ExitStatus::from_raw(code << 8)
    }

    #[test]
    fn the_count_is_check_s_own_findings_list() {
        let mut report = Report::default();
        report
            .findings
            .push(Finding::new("perms.mode", Severity::High, "too open", true));
        report.findings.push(Finding::new(
            "front.fingerprint",
            Severity::Info,
            "sha256",
            false,
        ));
        let json = report.to_json("check", Path::new("/"));
        assert_eq!(findings_count(&exited(1), json.as_bytes()), Ok(2));
        let clean = Report::default().to_json("check", Path::new("/"));
        assert_eq!(findings_count(&exited(0), clean.as_bytes()), Ok(0));
    }

    #[test]
    fn a_failed_or_garbled_check_is_no_count() {
        let clean = Report::default().to_json("check", Path::new("/"));
        assert!(findings_count(&exited(2), clean.as_bytes())
            .unwrap_err()
            .contains("failed"));
        assert!(findings_count(&exited(1), b"Killed").is_err());
        assert!(findings_count(&exited(0), b"{\"command\":\"check\"}")
            .unwrap_err()
            .contains("no findings list"));
        assert!(findings_count(&exited(0), b"{\"findings\":{}}")
            .unwrap_err()
            .contains("no findings list"));
        assert!(findings_count(&exited(1), b"{\"findings\":[")
            .unwrap_err()
            .contains("no JSON"));
        assert!(findings_count(&std::process::ExitStatus::from_raw(9), clean.as_bytes()).is_err());
    }

    #[test]
    fn the_audit_is_every_check_but_npm_on_the_same_configuration() {
        let args = audit_args(&Source::Explicit("/etc/rw.toml".into()));
        let args: Vec<&str> = args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            &args[..4],
            ["--json", "--quiet", "--config", "/etc/rw.toml"]
        );
        assert_eq!(&args[4..6], ["check", "--only"]);
        let steps: Vec<&str> = args[6].split(',').collect();
        assert!(!steps.contains(&"npm"));
        assert_eq!(steps.len(), harden::checks().count() - 1);
        assert!(!audit_args(&Source::Default).iter().any(|a| a == "--config"));
    }
}
