"""Summaries of py-spy's collapsed stacks (`--format raw`): where the gateway's samples went."""

from __future__ import annotations

from collections import Counter
from pathlib import Path


def _frames(stack: str) -> list[str]:
    # py-spy raw frames look like `function (path/to/file.py:123)`; the thread name comes first.
    return [
        f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")" if " (" in f else f
        for f in stack.split(";")
    ]


def summarise(path: Path, top: int = 25) -> dict[str, list[tuple[str, float]]]:
    """Self and inclusive share of the samples per function (idle event-loop waits included, labelled)."""
    self_c: Counter[str] = Counter()
    incl_c: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = _frames(stack)
        total += n
        self_c[frames[-1]] += n
        for f in set(frames):
            incl_c[f] += n

    def share(counts: Counter[str]) -> list[tuple[str, float]]:
        return [(name, n / max(total, 1)) for name, n in counts.most_common(top)]

    return {"samples": [("total", float(total))], "self": share(self_c), "inclusive": share(incl_c)}


def render(summary: dict[str, list[tuple[str, float]]]) -> str:
    lines = [f"samples: {int(summary['samples'][0][1])}", "", "self:"]
    lines += [f"  {share:6.1%}  {name}" for name, share in summary["self"]]
    lines += ["", "inclusive:"] + [f"  {share:6.1%}  {name}" for name, share in summary["inclusive"]]
    return "\n".join(lines)
