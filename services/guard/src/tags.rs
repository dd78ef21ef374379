//! What a column of an intermediate result carries from the catalog: whether
//! it equals the person key, identifies persons or records, is sensitive,
//! names a facility, or may hold constants the query chose. Tags flow from
//! scans up through every expression, join, union and predicate; a column
//! whose origin the guard does not know gets [`Tags::UNKNOWN`].

use std::collections::HashMap;

use datafusion::common::{Column, DFSchema};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};

use enclave_catalog::ColumnClass;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tags {
    /// The value is the person key itself in every row (joins on it link
    /// persons). True only when true of every input it came from.
    pub person_equal: bool,
    /// Derived from a person or record key: never a released group.
    pub identifying: bool,
    /// Derived from a value about a person (health status, codes, measures,
    /// quasi-identifiers): no value-revealing aggregate on it.
    pub sensitive: bool,
    /// Derived from a facility key: released groups need 3 facilities.
    pub facility: bool,
    /// Derived from a column whose totals have a minimum of their own in the
    /// publication rules (NDB drug volumes; [`crate::policy`]).
    pub volume: bool,
    /// Computed from such a column (`quantity * 2`): its total could not be
    /// held to the column's minimum, so it is not summed.
    pub volume_computed: bool,
    /// Derived from a municipality code ([`crate::policy`]: population
    /// tiers): grouped by only, never read by a predicate, an ordering or
    /// an aggregate, so that a group of one municipality is always seen.
    pub municipality: bool,
    /// Derived from care data (a care table, [`crate::policy`]): a result
    /// reading it shows ages only in the care bands.
    pub care: bool,
    /// Derived from an age banded finer than care data may show.
    pub fine_age: bool,
    /// May be a constant the query chose for some rows (a literal, a VALUES
    /// row, a CASE branch, a function) rather than each row's own data. Sums
    /// of it are refused: the other persons' contributions would be known,
    /// and the total would reveal the one that is not.
    pub padded: bool,
}

impl Tags {
    /// Nothing known against the value: the identity of [`Tags::merge`].
    pub const NONE: Tags = Tags {
        person_equal: false,
        identifying: false,
        sensitive: false,
        facility: false,
        volume: false,
        volume_computed: false,
        municipality: false,
        care: false,
        fine_age: false,
        padded: false,
    };

    /// A column whose origin the guard has not followed: possibly a
    /// constant, never the person key.
    pub const UNKNOWN: Tags = Tags {
        padded: true,
        ..Tags::NONE
    };

    /// Tags of a catalog column of `class`, with what the catalog and the
    /// publication rules say of it.
    pub fn of_class(class: ColumnClass, marks: ColumnMarks) -> Tags {
        Tags {
            person_equal: class == ColumnClass::PersonKey,
            identifying: matches!(class, ColumnClass::PersonKey | ColumnClass::RecordKey),
            sensitive: matches!(
                class,
                ColumnClass::Sensitive
                    | ColumnClass::Code
                    | ColumnClass::Measure
                    | ColumnClass::QuasiIdentifier
            ),
            facility: marks.facility,
            volume: marks.volume,
            volume_computed: false,
            municipality: marks.municipality,
            care: marks.care,
            fine_age: marks.fine_age,
            padded: false,
        }
    }

    /// Tags of a value computed from (not equal to) the tagged inputs.
    pub fn derived(self) -> Tags {
        Tags {
            person_equal: false,
            ..self
        }
    }

    /// Tags of a value computed from both inputs: every risk of either.
    pub fn merge(self, other: Tags) -> Tags {
        Tags {
            person_equal: false,
            identifying: self.identifying || other.identifying,
            sensitive: self.sensitive || other.sensitive,
            facility: self.facility || other.facility,
            volume: self.volume || other.volume,
            volume_computed: self.volume_computed || other.volume_computed,
            municipality: self.municipality || other.municipality,
            care: self.care || other.care,
            fine_age: self.fine_age || other.fine_age,
            padded: self.padded || other.padded,
        }
    }

    /// Tags of a column that holds one input's value in some rows and the
    /// other's in others (UNION arms): the person key only if both are.
    pub fn either(self, other: Tags) -> Tags {
        Tags {
            person_equal: self.person_equal && other.person_equal,
            ..self.merge(other)
        }
    }

    /// What a predicate relating this column to `other` tells about it: a
    /// column compared with a sensitive, identifying or facility column
    /// takes on that class (`v.code = d.icd10` makes `v.code` a diagnosis).
    pub fn constrained_by(self, other: Tags) -> Tags {
        Tags {
            identifying: self.identifying || other.identifying,
            sensitive: self.sensitive || other.sensitive,
            facility: self.facility || other.facility,
            ..self
        }
    }

    /// The tags of a per-person summary (a count, sum or average over one
    /// person's rows): a value about that person, so sensitive; padded only
    /// when it sums padded values (`keeps_values`), never identifying.
    pub fn summarized(self, keeps_values: bool) -> Tags {
        Tags {
            sensitive: true,
            volume: self.volume && keeps_values,
            volume_computed: self.volume_computed && keeps_values,
            municipality: self.municipality,
            care: self.care,
            fine_age: self.fine_age,
            padded: self.padded && keeps_values,
            ..Tags::NONE
        }
    }

    /// Encodes as Arrow field metadata for workspace tables. A column that
    /// is each row's own data is marked `row-data`; a file without the mark
    /// (or without metadata) reads back as possibly padded.
    pub fn to_metadata(self) -> String {
        let mut parts = Vec::new();
        for (set, name) in [
            (self.person_equal, "person"),
            (self.identifying, "identifying"),
            (self.sensitive, "sensitive"),
            (self.facility, "facility"),
            (self.volume, "volume"),
            (self.volume_computed, "volume-computed"),
            (self.municipality, "municipality"),
            (self.care, "care"),
            (self.fine_age, "fine-age"),
            (!self.padded, "row-data"),
        ] {
            if set {
                parts.push(name);
            }
        }
        parts.join(",")
    }

    pub fn from_metadata(text: &str) -> Tags {
        let has = |name| text.split(',').any(|part| part == name);
        Tags {
            person_equal: has("person"),
            identifying: has("identifying"),
            sensitive: has("sensitive"),
            facility: has("facility"),
            volume: has("volume"),
            volume_computed: has("volume-computed"),
            municipality: has("municipality"),
            care: has("care"),
            fine_age: has("fine-age"),
            padded: !has("row-data"),
        }
    }
}

/// What the catalog and the publication rules mark on a catalog column.
#[derive(Debug, Clone, Copy, Default)]
pub struct ColumnMarks {
    /// Names a facility (`identifies_facility` in the catalog).
    pub facility: bool,
    /// Its totals have a minimum (publication rules: volumes).
    pub volume: bool,
    /// Holds municipality codes (publication rules: population tiers).
    pub municipality: bool,
    /// Belongs to a care table (publication rules: care ages).
    pub care: bool,
    /// Holds ages banded finer than care data may show.
    pub fine_age: bool,
}

/// A column under casts only (the type coercion a sum adds).
fn is_cast_column(expr: &Expr) -> bool {
    match expr {
        Expr::Column(_) => true,
        Expr::Cast(cast) => is_cast_column(&cast.expr),
        Expr::TryCast(cast) => is_cast_column(&cast.expr),
        Expr::Alias(alias) => is_cast_column(&alias.expr),
        _ => false,
    }
}

/// Tags of the output columns of a plan node, by output position. A
/// position never set reads as [`Tags::UNKNOWN`].
#[derive(Debug, Clone, Default)]
pub struct ColumnTags {
    by_index: HashMap<usize, Tags>,
}

impl ColumnTags {
    pub fn set(&mut self, index: usize, tags: Tags) {
        self.by_index.insert(index, tags);
    }

    pub fn get(&self, index: usize) -> Tags {
        self.by_index.get(&index).copied().unwrap_or(Tags::UNKNOWN)
    }

    /// All `width` columns unknown (constants: VALUES, empty relations).
    pub fn unknown(width: usize) -> ColumnTags {
        let mut tags = ColumnTags::default();
        for index in 0..width {
            tags.set(index, Tags::UNKNOWN);
        }
        tags
    }

    /// The tags of a column of `schema` (the schema these tags describe).
    pub fn of_column(&self, schema: &DFSchema, column: &Column) -> Tags {
        schema
            .maybe_index_of_column(column)
            .map_or(Tags::UNKNOWN, |index| self.get(index))
    }

    /// The tags of an expression over `schema`: a bare column (under
    /// aliases and casts) keeps its tags; anything computed is derived from
    /// the union of its columns, and padded unless it is a row's own data
    /// (see [`is_row_data`]).
    pub fn of_expr(&self, schema: &DFSchema, expr: &Expr) -> Tags {
        match expr {
            Expr::Column(column) => self.of_column(schema, column),
            Expr::Alias(alias) => self.of_expr(schema, &alias.expr),
            _ => {
                let columns = expr
                    .column_refs()
                    .into_iter()
                    .map(|column| self.of_column(schema, column))
                    .fold(Tags::NONE, Tags::merge);
                Tags {
                    padded: columns.padded || !is_row_data(expr),
                    volume_computed: columns.volume_computed
                        || (columns.volume && !is_cast_column(expr)),
                    ..columns
                }
            }
        }
    }
}

/// True when `expr` computes each row's value from that row's columns
/// alone, without constants chosen per row: columns, casts, negation,
/// arithmetic between columns, scaling by a literal, and a CASE whose
/// branches are such values or NULL. COALESCE, functions, and literals
/// elsewhere are not.
pub fn is_row_data(expr: &Expr) -> bool {
    match expr {
        Expr::Column(_) => true,
        Expr::Alias(alias) => is_row_data(&alias.expr),
        Expr::Cast(cast) => is_row_data(&cast.expr),
        Expr::TryCast(cast) => is_row_data(&cast.expr),
        Expr::Negative(inner) => is_row_data(inner),
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::Plus | Operator::Minus => is_row_data(left) && is_row_data(right),
            Operator::Multiply => {
                (is_row_data(left) && (is_row_data(right) || is_literal(right)))
                    || (is_literal(left) && is_row_data(right))
            }
            Operator::Divide => is_row_data(left) && (is_row_data(right) || is_literal(right)),
            _ => false,
        },
        // `CASE WHEN … THEN x END` selects rows like FILTER: the others are
        // NULL, which no aggregate counts.
        Expr::Case(case) => {
            case.when_then_expr
                .iter()
                .all(|(_, then)| is_row_data(then))
                && case
                    .else_expr
                    .as_deref()
                    .is_none_or(|other| matches!(other, Expr::Literal(value, _) if value.is_null()))
        }
        _ => false,
    }
}

fn is_literal(expr: &Expr) -> bool {
    match expr {
        Expr::Literal(..) => true,
        Expr::Cast(cast) => is_literal(&cast.expr),
        Expr::TryCast(cast) => is_literal(&cast.expr),
        _ => false,
    }
}
