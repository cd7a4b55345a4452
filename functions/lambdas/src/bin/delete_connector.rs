//! `deleteConnector`: delete a connector; an absent one is a success that says so.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    connector_lambdas::control::main::delete_connector().await
}
