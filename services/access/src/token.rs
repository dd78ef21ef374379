//! Bearer tokens and the credentials of a call.
//!
//! A client logs in with HTTP Basic credentials (the Flight handshake; the
//! `Login` call of the gRPC API) and receives a bearer token:
//! `base64url(user:expiry:nonce).base64url(HMAC)`, signed with a key drawn
//! at server start. Every later call must carry it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// Standard base64 that accepts input with or without padding (ADBC's Go
/// client sends Basic credentials unpadded).
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Issues and checks signed tokens.
#[derive(Debug)]
pub struct Signer {
    key: hmac::Key,
    rng: SystemRandom,
}

impl Signer {
    pub fn new() -> Signer {
        let rng = SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("system randomness");
        Signer { key, rng }
    }

    /// `payload.signature`, both base64url.
    fn sign(&self, payload: &[u8]) -> String {
        let tag = hmac::sign(&self.key, payload);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }

    /// The payload of a value made by [`Signer::sign`], if the signature holds.
    fn verify(&self, signed: &str) -> Option<Vec<u8>> {
        let (payload, tag) = signed.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        hmac::verify(&self.key, &payload, &tag).ok()?;
        Some(payload)
    }

    pub fn issue_token(&self, user: &str, lifetime: Duration) -> String {
        let mut nonce = [0u8; 12];
        self.rng.fill(&mut nonce).expect("system randomness");
        let payload = format!("{user}:{}:{}", unix_now() + lifetime.as_secs(), hex(&nonce));
        self.sign(payload.as_bytes())
    }

    /// The user a valid, unexpired token was issued to.
    pub fn check_token(&self, token: &str) -> Option<String> {
        let payload = String::from_utf8(self.verify(token)?).ok()?;
        let mut parts = payload.rsplitn(3, ':');
        let _nonce = parts.next()?;
        let expiry: u64 = parts.next()?.parse().ok()?;
        let user = parts.next()?;
        (unix_now() < expiry).then(|| user.to_string())
    }
}

impl Default for Signer {
    fn default() -> Signer {
        Signer::new()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// User name and password from an `authorization` header's `Basic …`.
pub fn parse_basic(header: &str) -> Option<(String, String)> {
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let decoded = LENIENT_BASE64.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The token from an `authorization` header's `Bearer …`.
pub fn parse_bearer(header: &str) -> Option<&str> {
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_tampering() {
        let signer = Signer::new();
        let token = signer.issue_token("alice", Duration::from_secs(60));
        assert_eq!(signer.check_token(&token).as_deref(), Some("alice"));
        let mut forged = token.clone();
        forged.replace_range(0..1, if token.starts_with('a') { "b" } else { "a" });
        assert_eq!(signer.check_token(&forged), None);
        assert_eq!(
            Signer::new().check_token(&token),
            None,
            "another server's key"
        );
        let expired = signer.issue_token("alice", Duration::ZERO);
        assert_eq!(signer.check_token(&expired), None);
    }
}
