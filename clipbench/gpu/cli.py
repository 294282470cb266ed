"""clip-bench-gpu (`python -m clipbench.gpu`): build the bundle, check its size, bootstrap a bare GPU host, run.

    clip-bench-gpu bundle --out .gpubundle                       # here: wheels + tritonserver + wrk, size checked
    clip-bench-gpu size --bundle .gpubundle                      # tree + bundle <= 64 MiB?
    python3 -m clipbench.gpu run --bundle .gpubundle --out $OUT  # on the GPU host: bootstrap, then the benchmark
    clip-bench-gpu run --device cpu --out results/gpu-dry        # here: the whole pipeline on CPU, tiny points
    python3 -m clipbench.gpu install --bundle .gpubundle --work /tmp/x --imports gateway.main  # bootstrap only

Standard library only until the benchmark starts (the GPU host has none of our packages before the bootstrap).
docs/gpu-bench.md has the device-tool command, what is measured and the budget.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from clipbench.gpu import bundle

DEFAULT_BUNDLE = bundle.ROOT / ".gpubundle"
DEFAULT_WORK = Path("/tmp/clip-gpu")
BENCH_IMPORTS = ("gateway.main", "gateway.serve", "tritonclient.grpc.aio", "torch", "open_clip", "clipbench.gpu.bench")


def _python312() -> str | None:
    """The dev machines' pyenv build first (a pyenv shim on PATH may not run), else python3.12 on PATH."""
    return str(bundle.PYENV_312) if bundle.PYENV_312.exists() else shutil.which("python3.12")


def _default_out() -> Path:
    if os.environ.get("OUT"):
        return Path(os.environ["OUT"])
    return bundle.ROOT / "results" / f"gpu-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="clip-bench-gpu", description=__doc__, formatter_class=raw)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bundle", help="build the bundle (needs the network and an installed TRITON_HOME)")
    b.add_argument("--out", type=Path, default=DEFAULT_BUNDLE)
    b.add_argument("--triton-home", type=Path, default=Path(os.environ.get("TRITON_HOME", bundle.ROOT / ".triton")))
    b.add_argument("--python312", default=_python312(), help="a shared-library Python 3.12 (its libpython travels)")
    s = sub.add_parser("size", help="check that the working tree + the bundle travel (64 MiB)")
    s.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    i = sub.add_parser("install", help="bootstrap only: install the bundle, then import --imports in it")
    i.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    i.add_argument("--work", type=Path, default=DEFAULT_WORK)
    i.add_argument("--extra-wheels", type=Path, default=None, help="more wheels (stand-ins for the host's packages)")
    i.add_argument("--imports", default=",".join(BENCH_IMPORTS))
    for name in ("run", "bench"):  # bench: the benchmark in this interpreter (what run starts after the bootstrap)
        r = sub.add_parser(name, help="bootstrap (with --bundle) and run the benchmark" if name == "run" else None)
        r.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="cpu: the dry run (tiny plan)")
        r.add_argument("--bundle", type=Path, default=None, help="install from this bundle first (GPU host)")
        r.add_argument("--out", type=Path, default=None, help="report folder (default $OUT, else results/gpu-<UTC>)")
        r.add_argument("--work", type=Path, default=DEFAULT_WORK, help="scratch: site, venv, Triton, repositories")
        r.add_argument("--point-seconds", type=float, default=None, help="override the plan's point length")
        r.add_argument("--workers", type=int, default=None, help="override the plan's many-workers gateway count")
        r.add_argument("--bootstrap-seconds", type=float, default=0.0, help=argparse.SUPPRESS)
        r.add_argument("--bootstrap-info", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if getattr(args, "out", None) is None and args.command in ("run", "bench"):
        args.out = _default_out()
    return args


def _size(bundle_dir: Path) -> int:
    print(bundle.check_size(bundle.tree_bytes(), bundle.bundle_bytes(bundle_dir)))
    return 0


def _build(args: argparse.Namespace) -> int:
    data = bundle.build(args.out, args.triton_home, args.python312)
    for name, size in data["files"].items():
        if not name.startswith("wheels/") or size > 1_000_000:
            print(f"{size / 1e6:8.2f} MB  {name}")
    wheels = sum(v for k, v in data["files"].items() if k.startswith("wheels/"))
    print(f"{wheels / 1e6:8.2f} MB  wheels/ ({len(data['wheels'])} wheels)")
    return _size(args.out)


def _bench_argv(args: argparse.Namespace, seconds: float, info: str) -> list[str]:
    argv = ["bench", "--device", args.device, "--out", str(args.out), "--work", str(args.work)]
    argv += ["--point-seconds", str(args.point_seconds)] if args.point_seconds else []
    argv += ["--workers", str(args.workers)] if args.workers else []
    return [*argv, "--bootstrap-seconds", f"{seconds:.1f}", "--bootstrap-info", info]


def _run(args: argparse.Namespace) -> int:
    """With --bundle: bootstrap, then the benchmark in the prepared interpreter; else the benchmark here."""
    if args.bundle is None:
        return _bench(args)
    from clipbench.gpu import bootstrap

    start = time.monotonic()
    print(f"[gpu-bench    0.0s] bootstrap from {args.bundle} into {args.work}", flush=True)
    env = bootstrap.install(args.bundle, args.work, tools_only=args.device == "cpu")
    info = bootstrap.smoke(env, BENCH_IMPORTS if args.device == "cuda" else ())
    print(f"[gpu-bench {time.monotonic() - start:6.1f}s] bootstrap done: {info}", flush=True)
    python = env.pop("python")
    cmd = [python, "-m", "clipbench.gpu", *_bench_argv(args, time.monotonic() - start, info)]
    return subprocess.run(cmd, env={**env, "PYTHONUNBUFFERED": "1"}, cwd=bundle.ROOT).returncode


def _bench(args: argparse.Namespace) -> int:
    from clipbench.gpu.bench import run
    from clipbench.gpu.plan import plan_for

    plan = plan_for(args.device, args.point_seconds, args.workers)
    result = run(plan, args.out, args.work / "run", args.bootstrap_seconds, args.bootstrap_info)
    return 1 if result["errors"] else 0


def _install(args: argparse.Namespace) -> int:
    from clipbench.gpu import bootstrap

    env = bootstrap.install(args.bundle, args.work, extra_wheels=args.extra_wheels)
    print(bootstrap.smoke(env, tuple(m for m in args.imports.split(",") if m)))
    print(json.dumps({"python": env["python"], "TRITON_HOME": env["TRITON_HOME"]}))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    commands = {"bundle": _build, "size": lambda a: _size(a.bundle), "install": _install, "run": _run, "bench": _bench}
    return commands[args.command](args)
