"""A Python subscriber process killed with -9 is evicted like any other: the publisher, blocked by
its slot, evicts it after its liveness timeout, and `shmbus stat` shows it evicted."""
import json
import os
import signal

import shmbus
from conftest import python_child

SUBSCRIBER = """
import sys, shmbus
sub = shmbus.Subscriber(sys.argv[1], policy="block", start="earliest", liveness_timeout=0.3)
print("READY", flush=True)
for m in sub:  # reads what is there, then waits for more without end
    print("GOT", m.sequence, flush=True)
"""


def test_killed_python_subscriber_is_evicted_and_the_publisher_goes_on(channel, cli):
    pub = shmbus.Publisher(channel, capacity=1 << 16, max_message=1024)
    child = python_child(SUBSCRIBER, channel)
    assert child.stdout.readline().strip() == "READY"
    pub.publish(b"seen")
    assert child.stdout.readline().split() == ["GOT", "1"]
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    before = shmbus.stat(channel)
    assert [s["alive"] for s in before["subscribers"]] == [False]
    # Two rings' worth: the dead slot holds the ring until it is evicted (liveness 0.3 s).
    last = 0
    for i in range(130):
        last = pub.publish(bytes([i]) * 1000, timeout=10.0)
    assert last == 131
    after = json.loads(cli("stat", channel, "--json", "--interval-ms", "0").stdout)
    assert after["evictions"] == 1
    (slot,) = after["subscribers"]
    assert slot["state"] == "evicted" and slot["pid"] == child.pid and slot["evictions"] == 1
    assert shmbus.stat(channel)["subscribers"][0]["state"] == "evicted"
