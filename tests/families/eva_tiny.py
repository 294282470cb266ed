"""A tiny timm EVA-CLIP image tower for tests: `eva02_base_patch16_clip_224` at toy width and depth.

timm has no small EVA-CLIP variant and open_clip's config cannot pass model arguments to timm, so
this registers one with timm: the same `Eva` class and every flag `eva02_base_patch16_clip_224`
(EVA02-B-16's tower) sets (separate q/k/v with q/v bias, SwiGLU with its inner LayerNorm,
the attention's inner LayerNorm, 2-D rotary position embeddings with a 16x16 reference grid,
class-token pooling), only 192 wide, 3 heads, 2 blocks. Import this module before building
`tests/fixtures/EVA02-tiny-16.json`.
"""

from __future__ import annotations

from timm.models import register_model
from timm.models._registry import is_model
from timm.models.eva import _create_eva

NAME = "eva02_tiny_patch16_clip_224"

if not is_model(NAME):

    @register_model
    def eva02_tiny_patch16_clip_224(pretrained: bool = False, **kwargs):  # noqa: ANN201, ANN003
        model_args = dict(
            img_size=224,
            patch_size=16,
            embed_dim=192,
            depth=2,
            num_heads=3,
            qkv_fused=False,
            mlp_ratio=4 * 2 / 3,
            swiglu_mlp=True,
            scale_mlp=True,
            scale_attn_inner=True,
            use_rot_pos_emb=True,
            ref_feat_shape=(16, 16),
            global_pool=kwargs.pop("global_pool", "token"),
        )
        return _create_eva(NAME, pretrained=pretrained, **dict(model_args, **kwargs))


def sharpen_attention(model, factor: float = 5.0) -> None:  # noqa: ANN001
    """Scale the EVA tower's q/k projections: at open_clip's init the attention is almost uniform, so
    position encodings barely move the output; sharper attention makes the parity tests see the rotary
    embeddings (dropping them: cos ~0.06 instead of ~0.99)."""
    import torch

    with torch.no_grad():
        for block in model.visual.trunk.blocks:
            block.attn.q_proj.weight.mul_(factor)
            block.attn.k_proj.weight.mul_(factor)
