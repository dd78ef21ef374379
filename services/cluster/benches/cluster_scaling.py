"""The claims-analytics suite (services/query/benches/claims_suite.sql) on a
local Ballista cluster at two data sizes, against the in-process engine,
side by side in one run, through Flight SQL as a researcher sends it.

    ENCLAVE_BIN=target/release/enclave $VENV/bin/python \\
        services/cluster/benches/cluster_scaling.py [--persons 300000] [--copies 10] [--prepare]

The small release is `--persons` synthetic persons (300,000: about 10M rows
in the `ndb` tables). The large one holds `--copies` copies of every table
file, each copy's persons made distinct (person ids XORed with the copy's
number in bits 56-59), so it has copies × the rows and persons; its
catalog, linkage and opt-out files are the small release's. Both are kept
in `$ENCLAVE_BENCH_DIR` (default `~/.cache/enclave-bench/cluster-PERSONS`).

Engines, each over both sizes: `enclave serve` running queries in process
(all cores), and on infra/local-cluster.sh with 1 and with 2 executors of
one task slot each (one executor = one core), the front end beside them.
Every query: one warm-up, then the median of 3.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import statistics
import sys
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "python"))
import conftest as fixtures  # noqa: E402  (the end-to-end suite's fixtures)

SUITE = ROOT / "services" / "query" / "benches" / "claims_suite.sql"
RUNS = 3
SEED = 2024
USER = "bench"
# Generous limits: the benchmark measures speed, not the limits.
SERVE_LIMITS = ("--query-memory-mb", "6144", "--total-memory-mb", "8192", "--query-timeout-secs", "1800")
ENGINES = {"in process": None, "1 executor": ("--executors", "1"), "2 executors": ("--executors", "2")}


def suite() -> list[tuple[str, str]]:
    """(name, SQL) of each query: the last comment line before it names it."""
    queries = []
    for block in SUITE.read_text().split(";"):
        name, sql = None, []
        for line in filter(None, map(str.strip, block.splitlines())):
            if line.startswith("-- ") and not sql:
                name = line[3:]
            else:
                sql.append(line)
        if name and sql:
            queries.append((name, " ".join(sql)))
    return queries


def small_release(cli: fixtures.Cli, work: Path, persons: int) -> Path:
    data = work / "data"
    if not (data / "releases").is_dir():
        extracts, key = work / "extracts", work / "key"
        shutil.rmtree(extracts, ignore_errors=True)
        cli.run("synth", "--persons", persons, "--seed", SEED, "--out", extracts)
        key.write_text(secrets.token_hex(32))
        cli.run("ingest", "--extracts", extracts, "--data", data, "--key-file", key)
        shutil.rmtree(extracts)
    return data


def large_release(small: Path, copies: int) -> Path:
    """`copies` copies of every table file of `small`'s release, each with
    distinct persons, and a manifest listing them."""
    data = small.parent / f"data-x{copies}"
    if (data / "releases").is_dir():
        return data
    (release,) = sorted((small / "releases").iterdir())
    target = data / "releases" / release.name
    shutil.copytree(release, target, ignore=shutil.ignore_patterns("manifest.json", "*.parquet"))
    manifest = json.loads((release / "manifest.json").read_text())
    entries = {entry["path"]: entry for entry in manifest["files"]}
    for table in manifest["tables"].values():
        files = []
        for path in table["files"]:
            original = pq.read_table(release / path)
            del entries[path]
            for copy in range(copies):
                rows = original.set_column(
                    original.schema.get_field_index("person_id"), "person_id",
                    pc.bit_wise_xor(original["person_id"], copy << 56))
                name = path.removesuffix(".parquet") + f"-copy{copy}.parquet"
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(rows, target / name, compression="zstd")
                entries[name] = describe(target, name, rows.num_rows)
                files.append(name)
        table["files"], table["rows"] = files, table["rows"] * copies
    for path in entries:
        if not (target / path).exists():
            shutil.copy2(release / path, target / path)
    manifest["files"] = sorted(entries.values(), key=lambda entry: entry["path"])
    (target / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return data


def describe(release: Path, path: str, rows: int) -> dict:
    """The manifest entry of the table file `path` of `release`."""
    content = (release / path).read_bytes()
    return {"path": path, "bytes": len(content), "sha256": hashlib.sha256(content).hexdigest(), "rows": rows}


def rows_of(data: Path) -> int:
    (release,) = sorted((data / "releases").iterdir())
    tables = json.loads((release / "manifest.json").read_text())["tables"]
    return sum(table["rows"] for name, table in tables.items() if name.startswith("ndb."))


def time_suite(server: fixtures.Server, queries: list[tuple[str, str]]) -> list[float]:
    medians = []
    with server.connect(USER) as conn:
        for _, sql in queries:
            fixtures.query(conn, sql)
            seconds = []
            for _ in range(RUNS):
                started = time.perf_counter()
                fixtures.query(conn, sql)
                seconds.append(time.perf_counter() - started)
            medians.append(statistics.median(seconds))
    return medians


def measure(cli, work: Path, data: Path, tables: tuple[str, ...], queries) -> dict[str, list[float]]:
    state = work / f"state-{data.name}"
    if not state.exists():
        fixtures.make_state(cli, state, {USER: "researcher"},
                            {"bench": fixtures.Project("bench", (USER,), grants=tables, rounding=None)})
    results = {}
    for engine, options in ENGINES.items():
        if options is not None:
            fixtures._CLUSTERS[str(data)] = fixtures.start_cluster(
                cli, str(data), work / f"cluster-{data.name}", *options, "--task-slots", "1",
                "--memory-mb", "6144")
        server = fixtures.Server(cli, data, state, work / f"serve-{data.name}.log", SERVE_LIMITS)
        try:
            results[engine] = time_suite(server, queries)
        finally:
            server.stop()
            fixtures.stop_clusters()
            fixtures._CLUSTERS.pop(str(data), None)
    return results


def report(title: str, queries, results: dict[str, list[float]]) -> None:
    engines = list(results)
    print(f"\n{title}")
    print(f"{'query':<42}" + "".join(f"{engine:>14}" for engine in engines))
    for index, (name, _) in enumerate(queries):
        print(f"{name:<42}" + "".join(f"{results[engine][index]:>13.2f}s" for engine in engines))
    print(f"{'suite total':<42}" + "".join(f"{sum(results[engine]):>13.2f}s" for engine in engines))
    base = results[engines[0]]
    for engine in engines[1:]:
        ratios = [mine / theirs for mine, theirs in zip(results[engine], base)]
        print(f"  {engine} / {engines[0]}: total {sum(results[engine]) / sum(base):.2f}x, "
              f"median per query {statistics.median(ratios):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=300_000)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--prepare", action="store_true", help="build the two releases, measure nothing")
    args = parser.parse_args()
    cli = fixtures.Cli(os.environ["ENCLAVE_BIN"])
    work = Path(os.environ.get("ENCLAVE_BENCH_DIR", Path.home() / f".cache/enclave-bench/cluster-{args.persons}"))
    work.mkdir(parents=True, exist_ok=True)
    small = small_release(cli, work, args.persons)
    large = large_release(small, args.copies)
    if args.prepare:
        return
    (release,) = sorted((small / "releases").iterdir())
    tables = tuple(sorted(json.loads((release / "manifest.json").read_text())["tables"]))
    queries = suite()
    print(f"{len(queries)} queries, {os.cpu_count()} cores; median of {RUNS} after a warm-up")
    for data in (small, large):
        results = measure(cli, work, data, tables, queries)
        report(f"{rows_of(data):,} rows in the ndb tables ({data.name})", queries, results)


if __name__ == "__main__":
    main()
