//! `connectorctl verify`: the table against the topic, key by key, in the sink's own order and
//! through the sink's own mapping (`connector_core::sink::verify`), and `--repair`, which writes
//! the topic's newest record of each differing key through the sink's conditional write.
//!
//! Exit codes: 0 nothing lost (missing, regressed, resurrected, mismatched, lost; extra with
//! `--strict`), or everything repaired; 1 something is; 2 bad input, or a table or topic that
//! does not exist; 3 Kafka or AWS could not be reached.

use std::time::{Duration, Instant};

use connector_adapters::dynamodb::DynamoDbRecordStore;
use connector_adapters::kafka::KafkaBrokers;
use connector_adapters::monitor_state::DynamoDbMonitorStore;
use connector_adapters::now_millis;
use connector_adapters::sink_table::DynamoDbTableReader;
use connector_core::monitor::audit::{AuditEntry, AuditKind};
use connector_core::monitor::ports::MonitorStore;
use connector_core::monitor::time::iso8601;
use connector_core::sink::Table;
use connector_core::sink::plan::letter_coordinates;
use connector_core::sink::verify::{
    Class, Difference, ReadError, Repaired, Side, VerifyReport, VerifyRequest, repair, repair_json, verify,
    verify_window,
};
use serde_json::{Value, json};

use crate::Failure;
use connector_core::connect::ConnectApi;
use connector_core::monitor::judge::lag::reads_topic;

use crate::cluster::{connect, sdk, store};
use crate::context::Context;
use crate::output::table;

/// The topics the stack's connectors read by default (the seed's), when neither `--topic` nor
/// the context names one.
const DEFAULT_TOPICS: [(&str, &str); 2] = [
    ("seatool", "aws.ksqldb.seatool.agg.State_Plan"),
    ("appian", "aws.appian.cmcs.MCP_SPA_PCKG"),
];

/// What `connectorctl verify` was asked.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `seatool` or `appian`: whose mapping.
    pub sink: Option<String>,
    /// The DynamoDB table.
    pub table: Option<String>,
    /// The topic.
    pub topic: Option<String>,
    /// `--since`: an RFC 3339 time or a duration ago (`90m`, `2h`, `7d`).
    pub since: Option<String>,
    /// `--settle`: records younger than this are not judged yet (`0s`: every record).
    pub settle: Option<String>,
    /// Look up the keys the records name (batched reads) instead of scanning the table.
    pub lookup: bool,
    /// The sink's `SINK_TOPIC_EPOCH`.
    pub epoch: u32,
    /// Parallel scan segments.
    pub segments: u32,
    /// Strongly consistent scan.
    pub consistent: bool,
    /// Samples per class.
    pub samples: usize,
    /// `extra` is a loss.
    pub strict: bool,
    /// The sink dead-letter queue's URL: refused records not in it are `lost`.
    pub dlq: Option<String>,
    /// Write the differing keys' newest records.
    pub repair: bool,
    /// Show the repair's plan only.
    pub dry_run: bool,
    /// Do not ask before repairing.
    pub yes: bool,
    /// Tombstones a repair writes expire after this (the functions' setting).
    pub tombstone_ttl: Option<Duration>,
}

fn read_failure(e: ReadError) -> Failure {
    match e {
        ReadError::NotFound(what) => Failure::Input(what),
        e => Failure::Unreachable(connector_core::error_chain(&e)),
    }
}

/// Which sink's mapping, table and topic: the arguments, then the context, then the table's name.
fn resolve(ctx: &Context, options: &Options) -> Result<(Table, String, String), Failure> {
    let sink = match (&options.sink, &options.table) {
        (Some(sink), _) => sink.clone(),
        (None, Some(table)) if ctx.seatool_table.as_ref() == Some(table) => "seatool".into(),
        (None, Some(table)) if ctx.appian_table.as_ref() == Some(table) => "appian".into(),
        (None, Some(table)) => {
            let lower = table.to_ascii_lowercase();
            match (lower.contains("seatool"), lower.contains("appian")) {
                (true, false) => "seatool".into(),
                (false, true) => "appian".into(),
                _ => {
                    return Err(Failure::Input(format!(
                        "which sink's mapping does {table} hold? name it: connectorctl verify seatool|appian --table {table}"
                    )));
                }
            }
        }
        (None, None) => {
            return Err(Failure::Input(
                "verify needs a sink (seatool or appian) or --table".into(),
            ));
        }
    };
    let kind = crate::sink::table_kind(&sink)?;
    let (table, topic) = match kind {
        Table::Seatool => (&ctx.seatool_table, &ctx.seatool_topic),
        Table::Appian => (&ctx.appian_table, &ctx.appian_topic),
    };
    let table = options.table.clone().or_else(|| table.clone()).ok_or_else(|| {
        Failure::Input(format!(
            "verify {sink} needs --table (or --{sink}-table / {}_TABLE in the context)",
            sink.to_uppercase()
        ))
    })?;
    let default_topic = DEFAULT_TOPICS
        .iter()
        .find(|(s, _)| *s == sink)
        .map(|(_, t)| t.to_string());
    let topic = options
        .topic
        .clone()
        .or_else(|| topic.clone())
        .or(default_topic)
        .unwrap_or_default();
    Ok((kind, table, topic))
}

/// `--since`: `2026-12-07T10:00:00Z` (RFC 3339) or a duration ago, `90m`, `2h`, `7d`.
fn parse_since(text: &str, now: i64) -> Result<i64, Failure> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(at.timestamp_millis());
    }
    let (n, unit_ms) = crate::duration_parts(text).ok_or_else(|| {
        Failure::Input(format!(
            "--since {text:?}: give a time (2026-12-07T10:00:00Z) or a duration ago (90m, 2h, 7d)"
        ))
    })?;
    Ok(now - n.saturating_mul(unit_ms))
}

/// `connectorctl verify [SINK] --table T --topic P ...`.
pub async fn run(ctx: &Context, options: &Options, brokers: Option<KafkaBrokers>, json: bool) -> Result<(), Failure> {
    let started = Instant::now();
    let (kind, table_name, topic) = resolve(ctx, options)?;
    let Some(brokers) = brokers else {
        return Err(Failure::Input(
            "verify reads the topic: give --kafka-bootstrap (and --kafka-ca-file or --kafka-plaintext)".into(),
        ));
    };
    let now = now_millis();
    let since = options.since.as_deref().map(|s| parse_since(s, now)).transpose()?;
    let until = options
        .settle
        .as_deref()
        .map(|s| parse_since(s, now).map_err(|_| Failure::Input(format!("--settle {s:?}: give a duration (90s, 5m)"))))
        .transpose()?;
    check_topic_is_read(ctx, &topic).await?;
    let sdk = sdk(ctx).await;
    let letters = match &options.dlq {
        Some(url) => Some(peek_letters(&sdk, url).await?),
        None => None,
    };
    let request = VerifyRequest {
        table: kind,
        table_name: table_name.clone(),
        topic: topic.clone(),
        since,
        until,
        committed: Default::default(),
        epoch: options.epoch,
        segments: options.segments.max(1),
        samples: options.samples,
        strict: options.strict,
        keep_differences: options.repair,
    };
    let reader = DynamoDbTableReader::new(
        connector_adapters::dynamodb::Client::new(&sdk),
        &table_name,
        options.consistent,
    );
    let verified = if options.lookup {
        verify_window(&brokers, &reader, &request, letters.as_deref()).await
    } else {
        verify(&brokers, &reader, &request, letters.as_deref()).await
    };
    let (mut report, differences) = verified.map_err(read_failure)?;
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    if !options.repair {
        print_report(&report, since, json, None);
        return verdict(&report);
    }
    let plan: Vec<&Difference> = differences.iter().filter(|d| d.class.is_repairable()).collect();
    if plan.is_empty() || options.dry_run {
        let note = if plan.is_empty() {
            "repair: nothing to write".to_string()
        } else {
            format!("repair (dry run): would write {} key(s); nothing written", plan.len())
        };
        let repair = json!({"dryRun": options.dry_run, "plan": plan_json(&plan)});
        print_report(&report, since, json, Some((&repair, &note)));
        if !json {
            print_plan(&plan);
        }
        return verdict(&report);
    }
    if !json {
        print_report(&report, since, false, None);
        print_plan(&plan);
    }
    if !options.yes {
        confirm(&table_name, plan.len())?;
    }
    let store = DynamoDbRecordStore::new(connector_adapters::dynamodb::Client::new(&sdk), &table_name)
        .with_tombstone_ttl(options.tombstone_ttl);
    let plan: Vec<Difference> = plan.into_iter().cloned().collect();
    let done = repair(&brokers, &store, kind, options.epoch, &plan).await;
    let audited = audit(ctx, &table_name, &done).await;
    let summary = repair_json(&done);
    let failed = done.iter().filter(|(_, r)| matches!(r, Repaired::Failed(_))).count();
    let note = format!(
        "repair: {} written, {} skipped (something newer was stored meanwhile), {failed} failed{}",
        summary["written"],
        summary["skippedNewer"],
        match &audited {
            Ok(0) => String::new(),
            Ok(n) => format!("; {n} entries in the audit trail (connectorctl history {table_name})"),
            Err(why) => format!("; not audited: {why}"),
        }
    );
    if json {
        print_report(&report, since, true, Some((&summary, &note)));
    } else {
        print_repairs(&done);
        outln!("{note}");
    }
    // What a repair cannot write: losses that are not a key's newest record (lost; extra when strict).
    let lost: u64 = Class::ALL
        .iter()
        .filter(|c| c.is_loss(report.strict) && !c.is_repairable())
        .map(|c| report.count(*c))
        .sum();
    if failed > 0 || lost > 0 {
        return Err(Failure::Unhealthy(format!(
            "{failed} key(s) not repaired, {lost} loss(es) a repair cannot write (lost, or extra when strict)"
        )));
    }
    Ok(())
}

fn verdict(report: &VerifyReport) -> Result<(), Failure> {
    if report.has_loss() {
        return Err(Failure::Unhealthy(format!(
            "{} differs from {}: {}",
            report.table,
            report.topic,
            report.losses()
        )));
    }
    Ok(())
}

/// Where the context reaches Kafka Connect: some connector must read `topic` (named in its
/// `topics`, or possibly by its `topics.regex`), or the verify compares the wrong topic. A worker
/// that cannot be reached only earns a warning: the comparison does not need it.
async fn check_topic_is_read(ctx: &Context, topic: &str) -> Result<(), Failure> {
    if ctx.connect_url.is_none() && ctx.cluster.is_none() {
        return Ok(());
    }
    let listed = match connect(ctx).await {
        Ok(api) => api
            .list_expanded()
            .await
            .map_err(|e| (api.url().to_string(), e.to_string())),
        Err(e) => Err(("the context's worker".to_string(), format!("{e:?}"))),
    };
    let views = match listed {
        Ok(views) => views,
        Err((url, why)) => {
            eprintln!("connectorctl: warning: cannot check that a connector on {url} reads {topic}: {why}");
            return Ok(());
        }
    };
    let configs: Vec<_> = views.iter().filter_map(|v| v.info.as_ref()).collect();
    let reads = configs
        .iter()
        // A pattern this matcher cannot read may match: not a reason to refuse.
        .any(|i| reads_topic(&i.config, topic) != Some(false));
    if reads {
        return Ok(());
    }
    let names: Vec<&str> = configs.iter().map(|i| i.name.as_str()).collect();
    Err(Failure::Input(format!(
        "no connector reads {topic} (connectors: {}): check --topic, or verify without the context's Connect URL",
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    )))
}

/// The dead letters' coordinates, read without consuming them (each is visible again at once).
async fn peek_letters(
    sdk: &aws_config::SdkConfig,
    url: &str,
) -> Result<Vec<connector_core::sink::Coordinates>, Failure> {
    let q = crate::dlq::queue(sdk, url);
    let messages = q
        .receive(usize::MAX, crate::dlq::HOLD)
        .await
        .map_err(Failure::Unreachable)?;
    crate::dlq::release_all(&q, &messages).await;
    Ok(messages.iter().filter_map(|m| letter_coordinates(&m.body)).collect())
}

/// One audit entry per key written, when the context names the monitor's state.
async fn audit(ctx: &Context, table_name: &str, done: &[(Difference, Repaired)]) -> Result<usize, String> {
    let Some((store, cluster)) = store(ctx).await else {
        return Err("no --state-table and --cluster in the context".into());
    };
    let by = crate::audit::operator(ctx).await;
    let mut written = 0;
    for (difference, _) in done.iter().filter(|(_, r)| *r == Repaired::Written) {
        let at = difference.topic.as_ref().and_then(|s| s.coordinates.as_ref());
        let entry = AuditEntry {
            at: now_millis(),
            cluster: cluster.clone(),
            connector: table_name.to_string(),
            kind: AuditKind::Repair,
            by: by.clone(),
            why: format!("{} {}", difference.class.as_str(), difference.key),
            cause: None,
            fingerprint: None,
            attempt: None,
            budget: None,
            next_not_before: None,
            outcome: match at {
                Some(c) => format!("wrote {} from {}", difference.key, c.place()),
                None => format!("wrote {}", difference.key),
            },
        };
        record(&store, &cluster, &entry).await?;
        written += 1;
    }
    Ok(written)
}

async fn record(store: &DynamoDbMonitorStore, cluster: &str, entry: &AuditEntry) -> Result<(), String> {
    store
        .record_audit(cluster, entry)
        .await
        .map_err(|e| connector_core::error_chain(&e))
}

/// Asks for the table's name on the terminal; refuses without one.
fn confirm(table_name: &str, keys: usize) -> Result<(), Failure> {
    crate::inspect::confirm_by_typing(
        table_name,
        &format!("Type the table's name to write {keys} key(s) into it: "),
        format!(
            "verify --repair writes {keys} key(s) into {table_name}: confirm with --yes (or run it on a terminal), or look first with --dry-run"
        ),
        "not confirmed: nothing written",
    )
}

fn side(side: &Option<Side>) -> String {
    match side {
        None => "-".into(),
        Some(Side {
            coordinates: None,
            deleted,
        }) => format!("not the sink's{}", if *deleted { " (deleted)" } else { "" }),
        Some(Side {
            coordinates: Some(c),
            deleted,
        }) => format!(
            "{}@{} e{} {}{}",
            c.partition,
            c.offset,
            c.epoch,
            iso8601(c.timestamp),
            if *deleted { " tombstone" } else { "" }
        ),
    }
}

fn plan_json(plan: &[&Difference]) -> Value {
    plan.iter()
        .map(|d| json!({"key": d.key, "class": d.class, "topic": d.topic, "table": d.table}))
        .collect()
}

fn print_plan(plan: &[&Difference]) {
    if plan.is_empty() {
        return;
    }
    outln!(
        "\nThe repair writes the topic's newest record of {} key(s):",
        plan.len()
    );
    let rows = plan
        .iter()
        .map(|d| {
            vec![
                d.class.as_str().to_string(),
                d.key.clone(),
                side(&d.topic),
                side(&d.table),
            ]
        })
        .collect();
    out!(
        "{}",
        table(&["CLASS", "KEY", "TOPIC (partition@offset)", "TABLE"], rows)
    );
}

fn print_repairs(done: &[(Difference, Repaired)]) {
    let rows = done
        .iter()
        .map(|(d, r)| {
            let outcome = match r {
                Repaired::Written => "written".to_string(),
                Repaired::SkippedNewer => "skipped: newer stored".to_string(),
                Repaired::Failed(why) => format!("failed: {why}"),
            };
            vec![d.key.clone(), d.class.as_str().to_string(), outcome]
        })
        .collect();
    out!("{}", table(&["KEY", "CLASS", "REPAIR"], rows));
}

fn print_report(report: &VerifyReport, since: Option<i64>, json: bool, repair: Option<(&Value, &str)>) {
    if json {
        let mut doc = serde_json::to_value(report).unwrap_or_default();
        if let Some(since) = since {
            doc["since"] = json!(iso8601(since));
        }
        if let Some((repair, _)) = repair {
            doc["repair"] = repair.clone();
        }
        outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return;
    }
    let from = since.map_or("the earliest retained offset".to_string(), iso8601);
    outln!(
        "{} against {} (from {from}): {} records ({} too recent to judge), {} keys; {} items read ({} tombstones); {:.1} s",
        report.table,
        report.topic,
        report.records,
        report.pending,
        report.keys,
        report.items,
        report.tombstones,
        report.elapsed_ms as f64 / 1000.0
    );
    let rows = Class::ALL
        .iter()
        .map(|c| {
            let loss = if c.is_loss(report.strict) { "loss" } else { "" };
            vec![c.as_str().to_string(), report.count(*c).to_string(), loss.to_string()]
        })
        .collect();
    out!("{}", table(&["CLASS", "COUNT", ""], rows));
    for (class, samples) in &report.samples {
        outln!("\n{class} (up to {} shown):", samples.len());
        let rows = samples
            .iter()
            .map(|d| vec![d.key.clone(), side(&d.topic), side(&d.table)])
            .collect();
        out!("{}", table(&["KEY", "TOPIC (partition@offset)", "TABLE"], rows));
    }
    outln!(
        "\n{}",
        if report.has_loss() {
            "verdict: the table does not hold the newest record of every key"
        } else {
            "verdict: the table holds the newest record of every key"
        }
    );
    if let Some((_, note)) = repair {
        outln!("{note}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sink_follows_the_argument_then_the_context_then_the_table_name() {
        let ctx = Context {
            appian_table: Some("tbl-a".into()),
            ..Context::default()
        };
        let with = |sink: Option<&str>, table: Option<&str>| Options {
            sink: sink.map(String::from),
            table: table.map(String::from),
            ..Options::default()
        };
        let kind = |o: Options| resolve(&ctx, &o);
        assert_eq!(
            kind(with(None, Some("tbl-a"))).unwrap(),
            (Table::Appian, "tbl-a".into(), DEFAULT_TOPICS[1].1.into())
        );
        assert_eq!(
            kind(with(None, Some("stack-SeatoolTable-X"))).unwrap().0,
            Table::Seatool
        );
        assert_eq!(kind(with(Some("appian"), None)).unwrap().1, "tbl-a");
        for bad in [with(None, Some("items")), with(None, None), with(Some("seatool"), None)] {
            assert!(matches!(kind(bad), Err(Failure::Input(_))));
        }
    }

    #[test]
    fn since_is_a_time_or_a_duration_ago() {
        let now = 10 * 86_400_000;
        assert_eq!(parse_since("2h", now).unwrap(), now - 7_200_000);
        assert_eq!(parse_since("1970-01-02T00:00:00Z", now).unwrap(), 86_400_000);
        for bad in ["", "2", "yesterday", "2w"] {
            assert!(parse_since(bad, now).is_err(), "{bad}");
        }
    }
}
