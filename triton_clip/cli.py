"""`scripts/export.py`: export CLIP versions into a Triton model repository."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from triton_clip.compat import DEFAULT_TRITON_IMAGE
from triton_clip.threads import PLAN_ENV, PLANS, default_cores, selected_plan
from triton_clip.versions import DEFAULT_PRETRAINED, DEFAULT_VERSION, ROBOFLOW_VERSIONS

DEFAULT_REPOSITORY = Path(__file__).resolve().parent.parent / "model_repository"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/export.py",
        description="Export open_clip CLIP versions as TorchScript towers into a Triton model repository.",
        epilog=f"Roboflow version ids: {', '.join(ROBOFLOW_VERSIONS)}; any open_clip model name also works.",
    )
    _model_arguments(parser.add_argument_group("what to export"))
    _repository_arguments(parser.add_argument_group("model repository"))
    _cpu_arguments(parser.add_argument_group("cpu target"))
    _gpu_arguments(parser.add_argument_group("gpu target"))
    return parser.parse_args(argv)


def _model_arguments(group: argparse._ArgumentGroup) -> None:
    """Versions, their weights and their activation."""
    group.add_argument(
        "--versions",
        default=os.environ.get("CLIP_VERSIONS", DEFAULT_VERSION),
        help="comma-separated version ids (env CLIP_VERSIONS, default %(default)s)",
    )
    weights = group.add_mutually_exclusive_group()
    weights.add_argument(
        "--pretrained",
        default=os.environ.get("CLIP_PRETRAINED", DEFAULT_PRETRAINED),
        help="open_clip pretrained tag, 'none' for random weights, or a checkpoint path "
        "(env CLIP_PRETRAINED, default %(default)s)",
    )
    weights.add_argument("--checkpoint", type=Path, help="local checkpoint file (same as --pretrained PATH)")
    group.add_argument(
        "--model-config",
        type=Path,
        action="append",
        default=[],
        help="extra open_clip model config JSON (its file stem becomes a model name)",
    )
    group.add_argument(
        "--quick-gelu",
        choices=["auto", "on", "off"],
        default=os.environ.get("CLIP_QUICK_GELU", "auto"),
        help="activation for a checkpoint file or random weights (a pretrained tag always uses the "
        "one it was trained with); auto: on for the Roboflow ids (OpenAI architectures), the "
        "model config's own setting for other names (env CLIP_QUICK_GELU, default %(default)s)",
    )


def _repository_arguments(group: argparse._ArgumentGroup) -> None:
    """The model repository, the backend the towers are written for, and which versions it keeps."""
    group.add_argument(
        "--target",
        choices=["cpu", "gpu"],
        default=os.environ.get("CLIP_TARGET", "cpu"),
        help="cpu: Python backend (embedded Triton); gpu: pytorch_libtorch on KIND_GPU",
    )
    group.add_argument(
        "--repository",
        type=Path,
        default=Path(os.environ.get("MODEL_REPOSITORY", DEFAULT_REPOSITORY)),
        help="model repository folder (env MODEL_REPOSITORY, default %(default)s)",
    )
    group.add_argument("--force", action="store_true", help="re-export versions that are up to date")
    group.add_argument(
        "--keep-unlisted",
        action="store_true",
        help="keep exported versions that are not in --versions (default: remove them)",
    )
    group.add_argument(
        "--encoded-images",
        action=argparse.BooleanOptionalAction,
        default={"1": True, "0": False}.get(os.environ.get("CLIP_ENCODED_IMAGES", "")),
        help="also export each version's bytes -> preprocessing -> image tower ensemble "
        "(GATEWAY_IMAGE_TRANSPORT=encoded; docs/encoded-transport.md). Default: on for cpu, "
        "off for gpu, whose Triton image then needs torch (docker/triton-gpu-decode.Dockerfile) "
        "(env CLIP_ENCODED_IMAGES=1|0)",
    )


def _cpu_arguments(group: argparse._ArgumentGroup) -> None:
    """The CPU thread plan (triton_clip/threads.py) written into the cpu target's configs."""
    group.add_argument(
        "--cpu-threads",
        type=int,
        default=default_cores(),
        help="cores the CPU thread plan is sized for (default: the cores this process may use)",
    )
    group.add_argument(
        "--cpu-plan",
        choices=PLANS,
        default=selected_plan(),
        help=f"CPU thread plan across all served towers, see triton_clip/threads.py "
        f"(env {PLAN_ENV}, default %(default)s)",
    )


def _gpu_arguments(group: argparse._ArgumentGroup) -> None:
    """Precision, sizing and the torch/libtorch check of the gpu target."""
    group.add_argument("--fp16", action="store_true", help="half-precision weights (gpu target)")
    group.add_argument(
        "--gpu-memory-gb",
        type=float,
        default=float(os.environ.get("CLIP_GPU_MEMORY_GB", "16")),
        help="gpu target: memory of the GPU Triton runs on, shared by all versions; sizes each "
        "model's max batch and instances (env CLIP_GPU_MEMORY_GB, default %(default)s)",
    )
    group.add_argument(
        "--triton-image",
        default=os.environ.get("TRITON_IMAGE", DEFAULT_TRITON_IMAGE),
        help="gpu target: the Triton image that will load the towers; its libtorch must not be "
        "older than this torch (env TRITON_IMAGE, default %(default)s)",
    )
    group.add_argument(
        "--allow-newer-torch",
        action="store_true",
        help="gpu target: export even if this torch is newer than the Triton image's libtorch",
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from triton_clip.towers import ExportError

    if args.model_config:
        import open_clip

        for path in args.model_config:
            open_clip.add_model_config(path)
    pretrained = str(args.checkpoint) if args.checkpoint else args.pretrained
    versions = [v.strip() for v in args.versions.split(",") if v.strip()]
    try:
        _check_target(args)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failures = 0
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=False) as bar:
        if not args.keep_unlisted:
            _prune(args.repository, versions, bar.console.print)
        overall = bar.add_task("export", total=len(versions))
        for version in versions:
            request = _request(args, version, pretrained, len(versions))
            failures += not _export_one(request, args, bar)
            bar.advance(overall)
    return 1 if failures else 0


def _check_target(args: argparse.Namespace) -> None:
    import torch

    from triton_clip.compat import check_torch

    check_torch(args.target, torch.__version__, args.triton_image, args.allow_newer_torch)


def _prune(repository: Path, versions: list[str], say) -> None:  # noqa: ANN001 - a print function
    from triton_clip.provenance import prune

    for version in prune(repository, versions):
        say(f"[yellow]-[/] {version}: removed from {repository} (not in the versions to serve)")


def _request(args: argparse.Namespace, version: str, pretrained: str, n_versions: int):  # noqa: ANN202
    from triton_clip.export import ExportRequest

    return ExportRequest(
        version,
        pretrained,
        args.target,
        args.fp16,
        args.cpu_threads,
        args.cpu_plan,
        quick_gelu=args.quick_gelu,
        gpu_memory_gb=args.gpu_memory_gb,
        versions_sharing=n_versions,
        encoded_images=args.encoded_images,
    )


def _refresh(request, repository: Path) -> str:  # noqa: ANN001 - an export.ExportRequest
    """Bring an up-to-date export's runner and CPU thread plan to this code and the asked plan, in place.

    The plan (--cpu-plan / CLIP_CPU_PLAN, sized for --cpu-threads) is recorded in the configs only (the
    `cpu_plan` parameter and instance group); the weights do not depend on it, so a changed plan is a
    config rewrite (triton_clip/threads.py), not a re-export. Returns a note for the progress line.
    """
    from gateway.contract import TOWER_PREPROCESS, encoded_model_names, model_names
    from triton_clip.export import refresh_runner
    from triton_clip.preprocess_model import refresh_encoded
    from triton_clip.provenance import MANIFEST
    from triton_clip.threads import model_threads, refresh_repository

    note = " (runner model.py updated)" if refresh_runner(request.version, repository) else ""
    threads = model_threads(TOWER_PREPROCESS, request.cpu_threads, request.cpu_plan)
    if request.with_encoded and refresh_encoded(request.version, repository, MANIFEST, threads):
        note += " (encoded-image models written or refreshed)"
    elif not request.with_encoded and any((repository / n).exists() for n in encoded_model_names(request.version)):
        import shutil

        for name in encoded_model_names(request.version):
            shutil.rmtree(repository / name, ignore_errors=True)
        note += " (encoded-image models removed)"
    models = [*model_names(request.version), encoded_model_names(request.version)[0]]
    if request.target == "cpu" and refresh_repository(repository, request.cpu_plan, request.cpu_threads, models):
        note += f" (CPU plan set to {request.cpu_plan})"
    return note


def _export_one(request, args: argparse.Namespace, bar) -> bool:  # noqa: ANN001
    """Export one version if what is on disk differs from what is asked (or --force); True unless it failed."""
    from triton_clip.export import export_version
    from triton_clip.provenance import describe, stale_reasons
    from triton_clip.towers import ExportError

    version, repository = request.version, args.repository
    try:
        reasons = stale_reasons(version, repository, describe(request))
    except (ExportError, ValueError) as exc:
        bar.console.print(f"[red]✗ {version}: {exc}[/]", soft_wrap=True)
        return False
    if not reasons and not args.force:
        bar.console.print(
            f"[green]✓[/] {version}: up to date in {repository}{_refresh(request, repository)} (use --force to redo)"
        )
        return True
    why = "--force" if not reasons else "; ".join(reasons)
    bar.console.print(f"[cyan]→[/] {version}: exporting ({why})", soft_wrap=True)
    logging.getLogger("triton_clip.export").info("%s: exporting because %s", version, why)
    task = bar.add_task(version, total=None)
    try:
        folder = export_version(request, repository, lambda msg: bar.update(task, description=msg))
    except (ExportError, ValueError) as exc:
        bar.console.print(f"[red]✗ {version}: {exc}[/]", soft_wrap=True)
        return False
    finally:
        bar.remove_task(task)
    bar.console.print(f"[green]✓[/] {version}: exported to {folder.parent} ({request.target})")
    return True


if __name__ == "__main__":
    sys.exit(main())
