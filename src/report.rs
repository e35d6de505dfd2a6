//! What `check` and `apply` say: findings, the changes made, and what could not be inspected.
//! Humans get a table (colour only on a terminal); `--json` gets one stable JSON object.

use serde::Serialize;
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
    Info,
}

impl Severity {
    fn label(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
            Self::Info => "info",
        }
    }

    fn colour(self) -> &'static str {
        match self {
            Self::Critical => "\x1b[1;31m",
            Self::High => "\x1b[31m",
            Self::Medium => "\x1b[33m",
            Self::Low => "\x1b[36m",
            Self::Info => "\x1b[2m",
        }
    }
}

/// One problem found. `id` is stable across releases: scripts and the lab match on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub id: &'static str,
    pub severity: Severity,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Whether `apply` fixes it.
    pub fixable: bool,
}

impl Finding {
    pub fn new(
        id: &'static str,
        severity: Severity,
        message: impl Into<String>,
        fixable: bool,
    ) -> Self {
        Self {
            id,
            severity,
            message: message.into(),
            path: None,
            fixable,
        }
    }

    pub fn at(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = Some(path.into());
        self
    }
}

/// Something that could not be looked at (unprivileged run, unreadable file): the report says so
/// instead of pretending it is fine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Uninspected {
    pub what: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    pub reason: String,
}

impl Uninspected {
    pub fn new(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            path: None,
            reason: reason.into(),
        }
    }

    pub fn at(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = Some(path.into());
        self
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// Changes `apply` made, one line each; empty for `check`.
    pub changes: Vec<String>,
    pub uninspected: Vec<Uninspected>,
    /// What the system counted: the firewall's refused and rate-limited connections.
    pub counters: std::collections::BTreeMap<String, u64>,
}

/// How many findings of one id the table shows before summarising the rest: a userDir copied from
/// another user can hold 20 000 wrongly owned files.
const ROWS_PER_ID: usize = 10;

impl Report {
    /// Whether anything is wrong: info lines (a generated password's whereabouts, an npm audit
    /// that could not reach the registry, the front door's fingerprint) say, they do not fail.
    pub fn has_findings(&self) -> bool {
        self.findings.iter().any(|f| f.severity != Severity::Info)
    }

    pub fn to_json(&self, command: &str, root: &std::path::Path) -> String {
        #[derive(Serialize)]
        struct Out<'a> {
            command: &'a str,
            root: &'a std::path::Path,
            #[serde(flatten)]
            report: &'a Report,
        }
        let mut out = serde_json::to_string_pretty(&Out {
            command,
            root,
            report: self,
        })
        .unwrap_or_default();
        out.push('\n');
        out
    }

    pub fn to_table(&self, colour: bool) -> String {
        let mut out = String::new();
        for change in &self.changes {
            let _ = writeln!(out, "changed  {change}");
        }
        let mut findings: Vec<&Finding> = self.findings.iter().collect();
        findings.sort_by(|a, b| (a.severity, a.id).cmp(&(b.severity, b.id)));
        let id_width = findings.iter().map(|f| f.id.len()).max().unwrap_or(0);
        let mut shown_of_id = 0;
        let mut previous_id = "";
        for (index, finding) in findings.iter().enumerate() {
            if finding.id != previous_id {
                previous_id = finding.id;
                shown_of_id = 0;
            }
            shown_of_id += 1;
            if shown_of_id > ROWS_PER_ID {
                let next_differs = findings.get(index + 1).is_none_or(|n| n.id != finding.id);
                if next_differs {
                    let hidden = shown_of_id - ROWS_PER_ID;
                    let _ = writeln!(
                        out,
                        "{:8} {:id_width$}  … and {hidden} more like this (--json lists all)",
                        "", finding.id
                    );
                }
                continue;
            }
            let severity = if colour {
                format!(
                    "{}{:8}\x1b[0m",
                    finding.severity.colour(),
                    finding.severity.label()
                )
            } else {
                format!("{:8}", finding.severity.label())
            };
            let fix = if finding.fixable {
                ""
            } else {
                " [not fixed by apply]"
            };
            let path = finding
                .path
                .as_ref()
                .map(|p| format!(" ({})", p.display()))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{severity} {:id_width$}  {}{path}{fix}",
                finding.id, finding.message
            );
        }
        for skipped in &self.uninspected {
            let path = skipped
                .path
                .as_ref()
                .map(|p| format!(" {}", p.display()))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "not inspected: {}{path}: {}",
                skipped.what, skipped.reason
            );
        }
        if !self.counters.is_empty() {
            let counted: Vec<String> = self
                .counters
                .iter()
                .map(|(name, count)| format!("{name} {count}"))
                .collect();
            let _ = writeln!(out, "counted: {}", counted.join(", "));
        }
        let fixable = self.findings.iter().filter(|f| f.fixable).count();
        let _ = writeln!(
            out,
            "{} finding(s), {fixable} fixable by `redwarden apply`; {} change(s) made; {} item(s) not inspected",
            self.findings.len(),
            self.changes.len(),
            self.uninspected.len()
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(id: &'static str, path: &str) -> Finding {
        Finding {
            id,
            severity: Severity::High,
            message: "m".into(),
            path: Some(PathBuf::from(path)),
            fixable: true,
        }
    }

    #[test]
    fn json_has_the_documented_fields() {
        let report = Report {
            findings: vec![finding("perms.settings-writable", "/x/settings.js")],
            ..Report::default()
        };
        let value: serde_json::Value =
            serde_json::from_str(&report.to_json("check", std::path::Path::new("/"))).unwrap();
        let f = &value["findings"][0];
        assert_eq!(f["id"], "perms.settings-writable");
        assert_eq!(f["severity"], "high");
        assert_eq!(f["fixable"], true);
        assert_eq!(f["path"], "/x/settings.js");
        assert_eq!(value["command"], "check");
    }

    #[test]
    fn table_summarises_long_runs_of_one_id() {
        let report = Report {
            findings: (0..25)
                .map(|i| finding("perms.foreign-owner", &format!("/f{i}")))
                .collect(),
            ..Report::default()
        };
        let table = report.to_table(false);
        assert_eq!(table.matches("perms.foreign-owner  m").count(), ROWS_PER_ID);
        assert!(table.contains("… and 15 more like this"), "{table}");
        assert!(!table.contains('\x1b'));
    }
}
