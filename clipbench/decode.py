"""Exact decode + preprocess vs libjpeg draft (DCT-scaled) decode, on a photographic 4000x3000 JPEG.

    .venv/bin/python scripts/bench_decode.py [--size 224] [--reps 9]

Prints median CPU times (ms) and the draft/exact ratio from the same run, how far each draft tensor is from
the exact one, and a 640x480 reference time. The answer lives in docs/decode-draft.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
from PIL import Image, features

from clipbench.payloads import photographic_jpeg
from gateway.images.decode import Preprocess, image_to_tensor, load_image, preprocess

MAX_PIXELS = 40_000_000

# CPU time of this process: the machine is shared, and wall time there measures the neighbours' load.
# process_time counts every thread, so Pillow's GIL-free decode is fully accounted for.
clock = time.process_time


def median_ms(fn: Callable[[], object], reps: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times) * 1000


def paired_ms(fa: Callable[[], object], fb: Callable[[], object], reps: int) -> tuple[float, float, float]:
    """Medians of a and b, and the median of per-pair b/a ratios (interleaved: drifts hit both alike)."""
    fa(), fb()
    ta, tb = [], []
    for _ in range(reps):
        for fn, times in ((fa, ta), (fb, tb)):
            start = clock()
            fn()
            times.append(clock() - start)
    ratio = statistics.median(b / a for a, b in zip(ta, tb))
    return statistics.median(ta) * 1000, statistics.median(tb) * 1000, ratio


def compare(exact: np.ndarray, other: np.ndarray) -> str:
    diff = np.abs(exact.astype(np.int16) - other.astype(np.int16))
    return (
        f"identical={np.array_equal(exact, other)!s:5}  max_abs={int(diff.max()):3d}  "
        f"mean_abs={diff.mean():.3f}  pixels_differing={(diff > 0).mean():.1%}"
    )


def exact_vs_draft(big: bytes, cfg: Preprocess, reps: int) -> None:
    exact = image_to_tensor(big, cfg, max_pixels=MAX_PIXELS)
    drafted = image_to_tensor(big, cfg, max_pixels=MAX_PIXELS, draft=True)
    t_exact, t_draft, ratio = paired_ms(
        lambda: image_to_tensor(big, cfg, max_pixels=MAX_PIXELS),
        lambda: image_to_tensor(big, cfg, max_pixels=MAX_PIXELS, draft=True),
        reps,
    )
    t_decode = median_ms(lambda: load_image(big, max_pixels=MAX_PIXELS), reps)
    full = load_image(big, max_pixels=MAX_PIXELS)
    t_resize = median_ms(lambda: preprocess(full, cfg), reps)
    drafted_img = load_image(big, max_pixels=MAX_PIXELS, draft_size=cfg.size)
    t_draft_decode = median_ms(lambda: load_image(big, max_pixels=MAX_PIXELS, draft_size=cfg.size), reps)
    t_draft_resize = median_ms(lambda: preprocess(drafted_img, cfg), reps)
    print(f"(a) exact  decode+preprocess: {t_exact:8.1f} ms   (decode {t_decode:.1f} + preprocess {t_resize:.1f})")
    print(
        f"(b) draft  decode+preprocess: {t_draft:8.1f} ms   (decode {t_draft_decode:.1f} at "
        f"{drafted_img.width}x{drafted_img.height} + preprocess {t_draft_resize:.1f})"
    )
    print(f"    ratio draft/exact (median of paired runs): {ratio:.1%}   (goal <= 25%)")
    print(f"    draft vs exact tensor: {compare(exact, drafted)}")


def every_scale(big: bytes, cfg: Preprocess, reps: int) -> None:
    exact = image_to_tensor(big, cfg, max_pixels=MAX_PIXELS)
    print("every DCT scale libjpeg offers, then the same exact preprocess:")
    for scale in (1, 2, 4, 8):
        request = 3000 // scale  # Pillow picks the largest scale s with min(W // req, H // req) >= s
        img = load_image(big, max_pixels=MAX_PIXELS, draft_size=request)
        t = median_ms(lambda r=request: preprocess(load_image(big, max_pixels=MAX_PIXELS, draft_size=r), cfg), reps)
        print(f"    1/{scale}: {img.size[0]:4d}x{img.size[1]:<4d} {t:7.1f} ms  {compare(exact, preprocess(img, cfg))}")


def run(size: int = 224, reps: int = 9) -> None:
    cfg = Preprocess(size)
    big = photographic_jpeg(4000, 3000)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"CPU ms (process_time), medians; load average {load} on {os.cpu_count()} CPUs")
    print(f"Pillow {Image.__version__}, libjpeg-turbo {features.version('libjpeg_turbo')}, numpy {np.__version__}")
    print(f"input: 4000x3000 JPEG q90, {len(big) / 1e6:.1f} MB; cfg={cfg}; median of {reps}")
    exact_vs_draft(big, cfg, reps)
    every_scale(big, cfg, reps)
    small = photographic_jpeg(640, 480)
    t_small = median_ms(lambda: image_to_tensor(small, cfg, max_pixels=MAX_PIXELS), reps * 5)
    print(f"reference: 640x480 JPEG decode+preprocess: {t_small:.2f} ms")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--reps", type=int, default=9)
    args = parser.parse_args(argv)
    run(args.size, args.reps)


if __name__ == "__main__":
    main()
