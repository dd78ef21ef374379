"""The audit log of a running server: queries, logins and workflow steps are
recorded before they are answered, and `enclave audit verify` checks the
chain and the signed checkpoints against the public key."""

import json

from conftest import error_of, query


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
