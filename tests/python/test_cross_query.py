"""Disclosure across queries: attacks that combine several released answers
to learn one bit about one person must do no better than guessing.

Each attack of `attacks.py` runs over persons of the test release, each
singled out by quasi-identifiers (the only person with a receipt of a given
sex, age band, prefecture and service month), and tries to tell whether
they have a given ICD-10 code; half of them do, so the prior guesses right
half the time. The attacker is a researcher in two projects over the same
data with the default policy (k = 10, counts and sums rounded to 10, the
release ledger).

The verdict is a two-stage test on the share of targets guessed right. An
attack that scores at most FIRST_PASS over FIRST targets passes; above it,
MORE targets follow and the attack fails when it scores more than
FINAL_BOUND over all of them. The ledger leaves trackers a small advantage
by design (docs/query-rules.md, "What it does not close"): on this test's
release the tracker scored 56 % on average over 30 runs (each with a new
pseudonymization key and ledger noise key) and the averaged tracker about
60 %, and one score over 20 targets varies by about ±10 points, so the single
bound of 75 % over 20 targets this test had failed on chance (16 of 20 in
3 of 87 runs). With the two stages, an attack that truly scores 57 % fails
one run in 25,000 and one at 65 % one in 300, while one at 90 % fails 98 %
of runs and one at 95 % all but 4 in 10,000 (binomial tails; the second
stage runs in 8 % of runs at 57 %). Without the ledger (`--protection
single-query`, rounding none) the differencing, complement and tracker
attacks score 100 % over the 60 targets.

The attacks decide by thresholds, so noise on the answers does not make
them fail; a refusal counts as no answer (the prior guess), and every
attack whose statements the guard accepts must be answered, so that a test
cannot pass by the attack breaking.
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
FIRST, MORE = 20, 40  # targets of the first and the second stage
FIRST_PASS = 0.70  # accuracy over FIRST targets that passes at once
FINAL_BOUND = 0.80  # accuracy over FIRST + MORE targets above which the attack fails
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
    targets = attacks.select_targets(release.duckdb(FULL_PERIOD), FIRST + MORE)
    assert sum(t.truth for t in targets[:FIRST]) == FIRST // 2
    assert sum(t.truth for t in targets) == (FIRST + MORE) // 2
    return targets


@pytest.mark.parametrize("attack", attacks.ATTACKS, ids=[a.name for a in attacks.ATTACKS])
def test_attack_does_no_better_than_the_prior(attack, sessions, targets):
    outcome = attacks.run_attack(attack, sessions, targets[:FIRST])
    if outcome.accuracy > FIRST_PASS:
        outcome += attacks.run_attack(attack, sessions, targets[FIRST:])
    if not attack.refusal_expected:
        assert not outcome.refusals, f"the guard refused the attack's statements: {outcome.errors[:3]}"
    assert outcome.baseline == 0.5
    assert outcome.accuracy <= FINAL_BOUND, (
        f"{attack.kind}: {outcome.accuracy:.0%} of {len(outcome.targets)} targets guessed right "
        f"(prior {outcome.baseline:.0%}), {outcome.answered} answered, {outcome.queries} queries")
