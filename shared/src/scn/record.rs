//! SCN record types and their bodies.
//!
//! ```text
//! type body (little-endian)
//!    1 stream params  monitor:u16 codec:u8(1 = H.264) width:u32 height:u32
//!    2 video          monitor:u16 flags:u8(bit 0 keyframe) sequence:u64 captured_us:u64 access_unit[..]
//!    3 marker         at_ms:i64 label:str
//!    4 pause          at_us:i64 reason:str
//!    5 resume         at_us:i64
//!    6 gap            from_us:i64 to_us:i64 reason:str
//!    7 clock sample   agent_us:u64 server_us:i64 rtt_us:u64
//!    8 end            at_us:i64
//!    9 pointer        monitor:u16 captured_us:u64 x:i32 y:i32   (monitor pixels; off-screen < 0)
//! str := len:u16 utf8[len], at most MAX_TEXT_BYTES
//! ```
//! Times named `_us`/`_ms` without "agent" are on the server's UTC clock; `captured_us` and
//! `agent_us` are on the agent's monotonic clock.

use super::{ClockAnchor, ScnError};
use crate::bytes::{Reader, Writer};
use crate::ids::MonitorId;
use crate::protocol::{MAX_TEXT_BYTES, VideoCodec};
use crate::time::{AgentMicros, UtcMicros, UtcMillis};

/// One record of an SCN file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A monitor stream's parameters; precedes its first video record and follows any change.
    StreamParams {
        /// The monitor.
        monitor: MonitorId,
        /// The codec of its access units.
        codec: VideoCodec,
        /// Encoded width, pixels.
        width: u32,
        /// Encoded height, pixels.
        height: u32,
    },
    /// One encoded access unit of one monitor.
    Video {
        /// The monitor.
        monitor: MonitorId,
        /// The agent's sequence number for this monitor.
        sequence: u64,
        /// Capture time on the agent's clock.
        captured: AgentMicros,
        /// Whether the access unit is an IDR.
        keyframe: bool,
        /// The access unit, Annex-B.
        data: Vec<u8>,
    },
    /// A call event shown on the replay timeline ("Connected", "On Hold", ...).
    Marker {
        /// When it happened (source time).
        at: UtcMillis,
        /// What happened.
        label: String,
    },
    /// Recording paused (e.g. for a card number); nothing is captured until [`Record::Resume`].
    Pause {
        /// When.
        at: UtcMicros,
        /// Why.
        reason: String,
    },
    /// Recording resumed after a pause.
    Resume {
        /// When.
        at: UtcMicros,
    },
    /// A stretch where the screen was not captured ("agent offline").
    Gap {
        /// Start of the stretch.
        from: UtcMicros,
        /// End of the stretch.
        to: UtcMicros,
        /// Why, in words a supervisor reads.
        reason: String,
    },
    /// A clock measurement between the agent's clock and the server's.
    ClockSample(ClockAnchor),
    /// Where the mouse pointer was at one instant, in the monitor's pixels. The pointer is
    /// carried beside the video (a few bytes per move) instead of being drawn into it, which
    /// would make every pointer move a changed frame to encode; the player draws it.
    Pointer {
        /// The monitor.
        monitor: MonitorId,
        /// When, on the agent's clock.
        captured: AgentMicros,
        /// Column from the monitor's left edge.
        x: i32,
        /// Row from the monitor's top edge.
        y: i32,
    },
    /// A monitor's stream ended before the contact did (the monitor was removed, or changed and
    /// goes on as another stream): its last frame lasts until `captured`.
    StreamEnd {
        /// The monitor.
        monitor: MonitorId,
        /// When, on the agent's clock.
        captured: AgentMicros,
        /// Why, in words a supervisor reads.
        reason: String,
    },
    /// The file was closed cleanly; nothing follows.
    End {
        /// When.
        at: UtcMicros,
    },
}

const STREAM_PARAMS: u8 = 1;
const VIDEO: u8 = 2;
const MARKER: u8 = 3;
const PAUSE: u8 = 4;
const RESUME: u8 = 5;
const GAP: u8 = 6;
const CLOCK_SAMPLE: u8 = 7;
const END: u8 = 8;
const POINTER: u8 = 9;
const STREAM_END: u8 = 10;

const CODEC_H264: u8 = 1;
const FLAG_KEYFRAME: u8 = 1;

fn check_text(text: &str) -> Result<(), ScnError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(ScnError::InvalidRecord(
            "text field longer than MAX_TEXT_BYTES",
        ));
    }
    Ok(())
}

impl Record {
    /// Whether this is a video record carrying a keyframe.
    pub fn is_keyframe(&self) -> bool {
        matches!(self, Record::Video { keyframe: true, .. })
    }

    /// Appends the record's type and body to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), ScnError> {
        match self {
            Record::StreamParams {
                monitor,
                codec,
                width,
                height,
            } => {
                out.put_u8(STREAM_PARAMS);
                out.put_u16(monitor.0);
                out.put_u8(match codec {
                    VideoCodec::H264 => CODEC_H264,
                });
                out.put_u32(*width);
                out.put_u32(*height);
            }
            Record::Video {
                monitor,
                sequence,
                captured,
                keyframe,
                data,
            } => {
                if data.is_empty() {
                    return Err(ScnError::InvalidRecord("empty access unit"));
                }
                out.put_u8(VIDEO);
                out.put_u16(monitor.0);
                out.put_u8(if *keyframe { FLAG_KEYFRAME } else { 0 });
                out.put_u64(*sequence);
                out.put_u64(captured.0);
                out.extend_from_slice(data);
            }
            Record::Marker { at, label } => {
                check_text(label)?;
                out.put_u8(MARKER);
                out.put_i64(at.0);
                out.put_string(label);
            }
            Record::Pause { at, reason } => {
                check_text(reason)?;
                out.put_u8(PAUSE);
                out.put_i64(at.0);
                out.put_string(reason);
            }
            Record::Resume { at } => {
                out.put_u8(RESUME);
                out.put_i64(at.0);
            }
            Record::Gap { from, to, reason } => {
                check_text(reason)?;
                out.put_u8(GAP);
                out.put_i64(from.0);
                out.put_i64(to.0);
                out.put_string(reason);
            }
            Record::ClockSample(anchor) => {
                out.put_u8(CLOCK_SAMPLE);
                out.put_u64(anchor.agent.0);
                out.put_i64(anchor.server.0);
                out.put_u64(anchor.rtt_us);
            }
            Record::End { at } => {
                out.put_u8(END);
                out.put_i64(at.0);
            }
            Record::Pointer {
                monitor,
                captured,
                x,
                y,
            } => {
                out.put_u8(POINTER);
                out.put_u16(monitor.0);
                out.put_u64(captured.0);
                out.put_i32(*x);
                out.put_i32(*y);
            }
            Record::StreamEnd {
                monitor,
                captured,
                reason,
            } => {
                check_text(reason)?;
                out.put_u8(STREAM_END);
                out.put_u16(monitor.0);
                out.put_u64(captured.0);
                out.put_string(reason);
            }
        }
        Ok(())
    }

    /// Decodes a record from its type and body (CRC already checked).
    pub(crate) fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
        let mut r = Reader::new(bytes);
        let kind = r.u8().ok_or(DecodeError::Body("empty record"))?;
        let short = DecodeError::Body("record body too short");
        let text = |r: &mut Reader<'_>| -> Result<String, DecodeError> {
            let text = r.string().ok_or(DecodeError::Body("bad text field"))?;
            if text.len() > MAX_TEXT_BYTES {
                return Err(DecodeError::Body("text field too long"));
            }
            Ok(text)
        };
        let record = match kind {
            STREAM_PARAMS => {
                let monitor = MonitorId(r.u16().ok_or(short)?);
                let codec = match r.u8().ok_or(short)? {
                    CODEC_H264 => VideoCodec::H264,
                    _ => return Err(DecodeError::Body("unknown codec")),
                };
                let width = r.u32().ok_or(short)?;
                let height = r.u32().ok_or(short)?;
                Record::StreamParams {
                    monitor,
                    codec,
                    width,
                    height,
                }
            }
            VIDEO => {
                let monitor = MonitorId(r.u16().ok_or(short)?);
                let flags = r.u8().ok_or(short)?;
                if flags & !FLAG_KEYFRAME != 0 {
                    return Err(DecodeError::Body("unknown video flags"));
                }
                let sequence = r.u64().ok_or(short)?;
                let captured = AgentMicros(r.u64().ok_or(short)?);
                let data = r.rest().to_vec();
                if data.is_empty() {
                    return Err(DecodeError::Body("empty access unit"));
                }
                Record::Video {
                    monitor,
                    sequence,
                    captured,
                    keyframe: flags & FLAG_KEYFRAME != 0,
                    data,
                }
            }
            MARKER => Record::Marker {
                at: UtcMillis(r.i64().ok_or(short)?),
                label: text(&mut r)?,
            },
            PAUSE => Record::Pause {
                at: UtcMicros(r.i64().ok_or(short)?),
                reason: text(&mut r)?,
            },
            RESUME => Record::Resume {
                at: UtcMicros(r.i64().ok_or(short)?),
            },
            GAP => Record::Gap {
                from: UtcMicros(r.i64().ok_or(short)?),
                to: UtcMicros(r.i64().ok_or(short)?),
                reason: text(&mut r)?,
            },
            CLOCK_SAMPLE => Record::ClockSample(ClockAnchor {
                agent: AgentMicros(r.u64().ok_or(short)?),
                server: UtcMicros(r.i64().ok_or(short)?),
                rtt_us: r.u64().ok_or(short)?,
            }),
            END => Record::End {
                at: UtcMicros(r.i64().ok_or(short)?),
            },
            POINTER => Record::Pointer {
                monitor: MonitorId(r.u16().ok_or(short)?),
                captured: AgentMicros(r.u64().ok_or(short)?),
                x: r.i32().ok_or(short)?,
                y: r.i32().ok_or(short)?,
            },
            STREAM_END => Record::StreamEnd {
                monitor: MonitorId(r.u16().ok_or(short)?),
                captured: AgentMicros(r.u64().ok_or(short)?),
                reason: text(&mut r)?,
            },
            other => return Err(DecodeError::UnknownType(other)),
        };
        if r.remaining() != 0 {
            return Err(DecodeError::Body("trailing bytes in record body"));
        }
        Ok(record)
    }
}

/// Why a record with a valid CRC could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    UnknownType(u8),
    Body(&'static str),
}
