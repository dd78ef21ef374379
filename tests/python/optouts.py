"""Opt-out requests built from a synthetic release's identified extracts and
the generator's truth (kana name as a facility wrote it, birth date and sex
of chosen persons), with the person_ids they name in the release: the
expected effect of an opt-out is computed from the release's linkage
records with DuckDB, never from the server."""

import csv
from collections import Counter, defaultdict

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


def requests_for(release, count: int = 3):
    """Opt-out requests for `count` persons with receipts and one identity
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
    assert len(with_receipts) >= count
    picked = with_receipts[:count]
    requests = [(kana_of[p].most_common(1)[0][0], persons[p]["birth_date"], persons[p]["sex"]) for p in picked]
    requests.append(("ムメイ　ゴンベエ", "1901-01-01", "1"))  # nobody
    return requests, {next(iter(ids_of[p])) for p in picked}


def write_requests(path, requests) -> None:
    """The CSV `enclave optout add` reads."""
    path.write_text("kana_name,birth_date,sex\n" + "".join(f"{k},{b},{s}\n" for k, b, s in requests),
                    encoding="utf-8")
