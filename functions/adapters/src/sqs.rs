//! The sink's dead-letter queue on Amazon SQS, with claim checks in S3 for letters too large
//! for a message.

pub use aws_sdk_sqs::Client;
use connector_core::sink::DeadLetter;
use connector_core::sink::plan::ClaimCheck;
use connector_core::sink::ports::{DeadLetterError, DeadLetterQueue};
use sha2::{Digest, Sha256};

/// SQS caps a message (body and attributes) at 256 KiB; keep a margin for the attributes.
const MAX_BODY_BYTES: usize = 256 * 1024 - 1024;

/// Sends each dead letter as one JSON message (see [`DeadLetter::to_message`]) with the table
/// and reason as message attributes, so a consumer can filter without parsing. A letter whose
/// whole body does not fit a message goes to S3 when a bucket is set, and the message carries
/// its claim check ([`DeadLetter::claim_message`]); without a bucket it is cut to fit.
#[derive(Debug, Clone)]
pub struct SqsDeadLetterQueue {
    client: Client,
    queue_url: String,
    claim_checks: Option<(aws_sdk_s3::Client, String)>,
}

impl SqsDeadLetterQueue {
    /// A queue adapter for `queue_url`.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
            claim_checks: None,
        }
    }

    /// Keeps the bodies too large for a message in `bucket`.
    pub fn with_claim_checks(mut self, s3: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        self.claim_checks = Some((s3, bucket.into()));
        self
    }

    /// The body a claim check names, checked against its digest.
    pub async fn fetch_claim(&self, claim: &ClaimCheck) -> Result<String, String> {
        let Some((s3, _)) = &self.claim_checks else {
            return Err("a claim check, but no S3 client to read it with".into());
        };
        let out = s3
            .get_object()
            .bucket(&claim.bucket)
            .key(&claim.key)
            .send()
            .await
            .map_err(|e| format!("cannot read s3://{}/{}: {}", claim.bucket, claim.key, describe(&e)))?;
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| format!("cannot read s3://{}/{}: {e}", claim.bucket, claim.key))?
            .into_bytes();
        if hex_sha256(&bytes) != claim.sha256 {
            return Err(format!(
                "s3://{}/{} does not match its checksum",
                claim.bucket, claim.key
            ));
        }
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("s3://{}/{} is not UTF-8", claim.bucket, claim.key))
    }

    /// Deletes a claim check's object, once its record is stored.
    pub async fn delete_claim(&self, claim: &ClaimCheck) -> Result<(), String> {
        let Some((s3, _)) = &self.claim_checks else {
            return Ok(());
        };
        s3.delete_object()
            .bucket(&claim.bucket)
            .key(&claim.key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("cannot delete s3://{}/{}: {}", claim.bucket, claim.key, describe(&e)))
    }

    /// The message body for `letter`: whole, a claim check (the body put in S3), or cut.
    async fn body(&self, letter: &DeadLetter) -> Result<String, DeadLetterError> {
        let full = letter.full_message();
        if full.len() <= MAX_BODY_BYTES {
            return Ok(full);
        }
        let Some((s3, bucket)) = &self.claim_checks else {
            return Ok(letter.to_message(MAX_BODY_BYTES));
        };
        let sha256 = hex_sha256(full.as_bytes());
        let claim = ClaimCheck {
            bucket: bucket.clone(),
            key: letter.claim_key(&sha256),
            sha256,
            bytes: full.len(),
        };
        s3.put_object()
            .bucket(bucket)
            .key(&claim.key)
            .content_type("application/json")
            .body(full.into_bytes().into())
            .send()
            .await
            .map_err(|e| refused(letter, e))?;
        Ok(letter.claim_message(&claim, MAX_BODY_BYTES))
    }
}

/// An S3 client for claim checks; path-style addressing when the endpoint is overridden (moto
/// on loopback has no virtual-hosted bucket names).
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The letter could not be set aside (SQS or S3 refused it).
fn refused(letter: &DeadLetter, e: impl std::error::Error + Send + Sync + 'static) -> DeadLetterError {
    DeadLetterError {
        topic: letter.coordinates.topic.clone(),
        partition: letter.coordinates.partition,
        offset: letter.coordinates.offset,
        source: Box::new(e),
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
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
            .message_body(self.body(letter).await?);
        for (name, value) in [("table", letter.table), ("reason", letter.reason.as_str())] {
            // Attribute values are capped too; the full reason is in the body.
            let value: String = value.chars().take(256).collect();
            if let Ok(attr) = attribute(&value) {
                request = request.message_attributes(name, attr);
            }
        }
        request.send().await.map(|_| ()).map_err(|e| refused(letter, e))
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
