#!/usr/bin/env bash
# The test command of README.md: formatting, lints, every test of the workspace,
# then the end-to-end suite (tests/python) against a debug `enclave serve`:
# with embedded state, with the state in PostgreSQL, and with the release on
# S3 and queries on a local Ballista cluster.
# Reuses a cargo target directory outside the clone when one exists.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/enclave-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
# Servers the tests use, from the project's own scripts; each prints its URL
# as its first line once it serves, and all stop when this script ends.
log="$(mktemp)"
servers=()
scratch=("$log")
stop_servers() {
    for pid in "${servers[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -f "${scratch[@]}"
}
trap stop_servers EXIT
start_server() { # variable script: starts script, sets variable to its URL
    local out errors
    out="$(mktemp)"
    errors="$(mktemp)"
    scratch+=("$out" "$errors")
    "$2" >"$out" 2>"$errors" &
    servers+=($!)
    while ! [ -s "$out" ]; do
        if ! kill -0 "$!" 2>/dev/null; then
            cat "$errors" >&2
            return 1
        fi
        sleep 0.2
    done
    printf -v "$1" '%s' "$(head -n1 "$out")"
    echo "${!1}"
}
venv="$(scripts/python-env.sh | tail -n1)"
postgres_url="" s3_url=""
# A throwaway PostgreSQL (Debian's packages) for the state database: the
# state store's tests and the second end-to-end pass use it.
echo "== PostgreSQL for the state database tests"
start_server postgres_url scripts/postgres-server.sh
export ENCLAVE_TEST_POSTGRES="$postgres_url"
# A local S3 (moto) with one bucket for the data store's multipart test.
echo "== S3-compatible server for the data store tests"
start_server s3_url scripts/s3-server.sh
"$venv/bin/python" -c 'import sys, boto3
boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="enclave-test",
             aws_secret_access_key="enclave-test").create_bucket(Bucket="enclave-store-test")' "$s3_url"
export ENCLAVE_TEST_S3_ENDPOINT="$s3_url"
echo "== cargo test"
cargo test --workspace --locked --lib --bins --tests 2>&1 | tee "$log"
echo "== end-to-end (Python Flight SQL clients against enclave serve)"
# `cargo test` built the binary for the integration tests (same features as
# the test build); a separate `cargo build` would compile DataFusion again.
ENCLAVE_BIN="$CARGO_TARGET_DIR/debug/enclave" "$venv/bin/python" -m pytest tests/python -q -p no:cacheprovider 2>&1 | tee -a "$log"
echo "== end-to-end again, users, projects and applications in PostgreSQL (--state-db)"
ENCLAVE_TEST_STATE_DB="$postgres_url" ENCLAVE_BIN="$CARGO_TARGET_DIR/debug/enclave" \
    "$venv/bin/python" -m pytest tests/python -q -p no:cacheprovider 2>&1 | tee -a "$log"
echo "== end-to-end again, the release on S3 and queries on a Ballista cluster (infra/local-cluster.sh)"
ENCLAVE_TEST_CLUSTER=1 ENCLAVE_BIN="$CARGO_TARGET_DIR/debug/enclave" \
    "$venv/bin/python" -m pytest tests/python -q -p no:cacheprovider 2>&1 | tee -a "$log"
# One closing line over every test binary of the run and the pytest suite.
awk '/^test result:/ { passed += $4; failed += $6 }
     / passed| failed/ && /^[=]* *[0-9]+ (passed|failed)/ {
         for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed/) e2e_passed += $(i-1); if ($(i) ~ /^failed/ || $(i) ~ /^errors?/) e2e_failed += $(i-1) } }
     END { printf "tests: %d passed, %d failed (cargo); %d passed, %d failed (end-to-end)\n", passed, failed, e2e_passed, e2e_failed
           exit (passed == 0 || failed > 0 || e2e_passed == 0 || e2e_failed > 0) }' "$log"
