//! The control-plane functions' payloads and use cases: `findTaskIp`, `checkIfConnectIsReady`,
//! `createConnector`, `deleteConnector`.
//!
//! Payloads come in the Step Functions shapes of the seed (`{"Payload": {...}}`,
//! `{"Context": {"Execution": {"Input": {...}}}}`) or flat, as an operator types them; every
//! field is looked up in all three places, so the forms can be mixed.

use serde_json::{Value, json};

use crate::error_chain as chain;

use super::ports::{ConnectApi, ConnectError, ConnectorConfigs, DiscoveryError, RunningTask, TaskDiscovery};
use super::resume::{Applied, ApplyError, SinkTables, TableProbe, apply};

/// The fields a control-plane payload may carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlRequest {
    /// `ip`: the worker's address, from `findTaskIp`.
    pub ip: Option<String>,
    /// `cluster`: the ECS cluster.
    pub cluster: Option<String>,
    /// `connectorConfigSecret`: the Secrets Manager secret holding `{name, config}`.
    pub config_secret: Option<String>,
    /// `connectorName`.
    pub connector: Option<String>,
}

/// A payload that is not a JSON object, or has a field of the wrong type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid payload: {0}")]
pub struct PayloadError(pub String);

/// Reads a control-plane payload in any of the accepted shapes.
pub fn parse_request(event: &Value) -> Result<ControlRequest, PayloadError> {
    if !event.is_object() {
        return Err(PayloadError(format!("expected a JSON object, found {event}")));
    }
    let field = |name: &str| -> Result<Option<String>, PayloadError> {
        let places = [
            event.get(name),
            event.get("Payload").and_then(|p| p.get(name)),
            event.pointer("/Context/Execution/Input").and_then(|i| i.get(name)),
        ];
        match places.into_iter().flatten().next() {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(other) => Err(PayloadError(format!("`{name}` must be a string, found {other}"))),
        }
    };
    Ok(ControlRequest {
        ip: field("ip")?,
        cluster: field("cluster")?,
        config_secret: field("connectorConfigSecret")?,
        connector: field("connectorName")?,
    })
}

/// Why the Connect worker could not be located.
#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    /// No task of the cluster is RUNNING with an address.
    #[error("no RUNNING Kafka Connect task with an IP address in ECS cluster {cluster}")]
    NoRunningTask {
        /// The cluster.
        cluster: String,
    },
    /// ECS could not be read.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// Nothing says where the worker is.
    #[error("no worker to call: give `ip` or `cluster` in the payload, or set CONNECT_URL or CLUSTER")]
    NoTarget,
}

/// `findTaskIp`: the newest RUNNING task of `cluster`.
pub async fn find_task<D: TaskDiscovery>(discovery: &D, cluster: &str) -> Result<RunningTask, LocateError> {
    let tasks = discovery.running_tasks(cluster).await?;
    tasks.into_iter().next().ok_or_else(|| LocateError::NoRunningTask {
        cluster: cluster.to_string(),
    })
}

/// Why `createConnector` will not send a config to the `ip` it was given: the config carries the
/// licence, so it goes only to a worker of this cluster.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UntrustedWorker {
    /// Not an IP address (a host name, a port or a path would let the request go elsewhere).
    #[error("refused: `ip` {ip:?} is not an IP address; give the address findTaskIp answers")]
    NotAnAddress {
        /// What was given.
        ip: String,
    },
    /// An address, but of no RUNNING task of the cluster.
    #[error(
        "refused: {ip} is not the address of a RUNNING Kafka Connect task of ECS cluster {cluster} (running: {running})"
    )]
    NotATask {
        /// What was given.
        ip: String,
        /// The cluster looked at.
        cluster: String,
        /// The addresses of its RUNNING tasks, comma-separated (`none` when there are none).
        running: String,
    },
    /// `CONNECT_URL` names the worker, and `ip` is not its host.
    #[error("refused: `ip` {ip:?} is not the host of CONNECT_URL ({host})")]
    NotTheConfiguredWorker {
        /// What was given.
        ip: String,
        /// The host of `CONNECT_URL`.
        host: String,
    },
}

/// Whether `ip` is the address of one of `running` (the cluster's RUNNING tasks): the exact IP
/// literal, nothing else (`10.0.1.5`, not `10.0.1.5:443/` or a host name).
pub fn vet_task_address(ip: &str, cluster: &str, running: &[RunningTask]) -> Result<std::net::IpAddr, UntrustedWorker> {
    let address: std::net::IpAddr = ip
        .trim()
        .parse()
        .map_err(|_| UntrustedWorker::NotAnAddress { ip: ip.into() })?;
    if running.iter().any(|t| t.ip.parse::<std::net::IpAddr>() == Ok(address)) {
        return Ok(address);
    }
    let addresses: Vec<&str> = running.iter().map(|t| t.ip.as_str()).collect();
    Err(UntrustedWorker::NotATask {
        ip: ip.into(),
        cluster: cluster.into(),
        running: if addresses.is_empty() {
            "none".into()
        } else {
            addresses.join(", ")
        },
    })
}

/// `checkIfConnectIsReady`'s answer. Never an error: a worker that cannot be reached is not ready.
pub async fn check_ready<A: ConnectApi>(api: &A, ip: &str) -> Value {
    match api.readiness().await {
        Ok(readiness) => json!({"ip": ip, "ready": readiness.takes_requests(), "success": true}),
        Err(e) => json!({"ip": ip, "ready": false, "success": true, "reason": chain(&e)}),
    }
}

/// `createConnector`: reads the config from its secret and applies it (create or update; a sink
/// with a table in `tables` is never resumed into an empty table behind committed offsets,
/// [`super::resume`]). The `ip` is echoed whatever happens, so a state machine can loop on it;
/// failures are `success: false`, a refusal also `refused: true`.
pub async fn create_connector<A: ConnectApi, C: ConnectorConfigs, T: TableProbe>(
    api: &A,
    configs: &C,
    probe: &T,
    tables: &SinkTables,
    ip: &str,
    secret: &str,
) -> Value {
    let config = match configs.get(secret).await {
        Ok(config) => config,
        Err(e) => return json!({"ip": ip, "success": false, "error": chain(&e)}),
    };
    match apply(api, probe, tables, &config).await {
        Ok(Applied::CreatedUnchecked(why)) => {
            json!({"ip": ip, "success": true, "connector": config.name, "created": true, "unchecked": why})
        }
        Ok(applied) => {
            json!({"ip": ip, "success": true, "connector": config.name, "created": applied == Applied::Created})
        }
        Err(e @ ApplyError::Refused { .. }) => {
            json!({"ip": ip, "success": false, "refused": true, "connector": config.name, "error": chain(&e)})
        }
        Err(e) => json!({"ip": ip, "success": false, "connector": config.name, "error": chain(&e)}),
    }
}

/// `deleteConnector`: a connector that is already gone is a success that says so.
pub async fn delete_connector<A: ConnectApi>(api: &A, name: &str) -> Value {
    match api.delete(name).await {
        Ok(()) => json!({"success": true, "connector": name, "message": format!("deleted connector {name}")}),
        Err(ConnectError::NotFound { message }) => json!({"success": true, "connector": name,
            "message": format!("connector {name} was already absent ({message})")}),
        Err(e) => json!({"success": false, "connector": name, "error": chain(&e)}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(ip: &str) -> RunningTask {
        RunningTask {
            arn: format!("arn:aws:ecs:us-east-1:123456789012:task/c/{ip}"),
            ip: ip.into(),
            started_at_millis: None,
        }
    }

    #[test]
    fn only_the_address_of_a_running_task_is_trusted_with_a_config() {
        let running = [task("10.0.1.5"), task("10.0.2.7")];
        assert_eq!(
            vet_task_address("10.0.2.7", "c", &running),
            Ok("10.0.2.7".parse().unwrap())
        );
        for bad in [
            "host.example:443/",
            "10.0.1.5:443",
            "10.0.1.5/x",
            "http://10.0.1.5",
            "10.0.1.5@evil",
            "",
        ] {
            assert!(
                matches!(
                    vet_task_address(bad, "c", &running),
                    Err(UntrustedWorker::NotAnAddress { .. })
                ),
                "{bad:?} is not an address"
            );
        }
        let other = vet_task_address("10.0.3.9", "c", &running).unwrap_err();
        assert_eq!(
            other.to_string(),
            "refused: 10.0.3.9 is not the address of a RUNNING Kafka Connect task of ECS cluster c (running: 10.0.1.5, 10.0.2.7)"
        );
        assert!(
            vet_task_address("10.0.1.5", "c", &[])
                .unwrap_err()
                .to_string()
                .ends_with("(running: none)")
        );
    }

    fn event(file: &str) -> Value {
        let path = format!("{}/../../events/control/{file}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).unwrap()
    }

    #[test]
    fn seed_and_direct_payloads_give_the_same_request() {
        let req =
            |ip: Option<&str>, cluster: Option<&str>, secret: Option<&str>, connector: Option<&str>| ControlRequest {
                ip: ip.map(Into::into),
                cluster: cluster.map(Into::into),
                config_secret: secret.map(Into::into),
                connector: connector.map(Into::into),
            };
        let secret = "mako/connector/seatool";
        let cases = [
            (
                "find-task-ip.json",
                req(None, Some("mako-connector-main-connect"), Some(secret), None),
            ),
            (
                "find-task-ip-direct.json",
                req(None, Some("mako-connector-main-connect"), None, None),
            ),
            (
                "check-if-connect-is-ready.json",
                req(Some("10.0.1.25"), None, None, None),
            ),
            (
                "check-if-connect-is-ready-direct.json",
                req(Some("10.0.1.25"), None, None, None),
            ),
            (
                "create-connector.json",
                req(
                    Some("10.0.1.25"),
                    Some("mako-connector-main-connect"),
                    Some(secret),
                    None,
                ),
            ),
            (
                "create-connector-direct.json",
                req(Some("10.0.1.25"), None, Some(secret), None),
            ),
            (
                "delete-connector.json",
                req(None, Some("mako-connector-main-connect"), None, Some("seatool-sink")),
            ),
        ];
        for (file, expected) in cases {
            assert_eq!(parse_request(&event(file)).unwrap(), expected, "{file}");
        }
    }

    #[test]
    fn bad_payloads_name_the_field() {
        let cases = [
            (json!("x"), "expected a JSON object"),
            (json!({"ip": 10}), "`ip` must be a string"),
            (json!({"Payload": {"ip": {"a": 1}}}), "`ip` must be a string"),
            (
                json!({"Context": {"Execution": {"Input": {"cluster": true}}}}),
                "`cluster` must be a string",
            ),
        ];
        for (input, expected) in cases {
            let err = parse_request(&input).unwrap_err().to_string();
            assert!(err.contains(expected), "{input}: {err}");
        }
        assert_eq!(parse_request(&json!({"ip": "  "})).unwrap().ip, None, "blank is absent");
    }
}
