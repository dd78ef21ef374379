"""The audit archive (`enclave serve --audit-archive s3://bucket/prefix`)
against a local S3-compatible server (moto, through scripts/s3-server.sh):
every sealed segment and every checkpoint is copied byte for byte under
Object Lock in compliance mode, its version cannot be deleted, each upload is
an `audit.archived` event, and a bucket without Object Lock is refused
before anything is served.

moto under-enforces compliance mode: it lets a COMPLIANCE lock be changed to
GOVERNANCE and its retention shortened, both of which real S3 refuses; those
two guarantees are therefore not tested here (docs/audit.md)."""

import hashlib
import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from conftest import Project, query
from test_audit import events

RETENTION_DAYS = 3
PREFIX = "enclave/test"
USERS = {"alice": "researcher"}
ARCHIVE_PROJECTS = {"archive": Project("archive", ("alice",))}
SQL = "SELECT sex, count(DISTINCT person_id) AS persons FROM ndb.receipts GROUP BY sex"


def wait_for(what: str, condition, timeout: float = 90):
    """Polls `condition` until it returns something true, for at most `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"no {what} within {timeout} s")


def archived_objects(s3, bucket: str) -> dict[str, int]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{PREFIX}/")
    return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}


def local_objects(audit_dir) -> dict[str, bytes]:
    """What the archive must hold by now: the sealed segments (all but the
    newest) and every signed checkpoint line, by object key."""
    segments = sorted(audit_dir.glob("*.seg"))[:-1]
    wanted = {f"{PREFIX}/segments/{path.name}": path.read_bytes() for path in segments}
    for line in (audit_dir / "checkpoints.jsonl").read_text().splitlines():
        size = json.loads(line)["size"]
        wanted[f"{PREFIX}/checkpoints/{size:020}.json"] = line.encode()
    return wanted


def assert_archive_verifies(cli, s3, bucket: str, public_key, copy) -> None:
    """docs/audit.md's check of the archive alone: its segments, with the
    checkpoints they cover, verify as a log of their own."""
    for key in archived_objects(s3, bucket):
        target = copy / key.removeprefix(f"{PREFIX}/")
        target.parent.mkdir(exist_ok=True)
        s3.download_file(bucket, key, str(target))
    segments = cli.run("audit", "verify", "--dir", copy / "segments", "--public-key", public_key).stdout
    covered = int(segments.split(" events")[0])
    lines = [path.read_text() for path in sorted((copy / "checkpoints").glob("*.json"))
             if int(path.stem) <= covered]
    assert lines, f"no archived checkpoint within the {covered} archived events"
    (copy / "segments" / "checkpoints.jsonl").write_text("".join(line + "\n" for line in lines))
    verified = cli.run("audit", "verify", "--dir", copy / "segments", "--public-key", public_key).stdout
    assert f"{covered} events, {len(lines)} checkpoints verified" in verified, verified
    assert "the audit log verifies" in verified


def test_sealed_segments_and_checkpoints_are_archived_under_compliance_lock(cli, start_server, s3, tmp_path):
    bucket = "audit-locked"
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    server = start_server("archive", USERS, ARCHIVE_PROJECTS, (
        "--audit-archive", f"s3://{bucket}/{PREFIX}", "--audit-retention-days", str(RETENTION_DAYS),
        "--audit-segment-size", "2KiB"))
    audit_dir = server.state / "audit"
    with server.connect("alice") as conn:
        for _ in range(8):
            query(conn, SQL)
        # Checkpoints are signed every 10 s; the segments roll every few
        # events, so the next queries seal the events of the first checkpoint.
        wait_for("checkpoint", lambda: (audit_dir / "checkpoints.jsonl").exists())
        for _ in range(8):
            query(conn, SQL)
    wanted = local_objects(audit_dir)
    assert sum(key.endswith(".seg") for key in wanted) >= 3, sorted(wanted)

    wait_for("archive of every sealed segment and checkpoint",
             lambda: wanted.keys() <= archived_objects(s3, bucket).keys())
    recorded = {e["detail"]["key"]: e["detail"] for e in events(cli, server, "--action", "audit.archived")}
    expected_until = datetime.now(timezone.utc) + timedelta(days=RETENTION_DAYS)
    for key, local in wanted.items():
        stored = s3.get_object(Bucket=bucket, Key=key)
        assert stored["Body"].read() == local, key
        assert stored["ObjectLockMode"] == "COMPLIANCE", key
        assert abs(stored["ObjectLockRetainUntilDate"] - expected_until) < timedelta(minutes=10), key
        if not key.endswith(".seg"):
            continue  # checkpoint uploads are not events (see docs/audit.md)
        detail = recorded[key]
        assert detail["version_id"] == stored["VersionId"]
        assert detail["bytes"] == len(local)
        assert detail["sha256"] == hashlib.sha256(local).hexdigest()
        assert abs(datetime.fromisoformat(detail["retain_until"]) - expected_until) < timedelta(minutes=10)

    some = sorted(wanted)[0]
    version = s3.head_object(Bucket=bucket, Key=some)["VersionId"]
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=bucket, Key=some, VersionId=version)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert s3.get_object(Bucket=bucket, Key=some, VersionId=version)["Body"].read() == wanted[some]

    assert not events(cli, server, "--action", "audit.archive_failed")
    assert not events(cli, server, "--action", "audit.archive_mismatch")
    verified = cli.run("audit", "verify", "--dir", audit_dir,
                       "--public-key", server.state / "audit-signing.key.pub")
    assert "the audit log verifies" in verified.stdout
    assert_archive_verifies(cli, s3, bucket, server.state / "audit-signing.key.pub", tmp_path)
    assert server.alive()
    server.stop()  # the archive's last pass runs before the server exits
    assert server.process.returncode == 0, server.output()


def test_an_archived_object_of_another_size_is_reported_not_overwritten(cli, start_server, s3):
    bucket = "audit-tampered"
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    first = f"{PREFIX}/segments/{0:020}.seg"
    planted = b"not the first segment"
    s3.put_object(Bucket=bucket, Key=first, Body=planted)
    server = start_server("tampered", USERS, ARCHIVE_PROJECTS, (
        "--audit-archive", f"s3://{bucket}/{PREFIX}", "--audit-segment-max-age-secs", "1"))
    with server.connect("alice") as conn:
        query(conn, SQL)
    found = wait_for("mismatch event", lambda: events(cli, server, "--action", "audit.archive_mismatch"))
    local = server.state / "audit" / f"{0:020}.seg"
    assert found[0]["outcome"] == "failed"
    assert found[0]["detail"] == {"key": first, "archived_bytes": len(planted),
                                  "local_bytes": local.stat().st_size}
    assert "differ in size" in server.output()
    # Later segments are archived; the planted object is never replaced.
    wait_for("archive of a later segment",
             lambda: any(key.endswith(".seg") and key != first for key in archived_objects(s3, bucket)))
    server.stop()  # at least one more pass: the mismatch is reported once
    assert len(events(cli, server, "--action", "audit.archive_mismatch")) == 1
    versions = s3.list_object_versions(Bucket=bucket, Prefix=first)["Versions"]
    assert len(versions) == 1 and s3.get_object(Bucket=bucket, Key=first)["Body"].read() == planted


def test_a_bucket_without_object_lock_is_refused_before_serving(start_server, s3):
    bucket = "audit-unlocked"
    s3.create_bucket(Bucket=bucket)
    with pytest.raises(RuntimeError) as refused:
        start_server("unlocked", USERS, ARCHIVE_PROJECTS, ("--audit-archive", f"s3://{bucket}/{PREFIX}"))
    message = str(refused.value)
    assert "enclave serve exited 1" in message, message
    assert f"bucket {bucket} does not have S3 Object Lock enabled" in message, message
    assert "serving Flight SQL" not in message
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
