use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::ids::{AgentId, ContactId, MonitorId};
use crate::time::{AgentMicros, UtcMicros, UtcMillis};

fn contact() -> impl Strategy<Value = ContactId> {
    any::<u128>().prop_map(|n| ContactId(Uuid::from_u128(n)))
}

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!(".{{0,{}}}", max / 4)).expect("regex")
}

fn monitor() -> impl Strategy<Value = MonitorInfo> {
    (
        any::<u16>(),
        any::<i32>(),
        any::<i32>(),
        1..=MAX_MONITOR_DIMENSION,
        1..=MAX_MONITOR_DIMENSION,
        1u8..=32,
        any::<bool>(),
    )
        .prop_map(|(id, x, y, width, height, quarter, primary)| MonitorInfo {
            id: MonitorId(id),
            x,
            y,
            width,
            height,
            scale: f32::from(quarter) * 0.25,
            primary,
        })
}

fn monitors() -> impl Strategy<Value = Vec<MonitorInfo>> {
    proptest::collection::vec(monitor(), 0..=MAX_MONITORS).prop_map(|mut list| {
        for (index, monitor) in list.iter_mut().enumerate() {
            monitor.id = MonitorId(u16::try_from(index).expect("small"));
        }
        list
    })
}

fn hello() -> impl Strategy<Value = Hello> {
    (
        1u128..,
        text(MAX_CREDENTIAL_BYTES),
        text(MAX_TEXT_BYTES),
        text(MAX_TEXT_BYTES),
        monitors(),
        text(MAX_TEXT_BYTES),
        proptest::option::of(text(MAX_TEXT_BYTES)),
    )
        .prop_map(
            |(agent, credential, os_user, machine, monitors, agent_version, capture_backend)| {
                Hello {
                    protocol_version: PROTOCOL_VERSION,
                    agent_id: AgentId(Uuid::from_u128(agent)),
                    credential: format!("c{credential}"),
                    os_user,
                    machine,
                    monitors,
                    agent_version,
                    capture_backend,
                    spooled: None,
                }
            },
        )
}

fn agent_message() -> impl Strategy<Value = AgentMessage> {
    prop_oneof![
        hello().prop_map(AgentMessage::Hello),
        (any::<u64>(), any::<u64>()).prop_map(|(nonce, t)| AgentMessage::Ping {
            nonce,
            agent_sent: AgentMicros(t)
        }),
        (
            proptest::collection::vec(contact(), 0..8),
            any::<u64>(),
            proptest::option::of(text(MAX_TEXT_BYTES))
        )
            .prop_map(|(recording, spool_bytes, capture_backend)| {
                AgentMessage::Heartbeat {
                    recording,
                    spool_bytes,
                    capture_backend,
                }
            }),
        (
            contact(),
            any::<u16>(),
            any::<u64>(),
            any::<u32>(),
            text(MAX_TEXT_BYTES)
        )
            .prop_map(|(contact, monitor, from, length, reason)| {
                AgentMessage::CaptureGap {
                    contact,
                    monitor: MonitorId(monitor),
                    from: AgentMicros(from / 2),
                    to: AgentMicros(from / 2 + u64::from(length)),
                    reason: format!("r{reason}"),
                }
            }),
        (
            contact(),
            any::<u16>(),
            1..=MAX_MONITOR_DIMENSION,
            1..=MAX_MONITOR_DIMENSION
        )
            .prop_map(
                |(contact, monitor, width, height)| AgentMessage::StreamParams {
                    contact,
                    monitor: MonitorId(monitor),
                    codec: VideoCodec::H264,
                    width,
                    height,
                }
            ),
        monitors().prop_map(|monitors| AgentMessage::Monitors { monitors }),
        (contact(), any::<u16>(), any::<u64>(), 1u32..1000).prop_map(
            |(contact, monitor, at, reason)| AgentMessage::StreamEnded {
                contact,
                monitor: MonitorId(monitor),
                at: AgentMicros(at),
                reason: format!("monitor {reason} was disconnected"),
            }
        ),
        (contact(), text(MAX_TEXT_BYTES))
            .prop_map(|(contact, reason)| AgentMessage::RecordingFailed { contact, reason }),
        (any::<u64>(), any::<i64>(), any::<i64>(), any::<u64>()).prop_map(|(t0, t1, t2, t3)| {
            AgentMessage::Clock {
                sample: ClockSample {
                    agent_sent: AgentMicros(t0),
                    server_received: UtcMicros(t1),
                    server_sent: UtcMicros(t2),
                    agent_received: AgentMicros(t3),
                },
            }
        }),
        (
            contact(),
            any::<u16>(),
            proptest::collection::vec(
                (any::<u64>(), any::<i32>(), any::<i32>()),
                1..=MAX_POINTER_SAMPLES
            )
        )
            .prop_map(|(contact, monitor, samples)| AgentMessage::Pointer {
                contact,
                monitor: MonitorId(monitor),
                samples: samples
                    .into_iter()
                    .map(|(t, x, y)| PointerSample {
                        captured: AgentMicros(t),
                        x,
                        y
                    })
                    .collect(),
            }),
        (
            contact(),
            proptest::collection::vec((any::<u16>(), any::<u64>()), 0..=MAX_STREAMS)
        )
            .prop_map(|(contact, frames)| AgentMessage::Stopped {
                contact,
                frames: frames
                    .into_iter()
                    .map(|(m, frames)| StreamTotal {
                        monitor: MonitorId(m),
                        frames
                    })
                    .collect(),
            }),
    ]
}

fn server_message() -> impl Strategy<Value = ServerMessage> {
    let settings =
        (1u8..10, 1u8..60, 1u32..100_000, 1u32..3600).prop_map(|(min, max, kbps, key)| {
            StreamSettings {
                fps_min: f32::from(min) * 0.5,
                fps_max: f32::from(max) * 0.5,
                bitrate_cap_kbps: kbps,
                keyframe_interval_s: key,
            }
        });
    prop_oneof![
        (settings, any::<i64>()).prop_map(|(settings, t)| ServerMessage::Welcome(Welcome {
            protocol_version: PROTOCOL_VERSION,
            settings,
            server_time: UtcMicros(t),
            held: Vec::new(),
            forget: Vec::new(),
        })),
        text(200).prop_map(|m| ServerMessage::refusal(RefusalCode::BadCredential, m)),
        (any::<u64>(), any::<u64>(), any::<i64>(), any::<i64>()).prop_map(|(nonce, t0, t1, t2)| {
            ServerMessage::Pong {
                nonce,
                agent_sent: AgentMicros(t0),
                server_received: UtcMicros(t1),
                server_sent: UtcMicros(t2),
            }
        }),
        contact().prop_map(|contact| ServerMessage::Start {
            contact,
            resume: Vec::new()
        }),
        contact().prop_map(|contact| ServerMessage::Stop { contact }),
        contact().prop_map(|contact| ServerMessage::Keep { contact }),
        contact().prop_map(|contact| ServerMessage::Discard { contact }),
        (contact(), text(64), any::<i64>()).prop_map(|(contact, label, at)| {
            ServerMessage::Marker {
                contact,
                label,
                at: UtcMillis(at),
            }
        }),
        (contact(), proptest::option::of(any::<u16>())).prop_map(|(contact, monitor)| {
            ServerMessage::RequestKeyframe {
                contact,
                monitor: monitor.map(MonitorId),
            }
        }),
        (contact(), any::<u16>(), any::<u64>()).prop_map(|(contact, monitor, sequence)| {
            ServerMessage::Ack {
                contact,
                monitor: MonitorId(monitor),
                sequence,
            }
        }),
    ]
}

fn frame_header() -> impl Strategy<Value = FrameHeader> {
    (
        contact(),
        any::<u16>(),
        any::<u64>(),
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(
            |(contact, monitor, sequence, captured, keyframe)| FrameHeader {
                contact,
                monitor: MonitorId(monitor),
                sequence,
                captured: AgentMicros(captured),
                keyframe,
            },
        )
}

proptest! {
    #[test]
    fn agent_messages_round_trip(message in agent_message()) {
        let json = message.to_json();
        prop_assert_eq!(AgentMessage::parse(&json).expect("parses"), message);
    }

    #[test]
    fn server_messages_round_trip(message in server_message()) {
        let json = message.to_json();
        prop_assert_eq!(ServerMessage::parse(&json).expect("parses"), message);
    }

    #[test]
    fn frames_round_trip(header in frame_header(), payload in proptest::collection::vec(any::<u8>(), 1..2048)) {
        let bytes = encode_frame(&header, &payload);
        prop_assert_eq!(bytes.len(), frame::FRAME_HEADER_BYTES + payload.len());
        let (decoded, access_unit) = decode_frame(&bytes).expect("decodes");
        prop_assert_eq!(decoded, header);
        prop_assert_eq!(access_unit, &payload[..]);
    }

    #[test]
    fn frame_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        let _ = decode_frame(&bytes);
    }

    #[test]
    fn control_parsers_never_panic(text in ".{0,300}") {
        let _ = AgentMessage::parse(&text);
        let _ = ServerMessage::parse(&text);
    }

    #[test]
    fn mutated_messages_never_panic(message in agent_message(), at in any::<usize>(), byte in any::<u8>()) {
        let mut bytes = message.to_json().into_bytes();
        let index = at % bytes.len();
        bytes[index] = byte;
        if let Ok(text) = String::from_utf8(bytes) {
            let _ = AgentMessage::parse(&text);
        }
    }

    #[test]
    fn clock_offset_is_exact_on_a_symmetric_link(
        offset in -1_000_000_000_000i64..1_000_000_000_000,
        t0 in 0u64..1_000_000_000_000,
        one_way in 0u64..1_000_000,
        processing in 0u64..10_000,
    ) {
        let sample = ClockSample {
            agent_sent: AgentMicros(t0),
            server_received: UtcMicros(t0 as i64 + offset + one_way as i64),
            server_sent: UtcMicros(t0 as i64 + offset + one_way as i64 + processing as i64),
            agent_received: AgentMicros(t0 + 2 * one_way + processing),
        };
        prop_assert_eq!(sample.offset_us(), offset);
        prop_assert_eq!(sample.rtt_us(), 2 * one_way);
    }
}

#[test]
fn an_unknown_protocol_version_is_refused_by_name() {
    let hello =
        r#"{"type":"hello","protocol_version":2,"agent_id":"not even a uuid","future_field":1}"#;
    assert_eq!(
        AgentMessage::parse(hello),
        Err(ProtocolError::UnsupportedVersion {
            got: 2,
            supported: SUPPORTED_PROTOCOL_VERSIONS
        })
    );
    let refusal = ServerMessage::refusal(RefusalCode::UnsupportedProtocolVersion, "speak v1");
    let json: serde_json::Value = serde_json::from_str(&refusal.to_json()).expect("json");
    assert_eq!(json["type"], "refused");
    assert_eq!(json["code"], "unsupported_protocol_version");
    assert_eq!(json["supported_versions"], serde_json::json!([1]));
}

#[test]
fn limits_are_enforced() {
    let huge = format!(
        r#"{{"type":"heartbeat","recording":[],"spool_bytes":0,"pad":"{}"}}"#,
        "x".repeat(MAX_CONTROL_MESSAGE_BYTES)
    );
    assert!(matches!(
        AgentMessage::parse(&huge),
        Err(ProtocolError::TooLarge { .. })
    ));

    let frame = vec![1u8; MAX_FRAME_BYTES + 1];
    assert!(matches!(
        decode_frame(&frame),
        Err(ProtocolError::TooLarge { .. })
    ));

    let header = FrameHeader {
        contact: ContactId(Uuid::from_u128(7)),
        monitor: MonitorId(0),
        sequence: 0,
        captured: AgentMicros(0),
        keyframe: true,
    };
    let mut bytes = encode_frame(&header, &[0, 0, 0, 1, 0x65]);
    assert!(decode_frame(&bytes[..35]).is_err(), "short header");
    assert!(decode_frame(&bytes[..36]).is_err(), "empty access unit");
    bytes[1] |= 0b10;
    assert_eq!(
        decode_frame(&bytes),
        Err(ProtocolError::BadFrame("unknown flag bits set"))
    );
    bytes[1] = 1;
    bytes[0] = 9;
    assert_eq!(
        decode_frame(&bytes),
        Err(ProtocolError::BadFrame("unknown frame header version"))
    );

    let mut hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        agent_id: AgentId(Uuid::from_u128(1)),
        credential: "secret".into(),
        os_user: "alice".into(),
        machine: "pc-17".into(),
        monitors: vec![],
        agent_version: "0.1.0".into(),
        capture_backend: Some("gdi".into()),
        spooled: None,
    };
    hello.monitors = (0..=MAX_MONITORS as u16)
        .map(|id| MonitorInfo {
            id: MonitorId(id),
            x: 0,
            y: 0,
            width: 10,
            height: 10,
            scale: 1.0,
            primary: false,
        })
        .collect();
    assert!(matches!(
        AgentMessage::Hello(hello.clone()).validate(),
        Err(ProtocolError::Invalid {
            field: "monitors",
            ..
        })
    ));
    hello.monitors.truncate(2);
    hello.monitors[1].id = MonitorId(0);
    assert!(
        AgentMessage::Hello(hello.clone()).validate().is_err(),
        "duplicate monitor ids"
    );
    hello.monitors.truncate(1);
    hello.credential = String::new();
    assert!(
        AgentMessage::Hello(hello.clone()).validate().is_err(),
        "empty credential"
    );
    hello.credential = "x".repeat(MAX_CREDENTIAL_BYTES + 1);
    assert!(
        AgentMessage::Hello(hello).validate().is_err(),
        "long credential"
    );
    assert!(matches!(
        AgentMessage::parse(r#"{"type":"launch_missiles"}"#),
        Err(ProtocolError::Malformed(_))
    ));
}

#[test]
fn the_estimator_trusts_the_tightest_round_trip() {
    let mut estimator = ClockEstimator::default();
    assert_eq!(estimator.to_server(AgentMicros(5)), None);
    // A slow, asymmetric exchange (offset estimate off by 40 ms) and a fast one (exact).
    estimator.add(ClockSample {
        agent_sent: AgentMicros(1_000),
        server_received: UtcMicros(1_000_000 + 1_000 + 90_000),
        server_sent: UtcMicros(1_000_000 + 1_000 + 90_000),
        agent_received: AgentMicros(1_000 + 100_000),
    });
    estimator.add(ClockSample {
        agent_sent: AgentMicros(2_000),
        server_received: UtcMicros(1_000_000 + 2_000 + 500),
        server_sent: UtcMicros(1_000_000 + 2_000 + 500),
        agent_received: AgentMicros(3_000),
    });
    assert_eq!(estimator.best().expect("sample").rtt_us(), 1_000);
    assert_eq!(
        estimator.to_server(AgentMicros(10)),
        Some(UtcMicros(1_000_010))
    );
}

#[test]
fn a_capture_gap_must_end_after_it_starts_and_say_why() {
    let gap = |from: u64, to: u64, reason: &str| {
        AgentMessage::CaptureGap {
            contact: ContactId(Uuid::from_u128(5)),
            monitor: MonitorId(0),
            from: AgentMicros(from),
            to: AgentMicros(to),
            reason: reason.into(),
        }
        .to_json()
    };
    assert!(AgentMessage::parse(&gap(10, 20, "screen locked")).is_ok());
    assert!(matches!(
        AgentMessage::parse(&gap(20, 10, "screen locked")),
        Err(ProtocolError::Invalid {
            field: "capture_gap",
            ..
        })
    ));
    assert!(matches!(
        AgentMessage::parse(&gap(10, 20, "")),
        Err(ProtocolError::Invalid {
            field: "reason",
            ..
        })
    ));
}

#[test]
fn a_hello_without_a_capture_backend_is_an_older_agent_not_an_error() {
    let text = r#"{"type":"hello","protocol_version":1,"agent_id":"00000000-0000-0000-0000-000000000001",
        "credential":"c","os_user":"u","machine":"m","monitors":[],"agent_version":"0.1.0"}"#;
    match AgentMessage::parse(text) {
        Ok(AgentMessage::Hello(hello)) => assert_eq!(hello.capture_backend, None),
        other => panic!("{other:?}"),
    }
}
