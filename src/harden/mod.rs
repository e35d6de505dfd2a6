//! The hardening steps. Each one observes the system under a [`Root`], computes a pure plan
//! (findings and actions, plain data) and applies the actions through `host/`. `check` stops
//! after planning; `apply` applies step by step, each step observing what the previous one
//! left, then checks again so the report shows only what remains.

pub mod adopt;
pub mod certificate;
pub mod firewall;
pub mod install;
pub mod nodered;
pub mod npm;
pub mod perms;
pub mod unit;
pub mod user;

use std::fmt;

use crate::config::Config;
use crate::host::Root;
use crate::report::{Finding, Report, Uninspected};

/// A change redwarden can make. Plain data: printable, comparable, testable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Adopt(adopt::AdoptChange),
    Account(user::AccountChange),
    File(perms::FileChange),
    Unit(unit::UnitChange),
    Firewall(firewall::FirewallChange),
    NodeRed(nodered::NodeRedChange),
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Adopt(change) => change.fmt(f),
            Self::Account(change) => change.fmt(f),
            Self::File(change) => change.fmt(f),
            Self::Unit(change) => change.fmt(f),
            Self::Firewall(change) => change.fmt(f),
            Self::NodeRed(change) => change.fmt(f),
        }
    }
}

impl Action {
    fn apply(&self, root: &Root, options: &Options) -> Result<(), crate::Error> {
        match self {
            Self::Adopt(change) => adopt::apply(root, change),
            Self::Account(change) => user::apply(root, change),
            Self::File(change) => perms::apply(root, change),
            Self::Unit(change) => unit::apply(root, change),
            Self::Firewall(change) => firewall::apply(change, options.confirm),
            Self::NodeRed(change) => nodered::apply(root, change),
        }
    }
}

/// What one step found: the findings, the actions that fix the fixable ones, and what it could
/// not look at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub findings: Vec<Finding>,
    pub actions: Vec<Action>,
    pub uninspected: Vec<Uninspected>,
    /// Named counts the step read, such as the firewall's drop counters.
    pub counters: Vec<(String, u64)>,
}

impl Plan {
    fn merge(&mut self, other: Plan) {
        self.findings.extend(other.findings);
        self.actions.extend(other.actions);
        self.uninspected.extend(other.uninspected);
        self.counters.extend(other.counters);
    }
}

/// The steps, in the order `apply` runs them: the user must exist before files are given to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    User,
    Perms,
    Unit,
    Adopt,
    NodeRed,
    Firewall,
    /// A check that changes nothing and asks the registry: never part of apply.
    Npm,
    /// The front door's certificate: its fingerprint and expiry; a check only.
    Front,
}

/// Adoption comes after the unit step: it starts redwarden.service, which the unit step writes,
/// and moves files into a userDir that the perms step then judges on the next pass. The firewall
/// comes last, so a system without nft still gets everything else before apply says so.
pub const STEPS: &[Step] = &[
    Step::User,
    Step::Perms,
    Step::Unit,
    Step::Adopt,
    Step::NodeRed,
    Step::Firewall,
];

/// What only `check` looks at: the front door's certificate and the npm audit change nothing
/// (and the audit waits on the network, while apply runs at boot).
const CHECK_ONLY: &[Step] = &[Step::Front, Step::Npm];

/// What `check` looks at: the steps, then the checks of their own.
pub fn checks() -> impl Iterator<Item = Step> {
    STEPS.iter().chain(CHECK_ONLY).copied()
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Perms => "perms",
            Self::Unit => "unit",
            Self::Adopt => "adopt",
            Self::NodeRed => "nodered",
            Self::Firewall => "firewall",
            Self::Npm => "npm",
            Self::Front => "front",
        }
    }

    /// `waits`: an adoption on probation may be awaited (apply outside systemd jobs) rather
    /// than only looked at (check).
    fn plan(
        self,
        root: &Root,
        config: &Config,
        undo_adopt: bool,
        waits: bool,
    ) -> Result<Plan, crate::Error> {
        match self {
            Self::User => Ok(user::plan(config, &user::observe(root, config)?)),
            Self::Perms => Ok(perms::plan(&perms::observe(root, config)?)),
            Self::Unit => Ok(unit::plan(&unit::observe(root, config)?)),
            Self::Adopt => Ok(adopt::plan(&adopt::observe(
                root, config, undo_adopt, waits,
            )?)),
            Self::NodeRed => Ok(nodered::plan(&nodered::observe(root, config)?)),
            Self::Firewall => Ok(firewall::plan(&firewall::observe(root, config)?)),
            Self::Npm => Ok(npm::plan(&npm::observe(root, config)?)),
            Self::Front => Ok(certificate::plan(&certificate::observe(root, config)?)),
        }
    }
}

/// Observes and plans every step, and audits the installed packages; changes nothing.
pub fn check(root: &Root, config: &Config) -> Result<Report, crate::Error> {
    check_steps(root, config, &checks().collect::<Vec<_>>())
}

/// Observes and plans the given steps; changes nothing.
pub fn check_steps(root: &Root, config: &Config, steps: &[Step]) -> Result<Report, crate::Error> {
    let mut plan = Plan::default();
    for step in steps {
        plan.merge(step.plan(root, config, false, false)?);
    }
    Ok(Report {
        findings: plan.findings,
        changes: Vec::new(),
        uninspected: plan.uninspected,
        counters: plan.counters.into_iter().collect(),
    })
}

/// An apply that stopped at a failed action, with the changes made before it.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct ApplyFailure {
    pub changes: Vec<String>,
    #[source]
    pub error: crate::Error,
}

/// What `apply` is asked to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    #[default]
    Enforce,
    /// Switch an adopted Node-RED back to the unit it came from, and nothing else.
    UndoAdopt,
}

/// How `apply` runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub mode: Mode,
    /// Only these steps, in their usual order; every step when empty.
    pub only: Vec<Step>,
    /// Load the firewall with a rollback armed, which `redwarden confirm` disarms.
    pub confirm: Option<firewall::Confirm>,
}

impl Options {
    fn steps(&self) -> Vec<Step> {
        match self.mode {
            Mode::UndoAdopt => vec![Step::Adopt],
            Mode::Enforce if self.only.is_empty() => STEPS.to_vec(),
            Mode::Enforce => STEPS
                .iter()
                .copied()
                .filter(|s| self.only.contains(s))
                .collect(),
        }
    }
}

impl Step {
    pub fn from_name(name: &str) -> Option<Self> {
        checks().find(|s| s.name() == name)
    }
}

/// Passes over the steps before apply gives up converging: adoption moves files that the perms
/// step must then judge, so a second pass is normal and a third means something fights back.
const MAX_PASSES: usize = 3;

/// Whether this apply may go ahead.
enum Turn {
    /// Go ahead, holding the lock (none for an image root without /run).
    Mine {
        _lock: Option<crate::host::fs::FileLock>,
    },
    /// Another apply is running and covers whatever triggered this one.
    Taken,
}

/// Serialises applies: a hand-run one waits its turn, while one that a drift trigger started
/// inside redwarden-apply.service yields to a running one (which may be waiting for
/// redwarden.service, itself ordered after that unit). Images under --root without /run are
/// never applied concurrently, so they take no lock.
fn take_turn(root: &Root, in_apply_unit: bool) -> Result<Turn, crate::Error> {
    use crate::host::fs::FileLock;
    let path = root.resolve_parent(std::path::Path::new(crate::host::paths::APPLY_LOCK))?;
    if !path.parent().is_some_and(std::path::Path::is_dir) {
        return Ok(Turn::Mine { _lock: None });
    }
    Ok(if in_apply_unit {
        FileLock::try_acquire(&path)?.map_or(Turn::Taken, |lock| Turn::Mine { _lock: Some(lock) })
    } else {
        Turn::Mine {
            _lock: Some(FileLock::acquire(&path)?),
        }
    })
}

/// Applies the steps in order, pass after pass until one changes nothing, then checks again.
/// Stops at the first failed action and returns the changes made before it, so the caller can
/// say exactly what was done.
pub fn apply(root: &Root, config: &Config, options: &Options) -> Result<Report, ApplyFailure> {
    let mode = options.mode;
    let steps = options.steps();
    // The report covers what was asked about: the chosen steps, or everything (an undo too).
    let reported: &[Step] = if options.only.is_empty() {
        STEPS
    } else {
        &steps
    };
    let mut changes = Vec::new();
    let in_apply_unit = crate::host::systemd::inside_unit(unit::APPLY_UNIT);
    let result = (|| {
        let _turn = match take_turn(root, in_apply_unit)? {
            Turn::Taken => {
                tracing::info!("another redwarden apply is running; it covers this change");
                return check_steps(root, config, reported);
            }
            mine => mine,
        };
        for _ in 0..MAX_PASSES {
            let before = changes.len();
            for step in &steps {
                let plan = step.plan(root, config, mode == Mode::UndoAdopt, !in_apply_unit)?;
                for action in &plan.actions {
                    action.apply(root, options)?;
                    tracing::info!(step = step.name(), action = %action, "changed");
                    changes.push(action.to_string());
                }
            }
            if changes.len() == before || mode == Mode::UndoAdopt {
                break;
            }
        }
        check_steps(root, config, reported)
    })();
    match result {
        Ok(mut report) => {
            report.changes = changes;
            Ok(report)
        }
        Err(error) => Err(ApplyFailure { changes, error }),
    }
}
