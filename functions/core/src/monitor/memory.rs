//! In-memory twins of the monitor's ports, for use-case tests.

use std::sync::Mutex;

use crate::monitor::alerting::alert::{AlertMessage, Incident};
use crate::monitor::audit::AuditEntry;
use crate::monitor::judge::state::{ClusterState, ConnectorState};
use crate::monitor::ports::{
    AlertError, AlertPublisher, MonitorStore, ResolvedIncident, StateError, StoredState, Versioned,
};

/// A monitor store in memory, with the same conditional semantics as the DynamoDB adapter.
#[derive(Debug, Default)]
pub struct InMemoryMonitorStore {
    state: Mutex<std::collections::BTreeMap<String, StoredState>>,
    audit: Mutex<Vec<AuditEntry>>,
}

impl InMemoryMonitorStore {
    fn with<T>(&self, cluster: &str, f: impl FnOnce(&mut StoredState) -> T) -> T {
        let mut all = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(all.entry(cluster.to_string()).or_default())
    }
}

impl MonitorStore for InMemoryMonitorStore {
    async fn load(&self, cluster: &str) -> Result<StoredState, StateError> {
        Ok(self.with(cluster, |s| s.clone()))
    }

    async fn save_connector(
        &self,
        cluster: &str,
        name: &str,
        state: &ConnectorState,
        expected: Option<u64>,
    ) -> Result<bool, StateError> {
        Ok(self.with(cluster, |s| {
            let current = s.connectors.get(name).map(|v| v.version);
            if current != expected {
                return false;
            }
            let version = current.map_or(1, |v| v + 1);
            s.connectors.insert(
                name.into(),
                Versioned {
                    value: state.clone(),
                    version,
                },
            );
            true
        }))
    }

    async fn save_cluster(
        &self,
        cluster: &str,
        state: &ClusterState,
        expected: Option<u64>,
    ) -> Result<bool, StateError> {
        Ok(self.with(cluster, |s| {
            let current = s.cluster.as_ref().map(|v| v.version);
            if current != expected {
                return false;
            }
            s.cluster = Some(Versioned {
                value: state.clone(),
                version: current.map_or(1, |v| v + 1),
            });
            true
        }))
    }

    async fn open_incident(&self, cluster: &str, incident: &Incident) -> Result<bool, StateError> {
        Ok(self.with(cluster, |s| {
            if s.incidents.contains_key(&incident.key) {
                return false;
            }
            s.incidents.insert(
                incident.key.clone(),
                Versioned {
                    value: incident.clone(),
                    version: 1,
                },
            );
            true
        }))
    }

    async fn update_incident(&self, cluster: &str, incident: &Incident, expected: u64) -> Result<bool, StateError> {
        Ok(self.with(cluster, |s| match s.incidents.get_mut(&incident.key) {
            Some(v) if v.version == expected => {
                *v = Versioned {
                    value: incident.clone(),
                    version: expected + 1,
                };
                true
            }
            _ => false,
        }))
    }

    async fn record_resolved(&self, cluster: &str, resolved: &ResolvedIncident) -> Result<(), StateError> {
        self.with(cluster, |s| s.resolved.insert(0, resolved.clone()));
        Ok(())
    }

    async fn record_audit(&self, cluster: &str, entry: &AuditEntry) -> Result<(), StateError> {
        let mut entry = entry.clone();
        entry.cluster = cluster.to_string();
        self.audit.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
        Ok(())
    }

    async fn history(
        &self,
        cluster: &str,
        connector: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StateError> {
        let mut all: Vec<AuditEntry> = self
            .audit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|e| e.cluster == cluster && connector.is_none_or(|c| e.connector == c))
            .cloned()
            .collect();
        all.sort_by_key(|e| std::cmp::Reverse(e.at));
        all.truncate(limit);
        Ok(all)
    }

    async fn close_incident(&self, cluster: &str, key: &str, expected: u64) -> Result<bool, StateError> {
        Ok(self.with(cluster, |s| match s.incidents.get(key) {
            Some(v) if v.version == expected => {
                s.incidents.remove(key);
                true
            }
            _ => false,
        }))
    }
}

/// An alert publisher that keeps what it was given.
#[derive(Debug, Default)]
pub struct InMemoryAlertPublisher {
    sent: Mutex<Vec<AlertMessage>>,
}

impl InMemoryAlertPublisher {
    /// Everything published so far.
    pub fn sent(&self) -> Vec<AlertMessage> {
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl AlertPublisher for InMemoryAlertPublisher {
    async fn publish(&self, message: &AlertMessage) -> Result<(), AlertError> {
        self.sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(message.clone());
        Ok(())
    }
}
