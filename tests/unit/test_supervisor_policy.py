"""The supervisor's restart policy on real (tiny) child processes: backoff, give-up, clean stop."""

from __future__ import annotations

import itertools
import logging
import sys
import time
from dataclasses import dataclass

import psutil

from triton_clip.local import free_port, start_group
from triton_clip.supervise import Child, Policy, Supervisor


@dataclass
class Proc:
    proc: object


def test_backoff_doubles_up_to_its_cap() -> None:
    policy = Policy(backoff_initial_s=1, backoff_max_s=5)
    assert [policy.backoff(n) for n in range(1, 6)] == [1, 2, 4, 5, 5]


def test_a_child_that_keeps_failing_stops_the_supervisor_with_exit_1(caplog) -> None:
    caplog.set_level(logging.INFO)  # other tests reconfigure the root logger (gateway.logs.configure)
    starts: list[float] = []

    def start() -> Proc:
        starts.append(time.monotonic())
        return Proc(start_group([sys.executable, "-c", "raise SystemExit(3)"]))

    child = Child("crasher", start, f"http://127.0.0.1:{free_port()}/never")
    supervisor = Supervisor([child], Policy(backoff_initial_s=0.2, backoff_max_s=0.4, max_failures=3, tick_s=0.05))
    assert supervisor.run() == 1
    assert len(starts) == 3
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4  # 0.2 s, then 0.4 s (capped)
    assert "exit code 3; restarting in 0.2s" in caplog.text
    assert "crasher failed 3 times in a row (last: exit code 3); giving up" in caplog.text


def test_stop_ends_the_whole_process_group() -> None:
    child_code = (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    )
    handles: list[Proc] = []

    def start() -> Proc:
        handles.append(Proc(start_group([sys.executable, "-c", child_code])))
        return handles[-1]

    supervisor = Supervisor([Child("parent", start, f"http://127.0.0.1:{free_port()}/never")], Policy(tick_s=0.05))
    supervisor.children[0].step(supervisor.policy, time.monotonic())
    leader = psutil.Process(handles[0].proc.pid)
    deadline = time.monotonic() + 10
    while not leader.children() and time.monotonic() < deadline:
        time.sleep(0.05)
    grandchild = leader.children()[0]
    start_stop = time.monotonic()
    supervisor.stop()
    assert time.monotonic() - start_stop < supervisor.policy.stop_timeout_s + 1
    grandchild.wait(5)  # reaped or gone: the group was ended, not just the leader
    assert not grandchild.is_running()


def test_a_hung_child_is_killed_and_restarted(caplog) -> None:
    caplog.set_level(logging.INFO)  # other tests reconfigure the root logger (gateway.logs.configure)
    """A ready child that stops answering its health URL (SIGSTOP: hung) for hang_timeout_s is replaced."""
    import os
    import signal
    import threading

    port = free_port()
    handles: list[Proc] = []

    def start() -> Proc:
        handles.append(Proc(start_group([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"])))
        return handles[-1]

    child = Child("server", start, f"http://127.0.0.1:{port}/")
    supervisor = Supervisor(
        [child], Policy(hang_timeout_s=1.0, backoff_initial_s=0.1, health_timeout_s=0.3, tick_s=0.05)
    )
    runner = threading.Thread(target=supervisor.run, daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 20
        while not child.ready and time.monotonic() < deadline:
            time.sleep(0.05)
        assert child.ready
        os.kill(handles[0].proc.pid, signal.SIGSTOP)
        while not (len(handles) == 2 and child.ready) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(handles) == 2 and child.ready, caplog.text
        assert handles[0].proc.poll() is not None  # the hung one was killed, not left stopped
        assert "hung: no health answer" in caplog.text
    finally:
        supervisor.stopping.set()
        runner.join(10)
