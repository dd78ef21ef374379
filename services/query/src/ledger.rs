//! The release ledger kept durable (the rule is `enclave_guard::ledger`).
//!
//! One ledger serves every project of the service, so answers cannot be
//! combined across projects either. Its batches live in the state store
//! (the embedded file or PostgreSQL, shared by replicas); this process
//! holds them in memory and reads the ones other replicas appended before
//! each decision. A decision and the batch of fresh answers it makes are
//! one state-store transaction, committed before the answer leaves: after
//! a restart or a kill the ledger holds every answer given (and at most
//! answers that never left, which only makes it stricter).

use std::sync::{Arc, Mutex, PoisonError};

use enclave_guard::ledger::{Cell, Decision, Entry, Ledger, LedgerRules};
use enclave_state::{LedgerBatch, StateError, StateStore};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::QueryError;

/// One stored batch: the fresh answers of one result.
#[derive(Debug, Serialize, Deserialize)]
struct StoredBatch {
    project: String,
    entries: Vec<Entry>,
}

/// The ledger of this process, loaded on first use.
#[derive(Debug, Default)]
pub(crate) struct ReleaseLedger {
    loaded: Arc<Mutex<Option<Loaded>>>,
}

#[derive(Debug)]
struct Loaded {
    ledger: Ledger,
    /// The last stored batch held in `ledger`.
    last: u64,
}

/// The decisions on a result's cells and the ledger release that
/// remembers its fresh answers (`None` when every answer repeated one).
#[derive(Debug)]
pub(crate) struct Decided {
    pub(crate) decisions: Vec<Decision>,
    pub(crate) release: Option<u64>,
}

impl ReleaseLedger {
    /// Decides `cells` for `project` and makes the fresh answers durable.
    pub(crate) async fn decide(
        &self,
        state: &Arc<StateStore>,
        project: &str,
        cells: Vec<Cell>,
        rules: LedgerRules,
    ) -> Result<Decided, QueryError> {
        let loaded = Arc::clone(&self.loaded);
        let state = Arc::clone(state);
        let project = project.to_string();
        tokio::task::spawn_blocking(move || {
            let mut slot = loaded.lock().unwrap_or_else(PoisonError::into_inner);
            if slot.is_none() {
                *slot = Some(load(&state)?);
            }
            let loaded = slot
                .as_mut()
                .ok_or_else(|| QueryError::internal("ledger"))?;
            loaded.decide(&state, &project, &cells, &rules)
        })
        .await
        .map_err(QueryError::internal)?
    }
}

impl Loaded {
    /// Decides first over what is stored (a read): when every cell is a
    /// set already held, nothing is written. Otherwise decides again in a
    /// write transaction. (Between the read and the answer another server
    /// may append a withheld set near one of these cells, which would have
    /// won over the answered one repeated here: the read path trusts sets
    /// held, not the absence of newer ones.)
    fn decide(
        &mut self,
        state: &StateStore,
        project: &str,
        cells: &[Cell],
        rules: &LedgerRules,
    ) -> Result<Decided, QueryError> {
        let stored = state
            .ledger_batches(self.last)
            .map_err(QueryError::internal)?;
        self.absorb(stored).map_err(QueryError::internal)?;
        let (decisions, fresh) = self.ledger.decide(cells, rules, self.last + 1);
        if fresh.is_empty() {
            return Ok(Decided {
                decisions,
                release: None,
            });
        }
        self.decide_and_append(state, project, cells, rules)
    }

    fn decide_and_append(
        &mut self,
        state: &StateStore,
        project: &str,
        cells: &[Cell],
        rules: &LedgerRules,
    ) -> Result<Decided, QueryError> {
        let (number, (decisions, fresh)) = state
            .append_ledger(self.last, |batches, next| {
                self.absorb(batches)?;
                let (decisions, fresh) = self.ledger.decide(cells, rules, next);
                let batch = if fresh.is_empty() {
                    None
                } else {
                    Some(serde_json::to_vec(&StoredBatch {
                        project: project.to_string(),
                        entries: fresh.clone(),
                    })?)
                };
                Ok((batch, (decisions, fresh)))
            })
            .map_err(QueryError::internal)?;
        let release = (!fresh.is_empty()).then_some(number);
        if release.is_some() {
            fresh
                .into_iter()
                .for_each(|entry| self.ledger.insert(entry));
            self.last = number;
        }
        Ok(Decided { decisions, release })
    }

    fn absorb(&mut self, batches: Vec<LedgerBatch>) -> Result<(), StateError> {
        for batch in batches {
            if batch.number <= self.last {
                continue;
            }
            let stored: StoredBatch = serde_json::from_slice(&batch.json)?;
            stored
                .entries
                .into_iter()
                .for_each(|entry| self.ledger.insert(entry));
            self.last = batch.number;
        }
        Ok(())
    }
}

/// The stored ledger, with its noise key (made on first use).
fn load(state: &StateStore) -> Result<Loaded, QueryError> {
    let mut fresh = [0u8; 32];
    SystemRandom::new()
        .fill(&mut fresh)
        .map_err(|_| QueryError::internal("no randomness for the ledger key"))?;
    let fresh: String = fresh.iter().map(|byte| format!("{byte:02x}")).collect();
    let key = state.ledger_key(&fresh).map_err(QueryError::internal)?;
    let mut loaded = Loaded {
        ledger: Ledger::new(key.as_bytes()),
        last: 0,
    };
    let batches = state.ledger_batches(0).map_err(QueryError::internal)?;
    loaded.absorb(batches).map_err(QueryError::internal)?;
    tracing::info!(
        batches = loaded.last,
        cells = loaded.ledger.len(),
        "release ledger loaded"
    );
    Ok(loaded)
}
