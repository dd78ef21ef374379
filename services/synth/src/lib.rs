//! Synthetic population and its identified extracts.
//!
//! This crate owns `enclave synth`: a deterministic population of Japan (per
//! seed), and the files the source systems would deliver about it, in the
//! layouts of `docs/extract-formats.md`:
//!
//! - NDB receipts (UKE: IR/RE/HO/KO/BU/SY/SI/IY/GO, CP932, CRLF, era dates)
//!   for outpatient, inpatient, DPC and pharmacy claims, one file per facility
//!   and month;
//! - DPC K, 様式1 and EF files for admissions to DPC hospitals;
//! - 介護DB care claims and care-level certifications for the certified,
//!   mostly people over 75;
//! - `truth/`: the true person of every identity-bearing record, and the
//!   population with its life events. It is for evaluation only.
//!
//! The population is shaped like Japan's (age structure, prefectures by
//! population, medical use rising with age) and lives through the events
//! that break NDB linkage: job changes and retirement (new card), the 75th
//! birthday (後期高齢者医療), marriage (new family name), marriage and a job
//! change in one month, same-sex twins who are dependents on one card,
//! facilities writing kana half- or full-width, with or without the space,
//! card numbers full- or half-width, 国保 numbers space- or zero-padded, and
//! typos in kana names. Prefectures are generated in parallel, each from its
//! own seeded generator, so output depends on the seed only.

mod activity;
mod files;
mod names;
mod population;

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use enclave_core::date::YearMonth;
use enclave_core::masters::Masters;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use files::{ShardWriter, TruthSource, WrittenFile};
use population::{Facilities, Person, PopulationBuilder};

/// Why synthetic extracts could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("output directory {0} is not empty; choose an empty or new directory")]
    NotEmpty(String),
    #[error("the population needs at least one person")]
    NoPersons,
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{0} holds a character CP932 cannot encode")]
    Encoding(String),
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthConfig {
    pub persons: u64,
    pub seed: u64,
    pub out: PathBuf,
    /// First service month.
    pub start: YearMonth,
    /// Number of service months.
    pub months: u32,
    /// Only the extracts of these service months, inclusive, are written
    /// (all when `None`). The population and its activity are the same
    /// whatever the cut, so each month's files are byte for byte those of
    /// the whole run: months cut one at a time feed an ingest month by month.
    pub written_months: Option<(YearMonth, YearMonth)>,
}

impl SynthConfig {
    /// `persons` persons over 24 months from April 2023.
    pub fn new(persons: u64, seed: u64, out: impl Into<PathBuf>) -> SynthConfig {
        SynthConfig {
            persons,
            seed,
            out: out.into(),
            start: YearMonth {
                year: 2023,
                month: 4,
            },
            months: 24,
            written_months: None,
        }
    }

    /// The same, writing only the service months `first..=last`.
    pub fn with_months(mut self, first: YearMonth, last: YearMonth) -> SynthConfig {
        self.written_months = Some((first, last));
        self
    }
}

/// What was generated.
#[derive(Debug, Clone, Default)]
pub struct SynthSummary {
    pub persons: u64,
    pub files: u64,
    pub ndb_receipts: u64,
    pub dpc_admissions: u64,
    pub care_claims: u64,
    pub care_certifications: u64,
    /// Persons per life event (`job_change`, `marriage`, `twin`, …).
    pub events: std::collections::BTreeMap<String, u64>,
}

impl fmt::Display for SynthSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} persons, {} files", self.persons, self.files)?;
        writeln!(f, "  NDB receipts        {:>10}", self.ndb_receipts)?;
        writeln!(f, "  DPC admissions      {:>10}", self.dpc_admissions)?;
        writeln!(f, "  care claims         {:>10}", self.care_claims)?;
        writeln!(f, "  care certifications {:>10}", self.care_certifications)?;
        let events: Vec<String> = self
            .events
            .iter()
            .map(|(event, n)| format!("{event} {n}"))
            .collect();
        write!(f, "  life events: {}", events.join(", "))
    }
}

/// Persons per prefecture, proportional to population (largest remainder).
fn persons_per_prefecture(persons: u64) -> Vec<(u8, u64)> {
    let prefectures = &Masters::get().prefectures;
    let total: u64 = prefectures
        .iter()
        .map(|p| u64::from(p.population_thousands))
        .sum();
    let mut shares: Vec<(u8, u64, u64)> = prefectures
        .iter()
        .map(|p| {
            let exact = persons * u64::from(p.population_thousands);
            (p.code, exact / total, exact % total)
        })
        .collect();
    let assigned: u64 = shares.iter().map(|s| s.1).sum();
    let mut by_remainder: Vec<usize> = (0..shares.len()).collect();
    by_remainder.sort_by_key(|&i| (std::cmp::Reverse(shares[i].2), i));
    for &i in by_remainder.iter().take((persons - assigned) as usize) {
        shares[i].1 += 1;
    }
    shares
        .into_iter()
        .map(|(code, count, _)| (code, count))
        .collect()
}

/// One prefecture's output.
#[derive(Debug)]
struct Shard {
    written: Vec<WrittenFile>,
    persons: Vec<Person>,
    prefecture: u8,
}

fn generate_shard(
    config: &SynthConfig,
    prefecture: u8,
    first_id: u64,
    count: u64,
) -> Result<Shard, SynthError> {
    let mut rng = ChaCha8Rng::seed_from_u64(
        config.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(prefecture),
    );
    let facilities = Facilities::new(&mut rng, count as usize);
    let months = config.months as i32;
    let persons = PopulationBuilder {
        rng: &mut rng,
        prefecture,
        start: config.start,
        months,
        facilities: &facilities,
    }
    .build(first_id, count as usize);
    let activity = activity::simulate(&mut rng, &persons, &facilities, config.start, months);
    let mut writer = ShardWriter {
        out: &config.out,
        rng: &mut rng,
        prefecture,
        start: config.start,
        persons: &persons,
        facilities: &facilities,
        written_months: config.written_months,
        written: Vec::new(),
    };
    writer.write_all(&activity)?;
    let written = writer.written;
    Ok(Shard {
        written,
        persons,
        prefecture,
    })
}

fn ensure_empty(out: &Path) -> Result<(), SynthError> {
    let write_error = |source| SynthError::Write {
        path: out.display().to_string(),
        source,
    };
    if out.exists()
        && std::fs::read_dir(out)
            .map_err(write_error)?
            .next()
            .is_some()
    {
        return Err(SynthError::NotEmpty(out.display().to_string()));
    }
    std::fs::create_dir_all(out).map_err(write_error)
}

/// Generates the population and writes its extracts and truth under `config.out`.
pub fn generate(config: &SynthConfig) -> Result<SynthSummary, SynthError> {
    if config.persons == 0 {
        return Err(SynthError::NoPersons);
    }
    ensure_empty(&config.out)?;
    let mut first_id = 0;
    let plan: Vec<(u8, u64, u64)> = persons_per_prefecture(config.persons)
        .into_iter()
        .map(|(prefecture, count)| {
            let shard = (prefecture, first_id, count);
            first_id += count;
            shard
        })
        .filter(|(_, _, count)| *count > 0)
        .collect();
    let shards = plan
        .par_iter()
        .map(|&(prefecture, first, count)| generate_shard(config, prefecture, first, count))
        .collect::<Result<Vec<_>, SynthError>>()?;
    let mut written: Vec<&WrittenFile> = shards.iter().flat_map(|s| &s.written).collect();
    written.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    write_truth(&config.out, &written, &shards)?;
    Ok(summarize(config, &shards))
}

fn write_truth(out: &Path, written: &[&WrittenFile], shards: &[Shard]) -> Result<(), SynthError> {
    let dir = out.join("truth");
    let write_error = |path: &Path| {
        let path = path.display().to_string();
        move |source| SynthError::Write { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(write_error(&dir))?;
    for source in TruthSource::ALL {
        let path = dir.join(source.file_name());
        let mut text = String::from("record_seq,person\n");
        let persons = written
            .iter()
            .filter(|w| w.source == source)
            .flat_map(|w| &w.persons);
        for (seq, person) in persons.enumerate() {
            text.push_str(&format!("{seq},{person}\n"));
        }
        std::fs::write(&path, text).map_err(write_error(&path))?;
    }
    let path = dir.join("persons.csv");
    let mut file =
        std::io::BufWriter::new(std::fs::File::create(&path).map_err(write_error(&path))?);
    writeln!(file, "person,sex,birth_date,prefecture_code,events").map_err(write_error(&path))?;
    for shard in shards {
        for person in &shard.persons {
            let events = person.events.join(";");
            writeln!(
                file,
                "{},{},{},{:02},{events}",
                person.id,
                person.sex.code(),
                person.birth,
                shard.prefecture
            )
            .map_err(write_error(&path))?;
        }
    }
    file.flush().map_err(write_error(&path))
}

fn summarize(config: &SynthConfig, shards: &[Shard]) -> SynthSummary {
    let mut summary = SynthSummary {
        persons: config.persons,
        ..SynthSummary::default()
    };
    for file in shards.iter().flat_map(|s| &s.written) {
        let records = file.persons.len() as u64;
        match file.source {
            TruthSource::Ndb => summary.ndb_receipts += records,
            TruthSource::Dpc => summary.dpc_admissions += records,
            TruthSource::CareClaims => summary.care_claims += records,
            TruthSource::CareCertifications => summary.care_certifications += records,
        }
    }
    summary.files = shards.iter().map(|s| s.written.len() as u64).sum::<u64>()
        + 2 * shards
            .iter()
            .flat_map(|s| &s.written)
            .filter(|w| w.source == TruthSource::Dpc)
            .count() as u64;
    for person in shards.iter().flat_map(|s| &s.persons) {
        for event in &person.events {
            *summary.events.entry((*event).to_owned()).or_default() += 1;
        }
    }
    summary
}
