//! `testConnectors`: every minute, read every connector and task, heal what a restart can fix,
//! recreate what vanished, alert once per incident, and return a report.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use connector_adapters::connect::HttpConnectApi;
use connector_core::connect::control::parse_request;
use connector_core::connect::ports::LoadedConfigs;
use connector_core::connect::{ConnectorConfig, ConnectorConfigs, TaskDiscovery};
use connector_core::error_chain;
use connector_core::monitor::evaluate::Settings;
use connector_core::monitor::ports::{AlertPublisher, MonitorStore};
use connector_core::monitor::restart::RestartPolicy;
use connector_core::monitor::run::{RunContext, RunReport, run_monitor};
use lambda_runtime::Diagnostic;
use serde_json::{Value, json};

use crate::config::{ConfigError, Env};

/// `testConnectors`' configuration, read once per cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorConfig {
    /// `CLUSTER`: the ECS cluster of the workers (a `{"cluster"}` payload overrides it).
    pub cluster: Option<String>,
    /// `CONNECT_URL`: a fixed worker URL that bypasses discovery.
    pub connect_url: Option<String>,
    /// `CONNECT_PORT` (8083).
    pub connect_port: u16,
    /// `CONNECT_TIMEOUT_SECONDS` (10): each REST call.
    pub connect_timeout: Duration,
    /// `CONFIG_SECRET_PREFIX`: the desired connectors are the secrets under this prefix.
    pub config_secret_prefix: String,
    /// `CONFIG_CACHE_SECONDS` (300): how long the desired configs are kept per cold start.
    pub config_cache: Duration,
    /// `MONITOR_STATE_TABLE`: the DynamoDB table of restart counters and incidents.
    pub state_table: String,
    /// `ALERT_TOPIC_ARN`: the SNS topic for alerts.
    pub alert_topic_arn: String,
    /// `RUNBOOK_BASE_URL`: where `runbooks/<id>.md` pages are served.
    pub runbook_base_url: String,
    /// `REMINDER_MINUTES` (60): remind about an open incident this often.
    pub reminder: Duration,
    /// `RESTART_BUDGET` (3) and `MAX_BACKOFF_MINUTES` (60).
    pub policy: RestartPolicy,
    /// `UNASSIGNED_AFTER_RUNS` (3).
    pub unassigned_after_runs: u32,
    /// `CORRECT_DRIFT` (false): put a drifted config back instead of only reporting it.
    pub correct_drift: bool,
    /// `MUTE`: `*` for the whole cluster, or a comma-separated list of connectors.
    pub mute: String,
    /// `METRICS_NAMESPACE` (connector).
    pub metrics_namespace: String,
    /// `RUN_BUDGET_SECONDS` (45): a run that takes longer is cut, below the function timeout.
    pub run_budget: Duration,
    /// `WORKER_WARMUP_SECONDS` (300): how long a worker without `/health` (Kafka Connect before
    /// 3.9) that lists none, or not all, of the connectors it holds is taken to be starting.
    pub worker_warmup: Duration,
}

impl MonitorConfig {
    /// Reads the configuration through `lookup`, naming every missing or invalid variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = Env::new(lookup);
        let budget = env.parsed("RESTART_BUDGET", 3u32, "a whole number from 1 to 20", |n| {
            (1..=20).contains(n)
        });
        let max_backoff = env.parsed("MAX_BACKOFF_MINUTES", 60i64, "minutes from 1 to 1440", |n| {
            (1..=1440).contains(n)
        });
        let config = Self {
            cluster: env.optional("CLUSTER"),
            connect_url: env.optional_url("CONNECT_URL", "a Kafka Connect REST URL"),
            connect_port: env.parsed("CONNECT_PORT", 8083u16, "a TCP port from 1 to 65535", |p| *p > 0),
            connect_timeout: Duration::from_secs(env.parsed(
                "CONNECT_TIMEOUT_SECONDS",
                10u64,
                "seconds from 1 to 60",
                |s| (1..=60).contains(s),
            )),
            config_secret_prefix: env.required(
                "CONFIG_SECRET_PREFIX",
                "the Secrets Manager prefix of the connector configs",
            ),
            config_cache: Duration::from_secs(
                env.parsed("CONFIG_CACHE_SECONDS", 300u64, "seconds up to 3600", |s| *s <= 3600),
            ),
            state_table: env.required("MONITOR_STATE_TABLE", "the DynamoDB table of the monitor's state"),
            alert_topic_arn: env.required("ALERT_TOPIC_ARN", "the SNS topic for alerts"),
            runbook_base_url: env.url("RUNBOOK_BASE_URL", "where the runbook pages are served"),
            reminder: Duration::from_secs(
                60 * env.parsed("REMINDER_MINUTES", 60u64, "minutes from 1 to 10080", |m| {
                    (1..=10080).contains(m)
                }),
            ),
            policy: RestartPolicy {
                budget,
                max_backoff_minutes: max_backoff,
            },
            unassigned_after_runs: env.parsed("UNASSIGNED_AFTER_RUNS", 3u32, "a whole number from 1 to 60", |n| {
                (1..=60).contains(n)
            }),
            correct_drift: env.parsed("CORRECT_DRIFT", false, "true or false", |_| true),
            mute: env.optional("MUTE").unwrap_or_default(),
            metrics_namespace: env.parsed("METRICS_NAMESPACE", "connector".to_string(), "a namespace", |_| true),
            run_budget: Duration::from_secs(env.parsed("RUN_BUDGET_SECONDS", 45u64, "seconds from 5 to 840", |s| {
                (5..=840).contains(s)
            })),
            worker_warmup: Duration::from_secs(env.parsed(
                "WORKER_WARMUP_SECONDS",
                300u64,
                "seconds from 0 to 3600",
                |s| *s <= 3600,
            )),
        };
        env.finish()?;
        Ok(config)
    }

    fn settings(&self) -> Settings {
        let muted: BTreeSet<String> = self
            .mute
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty() && *m != "*")
            .map(String::from)
            .collect();
        Settings {
            policy: self.policy,
            unassigned_after_runs: self.unassigned_after_runs,
            correct_drift: self.correct_drift,
            mute_all: self.mute.trim() == "*",
            muted,
            worker_warmup_ms: self.worker_warmup.as_millis() as i64,
        }
    }
}

/// Desired configs and the secrets that could not be used, as read at an instant.
type Snapshot = (Instant, Vec<ConnectorConfig>, Vec<String>);

/// The desired configs, kept for `CONFIG_CACHE_SECONDS` per cold start.
#[derive(Default)]
pub struct ConfigCache {
    cached: Mutex<Option<Snapshot>>,
}

impl ConfigCache {
    async fn get<C: ConnectorConfigs>(
        &self,
        configs: &C,
        prefix: &str,
        keep: Duration,
    ) -> Result<(Vec<ConnectorConfig>, Vec<String>), String> {
        if let Some((at, desired, problems)) = self.cached.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
            && at.elapsed() < keep
        {
            return Ok((desired.clone(), problems.clone()));
        }
        let LoadedConfigs {
            configs: desired,
            problems,
        } = configs.list(prefix).await.map_err(|e| error_chain(&e))?;
        let problems: Vec<String> = problems.iter().map(|p| error_chain(p)).collect();
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), desired.clone(), problems.clone()));
        Ok((desired, problems))
    }
}

/// Why a run failed outright.
#[derive(Debug, thiserror::Error)]
pub enum MonitorFailure {
    /// The payload is not usable.
    #[error(transparent)]
    InvalidPayload(#[from] connector_core::connect::control::PayloadError),
    /// No cluster to check.
    #[error("no cluster to check: give {{\"cluster\": ...}} or set CLUSTER")]
    NoCluster,
    /// The desired configs could not be read.
    #[error("cannot read the connector configs: {0}")]
    Configs(String),
    /// The monitor state could not be read or written.
    #[error("monitor state unavailable: {0}")]
    State(String),
    /// Alerts could not be sent (the next run sends them again).
    #[error("alerts not sent: {0}")]
    Alerts(String),
    /// The run took longer than its budget.
    #[error("the run did not finish within its budget of {0} s")]
    Budget(u64),
}

impl From<MonitorFailure> for Diagnostic {
    fn from(failure: MonitorFailure) -> Self {
        let error_type = match &failure {
            MonitorFailure::InvalidPayload(_) => "InvalidPayload",
            MonitorFailure::NoCluster => "NoCluster",
            MonitorFailure::Configs(_) => "ConfigsUnavailable",
            MonitorFailure::State(_) => "StateUnavailable",
            MonitorFailure::Alerts(_) => "AlertsNotSent",
            MonitorFailure::Budget(_) => "RunBudgetExceeded",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: failure.to_string(),
        }
    }
}

/// One `testConnectors` invocation.
pub async fn handle<C, D, S, P>(
    config: &MonitorConfig,
    cache: &ConfigCache,
    configs: &C,
    discovery: &D,
    store: &S,
    alerts: &P,
    event: &Value,
) -> Result<Value, MonitorFailure>
where
    C: ConnectorConfigs,
    D: TaskDiscovery,
    S: MonitorStore,
    P: AlertPublisher,
{
    let out = handle_at(
        config,
        cache,
        configs,
        discovery,
        store,
        alerts,
        event,
        crate::now_millis(),
        false,
    )
    .await?;
    for line in &out.metrics {
        println!("{line}");
    }
    if !out.alert_failures.is_empty() {
        return Err(MonitorFailure::Alerts(out.alert_failures.join("; ")));
    }
    Ok(out.report)
}

/// One run as of `now` (epoch milliseconds): the restart backoff and incident durations are
/// measured against it, which lets tests step through time. A `dry_run` acts on nothing and
/// sends nothing (`connectorctl check --dry-run`). The caller prints the metric lines and decides
/// what alerts that could not be sent mean.
#[allow(clippy::too_many_arguments)]
pub async fn handle_at<C, D, S, P>(
    config: &MonitorConfig,
    cache: &ConfigCache,
    configs: &C,
    discovery: &D,
    store: &S,
    alerts: &P,
    event: &Value,
    now: i64,
    dry_run: bool,
) -> Result<RunReport, MonitorFailure>
where
    C: ConnectorConfigs,
    D: TaskDiscovery,
    S: MonitorStore,
    P: AlertPublisher,
{
    let started = Instant::now();
    // A scheduled event carries `source`/`detail-type`, not `cluster`: it uses the configuration.
    let request = parse_request(event)?;
    let cluster = request
        .cluster
        .or_else(|| config.cluster.clone())
        .ok_or(MonitorFailure::NoCluster)?;
    let run = async {
        let (desired, problems) = cache
            .get(configs, &config.config_secret_prefix, config.config_cache)
            .await
            .map_err(MonitorFailure::Configs)?;
        for p in &problems {
            tracing::error!(problem = %p, "a connector config secret cannot be used");
        }
        let (workers, worker_started_at, no_worker_reason) = locate(config, discovery, &cluster).await;
        let ctx = RunContext {
            cluster: cluster.clone(),
            desired,
            settings: config.settings(),
            runbook_base: config.runbook_base_url.clone(),
            reminder_every_ms: config.reminder.as_millis() as i64,
            metrics_namespace: config.metrics_namespace.clone(),
            no_worker_reason,
            worker_started_at,
            now,
            dry_run,
        };
        let out = run_monitor(&workers, store, alerts, &ctx)
            .await
            .map_err(|e| MonitorFailure::State(error_chain(&e)))?;
        Ok::<_, MonitorFailure>((out, problems))
    };
    let (out, problems) = tokio::time::timeout(config.run_budget, run)
        .await
        .map_err(|_| MonitorFailure::Budget(config.run_budget.as_secs()))??;
    let mut out = out;
    out.report["configProblems"] = json!(problems);
    out.report["durationMillis"] = json!(started.elapsed().as_millis() as u64);
    tracing::info!(cluster, healthy = %out.report["healthy"], "testConnectors run");
    Ok(out)
}

/// The workers to try and when each one's task started: `CONNECT_URL` (start unknown), else
/// every RUNNING task of the cluster, newest first.
async fn locate<D: TaskDiscovery>(
    config: &MonitorConfig,
    discovery: &D,
    cluster: &str,
) -> (Vec<HttpConnectApi>, Vec<Option<i64>>, Option<String>) {
    if let Some(url) = &config.connect_url {
        return match HttpConnectApi::new(url, config.connect_timeout) {
            Ok(api) => (vec![api], vec![None], None),
            Err(e) => (Vec::new(), Vec::new(), Some(error_chain(&e))),
        };
    }
    match discovery.running_tasks(cluster).await {
        Ok(tasks) if tasks.is_empty() => (
            Vec::new(),
            Vec::new(),
            Some(format!("no RUNNING Kafka Connect task in ECS cluster {cluster}")),
        ),
        Ok(tasks) => {
            let (apis, started) = tasks
                .iter()
                .filter_map(|t| {
                    let url = format!("http://{}:{}", t.ip, config.connect_port);
                    let api = HttpConnectApi::new(&url, config.connect_timeout).ok()?;
                    Some((api, t.started_at_millis))
                })
                .unzip();
            (apis, started, None)
        }
        Err(e) => (Vec::new(), Vec::new(), Some(error_chain(&e))),
    }
}

/// `testConnectors`' `main`.
pub async fn main() -> Result<(), lambda_runtime::Error> {
    use connector_adapters::ecs::EcsTaskDiscovery;
    use connector_adapters::monitor_state::DynamoDbMonitorStore;
    use connector_adapters::secrets::SecretsManagerConfigs;
    use connector_adapters::sns::SnsAlertPublisher;
    use lambda_runtime::{LambdaEvent, service_fn};

    crate::logging::init();
    let config = MonitorConfig::from_lookup(|k| std::env::var(k).ok())
        .inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    let sdk = connector_adapters::aws::load_sdk_config(Duration::from_secs(10), 3).await;
    let configs = SecretsManagerConfigs::new(connector_adapters::secrets::Client::new(&sdk));
    let discovery = EcsTaskDiscovery::new(connector_adapters::ecs::Client::new(&sdk));
    let store = DynamoDbMonitorStore::new(
        connector_adapters::monitor_state::Client::new(&sdk),
        &config.state_table,
    );
    let alerts = SnsAlertPublisher::new(connector_adapters::sns::Client::new(&sdk), &config.alert_topic_arn);
    let cache = ConfigCache::default();
    let (config, cache, configs, discovery, store, alerts) = (&config, &cache, &configs, &discovery, &store, &alerts);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle(config, cache, configs, discovery, store, alerts, &event.payload)
            .await
            .map_err(Diagnostic::from)
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(k: &str) -> Option<String> {
        match k {
            "CONFIG_SECRET_PREFIX" => Some("mako/connector/".into()),
            "MONITOR_STATE_TABLE" => Some("monitor".into()),
            "ALERT_TOPIC_ARN" => Some("arn:aws:sns:us-east-1:1:alerts".into()),
            "RUNBOOK_BASE_URL" => Some("https://example.org/runbooks".into()),
            _ => None,
        }
    }

    #[test]
    fn a_scheduled_event_uses_the_configured_cluster_and_the_runbook_payload_overrides_it() {
        let read = |file: &str| -> Value {
            let path = format!("{}/../../events/schedule/{file}", env!("CARGO_MANIFEST_DIR"));
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
        };
        assert_eq!(parse_request(&read("scheduled-event.json")).unwrap().cluster, None);
        assert_eq!(
            parse_request(&read("runbook-cluster.json")).unwrap().cluster.as_deref(),
            Some("mako-connector-main-connect")
        );
    }

    #[test]
    fn config_defaults_mutes_and_errors() {
        let c = MonitorConfig::from_lookup(base).unwrap();
        assert_eq!(
            (c.policy.budget, c.policy.max_backoff_minutes, c.reminder.as_secs()),
            (3, 60, 3600)
        );
        let s = MonitorConfig::from_lookup(|k| if k == "MUTE" { Some(" a, b ,".into()) } else { base(k) })
            .unwrap()
            .settings();
        assert_eq!((s.mute_all, s.muted.len()), (false, 2));
        assert!(
            MonitorConfig::from_lookup(|k| if k == "MUTE" { Some("*".into()) } else { base(k) })
                .unwrap()
                .settings()
                .mute_all
        );
        let err =
            MonitorConfig::from_lookup(|k| if k == "RESTART_BUDGET" { Some("0".into()) } else { None }).unwrap_err();
        assert_eq!(err.problems.len(), 5, "{err}");
    }
}
