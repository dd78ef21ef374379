"""Just enough protobuf to speak Flight SQL with pyarrow.flight.

Flight SQL commands are protobuf messages wrapped in `google.protobuf.Any`;
the tests build the few they need by hand (no generated code, no protobuf
package) to call the server the way JDBC/DBeaver does.
"""

import pyarrow as pa
import pyarrow.flight as flight

PREFIX = "type.googleapis.com/arrow.flight.protocol.sql."


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, value: bytes) -> bytes:
    """A length-delimited field (strings, bytes, messages)."""
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def any_message(name: str, body: bytes = b"") -> bytes:
    """`Any{type_url, value}` around a Flight SQL message named `name`."""
    return _field(1, (PREFIX + name).encode()) + _field(2, body)


def decode(data: bytes) -> dict[int, list]:
    """Fields of a protobuf message: number → values (varints or bytes)."""
    fields: dict[int, list] = {}
    i = 0

    def varint() -> int:
        nonlocal i
        shift = value = 0
        while True:
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while i < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            value = varint()
        elif wire == 2:
            length = varint()
            value = data[i : i + length]
            i += length
        else:
            raise ValueError(f"unexpected wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


def unwrap_any(data: bytes) -> tuple[str, bytes]:
    fields = decode(data)
    return fields[1][0].decode(), fields.get(2, [b""])[0]


def statement_query(sql: str) -> bytes:
    return any_message("CommandStatementQuery", _field(1, sql.encode()))


def get_sql_info() -> bytes:
    """CommandGetSqlInfo with no ids: every SqlInfo the server has."""
    return any_message("CommandGetSqlInfo")


def create_prepared_statement(sql: str) -> bytes:
    return any_message("ActionCreatePreparedStatementRequest", _field(1, sql.encode()))


def close_prepared_statement(handle: bytes) -> bytes:
    return any_message("ActionClosePreparedStatementRequest", _field(1, handle))


def prepared_statement_result(body: bytes) -> dict:
    """ActionCreatePreparedStatementResult → handle and the two schemas."""
    type_url, value = unwrap_any(body)
    assert type_url == PREFIX + "ActionCreatePreparedStatementResult", type_url
    fields = decode(value)
    return {
        "handle": fields.get(1, [b""])[0],
        "dataset_schema": fields.get(2, [b""])[0],
        "parameter_schema": fields.get(3, [b""])[0],
    }


def read_ipc_schema(data: bytes) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(data))


def fetch(client: flight.FlightClient, options: flight.FlightCallOptions, command: bytes):
    """GetFlightInfo then DoGet of its first endpoint: (reader, FlightInfo)."""
    info = client.get_flight_info(flight.FlightDescriptor.for_command(command), options)
    assert info.endpoints, "FlightInfo without endpoints"
    return client.do_get(info.endpoints[0].ticket, options), info


def get_catalogs() -> bytes:
    return any_message("CommandGetCatalogs")


def get_db_schemas() -> bytes:
    return any_message("CommandGetDbSchemas")


def get_tables(include_schema: bool) -> bytes:
    # field 5: include_schema (bool)
    return any_message("CommandGetTables", _varint(5 << 3) + _varint(int(include_schema)))


def get_table_types() -> bytes:
    return any_message("CommandGetTableTypes")


def get_xdbc_type_info() -> bytes:
    return any_message("CommandGetXdbcTypeInfo")


def get_primary_keys(schema: str, table: str) -> bytes:
    return any_message("CommandGetPrimaryKeys", _field(2, schema.encode()) + _field(3, table.encode()))


def get_imported_keys(schema: str, table: str) -> bytes:
    return any_message("CommandGetImportedKeys", _field(2, schema.encode()) + _field(3, table.encode()))


def get_exported_keys(schema: str, table: str) -> bytes:
    return any_message("CommandGetExportedKeys", _field(2, schema.encode()) + _field(3, table.encode()))


def get_cross_reference(pk: tuple[str, str], fk: tuple[str, str]) -> bytes:
    # pk_db_schema 2, pk_table 3, fk_db_schema 5, fk_table 6
    body = (_field(2, pk[0].encode()) + _field(3, pk[1].encode())
            + _field(5, fk[0].encode()) + _field(6, fk[1].encode()))
    return any_message("CommandGetCrossReference", body)


def prepared_statement_update(handle: bytes) -> bytes:
    return any_message("CommandPreparedStatementUpdate", _field(1, handle))


def cancel_query(info: bytes) -> bytes:
    return any_message("ActionCancelQueryRequest", _field(1, info))


def begin_transaction() -> bytes:
    return any_message("ActionBeginTransactionRequest")


def cancel_result(body: bytes) -> int:
    """ActionCancelQueryResult's status: 1 cancelled, 3 not cancellable."""
    type_url, value = unwrap_any(body)
    assert type_url == PREFIX + "ActionCancelQueryResult", type_url
    return decode(value).get(1, [0])[0]
