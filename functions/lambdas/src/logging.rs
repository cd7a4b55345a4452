//! Logs: `tracing` events as JSON lines on stdout, which CloudWatch Logs indexes by field.

/// Installs the JSON subscriber at the level of [`level_directive`].
///
/// Not `lambda_runtime::tracing::init_default_subscriber`: it writes text unless the function's
/// log format is JSON, and panics when a subscriber is already set; these lines stay JSON (the
/// `automated action` fields, the metric lines beside them) in either log format. Its level
/// rule is the same: Lambda's application log level, else `RUST_LOG`, else `info`.
pub fn init() {
    let directive = level_directive(
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(),
        std::env::var("RUST_LOG").ok().as_deref(),
    );
    let filter = tracing_subscriber::EnvFilter::try_new(&directive)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Lambda stamps each line when it arrives; the line's own `timestamp` (RFC 3339, UTC) is
    // when it happened, and the only time a line has under `cargo lambda watch`, where logs
    // are lined up with injected faults. ANSI colours only add noise.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_current_span(false)
        .try_init();
}

pub use connector_core::error_chain as chain;

/// The filter directive: `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging controls set it from
/// the function's application log level: `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`, `FATAL`)
/// over `RUST_LOG`, else `info`. `FATAL` has no tracing level: `error` is the nearest.
pub fn level_directive(aws_lambda_log_level: Option<&str>, rust_log: Option<&str>) -> String {
    let lambda = aws_lambda_log_level
        .map(|l| l.trim().to_ascii_lowercase())
        .and_then(|l| match l.as_str() {
            "trace" | "debug" | "info" | "warn" | "error" => Some(l),
            "fatal" => Some("error".to_string()),
            _ => None,
        });
    lambda
        .or_else(|| rust_log.map(str::trim).filter(|r| !r.is_empty()).map(String::from))
        .unwrap_or_else(|| "info".to_string())
}

#[cfg(test)]
mod tests {
    use super::level_directive;

    #[test]
    fn lambdas_log_level_wins_over_rust_log_and_info_is_the_default() {
        assert_eq!(level_directive(Some("DEBUG"), Some("warn")), "debug");
        assert_eq!(level_directive(Some("FATAL"), None), "error");
        assert_eq!(
            level_directive(Some("LOUD"), Some("connector=trace")),
            "connector=trace"
        );
        assert_eq!(level_directive(None, Some("warn")), "warn");
        assert_eq!(level_directive(None, Some("  ")), "info");
        assert_eq!(level_directive(None, None), "info");
    }
}
