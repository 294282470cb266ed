# syntax=docker/dockerfile:1
# One-shot export job: open_clip weights -> TorchScript towers + config.pbtxt in a Triton model repository.
# torch is the CPU wheel: exporting on CPU is fine for the GPU (pytorch_libtorch) target.
# TorchScript is not forward compatible: a file must be written by a torch no newer than the libtorch
# that loads it. nvcr.io/nvidia/tritonserver:24.10 ships PyTorch 2.5, so the export pins torch 2.5.1
# (override TORCH_VERSION/TORCHVISION_VERSION together with the Triton image tag).
# Build from the repository root:  docker build -f docker/export.Dockerfile -t clip-triton/export:dev .
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HOME=/cache/huggingface \
    TORCH_HOME=/cache/torch \
    XDG_CACHE_HOME=/cache

RUN groupadd --gid 1000 clip \
 && useradd --no-log-init --uid 1000 --gid clip --create-home --shell /usr/sbin/nologin clip \
 && mkdir -p /models /cache \
 && chown clip:clip /models /cache

WORKDIR /app
ARG TORCH_VERSION=2.5.1
ARG TORCHVISION_VERSION=0.20.1
COPY requirements/export.txt requirements/export.txt
# torch first from the CPU index (no CUDA wheels, ~10x smaller), then the rest of export.txt without its
# dev-machine torch pins.
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu \
        "torch==${TORCH_VERSION}" "torchvision==${TORCHVISION_VERSION}" \
 && grep -v -E '^(torch|torchvision)==' requirements/export.txt > /tmp/export-rest.txt \
 && pip install --no-cache-dir -r /tmp/export-rest.txt
COPY pyproject.toml ./
COPY requirements/gateway.txt requirements/gateway.txt
COPY triton_clip/ triton_clip/
# The export <-> gateway contract (names, parameter keys, buckets): standard library only.
COPY gateway/__init__.py gateway/contract.py gateway/errors.py gateway/
# The gateway's decode code, shipped into each version's preprocessing model (encoded transport, docs/encoded-transport.md).
COPY gateway/images/__init__.py gateway/images/decode.py gateway/images/
COPY scripts/ scripts/
# The project itself (its dependencies are installed above): puts `clip-export` on PATH.
RUN pip install --no-cache-dir --no-deps .

# /models and /cache are meant to be volumes; an empty named volume takes this ownership on first mount.
USER 1000:1000
VOLUME ["/models", "/cache"]

# A one-shot job, not a service: there is nothing to health-check.
HEALTHCHECK NONE

ENTRYPOINT ["clip-export"]
CMD ["--target", "gpu", "--repository", "/models/repository"]
