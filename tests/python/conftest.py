"""End-to-end fixtures: a synthetic release, users and projects made with the
`enclave` CLI, and `enclave serve` on a free local port.

Run with `ENCLAVE_BIN=target/release/enclave $VENV/bin/python -m pytest tests/python -q`
(`scripts/python-env.sh` creates the venv and prints its path).

Expected numbers come from DuckDB over the release's Parquet files, never
from the server: `Release.duckdb(period)` gives views `ndb.receipts`, … limited
to a project's service months, so the same SQL runs on both sides.
"""

from __future__ import annotations

import atexit
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import adbc_driver_flightsql.dbapi as flight_sql
import boto3
import duckdb
import pyarrow as pa
import pyarrow.flight as flight
import pytest

PERSONS = 3000
SEED = 11
PROJECT_HEADER = "x-enclave-project"
SUPPRESSED_KEY = b"enclave.suppressed_groups"
FULL_PERIOD = ("2023-04", "2025-03")

# The ADBC driver cannot turn autocommit off; harmless here.
warnings.filterwarnings("ignore", message="Cannot disable autocommit")


@dataclass(frozen=True)
class Project:
    id: str
    members: tuple[str, ...]
    grants: tuple[str, ...] = ("ndb.receipts",)
    period: tuple[str, str] = FULL_PERIOD
    until: str = "2099-12-31"
    k: int = 10
    rounding: int | None = 10
    # `single-query`: exact answers, so values can be checked against DuckDB;
    # None: the server's default (the release ledger).
    protection: str | None = "single-query"
    # Values the release ledger may answer fresh for the project; None: the
    # default budget.
    fresh_values: int | None = None

    def round(self, n: int) -> int:
        """The released value of a count: half up to a multiple of the base."""
        return n if self.rounding is None else (n + self.rounding // 2) // self.rounding * self.rounding


# Researchers of the main server and what each one is for.
USERS = {
    "alice": "researcher",  # only in `main`: gets it without a header
    "bob": "researcher",  # only in `r5`: rounding 5, another project's member
    "gina": "researcher",  # in `main` and `r5`: picks one with the header
    "carol": "researcher",  # in no project
    "dave": "researcher",  # only in the expired project
    "erin": "researcher",  # only in the project that gets closed
    "frank": "researcher",  # in `main`, runs the concurrency test
    "rita": "reviewer",
    "otto": "operator",  # queries the audit schema, no project
}

PROJECTS = {
    p.id: p
    for p in [
        Project(
            "main",
            ("alice", "gina", "frank"),
            grants=("ndb.receipts", "ndb.diagnoses:person_id,sex,age_band,service_month,icd10"),
            period=("2023-04", "2024-09"),
        ),
        Project("r5", ("bob", "gina"), rounding=5),
        Project("old", ("dave",), until="2020-01-01"),
        Project("closing", ("erin",)),
    ]
}

# Concurrent queries a user may run on the main server.
MAX_CONCURRENT_PER_USER = 2


def password(user: str) -> str:
    return f"{user}-correct-horse-battery"


# ---------------------------------------------------------------- the CLI


# ------------------------------------------------------------ state database

# A PostgreSQL server (`scripts/postgres-server.sh` prints its URL): when set,
# every state directory of the suite gets a database of its own on it, and
# every command and server given `--state DIR` keeps its users, projects,
# opt-outs and applications there (`ENCLAVE_STATE_DB`) instead of in DIR.
STATE_DB_SERVER = os.environ.get("ENCLAVE_TEST_STATE_DB")
_STATE_DATABASES: dict[Path, str] = {}


def state_database(state: Path) -> str:
    """The URL of the database standing for state directory `state`."""
    state = Path(state).resolve()
    if state not in _STATE_DATABASES:
        name = f"state_{os.getpid()}_{len(_STATE_DATABASES)}"
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", f"{STATE_DB_SERVER}/postgres",
                        "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True, timeout=60)
        _STATE_DATABASES[state] = f"{STATE_DB_SERVER}/{name}"
    return _STATE_DATABASES[state]


def command_env(args) -> dict[str, str]:
    """The environment of an `enclave` command: the state database of its
    `--state` directory when the suite runs against PostgreSQL."""
    env = {**os.environ, "NO_COLOR": "1"}
    args = [str(arg) for arg in args]
    if STATE_DB_SERVER and "--state" in args:
        env["ENCLAVE_STATE_DB"] = state_database(Path(args[args.index("--state") + 1]))
    return env


class Cli:
    def __init__(self, binary: str):
        self.binary = binary
        self._help: dict[tuple[str, ...], str] = {}

    def run(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [self.binary, *map(str, args)], input=input, capture_output=True, text=True, timeout=600,
            env=command_env(args),
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"`enclave {' '.join(map(str, args))}` exited {done.returncode}\n"
                f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
            )
        return done

    def takes(self, command: tuple[str, ...], flag: str) -> bool:
        """Whether `enclave <command> --help` lists `flag` (the CLI is young)."""
        if command not in self._help:
            self._help[command] = self.run(*command, "--help").stdout
        return re.search(rf"(^|\s){re.escape(flag)}(?![\w-])", self._help[command]) is not None

    def add_user(self, state: Path, name: str, role: str = "researcher") -> None:
        self.run("user", "add", "--state", state, "--name", name, "--role", role, "--password-stdin",
                 input=password(name) + "\n")

    def add_project(self, state: Path, project: Project) -> None:
        args = ["project", "add", "--state", state, "--id", project.id, "--title", f"Test project {project.id}",
                "--period", "..".join(project.period), "--until", project.until, "--k", str(project.k),
                "--rounding", "none" if project.rounding is None else str(project.rounding)]
        if project.protection and self.takes(("project", "add"), "--protection"):
            args += ["--protection", project.protection]
        if project.fresh_values is not None:
            args += ["--fresh-values", str(project.fresh_values)]
        if project.until < time.strftime("%Y-%m-%d") and self.takes(("project", "add"), "--ended"):
            args.append("--ended")
        for member in project.members:
            args += ["--member", member]
        for grant in project.grants:
            args += ["--grant", grant]
        self.run(*args)

    def close_project(self, state: Path, data: Path, project_id: str) -> subprocess.CompletedProcess:
        args = ["project", "close", "--state", state, "--id", project_id]
        if self.takes(("project", "close"), "--data"):
            args += ["--data", data]
        return self.run(*args)

    def add_optouts(self, state: Path, data: Path, key: Path, requests: Path) -> subprocess.CompletedProcess:
        args = ["optout", "add", "--state", state, "--key-file", key, "--file", requests]
        if self.takes(("optout", "add"), "--data"):
            args += ["--data", data]
        return self.run(*args)


# ---------------------------------------------------------------- the release


@dataclass
class Release:
    workdir: Path
    extracts: Path
    data: Path  # the local data directory the release was ingested into
    key: Path
    dir: Path  # data/releases/rNNNNNN
    # The data store servers and commands are given: `data`, or in the
    # cluster deployment the bucket and prefix holding a copy of it.
    location: str = ""
    s3: object = None  # a boto3 client of that bucket, in the cluster deployment
    _duckdb: dict = field(default_factory=dict)

    def __post_init__(self):
        self.location = self.location or str(self.data)

    def workspace_files(self, project: str = "") -> list[str]:
        """Paths of the objects in `project`'s workspace (every workspace by
        default), in the served store."""
        return self.stored_files(f"workspaces/{project}/" if project else "workspaces/")

    def stored_files(self, prefix: str) -> list[str]:
        """Paths of the objects under `prefix` in the served store."""
        if self.s3 is None:
            return [p.relative_to(self.data).as_posix() for p in (self.data / prefix).rglob("*") if p.is_file()]
        bucket, _, root = self.location.removeprefix("s3://").partition("/")
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{root}/{prefix}")
        return [item["Key"].removeprefix(f"{root}/") for page in pages for item in page.get("Contents", [])]

    def read_object(self, path: str) -> bytes:
        """The bytes of one object of the served store (a path from
        `workspace_files`)."""
        if self.s3 is None:
            return (self.data / path).read_bytes()
        bucket, _, root = self.location.removeprefix("s3://").partition("/")
        return self.s3.get_object(Bucket=bucket, Key=f"{root}/{path}")["Body"].read()

    def parquet(self, table: str) -> str:
        """DuckDB's reader of one release table (`ndb.receipts`)."""
        return f"read_parquet('{self.dir}/tables/{table}/*/*.parquet', hive_partitioning=false)"

    def tables(self) -> list[str]:
        return sorted(p.name for p in (self.dir / "tables").iterdir())

    def duckdb(self, period: tuple[str, str] = FULL_PERIOD) -> duckdb.DuckDBPyConnection:
        """DuckDB with a view `schema.table` per release table, rows of `period` only."""
        if period not in self._duckdb:
            con = duckdb.connect()
            for table in self.tables():
                schema, _ = table.split(".")
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
                con.execute(
                    f"CREATE VIEW {table} AS SELECT * FROM {self.parquet(table)} "
                    f"WHERE service_month BETWEEN '{period[0]}' AND '{period[1]}'"
                )
            self._duckdb[period] = con
        return self._duckdb[period]

    def expected(self, sql: str, project: Project) -> list[tuple]:
        """Rows of `sql` over the Parquet files as `project` may see them, unchecked."""
        return self.duckdb(project.period).execute(sql).fetchall()


# ---------------------------------------------------------------- the server

_SERVERS: list["Server"] = []
# Engine URL of the cluster reading each data store (cluster deployment).
_CLUSTERS: dict[str, str] = {}
# Servers die with the test run even when it ends without teardown.
atexit.register(lambda: [server.stop() for server in list(_SERVERS)])


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (held open together while chosen,
    so the kernel cannot hand out one twice)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Server:
    """One `enclave serve` process and clients for it; over a store that a
    cluster of the suite reads, its project queries run on that cluster."""

    def __init__(self, cli: Cli, data: Path | str, state: Path, log: Path, extra: tuple[str, ...] = (),
                 preexec_fn=None):
        # Every server has its web portal on a port of its own.
        self.port, self.portal_port = free_ports(2)
        self.uri = f"grpc://127.0.0.1:{self.port}"
        self.portal_url = f"http://127.0.0.1:{self.portal_port}"
        self.log = log
        args = [cli.binary, "serve", "--data", str(data), "--state", str(state),
                "--listen", f"127.0.0.1:{self.port}", "--portal-listen", f"127.0.0.1:{self.portal_port}", *extra]
        if str(data) in _CLUSTERS:
            args += ["--engine", _CLUSTERS[str(data)]]
        with open(log, "wb") as out:
            self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=command_env(args), preexec_fn=preexec_fn)
        _SERVERS.append(self)
        self._wait_listening(timeout=60)

    def _wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"enclave serve exited {self.process.returncode}:\n{self.output()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"enclave serve did not listen within {timeout} s:\n{self.output()}")

    def output(self, lines: int = 80) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self in _SERVERS:
            _SERVERS.remove(self)

    def connect(self, user: str, project: str | None = None, secret: str | None = None):
        return connect(self.uri, user, project, secret)

    # pyarrow.flight, for what ADBC hides: status codes, app metadata, raw commands.
    def flight(self, user: str, project: str | None = None) -> tuple[flight.FlightClient, flight.FlightCallOptions]:
        client = flight.FlightClient(self.uri)
        token = client.authenticate_basic_token(user.encode(), password(user).encode())
        headers = [token]
        if project is not None:
            headers.append((PROJECT_HEADER.encode(), project.encode()))
        return client, flight.FlightCallOptions(headers=headers, timeout=120)


def connect(uri: str, user: str, project: str | None = None, secret: str | None = None):
    """An ADBC connection, as a researcher's notebook makes one."""
    kwargs = {"username": user, "password": password(user) if secret is None else secret}
    if project is not None:
        kwargs[f"adbc.flight.sql.rpc.call_header.{PROJECT_HEADER}"] = project
    return flight_sql.connect(uri, db_kwargs=kwargs)


def query(conn, sql: str, parameters=None) -> pa.Table:
    """Runs one statement over ADBC and returns its Arrow result."""
    with conn.cursor() as cur:
        cur.execute(sql, parameters)
        return cur.fetch_arrow_table()


def error_of(conn, sql: str, parameters=None) -> str:
    """The error text of a statement that must fail."""
    try:
        query(conn, sql, parameters)
    except Exception as error:  # adbc_driver_manager's DB-API errors
        return str(error)
    raise AssertionError(f"expected an error, the server answered: {sql}")


def suppressed(table: pa.Table) -> int | None:
    """The suppressed-group count in a result's schema metadata."""
    value = (table.schema.metadata or {}).get(SUPPRESSED_KEY)
    return None if value is None else int(value.decode())


def as_dict(table: pa.Table, key: str | tuple[str, ...], value: str) -> dict:
    rows = table.to_pylist()
    keys = (key,) if isinstance(key, str) else key
    out = {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r[value] for r in rows}
    assert len(out) == len(rows), "duplicate groups in a result"
    return out


def assert_within_ledger_noise(got: list[tuple], expected: list[tuple], noise_persons: float = 2.0) -> None:
    """Rows of a ledger-protected project against exact rows: the same
    groups (all but the last column), each count within five standard
    deviations of the ledger's noise for a count of persons (plus one for
    rounding to a whole number)."""
    assert [row[:-1] for row in got] == [row[:-1] for row in expected]
    for released, exact in zip(got, expected):
        assert abs(released[-1] - exact[-1]) <= 5 * noise_persons + 1, (released, exact)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def cli() -> Cli:
    binary = os.environ.get("ENCLAVE_BIN")
    if not binary:
        pytest.exit("set ENCLAVE_BIN to the enclave binary (e.g. target/release/enclave)", returncode=4)
    binary = shutil.which(binary) or binary
    if not os.access(binary, os.X_OK):
        pytest.exit(f"ENCLAVE_BIN={binary} is not an executable", returncode=4)
    return Cli(os.path.abspath(binary))


@pytest.fixture(scope="session")
def release(cli: Cli, tmp_path_factory, request) -> Release:
    """3,000 synthetic persons (seed 11) ingested into a new data directory;
    in the cluster deployment also copied to S3 with a cluster over it."""
    work = tmp_path_factory.mktemp("enclave")
    extracts, data, key = work / "extracts", work / "data", work / "key"
    cli.run("synth", "--persons", PERSONS, "--seed", SEED, "--out", extracts)
    key.write_text(secrets.token_hex(32))
    key.chmod(0o600)
    cli.run("ingest", "--extracts", extracts, "--data", data, "--key-file", key)
    releases = sorted((data / "releases").glob("r*"))
    assert releases, f"ingest made no release under {data}"
    release = Release(work, extracts, data, key, releases[-1])
    if CLUSTER:
        deploy_on_cluster(cli, release, request.getfixturevalue("s3_endpoint"))
        request.addfinalizer(stop_clusters)
    return release


# --------------------------------------------------------- cluster deployment

# The deployment of infra/: when set, the suite's release is copied to a
# bucket of a local S3 (scripts/s3-server.sh), infra/local-cluster.sh starts
# a Ballista scheduler and two executors over it, and every server over the
# release reads it from S3 and runs its project queries on the cluster.
CLUSTER = os.environ.get("ENCLAVE_TEST_CLUSTER") == "1"
CLUSTER_BUCKET = "enclave-e2e"
_CLUSTER_PROCESSES: list[subprocess.Popen] = []


def s3_environment(endpoint: str) -> dict[str, str]:
    """The AWS environment of commands and servers using the local S3 (plain
    HTTP allowed: the endpoint is loopback)."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "enclave-test", "AWS_SECRET_ACCESS_KEY": "enclave-test"}


def s3_client(endpoint: str):
    env = s3_environment(endpoint)
    return boto3.client("s3", endpoint_url=endpoint, region_name=env["AWS_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def deploy_on_cluster(cli: Cli, release: Release, endpoint: str) -> None:
    """Copies the release's data directory to S3 object by object and starts
    a cluster over that copy; servers over it then use the cluster."""
    os.environ.update(s3_environment(endpoint))
    s3 = s3_client(endpoint)
    s3.create_bucket(Bucket=CLUSTER_BUCKET)
    prefix = "nationwide"
    for path in sorted(release.data.rglob("*")):
        if path.is_file():
            s3.upload_file(str(path), CLUSTER_BUCKET, f"{prefix}/{path.relative_to(release.data).as_posix()}")
    release.location, release.s3 = f"s3://{CLUSTER_BUCKET}/{prefix}", s3
    _CLUSTERS[release.location] = start_cluster(cli, release.location, release.workdir / "cluster")


def start_cluster(cli: Cli, data: str, work: Path, *options: str) -> str:
    """infra/local-cluster.sh over `data` (with its `options`, e.g.
    `--executors 1`): its engine URL once it is ready."""
    script = Path(__file__).resolve().parents[2] / "infra" / "local-cluster.sh"
    log = work.with_suffix(".log")
    with open(log, "wb") as err:
        process = subprocess.Popen([script, "--data", data, "--work", work, *options], stdout=subprocess.PIPE, stderr=err,
                                   stdin=subprocess.DEVNULL, text=True, env={**os.environ, "ENCLAVE_BIN": cli.binary})
    _CLUSTER_PROCESSES.append(process)
    url = process.stdout.readline().strip()
    if not url.startswith("ballista://"):
        process.wait(10)
        raise RuntimeError(f"{script} exited {process.returncode}:\n{log.read_text(errors='replace')}")
    return url


def stop_clusters() -> None:
    for process in _CLUSTER_PROCESSES:
        process.terminate()
        process.wait(30)
    _CLUSTER_PROCESSES.clear()


def make_state(cli: Cli, state: Path, users: dict[str, str], projects: dict[str, Project]) -> None:
    for name, role in users.items():
        cli.add_user(state, name, role)
    for project in projects.values():
        cli.add_project(state, project)


@pytest.fixture(scope="session")
def start_server(cli: Cli, release: Release):
    """Factory: a server over the release with its own state directory."""
    started: list[Server] = []

    def start(name: str, users: dict[str, str], projects: dict[str, Project], extra: tuple[str, ...] = (),
              preexec_fn=None) -> Server:
        state = release.workdir / f"state-{name}"
        make_state(cli, state, users, projects)
        server = Server(cli, release.location, state, release.workdir / f"serve-{name}.log", extra, preexec_fn)
        server.state = state
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def enclave(start_server) -> Server:
    """The main server: USERS and PROJECTS, a small per-user query cap."""
    return start_server("main", USERS, PROJECTS,
                        ("--max-concurrent-per-user", str(MAX_CONCURRENT_PER_USER)))


@pytest.fixture(scope="session")
def projects() -> dict[str, Project]:
    return PROJECTS


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    """A local S3-compatible server started by `scripts/s3-server.sh`: its
    endpoint URL (one per run, shared by the tests that use S3)."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "s3-server.sh"
    log = tmp_path_factory.mktemp("s3") / "s3-server.log"
    with open(log, "wb") as err:
        process = subprocess.Popen([script], stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=True)
    # The script prints the URL once the server answers, or exits (its own deadline).
    url = process.stdout.readline().strip()
    if not url:
        process.wait(10)
        raise RuntimeError(f"{script} exited {process.returncode}:\n{log.read_text(errors='replace')}")
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture
def s3(s3_endpoint, monkeypatch):
    """A client of the local S3; the commands and servers started in the test
    get the same endpoint, region and (dummy) credentials through the AWS
    environment (plain HTTP allowed: the endpoint is loopback)."""
    for name, value in s3_environment(s3_endpoint).items():
        monkeypatch.setenv(name, value)
    return s3_client(s3_endpoint)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test's report ends with the servers' recent log lines."""
    report = yield
    if report.failed:
        for server in _SERVERS:
            report.sections.append((f"enclave serve on port {server.port} (last lines)", server.output()))
    return report


def pytest_report_header(config):
    state = f"PostgreSQL at {STATE_DB_SERVER}" if STATE_DB_SERVER else "embedded (state directories)"
    data = "S3 (local) with a Ballista cluster" if CLUSTER else "local directory, queries in process"
    return [f"state store: {state}", f"release and queries: {data}"]
