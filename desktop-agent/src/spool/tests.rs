use super::*;
use uuid::Uuid;

fn monitors() -> Vec<MonitorInfo> {
    vec![MonitorInfo {
        id: MonitorId(0),
        x: 0,
        y: 0,
        width: 64,
        height: 48,
        scale: 1.0,
        primary: true,
    }]
}

fn agent() -> AgentId {
    AgentId(Uuid::from_u128(7))
}

fn frame(contact: ContactId, at: u64, keyframe: bool, data: &[u8]) -> SpoolFrame<'_> {
    SpoolFrame {
        contact,
        monitor: MonitorId(0),
        captured: AgentMicros(at),
        keyframe,
        width: 64,
        height: 48,
        data,
    }
}

/// Everything the spool sends now, as (sequence of each frame, names of control messages).
fn drain(spool: &mut Spool) -> (Vec<u64>, Vec<String>) {
    let mut frames = Vec::new();
    let mut controls = Vec::new();
    while let Some(out) = spool.next_outgoing().expect("send") {
        match out {
            Outgoing::Frame(bytes) => {
                let (header, _) = capture_shared::protocol::decode_frame(&bytes).expect("frame");
                frames.push(header.sequence);
            }
            Outgoing::Control(message) => {
                let json = message.to_json();
                let kind: serde_json::Value = serde_json::from_str(&json).expect("json");
                controls.push(kind["type"].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    (frames, controls)
}

#[test]
fn frames_go_out_in_order_after_their_parameters_and_stay_until_acknowledged() {
    let dir = tempfile::tempdir().expect("dir");
    let mut spool =
        Spool::open(dir.path(), agent(), DEFAULT_QUOTA_BYTES, monitors()).expect("open");
    let contact = ContactId(Uuid::new_v4());
    for i in 0..5 {
        spool
            .append(&frame(contact, i, i == 0, &[0, 0, 0, 1, 9]))
            .expect("append");
    }
    let (frames, controls) = drain(&mut spool);
    assert_eq!(frames, vec![0, 1, 2, 3, 4]);
    assert_eq!(controls, vec!["stream_params"]);
    // A new connection sends again what was not acknowledged, parameters first.
    spool.ack(contact, MonitorId(0), 2).expect("ack");
    spool.reconnected(&[], &[]).expect("reconnect");
    let (frames, controls) = drain(&mut spool);
    assert_eq!(frames, vec![3, 4]);
    assert_eq!(controls, vec!["stream_params"]);
}

#[test]
fn a_killed_agent_finds_its_spool_and_the_server_says_what_it_holds() {
    let dir = tempfile::tempdir().expect("dir");
    let contact = ContactId(Uuid::new_v4());
    {
        let mut spool =
            Spool::open(dir.path(), agent(), DEFAULT_QUOTA_BYTES, monitors()).expect("open");
        for i in 0..10 {
            spool
                .append(&frame(contact, i, i % 4 == 0, &[1; 100]))
                .expect("append");
        }
        // Dropped without ending: as after `kill -9`.
    }
    let mut spool =
        Spool::open(dir.path(), agent(), DEFAULT_QUOTA_BYTES, monitors()).expect("reopen");
    assert_eq!(spool.pending_frames(), 10);
    assert_eq!(spool.unended(), vec![contact]);
    let held = HeldContact {
        contact,
        streams: vec![StreamTotal {
            monitor: MonitorId(0),
            frames: 6,
        }],
        ended: false,
    };
    spool.reconnected(&[held], &[]).expect("reconnect");
    let (frames, _) = drain(&mut spool);
    assert_eq!(frames, vec![6, 7, 8, 9], "only what the server lacks");
    // Recording continues in the same file, with the next sequence.
    spool
        .append(&frame(contact, 10, true, &[1; 100]))
        .expect("append");
    let (frames, _) = drain(&mut spool);
    assert_eq!(frames, vec![10]);
}

#[test]
fn an_ended_contact_is_reported_stopped_and_leaves_the_disk_once_acknowledged() {
    let dir = tempfile::tempdir().expect("dir");
    let mut spool =
        Spool::open(dir.path(), agent(), DEFAULT_QUOTA_BYTES, monitors()).expect("open");
    let contact = ContactId(Uuid::new_v4());
    for i in 0..3 {
        spool
            .append(&frame(contact, i, i == 0, &[2; 50]))
            .expect("append");
    }
    spool.end(contact).expect("end");
    let (frames, controls) = drain(&mut spool);
    assert_eq!(frames, vec![0, 1, 2]);
    assert_eq!(controls, vec!["stream_params", "stopped"]);
    assert!(spool.contains(contact));
    spool.ack(contact, MonitorId(0), 2).expect("ack");
    assert!(!spool.contains(contact));
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
}

#[test]
fn segments_roll_over_and_acknowledged_ones_are_deleted() {
    let dir = tempfile::tempdir().expect("dir");
    let mut spool = Spool::open(dir.path(), agent(), u64::MAX, monitors()).expect("open");
    let contact = ContactId(Uuid::new_v4());
    let big = vec![3u8; 1024 * 1024];
    for i in 0..10 {
        spool
            .append(&frame(contact, i, i == 0, &big))
            .expect("append");
    }
    let files = || std::fs::read_dir(dir.path()).expect("dir").count();
    assert!(files() >= 3, "{} segments", files());
    spool.ack(contact, MonitorId(0), 8).expect("ack");
    assert_eq!(files(), 1, "only the segment still written");
    // Reopened, the remaining segment still reads on its own (its parameters first); acks are
    // not kept on disk, so what it holds goes again unless the server says it has it.
    drop(spool);
    let mut spool = Spool::open(dir.path(), agent(), u64::MAX, monitors()).expect("reopen");
    let (frames, controls) = drain(&mut spool);
    assert_eq!(frames, vec![8, 9]);
    assert_eq!(controls, vec!["stream_params"]);
}

#[test]
fn a_full_spool_drops_the_oldest_ended_contact_and_reports_it() {
    let dir = tempfile::tempdir().expect("dir");
    let mut spool = Spool::open(dir.path(), agent(), 40_000, monitors()).expect("open");
    let old = ContactId(Uuid::new_v4());
    let live = ContactId(Uuid::new_v4());
    for i in 0..20 {
        spool
            .append(&frame(old, i, i == 0, &[4; 1000]))
            .expect("append");
    }
    spool.end(old).expect("end");
    for i in 100..140 {
        spool
            .append(&frame(live, i, i == 100, &[5; 1000]))
            .expect("append");
    }
    assert!(!spool.contains(old), "the ended contact went first");
    assert!(spool.disk_bytes() <= 40_000);
    let dropped = spool.take_dropped();
    assert!(
        matches!(&dropped[..], [AgentMessage::SpoolDropped { contact, frames: 20, from, to, .. }]
            if *contact == old && from.0 == 0 && to.0 == 19),
        "{dropped:?}"
    );
}

#[test]
fn a_full_spool_with_only_a_live_contact_drops_its_newest_frames_until_a_keyframe() {
    let dir = tempfile::tempdir().expect("dir");
    let mut spool = Spool::open(dir.path(), agent(), 12_000, monitors()).expect("open");
    let live = ContactId(Uuid::new_v4());
    let mut results = Vec::new();
    for i in 0..20 {
        results.push(
            spool
                .append(&frame(live, i, i == 0, &[6; 1000]))
                .expect("append"),
        );
    }
    let kept = results.iter().filter(|r| **r == Appended::Kept).count();
    assert!(kept > 0 && kept < 20, "{results:?}");
    // The server acknowledges; room returns, but a delta frame is not kept before a keyframe.
    let (frames, _) = drain(&mut spool);
    spool
        .ack(live, MonitorId(0), *frames.last().expect("sent"))
        .expect("ack");
    assert_eq!(
        spool
            .append(&frame(live, 50, false, &[6; 10]))
            .expect("append"),
        Appended::Dropped
    );
    // The segment still written holds the acknowledged frames: a new one starts when it fills;
    // a keyframe is kept once room is back.
    let _ = spool
        .append(&frame(live, 51, true, &[6; 10]))
        .expect("append");
    let dropped = spool.take_dropped();
    assert!(
        matches!(&dropped[..], [AgentMessage::SpoolDropped { contact, frames, .. }] if *contact == live && *frames >= 1),
        "{dropped:?}"
    );
    let (frames, _) = drain(&mut spool);
    assert_eq!(
        frames,
        vec![kept as u64],
        "sequences continue without a hole"
    );
}

#[test]
fn a_forgotten_contact_leaves_no_file() {
    let dir = tempfile::tempdir().expect("dir");
    let mut spool =
        Spool::open(dir.path(), agent(), DEFAULT_QUOTA_BYTES, monitors()).expect("open");
    let contact = ContactId(Uuid::new_v4());
    spool
        .append(&frame(contact, 0, true, &[1; 10]))
        .expect("append");
    spool.reconnected(&[], &[contact]).expect("reconnect");
    assert!(!spool.contains(contact));
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
}
