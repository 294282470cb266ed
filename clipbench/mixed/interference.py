"""Why mixed traffic costs more CPU per embedding: each tower in-process on one pinned core, at batch 1
and 2, while the other core runs nothing, the same tower, or the other tower (one thread each, as the
`split` plan runs them). CPU time per embedding, not wall time, so the neighbours matter less.

    python -m clipbench.mixed.interference [--repository results/mixed/model_repository] [--seconds 4]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from clipbench.tritonstats import model_parameters
from gateway.contract import model_names
from triton_clip.threads import default_cores

BACKGROUNDS = ("none", "image", "text")


def load(repository: Path, version: str) -> tuple[dict, int]:
    """Both TorchScript towers (one thread, as `split` runs them) and the exported image size."""
    import torch

    torch.set_num_threads(1)
    names = dict(zip(("image", "text"), model_names(version)))
    towers = {
        t: torch.jit.load(str(repository / m / "1" / "model.pt"), map_location="cpu").eval() for t, m in names.items()
    }
    return towers, int(model_parameters(repository, names["image"])["image_size"])


def example(tower: str, batch: int, size: int):  # noqa: ANN201 - a torch tensor
    import torch

    if tower == "image":
        return torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8)
    return torch.randint(1, 49000, (batch, 16))


def cpu_ms_per_item(module, x, seconds: float) -> float:  # noqa: ANN001
    import torch

    with torch.inference_mode():
        module(x)  # warm
        t0, c0, calls = time.monotonic(), time.thread_time(), 0
        while time.monotonic() - t0 < seconds or calls < 3:
            module(x)
            calls += 1
    return (time.thread_time() - c0) * 1000 / (calls * x.shape[0])


def background(args: argparse.Namespace, tower: str, core: int) -> subprocess.Popen | None:
    """`core` busy with `tower` (batch 1, its own process) for a bounded time."""
    if tower == "none":
        return None
    cmd = [sys.executable, "-m", "clipbench.mixed.interference", "--loop", tower, "--core", str(core)]
    cmd += ["--repository", str(args.repository), "--version", args.version, "--seconds", str(args.seconds * 8)]
    proc = subprocess.Popen(cmd)
    time.sleep(args.seconds / 2)  # loaded and looping
    return proc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repository", type=Path, default=Path("results/mixed/model_repository"))
    p.add_argument("--version", default="ViT-B-32")
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--loop", choices=("image", "text"), help=argparse.SUPPRESS)  # the background process
    p.add_argument("--core", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    towers, size = load(args.repository, args.version)
    if args.loop:  # background: the second core, batch 1, until the time box ends
        os.sched_setaffinity(0, {args.core})
        cpu_ms_per_item(towers[args.loop], example(args.loop, 1, size), args.seconds)
        return 0
    cores = sorted(os.sched_getaffinity(0))
    if default_cores() < 2:
        raise SystemExit("needs two cores")
    os.sched_setaffinity(0, {cores[0]})
    print("| tower | batch | " + " | ".join(f"other core: {b}" for b in BACKGROUNDS) + " |")
    print("|---|---|" + "---|" * len(BACKGROUNDS))
    for tower in ("image", "text"):
        for batch in (1, 2):
            cells = []
            for bg in BACKGROUNDS:
                proc = background(args, bg, cores[1])
                try:
                    cells.append(f"{cpu_ms_per_item(towers[tower], example(tower, batch, size), args.seconds):.1f}")
                finally:
                    if proc:
                        proc.kill()
                        proc.wait()
            print(f"| {tower} | {batch} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
