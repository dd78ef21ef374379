//! Segment files: events framed as `[u32 LE length][JSON][32-byte chain
//! digest]`, where the digest is `SHA-256(previous digest ‖ JSON)` and the
//! first previous digest is 32 zero bytes. A changed, removed or reordered
//! event breaks the chain at that event; a write cut short leaves a torn
//! tail that no digest covers.

use std::fs;
use std::path::{Path, PathBuf};

use ring::digest::{Context, SHA256};

use crate::AuditError;
use crate::merkle::Hash;

pub(crate) const SEGMENT_SUFFIX: &str = ".seg";
pub(crate) const GENESIS: Hash = [0u8; 32];
const LENGTH_BYTES: usize = 4;
const DIGEST_BYTES: usize = 32;
/// No event is larger than this; a larger length is corruption.
pub(crate) const MAX_EVENT_BYTES: usize = 1 << 20;

pub(crate) fn chain_digest(previous: &Hash, payload: &[u8]) -> Hash {
    let mut context = Context::new(&SHA256);
    context.update(previous);
    context.update(payload);
    let mut digest = [0u8; 32];
    digest.copy_from_slice(context.finish().as_ref());
    digest
}

/// Appends one framed event to `buffer`; returns the new chain digest.
pub(crate) fn frame(buffer: &mut Vec<u8>, previous: &Hash, payload: &[u8]) -> Hash {
    let digest = chain_digest(previous, payload);
    buffer.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buffer.extend_from_slice(payload);
    buffer.extend_from_slice(&digest);
    digest
}

/// One event read back from a segment.
#[derive(Debug)]
pub(crate) struct Framed<'a> {
    pub(crate) offset: u64,
    pub(crate) payload: &'a [u8],
    pub(crate) digest_ok: bool,
    pub(crate) digest: Hash,
}

/// How a segment's bytes end.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    Clean,
    /// A frame starts at `offset` but its bytes stop short.
    Torn {
        offset: u64,
        bytes: u64,
    },
}

/// Reads every whole frame of `bytes`, checking the chain from `previous`.
pub(crate) fn read_frames(bytes: &[u8], mut previous: Hash) -> (Vec<Framed<'_>>, Ending) {
    let (mut frames, ending) = split_frames(bytes);
    for framed in &mut frames {
        framed.digest_ok = chain_digest(&previous, framed.payload) == framed.digest;
        previous = framed.digest;
    }
    (frames, ending)
}

/// Every whole frame of `bytes` with its stored digest, unchecked
/// (`digest_ok` is false until a caller checks it).
pub(crate) fn split_frames(bytes: &[u8]) -> (Vec<Framed<'_>>, Ending) {
    // Events are a few hundred bytes: reserve once rather than regrow.
    let mut frames = Vec::with_capacity(bytes.len() / 256);
    let mut offset = 0usize;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        let torn = Ending::Torn {
            offset: offset as u64,
            bytes: rest.len() as u64,
        };
        let Some(length) = rest.get(..LENGTH_BYTES) else {
            return (frames, torn);
        };
        let length = u32::from_le_bytes(length.try_into().expect("four bytes")) as usize;
        let end = LENGTH_BYTES + length + DIGEST_BYTES;
        if length > MAX_EVENT_BYTES || rest.len() < end {
            return (frames, torn);
        }
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&rest[LENGTH_BYTES + length..end]);
        frames.push(Framed {
            offset: offset as u64,
            payload: &rest[LENGTH_BYTES..LENGTH_BYTES + length],
            digest_ok: false,
            digest,
        });
        offset += end;
    }
    (frames, Ending::Clean)
}

/// Segment files of `dir`, in order.
pub(crate) fn segments(dir: &Path) -> Result<Vec<PathBuf>, AuditError> {
    let mut paths: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.to_string_lossy().ends_with(SEGMENT_SUFFIX))
            .collect(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => return Err(AuditError::io(dir, error)),
    };
    paths.sort();
    Ok(paths)
}

/// The bytes of a segment up to its recorded length (a device or a file
/// still growing is read no further).
pub(crate) fn read_segment(path: &Path) -> Result<Vec<u8>, AuditError> {
    use std::io::Read;
    let file = fs::File::open(path).map_err(|e| AuditError::io(path, e))?;
    let length = file.metadata().map_err(|e| AuditError::io(path, e))?.len();
    let mut bytes = Vec::with_capacity(length as usize);
    file.take(length)
        .read_to_end(&mut bytes)
        .map_err(|e| AuditError::io(path, e))?;
    Ok(bytes)
}

pub(crate) fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}{SEGMENT_SUFFIX}")
}
