//! The tamper-evident audit log.
//!
//! Owns the event log every service writes before it answers: append-only
//! segment files with group commit (one fsync per batch; an event is
//! answered only once it is on disk), a hash chain over the frames so a
//! torn, changed, removed or reordered event is found at its place, an
//! RFC 6962 / 9162 Merkle tree over the events with inclusion and
//! consistency proofs, signed checkpoints (Ed25519 via ring; the key kept
//! apart from the log) every N events or T seconds, and `verify`, which
//! re-reads everything and names the first bad event or checkpoint.
//! Every event's fields are bounded before it is queued (`bound`: a long
//! user name or SQL text is kept as a prefix and a SHA-256), so no input
//! makes an event the log cannot hold. If the disk cannot be written the
//! log stays failed and every later event is refused, so the actions they
//! record are refused. `alerts` finds patterns
//! operators should look at (repeated refusals, failed logins, near-identical
//! queries). `archive` copies sealed segments and checkpoints to S3 under
//! Object Lock (compliance mode) so that nobody can delete them before their
//! retention date.

mod action;
pub mod alerts;
#[cfg(feature = "archive")]
mod archive;
mod bound;
mod checkpoint;
mod error;
mod inbox;
mod log;
pub mod merkle;
mod segment;
mod verify;
mod write_ahead;

pub use action::{Action, Outcome};
#[cfg(feature = "archive")]
pub use archive::{Archive, ArchiveLocation, ArchiveTask};
pub use bound::{MAX_NAME_BYTES, MAX_TEXT_BYTES, bound_event, bound_text};
pub use checkpoint::{Checkpoint, CheckpointSigner, hex, load_public_key, public_key_path};
pub use error::AuditError;
pub use inbox::spool;
pub use log::{AuditLog, Event, LogPolicy, NewEvent};
pub use verify::{VerifyReport, read_checkpoint_list, read_events, verify};
pub use write_ahead::Requested;
