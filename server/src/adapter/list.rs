//! Listing recordings: the poll (a window from the durable watermark, reaching back by the
//! overlap) and backfills (a fixed range, resumable page by page). Both only discover ids; the
//! workers fetch them.

use capture_shared::time::UtcMillis;

use super::Adapter;
use crate::store::{Backfill, Discovered, StoreError};
use crate::webex::client::{WebexClient, WebexError};
use crate::webex::recordings::{MAX_WINDOW_MS, RecordingSummary};

/// The adapter value holding the poll watermark (UTC ms): every recording that started before
/// it minus the overlap has been listed.
pub const WATERMARK: &str = "poll_watermark";
/// The adapter value holding the last poll's outcome (JSON).
pub const LAST_POLL: &str = "last_poll";

/// Why listing failed.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// Webex failed or sent what Capture cannot read.
    #[error(transparent)]
    Webex(#[from] WebexError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn discovered(items: &[RecordingSummary]) -> Vec<Discovered> {
    items
        .iter()
        .map(|item| Discovered {
            id: item.id.clone(),
            time_recorded_ms: item.time_recorded.map(|t| t.0),
        })
        .collect()
}

/// The windows of at most 30 days covering `[from, to)`.
pub fn windows(from: i64, to: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut start = from;
    while start < to {
        let end = (start + MAX_WINDOW_MS).min(to);
        out.push((start, end));
        start = end;
    }
    out
}

impl Adapter {
    /// Lists `[from, to)` page by page, recording each page's ids as `source`; how many were new.
    pub(super) async fn list_range(
        &self,
        from: i64,
        to: i64,
        source: &str,
    ) -> Result<u64, ListError> {
        let mut new = 0;
        for (start, end) in windows(from, to) {
            let mut next = Some(WebexClient::recordings_path(
                UtcMillis(start),
                UtcMillis(end),
            ));
            while let Some(path) = next {
                let (items, link) = self.client.recordings_page(&path).await?;
                new += self
                    .store
                    .discover_recordings(&discovered(&items), source, self.clock.now_ms())
                    .await?;
                next = link;
            }
        }
        Ok(new)
    }

    /// One poll: from the watermark minus the overlap to now; the watermark moves only when the
    /// whole window was listed.
    pub(super) async fn poll_once(&self) -> Result<u64, ListError> {
        let now = self.clock.now_ms();
        let watermark = match self.store.adapter_value(WATERMARK).await? {
            Some(value) => value.parse::<i64>().unwrap_or(now),
            None => now - self.settings.initial_lookback.as_millis() as i64,
        };
        let from = watermark - self.settings.overlap.as_millis() as i64;
        // `to` is exclusive: one second ahead so a recording that started this very second is in.
        let to = now + 1000;
        let new = self.list_range(from, to, "poll").await?;
        self.store
            .set_adapter_value(WATERMARK, &now.to_string(), now)
            .await?;
        Ok(new)
    }

    /// Lists a backfill to its end (or the first failure), page by page, each page durable with
    /// the position after it.
    pub async fn list_backfill(&self, mut backfill: Backfill) -> Result<Backfill, ListError> {
        while backfill.state == "listing" {
            let window_to = (backfill.window_from_ms + MAX_WINDOW_MS).min(backfill.to_ms);
            let path = backfill.next_url.clone().unwrap_or_else(|| {
                WebexClient::recordings_path(
                    UtcMillis(backfill.window_from_ms),
                    UtcMillis(window_to),
                )
            });
            let page = self.client.recordings_page(&path).await;
            let (items, link) = match page {
                Ok(page) => page,
                Err(error) if !error.is_retryable() => {
                    backfill.state = "failed".into();
                    backfill.error = Some(error.to_string());
                    self.store
                        .backfill_page(&backfill, &[], self.clock.now_ms())
                        .await?;
                    return Err(error.into());
                }
                Err(error) => return Err(error.into()),
            };
            backfill.listed += items.len() as i64;
            match link {
                Some(next) => backfill.next_url = Some(next),
                None => {
                    backfill.next_url = None;
                    backfill.window_from_ms = window_to;
                    if window_to >= backfill.to_ms {
                        backfill.state = "listed".into();
                    }
                }
            }
            let new = self
                .store
                .backfill_page(&backfill, &discovered(&items), self.clock.now_ms())
                .await?;
            if new > 0 {
                self.wake.notify_one();
            }
        }
        Ok(backfill)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_ranges_split_into_thirty_day_windows() {
        let day = 24 * 3600 * 1000;
        assert_eq!(windows(0, 10 * day), vec![(0, 10 * day)]);
        let split = windows(0, 65 * day);
        assert_eq!(split.len(), 3);
        assert_eq!(split[0], (0, 30 * day));
        assert_eq!(split[2], (60 * day, 65 * day));
        assert!(windows(5, 5).is_empty());
    }
}
