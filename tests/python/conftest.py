"""What the Python tests share: the module under test (PYTHONPATH points at build/python), the
`shmbus` command of the same build (SHMBUS_BIN), and a fresh channel name per test that is removed
afterwards."""
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time

import pytest

import shmbus

_counter = itertools.count()


def shmbus_bin():
    path = os.environ.get("SHMBUS_BIN")
    if not path:
        pytest.fail("SHMBUS_BIN must name the shmbus command of this build (ctest sets it)")
    return path


@pytest.fixture
def cli():
    """Runs `shmbus ARGS...` and returns the completed process (stdout, stderr as text)."""
    def run(*args, input=None, check=True, timeout=60):
        done = subprocess.run([shmbus_bin(), *map(str, args)], input=input, capture_output=True,
                              text=isinstance(input, str) or input is None, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"shmbus {' '.join(map(str, args))} exited {done.returncode}: "
                                 f"{done.stderr}")
        return done
    return run


@pytest.fixture
def channel():
    """A channel name no other test (or test run) uses; the channel is removed afterwards."""
    name = f"pytest.{os.getpid()}.{next(_counter)}"
    yield name
    # --force: this test process may still hold its publisher or subscriber until the collector
    # runs; the name goes either way.
    subprocess.run([shmbus_bin(), "rm", "--force", name], capture_output=True)


def wait_until(condition, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def python_child(code, *args):
    """Starts /usr/bin/python3 (the interpreter running the tests) on `code`, with this PYTHONPATH."""
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@contextlib.contextmanager
def journaler(channel, directory):
    """`shmbus record CHANNEL --dir DIRECTORY` running (attached) for the block; stopped with
    SIGINT after it, which must end it cleanly."""
    rec = subprocess.Popen([shmbus_bin(), "record", channel, "--dir", str(directory),
                            "--segment-size", str(1 << 20)], stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: (shmbus.stat(channel)["journal"] or {}).get("alive", False),
                   what="the journaler to attach")
        yield rec
    finally:
        rec.send_signal(signal.SIGINT)
        err = rec.communicate(timeout=30)[1]
    assert rec.returncode == 0, err
