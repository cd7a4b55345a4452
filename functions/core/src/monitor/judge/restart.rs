//! The restart policy: whether to restart a failed connector or task now, later, or never.
//!
//! Three small pure functions in the manner of Strimzi's auto-restart: the backoff schedule,
//! the decision for a failure, and the reset after a stable period (at least the longest
//! backoff: a failure that returns within it counts toward the budget). A budget per failure,
//! and one per connector across failures, so failures taking turns also run out. Time is milliseconds since
//! the epoch, always passed in.
//!
//! Backoff after `n` restarts: `min(n² + n, 60)` minutes —
//! 0, 2, 6, 12, 20, 30, 42, 56, then every 60 minutes.

use serde::{Deserialize, Serialize};

use super::cause::Cause;

const MINUTE_MS: i64 = 60_000;

/// Settings of the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Restarts allowed for one failure (one fingerprint) before giving up. Default 3.
    pub budget: u32,
    /// The longest backoff, in minutes. Default 60.
    pub max_backoff_minutes: i64,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            budget: 3,
            max_backoff_minutes: 60,
        }
    }
}

/// What has been done about a connector's failures, kept between runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartHistory {
    /// Restarts made for the current failure.
    pub count: u32,
    /// When the last restart was made.
    pub last_restart_at: Option<i64>,
    /// The fingerprint of the failure the restarts were for.
    pub fingerprint: Option<String>,
    /// Since when the connector has been healthy without a break (`None` while failing).
    pub healthy_since: Option<i64>,
    /// Restarts of the connector since it was last healthy long enough, whatever the failure:
    /// the backoff follows it, so failures that take turns cannot restart it every minute.
    #[serde(default)]
    pub total: u32,
    /// Times it failed again after a restart had made it healthy, within the stable period:
    /// it flaps, and its incident is resolved only once the restarts are forgotten.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub returns: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl RestartHistory {
    /// The returns after a run that saw it failing: one more when it had been seen healthy
    /// since a restart.
    fn returns_now(&self) -> u32 {
        self.returns + u32::from(self.healthy_since.is_some() && self.count.max(self.total) > 0)
    }
}

/// What to do about a failure now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Restart now; this is restart number `attempt` of `budget`.
    Restart {
        /// 1-based.
        attempt: u32,
    },
    /// Not yet: the backoff after the last restart runs until `until`.
    Wait {
        /// Milliseconds since the epoch.
        until: i64,
    },
    /// The same failure came back after the whole budget: stop restarting, escalate.
    GiveUp,
    /// Failures that take turns spent the connector's budget across failures
    /// ([`RestartPolicy::connector_budget`]) since it was last stable: stop, escalate.
    TooMany {
        /// Restarts made since it was last stable.
        restarts: u32,
    },
    /// The budget is spent but the cause is transient (brokers, throttling, which outlast a few
    /// restarts and heal by themselves): escalate, and restart again at the capped backoff,
    /// restart number `attempt` once `now` reaches `until`.
    Tail {
        /// 1-based, past the budget.
        attempt: u32,
        /// When it is due.
        until: i64,
    },
    /// A restart cannot fix this cause: alert, do not restart.
    DoNotRestart,
}

impl RestartPolicy {
    /// Minutes to wait after `restarts` restarts before the next: `min(n² + n, max)`.
    pub fn backoff_minutes(&self, restarts: u32) -> i64 {
        let n = i64::from(restarts);
        (n * n + n).min(self.max_backoff_minutes)
    }

    /// Restarts of one connector, whatever the failures, between two stable periods: twice the
    /// budget, so that a second failure still gets its own restarts, but failures that take
    /// turns (two poison records, an outage then throttling) cannot restart it forever.
    pub fn connector_budget(&self) -> u32 {
        self.budget.saturating_mul(2)
    }

    /// How long a connector must stay healthy after `restarts` restarts before they are
    /// forgotten: the next backoff, and at least the longest one, so that a failure returning
    /// within that window counts toward the budget instead of starting it over.
    pub fn stable_minutes(&self, restarts: u32) -> i64 {
        self.backoff_minutes(restarts).max(self.max_backoff_minutes)
    }

    /// The decision for a failure with `cause` and `fingerprint`, given what was done before.
    pub fn decide(&self, history: &RestartHistory, cause: Cause, fingerprint: &str, now: i64) -> Decision {
        if !cause.is_restartable() {
            return Decision::DoNotRestart;
        }
        // A different failure starts its own count.
        let count = if history.fingerprint.as_deref() == Some(fingerprint) {
            history.count
        } else {
            0
        };
        let spent = history.total >= self.connector_budget();
        if count >= self.budget || spent {
            if cause.is_transient() {
                let until = history.last_restart_at.unwrap_or(now) + self.max_backoff_minutes * MINUTE_MS;
                return Decision::Tail {
                    attempt: count + 1,
                    until,
                };
            }
            if count >= self.budget {
                return Decision::GiveUp;
            }
            return Decision::TooMany {
                restarts: history.total,
            };
        }
        // The budget is per failure; the backoff is the connector's.
        let made = count.max(history.total);
        if made > 0
            && let Some(last) = history.last_restart_at
        {
            let until = last + self.backoff_minutes(made) * MINUTE_MS;
            if now < until {
                return Decision::Wait { until };
            }
        }
        Decision::Restart { attempt: count + 1 }
    }

    /// The earliest time of the next restart after `history`'s last one, where there was one.
    pub fn next_not_before(&self, history: &RestartHistory) -> Option<i64> {
        let made = history.count.max(history.total);
        let minutes = if history.count >= self.budget || history.total >= self.connector_budget() {
            self.max_backoff_minutes
        } else {
            self.backoff_minutes(made)
        };
        history.last_restart_at.map(|last| last + minutes * MINUTE_MS)
    }

    /// The history after a restart was made now.
    pub fn record_restart(&self, history: &RestartHistory, fingerprint: &str, now: i64) -> RestartHistory {
        let count = if history.fingerprint.as_deref() == Some(fingerprint) {
            history.count
        } else {
            0
        };
        RestartHistory {
            count: count + 1,
            last_restart_at: Some(now),
            fingerprint: Some(fingerprint.into()),
            healthy_since: None,
            total: history.total.max(count) + 1,
            returns: history.returns_now(),
        }
    }

    /// The history after a run that saw the connector failing without restarting it.
    pub fn record_failing(&self, history: &RestartHistory) -> RestartHistory {
        RestartHistory {
            healthy_since: None,
            returns: history.returns_now(),
            ..history.clone()
        }
    }

    /// The history after a run that saw the connector healthy: the counts reset once it has
    /// stayed healthy longer than [`stable_minutes`](Self::stable_minutes).
    pub fn record_healthy(&self, history: &RestartHistory, now: i64) -> RestartHistory {
        let since = history.healthy_since.unwrap_or(now);
        let made = history.count.max(history.total);
        if made > 0 && now - since > self.stable_minutes(made) * MINUTE_MS {
            return RestartHistory {
                healthy_since: Some(since),
                ..RestartHistory::default()
            };
        }
        RestartHistory {
            healthy_since: Some(since),
            ..history.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const P: RestartPolicy = RestartPolicy {
        budget: 3,
        max_backoff_minutes: 60,
    };
    const FP: &str = "DataException-1";

    fn at(minutes: i64, seconds: i64) -> i64 {
        1_700_000_000_000 + minutes * MINUTE_MS + seconds * 1000
    }

    #[test]
    fn the_schedule_is_n_squared_plus_n_capped_at_an_hour() {
        let schedule: Vec<i64> = (0..10).map(|n| P.backoff_minutes(n)).collect();
        assert_eq!(schedule, [0, 2, 6, 12, 20, 30, 42, 56, 60, 60]);
    }

    #[test]
    fn failures_taking_turns_are_restarted_on_the_connectors_backoff_then_escalated() {
        // A task failing on two different poison records in turn: each restart meets the other
        // fingerprint, so each one's own count stays low. Runs every minute for six hours.
        let mut h = RestartHistory::default();
        let mut restarts = Vec::new();
        let mut last = None;
        for minute in 0..360 {
            let fp = if restarts.len() % 2 == 0 { "A-1" } else { "B-2" };
            match P.decide(&h, Cause::Unknown, fp, at(minute, 0)) {
                Decision::Restart { .. } => {
                    h = P.record_restart(&h, fp, at(minute, 0));
                    restarts.push(minute);
                }
                other => last = Some(other),
            }
            h = P.record_failing(&h);
        }
        let gaps: Vec<i64> = restarts.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(gaps, [2, 6, 12, 20, 30], "{restarts:?}");
        assert_eq!(
            last,
            Some(Decision::TooMany { restarts: 6 }),
            "the connector's budget across failures is spent: escalated, not restarted hourly forever"
        );
        // A transient cause is still restarted at the capped backoff, escalated.
        let six = h.last_restart_at.unwrap();
        assert_eq!(
            P.decide(&h, Cause::BrokerUnreachable, "C-3", six + 60 * MINUTE_MS),
            Decision::Tail {
                attempt: 1,
                until: six + 60 * MINUTE_MS
            }
        );
    }

    #[test]
    fn a_failure_that_returns_minutes_after_each_restart_runs_out_of_budget() {
        // Restarted, healthy for ten minutes, the same failure again: every cycle.
        let mut h = RestartHistory::default();
        let mut now = at(0, 0);
        let mut decisions = Vec::new();
        for _ in 0..5 {
            let decision = P.decide(&h, Cause::Unknown, FP, now);
            decisions.push(decision.clone());
            if let Decision::Restart { .. } = decision {
                h = P.record_restart(&h, FP, now);
            }
            for minute in 1..=10 {
                h = P.record_healthy(&h, now + minute * MINUTE_MS);
            }
            now += 11 * MINUTE_MS;
            h = P.record_failing(&h);
        }
        assert_eq!(
            decisions,
            [
                Decision::Restart { attempt: 1 },
                Decision::Restart { attempt: 2 },
                Decision::Restart { attempt: 3 },
                Decision::GiveUp,
                Decision::GiveUp
            ]
        );
    }

    #[test]
    fn a_transient_cause_past_the_budget_is_escalated_and_restarted_hourly_not_given_up() {
        // A ten-minute broker outage outlasts restarts at 0, 2 and 8 minutes.
        let mut h = RestartHistory::default();
        let mut now = at(0, 0);
        for _ in 0..3 {
            h = P.record_restart(&h, FP, now);
            now += P.backoff_minutes(h.count) * MINUTE_MS;
        }
        let last = h.last_restart_at.unwrap();
        for cause in [Cause::BrokerUnreachable, Cause::LambdaThrottled] {
            assert_eq!(
                P.decide(&h, cause, FP, last + MINUTE_MS),
                Decision::Tail {
                    attempt: 4,
                    until: last + 60 * MINUTE_MS
                },
                "{cause:?}"
            );
            assert_eq!(
                P.decide(&h, cause, FP, last + 60 * MINUTE_MS),
                Decision::Tail {
                    attempt: 4,
                    until: last + 60 * MINUTE_MS
                },
                "{cause:?}: due an hour on (the caller restarts once now reaches until)"
            );
        }
        assert_eq!(
            P.decide(&h, Cause::LambdaFunctionError, FP, now),
            Decision::GiveUp,
            "the function's own failure stops"
        );
    }

    #[test]
    fn a_failure_seen_again_after_a_restart_made_it_healthy_is_a_return_until_forgotten() {
        let restarted = P.record_restart(&RestartHistory::default(), FP, at(0, 0));
        assert_eq!(P.record_failing(&restarted).returns, 0, "failing on: no return");
        let healthy = P.record_healthy(&restarted, at(1, 0));
        let back = P.record_failing(&healthy);
        assert_eq!(back.returns, 1);
        assert_eq!(
            P.record_failing(&back).returns,
            1,
            "one return, however many runs see it"
        );
        let again = P.record_restart(&P.record_healthy(&back, at(5, 0)), FP, at(6, 0));
        assert_eq!(again.returns, 2, "came back, restarted at once");
        assert_eq!(P.record_healthy(&again, at(7, 0)).returns, 2);
        assert_eq!(
            P.record_healthy(&P.record_healthy(&again, at(7, 0)), at(67, 1)).returns,
            0,
            "forgotten"
        );
        assert_eq!(
            P.record_failing(&P.record_healthy(&RestartHistory::default(), at(1, 0)))
                .returns,
            0,
            "never restarted: no return"
        );
    }

    #[test]
    fn after_one_restart_the_next_waits_two_minutes_exactly() {
        let h = P.record_restart(&RestartHistory::default(), FP, at(0, 0));
        assert_eq!(
            P.decide(&h, Cause::Unknown, FP, at(1, 59)),
            Decision::Wait { until: at(2, 0) }
        );
        assert_eq!(
            P.decide(&h, Cause::Unknown, FP, at(2, 0)),
            Decision::Restart { attempt: 2 }
        );
        assert_eq!(
            P.decide(&h, Cause::Unknown, FP, at(2, 1)),
            Decision::Restart { attempt: 2 }
        );
    }

    #[test]
    fn the_same_failure_after_the_budget_gives_up_and_another_failure_starts_over() {
        let mut h = RestartHistory::default();
        let mut now = at(0, 0);
        for attempt in 1..=3 {
            assert_eq!(
                P.decide(&h, Cause::LambdaFunctionError, FP, now),
                Decision::Restart { attempt }
            );
            h = P.record_restart(&h, FP, now);
            now += P.backoff_minutes(h.count) * MINUTE_MS;
        }
        assert_eq!(P.decide(&h, Cause::LambdaFunctionError, FP, now), Decision::GiveUp);
        assert_eq!(
            P.decide(&h, Cause::LambdaFunctionError, "Other-2", now),
            Decision::Restart { attempt: 1 }
        );
    }

    #[test]
    fn causes_a_restart_cannot_fix_are_never_restarted() {
        for cause in [
            Cause::Serialization,
            Cause::LambdaPermission,
            Cause::LambdaNotFound,
            Cause::PluginMissing,
            Cause::License,
        ] {
            assert_eq!(
                P.decide(&RestartHistory::default(), cause, FP, at(0, 0)),
                Decision::DoNotRestart
            );
        }
    }

    #[test]
    fn the_count_resets_after_staying_healthy_longer_than_the_next_backoff() {
        let h = P.record_restart(
            &P.record_restart(&RestartHistory::default(), FP, at(0, 0)),
            FP,
            at(2, 0),
        );
        assert_eq!(h.count, 2);
        let h = P.record_healthy(&h, at(3, 0));
        assert_eq!(h.healthy_since, Some(at(3, 0)));
        // The window is the longest backoff (an hour): a return within it counts.
        assert_eq!(P.record_healthy(&h, at(63, 0)).count, 2);
        let reset = P.record_healthy(&h, at(63, 1));
        assert_eq!((reset.count, reset.total, reset.fingerprint), (0, 0, None));
        // A failure in between breaks the healthy period.
        let broken = P.record_healthy(&P.record_failing(&h), at(63, 1));
        assert_eq!((broken.count, broken.healthy_since), (2, Some(at(63, 1))));
    }

    proptest! {
        /// Whatever the pattern of failing and healthy runs, one failure is never restarted more
        /// than the budget, restarts respect the backoff, and a long enough healthy period resets.
        #[test]
        fn never_more_than_the_budget_and_always_resets_after_stability(
            runs in prop::collection::vec((prop::bool::weighted(0.7), 1i64..30), 1..200),
        ) {
            let mut h = RestartHistory::default();
            let mut now = at(0, 0);
            let mut restarts_since_reset = 0;
            let mut last_restart: Option<i64> = None;
            for (failing, minutes) in runs {
                now += minutes * MINUTE_MS;
                if failing {
                    match P.decide(&h, Cause::Unknown, FP, now) {
                        Decision::Restart { attempt } => {
                            restarts_since_reset += 1;
                            prop_assert_eq!(attempt, restarts_since_reset);
                            prop_assert!(attempt <= P.budget);
                            if let Some(last) = last_restart {
                                prop_assert!(now - last >= P.backoff_minutes(attempt - 1) * MINUTE_MS);
                            }
                            last_restart = Some(now);
                            h = P.record_restart(&h, FP, now);
                        }
                        Decision::GiveUp | Decision::Tail { .. } => prop_assert_eq!(restarts_since_reset, P.budget),
                        Decision::TooMany { .. } => prop_assert!(false, "one failure: its own budget runs out first"),
                        Decision::Wait { until } => prop_assert!(until > now),
                        Decision::DoNotRestart => prop_assert!(false, "Unknown is restartable"),
                    }
                    h = P.record_failing(&h);
                } else {
                    let before = h.clone();
                    h = P.record_healthy(&h, now);
                    let since = before.healthy_since.unwrap_or(now);
                    if before.count > 0 && now - since > P.stable_minutes(before.count) * MINUTE_MS {
                        prop_assert_eq!(h.count, 0);
                    }
                    if h.count == 0 {
                        restarts_since_reset = 0;
                        last_restart = None;
                    }
                }
            }
        }
    }
}
