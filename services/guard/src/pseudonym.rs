//! Per-project person ids (照合禁止): every person or record key a project
//! keeps (its workspace) is the release's id passed through a permutation
//! keyed by the project, so two projects keep unrelated ids for the same
//! person while joins, distinct counts and workspaces inside one project
//! work as before.
//!
//! The permutation is a balanced Feistel network over 62-bit integers (two
//! 31-bit halves, [`ROUNDS`] rounds of SipHash-1-3 keyed per round), so a
//! project id is a non-negative `BIGINT` like a release id, ids stay
//! distinct, and the release id is recovered by running the rounds
//! backwards. The project ids are spread over the whole 62-bit range: a
//! value of an uploaded table that is a person id of some project is
//! recognised by mapping it back (see [`ProjectIds::release_id`]), while an
//! ordinary number is one by a chance of about N / 2^62.
//!
//! Ids are mapped at the workspace boundary: to the project's where rows
//! are saved, back to the release's where saved rows enter a statement
//! (`crate::rewrite`). Inside a statement ids are the release's, which no
//! statement can read as values (`crate::keys`), so queries of release
//! tables pay nothing and the release ledger's sketches compare cells of
//! every project by the persons themselves ([`crate::sketch`]).
//! `enclave_project_person(id, key)` and `enclave_release_person(id, key)`
//! are the two directions as scalar functions; the key travels in the plan
//! as a literal, so remote executors need no state.

use std::hash::Hasher;
use std::sync::{Arc, LazyLock};

use arrow::array::{Array, AsArray, Int64Array};
use arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, lit,
};
use siphasher::sip::SipHasher13;

/// Feistel rounds: four give a strong pseudorandom permutation
/// (Luby–Rackoff); two more widen the margin for 31-bit halves.
pub const ROUNDS: usize = 6;

/// Bytes of a project's permutation key: a 128-bit SipHash key per round.
pub const KEY_BYTES: usize = ROUNDS * 16;

/// Ids the permutation maps: 0 ≤ id < 2^62.
pub const DOMAIN_BITS: u32 = 62;

const HALF_BITS: u32 = DOMAIN_BITS / 2;
const HALF_MASK: u64 = (1 << HALF_BITS) - 1;

/// One project's keyed permutation of person ids.
#[derive(Clone)]
pub struct ProjectIds {
    key: [u8; KEY_BYTES],
    rounds: [SipHasher13; ROUNDS],
}

impl std::fmt::Debug for ProjectIds {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ProjectIds(<key>)")
    }
}

impl ProjectIds {
    pub fn new(key: [u8; KEY_BYTES]) -> ProjectIds {
        let rounds = std::array::from_fn(|round| {
            let start = round * 16;
            let word = |at: usize| u64::from_le_bytes(key[at..at + 8].try_into().unwrap_or([0; 8]));
            SipHasher13::new_with_keys(word(start), word(start + 8))
        });
        ProjectIds { key, rounds }
    }

    /// The project's id of release id `id`; `None` outside the domain.
    pub fn project_id(&self, id: i64) -> Option<i64> {
        let id = in_domain(id)?;
        let (mut left, mut right) = (id >> HALF_BITS, id & HALF_MASK);
        for round in &self.rounds {
            (left, right) = (right, left ^ round_value(round, right));
        }
        Some(((left << HALF_BITS) | right) as i64)
    }

    /// The release id of project id `id`; `None` outside the domain.
    pub fn release_id(&self, id: i64) -> Option<i64> {
        let id = in_domain(id)?;
        let (mut left, mut right) = (id >> HALF_BITS, id & HALF_MASK);
        for round in self.rounds.iter().rev() {
            (left, right) = (right ^ round_value(round, left), left);
        }
        Some(((left << HALF_BITS) | right) as i64)
    }

    /// `person` (a release id) as this project's id.
    pub fn project_expr(&self, person: Expr) -> Expr {
        PROJECT_PERSON.call(vec![person, self.key_literal()])
    }

    /// `person` (a project id) as the release's id.
    pub fn release_expr(&self, person: Expr) -> Expr {
        RELEASE_PERSON.call(vec![person, self.key_literal()])
    }

    fn key_literal(&self) -> Expr {
        lit(ScalarValue::Binary(Some(self.key.to_vec())))
    }
}

fn in_domain(id: i64) -> Option<u64> {
    u64::try_from(id).ok().filter(|id| id >> DOMAIN_BITS == 0)
}

fn round_value(round: &SipHasher13, half: u64) -> u64 {
    let mut hasher = *round;
    hasher.write_u64(half);
    hasher.finish() & HALF_MASK
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Direction {
    ToProject,
    ToRelease,
}

static PROJECT_PERSON: LazyLock<Arc<ScalarUDF>> =
    LazyLock::new(|| Arc::new(ScalarUDF::from(PersonMap::new(Direction::ToProject))));
static RELEASE_PERSON: LazyLock<Arc<ScalarUDF>> =
    LazyLock::new(|| Arc::new(ScalarUDF::from(PersonMap::new(Direction::ToRelease))));

/// Both directions, for registration in sessions and on remote executors.
pub fn person_map_udfs() -> [Arc<ScalarUDF>; 2] {
    [Arc::clone(&PROJECT_PERSON), Arc::clone(&RELEASE_PERSON)]
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PersonMap {
    direction: Direction,
    signature: Signature,
}

impl PersonMap {
    fn new(direction: Direction) -> PersonMap {
        PersonMap {
            direction,
            signature: Signature::exact(
                vec![DataType::Int64, DataType::Binary],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for PersonMap {
    fn name(&self) -> &str {
        match self.direction {
            Direction::ToProject => "enclave_project_person",
            Direction::ToRelease => "enclave_release_person",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let [ids, key] = args.args.as_slice() else {
            return exec_err!("{} takes an id and a key", self.name());
        };
        let ColumnarValue::Scalar(ScalarValue::Binary(Some(key))) = key else {
            return exec_err!("{} needs a constant key", self.name());
        };
        let Ok(key) = <[u8; KEY_BYTES]>::try_from(key.as_slice()) else {
            return exec_err!("{} needs a key of {KEY_BYTES} bytes", self.name());
        };
        let map = ProjectIds::new(key);
        let apply = |id: i64| match self.direction {
            Direction::ToProject => map.project_id(id),
            Direction::ToRelease => map.release_id(id),
        };
        match ids {
            ColumnarValue::Scalar(ScalarValue::Int64(id)) => {
                let mapped = id.map(|id| mapped_or_error(apply(id))).transpose()?;
                Ok(ColumnarValue::Scalar(ScalarValue::Int64(mapped)))
            }
            ColumnarValue::Array(array) => {
                let ids = array.as_primitive::<Int64Type>();
                let mut mapped = Vec::with_capacity(ids.len());
                // Release tables are sorted by person: an id repeats over a
                // run of rows, and is mapped once per run.
                let mut last: Option<(i64, i64)> = None;
                for index in 0..ids.len() {
                    if ids.is_null(index) {
                        mapped.push(None);
                        continue;
                    }
                    let id = ids.value(index);
                    let out = match last {
                        Some((input, output)) if input == id => output,
                        _ => mapped_or_error(apply(id))?,
                    };
                    last = Some((id, out));
                    mapped.push(Some(out));
                }
                Ok(ColumnarValue::Array(Arc::new(Int64Array::from(mapped))))
            }
            ColumnarValue::Scalar(other) => {
                exec_err!(
                    "{} takes a BIGINT id, not {}",
                    self.name(),
                    other.data_type()
                )
            }
        }
    }
}

fn mapped_or_error(id: Option<i64>) -> DfResult<i64> {
    id.map_or_else(|| exec_err!("a person id is outside the range of ids"), Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(seed: u8) -> [u8; KEY_BYTES] {
        std::array::from_fn(|index| seed.wrapping_mul(31).wrapping_add(index as u8))
    }

    proptest! {
        #[test]
        fn release_id_undoes_project_id(id in 0_i64..(1 << DOMAIN_BITS), seed: u8) {
            let ids = ProjectIds::new(key(seed));
            let project = ids.project_id(id).unwrap();
            prop_assert!((0..1 << DOMAIN_BITS).contains(&project));
            prop_assert_eq!(ids.release_id(project), Some(id));
        }
    }

    #[test]
    fn projects_see_unrelated_ids() {
        let (a, b) = (ProjectIds::new(key(1)), ProjectIds::new(key(2)));
        let ids_a: std::collections::HashSet<i64> =
            (0..10_000).map(|id| a.project_id(id).unwrap()).collect();
        assert_eq!(ids_a.len(), 10_000, "a permutation keeps ids distinct");
        let shared = (0..10_000)
            .filter(|&id| ids_a.contains(&b.project_id(id).unwrap()))
            .count();
        assert_eq!(shared, 0);
        // Dense release ids do not stay dense or ordered.
        let below = ids_a.iter().filter(|&&id| id < 1 << 40).count();
        assert_eq!(below, 0, "project ids spread over the 62-bit range");
    }

    #[test]
    fn ids_outside_the_domain_are_not_mapped() {
        let ids = ProjectIds::new(key(3));
        assert_eq!(ids.project_id(-1), None);
        assert_eq!(ids.project_id(1 << DOMAIN_BITS), None);
        assert_eq!(ids.release_id(i64::MAX), None);
    }
}
