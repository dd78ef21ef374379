//! Identifiers: a query's id, the service's random secrets, and the key of
//! each project's person ids.

use enclave_guard::pseudonym::{KEY_BYTES, ProjectIds};
use enclave_state::{Secret, StateStore};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::QueryError;

/// Derives each project's person-id permutation from the service's secret
/// (made on first use, kept in the state store), so a project's ids are the
/// same on every replica and after every restart, and unrelated between
/// projects.
pub(crate) struct ProjectIdKeys {
    secret: hmac::Key,
}

impl std::fmt::Debug for ProjectIdKeys {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ProjectIdKeys(<secret>)")
    }
}

impl ProjectIdKeys {
    pub(crate) fn load(state: &StateStore) -> Result<ProjectIdKeys, QueryError> {
        let secret = state
            .secret(Secret::ProjectIds, &random_hex(32)?)
            .map_err(QueryError::internal)?;
        Ok(ProjectIdKeys {
            secret: hmac::Key::new(hmac::HMAC_SHA512, secret.as_bytes()),
        })
    }

    /// The permutation of `project`'s person ids.
    pub(crate) fn project(&self, project: &str) -> ProjectIds {
        let mut key = [0u8; KEY_BYTES];
        for (block, chunk) in key.chunks_mut(64).enumerate() {
            let mut message = format!("enclave project person ids v1/{block}/").into_bytes();
            message.extend(project.as_bytes());
            let tag = hmac::sign(&self.secret, &message);
            chunk.copy_from_slice(&tag.as_ref()[..chunk.len()]);
        }
        ProjectIds::new(key)
    }
}

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
    fn projects_get_their_own_stable_ids() {
        let secret = |text: &str| ProjectIdKeys {
            secret: hmac::Key::new(hmac::HMAC_SHA512, text.as_bytes()),
        };
        let keys = secret("one");
        let (a, b) = (
            keys.project("p-a").project_id(7),
            keys.project("p-b").project_id(7),
        );
        assert_ne!(a, b);
        assert_eq!(
            keys.project("p-a").project_id(7),
            a,
            "the same project, the same ids"
        );
        assert_ne!(secret("two").project("p-a").project_id(7), a);
    }

    #[test]
    fn query_ids_are_short_and_distinct() {
        let (first, second) = (new_query_id().unwrap(), new_query_id().unwrap());
        assert_eq!(first.len(), 18);
        assert!(first.starts_with("q-"));
        assert_ne!(first, second);
    }
}
