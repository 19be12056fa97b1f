//! Timestamps as Webex writes them.

use std::time::Duration;

use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp};

/// The current time, truncated to the millisecond.
pub fn now() -> Timestamp {
    Timestamp::from_millisecond(Timestamp::now().as_millisecond()).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// `at + d`, saturating.
pub fn add(at: Timestamp, d: Duration) -> Timestamp {
    at.checked_add(SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX))
        .unwrap_or(Timestamp::MAX)
}

/// `at - d`, saturating.
pub fn sub(at: Timestamp, d: Duration) -> Timestamp {
    at.checked_sub(SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX))
        .unwrap_or(Timestamp::MIN)
}

/// `later - earlier`, zero when negative.
pub fn between(earlier: Timestamp, later: Timestamp) -> Duration {
    Duration::try_from(later.duration_since(earlier)).unwrap_or(Duration::ZERO)
}

/// Truncates to the whole second.
pub fn floor_second(at: Timestamp) -> Timestamp {
    Timestamp::from_second(at.as_second()).unwrap_or(at)
}

/// Rounds up to the whole second.
pub fn ceil_second(at: Timestamp) -> Timestamp {
    let floor = floor_second(at);
    if floor == at {
        at
    } else {
        add(floor, Duration::from_secs(1))
    }
}

/// Rounds a duration up to whole seconds, at least `min_s`.
pub fn whole_seconds(d: Duration, min_s: u64) -> Duration {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    Duration::from_secs(secs.max(min_s))
}

/// `2023-10-31T16:24:12+08:00`: seconds and a numeric offset, as in list and details answers.
pub fn format_in(at: Timestamp, zone: &TimeZone) -> String {
    at.to_zoned(zone.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// [`format_in`] at a fixed offset.
pub fn format_offset(at: Timestamp, offset: Offset) -> String {
    format_in(at, &TimeZone::fixed(offset))
}

/// `2023-11-07T08:50:21Z`: seconds in UTC, as in metadata and link expirations.
pub fn format_z(at: Timestamp) -> String {
    format!("{:.0}", floor_second(at))
}

/// `2026-01-01T00:00:00.000Z`: milliseconds in UTC, as in webhook deliveries.
pub fn format_ms(at: Timestamp) -> String {
    format!("{at:.3}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_the_examples() -> Result<(), jiff::Error> {
        let at: Timestamp = "2023-10-31T08:24:12.345Z".parse()?;
        assert_eq!(
            format_offset(at, Offset::from_hours(8)?),
            "2023-10-31T16:24:12+08:00"
        );
        assert_eq!(format_offset(at, Offset::UTC), "2023-10-31T08:24:12+00:00");
        assert_eq!(format_z(at), "2023-10-31T08:24:12Z");
        assert_eq!(format_ms(at), "2023-10-31T08:24:12.345Z");
        assert_eq!(ceil_second(at).as_second(), at.as_second() + 1);
        assert_eq!(
            whole_seconds(Duration::from_millis(1200), 1),
            Duration::from_secs(2)
        );
        assert_eq!(whole_seconds(Duration::ZERO, 1), Duration::from_secs(1));
        Ok(())
    }
}
