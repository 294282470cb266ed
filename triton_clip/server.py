"""Embedded CPU Triton: install the real `tritonserver` from the nvidia-pytriton wheel and run it.

Only the server binary, its libraries and the Python backend are unpacked (into `$TRITON_HOME`,
default `.triton/`); the pytriton package itself is never installed, since it pins numpy<2.
Traps handled here (see shared/reference/triton-on-cpu.md): the stub must sit in the backend
folder, it finds its Python through PATH (not PYTHONPATH), and it needs the interpreter's own
libpython and the wheel's bundled libraries on LD_LIBRARY_PATH.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from triton_clip.local import exit_cause, http_ok, kill_group, port_in_use, start_group, stop_process, wait_http
from triton_clip import threads

log = logging.getLogger("triton_clip.server")

PYTRITON_VERSION = "0.7.0"  # bundles Triton server 2.51.0
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_HOME = Path(os.environ.get("TRITON_HOME", ROOT / ".triton"))
_MEMBERS = ("pytriton/tritonserver/", "nvidia_pytriton.libs/")


def _paths(home: Path) -> dict[str, Path]:
    server = home / "pytriton" / "tritonserver"
    return {
        "binary": server / "bin" / "tritonserver",
        "libs": home / "nvidia_pytriton.libs",
        "backends": home / "backends",
        "caches": server / "caches",
        "wheel_backend": server / "backends" / "python",
        "stubs": server / "python_backend_stubs",
        "marker": home / f".installed-{PYTRITON_VERSION}",
    }


def install(home: Path = DEFAULT_HOME, wheel: Path | None = None) -> Path:
    """Unpack tritonserver + Python backend into `home` (idempotent). Returns the binary."""
    p = _paths(home)
    if p["marker"].exists() and p["binary"].exists():
        return p["binary"]
    home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if wheel is None:
            log.info("downloading nvidia-pytriton==%s (55 MB, server binary only)", PYTRITON_VERSION)
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--quiet",
                    "--progress-bar",
                    "on",
                    f"nvidia-pytriton=={PYTRITON_VERSION}",
                    "-d",
                    tmp,
                ],
                check=True,
            )
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

    @property
    def local_host(self) -> str:
        """Where a client on this machine reaches it (0.0.0.0 is not an address to connect to)."""
        return "127.0.0.1" if self.host == "0.0.0.0" else self.host

    @property
    def ready_url(self) -> str:
        return f"http://{self.local_host}:{self.http_port}/v2/health/ready"

    @property
    def grpc_url(self) -> str:
        return f"{self.local_host}:{self.grpc_port}"


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
        str(p["binary"]),
        f"--model-repository={opts.model_repository}",
        f"--backend-directory={p['backends']}",
        f"--cache-directory={p['caches']}",
        f"--http-address={opts.host}",
        f"--grpc-address={opts.host}",
        f"--metrics-address={opts.host}",
        f"--http-port={opts.http_port}",
        f"--grpc-port={opts.grpc_port}",
        f"--metrics-port={opts.metrics_port}",
        "--allow-metrics=true",
        "--allow-gpu-metrics=false",
        "--allow-cpu-metrics=true",
        "--exit-on-error=true",
        "--strict-readiness=true",
        "--disable-auto-complete-config",
        f"--log-verbose={opts.log_verbose}",
        *threads.server_args(threads.repository_plans(opts.model_repository)),
        *opts.extra_args,
    ]


class TritonProcess:
    """A running tritonserver started by us, in its own process group; stopped by PID, never by name."""

    def __init__(self, opts: TritonOptions, log_file: Path | None = None, home: Path = DEFAULT_HOME) -> None:
        for port in (opts.http_port, opts.grpc_port, opts.metrics_port):
            if port_in_use(opts.host, port):  # else readiness checks would see someone else's server
                raise RuntimeError(f"{opts.host}:{port} is already in use; pick other Triton ports.")
        self.opts = opts
        self.log_file = log_file
        self._log_start = log_file.stat().st_size if log_file and log_file.exists() else 0  # this run's lines only
        self.env = {**environment(home, opts.model_repository), **opts.env}
        self.proc = start_group(command(opts, home), env=self.env, log_file=log_file)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def ready_url(self) -> str:
        return self.opts.ready_url

    def ready(self, timeout_s: float = 1.0) -> bool:
        return http_ok(self.ready_url, timeout_s)

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        try:
            wait_http(self.ready_url, timeout_s, self.proc)
        except RuntimeError:
            self.kill()  # its stubs too
            raise RuntimeError(f"tritonserver {exit_cause(self.proc.returncode)}{self.tail()}") from None
        except TimeoutError:
            self.stop()
            raise TimeoutError(f"tritonserver not ready after {timeout_s:.0f}s{self.tail()}") from None

    def tail(self, lines: int = 30, errors_only: bool = False) -> str:
        """The end of this run's log; `errors_only`: its error lines (E...) and the final one (the cause)."""
        if not (self.log_file and self.log_file.exists()):
            return ""
        with open(self.log_file, "rb") as f:
            f.seek(self._log_start)
            text = f.read().decode(errors="replace").splitlines()
        if errors_only:
            text = [line for line in text if line[:1] == "E" and line[1:5].isdigit()] + text[-1:]
        return "\n--- tritonserver log ---\n" + "\n".join(text[-lines:])

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM (Triton unloads its models), SIGKILL of the whole group after `timeout_s`."""
        stop_process(self.proc, timeout_s)

    def kill(self) -> None:
        """Abrupt death (outage tests, crash clean-up): the whole process group, stubs included."""
        kill_group(self.proc)


def _interrupt(signum: int, _frame: object) -> None:
    # Stopping the server inside the handler would deadlock: the handler runs inside `proc.wait()`, which
    # holds the Popen's wait lock that stopping needs. Raised here, the `finally` below stops it instead.
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """`clip-triton`: run the embedded CPU tritonserver on a model repository until Ctrl-C / SIGTERM."""
    defaults = TritonOptions(Path("model_repository"))
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--model-repository", type=Path, default=defaults.model_repository)
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--http-port", type=int, default=defaults.http_port)
    parser.add_argument("--grpc-port", type=int, default=defaults.grpc_port)
    parser.add_argument("--metrics-port", type=int, default=defaults.metrics_port)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for readiness")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    install(DEFAULT_HOME)
    opts = TritonOptions(args.model_repository.resolve(), args.host, args.http_port, args.grpc_port, args.metrics_port)
    server = TritonProcess(opts)
    signal.signal(signal.SIGTERM, _interrupt)  # stopped in `finally`, not inside the handler (see _interrupt)
    try:
        server.wait_ready(args.timeout)
        log.info(
            "tritonserver ready: http %s:%d grpc %s:%d (pid %d)",
            args.host,
            args.http_port,
            args.host,
            args.grpc_port,
            server.pid,
        )
        return server.proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()
