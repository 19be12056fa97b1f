//! Random identifiers, drawn from the emulator's seeded generator.

use std::sync::Mutex;

use uuid::Uuid;

/// A seeded source of ids, tokens and tickets.
#[derive(Debug)]
pub(crate) struct IdSource {
    rng: Mutex<fastrand::Rng>,
}

const TOKEN_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

impl IdSource {
    pub fn new(seed: u64) -> IdSource {
        IdSource {
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut fastrand::Rng) -> T) -> T {
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut rng)
    }

    /// A version 4 UUID.
    pub fn uuid(&self) -> Uuid {
        let bytes = self.with(|rng| rng.u128(..)).to_le_bytes();
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    /// An opaque token: `len` alphanumerics.
    pub fn token(&self, len: usize) -> String {
        self.with(|rng| {
            (0..len)
                .map(|_| char::from(TOKEN_ALPHABET[rng.usize(..TOKEN_ALPHABET.len())]))
                .collect()
        })
    }

    /// A fresh seed for a sub-generator.
    pub fn seed(&self) -> u64 {
        self.with(|rng| rng.u64(..))
    }

    /// A call half number (`callhalf-<n>:0`).
    pub fn call_number(&self) -> u64 {
        self.with(|rng| rng.u64(100_000..999_999_999))
    }

    /// A recording id: 32 hex digits or a dashed UUID, at random (Webex shows both forms).
    pub fn recording_id(&self) -> String {
        let id = self.uuid();
        if self.with(|rng| rng.bool()) {
            id.simple().to_string()
        } else {
            id.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_ids_repeat() {
        let (a, b) = (IdSource::new(3), IdSource::new(3));
        assert_eq!(a.uuid(), b.uuid());
        assert_eq!(a.token(10), b.token(10));
        assert_eq!(a.uuid().get_version_num(), 4);
    }
}
