"""The command line's standard output: a reader that goes away early
(`enclave catalog --json | head`) ends the command quietly, without a
panic."""

import os
import subprocess


def test_a_closed_pipe_ends_the_command_quietly(cli, release):
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first byte is written
    try:
        done = subprocess.run([cli.binary, "catalog", "--data", str(release.data), "--json"],
                              stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert done.returncode == 0, done.stderr
    assert "panicked" not in done.stderr and done.stderr == "", done.stderr
