//! Privileged tier: the firewall in network namespaces this test creates (`ip netns add`, a veth
//! pair), never the host's own. A "server" namespace runs `redwarden apply --only firewall`; a
//! "LAN peer" namespace connects over real TCP from an allowed and a refused address.

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use redwarden::host::nft::canonical;

const SERVER_LAN: &str = "192.168.77.1";
const PEER_LAN: &str = "192.168.77.2";
const SERVER_PUBLIC: &str = "203.0.113.1";
const PEER_PUBLIC: &str = "203.0.113.2";
const NOBODY: u32 = 65534;
/// A local user with no business on Node-RED's port (Debian's `daemon`).
const DAEMON: u32 = 1;

fn ready() -> bool {
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIP firewall: network namespaces and nftables need root (CI runs it as root)");
        return false;
    }
    for tool in ["ip", "nft", "unshare"] {
        let found = Command::new(tool).arg("-V").output().is_ok()
            || Command::new(tool).arg("--version").output().is_ok();
        assert!(
            found,
            "{tool} is missing: tests/run.sh installs iproute2, nftables and util-linux"
        );
    }
    true
}

fn sh(args: &[&str]) -> Output {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Two namespaces joined by a veth pair; each end has a private and a public test address.
struct Lab {
    server: String,
    peer: String,
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let (server, peer) = (format!("rwt-s-{id}"), format!("rwt-p-{id}"));
        let lab = Self {
            server,
            peer,
            dir: tempfile::tempdir().unwrap(),
        };
        sh(&["ip", "netns", "add", &lab.server]);
        sh(&["ip", "netns", "add", &lab.peer]);
        let (s_if, p_if) = (format!("vs{id}"), format!("vp{id}"));
        let (s_if, p_if) = (&s_if[..s_if.len().min(15)], &p_if[..p_if.len().min(15)]);
        sh(&[
            "ip",
            "link",
            "add",
            s_if,
            "netns",
            &lab.server,
            "type",
            "veth",
            "peer",
            "name",
            p_if,
            "netns",
            &lab.peer,
        ]);
        for (ns, dev, addrs) in [
            (&lab.server, s_if, [SERVER_LAN, SERVER_PUBLIC]),
            (&lab.peer, p_if, [PEER_LAN, PEER_PUBLIC]),
        ] {
            for addr in addrs {
                let cidr = format!("{addr}/24");
                sh(&["ip", "-n", ns, "addr", "add", &cidr, "dev", dev]);
            }
            sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        lab
    }

    fn config(&self, extra: &str) -> PathBuf {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = self
            .dir
            .path()
            .join(format!("c{}.toml", COUNTER.fetch_add(1, Ordering::Relaxed)));
        std::fs::write(
            &path,
            format!("[service]\nuser = \"nobody\"\n[firewall]\n{extra}\n"),
        )
        .unwrap();
        path
    }

    /// redwarden inside the server namespace.
    fn redwarden(&self, config: &Path, args: &[&str]) -> Output {
        self.redwarden_with(&[], config, args)
    }

    /// redwarden inside the server namespace, with `env` (`KEY=value`) set for it.
    fn redwarden_with(&self, env: &[&str], config: &Path, args: &[&str]) -> Output {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.server,
                "/usr/bin/env",
                "-u",
                "SSH_CONNECTION",
            ])
            .args(env)
            .args([env!("CARGO_BIN_EXE_redwarden"), "--config"])
            .arg(config)
            .args(args)
            .output()
            .unwrap()
    }

    fn apply(&self, config: &Path) {
        let out = self.redwarden(config, &["apply", "--only", "firewall"]);
        assert!(
            out.status.code() == Some(0),
            "apply: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn nft(&self, args: &[&str]) -> Output {
        let mut all = vec!["ip", "netns", "exec", &self.server, "nft"];
        all.extend_from_slice(args);
        Command::new(all[0]).args(&all[1..]).output().unwrap()
    }

    /// The server namespace's redwarden table, canonical; None when absent.
    fn table(&self) -> Option<Vec<serde_json::Value>> {
        let out = self.nft(&["-j", "list", "table", "inet", "redwarden"]);
        out.status
            .success()
            .then(|| canonical(&serde_json::from_slice(&out.stdout).unwrap()))
    }

    /// Runs `f` on a thread that has entered `ns`, optionally as `uid` (a per-thread change).
    fn inside<T: Send + 'static>(
        ns: &str,
        uid: Option<u32>,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let path = format!("/run/netns/{ns}");
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap();
            rustix::thread::move_into_link_name_space(
                file.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .unwrap();
            if let Some(uid) = uid {
                let uid = rustix::process::Uid::from_raw(uid);
                rustix::thread::set_thread_res_uid(uid, uid, uid).unwrap();
            }
            f()
        })
        .join()
        .unwrap()
    }

    /// Listens on `ports` in `ns` (on every address), accepting forever.
    fn listen(ns: &str, ports: &[u16]) {
        for &port in ports {
            let listener = Self::inside(ns, None, move || {
                TcpListener::bind(("0.0.0.0", port)).unwrap()
            });
            std::thread::spawn(move || for _ in listener.incoming() {});
        }
    }

    /// Whether a TCP connection from `ns` (bound to `from`) to `to:port` is accepted.
    fn connects(ns: &str, uid: Option<u32>, from: Option<&str>, to: &str, port: u16) -> bool {
        let from: Option<IpAddr> = from.map(|f| f.parse().unwrap());
        let to = SocketAddr::new(to.parse().unwrap(), port);
        Self::inside(ns, uid, move || match from {
            Some(from) => connect_from(from, to),
            None => TcpStream::connect_timeout(&to, Duration::from_millis(700)).is_ok(),
        })
    }
}

/// A connect from a chosen source address, with a short timeout (a dropped SYN never answers).
fn connect_from(from: IpAddr, to: SocketAddr) -> bool {
    use rustix::net::sockopt::{set_socket_timeout, Timeout};
    use rustix::net::{bind, connect, socket, AddressFamily, SocketType};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    bind(&fd, &SocketAddr::new(from, 0)).unwrap();
    // connect(2) gives up after the send timeout: a dropped SYN never answers.
    set_socket_timeout(&fd, Timeout::Send, Some(Duration::from_millis(700))).unwrap();
    connect(&fd, &to).is_ok()
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.server, &self.peer] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

#[test]
fn allowed_sources_connect_refused_ones_do_not_and_other_ports_stay_open() {
    if !ready() {
        return;
    }
    let lab = Lab::new();
    Lab::listen(&lab.server, &[1880, 22, 8080]);
    let config = lab.config("");
    lab.apply(&config);
    let peer = lab.peer.clone();
    assert!(
        Lab::connects(&peer, None, Some(PEER_LAN), SERVER_LAN, 1880),
        "a LAN peer reaches Node-RED"
    );
    assert!(
        !Lab::connects(&peer, None, Some(PEER_PUBLIC), SERVER_PUBLIC, 1880),
        "a public source does not"
    );
    assert!(
        Lab::connects(&peer, None, Some(PEER_PUBLIC), SERVER_PUBLIC, 22),
        "SSH is never filtered"
    );
    assert!(
        Lab::connects(&peer, None, Some(PEER_PUBLIC), SERVER_PUBLIC, 8080),
        "other ports are not redwarden's"
    );
    assert!(
        Lab::connects(&lab.server, None, None, "127.0.0.1", 1880),
        "this device reaches Node-RED"
    );
    // The check is clean and counts what was refused.
    let out = lab.redwarden(&config, &["--json", "check", "--only", "firewall"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(
        report["counters"]["firewall.refused"].as_u64().unwrap() >= 1,
        "{report}"
    );
    // A second apply changes nothing.
    let again = lab.redwarden(&config, &["--json", "apply", "--only", "firewall"]);
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["changes"], serde_json::json!([]), "{again}");
}

#[test]
fn behind_the_front_door_node_reds_port_is_loopback_only_and_for_its_users_only() {
    if !ready() {
        return;
    }
    let lab = Lab::new();
    Lab::listen(&lab.server, &[1880, 8443]);
    let config = lab.config("\n[front]\nenabled = true\nlisten = \"0.0.0.0:8443\"");
    lab.apply(&config);
    let peer = lab.peer.clone();
    assert!(
        Lab::connects(&peer, None, Some(PEER_LAN), SERVER_LAN, 8443),
        "a LAN peer reaches the front door"
    );
    assert!(
        !Lab::connects(&peer, None, Some(PEER_LAN), SERVER_LAN, 1880),
        "but not Node-RED itself"
    );
    assert!(
        !Lab::connects(&peer, None, Some(PEER_PUBLIC), SERVER_PUBLIC, 8443),
        "a public source reaches neither"
    );
    let server = lab.server.clone();
    assert!(
        Lab::connects(&server, Some(NOBODY), None, "127.0.0.1", 1880),
        "the service user (the supervisor's probe) reaches Node-RED over loopback"
    );
    assert!(
        Lab::connects(&server, None, None, "127.0.0.1", 1880),
        "so does root"
    );
    assert!(
        !Lab::connects(&server, Some(DAEMON), None, "127.0.0.1", 1880),
        "another local user is refused: it would go around the front door's TLS"
    );
    assert!(
        !Lab::connects(&server, Some(DAEMON), None, SERVER_LAN, 1880),
        "and on the device's own LAN address, which is loopback traffic too"
    );
    let out = lab.redwarden(&config, &["--json", "check", "--only", "firewall"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn new_connections_are_rate_limited_per_source() {
    if !ready() {
        return;
    }
    let lab = Lab::new();
    Lab::listen(&lab.server, &[1880]);
    lab.apply(&lab.config("rate_per_source = 2"));
    let peer = lab.peer.clone();
    let accepted = Lab::inside(&peer, None, || {
        (0..12)
            .filter(|_| {
                connect_from(
                    PEER_LAN.parse().unwrap(),
                    SocketAddr::new(SERVER_LAN.parse().unwrap(), 1880),
                )
            })
            .count()
    });
    assert!(
        (2..12).contains(&accepted),
        "{accepted} of 12 quick connections accepted at 2/s, burst 4"
    );
}

#[test]
fn a_foreign_table_is_never_touched() {
    if !ready() {
        return;
    }
    let lab = Lab::new();
    let foreign = "table inet other {\n\tchain c {\n\t\ttype filter hook input priority 0; policy accept;\n\t\ttcp dport 9999 drop\n\t}\n}\n";
    let mut load = Command::new("ip")
        .args(["netns", "exec", &lab.server, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut load.stdin.take().unwrap(), foreign.as_bytes()).unwrap();
    assert!(load.wait().unwrap().success());
    let before = lab.nft(&["list", "table", "inet", "other"]).stdout;
    lab.apply(&lab.config(""));
    lab.apply(&lab.config("sources = [\"10.0.0.0/8\"]\negress = true"));
    lab.apply(&lab.config("enabled = false"));
    assert_eq!(lab.table(), None, "disabled: redwarden's table is gone");
    assert_eq!(lab.nft(&["list", "table", "inet", "other"]).stdout, before);
}

#[test]
fn drift_is_reported_and_repaired() {
    if !ready() {
        return;
    }
    let lab = Lab::new();
    let config = lab.config("");
    lab.apply(&config);
    let finding = |expected: &str| {
        let out = lab.redwarden(&config, &["--json", "check", "--only", "firewall"]);
        assert_eq!(out.status.code(), Some(1));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["findings"][0]["id"], expected, "{report}");
    };
    assert!(lab
        .nft(&["insert", "rule", "inet", "redwarden", "nodered", "accept"])
        .status
        .success());
    finding("firewall.drifted");
    lab.apply(&config);
    assert!(lab
        .nft(&["delete", "table", "inet", "redwarden"])
        .status
        .success());
    finding("firewall.missing");
    lab.apply(&config);
    let out = lab.redwarden(&config, &["check", "--only", "firewall"]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn egress_is_limited_to_the_listed_destinations_for_the_service_user_only() {
    if !ready() {
        return;
    }
    let lab = Lab::new();
    Lab::listen(&lab.peer, &[8080, 8081]);
    lab.apply(&lab.config(&format!(
        "egress = true\negress_allow = [\"{PEER_LAN}:8080\"]"
    )));
    let server = lab.server.clone();
    assert!(
        Lab::connects(&server, Some(NOBODY), None, PEER_LAN, 8080),
        "an allowed destination"
    );
    assert!(
        !Lab::connects(&server, Some(NOBODY), None, PEER_LAN, 8081),
        "anything else is dropped"
    );
    assert!(
        Lab::connects(&server, None, None, PEER_LAN, 8081),
        "other users are not filtered"
    );
}

#[test]
fn the_lockout_guard_refuses_to_cut_the_session_and_changes_nothing() {
    if !ready() {
        return;
    }
    let lab = Lab::new();
    let config = lab.config("");
    // A session from outside the sources to the filtered port, as a tunnel would arrive.
    let session = format!("SSH_CONNECTION={PEER_PUBLIC} 50000 {SERVER_PUBLIC} 1880");
    let out = lab.redwarden_with(
        &[&session],
        &config,
        &["--json", "apply", "--only", "firewall"],
    );
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["findings"][0]["id"], "firewall.would-lock-out",
        "{report}"
    );
    assert_eq!(lab.table(), None, "nothing was loaded");
    let ssh_on_nodered = lab.config("ssh_port = 1880");
    assert_eq!(
        lab.redwarden(&ssh_on_nodered, &["apply", "--only", "firewall"])
            .status
            .code(),
        Some(78)
    );
}

#[test]
fn without_nft_apply_fails_clearly_and_changes_nothing() {
    if !ready() {
        return;
    }
    let lab = Lab::new();
    let config = lab.config("");
    let out = lab.redwarden_with(
        &["PATH=/nonexistent"],
        &config,
        &["apply", "--only", "firewall"],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nft is not installed"), "{stderr}");
    assert_eq!(lab.table(), None);
}

#[test]
fn kill_9_during_apply_never_leaves_a_partial_table() {
    if !ready() {
        return;
    }
    let lab = Lab::new();
    let configs = [lab.config(""), lab.config("sources = [\"10.1.0.0/16\", \"fd00::/8\"]\negress = true\negress_allow = [\"192.168.1.10:1883\"]")];
    let mut known = Vec::new();
    let mut took = Duration::ZERO;
    for config in &configs {
        let started = Instant::now();
        lab.apply(config);
        took = took.max(started.elapsed());
        known.push(lab.table().unwrap());
    }
    assert_ne!(known[0], known[1]);
    let mut seen = [0, 0];
    for run in 0..60u32 {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.server,
                env!("CARGO_BIN_EXE_redwarden"),
                "-q",
                "--config",
            ])
            .arg(&configs[(run % 2) as usize])
            .args(["apply", "--only", "firewall"])
            .spawn()
            .unwrap();
        // Spread the kills evenly over the time an apply takes: before, during and after
        // nft's transaction.
        std::thread::sleep(took.mul_f64(f64::from(run) / 60.0));
        let _ = child.kill();
        let _ = child.wait();
        let table = lab.table().expect("the table is never absent once loaded");
        let which = known
            .iter()
            .position(|k| *k == table)
            .expect("a table that is neither the old nor the new one");
        seen[which] += 1;
    }
    eprintln!(
        "kill -9 during a {took:?} apply: old table {} times, new table {} times",
        seen[0], seen[1]
    );
}

#[test]
fn apply_confirm_rolls_back_unless_confirmed() {
    if !ready() {
        return;
    }
    let lab = Lab::new();
    let (old, new) = (lab.config(""), lab.config("sources = [\"10.9.0.0/16\"]"));
    lab.apply(&old);
    let old_table = lab.table();
    let out = lab.redwarden(&new, &["apply", "--only", "firewall", "--confirm", "2"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new_table = lab.table();
    assert_ne!(new_table, old_table);
    let deadline = Instant::now() + Duration::from_secs(10);
    while lab.table() != old_table {
        assert!(
            Instant::now() < deadline,
            "no rollback within 10 s of a 2 s window"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Confirmed in time, the new table stays.
    let out = lab.redwarden(&new, &["apply", "--only", "firewall", "--confirm", "2"]);
    assert_eq!(out.status.code(), Some(0));
    let confirm = lab.redwarden(&new, &["confirm"]);
    assert_eq!(
        confirm.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&confirm.stderr)
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(lab.table(), new_table);
    assert_eq!(
        lab.redwarden(&new, &["confirm"]).status.code(),
        Some(1),
        "nothing left to confirm"
    );
}
