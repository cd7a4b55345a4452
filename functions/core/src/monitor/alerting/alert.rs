//! The alert lifecycle: one message when an incident opens, a reminder at a set interval while
//! it stays open, a resolved notice with its duration when it heals; and the message format of
//! DESIGN.md "Alerts".

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::monitor::judge::finding::{Category, Finding, Severity};
use crate::monitor::judge::state::Evaluation;
use crate::monitor::time::{human_duration, iso8601};

/// An open incident, kept between runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// The dedup key (category and subject).
    pub key: String,
    /// The category id.
    pub category: String,
    /// The severity name.
    pub severity: String,
    /// The connector, when it is about one.
    pub connector: Option<String>,
    /// The task, when it is about one.
    pub task: Option<i32>,
    /// Another subject (an ECS task), when it is about one.
    #[serde(default)]
    pub resource: Option<String>,
    /// One sentence, from the finding that opened it.
    pub summary: String,
    /// When it opened (ms since the epoch).
    pub opened_at: i64,
    /// When someone was last told (ms since the epoch).
    pub last_notified_at: i64,
    /// The connectors a cluster incident of one cause is about (as it opened).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// Not alerted: the monitor's own incident with this key had already paged for the same
    /// connector (a `connector-unhealthy` alarm after the monitor's `task-failed`); it resolves
    /// silently too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covered_by: Option<String>,
    /// An ECS stop incident whose service has a task RUNNING again since then (ms since the
    /// epoch): resolved once it stays so long enough (the `events::ecs` module decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovering_since: Option<i64>,
    /// How many tasks an ECS stop incident has seen stop (0: not one).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stops: u32,
    /// Claimed, and its page not known to be sent: the run was cut between the claim and the
    /// publish. A later run sends it ([`UNSENT_RETRY_AFTER_MS`] on), or resolves it silently.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unsent: bool,
}

impl Incident {
    /// The incident as claimed before its page is published: a run cut before the publish
    /// leaves it for a later run to send.
    pub fn unsent(&self) -> Self {
        Self {
            unsent: true,
            ..self.clone()
        }
    }

    /// The incident once its page is published.
    pub fn sent(&self) -> Self {
        Self {
            unsent: false,
            ..self.clone()
        }
    }
}

/// How long after its claim an unsent page is taken for orphaned: longer than a run can last
/// (the function's timeout is 60 s), so a run still under way is never paged over.
pub const UNSENT_RETRY_AFTER_MS: i64 = 120_000;

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Which notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NoticeKind {
    /// A new incident.
    Open,
    /// Still open after the reminder interval.
    Reminder,
    /// Healed.
    Resolved,
    /// Still open, and now more severe than it was alerted as (an alarm's missing data, then
    /// the alarm itself): alerted again at the new severity, as `open`, since that is what
    /// subscribers page on.
    Escalated {
        /// The severity it was alerted as.
        from: Severity,
    },
}

impl NoticeKind {
    /// The `state` message attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Open => "open",
            NoticeKind::Reminder => "reminder",
            NoticeKind::Resolved => "resolved",
            NoticeKind::Escalated { .. } => "open",
        }
    }
}

/// A message to send, and the incident as it is after sending it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Open, reminder or resolved.
    pub kind: NoticeKind,
    /// The incident (for open and reminder, with `last_notified_at` = now).
    pub incident: Incident,
    /// The finding behind it (none for resolved).
    pub finding: Option<Finding>,
}

/// The notice that opens an incident for `finding` now (for event-driven alerts: ECS, alarms).
pub fn opening(cluster: &str, finding: &Finding, now: i64) -> Notice {
    Notice {
        kind: NoticeKind::Open,
        incident: Incident {
            key: finding.incident_key(cluster),
            category: finding.category.id().into(),
            severity: finding.severity.as_str().into(),
            connector: finding.connector.clone(),
            task: finding.incident_task(),
            resource: finding.resource.clone(),
            summary: finding.summary.clone(),
            opened_at: now,
            last_notified_at: now,
            members: finding.members.clone(),
            covered_by: None,
            recovering_since: None,
            stops: 0,
            unsent: false,
        },
        finding: Some(finding.clone()),
    }
}

/// The notice for an open incident that `finding` makes more severe than it was alerted as.
pub fn escalation(incident: &Incident, finding: &Finding, now: i64) -> Option<Notice> {
    let from = Severity::from_name(&incident.severity)?;
    (finding.severity > from).then(|| Notice {
        kind: NoticeKind::Escalated { from },
        incident: Incident {
            severity: finding.severity.as_str().into(),
            summary: finding.summary.clone(),
            last_notified_at: now,
            ..incident.clone()
        },
        finding: Some(finding.clone()),
    })
}

/// Which open incidents this run can resolve: a run that could not judge the connectors (worker
/// unreachable, not ready, rebalancing) must not resolve their incidents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolveScope {
    /// Everything was judged.
    All,
    /// Only worker-level incidents (the worker answered, its connectors were not judged).
    WorkerOnly,
    /// Nothing was judged.
    Nothing,
}

/// The notices a run owes, given the incidents open before it and what it found.
pub fn plan_notices(
    cluster: &str,
    open: &BTreeMap<String, Incident>,
    findings: &[Finding],
    scope: ResolveScope,
    reminder_every_ms: i64,
    now: i64,
) -> Vec<Notice> {
    let mut notices = Vec::new();
    let mut present = BTreeSet::new();
    let alertable: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.severity >= crate::monitor::judge::finding::Severity::Warning)
        .collect();
    for f in &alertable {
        let key = f.incident_key(cluster);
        // Muted or alerted as part of a group: its incident, if open, is neither reminded nor
        // resolved while the finding lasts.
        if !present.insert(key.clone()) || f.muted || f.grouped.is_some() {
            continue;
        }
        // Several findings of one incident (a connector's failed tasks): one notice naming all.
        let same: Vec<&&Finding> = alertable
            .iter()
            .filter(|o| !o.muted && o.grouped.is_none() && o.incident_key(cluster) == key)
            .collect();
        let merged;
        let f: &Finding = if same.len() > 1 {
            merged = Finding {
                summary: same.iter().map(|o| o.summary.as_str()).collect::<Vec<_>>().join("\n"),
                ..(**f).clone()
            };
            &merged
        } else {
            f
        };
        match open.get(&key) {
            None => notices.push(opening(cluster, f, now)),
            // Claimed by a run that was cut before its page went out: sent now, as it opened.
            Some(incident) if incident.unsent && now - incident.last_notified_at >= UNSENT_RETRY_AFTER_MS => notices
                .push(Notice {
                    kind: NoticeKind::Open,
                    incident: Incident {
                        last_notified_at: now,
                        ..incident.clone()
                    },
                    finding: Some(f.clone()),
                }),
            Some(incident) if let Some(notice) = escalation(incident, f, now) => notices.push(notice),
            // Paused or stopped on purpose: told once, never reminded.
            Some(incident)
                if now - incident.last_notified_at >= reminder_every_ms
                    && f.category != crate::monitor::judge::finding::Category::ConnectorPaused =>
            {
                notices.push(Notice {
                    kind: NoticeKind::Reminder,
                    incident: Incident {
                        last_notified_at: now,
                        ..incident.clone()
                    },
                    finding: Some(f.clone()),
                })
            }
            Some(_) => {}
        }
    }
    for (key, incident) in open {
        let resolvable = match scope {
            ResolveScope::All => true,
            ResolveScope::WorkerOnly => incident.category == Category::WorkerUnreachable.id(),
            ResolveScope::Nothing => false,
        };
        if resolvable && !present.contains(key) {
            notices.push(Notice {
                kind: NoticeKind::Resolved,
                incident: incident.clone(),
                finding: None,
            });
        }
    }
    notices
}

/// Whether the resolution of `incident` waits although nothing was found this run: a failure of
/// a connector (failed, given up, stalled) is resolved once the connector has run healthy for
/// `settle_ms`, so a failure that returns minutes after a restart stays one incident instead of
/// a page and a resolved notice each cycle; one that came back after a restart had healed it
/// (it flaps: `returns` in its history) waits until its restarts are forgotten. A cluster
/// incident of one cause waits for each member. A connector paused, stopped or gone since has
/// nothing to wait for, nor has an incident never paged (closed silently: nobody was told).
pub fn resolution_waits(incident: &Incident, eval: &Evaluation, settle_ms: i64, now: i64) -> bool {
    if incident.unsent {
        return false;
    }
    let category = incident.category.as_str();
    let stalled = category == Category::ConsumerStalled.id();
    let failed = [
        Category::TaskFailed.id(),
        Category::ConnectorFailed.id(),
        Category::RestartExhausted.id(),
    ]
    .contains(&category);
    if !(stalled || failed) {
        return false;
    }
    let waits = |name: &String| {
        let running = eval.connectors.iter().any(|c| &c.name == name && c.state == "RUNNING");
        let Some(state) = eval.states.get(name).filter(|_| running) else {
            return false;
        };
        let history = if stalled {
            &state.progress.restart
        } else {
            &state.restart
        };
        history.returns > 0 || history.healthy_since.is_none_or(|since| now - since < settle_ms)
    };
    incident.connector.iter().chain(&incident.members).any(waits)
}

/// An alert as SNS carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertMessage {
    /// At most 100 characters, one line.
    pub subject: String,
    /// Text, at most [`MAX_BODY_BYTES`].
    pub body: String,
    /// Message attribute `category`.
    pub category: String,
    /// Message attribute `severity`.
    pub severity: String,
    /// Message attribute `incident` (the dedup key).
    pub incident: String,
    /// Message attribute `state`: `open`, `reminder`, `resolved`.
    pub state: String,
}

/// SNS caps a message at 256 KB; keep room for the subject and attributes.
pub const MAX_BODY_BYTES: usize = 250 * 1024;
/// SNS wants a subject shorter than 100 characters, printable ASCII on one line.
pub const MAX_SUBJECT_CHARS: usize = 99;

/// Renders a notice. `runbook_base` is the URL the runbook pages live under.
pub fn render(notice: &Notice, cluster: &str, runbook_base: &str, now: i64) -> AlertMessage {
    let i = &notice.incident;
    let mut subject_of = cluster.to_string();
    if let Some(c) = &i.connector {
        subject_of = format!("{subject_of}/{c}");
    }
    if let Some(t) = i.task {
        subject_of = format!("{subject_of}/{t}");
    }
    if let Some(r) = &i.resource {
        subject_of = format!("{subject_of}/{r}");
    }
    let label = match notice.kind {
        NoticeKind::Resolved => "RESOLVED".to_string(),
        _ => i.severity.to_uppercase(),
    };
    let subject = ascii_subject(&format!("[{label}] {} {subject_of}", i.category));
    let runbook = |id: &str| format!("{}/{id}.md", runbook_base.trim_end_matches('/'));

    let mut body = String::new();
    match (&notice.kind, &notice.finding) {
        (NoticeKind::Resolved, _) => {
            body.push_str(&format!(
                "Resolved after {}: {}\n\nRunbook: {}\nOpened: {}\nResolved: {}\n",
                human_duration(now - i.opened_at),
                i.summary,
                runbook(&i.category),
                iso8601(i.opened_at),
                iso8601(now)
            ));
        }
        (kind, Some(f)) => {
            match kind {
                NoticeKind::Reminder => {
                    body.push_str(&format!("Still open after {}. ", human_duration(now - i.opened_at)))
                }
                NoticeKind::Escalated { from } => body.push_str(&format!(
                    "Escalated from {} to {} after {}. ",
                    from.as_str(),
                    i.severity,
                    human_duration(now - i.opened_at)
                )),
                NoticeKind::Open | NoticeKind::Resolved => {}
            }
            body.push_str(&format!("{}.\n\n", f.summary.trim_end_matches('.')));
            if let Some(cause) = f.cause {
                body.push_str(&format!("Cause: {}", cause.id()));
                if let Some(root) = &f.root {
                    body.push_str(&format!(" — {}", clip_chars(&root.line, 1000)));
                }
                body.push('\n');
            }
            if let Some(worker) = &f.worker {
                body.push_str(&format!("Worker: {worker}\n"));
            }
            if let Some(action) = &f.action {
                body.push_str(&format!("Action: {action}\n"));
            }
            if !f.earlier.is_empty() {
                body.push_str("Earlier restarts of this failure:\n");
                for line in &f.earlier {
                    body.push_str(&format!("  - {line}\n"));
                }
            }
            body.push_str(&format!("Runbook: {}\n", runbook(&i.category)));
            if let Some(cause) = f.cause {
                body.push_str(&format!("Cause runbook: {}\n", runbook(cause.id())));
            }
            body.push_str(&format!("Opened: {}\n", iso8601(i.opened_at)));
            if let Some(detail) = &f.detail {
                body.push_str("\nDetail:\n");
                body.push_str(detail);
                body.push('\n');
            }
        }
        (_, None) => body.push_str(&format!("{}\n", i.summary)),
    }
    body.push_str(&format!("\nIncident: {}\n", i.key));
    AlertMessage {
        subject,
        // Traces and summaries may quote passwords and record contents: never to subscribers.
        body: clip_bytes(&crate::redact::redact_text(&body), MAX_BODY_BYTES),
        category: i.category.clone(),
        severity: i.severity.clone(),
        incident: i.key.clone(),
        state: notice.kind.as_str().into(),
    }
}

fn clip_chars(text: &str, max: usize) -> String {
    let one_line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(max - 3).collect();
    cut.push_str("...");
    cut
}

/// A subject SNS accepts: printable ASCII only.
fn ascii_subject(text: &str) -> String {
    clip_chars(
        &text
            .chars()
            .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' })
            .collect::<String>(),
        MAX_SUBJECT_CHARS,
    )
}

fn clip_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    const NOTE: &str = "\n[... cut to fit the 256 KB SNS limit]\n";
    let mut end = max - NOTE.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{NOTE}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::judge::cause::root_cause;

    const MIN: i64 = 60_000;
    const T0: i64 = 1_795_500_000_000;

    fn failed_task(trace: &str) -> Finding {
        let mut f = Finding::new(
            Category::TaskFailed,
            "Task 0 of connector seatool-sink FAILED on 10.0.1.5:8083: serialization",
        );
        f.connector = Some("seatool-sink".into());
        f.task = Some(0);
        f.worker = Some("10.0.1.5:8083".into());
        let root = root_cause(trace);
        f.cause = Some(root.cause);
        f.root = Some(root);
        f.detail = Some(trace.into());
        f.action = Some("not restarted: a restart cannot fix serialization".into());
        f
    }

    #[test]
    fn an_alert_body_carries_no_password_and_no_record_content_from_the_trace() {
        let path = format!(
            "{}/../../events/connect/traces/data-exception.txt",
            env!("CARGO_MANIFEST_DIR")
        );
        let data = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // The record was `not JSON`: Jackson quotes its first token.
        assert!(data.contains("Unrecognized token 'not'"));
        let trace = format!(
            "{data}\nCaused by: java.sql.SQLException: cannot reach jdbc:postgresql://app:hunter2@db.internal:5432/seatool \
             with sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"svc\" password=\"swordfish\";"
        );
        let f = failed_task(&trace);
        let notices = plan_notices(
            "mako",
            &BTreeMap::new(),
            std::slice::from_ref(&f),
            ResolveScope::All,
            60 * MIN,
            T0,
        );
        let m = render(&notices[0], "mako", "https://x/runbooks", T0);
        for secret in ["hunter2", "swordfish", "'not'"] {
            assert!(!m.body.contains(secret), "{secret} in the alert: {}", m.body);
        }
        assert!(
            m.body.contains("jdbc:postgresql://app:[redacted]@db.internal"),
            "{}",
            m.body
        );
        assert!(m.body.contains("DataException"), "the trace is still there: {}", m.body);
    }

    #[test]
    fn a_connector_with_four_failed_tasks_is_one_page_naming_them_all() {
        let tasks: Vec<Finding> = (0..4)
            .map(|t| {
                let mut f = failed_task("Caused by: org.apache.kafka.connect.errors.DataException: bad");
                f.task = Some(t);
                f.summary = format!("Task {t} of connector seatool-sink FAILED on 10.0.1.5:8083: serialization");
                f
            })
            .collect();
        let notices = plan_notices("mako", &BTreeMap::new(), &tasks, ResolveScope::All, 60 * MIN, T0);
        assert_eq!(notices.len(), 1, "{notices:?}");
        let m = render(&notices[0], "mako", "https://x/runbooks", T0);
        assert_eq!(m.subject, "[CRITICAL] task-failed mako/seatool-sink");
        assert_eq!(m.incident, "task-failed:mako/seatool-sink");
        for t in 0..4 {
            assert!(
                m.body.contains(&format!("Task {t} of connector seatool-sink FAILED")),
                "{}",
                m.body
            );
        }
        // Open with the same key: one more failed task is no new page; all healed, one resolved.
        let open = BTreeMap::from([(notices[0].incident.key.clone(), notices[0].incident.clone())]);
        assert!(plan_notices("mako", &open, &tasks[1..2], ResolveScope::All, 60 * MIN, T0 + 1).is_empty());
        let healed = plan_notices("mako", &open, &[], ResolveScope::All, 60 * MIN, T0 + 2);
        assert_eq!(healed.len(), 1);
        assert_eq!(healed[0].kind, NoticeKind::Resolved);
    }

    #[test]
    fn a_paused_connector_is_told_once_and_never_reminded() {
        let mut f = Finding::new(Category::ConnectorPaused, "Connector seatool-sink is PAUSED on purpose");
        f.connector = Some("seatool-sink".into());
        let first = plan_notices(
            "mako",
            &BTreeMap::new(),
            std::slice::from_ref(&f),
            ResolveScope::All,
            60 * MIN,
            T0,
        );
        assert_eq!(first.len(), 1);
        let open = BTreeMap::from([(first[0].incident.key.clone(), first[0].incident.clone())]);
        let later = plan_notices(
            "mako",
            &open,
            std::slice::from_ref(&f),
            ResolveScope::All,
            60 * MIN,
            T0 + 5 * 60 * MIN,
        );
        assert!(later.is_empty(), "{later:?}");
    }

    /// The judgement of one connector as a run leaves it: its state and restart history.
    fn judged(name: &str, state: &str, restart: crate::monitor::judge::restart::RestartHistory) -> Evaluation {
        let mut eval = Evaluation::default();
        eval.connectors.push(crate::monitor::judge::state::ConnectorSummary {
            name: name.into(),
            state: state.into(),
            worker: None,
            tasks: Vec::new(),
            healthy: state == "RUNNING",
            failed_tasks: 0,
        });
        let kept = crate::monitor::judge::state::ConnectorState {
            restart,
            ..Default::default()
        };
        eval.states.insert(name.into(), kept);
        eval
    }

    #[test]
    fn a_healed_failure_is_resolved_only_once_it_has_run_healthy_for_the_settle_time() {
        use crate::monitor::judge::restart::RestartHistory;
        let f = failed_task("Caused by: org.apache.kafka.connect.errors.DataException: bad");
        let incident = opening("mako", &f, T0).incident;
        let healthy_since = |since| RestartHistory {
            count: 1,
            last_restart_at: Some(T0),
            healthy_since: Some(since),
            ..Default::default()
        };
        let settle = 10 * MIN;
        let healed = judged("seatool-sink", "RUNNING", healthy_since(T0 + MIN));
        assert!(
            resolution_waits(&incident, &healed, settle, T0 + MIN),
            "healthy for no time yet"
        );
        assert!(resolution_waits(&incident, &healed, settle, T0 + 10 * MIN + MIN - 1));
        assert!(
            !resolution_waits(&incident, &healed, settle, T0 + 11 * MIN),
            "healthy for the settle time"
        );
        assert!(
            !resolution_waits(&incident, &healed, 0, T0 + MIN),
            "0: at the first healthy run"
        );

        let restarting = judged("seatool-sink", "RUNNING", RestartHistory::default());
        assert!(
            resolution_waits(&incident, &restarting, settle, T0 + 60 * MIN),
            "running, never seen healthy since (a task restarting)"
        );
        let flapping = judged(
            "seatool-sink",
            "RUNNING",
            RestartHistory {
                returns: 1,
                ..healthy_since(T0)
            },
        );
        assert!(
            resolution_waits(&incident, &flapping, settle, T0 + 30 * MIN),
            "came back after a restart: until its restarts are forgotten"
        );
        let paused = judged("seatool-sink", "PAUSED", RestartHistory::default());
        assert!(
            !resolution_waits(&incident, &paused, settle, T0 + MIN),
            "paused: nothing to wait for"
        );
        assert!(
            !resolution_waits(&incident, &Evaluation::default(), settle, T0 + MIN),
            "gone: nothing to wait for"
        );

        let never_paged = incident.unsent();
        assert!(
            !resolution_waits(&never_paged, &healed, settle, T0 + MIN),
            "never paged: closed silently at once"
        );
        let mut cluster = incident.clone();
        cluster.connector = None;
        cluster.members = vec!["appian-sink".into(), "seatool-sink".into()];
        assert!(
            resolution_waits(&cluster, &healed, settle, T0 + 2 * MIN),
            "a member still settling"
        );
        let mut worker = incident;
        worker.category = Category::WorkerUnreachable.id().into();
        assert!(
            !resolution_waits(&worker, &healed, settle, T0 + MIN),
            "not a connector's failure"
        );
    }

    #[test]
    fn open_once_remind_at_the_interval_then_resolve_with_the_duration() {
        let f = failed_task("Caused by: org.apache.kafka.connect.errors.DataException: bad");
        let mut open = BTreeMap::new();
        let run = |open: &BTreeMap<String, Incident>, findings: &[Finding], now| {
            plan_notices("mako", open, findings, ResolveScope::All, 60 * MIN, now)
        };
        let first = run(&open, std::slice::from_ref(&f), T0);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].kind, NoticeKind::Open);
        open.insert(first[0].incident.key.clone(), first[0].incident.clone());

        assert!(
            run(&open, std::slice::from_ref(&f), T0 + MIN).is_empty(),
            "no storm: nothing new a minute later"
        );
        let remind = run(&open, std::slice::from_ref(&f), T0 + 60 * MIN);
        assert_eq!(
            remind.iter().map(|n| n.kind).collect::<Vec<_>>(),
            [NoticeKind::Reminder]
        );
        assert_eq!(remind[0].incident.last_notified_at, T0 + 60 * MIN);

        let healed = run(&open, &[], T0 + 75 * MIN);
        assert_eq!(
            healed.iter().map(|n| n.kind).collect::<Vec<_>>(),
            [NoticeKind::Resolved]
        );
        let message = render(&healed[0], "mako", "https://runbooks.example/runbooks", T0 + 75 * MIN);
        assert_eq!(message.subject, "[RESOLVED] task-failed mako/seatool-sink");
        assert!(
            message
                .body
                .starts_with("Resolved after 1h 15m: Task 0 of connector seatool-sink FAILED"),
            "{}",
            message.body
        );
        assert_eq!(message.state, "resolved");
        assert!(
            message
                .body
                .contains("Runbook: https://runbooks.example/runbooks/task-failed.md\n"),
            "a resolved notice links its runbook (what to check after a recovery): {}",
            message.body
        );
    }

    #[test]
    fn an_open_incident_made_more_severe_is_alerted_again_once_at_the_new_severity() {
        let mut f = failed_task("x");
        f.severity = Severity::Warning;
        let opened = plan_notices(
            "c",
            &BTreeMap::new(),
            std::slice::from_ref(&f),
            ResolveScope::All,
            60 * MIN,
            T0,
        );
        let mut open: BTreeMap<String, Incident> = opened
            .into_iter()
            .map(|n| (n.incident.key.clone(), n.incident))
            .collect();
        f.severity = Severity::Critical;
        let up = plan_notices(
            "c",
            &open,
            std::slice::from_ref(&f),
            ResolveScope::All,
            60 * MIN,
            T0 + MIN,
        );
        assert_eq!(
            up.iter().map(|n| n.kind).collect::<Vec<_>>(),
            [NoticeKind::Escalated {
                from: Severity::Warning
            }]
        );
        let message = render(&up[0], "c", "https://x/runbooks", T0 + MIN);
        assert!(message.subject.starts_with("[CRITICAL] "), "{}", message.subject);
        assert_eq!(message.state, "open", "subscribers page on open");
        open.insert(up[0].incident.key.clone(), up[0].incident.clone());
        let again = plan_notices(
            "c",
            &open,
            std::slice::from_ref(&f),
            ResolveScope::All,
            60 * MIN,
            T0 + 2 * MIN,
        );
        assert!(again.is_empty(), "once: {again:?}");
        f.severity = Severity::Warning;
        let down = plan_notices(
            "c",
            &open,
            std::slice::from_ref(&f),
            ResolveScope::All,
            60 * MIN,
            T0 + 3 * MIN,
        );
        assert!(down.is_empty(), "a milder finding is not news: {down:?}");
    }

    #[test]
    fn a_run_that_could_not_judge_resolves_nothing_it_did_not_see() {
        let f = failed_task("x");
        let open_now = plan_notices(
            "c",
            &BTreeMap::new(),
            std::slice::from_ref(&f),
            ResolveScope::All,
            MIN,
            T0,
        );
        let mut open: BTreeMap<String, Incident> = open_now
            .into_iter()
            .map(|n| (n.incident.key.clone(), n.incident))
            .collect();
        let mut unreachable = Finding::new(Category::WorkerUnreachable, "no worker");
        let down = plan_notices(
            "c",
            &open,
            std::slice::from_ref(&unreachable),
            ResolveScope::Nothing,
            60 * MIN,
            T0 + MIN,
        );
        assert_eq!(down.iter().map(|n| n.kind).collect::<Vec<_>>(), [NoticeKind::Open]);
        open.insert(down[0].incident.key.clone(), down[0].incident.clone());
        let rebalancing = plan_notices("c", &open, &[], ResolveScope::WorkerOnly, 60 * MIN, T0 + 2 * MIN);
        assert_eq!(rebalancing.len(), 1);
        assert_eq!(
            rebalancing[0].incident.category, "worker-unreachable",
            "only the worker incident resolves"
        );
        unreachable.muted = true;
        let muted = plan_notices("c", &open, &[f, unreachable], ResolveScope::All, MIN, T0 + 90 * MIN);
        assert_eq!(
            muted.iter().map(|n| n.kind).collect::<Vec<_>>(),
            [NoticeKind::Reminder],
            "muted: neither reminded nor resolved"
        );
    }

    #[test]
    fn info_findings_never_alert() {
        let f = Finding::new(Category::WorkerRebalancing, "rebalancing");
        assert!(plan_notices("c", &BTreeMap::new(), &[f], ResolveScope::All, MIN, T0).is_empty());
    }

    #[test]
    fn the_message_follows_the_contract() {
        let trace = format!(
            "org.apache.kafka.connect.errors.ConnectException: Exiting WorkerSinkTask\n\tat x\nCaused by: org.apache.kafka.connect.errors.DataException: Converting byte[] failed\n{}",
            "\tat a.b.C(C.java:1)\n".repeat(20_000)
        );
        let notices = plan_notices(
            "mako-connector-main-connect",
            &BTreeMap::new(),
            &[failed_task(&trace)],
            ResolveScope::All,
            MIN,
            T0,
        );
        let m = render(
            &notices[0],
            "mako-connector-main-connect",
            "https://x.example/runbooks/",
            T0,
        );
        assert_eq!(
            m.subject,
            "[CRITICAL] task-failed mako-connector-main-connect/seatool-sink"
        );
        assert!(
            m.body
                .starts_with("Task 0 of connector seatool-sink FAILED on 10.0.1.5:8083: serialization.\n\n"),
            "{}",
            &m.body[..200]
        );
        for line in [
            "Cause: serialization — org.apache.kafka.connect.errors.DataException: Converting byte[] failed",
            "Worker: 10.0.1.5:8083",
            "Action: not restarted: a restart cannot fix serialization",
            "Runbook: https://x.example/runbooks/task-failed.md",
            "Cause runbook: https://x.example/runbooks/serialization.md",
        ] {
            assert!(m.body.contains(line), "missing {line:?}");
        }
        assert!(m.body.len() <= MAX_BODY_BYTES, "{}", m.body.len());
        assert!(m.body.contains("cut to fit the 256 KB SNS limit"));
        assert_eq!(
            (m.category.as_str(), m.severity.as_str(), m.state.as_str()),
            ("task-failed", "critical", "open")
        );
        assert_eq!(m.incident, "task-failed:mako-connector-main-connect/seatool-sink");

        let mut long = failed_task("x");
        long.connector =
            Some("a-very-long-connector-name-that-goes-on-and-on-and-on-beyond-any-reasonable-length".into());
        let n = plan_notices(
            "cluster-with-a-long-name",
            &BTreeMap::new(),
            &[long],
            ResolveScope::All,
            MIN,
            T0,
        );
        let m = render(&n[0], "cluster-with-a-long-name", "https://x", T0);
        assert_eq!(m.subject.chars().count(), 99);
        assert!(m.subject.ends_with("...") && m.subject.is_ascii());
    }
}
