//! The sink's dead-letter queue on Amazon SQS.

pub use aws_sdk_sqs::Client;
use connector_core::sink::DeadLetter;
use connector_core::sink::ports::{DeadLetterError, DeadLetterQueue};

/// SQS caps a message (body and attributes) at 256 KiB; keep a margin for the attributes.
const MAX_BODY_BYTES: usize = 256 * 1024 - 1024;

/// Sends each dead letter as one JSON message (see [`DeadLetter::to_message`]) with the table
/// and reason as message attributes, so a consumer can filter without parsing.
#[derive(Debug, Clone)]
pub struct SqsDeadLetterQueue {
    client: Client,
    queue_url: String,
}

impl SqsDeadLetterQueue {
    /// A queue adapter for `queue_url`.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

impl DeadLetterQueue for SqsDeadLetterQueue {
    async fn send(&self, letter: &DeadLetter) -> Result<(), DeadLetterError> {
        let attribute = |value: &str| {
            aws_sdk_sqs::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
        };
        let mut request = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(letter.to_message(MAX_BODY_BYTES));
        for (name, value) in [("table", letter.table), ("reason", letter.reason.as_str())] {
            // Attribute values are capped too; the full reason is in the body.
            let value: String = value.chars().take(256).collect();
            if let Ok(attr) = attribute(&value) {
                request = request.message_attributes(name, attr);
            }
        }
        request.send().await.map(|_| ()).map_err(|e| DeadLetterError {
            topic: letter.coordinates.topic.clone(),
            partition: letter.coordinates.partition,
            offset: letter.coordinates.offset,
            source: Box::new(e),
        })
    }
}
