//! `checkIfConnectIsReady`: whether the worker can take connector configurations.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    connector_lambdas::control::main::check_if_connect_is_ready().await
}
