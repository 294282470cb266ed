#!/usr/bin/env bash
# Run the service on this machine: embedded CPU Triton + the gateway on 127.0.0.1:9001.
# Settings: CLIP_VERSIONS (ViT-B-16), CLIP_PRETRAINED (openai; 'none' = random weights offline),
# GATEWAY_HOST/GATEWAY_PORT (127.0.0.1/9001), TRITON_HTTP_PORT/TRITON_GRPC_PORT/TRITON_METRICS_PORT (8000/8001/8002).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ensure_venv requirements/run.txt
exec "$VENV/bin/python" "$ROOT/scripts/run_local.py" "$@"
