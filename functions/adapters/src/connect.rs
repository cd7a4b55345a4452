//! The Kafka Connect REST API over HTTP (reqwest): every call with a timeout, connector names
//! percent-encoded as one path segment, 409 retried with a short bounded backoff; and
//! [`HttpWorkers`], which locates a cluster's workers (a fixed URL, or ECS discovery).

use std::collections::BTreeMap;
use std::time::Duration;

use connector_core::connect::ports::{PutConfigOutcome, Readiness, RestartOutcome};
use connector_core::connect::{
    ConnectApi, ConnectError, ConnectorStatus, ConnectorView, PluginInfo, SinkOffset, TaskDiscovery, WorkerInfo, wire,
};
use connector_core::error_chain;
use connector_core::monitor::ports::{Located, Workers};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;

/// Pauses before each retry of a 409 (a rebalance usually settles within a second or two);
/// every write here is safe to repeat: PUT config and pause/resume/stop are idempotent, a
/// repeated DELETE answers 404, a repeated restart restarts again. A retry is made only while
/// it can start within the call's timeout, so one call takes at most about twice the timeout.
const CONFLICT_BACKOFF: [Duration; 4] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// The username and password of a worker whose REST API requires basic authentication (the
/// image's `REST_AUTH_USERNAME` / `REST_AUTH_PASSWORD`). `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicAuth {
    /// The REST user.
    pub username: String,
    /// Its password.
    pub password: String,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Where the workers' REST credentials come from.
#[derive(Debug, Clone, Default)]
pub enum RestCredentials {
    /// None are sent (a worker with `REST_AUTH=none`).
    #[default]
    None,
    /// These (connectorctl's `--connect-username` / `--connect-password`).
    Fixed(BasicAuth),
    /// The secret `{"username", "password"}` the workers' own come from, read at each use so that
    /// a rotated secret counts at the next run.
    Secret {
        /// Secrets Manager.
        client: crate::secrets::Client,
        /// The secret's name or ARN.
        secret: String,
    },
}

impl RestCredentials {
    /// The credentials of `secret` (a name or ARN) read through `sdk`'s Secrets Manager; none
    /// without one.
    pub fn from_secret(secret: Option<&str>, sdk: &aws_config::SdkConfig) -> Self {
        match secret {
            Some(secret) => Self::Secret {
                client: crate::secrets::Client::new(sdk),
                secret: secret.to_string(),
            },
            None => Self::None,
        }
    }

    /// The credentials to send now, if any.
    pub async fn resolve(&self) -> Result<Option<BasicAuth>, crate::secrets::RestCredentialsError> {
        match self {
            Self::None => Ok(None),
            Self::Fixed(auth) => Ok(Some(auth.clone())),
            Self::Secret { client, secret } => crate::secrets::read_rest_credentials(client, secret).await.map(Some),
        }
    }
}

/// A [`ConnectApi`] for one worker URL.
#[derive(Debug, Clone)]
pub struct HttpConnectApi {
    client: reqwest::Client,
    base: Url,
    base_text: String,
    timeout: Duration,
    auth: Option<BasicAuth>,
}

impl HttpConnectApi {
    /// A client for the worker at `base_url` (`http://10.0.1.5:8083`); `timeout` bounds each call.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, ConnectError> {
        let bad = |reason: String| ConnectError::UnexpectedBody {
            url: base_url.to_string(),
            reason,
        };
        let base = Url::parse(base_url).map_err(|e| bad(format!("not a URL: {e}")))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(bad("not an http(s) URL".into()));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .build()
            .map_err(|e| bad(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            client,
            base_text: base_url.trim_end_matches('/').to_string(),
            base,
            timeout,
            auth: None,
        })
    }

    /// This client, sending `auth` with every request (none: no `Authorization` header).
    pub fn with_auth(mut self, auth: Option<BasicAuth>) -> Self {
        self.auth = auth;
        self
    }

    /// `POST /connectors/{name}/restart?includeTasks=true&onlyFailed=...`: the connector and its
    /// tasks (only the failed ones with `only_failed`). A worker without KIP-745 answers 204
    /// having restarted only the connector instance.
    pub async fn restart(&self, name: &str, only_failed: bool) -> Result<RestartOutcome, ConnectError> {
        let only_failed = if only_failed { "true" } else { "false" };
        let url = self.url(
            &["connectors", name, "restart"],
            &[("includeTasks", "true"), ("onlyFailed", only_failed)],
        );
        let (status, text) = self.send(Method::POST, url.clone(), None).await?;
        if status == StatusCode::NO_CONTENT {
            return Ok(RestartOutcome::ConnectorOnly);
        }
        Ok(RestartOutcome::Planned(read_body(&url, &text, wire::connector_status)?))
    }

    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        for (k, v) in query {
            url.query_pairs_mut().append_pair(k, v);
        }
        url
    }

    /// Sends one request, retrying 409s, and maps every failure to a [`ConnectError`].
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&serde_json::Value>,
    ) -> Result<(StatusCode, String), ConnectError> {
        let mut backoff = CONFLICT_BACKOFF.iter();
        let started = std::time::Instant::now();
        loop {
            let mut request = self
                .client
                .request(method.clone(), url.clone())
                .header("Accept", "application/json");
            if let Some(body) = body {
                request = request.json(body);
            }
            if let Some(auth) = &self.auth {
                request = request.basic_auth(&auth.username, Some(&auth.password));
            }
            let response = request.send().await.map_err(|e| self.transport_error(&url, e))?;
            let status = response.status();
            let text = response.text().await.map_err(|e| self.transport_error(&url, e))?;
            if status.is_success() {
                return Ok((status, text));
            }
            let error = error_for(status, &text);
            if let (ConnectError::Rebalancing { .. }, Some(pause)) = (&error, backoff.next())
                && started.elapsed() + *pause < self.timeout
            {
                tracing::info!(url = %url, error = %error, "Kafka Connect is rebalancing; retrying");
                tokio::time::sleep(*pause).await;
                continue;
            }
            return Err(error);
        }
    }

    fn transport_error(&self, url: &Url, e: reqwest::Error) -> ConnectError {
        if e.is_timeout() {
            ConnectError::Timeout {
                url: url.to_string(),
                seconds: self.timeout.as_secs(),
            }
        } else {
            ConnectError::Unreachable {
                url: url.to_string(),
                source: Box::new(e),
            }
        }
    }

    /// GETs `url` and reads the body with one of the `wire` readers.
    async fn get_with<T>(&self, url: Url, read: fn(&str) -> Result<T, String>) -> Result<T, ConnectError> {
        let (_, text) = self.send(Method::GET, url.clone(), None).await?;
        read_body(&url, &text, read)
    }
}

fn read_body<T>(url: &Url, text: &str, read: fn(&str) -> Result<T, String>) -> Result<T, ConnectError> {
    read(text).map_err(|reason| ConnectError::UnexpectedBody {
        url: url.to_string(),
        reason,
    })
}

/// Connect's error body is `{"error_code", "message"}`; anything else is kept as text.
fn error_for(status: StatusCode, body: &str) -> ConnectError {
    #[derive(Deserialize)]
    struct ErrorBody {
        message: Option<String>,
    }
    let message = serde_json::from_str::<ErrorBody>(body)
        .ok()
        .and_then(|b| b.message)
        .unwrap_or_else(|| body.chars().take(500).collect());
    match status.as_u16() {
        404 => ConnectError::NotFound { message },
        409 => ConnectError::Rebalancing { message },
        s @ (401 | 403) => ConnectError::Unauthorized { status: s, message },
        s @ 400..=499 => ConnectError::Refused { status: s, message },
        s => ConnectError::Server { status: s, message },
    }
}

/// [`Workers`] over HTTP: the fixed `CONNECT_URL` when there is one, else every RUNNING task
/// ECS discovery finds in the cluster, newest first, at `http://<task ip>:<port>`.
#[derive(Debug, Clone)]
pub struct HttpWorkers<D> {
    discovery: D,
    fixed_url: Option<String>,
    port: u16,
    timeout: Duration,
    credentials: RestCredentials,
}

impl<D: TaskDiscovery> HttpWorkers<D> {
    /// Workers found through `discovery` on `port` (or the one at `fixed_url`), each REST call
    /// bounded by `timeout`.
    pub fn new(discovery: D, fixed_url: Option<String>, port: u16, timeout: Duration) -> Self {
        Self {
            discovery,
            fixed_url,
            port,
            timeout,
            credentials: RestCredentials::None,
        }
    }

    /// These workers, called with `credentials`.
    pub fn with_credentials(mut self, credentials: RestCredentials) -> Self {
        self.credentials = credentials;
        self
    }
}

impl<D: TaskDiscovery> Workers for HttpWorkers<D> {
    type Api = HttpConnectApi;

    async fn locate(&self, cluster: &str) -> Located<HttpConnectApi> {
        let none = |problem: String| Located {
            workers: Vec::new(),
            problem: Some(problem),
        };
        let auth = match self.credentials.resolve().await {
            Ok(auth) => auth,
            Err(e) => return none(error_chain(&e)),
        };
        if let Some(url) = &self.fixed_url {
            return match HttpConnectApi::new(url, self.timeout) {
                Ok(api) => Located {
                    workers: vec![(api.with_auth(auth), None)],
                    problem: None,
                },
                Err(e) => none(error_chain(&e)),
            };
        }
        match self.discovery.running_tasks(cluster).await {
            Ok(tasks) if tasks.is_empty() => none(format!("no RUNNING Kafka Connect task in ECS cluster {cluster}")),
            Ok(tasks) => Located {
                workers: tasks
                    .iter()
                    .filter_map(|t| {
                        let url = format!("http://{}:{}", t.ip, self.port);
                        let api = HttpConnectApi::new(&url, self.timeout).ok()?;
                        Some((api.with_auth(auth.clone()), t.started_at_millis))
                    })
                    .collect(),
                problem: None,
            },
            Err(e) => none(error_chain(&e)),
        }
    }
}

impl ConnectApi for HttpConnectApi {
    fn url(&self) -> &str {
        &self.base_text
    }

    async fn server_info(&self) -> Result<WorkerInfo, ConnectError> {
        self.get_with(self.url(&[], &[]), wire::worker_info).await
    }

    async fn readiness(&self) -> Result<Readiness, ConnectError> {
        match self.send(Method::GET, self.url(&["health"], &[]), None).await {
            Ok(_) => Ok(Readiness::Ready),
            // 503 while starting: up, but not ready. A 500 (the herder does not answer) is an
            // error, so that a worker stuck in it is reported, not waited for forever.
            Err(ConnectError::Server { status: 503, .. }) => Ok(Readiness::Starting),
            // Workers before 3.9 have no /health. Their list answers [] until the config topic
            // is read, so it proves the REST server is up, not that the worker is warm.
            Err(ConnectError::NotFound { .. }) => {
                match self.send(Method::GET, self.url(&["connectors"], &[]), None).await {
                    Ok(_) => Ok(Readiness::Unproven),
                    Err(ConnectError::Server { status: 503, .. } | ConnectError::NotFound { .. }) => {
                        Ok(Readiness::Starting)
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn list_expanded(&self) -> Result<Vec<ConnectorView>, ConnectError> {
        let url = self.url(&["connectors"], &[("expand", "status"), ("expand", "info")]);
        self.get_with(url, wire::expanded).await
    }

    async fn status(&self, name: &str) -> Result<ConnectorStatus, ConnectError> {
        self.get_with(self.url(&["connectors", name, "status"], &[]), wire::connector_status)
            .await
    }

    async fn put_config(
        &self,
        name: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<PutConfigOutcome, ConnectError> {
        let url = self.url(&["connectors", name, "config"], &[]);
        let body = serde_json::to_value(config).unwrap_or_default();
        let (status, text) = self.send(Method::PUT, url.clone(), Some(&body)).await?;
        let info = read_body(&url, &text, wire::connector_info)?;
        Ok(PutConfigOutcome {
            created: status == StatusCode::CREATED,
            info,
        })
    }

    async fn create_stopped(&self, name: &str, config: &BTreeMap<String, String>) -> Result<(), ConnectError> {
        let body = serde_json::json!({"name": name, "config": config, "initial_state": "STOPPED"});
        self.send(Method::POST, self.url(&["connectors"], &[]), Some(&body))
            .await
            .map(|_| ())
    }

    async fn delete(&self, name: &str) -> Result<(), ConnectError> {
        self.send(Method::DELETE, self.url(&["connectors", name], &[]), None)
            .await
            .map(|_| ())
    }

    async fn restart_failed(&self, name: &str) -> Result<RestartOutcome, ConnectError> {
        self.restart(name, true).await
    }

    async fn restart_task(&self, name: &str, task: i32) -> Result<(), ConnectError> {
        let id = task.to_string();
        self.send(
            Method::POST,
            self.url(&["connectors", name, "tasks", &id, "restart"], &[]),
            None,
        )
        .await
        .map(|_| ())
    }

    async fn pause(&self, name: &str) -> Result<(), ConnectError> {
        self.send(Method::PUT, self.url(&["connectors", name, "pause"], &[]), None)
            .await
            .map(|_| ())
    }

    async fn resume(&self, name: &str) -> Result<(), ConnectError> {
        self.send(Method::PUT, self.url(&["connectors", name, "resume"], &[]), None)
            .await
            .map(|_| ())
    }

    async fn stop(&self, name: &str) -> Result<(), ConnectError> {
        self.send(Method::PUT, self.url(&["connectors", name, "stop"], &[]), None)
            .await
            .map(|_| ())
    }

    async fn sink_offsets(&self, name: &str) -> Result<Vec<SinkOffset>, ConnectError> {
        self.get_with(self.url(&["connectors", name, "offsets"], &[]), wire::sink_offsets)
            .await
    }

    async fn alter_sink_offsets(&self, name: &str, offsets: &[SinkOffset]) -> Result<String, ConnectError> {
        let url = self.url(&["connectors", name, "offsets"], &[]);
        let body = wire::alter_sink_offsets_body(offsets);
        let (_, text) = self.send(Method::PATCH, url.clone(), Some(&body)).await?;
        read_body(&url, &text, wire::message)
    }

    async fn reset_offsets(&self, name: &str) -> Result<String, ConnectError> {
        let url = self.url(&["connectors", name, "offsets"], &[]);
        let (_, text) = self.send(Method::DELETE, url.clone(), None).await?;
        read_body(&url, &text, wire::message)
    }

    async fn plugins(&self) -> Result<Vec<PluginInfo>, ConnectError> {
        self.get_with(self.url(&["connector-plugins"], &[]), wire::plugins)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connector_names_are_one_encoded_path_segment() {
        let api = HttpConnectApi::new("http://127.0.0.1:8083/", Duration::from_secs(1)).unwrap();
        let url = api.url(&["connectors", "a/b ?#%é", "status"], &[]);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8083/connectors/a%2Fb%20%3F%23%25%C3%A9/status"
        );
        let url = api.url(
            &["connectors", "x", "restart"],
            &[("includeTasks", "true"), ("onlyFailed", "true")],
        );
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8083/connectors/x/restart?includeTasks=true&onlyFailed=true"
        );
    }

    #[test]
    fn error_bodies_map_to_typed_errors() {
        let e = error_for(
            StatusCode::NOT_FOUND,
            r#"{"error_code":404,"message":"Connector x not found"}"#,
        );
        assert!(matches!(e, ConnectError::NotFound { ref message } if message == "Connector x not found"));
        assert!(matches!(
            error_for(StatusCode::CONFLICT, "{}"),
            ConnectError::Rebalancing { .. }
        ));
        assert!(matches!(
            error_for(StatusCode::BAD_REQUEST, "x"),
            ConnectError::Refused { status: 400, .. }
        ));
        assert!(
            matches!(error_for(StatusCode::BAD_GATEWAY, "<html>"), ConnectError::Server { status: 502, ref message } if message == "<html>")
        );
        assert!(HttpConnectApi::new("not a url", Duration::from_secs(1)).is_err());
        assert!(HttpConnectApi::new("ftp://x", Duration::from_secs(1)).is_err());
    }
}
