//! What a monitor run found: categories, severities and findings.

use serde::Serialize;

use super::cause::{Cause, RootCause};

/// How urgent a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; never alerted on its own.
    Info,
    /// Someone should look soon.
    Warning,
    /// Page someone.
    Critical,
}

impl Severity {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    /// The severity of a stable name (as stored on an incident).
    pub fn from_name(name: &str) -> Option<Severity> {
        [Severity::Info, Severity::Warning, Severity::Critical]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// The Connect health categories of DESIGN.md "Stable contracts".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// No worker answered.
    WorkerUnreachable,
    /// A rebalance or restart is under way (409, RESTARTING): transient.
    WorkerRebalancing,
    /// A desired connector is absent.
    ConnectorMissing,
    /// The connector instance FAILED.
    ConnectorFailed,
    /// A task FAILED.
    TaskFailed,
    /// PAUSED or STOPPED on purpose: reported, never resumed.
    ConnectorPaused,
    /// A task stayed UNASSIGNED for several runs.
    TaskUnassigned,
    /// The running config differs from the desired one.
    ConfigDrift,
    /// The same failure came back after the restart budget: restarts stopped.
    RestartExhausted,
    /// Every task RUNNING, records waiting, and no progress committed for several runs.
    ConsumerStalled,
    /// The oldest waiting record is older than the lag threshold.
    ConsumerLagging,
    /// The connector's reads (its lag) did not finish inside the run's deadline.
    Unjudged,
    /// ECS: the container ran out of memory.
    OomKilled,
    /// ECS: the image could not be pulled.
    ImagePullFailed,
    /// ECS: secrets, logs or the network interface could not be set up.
    ResourceInitFailed,
    /// ECS: the container failed its health checks.
    HealthCheckFailed,
    /// ECS: the essential container exited with another code.
    ContainerExited,
    /// ECS: Spot interruption, maintenance or task retirement.
    PlatformInterruption,
    /// ECS: the service scheduler replaced the task (deployment, scale-in).
    DeploymentReplaced,
    /// ECS: someone stopped the task.
    UserStopped,
    /// ECS: a stop no rule explains.
    UnknownStop,
    /// A CloudWatch alarm; the incident carries the catalogue's alarm id as its category.
    Alarm,
    /// A verified window of a sink's topic differs from its table (`verifySinks`).
    SinkDiverged,
}

impl Category {
    /// The stable id, also the runbook page name.
    pub fn id(self) -> &'static str {
        match self {
            Category::WorkerUnreachable => "worker-unreachable",
            Category::WorkerRebalancing => "worker-rebalancing",
            Category::ConnectorMissing => "connector-missing",
            Category::ConnectorFailed => "connector-failed",
            Category::TaskFailed => "task-failed",
            Category::ConnectorPaused => "connector-paused",
            Category::TaskUnassigned => "task-unassigned",
            Category::ConfigDrift => "config-drift",
            Category::RestartExhausted => "restart-exhausted",
            Category::ConsumerStalled => "consumer-stalled",
            Category::ConsumerLagging => "consumer-lagging",
            Category::Unjudged => "unjudged",
            Category::OomKilled => "oom-killed",
            Category::ImagePullFailed => "image-pull-failed",
            Category::ResourceInitFailed => "resource-init-failed",
            Category::HealthCheckFailed => "health-check-failed",
            Category::ContainerExited => "container-exited",
            Category::PlatformInterruption => "platform-interruption",
            Category::DeploymentReplaced => "deployment-replaced",
            Category::UserStopped => "user-stopped",
            Category::UnknownStop => "unknown-stop",
            Category::Alarm => "alarm",
            Category::SinkDiverged => "sink-diverged",
        }
    }

    /// The Connect health categories: `testConnectors` owns their incidents.
    pub const CONNECT: [Category; 12] = [
        Category::WorkerUnreachable,
        Category::WorkerRebalancing,
        Category::ConnectorMissing,
        Category::ConnectorFailed,
        Category::TaskFailed,
        Category::ConnectorPaused,
        Category::TaskUnassigned,
        Category::ConfigDrift,
        Category::RestartExhausted,
        Category::ConsumerStalled,
        Category::ConsumerLagging,
        Category::Unjudged,
    ];

    /// The ECS task stop categories: `ecsTaskState` owns their incidents.
    pub const ECS: [Category; 9] = [
        Category::OomKilled,
        Category::ImagePullFailed,
        Category::ResourceInitFailed,
        Category::HealthCheckFailed,
        Category::ContainerExited,
        Category::PlatformInterruption,
        Category::DeploymentReplaced,
        Category::UserStopped,
        Category::UnknownStop,
    ];

    /// The sinks' own checks: `verifySinks` owns their incidents.
    pub const SINK: [Category; 1] = [Category::SinkDiverged];

    /// Whether `testConnectors` owns incidents of this category id (ECS and alarm incidents are
    /// opened and resolved by their own handlers).
    pub fn is_connect_health(id: &str) -> bool {
        Self::CONNECT.iter().any(|c| c.id() == id)
    }

    /// Whether the category id is an ECS task stop.
    pub fn is_ecs_stop(id: &str) -> bool {
        Self::ECS.iter().any(|c| c.id() == id)
    }

    /// The severity a finding of this category has.
    pub fn severity(self) -> Severity {
        match self {
            Category::WorkerUnreachable
            | Category::ConnectorFailed
            | Category::TaskFailed
            | Category::ConnectorMissing
            | Category::RestartExhausted
            | Category::ConsumerStalled
            | Category::OomKilled
            | Category::ImagePullFailed
            | Category::ResourceInitFailed
            | Category::HealthCheckFailed
            | Category::ContainerExited => Severity::Critical,
            Category::ConnectorPaused
            | Category::TaskUnassigned
            | Category::ConfigDrift
            | Category::ConsumerLagging
            | Category::Unjudged
            | Category::PlatformInterruption
            | Category::UnknownStop
            | Category::Alarm
            | Category::SinkDiverged => Severity::Warning,
            Category::WorkerRebalancing | Category::DeploymentReplaced | Category::UserStopped => Severity::Info,
        }
    }
}

/// One thing a run found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What kind of problem.
    pub category: Category,
    /// How urgent.
    pub severity: Severity,
    /// The connector, when it is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
    /// The task, when it is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<i32>,
    /// Another subject than a connector (an ECS task: `task/<id>`), for the key and subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The worker that reported it (`host:port`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// The root cause, for failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
    /// The root cause line and fingerprint, for failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<RootCause>,
    /// One human sentence.
    pub summary: String,
    /// The raw detail (the full trace of a failure), for alerts; not in the report.
    #[serde(skip)]
    pub detail: Option<String>,
    /// What the monitor did or will do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Muted: recorded, no action, no alert.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub muted: bool,
    /// Alerted as part of a cluster incident of one cause (`cause/<id>`), not on its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grouped: Option<String>,
    /// For restart n of a failure, what restarts 1..n-1 of it were (the audit trail's lines).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<String>,
    /// For a cluster finding of one cause, the connectors it is about.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// The run decided to stand back from this connector (the audit trail records it once).
    #[serde(skip)]
    pub hold: Option<Hold>,
}

/// Why a run stands back from a connector, besides a mute (which [`Finding::muted`] carries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Restarts stopped: the failure came back after the budget (or failures took turns).
    GaveUp,
    /// An operator deleted it (`connectorctl delete`): left deleted.
    LeftDeleted,
}

impl Finding {
    /// A finding of `category` with its default severity.
    pub fn new(category: Category, summary: impl Into<String>) -> Self {
        Finding {
            category,
            severity: category.severity(),
            connector: None,
            task: None,
            resource: None,
            worker: None,
            cause: None,
            root: None,
            summary: summary.into(),
            detail: None,
            action: None,
            muted: false,
            grouped: None,
            earlier: Vec::new(),
            members: Vec::new(),
            hold: None,
        }
    }

    /// The dedup key of the incident this finding belongs to: category and subject.
    pub fn incident_key(&self, cluster: &str) -> String {
        let mut key = format!("{}:{cluster}", self.category.id());
        if let Some(c) = &self.connector {
            key.push('/');
            key.push_str(c);
        }
        if let Some(t) = self.incident_task() {
            key.push_str(&format!("/{t}"));
        }
        if let Some(r) = &self.resource {
            key.push('/');
            key.push_str(r);
        }
        key
    }

    /// The task its incident is about: none for a failed task, whose incident is its
    /// connector's (one page for a connector whatever the number of its tasks that failed).
    pub fn incident_task(&self) -> Option<i32> {
        match self.category {
            Category::TaskFailed => None,
            _ => self.task,
        }
    }

    /// Whether it is worth an alert: warnings and criticals that are not muted.
    pub fn is_alertable(&self) -> bool {
        self.severity >= Severity::Warning && !self.muted && self.grouped.is_none()
    }
}
