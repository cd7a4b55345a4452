//! What the `connectorctl` test binaries share: running the built binary and reading what it
//! printed.

use std::path::Path;

use serde_json::Value;

/// What one run printed, and its exit code.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Standard output as JSON (the test fails, showing both streams, when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
}

/// Runs connectorctl with its contexts file at `config`, not the harness's `CONNECT_URL`, no
/// terminal, and variables set (`Some`) or removed (`None`).
pub async fn ctl_env(config: &Path, args: &[&str], vars: &[(&str, Option<&str>)]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_connectorctl"));
    command
        .args(args)
        .env("CONNECTORCTL_CONFIG", config)
        .env_remove("CONNECT_URL")
        .stdin(std::process::Stdio::null());
    for (k, v) in vars {
        match v {
            Some(v) => command.env(k, v),
            None => command.env_remove(k),
        };
    }
    let out = command.output().await.expect("run connectorctl");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
