//! `testConnectors`' configuration: read from the function's environment by the Lambda, and
//! from the same variable names by `connectorctl check`.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::config::{ConfigError, Env};
use crate::monitor::judge::restart::RestartPolicy;
use crate::monitor::judge::state::Settings;

/// The variables a `CLUSTERS` entry may set for its cluster; the rest (the state table, the alert
/// topic, the runbooks, the run budget, the metrics namespace) are the deployment's.
pub const PER_CLUSTER: [&str; 21] = [
    "CLUSTER",
    "CONNECT_URL",
    "CONNECT_CREDENTIALS_SECRET",
    "CONNECT_PORT",
    "CONFIG_SECRET_PREFIX",
    "REMINDER_MINUTES",
    "RESOLVE_AFTER_MINUTES",
    "RESTART_BUDGET",
    "MAX_BACKOFF_MINUTES",
    "UNASSIGNED_AFTER_RUNS",
    "CORRECT_DRIFT",
    "MUTE",
    "WORKER_WARMUP_SECONDS",
    "WORKER_STUCK_MINUTES",
    "GROUP_ALERTS_AT",
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_TLS_CA_FILE",
    "STALL_AFTER_RUNS",
    "LAG_ALERT_SECONDS",
    "LAG_ALERT_RUNS",
];

/// `testConnectors`' configuration, read once per cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorConfig {
    /// `CLUSTER`: the ECS cluster of the workers (a `{"cluster"}` payload overrides it).
    pub cluster: Option<String>,
    /// `CONNECT_URL`: a fixed worker URL that bypasses discovery.
    pub connect_url: Option<String>,
    /// `CONNECT_CREDENTIALS_SECRET`: the Secrets Manager secret of the workers' REST credentials
    /// (`{"username", "password"}`), read at each run; unset: none are sent.
    pub connect_credentials_secret: Option<String>,
    /// `CONNECT_PORT` (8083).
    pub connect_port: u16,
    /// `CONNECT_TIMEOUT_SECONDS` (10): each REST call.
    pub connect_timeout: Duration,
    /// `CONFIG_SECRET_PREFIX`: the desired connectors are the secrets under this prefix.
    pub config_secret_prefix: String,
    /// `LICENSE_SECRET_ARN`: the Confluent licence, read at each run into every desired config.
    pub license_secret_arn: Option<String>,
    /// `SINK_TABLES`: `{"<topic>": "<table>"}`; a missing sink reading one of them is recreated
    /// STOPPED and resumed only when its commits and its table agree (`connect::resume`).
    pub sink_tables: crate::connect::resume::SinkTables,
    /// `MONITOR_STATE_TABLE`: the DynamoDB table of restart counters and incidents.
    pub state_table: String,
    /// `ALERT_TOPIC_ARN`: the SNS topic for alerts (every alert when `WARNING_TOPIC_ARN` is unset).
    pub alert_topic_arn: String,
    /// `WARNING_TOPIC_ARN`: the SNS topic for warning and info alerts; critical ones stay on
    /// `ALERT_TOPIC_ARN`, so the person paged is not the one told about warnings.
    pub warning_topic_arn: Option<String>,
    /// `RUNBOOK_BASE_URL`: where `runbooks/<id>.md` pages are served.
    pub runbook_base_url: String,
    /// `REMINDER_MINUTES` (60): remind about an open incident this often.
    pub reminder: Duration,
    /// `RESOLVE_AFTER_MINUTES` (10): a failed connector's incident is resolved once it has run
    /// healthy this long, so a failure that returns minutes after a restart stays one incident.
    pub resolve_after: Duration,
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
    /// `RUN_BUDGET_SECONDS` (45): no new action starts once so much of it is spent that the
    /// slowest action could not finish within it; what was started and claimed is finished.
    pub run_budget: Duration,
    /// `WORKER_WARMUP_SECONDS` (300): how long a worker without `/health` (Kafka Connect before
    /// 3.9) that lists none, or not all, of the connectors it holds is taken to be starting.
    pub worker_warmup: Duration,
    /// `WORKER_STUCK_MINUTES` (10): how long a worker may stay starting or rebalancing before
    /// it is `worker-unreachable`.
    pub worker_stuck: Duration,
    /// `GROUP_ALERTS_AT` (3): this many connectors failing on one cause are one cluster incident.
    pub group_alerts_at: usize,
    /// `KAFKA_BOOTSTRAP_SERVERS`: the brokers the sink connectors read, for their lag; unset,
    /// the lag is not measured.
    pub kafka_bootstrap: Option<String>,
    /// `KAFKA_SECURITY_PROTOCOL` (SSL): `SSL` (TLS, as MSK's port 9094) or `PLAINTEXT`.
    pub kafka_tls: bool,
    /// `KAFKA_TLS_CA_FILE`: a PEM file of CA certificates trusted besides the system's.
    pub kafka_tls_ca_file: Option<String>,
    /// `STALL_AFTER_RUNS` (3), `LAG_ALERT_SECONDS` (900), `LAG_ALERT_RUNS` (2).
    pub lag: crate::monitor::judge::state::LagSettings,
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
            connect_credentials_secret: env.optional("CONNECT_CREDENTIALS_SECRET"),
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
            license_secret_arn: env.optional("LICENSE_SECRET_ARN"),
            sink_tables: env.json("SINK_TABLES", "a JSON object of topic to table name"),
            state_table: env.required("MONITOR_STATE_TABLE", "the DynamoDB table of the monitor's state"),
            alert_topic_arn: env.required("ALERT_TOPIC_ARN", "the SNS topic for alerts"),
            warning_topic_arn: env.optional("WARNING_TOPIC_ARN"),
            runbook_base_url: env.url("RUNBOOK_BASE_URL", "where the runbook pages are served"),
            reminder: Duration::from_secs(
                60 * env.parsed("REMINDER_MINUTES", 60u64, "minutes from 1 to 10080", |m| {
                    (1..=10080).contains(m)
                }),
            ),
            resolve_after: Duration::from_secs(
                60 * env.parsed("RESOLVE_AFTER_MINUTES", 10u64, "minutes from 0 to 1440", |m| *m <= 1440),
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
            worker_stuck: Duration::from_secs(
                60 * env.parsed("WORKER_STUCK_MINUTES", 10u64, "minutes from 2 to 240", |m| {
                    (2..=240).contains(m)
                }),
            ),
            group_alerts_at: env.parsed("GROUP_ALERTS_AT", 3usize, "a whole number from 2 to 1000", |n| {
                (2..=1000).contains(n)
            }),
            kafka_bootstrap: env.optional("KAFKA_BOOTSTRAP_SERVERS"),
            kafka_tls: env.parsed("KAFKA_SECURITY_PROTOCOL", "SSL".to_string(), "SSL or PLAINTEXT", |p| {
                p == "SSL" || p == "PLAINTEXT"
            }) == "SSL",
            kafka_tls_ca_file: env.optional("KAFKA_TLS_CA_FILE"),
            lag: crate::monitor::judge::state::LagSettings {
                stall_after_runs: env.parsed("STALL_AFTER_RUNS", 3u32, "a whole number from 2 to 60", |n| {
                    (2..=60).contains(n)
                }),
                lagging_seconds: env.parsed("LAG_ALERT_SECONDS", 900i64, "seconds from 60 to 604800", |s| {
                    (60..=604_800).contains(s)
                }),
                lagging_after_runs: env.parsed("LAG_ALERT_RUNS", 2u32, "a whole number from 1 to 60", |n| {
                    (1..=60).contains(n)
                }),
            },
        };
        env.finish()?;
        Ok(config)
    }

    /// Every cluster the deployment watches. `CLUSTERS`, when set, is a JSON list with one object
    /// per cluster holding that cluster's variables (the names above: `CLUSTER` and
    /// `CONFIG_SECRET_PREFIX` required, and any of [`PER_CLUSTER`]); a variable an entry leaves
    /// out is the function's own, except the cluster's identity (`CLUSTER`, `CONNECT_URL`,
    /// `CONFIG_SECRET_PREFIX`, `KAFKA_BOOTSTRAP_SERVERS`), never inherited. Without it, the one
    /// cluster of the variables. Problems name the entry.
    pub fn fleet_from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Vec<Self>, ConfigError> {
        let Some(list) = lookup("CLUSTERS").filter(|l| !l.trim().is_empty()) else {
            return Ok(vec![Self::from_lookup(lookup)?]);
        };
        let fail = |problem: String| ConfigError {
            problems: vec![problem],
        };
        let entries: Vec<serde_json::Map<String, serde_json::Value>> = serde_json::from_str(&list)
            .map_err(|e| fail(format!("CLUSTERS must be a JSON list of objects, one per cluster: {e}")))?;
        if entries.is_empty() {
            return Err(fail("CLUSTERS is an empty list: name at least one cluster".into()));
        }
        let mut configs = Vec::new();
        let mut problems = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let mut values = std::collections::BTreeMap::new();
            for (k, v) in entry {
                if !PER_CLUSTER.contains(&k.as_str()) {
                    problems.push(format!(
                        "CLUSTERS[{i}].{k} is not a per-cluster setting ({})",
                        PER_CLUSTER.join(", ")
                    ));
                    continue;
                }
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::Bool(b) => b.to_string(),
                    _ => {
                        problems.push(format!("CLUSTERS[{i}].{k} must be a string, a number or a boolean"));
                        continue;
                    }
                };
                values.insert(k.clone(), text);
            }
            for needed in ["CLUSTER", "CONFIG_SECRET_PREFIX"] {
                if !values.contains_key(needed) {
                    problems.push(format!("CLUSTERS[{i}].{needed} is not set"));
                }
            }
            let own = |k: &str| values.get(k).cloned();
            let read = Self::from_lookup(|k| match k {
                // A cluster's identity and its workers' password are its own, never the deployment's.
                "CLUSTER"
                | "CONNECT_URL"
                | "CONNECT_CREDENTIALS_SECRET"
                | "CONFIG_SECRET_PREFIX"
                | "KAFKA_BOOTSTRAP_SERVERS" => own(k),
                "CLUSTERS" => None,
                _ => own(k).or_else(|| lookup(k)),
            });
            match read {
                Ok(config) => configs.push(config),
                Err(e) => problems.extend(e.problems.into_iter().map(|p| format!("CLUSTERS[{i}]: {p}"))),
            }
        }
        let mut names: Vec<&Option<String>> = configs.iter().map(|c| &c.cluster).collect();
        names.sort();
        if names.windows(2).any(|w| w[0] == w[1]) {
            problems.push("CLUSTERS names a cluster twice: each CLUSTER must be unique".into());
        }
        if problems.is_empty() {
            Ok(configs)
        } else {
            Err(ConfigError { problems })
        }
    }

    /// The judgement's settings: restart policy, mutes, thresholds.
    pub fn settings(&self) -> Settings {
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
            worker_stuck_ms: self.worker_stuck.as_millis() as i64,
            lag: self.lag,
        }
    }
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
    fn config_defaults_mutes_and_errors() {
        let c = MonitorConfig::from_lookup(base).unwrap();
        assert_eq!(
            (
                c.policy.budget,
                c.policy.max_backoff_minutes,
                c.reminder.as_secs(),
                c.resolve_after.as_secs()
            ),
            (3, 60, 3600, 600)
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

    #[test]
    fn without_clusters_the_fleet_is_the_one_cluster_of_the_variables() {
        let fleet = MonitorConfig::fleet_from_lookup(base).unwrap();
        assert_eq!(fleet, vec![MonitorConfig::from_lookup(base).unwrap()]);
    }

    #[test]
    fn each_cluster_has_its_own_identity_budget_and_mutes_and_inherits_the_rest() {
        let clusters = r#"[
            {"CLUSTER": "a", "CONNECT_URL": "http://a:8083", "CONFIG_SECRET_PREFIX": "a/", "RESTART_BUDGET": 1, "MUTE": "*"},
            {"CLUSTER": "b", "CONFIG_SECRET_PREFIX": "b/", "KAFKA_BOOTSTRAP_SERVERS": "b1:9094", "STALL_AFTER_RUNS": "5"}
        ]"#;
        let lookup = |k: &str| match k {
            "CLUSTERS" => Some(clusters.to_string()),
            "CONNECT_URL" => Some("http://base:8083".into()),
            "KAFKA_BOOTSTRAP_SERVERS" => Some("base:9094".into()),
            "RESTART_BUDGET" => Some("4".into()),
            other => base(other),
        };
        let fleet = MonitorConfig::fleet_from_lookup(lookup).unwrap();
        let (a, b) = (&fleet[0], &fleet[1]);
        assert_eq!(
            (a.cluster.as_deref(), a.connect_url.as_deref()),
            (Some("a"), Some("http://a:8083"))
        );
        assert_eq!((a.config_secret_prefix.as_str(), a.policy.budget), ("a/", 1));
        assert!(a.settings().mute_all);
        assert_eq!(
            a.kafka_bootstrap, None,
            "the brokers are a cluster's own, never inherited"
        );
        assert_eq!((b.cluster.as_deref(), b.connect_url.as_deref()), (Some("b"), None));
        assert_eq!((b.policy.budget, b.lag.stall_after_runs), (4, 5));
        assert_eq!(b.kafka_bootstrap.as_deref(), Some("b1:9094"));
        assert_eq!((a.state_table.as_str(), b.state_table.as_str()), ("monitor", "monitor"));
    }

    #[test]
    fn a_bad_clusters_list_names_the_entry_and_the_setting() {
        let with = |clusters: &str| {
            let clusters = clusters.to_string();
            MonitorConfig::fleet_from_lookup(move |k| {
                if k == "CLUSTERS" {
                    Some(clusters.clone())
                } else {
                    base(k)
                }
            })
            .unwrap_err()
            .to_string()
        };
        assert!(with("{}").contains("JSON list"), "{}", with("{}"));
        assert!(with("[]").contains("empty list"));
        let err = with(r#"[{"CLUSTER": "a", "CONFIG_SECRET_PREFIX": "a/", "RESTART_BUDGETT": 2}]"#);
        assert!(
            err.contains("CLUSTERS[0].RESTART_BUDGETT is not a per-cluster setting"),
            "{err}"
        );
        let err = with(r#"[{"CLUSTER": "a", "CONFIG_SECRET_PREFIX": "a/"}, {"CLUSTER": "b", "RESTART_BUDGET": 0}]"#);
        assert!(err.contains("CLUSTERS[1].CONFIG_SECRET_PREFIX is not set"), "{err}");
        assert!(err.contains("CLUSTERS[1]: RESTART_BUDGET must be"), "{err}");
        let err =
            with(r#"[{"CLUSTER": "a", "CONFIG_SECRET_PREFIX": "a/"}, {"CLUSTER": "a", "CONFIG_SECRET_PREFIX": "b/"}]"#);
        assert!(err.contains("twice"), "{err}");
    }
}
