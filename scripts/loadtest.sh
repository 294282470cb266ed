#!/usr/bin/env bash
# Bounded headless load against a running gateway (locust, clipbench/locustfile.py; summary: clipbench/loadtest.py).
#
#   scripts/loadtest.sh [-u USERS] [-r SPAWN_RATE] [-t DURATION] [--host URL] [--scenario TAG] [--out DIR]
#                       [-- extra locust options, e.g. --clip-version ViT-B-32 --max-image-side 1280]
#
# Defaults: 8 users, spawn 2/s, 30s, http://127.0.0.1:9001, scenario "mixed" (every task, realistic weights;
# other tags: embed_image embed_image_batch embed_text embed_text_list compare compare_named).
# Leaves stats_stats.csv, stats_failures.csv, stats.json (exact totals) and report.html in
# results/loadtest-<scenario>-<UTC time>/ (or --out) and prints a summary. Exits non-zero if any
# request failed, if none succeeded, or if locust itself failed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
LOCUST="$(dirname "$PY")/locust"
[ -x "$LOCUST" ] || LOCUST="$(command -v locust)"

USERS=8 RATE=2 DURATION=30s HOST="http://127.0.0.1:9001" SCENARIO=mixed OUT=""
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    -u|--users) USERS="$2"; shift 2 ;;
    -r|--spawn-rate) RATE="$2"; shift 2 ;;
    -t|--run-time) DURATION="$2"; shift 2 ;;
    --host) HOST="$2"; shift 2 ;;
    --scenario) SCENARIO="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$DURATION" in *[0-9]) DURATION="${DURATION}s" ;; esac
OUT="${OUT:-$ROOT/results/loadtest-$SCENARIO-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"

echo "loadtest: $USERS users (+$RATE/s) for $DURATION, scenario '$SCENARIO', against $HOST"
echo "loadtest: results in $OUT"
set +e
# Progress: locust prints the stats table every few seconds (headless); stopped 10s after the run time.
"$LOCUST" -f "$ROOT/scripts/locustfile.py" --headless -u "$USERS" -r "$RATE" -t "$DURATION" --stop-timeout 10 \
  --host "$HOST" --tags "$SCENARIO" --csv "$OUT/stats" --json-file "$OUT/stats" --html "$OUT/report.html" \
  --exit-code-on-error 1 --loglevel WARNING "${EXTRA[@]}" 2>&1 | tee "$OUT/locust.log"
RC=${PIPESTATUS[0]}
set -e

exec "$PY" -m clipbench.loadtest "$OUT/stats.json" "$RC"  # exact totals, p50/p95/p99; non-zero on any failure
