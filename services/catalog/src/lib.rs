//! The catalog: what a release holds and how each column may be used.
//!
//! This crate owns
//! - the dataset definitions in `catalog/*.toml` (one file per schema: `ndb`,
//!   `dpc`, `care`), typed as [`Catalog`] → [`SchemaDef`] → [`TableDef`] →
//!   [`ColumnDef`] and validated on load. The definitions are compiled in
//!   ([`Catalog::embedded`]) so the binary works from any directory, or read
//!   from a directory ([`Catalog::load_dir`]);
//! - the generalization rules that turn quasi-identifiers into their published
//!   form ([`Generalization`]: [`age_band`], [`postcode_prefix`], [`month_of`]);
//! - the Arrow schema of every table ([`TableDef::arrow_schema`]), which the
//!   ingest pipeline writes exactly, column for column;
//! - the published catalog ([`PublishedCatalog`]): tables, columns,
//!   descriptions, coverage and row counts rounded so that no count below 10
//!   is ever shown.
//!
//! # Column classes
//!
//! Every column has one [`ColumnClass`], which later disclosure control relies on:
//!
//! | class | meaning |
//! |---|---|
//! | `person_key` | the pseudonymous person (`person_id`); never groupable in output |
//! | `record_key` | a release-local id grouping rows (`receipt_id`, `admission_id`, `claim_id`, …); identifying, never groupable |
//! | `quasi_identifier` | could help re-identify in combination: sex, age band, prefecture, service month, facility, postcode prefix, other month columns |
//! | `sensitive` | health status: diagnosis codes, care level, outcomes, death |
//! | `code` | classification codes that are not health status: procedure and drug codes, receipt type, setting, categories |
//! | `measure` | numeric amounts: points, days, quantities, units, yen |

mod error;
mod generalize;
mod load;
mod model;
mod published;
mod validate;

pub use error::{CatalogError, RuleError};
pub use generalize::{AgeBandRule, Generalization, age_band, month_of, postcode_prefix};
pub use model::{Catalog, ColumnClass, ColumnDef, ColumnType, SchemaDef, TableDef};
pub use published::{
    Lang, PublishedCatalog, PublishedSchema, PublishedTable, TableStats, display_count,
    group_thousands, round_count,
};
