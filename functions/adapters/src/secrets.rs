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

use crate::connect::BasicAuth;
use connector_core::connect::ports::{ConfigError, ConnectorConfigs, LoadedConfigs, parse_connector_config};

pub use aws_sdk_secretsmanager::Client;

/// A secret's value as read at one version: the config, or why it is not one.
type CachedValue = Result<ConnectorConfig, String>;

/// [`ConnectorConfigs`] on Secrets Manager. Clones share one value cache.
#[derive(Debug, Clone)]
pub struct SecretsManagerConfigs {
    client: Client,
    values: Arc<Mutex<HashMap<String, (String, CachedValue)>>>,
    license_secret: Option<String>,
}

impl SecretsManagerConfigs {
    /// Configs read through `client`.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            values: Arc::default(),
            license_secret: None,
        }
    }

    /// Every config read gets `confluent.license` from this secret (its whole string), read at
    /// each `get` and `list` and never cached, so a rotated licence is what the next creation,
    /// drift check or `connectorctl ensure` applies. Unset or empty: configs as stored.
    pub fn with_license_secret(mut self, secret: Option<String>) -> Self {
        self.license_secret = secret.filter(|s| !s.trim().is_empty());
        self
    }

    /// The licence, when a licence secret is set.
    async fn license(&self) -> Result<Option<String>, ConfigError> {
        let Some(secret) = &self.license_secret else {
            return Ok(None);
        };
        let unavailable = |source: connector_core::sink::ports::BoxError| ConfigError::Unavailable {
            secret: secret.clone(),
            source,
        };
        let out = self
            .client
            .get_secret_value()
            .secret_id(secret)
            .send()
            .await
            .map_err(|e| unavailable(Box::new(e)))?;
        match out.secret_string().map(str::trim) {
            Some(text) if !text.is_empty() => Ok(Some(text.to_string())),
            _ => Err(ConfigError::Invalid {
                secret: secret.clone(),
                reason: "the licence secret holds no text (put the Confluent licence key as its string)".into(),
            }),
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
        let mut config = self.read(secret).await?;
        if let Some(license) = self.license().await? {
            config.config.insert("confluent.license".into(), license);
        }
        Ok(config)
    }

    async fn list(&self, prefix: &str) -> Result<LoadedConfigs, ConfigError> {
        let mut loaded = self.read_all(prefix).await?;
        if let Some(license) = self.license().await? {
            for config in &mut loaded.configs {
                config.config.insert("confluent.license".into(), license.clone());
            }
        }
        Ok(loaded)
    }
}

impl SecretsManagerConfigs {
    /// One config as its secret holds it.
    async fn read(&self, secret: &str) -> Result<ConnectorConfig, ConfigError> {
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

    /// Every config under `prefix` as the secrets hold them, values cached by version.
    async fn read_all(&self, prefix: &str) -> Result<LoadedConfigs, ConfigError> {
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
                None => match self.read(&name).await {
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

/// Why the workers' REST credentials could not be read from their secret.
#[derive(Debug, thiserror::Error)]
pub enum RestCredentialsError {
    /// Secrets Manager did not answer, refused the read, or has no such secret.
    #[error("cannot read the Kafka Connect REST credentials from secret {secret}")]
    Unavailable {
        /// The secret's name or ARN.
        secret: String,
        /// Secrets Manager's error.
        #[source]
        source: connector_core::sink::ports::BoxError,
    },
    /// The secret is not `{"username": "...", "password": "..."}`.
    #[error("secret {secret} does not hold Kafka Connect REST credentials: {reason}")]
    Invalid {
        /// The secret's name or ARN.
        secret: String,
        /// What is wrong, naming the field.
        reason: String,
    },
}

/// The workers' REST credentials from `text`, a secret holding `{"username", "password"}` (the
/// template's generated secret, which ECS also injects into the worker).
pub fn parse_rest_credentials(secret: &str, text: &str) -> Result<BasicAuth, RestCredentialsError> {
    let invalid = |reason: String| RestCredentialsError::Invalid {
        secret: secret.to_string(),
        reason,
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| invalid(format!("not JSON: {e}")))?;
    let field = |name: &str| match value.get(name) {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(serde_json::Value::String(_)) => Err(invalid(format!("`{name}` is empty"))),
        Some(other) => Err(invalid(format!("`{name}` is not a string but {other}"))),
        None => Err(invalid(format!("no `{name}`"))),
    };
    let (username, password) = (field("username")?, field("password")?);
    if username.contains(':') {
        return Err(invalid(
            "`username` contains ':', which basic authentication cannot carry".into(),
        ));
    }
    Ok(BasicAuth { username, password })
}

/// Reads the workers' REST credentials from `secret` now (its current version: a rotated secret
/// counts at the next read).
pub async fn read_rest_credentials(client: &Client, secret: &str) -> Result<BasicAuth, RestCredentialsError> {
    let out =
        client
            .get_secret_value()
            .secret_id(secret)
            .send()
            .await
            .map_err(|e| RestCredentialsError::Unavailable {
                secret: secret.to_string(),
                source: Box::new(e),
            })?;
    let text = out.secret_string().ok_or_else(|| RestCredentialsError::Invalid {
        secret: secret.to_string(),
        reason: "it holds binary, not text".into(),
    })?;
    parse_rest_credentials(secret, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_credentials_are_a_username_and_a_password_and_every_other_shape_is_named() {
        let ok = parse_rest_credentials("s", r#"{"username": "ops", "password": "p\"a:ss"}"#).unwrap();
        assert_eq!((ok.username.as_str(), ok.password.as_str()), ("ops", "p\"a:ss"));
        assert!(
            !format!("{ok:?}").contains("p\\\"a:ss"),
            "Debug hides the password: {ok:?}"
        );
        for (text, reason) in [
            ("ops:secret", "not JSON"),
            (r#"{"password": "x"}"#, "no `username`"),
            (r#"{"username": "ops", "password": ""}"#, "`password` is empty"),
            (
                r#"{"username": "ops", "password": 7}"#,
                "`password` is not a string but 7",
            ),
            (r#"{"username": "o:ps", "password": "x"}"#, "contains ':'"),
        ] {
            let e = parse_rest_credentials("rest", text).unwrap_err().to_string();
            assert!(e.contains(reason) && e.contains("secret rest"), "{text}: {e}");
        }
    }
}
