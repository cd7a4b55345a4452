//! `alarmState`: CloudWatch alarm state changes of the project's alarms become the same alerts
//! as the monitor's (same store, same format, same topic): ALARM opens, OK resolves with the
//! duration, INSUFFICIENT_DATA warns only where the catalogue says missing data matters; an
//! incident that an ALARM makes more severe than it was alerted as is alerted again.

use connector_core::error_chain;
use connector_core::monitor::events::alarm::{
    AlarmChange, AlarmEntry, alarm_catalogue, alarm_connector, classify_alarm_event, covering,
};
use connector_core::monitor::lifecycle::{Cleared, Raised, clear, raise};
use connector_core::monitor::ports::{AlertPublisher, MonitorStore};
use lambda_runtime::Diagnostic;
use serde_json::{Value, json};

pub use crate::ecs_task_state::{EcsConfig as AlarmConfig, EcsFailure as AlarmFailure};

/// One alarm event. Unknown shapes are answered `{"ignored": why}`, never an error.
pub async fn handle<S: MonitorStore, P: AlertPublisher>(
    config: &AlarmConfig,
    catalogue: &[AlarmEntry],
    store: &S,
    alerts: &P,
    event: &Value,
    now: i64,
) -> Result<Value, AlarmFailure> {
    let cluster = &config.cluster;
    let fail = |e: &(dyn std::error::Error + 'static)| AlarmFailure::new(error_chain(e));
    match classify_alarm_event(event, catalogue, cluster, now) {
        Err(why) => {
            tracing::info!(reason = %why, "ignored event");
            Ok(json!({"ignored": why}))
        }
        Ok(AlarmChange::Nothing { reason }) => Ok(json!({"alerted": false, "reason": reason})),
        Ok(AlarmChange::Raise(mut notice)) => {
            let key = notice.incident.key.clone();
            // An alarm on a connector the monitor has paged for already is recorded, not sent.
            if let Some(connector) = alarm_connector(event) {
                let stored = store.load(cluster).await.map_err(|e| fail(&e))?;
                let open = stored.incidents.values().map(|v| &v.value).filter(|i| i.key != key);
                if let Some(by) = covering(connector, open) {
                    let by = by.key.clone();
                    if !stored.incidents.contains_key(&key) {
                        notice.incident.covered_by = Some(by.clone());
                        store
                            .open_incident(cluster, &notice.incident)
                            .await
                            .map_err(|e| fail(&e))?;
                    }
                    tracing::info!(incident = %key, covered_by = %by, "alarm not alerted: the monitor paged for it");
                    return Ok(
                        json!({"incident": key, "alarm": notice.incident.category, "alerted": false, "coveredBy": by}),
                    );
                }
            }
            let raised = raise(store, alerts, cluster, &config.runbook_base_url, &notice, now)
                .await
                .map_err(|e| fail(&e))?;
            let alerted = raised != Raised::AlreadyOpen;
            Ok(json!({"incident": key, "alarm": notice.incident.category, "alerted": alerted}))
        }
        Ok(AlarmChange::Clear { key }) => {
            let cleared = clear(store, alerts, cluster, &config.runbook_base_url, &key, now)
                .await
                .map_err(|e| fail(&e))?;
            Ok(match cleared {
                Cleared::NotOpen => json!({"incident": key, "resolved": false, "reason": "no open incident"}),
                Cleared::ResolvedElsewhere => {
                    json!({"incident": key, "resolved": false, "reason": "resolved by another invocation"})
                }
                Cleared::ResolvedSilently => json!({"incident": key, "resolved": true, "alerted": false}),
                Cleared::Resolved => json!({"incident": key, "resolved": true}),
            })
        }
    }
}

/// `alarmState`'s `main`.
pub async fn main() -> Result<(), lambda_runtime::Error> {
    use lambda_runtime::{LambdaEvent, service_fn};

    let (config, store, alerts) = crate::ecs_task_state::setup().await?;
    let catalogue = alarm_catalogue();
    let (config, catalogue, store, alerts) = (&config, &catalogue, &store, &alerts);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let now = crate::now_millis();
        handle(config, catalogue, store, alerts, &event.payload, now)
            .await
            .map_err(Diagnostic::from)
    }))
    .await
}
