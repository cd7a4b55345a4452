//! What a run keeps per connector and per cluster, the settings it judges by, the actions it
//! decides and its outcome: the types that [`evaluate`](super::evaluate) and [`lag`](super::lag)
//! both read and write, below both so that neither imports the other.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::finding::Finding;
use super::restart::{RestartHistory, RestartPolicy};

/// What the monitor keeps per connector between runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorState {
    /// Restarts made for the current failure.
    #[serde(default)]
    pub restart: RestartHistory,
    /// Consecutive runs that saw the connector or a task UNASSIGNED.
    #[serde(default)]
    pub unassigned_runs: u32,
    /// Muted until then (ms since the epoch): recorded, no action, no alert.
    #[serde(default)]
    pub muted_until: Option<i64>,
    /// The first run that found it not listed, while it stays so (ms since the epoch): how long
    /// a worker without `/health` has been seen without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_since: Option<i64>,
    /// When an operator deleted it on purpose (`connectorctl delete`): it is not recreated
    /// until it exists again or `connectorctl ensure` brings it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<i64>,
    /// Restart calls in a row that failed (a 500, a timeout, a 404) and so were not counted as
    /// restarts; the [`MAX_FAILED_RESTART_CALLS`]th is counted, so the backoff bounds them too.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed_restart_calls: u32,
    /// The decision to stand back (a mute, a delete, restarts given up) last put in the audit
    /// trail, so that it is one entry when it begins, not one per run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audited: Option<String>,
    /// Its consumer's progress (sink connectors, where the lag is measured).
    #[serde(default, skip_serializing_if = "Progress::is_empty")]
    pub progress: Progress,
    /// Runs in a row whose reads of it (its lag) did not finish inside the deadline.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unjudged_runs: u32,
    /// An action claimed and not yet confirmed made: a run cut between the claim and the call
    /// leaves it, and a later run gives the restart back and decides again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acting: Option<Acting>,
}

/// A claimed action, with the restart histories as they were before the claim counted it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acting {
    /// When it was claimed (ms since the epoch).
    pub at: i64,
    /// [`ConnectorState::restart`] before.
    #[serde(default)]
    pub restart: RestartHistory,
    /// [`Progress::restart`] (a stalled consumer's) before.
    #[serde(default)]
    pub stalled: RestartHistory,
}

/// How long after its claim an unconfirmed action is taken for orphaned: longer than a run can
/// last (the function's timeout is 60 s), so a run still acting is never second-guessed.
pub const ORPHANED_CLAIM_MS: i64 = 120_000;

impl ConnectorState {
    /// The state a run starts from: a claim orphaned by a cut run (older than
    /// [`ORPHANED_CLAIM_MS`]) is given back — the restart it counted was never confirmed made —
    /// and its claim time is returned, so the run can say so.
    pub fn without_orphaned_claim(mut self, now: i64) -> (Self, Option<i64>) {
        match self.acting.take() {
            Some(claim) if now - claim.at >= ORPHANED_CLAIM_MS => {
                self.restart = claim.restart;
                self.progress.restart = claim.stalled;
                (self, Some(claim.at))
            }
            young => {
                self.acting = young;
                (self, None)
            }
        }
    }
}

/// What the monitor keeps per cluster between runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    /// The first run of the current stretch that could not judge the worker (starting,
    /// rebalancing, reading its configs), ms since the epoch; `None` once a run judges it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_judged_since: Option<i64>,
}

/// Failed restart calls in a row that are given back before one counts as a restart.
pub const MAX_FAILED_RESTART_CALLS: u32 = 3;

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The monitor's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The restart policy.
    pub policy: RestartPolicy,
    /// Runs a connector or task must stay UNASSIGNED before it is reported (default 3).
    pub unassigned_after_runs: u32,
    /// Correct config drift with a PUT instead of only reporting it.
    pub correct_drift: bool,
    /// Mute the whole cluster.
    pub mute_all: bool,
    /// Muted connectors.
    pub muted: BTreeSet<String>,
    /// How long a worker without `/health` that lists none, or not all, of its connectors is taken to
    /// be starting, from its task's start or else from the first run that saw it so (ms).
    pub worker_warmup_ms: i64,
    /// How long a worker may stay not ready (starting, rebalancing, reading its configs) before
    /// that is `worker-unreachable` (ms).
    pub worker_stuck_ms: i64,
    /// The consumer lag thresholds.
    pub lag: LagSettings,
}

impl Settings {
    /// Whether `name` is muted now: all connectors, this one by name, or until `muted_until`.
    pub fn mutes(&self, name: &str, muted_until: Option<i64>, now: i64) -> bool {
        self.mute_all || self.muted.contains(name) || muted_until.is_some_and(|until| until > now)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            policy: RestartPolicy::default(),
            unassigned_after_runs: 3,
            correct_drift: false,
            mute_all: false,
            muted: BTreeSet::new(),
            worker_warmup_ms: 5 * 60_000,
            worker_stuck_ms: 10 * 60_000,
            lag: LagSettings::default(),
        }
    }
}

/// Something to do against the worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// `POST .../restart?includeTasks=true&onlyFailed=true` (tasks one by one on a 204).
    Restart {
        /// The connector.
        connector: String,
        /// Restart number, 1-based.
        attempt: u32,
        /// Of how many.
        budget: u32,
        /// The FAILED tasks to restart: all of them (for the per-task fallback), or with
        /// `only_tasks` just those a restart can fix.
        failed_tasks: Vec<i32>,
        /// Causes differ across the tasks: restart `failed_tasks` one by one, never the others.
        only_tasks: bool,
        /// The fingerprint the restart is for.
        fingerprint: String,
    },
    /// `POST .../tasks/{id}/restart` of every task of a consumer that stalled while RUNNING.
    RestartStalled {
        /// The connector.
        connector: String,
        /// Restart number, 1-based.
        attempt: u32,
        /// Of how many.
        budget: u32,
        /// Its tasks.
        tasks: Vec<i32>,
    },
    /// `PUT .../config` of a missing connector from its secret.
    Recreate {
        /// The connector.
        connector: String,
    },
    /// `PUT .../config` to undo drift (only with `correct_drift`).
    CorrectDrift {
        /// The connector.
        connector: String,
    },
}

impl Action {
    /// The connector it acts on.
    pub fn connector(&self) -> &str {
        match self {
            Action::Restart { connector, .. }
            | Action::RestartStalled { connector, .. }
            | Action::Recreate { connector }
            | Action::CorrectDrift { connector } => connector,
        }
    }
}

/// One connector as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectorSummary {
    /// Name.
    pub name: String,
    /// Connector state, `MISSING`, or `UNKNOWN` (no status yet).
    pub state: String,
    /// Worker of the connector instance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// `id: STATE` per task.
    pub tasks: Vec<String>,
    /// Whether it is healthy: RUNNING with every task RUNNING.
    pub healthy: bool,
    /// FAILED tasks.
    pub failed_tasks: usize,
}

/// The outcome of [`evaluate`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// Everything found, in connector order.
    pub findings: Vec<Finding>,
    /// What to do.
    pub actions: Vec<Action>,
    /// The state to keep per connector (only for connectors the worker reported on).
    pub states: BTreeMap<String, ConnectorState>,
    /// Per desired connector, for the report and the metrics.
    pub connectors: Vec<ConnectorSummary>,
    /// Not judged because a worker without `/health` may still be starting: until when.
    pub warming_until: Option<i64>,
}

/// The thresholds of the progress checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LagSettings {
    /// Runs in a row without progress while records wait, with every task RUNNING, before a
    /// connector is `consumer-stalled` (default 3: Connect commits sink offsets every
    /// `offset.flush.interval.ms`, 60 s by default, so one still run proves nothing).
    pub stall_after_runs: u32,
    /// Age of the oldest waiting record (s) over which a connector is `consumer-lagging`
    /// (default 900).
    pub lagging_seconds: i64,
    /// Runs in a row over `lagging_seconds` before that is reported (default 2).
    pub lagging_after_runs: u32,
}

impl Default for LagSettings {
    fn default() -> Self {
        Self {
            stall_after_runs: 3,
            lagging_seconds: 900,
            lagging_after_runs: 2,
        }
    }
}

/// What the monitor keeps of a connector's progress between runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// The position per `topic/partition` at the last measured run.
    #[serde(default)]
    pub positions: BTreeMap<String, i64>,
    /// Runs in a row that found records waiting and a partition that did not advance, all tasks
    /// RUNNING: the most of any partition's (see `still`).
    #[serde(default)]
    pub still_runs: u32,
    /// Per `topic/partition` with records waiting, runs in a row its position stood still while
    /// every task said RUNNING: one task's partitions can stand while the others move.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub still: BTreeMap<String, u32>,
    /// Runs in a row with the oldest waiting record over the lag threshold.
    #[serde(default)]
    pub lagging_runs: u32,
    /// Restarts made for a stalled consumer: the same bounded policy as for failures.
    #[serde(default)]
    pub restart: RestartHistory,
}

impl Progress {
    /// Whether there is nothing to keep.
    pub fn is_empty(&self) -> bool {
        *self == Progress::default()
    }
}
