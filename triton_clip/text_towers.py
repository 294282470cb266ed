"""Text towers that must see the whole context: no causal mask, or pooling that is not the end token.

MobileCLIP/MobileCLIP2 and SigLIP/SigLIP2 attend in both directions and SigLIP pools the last
position (a pad token), so a 16-token input gives another embedding than the 64/77-padded one.
These towers run open_clip's own text module unchanged at the fixed context length; the
gateway always pads to it (the exporter records no length buckets for them).
"""

from __future__ import annotations

import torch
from torch import nn

from triton_clip.towers import ExportError


class FullContextTextTower(nn.Module):
    """open_clip's `model.text` (a `TextTransformer`), called exactly as `encode_text` calls it."""

    def __init__(self, clip: nn.Module) -> None:
        super().__init__()
        text = getattr(clip, "text", None)
        if text is None or not hasattr(text, "token_embedding"):
            raise ExportError(
                f"{type(clip).__name__}: a non-causal text tower is only served as an open_clip TextTransformer "
                "(custom_text); this model's text encoder is an HF or other module."
            )
        if getattr(text, "output_tokens", False):
            raise ExportError("text towers that return token features (CoCa) are not served.")
        self.text = text

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.text(input_ids).float()
