//! Call audio for stitching: Webex's MP3 decoded (symphonia) and encoded to Opus (libopus), the
//! audio codec Chromium's Media Source Extensions accept in MP4 (MP3-in-MP4 they refuse).
//!
//! A recording is transcoded once, as soon as it is stored, into an *Opus packet file* next to
//! its MP3, so that stitching is a remux. The file is Capture's own, small and append-only:
//!
//! ```text
//! "CAPOPUS1" | input rate: u32 LE | packets: [ length: u16 LE | Opus packet ] …
//! ```
//!
//! Every packet holds [`FRAME_MS`] of audio; the last one is padded with silence. Both
//! directions stream: memory does not grow with the recording's length.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::DecoderOptions;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// Length of one Opus packet.
pub const FRAME_MS: u32 = 20;
/// The Opus timescale in MP4 (Opus always decodes to 48 kHz).
pub const OPUS_RATE: u32 = 48_000;
/// Samples of one packet at [`OPUS_RATE`].
pub const FRAME_SAMPLES_48K: u32 = OPUS_RATE / 1000 * FRAME_MS;
/// Samples the decoder drops at the start (libopus' encoder look-ahead, in 48 kHz units; the
/// `dOps` pre-skip).
pub const PRE_SKIP: u16 = 312;
/// Bit rate of the Opus stream (speech, mono).
pub const BITRATE: i32 = 24_000;
/// Largest Opus packet.
const MAX_PACKET: usize = 1500;
const MAGIC: &[u8; 8] = b"CAPOPUS1";

/// Why audio could not be transcoded or read.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// Reading or writing a file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The MP3 could not be decoded.
    #[error("the audio cannot be decoded: {0}")]
    Decode(String),
    /// The sample rate is not one Opus takes (8, 12, 16, 24, 48 kHz).
    #[error("audio at {0} Hz cannot be encoded to Opus without resampling")]
    Rate(u32),
    /// libopus refused.
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
    /// An Opus packet file is not one.
    #[error("not an Opus packet file: {0}")]
    Format(String),
}

/// What a transcode produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transcoded {
    /// The MP3's sample rate (the encoder's input rate).
    pub input_rate: u32,
    /// Packets written.
    pub packets: u64,
    /// Decoded samples (at the input rate): the audio's exact length.
    pub samples: u64,
}

impl Transcoded {
    /// The audio's length in microseconds.
    pub fn duration_us(&self) -> i64 {
        (self.samples as i64 * 1_000_000) / i64::from(self.input_rate.max(1))
    }
}

fn opus_encoder(rate: u32) -> Result<opus::Encoder, AudioError> {
    if ![8_000, 12_000, 16_000, 24_000, 48_000].contains(&rate) {
        return Err(AudioError::Rate(rate));
    }
    let mut encoder = opus::Encoder::new(rate, opus::Channels::Mono, opus::Application::Voip)?;
    encoder.set_bitrate(opus::Bitrate::Bits(BITRATE))?;
    Ok(encoder)
}

/// One packet of silence for an encoder at `rate` (holes in the timeline are filled with it).
pub fn silence_packet(rate: u32) -> Result<Vec<u8>, AudioError> {
    let mut encoder = opus_encoder(rate)?;
    let frame = vec![0i16; (rate / 1000 * FRAME_MS) as usize];
    Ok(encoder.encode_vec(&frame, MAX_PACKET)?)
}

/// Transcodes the MP3 at `mp3` into the Opus packet file `out` (written, then synced).
/// CPU-bound: call it off the async runtime.
pub fn transcode_mp3(mp3: &Path, out: &Path) -> Result<Transcoded, AudioError> {
    let source = MediaSourceStream::new(Box::new(std::fs::File::open(mp3)?), Default::default());
    let mut hint = Hint::new();
    hint.with_extension("mp3");
    let decode = |e: SymphoniaError| AudioError::Decode(e.to_string());
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            source,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(decode)?;
    let mut format = probed.format;
    let track = format
        .default_track()
        .ok_or_else(|| AudioError::Decode("no audio track".into()))?;
    let track_id = track.id;
    let rate = track
        .codec_params
        .sample_rate
        .ok_or_else(|| AudioError::Decode("no sample rate".into()))?;
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(decode)?;
    let mut encoder = opus_encoder(rate)?;
    let frame_len = (rate / 1000 * FRAME_MS) as usize;

    let file = std::fs::File::create(out)?;
    let mut writer = BufWriter::new(file);
    writer.write_all(MAGIC)?;
    writer.write_all(&rate.to_le_bytes())?;
    let mut pending: Vec<i16> = Vec::with_capacity(frame_len * 2);
    let mut packet = vec![0u8; MAX_PACKET];
    let mut done = Transcoded {
        input_rate: rate,
        packets: 0,
        samples: 0,
    };
    let mut emit =
        |frame: &[i16], writer: &mut BufWriter<std::fs::File>| -> Result<(), AudioError> {
            let len = encoder.encode(frame, &mut packet)?;
            writer.write_all(&u16::try_from(len).unwrap_or(u16::MAX).to_le_bytes())?;
            writer.write_all(&packet[..len])?;
            done.packets += 1;
            Ok(())
        };
    loop {
        let packet = match format.next_packet() {
            Ok(packet) => packet,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break;
            }
            Err(error) => return Err(decode(error)),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(decoded) => decoded,
            // A damaged frame is skipped, as players do; its time is lost, not shifted.
            Err(SymphoniaError::DecodeError(_)) => continue,
            Err(error) => return Err(decode(error)),
        };
        let spec = *decoded.spec();
        let channels = spec.channels.count().max(1);
        let mut buffer = SampleBuffer::<i16>::new(decoded.capacity() as u64, spec);
        buffer.copy_interleaved_ref(decoded);
        for chunk in buffer.samples().chunks(channels) {
            let mixed = chunk.iter().map(|s| i32::from(*s)).sum::<i32>() / channels as i32;
            pending.push(mixed as i16);
        }
        done.samples += (buffer.samples().len() / channels) as u64;
        let mut start = 0;
        while pending.len() - start >= frame_len {
            emit(&pending[start..start + frame_len], &mut writer)?;
            start += frame_len;
        }
        pending.drain(..start);
    }
    if !pending.is_empty() {
        pending.resize(frame_len, 0);
        emit(&pending, &mut writer)?;
    }
    let file = writer.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(done)
}

/// Reads an Opus packet file.
#[derive(Debug)]
pub struct OpusPackets {
    reader: BufReader<std::fs::File>,
    /// The encoder's input rate.
    pub input_rate: u32,
}

impl OpusPackets {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<OpusPackets, AudioError> {
        let mut reader = BufReader::new(std::fs::File::open(path)?);
        let mut header = [0u8; 12];
        reader
            .read_exact(&mut header)
            .map_err(|_| AudioError::Format(format!("{}: too short", path.display())))?;
        if &header[..8] != MAGIC {
            return Err(AudioError::Format(format!("{}: bad magic", path.display())));
        }
        let input_rate = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        Ok(OpusPackets { reader, input_rate })
    }

    /// The next packet; `None` at the end (a torn last packet is the end).
    pub fn next_packet(&mut self) -> Result<Option<Vec<u8>>, AudioError> {
        let mut len = [0u8; 2];
        match self.reader.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let mut packet = vec![0u8; usize::from(u16::from_le_bytes(len))];
        match self.reader.read_exact(&mut packet) {
            Ok(()) => Ok(Some(packet)),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests;
