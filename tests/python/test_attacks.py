"""Adversarial suite: attacks on the guard that must FAIL.

The threat model is DESIGN.md's core rule 4: the researcher is the
adversary, knows SQL and the data model, knows some facts about a target
person and has unlimited queries. Nothing about one person may leave.

Every attack here is aimed at one real person of the test release: the
`target`, found with DuckDB over the release's Parquet files as the only
person in a quasi-identifier cell (sex, age band, prefecture) of
ndb.receipts, ndb.diagnoses and ndb.drugs. The attacker is assumed to know
that cell (their background knowledge); the target's ground truth (person
id, receipt count, total points, diagnosis and drug codes) comes from
DuckDB, never from the server.

An attack passes when nothing about the target comes out: the statement is
refused (by any rule: the rules are being redesigned, so no test names one
unless it must), or the values computed from fewer than k persons are
absent or NULL. Tests check for the leak itself:

- value attacks: the column `v` of the result must not hold the target's
  true value (person id, points, variance, codes …);
- differential attacks (side channels, subqueries, HAVING, LIMIT, the
  suppressed-group count): the same statement is sent twice, once with a
  condition that matches the target and once with one that matches nobody;
  the outcome (error text, or released rows and `enclave.suppressed_groups`)
  must be the same.

After every attack the server must still be up and answer an ordinary query
from another member of the project. Attacks that could stop a server (the
denial-of-service class, login throttling) each get a server of their own.
The gRPC API's Login is called with grpcio and a hand-built request.

Many of these tests fail against a guard that leaks; none is marked xfail:
they are the definition of done for the guard.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from dataclasses import dataclass

import grpc
import pyarrow as pa
import pyarrow.flight as flight
import pytest

import flightsql
from conftest import FULL_PERIOD, Project, query, suppressed

# Who is who on the attack server.
ATTACKER = "mallory"  # project `atk`: all tables, k = 10, counts rounded to 10
RAW_ATTACKER = "trudy"  # project `atk-raw`: all tables, k = 10, no rounding
BYSTANDER = "olive"  # project `atk`: an ordinary researcher beside the attacker
K = 10

ORDINARY = "SELECT sex, count(DISTINCT person_id) AS persons FROM ndb.receipts GROUP BY sex"

# Words a clear refusal of an oversized or overdeep request uses.
CLEAR_LIMIT = re.compile(
    r"limit|too (large|long|big|many|deep|complex)|at most|exceed|maximum|nest|depth|size", re.IGNORECASE)


# ---------------------------------------------------------------- the target


@dataclass(frozen=True)
class Target:
    """The person the attacks aim at, and what is true about them in their
    cell (the rows an attacker can single out with `cell()`)."""

    person_id: int
    sex: str
    age_band: str
    prefecture_code: str
    receipts: int  # ndb.receipts rows in the cell
    points: int  # sum(total_points) of those rows
    distinct_points: int  # sum(DISTINCT total_points)
    var_points: float  # var_pop(total_points)
    avg_points_with_days: float  # avg(total_points) of rows with days
    codes: frozenset[str]  # icd10 of ndb.diagnoses in the cell
    drugs: frozenset[str]  # drug_code of ndb.drugs in the cell
    nobody: int  # a person_id that does not exist
    absent_code: str  # an icd10 of >= k persons that the target does not have
    common_codes: frozenset[str]  # the target's codes held by >= k persons in all

    def cell(self, alias: str = "") -> str:
        """The attacker's background knowledge as a predicate."""
        a = f"{alias}." if alias else ""
        return (f"({a}sex = '{self.sex}' AND {a}age_band = '{self.age_band}' "
                f"AND {a}prefecture_code = '{self.prefecture_code}')")

    def no_cell(self, alias: str = "") -> str:
        """The same predicate for a cell that holds nobody (no prefecture 'XX')."""
        a = f"{alias}." if alias else ""
        return f"({a}sex = '{self.sex}' AND {a}age_band = '{self.age_band}' AND {a}prefecture_code = 'XX')"


TARGET_SQL = """
WITH
r AS (SELECT sex, age_band, prefecture_code, count(DISTINCT person_id) AS persons, min(person_id) AS pid,
             count(*) AS receipts, sum(total_points) AS points, count(DISTINCT total_points) AS point_values
      FROM ndb.receipts GROUP BY ALL),
d AS (SELECT sex, age_band, prefecture_code, count(DISTINCT person_id) AS persons, min(person_id) AS pid,
             count(DISTINCT icd10) AS codes
      FROM ndb.diagnoses GROUP BY ALL),
g AS (SELECT sex, age_band, prefecture_code, count(DISTINCT person_id) AS persons, min(person_id) AS pid
      FROM ndb.drugs GROUP BY ALL)
SELECT r.pid, r.sex, r.age_band, r.prefecture_code
FROM r JOIN d USING (sex, age_band, prefecture_code) JOIN g USING (sex, age_band, prefecture_code)
WHERE r.persons = 1 AND d.persons = 1 AND g.persons = 1 AND d.pid = r.pid AND g.pid = r.pid
  AND r.receipts >= 3 AND r.receipts % 10 <> 0 AND r.points % 10 <> 0 AND r.point_values >= 2
  AND d.codes >= 2
ORDER BY r.receipts DESC, r.sex, r.age_band, r.prefecture_code
LIMIT 1
"""


@pytest.fixture(scope="module")
def target(release) -> Target:
    """The only person of a (sex, age band, prefecture) cell in receipts,
    diagnoses and drugs, with at least 3 receipts (a count and a point sum
    that are not multiples of 10) and 2 diagnosis codes."""
    db = release.duckdb(FULL_PERIOD)
    found = db.execute(TARGET_SQL).fetchone()
    assert found, "the release has no quasi-identifier cell with one person: the attacks need one"
    pid, sex, age, pref = found
    cell = f"sex = '{sex}' AND age_band = '{age}' AND prefecture_code = '{pref}'"

    def one(sql):
        return db.execute(sql).fetchone()[0]

    codes = frozenset(r[0] for r in db.execute(f"SELECT DISTINCT icd10 FROM ndb.diagnoses WHERE {cell}").fetchall())
    persons_by_code = dict(db.execute(
        "SELECT icd10, count(DISTINCT person_id) FROM ndb.diagnoses GROUP BY icd10").fetchall())
    common = frozenset(c for c in codes if persons_by_code.get(c, 0) >= K)
    absent = sorted((n, c) for c, n in persons_by_code.items() if c not in codes and n >= K)
    assert common and absent, "the target needs a common code and a common code it does not have"
    return Target(
        person_id=pid, sex=sex, age_band=age, prefecture_code=pref,
        receipts=one(f"SELECT count(*) FROM ndb.receipts WHERE {cell}"),
        points=one(f"SELECT sum(total_points) FROM ndb.receipts WHERE {cell}"),
        distinct_points=one(f"SELECT sum(DISTINCT total_points) FROM ndb.receipts WHERE {cell}"),
        var_points=one(f"SELECT var_pop(total_points) FROM ndb.receipts WHERE {cell}"),
        avg_points_with_days=one(
            f"SELECT avg(total_points) FROM ndb.receipts WHERE {cell} AND days IS NOT NULL"),
        codes=codes,
        drugs=frozenset(r[0] for r in db.execute(f"SELECT DISTINCT drug_code FROM ndb.drugs WHERE {cell}").fetchall()),
        nobody=one("SELECT max(person_id) FROM ndb.receipts") + 1000,
        absent_code=absent[-1][1],
        common_codes=common,
    )


# ------------------------------------------------------ the attack server


@dataclass
class Outcome:
    """What came back: an error text, or a released table."""

    error: str | None = None
    table: pa.Table | None = None

    @property
    def rows(self) -> list[dict]:
        return [] if self.table is None else self.table.to_pylist()

    def column(self, name: str) -> list:
        if self.table is None or name not in self.table.column_names:
            return []
        return self.table.column(name).to_pylist()

    def key(self):
        """Everything a client learns, in a comparable form."""
        if self.error is not None:
            return ("error", self.error)
        rows = sorted(repr(sorted(row.items())) for row in self.rows)
        return ("released", tuple(rows), suppressed(self.table))

    def __str__(self) -> str:
        if self.error is not None:
            return f"error: {self.error[:300]}"
        return f"{len(self.rows)} rows {self.rows[:6]}, suppressed_groups={suppressed(self.table)}"


def seen_in(error: Exception) -> str:
    """Everything a client learns from an error: its text and the metadata
    the driver hands over with it (the rule, the hint), less the
    transport's date header."""
    details = sorted((key, value) for key, value in (getattr(error, "details", None) or ()) if key != b"date")
    return f"{error} {details}" if details else str(error)


class Researcher:
    """One user's ADBC connection to a server; every statement it sends is
    followed by a check that the server still answers another user."""

    def __init__(self, server, user: str, bystander: "Researcher | None" = None):
        self.server, self.user, self.bystander = server, user, bystander
        self.conn = server.connect(user)

    def run(self, sql: str) -> Outcome:
        try:
            outcome = Outcome(table=query(self.conn, sql))
        except Exception as error:  # adbc_driver_manager's DB-API errors
            outcome = Outcome(error=seen_in(error))
        if self.bystander is not None:
            self.bystander.assert_served()
        return outcome

    def update(self, sql: str) -> Outcome:
        """Sends a statement as an update (DoPut): the outcome is its row
        count or error."""
        try:
            with self.conn.cursor() as cur:
                cur.adbc_statement.set_sql_query(sql)
                rows = cur.adbc_statement.execute_update()
            outcome = Outcome(table=pa.table({"rows_written": [rows]}))
        except Exception as error:
            outcome = Outcome(error=seen_in(error))
        if self.bystander is not None:
            self.bystander.assert_served()
        return outcome

    def assert_served(self) -> None:
        assert self.server.alive(), f"the server died:\n{self.server.output()}"
        table = query(self.conn, ORDINARY)
        assert table.num_rows == 2, f"an ordinary query got {table.to_pylist()}"

    def close(self) -> None:
        self.conn.close()


@pytest.fixture(scope="module")
def attack_server(start_server, release):
    tables = tuple(release.tables())
    projects = {
        "atk": Project("atk", (ATTACKER, BYSTANDER), grants=tables, k=K, rounding=10),
        "atk-raw": Project("atk-raw", (RAW_ATTACKER,), grants=tables, k=K, rounding=None),
    }
    users = {ATTACKER: "researcher", RAW_ATTACKER: "researcher", BYSTANDER: "researcher"}
    return start_server("attacks", users, projects)


@pytest.fixture(scope="module")
def olive(attack_server):
    researcher = Researcher(attack_server, BYSTANDER)
    yield researcher
    researcher.close()


@pytest.fixture(scope="module")
def mallory(attack_server, olive):
    """The attacker in `atk` (counts rounded to 10)."""
    researcher = Researcher(attack_server, ATTACKER, olive)
    yield researcher
    researcher.close()


@pytest.fixture(scope="module")
def trudy(attack_server, olive):
    """The attacker in `atk-raw` (no rounding: exact numbers show exact leaks)."""
    researcher = Researcher(attack_server, RAW_ATTACKER, olive)
    yield researcher
    researcher.close()


_LONE = itertools.count()


@pytest.fixture
def lone_server(start_server):
    """A server of its own for attacks that may stop it: the attacker and
    the bystander in project `lone` (ndb.receipts)."""
    name = f"attacks-lone-{next(_LONE)}"
    server = start_server(name, {ATTACKER: "researcher", BYSTANDER: "researcher"},
                          {"lone": Project("lone", (ATTACKER, BYSTANDER))})
    yield server
    server.stop()


def assert_serves_everyone(server) -> None:
    """The server is up and answers the attacker and the bystander, each on
    a new connection (a new login)."""
    assert server.alive(), f"the server died:\n{server.output()}"
    for user in (ATTACKER, BYSTANDER):
        with server.connect(user) as conn:
            table = query(conn, ORDINARY)
        assert table.num_rows == 2, f"{user}'s ordinary query got {table.to_pylist()}"


# ------------------------------------------------------------- assertions


def same_number(a, b) -> bool:
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


def assert_value_not_released(outcome: Outcome, truth, what: str) -> None:
    """No released `v` equals the target's true value."""
    leaked = [v for v in outcome.column("v") if v is not None and not isinstance(v, str) and same_number(v, truth)]
    assert not leaked, f"the target's {what} ({truth}) was released: {outcome}"


def assert_codes_not_released(outcome: Outcome, codes: frozenset[str], what: str) -> None:
    """No released `v` is a list of codes all of which are the target's."""
    for value in outcome.column("v"):
        if value:
            released = {code.strip() for code in str(value).split(",")}
            assert not released <= codes, f"the target's {what} {sorted(released)} were released: {outcome}"


def assert_same(a: Outcome, b: Outcome, what: str) -> None:
    """Matching the target or nobody must make no difference."""
    assert a.key() == b.key(), (
        f"{what}: the outcome depends on the target\n"
        f"  matching the target: {a}\n  matching nobody:     {b}")


def assert_same_failure(a: Outcome, b: Outcome, what: str) -> None:
    """Whether a statement fails, and how, must not depend on the target.
    (The values of two answers whose populations differ by the target are
    the differencing attack, answered by rounding and the release ledger:
    not this check.)"""
    assert (a.error is None) == (b.error is None) and a.error == b.error, (
        f"{what}: whether it fails depends on the target\n"
        f"  matching the target: {a}\n  matching nobody:     {b}")


def differential(researcher, target: Target, sql: str, what: str, by: str = "") -> None:
    """Runs `sql` with {who} matching the target's cell (they are alone in
    it; ids are no dial) and a cell of nobody; `by` is a table alias."""
    has, nobody = target.cell(by), target.no_cell(by)
    assert_same(researcher.run(sql.format(who=has)), researcher.run(sql.format(who=nobody)), what)


def test_the_empty_result_warning_is_no_oracle_on_a_withheld_group(trudy, target):
    """An empty result carries a warning with advice. Whether the group was
    withheld (the target, alone in their cell) or nothing matched (a cell of
    nobody), the result and its warning are the same."""
    sql = "SELECT sex, count(DISTINCT person_id) AS persons FROM ndb.receipts WHERE {who} GROUP BY sex"
    alone = trudy.run(sql.format(who=target.cell()))
    nobody = trudy.run(sql.format(who=target.no_cell()))
    for outcome in (alone, nobody):
        assert outcome.error is None and outcome.rows == [], str(outcome)
        assert b"enclave.warning" in (outcome.table.schema.metadata or {})
    assert alone.table.schema.metadata == nobody.table.schema.metadata


# =====================================================================
# 1. Aggregate filters escape person counting: k is counted over the
#    group, the aggregate sees only its FILTER / CASE rows.
# =====================================================================


def test_filtered_avg_distinct_person_id_releases_the_person_id(mallory, target):
    """avg(DISTINCT person_id) FILTER (WHERE <target's cell>) in a group of
    1,500 persons is the target's person_id."""
    outcome = mallory.run(f"SELECT sex, avg(DISTINCT person_id) FILTER (WHERE {target.cell()}) AS v "
                          "FROM ndb.receipts GROUP BY sex")
    assert_value_not_released(outcome, target.person_id, "person_id")


FILTERED_VALUES = [
    # (id, aggregate over ndb.receipts with {cell}, Target attribute)
    ("count-star-filter", "count(*) FILTER (WHERE {cell})", "receipts"),
    ("count-of-case-null-else", "count(CASE WHEN {cell} THEN 1 END)", "receipts"),
    ("sum-of-negated-filter", "sum(-total_points) FILTER (WHERE {cell})", "-points"),
    ("sum-distinct-filter", "sum(DISTINCT total_points) FILTER (WHERE {cell})", "distinct_points"),
    ("var-pop-filter", "var_pop(total_points) FILTER (WHERE {cell})", "var_points"),
    ("stddev-pop-filter", "stddev_pop(total_points) FILTER (WHERE {cell})", "sqrt:var_points"),
    ("regr-avgy-filter", "regr_avgy(total_points, days) FILTER (WHERE {cell})", "avg_points_with_days"),
    ("regr-count-filter", "regr_count(total_points, total_points) FILTER (WHERE {cell})", "receipts"),
    ("avg-distinct-case-person-id", "avg(DISTINCT CASE WHEN {cell} THEN person_id END)", "person_id"),
    ("sum-distinct-case-person-id", "sum(DISTINCT CASE WHEN {cell} THEN person_id END)", "person_id"),
]


def truth_of(target: Target, attribute: str):
    if attribute.startswith("-"):
        return -getattr(target, attribute[1:])
    if attribute.startswith("sqrt:"):
        return math.sqrt(getattr(target, attribute[5:]))
    return getattr(target, attribute)


@pytest.mark.parametrize(("aggregate", "attribute"), [(a, t) for _, a, t in FILTERED_VALUES],
                         ids=[i for i, _, _ in FILTERED_VALUES])
def test_filtered_aggregate_releases_one_persons_value(trudy, target, aggregate, attribute):
    """An aggregate whose FILTER or CASE keeps only the target's rows, in a
    group of 1,500 persons: the group passes k, the value is the target's
    (exact, in the unrounded project)."""
    outcome = trudy.run(f"SELECT sex, {aggregate.format(cell=target.cell())} AS v FROM ndb.receipts GROUP BY sex")
    assert_value_not_released(outcome, truth_of(target, attribute), attribute)


def test_filtered_string_agg_releases_drug_codes(mallory, target):
    """string_agg(drug_code) FILTER (WHERE <cell>): the target's drugs, in a
    group that passes k."""
    outcome = mallory.run(f"SELECT sex, string_agg(drug_code, ',') FILTER (WHERE {target.cell()}) AS v "
                          "FROM ndb.drugs GROUP BY sex")
    assert_codes_not_released(outcome, target.drugs, "drug codes")


PERSON_COUNTS = [
    ("count-distinct-case-person-id", "count(DISTINCT CASE WHEN {who} AND icd10 = '{code}' THEN person_id END)"),
    ("count-distinct-person-id-filter", "count(DISTINCT person_id) FILTER (WHERE {who} AND icd10 = '{code}')"),
    ("count-star-filter", "count(*) FILTER (WHERE {who} AND icd10 = '{code}')"),
]


@pytest.mark.parametrize("aggregate", [a for _, a in PERSON_COUNTS], ids=[i for i, _ in PERSON_COUNTS])
def test_filtered_person_count_reveals_a_diagnosis(trudy, target, aggregate):
    """Does the target have diagnosis X? A count of persons (or rows) with
    X in the target's cell, in a group of 1,500 persons: 1 or 0."""
    code = sorted(target.codes)[0]
    sql = "SELECT sex, {agg} AS v FROM ndb.diagnoses GROUP BY sex"
    has = trudy.run(sql.format(agg=aggregate.format(who=target.cell(), code=code)))
    nobody = trudy.run(sql.format(agg=aggregate.format(who=target.no_cell(), code=code)))
    assert_same(has, nobody, "a filtered count")


def test_left_join_to_a_constant_acts_as_a_filter(trudy, target):
    """LEFT JOIN (VALUES (X)) v ON d.icd10 = v.code AND d.person_id = <target>:
    the join condition does what a FILTER does, count(v.code) counts the
    target's rows with diagnosis X."""
    code = sorted(target.codes)[0]
    differential(trudy, target,
                 "SELECT d.sex, count(v.code) AS v FROM ndb.diagnoses d "
                 f"LEFT JOIN (VALUES ('{code}')) AS v(code) ON d.icd10 = v.code AND d.{{who}} GROUP BY d.sex",
                 "a join condition on one person")


def test_max_of_a_per_person_count_releases_one_persons_count(mallory, target):
    """A per-person count (inner GROUP BY person_id) carries no tags, so
    MAX of it is allowed: with the count filtered to the target's cell, the
    maximum is the target's receipt count."""
    outcome = mallory.run(
        "SELECT r.sex, max(c.n) AS v FROM ndb.receipts r JOIN ("
        f"  SELECT person_id, count(*) FILTER (WHERE {target.cell()}) AS n FROM ndb.receipts GROUP BY person_id"
        ") c ON r.person_id = c.person_id GROUP BY r.sex")
    assert_value_not_released(outcome, target.receipts, "receipt count")


# =====================================================================
# 2. Sensitivity and person tags wash off: VALUES rows carry no tags.
# =====================================================================


def values_list(codes) -> str:
    return ", ".join(f"('{code}')" for code in sorted(codes))


@pytest.fixture(scope="module")
def all_codes(release) -> list[str]:
    """Every icd10 of the release: the attacker's copy of the code master."""
    return [r[0] for r in release.duckdb(FULL_PERIOD).execute(
        "SELECT DISTINCT icd10 FROM ndb.diagnoses WHERE icd10 IS NOT NULL").fetchall()]


def rare_values(release, table: str, column: str, group: str = "prefecture_code") -> dict[str, set[str]]:
    """Per group of at least k persons, the values of `column` that fewer
    than k persons of the group have."""
    rows = release.duckdb(FULL_PERIOD).execute(
        f"SELECT {group}, {column} FROM {table} WHERE {column} IS NOT NULL "
        f"AND {group} IN (SELECT {group} FROM {table} GROUP BY {group} HAVING count(DISTINCT person_id) >= {K}) "
        f"GROUP BY {group}, {column} HAVING count(DISTINCT person_id) < {K}").fetchall()
    rare: dict[str, set[str]] = {}
    for key, value in rows:
        rare.setdefault(key, set()).add(value)
    assert rare, f"no {column} of fewer than {K} persons in a {group} group of {table}: nothing to find"
    return rare


def assert_no_rare_value(outcome: Outcome, rare: dict[str, set[str]], what: str,
                         group: str = "prefecture_code") -> None:
    """No released `v` (a value or a comma-separated list) holds a value that
    fewer than k persons of its group have."""
    for row in outcome.rows:
        if row.get("v") is None:
            continue
        released = {part.strip() for part in str(row["v"]).split(",")}
        leaked = released & rare.get(row[group], set())
        assert not leaked, (f"{what} of fewer than {K} persons released for {group}={row[group]}: "
                            f"{sorted(leaked)[:5]} ({outcome})")


def test_values_copy_of_icd10_with_filter_releases_the_diagnoses(mallory, target, all_codes):
    """JOIN (VALUES <every code>) v ON d.icd10 = v.code gives an untagged copy
    of icd10; string_agg of it, filtered to the target's cell, lists the
    target's diagnoses."""
    outcome = mallory.run(
        f"SELECT d.sex, string_agg(v.code, ',') FILTER (WHERE {target.cell('d')}) AS v "
        f"FROM ndb.diagnoses d JOIN (VALUES {values_list(all_codes)}) AS v(code) ON d.icd10 = v.code "
        "GROUP BY d.sex")
    assert_codes_not_released(outcome, target.codes, "diagnoses")


@pytest.mark.parametrize("aggregate", ["min", "max", "string_agg"])
def test_values_copy_of_icd10_releases_rare_diagnoses(mallory, release, all_codes, aggregate):
    """MIN / MAX / STRING_AGG of the untagged copy of icd10, by prefecture:
    diagnoses that fewer than k persons of the prefecture have are released
    (MIN(icd10) itself is refused)."""
    rare = rare_values(release, "ndb.diagnoses", "icd10")
    if aggregate in ("min", "max"):
        found = release.duckdb(FULL_PERIOD).execute(
            f"SELECT prefecture_code, {aggregate}(icd10) FROM ndb.diagnoses GROUP BY prefecture_code").fetchall()
        assert any(value in rare.get(key, ()) for key, value in found), f"no prefecture's {aggregate} is rare"
    expr = "string_agg(DISTINCT v.code, ',')" if aggregate == "string_agg" else f"{aggregate}(v.code)"
    outcome = mallory.run(
        f"SELECT d.prefecture_code, {expr} AS v "
        f"FROM ndb.diagnoses d JOIN (VALUES {values_list(all_codes)}) AS v(code) ON d.icd10 = v.code "
        "GROUP BY d.prefecture_code")
    assert_no_rare_value(outcome, rare, "diagnoses")


def test_workspace_stores_values_copy_untagged(mallory, release, all_codes):
    """A workspace table saves the untagged copy of icd10; STRING_AGG over
    the saved table releases diagnoses of fewer than k persons."""
    rare = rare_values(release, "ndb.diagnoses", "icd10")
    created = mallory.run(
        "CREATE TABLE work.dx_copy AS SELECT d.person_id, d.prefecture_code, v.code AS dx "
        f"FROM ndb.diagnoses d JOIN (VALUES {values_list(all_codes)}) AS v(code) ON d.icd10 = v.code")
    try:
        if created.error is not None:
            return  # refusing to save the copy is an acceptable defence
        outcome = mallory.run("SELECT prefecture_code, string_agg(DISTINCT dx, ',') AS v FROM work.dx_copy "
                              "GROUP BY prefecture_code")
        assert_no_rare_value(outcome, rare, "diagnoses")
    finally:
        mallory.run("DROP TABLE IF EXISTS work.dx_copy")


@pytest.fixture(scope="module")
def facilities(release) -> list[int]:
    """The 20 facilities with the most persons (each >= k)."""
    rows = release.duckdb(FULL_PERIOD).execute(
        "SELECT facility_id FROM ndb.receipts GROUP BY facility_id HAVING count(DISTINCT person_id) >= 10 "
        "ORDER BY count(DISTINCT person_id) DESC, facility_id LIMIT 20").fetchall()
    assert len(rows) == 20
    return [r[0] for r in rows]


def test_grouping_by_facility_releases_nothing(mallory, facilities):
    """Control: GROUP BY facility_id keys every group by one facility; the
    facility rule (>= 3 facilities per group) suppresses them all."""
    outcome = mallory.run("SELECT facility_id, count(DISTINCT person_id) AS n FROM ndb.receipts "
                          "GROUP BY facility_id")
    assert not outcome.rows, f"groups of one facility were released: {outcome}"


def test_values_copy_of_facility_id_bypasses_the_facility_rule(mallory, facilities):
    """GROUP BY a VALUES copy of facility_id: each group is one facility,
    yet the facility rule does not see a facility column."""
    values = ", ".join(f"({f})" for f in facilities)
    outcome = mallory.run(
        "SELECT v.fac, count(DISTINCT r.person_id) AS n FROM ndb.receipts r "
        f"JOIN (VALUES {values}) AS v(fac) ON r.facility_id = v.fac GROUP BY v.fac")
    assert not outcome.rows, f"groups of one facility were released: {outcome}"


def test_values_copy_of_person_id_builds_a_tracker(release, mallory, target):
    """Attacker-chosen groups through a VALUES copy of person_id: group A =
    the target + 10 other persons, group B = the same 10 persons. Both pass
    k; sum(A) - sum(B) is the target's total points."""
    db = release.duckdb(FULL_PERIOD)
    others = [r[0] for r in db.execute(
        f"SELECT person_id FROM ndb.receipts WHERE person_id <> {target.person_id} GROUP BY person_id "
        "ORDER BY sum(total_points) DESC, person_id LIMIT 10").fetchall()]
    points = db.execute(
        f"SELECT sum(total_points) FROM ndb.receipts WHERE person_id = {target.person_id}").fetchone()[0]
    members = [f"({target.person_id}, 'A')"] + [f"({p}, 'A')" for p in others] + [f"({p}, 'B')" for p in others]
    outcome = mallory.run(
        "SELECT v.bucket, sum(r.total_points) AS v FROM ndb.receipts r "
        f"JOIN (VALUES {', '.join(members)}) AS v(p, bucket) ON r.person_id = v.p GROUP BY v.bucket")
    sums = {row["bucket"]: row["v"] for row in outcome.rows}
    if sums.get("A") is not None and sums.get("B") is not None:
        assert sums["A"] - sums["B"] != points, f"sum(A) - sum(B) = the target's total points {points}: {outcome}"


UNPROTECTED_CODES = [
    ("ndb.drugs", "drug_code"),
    ("ndb.procedures", "procedure_code"),
    ("care.services", "service_code"),
    ("dpc.details", "drug_code"),
]


@pytest.mark.parametrize(("table", "column"), UNPROTECTED_CODES, ids=[f"{t}.{c}" for t, c in UNPROTECTED_CODES])
def test_health_codes_are_protected(mallory, release, table, column):
    """Drug, procedure and care service codes are health information:
    STRING_AGG(DISTINCT code) by prefecture must not list codes that fewer
    than k persons of the prefecture have (as STRING_AGG(icd10) may not)."""
    rare = rare_values(release, table, column)
    outcome = mallory.run(f"SELECT prefecture_code, string_agg(DISTINCT {column}, ',') AS v FROM {table} "
                          "GROUP BY prefecture_code")
    assert_no_rare_value(outcome, rare, f"{table}.{column}")


def test_max_of_drug_code_filtered_to_the_target(mallory, target):
    """MAX(drug_code) FILTER (WHERE <cell>): one of the target's drugs."""
    outcome = mallory.run(f"SELECT sex, max(drug_code) FILTER (WHERE {target.cell()}) AS v "
                          "FROM ndb.drugs GROUP BY sex")
    assert_codes_not_released(outcome, target.drugs, "drug codes")


# =====================================================================
# 3. UNION merges tags: a constant poses as person_id.
# =====================================================================


def test_union_constant_as_person_id_window_spreads_one_persons_sum(mallory, target):
    """`0 AS p` UNION ALL `person_id AS p` is tagged as the person key; a
    window PARTITION BY p puts the target's sum on every row of partition 0
    (all persons' rows), and avg over those rows releases it."""
    outcome = mallory.run(
        "SELECT w.sex, avg(w.leak) AS v FROM ("
        "  SELECT u.arm, u.sex, sum(u.x) OVER (PARTITION BY u.p) AS leak FROM ("
        f"    SELECT 0 AS p, 'a' AS arm, sex, CASE WHEN {target.cell()} THEN total_points ELSE 0 END AS x "
        "     FROM ndb.receipts"
        "    UNION ALL SELECT person_id AS p, 'b' AS arm, sex, 0 AS x FROM ndb.receipts) u"
        ") w WHERE w.arm = 'a' GROUP BY w.sex")
    assert_value_not_released(outcome, target.points, "total points")


def test_union_constant_as_person_id_join_mixes_persons(mallory, target):
    """A join on such a pseudo person key: every person's row meets the
    target's rows (p = 0 on both sides), avg releases the target's mean
    points."""
    outcome = mallory.run(
        "SELECT a.sex, avg(b.tp) AS v FROM "
        "  (SELECT 0 AS p, sex FROM ndb.receipts UNION ALL SELECT person_id AS p, sex FROM ndb.receipts) a "
        "JOIN "
        f"  (SELECT 0 AS p, total_points AS tp FROM ndb.receipts WHERE {target.cell()} "
        f"   UNION ALL SELECT person_id AS p, total_points AS tp FROM ndb.receipts WHERE {target.cell()}) b "
        "ON a.p = b.p GROUP BY a.sex")
    assert_value_not_released(outcome, target.points / target.receipts, "mean points")


# =====================================================================
# 4. Person-level subqueries, HAVING and LIMIT decide what is released;
#    the suppressed-group count is an oracle. (Differential: matching the
#    target vs matching nobody must look the same.)
# =====================================================================


def test_uncorrelated_in_subquery_selects_the_released_groups(mallory, target):
    """icd10 IN (SELECT icd10 … WHERE person_id = <target>): the released
    codes are the target's diagnoses."""
    differential(mallory, target,
                 "SELECT icd10, count(DISTINCT person_id) AS n FROM ndb.diagnoses "
                 "WHERE icd10 IN (SELECT icd10 FROM ndb.diagnoses WHERE {who}) GROUP BY icd10",
                 "uncorrelated IN")


def test_uncorrelated_in_subquery_with_background_knowledge(mallory, target):
    """The same with the target's cell instead of their person_id."""
    differential(mallory, target,
                 "SELECT icd10, count(DISTINCT person_id) AS n FROM ndb.diagnoses "
                 "WHERE icd10 IN (SELECT icd10 FROM ndb.diagnoses t WHERE {who}) GROUP BY icd10",
                 "uncorrelated IN", by="t")


def test_correlated_exists_on_a_code_selects_the_released_groups(mallory, target):
    """EXISTS correlated on icd10 (not on person_id) joins other persons'
    rows to the target's: the released codes are the target's."""
    differential(mallory, target,
                 "SELECT d.icd10, count(DISTINCT d.person_id) AS n FROM ndb.diagnoses d "
                 "WHERE EXISTS (SELECT 1 FROM ndb.diagnoses t WHERE t.icd10 = d.icd10 AND {who}) "
                 "GROUP BY d.icd10",
                 "correlated EXISTS", by="t")


def test_uncorrelated_exists_decides_whether_anything_is_released(mallory, target):
    """EXISTS (SELECT 1 … WHERE person_id = <target> AND icd10 = X): large
    groups appear iff the target has X."""
    code = sorted(target.common_codes)[0]
    differential(mallory, target,
                 "SELECT sex, count(DISTINCT person_id) AS n FROM ndb.receipts "
                 f"WHERE EXISTS (SELECT 1 FROM ndb.diagnoses WHERE {{who}} AND icd10 = '{code}') GROUP BY sex",
                 "uncorrelated EXISTS")


def test_having_on_one_persons_rows_decides_release(mallory, target):
    """HAVING count(*) FILTER (WHERE person_id = <target>) > 0 runs before
    suppression: the large groups appear iff the target has rows in them."""
    differential(mallory, target,
                 "SELECT sex, count(DISTINCT person_id) AS n FROM ndb.receipts GROUP BY sex "
                 "HAVING count(*) FILTER (WHERE {who}) > 0",
                 "HAVING")


@pytest.mark.parametrize("having", [
    "count(*) FILTER (WHERE {cell}) >= {receipts}",
    "sum(CASE WHEN {cell} THEN total_points ELSE 0 END) >= {points}",
], ids=["count-threshold", "sum-threshold"])
def test_having_threshold_reveals_a_value_by_bisection(trudy, target, having):
    """HAVING <aggregate of the target's rows> >= T, for T = the true value
    and T = the true value + 1: a bisection over T finds the value."""
    sql = "SELECT sex, count(DISTINCT person_id) AS n FROM ndb.receipts GROUP BY sex HAVING "
    at = trudy.run(sql + having.format(cell=target.cell(), receipts=target.receipts, points=target.points))
    above = trudy.run(sql + having.format(cell=target.cell(), receipts=target.receipts + 1,
                                            points=target.points + 1))
    assert_same(at, above, "a HAVING threshold")


def test_order_by_limit_on_one_persons_rows_picks_the_released_group(mallory, target):
    """ORDER BY count(*) FILTER (WHERE person_id = <target>) DESC LIMIT 1:
    LIMIT runs before suppression, the one released code is the target's
    most frequent diagnosis."""
    differential(mallory, target,
                 "SELECT icd10, count(DISTINCT person_id) AS n FROM ndb.diagnoses GROUP BY icd10 "
                 "ORDER BY count(*) FILTER (WHERE {who}) DESC, icd10 LIMIT 1",
                 "ORDER BY … LIMIT")


def test_suppressed_group_count_is_an_oracle(mallory, target):
    """WHERE person_id = <target> AND icd10 = X GROUP BY sex: nothing is
    released either way, but enclave.suppressed_groups is 1 iff the target
    has X."""
    code = sorted(target.codes)[0]
    differential(mallory, target,
                 "SELECT sex, count(DISTINCT person_id) AS n FROM ndb.diagnoses "
                 f"WHERE {{who}} AND icd10 = '{code}' GROUP BY sex",
                 "suppressed_groups")


def test_group_by_case_counts_one_persons_values_in_suppressed_groups(mallory, target):
    """GROUP BY sex, CASE WHEN <cell> THEN total_points END: the target's
    groups are suppressed, and their number (how many distinct point values
    the target has) comes out in suppressed_groups."""
    differential(mallory, target,
                 "SELECT sex, count(DISTINCT person_id) AS n FROM ndb.receipts "
                 "GROUP BY sex, CASE WHEN {who} THEN total_points END",
                 "suppressed_groups", by="")


# =====================================================================
# 5. Dominance and rounding gaps.
# =====================================================================


def test_negative_sum_escapes_dominance(trudy, target):
    """sum(CASE WHEN <cell> THEN -total_points ELSE 0 END): one person makes
    the whole (negative) sum; dominance is skipped for totals <= 0."""
    outcome = trudy.run(f"SELECT sex, sum(CASE WHEN {target.cell()} THEN -total_points ELSE 0 END) AS v "
                        "FROM ndb.receipts GROUP BY sex")
    assert_value_not_released(outcome, -target.points, "total points (negated)")


def test_positive_sum_of_one_person_is_suppressed(trudy, target):
    """Control: sum(CASE WHEN <cell> THEN total_points ELSE 0 END) is one
    person's sum; dominance suppresses it."""
    outcome = trudy.run(f"SELECT sex, sum(CASE WHEN {target.cell()} THEN total_points ELSE 0 END) AS v "
                        "FROM ndb.receipts GROUP BY sex")
    assert_value_not_released(outcome, target.points, "total points")


def test_distinct_sum_escapes_dominance(trudy, target):
    """sum(DISTINCT CASE WHEN <cell> THEN total_points ELSE 0 END): the
    target's distinct point values plus 0; no dominance for DISTINCT sums."""
    outcome = trudy.run(f"SELECT sex, sum(DISTINCT CASE WHEN {target.cell()} THEN total_points ELSE 0 END) AS v "
                        "FROM ndb.receipts GROUP BY sex")
    assert_value_not_released(outcome, target.distinct_points, "distinct point sum")


@pytest.mark.parametrize("aggregate", [
    "var_pop(CASE WHEN {cell} THEN total_points ELSE 0 END)",
    "regr_sxx(1.0, CASE WHEN {cell} THEN total_points ELSE 0 END)",
    "avg(DISTINCT CASE WHEN {cell} THEN total_points ELSE 0 END)",
], ids=["var-pop", "regr-sxx", "avg-distinct"])
def test_dominated_statistics_are_suppressed(trudy, release, target, aggregate):
    """A statistic over 1,500 persons in which only the target's values are
    not 0 is dominated by them (it gives their sum of squares, or their
    distinct values); dominance must suppress it as it does for SUM."""
    sql = f"SELECT sex, {aggregate} AS v FROM ndb.receipts GROUP BY sex"
    outcome = trudy.run(sql.format(cell=target.cell()))
    truth = dict(release.duckdb(FULL_PERIOD).execute(sql.format(cell=target.cell())).fetchall())[target.sex]
    assert_value_not_released(outcome, truth, "dominated statistic")


def test_constant_else_pads_a_sum_past_dominance(trudy, target):
    """sum(CASE WHEN <cell> THEN total_points ELSE 1 END): every person adds
    1 per row so nobody dominates; minus the exact count of the other rows
    (a large group) it is the target's total points."""
    outcome = trudy.run(
        f"SELECT sex, sum(CASE WHEN {target.cell()} THEN total_points ELSE 1 END) AS s, "
        f"count(*) FILTER (WHERE NOT {target.cell()}) AS others FROM ndb.receipts GROUP BY sex")
    for row in outcome.rows:
        if row["sex"] == target.sex and row["s"] is not None and row["others"] is not None:
            assert row["s"] - row["others"] != target.points, f"the target's total points: {outcome}"


def test_exact_sums_give_a_person_by_differencing(mallory, target):
    """sum(total_points) by sex, with and without the target's cell: the
    difference is the target's total points unless sums are protected
    (rounded, noised or refused) like counts."""
    sql = "SELECT sex, sum(total_points) AS v FROM ndb.receipts {where} GROUP BY sex"
    everyone = mallory.run(sql.format(where=""))
    without = mallory.run(sql.format(where=f"WHERE NOT {target.cell()}"))
    a = {row["sex"]: row["v"] for row in everyone.rows}.get(target.sex)
    b = {row["sex"]: row["v"] for row in without.rows}.get(target.sex)
    if a is not None and b is not None:
        assert a - b != target.points, f"the target's total points by differencing: {everyone} / {without}"


COUNT_LIKE = [
    ("count-star", "SELECT sex, count(*) AS v FROM ndb.receipts GROUP BY sex"),
    ("count-star-beside-var-pop", "SELECT sex, var_pop(days) AS w, count(*) AS v FROM ndb.receipts GROUP BY sex"),
    ("count-distinct-receipt-id", "SELECT sex, count(DISTINCT receipt_id) AS v FROM ndb.receipts GROUP BY sex"),
    ("sum-of-one", "SELECT sex, sum(1) AS v FROM ndb.receipts GROUP BY sex"),
    ("approx-distinct-person-id", "SELECT sex, approx_distinct(person_id) AS v FROM ndb.receipts GROUP BY sex"),
    ("regr-count", "SELECT sex, regr_count(1, 1) AS v FROM ndb.receipts GROUP BY sex"),
    ("sum-of-per-person-count-star",
     "SELECT sex, sum(n) AS v FROM (SELECT person_id, sex, count(*) AS n FROM ndb.receipts "
     "GROUP BY person_id, sex) GROUP BY sex"),
]


@pytest.mark.parametrize("sql", [s for _, s in COUNT_LIKE], ids=[i for i, _ in COUNT_LIKE])
def test_counts_are_rounded_in_every_form(mallory, sql):
    """Project `atk` rounds counts to 10: every count-like value (rows,
    persons, records) comes out as a multiple of 10, whatever computes it
    (sum(1), approx_distinct, a sum of per-person row counts …); exact counts
    allow differencing."""
    outcome = mallory.run(sql)
    for row in outcome.rows:
        if row["v"] is not None:
            assert float(row["v"]) % 10 == 0, f"unrounded count {row['v']}: {outcome}"


def test_grouping_sets_total_minus_child_in_one_query(trudy, target):
    """GROUPING SETS ((sex), (flag)) with flag = sex except on the target's
    rows: the two totals are released (they are not parent and child, so no
    complementary suppression) and differ by the target's total points."""
    outcome = trudy.run(
        "SELECT sex, flag, sum(total_points) AS v FROM ("
        f"  SELECT person_id, sex, total_points, CASE WHEN NOT {target.cell()} THEN sex END AS flag "
        "  FROM ndb.receipts) GROUP BY GROUPING SETS ((sex), (flag))")
    total = [r["v"] for r in outcome.rows if r["sex"] == target.sex and r["flag"] is None]
    rest = [r["v"] for r in outcome.rows if r["sex"] is None and r["flag"] == target.sex]
    if total and rest and total[0] is not None and rest[0] is not None:
        assert total[0] - rest[0] != target.points, f"total minus child = the target's points: {outcome}"


def test_rollup_complementary_suppression_holds(trudy, target):
    """Control: ROLLUP(sex, flag) puts the target's suppressed cell under its
    sex total; complementary suppression hides a second child, so the total
    minus the released children is not the target's sum."""
    outcome = trudy.run(
        "SELECT sex, flag, sum(total_points) AS v FROM ("
        f"  SELECT person_id, sex, total_points, CASE WHEN {target.cell()} THEN 1 ELSE 0 END AS flag "
        "  FROM ndb.receipts) GROUP BY ROLLUP (sex, flag)")
    total = [r["v"] for r in outcome.rows if r["sex"] == target.sex and r["flag"] is None]
    children = [r["v"] for r in outcome.rows if r["sex"] == target.sex and r["flag"] == 0]
    if total and children and total[0] is not None and children[0] is not None:
        assert total[0] - children[0] != target.points, f"total minus child = the target's points: {outcome}"


# =====================================================================
# 6. One-bit side channels: whether a statement fails, or what it
#    reports, must not depend on one row.
# =====================================================================

FAILING = [
    ("cast", "ndb.diagnoses", "CASE WHEN {who} THEN CAST(icd10 AS INT) ELSE 0 END = 0"),
    ("division-by-zero", "ndb.receipts", "1 / CASE WHEN {who} THEN 0 ELSE 1 END = 1"),
    ("cast-overflow", "ndb.receipts", "CASE WHEN {who} THEN CAST(total_points * 1000000 AS INT) ELSE 0 END >= 0"),
    ("bad-regex", "ndb.diagnoses", "regexp_like(icd10, CASE WHEN {who} THEN '(' ELSE '.' END)"),
    # Casts the engine inserts itself (text compared with a number), after
    # a selection that holds rows only if the target exists.
    ("coerced-comparison", "ndb.diagnoses", "{who} AND icd10 > 5"),
    ("coerced-in-list", "ndb.diagnoses", "{who} AND icd10 IN (1, 2)"),
    ("coerced-arithmetic", "ndb.receipts", "{who} AND service_month + 1 > 0"),
]


@pytest.mark.parametrize(("table", "condition"), [(t, c) for _, t, c in FAILING], ids=[i for i, _, _ in FAILING])
def test_error_depends_on_one_persons_row(mallory, target, table, condition):
    """An expression that fails only on the target's rows: the query fails
    iff the target exists (person_id = <target> vs a person_id of nobody)."""
    sql = f"SELECT sex, count(*) AS n FROM {table} WHERE {condition} GROUP BY sex"
    has = mallory.run(sql.format(who=target.cell()))
    nobody = mallory.run(sql.format(who=target.no_cell()))
    assert_same_failure(has, nobody, "a data-dependent error")


def test_error_depends_on_one_persons_diagnosis(mallory, target):
    """CASE WHEN <cell> AND icd10 = X THEN CAST(icd10 AS INT) …: the query
    fails iff the target has diagnosis X."""
    sql = ("SELECT sex, count(*) AS n FROM ndb.diagnoses "
           "WHERE CASE WHEN {cell} AND icd10 = '{code}' THEN CAST(icd10 AS INT) ELSE 0 END = 0 GROUP BY sex")
    has = mallory.run(sql.format(cell=target.cell(), code=sorted(target.codes)[0]))
    lacks = mallory.run(sql.format(cell=target.cell(), code=target.absent_code))
    assert_same_failure(has, lacks, "a data-dependent error")


def test_workspace_row_count_reveals_one_persons_rows(mallory, target):
    """CREATE TABLE work.x AS … WHERE person_id = <target> answers with the
    exact number of rows written."""
    outcomes = []
    for who in (target.cell(), target.no_cell()):
        outcomes.append(mallory.update(f"CREATE TABLE work.probe AS SELECT person_id, icd10 "
                                       f"FROM ndb.diagnoses WHERE {who}"))
        mallory.run("DROP TABLE IF EXISTS work.probe")
    assert_same(*outcomes, "a workspace row count")


def test_workspace_error_depends_on_one_persons_row(mallory, target):
    """CREATE TABLE work.x AS … WHERE 1 / CASE WHEN person_id = <target>
    THEN 0 … fails iff the target exists."""
    outcomes = []
    for who in (target.cell(), target.no_cell()):
        outcomes.append(mallory.run("CREATE TABLE work.probe2 AS SELECT person_id FROM ndb.receipts "
                                    f"WHERE 1 / CASE WHEN {who} THEN 0 ELSE 1 END = 1"))
        mallory.run("DROP TABLE IF EXISTS work.probe2")
    assert_same_failure(*outcomes, "a workspace error")


# =====================================================================
# Already blocked today (controls): each must keep failing.
# =====================================================================

BLOCKED = [
    ("max-of-measure-filter", "SELECT sex, max(total_points) FILTER (WHERE {cell}) AS v FROM ndb.receipts GROUP BY sex",
     "points_max"),
    ("avg-of-case-null", "SELECT sex, avg(CASE WHEN {cell} THEN total_points END) AS v FROM ndb.receipts GROUP BY sex",
     "mean_points"),
    ("sum-filter", "SELECT sex, sum(total_points) FILTER (WHERE {cell}) AS v FROM ndb.receipts GROUP BY sex",
     "points"),
    ("scalar-subquery",
     "SELECT sex, (SELECT sum(total_points) FROM ndb.receipts WHERE {cell}) AS v, count(*) AS n "
     "FROM ndb.receipts GROUP BY sex", "points"),
    ("join-on-sex",
     "SELECT a.sex, avg(b.total_points) AS v FROM ndb.receipts a JOIN "
     "(SELECT sex, total_points FROM ndb.receipts WHERE {cell}) b ON a.sex = b.sex GROUP BY a.sex",
     "mean_points"),
    ("window-across-persons",
     "SELECT sex, avg(w) AS v FROM (SELECT sex, person_id, "
     "sum(CASE WHEN {cell} THEN total_points ELSE 0 END) OVER (PARTITION BY sex) AS w FROM ndb.receipts) "
     "GROUP BY sex", "points"),
    ("inner-aggregate-without-person",
     "SELECT r.sex, avg(t.s) AS v FROM ndb.receipts r JOIN "
     "(SELECT sex, sum(total_points) AS s FROM ndb.receipts WHERE {cell} GROUP BY sex) t ON r.sex = t.sex "
     "GROUP BY r.sex", "points"),
    ("min-of-icd10-filter",
     "SELECT sex, length(min(icd10) FILTER (WHERE {cell})) AS v FROM ndb.diagnoses GROUP BY sex", "none"),
    ("max-of-substr-of-icd10-filter",
     "SELECT sex, max(substr(icd10, 1, 3)) FILTER (WHERE {cell}) AS v FROM ndb.diagnoses GROUP BY sex", "none"),
    ("string-agg-of-cast-icd10-filter",
     "SELECT sex, string_agg(CAST(icd10 AS VARCHAR), ',') FILTER (WHERE {cell}) AS v FROM ndb.diagnoses "
     "GROUP BY sex", "none"),
    ("distinct-inside-without-person",
     "SELECT sex, count(*) AS v FROM (SELECT DISTINCT sex, icd10 FROM ndb.diagnoses WHERE {cell}) GROUP BY sex",
     "none"),
]


@pytest.mark.parametrize(("sql", "attribute"), [(s, a) for _, s, a in BLOCKED], ids=[i for i, _, _ in BLOCKED])
def test_already_blocked_attacks_stay_blocked(mallory, release, target, sql, attribute):
    """Attacks the guard stops today (value-revealing aggregates of sensitive
    columns, also through casts and string functions; dominance of positive
    sums; scalar subqueries; joins and windows across persons; inner
    aggregates and DISTINCT without persons)."""
    outcome = mallory.run(sql.format(cell=target.cell()))
    db = release.duckdb(FULL_PERIOD)
    cell = target.cell()
    truths = {
        "points": target.points,
        "mean_points": target.points / target.receipts,
        "points_max": db.execute(f"SELECT max(total_points) FROM ndb.receipts WHERE {cell}").fetchone()[0],
    }
    if attribute == "none":
        assert not any(v is not None for v in outcome.column("v")), f"released: {outcome}"
    else:
        assert_value_not_released(outcome, truths[attribute], attribute)


# =====================================================================
# 7. Denial of service: no single request stops the service for others.
# =====================================================================


def assert_clear_refusal(outcome: Outcome) -> None:
    assert outcome.error is not None, f"the oversized request was answered: {outcome}"
    assert "internal error" not in outcome.error and "Unavailable" not in outcome.error, outcome.error
    assert CLEAR_LIMIT.search(outcome.error), f"not a clear refusal: {outcome.error[:400]}"


def lone_attack(server, sql: str) -> Outcome:
    with server.connect(ATTACKER) as conn:
        try:
            return Outcome(table=query(conn, sql))
        except Exception as error:
            return Outcome(error=str(error))


def test_two_megabyte_statement_is_refused(lone_server):
    """A 2 MB statement (its audit event would pass the log's 1 MiB event
    limit and latch the log): refused clearly; everyone is still served."""
    outcome = lone_attack(lone_server, "SELECT sex, count(*) AS n FROM ndb.receipts "
                                       f"WHERE sex <> '{'x' * 2_000_000}' GROUP BY sex")
    assert_clear_refusal(outcome)
    assert_serves_everyone(lone_server)


def test_thousand_arm_union_is_refused(lone_server):
    """UNION ALL of 1,000 arms (400 overflow a stack today): refused
    clearly; the process survives and serves everyone."""
    arms = " UNION ALL ".join(["SELECT sex, person_id FROM ndb.receipts"] * 1000)
    outcome = lone_attack(lone_server, f"SELECT sex, count(*) AS n FROM ({arms}) u GROUP BY sex")
    assert_clear_refusal(outcome)
    assert_serves_everyone(lone_server)


def test_ten_thousand_term_expression_is_refused(lone_server):
    """total_points + 1 + 1 … (10,000 terms; 3,000 overflow a stack today):
    refused clearly; the process survives and serves everyone."""
    outcome = lone_attack(lone_server, "SELECT sex, count(*) AS n FROM ndb.receipts "
                                       f"WHERE total_points{' + 1' * 10_000} > 0 GROUP BY sex")
    assert_clear_refusal(outcome)
    assert_serves_everyone(lone_server)


def test_deeply_nested_parentheses_are_refused(lone_server):
    """Control: 10,000 nested parentheses hit the parser's recursion limit."""
    outcome = lone_attack(lone_server, "SELECT sex, count(*) AS n FROM ndb.receipts WHERE "
                                       f"{'(' * 10_000}total_points > 0{')' * 10_000} GROUP BY sex")
    assert_clear_refusal(outcome)
    assert_serves_everyone(lone_server)


def grpc_login(server, user: str, secret: str) -> tuple[str, str]:
    """enclave.v1.Session/Login over gRPC (no credentials needed to call
    it), with a hand-built request: (grpc-status number, message)."""
    body = flightsql._field(1, user.encode()) + flightsql._field(2, secret.encode())
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        try:
            channel.unary_unary("/enclave.v1.Session/Login")(body, timeout=60)
        except grpc.RpcError as error:
            return str(error.code().value[0]), error.details() or ""
    return "0", ""


def test_two_megabyte_user_name_at_login_is_refused(lone_server):
    """Login with a 2 MB user name and no valid credentials (a 1.2 MB one
    latches the audit log today): refused with a clear error; everyone is
    still served."""
    status, message = grpc_login(lone_server, "u" * 2_000_000, "whatever")
    # Not OK, and not UNKNOWN, INTERNAL or UNAVAILABLE: a refusal that says why.
    assert status.isdigit() and status not in ("0", "2", "13", "14") and message, (
        f"no clear refusal: grpc-status {status}, message {message!r}")
    assert_serves_everyone(lone_server)


def test_two_megabyte_user_name_in_flight_handshake_is_refused(lone_server):
    """The Flight handshake with a 2 MB user name in HTTP Basic: refused;
    everyone is still served."""
    client = flight.FlightClient(lone_server.uri)
    with pytest.raises(flight.FlightError):
        client.authenticate_basic_token(b"u" * 2_000_000, b"whatever")
    assert_serves_everyone(lone_server)


# =====================================================================
# 8. Login throttling.
# =====================================================================


def test_wrong_passwords_are_throttled(lone_server):
    """20 wrong passwords in a row for one account: they must not all be
    answered as ordinary wrong-password refusals at full speed (a lockout,
    a distinct throttling error or growing delays); a user already signed in
    from the same address keeps working (new logins from that address are
    throttled too, by design: see test_hardening.py for other addresses)."""
    bystander = lone_server.connect(BYSTANDER)
    assert query(bystander, ORDINARY).num_rows == 2
    client = flight.FlightClient(lone_server.uri)
    answers = []
    started = time.monotonic()
    for attempt in range(20):
        try:
            client.authenticate_basic_token(ATTACKER.encode(), f"guess-{attempt}".encode())
            answers.append("logged in")
        except flight.FlightUnauthenticatedError as error:
            answers.append(f"unauthenticated: {str(error).splitlines()[0]}")
        except (flight.FlightError, pa.ArrowException) as error:
            answers.append(f"{type(error).__name__}: {str(error).splitlines()[0]}")
    elapsed = time.monotonic() - started
    assert "logged in" not in answers
    plain = all(answer == answers[0] for answer in answers) and answers[0].startswith("unauthenticated")
    assert not (plain and elapsed < 10), (
        f"20 wrong passwords were all answered alike in {elapsed:.1f} s: {answers[0]}")
    with bystander:
        assert query(bystander, ORDINARY).num_rows == 2
