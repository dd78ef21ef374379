#!/usr/bin/env bash
# The test command of README.md: formatting, lints, unused dependencies, the
# API documentation (warnings denied), every test of the workspace,
# then the end-to-end suite (tests/python) against a debug `enclave serve`:
# with embedded state, with the state in PostgreSQL, and with the release on
# S3 and queries on a local Ballista cluster.
# Reuses a cargo target directory outside the clone when one exists.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/enclave-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

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
    rm -rf "${scratch[@]}"
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
# Each phase prints its start and, at the next phase or the end, its time.
phase_name="" phase_start=$SECONDS run_start=$SECONDS
phase() {
    if [ -n "$phase_name" ]; then
        echo "-- $phase_name: $((SECONDS - phase_start)) s"
    fi
    phase_name="$1" phase_start=$SECONDS
    [ -z "$1" ] || echo "== $1"
}

phase "cargo fmt --check, unused dependencies"
cargo fmt --all -- --check
python3 scripts/unused-deps.py
# Clippy lints the workspace while the test build compiles it: clippy-driver
# wraps rustc for the workspace's own crates (as `cargo clippy` does, but
# with code generation), so the dependency graph is compiled once, not a
# second time in check mode. Same lints and flags as
# `cargo clippy --workspace --all-targets -- -D warnings`.
phase "cargo clippy + test build"
RUSTC_WORKSPACE_WRAPPER="$(rustc --print sysroot)/bin/clippy-driver"
CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
export RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
# The end-to-end clients (pip) and the browser (apt) install meanwhile.
prepared="$(mktemp)" prepare_log="$(mktemp)"
scratch+=("$prepared" "$prepare_log")
(scripts/python-env.sh >"$prepared" && scripts/browser-env.sh >/dev/null) 2>"$prepare_log" &
prepare=$!
servers+=("$prepare")
cargo test --workspace --all-targets --locked --no-run
# The API documentation, warnings denied (broken intra-doc links, bad
# HTML). Rustdoc needs a check-mode build of the dependency graph, which the
# test build cannot lend it: it runs in a target directory of its own, at
# the lowest priority, while the tests run, and is awaited at the end.
docs_log="$(mktemp)"
scratch+=("$docs_log")
(env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS RUSTDOCFLAGS="-D warnings" \
    CARGO_TARGET_DIR="$CARGO_TARGET_DIR/rustdoc" nice -n 19 \
    cargo doc --workspace --no-deps --locked) >"$docs_log" 2>&1 &
docs=$!
servers+=("$docs")
phase "Python clients and browser (scripts/python-env.sh, scripts/browser-env.sh)"
if ! wait "$prepare"; then
    cat "$prepare_log" >&2
    exit 1
fi
venv="$(tail -n1 "$prepared")"
postgres_url="" s3_url=""
# A throwaway PostgreSQL (Debian's packages) for the state database: the
# state store's tests and the second end-to-end pass use it.
phase "PostgreSQL for the state database tests"
start_server postgres_url scripts/postgres-server.sh
export ENCLAVE_TEST_POSTGRES="$postgres_url"
# A local S3 (moto) with one bucket for the data store's multipart test.
phase "S3-compatible server for the data store tests"
start_server s3_url scripts/s3-server.sh
"$venv/bin/python" -c 'import sys, boto3
boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="enclave-test",
             aws_secret_access_key="enclave-test").create_bucket(Bucket="enclave-store-test")' "$s3_url"
export ENCLAVE_TEST_S3_ENDPOINT="$s3_url"
phase "cargo test"
cargo test --workspace --locked --lib --bins --tests 2>&1 | tee "$log"
phase "end-to-end, three passes at once (Python Flight SQL clients against enclave serve)"
# The suite runs in three deployments: embedded state; users, projects and
# applications in PostgreSQL (--state-db); the release on S3 and queries on
# a Ballista cluster (infra/local-cluster.sh). They share nothing but the
# servers above, so they run at once, each with its own temporary directory
# and log (they mostly wait on servers: 916 s one after another, 519 s at
# once on 2 cores); each log ends with its 15 slowest tests. `cargo test`
# built the binary for the integration tests (same features as the test
# build); a separate `cargo build` would compile DataFusion again.
e2e_dir="$(mktemp -d)"
scratch+=("$e2e_dir")
passes=(embedded state-db cluster)
declare -A pass_env=([embedded]="" [state-db]="ENCLAVE_TEST_STATE_DB=$postgres_url" [cluster]="ENCLAVE_TEST_CLUSTER=1")
declare -A pass_pid=()
for pass in "${passes[@]}"; do
    # shellcheck disable=SC2086 # the pass's variable, one word or none
    env ${pass_env[$pass]} ENCLAVE_BIN="$CARGO_TARGET_DIR/debug/enclave" "$venv/bin/python" -m pytest tests/python \
        -q -p no:cacheprovider --durations=15 --basetemp "$e2e_dir/$pass" >"$e2e_dir/$pass.log" 2>&1 &
    pass_pid[$pass]=$!
    servers+=($!)
done
e2e_failed=0
for pass in "${passes[@]}"; do
    wait "${pass_pid[$pass]}" || e2e_failed=1
    echo "-- end-to-end, $pass:"
    tee -a "$log" <"$e2e_dir/$pass.log"
done
[ "$e2e_failed" -eq 0 ] || exit 1
phase "cargo doc --no-deps, warnings denied (built while the tests ran)"
if ! wait "$docs"; then
    cat "$docs_log" >&2
    exit 1
fi
phase ""
echo "-- total: $((SECONDS - run_start)) s"
# One closing line over every test binary of the run and the pytest suite.
awk '/^test result:/ { passed += $4; failed += $6 }
     / passed| failed/ && /^[=]* *[0-9]+ (passed|failed)/ {
         for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed/) e2e_passed += $(i-1); if ($(i) ~ /^failed/ || $(i) ~ /^errors?/) e2e_failed += $(i-1) } }
     END { printf "tests: %d passed, %d failed (cargo); %d passed, %d failed (end-to-end)\n", passed, failed, e2e_passed, e2e_failed
           exit (passed == 0 || failed > 0 || e2e_passed == 0 || e2e_failed > 0) }' "$log"
