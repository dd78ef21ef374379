"""Opt-out: persons whose requests the steward records vanish from every
query at once.

Runs on a server of its own (own state directory, same release) so that the
opt-outs do not change the numbers the other tests expect. The requests are
built from the identified extracts and the generator's truth: kana name as a
facility wrote it, birth date and sex of chosen persons. The expected drop is
computed with DuckDB from the release's linkage records (truth record →
person_id), never from the server."""

import pytest

from conftest import Project, as_dict, query
from optouts import requests_for, write_requests

PROJECT = Project("oo", ("olga",), rounding=None)
BY_SEX = "SELECT sex, count(DISTINCT person_id) AS persons FROM ndb.receipts GROUP BY sex"


@pytest.fixture(scope="module")
def chosen(release):
    return requests_for(release)


@pytest.fixture(scope="module")
def optout_server(start_server):
    return start_server("optout", {"olga": "researcher"}, {PROJECT.id: PROJECT})


def test_optout_removes_exactly_the_persons_present(optout_server, release, cli, chosen, tmp_path):
    """After `enclave optout add`, persons by sex (rounding none) drop by
    exactly the opted-out persons who have receipts, on the running server,
    in the release's tables and in a workspace table built before the
    opt-out; before it they equal DuckDB's counts."""
    requests, person_ids = chosen
    before_expected = dict(release.expected("SELECT sex, count(DISTINCT person_id) FROM ndb.receipts GROUP BY sex", PROJECT))
    with optout_server.connect("olga") as conn:
        before = as_dict(query(conn, BY_SEX), "sex", "persons")
        query(conn, "CREATE TABLE work.early AS SELECT DISTINCT person_id, sex FROM ndb.receipts")
    assert before == before_expected

    file = tmp_path / "requests.csv"
    write_requests(file, requests)
    cli.add_optouts(optout_server.state, release.location, release.key, file)

    ids = ",".join(map(str, person_ids))
    present = dict(release.expected(
        f"SELECT sex, count(DISTINCT person_id) FROM ndb.receipts WHERE person_id IN ({ids}) GROUP BY sex", PROJECT))
    assert sum(present.values()) == 3
    with optout_server.connect("olga") as conn:
        after = as_dict(query(conn, BY_SEX), "sex", "persons")
        early = as_dict(query(conn, BY_SEX.replace("ndb.receipts", "work.early")), "sex", "persons")
        query(conn, "DROP TABLE work.early")
    assert after == {sex: n - present.get(sex, 0) for sex, n in before.items()}
    assert early == after


def test_optout_reaches_workspace_tables(optout_server, release, chosen):
    """After the opt-out (previous test), a table saved from receipts holds
    no opted-out person: its person count is DuckDB's without them."""
    _, person_ids = chosen
    ids = ",".join(map(str, person_ids))
    [(expected,)] = release.expected(
        f"SELECT count(DISTINCT person_id) FROM ndb.receipts WHERE person_id NOT IN ({ids})", PROJECT)
    with optout_server.connect("olga") as conn:
        query(conn, "CREATE TABLE work.everyone AS SELECT DISTINCT person_id, sex FROM ndb.receipts")
        table = query(conn, "SELECT sex, count(DISTINCT person_id) AS persons FROM work.everyone GROUP BY sex")
        query(conn, "DROP TABLE work.everyone")
    assert sum(table.column("persons").to_pylist()) == expected
