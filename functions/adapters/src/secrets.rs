//! Desired connector configs in AWS Secrets Manager, one secret per connector holding
//! `{"name": ..., "config": {...}}`.
//!
//! A listing names every secret and its current version each time, so a secret removed or
//! changed counts at once; only the values are cached, by version, so a warm function reads
//! a value once per change instead of once per run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_secretsmanager::error::SdkError;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
use connector_core::connect::ConnectorConfig;
use connector_core::connect::ports::{ConfigError, ConnectorConfigs, LoadedConfigs, parse_connector_config};

pub use aws_sdk_secretsmanager::Client;

/// A secret's value as read at one version: the config, or why it is not one.
type CachedValue = Result<ConnectorConfig, String>;

/// [`ConnectorConfigs`] on Secrets Manager. Clones share one value cache.
#[derive(Debug, Clone)]
pub struct SecretsManagerConfigs {
    client: Client,
    values: Arc<Mutex<HashMap<String, (String, CachedValue)>>>,
}

impl SecretsManagerConfigs {
    /// Configs read through `client`.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            values: Arc::default(),
        }
    }

    fn cached(&self, name: &str, version: &str) -> Option<CachedValue> {
        let values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        values
            .get(name)
            .filter(|(v, _)| v == version)
            .map(|(_, value)| value.clone())
    }
}

impl ConnectorConfigs for SecretsManagerConfigs {
    async fn get(&self, secret: &str) -> Result<ConnectorConfig, ConfigError> {
        let out = match self.client.get_secret_value().secret_id(secret).send().await {
            Ok(out) => out,
            Err(SdkError::ServiceError(e)) if e.err().is_resource_not_found_exception() => {
                return Err(ConfigError::NotFound {
                    secret: secret.to_string(),
                });
            }
            Err(e) => {
                return Err(ConfigError::Unavailable {
                    secret: secret.to_string(),
                    source: Box::new(e),
                });
            }
        };
        let Some(text) = out.secret_string() else {
            return Err(ConfigError::Invalid {
                secret: secret.to_string(),
                reason: "it holds binary, not text".into(),
            });
        };
        parse_connector_config(secret, text)
    }

    async fn list(&self, prefix: &str) -> Result<LoadedConfigs, ConfigError> {
        let filter = Filter::builder().key(FilterNameStringType::Name).values(prefix).build();
        let mut pages = self.client.list_secrets().filters(filter).into_paginator().send();
        // Each secret's name and its AWSCURRENT version (absent: never cached).
        let mut names: Vec<(String, Option<String>)> = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| ConfigError::Unavailable {
                secret: prefix.to_string(),
                source: Box::new(e),
            })?;
            // The Name filter matches words anywhere in the name; keep true prefixes only.
            names.extend(page.secret_list().iter().filter_map(|s| {
                let name = s.name().filter(|n| n.starts_with(prefix))?;
                let current = s.secret_versions_to_stages().and_then(|versions| {
                    versions
                        .iter()
                        .find(|(_, stages)| stages.iter().any(|stage| stage == "AWSCURRENT"))
                        .map(|(version, _)| version.clone())
                });
                Some((name.to_string(), current))
            }));
        }
        names.sort();
        let mut loaded = LoadedConfigs::default();
        let mut seen = HashMap::new();
        for (name, version) in names {
            let value = match version.as_deref().and_then(|v| self.cached(&name, v)) {
                Some(value) => value,
                None => match self.get(&name).await {
                    Ok(config) => Ok(config),
                    Err(e @ ConfigError::Unavailable { .. }) => return Err(e),
                    Err(ConfigError::Invalid { reason, .. }) => Err(reason),
                    // Deleted between the listing and the read: not desired any more.
                    Err(ConfigError::NotFound { .. }) => continue,
                },
            };
            match &value {
                Ok(config) => loaded.configs.push(config.clone()),
                Err(reason) => loaded.problems.push(ConfigError::Invalid {
                    secret: name.clone(),
                    reason: reason.clone(),
                }),
            }
            if let Some(version) = version {
                seen.insert(name, (version, value));
            }
        }
        // Keep only what the listing still names.
        *self.values.lock().unwrap_or_else(|e| e.into_inner()) = seen;
        Ok(loaded)
    }
}
