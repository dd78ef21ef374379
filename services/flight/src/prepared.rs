//! Prepared statements kept by the server: the SQL, its owner and project,
//! and bound parameter values. Handles are random; a statement is usable only
//! by the user (and project) that created it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use datafusion::common::ScalarValue;
use ring::rand::{SecureRandom, SystemRandom};

/// Most prepared statements one server keeps; the oldest go first.
const CAPACITY: usize = 10_000;
/// Unused statements expire after this long.
const IDLE_LIFETIME: Duration = Duration::from_secs(8 * 3600);

#[derive(Debug, Clone)]
pub(crate) struct PreparedStatement {
    pub(crate) user: String,
    pub(crate) project: String,
    pub(crate) sql: String,
    pub(crate) params: Option<Vec<ScalarValue>>,
    last_used: Instant,
}

#[derive(Debug)]
pub(crate) struct PreparedStatements {
    statements: Mutex<HashMap<Vec<u8>, PreparedStatement>>,
    rng: SystemRandom,
}

impl Default for PreparedStatements {
    fn default() -> PreparedStatements {
        PreparedStatements {
            statements: Mutex::default(),
            rng: SystemRandom::new(),
        }
    }
}

impl PreparedStatements {
    pub(crate) fn create(&self, user: &str, project: &str, sql: &str) -> Vec<u8> {
        let mut handle = vec![0u8; 16];
        self.rng.fill(&mut handle).expect("system randomness");
        let mut statements = self.lock();
        statements.retain(|_, statement| statement.last_used.elapsed() < IDLE_LIFETIME);
        if statements.len() >= CAPACITY
            && let Some(oldest) = statements
                .iter()
                .min_by_key(|(_, statement)| statement.last_used)
                .map(|(handle, _)| handle.clone())
        {
            statements.remove(&oldest);
        }
        statements.insert(
            handle.clone(),
            PreparedStatement {
                user: user.to_string(),
                project: project.to_string(),
                sql: sql.to_string(),
                params: None,
                last_used: Instant::now(),
            },
        );
        handle
    }

    /// The statement behind `handle` if `user` owns it.
    pub(crate) fn get(&self, handle: &[u8], user: &str) -> Option<PreparedStatement> {
        let mut statements = self.lock();
        let statement = statements.get_mut(handle).filter(|s| s.user == user)?;
        statement.last_used = Instant::now();
        Some(statement.clone())
    }

    pub(crate) fn bind(&self, handle: &[u8], user: &str, params: Vec<ScalarValue>) -> bool {
        let mut statements = self.lock();
        match statements.get_mut(handle).filter(|s| s.user == user) {
            Some(statement) => {
                statement.params = Some(params);
                statement.last_used = Instant::now();
                true
            }
            None => false,
        }
    }

    pub(crate) fn close(&self, handle: &[u8], user: &str) {
        let mut statements = self.lock();
        if statements.get(handle).is_some_and(|s| s.user == user) {
            statements.remove(handle);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, PreparedStatement>> {
        self.statements.lock().unwrap_or_else(|e| e.into_inner())
    }
}
