"""A bounded, threaded mixed load for the resilience tests: every answer (or transport error) is recorded."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Self

import httpx

from tests.integration.payloads import image, png_bytes

_PNG = png_bytes(24, 24)
BODIES = (
    ("/clip/embed_text", lambda i: {"text": f"a photo of thing {i}"}),
    ("/clip/embed_image", lambda i: {"image": image(_PNG)}),
    ("/clip/compare", lambda i: {"subject": image(_PNG), "prompt": ["a dog", f"a cat {i % 7}"]}),
    ("/clip/embed_text", lambda i: {"text": [f"prompt {i}", "a photo of a dog"]}),
)


@dataclass
class Sample:
    at: float  # monotonic send time
    elapsed: float
    route: str
    status: int  # 0 = transport error (refused, reset, timeout)
    error: str = ""


@dataclass
class Load:
    """`concurrency` threads sending the mixed load to `base_url` until stop() (or `max_requests`)."""

    base_url: str
    concurrency: int = 4
    timeout_s: float = 15.0
    max_requests: int = 20_000
    keepalive: bool = True
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._count = itertools.count()
        self._threads = [threading.Thread(target=self._worker, daemon=True) for _ in range(self.concurrency)]

    def _worker(self) -> None:
        headers = {} if self.keepalive else {"connection": "close"}
        with httpx.Client(base_url=self.base_url, timeout=self.timeout_s, headers=headers) as client:
            while not self._stop.is_set():
                i = next(self._count)
                if i >= self.max_requests:
                    return
                route, body = BODIES[i % len(BODIES)]
                start = time.monotonic()
                try:
                    status, error = client.post(route, json=body(i)).status_code, ""
                except httpx.HTTPError as exc:
                    status, error = 0, type(exc).__name__
                self.samples.append(Sample(start, time.monotonic() - start, route, status, error))
                if status != 200:
                    time.sleep(0.05)  # a client backing off a little, as Retry-After asks

    def __enter__(self) -> Self:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout_s + 5)

    def statuses(self) -> set[int]:
        return {s.status for s in self.samples}

    def errors(self) -> list[Sample]:
        return [s for s in self.samples if s.status == 0]


def wait_until(check, timeout_s: float, every_s: float = 0.2) -> float:
    """Poll `check()` until true; the monotonic time it first was (TimeoutError after `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(every_s)
    raise TimeoutError(f"not true after {timeout_s}s")
