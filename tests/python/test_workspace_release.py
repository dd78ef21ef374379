"""Workspace tables are bound to the release they were built from: their
person ids are the project's ids of that release's persons, so after a new ingest the
old table is refused by name (with how to rebuild it), never joined to the
new release's ids; dropped and built again, it gives the new release's
numbers, and an opt-out recorded after the new release reaches it.

Runs on a data directory of its own: a second ingest there would change
the release every other test reads."""

import secrets

from conftest import Project, Release, Server, error_of, make_state, query
from optouts import requests_for, write_requests

PROJECT = Project("wr", ("wren",), rounding=None)
COHORT = ("CREATE TABLE work.cohort AS SELECT DISTINCT person_id, sex FROM ndb.receipts "
          "WHERE age_band IN ('65-69', '70-74', '75-79')")
JOINED = ("SELECT c.sex, count(DISTINCT c.person_id) AS persons "
          "FROM work.cohort c JOIN ndb.receipts r ON c.person_id = r.person_id GROUP BY c.sex")
EXPECTED = ("SELECT sex, count(DISTINCT person_id) FROM ndb.receipts "
            "WHERE age_band IN ('65-69', '70-74', '75-79') GROUP BY sex")


def ingest(cli, work, data, key, seed: int) -> Release:
    """A synthetic extract of 800 persons (`seed`) ingested into `data` as
    its newest release."""
    extracts = work / f"extracts-{seed}"
    cli.run("synth", "--persons", 800, "--seed", seed, "--out", extracts)
    cli.run("ingest", "--extracts", extracts, "--data", data, "--key-file", key)
    return Release(work, extracts, data, key, sorted((data / "releases").glob("r*"))[-1])


def persons_by_sex(server: Server, sql: str) -> dict[str, int]:
    with server.connect("wren") as conn:
        return {row["sex"]: row["persons"] for row in query(conn, sql).to_pylist()}


def test_a_table_of_an_older_release_is_refused_until_rebuilt(cli, tmp_path):
    data, key, state = tmp_path / "data", tmp_path / "key", tmp_path / "state"
    key.write_text(secrets.token_hex(32))
    key.chmod(0o600)
    first = ingest(cli, tmp_path, data, key, seed=21)
    make_state(cli, state, {"wren": "researcher"}, {PROJECT.id: PROJECT})
    server = Server(cli, data, state, tmp_path / "serve-1.log")
    try:
        with server.connect("wren") as conn:
            query(conn, COHORT)
        built = persons_by_sex(server, JOINED)
    finally:
        server.stop()
    assert built == {sex: n for sex, n in first.expected(EXPECTED, PROJECT) if n >= PROJECT.k}

    second = ingest(cli, tmp_path, data, key, seed=22)
    assert second.dir.name != first.dir.name
    server = Server(cli, data, state, tmp_path / "serve-2.log")
    try:
        with server.connect("wren") as conn:
            # Every way of reading it: directly, joined, copied, and
            # hidden in a subquery, a CTE or a UNION branch.
            for sql in (JOINED, "SELECT sex, count(*) AS n FROM work.cohort GROUP BY sex",
                        "CREATE TABLE work.copy AS SELECT * FROM work.cohort",
                        "SELECT sex, count(DISTINCT person_id) AS n FROM ndb.receipts "
                        "WHERE person_id IN (SELECT person_id FROM work.cohort) GROUP BY sex",
                        "WITH c AS (SELECT person_id, sex FROM work.cohort) "
                        "SELECT sex, count(DISTINCT person_id) AS n FROM c GROUP BY sex",
                        "SELECT sex, count(DISTINCT person_id) AS n FROM (SELECT person_id, sex FROM ndb.receipts "
                        "UNION ALL SELECT person_id, sex FROM work.cohort) t GROUP BY sex"):
                message = error_of(conn, sql)
                assert "refused (workspace): work.cohort was built from release " + first.dir.name in message, message
                assert f"now serves release {second.dir.name}" in message, message
                assert "DROP TABLE work.cohort" in message, message
            # Still listed (so it can be found and dropped), then rebuilt.
            objects = conn.adbc_get_objects(depth="tables", db_schema_filter="work").read_all().to_pylist()
            assert "cohort" in [t["table_name"] for c in objects for s in c["catalog_db_schemas"] or []
                                for t in s["db_schema_tables"] or []]
            query(conn, "DROP TABLE work.cohort")
            query(conn, COHORT)
        rebuilt = persons_by_sex(server, JOINED)

        # Opt-outs recorded now (against the new release) leave the rebuilt
        # table's answers at once.
        requests, person_ids = requests_for(second, count=12)
        ids = ",".join(map(str, person_ids))
        in_cohort = second.expected(EXPECTED.replace("GROUP BY", f"AND person_id IN ({ids}) GROUP BY"), PROJECT)
        assert sum(n for _, n in in_cohort) > 0, "no opted-out person is in the cohort"
        write_requests(tmp_path / "requests.csv", requests)
        cli.add_optouts(state, second.location, key, tmp_path / "requests.csv")
        after_opt_out = persons_by_sex(server, JOINED)
    finally:
        server.stop()
    assert rebuilt == {sex: n for sex, n in second.expected(EXPECTED, PROJECT) if n >= PROJECT.k}
    assert rebuilt != built
    without = EXPECTED.replace("GROUP BY", f"AND person_id NOT IN ({ids}) GROUP BY")
    assert after_opt_out == {sex: n for sex, n in second.expected(without, PROJECT) if n >= PROJECT.k}
    assert after_opt_out != rebuilt
