# syntax=docker/dockerfile:1
# One-shot export job: open_clip weights -> TorchScript towers + config.pbtxt in a Triton model repository.
# torch is the CPU wheel: exporting on CPU is fine for the GPU (pytorch_libtorch) target.
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
COPY requirements/export.txt requirements/export.txt
# torch first from the CPU index (no CUDA wheels, ~10x smaller); the pins then resolve to it.
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1 \
 && pip install --no-cache-dir -r requirements/export.txt
COPY triton_clip/ triton_clip/
COPY scripts/ scripts/

# /models and /cache are meant to be volumes; an empty named volume takes this ownership on first mount.
USER 1000:1000
VOLUME ["/models", "/cache"]

# A one-shot job, not a service: there is nothing to health-check.
HEALTHCHECK NONE

ENTRYPOINT ["python", "scripts/export.py"]
CMD ["--target", "gpu", "--repository", "/models/repository"]
