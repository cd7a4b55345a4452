//! The part of the `zstd` crate's API that rskafka uses, over `ruzstd`. A record batch is
//! small (at most what a Fetch returns), so it is decoded whole, every frame in it.

use std::io::{self, Cursor, Read, Write};

/// The decompressed content of every zstd frame read from a reader.
pub struct Decoder {
    out: Cursor<Vec<u8>>,
}

impl Decoder {
    /// Reads `r` to its end and decodes its frames.
    pub fn new<R: Read>(mut r: R) -> io::Result<Self> {
        let mut input = Vec::new();
        r.read_to_end(&mut input)?;
        let mut rest = input.as_slice();
        let mut out = Vec::new();
        while !rest.is_empty() {
            let mut frame = ruzstd::decoding::StreamingDecoder::new(&mut rest)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            frame.read_to_end(&mut out)?;
        }
        Ok(Self { out: Cursor::new(out) })
    }
}

impl Read for Decoder {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.out.read(buf)
    }
}

/// Compresses what is written into one zstd frame, written out by [`Encoder::finish`].
pub struct Encoder<W: Write> {
    target: W,
    buffer: Vec<u8>,
}

impl<W: Write> Encoder<W> {
    /// An encoder writing to `target`; ruzstd has one level, so `_level` is not used.
    pub fn new(target: W, _level: i32) -> io::Result<Self> {
        Ok(Self {
            target,
            buffer: Vec::new(),
        })
    }

    /// Compresses what was written and writes the frame.
    pub fn finish(mut self) -> io::Result<W> {
        let frame =
            ruzstd::encoding::compress_to_vec(self.buffer.as_slice(), ruzstd::encoding::CompressionLevel::Fastest);
        self.target.write_all(&frame)?;
        Ok(self.target)
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(data: &[u8]) -> Vec<u8> {
        let mut encoder = Encoder::new(Vec::new(), 0).unwrap();
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn what_is_encoded_decodes_to_the_same_bytes_across_frames() {
        let data: Vec<u8> = (0..100_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let mut two = frame(&data);
        assert!(two.len() < data.len(), "compressed");
        two.extend(frame(b"and a second frame"));
        let mut out = Vec::new();
        Decoder::new(two.as_slice()).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(&out[..data.len()], data.as_slice());
        assert_eq!(&out[data.len()..], b"and a second frame");
    }

    #[test]
    fn bytes_that_are_no_zstd_frame_are_an_error_naming_why() {
        let err = Decoder::new(&b"not a zstd frame"[..]).err().expect("an error");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    }
}
