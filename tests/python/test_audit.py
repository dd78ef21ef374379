"""The audit log of a running server: queries, logins and workflow steps are
recorded before they are answered, and `enclave audit verify` checks the
chain and the signed checkpoints against the public key."""

import json
import resource
import signal
import time

import pytest

from conftest import Project, error_of, query


def events(cli, server, *filters):
    out = cli.run("audit", "search", "--dir", server.state / "audit", *filters).stdout
    rows = []
    for line in out.splitlines():
        seq, at, actor, action, outcome, detail = line.split("\t", 5)
        rows.append({"seq": int(seq), "actor": actor, "action": action, "outcome": outcome,
                     "detail": json.loads(detail)})
    return rows


def test_queries_and_logins_are_recorded_and_the_log_verifies(cli, enclave):
    sql = "SELECT sex, count(DISTINCT person_id) AS persons FROM ndb.receipts GROUP BY sex"
    with enclave.connect("alice") as conn:
        query(conn, sql)
        error_of(conn, "SELECT person_id FROM ndb.receipts")
    recorded = events(cli, enclave, "--actor", "alice", "--action", "query")
    ok = [e for e in recorded if e["detail"]["sql"] == sql]
    assert ok and ok[-1]["outcome"] == "ok" and ok[-1]["detail"]["released_groups"] == 2
    refused = [e for e in recorded if e["detail"]["sql"] == "SELECT person_id FROM ndb.receipts"]
    assert refused and refused[-1]["outcome"] == "refused" and refused[-1]["detail"]["rule"] == "row-level"
    assert events(cli, enclave, "--actor", "alice", "--action", "login", "--outcome", "ok")
    assert events(cli, enclave, "--action", "server.start")

    verified = cli.run("audit", "verify", "--dir", enclave.state / "audit",
                       "--public-key", enclave.state / "audit-signing.key.pub")
    assert "the audit log verifies" in verified.stdout


def test_a_changed_event_fails_verification(cli, enclave, tmp_path):
    import shutil
    copy = tmp_path / "audit"
    shutil.copytree(enclave.state / "audit", copy)
    segment = sorted(copy.glob("*.seg"))[0]
    data = bytearray(segment.read_bytes())
    at = data.find(b'"alice"')
    assert at > 0
    data[at + 1] = ord("m")  # "mlice"
    segment.write_bytes(bytes(data))
    done = cli.run("audit", "verify", "--dir", copy, "--public-key", enclave.state / "audit-signing.key.pub",
                   check=False)
    assert done.returncode != 0
    assert "was changed, removed or reordered" in done.stderr and "offset" in done.stderr


def test_near_identical_queries_raise_an_alert(cli, enclave):
    with enclave.connect("alice") as conn:
        for i in range(12):
            query(conn, "SELECT sex, count(DISTINCT person_id) AS persons FROM ndb.receipts "
                        f"WHERE total_points <> {1000 + i} GROUP BY sex")
    out = cli.run("audit", "alerts", "--dir", enclave.state / "audit").stdout
    assert any(line.startswith("near-identical-queries\talice\t") for line in out.splitlines()), out


# ------------------------------------------------- the operators' audit schema

# What a query event may hold: SQL, counts, timings, refusals and the release
# ledger's note (counts and ledger release numbers), never the values of a
# result (the audit schema is not under disclosure control).
QUERY_DETAIL_KEYS = {"project", "sql", "phase", "duration_ms", "released_groups",
                     "suppressed_groups", "suppressed_values", "rows_written", "rule", "error",
                     "fingerprint", "tables", "columns", "rows_scanned", "ledger", "query_id",
                     "analysis"}


def test_an_empty_audit_query_carries_no_disclosure_warning(enclave):
    """The empty-result warning explains disclosure control; an operator's
    query over the audit log has none to explain."""
    with enclave.connect("otto") as conn:
        table = query(conn, "SELECT seq FROM audit.events WHERE actor = 'no-such-actor'")
    assert table.num_rows == 0
    assert b"enclave.warning" not in (table.schema.metadata or {})


def test_an_operator_queries_the_audit_log_with_sql(enclave):
    marker = "SELECT age_band, count(DISTINCT person_id) AS persons FROM ndb.receipts GROUP BY age_band"
    with enclave.connect("alice") as conn:
        query(conn, marker)
        error_of(conn, "SELECT person_id, total_points FROM ndb.receipts")
    # An operator has no project: the audit schema is their default.
    with enclave.connect("otto") as conn:
        mine = query(conn, "SELECT seq, at, actor, project, outcome, released_groups, rule, detail "
                           "FROM audit.events WHERE actor = 'alice' AND action = 'query' "
                           f"AND sql = '{marker}'").to_pylist()
        assert mine and mine[-1]["project"] == "main" and mine[-1]["outcome"] == "ok"
        assert mine[-1]["released_groups"] > 0 and mine[-1]["at"] is not None
        # What the query read: its tables and columns (the guard's person
        # key included), the rows its scans produced, its plan's fingerprint.
        read = json.loads(mine[-1]["detail"])
        assert read["tables"] == ["ndb.receipts"]
        assert {"ndb.receipts.age_band", "ndb.receipts.person_id"} <= set(read["columns"])
        assert "ndb.receipts.total_points" not in read["columns"]
        scanned = query(conn, "SELECT rows_scanned, fingerprint FROM audit.events "
                              f"WHERE seq = {mine[-1]['seq']}").to_pylist()[0]
        assert scanned["rows_scanned"] > 0 and len(scanned["fingerprint"]) == 16
        refusals = query(conn, "SELECT rule, count(*) AS n FROM audit.events "
                               "WHERE actor = 'alice' AND outcome = 'refused' GROUP BY rule").to_pylist()
        assert {"rule": "row-level", "n": refusals[0]["n"]} in refusals
        # Row-level events are visible as they are: no k-threshold applies.
        one = query(conn, "SELECT actor FROM audit.events WHERE action = 'server.start'")
        assert one.num_rows == 1
        checkpoints = query(conn, "SELECT size, root, signature FROM audit.checkpoints")
        assert all(len(root) == 64 for root in checkpoints.column("root").to_pylist())
    with enclave.connect("otto", project="audit") as conn:
        details = query(conn, "SELECT detail FROM audit.events WHERE action = 'query'").column("detail")
        for detail in details.to_pylist():
            assert set(json.loads(detail)) <= QUERY_DETAIL_KEYS, detail


def test_the_audit_schema_is_listed_and_read_only(enclave):
    with enclave.connect("otto") as conn:
        objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
        tables = {(s["db_schema_name"], t["table_name"])
                  for c in objects for s in c["catalog_db_schemas"] for t in s["db_schema_tables"]}
        assert tables == {("audit", "events"), ("audit", "alerts"), ("audit", "checkpoints")}
        for sql in ["CREATE TABLE work.copy AS SELECT * FROM audit.events",
                    "INSERT INTO audit.events SELECT * FROM audit.events",
                    "DELETE FROM audit.events",
                    "DROP TABLE audit.events",
                    "COPY (SELECT * FROM audit.events) TO '/tmp/events.csv'"]:
            assert "refused" in error_of(conn, sql), sql
        assert query(conn, "SELECT count(*) AS n FROM audit.events").column("n")[0].as_py() > 0


def test_only_operators_open_the_audit_schema(enclave):
    for user in ["alice", "rita", "carol"]:
        with enclave.connect(user, project="audit") as conn:
            message = error_of(conn, "SELECT count(*) FROM audit.events")
            assert "do not allow" in message or "not approved" in message, (user, message)
    # A researcher's own session has no audit schema either.
    with enclave.connect("alice") as conn:
        assert "audit" in error_of(conn, "SELECT count(*) FROM audit.events")
    # An operator is no project member: project data stays closed to them.
    with enclave.connect("otto", project="main") as conn:
        assert "not a member" in error_of(conn, "SELECT count(DISTINCT person_id) FROM ndb.receipts")


def test_audit_queries_are_themselves_recorded_and_alerts_are_a_table(enclave):
    with enclave.connect("alice") as conn:
        for i in range(11):
            query(conn, "SELECT sex, count(DISTINCT person_id) AS persons FROM ndb.receipts "
                        f"WHERE total_points > {2000 + i} GROUP BY sex")
    probe = "SELECT kind, actor, count FROM audit.alerts WHERE actor = 'alice'"
    with enclave.connect("otto") as conn:
        alerts = query(conn, probe).to_pylist()
        assert any(a["kind"] == "near-identical-queries" and a["count"] >= 10 for a in alerts), alerts
        # The literals differ, the plan does not: one fingerprint.
        shapes = query(conn, "SELECT count(DISTINCT fingerprint) AS n FROM audit.events "
                             "WHERE actor = 'alice' AND sql LIKE '%WHERE total_points > 20%'")
        assert shapes.column("n")[0].as_py() == 1
        recorded = query(conn, "SELECT actor, outcome FROM audit.events "
                               f"WHERE action = 'audit.query' AND sql = '{probe.replace(chr(39), chr(39) * 2)}'")
        assert recorded.to_pylist() == [{"actor": "otto", "outcome": "ok"}]


def test_commands_beside_the_server_are_recorded_in_its_log(cli, enclave):
    cli.add_user(enclave.state, "zed")
    refused = cli.run("user", "add", "--state", enclave.state, "--name", "zed", "--role", "researcher",
                      "--password-stdin", input="another-password-of-zed\n", check=False)
    assert refused.returncode != 0
    wanted = ("SELECT outcome, actor, detail FROM audit.events WHERE action = 'user.add' "
              """AND detail LIKE '%"user":"zed"%' ORDER BY seq""")
    deadline = time.monotonic() + 30
    with enclave.connect("otto") as conn:
        while True:
            rows = query(conn, wanted).to_pylist()
            if len(rows) >= 4 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    # Each command: `requested` before the change, then its outcome.
    assert [r["outcome"] for r in rows] == ["requested", "ok", "requested", "failed"], rows
    assert all(r["actor"].startswith("os:") for r in rows)
    assert json.loads(rows[0]["detail"])["user"] == "zed"
    assert "already" in json.loads(rows[3]["detail"])["error"]
    assert not list((enclave.state / "audit" / "inbox").glob("*.json"))


def test_refused_tokens_are_recorded(enclave):
    import pyarrow.flight as flight
    import flightsql
    client = flight.FlightClient(enclave.uri)
    marker = "SELECT 'refused-token-probe' AS probe"
    for header in [b"Bearer not-a-token", None]:
        headers = [] if header is None else [(b"authorization", header)]
        descriptor = flight.FlightDescriptor.for_command(flightsql.statement_query(marker))
        try:
            client.get_flight_info(descriptor, flight.FlightCallOptions(headers=headers))
            raise AssertionError("a call without a valid token was answered")
        except flight.FlightUnauthenticatedError:
            pass
    with enclave.connect("otto") as conn:
        reasons = query(conn, "SELECT detail FROM audit.events "
                              "WHERE action = 'token' AND outcome = 'refused'").column("detail").to_pylist()
    reasons = {json.loads(detail)["reason"] for detail in reasons}
    assert {"invalid or expired", "missing"} <= reasons, reasons


def _ignore_file_size_signal() -> None:
    # A write past RLIMIT_FSIZE then fails with EFBIG instead of killing the
    # server (subprocess restores the default before this runs).
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def test_a_workspace_change_whose_audit_write_fails_changes_nothing(release, start_server):
    server = start_server("write-ahead", {"wanda": "researcher"}, {"wa": Project("wa", ("wanda",))},
                          preexec_fn=_ignore_file_size_signal)
    create = ("CREATE TABLE work.cohort AS SELECT DISTINCT person_id FROM ndb.receipts "
              "WHERE age_band = '70-74'")
    with server.connect("wanda") as conn:
        # A long comment makes the audit segment far larger than the
        # workspace file the statement would write.
        query(conn, "SELECT count(*) AS n FROM ndb.receipts -- " + "x" * 200_000)
        segments = sorted((server.state / "audit").glob("*.seg"))
        limit = max(path.stat().st_size for path in segments)
        # From now on no file of the server may grow past the segment's size:
        # the next audit event cannot be appended.
        resource.prlimit(server.process.pid, resource.RLIMIT_FSIZE, (limit, limit))
        with pytest.raises(Exception) as refused:
            query(conn, create)
    assert "unavailable" in str(refused.value).lower(), refused.value
    assert release.workspace_files("wa") == [], "the workspace changed although its audit record failed"
    server.stop()
