//! A small Kafka Connect emulator: the REST endpoints the monitor and the control functions use,
//! shaped as `../shared/reference/kafka-connect-rest.md` describes them, and able to do what a
//! real worker cannot be made to do on demand: hang, answer 500 or 409, stay not ready, lack
//! KIP-745 (restart answers 204), fail again after every restart.
//!
//! Scenarios a real worker can also play run against both (`tests/emulator_fidelity.rs`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};

/// How the emulator misbehaves.
#[derive(Debug, Clone)]
pub struct Faults {
    /// Every request waits an hour (the client's timeout must end it).
    pub hang: bool,
    /// Every request answers 500.
    pub fail_500: bool,
    /// The next N write requests answer 409 (a rebalance).
    pub conflicts: u32,
    /// `/health` answers 503 (starting).
    pub not_ready: bool,
    /// The next N restart requests (connector or task) answer 500.
    pub fail_restarts: u32,
    /// KIP-745 support: without it, `restart?includeTasks=...` answers 204 and restarts only the
    /// connector instance, as a worker before 3.0 does.
    pub kip745: bool,
    /// No offsets API (KIP-875): `GET /connectors/{name}/offsets` answers Jersey's 404, as a
    /// worker before 3.5 does.
    pub no_offsets_api: bool,
    /// Every request is answered this much later (a worker across a network).
    pub latency: Duration,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            hang: false,
            fail_500: false,
            conflicts: 0,
            not_ready: false,
            fail_restarts: 0,
            kip745: true,
            no_offsets_api: false,
            latency: Duration::ZERO,
        }
    }
}

/// One connector as the emulator keeps it.
#[derive(Debug, Clone)]
pub struct Connector {
    /// Its config (with `name`).
    pub config: BTreeMap<String, String>,
    /// Connector state.
    pub state: String,
    /// Connector trace when FAILED.
    pub trace: Option<String>,
    /// Per task: state and trace.
    pub tasks: Vec<(String, Option<String>)>,
    /// A restart does not help: FAILED entries fail again with the same trace.
    pub sticky: bool,
}

#[derive(Debug, Default)]
struct Inner {
    connectors: BTreeMap<String, Connector>,
    faults: Faults,
    /// Every restart request, in order: `name` or `name/<task>`.
    restarts: Vec<String>,
    /// Connectors the list leaves out though they exist, as a worker still reading its config
    /// topic can (reference §3.3, §8): `GET /connectors/{name}/status` still finds them.
    hidden: std::collections::BTreeSet<String>,
    /// The committed offsets of each sink connector's consumer group: (topic, partition, offset).
    offsets: BTreeMap<String, Vec<(String, i32, i64)>>,
    /// Requests answered, by endpoint.
    calls: BTreeMap<&'static str, u64>,
}

/// A running emulator on a loopback port.
#[derive(Clone)]
pub struct Emulator {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    worker_id: String,
}

type Shared = (Arc<Mutex<Inner>>, String);

impl Emulator {
    /// Starts an emulator on a free loopback port; it runs until the test's runtime ends.
    pub async fn start() -> Emulator {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let inner = Arc::new(Mutex::new(Inner {
            faults: Faults::default(),
            ..Default::default()
        }));
        let worker_id = addr.to_string();
        let shared: Shared = (inner.clone(), worker_id.clone());
        let app = Router::new()
            .route("/", get(root))
            .route("/health", get(health))
            .route("/connectors", get(list))
            .route("/connectors/{name}", axum::routing::delete(delete))
            .route("/connectors/{name}/status", get(status))
            .route("/connectors/{name}/config", put(put_config))
            .route("/connectors/{name}/restart", post(restart))
            .route("/connectors/{name}/tasks/{id}/restart", post(restart_task))
            .route("/connectors/{name}/offsets", get(offsets))
            .route("/connectors/{name}/{verb}", put(target_state))
            .with_state(shared);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Emulator {
            url: format!("http://{addr}"),
            inner,
            worker_id,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Sets the committed offsets `name`'s consumer group has: (topic, partition, offset).
    pub fn set_offsets(&self, name: &str, offsets: &[(String, i32, i64)]) {
        self.with(|i| i.offsets.insert(name.to_string(), offsets.to_vec()));
    }

    /// The requests answered so far, by endpoint (`list`, `status`, `offsets`, `restart`, ...).
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.with(|i| i.calls.iter().map(|(k, v)| (k.to_string(), *v)).collect())
    }

    /// Replaces the faults.
    pub fn set_faults(&self, faults: Faults) {
        self.with(|i| i.faults = faults);
    }

    /// Adds or replaces a connector with `tasks` RUNNING tasks.
    pub fn add_running(&self, name: &str, config: &BTreeMap<String, String>, tasks: usize) {
        let mut config = config.clone();
        config.insert("name".into(), name.into());
        let c = Connector {
            config,
            state: "RUNNING".into(),
            trace: None,
            tasks: vec![("RUNNING".into(), None); tasks],
            sticky: false,
        };
        self.with(|i| i.connectors.insert(name.to_string(), c));
    }

    /// Makes a task FAILED with `trace`; with `sticky`, restarts do not help.
    pub fn fail_task(&self, name: &str, task: usize, trace: &str, sticky: bool) {
        self.with(|i| {
            if let Some(c) = i.connectors.get_mut(name) {
                c.tasks[task] = ("FAILED".into(), Some(trace.to_string()));
                c.sticky = sticky;
            }
        });
    }

    /// Sets the connector's own state (PAUSED, STOPPED, FAILED with a trace...).
    pub fn set_state(&self, name: &str, state: &str, trace: Option<&str>) {
        self.with(|i| {
            if let Some(c) = i.connectors.get_mut(name) {
                c.state = state.into();
                c.trace = trace.map(String::from);
            }
        });
    }

    /// Leaves `name` out of `GET /connectors` (it still exists).
    pub fn hide_from_list(&self, name: &str) {
        self.with(|i| {
            i.hidden.insert(name.to_string());
        });
    }

    /// The restart requests received so far.
    pub fn restarts(&self) -> Vec<String> {
        self.with(|i| i.restarts.clone())
    }

    /// The connector as the emulator holds it.
    pub fn connector(&self, name: &str) -> Option<Connector> {
        self.with(|i| i.connectors.get(name).cloned())
    }

    /// The worker id it reports (`127.0.0.1:<port>`).
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({"error_code": status.as_u16(), "message": message.into()})),
    )
        .into_response()
}

/// Counts a request to the endpoint `what` and applies the faults to it; `write` requests can
/// also meet a 409.
async fn fault(shared: &Shared, what: &'static str, write: bool) -> Option<Response> {
    let (hang, fail, conflict, latency) = {
        let mut i = shared.0.lock().unwrap_or_else(|e| e.into_inner());
        *i.calls.entry(what).or_default() += 1;
        let conflict = write && i.faults.conflicts > 0;
        if conflict {
            i.faults.conflicts -= 1;
        }
        (i.faults.hang, i.faults.fail_500, conflict, i.faults.latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if hang {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    if fail {
        return Some(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Request timed out. The worker is currently ensuring membership in the cluster",
        ));
    }
    if conflict {
        return Some(error(
            StatusCode::CONFLICT,
            "Cannot complete request momentarily due to no known leader URL, likely because a rebalance was underway.",
        ));
    }
    None
}

fn status_body(name: &str, c: &Connector, worker: &str) -> Value {
    let mut connector = json!({"state": c.state, "worker_id": worker});
    if let Some(t) = &c.trace {
        connector["trace"] = json!(t);
    }
    let tasks: Vec<Value> = if c.state == "STOPPED" {
        Vec::new()
    } else {
        c.tasks
            .iter()
            .enumerate()
            .map(|(id, (state, trace))| {
                let mut t = json!({"id": id, "state": state, "worker_id": worker});
                if let Some(trace) = trace {
                    t["trace"] = json!(trace);
                }
                t
            })
            .collect()
    };
    json!({"name": name, "connector": connector, "tasks": tasks, "type": "sink"})
}

fn info_body(name: &str, c: &Connector) -> Value {
    let tasks: Vec<Value> = (0..c.tasks.len())
        .map(|t| json!({"connector": name, "task": t}))
        .collect();
    json!({"name": name, "config": c.config, "tasks": tasks, "type": "sink"})
}

async fn root(State(s): State<Shared>) -> Response {
    if let Some(r) = fault(&s, "root", false).await {
        return r;
    }
    axum::Json(json!({"version": "4.3.1-emulator", "commit": "emulator", "kafka_cluster_id": "emulated"}))
        .into_response()
}

/// The offsets API (KIP-875): a sink connector's committed offsets, as a 3.5+ worker gives
/// them. With `no_offsets_api`, Jersey's 404 for a path no resource serves, as before 3.5.
async fn offsets(State(s): State<Shared>, Path(name): Path<String>) -> Response {
    if let Some(r) = fault(&s, "offsets", false).await {
        return r;
    }
    let i = s.0.lock().unwrap_or_else(|e| e.into_inner());
    if i.faults.no_offsets_api {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error_code": 404, "message": "HTTP 404 Not Found"})),
        )
            .into_response();
    }
    if !i.connectors.contains_key(&name) {
        return error(StatusCode::NOT_FOUND, format!("Connector {name} not found"));
    }
    let offsets: Vec<Value> = i
        .offsets
        .get(&name)
        .into_iter()
        .flatten()
        .map(|(topic, partition, offset)| {
            json!({
                "partition": {"kafka_topic": topic, "kafka_partition": partition},
                "offset": {"kafka_offset": offset},
            })
        })
        .collect();
    axum::Json(json!({"offsets": offsets})).into_response()
}

async fn health(State(s): State<Shared>) -> Response {
    if let Some(r) = fault(&s, "health", false).await {
        return r;
    }
    let ready = !s.0.lock().unwrap_or_else(|e| e.into_inner()).faults.not_ready;
    if ready {
        axum::Json(
            json!({"status": "healthy", "message": "Worker has completed startup and is ready to handle requests."}),
        )
        .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "starting", "message": "Worker is still starting up."})),
        )
            .into_response()
    }
}

async fn list(State(s): State<Shared>, RawQuery(query): RawQuery) -> Response {
    if let Some(r) = fault(&s, "list", false).await {
        return r;
    }
    let query = query.unwrap_or_default();
    let expands: Vec<&str> = query.split('&').filter_map(|p| p.strip_prefix("expand=")).collect();
    let i = s.0.lock().unwrap_or_else(|e| e.into_inner());
    let listed = i.connectors.iter().filter(|(name, _)| !i.hidden.contains(*name));
    if expands.is_empty() {
        return axum::Json(json!(listed.map(|(name, _)| name).collect::<Vec<_>>())).into_response();
    }
    let mut out = serde_json::Map::new();
    for (name, c) in listed {
        let mut entry = serde_json::Map::new();
        if expands.contains(&"status") {
            entry.insert("status".into(), status_body(name, c, &s.1));
        }
        if expands.contains(&"info") {
            entry.insert("info".into(), info_body(name, c));
        }
        out.insert(name.clone(), Value::Object(entry));
    }
    axum::Json(Value::Object(out)).into_response()
}

async fn status(State(s): State<Shared>, Path(name): Path<String>) -> Response {
    if let Some(r) = fault(&s, "status", false).await {
        return r;
    }
    let i = s.0.lock().unwrap_or_else(|e| e.into_inner());
    match i.connectors.get(&name) {
        Some(c) => axum::Json(status_body(&name, c, &s.1)).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("No status found for connector {name}")),
    }
}

async fn put_config(
    State(s): State<Shared>,
    Path(name): Path<String>,
    axum::Json(mut config): axum::Json<BTreeMap<String, String>>,
) -> Response {
    if let Some(r) = fault(&s, "config", true).await {
        return r;
    }
    if !config.contains_key("connector.class") {
        return error(
            StatusCode::BAD_REQUEST,
            "Connector config {} contains no connector type",
        );
    }
    config.insert("name".into(), name.clone());
    let mut i = s.0.lock().unwrap_or_else(|e| e.into_inner());
    let tasks: usize = config.get("tasks.max").and_then(|t| t.parse().ok()).unwrap_or(1);
    let created = !i.connectors.contains_key(&name);
    let c = Connector {
        config,
        state: "RUNNING".into(),
        trace: None,
        tasks: vec![("RUNNING".into(), None); tasks],
        sticky: false,
    };
    let body = info_body(&name, &c);
    i.connectors.insert(name, c);
    (
        if created { StatusCode::CREATED } else { StatusCode::OK },
        axum::Json(body),
    )
        .into_response()
}

async fn delete(State(s): State<Shared>, Path(name): Path<String>) -> Response {
    if let Some(r) = fault(&s, "delete", true).await {
        return r;
    }
    match s.0.lock().unwrap_or_else(|e| e.into_inner()).connectors.remove(&name) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => error(StatusCode::NOT_FOUND, format!("Connector {name} not found")),
    }
}

/// A restarted entry comes back RUNNING, or FAILED again (same trace) when the fault is sticky.
fn restart_entry(state: &mut String, trace: &mut Option<String>, sticky: bool) {
    if state == "FAILED" && !sticky {
        *state = "RUNNING".into();
        *trace = None;
    }
}

async fn restart(State(s): State<Shared>, Path(name): Path<String>, RawQuery(query): RawQuery) -> Response {
    if let Some(r) = fault(&s, "restart", true).await {
        return r;
    }
    let query = query.unwrap_or_default();
    let flag = |k: &str| query.split('&').any(|p| p.eq_ignore_ascii_case(&format!("{k}=true")));
    let mut i = s.0.lock().unwrap_or_else(|e| e.into_inner());
    let kip745 = i.faults.kip745;
    i.restarts.push(name.clone());
    if i.faults.fail_restarts > 0 {
        i.faults.fail_restarts -= 1;
        return error(StatusCode::INTERNAL_SERVER_ERROR, "Failed to restart connector");
    }
    let Some(c) = i.connectors.get_mut(&name) else {
        return error(StatusCode::NOT_FOUND, format!("Unknown connector: {name}"));
    };
    let sticky = c.sticky;
    if !kip745 || (!flag("includeTasks") && !flag("onlyFailed")) {
        restart_entry(&mut c.state, &mut c.trace, sticky);
        return StatusCode::NO_CONTENT.into_response();
    }
    // The plan marks what will restart; the emulator applies it at once.
    let mut plan = status_body(&name, c, &s.1);
    for (id, (state, _)) in c.tasks.iter().enumerate() {
        if state == "FAILED" || !flag("onlyFailed") {
            plan["tasks"][id]["state"] = json!("RESTARTING");
        }
    }
    restart_entry(&mut c.state, &mut c.trace, sticky);
    if flag("includeTasks") {
        for (state, trace) in c.tasks.iter_mut() {
            restart_entry(state, trace, sticky);
        }
    }
    (StatusCode::ACCEPTED, axum::Json(plan)).into_response()
}

async fn restart_task(State(s): State<Shared>, Path((name, id)): Path<(String, usize)>) -> Response {
    if let Some(r) = fault(&s, "task-restart", true).await {
        return r;
    }
    let mut i = s.0.lock().unwrap_or_else(|e| e.into_inner());
    i.restarts.push(format!("{name}/{id}"));
    if i.faults.fail_restarts > 0 {
        i.faults.fail_restarts -= 1;
        return error(StatusCode::INTERNAL_SERVER_ERROR, "Failed to restart task");
    }
    let Some(c) = i.connectors.get_mut(&name) else {
        return error(StatusCode::NOT_FOUND, format!("Unknown connector: {name}"));
    };
    let sticky = c.sticky;
    match c.tasks.get_mut(id) {
        Some((state, trace)) => {
            restart_entry(state, trace, sticky);
            StatusCode::NO_CONTENT.into_response()
        }
        None => error(StatusCode::NOT_FOUND, format!("Unknown task: {name}-{id}")),
    }
}

async fn target_state(State(s): State<Shared>, Path((name, verb)): Path<(String, String)>) -> Response {
    if let Some(r) = fault(&s, "target-state", verb == "stop").await {
        return r;
    }
    let mut i = s.0.lock().unwrap_or_else(|e| e.into_inner());
    let Some(c) = i.connectors.get_mut(&name) else {
        return error(StatusCode::NOT_FOUND, format!("Unknown connector {name}"));
    };
    match verb.as_str() {
        "pause" => {
            c.state = "PAUSED".into();
            c.tasks.iter_mut().for_each(|t| t.0 = "PAUSED".into());
            StatusCode::ACCEPTED.into_response()
        }
        "resume" => {
            c.state = "RUNNING".into();
            c.tasks.iter_mut().for_each(|t| t.0 = "RUNNING".into());
            StatusCode::ACCEPTED.into_response()
        }
        "stop" => {
            c.state = "STOPPED".into();
            StatusCode::NO_CONTENT.into_response()
        }
        _ => error(StatusCode::NOT_FOUND, "HTTP 404 Not Found"),
    }
}
