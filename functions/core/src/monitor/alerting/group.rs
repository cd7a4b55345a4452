//! Alert grouping: many connectors failing on one cause (the brokers are gone, the function is
//! throttled) are one incident for the cluster with the connectors listed, not a page each.
//! Pure: the run calls it between acting and alerting.

use std::collections::{BTreeMap, BTreeSet};

use super::alert::Incident;
use crate::monitor::judge::cause::Cause;
use crate::monitor::judge::finding::{Category, Finding};

/// The failure categories that group.
const GROUPED: [Category; 3] = [
    Category::ConnectorFailed,
    Category::TaskFailed,
    Category::RestartExhausted,
];

/// How many members a group incident names in its summary (the detail lists them all).
const NAMED: usize = 10;

/// The group a failure finding belongs to: `cause/<id>`, or for a cause no rule names,
/// `cause/unknown-<8 hex of its fingerprint>` (the same unknown failure, not every unknown one).
pub fn group_of(finding: &Finding) -> Option<String> {
    if !GROUPED.contains(&finding.category) || finding.muted || !finding.is_alertable() {
        return None;
    }
    let cause = finding.cause?;
    Some(match (cause, &finding.root) {
        (Cause::Unknown, Some(root)) => format!("cause/unknown-{:08x}", fnv1a(&root.fingerprint)),
        _ => format!("cause/{}", cause.id()),
    })
}

/// A stable 32-bit hash (FNV-1a): incident keys must not change with the compiler.
fn fnv1a(text: &str) -> u32 {
    text.bytes()
        .fold(0x811c_9dc5, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// Groups the failure findings of one cause when `at` or more connectors share it, or when the
/// group's incident is open already (it stays one incident until its last member heals): each
/// member is marked `grouped` and one cluster finding (`task-failed`, resource `cause/...`)
/// lists them with what was done for each. Findings stay in the report as they are.
pub fn group_by_cause(findings: &mut Vec<Finding>, open: &BTreeMap<String, Incident>, cluster: &str, at: usize) {
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, f) in findings.iter().enumerate() {
        if let Some(group) = group_of(f) {
            groups.entry(group).or_default().push(i);
        }
    }
    let mut added = Vec::new();
    for (group, members) in groups {
        let connectors: BTreeSet<&str> = members
            .iter()
            .filter_map(|&i| findings[i].connector.as_deref())
            .collect();
        let mut head = Finding::new(Category::TaskFailed, String::new());
        head.resource = Some(group.clone());
        let already_open = open.contains_key(&head.incident_key(cluster));
        if connectors.len() < at && !already_open {
            continue;
        }
        let first = &findings[members[0]];
        let cause = first.cause.unwrap_or(Cause::Unknown);
        let mut named: Vec<&str> = connectors.iter().copied().take(NAMED).collect();
        if connectors.len() > NAMED {
            named.push("…");
        }
        head.summary = format!(
            "{} connector{} failing on one cause ({}): {}",
            connectors.len(),
            if connectors.len() == 1 { " is" } else { "s are" },
            cause.id(),
            named.join(", ")
        );
        head.cause = first.cause;
        head.root = first.root.clone();
        head.severity = members
            .iter()
            .map(|&i| findings[i].severity)
            .max()
            .unwrap_or(head.severity);
        head.action = Some("each connector as listed below (restarts keep their own budget)".into());
        let mut detail = String::new();
        for &i in &members {
            let f = &findings[i];
            let subject = match (&f.connector, f.task) {
                (Some(c), Some(t)) => format!("{c}/{t}"),
                (Some(c), None) => c.clone(),
                _ => continue,
            };
            detail.push_str(&format!(
                "- {subject}: {} — {}\n",
                f.category.id(),
                f.action.as_deref().unwrap_or("no action")
            ));
        }
        head.detail = Some(detail);
        head.members = connectors.iter().map(|c| c.to_string()).collect();
        for &i in &members {
            findings[i].grouped = Some(group.clone());
        }
        added.push(head);
    }
    findings.extend(added);
}

/// The open cluster incidents of one cause whose members changed this run (a connector joined
/// or left), as they must be stored: its members and summary now, the rest as they were. The
/// alarms of a connector that joined are then covered by it; one that left is no longer.
pub fn membership_changes(open: &BTreeMap<String, Incident>, findings: &[Finding], cluster: &str) -> Vec<Incident> {
    findings
        .iter()
        .filter(|f| !f.members.is_empty() && f.connector.is_none())
        .filter_map(|f| {
            let incident = open.get(&f.incident_key(cluster))?;
            let now: BTreeSet<&String> = f.members.iter().collect();
            let before: BTreeSet<&String> = incident.members.iter().collect();
            (now != before).then(|| Incident {
                members: f.members.clone(),
                summary: f.summary.clone(),
                ..incident.clone()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::alerting::alert::{ResolveScope, plan_notices};
    use crate::monitor::judge::cause::root_cause;

    const T0: i64 = 1_795_500_000_000;

    fn failing(connector: &str, trace: &str) -> Finding {
        let root = root_cause(trace);
        let mut f = Finding::new(Category::TaskFailed, format!("Task 0 of {connector} FAILED"));
        f.connector = Some(connector.into());
        f.task = Some(0);
        f.cause = Some(root.cause);
        f.root = Some(root);
        f.action = Some("restart 1 of 3 requested".into());
        f
    }

    fn trace(name: &str) -> String {
        let path = format!("{}/../../events/connect/traces/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Connectors a, b and c failing with `trace`, grouped, and the group incident as opened.
    fn three_grouped(trace: &str) -> (Vec<Finding>, BTreeMap<String, Incident>) {
        let mut first: Vec<Finding> = ["a", "b", "c"].iter().map(|c| failing(c, trace)).collect();
        group_by_cause(&mut first, &BTreeMap::new(), "k", 3);
        let open = plan_notices("k", &BTreeMap::new(), &first, ResolveScope::All, 1, T0)
            .into_iter()
            .map(|n| (n.incident.key.clone(), n.incident))
            .collect();
        (first, open)
    }

    #[test]
    fn three_connectors_on_one_cause_are_one_incident_and_two_are_not() {
        let broker = trace("broker-timeout.txt");
        let mut findings: Vec<Finding> = ["a", "b", "c"].iter().map(|c| failing(c, &broker)).collect();
        findings.push(failing("d", &trace("data-exception.txt")));
        group_by_cause(&mut findings, &BTreeMap::new(), "k", 3);
        let notices = plan_notices("k", &BTreeMap::new(), &findings, ResolveScope::All, 3_600_000, T0);
        let keys: Vec<&str> = notices.iter().map(|n| n.incident.key.as_str()).collect();
        let cause = findings[0].cause.unwrap().id();
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert!(
            keys.contains(&format!("task-failed:k/cause/{cause}").as_str()),
            "{keys:?}"
        );
        assert!(keys.contains(&"task-failed:k/d"), "{keys:?}");
        let head = findings.last().unwrap();
        assert!(
            head.summary.starts_with("3 connectors are failing on one cause"),
            "{}",
            head.summary
        );
        let detail = head.detail.as_deref().unwrap();
        assert!(
            detail.contains("- a/0: task-failed — restart 1 of 3 requested\n"),
            "{detail}"
        );

        let mut two: Vec<Finding> = ["a", "b"].iter().map(|c| failing(c, &broker)).collect();
        group_by_cause(&mut two, &BTreeMap::new(), "k", 3);
        assert!(two.iter().all(|f| f.grouped.is_none()) && two.len() == 2);
    }

    #[test]
    fn an_open_group_keeps_its_last_member_and_unknown_causes_group_by_fingerprint() {
        let broker = trace("broker-timeout.txt");
        let (_, open) = three_grouped(&broker);
        let mut last = vec![failing("c", &broker)];
        group_by_cause(&mut last, &open, "k", 3);
        assert_eq!(last.len(), 2, "still one incident while a member fails");
        assert!(plan_notices("k", &open, &last, ResolveScope::All, 3_600_000, T0 + 1).is_empty());

        let file = |path: &str| {
            failing(
                path,
                &format!(
                    "org.apache.kafka.connect.errors.ConnectException: Couldn't find or create file '{path}' for FileStreamSinkTask\nCaused by: java.nio.file.NoSuchFileException: {path}"
                ),
            )
        };
        let mut unknown = vec![file("/tmp/a/out.txt"), file("/tmp/b/out.txt"), file("/tmp/c/out.txt")];
        assert_eq!(unknown[0].cause, Some(Cause::Unknown));
        assert_eq!(group_of(&unknown[0]), group_of(&unknown[2]), "paths are normalised");
        unknown.push(failing("e", &trace("data-exception.txt")));
        unknown[3].cause = Some(Cause::Unknown);
        assert_ne!(group_of(&unknown[0]), group_of(&unknown[3]), "another unknown failure");
        group_by_cause(&mut unknown, &BTreeMap::new(), "k", 3);
        assert!(unknown[3].grouped.is_none());
        assert_eq!(unknown.iter().filter(|f| f.grouped.is_some()).count(), 3);
    }

    #[test]
    fn a_connector_joining_or_leaving_an_open_group_changes_its_members_and_nothing_else() {
        let broker = trace("broker-timeout.txt");
        let (first, open) = three_grouped(&broker);
        assert!(membership_changes(&open, &first, "k").is_empty(), "the same members");

        let mut joined: Vec<Finding> = ["a", "b", "c", "d"].iter().map(|c| failing(c, &broker)).collect();
        group_by_cause(&mut joined, &open, "k", 3);
        let changed = membership_changes(&open, &joined, "k");
        assert_eq!(changed.len(), 1);
        let was = open.values().next().unwrap();
        assert_eq!(changed[0].members, ["a", "b", "c", "d"]);
        assert!(changed[0].summary.starts_with("4 connectors"), "{}", changed[0].summary);
        assert_eq!(
            (&changed[0].key, changed[0].opened_at, changed[0].last_notified_at),
            (&was.key, was.opened_at, was.last_notified_at),
            "the same incident, not re-notified"
        );

        let mut left: Vec<Finding> = ["b", "c"].iter().map(|c| failing(c, &broker)).collect();
        group_by_cause(&mut left, &open, "k", 3);
        assert_eq!(membership_changes(&open, &left, "k")[0].members, ["b", "c"]);
    }
}
