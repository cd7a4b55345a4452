//! Fault-injecting TCP proxies in front of the real broker, for what neither the broker nor a
//! worker can be made to do on demand: a slow network ([`DelayProxy`]: each chunk read in either
//! direction is held for `delay` before it is passed on, in order, so a client behind it sees
//! every round trip take twice `delay` longer), and a broker that answers everything but Fetch
//! ([`FetchHangProxy`]: Fetch requests are swallowed, the connection stays open).
//!
//! The broker advertises a listener at the proxy's port (`scripts/kafka.sh`, the `DELAYED`
//! listener), so clients bootstrapped through the proxy stay behind it.

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
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| panic!("{what} cannot listen on 127.0.0.1:{port}: {e}"));
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

/// A broker that answers metadata, ListOffsets and the rest, and never a Fetch: the requests are
/// read and dropped, so a client waits for its answer until its own timeout.
pub struct FetchHangProxy {
    accept: JoinHandle<()>,
    /// Fetch requests swallowed so far.
    pub swallowed: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl FetchHangProxy {
    /// Listens on `127.0.0.1:port` and forwards to `target`, all but Fetch.
    pub async fn start(port: u16, target: &str) -> Self {
        let swallowed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = swallowed.clone();
        let accept = serve(port, target, "the Fetch-hanging proxy", move |client, server| {
            let counter = counter.clone();
            async move {
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::join!(
                    requests_but_fetch(client_read, server_write, counter),
                    pipe(server_read, client_write, Duration::ZERO)
                );
            }
        })
        .await;
        FetchHangProxy { accept, swallowed }
    }
}

impl Drop for FetchHangProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Passes the client's requests on whole, one frame (`int32` size, then the request, whose
/// first `int16` is its API key) at a time, and drops each Fetch.
async fn requests_but_fetch(
    mut from: impl AsyncReadExt + Unpin,
    mut to: impl AsyncWriteExt + Unpin,
    swallowed: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    loop {
        let mut size = [0u8; 4];
        if from.read_exact(&mut size).await.is_err() {
            break;
        }
        let mut request = vec![0u8; i32::from_be_bytes(size).max(0) as usize];
        if from.read_exact(&mut request).await.is_err() {
            break;
        }
        if request.len() >= 2 && i16::from_be_bytes([request[0], request[1]]) == FETCH {
            swallowed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            continue;
        }
        if to.write_all(&size).await.is_err() || to.write_all(&request).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
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
