"""Refusals: each names its rule, none quotes a data value, and what lies
outside the grant does not exist for the session."""

import re

import grpc
import pyarrow.flight as flight
import pytest

import flightsql
from conftest import Project, error_of, password, query


@pytest.fixture(scope="module")
def data_values(release):
    """Distinctive values of ndb.receipts (≥ 4 digits) no error may quote."""
    rows = release.duckdb().execute(
        "SELECT receipt_id, person_id, facility_id, total_points FROM ndb.receipts "
        "ORDER BY receipt_id LIMIT 500").fetchall()
    values = {str(v) for row in rows for v in row if v is not None and v >= 1000}
    assert len(values) > 50
    return values


def assert_no_data(message, values):
    quoted = [v for v in values if re.search(rf"(?<!\d){v}(?!\d)", message)]
    assert not quoted, f"error quotes data values {quoted[:5]}: {message}"


REFUSED = [
    ("SELECT * FROM ndb.receipts", "row-level"),
    ("SELECT receipt_id, total_points FROM ndb.receipts WHERE sex = '1'", "row-level"),
    ("SELECT person_id, count(*) AS n FROM ndb.receipts GROUP BY person_id", "identifying-group"),
    ("SELECT sex, max(total_points) AS top FROM ndb.receipts GROUP BY sex", "value-revealing-aggregate"),
    ("CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'", "ddl"),
    ("SET datafusion.execution.batch_size = 1", "statement"),
    ("EXPLAIN SELECT sex, count(*) AS n FROM ndb.receipts GROUP BY sex", "explain"),
    # Keys are no dial on persons: nine dense ids and a target's cell.
    ("SELECT count(DISTINCT person_id) AS n FROM ndb.receipts "
     "WHERE person_id BETWEEN 1 AND 9 OR (sex = '1' AND age_band = '95+')", "key-value"),
    ("SELECT sex, count(*) AS n FROM ndb.receipts WHERE receipt_id % 100 = 7 GROUP BY sex", "key-value"),
    ("SELECT sex, count(*) AS n FROM (SELECT sex, row_number() OVER (ORDER BY person_id) AS r "
     "FROM ndb.receipts) AS t WHERE r <= 9 GROUP BY sex", "key-value"),
]


@pytest.mark.parametrize(("sql", "rule"), REFUSED)
def test_refused_with_rule(enclave, data_values, sql, rule):
    """The statement is refused; the error names the rule and quotes no data."""
    with enclave.connect("alice") as conn:
        message = error_of(conn, sql)
    assert f"refused ({rule})" in message
    assert_no_data(message, data_values)


def flight_info_error(server, user: str, sql: str) -> grpc.RpcError:
    """GetFlightInfo for `sql` over grpcio, which shows the metadata of the
    response (pyarrow and ADBC show only code and message)."""
    client = flight.FlightClient(server.uri)
    _, bearer = client.authenticate_basic_token(user.encode(), password(user).encode())
    descriptor = b"\x08\x02" + flightsql._field(2, flightsql.statement_query(sql))  # type CMD, cmd
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        get_flight_info = channel.unary_unary("/arrow.flight.protocol.FlightService/GetFlightInfo")
        with pytest.raises(grpc.RpcError) as error:
            get_flight_info(descriptor, metadata=[("authorization", bearer.decode())], timeout=60)
    return error.value


@pytest.mark.parametrize(("user", "sql", "rule", "code"), [
    ("alice", REFUSED[0][0], "row-level", grpc.StatusCode.INVALID_ARGUMENT),
    ("alice", REFUSED[7][0], "key-value", grpc.StatusCode.INVALID_ARGUMENT),
    ("dave", "SELECT sex, count(*) AS n FROM ndb.receipts GROUP BY sex", "project-expired",
     grpc.StatusCode.PERMISSION_DENIED),
    ("alice", "SELECT disease_code, count(*) AS n FROM ndb.diagnoses GROUP BY disease_code", "not-granted",
     grpc.StatusCode.PERMISSION_DENIED),
    ("alice", "SELECT count(*) AS n FROM care.claims", "not-granted", grpc.StatusCode.PERMISSION_DENIED),
])
def test_a_refusal_names_its_rule_in_metadata(enclave, user, sql, rule, code):
    """Clients read the rule from the `x-enclave-rule` metadata, not the text."""
    error = flight_info_error(enclave, user, sql)
    assert error.code() == code, error
    metadata = dict(error.trailing_metadata() or ()) | dict(error.initial_metadata() or ())
    assert metadata.get("x-enclave-rule") == rule, metadata
    assert f"refused ({rule})" in error.details()
    # The hint, apart from the message: the rule's section of the documentation.
    assert metadata.get("x-enclave-hint", "").startswith(f"rule `{rule}` and what it allows instead"), metadata
    assert "docs/query-rules.md" not in error.details()


def test_adbc_shows_the_rule_and_the_hint_among_an_errors_details(enclave):
    """The ADBC driver hands the metadata to the user as the error's details."""
    with enclave.connect("alice") as conn, pytest.raises(Exception) as error:
        query(conn, REFUSED[0][0])
    details = dict(getattr(error.value, "details", None) or ())
    assert details.get(b"x-enclave-rule") == b"row-level", details
    assert b'section "Contributors, not groups"' in details.get(b"x-enclave-hint", b""), details


@pytest.mark.parametrize(("condition", "said"), [
    ("service_month + 1 > 0", "Cannot coerce arithmetic expression Utf8 + Int64"),
    ("service_month > 202404", "ndb.receipts.service_month > 202404 compares text with a number"),
    ("prefecture_code IN (1, 13)", "compares text with a number"),
])
def test_a_type_error_is_the_users_planning_error_without_a_rule(enclave, condition, said):
    """A type mistake is the user's error (INVALID_ARGUMENT, saying what does
    not fit), over gRPC and ADBC alike: not an internal error, not a silently
    empty answer, and no rule refused it."""
    sql = f"SELECT sex, count(DISTINCT person_id) AS n FROM ndb.receipts WHERE {condition} GROUP BY sex"
    error = flight_info_error(enclave, "alice", sql)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    assert said in error.details(), error.details()
    assert "internal" not in error.details().lower()
    assert "x-enclave-rule" not in dict(error.trailing_metadata() or ())
    assert "SHOW COLUMNS" in dict(error.trailing_metadata() or ()).get("x-enclave-hint", "")
    with enclave.connect("alice") as conn:
        message = error_of(conn, sql)
    assert said in message and "INVALID_ARGUMENT" in message.upper(), message


def test_copy_is_refused_and_writes_nothing(enclave, release):
    """COPY … TO is refused (`copy`) and the file is not written."""
    target = release.workdir / "copied.csv"
    with enclave.connect("alice") as conn:
        message = error_of(conn, f"COPY (SELECT 1) TO '{target}'")
    assert "refused (copy)" in message
    assert not target.exists()


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_parquet('{tables}/ndb.receipts/service_month=2023-04/part-0.parquet')",
    "SELECT count(*) AS n FROM read_parquet('{tables}/ndb.receipts/service_month=2023-04/part-0.parquet')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT count(*) AS n FROM '/etc/passwd'",
    "SELECT count(*) AS n FROM '{tables}/ndb.receipts/service_month=2023-04/part-0.parquet'",
])
def test_files_cannot_be_read(enclave, release, data_values, sql):
    """Table functions and file paths reach no file, inside the data
    directory or outside it."""
    statement = sql.format(tables=release.dir / "tables")
    with enclave.connect("alice") as conn:
        message = error_of(conn, statement)
    assert re.search(r"not found|refused|unknown|invalid function", message, re.IGNORECASE), message
    assert "root:" not in message
    # The error may echo the path the user typed (its digits are theirs).
    assert_no_data(message, data_values - set(re.findall(r"\d+", statement)))


def test_expired_project_is_refused(enclave):
    """A project past its last day answers nothing (`project-expired`)."""
    with enclave.connect("dave") as conn:
        message = error_of(conn, "SELECT sex, count(DISTINCT person_id) AS n FROM ndb.receipts GROUP BY sex")
    assert "refused (project-expired)" in message


@pytest.mark.parametrize(("sql", "says"), [
    ("SELECT disease_code, count(*) AS n FROM ndb.diagnoses GROUP BY disease_code",
     "column `disease_code` of ndb.diagnoses is not in project `main`'s grant"),
    ("SELECT count(*) AS n FROM care.claims", "table care.claims is not in project `main`'s grant"),
])
def test_a_name_outside_the_grant_says_so_and_how_to_ask_for_it(enclave, sql, says):
    """The catalog is public: a table or column it has that the project's
    grant leaves out is named as such, not as a typo; a name the catalog
    lacks stays a planning error."""
    with enclave.connect("alice") as conn:
        message = error_of(conn, sql)
        typo = error_of(conn, "SELECT disease_kode, count(*) AS n FROM ndb.diagnoses GROUP BY disease_kode")
    assert f"refused (not-granted): {says}" in message, message
    assert "amending the project's application" in message, message
    assert "not-granted" not in typo and "disease_kode" in typo, typo


def test_user_without_project_is_refused(enclave):
    """A researcher in no active project may log in but not query (`no-project`)."""
    with enclave.connect("carol") as conn:
        message = error_of(conn, "SELECT sex, count(DISTINCT person_id) AS n FROM ndb.receipts GROUP BY sex")
    assert "refused (no-project)" in message


def test_header_naming_another_project_is_refused(enclave):
    """The header cannot pick a project the user is not a member of."""
    with enclave.connect("alice", project="r5") as conn:
        message = error_of(conn, "SELECT sex, count(DISTINCT person_id) AS n FROM ndb.receipts GROUP BY sex")
    assert "refused (no-project)" in message


def test_bad_password_is_unauthenticated(enclave):
    """A wrong password fails the handshake with gRPC UNAUTHENTICATED, over
    pyarrow.flight and over ADBC."""
    client = flight.FlightClient(enclave.uri)
    with pytest.raises(flight.FlightUnauthenticatedError):
        client.authenticate_basic_token(b"alice", b"not-alices-password")
    with pytest.raises(flight.FlightUnauthenticatedError):
        client.authenticate_basic_token(b"nobody", b"whatever-password")
    with pytest.raises(Exception) as error:
        with enclave.connect("alice", secret="not-alices-password") as conn:
            query(conn, "SELECT 1 AS one")
    assert "UNAUTHENTICATED" in str(error.value).upper()


@pytest.mark.parametrize("header", [
    None,
    b"Bearer not-a-token",
    b"Bearer YWxpY2U6OTk5OTk5OTk5OTpkZWFkYmVlZg.c2lnbmF0dXJl",
    "forged",
])
def test_bad_bearer_token_is_unauthenticated(enclave, header):
    """Calls without a token, with garbage, or with a real token altered in
    one character get gRPC UNAUTHENTICATED."""
    client = flight.FlightClient(enclave.uri)
    if header == "forged":
        _, value = client.authenticate_basic_token(b"alice", password("alice").encode())
        token = value.decode().removeprefix("Bearer ")
        forged_user = token.replace(token[0], "b" if token[0] != "b" else "c", 1)
        header = f"Bearer {forged_user}".encode()
    headers = [] if header is None else [(b"authorization", header)]
    options = flight.FlightCallOptions(headers=headers)
    descriptor = flight.FlightDescriptor.for_command(
        flightsql.statement_query("SELECT sex, count(DISTINCT person_id) AS n FROM ndb.receipts GROUP BY sex"))
    with pytest.raises(flight.FlightUnauthenticatedError):
        client.get_flight_info(descriptor, options)


CARE_PROJECT = {"care": Project("care", ("carla",), grants=("ndb.receipts", "care.claims"))}

PUBLICATION_REFUSED = [
    # 介護DB municipality codes are grouped by only (population tiers).
    "SELECT sex, count(DISTINCT person_id) AS n FROM care.claims WHERE municipality_code = '131003' GROUP BY sex",
    "SELECT sex, count(DISTINCT person_id) FILTER (WHERE municipality_code LIKE '13%') AS n FROM care.claims GROUP BY sex",
    # A result reading care data shows no age finer than the care bands.
    "SELECT r.age_band, count(DISTINCT r.person_id) AS n FROM ndb.receipts r "
    "JOIN care.claims c ON r.person_id = c.person_id GROUP BY r.age_band",
    "SELECT count(DISTINCT person_id) AS n FROM care.claims "
    "WHERE person_id IN (SELECT person_id FROM ndb.receipts WHERE age_band = '60-64')",
]


def test_publication_rules_over_flight(start_server, data_values):
    """Over a real client, municipality selections and fine ages in care
    results are refused by the publication rules, while municipalities as
    group keys and care bands in linked results are released."""
    server = start_server("publication", {"carla": "researcher"}, CARE_PROJECT)
    with server.connect("carla", "care") as conn:
        for sql in PUBLICATION_REFUSED:
            message = error_of(conn, sql)
            assert "refused (publication)" in message, (sql, message)
            assert_no_data(message, data_values)
        pooled = query(conn, "SELECT substr(municipality_code, 3, 3) AS municipality, "
                             "count(DISTINCT person_id) AS persons FROM care.claims GROUP BY 1").to_pylist()
        assert pooled and all(row["persons"] >= 10 for row in pooled), pooled
        linked = query(conn, "SELECT c.age_band, count(DISTINCT r.person_id) AS persons FROM ndb.receipts r "
                             "JOIN care.claims c ON r.person_id = c.person_id GROUP BY c.age_band").to_pylist()
        assert linked and {row["age_band"] for row in linked} <= {
            "00-64", "65-69", "70-74", "75-79", "80-84", "85-89", "90-94", "95+"}
