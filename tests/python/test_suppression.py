"""Small groups are suppressed, and the client is told how many."""

import json

import flightsql
from conftest import query, suppressed

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


def test_suppressed_count_in_adbc_result_schema(enclave, release, projects):
    """An ADBC client finds the number of suppressed groups in the result
    schema's metadata (b"enclave.suppressed_groups", decimal)."""
    _, small = expected_groups(release, projects["main"])
    with enclave.connect("alice") as conn:
        table = query(conn, SMALL_GROUPS)
    assert suppressed(table) == small


def test_nothing_suppressed_reports_zero(enclave):
    """A result without small groups says so: enclave.suppressed_groups = 0."""
    with enclave.connect("alice") as conn:
        table = query(conn, "SELECT sex, count(DISTINCT person_id) AS persons FROM ndb.receipts GROUP BY sex")
    assert suppressed(table) == 0


def test_suppressed_count_reaches_pyarrow_flight(enclave, release, projects):
    """Over plain Flight the count is in the stream's schema metadata and in
    the first message's app_metadata as JSON {"suppressed_groups": n}."""
    _, small = expected_groups(release, projects["main"])
    client, options = enclave.flight("alice")
    reader, _ = flightsql.fetch(client, options, flightsql.statement_query(SMALL_GROUPS))
    assert int(reader.schema.metadata[b"enclave.suppressed_groups"]) == small
    chunk = reader.read_chunk()
    assert chunk.app_metadata is not None, "first message has no app_metadata"
    note = json.loads(chunk.app_metadata.to_pybytes())
    assert note["suppressed_groups"] == small
    rows = chunk.data.num_rows + reader.read_all().num_rows
    assert note.get("released_groups", rows) == rows
