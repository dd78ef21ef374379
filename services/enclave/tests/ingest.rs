//! End-to-end: `enclave synth` → `enclave ingest` → release, catalog and
//! linkage evaluation, through the real binary.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type};
use common::{
    KEY_A, KEY_B, enclave, enclave_ok, files_under, ingest, ingest_args, ingest_with,
    latest_release, synth,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let bytes = bytes::Bytes::from(std::fs::read(path).expect("read parquet"));
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .expect("parquet")
        .build()
        .expect("reader");
    reader.map(|batch| batch.expect("batch")).collect()
}

/// `(source, record_seq) → person_id` from a release's linkage records.
fn person_ids(data: &Path) -> HashMap<(String, i64), i64> {
    let mut ids = HashMap::new();
    for batch in read_parquet(&latest_release(data).join("linkage/records.parquet")) {
        let source = batch
            .column_by_name("source")
            .unwrap()
            .as_string::<i32>()
            .clone();
        let seq = batch
            .column_by_name("record_seq")
            .unwrap()
            .as_primitive::<Int64Type>()
            .clone();
        let person = batch
            .column_by_name("person_id")
            .unwrap()
            .as_primitive::<Int64Type>()
            .clone();
        for row in 0..batch.num_rows() {
            ids.insert(
                (source.value(row).to_owned(), seq.value(row)),
                person.value(row),
            );
        }
    }
    ids
}

#[test]
fn release_publishes_every_catalog_table_with_rounded_counts() {
    let dir = tempfile::tempdir().unwrap();
    let extracts = synth(dir.path(), 1500, 7);
    let data = dir.path().join("data");
    let summary = ingest(&extracts, &data, KEY_A);
    assert!(summary.contains("persons"), "{summary}");

    let catalog: serde_json::Value = serde_json::from_str(&enclave_ok(
        &["catalog", "--data", data.to_str().unwrap(), "--json"],
        None,
    ))
    .unwrap();
    let mut tables = Vec::new();
    for schema in catalog["schemas"].as_array().unwrap() {
        for table in schema["tables"].as_array().unwrap() {
            let name = format!(
                "{}.{}",
                schema["name"].as_str().unwrap(),
                table["name"].as_str().unwrap()
            );
            let display = table["rows_display"].as_str().unwrap().to_owned();
            let shown_ok = display == "0"
                || display == "<10"
                || table["rows_rounded"].as_u64().unwrap() % 10 == 0;
            assert!(shown_ok, "{name}: {display}");
            let columns = table["columns"].as_array().unwrap();
            assert!(
                columns.iter().any(|c| c["name"] == "person_id"),
                "{name} lacks person_id"
            );
            assert!(
                columns
                    .iter()
                    .all(|c| c["description_ja"].is_string() && c["description_en"].is_string())
            );
            tables.push(name);
        }
    }
    for required in [
        "ndb.receipts",
        "ndb.diagnoses",
        "ndb.procedures",
        "ndb.drugs",
        "dpc.admissions",
        "dpc.details",
        "care.claims",
        "care.certifications",
    ] {
        assert!(
            tables.iter().any(|t| t == required),
            "catalog lacks {required}"
        );
        let dir = latest_release(&data).join("tables").join(required);
        let rows: usize = files_under(&dir)
            .iter()
            .flat_map(|f| read_parquet(f))
            .map(|b| b.num_rows())
            .sum();
        assert!(rows > 0, "{required} has no rows");
    }
}

#[test]
fn the_same_key_gives_the_same_person_ids_and_another_key_unrelated_ones() {
    let dir = tempfile::tempdir().unwrap();
    let extracts = synth(dir.path(), 1200, 11);
    let (a1, a2, b) = (
        dir.path().join("a1"),
        dir.path().join("a2"),
        dir.path().join("b"),
    );
    ingest(&extracts, &a1, KEY_A);
    ingest(&extracts, &a2, KEY_A);
    ingest(&extracts, &b, KEY_B);
    let (ids_a1, ids_a2, ids_b) = (person_ids(&a1), person_ids(&a2), person_ids(&b));
    assert!(ids_a1.len() > 1000);
    assert_eq!(ids_a1, ids_a2, "same key, same data: identical person_ids");

    // Another key: the same people (linkage does not depend on the key) ...
    let mut a_to_b = HashMap::new();
    for (record, id_a) in &ids_a1 {
        let id_b = ids_b[record];
        assert_eq!(
            *a_to_b.entry(*id_a).or_insert(id_b),
            id_b,
            "a person split differently under key B"
        );
    }
    // ... under unrelated ids: few fixed points, and among the persons of
    // the first month (ids ranked by first month, then keyed order) no
    // rank correlation.
    let persons = a_to_b.len() as f64;
    let same = a_to_b.iter().filter(|(a, b)| a == b).count() as f64;
    assert!(
        same / persons < 0.02,
        "{same} of {persons} ids unchanged under another key"
    );
    let first_month = persons_with_receipts_in(&a1, "2023-04");
    assert!(first_month.len() > 200, "{}", first_month.len());
    let pairs: Vec<(f64, f64)> = first_month
        .iter()
        .map(|a| (*a as f64, a_to_b[a] as f64))
        .collect();
    let correlation = rank_correlation(&pairs);
    assert!(
        correlation.abs() < 0.1,
        "ids of one month correlate across keys: {correlation}"
    );
}

/// The `person_id`s of the NDB receipts of one service month (`YYYY-MM`).
fn persons_with_receipts_in(data: &Path, month: &str) -> std::collections::HashSet<i64> {
    let dir = latest_release(data).join(format!("tables/ndb.receipts/service_month={month}"));
    files_under(&dir)
        .iter()
        .flat_map(|file| read_parquet(file))
        .flat_map(|batch| {
            let ids = batch.column_by_name("person_id").unwrap();
            ids.as_primitive::<Int64Type>().values().to_vec()
        })
        .collect()
}

/// Spearman's rank correlation of `pairs`.
fn rank_correlation(pairs: &[(f64, f64)]) -> f64 {
    let ranks = |values: Vec<f64>| -> Vec<f64> {
        let mut order: Vec<usize> = (0..values.len()).collect();
        order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
        let mut ranks = vec![0.0; values.len()];
        for (rank, index) in order.into_iter().enumerate() {
            ranks[index] = rank as f64;
        }
        ranks
    };
    let a = ranks(pairs.iter().map(|p| p.0).collect());
    let b = ranks(pairs.iter().map(|p| p.1).collect());
    let mean = (pairs.len() as f64 - 1.0) / 2.0;
    let covariance: f64 = a.iter().zip(&b).map(|(x, y)| (x - mean) * (y - mean)).sum();
    let variance: f64 = a.iter().map(|x| (x - mean).powi(2)).sum();
    covariance / variance
}

#[test]
fn union_linkage_beats_both_single_key_baselines() {
    let dir = tempfile::tempdir().unwrap();
    let extracts = synth(dir.path(), 3000, 5);
    let data = dir.path().join("data");
    ingest(&extracts, &data, KEY_A);
    let report = linkage_report(&data, &extracts.join("truth"));
    let f1 = |name: &str| report[name]["f1"].as_f64().unwrap();
    assert!(f1("union") > f1("id1_only"), "{report:#}");
    assert!(f1("union") > f1("id2_only"), "{report:#}");
    assert!(f1("union") > 0.99, "{report:#}");
    twins_on_one_card_keep_apart(&extracts, &data);
}

/// Every same-sex twin pair of the population ends with two disjoint sets of person_ids.
fn twins_on_one_card_keep_apart(extracts: &Path, data: &Path) {
    let persons = std::fs::read_to_string(extracts.join("truth/persons.csv")).unwrap();
    let rows: Vec<Vec<&str>> = persons
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let twins: Vec<(u64, u64)> = rows
        .windows(2)
        .filter(|w| w[0][4].contains("twin") && w[1][4].contains("twin") && w[0][2] == w[1][2])
        .map(|w| (w[0][0].parse().unwrap(), w[1][0].parse().unwrap()))
        .collect();
    assert!(!twins.is_empty(), "the population has no twins");
    let truth = std::fs::read_to_string(extracts.join("truth/ndb.csv")).unwrap();
    let ids = person_ids(data);
    let ids_of = |person: u64| -> std::collections::HashSet<i64> {
        truth
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(','))
            .filter(|(_, p)| p.parse::<u64>().unwrap() == person)
            .map(|(seq, _)| ids[&("ndb".to_owned(), seq.parse::<i64>().unwrap())])
            .collect()
    };
    for (a, b) in twins {
        let (ids_a, ids_b) = (ids_of(a), ids_of(b));
        assert!(ids_a.is_disjoint(&ids_b), "twins {a} and {b} were merged");
    }
}

#[test]
fn ingest_refuses_a_missing_or_short_key_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let extracts = synth(dir.path(), 200, 3);
    let data = dir.path().join("data");
    let args = [
        "ingest",
        "--extracts",
        extracts.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ];
    let missing = enclave(&args, None);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("ENCLAVE_PSEUDONYM_KEY"));
    let short = enclave(&args, Some("too-short-a-key"));
    assert!(!short.status.success());
    assert!(
        String::from_utf8_lossy(&short.stderr).contains("32 bytes"),
        "{short:?}"
    );
    assert!(
        !data.exists(),
        "a refused ingest created the data directory"
    );
}

/// Replaces the first birth date field of an RE record with an impossible era date.
/// Writes `value` into field `index` (0-based) of the first `record` line
/// of the first UKE file; returns where (`line N`).
fn corrupt_first(extracts: &Path, record: &[u8], index: usize, value: &[u8]) -> String {
    let file = files_under(&extracts.join("ndb"))
        .into_iter()
        .find(|f| f.extension().is_some_and(|e| e == "UKE"))
        .unwrap();
    let bytes = std::fs::read(&file).unwrap();
    let mut lines: Vec<Vec<u8>> = bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    let line = lines.iter().position(|l| l.starts_with(record)).unwrap();
    let mut fields: Vec<Vec<u8>> = lines[line]
        .split(|b| *b == b',')
        .map(<[u8]>::to_vec)
        .collect();
    fields[index] = value.to_vec();
    lines[line] = fields.join(&b',');
    std::fs::write(&file, lines.join(&b'\n')).unwrap();
    format!("line {}", line + 1)
}

/// An ingest of extracts with one bad field fails naming file, line and
/// field but not the value, and leaves the previous release the only one.
fn a_corrupt_field_publishes_nothing(
    record: &[u8],
    index: usize,
    value: &str,
    field: &str,
    args: &[&str],
) {
    let dir = tempfile::tempdir().unwrap();
    let extracts = synth(dir.path(), 300, 9);
    let data = dir.path().join("data");
    ingest(&extracts, &data, KEY_A);
    let before = latest_release(&data);

    let where_ = corrupt_first(&extracts, record, index, value.as_bytes());
    let output = enclave(&ingest_args(&extracts, &data, args), Some(KEY_A));
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains(".UKE") && message.contains(&where_) && message.contains(field),
        "{message}"
    );
    // The error, not the timestamps of the log lines around it.
    let error = message
        .lines()
        .find(|line| line.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line: {message}"));
    assert!(
        !error.contains(value),
        "the error echoes the bad value: {error}"
    );
    assert_eq!(
        latest_release(&data),
        before,
        "a new release became visible"
    );
    let published = std::fs::read_dir(data.join("releases")).unwrap().count();
    assert_eq!(published, 1, "the failed ingest left objects behind");
}

#[test]
fn a_corrupt_identity_field_publishes_nothing() {
    // 平成31年13月01日: found by the first pass, before anything is written.
    a_corrupt_field_publishes_nothing(b"RE,", 6, "4311301", "生年月日", &[]);
}

#[test]
fn a_corrupt_detail_field_publishes_nothing() {
    // A diagnosis outcome that does not exist: found by the second pass,
    // after tables were written, which are abandoned.
    a_corrupt_field_publishes_nothing(b"SY,", 3, "97", "転帰区分", &[]);
}

#[test]
fn a_corrupt_field_found_by_a_worker_process_publishes_nothing() {
    let workers = ["--workers", "2"];
    a_corrupt_field_publishes_nothing(b"RE,", 6, "4311301", "生年月日", &workers);
    a_corrupt_field_publishes_nothing(b"SY,", 3, "97", "転帰区分", &workers);
}

/// Starts an ingest under key A in the background, its output discarded.
fn start_ingest(extracts: &Path, data: &Path, extra: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_enclave"))
        .args(ingest_args(extracts, data, extra))
        .env("ENCLAVE_PSEUDONYM_KEY", KEY_A)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// A process's state letter and parent, `None` once it is gone.
fn process_state(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut after_name = stat.rsplit_once(')')?.1.split_whitespace();
    let state = after_name.next()?.chars().next()?;
    let parent = after_name.next()?.parse().ok()?;
    Some((state, parent))
}

fn is_running(pid: u32) -> bool {
    process_state(pid).is_some_and(|(state, _)| state != 'Z')
}

/// The running processes whose parent is `parent`.
fn children_of(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| process_state(pid).is_some_and(|(state, p)| p == parent && state != 'Z'))
        .collect()
}

#[test]
#[expect(
    clippy::disallowed_methods,
    reason = "polls processes from a synchronous test"
)]
fn workers_stop_when_their_ingest_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let extracts = synth(dir.path(), 20_000, 17);
    let (data, spill) = (dir.path().join("data"), dir.path().join("spill"));
    let extra = ["--workers", "2", "--spill-dir", spill.to_str().unwrap()];
    let mut ingest = start_ingest(&extracts, &data, &extra);
    let deadline = Instant::now() + Duration::from_secs(120);
    let workers = loop {
        let workers = children_of(ingest.id());
        if workers.len() == 2 || Instant::now() > deadline {
            break workers;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    ingest.kill().unwrap(); // SIGKILL: the ingest cannot stop its workers
    ingest.wait().unwrap();
    assert_eq!(workers.len(), 2, "the ingest started no workers");

    let deadline = Instant::now() + Duration::from_secs(60);
    while workers.iter().any(|&pid| is_running(pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        !workers.iter().any(|&pid| is_running(pid)),
        "workers outlived their ingest by a minute"
    );
    // They stopped rather than finished: neither wrote its result.
    let results: Vec<PathBuf> = files_under(&spill)
        .into_iter()
        .filter(|path| path.ends_with("result.json"))
        .collect();
    assert!(results.is_empty(), "workers ran to the end: {results:?}");
}

/// Starts an ingest spilling under `spill` and SIGKILLs it as soon as it
/// starts writing release `staged`; returns whether it died before publishing.
#[expect(
    clippy::disallowed_methods,
    reason = "polls a child process from a synchronous test"
)]
fn kill_while_writing(
    extracts: &Path,
    data: &Path,
    extra: &[&str],
    spill: &Path,
    staged: &Path,
) -> bool {
    let mut args = vec!["--spill-dir", spill.to_str().unwrap()];
    args.extend_from_slice(extra);
    let mut child = start_ingest(extracts, data, &args);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !staged.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(200));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(staged.exists(), "the ingest never started writing");
    !staged.join("manifest.json").exists()
}

#[test]
fn a_killed_ingest_leaves_the_previous_release_readable() {
    let dir = tempfile::tempdir().unwrap();
    let extracts = synth(dir.path(), 3000, 13);
    let data = dir.path().join("data");
    let spill = dir.path().join("spill");
    ingest(&extracts, &data, KEY_A);

    // A kill may land after the manifest on a fast machine; then that release
    // is simply the previous one for the next attempt.
    let mut attempt = 2;
    let (before, staged) = loop {
        let before = latest_release(&data);
        let staged = data.join(format!("releases/r{attempt:06}"));
        if kill_while_writing(&extracts, &data, &[], &spill, &staged) {
            break (before, staged);
        }
        assert!(
            attempt < 6,
            "no kill landed while the release was being written"
        );
        attempt += 1;
    };
    let manifest_before = std::fs::read(before.join("manifest.json")).unwrap();
    assert_eq!(
        latest_release(&data),
        before,
        "a killed ingest published a release"
    );
    let before_id = before.file_name().unwrap().to_str().unwrap().to_owned();
    let catalog = enclave_ok(
        &["catalog", "--data", data.to_str().unwrap(), "--json"],
        None,
    );
    assert!(catalog.contains(&before_id), "{catalog}");
    for file in files_under(&before.join("tables")) {
        assert!(!read_parquet(&file).is_empty());
    }
    assert_eq!(
        std::fs::read(before.join("manifest.json")).unwrap(),
        manifest_before
    );

    // The killed ingests left their spill directories, private to the owner.
    let left = std::fs::read_dir(&spill).unwrap().count();
    assert!(left >= 1, "a killed ingest left no spill directory");
    for entry in std::fs::read_dir(&spill).unwrap() {
        use std::os::unix::fs::PermissionsExt;
        let mode = entry.unwrap().metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "a spill directory others can enter");
    }

    // The next ingest sweeps the half-written release and the dead ingests'
    // spill directories, and publishes a complete release keeping the ids
    // of the last published one.
    let ids_before = person_ids(&data);
    let summary = ingest_with(
        &extracts,
        &data,
        KEY_A,
        &["--spill-dir", spill.to_str().unwrap()],
    );
    assert!(!staged.exists(), "the half-written release was not swept");
    assert!(
        summary.contains(&format!("from {before_id}, new 0, merged 0, split 0")),
        "{summary}"
    );
    assert_eq!(person_ids(&data), ids_before);
    assert_eq!(
        std::fs::read_dir(&spill).unwrap().count(),
        0,
        "the spill directories of killed ingests were not swept"
    );
    assert_eq!(
        latest_release(&data).file_name().unwrap().to_str().unwrap(),
        format!("r{:06}", attempt + 1)
    );
}

/// Every direct identifier of the extracts, in the spellings a leak could take.
struct Identifiers {
    /// Searched as substrings of every byte of every file.
    anywhere: Vec<Vec<u8>>,
    /// Digit strings searched as whole tokens (not inside a longer alphanumeric run).
    digit_tokens: Vec<Vec<u8>>,
}

fn collect_identifiers(extracts: &Path) -> Identifiers {
    use enclave_core::kana;
    let parsed =
        enclave_ingest::extract::read_extracts(extracts, &enclave_ingest::extract::NoProgress)
            .expect("extracts parse");
    let mut anywhere = Vec::new();
    let mut digit_tokens = Vec::new();
    let mut add_name = |kanji: Option<&str>, kana_name: &str| {
        if let Some(kanji) = kanji {
            anywhere.push(kanji.as_bytes().to_vec());
            anywhere.push(kanji.replace('\u{3000}', "").into_bytes());
        }
        let normalized = kana::normalize_name(kana_name);
        anywhere.push(kana_name.as_bytes().to_vec());
        anywhere.push(kana::to_halfwidth(&normalized).into_bytes());
        anywhere.push(normalized.into_bytes());
    };
    let mut births = Vec::new();
    let mut cards = Vec::new();
    for file in &parsed.ndb {
        for receipt in &file.receipts {
            add_name(Some(&receipt.kanji_name), &receipt.kana_name);
            births.push(receipt.birth);
            let insurance = &receipt.insurance;
            cards.push((
                insurance.insurer.to_string(),
                insurance.symbol.clone(),
                insurance.number.clone(),
            ));
        }
    }
    for month in &parsed.dpc {
        for admission in &month.admissions {
            add_name(None, &admission.identity.kana_name);
            births.push(admission.identity.birth);
            let identity = &admission.identity;
            cards.push((
                identity.insurer.to_string(),
                identity.symbol.clone(),
                identity.number.clone(),
            ));
            digit_tokens.push(admission.postcode.as_bytes().to_vec());
        }
    }
    for file in &parsed.care_claims {
        for claim in &file.claims {
            let identity = &claim.identity;
            add_name(None, &identity.kana_name);
            births.push(identity.birth);
            cards.push((
                identity.insurer.to_string(),
                String::new(),
                identity.care_number.clone(),
            ));
        }
    }
    for file in &parsed.care_certifications {
        for row in &file.rows {
            add_name(None, &row.identity.kana_name);
            births.push(row.identity.birth);
            digit_tokens.push(row.postcode.as_bytes().to_vec());
        }
    }
    for birth in births {
        digit_tokens.push(birth.to_yyyymmdd().into_bytes());
        digit_tokens.push(birth.to_wareki().into_bytes());
        anywhere.push(birth.to_string().into_bytes());
    }
    for (insurer, symbol, number) in cards {
        digit_tokens.push(format!("{insurer:0>8}").into_bytes());
        anywhere.push(format!("{insurer:>8}").into_bytes());
        if insurer.len() == 8 {
            digit_tokens.push(insurer.into_bytes());
        }
        for text in [symbol, number] {
            let normalized = enclave_core::card::normalize_card_text(&text);
            if normalized.len() >= 6 {
                digit_tokens.push(normalized.clone().into_bytes());
                anywhere.push(enclave_core::card::to_fullwidth_ascii(&normalized).into_bytes());
            }
        }
    }
    for list in [&mut anywhere, &mut digit_tokens] {
        list.retain(|pattern| pattern.len() >= 6);
        list.sort();
        list.dedup();
    }
    Identifiers {
        anywhere,
        digit_tokens,
    }
}

/// Bytes of a file as a leak would appear in it: raw bytes, plus for Parquet
/// every decoded string value (compression hides substrings from a raw scan).
fn searchable_texts(path: &Path) -> Vec<Vec<u8>> {
    let mut texts = vec![std::fs::read(path).unwrap()];
    if path.extension().is_some_and(|e| e == "parquet") {
        for batch in read_parquet(path) {
            for column in batch.columns() {
                if column.data_type() == &DataType::Utf8 {
                    let strings = column.as_string::<i32>();
                    let joined: Vec<u8> = (0..strings.len())
                        .filter(|&i| strings.is_valid(i))
                        .flat_map(|i| [strings.value(i).as_bytes(), b"\n"].concat())
                        .collect();
                    texts.push(joined);
                }
            }
        }
    }
    texts
}

fn token_match_at(text: &[u8], start: usize, end: usize) -> bool {
    let boundary = |b: Option<&u8>| b.is_none_or(|b| !b.is_ascii_alphanumeric());
    boundary(start.checked_sub(1).and_then(|i| text.get(i))) && boundary(text.get(end))
}

#[test]
fn no_direct_identifier_reaches_the_data_or_spill_directories() {
    // A release of 21 months, then 3 more appended by worker processes:
    // both releases, their linkage state and both ingests' spill files
    // (the workers' too) are scanned.
    let dir = tempfile::tempdir().unwrap();
    let extracts = synth(dir.path(), 800, 21);
    let first = synth_months_of(dir.path(), 800, 21, "202304..202412");
    let later = synth_months_of(dir.path(), 800, 21, "202501..202503");
    let data = dir.path().join("data");
    let spill = dir.path().join("spill");
    let keep = ["--spill-dir", spill.to_str().unwrap(), "--keep-spill"];
    ingest_with(&first, &data, KEY_A, &keep);
    ingest_with(
        &later,
        &data,
        KEY_A,
        &[&keep[..], &["--append", "--workers", "2"]].concat(),
    );
    let spilled = files_under(&spill);
    let names: Vec<String> = spilled
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for spilled in [
        "keys-",
        "key-occurrences-",
        "base-occurrences-",
        "base-records",
        "record-ids.bin",
        "result.json",
    ] {
        assert!(
            names.iter().any(|n| n.starts_with(spilled)),
            "{spilled}: {names:?}"
        );
    }
    assert!(names.iter().any(|n| n.ends_with(".labels")), "{names:?}");
    let state = latest_release(&data).join("linkage/key_occurrences");
    assert!(!files_under(&state).is_empty(), "no linkage state");
    let identifiers = collect_identifiers(&extracts);
    assert!(identifiers.anywhere.len() > 1000 && identifiers.digit_tokens.len() > 1000);

    let anywhere = aho_corasick::AhoCorasick::new(&identifiers.anywhere).unwrap();
    let tokens = aho_corasick::AhoCorasick::new(&identifiers.digit_tokens).unwrap();
    let files = files_under(&data);
    assert!(files.len() > 20);
    for file in files.into_iter().chain(spilled) {
        for text in searchable_texts(&file) {
            if let Some(found) = anywhere.find(&text) {
                panic!(
                    "{} holds an identifier at byte {}",
                    file.display(),
                    found.start()
                );
            }
            for found in tokens.find_overlapping_iter(&text) {
                assert!(
                    !token_match_at(&text, found.start(), found.end()),
                    "{} holds an identifier number at byte {}",
                    file.display(),
                    found.start()
                );
            }
        }
    }
}

/// Every table of the newest release: its rows, each rendered as text
/// without the columns `skip`, sorted.
fn sorted_tables(data: &Path, skip: &[&str]) -> std::collections::BTreeMap<String, Vec<String>> {
    use arrow::util::display::array_value_to_string;
    let root = latest_release(data).join("tables");
    let mut tables = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let table = entry.unwrap().path();
        let mut rows = Vec::new();
        for file in files_under(&table) {
            for batch in read_parquet(&file) {
                let schema = batch.schema();
                let kept: Vec<usize> = (0..batch.num_columns())
                    .filter(|&i| !skip.contains(&schema.field(i).name().as_str()))
                    .collect();
                for row in 0..batch.num_rows() {
                    let cells: Vec<String> = kept
                        .iter()
                        .map(|&i| array_value_to_string(batch.column(i), row).unwrap())
                        .collect();
                    rows.push(cells.join("|"));
                }
            }
        }
        rows.sort();
        let name = table.file_name().unwrap().to_string_lossy().into_owned();
        tables.insert(name, rows);
    }
    tables
}

/// The megabytes an ingest's summary says it spilled.
fn spilled_mb(summary: &str) -> f64 {
    summary
        .lines()
        .find_map(|l| l.trim().strip_prefix("memory"))
        .and_then(|l| l.split("spilled ").nth(1))
        .and_then(|l| l.split(' ').next())
        .and_then(|mb| mb.parse().ok())
        .unwrap_or_else(|| panic!("no spill figure in {summary}"))
}

/// Parquet files and month partitions of a table of the newest release.
fn files_and_months(data: &Path, table: &str) -> (usize, usize) {
    let root = latest_release(data).join("tables").join(table);
    let months = std::fs::read_dir(&root).unwrap().count();
    (files_under(&root).len(), months)
}

#[test]
fn a_small_memory_limit_spills_in_chunks_and_publishes_the_same_release() {
    let dir = tempfile::tempdir().unwrap();
    let extracts = synth(dir.path(), 3000, 13);
    let (roomy, small) = (dir.path().join("roomy"), dir.path().join("small"));
    let ingest_within = |data: &Path, memory_mb: &str| {
        ingest_with(&extracts, data, KEY_A, &["--memory-mb", memory_mb])
    };
    ingest_within(&roomy, "4096");
    let summary = ingest_within(&small, "40");
    assert!(spilled_mb(&summary) > 0.0, "{summary}");
    // The roomy limit builds every month at once; the small one cuts the
    // extracts into chunks, some months across two.
    let (roomy_files, months) = files_and_months(&roomy, "ndb.receipts");
    assert_eq!(roomy_files, months);
    let (small_files, _) = files_and_months(&small, "ndb.receipts");
    assert!(
        small_files > months,
        "{small_files} files for {months} months"
    );
    let (roomy_tables, small_tables) = (sorted_tables(&roomy, &[]), sorted_tables(&small, &[]));
    assert!(roomy_tables["ndb.receipts"].len() > 10_000);
    assert_eq!(
        roomy_tables, small_tables,
        "the same rows, ids included, whatever the memory limit"
    );
    assert_eq!(person_ids(&roomy), person_ids(&small));
}

#[test]
fn a_memory_limit_too_small_for_the_population_stops_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let extracts = synth(dir.path(), 600, 17);
    let data = dir.path().join("data");
    let output = enclave(
        &ingest_args(&extracts, &data, &["--memory-mb", "2"]),
        Some(KEY_A),
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--memory-mb 2 is too small") && stderr.contains("needs at least"),
        "{stderr}"
    );
    let published = data.join("releases");
    assert!(
        !published.exists() || files_under(&published).is_empty(),
        "nothing is written"
    );
}

/// Record → `person_id` of the sources whose records keep their
/// `record_seq` when a later month is added (the certification files hold
/// every month in one file each, so their order changes).
fn month_ordered_person_ids(data: &Path) -> HashMap<(String, i64), i64> {
    person_ids(data)
        .into_iter()
        .filter(|((source, _), _)| source != "care_certifications")
        .collect()
}

/// (previous id, id) of every record of `before` found in `after`.
fn id_pairs(
    before: &HashMap<(String, i64), i64>,
    after: &HashMap<(String, i64), i64>,
) -> Vec<(i64, i64)> {
    before
        .iter()
        .map(|(record, id)| (*id, after[record]))
        .collect()
}

#[test]
fn a_release_with_one_more_month_keeps_every_persons_id() {
    let dir = tempfile::tempdir().unwrap();
    let whole = synth(dir.path(), 3000, 17);
    let cut = synth_months(dir.path(), "202304..202502");
    let data = dir.path().join("data");
    let first = ingest(&cut, &data, KEY_A);
    assert!(
        !first.contains("ids "),
        "a first release has no previous ids: {first}"
    );
    let before = month_ordered_person_ids(&data);
    let second = ingest(&whole, &data, KEY_A);
    let after = month_ordered_person_ids(&data);

    let ids_line = second
        .lines()
        .find(|line| line.trim_start().starts_with("ids "))
        .unwrap_or_else(|| panic!("no ids line in {second}"));
    let figure = |name: &str| -> u64 {
        let words: Vec<&str> = ids_line
            .split([' ', ','])
            .filter(|w| !w.is_empty())
            .collect();
        let at = words.iter().position(|w| *w == name).unwrap();
        words[at + 1].parse().unwrap()
    };
    let (kept, merged, split) = (figure("kept"), figure("merged"), figure("split"));

    // Every previous person keeps its id unless the release reports it merged or split.
    let pairs = id_pairs(&before, &after);
    let previous: std::collections::HashSet<i64> = pairs.iter().map(|p| p.0).collect();
    let changed: std::collections::HashSet<i64> = pairs
        .iter()
        .filter(|(was, now)| was != now)
        .map(|p| p.0)
        .collect();
    assert!(previous.len() > 2500, "{}", previous.len());
    assert!(
        changed.len() as u64 <= merged + split,
        "{} persons changed id, {merged} merges and {split} splits reported: {ids_line}",
        changed.len()
    );
    assert!(
        changed.len() * 1000 <= previous.len(),
        "{} of {} persons changed id",
        changed.len(),
        previous.len()
    );
    assert!(
        kept as usize >= previous.len() - changed.len(),
        "{ids_line}"
    );
    // The new month's persons come after every previous id.
    let max_before = before.values().max().unwrap();
    let new_ids = after.values().filter(|id| !previous.contains(id));
    assert!(new_ids.into_iter().all(|id| id > max_before));

    // The same persons as an ingest of all months from nothing (whose dense
    // ids differ after the first split): one id maps to one id, both ways.
    let fresh = dir.path().join("fresh");
    ingest(&whole, &fresh, KEY_A);
    let fresh_ids = person_ids(&fresh);
    let mut forward = HashMap::new();
    let mut backward = HashMap::new();
    for (record, id) in person_ids(&data) {
        let fresh_id = fresh_ids[&record];
        assert_eq!(*forward.entry(id).or_insert(fresh_id), fresh_id);
        assert_eq!(*backward.entry(fresh_id).or_insert(id), id);
    }
}

/// The extracts of `months` (`YYYYMM..YYYYMM`) of the 3,000-person
/// population of seed 17, in `dir/months-<months>`.
fn synth_months(dir: &Path, months: &str) -> PathBuf {
    synth_months_of(dir, 3000, 17, months)
}

/// The extracts of `months` of the population of `persons` and `seed`.
fn synth_months_of(dir: &Path, persons: u64, seed: u64, months: &str) -> PathBuf {
    let out = dir.join(format!("months-{months}"));
    enclave_ok(
        &[
            "synth",
            "--persons",
            &persons.to_string(),
            "--seed",
            &seed.to_string(),
            "--out",
            out.to_str().unwrap(),
            "--months",
            months,
        ],
        None,
    );
    out
}

/// The figure after `name` on the summary's `ids` line.
fn ids_figure(summary: &str, name: &str) -> u64 {
    let line = summary
        .lines()
        .find(|line| line.trim_start().starts_with("ids "))
        .unwrap_or_else(|| panic!("no ids line in {summary}"));
    let words: Vec<&str> = line.split([' ', ',']).filter(|w| !w.is_empty()).collect();
    let at = words.iter().position(|w| *w == name).unwrap();
    words[at + 1].parse().unwrap()
}

/// The previous ids the newest release's `linkage/id_changes.parquet`
/// lists as merged or split.
fn reported_changes(data: &Path) -> std::collections::HashSet<i64> {
    let mut ids = std::collections::HashSet::new();
    for batch in read_parquet(&latest_release(data).join("linkage/id_changes.parquet")) {
        let previous = batch.column(1).as_primitive::<Int64Type>().clone();
        ids.extend(previous.values().iter().copied());
    }
    ids
}

/// The truth of extracts cut by month, one cut after another, as
/// `enclave linkage-eval` reads it (record numbers continue).
fn concatenated_truth(cuts: &[&Path], out: &Path) {
    std::fs::create_dir_all(out).unwrap();
    for source in ["ndb", "dpc", "care_claims", "care_certifications"] {
        let mut text = String::from("record_seq,person\n");
        let mut seq = 0;
        for cut in cuts {
            let file = std::fs::read_to_string(cut.join(format!("truth/{source}.csv"))).unwrap();
            for line in file.lines().skip(1) {
                let (_, person) = line.split_once(',').unwrap();
                text.push_str(&format!("{seq},{person}\n"));
                seq += 1;
            }
        }
        std::fs::write(out.join(format!("{source}.csv")), text).unwrap();
    }
}

/// `enclave linkage-eval` of the newest release of `data` against `truth`.
fn linkage_report(data: &Path, truth: &Path) -> serde_json::Value {
    serde_json::from_str(&enclave_ok(
        &[
            "linkage-eval",
            "--truth",
            truth.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ],
        None,
    ))
    .unwrap()
}

/// The union F1 of the newest release of `data` against `truth`.
fn union_f1(data: &Path, truth: &Path) -> f64 {
    linkage_report(data, truth)["union"]["f1"].as_f64().unwrap()
}

/// The inode of every file under a release's `tables/`, by relative path.
fn table_inodes(release: &Path) -> HashMap<PathBuf, u64> {
    use std::os::unix::fs::MetadataExt as _;
    files_under(&release.join("tables"))
        .into_iter()
        .map(|file| {
            let inode = std::fs::metadata(&file).unwrap().ino();
            (file.strip_prefix(release).unwrap().to_path_buf(), inode)
        })
        .collect()
}

#[test]
fn appending_months_gives_the_tables_and_linkage_of_one_full_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let cuts = [
        synth_months(dir.path(), "202304..202412"),
        synth_months(dir.path(), "202501..202502"),
        synth_months(dir.path(), "202503..202503"),
    ];
    let data = dir.path().join("data");
    ingest(&cuts[0], &data, KEY_A);
    for cut in &cuts[1..] {
        let base = latest_release(&data);
        let before = month_ordered_person_ids(&data);
        let summary = ingest_with(cut, &data, KEY_A, &["--append"]);
        assert!(summary.contains("(appended)"), "{summary}");

        // Every earlier person keeps its id but those reported merged or
        // split.
        let reported = reported_changes(&data);
        let (merged, split) = (
            ids_figure(&summary, "merged"),
            ids_figure(&summary, "split"),
        );
        assert_eq!(reported.len() as u64, merged + split, "{summary}");
        let after = month_ordered_person_ids(&data);
        let changed: std::collections::HashSet<i64> = id_pairs(&before, &after)
            .into_iter()
            .filter(|(was, now)| was != now)
            .map(|(was, _)| was)
            .collect();
        assert!(
            changed.is_subset(&reported),
            "{changed:?} changed, {reported:?} reported"
        );
        let previous: std::collections::HashSet<i64> = before.values().copied().collect();
        assert!(changed.len() * 1000 <= previous.len(), "{summary}");
        let max_before = previous.iter().max().unwrap();
        assert!(
            after
                .values()
                .all(|id| previous.contains(id) || id > max_before)
        );

        // The earlier months' files are shared, not written again, but
        // those holding a record whose person changed.
        let now = latest_release(&data);
        let (base_files, now_files) = (table_inodes(&base), table_inodes(&now));
        let mut shared = 0;
        for (path, inode) in &base_files {
            let is_shared = now_files.get(path) == Some(inode);
            let persons = |release: &Path| {
                let mut rows: Vec<(i64, i64)> = read_parquet(&release.join(path))
                    .iter()
                    .flat_map(|batch| {
                        let column = |i: usize| batch.column(i).as_primitive::<Int64Type>().clone();
                        let (ids, persons) = (column(0), column(1));
                        ids.values()
                            .iter()
                            .copied()
                            .zip(persons.values().iter().copied())
                            .collect::<Vec<_>>()
                    })
                    .collect();
                rows.sort_unstable();
                rows
            };
            assert_eq!(
                is_shared,
                persons(&base) == persons(&now),
                "{}",
                path.display()
            );
            shared += usize::from(is_shared);
        }
        assert!(shared > 0, "no file shared");
        assert!(now_files.len() > base_files.len(), "the new months' files");
    }

    // The same rows as one ingest of every month (ids are the release's own).
    let whole = synth(dir.path(), 3000, 17);
    let fresh = dir.path().join("fresh");
    ingest(&whole, &fresh, KEY_A);
    let ids = [
        "person_id",
        "receipt_id",
        "admission_id",
        "claim_id",
        "certification_id",
    ];
    let (appended, full) = (sorted_tables(&data, &ids), sorted_tables(&fresh, &ids));
    assert!(appended["ndb.receipts"].len() > 20_000);
    assert_eq!(appended, full);

    // The same linkage as the full ingest's: every month's records linked
    // again with the earlier months' key occurrences.
    let truth = dir.path().join("truth");
    concatenated_truth(
        &cuts.iter().map(|cut| cut.as_path()).collect::<Vec<_>>(),
        &truth,
    );
    let (appended_f1, full_f1) = (
        union_f1(&data, &truth),
        union_f1(&fresh, &whole.join("truth")),
    );
    assert_eq!(appended_f1, full_f1);
}

#[test]
fn an_append_refuses_months_already_published_another_key_and_an_empty_store() {
    let dir = tempfile::tempdir().unwrap();
    let first = synth_months(dir.path(), "202304..202306");
    let again = synth_months(dir.path(), "202306..202307");
    let data = dir.path().join("data");
    let refused = |extracts: &Path, data: &Path, key: &str| {
        let output = enclave(&ingest_args(extracts, data, &["--append"]), Some(key));
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let empty = refused(&first, &data, KEY_A);
    assert!(
        empty.contains("--append: the data store has no release"),
        "{empty}"
    );
    ingest(&first, &data, KEY_A);
    let published = latest_release(&data);
    let overlap = refused(&again, &data, KEY_A);
    assert!(
        overlap.contains("is not after the newest release's last month"),
        "{overlap}"
    );
    let other_key = refused(&again, &data, KEY_B);
    assert!(other_key.contains("another secret key"), "{other_key}");
    assert_eq!(latest_release(&data), published);
    assert_eq!(std::fs::read_dir(data.join("releases")).unwrap().count(), 1);
}

#[test]
fn a_killed_append_leaves_the_previous_release_readable_and_the_next_append_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let first = synth_months(dir.path(), "202304..202409");
    let later = synth_months(dir.path(), "202410..202503");
    let data = dir.path().join("data");
    let spill = dir.path().join("spill");
    ingest(&first, &data, KEY_A);
    let before = latest_release(&data);
    let manifest_before = std::fs::read(before.join("manifest.json")).unwrap();
    let ids_before = person_ids(&data);
    let staged = data.join("releases/r000002");
    assert!(
        kill_while_writing(&later, &data, &["--append"], &spill, &staged),
        "the kill landed after the append was published"
    );
    assert_eq!(
        latest_release(&data),
        before,
        "a killed append published a release"
    );
    assert_eq!(
        std::fs::read(before.join("manifest.json")).unwrap(),
        manifest_before
    );
    for file in files_under(&before.join("tables")) {
        assert!(!read_parquet(&file).is_empty());
    }
    assert_eq!(person_ids(&data), ids_before);

    let summary = ingest_with(
        &later,
        &data,
        KEY_A,
        &["--append", "--spill-dir", spill.to_str().unwrap()],
    );
    assert!(!staged.exists(), "the half-written release was not swept");
    assert!(summary.contains("from r000001 (appended)"), "{summary}");
    let (after, reported) = (person_ids(&data), reported_changes(&data));
    for (record, id) in &ids_before {
        if record.0 != "care_certifications" && !reported.contains(id) {
            assert_eq!(after[record], *id);
        }
    }
}

/// The linkage report of the newest release.
fn published_linkage_report(data: &Path) -> serde_json::Value {
    let report = std::fs::read(latest_release(data).join("linkage/report.json")).unwrap();
    serde_json::from_slice(&report).unwrap()
}

#[test]
fn worker_processes_publish_the_release_one_process_publishes() {
    let dir = tempfile::tempdir().unwrap();
    let first = synth_months_of(dir.path(), 3000, 13, "202304..202412");
    let later = synth_months_of(dir.path(), 3000, 13, "202501..202503");
    let (alone, shared) = (dir.path().join("alone"), dir.path().join("shared"));
    let spill = dir.path().join("spill");
    // 40 MB cuts the extracts into chunks, several per worker.
    let small = ["--memory-mb", "40"];
    let workers = [
        &small[..],
        &[
            "--workers",
            "3",
            "--spill-dir",
            spill.to_str().unwrap(),
            "--keep-spill",
        ],
    ]
    .concat();
    let one_process = ingest_with(&first, &alone, KEY_A, &small);
    let summary = ingest_with(&first, &shared, KEY_A, &workers);
    // The workers' spill counts: they spill what one process would.
    assert!(
        spilled_mb(&summary) >= spilled_mb(&one_process),
        "{summary}\n{one_process}"
    );
    assert!(summary.contains("each worker at most"), "{summary}");
    let shard_dirs: Vec<String> = std::fs::read_dir(&spill)
        .unwrap()
        .flat_map(|spilled| std::fs::read_dir(spilled.unwrap().path()).unwrap())
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("keys-0") || name.starts_with("tables-"))
        .collect();
    for pass in ["keys", "tables"] {
        for shard in 0..3 {
            let name = format!("{pass}-{shard:03}");
            assert!(shard_dirs.contains(&name), "{name}: {shard_dirs:?}");
        }
    }
    let same_release = |what: &str| {
        let tables = sorted_tables(&alone, &[]);
        assert!(tables["ndb.receipts"].len() > 10_000);
        assert!(
            tables == sorted_tables(&shared, &[]),
            "{what}: the same rows, ids included"
        );
        assert!(
            person_ids(&alone) == person_ids(&shared),
            "{what}: the same persons"
        );
        assert_eq!(
            published_linkage_report(&alone),
            published_linkage_report(&shared),
            "{what}"
        );
    };
    same_release("a full ingest");

    ingest_with(&later, &alone, KEY_A, &["--append"]);
    let summary = ingest_with(&later, &shared, KEY_A, &["--append", "--workers", "2"]);
    assert!(summary.contains("(appended)"), "{summary}");
    same_release("an append");
}

/// An executable shell script `dir/name` with `body` after the shebang.
fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn a_worker_launcher_starts_every_worker_and_the_release_is_the_same() {
    let dir = tempfile::tempdir().unwrap();
    // The launched ingest below names these relative to `dir`.
    let extracts = synth(dir.path(), 3000, 17);
    let (alone, launched) = (dir.path().join("alone"), dir.path().join("launched"));
    std::fs::write(dir.path().join("key"), KEY_A).unwrap();
    let log = dir.path().join("launches.log");
    // What a launcher around `ssh` does: place the worker (here, note where
    // it would go), land in another directory, and run its command line,
    // input and status passed through.
    write_script(
        dir.path(),
        "launch.sh",
        &format!(
            "echo \"$ENCLAVE_WORKER_PASS $ENCLAVE_WORKER_INDEX $# $2\" >> '{}'\ncd /\nexec \"$@\"",
            log.display()
        ),
    );
    // 40 MB cuts the extracts into chunks, so that pass 2 has two shards.
    ingest_with(&extracts, &alone, KEY_A, &["--memory-mb", "40"]);
    // Relative paths, which the workers, elsewhere, get as absolute ones.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_enclave"))
        .current_dir(dir.path())
        .args(["ingest", "--extracts", "extracts", "--data", "launched"])
        .args([
            "--key-file",
            "key",
            "--spill-dir",
            "spill",
            "--memory-mb",
            "40",
        ])
        .args(["--workers", "2", "--worker-launcher", "./launch.sh"])
        .env_remove("ENCLAVE_PSEUDONYM_KEY")
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{summary}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(summary.contains("each worker at most"), "{summary}");
    let mut launches: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    launches.sort();
    // The worker's command line: the program, `ingest-worker` and the key
    // source (`--key-file PATH`), four arguments.
    assert_eq!(
        launches,
        [
            "keys 0 4 ingest-worker",
            "keys 1 4 ingest-worker",
            "tables 0 4 ingest-worker",
            "tables 1 4 ingest-worker"
        ]
    );
    assert!(sorted_tables(&alone, &[]) == sorted_tables(&launched, &[]));
    assert!(person_ids(&alone) == person_ids(&launched));
}

#[test]
fn a_launcher_that_cannot_start_a_worker_stops_the_ingest_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let extracts = synth(dir.path(), 200, 17);
    let data = dir.path().join("data");
    let unreachable = write_script(
        dir.path(),
        "unreachable.sh",
        "echo \"ssh: connect to host node-$ENCLAVE_WORKER_INDEX: No route to host\" >&2\nexit 255",
    );
    let missing = dir.path().join("no-such-launcher");
    let cases = [
        (unreachable.to_str().unwrap(), "No route to host"),
        (missing.to_str().unwrap(), "cannot start"),
    ];
    for (launcher, error) in cases {
        let args = ingest_args(
            &extracts,
            &data,
            &["--workers", "2", "--worker-launcher", launcher],
        );
        let output = enclave(&args, Some(KEY_A));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{launcher}");
        assert!(stderr.contains(error), "{launcher}: {stderr}");
        assert!(!data.join("releases").exists() || files_under(&data.join("releases")).is_empty());
    }
    let args = ingest_args(&extracts, &data, &["--worker-launcher", "/bin/true"]);
    let output = enclave(&args, Some(KEY_A));
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("give --workers N too"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
