//! Webex timestamps: ISO-8601 with an offset (`2023-10-31T16:24:12+08:00`, `…Z`, with or without
//! fractional seconds). Compared as instants, never as strings.

use capture_shared::time::UtcMillis;

/// Parses a Webex timestamp to UTC milliseconds.
pub fn parse_timestamp(text: &str) -> Option<UtcMillis> {
    let timestamp: jiff::Timestamp = text.trim().parse().ok()?;
    Some(UtcMillis(timestamp.as_millisecond()))
}

/// Formats UTC milliseconds the way Webex does (`2023-11-07T08:50:21.123Z`).
pub fn format_timestamp(at: UtcMillis) -> String {
    jiff::Timestamp::from_millisecond(at.0).map_or_else(|_| at.0.to_string(), |t| format!("{t:.3}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_instants() {
        let a = parse_timestamp("2023-10-31T16:24:12+08:00").expect("offset");
        let b = parse_timestamp("2023-10-31T08:24:12Z").expect("zulu");
        assert_eq!(a, b);
        let c = parse_timestamp("2023-10-31T08:24:12.250Z").expect("fraction");
        assert_eq!(c.0 - b.0, 250);
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_timestamp(&format_timestamp(c)), Some(c));
    }
}
