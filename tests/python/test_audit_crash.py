"""A server killed with SIGKILL under concurrent load loses no audit event of
a query it answered; on restart a torn tail is cut off and recorded, and the
log verifies."""

import signal
import threading
import time

import pytest

from conftest import Project, Server, query

USERS = {"kim": "researcher"}


# Cursors of connections the kill cut off complain when garbage-collected.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_sigkill_under_load_loses_no_answered_event(cli, release, start_server):
    server = start_server("crash", USERS, {"crash": Project("crash", ("kim",))})
    answered: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load(worker: int) -> None:
        try:
            with server.connect("kim") as conn:
                i = 0
                while not stop.is_set():
                    sql = (f"SELECT sex, count(DISTINCT person_id) AS persons FROM ndb.receipts "
                           f"WHERE age_band <> 'w{worker}-{i}' GROUP BY sex")
                    query(conn, sql)
                    with lock:
                        answered.append(sql)
                    i += 1
        except Exception:
            pass  # the server died under us: expected

    workers = [threading.Thread(target=load, args=(w,)) for w in range(6)]
    for worker in workers:
        worker.start()
    # Killed mid-load: once enough queries were answered (a few seconds in
    # process, longer on a cluster), with more in flight.
    deadline = time.monotonic() + 120
    while len(answered) < 12 and time.monotonic() < deadline:
        time.sleep(0.2)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(10)
    stop.set()
    for worker in workers:
        worker.join(30)
    assert len(answered) >= 10, "the load ran"

    # Restart on the same state: recovery cuts any torn tail and records it.
    restarted = Server(cli, release.location, server.state, release.workdir / "serve-crash-2.log")
    restarted.stop()

    out = cli.run("audit", "search", "--dir", server.state / "audit", "--action", "query").stdout
    recorded = {line.split("\t", 5)[5] for line in out.splitlines()}
    missing = [sql for sql in answered if not any(sql in detail for detail in recorded)]
    assert not missing, f"{len(missing)} answered queries are not in the log, e.g. {missing[:1]}"
    verified = cli.run("audit", "verify", "--dir", server.state / "audit",
                       "--public-key", server.state / "audit-signing.key.pub")
    assert "the audit log verifies" in verified.stdout
