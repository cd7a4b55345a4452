//! One run's judgement: desired connectors, what the worker reports, and what was done before,
//! in; findings, actions and the state to keep, out. Pure: `now` is a parameter.

use std::collections::{BTreeMap, BTreeSet};

use super::cause::{RootCause, root_cause};
use super::finding::{Category, Finding, Hold};
use super::restart::Decision;
use super::state::{Action, ClusterState, ConnectorState, ConnectorSummary, Evaluation, Settings};
use crate::connect::{ConnectorConfig, ConnectorStatus, ConnectorView, State};
use crate::monitor::time::iso8601;

/// What the worker said this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// `GET /connectors?expand=status&expand=info`.
    Connectors(Vec<ConnectorView>),
    /// The worker answers but has not joined its group: its lists cannot be trusted yet.
    NotReady {
        /// The worker URL.
        worker: String,
    },
    /// A worker without `GET /health` (before 3.9) answered the list. Such a worker lists nothing
    /// until it has read its config topic, so it is judged only once [`warmth`] says it is warm.
    Unproven {
        /// The worker URL.
        worker: String,
        /// `GET /connectors?expand=status&expand=info`.
        views: Vec<ConnectorView>,
        /// When the worker's task started (ms since the epoch), where discovery says.
        started_at: Option<i64>,
    },
    /// 409: a rebalance is under way.
    Rebalancing {
        /// The worker URL.
        worker: String,
        /// Connect's message.
        message: String,
    },
    /// No worker answered.
    Unreachable {
        /// What was tried and what went wrong.
        detail: String,
    },
}

/// How long an operator's intent to delete waits for the delete it precedes: `connectorctl
/// delete` records the intent first, so a run may still see the connector listed meanwhile.
pub const DELETE_UNDER_WAY_MS: i64 = 5 * 60_000;

/// Whether a worker without `/health` can be judged ([`warmth`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warmth {
    /// Judge it: what it does not list is missing.
    Warm,
    /// It lists none, or not all, of its connectors and may still be reading its config topic.
    Cold {
        /// When it will be judged anyway (ms since the epoch).
        until: i64,
    },
}

/// A worker without `/health` lists what it has read of its config topic so far: nothing at
/// first, then more as it reads. It is warm when it lists every desired connector, or lists
/// something and every connector a run last saw listed (what it is known to hold); else once
/// the warm-up has passed since its task started or, where the start is unknown, since a run
/// first found one unlisted. With the 5-minute default: up 4:59 → cold, 5:00 → warm.
pub fn warmth(
    desired: &[ConnectorConfig],
    views: &[ConnectorView],
    previous: &BTreeMap<String, ConnectorState>,
    started_at: Option<i64>,
    warmup_ms: i64,
    now: i64,
) -> Warmth {
    let listed = |name: &str| views.iter().any(|v| v.name == name);
    let unlisted: Vec<&ConnectorConfig> = desired.iter().filter(|d| !listed(&d.name)).collect();
    let is_held = |d: &&ConnectorConfig| previous.get(&d.name).is_some_and(|s| s.missing_since.is_none());
    if unlisted.is_empty() || (!views.is_empty() && !unlisted.iter().any(is_held)) {
        return Warmth::Warm;
    }
    let first_unlisted = unlisted
        .iter()
        .filter_map(|d| previous.get(&d.name).and_then(|s| s.missing_since))
        .min();
    let since = started_at.or(first_unlisted).unwrap_or(now);
    if now - since >= warmup_ms {
        Warmth::Warm
    } else {
        Warmth::Cold {
            until: since + warmup_ms,
        }
    }
}

/// Judges one run.
pub fn evaluate(
    desired: &[ConnectorConfig],
    observation: &Observation,
    previous: &BTreeMap<String, ConnectorState>,
    settings: &Settings,
    now: i64,
) -> Evaluation {
    let mut out = Evaluation::default();
    let Some(views) = judgeable(desired, observation, previous, settings, now, &mut out) else {
        return out;
    };
    let by_name: BTreeMap<&str, &ConnectorView> = views.iter().map(|v| (v.name.as_str(), v)).collect();
    for wanted in desired {
        judge_desired(
            wanted,
            by_name.get(wanted.name.as_str()).copied(),
            previous,
            settings,
            now,
            &mut out,
        );
    }
    out
}

/// The connectors the worker lists, when they can be judged this run; otherwise `None`, with
/// the finding that says why not (and, for a worker warming up, the state to keep) in `out`.
fn judgeable<'a>(
    desired: &[ConnectorConfig],
    observation: &'a Observation,
    previous: &BTreeMap<String, ConnectorState>,
    settings: &Settings,
    now: i64,
    out: &mut Evaluation,
) -> Option<&'a [ConnectorView]> {
    match observation {
        Observation::Connectors(views) => Some(views),
        Observation::Unproven {
            worker,
            views,
            started_at,
        } => match warmth(desired, views, previous, *started_at, settings.worker_warmup_ms, now) {
            Warmth::Warm => Some(views),
            Warmth::Cold { until } => {
                let unlisted: Vec<&ConnectorConfig> = desired
                    .iter()
                    .filter(|d| !views.iter().any(|v| v.name == d.name))
                    .collect();
                let how_many = match desired.len() - unlisted.len() {
                    0 => "none".to_string(),
                    n => format!("only {n}"),
                };
                let summary = format!(
                    "Kafka Connect at {worker} lists {how_many} of the {} connectors it should hold; a \
                     worker without /health (before 3.9) does so until it has read its configs, so \
                     nothing is judged before {}",
                    desired.len(),
                    iso8601(until)
                );
                let mut f = Finding::new(Category::WorkerRebalancing, summary);
                f.worker = Some(worker.clone());
                out.findings.push(f);
                for wanted in unlisted {
                    let mut state = previous.get(&wanted.name).cloned().unwrap_or_default();
                    state.missing_since.get_or_insert(now);
                    out.states.insert(wanted.name.clone(), state);
                }
                out.warming_until = Some(until);
                None
            }
        },
        Observation::Unreachable { detail } => {
            let mut f = Finding::new(
                Category::WorkerUnreachable,
                format!("No Kafka Connect worker answered: {detail}"),
            );
            f.muted = settings.mute_all;
            out.findings.push(f);
            None
        }
        Observation::NotReady { worker } => {
            let summary =
                format!("Kafka Connect at {worker} is starting and not ready yet; nothing was judged this run");
            let mut f = Finding::new(Category::WorkerRebalancing, summary);
            f.worker = Some(worker.clone());
            out.findings.push(f);
            None
        }
        Observation::Rebalancing { worker, message } => {
            let mut f = Finding::new(
                Category::WorkerRebalancing,
                format!("Kafka Connect is rebalancing: {message}"),
            );
            f.worker = Some(worker.clone());
            out.findings.push(f);
            None
        }
    }
}

/// Judges one desired connector: listed, missing, or deleted by an operator; a mute keeps what
/// was found and drops what would be done.
fn judge_desired(
    wanted: &ConnectorConfig,
    view: Option<&ConnectorView>,
    previous: &BTreeMap<String, ConnectorState>,
    settings: &Settings,
    now: i64,
    out: &mut Evaluation,
) {
    let before = previous.get(&wanted.name).cloned().unwrap_or_default();
    let muted = settings.mutes(&wanted.name, before.muted_until, now);
    let start = out.findings.len();
    let restart_before = before.restart.clone();
    match view {
        None if before.deleted_at.is_some() => {
            let at = before.deleted_at.map(iso8601).unwrap_or_default();
            let mut f = about(
                &wanted.name,
                Category::ConnectorPaused,
                format!(
                    "Connector {} was deleted by an operator at {at}; it is left deleted (connectorctl ensure {} brings it back)",
                    wanted.name, wanted.name
                ),
            );
            f.action = Some("left deleted: the operator's intent".into());
            f.hold = Some(Hold::LeftDeleted);
            out.findings.push(f);
            out.connectors.push(summary(&wanted.name, "DELETED", None));
            // Seen gone: were it listed again, someone brought it back.
            let mut state = before;
            state.missing_since.get_or_insert(now);
            out.states.insert(wanted.name.clone(), state);
        }
        None => {
            let mut f = about(
                &wanted.name,
                Category::ConnectorMissing,
                format!("Connector {} is not on the worker", wanted.name),
            );
            f.action = Some("recreate it from its secret".into());
            out.findings.push(f);
            out.actions.push(Action::Recreate {
                connector: wanted.name.clone(),
            });
            out.connectors.push(summary(&wanted.name, "MISSING", None));
            let mut state = before;
            state.missing_since.get_or_insert(now);
            out.states.insert(wanted.name.clone(), state);
        }
        Some(view) => {
            let mut state = judge_connector(wanted, view, &before, settings, now, out);
            // It exists again: an intent to keep it deleted is over, unless its delete is still
            // under way (recorded first, not yet seen gone, and recent).
            let under_way = before
                .deleted_at
                .is_some_and(|at| before.missing_since.is_none() && now - at < DELETE_UNDER_WAY_MS);
            if !under_way {
                state.deleted_at = None;
            }
            state.missing_since = None;
            out.states.insert(wanted.name.clone(), state);
        }
    }
    if muted {
        for f in &mut out.findings[start..] {
            f.muted = true;
            f.action = Some("muted: recorded only".into());
        }
        out.actions.retain(|a| a.connector() != wanted.name);
        // No restart was made: the budget and the backoff stay where the mute found them.
        if let Some(state) = out.states.get_mut(&wanted.name) {
            state.restart = restart_before;
        }
    }
}

fn summary(name: &str, state: &str, view: Option<&ConnectorView>) -> ConnectorSummary {
    let status = view.and_then(|v| v.status.as_ref());
    let tasks: Vec<String> = status
        .map(|s| {
            s.tasks
                .iter()
                .map(|t| format!("{}: {}", t.id, t.state.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let healthy = status
        .is_some_and(|s| s.connector.state == State::Running && s.tasks.iter().all(|t| t.state == State::Running));
    ConnectorSummary {
        name: name.to_string(),
        state: state.to_string(),
        worker: status.map(|s| s.connector.worker_id.clone()),
        tasks,
        healthy,
        failed_tasks: status.map_or(0, |s| s.tasks.iter().filter(|t| t.state == State::Failed).count()),
    }
}

/// A failure of the connector (`task: None`) or of a task.
struct Failure {
    task: Option<i32>,
    worker: String,
    root: RootCause,
    trace: Option<String>,
}

/// What the status says of a connector's health, beyond its summary.
struct Health {
    failures: Vec<Failure>,
    /// The connector or a task is UNASSIGNED.
    unassigned: bool,
    /// The connector or a task is RESTARTING.
    transient: bool,
}

/// A finding about connector `name`.
fn about(name: &str, category: Category, summary: String) -> Finding {
    let mut f = Finding::new(category, summary);
    f.connector = Some(name.to_string());
    f
}

/// Judges one listed connector: its config, its state and its tasks', and what a restart may do.
fn judge_connector(
    wanted: &ConnectorConfig,
    view: &ConnectorView,
    before: &ConnectorState,
    settings: &Settings,
    now: i64,
    out: &mut Evaluation,
) -> ConnectorState {
    let name = &wanted.name;
    let Some(status) = &view.status else {
        // Just created or being deleted: no status yet is "unknown", not "healthy" or "missing".
        out.connectors.push(summary(name, "UNKNOWN", Some(view)));
        return before.clone();
    };
    out.connectors
        .push(summary(name, status.connector.state.as_str(), Some(view)));
    if let Some(info) = &view.info {
        judge_drift(name, &wanted.config, &info.config, settings, out);
    }
    let health = health(name, status, out);
    let mut state = before.clone();
    state.unassigned_runs = if health.unassigned {
        before.unassigned_runs + 1
    } else {
        0
    };
    judge_assignment(name, &health, state.unassigned_runs, settings, out);
    if health.failures.is_empty() {
        let healthy = status.connector.state == State::Running && !health.unassigned && !health.transient;
        state.restart = if healthy {
            settings.policy.record_healthy(&before.restart, now)
        } else {
            before.restart.clone()
        };
        return state;
    }
    judge_failures(name, &health.failures, before, &mut state, settings, now, out);
    state
}

/// Config drift: the running config against the secret's, reported or put back.
fn judge_drift(
    name: &str,
    desired: &BTreeMap<String, String>,
    running: &BTreeMap<String, String>,
    settings: &Settings,
    out: &mut Evaluation,
) {
    let differing = drift(desired, running);
    if differing.is_empty() {
        return;
    }
    let mut f = about(
        name,
        Category::ConfigDrift,
        format!(
            "Connector {name} runs a config that differs from its secret in: {}",
            differing.join(", ")
        ),
    );
    f.action = Some(
        if settings.correct_drift {
            "config put back from the secret"
        } else {
            "reported only"
        }
        .into(),
    );
    out.findings.push(f);
    if settings.correct_drift {
        out.actions.push(Action::CorrectDrift {
            connector: name.to_string(),
        });
    }
}

/// The failures, UNASSIGNED and RESTARTING work in a status; a connector paused or stopped on
/// purpose is reported as such.
fn health(name: &str, status: &ConnectorStatus, out: &mut Evaluation) -> Health {
    let mut health = Health {
        failures: Vec::new(),
        unassigned: status.connector.state == State::Unassigned,
        transient: status.connector.state == State::Restarting,
    };
    match &status.connector.state {
        State::Failed => health.failures.push(Failure {
            task: None,
            worker: status.connector.worker_id.clone(),
            root: root_cause(status.connector.trace.as_deref().unwrap_or("")),
            trace: status.connector.trace.clone(),
        }),
        State::Paused | State::Stopped => {
            let mut f = about(
                name,
                Category::ConnectorPaused,
                format!(
                    "Connector {name} is {} on purpose; it is left as it is",
                    status.connector.state.as_str()
                ),
            );
            f.worker = Some(status.connector.worker_id.clone());
            f.action = Some("reported only; never resumed by the monitor".into());
            out.findings.push(f);
        }
        _ => {}
    }
    for task in &status.tasks {
        match task.state {
            State::Failed => health.failures.push(Failure {
                task: Some(task.id),
                worker: task.worker_id.clone(),
                root: root_cause(task.trace.as_deref().unwrap_or("")),
                trace: task.trace.clone(),
            }),
            State::Unassigned => health.unassigned = true,
            State::Restarting => health.transient = true,
            _ => {}
        }
    }
    health
}

/// UNASSIGNED work reported after `unassigned_after_runs` runs; RESTARTING work waited for.
fn judge_assignment(name: &str, health: &Health, unassigned_runs: u32, settings: &Settings, out: &mut Evaluation) {
    if health.unassigned && unassigned_runs >= settings.unassigned_after_runs {
        let mut f = about(
            name,
            Category::TaskUnassigned,
            format!("Connector {name} has had UNASSIGNED work for {unassigned_runs} consecutive runs"),
        );
        f.action = Some("reported; Kafka Connect reassigns work after a rebalance delay".into());
        out.findings.push(f);
    }
    if health.transient && health.failures.is_empty() {
        let mut f = about(
            name,
            Category::WorkerRebalancing,
            format!("Connector {name} is restarting"),
        );
        f.action = Some("wait for the next run".into());
        out.findings.push(f);
    }
}

/// Failures: one finding each, and one restart decision for all of them (one restart call covers
/// the connector and its failed tasks), taken on the first failure a restart can fix.
fn judge_failures(
    name: &str,
    failures: &[Failure],
    before: &ConnectorState,
    state: &mut ConnectorState,
    settings: &Settings,
    now: i64,
    out: &mut Evaluation,
) {
    let deciding = failures
        .iter()
        .find(|f| f.root.cause.is_restartable())
        .unwrap_or(&failures[0]);
    let decision = settings
        .policy
        .decide(&before.restart, deciding.root.cause, &deciding.root.fingerprint, now);
    let budget = settings.policy.budget;
    let action_text = decision_text(&decision, before.restart.count, budget, deciding, now);
    failure_findings(name, failures, &decision, &action_text, out);
    // Past the budget, a transient cause is escalated once (the incident stays open while it
    // fails) and still restarted at the capped backoff.
    let decision = match decision {
        Decision::Tail { attempt, until } => {
            out.findings.push(exhausted(
                name,
                deciding,
                format!(
                    "Connector {name} still fails after {budget} restarts: {} (transient: restarted hourly until it heals)",
                    deciding.root.line
                ),
                "restarts continue at the capped backoff; see the cause's runbook",
                None,
            ));
            if until <= now {
                Decision::Restart { attempt }
            } else {
                Decision::Wait { until }
            }
        }
        other => other,
    };
    match decision {
        Decision::Restart { attempt } => {
            out.actions
                .push(restart_action(name, failures, deciding, attempt, budget));
            state.restart = settings
                .policy
                .record_restart(&before.restart, &deciding.root.fingerprint, now);
            state.failed_restart_calls = 0;
        }
        Decision::GiveUp => {
            out.findings.push(exhausted(
                name,
                deciding,
                format!(
                    "Connector {name} failed again with the same failure after {budget} restarts: {}",
                    deciding.root.line
                ),
                "restarts stopped; a person must fix the cause",
                Some(Hold::GaveUp),
            ));
            state.restart = settings.policy.record_failing(&before.restart);
        }
        Decision::TooMany { restarts } => {
            out.findings.push(exhausted(
                name,
                deciding,
                format!(
                    "Connector {name} keeps failing, on different failures in turn: {restarts} restarts since it \
                     was last stable, now {}",
                    deciding.root.line
                ),
                "restarts stopped; a person must fix the causes (the connector's history lists them)",
                Some(Hold::GaveUp),
            ));
            state.restart = settings.policy.record_failing(&before.restart);
        }
        Decision::Wait { .. } | Decision::DoNotRestart | Decision::Tail { .. } => {
            state.restart = settings.policy.record_failing(&before.restart);
        }
    }
}

/// One finding per failure of the connector (the connector instance, each failed task), each
/// saying what `decision` did about it: `action_text`, or that a restart cannot fix its cause.
fn failure_findings(name: &str, failures: &[Failure], decision: &Decision, action_text: &str, out: &mut Evaluation) {
    for failure in failures {
        let (category, subject) = match failure.task {
            None => (Category::ConnectorFailed, format!("Connector {name}")),
            Some(id) => (Category::TaskFailed, format!("Task {id} of connector {name}")),
        };
        let mut f = about(
            name,
            category,
            format!("{subject} FAILED on {}: {}", failure.worker, failure.root.cause.id()),
        );
        f.task = failure.task;
        f.worker = Some(failure.worker.clone());
        f.cause = Some(failure.root.cause);
        f.root = Some(failure.root.clone());
        f.detail = failure.trace.clone();
        f.action = Some(
            if failure.root.cause.is_restartable() || matches!(decision, Decision::DoNotRestart) {
                action_text.to_string()
            } else {
                format!("not restarted: a restart cannot fix {}", failure.root.cause.id())
            },
        );
        out.findings.push(f);
    }
}

/// What a failure's finding says was done, for the decision taken on `deciding`.
fn decision_text(decision: &Decision, made: u32, budget: u32, deciding: &Failure, now: i64) -> String {
    match decision {
        Decision::Restart { attempt } => format!("restart {attempt} of {budget}"),
        Decision::Wait { until } => format!(
            "restart {made} of {budget} already made; next restart not before {}",
            iso8601(*until)
        ),
        Decision::GiveUp => format!("not restarted: the same failure came back after {budget} restarts"),
        Decision::TooMany { restarts } => {
            format!("not restarted: {restarts} restarts for failures taking turns since it was last stable")
        }
        Decision::Tail { attempt, until } if *until <= now => {
            format!(
                "restart {attempt} (past the budget of {budget}: {} is transient, restarted hourly)",
                deciding.root.cause.id()
            )
        }
        Decision::Tail { until, .. } => format!(
            "past the budget of {budget}: {} is transient, next restart not before {}",
            deciding.root.cause.id(),
            iso8601(*until)
        ),
        Decision::DoNotRestart => format!("not restarted: a restart cannot fix {}", deciding.root.cause.id()),
    }
}

/// The restart of `failures`. `onlyFailed=true` would also restart the tasks a restart cannot
/// fix: when causes differ, the fixable tasks are restarted by id (if the connector instance is
/// among them, the one call is the only way to restart it).
fn restart_action(name: &str, failures: &[Failure], deciding: &Failure, attempt: u32, budget: u32) -> Action {
    let restartable: Vec<&Failure> = failures.iter().filter(|f| f.root.cause.is_restartable()).collect();
    let only_tasks = restartable.len() < failures.len() && restartable.iter().all(|f| f.task.is_some());
    let chosen: Vec<&Failure> = if only_tasks {
        restartable
    } else {
        failures.iter().collect()
    };
    Action::Restart {
        connector: name.to_string(),
        attempt,
        budget,
        failed_tasks: chosen.iter().filter_map(|f| f.task).collect(),
        only_tasks,
        fingerprint: deciding.root.fingerprint.clone(),
    }
}

/// The `restart-exhausted` finding for the failure that decided, with its summary and action,
/// and the decision to stand back it records (restarts given up), if any.
fn exhausted(name: &str, deciding: &Failure, summary: String, action: &str, hold: Option<Hold>) -> Finding {
    let mut f = Finding::new(Category::RestartExhausted, summary);
    f.hold = hold;
    f.connector = Some(name.to_string());
    f.task = deciding.task;
    f.cause = Some(deciding.root.cause);
    f.root = Some(deciding.root.clone());
    f.action = Some(action.into());
    f
}

/// The keys whose values differ between the desired and the running config, ignoring `name`
/// (the worker adds it). Values are never shown: a config may hold secrets.
pub fn drift(desired: &BTreeMap<String, String>, running: &BTreeMap<String, String>) -> Vec<String> {
    let keys: BTreeSet<&String> = desired
        .keys()
        .chain(running.keys())
        .filter(|k| k.as_str() != "name")
        .collect();
    keys.into_iter()
        .filter(|k| desired.get(*k) != running.get(*k))
        .cloned()
        .collect()
}

/// Hysteresis for a worker that cannot be judged: a run that finds it starting or rebalancing
/// (the evaluation's `worker-rebalancing` finding, or a warm-up) starts a stretch; from
/// `worker_stuck_ms` into it (10 min: 9:59 → info, 10:00 → critical), that finding becomes
/// `worker-unreachable`. A run that judges the worker, or finds none answering (already
/// `worker-unreachable`), ends the stretch. Returns the cluster state to keep.
pub fn judge_readiness(
    eval: &mut Evaluation,
    observation: &Observation,
    before: &ClusterState,
    settings: &Settings,
    now: i64,
) -> ClusterState {
    let not_judged = match observation {
        Observation::NotReady { .. } | Observation::Rebalancing { .. } => true,
        Observation::Unproven { .. } => eval.warming_until.is_some(),
        Observation::Connectors(_) | Observation::Unreachable { .. } => false,
    };
    if !not_judged {
        return ClusterState::default();
    }
    let since = before.not_judged_since.unwrap_or(now);
    if now - since >= settings.worker_stuck_ms
        && let Some(f) = eval
            .findings
            .iter_mut()
            .find(|f| f.connector.is_none() && f.category == Category::WorkerRebalancing)
    {
        let mut stuck = Finding::new(
            Category::WorkerUnreachable,
            format!(
                "Kafka Connect has been not ready for {} (since {}), so nothing has been judged or healed: {}",
                crate::monitor::time::human_duration(now - since),
                iso8601(since),
                f.summary
            ),
        );
        stuck.worker = f.worker.take();
        stuck.muted = settings.mute_all;
        *f = stuck;
    }
    ClusterState {
        not_judged_since: Some(since),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::wire;
    use crate::monitor::judge::cause::Cause;
    use crate::monitor::judge::finding::Severity;
    use crate::monitor::judge::restart::RestartHistory;

    const NOW: i64 = 1_795_500_000_000;

    fn file(name: &str) -> String {
        let path = format!("{}/../../events/connect/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn desired() -> Vec<ConnectorConfig> {
        let list: Vec<serde_json::Value> = serde_json::from_str(&file("desired-configs.json")).unwrap();
        list.iter()
            .map(|v| crate::connect::ports::parse_connector_config("test", &v.to_string()).unwrap())
            .collect()
    }

    fn observe(name: &str) -> Observation {
        Observation::Connectors(wire::expanded(&file(name)).unwrap())
    }

    fn run(obs: &Observation, previous: &BTreeMap<String, ConnectorState>, settings: &Settings) -> Evaluation {
        evaluate(&desired(), obs, previous, settings, NOW)
    }

    fn categories(e: &Evaluation) -> Vec<(&'static str, Option<&str>, Option<i32>)> {
        e.findings
            .iter()
            .map(|f| (f.category.id(), f.connector.as_deref(), f.task))
            .collect()
    }

    #[test]
    fn an_intent_to_delete_survives_a_run_that_still_sees_the_connector_while_the_delete_is_under_way() {
        // connectorctl delete records the intent, then deletes: a run in between still lists it.
        let intent = |deleted_at: i64, missing_since: Option<i64>| {
            BTreeMap::from([(
                "seatool-sink".to_string(),
                ConnectorState {
                    deleted_at: Some(deleted_at),
                    missing_since,
                    ..ConnectorState::default()
                },
            )])
        };
        let listed = observe("expand-healthy.json");
        let under_way = run(&listed, &intent(NOW - 2_000, None), &Settings::default());
        assert_eq!(under_way.states["seatool-sink"].deleted_at, Some(NOW - 2_000));
        // Seen gone, then listed again: someone brought it back, the intent is over.
        let back = run(&listed, &intent(NOW - 2_000, Some(NOW - 1_000)), &Settings::default());
        assert_eq!(back.states["seatool-sink"].deleted_at, None);
        // Still listed long after the intent: the delete never happened, the intent is over.
        let never = run(&listed, &intent(NOW - DELETE_UNDER_WAY_MS, None), &Settings::default());
        assert_eq!(never.states["seatool-sink"].deleted_at, None);
        // Gone with the intent recorded: left deleted, and the run notes it saw it gone.
        let gone = run(
            &Observation::Connectors(Vec::new()),
            &intent(NOW - 2_000, None),
            &Settings::default(),
        );
        assert_eq!(gone.states["seatool-sink"].missing_since, Some(NOW));
        assert!(
            gone.actions.iter().all(|a| a.connector() != "seatool-sink"),
            "{:?}",
            gone.actions
        );
    }

    #[test]
    fn a_healthy_cluster_has_no_findings_and_keeps_its_healthy_time() {
        let e = run(&observe("expand-healthy.json"), &BTreeMap::new(), &Settings::default());
        assert!(e.findings.is_empty(), "{:?}", e.findings);
        assert!(e.actions.is_empty());
        assert!(e.connectors.iter().all(|c| c.healthy && c.state == "RUNNING"));
        assert_eq!(e.states["seatool-sink"].restart.healthy_since, Some(NOW));
    }

    #[test]
    fn failed_tasks_get_their_cause_and_only_restartable_ones_are_restarted() {
        let e = run(
            &observe("expand-tasks-failed.json"),
            &BTreeMap::new(),
            &Settings::default(),
        );
        assert_eq!(
            categories(&e),
            [
                ("task-failed", Some("seatool-sink"), Some(0)),
                ("task-failed", Some("appian-sink"), Some(0))
            ]
        );
        let seatool = &e.findings[0];
        assert_eq!(seatool.cause, Some(Cause::Serialization));
        assert_eq!(
            seatool.action.as_deref(),
            Some("not restarted: a restart cannot fix serialization")
        );
        assert!(seatool.root.as_ref().unwrap().line.contains("JsonParseException"));
        let appian = &e.findings[1];
        assert_eq!(appian.cause, Some(Cause::LambdaThrottled));
        assert_eq!(appian.action.as_deref(), Some("restart 1 of 3"));
        assert_eq!(e.actions.len(), 1);
        assert!(
            matches!(&e.actions[0], Action::Restart { connector, attempt: 1, failed_tasks, .. } if connector == "appian-sink" && failed_tasks == &[0])
        );
        assert_eq!(e.states["appian-sink"].restart.count, 1);
        assert_eq!(e.states["seatool-sink"].restart.count, 0);
        assert!(
            !e.connectors.iter().any(|c| c.name == "scratch-file-sink"),
            "connectors without a secret are not judged"
        );
    }

    #[test]
    fn paused_is_reported_never_resumed_drift_names_keys_and_missing_is_recreated() {
        let e = run(
            &observe("expand-paused-drifted-one-missing.json"),
            &BTreeMap::new(),
            &Settings::default(),
        );
        assert_eq!(
            categories(&e),
            [
                ("config-drift", Some("seatool-sink"), None),
                ("connector-paused", Some("seatool-sink"), None),
                ("connector-missing", Some("appian-sink"), None)
            ]
        );
        assert_eq!(
            e.findings[0].summary,
            "Connector seatool-sink runs a config that differs from its secret in: aws.lambda.batch.size, tasks.max"
        );
        assert_eq!(e.findings[0].action.as_deref(), Some("reported only"));
        assert_eq!(
            e.actions,
            [Action::Recreate {
                connector: "appian-sink".into()
            }],
            "no resume, no drift correction"
        );
        let correcting = Settings {
            correct_drift: true,
            ..Settings::default()
        };
        let e = run(
            &observe("expand-paused-drifted-one-missing.json"),
            &BTreeMap::new(),
            &correcting,
        );
        assert!(e.actions.contains(&Action::CorrectDrift {
            connector: "seatool-sink".into()
        }));
    }

    #[test]
    fn unassigned_is_reported_only_after_several_runs_and_restarting_is_transient() {
        let obs = observe("expand-unassigned-restarting.json");
        let mut state = BTreeMap::new();
        for run_number in 1..=3 {
            let e = run(&obs, &state, &Settings::default());
            let unassigned = e
                .findings
                .iter()
                .filter(|f| f.category == Category::TaskUnassigned)
                .count();
            assert_eq!(unassigned, usize::from(run_number == 3), "run {run_number}");
            let restarting = e
                .findings
                .iter()
                .find(|f| f.category == Category::WorkerRebalancing)
                .unwrap();
            assert_eq!(restarting.severity, Severity::Info);
            state = e.states;
        }
        assert_eq!(state["seatool-sink"].unassigned_runs, 3);
    }

    #[test]
    fn past_the_budget_a_transient_failure_is_escalated_and_restarted_hourly() {
        // appian-sink: Lambda throttling, which outlasts a few restarts and heals by itself.
        let obs = observe("expand-tasks-failed.json");
        let first = run(&obs, &BTreeMap::new(), &Settings::default());
        let fingerprint = first.findings[1].root.as_ref().unwrap().fingerprint.clone();
        let after = |minutes_ago: i64| {
            let history = RestartHistory {
                count: 3,
                last_restart_at: Some(NOW - minutes_ago * 60_000),
                fingerprint: Some(fingerprint.clone()),
                healthy_since: None,
                total: 3,
                returns: 0,
            };
            let previous = BTreeMap::from([(
                "appian-sink".to_string(),
                ConnectorState {
                    restart: history,
                    ..Default::default()
                },
            )]);
            run(&obs, &previous, &Settings::default())
        };
        for e in [after(10), after(60)] {
            let exhausted = e
                .findings
                .iter()
                .find(|f| f.category == Category::RestartExhausted)
                .expect("restart-exhausted");
            assert_eq!(exhausted.severity, Severity::Critical);
            assert!(
                exhausted.summary.contains("TooManyRequestsException") && exhausted.summary.contains("transient"),
                "names the failure: {}",
                exhausted.summary
            );
        }
        assert!(after(10).actions.is_empty(), "the capped backoff holds");
        let due = after(60);
        assert!(
            matches!(&due.actions[..], [Action::Restart { attempt: 4, .. }]),
            "{:?}",
            due.actions
        );
        assert_eq!(
            due.findings[1].action.as_deref(),
            Some("restart 4 (past the budget of 3: lambda-throttled is transient, restarted hourly)")
        );
    }

    #[test]
    fn a_restart_waits_for_its_backoff() {
        let obs = observe("expand-tasks-failed.json");
        let first = run(&obs, &BTreeMap::new(), &Settings::default());
        let e = evaluate(&desired(), &obs, &first.states, &Settings::default(), NOW + 60_000);
        assert!(e.actions.is_empty());
        assert_eq!(
            e.findings[1].action.as_deref(),
            Some("restart 1 of 3 already made; next restart not before 2026-11-24T06:02:00Z")
        );
    }

    #[test]
    fn a_muted_failure_keeps_its_restart_budget_for_when_the_mute_ends() {
        // appian-sink's task 0 is throttled: restartable. Muted for ten minutes of runs.
        let obs = observe("expand-tasks-failed.json");
        let muted = Settings {
            muted: ["appian-sink".to_string()].into(),
            ..Settings::default()
        };
        let mut states = BTreeMap::new();
        for minute in [0, 1, 2, 5, 8, 10] {
            let e = evaluate(&desired(), &obs, &states, &muted, NOW + minute * 60_000);
            assert!(e.actions.is_empty(), "minute {minute}: {:?}", e.actions);
            assert_eq!(
                e.states["appian-sink"].restart,
                RestartHistory::default(),
                "minute {minute}: a muted connector's history does not move"
            );
            states = e.states;
        }
        let e = evaluate(&desired(), &obs, &states, &Settings::default(), NOW + 11 * 60_000);
        assert_eq!(
            e.findings[1].action.as_deref(),
            Some("restart 1 of 3"),
            "{:?}",
            e.findings
        );
        assert!(
            matches!(&e.actions[0], Action::Restart { attempt: 1, .. }),
            "{:?}",
            e.actions
        );
    }

    #[test]
    fn muted_connectors_and_clusters_are_recorded_without_actions() {
        let obs = observe("expand-tasks-failed.json");
        let settings = Settings {
            muted: ["appian-sink".to_string()].into(),
            ..Settings::default()
        };
        let e = run(&obs, &BTreeMap::new(), &settings);
        assert!(e.actions.is_empty());
        assert!(
            e.findings
                .iter()
                .find(|f| f.connector.as_deref() == Some("appian-sink"))
                .unwrap()
                .muted
        );
        assert!(
            !e.findings
                .iter()
                .find(|f| f.connector.as_deref() == Some("seatool-sink"))
                .unwrap()
                .muted
        );
        let until = BTreeMap::from([(
            "seatool-sink".to_string(),
            ConnectorState {
                muted_until: Some(NOW + 1),
                ..Default::default()
            },
        )]);
        let e = run(
            &obs,
            &until,
            &Settings {
                mute_all: false,
                ..Settings::default()
            },
        );
        assert!(
            e.findings
                .iter()
                .find(|f| f.connector.as_deref() == Some("seatool-sink"))
                .unwrap()
                .muted
        );
        let all = run(
            &Observation::Unreachable { detail: "x".into() },
            &BTreeMap::new(),
            &Settings {
                mute_all: true,
                ..Settings::default()
            },
        );
        assert!(all.findings[0].muted);
    }

    fn unproven(name: &str, started_at: Option<i64>) -> Observation {
        Observation::Unproven {
            worker: "http://10.0.1.25:8083".into(),
            views: wire::expanded(&file(name)).unwrap(),
            started_at,
        }
    }

    fn missing_since(at: i64) -> BTreeMap<String, ConnectorState> {
        desired()
            .into_iter()
            .map(|d| {
                let state = ConnectorState {
                    missing_since: Some(at),
                    ..Default::default()
                };
                (d.name, state)
            })
            .collect()
    }

    #[test]
    fn a_worker_without_health_is_warm_once_it_lists_what_it_holds_or_has_been_up_for_the_warm_up() {
        const MIN: i64 = 60_000;
        let cold = |since: i64| Warmth::Cold { until: since + 5 * MIN };
        // (file, task started, first run that saw them unlisted, expected); warm-up 5 minutes.
        let cases = [
            (
                "expand-empty.json",
                Some(NOW - 4 * MIN - 59_000),
                None,
                cold(NOW - 4 * MIN - 59_000),
            ),
            ("expand-empty.json", Some(NOW - 5 * MIN), None, Warmth::Warm),
            ("expand-empty.json", Some(NOW - 5 * MIN - 1_000), None, Warmth::Warm),
            ("expand-empty.json", None, None, cold(NOW)),
            (
                "expand-empty.json",
                None,
                Some(NOW - 4 * MIN - 59_000),
                cold(NOW - 4 * MIN - 59_000),
            ),
            ("expand-empty.json", None, Some(NOW - 5 * MIN), Warmth::Warm),
            // The task's start wins over the runs' memory: a new task restarts the warm-up.
            (
                "expand-empty.json",
                Some(NOW - MIN),
                Some(NOW - 30 * MIN),
                cold(NOW - MIN),
            ),
            ("expand-healthy.json", None, None, Warmth::Warm),
        ];
        for (name, started, since, expected) in cases {
            let views = wire::expanded(&file(name)).unwrap();
            let previous = since.map(missing_since).unwrap_or_default();
            assert_eq!(
                warmth(&desired(), &views, &previous, started, 5 * MIN, NOW),
                expected,
                "{name} started {started:?} unlisted since {since:?}"
            );
        }
        let nothing_wanted = warmth(&[], &[], &BTreeMap::new(), None, 5 * MIN, NOW);
        assert_eq!(nothing_wanted, Warmth::Warm);

        // Partly read: appian-sink, listed at the last run, is not listed yet. Never listed
        // before, it would be missing for real.
        let partial = wire::expanded(&file("expand-paused-drifted-one-missing.json")).unwrap();
        let held = |appian: ConnectorState| BTreeMap::from([("appian-sink".to_string(), appian)]);
        let seen = held(ConnectorState::default());
        assert_eq!(
            warmth(&desired(), &partial, &seen, Some(NOW - MIN), 5 * MIN, NOW),
            cold(NOW - MIN)
        );
        assert_eq!(
            warmth(&desired(), &partial, &seen, Some(NOW - 5 * MIN), 5 * MIN, NOW),
            Warmth::Warm
        );
        let gone = held(ConnectorState {
            missing_since: Some(NOW - MIN),
            ..Default::default()
        });
        assert_eq!(
            warmth(&desired(), &partial, &gone, Some(NOW), 5 * MIN, NOW),
            Warmth::Warm
        );
        assert_eq!(
            warmth(&desired(), &partial, &BTreeMap::new(), Some(NOW), 5 * MIN, NOW),
            Warmth::Warm
        );
    }

    #[test]
    fn a_cold_worker_without_health_is_not_judged_and_its_empty_list_recreates_nothing() {
        let e = run(
            &unproven("expand-empty.json", None),
            &BTreeMap::new(),
            &Settings::default(),
        );
        assert_eq!(categories(&e), [("worker-rebalancing", None, None)]);
        assert_eq!(e.findings[0].severity, Severity::Info);
        assert!(
            e.findings[0].summary.contains("lists none of the 2 connectors"),
            "{}",
            e.findings[0].summary
        );
        assert!(e.actions.is_empty(), "{:?}", e.actions);
        assert_eq!(e.warming_until, Some(NOW + 5 * 60_000));
        // The first unlisted run is remembered, so a worker whose start is unknown is judged later.
        assert!(
            e.states.values().all(|s| s.missing_since == Some(NOW)),
            "{:?}",
            e.states
        );
        let later = evaluate(
            &desired(),
            &unproven("expand-empty.json", None),
            &e.states,
            &Settings::default(),
            NOW + 5 * 60_000,
        );
        assert!(later.warming_until.is_none());
        assert_eq!(
            later.actions.len(),
            2,
            "both recreated once the warm-up is over: {:?}",
            later.actions
        );
    }

    #[test]
    fn a_warm_worker_without_health_is_judged_as_one_with_health() {
        let warm = run(
            &unproven("expand-paused-drifted-one-missing.json", None),
            &BTreeMap::new(),
            &Settings::default(),
        );
        let with_health = run(
            &observe("expand-paused-drifted-one-missing.json"),
            &BTreeMap::new(),
            &Settings::default(),
        );
        assert_eq!(warm, with_health);
        assert!(matches!(&warm.actions[..], [Action::Recreate { connector }] if connector == "appian-sink"));
        assert_eq!(warm.states["appian-sink"].missing_since, Some(NOW));
        let listed = run(
            &unproven("expand-healthy.json", None),
            &missing_since(NOW - 1),
            &Settings::default(),
        );
        assert!(
            listed.states.values().all(|s| s.missing_since.is_none()),
            "cleared once listed"
        );

        // Partly read: appian-sink, listed at the last run, is not listed yet.
        let held = BTreeMap::from([("appian-sink".to_string(), ConnectorState::default())]);
        let partial = run(
            &unproven("expand-paused-drifted-one-missing.json", Some(NOW)),
            &held,
            &Settings::default(),
        );
        assert!(partial.actions.is_empty(), "{:?}", partial.actions);
        let said = &partial.findings[0].summary;
        assert!(said.contains("lists only 1 of the 2 connectors"), "{said}");
        assert_eq!(partial.states["appian-sink"].missing_since, Some(NOW));
        assert!(
            !partial.states.contains_key("seatool-sink"),
            "a listed connector's state is left as it was"
        );
    }

    #[test]
    fn a_worker_that_cannot_be_judged_gives_one_cluster_finding() {
        let cases = [
            (
                Observation::Unreachable {
                    detail: "cannot reach http://10.0.1.25:8083".into(),
                },
                "worker-unreachable",
                Severity::Critical,
            ),
            (
                Observation::NotReady {
                    worker: "http://10.0.1.25:8083".into(),
                },
                "worker-rebalancing",
                Severity::Info,
            ),
            (
                Observation::Rebalancing {
                    worker: "w".into(),
                    message: "no known leader URL".into(),
                },
                "worker-rebalancing",
                Severity::Info,
            ),
        ];
        for (obs, category, severity) in cases {
            let e = run(&obs, &BTreeMap::new(), &Settings::default());
            assert_eq!(e.findings.len(), 1, "{obs:?}");
            assert_eq!(
                (e.findings[0].category.id(), e.findings[0].severity),
                (category, severity)
            );
            assert!(
                e.actions.is_empty() && e.states.is_empty(),
                "nothing judged, nothing changed"
            );
        }
    }

    #[test]
    fn a_worker_not_ready_for_ten_minutes_is_unreachable_and_a_judged_run_ends_the_stretch() {
        let settings = Settings::default();
        let not_ready = Observation::NotReady {
            worker: "http://w:8083".into(),
        };
        let rebalancing = Observation::Rebalancing {
            worker: "http://w:8083".into(),
            message: "rebalance in progress".into(),
        };
        let at = |obs: &Observation, before: &ClusterState, now: i64| {
            let mut eval = evaluate(&desired(), obs, &BTreeMap::new(), &settings, now);
            let kept = judge_readiness(&mut eval, obs, before, &settings, now);
            (eval.findings[0].category, eval.findings[0].severity, kept)
        };
        let (category, _, started) = at(&not_ready, &ClusterState::default(), NOW);
        assert_eq!(
            (category, started.not_judged_since),
            (Category::WorkerRebalancing, Some(NOW))
        );
        for obs in [&not_ready, &rebalancing] {
            let (category, severity, kept) = at(obs, &started, NOW + 9 * 60_000 + 59_000);
            assert_eq!(
                (category, severity),
                (Category::WorkerRebalancing, Severity::Info),
                "9:59"
            );
            assert_eq!(kept, started, "the stretch keeps its start");
            let (category, severity, _) = at(obs, &started, NOW + 10 * 60_000);
            assert_eq!(
                (category, severity),
                (Category::WorkerUnreachable, Severity::Critical),
                "10:00"
            );
        }
        let judged = observe("expand-healthy.json");
        let mut eval = run(&judged, &BTreeMap::new(), &settings);
        assert_eq!(
            judge_readiness(&mut eval, &judged, &started, &settings, NOW + 60 * 60_000),
            ClusterState::default()
        );
    }
}
