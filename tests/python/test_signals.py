"""Signal handlers (SIGALRM here, SIGTERM alike) that use the object the main thread is waiting in:
they run between the wait's slices without its lock, so closing, polling or publishing from them
works instead of deadlocking. A __del__ run by the garbage collector in the middle of a call gets
an error instead of a deadlock. Each case runs in a child process that a hang cannot outlive."""
import subprocess

import pytest

from conftest import python_child

PRELUDE = """
import faulthandler, gc, signal, sys
import shmbus
faulthandler.dump_traceback_later(20, exit=True)  # a hang ends the child, with its stack
channel = sys.argv[1]

def after(seconds, handler):
    signal.signal(signal.SIGALRM, lambda signum, frame: handler())
    signal.setitimer(signal.ITIMER_REAL, seconds)
"""


def run_child(code, channel):
    """Runs PRELUDE + code in a child; returns its stdout lines, failing on a hang or an error."""
    child = python_child(PRELUDE + code, channel)
    try:
        out, err = child.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
        pytest.fail(f"the child hung: {out}\n{err}")
    assert child.returncode == 0, f"exit {child.returncode}: {out}\n{err}"
    return out.split()


def test_handler_closing_the_subscriber_ends_its_poll_with_a_closed_error(channel):
    assert run_child("""
pub = shmbus.Publisher(channel)
sub = shmbus.Subscriber(channel)
after(0.2, sub.close)
try:
    sub.poll(timeout=None)
    print("RETURNED")
except shmbus.Error as e:
    print("RAISED", e.code, "closed" if "is closed" in str(e) else str(e))
""", channel) == ["RAISED", "invalid_argument", "closed"]


def test_handler_closing_the_subscriber_ends_its_iteration(channel):
    assert run_child("""
pub = shmbus.Publisher(channel)
sub = shmbus.Subscriber(channel, start="earliest")
pub.publish(b"one")
got = []
for m in sub:
    got.append(m.sequence)
    after(0.2, sub.close)
print("ENDED", got)
""", channel) == ["ENDED", "[1]"]


def test_handler_polling_the_subscriber_the_main_thread_waits_in(channel):
    assert run_child("""
pub = shmbus.Publisher(channel)
sub = shmbus.Subscriber(channel)
in_handler = []
def poll_then_publish():
    in_handler.append(len(sub.poll()))   # the same subscriber: nothing there yet
    pub.publish(b"from the handler")
after(0.2, poll_then_publish)
got = sub.poll(timeout=None, copy=True)
print(in_handler, [(m.sequence, m.payload.decode()) for m in got])
""", channel) == ["[0]", "[(1,", "'from", "the", "handler')]"]


def test_a_del_calling_the_subscriber_inside_its_poll_gets_an_error_not_a_deadlock(channel):
    out = run_child("""
pub = shmbus.Publisher(channel)
sub = shmbus.Subscriber(channel, start="earliest")
pub.publish(b"x")
errors = []
sys.unraisablehook = lambda u: errors.append(u.exc_value)

class Garbage:
    def __init__(self):
        self.cycle = self  # only the collector frees it
    def __del__(self):
        Garbage()          # garbage for the next collection, whenever it comes
        sub.received       # in the middle of the poll below: called again from its thread

gc.disable()
Garbage()
gc.set_threshold(1)        # nearly every allocation of a tracked object collects
gc.enable()
got = sub.poll()           # its result (a list, memoryviews) is allocated inside the call
gc.disable()
print([m.bytes() for m in got], len(errors) > 0)
print(sorted({(type(e).__name__, e.code, "called again" in str(e)) for e in errors}))
""", channel)
    assert out == ["[b'x']", "True", "[('Error',", "'busy',", "True)]"]


FULL_RING = """
pub = shmbus.Publisher(channel, capacity=1 << 16, max_message=1024)
sub = shmbus.Subscriber(channel, policy="block", start="earliest")
last = 0
try:
    while True:  # until the block subscriber, which does not poll, holds the whole ring
        last = pub.publish(last.to_bytes(4, "little") * 250, timeout=0)
except shmbus.Error as e:
    assert e.code == "timed_out", e
"""


def test_handler_closing_the_publisher_ends_its_back_pressured_publish(channel):
    assert run_child(FULL_RING + """
after(0.2, pub.close)
try:
    pub.publish(b"n" * 1000, timeout=None)  # no room for it
    print("RETURNED")
except shmbus.Error as e:
    print("RAISED", e.code, "closed" if "is closed" in str(e) else str(e))
""", channel) == ["RAISED", "invalid_argument", "closed"]


def test_handler_publishing_on_the_publisher_whose_publish_waits(channel):
    out = run_child(FULL_RING + """
def free_the_ring_and_publish():
    sub.poll(max=1000)  # takes the ring's records
    sub.poll(max=1)     # and gives their space back
    print("HANDLER", pub.publish(b"from the handler", timeout=5.0))
after(0.2, free_the_ring_and_publish)
print("MAIN", pub.publish(b"m" * 1000, timeout=None), last)  # no room for it
print([(m.sequence, m.bytes()) for m in sub.poll(max=10)])
""", channel)
    last = int(out[4])
    assert out[:4] == ["HANDLER", str(last + 1), "MAIN", str(last + 2)]
    assert " ".join(out[5:]) == (f"[({last + 1}, b'from the handler'), "
                                 f"({last + 2}, b'{'m' * 1000}')]")


def test_a_claim_the_collector_drops_inside_a_claim_call_is_abandoned_without_deadlock(channel):
    out = run_child("""
pub = shmbus.Publisher(channel)
sub = shmbus.Subscriber(channel, start="earliest")
inside = []
sys.unraisablehook = lambda u: print("UNRAISABLE", u.exc_value)

class Holder:
    def __init__(self):
        self.cycle = self
        self.claim = pub.claim(4)  # never committed: dropped with the holder
    def __del__(self):
        try:
            pub.capacity          # raises while a call of pub on this thread is in progress
        except shmbus.Error as e:
            inside.append(e.code)
            return                # the claim is dropped inside that call
        Holder()                  # not yet: another holder for the next collection

gc.disable()
Holder()
gc.set_threshold(1)
gc.enable()
committed = []
for i in range(200):  # claim() allocates (its memoryview) in the middle of the call
    with pub.claim(1) as buf:
        buf[:] = b"c"
    if inside:
        break
gc.disable()
got = sub.poll(max=10000)
print(inside)
accounted = len(got) + sum(m.lost_before for m in got)  # committed or counted lost
print(all(m.bytes() == b"c" for m in got), accounted, got[-1].sequence)
""", channel)
    assert out[0] == "['busy']"
    assert out[1] == "True" and out[2] == out[3]  # every sequence up to the last one
