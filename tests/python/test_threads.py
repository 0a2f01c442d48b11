"""One Publisher or Subscriber used from several threads: calls are serialised, a wait without end
steps aside for the others (close(), property reads) between its slices, and two iterating threads
share the messages, each exactly once."""
import threading
import time

import pytest

import shmbus
from conftest import wait_until


def body(sequence):
    return sequence.to_bytes(4, "little") * (1 + sequence % 9)


def started(target):
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def close_in_another_thread(sub, pub):
    """sub.close() from a thread of its own; fails if it does not return within 10 s (and then
    publishes, to end the wait it is stuck behind)."""
    closer = started(sub.close)
    closer.join(timeout=10)
    if closer.is_alive():
        pub.publish(b"unblocks the waiting call")
        pytest.fail("close() waited for a message to arrive")


def test_close_from_another_thread_ends_a_poll_without_timeout_with_a_closed_error(channel):
    pub = shmbus.Publisher(channel)
    sub = shmbus.Subscriber(channel)
    outcome = []

    def poll_forever():
        try:
            outcome.append(sub.poll(timeout=None))
        except shmbus.Error as e:
            outcome.append(e)

    poller = started(poll_forever)
    time.sleep(0.2)  # let it wait (a close that came first makes the poll raise all the same)
    close_in_another_thread(sub, pub)
    poller.join(timeout=10)
    (error,) = outcome
    assert isinstance(error, shmbus.Error) and error.code == "invalid_argument"
    assert f"subscriber of channel '{channel}' is closed" in str(error)
    with pytest.raises(shmbus.Error, match="is closed"):
        sub.poll()


def test_close_from_another_thread_ends_an_iteration(channel):
    pub = shmbus.Publisher(channel)
    sub = shmbus.Subscriber(channel, start="earliest")
    seen = []
    ended = threading.Event()

    def iterate():
        for m in sub.messages(copy=True):
            seen.append((m.sequence, m.payload))
        ended.set()  # StopIteration: the loop ends normally

    iterator = started(iterate)
    for s in range(1, 4):
        pub.publish(body(s))
    wait_until(lambda: len(seen) == 3, what="the iterating thread to take three messages")
    close_in_another_thread(sub, pub)
    assert ended.wait(timeout=10)
    iterator.join(timeout=10)
    assert seen == [(s, body(s)) for s in range(1, 4)]


def test_counters_read_from_another_thread_while_an_iteration_waits(channel):
    pub = shmbus.Publisher(channel)
    sub = shmbus.Subscriber(channel, start="earliest")
    seen = []
    iterator = started(lambda: seen.extend(m.sequence for m in sub))
    for s in range(1, 6):
        pub.publish(body(s))
        wait_until(lambda: len(seen) == s, what=f"message {s}")
        # The iterating thread holds the subscriber while it waits for the next message; these
        # reads take their turn between its slices.
        assert (sub.received, sub.next_sequence, sub.lost) == (s, s + 1, 0)
        assert (sub.status, sub.last_error, sub.policy) == ("ok", "", "block")
    close_in_another_thread(sub, pub)
    iterator.join(timeout=10)
    assert seen == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("policy", ["block", "drop"])
def test_two_threads_iterating_one_subscriber_get_each_message_exactly_once(channel, policy):
    count = 3000
    pub = shmbus.Publisher(channel, capacity=1 << 20, max_message=1024)
    sub = shmbus.Subscriber(channel, policy=policy, start="earliest")
    taken = {"a": [], "b": []}

    def iterate(name):
        for m in sub.messages(copy=True):
            taken[name].append((m.sequence, m.payload))

    threads = [started(lambda n=n: iterate(n)) for n in taken]
    for s in range(1, count + 1):
        pub.publish(body(s), timeout=10.0)
        if s % 100 == 0:
            time.sleep(0.001)  # let the iterators interleave with the publisher
    try:
        wait_until(lambda: len(taken["a"]) + len(taken["b"]) >= count, timeout=20,
                   what="both threads together to take every message")
    finally:
        close_in_another_thread(sub, pub)
    for t in threads:
        t.join(timeout=10)
    for name, got in taken.items():  # each thread sees its share in order
        assert [s for s, _ in got] == sorted(s for s, _ in got), name
    everything = sorted(taken["a"] + taken["b"])
    assert everything == [(s, body(s)) for s in range(1, count + 1)]
