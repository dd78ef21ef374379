//! Linkage: keyed pseudonyms, record linkage into persons, person ids, and
//! their evaluation.
//!
//! - [`keys`]: the steward's secret → per-purpose HMAC-SHA-256 keys (HKDF);
//!   ID1-style card keys, ID2/ID4-style kana-name keys, facility patient
//!   keys, facility pseudonyms;
//! - [`link()`]: a guarded union of all keys into clusters (persons), and the
//!   ID1-only / ID2-only baselines; [`Linker`] does the same one key
//!   partition at a time, for populations larger than memory;
//! - [`person_id`]: dense `person_id`s in order of first month, then keyed
//!   order, kept from one release to the next;
//! - [`eval`]: pairwise precision, recall and F1 against ground truth.
//!
//! This crate sees only normalized strings and hashes; it never stores them.

pub mod eval;
pub mod keys;
pub mod link;
pub mod person_id;

pub use keys::{KeyError, KeyHash, LinkageKeys, Purpose};
pub use link::{
    KeyKind, KeyOccurrence, LinkRecord, Linkage, LinkageReport, Linker, MAX_RECORDS, Strategy,
    TooManyRecords, link, partition_of,
};
pub use person_id::{IdChanges, PreviousMatch, Representatives, assign_person_ids};
