"""The one workflow end to end: a researcher applies with `enclave apply`, the
committee reviews with `enclave review` (both clients of the gRPC API), and
the researcher's Flight SQL session then sees exactly the approved tables and
columns; closing the application destroys what the project held and ends
access."""

import hashlib
import json
import re

import pyarrow.flight as flight
import pytest

from conftest import error_of, password, query
from flightsql import statement_query
from test_metadata import objects

USERS = {"ana": "researcher", "ben": "researcher", "rev1": "reviewer", "rev2": "reviewer",
         "chair": "chair", "op": "operator"}
DIAGNOSIS_COLUMNS = ["person_id", "sex", "age_band", "icd10"]


@pytest.fixture(scope="module")
def workflow_server(start_server):
    return start_server("workflow", USERS, {})


def run(cli, server, user, *args, check=True):
    """`enclave <args> --server … --user <user> --password-stdin`."""
    endpoint = server.uri.replace("grpc://", "http://")
    return cli.run(*args, "--server", endpoint, "--user", user, "--password-stdin",
                   input=password(user) + "\n", check=check)


def application_line(output: str) -> tuple[str, str]:
    """(id, status) from `application <id>\t<status>\t…`."""
    match = re.search(r"^application (\d+)\t(\w+)\t", output, re.MULTILINE)
    assert match, output
    return match.group(1), match.group(2)


def apply(cli, server, user, project_id, tables, linkage="ndb"):
    args = ["apply", "create", "--project-id", project_id, "--title", "Diagnoses by age band",
            "--purpose", "Describe diagnoses by age band.", "--public-interest", "Chronic disease policy.",
            "--planned-outputs", "Tables of counts.", "--member", f"{user}:Test University",
            "--security-measures", "Analysis only from the university's locked room.", "--pledge-no-matching",
            "--linkage", linkage, "--period", "2000-01..2099-12", "--until", "2099-12-31",
            "--rounding", "none"]
    for table in tables:
        args += ["--table", table]
    return application_line(run(cli, server, user, *args).stdout)


def approve(cli, server, application):
    run(cli, server, "chair", "review", "assign", "--id", application, "--reviewer", "rev1", "--reviewer", "rev2")
    for reviewer in ("rev1", "rev2"):
        run(cli, server, reviewer, "review", "vote", "--id", application, "--choice", "approve",
            "--opinion", "Proportionate.")
    done = run(cli, server, "chair", "review", "decide", "--id", application, "--decision", "approve",
               "--note", "approved")
    assert application_line(done.stdout) == (application, "approved")


def test_submitting_needs_the_security_measures_and_the_pledge(cli, workflow_server):
    """An application without its site's security measures or the pledge
    not to match the data (照合禁止) stays a draft; the pledge is recorded
    with who accepted it."""
    server = workflow_server
    base = ["apply", "create", "--title", "t", "--purpose", "p",
            "--public-interest", "i", "--planned-outputs", "o", "--member", "ana:Test University",
            "--linkage", "ndb", "--period", "2000-01..2099-12", "--until", "2099-12-31",
            "--table", "ndb.receipts:person_id,sex"]
    for missing, flags in (("security_measures", ["--pledge-no-matching"]),
                           ("no_matching_pledge", ["--security-measures", "Locked room."])):
        application, _ = application_line(
            run(cli, server, "ana", *base, "--project-id", f"no-{missing.replace('_', '-')}", *flags).stdout)
        refused = run(cli, server, "ana", "apply", "submit", "--id", application, check=False)
        assert refused.returncode != 0 and f"invalid {missing}" in refused.stderr, refused.stderr
        shown = run(cli, server, "op", "review", "show", "--id", application).stdout
        assert "\tdraft\t" in shown
    application, _ = application_line(
        run(cli, server, "ana", *base, "--project-id", "pledged", "--security-measures", "Locked room.",
            "--pledge-no-matching").stdout)
    assert application_line(run(cli, server, "ana", "apply", "submit", "--id", application).stdout)[1] == "submitted"
    shown = run(cli, server, "rev1", "review", "show", "--id", application).stdout
    assert "no-matching pledge (照合禁止): accepted by ana" in shown, shown
    assert "security measures: Locked room." in shown


def test_apply_review_approve_query_close(cli, release, workflow_server):
    server = workflow_server
    application, status = apply(cli, server, "ana", "diag",
                                ["ndb.diagnoses:" + ",".join(DIAGNOSIS_COLUMNS)])
    assert status == "draft"
    assert application_line(run(cli, server, "ana", "apply", "submit", "--id", application).stdout)[1] == "submitted"
    queue = run(cli, server, "rev1", "review", "queue").stdout
    assert f"application {application}\tsubmitted" in queue

    # Before approval the applicant has no project to query.
    with server.connect("ana", project="diag") as conn:
        assert "not a member of project `diag`" in error_of(conn, "SELECT count(DISTINCT person_id) AS n FROM ndb.diagnoses")

    # A researcher cannot decide; without votes the chair cannot either.
    refused = run(cli, server, "ana", "review", "decide", "--id", application, "--decision", "approve", check=False)
    assert refused.returncode != 0 and "refused" in refused.stderr
    approve(cli, server, application)

    # The Flight SQL session sees exactly the approved table and columns.
    with server.connect("ana", project="diag") as conn:
        assert objects(conn) == {("ndb", "diagnoses"): DIAGNOSIS_COLUMNS}
        table = query(conn, "SELECT sex, count(DISTINCT person_id) AS persons FROM ndb.diagnoses GROUP BY sex")
        assert table.num_rows == 2
        assert error_of(conn, "SELECT count(DISTINCT person_id) AS n FROM ndb.receipts")
        assert "service_month" in error_of(
            conn, "SELECT service_month, count(DISTINCT person_id) AS n FROM ndb.diagnoses GROUP BY service_month")
        query(conn, "CREATE TABLE work.cohort AS SELECT DISTINCT person_id, sex FROM ndb.diagnoses")
    assert [path for path in release.workspace_files("diag") if path.endswith(".parquet")]
    with server.connect("ben", project="diag") as conn:
        assert error_of(conn, "SELECT count(DISTINCT person_id) AS n FROM ndb.diagnoses")

    # An operator reads the application; closing it ends everything.
    shown = run(cli, server, "op", "review", "show", "--id", application).stdout
    assert "approved" in shown and "ndb.diagnoses" in shown
    closed = run(cli, server, "ana", "apply", "close", "--id", application).stdout
    assert application_line(closed) == (application, "closed")
    assert not [path for path in release.workspace_files("diag") if path.endswith(".parquet")]
    with server.connect("ana", project="diag") as conn:
        assert "refused (project-closed)" in error_of(conn, "SELECT count(DISTINCT person_id) AS n FROM ndb.diagnoses")


def test_an_approved_output_can_be_downloaded(cli, tmp_path, workflow_server):
    server = workflow_server
    application, _ = apply(cli, server, "ben", "outputs", ["ndb.receipts:person_id,sex"])
    run(cli, server, "ben", "apply", "submit", "--id", application)
    approve(cli, server, application)
    requested = run(cli, server, "ben", "apply", "request-output", "--project", "outputs", "--title", "by sex",
                    "--sql", "SELECT sex, count(DISTINCT person_id) AS persons FROM ndb.receipts GROUP BY sex").stdout
    output = re.search(r"^output (\d+)\tawaiting_review", requested, re.MULTILINE)
    assert output, requested
    out = tmp_path / "by-sex.csv"
    early = run(cli, server, "ben", "apply", "download-output", "--id", output.group(1), "--out", out, check=False)
    assert early.returncode != 0 and "once approved" in early.stderr
    assert not out.exists()
    reviewed = run(cli, server, "rev1", "review", "output", "--id", output.group(1), "--approve", "--note", "fine").stdout
    assert "\tapproved\t" in reviewed
    run(cli, server, "ben", "apply", "download-output", "--id", output.group(1), "--out", out)
    lines = out.read_text().splitlines()
    assert lines[0] == "sex,persons" and len(lines) == 3


def request_output(cli, server, user, project, title, sql) -> tuple[str, str]:
    """(id, status) of a new output request."""
    requested = run(cli, server, user, "apply", "request-output", "--project", project, "--title", title,
                    "--sql", sql).stdout
    match = re.search(r"^output (\d+)\t(\w+)\t", requested, re.MULTILINE)
    assert match, requested
    return match.group(1), match.group(2)


def test_closing_destroys_what_the_project_held(cli, release, workflow_server, tmp_path):
    """`apply close` destroys the project's workspace tables (in the served
    store, local or S3), the results held for its outputs (approved or
    awaiting review) and a result computed but not yet fetched; the audit
    log lists each table and output by name, size and SHA-256, and nothing
    of them can be reached afterwards."""
    server = workflow_server
    application, _ = apply(cli, server, "ana", "closing", ["ndb.receipts:person_id,sex,age_band"])
    run(cli, server, "ana", "apply", "submit", "--id", application)
    approve(cli, server, application)
    with server.connect("ana", project="closing") as conn:
        query(conn, "CREATE TABLE work.everyone AS SELECT DISTINCT person_id, sex FROM ndb.receipts")
        query(conn, "CREATE TABLE work.older AS SELECT DISTINCT person_id, sex FROM ndb.receipts "
                    "WHERE age_band IN ('70-74', '75-79')")
    held = {}
    for path in release.workspace_files("closing"):
        content = release.read_object(path)
        held["work." + path.rsplit("/", 1)[1].removesuffix(".parquet")] = (len(content),
                                                                           hashlib.sha256(content).hexdigest())
    assert set(held) == {"work.everyone", "work.older"}

    by_sex = "SELECT sex, count(DISTINCT person_id) AS persons FROM ndb.receipts GROUP BY sex"
    approved, _ = request_output(cli, server, "ana", "closing", "by sex", by_sex)
    run(cli, server, "rev1", "review", "output", "--id", approved, "--approve", "--note", "fine")
    waiting, status = request_output(cli, server, "ana", "closing", "by age band",
                                     "SELECT age_band, count(DISTINCT person_id) AS persons FROM ndb.receipts "
                                     "GROUP BY age_band")
    assert status == "awaiting_review"
    refused, status = request_output(cli, server, "ana", "closing", "rows", "SELECT person_id FROM ndb.receipts")
    assert status == "refused_by_check"
    before = tmp_path / "before.csv"
    run(cli, server, "ana", "apply", "download-output", "--id", approved, "--out", before)
    held_csv = before.read_bytes()

    # A result computed (FlightInfo) and not yet fetched when the project closes.
    client, options = server.flight("ana", "closing")
    info = client.get_flight_info(flight.FlightDescriptor.for_command(statement_query(by_sex)), options)

    closed = run(cli, server, "ana", "apply", "close", "--id", application).stdout
    assert application_line(closed) == (application, "closed")

    assert release.workspace_files("closing") == []
    with pytest.raises(flight.FlightError, match="project-closed"):
        client.do_get(info.endpoints[0].ticket, options).read_all()
    after = tmp_path / "after.csv"
    for output in (approved, waiting):
        gone = run(cli, server, "ana", "apply", "download-output", "--id", output, "--out", after, check=False)
        assert gone.returncode != 0 and "was closed" in gone.stderr, gone.stderr
        assert not after.exists()
    listed = run(cli, server, "rev1", "review", "outputs").stdout
    statuses = dict(re.findall(r"^output (\d+)\t(\w+)\t", listed, re.MULTILINE))
    assert (statuses[approved], statuses[waiting], statuses[refused]) == ("destroyed", "destroyed", "refused_by_check")

    with server.connect("op") as conn:
        events = query(conn, "SELECT outcome, detail FROM audit.events WHERE action = 'project.destroy' "
                             "ORDER BY seq").to_pylist()
    [done] = [json.loads(e["detail"]) for e in events
              if e["outcome"] == "ok" and json.loads(e["detail"])["project"] == "closing"]
    destroyed = {item["name"]: item for item in done["destroyed"]}
    assert set(destroyed) == {"work.everyone", "work.older", f"output {approved}", f"output {waiting}"}
    for name, (size, digest) in held.items():
        assert (destroyed[name]["kind"], destroyed[name]["bytes"], destroyed[name]["sha256"]) == \
            ("workspace_table", size, digest)
    assert destroyed[f"output {approved}"]["sha256"] == hashlib.sha256(held_csv).hexdigest()
    assert destroyed[f"output {approved}"]["bytes"] == len(held_csv)
    # Names, sizes and hashes only: no value of the outputs in the record.
    assert set(destroyed[f"output {waiting}"]) == {"kind", "name", "bytes", "sha256"}
