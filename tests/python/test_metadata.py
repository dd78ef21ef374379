"""What a client learns before running a query: catalogs, schemas, SqlInfo,
prepared-statement schemas, and that they follow the project's grant."""

import pyarrow.flight as flight
import pyarrow.parquet as pq
import pytest

import flightsql
from conftest import error_of, query


def objects(conn) -> dict[tuple[str, str], list[str]]:
    """(schema, table) → column names, from adbc_get_objects (workspace aside)."""
    found = {}
    for catalog in conn.adbc_get_objects(depth="columns").read_all().to_pylist():
        for schema in catalog["catalog_db_schemas"] or []:
            if schema["db_schema_name"] == "work":
                continue
            for table in schema["db_schema_tables"] or []:
                columns = [c["column_name"] for c in table["table_columns"] or []]
                found[(schema["db_schema_name"], table["table_name"])] = columns
    return found


def parquet_schema(release, table):
    return pq.read_schema(next((release.dir / "tables" / table).glob("*/*.parquet")))


def test_get_objects_lists_exactly_the_granted_tables_and_columns(enclave, release):
    """adbc_get_objects shows the project's grant: all columns of ndb.receipts,
    the five granted columns of ndb.diagnoses, and no other table."""
    with enclave.connect("alice") as conn:
        seen = objects(conn)
    assert set(seen) == {("ndb", "receipts"), ("ndb", "diagnoses")}
    assert seen[("ndb", "receipts")] == parquet_schema(release, "ndb.receipts").names
    assert sorted(seen[("ndb", "diagnoses")]) == sorted(["person_id", "sex", "age_band", "service_month", "icd10"])


def test_project_header_chooses_what_is_visible(enclave):
    """A member of two projects sees each project's grant under its header."""
    with enclave.connect("gina", project="r5") as conn:
        assert set(objects(conn)) == {("ndb", "receipts")}
    with enclave.connect("gina", project="main") as conn:
        assert set(objects(conn)) == {("ndb", "receipts"), ("ndb", "diagnoses")}


def test_get_table_schema_matches_the_release(enclave, release):
    """adbc_get_table_schema gives the Parquet columns and types of a granted
    table, and the grant's columns only for a partly granted one."""
    with enclave.connect("alice") as conn:
        receipts = conn.adbc_get_table_schema("receipts", db_schema_filter="ndb")
        diagnoses = conn.adbc_get_table_schema("diagnoses", db_schema_filter="ndb")
    expected = parquet_schema(release, "ndb.receipts")
    assert receipts.names == expected.names
    assert [f.type for f in receipts] == [f.type for f in expected]
    assert set(diagnoses.names) == {"person_id", "sex", "age_band", "service_month", "icd10"}


def test_get_table_schema_of_an_ungranted_table_fails(enclave):
    """A table outside the grant has no schema to give."""
    with enclave.connect("alice") as conn:
        with pytest.raises(Exception) as error:
            conn.adbc_get_table_schema("admissions", db_schema_filter="dpc")
    assert "not found" in str(error.value).lower() or "no table" in str(error.value).lower()


def test_get_info_names_the_vendor(enclave):
    """adbc_get_info reports the server's name and version."""
    with enclave.connect("alice") as conn:
        info = conn.adbc_get_info()
    assert info["vendor_name"] == "enclave"
    assert info["vendor_version"]


def test_sql_info_is_answered_over_flight(enclave):
    """CommandGetSqlInfo (the JDBC driver's and DBeaver's first call) returns
    the server name (id 0) and version (id 1)."""
    client, options = enclave.flight("alice")
    reader, _ = flightsql.fetch(client, options, flightsql.get_sql_info())
    info = {row["info_name"]: row["value"] for row in reader.read_all().to_pylist()}
    assert info[0] == "enclave"
    assert isinstance(info[1], str) and info[1]


def test_sql_info_needs_a_login(enclave):
    """Even metadata needs a bearer token."""
    client = flight.FlightClient(enclave.uri)
    with pytest.raises(flight.FlightUnauthenticatedError):
        client.get_flight_info(flight.FlightDescriptor.for_command(flightsql.get_sql_info()))


def test_prepared_statement_carries_its_dataset_schema(enclave):
    """CreatePreparedStatement answers with a handle and the result's Arrow
    schema (clients size their result sets from it), and can be closed."""
    client, options = enclave.flight("alice")
    sql = "SELECT sex, count(DISTINCT person_id) AS persons FROM ndb.receipts GROUP BY sex"
    action = flight.Action("CreatePreparedStatement", flightsql.create_prepared_statement(sql))
    results = list(client.do_action(action, options))
    assert len(results) == 1
    prepared = flightsql.prepared_statement_result(results[0].body.to_pybytes())
    assert prepared["handle"]
    assert prepared["dataset_schema"], "empty dataset_schema"
    schema = flightsql.read_ipc_schema(prepared["dataset_schema"])
    assert schema.names == ["sex", "persons"]
    close = flight.Action("ClosePreparedStatement", flightsql.close_prepared_statement(prepared["handle"]))
    list(client.do_action(close, options))


def test_prepared_statement_of_a_refused_query_is_refused(enclave):
    """Preparing is checked like executing: a row-level query cannot be prepared."""
    client, options = enclave.flight("alice")
    action = flight.Action("CreatePreparedStatement", flightsql.create_prepared_statement("SELECT * FROM ndb.receipts"))
    with pytest.raises(Exception) as error:  # INVALID_ARGUMENT arrives as ArrowInvalid
        list(client.do_action(action, options))
    assert "refused (row-level)" in str(error.value)


def test_show_tables_and_columns_answer_from_the_grant(enclave):
    """SHOW TABLES lists the granted tables (and the workspace's), SHOW
    COLUMNS FROM a table its granted columns: what the metadata calls say."""
    with enclave.connect("alice") as conn:
        tables = query(conn, "SHOW TABLES").to_pylist()
        columns = query(conn, "SHOW COLUMNS FROM ndb.diagnoses").to_pylist()
        refused = error_of(conn, "SHOW TABLES LIKE 'diag%'")
    listed = {(t["table_schema"], t["table_name"]) for t in tables if t["table_schema"] != "work"}
    assert listed == {("ndb", "receipts"), ("ndb", "diagnoses")}
    assert {c["column_name"] for c in columns} == {"person_id", "sex", "age_band", "service_month", "icd10"}
    assert "refused (statement)" in refused
