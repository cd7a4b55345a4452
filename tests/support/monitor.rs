//! A `testConnectors` run wired to moto (secrets, ECS, state table, SNS topic with a queue
//! subscribed) and a Kafka Connect worker, for the tests that drive the monitor.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use connector_adapters::deployed::{DeployedMonitor, deployed_monitor};
use connector_adapters::monitor_state::DynamoDbMonitorStore;
use connector_core::monitor::config::MonitorConfig;
use serde_json::{Value, json};

use crate::{Alert, alert_inbox, create_sink_table, read_alerts, sdk, unique};

/// A monitor with its own cluster name, secrets prefix, state table, topic and queue.
pub struct Monitor {
    pub sdk: SdkConfig,
    pub cluster: String,
    pub prefix: String,
    pub queue: String,
    /// Its settings: a test may change them between runs (the next run uses them).
    pub config: MonitorConfig,
    /// The state table, for tests that read or tamper with it.
    pub store: DynamoDbMonitorStore,
    /// The monitor as deployed, built from `config` (again when it changes).
    deployed: std::sync::Mutex<Option<(MonitorConfig, std::sync::Arc<DeployedMonitor>)>>,
}

impl Monitor {
    /// A monitor of the worker at `url`.
    pub async fn with_url(url: &str) -> Self {
        Self::with_url_and_sdk(url, sdk().await).await
    }

    /// A monitor of the worker at `url` that reaches AWS with `sdk` (the fault proxy's, say).
    pub async fn with_url_and_sdk(url: &str, sdk: SdkConfig) -> Self {
        let table = unique("monitor-state");
        create_sink_table(&sdk, &table).await;
        let (topic, queue) = alert_inbox(&sdk, "alerts").await;
        let prefix = format!("{}/", unique("mako/connector"));
        let (url, topic_arn, table_name, prefix_var) = (url.to_string(), topic.clone(), table.clone(), prefix.clone());
        let config = MonitorConfig::from_lookup(move |k| match k {
            "CONNECT_URL" => Some(url.clone()),
            "CONFIG_SECRET_PREFIX" => Some(prefix_var.clone()),
            "MONITOR_STATE_TABLE" => Some(table_name.clone()),
            "ALERT_TOPIC_ARN" => Some(topic_arn.clone()),
            "RUNBOOK_BASE_URL" => Some("https://runbooks.example/connector/runbooks".into()),
            "CONNECT_TIMEOUT_SECONDS" => Some("5".into()),
            _ => None,
        })
        .unwrap();
        Monitor {
            cluster: unique("connect-cluster"),
            prefix,
            queue,
            config,
            store: DynamoDbMonitorStore::new(aws_sdk_dynamodb::Client::new(&sdk), table),
            deployed: std::sync::Mutex::default(),
            sdk,
        }
    }

    /// The same cluster, state, secrets and inbox with other settings (`CONNECT_URL`, ...).
    pub fn reconfigured(self, change: impl FnOnce(&mut MonitorConfig)) -> Self {
        let mut config = self.config.clone();
        change(&mut config);
        Monitor {
            config,
            deployed: std::sync::Mutex::default(),
            ..self
        }
    }

    /// The same monitor measuring consumer lag on the test broker's TLS listener, a consumer
    /// still for `stall_after_runs` runs being `consumer-stalled`.
    pub fn with_lag(self, stall_after_runs: u32) -> Self {
        let bootstrap = std::env::var("KAFKA_TLS_BOOTSTRAP").expect("KAFKA_TLS_BOOTSTRAP: run through scripts/test");
        let ca = broker_ca();
        self.reconfigured(|c| {
            c.kafka_bootstrap = Some(bootstrap);
            c.kafka_tls = true;
            c.kafka_tls_ca_file = Some(ca);
            c.lag.stall_after_runs = stall_after_runs;
        })
    }

    /// The monitor's audit trail of `connector`, newest first.
    pub async fn store_history(&self, connector: &str) -> Vec<connector_core::monitor::audit::AuditEntry> {
        use connector_core::monitor::ports::MonitorStore;
        self.store
            .history(&self.cluster, Some(connector), 50)
            .await
            .expect("the audit trail")
    }

    /// The deployed monitor for the current settings; kept while they stay the same, so its
    /// secret-value cache lives across runs as in a warm function.
    pub fn deployed(&self) -> std::sync::Arc<DeployedMonitor> {
        let mut slot = self.deployed.lock().unwrap_or_else(|e| e.into_inner());
        match slot.as_ref() {
            Some((config, monitor)) if *config == self.config => monitor.clone(),
            _ => {
                let monitor = std::sync::Arc::new(
                    deployed_monitor(self.config.clone(), &self.sdk).expect("the monitor's TLS settings"),
                );
                *slot = Some((self.config.clone(), monitor.clone()));
                monitor
            }
        }
    }

    /// Stores a connector's desired config as a secret under the monitor's prefix.
    pub async fn desire(&self, name: &str, config: &BTreeMap<String, String>) {
        crate::put_connector_secret(&self.sdk, &self.prefix, name, config).await;
    }

    /// One run, as the seed's runbook invokes it.
    pub async fn run(&self) -> Value {
        self.run_at(crate::now_millis()).await
    }

    /// One run as of `now` (epoch milliseconds), to step past a restart backoff.
    pub async fn run_at(&self, now: i64) -> Value {
        self.run_full(now).await.report
    }

    /// One run as the Lambda makes it, failure included.
    pub async fn try_run(
        &self,
    ) -> Result<connector_core::monitor::run::RunReport, connector_core::monitor::run::MonitorFailure> {
        self.deployed().run(&json!({"cluster": self.cluster})).await
    }

    /// One run as of `now`, with its metric lines; every alert it owed was sent.
    pub async fn run_full(&self, now: i64) -> connector_core::monitor::run::RunReport {
        let out = self
            .deployed()
            .run_at(&json!({"cluster": self.cluster}), now)
            .await
            .unwrap_or_else(|e| panic!("testConnectors failed: {e}"));
        assert!(
            out.alert_failures.is_empty(),
            "alerts not sent: {:?}",
            out.alert_failures
        );
        out
    }

    /// Every alert published so far (and not read before).
    pub async fn alerts(&self) -> Vec<Alert> {
        read_alerts(&self.sdk, &self.queue).await
    }
}

/// The test broker's certificate (PEM), which `scripts/kafka` made for its TLS listener: the CA
/// the lag check trusts besides the system's.
pub fn broker_ca() -> String {
    let truststore = std::env::var("KAFKA_TLS_TRUSTSTORE").expect("KAFKA_TLS_TRUSTSTORE: run through scripts/test");
    std::path::Path::new(&truststore)
        .with_file_name("broker.pem")
        .to_string_lossy()
        .into_owned()
}

/// The findings of `connector` in a run's report.
pub fn findings(report: &Value, connector: &str) -> Vec<Value> {
    report["connectors"]
        .as_array()
        .expect("connectors in report")
        .iter()
        .find(|c| c["name"] == connector)
        .unwrap_or_else(|| panic!("{connector} not in report: {report}"))["findings"]
        .as_array()
        .expect("findings")
        .clone()
}
