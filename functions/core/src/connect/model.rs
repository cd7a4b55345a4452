//! Connectors and tasks: status, info and configs.

use std::collections::BTreeMap;

/// The state of a connector or task (`AbstractStatus.State`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Running.
    Running,
    /// Paused by an operator (`PUT .../pause`).
    Paused,
    /// Stopped by an operator (`PUT .../stop`); its tasks are not listed.
    Stopped,
    /// Threw an exception; Connect never restarts it by itself.
    Failed,
    /// Not assigned to a worker (yet, or during a rebalance).
    Unassigned,
    /// A restart is pending or in progress.
    Restarting,
    /// A state this code does not know, kept as the worker spelled it.
    Other(String),
}

impl State {
    /// Parses the worker's spelling; unknown states are kept, not rejected.
    pub fn parse(text: &str) -> State {
        match text {
            "RUNNING" => State::Running,
            "PAUSED" => State::Paused,
            "STOPPED" => State::Stopped,
            "FAILED" => State::Failed,
            "UNASSIGNED" => State::Unassigned,
            "RESTARTING" => State::Restarting,
            other => State::Other(other.to_string()),
        }
    }

    /// The worker's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            State::Running => "RUNNING",
            State::Paused => "PAUSED",
            State::Stopped => "STOPPED",
            State::Failed => "FAILED",
            State::Unassigned => "UNASSIGNED",
            State::Restarting => "RESTARTING",
            State::Other(s) => s,
        }
    }
}

/// The state of a connector instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentStatus {
    /// Its state.
    pub state: State,
    /// `host:port` of the worker that last reported it.
    pub worker_id: String,
    /// The Java stack trace of a failure.
    pub trace: Option<String>,
}

/// The state of one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskStatus {
    /// Task number.
    pub id: i32,
    /// Its state.
    pub state: State,
    /// `host:port` of the worker that last reported it.
    pub worker_id: String,
    /// The Java stack trace of a failure.
    pub trace: Option<String>,
}

/// `GET /connectors/{name}/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorStatus {
    /// Connector name.
    pub name: String,
    /// The connector instance.
    pub connector: ComponentStatus,
    /// Its tasks, by id.
    pub tasks: Vec<TaskStatus>,
    /// `source`, `sink` or `unknown`.
    pub kind: Option<String>,
}

/// `GET /connectors/{name}`: the running config and task ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorInfo {
    /// Connector name.
    pub name: String,
    /// Its config as the worker holds it (with `name` added).
    pub config: BTreeMap<String, String>,
    /// Task ids.
    pub tasks: Vec<i32>,
    /// `source`, `sink` or `unknown`.
    pub kind: Option<String>,
}

/// One connector of `GET /connectors?expand=status&expand=info`; either part can be missing
/// (a just-created connector has no status yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorView {
    /// Connector name.
    pub name: String,
    /// Its status, when the worker has one.
    pub status: Option<ConnectorStatus>,
    /// Its info, when the worker has it.
    pub info: Option<ConnectorInfo>,
}

/// A sink connector's committed position in one partition (`GET /connectors/{name}/offsets`,
/// KIP-875): the next offset its consumer group will read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct SinkOffset {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The committed offset.
    pub offset: i64,
}

/// One plugin of `GET /connector-plugins`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PluginInfo {
    /// The connector class.
    pub class: String,
    /// `sink` or `source`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its version, where it says.
    pub version: Option<String>,
}

/// `GET /`: which Kafka Connect a worker runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    /// The Connect runtime version (vendor builds may spell it their way).
    pub version: String,
    /// The runtime's git commit.
    pub commit: String,
    /// The Kafka cluster the worker belongs to.
    pub kafka_cluster_id: Option<String>,
}

/// A connector's desired config, as stored in Secrets Manager: `{"name": ..., "config": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorConfig {
    /// Connector name.
    pub name: String,
    /// Flat string config (Connect takes strings only).
    pub config: BTreeMap<String, String>,
}

impl ConnectorConfig {
    /// The config with every secret-looking value replaced and every other value redacted by
    /// rule (a password in a URL), for logs and diffs.
    pub fn redacted(&self) -> BTreeMap<String, String> {
        self.config
            .iter()
            .map(|(k, v)| {
                let shown = if crate::redact::is_secret_property(k) {
                    crate::redact::REDACTED.to_string()
                } else {
                    crate::redact::redact_text(v)
                };
                (k.clone(), shown)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_looking_properties_are_redacted_and_others_kept() {
        let config = ConnectorConfig {
            name: "c".into(),
            config: BTreeMap::from([
                ("topics".into(), "t".into()),
                ("aws.secret.access.key".into(), "hunter2".into()),
                (
                    "sasl.jaas.config".into(),
                    "PlainLoginModule required password=\"hunter2\";".into(),
                ),
                (
                    "connection.url".into(),
                    "jdbc:postgresql://app:hunter2@db:5432/x".into(),
                ),
            ]),
        };
        let shown = config.redacted();
        assert_eq!(shown["topics"], "t");
        assert_eq!(shown["aws.secret.access.key"], "[redacted]");
        assert_eq!(shown["sasl.jaas.config"], "[redacted]");
        assert_eq!(shown["connection.url"], "jdbc:postgresql://app:[redacted]@db:5432/x");
        assert!(!format!("{shown:?}").contains("hunter2"));
    }

    #[test]
    fn states_round_trip_and_unknown_ones_are_kept() {
        for s in [
            "RUNNING",
            "PAUSED",
            "STOPPED",
            "FAILED",
            "UNASSIGNED",
            "RESTARTING",
            "DESTROYED",
        ] {
            assert_eq!(State::parse(s).as_str(), s);
        }
        assert_eq!(State::parse("DESTROYED"), State::Other("DESTROYED".into()));
    }
}
