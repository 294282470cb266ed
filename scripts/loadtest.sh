#!/usr/bin/env bash
# Bounded headless load against a running gateway (locust, scripts/locustfile.py).
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

"$PY" - "$OUT/stats.json" "$RC" <<'EOF'
import json, sys
path, rc = sys.argv[1], int(sys.argv[2])
try:
    stats = json.load(open(path))
except (OSError, ValueError) as exc:
    print(f"loadtest: no JSON stats ({exc}); locust exit code {rc}")
    sys.exit(rc or 1)
print("\n=== summary (exact totals from stats.json) ===")
print(f"{'name':<20} {'method':<6} {'requests':>9} {'failures':>9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")

def pct(entry, q):
    # response_times: {"<rounded ms>": count}; locust's own percentile rule on the rounded buckets
    times = sorted((float(k), v) for k, v in entry.get("response_times", {}).items())
    total = sum(v for _, v in times)
    if not total:
        return 0.0
    seen = 0
    for ms, count in times:
        seen += count
        if seen >= q * total:
            return ms
    return times[-1][0]

requests = failures = 0
for e in stats:
    span = max(e.get("last_request_timestamp", 0) - e.get("start_time", 0), 1e-9)
    n, f = e["num_requests"], e["num_failures"]
    requests += n
    failures += f
    print(f"{e['name']:<20} {e['method']:<6} {n:>9} {f:>9} {n / span:>8.2f} {pct(e, .5):>8.0f} {pct(e, .95):>8.0f} "
          f"{pct(e, .99):>8.0f} {e.get('max_response_time', 0):>8.0f}")
print(f"total: {requests} requests, {failures} failures; locust exit code {rc}")
if failures or rc or not requests:
    print("loadtest: FAILED" + (" (no request succeeded)" if not requests else ""))
    sys.exit(rc or 1)
print("loadtest: OK")
EOF
