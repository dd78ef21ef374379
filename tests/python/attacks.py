"""Attacks that combine released answers across queries, and their score.

Every single answer of the guard is safe (docs/query-rules.md); these attacks
combine several answers to infer one bit about one person. Each aims at a
`Target`: a person the attacker singles out by quasi-identifiers they may
filter on (sex, age band, prefecture and service month of a receipt: the
only person with a receipt in that cell), and a binary sensitive attribute,
"has ICD-10 code X in ndb.diagnoses". Targets are balanced, half with the
code and half without, so guessing from the prior is right half the time.

The attacks send only what a researcher may send over Flight SQL: a
`Researcher` holds their ADBC connections, one per project, and counts the
statements sent. Each attack is a function `(researcher, target) -> guess`;
a guess is True (has the code), False, or None (no answer: a refusal or a
withheld value the attack needed), which scores as the prior guess.

The attacks tolerate noise: they decide by the sign of a combined difference
against a threshold (half a person, or the worst-case rounding error of the
values combined), never by an exact value. Ground truth comes from DuckDB over
the release's Parquet files, never from the server.

Used by tests/python/test_cross_query.py and by
services/query/benches/attack_harness.py.
"""

from __future__ import annotations

import random
import secrets
import statistics
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import duckdb

K = 10
PREFECTURES = tuple(f"{n:02d}" for n in range(1, 48))  # JIS X 0401, public knowledge
QUASI_IDENTIFIERS = ("sex", "age_band", "prefecture_code", "service_month")
# A code is a sensitive attribute only when this many persons have it, so
# that every group the attacks build holds far more than k persons with it.
MIN_CODE_PERSONS = 5 * K


class Refused(Exception):
    """The server refused a statement."""


# ---------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    """One person, what the attacker knows of them, and the bit they seek."""

    person_id: int  # ground truth: never sent to the server
    cell: tuple[str, ...]  # values of QUASI_IDENTIFIERS of one of their receipts
    code: str  # the attribute: has this ICD-10 code in ndb.diagnoses
    truth: bool

    def rows(self) -> str:
        """The receipts of the target's cell (only theirs)."""
        return " AND ".join(f"{column} = {literal(value)}" for column, value in zip(QUASI_IDENTIFIERS, self.cell))


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def release_duckdb(release_dir: Path) -> duckdb.DuckDBPyConnection:
    """DuckDB with a view `schema.table` per table of a release directory."""
    con = duckdb.connect()
    for table in sorted(p.name for p in (Path(release_dir) / "tables").iterdir()):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM "
                    f"read_parquet('{release_dir}/tables/{table}/*/*.parquet', hive_partitioning=false)")
    return con


UNIQUE_CELLS = f"""
SELECT min(person_id) AS person_id, {', '.join(QUASI_IDENTIFIERS)}
FROM ndb.receipts GROUP BY ALL HAVING count(DISTINCT person_id) = 1
ORDER BY ALL
"""


def select_targets(db: duckdb.DuckDBPyConnection, count: int, seed: int = 1) -> list[Target]:
    """`count` targets from ground truth (`db` has views ndb.receipts and
    ndb.diagnoses over the rows the project sees): persons alone in a
    quasi-identifier cell of ndb.receipts, with a code they have and with a
    code they do not have in the pattern yes, no, no, yes, repeated: every
    even-length prefix is half and half, and so is every second target (what
    one of two sessions gets in `run_attack`); codes drawn from those of at
    least MIN_CODE_PERSONS persons."""
    rng = random.Random(seed)
    cells: dict[int, tuple[str, ...]] = {}
    for person_id, *cell in db.execute(UNIQUE_CELLS).fetchall():
        cells.setdefault(person_id, tuple(cell))
    common = sorted(code for (code,) in db.execute(
        f"SELECT icd10 FROM ndb.diagnoses GROUP BY icd10 HAVING count(DISTINCT person_id) >= {MIN_CODE_PERSONS}"
    ).fetchall())
    codes: dict[int, set[str]] = {}
    for person_id, code in db.execute("SELECT DISTINCT person_id, icd10 FROM ndb.diagnoses").fetchall():
        codes.setdefault(person_id, set()).add(code)
    persons = sorted(cells)
    rng.shuffle(persons)
    targets = []
    for person_id in persons:
        truth = len(targets) % 4 in (0, 3)
        own = codes.get(person_id, set())
        choices = [c for c in common if (c in own) == truth]
        if choices:
            targets.append(Target(person_id, cells[person_id], rng.choice(choices), truth))
        if len(targets) == count:
            return targets
    raise ValueError(f"the release has only {len(targets)} targets of the {count} asked for")


# ---------------------------------------------------------------- the researcher


@dataclass
class Researcher:
    """One researcher's ADBC connections, one per project (the first is the
    default), the project's rounding base (public policy: 1 for none), and
    how many statements they sent and how many were refused."""

    connections: dict[str, object]
    rounding: int = 1
    queries: int = 0
    refusals: int = 0

    @property
    def projects(self) -> list[str]:
        return list(self.connections)

    def rows(self, sql: str, project: str | None = None) -> list[dict]:
        """The released rows of a statement; raises Refused."""
        self.queries += 1
        try:
            with self.connections[project or self.projects[0]].cursor() as cur:
                cur.execute(sql)
                return cur.fetch_arrow_table().to_pylist()
        except Exception as error:  # adbc_driver_manager's DB-API errors
            self.refusals += 1
            raise Refused(str(error).splitlines()[0]) from error

    def value(self, sql: str, project: str | None = None) -> float | None:
        """The one value `v` of a statement without GROUP BY; None when withheld."""
        rows = self.rows(sql, project)
        return None if not rows or rows[0]["v"] is None else float(rows[0]["v"])

    def close(self) -> None:
        for conn in self.connections.values():
            conn.close()


# ---------------------------------------------------------------- SQL pieces


def persons_in(rows: str) -> str:
    """Persons with a receipt matching `rows`."""
    return f"person_id IN (SELECT person_id FROM ndb.receipts WHERE {rows})"


def persons_not_in(rows: str) -> str:
    return f"person_id NOT IN (SELECT person_id FROM ndb.receipts WHERE {rows})"


def with_target(group: str, target: Target) -> str:
    """The persons of `group` and the target."""
    return persons_in(f"({group}) OR ({target.rows()})")


def without_target(group: str, target: Target) -> str:
    """The persons of `group` but the target."""
    return f"{persons_in(group)} AND {persons_not_in(target.rows())}"


def prefectures(codes) -> str:
    return f"prefecture_code IN ({', '.join(literal(c) for c in codes)})"


def has_code(code: str) -> str:
    return f"person_id IN (SELECT person_id FROM ndb.diagnoses WHERE icd10 = {literal(code)})"


def points(code: str, selection: str) -> str:
    """Total points of the persons selected who have `code`: the target adds
    their whole total when they have it, nothing otherwise."""
    return f"SELECT sum(total_points) AS v FROM ndb.receipts WHERE {has_code(code)} AND {selection}"


def persons(code: str, selection: str) -> str:
    """How many of the persons selected have `code`: the target adds one or nothing."""
    return f"SELECT count(DISTINCT person_id) AS v FROM ndb.diagnoses WHERE icd10 = {literal(code)} AND {selection}"


MEASURES = {"points": points, "persons": persons}


def random_group(rng: random.Random, size: int = 24) -> list[str]:
    """A big group: `size` prefectures drawn at random."""
    return rng.sample(PREFECTURES, size)


def rng_for(target: Target, salt: str) -> random.Random:
    """The attacker's random choices for one target (from what they know)."""
    return random.Random(f"{salt}:{target.cell}:{target.code}")


def decide(estimate: float | None, threshold: float) -> bool | None:
    """Has the code when the estimate of the target's contribution exceeds the threshold."""
    return None if estimate is None else estimate > threshold


def difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def rounding_error(researcher: Researcher, weights) -> float:
    """Worst-case rounding error of a linear combination of released values."""
    return 0.0 if researcher.rounding <= 1 else researcher.rounding / 2 * sum(abs(w) for w in weights)


# The target adds a whole number (a person, points) when they have the code,
# nothing otherwise: an estimate over one half says they have it. Rounding is
# monotone and the target's contribution never negative, so the difference
# of two nested person sets needs no more; other combinations add the
# worst-case rounding error of the values combined.
THRESHOLD = 0.5


# ---------------------------------------------------------------- a. differencing


def differencing(researcher: Researcher, target: Target, measure: str = "points") -> bool | None:
    """a. The measure over a big group with the target OR'd in, minus the
    same group without the target (two queries)."""
    group, sql = prefectures(random_group(rng_for(target, "a"))), MEASURES[measure]
    with_ = researcher.value(sql(target.code, with_target(group, target)))
    without = researcher.value(sql(target.code, without_target(group, target)))
    return decide(difference(with_, without), THRESHOLD)


# ---------------------------------------------------------------- b. complement


def complement(researcher: Researcher, target: Target) -> bool | None:
    """b. Points of the persons with the code grouped by "is the target's
    cell" (that group, one person, is withheld; the rest is released), and
    in a separate query their total: total minus the released child is the
    target's points in the cell if they have the code."""
    code = has_code(target.code)
    children = researcher.rows(f"SELECT ({target.rows()}) AS in_cell, sum(total_points) AS v "
                               f"FROM ndb.receipts WHERE {code} GROUP BY 1")
    total = researcher.value(f"SELECT sum(total_points) AS v FROM ndb.receipts WHERE {code}")
    released = [row["v"] for row in children if row["v"] is not None]
    return decide(difference(total, sum(released)), THRESHOLD)


# ---------------------------------------------------------------- c. averaged rewrites


def _code_filters(code: str) -> list[str]:
    """Synonymous filters for "icd10 is `code`"."""
    c = literal(code)
    return [f"icd10 = {c}", f"icd10 IN ({c})", f"{c} = icd10", f"icd10 LIKE {c}"]


def _persons_rewrites(code: str, selection: str) -> list[tuple[str, float]]:
    """(SQL, scale) forms of the persons measure; value / scale is the count.
    A per-person count summed with a scale factor is rounded at the scaled
    magnitude."""
    filters = _code_filters(code)
    per_person = ("(SELECT person_id, count(DISTINCT icd10) AS c FROM ndb.diagnoses "
                  "WHERE {f} AND {s} GROUP BY person_id) AS per_person")
    return [
        (f"SELECT count(DISTINCT person_id) AS v FROM ndb.diagnoses WHERE {filters[1]} AND {selection}", 1),
        (f"SELECT sum(c * 10) AS v FROM {per_person.format(f=filters[0], s=selection)}", 10),
        (f"SELECT sum(c * 100) AS v FROM {per_person.format(f=filters[2], s=selection)}", 100),
        (f"SELECT sum(c * 1000) AS v FROM {per_person.format(f=filters[3], s=selection)}", 1000),
    ]


def _points_rewrites(code: str, selection: str) -> list[tuple[str, float]]:
    """(SQL, scale) forms of the points measure."""
    where = f"WHERE {has_code(code)} AND {selection}"
    return [
        (f"SELECT sum(total_points) AS v FROM ndb.receipts {where}", 1),
        (f"SELECT sum(total_points * 1) AS v FROM ndb.receipts {where}", 1),
        (f"SELECT sum(total_points * 10) AS v FROM ndb.receipts {where}", 10),
        (f"SELECT sum(total_points + total_points) AS v FROM ndb.receipts {where}", 2),
    ]


REWRITES = {"points": _points_rewrites, "persons": _persons_rewrites}


def averaged_rewrites(researcher: Researcher, target: Target, measure: str = "persons",
                      rewrites: int = 4) -> bool | None:
    """c. Differencing with many equivalent rewrites of both queries (other
    aggregate forms and scale factors, synonymous filters, the group's IN
    list reordered, repeats): the mean of the "with" answers minus the mean
    of the "without" answers. (`x + 0` is refused as a padded sum; `x * 1`
    and `x + x` are not.)"""
    rng = rng_for(target, "c")
    group = random_group(rng)
    means = []
    for selection in (with_target, without_target):
        values = []
        for i in range(rewrites):
            rng.shuffle(group)
            forms = REWRITES[measure](target.code, selection(prefectures(group), target))
            sql, scale = forms[i % len(forms)]
            value = researcher.value(sql)
            if value is None:
                return None
            values.append(value / scale)
        means.append(statistics.fmean(values))
    return decide(means[0] - means[1], THRESHOLD)


# ---------------------------------------------------------------- d. tracker


def tracker(researcher: Researcher, target: Target, pairs: int = 1) -> bool | None:
    """d. Denning's tracker over `pairs` random pairs of disjoint big groups
    A and B: points of (A ∪ B ∪ target) − (A without the target) − (B
    without A and the target), averaged over the pairs."""
    rng, cell = rng_for(target, f"d{pairs}"), target.rows()
    estimates = []
    for _ in range(pairs):
        drawn = rng.sample(PREFECTURES, 30)
        a, b = prefectures(drawn[:15]), prefectures(drawn[15:])
        union = researcher.value(points(target.code, persons_in(f"{a} OR {b} OR ({cell})")))
        only_a = researcher.value(points(target.code, without_target(a, target)))
        only_b = researcher.value(points(target.code, f"{without_target(b, target)} AND {persons_not_in(a)}"))
        if None in (union, only_a, only_b):
            return None
        estimates.append(union - only_a - only_b)
    return decide(statistics.fmean(estimates), THRESHOLD + rounding_error(researcher, (1, 1, 1)))


def averaged_tracker(researcher: Researcher, target: Target, pairs: int = 4) -> bool | None:
    """d. The tracker averaged over several pairs of groups."""
    return tracker(researcher, target, pairs)


# ---------------------------------------------------------------- e. suppression oracle


def persons_by_total(low: float, high: float) -> str:
    """Persons whose receipts total [low, high) points: a cohort by a
    per-person measure, the finest dial on persons a researcher has (keys
    may not be compared with constants)."""
    return (f"person_id IN (SELECT person_id FROM ndb.receipts GROUP BY person_id "
            f"HAVING sum(total_points) >= {low:.0f} AND sum(total_points) < {high:.0f})")


def suppression_oracle(researcher: Researcher, target: Target) -> bool | None:
    """e. Find by bisection on persons' total points a group with exactly
    k − 1 persons with the code (the smallest released group minus one
    person; the target left out while searching), then ask for that group
    with the target added: it is released only if the target has the code."""
    cell = target.rows()

    def released(bound: int) -> bool:
        selection = f"{persons_by_total(0, bound)} AND {persons_not_in(cell)}"
        return researcher.value(persons(target.code, selection)) is not None

    high = 16
    while not released(high):
        high *= 2
        if high > 1 << 40:
            return None
    low = high // 2 if high > 16 else 0  # withheld at low, released at high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if released(middle) else (middle, high)
    group = f"(({persons_by_total(0, high - 1)} AND {persons_not_in(cell)}) OR {persons_in(cell)})"
    return researcher.value(persons(target.code, group)) is not None


def dense_ids(researcher: Researcher, target: Target) -> bool | None:
    """j. One query: nine persons known without asking (person ids are
    dense, so ids 1 to 9 are nine persons with receipts) and the target if
    they have the code; the group is shown exactly when it has k persons."""
    start = rng_for(target, "j").randrange(1, 1_000)
    nine = f"person_id >= {start} AND person_id < {start + K - 1} AND {persons_not_in(target.rows())}"
    selection = f"({nine}) OR ({_with_code(target)})"
    return researcher.value(f"SELECT count(DISTINCT person_id) AS v FROM ndb.receipts WHERE {selection}") is not None


# ---------------------------------------------------------------- f. padding


def _padded(target: Target, padding: str) -> str:
    """Persons with the code in the target's cell, with k − 1 padding rows."""
    return (f"SELECT count(DISTINCT person_id) AS v FROM ("
            f"SELECT person_id FROM ndb.diagnoses WHERE icd10 = {literal(target.code)} "
            f"AND {persons_in(target.rows())} UNION ALL {padding}) AS padded")


def _fake_persons() -> str:
    return ", ".join(f"({-i})" for i in range(1, K))


def padding_values(researcher: Researcher, target: Target) -> bool | None:
    """f. The target's cell padded to k persons with k − 1 fake rows from
    VALUES: released only if the target has the code."""
    padding = f"SELECT person_id FROM (VALUES {_fake_persons()}) AS pad(person_id)"
    return researcher.value(_padded(target, padding)) is not None


def padding_workspace(researcher: Researcher, target: Target) -> bool | None:
    """f. The same with the fake rows saved first in a workspace table."""
    table = f"work.pad_{secrets.token_hex(4)}"
    researcher.rows(f"CREATE TABLE {table} AS SELECT person_id FROM (VALUES {_fake_persons()}) AS pad(person_id)")
    try:
        return researcher.value(_padded(target, f"SELECT person_id FROM {table}")) is not None
    finally:
        researcher.rows(f"DROP TABLE {table}")


# ---------------------------------------------------------------- g. two projects


def two_projects(researcher: Researcher, target: Target) -> bool | None:
    """g. Differencing across two projects over the same data: the "with"
    query in the researcher's first project, the "without" in the second."""
    first, second = researcher.projects[:2]
    group = prefectures(random_group(rng_for(target, "g")))
    with_ = researcher.value(points(target.code, with_target(group, target)), first)
    without = researcher.value(points(target.code, without_target(group, target)), second)
    return decide(difference(with_, without), THRESHOLD)


# ---------------------------------------------------------------- h. random search


def _target_weights(design: list[list[int]]) -> list[float] | None:
    """Least-squares weights of the target's atom (column 0): the row w with
    w · answers = the estimate of the target's value; None if not identified."""
    n = len(design[0])
    gram = [[sum(row[i] * row[j] for row in design) for j in range(n)] + [1.0 if i == 0 else 0.0]
            for i in range(n)]
    for col in range(n):  # Gauss-Jordan: solve gram · z = e_0
        pivot = max(range(col, n), key=lambda r: abs(gram[r][col]))
        if abs(gram[pivot][col]) < 1e-9:
            return None
        gram[col], gram[pivot] = gram[pivot], gram[col]
        for r in range(n):
            if r != col:
                factor = gram[r][col] / gram[col][col]
                gram[r] = [x - factor * y for x, y in zip(gram[r], gram[col])]
    z = [gram[i][n] / gram[i][i] for i in range(n)]
    return [sum(a * b for a, b in zip(row, z)) for row in design]


def _amplification(design: list[list[int]]) -> float:
    """How much a design amplifies errors of the answers into the target's
    estimate (sum of |weights|); infinite if it does not identify the target
    or a query covers fewer than two groups (too few persons)."""
    if any(sum(row[1:]) < 2 for row in design):
        return float("inf")
    weights = _target_weights(design)
    return float("inf") if weights is None else sum(abs(w) for w in weights)


def search_design(rng: random.Random, queries: int, groups: int, steps: int) -> list[list[int]]:
    """Random mutation search (one bit at a time, kept if no worse), from a
    random valid design, for a design of `queries` unions of atoms (the
    target, `groups` groups) that identifies the target with the least
    error amplification."""
    best = float("inf")
    while best == float("inf"):  # start from a design that identifies the target
        design = [[rng.randint(0, 1) for _ in range(groups + 1)] for _ in range(queries)]
        best = _amplification(design)
    for _ in range(steps):
        row, col = rng.randrange(queries), rng.randrange(groups + 1)
        design[row][col] ^= 1
        score = _amplification(design)
        if score <= best:
            best = score
        else:
            design[row][col] ^= 1
    return design


def random_search(researcher: Researcher, target: Target, queries: int = 8, groups: int = 4,
                  steps: int = 400) -> bool | None:
    """h. A bounded search in the style of QuerySnout: atoms are the target
    and `groups` random blocks of prefectures without the target; a design
    of `queries` unions of atoms is searched offline, the queries are sent,
    and the least-squares combination of their answers estimates the
    target's points with the code."""
    rng = rng_for(target, "h")
    shuffled = list(PREFECTURES)
    rng.shuffle(shuffled)
    blocks = [prefectures(shuffled[i::groups]) for i in range(groups)]
    design = search_design(rng, queries, groups, steps)
    weights = _target_weights(design)
    answers = []
    for row in design:
        group = " OR ".join(block for block, chosen in zip(blocks, row[1:]) if chosen)
        selection = with_target(group, target) if row[0] else without_target(group, target)
        answers.append(researcher.value(points(target.code, selection)))
    if None in answers:
        return None
    estimate = sum(w * a for w, a in zip(weights, answers))
    return decide(estimate, THRESHOLD + rounding_error(researcher, weights))


# ---------------------------------------------------------------- i. edge of a remembered cell's reach


class _Bases:
    """Base cohorts for one target's probes: persons whose receipts total
    [low, high) points (the target left out), `spacing` persons apart so
    that no probe's sets lie within reach of another's, all ending at the
    same `high`. Sizes are in persons, turned into points by the density
    the attacker measured once."""

    def __init__(self, researcher: Researcher, target: Target, salt: str,
                 width: int = 150, spacing: int = 30, bases: int = 9):
        self.target = target
        span = researcher.value(f"SELECT count(DISTINCT person_id) AS v FROM ndb.receipts "
                                f"WHERE {persons_by_total(16_000, 32_000)}")
        self.density = (span or 1.0) / 16_000  # persons per point
        reach = (width + spacing * bases) / self.density
        self.high = rng_for(target, salt).uniform(16_000 + reach, 32_000)
        self.lows = iter(self.high - (width + spacing * j) / self.density for j in range(bases))

    def _cohort(self, low: float, high: float) -> str:
        return f"{persons_by_total(low, high)} AND {persons_not_in(self.target.rows())}"

    def repeats(self, researcher: Researcher, cut: float, extra: str = "") -> bool | None:
        """Asks a new base, then the base cut short by `cut` persons' worth
        of points (with the rows `extra` OR'd in): whether the cut repeats
        the base's answer. None when the bases ran out or a value was
        withheld."""
        low = next(self.lows, None)
        if low is None:
            return None
        sql = "SELECT count(DISTINCT person_id) AS v, count(*) AS w FROM ndb.receipts WHERE {}"
        base = researcher.rows(sql.format(self._cohort(low, self.high)))
        selection = self._cohort(low, self.high - cut / self.density)
        probe = researcher.rows(sql.format(f"({selection}) OR ({extra})" if extra else selection))
        if not base or not probe or None in base[0].values():
            return None
        return probe[0] == base[0]


def _with_code(target: Target) -> str:
    """The target's receipts if they have the code, no row otherwise."""
    return f"{target.rows()} AND {has_code(target.code)}"


def reach_edge(researcher: Researcher, target: Target) -> bool | None:
    """i. The edge between "repeats an earlier answer" and "answered fresh".
    A base cohort (persons by total points) is asked, then the same cohort
    cut short: the answer repeats the base's when the cut removed few
    enough persons. Bisection on the cut (a fresh base for every step)
    finds the longest cut that repeats; the last base is then cut as long
    with the target added when they have the code, which puts it one person
    further: a fresh answer says they have it."""
    bases = _Bases(researcher, target, "i")
    short, long_ = 0.0, 64.0  # cuts in persons: `short` repeats, `long_` is fresh
    for _ in range(7):
        middle = (short + long_) / 2
        outcome = bases.repeats(researcher, middle)
        if outcome is None:
            return None
        short, long_ = (middle, long_) if outcome else (short, middle)
    repeated = bases.repeats(researcher, short, _with_code(target))
    return None if repeated is None else not repeated


def reach_edge_averaged(researcher: Researcher, target: Target, probes: int = 6, cut: float = 16.5) -> bool | None:
    """i. The same edge probed by an attacker who knows where a smooth edge
    is steepest (about k + 6.5 persons out for k = 10): `probes` bases,
    each cut by `cut` persons with the target added when they have the
    code; the cut repeats its base less often when it is one person
    longer, so fewer repeats than half say they have it."""
    bases = _Bases(researcher, target, "i-averaged", bases=probes)
    outcomes = [bases.repeats(researcher, cut, _with_code(target)) for _ in range(probes)]
    if None in outcomes:
        return None
    return sum(outcomes) < probes / 2

# ---------------------------------------------------------------- running and scoring


@dataclass(frozen=True)
class Attack:
    name: str
    kind: str
    run: Callable[[Researcher, Target], bool | None]
    refusal_expected: bool = False  # the guard already refuses its statements


ATTACKS = [
    Attack("differencing-persons", "a. differencing, person counts", lambda r, t: differencing(r, t, "persons")),
    Attack("differencing-points", "a. differencing, point sums", differencing),
    Attack("complement", "b. complement of a suppressed cell", complement),
    Attack("rewrites-persons", "c. averaged rewrites, person counts", averaged_rewrites),
    Attack("rewrites-points", "c. averaged rewrites, point sums", lambda r, t: averaged_rewrites(r, t, "points")),
    Attack("tracker", "d. tracker", tracker),
    Attack("averaged-tracker", "d. tracker averaged over pairs", averaged_tracker),
    Attack("suppression-oracle", "e. suppression oracle", suppression_oracle),
    Attack("padding-values", "f. padding with VALUES", padding_values, refusal_expected=True),
    Attack("padding-workspace", "f. padding with workspace rows", padding_workspace, refusal_expected=True),
    Attack("two-projects", "g. two projects", two_projects),
    Attack("random-search", "h. random search", random_search),
    Attack("reach-edge", "i. edge of a remembered cell's reach", reach_edge),
    Attack("reach-edge-averaged", "i. edge of a reach, averaged over bases", reach_edge_averaged),
    Attack("dense-ids", "j. nine persons known by dense ids, one query", dense_ids, refusal_expected=True),
]


@dataclass
class Outcome:
    """An attack's guesses over targets, and the statements it sent."""

    kind: str
    targets: list[Target]
    guesses: list[bool | None]
    queries: int
    refusals: int
    errors: list[str] = field(default_factory=list)

    @property
    def baseline(self) -> float:
        """Accuracy of guessing from the prior (the more frequent answer)."""
        share = sum(t.truth for t in self.targets) / len(self.targets)
        return max(share, 1 - share)

    @property
    def accuracy(self) -> float:
        """Share of targets guessed right; no answer counts as the prior guess."""
        score = sum(self.baseline if g is None else float(g == t.truth) for t, g in zip(self.targets, self.guesses))
        return score / len(self.targets)

    @property
    def answered(self) -> int:
        return sum(g is not None for g in self.guesses)

    @property
    def advantage(self) -> float:
        return self.accuracy - self.baseline

    def __add__(self, more: Outcome) -> Outcome:
        """This outcome and `more` (the same attack over further targets) as one."""
        return Outcome(self.kind, self.targets + more.targets, self.guesses + more.guesses,
                       self.queries + more.queries, self.refusals + more.refusals, self.errors + more.errors)


def _guess(attack: Attack, researcher: Researcher, target: Target) -> tuple[bool | None, str | None]:
    try:
        return attack.run(researcher, target), None
    except Refused as refusal:
        return None, str(refusal)


def run_attack(attack: Attack, researchers: list[Researcher], targets: list[Target]) -> Outcome:
    """Runs `attack` on every target, the targets shared out between the
    researchers (one thread each: the same user's parallel sessions)."""
    before = [(r.queries, r.refusals) for r in researchers]
    chunks = [list(range(i, len(targets), len(researchers))) for i in range(len(researchers))]

    def work(researcher, indices):
        return [(i, *_guess(attack, researcher, targets[i])) for i in indices]

    guesses: list[bool | None] = [None] * len(targets)
    errors = []
    with ThreadPoolExecutor(len(researchers)) as pool:
        for results in pool.map(work, researchers, chunks):
            for i, guess, error in results:
                guesses[i] = guess
                if error:
                    errors.append(error)
    queries = sum(r.queries - q for r, (q, _) in zip(researchers, before))
    refusals = sum(r.refusals - f for r, (_, f) in zip(researchers, before))
    return Outcome(attack.kind, targets, guesses, queries, refusals, errors)
