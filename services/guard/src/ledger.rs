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
    index: Index,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

/// Positions of entries by kind, by whether their answer is withheld, and
/// by size; and every set held, for an identical set asked again.
#[derive(Default)]
struct Index {
    by_size: HashMap<(CellKind, bool), BTreeMap<u64, Vec<usize>>>,
    held: HashMap<(CellKind, SetSketch), usize>,
}

impl Index {
    fn insert(&mut self, entry: &Entry, position: usize) {
        let withheld = entry.answer == Answer::Withheld;
        self.held
            .entry((entry.kind, entry.sketch))
            .or_insert(position);
        self.by_size
            .entry((entry.kind, withheld))
            .or_default()
            .entry(entry.persons)
            .or_default()
            .push(position);
    }

    /// The entry whose answer the cell repeats, if any (see
    /// [`Ledger::decide`]).
    fn repeated<'a>(&self, entries: &'a [Entry], cell: &Cell, k: usize) -> Option<&'a Entry> {
        if let Some(&position) = self.held.get(&(cell.kind, cell.sketch)) {
            return Some(&entries[position]);
        }
        let withheld = || self.first_near(entries, cell, k, true);
        let answered = || self.first_near(entries, cell, k, false);
        if cell.exact == Answer::Withheld {
            // Withheld either way unless an answered entry is near.
            answered().map(|shown| withheld().unwrap_or(shown))
        } else {
            withheld().or_else(answered)
        }
    }

    /// The earliest entry of the cell's kind, withheld or answered, within
    /// `k - 1` elements of it.
    fn first_near<'a>(
        &self,
        entries: &'a [Entry],
        cell: &Cell,
        k: usize,
        withheld: bool,
    ) -> Option<&'a Entry> {
        let reach = k.saturating_sub(1) as u64;
        let sizes = cell.persons.saturating_sub(reach)..=cell.persons.saturating_add(reach);
        self.by_size
            .get(&(cell.kind, withheld))?
            .range(sizes)
            .flat_map(|(_, positions)| positions)
            .filter(|&&position| {
                entries[position]
                    .sketch
                    .differs_by_fewer_than(&cell.sketch, k)
            })
            .min()
            .map(|&position| &entries[position])
    }

    fn holds(&self, cell: &Cell) -> bool {
        self.held.contains_key(&(cell.kind, cell.sketch))
    }
}

impl Ledger {
    /// An empty ledger whose noise is keyed by `secret`.
    pub fn new(secret: &[u8]) -> Ledger {
        Ledger {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            entries: Vec::new(),
            index: Index::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn insert(&mut self, entry: Entry) {
        self.index.insert(&entry, self.entries.len());
        self.entries.push(entry);
    }

    /// Answers `cells` in order (each sees the ones before it), returning
    /// the decisions and the new entries to remember as ledger release
    /// `release`. A cell repeats the answer of the same set held before;
    /// else, of the earliest withheld entry within k-1 elements (withheld
    /// wins), else of the earliest answered one; else it is answered fresh.
    /// Every set answered is remembered with its answer, repeats too, so a
    /// set one person away from one asked before repeats that answer.
    pub fn decide(
        &self,
        cells: &[Cell],
        rules: &LedgerRules,
        release: u64,
    ) -> (Vec<Decision>, Vec<Entry>) {
        let mut fresh: Vec<Entry> = Vec::new();
        let mut fresh_index = Index::default();
        let decisions = cells
            .iter()
            .map(|cell| {
                let earlier = self
                    .index
                    .repeated(&self.entries, cell, rules.k)
                    .or_else(|| fresh_index.repeated(&fresh, cell, rules.k));
                let decision = match earlier {
                    Some(earlier) => Decision {
                        answer: earlier.answer,
                        repeats: Some(earlier.release),
                    },
                    None => Decision {
                        answer: self.fresh_answer(cell, rules),
                        repeats: None,
                    },
                };
                if !self.index.holds(cell) && !fresh_index.holds(cell) {
                    let entry = Entry {
                        kind: cell.kind,
                        persons: cell.persons,
                        sketch: cell.sketch,
                        answer: decision.answer,
                        release: decision.repeats.unwrap_or(release),
                    };
                    fresh_index.insert(&entry, fresh.len());
                    fresh.push(entry);
                }
                decision
            })
            .collect();
        (decisions, fresh)
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

/// The decisions on the values of shown groups, of `cells` in the order
/// [`crate::disclosure::Assessment::cells`] gives them (each group's cell
/// followed by its values' cells): what a researcher is told about.
pub fn shown_values<'a>(
    cells: &'a [Cell],
    decisions: &'a [Decision],
) -> impl Iterator<Item = &'a Decision> + 'a {
    let mut shown = false;
    cells
        .iter()
        .zip(decisions)
        .filter_map(move |(cell, decision)| {
            if cell.kind == CellKind::Group {
                shown = decision.answer == Answer::Shown;
                None
            } else {
                shown.then_some(decision)
            }
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
        // Within k-1 of the second (remembered too): repeats as well.
        let chained = answer(&mut ledger, cell(10..1_617, count(1_607)), 3);
        assert_eq!(chained.answer, first.answer);
        let far = answer(&mut ledger, cell(20..1_617, count(1_597)), 4);
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
        // The same set again is not stored again.
        let (_, fresh) = ledger.decide(&[cell(0..9, Answer::Withheld)], &RULES, 3);
        assert!(fresh.is_empty());
        assert_eq!(ledger.len(), 2);
    }

    /// The boundary probe: a set withheld because it is near a withheld
    /// set, then that set with one more person. Both answers must agree
    /// whether the person is in the second set or not.
    #[test]
    fn a_set_next_to_one_asked_before_repeats_it_at_the_edge_of_a_withheld_one() {
        let mut ledger = Ledger::new(b"secret");
        answer(&mut ledger, cell(0..8, Answer::Withheld), 1);
        let edge = answer(&mut ledger, cell(0..17, count(17)), 2);
        assert_eq!(edge.answer, Answer::Withheld);
        let with_target = answer(&mut ledger, cell(0..18, count(18)), 3);
        assert_eq!(with_target.answer, edge.answer);
    }

    #[test]
    fn a_withheld_cell_near_an_answered_one_repeats_its_answer() {
        let mut ledger = Ledger::new(b"secret");
        let shown = answer(&mut ledger, cell(0..12, count(12)), 1);
        let shrunk = answer(&mut ledger, cell(0..5, Answer::Withheld), 2);
        assert_eq!(shrunk.answer, shown.answer);
        assert_eq!(shrunk.repeats, Some(1));
    }

    #[test]
    fn cells_of_one_query_see_each_other() {
        let ledger = Ledger::new(b"secret");
        let (decisions, fresh) = ledger.decide(
            &[cell(0..300, count(300)), cell(0..299, count(299))],
            &RULES,
            1,
        );
        assert_eq!(fresh.len(), 2);
        assert_eq!(decisions[0].answer, decisions[1].answer);
        assert_eq!(decisions[1].repeats, Some(1));
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
