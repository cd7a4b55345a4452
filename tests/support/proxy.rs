//! Fault-injecting TCP proxies in front of the real broker, for what neither the broker nor a
//! worker can be made to do on demand: a slow network ([`DelayProxy`]: each chunk read in either
//! direction is held for `delay` before it is passed on, in order, so a client behind it sees
//! every round trip take twice `delay` longer), and one that reads Kafka's request frames
//! ([`KafkaProxy`]: counts the requests by API key, delays each by a set latency, or swallows
//! every Fetch while the connection stays open).
//!
//! The broker advertises a listener at the proxy's port (`scripts/kafka.sh`, the `DELAYED`
//! listener), so clients bootstrapped through the proxy stay behind it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A running proxy; dropping it stops it and every connection through it.
pub struct DelayProxy {
    accept: JoinHandle<()>,
}

impl DelayProxy {
    /// Listens on `127.0.0.1:port` and forwards to `target` with `delay` per chunk.
    pub async fn start(port: u16, target: &str, delay: Duration) -> Self {
        let accept = serve(port, target, "the delay proxy", move |client, server| async move {
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::join!(
                pipe(client_read, server_write, delay),
                pipe(server_read, client_write, delay)
            );
        })
        .await;
        DelayProxy { accept }
    }
}

/// Listens on `127.0.0.1:port`; connects each client to `target` and has `relay` carry the pair.
async fn serve<F, Fut>(port: u16, target: &str, what: &str, relay: F) -> JoinHandle<()>
where
    F: Fn(TcpStream, TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    // A proxy on the same port just dropped may hold it for a moment while its task ends.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let listener = loop {
        match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(listener) => break listener,
            Err(e) if std::time::Instant::now() >= deadline => {
                panic!("{what} cannot listen on 127.0.0.1:{port} (waited 5 s for it): {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let target = target.to_string();
    tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(&target).await else {
                continue;
            };
            connections.spawn(relay(client, server));
        }
    })
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection.
        self.accept.abort();
    }
}

/// The Kafka API key of Fetch.
const FETCH: i16 = 1;

/// How a [`KafkaProxy`] treats the requests it carries.
#[derive(Debug, Clone, Copy, Default)]
pub struct KafkaFaults {
    /// Each request reaches the broker this long after it was sent (requests still overlap:
    /// a link's latency, not a queue).
    pub latency: Duration,
    /// Fetch requests are read and dropped: a broker that answers metadata, ListOffsets and the
    /// rest, and never a Fetch, so a client waits for its answer until its own timeout.
    pub hang_fetch: bool,
}

/// A proxy that reads the Kafka protocol's request frames (`int32` size, then the request,
/// whose first `int16` is its API key): it counts them by API key, delays them, or drops every
/// Fetch, as [`KafkaFaults`] say.
pub struct KafkaProxy {
    accept: JoinHandle<()>,
    faults: Arc<Mutex<KafkaFaults>>,
    /// Each change closes every connection open at the time (a broker restarted).
    cut: tokio::sync::watch::Sender<u64>,
    calls: Arc<Mutex<BTreeMap<i16, u64>>>,
    /// Fetch requests dropped so far.
    pub swallowed: Arc<AtomicU64>,
}

impl KafkaProxy {
    /// Listens on `127.0.0.1:port` and forwards to `target`.
    pub async fn start(port: u16, target: &str, faults: KafkaFaults) -> Self {
        let swallowed = Arc::new(AtomicU64::new(0));
        let calls = Arc::new(Mutex::new(BTreeMap::new()));
        let faults = Arc::new(Mutex::new(faults));
        let (counter, counts, set) = (swallowed.clone(), calls.clone(), faults.clone());
        let (cut, cuts) = tokio::sync::watch::channel(0u64);
        let accept = serve(port, target, "the Kafka proxy", move |client, server| {
            let (counter, counts, faults) = (counter.clone(), counts.clone(), set.clone());
            let mut cuts = cuts.clone();
            // Only cuts from now on close this connection.
            cuts.borrow_and_update();
            async move {
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                let relay = async {
                    tokio::join!(
                        requests(client_read, server_write, faults, counter, counts),
                        pipe(server_read, client_write, Duration::ZERO)
                    )
                };
                // Dropping the halves closes the client's connection.
                tokio::select! {
                    _ = relay => {}
                    _ = cuts.changed() => {}
                }
            }
        })
        .await;
        KafkaProxy {
            accept,
            faults,
            cut,
            calls,
            swallowed,
        }
    }

    /// Closes every connection open now, as a broker that restarts does; new ones are taken.
    pub fn cut_connections(&self) {
        self.cut.send_modify(|n| *n += 1);
    }

    /// Changes the faults of the requests from now on, on every connection.
    pub fn set_faults(&self, faults: KafkaFaults) {
        *self.faults.lock().unwrap_or_else(|e| e.into_inner()) = faults;
    }

    /// The requests carried (or dropped) so far, by API name (`Fetch`, `ListOffsets`, ...).
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(key, n)| (api_name(*key), *n))
            .collect()
    }
}

impl Drop for KafkaProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// The names of the API keys a client of the lag check sends; others by number.
fn api_name(key: i16) -> String {
    match key {
        0 => "Produce".into(),
        1 => "Fetch".into(),
        2 => "ListOffsets".into(),
        3 => "Metadata".into(),
        9 => "OffsetFetch".into(),
        10 => "FindCoordinator".into(),
        17 => "SaslHandshake".into(),
        18 => "ApiVersions".into(),
        other => format!("key {other}"),
    }
}

/// Passes the client's requests on whole, one frame at a time, each `latency` after it came,
/// and drops each Fetch when told to.
async fn requests(
    mut from: impl AsyncReadExt + Unpin,
    to: impl AsyncWriteExt + Unpin + Send + 'static,
    faults: Arc<Mutex<KafkaFaults>>,
    swallowed: Arc<AtomicU64>,
    calls: Arc<Mutex<BTreeMap<i16, u64>>>,
) {
    // A writer of its own, so that a request waiting out its latency does not hold back the
    // reading of those behind it.
    let (queue, mut due) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        let mut to = to;
        while let Some((at, frame)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&frame).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    });
    loop {
        let mut size = [0u8; 4];
        if from.read_exact(&mut size).await.is_err() {
            break;
        }
        let mut frame = size.to_vec();
        frame.resize(4 + i32::from_be_bytes(size).max(0) as usize, 0);
        if from.read_exact(&mut frame[4..]).await.is_err() {
            break;
        }
        let key = if frame.len() >= 6 {
            i16::from_be_bytes([frame[4], frame[5]])
        } else {
            -1
        };
        *calls.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_default() += 1;
        let faults = *faults.lock().unwrap_or_else(|e| e.into_inner());
        if faults.hang_fetch && key == FETCH {
            swallowed.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if queue
            .send((tokio::time::Instant::now() + faults.latency, frame))
            .is_err()
        {
            break;
        }
    }
    drop(queue);
    let _ = writer.await;
}

async fn pipe(mut from: impl AsyncReadExt + Unpin, mut to: impl AsyncWriteExt + Unpin, delay: Duration) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
