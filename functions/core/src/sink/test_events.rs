//! Loads the real-shaped sample events in `events/sink/` for unit tests.

/// The parsed JSON of `events/sink/<file>`.
pub fn event(file: &str) -> serde_json::Value {
    let path = format!("{}/../../events/sink/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}
