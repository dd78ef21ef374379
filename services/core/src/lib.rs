//! Shared vocabulary of the enclave.
//!
//! This crate owns the small, dependency-free facts every service agrees on:
//! - [`date`]: Gregorian civil dates and months, and the Japanese era (和暦)
//!   `GYYMMDD` / `GYYMM` encodings used by receipt (UKE) and care files;
//! - [`kana`]: normalization of katakana names as linkage needs them
//!   (width, voicing marks, spaces) and the half-width rendering extracts use;
//! - [`card`]: insurer numbers (保険者番号) with their check digit, and
//!   insurance card symbols/numbers (記号・番号);
//! - [`masters`]: the code masters (diseases with ICD-10, drugs, procedures,
//!   prefectures, care service types) shipped in `catalog/masters/`;
//! - [`person`]: person attributes as extracts code them (sex);
//! - [`error`]: the error contract: kinds of failure, each mapped once to a
//!   gRPC code and an HTTP status, and what a user-facing error says.
//!
//! Nothing here does I/O; every function is pure and cheap to call per record.

pub mod card;
pub mod date;
pub mod error;
pub mod kana;
pub mod masters;
pub mod person;
