"""Small-query latency over Flight SQL, as a researcher's client sees it.

Builds a synthetic release (PERSONS persons), starts `enclave serve`, and
times small guarded aggregates through the ADBC driver (connect once, then
execute + fetch per query) from 1 and from 16 client processes at once, each
process a different researcher of the same project. Prints p50/p90/p99 and
throughput.

Run:
    VENV="$(scripts/python-env.sh | tail -n1)"
    cargo build --release
    ENCLAVE_BIN=$CARGO_TARGET_DIR/release/enclave "$VENV/bin/python" services/flight/benches/flight_latency.py
"""

from __future__ import annotations

import multiprocessing
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "python"))

from conftest import Cli, Project, Server, connect, make_state, query  # noqa: E402

PERSONS = int(os.environ.get("PERSONS", "30000"))
QUERIES_PER_CLIENT = int(os.environ.get("QUERIES_PER_CLIENT", "200"))
CLIENTS = (1, 16)
WARM_UP = 5

# Small aggregates: one month of one table, a handful of groups.
SMALL_QUERIES = [
    "SELECT sex, count(DISTINCT person_id) AS persons FROM ndb.receipts "
    "WHERE service_month = '2024-01' GROUP BY sex",
    "SELECT age_band, count(*) AS receipts, sum(total_points) AS points FROM ndb.receipts "
    "WHERE service_month = '2024-01' AND prefecture_code = '13' GROUP BY age_band",
    "SELECT care_level, count(DISTINCT person_id) AS persons FROM care.claims "
    "WHERE service_month = '2024-01' GROUP BY care_level",
]


def client(args: tuple[str, str, int]) -> list[float]:
    uri, user, count = args
    latencies = []
    with connect(uri, user) as conn:
        for i in range(WARM_UP + count):
            sql = SMALL_QUERIES[i % len(SMALL_QUERIES)]
            started = time.perf_counter()
            query(conn, sql)
            if i >= WARM_UP:
                latencies.append(time.perf_counter() - started)
    return latencies


def percentile(sorted_values: list[float], p: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def measure(uri: str, users: list[str], clients: int) -> None:
    started = time.perf_counter()
    with multiprocessing.Pool(clients) as pool:
        per_client = pool.map(client, [(uri, users[i], QUERIES_PER_CLIENT) for i in range(clients)])
    elapsed = time.perf_counter() - started
    latencies = sorted(x for run in per_client for x in run)
    ms = [x * 1000 for x in latencies]
    print(
        f"{clients:>2} client(s): {len(ms)} queries, p50 {percentile(ms, 50):.1f} ms, "
        f"p90 {percentile(ms, 90):.1f} ms, p99 {percentile(ms, 99):.1f} ms, "
        f"mean {statistics.fmean(ms):.1f} ms, {len(ms) / elapsed:.0f} queries/s overall"
    )


def main() -> None:
    binary = os.environ.get("ENCLAVE_BIN")
    if not binary:
        sys.exit("set ENCLAVE_BIN to the enclave binary (a release build)")
    cli = Cli(os.path.abspath(binary))
    with tempfile.TemporaryDirectory(prefix="enclave-latency-") as work:
        work = Path(work)
        extracts, data, key, state = work / "extracts", work / "data", work / "key", work / "state"
        cli.run("synth", "--persons", PERSONS, "--seed", 5, "--out", extracts)
        key.write_text(secrets.token_hex(32))
        key.chmod(0o600)
        cli.run("ingest", "--extracts", extracts, "--data", data, "--key-file", key)
        users = [f"researcher{i:02}" for i in range(max(CLIENTS))]
        project = Project("latency", tuple(users), grants=("ndb.receipts", "care.claims"))
        make_state(cli, state, {user: "researcher" for user in users}, {project.id: project})
        server = Server(cli, data, state, work / "serve.log")
        try:
            print(f"{PERSONS} persons; {QUERIES_PER_CLIENT} queries per client after {WARM_UP} warm-up; "
                  f"{os.cpu_count()} cores shared by server and clients")
            for clients in CLIENTS:
                measure(server.uri, users, clients)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
