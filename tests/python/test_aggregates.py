"""Allowed aggregates: the released numbers are DuckDB's numbers over the
release's Parquet files, limited to the project's period, with groups under
k persons removed and counts rounded to the project's base."""

import pytest

from conftest import as_dict, query


def released_persons(project, rows):
    """DuckDB's (group, persons) rows as disclosure control should release
    them: groups of at least k persons, counts rounded."""
    return {group: project.round(persons) for group, persons in rows if persons >= project.k}


def test_persons_by_sex_equal_duckdb_after_rounding(enclave, release, projects):
    """count(DISTINCT person_id) and count(*) by sex equal DuckDB's, rounded
    half up to 10, and every released group has at least k persons."""
    main = projects["main"]
    with enclave.connect("alice") as conn:
        table = query(conn, "SELECT sex, count(DISTINCT person_id) AS persons, count(*) AS receipts "
                            "FROM ndb.receipts GROUP BY sex")
    rows = release.expected("SELECT sex, count(DISTINCT person_id), count(*) FROM ndb.receipts GROUP BY sex", main)
    expected = {sex: (main.round(p), main.round(n)) for sex, p, n in rows if p >= main.k}
    got = {r["sex"]: (r["persons"], r["receipts"]) for r in table.to_pylist()}
    assert got == expected
    assert len(got) == 2
    assert all(n % 10 == 0 for pair in got.values() for n in pair)


def test_only_the_project_period_is_visible(enclave, release, projects):
    """Service months outside the project's period (2023-04..2024-09) do not
    exist for it; inside it, monthly person counts equal DuckDB's."""
    main = projects["main"]
    with enclave.connect("alice") as conn:
        table = query(conn, "SELECT service_month, count(DISTINCT person_id) AS persons "
                            "FROM ndb.receipts GROUP BY service_month")
    rows = release.expected("SELECT service_month, count(DISTINCT person_id) FROM ndb.receipts "
                            "GROUP BY service_month", main)
    got = as_dict(table, "service_month", "persons")
    assert got == released_persons(main, rows)
    assert max(got) == "2024-09" and min(got) == "2023-04"
    # The release itself goes on after the period: the limit is the server's.
    assert release.expected("SELECT max(service_month) FROM ndb.receipts", projects["r5"])[0][0] > "2024-09"


@pytest.mark.parametrize("placeholder", ["?", "$1"])
def test_prepared_statement_with_a_parameter(enclave, release, projects, placeholder):
    """`WHERE service_month = ?` (ADBC's and JDBC's placeholder; `$1` too)
    bound through ADBC gives that month's numbers, and a month outside the
    period gives no group at all."""
    main = projects["main"]
    sql = ("SELECT sex, count(DISTINCT person_id) AS persons FROM ndb.receipts "
           f"WHERE service_month = {placeholder} GROUP BY sex")
    with enclave.connect("alice") as conn:
        april = query(conn, sql, ("2024-04",))
        outside = query(conn, sql, ("2025-01",))
    rows = release.expected("SELECT sex, count(DISTINCT person_id) FROM ndb.receipts "
                            "WHERE service_month = '2024-04' GROUP BY sex", main)
    assert as_dict(april, "sex", "persons") == released_persons(main, rows)
    assert april.num_rows > 0
    assert outside.num_rows == 0


def test_query_without_tables_passes_as_is(enclave):
    """`SELECT 1` reads no table: nothing to check, it is answered."""
    with enclave.connect("alice") as conn:
        table = query(conn, "SELECT 1 AS one")
    assert table.to_pylist() == [{"one": 1}]
