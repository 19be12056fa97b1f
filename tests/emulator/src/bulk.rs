//! Many recordings at once, for backfill tests and benchmarks: deterministic from a seed.

use std::time::Duration;

use jiff::Timestamp;
use uuid::Uuid;

use crate::audio::Digests;
use crate::clock;
use crate::model::{OwnerType, Party, Person, Recording};
use crate::state::{self, Draft, Shared};

/// Names of the generated owners.
const FIRST_NAMES: [&str; 12] = [
    "Ada", "Bruno", "Chloe", "Dmitri", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Keiko",
    "Liam",
];

/// The owners bulk recordings are spread over (registered on first use).
pub(crate) fn owners(shared: &Shared) -> Vec<Person> {
    FIRST_NAMES
        .iter()
        .map(|name| {
            let email = format!("{}@bulk.emulator.example", name.to_lowercase());
            shared.add_person(&email, &format!("{name} Agent"))
        })
        .collect()
}

fn uuid(rng: &mut fastrand::Rng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.u128(..).to_le_bytes()).into_uuid()
}

/// `n` recordings started in `[from, to)`, 10–90 s long, about one in five continuing the previous
/// one's call session (same owner, a few seconds later, as a stop/restart would), published
/// 20 s–10 min after they ended but no later than now (so all are visible at once unless they end
/// in the future).
pub(crate) fn generate(
    shared: &Shared,
    owners: &[Person],
    seed: u64,
    n: usize,
    from: Timestamp,
    to: Timestamp,
) -> Vec<Recording> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let from = clock::ceil_second(from);
    let span = clock::between(from, to).as_secs().max(1);
    let now = clock::now();
    let mut previous: Option<(Uuid, Timestamp, usize)> = None;
    let mut recordings = Vec::with_capacity(n);
    let mut digests = Digests::default();
    for _ in 0..n {
        let duration = Duration::from_secs(rng.u64(10..=90));
        let fresh_start =
            clock::floor_second(clock::add(from, Duration::from_secs(rng.u64(0..span))));
        let (session, start, owner) = match previous {
            Some((session, stop, owner)) if rng.u8(..5) == 0 => {
                let start = clock::add(stop, Duration::from_secs(rng.u64(1..5)));
                if start < to {
                    (session, start, owner)
                } else {
                    (
                        uuid(&mut rng),
                        fresh_start,
                        rng.usize(..owners.len().max(1)),
                    )
                }
            }
            _ => (
                uuid(&mut rng),
                fresh_start,
                rng.usize(..owners.len().max(1)),
            ),
        };
        let Some(person) = owners.get(owner) else {
            break;
        };
        let stop = clock::add(start, duration);
        let mut create = clock::add(stop, Duration::from_secs(rng.u64(20..600)));
        if create > now && stop <= now {
            create = clock::floor_second(now);
        }
        let id = uuid(&mut rng);
        let customer = Party {
            actor_type: "EXTERNAL",
            actor_id: uuid(&mut rng),
            number: format!("+1408555{:04}", rng.u16(0..10_000)),
            name: "Customer".into(),
            person: None,
        };
        let draft = Draft {
            id: if rng.bool() {
                id.simple().to_string()
            } else {
                id.to_string()
            },
            topic: format!("Call with {}", customer.number),
            owner: person.clone(),
            owner_type: if rng.u8(..10) == 0 {
                OwnerType::VirtualLine
            } else {
                OwnerType::User
            },
            location_id: shared.location_id(),
            call_session_id: session,
            call_number: rng.u64(100_000..999_999_999),
            personality: "terminator",
            answerer: Party::user(person),
            remote: customer,
            redirect: None,
            start,
            stop,
            pauses: Vec::new(),
            beeps: Vec::new(),
            holds: Vec::new(),
        };
        previous = Some((session, stop, owner));
        recordings.push(state::build(draft, create, &shared.library, &mut digests));
    }
    recordings
}
