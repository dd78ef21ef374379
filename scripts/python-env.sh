#!/usr/bin/env bash
# Creates (once) the Python environment of the end-to-end tests in tests/python and
# prints its path as the last line. Re-installs only when the requirements change.
#   VENV="$(scripts/python-env.sh | tail -n1)"
#   ENCLAVE_BIN=target/release/enclave "$VENV/bin/python" -m pytest tests/python -q
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${ENCLAVE_VENV:-$HOME/.cache/enclave-venv}"
req="$root/tests/python/requirements.txt"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    echo "creating $venv" >&2
    "$python" -m venv "$venv"
fi
want="$(sha256sum "$req" | cut -d' ' -f1)"
have="$(cat "$venv/.requirements.sha256" 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
    echo "installing $req" >&2
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req" >&2
    "$venv/bin/python" -c 'import adbc_driver_flightsql.dbapi, adbc_driver_manager, pyarrow.flight, grpc, duckdb, pytest, playwright.sync_api' >&2
    echo "$want" >"$venv/.requirements.sha256"
fi
echo "$venv"
