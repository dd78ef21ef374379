//! The data store: dataset releases as atomic sets of objects.
//!
//! A release is a set of objects under `releases/<id>/` in an object store
//! (a local directory, or an S3 bucket and prefix: [`DataLocation`]), and it
//! **exists only once its `manifest.json` is written**, which is always the
//! last write. Readers look for the newest release that has a manifest, so an
//! ingest that dies midway (even by SIGKILL) leaves the previous release as
//! the visible one; its half-written objects are swept by the next ingest.
//!
//! The manifest lists every object with its size and SHA-256, the row counts
//! and coverage of every table, and the fingerprint of the key that made it,
//! so a release can be verified without trusting the directory listing.

mod location;
mod manifest;
mod prefixed;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, PutResult, WriteMultipart};
use tracing::{info, warn};

pub use location::DataLocation;
pub use manifest::{FileEntry, Manifest, ReleaseContent, TableEntry};

const RELEASES: &str = "releases";
const MANIFEST: &str = "manifest.json";

/// What went wrong with the data store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open data directory {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot use data store {location}: {problem}")]
    Configure { location: String, problem: String },
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    #[error("release {release} has an unreadable manifest: {source}")]
    Manifest {
        release: String,
        source: serde_json::Error,
    },
    #[error("object {path} does not match its manifest entry ({problem})")]
    Integrity { path: String, problem: &'static str },
    #[error("object path {0:?} is not a plain relative path")]
    BadPath(String),
    #[error("cannot read {path}: {source}")]
    ReadLocal {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    WriteLocal {
        path: String,
        source: std::io::Error,
    },
}

/// A data store holding dataset releases.
#[derive(Debug, Clone)]
pub struct DataStore {
    objects: Arc<dyn ObjectStore>,
    /// The directory of a local store: a write killed midway leaves a
    /// staging file there that the object listing does not show.
    local_root: Option<PathBuf>,
}

impl DataStore {
    /// Opens (creating if needed) a data store in a local directory.
    pub fn open_local(dir: &Path) -> Result<DataStore, StoreError> {
        let open_error = |source| StoreError::Open {
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(open_error)?;
        let objects = LocalFileSystem::new_with_prefix(dir).map_err(|e| StoreError::Open {
            path: dir.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })?;
        Ok(DataStore {
            objects: Arc::new(objects),
            local_root: Some(dir.to_path_buf()),
        })
    }

    /// Opens the data store at `location`: a local directory (created if
    /// needed) or an S3 bucket and prefix configured from the environment.
    pub fn open(location: &DataLocation) -> Result<DataStore, StoreError> {
        match location {
            DataLocation::Local(dir) => DataStore::open_local(dir),
            DataLocation::S3 { bucket, prefix } => {
                let bucket_store = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .build()
                    .map_err(|error| StoreError::Configure {
                        location: location.to_string(),
                        problem: error.to_string(),
                    })?;
                let objects: Arc<dyn ObjectStore> = if prefix.is_empty() {
                    Arc::new(bucket_store)
                } else {
                    Arc::new(prefixed::Prefixed::new(bucket_store, prefix))
                };
                tracing::info!(%location, "data store on S3");
                Ok(DataStore::with_object_store(objects))
            }
        }
    }

    /// A data store over any object store (e.g. in-memory for tests, S3).
    pub fn with_object_store(objects: Arc<dyn ObjectStore>) -> DataStore {
        DataStore {
            objects,
            local_root: None,
        }
    }

    /// The underlying object store, for readers that scan release files.
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.objects)
    }

    /// Release ids present in the store (published or not), oldest first.
    async fn release_ids(&self) -> Result<Vec<String>, StoreError> {
        let listing = self
            .objects
            .list_with_delimiter(Some(&ObjectPath::from(RELEASES)))
            .await?;
        let mut ids: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|prefix| prefix.filename().map(str::to_owned))
            .filter(|name| parse_release_seq(name).is_some())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Ids of the published releases (those with a manifest), oldest first.
    pub async fn published_releases(&self) -> Result<Vec<String>, StoreError> {
        let mut published = Vec::new();
        for id in self.release_ids().await? {
            if self.has_manifest(&id).await? {
                published.push(id);
            }
        }
        Ok(published)
    }

    async fn has_manifest(&self, release: &str) -> Result<bool, StoreError> {
        match self.objects.head(&manifest_path(release)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The newest published release, if any.
    pub async fn latest(&self) -> Result<Option<Manifest>, StoreError> {
        for id in self.release_ids().await?.iter().rev() {
            if self.has_manifest(id).await? {
                return self.manifest(id).await.map(Some);
            }
        }
        Ok(None)
    }

    /// The manifest of one release.
    pub async fn manifest(&self, release: &str) -> Result<Manifest, StoreError> {
        let bytes = self
            .objects
            .get(&manifest_path(release))
            .await?
            .bytes()
            .await?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Manifest {
            release: release.to_owned(),
            source,
        })
    }

    /// Reads one object of a release and checks it against its manifest entry.
    pub async fn read_verified(
        &self,
        release: &str,
        entry: &FileEntry,
    ) -> Result<Bytes, StoreError> {
        let path = release_path(release, &entry.path)?;
        let bytes = self.objects.get(&path).await?.bytes().await?;
        let integrity = |problem| StoreError::Integrity {
            path: entry.path.clone(),
            problem,
        };
        if bytes.len() as u64 != entry.bytes {
            return Err(integrity("size differs"));
        }
        if sha256_hex(&bytes) != entry.sha256 {
            return Err(integrity("SHA-256 differs"));
        }
        Ok(bytes)
    }

    /// Reads bytes `range` of one object of a release, unverified (the
    /// footer of a Parquet file, to decide whether to read it whole).
    pub async fn read_range(
        &self,
        release: &str,
        entry: &FileEntry,
        range: std::ops::Range<u64>,
    ) -> Result<Bytes, StoreError> {
        let path = release_path(release, &entry.path)?;
        let parts = self.objects.get_ranges(&path, &[range]).await?;
        Ok(parts.into_iter().next().unwrap_or_default())
    }

    /// Copies one object of a release to the local file `local` a part at a
    /// time (an object larger than memory), checking it against its
    /// manifest entry; a mismatch removes the file.
    pub async fn download_verified(
        &self,
        release: &str,
        entry: &FileEntry,
        local: &Path,
    ) -> Result<(), StoreError> {
        use tokio::io::AsyncWriteExt as _;
        let write_error = |source| StoreError::WriteLocal {
            path: local.display().to_string(),
            source,
        };
        let path = release_path(release, &entry.path)?;
        let mut stream = self.objects.get(&path).await?.into_stream();
        let mut file = tokio::fs::File::create(local).await.map_err(write_error)?;
        let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
        let mut total = 0u64;
        while let Some(chunk) = stream.try_next().await? {
            digest.update(&chunk);
            total += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(write_error)?;
        }
        file.flush().await.map_err(write_error)?;
        let problem = if total != entry.bytes {
            Some("size differs")
        } else if hex(digest.finish().as_ref()) != entry.sha256 {
            Some("SHA-256 differs")
        } else {
            None
        };
        match problem {
            None => Ok(()),
            Some(problem) => {
                let _ = tokio::fs::remove_file(local).await;
                Err(StoreError::Integrity {
                    path: entry.path.clone(),
                    problem,
                })
            }
        }
    }

    /// Starts a new release after the newest one, sweeping the objects of
    /// releases that never got a manifest (an interrupted ingest).
    pub async fn begin_release(&self) -> Result<ReleaseWriter, StoreError> {
        let ids = self.release_ids().await?;
        for id in &ids {
            if !self.has_manifest(id).await? {
                warn!(release = %id, "removing an unpublished release left by an interrupted ingest");
                self.delete_prefix(&release_root(id)).await?;
                self.remove_local_leftovers(id)?;
            }
        }
        let next = ids
            .iter()
            .filter_map(|id| parse_release_seq(id))
            .max()
            .unwrap_or(0)
            + 1;
        let id = format!("r{next:06}");
        info!(release = %id, "staging release");
        Ok(ReleaseWriter {
            store: self.clone(),
            id,
            files: Vec::new(),
        })
    }

    /// Removes what a killed local write leaves behind (staging files, directories).
    fn remove_local_leftovers(&self, release: &str) -> Result<(), StoreError> {
        let Some(root) = &self.local_root else {
            return Ok(());
        };
        let dir = root.join(RELEASES).join(release);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::Open {
                path: dir.display().to_string(),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    async fn delete_prefix(&self, prefix: &ObjectPath) -> Result<(), StoreError> {
        let paths: Vec<ObjectPath> = self
            .objects
            .list(Some(prefix))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await?;
        for path in paths {
            self.objects.delete(&path).await?;
        }
        Ok(())
    }
}

/// Stages the objects of one release; nothing is visible until [`ReleaseWriter::publish`].
#[derive(Debug)]
pub struct ReleaseWriter {
    store: DataStore,
    id: String,
    files: Vec<FileEntry>,
}

impl ReleaseWriter {
    /// The id the release will have once published.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Writes one object of the release (path relative to the release root).
    pub async fn put(
        &mut self,
        relative: &str,
        bytes: Bytes,
        rows: Option<u64>,
    ) -> Result<FileEntry, StoreError> {
        let path = release_path(&self.id, relative)?;
        let entry = FileEntry {
            path: relative.to_owned(),
            bytes: bytes.len() as u64,
            sha256: sha256_hex(&bytes),
            rows,
        };
        put_object(self.store.objects.as_ref(), &path, bytes).await?;
        self.files.push(entry.clone());
        Ok(entry)
    }

    /// Writes one object of the release from a local file, a part at a
    /// time, so an object larger than memory can be written.
    pub async fn put_file(
        &mut self,
        relative: &str,
        local: &Path,
        rows: Option<u64>,
    ) -> Result<FileEntry, StoreError> {
        let path = release_path(&self.id, relative)?;
        let upload = self.store.objects.put_multipart(&path).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        match copy_parts(local, &mut writer).await {
            Ok((bytes, sha256)) => {
                writer.finish().await?;
                let entry = FileEntry {
                    path: relative.to_owned(),
                    bytes,
                    sha256,
                    rows,
                };
                self.files.push(entry.clone());
                Ok(entry)
            }
            Err(error) => {
                if let Err(abort) = writer.abort().await {
                    warn!(%path, error = %abort, "could not abort a failed multipart upload");
                }
                Err(error)
            }
        }
    }

    /// Adds one object of an earlier release, unchanged, at the same path:
    /// a copy by reference where the store allows (a hard link on local
    /// disk, a server-side copy on S3), so nothing passes through this
    /// process. Its manifest entry (size, SHA-256, rows) is carried over.
    pub async fn copy_from(
        &mut self,
        release: &str,
        entry: &FileEntry,
    ) -> Result<FileEntry, StoreError> {
        let from = release_path(release, &entry.path)?;
        let to = release_path(&self.id, &entry.path)?;
        self.store.objects.copy(&from, &to).await?;
        self.files.push(entry.clone());
        Ok(entry.clone())
    }

    /// Makes the release visible by writing its manifest, the last write.
    pub async fn publish(self, content: ReleaseContent) -> Result<Manifest, StoreError> {
        let manifest = Manifest::new(self.id.clone(), content, self.files);
        let body = serde_json::to_vec_pretty(&manifest).map_err(|source| StoreError::Manifest {
            release: self.id.clone(),
            source,
        })?;
        self.store
            .objects
            .put(&manifest_path(&self.id), PutPayload::from(body))
            .await?;
        info!(release = %self.id, "release published");
        Ok(manifest)
    }

    /// Removes everything staged so far; the release never becomes visible.
    pub async fn abandon(self) -> Result<(), StoreError> {
        warn!(release = %self.id, "abandoning release");
        self.store.delete_prefix(&release_root(&self.id)).await?;
        self.store.remove_local_leftovers(&self.id)
    }
}

fn parse_release_seq(name: &str) -> Option<u32> {
    name.strip_prefix('r')
        .filter(|digits| digits.len() == 6)?
        .parse()
        .ok()
}

fn release_root(release: &str) -> ObjectPath {
    ObjectPath::from(RELEASES).join(release)
}

fn manifest_path(release: &str) -> ObjectPath {
    release_root(release).join(MANIFEST)
}

/// `releases/<id>/<relative>`, refusing anything but plain relative segments.
fn release_path(release: &str, relative: &str) -> Result<ObjectPath, StoreError> {
    let plain = |segment: &str| !segment.is_empty() && segment != "." && segment != "..";
    if relative == MANIFEST || !relative.split('/').all(plain) {
        return Err(StoreError::BadPath(relative.to_owned()));
    }
    Ok(relative
        .split('/')
        .fold(release_root(release), |path, segment| path.join(segment)))
}

/// Objects up to this size are written with one PUT, larger ones in parts:
/// S3 takes at most 5 GiB in one PUT, and parts can be retried alone.
const MULTIPART_THRESHOLD: usize = 64 << 20;
/// The size of each part but the last (S3 wants 5 MiB to 5 GiB, at most
/// 10,000 parts: objects up to 320 GiB).
const PART_SIZE: usize = 32 << 20;

/// Writes `bytes` to `path`, in parts when it is large. A multipart upload
/// that fails is aborted, so no parts are left behind.
pub async fn put_object(
    objects: &dyn ObjectStore,
    path: &ObjectPath,
    bytes: Bytes,
) -> Result<PutResult, object_store::Error> {
    if bytes.len() <= MULTIPART_THRESHOLD {
        return objects.put(path, PutPayload::from(bytes)).await;
    }
    put_in_parts(objects, path, bytes, PART_SIZE).await
}

async fn put_in_parts(
    objects: &dyn ObjectStore,
    path: &ObjectPath,
    bytes: Bytes,
    part_size: usize,
) -> Result<PutResult, object_store::Error> {
    let upload = objects.put_multipart(path).await?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, part_size);
    writer.put(bytes);
    // Waiting for the parts first lets a failed part abort the upload;
    // `finish` aborts only when completing fails.
    if let Err(error) = writer.wait_for_capacity(0).await {
        if let Err(abort) = writer.abort().await {
            warn!(%path, error = %abort, "could not abort a failed multipart upload");
        }
        return Err(error);
    }
    writer.finish().await
}

/// Copies a local file into a multipart upload a part at a time; its size
/// and SHA-256.
async fn copy_parts(
    local: &Path,
    writer: &mut WriteMultipart,
) -> Result<(u64, String), StoreError> {
    use tokio::io::AsyncReadExt as _;
    let read_error = |source| StoreError::ReadLocal {
        path: local.display().to_string(),
        source,
    };
    let mut file = tokio::fs::File::open(local).await.map_err(read_error)?;
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buffer = vec![0u8; PART_SIZE];
    let mut total = 0u64;
    loop {
        let mut filled = 0;
        while filled < buffer.len() {
            let read = file.read(&mut buffer[filled..]).await.map_err(read_error)?;
            if read == 0 {
                break;
            }
            filled += read;
        }
        if filled == 0 {
            break;
        }
        digest.update(&buffer[..filled]);
        writer.write(&buffer[..filled]);
        writer.wait_for_capacity(1).await?;
        total += filled as u64;
    }
    writer.wait_for_capacity(0).await?;
    Ok((total, hex(digest.finish().as_ref())))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A local S3-compatible server holding the bucket `enclave-store-test`
    /// (`scripts/test.sh` starts one and makes the bucket).
    const S3_ENDPOINT: &str = "ENCLAVE_TEST_S3_ENDPOINT";

    fn patterned(len: usize) -> Bytes {
        (0..len)
            .map(|i| u8::try_from(i % 251).unwrap())
            .collect::<Vec<u8>>()
            .into()
    }

    #[tokio::test]
    async fn an_object_written_in_parts_comes_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let local = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let path = ObjectPath::from("tables/large.parquet");
        let bytes = patterned(3 * 1024 + 17);
        put_in_parts(&local, &path, bytes.clone(), 1024)
            .await
            .unwrap();
        let back = local.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(back, bytes);
    }

    #[tokio::test]
    async fn an_object_written_from_a_local_file_matches_one_written_from_memory() {
        let dir = tempfile::tempdir().unwrap();
        let store = DataStore::open_local(&dir.path().join("data")).unwrap();
        let bytes = patterned(5 * 1024 + 3);
        let local = dir.path().join("local.bin");
        std::fs::write(&local, &bytes).unwrap();
        let mut writer = store.begin_release().await.unwrap();
        let from_file = writer
            .put_file("linkage/a.bin", &local, Some(7))
            .await
            .unwrap();
        let from_memory = writer
            .put("linkage/b.bin", bytes.clone(), Some(7))
            .await
            .unwrap();
        assert_eq!(
            (from_file.bytes, &from_file.sha256),
            (from_memory.bytes, &from_memory.sha256)
        );
        let back = store.read_verified(writer.id(), &from_file).await.unwrap();
        assert_eq!(back, bytes);
        let downloaded = dir.path().join("downloaded.bin");
        store
            .download_verified(writer.id(), &from_file, &downloaded)
            .await
            .unwrap();
        assert_eq!(std::fs::read(&downloaded).unwrap(), bytes);
        let mut wrong = from_file.clone();
        wrong.sha256 = from_memory.sha256.replace(&from_memory.sha256[..2], "zz");
        let refused = store
            .download_verified(writer.id(), &wrong, &downloaded)
            .await;
        assert!(matches!(refused, Err(StoreError::Integrity { .. })));
        assert!(!downloaded.exists(), "a corrupt download was left behind");
        let missing = writer
            .put_file("linkage/c.bin", &dir.path().join("absent"), None)
            .await;
        assert!(matches!(missing, Err(StoreError::ReadLocal { .. })));
    }

    /// The test bucket of the local S3-compatible server at `endpoint`.
    fn test_bucket(endpoint: &str) -> object_store::aws::AmazonS3 {
        AmazonS3Builder::new()
            .with_endpoint(endpoint)
            .with_allow_http(true)
            .with_bucket_name("enclave-store-test")
            .with_region("us-east-1")
            .with_access_key_id("enclave-test")
            .with_secret_access_key("enclave-test")
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn a_large_object_goes_to_s3_in_parts() {
        let Ok(endpoint) = std::env::var(S3_ENDPOINT) else {
            eprintln!("{S3_ENDPOINT} is not set: multipart upload to S3 not tested");
            return;
        };
        let s3 = test_bucket(&endpoint);
        let path = ObjectPath::from("tables/large.parquet");
        // 12 MiB in 5 MiB parts (S3's smallest): three parts.
        let bytes = patterned(12 << 20);
        let result = put_in_parts(&s3, &path, bytes.clone(), 5 << 20)
            .await
            .unwrap();
        let e_tag = result.e_tag.unwrap();
        assert!(e_tag.trim_matches('"').ends_with("-3"), "{e_tag}");
        let back = s3.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(back, bytes);
    }

    /// Publishes a release holding one table file, then a second release
    /// that copies it by reference; the copy reads back verified.
    async fn copy_into_next_release(store: &DataStore) -> (String, String) {
        let mut first = store.begin_release().await.unwrap();
        let entry = first
            .put("tables/t/m=1/part-0.parquet", patterned(4099), Some(3))
            .await
            .unwrap();
        let first = first.publish(content()).await.unwrap();
        let mut second = store.begin_release().await.unwrap();
        let copied = second.copy_from(&first.release_id, &entry).await.unwrap();
        assert_eq!(copied, entry);
        let second = second.publish(content()).await.unwrap();
        assert_eq!(second.file(&entry.path), Some(&entry));
        let back = store
            .read_verified(&second.release_id, &entry)
            .await
            .unwrap();
        assert_eq!(back, patterned(4099));
        (first.release_id, second.release_id)
    }

    #[tokio::test]
    async fn a_file_copied_from_an_earlier_release_is_a_hard_link_on_local_disk() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().unwrap();
        let store = DataStore::open_local(dir.path()).unwrap();
        let (first, second) = copy_into_next_release(&store).await;
        let inode = |release: &str| {
            let path = dir
                .path()
                .join(RELEASES)
                .join(release)
                .join("tables/t/m=1/part-0.parquet");
            std::fs::metadata(path).unwrap().ino()
        };
        assert_eq!(inode(&first), inode(&second), "shared, not copied");
        let missing = FileEntry {
            path: "tables/t/absent.parquet".into(),
            bytes: 1,
            sha256: String::new(),
            rows: None,
        };
        let mut third = store.begin_release().await.unwrap();
        assert!(third.copy_from(&first, &missing).await.is_err());
        third.abandon().await.unwrap();
    }

    #[tokio::test]
    async fn a_file_copied_from_an_earlier_release_on_s3_reads_back_verified() {
        let Ok(endpoint) = std::env::var(S3_ENDPOINT) else {
            eprintln!("{S3_ENDPOINT} is not set: server-side copy on S3 not tested");
            return;
        };
        let s3 = test_bucket(&endpoint);
        let prefix = format!("copy-test-{}", std::process::id());
        let store = DataStore::with_object_store(Arc::new(object_store::prefix::PrefixStore::new(
            s3,
            prefix.as_str(),
        )));
        copy_into_next_release(&store).await;
    }

    fn content() -> ReleaseContent {
        ReleaseContent {
            key_fingerprint: "00ff".into(),
            ..ReleaseContent::default()
        }
    }

    #[tokio::test]
    async fn a_release_is_invisible_until_its_manifest_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = DataStore::open_local(dir.path()).unwrap();
        assert!(store.latest().await.unwrap().is_none());

        let mut first = store.begin_release().await.unwrap();
        first
            .put("tables/a.parquet", Bytes::from_static(b"one"), Some(1))
            .await
            .unwrap();
        assert!(store.latest().await.unwrap().is_none());
        let published = first.publish(content()).await.unwrap();
        assert_eq!(
            store.latest().await.unwrap().unwrap().release_id,
            published.release_id
        );

        let mut second = store.begin_release().await.unwrap();
        second
            .put("tables/a.parquet", Bytes::from_static(b"two"), Some(1))
            .await
            .unwrap();
        drop(second); // dies before publishing
        let latest = store.latest().await.unwrap().unwrap();
        assert_eq!(latest.release_id, "r000001");
        let bytes = store
            .read_verified(&latest.release_id, &latest.files[0])
            .await
            .unwrap();
        assert_eq!(&bytes[..], b"one");

        // The next ingest sweeps the unpublished release; ids are never reused.
        let third = store.begin_release().await.unwrap();
        assert_eq!(third.id(), "r000003");
        assert!(
            !dir.path()
                .join("releases/r000002")
                .join("tables/a.parquet")
                .exists()
        );
        assert_eq!(
            store.published_releases().await.unwrap(),
            vec!["r000001".to_string()]
        );
    }

    #[tokio::test]
    async fn tampered_objects_fail_verification() {
        let dir = tempfile::tempdir().unwrap();
        let store = DataStore::open_local(dir.path()).unwrap();
        let mut release = store.begin_release().await.unwrap();
        release
            .put("x.bin", Bytes::from_static(b"abc"), None)
            .await
            .unwrap();
        let manifest = release.publish(content()).await.unwrap();
        std::fs::write(dir.path().join("releases/r000001/x.bin"), b"abd").unwrap();
        let err = store
            .read_verified(&manifest.release_id, &manifest.files[0])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Integrity { .. }), "{err}");
    }

    #[tokio::test]
    async fn path_escapes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = DataStore::open_local(dir.path()).unwrap();
        let mut release = store.begin_release().await.unwrap();
        for bad in ["../x", "a//b", "manifest.json", ""] {
            let err = release.put(bad, Bytes::new(), None).await.unwrap_err();
            assert!(matches!(err, StoreError::BadPath(_)), "{bad}: {err}");
        }
    }
}
