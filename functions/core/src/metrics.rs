//! CloudWatch Embedded Metric Format (EMF): metrics as one JSON log line, no API call.
//!
//! Core layer: builds the line; the edges print it to stdout, where Lambda's log agent picks it
//! up and CloudWatch extracts the metrics.

use serde_json::{Map, Value, json};

/// A metric's unit, as CloudWatch names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A count of things.
    Count,
    /// Milliseconds.
    Milliseconds,
    /// Seconds.
    Seconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
        }
    }
}

/// One EMF line: a namespace, one dimension set and its metric values.
pub fn emf_line(
    namespace: &str,
    dimensions: &[(&str, &str)],
    metrics: &[(&str, Unit, f64)],
    timestamp_millis: i64,
) -> String {
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_millis,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [dimensions.iter().map(|(name, _)| *name).collect::<Vec<_>>()],
                "Metrics": metrics.iter().map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()})).collect::<Vec<_>>(),
            }],
        }),
    );
    for (name, value) in dimensions {
        root.insert((*name).into(), Value::from(*value));
    }
    for (name, _, value) in metrics {
        root.insert((*name).into(), json!(value));
    }
    Value::Object(root).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_line_declares_each_metric_and_carries_its_value() {
        let line = emf_line(
            "connector",
            &[("Table", "seatool")],
            &[
                ("SinkRecordsWritten", Unit::Count, 3.0),
                ("SinkBatchMillis", Unit::Milliseconds, 12.5),
            ],
            1_700_000_000_000,
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        let decl = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(decl["Namespace"], "connector");
        assert_eq!(decl["Dimensions"], json!([["Table"]]));
        assert_eq!(
            decl["Metrics"][1],
            json!({"Name": "SinkBatchMillis", "Unit": "Milliseconds"})
        );
        assert_eq!(v["Table"], "seatool");
        assert_eq!(v["SinkRecordsWritten"], 3.0);
        assert!(!line.contains('\n'), "one line");
    }
}
