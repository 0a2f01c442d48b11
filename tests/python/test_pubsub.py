"""Publisher and Subscriber in one process: content and sequences, payload memoryview lifetimes,
bytes copies, in-place claims, drop-subscriber gap counting, the GIL while waiting, bad input."""
import threading
import time

import numpy as np
import pytest

import shmbus


def payload(i, size=None):
    size = 8 + i % 57 if size is None else size
    return bytes((i * 31 + j) & 0xFF for j in range(size))


def test_block_subscriber_gets_every_record_with_its_sequence_key_and_type(channel):
    pub = shmbus.Publisher(channel, capacity=1 << 16, max_message=1024)
    sub = shmbus.Subscriber(channel, policy="block", start="earliest")
    sent = []
    for i in range(300):
        key = None if i % 3 else f"k{i % 7}".encode()
        seq = pub.publish(payload(i), key=key, message_type=i % 5)
        sent.append((seq, payload(i), key, i % 5))
        if i % 50 == 49:  # the ring holds 64 KiB: let the subscriber free it as it goes
            got = sub.poll(max=1000)
            assert [(m.sequence, m.bytes(), m.key, m.message_type) for m in got] == sent[:len(got)]
            sent = sent[len(got):]
    got = sub.poll(max=1000)
    assert [(m.sequence, m.bytes(), m.key, m.message_type) for m in got] == sent
    assert all(m.lost_before == 0 for m in got)
    assert sub.received == 300 and sub.lost == 0 and sub.next_sequence == 301


def test_publish_returns_consecutive_sequences_and_timestamps_are_publish_times(channel):
    pub = shmbus.Publisher(channel)
    sub = shmbus.Subscriber(channel, start="earliest")
    before = time.time_ns()
    seqs = [pub.publish(b"x" * i) for i in range(1, 11)]
    after = time.time_ns()
    assert seqs == list(range(1, 11))
    got = sub.poll()
    assert [m.sequence for m in got] == seqs
    assert all(before <= m.timestamp_ns <= after for m in got)
    assert [len(m) for m in got] == list(range(1, 11))


def test_payload_memoryview_is_zero_copy_and_released_by_the_next_poll(channel):
    pub = shmbus.Publisher(channel)
    sub = shmbus.Subscriber(channel, start="earliest")
    pub.publish(b"first payload")
    (m,) = sub.poll()
    view = m.payload
    assert isinstance(view, memoryview) and view.readonly
    assert view.tobytes() == b"first payload"
    assert np.frombuffer(view, dtype=np.uint8)[0] == ord("f")  # the array is gone after this line
    pub.publish(b"second")
    (m2,) = sub.poll()
    with pytest.raises(ValueError, match="released"):
        view.tobytes()
    with pytest.raises(ValueError):
        m.payload[0]
    with pytest.raises(shmbus.Error, match="released by the next poll") as e:
        m.bytes()
    assert e.value.code == "invalid_argument"
    assert m2.bytes() == b"second"
    assert m.sequence == 1 and m2.sequence == 2  # the rest of a message stays readable


def test_block_poll_refuses_while_a_slice_of_the_previous_payloads_is_alive(channel):
    pub = shmbus.Publisher(channel)
    sub = shmbus.Subscriber(channel, start="earliest")
    pub.publish(b"abcdef")
    (m,) = sub.poll()
    piece = m.payload[2:4]
    array = np.frombuffer(m.payload, dtype=np.uint8)
    pub.publish(b"next")
    with pytest.raises(shmbus.Error, match="still in use") as e:
        sub.poll()
    assert e.value.code == "busy"
    assert piece.tobytes() == b"cd" and bytes(array) == b"abcdef"  # the ring space was kept
    del piece, array
    (m2,) = sub.poll()
    assert m2.sequence == 2 and m2.bytes() == b"next"


def test_copy_true_gives_bytes_that_outlive_the_next_poll(channel):
    pub = shmbus.Publisher(channel)
    sub = shmbus.Subscriber(channel, start="earliest")
    pub.publish(b"kept")
    (m,) = sub.poll(copy=True)
    assert type(m.payload) is bytes
    pub.publish(b"more")
    sub.poll(copy=True)
    assert m.payload == b"kept" and m.bytes() == b"kept"


def test_drop_subscriber_copies_survive_as_slices_and_lost_records_are_counted_by_gap(channel):
    pub = shmbus.Publisher(channel, capacity=1 << 16, max_message=1024)
    sub = shmbus.Subscriber(channel, policy="drop", start="earliest")
    pub.publish(b"one")
    (m,) = sub.poll()
    keep = m.payload[:2]  # a drop payload is the batch's own copy: slices may outlive the poll
    # Lap the subscriber: 1000 records of 512 bytes through a 64 KiB ring.
    last = 0
    for i in range(1000):
        last = pub.publish(i.to_bytes(4, "little") * 128)
    got = []
    while sub.next_sequence <= last:  # a poll that finds itself lapped may deliver nothing
        got += sub.poll(max=1000, timeout=1.0, copy=True)
    assert keep.tobytes() == b"on"
    assert got[-1].sequence == last
    lost = sum(m.lost_before for m in got)
    assert lost > 0 and lost == sub.lost
    assert len(got) + lost == last - 1  # every sequence after the first is received or counted
    expected = 2
    for m in got:  # a gap is exactly the sequences missing before each message
        assert m.sequence == expected + m.lost_before
        assert m.payload == (m.sequence - 2).to_bytes(4, "little") * 128
        expected = m.sequence + 1


def test_claim_writes_in_place_and_commits(channel):
    pub = shmbus.Publisher(channel)
    sub = shmbus.Subscriber(channel, start="earliest")
    claim = pub.claim(8, key=b"K", message_type=9)
    assert claim.buffer.readonly is False and len(claim.buffer) == 8
    np.frombuffer(claim.buffer, dtype=np.uint64)[0] = 0x1122334455667788
    assert claim.commit() == 1
    with pytest.raises(shmbus.Error, match="after it was committed"):
        claim.buffer
    with pub.claim(3) as buf:
        buf[:] = b"xyz"
    with pytest.raises(RuntimeError):
        with pub.claim(3) as buf:
            buf[:] = b"bad"
            raise RuntimeError("the writer failed")
    pub.publish(b"after")
    got = sub.poll()
    assert [(m.sequence, m.bytes(), m.key, m.message_type) for m in got] == [
        (1, (0x1122334455667788).to_bytes(8, "little"), b"K", 9), (2, b"xyz", None, 0),
        (4, b"after", None, 0)]
    assert got[2].lost_before == 1  # the abandoned claim's sequence


def test_claim_refuses_to_commit_while_a_slice_of_its_buffer_is_alive(channel):
    pub = shmbus.Publisher(channel)
    claim = pub.claim(4)
    piece = claim.buffer[1:]
    with pytest.raises(shmbus.Error, match="slice or array"):
        claim.commit()
    del piece
    assert claim.commit() == 1


def test_poll_waits_without_the_gil(channel):
    pub = shmbus.Publisher(channel)
    sub = shmbus.Subscriber(channel)
    progress = []

    def other_thread():  # needs the GIL for every step, and publishes only after counting
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            progress.append(1)
        pub.publish(b"from the other thread")

    t = threading.Thread(target=other_thread)
    started = time.monotonic()
    t.start()
    got = sub.poll(timeout=10.0, copy=True)
    t.join()
    assert [m.payload for m in got] == [b"from the other thread"]
    assert len(progress) > 1000  # it ran while the poll waited
    assert time.monotonic() - started < 5.0


def test_iteration_yields_messages_in_order(channel):
    pub = shmbus.Publisher(channel)
    sub = shmbus.Subscriber(channel, start="earliest")
    for i in range(600):
        pub.publish(payload(i))
    seen = []
    for m in sub.messages(copy=True):
        seen.append((m.sequence, m.payload))
        if len(seen) == 600:
            break
    assert seen == [(i + 1, payload(i)) for i in range(600)]


def test_filter_by_key_and_type(channel):
    pub = shmbus.Publisher(channel)
    by_key = shmbus.Subscriber(channel, start="earliest", key_filter="EURUSD")
    by_type = shmbus.Subscriber(channel, start="earliest", message_types=[2])
    pub.publish(b"a", key="EURUSD", message_type=1)
    pub.publish(b"b", key="GBPUSD", message_type=2)
    pub.publish(b"c", key="EURUSD", message_type=2)
    assert [m.bytes() for m in by_key.poll()] == [b"a", b"c"]
    assert [m.bytes() for m in by_type.poll()] == [b"b", b"c"]
    assert by_key.filtered == 1


def test_named_subscriber_resumes_after_what_it_polled_before(channel):
    pub = shmbus.Publisher(channel)
    with shmbus.Subscriber(channel, name="resumer", start="earliest") as sub:
        for i in range(5):
            pub.publish(payload(i))
        assert [m.sequence for m in sub.poll(max=3)] == [1, 2, 3]
        sub.poll(max=1)  # the next poll releases the first three; seq 4 is delivered
    for i in range(5, 7):
        pub.publish(payload(i))
    with shmbus.Subscriber(channel, name="resumer") as sub:
        # Seq 4 was delivered but never released (no poll came after it): delivered again.
        assert [m.sequence for m in sub.poll(max=10)] == [4, 5, 6, 7]


def test_bad_input_raises_clear_errors(channel):
    with pytest.raises(shmbus.Error, match="does not exist") as e:
        shmbus.Subscriber(channel + ".missing")
    assert e.value.code == "not_found" and isinstance(e.value, RuntimeError)
    with pytest.raises(shmbus.Error, match="not_found|does not exist"):
        shmbus.stat(channel + ".missing")
    with pytest.raises(ValueError, match="policy"):
        shmbus.Subscriber(channel, policy="fast")
    pub = shmbus.Publisher(channel, capacity=1 << 16, max_message=256)
    with pytest.raises(shmbus.Error, match="above the channel's max_message") as e:
        pub.publish(b"x" * 1000)
    assert e.value.code == "invalid_argument"
    with pytest.raises(shmbus.Error, match="key has 300 bytes"):
        pub.publish(b"x", key=b"k" * 300)
    with pytest.raises(TypeError, match="bytes-like"):
        pub.publish(12345)
    with pytest.raises(shmbus.Error, match="capacity|another configuration"):
        shmbus.Publisher(channel, capacity=1 << 20, max_message=256)


def test_a_full_block_channel_times_out_with_the_reason(channel):
    pub = shmbus.Publisher(channel, capacity=1 << 16, max_message=1024)
    sub = shmbus.Subscriber(channel, start="earliest")
    with pytest.raises(shmbus.Error, match="block subscriber") as e:
        for _ in range(1000):
            pub.publish(b"y" * 1000, timeout=0.2)
    assert e.value.code == "timed_out"
    assert sub.poll(max=1)[0].sequence == 1


@pytest.mark.parametrize("policy", ["block", "drop"])
def test_poll_after_a_broken_off_iteration_returns_the_rest_of_its_batch_first(channel, policy):
    pub = shmbus.Publisher(channel, capacity=1 << 20, max_message=1024)
    sub = shmbus.Subscriber(channel, policy=policy, start="earliest")
    for i in range(600):
        pub.publish(payload(i))
    seen = []
    for m in sub:  # takes a batch of 256 from the ring, yields 5 of them
        seen.append((m.sequence, m.bytes()))
        if len(seen) == 5:
            break
    first = sub.poll(max=100, copy=True)  # the iteration's next 100, as bytes
    assert len(first) == 100 and all(type(m.payload) is bytes for m in first)
    seen += [(m.sequence, m.payload) for m in first]
    while len(seen) < 600:
        got = sub.poll(max=1000)
        assert got, f"nothing after sequence {seen[-1][0]}"
        seen += [(m.sequence, m.bytes()) for m in got]
    assert seen == [(i + 1, payload(i)) for i in range(600)]
    assert sub.poll() == [] and sub.received == 600 and sub.lost == 0


def test_iteration_after_a_poll_goes_on_where_the_poll_stopped(channel):
    pub = shmbus.Publisher(channel)
    sub = shmbus.Subscriber(channel, start="earliest")
    for i in range(20):
        pub.publish(payload(i))
    seen = [(m.sequence, m.bytes()) for m in sub.poll(max=7)]
    for m in sub:
        seen.append((m.sequence, m.bytes()))
        if m.sequence == 12:
            break
    seen += [(m.sequence, m.bytes()) for m in sub.poll(max=100)]
    assert seen == [(i + 1, payload(i)) for i in range(20)]
