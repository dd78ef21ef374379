"""Utility and cost of a guard change, side by side in one run.

Two `enclave` binaries (before and after a change) serve the same synthetic
release, one after the other, with the same project (all tables, k = 10, no
rounding, each binary's default protection across queries unless
PROTECTION_BEFORE / PROTECTION_AFTER name one). Every query of the claims
suite (`claims_suite.sql`), of `examples/adbc_quickstart.py` and of the
studies suite (`studies_suite.sql`) runs through each over Flight SQL
(ADBC); the script prints, per query, the median time of each over RUNS
runs, the groups each released, and how many released cells differ. A cell
that differs is either a value the new rules withhold (NULL after, a number
before) or a changed value; both are counted. Then, per suite, utility
after against before: the share of the numbers released before that are
still released, and the median and 95th-percentile relative error of those
(before's values are exact when it runs without rounding or noise).

    ENCLAVE_BIN_BEFORE=/path/old/enclave ENCLAVE_BIN=/path/new/enclave \\
        $VENV/bin/python services/query/benches/guard_utility.py [PERSONS]

(default 20,000 persons; the venv is scripts/python-env.sh's).
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import adbc_driver_flightsql.dbapi as flight_sql

ROOT = Path(__file__).resolve().parents[3]
RUNS = 3
USER, PASSWORD = "bench", "bench-password-long-enough"


def read_suite(file: str) -> list[tuple[str, str]]:
    text = (ROOT / "services/query/benches" / file).read_text()
    queries = []
    for block in text.split(";"):
        name, sql = None, []
        for line in (line.strip() for line in block.splitlines()):
            if not line:
                continue
            if line.startswith("-- ") and not sql:
                name = line[3:]
            else:
                sql.append(line)
        if name and sql:
            queries.append((name, " ".join(sql)))
    return queries


QUICKSTART = ROOT / "examples/adbc_quickstart.py"


def suites() -> dict[str, list[tuple[str, str]]]:
    claims = read_suite("claims_suite.sql")
    for index, sql in enumerate(re.findall(r'"""\s*(SELECT.*?)"""', QUICKSTART.read_text(), re.S)):
        claims.append((f"example {index + 1}", " ".join(sql.split())))
    return {"claims": claims, "studies": read_suite("studies_suite.sql")}


def workspace_setup() -> list[str]:
    """The quickstart's CREATE TABLE statements (its later queries read
    what they make), as written there: adjacent string literals."""
    return ["".join(parts) for parts in re.findall(r'"(CREATE TABLE [^"]*)"\s*"([^"]*)"', QUICKSTART.read_text())]


def set_up(uri: str) -> None:
    """Makes the quickstart's workspace tables (dropped first: a rerun over
    the same data directory finds them)."""
    with flight_sql.connect(uri, db_kwargs={"username": USER, "password": PASSWORD}) as conn:
        for sql in workspace_setup():
            table = sql.split()[2]
            for statement in (f"DROP TABLE IF EXISTS {table}", sql):
                with conn.cursor() as cur:
                    cur.execute(statement)
                    cur.fetch_arrow_table()


def run(binary: str, *args) -> None:
    subprocess.run([binary, *map(str, args)], check=True, capture_output=True, text=True,
                   input=PASSWORD + "\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare(work: Path, binary: str, persons: int) -> Path:
    data, key, extracts = work / "data", work / "key", work / "extracts"
    run(binary, "synth", "--persons", persons, "--seed", 7, "--out", extracts)
    key.write_text(secrets.token_hex(32))
    key.chmod(0o600)
    run(binary, "ingest", "--extracts", extracts, "--data", data, "--key-file", key)
    return data


def serve(binary: str, data: Path, work: Path, name: str) -> tuple[subprocess.Popen, str]:
    state = work / f"state-{name}"
    run(binary, "user", "add", "--state", state, "--name", USER, "--role", "researcher", "--password-stdin")
    tables = ["ndb.receipts", "ndb.diagnoses", "ndb.procedures", "ndb.drugs", "dpc.admissions",
              "dpc.details", "care.claims", "care.services", "care.certifications"]
    # A project of its own per server: the two share one data directory,
    # and a project's workspace holds ids only its server's binary reads.
    args = ["project", "add", "--state", state, "--id", f"bench-{name}", "--title", "Guard utility bench",
            "--period", "2000-01..2099-12", "--until", "2099-12-31", "--k", "10", "--rounding", "none",
            "--member", USER]
    protection = os.environ.get(f"PROTECTION_{name.upper()}")
    if protection:
        args += ["--protection", protection]
    for table in tables:
        args += ["--grant", table]
    run(binary, *args)
    port = free_port()
    process = subprocess.Popen(
        [binary, "serve", "--data", data, "--state", state, "--listen", f"127.0.0.1:{port}", "--no-portal"],
        stdout=subprocess.DEVNULL, stderr=open(work / f"serve-{name}.log", "wb"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"grpc://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{binary} serve did not start")


def group_columns(sql: str) -> int:
    """How many leading result columns are group keys: the expressions of
    the outermost (last) GROUP BY (the suites list them first)."""
    clause = re.split(r"\bGROUP BY\b", sql, flags=re.I)[-1]
    clause = re.split(r"\b(ORDER BY|HAVING|LIMIT)\b", clause, flags=re.I)[0]
    depth, items = 0, 1
    for char in clause:
        depth += (char == "(") - (char == ")")
        items += char == "," and depth == 0
    return items


def measure(uri: str, sql: str) -> tuple[float, set | str]:
    with flight_sql.connect(uri, db_kwargs={"username": USER, "password": PASSWORD}) as conn:
        times, result = [], None
        for _ in range(RUNS):
            started = time.perf_counter()
            try:
                with conn.cursor() as cur:
                    cur.execute(sql)
                    table = cur.fetch_arrow_table()
                result = {tuple(row.values()) for row in table.to_pylist()}
            except Exception as error:  # a refusal is a result too
                result = str(error).splitlines()[0][:60]
            times.append(time.perf_counter() - started)
        return statistics.median(times), result


def cells(result: set | str, keys: int) -> dict:
    """Group key (the first `keys` columns) → row, for comparison."""
    if isinstance(result, str):
        return {}
    return {row[:keys]: row for row in result}


def numbers(result: set | str, keys: int) -> dict:
    """(group key, column) → number, for every value released."""
    out = {}
    for key, row in cells(result, keys).items():
        for column, value in enumerate(row[keys:], start=keys):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[(key, column)] = value
    return out


class Utility:
    """Numbers released before, how many are still released after, and
    their relative errors."""

    def __init__(self):
        self.before = 0
        self.errors: list[float] = []

    def add(self, r_before, r_after, keys: int) -> None:
        old, new = numbers(r_before, keys), numbers(r_after, keys)
        self.before += len(old)
        for cell, value in old.items():
            if new.get(cell) is not None:
                self.errors.append(abs(new[cell] - value) / abs(value) if value else 0.0)

    def summary(self) -> str:
        if not self.before:
            return "no numbers released before"
        errors = sorted(self.errors)
        p95 = errors[min(len(errors) - 1, int(0.95 * len(errors)))] if errors else float("nan")
        return (f"{len(errors)}/{self.before} numbers still released ({100 * len(errors) / self.before:.1f} %), "
                f"relative error median {100 * statistics.median(errors):.2f} %, p95 {100 * p95:.2f} %")


def main() -> None:
    before, after = os.environ["ENCLAVE_BIN_BEFORE"], os.environ["ENCLAVE_BIN"]
    persons = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = prepare(work, after, persons)
        servers = {name: serve(binary, data, work, name) for name, binary in
                   [("before", before), ("after", after)]}
        try:
            for _, uri in servers.values():
                set_up(uri)
            print(f"{persons} persons, median of {RUNS} runs each")
            print(f"{'query':<44} {'before':>8} {'after':>8} {'ratio':>6}  groups before/after, cells differing")
            ratios = []
            utility: dict[str, Utility] = {}
            for suite_name, name, sql in ((s, n, q) for s, queries in suites().items() for n, q in queries):
                (t_before, r_before), (t_after, r_after) = (
                    measure(servers[side][1], sql) for side in ("before", "after"))
                keys = group_columns(sql)
                utility.setdefault(suite_name, Utility()).add(r_before, r_after, keys)
                groups = [len(r) if isinstance(r, set) else "refused" for r in (r_before, r_after)]
                old, new = cells(r_before, keys), cells(r_after, keys)
                differing = sum(1 for key, row in old.items() if new.get(key) != row)
                ratios.append(t_after / t_before)
                print(f"{name:<44} {t_before:>7.3f}s {t_after:>7.3f}s {t_after / t_before:>5.2f}x  "
                      f"{groups[0]}/{groups[1]}, {differing}")
                if isinstance(r_after, str):
                    print(f"    after: {r_after}")
            print(f"median ratio after/before: {statistics.median(ratios):.2f}x")
            for suite_name, measured in utility.items():
                print(f"utility, {suite_name} suite: {measured.summary()}")
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.wait(10)


if __name__ == "__main__":
    main()
