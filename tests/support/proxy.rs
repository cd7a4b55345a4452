//! A fault-injecting TCP proxy in front of the real broker, for what neither the broker nor a
//! worker can be made to do on demand: a slow network. Each chunk read in either direction is
//! held for `delay` before it is passed on, in order, so a client behind it sees every round
//! trip take twice `delay` longer.
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
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("the delay proxy cannot listen on 127.0.0.1:{port}: {e}"));
        let target = target.to_string();
        let accept = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let target = target.clone();
                connections.spawn(async move {
                    let Ok(server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        pipe(client_read, server_write, delay),
                        pipe(server_read, client_write, delay)
                    );
                });
            }
        });
        DelayProxy { accept }
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection.
        self.accept.abort();
    }
}

async fn pipe(mut from: impl AsyncReadExt + Unpin, mut to: impl AsyncWriteExt + Unpin, delay: Duration) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        tokio::time::sleep(delay).await;
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
