"""The GPU bundle: what the GPU host lacks, in at most 64 MiB together with the working tree (`clip-bench-gpu bundle`).

The host (docs/gpu-bench.md; /work/.library/device/KINDS.md) has Python 3.12 with torch, torchvision, timm, numpy 2,
Pillow, httpx, tokenizers, regex, prometheus-client, scikit-image, matplotlib, rich and psutil, and no network. The
bundle brings the rest:

* `wheels/`: cp312 manylinux wheels of what `requirements/gateway.txt` and `requirements/export.txt` name and the host
  lacks, plus the dependencies those pull in (pinned in TRANSITIVE). tritonclient's wheel is pure Python with no
  perf_analyzer; grpcio and protobuf travel because its generated code needs grpcio>=1.81 and protobuf 6.33.
* `triton.tar.xz`: an installed TRITON_HOME (triton_clip/server.py's layout) trimmed to what the server needs: the
  binary, its bundled libraries without libpython3.13, the Python backend, the response cache, and the 3.12 stub
  already in place as `backends/python/triton_python_backend_stub`; plus, in `fallback/`, a stripped
  libpython3.12.so.1.0 (from a local python3.12) that the stub links against: the bootstrap puts that folder *last*
  on LD_LIBRARY_PATH, so the host's own libpython (its interpreter's LIBDIR, first) wins where it has one.
* `wrk.tar.xz`: the C load generator (Debian's wrk + libluajit; its libssl3 comes from the host), used by the
  gateway and mixed-traffic points (clipbench/mixed/wrk.py).
* `manifest.json`: file names, sizes, and the host packages the bundle relies on.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

LIMIT_BYTES = 64 * 1024 * 1024  # what travels with one device call: tree + carried paths
ROOT = Path(__file__).resolve().parents[2]
STUB_PYTHON = "3.12"  # the GPU host's interpreter
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64")
# From requirements/*.txt, what the host lacks (its pin is read from the requirements file).
FROM_REQUIREMENTS = ("fastapi", "uvicorn", "pydantic-settings", "tritonclient", "orjson", "pybase64", "ftfy")
FROM_EXPORT = ("open-clip-torch",)
# What those need and the host lacks, pinned to the versions the development venv runs.
TRANSITIVE = {
    "starlette": "1.10.0",
    "pydantic": "2.14.4",
    "pydantic-core": "2.50.5",
    "annotated-types": "0.8.0",
    "annotated-doc": "0.0.7",
    "typing-inspection": "0.4.5",
    "opentelemetry-api": "1.45.2",
    "python-dotenv": "1.2.4",
    "httptools": "0.9.0",
    "wcwidth": "0.9.4",
    "python-rapidjson": "1.25",
    "grpcio": "1.85.3",
    "protobuf": "6.33.6",
}
# What the bench relies on the host for (KINDS.md's list); the bootstrap reports their versions.
HOST_PACKAGES = (
    "torch",
    "torchvision",
    "timm",
    "numpy",
    "pillow",
    "httpx",
    "anyio",
    "h11",
    "click",
    "tokenizers",
    "regex",
    "prometheus-client",
    "huggingface-hub",
    "safetensors",
    "tqdm",
    "ml-dtypes",
    "urllib3",
    "packaging",
    "typing-extensions",
    "uvloop",
    "scikit-image",
    "matplotlib",
    "rich",
    "psutil",
)
WRK_DEBS = ("wrk", "libluajit-5.1-2")
PYENV_312 = Path("/root/.pyenv/versions/3.12.1/bin/python3.12")  # the dev machines' shared-library 3.12
TRITON_ARCHIVE, WRK_ARCHIVE, MANIFEST = "triton.tar.xz", "wrk.tar.xz", "manifest.json"


def _requirement_pins(*files: str) -> dict[str, str]:
    pins = {}
    for name in files:
        for line in (ROOT / "requirements" / name).read_text().splitlines():
            match = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?==([^\s#]+)", line.strip())
            if match:
                pins[match.group(1).lower()] = match.group(3)
    return pins


def wheel_pins() -> dict[str, str]:
    """name -> version of every wheel in the bundle."""
    pins = _requirement_pins("gateway.txt", "export.txt")
    missing = [n for n in FROM_REQUIREMENTS + FROM_EXPORT if n not in pins]
    if missing:
        raise RuntimeError(f"requirements/*.txt pins none of {missing}")
    return {**{n: pins[n] for n in FROM_REQUIREMENTS + FROM_EXPORT}, **TRANSITIVE}


def triton_members(home: Path) -> list[tuple[Path, str]]:
    """(file, name in the archive) for an installed TRITON_HOME: what triton_clip.server needs, the 3.12 stub."""
    server = home / "pytriton" / "tritonserver"
    stub = server / "python_backend_stubs" / STUB_PYTHON / "triton_python_backend_stub"
    if not stub.is_file():
        raise RuntimeError(f"{home} has no Python {STUB_PYTHON} stub: run scripts/install_triton.py first")
    files = [p for p in sorted((home / "nvidia_pytriton.libs").iterdir()) if not p.name.startswith("libpython3")]
    files += [server / "bin" / "tritonserver", *sorted((server / "caches").rglob("*.so"))]
    files += [home / "backends" / "python" / n for n in ("libtriton_python.so", "triton_python_backend_utils.py")]
    members = [(p, str(p.relative_to(home))) for p in files]
    members += [(stub, "backends/python/triton_python_backend_stub")]
    return members + [(m, m.name) for m in home.glob(".installed-*")]  # server.install's marker: no re-install


def libpython_member(python: str | None, tmp: Path) -> list[tuple[Path, str]]:
    """`fallback/libpython3.12.so.1.0` from a shared-library build of Python 3.12 (stripped), if one is here."""
    if not python:
        print("no python3.12 here: the bundle has no fallback libpython (the host must have its own)")
        return []
    query = "import sysconfig as s; print(s.get_config_var('LIBDIR') + '/' + s.get_config_var('INSTSONAME'))"
    lib = Path(subprocess.run([python, "-c", query], capture_output=True, text=True, check=True).stdout.strip())
    if not lib.is_file():
        print(f"{python} is not a shared-library build: no fallback libpython in the bundle")
        return []
    copy = tmp / lib.name
    shutil.copyfile(lib, copy)
    subprocess.run(["strip", "--strip-unneeded", str(copy)], check=False)
    return [(copy, f"fallback/{lib.name}")]


def _xz_tar(path: Path, members: list[tuple[Path, str]]) -> None:
    with tarfile.open(path, "w:xz", preset=6) as tar:
        for source, name in members:
            tar.add(source, arcname=name)


def _pip_download(pins: dict[str, str], dest: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet"]
    cmd += ["--python-version", STUB_PYTHON, "--implementation", "cp", "-d", str(dest)]
    cmd += [a for p in PLATFORMS for a in ("--platform", p)]
    subprocess.run([*cmd, *(f"{n}=={v}" for n, v in sorted(pins.items()))], check=True)


def _wrk(dest: Path) -> None:
    """Debian's wrk and libluajit (apt-get download), as bin/wrk + lib/ in one archive."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", *WRK_DEBS], cwd=tmp, check=True, capture_output=True)
        for deb in Path(tmp).glob("*.deb"):
            subprocess.run(["dpkg", "-x", str(deb), str(Path(tmp) / "x")], check=True)
        x = Path(tmp) / "x" / "usr"
        members = [(x / "bin" / "wrk", "bin/wrk")]
        members += [(p, f"lib/{p.name}") for p in (x / "lib" / "x86_64-linux-gnu").glob("libluajit*")]
        _xz_tar(dest, members)


def tree_bytes(root: Path = ROOT) -> int:
    """Bytes of what travels besides carried paths: tracked + untracked-not-ignored files (device README)."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout
    paths = (root / p.decode() for p in out.split(b"\0") if p)
    return sum(p.stat().st_size for p in paths if p.is_file() and not p.is_symlink())


def bundle_bytes(bundle: Path) -> int:
    return sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())


def check_size(tree: int, bundle: int, limit: int = LIMIT_BYTES) -> str:
    """A one-line verdict; raises when tree + bundle would not travel."""
    mib = 1024 * 1024
    line = f"tree {tree / mib:.1f} MiB + bundle {bundle / mib:.1f} MiB = {(tree + bundle) / mib:.1f} MiB"
    if tree + bundle > limit:
        raise RuntimeError(f"{line}: over the {limit / mib:.0f} MiB that one device call carries")
    return f"{line} (limit {limit / mib:.0f} MiB)"


def manifest(bundle: Path, pins: dict[str, str]) -> dict:
    files = {str(p.relative_to(bundle)): p.stat().st_size for p in sorted(bundle.rglob("*")) if p.is_file()}
    files.pop(MANIFEST, None)
    return {"python": STUB_PYTHON, "wheels": pins, "host_packages": list(HOST_PACKAGES), "files": files}


def build(out: Path, triton_home: Path, python312: str | None = None, keep_wheels: bool = False) -> dict:
    """Download, trim and pack everything into `out`; returns the manifest (sizes included)."""
    pins = wheel_pins()
    wheels = out / "wheels"
    if wheels.exists() and not keep_wheels:
        for old in wheels.glob("*.whl"):
            old.unlink()
    wheels.mkdir(parents=True, exist_ok=True)
    _pip_download(pins, wheels)
    with tempfile.TemporaryDirectory() as tmp:
        _xz_tar(out / TRITON_ARCHIVE, triton_members(triton_home) + libpython_member(python312, Path(tmp)))
    _wrk(out / WRK_ARCHIVE)
    data = manifest(out, pins)
    (out / MANIFEST).write_text(json.dumps(data, indent=1) + "\n")
    return data
