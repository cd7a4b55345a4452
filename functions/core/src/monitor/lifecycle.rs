//! The incident lifecycle of event-like checks (an alarm's state change, a sink's verified
//! window): raise an incident once, alert it more severe when it gets so, resolve it with a
//! notice. A use case over the store and the publisher, shared by `alarmState`, `verifySinks`
//! and `ecsTaskState` (which raises its stops here and counts the further ones itself).
//!
//! The store's claim comes first, the message after: a message that fails undoes the claim, so
//! the next state change alerts again, and two invocations at once alert once.

use crate::monitor::alerting::alert::{Incident, Notice, NoticeKind, UNSENT_RETRY_AFTER_MS, escalation, render};
use crate::monitor::ports::{AlertError, AlertPublisher, MonitorStore, ResolvedIncident, StateError};

/// The store or the topic failed; the claim was undone where a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// The monitor-state table.
    #[error(transparent)]
    State(#[from] StateError),
    /// The alerts topic.
    #[error(transparent)]
    Alert(#[from] AlertError),
}

/// What [`raise`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raised {
    /// A new incident, alerted.
    Opened,
    /// Open already and now more severe: alerted again.
    Escalated,
    /// Open already: nothing sent.
    AlreadyOpen,
}

/// Opens the incident of `notice` (an [`opening`](crate::monitor::alerting::alert::opening) notice) and alerts it;
/// an incident open already is alerted again only when `notice` makes it more severe.
pub async fn raise<S: MonitorStore, P: AlertPublisher>(
    store: &S,
    alerts: &P,
    cluster: &str,
    runbook_base_url: &str,
    notice: &Notice,
    now: i64,
) -> Result<Raised, LifecycleError> {
    let key = &notice.incident.key;
    // Claimed as unsent, marked sent once published: an invocation cut in between leaves the
    // page to the next one (an event retried, the next window).
    if store.open_incident(cluster, &notice.incident.unsent()).await? {
        if let Err(e) = alerts.publish(&render(notice, cluster, runbook_base_url, now)).await {
            let _ = store.close_incident(cluster, key, 1).await;
            return Err(e.into());
        }
        mark_sent(store, cluster, &notice.incident, 1).await;
        return Ok(Raised::Opened);
    }
    let stored = store.load(cluster).await?;
    let Some(open) = stored.incidents.get(key) else {
        return Ok(Raised::AlreadyOpen);
    };
    if open.value.unsent && now - open.value.last_notified_at >= UNSENT_RETRY_AFTER_MS {
        let again = Incident {
            last_notified_at: now,
            ..open.value.clone()
        };
        if !store.update_incident(cluster, &again, open.version).await? {
            return Ok(Raised::AlreadyOpen);
        }
        let resent = Notice {
            kind: NoticeKind::Open,
            incident: again.clone(),
            finding: notice.finding.clone(),
        };
        alerts.publish(&render(&resent, cluster, runbook_base_url, now)).await?;
        mark_sent(store, cluster, &again, open.version + 1).await;
        return Ok(Raised::Opened);
    }
    let Some(finding) = &notice.finding else {
        return Ok(Raised::AlreadyOpen);
    };
    let Some(escalated) = escalation(&open.value, finding, now) else {
        return Ok(Raised::AlreadyOpen);
    };
    if !store
        .update_incident(cluster, &escalated.incident, open.version)
        .await?
    {
        return Ok(Raised::AlreadyOpen); // another invocation escalated it
    }
    if let Err(e) = alerts
        .publish(&render(&escalated, cluster, runbook_base_url, now))
        .await
    {
        let _ = store.update_incident(cluster, &open.value, open.version + 1).await;
        return Err(e.into());
    }
    Ok(Raised::Escalated)
}

/// Marks `incident`'s page sent once it is published (the incident stored at `version`). A mark
/// that is not written leaves it unsent: a later run sends it again (at least once, never
/// never).
pub async fn mark_sent<S: MonitorStore>(store: &S, cluster: &str, incident: &Incident, version: u64) {
    let _ = store.update_incident(cluster, &incident.sent(), version).await;
}

/// What [`clear`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleared {
    /// No incident was open under the key.
    NotOpen,
    /// Another invocation resolved it first.
    ResolvedElsewhere,
    /// Resolved, and the resolved notice sent.
    Resolved,
    /// Resolved without a notice: it was never alerted (covered by another incident).
    ResolvedSilently,
}

/// Resolves the open incident `key`, with a resolved notice unless it was never alerted.
pub async fn clear<S: MonitorStore, P: AlertPublisher>(
    store: &S,
    alerts: &P,
    cluster: &str,
    runbook_base_url: &str,
    key: &str,
    now: i64,
) -> Result<Cleared, LifecycleError> {
    let stored = store.load(cluster).await?;
    let Some(open) = stored.incidents.get(key) else {
        return Ok(Cleared::NotOpen);
    };
    if !store.close_incident(cluster, key, open.version).await? {
        return Ok(Cleared::ResolvedElsewhere);
    }
    let record = ResolvedIncident {
        incident: open.value.clone(),
        resolved_at: now,
    };
    // Covered by another incident, or never paged (claimed, then cut): nobody to tell.
    if open.value.covered_by.is_some() || open.value.unsent {
        let _ = store.record_resolved(cluster, &record).await;
        return Ok(Cleared::ResolvedSilently);
    }
    let notice = Notice {
        kind: NoticeKind::Resolved,
        incident: open.value.clone(),
        finding: None,
    };
    if let Err(e) = alerts.publish(&render(&notice, cluster, runbook_base_url, now)).await {
        let _ = store.open_incident(cluster, &open.value).await;
        return Err(e.into());
    }
    // Only a record for `connectorctl incidents`: the notice went out.
    let _ = store.record_resolved(cluster, &record).await;
    Ok(Cleared::Resolved)
}
