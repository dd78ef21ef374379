//! Parsers of the identified extract formats (`docs/extract-formats.md`).
//!
//! [`plan_extracts`] walks an extract directory, accepts exactly the known
//! file kinds and orders them canonically (source, then relative path in
//! byte order) as units to parse; [`parse_units`] parses any run of them in
//! parallel, keeping that order ([`read_extracts`]: all at once). Every error names the file, line,
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
pub use fields::{Digits, ExtractError};
pub use uke::{
    Depth, DiagnosisLine, DiagnosisOutcome, DpcReceiptBlock, HealthInsurance, PublicExpense,
    Receipt, ServiceLine, UkeFile, UkeKind, parse_uke, parse_uke_to,
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

impl Extracts {
    /// Identity-bearing records of each parsed unit, in canonical order
    /// (receipts of each UKE file, admissions of each DPC facility-month,
    /// claims of each care file, rows of each certification file).
    pub fn unit_record_counts(&self) -> Vec<usize> {
        let ndb = self.ndb.iter().map(|file| file.receipts.len());
        let dpc = self.dpc.iter().map(|month| month.admissions.len());
        let claims = self.care_claims.iter().map(|file| file.claims.len());
        let certifications = self.care_certifications.iter().map(|file| file.rows.len());
        ndb.chain(dpc).chain(claims).chain(certifications).collect()
    }
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

/// A file found under the extract root: relative path, path, size.
type ListedFile = (String, PathBuf, u64);

/// Every file under `root` except the truth directory, sorted, with the
/// total of their sizes.
fn walk(root: &Path) -> Result<(Vec<ListedFile>, u64), ExtractError> {
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
                let size = entry.metadata().map_err(read_error)?.len();
                total += size;
                files.push((relative, path, size));
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
#[derive(Debug, Clone, Default)]
pub struct DpcGroup {
    k: Option<(String, PathBuf)>,
    ff1: Option<(String, PathBuf)>,
    ef: Option<(String, PathBuf)>,
}

/// What is parsed as one piece: a file, or one DPC facility-month's K,
/// FF1 and EF files together.
#[derive(Debug, Clone)]
pub enum ExtractUnit {
    Uke { relative: String, path: PathBuf },
    Dpc(DpcGroup),
    CareClaims { relative: String, path: PathBuf },
    Certifications { relative: String, path: PathBuf },
}

impl ExtractUnit {
    /// The unit's source: 0 NDB receipts, 1 DPC, 2 care claims, 3 care
    /// certifications (the order of [`Extracts`]).
    pub fn source(&self) -> usize {
        match self {
            ExtractUnit::Uke { .. } => 0,
            ExtractUnit::Dpc(_) => 1,
            ExtractUnit::CareClaims { .. } => 2,
            ExtractUnit::Certifications { .. } => 3,
        }
    }

    /// The directory holding the unit, relative to the extract root
    /// (`ndb/202304`).
    pub fn directory(&self) -> &str {
        let relative = match self {
            ExtractUnit::Uke { relative, .. }
            | ExtractUnit::CareClaims { relative, .. }
            | ExtractUnit::Certifications { relative, .. } => relative.as_str(),
            ExtractUnit::Dpc(group) => [&group.k, &group.ff1, &group.ef]
                .into_iter()
                .flatten()
                .map(|(relative, _)| relative.as_str())
                .next()
                .unwrap_or_default(),
        };
        relative.rsplit_once('/').map_or("", |(dir, _)| dir)
    }
}

/// Every unit of an extract directory in canonical order (NDB receipts, DPC,
/// care claims, care certifications; each by relative path), with sizes.
#[derive(Debug, Clone, Default)]
pub struct ExtractPlan {
    /// The extract directory.
    pub root: PathBuf,
    pub units: Vec<(ExtractUnit, u64)>,
    /// Files listed.
    pub files: usize,
    /// Bytes of every file.
    pub bytes: u64,
}

impl ExtractPlan {
    /// Consecutive runs of units of at most `budget_bytes` each (a unit
    /// larger than that alone), in order.
    pub fn chunks(&self, budget_bytes: u64) -> Vec<&[(ExtractUnit, u64)]> {
        chunk_units(&self.units, budget_bytes)
    }
}

/// Consecutive runs of `units` of at most `budget_bytes` each (a unit
/// larger than that alone), in order. A run of chunks cut from a plan's
/// chunks is cut the same way again.
pub fn chunk_units(units: &[(ExtractUnit, u64)], budget_bytes: u64) -> Vec<&[(ExtractUnit, u64)]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (index, (_, size)) in units.iter().enumerate() {
        if index > start && bytes + size > budget_bytes {
            chunks.push(&units[start..index]);
            (start, bytes) = (index, 0);
        }
        bytes += size;
    }
    if start < units.len() {
        chunks.push(&units[start..]);
    }
    chunks
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
    let plan = plan_extracts(root)?;
    progress.total(plan.bytes);
    let mut extracts = parse_units(&plan.units, Depth::Full, progress)?;
    extracts.files = plan.files;
    Ok(extracts)
}

/// Lists and classifies every file under `root`, refusing an unknown one,
/// without reading any.
pub fn plan_extracts(root: &Path) -> Result<ExtractPlan, ExtractError> {
    if !root.is_dir() {
        return Err(ExtractError::file(
            &root.display().to_string(),
            "extract directory not found",
        ));
    }
    let mut by_kind: BTreeMap<String, Vec<ListedFile>> = BTreeMap::new();
    let mut dpc_groups: BTreeMap<String, (DpcGroup, u64)> = BTreeMap::new();
    let (files, bytes) = walk(root)?;
    let total_files = files.len();
    for (relative, path, size) in files {
        let kind = classify(&relative).ok_or_else(|| {
            ExtractError::file(&relative, "unexpected file in the extract directory")
        })?;
        match kind {
            FileKind::DpcK | FileKind::DpcFf1 | FileKind::DpcEf => {
                add_dpc_file(&mut dpc_groups, kind, relative, path, size)
            }
            other => by_kind
                .entry(format!("{other:?}"))
                .or_default()
                .push((relative, path, size)),
        }
    }
    let mut take = |kind: FileKind| by_kind.remove(&format!("{kind:?}")).unwrap_or_default();
    let (uke, claims, certifications) = (
        take(FileKind::Uke),
        take(FileKind::CareClaims),
        take(FileKind::Certifications),
    );
    let unit = |make: fn(String, PathBuf) -> ExtractUnit| {
        move |(relative, path, size): ListedFile| (make(relative, path), size)
    };
    let units =
        uke.into_iter()
            .map(unit(|relative, path| ExtractUnit::Uke { relative, path }))
            .chain(
                dpc_groups
                    .into_values()
                    .map(|(group, size)| (ExtractUnit::Dpc(group), size)),
            )
            .chain(
                claims
                    .into_iter()
                    .map(unit(|relative, path| ExtractUnit::CareClaims {
                        relative,
                        path,
                    })),
            )
            .chain(certifications.into_iter().map(unit(|relative, path| {
                ExtractUnit::Certifications { relative, path }
            })))
            .collect();
    Ok(ExtractPlan {
        // Absolute, so that workers started elsewhere find it.
        root: std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf()),
        units,
        files: total_files,
        bytes,
    })
}

/// One parsed unit.
enum Parsed {
    Uke(UkeFile),
    Dpc(DpcFacilityMonth),
    CareClaims(CareClaimFile),
    Certifications(CertificationFile),
}

/// Parses `units` to `depth` in parallel into one [`Extracts`], keeping
/// their order.
pub fn parse_units(
    units: &[(ExtractUnit, u64)],
    depth: Depth,
    progress: &dyn ReadProgress,
) -> Result<Extracts, ExtractError> {
    let parsed = units
        .par_iter()
        .map_init(Vec::new, |buffer, (unit, size)| {
            let parsed = parse_unit(unit, depth, buffer)?;
            progress.advance(*size);
            Ok(parsed)
        })
        .collect::<Result<Vec<Parsed>, ExtractError>>()?;
    let mut extracts = Extracts {
        files: units.len(),
        bytes: units.iter().map(|(_, size)| size).sum(),
        ..Extracts::default()
    };
    for unit in parsed {
        match unit {
            Parsed::Uke(file) => extracts.ndb.push(file),
            Parsed::Dpc(month) => extracts.dpc.push(month),
            Parsed::CareClaims(file) => extracts.care_claims.push(file),
            Parsed::Certifications(file) => extracts.care_certifications.push(file),
        }
    }
    Ok(extracts)
}

fn parse_unit(
    unit: &ExtractUnit,
    depth: Depth,
    buffer: &mut Vec<u8>,
) -> Result<Parsed, ExtractError> {
    match unit {
        ExtractUnit::Uke { relative, path } => {
            read_into(relative, path, buffer)?;
            parse_uke_to(relative, buffer, depth).map(Parsed::Uke)
        }
        ExtractUnit::CareClaims { relative, path } => {
            read_into(relative, path, buffer)?;
            parse_care_claims(relative, buffer).map(Parsed::CareClaims)
        }
        ExtractUnit::Certifications { relative, path } => {
            read_into(relative, path, buffer)?;
            parse_certifications(relative, buffer).map(Parsed::Certifications)
        }
        ExtractUnit::Dpc(group) => parse_dpc_group(group).map(Parsed::Dpc),
    }
}

/// Groups `dpc/<month>/<KIND>_<facility>_<YYMM>.txt` by month, facility and YYMM.
fn add_dpc_file(
    groups: &mut BTreeMap<String, (DpcGroup, u64)>,
    kind: FileKind,
    relative: String,
    path: PathBuf,
    size: u64,
) {
    let (dir, name) = relative.rsplit_once('/').unwrap_or(("", &relative));
    let suffix = name.split_once('_').map(|(_, rest)| rest).unwrap_or(name);
    let (group, bytes) = groups.entry(format!("{dir}/K_{suffix}")).or_default();
    *bytes += size;
    let slot = match kind {
        FileKind::DpcK => &mut group.k,
        FileKind::DpcFf1 => &mut group.ff1,
        _ => &mut group.ef,
    };
    *slot = Some((relative, path));
}

fn parse_dpc_group(group: &DpcGroup) -> Result<DpcFacilityMonth, ExtractError> {
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
    parse_dpc(DpcFiles {
        k: (k_relative.as_str(), &k),
        ff1: ff1.as_ref().map(|(r, b)| (*r, b.as_slice())),
        ef: ef.as_ref().map(|(r, b)| (*r, b.as_slice())),
    })
}
