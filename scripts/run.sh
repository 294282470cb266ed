#!/usr/bin/env bash
# Run the service on this machine: embedded CPU Triton + the gateway on 127.0.0.1:9001.
# Settings: CLIP_VERSIONS (ViT-B-16), CLIP_PRETRAINED (openai; 'none' = random weights offline),
# GATEWAY_HOST/GATEWAY_PORT (127.0.0.1/9001), GATEWAY_WORKERS (1), TRITON_HTTP_PORT/TRITON_GRPC_PORT/TRITON_METRICS_PORT;
# supervision: RUN_MAX_FAILURES, RUN_BACKOFF_MAX_S, RUN_HANG_TIMEOUT_S (see triton_clip/run.py and the README).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ensure_venv requirements/run.txt
cd "$ROOT"
exec "$VENV/bin/python" -m triton_clip.run "$@"
