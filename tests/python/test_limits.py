"""The per-user cap on concurrent queries."""

import threading

from conftest import MAX_CONCURRENT_PER_USER, query

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
