//! `redwarden run`: Node-RED as a child, kept alive and honest with systemd. The supervisor is
//! the unit's main process (Type=notify): READY=1 only once Node-RED answers its probe,
//! WATCHDOG=1 only while the supervision loop makes progress, STATUS= at every change. It
//! restarts Node-RED when it exits, hangs or leaks, backs off, and gives up on a crash loop
//! (after one start in safe mode) so the unit fails visibly instead of flapping forever.

pub mod audit;
pub mod backup;
pub mod child;
pub mod policy;
pub mod privdrop;
pub mod probe;
pub mod signals;
pub mod status;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use tokio::process::Child;

use crate::config::{Config, Source};
use crate::harden;
use crate::host::{proc, Root};
use child::Launch;
use policy::{Decision, Ending, History, Policy};
use probe::Prober;
use status::Status;

/// The exit code for a crash loop: the unit lists it in RestartPreventExitStatus=, so systemd
/// marks the unit failed instead of restarting into the same loop.
pub const EXIT_CRASH_LOOP: u8 = 3;

/// How often a starting Node-RED is probed; a refused connection costs next to nothing.
const STARTING_PROBE_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    #[error("cannot find {what}: {hint}")]
    NotInstalled { what: &'static str, hint: String },
    #[error("the service user `{0}` does not exist: run `redwarden apply` as root first")]
    NoUser(String),
    #[error(transparent)]
    Probe(#[from] probe::ProbeError),
    #[error(transparent)]
    Drop(#[from] privdrop::DropError),
    #[error("{op}: {source}")]
    Io {
        op: &'static str,
        source: std::io::Error,
    },
    #[error("starting {node}: {source}")]
    Spawn {
        node: PathBuf,
        source: std::io::Error,
    },
    #[error("apply before supervising: {0}")]
    Apply(String),
    #[error(transparent)]
    Lib(#[from] crate::Error),
    #[error("crash loop: {0}")]
    CrashLoop(String),
}

fn io_err(op: &'static str) -> impl FnOnce(std::io::Error) -> SuperviseError {
    move |source| SuperviseError::Io { op, source }
}

/// Runs the supervisor until systemd (or root) stops it, or a crash loop ends it.
pub fn run(config: Config, source: Source) -> Result<(), SuperviseError> {
    let root = Root::live();
    let status_path = PathBuf::from(status::STATUS_FILE);
    if rustix::process::geteuid().is_root() {
        become_service_user(&root, &config, &status_path)?;
    }
    // Read after the apply above, which may have created the user.
    let service_uid = crate::host::accounts::AccountDb::load(&root)
        .map_err(crate::Error::from)?
        .user(config.service.user.as_str())
        .map(|e| e.uid);
    // Node-RED runs as the same user: without this, a flow could ptrace the supervisor or read
    // its memory, environment and descriptors through /proc.
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| io_err("make the supervisor non-dumpable")(e.into()))?;
    let launch = resolve(&root, &config)?;
    let signals = signals::block_and_open(&[libc::SIGTERM, libc::SIGINT, libc::SIGHUP])
        .map_err(io_err("set up signal handling"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io_err("start the runtime"))?;
    let result = runtime.block_on(async {
        let signals = signals.into_async().map_err(io_err("read signals"))?;
        Supervisor::new(config, source, launch, signals, service_uid, status_path)?
            .run()
            .await
    });
    // Dropping the runtime would wait for a background audit still running (npm audit may
    // wait a minute on the registry), holding up the stop. What it started ends with the
    // unit's cgroup.
    runtime.shutdown_background();
    result
}

/// As root outside systemd: apply the policy, then become the service user for good. Under
/// systemd the apply unit has already run, and the unit starts us as the service user.
fn become_service_user(
    root: &Root,
    config: &Config,
    status_path: &Path,
) -> Result<(), SuperviseError> {
    if crate::host::systemd::is_booted(root) {
        tracing::warn!("running as root under systemd: applying is redwarden-apply.service's job; only dropping privileges");
    } else {
        let report = harden::apply(root, config, &harden::Options::default())
            .map_err(|failure| SuperviseError::Apply(failure.to_string()))?;
        for change in &report.changes {
            tracing::info!("applied: {change}");
        }
        if report.has_findings() {
            tracing::warn!(
                "{} findings remain after apply (see `redwarden check`)",
                report.findings.len()
            );
        }
    }
    let accounts = crate::host::accounts::AccountDb::load(root).map_err(crate::Error::from)?;
    let user = config.service.user.as_str();
    let entry = accounts
        .user(user)
        .ok_or_else(|| SuperviseError::NoUser(user.to_string()))?;
    let groups = accounts
        .group
        .memberships(user)
        .iter()
        .filter_map(|name| accounts.group.by_name(name).map(|g| g.gid))
        .collect();
    if let Some(folder) = status_path.parent() {
        if let Err(e) = crate::host::fs::create_dir(folder, 0o755, entry.uid, entry.gid) {
            tracing::warn!("no status file: {e}");
        }
    }
    privdrop::drop_to(&privdrop::Identity {
        uid: entry.uid,
        gid: entry.gid,
        groups,
    })?;
    tracing::info!(
        uid = entry.uid,
        gid = entry.gid,
        "dropped to the service user"
    );
    Ok(())
}

/// Node and red.js, from the configuration or where npm and Debian put them.
fn resolve(root: &Root, config: &Config) -> Result<Launch, SuperviseError> {
    let user_dir = config.nodered.user_dir.as_path();
    let binaries = harden::install::find_binaries(root, config, &[user_dir]);
    let nodered = binaries.nodered.ok_or_else(|| SuperviseError::NotInstalled {
        what: "Node-RED (red.js)",
        hint: "install it with `npm install -g --unsafe-perm node-red`, or set nodered.install_dir".into(),
    })?;
    let node = binaries.node.ok_or_else(|| SuperviseError::NotInstalled {
        what: "node",
        hint: "install Node.js, or set nodered.node".into(),
    })?;
    Ok(Launch {
        node,
        jitless: config.service.jitless,
        red_js: nodered.join("red.js"),
        user_dir: user_dir.to_path_buf(),
        settings: config.nodered.settings_path(),
        port: config.nodered.port.get(),
        overrides: PathBuf::from(crate::host::paths::NODERED_OVERRIDES),
    })
}

/// How a watched run ended.
enum Watched {
    Ended(Ending),
    Stop,
    /// The configuration changed what Node-RED is started with.
    Restart,
}

/// The watchdog's view of the loop: the last time it made progress.
#[derive(Clone)]
struct Progress(Arc<Mutex<Instant>>);

impl Progress {
    fn mark(&self) {
        if let Ok(mut at) = self.0.lock() {
            *at = Instant::now();
        }
    }

    fn age(&self) -> Duration {
        self.0.lock().map_or(Duration::MAX, |at| at.elapsed())
    }
}

struct Supervisor {
    config: Config,
    source: Source,
    launch: Launch,
    prober: Prober,
    policy: Policy,
    history: History,
    signals: signals::SignalFd,
    service_uid: Option<u32>,
    status: Status,
    status_path: PathBuf,
    status_broken: bool,
    metrics_broken: bool,
    ready_sent: bool,
    to_journal: bool,
    progress: Progress,
    last_error: child::LastError,
    /// The protected files' modification times when they were last copied.
    flows_seen: Vec<Option<std::time::SystemTime>>,
    audit: audit::Audit,
}

impl Supervisor {
    fn new(
        config: Config,
        source: Source,
        launch: Launch,
        signals: signals::SignalFd,
        service_uid: Option<u32>,
        status_path: PathBuf,
    ) -> Result<Self, SuperviseError> {
        let prober = Prober::new(&config.supervise.probe.target(), config.nodered.port.get())?;
        Ok(Self {
            policy: Policy::from_config(&config.supervise),
            prober,
            config,
            source,
            launch,
            history: History::default(),
            signals,
            service_uid,
            status: Status {
                phase: "starting".into(),
                supervisor_pid: std::process::id(),
                ..Status::default()
            },
            status_path,
            status_broken: false,
            metrics_broken: false,
            ready_sent: false,
            to_journal: stdout_is_journal(),
            progress: Progress(Arc::new(Mutex::new(Instant::now()))),
            last_error: child::LastError::default(),
            flows_seen: Vec::new(),
            audit: audit::Audit::default(),
        })
    }

    fn secs(value: u32) -> Duration {
        Duration::from_secs(value.into())
    }

    fn probe_interval(&self) -> Duration {
        Self::secs(self.config.supervise.probe_interval_secs)
    }

    fn probe_timeout(&self) -> Duration {
        (self.probe_interval() / 2).clamp(Duration::from_secs(1), Duration::from_secs(5))
    }

    fn stop_timeout(&self) -> Duration {
        Self::secs(self.config.supervise.stop_timeout_secs)
    }

    fn memory_limit(&self) -> Option<u64> {
        self.config
            .supervise
            .memory_limit
            .bytes(proc::total_memory())
    }

    async fn run(mut self) -> Result<(), SuperviseError> {
        self.start_watchdog();
        let mut safe_mode = false;
        loop {
            self.prepare_files();
            self.wait_for_port().await;
            let mut child =
                self.launch
                    .spawn(safe_mode)
                    .map_err(|source| SuperviseError::Spawn {
                        node: self.launch.node.clone(),
                        source,
                    })?;
            let started = Instant::now();
            self.started(&mut child, safe_mode);
            let watched = self.watch(&mut child, started).await;
            match watched {
                Watched::Stop => {
                    self.set_phase("stopping", "stopping Node-RED");
                    notify(&[NotifyState::Stopping]);
                    let status = child::stop(&mut child, self.stop_timeout())
                        .await
                        .map_err(io_err("stop Node-RED"))?;
                    tracing::info!("Node-RED stopped ({status})");
                    // What it last saved, in case the file is damaged before the next start.
                    self.snapshot_flows();
                    self.status.nodered_pid = None;
                    self.set_phase("stopped", "stopped");
                    return Ok(());
                }
                Watched::Restart => {
                    child::stop(&mut child, self.stop_timeout())
                        .await
                        .map_err(io_err("stop Node-RED"))?;
                    safe_mode = false;
                }
                Watched::Ended(ending) => {
                    let uptime = started.elapsed();
                    safe_mode = match self.after_ending(&ending, uptime) {
                        Decision::Restart { after, safe_mode } => {
                            if self.pause(after).await {
                                self.set_phase("stopped", "stopped");
                                return Ok(());
                            }
                            safe_mode
                        }
                        Decision::GiveUp(looping) => {
                            let why = format!("{looping}; the last: {ending}");
                            self.set_phase("crash-loop", &format!("gave up: crash loop ({why})"));
                            tracing::error!("Node-RED is in a crash loop: {why}; giving up so the unit fails (fix the flow or settings, then `systemctl restart redwarden`)");
                            return Err(SuperviseError::CrashLoop(why));
                        }
                    };
                }
            }
        }
    }

    /// Records an unexpected ending and decides what comes next.
    fn after_ending(&mut self, ending: &Ending, uptime: Duration) -> Decision {
        let last_error = self.last_error.lock().ok().and_then(|mut e| e.take());
        let reason = match &last_error {
            Some(line) if matches!(ending, Ending::Exited(_) | Ending::Signaled(_)) => {
                format!("{ending} ({line})")
            }
            _ => ending.to_string(),
        };
        self.status.restarts += 1;
        self.status.last_exit = Some(reason.clone());
        self.status.last_exit_at = Some(status::now());
        self.status.nodered_pid = None;
        self.status.probe_ok = false;
        let decision = self
            .history
            .decide(&self.policy, Instant::now(), uptime, jitter());
        if let Decision::Restart { after, safe_mode } = &decision {
            let mode = if *safe_mode {
                " in safe mode (flows stopped: a crash loop)"
            } else {
                ""
            };
            tracing::warn!(
                "Node-RED {reason} after {} s; restarting{mode} in {:.1} s",
                uptime.as_secs(),
                after.as_secs_f64()
            );
            self.set_phase(
                "restarting",
                &format!(
                    "restart {} in {:.0} s{mode}; last exit: {reason}",
                    self.status.restarts,
                    after.as_secs_f64()
                ),
            );
        }
        decision
    }

    fn started(&mut self, child: &mut Child, safe_mode: bool) {
        let pid = child.id();
        if let Some(stdout) = child.stdout.take() {
            let last_error = self.last_error.clone();
            tokio::spawn(child::forward(stdout, false, self.to_journal, last_error));
        }
        if let Some(stderr) = child.stderr.take() {
            let last_error = self.last_error.clone();
            tokio::spawn(child::forward(stderr, true, self.to_journal, last_error));
        }
        self.status.nodered_pid = pid;
        self.status.started_at = Some(status::now());
        self.status.safe_mode = safe_mode;
        self.status.probe_ok = false;
        self.status.rss_bytes = None;
        let pid = pid.map_or_else(|| "?".into(), |p| p.to_string());
        if safe_mode {
            self.set_phase("safe-mode", &format!("crash loop: Node-RED pid {pid} in safe mode, flows stopped; fix them in the editor and deploy"));
        } else {
            self.set_phase("starting", &format!("starting Node-RED, pid {pid}"));
        }
        tracing::info!(
            "started Node-RED, pid {pid}{}",
            if safe_mode { ", in safe mode" } else { "" }
        );
    }

    async fn watch(&mut self, child: &mut Child, started: Instant) -> Watched {
        let mut next_probe = tokio::time::Instant::now();
        let start_timeout = Self::secs(self.config.supervise.start_timeout_secs);
        let (mut failures, mut over_memory) = (0u32, 0u32);
        // Probe failures count once Node-RED has answered; before, the start timeout applies.
        let mut answered = false;
        loop {
            tokio::select! {
                exit = child.wait() => {
                    use std::os::unix::process::ExitStatusExt;
                    return Watched::Ended(match exit {
                        Ok(status) => match (status.code(), status.signal()) {
                            (Some(code), _) => Ending::Exited(code),
                            (None, signal) => Ending::Signaled(signal.unwrap_or(0)),
                        },
                        Err(_) => Ending::Exited(-1),
                    });
                }
                _ = tokio::time::sleep_until(next_probe) => {
                    self.progress.mark();
                    let answering_before = self.status.probe_ok;
                    match self.prober.probe(self.probe_timeout()).await {
                        Ok(latency) => {
                            failures = 0;
                            answered = true;
                            self.status.probe_ok = true;
                            self.status.probe_latency_ms = Some(latency.as_secs_f64() * 1000.0);
                            if !answering_before {
                                self.serving(started);
                            }
                            self.snapshot_flows();
                        }
                        Err(e) if answered => {
                            failures += 1;
                            self.status.probe_ok = false;
                            tracing::warn!("probe {failures} of {}: {e}", self.config.supervise.probe_failures);
                            if failures >= self.config.supervise.probe_failures {
                                return self.end(child, Ending::Hung { failures }).await;
                            }
                        }
                        Err(e) if started.elapsed() >= start_timeout => {
                            tracing::warn!("no answer since the start: {e}");
                            let secs = self.config.supervise.start_timeout_secs;
                            return self.end(child, Ending::NeverAnswered { secs }).await;
                        }
                        Err(_) => {}
                    }
                    self.progress.mark();
                    // Until the first answer, probe often: READY=1 (and so a restart's
                    // completion) should follow Node-RED's start closely.
                    next_probe = tokio::time::Instant::now()
                        + if answered { self.probe_interval() } else { STARTING_PROBE_INTERVAL.min(self.probe_interval()) };
                    if let Some(ending) = self.sample_memory(&mut over_memory) {
                        return self.end(child, ending).await;
                    }
                    self.write_status();
                }
                delivery = self.signals.recv() => {
                    if let Some(watched) = self.on_signal(delivery).await {
                        return watched;
                    }
                }
            }
        }
    }

    /// Stops a child that has not exited by itself, and reports why.
    async fn end(&mut self, child: &mut Child, ending: Ending) -> Watched {
        tracing::warn!("Node-RED {ending}: stopping it");
        // A hung event loop never runs its SIGINT handler: waiting the whole stop timeout
        // only delays the restart.
        let grace = match ending {
            Ending::Hung { .. } => self.probe_timeout().min(self.stop_timeout()),
            _ => self.stop_timeout(),
        };
        if let Err(e) = child::stop(child, grace).await {
            tracing::error!("stopping Node-RED: {e}");
        }
        Watched::Ended(ending)
    }

    fn serving(&mut self, started: Instant) {
        let pid = self.status.nodered_pid.unwrap_or_default();
        let secs = started.elapsed().as_secs_f64();
        let text = if self.status.safe_mode {
            format!("crash loop: Node-RED pid {pid} serves in safe mode, flows stopped; fix them in the editor and deploy")
        } else {
            format!(
                "serving: Node-RED pid {pid}, restarts {}",
                self.status.restarts
            )
        };
        tracing::info!(
            "Node-RED answers on {} after {secs:.1} s",
            self.prober.address()
        );
        self.status.phase = if self.status.safe_mode {
            "safe-mode"
        } else {
            "serving"
        }
        .into();
        if self.ready_sent {
            notify(&[NotifyState::Status(&text)]);
        } else {
            self.ready_sent = true;
            notify(&[NotifyState::Ready, NotifyState::Status(&text)]);
            self.audit.start(&self.source);
        }
        self.write_status();
    }

    fn sample_memory(&mut self, over: &mut u32) -> Option<Ending> {
        let rss = proc::rss_bytes(self.status.nodered_pid?)?;
        self.status.rss_bytes = Some(rss);
        let limit = self.memory_limit()?;
        if rss <= limit {
            *over = 0;
            return None;
        }
        *over += 1;
        tracing::warn!(
            "Node-RED uses {} MiB, above the limit of {} MiB ({} of {})",
            policy::mib(rss, policy::Round::Up),
            policy::mib(limit, policy::Round::Down),
            over,
            self.config.supervise.memory_samples
        );
        (*over >= self.config.supervise.memory_samples)
            .then_some(Ending::MemoryLimit { rss, limit })
    }

    /// Handles one signal; Some when the run must end.
    async fn on_signal(&mut self, delivery: std::io::Result<signals::Delivery>) -> Option<Watched> {
        let delivery = match delivery {
            Ok(d) => d,
            Err(e) => {
                tracing::error!("reading signals: {e}");
                return None;
            }
        };
        let own_uid = rustix::process::getuid().as_raw();
        if !signals::obeyed(&delivery, own_uid, std::process::id(), self.service_uid) {
            tracing::warn!(
                "ignored signal {} from pid {}: it runs as the service user, so it is Node-RED or one of its flows",
                delivery.signal, delivery.pid
            );
            return None;
        }
        match delivery.signal {
            libc::SIGHUP => self.reload(),
            _ => Some(Watched::Stop),
        }
    }

    /// SIGHUP: read the configuration again and audit; restart Node-RED only when what it is
    /// started with changed.
    fn reload(&mut self) -> Option<Watched> {
        notify(&[
            NotifyState::Reloading,
            NotifyState::MonotonicUsec(monotonic_usec()),
        ]);
        let root = Root::live();
        let outcome = Config::load(&self.source, &root)
            .map_err(|e| e.to_string())
            .and_then(|config| {
                let launch = resolve(&root, &config).map_err(|e| e.to_string())?;
                let prober =
                    Prober::new(&config.supervise.probe.target(), config.nodered.port.get())
                        .map_err(|e| e.to_string())?;
                Ok((config, launch, prober))
            });
        let restart = match outcome {
            Ok((config, launch, prober)) => {
                let restart = launch != self.launch;
                self.audit.start(&self.source);
                self.policy = Policy::from_config(&config.supervise);
                self.config = config;
                self.launch = launch;
                self.prober = prober;
                tracing::info!(restart, "reloaded the configuration");
                restart
            }
            Err(e) => {
                tracing::error!("reload refused, keeping the running configuration: {e}");
                false
            }
        };
        notify(&[NotifyState::Ready]);
        self.write_status();
        restart.then_some(Watched::Restart)
    }

    /// Waits out a backoff pause; true when a stop request came in meanwhile.
    async fn pause(&mut self, pause: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + pause;
        loop {
            self.progress.mark();
            let step = deadline
                .saturating_duration_since(tokio::time::Instant::now())
                .min(self.probe_interval());
            if step.is_zero() {
                return false;
            }
            tokio::select! {
                _ = tokio::time::sleep(step) => {}
                delivery = self.signals.recv() => {
                    if let Some(Watched::Stop) = self.on_signal(delivery).await {
                        return true;
                    }
                }
            }
        }
    }

    fn protected_files(&self) -> Vec<String> {
        let settings = std::fs::read_to_string(&self.launch.settings).unwrap_or_default();
        backup::protected_files(&backup::flow_file_from_settings(&settings))
    }

    /// A deploy rewrites the flows: copy them while Node-RED runs, so a damaged file found at
    /// the next start comes back as last deployed, not as it was at the last start.
    fn snapshot_flows(&mut self) {
        let files = self.protected_files();
        let changed = files
            .iter()
            .map(|f| {
                std::fs::symlink_metadata(self.launch.user_dir.join(f))
                    .and_then(|m| m.modified())
                    .ok()
            })
            .collect::<Vec<_>>();
        if changed == self.flows_seen {
            return;
        }
        match backup::snapshot(&self.launch.user_dir, &files, self.config.supervise.backups) {
            Ok(Some(copy)) => tracing::info!("backed up the deployed flows to {}", copy.display()),
            Ok(None) => {}
            Err(e) => tracing::error!("flow backup: {e}"),
        }
        self.flows_seen = changed;
    }

    /// Backs up flows and repairs damaged ones before each start.
    fn prepare_files(&mut self) {
        let files = self.protected_files();
        match backup::prepare(&self.launch.user_dir, &files, self.config.supervise.backups) {
            Ok(prepared) => {
                for (file, from) in &prepared.restored {
                    tracing::warn!(
                        "{file} was empty or damaged: restored it from {}",
                        from.display()
                    );
                }
                for file in &prepared.unrepaired {
                    tracing::error!("{file} is empty or damaged and no backup holds a good copy");
                }
                if let Some(copy) = &prepared.backup {
                    tracing::info!("backed up flows to {}", copy.display());
                }
            }
            Err(e) => tracing::error!("flow backup: {e}"),
        }
    }

    /// Never two Node-RED: a new one starts only once nothing listens on the port (a previous
    /// one, or something its flows left behind), or after the stop timeout, with a warning.
    async fn wait_for_port(&mut self) {
        let deadline = Instant::now() + self.stop_timeout();
        let port = self.launch.port;
        loop {
            match std::net::TcpListener::bind((std::net::Ipv6Addr::UNSPECIFIED, port))
                .or_else(|_| std::net::TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, port)))
            {
                Ok(_) => return,
                Err(e)
                    if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline =>
                {
                    self.progress.mark();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    tracing::warn!(
                        "port {port} is still in use by another process; starting Node-RED anyway"
                    );
                    return;
                }
                // A low port without the capability to test it: Node-RED itself will say.
                Err(_) => return,
            }
        }
    }

    fn set_phase(&mut self, phase: &str, text: &str) {
        self.status.phase = phase.into();
        notify(&[NotifyState::Status(text)]);
        self.write_status();
    }

    fn write_status(&mut self) {
        self.status.updated_at = status::now();
        self.status.findings = self.audit.findings();
        if !self.status_broken {
            if let Err(e) = self.status.write(&self.status_path) {
                tracing::warn!("no status file for `redwarden status`: {e}");
                self.status_broken = true;
            }
        }
        if let (Some(path), false) = (&self.config.supervise.metrics_file, self.metrics_broken) {
            let text = self.status.metrics(self.status.updated_at);
            if let Err(e) = status::write_public(path.as_path(), text.as_bytes()) {
                tracing::warn!("no metrics file: {e}");
                self.metrics_broken = true;
            }
        }
    }

    /// Pings systemd's watchdog at half its interval, but only while the loop above makes
    /// progress: a supervisor stuck anywhere stops the pings and systemd restarts it.
    fn start_watchdog(&self) {
        let Some(interval) = sd_notify::watchdog_enabled() else {
            return;
        };
        let progress = self.progress.clone();
        let stale = 2 * self.probe_interval() + self.probe_timeout() + self.stop_timeout();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval / 2);
            loop {
                ticks.tick().await;
                let age = progress.age();
                if age < stale {
                    notify(&[NotifyState::Watchdog]);
                } else {
                    tracing::error!(
                        "the supervision loop made no progress for {} s: no watchdog ping",
                        age.as_secs()
                    );
                }
            }
        });
    }
}

fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("sd_notify: {e}");
    }
}

/// CLOCK_MONOTONIC in microseconds, which RELOADING=1 carries. (sd-notify's own helper
/// multiplies a 32-bit time_t on armv7 and overflows: a panic in debug builds, a wrong time in
/// release ones.)
fn monotonic_usec() -> i128 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    i128::from(now.tv_sec) * 1_000_000 + i128::from(now.tv_nsec) / 1_000
}

/// Uniform in [0, 1), for the backoff's jitter.
fn jitter() -> f64 {
    let mut bytes = [0u8; 8];
    let _ = rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty());
    (u64::from_ne_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// Whether stdout is the journal's stream (JOURNAL_STREAM names its device and inode), so
/// Node-RED's lines get `<priority>` prefixes instead of being passed through.
pub fn stdout_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    rustix::fs::fstat(std::io::stdout())
        .is_ok_and(|st| dev.parse() == Ok(st.st_dev) && ino.parse() == Ok(st.st_ino))
}
