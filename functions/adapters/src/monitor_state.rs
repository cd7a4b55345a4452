//! The monitor's state in DynamoDB: one item per connector and one per open incident, under the
//! cluster's partition, each with a `version` that every write is conditional on.
//!
//! Keys (strings): `PK = "cluster#<cluster>"`, `SK = "connector#<name>"`, `"incident#<key>"`,
//! `"resolved#<resolved at, ms, 15 digits>#<key>"` for a week after an incident resolved, or
//! `"cluster"` for the cluster's own state. The audit trail has a partition of its own, which a
//! run's load never reads: `PK = "audit#<cluster>"`, `SK = "<connector>#<at, ms, 15 digits>#<kind>#<n>"`.
//! Attributes: `body` (the JSON of the state, incident or entry), `version` (N), and on resolved
//! records and audit entries `expiresAt` (N, epoch seconds: the table's TTL attribute).

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;
use connector_core::monitor::alerting::alert::Incident;
use connector_core::monitor::audit::{AUDIT_KEPT_MS, AuditEntry};
use connector_core::monitor::judge::state::{ClusterState, ConnectorState};
use connector_core::monitor::ports::{
    MonitorStore, RESOLVED_KEPT_MS, ResolvedIncident, StateError, StoredState, Versioned,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use aws_sdk_dynamodb::Client;

const CONNECTOR: &str = "connector#";
const INCIDENT: &str = "incident#";
const RESOLVED: &str = "resolved#";
const CLUSTER: &str = "cluster";

/// [`MonitorStore`] on one DynamoDB table keyed `PK`/`SK`.
#[derive(Debug, Clone)]
pub struct DynamoDbMonitorStore {
    client: Client,
    table: String,
}

impl DynamoDbMonitorStore {
    /// State in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Puts `body` at `sk` if the stored version is `expected` (`None`: no item yet).
    async fn put_versioned<T: Serialize>(
        &self,
        cluster: &str,
        sk: String,
        body: &T,
        expected: Option<u64>,
    ) -> Result<bool, StateError> {
        let text = serde_json::to_string(body).map_err(|e| err("encode state", e))?;
        let next = expected.map_or(1, |v| v + 1);
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("PK", AttributeValue::S(pk(cluster)))
            .item("SK", AttributeValue::S(sk))
            .item("body", AttributeValue::S(text))
            .item("version", AttributeValue::N(next.to_string()));
        request = match expected {
            None => request.condition_expression("attribute_not_exists(PK)"),
            Some(v) => request
                .condition_expression("version = :v")
                .expression_attribute_values(":v", AttributeValue::N(v.to_string())),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => Ok(false),
            Err(e) => Err(err("write state", e)),
        }
    }
}

fn pk(cluster: &str) -> String {
    format!("cluster#{cluster}")
}

fn audit_pk(cluster: &str) -> String {
    format!("audit#{cluster}")
}

fn err(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> StateError {
    StateError {
        what: what.to_string(),
        source: Box::new(e),
    }
}

fn decode<T: DeserializeOwned>(item: &HashMap<String, AttributeValue>) -> Option<Versioned<T>> {
    let body = item.get("body")?.as_s().ok()?;
    let version = item.get("version")?.as_n().ok()?.parse().ok()?;
    Some(Versioned {
        value: serde_json::from_str(body).ok()?,
        version,
    })
}

/// A state item, or — in another version's shape — a fresh default at the item's version, so the
/// next save replaces it instead of failing forever; `true` when it is the fresh one.
fn decode_or_fresh<T: DeserializeOwned + Default>(
    item: &HashMap<String, AttributeValue>,
) -> Option<(Versioned<T>, bool)> {
    if let Some(v) = decode(item) {
        return Some((v, false));
    }
    let version = item.get("version")?.as_n().ok()?.parse().ok()?;
    Some((
        Versioned {
            value: T::default(),
            version,
        },
        true,
    ))
}

impl MonitorStore for DynamoDbMonitorStore {
    async fn load(&self, cluster: &str) -> Result<StoredState, StateError> {
        let mut state = StoredState::default();
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk(cluster)))
            .consistent_read(true)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for item in page.map_err(|e| err("read state", e))?.items() {
                let Some(sk) = item.get("SK").and_then(|v| v.as_s().ok()) else {
                    continue;
                };
                if let Some(name) = sk.strip_prefix(CONNECTOR) {
                    if let Some((v, fresh)) = decode_or_fresh::<ConnectorState>(item) {
                        if fresh {
                            tracing::warn!(
                                cluster,
                                connector = name,
                                version = v.version,
                                "connector state unreadable: replaced by a fresh one at the next save"
                            );
                        }
                        state.connectors.insert(name.to_string(), v);
                    }
                } else if let Some(key) = sk.strip_prefix(INCIDENT)
                    && let Some(v) = decode::<Incident>(item)
                {
                    state.incidents.insert(key.to_string(), v);
                } else if sk == CLUSTER {
                    state.cluster = decode_or_fresh::<ClusterState>(item).map(|(v, _)| v);
                } else if sk.starts_with(RESOLVED)
                    && let Some(v) = decode::<ResolvedIncident>(item)
                {
                    state.resolved.push(v.value);
                }
            }
        }
        // TTL deletes lag (up to days): drop what is past its week here.
        let newest = state.resolved.iter().map(|r| r.resolved_at).max().unwrap_or(0);
        state.resolved.retain(|r| newest - r.resolved_at <= RESOLVED_KEPT_MS);
        state.resolved.sort_by_key(|r| std::cmp::Reverse(r.resolved_at));
        Ok(state)
    }

    async fn save_connector(
        &self,
        cluster: &str,
        name: &str,
        state: &ConnectorState,
        expected: Option<u64>,
    ) -> Result<bool, StateError> {
        self.put_versioned(cluster, format!("{CONNECTOR}{name}"), state, expected)
            .await
    }

    async fn save_cluster(
        &self,
        cluster: &str,
        state: &ClusterState,
        expected: Option<u64>,
    ) -> Result<bool, StateError> {
        self.put_versioned(cluster, CLUSTER.to_string(), state, expected).await
    }

    async fn open_incident(&self, cluster: &str, incident: &Incident) -> Result<bool, StateError> {
        self.put_versioned(cluster, format!("{INCIDENT}{}", incident.key), incident, None)
            .await
    }

    async fn update_incident(&self, cluster: &str, incident: &Incident, expected: u64) -> Result<bool, StateError> {
        self.put_versioned(cluster, format!("{INCIDENT}{}", incident.key), incident, Some(expected))
            .await
    }

    async fn record_resolved(&self, cluster: &str, resolved: &ResolvedIncident) -> Result<(), StateError> {
        let text = serde_json::to_string(resolved).map_err(|e| err("encode resolved incident", e))?;
        let expires = (resolved.resolved_at + RESOLVED_KEPT_MS) / 1000;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("PK", AttributeValue::S(pk(cluster)))
            .item(
                "SK",
                AttributeValue::S(format!(
                    "{RESOLVED}{:015}#{}",
                    resolved.resolved_at, resolved.incident.key
                )),
            )
            .item("body", AttributeValue::S(text))
            .item("version", AttributeValue::N("1".into()))
            .item("expiresAt", AttributeValue::N(expires.to_string()))
            .send()
            .await
            .map_err(|e| err("record resolved incident", e))?;
        Ok(())
    }

    async fn record_audit(&self, cluster: &str, entry: &AuditEntry) -> Result<(), StateError> {
        let text = serde_json::to_string(entry).map_err(|e| err("encode audit entry", e))?;
        let sk = format!(
            "{}#{:015}#{}#{}",
            entry.connector,
            entry.at,
            entry.kind.as_str(),
            entry.attempt.unwrap_or(0)
        );
        self.client
            .put_item()
            .table_name(&self.table)
            .item("PK", AttributeValue::S(audit_pk(cluster)))
            .item("SK", AttributeValue::S(sk))
            .item("body", AttributeValue::S(text))
            .item("version", AttributeValue::N("1".into()))
            .item(
                "expiresAt",
                AttributeValue::N(((entry.at + AUDIT_KEPT_MS) / 1000).to_string()),
            )
            .send()
            .await
            .map_err(|e| err("record audit entry", e))?;
        Ok(())
    }

    async fn history(
        &self,
        cluster: &str,
        connector: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StateError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", AttributeValue::S(audit_pk(cluster)));
        query = match connector {
            None => query.key_condition_expression("PK = :pk"),
            Some(name) => query
                .key_condition_expression("PK = :pk AND begins_with(SK, :name)")
                .expression_attribute_values(":name", AttributeValue::S(format!("{name}#"))),
        };
        let mut entries = Vec::new();
        let mut pages = query.into_paginator().send();
        while let Some(page) = pages.next().await {
            for item in page.map_err(|e| err("read audit trail", e))?.items() {
                match decode::<AuditEntry>(item) {
                    Some(v) if connector.is_none_or(|c| v.value.connector == c) => entries.push(v.value),
                    Some(_) => {}
                    None => tracing::warn!(cluster, sk = ?item.get("SK"), "audit entry unreadable: left out"),
                }
            }
        }
        // TTL deletes lag (up to days): drop what is past its time here.
        let newest = entries.iter().map(|e| e.at).max().unwrap_or(0);
        entries.retain(|e| newest - e.at <= AUDIT_KEPT_MS);
        entries.sort_by_key(|e| std::cmp::Reverse(e.at));
        entries.truncate(limit);
        Ok(entries)
    }

    async fn close_incident(&self, cluster: &str, key: &str, expected: u64) -> Result<bool, StateError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("PK", AttributeValue::S(pk(cluster)))
            .key("SK", AttributeValue::S(format!("{INCIDENT}{key}")))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", AttributeValue::N(expected.to_string()))
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => Ok(false),
            Err(e) => Err(err("close incident", e)),
        }
    }
}
