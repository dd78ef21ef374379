//! The generator is deterministic and writes files in the documented layouts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use enclave_core::card::InsurerNumber;
use enclave_synth::{SynthConfig, generate};

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path)
            } else {
                files.push(path)
            }
        }
    }
    files.sort();
    files
}

fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    files_under(dir)
        .into_iter()
        .map(|f| {
            (
                f.strip_prefix(dir).unwrap().to_path_buf(),
                std::fs::read(&f).unwrap(),
            )
        })
        .collect()
}

fn synth(dir: &Path, persons: u64, seed: u64) -> enclave_synth::SynthSummary {
    generate(&SynthConfig::new(persons, seed, dir)).unwrap()
}

#[test]
fn the_same_seed_gives_byte_identical_extracts_and_another_seed_does_not() {
    let root = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        root.path().join("a"),
        root.path().join("b"),
        root.path().join("c"),
    );
    synth(&a, 600, 1);
    synth(&b, 600, 1);
    synth(&c, 600, 2);
    let (tree_a, tree_b, tree_c) = (tree(&a), tree(&b), tree(&c));
    assert!(tree_a.len() > 50);
    assert!(tree_a == tree_b, "same seed, different output");
    assert!(tree_a != tree_c, "another seed, same output");
}

#[test]
fn months_cut_one_by_one_add_up_to_the_whole_run() {
    let root = tempfile::tempdir().unwrap();
    let whole_dir = root.path().join("whole");
    synth(&whole_dir, 600, 3);
    let whole = tree(&whole_dir);
    let month = |yyyymm: &str| enclave_core::date::YearMonth::parse_yyyymm(yyyymm).unwrap();
    let cuts = [("202304", "202502"), ("202503", "202503")];
    let mut certification_lines: BTreeMap<PathBuf, Vec<Vec<u8>>> = BTreeMap::new();
    let mut month_files = 0;
    for (index, (first, last)) in cuts.into_iter().enumerate() {
        let dir = root.path().join(format!("cut{index}"));
        generate(&SynthConfig::new(600, 3, &dir).with_months(month(first), month(last))).unwrap();
        for (path, bytes) in tree(&dir) {
            if path.starts_with("truth") {
                continue;
            }
            if path.parent() == Some(Path::new("care")) {
                // Certifications of all months in one file per insurer: each
                // cut holds the lines of its months.
                let lines = certification_lines.entry(path).or_default();
                lines.extend(bytes.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec));
                continue;
            }
            let dir_month = path.iter().nth(1).unwrap().to_str().unwrap();
            assert!(
                (first..=last).contains(&dir_month),
                "{path:?} outside {first}..{last}"
            );
            assert!(
                whole[&path] == bytes,
                "{path:?} differs from the whole run's"
            );
            month_files += 1;
        }
    }
    let whole_month_files = whole
        .keys()
        .filter(|path| !path.starts_with("truth") && path.parent() != Some(Path::new("care")))
        .count();
    assert_eq!(month_files, whole_month_files, "a month's file is missing");
    for (path, mut lines) in certification_lines {
        let mut whole_lines: Vec<Vec<u8>> = whole[&path]
            .split_inclusive(|&b| b == b'\n')
            .map(<[u8]>::to_vec)
            .collect();
        lines.sort();
        whole_lines.sort();
        assert_eq!(
            lines, whole_lines,
            "{path:?}: the cuts' lines are not the whole's"
        );
    }
}

#[test]
fn a_non_empty_output_directory_is_refused() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("keep.txt"), "x").unwrap();
    assert!(generate(&SynthConfig::new(10, 1, root.path())).is_err());
}

fn uke_files(dir: &Path) -> Vec<PathBuf> {
    files_under(&dir.join("ndb"))
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "UKE"))
        .collect()
}

#[test]
fn receipt_files_follow_the_uke_layout() {
    let root = tempfile::tempdir().unwrap();
    let summary = synth(root.path(), 800, 3);
    let mut receipts = 0;
    for file in uke_files(root.path()) {
        let bytes = std::fs::read(&file).unwrap();
        let (text, _, malformed) = encoding_rs::SHIFT_JIS.decode(&bytes);
        assert!(!malformed, "{} is not CP932", file.display());
        assert!(
            text.ends_with("\r\n") && !text.replace("\r\n", "").contains('\n'),
            "CRLF only"
        );
        let lines: Vec<&str> = text.trim_end().split("\r\n").collect();
        assert!(lines[0].starts_with("IR,") && lines.last().unwrap().starts_with("GO,"));
        for line in &lines {
            let fields: Vec<&str> = line.split(',').collect();
            match fields[0] {
                "RE" => receipts += 1,
                "HO" => assert!(
                    InsurerNumber::parse(fields[1]).is_ok(),
                    "bad insurer number in {line}"
                ),
                _ => {}
            }
        }
    }
    assert_eq!(receipts, summary.ndb_receipts);
}

fn truth_rows(dir: &Path, name: &str) -> u64 {
    std::fs::read_to_string(dir.join("truth").join(name))
        .unwrap()
        .lines()
        .count() as u64
        - 1
}

#[test]
fn truth_has_one_row_per_identity_record() {
    let root = tempfile::tempdir().unwrap();
    let summary = synth(root.path(), 1500, 4);
    assert_eq!(truth_rows(root.path(), "ndb.csv"), summary.ndb_receipts);
    assert_eq!(truth_rows(root.path(), "dpc.csv"), summary.dpc_admissions);
    assert_eq!(
        truth_rows(root.path(), "care_claims.csv"),
        summary.care_claims
    );
    assert_eq!(
        truth_rows(root.path(), "care_certifications.csv"),
        summary.care_certifications
    );
    assert_eq!(truth_rows(root.path(), "persons.csv"), 1500);
    let k_rows: u64 = files_under(&root.path().join("dpc"))
        .iter()
        .filter(|f| f.file_name().unwrap().to_string_lossy().starts_with("K_"))
        .map(|f| {
            std::fs::read(f)
                .unwrap()
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count() as u64
        })
        .sum();
    assert_eq!(k_rows, summary.dpc_admissions);
}

#[test]
fn a_population_lives_through_the_events_that_break_linkage() {
    let root = tempfile::tempdir().unwrap();
    let summary = synth(root.path(), 20_000, 5);
    for event in [
        "job_change",
        "retirement",
        "turned_75",
        "marriage",
        "marriage_and_job_change",
        "twin",
    ] {
        assert!(
            summary.events.get(event).copied().unwrap_or(0) >= 10,
            "too few {event}: {:?}",
            summary.events
        );
    }
    assert!(
        summary.care_claims > 1000 && summary.dpc_admissions > 100,
        "{summary}"
    );
    // Facilities write kana both ways: half-width katakana appear in some files only.
    let files = uke_files(root.path());
    let halfwidth = |f: &PathBuf| {
        let bytes = std::fs::read(f).unwrap();
        encoding_rs::SHIFT_JIS
            .decode(&bytes)
            .0
            .chars()
            .any(|c| ('\u{FF61}'..='\u{FF9F}').contains(&c))
    };
    let with_halfwidth = files.iter().filter(|f| halfwidth(f)).count();
    assert!(with_halfwidth > 0 && with_halfwidth < files.len());
}
