#!/usr/bin/env bash
# The test command of README.md: formatting, lints, every test of the workspace,
# then the end-to-end suite (tests/python) against a debug `enclave serve`,
# once with embedded state and once with the state in PostgreSQL.
# Reuses a cargo target directory outside the clone when one exists.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/enclave-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
# A throwaway PostgreSQL (Debian's packages) for the state database runs:
# the state store's tests and the second end-to-end pass use it.
echo "== PostgreSQL for the state database tests"
log="$(mktemp)"
postgres_log="$(mktemp)"
coproc POSTGRES { exec scripts/postgres-server.sh 2>"$postgres_log"; }
trap 'kill "$POSTGRES_PID" 2>/dev/null || true; wait "$POSTGRES_PID" 2>/dev/null || true; rm -f "$log" "$postgres_log"' EXIT
read -r postgres_url <&"${POSTGRES[0]}" || { cat "$postgres_log" >&2; exit 1; }
echo "$postgres_url"
export ENCLAVE_TEST_POSTGRES="$postgres_url"
echo "== cargo test"
cargo test --workspace --locked --lib --bins --tests 2>&1 | tee "$log"
echo "== end-to-end (Python Flight SQL clients against enclave serve)"
venv="$(scripts/python-env.sh | tail -n1)"
# `cargo test` built the binary for the integration tests (same features as
# the test build); a separate `cargo build` would compile DataFusion again.
ENCLAVE_BIN="$CARGO_TARGET_DIR/debug/enclave" "$venv/bin/python" -m pytest tests/python -q -p no:cacheprovider 2>&1 | tee -a "$log"
echo "== end-to-end again, users, projects and applications in PostgreSQL (--state-db)"
ENCLAVE_TEST_STATE_DB="$postgres_url" ENCLAVE_BIN="$CARGO_TARGET_DIR/debug/enclave" \
    "$venv/bin/python" -m pytest tests/python -q -p no:cacheprovider 2>&1 | tee -a "$log"
# One closing line over every test binary of the run and the pytest suite.
awk '/^test result:/ { passed += $4; failed += $6 }
     / passed| failed/ && /^[=]* *[0-9]+ (passed|failed)/ {
         for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed/) e2e_passed += $(i-1); if ($(i) ~ /^failed/ || $(i) ~ /^errors?/) e2e_failed += $(i-1) } }
     END { printf "tests: %d passed, %d failed (cargo); %d passed, %d failed (end-to-end)\n", passed, failed, e2e_passed, e2e_failed
           exit (passed == 0 || failed > 0 || e2e_passed == 0 || e2e_failed > 0) }' "$log"
