"""The run's clock: phase budgets against one deadline, progress lines with elapsed seconds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Clock:
    """`with clock.phase(name):` runs a phase; inside it `clock.left()` is what its budget still allows."""

    def __init__(self, budgets: dict[str, float], deadline_s: float, already_s: float = 0.0) -> None:
        self.start = time.monotonic() - already_s  # the bootstrap's seconds count too
        self.budgets, self.deadline_s = budgets, deadline_s
        self.current: str | None = None
        self.phase_start = self.start
        self.spent: dict[str, float] = {}
        self.skipped: list[str] = []

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def log(self, message: str) -> None:
        print(f"[gpu-bench {self.elapsed():6.1f}s] {message}", flush=True)

    def left(self) -> float:
        """Seconds the current phase may still take: its budget, and never past the deadline."""
        phase = self.budgets.get(self.current or "", 0.0) - (time.monotonic() - self.phase_start)
        return min(phase, self.deadline_s - self.elapsed())

    def allows(self, seconds: float, what: str) -> bool:
        """True if `seconds` more fit in the current phase; else the item is recorded as skipped."""
        if self.left() >= seconds:
            return True
        self.skipped.append(f"{self.current}: {what} (budget)")
        self.log(f"skip {what}: {self.left():.0f}s left in {self.current}")
        return False

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.current, self.phase_start = name, time.monotonic()
        self.log(f"{name} (budget {self.budgets.get(name, 0):.0f}s)")
        try:
            yield
        finally:
            self.spent[name] = round(time.monotonic() - self.phase_start, 1)
            self.log(f"{name} done in {self.spent[name]:.1f}s")
            self.current = None
