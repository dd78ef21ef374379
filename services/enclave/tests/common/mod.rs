//! Shared helpers of the end-to-end tests: they drive the real `enclave`
//! binary on synthetic extracts in temporary directories.

#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const KEY_A: &str = "0123456789abcdef0123456789abcdef-steward-key-A";
pub const KEY_B: &str = "fedcba9876543210fedcba9876543210-steward-key-B";

/// Runs `enclave` with `args`, the secret in the environment.
pub fn enclave(args: &[&str], key: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_enclave"));
    command.args(args).env_remove("ENCLAVE_PSEUDONYM_KEY");
    if let Some(key) = key {
        command.env("ENCLAVE_PSEUDONYM_KEY", key);
    }
    command.output().expect("run enclave")
}

/// Runs `enclave` and insists it succeeds.
pub fn enclave_ok(args: &[&str], key: Option<&str>) -> String {
    let output = enclave(args, key);
    assert!(
        output.status.success(),
        "enclave {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// Writes a synthetic population's extracts to `dir/extracts`.
pub fn synth(dir: &Path, persons: u64, seed: u64) -> PathBuf {
    let out = dir.join("extracts");
    let persons = persons.to_string();
    let seed = seed.to_string();
    enclave_ok(
        &[
            "synth",
            "--persons",
            &persons,
            "--seed",
            &seed,
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    out
}

/// Ingests `extracts` into `data` with `key`.
pub fn ingest(extracts: &Path, data: &Path, key: &str) -> String {
    ingest_with(extracts, data, key, &[])
}

/// Ingests `extracts` into `data` with `key` and `extra` arguments.
pub fn ingest_with(extracts: &Path, data: &Path, key: &str, extra: &[&str]) -> String {
    enclave_ok(&ingest_args(extracts, data, extra), Some(key))
}

/// The arguments of `enclave ingest` of `extracts` into `data`, then `extra`.
pub fn ingest_args<'a>(extracts: &'a Path, data: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "ingest",
        "--extracts",
        extracts.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The newest published release directory of a data directory.
pub fn latest_release(data: &Path) -> PathBuf {
    let mut releases: Vec<PathBuf> = std::fs::read_dir(data.join("releases"))
        .expect("releases dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("manifest.json").exists())
        .collect();
    releases.sort();
    releases.pop().expect("a published release")
}
