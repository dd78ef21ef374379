//! `enclave_top2_sum(x)`: the sum of the two largest values of `x` in a
//! group. Over per-person partial sums it is the two largest persons'
//! contribution, which the dominance rule compares with the cell total.

use std::sync::{Arc, LazyLock};

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::ScalarValue;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, Expr, GroupsAccumulator, Signature,
    Volatility,
};

static TOP2_SUM: LazyLock<Arc<AggregateUDF>> =
    LazyLock::new(|| Arc::new(AggregateUDF::from(Top2Sum::new())));

/// The UDAF, for registration in sessions (and on remote executors).
pub fn top2_sum_udaf() -> Arc<AggregateUDF> {
    Arc::clone(&TOP2_SUM)
}

pub fn top2_sum(expr: Expr) -> Expr {
    TOP2_SUM.call(vec![expr])
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Top2Sum {
    signature: Signature,
}

impl Top2Sum {
    fn new() -> Top2Sum {
        Top2Sum {
            signature: Signature::numeric(1, Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for Top2Sum {
    fn name(&self) -> &str {
        "enclave_top2_sum"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _args: AccumulatorArgs<'_>) -> DfResult<Box<dyn Accumulator>> {
        Ok(Box::new(Top2::default()))
    }

    fn state_fields(&self, _args: StateFieldsArgs<'_>) -> DfResult<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new("first", DataType::Float64, true)),
            Arc::new(Field::new("second", DataType::Float64, true)),
        ])
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs<'_>) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs<'_>,
    ) -> DfResult<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(Top2Groups::default()))
    }
}

/// The two largest values seen (NEG_INFINITY = none yet).
#[derive(Debug, Clone, Copy)]
struct Top2 {
    first: f64,
    second: f64,
}

impl Default for Top2 {
    fn default() -> Top2 {
        Top2 {
            first: f64::NEG_INFINITY,
            second: f64::NEG_INFINITY,
        }
    }
}

impl Top2 {
    fn insert(&mut self, value: f64) {
        if value > self.first {
            self.second = self.first;
            self.first = value;
        } else if value > self.second {
            self.second = value;
        }
    }

    fn sum(self) -> Option<f64> {
        match (self.first.is_finite(), self.second.is_finite()) {
            (false, _) => None,
            (true, false) => Some(self.first),
            (true, true) => Some(self.first + self.second),
        }
    }

    fn finite(value: f64) -> Option<f64> {
        value.is_finite().then_some(value)
    }
}

fn as_f64(array: &ArrayRef) -> DfResult<Float64Array> {
    Ok(cast(array, &DataType::Float64)?
        .as_primitive::<Float64Type>()
        .clone())
}

impl Accumulator for Top2 {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        as_f64(&values[0])?
            .iter()
            .flatten()
            .for_each(|v| self.insert(v));
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        for state in states {
            as_f64(state)?.iter().flatten().for_each(|v| self.insert(v));
        }
        Ok(())
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::Float64(Top2::finite(self.first)),
            ScalarValue::Float64(Top2::finite(self.second)),
        ])
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        Ok(ScalarValue::Float64(self.sum()))
    }

    fn size(&self) -> usize {
        size_of::<Top2>()
    }
}

#[derive(Debug, Default)]
struct Top2Groups {
    groups: Vec<Top2>,
}

impl Top2Groups {
    fn insert_all(
        &mut self,
        values: &Float64Array,
        group_indices: &[usize],
        filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) {
        self.groups.resize(total_num_groups, Top2::default());
        for (row, &group) in group_indices.iter().enumerate() {
            let passes = filter.is_none_or(|filter| filter.is_valid(row) && filter.value(row));
            if passes && values.is_valid(row) {
                self.groups[group].insert(values.value(row));
            }
        }
    }
}

impl GroupsAccumulator for Top2Groups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> DfResult<()> {
        let values = as_f64(&values[0])?;
        self.insert_all(&values, group_indices, opt_filter, total_num_groups);
        Ok(())
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> DfResult<()> {
        for state in values {
            let state = as_f64(state)?;
            self.insert_all(&state, group_indices, None, total_num_groups);
        }
        Ok(())
    }

    /// Each input row as its own state: the value first, no second.
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> DfResult<Vec<ArrayRef>> {
        let values = as_f64(&values[0])?;
        let first: Float64Array = values
            .iter()
            .enumerate()
            .map(|(row, value)| {
                let passes = opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row));
                value.filter(|_| passes)
            })
            .collect();
        let second = Float64Array::new_null(first.len());
        Ok(vec![Arc::new(first), Arc::new(second)])
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> DfResult<ArrayRef> {
        let groups = emit_to.take_needed(&mut self.groups);
        Ok(Arc::new(
            groups.into_iter().map(Top2::sum).collect::<Float64Array>(),
        ))
    }

    fn state(&mut self, emit_to: EmitTo) -> DfResult<Vec<ArrayRef>> {
        let groups = emit_to.take_needed(&mut self.groups);
        let first: Float64Array = groups.iter().map(|g| Top2::finite(g.first)).collect();
        let second: Float64Array = groups.iter().map(|g| Top2::finite(g.second)).collect();
        Ok(vec![Arc::new(first), Arc::new(second)])
    }

    fn size(&self) -> usize {
        self.groups.capacity() * size_of::<Top2>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_two_largest() {
        let mut top = Top2::default();
        assert_eq!(top.sum(), None);
        for value in [3.0, 9.0, 1.0, 7.0] {
            top.insert(value);
        }
        assert_eq!(top.sum(), Some(16.0));
    }
}
