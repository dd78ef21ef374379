//! The release ledger kept durable (the rule is `enclave_guard::ledger`).
//!
//! One ledger serves every project of the service, so answers cannot be
//! combined across projects either. Its batches live in the state store
//! (the embedded file or PostgreSQL, shared by replicas); this process
//! holds them in memory and reads the ones other replicas appended before
//! each decision. A decision and the batch of fresh answers it makes are
//! one state-store transaction, committed before the answer leaves: after
//! a restart or a kill the ledger holds every answer given (and at most
//! answers that never left, which only makes it stricter). Each batch names
//! the project and the query whose result made it ([`releases`]), so an
//! answer that repeats an earlier one can be traced to that query.

mod releases;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use enclave_guard::disclosure::{LedgerNote, ValueCounts};
use enclave_guard::ledger::{Answer, Cell, Decision, Entry, Ledger, LedgerRules};
use enclave_state::{LedgerBatch, Secret, StateError, StateStore};
use serde::{Deserialize, Serialize};

use crate::QueryError;
use crate::ids::random_hex;
pub use releases::{LedgerRelease, ProjectLedger};
use releases::{Made, Releases};

/// One stored batch: the new cells of one result. The query, time and
/// value counts are absent from batches stored before releases named their
/// query (they load as `None`).
#[derive(Debug, Serialize, Deserialize)]
struct StoredBatch {
    project: String,
    #[serde(default)]
    query_id: Option<String>,
    /// When it was stored, in milliseconds since the Unix epoch.
    #[serde(default)]
    at_ms: Option<i64>,
    /// Values of released groups answered fresh and repeated.
    #[serde(default)]
    values: Option<ValueCounts>,
    /// Made by cells of withheld groups alone: not listed to the project.
    #[serde(default)]
    unshown: bool,
    entries: Vec<Entry>,
}

/// Whether new cells include one answered (a shown group or a value of
/// one): a release of withheld cells alone is neither told in the note nor
/// listed to the project, since telling it would tell that the result held
/// a group of fewer than k persons.
fn shows_new(entries: &[Entry]) -> bool {
    entries.iter().any(|entry| entry.answer != Answer::Withheld)
}

/// The decisions on a result's cells and the release that stores its new
/// cells, when the researcher is told of it.
type Appended = (Vec<Decision>, Option<u64>);

/// The ledger of this process, loaded on first use.
#[derive(Debug, Default)]
pub(crate) struct ReleaseLedger {
    loaded: Arc<Mutex<Option<Loaded>>>,
}

#[derive(Debug)]
struct Loaded {
    ledger: Ledger,
    releases: Releases,
    /// The last stored batch held in `ledger`.
    last: u64,
}

/// A result about to be decided: whose it is, and how many values its
/// project may have answered fresh in all.
#[derive(Debug, Clone)]
pub(crate) struct Asking {
    pub(crate) project: String,
    pub(crate) query_id: String,
    pub(crate) fresh_value_budget: u64,
}

/// A result whose fresh values would pass its project's budget: nothing of
/// it was stored or answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OverBudget {
    /// Values the project has had answered fresh so far.
    pub(crate) spent: u64,
    pub(crate) budget: u64,
}

/// The decisions on a result's cells and what the researcher is told of
/// them.
#[derive(Debug)]
pub(crate) struct Decided {
    pub(crate) decisions: Vec<Decision>,
    pub(crate) note: LedgerNote,
}

impl ReleaseLedger {
    /// Decides `cells` of `asking`'s result and makes the new ones durable,
    /// unless their fresh values would pass the project's budget.
    pub(crate) async fn decide(
        &self,
        state: &Arc<StateStore>,
        asking: Asking,
        cells: Vec<Cell>,
        rules: LedgerRules,
    ) -> Result<Result<Decided, OverBudget>, QueryError> {
        self.with_current(state, move |loaded, state| {
            loaded.decide(state, &asking, &cells, &rules)
        })
        .await
    }

    /// What the members of `project` see of the ledger.
    pub(crate) async fn project(
        &self,
        state: &Arc<StateStore>,
        project: &str,
    ) -> Result<ProjectLedger, QueryError> {
        let project = project.to_string();
        self.with_current(state, move |loaded, _| {
            Ok(loaded.releases.project(&project))
        })
        .await
    }

    /// Runs `work` on the ledger once it holds every stored batch.
    async fn with_current<R: Send + 'static>(
        &self,
        state: &Arc<StateStore>,
        work: impl FnOnce(&mut Loaded, &StateStore) -> Result<R, QueryError> + Send + 'static,
    ) -> Result<R, QueryError> {
        let loaded = Arc::clone(&self.loaded);
        let state = Arc::clone(state);
        tokio::task::spawn_blocking(move || {
            let mut slot = loaded.lock().unwrap_or_else(PoisonError::into_inner);
            let loaded = match slot.as_mut() {
                Some(loaded) => {
                    loaded.catch_up(&state)?;
                    loaded
                }
                None => slot.insert(load(&state)?),
            };
            work(loaded, &state)
        })
        .await
        .map_err(QueryError::internal)?
    }
}

impl Loaded {
    /// Decides first over what is held (a read): when every cell is a set
    /// already held, nothing is written. Otherwise decides again in a
    /// write transaction. (Between the read and the answer another server
    /// may append a withheld set near one of these cells, which would have
    /// won over the answered one repeated here: the read path trusts sets
    /// held, not the absence of newer ones.)
    fn decide(
        &mut self,
        state: &StateStore,
        asking: &Asking,
        cells: &[Cell],
        rules: &LedgerRules,
    ) -> Result<Result<Decided, OverBudget>, QueryError> {
        let (decisions, fresh) = self.ledger.decide(cells, rules, self.last + 1);
        let (decisions, release) = if fresh.is_empty() {
            (decisions, None)
        } else {
            match self.decide_and_append(state, asking, cells, rules)? {
                Ok(decided) => decided,
                Err(over) => return Ok(Err(over)),
            }
        };
        let mut note = LedgerNote::new(cells, &decisions, release, |number| {
            self.releases.origin(number, &asking.project)
        });
        let spent = self.releases.fresh_values(&asking.project);
        note.fresh_values_left = Some(asking.fresh_value_budget.saturating_sub(spent));
        Ok(Ok(Decided { decisions, note }))
    }

    /// Decides in a write transaction and stores the new cells, if any, as
    /// the next release (returned with the decisions when it is told, see
    /// [`shows_new`]); stores nothing when the values it answers fresh
    /// would pass the project's budget.
    fn decide_and_append(
        &mut self,
        state: &StateStore,
        asking: &Asking,
        cells: &[Cell],
        rules: &LedgerRules,
    ) -> Result<Result<Appended, OverBudget>, QueryError> {
        let (number, appended) = state
            .append_ledger(self.last, |batches, next| {
                self.absorb(batches)?;
                let (decisions, entries) = self.ledger.decide(cells, rules, next);
                if entries.is_empty() {
                    return Ok((None, Ok((decisions, None))));
                }
                let values = ValueCounts::of(cells, &decisions);
                // Only a result that answers a fresh value is refused:
                // whether its new cells include withheld groups is not told.
                let spent = self.releases.fresh_values(&asking.project);
                let fresh = values.fresh_values as u64;
                if fresh > 0 && spent + fresh > asking.fresh_value_budget {
                    let budget = asking.fresh_value_budget;
                    return Ok((None, Err(OverBudget { spent, budget })));
                }
                let stored = StoredBatch {
                    project: asking.project.clone(),
                    query_id: Some(asking.query_id.clone()),
                    at_ms: Some(now_ms()),
                    values: Some(values),
                    unshown: !shows_new(&entries),
                    entries,
                };
                Ok((
                    Some(serde_json::to_vec(&stored)?),
                    Ok((decisions, Some(stored))),
                ))
            })
            .map_err(QueryError::internal)?;
        let (decisions, stored) = match appended {
            Ok(decided) => decided,
            Err(over) => return Ok(Err(over)),
        };
        let Some(stored) = stored else {
            return Ok(Ok((decisions, None)));
        };
        let told = (!stored.unshown).then_some(number);
        self.remember(number, stored);
        Ok(Ok((decisions, told)))
    }

    /// Takes in the batches other servers (or an earlier life) stored.
    fn catch_up(&mut self, state: &StateStore) -> Result<(), QueryError> {
        let stored = state
            .ledger_batches(self.last)
            .map_err(QueryError::internal)?;
        self.absorb(stored).map_err(QueryError::internal)
    }

    fn absorb(&mut self, batches: Vec<LedgerBatch>) -> Result<(), StateError> {
        for batch in batches {
            if batch.number > self.last {
                self.remember(batch.number, serde_json::from_slice(&batch.json)?);
            }
        }
        Ok(())
    }

    fn remember(&mut self, number: u64, stored: StoredBatch) {
        let StoredBatch {
            project,
            query_id,
            at_ms,
            values,
            unshown,
            entries,
        } = stored;
        entries
            .into_iter()
            .for_each(|entry| self.ledger.insert(entry));
        let made = Made {
            project,
            query_id,
            at_ms,
            values,
            unshown,
        };
        self.releases.insert(number, made);
        self.last = number;
    }
}

/// The stored ledger, with its noise key (made on first use).
fn load(state: &StateStore) -> Result<Loaded, QueryError> {
    let key = state
        .secret(Secret::LedgerNoise, &random_hex(32)?)
        .map_err(QueryError::internal)?;
    let mut loaded = Loaded {
        ledger: Ledger::new(key.as_bytes()),
        releases: Releases::default(),
        last: 0,
    };
    loaded.catch_up(state)?;
    tracing::info!(
        batches = loaded.last,
        cells = loaded.ledger.len(),
        "release ledger loaded"
    );
    Ok(loaded)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch as stored before releases named their query.
    const OLD_BATCH: &str = r#"{"project":"p1","entries":[]}"#;

    #[test]
    fn a_batch_stored_before_queries_were_named_loads() {
        let stored: StoredBatch = serde_json::from_str(OLD_BATCH).unwrap();
        assert_eq!(stored.project, "p1");
        assert_eq!(
            (stored.query_id, stored.at_ms, stored.values),
            (None, None, None)
        );
    }

    #[test]
    fn withheld_cells_alone_show_nothing_new() {
        use enclave_guard::ledger::CellKind;
        use enclave_guard::sketch::SetSketch;
        let entry = |answer| Entry {
            kind: CellKind::Group,
            persons: 3,
            sketch: SetSketch::default(),
            answer,
            release: 1,
        };
        assert!(!shows_new(&[
            entry(Answer::Withheld),
            entry(Answer::Withheld)
        ]));
        assert!(shows_new(&[entry(Answer::Withheld), entry(Answer::Shown)]));
        assert!(shows_new(&[entry(Answer::Value(12.0))]));
        assert!(!shows_new(&[]));
    }

    #[test]
    fn a_batch_keeps_its_query_time_and_counts() {
        let stored = StoredBatch {
            project: "p1".into(),
            query_id: Some("q-0123456789abcdef".into()),
            at_ms: Some(1_700_000_000_000),
            values: Some(ValueCounts {
                fresh_values: 2,
                repeated_values: 1,
            }),
            unshown: true,
            entries: Vec::new(),
        };
        let back: StoredBatch =
            serde_json::from_slice(&serde_json::to_vec(&stored).unwrap()).unwrap();
        assert_eq!(back.query_id, stored.query_id);
        assert!(back.unshown);
        assert_eq!(back.at_ms, stored.at_ms);
        assert_eq!(back.values, stored.values);
    }
}
