//! Two Kafka requests by hand, for the lag at fleet scale: Metadata (which broker leads each
//! partition) and ListOffsets (every partition a broker leads, in one request). rskafka asks
//! one partition at a time, over a connection per partition; the protocol takes a broker's
//! partitions together. Versions are those of Kafka 2.1, the oldest that Kafka 4 still
//! serves: Metadata v7, ListOffsets v4 (both before the protocol's flexible encoding).

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const METADATA: (i16, i16) = (3, 7);
const LIST_OFFSETS: (i16, i16) = (2, 4);
/// The largest answer taken: a metadata answer of tens of thousands of partitions fits.
const MAX_FRAME: usize = 64 * 1024 * 1024;

/// ListOffsets' timestamp for the earliest offset kept.
pub const EARLIEST: i64 = -2;
/// ListOffsets' timestamp for the next offset (the high watermark).
pub const LATEST: i64 = -1;

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One connection to one broker, carrying one request at a time.
pub struct Conn {
    stream: Box<dyn Stream>,
    correlation: i32,
}

impl Conn {
    /// Connects to `host:port`, over TLS when `tls` is given (the certificate checked against
    /// `host`).
    pub async fn connect(host: &str, port: i32, tls: Option<&Arc<rustls::ClientConfig>>) -> io::Result<Conn> {
        let tcp = TcpStream::connect((host, u16::try_from(port).map_err(invalid)?)).await?;
        tcp.set_nodelay(true)?;
        let stream: Box<dyn Stream> = match tls {
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(invalid)?;
                let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
                Box::new(connector.connect(name, tcp).await?)
            }
            None => Box::new(tcp),
        };
        Ok(Conn { stream, correlation: 0 })
    }

    /// Sends one request (`api` = key and version) and returns its answer's body.
    async fn call(&mut self, api: (i16, i16), body: &[u8]) -> io::Result<Vec<u8>> {
        self.correlation = self.correlation.wrapping_add(1);
        let mut frame = Vec::with_capacity(body.len() + 32);
        frame.extend_from_slice(&[0; 4]);
        put_i16(&mut frame, api.0);
        put_i16(&mut frame, api.1);
        put_i32(&mut frame, self.correlation);
        put_str(&mut frame, "connector-monitor");
        frame.extend_from_slice(body);
        let size = i32::try_from(frame.len() - 4).map_err(invalid)?;
        frame[..4].copy_from_slice(&size.to_be_bytes());
        self.stream.write_all(&frame).await?;
        self.stream.flush().await?;
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).await?;
        let size = usize::try_from(i32::from_be_bytes(size)).map_err(invalid)?;
        if !(4..=MAX_FRAME).contains(&size) {
            return Err(invalid(format!("an answer of {size} bytes")));
        }
        let mut answer = vec![0u8; size];
        self.stream.read_exact(&mut answer).await?;
        let mut r = Reader(&answer);
        let correlation = r.i32()?;
        if correlation != self.correlation {
            return Err(invalid(format!(
                "the answer to request {} came for request {correlation}",
                self.correlation
            )));
        }
        Ok(r.0.to_vec())
    }

    /// The brokers and the leader of every partition of every topic (internal ones left out).
    pub async fn metadata(&mut self) -> io::Result<Metadata> {
        let mut body = Vec::new();
        put_i32(&mut body, -1); // every topic
        body.push(0); // never create one
        parse_metadata(&self.call(METADATA, &body).await?)
    }

    /// The offset at `at` ([`EARLIEST`] or [`LATEST`]) of each of `partitions`, all led by
    /// this broker: one request.
    pub async fn list_offsets(&mut self, partitions: &[(String, i32)], at: i64) -> io::Result<Vec<Offset>> {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in partitions {
            by_topic.entry(topic).or_default().push(*partition);
        }
        let mut body = Vec::new();
        put_i32(&mut body, -1); // a consumer, not a replica
        body.push(0); // read uncommitted: the high watermark, what a sink's consumer reads to
        put_len(&mut body, by_topic.len())?;
        for (topic, ps) in &by_topic {
            put_str(&mut body, topic);
            put_len(&mut body, ps.len())?;
            for p in ps {
                put_i32(&mut body, *p);
                put_i32(&mut body, -1); // no leader epoch known
                put_i64(&mut body, at);
            }
        }
        parse_list_offsets(&self.call(LIST_OFFSETS, &body).await?)
    }
}

/// What Metadata says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// Each broker's `host` and `port`, by node id.
    pub brokers: BTreeMap<i32, (String, i32)>,
    /// Each topic's partitions and their leaders (-1: none now).
    pub topics: BTreeMap<String, BTreeMap<i32, i32>>,
}

/// One partition's answer to ListOffsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offset {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Kafka's error code (0: none).
    pub error: i16,
    /// The offset.
    pub offset: i64,
}

fn invalid(e: impl ToString) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

fn put_i16(b: &mut Vec<u8>, v: i16) {
    b.extend_from_slice(&v.to_be_bytes());
}

fn put_i32(b: &mut Vec<u8>, v: i32) {
    b.extend_from_slice(&v.to_be_bytes());
}

fn put_i64(b: &mut Vec<u8>, v: i64) {
    b.extend_from_slice(&v.to_be_bytes());
}

fn put_len(b: &mut Vec<u8>, n: usize) -> io::Result<()> {
    put_i32(b, i32::try_from(n).map_err(invalid)?);
    Ok(())
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    // Topic names are at most 249 characters; the client id is ours.
    put_i16(b, s.len() as i16);
    b.extend_from_slice(s.as_bytes());
}

/// A cursor over an answer; every read says what was cut short.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        let Some((head, rest)) = self.0.split_first_chunk::<N>() else {
            return Err(invalid("the answer ends early"));
        };
        self.0 = rest;
        Ok(*head)
    }

    fn i8(&mut self) -> io::Result<i8> {
        Ok(i8::from_be_bytes(self.take()?))
    }

    fn i16(&mut self) -> io::Result<i16> {
        Ok(i16::from_be_bytes(self.take()?))
    }

    fn i32(&mut self) -> io::Result<i32> {
        Ok(i32::from_be_bytes(self.take()?))
    }

    fn i64(&mut self) -> io::Result<i64> {
        Ok(i64::from_be_bytes(self.take()?))
    }

    /// A string (`None` when null).
    fn string(&mut self) -> io::Result<Option<String>> {
        let len = self.i16()?;
        let Ok(len) = usize::try_from(len) else {
            return Ok(None);
        };
        if self.0.len() < len {
            return Err(invalid("the answer ends inside a string"));
        }
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(Some(String::from_utf8_lossy(s).into_owned()))
    }

    /// An array's length (a null array is empty).
    fn len(&mut self) -> io::Result<usize> {
        let n = usize::try_from(self.i32()?).unwrap_or(0);
        // Each element takes at least 4 bytes: a length past that is not an answer.
        if n > self.0.len() / 4 + 1 {
            return Err(invalid(format!("an array of {n} in {} bytes", self.0.len())));
        }
        Ok(n)
    }

    fn skip_i32s(&mut self) -> io::Result<()> {
        for _ in 0..self.len()? {
            self.i32()?;
        }
        Ok(())
    }
}

/// Metadata v7's answer.
fn parse_metadata(body: &[u8]) -> io::Result<Metadata> {
    let mut r = Reader(body);
    r.i32()?; // throttle
    let mut meta = Metadata::default();
    for _ in 0..r.len()? {
        let node = r.i32()?;
        let host = r.string()?.unwrap_or_default();
        let port = r.i32()?;
        r.string()?; // rack
        meta.brokers.insert(node, (host, port));
    }
    r.string()?; // cluster id
    r.i32()?; // controller
    for _ in 0..r.len()? {
        let error = r.i16()?;
        let name = r.string()?.unwrap_or_default();
        let internal = r.i8()? != 0;
        let mut partitions = BTreeMap::new();
        for _ in 0..r.len()? {
            r.i16()?; // a partition's error: its leader says it (-1 when it has none)
            let partition = r.i32()?;
            let leader = r.i32()?;
            r.i32()?; // leader epoch
            r.skip_i32s()?; // replicas
            r.skip_i32s()?; // in sync
            r.skip_i32s()?; // offline
            partitions.insert(partition, leader);
        }
        // A topic in error (being deleted, unauthorised) is left out, as one that does not exist.
        if error == 0 && !internal {
            meta.topics.insert(name, partitions);
        }
    }
    Ok(meta)
}

/// ListOffsets v4's answer.
fn parse_list_offsets(body: &[u8]) -> io::Result<Vec<Offset>> {
    let mut r = Reader(body);
    r.i32()?; // throttle
    let mut out = Vec::new();
    for _ in 0..r.len()? {
        let topic = r.string()?.unwrap_or_default();
        for _ in 0..r.len()? {
            let partition = r.i32()?;
            let error = r.i16()?;
            r.i64()?; // timestamp
            let offset = r.i64()?;
            r.i32()?; // leader epoch
            out.push(Offset {
                topic: topic.clone(),
                partition,
                error,
                offset,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_offsets_answer_parses_and_a_cut_one_says_so() {
        let mut b = Vec::new();
        put_i32(&mut b, 0);
        put_i32(&mut b, 1);
        put_str(&mut b, "t");
        put_i32(&mut b, 2);
        for (p, err, off) in [(0, 0i16, 5i64), (1, 6, -1)] {
            put_i32(&mut b, p);
            put_i16(&mut b, err);
            put_i64(&mut b, -1);
            put_i64(&mut b, off);
            put_i32(&mut b, 0);
        }
        let parsed = parse_list_offsets(&b).unwrap();
        assert_eq!(
            parsed,
            vec![
                Offset {
                    topic: "t".into(),
                    partition: 0,
                    error: 0,
                    offset: 5
                },
                Offset {
                    topic: "t".into(),
                    partition: 1,
                    error: 6,
                    offset: -1
                }
            ]
        );
        let cut = parse_list_offsets(&b[..b.len() - 3]).unwrap_err();
        assert_eq!(cut.to_string(), "the answer ends early");
    }

    #[test]
    fn an_array_longer_than_its_answer_is_refused_before_anything_is_allocated() {
        let mut b = Vec::new();
        put_i32(&mut b, 0);
        put_i32(&mut b, i32::MAX);
        let err = parse_metadata(&b).unwrap_err();
        assert!(err.to_string().contains("an array of 2147483647"), "{err}");
    }
}
