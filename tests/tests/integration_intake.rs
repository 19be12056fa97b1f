//! The webhook intake applies deliveries in the transaction that stores them (one commit between
//! a delivery's arrival and its commands), unless older deliveries wait or applying fails: then
//! it only stores them and the processor applies them in arrival order.

use capture_server::integration::machine::Policy;
use capture_server::integration::processor::Processor;
use capture_server::store::{ContactFilter, Inserted, NewAgent, NewDelivery, Store};
use capture_shared::ids::PersonId;
use capture_shared::time::UtcMillis;
use capture_tests::webex::{CallScript, manual_processor, new_deliveries};
use uuid::Uuid;

const T0: i64 = 1_795_000_000_000;

fn deliveries(envelopes: &[serde_json::Value]) -> Vec<NewDelivery> {
    new_deliveries(envelopes, T0)
}

async fn states(store: &Store) -> anyhow::Result<Vec<(String, Option<String>)>> {
    let filter = ContactFilter {
        limit: 100,
        ..ContactFilter::default()
    };
    let mut states: Vec<_> = store
        .contacts(&filter)
        .await?
        .into_iter()
        .map(|c| (c.state, c.close_reason))
        .collect();
    states.sort();
    Ok(states)
}

async fn processor() -> anyhow::Result<(tempfile::TempDir, Store, Processor)> {
    manual_processor(Policy::default(), T0).await
}

#[tokio::test]
async fn deliveries_are_applied_in_the_transaction_that_stores_them() -> anyhow::Result<()> {
    let (_dir, store, processor) = processor().await?;
    let mut call = CallScript::new(Uuid::from_u128(1), 1, Uuid::from_u128(2), UtcMillis(T0));
    let answered = call.envelope("connected", UtcMillis(T0 + 1_000));
    let batch = deliveries(&[
        call.envelope("alerting", UtcMillis(T0)),
        answered.clone(),
        answered,
    ]);
    let inserted = processor.intake(&batch).await?;
    assert!(
        matches!(
            inserted[..],
            [Inserted::New(a), Inserted::New(b), Inserted::Duplicate] if b == a + 1
        ),
        "stored in order, the repeated body once: {inserted:?}"
    );
    // No processor pass ran: the intake applied both.
    assert_eq!(store.delivery_counts().await?, (2, 2));
    assert_eq!(states(&store).await?, [("kept".to_owned(), None)]);
    // A body stored before is a duplicate in a later batch too.
    let again = processor.intake(&batch[..1]).await?;
    assert_eq!(again, [Inserted::Duplicate]);
    assert_eq!(store.delivery_counts().await?, (2, 2));
    Ok(())
}

#[tokio::test]
async fn deliveries_behind_older_waiting_ones_are_left_to_the_processor() -> anyhow::Result<()> {
    let (_dir, store, processor) = processor().await?;
    let mut call = CallScript::new(Uuid::from_u128(3), 3, Uuid::from_u128(4), UtcMillis(T0));
    // Stored but not applied (as after a restart, or a batch whose applying failed).
    store
        .insert_deliveries(&deliveries(&[call.envelope("alerting", UtcMillis(T0))]))
        .await?;
    processor
        .intake(&deliveries(&[
            call.envelope("connected", UtcMillis(T0 + 1_000))
        ]))
        .await?;
    assert_eq!(
        store.delivery_counts().await?,
        (2, 0),
        "the answer waits behind the ring"
    );
    processor.drain().await?;
    assert_eq!(store.delivery_counts().await?, (2, 2));
    assert_eq!(states(&store).await?, [("kept".to_owned(), None)]);
    Ok(())
}

#[tokio::test]
async fn a_batch_that_cannot_be_applied_is_stored_and_the_processor_parks_the_culprit()
-> anyhow::Result<()> {
    let (_dir, store, processor) = processor().await?;
    let broken = PersonId(Uuid::from_u128(66));
    let mut tx = store.begin().await?;
    tx.save_machine(broken, "{ this is not a machine", None, T0)
        .await?;
    tx.commit().await?;
    let mut theirs = CallScript::new(broken.0, 66, Uuid::from_u128(67), UtcMillis(T0));
    let mut others = CallScript::new(Uuid::from_u128(77), 77, Uuid::from_u128(78), UtcMillis(T0));
    let inserted = processor
        .intake(&deliveries(&[
            theirs.envelope("alerting", UtcMillis(T0)),
            others.envelope("alerting", UtcMillis(T0)),
        ]))
        .await?;
    assert!(
        inserted.iter().all(|i| matches!(i, Inserted::New(_))),
        "both stored (answered 2xx): {inserted:?}"
    );
    assert_eq!(
        store.delivery_counts().await?,
        (2, 0),
        "nothing of the failed batch applied"
    );
    processor.drain().await?;
    assert_eq!(
        store.delivery_counts().await?,
        (2, 2),
        "one applied, one parked"
    );
    assert_eq!(states(&store).await?, [("recording".to_owned(), None)]);
    Ok(())
}

#[tokio::test]
async fn a_transaction_reads_the_machine_it_saved_and_an_abandoned_one_writes_nothing()
-> anyhow::Result<()> {
    let (_dir, store, _processor) = processor().await?;
    let person = PersonId(Uuid::from_u128(9));
    let mut tx = store.begin().await?;
    assert_eq!(tx.machine(person).await?, None);
    tx.save_machine(person, "{\"first\":1}", Some(T0), T0)
        .await?;
    assert_eq!(tx.machine(person).await?.as_deref(), Some("{\"first\":1}"));
    drop(tx);
    let mut tx = store.begin().await?;
    assert_eq!(tx.machine(person).await?, None, "dropped, not written");
    tx.save_machine(person, "{\"second\":2}", Some(T0 + 5), T0)
        .await?;
    tx.commit().await?;
    assert_eq!(store.next_machine_deadline().await?, Some(T0 + 5));
    let mut tx = store.begin().await?;
    assert_eq!(tx.machine(person).await?.as_deref(), Some("{\"second\":2}"));
    Ok(())
}

#[tokio::test]
async fn a_batch_reads_its_machines_and_agents_at_once_as_one_read_each_would() -> anyhow::Result<()>
{
    let (_dir, store, _processor) = processor().await?;
    let person = |n: u128| PersonId(Uuid::from_u128(n));
    // 1: machine and agent; 2: machine only; 3: neither; 4: agent only; 5: saved in the
    // transaction before the read (the read must not replace it).
    let mut agents = Vec::new();
    for n in [1, 4] {
        let new = NewAgent {
            name: format!("agent {n}"),
            person: Some(person(n)),
            email: None,
        };
        agents.push(store.add_agent(&new, T0).await?.0.id);
    }
    let mut tx = store.begin().await?;
    for n in [1, 2, 5] {
        tx.save_machine(person(n), &format!("{{\"stored\":{n}}}"), None, T0)
            .await?;
    }
    tx.commit().await?;

    let mut tx = store.begin().await?;
    tx.save_machine(person(5), "{\"newer\":5}", None, T0)
        .await?;
    let batch: Vec<PersonId> = [1, 2, 3, 4, 5, 1, 3].into_iter().map(person).collect();
    tx.load_machines(&batch).await?;
    assert_eq!(
        tx.machine(person(1)).await?.as_deref(),
        Some("{\"stored\":1}")
    );
    assert_eq!(
        tx.machine(person(2)).await?.as_deref(),
        Some("{\"stored\":2}")
    );
    assert_eq!(tx.machine(person(3)).await?, None);
    assert_eq!(tx.machine(person(4)).await?, None);
    assert_eq!(
        tx.machine(person(5)).await?.as_deref(),
        Some("{\"newer\":5}")
    );
    assert_eq!(tx.agent_for_person(person(1)).await?, Some(agents[0]));
    assert_eq!(tx.agent_for_person(person(2)).await?, None);
    assert_eq!(tx.agent_for_person(person(3)).await?, None);
    assert_eq!(tx.agent_for_person(person(4)).await?, Some(agents[1]));
    // What the batch saves is what later reads in it see.
    tx.save_machine(person(2), "{\"third\":2}", None, T0)
        .await?;
    assert_eq!(
        tx.machine(person(2)).await?.as_deref(),
        Some("{\"third\":2}")
    );
    tx.commit().await?;
    let mut tx = store.begin().await?;
    assert_eq!(
        tx.machine(person(2)).await?.as_deref(),
        Some("{\"third\":2}")
    );
    assert_eq!(
        tx.machine(person(5)).await?.as_deref(),
        Some("{\"newer\":5}")
    );
    Ok(())
}
