//! `redwarden run` against a real Node-RED from npm, talking to a stand-in for systemd's notify
//! socket: readiness, watchdog, restarts after a kill, a hang, a leak and a crash loop, restored
//! flows, and which signals the supervisor obeys. systemd itself (the watchdog killing a frozen
//! supervisor, restarting a killed one) is the lab's part.
//!
//! Node-RED comes from REDWARDEN_TEST_NODERED (the node-red package folder; tests/run.sh installs
//! it from npm); node from PATH. As root the supervisor runs as nobody, never as root: as root
//! outside systemd it would apply the policy to this machine.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The user the supervisor runs as in these tests.
fn runner() -> (u32, String) {
    if is_root() {
        return (NOBODY, "nobody".into());
    }
    let uid = rustix::process::geteuid().as_raw();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let name = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == uid.to_string())
        .map(|f| f[0].to_string())
        .expect("this user has a passwd entry");
    (uid, name)
}

/// A GET on Node-RED: status code and body, or None when nothing answers.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = std::net::TcpStream::connect_timeout(
        &([127, 0, 0, 1], port).into(),
        Duration::from_secs(1),
    )
    .ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let code = answer.split(' ').nth(1)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

fn wait_until<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A flow: GET /hello answers "hello"; GET /leak keeps 40 MB more each call.
const FLOWS: &str = r#"[
 {"id":"t1","type":"tab","label":"test"},
 {"id":"h1","type":"http in","z":"t1","url":"/hello","method":"get","wires":[["f1"]]},
 {"id":"f1","type":"function","z":"t1","func":"msg.payload = 'hello'; return msg;","outputs":1,"wires":[["r1"]]},
 {"id":"r1","type":"http response","z":"t1","wires":[]},
 {"id":"h2","type":"http in","z":"t1","url":"/leak","method":"get","wires":[["f2"]]},
 {"id":"f2","type":"function","z":"t1","func":"const kept = context.get('kept') || []; kept.push(Buffer.alloc(40e6, 1)); context.set('kept', kept); msg.payload = String(kept.length); return msg;","outputs":1,"wires":[["r1"]]}
]"#;

/// A flow that kills Node-RED a moment after every start: a crash loop that safe mode stops.
const CRASHING_FLOWS: &str = r#"[
 {"id":"t1","type":"tab","label":"crash"},
 {"id":"i1","type":"inject","z":"t1","once":true,"onceDelay":"0.2","wires":[["e1"]]},
 {"id":"e1","type":"exec","z":"t1","command":"kill -9 $PPID","addpay":"","append":"","useSpawn":"false","timer":"","winHide":false,"wires":[[],[],[]]}
]"#;

/// A userDir, a config and a notify socket, for one or more supervisor runs in turn.
struct Workspace {
    dir: tempfile::TempDir,
    port: u16,
    config: PathBuf,
}

impl Workspace {
    /// A userDir holding `flows` (Node-RED writes its default settings.js), and a config with
    /// `extra` lines in [supervise].
    fn new(flows: &str, extra: &str) -> Option<Self> {
        let (install, node) = common::test_nodered("supervise")?;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let user_dir = dir.path().join("userdir");
        std::fs::create_dir(&user_dir).unwrap();
        std::fs::write(user_dir.join("flows.json"), flows).unwrap();
        let (uid, user) = runner();
        if is_root() {
            for entry in [&user_dir, &user_dir.join("flows.json")] {
                std::os::unix::fs::chown(entry, Some(uid), Some(uid)).unwrap();
            }
        }
        let port = common::free_port();
        let config = dir.path().join("redwarden.toml");
        std::fs::write(
            &config,
            format!(
                "[service]\nuser = \"{user}\"\n[nodered]\nuser_dir = \"{}\"\ninstall_dir = \"{}\"\nnode = \"{}\"\nport = {port}\n[supervise]\nprobe_interval_secs = 1\nstop_timeout_secs = 3\n{extra}\n",
                user_dir.display(),
                install.display(),
                node.display()
            ),
        )
        .unwrap();
        Some(Self { dir, port, config })
    }

    fn user_dir(&self) -> PathBuf {
        self.dir.path().join("userdir")
    }

    /// Starts `redwarden run` with a stand-in for systemd's notify socket.
    fn run(&self) -> Supervised {
        let socket = self.dir.path().join("notify.sock");
        let _ = std::fs::remove_file(&socket);
        let listener = UnixDatagram::bind(&socket).unwrap();
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777)).unwrap();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let sink = messages.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = listener.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                sink.lock().unwrap().push((Instant::now(), text));
            }
        });
        let mut command = if is_root() {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
            c.arg(env!("CARGO_BIN_EXE_redwarden"));
            c
        } else {
            Command::new(env!("CARGO_BIN_EXE_redwarden"))
        };
        let child = command
            .arg("--config")
            .arg(&self.config)
            .arg("run")
            .env("NOTIFY_SOCKET", &socket)
            .env("WATCHDOG_USEC", "2000000")
            .env_remove("WATCHDOG_PID")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        Supervised {
            port: self.port,
            child,
            messages,
        }
    }
}

struct Supervised {
    port: u16,
    child: Child,
    messages: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Supervised {
    fn supervisor_pid(&self) -> u32 {
        self.child.id()
    }

    /// Node-RED: the supervisor's child process.
    fn nodered_pid(&self) -> Option<u32> {
        let pid = self.supervisor_pid();
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    fn said(&self, text: &str) -> bool {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .any(|(_, m)| m.contains(text))
    }

    fn wait_said(&self, text: &str, timeout: Duration) {
        wait_until(&format!("the supervisor says {text:?}"), timeout, || {
            self.said(text).then_some(())
        });
    }

    fn statuses(&self) -> Vec<String> {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, m)| {
                m.lines()
                    .filter_map(|l| l.strip_prefix("STATUS="))
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn wait_serving(&self, timeout: Duration) -> u32 {
        wait_until("Node-RED serves", timeout, || {
            get(self.port, "/hello")
                .filter(|(code, _)| *code == 200)
                .and(self.nodered_pid())
        })
    }

    fn signal(&self, pid: u32, signal: rustix::process::Signal) {
        rustix::process::kill_process(rustix::process::Pid::from_raw(pid as i32).unwrap(), signal)
            .unwrap();
    }

    /// Stops the supervisor as systemd would and returns its exit code.
    fn stop(mut self) -> i32 {
        self.signal(self.supervisor_pid(), rustix::process::Signal::TERM);
        self.exit_code(Duration::from_secs(15))
    }

    fn exit_code(&mut self, timeout: Duration) -> i32 {
        let status = wait_until("the supervisor exits", timeout, || {
            self.child.try_wait().unwrap()
        });
        status.code().unwrap_or(-1)
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            if let Some(pid) = self.nodered_pid() {
                let _ = rustix::process::kill_process_group(
                    rustix::process::Pid::from_raw(pid as i32).unwrap(),
                    rustix::process::Signal::KILL,
                );
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn ready_only_once_node_red_answers_and_a_killed_one_is_back_at_once() {
    let Some(workspace) = Workspace::new(FLOWS, "") else {
        return;
    };
    let run = workspace.run();
    run.wait_said("READY=1", Duration::from_secs(60));
    let ready_at = run
        .messages
        .lock()
        .unwrap()
        .iter()
        .find(|(_, m)| m.contains("READY=1"))
        .map(|(t, _)| *t)
        .unwrap();
    assert!(
        get(run.port, "/auth/login").is_some_and(|(code, _)| code == 200),
        "READY=1 came before Node-RED answered its probe"
    );
    // Node-RED listens before its flows have started (the runtime does not await them), so the
    // flow's own route may take a moment longer than the probe.
    let first = run.wait_serving(Duration::from_secs(5));
    assert_eq!(
        get(run.port, "/hello").map(|(_, body)| body).as_deref(),
        Some("hello")
    );
    // The watchdog is pinged at half of WATCHDOG_USEC (2 s) while the loop runs.
    std::thread::sleep(Duration::from_millis(2500));
    let pings = run
        .messages
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, m)| *t >= ready_at && m.contains("WATCHDOG=1"))
        .count();
    assert!(pings >= 2, "{pings} watchdog pings in 2.5 s");
    assert!(
        run.statuses().iter().any(|s| s.starts_with("serving")),
        "{:?}",
        run.statuses()
    );

    let killed = Instant::now();
    run.signal(first, rustix::process::Signal::KILL);
    let second = wait_until("a new Node-RED serves", Duration::from_secs(30), || {
        run.nodered_pid()
            .filter(|pid| *pid != first)
            .filter(|_| get(run.port, "/hello").is_some_and(|(c, _)| c == 200))
    });
    eprintln!("kill -9 to serving again: {:?}", killed.elapsed());
    assert_ne!(first, second);
    assert!(
        run.statuses()
            .iter()
            .any(|s| s.contains("killed by signal 9")),
        "{:?}",
        run.statuses()
    );
    assert_eq!(run.stop(), 0);
}

#[test]
fn a_hung_node_red_is_noticed_and_replaced() {
    let Some(workspace) = Workspace::new(FLOWS, "probe_failures = 3") else {
        return;
    };
    let run = workspace.run();
    // Probe failures count once Node-RED has answered; before, the start timeout applies.
    run.wait_said("READY=1", Duration::from_secs(60));
    let hung = run.wait_serving(Duration::from_secs(5));
    let stopped_at = Instant::now();
    // A frozen event loop: the port still accepts, nothing answers, SIGINT does nothing.
    run.signal(hung, rustix::process::Signal::STOP);
    let replaced = wait_until("Node-RED is replaced", Duration::from_secs(40), || {
        run.nodered_pid().filter(|pid| *pid != hung)
    });
    let noticed = stopped_at.elapsed();
    eprintln!("hang to a new Node-RED: {noticed:?}");
    // probe interval 1 s x 3 failures, each failure at most the 1 s probe timeout, then 3 s
    // between SIGINT and SIGKILL.
    assert!(noticed < Duration::from_secs(12), "took {noticed:?}");
    assert!(
        !Path::new(&format!("/proc/{hung}")).exists(),
        "the hung one was reaped"
    );
    run.wait_serving(Duration::from_secs(60));
    assert!(
        run.statuses().iter().any(|s| s.contains("hung")),
        "{:?}",
        run.statuses()
    );
    assert_ne!(replaced, hung);
    assert_eq!(run.stop(), 0);
}

#[test]
fn memory_over_the_soft_limit_restarts_node_red() {
    let Some(workspace) = Workspace::new(FLOWS, "memory_limit = \"200M\"\nmemory_samples = 2")
    else {
        return;
    };
    let run = workspace.run();
    let leaking = run.wait_serving(Duration::from_secs(60));
    for _ in 0..5 {
        let _ = get(run.port, "/leak");
    }
    wait_until(
        "Node-RED is restarted for its memory",
        Duration::from_secs(30),
        || run.nodered_pid().filter(|pid| *pid != leaking),
    );
    assert!(
        run.statuses()
            .iter()
            .any(|s| s.contains("above the limit of 200.0 MiB")),
        "{:?}",
        run.statuses()
    );
    run.wait_serving(Duration::from_secs(60));
    assert_eq!(run.stop(), 0);
}

#[test]
fn a_crash_loop_gets_safe_mode_and_a_second_one_fails_the_unit() {
    let Some(workspace) = Workspace::new(CRASHING_FLOWS, "backoff_max_secs = 2") else {
        return;
    };
    let mut run = workspace.run();
    // Five starts that each die within a second, then one in safe mode: flows stopped, so the
    // editor serves and a person can fix the flow.
    run.wait_said("serves in safe mode", Duration::from_secs(90));
    let safe = run.nodered_pid().expect("Node-RED runs in safe mode");
    assert!(get(run.port, "/auth/login").is_some_and(|(code, _)| code == 200));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(run.nodered_pid(), Some(safe), "safe mode keeps running");
    // Safe mode dying too ends the supervision with exit 3, which the unit does not restart.
    run.signal(safe, rustix::process::Signal::KILL);
    assert_eq!(run.exit_code(Duration::from_secs(30)), 3);
    assert!(
        run.statuses()
            .iter()
            .any(|s| s.starts_with("gave up: crash loop")),
        "{:?}",
        run.statuses()
    );
}

#[test]
fn a_truncated_flows_file_is_restored_before_the_start() {
    let Some(workspace) = Workspace::new(FLOWS, "") else {
        return;
    };
    let run = workspace.run();
    run.wait_serving(Duration::from_secs(60));
    assert_eq!(run.stop(), 0);
    let flows = workspace.user_dir().join("flows.json");
    // A power cut mid-write on an SD card leaves an empty or cut-off flows file.
    let backups = || {
        std::fs::read_dir(workspace.user_dir().join(".redwarden/backups"))
            .unwrap()
            .count()
    };
    let mut counts = Vec::new();
    for damage in ["", "[{\"id\":\"t1\",\"ty"] {
        std::fs::write(&flows, damage).unwrap();
        let run = workspace.run();
        run.wait_serving(Duration::from_secs(60));
        assert_eq!(std::fs::read_to_string(&flows).unwrap(), FLOWS);
        assert_eq!(run.stop(), 0);
        counts.push(backups());
    }
    // The second restore put back what the newest copy holds: no copy of a copy.
    assert_eq!(counts[0], counts[1], "{counts:?}");
}

#[test]
fn signals_from_the_service_user_are_ignored_and_root_or_systemd_are_obeyed() {
    let Some(workspace) = Workspace::new(FLOWS, "") else {
        return;
    };
    let mut run = workspace.run();
    run.wait_serving(Duration::from_secs(60));
    // The supervisor runs as the configured service user, as Node-RED does: a SIGTERM or
    // SIGHUP sent as that user is a flow's, and changes nothing.
    let as_service_user = |signal: &str| {
        let mut kill = if is_root() {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--",
                "kill",
            ]);
            c
        } else {
            Command::new("kill")
        };
        let ok = kill
            .args([&format!("-{signal}"), &run.supervisor_pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{signal}");
    };
    as_service_user("TERM");
    as_service_user("HUP");
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        run.child.try_wait().unwrap().is_none(),
        "the supervisor obeyed its child's user"
    );
    assert!(get(run.port, "/hello").is_some_and(|(c, _)| c == 200));
    if is_root() {
        // root (an admin, or systemd's ExecReload=+) reloads and stops it.
        run.signal(run.supervisor_pid(), rustix::process::Signal::HUP);
        run.wait_said("RELOADING=1", Duration::from_secs(5));
        // systemd orders reloads by MONOTONIC_USEC: it must be this machine's monotonic clock
        // (a 32-bit time_t once made it overflow on armv7).
        let sent: i128 = run
            .messages
            .lock()
            .unwrap()
            .iter()
            .find_map(|(_, m)| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MONOTONIC_USEC=")?.parse().ok())
            })
            .expect("RELOADING=1 comes with MONOTONIC_USEC");
        let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        let now = i128::from(now.tv_sec) * 1_000_000 + i128::from(now.tv_nsec) / 1_000;
        assert!(
            (0..30_000_000).contains(&(now - sent)),
            "MONOTONIC_USEC {sent}, now {now}"
        );
        assert_eq!(run.stop(), 0);
    } else {
        let _ = run.child.kill();
    }
}
