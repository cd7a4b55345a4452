//! Where the Kafka Connect workers run: ECS tasks of the Connect cluster.

use aws_sdk_ecs::types::DesiredStatus;
use connector_core::connect::ports::{DiscoveryError, RunningTask, TaskDiscovery};

pub use aws_sdk_ecs::Client;

/// `DescribeTasks` takes at most 100 ARNs per call.
const DESCRIBE_BATCH: usize = 100;

/// [`TaskDiscovery`] with `ListTasks` and `DescribeTasks`.
#[derive(Debug, Clone)]
pub struct EcsTaskDiscovery {
    client: Client,
}

impl EcsTaskDiscovery {
    /// Discovery through `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

impl TaskDiscovery for EcsTaskDiscovery {
    async fn running_tasks(&self, cluster: &str) -> Result<Vec<RunningTask>, DiscoveryError> {
        let fail = |e: Box<dyn std::error::Error + Send + Sync>| DiscoveryError {
            cluster: cluster.to_string(),
            source: e,
        };
        let mut arns = Vec::new();
        let mut pages = self
            .client
            .list_tasks()
            .cluster(cluster)
            .desired_status(DesiredStatus::Running)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            arns.extend(page.map_err(|e| fail(Box::new(e)))?.task_arns().iter().cloned());
        }
        let mut running = Vec::new();
        for chunk in arns.chunks(DESCRIBE_BATCH) {
            let out = self
                .client
                .describe_tasks()
                .cluster(cluster)
                .set_tasks(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| fail(Box::new(e)))?;
            for task in out.tasks() {
                // Desired RUNNING includes tasks still PROVISIONING or PENDING: no worker yet.
                if task.last_status() != Some("RUNNING") {
                    continue;
                }
                // Fargate (awsvpc) puts the address on the ENI attachment, not on the container.
                let ip = task
                    .attachments()
                    .iter()
                    .filter(|a| a.r#type() == Some("ElasticNetworkInterface"))
                    .flat_map(|a| a.details())
                    .find(|d| d.name() == Some("privateIPv4Address"))
                    .and_then(|d| d.value());
                if let (Some(arn), Some(ip)) = (task.task_arn(), ip) {
                    let started = task.started_at().and_then(|t| t.to_millis().ok());
                    running.push(RunningTask {
                        arn: arn.to_string(),
                        ip: ip.to_string(),
                        started_at_millis: started,
                    });
                }
            }
        }
        running.sort_by_key(|t| std::cmp::Reverse(t.started_at_millis));
        Ok(running)
    }
}
