//! `createConnector`: create or update a connector from its Secrets Manager config.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    connector_lambdas::control::main::create_connector().await
}
