//! What must never leave the process as it is, by rule and in one place: secret config values
//! (by their property's name), passwords in URLs (`scheme://user:password@host`) and in JAAS
//! lines (`password="..."`), and record contents that parser errors quote (`Unrecognized token
//! '...'`). Alert bodies and `connectorctl`'s views of configs and traces go through here; the
//! monitor still reads the whole trace to find its cause.

use std::sync::LazyLock;

use regex_lite::{Captures, Regex};

/// What a redacted value reads as.
pub const REDACTED: &str = "[redacted]";

/// Words in a property name that mark its value as secret.
const SECRET_WORDS: [&str; 10] = [
    "password",
    "passwd",
    "secret",
    "token",
    "credentials",
    "credential",
    "apikey",
    "authorization",
    // `sasl.jaas.config` holds a login module line with its password.
    "jaas",
    // `confluent.license`: the stack puts the license key in the connector config.
    "license",
];

/// Whether a config property's value must never be shown: its name has a secret word
/// (`ssl.key.password`, `aws.secret.access.key`, `sasl.jaas.config`), or `key` anywhere but
/// first (`aws.access.key.id`, `api.key`) — `key.converter` names a converter, not a key.
pub fn is_secret_property(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let words: Vec<&str> = lower.split(['.', '_', '-']).collect();
    words.iter().any(|w| SECRET_WORDS.contains(w)) || words.iter().skip(1).any(|w| *w == "key")
}

/// The password of a URL's user info: `scheme://user:` kept, up to the `@`.
static URL_PASSWORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)([a-z][a-z0-9+.\-]*://[^\s/:@]*:)[^\s/@]+@").expect("a valid pattern"));

/// `name=value`, `name: value`, `"name": "value"` and `name="value"` (JAAS): the name, what
/// joins it to the value, and the value (quoted, or up to a space, comma, semicolon or brace).
static ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"([A-Za-z][A-Za-z0-9_.\-]*)("?\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s,;}\]]+)"#).expect("a valid pattern")
});

/// Record contents that Jackson's parse errors quote.
static RECORD_FRAGMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(Unrecognized token ')[^']*(')|(Unexpected character \(')[^']*(')|(\((?:byte\[\]|String|char\[\])\)")[^"]*(")"#)
        .expect("a valid pattern")
});

/// `text` with every rule applied.
pub fn redact_text(text: &str) -> String {
    let text = URL_PASSWORD.replace_all(text, format!("${{1}}{REDACTED}@"));
    let text = ASSIGNMENT.replace_all(&text, |c: &Captures<'_>| {
        let value = &c[3];
        if !is_secret_property(&c[1]) || value == REDACTED {
            return c[0].to_string();
        }
        let quote = match value.chars().next() {
            Some(q @ ('"' | '\'')) => q.to_string(),
            _ => String::new(),
        };
        format!("{}{}{quote}{REDACTED}{quote}", &c[1], &c[2])
    });
    RECORD_FRAGMENT
        .replace_all(&text, |c: &Captures<'_>| {
            let (open, close) = [(1, 2), (3, 4), (5, 6)]
                .into_iter()
                .find_map(|(o, e)| Some((c.get(o)?.as_str(), c.get(e)?.as_str())))
                .unwrap_or_default();
            format!("{open}{REDACTED}{close}")
        })
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_looking_property_names_are_told_from_the_others() {
        let cases = [
            ("aws.secret.access.key", true),
            ("aws.access.key.id", true),
            ("ssl.key.password", true),
            ("sasl.jaas.config", true),
            ("sasl.jaas.config.password", true),
            ("api.key", true),
            ("CONNECT_TOKEN", true),
            ("confluent.license", true),
            ("aws.credentials.provider.class", true),
            ("key.converter", false),
            ("key.converter.schemas.enable", false),
            ("value.converter", false),
            ("aws.lambda.function.name", false),
            ("connection.url", false),
            ("topics", false),
        ];
        for (name, secret) in cases {
            assert_eq!(is_secret_property(name), secret, "{name}");
        }
    }

    #[test]
    fn each_rule_hides_the_secret_and_keeps_the_rest() {
        let cases = [
            (
                "connection.url=jdbc:postgresql://app:hunter2@db.internal:5432/seatool",
                "connection.url=jdbc:postgresql://app:[redacted]@db.internal:5432/seatool",
            ),
            (
                "Failed to connect to https://svc:s3cr%40t@broker-1:9096 (timeout)",
                "Failed to connect to https://svc:[redacted]@broker-1:9096 (timeout)",
            ),
            (
                r#"sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="svc" password="hunter2";"#,
                r#"sasl.jaas.config=[redacted] required username="svc" password="[redacted]";"#,
            ),
            (
                r#"{"aws.secret.access.key": "hunter2", "topics": "t"}"#,
                r#"{"aws.secret.access.key": "[redacted]", "topics": "t"}"#,
            ),
            (
                "ssl.key.password = hunter2, ssl.keystore.type = PKCS12",
                "ssl.key.password = [redacted], ssl.keystore.type = PKCS12",
            ),
            (
                "JsonParseException: Unrecognized token 'SSN-123-45-6789': was expecting (JSON String, Number, Array, Object or token 'null', 'true' or 'false')",
                "JsonParseException: Unrecognized token '[redacted]': was expecting (JSON String, Number, Array, Object or token 'null', 'true' or 'false')",
            ),
            (
                r#"Unexpected character ('x' (code 120)) at [Source: (byte[])"{x: 4111111111111111}"; line: 1, column: 3]"#,
                r#"Unexpected character ('[redacted]' (code 120)) at [Source: (byte[])"[redacted]"; line: 1, column: 3]"#,
            ),
        ];
        for (raw, shown) in cases {
            assert_eq!(redact_text(raw), shown, "{raw}");
        }
    }

    #[test]
    fn text_without_secrets_is_left_as_it_is() {
        for text in [
            "Caused by: org.apache.kafka.common.errors.TimeoutException: Timed out waiting for a node assignment. Call: describeTopics",
            "Task 0 of connector seatool-sink FAILED on 10.0.1.7:8083: lambda-throttled",
            "key.converter=org.apache.kafka.connect.storage.StringConverter",
            "Runbook: https://runbooks.example/connector/runbooks/task-failed.md",
        ] {
            assert_eq!(redact_text(text), text);
        }
    }
}
