//! The emulator's configuration.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// How an emulator runs. `Default` listens on `127.0.0.1:0` with a fresh directory under the
/// system's temporary directory.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Address to listen on (port 0: any free port). The base URL always names `localhost`.
    pub listen: SocketAddr,
    /// Where the TLS certificate authority and server certificate are kept (`tls/`), reused when
    /// present.
    pub data_dir: PathBuf,
    /// Lifetime of a download link (Webex: 3 hours).
    pub link_ttl: Duration,
    /// Lifetime of an access token, the initial one included.
    pub token_ttl: Duration,
    /// Lifetime of a refresh token.
    pub refresh_token_ttl: Duration,
    /// Delay between a call's end and the publication of its recordings.
    pub publish_delay: Duration,
    /// Seed of every random choice (ids, fault injection, bulk recordings).
    pub seed: u64,
    /// Fixed UTC offset of `createTime`/`timeRecorded` in list and details answers when the request
    /// names no `timezone` (the published examples use `+08:00`).
    pub time_offset: jiff::tz::Offset,
    /// The initial access token; random when `None`.
    pub access_token: Option<String>,
}

/// Default lifetime of download links.
pub const DEFAULT_LINK_TTL: Duration = Duration::from_secs(3 * 3600);
/// Default lifetime of access tokens (Webex integrations: 14 days).
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(14 * 86_400);
/// Default lifetime of refresh tokens (Webex: 90 days).
pub const DEFAULT_REFRESH_TOKEN_TTL: Duration = Duration::from_secs(90 * 86_400);
/// Default delay before a finished call's recordings are published.
pub const DEFAULT_PUBLISH_DELAY: Duration = Duration::from_secs(10);

impl Default for EmulatorConfig {
    fn default() -> EmulatorConfig {
        EmulatorConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            data_dir: std::env::temp_dir().join(format!(
                "webex-emulator-{}-{:016x}",
                std::process::id(),
                fastrand::u64(..)
            )),
            link_ttl: DEFAULT_LINK_TTL,
            token_ttl: DEFAULT_TOKEN_TTL,
            refresh_token_ttl: DEFAULT_REFRESH_TOKEN_TTL,
            publish_delay: DEFAULT_PUBLISH_DELAY,
            seed: 0x5eed_cafe,
            time_offset: jiff::tz::Offset::UTC,
            access_token: None,
        }
    }
}

impl EmulatorConfig {
    /// The default configuration keeping its files in `data_dir`.
    pub fn in_dir(data_dir: impl Into<PathBuf>) -> EmulatorConfig {
        EmulatorConfig {
            data_dir: data_dir.into(),
            ..EmulatorConfig::default()
        }
    }
}
