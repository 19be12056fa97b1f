//! Typed control messages (websocket text messages, JSON with a `type` tag).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    ClockSample, MAX_CONTROL_MESSAGE_BYTES, MAX_CREDENTIAL_BYTES, MAX_MONITOR_DIMENSION,
    MAX_MONITORS, MAX_POINTER_SAMPLES, MAX_SPOOLED_CONTACTS, MAX_STREAMS, MAX_TEXT_BYTES,
    ProtocolError, check_version,
};
use crate::ids::{AgentId, ContactId, MonitorId};
use crate::time::{AgentMicros, UtcMicros, UtcMillis};

/// The first message of every connection, agent → server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// The protocol version the agent speaks.
    pub protocol_version: u16,
    /// The agent's id, from enrolment.
    pub agent_id: AgentId,
    /// The agent's credential, from enrolment.
    pub credential: String,
    /// The logged-in operating-system user.
    pub os_user: String,
    /// The machine's name.
    pub machine: String,
    /// The monitors the agent can capture.
    pub monitors: Vec<MonitorInfo>,
    /// The agent's software version.
    pub agent_version: String,
    /// How it captures the screen (`x11`, `dxgi`, `gdi`, `quartz`, `synthetic`); absent from
    /// agents older than the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_backend: Option<String>,
    /// Every contact the agent holds in its offline spool (recording now, or captured while the
    /// server was out of reach and not yet acknowledged), so that the server answers with what it
    /// holds of each ([`Welcome::held`]) and which it no longer takes ([`Welcome::forget`]).
    /// `None` from agents without a spool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spooled: Option<Vec<SpooledContact>>,
}

/// One contact in an agent's spool, as its `Hello` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpooledContact {
    /// The contact.
    pub contact: ContactId,
    /// For each monitor, the frames captured in all (the next sequence number).
    pub streams: Vec<StreamTotal>,
    /// Whether the agent stopped recording it (after the server's `Stop`).
    pub ended: bool,
}

/// One of the agent's contacts whose SCN file the server holds open, as its `Welcome` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldContact {
    /// The contact.
    pub contact: ContactId,
    /// For each monitor, the frames the file holds (the sequence the agent continues from).
    pub streams: Vec<StreamTotal>,
    /// Whether the contact is over: the agent stops recording it, sends the rest and `Stopped`.
    pub ended: bool,
}

/// One monitor as the agent sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorInfo {
    /// The agent's number for this monitor.
    pub id: MonitorId,
    /// Left edge in the virtual desktop, pixels.
    pub x: i32,
    /// Top edge in the virtual desktop, pixels.
    pub y: i32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Scale factor of the monitor (1.0, 1.25, 2.0, ...).
    pub scale: f32,
    /// Whether it is the primary monitor.
    pub primary: bool,
}

/// A video codec carried in frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoCodec {
    /// H.264 access units in Annex-B form.
    H264,
}

/// The stream settings the server imposes, sent in [`Welcome`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamSettings {
    /// Lowest frame rate while the screen changes (a still screen sends only heartbeats).
    pub fps_min: f32,
    /// Highest frame rate.
    pub fps_max: f32,
    /// Bitrate cap per monitor, kbit/s.
    pub bitrate_cap_kbps: u32,
    /// Longest interval between two keyframes, seconds (bounds seek time).
    pub keyframe_interval_s: u32,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            fps_min: 1.0,
            fps_max: 5.0,
            bitrate_cap_kbps: 500,
            // A 1080p keyframe of an office screen is 50–100 kB: one every 10 s alone would cost
            // 40–80 kbit/s. Every 30 s bounds a seek to ≤ 30 s of (mostly tiny) changes.
            keyframe_interval_s: 30,
        }
    }
}

/// The server's answer to an accepted [`Hello`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    /// The protocol version both sides now speak.
    pub protocol_version: u16,
    /// Stream settings for this agent.
    pub settings: StreamSettings,
    /// The server's clock when it sent the welcome (a first, coarse clock reading).
    pub server_time: UtcMicros,
    /// The agent's contacts whose files are open, with the frames each holds: the agent sends
    /// its spool from there, so nothing is sent twice after a reconnection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<HeldContact>,
    /// Contacts of the agent's spool the server no longer takes (discarded, or closed after the
    /// offline deadline): the agent deletes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forget: Vec<ContactId>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// The agent's protocol version is not supported.
    UnsupportedProtocolVersion,
    /// The agent id is unknown or the credential is wrong.
    BadCredential,
    /// The first message was not a valid `Hello`.
    MalformedHello,
    /// The same agent already has a live connection.
    AlreadyConnected,
    /// The server is shutting down; reconnect later.
    ShuttingDown,
    /// The agent broke the protocol after the handshake (bad frame, oversized message, ...).
    ProtocolViolation,
}

/// A typed refusal, sent before the server closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// Machine-readable reason.
    pub code: RefusalCode,
    /// Human-readable detail.
    pub message: String,
    /// The protocol versions the server accepts.
    pub supported_versions: Vec<u16>,
}

/// Messages from the agent to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentMessage {
    /// The handshake (first message only).
    Hello(Hello),
    /// A clock measurement request (t0 on the agent's clock).
    Ping {
        /// Echoed in the pong.
        nonce: u64,
        /// t0.
        agent_sent: AgentMicros,
    },
    /// Periodic liveness and status.
    Heartbeat {
        /// Contacts the agent is recording now.
        recording: Vec<ContactId>,
        /// Bytes waiting in the agent's offline spool.
        spool_bytes: u64,
        /// The capture backend now in use (it changes after a fallback); absent from agents
        /// older than the field.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        capture_backend: Option<String>,
    },
    /// A stream's parameters, sent before its first frame and whenever they change.
    StreamParams {
        /// The contact.
        contact: ContactId,
        /// The monitor.
        monitor: MonitorId,
        /// The codec of the frames that follow.
        codec: VideoCodec,
        /// Encoded width, pixels.
        width: u32,
        /// Encoded height, pixels.
        height: u32,
    },
    /// The monitor layout changed (a monitor connected, removed, or changed resolution): the
    /// new layout, with the agent's stable numbers. Streams of monitors no longer listed ended
    /// ([`AgentMessage::StreamEnded`]); their spooled frames may still follow.
    Monitors {
        /// The new layout.
        monitors: Vec<MonitorInfo>,
    },
    /// A monitor's stream of a contact ended before the contact did: the monitor was removed or
    /// changed (a changed monitor goes on as a new stream). Its last frames may still follow
    /// from the spool; none was captured after `at`.
    StreamEnded {
        /// The contact.
        contact: ContactId,
        /// The monitor.
        monitor: MonitorId,
        /// When the stream ended, on the agent's clock.
        at: AgentMicros,
        /// Why, in words a supervisor reads ("monitor 1 was disconnected").
        reason: String,
    },
    /// A completed clock measurement (the agent's ping, the server's pong, the agent's receipt):
    /// the server writes it into the agent's open SCN files, so that ingestion maps the agent's
    /// capture times onto the server's clock with the best measurement of the contact.
    Clock {
        /// The measurement.
        sample: ClockSample,
    },
    /// Mouse pointer positions on one monitor of a contact being recorded (only moves are sent).
    Pointer {
        /// The contact.
        contact: ContactId,
        /// The monitor the pointer is on.
        monitor: MonitorId,
        /// Positions in the monitor's pixels, oldest first, at most [`MAX_POINTER_SAMPLES`].
        samples: Vec<PointerSample>,
    },
    /// The agent stopped recording a contact (after a `Stop` or `Discard`) and sent every frame
    /// it captured: the server closes the contact's file once these have arrived.
    Stopped {
        /// The contact.
        contact: ContactId,
        /// For each monitor, how many frames it sent in all (the next sequence number).
        frames: Vec<StreamTotal>,
    },
    /// A stretch of a contact in which one monitor's screen could not be captured (the screen
    /// was locked, a secure prompt was up): sent when capture resumes or the contact ends, so
    /// the timeline names the gap instead of showing a frozen picture.
    CaptureGap {
        /// The contact.
        contact: ContactId,
        /// The monitor.
        monitor: MonitorId,
        /// The last moment before the gap, on the agent's clock.
        from: AgentMicros,
        /// The first moment after it.
        to: AgentMicros,
        /// Why, in words a supervisor reads ("screen locked").
        reason: String,
    },
    /// Recording a contact failed on the agent.
    RecordingFailed {
        /// The contact.
        contact: ContactId,
        /// Why.
        reason: String,
    },
    /// Frames of a contact the agent captured but had to drop from its spool before the server
    /// had them (the spool's disk quota was reached while the server was out of reach): the
    /// server names the stretch as a gap.
    SpoolDropped {
        /// The contact.
        contact: ContactId,
        /// Frames dropped.
        frames: u64,
        /// The first dropped frame's capture time, on the agent's clock.
        from: AgentMicros,
        /// The last dropped frame's capture time.
        to: AgentMicros,
        /// Why, in words a supervisor reads ("agent's spool full").
        reason: String,
    },
}

/// One pointer position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointerSample {
    /// When, on the agent's clock.
    pub captured: AgentMicros,
    /// Column from the monitor's left edge.
    pub x: i32,
    /// Row from the monitor's top edge.
    pub y: i32,
}

/// How many frames one monitor's stream of a contact carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamTotal {
    /// The monitor.
    pub monitor: MonitorId,
    /// Frames sent, i.e. the sequence number the next frame would have had.
    pub frames: u64,
}

/// Messages from the server to the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The handshake was accepted.
    Welcome(Welcome),
    /// The connection is refused; the server closes it next.
    Refused(Refusal),
    /// Answer to a ping.
    Pong {
        /// The ping's nonce.
        nonce: u64,
        /// t0, echoed.
        agent_sent: AgentMicros,
        /// t1.
        server_received: UtcMicros,
        /// t2.
        server_sent: UtcMicros,
    },
    /// Start recording the screen for a contact.
    Start {
        /// The contact the frames belong to.
        contact: ContactId,
        /// When the contact's file already holds frames (the agent restarted or reconnected
        /// mid-contact): the sequence each monitor continues from. Empty for a new contact.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        resume: Vec<StreamTotal>,
    },
    /// Stop recording a contact.
    Stop {
        /// The contact.
        contact: ContactId,
    },
    /// The contact's recording is to be kept (the call was answered).
    Keep {
        /// The contact.
        contact: ContactId,
    },
    /// The contact's recording is to be discarded (the call was not answered).
    Discard {
        /// The contact.
        contact: ContactId,
    },
    /// A call event to show to the agent or mark locally.
    Marker {
        /// The contact.
        contact: ContactId,
        /// The event's label ("On Hold", ...).
        label: String,
        /// When it happened.
        at: UtcMillis,
    },
    /// Send a keyframe as soon as possible.
    RequestKeyframe {
        /// The contact.
        contact: ContactId,
        /// The monitor, or every monitor when `None`.
        monitor: Option<MonitorId>,
    },
    /// New stream settings for the rest of the connection (the server is overloaded and lowers
    /// the frame-rate cap, or lifts it again): running captures follow them at once.
    Settings(StreamSettings),
    /// The server no longer takes frames of this contact (it was discarded, or closed after
    /// its agent stayed away past the offline deadline): the agent stops recording it and
    /// deletes what its spool holds of it.
    Forget {
        /// The contact.
        contact: ContactId,
    },
    /// Frames up to and including `sequence` are durable on the server.
    Ack {
        /// The contact.
        contact: ContactId,
        /// The monitor.
        monitor: MonitorId,
        /// The highest durable sequence number.
        sequence: u64,
    },
}

fn check_size(text: &str) -> Result<(), ProtocolError> {
    if text.len() > MAX_CONTROL_MESSAGE_BYTES {
        return Err(ProtocolError::TooLarge {
            what: "control message",
            size: text.len(),
            limit: MAX_CONTROL_MESSAGE_BYTES,
        });
    }
    Ok(())
}

fn check_text(field: &'static str, value: &str, limit: usize) -> Result<(), ProtocolError> {
    if value.len() > limit {
        return Err(ProtocolError::Invalid {
            field,
            reason: format!("longer than {limit} bytes"),
        });
    }
    Ok(())
}

fn check_monitors(monitors: &[MonitorInfo]) -> Result<(), ProtocolError> {
    if monitors.len() > MAX_MONITORS {
        return Err(ProtocolError::Invalid {
            field: "monitors",
            reason: format!("{} monitors, at most {MAX_MONITORS}", monitors.len()),
        });
    }
    for monitor in monitors {
        let dimension_ok = |d: u32| (1..=MAX_MONITOR_DIMENSION).contains(&d);
        if !dimension_ok(monitor.width) || !dimension_ok(monitor.height) {
            return Err(ProtocolError::Invalid {
                field: "monitors",
                reason: format!(
                    "monitor {} is {}x{}",
                    monitor.id, monitor.width, monitor.height
                ),
            });
        }
        if !(monitor.scale.is_finite() && (0.25..=8.0).contains(&monitor.scale)) {
            return Err(ProtocolError::Invalid {
                field: "monitors",
                reason: format!("monitor {} has scale {}", monitor.id, monitor.scale),
            });
        }
    }
    let mut ids: Vec<_> = monitors.iter().map(|m| m.id).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() != monitors.len() {
        return Err(ProtocolError::Invalid {
            field: "monitors",
            reason: "duplicate monitor id".into(),
        });
    }
    Ok(())
}

/// The version field of a `Hello`, read before the rest so that a future `Hello` whose other
/// fields changed is still refused with the right reason.
#[derive(Deserialize)]
struct VersionProbe {
    #[serde(rename = "type")]
    kind: String,
    protocol_version: u16,
}

impl AgentMessage {
    /// Parses and validates a text message from an agent.
    pub fn parse(text: &str) -> Result<AgentMessage, ProtocolError> {
        check_size(text)?;
        if let Ok(probe) = serde_json::from_str::<VersionProbe>(text)
            && probe.kind == "hello"
        {
            check_version(probe.protocol_version)?;
        }
        let message: AgentMessage =
            serde_json::from_str(text).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
        message.validate()?;
        Ok(message)
    }

    /// Checks every field against the protocol's limits.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        match self {
            AgentMessage::Hello(hello) => {
                check_version(hello.protocol_version)?;
                if hello.credential.is_empty() {
                    return Err(ProtocolError::Invalid {
                        field: "credential",
                        reason: "empty".into(),
                    });
                }
                check_text("credential", &hello.credential, MAX_CREDENTIAL_BYTES)?;
                check_text("os_user", &hello.os_user, MAX_TEXT_BYTES)?;
                check_text("machine", &hello.machine, MAX_TEXT_BYTES)?;
                check_text("agent_version", &hello.agent_version, MAX_TEXT_BYTES)?;
                if let Some(backend) = &hello.capture_backend {
                    check_text("capture_backend", backend, MAX_TEXT_BYTES)?;
                }
                if let Some(spooled) = &hello.spooled {
                    if spooled.len() > MAX_SPOOLED_CONTACTS {
                        return Err(ProtocolError::Invalid {
                            field: "spooled",
                            reason: format!(
                                "{} contacts, at most {MAX_SPOOLED_CONTACTS}",
                                spooled.len()
                            ),
                        });
                    }
                    if spooled.iter().any(|s| s.streams.len() > MAX_STREAMS) {
                        return Err(ProtocolError::Invalid {
                            field: "spooled",
                            reason: format!("more than {MAX_STREAMS} streams in a contact"),
                        });
                    }
                }
                if hello.agent_id.0 == Uuid::nil() {
                    return Err(ProtocolError::Invalid {
                        field: "agent_id",
                        reason: "nil".into(),
                    });
                }
                check_monitors(&hello.monitors)
            }
            AgentMessage::Monitors { monitors } => check_monitors(monitors),
            AgentMessage::StreamParams { width, height, .. } => {
                if !(1..=MAX_MONITOR_DIMENSION).contains(width)
                    || !(1..=MAX_MONITOR_DIMENSION).contains(height)
                {
                    return Err(ProtocolError::Invalid {
                        field: "stream_params",
                        reason: format!("{width}x{height}"),
                    });
                }
                Ok(())
            }
            AgentMessage::RecordingFailed { reason, .. } => {
                check_text("reason", reason, MAX_TEXT_BYTES)
            }
            AgentMessage::SpoolDropped {
                from, to, reason, ..
            } => {
                if from.0 > to.0 {
                    return Err(ProtocolError::Invalid {
                        field: "spool_dropped",
                        reason: "ends before it starts".into(),
                    });
                }
                check_text("reason", reason, MAX_TEXT_BYTES)
            }
            AgentMessage::Heartbeat {
                recording,
                capture_backend,
                ..
            } => {
                if recording.len() > 64 {
                    return Err(ProtocolError::Invalid {
                        field: "recording",
                        reason: "more than 64 contacts".into(),
                    });
                }
                match capture_backend {
                    Some(backend) => check_text("capture_backend", backend, MAX_TEXT_BYTES),
                    None => Ok(()),
                }
            }
            AgentMessage::CaptureGap {
                from, to, reason, ..
            } => {
                if reason.is_empty() {
                    return Err(ProtocolError::Invalid {
                        field: "reason",
                        reason: "empty".into(),
                    });
                }
                if from.0 > to.0 {
                    return Err(ProtocolError::Invalid {
                        field: "capture_gap",
                        reason: "ends before it starts".into(),
                    });
                }
                check_text("reason", reason, MAX_TEXT_BYTES)
            }
            AgentMessage::Pointer { samples, .. } => {
                if samples.is_empty() || samples.len() > MAX_POINTER_SAMPLES {
                    return Err(ProtocolError::Invalid {
                        field: "samples",
                        reason: format!("{} samples, 1 to {MAX_POINTER_SAMPLES}", samples.len()),
                    });
                }
                Ok(())
            }
            AgentMessage::Stopped { frames, .. } => {
                if frames.len() > MAX_STREAMS {
                    return Err(ProtocolError::Invalid {
                        field: "frames",
                        reason: format!("{} streams, at most {MAX_STREAMS}", frames.len()),
                    });
                }
                Ok(())
            }
            AgentMessage::StreamEnded { reason, .. } => {
                if reason.is_empty() {
                    return Err(ProtocolError::Invalid {
                        field: "reason",
                        reason: "empty".into(),
                    });
                }
                check_text("reason", reason, MAX_TEXT_BYTES)
            }
            AgentMessage::Ping { .. } | AgentMessage::Clock { .. } => Ok(()),
        }
    }

    /// The message as JSON text.
    pub fn to_json(&self) -> String {
        // Plain structs, string keys and finite numbers: serialisation cannot fail.
        serde_json::to_string(self).expect("control messages always serialise")
    }
}

impl ServerMessage {
    /// Parses a text message from the server.
    pub fn parse(text: &str) -> Result<ServerMessage, ProtocolError> {
        check_size(text)?;
        let message: ServerMessage =
            serde_json::from_str(text).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
        if let ServerMessage::Welcome(welcome) = &message {
            check_version(welcome.protocol_version)?;
        }
        Ok(message)
    }

    /// The message as JSON text.
    pub fn to_json(&self) -> String {
        // Plain structs, string keys and finite numbers: serialisation cannot fail.
        serde_json::to_string(self).expect("control messages always serialise")
    }

    /// The refusal for an unsupported version, with the versions this build accepts.
    pub fn refusal(code: RefusalCode, message: impl Into<String>) -> ServerMessage {
        ServerMessage::Refused(Refusal {
            code,
            message: message.into(),
            supported_versions: super::SUPPORTED_PROTOCOL_VERSIONS.to_vec(),
        })
    }
}
