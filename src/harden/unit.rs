//! The systemd side of the sandbox, rendered from typed data: redwarden's own Node-RED unit, and
//! the drop-in that carries the same sandbox into the official installer's nodered.service.
//! Sandboxing is systemd's job; redwarden only decides the directives and checks the result.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::{Config, Hardware};

/// One `Key=value` line. Keys are fixed strings, so a typo is a compile-time constant, easy to
/// grep, and covered by the snapshot test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub key: &'static str,
    pub value: String,
}

fn d(key: &'static str, value: impl Into<String>) -> Directive {
    Directive {
        key,
        value: value.into(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnitFile {
    /// A comment block written at the top.
    pub header: Vec<String>,
    pub sections: Vec<(&'static str, Vec<Directive>)>,
}

impl UnitFile {
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.header {
            let _ = writeln!(out, "# {line}");
        }
        for (name, directives) in &self.sections {
            if !out.is_empty() {
                out.push('\n');
            }
            let _ = writeln!(out, "[{name}]");
            for directive in directives {
                let _ = writeln!(out, "{}={}", directive.key, directive.value);
            }
        }
        out
    }
}

/// Syscall groups Node-RED never needs. With SystemCallErrorNumber=EPERM a filtered call fails
/// instead of killing the process: libuv's copyfile calls fchown (in @privileged) and V8 probes
/// pkey_alloc, and both cope with EPERM.
const SYSCALL_DENY: &str = "~@clock @cpu-emulation @debug @module @mount @obsolete @privileged @raw-io @reboot @resources @swap";

/// Device nodes, as DeviceAllow= entries (`char-NAME` is a major from /proc/devices), that each
/// hardware profile opens.
fn devices(hardware: Hardware) -> &'static [&'static str] {
    match hardware {
        Hardware::Gpio => &[
            "char-gpiochip rw",
            "char-bcm2835-gpiomem rw",
            "/dev/gpiomem rw",
        ],
        Hardware::Serial => &[
            "char-ttyS rw",
            "char-ttyAMA rw",
            "char-ttyUSB rw",
            "char-ttyACM rw",
        ],
        Hardware::I2c => &["char-i2c rw"],
        Hardware::Spi => &["char-spi rw"],
        Hardware::Camera => &["char-video4linux rw", "char-media rw", "char-dma_heap rw"],
        Hardware::Input => &["char-input r"],
        Hardware::Bluetooth | Hardware::Can => &[],
    }
}

fn address_families(hardware: Hardware) -> &'static [&'static str] {
    match hardware {
        Hardware::Bluetooth => &["AF_BLUETOOTH"],
        Hardware::Can => &["AF_CAN"],
        _ => &[],
    }
}

/// Where Node-RED's files are, for the mount rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub user_dir: PathBuf,
    pub settings: PathBuf,
}

/// The kernel, process and syscall walls every long-running service of redwarden's gets: the
/// Node-RED unit and the front door's.
fn walls() -> Vec<Directive> {
    vec![
        d("PrivateTmp", "yes"),
        // PrivateTmp's /var/tmp lives on disk: a flow could fill the SD card through it.
        // Nothing in Node-RED, npm or the front door uses it (os.tmpdir() is /tmp): hidden.
        d("InaccessiblePaths", "-/var/tmp"),
        d("ProtectKernelTunables", "yes"),
        d("ProtectKernelModules", "yes"),
        d("ProtectKernelLogs", "yes"),
        d("ProtectControlGroups", "yes"),
        d("ProtectClock", "yes"),
        d("ProtectHostname", "yes"),
        d("ProtectProc", "invisible"),
        d("ProcSubset", "pid"),
        d("RestrictNamespaces", "yes"),
        d("RestrictRealtime", "yes"),
        d("RestrictSUIDSGID", "yes"),
        d("LockPersonality", "yes"),
        d("RemoveIPC", "yes"),
        d("KeyringMode", "private"),
        d("PrivateMounts", "yes"),
        d("SystemCallArchitectures", "native"),
        d("SystemCallFilter", "@system-service"),
        d("SystemCallFilter", SYSCALL_DENY),
        // V8 on 32-bit ARM flushes its code cache with the ARM-private cacheflush syscall
        // (systemd#17197). Other architectures have no such call and systemd skips the
        // name, so one rendering serves every board.
        d("SystemCallFilter", "cacheflush"),
        d("SystemCallErrorNumber", "EPERM"),
    ]
}

/// Everything the sandbox depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    pub paths: Paths,
    pub hardware: Vec<Hardware>,
    /// The groups of those hardware profiles that exist on the system: systemd refuses to
    /// start a unit whose SupplementaryGroups= names a missing group.
    pub groups: Vec<String>,
    pub memory_max: String,
    pub tasks_max: u32,
    pub ip_allow: Vec<String>,
    pub ip_deny: Vec<String>,
    /// `node --jitless` under MemoryDenyWriteExecute=yes: no JIT, no WebAssembly, no fetch().
    pub jitless: bool,
    /// The userDir lives under /home (the official installer's layout): /home is read-only
    /// instead of hidden, so the userDir can be made writable.
    pub user_dir_in_home: bool,
    /// Node-RED binds a port below 1024 itself (no socket activation): the one capability it
    /// then needs, CAP_NET_BIND_SERVICE, and no other.
    pub low_port: bool,
    /// Folders besides the userDir the service writes (the metrics file's). A missing one is
    /// skipped rather than failing the start.
    pub extra_writable: Vec<PathBuf>,
}

impl Sandbox {
    pub fn from_config(config: &Config, paths: Paths, existing_groups: &[String]) -> Self {
        let user_dir_in_home = ["/home", "/root", "/run/user"]
            .iter()
            .any(|h| paths.user_dir.starts_with(h));
        Self {
            paths,
            hardware: config.service.hardware.clone(),
            groups: config
                .service
                .hardware
                .iter()
                .filter_map(|h| h.group())
                .filter(|g| existing_groups.iter().any(|e| e == g))
                .map(str::to_string)
                .collect(),
            memory_max: config.service.memory_max.to_string(),
            tasks_max: config.service.tasks_max,
            ip_allow: config
                .service
                .ip_allow
                .iter()
                .map(ToString::to_string)
                .collect(),
            ip_deny: config
                .service
                .ip_deny
                .iter()
                .map(ToString::to_string)
                .collect(),
            jitless: config.service.jitless,
            user_dir_in_home,
            low_port: config.nodered.port.get() < 1024,
            extra_writable: Vec::new(),
        }
    }

    fn capabilities(&self) -> &'static str {
        if self.low_port {
            "CAP_NET_BIND_SERVICE"
        } else {
            ""
        }
    }

    /// The [Service] directives of the sandbox, in a fixed order.
    pub fn directives(&self) -> Vec<Directive> {
        let mut out = vec![
            d("UMask", "0077"),
            d("NoNewPrivileges", "yes"),
            d("CapabilityBoundingSet", self.capabilities()),
            d("AmbientCapabilities", self.capabilities()),
            d("ProtectSystem", "strict"),
            d(
                "ProtectHome",
                if self.user_dir_in_home {
                    "read-only"
                } else {
                    "yes"
                },
            ),
            d("ReadWritePaths", self.paths.user_dir.display().to_string()),
        ];
        for dir in &self.extra_writable {
            out.push(d("ReadWritePaths", format!("-{}", dir.display())));
        }
        out.extend([
            // A bind mount makes settings.js read-only even inside the writable userDir:
            // Node-RED can neither rewrite it nor rename another file over it (EBUSY).
            d(
                "ReadOnlyPaths",
                format!("-{}", self.paths.settings.display()),
            ),
        ]);
        out.extend(walls());
        let mut families = vec!["AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"];
        for hardware in &self.hardware {
            families.extend(address_families(*hardware));
        }
        out.push(d("RestrictAddressFamilies", families.join(" ")));
        // A user namespace where only root and the service's own ids exist. The supplementary
        // groups are set before it is entered and keep their kernel ids, so group access to
        // gpio or dialout devices still works (the lab's hardware scenario checks it).
        out.push(d("PrivateUsers", "yes"));
        if self.hardware.is_empty() {
            out.push(d("PrivateDevices", "yes"));
        } else {
            // PrivateDevices=yes would hide the devices: allow exactly the profiles' ones.
            out.push(d("DevicePolicy", "closed"));
            for hardware in &self.hardware {
                for device in devices(*hardware) {
                    out.push(d("DeviceAllow", *device));
                }
            }
        }
        if self.jitless {
            out.push(d("MemoryDenyWriteExecute", "yes"));
        }
        out.push(d("MemoryMax", self.memory_max.clone()));
        out.push(d("TasksMax", self.tasks_max.to_string()));
        if !self.ip_deny.is_empty() {
            out.push(d("IPAddressDeny", self.ip_deny.join(" ")));
        }
        if !self.ip_allow.is_empty() {
            out.push(d("IPAddressAllow", self.ip_allow.join(" ")));
        }
        out
    }
}

/// What redwarden's own Node-RED unit runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub user: String,
    pub group: String,
    /// redwarden itself: the unit runs `redwarden run`, which starts Node-RED as its child.
    pub redwarden: PathBuf,
    pub start_timeout_secs: u32,
    pub stop_timeout_secs: u32,
    pub sandbox: Sandbox,
}

/// How often the supervisor must ping systemd's watchdog. Its loop runs every probe interval;
/// a frozen supervisor (SIGSTOP, a deadlock) is killed and restarted after this long.
const WATCHDOG_SECS: u32 = 30;

pub const UNIT_NAME: &str = "redwarden.service";
pub const DROP_IN_NAME: &str = "nodered.service.d/50-redwarden-sandbox.conf";

const GENERATED: &str = "Generated by `redwarden unit`; `redwarden apply` rewrites it. Change /etc/redwarden/redwarden.toml instead.";

impl Service {
    pub fn unit(&self) -> UnitFile {
        let sandbox = &self.sandbox;
        let mut service = vec![
            // READY=1 comes from the supervisor once Node-RED answers its probe.
            d("Type", "notify"),
            d("NotifyAccess", "main"),
            d("User", self.user.clone()),
            d("Group", self.group.clone()),
        ];
        if !sandbox.groups.is_empty() {
            service.push(d("SupplementaryGroups", sandbox.groups.join(" ")));
        }
        service.extend([
            d(
                "WorkingDirectory",
                sandbox.paths.user_dir.display().to_string(),
            ),
            d(
                "Environment",
                format!("HOME={}", sandbox.paths.user_dir.display()),
            ),
            d("Environment", "NODE_RED_DISABLE_TELEMETRY=1"),
            d("ExecStart", format!("{} run", self.redwarden.display())),
            // `+`: sent as root. The supervisor ignores signals from the service user, who
            // is also Node-RED and its flows.
            d("ExecReload", "+/bin/kill -HUP $MAINPID"),
            // SIGTERM to the supervisor alone, which stops Node-RED gracefully (SIGINT, then
            // SIGKILL after its stop timeout); systemd kills any leftover at the end.
            d("KillMode", "mixed"),
            d(
                "TimeoutStartSec",
                (self.start_timeout_secs + 60).to_string(),
            ),
            d("TimeoutStopSec", (self.stop_timeout_secs + 10).to_string()),
            d("WatchdogSec", WATCHDOG_SECS.to_string()),
            d("Restart", "on-failure"),
            d("RestartSec", "2"),
            // 3: the supervisor gave up on a crash loop; 78: a bad configuration. Restarting
            // would only repeat them.
            d("RestartPreventExitStatus", "3 78"),
            // /run/redwarden/status.json, for `redwarden status`.
            d("RuntimeDirectory", "redwarden"),
            d("RuntimeDirectoryMode", "0755"),
            // After a crash loop the unit is stopped, and `redwarden status` must still say why.
            d("RuntimeDirectoryPreserve", "yes"),
            d("SyslogIdentifier", "Node-RED"),
        ]);
        service.extend(sandbox.directives());
        UnitFile {
            header: vec![GENERATED.into()],
            sections: vec![
                (
                    "Unit",
                    vec![
                        d("Description", "Node-RED, sandboxed by redwarden"),
                        d(
                            "Documentation",
                            "man:redwarden(8) https://nodered.org/docs/",
                        ),
                        d("Wants", "network-online.target redwarden-apply.service"),
                        // Conflicts= alone would stop the installer's unit while this one
                        // starts; ordered, the old Node-RED has stopped (its context flushed,
                        // its port free) before this one starts, and the other way round.
                        d(
                            "After",
                            "network-online.target redwarden-apply.service nodered.service",
                        ),
                        d("Conflicts", "nodered.service"),
                    ],
                ),
                ("Service", service),
                ("Install", vec![d("WantedBy", "multi-user.target")]),
            ],
        }
    }
}

pub const FRONT_SERVICE: &str = "redwarden-front.service";
pub const FRONT_SOCKET: &str = "redwarden-front.socket";

/// The front door's socket: systemd binds the public port (443 needs no capability then) and
/// passes it, the TLS one first and the plain-HTTP redirect second, as `redwarden-front` reads
/// them.
fn front_socket(front: &crate::config::Front) -> UnitFile {
    let listen = front.listen.get();
    let mut socket = vec![d("ListenStream", listen.to_string())];
    if let Some(port) = front.redirect_port {
        let redirect = std::net::SocketAddr::new(listen.ip(), port.get());
        socket.push(d("ListenStream", redirect.to_string()));
    }
    socket.extend([d("NoDelay", "yes"), d("Service", FRONT_SERVICE)]);
    UnitFile {
        header: vec![GENERATED.into()],
        sections: vec![
            (
                "Unit",
                vec![d(
                    "Description",
                    "The network's way to Node-RED, over TLS (redwarden)",
                )],
            ),
            ("Socket", socket),
            ("Install", vec![d("WantedBy", "sockets.target")]),
        ],
    }
}

/// The front door's service: `redwarden-front` (installed next to `redwarden`) as its own
/// user, which alone may read the TLS key, in a sandbox at least as tight as Node-RED's. It
/// needs no capability (the socket is passed), no device, and no writable place but its state
/// folder (the self-signed certificate); being Rust, it writes no executable memory.
fn front_service(config: &Config, redwarden_bin: &Path) -> UnitFile {
    let front = &config.front;
    let user = crate::host::FRONT_USER;
    let mut service = vec![
        d("Type", "simple"),
        d("User", user),
        d("Group", user),
        d(
            "ExecStart",
            redwarden_bin
                .with_file_name("redwarden-front")
                .display()
                .to_string(),
        ),
        d("Restart", "on-failure"),
        d("RestartSec", "2"),
        // 78: a bad configuration, which a restart only repeats.
        d("RestartPreventExitStatus", "78"),
        d("SyslogIdentifier", "redwarden-front"),
        d("UMask", "0077"),
        d("NoNewPrivileges", "yes"),
        d("CapabilityBoundingSet", ""),
        d("AmbientCapabilities", ""),
        d("ProtectSystem", "strict"),
        d("ProtectHome", "yes"),
    ];
    let state = front.state_dir.as_path();
    match state.strip_prefix("/var/lib") {
        Ok(name) if !name.as_os_str().is_empty() => service.extend([
            d("StateDirectory", name.display().to_string()),
            d("StateDirectoryMode", "0700"),
        ]),
        _ => service.push(d("ReadWritePaths", state.display().to_string())),
    }
    service.extend(walls());
    service.extend([
        d("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
        d("PrivateUsers", "yes"),
        d("PrivateDevices", "yes"),
        d("MemoryDenyWriteExecute", "yes"),
        // Who may talk to it is the firewall's sources, and it talks to Node-RED on loopback.
        // (Connections accepted on a socket systemd passes belong to the socket's cgroup; this
        // binds the front door's own sockets when it listens by itself.)
        d("IPAddressDeny", "any"),
    ]);
    let mut allow = vec!["localhost".to_string()];
    allow.extend(config.firewall.sources.iter().map(ToString::to_string));
    service.push(d("IPAddressAllow", allow.join(" ")));
    UnitFile {
        header: vec![GENERATED.into()],
        sections: vec![
            (
                "Unit",
                vec![
                    d("Description", "TLS front door for Node-RED (redwarden)"),
                    d("Documentation", "man:redwarden-front(8)"),
                    d("Requires", FRONT_SOCKET),
                    d("After", format!("{FRONT_SOCKET} redwarden-apply.service")),
                ],
            ),
            ("Service", service),
        ],
    }
}

/// The drop-in for the official installer's nodered.service: the same sandbox around the unit
/// the installer keeps (User=pi, userDir /home/pi/.node-red).
pub fn drop_in(sandbox: &Sandbox) -> UnitFile {
    let mut service = Vec::new();
    if !sandbox.groups.is_empty() {
        service.push(d("SupplementaryGroups", sandbox.groups.join(" ")));
    }
    service.extend(sandbox.directives());
    UnitFile {
        header: vec![GENERATED.into()],
        sections: vec![("Service", service)],
    }
}

/// The files `apply` would install for this root and configuration, by system path. Node and
/// Node-RED are autodetected; when absent, the paths npm and Debian use are written, so the unit
/// is right once Node-RED is installed the usual way. The drop-in is for the installation an
/// existing nodered.service runs, or else the configured one.
pub fn render_all(
    root: &crate::host::Root,
    config: &Config,
) -> Result<Vec<(PathBuf, String)>, crate::Error> {
    let mut observed = observe(root, config)?;
    if observed.binaries.nodered.is_none() {
        observed.binaries.nodered =
            Some(Path::new(crate::host::paths::GLOBAL_NODE_MODULES[0]).join("node-red"));
    }
    let configured = super::install::Installation::configured(config);
    let legacy = observed.legacy.clone().unwrap_or(configured);
    Ok(generated(
        config,
        &observed.binaries,
        Some(&legacy),
        &observed.redwarden_bin,
        &observed.groups,
    ))
}

/// Where a unit or drop-in is installed: the admin's folder, which overrides packaged units.
pub fn install_path(name: &str) -> PathBuf {
    Path::new("/etc/systemd/system").join(name)
}

// The step: install the generated units and keep them as rendered.

pub const APPLY_UNIT: &str = "redwarden-apply.service";
pub const DRIFT_PATH: &str = "redwarden-drift.path";
pub const DRIFT_TIMER: &str = "redwarden-drift.timer";

/// A change to the systemd configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitChange {
    Write {
        path: PathBuf,
        contents: String,
    },
    /// Creates the `<target>.wants/<unit>` symlink that `systemctl enable` would.
    Enable {
        unit: &'static str,
        target: &'static str,
    },
    DaemonReload,
    /// Starts a unit without waiting (`--no-block`): apply may itself run from a unit.
    Start {
        unit: &'static str,
    },
    /// Restarts a running unit so a rewritten unit file takes effect (`try-restart --no-block`).
    Restart {
        unit: &'static str,
    },
    Stop {
        unit: &'static str,
    },
    /// Removes a unit file or a wants-symlink that redwarden wrote.
    Remove {
        path: PathBuf,
    },
}

impl std::fmt::Display for UnitChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Write { path, .. } => write!(f, "write {}", path.display()),
            Self::Enable { unit, target } => write!(f, "enable {unit} for {target}"),
            Self::DaemonReload => f.write_str("reload systemd's unit files"),
            Self::Start { unit } => write!(f, "start {unit}"),
            Self::Restart { unit } => {
                write!(f, "restart {unit} if it runs, so the change takes effect")
            }
            Self::Stop { unit } => write!(f, "stop {unit}"),
            Self::Remove { path } => write!(f, "remove {}", path.display()),
        }
    }
}

/// The generated files, by system path, with their contents.
pub fn generated(
    config: &Config,
    binaries: &super::install::Binaries,
    legacy: Option<&super::install::Installation>,
    redwarden_bin: &Path,
    groups: &[String],
) -> Vec<(PathBuf, String)> {
    let configured = super::install::Installation::configured(config);
    let paths = |i: &super::install::Installation| Paths {
        user_dir: i.user_dir.clone(),
        settings: i.settings.clone(),
    };
    let mut files = Vec::new();
    if binaries.nodered.is_some() {
        let mut sandbox = Sandbox::from_config(config, paths(&configured), groups);
        let metrics_dir = config
            .supervise
            .metrics_file
            .as_ref()
            .and_then(|file| file.as_path().parent())
            .map(Path::to_path_buf);
        sandbox.extra_writable.extend(metrics_dir);
        let service = Service {
            user: configured.user.clone(),
            group: configured.group.clone(),
            redwarden: redwarden_bin.to_path_buf(),
            start_timeout_secs: config.supervise.start_timeout_secs,
            stop_timeout_secs: config.supervise.stop_timeout_secs,
            sandbox,
        };
        files.push((install_path(UNIT_NAME), service.unit().render()));
    }
    if config.front.enabled {
        files.push((
            install_path(FRONT_SOCKET),
            front_socket(&config.front).render(),
        ));
        files.push((
            install_path(FRONT_SERVICE),
            front_service(config, redwarden_bin).render(),
        ));
    }
    files.push((install_path(APPLY_UNIT), apply_unit(redwarden_bin).render()));
    let mut watched = vec![
        PathBuf::from(crate::host::paths::CONFIG),
        configured.user_dir.clone(),
        configured.settings.clone(),
        install_path(UNIT_NAME),
    ];
    if config.front.enabled {
        watched.extend([install_path(FRONT_SOCKET), install_path(FRONT_SERVICE)]);
    }
    if let Some(legacy) = legacy {
        watched.extend([legacy.user_dir.clone(), legacy.settings.clone()]);
        watched.extend(legacy.unit.clone());
        watched.push(install_path(DROP_IN_NAME));
        let drop = drop_in(&Sandbox::from_config(config, paths(legacy), groups));
        files.push((install_path(DROP_IN_NAME), drop.render()));
    }
    let mut seen = std::collections::BTreeSet::new();
    watched.retain(|p| seen.insert(p.clone()));
    files.push((install_path(DRIFT_PATH), drift_path(&watched).render()));
    files.push((install_path(DRIFT_TIMER), drift_timer().render()));
    files
}

/// The privileged, short-lived step: `redwarden apply` as root before Node-RED starts, and
/// again when the drift path or timer fires. Exit 1 (findings that apply cannot fix) is logged,
/// not a failure: Node-RED still starts.
fn apply_unit(redwarden_bin: &Path) -> UnitFile {
    UnitFile {
        header: vec![GENERATED.into()],
        sections: vec![
            (
                "Unit",
                vec![
                    d("Description", "Enforce redwarden's policy around Node-RED"),
                    d("Documentation", "man:redwarden(8)"),
                    // Early, before Node-RED; without the default dependencies it must order
                    // itself against shutdown by hand.
                    d("DefaultDependencies", "no"),
                    d("After", "local-fs.target systemd-sysusers.service"),
                    d(
                        "Before",
                        "redwarden.service nodered.service multi-user.target shutdown.target",
                    ),
                    d("Conflicts", "shutdown.target"),
                ],
            ),
            (
                "Service",
                vec![
                    d("Type", "oneshot"),
                    d("ExecStart", format!("{} apply", redwarden_bin.display())),
                    d("SuccessExitStatus", "1"),
                    d("StandardOutput", "journal"),
                    d("ProtectKernelModules", "yes"),
                    d("ProtectKernelLogs", "yes"),
                    d("ProtectClock", "yes"),
                    d("ProtectHostname", "yes"),
                    d("PrivateTmp", "yes"),
                    d("RestrictRealtime", "yes"),
                    d("LockPersonality", "yes"),
                    d("SystemCallArchitectures", "native"),
                ],
            ),
            ("Install", vec![d("WantedBy", "multi-user.target")]),
        ],
    }
}

/// A generated trigger unit: a description, its own section, and the target that wants it.
fn trigger_unit(
    description: &str,
    section: &'static str,
    body: Vec<Directive>,
    wanted_by: &str,
) -> UnitFile {
    UnitFile {
        header: vec![GENERATED.into()],
        sections: vec![
            (
                "Unit",
                vec![
                    d("Description", description),
                    d("Documentation", "man:redwarden(8)"),
                ],
            ),
            (section, body),
            ("Install", vec![d("WantedBy", wanted_by)]),
        ],
    }
}

fn drift_path(watched: &[PathBuf]) -> UnitFile {
    let mut path: Vec<Directive> = watched
        .iter()
        .map(|p| d("PathChanged", p.display().to_string()))
        .collect();
    path.push(d("Unit", APPLY_UNIT));
    trigger_unit(
        "Re-apply redwarden's policy when what it guards changes",
        "Path",
        path,
        "paths.target",
    )
}

fn drift_timer() -> UnitFile {
    let timer = vec![
        d("OnBootSec", "5min"),
        d("OnUnitActiveSec", "1h"),
        d("RandomizedDelaySec", "5min"),
        d("Unit", APPLY_UNIT),
    ];
    trigger_unit(
        "Re-apply redwarden's policy hourly, to catch drift no path watch sees",
        "Timer",
        timer,
        "timers.target",
    )
}

/// What the step looks at.
#[derive(Debug, Clone)]
pub struct Observed {
    pub config: Config,
    pub binaries: super::install::Binaries,
    /// The installation an existing nodered.service runs, when it is not the configured one.
    pub legacy: Option<super::install::Installation>,
    pub redwarden_bin: PathBuf,
    /// Every group on the system, for the hardware profiles' SupplementaryGroups=.
    pub groups: Vec<String>,
    /// Current contents of each file the step may write (None: missing).
    pub current: Vec<(PathBuf, Option<String>)>,
    /// Units whose wants-symlink already points at them.
    pub enabled: Vec<&'static str>,
    /// The front door's unit files and socket link, installed by redwarden while the front
    /// door is off in the configuration.
    pub stale_front: Vec<PathBuf>,
    pub booted: bool,
}

/// The units apply enables, and for which target. redwarden.service only when no other unit
/// runs Node-RED: two instances would fight over the port (adoption switches them).
fn wanted(observed: &Observed) -> Vec<(&'static str, &'static str)> {
    let mut units = vec![
        (APPLY_UNIT, "multi-user.target"),
        (DRIFT_PATH, "paths.target"),
        (DRIFT_TIMER, "timers.target"),
    ];
    let legacy_runs = observed.legacy.as_ref().is_some_and(|l| l.unit_enabled);
    if !legacy_runs && observed.binaries.nodered.is_some() {
        units.push((UNIT_NAME, "multi-user.target"));
    }
    if observed.config.front.enabled {
        units.push((FRONT_SOCKET, "sockets.target"));
    }
    units
}

/// Where the units find redwarden: the first of the usual places that holds it, else /usr/bin.
pub(super) fn installed_redwarden(root: &crate::host::Root) -> PathBuf {
    crate::host::paths::REDWARDEN_BINARIES
        .iter()
        .map(PathBuf::from)
        .find(|p| root.resolve(p).is_ok_and(|host| host.exists()))
        .unwrap_or_else(|| PathBuf::from(crate::host::paths::REDWARDEN_BINARIES[0]))
}

pub fn observe(root: &crate::host::Root, config: &Config) -> Result<Observed, crate::Error> {
    let accounts = crate::host::accounts::AccountDb::load(root)?;
    let configured = super::install::Installation::configured(config);
    let legacy = super::install::find_unit(root)?
        .and_then(|unit| super::install::Installation::from_unit(&unit, &accounts, &configured));
    let binaries = super::install::find_binaries(root, config, &[configured.user_dir.as_path()]);
    let redwarden_bin = installed_redwarden(root);
    let mut observed = Observed {
        config: config.clone(),
        binaries,
        legacy,
        redwarden_bin,
        groups: accounts.group.records().map(|g| g.name.clone()).collect(),
        current: Vec::new(),
        enabled: Vec::new(),
        stale_front: Vec::new(),
        booted: crate::host::systemd::is_booted(root),
    };
    if !config.front.enabled {
        for path in [install_path(FRONT_SOCKET), install_path(FRONT_SERVICE)] {
            let text = crate::host::fs::read_nofollow(&root.resolve_parent(&path)?)?;
            if text.is_some_and(|t| t.starts_with(format!("# {GENERATED}").as_bytes())) {
                observed.stale_front.push(path);
            }
        }
        let link = crate::host::systemd::wants_link(FRONT_SOCKET, "sockets.target");
        if crate::host::fs::lstat(&root.resolve_parent(&link)?)?.is_some() {
            observed.stale_front.push(link);
        }
    }
    for (path, _) in generated(
        config,
        &observed.binaries,
        observed.legacy.as_ref(),
        &observed.redwarden_bin,
        &observed.groups,
    ) {
        let host = root.resolve_parent(&path)?;
        let text = crate::host::fs::read_nofollow(&host)?
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        observed.current.push((path, text));
    }
    for (unit, target) in wanted(&observed) {
        let link = root.resolve_parent(&crate::host::systemd::wants_link(unit, target))?;
        if std::fs::read_link(link).is_ok_and(|t| t == install_path(unit)) {
            observed.enabled.push(unit);
        }
    }
    Ok(observed)
}

pub fn plan(observed: &Observed) -> super::Plan {
    use crate::report::{Finding, Severity};
    let mut plan = super::Plan::default();
    let mut changed = false;
    let mut restart = Vec::new();
    let files = generated(
        &observed.config,
        &observed.binaries,
        observed.legacy.as_ref(),
        &observed.redwarden_bin,
        &observed.groups,
    );
    for (path, contents) in files {
        let current = observed
            .current
            .iter()
            .find(|(p, _)| *p == path)
            .and_then(|(_, c)| c.as_ref());
        let finding = match current {
            Some(text) if *text == contents => continue,
            Some(_) => Finding::new("unit.drifted", Severity::Medium, "differs from what redwarden generates (edited by hand?); apply rewrites it: change redwarden.toml instead", true),
            None if path.ends_with(DROP_IN_NAME) => Finding::new(
                "unit.legacy-unsandboxed",
                Severity::High,
                "nodered.service runs without redwarden's sandbox (the official installer's unit scores 9.2 UNSAFE); apply adds a drop-in",
                true,
            ),
            None => Finding::new("unit.missing", Severity::Medium, "not installed", true),
        };
        plan.findings.push(finding.at(path.clone()));
        // A running Node-RED keeps its old sandbox until restarted; the installer's unit, kept
        // with a drop-in, gets it at its next start (adoption usually replaces it first).
        if current.is_some() && path == install_path(UNIT_NAME) {
            restart.push(UNIT_NAME);
        }
        if current.is_some() && path == install_path(FRONT_SERVICE) {
            restart.push(FRONT_SERVICE);
        }
        plan.actions
            .push(super::Action::Unit(UnitChange::Write { path, contents }));
        changed = true;
    }
    let mut start = Vec::new();
    for (unit, target) in wanted(observed) {
        if observed.enabled.contains(&unit) {
            continue;
        }
        plan.findings.push(
            Finding::new(
                "unit.not-enabled",
                Severity::Medium,
                format!("{unit} is not enabled"),
                true,
            )
            .at(crate::host::systemd::wants_link(unit, target)),
        );
        plan.actions
            .push(super::Action::Unit(UnitChange::Enable { unit, target }));
        changed = true;
        // Units that start at boot start now too, on a running system; the apply unit is
        // already running when this is part of it, and the timer and path start themselves.
        if [UNIT_NAME, DRIFT_PATH, DRIFT_TIMER, FRONT_SOCKET].contains(&unit) {
            start.push(unit);
        }
    }
    if !observed.stale_front.is_empty() {
        plan.findings.push(Finding::new(
            "unit.front-stale",
            Severity::Medium,
            "the TLS front door is off in the configuration, but its units are installed: its socket would hold the port for a front door that refuses to start; apply removes them",
            true,
        ));
        if observed.booted {
            for unit in [FRONT_SOCKET, FRONT_SERVICE] {
                plan.actions
                    .push(super::Action::Unit(UnitChange::Stop { unit }));
            }
        }
        for path in &observed.stale_front {
            plan.actions.push(super::Action::Unit(UnitChange::Remove {
                path: path.clone(),
            }));
        }
        changed = true;
    }
    if changed && observed.booted {
        plan.actions
            .push(super::Action::Unit(UnitChange::DaemonReload));
        for unit in start {
            plan.actions
                .push(super::Action::Unit(UnitChange::Start { unit }));
        }
        for unit in restart {
            plan.actions
                .push(super::Action::Unit(UnitChange::Restart { unit }));
        }
    }
    plan
}

pub fn apply(root: &crate::host::Root, change: &UnitChange) -> Result<(), crate::Error> {
    use crate::host::{fs, systemd};
    match change {
        UnitChange::Write { path, contents } => {
            let host = root.resolve_parent(path)?;
            if let Some(parent) = host.parent().filter(|p| !p.exists()) {
                fs::create_dir(parent, 0o755, 0, 0)?;
            }
            fs::write_file(&host, contents.as_bytes(), 0o644, 0, 0)?;
        }
        UnitChange::Enable { unit, target } => {
            let link = root.resolve_parent(&systemd::wants_link(unit, target))?;
            fs::write_symlink(&link, &install_path(unit))?;
        }
        UnitChange::DaemonReload => systemd::systemctl(&["daemon-reload"])?,
        UnitChange::Start { unit } => systemd::systemctl(&["start", "--no-block", unit])?,
        UnitChange::Restart { unit } => systemd::systemctl(&["try-restart", "--no-block", unit])?,
        UnitChange::Stop { unit } => systemd::systemctl(&["stop", "--no-block", unit])?,
        UnitChange::Remove { path } => fs::remove_file(&root.resolve_parent(path)?)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(hardware: Vec<Hardware>) -> Sandbox {
        let mut config = Config::default();
        config.service.hardware = hardware;
        Sandbox::from_config(
            &config,
            Paths {
                user_dir: "/var/lib/node-red".into(),
                settings: "/var/lib/node-red/settings.js".into(),
            },
            // A Debian without Raspberry Pi OS's gpio group.
            &["dialout".to_string(), "video".to_string()],
        )
    }

    fn value<'a>(directives: &'a [Directive], key: &str) -> Vec<&'a str> {
        directives
            .iter()
            .filter(|d| d.key == key)
            .map(|d| d.value.as_str())
            .collect()
    }

    #[test]
    fn no_hardware_means_private_devices_and_users() {
        let directives = sandbox(Vec::new()).directives();
        assert_eq!(value(&directives, "PrivateDevices"), ["yes"]);
        assert_eq!(value(&directives, "PrivateUsers"), ["yes"]);
        assert!(value(&directives, "DeviceAllow").is_empty());
        assert_eq!(value(&directives, "CapabilityBoundingSet"), [""]);
        assert!(
            value(&directives, "MemoryDenyWriteExecute").is_empty(),
            "MDWE breaks V8's JIT"
        );
    }

    #[test]
    fn hardware_keeps_group_ids_and_allows_only_its_devices() {
        let directives =
            sandbox(vec![Hardware::Gpio, Hardware::Serial, Hardware::Can]).directives();
        assert_eq!(value(&directives, "PrivateUsers"), ["yes"]);
        assert!(value(&directives, "PrivateDevices").is_empty());
        assert_eq!(value(&directives, "DevicePolicy"), ["closed"]);
        assert!(value(&directives, "DeviceAllow").contains(&"char-gpiochip rw"));
        assert!(value(&directives, "DeviceAllow").contains(&"char-ttyAMA rw"));
        assert_eq!(
            value(&directives, "RestrictAddressFamilies"),
            ["AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_CAN"]
        );
    }

    #[test]
    fn the_unit_runs_the_supervisor_as_the_service_user_with_its_groups() {
        let mut sandbox = sandbox(vec![Hardware::Gpio, Hardware::Serial]);
        sandbox.extra_writable.push("/var/lib/metrics".into());
        let service = Service {
            user: "nodered".into(),
            group: "nodered".into(),
            redwarden: "/usr/bin/redwarden".into(),
            start_timeout_secs: 120,
            stop_timeout_secs: 10,
            sandbox,
        };
        let text = service.unit().render();
        for line in [
            "User=nodered",
            "SupplementaryGroups=dialout",
            "Type=notify",
            "ExecStart=/usr/bin/redwarden run",
            "ExecReload=+/bin/kill -HUP $MAINPID",
            "KillMode=mixed",
            "WatchdogSec=30",
            "TimeoutStopSec=20",
            "RestartPreventExitStatus=3 78",
            "ReadWritePaths=/var/lib/node-red",
            "ReadWritePaths=-/var/lib/metrics",
        ] {
            assert!(
                text.contains(&format!("\n{line}\n")),
                "no {line} in\n{text}"
            );
        }
    }

    #[test]
    fn a_port_below_1024_gets_exactly_cap_net_bind_service() {
        let mut config = Config::default();
        config.nodered.port = crate::config::Port::try_from(443).unwrap();
        let low = Sandbox::from_config(&config, sandbox(Vec::new()).paths, &[]).directives();
        assert_eq!(
            value(&low, "CapabilityBoundingSet"),
            ["CAP_NET_BIND_SERVICE"]
        );
        assert_eq!(value(&low, "AmbientCapabilities"), ["CAP_NET_BIND_SERVICE"]);
    }

    #[test]
    fn jitless_turns_on_memory_deny_write_execute() {
        let mut jitless = sandbox(Vec::new());
        jitless.jitless = true;
        assert_eq!(
            value(&jitless.directives(), "MemoryDenyWriteExecute"),
            ["yes"]
        );
    }
}
