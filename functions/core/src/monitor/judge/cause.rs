//! Why a connector or task FAILED, read from its Java stack trace: the root cause line, the
//! cause id it maps to, and a fingerprint that recognises the same failure when it comes back.

use serde::Serialize;

/// The cause ids of DESIGN.md: what the root cause of a FAILED trace means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// The worker's role may not invoke (or look up) the function.
    LambdaPermission,
    /// The function does not exist (name, alias, region).
    LambdaNotFound,
    /// Lambda throttled the invocations.
    LambdaThrottled,
    /// The function ran and failed (`behavior.on.error=fail`).
    LambdaFunctionError,
    /// The worker cannot reach the Kafka brokers.
    BrokerUnreachable,
    /// A record could not be converted (bad JSON, schema mismatch).
    Serialization,
    /// A plugin class is missing from the worker.
    PluginMissing,
    /// The Confluent licence is missing or expired.
    License,
    /// None of the above.
    Unknown,
}

impl Cause {
    /// Every cause.
    pub const ALL: [Cause; 9] = [
        Cause::LambdaPermission,
        Cause::LambdaNotFound,
        Cause::LambdaThrottled,
        Cause::LambdaFunctionError,
        Cause::BrokerUnreachable,
        Cause::Serialization,
        Cause::PluginMissing,
        Cause::License,
        Cause::Unknown,
    ];

    /// The stable id.
    pub fn id(self) -> &'static str {
        match self {
            Cause::LambdaPermission => "lambda-permission",
            Cause::LambdaNotFound => "lambda-not-found",
            Cause::LambdaThrottled => "lambda-throttled",
            Cause::LambdaFunctionError => "lambda-function-error",
            Cause::BrokerUnreachable => "broker-unreachable",
            Cause::Serialization => "serialization",
            Cause::PluginMissing => "plugin-missing",
            Cause::License => "license",
            Cause::Unknown => "unknown",
        }
    }

    /// Whether the cause is outside the connector and heals by itself (the brokers come back,
    /// throttling ends): restarts go on at the capped backoff after the budget.
    pub fn is_transient(self) -> bool {
        matches!(self, Cause::BrokerUnreachable | Cause::LambdaThrottled)
    }

    /// Whether a restart can fix it. A missing permission, function, plugin or licence, or a
    /// record that cannot be converted, fails again at once: restarting only makes noise.
    pub fn is_restartable(self) -> bool {
        !matches!(
            self,
            Cause::LambdaPermission
                | Cause::LambdaNotFound
                | Cause::PluginMissing
                | Cause::License
                | Cause::Serialization
        )
    }
}

/// The root cause of a trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RootCause {
    /// The root cause line, trimmed (`org.apache...DataException: Converting byte[] ...`).
    pub line: String,
    /// The exception class of that line, when it has one.
    pub exception: Option<String>,
    /// What it means.
    pub cause: Cause,
    /// The same failure gives the same fingerprint: the exception class and the message with
    /// numbers, offsets, ids and addresses normalised.
    pub fingerprint: String,
}

/// The line a person should read: the last `Caused by:`, else the first line.
pub fn root_line(trace: &str) -> &str {
    let last_cause = trace
        .lines()
        .rev()
        .find_map(|l| l.trim_start().strip_prefix("Caused by:"));
    last_cause.unwrap_or_else(|| trace.lines().next().unwrap_or("")).trim()
}

/// Reads the root cause of a FAILED trace. The cause is matched on the root line, then on the
/// outer exceptions' messages (the Confluent connector wraps Lambda errors in its own
/// exceptions), most specific first; never on stack frames.
pub fn root_cause(trace: &str) -> RootCause {
    let line = root_line(trace);
    let exception = exception_class(line);
    RootCause {
        line: line.chars().take(500).collect(),
        cause: classify(trace, line),
        fingerprint: fingerprint(exception.as_deref(), line),
        exception,
    }
}

/// (cause, any of these substrings in an exception's message). Order matters.
const RULES: &[(Cause, &[&str])] = &[
    (
        Cause::PluginMissing,
        &[
            "Failed to find any class that implements Connector",
            "ClassNotFoundException",
            "NoClassDefFoundError",
        ],
    ),
    (
        Cause::License,
        &[
            "LicenseException",
            "License expired",
            "license has expired",
            "Invalid license",
            "confluent.license",
        ],
    ),
    (
        Cause::LambdaPermission,
        &[
            "AccessDeniedException",
            "is not authorized to perform: lambda:",
            "AccessDenied",
            "Status Code: 403",
        ],
    ),
    (
        Cause::LambdaNotFound,
        &["Function not found", "ResourceNotFoundException"],
    ),
    (
        Cause::LambdaThrottled,
        &[
            "TooManyRequestsException",
            "Rate Exceeded",
            "ThrottlingException",
            "Status Code: 429",
        ],
    ),
    (
        Cause::LambdaFunctionError,
        &["FunctionError", "Unhandled", "function returned an error"],
    ),
    (
        Cause::Serialization,
        &[
            "DataException",
            "SerializationException",
            "Converting byte[] to Kafka Connect data failed",
            "JsonParseException",
            "JsonConverter with schemas.enable",
            "Unknown magic byte",
        ],
    ),
    (
        Cause::BrokerUnreachable,
        &[
            "org.apache.kafka.common.errors.TimeoutException",
            "DisconnectException",
            "Connection to node",
            "Failed to update metadata",
            "not present in metadata",
            "UnknownHostException",
            "No resolvable bootstrap urls",
        ],
    ),
];

/// Said only when the function ran and failed. Whatever its own error names (a missing table is
/// a ResourceNotFoundException too) is then the function's business, not the invocation's.
const FUNCTION_RAN: &[&str] = &["X-Amz-Function-Error", "Lambda function error"];

fn classify(trace: &str, line: &str) -> Cause {
    let messages = messages(trace);
    if messages.iter().any(|m| FUNCTION_RAN.iter().any(|n| m.contains(n))) {
        return Cause::LambdaFunctionError;
    }
    // The root line decides first; the outer exceptions only when it says nothing known.
    for text in std::iter::once(line).chain(messages.iter().map(String::as_str)) {
        for (cause, needles) in RULES {
            if needles.iter().any(|n| text.contains(n)) {
                return *cause;
            }
        }
    }
    Cause::Unknown
}

/// The exceptions' messages of a trace, innermost first: the first line and each `Caused by:`,
/// each with the lines that continue it (a message may span lines: Jackson's ` at [Source: ...`).
/// Stack frames (`at a.b.C.m(C.java:1)`) and `... 12 more` are left out: a word in a frame
/// (`at ...LambdaFunctionErrorHandler.describe`) names code, not a failure.
fn messages(trace: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in trace.lines() {
        let t = l.trim();
        let frame = t.strip_prefix("at ").is_some_and(|rest| !rest.starts_with('['))
            || (t.starts_with("...") && t.ends_with("more"));
        if frame || t.is_empty() {
            continue;
        }
        match t.strip_prefix("Caused by:") {
            Some(cause) => out.push(cause.trim().to_string()),
            None if out.is_empty() => out.push(t.to_string()),
            None => {
                if let Some(last) = out.last_mut() {
                    last.push('\n');
                    last.push_str(t);
                }
            }
        }
    }
    out.reverse();
    out
}

/// `a.b.FooException: message` → `a.b.FooException`.
fn exception_class(line: &str) -> Option<String> {
    let head = line.split(':').next()?.trim();
    let looks_like_class = !head.is_empty()
        && !head.contains(' ')
        && head.contains('.')
        && head
            .rsplit('.')
            .next()
            .is_some_and(|simple| simple.ends_with("Exception") || simple.ends_with("Error"));
    looks_like_class.then(|| head.to_string())
}

/// The exception and the message with what varies between occurrences of one failure replaced
/// by `#` — quoted values, and tokens that hold a digit (offsets, partitions, task ids,
/// addresses, request ids, timestamps), a path, a dotted name (hostnames) or a long hex id — so
/// that the same failure does not look new; then hashed (FNV-1a, 64 bits) to keep it short.
pub fn fingerprint(exception: Option<&str>, line: &str) -> String {
    let message = exception.and_then(|e| line.strip_prefix(e)).unwrap_or(line);
    let normal = normalise(&unquote(message));
    let mut hash: u64 = 0xcbf29ce484222325;
    for b in exception.unwrap_or("").bytes().chain([0]).chain(normal.trim().bytes()) {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x100000001b3);
    }
    let simple = exception.and_then(|e| e.rsplit('.').next()).unwrap_or("Failure");
    format!("{simple}-{hash:016x}")
}

/// `'...'` and `"..."` values as `'#'`: a quote opens only after a non-alphanumeric character,
/// so the apostrophe of "Couldn't" is not one.
fn unquote(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars().peekable();
    let mut previous = ' ';
    while let Some(c) = chars.next() {
        if (c == '\'' || c == '"') && !previous.is_alphanumeric() {
            let quoted: String = chars.clone().take_while(|&q| q != c).collect();
            if chars.clone().nth(quoted.chars().count()) == Some(c) {
                chars.nth(quoted.chars().count());
                out.push(c);
                out.push('#');
                out.push(c);
                previous = c;
                continue;
            }
        }
        out.push(c);
        previous = c;
    }
    out
}

fn normalise(message: &str) -> String {
    let mut normal = String::with_capacity(message.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        // Sentence punctuation after a token is not part of it.
        let core = token.trim_end_matches(['.', ':', ',']);
        let tail = &token[core.len()..];
        let varies = core.chars().any(|c| c.is_ascii_digit())
            || core.contains('/')
            || core.trim_matches('.').contains('.')
            || (core.len() >= 8 && core.chars().all(|c| c.is_ascii_hexdigit()));
        out.push_str(if varies { "#" } else { core });
        out.push_str(tail);
        token.clear();
    };
    for c in message.chars() {
        if c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':') {
            token.push(c);
        } else {
            flush(&mut token, &mut normal);
            normal.push(c);
        }
    }
    flush(&mut token, &mut normal);
    normal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(file: &str) -> String {
        let path = format!("{}/../../events/connect/traces/{file}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn each_sample_trace_maps_to_its_cause() {
        let cases = [
            ("data-exception.txt", Cause::Serialization),
            ("lambda-access-denied.txt", Cause::LambdaPermission),
            ("lambda-not-found.txt", Cause::LambdaNotFound),
            ("lambda-throttled.txt", Cause::LambdaThrottled),
            ("lambda-function-error.txt", Cause::LambdaFunctionError),
            // The stand-in connector's trace when the sink's table is gone: the function's own
            // message names ResourceNotFoundException, yet the function ran and failed.
            ("lambda-function-error-table-missing.txt", Cause::LambdaFunctionError),
            ("broker-timeout.txt", Cause::BrokerUnreachable),
            ("plugin-missing.txt", Cause::PluginMissing),
            ("license-expired.txt", Cause::License),
            ("file-not-found.txt", Cause::Unknown),
            // The consumer cannot be built while the task starts: the root names the brokers.
            ("broker-unreachable-on-start.txt", Cause::BrokerUnreachable),
            // Near misses: a needle in a stack frame's class name, not in any exception's
            // message, says nothing about the failure.
            ("near-miss-handler-class.txt", Cause::Unknown),
            ("near-miss-frame-word.txt", Cause::Unknown),
        ];
        for (file, cause) in cases {
            let root = root_cause(&trace(file));
            assert_eq!(root.cause, cause, "{file}: {}", root.line);
        }
    }

    #[test]
    fn messages_are_the_exceptions_lines_innermost_first_without_frames() {
        let t = "a.Outer: top\n\tat x.Y.m(Y.java:1)\nCaused by: b.Inner: first line\n at [Source: REDACTED; line: 1]\n\tat q.R.s(R.java:2)\n\t... 5 more";
        assert_eq!(
            messages(t),
            ["b.Inner: first line\nat [Source: REDACTED; line: 1]", "a.Outer: top"]
        );
    }

    #[test]
    fn the_root_line_is_the_last_caused_by_else_the_first_line() {
        let t = "org.apache.kafka.connect.errors.ConnectException: Exiting WorkerSinkTask due to unrecoverable exception.\n\tat x.y(Z.java:1)\nCaused by: a.B: outer\n\tat q\nCaused by: c.DException: the real one\n\t... 5 more";
        assert_eq!(root_line(t), "c.DException: the real one");
        assert_eq!(
            root_line("java.lang.IllegalStateException: boom\n\tat a.b"),
            "java.lang.IllegalStateException: boom"
        );
        assert_eq!(root_line(""), "");
        let root = root_cause(t);
        assert_eq!(root.exception.as_deref(), Some("c.DException"));
    }

    #[test]
    fn fingerprints_ignore_numbers_and_ids_but_not_the_failure() {
        let a = root_cause(
            "Caused by: org.apache.kafka.connect.errors.DataException: offset 1041 partition 0 failed for task seatool-sink-0 at 10.0.1.25:8083",
        );
        let b = root_cause(
            "Caused by: org.apache.kafka.connect.errors.DataException: offset 99817 partition 3 failed for task seatool-sink-2 at 10.0.7.9:8083",
        );
        let c = root_cause("Caused by: org.apache.kafka.connect.errors.DataException: schema mismatch");
        let d = root_cause(
            "Caused by: java.io.IOException: offset 1041 partition 0 failed for task seatool-sink-0 at 10.0.1.25:8083",
        );
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(a.fingerprint, c.fingerprint);
        assert_ne!(
            a.fingerprint, d.fingerprint,
            "another exception class is another failure"
        );
        assert!(a.fingerprint.starts_with("DataException-"), "{}", a.fingerprint);
        // Paths, hostnames, quoted values and hex ids vary between occurrences of one failure.
        let same = |x: &str, y: &str| {
            let f = |m: &str| root_cause(&format!("Caused by: java.io.IOException: {m}")).fingerprint;
            assert_eq!(f(x), f(y), "{x:?} and {y:?} are one failure");
        };
        same(
            "Couldn't find or create file '/tmp/gone/out.txt'",
            "Couldn't find or create file '/var/lib/sink/x.txt'",
        );
        same(
            "Connection to node kafka.prod.internal failed.",
            "Connection to node kafka.stage.internal failed.",
        );
        same("no such file /data/a/b", "no such file /data/c");
        same("request deadbeefcafe failed", "request feedfacebead failed");
        same("topic \"orders\" is unknown", "topic \"payments\" is unknown");
        let other = root_cause("Caused by: java.io.IOException: Connection refused").fingerprint;
        assert_ne!(
            other,
            root_cause("Caused by: java.io.IOException: Connection reset").fingerprint,
            "different words are different failures"
        );
    }

    #[test]
    fn only_transient_causes_are_restartable() {
        let restartable: Vec<&str> = Cause::ALL
            .into_iter()
            .filter(|c| c.is_restartable())
            .map(Cause::id)
            .collect();
        assert_eq!(
            restartable,
            [
                "lambda-throttled",
                "lambda-function-error",
                "broker-unreachable",
                "unknown"
            ]
        );
    }
}
