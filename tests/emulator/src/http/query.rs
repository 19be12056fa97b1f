//! Query strings and form bodies (`application/x-www-form-urlencoded`), and the opaque paging
//! cursors of `Link` headers.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Decoded `name=value` pairs, in order.
pub(crate) fn parse(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            (decode(name), decode(value))
        })
        .collect()
}

/// The first value of `name`.
pub(crate) fn get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Percent-decoding with `+` as a space (form semantics, as servlet containers decode queries).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| char::from(b).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(high), Some(low)) => {
                        out.push((high * 16 + low) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a query component (unreserved characters kept).
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The caller's raw query with `cursor` replaced: every other parameter kept as sent.
pub(crate) fn with_cursor(raw: &str, cursor: &str) -> String {
    let mut parts: Vec<String> = raw
        .split('&')
        .filter(|part| !part.is_empty() && !part.starts_with("cursor="))
        .map(str::to_owned)
        .collect();
    parts.push(format!("cursor={}", encode(cursor)));
    parts.join("&")
}

/// An opaque cursor for `text`.
pub(crate) fn cursor_encode(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

/// The text of a cursor.
pub(crate) fn cursor_decode(cursor: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_replaces_the_cursor() {
        let pairs = parse("from=2023-10-31T16%3A24%3A12%2B08%3A00&max=5&x=a+b&bad=%zz&end=%4");
        assert_eq!(get(&pairs, "from"), Some("2023-10-31T16:24:12+08:00"));
        assert_eq!(get(&pairs, "x"), Some("a b"));
        assert_eq!(get(&pairs, "bad"), Some("%zz"));
        assert_eq!(get(&pairs, "end"), Some("%4"));
        assert_eq!(
            with_cursor("max=5&cursor=abc&to=x", "c d"),
            "max=5&to=x&cursor=c%20d"
        );
        assert_eq!(with_cursor("", "c"), "cursor=c");
        let cursor = cursor_encode("1:abc");
        assert_eq!(cursor_decode(&cursor).as_deref(), Some("1:abc"));
    }
}
