"""shmbus.stat() against `shmbus stat --json`: the same fields at every level, and the same values
for everything that does not move between two reads; a signal handler ends an interval's wait."""
import json
import signal
import time

import pytest

import shmbus

# Fields that change between two reads of an idle channel (times, ages, rates since creation).
MOVING = {"sampled_ns", "messages_per_s_avg", "heartbeat_ns"}


def shape(value):
    """The key structure of a JSON document: dicts by key, lists by their first element."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return None


def static(value):
    if isinstance(value, dict):
        return {k: static(v) for k, v in value.items() if k not in MOVING}
    if isinstance(value, list):
        return [static(v) for v in value]
    return value


def test_stat_has_the_fields_and_values_of_the_command(channel, cli):
    pub = shmbus.Publisher(channel, capacity=1 << 16, max_message=512)
    block = shmbus.Subscriber(channel, name="risk", start="earliest", latency_histogram=True)
    drop = shmbus.Subscriber(channel, policy="drop", start="earliest")
    for i in range(10):
        pub.publish(bytes([i]) * 100, key=b"EURUSD")
    assert len(block.poll()) == 10
    # A block subscriber hands its ring space (and its counters) back when it polls again, done
    # with the last poll's memoryviews: stat counts the ten records from then on.
    assert block.poll() == []
    drop.poll()
    ours = shmbus.stat(channel)
    theirs = json.loads(cli("stat", channel, "--json", "--interval-ms", "0").stdout)
    assert shape(ours) == shape(theirs)
    assert list(ours) == list(theirs)  # the same order, too
    assert static(ours) == static(theirs)
    assert ours["capacity"] == 1 << 16 and ours["max_message"] == 512
    # A record's bytes count its tag too: 8 bytes plus the 6-byte key rounded up to 8.
    assert ours["published_messages"] == 10 and ours["published_bytes"] == 10 * (100 + 16)
    subs = {s["policy"]: s for s in ours["subscribers"]}
    assert subs["block"]["name"] == "risk" and subs["block"]["received"] == 10
    assert subs["block"]["latency"]["count"] == 10
    assert subs["drop"]["received"] == 10 and subs["drop"]["lost"] == 0
    assert ours["producers"][0]["published"] == 10


def test_stat_with_an_interval_measures_rates(channel):
    pub = shmbus.Publisher(channel)
    pub.publish(b"x")
    s = shmbus.stat(channel, interval=0.05)
    assert s["rates_measured"] is True and s["interval_s"] > 0
    assert shmbus.stat(channel)["rates_measured"] is False


class Interrupted(Exception):
    pass


def test_a_signal_handler_that_raises_ends_the_interval(channel):
    shmbus.Publisher(channel)

    def interrupt(signum, frame):
        raise Interrupted()

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        started = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(Interrupted):
            shmbus.stat(channel, interval=60.0)
        assert time.monotonic() - started < 30.0  # the handler ran, not after the interval
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
