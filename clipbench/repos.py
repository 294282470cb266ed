"""Model repositories for benchmarks: each version exported once, random weights (speed equals the real ones)."""

from __future__ import annotations

from pathlib import Path

from clipbench.console import console

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
TINY_VERSION = "clip-tiny"
TINY_CONFIG = ROOT / "tests" / "fixtures" / "clip-tiny.json"  # the test suite's tiny CLIP: the model is negligible


def ensure_exported(
    versions: str | list[str],
    repo: Path,
    model_configs: list[Path] | tuple[Path, ...] = (),
    cpu_threads: int | None = None,
) -> Path:
    """Export the versions missing from `repo` through the exporter's own CLI; refresh the runner of the others."""
    from triton_clip.cli import main as export_main
    from triton_clip.export import is_exported, refresh_runner

    names = versions.split(",") if isinstance(versions, str) else list(versions)
    configs = list(model_configs) + (
        [TINY_CONFIG] if TINY_VERSION in names and TINY_CONFIG not in model_configs else []
    )
    missing = [v for v in names if not is_exported(v, repo, "cpu")]
    for version in names:
        if version not in missing:
            refresh_runner(version, repo)  # the runner of this checkout, not of the export's
    if missing:
        console.print(f"exporting {', '.join(missing)} (random weights) into {repo}")
        argv = [
            "--versions",
            ",".join(missing),
            "--pretrained",
            "none",
            "--repository",
            str(repo),
            "--target",
            "cpu",
            *[a for c in configs for a in ("--model-config", str(c))],
            *(["--cpu-threads", str(cpu_threads)] if cpu_threads else []),
        ]
        if export_main(argv):
            raise RuntimeError(f"export of {', '.join(missing)} failed (see above)")
    return repo
