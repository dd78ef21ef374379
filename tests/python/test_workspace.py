"""Project workspaces: person-level rows saved inside the enclave, joined
under the same rules, private to the project, deleted on DROP.

The tests run in file order: the module fixture creates work.cohort and the
last test drops it."""

import pyarrow as pa
import pytest

from conftest import error_of, query

COHORT = ("SELECT DISTINCT person_id, sex FROM ndb.receipts "
          "WHERE age_band IN ('65-69', '70-74', '75-79')")
JOINED = ("SELECT c.sex, count(*) AS receipts, count(DISTINCT c.person_id) AS persons "
          "FROM {cohort} c JOIN ndb.receipts r ON c.person_id = r.person_id GROUP BY c.sex")


@pytest.fixture(scope="module")
def cohort(enclave):
    """work.cohort created by alice in project main."""
    with enclave.connect("alice") as conn:
        result = query(conn, f"CREATE TABLE work.cohort AS {COHORT}")
    assert result.num_rows == 0, "CREATE TABLE returned rows"
    return "work.cohort"


def test_cohort_is_listed_for_its_project(enclave, cohort):
    """The saved table appears under schema `work` in adbc_get_objects."""
    with enclave.connect("alice") as conn:
        tables = [
            (s["db_schema_name"], t["table_name"])
            for c in conn.adbc_get_objects(depth="tables").read_all().to_pylist()
            for s in c["catalog_db_schemas"] or []
            for t in s["db_schema_tables"] or []
        ]
    assert ("work", "cohort") in tables


def test_join_with_cohort_equals_duckdb(enclave, release, projects, cohort):
    """Joining the cohort to receipts gives DuckDB's numbers for the same
    join, rounded, with groups under k removed."""
    main = projects["main"]
    with enclave.connect("alice") as conn:
        table = query(conn, JOINED.format(cohort=cohort))
    rows = release.expected(JOINED.format(cohort=f"({COHORT})"), main)
    expected = {sex: (main.round(n), main.round(p)) for sex, n, p in rows if p >= main.k}
    got = {r["sex"]: (r["receipts"], r["persons"]) for r in table.to_pylist()}
    assert got == expected and got


def test_cohort_columns_have_the_catalogs_types(enclave, cohort):
    """Text in a workspace table has the catalog's string type (not a
    string view), in its listed schema and in results."""
    with enclave.connect("alice") as conn:
        listed = conn.adbc_get_table_schema("cohort", db_schema_filter="work")
        catalog = conn.adbc_get_table_schema("receipts", db_schema_filter="ndb")
        result = query(conn, "SELECT sex, count(*) AS n FROM work.cohort GROUP BY sex")
    assert listed.field("sex").type == catalog.field("sex").type == pa.string()
    assert result.schema.field("sex").type == pa.string()


def test_join_with_cohort_is_disclosure_checked(enclave, release, projects, cohort):
    """Small groups of a cohort join are suppressed like any other."""
    main = projects["main"]
    sql = ("SELECT r.prefecture_code, r.service_month, count(DISTINCT c.person_id) AS persons "
           "FROM {cohort} c JOIN ndb.receipts r ON c.person_id = r.person_id "
           "GROUP BY r.prefecture_code, r.service_month")
    with enclave.connect("alice") as conn:
        table = query(conn, sql.format(cohort=cohort))
    rows = release.expected(sql.format(cohort=f"({COHORT})"), main)
    assert any(p < main.k for *_, p in rows), "no small group to suppress"
    assert {(r["prefecture_code"], r["service_month"]): r["persons"] for r in table.to_pylist()} == {
        (pref, month): main.round(p) for pref, month, p in rows if p >= main.k}


def test_cohort_rows_do_not_leave(enclave, cohort):
    """Reading the saved rows back is refused `row-level`."""
    with enclave.connect("alice") as conn:
        message = error_of(conn, f"SELECT * FROM {cohort}")
    assert "refused (row-level)" in message


def test_another_project_cannot_see_the_cohort(enclave, cohort):
    """A member of project r5 finds no work.cohort."""
    with enclave.connect("bob") as conn:
        message = error_of(conn, f"SELECT sex, count(*) AS n FROM {cohort} GROUP BY sex")
    assert "not found" in message.lower()


def test_drop_removes_the_cohort(enclave, release, cohort):
    """DROP TABLE work.cohort deletes it: later queries do not find it, nor
    is its file left in the data directory."""
    with enclave.connect("alice") as conn:
        query(conn, f"DROP TABLE {cohort}")
        message = error_of(conn, f"SELECT sex, count(*) AS n FROM {cohort} GROUP BY sex")
    assert "not found" in message.lower()
    assert not [path for path in release.workspace_files() if "cohort" in path]
