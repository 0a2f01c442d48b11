"""Journals written by `shmbus record` read from Python: every record compared byte for byte with
what was published (sequence, payload, key, type, time), seeks by sequence and by time, numpy
columns, iteration, and damage reported as an error."""
import os
import signal
import subprocess
import time

import numpy as np
import pytest

import shmbus
from conftest import python_child, shmbus_bin, wait_until


def record_channel(channel, directory, publish):
    """Runs `shmbus record` on `channel` into `directory` while `publish()` publishes; returns
    what publish() returned, once the journal holds its last sequence."""
    shmbus.Publisher(channel, capacity=1 << 20, max_message=4096).close()
    rec = subprocess.Popen([shmbus_bin(), "record", channel, "--dir", str(directory),
                            "--segment-size", str(1 << 20)],
                           stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: (shmbus.stat(channel)["journal"] or {}).get("alive", False),
                   what="the journaler to attach")
        sent = publish()
        last = sent[-1][0]
        wait_until(lambda: shmbus.stat(channel)["journal"]["written_sequence"] >= last,
                   what="the journal to hold every record")
    finally:
        rec.send_signal(signal.SIGINT)
        err = rec.communicate(timeout=30)[1]
    assert rec.returncode == 0, err
    return sent


def published(channel, count):
    pub = shmbus.Publisher(channel)
    sent = []
    for i in range(count):
        body = os.urandom(1 + (i * 37) % 3000)
        key = f"k{i % 5}".encode() if i % 3 == 0 else None
        seq = pub.publish(body, key=key, message_type=i % 4)
        sent.append((seq, body, key, i % 4))
        if i % 1000 == 0:
            time.sleep(0.001)  # spread the timestamps a little
    return sent


@pytest.fixture
def recorded(channel, tmp_path):
    sent = record_channel(channel, tmp_path / "journal", lambda: published(channel, 3000))
    return tmp_path / "journal", sent


def test_read_returns_every_record_byte_for_byte_as_numpy_columns(recorded):
    directory, sent = recorded
    journal = shmbus.Journal(str(directory))
    assert len(journal.segments) > 1  # 1 MiB segments: the range crosses segment boundaries
    a = journal.read()
    assert len(a) == len(sent) and a.gaps == []
    assert a.sequence.dtype == np.uint64 and a.timestamp_ns.dtype == np.int64
    assert a.sequence.tolist() == [s for s, *_ in sent]
    assert a.message_type.tolist() == [t for *_, t in sent]
    assert a.payload_length.tolist() == [len(b) for _, b, *_ in sent]
    assert a.payloads == b"".join(b for _, b, *_ in sent)
    for i, (_, body, key, _) in enumerate(sent):
        assert bytes(a.payload(i)) == body
        k = a.keys[a.key_offset[i]:a.key_offset[i] + a.key_length[i]]
        assert (k or None) == key
    assert np.all(np.diff(a.timestamp_ns) >= 0)
    assert len(journal.read()) == 0  # at the end


def test_journal_times_are_the_times_subscribers_saw(channel, tmp_path):
    sub = None

    def publish():
        nonlocal sub
        sub = shmbus.Subscriber(channel, start="earliest")
        return published(channel, 200)
    sent = record_channel(channel, tmp_path / "j", publish)
    seen = sub.poll(max=1000, copy=True)
    a = shmbus.Journal(str(tmp_path / "j")).read()
    assert [(m.sequence, m.timestamp_ns, m.payload) for m in seen] == [
        (int(a.sequence[i]), int(a.timestamp_ns[i]), bytes(a.payload(i))) for i in range(len(a))]
    assert [m.sequence for m in seen] == [s for s, *_ in sent]


def test_seek_by_sequence_and_by_time(recorded):
    directory, sent = recorded
    journal = shmbus.Journal(str(directory))
    everything = journal.read()
    journal.seek_sequence(1234)
    a = journal.read(max_records=10)
    assert a.sequence.tolist() == list(range(1234, 1244))
    assert a.payloads == b"".join(b for _, b, *_ in sent[1233:1243])
    journal.seek_sequence(2990)
    assert journal.read(to_sequence=2995).sequence.tolist() == list(range(2990, 2996))
    assert journal.read(max_records=1).sequence.tolist() == [2996]  # left on the next record
    t = int(everything.timestamp_ns[2000])
    journal.seek_time(t)
    first = int(np.argmax(everything.timestamp_ns >= t))
    assert journal.read(max_records=1).sequence.tolist() == [int(everything.sequence[first])]
    journal.seek_time(int(everything.timestamp_ns[100]))
    window = journal.read(to_time_ns=int(everything.timestamp_ns[200]))
    assert np.all(window.timestamp_ns <= everything.timestamp_ns[200])
    assert window.sequence[-1] >= 201
    journal.seek_sequence(0)  # before the journal: the first record
    assert journal.read(max_records=1).sequence.tolist() == [1]


def test_iteration_yields_each_record(recorded):
    directory, sent = recorded
    journal = shmbus.Journal(str(directory))
    journal.seek_sequence(2900)
    got = [(r["sequence"], r["payload"], r["key"], r["message_type"]) for r in journal]
    assert got == sent[2899:]
    assert all(r["type"] == "data" for r in shmbus.Journal(str(directory)))


def test_damage_in_the_middle_returns_the_records_before_it_then_raises_there(recorded):
    directory, sent = recorded
    first = sorted(p for p in os.listdir(directory) if p.endswith(".journal"))[0]
    path = os.path.join(directory, first)
    with open(path, "r+b") as f:  # scribble over a record in the middle of the first segment
        f.seek(os.path.getsize(path) // 2)
        f.write(b"\xff" * 64)
    journal = shmbus.Journal(str(directory))
    before = journal.read()  # stops at the damage with what it read
    assert 0 < len(before) < len(sent)
    assert before.sequence.tolist() == [s for s, *_ in sent[:len(before)]]
    assert before.payloads == b"".join(b for _, b, *_ in sent[:len(before)])
    for attempt in range(2):  # the reader stays before the damage
        with pytest.raises(shmbus.Error) as e:
            journal.read()
        assert e.value.code == "corrupt"
        assert first in str(e.value)
    assert journal.skip_damage()
    rest = journal.read()
    assert rest.gaps == []
    skipped = int(rest.sequence[0]) - len(before) - 1
    assert 0 < skipped < 50  # the damaged record and the rest of its block, no more
    assert rest.sequence.tolist() == [s for s, *_ in sent[len(before) + skipped:]]
    for i, (_, body, key, message_type) in enumerate(sent[len(before) + skipped:]):
        assert bytes(rest.payload(i)) == body and int(rest.message_type[i]) == message_type
    assert len(journal.read()) == 0  # at the end


def test_read_of_a_few_records_reserves_room_for_a_few(recorded):
    """Journal.read(max_records=10) must not reserve room for the whole journal (it reserved up
    to 1 GiB on every call): the peak address space of a fresh process grows by far less than
    the journal's size."""
    directory, sent = recorded
    size = sum(os.path.getsize(os.path.join(directory, p)) for p in os.listdir(directory))
    assert size > 4 << 20
    child = python_child("""
import sys
import numpy  # the first read would import it (and OpenBLAS its threads' stacks)
import shmbus
def peak():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmPeak:"))
journal = shmbus.Journal(sys.argv[1])
before = peak()
sequences = []
for _ in range(5):
    sequences += journal.read(max_records=10).sequence.tolist()
print(peak() - before, sequences == list(range(1, 51)))
""", directory)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    grown, right = out.split()
    assert right == "True"
    assert int(grown) < size // 4, f"peak address space grew by {grown} bytes ({size}-byte journal)"


def test_missing_directory_raises_not_found(tmp_path):
    with pytest.raises(shmbus.Error) as e:
        shmbus.Journal(str(tmp_path / "nowhere"))
    assert e.value.code == "not_found" and "nowhere" in str(e.value)
