//! Step `adopt`: a Node-RED that another unit runs (the official installer's nodered.service,
//! as `pi`, from /home/pi/.node-red) moves to the dedicated user and userDir. Copy, verify,
//! then switch; the original stays in place.
//!
//! The switch is one systemd transaction: redwarden.service conflicts with nodered.service, so
//! starting it stops the old one. Until Node-RED answers under the new unit, a probation drop-in
//! (Restart=no, OnFailure=nodered.service) makes systemd itself hand back to the old unit if the
//! new one fails, and the boot links are only swapped after that drop-in is in place. So a crash
//! of apply, of Node-RED or of the board at any point leaves one of them running or starting.
//! The start is never awaited inside a systemd job (apply itself may run as one, ordered before
//! redwarden.service): the next apply confirms the probation, or undoes it.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::install::{self, Installation};
use super::unit::{install_path, UNIT_NAME};
use super::{Action, Plan};
use crate::config::Config;
use crate::host::accounts::AccountDb;
use crate::host::{fs, systemd, Root};
use crate::report::{Finding, Severity};

/// Where apply records the outcome of an adoption: on probation (the next apply confirms or
/// reverts it), adopted, failed (not retried) or undone.
pub const STATE_FILE: &str = "/var/lib/redwarden/adoption";
/// Left in the adopted userDir: where it came from.
pub const MARKER: &str = ".redwarden-adopted-from";
/// The probation drop-in: no restarts, and the old unit takes over if the new one fails.
const PROBATION: &str = "redwarden.service.d/60-adoption-probation.conf";
/// File times come from the kernel's coarse clock, which may lag the clock read before a copy
/// is compared by a tick: files the old Node-RED wrote this long before still count as changed.
/// A file that did not change is left alone anyway, as its copy holds the same bytes.
const COARSE_CLOCK_NS: i128 = 1_000_000_000;
/// How long a hand-run apply waits for the adopted Node-RED to answer before leaving the verdict
/// to the next apply. Node-RED starts in about 1 s on x86 and 10-30 s on a Pi Zero.
const PROBATION_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Switched; waiting for Node-RED to answer under redwarden.service.
    Probation,
    Adopted,
    Failed(String),
    Undone,
}

/// The recorded outcome of an adoption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub phase: Phase,
    pub from: PathBuf,
    pub unit: String,
    /// While on probation: what `adopt-sync` carries over.
    pub window: Option<Window>,
}

/// When the adoption's last copy began to be compared with its source, and when the switch
/// began, in ns since the epoch. The old Node-RED keeps running until the switch stops it: what
/// it wrote after `copied` is carried over, unless the copy itself changed after `switched`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub copied: i128,
    pub switched: i128,
}

impl State {
    fn render(&self) -> String {
        let (phase, reason) = match &self.phase {
            Phase::Probation => ("probation", ""),
            Phase::Adopted => ("adopted", ""),
            Phase::Failed(reason) => ("failed", reason.as_str()),
            Phase::Undone => ("undone", ""),
        };
        let window = self.window.map_or(String::new(), |w| {
            format!("copied={}\nswitched={}\n", w.copied, w.switched)
        });
        format!(
            "phase={phase}\nfrom={}\nunit={}\nreason={}\n{window}",
            self.from.display(),
            self.unit,
            reason.replace('\n', " ")
        )
    }

    fn parse(text: &str) -> Option<Self> {
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_string)
        };
        let phase = match field("phase")?.as_str() {
            "probation" => Phase::Probation,
            "adopted" => Phase::Adopted,
            "failed" => Phase::Failed(field("reason").unwrap_or_default()),
            "undone" => Phase::Undone,
            _ => return None,
        };
        let time = |key: &str| field(key)?.parse::<i128>().ok();
        Some(Self {
            phase,
            from: PathBuf::from(field("from")?),
            unit: field("unit")?,
            window: time("copied")
                .zip(time("switched"))
                .map(|(copied, switched)| Window { copied, switched }),
        })
    }
}

/// A change of who runs Node-RED.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdoptChange {
    Adopt {
        from: PathBuf,
        to: PathBuf,
        unit: String,
        owner: (u32, u32),
        port: u16,
        redwarden_bin: PathBuf,
    },
    /// Node-RED answers under redwarden.service: end the probation.
    Confirm {
        unit: String,
        from: PathBuf,
    },
    /// redwarden.service failed on probation (systemd already started the old unit): restore
    /// the old boot links and record why.
    Revert {
        unit: String,
        from: PathBuf,
    },
    Undo {
        unit: String,
        from: PathBuf,
    },
    /// On probation, but the old unit still enabled: an apply was cut off between recording
    /// the probation and switching the boot links (or one reverting it, before it recorded the
    /// failure). Finish the switch, under the probation's safety net.
    FinishSwitch {
        unit: String,
        port: u16,
        redwarden_bin: PathBuf,
    },
}

impl std::fmt::Display for AdoptChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Adopt { from, to, unit, .. } => write!(
                f,
                "adopt the Node-RED of {unit}: copy {} to {}, verify, switch to {UNIT_NAME}",
                from.display(),
                to.display()
            ),
            Self::Confirm { unit, .. } => {
                write!(
                    f,
                    "confirm the adoption: Node-RED serves under {UNIT_NAME}, {unit} stays off"
                )
            }
            Self::Revert { unit, .. } => write!(
                f,
                "revert the adoption: {UNIT_NAME} failed on probation, {unit} runs Node-RED again"
            ),
            Self::Undo { unit, from } => write!(
                f,
                "switch back to {unit} and {} (the adopted copy stays)",
                from.display()
            ),
            Self::FinishSwitch { unit, .. } => write!(
                f,
                "finish the adoption's switch from {unit} to {UNIT_NAME}, which an earlier apply did not complete"
            ),
        }
    }
}

/// What is in the configured userDir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Missing or an empty folder: room for the copy.
    Free,
    /// Already holds an adopted copy of this folder.
    AdoptedFrom(PathBuf),
    /// Holds a Node-RED of its own: adopting would mix two installations.
    Occupied,
}

#[derive(Debug, Clone)]
pub struct Observed {
    pub adopt: bool,
    pub undo: bool,
    /// The installation an enabled unit runs, when it is not the configured one.
    pub legacy: Option<Installation>,
    pub configured: Installation,
    pub owner: Option<(u32, u32)>,
    pub redwarden_bin: PathBuf,
    pub target: Target,
    pub state: Option<State>,
    pub port: u16,
    /// On probation: whether Node-RED answers on the port, and whether redwarden.service failed.
    pub serving: bool,
    pub new_unit_failed: bool,
}

pub fn observe(
    root: &Root,
    config: &Config,
    undo: bool,
    waits: bool,
) -> Result<Observed, crate::Error> {
    let accounts = AccountDb::load(root)?;
    let configured = Installation::configured(config);
    let legacy = install::find_unit(root)?
        .and_then(|unit| Installation::from_unit(&unit, &accounts, &configured));
    let owner = accounts
        .user(&configured.user)
        .zip(accounts.group.by_name(&configured.group))
        .map(|(u, g)| (u.uid, g.gid));
    let target_dir = root.resolve_parent(&configured.user_dir)?;
    let target = match std::fs::read_dir(&target_dir) {
        Err(_) => Target::Free,
        Ok(mut entries) => match std::fs::read_to_string(target_dir.join(MARKER)) {
            Ok(from) => Target::AdoptedFrom(PathBuf::from(from.trim())),
            Err(_) if entries.next().is_none() => Target::Free,
            Err(_) => Target::Occupied,
        },
    };
    let state = read_state(root)?;
    let on_probation = state.as_ref().is_some_and(|s| s.phase == Phase::Probation);
    let live = systemd::is_booted(root);
    let port = config.nodered.port.get();
    if on_probation && live && waits {
        wait_for_verdict(port);
    }
    Ok(Observed {
        // Only the new unit counts: the old one, started by OnFailure=, serves the same port.
        serving: on_probation && live && systemd::is_active(UNIT_NAME) && serves_http(port),
        new_unit_failed: on_probation && live && systemd::is_failed(UNIT_NAME),
        adopt: config.nodered.adopt,
        undo,
        legacy,
        configured,
        owner,
        redwarden_bin: super::unit::installed_redwarden(root),
        target,
        state,
        port,
    })
}

pub fn plan(observed: &Observed) -> Plan {
    let mut plan = Plan::default();
    let Some(legacy) = &observed.legacy else {
        return plan;
    };
    let unit = legacy
        .unit
        .as_ref()
        .and_then(|u| u.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let adopted_here = observed.target == Target::AdoptedFrom(legacy.user_dir.clone());
    if observed.undo {
        if adopted_here && !legacy.unit_enabled {
            plan.actions.push(Action::Adopt(AdoptChange::Undo {
                unit,
                from: legacy.user_dir.clone(),
            }));
        }
        return plan;
    }
    let user_dir = &observed.configured.user_dir;
    if let Some(
        state @ State {
            phase: Phase::Probation,
            ..
        },
    ) = &observed.state
    {
        let (unit, from) = (state.unit.clone(), state.from.clone());
        if observed.serving {
            plan.actions
                .push(Action::Adopt(AdoptChange::Confirm { unit, from }));
        } else if observed.new_unit_failed {
            plan.findings.push(
                Finding::new(
                    "adopt.failed",
                    Severity::High,
                    format!("{UNIT_NAME} failed on probation; {unit} took over again"),
                    true,
                )
                .at(STATE_FILE),
            );
            plan.actions
                .push(Action::Adopt(AdoptChange::Revert { unit, from }));
        } else {
            if legacy.unit_enabled {
                plan.actions.push(Action::Adopt(AdoptChange::FinishSwitch {
                    unit: unit.clone(),
                    port: observed.port,
                    redwarden_bin: observed.redwarden_bin.clone(),
                }));
            }
            plan.findings.push(Finding::new("adopt.probation", Severity::Info, format!("Node-RED was moved from {unit} to {UNIT_NAME} and has not answered on port {} yet; the next apply confirms or reverts it", observed.port), false).at(STATE_FILE));
        }
        return plan;
    }
    match &observed.state {
        Some(State {
            phase: Phase::Failed(reason),
            ..
        }) => {
            plan.findings.push(
                Finding::new(
                    "adopt.failed",
                    Severity::High,
                    format!("adopting the Node-RED of {unit} failed ({reason}); {unit} kept running. Delete {STATE_FILE} to try again"),
                    false,
                )
                .at(STATE_FILE),
            );
            return plan;
        }
        Some(State {
            phase: Phase::Undone,
            ..
        }) => return plan,
        Some(State {
            phase: Phase::Adopted,
            ..
        }) if legacy.unit_enabled => {
            // Someone enabled the old unit again by hand: respect it, like an undo.
            plan.findings.push(
                Finding::new(
                    "adopt.reverted-by-hand",
                    Severity::Info,
                    format!("{unit} was enabled again after the adoption; apply leaves it. Delete {STATE_FILE} to adopt afresh"),
                    false,
                )
                .at(STATE_FILE),
            );
            return plan;
        }
        _ => {}
    }
    if !observed.adopt || !legacy.unit_enabled {
        return plan;
    }
    match (&observed.target, observed.owner) {
        (Target::Occupied, _) => plan.findings.push(
            Finding::new(
                "adopt.blocked",
                Severity::High,
                format!("{unit} runs Node-RED from {}, but {} already holds another Node-RED; move one of them, or set [nodered] adopt = false", legacy.user_dir.display(), user_dir.display()),
                false,
            )
            .at(user_dir.clone()),
        ),
        (_, None) => {} // the user step creates the service user first
        (_, Some(owner)) => {
            plan.findings.push(
                Finding::new(
                    "adopt.pending",
                    Severity::High,
                    format!("{unit} runs Node-RED from {}; apply moves it to {} under the dedicated user", legacy.user_dir.display(), user_dir.display()),
                    true,
                )
                .at(legacy.user_dir.clone()),
            );
            plan.actions.push(Action::Adopt(AdoptChange::Adopt {
                from: legacy.user_dir.clone(),
                to: user_dir.clone(),
                unit,
                owner,
                port: observed.port,
                redwarden_bin: observed.redwarden_bin.clone(),
            }));
        }
    }
    plan
}

/// The recorded outcome of the last adoption, if any (an unreadable record counts as none).
fn read_state(root: &Root) -> Result<Option<State>, crate::Error> {
    Ok(fs::read_nofollow(&root.resolve(Path::new(STATE_FILE))?)?
        .and_then(|bytes| State::parse(&String::from_utf8_lossy(&bytes))))
}

fn write_state(root: &Root, state: &State) -> Result<(), crate::Error> {
    let path = root.resolve_parent(Path::new(STATE_FILE))?;
    if let Some(parent) = path.parent().filter(|p| !p.exists()) {
        fs::create_dir(parent, 0o755, 0, 0)?;
    }
    fs::write_file(&path, state.render().as_bytes(), 0o644, 0, 0)?;
    Ok(())
}

fn set_enabled(root: &Root, unit: &str, enabled: bool) -> Result<(), crate::Error> {
    let link = root.resolve_parent(&systemd::wants_link(unit, "multi-user.target"))?;
    if enabled {
        // systemctl enable links to wherever the unit file is.
        let target = crate::host::paths::UNIT_DIRS
            .iter()
            .map(|dir| Path::new(dir).join(unit))
            .find(|path| root.resolve(path).is_ok_and(|host| host.exists()))
            .unwrap_or_else(|| install_path(unit));
        fs::write_symlink(&link, &target)?;
    } else if std::fs::symlink_metadata(&link).is_ok() {
        std::fs::remove_file(&link).map_err(|e| adopt_error(&link, "disable", e))?;
    }
    Ok(())
}

fn adopt_error(path: &Path, op: &str, e: std::io::Error) -> crate::Error {
    crate::Error::Adopt(format!("{op} {}: {e}", path.display()))
}

/// Whether something answers HTTP on 127.0.0.1:port (any status: Node-RED is serving).
fn serves_http(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(2)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream
        .write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// Copies until source and copy agree: the old Node-RED keeps running and may write (a deploy,
/// a context flush) while the copy is made. Returns when the agreeing comparison began: what
/// changed after that is for `adopt-sync`.
fn copy_verified(
    root: &Root,
    from: &Path,
    staging: &Path,
    owner: (u32, u32),
) -> Result<(fs::CopyStats, i128), crate::Error> {
    let mut last = Vec::new();
    for _ in 0..3 {
        if staging.exists() {
            std::fs::remove_dir_all(staging).map_err(|e| adopt_error(staging, "remove", e))?;
        }
        let stats = fs::copy_tree(&root.resolve_parent(from)?, staging, owner.0, owner.1)?;
        let compared = now_ns();
        last = fs::compare_trees(&root.resolve_parent(from)?, staging)?;
        if last.is_empty() {
            return Ok((stats, compared));
        }
    }
    let _ = std::fs::remove_dir_all(staging);
    Err(crate::Error::Adopt(format!(
        "{} kept changing while it was copied ({} and {} more differ); nothing was switched",
        from.display(),
        last.first()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        last.len().saturating_sub(1)
    )))
}

pub fn apply(root: &Root, change: &AdoptChange) -> Result<(), crate::Error> {
    let state = |phase: Phase, unit: &str, from: &Path| State {
        phase,
        from: from.to_path_buf(),
        unit: unit.to_string(),
        window: None,
    };
    match change {
        AdoptChange::Adopt {
            from,
            to,
            unit,
            owner,
            port,
            redwarden_bin,
        } => adopt(root, from, to, unit, *owner, *port, redwarden_bin),
        AdoptChange::Confirm { unit, from } => {
            remove_probation(root)?;
            write_state(root, &state(Phase::Adopted, unit, from))
        }
        AdoptChange::Revert { unit, from } => {
            // systemd already started the old unit (OnFailure=); make it the boot default again.
            set_enabled(root, unit, true)?;
            set_enabled(root, UNIT_NAME, false)?;
            remove_probation(root)?;
            let reason = format!("{UNIT_NAME} failed on probation; see journalctl -u {UNIT_NAME}");
            write_state(root, &state(Phase::Failed(reason), unit, from))
        }
        AdoptChange::FinishSwitch {
            unit,
            port,
            redwarden_bin,
        } => {
            install_probation(root, unit, redwarden_bin)?;
            switch_to_new(root, unit, *port)
        }
        AdoptChange::Undo { unit, from } => {
            // Enable the old before disabling the new: a crash in between leaves both enabled,
            // and Conflicts= lets only one run.
            set_enabled(root, unit, true)?;
            set_enabled(root, UNIT_NAME, false)?;
            if systemd::is_booted(root) {
                systemd::systemctl(&["daemon-reload"])?;
                systemd::systemctl(&["start", "--no-block", unit])?;
            }
            write_state(root, &state(Phase::Undone, unit, from))
        }
    }
}

fn adopt(
    root: &Root,
    from: &Path,
    to: &Path,
    unit: &str,
    owner: (u32, u32),
    port: u16,
    redwarden_bin: &Path,
) -> Result<(), crate::Error> {
    let target = root.resolve_parent(to)?;
    let sibling = |suffix: &str| {
        let mut name = target.file_name().unwrap_or_default().to_os_string();
        name.push(suffix);
        target.with_file_name(name)
    };
    // Always a fresh copy: the original may have changed since an earlier adoption that was
    // undone. It is made beside the target and renamed into place, so the userDir is either
    // empty, an earlier copy, or a complete, verified new copy.
    let staging = sibling(".redwarden-adopting");
    let (stats, copied) = copy_verified(root, from, &staging, owner)?;
    tracing::info!(
        files = stats.files,
        bytes = stats.bytes,
        links = stats.links,
        skipped = stats.skipped,
        "copied and verified {}",
        from.display()
    );
    std::fs::write(staging.join(MARKER), format!("{}\n", from.display()))
        .map_err(|e| adopt_error(&staging, "mark", e))?;
    if matches!(std::fs::read_to_string(target.join(MARKER)), Ok(f) if Path::new(f.trim()) == from)
    {
        // An earlier copy of the same folder (a retried adoption): kept aside, never deleted.
        let seconds = now_ns() / 1_000_000_000;
        let previous = sibling(&format!(".redwarden-previous-{seconds}"));
        std::fs::rename(&target, &previous).map_err(|e| adopt_error(&target, "keep aside", e))?;
    } else if target.exists() {
        // Only an empty folder is ever replaced (Target::Free); remove_dir refuses others.
        std::fs::remove_dir(&target).map_err(|e| adopt_error(&target, "replace", e))?;
    }
    std::fs::rename(&staging, &target)
        .map_err(|e| adopt_error(&target, "move the copy into", e))?;
    // The safety net goes in before anything switches, and the probation is recorded before
    // the boot links change: an apply cut off after that is finished by the next one
    // (FinishSwitch), where a record written last could miss a switch already made.
    install_probation(root, unit, redwarden_bin)?;
    write_state(
        root,
        &State {
            phase: Phase::Probation,
            from: from.to_path_buf(),
            unit: unit.to_string(),
            window: Some(Window {
                copied,
                switched: now_ns(),
            }),
        },
    )?;
    switch_to_new(root, unit, port)
}

/// The probation drop-in: no restarts, and `unit` takes over if redwarden.service fails.
fn install_probation(root: &Root, unit: &str, redwarden_bin: &Path) -> Result<(), crate::Error> {
    let probation = root.resolve_parent(&install_path(PROBATION))?;
    if let Some(parent) = probation.parent().filter(|p| !p.exists()) {
        fs::create_dir(parent, 0o755, 0, 0)?;
    }
    // adopt-sync runs as root (+) once the old unit has stopped (redwarden.service is ordered
    // after it), before the adopted Node-RED starts; if it fails, so does the start, and
    // OnFailure= hands Node-RED back.
    let text = format!(
        "# redwarden: adoption on probation; the next apply removes it once Node-RED serves.\n\
         [Unit]\nOnFailure={unit}\n\n[Service]\nRestart=no\nExecStartPre=+{} adopt-sync\n",
        redwarden_bin.display()
    );
    fs::write_file(&probation, text.as_bytes(), 0o644, 0, 0)?;
    Ok(())
}

/// Boots redwarden.service instead of `unit`, and on a live system starts it and waits for its
/// verdict. The new boot link goes in before the old one goes away: a crash in between leaves
/// both enabled, and Conflicts= lets one run.
fn switch_to_new(root: &Root, unit: &str, port: u16) -> Result<(), crate::Error> {
    set_enabled(root, UNIT_NAME, true)?;
    set_enabled(root, unit, false)?;
    if systemd::is_booted(root) {
        systemd::systemctl(&["daemon-reload"])?;
        // A failure left from an earlier attempt must not count as this one's verdict.
        if systemd::is_failed(UNIT_NAME) {
            systemd::systemctl(&["reset-failed", UNIT_NAME])?;
        }
        systemd::systemctl(&["start", "--no-block", UNIT_NAME])?;
        if !systemd::inside_unit(super::unit::APPLY_UNIT) {
            wait_for_verdict(port);
        }
    }
    Ok(())
}

/// `redwarden adopt-sync`: run by systemd as root before the adopted Node-RED starts on
/// probation. What the old Node-RED wrote after the copy (a deploy, the context it flushes as it
/// stops) is carried into the copy. Nothing to do outside a probation.
pub fn sync(root: &Root, config: &Config) -> Result<(), crate::Error> {
    let state = read_state(root)?;
    let Some(State {
        phase: Phase::Probation,
        from,
        unit,
        window: Some(window),
    }) = state
    else {
        tracing::info!("no adoption on probation: nothing to carry over");
        return Ok(());
    };
    if systemd::is_booted(root) && systemd::is_active(&unit) {
        return Err(crate::Error::Adopt(format!(
            "{unit} still runs and may still write to {}; not starting the copy beside it",
            from.display()
        )));
    }
    let to = Installation::configured(config).user_dir;
    let to_host = root.resolve_parent(&to)?;
    let marker = fs::read_nofollow(&to_host.join(MARKER))?
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string());
    if marker.as_deref().map(Path::new) != Some(from.as_path()) {
        return Err(crate::Error::Adopt(format!(
            "{} does not hold the copy of {} ({MARKER} says {:?}); nothing carried over",
            to.display(),
            from.display(),
            marker.unwrap_or_default()
        )));
    }
    let done = fs::carry_over(
        &root.resolve_parent(&from)?,
        &to_host,
        window.copied - COARSE_CLOCK_NS,
        window.switched,
    )?;
    for rel in &done.kept {
        tracing::warn!(
            "{}: changed in both folders since the copy; kept the copy's version",
            to.join(rel).display()
        );
    }
    for rel in &done.skipped {
        tracing::warn!(
            "{}: a special file changed after the copy; not carried over",
            from.join(rel).display()
        );
    }
    tracing::info!(
        files = done.files,
        bytes = done.bytes,
        links = done.links,
        "carried over what {unit} wrote to {} after the copy",
        from.display()
    );
    Ok(())
}

/// Waits until Node-RED answers under the new unit, or the unit fails, or time runs out; the
/// next pass of apply reads the verdict. Never called from inside a systemd job, where the
/// start waits for apply to finish.
fn wait_for_verdict(port: u16) {
    let deadline = Instant::now() + PROBATION_TIMEOUT;
    while Instant::now() < deadline {
        if (systemd::is_active(UNIT_NAME) && serves_http(port)) || systemd::is_failed(UNIT_NAME) {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn remove_probation(root: &Root) -> Result<(), crate::Error> {
    let probation = root.resolve_parent(&install_path(PROBATION))?;
    if std::fs::symlink_metadata(&probation).is_ok() {
        std::fs::remove_file(&probation).map_err(|e| adopt_error(&probation, "remove", e))?;
    }
    if systemd::is_booted(root) {
        systemd::systemctl(&["daemon-reload"])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legacy() -> Installation {
        Installation {
            user: "pi".into(),
            group: "pi".into(),
            user_dir: "/home/pi/.node-red".into(),
            settings: "/home/pi/.node-red/settings.js".into(),
            unit: Some("/lib/systemd/system/nodered.service".into()),
            unit_enabled: true,
        }
    }

    fn observed(target: Target, state: Option<State>) -> Observed {
        Observed {
            adopt: true,
            undo: false,
            legacy: Some(legacy()),
            configured: Installation::configured(&Config::default()),
            owner: Some((999, 999)),
            redwarden_bin: "/usr/bin/redwarden".into(),
            target,
            state,
            port: 1880,
            serving: false,
            new_unit_failed: false,
        }
    }

    fn ids(plan: &Plan) -> Vec<&'static str> {
        plan.findings.iter().map(|f| f.id).collect()
    }

    #[test]
    fn an_enabled_installer_unit_is_adopted_into_a_free_user_dir() {
        let plan = plan(&observed(Target::Free, None));
        assert_eq!(ids(&plan), ["adopt.pending"]);
        assert!(
            matches!(&plan.actions[..], [Action::Adopt(AdoptChange::Adopt { unit, .. })] if unit == "nodered.service")
        );
    }

    #[test]
    fn an_occupied_user_dir_blocks_and_a_failure_is_not_retried() {
        assert_eq!(
            ids(&plan(&observed(Target::Occupied, None))),
            ["adopt.blocked"]
        );
        let failed = State {
            phase: Phase::Failed("no answer".into()),
            from: "/x".into(),
            unit: "nodered.service".into(),
            window: None,
        };
        let plan_failed = plan(&observed(Target::Free, Some(failed)));
        assert_eq!(ids(&plan_failed), ["adopt.failed"]);
        assert!(plan_failed.actions.is_empty());
    }

    #[test]
    fn nothing_to_do_once_adopted_or_when_turned_off() {
        let mut done = observed(Target::AdoptedFrom("/home/pi/.node-red".into()), None);
        done.legacy.as_mut().unwrap().unit_enabled = false;
        assert_eq!(plan(&done), Plan::default());
        let mut off = observed(Target::Free, None);
        off.adopt = false;
        assert_eq!(plan(&off), Plan::default());
    }

    #[test]
    fn an_old_unit_enabled_again_by_hand_is_left_alone() {
        let adopted = State {
            phase: Phase::Adopted,
            from: "/home/pi/.node-red".into(),
            unit: "nodered.service".into(),
            window: None,
        };
        let plan = plan(&observed(
            Target::AdoptedFrom("/home/pi/.node-red".into()),
            Some(adopted),
        ));
        assert_eq!(ids(&plan), ["adopt.reverted-by-hand"]);
        assert!(plan.actions.is_empty());
    }

    #[test]
    fn undo_switches_back_only_what_was_adopted() {
        let mut undo = observed(Target::AdoptedFrom("/home/pi/.node-red".into()), None);
        undo.undo = true;
        undo.legacy.as_mut().unwrap().unit_enabled = false;
        assert!(matches!(
            &plan(&undo).actions[..],
            [Action::Adopt(AdoptChange::Undo { .. })]
        ));
        undo.target = Target::Free;
        assert!(plan(&undo).actions.is_empty());
    }

    #[test]
    fn probation_is_confirmed_when_serving_and_reverted_when_failed() {
        let probation = State {
            phase: Phase::Probation,
            from: "/home/pi/.node-red".into(),
            unit: "nodered.service".into(),
            window: None,
        };
        let mut obs = observed(
            Target::AdoptedFrom("/home/pi/.node-red".into()),
            Some(probation),
        );
        assert_eq!(ids(&plan(&obs)), ["adopt.probation"]);
        assert!(
            matches!(&plan(&obs).actions[..], [Action::Adopt(AdoptChange::FinishSwitch { unit, .. })] if unit == "nodered.service"),
            "recorded, but the old unit still boots: an apply was cut off before the switch"
        );
        obs.legacy.as_mut().unwrap().unit_enabled = false;
        assert_eq!(ids(&plan(&obs)), ["adopt.probation"]);
        assert!(plan(&obs).actions.is_empty(), "still starting: wait");
        obs.serving = true;
        assert!(matches!(
            &plan(&obs).actions[..],
            [Action::Adopt(AdoptChange::Confirm { .. })]
        ));
        obs.serving = false;
        obs.new_unit_failed = true;
        assert!(matches!(
            &plan(&obs).actions[..],
            [Action::Adopt(AdoptChange::Revert { .. })]
        ));
    }

    #[test]
    fn state_round_trips() {
        let state = State {
            phase: Phase::Failed("x\ny".into()),
            from: "/home/pi/.node-red".into(),
            unit: "nodered.service".into(),
            window: None,
        };
        let parsed = State::parse(&state.render()).unwrap();
        assert_eq!(parsed.phase, Phase::Failed("x y".into()));
        assert_eq!(parsed.from, state.from);
        let probation = State {
            phase: Phase::Probation,
            window: Some(Window {
                copied: 1_795_000_000_123_456_789,
                switched: 1_795_000_002_000_000_000,
            }),
            ..state
        };
        assert_eq!(State::parse(&probation.render()), Some(probation));
    }
}
