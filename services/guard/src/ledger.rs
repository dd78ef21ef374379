//! The release ledger: disclosure control across queries.
//!
//! Every group and every count, sum or average a project session is about
//! to release is a **cell**: the sketch of its persons (each with the
//! per-person partial the value aggregates, see [`crate::sketch`]) and its
//! exact answer. The ledger remembers every answered cell of the service,
//! every project's, and answers a new cell by one rule:
//!
//! - a cell whose elements differ from a remembered cell's of the same kind
//!   by fewer than k (identical included) gets that cell's answer, whatever
//!   it was (a value, or withheld). Two answers that differ by a few persons
//!   are never both given, so their difference cannot tell anything about
//!   those persons, and because an identical set is answered the same way,
//!   that a cell repeats an earlier answer tells nothing either;
//! - any other cell is answered fresh: withheld if the single-query rules
//!   withhold it, else its exact value plus noise drawn from a secret key
//!   and the cell's sketch (sticky: the same persons with the same
//!   partials get the same noise however the query is written, so repeats
//!   and rewrites cannot average it away), with a standard deviation of
//!   `noise_sd` times the mean per-person contribution (one person, for a
//!   count of persons).
//!
//! The project's rounding applies to the answer after that (see
//! [`crate::disclosure`]). The ledger is pure: the query engine keeps it
//! durable and serializes decisions.

use std::collections::{BTreeMap, HashMap};

use ring::hmac;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::sketch::SetSketch;

/// The noise's standard deviation per unit of a cell's scale (the mean
/// per-person contribution): docs/query-rules.md has how it was chosen.
pub const NOISE_SD: f64 = 2.0;

/// What a cell answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CellKind {
    /// Whether a group is shown.
    Group,
    /// A count or sum (additive over persons).
    Sum,
    /// An average.
    Average,
}

impl CellKind {
    fn tag(self) -> u8 {
        match self {
            CellKind::Group => b'g',
            CellKind::Sum => b's',
            CellKind::Average => b'a',
        }
    }
}

/// A cell's answer, as released and remembered (values before rounding).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Answer {
    Withheld,
    Shown,
    Value(f64),
}

/// A cell about to be answered.
#[derive(Debug, Clone)]
pub struct Cell {
    pub kind: CellKind,
    /// Elements of the sketch (persons contributing).
    pub persons: u64,
    pub sketch: SetSketch,
    /// What the single-query rules release: `Withheld`, `Shown` (a group)
    /// or the exact value.
    pub exact: Answer,
    /// The noise's scale: the mean absolute per-person contribution (1 for
    /// counts of persons; over the persons, for an average).
    pub noise_scale: f64,
}

/// A remembered cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub kind: CellKind,
    pub persons: u64,
    #[serde(serialize_with = "sketch_to_hex", deserialize_with = "sketch_from_hex")]
    pub sketch: SetSketch,
    pub answer: Answer,
    /// The ledger release (stored batch) that first answered it.
    pub release: u64,
}

/// How a cell was answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub answer: Answer,
    /// The earlier ledger release whose answer this repeats, if any.
    pub repeats: Option<u64>,
}

/// The parameters of the rule.
#[derive(Debug, Clone, Copy)]
pub struct LedgerRules {
    /// Cells closer than this many elements share one answer.
    pub k: usize,
    /// The noise's standard deviation, per unit of a cell's scale.
    pub noise_sd: f64,
}

/// The remembered cells, indexed by kind and size.
pub struct Ledger {
    key: hmac::Key,
    entries: Vec<Entry>,
    by_size: HashMap<CellKind, BTreeMap<u64, Vec<usize>>>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl Ledger {
    /// An empty ledger whose noise is keyed by `secret`.
    pub fn new(secret: &[u8]) -> Ledger {
        Ledger {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            entries: Vec::new(),
            by_size: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn insert(&mut self, entry: Entry) {
        self.by_size
            .entry(entry.kind)
            .or_default()
            .entry(entry.persons)
            .or_default()
            .push(self.entries.len());
        self.entries.push(entry);
    }

    /// Answers `cells` in order (each sees the ones before it), returning
    /// the decisions and the new entries to remember as ledger release
    /// `release`.
    pub fn decide(
        &self,
        cells: &[Cell],
        rules: &LedgerRules,
        release: u64,
    ) -> (Vec<Decision>, Vec<Entry>) {
        let mut fresh: Vec<Entry> = Vec::new();
        let decisions = cells
            .iter()
            .map(|cell| {
                let earlier = self
                    .nearest(cell, rules.k)
                    .or_else(|| nearest_in(&fresh, cell, rules.k));
                if let Some(earlier) = earlier {
                    return Decision {
                        answer: earlier.answer,
                        repeats: Some(earlier.release),
                    };
                }
                let answer = self.fresh_answer(cell, rules);
                fresh.push(Entry {
                    kind: cell.kind,
                    persons: cell.persons,
                    sketch: cell.sketch,
                    answer,
                    release,
                });
                Decision {
                    answer,
                    repeats: None,
                }
            })
            .collect();
        (decisions, fresh)
    }

    /// The first remembered cell of the same kind within `k - 1` elements.
    fn nearest(&self, cell: &Cell, k: usize) -> Option<&Entry> {
        let sizes = self.by_size.get(&cell.kind)?;
        let reach = k.saturating_sub(1) as u64;
        let low = cell.persons.saturating_sub(reach);
        sizes
            .range(low..=cell.persons.saturating_add(reach))
            .flat_map(|(_, indexes)| indexes)
            .filter(|&&index| {
                self.entries[index]
                    .sketch
                    .differs_by_fewer_than(&cell.sketch, k)
            })
            .min()
            .map(|&index| &self.entries[index])
    }

    fn fresh_answer(&self, cell: &Cell, rules: &LedgerRules) -> Answer {
        match cell.exact {
            Answer::Value(exact) => {
                Answer::Value(exact + self.noise(cell) * rules.noise_sd * cell.noise_scale)
            }
            answer => answer,
        }
    }

    /// A standard normal draw fixed by the key, the kind and the sketch.
    fn noise(&self, cell: &Cell) -> f64 {
        let mut message = vec![cell.kind.tag()];
        message.extend(cell.sketch.to_bytes());
        let tag = hmac::sign(&self.key, &message);
        let bytes = tag.as_ref();
        let uniform = |from: usize| {
            let word = u64::from_le_bytes(bytes[from..from + 8].try_into().unwrap_or([0; 8]));
            ((word >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        (-2.0 * uniform(0).ln()).sqrt() * (std::f64::consts::TAU * uniform(8)).cos()
    }
}

fn nearest_in<'a>(entries: &'a [Entry], cell: &Cell, k: usize) -> Option<&'a Entry> {
    entries.iter().find(|entry| {
        entry.kind == cell.kind
            && entry.persons.abs_diff(cell.persons) < k as u64
            && entry.sketch.differs_by_fewer_than(&cell.sketch, k)
    })
}

fn sketch_to_hex<S: Serializer>(sketch: &SetSketch, serializer: S) -> Result<S::Ok, S::Error> {
    let text: String = sketch
        .to_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    serializer.serialize_str(&text)
}

fn sketch_from_hex<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SetSketch, D::Error> {
    let text = String::deserialize(deserializer)?;
    let bytes = (0..text.len())
        .step_by(2)
        .map(|at| {
            text.get(at..at + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect::<Option<Vec<u8>>>();
    bytes
        .as_deref()
        .and_then(SetSketch::from_bytes)
        .ok_or_else(|| serde::de::Error::custom("malformed sketch"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sketch::element;

    const RULES: LedgerRules = LedgerRules {
        k: 10,
        noise_sd: 2.0,
    };

    fn cell(persons: std::ops::Range<i64>, exact: Answer) -> Cell {
        let mut sketch = SetSketch::default();
        for person in persons.clone() {
            sketch.toggle(element(person, &[1.0f64.to_bits()]));
        }
        Cell {
            kind: CellKind::Sum,
            persons: persons.count() as u64,
            sketch,
            exact,
            noise_scale: 1.0,
        }
    }

    fn answer(ledger: &mut Ledger, cell: Cell, release: u64) -> Decision {
        let (mut decisions, fresh) = ledger.decide(&[cell], &RULES, release);
        fresh.into_iter().for_each(|entry| ledger.insert(entry));
        decisions.remove(0)
    }

    fn count(n: i64) -> Answer {
        Answer::Value(n as f64)
    }

    #[test]
    fn a_set_one_person_apart_repeats_the_earlier_answer() {
        let mut ledger = Ledger::new(b"secret");
        let first = answer(&mut ledger, cell(0..1_617, count(1_617)), 1);
        let second = answer(&mut ledger, cell(1..1_617, count(1_616)), 2);
        assert_eq!(second.answer, first.answer);
        assert_eq!(second.repeats, Some(1));
        let far = answer(&mut ledger, cell(10..1_617, count(1_607)), 3);
        assert_eq!(far.repeats, None);
    }

    #[test]
    fn the_same_set_gets_the_same_noise_under_any_key_order() {
        let first = Ledger::new(b"secret").decide(&[cell(0..500, count(500))], &RULES, 1);
        let again = Ledger::new(b"secret").decide(&[cell(0..500, count(500))], &RULES, 2);
        assert_eq!(first.0[0].answer, again.0[0].answer);
        let other_key = Ledger::new(b"other").decide(&[cell(0..500, count(500))], &RULES, 1);
        assert_ne!(first.0[0].answer, other_key.0[0].answer);
    }

    #[test]
    fn a_withheld_answer_sticks_to_sets_near_it() {
        let mut ledger = Ledger::new(b"secret");
        let small = answer(&mut ledger, cell(0..9, Answer::Withheld), 1);
        assert_eq!(small.answer, Answer::Withheld);
        let grown = answer(&mut ledger, cell(0..10, count(10)), 2);
        assert_eq!(grown.answer, Answer::Withheld);
    }

    #[test]
    fn cells_of_one_query_see_each_other() {
        let ledger = Ledger::new(b"secret");
        let (decisions, fresh) = ledger.decide(
            &[cell(0..300, count(300)), cell(0..299, count(299))],
            &RULES,
            1,
        );
        assert_eq!(fresh.len(), 1);
        assert_eq!(decisions[0].answer, decisions[1].answer);
    }

    #[test]
    fn noise_has_the_configured_spread() {
        let ledger = Ledger::new(b"secret");
        let draws: Vec<f64> = (0..2_000)
            .map(|start| {
                let cell = cell(start * 1_000..start * 1_000 + 50, count(50));
                match ledger.decide(&[cell], &RULES, 1).0[0].answer {
                    Answer::Value(value) => value - 50.0,
                    other => panic!("{other:?}"),
                }
            })
            .collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let sd =
            (draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / draws.len() as f64).sqrt();
        assert!(mean.abs() < 0.2, "{mean}");
        assert!((sd - 2.0).abs() < 0.2, "{sd}");
    }

    #[test]
    fn entries_round_trip_through_json() {
        let ledger = Ledger::new(b"secret");
        let (_, fresh) = ledger.decide(&[cell(0..20, count(20))], &RULES, 1);
        let json = serde_json::to_string(&fresh).unwrap();
        let back: Vec<Entry> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, fresh);
    }
}
