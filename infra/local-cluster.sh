#!/usr/bin/env bash
# A Ballista cluster on loopback for `enclave serve --engine ballista://…`:
# one scheduler and N executors (default 2), all over the same data store as
# the front ends. Prints the engine URL (ballista://127.0.0.1:PORT) as its
# first line once every executor has registered, then runs until stopped;
# stopping it (SIGINT/SIGTERM) stops every process it started.
#
#   infra/local-cluster.sh --data DIR|s3://bucket/prefix [--executors N]
#                          [--task-slots N] [--memory-mb MiB] [--work DIR]
#
# ENCLAVE_BIN names the enclave binary (default: `enclave` on PATH). An S3
# store is configured through the AWS environment, as for `enclave serve`.
# Logs and shuffle files go under --work (default: a new temporary
# directory, deleted on exit).
set -euo pipefail

usage() {
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

enclave="${ENCLAVE_BIN:-enclave}"
data="" executors=2 work="" slots=() memory=()
while [ $# -gt 0 ]; do
    case "$1" in
    --data) data="${2:?}"; shift 2 ;;
    --executors) executors="${2:?}"; shift 2 ;;
    --task-slots) slots=(--task-slots "${2:?}"); shift 2 ;;
    --memory-mb) memory=(--memory-mb "${2:?}"); shift 2 ;;
    --work) work="${2:?}"; shift 2 ;;
    *) usage ;;
    esac
done
[ -n "$data" ] || usage
[[ "$executors" =~ ^[1-9][0-9]*$ ]] || { echo "--executors takes a positive number" >&2; exit 2; }

own_work=""
if [ -z "$work" ]; then
    work="$(mktemp -d)"
    own_work="$work"
fi
mkdir -p "$work"
pids=()
any_alive() {
    local pid
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && return 0; done
    return 1
}
# Stops the given processes: SIGTERM, then SIGKILL after 10 s.
stop_processes() {
    [ $# -gt 0 ] || return 0
    kill "$@" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while any_alive "$@" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    kill -KILL "$@" 2>/dev/null || true
    for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}
stop() {
    # Executors first (they tell the scheduler they leave), then the scheduler.
    stop_processes "${pids[@]:1}"
    stop_processes "${pids[@]:0:1}"
    [ -z "$own_work" ] || rm -rf "$own_work"
}
trap stop EXIT
trap 'exit 0' INT TERM

# Free loopback ports: one for the scheduler, two adjacent ones per executor
# (Flight, then gRPC), chosen together so none is handed out twice.
read -r -a ports < <(python3 - "$executors" <<'PY'
import socket, sys
held, chosen = [], []
def hold(port):
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    held.append(s)
    return s.getsockname()[1]
chosen.append(hold(0))
while len(chosen) < 1 + int(sys.argv[1]):
    first = hold(0)
    try:
        hold(first + 1)
        chosen.append(first)
    except OSError:
        pass
print(" ".join(map(str, chosen)))
PY
)

scheduler="127.0.0.1:${ports[0]}"
# Registration lines are logged at info level.
export RUST_LOG="${RUST_LOG:-warn,ballista_scheduler=info,ballista_executor=info}"
"$enclave" ballista scheduler --listen "$scheduler" --data "$data" >"$work/scheduler.log" 2>&1 &
pids+=($!)
for i in $(seq 1 "$executors"); do
    "$enclave" ballista executor --scheduler "$scheduler" --listen "127.0.0.1:${ports[$i]}" \
        --data "$data" --work-dir "$work/executor-$i" "${slots[@]}" "${memory[@]}" \
        >"$work/executor-$i.log" 2>&1 &
    pids+=($!)
done

deadline=$((SECONDS + 120))
until [ "$(grep -c 'Received register executor request' "$work/scheduler.log" || true)" -ge "$executors" ]; do
    for pid in "${pids[@]}"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "a cluster process exited; its logs:" >&2
            tail -n 20 "$work"/*.log >&2
            exit 1
        fi
    done
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "executors did not register within 120 s" >&2
        tail -n 20 "$work"/*.log >&2
        exit 1
    fi
    sleep 0.2
done
echo "ballista://$scheduler"
wait
