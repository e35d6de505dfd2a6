//! The hardening steps. Each one observes the system under a [`Root`], computes a pure plan
//! (findings and actions, plain data) and applies the actions through `host/`. `check` stops
//! after planning; `apply` applies step by step, each step observing what the previous one
//! left, then checks again so the report shows only what remains.

pub mod install;
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
    Account(user::AccountChange),
    File(perms::FileChange),
    Unit(unit::UnitChange),
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Account(change) => change.fmt(f),
            Self::File(change) => change.fmt(f),
            Self::Unit(change) => change.fmt(f),
        }
    }
}

impl Action {
    fn apply(&self, root: &Root) -> Result<(), crate::Error> {
        match self {
            Self::Account(change) => user::apply(root, change),
            Self::File(change) => perms::apply(root, change),
            Self::Unit(change) => unit::apply(root, change),
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
}

impl Plan {
    fn merge(&mut self, other: Plan) {
        self.findings.extend(other.findings);
        self.actions.extend(other.actions);
        self.uninspected.extend(other.uninspected);
    }
}

/// The steps, in the order `apply` runs them: the user must exist before files are given to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    User,
    Perms,
    Unit,
}

pub const STEPS: &[Step] = &[Step::User, Step::Perms, Step::Unit];

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Perms => "perms",
            Self::Unit => "unit",
        }
    }

    fn plan(self, root: &Root, config: &Config) -> Result<Plan, crate::Error> {
        match self {
            Self::User => Ok(user::plan(config, &user::observe(root, config)?)),
            Self::Perms => Ok(perms::plan(&perms::observe(root, config)?)),
            Self::Unit => Ok(unit::plan(&unit::observe(root, config)?)),
        }
    }
}

/// Observes and plans every step; changes nothing.
pub fn check(root: &Root, config: &Config) -> Result<Report, crate::Error> {
    let mut plan = Plan::default();
    for step in STEPS {
        plan.merge(step.plan(root, config)?);
    }
    Ok(Report {
        findings: plan.findings,
        changes: Vec::new(),
        uninspected: plan.uninspected,
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

/// Applies every step in order, then checks again. Stops at the first failed action and returns
/// the changes made before it, so the caller can say exactly what was done.
pub fn apply(root: &Root, config: &Config) -> Result<Report, ApplyFailure> {
    let mut changes = Vec::new();
    let result = (|| {
        for step in STEPS {
            let plan = step.plan(root, config)?;
            for action in &plan.actions {
                action.apply(root)?;
                tracing::info!(step = step.name(), action = %action, "changed");
                changes.push(action.to_string());
            }
        }
        check(root, config)
    })();
    match result {
        Ok(mut report) => {
            report.changes = changes;
            Ok(report)
        }
        Err(error) => Err(ApplyFailure { changes, error }),
    }
}
