//! The archive: copies of the log in S3 that nobody can delete or change
//! before their retention date, not even the bucket's owner.
//!
//! Every sealed segment (every segment but the newest, which is still being
//! written) and every signed checkpoint becomes one object,
//! `<prefix>/segments/<first seq, 20 digits>.seg` and
//! `<prefix>/checkpoints/<size, 20 digits>.json` (the checkpoint's JSON
//! line), uploaded with S3 Object Lock in compliance mode until now +
//! retention and a SHA-256 checksum that S3 checks. The bucket must have
//! Object Lock enabled; [`Archive::connect`] refuses one that has not.
//!
//! Objects are immutable, so a name already present means done: the prefix
//! is listed once at start and uploads are remembered. A present object
//! whose size differs from the local file is tampering or corruption on one
//! side: it is reported (an error log and an `audit.archive_mismatch`
//! event), never overwritten. Each segment upload is recorded as
//! `audit.archived` (checkpoint uploads are not: each record would need a
//! checkpoint of its own, archived in turn, without end);
//! a failed one is retried on the next pass and recorded as
//! `audit.archive_failed` once per streak of failing passes.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::primitives::{ByteStream, DateTime, DateTimeFormat};
use aws_sdk_s3::types::{ChecksumAlgorithm, ObjectLockEnabled, ObjectLockMode};
use base64::Engine;
use ring::digest::{SHA256, digest};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::checkpoint::{CHECKPOINT_FILE, Checkpoint, hex};
use crate::log::file_name;
use crate::{Action, AuditError, AuditLog, NewEvent, Outcome, segment};

const SEGMENTS: &str = "segments/";
const CHECKPOINTS: &str = "checkpoints/";
/// The code S3 answers for a bucket without Object Lock.
const NO_LOCK_CONFIGURATION: &str = "ObjectLockConfigurationNotFoundError";

/// Where the archive goes: `s3://bucket/prefix` (the prefix may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveLocation {
    bucket: String,
    /// Empty, or ending in `/`.
    prefix: String,
}

impl ArchiveLocation {
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object key of `name` under the prefix.
    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

impl FromStr for ArchiveLocation {
    type Err = AuditError;

    fn from_str(text: &str) -> Result<ArchiveLocation, AuditError> {
        let invalid = || AuditError::ArchiveAddress(text.to_string());
        let rest = text.strip_prefix("s3://").ok_or_else(invalid)?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        let prefix = prefix.trim_matches('/');
        if !bucket_ok || prefix.split('/').any(|part| part == "." || part == "..") {
            return Err(invalid());
        }
        Ok(ArchiveLocation {
            bucket: bucket.to_string(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        })
    }
}

impl fmt::Display for ArchiveLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// One thing to archive: its object key and bytes.
#[derive(Debug)]
struct LocalObject {
    key: String,
    bytes: Vec<u8>,
}

/// Copies the log in `dir` to S3; see the module documentation.
#[derive(Debug)]
pub struct Archive {
    client: Client,
    location: ArchiveLocation,
    dir: PathBuf,
    retention: Duration,
    audit: Arc<AuditLog>,
    /// Size of every object known to be in the archive, by key.
    archived: HashMap<String, u64>,
    /// Keys whose archived size differs from the local one (reported once).
    mismatched: HashSet<String>,
    /// Bytes of `checkpoints.jsonl` whose lines are all archived.
    checkpoints_done: u64,
    /// Whether the last pass failed (one `audit.archive_failed` a streak).
    failing: bool,
}

impl Archive {
    fn new(
        client: Client,
        location: ArchiveLocation,
        retention: Duration,
        dir: &Path,
        audit: Arc<AuditLog>,
    ) -> Archive {
        Archive {
            client,
            location,
            dir: dir.to_path_buf(),
            retention,
            audit,
            archived: HashMap::new(),
            mismatched: HashSet::new(),
            checkpoints_done: 0,
            failing: false,
        }
    }

    /// Connects with the usual AWS environment (credentials, region,
    /// `AWS_ENDPOINT_URL`), refuses a bucket without Object Lock and lists
    /// what is archived already.
    pub async fn connect(
        location: ArchiveLocation,
        retention: Duration,
        dir: &Path,
        audit: Arc<AuditLog>,
    ) -> Result<Archive, AuditError> {
        let mut archive = Archive::new(s3_client().await, location, retention, dir, audit);
        archive.require_object_lock().await?;
        archive.list_archived().await?;
        tracing::info!(
            location = %archive.location,
            objects = archive.archived.len(),
            retention_days = retention.as_secs() / 86_400,
            "audit archive connected"
        );
        Ok(archive)
    }

    /// Archives in the background: a pass every `every`, and a last one
    /// when [`ArchiveTask::finish`] is called.
    pub fn spawn(mut self, every: Duration) -> ArchiveTask {
        let (stop, mut stopped) = oneshot::channel();
        let handle = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => self.pass().await,
                    _ = &mut stopped => {
                        self.pass().await;
                        return;
                    }
                }
            }
        });
        ArchiveTask { stop, handle }
    }

    /// Uploads every sealed segment and checkpoint not yet archived, in
    /// order; the first failure ends the pass (the next pass retries).
    pub async fn pass(&mut self) {
        match self.archive_new().await {
            Ok(()) => self.failing = false,
            Err(error) => self.pass_failed(error).await,
        }
    }

    async fn archive_new(&mut self) -> Result<(), AuditError> {
        self.archive_segments().await?;
        self.archive_checkpoints().await
    }

    async fn archive_segments(&mut self) -> Result<(), AuditError> {
        for path in sealed_segments(&self.dir)? {
            let key = self
                .location
                .key(&format!("{SEGMENTS}{}", file_name(&path)));
            let local_bytes = std::fs::metadata(&path)
                .map_err(|e| AuditError::io(&path, e))?
                .len();
            if self.is_archived(&key, local_bytes).await {
                continue;
            }
            let bytes = tokio::fs::read(&path)
                .await
                .map_err(|e| AuditError::io(&path, e))?;
            let detail = self.upload(LocalObject { key, bytes }).await?;
            self.record(Action::AuditArchived, Outcome::Ok, detail)
                .await;
        }
        Ok(())
    }

    /// The checkpoint lines written since the last archived one.
    async fn archive_checkpoints(&mut self) -> Result<(), AuditError> {
        let start = self.checkpoints_done;
        let tail = read_from(&self.dir.join(CHECKPOINT_FILE), start).await?;
        for (end, line) in complete_lines(&tail) {
            let object = self.checkpoint_object(line)?;
            if !self
                .is_archived(&object.key, object.bytes.len() as u64)
                .await
            {
                // Not an event: recording it would need a checkpoint of its
                // own, to be archived and recorded in turn, for ever.
                self.upload(object).await?;
            }
            self.checkpoints_done = start + end;
        }
        Ok(())
    }

    fn checkpoint_object(&self, line: &[u8]) -> Result<LocalObject, AuditError> {
        let checkpoint: Checkpoint = serde_json::from_slice(line).map_err(|_| {
            AuditError::Corrupt(format!("{CHECKPOINT_FILE}: a line is not a checkpoint"))
        })?;
        Ok(LocalObject {
            key: self
                .location
                .key(&format!("{CHECKPOINTS}{:020}.json", checkpoint.size)),
            bytes: line.to_vec(),
        })
    }

    /// Whether `key` is archived; a size other than the local one is
    /// reported (once) and counts as archived: it is never overwritten.
    async fn is_archived(&mut self, key: &str, local_bytes: u64) -> bool {
        let Some(&archived_bytes) = self.archived.get(key) else {
            return false;
        };
        if archived_bytes != local_bytes && self.mismatched.insert(key.to_string()) {
            tracing::error!(
                key,
                archived_bytes,
                local_bytes,
                "audit archive: the archived object and the local file differ in size (tampering or corruption); not overwritten"
            );
            let detail = serde_json::json!({
                "key": key,
                "archived_bytes": archived_bytes,
                "local_bytes": local_bytes,
            });
            self.record(Action::AuditArchiveMismatch, Outcome::Failed, detail)
                .await;
        }
        true
    }

    /// Uploads `object` under the compliance lock; returns what an event
    /// records of it.
    async fn upload(&mut self, object: LocalObject) -> Result<serde_json::Value, AuditError> {
        let bytes = object.bytes.len() as u64;
        let sha256 = digest(&SHA256, &object.bytes);
        let retain_until = retain_until(SystemTime::now(), self.retention);
        let written = self
            .client
            .put_object()
            .bucket(&self.location.bucket)
            .key(&object.key)
            .body(ByteStream::from(object.bytes))
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(base64::engine::general_purpose::STANDARD.encode(sha256.as_ref()))
            .object_lock_mode(ObjectLockMode::Compliance)
            .object_lock_retain_until_date(retain_until)
            .send()
            .await
            .map_err(|e| self.s3_error("PutObject", &object.key, &e))?;
        self.archived.insert(object.key.clone(), bytes);
        let detail = serde_json::json!({
            "key": object.key,
            "version_id": written.version_id(),
            "bytes": bytes,
            "sha256": hex(sha256.as_ref()),
            "retain_until": retain_until.fmt(DateTimeFormat::DateTime).unwrap_or_default(),
        });
        tracing::info!(key = object.key, bytes, "audit object archived");
        Ok(detail)
    }

    async fn pass_failed(&mut self, error: AuditError) {
        tracing::warn!(%error, "audit archive pass failed; retrying on the next pass");
        if !std::mem::replace(&mut self.failing, true) {
            let detail = serde_json::json!({ "error": error.to_string() });
            self.record(Action::AuditArchiveFailed, Outcome::Failed, detail)
                .await;
        }
    }

    async fn record(&self, action: Action, outcome: Outcome, detail: serde_json::Value) {
        let event = NewEvent::system(action, outcome, detail);
        if let Err(error) = self.audit.record(event).await {
            tracing::error!(%error, %action, "audit archive: the event could not be recorded");
        }
    }

    /// Fails closed: an archive whose objects could be deleted is none.
    async fn require_object_lock(&self) -> Result<(), AuditError> {
        let bucket = &self.location.bucket;
        let answer = self
            .client
            .get_object_lock_configuration()
            .bucket(bucket)
            .send()
            .await;
        let enabled = match answer {
            Ok(output) => {
                output
                    .object_lock_configuration()
                    .and_then(|c| c.object_lock_enabled())
                    == Some(&ObjectLockEnabled::Enabled)
            }
            Err(error) if error.code() == Some(NO_LOCK_CONFIGURATION) => false,
            Err(error) => return Err(self.s3_error("GetObjectLockConfiguration", bucket, &error)),
        };
        if enabled {
            Ok(())
        } else {
            Err(AuditError::ArchiveUnlocked {
                bucket: bucket.clone(),
            })
        }
    }

    async fn list_archived(&mut self) -> Result<(), AuditError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.location.bucket)
            .prefix(&self.location.prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| self.s3_error("ListObjectsV2", &self.location.prefix, &e))?;
            for object in page.contents() {
                if let Some(key) = object.key() {
                    let size = object.size().unwrap_or_default().max(0) as u64;
                    self.archived.insert(key.to_string(), size);
                }
            }
        }
        Ok(())
    }

    fn s3_error(
        &self,
        operation: &'static str,
        target: &str,
        error: &(dyn std::error::Error + 'static),
    ) -> AuditError {
        AuditError::Archive {
            location: format!("s3://{}/{target}", self.location.bucket),
            operation,
            message: DisplayErrorContext(error).to_string(),
        }
    }
}

/// A running [`Archive::spawn`].
#[derive(Debug)]
pub struct ArchiveTask {
    stop: oneshot::Sender<()>,
    handle: JoinHandle<()>,
}

impl ArchiveTask {
    /// Runs a last pass and waits for it.
    pub async fn finish(self) {
        let _ = self.stop.send(());
        if let Err(error) = self.handle.await {
            tracing::error!(%error, "audit archive task ended abnormally");
        }
    }
}

/// An S3 client from the AWS environment over rustls (ring). With an
/// endpoint URL (a local S3-compatible server) addressing is path-style,
/// which such servers need.
async fn s3_client() -> Client {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .load()
        .await;
    let config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(shared.endpoint_url().is_some())
        .build();
    Client::from_conf(config)
}

/// Every segment of `dir` but the newest, which is still being written.
fn sealed_segments(dir: &Path) -> Result<Vec<PathBuf>, AuditError> {
    let mut paths = segment::segments(dir)?;
    paths.pop();
    Ok(paths)
}

/// The bytes of `path` from offset `start` (none if it does not exist).
async fn read_from(path: &Path, start: u64) -> Result<Vec<u8>, AuditError> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(AuditError::io(path, error)),
    };
    let mut bytes = Vec::new();
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(|e| AuditError::io(path, e))?;
    file.read_to_end(&mut bytes)
        .await
        .map_err(|e| AuditError::io(path, e))?;
    Ok(bytes)
}

/// The whole, non-blank lines of `text`, each with the offset just past its
/// newline; a last line still being written is left out.
fn complete_lines(text: &[u8]) -> Vec<(u64, &[u8])> {
    let mut lines = Vec::new();
    let mut start = 0;
    while let Some(length) = text[start..].iter().position(|b| *b == b'\n') {
        let end = start + length + 1;
        let line = text[start..start + length].trim_ascii();
        if !line.is_empty() {
            lines.push((end as u64, line));
        }
        start = end;
    }
    lines
}

/// `now + retention`, to the second.
fn retain_until(now: SystemTime, retention: Duration) -> DateTime {
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    DateTime::from_secs((now + retention).as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, retry::RetryConfig};

    use super::*;
    use crate::{CheckpointSigner, LogPolicy, read_events};

    /// A client of an S3 endpoint where nothing listens.
    fn unreachable_client() -> Client {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap()
            .port();
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("id", "secret", None, None, "test"))
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .force_path_style(true)
            .retry_config(RetryConfig::disabled())
            .build();
        Client::from_conf(config)
    }

    #[tokio::test]
    async fn a_streak_of_failing_passes_is_recorded_once() {
        let dir = tempfile::tempdir().unwrap();
        let log_dir = dir.path().join("audit");
        let signer = CheckpointSigner::create(&dir.path().join("audit.key")).unwrap();
        let policy = LogPolicy {
            segment_bytes: 1,
            ..LogPolicy::default()
        };
        let audit = Arc::new(AuditLog::open(&log_dir, signer, policy).unwrap());
        for action in [Action::Login, Action::Query] {
            let event = NewEvent::new("alice", action, Outcome::Ok, serde_json::Value::Null);
            audit.record(event).await.unwrap();
        }
        let location = location("s3://audit-bucket/p").unwrap();
        let mut archive = Archive::new(
            unreachable_client(),
            location,
            Duration::from_secs(86_400),
            &log_dir,
            Arc::clone(&audit),
        );
        for _ in 0..3 {
            archive.pass().await;
        }
        let failed: Vec<_> = read_events(&log_dir)
            .unwrap()
            .into_iter()
            .filter(|e| e.action == Action::AuditArchiveFailed.name())
            .collect();
        assert_eq!(failed.len(), 1, "{failed:?}");
        let error = failed[0].detail["error"].as_str().unwrap();
        assert!(
            error.contains(
                "s3://audit-bucket/p/segments/00000000000000000000.seg: PutObject failed"
            ),
            "{error}"
        );
        assert!(!error.contains("secret"), "{error}");
        assert_eq!(failed[0].outcome, "failed");
        assert!(archive.archived.is_empty());
    }

    fn location(text: &str) -> Result<ArchiveLocation, AuditError> {
        text.parse()
    }

    #[test]
    fn locations_parse_with_and_without_a_prefix() {
        let with = location("s3://audit-bucket/enclave/prod/").unwrap();
        assert_eq!(with.bucket(), "audit-bucket");
        assert_eq!(with.key("segments/x.seg"), "enclave/prod/segments/x.seg");
        assert_eq!(with.to_string(), "s3://audit-bucket/enclave/prod/");
        let bare = location("s3://audit-bucket").unwrap();
        assert_eq!(bare.key("checkpoints/a.json"), "checkpoints/a.json");
        assert_eq!(location("s3://audit-bucket/").unwrap(), bare);
    }

    #[test]
    fn other_addresses_are_refused() {
        for text in [
            "audit-bucket/prefix",
            "https://audit-bucket/prefix",
            "s3://",
            "s3://Audit_Bucket/x",
            "s3://ab/x",
            "s3://audit-bucket/../x",
        ] {
            assert!(
                matches!(location(text), Err(AuditError::ArchiveAddress(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn only_whole_lines_are_taken() {
        let text = b"{\"a\":1}\n\n{\"b\":2}\n{\"c\":";
        let lines = complete_lines(text);
        assert_eq!(lines, vec![(8, &b"{\"a\":1}"[..]), (17, &b"{\"b\":2}"[..])]);
        assert!(complete_lines(&text[17..]).is_empty());
        assert!(complete_lines(b"").is_empty());
    }

    #[tokio::test]
    async fn checkpoints_are_read_from_the_archived_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CHECKPOINT_FILE);
        assert!(read_from(&path, 0).await.unwrap().is_empty());
        std::fs::write(&path, b"first\nsecond\n").unwrap();
        assert_eq!(read_from(&path, 6).await.unwrap(), b"second\n");
        assert!(read_from(&path, 13).await.unwrap().is_empty());
    }

    #[test]
    fn the_newest_segment_is_not_sealed() {
        let dir = tempfile::tempdir().unwrap();
        assert!(sealed_segments(dir.path()).unwrap().is_empty());
        for first in [0, 10, 25] {
            std::fs::write(dir.path().join(segment::segment_name(first)), b"").unwrap();
        }
        std::fs::write(dir.path().join(CHECKPOINT_FILE), b"").unwrap();
        let names: Vec<String> = sealed_segments(dir.path())
            .unwrap()
            .iter()
            .map(|p| file_name(p))
            .collect();
        assert_eq!(names, [segment::segment_name(0), segment::segment_name(10)]);
    }

    #[test]
    fn retention_ends_retention_after_now() {
        let now = UNIX_EPOCH + Duration::from_millis(1_700_000_000_900);
        let until = retain_until(now, Duration::from_secs(2557 * 86_400));
        assert_eq!(until.secs(), 1_700_000_000 + 2557 * 86_400);
    }
}
