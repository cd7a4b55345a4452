//! The audit trail: one entry per automated action (restart, recreate, drift corrected), per
//! decision to stand back (a mute honoured, an operator's delete honoured, restarts given up) and
//! per operator's action through `connectorctl` (restart, pause, resume, stop, delete, offsets
//! set or reset, mute, dead letters replayed, `verify --repair`),
//! with who, what and why. The monitor logs each as one line and keeps it in its state table for
//! [`AUDIT_KEPT_MS`]; `connectorctl history` reads it back.

use serde::{Deserialize, Serialize};

use crate::monitor::judge::finding::{Category, Finding, Hold};
use crate::monitor::judge::restart::RestartPolicy;
use crate::monitor::judge::state::{Action, ConnectorState, Evaluation};
use crate::monitor::time::iso8601;

/// How long an audit entry is kept.
pub const AUDIT_KEPT_MS: i64 = 30 * 24 * 3_600_000;

/// Who the monitor's own entries are by.
pub const BY_MONITOR: &str = "testConnectors";

/// What was done, or deliberately not done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditKind {
    /// A restart was requested (or its call failed: see the outcome).
    Restart,
    /// A missing connector was created again from its secret.
    Recreate,
    /// A drifted config was put back to its secret's.
    CorrectDrift,
    /// A failure was left alone because the connector or the cluster is muted.
    MuteHonoured,
    /// A connector an operator deleted was left deleted.
    DeleteHonoured,
    /// The same failure came back after the whole budget: no more restarts.
    GaveUp,
    /// An operator's `connectorctl verify --repair` wrote a topic's record into a sink table.
    Repair,
    /// An operator paused the connector (`connectorctl pause`).
    Pause,
    /// An operator resumed it.
    Resume,
    /// An operator stopped it (`connectorctl stop`: config and offsets kept).
    Stop,
    /// An operator deleted it (`connectorctl delete`).
    Delete,
    /// An operator set its committed offsets.
    OffsetsSet,
    /// An operator reset its committed offsets.
    OffsetsReset,
    /// An operator muted it.
    Mute,
    /// An operator unmuted it.
    Unmute,
    /// An operator replayed dead letters into a sink table (`connectorctl dlq replay`).
    DlqReplay,
    /// An operator created or updated it from its secret (`connectorctl ensure`).
    Ensure,
}

impl AuditKind {
    /// The kebab-case name used in logs, JSON and the table.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Restart => "restart",
            Self::Recreate => "recreate",
            Self::CorrectDrift => "correct-drift",
            Self::MuteHonoured => "mute-honoured",
            Self::DeleteHonoured => "delete-honoured",
            Self::GaveUp => "gave-up",
            Self::Repair => "repair",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Stop => "stop",
            Self::Delete => "delete",
            Self::OffsetsSet => "offsets-set",
            Self::OffsetsReset => "offsets-reset",
            Self::Mute => "mute",
            Self::Unmute => "unmute",
            Self::DlqReplay => "dlq-replay",
            Self::Ensure => "ensure",
        }
    }
}

/// One entry of the trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// When (ms since the epoch).
    pub at: i64,
    /// The cluster.
    pub cluster: String,
    /// The connector acted on.
    pub connector: String,
    /// What.
    pub kind: AuditKind,
    /// Who: [`BY_MONITOR`] for the monitor's runs (the Lambda and `connectorctl check` alike).
    pub by: String,
    /// Why: the finding that called for it.
    pub why: String,
    /// The cause id (e.g. `lambda-throttled`), where there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The failure's fingerprint, where there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Restart number n ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// ... of m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<u32>,
    /// The next restart is not made before then (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_not_before: Option<i64>,
    /// What came of it, as the report says.
    pub outcome: String,
}

impl AuditEntry {
    /// An operator's action: `by` is who (`connectorctl (<caller ARN>)`), `outcome` what came of it.
    pub fn by_operator(
        cluster: &str,
        connector: &str,
        kind: AuditKind,
        by: &str,
        outcome: impl Into<String>,
        now: i64,
    ) -> Self {
        AuditEntry {
            at: now,
            cluster: cluster.to_string(),
            connector: connector.to_string(),
            kind,
            by: by.to_string(),
            why: "an operator's command".into(),
            cause: None,
            fingerprint: None,
            attempt: None,
            budget: None,
            next_not_before: None,
            outcome: outcome.into(),
        }
    }

    /// The entry as one line for an alert: `restart 1 of 3 at 2026-...Z: restart 1 of 3 requested`.
    pub fn line(&self) -> String {
        let what = match (self.attempt, self.budget) {
            (Some(n), Some(m)) => format!("{} {n} of {m}", self.kind.as_str()),
            _ => self.kind.as_str().to_string(),
        };
        format!("{what} at {}: {}", iso8601(self.at), self.outcome)
    }
}

/// The first finding about `connector` that names a cause, else its first finding.
fn finding_for<'a>(findings: &'a [Finding], connector: &str) -> Option<&'a Finding> {
    let mine = || findings.iter().filter(|f| f.connector.as_deref() == Some(connector));
    mine().find(|f| f.cause.is_some()).or_else(|| mine().next())
}

/// The entry for an action the run started, with what came of it (`outcome`) and the state it
/// kept (`state`), from which the next restart's earliest time follows.
pub fn of_action(
    cluster: &str,
    action: &Action,
    findings: &[Finding],
    outcome: &str,
    state: &ConnectorState,
    policy: &RestartPolicy,
    now: i64,
) -> AuditEntry {
    let connector = action.connector();
    let finding = finding_for(findings, connector);
    let mut entry = AuditEntry {
        at: now,
        cluster: cluster.to_string(),
        connector: connector.to_string(),
        kind: AuditKind::Recreate,
        by: BY_MONITOR.to_string(),
        why: finding.map_or_else(String::new, |f| f.summary.clone()),
        cause: finding.and_then(|f| f.cause).map(|c| c.id().to_string()),
        fingerprint: None,
        attempt: None,
        budget: None,
        next_not_before: None,
        outcome: outcome.to_string(),
    };
    match action {
        Action::Restart {
            attempt,
            budget,
            fingerprint,
            ..
        } => {
            entry.kind = AuditKind::Restart;
            entry.fingerprint = Some(fingerprint.clone());
            entry.attempt = Some(*attempt);
            entry.budget = Some(*budget);
            entry.next_not_before = policy.next_not_before(&state.restart);
        }
        Action::RestartStalled { attempt, budget, .. } => {
            entry.kind = AuditKind::Restart;
            entry.fingerprint = Some(crate::monitor::judge::lag::STALLED_FINGERPRINT.to_string());
            entry.attempt = Some(*attempt);
            entry.budget = Some(*budget);
            entry.next_not_before = policy.next_not_before(&state.progress.restart);
            if let Some(f) = findings
                .iter()
                .find(|f| f.connector.as_deref() == Some(connector) && f.category == Category::ConsumerStalled)
            {
                entry.why = f.summary.clone();
            }
        }
        Action::Recreate { .. } => {}
        Action::CorrectDrift { .. } => entry.kind = AuditKind::CorrectDrift,
    }
    entry
}

/// What the run stood back from, per connector: a mute honoured over a failure, an operator's
/// delete honoured, restarts given up. Each is one entry when it begins, not one per run: the
/// connector's state remembers the last one (`audited`) until the connector no longer needs it.
pub fn holds(
    eval: &mut Evaluation,
    cluster: &str,
    previous: &std::collections::BTreeMap<String, ConnectorState>,
    now: i64,
) -> Vec<AuditEntry> {
    let mut entries = Vec::new();
    let names: Vec<String> = eval.states.keys().cloned().collect();
    for name in names {
        let mine: Vec<&Finding> = eval
            .findings
            .iter()
            .filter(|f| f.connector.as_deref() == Some(name.as_str()))
            .collect();
        let hold = mine.iter().find_map(|f| {
            let fingerprint = f.root.as_ref().map(|r| r.fingerprint.clone());
            match f.hold {
                _ if f.muted && f.category != Category::ConnectorPaused => {
                    Some((AuditKind::MuteHonoured, *f, fingerprint))
                }
                Some(Hold::GaveUp) => Some((AuditKind::GaveUp, *f, fingerprint)),
                Some(Hold::LeftDeleted) => Some((AuditKind::DeleteHonoured, *f, None)),
                None => None,
            }
        });
        let key = hold
            .as_ref()
            .map(|(kind, f, fp)| format!("{}:{}:{}", kind.as_str(), f.category.id(), fp.as_deref().unwrap_or("")));
        let was = previous.get(&name).and_then(|s| s.audited.clone());
        if let (Some((kind, f, fingerprint)), Some(key)) = (&hold, &key)
            && was.as_ref() != Some(key)
        {
            entries.push(AuditEntry {
                at: now,
                cluster: cluster.to_string(),
                connector: name.clone(),
                kind: *kind,
                by: BY_MONITOR.to_string(),
                why: f.summary.clone(),
                cause: f.cause.map(|c| c.id().to_string()),
                fingerprint: fingerprint.clone(),
                attempt: None,
                budget: None,
                next_not_before: None,
                outcome: f.action.clone().unwrap_or_default(),
            });
        }
        if let Some(state) = eval.states.get_mut(&name) {
            state.audited = key;
        }
    }
    entries
}

/// The lines an alert about restart `attempt` adds for the restarts before it: the entries of
/// `history` (any order) for the same connector and fingerprint, oldest first.
pub fn earlier_restarts(history: &[AuditEntry], connector: &str, fingerprint: &str, attempt: u32) -> Vec<String> {
    let mut earlier: Vec<&AuditEntry> = history
        .iter()
        .filter(|e| {
            e.kind == AuditKind::Restart
                && e.connector == connector
                && e.fingerprint.as_deref() == Some(fingerprint)
                && e.attempt.is_some_and(|n| n < attempt)
        })
        .collect();
    earlier.sort_by_key(|e| e.at);
    // The same restart number twice means the count started over: keep the latest run of them.
    if let Some(i) = earlier.iter().rposition(|e| e.attempt == Some(1)) {
        earlier.drain(..i);
    }
    earlier.iter().map(|e| e.line()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::judge::evaluate::{Observation, evaluate};
    use crate::monitor::judge::finding::Severity;
    use crate::monitor::judge::state::Settings;
    use std::collections::BTreeMap;

    const NOW: i64 = 1_795_504_647_000;

    fn restart(at: i64, attempt: u32, fingerprint: &str) -> AuditEntry {
        AuditEntry {
            at,
            cluster: "c".into(),
            connector: "sink".into(),
            kind: AuditKind::Restart,
            by: BY_MONITOR.into(),
            why: "Task 0 FAILED".into(),
            cause: Some("lambda-throttled".into()),
            fingerprint: Some(fingerprint.into()),
            attempt: Some(attempt),
            budget: Some(3),
            next_not_before: None,
            outcome: format!("restart {attempt} of 3 requested"),
        }
    }

    #[test]
    fn an_alert_for_restart_three_lists_restarts_one_and_two_of_the_same_failure_only() {
        let history = [
            restart(NOW - 50_000, 1, "fp"),
            restart(NOW + 10, 2, "fp"),
            restart(NOW, 1, "fp"),
            restart(NOW + 5, 1, "other"),
            restart(NOW + 20, 3, "fp"),
        ];
        let lines = earlier_restarts(&history, "sink", "fp", 3);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("restart 1 of 3 at ") && lines[0].ends_with(": restart 1 of 3 requested"));
        assert!(lines[1].starts_with("restart 2 of 3 at "), "{lines:?}");
        assert!(earlier_restarts(&history, "sink", "fp", 1).is_empty());
    }

    #[test]
    fn an_entry_reads_back_from_its_json_with_camel_case_fields() {
        let mut e = restart(NOW, 2, "fp");
        e.next_not_before = Some(NOW + 360_000);
        let text = serde_json::to_value(&e).unwrap();
        assert_eq!(text["kind"], "restart");
        assert_eq!(text["nextNotBefore"], NOW + 360_000);
        assert_eq!(serde_json::from_value::<AuditEntry>(text).unwrap(), e);
    }

    fn file(name: &str) -> String {
        std::fs::read_to_string(format!("{}/../../events/connect/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    /// The events' failing connectors, with the whole cluster muted.
    fn muted_failure() -> (Evaluation, BTreeMap<String, ConnectorState>) {
        let list: Vec<serde_json::Value> = serde_json::from_str(&file("desired-configs.json")).unwrap();
        let desired: Vec<_> = list
            .iter()
            .map(|v| crate::connect::ports::parse_connector_config("test", &v.to_string()).unwrap())
            .collect();
        let observation =
            Observation::Connectors(crate::connect::wire::expanded(&file("expand-tasks-failed.json")).unwrap());
        let settings = Settings {
            mute_all: true,
            ..Settings::default()
        };
        (
            evaluate(&desired, &observation, &BTreeMap::new(), &settings, NOW),
            BTreeMap::new(),
        )
    }

    #[test]
    fn a_mute_over_a_failure_is_one_entry_when_it_begins_not_one_per_run() {
        let (mut eval, previous) = muted_failure();
        let first = holds(&mut eval, "c", &previous, NOW);
        assert!(!first.is_empty(), "{:?}", eval.findings);
        assert!(
            first
                .iter()
                .all(|e| e.kind == AuditKind::MuteHonoured && e.outcome.starts_with("muted"))
        );
        let kept: BTreeMap<String, ConnectorState> = eval.states.clone();
        let (mut again, _) = muted_failure();
        assert!(
            holds(&mut again, "c", &kept, NOW + 60_000).is_empty(),
            "the next run adds none"
        );
        assert!(
            eval.findings
                .iter()
                .all(|f| f.severity != Severity::Critical || f.muted),
            "a muted run pages nothing"
        );
    }

    #[test]
    fn a_hold_is_read_from_the_finding_type_not_from_its_action_text() {
        let (mut eval, previous) = muted_failure();
        let name = eval.states.keys().next().unwrap().clone();
        let mut decided = |hold: Option<Hold>, action: &str| {
            let mut f = Finding::new(Category::RestartExhausted, "it failed again");
            f.connector = Some(name.clone());
            f.action = Some(action.into());
            f.hold = hold;
            eval.findings = vec![f];
            holds(&mut eval, "c", &previous, NOW)
        };
        assert!(
            decided(None, "restarts stopped; a person must fix the cause").is_empty(),
            "words alone decide nothing"
        );
        let gave_up = decided(Some(Hold::GaveUp), "any words");
        assert_eq!(gave_up.iter().map(|e| e.kind).collect::<Vec<_>>(), [AuditKind::GaveUp]);
        let deleted = decided(Some(Hold::LeftDeleted), "any words");
        assert_eq!(
            deleted.iter().map(|e| e.kind).collect::<Vec<_>>(),
            [AuditKind::DeleteHonoured]
        );
    }
}
