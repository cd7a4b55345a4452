//! Operators' actions in the monitor's audit trail, beside the monitor's own: who (the caller's
//! identity from STS), what, on which connector. `connectorctl history` shows both.

use std::time::Duration;

use connector_adapters::now_millis;
use connector_core::error_chain;
use connector_core::monitor::audit::{AuditEntry, AuditKind};
use connector_core::monitor::ports::MonitorStore;

use crate::cluster::{sdk, store};
use crate::context::Context;

/// How long STS gets to say who is calling.
const WHO_TIMEOUT: Duration = Duration::from_secs(5);

/// `connectorctl (<caller ARN>)`; when STS cannot say, the local user and why not, so that the
/// entry is still written and says how much it knows.
pub async fn operator(ctx: &Context) -> String {
    let sts = aws_sdk_sts::Client::new(&sdk(ctx).await);
    let asked = tokio::time::timeout(WHO_TIMEOUT, sts.get_caller_identity().send()).await;
    let user = std::env::var("USER").ok().filter(|u| !u.is_empty());
    match asked {
        Ok(Ok(identity)) if identity.arn().is_some() => {
            format!("connectorctl ({})", identity.arn().unwrap_or_default())
        }
        Ok(Ok(_)) => format!("connectorctl ({}; STS named no ARN)", user.unwrap_or_default()),
        Ok(Err(e)) => format!(
            "connectorctl ({}; STS: {})",
            user.unwrap_or_else(|| "unknown".into()),
            error_chain(&e)
        ),
        Err(_) => format!(
            "connectorctl ({}; STS did not answer in {} s)",
            user.unwrap_or_else(|| "unknown".into()),
            WHO_TIMEOUT.as_secs()
        ),
    }
}

/// Records an action an operator took on `connector`, when the context names the monitor's
/// state. The action is done by then: a trail that cannot be written is a warning on stderr,
/// not a failure of the command.
pub async fn record(ctx: &Context, connector: &str, kind: AuditKind, outcome: &str) {
    let Some((store, cluster)) = store(ctx).await else {
        return;
    };
    let entry = AuditEntry::by_operator(&cluster, connector, kind, &operator(ctx).await, outcome, now_millis());
    if let Err(e) = store.record_audit(&cluster, &entry).await {
        eprintln!(
            "warning: {} {connector} was done but not written to the audit trail: {}",
            kind.as_str(),
            error_chain(&e)
        );
    }
}
