"""Limits: the per-user cap on concurrent queries, the time limit and the
memory limit of one query; each is a clear error and the server stays up."""

import threading

from conftest import MAX_CONCURRENT_PER_USER, Project, error_of, query

# A join of each person's receipts with themselves, thrice: allowed, and slow
# enough (about a second) that queries started together overlap.
SLOW = ("SELECT r1.sex, count(*) AS n FROM ndb.receipts r1 "
        "JOIN ndb.receipts r2 ON r1.person_id = r2.person_id "
        "JOIN ndb.receipts r3 ON r1.person_id = r3.person_id "
        "JOIN ndb.receipts r4 ON r1.person_id = r4.person_id GROUP BY r1.sex")


def test_queries_over_the_cap_are_resource_exhausted(enclave):
    """With the cap at 2, six queries started at once: the extra ones fail
    with RESOURCE_EXHAUSTED (`too-many-queries`), at least one runs, the
    server stays up and answers the next query."""
    users = 3 * MAX_CONCURRENT_PER_USER
    connections = [enclave.connect("frank") for _ in range(users)]
    start = threading.Barrier(users)
    outcomes: list[str] = []

    def run(conn):
        start.wait()
        try:
            query(conn, SLOW)
            outcomes.append("ok")
        except Exception as error:
            outcomes.append(str(error))

    try:
        threads = [threading.Thread(target=run, args=(conn,)) for conn in connections]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
    finally:
        for conn in connections:
            conn.close()

    assert len(outcomes) == users
    exhausted = [o for o in outcomes if o != "ok"]
    assert "ok" in outcomes
    assert exhausted, "no query was refused"
    for message in exhausted:
        assert "RESOURCE_EXHAUSTED" in message.upper() or "RESOURCEEXHAUSTED" in message.upper(), message
        assert "too-many-queries" in message, message
    assert enclave.alive()
    with enclave.connect("frank") as conn:
        assert query(conn, "SELECT sex, count(DISTINCT person_id) AS n FROM ndb.receipts GROUP BY sex").num_rows == 2


# Every person's receipts joined with themselves six times: far more work
# than a second allows.
ENDLESS = ("SELECT r1.sex, count(*) AS n FROM ndb.receipts r1 "
           + " ".join(f"JOIN ndb.receipts r{i} ON r1.person_id = r{i}.person_id" for i in range(2, 7))
           + " GROUP BY r1.sex")

# Every person's receipts paired with each other, grouped finely: the
# per-person level of the released aggregate holds a group per pair.
MEMORY_HUNGRY = ("SELECT r1.sex, r1.service_month, r2.facility_id, count(*) AS n FROM ndb.receipts r1 "
                 "JOIN ndb.receipts r2 ON r1.person_id = r2.person_id "
                 "GROUP BY r1.sex, r1.service_month, r2.facility_id")


def limited_server(start_server, name: str, *limits: str):
    user = f"{name}-user"
    return start_server(name, {user: "researcher"}, {name: Project(name, (user,))}, limits), user


def test_a_query_over_the_time_limit_is_stopped(start_server):
    """DEADLINE_EXCEEDED naming the limit; the server answers the next query."""
    # 3 s: long enough for a small query on a cluster (each cluster job
    # costs a few hundred ms of scheduling), far too short for ENDLESS.
    server, user = limited_server(start_server, "brief", "--query-timeout-secs", "3")
    with server.connect(user) as conn:
        message = error_of(conn, ENDLESS)
        assert "DEADLINE" in message.upper() and "time limit of 3 s" in message, message
        assert query(conn, "SELECT sex, count(*) AS n FROM ndb.receipts GROUP BY sex").num_rows == 2
    assert server.alive()


def test_a_query_over_the_memory_limit_is_refused(start_server):
    """RESOURCE_EXHAUSTED naming the memory limit, no engine detail; the
    server answers the next query."""
    server, user = limited_server(start_server, "small", "--query-memory-mb", "1")
    with server.connect(user) as conn:
        message = error_of(conn, MEMORY_HUNGRY)
        assert "RESOURCE_EXHAUSTED" in message.upper() or "RESOURCEEXHAUSTED" in message.upper(), message
        assert "memory limit of 1 MiB" in message, message
        assert "HashJoin" not in message and "bytes" not in message, message
        assert query(conn, "SELECT sex, count(*) AS n FROM ndb.receipts GROUP BY sex").num_rows == 2
    assert server.alive()
