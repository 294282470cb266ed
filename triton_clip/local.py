"""Local process management, the one place for it: ports, readiness polls, process groups.

Used by the run command (triton_clip/run.py), the tests, the benchmarks and the soak. Everything
listens on 127.0.0.1 unless told otherwise, and a process is only ever stopped through the handle
of the one who started it. Servers run in their own session (process group), so stopping one ends
its children too: Triton's Python-backend stubs would otherwise outlive a killed tritonserver.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host if host != "0.0.0.0" else "127.0.0.1", port)) == 0


def http_ok(url: str, timeout_s: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            return r.status == 200
    except OSError:
        return False


def wait_http(url: str, timeout_s: float, proc: subprocess.Popen | None = None) -> None:
    """Poll until `url` answers 200, failing early if the process that should serve it died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} while waiting for {url}")
        if http_ok(url):
            return
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout_s}s")


def start_group(
    cmd: list[str], env: dict[str, str] | None = None, log_file: Path | None = None, cwd: Path | None = None
) -> subprocess.Popen:
    """Start `cmd` as the leader of a new session (its own process group), output to `log_file`."""
    out = open(log_file, "ab") if log_file else None  # noqa: SIM115 - owned by the process lifetime
    try:
        proc = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT if out else None, start_new_session=True
        )
        proc.own_group = True  # type: ignore[attr-defined] - remembered past the leader's exit
        return proc
    finally:
        if out is not None:
            out.close()  # the child has its own copy


def _own_group(proc: subprocess.Popen) -> bool:
    if getattr(proc, "own_group", False):
        return True
    try:
        return os.getpgid(proc.pid) == proc.pid
    except OSError:
        return False


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process and everything in its group (a leader already gone: its leftovers)."""
    if _own_group(proc):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    else:
        proc.kill()
    proc.wait()


def stop_process(proc: subprocess.Popen | None, timeout_s: float = 10.0) -> None:
    """SIGTERM, SIGKILL after `timeout_s`; then whatever is left of its process group (orphaned children)."""
    if proc is None:
        return
    own = _own_group(proc)
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            pass
    if own:
        kill_group(proc)
    elif proc.poll() is None:
        proc.kill()
        proc.wait()


def stop_all(procs: list[subprocess.Popen], timeout_s: float = 5.0) -> None:
    """SIGTERM them all at once, then stop each within the one shared deadline (a bounded shutdown)."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + timeout_s
    for proc in procs:
        stop_process(proc, max(0.0, deadline - time.monotonic()))


def exit_cause(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"
