"""Per-project disclosure parameters and the end of a project."""

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
    """`enclave project close` deletes the project's saved tables and every
    later query is refused `project-closed`, on a live server."""
    with enclave.connect("erin") as conn:
        query(conn, "CREATE TABLE work.keep AS SELECT DISTINCT person_id, sex FROM ndb.receipts")
        assert query(conn, "SELECT sex, count(*) AS n FROM work.keep GROUP BY sex").num_rows == 2
    assert release.workspace_files("closing"), "no workspace files for project closing"

    cli.close_project(enclave.state, release.location, "closing")

    assert not [path for path in release.workspace_files("closing") if path.endswith(".parquet")]
    with enclave.connect("erin", project="closing") as conn:
        message = error_of(conn, "SELECT sex, count(DISTINCT person_id) AS n FROM ndb.receipts GROUP BY sex")
    assert "refused (project-closed)" in message
    with enclave.connect("erin") as conn:
        message = error_of(conn, "SELECT sex, count(*) AS n FROM work.keep GROUP BY sex")
    assert "refused (project-closed)" in message or "refused (no-project)" in message
