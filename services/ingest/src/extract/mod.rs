//! Parsers of the identified extract formats (`docs/extract-formats.md`).
//!
//! [`read_extracts`] walks an extract directory, accepts exactly the known
//! file kinds, orders files canonically (relative path, byte order) and parses
//! them in parallel, keeping that order. Every error names the file, line,
//! record and field; none repeats a value, since these files are identified.

mod care;
mod dpc;
mod fields;
mod uke;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

pub use care::{
    CareClaim, CareClaimFile, CareIdentity, CareServiceLine, Certification, CertificationFile,
    parse_care_claims, parse_certifications,
};
pub use dpc::{DpcAdmission, DpcFacilityMonth, DpcFiles, DpcIdentity, EfLine, parse_dpc};
pub use fields::ExtractError;
pub use uke::{
    DiagnosisLine, DiagnosisOutcome, DpcReceiptBlock, HealthInsurance, PublicExpense, Receipt,
    ServiceLine, UkeFile, UkeKind, parse_uke,
};

/// The ground-truth directory written by the generator; never read here.
const TRUTH_DIR: &str = "truth";

/// Everything parsed from one extract directory, each list in canonical order.
#[derive(Debug, Default)]
pub struct Extracts {
    pub ndb: Vec<UkeFile>,
    pub dpc: Vec<DpcFacilityMonth>,
    pub care_claims: Vec<CareClaimFile>,
    pub care_certifications: Vec<CertificationFile>,
    /// Files read.
    pub files: usize,
    /// Bytes read.
    pub bytes: u64,
}

/// A recognized extract file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FileKind {
    Uke,
    DpcK,
    DpcFf1,
    DpcEf,
    CareClaims,
    Certifications,
}

/// Classifies a path relative to the extract root.
fn classify(relative: &str) -> Option<FileKind> {
    let parts: Vec<&str> = relative.split('/').collect();
    let is_month = |dir: &str| dir.len() == 6 && dir.bytes().all(|b| b.is_ascii_digit());
    match parts.as_slice() {
        ["ndb", month, name]
            if is_month(month)
                && name.ends_with(".UKE")
                && UkeKind::from_file_name(name).is_some() =>
        {
            Some(FileKind::Uke)
        }
        ["dpc", month, name] if is_month(month) && name.ends_with(".txt") => {
            match name.split('_').next() {
                Some("K") => Some(FileKind::DpcK),
                Some("FF1") => Some(FileKind::DpcFf1),
                Some("EFn") => Some(FileKind::DpcEf),
                _ => None,
            }
        }
        ["care", month, name]
            if is_month(month) && name.starts_with("KYUFU_") && name.ends_with(".csv") =>
        {
            Some(FileKind::CareClaims)
        }
        ["care", name] if name.starts_with("NINTEI_") && name.ends_with(".csv") => {
            Some(FileKind::Certifications)
        }
        _ => None,
    }
}

/// Every file under `root` except the truth directory, as (relative path,
/// path), sorted, with the total of their sizes.
fn walk(root: &Path) -> Result<(Vec<(String, PathBuf)>, u64), ExtractError> {
    let mut files = Vec::new();
    let mut total = 0;
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let read_error = |e: std::io::Error| {
            ExtractError::file(
                &dir.display().to_string(),
                format!("cannot read directory: {e}"),
            )
        };
        for entry in std::fs::read_dir(&dir).map_err(read_error)? {
            let entry = entry.map_err(read_error)?;
            let path = entry.path();
            let relative = relative_path(root, &path);
            if entry.file_type().map_err(read_error)?.is_dir() {
                if relative != TRUTH_DIR {
                    pending.push(path);
                }
            } else {
                total += entry.metadata().map_err(read_error)?.len();
                files.push((relative, path));
            }
        }
    }
    files.sort();
    Ok((files, total))
}

fn relative_path(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn read(relative: &str, path: &Path) -> Result<Vec<u8>, ExtractError> {
    let mut bytes = Vec::new();
    read_into(relative, path, &mut bytes)?;
    Ok(bytes)
}

/// Reads a file into a reused buffer: fresh buffers per file would cost a
/// page fault per page read.
fn read_into(relative: &str, path: &Path, buffer: &mut Vec<u8>) -> Result<(), ExtractError> {
    use std::io::Read as _;
    buffer.clear();
    std::fs::File::open(path)
        .and_then(|mut file| file.read_to_end(buffer))
        .map(|_| ())
        .map_err(|e| ExtractError::file(relative, format!("cannot read file: {e}")))
}

/// One facility-month of DPC files, by the path of its K file.
#[derive(Debug, Default)]
struct DpcGroup {
    k: Option<(String, PathBuf)>,
    ff1: Option<(String, PathBuf)>,
    ef: Option<(String, PathBuf)>,
}

/// Hears how far [`read_extracts`] has got.
pub trait ReadProgress: Sync {
    /// The bytes of all files, once they are listed.
    fn total(&self, bytes: u64);
    /// The bytes of one more file read.
    fn advance(&self, bytes: u64);
}

/// Progress nobody follows.
#[derive(Debug, Clone, Copy)]
pub struct NoProgress;

impl ReadProgress for NoProgress {
    fn total(&self, _bytes: u64) {}
    fn advance(&self, _bytes: u64) {}
}

/// Parses every extract under `root`, telling `progress` the bytes read.
pub fn read_extracts(root: &Path, progress: &dyn ReadProgress) -> Result<Extracts, ExtractError> {
    if !root.is_dir() {
        return Err(ExtractError::file(
            &root.display().to_string(),
            "extract directory not found",
        ));
    }
    let mut by_kind: BTreeMap<String, Vec<(String, PathBuf)>> = BTreeMap::new();
    let mut dpc_groups: BTreeMap<String, DpcGroup> = BTreeMap::new();
    let (files, total_bytes) = walk(root)?;
    progress.total(total_bytes);
    let total_files = files.len();
    for (relative, path) in files {
        let kind = classify(&relative).ok_or_else(|| {
            ExtractError::file(&relative, "unexpected file in the extract directory")
        })?;
        match kind {
            FileKind::DpcK | FileKind::DpcFf1 | FileKind::DpcEf => {
                add_dpc_file(&mut dpc_groups, kind, relative, path)
            }
            other => by_kind
                .entry(format!("{other:?}"))
                .or_default()
                .push((relative, path)),
        }
    }
    let take = |kind: FileKind, by_kind: &mut BTreeMap<String, Vec<(String, PathBuf)>>| {
        by_kind.remove(&format!("{kind:?}")).unwrap_or_default()
    };
    let ndb = parse_all(take(FileKind::Uke, &mut by_kind), progress, parse_uke)?;
    let claims = parse_all(
        take(FileKind::CareClaims, &mut by_kind),
        progress,
        parse_care_claims,
    )?;
    let certifications = parse_all(
        take(FileKind::Certifications, &mut by_kind),
        progress,
        parse_certifications,
    )?;
    let dpc = parse_dpc_groups(dpc_groups, progress)?;
    let bytes = ndb.iter().map(|f| f.1).sum::<u64>()
        + dpc.iter().map(|f| f.1).sum::<u64>()
        + claims.iter().map(|f| f.1).sum::<u64>()
        + certifications.iter().map(|f| f.1).sum::<u64>();
    Ok(Extracts {
        ndb: ndb.into_iter().map(|f| f.0).collect(),
        dpc: dpc.into_iter().map(|f| f.0).collect(),
        care_claims: claims.into_iter().map(|f| f.0).collect(),
        care_certifications: certifications.into_iter().map(|f| f.0).collect(),
        files: total_files,
        bytes,
    })
}

/// Reads and parses `files` in parallel, keeping their order; each with its size.
fn parse_all<T: Send>(
    files: Vec<(String, PathBuf)>,
    progress: &dyn ReadProgress,
    parse: fn(&str, &[u8]) -> Result<T, ExtractError>,
) -> Result<Vec<(T, u64)>, ExtractError> {
    files
        .par_iter()
        .map_init(Vec::new, |buffer, (relative, path)| {
            read_into(relative, path, buffer)?;
            progress.advance(buffer.len() as u64);
            Ok((parse(relative, buffer)?, buffer.len() as u64))
        })
        .collect()
}

/// Groups `dpc/<month>/<KIND>_<facility>_<YYMM>.txt` by month, facility and YYMM.
fn add_dpc_file(
    groups: &mut BTreeMap<String, DpcGroup>,
    kind: FileKind,
    relative: String,
    path: PathBuf,
) {
    let (dir, name) = relative.rsplit_once('/').unwrap_or(("", &relative));
    let suffix = name.split_once('_').map(|(_, rest)| rest).unwrap_or(name);
    let group = groups.entry(format!("{dir}/K_{suffix}")).or_default();
    let slot = match kind {
        FileKind::DpcK => &mut group.k,
        FileKind::DpcFf1 => &mut group.ff1,
        _ => &mut group.ef,
    };
    *slot = Some((relative, path));
}

fn parse_dpc_groups(
    groups: BTreeMap<String, DpcGroup>,
    progress: &dyn ReadProgress,
) -> Result<Vec<(DpcFacilityMonth, u64)>, ExtractError> {
    let groups: Vec<DpcGroup> = groups.into_values().collect();
    groups
        .par_iter()
        .map(|group| {
            let orphan = group
                .ff1
                .as_ref()
                .or(group.ef.as_ref())
                .map(|(r, _)| r.as_str())
                .unwrap_or_default();
            let (k_relative, k_path) = group.k.as_ref().ok_or_else(|| {
                ExtractError::file(orphan, "DPC file has no K file for its facility and month")
            })?;
            let k = read(k_relative, k_path)?;
            let ff1 = group
                .ff1
                .as_ref()
                .map(|(r, p)| read(r, p).map(|b| (r.as_str(), b)))
                .transpose()?;
            let ef = group
                .ef
                .as_ref()
                .map(|(r, p)| read(r, p).map(|b| (r.as_str(), b)))
                .transpose()?;
            let bytes = (k.len()
                + ff1.as_ref().map_or(0, |f| f.1.len())
                + ef.as_ref().map_or(0, |f| f.1.len())) as u64;
            progress.advance(bytes);
            let files = DpcFiles {
                k: (k_relative.as_str(), &k),
                ff1: ff1.as_ref().map(|(r, b)| (*r, b.as_slice())),
                ef: ef.as_ref().map(|(r, b)| (*r, b.as_slice())),
            };
            Ok((parse_dpc(files)?, bytes))
        })
        .collect()
}
