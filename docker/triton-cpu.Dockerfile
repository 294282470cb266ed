# syntax=docker/dockerfile:1
# Triton for machines without a GPU: the real tritonserver 2.51 (from the nvidia-pytriton wheel) with the
# Python backend, which runs the TorchScript towers with CPU torch. Same gateway, same ports as the GPU image.
# Build from the repository root:  docker build -f docker/triton-cpu.Dockerfile -t clip-triton/triton-cpu:dev .
# The wheel is manylinux_2_35: bookworm (glibc 2.36) is new enough; every library it links is in slim or bundled.
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TRITON_HOME=/opt/triton \
    HF_HOME=/cache/huggingface \
    TORCH_HOME=/cache/torch \
    XDG_CACHE_HOME=/cache

RUN groupadd --gid 1000 clip \
 && useradd --no-log-init --uid 1000 --gid clip --create-home --shell /bin/bash clip \
 && mkdir -p /models /cache /opt/triton \
 && chown clip:clip /models /cache /opt/triton

WORKDIR /app
COPY requirements/export.txt requirements/export.txt
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1 \
 && pip install --no-cache-dir -r requirements/export.txt
COPY pyproject.toml ./
COPY requirements/gateway.txt requirements/gateway.txt
COPY triton_clip/ triton_clip/
# The export <-> gateway contract (names, parameter keys, buckets): standard library only.
COPY gateway/__init__.py gateway/contract.py gateway/errors.py gateway/
# The gateway's decode code, shipped into each version's preprocessing model (encoded transport, docs/encoded-transport.md).
COPY gateway/images/__init__.py gateway/images/decode.py gateway/images/
COPY scripts/ scripts/
# The project itself (its dependencies are installed above): `clip-export`, and triton_clip importable by scripts/.
RUN pip install --no-cache-dir --no-deps .

USER 1000:1000
# Unpack tritonserver + the Python backend (and the stub for this Python) into $TRITON_HOME at build time.
RUN python scripts/install_triton.py

VOLUME ["/models", "/cache"]
EXPOSE 8000 8001 8002

HEALTHCHECK --interval=10s --timeout=3s --start-period=600s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/v2/health/ready', timeout=2).status == 200 else 1)"]

# Export the CPU (Python backend) towers unless already in /models/repository (the export skips them), then serve.
# CLIP_VERSIONS / CLIP_PRETRAINED choose what is exported; CLIP_EXPORT_EXTRA_ARGS adds flags (e.g. --cpu-threads 4:
# the cores of a CPU quota, which the container cannot see). CLIP_CPU_PLAN picks the thread plan across all towers
# (docs/mixed-traffic.md); export writes it into the configs (also of versions already in /models) and
# serve_triton.py starts Triton with its environment (OMP_WAIT_POLICY=PASSIVE) and flags.
CMD ["bash", "-c", "set -euo pipefail; clip-export --target cpu --repository /models/repository ${CLIP_EXPORT_EXTRA_ARGS:-}; exec python scripts/serve_triton.py --model-repository /models/repository --host 0.0.0.0 --http-port 8000 --grpc-port 8001 --metrics-port 8002"]
