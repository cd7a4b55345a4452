//! Alerts on Amazon SNS, with the message attributes subscribers filter on.

use aws_sdk_sns::types::MessageAttributeValue;
use connector_core::monitor::alerting::alert::AlertMessage;
use connector_core::monitor::ports::{AlertError, AlertPublisher};

pub use aws_sdk_sns::Client;

/// [`AlertPublisher`] on one SNS topic.
#[derive(Debug, Clone)]
pub struct SnsAlertPublisher {
    client: Client,
    topic_arn: String,
}

impl SnsAlertPublisher {
    /// Alerts to `topic_arn`.
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

impl AlertPublisher for SnsAlertPublisher {
    async fn publish(&self, message: &AlertMessage) -> Result<(), AlertError> {
        let fail = |e: Box<dyn std::error::Error + Send + Sync>| AlertError {
            subject: message.subject.clone(),
            source: e,
        };
        let mut request = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(&message.subject)
            .message(&message.body);
        for (name, value) in [
            ("category", &message.category),
            ("severity", &message.severity),
            ("incident", &message.incident),
            ("state", &message.state),
        ] {
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| fail(Box::new(e)))?;
            request = request.message_attributes(name, attribute);
        }
        request.send().await.map(|_| ()).map_err(|e| fail(Box::new(e)))
    }
}
