"""The load test's summary: exact totals and percentiles per request kind from locust's stats.json.

    python -m clipbench.loadtest results/loadtest-.../stats.json LOCUST_EXIT_CODE

Exits non-zero when any request failed, none succeeded, or locust itself failed (scripts/loadtest.sh).
"""

from __future__ import annotations

import json
import sys


def percentile(entry: dict, q: float) -> float:
    """Locust's own rule on its rounded buckets (`response_times`: {"<rounded ms>": count})."""
    times = sorted((float(k), v) for k, v in entry.get("response_times", {}).items())
    total = sum(v for _, v in times)
    seen = 0
    for ms, count in times:
        seen += count
        if seen >= q * total:
            return ms
    return times[-1][0] if times else 0.0


def summary(stats: list[dict], rc: int) -> tuple[list[str], int]:
    lines = [
        "",
        "=== summary (exact totals from stats.json) ===",
        f"{'name':<20} {'method':<6} {'requests':>9} {'failures':>9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'p99 ms':>8} {'max ms':>8}",
    ]
    requests = failures = 0
    for e in stats:
        span = max(e.get("last_request_timestamp", 0) - e.get("start_time", 0), 1e-9)
        n, f = e["num_requests"], e["num_failures"]
        requests, failures = requests + n, failures + f
        p50, p95, p99 = (percentile(e, q) for q in (0.5, 0.95, 0.99))
        lines.append(
            f"{e['name']:<20} {e['method']:<6} {n:>9} {f:>9} {n / span:>8.2f} {p50:>8.0f} {p95:>8.0f} "
            f"{p99:>8.0f} {e.get('max_response_time', 0):>8.0f}"
        )
    lines.append(f"total: {requests} requests, {failures} failures; locust exit code {rc}")
    if failures or rc or not requests:
        lines.append("loadtest: FAILED" + (" (no request succeeded)" if not requests else ""))
        return lines, rc or 1
    return [*lines, "loadtest: OK"], 0


def main(argv: list[str] | None = None) -> int:
    path, rc = (argv or sys.argv[1:])[:2]
    try:
        with open(path) as f:
            stats = json.load(f)
    except (OSError, ValueError) as exc:
        print(f"loadtest: no JSON stats ({exc}); locust exit code {rc}")
        return int(rc) or 1
    lines, code = summary(stats, int(rc))
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    sys.exit(main())
