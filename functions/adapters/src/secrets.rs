//! Desired connector configs in AWS Secrets Manager, one secret per connector holding
//! `{"name": ..., "config": {...}}`.

use aws_sdk_secretsmanager::error::SdkError;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
use connector_core::connect::ConnectorConfig;
use connector_core::connect::ports::{ConfigError, ConnectorConfigs, LoadedConfigs, parse_connector_config};

pub use aws_sdk_secretsmanager::Client;

/// [`ConnectorConfigs`] on Secrets Manager.
#[derive(Debug, Clone)]
pub struct SecretsManagerConfigs {
    client: Client,
}

impl SecretsManagerConfigs {
    /// Configs read through `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
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
        let mut names = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| ConfigError::Unavailable {
                secret: prefix.to_string(),
                source: Box::new(e),
            })?;
            // The Name filter matches words anywhere in the name; keep true prefixes only.
            names.extend(
                page.secret_list()
                    .iter()
                    .filter_map(|s| s.name())
                    .filter(|n| n.starts_with(prefix))
                    .map(String::from),
            );
        }
        names.sort();
        let mut loaded = LoadedConfigs::default();
        for name in names {
            match self.get(&name).await {
                Ok(config) => loaded.configs.push(config),
                Err(e @ ConfigError::Unavailable { .. }) => return Err(e),
                Err(problem) => loaded.problems.push(problem),
            }
        }
        Ok(loaded)
    }
}
