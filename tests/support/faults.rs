//! The fault-injecting proxy in front of moto (mitmproxy with `tests/faults/faults.py`, started
//! by `scripts/test` as `FAULTS_URL`): AWS's own error bodies, delays and connection resets on
//! chosen requests, and a count of every request per operation.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::SdkConfig;
use serde_json::{Value, json};

/// The proxy's control API, scoped to one table or queue.
pub struct Faults {
    url: String,
    target: String,
    http: reqwest::Client,
}

impl Faults {
    /// Rules and counts for `target` (a table name, or a queue name).
    pub fn for_target(target: &str) -> Self {
        Self::at("FAULTS_URL", target)
    }

    /// Rules and counts for the connector `name`, at the proxy in front of the Kafka Connect
    /// worker (`CONNECT_FAULTS_URL`; requests to the worker through it: [`Faults::url`]).
    pub fn for_connector(name: &str) -> Self {
        Self::at("CONNECT_FAULTS_URL", name)
    }

    /// The proxy whose URL is in the variable `var`, for `target`.
    fn at(var: &str, target: &str) -> Self {
        let url = std::env::var(var)
            .unwrap_or_else(|_| panic!("{var} is not set: run the tests through scripts/test, which starts the proxy"));
        Self {
            url,
            target: target.into(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("an HTTP client"),
        }
    }

    /// The proxy's URL: the worker (or moto) behind it, with this target's faults.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Adds a rule for this target; `rule` holds the fields beside `target` (see faults.py).
    pub async fn add(&self, mut rule: Value) {
        rule["target"] = json!(self.target);
        let response = self
            .http
            .post(format!("{}/__faults/rules", self.url))
            .json(&rule)
            .send()
            .await
            .expect("the fault proxy answers");
        assert!(response.status().is_success(), "the fault proxy refused {rule}");
    }

    /// Forgets this target's rules.
    pub async fn clear(&self) {
        self.http
            .delete(format!("{}/__faults/rules?target={}", self.url, self.target))
            .send()
            .await
            .expect("the fault proxy answers");
    }

    /// Requests that reached the proxy for this target so far, by operation.
    pub async fn counts(&self) -> BTreeMap<String, u64> {
        self.http
            .get(format!("{}/__faults/counts?target={}", self.url, self.target))
            .send()
            .await
            .expect("the fault proxy answers")
            .json()
            .await
            .expect("counts as JSON")
    }

    /// Restarts of this connector the worker took (`POST /connectors/{name}/restart` answered
    /// 2xx): one per restart made, however many 409s were retried before it.
    pub async fn restarts_taken(&self) -> u64 {
        self.counts()
            .await
            .get("POST /connectors/{name}/restart 2xx")
            .copied()
            .unwrap_or(0)
    }
}

/// The production SDK configuration (timeouts, retries), pointed at the fault proxy.
pub async fn sdk_through_faults() -> SdkConfig {
    let url = std::env::var("FAULTS_URL")
        .expect("FAULTS_URL is not set: run the fault tests through scripts/test, which starts the proxy");
    use connector_lambdas::sink::{SDK_ATTEMPTS, SDK_CALL_TIMEOUT};
    connector_adapters::aws::load_sdk_config_at(&url, SDK_CALL_TIMEOUT, SDK_ATTEMPTS).await
}
