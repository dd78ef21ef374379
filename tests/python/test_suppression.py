"""Small groups and values from few persons are withheld, and the client is
not told how many."""

import json

import flightsql
from conftest import query

SMALL_GROUPS = ("SELECT prefecture_code, age_band, service_month, count(DISTINCT person_id) AS persons "
                "FROM ndb.receipts GROUP BY prefecture_code, age_band, service_month")


def expected_groups(release, project):
    """DuckDB: (released groups → rounded persons, number of groups under k)."""
    rows = release.expected(SMALL_GROUPS, project)
    kept = {(p, a, m): project.round(n) for p, a, m, n in rows if n >= project.k}
    return kept, sum(1 for *_, n in rows if n < project.k)


def test_small_groups_are_suppressed(enclave, release, projects):
    """Grouping 3,000 persons by prefecture, age band and month leaves many
    groups under k: exactly those are missing and the rest equal DuckDB's
    rounded counts."""
    main = projects["main"]
    kept, small = expected_groups(release, main)
    assert small > 0 and kept, "the data no longer has small and large groups"
    with enclave.connect("alice") as conn:
        table = query(conn, SMALL_GROUPS)
    got = {(r["prefecture_code"], r["age_band"], r["service_month"]): r["persons"] for r in table.to_pylist()}
    assert got == kept


def test_how_many_groups_were_withheld_is_not_told(enclave, release, projects):
    """Neither the result schema (ADBC) nor the Flight stream tells how many
    groups were withheld: that count would say whether a group of fewer than
    k persons exists. The operators' audit record keeps it."""
    _, small = expected_groups(release, projects["main"])
    assert small > 0
    with enclave.connect("alice") as conn:
        table = query(conn, SMALL_GROUPS)
    assert not any(b"suppress" in key for key in (table.schema.metadata or {})), table.schema.metadata
    client, options = enclave.flight("alice")
    reader, _ = flightsql.fetch(client, options, flightsql.statement_query(SMALL_GROUPS))
    assert not any(b"suppress" in key for key in (reader.schema.metadata or {}))
    chunk = reader.read_chunk()
    note = json.loads(chunk.app_metadata.to_pybytes()) if chunk.app_metadata else {}
    assert "suppressed_groups" not in note, note
    rows = chunk.data.num_rows + reader.read_all().num_rows
    assert note.get("released_groups", rows) == rows
    with enclave.connect("otto", project="audit") as conn:
        details = query(conn, "SELECT detail FROM audit.events WHERE action = 'query'").column("detail")
    recorded = [json.loads(detail) for detail in details.to_pylist()]
    assert any(event.get("sql") == SMALL_GROUPS and event.get("suppressed_groups") == small
               for event in recorded), "the audit record keeps the count"


def test_a_value_from_fewer_than_k_persons_is_null_in_a_released_group(enclave, release, projects):
    """Groups of thousands of persons are released, but a value of each
    counted over the persons aged 95+ of one prefecture comes from fewer than
    k persons and is NULL (a count too: 0 would tell nobody from a few)."""
    main = projects["main"]
    sql = ("SELECT sex, count(DISTINCT person_id) AS persons, "
           "count(DISTINCT person_id) FILTER (WHERE age_band = '95+' AND prefecture_code = '{p}') AS few "
           "FROM ndb.receipts GROUP BY sex")
    rows = release.expected(
        "SELECT prefecture_code, count(DISTINCT person_id) FROM ndb.receipts "
        "WHERE age_band = '95+' GROUP BY prefecture_code", main)
    prefecture = next(p for p, n in sorted(rows, key=lambda row: row[1]) if n < main.k)
    with enclave.connect("alice") as conn:
        table = query(conn, sql.format(p=prefecture))
    assert table.num_rows == 2
    for row in table.to_pylist():
        assert row["persons"] >= main.k and row["few"] is None, row


def test_a_result_with_every_group_withheld_says_what_to_do(enclave, release, projects):
    """Grouped by person-level detail (prefecture × age band × month × sex,
    within the 95+ band), every group holds fewer than k persons: the result
    is empty, and its schema (what ADBC and JDBC users see) and the Flight
    note carry a warning with the advice."""
    sql = ("SELECT prefecture_code, service_month, sex, count(DISTINCT person_id) AS persons "
           "FROM ndb.receipts WHERE age_band = '95+' GROUP BY prefecture_code, service_month, sex")
    rows = release.expected(sql, projects["main"])
    assert rows and all(n < projects["main"].k for *_, n in rows), "the data no longer has only small groups here"
    with enclave.connect("alice") as conn:
        table = query(conn, sql)
    assert table.num_rows == 0
    warning = (table.schema.metadata or {}).get(b"enclave.warning", b"").decode()
    assert "coarser" in warning and "workspace table" in warning, table.schema.metadata
    client, options = enclave.flight("alice")
    reader, _ = flightsql.fetch(client, options, flightsql.statement_query(sql))
    chunk = reader.read_chunk()
    assert json.loads(chunk.app_metadata.to_pybytes())["warning"] == warning


def test_a_result_with_rows_carries_no_warning(enclave):
    with enclave.connect("alice") as conn:
        table = query(conn, "SELECT sex, count(DISTINCT person_id) AS persons FROM ndb.receipts GROUP BY sex")
    assert table.num_rows == 2
    assert b"enclave.warning" not in (table.schema.metadata or {})
