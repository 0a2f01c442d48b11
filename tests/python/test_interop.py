"""Python and C++ on one channel, in separate processes: the `shmbus` command (C++) reads what
Python publishes and publishes what Python reads, checked record by record (sequence, payload,
key, message type)."""
import json
import subprocess

import shmbus
from conftest import shmbus_bin


def record(i):
    body = bytes((i * 7 + j) & 0xFF for j in range(1 + i % 200))
    key = f"sym{i % 4}".encode() if i % 2 else None
    return body, key, i % 3


def test_python_publisher_to_cpp_tail(channel):
    pub = shmbus.Publisher(channel, capacity=1 << 20, max_message=4096)
    count = 500
    tail = subprocess.Popen([shmbus_bin(), "tail", channel, "--from", "earliest", "--count",
                             str(count), "--format", "json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    sent = [(pub.publish(body, key=key, message_type=t), body, key, t)
            for body, key, t in map(record, range(count))]
    out, err = tail.communicate(timeout=60)
    assert tail.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    got = [(j["seq"], bytes.fromhex(j["payload_hex"]),
            bytes.fromhex(j["key_hex"]) if "key_hex" in j else None, j.get("message_type", 0))
           for j in lines]
    assert got == sent
    assert [s for s, *_ in sent] == list(range(1, count + 1))


def test_cpp_publisher_to_python_subscriber(channel, cli):
    shmbus.Publisher(channel, capacity=1 << 20, max_message=4096).close()  # create it
    sub = shmbus.Subscriber(channel, policy="block", start="earliest")
    count = 500
    lines = []
    for i in range(count):
        body, key, t = record(i)
        j = {"payload_hex": body.hex(), "message_type": t}
        if key is not None:
            j["key_hex"] = key.hex()
        lines.append(json.dumps(j))
    # The subscriber holds what it has not polled: the ring (1 MiB) has room for all of it.
    cli("pub", channel, "--format", "json", input="\n".join(lines) + "\n")
    got = []
    while len(got) < count:
        batch = sub.poll(max=1000, timeout=5.0)
        assert batch, f"only {len(got)} of {count} records arrived"
        got += [(m.sequence, m.bytes(), m.key, m.message_type, m.lost_before) for m in batch]
    assert got == [(i + 1, *record(i), 0) for i in range(count)]


def test_python_subscriber_reads_a_cpp_publisher_live(channel):
    shmbus.Publisher(channel, capacity=1 << 16, max_message=1024).close()
    sub = shmbus.Subscriber(channel, policy="block")
    # 3000 records of 200 bytes through a 64 KiB ring: the C++ publisher waits on this subscriber.
    pub = subprocess.Popen([shmbus_bin(), "pub", channel, "--count", "3000", "--size", "200"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seqs = []
    while len(seqs) < 3000:
        batch = sub.poll(max=256, timeout=5.0)
        assert batch, f"stalled after {len(seqs)} records"
        seqs += [m.sequence for m in batch if len(m) == 200]
    assert pub.wait(timeout=30) == 0
    assert seqs == list(range(1, 3001))
