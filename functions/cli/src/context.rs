//! Where the cluster is: named contexts in a JSON file, as kcctl keeps them, with the current one
//! chosen by `connectorctl context use`. Flags and environment variables override a context.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::Failure;

/// One place a cluster lives.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Context {
    /// A Kafka Connect REST URL (loopback, a tunnel); else the worker is found through ECS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_url: Option<String>,
    /// The REST user of workers with basic authentication (the image's `REST_AUTH_USERNAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_username: Option<String>,
    /// Its password: from `--connect-password` / `CONNECT_PASSWORD` only, never kept in the file.
    #[serde(skip)]
    pub connect_password: Option<String>,
    /// The Secrets Manager secret of the workers' REST credentials (`{"username", "password"}`,
    /// the stack's), read when no username and password are given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_credentials_secret: Option<String>,
    /// The ECS cluster of the workers (also the name alerts and monitor state use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The AWS region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The REST port of the workers found through ECS (8083).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_port: Option<u16>,
    /// The monitor-state DynamoDB table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_table: Option<String>,
    /// The Secrets Manager prefix of the connector configs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_prefix: Option<String>,
    /// The secret of the Confluent licence, put into every config `ensure` applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_secret_arn: Option<String>,
    /// The SNS alerts topic (only `check` without `--dry-run` publishes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_topic_arn: Option<String>,
    /// Where the runbook pages are served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook_base_url: Option<String>,
    /// The deployed `testConnectors` function: `check` takes its settings (restart budget,
    /// mutes, reminders, thresholds) from the function's environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_function: Option<String>,
    /// The AWS profile (`~/.aws/config`) whose credentials and region every AWS call uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The brokers the sink connectors read (`host:port,…`), for the lag in `describe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka_bootstrap: Option<String>,
    /// A PEM file of CAs the brokers' certificates chain to, besides the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka_ca_file: Option<String>,
    /// The brokers speak plaintext, not TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka_plaintext: Option<bool>,
    /// The seatool sink's DynamoDB table, for `verify`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seatool_table: Option<String>,
    /// The topic the seatool connector reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seatool_topic: Option<String>,
    /// The appian sink's DynamoDB table, for `verify`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appian_table: Option<String>,
    /// The topic the appian connector reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appian_topic: Option<String>,
}

impl Context {
    /// `other`'s settings where it has them, this one's elsewhere.
    pub fn overlay(self, other: Context) -> Context {
        Context {
            connect_url: other.connect_url.or(self.connect_url),
            connect_username: other.connect_username.or(self.connect_username),
            connect_password: other.connect_password.or(self.connect_password),
            connect_credentials_secret: other.connect_credentials_secret.or(self.connect_credentials_secret),
            cluster: other.cluster.or(self.cluster),
            region: other.region.or(self.region),
            connect_port: other.connect_port.or(self.connect_port),
            state_table: other.state_table.or(self.state_table),
            secret_prefix: other.secret_prefix.or(self.secret_prefix),
            license_secret_arn: other.license_secret_arn.or(self.license_secret_arn),
            alert_topic_arn: other.alert_topic_arn.or(self.alert_topic_arn),
            runbook_base_url: other.runbook_base_url.or(self.runbook_base_url),
            monitor_function: other.monitor_function.or(self.monitor_function),
            profile: other.profile.or(self.profile),
            kafka_bootstrap: other.kafka_bootstrap.or(self.kafka_bootstrap),
            kafka_ca_file: other.kafka_ca_file.or(self.kafka_ca_file),
            kafka_plaintext: other.kafka_plaintext.or(self.kafka_plaintext),
            seatool_table: other.seatool_table.or(self.seatool_table),
            seatool_topic: other.seatool_topic.or(self.seatool_topic),
            appian_table: other.appian_table.or(self.appian_table),
            appian_topic: other.appian_topic.or(self.appian_topic),
        }
    }

    /// The settings a deployed stack's outputs give (`connectorctl context from-stack`): the
    /// names are read, never rebuilt from the stage, so a stack with any Project, Service and
    /// Stage is reached the same way.
    pub fn from_outputs(stack: &str, outputs: &BTreeMap<String, String>) -> Result<Context, Failure> {
        let get = |key: &str| outputs.get(key).filter(|v| !v.is_empty()).cloned();
        if get("ConnectClusterName").is_none() {
            return Err(Failure::config(format!(
                "stack {stack} has no output ConnectClusterName: it is not a connector stack (outputs: {})",
                outputs.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(Context {
            connect_credentials_secret: get("ConnectRestCredentialsSecret"),
            cluster: get("ConnectClusterName"),
            state_table: get("MonitorStateTableName"),
            secret_prefix: get("ConnectorConfigSecretPrefix"),
            license_secret_arn: get("ConfluentLicenseSecretArn"),
            alert_topic_arn: get("AlertsTopicArn"),
            runbook_base_url: get("RunbookBaseUrl"),
            monitor_function: get("TestConnectorsFunction"),
            kafka_bootstrap: get("BrokerString"),
            kafka_plaintext: get("BrokerSecurityProtocol").map(|p| p == "PLAINTEXT").filter(|p| *p),
            seatool_table: get("SeatoolTableName"),
            seatool_topic: get("SeatoolTopic"),
            appian_table: get("AppianTableName"),
            appian_topic: get("AppianTopic"),
            ..Context::default()
        })
    }

    /// The cluster name, or a failure saying how to set it.
    pub fn cluster(&self) -> Result<&str, Failure> {
        self.cluster
            .as_deref()
            .ok_or_else(|| Failure::config("no cluster: pass --cluster or set it in the context"))
    }

    /// A setting that `what` needs.
    pub fn need<'a>(value: &'a Option<String>, flag: &str, what: &str) -> Result<&'a str, Failure> {
        value
            .as_deref()
            .ok_or_else(|| Failure::config(format!("{what} needs {flag} (or the context's setting)")))
    }
}

/// The contexts file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contexts {
    /// The context used when `--context` is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// By name.
    #[serde(default)]
    pub contexts: BTreeMap<String, Context>,
}

impl Contexts {
    /// `$CONNECTORCTL_CONFIG`, else `$XDG_CONFIG_HOME/connectorctl/contexts.json`, else
    /// `~/.config/connectorctl/contexts.json`.
    pub fn path() -> PathBuf {
        if let Some(p) = std::env::var_os("CONNECTORCTL_CONFIG") {
            return PathBuf::from(p);
        }
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .unwrap_or_else(|| PathBuf::from("."));
        base.join("connectorctl").join("contexts.json")
    }

    /// The file, or no contexts when it does not exist.
    pub fn load() -> Result<Self, Failure> {
        let path = Self::path();
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| Failure::config(format!("{} is not a contexts file: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(Failure::config(format!("cannot read {}: {e}", path.display()))),
        }
    }

    /// Writes the file, creating its directory.
    pub fn save(&self) -> Result<PathBuf, Failure> {
        let path = Self::path();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Failure::config(format!("cannot create {}: {e}", dir.display())))?;
        }
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        std::fs::write(&path, text + "\n")
            .map_err(|e| Failure::config(format!("cannot write {}: {e}", path.display())))?;
        Ok(path)
    }

    /// The named context, else the current one, else an empty one (flags only).
    pub fn resolve(&self, name: Option<&str>) -> Result<Context, Failure> {
        match name.or(self.current.as_deref()) {
            Some(n) => self.contexts.get(n).cloned().ok_or_else(|| {
                Failure::config(format!(
                    "no context {n:?} in {} (connectorctl context list)",
                    Self::path().display()
                ))
            }),
            None => Ok(Context::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stacks_outputs_give_its_names_and_another_stack_is_refused_by_name() {
        let outputs: BTreeMap<String, String> = [
            ("ConnectClusterName", "mako-connect-main-connect"),
            ("MonitorStateTableName", "state-1"),
            ("ConnectorConfigSecretPrefix", "mako/connect/main/"),
            ("BrokerSecurityProtocol", "PLAINTEXT"),
            ("SeatoolTopic", "aws.seatool"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let ctx = Context::from_outputs("s", &outputs).unwrap();
        assert_eq!(ctx.cluster.as_deref(), Some("mako-connect-main-connect"));
        assert_eq!(ctx.secret_prefix.as_deref(), Some("mako/connect/main/"));
        assert_eq!(ctx.kafka_plaintext, Some(true));
        assert_eq!(ctx.seatool_topic.as_deref(), Some("aws.seatool"));
        assert_eq!(ctx.appian_table, None);
        let other: BTreeMap<String, String> = [("BucketName".to_string(), "b".to_string())].into();
        match Context::from_outputs("web", &other) {
            Err(Failure::Input(m)) => assert!(m.contains("stack web has no output ConnectClusterName"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags_override_the_context_setting_by_setting() {
        let saved = Context {
            connect_url: Some("http://saved:8083".into()),
            cluster: Some("saved".into()),
            ..Context::default()
        };
        let flags = Context {
            cluster: Some("flag".into()),
            ..Context::default()
        };
        let merged = saved.overlay(flags);
        assert_eq!(merged.connect_url.as_deref(), Some("http://saved:8083"));
        assert_eq!(merged.cluster.as_deref(), Some("flag"));
    }

    #[test]
    fn an_unknown_context_name_is_an_error_and_no_current_context_is_empty() {
        let contexts = Contexts::default();
        assert!(contexts.resolve(Some("prod")).is_err());
        assert_eq!(contexts.resolve(None).unwrap(), Context::default());
    }
}
