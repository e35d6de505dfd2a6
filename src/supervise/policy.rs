//! When to restart Node-RED, and when to stop trying: pure decisions over the history of its
//! exits, so every branch is a table test.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

/// Why a run of Node-RED ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Exited(i32),
    Signaled(i32),
    /// Running, but `failures` probes in a row got no answer.
    Hung {
        failures: u32,
    },
    /// Never answered its first probe within the start timeout.
    NeverAnswered {
        secs: u32,
    },
    /// Resident memory stayed above the soft limit.
    MemoryLimit {
        rss: u64,
        limit: u64,
    },
}

/// Which way `mib` rounds.
#[derive(Debug, Clone, Copy)]
pub enum Round {
    Up,
    Down,
}

/// Bytes as MiB with one decimal. A figure over a limit is rounded up and the limit down, so
/// the message never reads "200 MiB, above the limit of 200 MiB" (200.1 against 200.0).
pub fn mib(bytes: u64, round: Round) -> String {
    let tenths = match round {
        Round::Up => (u128::from(bytes) * 10).div_ceil(1 << 20),
        Round::Down => (u128::from(bytes) * 10) >> 20,
    };
    format!("{}.{}", tenths / 10, tenths % 10)
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exited(code) => write!(f, "exited with code {code}"),
            Self::Signaled(signal) => write!(f, "killed by signal {signal}"),
            Self::Hung { failures } => {
                write!(f, "hung: {failures} probes in a row got no answer")
            }
            Self::NeverAnswered { secs } => write!(f, "did not answer within {secs} s of starting"),
            Self::MemoryLimit { rss, limit } => write!(
                f,
                "resident memory {} MiB stayed above the limit of {} MiB",
                mib(*rss, Round::Up),
                mib(*limit, Round::Down)
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub backoff_max: Duration,
    pub stable_after: Duration,
    pub crash_loop_exits: u32,
    pub crash_loop_window: Duration,
    pub safe_mode: bool,
}

impl Policy {
    pub fn from_config(config: &crate::config::Supervise) -> Self {
        let secs = |s: u32| Duration::from_secs(s.into());
        Self {
            backoff_max: secs(config.backoff_max_secs),
            stable_after: secs(config.stable_after_secs),
            crash_loop_exits: config.crash_loop_exits,
            crash_loop_window: secs(config.crash_loop_window_secs),
            safe_mode: config.safe_mode,
        }
    }
}

/// What to do after an unexpected ending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Restart {
        after: Duration,
        safe_mode: bool,
    },
    /// A crash loop (after the safe-mode attempt, if any): stop and let the unit fail.
    GiveUp(Loop),
}

/// What made a crash loop final.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loop {
    /// This many exits within the window, and no safe-mode start left to try.
    Exits { exits: usize, window: Duration },
    /// The one start in safe mode ended too, before it was stable.
    SafeModeEnded,
}

impl fmt::Display for Loop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exits { exits, window } => {
                write!(f, "{exits} exits within {} s", window.as_secs())
            }
            Self::SafeModeEnded => {
                f.write_str("after a crash loop, the start in safe mode ended too")
            }
        }
    }
}

/// The exits that matter for the next decision.
#[derive(Debug, Default, Clone)]
pub struct History {
    recent: VecDeque<Instant>,
    /// Restarts since the last stable run: the backoff exponent.
    unstable_runs: u32,
    safe_mode_tried: bool,
    in_safe_mode: bool,
}

impl History {
    pub fn in_safe_mode(&self) -> bool {
        self.in_safe_mode
    }

    /// Decides after a run that lasted `uptime` ended at `now`. `jitter` in [0, 1) spreads
    /// restarts of a fleet that crashed together (a broker outage) over ±20 %.
    pub fn decide(
        &mut self,
        policy: &Policy,
        now: Instant,
        uptime: Duration,
        jitter: f64,
    ) -> Decision {
        let stable = uptime >= policy.stable_after;
        if stable {
            self.unstable_runs = 0;
            self.recent.clear();
            // A safe-mode run that lasted was fixed by a person: back to normal starts.
            self.in_safe_mode = false;
            self.safe_mode_tried = false;
        }
        self.recent.push_back(now);
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > policy.crash_loop_window)
        {
            self.recent.pop_front();
        }
        if self.in_safe_mode {
            return Decision::GiveUp(Loop::SafeModeEnded);
        }
        let give_up = Decision::GiveUp(Loop::Exits {
            exits: self.recent.len(),
            window: policy.crash_loop_window,
        });
        let after = self.backoff(policy, jitter);
        if self.recent.len() >= policy.crash_loop_exits as usize {
            if !policy.safe_mode || self.safe_mode_tried {
                return give_up;
            }
            self.safe_mode_tried = true;
            self.in_safe_mode = true;
            self.recent.clear();
            return Decision::Restart {
                after,
                safe_mode: true,
            };
        }
        Decision::Restart {
            after,
            safe_mode: false,
        }
    }

    /// 0 for the first restart, then 1 s, 2 s, 4 s … capped, each ±20 %.
    fn backoff(&mut self, policy: &Policy, jitter: f64) -> Duration {
        let exponent = self.unstable_runs;
        self.unstable_runs = self.unstable_runs.saturating_add(1);
        if exponent == 0 {
            return Duration::ZERO;
        }
        let base = Duration::from_secs(1u64 << (exponent - 1).min(20)).min(policy.backoff_max);
        base.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0))
            .min(policy.backoff_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_figure_over_its_limit_never_reads_as_equal_to_it() {
        let limit = 200 << 20;
        let ending = Ending::MemoryLimit {
            rss: limit + 1,
            limit,
        };
        assert_eq!(
            ending.to_string(),
            "resident memory 200.1 MiB stayed above the limit of 200.0 MiB"
        );
        assert_eq!(mib(416 * (1 << 20) + 400_000, Round::Down), "416.3");
        assert_eq!(mib(416 * (1 << 20) + 400_000, Round::Up), "416.4");
        assert_eq!(mib(0, Round::Up), "0.0");
    }

    fn policy() -> Policy {
        Policy {
            backoff_max: Duration::from_secs(30),
            stable_after: Duration::from_secs(60),
            crash_loop_exits: 5,
            crash_loop_window: Duration::from_secs(300),
            safe_mode: true,
        }
    }

    fn restart_after(decision: &Decision) -> Duration {
        match decision {
            Decision::Restart {
                after,
                safe_mode: false,
            } => *after,
            other => panic!("expected a normal restart, got {other:?}"),
        }
    }

    #[test]
    fn first_restart_is_immediate_then_backoff_doubles_up_to_the_cap() {
        let mut history = History::default();
        let policy = Policy {
            crash_loop_exits: 100,
            ..policy()
        };
        let start = Instant::now();
        let delays: Vec<u64> = (0..8)
            .map(|i| {
                let now = start + Duration::from_secs(i * 100);
                restart_after(&history.decide(&policy, now, Duration::from_secs(1), 0.5)).as_secs()
            })
            .collect();
        assert_eq!(delays, [0, 1, 2, 4, 8, 16, 30, 30]);
    }

    #[test]
    fn jitter_spreads_by_twenty_percent_and_never_passes_the_cap() {
        let policy = policy();
        // After three unstable runs the next pause is the 4 s step.
        for (jitter, expected_ms) in [(0.0, 3200), (0.5, 4000), (0.999, 4798)] {
            let mut history = History {
                unstable_runs: 3,
                ..History::default()
            };
            let after =
                restart_after(&history.decide(&policy, Instant::now(), Duration::ZERO, jitter));
            assert_eq!(after.as_millis(), expected_ms, "jitter {jitter}");
        }
        let mut history = History {
            unstable_runs: 30,
            ..History::default()
        };
        let after = restart_after(&history.decide(&policy, Instant::now(), Duration::ZERO, 0.999));
        assert_eq!(after, Duration::from_secs(30));
    }

    #[test]
    fn a_stable_run_starts_the_backoff_again() {
        let policy = policy();
        let mut history = History::default();
        let now = Instant::now();
        for _ in 0..3 {
            history.decide(&policy, now, Duration::from_secs(1), 0.5);
        }
        let after = restart_after(&history.decide(&policy, now, Duration::from_secs(61), 0.5));
        assert_eq!(after, Duration::ZERO);
    }

    #[test]
    fn a_crash_loop_gets_one_safe_mode_start_then_gives_up() {
        let policy = policy();
        let mut history = History::default();
        let start = Instant::now();
        let decisions: Vec<Decision> = (0..6)
            .map(|i| {
                history.decide(
                    &policy,
                    start + Duration::from_secs(i * 10),
                    Duration::from_secs(2),
                    0.5,
                )
            })
            .collect();
        assert!(matches!(
            decisions[3],
            Decision::Restart {
                safe_mode: false,
                ..
            }
        ));
        assert!(
            matches!(
                decisions[4],
                Decision::Restart {
                    safe_mode: true,
                    ..
                }
            ),
            "{decisions:?}"
        );
        assert!(history.in_safe_mode());
        assert!(
            decisions[5] == Decision::GiveUp(Loop::SafeModeEnded),
            "{decisions:?}"
        );
    }

    #[test]
    fn without_safe_mode_a_crash_loop_gives_up_at_once() {
        let policy = Policy {
            safe_mode: false,
            ..policy()
        };
        let mut history = History::default();
        let start = Instant::now();
        let last = (0..5)
            .map(|i| history.decide(&policy, start + Duration::from_secs(i), Duration::ZERO, 0.5))
            .last()
            .unwrap();
        assert_eq!(
            last,
            Decision::GiveUp(Loop::Exits {
                exits: 5,
                window: Duration::from_secs(300)
            })
        );
    }

    #[test]
    fn exits_spread_wider_than_the_window_are_no_loop() {
        let policy = policy();
        let mut history = History::default();
        let start = Instant::now();
        for i in 0..20 {
            let decision = history.decide(
                &policy,
                start + Duration::from_secs(i * 100),
                Duration::from_secs(30),
                0.5,
            );
            assert!(matches!(
                decision,
                Decision::Restart {
                    safe_mode: false,
                    ..
                }
            ));
        }
    }

    #[test]
    fn a_safe_mode_run_that_lasted_returns_to_normal_starts() {
        let policy = policy();
        let mut history = History::default();
        let start = Instant::now();
        for i in 0..5 {
            history.decide(&policy, start + Duration::from_secs(i), Duration::ZERO, 0.5);
        }
        assert!(history.in_safe_mode());
        let decision = history.decide(
            &policy,
            start + Duration::from_secs(3600),
            Duration::from_secs(3000),
            0.5,
        );
        assert_eq!(restart_after(&decision), Duration::ZERO);
        assert!(!history.in_safe_mode());
    }
}
