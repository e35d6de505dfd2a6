//! Node-RED as a child process: how it is started, how its output reaches the journal, and how
//! it is stopped.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::process::{Pid, Signal};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

/// Variables that belong to the supervisor's own contract with systemd: a child holding them
/// could speak for the service (READY, WATCHDOG) or claim its sockets.
pub const SERVICE_CONTRACT: &[&str] = &[
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
];

/// Everything needed to start Node-RED.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub node: PathBuf,
    pub jitless: bool,
    pub red_js: PathBuf,
    pub user_dir: PathBuf,
    pub settings: PathBuf,
    pub port: u16,
    /// The settings redwarden enforces, passed with `-D @file` when the file exists.
    pub overrides: PathBuf,
}

impl Launch {
    /// `--settings` only names a file that exists: without one, Node-RED writes its default
    /// settings.js into the userDir on the first start.
    pub fn args(
        &self,
        safe_mode: bool,
        settings_exist: bool,
        overrides_exist: bool,
    ) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        if self.jitless {
            args.push("--jitless".into());
        }
        args.push(self.red_js.clone().into());
        let mut options = vec![("--userDir", self.user_dir.clone().into_os_string())];
        if settings_exist {
            options.push(("--settings", self.settings.clone().into_os_string()));
        }
        options.push(("--port", self.port.to_string().into()));
        if overrides_exist {
            // After settings.js has loaded, so the enforced values win.
            let mut define = OsString::from("@");
            define.push(&self.overrides);
            options.push(("-D", define));
        }
        for (flag, value) in options {
            args.push(flag.into());
            args.push(value);
        }
        if safe_mode {
            args.push("--safe".into());
        }
        args
    }

    /// The supervisor's environment minus its systemd contract, with HOME at the userDir.
    /// JOURNAL_STREAM goes too: Node-RED's output reaches the journal through the supervisor.
    pub fn environment(
        &self,
        inherited: impl Iterator<Item = (OsString, OsString)>,
    ) -> Vec<(OsString, OsString)> {
        let mut env: Vec<_> = inherited
            .filter(|(key, _)| {
                key != "HOME"
                    && key != "JOURNAL_STREAM"
                    && !SERVICE_CONTRACT.iter().any(|s| key == s)
            })
            .collect();
        env.push(("HOME".into(), self.user_dir.clone().into_os_string()));
        env
    }

    /// Starts Node-RED in its own process group, so a stop reaches whatever its flows spawned.
    pub fn spawn(&self, safe_mode: bool) -> std::io::Result<Child> {
        let mut command = Command::new(&self.node);
        command
            .args(self.args(safe_mode, self.settings.exists(), self.overrides.exists()))
            .env_clear()
            .envs(self.environment(std::env::vars_os()))
            .current_dir(&self.user_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let supervisor = rustix::process::getpid();
        // SAFETY: the closure runs between fork and exec and makes only async-signal-safe
        // system calls (prctl, getppid); it allocates nothing.
        #[allow(unsafe_code)]
        unsafe {
            command.pre_exec(move || {
                // Node-RED must not outlive a supervisor that dies without stopping it (kill -9
                // outside systemd, which would otherwise reap the cgroup).
                rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
                if rustix::process::getppid() != Some(supervisor) {
                    return Err(std::io::Error::other(
                        "the supervisor died while starting Node-RED",
                    ));
                }
                Ok(())
            });
        }
        command.spawn()
    }
}

/// Stops Node-RED: SIGINT (its graceful stop: flows closed, context flushed), then SIGKILL to
/// its whole process group after `grace`. Returns once it is reaped.
pub async fn stop(child: &mut Child, grace: Duration) -> std::io::Result<ExitStatus> {
    if let Some(status) = child.try_wait()? {
        kill_group(child_pid(child));
        return Ok(status);
    }
    let pid = child_pid(child);
    if let Some(pid) = pid {
        let _ = rustix::process::kill_process(pid, Signal::INT);
    }
    let status = match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status?,
        Err(_) => {
            tracing::warn!("Node-RED did not stop within {grace:?} of SIGINT: killing it");
            kill_group(pid);
            child.wait().await?
        }
    };
    // Whatever its flows started in its group goes with it, so nothing holds the port.
    kill_group(pid);
    Ok(status)
}

pub fn child_pid(child: &Child) -> Option<Pid> {
    child.id().and_then(|id| Pid::from_raw(id as i32))
}

fn kill_group(pid: Option<Pid>) {
    if let Some(pid) = pid {
        let _ = rustix::process::kill_process_group(pid, Signal::KILL);
    }
}

/// The syslog priority of one of Node-RED's log lines, from its `[level]` tag.
pub fn priority(line: &str, from_stderr: bool) -> u8 {
    let tag = line
        .split_once(" - [")
        .map(|(_, rest)| rest)
        .or_else(|| line.strip_prefix('['))
        .and_then(|rest| rest.split_once(']'))
        .map(|(tag, _)| tag);
    match tag {
        Some("error") => 3,
        Some("warn") => 4,
        Some("info") => 6,
        Some("debug" | "trace") => 7,
        // Untagged stderr is node's own: stack traces of uncaught exceptions, fatal errors.
        _ if from_stderr => 3,
        _ => 6,
    }
}

/// The line without Node-RED's own timestamp ("27 Nov 14:25:29 - "): the journal stamps it.
pub fn without_timestamp(line: &str) -> &str {
    match line.split_once(" - [") {
        Some((stamp, _)) if stamp.len() <= 20 && stamp.contains(':') => &line[stamp.len() + 3..],
        _ => line,
    }
}

/// The most recent error line, for STATUS= and `redwarden status` when Node-RED dies.
pub type LastError = Arc<Mutex<Option<String>>>;

/// Copies each line Node-RED writes to our stdout, with a `<priority>` prefix when stdout is
/// the journal.
pub async fn forward<R: AsyncRead + Unpin>(
    output: R,
    from_stderr: bool,
    to_journal: bool,
    last_error: LastError,
) {
    use std::io::Write;
    let mut lines = BufReader::new(output).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let priority = priority(&line, from_stderr);
        let text = if to_journal {
            without_timestamp(&line)
        } else {
            &line
        };
        if priority <= 3 {
            if let Ok(mut last) = last_error.lock() {
                *last = Some(without_timestamp(&line).chars().take(200).collect());
            }
        }
        let mut out = std::io::stdout().lock();
        let _ = if to_journal {
            writeln!(out, "<{priority}>{text}")
        } else {
            writeln!(out, "{text}")
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch() -> Launch {
        Launch {
            node: "/usr/bin/node".into(),
            jitless: false,
            red_js: "/usr/lib/node_modules/node-red/red.js".into(),
            user_dir: "/var/lib/node-red".into(),
            settings: "/var/lib/node-red/settings.js".into(),
            port: 1880,
            overrides: "/etc/redwarden/nodered.json".into(),
        }
    }

    #[test]
    fn arguments_carry_user_dir_settings_port_and_safe_mode() {
        let args: Vec<String> = launch()
            .args(true, true, true)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            args.join(" "),
            "/usr/lib/node_modules/node-red/red.js --userDir /var/lib/node-red --settings /var/lib/node-red/settings.js --port 1880 -D @/etc/redwarden/nodered.json --safe"
        );
        let jitless = Launch {
            jitless: true,
            ..launch()
        };
        assert_eq!(jitless.args(false, true, false)[0], "--jitless");
        let first_start = launch().args(false, false, false);
        assert!(
            !first_start.iter().any(|a| a == "--settings"),
            "{first_start:?}"
        );
    }

    #[test]
    fn the_systemd_contract_stays_with_the_supervisor() {
        let inherited = [
            ("NOTIFY_SOCKET", "/run/systemd/notify"),
            ("WATCHDOG_USEC", "30000000"),
            ("WATCHDOG_PID", "42"),
            ("JOURNAL_STREAM", "8:123"),
            ("HOME", "/root"),
            ("PATH", "/usr/bin:/bin"),
            ("TZ", "Europe/Berlin"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let env = launch().environment(inherited.into_iter());
        let keys: Vec<_> = env.iter().map(|(k, _)| k.to_str().unwrap()).collect();
        assert_eq!(keys, ["PATH", "TZ", "HOME"]);
        assert_eq!(env[2].1, "/var/lib/node-red");
    }

    #[test]
    fn log_levels_map_to_syslog_priorities() {
        let cases = [
            ("27 Nov 14:25:29 - [info] Server now running", false, 6),
            ("27 Nov 14:25:29 - [warn] Flows file not found", false, 4),
            ("27 Nov 14:25:29 - [error] [function:f] boom", false, 3),
            ("27 Nov 14:25:29 - [debug] x", false, 7),
            ("27 Nov 14:25:29 - [trace] x", false, 7),
            ("Welcome to Node-RED", false, 6),
            ("    at Object.<anonymous> (/x.js:1:1)", true, 3),
            ("[warn] npm notice", true, 4),
        ];
        for (line, stderr, expected) in cases {
            assert_eq!(priority(line, stderr), expected, "{line}");
        }
        assert_eq!(
            without_timestamp("27 Nov 14:25:29 - [info] Started flows"),
            "[info] Started flows"
        );
        assert_eq!(without_timestamp("plain line - [x]"), "plain line - [x]");
    }
}
