//! Typed configuration from environment variables, read through a lookup function so that tests
//! never touch the process environment.

use std::fmt;
use std::str::FromStr;

/// Every missing or invalid variable, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {}", .problems.join("; "))]
pub struct ConfigError {
    /// One line per variable.
    pub problems: Vec<String>,
}

/// Reads variables from a lookup, collecting problems instead of stopping at the first.
pub struct Env<F> {
    lookup: F,
    problems: Vec<String>,
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// Reads through `lookup` (`|k| std::env::var(k).ok()` in production).
    pub fn new(lookup: F) -> Self {
        Self {
            lookup,
            problems: Vec::new(),
        }
    }

    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// A variable that must be set and non-empty.
    pub fn required(&mut self, name: &str, what: &str) -> String {
        self.get(name).unwrap_or_else(|| {
            self.problems.push(format!("{name} is not set ({what})"));
            String::new()
        })
    }

    /// A variable with a default, parsed and checked against `valid` (described by `expected`).
    pub fn parsed<T>(&mut self, name: &str, default: T, expected: &str, valid: impl Fn(&T) -> bool) -> T
    where
        T: FromStr + Clone + fmt::Debug,
    {
        let Some(raw) = self.get(name) else { return default };
        match raw.parse::<T>() {
            Ok(v) if valid(&v) => v,
            _ => {
                self.problems.push(format!("{name} must be {expected}, got {raw:?}"));
                default
            }
        }
    }

    /// A variable that may be unset (then `T::default()`), and when set must be JSON of `T`.
    pub fn json<T: serde::de::DeserializeOwned + Default>(&mut self, name: &str, expected: &str) -> T {
        let Some(raw) = self.get(name) else {
            return T::default();
        };
        serde_json::from_str(&raw).unwrap_or_else(|e| {
            self.problems.push(format!("{name} must be {expected}: {e}"));
            T::default()
        })
    }

    /// A variable that may be unset.
    pub fn optional(&self, name: &str) -> Option<String> {
        self.get(name)
    }

    /// A variable that may be unset, and when set must look like an `http(s)` URL.
    pub fn optional_url(&mut self, name: &str, what: &str) -> Option<String> {
        let value = self.get(name)?;
        if !(value.starts_with("https://") || value.starts_with("http://")) {
            self.problems
                .push(format!("{name} must be an http(s) URL ({what}), got {value:?}"));
        }
        Some(value)
    }

    /// A variable that must be set and look like an `http(s)` URL.
    pub fn url(&mut self, name: &str, what: &str) -> String {
        let value = self.required(name, what);
        if !(value.is_empty() || value.starts_with("https://") || value.starts_with("http://")) {
            self.problems
                .push(format!("{name} must be an http(s) URL ({what}), got {value:?}"));
        }
        value
    }

    /// The collected problems, or `Ok` when there are none.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                problems: self.problems,
            })
        }
    }
}
