//! `sinkSeatoolData`: Seatool State_Plan records into the seatool table (id = the Kafka key).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    connector_lambdas::sink::run(connector_core::sink::Table::Seatool).await
}
