"""TorchScript-able wrappers around open_clip's two towers.

The image tower takes the gateway's uint8 crops and owns scaling and mean/std, so the wire
carries 1 byte per pixel and no float preprocessing can drift between gateway and model.
The text tower accepts any length up to the context: causal attention means the end-token
output only sees earlier positions, so slicing the positional embedding and the mask gives
the same embedding as open_clip's 77-padded `encode_text`, at a fraction of the compute.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class ExportError(RuntimeError):
    """A model that cannot be exported as asked; the message tells the user what to do."""


class ImageTower(nn.Module):
    def __init__(self, clip: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.visual = clip.visual
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("inv_std", 1.0 / (torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        # (x/255 - mean)/std == (x - 255*mean) / (255*std): one fewer pass over the batch.
        x = (pixel_values.to(self.mean.dtype) - self.mean) * self.inv_std
        return self.visual(x).float()


class TextTower(nn.Module):
    def __init__(self, clip: nn.Module) -> None:
        super().__init__()
        src = clip if hasattr(clip, "token_embedding") else getattr(clip, "text", None)
        needed = ("token_embedding", "positional_embedding", "transformer", "ln_final", "attn_mask")
        if src is None or not all(hasattr(src, name) for name in needed):
            raise ExportError(
                f"{type(clip).__name__}: only CLIP-style causal text transformers can be exported "
                "(this model's text tower is an HF or other encoder)."
            )
        pool = getattr(src, "text_pool_type", getattr(src, "pool_type", "argmax"))
        if pool != "argmax" or getattr(src, "cls_emb", None) is not None:
            raise ExportError(f"text pooling {pool!r} is not supported; only argmax (end-token) pooling is.")
        if src.attn_mask is None:
            raise ExportError("the text tower has no causal mask; variable-length export would change results.")
        self.token_embedding = src.token_embedding
        self.positional_embedding = src.positional_embedding
        self.transformer = src.transformer
        self.ln_final = src.ln_final
        projection = src.text_projection
        self.proj_linear = projection if isinstance(projection, nn.Linear) else nn.Identity()
        self.register_buffer(
            "proj_matrix", projection.detach().clone() if isinstance(projection, torch.Tensor) else torch.empty(0)
        )
        self.register_buffer("attn_mask", src.attn_mask.detach().clone())

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        length = input_ids.shape[1]
        x = self.token_embedding(input_ids)
        x = x + self.positional_embedding[:length].to(x.dtype)
        x = self.transformer(x, attn_mask=self.attn_mask[:length, :length].to(x.dtype))
        x = self.ln_final(x)
        x = x[torch.arange(x.shape[0], device=x.device), input_ids.argmax(dim=-1)]
        x = self.proj_linear(x)
        if self.proj_matrix.numel() > 0:
            x = x @ self.proj_matrix.to(x.dtype)
        return x.float()


def to_torchscript(module: nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
    """Script when possible (shape-generic by construction), else trace at batch 2."""
    module = module.eval()
    try:
        return torch.jit.script(module)
    except Exception:  # noqa: BLE001 - some open_clip variants are not scriptable; tracing is verified after
        with torch.inference_mode():
            return torch.jit.trace(module, example, check_trace=False)
