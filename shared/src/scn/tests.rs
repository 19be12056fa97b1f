use std::time::Duration;

use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::ids::{AgentId, ContactId, MonitorId};
use crate::protocol::{MAX_TEXT_BYTES, VideoCodec};
use crate::time::{AgentMicros, UtcMicros, UtcMillis};

fn header() -> ScnHeader {
    ScnHeader {
        agent: AgentId(Uuid::from_u128(0xa6e7)),
        contact: ContactId(Uuid::from_u128(0xc0ffee)),
        created: UtcMicros(1_764_000_000_000_000),
        monitors: vec![crate::protocol::MonitorInfo {
            id: MonitorId(0),
            x: 0,
            y: 0,
            width: 1920,
            height: 1080,
            scale: 1.0,
            primary: true,
        }],
        clock_anchor: Some(ClockAnchor {
            agent: AgentMicros(5_000_000),
            server: UtcMicros(1_764_000_000_000_000),
            rtt_us: 800,
        }),
    }
}

fn short_text() -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!(".{{0,{}}}", MAX_TEXT_BYTES / 4)).expect("regex")
}

fn record() -> impl Strategy<Value = Record> {
    prop_oneof![
        (any::<u16>(), any::<u32>(), any::<u32>()).prop_map(|(m, width, height)| {
            Record::StreamParams {
                monitor: MonitorId(m),
                codec: VideoCodec::H264,
                width,
                height,
            }
        }),
        (
            any::<u16>(),
            any::<u64>(),
            any::<u64>(),
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 1..512)
        )
            .prop_map(|(m, sequence, t, keyframe, data)| Record::Video {
                monitor: MonitorId(m),
                sequence,
                captured: AgentMicros(t),
                keyframe,
                data
            }),
        (any::<i64>(), short_text()).prop_map(|(at, label)| Record::Marker {
            at: UtcMillis(at),
            label
        }),
        (any::<i64>(), short_text()).prop_map(|(at, reason)| Record::Pause {
            at: UtcMicros(at),
            reason
        }),
        any::<i64>().prop_map(|at| Record::Resume { at: UtcMicros(at) }),
        (any::<i64>(), any::<i64>(), short_text()).prop_map(|(from, to, reason)| Record::Gap {
            from: UtcMicros(from),
            to: UtcMicros(to),
            reason
        }),
        (any::<u64>(), any::<i64>(), any::<u64>()).prop_map(|(a, s, rtt_us)| Record::ClockSample(
            ClockAnchor {
                agent: AgentMicros(a),
                server: UtcMicros(s),
                rtt_us
            }
        )),
        (any::<u16>(), any::<u64>(), any::<i32>(), any::<i32>()).prop_map(|(m, t, x, y)| {
            Record::Pointer {
                monitor: MonitorId(m),
                captured: AgentMicros(t),
                x,
                y,
            }
        }),
        (any::<u16>(), any::<u64>(), short_text()).prop_map(|(m, t, reason)| {
            Record::StreamEnd {
                monitor: MonitorId(m),
                captured: AgentMicros(t),
                reason,
            }
        }),
    ]
}

/// Writes `records` (and an end record when `finish`) to a fresh file and returns its bytes.
fn write_file(
    records: &[Record],
    finish: bool,
) -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("contact.scn");
    let mut writer = ScnWriter::create(&path, &header(), FsyncPolicy::Never).expect("create");
    for record in records {
        writer.append(record).expect("append");
    }
    if finish {
        writer.finish(UtcMicros(42)).expect("finish");
    }
    let bytes = std::fs::read(&path).expect("read back");
    (dir, path, bytes)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn records_round_trip_through_a_file(records in proptest::collection::vec(record(), 0..24)) {
        let (_dir, path, _) = write_file(&records, true);
        let recovery = recover(&path).expect("recover");
        prop_assert_eq!(recovery.header, header());
        prop_assert!(recovery.ended);
        prop_assert_eq!(recovery.dropped, None);
        prop_assert_eq!(&recovery.records[..records.len()], &records[..]);
        prop_assert_eq!(&recovery.records[records.len()], &Record::End { at: UtcMicros(42) });
    }

    #[test]
    fn the_reader_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = recover_from_reader(&bytes[..]);
        let mut with_header = write_file(&[], false).2;
        with_header.extend_from_slice(&bytes);
        let recovery = recover_from_reader(&with_header[..]).expect("header is intact");
        if !bytes.is_empty() && recovery.records.is_empty() {
            prop_assert!(recovery.dropped.is_some());
        }
    }

    #[test]
    fn a_flipped_byte_in_a_record_is_detected(records in proptest::collection::vec(record(), 1..8), at in any::<usize>(), bit in 0u8..8) {
        let (_dir, _path, mut bytes) = write_file(&records, false);
        let header_len = write_file(&[], false).2.len();
        let index = header_len + at % (bytes.len() - header_len);
        bytes[index] ^= 1 << bit;
        let recovery = recover_from_reader(&bytes[..]).expect("header is intact");
        // Every record returned is one that was written, in order, and the damage is reported.
        prop_assert!(recovery.records.len() < records.len());
        prop_assert_eq!(&recovery.records[..], &records[..recovery.records.len()]);
        let dropped = recovery.dropped.expect("damage reported");
        prop_assert!(dropped.offset <= index as u64);
        prop_assert_eq!(dropped.offset + dropped.bytes, bytes.len() as u64);
    }
}

#[test]
fn a_file_cut_at_every_offset_yields_its_complete_prefix() {
    let records = vec![
        Record::StreamParams {
            monitor: MonitorId(0),
            codec: VideoCodec::H264,
            width: 1920,
            height: 1080,
        },
        Record::ClockSample(ClockAnchor {
            agent: AgentMicros(1),
            server: UtcMicros(2),
            rtt_us: 3,
        }),
        Record::Video {
            monitor: MonitorId(0),
            sequence: 0,
            captured: AgentMicros(10),
            keyframe: true,
            data: vec![7; 300],
        },
        Record::Marker {
            at: UtcMillis(5),
            label: "Connected".into(),
        },
        Record::Video {
            monitor: MonitorId(0),
            sequence: 1,
            captured: AgentMicros(20),
            keyframe: false,
            data: vec![8; 40],
        },
        Record::Pause {
            at: UtcMicros(30),
            reason: "payment card".into(),
        },
        Record::Resume { at: UtcMicros(40) },
        Record::Gap {
            from: UtcMicros(50),
            to: UtcMicros(60),
            reason: "screen not captured: agent offline".into(),
        },
    ];
    let (_dir, _path, bytes) = write_file(&records, true);
    let header_len = write_file(&[], false).2.len();
    // Record boundaries: where each complete prefix ends.
    let mut boundaries = vec![header_len];
    {
        let mut reader = ScnReader::new(&bytes[..]).expect("reader");
        while reader.next_record().expect("io").is_some() {
            boundaries.push(reader.offset() as usize);
        }
    }
    assert_eq!(boundaries.len(), records.len() + 2);
    assert_eq!(*boundaries.last().expect("last"), bytes.len());

    for cut in 0..=bytes.len() {
        let prefix = &bytes[..cut];
        match recover_from_reader(prefix) {
            Err(ScnError::HeaderTorn { .. }) => assert!(cut < header_len, "cut {cut}"),
            Err(other) => panic!("cut {cut}: unexpected error {other}"),
            Ok(recovery) => {
                let complete = boundaries.iter().filter(|b| **b <= cut).count() - 1;
                let mut expected = records.clone();
                expected.push(Record::End { at: UtcMicros(42) });
                assert_eq!(recovery.records, expected[..complete], "cut {cut}");
                let valid_end = boundaries[complete];
                if cut == valid_end {
                    assert_eq!(recovery.dropped, None, "cut {cut}");
                } else {
                    let dropped = recovery.dropped.expect("torn tail reported");
                    assert_eq!(dropped.offset, valid_end as u64, "cut {cut}");
                    assert_eq!(dropped.bytes, (cut - valid_end) as u64, "cut {cut}");
                    assert!(
                        matches!(dropped.reason, DropReason::Torn { .. }),
                        "cut {cut}: {:?}",
                        dropped.reason
                    );
                }
            }
        }
    }
}

#[test]
fn open_append_cuts_a_torn_tail_and_continues() {
    let records = vec![
        Record::Marker {
            at: UtcMillis(1),
            label: "Ringing".into(),
        },
        Record::Video {
            monitor: MonitorId(0),
            sequence: 0,
            captured: AgentMicros(1),
            keyframe: true,
            data: vec![1; 100],
        },
    ];
    let (_dir, path, bytes) = write_file(&records, false);
    // Simulate a crash in the middle of a third record.
    let mut torn = bytes.clone();
    torn.extend_from_slice(&[50, 0, 0, 0, 1, 2, 3]);
    std::fs::write(&path, &torn).expect("write torn");

    let (mut writer, dropped) =
        ScnWriter::open_append(&path, FsyncPolicy::EveryRecord).expect("reopen");
    let dropped = dropped.expect("torn tail reported");
    assert_eq!(dropped.offset, bytes.len() as u64);
    assert_eq!(dropped.bytes, 7);
    assert_eq!(writer.bytes_written(), bytes.len() as u64);
    let more = Record::Marker {
        at: UtcMillis(2),
        label: "Connected".into(),
    };
    writer.append(&more).expect("append after recovery");
    writer.finish(UtcMicros(9)).expect("finish");

    let recovery = recover(&path).expect("recover");
    assert!(recovery.ended);
    assert_eq!(recovery.dropped, None);
    assert_eq!(recovery.records.len(), 4);
    assert_eq!(recovery.records[2], more);
    assert!(matches!(
        ScnWriter::open_append(&path, FsyncPolicy::Never),
        Err(ScnError::Closed)
    ));
}

#[test]
fn a_batch_rewound_after_a_failure_is_written_again_once() {
    let first = Record::Marker {
        at: UtcMillis(1),
        label: "Ringing".into(),
    };
    let (_dir, path, bytes) = write_file(std::slice::from_ref(&first), false);
    let (mut writer, _) = ScnWriter::open_append(&path, FsyncPolicy::Never).expect("reopen");
    let start = writer.bytes_written();
    assert_eq!(start, bytes.len() as u64);
    let frame = |sequence| Record::Video {
        monitor: MonitorId(0),
        sequence,
        captured: AgentMicros(sequence),
        keyframe: sequence == 0,
        data: vec![7; 64],
    };
    // Half a batch went in before its sync failed: rewound, then the whole batch again.
    writer.append(&frame(0)).expect("append");
    writer.rewind(start).expect("rewind");
    assert_eq!(writer.bytes_written(), start);
    assert!(writer.rewind(start + 1).is_err(), "no rewinding forwards");
    for sequence in 0..2 {
        writer.append(&frame(sequence)).expect("append again");
    }
    writer.finish(UtcMicros(9)).expect("finish");
    let recovery = recover(&path).expect("recover");
    assert_eq!(
        recovery.records,
        vec![first, frame(0), frame(1), Record::End { at: UtcMicros(9) }]
    );
}

#[test]
fn bad_files_and_records_are_refused_with_their_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.scn");
    std::fs::write(&path, b"GIF89a not an scn file at all").expect("write");
    assert!(matches!(recover(&path), Err(ScnError::BadMagic)));

    let (_dir, path, mut bytes) = write_file(&[], false);
    bytes[8] = 2;
    assert!(matches!(
        recover_from_reader(&bytes[..]),
        Err(ScnError::UnsupportedVersion(2))
    ));
    bytes[8] = 1;
    let last = bytes.len() - 2;
    bytes[last] ^= 0x20;
    assert!(matches!(
        recover_from_reader(&bytes[..]),
        Err(ScnError::HeaderCorrupt(_))
    ));

    let mut writer = ScnWriter::open_append(&path, FsyncPolicy::Never)
        .expect("open")
        .0;
    let empty = Record::Video {
        monitor: MonitorId(0),
        sequence: 0,
        captured: AgentMicros(0),
        keyframe: false,
        data: vec![],
    };
    assert!(matches!(
        writer.append(&empty),
        Err(ScnError::InvalidRecord(_))
    ));
    let long = Record::Marker {
        at: UtcMillis(0),
        label: "x".repeat(MAX_TEXT_BYTES + 1),
    };
    assert!(matches!(
        writer.append(&long),
        Err(ScnError::InvalidRecord(_))
    ));
    let huge = Record::Video {
        monitor: MonitorId(0),
        sequence: 0,
        captured: AgentMicros(0),
        keyframe: false,
        data: vec![0; MAX_RECORD_BYTES as usize],
    };
    assert!(matches!(
        writer.append(&huge),
        Err(ScnError::RecordTooLarge(_))
    ));
    // Nothing refused reached the file.
    assert_eq!(recover(&path).expect("recover").records, vec![]);
    assert!(
        ScnWriter::create(&path, &header(), FsyncPolicy::Never).is_err(),
        "create never overwrites"
    );

    // A record with a valid CRC but an unknown type is reported as such.
    let mut unknown = write_file(&[], false).2;
    let body = [99u8, 1, 2];
    unknown.extend_from_slice(&(body.len() as u32).to_le_bytes());
    unknown.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    unknown.extend_from_slice(&body);
    let recovery = recover_from_reader(&unknown[..]).expect("header ok");
    assert_eq!(
        recovery.dropped.expect("dropped").reason,
        DropReason::UnknownType(99)
    );
}

#[test]
fn every_fsync_policy_writes_a_readable_file() {
    for policy in [
        FsyncPolicy::EveryRecord,
        FsyncPolicy::Interval(Duration::from_millis(1)),
        FsyncPolicy::Never,
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.scn");
        let mut writer = ScnWriter::create(&path, &header(), policy).expect("create");
        for sequence in 0..50 {
            let record = Record::Video {
                monitor: MonitorId(1),
                sequence,
                captured: AgentMicros(sequence * 200_000),
                keyframe: sequence % 10 == 0,
                data: vec![sequence as u8; 64],
            };
            writer.append(&record).expect("append");
        }
        // Without finishing: a process that dies here leaves all 50 records readable.
        drop(writer);
        let recovery = recover(&path).expect("recover");
        assert_eq!(recovery.records.len(), 50, "{policy:?}");
        assert!(!recovery.ended);
        assert_eq!(
            recovery.records.iter().filter(|r| r.is_keyframe()).count(),
            5
        );
    }
}

#[test]
fn an_anchor_maps_agent_instants_onto_the_server_clock() {
    let anchor = ClockAnchor {
        agent: AgentMicros(1_000_000),
        server: UtcMicros(1_700_000_000_000_000),
        rtt_us: 400,
    };
    assert_eq!(anchor.offset_us(), 1_699_999_999_000_000);
    assert_eq!(
        anchor.to_server(AgentMicros(1_200_000)),
        UtcMicros(1_700_000_000_200_000)
    );
    assert_eq!(
        anchor.to_server(AgentMicros(0)),
        UtcMicros(1_699_999_999_000_000)
    );
}
