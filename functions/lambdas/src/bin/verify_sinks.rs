//! `verifySinks`: each sink's last window of records against its table, on a schedule.
// Its future nests the Kafka client's, the SDK's and the alert lifecycle's deeply.
#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    connector_lambdas::verify_sinks::main().await
}
