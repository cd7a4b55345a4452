//! `findTaskIp`: the private IP of the newest RUNNING Kafka Connect task.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    connector_lambdas::control::main::find_task_ip().await
}
