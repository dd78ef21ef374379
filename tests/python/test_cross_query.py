"""Disclosure across queries: attacks that combine several released answers
to learn one bit about one person must do no better than guessing.

Each attack of `attacks.py` runs over TARGETS persons of the test release,
each singled out by quasi-identifiers (the only person with a receipt of a
given sex, age band, prefecture and service month), and tries to tell
whether they have a given ICD-10 code; half of them do, so the prior guesses
right half the time. The attacker is a researcher in two projects over the
same data with the default policy (k = 10, counts and sums rounded to 10,
the release ledger).

A test fails when the attack's accuracy exceeds the baseline by more than
MARGIN: with TARGETS targets a guard that leaks nothing stays below it by
over two standard deviations of chance, while an attack that works scores
far above it. The attacks decide by thresholds, so noise on the answers
does not make them fail; a refusal counts as no answer (the prior guess),
and every attack whose statements the guard accepts must be answered, so
that a test cannot pass by the attack breaking.
"""

from __future__ import annotations

import os

import pytest

import attacks
from conftest import FULL_PERIOD, Project

# The attacks' outcome depends on the guard's and the ledger's rules, the
# same in every deployment: they run in the embedded pass only. The
# ledger's storage (PostgreSQL) and its sketches on a cluster are checked in
# every pass by test_ledger.py.
pytestmark = pytest.mark.skipif(
    bool(os.environ.get("ENCLAVE_TEST_STATE_DB") or os.environ.get("ENCLAVE_TEST_CLUSTER")),
    reason="the attacks run in the embedded pass",
)

ATTACKER = "mallory"
PROJECTS = {
    project: Project(project, (ATTACKER,), grants=("ndb.receipts", "ndb.diagnoses"), protection=None)
    for project in ("cross", "cross-2")
}
TARGETS = 20
MARGIN = 0.25
SESSIONS = 2  # the attacker's parallel sessions


@pytest.fixture(scope="module")
def sessions(start_server):
    """The attacker's sessions, each connected to both of their projects
    (the first is the default)."""
    server = start_server("cross-query", {ATTACKER: "researcher"}, PROJECTS)
    rounding = PROJECTS["cross"].rounding or 1
    mallory = [attacks.Researcher({p: server.connect(ATTACKER, p) for p in PROJECTS}, rounding=rounding)
               for _ in range(SESSIONS)]
    yield mallory
    for session in mallory:
        session.close()


@pytest.fixture(scope="module")
def targets(release) -> list[attacks.Target]:
    targets = attacks.select_targets(release.duckdb(FULL_PERIOD), TARGETS)
    assert sum(t.truth for t in targets) == TARGETS // 2
    return targets


@pytest.mark.parametrize("attack", attacks.ATTACKS, ids=[a.name for a in attacks.ATTACKS])
def test_attack_does_no_better_than_the_prior(attack, sessions, targets):
    outcome = attacks.run_attack(attack, sessions, targets)
    if not attack.refusal_expected:
        assert not outcome.refusals, f"the guard refused the attack's statements: {outcome.errors[:3]}"
    accuracy, bound = outcome.accuracy, outcome.baseline + MARGIN
    assert accuracy <= bound, (
        f"{attack.kind}: {accuracy:.0%} of {len(targets)} targets guessed right "
        f"(prior {outcome.baseline:.0%}), {outcome.answered} answered, {outcome.queries} queries")
