# syntax=docker/dockerfile:1
# NVIDIA's Triton image + what the encoded image transport's preprocessing model needs (docs/encoded-transport.md):
# torch/torchvision for nvJPEG (`torchvision.io.decode_jpeg(device="cuda")`) and DLPack, Pillow/numpy/pybase64 for
# the gateway's own decode code (the CPU fallback for non-JPEGs), shipped into the model folder by the exporter.
# Only needed with `clip-export --target gpu --encoded-images`; the stock image serves the tensor transport.
# NOT BUILT OR RUN YET (no GPU or Docker daemon where it was written): untested, like the GPU parity figure.
# Build from the repository root:  docker build -f docker/triton-gpu-decode.Dockerfile -t clip-triton/triton-gpu:dev .
# Then point compose/Helm's Triton image at it (TRITON_IMAGE / triton.image).
FROM nvcr.io/nvidia/tritonserver:24.10-py3

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
# torch 2.5.1 is the libtorch of Triton 24.10 (triton_clip/compat.py): the Python backend's torch and the libtorch
# backend's then agree; cu124 wheels run on the image's CUDA 12.6 driver stack. torchvision 0.20 is its pair and
# has batched GPU decode_jpeg. Pillow in the gateway's range (requirements/gateway.txt): pin the same version as
# the gateway image for a bit-identical CPU fallback. numpy<2: the image's Python-backend stub is built on numpy 1.x.
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cu124 torch==2.5.1 torchvision==0.20.1 \
 && pip install --no-cache-dir "pillow>=12.3,<13" "numpy>=1.26,<2" pybase64==1.5.1

USER triton-server
HEALTHCHECK --interval=10s --timeout=3s --start-period=600s --retries=3 \
  CMD ["curl", "-fsS", "http://127.0.0.1:8000/v2/health/ready"]
