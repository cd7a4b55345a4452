//! `alarmState`: the project's CloudWatch alarms become actionable alerts.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    connector_lambdas::alarm_state::main().await
}
