//! `testConnectors`' configuration: read from the function's environment by the Lambda, and
//! from the same variable names by `connectorctl check`.

use std::collections::BTreeSet;
use std::time::Duration;

use super::evaluate::Settings;
use super::restart::RestartPolicy;
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
    pub lag: super::lag::LagSettings,
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
            lag: super::lag::LagSettings {
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
