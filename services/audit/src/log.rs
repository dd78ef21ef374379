//! The writer: events queue to one thread that appends them, fsyncs once
//! per batch (group commit) and only then answers every caller in it, so an
//! answered event is on disk. Checkpoints are signed every N events or T
//! seconds; the active segment is sealed (a new one started) once it holds
//! B bytes or its first event is older than A, so sealed segments, the ones
//! the archive copies, appear even on a quiet server.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::AuditError;
use crate::action::{Action, Outcome};
use crate::bound::bound_event;
use crate::checkpoint::{CHECKPOINT_FILE, CheckpointSigner};
use crate::inbox;
use crate::merkle::{Frontier, Hash, leaf_hash};
use crate::segment::{self, Ending, GENESIS, MAX_EVENT_BYTES};

/// Most events written under one fsync.
const MAX_BATCH: usize = 4096;
/// How often the writer moves events of side commands in from the inbox.
const INBOX_EVERY: Duration = Duration::from_secs(2);
/// The writer never waits less than this between its timed duties.
const MIN_TICK: Duration = Duration::from_millis(10);

/// What a service records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// The user (or `system`) acting.
    pub actor: String,
    pub action: Action,
    pub outcome: Outcome,
    /// Everything else worth keeping, as JSON.
    pub detail: serde_json::Value,
}

impl NewEvent {
    pub fn new(
        actor: impl Into<String>,
        action: Action,
        outcome: Outcome,
        detail: serde_json::Value,
    ) -> NewEvent {
        NewEvent {
            actor: actor.into(),
            action,
            outcome,
            detail,
        }
    }

    /// An event of the `system` actor.
    pub fn system(action: Action, outcome: Outcome, detail: serde_json::Value) -> NewEvent {
        NewEvent::new("system", action, outcome, detail)
    }
}

/// An event as stored: numbered and timed by the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub outcome: String,
    pub detail: serde_json::Value,
}

impl Event {
    /// Whether it records `action` ending in `outcome`.
    pub fn is(&self, action: Action, outcome: Outcome) -> bool {
        self.action == action.name() && self.outcome == outcome.name()
    }
}

/// When checkpoints are signed and when the active segment is sealed.
#[derive(Debug, Clone, Copy)]
pub struct LogPolicy {
    /// A checkpoint once this many events are not yet covered by one…
    pub checkpoint_events: u64,
    /// …or once uncovered events have waited this long.
    pub checkpoint_every: Duration,
    /// The active segment is sealed once it holds this many bytes…
    pub segment_bytes: u64,
    /// …or once its first event is this old.
    pub segment_age: Duration,
}

impl Default for LogPolicy {
    fn default() -> LogPolicy {
        LogPolicy {
            checkpoint_events: 1_000,
            checkpoint_every: Duration::from_secs(10),
            segment_bytes: 64 << 20,
            segment_age: Duration::from_secs(3600),
        }
    }
}

impl LogPolicy {
    /// How long the writer waits for events before its timed duties.
    fn tick(&self) -> Duration {
        self.checkpoint_every
            .min(self.segment_age)
            .min(INBOX_EVERY)
            .max(MIN_TICK)
    }
}

struct Request {
    event: NewEvent,
    reply: oneshot::Sender<Result<u64, AuditError>>,
}

/// The audit log of one process. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct AuditLog {
    requests: Sender<Request>,
    dir: PathBuf,
}

impl AuditLog {
    /// Opens (creating) the log in `dir`. A torn tail left by a crash holds
    /// no answered event: it is cut off, and the cut is itself recorded.
    pub fn open(
        dir: &Path,
        signer: CheckpointSigner,
        policy: LogPolicy,
    ) -> Result<AuditLog, AuditError> {
        std::fs::create_dir_all(dir).map_err(|e| AuditError::io(dir, e))?;
        let (mut writer, recovered) = Writer::recover(dir, signer, policy)?;
        if let Some(note) = recovered {
            writer.write_batch(&[note])?;
        }
        writer.seal_if_old();
        writer.move_inbox();
        let (requests, queue) = channel();
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer.run(queue))
            .map_err(|e| AuditError::io(dir, e))?;
        Ok(AuditLog {
            requests,
            dir: dir.to_path_buf(),
        })
    }

    /// Whether `dir` holds a log (any segment).
    pub fn exists_in(dir: &Path) -> Result<bool, AuditError> {
        Ok(!segment::segments(dir)?.is_empty())
    }

    /// The directory holding the log's segments and checkpoints.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes `event` durable, its fields bounded first ([`bound_event`]);
    /// answers with its sequence number once it is on disk. An error means
    /// the action it records must be refused.
    pub async fn record(&self, event: NewEvent) -> Result<u64, AuditError> {
        let (reply, answer) = oneshot::channel();
        let event = bound_event(event);
        self.requests
            .send(Request { event, reply })
            .map_err(|_| AuditError::Unwritable)?;
        answer.await.map_err(|_| AuditError::Unwritable)?
    }
}

struct Writer {
    dir: PathBuf,
    file: File,
    file_path: PathBuf,
    file_bytes: u64,
    /// When the active segment's first event was written (`None`: empty).
    file_started_ms: Option<i64>,
    chain: Hash,
    tree: Frontier,
    signer: CheckpointSigner,
    policy: LogPolicy,
    checkpointed_size: u64,
    checkpointed_at: Instant,
    inbox_checked_at: Instant,
    failed: bool,
}

impl Writer {
    /// Reads the existing segments back: chain, tree, next sequence number.
    fn recover(
        dir: &Path,
        signer: CheckpointSigner,
        policy: LogPolicy,
    ) -> Result<(Writer, Option<NewEvent>), AuditError> {
        let mut chain = GENESIS;
        let mut tree = Frontier::default();
        let mut recovered = None;
        let mut file_started_ms = None;
        let paths = segment::segments(dir)?;
        for (index, path) in paths.iter().enumerate() {
            let bytes = segment::read_segment(path)?;
            let (frames, ending) = segment::read_frames(&bytes, chain);
            file_started_ms = frames.first().and_then(|f| written_at(f.payload));
            if let Some(bad) = frames.iter().find(|f| !f.digest_ok) {
                return Err(AuditError::Corrupt(format!(
                    "{} offset {}: the chain is broken; run `enclave audit verify`",
                    path.display(),
                    bad.offset
                )));
            }
            for framed in &frames {
                tree.push(leaf_hash(framed.payload));
                chain = framed.digest;
            }
            if let Ending::Torn { offset, bytes } = ending {
                if index + 1 != paths.len() {
                    return Err(AuditError::Corrupt(format!(
                        "{} offset {offset}: a torn write inside the log; run `enclave audit verify`",
                        path.display()
                    )));
                }
                truncate(path, offset)?;
                tracing::warn!(segment = %path.display(), offset, bytes, "torn audit tail cut off");
                recovered = Some(NewEvent::system(
                    Action::AuditRecovered,
                    Outcome::Ok,
                    serde_json::json!({
                        "segment": file_name(path),
                        "offset": offset,
                        "torn_bytes": bytes,
                    }),
                ));
            }
        }
        let size = tree.size();
        let (file_path, file_bytes) = match paths.last() {
            Some(path) => (path.clone(), file_len(path)?),
            None => (dir.join(segment::segment_name(0)), 0),
        };
        let file = open_append(&file_path)?;
        let writer = Writer {
            dir: dir.to_path_buf(),
            file,
            file_path,
            file_bytes,
            file_started_ms,
            chain,
            tree,
            signer,
            policy,
            checkpointed_size: size,
            checkpointed_at: Instant::now(),
            inbox_checked_at: Instant::now(),
            failed: false,
        };
        Ok((writer, recovered))
    }

    fn run(mut self, queue: Receiver<Request>) {
        loop {
            let first = match queue.recv_timeout(self.policy.tick()) {
                Ok(request) => request,
                Err(RecvTimeoutError::Timeout) => {
                    self.move_inbox_if_due();
                    self.checkpoint_if_due();
                    self.seal_if_old();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.checkpoint_now();
                    return;
                }
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            let events: Vec<NewEvent> = batch.iter().map(|r| r.event.clone()).collect();
            let written = self.write_batch(&events);
            for (index, request) in batch.into_iter().enumerate() {
                let answer = match &written {
                    Ok(first_seq) => Ok(first_seq + index as u64),
                    Err(error) => Err(refusal(error)),
                };
                let _ = request.reply.send(answer);
            }
            self.move_inbox_if_due();
            self.checkpoint_if_due();
        }
    }

    /// Appends `events` and fsyncs; returns the first one's number. Only a
    /// failure of the disk fails the log; an event that cannot be framed
    /// refuses its batch, which is then not written at all.
    fn write_batch(&mut self, events: &[NewEvent]) -> Result<u64, AuditError> {
        if self.failed {
            return Err(AuditError::Unwritable);
        }
        let result = self.append(events);
        match &result {
            Err(error @ AuditError::Io { .. }) => {
                tracing::error!(%error, "audit log write failed; refusing further actions");
                self.failed = true;
            }
            Err(error) => tracing::error!(%error, "audit events refused"),
            Ok(_) => {}
        }
        result
    }

    fn append(&mut self, events: &[NewEvent]) -> Result<u64, AuditError> {
        let at_ms = unix_ms();
        if self.file_bytes >= self.policy.segment_bytes || self.segment_expired(at_ms) {
            self.roll()?;
        }
        let first_seq = self.tree.size();
        let mut buffer = Vec::new();
        let mut chain = self.chain;
        let mut leaves = Vec::with_capacity(events.len());
        for (index, event) in events.iter().enumerate() {
            let stored = Event {
                seq: first_seq + index as u64,
                at_ms,
                actor: event.actor.clone(),
                action: event.action.name().to_string(),
                outcome: event.outcome.name().to_string(),
                detail: event.detail.clone(),
            };
            let payload =
                serde_json::to_vec(&stored).map_err(|e| AuditError::Corrupt(e.to_string()))?;
            if payload.len() > MAX_EVENT_BYTES {
                return Err(AuditError::TooLarge(payload.len()));
            }
            chain = segment::frame(&mut buffer, &chain, &payload);
            leaves.push(leaf_hash(&payload));
        }
        let path = self.file_path.clone();
        self.file
            .write_all(&buffer)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| AuditError::io(&path, e))?;
        self.file_bytes += buffer.len() as u64;
        self.file_started_ms.get_or_insert(at_ms);
        self.chain = chain;
        leaves.into_iter().for_each(|leaf| self.tree.push(leaf));
        Ok(first_seq)
    }

    fn roll(&mut self) -> Result<(), AuditError> {
        self.file_path = self.dir.join(segment::segment_name(self.tree.size()));
        self.file = open_append(&self.file_path)?;
        self.file_bytes = 0;
        self.file_started_ms = None;
        sync_dir(&self.dir)
    }

    /// Whether the active segment's first event is older than the policy's
    /// segment age at `now_ms`.
    fn segment_expired(&self, now_ms: i64) -> bool {
        let age_ms = i64::try_from(self.policy.segment_age.as_millis()).unwrap_or(i64::MAX);
        self.file_started_ms
            .is_some_and(|started| now_ms.saturating_sub(started) >= age_ms)
    }

    fn move_inbox_if_due(&mut self) {
        if self.inbox_checked_at.elapsed() >= INBOX_EVERY {
            self.move_inbox();
        }
    }

    /// Writes the events waiting in the inbox, then removes their files.
    fn move_inbox(&mut self) {
        self.inbox_checked_at = Instant::now();
        if self.failed {
            return;
        }
        let waiting = match inbox::waiting(&self.dir) {
            Ok(waiting) if waiting.is_empty() => return,
            Ok(waiting) => waiting,
            Err(error) => {
                tracing::error!(%error, "reading the audit inbox failed; retrying");
                return;
            }
        };
        let (paths, events): (Vec<_>, Vec<_>) = waiting.into_iter().unzip();
        if self.write_batch(&events).is_ok()
            && let Err(error) = inbox::remove(&paths)
        {
            tracing::error!(%error, "removing recorded inbox events failed; they may be recorded twice");
        }
    }

    /// Seals an old active segment while no events arrive, so it can be
    /// archived without waiting for the next event.
    fn seal_if_old(&mut self) {
        if self.failed || !self.segment_expired(unix_ms()) {
            return;
        }
        if let Err(error) = self.roll() {
            tracing::error!(%error, "sealing the audit segment failed; refusing further actions");
            self.failed = true;
        }
    }

    fn checkpoint_if_due(&mut self) {
        let pending = self.tree.size() - self.checkpointed_size;
        let due = pending >= self.policy.checkpoint_events
            || (pending > 0 && self.checkpointed_at.elapsed() >= self.policy.checkpoint_every);
        if due {
            self.checkpoint_now();
        }
    }

    fn checkpoint_now(&mut self) {
        if self.failed || self.tree.size() == self.checkpointed_size {
            return;
        }
        let checkpoint = self
            .signer
            .sign(self.tree.size(), &self.tree.root(), unix_ms());
        let path = self.dir.join(CHECKPOINT_FILE);
        let written = serde_json::to_string(&checkpoint)
            .map_err(|e| AuditError::Corrupt(e.to_string()))
            .and_then(|line| append_line(&path, &line));
        match written {
            Ok(()) => {
                self.checkpointed_size = checkpoint.size;
                self.checkpointed_at = Instant::now();
            }
            Err(error) => {
                tracing::error!(%error, "audit checkpoint failed; refusing further actions");
                self.failed = true;
            }
        }
    }
}

/// What each caller of a refused batch is told.
fn refusal(error: &AuditError) -> AuditError {
    match error {
        AuditError::TooLarge(bytes) => AuditError::TooLarge(*bytes),
        AuditError::Corrupt(message) => AuditError::Corrupt(message.clone()),
        _ => AuditError::Unwritable,
    }
}

fn append_line(path: &Path, line: &str) -> Result<(), AuditError> {
    let mut file = open_append(path)?;
    file.write_all(format!("{line}\n").as_bytes())
        .and_then(|()| file.sync_data())
        .map_err(|e| AuditError::io(path, e))
}

fn open_append(path: &Path) -> Result<File, AuditError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| AuditError::io(path, e))
}

fn truncate(path: &Path, length: u64) -> Result<(), AuditError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| AuditError::io(path, e))?;
    file.set_len(length)
        .and_then(|()| file.sync_all())
        .map_err(|e| AuditError::io(path, e))
}

fn sync_dir(dir: &Path) -> Result<(), AuditError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| AuditError::io(dir, e))
}

fn file_len(path: &Path) -> Result<u64, AuditError> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| AuditError::io(path, e))
}

pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The `at_ms` of a stored event's JSON.
fn written_at(payload: &[u8]) -> Option<i64> {
    #[derive(Deserialize)]
    struct Timed {
        at_ms: i64,
    }
    serde_json::from_slice::<Timed>(payload)
        .ok()
        .map(|t| t.at_ms)
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}
