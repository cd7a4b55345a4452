//! Whether a sink table is empty: one Scan of one item, for the check before a sink connector
//! resumes from committed offsets ([`connector_core::connect::resume`]).

use aws_sdk_dynamodb::types::Select;
use connector_core::connect::resume::TableProbe;
use connector_core::sink::ports::BoxError;

pub use aws_sdk_dynamodb::Client;

/// [`TableProbe`] on DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoDbTableProbe {
    client: Client,
}

impl DynamoDbTableProbe {
    /// Probes through `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

impl TableProbe for DynamoDbTableProbe {
    async fn is_empty(&self, table: &str) -> Result<bool, BoxError> {
        let out = self
            .client
            .scan()
            .table_name(table)
            .select(Select::Count)
            .limit(1)
            .send()
            .await
            .map_err(|e| Box::new(e) as BoxError)?;
        // One item read, or a page that ended before it found one: not empty either way.
        Ok(out.count() == 0 && out.last_evaluated_key().is_none())
    }
}
