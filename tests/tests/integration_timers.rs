//! The processor's timers on a manual clock: the wrap-up timer and the contact-length cap close
//! every contact without any further event. (Why not tokio's paused clock: `server::clock`.)

use std::time::Duration;

use capture_server::clock::Clock;
use capture_server::integration::machine::Policy;
use capture_server::integration::processor::Processor;
use capture_server::store::{ContactFilter, Store};
use capture_shared::time::UtcMillis;
use capture_tests::webex::{CallScript, manual_processor, new_deliveries};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const T0: i64 = 1_795_000_000_000;

async fn deliver(store: &Store, envelopes: &[serde_json::Value]) -> anyhow::Result<()> {
    store
        .insert_deliveries(&new_deliveries(envelopes, T0))
        .await?;
    Ok(())
}

async fn states(store: &Store) -> anyhow::Result<Vec<(String, Option<String>)>> {
    let filter = ContactFilter {
        limit: 100,
        ..ContactFilter::default()
    };
    Ok(store
        .contacts(&filter)
        .await?
        .into_iter()
        .map(|c| (c.state, c.close_reason))
        .collect())
}

/// A processor on a manual clock at `T0`, with a real store.
async fn processor(policy: Policy) -> anyhow::Result<(tempfile::TempDir, Store, Processor)> {
    manual_processor(policy, T0).await
}

/// Lets `seconds` pass in one-second steps, with a processor pass after each, as its timer would.
async fn pass(processor: &Processor, seconds: i64) -> anyhow::Result<()> {
    for _ in 0..seconds {
        processor.clock.advance(1_000);
        processor.drain().await?;
    }
    Ok(())
}

#[tokio::test]
async fn the_wrap_up_timer_closes_a_contact_after_its_last_call() -> anyhow::Result<()> {
    let policy = Policy {
        wrap_up_ms: Some(30_000),
        ..Policy::default()
    };
    let (_dir, store, processor) = processor(policy).await?;
    let mut call = CallScript::new(Uuid::from_u128(1), 1, Uuid::from_u128(2), UtcMillis(T0));
    deliver(
        &store,
        &[
            call.envelope("alerting", UtcMillis(T0)),
            call.envelope("connected", UtcMillis(T0 + 1_000)),
        ],
    )
    .await?;
    pass(&processor, 2).await?;
    assert_eq!(states(&store).await?, [("kept".to_owned(), None)]);

    deliver(
        &store,
        &[call.envelope("disconnected", UtcMillis(T0 + 2_000))],
    )
    .await?;
    pass(&processor, 20).await?;
    assert_eq!(
        states(&store).await?,
        [("kept".to_owned(), None)],
        "still wrapping up at T0 + 22 s"
    );
    assert_eq!(store.next_machine_deadline().await?, Some(T0 + 32_000));
    pass(&processor, 10).await?;
    assert_eq!(
        states(&store).await?,
        [("closed".to_owned(), Some("wrap-up timer".to_owned()))]
    );
    Ok(())
}

#[tokio::test]
async fn the_processor_loop_sleeps_until_the_next_deadline_and_fires_it() -> anyhow::Result<()> {
    // The real loop on the real clock, with a 1 s wrap-up: woken by nothing but its timer.
    let policy = Policy {
        wrap_up_ms: Some(1_000),
        ..Policy::default()
    };
    let (_dir, store, mut processor) = processor(policy).await?;
    processor.clock = Clock::system();
    let now = processor.clock.now_ms();
    let mut call = CallScript::new(Uuid::from_u128(5), 5, Uuid::from_u128(6), UtcMillis(now));
    deliver(
        &store,
        &[
            call.envelope("alerting", UtcMillis(now)),
            call.envelope("connected", UtcMillis(now + 1)),
            call.envelope("disconnected", UtcMillis(now + 2)),
        ],
    )
    .await?;
    let cancel = CancellationToken::new();
    let wake = processor.wake.clone();
    let task = tokio::spawn(processor.run(cancel.clone()));
    wake.notify_one();
    let mut closed = false;
    for _ in 0..100 {
        if states(&store).await? == [("closed".to_owned(), Some("wrap-up timer".to_owned()))] {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cancel.cancel();
    task.await?;
    assert!(closed, "{:?}", states(&store).await?);
    Ok(())
}

#[tokio::test]
async fn the_cap_closes_a_contact_whose_end_never_arrives() -> anyhow::Result<()> {
    // An agent-state source is configured but never says Agent Available, and the disconnect is
    // lost: only the 4 h cap can end this contact.
    let policy = Policy {
        wrap_up_ms: None,
        ..Policy::default()
    };
    let (_dir, store, processor) = processor(policy).await?;
    let mut call = CallScript::new(Uuid::from_u128(3), 3, Uuid::from_u128(4), UtcMillis(T0));
    deliver(
        &store,
        &[
            call.envelope("alerting", UtcMillis(T0)),
            call.envelope("connected", UtcMillis(T0 + 500)),
        ],
    )
    .await?;
    pass(&processor, 1).await?;
    assert_eq!(states(&store).await?, [("kept".to_owned(), None)]);
    processor.clock.advance(4 * 3600 * 1000 - 60_000);
    pass(&processor, 1).await?;
    assert_eq!(
        states(&store).await?,
        [("kept".to_owned(), None)],
        "open just before the cap"
    );
    pass(&processor, 61).await?;
    assert_eq!(
        states(&store).await?,
        [("closed".to_owned(), Some("contact length cap".to_owned()))]
    );
    Ok(())
}

#[tokio::test]
async fn a_person_whose_stored_state_is_unreadable_holds_up_nobody_else() -> anyhow::Result<()> {
    let (_dir, store, processor) = processor(Policy::default()).await?;
    let broken = capture_shared::ids::PersonId(Uuid::from_u128(66));
    let mut tx = store.begin().await?;
    tx.save_machine(broken, "{ this is not a machine", Some(T0 - 1), T0)
        .await?;
    tx.commit().await?;
    let mut theirs = CallScript::new(broken.0, 66, Uuid::from_u128(67), UtcMillis(T0));
    let mut others = CallScript::new(Uuid::from_u128(77), 77, Uuid::from_u128(78), UtcMillis(T0));
    deliver(
        &store,
        &[
            theirs.envelope("alerting", UtcMillis(T0)),
            others.envelope("alerting", UtcMillis(T0)),
        ],
    )
    .await?;
    // Neither the broken delivery nor the broken timer makes the pass fail or loop.
    processor.drain().await?;
    processor.drain().await?;
    assert_eq!(
        store.delivery_counts().await?,
        (2, 2),
        "both deliveries are done: one applied, one parked"
    );
    assert_eq!(
        states(&store).await?,
        [("recording".to_owned(), None)],
        "the other agent's call is a contact"
    );
    assert_eq!(
        store.next_machine_deadline().await?,
        Some(T0 + Policy::default().max_contact_ms),
        "the broken timer is parked"
    );
    Ok(())
}
