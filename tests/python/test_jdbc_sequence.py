"""What the Arrow Flight SQL JDBC driver (and DBeaver through it) asks when
it connects and browses, replayed through pyarrow.flight: every call
answers. Maven is out of reach here, so the sequence follows the driver's
source (`ArrowDatabaseMetadata`): SqlInfo first, then catalogs, schemas,
tables, columns, table types, keys and type info; then prepared statements
with a parameter schema, parameter sets sent with DoPut, and cancelling."""

import pyarrow as pa
import pyarrow.flight as flight
import pytest

import flightsql
from conftest import query

# Every SqlInfo id ArrowDatabaseMetadata reads (its getSqlInfoAndCacheIfCacheIsEmpty calls).
JDBC_SQL_INFO_IDS = [
    0, 1, 3, 504, 508, 509, 510, 511, 512, 513, 514, 515, 516, 517, 518, 519, 520, 521, 522, 523,
    524, 525, 526, 527, 528, 529, 530, 531, 532, 533, 534, 535, 536, 537, 538, 539, 540, 541, 542,
    543, 544, 545, 546, 547, 548, 549, 550, 551, 552, 553, 554, 555, 556, 557, 558, 559, 560, 561,
    562, 563, 564, 565, 566, 567, 572, 573, 574, 575, 576,
]


def test_every_sql_info_id_the_jdbc_driver_reads_is_answered(enclave):
    client, options = enclave.flight("alice")
    reader, _ = flightsql.fetch(client, options, flightsql.get_sql_info())
    info = {row["info_name"]: row["value"] for row in reader.read_all().to_pylist()}
    missing = [i for i in JDBC_SQL_INFO_IDS if i not in info]
    assert not missing, f"SqlInfo ids the JDBC driver reads are missing: {missing}"
    # Lists the driver joins into getNumericFunctions()/getStringFunctions().
    assert "abs" in info[509] and "upper" in info[510]
    assert info[567] == 2, "forward-only result sets"
    assert info[566] is False, "no transactions"


@pytest.mark.parametrize("command, columns", [
    (flightsql.get_catalogs(), ["catalog_name"]),
    (flightsql.get_db_schemas(), ["catalog_name", "db_schema_name"]),
    (flightsql.get_tables(False), ["catalog_name", "db_schema_name", "table_name", "table_type"]),
    (flightsql.get_tables(True), ["catalog_name", "db_schema_name", "table_name", "table_type", "table_schema"]),
    (flightsql.get_table_types(), ["table_type"]),
    (flightsql.get_primary_keys("ndb", "receipts"),
     ["catalog_name", "db_schema_name", "table_name", "column_name", "key_name", "key_sequence"]),
    (flightsql.get_imported_keys("ndb", "receipts"), None),
    (flightsql.get_exported_keys("ndb", "receipts"), None),
    (flightsql.get_cross_reference(("ndb", "receipts"), ("ndb", "diagnoses")), None),
], ids=["catalogs", "schemas", "tables", "columns", "table-types", "primary-keys",
        "imported-keys", "exported-keys", "cross-reference"])
def test_database_metadata_calls_answer(enclave, command, columns):
    client, options = enclave.flight("alice")
    reader, info = flightsql.fetch(client, options, command)
    table = reader.read_all()
    assert table.schema.names == info.schema.names
    if columns is None:  # the foreign-key schema the three calls share
        columns = ["pk_catalog_name", "pk_db_schema_name", "pk_table_name", "pk_column_name",
                   "fk_catalog_name", "fk_db_schema_name", "fk_table_name", "fk_column_name",
                   "key_sequence", "fk_key_name", "pk_key_name", "update_rule", "delete_rule"]
    assert table.schema.names == columns
    if "key_sequence" in columns:
        assert table.num_rows == 0, "tables declare no keys"


def test_type_info_lists_the_types_tables_have(enclave):
    client, options = enclave.flight("alice")
    reader, _ = flightsql.fetch(client, options, flightsql.get_xdbc_type_info())
    types = {row["type_name"]: row["data_type"] for row in reader.read_all().to_pylist()}
    assert types["VARCHAR"] == 12 and types["BIGINT"] == -5, types


def test_a_prepared_query_carries_its_parameter_schema(enclave):
    client, options = enclave.flight("alice")
    sql = ("SELECT sex, count(DISTINCT person_id) AS persons FROM ndb.receipts "
           "WHERE age_band = $1 AND service_month >= $2 GROUP BY sex")
    action = flight.Action("CreatePreparedStatement", flightsql.create_prepared_statement(sql))
    prepared = flightsql.prepared_statement_result(list(client.do_action(action, options))[0].body.to_pybytes())
    parameters = flightsql.read_ipc_schema(prepared["parameter_schema"])
    assert parameters.names == ["$1", "$2"]
    assert parameters.field("$1").type == pa.string()


def test_a_parameterized_update_runs_with_the_sets_sent_by_doput(enclave):
    """JDBC's executeUpdate with parameters and ADBC's executemany send the
    values in the DoPut stream of a prepared update."""
    client, options = enclave.flight("alice")
    sql = "CREATE TABLE work.jdbc_cohort AS SELECT DISTINCT person_id FROM ndb.receipts WHERE age_band = $1"
    action = flight.Action("CreatePreparedStatement", flightsql.create_prepared_statement(sql))
    prepared = flightsql.prepared_statement_result(list(client.do_action(action, options))[0].body.to_pybytes())
    assert flightsql.read_ipc_schema(prepared["parameter_schema"]).names == ["$1"]
    descriptor = flight.FlightDescriptor.for_command(flightsql.prepared_statement_update(prepared["handle"]))
    values = pa.record_batch([pa.array(["70-74"])], names=["$1"])
    writer, metadata = client.do_put(descriptor, values.schema, options)
    writer.write_batch(values)
    writer.done_writing()
    metadata.read()
    writer.close()
    try:
        with enclave.connect("alice") as conn:
            persons = query(conn, "SELECT count(DISTINCT person_id) AS n FROM work.jdbc_cohort")
        assert persons.column("n")[0].as_py() > 0
    finally:
        with enclave.connect("alice") as conn:
            query(conn, "DROP TABLE IF EXISTS work.jdbc_cohort")


def test_adbc_executemany_binds_each_parameter_set(enclave):
    with enclave.connect("alice") as conn:
        cursor = conn.cursor()
        try:
            cursor.executemany("CREATE TABLE work.many AS SELECT DISTINCT person_id FROM ndb.receipts "
                               "WHERE age_band = $1", [("75-79",)])
            assert query(conn, "SELECT count(DISTINCT person_id) AS n FROM work.many").column("n")[0].as_py() > 0
        finally:
            query(conn, "DROP TABLE IF EXISTS work.many")
            cursor.close()


def test_cancel_drops_a_result_not_yet_fetched(enclave):
    client, options = enclave.flight("alice")
    sql = "SELECT sex, count(DISTINCT person_id) AS persons FROM ndb.receipts GROUP BY sex"
    info = client.get_flight_info(flight.FlightDescriptor.for_command(flightsql.statement_query(sql)), options)
    action = flight.Action("CancelQuery", flightsql.cancel_query(info.serialize()))
    assert flightsql.cancel_result(list(client.do_action(action, options))[0].body.to_pybytes()) == 1
    with pytest.raises(KeyError, match="ticket is unknown"):  # NOT_FOUND
        client.do_get(info.endpoints[0].ticket, options).read_all()
    # Cancelling again finds nothing left to cancel.
    assert flightsql.cancel_result(list(client.do_action(action, options))[0].body.to_pybytes()) == 3


def test_another_user_cannot_cancel_a_result(enclave):
    alice, alice_options = enclave.flight("alice")
    sql = "SELECT sex, count(DISTINCT person_id) AS persons FROM ndb.receipts GROUP BY sex"
    info = alice.get_flight_info(flight.FlightDescriptor.for_command(flightsql.statement_query(sql)), alice_options)
    gina, gina_options = enclave.flight("gina")
    action = flight.Action("CancelQuery", flightsql.cancel_query(info.serialize()))
    assert flightsql.cancel_result(list(gina.do_action(action, gina_options))[0].body.to_pybytes()) == 3
    assert alice.do_get(info.endpoints[0].ticket, alice_options).read_all().num_rows > 0


def test_begin_transaction_says_there_are_none(enclave):
    client, options = enclave.flight("alice")
    action = flight.Action("BeginTransaction", flightsql.begin_transaction())
    with pytest.raises(NotImplementedError, match="transactions are not supported"):  # UNIMPLEMENTED
        list(client.do_action(action, options))
