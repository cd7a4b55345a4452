//! The Kafka Connect REST bodies (JSON) read into the core model. Pure: used by the REST adapter
//! and by anything that reads a saved body (`connectorctl classify`). Unknown fields are ignored
//! and optional ones are optional, as Connect adds fields over versions.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::model::{
    ComponentStatus, ConnectorInfo, ConnectorStatus, ConnectorView, PluginInfo, SinkOffset, State, TaskStatus,
    WorkerInfo,
};

/// Reads a body, naming the field that was missing or mistyped.
pub fn parse<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// `GET /`.
pub fn worker_info(text: &str) -> Result<WorkerInfo, String> {
    let d: ServerInfoDto = parse(text)?;
    Ok(WorkerInfo {
        version: d.version,
        commit: d.commit,
        kafka_cluster_id: d.kafka_cluster_id,
    })
}

/// `GET /connectors/{name}/status` (and the 202 plan of a restart).
pub fn connector_status(text: &str) -> Result<ConnectorStatus, String> {
    parse::<StatusDto>(text).map(Into::into)
}

/// `PUT /connectors/{name}/config` and `GET /connectors/{name}`.
pub fn connector_info(text: &str) -> Result<ConnectorInfo, String> {
    parse::<InfoDto>(text).map(Into::into)
}

/// `GET /connectors?expand=status&expand=info`.
pub fn expanded(text: &str) -> Result<Vec<ConnectorView>, String> {
    let map: BTreeMap<String, ExpandedDto> = parse(text)?;
    Ok(map
        .into_iter()
        .map(|(name, d)| ConnectorView {
            name,
            status: d.status.map(Into::into),
            info: d.info.map(Into::into),
        })
        .collect())
}

/// `GET /connectors/{name}/offsets` of a sink connector: each partition's committed offset. An
/// entry that is not a sink partition (a source connector's offsets are its own shape) is an
/// error naming it, so a source connector is never read as having no progress.
pub fn sink_offsets(text: &str) -> Result<Vec<SinkOffset>, String> {
    let d: OffsetsDto = parse(text)?;
    d.offsets
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let topic = e.partition.get("kafka_topic").and_then(|v| v.as_str());
            let partition = e.partition.get("kafka_partition").and_then(|v| v.as_i64());
            let offset = e
                .offset
                .as_ref()
                .and_then(|o| o.get("kafka_offset"))
                .and_then(|v| v.as_i64());
            match (topic, partition, offset) {
                (Some(topic), Some(partition), Some(offset)) => Ok(SinkOffset {
                    topic: topic.to_string(),
                    partition: i32::try_from(partition)
                        .map_err(|_| format!("offsets[{i}].partition.kafka_partition is out of range"))?,
                    offset,
                }),
                (None, _, _) => Err(format!(
                    "offsets[{i}].partition.kafka_topic is missing: not a sink connector's offsets"
                )),
                (_, None, _) => Err(format!(
                    "offsets[{i}].partition.kafka_partition is missing or not a number"
                )),
                (_, _, None) => Err(format!("offsets[{i}].offset.kafka_offset is missing or not a number")),
            }
        })
        .collect()
}

/// `GET /connector-plugins`.
pub fn plugins(text: &str) -> Result<Vec<PluginInfo>, String> {
    let d: Vec<PluginDto> = parse(text)?;
    Ok(d.into_iter()
        .map(|p| PluginInfo {
            class: p.class,
            kind: p.kind,
            version: p.version,
        })
        .collect())
}

/// The body of `PATCH /connectors/{name}/offsets` that moves a sink connector's partitions to
/// the offsets given.
pub fn alter_sink_offsets_body(offsets: &[SinkOffset]) -> serde_json::Value {
    serde_json::json!({
        "offsets": offsets.iter().map(|o| serde_json::json!({
            "partition": {"kafka_topic": o.topic, "kafka_partition": o.partition},
            "offset": {"kafka_offset": o.offset},
        })).collect::<Vec<_>>()
    })
}

/// The `{"message": ...}` of a 200 (offsets altered or reset).
pub fn message(text: &str) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Message {
        message: String,
    }
    parse::<Message>(text).map(|m| m.message)
}

#[derive(Deserialize)]
struct PluginDto {
    class: String,
    #[serde(rename = "type")]
    kind: String,
    version: Option<String>,
}

#[derive(Deserialize)]
struct OffsetsDto {
    offsets: Vec<OffsetEntryDto>,
}

#[derive(Deserialize)]
struct OffsetEntryDto {
    partition: serde_json::Map<String, serde_json::Value>,
    offset: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct ServerInfoDto {
    version: String,
    #[serde(default)]
    commit: String,
    kafka_cluster_id: Option<String>,
}

#[derive(Deserialize)]
struct StatusDto {
    name: String,
    connector: ComponentDto,
    #[serde(default)]
    tasks: Vec<TaskDto>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct ComponentDto {
    state: String,
    #[serde(default)]
    worker_id: String,
    trace: Option<String>,
}

#[derive(Deserialize)]
struct TaskDto {
    id: i32,
    state: String,
    #[serde(default)]
    worker_id: String,
    trace: Option<String>,
}

#[derive(Deserialize)]
struct InfoDto {
    name: String,
    #[serde(default)]
    config: BTreeMap<String, String>,
    #[serde(default)]
    tasks: Vec<TaskIdDto>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct TaskIdDto {
    task: i32,
}

#[derive(Deserialize)]
struct ExpandedDto {
    status: Option<StatusDto>,
    info: Option<InfoDto>,
}

impl From<StatusDto> for ConnectorStatus {
    fn from(d: StatusDto) -> Self {
        ConnectorStatus {
            name: d.name,
            connector: ComponentStatus {
                state: State::parse(&d.connector.state),
                worker_id: d.connector.worker_id,
                trace: d.connector.trace,
            },
            tasks: d
                .tasks
                .into_iter()
                .map(|t| TaskStatus {
                    id: t.id,
                    state: State::parse(&t.state),
                    worker_id: t.worker_id,
                    trace: t.trace,
                })
                .collect(),
            kind: d.kind,
        }
    }
}

impl From<InfoDto> for ConnectorInfo {
    fn from(d: InfoDto) -> Self {
        ConnectorInfo {
            name: d.name,
            config: d.config,
            tasks: d.tasks.into_iter().map(|t| t.task).collect(),
            kind: d.kind,
        }
    }
}
