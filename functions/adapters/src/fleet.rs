//! Several Connect clusters watched by one `testConnectors`: each cluster a [`Monitor`] of its
//! own (its workers, secrets, brokers, budget, mutes and thresholds; state and alerts keyed by
//! its name), all run at once so that a cluster that hangs never delays the others. Here, not in
//! the core, because each run is cut by tokio's timer.

use std::time::Duration;

use serde_json::{Value, json};

use connector_core::connect::ConnectorConfigs;
use connector_core::connect::control::parse_request;
use connector_core::monitor::judge::lag::Brokers;
use connector_core::monitor::ports::{AlertPublisher, Clock, MonitorStore, Workers};
use connector_core::monitor::run::{Monitor, MonitorFailure, RunReport};

/// The clusters of one deployment.
pub struct Fleet<C, W, S, P, K, B, T = connector_core::connect::resume::NoProbe> {
    members: Vec<Monitor<C, W, S, P, K, B, T>>,
}

/// What one invocation did.
#[derive(Debug)]
pub enum FleetRun {
    /// One cluster configured: its run, as without a fleet.
    One(Result<RunReport, MonitorFailure>),
    /// Several: each cluster's run, by name, in the configured order.
    Many(Vec<(String, Result<RunReport, MonitorFailure>)>),
}

impl FleetRun {
    /// The report: the one cluster's, or `{"clusters": [{"cluster", "report" | "error"}]}`.
    pub fn report(&self) -> Option<Value> {
        match self {
            FleetRun::One(Ok(out)) => Some(out.report.clone()),
            FleetRun::One(Err(_)) => None,
            FleetRun::Many(runs) => Some(json!({
                "clusters": runs.iter().map(|(cluster, run)| match run {
                    Ok(out) => json!({"cluster": cluster, "report": out.report}),
                    Err(e) => json!({"cluster": cluster, "error": e.to_string(), "errorType": e.error_type()}),
                }).collect::<Vec<_>>()
            })),
        }
    }
}

impl<C, W, S, P, K, B, T> Fleet<C, W, S, P, K, B, T>
where
    C: ConnectorConfigs,
    W: Workers,
    S: MonitorStore,
    P: AlertPublisher,
    K: Clock,
    B: Brokers,
    T: connector_core::connect::resume::TableProbe,
{
    /// The clusters, each with its own monitor.
    pub fn new(members: Vec<Monitor<C, W, S, P, K, B, T>>) -> Self {
        Self { members }
    }

    /// Each cluster's monitor.
    pub fn members(&self) -> &[Monitor<C, W, S, P, K, B, T>] {
        &self.members
    }

    /// One invocation: with one cluster, its run (a `{"cluster"}` payload still overrides its
    /// name, as before); with several, every cluster at once for a scheduled event or `{}`, or the
    /// one a `{"cluster"}` payload names. Each run is cut at `limit`, so a cluster whose calls
    /// hang fails alone as [`MonitorFailure::Budget`].
    pub async fn run(&self, request: &Value, limit: Duration) -> FleetRun {
        if let [only] = self.members.as_slice() {
            return FleetRun::One(bounded(only, request.clone(), limit).await);
        }
        let named = match parse_request(request) {
            Ok(r) => r.cluster,
            Err(e) => return FleetRun::One(Err(MonitorFailure::InvalidPayload(e))),
        };
        let chosen: Vec<&Monitor<C, W, S, P, K, B, T>> = self
            .members
            .iter()
            .filter(|m| named.is_none() || m.config().cluster == named)
            .collect();
        if chosen.is_empty() {
            return FleetRun::One(Err(MonitorFailure::UnknownCluster(named.unwrap_or_default())));
        }
        let runs = chosen.iter().map(|m| {
            let cluster = m.config().cluster.clone().unwrap_or_default();
            let request = json!({"cluster": cluster});
            async move { (cluster, bounded(m, request, limit).await) }
        });
        FleetRun::Many(futures_util::future::join_all(runs).await)
    }
}

/// One cluster's run, cut at `limit`.
async fn bounded<C, W, S, P, K, B, T>(
    m: &Monitor<C, W, S, P, K, B, T>,
    request: Value,
    limit: Duration,
) -> Result<RunReport, MonitorFailure>
where
    C: ConnectorConfigs,
    W: Workers,
    S: MonitorStore,
    P: AlertPublisher,
    K: Clock,
    B: Brokers,
    T: connector_core::connect::resume::TableProbe,
{
    match tokio::time::timeout(limit, m.run(&request)).await {
        Ok(out) => out,
        Err(_) => Err(MonitorFailure::Budget(limit.as_secs())),
    }
}
