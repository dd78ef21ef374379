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
//! - a cell k or more elements from a remembered *value*, but fewer than
//!   the sketches measure, repeats it too, with a chance that falls
//!   smoothly with the distance ([`left_out_chance`]) and is drawn from the
//!   secret key and both sets. Were the reach's edge sharp, a cell k − 1
//!   elements away would repeat and one k away would not, so a cell built
//!   to sit at the edge would tell whether one more person is in it. A
//!   withheld cell's reach stays sharp, and every cell withheld near it
//!   reaches as far in turn, so the probes that find its edge are withheld
//!   and so is the target next to them;
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

use crate::sketch::{CAPACITY, SetSketch};

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

/// The chance that a remembered cell's reach leaves out a cell `distance`
/// elements from it, for the project's `k`: none below k, then a logistic
/// ramp over the distances the sketches measure, from [`EDGE_CHANCE`] at k
/// to 1 − [`EDGE_CHANCE`] at [`CAPACITY`] − 1, and certain from
/// [`CAPACITY`] on. The ramp keeps the reach's edge from telling one
/// person: a cell one element further out is left out with a chance at
/// most 0.15 higher for k = 10 (a probe at the edge tells about as much as
/// the difference of two noisy answers), instead of surely.
pub fn left_out_chance(distance: usize, k: usize) -> f64 {
    if distance < k {
        return 0.0;
    }
    let centre = (k + CAPACITY - 1) as f64 / 2.0;
    if distance >= CAPACITY || centre <= k as f64 {
        return 1.0;
    }
    let scale = (centre - k as f64) / ((1.0 - EDGE_CHANCE) / EDGE_CHANCE).ln();
    1.0 / (1.0 + (-(distance as f64 - centre) / scale).exp())
}

/// How likely the ramp of [`left_out_chance`] is to leave out a cell k
/// elements away, and to keep one [`CAPACITY`] − 1 away.
pub const EDGE_CHANCE: f64 = 0.02;

/// Which remembered cells a new cell repeats: those fewer than k elements
/// away, surely, and those up to [`CAPACITY`] − 1 away by a draw fixed by
/// the secret key and both sets (see [`left_out_chance`]).
struct Reach<'a> {
    k: usize,
    key: &'a hmac::Key,
}

impl Reach<'_> {
    /// Withheld sets reach surely within k − 1 elements and no further, in
    /// both directions: a withheld entry (a ramp there would make a set
    /// that holds a withheld one, say the target alone, and a dozen others
    /// likely withheld, and the same dozen without it shown), and a cell
    /// the single-query rules withhold (it would be shown with the value of
    /// a set up to 23 persons from it).
    fn holds(&self, entry: &Entry, cell: &Cell) -> bool {
        let widest = self.widest(entry.answer == Answer::Withheld, cell);
        let Some(distance) = entry.sketch.distance_below(&cell.sketch, widest + 1) else {
            return false;
        };
        distance < self.k || self.draw(entry, cell) >= left_out_chance(distance, self.k)
    }

    /// The farthest an entry (withheld or not) can reach the cell: k − 1
    /// when either is withheld (sharp), else [`CAPACITY`] − 1 (the ramp).
    fn widest(&self, withheld_entry: bool, cell: &Cell) -> usize {
        if withheld_entry || cell.exact == Answer::Withheld {
            self.k.saturating_sub(1)
        } else {
            CAPACITY - 1
        }
    }

    /// A uniform draw in (0, 1) fixed by the key and both sketches.
    fn draw(&self, entry: &Entry, cell: &Cell) -> f64 {
        let mut message = b"reach".to_vec();
        message.extend(entry.sketch.to_bytes());
        message.extend(cell.sketch.to_bytes());
        uniform(hmac::sign(self.key, &message).as_ref(), 0)
    }
}

/// A uniform draw in (0, 1) from eight bytes of `bytes` at `from`.
fn uniform(bytes: &[u8], from: usize) -> f64 {
    let word = u64::from_le_bytes(bytes[from..from + 8].try_into().unwrap_or([0; 8]));
    ((word >> 11) as f64 + 0.5) / (1u64 << 53) as f64
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
    fn repeated<'a>(
        &self,
        entries: &'a [Entry],
        cell: &Cell,
        reach: &Reach<'_>,
    ) -> Option<&'a Entry> {
        if let Some(&position) = self.held.get(&(cell.kind, cell.sketch)) {
            return Some(&entries[position]);
        }
        let withheld = || self.first_near(entries, cell, reach, true);
        let answered = || self.first_near(entries, cell, reach, false);
        if cell.exact == Answer::Withheld {
            // Withheld either way unless an answered entry is near.
            answered().map(|shown| withheld().unwrap_or(shown))
        } else {
            withheld().or_else(answered)
        }
    }

    /// The earliest entry of the cell's kind, withheld or answered, whose
    /// reach holds the cell.
    fn first_near<'a>(
        &self,
        entries: &'a [Entry],
        cell: &Cell,
        reach: &Reach<'_>,
        withheld: bool,
    ) -> Option<&'a Entry> {
        let widest = reach.widest(withheld, cell) as u64;
        let sizes = cell.persons.saturating_sub(widest)..=cell.persons.saturating_add(widest);
        self.by_size
            .get(&(cell.kind, withheld))?
            .range(sizes)
            .flat_map(|(_, positions)| positions)
            .filter(|&&position| reach.holds(&entries[position], cell))
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
    /// else, of the earliest withheld entry whose reach holds it (withheld
    /// wins), else of the earliest answered one; else it is answered fresh.
    /// Every set answered is remembered with its answer, repeats too, and
    /// reaches the sets near it: a set near one asked before repeats that
    /// answer, so a search that walks towards a reach's edge carries the
    /// answer along (and the attack harness's trackers gain half as much as
    /// when only fresh answers reach).
    pub fn decide(
        &self,
        cells: &[Cell],
        rules: &LedgerRules,
        release: u64,
    ) -> (Vec<Decision>, Vec<Entry>) {
        let mut fresh: Vec<Entry> = Vec::new();
        let mut fresh_index = Index::default();
        let reach = Reach {
            k: rules.k,
            key: &self.key,
        };
        let decisions = cells
            .iter()
            .map(|cell| {
                let earlier = self
                    .index
                    .repeated(&self.entries, cell, &reach)
                    .or_else(|| fresh_index.repeated(&fresh, cell, &reach));
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
        (-2.0 * uniform(bytes, 0).ln()).sqrt() * (std::f64::consts::TAU * uniform(bytes, 8)).cos()
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
        let nine_away = answer(&mut ledger, cell(9..1_617, count(1_608)), 3);
        assert_eq!(nine_away.repeats, Some(1));
        let far = answer(&mut ledger, cell(40..1_617, count(1_577)), 4);
        assert_eq!(far.repeats, None);
    }

    /// A repeat reaches as far as a fresh answer: a walk of sets a few
    /// persons apart carries the first answer along.
    #[test]
    fn reaches_chain_through_repeats() {
        let mut ledger = Ledger::new(b"secret");
        let first = answer(&mut ledger, cell(0..1_000, count(1_000)), 1);
        for (step, start) in (5..=60).step_by(5).enumerate() {
            let walked = answer(
                &mut ledger,
                cell(start..1_000, count(1_000 - start)),
                step as u64 + 2,
            );
            assert_eq!(walked.answer, first.answer, "{start}");
        }
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

    /// A withheld set reaches sharply: k − 1 persons from it, withheld;
    /// k persons from it and from everything asked, answered. A set asked
    /// at the edge is withheld and reaches as far in turn, so the target
    /// added next to it is withheld too.
    #[test]
    fn a_withheld_reach_is_sharp_and_chains() {
        let mut ledger = Ledger::new(b"secret");
        answer(&mut ledger, cell(0..8, Answer::Withheld), 1);
        let at_edge = answer(&mut ledger, cell(0..17, count(17)), 2);
        assert_eq!(at_edge.answer, Answer::Withheld);
        let with_target = answer(&mut ledger, cell(0..18, count(18)), 3);
        assert_eq!(with_target.answer, Answer::Withheld);
        let mut fresh_ledger = Ledger::new(b"secret");
        answer(&mut fresh_ledger, cell(0..8, Answer::Withheld), 1);
        let past_edge = answer(&mut fresh_ledger, cell(0..18, count(18)), 2);
        assert_eq!(past_edge.repeats, None);
    }

    /// A set holding a withheld one and a dozen others is answered as the
    /// dozen alone would be: a withheld set has no ramp.
    #[test]
    fn a_withheld_set_does_not_reach_past_k() {
        let trials: i64 = 200;
        let withheld = (0..trials)
            .filter(|trial| {
                let mut ledger = Ledger::new(format!("secret {trial}").as_bytes());
                answer(&mut ledger, cell(0..1, Answer::Withheld), 1);
                answer(&mut ledger, cell(0..13, count(13)), 2).answer == Answer::Withheld
            })
            .count();
        assert_eq!(withheld, 0);
    }

    #[test]
    fn the_reach_falls_off_smoothly_between_k_and_the_sketch_capacity() {
        let k = 10;
        assert_eq!(left_out_chance(k - 1, k), 0.0);
        assert!((left_out_chance(k, k) - EDGE_CHANCE).abs() < 1e-9);
        assert!((left_out_chance(CAPACITY - 1, k) - (1.0 - EDGE_CHANCE)).abs() < 1e-9);
        assert_eq!(left_out_chance(CAPACITY, k), 1.0);
        for distance in k..CAPACITY {
            let (near, far) = (
                left_out_chance(distance, k),
                left_out_chance(distance + 1, k),
            );
            assert!(near < far && far - near < 0.16, "{distance}: {near} {far}");
        }
        assert_eq!(left_out_chance(23, 23), 1.0);
        assert_eq!(left_out_chance(30, 24), 1.0);
    }

    /// The edge probe: a base set answered, then the base cut short by d
    /// persons, each time around a new base. How often the cut repeats the
    /// base may change from d to d + 1 only by the ramp's step, never from
    /// always to never.
    #[test]
    fn a_cut_one_person_further_repeats_its_base_about_as_often() {
        let repeat_rate = |cut: i64| {
            let mut ledger = Ledger::new(b"secret");
            let trials = 400;
            let repeated = (0..trials)
                .filter(|trial| {
                    let start = trial * 1_000;
                    answer(&mut ledger, cell(start..start + 200, count(200)), 1);
                    let probe = answer(
                        &mut ledger,
                        cell(start..start + 200 - cut, count(200 - cut)),
                        2,
                    );
                    probe.repeats.is_some()
                })
                .count();
            repeated as f64 / trials as f64
        };
        let rates: Vec<f64> = (8..26).map(repeat_rate).collect();
        assert_eq!(rates[0], 1.0); // 8 and 9 persons: always
        assert_eq!(rates[1], 1.0);
        assert_eq!(*rates.last().unwrap(), 0.0); // 25 persons: never
        // Sampling error of a rate is about 0.025.
        for pair in rates.windows(2) {
            assert!(pair[0] - pair[1] < 0.25, "{rates:?}");
        }
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
