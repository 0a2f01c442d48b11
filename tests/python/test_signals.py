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
