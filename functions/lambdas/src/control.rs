//! `findTaskIp`, `checkIfConnectIsReady`, `createConnector`, `deleteConnector`: the control-plane
//! functions the runbooks and the configure-connector state machine call.
//!
//! Which worker a call goes to: the payload's `ip` (`http://<ip>:<CONNECT_PORT>`), else
//! `CONNECT_URL` (a stable name or load balancer in front of the workers), else the RUNNING tasks
//! of the payload's `cluster` or of `CLUSTER`, newest first.

use std::time::Duration;

use connector_adapters::connect::{BasicAuth, HttpConnectApi};
use connector_core::connect::control::{
    ControlRequest, LocateError, UntrustedWorker, check_ready, create_connector, delete_connector, find_task,
    parse_request, vet_task_address,
};
use connector_core::connect::resume::{SinkTables, TableProbe};
use connector_core::connect::{ConnectError, ConnectorConfigs, TaskDiscovery};
use connector_core::error_chain;
use lambda_runtime::Diagnostic;
use serde_json::{Value, json};

use crate::config::{ConfigError, Env};

/// The control functions' configuration, read once per cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlConfig {
    /// `CLUSTER`: the ECS cluster of the Connect workers, when the payload names none.
    pub cluster: Option<String>,
    /// `CONNECT_URL`: a fixed worker URL that bypasses ECS discovery.
    pub connect_url: Option<String>,
    /// `CONNECT_PORT` (default 8083): the REST port on a task's IP.
    pub connect_port: u16,
    /// `CONNECT_TIMEOUT_SECONDS` (default 10, 1–60): the limit on each REST call.
    pub connect_timeout: Duration,
    /// `CONNECT_CREDENTIALS_SECRET`: the secret of the workers' REST credentials, read at each
    /// invocation into `auth` ([`main`]).
    pub credentials_secret: Option<String>,
    /// The REST credentials sent to the workers (none: no `Authorization` header).
    pub auth: Option<BasicAuth>,
    /// `LICENSE_SECRET_ARN`: the Confluent licence put into each config `createConnector` applies.
    pub license_secret: Option<String>,
    /// `SINK_TABLES`: `{"<topic>": "<table>"}`, the table of the sink that reads each topic; a
    /// sink on one of them is not resumed into an empty table behind committed offsets.
    pub sink_tables: SinkTables,
}

impl ControlConfig {
    /// Reads the configuration through `lookup`, naming every invalid variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = Env::new(lookup);
        let cluster = env.optional("CLUSTER");
        let connect_url = env.optional_url("CONNECT_URL", "a Kafka Connect REST URL");
        let credentials_secret = env.optional("CONNECT_CREDENTIALS_SECRET");
        let license_secret = env.optional("LICENSE_SECRET_ARN");
        let sink_tables = env.json("SINK_TABLES", "a JSON object of topic to table name");
        let connect_port = env.parsed("CONNECT_PORT", 8083u16, "a TCP port from 1 to 65535", |p| *p > 0);
        let seconds = env.parsed(
            "CONNECT_TIMEOUT_SECONDS",
            10u64,
            "a number of seconds from 1 to 60",
            |s| (1..=60).contains(s),
        );
        env.finish()?;
        Ok(Self {
            cluster,
            connect_url,
            connect_port,
            connect_timeout: Duration::from_secs(seconds),
            credentials_secret,
            auth: None,
            license_secret,
            sink_tables,
        })
    }

    /// The REST client for a worker URL, with the credentials.
    fn api(&self, url: &str) -> Result<HttpConnectApi, ConnectError> {
        HttpConnectApi::new(url, self.connect_timeout).map(|api| api.with_auth(self.auth.clone()))
    }

    /// The REST client for a worker address (an IP or host from `findTaskIp`).
    fn api_for_ip(&self, ip: &str) -> Result<HttpConnectApi, ConnectError> {
        match ip.parse::<std::net::Ipv6Addr>() {
            Ok(v6) => self.api(&format!("http://[{v6}]:{}", self.connect_port)),
            Err(_) => self.api(&format!("http://{ip}:{}", self.connect_port)),
        }
    }
}

/// `config` with the REST credentials of `CONNECT_CREDENTIALS_SECRET` read now (each invocation:
/// a rotated secret counts at once); unchanged when no secret is configured.
pub async fn with_credentials(
    config: &ControlConfig,
    secrets: &connector_adapters::secrets::Client,
) -> Result<ControlConfig, connector_adapters::secrets::RestCredentialsError> {
    let Some(secret) = &config.credentials_secret else {
        return Ok(config.clone());
    };
    let auth = connector_adapters::secrets::read_rest_credentials(secrets, secret).await?;
    Ok(ControlConfig {
        auth: Some(auth),
        ..config.clone()
    })
}

/// Why a control function failed outright (only `findTaskIp` fails; the others answer
/// `success: false`, so that the state machine keeps the `ip` and decides).
#[derive(Debug, thiserror::Error)]
pub enum ControlFailure {
    /// The payload is not usable.
    #[error(transparent)]
    InvalidPayload(#[from] connector_core::connect::control::PayloadError),
    /// No worker could be located.
    #[error(transparent)]
    Locate(#[from] LocateError),
}

impl From<ControlFailure> for Diagnostic {
    fn from(failure: ControlFailure) -> Self {
        let error_type = match &failure {
            ControlFailure::InvalidPayload(_) => "InvalidPayload",
            ControlFailure::Locate(LocateError::NoRunningTask { .. }) => "NoRunningTask",
            ControlFailure::Locate(LocateError::Discovery(_)) => "DiscoveryFailed",
            ControlFailure::Locate(LocateError::NoTarget) => "NoTarget",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: error_chain(&failure),
        }
    }
}

/// The worker addresses to try for a request, best first, as (label for `ip`, REST client).
async fn workers<D: TaskDiscovery>(
    config: &ControlConfig,
    discovery: &D,
    request: &ControlRequest,
) -> Result<Vec<(String, Result<HttpConnectApi, ConnectError>)>, LocateError> {
    if let Some(ip) = &request.ip {
        return Ok(vec![(ip.clone(), config.api_for_ip(ip))]);
    }
    if let Some(url) = &config.connect_url {
        return Ok(vec![(host_of(url), config.api(url))]);
    }
    let cluster = request
        .cluster
        .as_ref()
        .or(config.cluster.as_ref())
        .ok_or(LocateError::NoTarget)?;
    let tasks = discovery.running_tasks(cluster).await?;
    if tasks.is_empty() {
        return Err(LocateError::NoRunningTask {
            cluster: cluster.clone(),
        });
    }
    Ok(tasks
        .into_iter()
        .map(|t| (t.ip.clone(), config.api_for_ip(&t.ip)))
        .collect())
}

/// The host of an http(s) URL (what `findTaskIp` answers when `CONNECT_URL` bypasses discovery).
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6).to_string(),
        None => host.split(':').next().unwrap_or(host).to_string(),
    }
}

/// `findTaskIp`: `{"ip": "10.x.x.x", "success": true}`, or an error naming the cluster.
pub async fn handle_find_task_ip<D: TaskDiscovery>(
    config: &ControlConfig,
    discovery: &D,
    event: &Value,
) -> Result<Value, ControlFailure> {
    let request = parse_request(event)?;
    if let Some(url) = &config.connect_url {
        return Ok(json!({"ip": host_of(url), "success": true}));
    }
    let cluster = request
        .cluster
        .or_else(|| config.cluster.clone())
        .ok_or(LocateError::NoTarget)?;
    let task = find_task(discovery, &cluster).await?;
    tracing::info!(cluster, task = task.arn, ip = task.ip, "found the Kafka Connect task");
    Ok(json!({"ip": task.ip, "success": true}))
}

/// `checkIfConnectIsReady`: `{"ip", "ready", "success"}`; never an error.
pub async fn handle_check_ready(config: &ControlConfig, event: &Value) -> Value {
    let request = match parse_request(event) {
        Ok(r) => r,
        Err(e) => return json!({"ready": false, "success": false, "error": e.to_string()}),
    };
    let (ip, api) = match (&request.ip, &config.connect_url) {
        (Some(ip), _) => (ip.clone(), config.api_for_ip(ip)),
        (None, Some(url)) => (host_of(url), config.api(url)),
        (None, None) => {
            return json!({"ready": false, "success": false, "error": "no `ip` in the payload and CONNECT_URL is not set"});
        }
    };
    match api {
        Ok(api) => check_ready(&api, &ip).await,
        Err(e) => json!({"ip": ip, "ready": false, "success": false, "error": error_chain(&e)}),
    }
}

/// `createConnector`: `{"ip", "success", "connector", "created"}`; failures are `success: false`
/// with the `ip` echoed.
pub async fn handle_create_connector<C: ConnectorConfigs, D: TaskDiscovery, T: TableProbe>(
    config: &ControlConfig,
    configs: &C,
    discovery: &D,
    probe: &T,
    event: &Value,
) -> Value {
    let request = match parse_request(event) {
        Ok(r) => r,
        Err(e) => return json!({"success": false, "error": e.to_string()}),
    };
    let Some(secret) = request.config_secret.clone() else {
        return json!({"ip": request.ip, "success": false, "error": "`connectorConfigSecret` is missing"});
    };
    // The config goes to the address as vetted, never to the payload's text.
    let mut request = request;
    if let Some(ip) = request.ip.clone() {
        match vet_ip(config, discovery, &request, &ip).await {
            Ok(vetted) => request.ip = Some(vetted),
            Err(refusal) => {
                tracing::warn!(secret, ip, refusal, "createConnector refused the worker address");
                return json!({"ip": ip, "success": false, "error": refusal});
            }
        }
    }
    let candidates = match workers(config, discovery, &request).await {
        Ok(c) => c,
        Err(e) => return json!({"ip": request.ip, "success": false, "error": error_chain(&e)}),
    };
    let answer = first_reached(
        candidates,
        async |ip, api| create_connector(api, configs, probe, &config.sink_tables, ip, &secret).await,
        |ip, e| json!({"ip": ip, "success": false, "error": error_chain(e)}),
    )
    .await;
    tracing::info!(secret, answer = %answer, "createConnector");
    answer
}

/// Whether a connector config (which carries the licence) may go to `ip`: the host of
/// `CONNECT_URL` when that names the worker, else the address of a RUNNING task of `CLUSTER` (or
/// of the payload's cluster when `CLUSTER` is unset), read from ECS now. Answers the address to
/// send it to.
async fn vet_ip<D: TaskDiscovery>(
    config: &ControlConfig,
    discovery: &D,
    request: &ControlRequest,
    ip: &str,
) -> Result<String, String> {
    if let Some(url) = &config.connect_url {
        let host = host_of(url);
        return if ip.trim() == host {
            Ok(host)
        } else {
            Err(UntrustedWorker::NotTheConfiguredWorker { ip: ip.into(), host }.to_string())
        };
    }
    let cluster = config
        .cluster
        .as_ref()
        .or(request.cluster.as_ref())
        .ok_or("refused: no CLUSTER (nor `cluster` in the payload) to check `ip` against")?;
    let running = discovery.running_tasks(cluster).await.map_err(|e| {
        format!(
            "refused: cannot check `ip` against ECS cluster {cluster}: {}",
            error_chain(&e)
        )
    })?;
    vet_task_address(ip, cluster, &running)
        .map(|address| address.to_string())
        .map_err(|e| e.to_string())
}

/// `deleteConnector`: `{"success", "connector", "message"}`; an absent connector is a success
/// that says so; other failures are `success: false` with the error.
pub async fn handle_delete_connector<D: TaskDiscovery>(config: &ControlConfig, discovery: &D, event: &Value) -> Value {
    let request = match parse_request(event) {
        Ok(r) => r,
        Err(e) => return json!({"success": false, "error": e.to_string()}),
    };
    let Some(name) = request.connector.clone() else {
        return json!({"success": false, "error": "`connectorName` is missing"});
    };
    let candidates = match workers(config, discovery, &request).await {
        Ok(c) => c,
        Err(e) => return json!({"success": false, "connector": name, "error": error_chain(&e)}),
    };
    let answer = first_reached(
        candidates,
        async |_, api| delete_connector(api, &name).await,
        |_, e| json!({"success": false, "connector": name, "error": error_chain(e)}),
    )
    .await;
    tracing::info!(connector = name, answer = %answer, "deleteConnector");
    answer
}

/// Calls the candidate workers in turn until one is reached, and returns that answer (or the
/// last one when none was reached).
async fn first_reached(
    candidates: Vec<(String, Result<HttpConnectApi, ConnectError>)>,
    call: impl AsyncFn(&str, &HttpConnectApi) -> Value,
    unusable: impl Fn(&str, &ConnectError) -> Value,
) -> Value {
    let mut answer = json!({"success": false});
    for (ip, api) in candidates {
        answer = match api {
            Ok(api) => call(&ip, &api).await,
            Err(e) => unusable(&ip, &e),
        };
        if !is_unreachable(&answer) {
            break;
        }
    }
    answer
}

/// Whether an answer failed only because its worker could not be reached (try the next task).
fn is_unreachable(answer: &Value) -> bool {
    answer["success"] == false
        && answer["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("cannot reach") || e.starts_with("no answer from"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_address_becomes_its_rest_url_an_ipv6_one_in_brackets() {
        use connector_core::connect::ConnectApi;
        let config = ControlConfig::from_lookup(|_| None).unwrap();
        assert_eq!(config.api_for_ip("10.0.1.5").unwrap().url(), "http://10.0.1.5:8083");
        assert_eq!(config.api_for_ip("fd00::5").unwrap().url(), "http://[fd00::5]:8083");
    }

    #[test]
    fn host_of_a_url() {
        assert_eq!(host_of("http://127.0.0.1:8083"), "127.0.0.1");
        assert_eq!(host_of("https://connect.internal/"), "connect.internal");
        assert_eq!(host_of("http://user@[::1]:8083/x"), "::1");
    }

    #[test]
    fn config_defaults_and_errors() {
        let c = ControlConfig::from_lookup(|_| None).unwrap();
        assert_eq!(
            (c.connect_port, c.connect_timeout.as_secs(), c.cluster, c.connect_url),
            (8083, 10, None, None)
        );
        let err = ControlConfig::from_lookup(|k| match k {
            "CONNECT_URL" => Some("connect:8083".into()),
            "CONNECT_PORT" => Some("0".into()),
            "CONNECT_TIMEOUT_SECONDS" => Some("600".into()),
            _ => None,
        })
        .unwrap_err();
        assert_eq!(err.problems.len(), 3, "{err}");
    }
}

/// The `main` of each control function: configuration and clients once, then the runtime loop.
pub mod main {
    use std::time::Duration;

    use connector_adapters::ecs::EcsTaskDiscovery;
    use connector_adapters::secrets::SecretsManagerConfigs;
    use connector_adapters::table_probe::DynamoDbTableProbe;
    use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
    use serde_json::Value;

    use super::*;
    use crate::logging;

    async fn setup() -> Result<(ControlConfig, aws_config::SdkConfig), lambda_runtime::Error> {
        logging::init();
        let config = ControlConfig::from_lookup(|k| std::env::var(k).ok())
            .inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
        let sdk = connector_adapters::aws::load_sdk_config(Duration::from_secs(10), 3).await;
        Ok((config, sdk))
    }

    /// The config of one invocation (with the REST credentials), or the answer saying why not.
    async fn invocation(
        config: &ControlConfig,
        secrets: &connector_adapters::secrets::Client,
        failed: Value,
    ) -> Result<ControlConfig, Value> {
        with_credentials(config, secrets).await.map_err(|e| {
            tracing::error!(error = %error_chain(&e), "cannot read the REST credentials");
            let mut answer = failed;
            answer["success"] = false.into();
            answer["error"] = error_chain(&e).into();
            answer
        })
    }

    /// `findTaskIp`.
    pub async fn find_task_ip() -> Result<(), lambda_runtime::Error> {
        let (config, sdk) = setup().await?;
        let discovery = EcsTaskDiscovery::new(connector_adapters::ecs::Client::new(&sdk));
        let (config, discovery) = (&config, &discovery);
        lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
            handle_find_task_ip(config, discovery, &event.payload)
                .await
                .map_err(Diagnostic::from)
        }))
        .await
    }

    /// `checkIfConnectIsReady`.
    pub async fn check_if_connect_is_ready() -> Result<(), lambda_runtime::Error> {
        let (config, sdk) = setup().await?;
        let secrets = connector_adapters::secrets::Client::new(&sdk);
        let (config, secrets) = (&config, &secrets);
        lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
            let answer = match invocation(config, secrets, json!({"ready": false})).await {
                Ok(config) => handle_check_ready(&config, &event.payload).await,
                Err(answer) => answer,
            };
            Ok::<_, Diagnostic>(answer)
        }))
        .await
    }

    /// `createConnector`.
    pub async fn create_connector() -> Result<(), lambda_runtime::Error> {
        let (config, sdk) = setup().await?;
        let configs = SecretsManagerConfigs::new(connector_adapters::secrets::Client::new(&sdk))
            .with_license_secret(config.license_secret.clone());
        let secrets = connector_adapters::secrets::Client::new(&sdk);
        let discovery = EcsTaskDiscovery::new(connector_adapters::ecs::Client::new(&sdk));
        let probe = DynamoDbTableProbe::new(connector_adapters::table_probe::Client::new(&sdk));
        let (config, configs, secrets, discovery, probe) = (&config, &configs, &secrets, &discovery, &probe);
        lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
            let answer = match invocation(config, secrets, json!({})).await {
                Ok(config) => handle_create_connector(&config, configs, discovery, probe, &event.payload).await,
                Err(answer) => answer,
            };
            Ok::<_, Diagnostic>(answer)
        }))
        .await
    }

    /// `deleteConnector`.
    pub async fn delete_connector() -> Result<(), lambda_runtime::Error> {
        let (config, sdk) = setup().await?;
        let secrets = connector_adapters::secrets::Client::new(&sdk);
        let discovery = EcsTaskDiscovery::new(connector_adapters::ecs::Client::new(&sdk));
        let (config, secrets, discovery) = (&config, &secrets, &discovery);
        lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
            let answer = match invocation(config, secrets, json!({})).await {
                Ok(config) => handle_delete_connector(&config, discovery, &event.payload).await,
                Err(answer) => answer,
            };
            Ok::<_, Diagnostic>(answer)
        }))
        .await
    }
}
