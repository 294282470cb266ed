"""Supervision of the embedded service: Triton and the gateway restarted when they die or hang.

One loop watches both processes. A child that exits (crash, OOM kill, `kill -9`) or, once ready,
stops answering its health URL for `hang_timeout_s` is ended with its whole process group (Triton's
Python-backend stubs included) and started again after a capped exponential backoff; the exit cause
is logged. Meanwhile the gateway keeps answering (503 + Retry-After while Triton is away). A child
that fails `max_failures` times in a row without becoming ready (say, a model that cannot load)
stops the service with its last log lines, instead of looping forever.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from triton_clip.local import exit_cause, http_ok, kill_group, stop_all

log = logging.getLogger("triton_clip.supervise")


class Handle(Protocol):
    proc: subprocess.Popen


@dataclass
class Policy:
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    max_failures: int = 5  # consecutive failures (no readiness in between) before giving up
    startup_timeout_s: float = 600.0
    hang_timeout_s: float = 30.0  # a ready child not answering its health URL this long is restarted
    health_timeout_s: float = 1.0
    tick_s: float = 0.5
    stop_timeout_s: float = 4.0  # Triton's own graceful unload takes ~7 s here: not waited for

    def backoff(self, failures: int) -> float:
        return min(self.backoff_max_s, self.backoff_initial_s * 2 ** max(failures - 1, 0))


class GaveUp(RuntimeError):
    """A child failed `max_failures` times in a row."""


class Child:
    """One supervised server: how to start it, where its health answers, and its restart state."""

    def __init__(
        self, name: str, start: Callable[[], Handle], health_url: str, describe: Callable[[Handle], str] = lambda _h: ""
    ) -> None:
        self.name, self.start_fn, self.health_url, self.describe = name, start, health_url, describe
        self.handle: Handle | None = None
        self.failures = 0
        self.restarts = 0
        self.ready = False
        self.next_start = 0.0
        self.started_at = 0.0
        self.unhealthy_since: float | None = None

    def step(self, policy: Policy, now: float) -> None:
        if self.handle is None:
            if now >= self.next_start:
                self._start(now)
            return
        code = self.handle.proc.poll()
        if code is not None:
            self._failed(policy, now, exit_cause(code))
            return
        healthy = http_ok(self.health_url, policy.health_timeout_s)
        if not self.ready:
            if healthy:
                self.ready, self.failures = True, 0
                log.info("%s (pid %d) ready after %.1fs", self.name, self.handle.proc.pid, now - self.started_at)
            elif now - self.started_at > policy.startup_timeout_s:
                self._failed(policy, now, f"not ready after {policy.startup_timeout_s:.0f}s")
            return
        if healthy:
            if self.unhealthy_since is not None:
                log.info("%s answers its health check again", self.name)
            self.unhealthy_since = None
        elif self.unhealthy_since is None:
            self.unhealthy_since = now
            log.warning("%s (pid %d) does not answer %s", self.name, self.handle.proc.pid, self.health_url)
        elif now - self.unhealthy_since > policy.hang_timeout_s:
            self._failed(policy, now, f"hung: no health answer for {now - self.unhealthy_since:.0f}s")

    def _start(self, now: float) -> None:
        self.ready, self.unhealthy_since, self.started_at = False, None, now
        try:
            self.handle = self.start_fn()
        except (OSError, RuntimeError) as exc:  # ports still taken, binary missing...
            self.handle = None
            self.failures += 1
            self.next_start = now + 1.0
            log.error("%s could not start: %s", self.name, exc)
            return
        log.info("%s started (pid %d)", self.name, self.handle.proc.pid)

    def _failed(self, policy: Policy, now: float, cause: str) -> None:
        assert self.handle is not None
        kill_group(self.handle.proc)  # the whole group: nothing of it is left behind
        self.failures += 1
        detail = self.describe(self.handle)
        self.handle, self.ready = None, False
        if self.failures >= policy.max_failures:
            raise GaveUp(f"{self.name} failed {self.failures} times in a row (last: {cause}); giving up.{detail}")
        delay = policy.backoff(self.failures)
        self.next_start = now + delay
        self.restarts += 1
        log.warning(
            "%s %s; restarting in %.1fs (failure %d of %d allowed in a row)%s",
            self.name,
            cause,
            delay,
            self.failures,
            policy.max_failures,
            detail,
        )


class Supervisor:
    """Runs the children in order (each starts once the previous one was ready once) until told to stop."""

    def __init__(self, children: list[Child], policy: Policy | None = None) -> None:
        self.children = children
        self.policy = policy or Policy()
        self.stopping = threading.Event()

    def install_signal_handlers(self) -> None:
        def on_signal(signum: int, _frame: object) -> None:
            log.info("%s received: stopping", signal.Signals(signum).name)
            self.stopping.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, on_signal)

    def run(self) -> int:
        """0 when stopped by a signal, 1 when a child failed too often."""
        try:
            while not self.stopping.is_set():
                now = time.monotonic()
                for i, child in enumerate(self.children):
                    if i and child.handle is None and child.restarts == 0 and not self.children[i - 1].ready:
                        break  # first start waits for its predecessor (the gateway for Triton)
                    child.step(self.policy, now)
                self.stopping.wait(self.policy.tick_s)
            return 0
        except GaveUp as exc:
            log.error("%s", exc)
            return 1
        finally:
            self.stop()

    def stop(self) -> None:
        """Everything at once, SIGKILL of the process groups after `stop_timeout_s`."""
        procs = [c.handle.proc for c in reversed(self.children) if c.handle is not None]
        stop_all(procs, self.policy.stop_timeout_s)
        for child in self.children:
            child.handle = None
