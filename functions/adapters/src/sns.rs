//! Alerts on Amazon SNS, with the message attributes subscribers filter on.

use aws_sdk_sns::types::MessageAttributeValue;
use connector_core::monitor::alerting::alert::AlertMessage;
use connector_core::monitor::ports::{AlertError, AlertPublisher};

pub use aws_sdk_sns::Client;

/// [`AlertPublisher`] on SNS: critical alerts on one topic, warnings on another when there is one.
#[derive(Debug, Clone)]
pub struct SnsAlertPublisher {
    client: Client,
    topic_arn: String,
    warning_topic_arn: Option<String>,
}

impl SnsAlertPublisher {
    /// Alerts to `topic_arn`.
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
            warning_topic_arn: None,
        }
    }

    /// Every alert that is not critical (warning, info) to `topic_arn` instead, when given.
    pub fn warnings_to(mut self, topic_arn: Option<String>) -> Self {
        self.warning_topic_arn = topic_arn.filter(|t| !t.is_empty());
        self
    }

    /// The topic of a message of `severity`.
    fn topic_of(&self, severity: &str) -> &str {
        match &self.warning_topic_arn {
            Some(warnings) if severity != "critical" => warnings,
            _ => &self.topic_arn,
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
            .topic_arn(self.topic_of(&message.severity))
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
