"""The Triton side of the CLIP service: open_clip → TorchScript towers → model repository → tritonserver.

Imports torch (export time and the CPU Python backend only); the gateway never imports this package.
"""
