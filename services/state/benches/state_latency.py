"""Query latency with the state in the embedded store vs in PostgreSQL,
side by side in one run: one release (3,000 synthetic persons), two
`enclave serve` processes over it, the same Flight SQL statement sent to each
in turn (every statement reads the state: login, grant, opt-outs).

    scripts/postgres-server.sh        # in another shell; prints the server's URL
    ENCLAVE_BIN=target/release/enclave ENCLAVE_BENCH_POSTGRES=postgres://postgres@127.0.0.1:PORT \\
        $VENV/bin/python services/state/benches/state_latency.py
"""

from __future__ import annotations

import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "python"))
import conftest as fixtures  # noqa: E402  (the end-to-end suite's fixtures)

ROUNDS, WARM_UP = 60, 10
SQL = "SELECT sex, COUNT(DISTINCT person_id) AS persons FROM ndb.receipts GROUP BY sex"


def main() -> None:
    cli = fixtures.Cli(os.environ["ENCLAVE_BIN"])
    work = Path(tempfile.mkdtemp(prefix="enclave-bench-"))
    extracts, data, key = work / "extracts", work / "data", work / "key"
    cli.run("synth", "--persons", fixtures.PERSONS, "--seed", fixtures.SEED, "--out", extracts)
    key.write_text(secrets.token_hex(32))
    cli.run("ingest", "--extracts", extracts, "--data", data, "--key-file", key)
    project = fixtures.Project("bench", ("ana",))
    servers = {}
    for mode, database_server in (("embedded", None), ("postgres", os.environ["ENCLAVE_BENCH_POSTGRES"])):
        fixtures.STATE_DB_SERVER = database_server
        state = work / f"state-{mode}"
        fixtures.make_state(cli, state, {"ana": "researcher"}, {project.id: project})
        servers[mode] = fixtures.Server(cli, data, state, work / f"serve-{mode}.log")
    try:
        connections = {mode: server.connect("ana", project.id) for mode, server in servers.items()}
        seconds = {mode: [] for mode in connections}
        for _ in range(ROUNDS):
            for mode, connection in connections.items():
                started = time.perf_counter()
                fixtures.query(connection, SQL)
                seconds[mode].append(time.perf_counter() - started)
        for mode, samples in seconds.items():
            samples = sorted(samples[WARM_UP:])
            print(f"{mode:9s} median {statistics.median(samples) * 1000:6.1f} ms   "
                  f"p90 {samples[int(len(samples) * 0.9)] * 1000:6.1f} ms   (n={len(samples)})")
    finally:
        for server in servers.values():
            server.stop()


if __name__ == "__main__":
    main()
