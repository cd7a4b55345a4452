//! The part of the `lz4` crate's API that rskafka uses, over `lz4_flex`'s frame format (Kafka's
//! lz4 batches are LZ4 frames of independent blocks, KIP-57).

use std::io::{self, Read, Write};

/// The block modes of an LZ4 frame.
pub mod liblz4 {
    /// Whether a block may refer to the blocks before it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum BlockMode {
        /// Blocks refer to the previous ones.
        Linked,
        /// Each block stands alone (the only mode Kafka writes).
        Independent,
    }
}

use liblz4::BlockMode;

/// Decompresses one or more LZ4 frames read from `R`.
pub struct Decoder<R: Read> {
    inner: lz4_flex::frame::FrameDecoder<R>,
}

impl<R: Read> Decoder<R> {
    /// A decoder of what `r` gives.
    pub fn new(r: R) -> io::Result<Self> {
        Ok(Self {
            inner: lz4_flex::frame::FrameDecoder::new(r),
        })
    }

    /// The reader back; the result is that of the last read (errors were already returned).
    pub fn finish(self) -> (R, io::Result<()>) {
        (self.inner.into_inner(), Ok(()))
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

/// Builds an [`Encoder`].
#[derive(Debug, Clone)]
pub struct EncoderBuilder {
    mode: BlockMode,
}

impl Default for EncoderBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl EncoderBuilder {
    /// Independent blocks unless told otherwise.
    pub fn new() -> Self {
        Self {
            mode: BlockMode::Independent,
        }
    }

    /// The frame's block mode.
    pub fn block_mode(&mut self, mode: BlockMode) -> &mut Self {
        self.mode = mode;
        self
    }

    /// An encoder writing one frame to `w`.
    pub fn build<W: Write>(&self, w: W) -> io::Result<Encoder<W>> {
        let mode = match self.mode {
            BlockMode::Linked => lz4_flex::frame::BlockMode::Linked,
            BlockMode::Independent => lz4_flex::frame::BlockMode::Independent,
        };
        let info = lz4_flex::frame::FrameInfo::new().block_mode(mode);
        Ok(Encoder {
            inner: lz4_flex::frame::FrameEncoder::with_frame_info(info, w),
        })
    }
}

/// Compresses what is written into one LZ4 frame.
pub struct Encoder<W: Write> {
    inner: lz4_flex::frame::FrameEncoder<W>,
}

impl<W: Write> Encoder<W> {
    /// Ends the frame; the writer comes back either way.
    pub fn finish(mut self) -> (W, io::Result<()>) {
        let done = self.inner.try_finish().map_err(io::Error::other);
        (self.inner.into_inner(), done)
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_encoded_decodes_to_the_same_bytes() {
        let data: Vec<u8> = (0..200_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let mut encoder = EncoderBuilder::new()
            .block_mode(BlockMode::Independent)
            .build(Vec::new())
            .unwrap();
        encoder.write_all(&data).unwrap();
        let (frame, done) = encoder.finish();
        done.unwrap();
        assert!(frame.len() < data.len(), "compressed");
        let mut decoder = Decoder::new(frame.as_slice()).unwrap();
        let mut out = Vec::new();
        decoder.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn bytes_that_are_no_lz4_frame_are_an_error() {
        let mut out = Vec::new();
        let err = Decoder::new(&b"not an lz4 frame"[..]).unwrap().read_to_end(&mut out);
        assert!(err.is_err(), "{out:?}");
    }
}
