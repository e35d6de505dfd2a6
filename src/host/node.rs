//! Running node on a script whose input may be hostile: unprivileged, with a wall-clock limit,
//! a heap limit and a cap on what it may print.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: Vec<u8>,
    /// Its exit code; None when killed (by us at the limit, or by a signal).
    pub code: Option<i32>,
    pub timed_out: bool,
    /// It printed more than the cap and was killed.
    pub flooded: bool,
    /// The last lines of stderr, for the finding.
    pub stderr_tail: String,
}

/// A folder of our own under the system temp folder, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(mode: u32) -> std::io::Result<Self> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let mut random = [0u8; 8];
        let _ = rustix::rand::getrandom(&mut random, rustix::rand::GetRandomFlags::empty());
        let name = format!("redwarden-{:016x}", u64::from_ne_bytes(random));
        let path = std::env::temp_dir().join(name);
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
        Ok(Self(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Address space node may use beyond its heap limit: its code, V8's reservations and thread
/// stacks fit in 1 GiB (Node 20 and 22 start and run Node-RED's CLI under it, seen here), while
/// a Buffer of gigabytes fails as an exception.
const ADDRESS_SPACE_BEYOND_HEAP_MIB: u64 = 1024;

/// What a run may use.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub wall: Duration,
    pub heap_mib: u32,
    pub stdout_bytes: usize,
}

/// util-linux's unshare, which can start a program as pid 1 of a pid namespace of its own.
const UNSHARE: &str = "/usr/bin/unshare";
const UNSHARE_ARGS: &[&str] = &["--pid", "--fork", "--kill-child"];

/// Whether [`UNSHARE`] is util-linux's and may make pid namespaces here (root, and not a
/// busybox applet without `--kill-child`); asked once.
fn can_unshare_pid() -> bool {
    static ABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ABLE.get_or_init(|| {
        Command::new(UNSHARE)
            .args(UNSHARE_ARGS)
            .arg("--")
            .arg("/bin/true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// The command that starts node as `user`. Run by root for another user, node is pid 1 of a pid
/// namespace of its own, so that when it ends the kernel kills whatever it started, a child
/// that left its process group (setsid) too: nothing a hostile script starts outlives it as the
/// service user outside the service's sandbox. Without util-linux's unshare, node runs as a
/// plain child and such a child is the gap.
fn node_command(node: &Path, user: Option<(u32, u32)>) -> Command {
    match user {
        Some((uid, gid)) if can_unshare_pid() => {
            // Pid 1 ignores signals it has no handler for, its own SIGKILL too, so node runs as
            // its child, as it would run under systemd: a script that kills itself dies.
            let mut command = Command::new(UNSHARE);
            command
                .args(UNSHARE_ARGS)
                .args(["--setuid", &uid.to_string(), "--setgid", &gid.to_string()])
                .args(["--", "/bin/sh", "-c", "\"$0\" \"$@\"; exit $?"])
                .arg(node);
            command
        }
        Some((uid, gid)) => {
            let mut command = Command::new(node);
            // std clears the supplementary groups before setgid/setuid when it runs as root.
            command.uid(uid).gid(gid);
            command
        }
        None => Command::new(node),
    }
}

/// Runs `node args…` (a script and its arguments, or a node option) as `user` (uid, gid; None:
/// as we are) in `cwd`, with `stdin` on its standard input and an environment of PATH and HOME
/// only. Its address space is bounded too: V8's heap limit does not cover Buffers.
pub fn run(
    node: &Path,
    args: &[&std::ffi::OsStr],
    cwd: &Path,
    user: Option<(u32, u32)>,
    stdin: &str,
    limits: Limits,
) -> std::io::Result<Outcome> {
    let mut command = node_command(node, user);
    let address_space = (u64::from(limits.heap_mib) + ADDRESS_SPACE_BEYOND_HEAP_MIB) << 20;
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the forked child before exec and calls only setrlimit(2),
    // which is async-signal-safe; it allocates nothing and touches no lock.
    unsafe {
        use std::os::unix::process::CommandExt as _;
        command.pre_exec(move || {
            rustix::process::setrlimit(
                rustix::process::Resource::As,
                rustix::process::Rlimit {
                    current: Some(address_space),
                    maximum: Some(address_space),
                },
            )
            .map_err(std::io::Error::from)
        });
    }
    command
        .arg(format!("--max-old-space-size={}", limits.heap_mib))
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = command.spawn()?;
    if let Some(mut input) = child.stdin.take() {
        use std::io::Write;
        let _ = input.write_all(stdin.as_bytes());
    }
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    for fd in [
        rustix::fd::AsFd::as_fd(&stdout),
        rustix::fd::AsFd::as_fd(&stderr),
    ] {
        let flags = rustix::fs::fcntl_getfl(fd)?;
        rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK)?;
    }
    let deadline = Instant::now() + limits.wall;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut buf = [0u8; 65536];
    let (mut timed_out, mut flooded) = (false, false);
    let status = loop {
        let mut read_some = false;
        for (pipe, sink, cap) in [
            (&mut stdout as &mut dyn Read, &mut out, limits.stdout_bytes),
            (&mut stderr as &mut dyn Read, &mut err, 65536),
        ] {
            if let Ok(n) = pipe.read(&mut buf) {
                if n > 0 {
                    read_some = true;
                    let room = cap.saturating_sub(sink.len());
                    sink.extend_from_slice(&buf[..n.min(room)]);
                    if n > room && cap == limits.stdout_bytes {
                        flooded = true;
                    }
                }
            }
        }
        if let Some(status) = child.try_wait()? {
            // Drain what is left in the pipe, up to the cap: a detached grandchild may still hold
            // it open and keep writing.
            let room = limits.stdout_bytes.saturating_sub(out.len()) as u64;
            let _ = (&mut stdout).take(room).read_to_end(&mut out);
            break Some(status);
        }
        if flooded || Instant::now() >= deadline {
            timed_out = !flooded;
            break None;
        }
        if !read_some {
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    if status.is_none() {
        if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    let stderr_text = String::from_utf8_lossy(&err);
    let tail: Vec<&str> = stderr_text.lines().rev().take(3).collect();
    Ok(Outcome {
        stdout: out,
        code: status.and_then(|s| s.code()),
        timed_out,
        flooded,
        stderr_tail: tail.into_iter().rev().collect::<Vec<_>>().join(" / "),
    })
}

/// `node --version`, given five seconds.
pub fn version(node: &Path) -> Option<String> {
    let limits = Limits {
        wall: Duration::from_secs(5),
        heap_mib: 16,
        stdout_bytes: 64,
    };
    let outcome = run(
        node,
        &["--version".as_ref()],
        Path::new("/"),
        None,
        "",
        limits,
    )
    .ok()?;
    (outcome.code == Some(0)).then(|| String::from_utf8_lossy(&outcome.stdout).trim().to_string())
}

/// Today's date (UTC) as yyyy-mm-dd.
pub fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

// qemu-user, which runs the ARM test tiers, ignores RLIMIT_AS for the programs it runs, so the
// bound is judged where the kernel applies it.
#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn buffers_beyond_the_heap_limit_fail_inside_node() {
        let Some(node) = crate::host::paths::NODE_BINARIES
            .iter()
            .map(Path::new)
            .find(|p| p.is_file())
        else {
            assert!(std::env::var_os("CI").is_none(), "CI installs node");
            eprintln!("SKIP buffers_beyond_the_heap_limit: no node installed");
            return;
        };
        // 4 GiB of Buffers, outside V8's heap: fine for node without the bound.
        let script = "const kept = []; try { for (let i = 0; i < 16; i++) kept.push(Buffer.alloc(256 << 20)); console.log('survived') } catch (e) { console.log('refused: ' + e.message) }";
        let limits = Limits {
            wall: Duration::from_secs(30),
            heap_mib: 64,
            stdout_bytes: 1024,
        };
        let outcome = run(
            node,
            &["-e".as_ref(), script.as_ref()],
            Path::new("/"),
            None,
            "",
            limits,
        )
        .unwrap();
        let printed = String::from_utf8_lossy(&outcome.stdout);
        assert!(printed.starts_with("refused: "), "{outcome:?}");
    }
}
