"""Publisher.wait_durable: True once the journaler has synced the sequence, False at once without
a journaler, ValueError for a timeout that is no number of seconds, interrupted by a signal
handler between its slices, and ended by close() from another thread instead of reading a
destroyed publisher."""
import math
import signal
import threading
import time

import pytest

import shmbus
from conftest import journaler


def test_true_once_synced_and_false_at_once_without_a_journaler(channel, tmp_path):
    pub = shmbus.Publisher(channel)
    seq = pub.publish(b"before any journaler")
    started = time.monotonic()
    assert pub.wait_durable(seq, 30.0) is False  # nothing would make it durable
    assert time.monotonic() - started < 10.0
    with journaler(channel, tmp_path / "j"):
        seq = pub.publish(b"journaled")
        assert pub.wait_durable(seq, 30.0) is True
        assert pub.durable_sequence >= seq and pub.journaled_sequence >= seq
        assert pub.wait_durable(seq + 1000, 0) is False  # timeout 0: one look


@pytest.mark.parametrize("timeout", [-1.0, math.nan, math.inf, -math.inf])
def test_a_timeout_that_is_no_number_of_seconds_raises_value_error(channel, timeout):
    pub = shmbus.Publisher(channel)
    with pytest.raises(ValueError, match="timeout must be None or a number of seconds"):
        pub.wait_durable(1, timeout)


class Interrupted(Exception):
    pass


def test_a_signal_handler_that_raises_ends_the_wait(channel, tmp_path):
    pub = shmbus.Publisher(channel)

    def interrupt(signum, frame):
        raise Interrupted()

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        with journaler(channel, tmp_path / "j"):
            started = time.monotonic()
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            with pytest.raises(Interrupted):
                pub.wait_durable(10**12, 60.0)  # never durable while the journaler lives
            assert time.monotonic() - started < 30.0  # the handler ran, not after the timeout
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_close_from_another_thread_ends_the_wait_with_a_closed_error(channel, tmp_path):
    pub = shmbus.Publisher(channel)
    outcome = []

    def wait():
        try:
            outcome.append(pub.wait_durable(10**12, 60.0))
        except shmbus.Error as e:
            outcome.append(e)

    with journaler(channel, tmp_path / "j"):
        waiter = threading.Thread(target=wait, daemon=True)
        waiter.start()
        time.sleep(0.2)
        started = time.monotonic()
        pub.close()  # waits for the wait's next slice, which then gives up
        assert time.monotonic() - started < 30.0
        waiter.join(timeout=30)
    (error,) = outcome
    assert isinstance(error, shmbus.Error) and "closed" in str(error)
    with pytest.raises(shmbus.Error, match="is closed"):
        pub.wait_durable(1, 1.0)
