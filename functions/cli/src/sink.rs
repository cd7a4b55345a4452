//! The offline commands: `classify` and `sink dry-run`, pure core over a file.

use connector_adapters::dynamodb::{from_attribute, item};
use connector_core::sink::decode::decode_batch;
use connector_core::sink::mapping::{Table, WriteOp};
use connector_core::sink::plan::plan_batch;
use serde_json::{Value, json};

use crate::Failure;
use crate::output::table;

fn read_json(file: &str) -> Result<Value, Failure> {
    let text = if file == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| Failure::Input(format!("cannot read standard input: {e}")))?
    } else {
        std::fs::read_to_string(file).map_err(|e| Failure::Input(format!("cannot read {file}: {e}")))?
    };
    serde_json::from_str(&text).map_err(|e| Failure::Input(format!("{file} is not JSON: {e}")))
}

/// `connectorctl classify FILE`.
pub fn classify(file: &str) -> Result<(), Failure> {
    let doc = read_json(file)?;
    let out = connector_core::classify::classify(&doc).map_err(|e| Failure::Input(format!("{file}: {e}")))?;
    outln!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(())
}

/// The table whose mapping `name` (`seatool`, `appian`) means.
pub fn table_kind(name: &str) -> Result<Table, Failure> {
    match name {
        "seatool" => Ok(Table::Seatool),
        "appian" => Ok(Table::Appian),
        other => Err(Failure::Input(format!("no table {other:?}: seatool or appian"))),
    }
}

/// `connectorctl sink dry-run FILE --table T`: what the sink function would do with the batch,
/// record by record, writing nothing. Whether a write would be stale against the table is not
/// known offline; staleness within the batch is.
pub fn dry_run(file: &str, table_name: &str, json: bool) -> Result<(), Failure> {
    let doc = read_json(file)?;
    let table_kind = table_kind(table_name)?;
    let batch = decode_batch(&doc).map_err(|e| Failure::Input(format!("{file}: {e}")))?;
    let plan = plan_batch(table_kind, &batch.records);
    let mut records: Vec<Value> = batch
        .records
        .iter()
        .map(|r| {
            json!({"topic": r.coordinates.topic, "partition": r.coordinates.partition,
                   "offset": r.coordinates.offset})
        })
        .collect();
    for (index, outcome) in plan.decided.iter().enumerate() {
        if let Some(outcome) = outcome {
            records[index]["outcome"] = json!(outcome.as_str());
        }
    }
    for (index, letter) in &plan.dead_letters {
        records[*index]["reason"] = json!(letter.reason);
    }
    for (index, write) in &plan.writes {
        records[*index]["id"] = json!(write.id);
        match &write.op {
            WriteOp::Put(fields) => {
                let stored: serde_json::Map<String, Value> = item(write, fields)
                    .iter()
                    .map(|(k, v)| (k.clone(), from_attribute(v)))
                    .collect();
                records[*index]["outcome"] = json!("write (unless the table holds a newer one)");
                records[*index]["item"] = Value::Object(stored);
            }
            WriteOp::Delete => records[*index]["outcome"] = json!("delete (a tombstone)"),
        }
    }
    if json {
        let out = json!({"format": format!("{:?}", batch.format), "table": table_kind.name(), "records": records});
        outln!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(());
    }
    outln!(
        "{} records, {:?} format, for table {}",
        records.len(),
        batch.format,
        table_kind.name()
    );
    let rows = records
        .iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().map(str::to_string).unwrap_or_else(|| r[k].to_string());
            vec![
                format!("{}-{}@{}", text("topic"), r["partition"], r["offset"]),
                r["id"].as_str().unwrap_or("-").to_string(),
                text("outcome"),
                r["reason"].as_str().unwrap_or("").to_string(),
            ]
        })
        .collect();
    out!("{}", table(&["RECORD", "ID", "OUTCOME", "REASON"], rows));
    for r in records.iter().filter(|r| r.get("item").is_some()) {
        outln!(
            "\n{} →\n{}",
            r["id"].as_str().unwrap_or(""),
            serde_json::to_string_pretty(&r["item"]).unwrap_or_default()
        );
    }
    Ok(())
}
