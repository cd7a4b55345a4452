//! `connectorctl`: the operator's CLI, over the same core and adapters as the Lambda functions.
//!
//! Edge layer: `main` → `run()` → exit code. Human tables by default, `--json` for scripts.
//!
//! Exit codes: 0 done and healthy; 1 done, but something is unhealthy or the change did not take
//! (a task still FAILED); 2 bad usage, a missing setting, or input that could not be read;
//! 3 Kafka Connect or AWS could not be reached or refused.

#[macro_use]
mod output;
mod audit;
mod cluster;
mod context;
mod dlq;
mod inspect;
mod sink;
mod verify;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use context::{Context, Contexts};

#[derive(Parser)]
#[command(
    name = "connectorctl",
    version,
    about = "Operate the Kafka Connect cluster and its DynamoDB sinks",
    after_help = "Exit codes: 0 healthy/done, 1 unhealthy or not taken effect, 2 usage or bad input, 3 unreachable."
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Where the cluster is (over the current context) and how to print.
#[derive(Args, Clone, Default)]
pub struct Global {
    /// The context to use instead of the current one.
    #[arg(long, global = true, env = "CONNECTORCTL_CONTEXT")]
    pub context: Option<String>,
    /// Kafka Connect REST URL (else a RUNNING worker of the ECS cluster is used).
    #[arg(long, global = true, env = "CONNECT_URL")]
    pub connect_url: Option<String>,
    /// The REST user of workers with basic authentication.
    #[arg(long, global = true, env = "CONNECT_USERNAME")]
    pub connect_username: Option<String>,
    /// Its password (never saved in a context).
    #[arg(long, global = true, env = "CONNECT_PASSWORD", hide_env_values = true)]
    pub connect_password: Option<String>,
    /// The Secrets Manager secret of the workers' REST credentials (the stack's
    /// ConnectRestCredentials), used when no username and password are given.
    #[arg(long, global = true, env = "CONNECT_CREDENTIALS_SECRET")]
    pub connect_credentials_secret: Option<String>,
    /// ECS cluster of the workers; also the name of the monitor state and alerts.
    #[arg(long, global = true)]
    pub cluster: Option<String>,
    /// AWS region.
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// The monitor-state DynamoDB table.
    #[arg(long, global = true)]
    pub state_table: Option<String>,
    /// The Secrets Manager prefix of the connector configs.
    #[arg(long, global = true)]
    pub secret_prefix: Option<String>,
    /// The secret of the Confluent licence that `ensure` puts into each config.
    #[arg(long, global = true)]
    pub license_secret_arn: Option<String>,
    /// The SNS alerts topic ARN.
    #[arg(long, global = true)]
    pub alert_topic: Option<String>,
    /// Where the runbook pages are served (alert links).
    #[arg(long, global = true)]
    pub runbook_base_url: Option<String>,
    /// The deployed testConnectors function: `check` uses its settings (budget, mutes,
    /// reminders) instead of the defaults.
    #[arg(long, global = true)]
    pub monitor_function: Option<String>,
    /// The AWS profile whose credentials and region the AWS calls use.
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// The Kafka brokers (`host:port,…`), for the lag in `describe`.
    #[arg(long, global = true)]
    pub kafka_bootstrap: Option<String>,
    /// A PEM file of CAs the brokers' TLS certificates chain to, besides the system's.
    #[arg(long, global = true)]
    pub kafka_ca_file: Option<String>,
    /// The brokers speak plaintext, not TLS.
    #[arg(long, global = true)]
    pub kafka_plaintext: bool,
    /// The seatool sink's DynamoDB table (for `verify`).
    #[arg(long, global = true, env = "SEATOOL_TABLE")]
    pub seatool_table: Option<String>,
    /// The topic the seatool connector reads.
    #[arg(long, global = true, env = "SEATOOL_TOPIC")]
    pub seatool_topic: Option<String>,
    /// The appian sink's DynamoDB table (for `verify`).
    #[arg(long, global = true, env = "APPIAN_TABLE")]
    pub appian_table: Option<String>,
    /// The topic the appian connector reads.
    #[arg(long, global = true, env = "APPIAN_TOPIC")]
    pub appian_topic: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

impl Global {
    fn as_context(&self) -> Context {
        Context {
            connect_url: self.connect_url.clone(),
            connect_username: self.connect_username.clone(),
            connect_password: self.connect_password.clone(),
            connect_credentials_secret: self.connect_credentials_secret.clone(),
            cluster: self.cluster.clone(),
            region: self.region.clone(),
            connect_port: None,
            state_table: self.state_table.clone(),
            secret_prefix: self.secret_prefix.clone(),
            license_secret_arn: self.license_secret_arn.clone(),
            alert_topic_arn: self.alert_topic.clone(),
            runbook_base_url: self.runbook_base_url.clone(),
            monitor_function: self.monitor_function.clone(),
            profile: self.profile.clone(),
            kafka_bootstrap: self.kafka_bootstrap.clone(),
            kafka_ca_file: self.kafka_ca_file.clone(),
            kafka_plaintext: self.kafka_plaintext.then_some(true),
            seatool_table: self.seatool_table.clone(),
            seatool_topic: self.seatool_topic.clone(),
            appian_table: self.appian_table.clone(),
            appian_topic: self.appian_topic.clone(),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Every connector and task: state, worker, the cause of any failure, and (with a state
    /// table) open incidents, restart counts and mutes.
    Status,
    /// One connector whole: state, worker, tasks with their cause and trace, config (secrets
    /// redacted), topics, committed offsets or lag, the monitor's restarts and open incidents.
    Describe { connector: String },
    /// The worker's Kafka Connect version and Kafka cluster.
    Info,
    /// The connector classes the worker can run (the first check for plugin-missing).
    Plugins,
    /// A sink connector's committed offsets; `reset` or `set` them (a STOPPED connector, 3.6+)
    /// to replay or to skip a poison record.
    #[command(args_conflicts_with_subcommands = true)]
    Offsets {
        connector: Option<String>,
        #[command(subcommand)]
        change: Option<OffsetsCommand>,
    },
    /// Stop a connector (3.5+: its tasks shut down, config and offsets kept) and wait for STOPPED.
    Stop { connector: String },
    /// Print a shell completion script (e.g. `connectorctl completion bash > /etc/bash_completion.d/connectorctl`).
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// One run of the testConnectors logic, printing its report.
    Check {
        /// Judge only: no restart, no recreation, no state written, no alert sent.
        #[arg(long)]
        dry_run: bool,
    },
    /// Restart a connector and its tasks (or one task, or only the failed ones), then wait for
    /// them to be RUNNING.
    Restart {
        connector: String,
        /// Only this task.
        #[arg(long, conflicts_with = "failed_only")]
        task: Option<i32>,
        /// Only the FAILED connector instance and tasks.
        #[arg(long)]
        failed_only: bool,
        /// Do not wait for RUNNING.
        #[arg(long)]
        no_wait: bool,
    },
    /// Create or update connectors from their secrets, showing the change first.
    Ensure {
        /// Only these connectors (default: every secret under the prefix).
        connectors: Vec<String>,
        /// Show what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Create missing connectors STOPPED and leave them so (a migration sets their offsets
        /// first, then `resume`s them); existing ones keep their state.
        #[arg(long)]
        stopped: bool,
    },
    /// Delete a connector (its secret stays: the monitor would recreate it; mute it first).
    Delete { connector: String },
    /// Pause a connector and wait for PAUSED.
    Pause { connector: String },
    /// Resume a connector and wait for RUNNING.
    Resume { connector: String },
    /// Classify an event or a Kafka Connect body (ECS task state change, CloudWatch alarm state
    /// change, scheduled event, /status or ?expand body, sink batch): prints the findings as JSON.
    Classify {
        /// The JSON file to read (`-` for standard input).
        file: String,
    },
    /// The sink functions, offline.
    #[command(subcommand)]
    Sink(SinkCommand),
    /// The sink's dead letters: list, show, and replay them through the sink after a fix.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Silence a connector's alerts and restarts for a while (it is still reported).
    Mute {
        connector: String,
        /// How long: 90s, 30m, 2h, 1d.
        #[arg(long = "for", value_name = "DURATION")]
        duration: String,
    },
    /// End a mute.
    Unmute { connector: String },
    /// Open incidents, with how long they have been open.
    Incidents,
    /// The monitor's audit trail: every restart, recreate and drift correction it made and every
    /// mute, delete and give-up it honoured, newest first (kept 30 days).
    History {
        /// Only this connector's.
        connector: Option<String>,
        /// At most this many entries.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Check that a sink table holds exactly the newest record of every key of its topic (read
    /// whole, in the sink's order, through the sink's mapping), name every difference by class,
    /// and with --repair write the topic's newest record of each differing key through the sink's
    /// conditional write. Exit 1 when something is missing, regressed, resurrected, mismatched
    /// or lost.
    Verify(VerifyArgs),
    /// Named places a cluster lives (like kcctl's contexts).
    #[command(subcommand)]
    Context(ContextCommand),
    /// Run the local demo of the whole loop (scripts/demo of this checkout).
    Demo,
}

#[derive(Args)]
struct VerifyArgs {
    /// Whose mapping: seatool or appian (else from --table: the context's, or its name).
    #[arg(value_parser = ["seatool", "appian"])]
    sink: Option<String>,
    /// The DynamoDB table (else the context's --seatool-table / --appian-table).
    #[arg(long)]
    table: Option<String>,
    /// The topic (else the context's, else the stack's default for the sink).
    #[arg(long)]
    topic: Option<String>,
    /// Read from this time (2026-12-07T10:00:00Z) or this long ago (90m, 2h, 7d) instead of the
    /// earliest retained offset.
    #[arg(long)]
    since: Option<String>,
    /// Do not judge records younger than this (90s, 5m): on a running sink, what it has not
    /// written yet. Default: judge every record (a drained sink).
    #[arg(long)]
    settle: Option<String>,
    /// Look up only the keys the records name (batched reads) instead of scanning the table:
    /// for a window (--since) of a large table. No extra or foreign then.
    #[arg(long)]
    lookup: bool,
    /// The sink functions' SINK_TOPIC_EPOCH.
    #[arg(long, env = "SINK_TOPIC_EPOCH", default_value_t = 0)]
    epoch: u32,
    /// Parallel scan segments: for a large table on DynamoDB (moto answers a segment with its
    /// first page only).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    segments: u32,
    /// Strongly consistent reads (twice the read capacity).
    #[arg(long)]
    consistent: bool,
    /// Keys shown per class.
    #[arg(long, default_value_t = 10)]
    samples: usize,
    /// Count `extra` (a live item no retained record names) as a loss.
    #[arg(long)]
    strict: bool,
    /// The sink dead-letter queue URL: each refused record is looked for there (not consumed);
    /// one that is not there is `lost`.
    #[arg(long, value_name = "QUEUE_URL")]
    dlq: Option<String>,
    /// Write the topic's newest record of each missing, regressed, resurrected or mismatched key
    /// (never over a newer one), after showing the plan and asking.
    #[arg(long)]
    repair: bool,
    /// With --repair: show the plan, write nothing.
    #[arg(long, requires = "repair")]
    dry_run: bool,
    /// With --repair: do not ask.
    #[arg(long, requires = "repair")]
    yes: bool,
    /// Days a tombstone the repair writes is kept, as the function's setting (0: forever).
    #[arg(long, env = "SINK_TOMBSTONE_TTL_DAYS", default_value_t = 35)]
    tombstone_ttl_days: u64,
}

#[derive(Subcommand)]
enum OffsetsCommand {
    /// Forget the committed offsets: the connector reads again from `auto.offset.reset`
    /// (earliest for a sink: a replay of what the topics keep).
    Reset {
        connector: String,
        #[command(flatten)]
        confirm: Confirm,
    },
    /// Move partitions to offsets (`--to orders:0=42`): past a poison record, or back to replay;
    /// or to where another consumer group is (`--from-group connect-<old connector>`: a
    /// migration from another Connect cluster, read from the brokers).
    Set {
        connector: String,
        /// `topic:partition=offset`, once per partition.
        #[arg(long = "to", required_unless_present = "from_group", conflicts_with = "from_group")]
        to: Vec<String>,
        /// Every offset this consumer group committed (needs --kafka-bootstrap).
        #[arg(long)]
        from_group: Option<String>,
        #[command(flatten)]
        confirm: Confirm,
    },
}

/// How a change of offsets is confirmed.
#[derive(Args, Clone, Copy)]
struct Confirm {
    /// Show the change; make none.
    #[arg(long)]
    dry_run: bool,
    /// Do not ask for the connector's name.
    #[arg(long)]
    yes: bool,
}

#[derive(Subcommand)]
enum SinkCommand {
    /// Decode a batch and show the items it would write, without writing.
    DryRun {
        file: String,
        /// Which table's mapping.
        #[arg(long, value_parser = ["seatool", "appian"])]
        table: String,
    },
}

/// The dead-letter queue, as the sink functions' environment names it.
#[derive(Args, Clone)]
struct QueueArg {
    /// The sink dead-letter queue URL (the stack's SinkDeadLetterQueue).
    #[arg(long = "queue", env = "DEAD_LETTER_QUEUE_URL")]
    url: String,
}

#[derive(Subcommand)]
enum DlqCommand {
    /// Every dead letter: its record (topic-partition@offset), table and reason. Leaves them.
    List {
        #[command(flatten)]
        queue: QueueArg,
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// One dead letter whole, key and value decoded.
    Show {
        /// The letter, as `list` names it: topic-partition@offset.
        letter: String,
        #[command(flatten)]
        queue: QueueArg,
    },
    /// Put the letters of one table through the sink again, in Kafka order and with the same
    /// conditional writes (a replay never regresses a newer record); each letter is deleted once
    /// its record is stored or found older than what is stored, the rest stay in the queue.
    Replay {
        #[command(flatten)]
        queue: QueueArg,
        /// Which table's mapping (and letters).
        #[arg(long, value_parser = ["seatool", "appian"])]
        table: String,
        /// The DynamoDB table to write (the function's TABLE_NAME).
        #[arg(long, env = "TABLE_NAME")]
        table_name: String,
        /// Days a tombstone the replay writes is kept, as the function's setting (0: forever).
        #[arg(long, env = "SINK_TOMBSTONE_TTL_DAYS", default_value_t = 35)]
        tombstone_ttl_days: u64,
    },
}

#[derive(Subcommand)]
enum ContextCommand {
    /// Create or update a context from the global flags (--connect-url, --cluster, ...).
    Set {
        name: String,
        /// Make it the current context.
        #[arg(long = "use")]
        make_current: bool,
    },
    /// Create or update a context from a deployed stack's outputs (its cluster, tables,
    /// secrets, topic, brokers); the global flags (--profile, --region, ...) are kept in it.
    FromStack {
        name: String,
        /// The CloudFormation stack (`sam deploy --stack-name`).
        #[arg(long)]
        stack: String,
        /// Make it the current context.
        #[arg(long = "use")]
        make_current: bool,
    },
    /// Make a context the current one.
    Use { name: String },
    /// The contexts, the current one marked.
    List,
    /// Remove a context (the current one too: then none is current).
    Remove { name: String },
}

/// Why a command did not succeed, and so the exit code.
#[derive(Debug)]
pub enum Failure {
    /// 1: the command ran, the cluster is not healthy or the change did not take.
    Unhealthy(String),
    /// 2: bad input or a missing setting.
    Input(String),
    /// 3: Kafka Connect or AWS could not be reached or refused.
    Unreachable(String),
}

impl Failure {
    pub fn config(message: impl Into<String>) -> Self {
        Failure::Input(message.into())
    }

    fn code(&self) -> u8 {
        match self {
            Failure::Unhealthy(_) => 1,
            Failure::Input(_) => 2,
            Failure::Unreachable(_) => 3,
        }
    }

    fn message(&self) -> &str {
        match self {
            Failure::Unhealthy(m) | Failure::Input(m) | Failure::Unreachable(m) => m,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Classify { file } => sink::classify(&file),
        Command::Sink(SinkCommand::DryRun { file, table }) => sink::dry_run(&file, &table, cli.global.json),
        Command::Context(cmd) => context_command(cmd, &cli.global),
        Command::Demo => demo(),
        Command::Completion { shell } => {
            use clap::CommandFactory;
            // Into memory first: clap_complete panics on a write error (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "connectorctl", &mut script);
            out!("{}", String::from_utf8_lossy(&script));
            Ok(())
        }
        other => match tokio::runtime::Runtime::new() {
            Ok(rt) => rt.block_on(cluster_command(other, &cli.global)),
            Err(e) => Err(Failure::Unreachable(format!("cannot start the async runtime: {e}"))),
        },
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !failure.message().is_empty() {
                eprintln!("connectorctl: {}", failure.message());
            }
            ExitCode::from(failure.code())
        }
    }
}

async fn cluster_command(command: Command, global: &Global) -> Result<(), Failure> {
    let ctx = Contexts::load()?
        .resolve(global.context.as_deref())?
        .overlay(global.as_context());
    let json = global.json;
    match command {
        Command::Status => cluster::status(&ctx, json).await,
        Command::Describe { connector } => inspect::describe(&ctx, &connector, json).await,
        Command::Info => inspect::info(&ctx, json).await,
        Command::Plugins => inspect::plugins(&ctx, json).await,
        Command::Stop { connector } => inspect::stop(&ctx, &connector, json).await,
        Command::Offsets { connector, change } => match (connector, change) {
            (Some(connector), None) => inspect::offsets(&ctx, &connector, json).await,
            (None, Some(OffsetsCommand::Reset { connector, confirm })) => {
                inspect::change_offsets(
                    &ctx,
                    &connector,
                    inspect::OffsetsChange::Reset,
                    confirm.dry_run,
                    confirm.yes,
                    json,
                )
                .await
            }
            (
                None,
                Some(OffsetsCommand::Set {
                    connector,
                    to,
                    from_group,
                    confirm,
                }),
            ) => {
                let to = match from_group {
                    Some(group) => inspect::group_positions(&ctx, &group).await?,
                    None => to,
                };
                inspect::change_offsets(
                    &ctx,
                    &connector,
                    inspect::OffsetsChange::Set(to),
                    confirm.dry_run,
                    confirm.yes,
                    json,
                )
                .await
            }
            _ => Err(Failure::Input(
                "offsets CONNECTOR, offsets reset CONNECTOR or offsets set CONNECTOR --to topic:partition=offset"
                    .into(),
            )),
        },
        Command::Check { dry_run } => cluster::check(&ctx, dry_run, json).await,
        Command::Restart {
            connector,
            task,
            failed_only,
            no_wait,
        } => cluster::restart(&ctx, &connector, task, failed_only, !no_wait, json).await,
        Command::Ensure {
            connectors,
            dry_run,
            stopped,
        } => cluster::ensure(&ctx, &connectors, dry_run, stopped, json).await,
        Command::Delete { connector } => cluster::delete(&ctx, &connector, json).await,
        Command::Pause { connector } => cluster::pause_resume(&ctx, &connector, true, json).await,
        Command::Resume { connector } => cluster::pause_resume(&ctx, &connector, false, json).await,
        Command::Mute { connector, duration } => {
            let millis = parse_duration(&duration)?;
            cluster::mute(&ctx, &connector, Some(millis), json).await
        }
        Command::Unmute { connector } => cluster::mute(&ctx, &connector, None, json).await,
        Command::Incidents => cluster::incidents(&ctx, json).await,
        Command::History { connector, limit } => cluster::history(&ctx, connector.as_deref(), limit, json).await,
        Command::Dlq(DlqCommand::List { queue, limit }) => dlq::list(&ctx, &queue.url, limit, json).await,
        Command::Dlq(DlqCommand::Show { letter, queue }) => dlq::show(&ctx, &queue.url, &letter).await,
        Command::Dlq(DlqCommand::Replay {
            queue,
            table,
            table_name,
            tombstone_ttl_days,
        }) => {
            let ttl = (tombstone_ttl_days > 0).then(|| std::time::Duration::from_secs(tombstone_ttl_days * 86_400));
            dlq::replay(&ctx, &queue.url, &table_name, &table, ttl, json).await
        }
        Command::Verify(args) => {
            let options = verify::Options {
                sink: args.sink,
                table: args.table,
                topic: args.topic,
                since: args.since,
                settle: args.settle,
                lookup: args.lookup,
                epoch: args.epoch,
                segments: args.segments,
                consistent: args.consistent,
                samples: args.samples,
                strict: args.strict,
                dlq: args.dlq,
                repair: args.repair,
                dry_run: args.dry_run,
                yes: args.yes,
                tombstone_ttl: (args.tombstone_ttl_days > 0)
                    .then(|| std::time::Duration::from_secs(args.tombstone_ttl_days * 86_400)),
            };
            verify::run(&ctx, &options, inspect::brokers(&ctx)?, json).await
        }
        Command::Classify { .. }
        | Command::Sink(_)
        | Command::Context(_)
        | Command::Demo
        | Command::Completion { .. } => {
            unreachable!("handled without the runtime")
        }
    }
}

fn context_command(cmd: ContextCommand, global: &Global) -> Result<(), Failure> {
    let mut all = Contexts::load()?;
    match cmd {
        ContextCommand::Set { name, make_current } => {
            let before = all.contexts.remove(&name).unwrap_or_default();
            all.contexts.insert(name.clone(), before.overlay(global.as_context()));
            if make_current || all.current.is_none() {
                all.current = Some(name.clone());
            }
            let path = all.save()?;
            outln!("context {name} saved in {}", path.display());
        }
        ContextCommand::FromStack {
            name,
            stack,
            make_current,
        } => {
            let flags = global.as_context();
            let outputs = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt.block_on(cluster::stack_outputs(&flags, &stack))?,
                Err(e) => return Err(Failure::Unreachable(format!("cannot start the async runtime: {e}"))),
            };
            let before = all.contexts.remove(&name).unwrap_or_default();
            let ctx = before.overlay(Context::from_outputs(&stack, &outputs)?).overlay(flags);
            all.contexts.insert(name.clone(), ctx);
            if make_current || all.current.is_none() {
                all.current = Some(name.clone());
            }
            let path = all.save()?;
            outln!(
                "context {name} saved in {} from the outputs of stack {stack}",
                path.display()
            );
        }
        ContextCommand::Use { name } => {
            if !all.contexts.contains_key(&name) {
                return Err(Failure::config(format!(
                    "no context {name:?} (connectorctl context list)"
                )));
            }
            all.current = Some(name.clone());
            all.save()?;
            outln!("using context {name}");
        }
        ContextCommand::Remove { name } => {
            if all.contexts.remove(&name).is_none() {
                return Err(Failure::config(format!(
                    "no context {name:?} (connectorctl context list)"
                )));
            }
            if all.current.as_deref() == Some(name.as_str()) {
                all.current = None;
            }
            all.save()?;
            outln!("context {name} removed");
        }
        ContextCommand::List => {
            if global.json {
                outln!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
            } else {
                let rows = all
                    .contexts
                    .iter()
                    .map(|(name, c)| {
                        let mark = if all.current.as_deref() == Some(name) { "*" } else { "" };
                        vec![
                            mark.to_string(),
                            name.clone(),
                            c.connect_url.clone().unwrap_or_default(),
                            c.cluster.clone().unwrap_or_default(),
                            c.region.clone().unwrap_or_default(),
                            c.state_table.clone().unwrap_or_default(),
                            c.profile.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                out!(
                    "{}",
                    output::table(
                        &["", "NAME", "CONNECT URL", "CLUSTER", "REGION", "STATE TABLE", "PROFILE"],
                        rows
                    )
                );
            }
        }
    }
    Ok(())
}

/// `90s`, `30m`, `2h`, `1d` → (the number, the unit in milliseconds); `None` for anything else.
pub(crate) fn duration_parts(text: &str) -> Option<(i64, i64)> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: i64 = number.parse().ok()?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    Some((n, unit_ms))
}

/// A mute's length: `90s`, `30m`, `2h`, `1d` → milliseconds, from 1 s to 30 days.
fn parse_duration(text: &str) -> Result<i64, Failure> {
    let (n, unit_ms) = duration_parts(text)
        .ok_or_else(|| Failure::Input(format!("{text:?} is not a duration like 90s, 30m, 2h or 1d")))?;
    if n == 0 || n > 30 * 86_400_000 / unit_ms {
        return Err(Failure::Input(format!("{text:?}: a mute lasts from 1s to 30d")));
    }
    Ok(n * unit_ms)
}

/// Runs scripts/demo of the checkout this binary was built from.
fn demo() -> Result<(), Failure> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/demo");
    if !script.exists() {
        return Err(Failure::config(format!(
            "the demo runs from the source checkout; {} is not there",
            script.display()
        )));
    }
    let status = std::process::Command::new(&script)
        .status()
        .map_err(|e| Failure::Unreachable(format!("cannot run {}: {e}", script.display())))?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure::Unhealthy(format!("the demo ended with {status}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_their_unit_and_nonsense_is_refused() {
        assert_eq!(parse_duration("90s").unwrap(), 90_000);
        assert_eq!(parse_duration("2h").unwrap(), 7_200_000);
        assert_eq!(parse_duration("1d").unwrap(), 86_400_000);
        for bad in ["", "2", "h", "2w", "0m", "31d", "-1h", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
