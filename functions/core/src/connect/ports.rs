//! What the control plane needs from the world: the Kafka Connect REST API, where the workers
//! run (ECS), and the desired connector configs (Secrets Manager).

use std::collections::BTreeMap;
use std::future::Future;

use super::model::{
    ConnectorConfig, ConnectorInfo, ConnectorStatus, ConnectorView, PluginInfo, SinkOffset, WorkerInfo,
};
use crate::sink::ports::BoxError;

/// Why a Kafka Connect REST call failed, as a caller needs to tell apart.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// 404 with Connect's message (unknown connector or task; or an unknown route on old workers).
    #[error("not found (404): {message}")]
    NotFound {
        /// Connect's message.
        message: String,
    },
    /// 409: a rebalance is under way (or, on create, the connector exists). Transient.
    #[error("conflict, the worker is rebalancing (409): {message}")]
    Rebalancing {
        /// Connect's message.
        message: String,
    },
    /// 401/403: the worker's REST API requires credentials (basic authentication) and refused
    /// the ones sent, or none were sent.
    #[error(
        "the worker refused the REST credentials ({status}): {message}; give the username and password of its \
         REST_AUTH secret"
    )]
    Unauthorized {
        /// HTTP status.
        status: u16,
        /// The worker's message.
        message: String,
    },
    /// 400/422 and other 4xx: the request itself is refused (invalid config, missing plugin class).
    #[error("request refused ({status}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Connect's message.
        message: String,
    },
    /// 5xx: the worker failed (herder timeout after 90 s, forwarding error, shutting down).
    #[error("worker error ({status}): {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// Connect's message.
        message: String,
    },
    /// No answer within the client's timeout; a write may still have been applied.
    #[error("no answer from {url} within {seconds} s")]
    Timeout {
        /// The URL called.
        url: String,
        /// The timeout.
        seconds: u64,
    },
    /// No connection (refused, DNS, network).
    #[error("cannot reach {url}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// The worker answered something this client cannot read.
    #[error("unexpected answer from {url}: {reason}")]
    UnexpectedBody {
        /// The URL called.
        url: String,
        /// What was wrong, naming the field.
        reason: String,
    },
}

impl ConnectError {
    /// Whether the connector (or task) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ConnectError::NotFound { .. })
    }
}

/// The answer to `PUT /connectors/{name}/config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutConfigOutcome {
    /// 201: the connector did not exist and was created; 200: its config was replaced.
    pub created: bool,
    /// The connector as the worker now holds it.
    pub info: ConnectorInfo,
}

/// The answer to `POST /connectors/{name}/restart?includeTasks=true&onlyFailed=true`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestartOutcome {
    /// 202 (KIP-745): the plan, with what will restart marked RESTARTING.
    Planned(ConnectorStatus),
    /// 204: a worker older than 3.0 ignored the parameters and restarted only the connector
    /// instance; failed tasks must be restarted one by one.
    ConnectorOnly,
}

/// Whether a worker can be trusted to list its connectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// `GET /health` said healthy (3.9+): the worker has joined its group and read its configs.
    Ready,
    /// `GET /health` answered 503, or the connector list is not served yet: starting.
    Starting,
    /// No `/health` (before 3.9), and `GET /connectors` answers. Such a worker lists nothing until
    /// it has read its config topic, so an empty list proves nothing in its first minutes.
    Unproven,
}

impl Readiness {
    /// Whether requests can be sent (`checkIfConnectIsReady`): ready, or up without `/health`.
    pub fn takes_requests(self) -> bool {
        !matches!(self, Readiness::Starting)
    }
}

/// The Kafka Connect REST API of one worker (any worker: writes are forwarded to the leader).
pub trait ConnectApi: Send + Sync {
    /// The worker's base URL, for messages.
    fn url(&self) -> &str;
    /// `GET /`: the worker's version and Kafka cluster.
    fn server_info(&self) -> impl Future<Output = Result<WorkerInfo, ConnectError>> + Send;
    /// `GET /health` (3.9+), else `GET /connectors`: whether the worker has joined its group and
    /// can take requests. `GET /` alone answers before that.
    fn readiness(&self) -> impl Future<Output = Result<Readiness, ConnectError>> + Send;
    /// `GET /connectors?expand=status&expand=info`.
    fn list_expanded(&self) -> impl Future<Output = Result<Vec<ConnectorView>, ConnectError>> + Send;
    /// `GET /connectors/{name}/status`.
    fn status(&self, name: &str) -> impl Future<Output = Result<ConnectorStatus, ConnectError>> + Send;
    /// `PUT /connectors/{name}/config`: create or update.
    fn put_config(
        &self,
        name: &str,
        config: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<PutConfigOutcome, ConnectError>> + Send;
    /// `DELETE /connectors/{name}`.
    fn delete(&self, name: &str) -> impl Future<Output = Result<(), ConnectError>> + Send;
    /// `POST /connectors` with `initial_state: STOPPED` (Connect 3.5+, KIP-980): created, no task
    /// started, its offsets readable and changeable before anything is consumed.
    fn create_stopped(
        &self,
        name: &str,
        config: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), ConnectError>> + Send;
    /// `POST /connectors/{name}/restart?includeTasks=true&onlyFailed=true`.
    fn restart_failed(&self, name: &str) -> impl Future<Output = Result<RestartOutcome, ConnectError>> + Send;
    /// `POST /connectors/{name}/tasks/{id}/restart`.
    fn restart_task(&self, name: &str, task: i32) -> impl Future<Output = Result<(), ConnectError>> + Send;
    /// `PUT /connectors/{name}/pause`.
    fn pause(&self, name: &str) -> impl Future<Output = Result<(), ConnectError>> + Send;
    /// `PUT /connectors/{name}/resume`.
    fn resume(&self, name: &str) -> impl Future<Output = Result<(), ConnectError>> + Send;
    /// `PUT /connectors/{name}/stop`.
    fn stop(&self, name: &str) -> impl Future<Output = Result<(), ConnectError>> + Send;
    /// `GET /connectors/{name}/offsets` (3.5+) of a sink connector. A worker without the API
    /// answers 404, as for an unknown connector.
    fn sink_offsets(&self, name: &str) -> impl Future<Output = Result<Vec<SinkOffset>, ConnectError>> + Send;
    /// `PATCH /connectors/{name}/offsets` (3.6+, the connector STOPPED): moves a sink
    /// connector's partitions to `offsets`; Connect's message.
    fn alter_sink_offsets(
        &self,
        name: &str,
        offsets: &[SinkOffset],
    ) -> impl Future<Output = Result<String, ConnectError>> + Send;
    /// `DELETE /connectors/{name}/offsets` (3.6+, the connector STOPPED): forgets its offsets,
    /// so it starts again from `auto.offset.reset`; Connect's message.
    fn reset_offsets(&self, name: &str) -> impl Future<Output = Result<String, ConnectError>> + Send;
    /// `GET /connector-plugins`: the connector classes the worker can run.
    fn plugins(&self) -> impl Future<Output = Result<Vec<PluginInfo>, ConnectError>> + Send;
}

/// A running Kafka Connect task (an ECS task) and its private address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningTask {
    /// The task ARN.
    pub arn: String,
    /// Its private IPv4 address.
    pub ip: String,
    /// When it started (ms since the epoch), for "newest first".
    pub started_at_millis: Option<i64>,
}

/// Discovery failed: the cluster could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot list the tasks of ECS cluster {cluster}")]
pub struct DiscoveryError {
    /// The cluster.
    pub cluster: String,
    /// The underlying error.
    #[source]
    pub source: BoxError,
}

/// Where the Connect workers run.
pub trait TaskDiscovery: Send + Sync {
    /// Every task of `cluster` that is RUNNING and has an address, newest first.
    fn running_tasks(&self, cluster: &str) -> impl Future<Output = Result<Vec<RunningTask>, DiscoveryError>> + Send;
}

/// Why a connector config could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The secret does not exist.
    #[error("secret {secret} not found")]
    NotFound {
        /// The secret id.
        secret: String,
    },
    /// The secret is not `{"name": "...", "config": {string: string}}`.
    #[error("secret {secret} is not a connector config: {reason}")]
    Invalid {
        /// The secret id.
        secret: String,
        /// What was wrong, naming the field.
        reason: String,
    },
    /// Secrets Manager failed.
    #[error("cannot read secret {secret}")]
    Unavailable {
        /// The secret id (or prefix, for a listing).
        secret: String,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
}

/// The configs found under a prefix, and the secrets that could not be read (each by name).
#[derive(Debug, Default)]
pub struct LoadedConfigs {
    /// Parsed configs.
    pub configs: Vec<ConnectorConfig>,
    /// Secrets that are not connector configs, with the reason; the others still load.
    pub problems: Vec<ConfigError>,
}

/// Where desired connector configs are stored.
pub trait ConnectorConfigs: Send + Sync {
    /// One config by secret id (name or ARN).
    fn get(&self, secret: &str) -> impl Future<Output = Result<ConnectorConfig, ConfigError>> + Send;
    /// Every config whose secret name starts with `prefix`.
    fn list(&self, prefix: &str) -> impl Future<Output = Result<LoadedConfigs, ConfigError>> + Send;
}

/// Parses a secret's text as `{"name": "...", "config": {...}}`. Config values must be strings
/// (Connect takes nothing else); numbers and booleans are accepted and turned into strings, as an
/// operator writing the secret by hand would expect.
pub fn parse_connector_config(secret: &str, text: &str) -> Result<ConnectorConfig, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        secret: secret.to_string(),
        reason,
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| invalid(format!("not JSON: {e}")))?;
    let name = match value.get("name") {
        Some(serde_json::Value::String(n)) if !n.trim().is_empty() => n.trim().to_string(),
        Some(_) => return Err(invalid("`name` is not a non-empty string".into())),
        None => return Err(invalid("`name` is missing".into())),
    };
    let Some(serde_json::Value::Object(map)) = value.get("config") else {
        return Err(invalid("`config` is missing or not an object".into()));
    };
    let mut config = BTreeMap::new();
    for (k, v) in map {
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => return Err(invalid(format!("`config.{k}` is not a string"))),
        };
        config.insert(k.clone(), text);
    }
    if let Some(inner) = config.get("name")
        && inner != &name
    {
        return Err(invalid(format!("`config.name` ({inner}) differs from `name` ({name})")));
    }
    if !config.contains_key("connector.class") {
        return Err(invalid("`config.connector.class` is missing".into()));
    }
    Ok(ConnectorConfig { name, config })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connector_config_secrets_parse_or_name_the_problem() {
        let ok = parse_connector_config(
            "s",
            r#"{"name":"seatool","config":{"connector.class":"X","tasks.max":1,"errors.log.enable":true}}"#,
        )
        .unwrap();
        assert_eq!(ok.name, "seatool");
        assert_eq!(ok.config["tasks.max"], "1");
        assert_eq!(ok.config["errors.log.enable"], "true");
        let cases = [
            ("nope", "not JSON"),
            (r#"{"config":{}}"#, "`name` is missing"),
            (r#"{"name":"","config":{}}"#, "`name` is not a non-empty string"),
            (r#"{"name":"a"}"#, "`config` is missing"),
            (r#"{"name":"a","config":{"x":[1]}}"#, "`config.x` is not a string"),
            (
                r#"{"name":"a","config":{"name":"b","connector.class":"X"}}"#,
                "differs from `name`",
            ),
            (r#"{"name":"a","config":{"topics":"t"}}"#, "connector.class` is missing"),
        ];
        for (text, expected) in cases {
            let err = parse_connector_config("my/secret", text).unwrap_err().to_string();
            assert!(err.contains(expected) && err.contains("my/secret"), "{text}: {err}");
        }
    }
}
