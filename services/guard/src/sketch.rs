//! Person-set sketches: what the release ledger remembers of a released
//! value instead of its persons.
//!
//! A sketch holds the first [`CAPACITY`] odd power sums `Σ x^(2i-1)` of its
//! elements in GF(2^64) (the PinSketch construction of set reconciliation).
//! It is linear: the XOR of two sketches is the sketch of the symmetric
//! difference of their sets, and the Berlekamp–Massey algorithm over a
//! sketch's syndromes gives the size of a set of up to `capacity - 1`
//! elements exactly, while a larger set looks full (size `capacity`) except
//! with probability about 2^-64. So the ledger can tell whether two released
//! values' person sets differ by fewer than k persons from 8·k bytes each,
//! however many persons they hold, without keeping any person's id.
//!
//! An element is one person with the per-person partial the value
//! aggregates (hashed together), so two values differ by one element when
//! one person's contribution differs, not only when a person is added.
//!
//! `enclave_person_set(person_id, partial, …)` is the aggregate that builds a
//! sketch over the rows whose arguments are all non-NULL.

use std::sync::{Arc, LazyLock};

use arrow::array::{Array, ArrayRef, AsArray, BinaryArray, BooleanArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, Expr, GroupsAccumulator, Signature,
    Volatility,
};

/// Odd power sums kept per sketch: set differences of up to `CAPACITY - 1`
/// persons are measured exactly, so k up to `CAPACITY` is covered.
pub const CAPACITY: usize = 24;

/// Buckets of the quick filter: each element also goes to one of these by
/// its top bits, XORed into that bucket's word. A difference of d elements
/// changes at most d bucket words, so two sketches whose words differ in k
/// or more buckets are k or more apart without decoding (and sets that
/// differ by many elements differ in nearly every non-empty bucket).
pub const BUCKETS: usize = 64;

/// Bytes of a sketch's binary form.
pub const SKETCH_BYTES: usize = (CAPACITY + BUCKETS) * 8;

/// GF(2^64) modulo x^64 + x^4 + x^3 + x + 1.
mod field {
    /// Multiplication by one fixed element: its carry-less products with
    /// every 4-bit value, so a product takes 16 table lookups.
    pub(super) struct Multiplier {
        table: [u128; 16],
    }

    impl Multiplier {
        pub(super) fn new(a: u64) -> Multiplier {
            let mut table = [0u128; 16];
            for index in 1..16 {
                table[index] = if index & 1 == 1 {
                    table[index - 1] ^ a as u128
                } else {
                    table[index / 2] << 1
                };
            }
            Multiplier { table }
        }

        pub(super) fn mul(&self, b: u64) -> u64 {
            let mut product = 0u128;
            for nibble in (0..16).rev() {
                product = (product << 4) ^ self.table[((b >> (nibble * 4)) & 0xf) as usize];
            }
            reduce(product)
        }
    }

    /// `high · x^64` reduced once: x^64 = x^4 + x^3 + x + 1.
    fn fold(high: u64) -> u128 {
        let high = high as u128;
        high ^ (high << 1) ^ (high << 3) ^ (high << 4)
    }

    fn reduce(product: u128) -> u64 {
        let once = (product as u64 as u128) ^ fold((product >> 64) as u64);
        (once as u64) ^ (fold((once >> 64) as u64) as u64)
    }

    pub(super) fn mul(a: u64, b: u64) -> u64 {
        Multiplier::new(a).mul(b)
    }
}

/// The sketch of a set of elements (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SetSketch {
    sums: [u64; CAPACITY],
    buckets: [u64; BUCKETS],
}

impl Default for SetSketch {
    fn default() -> SetSketch {
        SetSketch {
            sums: [0; CAPACITY],
            buckets: [0; BUCKETS],
        }
    }
}

impl SetSketch {
    /// Adds (or, added twice, removes) one non-zero element.
    pub fn toggle(&mut self, element: u64) {
        self.buckets[(element >> 58) as usize] ^= element;
        let by_square = field::Multiplier::new(field::mul(element, element));
        let mut power = element;
        for sum in &mut self.sums {
            *sum ^= power;
            power = by_square.mul(power);
        }
    }

    /// The sketch of the symmetric difference of both sets.
    pub fn xor(&self, other: &SetSketch) -> SetSketch {
        let mut result = *self;
        for (word, theirs) in result.words_mut().zip(other.words()) {
            *word ^= theirs;
        }
        result
    }

    fn words(&self) -> impl Iterator<Item = &u64> {
        self.sums.iter().chain(&self.buckets)
    }

    fn words_mut(&mut self) -> impl Iterator<Item = &mut u64> {
        self.sums.iter_mut().chain(&mut self.buckets)
    }

    /// The set's size if it is below `capacity` (at most [`CAPACITY`]);
    /// `None` for a larger set.
    pub fn size_below(&self, capacity: usize) -> Option<usize> {
        let capacity = capacity.clamp(1, CAPACITY);
        let size = linear_complexity(&self.syndromes(capacity));
        (size < capacity).then_some(size)
    }

    /// The size of the symmetric difference of both sketches' sets if it
    /// is below `limit` (at most [`CAPACITY`]); `None` for a larger one.
    pub fn distance_below(&self, other: &SetSketch, limit: usize) -> Option<usize> {
        if self.differing_buckets(other) >= limit {
            return None;
        }
        self.xor(other).size_below(limit)
    }

    fn differing_buckets(&self, other: &SetSketch) -> usize {
        self.buckets
            .iter()
            .zip(&other.buckets)
            .filter(|(mine, theirs)| mine != theirs)
            .count()
    }

    /// `S_1 … S_2c` from the odd sums: `S_2j = S_j²` in characteristic 2.
    fn syndromes(&self, capacity: usize) -> Vec<u64> {
        let mut syndromes = vec![0u64; 2 * capacity];
        for index in 0..2 * capacity {
            let power = index + 1;
            syndromes[index] = if power % 2 == 1 {
                self.sums[power / 2]
            } else {
                let half = syndromes[power / 2 - 1];
                field::mul(half, half)
            };
        }
        syndromes
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.words().flat_map(|word| word.to_le_bytes()).collect()
    }

    /// A sketch from [`SetSketch::to_bytes`]; `None` if the length is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Option<SetSketch> {
        if bytes.len() != SKETCH_BYTES {
            return None;
        }
        let mut sketch = SetSketch::default();
        for (word, chunk) in sketch.words_mut().zip(bytes.chunks_exact(8)) {
            *word = u64::from_le_bytes(chunk.try_into().ok()?);
        }
        Some(sketch)
    }
}

/// The length of the shortest linear recurrence generating `sequence`
/// (Berlekamp–Massey over GF(2^64), in the inversion-free form: the
/// connection polynomial is kept up to a non-zero factor, which does not
/// change its length).
fn linear_complexity(sequence: &[u64]) -> usize {
    let mut current = vec![1u64];
    let mut previous = vec![1u64];
    let mut length = 0;
    let mut shift = 1;
    let mut last_discrepancy = 1u64;
    for n in 0..sequence.len() {
        let discrepancy = (1..=length).fold(field::mul(current[0], sequence[n]), |acc, i| {
            acc ^ field::mul(*current.get(i).unwrap_or(&0), sequence[n - i])
        });
        if discrepancy == 0 {
            shift += 1;
            continue;
        }
        let before = current.clone();
        current.resize(current.len().max(previous.len() + shift), 0);
        for coefficient in &mut current {
            *coefficient = field::mul(last_discrepancy, *coefficient);
        }
        for (i, coefficient) in previous.iter().enumerate() {
            current[i + shift] ^= field::mul(discrepancy, *coefficient);
        }
        if 2 * length <= n {
            length = n + 1 - length;
            previous = before;
            last_discrepancy = discrepancy;
            shift = 1;
        } else {
            shift += 1;
        }
    }
    length
}

/// SplitMix64's finalizer: a fixed, well-mixed 64-bit permutation.
fn mix(mut value: u64) -> u64 {
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

/// FNV-1a over bytes (for partials that are not numbers).
fn hash_bytes(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// One person's element: the person with the partials of the value.
pub fn element(person: i64, partials: &[u64]) -> u64 {
    let hashed = partials.iter().fold(
        mix(person as u64 ^ 0x5bd1_e995_7f4a_7c15),
        |hash, partial| mix(hash ^ mix(*partial)),
    );
    hashed.max(1)
}

static PERSON_SET: LazyLock<Arc<AggregateUDF>> =
    LazyLock::new(|| Arc::new(AggregateUDF::from(PersonSet::new())));

/// The UDAF, for registration in sessions (and on remote executors).
pub fn person_set_udaf() -> Arc<AggregateUDF> {
    Arc::clone(&PERSON_SET)
}

/// `enclave_person_set(person, partials…)`: the sketch of the persons whose
/// partials are all non-NULL, each with its partials.
pub fn person_set(person: Expr, partials: Vec<Expr>) -> Expr {
    let mut args = vec![person];
    args.extend(partials);
    PERSON_SET.call(args)
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PersonSet {
    signature: Signature,
}

impl PersonSet {
    fn new() -> PersonSet {
        PersonSet {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for PersonSet {
    fn name(&self) -> &str {
        "enclave_person_set"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Binary)
    }

    fn accumulator(&self, _args: AccumulatorArgs<'_>) -> DfResult<Box<dyn Accumulator>> {
        Ok(Box::new(SketchAccumulator::default()))
    }

    fn state_fields(&self, _args: StateFieldsArgs<'_>) -> DfResult<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new("sketch", DataType::Binary, true))])
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs<'_>) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs<'_>,
    ) -> DfResult<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(SketchGroups::default()))
    }
}

/// The elements of a batch's rows: `None` for a row with a NULL argument.
fn elements(values: &[ArrayRef]) -> DfResult<Vec<Option<u64>>> {
    let persons = cast(&values[0], &DataType::Int64)?;
    let persons = persons.as_primitive::<Int64Type>();
    let partials = values[1..]
        .iter()
        .map(partial_words)
        .collect::<DfResult<Vec<_>>>()?;
    Ok((0..persons.len())
        .map(|row| {
            if persons.is_null(row) {
                return None;
            }
            let words = partials
                .iter()
                .map(|column| column[row])
                .collect::<Option<Vec<u64>>>()?;
            Some(element(persons.value(row), &words))
        })
        .collect())
}

/// A partial column as one word per row: numbers by their value as f64
/// (so 5 and 5.0 agree), anything else by its text.
fn partial_words(array: &ArrayRef) -> DfResult<Vec<Option<u64>>> {
    if array.data_type().is_numeric() {
        let numbers = cast(array, &DataType::Float64)?;
        let numbers = numbers.as_primitive::<Float64Type>();
        return Ok(numbers
            .iter()
            .map(|value| value.map(|v| (v + 0.0).to_bits()))
            .collect());
    }
    let text = cast(array, &DataType::Utf8)?;
    Ok(text
        .as_string::<i32>()
        .iter()
        .map(|value| value.map(|v| hash_bytes(v.as_bytes())))
        .collect())
}

fn sketch_of(bytes: &[u8]) -> DfResult<SetSketch> {
    SetSketch::from_bytes(bytes)
        .ok_or_else(|| DataFusionError::Internal("malformed person-set sketch".into()))
}

fn passes(filter: Option<&BooleanArray>, row: usize) -> bool {
    filter.is_none_or(|filter| filter.is_valid(row) && filter.value(row))
}

#[derive(Debug, Default)]
struct SketchAccumulator {
    sketch: SetSketch,
}

impl Accumulator for SketchAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        for element in elements(values)?.into_iter().flatten() {
            self.sketch.toggle(element);
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        for state in states[0].as_binary::<i32>().iter().flatten() {
            self.sketch = self.sketch.xor(&sketch_of(state)?);
        }
        Ok(())
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        Ok(ScalarValue::Binary(Some(self.sketch.to_bytes())))
    }

    fn size(&self) -> usize {
        size_of::<SketchAccumulator>()
    }
}

#[derive(Debug, Default)]
struct SketchGroups {
    groups: Vec<SetSketch>,
}

impl SketchGroups {
    fn binary(sketches: Vec<SetSketch>) -> ArrayRef {
        let bytes: Vec<Vec<u8>> = sketches.iter().map(SetSketch::to_bytes).collect();
        Arc::new(BinaryArray::from_iter_values(bytes))
    }
}

impl GroupsAccumulator for SketchGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> DfResult<()> {
        self.groups.resize(total_num_groups, SetSketch::default());
        for (row, element) in elements(values)?.into_iter().enumerate() {
            if let Some(element) = element.filter(|_| passes(opt_filter, row)) {
                self.groups[group_indices[row]].toggle(element);
            }
        }
        Ok(())
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> DfResult<()> {
        self.groups.resize(total_num_groups, SetSketch::default());
        for (row, state) in values[0].as_binary::<i32>().iter().enumerate() {
            if let Some(state) = state {
                let group = &mut self.groups[group_indices[row]];
                *group = group.xor(&sketch_of(state)?);
            }
        }
        Ok(())
    }

    /// Each input row as its own state: the sketch of its one element.
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> DfResult<Vec<ArrayRef>> {
        let sketches = elements(values)?
            .into_iter()
            .enumerate()
            .map(|(row, element)| {
                let mut sketch = SetSketch::default();
                if let Some(element) = element.filter(|_| passes(opt_filter, row)) {
                    sketch.toggle(element);
                }
                sketch
            })
            .collect();
        Ok(vec![SketchGroups::binary(sketches)])
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> DfResult<ArrayRef> {
        Ok(SketchGroups::binary(emit_to.take_needed(&mut self.groups)))
    }

    fn state(&mut self, emit_to: EmitTo) -> DfResult<Vec<ArrayRef>> {
        Ok(vec![self.evaluate(emit_to)?])
    }

    fn size(&self) -> usize {
        self.groups.capacity() * size_of::<SetSketch>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sketch(elements: impl IntoIterator<Item = u64>) -> SetSketch {
        let mut sketch = SetSketch::default();
        for element in elements {
            sketch.toggle(element);
        }
        sketch
    }

    fn persons(range: std::ops::Range<i64>) -> impl Iterator<Item = u64> {
        range.map(|person| element(person, &[1.0f64.to_bits()]))
    }

    #[test]
    fn field_multiplication_distributes_and_reduces() {
        let (a, b, c) = (0xdead_beef_u64, u64::MAX, 0x1b);
        assert_eq!(field::mul(a, b ^ c), field::mul(a, b) ^ field::mul(a, c));
        assert_eq!(field::mul(a, 1), a);
        // x^63 · x = x^64 = x^4 + x^3 + x + 1.
        assert_eq!(field::mul(1 << 63, 2), 0x1b);
    }

    #[test]
    fn measures_small_differences_exactly() {
        let base = sketch(persons(0..5_000));
        for removed in 0..12 {
            let other = sketch(persons(removed..5_000));
            let size = base.xor(&other).size_below(10);
            assert_eq!(
                size,
                (removed < 10).then_some(removed as usize),
                "{removed}"
            );
        }
    }

    #[test]
    fn differences_mix_additions_and_removals() {
        let left = sketch(persons(0..1_000));
        let right = sketch(persons(3..1_004));
        assert_eq!(left.xor(&right).size_below(10), Some(7));
        assert_eq!(left.distance_below(&right, 8), Some(7));
        assert_eq!(left.distance_below(&right, 7), None);
    }

    #[test]
    fn a_changed_partial_is_a_difference_of_two() {
        let mut one = sketch(persons(0..100));
        let mut other = one;
        one.toggle(element(500, &[3.0f64.to_bits()]));
        other.toggle(element(500, &[4.0f64.to_bits()]));
        assert_eq!(one.xor(&other).size_below(10), Some(2));
    }

    proptest::proptest! {
        /// Any two sets sharing a common part: the sketch difference has
        /// the size of the symmetric difference below the capacity, and
        /// looks full above it.
        #[test]
        fn the_difference_size_is_exact_below_capacity(
            common in 0i64..3_000,
            only_left in 0i64..15,
            only_right in 0i64..15,
            capacity in 2usize..=CAPACITY,
            offset in 0i64..1_000_000,
        ) {
            let left = sketch(persons(offset..offset + common + only_left));
            let right = sketch(persons(offset + only_left..offset + only_left + common + only_right));
            let size = (only_left + only_right) as usize;
            proptest::prop_assert_eq!(
                left.xor(&right).size_below(capacity),
                (size < capacity).then_some(size)
            );
        }
    }

    #[test]
    fn bytes_round_trip() {
        let sketch = sketch(persons(0..10));
        assert_eq!(SetSketch::from_bytes(&sketch.to_bytes()), Some(sketch));
        assert_eq!(SetSketch::from_bytes(&[0; 7]), None);
    }
}
