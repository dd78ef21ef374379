"""Releases on an S3-compatible store: `enclave ingest --data s3://…` writes a
release into a bucket (moto's local S3, started by scripts/s3-server.sh),
`enclave serve --data s3://…` serves it, and a Flight SQL client gets the
same answers as DuckDB over the local release built from the same extracts
and key. A bad location or an unreachable bucket fails with a clear error.
"""

from __future__ import annotations

from conftest import Project, Release, Server, make_state, query

BUCKET = "enclave-releases"
PREFIX = "ndb/prod"
USERS = {"alice": "researcher"}
PROJECT = Project("s3", ("alice",), grants=("ndb.receipts",), period=("2023-04", "2024-09"), rounding=None)
QUERIES = [
    "SELECT sex, COUNT(DISTINCT person_id) AS persons FROM ndb.receipts GROUP BY sex ORDER BY sex",
    "SELECT service_month, COUNT(*) AS receipts FROM ndb.receipts GROUP BY service_month ORDER BY service_month",
]


def objects(s3, bucket: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def test_a_release_on_s3_is_ingested_served_and_queried(cli, release: Release, s3, tmp_path):
    s3.create_bucket(Bucket=BUCKET)
    location = f"s3://{BUCKET}/{PREFIX}"
    done = cli.run("ingest", "--extracts", release.extracts, "--data", location, "--key-file", release.key)
    assert "r000001" in done.stdout + done.stderr
    keys = objects(s3, BUCKET)
    assert f"{PREFIX}/releases/r000001/manifest.json" in keys
    assert all(key.startswith(f"{PREFIX}/releases/") for key in keys), keys[:5]
    local = sorted(p.relative_to(release.data).as_posix() for p in release.dir.rglob("*") if p.is_file())
    assert sorted(key.removeprefix(f"{PREFIX}/") for key in keys) == local

    catalog = cli.run("catalog", "--data", location, "--lang", "en").stdout
    assert "ndb.receipts" in catalog

    state = tmp_path / "state"
    make_state(cli, state, USERS, {PROJECT.id: PROJECT})
    server = Server(cli, location, state, tmp_path / "serve.log")
    try:
        with server.connect("alice") as conn:
            for sql in QUERIES:
                answered = [tuple(row.values()) for row in query(conn, sql).to_pylist()]
                assert answered == release.expected(sql, PROJECT), sql
    finally:
        server.stop()


def test_bad_locations_fail_clearly_and_write_nothing(cli, release: Release, s3):
    refused = cli.run("serve", "--data", "gs://bucket/x", "--state", "unused", check=False)
    assert refused.returncode != 0 and "s3://bucket/prefix" in refused.stderr
    missing = cli.run("catalog", "--data", "s3://enclave-no-such-bucket/x", check=False)
    assert missing.returncode != 0
    assert "enclave-no-such-bucket" in missing.stderr or "no release" in missing.stderr.lower(), missing.stderr
    s3.create_bucket(Bucket="enclave-empty")
    empty = cli.run("catalog", "--data", "s3://enclave-empty/none", check=False)
    assert empty.returncode != 0 and "s3://enclave-empty/none" in empty.stderr, empty.stderr
    assert objects(s3, "enclave-empty") == []
