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


def full_ring(channel):
    """A publisher whose ring a block subscriber that does not poll holds whole, and that
    subscriber: a 1000-byte publish waits."""
    pub = shmbus.Publisher(channel, capacity=1 << 16, max_message=1024)
    sub = shmbus.Subscriber(channel, policy="block", start="earliest")
    with pytest.raises(shmbus.Error, match="block subscriber"):
        for i in range(100):
            pub.publish(bytes([i]) * 1000, timeout=0)
    return pub, sub


def test_close_from_another_thread_ends_a_back_pressured_publish(channel):
    pub, sub = full_ring(channel)
    outcome = []

    def publish_forever():
        try:
            outcome.append(pub.publish(b"w" * 1000, timeout=None))
        except shmbus.Error as e:
            outcome.append(e)

    publisher = started(publish_forever)
    time.sleep(0.2)
    closer = started(pub.close)
    closer.join(timeout=10)
    if closer.is_alive():
        sub.close()  # evicts nothing, but frees the ring: the publish completes
        pytest.fail("close() waited for the back-pressured publish to end")
    publisher.join(timeout=10)
    (error,) = outcome
    assert isinstance(error, shmbus.Error) and error.code == "invalid_argument"
    assert "closed" in str(error)


def test_claims_committed_from_other_threads_while_one_publishes(channel):
    """Claims made and committed in two threads while a third publishes, all on one Publisher,
    and a block subscriber that frees the ring as it goes: every record arrives once, intact."""
    pub = shmbus.Publisher(channel, capacity=1 << 16, max_message=1024)
    sub = shmbus.Subscriber(channel, policy="block", start="earliest")
    per_thread = 400
    errors = []

    def claim_and_commit(tag):
        try:
            for i in range(per_thread):
                claim = pub.claim(8, timeout=10.0)
                claim.buffer[:] = tag + i.to_bytes(7, "little")
                claim.commit()
        except Exception as e:  # reported by the assertion below
            errors.append(e)

    def publish(tag):
        try:
            for i in range(per_thread):
                pub.publish(tag + i.to_bytes(7, "little") + b"\0" * 200, timeout=10.0)
        except Exception as e:
            errors.append(e)

    threads = [started(lambda: claim_and_commit(b"a")), started(lambda: claim_and_commit(b"b")),
               started(lambda: publish(b"p"))]
    got = []
    while len(got) < 3 * per_thread and any(t.is_alive() for t in threads):
        got += [(m.sequence, m.bytes()) for m in sub.poll(max=1000, timeout=0.1)]
    for t in threads:
        t.join(timeout=10)
    got += [(m.sequence, m.bytes()) for m in sub.poll(max=1000)]
    assert errors == []
    assert [s for s, _ in got] == list(range(1, 3 * per_thread + 1))
    for tag in (b"a", b"b", b"p"):
        mine = [b for _, b in got if b[:1] == tag]
        assert [int.from_bytes(b[1:8], "little") for b in mine] == list(range(per_thread)), tag
        assert all(len(b) == (208 if tag == b"p" else 8) for b in mine)
