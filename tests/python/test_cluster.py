"""The cluster deployment (`ENCLAVE_TEST_CLUSTER=1`): a front end refuses to
serve when its cluster reads another release than its own `--data`, or
cannot be reached, rather than answering every query from the wrong data.
"""

from __future__ import annotations

import subprocess

import pytest

from conftest import CLUSTER, _CLUSTERS, command_env, make_state

pytestmark = pytest.mark.skipif(not CLUSTER, reason="needs the cluster deployment (ENCLAVE_TEST_CLUSTER=1)")


def serve_briefly(cli, data, state, engine: str) -> subprocess.CompletedProcess:
    """`enclave serve` that must refuse to start (a server that starts is
    stopped by the timeout, failing the test)."""
    args = [cli.binary, "serve", "--data", str(data), "--state", str(state), "--listen", "127.0.0.1:0",
            "--no-portal", "--engine", engine]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, env=command_env(args))


def test_a_cluster_over_another_release_is_refused(cli, release, tmp_path):
    extracts, data = tmp_path / "extracts", tmp_path / "data"
    cli.run("synth", "--persons", 300, "--seed", 5, "--out", extracts)
    cli.run("ingest", "--extracts", extracts, "--data", data, "--key-file", release.key)
    state = tmp_path / "state"
    make_state(cli, state, {"ana": "researcher"}, {})
    refused = serve_briefly(cli, data, state, _CLUSTERS[release.location])
    assert refused.returncode != 0
    assert "reads another data store" in refused.stderr and "give both the same --data" in refused.stderr, \
        refused.stderr


def test_an_unreachable_cluster_is_refused(cli, release, tmp_path):
    state = tmp_path / "state"
    make_state(cli, state, {"ana": "researcher"}, {})
    refused = serve_briefly(cli, release.location, state, "ballista://127.0.0.1:9")
    assert refused.returncode != 0
    assert "cannot run a query on the cluster at ballista://127.0.0.1:9" in refused.stderr, refused.stderr
