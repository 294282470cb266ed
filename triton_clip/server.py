"""Embedded CPU Triton: install the real `tritonserver` from the nvidia-pytriton wheel and run it.

Only the server binary, its libraries and the Python backend are unpacked (into `$TRITON_HOME`,
default `.triton/`); the pytriton package itself is never installed, since it pins numpy<2.
Traps handled here (see shared/reference/triton-on-cpu.md): the stub must sit in the backend
folder, it finds its Python through PATH (not PYTHONPATH), and it needs the interpreter's own
libpython and the wheel's bundled libraries on LD_LIBRARY_PATH.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from triton_clip import threads

log = logging.getLogger("triton_clip.server")

PYTRITON_VERSION = "0.7.0"  # bundles Triton server 2.51.0
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_HOME = Path(os.environ.get("TRITON_HOME", ROOT / ".triton"))
_MEMBERS = ("pytriton/tritonserver/", "nvidia_pytriton.libs/")


def _paths(home: Path) -> dict[str, Path]:
    server = home / "pytriton" / "tritonserver"
    return {"binary": server / "bin" / "tritonserver", "libs": home / "nvidia_pytriton.libs",
            "backends": home / "backends", "caches": server / "caches", "wheel_backend": server / "backends" / "python",
            "stubs": server / "python_backend_stubs", "marker": home / f".installed-{PYTRITON_VERSION}"}


def install(home: Path = DEFAULT_HOME, wheel: Path | None = None) -> Path:
    """Unpack tritonserver + Python backend into `home` (idempotent). Returns the binary."""
    p = _paths(home)
    if p["marker"].exists() and p["binary"].exists():
        return p["binary"]
    home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if wheel is None:
            log.info("downloading nvidia-pytriton==%s (55 MB, server binary only)", PYTRITON_VERSION)
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--progress-bar", "on",
                            f"nvidia-pytriton=={PYTRITON_VERSION}", "-d", tmp], check=True)
            wheel = next(Path(tmp).glob("nvidia_pytriton-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.infolist():
                if member.filename.startswith(_MEMBERS):
                    target = archive.extract(member, home)
                    if member.external_attr >> 16 & 0o111:
                        os.chmod(target, 0o755)
    pyver = f"{sys.version_info.major}.{sys.version_info.minor}"
    backend = p["backends"] / "python"
    backend.mkdir(parents=True, exist_ok=True)
    for name in ("libtriton_python.so", "triton_python_backend_utils.py"):
        shutil.copy2(p["wheel_backend"] / name, backend / name)
    stub = p["stubs"] / pyver / "triton_python_backend_stub"
    if not stub.exists():
        raise RuntimeError(f"nvidia-pytriton {PYTRITON_VERSION} has no Python-backend stub for Python {pyver}")
    shutil.copy2(stub, backend / "triton_python_backend_stub")
    os.chmod(backend / "triton_python_backend_stub", 0o755)
    os.chmod(p["binary"], 0o755)
    p["marker"].write_text(PYTRITON_VERSION + "\n")
    log.info("tritonserver installed in %s", home)
    return p["binary"]


@dataclass
class TritonOptions:
    model_repository: Path
    host: str = "127.0.0.1"
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    log_verbose: int = 0
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # added to the process environment (wins over the plan)


def environment(home: Path = DEFAULT_HOME, repository: Path | None = None) -> dict[str, str]:
    """PATH/LD_LIBRARY_PATH that make the stub run this interpreter's Python and packages, plus the
    CPU thread plan's variables for the models in `repository` (triton_clip/threads.py)."""
    env = dict(os.environ)
    if repository is not None:
        env.update(threads.process_env(threads.repository_plans(repository), os.environ))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    libdirs = [sysconfig.get_config_var("LIBDIR") or "", str(_paths(home)["libs"]), env.get("LD_LIBRARY_PATH", "")]
    env["LD_LIBRARY_PATH"] = os.pathsep.join(d for d in libdirs if d)
    return env


def command(opts: TritonOptions, home: Path = DEFAULT_HOME) -> list[str]:
    p = _paths(home)
    return [
        str(p["binary"]), f"--model-repository={opts.model_repository}", f"--backend-directory={p['backends']}",
        f"--cache-directory={p['caches']}", f"--http-address={opts.host}", f"--grpc-address={opts.host}",
        f"--metrics-address={opts.host}", f"--http-port={opts.http_port}", f"--grpc-port={opts.grpc_port}",
        f"--metrics-port={opts.metrics_port}", "--allow-metrics=true", "--allow-gpu-metrics=false",
        "--allow-cpu-metrics=true", "--exit-on-error=true", "--strict-readiness=true",
        "--disable-auto-complete-config", f"--log-verbose={opts.log_verbose}",
        *threads.server_args(threads.repository_plans(opts.model_repository)), *opts.extra_args,
    ]


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host if host != "0.0.0.0" else "127.0.0.1", port)) == 0


class TritonProcess:
    """A running tritonserver started by us; stopped by PID, never by name."""

    def __init__(self, opts: TritonOptions, log_file: Path | None = None, home: Path = DEFAULT_HOME) -> None:
        for port in (opts.http_port, opts.grpc_port, opts.metrics_port):
            if _port_in_use(opts.host, port):  # else readiness checks would see someone else's server
                raise RuntimeError(f"{opts.host}:{port} is already in use; pick other Triton ports.")
        self.opts = opts
        self.log_file = log_file
        out = open(log_file, "ab") if log_file else None  # noqa: SIM115 - owned by the process lifetime
        self.env = {**environment(home, opts.model_repository), **opts.env}
        self.proc = subprocess.Popen(command(opts, home), env=self.env, stdout=out or None,
                                     stderr=subprocess.STDOUT if out else None, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def ready(self) -> bool:
        url = f"http://{self.opts.host}:{self.opts.http_port}/v2/health/ready"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own loopback server
                return response.status == 200
        except OSError:
            return False

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tritonserver exited with code {self.proc.returncode}{self._tail()}")
            if self.ready():
                return
            time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"tritonserver not ready after {timeout_s:.0f}s{self._tail()}")

    def _tail(self) -> str:
        if self.log_file and self.log_file.exists():
            return "\n--- tritonserver log (tail) ---\n" + "\n".join(self.log_file.read_text(errors="replace").splitlines()[-30:])
        return ""

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: the stubs go with it
            self.proc.wait()

    def kill(self) -> None:
        """Abrupt death (outage tests): the whole process group, stubs included."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
