//! A sink connector applied from its config, never resumed into a table that cannot hold what
//! its committed offsets say was delivered.
//!
//! A connector's consumer group (`connect-<name>`) outlives the connector: a stack created again,
//! or pointed at a new table, makes connectors of the same names that resume from the group's
//! committed offsets, so only records after them would ever reach the (empty) table. So a sink
//! connector that does not exist yet is created STOPPED (Kafka Connect 3.7+; an older worker gets it
//! created running, and the answer says it went unchecked), its committed offsets are read through
//! the worker (KIP-875), and it is resumed only when there are none or its table holds items;
//! otherwise it stays STOPPED and the refusal says what to do. A connector that exists and is
//! STOPPED is checked the same way (a refusal is not undone by a retry), and left stopped.
//! `createConnector`, `connectorctl ensure` and the monitor's recreation of a missing connector
//! all apply configs through [`apply`].

use std::collections::BTreeMap;
use std::future::Future;

use super::model::{ConnectorConfig, State};
use super::ports::{ConnectApi, ConnectError};
use crate::sink::ports::BoxError;

/// Whether a sink table holds anything.
pub trait TableProbe: Send + Sync {
    /// True when `table` holds no item.
    fn is_empty(&self, table: &str) -> impl Future<Output = Result<bool, BoxError>> + Send;
}

/// A probe for no table: the type of a monitor given none (never asked).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProbe;

impl TableProbe for NoProbe {
    async fn is_empty(&self, table: &str) -> Result<bool, BoxError> {
        Err(format!("no table probe for {table}").into())
    }
}

/// The tables sink connectors write, by the topic they read (the stack's seatool and appian
/// topics): a connector reading one of them writes that table.
pub type SinkTables = BTreeMap<String, String>;

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Created and running (after the check, when it has a table).
    Created,
    /// An existing connector's config replaced (a STOPPED one stays stopped).
    Updated,
    /// Created running without the check: the worker cannot create a connector stopped (Kafka
    /// Connect before 3.7 refuses `initial_state`). Says so.
    CreatedUnchecked(String),
}

/// Why [`apply`] did not apply the config.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Kafka Connect refused or could not be reached.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The table could not be read; the connector was not created.
    #[error("cannot tell whether table {table} is empty, so {connector} was not created")]
    Probe {
        /// The connector.
        connector: String,
        /// Its table.
        table: String,
        /// The store's error.
        #[source]
        source: BoxError,
    },
    /// Committed offsets, and an empty table: left STOPPED.
    #[error(
        "refused to resume {connector}: its consumer group connect-{connector} has committed offsets in {partitions} \
         partition(s) ({sample}) but table {table} is empty, so the records before them would never reach it. \
         {connector} is left STOPPED. Adopt the table that holds them (ExistingSeatoolTable/ExistingAppianTable), or \
         replay the topic into this one (connectorctl offsets reset {connector}), then connectorctl resume {connector} \
         (runbooks/configure-connector-failed.md)"
    )]
    Refused {
        /// The connector.
        connector: String,
        /// Its empty table.
        table: String,
        /// How many partitions have commits.
        partitions: usize,
        /// A few of them, `topic[partition]@offset`.
        sample: String,
    },
}

/// The tables of `config`'s topics in `tables`.
pub fn tables_of<'a>(config: &ConnectorConfig, tables: &'a SinkTables) -> Vec<&'a str> {
    let mut mine: Vec<&str> = config
        .config
        .get("topics")
        .map(|t| {
            t.split(',')
                .filter_map(|topic| tables.get(topic.trim()).map(String::as_str))
                .collect()
        })
        .unwrap_or_default();
    mine.sort_unstable();
    mine.dedup();
    mine
}

/// Creates or updates `config` on the worker, with the check above for a sink whose topics have
/// a table in `tables`.
pub async fn apply<A: ConnectApi, T: TableProbe>(
    api: &A,
    probe: &T,
    tables: &SinkTables,
    config: &ConnectorConfig,
) -> Result<Applied, ApplyError> {
    let name = &config.name;
    let mine = tables_of(config, tables);
    if mine.is_empty() {
        let outcome = api.put_config(name, &config.config).await?;
        return Ok(if outcome.created {
            Applied::Created
        } else {
            Applied::Updated
        });
    }
    // Create first: a status read right after a delete can still answer for the old connector.
    match api.create_stopped(name, &config.config).await {
        Ok(()) => match check(api, probe, name, &mine).await {
            Ok(()) => {
                api.resume(name).await?;
                Ok(Applied::Created)
            }
            Err(refused @ ApplyError::Refused { .. }) => Err(refused),
            // Unchecked: nothing stays behind that a retry would take for checked.
            Err(other) => {
                api.delete(name).await?;
                Err(other)
            }
        },
        Err(ConnectError::Rebalancing { message }) if message.contains("already exists") => {
            match api.status(name).await {
                Ok(status) if status.connector.state == State::Stopped => check(api, probe, name, &mine).await?,
                // No status yet: created a moment ago by another caller, not a refused one.
                Ok(_) | Err(ConnectError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            api.put_config(name, &config.config).await?;
            Ok(Applied::Updated)
        }
        Err(ConnectError::Server { message, .. } | ConnectError::Refused { message, .. })
            if message.contains("initial_state") =>
        {
            api.put_config(name, &config.config).await?;
            Ok(Applied::CreatedUnchecked(format!(
                "created running without comparing its committed offsets with its table: this worker cannot create a \
                 connector stopped (Kafka Connect before 3.7: {})",
                message.lines().next().unwrap_or_default()
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// Refuses when `name` has committed offsets and one of its tables is empty.
async fn check<A: ConnectApi, T: TableProbe>(
    api: &A,
    probe: &T,
    name: &str,
    tables: &[&str],
) -> Result<(), ApplyError> {
    let committed: Vec<_> = api
        .sink_offsets(name)
        .await?
        .into_iter()
        .filter(|o| o.offset > 0)
        .collect();
    if committed.is_empty() {
        return Ok(());
    }
    for table in tables {
        let empty = probe.is_empty(table).await.map_err(|source| ApplyError::Probe {
            connector: name.to_string(),
            table: table.to_string(),
            source,
        })?;
        if empty {
            let sample = committed
                .iter()
                .take(3)
                .map(|o| format!("{}[{}]@{}", o.topic, o.partition, o.offset))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(ApplyError::Refused {
                connector: name.to_string(),
                table: table.to_string(),
                partitions: committed.len(),
                sample,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(topics: &str) -> ConnectorConfig {
        ConnectorConfig {
            name: "s".into(),
            config: BTreeMap::from([("topics".to_string(), topics.to_string())]),
        }
    }

    #[test]
    fn a_connector_has_the_tables_of_the_topics_it_reads_and_none_for_others() {
        let tables = SinkTables::from([("a".into(), "ta".into()), ("b".into(), "tb".into())]);
        assert_eq!(tables_of(&config("a"), &tables), vec!["ta"]);
        assert_eq!(tables_of(&config("b, a,a"), &tables), vec!["ta", "tb"]);
        assert!(tables_of(&config("c"), &tables).is_empty());
        let regex = ConnectorConfig {
            name: "r".into(),
            config: BTreeMap::from([("topics.regex".to_string(), "a.*".to_string())]),
        };
        assert!(tables_of(&regex, &tables).is_empty());
    }
}
