//! Keyed pseudonyms: HMAC-SHA-256 under per-purpose keys derived by HKDF.

use std::fmt;

use ring::{hkdf, hmac};

/// Shortest secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

const HKDF_SALT: &[u8] = b"enclave/linkage/v1";
/// Separates the parts of a hashed input; it occurs in no normalized field.
const UNIT_SEPARATOR: u8 = 0x1F;

/// Why no keys could be derived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the pseudonymization key must be at least {MIN_SECRET_BYTES} bytes (got {0})")]
    TooShort(usize),
    #[error("key derivation failed")]
    Derivation,
}

/// A 128-bit keyed hash (a truncated HMAC-SHA-256).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyHash(pub [u8; 16]);

impl KeyHash {
    /// The first 64 bits, enough to tell a key's few partners apart.
    pub fn prefix(&self) -> u64 {
        u64::from_le_bytes(self.0[..8].try_into().expect("16 bytes"))
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash(")?;
        self.0[..4].iter().try_for_each(|b| write!(f, "{b:02x}"))?;
        write!(f, "…)")
    }
}

/// What a key is for; each purpose has its own derived HMAC key, so a hash
/// made for one purpose says nothing about another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// ID1-style: health insurer, card symbol and number, birth date, sex.
    HealthCard,
    /// ID1-style over the care insurer and care insured number.
    CareCard,
    /// ID2/ID4-style: normalized kana name, birth date, sex.
    Name,
    /// A facility's own patient number (chart number, DPC data id).
    FacilityPatient,
    /// The published `facility_id`.
    Facility,
    /// The order in which persons receive their `person_id`.
    PersonOrder,
    /// The manifest's key fingerprint.
    Fingerprint,
}

impl Purpose {
    const ALL: [Purpose; 7] = [
        Purpose::HealthCard,
        Purpose::CareCard,
        Purpose::Name,
        Purpose::FacilityPatient,
        Purpose::Facility,
        Purpose::PersonOrder,
        Purpose::Fingerprint,
    ];

    fn label(self) -> &'static [u8] {
        match self {
            Purpose::HealthCard => b"health-card",
            Purpose::CareCard => b"care-card",
            Purpose::Name => b"kana-name",
            Purpose::FacilityPatient => b"facility-patient",
            Purpose::Facility => b"facility",
            Purpose::PersonOrder => b"person-order",
            Purpose::Fingerprint => b"fingerprint",
        }
    }
}

/// The HMAC keys of every purpose, derived from the steward's secret.
pub struct LinkageKeys {
    keys: Vec<hmac::Key>,
}

impl fmt::Debug for LinkageKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkageKeys(..)")
    }
}

/// Output length of one HKDF expansion: a full HMAC-SHA-256 key.
struct HmacKeyLength;

impl hkdf::KeyType for HmacKeyLength {
    fn len(&self) -> usize {
        32
    }
}

impl LinkageKeys {
    /// Derives every purpose key from `secret` (HKDF-SHA-256, fixed salt,
    /// the purpose as info). Refuses secrets shorter than 32 bytes.
    pub fn derive(secret: &[u8]) -> Result<LinkageKeys, KeyError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(KeyError::TooShort(secret.len()));
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(secret);
        let keys = Purpose::ALL
            .iter()
            .map(|purpose| {
                let info = [purpose.label()];
                let okm = prk
                    .expand(&info, HmacKeyLength)
                    .map_err(|_| KeyError::Derivation)?;
                let mut bytes = [0u8; 32];
                okm.fill(&mut bytes).map_err(|_| KeyError::Derivation)?;
                Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
            })
            .collect::<Result<Vec<_>, KeyError>>()?;
        Ok(LinkageKeys { keys })
    }

    fn key(&self, purpose: Purpose) -> &hmac::Key {
        let index = Purpose::ALL.iter().position(|p| *p == purpose).unwrap_or(0);
        &self.keys[index]
    }

    /// HMAC of `parts`, joined unambiguously, truncated to 128 bits.
    pub fn hash(&self, purpose: Purpose, parts: &[&[u8]]) -> KeyHash {
        let mut context = hmac::Context::with_key(self.key(purpose));
        for part in parts {
            context.update(part);
            context.update(&[UNIT_SEPARATOR]);
        }
        truncate(context.sign().as_ref())
    }

    /// The published `facility_id` of a facility key: a positive int64.
    pub fn facility_pseudonym(&self, facility: &str) -> i64 {
        let hash = self.hash(Purpose::Facility, &[facility.as_bytes()]);
        i64::from_be_bytes(hash.0[..8].try_into().unwrap_or_default()) & i64::MAX
    }

    /// 16 hex characters identifying the secret without revealing it.
    pub fn fingerprint(&self) -> String {
        let hash = self.hash(Purpose::Fingerprint, &[b"enclave key fingerprint"]);
        hash.0[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn truncate(digest: &[u8]) -> KeyHash {
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    KeyHash(out)
}

/// The linkage keys of identifying fields, already normalized. They are
/// computed for every record, not remembered: measured on the ingest
/// throughput bench, a memo of inputs found 7 % of them again and cost more
/// than the hashes it spared (an HMAC is about 230 ns here).
impl LinkageKeys {
    /// ID1-style key of a health insurance card.
    pub fn health_card_key(
        &self,
        insurer: &str,
        symbol: &str,
        number: &str,
        birth: &str,
        sex: &str,
    ) -> KeyHash {
        self.hash_text(Purpose::HealthCard, [insurer, symbol, number, birth, sex])
    }

    /// ID1-style key of a care insurance card.
    pub fn care_card_key(&self, insurer: &str, number: &str, birth: &str, sex: &str) -> KeyHash {
        self.hash_text(Purpose::CareCard, [insurer, number, birth, sex])
    }

    /// ID2/ID4-style key of a normalized kana name.
    pub fn name_key(&self, kana_name: &str, birth: &str, sex: &str) -> KeyHash {
        self.hash_text(Purpose::Name, [kana_name, birth, sex])
    }

    /// Key of a facility's own patient number.
    pub fn facility_patient_key(
        &self,
        facility: &str,
        patient: &str,
        birth: &str,
        sex: &str,
    ) -> KeyHash {
        self.hash_text(Purpose::FacilityPatient, [facility, patient, birth, sex])
    }

    fn hash_text<const N: usize>(&self, purpose: Purpose, parts: [&str; N]) -> KeyHash {
        self.hash(purpose, &parts.map(str::as_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(
            LinkageKeys::derive(b"short").unwrap_err(),
            KeyError::TooShort(5)
        );
        assert!(LinkageKeys::derive(&SECRET[..31]).is_err());
        assert!(LinkageKeys::derive(SECRET).is_ok());
    }

    #[test]
    fn hashes_depend_on_the_secret_and_the_purpose() {
        let a = LinkageKeys::derive(SECRET).unwrap();
        let a_again = LinkageKeys::derive(SECRET).unwrap();
        let b = LinkageKeys::derive(b"another secret of at least 32 bytes!").unwrap();
        let parts: &[&[u8]] = &["ヤマダタロウ".as_bytes(), b"19700612", b"1"];
        assert_eq!(
            a.hash(Purpose::Name, parts),
            a_again.hash(Purpose::Name, parts)
        );
        assert_ne!(a.hash(Purpose::Name, parts), b.hash(Purpose::Name, parts));
        assert_ne!(
            a.hash(Purpose::Name, parts),
            a.hash(Purpose::HealthCard, parts)
        );
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().len(), 16);
    }

    #[test]
    fn the_encoding_is_unambiguous() {
        let keys = LinkageKeys::derive(SECRET).unwrap();
        assert_ne!(keys.name_key("ab", "c", "1"), keys.name_key("a", "bc", "1"));
        assert_ne!(
            keys.hash(Purpose::Name, &[b"ab".as_slice(), b"c"]),
            keys.hash(Purpose::Name, &[b"a".as_slice(), b"bc"])
        );
    }

    #[test]
    fn field_keys_are_the_hash_of_their_fields() {
        let keys = LinkageKeys::derive(SECRET).unwrap();
        let direct = keys.hash(
            Purpose::HealthCard,
            &[b"01130012".as_slice(), b"1234", b"56", b"19700612", b"1"],
        );
        let card = keys.health_card_key("01130012", "1234", "56", "19700612", "1");
        assert_eq!(card, direct);
    }
}
