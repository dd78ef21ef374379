//! Results waiting to be fetched. A statement runs, and its result passes
//! disclosure control, when the client asks for its `FlightInfo`; the ticket
//! names the released result, which `DoGet` then streams once. So the query
//! is planned once, and a ticket can never run anything.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use enclave_query::Outcome;
use ring::rand::{SecureRandom, SystemRandom};

/// A result not fetched within this long is dropped.
const FETCH_WINDOW: Duration = Duration::from_secs(600);
/// Most unfetched results one user may leave waiting.
const PER_USER: usize = 16;

#[derive(Debug)]
struct Pending {
    user: String,
    /// The project (or audit scope) whose session made it.
    scope: String,
    outcome: Outcome,
    ready_at: Instant,
}

#[derive(Debug)]
pub(crate) struct PendingResults {
    results: Mutex<HashMap<String, Pending>>,
    rng: SystemRandom,
}

impl Default for PendingResults {
    fn default() -> PendingResults {
        PendingResults {
            results: Mutex::default(),
            rng: SystemRandom::new(),
        }
    }
}

impl PendingResults {
    /// Keeps `outcome` for `user`; returns the handle to fetch it with. The
    /// user's oldest unfetched result makes room when they have too many.
    pub(crate) fn insert(&self, user: &str, scope: &str, outcome: Outcome) -> String {
        let mut bytes = [0u8; 16];
        self.rng.fill(&mut bytes).expect("system randomness");
        let handle: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut results = self.lock();
        results.retain(|_, pending| pending.ready_at.elapsed() < FETCH_WINDOW);
        let mut waiting: Vec<(&String, Instant)> = results
            .iter()
            .filter(|(_, pending)| pending.user == user)
            .map(|(handle, pending)| (handle, pending.ready_at))
            .collect();
        if waiting.len() >= PER_USER {
            waiting.sort_by_key(|(_, ready_at)| *ready_at);
            let oldest = waiting[0].0.clone();
            results.remove(&oldest);
        }
        results.insert(
            handle.clone(),
            Pending {
                user: user.to_string(),
                scope: scope.to_string(),
                outcome,
                ready_at: Instant::now(),
            },
        );
        handle
    }

    /// Takes the result behind `handle` if it belongs to `user` and has not
    /// been fetched or expired, with the scope that made it (which the
    /// caller checks is still open before it streams anything).
    pub(crate) fn take(&self, handle: &str, user: &str) -> Option<(String, Outcome)> {
        let mut results = self.lock();
        let owned = results.get(handle).is_some_and(|pending| {
            pending.user == user && pending.ready_at.elapsed() < FETCH_WINDOW
        });
        owned
            .then(|| results.remove(handle))
            .flatten()
            .map(|p| (p.scope, p.outcome))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Pending>> {
        self.results.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_is_fetched_once_and_only_by_its_owner() {
        let results = PendingResults::default();
        let handle = results.insert("alice", "p1", Outcome::Updated(3));
        assert!(results.take(&handle, "bob").is_none());
        assert!(matches!(
            results.take(&handle, "alice"),
            Some((scope, Outcome::Updated(3))) if scope == "p1"
        ));
        assert!(results.take(&handle, "alice").is_none());
    }

    #[test]
    fn a_user_keeps_a_bounded_number_waiting() {
        let results = PendingResults::default();
        let handles: Vec<String> = (0..=PER_USER)
            .map(|i| results.insert("alice", "p1", Outcome::Updated(i as u64)))
            .collect();
        assert!(
            results.take(&handles[0], "alice").is_none(),
            "oldest dropped"
        );
        assert!(results.take(&handles[PER_USER], "alice").is_some());
    }
}
