//! Re-reading the whole log: every frame's chain digest, the sequence
//! numbers, and every checkpoint's signature and tree head. The first
//! problem is reported with its place (segment, offset, event, checkpoint).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, sync_channel};

use crate::AuditError;
use crate::checkpoint::{CHECKPOINT_FILE, Checkpoint, hex};
use crate::log::{Event, file_name};
use crate::merkle::{Frontier, Hash, leaf_hash};
use crate::segment::{self, Ending, GENESIS};

/// The part of an event `verify` reads: skipping the rest is what makes
/// verification fast.
#[derive(serde::Deserialize)]
struct Numbered {
    seq: u64,
}

/// Checks every frame's chain digest against the digest stored before it
/// and computes its leaf hash, on as many threads as the machine has: each
/// frame carries the digest the next one chains from, so neither the chain
/// nor the leaves need to be walked in order.
fn check_frames(frames: &mut [segment::Framed<'_>], previous: Hash) -> Vec<Hash> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = frames.len().div_ceil(threads).max(1024);
    let before: Vec<Hash> = std::iter::once(previous)
        .chain(frames.iter().map(|f| f.digest))
        .take(frames.len())
        .collect();
    std::thread::scope(|scope| {
        let parts: Vec<_> = frames
            .chunks_mut(chunk)
            .zip(before.chunks(chunk))
            .map(|(part, previous)| {
                scope.spawn(move || {
                    part.iter_mut()
                        .zip(previous)
                        .map(|(framed, previous)| {
                            framed.digest_ok =
                                segment::chain_digest(previous, framed.payload) == framed.digest;
                            leaf_hash(framed.payload)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|part| part.join().expect("hashing does not panic"))
            .collect()
    })
}

/// The bytes of each segment in order, read one segment ahead on another
/// thread so reading overlaps checking.
fn read_ahead(paths: Vec<PathBuf>) -> Receiver<Result<Vec<u8>, AuditError>> {
    let (sender, receiver) = sync_channel(1);
    std::thread::spawn(move || {
        for path in paths {
            let read = segment::read_segment(&path);
            let failed = read.is_err();
            if sender.send(read).is_err() || failed {
                return;
            }
        }
    });
    receiver
}

/// The event's number: read from the `{"seq":N,` prefix the writer puts
/// first, else by parsing the JSON.
fn sequence_number(payload: &[u8]) -> Option<u64> {
    let fast = payload.strip_prefix(b"{\"seq\":").and_then(|rest| {
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        (rest.get(digits) == Some(&b','))
            .then(|| std::str::from_utf8(&rest[..digits]).ok()?.parse().ok())
            .flatten()
    });
    fast.or_else(|| {
        serde_json::from_slice::<Numbered>(payload)
            .ok()
            .map(|n| n.seq)
    })
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub events: u64,
    pub checkpoints: u64,
    /// The latest valid checkpoint.
    pub latest_checkpoint: Option<Checkpoint>,
    /// The first problem, precisely placed; `None` when the log verifies.
    pub problem: Option<String>,
}

impl VerifyReport {
    pub fn is_valid(&self) -> bool {
        self.problem.is_none()
    }
}

/// Checks the log in `dir` against the checkpoint `public_key`.
pub fn verify(dir: &Path, public_key: &[u8]) -> Result<VerifyReport, AuditError> {
    let mut report = VerifyReport {
        events: 0,
        checkpoints: 0,
        latest_checkpoint: None,
        problem: None,
    };
    let checkpoints = read_checkpoints(dir)?;
    let mut next_checkpoint = 0;
    let mut tree = Frontier::default();
    let mut chain = GENESIS;
    let paths = segment::segments(dir)?;
    let segments = read_ahead(paths.clone());
    for path in &paths {
        let name = file_name(path);
        let bytes = segments
            .recv()
            .map_err(|_| AuditError::Corrupt("the segment reader stopped".into()))??;
        let (mut frames, ending) = segment::split_frames(&bytes);
        let leaves = check_frames(&mut frames, chain);
        for (framed, leaf) in frames.into_iter().zip(leaves) {
            let place = || format!("segment {name} offset {}", framed.offset);
            let expected = tree.size();
            if !framed.digest_ok {
                return Ok(report.fail(format!(
                    "{}: event {expected} was changed, removed or reordered (chain digest mismatch)",
                    place()
                )));
            }
            match sequence_number(framed.payload) {
                Some(seq) if seq == expected => {}
                Some(seq) => {
                    return Ok(report.fail(format!(
                        "{}: event numbered {seq} where {expected} was expected",
                        place()
                    )));
                }
                None => {
                    return Ok(
                        report.fail(format!("{}: event {expected} is not an event", place()))
                    );
                }
            }
            tree.push(leaf);
            chain = framed.digest;
            report.events = tree.size();
            while let Some((line, checkpoint)) = checkpoints.get(next_checkpoint)
                && checkpoint.size == tree.size()
            {
                if let Err(problem) = check_checkpoint(*line, checkpoint, &tree, public_key) {
                    return Ok(report.fail(problem));
                }
                report.checkpoints += 1;
                report.latest_checkpoint = Some(checkpoint.clone());
                next_checkpoint += 1;
            }
        }
        if let Ending::Torn { offset, bytes } = ending {
            return Ok(report.fail(format!(
                "segment {name} offset {offset}: torn write ({bytes} bytes that form no whole event)"
            )));
        }
    }
    if let Some((line, checkpoint)) = checkpoints.get(next_checkpoint) {
        let problem = if checkpoint.size < report.events {
            format!(
                "checkpoint line {line} (size {}) is out of order: the checkpoints before it cover more",
                checkpoint.size
            )
        } else {
            format!(
                "checkpoint line {line} covers {} events but the log holds {}: events were removed from the end",
                checkpoint.size, report.events
            )
        };
        return Ok(report.fail(problem));
    }
    Ok(report)
}

fn check_checkpoint(
    line: usize,
    checkpoint: &Checkpoint,
    tree: &Frontier,
    public_key: &[u8],
) -> Result<(), String> {
    if !checkpoint.verify(public_key) {
        return Err(format!(
            "checkpoint line {line} (size {}): the signature does not verify",
            checkpoint.size
        ));
    }
    if checkpoint.root != hex(&tree.root()) {
        return Err(format!(
            "checkpoint line {line}: the first {} events do not hash to the signed root (an event before it was altered)",
            checkpoint.size
        ));
    }
    Ok(())
}

impl VerifyReport {
    fn fail(mut self, problem: String) -> VerifyReport {
        self.problem = Some(problem);
        self
    }
}

/// (line number, checkpoint) of `checkpoints.jsonl`.
fn read_checkpoints(dir: &Path) -> Result<Vec<(usize, Checkpoint)>, AuditError> {
    let path = dir.join(CHECKPOINT_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(AuditError::io(&path, error)),
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            serde_json::from_str(line)
                .map(|checkpoint| (index + 1, checkpoint))
                .map_err(|_| {
                    AuditError::Corrupt(format!("checkpoint line {}: not a checkpoint", index + 1))
                })
        })
        .collect()
}

/// Every event of the log, in order (whole frames only), parsed on as many
/// threads as the machine has.
pub fn read_events(dir: &Path) -> Result<Vec<Event>, AuditError> {
    let mut events = Vec::new();
    for path in segment::segments(dir)? {
        let bytes = segment::read_segment(&path)?;
        let (frames, _) = segment::split_frames(&bytes);
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let chunk = frames.len().div_ceil(threads).max(1024);
        let parsed: Vec<Result<Vec<Event>, AuditError>> = std::thread::scope(|scope| {
            let parts: Vec<_> = frames
                .chunks(chunk)
                .map(|part| scope.spawn(|| parse_events(&path, part)))
                .collect();
            parts
                .into_iter()
                .map(|part| part.join().expect("parsing does not panic"))
                .collect()
        });
        for part in parsed {
            events.extend(part?);
        }
    }
    Ok(events)
}

fn parse_events(path: &Path, frames: &[segment::Framed<'_>]) -> Result<Vec<Event>, AuditError> {
    frames
        .iter()
        .map(|framed| {
            serde_json::from_slice(framed.payload).map_err(|_| {
                AuditError::Corrupt(format!(
                    "{} offset {}: not an event",
                    path.display(),
                    framed.offset
                ))
            })
        })
        .collect()
}

/// Every signed checkpoint, in the order written.
pub fn read_checkpoint_list(dir: &Path) -> Result<Vec<Checkpoint>, AuditError> {
    Ok(read_checkpoints(dir)?
        .into_iter()
        .map(|(_, checkpoint)| checkpoint)
        .collect())
}
