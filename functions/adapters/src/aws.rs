//! The AWS SDK configuration every adapter client is built from.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// Loads the SDK configuration from the standard AWS environment (region, credentials,
/// `AWS_ENDPOINT_URL`) with a timeout on every call and the standard retry mode, which retries
/// throttling and 5xx with exponential backoff and jitter.
///
/// `operation_timeout` bounds one call including its retries; each attempt gets a third of it.
pub async fn load_sdk_config(operation_timeout: Duration, max_attempts: u32) -> SdkConfig {
    loader(operation_timeout, max_attempts).load().await
}

/// As [`load_sdk_config`], with the credentials and region of the named profile of the shared
/// config files (`connectorctl --profile`).
pub async fn load_sdk_config_profile(profile: &str, operation_timeout: Duration, max_attempts: u32) -> SdkConfig {
    loader(operation_timeout, max_attempts)
        .profile_name(profile)
        .load()
        .await
}

/// As [`load_sdk_config`], every client sending to `endpoint` whatever the environment says
/// (tests put a fault-injecting proxy there).
pub async fn load_sdk_config_at(endpoint: &str, operation_timeout: Duration, max_attempts: u32) -> SdkConfig {
    loader(operation_timeout, max_attempts)
        .endpoint_url(endpoint)
        .load()
        .await
}

fn loader(operation_timeout: Duration, max_attempts: u32) -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(operation_timeout / 3)
                .operation_timeout(operation_timeout)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(max_attempts))
}
