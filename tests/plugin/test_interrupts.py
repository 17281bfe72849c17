"""Every Ctrl-C and SIGTERM that reaches a run is recorded, whenever it comes
and whichever thread sends it: while the run works, inside a finalizer (where
Python drops the KeyboardInterrupt it raises), while it holds signals to stop
what it started, after someone replaced its handler. The record, not the
exception, decides the exit code (the inner runs at each phase are in
test_faults.py and test_fixtures.py); here, hundreds of signals at moments
chosen at random, in a process of its own."""

import subprocess
import sys

STRESS = r"""
import gc, os, random, signal, threading, time
from pytest_cadasta.basics.interrupts import Interrupts

def busy(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass

class Finalizer:
    def __del__(self):
        busy(0.0005)

def celery_like_handler(signum, frame):
    pass

random.seed(int(os.environ["SEED"]))
lost, ended_as = [], {"raised": 0, "held": 0, "dropped": 0}
for attempt in range(int(os.environ["TIMES"])):
    interrupts = Interrupts()
    interrupts.install()
    signum = random.choice([signal.SIGINT, signal.SIGTERM])
    delay = random.uniform(0, 0.006)
    from_thread = random.random() < 0.5
    sender = threading.Thread(target=lambda: (time.sleep(delay), os.kill(os.getpid(), signum)))
    raised = False
    try:
        if from_thread:
            sender.start()
        else:
            busy(delay)
            os.kill(os.getpid(), signum)
        busy(0.001)
        Finalizer()
        gc.collect()
        if random.random() < 0.3:  # something put its own handler in place meanwhile...
            signal.signal(signal.SIGINT, celery_like_handler)
        with interrupts.held():  # ...the run holds signals while it stops
            busy(0.003)
        busy(0.001)
    except KeyboardInterrupt:
        raised = True
    while True:  # the sender done, and a signal still pending handled
        try:
            if from_thread:
                sender.join()
            busy(0.001)
            break
        except KeyboardInterrupt:
            raised = True
    with interrupts.held():
        pass
    if interrupts.received != [signum] and signal.getsignal(signum) is not celery_like_handler:
        lost.append((attempt, signum, delay, from_thread, interrupts.received))
    ended_as["raised" if raised else "held" if interrupts.received else "dropped"] += 1
    interrupts.restore()
    signal.signal(signal.SIGINT, signal.default_int_handler)
print("LOST", lost)
print("ENDED", ended_as)
"""


def test_hundreds_of_signals_at_random_moments_are_each_recorded():
    done = subprocess.run([sys.executable, "-c", STRESS], capture_output=True, text=True,
                          timeout=300, env={"SEED": "4242", "TIMES": "400",
                                            "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "LOST []" in done.stdout, done.stdout
