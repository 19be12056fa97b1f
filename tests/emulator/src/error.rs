//! Errors at the emulator's boundary.

use std::path::PathBuf;

/// Why the emulator could not start or do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Binding the listening socket failed.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// Generating or loading the TLS certificate failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// The audio frame library could not be encoded.
    #[error(transparent)]
    Audio(#[from] crate::audio::AudioError),
    /// A CA file given to `trust_ca` holds no usable certificate.
    #[error("{path}: {reason}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The named recording does not exist.
    #[error("no recording {0}")]
    NoRecording(String),
    /// A blocking task failed.
    #[error("background task failed: {0}")]
    Task(String),
}

impl EmulatorError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> EmulatorError {
        let path = path.into();
        move |source| EmulatorError::Io { path, source }
    }
}
