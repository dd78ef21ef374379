//! What a column of an intermediate result carries from the catalog: whether
//! it equals the person key, identifies persons or records, is sensitive, or
//! names a facility. Tags flow from scans up through every expression.

use std::collections::HashMap;
use std::ops::BitOr;

use datafusion::common::{Column, DFSchema};
use datafusion::logical_expr::Expr;

use enclave_catalog::ColumnClass;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tags {
    /// The value is the person key itself (joins on it link persons).
    pub person_equal: bool,
    /// Derived from a person or record key: never a released group.
    pub identifying: bool,
    /// Derived from a value about a person (health status, measure,
    /// quasi-identifier): no value-revealing aggregate on it.
    pub sensitive: bool,
    /// Derived from a facility key: released groups need 3 facilities.
    pub facility: bool,
}

impl Tags {
    pub fn of_class(class: ColumnClass, identifies_facility: bool) -> Tags {
        Tags {
            person_equal: class == ColumnClass::PersonKey,
            identifying: matches!(class, ColumnClass::PersonKey | ColumnClass::RecordKey),
            sensitive: matches!(
                class,
                ColumnClass::Sensitive | ColumnClass::Measure | ColumnClass::QuasiIdentifier
            ),
            facility: identifies_facility,
        }
    }

    /// Tags of a value computed from (not equal to) the tagged inputs.
    pub fn derived(self) -> Tags {
        Tags {
            person_equal: false,
            ..self
        }
    }

    /// The tags kept by an aggregate that does not reveal single values
    /// (counts keep nothing; sums and averages keep sensitivity).
    pub fn summarized(self, keeps_sensitivity: bool) -> Tags {
        Tags {
            sensitive: self.sensitive && keeps_sensitivity,
            ..Tags::default()
        }
    }

    /// Encodes as Arrow field metadata for workspace tables.
    pub fn to_metadata(self) -> String {
        let mut parts = Vec::new();
        for (set, name) in [
            (self.person_equal, "person"),
            (self.identifying, "identifying"),
            (self.sensitive, "sensitive"),
            (self.facility, "facility"),
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
        }
    }
}

impl BitOr for Tags {
    type Output = Tags;
    fn bitor(self, other: Tags) -> Tags {
        Tags {
            person_equal: self.person_equal || other.person_equal,
            identifying: self.identifying || other.identifying,
            sensitive: self.sensitive || other.sensitive,
            facility: self.facility || other.facility,
        }
    }
}

/// Tags of the output columns of a plan node, by output position.
#[derive(Debug, Clone, Default)]
pub struct ColumnTags {
    by_index: HashMap<usize, Tags>,
}

impl ColumnTags {
    pub fn set(&mut self, index: usize, tags: Tags) {
        if tags != Tags::default() {
            self.by_index.insert(index, tags);
        }
    }

    pub fn get(&self, index: usize) -> Tags {
        self.by_index.get(&index).copied().unwrap_or_default()
    }

    /// The tags of a column of `schema` (the schema these tags describe).
    pub fn of_column(&self, schema: &DFSchema, column: &Column) -> Tags {
        schema
            .maybe_index_of_column(column)
            .map(|index| self.get(index))
            .unwrap_or_default()
    }

    /// The tags of an expression over `schema`: a bare column keeps its
    /// tags; anything computed from columns is derived from their union.
    pub fn of_expr(&self, schema: &DFSchema, expr: &Expr) -> Tags {
        match expr {
            Expr::Column(column) => self.of_column(schema, column),
            Expr::Alias(alias) => self.of_expr(schema, &alias.expr),
            _ => expr
                .column_refs()
                .into_iter()
                .map(|column| self.of_column(schema, column))
                .fold(Tags::default(), BitOr::bitor)
                .derived(),
        }
    }
}
