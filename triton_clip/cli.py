"""`scripts/export.py`: export CLIP versions into a Triton model repository."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from triton_clip.threads import PLAN_ENV, PLANS, default_cores, selected_plan
from triton_clip.versions import DEFAULT_PRETRAINED, DEFAULT_VERSION, ROBOFLOW_VERSIONS, model_names

DEFAULT_REPOSITORY = Path(__file__).resolve().parent.parent / "model_repository"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/export.py",
        description="Export open_clip CLIP versions as TorchScript towers into a Triton model repository.",
        epilog=f"Roboflow version ids: {', '.join(ROBOFLOW_VERSIONS)}; any open_clip model name also works.",
    )
    parser.add_argument("--versions", default=os.environ.get("CLIP_VERSIONS", DEFAULT_VERSION),
                        help="comma-separated version ids (env CLIP_VERSIONS, default %(default)s)")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--pretrained", default=os.environ.get("CLIP_PRETRAINED", DEFAULT_PRETRAINED),
                         help="open_clip pretrained tag, 'none' for random weights, or a checkpoint path "
                              "(env CLIP_PRETRAINED, default %(default)s)")
    weights.add_argument("--checkpoint", type=Path, help="local checkpoint file (same as --pretrained PATH)")
    parser.add_argument("--target", choices=["cpu", "gpu"], default=os.environ.get("CLIP_TARGET", "cpu"),
                        help="cpu: Python backend (embedded Triton); gpu: pytorch_libtorch on KIND_GPU")
    parser.add_argument("--repository", type=Path, default=Path(os.environ.get("MODEL_REPOSITORY", DEFAULT_REPOSITORY)),
                        help="model repository folder (env MODEL_REPOSITORY, default %(default)s)")
    parser.add_argument("--fp16", action="store_true", help="half-precision weights (gpu target)")
    parser.add_argument("--cpu-threads", type=int, default=default_cores(),
                        help="cores the CPU thread plan is sized for (default: the cores this process may use)")
    parser.add_argument("--cpu-plan", choices=PLANS, default=selected_plan(),
                        help=f"CPU thread plan across all served towers, see triton_clip/threads.py "
                             f"(env {PLAN_ENV}, default %(default)s)")
    parser.add_argument("--model-config", type=Path, action="append", default=[],
                        help="extra open_clip model config JSON (its file stem becomes a model name)")
    parser.add_argument("--force", action="store_true", help="re-export versions that already exist")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from triton_clip.export import ExportRequest, export_version, is_exported, refresh_runner
    from triton_clip.threads import refresh_repository
    from triton_clip.towers import ExportError

    if args.model_config:
        import open_clip

        for path in args.model_config:
            open_clip.add_model_config(path)
    pretrained = str(args.checkpoint) if args.checkpoint else args.pretrained
    versions = [v.strip() for v in args.versions.split(",") if v.strip()]
    failures = 0
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=False) as bar:
        overall = bar.add_task("export", total=len(versions))
        for version in versions:
            if not args.force and is_exported(version, args.repository, args.target):
                note = " (runner model.py updated)" if refresh_runner(version, args.repository) else ""
                if args.target == "cpu" and refresh_repository(args.repository, args.cpu_plan, args.cpu_threads,
                                                               list(model_names(version))):
                    note += f" (CPU plan set to {args.cpu_plan})"
                bar.console.print(f"[green]✓[/] {version}: already in {args.repository}{note} (use --force to redo)")
                bar.advance(overall)
                continue
            task = bar.add_task(version, total=None)
            request = ExportRequest(version, pretrained, args.target, args.fp16, args.cpu_threads, args.cpu_plan)
            try:
                folder = export_version(request, args.repository, lambda msg: bar.update(task, description=msg))
            except (ExportError, ValueError) as exc:
                bar.console.print(f"[red]✗ {version}: {exc}[/]", soft_wrap=True)
                failures += 1
            else:
                bar.console.print(f"[green]✓[/] {version}: exported to {folder.parent} ({args.target})")
            bar.remove_task(task)
            bar.advance(overall)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
