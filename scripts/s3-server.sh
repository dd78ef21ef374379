#!/usr/bin/env bash
# A local S3-compatible server (moto_server from the end-to-end venv) on a free
# loopback port, for the audit archive (`enclave serve --audit-archive`).
# Prints the endpoint URL on standard output once the server answers, then
# runs until it is stopped (Ctrl-C or SIGTERM); its request log goes to stderr.
#   scripts/s3-server.sh            # e.g. http://127.0.0.1:40123
#   export AWS_ENDPOINT_URL=http://127.0.0.1:40123 AWS_REGION=us-east-1 \
#          AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
# moto under-enforces Object Lock: it lets COMPLIANCE retention be shortened
# or turned into GOVERNANCE, which real S3 refuses (docs/audit.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$("$root/scripts/python-env.sh" | tail -n1)"
python="$venv/bin/python"
deadline_secs="${S3_SERVER_START_SECS:-30}"

port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"

"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >&2 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT
trap 'exit 0' INT TERM

# Any HTTP answer (moto answers / with 200) means it serves.
if ! "$python" - "$url" "$deadline_secs" <<'EOF' >&2; then
import sys, time, urllib.error, urllib.request
url, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    try:
        urllib.request.urlopen(url, timeout=1).close()
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
print(f"moto_server did not answer on {url}", file=sys.stderr)
sys.exit(1)
EOF
    exit 1
fi
echo "$url"
wait "$server"
