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

/// A message read from the queue: its id, the handle that deletes or releases it, its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// SQS's message id.
    pub message_id: String,
    /// The receipt handle of this receive.
    pub receipt_handle: String,
    /// The body, as [`DeadLetter::to_message`] wrote it.
    pub body: String,
}

impl SqsDeadLetterQueue {
    /// Receives up to `limit` messages, each hidden from other readers for `hold` (until deleted
    /// or released). Stops when a receive returns nothing.
    pub async fn receive(&self, limit: usize, hold: std::time::Duration) -> Result<Vec<Received>, String> {
        let mut received: Vec<Received> = Vec::new();
        while received.len() < limit {
            let out = self
                .client
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages((limit - received.len()).min(10) as i32)
                .visibility_timeout(hold.as_secs().try_into().unwrap_or(i32::MAX))
                .wait_time_seconds(0)
                .send()
                .await
                .map_err(|e| format!("cannot read {}: {}", self.queue_url, describe(&e)))?;
            let messages = out.messages();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                if let (Some(id), Some(handle)) = (m.message_id(), m.receipt_handle()) {
                    received.push(Received {
                        message_id: id.into(),
                        receipt_handle: handle.into(),
                        body: m.body().unwrap_or_default().into(),
                    });
                }
            }
        }
        Ok(received)
    }

    /// Deletes a received message: only once its record is stored.
    pub async fn delete(&self, message: &Received) -> Result<(), String> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(&message.receipt_handle)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("cannot delete message {}: {}", message.message_id, describe(&e)))
    }

    /// Makes a received message visible again at once.
    pub async fn release(&self, message: &Received) -> Result<(), String> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(&message.receipt_handle)
            .visibility_timeout(0)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("cannot release message {}: {}", message.message_id, describe(&e)))
    }
}

fn describe<E: aws_sdk_sqs::error::ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    e: &aws_sdk_sqs::error::SdkError<E, R>,
) -> String {
    match e {
        aws_sdk_sqs::error::SdkError::ServiceError(s) => format!(
            "{}: {}",
            s.err().code().unwrap_or("error"),
            s.err().message().unwrap_or("")
        ),
        other => format!("{other:?}").chars().take(200).collect(),
    }
}
