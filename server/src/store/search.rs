//! Interaction search: the fields people filter on are kept on the interaction row as its inputs
//! arrive ([`refresh_search`]), so that a search reads one table through its start-time index.

use super::StoreError;

/// Refreshes an interaction's search fields from its recordings and contacts. A number given as a
/// SIP or tel URI (`sip:+14085550100@192.0.2.10;user=phone`) is searched by its user part only.
pub(crate) async fn refresh_search(
    conn: &mut sqlx::SqliteConnection,
    interaction: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE interactions SET
           agents = (SELECT '|' || GROUP_CONCAT(who, '|') || '|' FROM (
               SELECT DISTINCT lower(owner_email) AS who FROM recordings WHERE interaction_id = ?1 AND owner_email IS NOT NULL
               UNION SELECT DISTINCT lower(owner_name) FROM recordings WHERE interaction_id = ?1 AND owner_name IS NOT NULL
               UNION SELECT DISTINCT lower(a.email) FROM interaction_contacts ic JOIN contacts c ON c.id = ic.contact_id
                 JOIN agents a ON a.person_id = c.person_id WHERE ic.interaction_id = ?1 AND a.email IS NOT NULL
               UNION SELECT DISTINCT lower(a.name) FROM interaction_contacts ic JOIN contacts c ON c.id = ic.contact_id
                 JOIN agents a ON a.person_id = c.person_id WHERE ic.interaction_id = ?1)),
           remote_numbers = (SELECT GROUP_CONCAT(DISTINCT remote_number) FROM recordings
               WHERE interaction_id = ?1 AND remote_number IS NOT NULL),
           remote_digits = (SELECT ',' || GROUP_CONCAT(DISTINCT replace(replace(replace(replace(replace(replace(
               CASE WHEN lower(remote_number) LIKE 'sip:%@%' OR lower(remote_number) LIKE 'tel:%'
                 THEN substr(remote_number, 5, CASE WHEN instr(remote_number, '@') > 0
                   THEN instr(remote_number, '@') - 5 ELSE length(remote_number) END)
                 ELSE remote_number END,
               '+', ''), '-', ''), ' ', ''), '(', ''), ')', ''), '.', '')) || ',' FROM recordings
               WHERE interaction_id = ?1 AND remote_number IS NOT NULL),
           direction = COALESCE((SELECT CASE personality WHEN 'terminator' THEN 'inbound'
               WHEN 'originator' THEN 'outbound' END FROM recordings
               WHERE interaction_id = ?1 AND personality IS NOT NULL
               ORDER BY COALESCE(session_start_ms, time_recorded_ms) LIMIT 1), direction)
         WHERE id = ?1",
    )
    .bind(interaction)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Length of an interaction in SQL: its start to its end (s).
pub(crate) const LENGTH: &str = "((i.stop_ms - i.start_ms) / 1000)";
/// Whether it has screen, in SQL: for an archived one what its file holds, else what arrived.
pub(crate) const HAS_SCREEN: &str =
    "(CASE WHEN i.state IN ('archived', 'deleted') THEN COALESCE(i.missing, '') NOT LIKE '%screen%'
    ELSE EXISTS (SELECT 1 FROM interaction_contacts ic WHERE ic.interaction_id = i.id) END)";
/// Whether it has audio, likewise.
pub(crate) const HAS_AUDIO: &str =
    "(CASE WHEN i.state IN ('archived', 'deleted') THEN COALESCE(i.missing, '') NOT LIKE '%audio%'
    ELSE i.recordings > 0 END)";

/// `text` with LIKE's wildcards escaped (by `\\`).
pub(crate) fn like_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
