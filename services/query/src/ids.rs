//! Random identifiers: a query's id and the release ledger's noise key.

use ring::rand::{SecureRandom, SystemRandom};

use crate::QueryError;

/// `bytes` random bytes from the system's generator, as lowercase hex.
pub(crate) fn random_hex(bytes: usize) -> Result<String, QueryError> {
    let mut random = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut random)
        .map_err(|_| QueryError::internal("the system has no randomness"))?;
    Ok(random.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// A new query id: `q-` and 16 hex digits (64 random bits), unique among
/// the queries of any service's lifetime with overwhelming probability.
pub(crate) fn new_query_id() -> Result<String, QueryError> {
    Ok(format!("q-{}", random_hex(8)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_ids_are_short_and_distinct() {
        let (first, second) = (new_query_id().unwrap(), new_query_id().unwrap());
        assert_eq!(first.len(), 18);
        assert!(first.starts_with("q-"));
        assert_ne!(first, second);
    }
}
