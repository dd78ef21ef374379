//! Events of commands run beside the server (`enclave user add`,
//! `enclave optout add`, `enclave ingest`, …). Only one process writes the
//! log, so such a command makes its event durable in the log's inbox
//! (`<log>/inbox/<time>-<pid>-<n>.json`, written to a temporary name,
//! fsynced and renamed) before it acts; the writer moves inbox events into
//! the log when it opens and then every few seconds, and removes each file
//! only once its event is on disk. A crash between the two can record an
//! inbox event twice (the `inbox` field names the file); it cannot lose it.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::AuditError;
use crate::bound::bound_event;
use crate::log::NewEvent;

const INBOX: &str = "inbox";
const SUFFIX: &str = ".json";
/// Most inbox events moved into the log in one batch.
const MAX_TAKEN: usize = 1024;

static SPOOLED: AtomicU64 = AtomicU64::new(0);

/// Makes `event` durable in the inbox of the log in `dir`.
pub fn spool(dir: &Path, event: &NewEvent) -> Result<PathBuf, AuditError> {
    let inbox = dir.join(INBOX);
    fs::create_dir_all(&inbox).map_err(|e| AuditError::io(&inbox, e))?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let name = format!(
        "{nanos:032}-{}-{}{SUFFIX}",
        std::process::id(),
        SPOOLED.fetch_add(1, Ordering::Relaxed)
    );
    let path = inbox.join(&name);
    let partial = inbox.join(format!(".{name}.partial"));
    let bytes = serde_json::to_vec(&bound_event(event.clone()))
        .map_err(|e| AuditError::Corrupt(e.to_string()))?;
    File::create(&partial)
        .and_then(|mut file| file.write_all(&bytes).and_then(|()| file.sync_all()))
        .map_err(|e| AuditError::io(&partial, e))?;
    fs::rename(&partial, &path).map_err(|e| AuditError::io(&path, e))?;
    File::open(&inbox)
        .and_then(|d| d.sync_all())
        .map_err(|e| AuditError::io(&inbox, e))?;
    Ok(path)
}

/// Inbox events waiting, oldest first, each with its file.
pub(crate) fn waiting(dir: &Path) -> Result<Vec<(PathBuf, NewEvent)>, AuditError> {
    let inbox = dir.join(INBOX);
    let mut paths: Vec<PathBuf> = match fs::read_dir(&inbox) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| is_spooled(path))
            .collect(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(AuditError::io(&inbox, error)),
    };
    paths.sort();
    paths.truncate(MAX_TAKEN);
    let mut events = Vec::with_capacity(paths.len());
    for path in paths {
        let bytes = fs::read(&path).map_err(|e| AuditError::io(&path, e))?;
        match serde_json::from_slice::<NewEvent>(&bytes) {
            Ok(event) => {
                let mut event = bound_event(event);
                event.detail["inbox"] = crate::log::file_name(&path).into();
                events.push((path, event));
            }
            Err(_) => set_aside(&path)?,
        }
    }
    Ok(events)
}

/// Moves a file that holds no event out of the way (kept for inspection).
fn set_aside(path: &Path) -> Result<(), AuditError> {
    let aside = path.with_file_name(format!(".{}.rejected", crate::log::file_name(path)));
    tracing::error!(file = %path.display(), "audit inbox file is not an event; set aside");
    fs::rename(path, &aside).map_err(|e| AuditError::io(path, e))
}

/// Removes inbox files whose events are now in the log.
pub(crate) fn remove(paths: &[PathBuf]) -> Result<(), AuditError> {
    for path in paths {
        fs::remove_file(path).map_err(|e| AuditError::io(path, e))?;
    }
    Ok(())
}

fn is_spooled(path: &Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| !name.starts_with('.') && name.ends_with(SUFFIX))
}
