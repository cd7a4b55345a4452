//! What the monitor needs besides Kafka Connect: somewhere to keep its state between runs, and
//! somewhere to send alerts.

use std::collections::BTreeMap;
use std::future::Future;

use crate::connect::ConnectApi;
use crate::monitor::alerting::alert::{AlertMessage, Incident};
use crate::monitor::audit::AuditEntry;
use crate::monitor::judge::state::{ClusterState, ConnectorState};
use crate::sink::ports::BoxError;

/// The monitor-state store failed.
#[derive(Debug, thiserror::Error)]
#[error("monitor state store: {what}")]
pub struct StateError {
    /// What was being done.
    pub what: String,
    /// The underlying error.
    #[source]
    pub source: BoxError,
}

/// A stored value and the version it was read at (for conditional writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// Its version.
    pub version: u64,
}

/// Everything the monitor keeps for one cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredState {
    /// Per connector.
    pub connectors: BTreeMap<String, Versioned<ConnectorState>>,
    /// Open incidents by key.
    pub incidents: BTreeMap<String, Versioned<Incident>>,
    /// Incidents resolved lately (the store keeps them a week), newest first.
    pub resolved: Vec<ResolvedIncident>,
    /// The cluster's own state, once written.
    pub cluster: Option<Versioned<ClusterState>>,
}

/// An incident after its resolved notice went out, for `connectorctl incidents`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResolvedIncident {
    /// The incident as it was when it closed.
    pub incident: Incident,
    /// When it was resolved (ms since the epoch).
    pub resolved_at: i64,
}

/// How long a resolved incident is kept for the record.
pub const RESOLVED_KEPT_MS: i64 = 7 * 24 * 3_600_000;

/// Where the monitor keeps restart counters, fingerprints and incidents. Every write is
/// conditional, so two overlapping runs never both restart or both alert: the run whose write
/// lands acts, the other learns `false` and stands back.
pub trait MonitorStore: Send + Sync {
    /// Reads the cluster's state.
    fn load(&self, cluster: &str) -> impl Future<Output = Result<StoredState, StateError>> + Send;
    /// Writes a connector's state if it is still at `expected` (`None`: absent). `Ok(false)`
    /// when another run wrote it first.
    fn save_connector(
        &self,
        cluster: &str,
        name: &str,
        state: &ConnectorState,
        expected: Option<u64>,
    ) -> impl Future<Output = Result<bool, StateError>> + Send;
    /// Writes the cluster's state if it is still at `expected` (`None`: absent).
    fn save_cluster(
        &self,
        cluster: &str,
        state: &ClusterState,
        expected: Option<u64>,
    ) -> impl Future<Output = Result<bool, StateError>> + Send;
    /// Records a new incident; `Ok(false)` when it is already open (another run opened it).
    fn open_incident(
        &self,
        cluster: &str,
        incident: &Incident,
    ) -> impl Future<Output = Result<bool, StateError>> + Send;
    /// Replaces an open incident (a reminder) if it is still at `expected`.
    fn update_incident(
        &self,
        cluster: &str,
        incident: &Incident,
        expected: u64,
    ) -> impl Future<Output = Result<bool, StateError>> + Send;
    /// Keeps an incident whose resolved notice went out, for a week. Only a record: callers
    /// ignore its failure.
    fn record_resolved(
        &self,
        cluster: &str,
        resolved: &ResolvedIncident,
    ) -> impl Future<Output = Result<(), StateError>> + Send;
    /// Keeps an audit entry for [`AUDIT_KEPT_MS`](crate::monitor::audit::AUDIT_KEPT_MS).
    fn record_audit(&self, cluster: &str, entry: &AuditEntry) -> impl Future<Output = Result<(), StateError>> + Send;
    /// The audit trail of one connector, or of the whole cluster, newest first, at most `limit`.
    fn history(
        &self,
        cluster: &str,
        connector: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<AuditEntry>, StateError>> + Send;
    /// Removes an incident (resolved) if it is still at `expected`.
    fn close_incident(
        &self,
        cluster: &str,
        key: &str,
        expected: u64,
    ) -> impl Future<Output = Result<bool, StateError>> + Send;
}

/// Sending an alert failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot publish alert {subject:?}")]
pub struct AlertError {
    /// The subject of the alert that was not sent.
    pub subject: String,
    /// The underlying error.
    #[source]
    pub source: BoxError,
}

/// Where alerts go (SNS).
pub trait AlertPublisher: Send + Sync {
    /// Publishes one alert.
    fn publish(&self, message: &AlertMessage) -> impl Future<Output = Result<(), AlertError>> + Send;
}

/// The workers of a cluster, located for one run.
#[derive(Debug)]
pub struct Located<A> {
    /// Each worker to try, in order, with when its task started (ms since the epoch) where known.
    pub workers: Vec<(A, Option<i64>)>,
    /// Why none was located, when `workers` is empty.
    pub problem: Option<String>,
}

/// How to reach a cluster's Kafka Connect workers: a fixed URL, or ECS discovery.
pub trait Workers: Send + Sync {
    /// The REST client for one worker.
    type Api: ConnectApi;
    /// The workers of `cluster` to try this run.
    fn locate(&self, cluster: &str) -> impl Future<Output = Located<Self::Api>> + Send;
}

/// The wall clock. Decisions take `now` as a parameter; only the run's budget reads this, to know
/// how much time its work has left.
pub trait Clock: Send + Sync {
    /// Milliseconds since the epoch.
    fn now_millis(&self) -> i64;
    /// Completes once `ms` milliseconds have passed: the deadline that reads race against.
    fn sleep(&self, ms: u64) -> impl Future<Output = ()> + Send;
}
