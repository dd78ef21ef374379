"""Each project sees its own person ids (照合禁止): two projects over the same
release that save the same cohort hold unrelated ids for the same persons,
yet every aggregate is the same in both, and an opt-out removes the person
from both.

The ids are read where an operator would see them, in the workspace files
the two projects saved (a researcher cannot read an id as a value). A row is
matched to the same person in the other project and in the release by
attributes no other row of the cohort shares (sex, age band, number of
receipts, total points), computed again with DuckDB over the release."""

import io
from collections import Counter

import pyarrow.parquet as pq
import pytest

from conftest import Project, as_dict, query
from optouts import requests_for, write_requests

ALPHA = Project("ida", ("ida",), rounding=None)
BETA = Project("idb", ("idb",), rounding=None)
SELECTION = "age_band IN ('65-69', '70-74', '75-79')"
COHORT = ("CREATE TABLE work.sample AS SELECT person_id, sex, age_band, count(*) AS receipts, "
          f"sum(total_points) AS points FROM ndb.receipts WHERE {SELECTION} "
          "GROUP BY person_id, sex, age_band")
BY_SEX = "SELECT sex, count(DISTINCT person_id) AS persons FROM ndb.receipts GROUP BY sex"
JOINED = ("SELECT c.sex, count(DISTINCT c.person_id) AS persons, sum(r.days) AS days "
          "FROM work.sample c JOIN ndb.receipts r ON c.person_id = r.person_id GROUP BY c.sex")


@pytest.fixture(scope="module")
def server(start_server):
    server = start_server("project-ids", {"ida": "researcher", "idb": "researcher"},
                          {ALPHA.id: ALPHA, BETA.id: BETA})
    for project in (ALPHA, BETA):
        with server.connect(project.members[0]) as conn:
            query(conn, COHORT)
    return server


def workspace_rows(release, project: str) -> list[dict]:
    """The rows of `project`'s saved sample, read from the store as an
    operator would (hidden person column included)."""
    [path] = [p for p in release.workspace_files(project) if p.endswith("/sample.parquet")]
    return pq.read_table(io.BytesIO(release.read_object(path))).to_pylist()


def by_attributes(rows, person) -> dict[tuple, int]:
    """Attributes → person id, for attributes that exactly one row has."""
    key = lambda row: (row["sex"], row["age_band"], row["receipts"], row["points"])  # noqa: E731
    counts = Counter(key(row) for row in rows)
    return {key(row): person(row) for row in rows if counts[key(row)] == 1}


def rank_correlation(xs: list[int], ys: list[int]) -> float:
    """Spearman's rank correlation (ids are distinct: no ties)."""
    def ranks(values):
        order = sorted(range(len(values)), key=values.__getitem__)
        out = [0] * len(values)
        for rank, index in enumerate(order):
            out[index] = rank
        return out
    rx, ry, n = ranks(xs), ranks(ys), len(xs)
    return 1 - 6 * sum((a - b) ** 2 for a, b in zip(rx, ry)) / (n * (n * n - 1))


def test_two_projects_hold_unrelated_ids_for_the_same_persons(server, release):
    alpha, beta = workspace_rows(release, ALPHA.id), workspace_rows(release, BETA.id)
    truth = [dict(zip(("person_id", "sex", "age_band", "receipts", "points"), row)) for row in release.expected(
        "SELECT person_id, sex, age_band, count(*), sum(total_points) FROM ndb.receipts "
        f"WHERE {SELECTION} GROUP BY person_id, sex, age_band", ALPHA)]
    assert len(alpha) == len(beta) == len(truth) > 200

    # Visible and hidden person columns agree within a project.
    assert all(row["person_id"] == row["__enclave_person"] for row in alpha + beta)
    ids = {name: {row["person_id"] for row in rows}
           for name, rows in (("alpha", alpha), ("beta", beta), ("release", truth))}
    assert not ids["alpha"] & ids["beta"], "a person id is shared by two projects"
    assert not ids["alpha"] & ids["release"] and not ids["beta"] & ids["release"]

    matched = [by_attributes(rows, lambda row: row["person_id"]) for rows in (alpha, beta, truth)]
    keys = sorted(set(matched[0]) & set(matched[1]) & set(matched[2]))
    assert len(keys) > 200, "too few rows to match persons by their attributes"
    in_alpha, in_beta, in_release = ([m[key] for key in keys] for m in matched)
    for xs, ys in ((in_alpha, in_beta), (in_alpha, in_release), (in_beta, in_release)):
        assert abs(rank_correlation(xs, ys)) < 0.15
    # Within a project one person keeps one id across rows of several bands.
    persons = Counter(row["person_id"] for row in truth)
    assert Counter(Counter(row["person_id"] for row in alpha).values()) == Counter(persons.values())


def test_aggregates_are_the_same_in_both_projects(server, release):
    answers = []
    for project in (ALPHA, BETA):
        with server.connect(project.members[0]) as conn:
            answers.append((as_dict(query(conn, BY_SEX), "sex", "persons"),
                            sorted(query(conn, JOINED).to_pylist(), key=lambda row: row["sex"])))
    assert answers[0] == answers[1]
    expected = dict(release.expected(BY_SEX.replace(" AS persons", ""), ALPHA))
    assert answers[0][0] == {sex: n for sex, n in expected.items() if n >= ALPHA.k}


def test_an_opt_out_removes_the_person_from_both_projects(server, release, cli, tmp_path):
    requests, person_ids = requests_for(release)
    before = {}
    for project in (ALPHA, BETA):
        with server.connect(project.members[0]) as conn:
            before[project.id] = (as_dict(query(conn, BY_SEX), "sex", "persons"),
                                  as_dict(query(conn, JOINED), "sex", "persons"))
    file = tmp_path / "requests.csv"
    write_requests(file, requests)
    cli.add_optouts(server.state, release.location, release.key, file)

    ids = ",".join(map(str, person_ids))
    gone = dict(release.expected(f"SELECT sex, count(DISTINCT person_id) FROM ndb.receipts "
                                 f"WHERE person_id IN ({ids}) GROUP BY sex", ALPHA))
    gone_from_cohort = dict(release.expected(f"SELECT sex, count(DISTINCT person_id) FROM ndb.receipts "
                                             f"WHERE person_id IN ({ids}) AND {SELECTION} GROUP BY sex", ALPHA))
    assert sum(gone.values()) == 3
    for project in (ALPHA, BETA):
        with server.connect(project.members[0]) as conn:
            after = as_dict(query(conn, BY_SEX), "sex", "persons")
            cohort = as_dict(query(conn, JOINED), "sex", "persons")
        everyone, cohort_before = before[project.id]
        assert after == {sex: n - gone.get(sex, 0) for sex, n in everyone.items()}
        assert cohort == {sex: n - gone_from_cohort.get(sex, 0) for sex, n in cohort_before.items()}
