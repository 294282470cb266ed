"""clip-loadtest: a bounded headless locust run against a running gateway, then the exact summary.

    clip-loadtest [-u USERS] [-r SPAWN_RATE] [-t DURATION] [--host URL] [--scenario TAG] [--out DIR]
                  [-- extra locust options, e.g. --clip-version ViT-B-32 --max-image-side 1280]

Scenarios are the tags of clipbench/locustfile.py: mixed (every task, realistic weights), embed_image,
embed_image_batch, embed_text, embed_text_list, compare, compare_named. Leaves stats_stats.csv,
stats_failures.csv, stats.json (exact totals), report.html and locust.log in --out (default
results/loadtest-<scenario>-<UTC>/). Exits non-zero if any request failed, none succeeded, or locust failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

from clipbench import loadtest

ROOT = Path(__file__).resolve().parents[1]
ENTRY = ROOT / "scripts" / "locustfile.py"  # the same entry file the compose locust service mounts


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="Anything after -- goes to locust.")
    p.add_argument("-u", "--users", type=int, default=8)
    p.add_argument("-r", "--spawn-rate", type=float, default=2)
    p.add_argument("-t", "--run-time", default="30s", help="locust duration (30s, 2m); bare numbers are seconds")
    p.add_argument("--host", default="http://127.0.0.1:9001")
    p.add_argument("--scenario", default="mixed")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    args.run_time += "s" if args.run_time[-1:].isdigit() else ""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    args.out = args.out or ROOT / "results" / f"loadtest-{args.scenario}-{stamp}"
    return args, extra


def locust_command(args: argparse.Namespace, extra: list[str]) -> list[str]:
    binary = shutil.which("locust", path=str(Path(sys.executable).parent)) or shutil.which("locust") or "locust"
    stats = str(args.out / "stats")
    return [binary, "-f", str(ENTRY), "--headless", "-u", str(args.users), "-r", str(args.spawn_rate)] + [
        "-t", args.run_time, "--stop-timeout", "10", "--host", args.host, "--tags", args.scenario,
        "--csv", stats, "--json-file", stats, "--html", str(args.out / "report.html"),
        "--exit-code-on-error", "1", "--loglevel", "WARNING", *extra,
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args, extra = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"loadtest: {args.users} users (+{args.spawn_rate:g}/s) for {args.run_time}, scenario "
          f"'{args.scenario}', against {args.host}\nloadtest: results in {args.out}", flush=True)  # fmt: skip
    # Progress: locust prints its stats table every few seconds (headless); stopped 10 s after the run time.
    with open(args.out / "locust.log", "w") as log:
        proc = subprocess.Popen(
            locust_command(args, extra), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for line in proc.stdout:
            print(line, end="", flush=True)
            log.write(line)
        rc = proc.wait()
    return loadtest.main([str(args.out / "stats.json"), str(rc)])


if __name__ == "__main__":
    raise SystemExit(main())
