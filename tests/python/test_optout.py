"""Opt-out: persons whose requests the steward records vanish from every
query at once.

Runs on a server of its own (own state directory, same release) so that the
opt-outs do not change the numbers the other tests expect. The requests are
built from the identified extracts and the generator's truth: kana name as a
facility wrote it, birth date and sex of chosen persons. The expected drop is
computed with DuckDB from the release's linkage records (truth record →
person_id), never from the server."""

import csv
from collections import Counter, defaultdict

import pytest

from conftest import Project, as_dict, query

PROJECT = Project("oo", ("olga",), rounding=None)
BY_SEX = "SELECT sex, count(DISTINCT person_id) AS persons FROM ndb.receipts GROUP BY sex"
WAREKI_BASE = {"1": 1867, "2": 1911, "3": 1925, "4": 1988, "5": 2018}


def wareki_to_iso(value: str) -> str:
    """`3301220` (Shōwa 30-12-20) → `1955-12-20`."""
    era, year, month, day = value[0], int(value[1:3]), value[3:5], value[5:7]
    return f"{WAREKI_BASE[era] + year:04d}-{month}-{day}"


def ndb_identities(release) -> list[tuple[str, str, str]]:
    """(kana name, sex, birth date) of every NDB receipt, in the truth file's
    record order (files by path, receipts in file order)."""
    files = sorted((release.extracts / "ndb").rglob("*.UKE"), key=lambda p: p.relative_to(release.extracts).as_posix())
    out = []
    for path in files:
        for line in path.read_bytes().decode("cp932").splitlines():
            fields = line.split(",")
            if fields[0] == "RE":
                out.append((fields[-1], fields[5], wareki_to_iso(fields[6])))
    return out


def truth(release, name: str) -> list[dict]:
    with open(release.extracts / "truth" / name, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def chosen(release):
    """Opt-out requests for three persons with receipts and one identity
    nobody has; returns (requests, the person_ids they name).

    Only persons the linkage got exactly right (one person_id holding all
    their records and nobody else's) whose birth date and sex nobody else
    shares are picked, so the expected effect is unambiguous."""
    persons = {p["person"]: p for p in truth(release, "persons.csv")}
    identities = ndb_identities(release)
    ndb_truth = truth(release, "ndb.csv")
    assert len(identities) == len(ndb_truth), "receipts and truth records differ in number"
    kana_of = defaultdict(Counter)
    for (kana, sex, birth), record in zip(identities, ndb_truth):
        person = persons[record["person"]]
        assert (sex, birth) == (person["sex"], person["birth_date"]), "truth order does not match the extracts"
        kana_of[record["person"]][kana] += 1

    # truth person ↔ release person_id, over every source
    con = release.duckdb()
    links = con.execute(f"SELECT source, record_seq, person_id FROM '{release.dir}/linkage/records.parquet'").fetchall()
    seq_person = {}
    for source in {s for s, _, _ in links}:
        for row in truth(release, f"{source}.csv"):
            seq_person[(source, int(row["record_seq"]))] = row["person"]
    ids_of, persons_of = defaultdict(set), defaultdict(set)
    for source, seq, person_id in links:
        ids_of[seq_person[(source, seq)]].add(person_id)
        persons_of[person_id].add(seq_person[(source, seq)])
    twins = Counter((p["birth_date"], p["sex"]) for p in persons.values())
    clean = sorted(
        (p for p, ids in ids_of.items()
         if len(ids) == 1 and persons_of[next(iter(ids))] == {p}
         and twins[(persons[p]["birth_date"], persons[p]["sex"])] == 1),
        key=int,
    )
    with_receipts = [p for p in clean if p in kana_of]
    assert len(with_receipts) >= 3
    picked = with_receipts[:3]
    requests = [(kana_of[p].most_common(1)[0][0], persons[p]["birth_date"], persons[p]["sex"]) for p in picked]
    requests.append(("ムメイ　ゴンベエ", "1901-01-01", "1"))  # nobody
    return requests, {next(iter(ids_of[p])) for p in picked}


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
    file.write_text("kana_name,birth_date,sex\n" + "".join(f"{k},{b},{s}\n" for k, b, s in requests), encoding="utf-8")
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
