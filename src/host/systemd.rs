//! Talking to the running systemd: only on a live root that systemd booted. Under `--root` the
//! image's systemd picks the files up when it boots, so nothing is run.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::Root;

#[derive(Debug, thiserror::Error)]
#[error("systemctl {args}: {reason}")]
pub struct SystemctlError {
    pub args: String,
    pub reason: String,
}

/// Whether systemd manages this root right now (sd_booted(3): /run/systemd/system exists).
pub fn is_booted(root: &Root) -> bool {
    root.is_live() && Path::new("/run/systemd/system").is_dir()
}

pub fn systemctl(args: &[&str]) -> Result<(), SystemctlError> {
    let error = |reason: String| SystemctlError {
        args: args.join(" "),
        reason,
    };
    let out = Command::new("systemctl")
        .args(args)
        .output()
        .map_err(|e| error(e.to_string()))?;
    if !out.status.success() {
        return Err(error(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// The symlink that enables `unit` for `target`, as `systemctl enable` makes it.
pub fn wants_link(unit: &str, target: &str) -> PathBuf {
    Path::new("/etc/systemd/system")
        .join(format!("{target}.wants"))
        .join(unit)
}

/// Whether `systemctl <query> --quiet UNIT` answers yes (exit 0).
fn answers_yes(query: &str, unit: &str) -> bool {
    Command::new("systemctl")
        .args([query, "--quiet", unit])
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether the unit is active (running).
pub fn is_active(unit: &str) -> bool {
    answers_yes("is-active", unit)
}

/// Whether the unit is in the failed state.
pub fn is_failed(unit: &str) -> bool {
    answers_yes("is-failed", unit)
}

/// Whether this process runs as part of `unit` (its cgroup says so).
pub fn inside_unit(unit: &str) -> bool {
    std::fs::read_to_string("/proc/self/cgroup")
        .is_ok_and(|c| c.lines().any(|l| l.ends_with(&format!("/{unit}"))))
}
