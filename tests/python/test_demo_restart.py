"""`enclave demo`: the README's quickstart runs against it, and it and its
restart keep one audit log: an admin command run
beside the running demo lands in the demo's log, the restart command the
demo prints continues that log (one chain, verified against one key), and
a restart pointed at another log is refused with the command that
continues this one."""

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import CLUSTER, STATE_DB_SERVER, free_ports

# The demo keeps its state in its own directory and its data on local disk:
# it runs in the embedded pass only.
pytestmark = pytest.mark.skipif(bool(STATE_DB_SERVER or CLUSTER), reason="the demo runs in the embedded pass")

PERSONS = 400


def wait_listening(process: subprocess.Popen, port: int, log, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError(f"did not listen within {timeout} s:\n{log.read_text(errors='replace')}")


def start(args: list[str], log) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(20)


def events(cli, audit_dir, action: str) -> list[dict]:
    out = cli.run("audit", "search", "--dir", audit_dir, "--action", action).stdout
    return [json.loads(line.split("\t", 5)[5]) for line in out.splitlines()]


def wait_for_event(cli, audit_dir, action: str, timeout: float = 60) -> list[dict]:
    """The running server moves admin events from the inbox into its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = events(cli, audit_dir, action)
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"no {action} event in {audit_dir} within {timeout} s")


def test_the_quickstart_runs_against_the_demo(cli, tmp_path):
    """examples/adbc_quickstart.py, as the README runs it, against a demo."""
    port, portal_port = free_ports(2)
    log = tmp_path / "demo.log"
    demo = start([cli.binary, "demo", "--persons", str(PERSONS), "--workdir", str(tmp_path / "demo"),
                  "--listen", f"127.0.0.1:{port}", "--portal-listen", f"127.0.0.1:{portal_port}"], log)
    try:
        wait_listening(demo, port, log)
        example = Path(__file__).resolve().parents[2] / "examples" / "adbc_quickstart.py"
        done = subprocess.run([sys.executable, example], capture_output=True, text=True, timeout=300,
                              env={**os.environ, "ENCLAVE_URI": f"grpc://127.0.0.1:{port}"})
    finally:
        stop(demo)
    assert done.returncode == 0, done.stderr
    assert "refused: " in done.stdout and "row-level" in done.stdout, done.stdout
    assert done.stdout.rstrip().endswith('{"done": true}'), done.stdout


def test_an_admin_command_and_a_restart_stay_on_the_demos_log(cli, tmp_path):
    workdir = tmp_path / "demo"
    state, audit = workdir / "state", workdir / "state" / "audit"
    port, portal_port = free_ports(2)
    log = tmp_path / "demo.log"
    demo = start([cli.binary, "demo", "--persons", str(PERSONS), "--workdir", str(workdir),
                  "--listen", f"127.0.0.1:{port}", "--portal-listen", f"127.0.0.1:{portal_port}"], log)
    try:
        wait_listening(demo, port, log)
        # An admin command beside the running demo, given only its state.
        cli.run("user", "add", "--state", state, "--name", "newcomer", "--role", "researcher",
                "--password-stdin", input="newcomer-correct-horse-battery\n")
        added = wait_for_event(cli, audit, "user.add")
        assert [e["user"] for e in added] == ["newcomer", "newcomer"]  # requested, then ok
    finally:
        stop(demo)

    # The restart the demo printed, on new ports.
    printed = re.search(r"^\s*(enclave serve --data \S+ --state \S+)\s*$", log.read_text(), re.MULTILINE)
    assert printed, log.read_text()
    restart_args = [cli.binary, *shlex.split(printed.group(1))[1:]]
    assert restart_args[-1] == str(state)
    port, portal_port = free_ports(2)
    restart_log = tmp_path / "restart.log"
    restarted = start([*restart_args, "--listen", f"127.0.0.1:{port}",
                       "--portal-listen", f"127.0.0.1:{portal_port}"], restart_log)
    try:
        wait_listening(restarted, port, restart_log)
    finally:
        stop(restarted)
    assert len(events(cli, audit, "server.start")) == 2
    verified = cli.run("audit", "verify", "--dir", audit, "--public-key", state / "audit-signing.key.pub")
    assert "the audit log verifies" in verified.stdout
    assert not list(workdir.glob("audit*")), "a second log beside the state"

    # Pointed at another log, the restart is refused and says how to continue.
    refused = cli.run(*restart_args[1:], "--listen", f"127.0.0.1:{port}", "--no-portal",
                      "--audit-dir", tmp_path / "another-log", check=False)
    assert refused.returncode != 0
    assert f"--audit-dir {audit}" in refused.stderr, refused.stderr
    assert not (tmp_path / "another-log").exists()
