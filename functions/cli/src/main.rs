//! `connectorctl`: the operator's CLI, over the same core as the Lambda functions.
//!
//! Edge layer: `main` → `run()` → exit code. Today it has `classify`; the commands that reach
//! the cluster (status, check, restart, ensure...) come with the CLI issue.
//!
//! Exit codes: 0 done; 2 the input could not be read or was not recognised (one line on stderr).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "connectorctl",
    version,
    about = "Operate the Kafka Connect cluster and its DynamoDB sinks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Classify an event or a Kafka Connect body (ECS task state change, CloudWatch alarm state
    /// change, scheduled event, /status or ?expand body, sink batch): prints the findings as JSON.
    Classify {
        /// The JSON file to read (`-` for standard input).
        file: String,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("connectorctl: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Classify { file } => {
            let text = if file == "-" {
                std::io::read_to_string(std::io::stdin()).map_err(|e| format!("cannot read standard input: {e}"))?
            } else {
                std::fs::read_to_string(&file).map_err(|e| format!("cannot read {file}: {e}"))?
            };
            let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{file} is not JSON: {e}"))?;
            let out = connector_core::classify::classify(&doc).map_err(|e| format!("{file}: {e}"))?;
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            Ok(())
        }
    }
}
