"""Bring-in review (持込審査) end to end: a project member sends a table to
`ref.<name>` with ADBC bulk ingest; screening refuses direct identifiers
and person ids (naming the column and the rule, never a value) and keeps
nothing; a clean code list waits in quarantine until two committee members
outside the project approve it, then only that project can join it by code
(never by person); a rejected table leaves nothing in the store; closing
the project destroys the approved one."""

import hashlib
import io
import json
import re
import time

import adbc_driver_manager
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import Project, error_of, password, query

ALPHA = Project("bia", ("bia",), grants=("ndb.diagnoses",), rounding=None)
BETA = Project("bib", ("bib",), grants=("ndb.diagnoses",), rounding=None)
USERS = {"bia": "researcher", "bib": "researcher", "rv1": "reviewer", "rv2": "reviewer", "ops": "operator"}
CODES = pa.table({"icd10": ["E11", "E119", "I10"], "label": ["diabetes", "diabetes", "hypertension"],
                  "weight": pa.array([1, 1, 2], pa.int64())})
BY_CODE = ("SELECT c.label, count(DISTINCT d.person_id) AS persons FROM ndb.diagnoses d "
           "JOIN ref.codes c ON d.icd10 = c.icd10 GROUP BY c.label")


@pytest.fixture(scope="module")
def server(start_server):
    return start_server("bring-in", USERS, {ALPHA.id: ALPHA, BETA.id: BETA})


def bring_in(server, user: str, name: str, table: pa.Table) -> str | None:
    """Sends `table` as ref.<name>; None when accepted, else the error."""
    with server.connect(user) as conn:
        with conn.cursor() as cursor:
            try:
                cursor.adbc_ingest(name, table, mode="create", db_schema_name="ref")
            except adbc_driver_manager.Error as error:
                return str(error)
    return None


def review(cli, server, user, *args, check=True):
    endpoint = server.uri.replace("grpc://", "http://")
    return cli.run("review", *args, "--server", endpoint, "--user", user, "--password-stdin",
                   input=password(user) + "\n", check=check)


def bring_ins(cli, server) -> dict[str, tuple[str, str, str]]:
    """ref name → (id, status, project) of the newest bring-in of each name."""
    listed = review(cli, server, "rv1", "bring-ins").stdout
    found = re.findall(r"^bring-in (\d+)\t(\w+)\tproject (\S+)\tref\.(\w+)\t", listed, re.MULTILINE)
    return {name: (id, status, project) for id, status, project, name in found}


def quarantine(release, project: str) -> list[str]:
    return release.stored_files(f"bring-ins/{project}/")


def person_ids(release, server, user: str, project: str) -> list[int]:
    """Some of `project`'s person ids, read from a workspace file as an
    operator could (a researcher cannot read an id as a value)."""
    with server.connect(user) as conn:
        query(conn, "CREATE TABLE work.ids AS SELECT DISTINCT person_id, sex FROM ndb.diagnoses")
    [path] = [p for p in release.workspace_files(project) if p.endswith("/ids.parquet")]
    ids = pq.read_table(io.BytesIO(release.read_object(path))).column("person_id").to_pylist()
    with server.connect(user) as conn:
        query(conn, "DROP TABLE work.ids")
    return ids[:5]


def test_identifiers_are_refused_by_column_and_rule_and_nothing_is_kept(server, release):
    table = pa.table({
        "code": ["A01", "A02", "A03"],
        "who": ["ヤマダ タロウ", "スズキ ハナコ", "サトウ ジロウ"],
        "insurer": ["06131236", "01130012", "06131236"],
        "born": ["1955-12-20", "1960-01-02", "1948-07-07"],
    })
    message = bring_in(server, "bia", "people", table)
    assert message and "refused (screening)" in message, message
    for column, rule in (("who", "person-name"), ("insurer", "insurer-number"), ("born", "full-date")):
        assert f"column `{column}`: {rule}" in message, message
    for value in ("ヤマダ", "06131236", "1955-12-20", "A01"):
        assert value not in message
    assert "column `code`" not in message
    assert quarantine(release, ALPHA.id) == []


def test_person_ids_of_any_project_are_refused(server, release, cli):
    for ids in (person_ids(release, server, "bia", ALPHA.id), person_ids(release, server, "bib", BETA.id)):
        table = pa.table({"code": pa.array([101, 102] + ids[:1], pa.int64())})
        message = bring_in(server, "bia", "keys", table)
        assert message and "column `code`: person-key" in message, message
        assert str(ids[0]) not in message
        as_text = pa.table({"code": ["x", str(ids[1])]})
        message = bring_in(server, "bia", "keys", as_text)
        assert message and "person-key" in message, message
    assert quarantine(release, ALPHA.id) == []
    assert bring_ins(cli, server)["keys"][1] == "refused_by_screening"


# Columns of a diagnosis a researcher can filter on, picked to single out
# one row.
DIAGNOSIS_COLUMNS = ("sex", "age_band", "prefecture_code", "service_month", "disease_code",
                     "start_month", "outcome")


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def project_id_of_the_largest_release_id(release, server, user: str, project: str) -> int:
    """The project id of the person with the release's largest `person_id`,
    the edge of the screen's bound: the test finds (over the release's
    files, as the steward could) a diagnosis of that person no other row
    shares, the member saves its person in the workspace, and the id is
    read from the workspace file as an operator could."""
    con = release.duckdb()
    columns = ", ".join(DIAGNOSIS_COLUMNS)
    [row] = con.execute(f"""
        SELECT {columns} FROM ndb.diagnoses
        WHERE person_id = (SELECT max(person_id) FROM ndb.diagnoses)
        GROUP BY ALL
        HAVING ({columns}) IN (SELECT ({columns}) FROM ndb.diagnoses GROUP BY ALL HAVING count(*) = 1)
        ORDER BY ALL LIMIT 1""").fetchall()
    where = " AND ".join(f"{c} IS NULL" if v is None else f"{c} = {literal(v)}"
                         for c, v in zip(DIAGNOSIS_COLUMNS, row))
    with server.connect(user) as conn:
        query(conn, f"CREATE TABLE work.edge AS SELECT DISTINCT person_id FROM ndb.diagnoses WHERE {where}")
    [path] = [p for p in release.workspace_files(project) if p.endswith("/edge.parquet")]
    ids = pq.read_table(io.BytesIO(release.read_object(path))).column("person_id").to_pylist()
    with server.connect(user) as conn:
        query(conn, "DROP TABLE work.edge")
    assert len(ids) == 1, ids
    return ids[0]


def test_the_person_with_the_largest_id_is_a_person_key_too(server, release, cli):
    # The screen once held release ids to 0 … persons − 1 while ids run
    # 1 … the largest ever given: the last person's id went through. A
    # table holding only that person's project id is refused.
    edge = project_id_of_the_largest_release_id(release, server, "bia", ALPHA.id)
    message = bring_in(server, "bia", "edge", pa.table({"code": pa.array([edge], pa.int64())}))
    assert message and "column `code`: person-key" in message, message
    assert str(edge) not in message
    assert quarantine(release, ALPHA.id) == []


def test_a_code_list_approved_by_two_reviewers_joins_by_code_in_its_project_only(server, release, cli):
    assert bring_in(server, "bia", "codes", CODES) is None
    [kept] = quarantine(release, ALPHA.id)
    assert pq.read_table(io.BytesIO(release.read_object(kept))).num_rows == 3
    id, status, project = bring_ins(cli, server)["codes"]
    assert (status, project) == ("quarantined", ALPHA.id)
    with server.connect("bia") as conn:
        assert "not found" in error_of(conn, BY_CODE).lower()

    # Members of the project cannot review it; one approval is not enough.
    refused = review(cli, server, "bia", "bring-in", "--id", id, "--approve", "--note", "mine", check=False)
    assert refused.returncode != 0
    review(cli, server, "rv1", "bring-in", "--id", id, "--approve", "--note", "ICD-10 code list, no identifiers")
    again = review(cli, server, "rv1", "bring-in", "--id", id, "--approve", "--note", "again", check=False)
    assert again.returncode != 0 and "second member" in again.stderr
    with server.connect("bia") as conn:
        assert "not found" in error_of(conn, BY_CODE).lower()
    review(cli, server, "rv2", "bring-in", "--id", id, "--approve", "--note", "agreed")
    assert bring_ins(cli, server)["codes"][1] == "approved"

    with server.connect("bia") as conn:
        got = {row["label"]: row["persons"] for row in query(conn, BY_CODE).to_pylist()}
    codes = "', '".join(CODES.column("icd10").to_pylist())
    expected = release.expected(
        "SELECT CASE WHEN icd10 = 'I10' THEN 'hypertension' ELSE 'diabetes' END AS label, "
        f"count(DISTINCT person_id) FROM ndb.diagnoses WHERE icd10 IN ('{codes}') GROUP BY 1", ALPHA)
    assert got == {label: n for label, n in expected if n >= ALPHA.k}
    assert got, "the join released nothing"

    with server.connect("bib") as conn:
        assert "not found" in error_of(conn, BY_CODE).lower()
    with server.connect("bia") as conn:
        for sql in ("SELECT c.label, count(DISTINCT d.person_id) AS persons FROM ndb.diagnoses d "
                    "JOIN ref.codes c ON d.person_id = c.weight GROUP BY c.label",
                    "SELECT count(DISTINCT d.person_id) AS persons FROM ndb.diagnoses d "
                    "WHERE d.person_id IN (SELECT weight FROM ref.codes)",
                    "SELECT sum(c.weight) AS w FROM ndb.diagnoses d JOIN ref.codes c ON d.icd10 = c.icd10",
                    "SELECT label, count(*) AS n FROM ref.codes GROUP BY label"):
            assert "refused" in error_of(conn, sql), sql


def test_a_rejected_table_leaves_nothing_in_the_store(server, release, cli):
    marker = "ZZ-REJECTED-MARKER"
    assert bring_in(server, "bia", "other", pa.table({"icd10": [marker, "E11"]})) is None
    assert len(quarantine(release, ALPHA.id)) == 2
    id, _, _ = bring_ins(cli, server)["other"]
    review(cli, server, "rv1", "bring-in", "--id", id, "--note", "not in the protocol")
    assert bring_ins(cli, server)["other"][1] == "rejected"
    assert len(quarantine(release, ALPHA.id)) == 1
    for file in server.state.rglob("*"):
        if file.is_file():
            assert marker.encode() not in file.read_bytes(), file


def test_an_approved_analysis_runs_by_name_and_each_run_records_its_hash(server, release, cli, tmp_path):
    by_sex = "SELECT sex, count(DISTINCT person_id) AS persons FROM ndb.diagnoses GROUP BY sex"
    endpoint = server.uri.replace("grpc://", "http://")

    def register(name: str, sql: str, check=True):
        file = tmp_path / f"{name}.sql"
        file.write_text(sql)
        return cli.run("apply", "register-analysis", "--project", ALPHA.id, "--name", name, "--file", file,
                       "--purpose", "Table 1 of the protocol", "--server", endpoint, "--user", "bia",
                       "--password-stdin", input=password("bia") + "\n", check=check)

    # What could not run is not registered: the statement is planned first.
    refused = register("rows", "SELECT person_id FROM ndb.diagnoses", check=False)
    assert refused.returncode != 0 and "refused" in refused.stderr, refused.stderr
    registered = register("by_sex", by_sex).stdout
    analysis, status, digest = re.search(r"^analysis (\d+)\t(\w+)\t.*\tsha256 (\w+)\t", registered, re.MULTILINE).groups()
    assert status == "quarantined" and digest == hashlib.sha256(by_sex.encode()).hexdigest()
    with server.connect("bia") as conn:
        assert "no bring-in approved analysis `by_sex`" in error_of(conn, "RUN ANALYSIS by_sex")
    for reviewer in ("rv1", "rv2"):
        review(cli, server, reviewer, "bring-in", "--id", analysis, "--approve", "--note", "as in the protocol")
    with server.connect("bia") as conn:
        ran = query(conn, "RUN ANALYSIS by_sex").to_pylist()
        direct = query(conn, by_sex).to_pylist()
    assert sorted(ran, key=str) == sorted(direct, key=str) and ran
    with server.connect("bib") as conn:
        assert "no bring-in approved analysis" in error_of(conn, "RUN ANALYSIS by_sex")
    with server.connect("ops") as conn:
        details = query(conn, "SELECT detail FROM audit.events WHERE action = 'query' AND outcome = 'ok'"
                              f" AND project = '{ALPHA.id}'").column("detail").to_pylist()
    runs = [json.loads(d)["analysis"] for d in details if "analysis" in json.loads(d)]
    assert runs and all(run == {"name": "by_sex", "bring_in": analysis, "sha256": digest} for run in runs)


def test_closing_destroys_the_tables_a_project_brought_in(server, release, cli):
    [kept] = quarantine(release, ALPHA.id)
    closed = cli.close_project(server.state, release.location, ALPHA.id)
    assert "1 brought-in tables" in closed.stdout, closed.stdout
    assert quarantine(release, ALPHA.id) == []
    assert bring_ins(cli, server)["codes"][1] == "destroyed"
    deadline = time.monotonic() + 30
    while True:
        with server.connect("ops") as conn:
            details = query(conn, "SELECT detail FROM audit.events WHERE action = 'project.close' "
                                  "AND outcome = 'ok'").column("detail").to_pylist()
        done = [json.loads(d) for d in details if json.loads(d)["project"] == ALPHA.id]
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    [record] = [item for item in done[0]["destroyed"] if item["kind"] == "reference_table"]
    assert record["name"].startswith("ref.codes") and record["bytes"] > 0 and len(record["sha256"]) == 64
