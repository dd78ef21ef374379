#!/usr/bin/env bash
# The test command of README.md: formatting, lints, then every test of the workspace.
# Reuses a cargo target directory outside the clone when one exists.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/enclave-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked --lib --bins --tests 2>&1 | tee "$log"
# One closing line over every test binary of the run.
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed; exit (passed == 0 || failed > 0) }' "$log"
