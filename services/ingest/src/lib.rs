//! Ingest: identified extracts in, one pseudonymized, linked release out.

pub mod extract;
