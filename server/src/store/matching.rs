//! Matching by owner and overlapping time (DESIGN.md §5: "else by owner and overlapping time"):
//! how a contact finds the recordings its call events did not name, and a recording the screens of
//! its owner. Used by `link_screen` and `store_recording`.

use sqlx::Row as _;

use super::StoreError;

/// How long a contact and a recording must share to be taken as the same call: more than the
/// error of Webex's whole-second times, so that back-to-back calls (the next one answered within a
/// second of the last one's end) never match their neighbours.
pub const OVERLAP_MIN_MS: i64 = 1_000;

/// The collecting interactions holding a recording owned by `person` (a Webex person UUID) whose
/// time overlaps `[from_ms, to_ms]`, the largest overlap first: their callSessionId keys. How a
/// contact finds audio its call events did not name (no callSessionId, or a transferred call
/// that joined another session): DESIGN.md §5, "else by owner and overlapping time". The agent's
/// screen during a recording they own belongs to that recording's interaction. Recordings name
/// their owner by UUID (webex/API.md §1).
pub(crate) async fn interactions_by_owner_recordings(
    tx: &mut sqlx::SqliteConnection,
    person: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query(
        "SELECT i.call_session_id,
           MAX(MIN(COALESCE(r.session_stop_ms, COALESCE(r.session_start_ms, r.time_recorded_ms) + COALESCE(r.duration_s, 0) * 1000), ?2)
             - MAX(COALESCE(r.session_start_ms, r.time_recorded_ms), ?1)) AS overlap
         FROM recordings r JOIN interactions i ON i.id = r.interaction_id
         WHERE r.state = 'stored' AND i.state = 'collecting' AND lower(r.owner_id) = lower(?3)
         GROUP BY i.id HAVING overlap > ?4 ORDER BY overlap DESC",
    )
    .bind(from_ms)
    .bind(to_ms)
    .bind(person)
    .bind(OVERLAP_MIN_MS)
    .fetch_all(&mut *tx)
    .await?;
    rows.iter()
        .map(|r| Ok(r.try_get("call_session_id")?))
        .collect()
}

/// Links the closed, not yet cleared screens of `person`'s contacts that overlap
/// `[from_ms, to_ms]` to `interaction` (a recording of theirs arrived after their screen was
/// linked, e.g. the second agent's leg of a transfer).
pub(crate) async fn link_overlapping_screens(
    tx: &mut sqlx::SqliteConnection,
    interaction: &str,
    person: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO interaction_contacts (interaction_id, contact_id)
         SELECT ?5, c.id FROM contacts c JOIN scn_files s ON s.contact = c.id
         WHERE lower(c.person_id) = lower(?3) AND s.linked_ms IS NOT NULL AND s.cleared_ms IS NULL
           AND MIN(COALESCE(c.ended_at_ms, c.started_at_ms), ?2) - MAX(c.started_at_ms, ?1) > ?4
         ON CONFLICT DO NOTHING",
    )
    .bind(from_ms)
    .bind(to_ms)
    .bind(person)
    .bind(OVERLAP_MIN_MS)
    .bind(interaction)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The collecting interaction holding a contact of `person` whose time overlaps
/// `[from_ms, to_ms]` most: (interaction id, its key). With `contact_keyed_only`, only an
/// interaction keyed by its contact (`contact:<id>`: no callSessionId was known for it). How a
/// recording finds the screen of a call whose events carried no (or another) callSessionId.
pub(crate) async fn interaction_by_owner_contact(
    tx: &mut sqlx::SqliteConnection,
    person: &str,
    from_ms: i64,
    to_ms: i64,
    contact_keyed_only: bool,
) -> Result<Option<(String, String)>, StoreError> {
    let row = sqlx::query(
        "SELECT i.id, i.call_session_id,
           MIN(COALESCE(c.ended_at_ms, c.started_at_ms), ?2) - MAX(c.started_at_ms, ?1) AS overlap
         FROM contacts c JOIN interaction_contacts ic ON ic.contact_id = c.id
           JOIN interactions i ON i.id = ic.interaction_id
         WHERE i.state = 'collecting' AND lower(c.person_id) = lower(?3)
           AND MIN(COALESCE(c.ended_at_ms, c.started_at_ms), ?2) - MAX(c.started_at_ms, ?1) > ?4
           AND (?5 = 0 OR i.call_session_id LIKE 'contact:%')
         ORDER BY overlap DESC LIMIT 1",
    )
    .bind(from_ms)
    .bind(to_ms)
    .bind(person)
    .bind(OVERLAP_MIN_MS)
    .bind(contact_keyed_only)
    .fetch_optional(&mut *tx)
    .await?;
    row.map(|r| Ok((r.try_get("id")?, r.try_get("call_session_id")?)))
        .transpose()
}

#[cfg(test)]
mod tests {
    //! Matching without a callSessionId, and a transfer's second agent.

    use sqlx::Row as _;

    use crate::store::{ClosedScreen, Discovered, Store, StoredRecording};

    const P: &str = "d7468402-e95f-42a9-92c8-dd65f45d40ba";
    const OTHER: &str = "24683d6c-5529-4b60-a6c7-91e8b293bbab";
    const T: i64 = 1_800_000_000_000;

    /// A closed contact of `person` over `[from, to]` whose calls carried `session`.
    async fn closed_contact(
        store: &Store,
        id: &str,
        person: &str,
        from: i64,
        to: i64,
        session: Option<&str>,
    ) -> ClosedScreen {
        sqlx::query("INSERT INTO contacts (id, person_id, state, started_at_ms, ended_at_ms) VALUES (?, ?, 'closed', ?, ?)")
            .bind(id).bind(person).bind(from).bind(to)
            .execute(&store.pool).await.expect("contact");
        sqlx::query("INSERT INTO contact_calls (contact_id, call_id, call_session_id) VALUES (?, 'call-1', ?)")
            .bind(id).bind(session)
            .execute(&store.pool).await.expect("call");
        sqlx::query("INSERT INTO scn_files (contact, agent, path, state, created_ms, updated_ms) VALUES (?, 'agent', ?, 'closed', ?, ?)")
            .bind(id).bind(format!("buffer/{id}.scn")).bind(from).bind(to)
            .execute(&store.pool).await.expect("scn");
        let screens = store.closed_screens().await.expect("closed");
        screens
            .into_iter()
            .find(|s| s.contact == id)
            .expect("listed")
    }

    /// Stores a recording of `owner` over `[from, to]`; its interaction.
    async fn recording(
        store: &Store,
        id: &str,
        owner: &str,
        from: i64,
        to: i64,
        session: Option<&str>,
    ) -> String {
        let discovered = Discovered {
            id: id.into(),
            time_recorded_ms: Some(from),
        };
        store
            .discover_recordings(&[discovered], "poll", from)
            .await
            .expect("discover");
        store
            .claim_recordings("me", to, to + 60_000, 10)
            .await
            .expect("claim");
        let stored = StoredRecording {
            id: id.into(),
            call_session_id: session.map(str::to_owned),
            owner_id: Some(owner.into()),
            session_start_ms: Some(from),
            session_stop_ms: Some(to),
            time_recorded_ms: Some(from),
            duration_s: Some((to - from) / 1000),
            audio_path: format!("audio/{id}.mp3"),
            audio_sha256: "00".into(),
            details: "{}".into(),
            metadata: "{}".into(),
            ..StoredRecording::default()
        };
        store
            .store_recording("me", &stored, to)
            .await
            .expect("store")
            .expect("stored")
    }

    async fn interaction_of_contact(store: &Store, contact: &str) -> Vec<(String, String)> {
        let rows = sqlx::query(
            "SELECT i.id, i.call_session_id FROM interaction_contacts ic JOIN interactions i ON i.id = ic.interaction_id
             WHERE ic.contact_id = ?",
        )
        .bind(contact)
        .fetch_all(&store.pool)
        .await
        .expect("query");
        rows.iter()
            .map(|r| (r.get("id"), r.get("call_session_id")))
            .collect()
    }

    #[tokio::test]
    async fn a_contact_without_session_joins_its_owners_overlapping_recording() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).await.expect("store");
        // Another agent's recording at the same time, and this agent's an hour later: neither.
        recording(&store, "r-other", OTHER, T, T + 300_000, Some("a0")).await;
        recording(
            &store,
            "r-later",
            P,
            T + 3_600_000,
            T + 3_900_000,
            Some("a1"),
        )
        .await;
        let mine = recording(
            &store,
            "r-mine",
            &P.to_uppercase(),
            T + 4_000,
            T + 300_000,
            Some("a2"),
        )
        .await;
        let screen = closed_contact(&store, "c1", P, T, T + 310_000, None).await;
        store.link_screen(&screen, T + 320_000).await.expect("link");
        assert_eq!(
            interaction_of_contact(&store, "c1").await,
            [(mine, "a2".to_owned())]
        );
    }

    #[tokio::test]
    async fn a_recording_finds_the_contact_linked_before_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).await.expect("store");
        // No recording yet: the contact gets an interaction of its own.
        let screen = closed_contact(&store, "c1", P, T, T + 310_000, None).await;
        store.link_screen(&screen, T + 320_000).await.expect("link");
        let [(first, key)] = interaction_of_contact(&store, "c1")
            .await
            .try_into()
            .expect("one");
        assert_eq!(key, "contact:c1");
        // A recording without callSessionId joins it and leaves its key.
        let joined = recording(&store, "r1", P, T + 2_000, T + 100_000, None).await;
        assert_eq!(joined, first);
        // A recording with a callSessionId joins it too, and the interaction takes that key
        // (so later legs of the same session land here as well).
        let keyed = recording(&store, "r2", P, T + 120_000, T + 300_000, Some("b1")).await;
        assert_eq!(keyed, first);
        assert_eq!(
            interaction_of_contact(&store, "c1").await,
            [(first.clone(), "b1".to_owned())]
        );
        let leg = recording(&store, "r3", OTHER, T + 400_000, T + 500_000, Some("b1")).await;
        assert_eq!(leg, first);
        // A recording of another agent, or outside the contact, gets its own interaction.
        assert_ne!(
            recording(&store, "r4", OTHER, T, T + 100_000, None).await,
            first
        );
        assert_ne!(
            recording(&store, "r5", P, T + 900_000, T + 990_000, None).await,
            first
        );
        // The next call, answered within a second of this contact's end: not this one.
        assert_ne!(
            recording(&store, "r6", P, T + 309_200, T + 400_000, None).await,
            first
        );
    }

    #[tokio::test]
    async fn a_transferred_agents_screen_joins_both_sessions_in_either_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).await.expect("store");
        // The consult leg's events named session "c"; after the transfer the agent's call joined
        // the customer's session "s", which the events did not name again.
        let screen = closed_contact(&store, "b1", OTHER, T, T + 200_000, Some("c")).await;
        store.link_screen(&screen, T + 210_000).await.expect("link");
        let s_leg = recording(&store, "r-s", OTHER, T + 5_000, T + 190_000, Some("s")).await;
        let linked: Vec<String> = interaction_of_contact(&store, "b1")
            .await
            .into_iter()
            .map(|(_, k)| k)
            .collect();
        assert_eq!(linked.len(), 2, "{linked:?}");
        assert!(linked.contains(&"c".to_owned()) && linked.contains(&"s".to_owned()));
        assert!(
            interaction_of_contact(&store, "b1")
                .await
                .iter()
                .any(|(id, _)| *id == s_leg)
        );
        // The other order: the recording first, then the screen.
        let s2 = recording(&store, "r-s2", P, T + 5_000, T + 190_000, Some("s2")).await;
        let screen = closed_contact(&store, "a1", P, T, T + 200_000, Some("c2")).await;
        store.link_screen(&screen, T + 210_000).await.expect("link");
        let linked = interaction_of_contact(&store, "a1").await;
        assert_eq!(linked.len(), 2, "{linked:?}");
        assert!(linked.iter().any(|(id, key)| *id == s2 && key == "s2"));
    }

    #[tokio::test]
    async fn a_recording_takes_the_answer_time_of_its_call_within_its_second() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).await.expect("store");
        let interaction = recording(&store, "r1", P, T, T + 60_000, Some("s1")).await;
        // The restarted recording of the same call starts long after the answer: not refined.
        recording(&store, "r2", P, T + 30_000, T + 60_000, Some("s1")).await;
        for (kind, at) in [
            ("Ringing", T - 4_000),
            ("Connected", T + 437),
            ("On Hold", T + 200),
        ] {
            sqlx::query("INSERT INTO call_events (person_id, kind, at_ms, call_session_id) VALUES (?, ?, ?, 's1')")
                .bind(P).bind(kind).bind(at)
                .execute(&store.pool).await.expect("event");
        }
        for id in ["r1", "r2"] {
            store
                .set_transcoded(id, Ok(&format!("audio/{id}.opus")), T)
                .await
                .expect("transcoded");
        }
        let inputs = store
            .interaction_inputs(&interaction)
            .await
            .expect("inputs");
        let answered: Vec<_> = inputs
            .audio
            .iter()
            .map(|a| (a.id.as_str(), a.answered_ms))
            .collect();
        assert_eq!(answered, [("r1", Some(T + 437)), ("r2", None)]);
    }
}
