//! `testConnectors` as deployed: the core `Monitor` over Secrets Manager, ECS discovery, the
//! DynamoDB state table and SNS, built here for the Lambda and `connectorctl check` alike.

use crate::SystemClock;
use crate::connect::{HttpWorkers, RestCredentials};
use crate::ecs::EcsTaskDiscovery;
use crate::kafka::{KafkaBrokers, TlsSetupError};
use crate::monitor_state::DynamoDbMonitorStore;
use crate::secrets::SecretsManagerConfigs;
use crate::sns::SnsAlertPublisher;
use crate::table_probe::DynamoDbTableProbe;
use connector_core::monitor::config::MonitorConfig;
use connector_core::monitor::run::Monitor;

/// The monitor as deployed: Secrets Manager, ECS discovery, DynamoDB state, SNS alerts. The
/// `testConnectors` Lambda and `connectorctl check` both build it here.
pub type DeployedMonitor = Monitor<
    SecretsManagerConfigs,
    HttpWorkers<EcsTaskDiscovery>,
    DynamoDbMonitorStore,
    SnsAlertPublisher,
    SystemClock,
    KafkaBrokers,
    DynamoDbTableProbe,
>;

/// The deployed monitor for `config`, on the clients of `sdk`, sending the REST credentials of
/// `CONNECT_CREDENTIALS_SECRET`. Fails only when the brokers' TLS settings cannot be used (a CA
/// file that is not PEM).
pub fn deployed_monitor(config: MonitorConfig, sdk: &aws_config::SdkConfig) -> Result<DeployedMonitor, TlsSetupError> {
    let credentials = RestCredentials::from_secret(config.connect_credentials_secret.as_deref(), sdk);
    deployed_monitor_with(config, sdk, credentials)
}

/// [`deployed_monitor`] sending `credentials` to the workers (connectorctl's own).
pub fn deployed_monitor_with(
    config: MonitorConfig,
    sdk: &aws_config::SdkConfig,
    credentials: RestCredentials,
) -> Result<DeployedMonitor, TlsSetupError> {
    let brokers = match &config.kafka_bootstrap {
        Some(bootstrap) => Some(KafkaBrokers::with_security(
            bootstrap,
            config.kafka_tls,
            config.kafka_tls_ca_file.as_deref(),
            config.connect_timeout,
        )?),
        None => None,
    };
    let workers = HttpWorkers::new(
        EcsTaskDiscovery::new(crate::ecs::Client::new(sdk)),
        config.connect_url.clone(),
        config.connect_port,
        config.connect_timeout,
    )
    .with_credentials(credentials);
    let store = DynamoDbMonitorStore::new(crate::monitor_state::Client::new(sdk), &config.state_table);
    let alerts = SnsAlertPublisher::new(crate::sns::Client::new(sdk), &config.alert_topic_arn)
        .warnings_to(config.warning_topic_arn.clone());
    let configs = SecretsManagerConfigs::new(crate::secrets::Client::new(sdk))
        .with_license_secret(config.license_secret_arn.clone());
    let probe = DynamoDbTableProbe::new(crate::table_probe::Client::new(sdk));
    Ok(Monitor::new(config, configs, workers, brokers, store, alerts, SystemClock).with_table_probe(probe))
}

/// The deployment's clusters as deployed, one monitor each on the same clients.
pub type DeployedFleet = crate::fleet::Fleet<
    SecretsManagerConfigs,
    HttpWorkers<EcsTaskDiscovery>,
    DynamoDbMonitorStore,
    SnsAlertPublisher,
    SystemClock,
    KafkaBrokers,
    DynamoDbTableProbe,
>;

/// The deployed fleet for `configs` (`MonitorConfig::fleet_from_lookup`), on the clients of `sdk`.
pub fn deployed_fleet(
    configs: Vec<MonitorConfig>,
    sdk: &aws_config::SdkConfig,
) -> Result<DeployedFleet, TlsSetupError> {
    let members = configs
        .into_iter()
        .map(|c| deployed_monitor(c, sdk))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(crate::fleet::Fleet::new(members))
}
