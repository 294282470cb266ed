"""Make a bare GPU host able to run the benchmark from the bundle; standard library only.

`clip-bench-gpu run --bundle .gpubundle` (or `python3 -m clipbench.gpu run ...` with the host's plain python3):

1. the bundle's wheels go into `<work>/site` (`pip install --no-index --no-deps --target`: no network needed);
2. tritonserver is unpacked into `<work>/triton` (TRITON_HOME; the 3.12 stub is already in its backend folder),
   wrk into `<work>/tools` with a `<work>/bin/wrk` wrapper that sets its library path;
3. a venv `<work>/venv` is made from the host interpreter, with one `.pth` file that adds `<work>/site` and the
   host interpreter's own site-packages (torch, numpy, ...). Why a venv and not PYTHONPATH: the Python-backend
   stub ignores PYTHONPATH and finds its Python through `python3` on PATH (shared/reference/triton-on-cpu.md);
   triton_clip/server.py puts the running interpreter's folder first on the stub's PATH, so running the bench
   under `<work>/venv/bin/python3` gives the stubs the same packages as the bench and the gateway. (`venv
   --system-site-packages` would not do: on a host whose python3 is itself a venv, it adds the *base*
   interpreter's site-packages, not the one that holds torch.)
4. the benchmark then runs in that venv (`python -m clipbench.gpu bench ...`).
"""

from __future__ import annotations

import ctypes.util
import os
import site
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

from clipbench.gpu import bundle as bundle_mod

PTH = "clip_gpu_bundle.pth"


def install_wheels(bundle: Path, target: Path, extra: Path | None = None) -> None:
    wheels = sorted((bundle / "wheels").glob("*.whl")) + (sorted(extra.glob("*.whl")) if extra else [])
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile"]
    cmd += ["--no-cache-dir", "--upgrade", "--target", str(target)]
    subprocess.run([*cmd, *map(str, wheels)], check=True)


def unpack(archive: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="tar")
    return dest


def wrk_wrapper(tools: Path, bin_dir: Path) -> Path:
    """`bin/wrk` that finds the bundled libluajit (and nothing else changes for other programs)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    wrapper = bin_dir / "wrk"
    libs = f'LD_LIBRARY_PATH="{tools}/lib${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}"'
    wrapper.write_text(f'#!/bin/sh\n{libs} exec "{tools}/bin/wrk" "$@"\n')
    wrapper.chmod(0o755)
    return bin_dir


def make_venv(venv: Path, site_dir: Path) -> Path:
    """A venv whose site-packages add the bundle's packages, then the host interpreter's (see the docstring)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--clear", str(venv)], check=True)
    python = venv / "bin" / "python3"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    write_pth(Path(purelib), [str(site_dir), *host_site_dirs()])
    return python


def host_site_dirs() -> list[str]:
    """Where the host interpreter finds its packages (its venv's or the distribution's, user site included)."""
    found = [*site.getsitepackages(), *(p for p in sys.path if p.endswith(("site-packages", "dist-packages")))]
    return [d for d in dict.fromkeys(found) if Path(d).is_dir()]


def write_pth(site_packages: Path, dirs: list[str]) -> None:
    """One .pth that adds `dirs` in order (their own .pth files too): the stub honours it, PYTHONPATH it ignores."""
    line = "import site; " + "; ".join(f"site.addsitedir({d!r})" for d in dirs)
    (site_packages / PTH).write_text(line + "\n")


def prepared_python(work: Path, site_dir: Path) -> Path:
    """The venv; if the host cannot make one, the host interpreter itself with the bundle added to its site-packages
    (a throwaway machine: the .pth goes where that interpreter, and so the stub running it, reads it)."""
    try:
        return make_venv(work / "venv", site_dir)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"no venv ({exc}); adding {site_dir} to {sys.executable}'s own site-packages", flush=True)
        write_pth(Path(sysconfig.get_path("purelib")), [str(site_dir)])
        return Path(sys.executable)


def host_libpython() -> str | None:
    """The host interpreter's shared libpython, if it has one (in its LIBDIR or where the loader looks)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    own = Path(sysconfig.get_config_var("LIBDIR") or "/nonexistent", f"libpython{version}.so.1.0")
    return str(own) if own.is_file() else ctypes.util.find_library(f"python{version}")


def install(bundle: Path, work: Path, tools_only: bool = False, extra_wheels: Path | None = None) -> dict[str, str]:
    """Steps 1-3; returns the environment and interpreter (`python`) the benchmark runs with."""
    env = dict(os.environ)
    tools = unpack(bundle / bundle_mod.WRK_ARCHIVE, work / "tools")
    env["PATH"] = f"{wrk_wrapper(tools, work / 'bin')}{os.pathsep}{env.get('PATH', '')}"
    if tools_only:
        return {**env, "python": sys.executable}
    install_wheels(bundle, work / "site", extra_wheels)
    home = unpack(bundle / bundle_mod.TRITON_ARCHIVE, work / "triton")
    env["TRITON_HOME"] = str(home)
    if not host_libpython():  # the stub links libpython3.12.so.1.0; the bundle's copy only where the host has none
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [env.get("LD_LIBRARY_PATH"), str(home / "fallback")]))
    python = prepared_python(work, work / "site")
    env["PATH"] = f"{python.parent}{os.pathsep}{env['PATH']}"
    return {**env, "python": str(python)}


def smoke(env: dict[str, str], modules: tuple[str, ...]) -> str:
    """Import `modules` in the prepared interpreter; the versions of the host packages the bundle relies on."""
    code = (
        "import importlib, importlib.metadata as md, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"names = {bundle_mod.HOST_PACKAGES!r}\n"
        "def v(n):\n"
        "    try: return md.version(n)\n"
        "    except md.PackageNotFoundError: return 'MISSING'\n"
        "print('python', sys.version.split()[0], '|', ', '.join(f'{n} {v(n)}' for n in names))\n"
    )
    python = env["python"]
    run_env = {k: v for k, v in env.items() if k != "python"}
    done = subprocess.run([python, "-c", code], env=run_env, cwd=bundle_mod.ROOT, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"imports failed in {python}:\n{done.stderr[-3000:]}")
    return done.stdout.strip()
