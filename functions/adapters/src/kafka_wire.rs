//! Three Kafka requests by hand, for the lag at fleet scale: Metadata (which broker leads each
//! partition), ListOffsets and Fetch (every partition a broker leads, in one request; of a
//! Fetch only the timestamp of the first record at an offset is read). rskafka asks one
//! partition at a time, over a connection per partition; the protocol takes a broker's
//! partitions together. Versions are those of Kafka 2.1, the oldest that Kafka 4 still
//! serves: Metadata v7, ListOffsets v4, Fetch v10 (all before the protocol's flexible
//! encoding). Record batches are read in every codec Kafka writes, by pure-Rust decoders.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const METADATA: (i16, i16) = (3, 7);
const LIST_OFFSETS: (i16, i16) = (2, 4);
const FETCH: (i16, i16) = (1, 10);
const FIND_COORDINATOR: (i16, i16) = (10, 2);
const OFFSET_FETCH: (i16, i16) = (9, 4);
/// What a Fetch asks of each partition: its first batch comes whole even when larger (when it
/// is the first partition with records), so one record's timestamp never needs more.
const PARTITION_FETCH_BYTES: i32 = 1024 * 1024;
/// What a decompressed batch may grow to: past it, the batch is refused, not read.
const MAX_BATCH: u64 = 64 * 1024 * 1024;
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

    /// The broker that coordinates consumer group `group`: (host, port).
    pub async fn group_coordinator(&mut self, group: &str) -> io::Result<(String, i32)> {
        let mut body = Vec::new();
        put_str(&mut body, group);
        body.push(0); // a consumer group, not a transaction
        let answer = self.call(FIND_COORDINATOR, &body).await?;
        let mut r = Reader(&answer);
        r.i32()?; // throttle
        let error = r.i16()?;
        let message = r.string()?;
        r.i32()?; // node id
        let host = r.string()?.unwrap_or_default();
        let port = r.i32()?;
        if error != 0 {
            return Err(invalid(format!(
                "no coordinator for group {group}: error {error}{}",
                message.map(|m| format!(" ({m})")).unwrap_or_default()
            )));
        }
        Ok((host, port))
    }

    /// Every offset consumer group `group` has committed, (topic, partition, offset); asked of
    /// the group's coordinator.
    pub async fn committed(&mut self, group: &str) -> io::Result<Vec<(String, i32, i64)>> {
        let mut body = Vec::new();
        put_str(&mut body, group);
        put_i32(&mut body, -1); // every topic
        parse_offset_fetch(group, &self.call(OFFSET_FETCH, &body).await?)
    }

    /// The timestamp of the first record at or after each offset of `wanted` (partitions this
    /// broker leads): one request.
    pub async fn first_timestamps(&mut self, wanted: &[(String, i32, i64)]) -> io::Result<Vec<Stamped>> {
        let mut by_topic: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
        for (topic, partition, offset) in wanted {
            by_topic.entry(topic).or_default().push((*partition, *offset));
        }
        let mut body = Vec::new();
        put_i32(&mut body, -1); // a consumer
        put_i32(&mut body, 100); // wait at most 100 ms: the records asked for exist
        put_i32(&mut body, 1); // min bytes
        // The whole answer's bound, well inside what an answer may be (MAX_FRAME).
        let total = by_topic.values().map(Vec::len).sum::<usize>() * PARTITION_FETCH_BYTES as usize;
        put_len(&mut body, total.min(MAX_FRAME / 2))?;
        body.push(0); // read uncommitted
        put_i32(&mut body, 0); // no fetch session
        put_i32(&mut body, -1); // ... and none to open
        put_len(&mut body, by_topic.len())?;
        for (topic, ps) in &by_topic {
            put_str(&mut body, topic);
            put_len(&mut body, ps.len())?;
            for (partition, offset) in ps {
                put_i32(&mut body, *partition);
                put_i32(&mut body, -1); // no leader epoch known
                put_i64(&mut body, *offset);
                put_i64(&mut body, -1); // log start offset: a consumer's is none
                put_i32(&mut body, PARTITION_FETCH_BYTES);
            }
        }
        put_i32(&mut body, 0); // nothing to forget
        let answer = self.call(FETCH, &body).await?;
        let asked: BTreeMap<(&str, i32), i64> = wanted.iter().map(|(t, p, o)| ((t.as_str(), *p), *o)).collect();
        parse_fetch(&answer, |topic, partition| asked.get(&(topic, partition)).copied())
    }
}

/// One partition's answer to a Fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamped {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Kafka's error code (0: none).
    pub error: i16,
    /// The partition's next offset.
    pub high_watermark: i64,
    /// The first record at or after the offset asked for: its timestamp, `None` when no such
    /// record came (none exists, or its batch did not come whole), or why its batch could
    /// not be read.
    pub timestamp: Result<Option<i64>, String>,
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

impl<'a> Reader<'a> {
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

    /// Bytes (`None` when null).
    fn bytes(&mut self) -> io::Result<Option<&'a [u8]>> {
        let Ok(len) = usize::try_from(self.i32()?) else {
            return Ok(None);
        };
        if self.0.len() < len {
            return Err(invalid("the answer ends inside its records"));
        }
        let (b, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(Some(b))
    }

    /// A zigzag varint (a record's lengths and deltas), up to 64 bits.
    fn varint(&mut self) -> io::Result<i64> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let [byte] = self.take::<1>()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok((value >> 1) as i64 ^ -((value & 1) as i64));
            }
        }
        Err(invalid("a varint longer than 10 bytes"))
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

/// OffsetFetch v4's answer: the committed offsets (a partition without one, -1, left out).
fn parse_offset_fetch(group: &str, body: &[u8]) -> io::Result<Vec<(String, i32, i64)>> {
    let mut r = Reader(body);
    r.i32()?; // throttle
    let mut out = Vec::new();
    for _ in 0..r.len()? {
        let topic = r.string()?.unwrap_or_default();
        for _ in 0..r.len()? {
            let partition = r.i32()?;
            let offset = r.i64()?;
            r.string()?; // metadata
            let error = r.i16()?;
            if error != 0 {
                return Err(invalid(format!("group {group}: {topic}-{partition}: error {error}")));
            }
            if offset >= 0 {
                out.push((topic.clone(), partition, offset));
            }
        }
    }
    match r.i16()? {
        0 => Ok(out),
        error => Err(invalid(format!("group {group}: error {error}"))),
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

/// Fetch v10's answer, each partition read from the offset `asked` gives for it.
fn parse_fetch(body: &[u8], asked: impl Fn(&str, i32) -> Option<i64>) -> io::Result<Vec<Stamped>> {
    let mut r = Reader(body);
    r.i32()?; // throttle
    let error = r.i16()?;
    if error != 0 {
        return Err(invalid(format!("the Fetch failed with Kafka error {error}")));
    }
    r.i32()?; // session
    let mut out = Vec::new();
    for _ in 0..r.len()? {
        let topic = r.string()?.unwrap_or_default();
        for _ in 0..r.len()? {
            let partition = r.i32()?;
            let error = r.i16()?;
            let high_watermark = r.i64()?;
            r.i64()?; // last stable offset
            r.i64()?; // log start offset
            for _ in 0..r.len()? {
                r.i64()?; // an aborted transaction's producer
                r.i64()?; // ... and first offset
            }
            let records = r.bytes()?.unwrap_or_default();
            let timestamp = match asked(&topic, partition) {
                Some(offset) if error == 0 => first_timestamp(records, offset),
                _ => Ok(None),
            };
            out.push(Stamped {
                topic: topic.clone(),
                partition,
                error,
                high_watermark,
                timestamp,
            });
        }
    }
    Ok(out)
}

/// The timestamp of the first data record at or after `offset` in `records` (record batches,
/// magic 2, the last one possibly cut short by the size asked for).
fn first_timestamp(records: &[u8], offset: i64) -> Result<Option<i64>, String> {
    let mut r = Reader(records);
    while r.0.len() >= 12 {
        let base = r.i64().map_err(|e| e.to_string())?;
        let len = usize::try_from(r.i32().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        if r.0.len() < len {
            break; // cut short: not whole
        }
        let (batch, rest) = r.0.split_at(len);
        r.0 = rest;
        if let Some(at) =
            batch_timestamp(batch, base, offset).map_err(|e| format!("the batch at offset {base}: {e}"))?
        {
            return Ok(Some(at));
        }
    }
    Ok(None)
}

/// The timestamp of the first data record at or after `offset` in one batch (after its
/// base offset and length).
fn batch_timestamp(batch: &[u8], base: i64, offset: i64) -> io::Result<Option<i64>> {
    let mut b = Reader(batch);
    b.i32()?; // leader epoch
    let magic = b.i8()?;
    if magic != 2 {
        return Err(invalid(format!(
            "message format v{magic} (before Kafka 0.11) is not read"
        )));
    }
    b.i32()?; // crc: TCP and TLS carry it whole
    let attributes = b.i16()?;
    let last = b.i32()?;
    let first_timestamp = b.i64()?;
    let max_timestamp = b.i64()?;
    b.i64()?; // producer
    b.i16()?; // producer epoch
    b.i32()?; // base sequence
    let count = b.i32()?;
    // Before the offset asked for, or a transaction marker: no record of it is wanted.
    if base + i64::from(last) < offset || attributes & 0x20 != 0 {
        return Ok(None);
    }
    let decompressed;
    let data: &[u8] = match attributes & 0x7 {
        0 => b.0,
        codec => {
            decompressed = decompress(codec, b.0)?;
            &decompressed
        }
    };
    let log_append_time = attributes & 0x08 != 0;
    let mut r = Reader(data);
    for _ in 0..count {
        let len = usize::try_from(r.varint()?).map_err(invalid)?;
        if r.0.len() < len {
            return Err(invalid("a record runs past its batch"));
        }
        let (record, rest) = r.0.split_at(len);
        r.0 = rest;
        let mut rec = Reader(record);
        rec.i8()?; // attributes
        let delta = rec.varint()?;
        let offset_delta = rec.varint()?;
        if base + offset_delta >= offset {
            return Ok(Some(if log_append_time {
                max_timestamp
            } else {
                first_timestamp + delta
            }));
        }
    }
    Ok(None)
}

/// A batch's records, decompressed by `codec` (1 gzip, 2 snappy, 3 lz4, 4 zstd).
fn decompress(codec: i16, data: &[u8]) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    match codec {
        1 => {
            flate2::read::GzDecoder::new(data)
                .take(MAX_BATCH)
                .read_to_end(&mut out)?;
        }
        2 => out = unsnappy(data)?,
        3 => {
            lz4_flex::frame::FrameDecoder::new(data)
                .take(MAX_BATCH)
                .read_to_end(&mut out)?;
        }
        4 => {
            let mut rest = data;
            while !rest.is_empty() && (out.len() as u64) < MAX_BATCH {
                let frame = ruzstd::decoding::StreamingDecoder::new(&mut rest).map_err(invalid)?;
                frame.take(MAX_BATCH).read_to_end(&mut out)?;
            }
        }
        other => return Err(invalid(format!("compression codec {other} is not Kafka's"))),
    }
    if out.len() as u64 >= MAX_BATCH {
        return Err(invalid(format!("a batch that decompresses past {MAX_BATCH} bytes")));
    }
    Ok(out)
}

/// Snappy as Kafka's Java clients write it: xerial's framing (a magic header, then chunks
/// each prefixed by its length), or a raw block.
fn unsnappy(data: &[u8]) -> io::Result<Vec<u8>> {
    const XERIAL: &[u8] = b"\x82SNAPPY\0";
    let raw = |block: &[u8]| -> io::Result<Vec<u8>> {
        let len = snap::raw::decompress_len(block).map_err(invalid)?;
        if len as u64 > MAX_BATCH {
            return Err(invalid(format!("a batch that decompresses past {MAX_BATCH} bytes")));
        }
        snap::raw::Decoder::new().decompress_vec(block).map_err(invalid)
    };
    let Some(chunks) = data.strip_prefix(XERIAL) else {
        return raw(data);
    };
    // Version and compatible version, 4 bytes each.
    let mut r = Reader(chunks.get(8..).ok_or_else(|| invalid("a snappy header cut short"))?);
    let mut out = Vec::new();
    while !r.0.is_empty() {
        let len = usize::try_from(r.i32()?).map_err(invalid)?;
        if r.0.len() < len {
            return Err(invalid("a snappy chunk runs past its batch"));
        }
        let (chunk, rest) = r.0.split_at(len);
        r.0 = rest;
        out.extend(raw(chunk)?);
        if out.len() as u64 > MAX_BATCH {
            return Err(invalid(format!("a batch that decompresses past {MAX_BATCH} bytes")));
        }
    }
    Ok(out)
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

    /// A record batch (magic 2) of `records` (offset delta, timestamp delta), uncompressed.
    fn batch(base: i64, first_ts: i64, attributes: i16, records: &[(i64, i64)]) -> Vec<u8> {
        fn varint(b: &mut Vec<u8>, v: i64) {
            let mut z = ((v << 1) ^ (v >> 63)) as u64;
            while z >= 0x80 {
                b.push((z as u8 & 0x7f) | 0x80);
                z >>= 7;
            }
            b.push(z as u8);
        }
        let mut body = Vec::new();
        put_i32(&mut body, 0); // leader epoch
        body.push(2); // magic
        put_i32(&mut body, 0); // crc
        put_i16(&mut body, attributes);
        put_i32(&mut body, records.last().map_or(0, |r| r.0 as i32));
        put_i64(&mut body, first_ts);
        put_i64(&mut body, first_ts + 1_000_000); // max timestamp
        put_i64(&mut body, -1);
        put_i16(&mut body, -1);
        put_i32(&mut body, -1);
        put_i32(&mut body, records.len() as i32);
        for (offset_delta, ts_delta) in records {
            let mut rec = vec![0u8]; // attributes
            varint(&mut rec, *ts_delta);
            varint(&mut rec, *offset_delta);
            varint(&mut rec, -1); // no key
            varint(&mut rec, -1); // no value
            varint(&mut rec, 0); // no headers
            varint(&mut body, rec.len() as i64);
            body.extend(rec);
        }
        let mut out = Vec::new();
        put_i64(&mut out, base);
        put_i32(&mut out, body.len() as i32);
        out.extend(body);
        out
    }

    #[test]
    fn the_first_record_at_or_after_the_offset_gives_the_timestamp() {
        let mut records = batch(10, 5_000, 0, &[(0, 0), (1, 300), (2, 70_000)]);
        records.extend(batch(13, 90_000, 0, &[(0, 0)]));
        assert_eq!(first_timestamp(&records, 11), Ok(Some(5_300)));
        assert_eq!(first_timestamp(&records, 12), Ok(Some(75_000)), "a varint of 3 bytes");
        assert_eq!(first_timestamp(&records, 13), Ok(Some(90_000)), "the next batch");
        assert_eq!(first_timestamp(&records, 14), Ok(None), "none at or after it");
        // Compacted away: the first after it.
        let gap = batch(20, 1_000, 0, &[(0, 0), (5, 50)]);
        assert_eq!(first_timestamp(&gap, 22), Ok(Some(1_050)));
        // Log append time: the batch's max timestamp stands for every record.
        let appended = batch(0, 1_000, 0x08, &[(0, 7)]);
        assert_eq!(first_timestamp(&appended, 0), Ok(Some(1_001_000)));
        // A transaction marker is no record of the data.
        let marker = batch(0, 1_000, 0x20, &[(0, 0)]);
        assert_eq!(first_timestamp(&marker, 0), Ok(None));
        // A batch cut short by the size asked for is not read.
        assert_eq!(first_timestamp(&records[..records.len() - 2], 13), Ok(None));
    }

    #[test]
    fn a_batch_in_an_old_format_or_an_unknown_codec_is_an_error_naming_it() {
        let mut old = batch(0, 0, 0, &[(0, 0)]);
        old[16] = 1; // magic
        let err = first_timestamp(&old, 0).unwrap_err();
        assert!(err.contains("message format v1"), "{err}");
        let unknown = batch(0, 0, 5, &[(0, 0)]);
        let err = first_timestamp(&unknown, 0).unwrap_err();
        assert!(err.contains("compression codec 5"), "{err}");
        let garbage = batch(0, 0, 3, &[(0, 0)]);
        assert!(first_timestamp(&garbage, 0).is_err(), "not an lz4 frame");
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
