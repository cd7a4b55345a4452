//! `testConnectors` as deployed: the core `Monitor` over Secrets Manager, ECS discovery, the
//! DynamoDB state table and SNS, built here for the Lambda and `connectorctl check` alike.

use crate::SystemClock;
use crate::connect::HttpWorkers;
use crate::ecs::EcsTaskDiscovery;
use crate::monitor_state::DynamoDbMonitorStore;
use crate::secrets::SecretsManagerConfigs;
use crate::sns::SnsAlertPublisher;
use connector_core::monitor::config::MonitorConfig;
use connector_core::monitor::run::Monitor;

/// The monitor as deployed: Secrets Manager, ECS discovery, DynamoDB state, SNS alerts. The
/// `testConnectors` Lambda and `connectorctl check` both build it here.
pub type DeployedMonitor =
    Monitor<SecretsManagerConfigs, HttpWorkers<EcsTaskDiscovery>, DynamoDbMonitorStore, SnsAlertPublisher, SystemClock>;

/// The deployed monitor for `config`, on the clients of `sdk`.
pub fn deployed_monitor(config: MonitorConfig, sdk: &aws_config::SdkConfig) -> DeployedMonitor {
    let workers = HttpWorkers::new(
        EcsTaskDiscovery::new(crate::ecs::Client::new(sdk)),
        config.connect_url.clone(),
        config.connect_port,
        config.connect_timeout,
    );
    let store = DynamoDbMonitorStore::new(crate::monitor_state::Client::new(sdk), &config.state_table);
    let alerts = SnsAlertPublisher::new(crate::sns::Client::new(sdk), &config.alert_topic_arn);
    let configs = SecretsManagerConfigs::new(crate::secrets::Client::new(sdk));
    Monitor::new(config, configs, workers, store, alerts, SystemClock)
}
