//! `ecsTaskState`: ECS task stops of the Connect cluster become actionable alerts.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    connector_lambdas::ecs_task_state::main().await
}
