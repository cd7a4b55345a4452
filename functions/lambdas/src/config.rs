//! Typed configuration from environment variables: the reader lives in the core
//! ([`connector_core::config`]) so that `connectorctl` parses a function's settings the same way.

pub use connector_core::config::{ConfigError, Env};
