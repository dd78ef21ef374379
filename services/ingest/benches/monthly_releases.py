"""Monthly releases: person ids kept from month to month, and the last
monthly release against one ingest of all months from nothing.

    ENCLAVE_BIN=<release binary> $VENV/bin/python \
        services/ingest/benches/monthly_releases.py PERSONS [--months N] [--append] [--work DIR]

`enclave synth --persons PERSONS --seed 7` writes the whole population; then,
for each month k of the first N (default 24), `enclave synth --months
202304..<month k>` writes the months so far (each file as in the whole run)
and `enclave ingest` publishes release k into one data directory, keeping
the ids of release k - 1. Per release it prints the ingest's wall time, its
`ids` figures, and the share of the previous release's persons whose
records all kept their `person_id` (records of the month-ordered sources,
matched by position). Then the whole run is ingested into a fresh data
directory and compared with the last monthly release: rows per table, a
checksum of each table's sorted rows with the id columns left out (record
ids rank records by `person_id`, so they follow the ids), whether both
releases put the same records in the same persons, and `enclave
linkage-eval` of both. Needs pyarrow (the project's venv).

With `--append`, release k (k > 1) is `enclave ingest --append` of month k
alone (`synth --months <month k>..<month k>`), and beside each one a full
ingest of months 1..k into a scratch directory is timed for comparison;
the linkage of the last release is scored against the months' truth files
one after another (record numbers continue from one append to the next).
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

KEY = "monthly-releases-benchmark-key-of-at-least-32-bytes"
SEED = "7"
FIRST_MONTH = date(2023, 4, 1)
ID_COLUMNS = {"person_id", "receipt_id", "admission_id", "claim_id", "certification_id"}


def run(args, env=None):
    started = time.monotonic()
    done = subprocess.run(args, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout, time.monotonic() - started


def yyyymm(months_after_first):
    index = FIRST_MONTH.year * 12 + FIRST_MONTH.month - 1 + months_after_first
    return f"{index // 12:04d}{index % 12 + 1:02d}"


def ingest(binary, extracts, data, append=False):
    env = dict(os.environ, ENCLAVE_PSEUDONYM_KEY=KEY)
    extra = ["--append"] if append else []
    out, seconds = run([binary, "ingest", "--extracts", extracts, "--data", data, *extra], env)
    ids = re.search(r"ids\s+kept (\d+) from \S+(?: \(appended\))?, new (\d+), merged (\d+), split (\d+)", out)
    figures = dict(zip(("kept", "new", "merged", "split"), map(int, ids.groups()))) if ids else {}
    return seconds, figures


def latest_release(data):
    releases = sorted(os.listdir(os.path.join(data, "releases")))
    return os.path.join(data, "releases", releases[-1])


def record_ids(release):
    """(source, record_seq) → person_id, certifications left out (one file
    per insurer holds every month, so their positions move)."""
    table = pq.read_table(os.path.join(release, "linkage", "records.parquet"))
    sources = table.column("source").to_pylist()
    seqs = table.column("record_seq").to_pylist()
    persons = table.column("person_id").to_pylist()
    return {
        (source, seq): person
        for source, seq, person in zip(sources, seqs, persons)
        if source != "care_certifications"
    }


def kept_share(before, after):
    """Share of the persons of `before` whose records all kept their id."""
    changed = {person for record, person in before.items() if after[record] != person}
    persons = set(before.values())
    return 1 - len(changed) / len(persons), len(changed)


def same_persons(release_a, release_b, sources_in_same_order):
    """Whether both releases group the same records into persons (records
    of the sources whose order both releases share, matched by position)."""
    a = pq.read_table(os.path.join(release_a, "linkage", "records.parquet"))
    b = pq.read_table(os.path.join(release_b, "linkage", "records.parquet"))
    key = lambda t: list(zip(t.column("source").to_pylist(), t.column("record_seq").to_pylist()))
    b_of = dict(zip(key(b), b.column("person_id").to_pylist()))
    forward, backward = {}, {}
    for record, person in zip(key(a), a.column("person_id").to_pylist()):
        if record[0] not in sources_in_same_order:
            continue
        other = b_of[record]
        if forward.setdefault(person, other) != other or backward.setdefault(other, person) != person:
            return False
    return True


def table_checksums(release):
    """Rows and a SHA-256 of the sorted rows without id columns, per table."""
    manifest = json.load(open(os.path.join(release, "manifest.json")))
    checksums = {}
    for name, entry in sorted(manifest["tables"].items()):
        files = [os.path.join(release, path) for path in entry["files"]]
        if not files:
            checksums[name] = (0, "")
            continue
        table = pa.concat_tables(pq.ParquetFile(f).read() for f in files)
        table = table.select([c for c in table.column_names if c not in ID_COLUMNS])
        table = table.sort_by([(c, "ascending") for c in table.column_names])
        digest = hashlib.sha256()
        for column in table.columns:
            digest.update(pc.cast(column, "string").to_string().encode())
        checksums[name] = (table.num_rows, digest.hexdigest()[:16])
    return checksums


def concatenate_truth(cuts, out):
    """The truth files of `cuts`, one after another, renumbered."""
    os.makedirs(out)
    for source in ("ndb", "dpc", "care_claims", "care_certifications"):
        lines = ["record_seq,person"]
        for cut in cuts:
            with open(os.path.join(cut, "truth", f"{source}.csv")) as truth:
                for line in list(truth)[1:]:
                    lines.append(f"{len(lines) - 1},{line.split(',')[1].strip()}")
        with open(os.path.join(out, f"{source}.csv"), "w") as merged:
            merged.write("\n".join(lines) + "\n")


def linkage_f1(binary, truth, data):
    out, _ = run([binary, "linkage-eval", "--truth", truth, "--data", data])
    report = json.loads(out)
    return {name: round(report[name]["f1"], 5) for name in ("union", "id1_only", "id2_only")}


def time_full_ingest(binary, persons, work, months):
    """Seconds of one ingest of `months` from nothing, for comparison."""
    extracts, data = os.path.join(work, "full-extracts"), os.path.join(work, "full-data")
    for scratch in (extracts, data):
        shutil.rmtree(scratch, ignore_errors=True)
    run([binary, "synth", "--persons", persons, "--seed", SEED, "--out", extracts, "--months", months])
    seconds, _ = ingest(binary, extracts, data)
    return seconds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("persons", type=int)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--append", action="store_true", help="release k appends month k alone")
    parser.add_argument("--work", default="/tmp/enclave-monthly-releases")
    args = parser.parse_args()
    binary = os.environ.get("ENCLAVE_BIN") or sys.exit("set ENCLAVE_BIN to an enclave binary")
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    whole = os.path.join(args.work, "whole")
    persons = str(args.persons)
    run([binary, "synth", "--persons", persons, "--seed", SEED, "--out", whole])
    series = os.path.join(args.work, "series")
    cut = os.path.join(args.work, "cut")
    mode = "appended one month at a time" if args.append else "each ingesting every month so far"
    print(f"{args.persons} persons, {args.months} monthly releases, {mode} (synth seed {SEED})")
    print("| release | months read | ingest | full ingest of months 1..k | persons kept | ids kept / new / merged / split |")
    print("|---:|---|---:|---:|---:|---|")
    before, appended_cuts = None, []
    for k in range(args.months):
        shutil.rmtree(cut, ignore_errors=True)
        appending = args.append and k > 0
        months = f"{yyyymm(k if appending else 0)}..{yyyymm(k)}"
        run([binary, "synth", "--persons", persons, "--seed", SEED, "--out", cut, "--months", months])
        if args.append:
            kept_cut = os.path.join(args.work, f"cut-{k + 1}")
            shutil.copytree(cut, kept_cut)
            appended_cuts.append(kept_cut)
        seconds, ids = ingest(binary, cut, series, append=appending)
        full = ""
        if appending:
            full_seconds = time_full_ingest(binary, persons, args.work, f"{yyyymm(0)}..{yyyymm(k)}")
            full = f"{full_seconds:.1f} s"
        after = record_ids(latest_release(series))
        kept = ""
        if before is not None:
            share, changed = kept_share(before, after)
            kept = f"{100 * share:.3f} % ({changed} changed)"
        figures = " / ".join(str(ids[f]) for f in ("kept", "new", "merged", "split")) if ids else "first"
        print(f"| {k + 1} | {months} | {seconds:.1f} s | {full} | {kept} | {figures} |", flush=True)
        before = after
    if args.append:
        shutil.rmtree(cut, ignore_errors=True)
        run([binary, "synth", "--persons", persons, "--seed", SEED, "--out", cut,
             "--months", f"{yyyymm(0)}..{yyyymm(args.months - 1)}"])
    fresh = os.path.join(args.work, "fresh")
    seconds, _ = ingest(binary, cut, fresh)
    print(f"\none ingest of all {args.months} months from nothing: {seconds:.1f} s")
    last, from_nothing = latest_release(series), latest_release(fresh)
    # Appended months' certification files come one after another, not
    # merged per insurer as in the whole run, so their positions differ.
    sources = {"ndb", "dpc", "care_claims"} | (set() if args.append else {"care_certifications"})
    print(f"same persons (records of {', '.join(sorted(sources))} grouped alike): "
          f"{same_persons(last, from_nothing, sources)}")
    a, b = table_checksums(last), table_checksums(from_nothing)
    print("| table | rows, monthly | rows, from nothing | checksum equal |")
    print("|---|---:|---:|---|")
    for name in sorted(a):
        print(f"| {name} | {a[name][0]} | {b[name][0]} | {a[name][1] == b[name][1]} |")
    truth = os.path.join(cut, "truth")
    series_truth = truth
    if args.append:
        series_truth = os.path.join(args.work, "appended-truth")
        concatenate_truth(appended_cuts, series_truth)
    print(f"linkage F1, monthly: {linkage_f1(binary, series_truth, series)}")
    print(f"linkage F1, from nothing: {linkage_f1(binary, truth, fresh)}")
    shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
