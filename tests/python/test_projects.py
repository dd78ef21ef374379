"""Per-project disclosure parameters and the end of a project."""

import hashlib
import json
import time

from conftest import as_dict, error_of, query

BY_AGE = "SELECT age_band, count(DISTINCT person_id) AS persons FROM ndb.receipts GROUP BY age_band"


def expected_by_age(release, project):
    rows = release.expected("SELECT age_band, count(DISTINCT person_id) FROM ndb.receipts GROUP BY age_band", project)
    return {age: project.round(n) for age, n in rows if n >= project.k}


def test_rounding_five(enclave, release, projects):
    """Project r5 rounds to 5: every count is a multiple of 5 and equals
    DuckDB's count rounded half up to 5."""
    r5 = projects["r5"]
    with enclave.connect("bob") as conn:
        table = query(conn, BY_AGE)
    got = as_dict(table, "age_band", "persons")
    assert got == expected_by_age(release, r5)
    assert got and all(n % 5 == 0 for n in got.values())


def test_header_applies_the_chosen_projects_rules(enclave, release, projects):
    """The same user gets each project's period and rounding under its header."""
    with enclave.connect("gina", project="r5") as conn:
        r5 = as_dict(query(conn, BY_AGE), "age_band", "persons")
    with enclave.connect("gina", project="main") as conn:
        main = as_dict(query(conn, BY_AGE), "age_band", "persons")
    assert r5 == expected_by_age(release, projects["r5"])
    assert main == expected_by_age(release, projects["main"])
    assert r5 != main


def test_closing_a_project_deletes_its_workspace_and_refuses_queries(enclave, release, cli):
    """`enclave project close` destroys the project's saved tables (the
    audit log records each by name, size and SHA-256) and every later query
    is refused `project-closed`, on a live server."""
    with enclave.connect("erin") as conn:
        query(conn, "CREATE TABLE work.keep AS SELECT DISTINCT person_id, sex FROM ndb.receipts")
        assert query(conn, "SELECT sex, count(*) AS n FROM work.keep GROUP BY sex").num_rows == 2
    [path] = release.workspace_files("closing")
    content = release.read_object(path)

    closed = cli.close_project(enclave.state, release.location, "closing")

    assert "destroyed 1 workspace tables, 0 held outputs and 0 brought-in tables" in closed.stdout, closed.stdout
    assert not [path for path in release.workspace_files("closing") if path.endswith(".parquet")]
    # The command's events reach the log from its inbox within seconds.
    deadline = time.monotonic() + 30
    with enclave.connect("otto") as conn:
        while True:
            details = query(conn, "SELECT detail FROM audit.events WHERE action = 'project.close' "
                                  "AND outcome = 'ok'").column("detail").to_pylist()
            closings = [json.loads(d) for d in details if json.loads(d)["project"] == "closing"]
            if closings or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    [closing] = closings
    assert closing["destroyed"] == [{"kind": "workspace_table", "name": "work.keep", "bytes": len(content),
                                     "sha256": hashlib.sha256(content).hexdigest()}]
    with enclave.connect("erin", project="closing") as conn:
        message = error_of(conn, "SELECT sex, count(DISTINCT person_id) AS n FROM ndb.receipts GROUP BY sex")
    assert "refused (project-closed)" in message
    with enclave.connect("erin") as conn:
        message = error_of(conn, "SELECT sex, count(*) AS n FROM work.keep GROUP BY sex")
    assert "refused (project-closed)" in message or "refused (no-project)" in message


def test_a_past_until_is_refused_unless_the_project_is_recorded_as_ended(cli, tmp_path):
    """`project add --until` in the past would make a project that refuses
    every query from its first day: refused (nothing written) unless
    `--ended` says that is the intent; `--ended` with a date to come is
    refused too."""
    state = tmp_path / "state"
    cli.add_user(state, "pat", "researcher")
    base = ["project", "add", "--state", state, "--title", "t", "--member", "pat",
            "--grant", "ndb.receipts", "--period", "2023-04..2024-03"]
    past = cli.run(*base, "--id", "past", "--until", "2020-01-01", check=False)
    assert past.returncode != 0 and "is in the past" in past.stderr, past.stderr
    assert "--ended" in past.stderr
    listed = cli.run("project", "list", "--state", state).stdout
    assert "past" not in listed
    cli.run(*base, "--id", "ended", "--until", "2020-01-01", "--ended")
    assert "ended" in cli.run("project", "list", "--state", state).stdout
    future = cli.run(*base, "--id", "later", "--until", "2099-12-31", "--ended", check=False)
    assert future.returncode != 0 and "has not passed" in future.stderr, future.stderr
