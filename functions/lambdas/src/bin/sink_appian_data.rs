//! `sinkAppianData`: Appian SPA package records into the appian table (id = `payload.PCKG_ID`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    connector_lambdas::sink::run(connector_core::sink::Table::Appian).await
}
