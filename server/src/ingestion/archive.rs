//! Long-term storage behind `object_store`'s interface: a local directory by default (its puts
//! are atomic: written to a temporary file, synced, renamed); an S3-compatible store plugs in
//! behind the same trait. Every object is read back and its SHA-256 compared before the buffer
//! is cleared.

use std::path::Path;
use std::sync::Arc;

use futures_util::StreamExt as _;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Why archiving failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The store refused or failed.
    #[error("archive: {0}")]
    Store(#[from] object_store::Error),
    /// Reading the local file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// What was read back is not what was written.
    #[error("archive: {key} reads back with SHA-256 {found}, {expected} was written")]
    Mismatch {
        /// The object.
        key: String,
        /// Written.
        expected: String,
        /// Read back.
        found: String,
    },
}

/// The archive.
#[derive(Debug, Clone)]
pub struct Archive {
    store: Arc<dyn ObjectStore>,
}

impl Archive {
    /// A local directory (created if needed).
    pub fn local(dir: &Path) -> Result<Archive, ArchiveError> {
        std::fs::create_dir_all(dir)?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)?;
        Ok(Archive {
            store: Arc::new(store),
        })
    }

    /// Uploads the file at `path` to `key`, streaming it; returns its SHA-256 and size.
    pub async fn put_file(&self, key: &str, path: &Path) -> Result<(String, u64), ArchiveError> {
        let location = ObjectPath::from(key);
        let mut writer = object_store::buffered::BufWriter::new(self.store.clone(), location);
        let mut file = tokio::fs::File::open(path).await?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 20];
        let mut bytes = 0u64;
        loop {
            let read = file.read(&mut buffer).await?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
            writer.write_all(&buffer[..read]).await?;
            bytes += read as u64;
        }
        writer.shutdown().await?;
        Ok((hex::encode(hasher.finalize()), bytes))
    }

    /// Stores small `bytes` at `key`; returns their SHA-256.
    pub async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<String, ArchiveError> {
        let sha256 = hex::encode(Sha256::digest(&bytes));
        self.store
            .put(&ObjectPath::from(key), PutPayload::from(bytes))
            .await?;
        Ok(sha256)
    }

    /// Deletes every object under `prefix` (an interaction's folder); how many.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<usize, ArchiveError> {
        let prefix = ObjectPath::from(prefix);
        let mut listing = self.store.list(Some(&prefix));
        let mut keys = Vec::new();
        while let Some(meta) = listing.next().await {
            keys.push(meta?.location);
        }
        for key in &keys {
            self.store.delete(key).await?;
        }
        Ok(keys.len())
    }

    /// Deletes the object `key` (nothing when it is not there).
    pub async fn delete(&self, key: &str) -> Result<(), ArchiveError> {
        match self.store.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Whether `key` exists.
    pub async fn exists(&self, key: &str) -> Result<bool, ArchiveError> {
        match self.store.head(&ObjectPath::from(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Reads `key` back and checks its SHA-256.
    pub async fn verify(&self, key: &str, expected: &str) -> Result<(), ArchiveError> {
        let mut stream = self.store.get(&ObjectPath::from(key)).await?.into_stream();
        let mut hasher = Sha256::new();
        while let Some(chunk) = stream.next().await {
            hasher.update(&chunk?);
        }
        let found = hex::encode(hasher.finalize());
        if found == expected {
            Ok(())
        } else {
            Err(ArchiveError::Mismatch {
                key: key.to_owned(),
                expected: expected.to_owned(),
                found,
            })
        }
    }

    /// The size of `key`; `None` when it does not exist.
    pub async fn size(&self, key: &str) -> Result<Option<u64>, ArchiveError> {
        match self.store.head(&ObjectPath::from(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Bytes `range` of `key`, streamed.
    pub async fn read_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<
        futures_util::stream::BoxStream<'static, Result<axum::body::Bytes, object_store::Error>>,
        ArchiveError,
    > {
        let options = object_store::GetOptions {
            range: Some(object_store::GetRange::Bounded(range)),
            ..Default::default()
        };
        Ok(self
            .store
            .get_opts(&ObjectPath::from(key), options)
            .await?
            .into_stream())
    }

    /// Copies `key` into the local file `path` for a derived use (the replay's cache): written to
    /// a temporary file, then renamed; not synced (a copy lost in a crash is made again).
    pub async fn copy_to_file(&self, key: &str, path: &Path) -> Result<(), ArchiveError> {
        let partial = path.with_extension("partial");
        let mut file = tokio::fs::File::create(&partial).await?;
        let mut stream = self.store.get(&ObjectPath::from(key)).await?.into_stream();
        while let Some(chunk) = stream.next().await {
            file.write_all(&chunk?).await?;
        }
        file.flush().await?;
        tokio::fs::rename(&partial, path).await?;
        Ok(())
    }
}
