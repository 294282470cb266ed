"""The ceiling: the exported TorchScript towers called directly in this process, no server in between.

The same model.pt files Triton serves, at the same thread count, on random inputs of the exported
shapes; the best image batch is the ceiling the served paths are compared with.
"""

from __future__ import annotations

import time

from clipbench.closedloop import Point, summarise
from clipbench.session import Session, others_window

Case = tuple[str, int, int | None]  # op, batch, text length (None for images)
SWEEP: list[Case] = (
    [("image", b, None) for b in (1, 8, 32)] + [("text16", b, 16) for b in (1, 8, 32)] + [("text77", 32, 77)]
)
REPEAT: list[Case] = [("image", 32, None), ("text16", 32, 16), ("text77", 32, 77)]  # what the ratios use
CEILINGS: list[Case] = [("image", 32, None), ("text16", 32, 16)]


class InProcess:
    """Loads both towers once; `run` measures a list of (op, batch, length) cases."""

    def __init__(self, session: Session) -> None:
        import torch

        torch.set_num_threads(session.args.threads)
        self.session = session
        repo = session.servers.repo
        self.modules = {
            tower: torch.jit.load(str(repo / model / "1" / "model.pt"), map_location="cpu").eval()
            for tower, model in zip(("image", "text"), session.models)
        }
        self.size = int(session.params("image")["image_size"])
        self.eot = int(session.params("text")["eot_id"])
        self.gen = torch.Generator().manual_seed(0)

    def inputs(self, op: str, batch: int, length: int | None):  # noqa: ANN201 - a torch tensor
        import torch

        if op == "image":
            return self.modules["image"], torch.randint(
                0, 256, (batch, 3, self.size, self.size), dtype=torch.uint8, generator=self.gen
            )
        x = torch.randint(1, 49000, (batch, length), generator=self.gen)
        x[:, -1] = self.eot
        return self.modules["text"], x

    def run(
        self, label: str = "", cases: list[Case] | None = None, seconds: float | None = None, min_calls: int = 4
    ) -> None:
        cases = cases or (REPEAT if label == " repeat" else SWEEP)
        for op, batch, length in cases:
            self.session.step(f"in-process {op} batch {batch}{label}")
            module, x = self.inputs(op, batch, length)
            window = others_window()
            lat, elapsed = self.time_calls(module, x, seconds or self.session.args.inproc_seconds, min_calls)
            p = summarise(Point("inprocess" + label.replace(" ", "_"), op, batch), lat, elapsed, batch)
            p.extra["others_cpu"] = round(window.stop()["others_cpu_share"], 3)
            self.session.record(p)
            self.session.advance()

    @staticmethod
    def time_calls(module, x, seconds: float, min_calls: int) -> tuple[list[float], float]:  # noqa: ANN001
        """Latencies of back-to-back calls for `seconds` (at least `min_calls`, at most 500)."""
        import torch

        with torch.inference_mode():
            module(x)  # warm: the TorchScript profiling executor specialises on the first calls per shape
            module(x)
            lat, start = [], time.perf_counter()
            while time.perf_counter() - start < seconds or len(lat) < min_calls:
                t0 = time.perf_counter()
                module(x)
                lat.append(time.perf_counter() - t0)
                if len(lat) >= 500:
                    break
        return lat, time.perf_counter() - start
