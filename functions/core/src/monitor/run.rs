//! The `testConnectors` use case: one monitor run, end to end, through the ports.
//!
//! Read (which worker answers, the connectors in one call, the stored state) → evaluate (pure) →
//! act (each action claimed first with a conditional write, so overlapping runs never both act)
//! → alert (each notice claimed the same way) → metrics and a report.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::connect::control::{PayloadError, parse_request};
use crate::connect::ports::{ConnectorConfigs, LoadedConfigs, Readiness, RestartOutcome};
use crate::connect::resume::{Applied, ApplyError, NoProbe, SinkTables, TableProbe, apply};
use crate::connect::{ConnectApi, ConnectError, ConnectorConfig};
use crate::error_chain;
use crate::metrics::{Unit, emf_line};
use crate::monitor::alerting::alert::{
    Incident, Notice, NoticeKind, ResolveScope, plan_notices, render, resolution_waits,
};
use crate::monitor::config::MonitorConfig;
use crate::monitor::judge::evaluate::{Observation, evaluate, judge_readiness};
use crate::monitor::judge::finding::{Category, Finding};
use crate::monitor::judge::lag::{Brokers, ConnectorLag, LagReading, MeasureError};
use crate::monitor::judge::state::{Action, ConnectorState, Evaluation, MAX_FAILED_RESTART_CALLS, Settings};
use crate::monitor::ports::{AlertPublisher, Clock, Located, MonitorStore, ResolvedIncident, StateError, Workers};

/// The `testConnectors` use case: its ports and settings, with one method per job. The Lambda
/// handler and `connectorctl check` both build one and call it.
pub struct Monitor<C, W, S, P, K, B = crate::monitor::judge::lag::NoBrokers, T = NoProbe> {
    config: MonitorConfig,
    configs: C,
    workers: W,
    /// The brokers the sink connectors read, for their lag; `None`: the lag is not measured.
    brokers: Option<B>,
    store: S,
    alerts: P,
    clock: K,
    /// The sink tables' probe: a missing sink of `SINK_TABLES` is recreated through
    /// [`crate::connect::resume::apply`] (never resumed into an empty table behind its commits).
    probe: Option<T>,
}

/// Why a run failed outright.
#[derive(Debug, thiserror::Error)]
pub enum MonitorFailure {
    /// The payload is not usable.
    #[error(transparent)]
    InvalidPayload(#[from] PayloadError),
    /// No cluster to check.
    #[error("no cluster to check: give {{\"cluster\": ...}} or set CLUSTER")]
    NoCluster,
    /// The desired configs could not be read.
    #[error("cannot read the connector configs: {0}")]
    Configs(String),
    /// The monitor state could not be read or written.
    #[error("monitor state unavailable: {}", .0.why)]
    State(StateFailure),
    /// Alerts could not be sent (the next run sends them again).
    #[error("alerts not sent: {0}")]
    Alerts(String),
    /// The run was cut at the function's deadline.
    #[error("the run did not finish within {0} s")]
    Budget(u64),
    /// A `{"cluster"}` payload names none of the configured clusters (`CLUSTERS`).
    #[error("no configured cluster is named {0:?} (CLUSTERS)")]
    UnknownCluster(String),
}

/// The state table could not be used: why, and the metric line that says so. The monitor does
/// not page about its own state (what would dedup the page is what failed, so each cold start
/// paged again): the `monitor-state-unavailable` alarm on that metric does, once per outage,
/// whichever instance runs, and resolves when a run uses the table again (it emits 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateFailure {
    /// What failed.
    pub why: String,
    /// `MonitorStateUnavailable` = 1 for the cluster, to print although the run failed.
    pub metrics: Vec<String>,
}

impl MonitorFailure {
    /// The metric lines a failed run still owes (the state table's unavailability).
    pub fn metrics(&self) -> &[String] {
        match self {
            Self::State(f) => &f.metrics,
            _ => &[],
        }
    }

    /// The Lambda error type this failure is reported as (one of a small fixed set).
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::InvalidPayload(_) => "InvalidPayload",
            Self::NoCluster => "NoCluster",
            Self::Configs(_) => "ConfigsUnavailable",
            Self::State(_) => "StateUnavailable",
            Self::Alerts(_) => "AlertsNotSent",
            Self::Budget(_) => "RunBudgetExceeded",
            Self::UnknownCluster(_) => "UnknownCluster",
        }
    }
}

impl<C, W, S, P, K, B> Monitor<C, W, S, P, K, B, NoProbe> {
    /// A monitor that reads the desired connectors from `configs`, reaches the workers through
    /// `workers` and the brokers (for the lag) through `brokers`, keeps its state in `store`,
    /// alerts through `alerts` and budgets by `clock`.
    pub fn new(
        config: MonitorConfig,
        configs: C,
        workers: W,
        brokers: Option<B>,
        store: S,
        alerts: P,
        clock: K,
    ) -> Self {
        Self {
            config,
            configs,
            workers,
            brokers,
            store,
            alerts,
            clock,
            probe: None,
        }
    }

    /// The same monitor, recreating the sinks of `SINK_TABLES` through the check of `probe`.
    pub fn with_table_probe<T2: TableProbe>(self, probe: T2) -> Monitor<C, W, S, P, K, B, T2> {
        Monitor {
            config: self.config,
            configs: self.configs,
            workers: self.workers,
            brokers: self.brokers,
            store: self.store,
            alerts: self.alerts,
            clock: self.clock,
            probe: Some(probe),
        }
    }
}

impl<C, W, S, P, K, B, T> Monitor<C, W, S, P, K, B, T>
where
    C: ConnectorConfigs,
    W: Workers,
    S: MonitorStore,
    P: AlertPublisher,
    K: Clock,
    B: Brokers,
    T: TableProbe,
{
    /// Its settings.
    pub fn config(&self) -> &MonitorConfig {
        &self.config
    }

    /// One run for the payload (`{"cluster": ...}`, or a scheduled event: the configured
    /// cluster), as of the clock's now.
    pub async fn run(&self, request: &Value) -> Result<RunReport, MonitorFailure> {
        self.run_at(request, self.clock.now_millis()).await
    }

    /// One run as of `now` (epoch milliseconds): the restart backoff and incident durations are
    /// measured against it, which lets tests step through time.
    pub async fn run_at(&self, request: &Value, now: i64) -> Result<RunReport, MonitorFailure> {
        self.judge(request, now, false).await
    }

    /// What a run would do, doing none of it: no action, no state written, no alert sent
    /// (`connectorctl check --dry-run`).
    pub async fn dry_run(&self, request: &Value) -> Result<RunReport, MonitorFailure> {
        self.judge(request, self.clock.now_millis(), true).await
    }

    async fn judge(&self, request: &Value, now: i64, dry_run: bool) -> Result<RunReport, MonitorFailure> {
        let started = self.clock.now_millis();
        let request = parse_request(request)?;
        let cluster = request
            .cluster
            .or_else(|| self.config.cluster.clone())
            .ok_or(MonitorFailure::NoCluster)?;
        // Secrets Manager failing costs what needs it (a missing connector recreated, drift):
        // the connectors the worker lists are still judged on their status, healed and paged.
        let (desired, problems, configs_unread) = match self.configs.list(&self.config.config_secret_prefix).await {
            Ok(LoadedConfigs { configs, problems }) => {
                (configs, problems.iter().map(|p| error_chain(p)).collect(), None)
            }
            Err(e) => (Vec::new(), Vec::new(), Some(error_chain(&e))),
        };
        let Located { workers, problem } = self.workers.locate(&cluster).await;
        let (workers, worker_started_at): (Vec<_>, Vec<_>) = workers.into_iter().unzip();
        let ctx = RunContext {
            cluster,
            desired,
            settings: self.config.settings(),
            runbook_base: self.config.runbook_base_url.clone(),
            reminder_every_ms: self.config.reminder.as_millis() as i64,
            resolve_after_ms: self.config.resolve_after.as_millis() as i64,
            metrics_namespace: self.config.metrics_namespace.clone(),
            group_alerts_at: self.config.group_alerts_at,
            no_worker_reason: problem,
            worker_started_at,
            now,
            dry_run,
            configs_unread,
            sink_tables: self.config.sink_tables.clone(),
        };
        // Budget the work, not the run: an action starts only while the slowest one (two REST
        // calls at their timeout) still fits in the budget; what is claimed is always finished.
        let budget_ms = self.config.run_budget.as_millis() as i64;
        let reserve_ms = 2 * self.config.connect_timeout.as_millis() as i64;
        let may_start = || self.clock.now_millis() - started + reserve_ms <= budget_ms;
        // Lag reads last at most half the budget (the Fetch of a hung broker is never waited
        // out): acting, keeping state and alerting keep the other half.
        let pace = Pace {
            may_start: &may_start,
            clock: &self.clock,
            lag_until: started + budget_ms / 2,
            budget_ms,
        };
        // Boxed: the run is a deep future; unboxed, callers that await it beside other work (a
        // fleet of clusters, a test) pass the compiler's query depth.
        let out = Box::pin(run_monitor(
            &workers,
            self.brokers.as_ref(),
            self.probe.as_ref(),
            &self.store,
            &self.alerts,
            &ctx,
            &pace,
        ))
        .await;
        let mut out = match out {
            Ok(out) => out,
            Err(e) => {
                let metrics = if dry_run {
                    Vec::new()
                } else {
                    vec![state_metric(&ctx, true)]
                };
                return Err(MonitorFailure::State(StateFailure {
                    why: error_chain(&e),
                    metrics,
                }));
            }
        };
        out.report["configProblems"] = json!(problems);
        out.report["configsUnread"] = json!(ctx.configs_unread);
        out.configs_unread = ctx.configs_unread.clone();
        out.report["durationMillis"] = json!(self.clock.now_millis() - started);
        Ok(out)
    }
}

/// What a run needs to know besides the ports.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// The ECS cluster (or name) the connectors belong to: metric dimension, alert subject.
    pub cluster: String,
    /// The connectors that should exist, from their secrets.
    pub desired: Vec<ConnectorConfig>,
    /// Policies and mutes.
    pub settings: Settings,
    /// Where the runbook pages live (`https://.../runbooks`).
    pub runbook_base: String,
    /// Remind about an open incident this often (ms).
    pub reminder_every_ms: i64,
    /// A failed connector's incident is resolved once it has run healthy this long (ms).
    pub resolve_after_ms: i64,
    /// The CloudWatch namespace of the metrics.
    pub metrics_namespace: String,
    /// This many connectors failing on one cause are alerted as one cluster incident.
    pub group_alerts_at: usize,
    /// Why no worker could be located, when `workers` is empty (e.g. no RUNNING task).
    pub no_worker_reason: Option<String>,
    /// When each worker's task started (ms since the epoch), in the order of `workers`, where
    /// discovery says: a worker without `/health` is judged once it has been up for the warm-up.
    pub worker_started_at: Vec<Option<i64>>,
    /// Now, in ms since the epoch.
    pub now: i64,
    /// Judge and report only: no action, no state written, no alert sent (`connectorctl check
    /// --dry-run`). The report says what a real run would have done.
    pub dry_run: bool,
    /// Why the desired configs could not be read: then the connectors the worker lists are
    /// judged as they run (no missing connector, no drift), and the invocation fails after.
    pub configs_unread: Option<String>,
    /// `SINK_TABLES`: the table of the sink reading each topic.
    pub sink_tables: SinkTables,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The report returned by `testConnectors`.
    pub report: Value,
    /// EMF lines to print.
    pub metrics: Vec<String>,
    /// Alerts that could not be sent (the run returns an error after printing the rest).
    pub alert_failures: Vec<String>,
    /// Writes of the state that failed, each costing only what it touched (the invocation
    /// fails after the rest of the run, as for alerts).
    pub state_failures: Vec<String>,
    /// Why the desired configs could not be read (the invocation fails after the run).
    pub configs_unread: Option<String>,
    /// The audit entries of this run, for the log.
    pub audit: Vec<crate::monitor::audit::AuditEntry>,
}

/// Why a run could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The state store failed: without it the monitor cannot avoid double restarts and alerts.
    #[error(transparent)]
    State(#[from] StateError),
}

/// Tries the workers in order and observes the first that answers; `started_at` is each one's
/// task start, where known.
pub async fn observe<A: ConnectApi>(
    workers: &[A],
    started_at: &[Option<i64>],
    no_worker_reason: Option<&str>,
) -> (Observation, Option<usize>) {
    let mut problems = Vec::new();
    for (i, api) in workers.iter().enumerate() {
        let readiness = match api.readiness().await {
            Ok(Readiness::Starting) => {
                return (
                    Observation::NotReady {
                        worker: api.url().to_string(),
                    },
                    Some(i),
                );
            }
            Ok(readiness) => readiness,
            Err(e) => {
                problems.push(error_chain(&e));
                continue;
            }
        };
        return match api.list_expanded().await {
            Ok(views) if readiness == Readiness::Unproven => (
                Observation::Unproven {
                    worker: api.url().to_string(),
                    views,
                    started_at: started_at.get(i).copied().flatten(),
                },
                Some(i),
            ),
            Ok(views) => (Observation::Connectors(views), Some(i)),
            Err(ConnectError::Rebalancing { message }) => (
                Observation::Rebalancing {
                    worker: api.url().to_string(),
                    message,
                },
                Some(i),
            ),
            Err(e @ (ConnectError::Timeout { .. } | ConnectError::Unreachable { .. })) => {
                problems.push(error_chain(&e));
                continue;
            }
            Err(e) => (
                Observation::Unreachable {
                    detail: error_chain(&e),
                },
                Some(i),
            ),
        };
    }
    if workers.is_empty() {
        problems.push(no_worker_reason.unwrap_or("no worker was located").to_string());
    }
    (
        Observation::Unreachable {
            detail: problems.join("; "),
        },
        None,
    )
}

/// The run's pace: an action starts only while `may_start` says the budget allows it, and lag
/// reads end at `lag_until` (ms since the epoch, by `clock`) of a `budget_ms` budget.
struct Pace<'a, K> {
    may_start: &'a (dyn Fn() -> bool + Sync),
    clock: &'a K,
    lag_until: i64,
    budget_ms: i64,
}

/// One monitor run, at `pace`.
#[allow(clippy::too_many_arguments)]
async fn run_monitor<A, B, S, P, K, T>(
    workers: &[A],
    brokers: Option<&B>,
    probe: Option<&T>,
    store: &S,
    alerts: &P,
    ctx: &RunContext,
    pace: &Pace<'_, K>,
) -> Result<RunReport, RunError>
where
    A: ConnectApi,
    B: Brokers,
    S: MonitorStore,
    P: AlertPublisher,
    K: Clock,
    T: TableProbe,
{
    let may_start = pace.may_start;
    let (observation, used) = observe(workers, &ctx.worker_started_at, ctx.no_worker_reason.as_deref()).await;
    let api = used.map(|i| &workers[i]);
    let stored = store.load(&ctx.cluster).await?;
    let listed = judged_as_running(ctx, &observation, &stored);
    let ctx = listed.as_ref().unwrap_or(ctx);
    let (previous, orphaned) = previous_states(&stored, ctx.now);
    let mut eval = evaluate(&ctx.desired, &observation, &previous, &ctx.settings, ctx.now);
    let cluster_before = stored.cluster.as_ref().map(|v| v.value.clone()).unwrap_or_default();
    let cluster_state = judge_readiness(&mut eval, &observation, &cluster_before, &ctx.settings, ctx.now);
    let mut metrics = Vec::new();

    // Progress, not just status: each judged sink connector's lag.
    let lags = match (api, brokers) {
        (Some(api), Some(brokers)) if eval.warming_until.is_none() => {
            read_lags(api, brokers, &observation, &mut eval, &ctx.settings, ctx.now, pace).await
        }
        _ => BTreeMap::new(),
    };

    if ctx.dry_run {
        let mut out = dry_run_report(ctx, (&observation, &lags), api.map(|a| a.url()), &stored, eval);
        put_lags(&mut out.report, &lags);
        return Ok(out);
    }

    // Decisions to stand back go in the audit trail when they begin; actions as they are made.
    let mut audit = crate::monitor::audit::holds(&mut eval, &ctx.cluster, &previous, ctx.now);
    // Writes of the state that failed: each costs only what it touches; the run goes on, then
    // fails the invocation (its alarm pages) and says MonitorStateUnavailable.
    let mut state_failures = Vec::new();
    let done = act(
        api,
        probe,
        store,
        ctx,
        &stored,
        &previous,
        &mut eval,
        &mut audit,
        &mut metrics,
        may_start,
        &mut state_failures,
    )
    .await?;
    note_orphaned(&mut eval, orphaned);
    let audit_failures = keep_state(
        store,
        ctx,
        &stored,
        &eval,
        &audit,
        &done,
        (&cluster_state, &cluster_before),
        &mut state_failures,
    )
    .await?;
    let (sent, alert_failures) = send_notices(
        store,
        alerts,
        ctx,
        &stored,
        (&observation, &lags),
        &mut eval,
        &mut state_failures,
    )
    .await?;
    metrics.extend(health_metrics(ctx, &eval, &lags, state_failures.is_empty()));

    let mut report = report(ctx, &observation, api.map(|a| a.url()), &eval, sent, &alert_failures);
    put_lags(&mut report, &lags);
    report["audit"] = json!(audit);
    report["auditFailures"] = json!(audit_failures);
    report["stateFailures"] = json!(state_failures);
    Ok(RunReport {
        report,
        metrics,
        alert_failures,
        state_failures,
        configs_unread: None,
        audit,
    })
}

/// The connectors' states the run starts from, and the claims a cut run left orphaned (given
/// back: connector and claim time).
fn previous_states(
    stored: &crate::monitor::ports::StoredState,
    now: i64,
) -> (BTreeMap<String, ConnectorState>, Vec<(String, i64)>) {
    let mut orphaned = Vec::new();
    let previous = stored
        .connectors
        .iter()
        .map(|(k, v)| {
            let (state, claimed_at) = v.value.clone().without_orphaned_claim(now);
            if let Some(at) = claimed_at {
                orphaned.push((k.clone(), at));
            }
            (k.clone(), state)
        })
        .collect();
    (previous, orphaned)
}

/// Says on each finding of a connector whose claim was given back that the claimed action was
/// never confirmed made.
fn note_orphaned(eval: &mut Evaluation, orphaned: Vec<(String, i64)>) {
    for (name, at) in orphaned {
        let note = format!(
            " (an action claimed at {} by a run that was cut was never confirmed made: not counted)",
            crate::monitor::time::iso8601(at)
        );
        for f in eval
            .findings
            .iter_mut()
            .filter(|f| f.connector.as_deref() == Some(&name))
        {
            if let Some(action) = &mut f.action {
                action.push_str(&note);
            }
        }
    }
}

/// Where the desired configs could not be read, the run's context with the listed connectors
/// it knows as their own desired configs ([`as_running`]); otherwise none (the context stands).
fn judged_as_running(
    ctx: &RunContext,
    observation: &Observation,
    stored: &crate::monitor::ports::StoredState,
) -> Option<RunContext> {
    match (&ctx.configs_unread, observation) {
        (Some(_), Observation::Connectors(views) | Observation::Unproven { views, .. }) => Some(RunContext {
            desired: as_running(views, stored),
            ..ctx.clone()
        }),
        _ => None,
    }
}

/// The listed connectors the monitor has judged before (its state knows them: they were
/// desired), as their own desired configs: what can be judged without the secrets.
fn as_running(
    views: &[crate::connect::ConnectorView],
    stored: &crate::monitor::ports::StoredState,
) -> Vec<ConnectorConfig> {
    views
        .iter()
        .filter(|v| stored.connectors.contains_key(&v.name))
        .filter_map(|v| {
            v.info.as_ref().map(|info| ConnectorConfig {
                name: v.name.clone(),
                config: info.config.clone(),
            })
        })
        .collect()
}

/// What acting did: the connectors acted on, and those postponed for the next run.
struct Done {
    acted: std::collections::BTreeSet<String>,
    postponed: std::collections::BTreeSet<String>,
}

/// Acts: claim, then call; once the budget is spent, claim nothing more. Each action made is
/// audited and its outcome annotated on its findings.
#[allow(clippy::too_many_arguments)]
async fn act<A: ConnectApi, S: MonitorStore, T: TableProbe>(
    api: Option<&A>,
    probe: Option<&T>,
    store: &S,
    ctx: &RunContext,
    stored: &crate::monitor::ports::StoredState,
    previous: &BTreeMap<String, ConnectorState>,
    eval: &mut Evaluation,
    audit: &mut Vec<crate::monitor::audit::AuditEntry>,
    metrics: &mut Vec<String>,
    may_start: &(dyn Fn() -> bool + Sync),
    failures: &mut Vec<String>,
) -> Result<Done, RunError> {
    let mut acted = std::collections::BTreeSet::new();
    let mut postponed = std::collections::BTreeSet::new();
    for action in eval.actions.clone() {
        let name = action.connector().to_string();
        let expected = stored.connectors.get(&name).map(|v| v.version);
        let mut next = eval.states.get(&name).cloned().unwrap_or_default();
        let before = previous.get(&name).cloned().unwrap_or_default();
        let made = next.clone();
        // The claim remembers what it counted, until the action is confirmed made.
        next.acting = Some(crate::monitor::judge::state::Acting {
            at: ctx.now,
            restart: before.restart,
            stalled: before.progress.restart,
        });
        let claimed = if may_start() {
            Some(store.save_connector(&ctx.cluster, &name, &next, expected).await)
        } else {
            None
        };
        let outcome = if claimed.is_none() {
            // Its state stays as it was: the next run decides it afresh.
            postponed.insert(name.clone());
            "not started: the run's time budget is spent; the next run takes it up".to_string()
        } else if let Some(Err(e)) = &claimed {
            // Costs this action only: the others are still claimed, made and alerted.
            postponed.insert(name.clone());
            let why = error_chain(e);
            failures.push(format!("{name}: the claim of its action was not written: {why}"));
            format!("not started: its claim could not be written to the state table ({why}); the next run takes it up")
        } else if let Some(Ok(false)) = claimed {
            "another monitor run is handling it".to_string()
        } else if let Some(api) = api {
            acted.insert(name.clone());
            let guard = probe.map(|p| (p, &ctx.sink_tables));
            let (mut text, undo) = execute(api, guard, &action, &ctx.desired).await;
            let mut restored = previous.get(&name).cloned().unwrap_or_default();
            let give_back = follow_up(undo, &action, &mut restored, &mut text, eval);
            // The claim followed through: given back, or confirmed made. A confirmation that is
            // not written leaves the claim, which a later run gives back (a restart too many,
            // never one counted and not made).
            let settled = if give_back { &restored } else { &made };
            let _ = store
                .save_connector(&ctx.cluster, &name, settled, expected.map_or(Some(1), |v| Some(v + 1)))
                .await;
            if !give_back && let Action::Restart { .. } = action {
                metrics.push(restart_metric(ctx, eval, &name));
            }
            audit.push(crate::monitor::audit::of_action(
                &ctx.cluster,
                &action,
                &eval.findings,
                &text,
                &next,
                &ctx.settings.policy,
                ctx.now,
            ));
            if let Action::Restart {
                attempt, fingerprint, ..
            } = &action
                && *attempt > 1
            {
                earlier_restarts(store, ctx, eval, &name, fingerprint, *attempt).await;
            }
            text
        } else {
            "no worker to act through".to_string()
        };
        annotate(eval, &action, &outcome);
    }
    Ok(Done { acted, postponed })
}

/// What an action's outcome leaves to do: whether its claim is given back (`restored`, with
/// its failed calls counted) rather than confirmed, and `text` completed to say so.
fn follow_up(
    undo: Undo,
    action: &Action,
    restored: &mut ConnectorState,
    text: &mut String,
    eval: &mut Evaluation,
) -> bool {
    match undo {
        Undo::No => false,
        Undo::Present => {
            // Not missing after all: nothing to page for.
            let name = action.connector();
            for f in eval.findings.iter_mut() {
                if f.connector.as_deref() == Some(name) && f.category == Category::ConnectorMissing {
                    f.severity = crate::monitor::judge::finding::Severity::Info;
                }
            }
            false
        }
        // Not done (a rebalance): give the attempt back so the next run tries again.
        Undo::Rebalance => true,
        // The call failed: not a restart, unless it keeps failing.
        Undo::CallFailed => {
            restored.failed_restart_calls += 1;
            let calls = restored.failed_restart_calls;
            if let Action::Restart { attempt, budget, .. } | Action::RestartStalled { attempt, budget, .. } = action
                && calls >= MAX_FAILED_RESTART_CALLS
            {
                *text = format!("{text}; {calls} failed calls in a row: counted as restart {attempt} of {budget}");
                false
            } else {
                *text = format!(
                    "{text}; not counted; tried again next run (failed call {calls} of {MAX_FAILED_RESTART_CALLS})"
                );
                true
            }
        }
    }
}

/// `RestartsAttempted` for a restart made of `name`, by the category it was made for.
fn restart_metric(ctx: &RunContext, eval: &Evaluation, name: &str) -> String {
    let category = eval
        .findings
        .iter()
        .find(|f| f.connector.as_deref() == Some(name) && f.category == Category::ConnectorFailed)
        .map_or(Category::TaskFailed, |f| f.category);
    let mut d = connector_dims(ctx, name);
    d.push(("Category", category.id().to_string()));
    line(ctx, &d, &[("RestartsAttempted", Unit::Count, 1.0)])
}

/// Keeps the audit entries (a record only: a write that fails is reported, not fatal) and the
/// rest of the state: healthy periods, UNASSIGNED counts, the cluster's readiness stretch.
#[allow(clippy::too_many_arguments)]
async fn keep_state<S: MonitorStore>(
    store: &S,
    ctx: &RunContext,
    stored: &crate::monitor::ports::StoredState,
    eval: &Evaluation,
    audit: &[crate::monitor::audit::AuditEntry],
    done: &Done,
    (cluster_state, cluster_before): (
        &crate::monitor::judge::state::ClusterState,
        &crate::monitor::judge::state::ClusterState,
    ),
    failures: &mut Vec<String>,
) -> Result<Vec<String>, RunError> {
    let mut audit_failures = Vec::new();
    for entry in audit {
        if let Err(e) = store.record_audit(&ctx.cluster, entry).await {
            audit_failures.push(error_chain(&e));
        }
    }
    // Keep the rest of the state (healthy periods, UNASSIGNED counts); losing a race here is fine.
    for (name, state) in &eval.states {
        // Against what is stored: a claim given back must be written even if nothing else moved.
        let unchanged = stored.connectors.get(name).map(|v| &v.value) == Some(state);
        if done.acted.contains(name) || done.postponed.contains(name) || unchanged {
            continue;
        }
        let expected = stored.connectors.get(name).map(|v| v.version);
        // Costs this connector's state only: the rest is still kept and the alerts still sent.
        if let Err(e) = store.save_connector(&ctx.cluster, name, state, expected).await {
            failures.push(format!("{name}: its state was not written: {}", error_chain(&e)));
        }
    }

    if cluster_state != cluster_before {
        // Losing a race here is fine: the other run kept the same stretch.
        if let Err(e) = store
            .save_cluster(&ctx.cluster, cluster_state, stored.cluster.as_ref().map(|v| v.version))
            .await
        {
            failures.push(format!("the cluster's state was not written: {}", error_chain(&e)));
        }
    }

    Ok(audit_failures)
}

/// Alerts: the notices owed, each claimed in the store, then published; a claim whose publish
/// fails is given back. Returns what was sent and what could not be.
async fn send_notices<S: MonitorStore, P: AlertPublisher>(
    store: &S,
    alerts: &P,
    ctx: &RunContext,
    stored: &crate::monitor::ports::StoredState,
    (observation, lags): (&Observation, &BTreeMap<String, LagReading>),
    eval: &mut Evaluation,
    failures: &mut Vec<String>,
) -> Result<(Vec<Value>, Vec<String>), RunError> {
    let open = connect_incidents(stored);
    crate::monitor::alerting::group::group_by_cause(&mut eval.findings, &open, &ctx.cluster, ctx.group_alerts_at);
    let mut notices = notices_owed(ctx, (observation, lags), &open, eval);
    update_members(store, ctx, stored, &open, eval, &mut notices, failures).await;
    // ecsTaskState opens the service's stop incidents; no event says it has run stable since,
    // so each run resolves those whose replacement has.
    notices.extend(crate::monitor::events::ecs::recovered(
        stored.incidents.values().map(|v| &v.value),
        ctx.now,
    ));
    let mut sent = Vec::new();
    let mut alert_failures = Vec::new();
    for notice in &notices {
        let existing = stored.incidents.get(&notice.incident.key).map(|v| v.version);
        // A claim that cannot be written costs this notice only: it is not sent (nothing would
        // keep it from being sent again every run), and the next run owes it again.
        match claim(store, ctx, notice, existing).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                failures.push(format!("{}: {e}", notice.incident.key));
                continue;
            }
        }
        let message = render(notice, &ctx.cluster, &ctx.runbook_base, ctx.now);
        match alerts.publish(&message).await {
            Ok(()) => {
                if notice.kind == NoticeKind::Open {
                    crate::monitor::lifecycle::mark_sent(
                        store,
                        &ctx.cluster,
                        &notice.incident,
                        existing.map_or(1, |v| v + 1),
                    )
                    .await;
                }
                if notice.kind == NoticeKind::Resolved {
                    let resolved = ResolvedIncident {
                        incident: notice.incident.clone(),
                        resolved_at: ctx.now,
                    };
                    let _ = store.record_resolved(&ctx.cluster, &resolved).await;
                }
                sent.push(json!({"subject": message.subject, "state": message.state}))
            }
            Err(e) => {
                alert_failures.push(error_chain(&e));
                give_back(store, ctx, notice, existing, &open).await;
            }
        }
    }
    Ok((sent, alert_failures))
}

/// A connector joined or left an open incident of one cause: its members change with the
/// notice it gets anyway, or else with one conditional write of their own.
async fn update_members<S: MonitorStore>(
    store: &S,
    ctx: &RunContext,
    stored: &crate::monitor::ports::StoredState,
    open: &BTreeMap<String, Incident>,
    eval: &Evaluation,
    notices: &mut [Notice],
    failures: &mut Vec<String>,
) {
    for changed in crate::monitor::alerting::group::membership_changes(open, &eval.findings, &ctx.cluster) {
        match notices.iter_mut().find(|n| n.incident.key == changed.key) {
            Some(notice) => {
                notice.incident.members = changed.members;
                notice.incident.summary = changed.summary;
            }
            None => {
                let version = stored.incidents.get(&changed.key).map_or(0, |v| v.version);
                if let Err(e) = store.update_incident(&ctx.cluster, &changed, version).await {
                    failures.push(format!(
                        "{}: its members were not written: {}",
                        changed.key,
                        error_chain(&e)
                    ));
                }
            }
        }
    }
}

/// Claims `notice` in the store (the incident at version `existing`, if stored) before it is
/// published: `Ok(false)` when another run claimed it or there is nothing to send (a page
/// never sent is closed silently: nobody to tell it is over), an error naming the failed write.
async fn claim<S: MonitorStore>(
    store: &S,
    ctx: &RunContext,
    notice: &Notice,
    existing: Option<u64>,
) -> Result<bool, String> {
    let (cluster, key, version) = (&ctx.cluster, &notice.incident.key, existing.unwrap_or(0));
    // A page is claimed as unsent, and marked sent once published: a run cut in between
    // leaves it for the next run to send.
    let claimed = match notice.kind {
        NoticeKind::Open if existing.is_some() => {
            store.update_incident(cluster, &notice.incident.unsent(), version).await
        }
        NoticeKind::Open => store.open_incident(cluster, &notice.incident.unsent()).await,
        NoticeKind::Resolved if notice.incident.unsent => {
            return match store.close_incident(cluster, key, version).await {
                Ok(_) => Ok(false),
                Err(e) => Err(format!("not closed: {}", error_chain(&e))),
            };
        }
        NoticeKind::Reminder | NoticeKind::Escalated { .. } => {
            store.update_incident(cluster, &notice.incident, version).await
        }
        NoticeKind::Resolved => store.close_incident(cluster, key, version).await,
    };
    claimed.map_err(|e| format!("its claim was not written: {}", error_chain(&e)))
}

/// Undoes the claim of a notice whose publish failed, so that a later run sends it.
async fn give_back<S: MonitorStore>(
    store: &S,
    ctx: &RunContext,
    notice: &Notice,
    existing: Option<u64>,
    open: &BTreeMap<String, Incident>,
) {
    let (cluster, key) = (&ctx.cluster, &notice.incident.key);
    let _ = match notice.kind {
        // Sent again by a later run (it stays claimed as unsent).
        NoticeKind::Open if existing.is_some() => Ok(true),
        NoticeKind::Open => store.close_incident(cluster, key, 1).await,
        NoticeKind::Reminder | NoticeKind::Escalated { .. } => {
            let back = open.get(key).cloned().unwrap_or_else(|| notice.incident.clone());
            store.update_incident(cluster, &back, existing.unwrap_or(0) + 1).await
        }
        NoticeKind::Resolved => store.open_incident(cluster, &notice.incident).await,
    };
}

/// The health datapoints of each connector, its lag where measured, and the heartbeat.
fn health_metrics(
    ctx: &RunContext,
    eval: &Evaluation,
    lags: &BTreeMap<String, LagReading>,
    state_written: bool,
) -> Vec<String> {
    let mut metrics = Vec::new();
    for c in &eval.connectors {
        let healthy_connector = matches!(c.state.as_str(), "RUNNING");
        let tasks_healthy = c.healthy && !c.tasks.is_empty();
        let failed = ("FailedTasks", Unit::Count, c.failed_tasks as f64);
        // Paused, stopped or muted on purpose: reported, but no health datapoint, so the
        // connector-unhealthy alarm (missing data: not breaching) does not page for it.
        let muted_until = eval.states.get(&c.name).and_then(|s| s.muted_until);
        let intentional =
            matches!(c.state.as_str(), "PAUSED" | "STOPPED") || ctx.settings.mutes(&c.name, muted_until, ctx.now);
        let health: &[(&str, Unit, f64)] = if intentional {
            &[failed]
        } else {
            &[
                ("ConnectorHealthy", Unit::Count, f64::from(u8::from(healthy_connector))),
                ("TasksHealthy", Unit::Count, f64::from(u8::from(tasks_healthy))),
                failed,
            ]
        };
        metrics.push(line(ctx, &connector_dims(ctx, &c.name), health));
        if let Some(LagReading::Measured(lag)) = lags.get(&c.name) {
            let mut values = vec![("ConsumerLagRecords", Unit::Count, lag.records as f64)];
            if let Some(seconds) = lag.seconds {
                values.push(("ConsumerLagSeconds", Unit::Seconds, seconds as f64));
            }
            metrics.push(line(ctx, &connector_dims(ctx, &c.name), &values));
        }
    }
    let unjudged = eval
        .findings
        .iter()
        .filter(|f| f.category == Category::Unjudged)
        .count();
    metrics.push(line(
        ctx,
        &[("Cluster", ctx.cluster.clone())],
        &[
            ("MonitorHeartbeat", Unit::Count, 1.0),
            ("ConnectorsUnjudged", Unit::Count, unjudged as f64),
        ],
    ));
    metrics.push(state_metric(ctx, !state_written));

    metrics
}

/// Lag reads in flight at once, per cluster.
const LAG_READS_IN_FLIGHT: usize = 4;

/// Runs in a row a connector's lag stays unread before `unjudged` is a warning (alerted).
pub const UNJUDGED_ALERT_AFTER_RUNS: u32 = 3;

/// Reads the lag of every listed sink connector the run wants, a few at once, until the pace's
/// `lag_until`, and judges each one measured. What is not read by then is
/// `unjudged` this run, never waited for: the run still acts, keeps its state and alerts. A
/// worker without the offsets API (before 3.5) or brokers that do not answer make one finding
/// for the run, not one per connector.
async fn read_lags<A: ConnectApi, B: Brokers, K: Clock>(
    api: &A,
    brokers: &B,
    observation: &Observation,
    eval: &mut Evaluation,
    settings: &crate::monitor::judge::state::Settings,
    now: i64,
    pace: &Pace<'_, K>,
) -> BTreeMap<String, LagReading> {
    let views = match observation {
        Observation::Connectors(views) | Observation::Unproven { views, .. } => views,
        _ => return BTreeMap::new(),
    };
    let judged: std::collections::BTreeSet<String> = eval.connectors.iter().map(|c| c.name.clone()).collect();
    let sinks: Vec<Sink<'_>> = views
        .iter()
        .filter_map(|view| match (&view.info, &view.status) {
            (Some(info), Some(status)) if info.kind.as_deref() == Some("sink") && judged.contains(&view.name) => {
                Some((&view.name, info, status))
            }
            _ => None,
        })
        .collect();
    let mut measured = read_until_deadline(api, brokers, &sinks, now, pace).await;
    let mut lags = BTreeMap::new();
    let mut cluster_problem: Option<String> = None;
    let mut fetch_problem: Option<String> = None;
    for &(name, info, status) in &sinks {
        let Some(result) = measured.remove(name) else {
            let why = format!(
                "not read before the run's deadline (lag reads get half of the {} s budget, so that acting, \
                 state and alerts keep the rest)",
                pace.budget_ms / 1000
            );
            unjudged(eval, name, &why);
            lags.insert(name.clone(), LagReading::Unknown(why));
            continue;
        };
        if let Some(state) = eval.states.get_mut(name) {
            state.unjudged_runs = 0;
        }
        let lag = match result {
            Ok((_, lag)) => lag,
            Err(e) => {
                let why = error_chain(&e);
                // The worker's API or the brokers: the same for every connector this run.
                if matches!(e, MeasureError::NoOffsetsApi { .. } | MeasureError::Brokers(_)) {
                    cluster_problem.get_or_insert(why.clone());
                }
                lags.insert(name.clone(), LagReading::Unknown(why));
                continue;
            }
        };
        if let Some(p) = lag.partitions.iter().find(|p| p.age_unknown.is_some()) {
            fetch_problem.get_or_insert(format!(
                "the brokers did not give the oldest waiting record of {}-{}: {}",
                p.topic,
                p.partition,
                p.age_unknown.as_deref().unwrap_or_default()
            ));
        }
        let running = status.connector.state == crate::connect::State::Running
            && !status.tasks.is_empty()
            && status.tasks.iter().all(|t| t.state == crate::connect::State::Running);
        let consumer = crate::monitor::judge::lag::Consumer {
            name,
            tasks: status.tasks.iter().map(|t| t.id).collect(),
            running,
            starts_at_latest: crate::monitor::judge::lag::Consumer::starts_at_latest(&info.config),
        };
        crate::monitor::judge::lag::judge(&consumer, &lag, settings, now, eval);
        lags.insert(name.clone(), LagReading::Measured(lag));
    }
    say_lag_problems(eval, cluster_problem, fetch_problem);
    lags
}

/// A sink connector as listed: its name, config and status.
type Sink<'a> = (
    &'a String,
    &'a crate::connect::ConnectorInfo,
    &'a crate::connect::ConnectorStatus,
);

/// Each sink's lag read, [`LAG_READS_IN_FLIGHT`] at once, until every read is in or the lag's
/// deadline comes, whichever is first: what is missing was not read in time.
async fn read_until_deadline<A: ConnectApi, B: Brokers, K: Clock>(
    api: &A,
    brokers: &B,
    sinks: &[Sink<'_>],
    now: i64,
    pace: &Pace<'_, K>,
) -> BTreeMap<String, Result<(Vec<crate::connect::SinkOffset>, ConnectorLag), MeasureError>> {
    use futures_util::{StreamExt, future::Either, stream};
    let reads = stream::iter(sinks.iter().map(|(name, info, _)| (*name, *info)))
        .map(|(name, info)| async move {
            let measured = crate::monitor::judge::lag::measure(api, brokers, name, &info.config, now).await;
            (name.clone(), measured)
        })
        .buffer_unordered(LAG_READS_IN_FLIGHT);
    let mut reads = std::pin::pin!(reads);
    let left = (pace.lag_until - pace.clock.now_millis()).max(0) as u64;
    let mut deadline = std::pin::pin!(pace.clock.sleep(left));
    let mut measured = BTreeMap::new();
    while let Either::Left((Some((name, result)), _)) =
        futures_util::future::select(reads.next(), deadline.as_mut()).await
    {
        measured.insert(name, result);
    }
    measured
}

/// One info finding for what kept this run's lag reads from the whole cluster (the worker's
/// offsets API, the brokers), and one for the oldest waiting records' age not read.
fn say_lag_problems(eval: &mut Evaluation, cluster_problem: Option<String>, fetch_problem: Option<String>) {
    for (problem, action) in [
        (
            cluster_problem,
            "the rest of the run goes on; restarts and alerts on status only",
        ),
        (
            fetch_problem.map(|p| format!("{p}; the age of waiting records is unknown where it could not be read")),
            "the lag in records is still judged; see the brokers",
        ),
    ] {
        if let Some(problem) = problem {
            let mut f = Finding::new(Category::ConsumerLagging, problem);
            f.severity = crate::monitor::judge::finding::Severity::Info;
            f.action = Some(action.into());
            eval.findings.push(f);
        }
    }
}

/// A connector whose lag was not read this run: an `unjudged` finding, informational until it
/// has stayed so for [`UNJUDGED_ALERT_AFTER_RUNS`] runs in a row, then a warning.
fn unjudged(eval: &mut Evaluation, name: &str, why: &str) {
    let runs = eval.states.get_mut(name).map_or(1, |state| {
        state.unjudged_runs += 1;
        state.unjudged_runs
    });
    let mut f = Finding::new(
        Category::Unjudged,
        format!("The lag of connector {name} was {why}; {runs} run(s) in a row"),
    );
    f.connector = Some(name.to_string());
    if runs < UNJUDGED_ALERT_AFTER_RUNS {
        f.severity = crate::monitor::judge::finding::Severity::Info;
    }
    f.action = Some("judged on its status only this run; the next run reads its lag again".into());
    eval.findings.push(f);
}

/// Puts each connector's lag (or why it is unknown) on its entry of the report.
fn put_lags(report: &mut Value, lags: &BTreeMap<String, LagReading>) {
    let Some(connectors) = report["connectors"].as_array_mut() else {
        return;
    };
    for c in connectors {
        let Some(name) = c["name"].as_str() else { continue };
        match lags.get(name) {
            Some(LagReading::Measured(lag)) => c["lag"] = json!(lag),
            Some(LagReading::Unknown(why)) => c["lagUnknown"] = json!(why),
            None => {}
        }
    }
}

/// Puts on the findings for restart `attempt` of a failure what the restarts before it were.
async fn earlier_restarts<S: MonitorStore>(
    store: &S,
    ctx: &RunContext,
    eval: &mut Evaluation,
    name: &str,
    fingerprint: &str,
    attempt: u32,
) {
    // Ten entries cover a budget's restarts and the decisions between them.
    let Ok(history) = store.history(&ctx.cluster, Some(name), 10 * attempt as usize).await else {
        return;
    };
    let lines = crate::monitor::audit::earlier_restarts(&history, name, fingerprint, attempt);
    for f in eval.findings.iter_mut() {
        if f.connector.as_deref() == Some(name)
            && matches!(f.category, Category::ConnectorFailed | Category::TaskFailed)
            && f.cause.is_some_and(|c| c.is_restartable())
        {
            f.earlier = lines.clone();
        }
    }
}

/// The notices a run owes: open, remind, and resolve only what this observation may resolve,
/// what has run healthy long enough ([`resolution_waits`]), and no consumer whose lag was not
/// read this run (it is not known to have healed).
fn notices_owed(
    ctx: &RunContext,
    (observation, lags): (&Observation, &BTreeMap<String, LagReading>),
    open: &BTreeMap<String, Incident>,
    eval: &Evaluation,
) -> Vec<Notice> {
    let scope = match observation {
        _ if eval.warming_until.is_some() => ResolveScope::WorkerOnly,
        Observation::Connectors(_) | Observation::Unproven { .. } => ResolveScope::All,
        Observation::NotReady { .. } | Observation::Rebalancing { .. } => ResolveScope::WorkerOnly,
        Observation::Unreachable { .. } => ResolveScope::Nothing,
    };
    let lag_unread = |i: &Incident| {
        [Category::ConsumerStalled.id(), Category::ConsumerLagging.id()].contains(&i.category.as_str())
            && i.connector
                .as_ref()
                .is_some_and(|c| matches!(lags.get(c), Some(LagReading::Unknown(_))))
    };
    let mut notices = plan_notices(
        &ctx.cluster,
        open,
        &eval.findings,
        scope,
        ctx.reminder_every_ms,
        ctx.now,
    );
    notices.retain(|n| {
        n.kind != NoticeKind::Resolved
            || !(lag_unread(&n.incident) || resolution_waits(&n.incident, eval, ctx.resolve_after_ms, ctx.now))
    });
    notices
}

/// Only the Connect health incidents are a monitor run's to remind about or resolve.
fn connect_incidents(stored: &crate::monitor::ports::StoredState) -> BTreeMap<String, Incident> {
    stored
        .incidents
        .iter()
        .filter(|(_, v)| Category::is_connect_health(&v.value.category))
        .map(|(k, v)| (k.clone(), v.value.clone()))
        .collect()
}

/// What a run would do, done by none of it.
fn dry_run_report(
    ctx: &RunContext,
    (observation, lags): (&Observation, &BTreeMap<String, LagReading>),
    worker: Option<&str>,
    stored: &crate::monitor::ports::StoredState,
    mut eval: Evaluation,
) -> RunReport {
    for action in eval.actions.clone() {
        let what = match &action {
            Action::Restart { attempt, budget, .. } => format!("would request restart {attempt} of {budget}"),
            Action::RestartStalled { attempt, budget, .. } => {
                format!("would restart its tasks, restart {attempt} of {budget}")
            }
            Action::Recreate { .. } => "would recreate it from its secret".to_string(),
            Action::CorrectDrift { .. } => "would put the desired config back".to_string(),
        };
        annotate(&mut eval, &action, &format!("dry run: {what}"));
    }
    let open = connect_incidents(stored);
    crate::monitor::alerting::group::group_by_cause(&mut eval.findings, &open, &ctx.cluster, ctx.group_alerts_at);
    let would_send: Vec<Value> = notices_owed(ctx, (observation, lags), &open, &eval)
        .iter()
        .map(|n| {
            let m = render(n, &ctx.cluster, &ctx.runbook_base, ctx.now);
            json!({"subject": m.subject, "state": m.state})
        })
        .collect();
    let mut report = report(ctx, observation, worker, &eval, Vec::new(), &[]);
    report["dryRun"] = json!(true);
    report["wouldAlert"] = json!(would_send);
    RunReport {
        report,
        metrics: Vec::new(),
        alert_failures: Vec::new(),
        state_failures: Vec::new(),
        configs_unread: None,
        audit: Vec::new(),
    }
}

/// `MonitorStateUnavailable` for the cluster: 1 when a run could not use its state table, 0
/// when it could (what the `monitor-state-unavailable` alarm pages and resolves on).
fn state_metric(ctx: &RunContext, unavailable: bool) -> String {
    line(
        ctx,
        &[("Cluster", ctx.cluster.clone())],
        &[("MonitorStateUnavailable", Unit::Count, f64::from(u8::from(unavailable)))],
    )
}

/// A connector's metric dimensions.
fn connector_dims(ctx: &RunContext, connector: &str) -> Vec<(&'static str, String)> {
    vec![("Cluster", ctx.cluster.clone()), ("Connector", connector.to_string())]
}

fn line(ctx: &RunContext, dims: &[(&str, String)], metrics: &[(&str, Unit, f64)]) -> String {
    let dims: Vec<(&str, &str)> = dims.iter().map(|(k, v)| (*k, v.as_str())).collect();
    emf_line(&ctx.metrics_namespace, &dims, metrics, ctx.now)
}

/// Restarts each task by id: those restarted, the failures (`task N: why`), and whether any
/// was refused by a rebalance.
async fn restart_each<A: ConnectApi>(api: &A, connector: &str, tasks: &[i32]) -> (Vec<String>, Vec<String>, bool) {
    let (mut done, mut failed, mut rebalancing) = (Vec::new(), Vec::new(), false);
    for id in tasks {
        match api.restart_task(connector, *id).await {
            Ok(()) => done.push(id.to_string()),
            Err(e) => {
                rebalancing |= matches!(e, ConnectError::Rebalancing { .. });
                failed.push(format!("task {id}: {}", error_chain(&e)));
            }
        }
    }
    (done, failed, rebalancing)
}

/// Restarts `tasks` one by one as restart `attempt` of `budget`; `made` words the restarts
/// made (given the ids restarted). None made: given back, as a rebalance or a failed call.
async fn restart_by_id<A: ConnectApi>(
    api: &A,
    connector: &str,
    tasks: &[i32],
    attempt: u32,
    budget: u32,
    made: impl Fn(String) -> String,
) -> (String, Undo) {
    let (done, failed, rebalancing) = restart_each(api, connector, tasks).await;
    if done.is_empty() && rebalancing {
        return (
            "restart refused during a rebalance (409); will try next run".into(),
            Undo::Rebalance,
        );
    }
    if done.is_empty() {
        return (
            format!("restart {attempt} of {budget} not made: {}", failed.join("; ")),
            Undo::CallFailed,
        );
    }
    let mut text = made(done.join(", "));
    if !failed.is_empty() {
        text.push_str(&format!("; failed: {}", failed.join("; ")));
    }
    (text, Undo::No)
}

/// Whether an action's claim is kept, or why it may be given back.
enum Undo {
    /// Done (or failed in a way retrying soon will not help): keep the claim.
    No,
    /// Refused during a rebalance: give it back.
    Rebalance,
    /// The restart call itself failed: give it back, within [`MAX_FAILED_RESTART_CALLS`].
    CallFailed,
    /// A connector missing from the list answers by name: it exists, nothing was done.
    Present,
}

/// Performs one action; returns what happened and whether the claim should be given back.
async fn execute<A: ConnectApi, T: TableProbe>(
    api: &A,
    guard: Option<(&T, &SinkTables)>,
    action: &Action,
    desired: &[ConnectorConfig],
) -> (String, Undo) {
    match action {
        Action::Restart {
            connector,
            attempt,
            budget,
            failed_tasks,
            only_tasks: true,
            ..
        } => {
            restart_by_id(api, connector, failed_tasks, *attempt, *budget, |done| {
                format!(
                    "restart {attempt} of {budget} requested for task {done} only (a restart cannot fix the others)"
                )
            })
            .await
        }
        Action::Restart {
            connector,
            attempt,
            budget,
            failed_tasks,
            ..
        } => match api.restart_failed(connector).await {
            Ok(RestartOutcome::Planned(_)) => (format!("restart {attempt} of {budget} requested"), Undo::No),
            Ok(RestartOutcome::ConnectorOnly) => {
                // A worker without KIP-745 restarted only the connector instance (204).
                let (done, failed, _) = restart_each(api, connector, failed_tasks).await;
                let mut text = format!(
                    "restart {attempt} of {budget}: the worker restarted only the connector (204, no KIP-745); tasks restarted one by one: [{}]",
                    done.join(", ")
                );
                if !failed.is_empty() {
                    text.push_str(&format!("; failed: {}", failed.join("; ")));
                }
                (text, Undo::No)
            }
            Err(ConnectError::Rebalancing { .. }) => (
                "restart refused during a rebalance (409); will try next run".into(),
                Undo::Rebalance,
            ),
            Err(e) => (
                format!("restart {attempt} of {budget} not made: {}", error_chain(&e)),
                Undo::CallFailed,
            ),
        },
        Action::RestartStalled {
            connector,
            attempt,
            budget,
            tasks,
        } => {
            restart_by_id(api, connector, tasks, *attempt, *budget, |done| {
                format!("restart {attempt} of {budget} of the stalled consumer: task {done} restarted")
            })
            .await
        }
        Action::Recreate { connector } | Action::CorrectDrift { connector } => {
            put_back(api, guard, action, connector, desired).await
        }
    }
}

/// Recreates a missing connector, or puts a drifted config back, from its secret. A sink
/// recreated where `guard` knows its table goes through [`apply`]: never resumed into an empty
/// table behind its commits.
async fn put_back<A: ConnectApi, T: TableProbe>(
    api: &A,
    guard: Option<(&T, &SinkTables)>,
    action: &Action,
    connector: &str,
    desired: &[ConnectorConfig],
) -> (String, Undo) {
    let recreate = matches!(action, Action::Recreate { .. });
    // A worker can leave a connector out of its list (still reading its config topic): ask
    // for it by name before putting it back (reference §3.3, §8).
    if recreate && let Ok(status) = api.status(connector).await {
        return (
            format!(
                "not recreated: GET /connectors/{connector}/status finds it {}; the list left it out",
                status.connector.state.as_str()
            ),
            Undo::Present,
        );
    }
    let Some(config) = desired.iter().find(|c| c.name == connector) else {
        return ("no desired config found".into(), Undo::No);
    };
    let applied = match guard {
        Some((probe, tables)) if recreate => apply(api, probe, tables, config).await,
        _ => api
            .put_config(connector, &config.config)
            .await
            .map(|o| if o.created { Applied::Created } else { Applied::Updated })
            .map_err(ApplyError::Connect),
    };
    match applied {
        Ok(Applied::Created) => ("recreated from its secret".into(), Undo::No),
        Ok(Applied::CreatedUnchecked(why)) => (format!("recreated from its secret, {why}"), Undo::No),
        Ok(Applied::Updated) => ("config put back from its secret".into(), Undo::No),
        Err(ApplyError::Connect(ConnectError::Rebalancing { .. })) => (
            "refused during a rebalance (409); will try next run".into(),
            Undo::Rebalance,
        ),
        Err(e @ ApplyError::Refused { .. }) => (format!("not recreated running: {}", error_chain(&e)), Undo::No),
        Err(e) => (format!("recreate failed: {}", error_chain(&e)), Undo::No),
    }
}

fn annotate(eval: &mut Evaluation, action: &Action, outcome: &str) {
    let categories: &[Category] = match action {
        Action::Restart { .. } => &[Category::ConnectorFailed, Category::TaskFailed],
        Action::RestartStalled { .. } => &[Category::ConsumerStalled],
        Action::Recreate { .. } => &[Category::ConnectorMissing],
        Action::CorrectDrift { .. } => &[Category::ConfigDrift],
    };
    for f in eval.findings.iter_mut() {
        // A failure a restart cannot fix keeps saying so: no restart was made for it.
        let left_alone = matches!(action, Action::Restart { .. }) && f.cause.is_some_and(|c| !c.is_restartable());
        if f.connector.as_deref() == Some(action.connector()) && categories.contains(&f.category) && !left_alone {
            f.action = Some(outcome.to_string());
        }
    }
}

fn report(
    ctx: &RunContext,
    observation: &Observation,
    worker: Option<&str>,
    eval: &Evaluation,
    alerts: Vec<Value>,
    alert_failures: &[String],
) -> Value {
    let for_connector = |name: &str| -> Vec<&Finding> {
        eval.findings
            .iter()
            .filter(|f| f.connector.as_deref() == Some(name))
            .collect()
    };
    let connectors: Vec<Value> = eval
        .connectors
        .iter()
        .map(|c| {
            json!({"name": c.name, "state": c.state, "worker": c.worker, "tasks": c.tasks, "healthy": c.healthy,
                   "findings": for_connector(&c.name),
                   "actions": eval.actions.iter().filter(|a| a.connector() == c.name).collect::<Vec<_>>()})
        })
        .collect();
    let cluster_findings: Vec<&Finding> = eval.findings.iter().filter(|f| f.connector.is_none()).collect();
    let judged = matches!(observation, Observation::Connectors(_) | Observation::Unproven { .. })
        && eval.warming_until.is_none();
    let healthy = judged
        && eval
            .findings
            .iter()
            .all(|f| f.severity < crate::monitor::judge::finding::Severity::Warning);
    json!({
        "cluster": ctx.cluster,
        "worker": worker,
        "healthy": healthy,
        "checkedAt": crate::monitor::time::iso8601(ctx.now),
        "warmingUpUntil": eval.warming_until.map(crate::monitor::time::iso8601),
        // The connectors the config secrets ask for: the report names them even when no worker
        // answered.
        "desired": ctx.desired.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        "connectors": connectors,
        "findings": cluster_findings,
        "alerts": alerts,
        "alertFailures": alert_failures,
    })
}
