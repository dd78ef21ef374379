"""Ingest at population scale: wall time, peak resident memory, spill and
linkage quality per population size, one population at a time.

    ENCLAVE_BIN=<release binary> python3 services/ingest/benches/ingest_scale.py \
        1000000 3000000 [--work DIR] [--memory-mb N [N ...]] [--before <older binary>] \
        [--workers N [N ...]] [--threads T]

For each size: `enclave synth --persons N --seed 7`, then `enclave ingest`
under `/usr/bin/time -v` (peak resident set of the whole process), then
`enclave linkage-eval` (F1 of the release and of both single-key
baselines), once per `--memory-mb` limit and `--workers` count given
(default: the binary's limit, no worker processes). `--threads T` runs
every ingest with T threads (`RAYON_NUM_THREADS`; its workers share them),
so `--threads 1 --workers 1 2` compares one and two single-threaded
workers. With `--before`, the older binary ingests the same extracts
first, for a side-by-side row. Extracts and releases are removed after each
size, so the largest size bounds the disk used.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

KEY = "ingest-scale-benchmark-key-of-at-least-32-bytes"


def run(args, env=None):
    started = time.monotonic()
    done = subprocess.run(args, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done, time.monotonic() - started


def timed_ingest(binary, extracts, data, memory_mb, workers, threads):
    env = dict(os.environ, ENCLAVE_PSEUDONYM_KEY=KEY)
    if threads:
        env["RAYON_NUM_THREADS"] = str(threads)
    args = ["/usr/bin/time", "-v", binary, "ingest", "--extracts", extracts, "--data", data]
    if memory_mb:
        args += ["--memory-mb", str(memory_mb)]
    if workers:
        args += ["--workers", str(workers)]
    done, seconds = run(args, env)
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    spilled = re.search(r"spilled ([\d.]+) MB", done.stdout)
    worker_peak = re.search(r"each worker at most ([\d.]+) MB", done.stdout)
    phases = re.search(r"parse ([\d.]+)s, link ([\d.]+)s, tables ([\d.]+)s", done.stdout)
    return {
        "seconds": seconds,
        "peak_mb": peak_kb / 1024,
        "worker_peak_mb": float(worker_peak.group(1)) if worker_peak else None,
        "spill_mb": float(spilled.group(1)) if spilled else 0.0,
        "phases": "/".join(f"{float(p):.0f}" for p in phases.groups()),
    }


def linkage_f1(binary, extracts, data):
    done, _ = run([binary, "linkage-eval", "--truth", os.path.join(extracts, "truth"), "--data", data])
    report = json.loads(done.stdout)
    return {name: report[name]["f1"] for name in ("union", "id1_only", "id2_only")}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("persons", nargs="+", type=int)
    parser.add_argument("--work", default="/tmp/enclave-ingest-scale")
    parser.add_argument("--memory-mb", type=int, nargs="+", default=[0])
    parser.add_argument("--before", help="an older binary to ingest the same extracts first")
    parser.add_argument("--workers", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=0)
    options = parser.parse_args()
    binary = os.environ["ENCLAVE_BIN"]
    print(
        "| persons | receipts | binary | --memory-mb | --workers | wall | parse/link/tables s "
        "| peak RSS | worker peak | spilled | F1 release | F1 ID1-only | F1 ID2-only |"
    )
    print("|---:|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for persons in options.persons:
        shutil.rmtree(options.work, ignore_errors=True)
        extracts = os.path.join(options.work, "extracts")
        done, _ = run([binary, "synth", "--persons", str(persons), "--seed", "7", "--out", extracts])
        receipts = int(re.search(r"NDB receipts\s+(\d+)", done.stdout).group(1))
        runs = [("before", options.before, 0, 0)] if options.before else []
        runs += [
            ("this", binary, limit, workers)
            for limit in options.memory_mb
            for workers in options.workers
        ]
        for label, path, limit, workers in runs:
            data = os.path.join(options.work, f"data-{label}-{limit}-{workers}")
            figures = timed_ingest(path, extracts, data, limit, workers, options.threads)
            f1 = linkage_f1(binary, extracts, data)
            worker_peak = figures["worker_peak_mb"]
            print(
                f"| {persons:,} | {receipts:,} | {label} | {limit or 'default'} | {workers or 'none'} "
                f"| {figures['seconds']:.0f} s | {figures['phases']} "
                f"| {figures['peak_mb']:,.0f} MB | {f'{worker_peak:,.0f} MB' if worker_peak else '–'} "
                f"| {figures['spill_mb']:,.0f} MB "
                f"| {f1['union']:.5f} | {f1['id1_only']:.3f} | {f1['id2_only']:.3f} |",
                flush=True,
            )
            shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(options.work, ignore_errors=True)


if __name__ == "__main__":
    main()
