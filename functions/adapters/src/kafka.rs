//! [`KafkaBrokers`]: the lag check's view of the Kafka brokers (TLS by rustls). It reads
//! partition ends (Metadata and ListOffsets of its own, [`crate::kafka_wire`]: one request per
//! broker) and one record's timestamp and, for `verify`, a topic's records (`rskafka`); it
//! never joins a consumer group or commits anything.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use connector_core::connect::SinkOffset;
use connector_core::monitor::judge::lag::{BrokerError, Brokers, PartitionEnds};
use connector_core::sink::decode::bytes_field;
use connector_core::sink::verify::{PartitionRange, ReadError, TopicReader};
use connector_core::sink::{Coordinates, SourceRecord};
use rskafka::client::partition::{OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::sync::{Mutex, Semaphore};

use crate::kafka_wire::{Conn, EARLIEST, LATEST, Metadata};

/// Why the brokers' TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("KAFKA_TLS_CA_FILE {path}: {reason}")]
pub struct TlsSetupError {
    /// The file.
    pub path: String,
    /// What was wrong.
    pub reason: String,
}

/// Requests to one cluster's brokers in flight at once, over every connector read together.
pub const REQUESTS_IN_FLIGHT: usize = 16;

/// ListOffsets requests in flight at once to one broker (each on a connection of its own; a
/// broker answers one connection's requests in turn).
pub const BROKER_REQUESTS_IN_FLIGHT: usize = 4;

/// Lag Fetches in flight at once to one broker, on connections apart from ListOffsets'.
pub const BROKER_FETCHES_IN_FLIGHT: usize = 4;

/// Kafka's error codes that say the metadata was stale: unknown topic or partition, leader not
/// available, not the leader, fenced or unknown leader epoch.
const STALE_LEADER: [i16; 5] = [3, 5, 6, 74, 75];

/// One broker's connections: a lane for ListOffsets, another for Fetch, so that a broker
/// hanging on Fetch does not hold back the lag in records.
struct BrokerPool {
    host: String,
    port: i32,
    offsets: Lane,
    fetches: Lane,
}

/// Connections of one kind to one broker, and how many may be in use at once.
struct Lane {
    slots: Semaphore,
    idle: Mutex<Vec<Conn>>,
}

impl Lane {
    fn new(slots: usize) -> Self {
        Lane {
            slots: Semaphore::new(slots),
            idle: Mutex::new(Vec::new()),
        }
    }
}

/// A request to one broker.
#[derive(Clone, Copy)]
enum Ask<'a> {
    /// ListOffsets at an end.
    Offsets(&'a [(String, i32)], i64),
    /// Fetch, for the first record's timestamp at each offset.
    Stamps(&'a [(String, i32, i64)]),
}

/// Its answer.
enum Answer {
    Offsets(Vec<crate::kafka_wire::Offset>),
    Stamps(Vec<crate::kafka_wire::Stamped>),
}

/// The lag's Fetches (the oldest waiting record's timestamp) in flight at once per cluster, in
/// slots of their own: a broker that hangs on Fetch never holds back the ListOffsets and
/// metadata requests that the lag in records needs.
pub const FETCHES_IN_FLIGHT: usize = 8;

/// Once a lag Fetch got no answer, the cluster's lag Fetches are not tried again for this long:
/// the lag in time is unknown for the rest of the run (its lag in records stands), at the cost
/// of one timeout, not one per partition. The next minute's run tries again.
const FETCH_COOL_OFF: Duration = Duration::from_secs(30);

/// A call the broker did not answer within the timeout.
#[derive(Debug, thiserror::Error)]
#[error("no answer within {0} s")]
struct NoAnswer(f64);

/// Whether the broker let `e`'s call time out (rather than refuse or close it).
fn timed_out(e: &BrokerError) -> bool {
    e.source.downcast_ref::<NoAnswer>().is_some()
}

/// `e` again, for another of the partitions one failed request stood for.
fn repeated(e: &BrokerError) -> BrokerError {
    BrokerError {
        what: e.what.clone(),
        source: connector_core::error_chain(e.source.as_ref()).into(),
    }
}

/// The brokers of one cluster. The connections, the metadata (each partition's leader) and
/// each Fetch partition's client are made on first use and kept while they work: a warm
/// function's runs find them ready, and a failed call drops what it went through.
pub struct KafkaBrokers {
    bootstrap: Vec<String>,
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
    client: Mutex<Option<Arc<Client>>>,
    partitions: Mutex<HashMap<(String, i32), Arc<PartitionClient>>>,
    /// The metadata, and the connection to a bootstrap broker that asks for it.
    metadata: Mutex<Option<Arc<Metadata>>>,
    bootstrap_conn: Mutex<Option<Conn>>,
    pools: Mutex<HashMap<i32, Arc<BrokerPool>>>,
    in_flight: Semaphore,
    fetch_slots: Semaphore,
    /// When a lag Fetch last got no answer, and which.
    fetch_hung: std::sync::Mutex<Option<(std::time::Instant, String)>>,
}

impl std::fmt::Debug for KafkaBrokers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaBrokers")
            .field("bootstrap", &self.bootstrap)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// A rustls client config trusting the system's CAs and, where given, those of a PEM file
/// (a private CA, or the test broker's own certificate).
pub fn tls_config(ca_file: Option<&str>) -> Result<Arc<rustls::ClientConfig>, TlsSetupError> {
    let mut roots = rustls::RootCertStore::empty();
    // Some system certificates may not parse; the rest are still trusted.
    let _ = roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(path) = ca_file {
        let fail = |reason: String| TlsSetupError {
            path: path.to_string(),
            reason,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| fail(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| fail(e.to_string()))?;
        if certs.is_empty() {
            return Err(fail("no PEM certificate in it".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| fail(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsSetupError {
            path: ca_file.unwrap_or_default().to_string(),
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

impl KafkaBrokers {
    /// Brokers at `bootstrap` (`host:port,host:port`), over TLS when `tls` is given; each call
    /// is bounded by `timeout`.
    pub fn new(bootstrap: &str, tls: Option<Arc<rustls::ClientConfig>>, timeout: Duration) -> Self {
        Self {
            bootstrap: bootstrap
                .split(',')
                .map(str::trim)
                .filter(|b| !b.is_empty())
                .map(String::from)
                .collect(),
            tls,
            timeout,
            client: Mutex::new(None),
            partitions: Mutex::new(HashMap::new()),
            metadata: Mutex::new(None),
            bootstrap_conn: Mutex::new(None),
            pools: Mutex::new(HashMap::new()),
            in_flight: Semaphore::new(REQUESTS_IN_FLIGHT),
            fetch_slots: Semaphore::new(FETCHES_IN_FLIGHT),
            fetch_hung: std::sync::Mutex::new(None),
        }
    }

    /// Brokers at `bootstrap` over TLS when `tls` (trusting `ca_file`'s CAs besides the
    /// system's), else in plaintext: what `KAFKA_SECURITY_PROTOCOL` and `KAFKA_TLS_CA_FILE` (or
    /// a context's brokers) say. Fails only when the CA file cannot be used.
    pub fn with_security(
        bootstrap: &str,
        tls: bool,
        ca_file: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, TlsSetupError> {
        let tls = if tls { Some(tls_config(ca_file)?) } else { None };
        Ok(Self::new(bootstrap, tls, timeout))
    }

    fn error(&self, what: String, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> BrokerError {
        BrokerError {
            what: format!("{what} (bootstrap {})", self.bootstrap.join(",")),
            source: source.into(),
        }
    }

    /// Runs a call (rskafka's or ours, `kafka_wire`) within the timeout once one of the
    /// cluster's request slots is free. The wait for a slot is not the broker's fault, so it is
    /// not in the timeout; the caller's deadline bounds it.
    async fn slotted<T, E, F>(&self, what: String, call: F) -> Result<T, BrokerError>
    where
        E: Into<connector_core::sink::ports::BoxError>,
        F: Future<Output = Result<T, E>>,
    {
        // The semaphore is never closed.
        let _slot = self.in_flight.acquire().await;
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.error(what, e)),
            Err(_) => Err(self.error(what, NoAnswer(self.timeout.as_secs_f64()))),
        }
    }

    /// [`Self::slotted`] for a call through the cluster's own connection (connect, metadata):
    /// when it fails, the connection and all that was learnt through it are dropped, so the
    /// next call starts afresh (a broker replaced, a new leader).
    async fn bounded<T, F>(&self, what: String, call: F) -> Result<T, BrokerError>
    where
        F: Future<Output = Result<T, rskafka::client::error::Error>>,
    {
        let out = self.slotted(what, call).await;
        if out.is_err() {
            *self.client.lock().await = None;
            self.partitions.lock().await.clear();
        }
        out
    }

    /// [`Self::slotted`] for a call to one partition's leader: when it fails, only that
    /// partition's client is dropped (its leader is found again next time), so one partition's
    /// hung broker does not cost the others their connections.
    async fn on_partition<T, F>(&self, (topic, partition): (&str, i32), what: String, call: F) -> Result<T, BrokerError>
    where
        F: Future<Output = Result<T, rskafka::client::error::Error>>,
    {
        let out = self.slotted(what, call).await;
        if out.is_err() {
            self.partitions.lock().await.remove(&(topic.to_string(), partition));
        }
        out
    }

    /// The client of `topic`-`partition`, its leader found on first use.
    async fn partition(&self, topic: &str, partition: i32) -> Result<Arc<PartitionClient>, BrokerError> {
        let key = (topic.to_string(), partition);
        if let Some(pc) = self.partitions.lock().await.get(&key) {
            return Ok(Arc::clone(pc));
        }
        let client = self.client().await?;
        let what = format!("cannot find the leader of {topic}-{partition}");
        let pc = Arc::new(
            self.bounded(
                what,
                client.partition_client(topic.to_string(), partition, UnknownTopicHandling::Error),
            )
            .await?,
        );
        self.partitions.lock().await.insert(key, Arc::clone(&pc));
        Ok(pc)
    }

    /// The metadata: every topic, its partitions and their leaders, and the brokers. Kept until
    /// a topic asked for is not in it (created since), a leader moved or a call failed, so that
    /// a run's connectors share one metadata request.
    async fn metadata(&self, wanted: &[String]) -> Result<Arc<Metadata>, BrokerError> {
        if let Some(meta) = self.metadata.lock().await.clone()
            && wanted.iter().all(|t| meta.topics.contains_key(t))
        {
            return Ok(meta);
        }
        let mut conn = self.bootstrap_conn.lock().await;
        // Another connector's read may have asked while this one waited.
        if let Some(meta) = self.metadata.lock().await.clone()
            && wanted.iter().all(|t| meta.topics.contains_key(t))
        {
            return Ok(meta);
        }
        let kept = conn.take();
        let reused = kept.is_some();
        let mut c = match kept {
            Some(c) => c,
            None => self.slotted("cannot connect".into(), self.connect_bootstrap()).await?,
        };
        let mut asked = self.slotted("cannot read the metadata".into(), c.metadata()).await;
        // A kept connection the broker closed since (it restarted): once more on a new one.
        if reused && asked.as_ref().is_err_and(|e| !timed_out(e)) {
            c = self.slotted("cannot connect".into(), self.connect_bootstrap()).await?;
            asked = self.slotted("cannot read the metadata".into(), c.metadata()).await;
        }
        // On failure the connection is dropped: the next call connects afresh.
        let meta = Arc::new(asked?);
        *conn = Some(c);
        *self.metadata.lock().await = Some(Arc::clone(&meta));
        Ok(meta)
    }

    /// Every offset consumer group `group` has committed (`connect-<connector>` for a sink),
    /// asked of its coordinator: what a connector of another Connect cluster (the old service's)
    /// has delivered, whatever that worker's version.
    pub async fn committed(&self, group: &str) -> Result<Vec<SinkOffset>, BrokerError> {
        let read = async {
            let mut bootstrap = self.connect_bootstrap().await?;
            let (host, port) = bootstrap.group_coordinator(group).await?;
            let mut coordinator = Conn::connect(&host, port, self.tls.as_ref()).await?;
            coordinator.committed(group).await
        };
        let offsets = self
            .slotted(format!("cannot read the commits of group {group}"), read)
            .await?;
        Ok(offsets
            .into_iter()
            .map(|(topic, partition, offset)| SinkOffset {
                topic,
                partition,
                offset,
            })
            .collect())
    }

    /// A connection to the first bootstrap broker that takes one.
    async fn connect_bootstrap(&self) -> std::io::Result<Conn> {
        let mut last = std::io::Error::other("no bootstrap broker given");
        for server in &self.bootstrap {
            let Some((host, port)) = server.rsplit_once(':') else {
                last = std::io::Error::other(format!("{server} is not host:port"));
                continue;
            };
            let port = port.parse().unwrap_or(-1);
            match Conn::connect(host, port, self.tls.as_ref()).await {
                Ok(conn) => return Ok(conn),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// One request to broker `node`, on one of its connections of the request's lane.
    async fn on_broker(&self, meta: &Metadata, node: i32, what: String, ask: Ask<'_>) -> Result<Answer, BrokerError> {
        let pool = {
            let mut pools = self.pools.lock().await;
            match pools.get(&node) {
                Some(pool) => Arc::clone(pool),
                None => {
                    let Some((host, port)) = meta.brokers.get(&node).cloned() else {
                        return Err(self.error(what, format!("the metadata names no broker {node}")));
                    };
                    let pool = Arc::new(BrokerPool {
                        host,
                        port,
                        offsets: Lane::new(BROKER_REQUESTS_IN_FLIGHT),
                        fetches: Lane::new(BROKER_FETCHES_IN_FLIGHT),
                    });
                    pools.insert(node, Arc::clone(&pool));
                    pool
                }
            }
        };
        let lane = match ask {
            Ask::Offsets(..) => &pool.offsets,
            Ask::Stamps(_) => &pool.fetches,
        };
        // The semaphore is never closed.
        let _slot = lane.slots.acquire().await;
        // A Fetch that queued here behind a hung one is not sent.
        if let (Ask::Stamps(_), Some(earlier)) = (&ask, self.fetch_hung()) {
            return Err(self.error(
                what,
                format!("not tried: a Fetch got no answer moments ago ({earlier})"),
            ));
        }
        let idle = lane.idle.lock().await.pop();
        let reused = idle.is_some();
        let mut asked = self.slotted(what.clone(), self.ask(&pool, idle, ask)).await;
        // A kept connection the broker closed since (it restarted): once more on a new one. A
        // timeout is not retried: the broker is slow, not gone.
        if reused && asked.as_ref().is_err_and(|e| !timed_out(e)) {
            asked = self.slotted(what, self.ask(&pool, None, ask)).await;
        }
        // A connection that failed is dropped; a good one goes back for the next request.
        let (conn, answer) = asked?;
        lane.idle.lock().await.push(conn);
        Ok(answer)
    }

    /// `ask` on `conn`, or on a new connection to the pool's broker.
    async fn ask(&self, pool: &BrokerPool, conn: Option<Conn>, ask: Ask<'_>) -> std::io::Result<(Conn, Answer)> {
        let mut conn = match conn {
            Some(conn) => conn,
            None => Conn::connect(&pool.host, pool.port, self.tls.as_ref()).await?,
        };
        let answer = match ask {
            Ask::Offsets(partitions, at) => Answer::Offsets(conn.list_offsets(partitions, at).await?),
            Ask::Stamps(wanted) => Answer::Stamps(conn.first_timestamps(wanted).await?),
        };
        Ok((conn, answer))
    }

    /// The offsets at `at` of `partitions`, all led by broker `node`: one request.
    async fn offsets_on(
        &self,
        meta: &Metadata,
        node: i32,
        partitions: &[(String, i32)],
        at: i64,
    ) -> Result<Vec<crate::kafka_wire::Offset>, BrokerError> {
        let which = if at == EARLIEST { "earliest" } else { "latest" };
        let what = format!(
            "cannot read the {which} offsets of {} partition(s) from broker {node}",
            partitions.len()
        );
        match self.on_broker(meta, node, what, Ask::Offsets(partitions, at)).await? {
            Answer::Offsets(offsets) => Ok(offsets),
            Answer::Stamps(_) => unreachable!("ListOffsets is answered by offsets"),
        }
    }

    /// The first timestamps at `wanted` (partitions broker `node` leads): one Fetch, and one more
    /// for each partition whose first batch did not come whole beside the others. A Fetch that
    /// gets no answer stops the cluster's lag Fetches for [`FETCH_COOL_OFF`].
    async fn stamps_on(
        &self,
        meta: &Metadata,
        node: i32,
        wanted: &[(String, i32, i64)],
    ) -> Vec<Result<Option<i64>, BrokerError>> {
        let mut out: Vec<Option<Result<Option<i64>, BrokerError>>> = wanted.iter().map(|_| None).collect();
        let mut ask: Vec<usize> = (0..wanted.len()).collect();
        // At most twice: together, then each partition that did not come whole, alone.
        for round in 0..2 {
            if ask.is_empty() {
                break;
            }
            let subsets: Vec<Vec<usize>> = if round == 0 {
                vec![ask.clone()]
            } else {
                ask.iter().map(|i| vec![*i]).collect()
            };
            let mut again = Vec::new();
            for subset in subsets {
                let asked: Vec<(String, i32, i64)> = subset.iter().map(|i| wanted[*i].clone()).collect();
                let what = format!(
                    "cannot read the oldest waiting record of {} from broker {node}",
                    asked
                        .iter()
                        .map(|(t, p, o)| format!("{t}-{p}@{o}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                // The latch is checked once both slots are held (in on_broker): Fetches queued
                // behind a hung one are not sent.
                let _slot = self.fetch_slots.acquire().await;
                let stamps = match self.on_broker(meta, node, what.clone(), Ask::Stamps(&asked)).await {
                    Ok(Answer::Stamps(stamps)) => stamps,
                    Ok(Answer::Offsets(_)) => unreachable!("Fetch is answered by records"),
                    Err(e) => {
                        if timed_out(&e) {
                            *self.fetch_hung.lock().unwrap_or_else(|e| e.into_inner()) =
                                Some((std::time::Instant::now(), e.what.clone()));
                        }
                        for i in &subset {
                            out[*i] = Some(Err(repeated(&e)));
                        }
                        continue;
                    }
                };
                for i in subset {
                    let (topic, partition, offset) = &wanted[i];
                    let Some(s) = stamps.iter().find(|s| &s.topic == topic && s.partition == *partition) else {
                        out[i] = Some(Err(self.error(what.clone(), "the broker's answer left it out")));
                        continue;
                    };
                    out[i] = Some(match (&s.timestamp, s.error) {
                        (_, e) if STALE_LEADER.contains(&e) => {
                            *self.metadata.lock().await = None;
                            Err(self.error(
                                what.clone(),
                                format!("broker {node} no longer leads it (Kafka error {e}); the next run asks the new leader"),
                            ))
                        }
                        (_, e) if e != 0 => {
                            Err(self.error(what.clone(), format!("the broker answered Kafka error {e}")))
                        }
                        (Err(why), _) => Err(self.error(what.clone(), why.clone())),
                        // Records wait, but their batch did not come whole beside the others.
                        (Ok(None), _) if round == 0 && s.high_watermark > *offset => {
                            again.push(i);
                            continue;
                        }
                        (Ok(at), _) => Ok(*at),
                    });
                }
            }
            ask = again;
        }
        out.into_iter().map(|r| r.unwrap_or(Ok(None))).collect()
    }

    /// The Fetch that last got no answer, while the cool-off after it lasts.
    fn fetch_hung(&self) -> Option<String> {
        self.fetch_hung
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .filter(|(at, _)| at.elapsed() < FETCH_COOL_OFF)
            .map(|(_, what)| what)
    }

    /// The ends of `topics`' partitions from `meta`'s leaders, or `None` when a broker says the
    /// metadata was stale (a leader moved).
    async fn ends_from(
        &self,
        meta: &Metadata,
        topics: &[String],
    ) -> Result<Option<BTreeMap<(String, i32), PartitionEnds>>, BrokerError> {
        let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
        for topic in topics {
            for (partition, leader) in meta.topics.get(topic).into_iter().flatten() {
                if *leader < 0 {
                    return Err(self.error(
                        format!("cannot read the offsets of {topic}-{partition}"),
                        "it has no leader now",
                    ));
                }
                by_leader.entry(*leader).or_default().push((topic.clone(), *partition));
            }
        }
        // Every broker at once, both ends of all its partitions in two requests.
        let reads = by_leader.iter().map(|(node, partitions)| async move {
            tokio::try_join!(
                self.offsets_on(meta, *node, partitions, EARLIEST),
                self.offsets_on(meta, *node, partitions, LATEST)
            )
        });
        let mut earliest = BTreeMap::new();
        let mut latest = BTreeMap::new();
        for (e, l) in futures_util::future::try_join_all(reads).await? {
            let answers = e
                .into_iter()
                .map(|o| (o, true))
                .chain(l.into_iter().map(|o| (o, false)));
            for (o, is_earliest) in answers {
                let into = if is_earliest { &mut earliest } else { &mut latest };
                if STALE_LEADER.contains(&o.error) {
                    return Ok(None);
                }
                if o.error != 0 {
                    return Err(self.error(
                        format!("cannot read the offsets of {}-{}", o.topic, o.partition),
                        format!("the broker answered Kafka error {}", o.error),
                    ));
                }
                into.insert((o.topic, o.partition), o.offset);
            }
        }
        let mut ends = BTreeMap::new();
        for key in by_leader.into_values().flatten() {
            let (Some(e), Some(l)) = (earliest.get(&key), latest.get(&key)) else {
                return Err(self.error(
                    format!("cannot read the offsets of {}-{}", key.0, key.1),
                    "the broker's answer left it out",
                ));
            };
            ends.insert(
                key,
                PartitionEnds {
                    earliest: *e,
                    latest: *l,
                },
            );
        }
        Ok(Some(ends))
    }

    async fn client(&self) -> Result<Arc<Client>, BrokerError> {
        if let Some(client) = self.client.lock().await.clone() {
            return Ok(client);
        }
        let mut builder = ClientBuilder::new(self.bootstrap.clone())
            .client_id("connector-monitor")
            // rskafka retries forever by default; the timeout above bounds each call anyway.
            .backoff_config(rskafka::BackoffConfig {
                deadline: Some(self.timeout),
                ..Default::default()
            });
        if let Some(tls) = &self.tls {
            builder = builder.tls_config(Arc::clone(tls));
        }
        let client = Arc::new(self.bounded("cannot connect".into(), builder.build()).await?);
        *self.client.lock().await = Some(Arc::clone(&client));
        Ok(client)
    }
}

impl Brokers for KafkaBrokers {
    async fn ends(&self, topics: &[String]) -> Result<BTreeMap<(String, i32), PartitionEnds>, BrokerError> {
        let meta = self.metadata(topics).await?;
        if let Some(ends) = self.ends_from(&meta, topics).await? {
            return Ok(ends);
        }
        // A leader moved since the metadata was read: once more with fresh metadata.
        *self.metadata.lock().await = None;
        let meta = self.metadata(topics).await?;
        match self.ends_from(&meta, topics).await? {
            Some(ends) => Ok(ends),
            None => Err(self.error(
                format!("cannot read the offsets of {}", topics.join(",")),
                "the leaders moved twice while they were read; the next run asks again",
            )),
        }
    }

    async fn topics(&self) -> Result<Vec<String>, BrokerError> {
        // Fresh: a pattern's new topics are found on the next run.
        *self.metadata.lock().await = None;
        Ok(self.metadata(&[]).await?.topics.keys().cloned().collect())
    }

    async fn timestamps_at(&self, wanted: &[(String, i32, i64)]) -> Vec<Result<Option<i64>, BrokerError>> {
        let mut topics: Vec<String> = wanted.iter().map(|(t, _, _)| t.clone()).collect();
        topics.sort();
        topics.dedup();
        let meta = match self.metadata(&topics).await {
            Ok(meta) => meta,
            Err(e) => {
                return wanted.iter().map(|_| Err(repeated(&e))).collect();
            }
        };
        let mut out: Vec<Result<Option<i64>, BrokerError>> = wanted.iter().map(|_| Ok(None)).collect();
        let mut by_leader: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
        for (i, (topic, partition, offset)) in wanted.iter().enumerate() {
            match meta.topics.get(topic).and_then(|ps| ps.get(partition)) {
                Some(leader) if *leader >= 0 => by_leader.entry(*leader).or_default().push(i),
                _ => {
                    out[i] = Err(self.error(
                        format!("cannot read the record at {topic}-{partition}@{offset}"),
                        "no leader for it in the metadata",
                    ))
                }
            }
        }
        // Every broker at once, each one Fetch for all its partitions.
        let reads = by_leader.iter().map(|(node, indices)| {
            let asked: Vec<(String, i32, i64)> = indices.iter().map(|i| wanted[*i].clone()).collect();
            let meta = &meta;
            async move { (indices, self.stamps_on(meta, *node, &asked).await) }
        });
        for (indices, stamps) in futures_util::future::join_all(reads).await {
            for (i, stamp) in indices.iter().zip(stamps) {
                out[*i] = stamp;
            }
        }
        out
    }
}

impl KafkaBrokers {
    /// The records of `topic`-`partition` from `offset`, up to `max_bytes` (a batch is returned
    /// whole even when larger). No waiting for more: the callers read what exists.
    async fn fetch_in(
        &self,
        what: String,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: i32,
    ) -> Result<Vec<rskafka::record::RecordAndOffset>, BrokerError> {
        let pc = self.partition(topic, partition).await?;
        let fetched = self
            .on_partition((topic, partition), what, pc.fetch_records(offset, 1..max_bytes, 100))
            .await?;
        Ok(fetched.0)
    }
}

/// Bytes asked for per fetch: a batch is returned whole even when larger.
const FETCH_BYTES: i32 = 4 * 1_048_576;

fn unavailable(e: BrokerError) -> ReadError {
    ReadError::Unavailable {
        what: e.what,
        source: e.source,
    }
}

impl TopicReader for KafkaBrokers {
    async fn ranges(&self, topic: &str, since: Option<i64>) -> Result<Vec<PartitionRange>, ReadError> {
        let client = self.client().await.map_err(unavailable)?;
        let listed = self
            .bounded("cannot list the topics".into(), client.list_topics())
            .await
            .map_err(unavailable)?;
        let Some(found) = listed.into_iter().find(|t| t.name == topic) else {
            return Err(ReadError::NotFound(format!(
                "no topic {topic} on the brokers {}",
                self.bootstrap.join(",")
            )));
        };
        let mut ranges = Vec::new();
        for partition in found.partitions {
            let what = format!("cannot read the offsets of {topic}-{partition}");
            let (start, end) = self
                .bounded(what, async {
                    let pc = client
                        .partition_client(topic.to_string(), partition, UnknownTopicHandling::Error)
                        .await?;
                    let end = pc.get_offset(OffsetAt::Latest).await?;
                    let start = match since.and_then(chrono::DateTime::from_timestamp_millis) {
                        // -1: no record at or after that time.
                        Some(at) => match pc.get_offset(OffsetAt::Timestamp(at)).await? {
                            -1 => end,
                            offset => offset,
                        },
                        None => pc.get_offset(OffsetAt::Earliest).await?,
                    };
                    Ok((start, end))
                })
                .await
                .map_err(unavailable)?;
            ranges.push(PartitionRange { partition, start, end });
        }
        ranges.sort_by_key(|r| r.partition);
        Ok(ranges)
    }

    async fn fetch(&self, topic: &str, partition: i32, offset: i64) -> Result<Vec<SourceRecord>, ReadError> {
        let what = format!("cannot read {topic}-{partition} from offset {offset}");
        let records = self
            .fetch_in(what, topic, partition, offset, FETCH_BYTES)
            .await
            .map_err(unavailable)?;
        let mut records: Vec<SourceRecord> = records
            .into_iter()
            .map(|r| SourceRecord {
                coordinates: Coordinates {
                    topic: topic.to_string(),
                    partition,
                    offset: r.offset,
                    timestamp: r.record.timestamp.timestamp_millis(),
                    epoch: 0,
                },
                key: bytes_field(r.record.key.as_deref()),
                value: bytes_field(r.record.value.as_deref()),
            })
            .collect();
        records.sort_by_key(|r| r.coordinates.offset);
        Ok(records)
    }
}
