//! Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256>` over
//! `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the bytes of a `whsec_…` secret.
//! Written here rather than taken from a crate: it is a dozen lines over `hmac` and `sha2`,
//! which we already build, and the specification's own example is its test.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Prefix of a secret's text form.
pub const PREFIX: &str = "whsec_";

/// A new random secret: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{PREFIX}{}", STANDARD.encode(bytes))
}

/// The key bytes of a secret, or why it is not one (`whsec_` and base64 of 24 to 64 bytes).
pub fn key_of(secret: &str) -> Result<Vec<u8>, String> {
    let b64 = secret.strip_prefix(PREFIX).unwrap_or(secret);
    let key = STANDARD
        .decode(b64)
        .map_err(|_| "must be `whsec_` followed by base64".to_string())?;
    if !(24..=64).contains(&key.len()) {
        return Err(format!("must hold 24 to 64 bytes (it holds {})", key.len()));
    }
    Ok(key)
}

/// The `webhook-signature` value for one attempt.
pub fn sign(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// A new message id: `msg_` and a ULID (the same on every attempt of one message).
pub fn new_message_id() -> String {
    format!("msg_{}", ulid::Ulid::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specifications_example() {
        let key = key_of("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            sign(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_round_trip_and_bad_ones_say_why() {
        let s = new_secret();
        assert_eq!(key_of(&s).unwrap().len(), 32);
        assert!(key_of("whsec_short").unwrap_err().contains("base64"));
        assert!(key_of("whsec_AAAA").unwrap_err().contains("24 to 64"));
    }
}
