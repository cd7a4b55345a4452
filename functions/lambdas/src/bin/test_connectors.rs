//! `testConnectors`: the health monitor, every minute.
// The monitor's future nests the SDK's and reqwest's futures deeply; its layout needs more depth.
#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    connector_lambdas::monitor::main().await
}
