"""The one workflow end to end: a researcher applies with `enclave apply`, the
committee reviews with `enclave review` (both clients of the gRPC API), and
the researcher's Flight SQL session then sees exactly the approved tables and
columns; closing the application deletes the workspace and ends access."""

import re

import pytest

from conftest import error_of, password, query
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
