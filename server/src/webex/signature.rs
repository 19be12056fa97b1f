//! `X-Spark-Signature`: the hex HMAC-SHA1 of the raw request body, keyed by the webhook's secret.

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// The header Webex signs deliveries with.
pub const SIGNATURE_HEADER: &str = "X-Spark-Signature";

/// The signature of `body` under `secret`, as Webex sends it (lower-case hex).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `signature` (hex, any case) is the HMAC-SHA1 of the raw `body` under `secret`. The
/// comparison is constant-time.
pub fn verify(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let Ok(expected) = hex::decode(signature.trim()) else {
        return false;
    };
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_for_the_same_secret_and_bytes() {
        let body = br#"{"id":"x","resource":"telephony_calls","event":"created","data":{}}"#;
        let signature = sign(b"s3cret", body);
        assert_eq!(signature.len(), 40);
        assert!(verify(b"s3cret", body, &signature));
        assert!(verify(b"s3cret", body, &signature.to_uppercase()));
        assert!(!verify(b"other", body, &signature));
        let mut changed = body.to_vec();
        changed[2] = b'X';
        assert!(!verify(b"s3cret", &changed, &signature));
        assert!(!verify(b"s3cret", body, "not hex"));
        assert!(!verify(b"s3cret", body, ""));
        // RFC 2202 test case 2: HMAC-SHA1("Jefe", "what do ya want for nothing?").
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }
}
