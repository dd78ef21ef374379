#!/usr/bin/env bash
# A throwaway PostgreSQL server from Debian's packages (installed with apt-get
# when missing; needs root or sudo) on a free loopback port, for the state
# database tests (`--state-db`). The cluster lives in a temporary directory,
# trusts loopback connections and skips fsync: a test server, never a
# deployment (see infra/README.md). Prints the server URL on standard output
# once it accepts connections, then runs until stopped (Ctrl-C or SIGTERM)
# and deletes the cluster.
#   scripts/postgres-server.sh          # e.g. postgres://postgres@127.0.0.1:40123
#   export ENCLAVE_STATE_DB=postgres://postgres@127.0.0.1:40123/postgres
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

bin_dir() { find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -n1; }
if [ -z "$(bin_dir)" ] || ! command -v psql >/dev/null; then
    "$root/scripts/apt-install.sh" postgresql
fi
bin="$(bin_dir)"

# PostgreSQL refuses to run as root; Debian's package made a `postgres` user.
as_server_user=()
cluster="$(mktemp -d)"
if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$cluster"
    as_server_user=(runuser -u postgres --)
fi

venv="$("$root/scripts/python-env.sh" | tail -n1)"
port="$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

"${as_server_user[@]}" "$bin/initdb" -D "$cluster/data" -U postgres -A trust -E UTF8 --no-sync >&2
"${as_server_user[@]}" "$bin/postgres" -D "$cluster/data" -h 127.0.0.1 -p "$port" -k "$cluster" \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off >&2 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$cluster"' EXIT
trap 'exit 0' INT TERM

for _ in $(seq 1 100); do
    if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres; then
        echo "postgres://postgres@127.0.0.1:$port"
        wait "$server"
        exit 0
    fi
    sleep 0.1
done
echo "PostgreSQL did not accept connections on port $port" >&2
exit 1
