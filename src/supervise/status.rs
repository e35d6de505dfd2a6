//! What the supervisor is doing, in a small file under /run that anyone may read
//! (`redwarden status`), and optionally as Prometheus metrics for node_exporter's textfile
//! collector.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::host::fs::{self, FsError};

pub const STATUS_FILE: &str = "/run/redwarden/status.json";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// starting, serving, restarting, safe-mode, stopping, stopped, crash-loop
    pub phase: String,
    pub supervisor_pid: u32,
    pub nodered_pid: Option<u32>,
    /// UNIX seconds when the current Node-RED started.
    pub started_at: Option<u64>,
    pub restarts: u32,
    pub last_exit: Option<String>,
    pub last_exit_at: Option<u64>,
    pub probe_latency_ms: Option<f64>,
    pub probe_ok: bool,
    pub rss_bytes: Option<u64>,
    /// Findings of the last audit; None when this user could not run one.
    pub findings: Option<usize>,
    pub safe_mode: bool,
    pub updated_at: u64,
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Status {
    pub fn uptime(&self, now: u64) -> Option<u64> {
        self.started_at.map(|t| now.saturating_sub(t))
    }

    /// Written whole and renamed into place, so a reader never sees half a file.
    pub fn write(&self, path: &Path) -> Result<(), FsError> {
        let json = serde_json::to_string_pretty(self).unwrap_or_default() + "\n";
        write_public(path, json.as_bytes())
    }

    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "{}: not there: `redwarden run` is not running",
                    path.display()
                )
            } else {
                format!("{}: {e}", path.display())
            }
        })?;
        serde_json::from_str(&text)
            .map_err(|e| format!("{}:{}:{}: {e}", path.display(), e.line(), e.column()))
    }

    pub fn to_table(&self, now: u64) -> String {
        let mut out = String::new();
        let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        let rows = [
            ("phase", self.phase.clone()),
            ("supervisor pid", self.supervisor_pid.to_string()),
            (
                "Node-RED pid",
                or_dash(self.nodered_pid.map(|p| p.to_string())),
            ),
            ("uptime", or_dash(self.uptime(now).map(human_duration))),
            ("restarts", self.restarts.to_string()),
            ("last exit", or_dash(self.last_exit.clone())),
            (
                "probe",
                match (self.probe_ok, self.probe_latency_ms) {
                    (true, Some(ms)) => format!("answers in {ms:.1} ms"),
                    _ => "no answer yet".into(),
                },
            ),
            (
                "memory",
                or_dash(
                    self.rss_bytes
                        .map(|b| format!("{:.1} MiB", b as f64 / 1048576.0)),
                ),
            ),
            ("findings", or_dash(self.findings.map(|f| f.to_string()))),
        ];
        for (key, value) in rows {
            let _ = writeln!(out, "{key:<15} {value}");
        }
        if now.saturating_sub(self.updated_at) > 60 {
            let _ = writeln!(
                out,
                "(last updated {} ago: is the supervisor frozen?)",
                human_duration(now - self.updated_at)
            );
        }
        out
    }

    /// The Prometheus text exposition format.
    pub fn metrics(&self, now: u64) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(out, "# HELP redwarden_{name} {help}\n# TYPE redwarden_{name} {kind}\nredwarden_{name} {value}");
        };
        metric(
            "nodered_up",
            "gauge",
            "Whether Node-RED answers its liveness probe.",
            u8::from(self.probe_ok).to_string(),
        );
        metric(
            "nodered_restarts_total",
            "counter",
            "Restarts of Node-RED by the supervisor.",
            self.restarts.to_string(),
        );
        metric(
            "nodered_safe_mode",
            "gauge",
            "Whether Node-RED runs in safe mode after a crash loop.",
            u8::from(self.safe_mode).to_string(),
        );
        if let Some(uptime) = self.uptime(now) {
            metric(
                "nodered_uptime_seconds",
                "gauge",
                "Seconds since Node-RED started.",
                uptime.to_string(),
            );
        }
        if let Some(ms) = self.probe_latency_ms {
            metric(
                "nodered_probe_latency_seconds",
                "gauge",
                "How long the last liveness probe took.",
                format!("{:.6}", ms / 1000.0),
            );
        }
        if let Some(rss) = self.rss_bytes {
            metric(
                "nodered_resident_memory_bytes",
                "gauge",
                "Node-RED's resident memory.",
                rss.to_string(),
            );
        }
        if let Some(findings) = self.findings {
            metric(
                "findings",
                "gauge",
                "Findings of redwarden's last audit.",
                findings.to_string(),
            );
        }
        out
    }
}

/// A file others may read, written by the supervisor as the service user.
pub fn write_public(path: &Path, contents: &[u8]) -> Result<(), FsError> {
    let (uid, gid) = fs::own_ids();
    fs::write_file(path, contents, 0o644, uid, gid).map(|_| ())
}

pub fn human_duration(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs} s"),
        120..=7199 => format!("{} min", secs / 60),
        7200..=172_799 => format!("{} h", secs / 3600),
        _ => format!("{} days", secs / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serving() -> Status {
        Status {
            phase: "serving".into(),
            supervisor_pid: 40,
            nodered_pid: Some(41),
            started_at: Some(1000),
            restarts: 2,
            last_exit: Some("exited with code 1".into()),
            last_exit_at: Some(990),
            probe_latency_ms: Some(2.5),
            probe_ok: true,
            rss_bytes: Some(110 << 20),
            findings: Some(0),
            safe_mode: false,
            updated_at: 1100,
        }
    }

    #[test]
    fn the_file_round_trips_and_is_world_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("status.json");
        serving().write(&path).unwrap();
        assert_eq!(Status::read(&path).unwrap(), serving());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );
        std::fs::write(&path, "{\"phase\": 3}").unwrap();
        assert!(
            Status::read(&path).unwrap_err().contains("status.json:1:"),
            "names file and line"
        );
    }

    #[test]
    fn the_table_says_what_runs_and_flags_a_stale_file() {
        let table = serving().to_table(1100);
        assert!(table.contains("uptime          100 s"), "{table}");
        assert!(table.contains("answers in 2.5 ms"), "{table}");
        assert!(table.contains("110.0 MiB"), "{table}");
        assert!(!table.contains("frozen"));
        assert!(serving().to_table(1300).contains("frozen"));
    }

    #[test]
    fn metrics_are_prometheus_text() {
        let text = serving().metrics(1100);
        for line in [
            "redwarden_nodered_up 1",
            "redwarden_nodered_restarts_total 2",
            "redwarden_nodered_uptime_seconds 100",
            "redwarden_nodered_probe_latency_seconds 0.002500",
            "redwarden_nodered_resident_memory_bytes 115343360",
            "# TYPE redwarden_nodered_restarts_total counter",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
