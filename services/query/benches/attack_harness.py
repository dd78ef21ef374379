"""How well attacks that combine answers across queries infer one bit about
one person, against one `enclave` binary.

The script makes a synthetic release, a researcher who is a member of two
projects over it (ndb.receipts and ndb.diagnoses, the whole period, k = 10,
the chosen rounding, no other flag), starts `enclave serve`, picks targets
from the release's Parquet files (persons alone in a quasi-identifier cell,
half with an ICD-10 code and half without) and runs every attack of
tests/python/attacks.py over them through Flight SQL (ADBC). It prints a
markdown table: per attack, the statements sent, the share of targets whose
bit it guessed right, the prior's accuracy and the difference.

    ENCLAVE_BIN=/path/enclave $VENV/bin/python services/query/benches/attack_harness.py \\
        [PERSONS] [--targets N] [--rounding none|5|10] [--binary PATH] [--sessions N] \\
        [--kinds NAME,NAME] [--fresh-values N]

(default 20,000 persons, 100 targets, rounding 10, each project the
service's default fresh-value budget; the venv is scripts/python-env.sh's).
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import adbc_driver_flightsql.dbapi as flight_sql

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests/python"))
import attacks  # noqa: E402

USER, PASSWORD = "mallory", "mallory-password-long-enough"
PROJECTS = ("atk", "atk-2")
GRANTS = ("ndb.receipts", "ndb.diagnoses")
PROJECT_HEADER = "adbc.flight.sql.rpc.call_header.x-enclave-project"

warnings.filterwarnings("ignore", message="Cannot disable autocommit")


def run(binary: str, *args) -> None:
    subprocess.run([binary, *map(str, args)], check=True, capture_output=True, text=True, input=PASSWORD + "\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare(work: Path, binary: str, persons: int) -> Path:
    """A synthetic release ingested into work/data: its release directory."""
    data, key, extracts = work / "data", work / "key", work / "extracts"
    run(binary, "synth", "--persons", persons, "--seed", 7, "--out", extracts)
    key.write_text(secrets.token_hex(32))
    key.chmod(0o600)
    run(binary, "ingest", "--extracts", extracts, "--data", data, "--key-file", key)
    return sorted((data / "releases").glob("r*"))[-1]


def make_state(binary: str, state: Path, rounding: str, fresh_values: int | None) -> None:
    """The researcher and their two projects (default policy but rounding
    and, when given, the fresh-value budget)."""
    run(binary, "user", "add", "--state", state, "--name", USER, "--role", "researcher", "--password-stdin")
    for project in PROJECTS:
        args = ["project", "add", "--state", state, "--id", project, "--title", f"Attack harness {project}",
                "--period", "2000-01..2099-12", "--until", "2099-12-31", "--k", attacks.K,
                "--rounding", rounding, "--member", USER]
        if fresh_values is not None:
            args += ["--fresh-values", fresh_values]
        for grant in GRANTS:
            args += ["--grant", grant]
        run(binary, *args)


def serve(binary: str, data: Path, state: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [binary, "serve", "--data", data, "--state", state, "--listen", f"127.0.0.1:{port}", "--no-portal"],
        stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"grpc://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{binary} serve did not start:\n{log.read_text(errors='replace')}")


def researcher(uri: str, rounding: str) -> attacks.Researcher:
    connections = {project: flight_sql.connect(uri, db_kwargs={"username": USER, "password": PASSWORD,
                                                               PROJECT_HEADER: project})
                   for project in PROJECTS}
    return attacks.Researcher(connections, rounding=1 if rounding == "none" else int(rounding))


def table(outcomes: list[attacks.Outcome]) -> str:
    lines = ["| attack kind | queries (total) | queries per target | answered | inference accuracy "
             "| baseline accuracy | advantage (pp) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for o in outcomes:
        n = len(o.targets)
        lines.append(f"| {o.kind} | {o.queries} | {o.queries / n:.1f} | {o.answered}/{n} | {o.accuracy:.1%} "
                     f"| {o.baseline:.1%} | {100 * o.advantage:+.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("persons", nargs="?", type=int, default=20_000)
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--binary", default=os.environ.get("ENCLAVE_BIN"))
    parser.add_argument("--rounding", choices=("none", "5", "10"), default="10")
    parser.add_argument("--sessions", type=int, default=2, help="parallel sessions of the researcher")
    parser.add_argument("--kinds", help="only these attacks (names as in the table, comma-separated)")
    parser.add_argument("--fresh-values", type=int, help="each project's fresh-value budget")
    args = parser.parse_args()
    chosen = [a for a in attacks.ATTACKS if not args.kinds or a.name in args.kinds.split(",")]
    if not chosen:
        parser.error(f"no attack named {args.kinds}; names: {', '.join(a.name for a in attacks.ATTACKS)}")
    if not args.binary:
        parser.error("set ENCLAVE_BIN or pass --binary")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        release = prepare(work, args.binary, args.persons)
        make_state(args.binary, work / "state", args.rounding, args.fresh_values)
        targets = attacks.select_targets(attacks.release_duckdb(release), args.targets)
        process, uri = serve(args.binary, work / "data", work / "state", work / "serve.log")
        sessions = [researcher(uri, args.rounding) for _ in range(args.sessions)]
        try:
            outcomes = []
            for attack in chosen:
                started = time.monotonic()
                outcomes.append(attacks.run_attack(attack, sessions, targets))
                refused = f", refused: {outcomes[-1].errors[0]}" if outcomes[-1].errors else ""
                print(f"{attack.kind}: {time.monotonic() - started:.0f} s{refused}", file=sys.stderr)
            print(f"{args.persons} persons, {len(targets)} targets, k = {attacks.K}, rounding {args.rounding}, "
                  f"{os.path.basename(args.binary)} ({args.binary})\n")
            print(table(outcomes))
        finally:
            for session in sessions:
                session.close()
            process.terminate()
            process.wait(10)


if __name__ == "__main__":
    main()
