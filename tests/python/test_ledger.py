"""The release ledger (docs/query-rules.md, "Across queries"): a value whose
persons are within k-1 of a value released before repeats that answer, in
any project, after a restart and after a SIGKILL right after an answer; the
Flight metadata names the query whose result made the earlier release an
answer repeats when it is the same project's, and no more than "another
project" otherwise. A project's values answered fresh stop at its budget,
and repeats stay free."""

import json
import signal

import flightsql
import grpc
from conftest import Project, Server, query
from test_refusals import flight_info_error

USERS = {"lena": "researcher", "marc": "researcher", "nora": "researcher"}
# Two ledger-protected projects (the server's default protection) of one
# researcher over the same data, and one of another researcher.
PROJECTS = {
    "led-a": Project("led-a", ("lena",), protection=None, rounding=None),
    "led-b": Project("led-b", ("lena",), protection=None, rounding=None),
    "led-c": Project("led-c", ("marc",), protection=None, rounding=None),
    "led-d": Project("led-d", ("nora",), protection=None, rounding=None, fresh_values=2),
}


def persons_sql(sex: str, bands: tuple[str, ...]) -> str:
    listed = ", ".join(f"'{band}'" for band in bands)
    return ("SELECT count(DISTINCT person_id) AS persons FROM ndb.receipts "
            f"WHERE sex = '{sex}' AND age_band IN ({listed})")


BANDS = ["00-04", "05-09", "10-14", "15-19", "20-24", "25-29", "30-34", "35-39", "40-44", "45-49", "50-54",
         "55-59", "60-64", "65-69", "70-74", "75-79", "80-84", "85-89", "90-94", "95+"]


def near_pairs(release, project: Project) -> list[tuple[str, str]]:
    """Pairs of counts of persons whose sets differ by 1 to k-1 persons
    (found in the release with DuckDB): persons of one sex in a run of age
    bands, with and without its last band."""
    pairs = []
    for sex in ("1", "2"):
        for start in range(len(BANDS) - 1):
            for end in range(start + 2, len(BANDS) + 1):
                wide, narrow = persons_sql(sex, tuple(BANDS[start:end])), persons_sql(sex, tuple(BANDS[start:end - 1]))
                [(n_wide,)] = release.expected(wide, project)
                [(n_narrow,)] = release.expected(narrow, project)
                if 0 < n_wide - n_narrow < project.k and n_narrow >= project.k:
                    pairs.append((wide, narrow))
    assert len(pairs) >= 2, "the release has too few pairs of counts a few persons apart"
    return pairs


# A value reaches sets up to 23 persons from it (surely below k, then with
# a falling chance): sets this far apart are always answered apart.
REACH = 24


def far_pair(release, project: Project) -> tuple[str, str]:
    """Two counts of persons beyond each other's reach (24 or more apart)."""
    for start in range(len(BANDS) - 2):
        wide, narrow = persons_sql("1", tuple(BANDS[start:start + 2])), persons_sql("1", (BANDS[start],))
        [(n_wide,)] = release.expected(wide, project)
        [(n_narrow,)] = release.expected(narrow, project)
        if n_wide - n_narrow >= REACH and n_narrow >= project.k:
            return wide, narrow
    raise AssertionError("the release has no pair of counts 24 or more persons apart")


def answer_and_metadata(server: Server, user: str, project: str, sql: str) -> tuple[int, dict]:
    """The first value of a result and its Flight metadata (`query_id`,
    `released_groups`, `ledger`)."""
    client, options = server.flight(user, project)
    reader, _ = flightsql.fetch(client, options, flightsql.statement_query(sql))
    chunk = reader.read_chunk()
    return chunk.data.column(0)[0].as_py(), json.loads(chunk.app_metadata.to_pybytes())


def answer_and_note(server: Server, user: str, project: str, sql: str) -> tuple[int, dict]:
    value, metadata = answer_and_metadata(server, user, project, sql)
    return value, metadata["ledger"]


def repeat_of(metadata: dict) -> dict:
    """How a later answer of the same project names the release `metadata`'s
    result made."""
    return {"origin": "this-project", "release": metadata["ledger"]["release"], "query_id": metadata["query_id"]}


def test_a_count_a_few_persons_apart_repeats_the_earlier_answer(release, start_server):
    server = start_server("ledger", USERS, PROJECTS)
    project = PROJECTS["led-a"]
    wide, narrow = near_pairs(release, project)[0]
    first, first_metadata = answer_and_metadata(server, "lena", "led-a", wide)
    first_note = first_metadata["ledger"]
    assert first_note["fresh_values"] == 1 and first_note["repeated_values"] == 0
    assert first_note["release"] is not None and first_note["repeats"] == []
    assert first_metadata["query_id"].startswith("q-")
    second, second_metadata = answer_and_metadata(server, "lena", "led-a", narrow)
    second_note = second_metadata["ledger"]
    assert second == first
    assert (second_note["fresh_values"], second_note["repeated_values"]) == (0, 1)
    # The earlier release is named by the query whose result made it.
    assert second_note["repeats"] == [repeat_of(first_metadata)]
    assert second_metadata["query_id"] != first_metadata["query_id"]
    # Counts beyond each other's reach get answers of their own, near their
    # exact values (noise of a few persons).
    far_wide, far_narrow = far_pair(release, project)
    wide_value, wide_note = answer_and_note(server, "lena", "led-a", far_wide)
    narrow_value, narrow_note = answer_and_note(server, "lena", "led-a", far_narrow)
    assert wide_note["release"] not in [repeat.get("release") for repeat in narrow_note["repeats"]]
    for sql, value in ((far_wide, wide_value), (far_narrow, narrow_value)):
        [(exact,)] = release.expected(sql, project)
        assert abs(value - exact) <= 20, (sql, value, exact)


def test_two_projects_of_one_researcher_share_the_ledger(release, start_server):
    """Asking the two halves of a difference in two projects (or as two
    researchers) gives one answer twice."""
    server = start_server("ledger-projects", USERS, PROJECTS)
    wide, narrow = near_pairs(release, PROJECTS["led-a"])[0]
    with server.connect("lena", "led-a") as conn:
        first = query(conn, wide).column(0)[0].as_py()
    with server.connect("lena", "led-b") as conn:
        assert query(conn, narrow).column(0)[0].as_py() == first
    with server.connect("marc", "led-c") as conn:
        assert query(conn, narrow).column(0)[0].as_py() == first


def test_another_projects_release_is_not_named(release, start_server):
    """An answer repeating another project's release says only that: not
    its number, its query or its project."""
    server = start_server("ledger-named", USERS, PROJECTS)
    wide, narrow = near_pairs(release, PROJECTS["led-a"])[0]
    first, first_metadata = answer_and_metadata(server, "lena", "led-a", wide)
    again, metadata = answer_and_metadata(server, "marc", "led-c", narrow)
    assert again == first
    assert metadata["ledger"]["repeats"] == [{"origin": "another-project"}]
    told = json.dumps(metadata)
    for secret in (first_metadata["query_id"], "led-a"):
        assert secret not in told
    # The same researcher in another project of theirs is told no more.
    _, own_other = answer_and_metadata(server, "lena", "led-b", narrow)
    assert own_other["ledger"]["repeats"] == [{"origin": "another-project"}]


def test_the_ledger_survives_a_restart_and_a_sigkill(cli, release, start_server):
    """The second count of a near pair, asked after a restart (or after a
    SIGKILL that came right after the first was answered), repeats the
    first: its cell was durable before the answer left. (Asking the same
    count again would not show it: the same persons get the same noise.)"""
    server = start_server("ledger-restart", USERS, PROJECTS)
    (wide, narrow), (killed_wide, killed_narrow) = near_pairs(release, PROJECTS["led-a"])[:2]
    with server.connect("lena", "led-a") as conn:
        first = query(conn, wide).column(0)[0].as_py()
    server.stop()
    restarted = Server(cli, release.location, server.state, release.workdir / "serve-ledger-restart-2.log")
    try:
        with restarted.connect("lena", "led-b") as conn:
            assert query(conn, narrow).column(0)[0].as_py() == first
            killed_answer = query(conn, killed_wide).column(0)[0].as_py()
        restarted.process.send_signal(signal.SIGKILL)
        restarted.process.wait(10)
    finally:
        restarted.stop()
    again = Server(cli, release.location, server.state, release.workdir / "serve-ledger-restart-3.log")
    try:
        with again.connect("marc", "led-c") as conn:
            assert query(conn, killed_narrow).column(0)[0].as_py() == killed_answer
    finally:
        again.stop()


def test_fresh_values_stop_at_the_projects_budget(cli, release, start_server):
    """A project with a budget of two fresh values: two counts beyond each
    other's reach are answered, a third fresh one is refused with its rule
    (and still after a restart), while a repeat of an earlier answer stays
    free. The refusal names the project's totals, never a value."""
    server = start_server("ledger-budget", USERS, PROJECTS)
    project = PROJECTS["led-d"]
    wide, narrow = far_pair(release, project)
    wide_value, wide_note = answer_and_note(server, "nora", "led-d", wide)
    assert (wide_note["fresh_values"], wide_note["fresh_values_left"]) == (1, 1)
    _, narrow_note = answer_and_note(server, "nora", "led-d", narrow)
    assert (narrow_note["fresh_values"], narrow_note["fresh_values_left"]) == (1, 0)
    third = persons_sql("2", tuple(BANDS[:10]))
    [(exact,)] = release.expected(third, project)
    error = flight_info_error(server, "nora", third)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
    metadata = dict(error.trailing_metadata() or ()) | dict(error.initial_metadata() or ())
    assert metadata.get("x-enclave-rule") == "fresh-value-budget", metadata
    assert "has had 2 of its 2 values answered fresh" in error.details(), error.details()
    assert str(exact) not in error.details()
    again, again_note = answer_and_note(server, "nora", "led-d", wide)
    assert again == wide_value
    assert (again_note["fresh_values"], again_note["repeated_values"], again_note["fresh_values_left"]) == (0, 1, 0)
    server.stop()
    restarted = Server(cli, release.location, server.state, release.workdir / "serve-ledger-budget-2.log")
    try:
        assert "fresh-value-budget" in flight_info_error(restarted, "nora", third).details()
    finally:
        restarted.stop()
