"""PyTorch reference of Segment Anything (SAM), the specification the C runtime is tested against.

Written for this project; it computes what facebookresearch/segment-anything (commit dca509f)
computes, op for op in the same order, so outputs agree to the last bit on the same machine.
Module and attribute names follow the official code so that `state_dict()` keys, shapes and
order equal the official checkpoints (sam_vit_b_01ec64.pth, sam_vit_l_0b3195.pth,
sam_vit_h_4b8939.pth).

Layout (one class per layer, ordered by dependency):
  common:          MLPBlock, LayerNorm2d
  image encoder:   PatchEmbed, window_partition/unpartition, rel-pos helpers, Attention,
                   Block, ImageEncoderViT
  prompt encoder:  PositionEmbeddingRandom, PromptEncoder
  mask decoder:    DecoderAttention, TwoWayAttentionBlock, TwoWayTransformer, MLP, MaskDecoder
  model:           Sam (preprocess / postprocess), SamConfig, build_sam, build_sam_from_state_dict

Every forward takes an optional `stages` dict; when given, intermediate tensors are stored in
it under the names documented in predict.py (used for stage-by-stage parity tests).

Numeric facts that matter (see /work/shared/FIDELITY.md):
  - LayerNorm eps 1e-6 in the ViT and every LayerNorm2d; 1e-5 (torch default) in the decoder.
  - GELU is the exact erf form (nn.GELU default); the decoder MLP uses ReLU.
  - Windowed blocks zero-pad the *normed* tokens; padded tokens act as keys/values.
  - Decomposed rel-pos uses the unscaled q.
"""

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

Stages = Optional[Dict[str, torch.Tensor]]


def _record(stages: Stages, name: str, x: torch.Tensor) -> None:
    if stages is not None:
        stages[name] = x.detach().clone()


# ----------------------------------------------------------------------------------------------
# common (official: modeling/common.py)


class MLPBlock(nn.Module):
    """lin1 -> act -> lin2. GELU (erf) in the ViT, ReLU in the two-way transformer."""

    def __init__(self, embedding_dim: int, mlp_dim: int, act=nn.GELU) -> None:
        super().__init__()
        self.lin1 = nn.Linear(embedding_dim, mlp_dim)
        self.lin2 = nn.Linear(mlp_dim, embedding_dim)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(self.act(self.lin1(x)))


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of an NCHW tensor, eps 1e-6, biased variance.

    Computed explicitly (not F.layer_norm) in the same op order as the official code:
    (x - mean) / sqrt(var + eps), then weight * x + bias.
    """

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


# ----------------------------------------------------------------------------------------------
# image encoder (official: modeling/image_encoder.py, ViTDet backbone)


def sam_neck(in_chans: int, out_chans: int) -> nn.Sequential:
    """The image encoders' neck (official ImageEncoderViT.neck, also MobileSAM's
    TinyViT.neck): keys neck.0 .. neck.3."""
    return nn.Sequential(
        nn.Conv2d(in_chans, out_chans, kernel_size=1, bias=False),
        LayerNorm2d(out_chans),
        nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False),
        LayerNorm2d(out_chans),
    )


class PatchEmbed(nn.Module):
    """Conv k=patch, stride=patch (3 -> C), output channels-last (B, G, G, C)."""

    def __init__(self, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


def window_partition(x: torch.Tensor, ws: int) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """(B, H, W, C) -> (B * nwin, ws, ws, C), zero-padding H and W at the bottom/right up to a
    multiple of ws. Windows are ordered row-major over the padded grid."""
    b, h, w, c = x.shape
    pad_h = (ws - h % ws) % ws
    pad_w = (ws - w % ws) % ws
    if pad_h > 0 or pad_w > 0:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.view(b, hp // ws, ws, wp // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.contiguous().view(-1, ws, ws, c), (hp, wp)


def window_unpartition(
    windows: torch.Tensor, ws: int, pad_hw: Tuple[int, int], hw: Tuple[int, int]
) -> torch.Tensor:
    """Inverse of window_partition, dropping the padded rows/columns."""
    hp, wp = pad_hw
    h, w = hw
    b = windows.shape[0] // ((hp // ws) * (wp // ws))
    x = windows.view(b, hp // ws, wp // ws, ws, ws, -1).permute(0, 1, 3, 2, 4, 5)
    x = x.contiguous().view(b, hp, wp, -1)
    if hp > h or wp > w:
        x = x[:, :h, :w, :].contiguous()
    return x


def get_rel_pos(q_size: int, k_size: int, rel_pos: torch.Tensor) -> torch.Tensor:
    """Gather the (q_size, k_size, head_dim) table R[i, j] = rel_pos[i - j + k_size - 1].

    Only q_size == k_size and a table of length 2 * size - 1 occur in SAM (the table is sized
    from the block's window/grid). The official code would linearly resize a table of any
    other length; that path is not used by any checkpoint of this architecture and is kept
    here for completeness with the same F.interpolate call.
    """
    max_rel_dist = 2 * max(q_size, k_size) - 1
    if rel_pos.shape[0] != max_rel_dist:
        resized = F.interpolate(
            rel_pos.reshape(1, rel_pos.shape[0], -1).permute(0, 2, 1),
            size=max_rel_dist,
            mode="linear",
        )
        rel_pos = resized.reshape(-1, max_rel_dist).permute(1, 0)
    q_coords = torch.arange(q_size)[:, None] * max(k_size / q_size, 1.0)
    k_coords = torch.arange(k_size)[None, :] * max(q_size / k_size, 1.0)
    idx = (q_coords - k_coords) + (k_size - 1) * max(q_size / k_size, 1.0)
    return rel_pos[idx.long()]


def add_decomposed_rel_pos(
    attn: torch.Tensor,
    q: torch.Tensor,
    rel_pos_h: torch.Tensor,
    rel_pos_w: torch.Tensor,
    size: Tuple[int, int],
) -> torch.Tensor:
    """MViTv2 decomposed relative position bias, with the *unscaled* q:
    attn[b, (qh,qw), (kh,kw)] += q[b,qh,qw] . Rh[qh,kh] + q[b,qh,qw] . Rw[qw,kw]."""
    h, w = size
    rh = get_rel_pos(h, h, rel_pos_h)  # (h, h, d)
    rw = get_rel_pos(w, w, rel_pos_w)  # (w, w, d)
    b, _, d = q.shape
    r_q = q.reshape(b, h, w, d)
    rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, rh)  # (b, h, w, kh)
    rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, rw)  # (b, h, w, kw)
    attn = attn.view(b, h, w, h, w) + rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]
    return attn.view(b, h * w, h * w)


class Attention(nn.Module):
    """ViT multi-head self-attention over a (B, H, W, C) grid with decomposed rel-pos.

    qkv output channels are ordered [q | k | v] x [head] x [head_dim].
    rel_pos_h / rel_pos_w are (2 * size - 1, head_dim), size = window (windowed) or grid.
    """

    def __init__(
        self, dim: int, num_heads: int, qkv_bias: bool = True, use_rel_pos: bool = True,
        input_size: Optional[Tuple[int, int]] = None,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.use_rel_pos = use_rel_pos
        if use_rel_pos:
            assert input_size is not None
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * input_size[0] - 1, head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * input_size[1] - 1, head_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        nh = self.num_heads
        # (B, HW, 3C) -> (3, B, nh, HW, hd) -> three (B*nh, HW, hd)
        qkv = self.qkv(x).reshape(b, h * w, 3, nh, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.reshape(3, b * nh, h * w, -1).unbind(0)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        if self.use_rel_pos:
            attn = add_decomposed_rel_pos(attn, q, self.rel_pos_h, self.rel_pos_w, (h, w))
        attn = attn.softmax(dim=-1)
        x = (attn @ v).view(b, nh, h, w, -1).permute(0, 2, 3, 1, 4).reshape(b, h, w, -1)
        return self.proj(x)


class Block(nn.Module):
    """Pre-norm ViT block: x += attn(norm1(x)) (windowed or global); x += mlp(norm2(x))."""

    def __init__(
        self, dim: int, num_heads: int, mlp_dim: int, qkv_bias: bool = True,
        use_rel_pos: bool = True, window_size: int = 0, input_size: Tuple[int, int] = (64, 64),
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(
            dim, num_heads, qkv_bias=qkv_bias, use_rel_pos=use_rel_pos,
            input_size=input_size if window_size == 0 else (window_size, window_size),
        )
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = MLPBlock(dim, mlp_dim, nn.GELU)
        self.window_size = window_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.window_size > 0:
            h, w = x.shape[1], x.shape[2]
            x, pad_hw = window_partition(x, self.window_size)  # pads the normed tokens with 0
        x = self.attn(x)
        if self.window_size > 0:
            x = window_unpartition(x, self.window_size, pad_hw, (h, w))
        x = shortcut + x
        x = x + self.mlp(self.norm2(x))
        return x


class ImageEncoderViT(nn.Module):
    """Patch embed + abs pos, `depth` blocks, neck (conv1x1, LN2d, conv3x3, LN2d) -> (B, out, G, G)."""

    def __init__(
        self, img_size: int = 1024, patch_size: int = 16, in_chans: int = 3,
        embed_dim: int = 768, depth: int = 12, num_heads: int = 12, mlp_dim: int = 3072,
        out_chans: int = 256, qkv_bias: bool = True, use_abs_pos: bool = True,
        use_rel_pos: bool = True, window_size: int = 14,
        global_attn_indexes: Tuple[int, ...] = (2, 5, 8, 11),
    ) -> None:
        super().__init__()
        self.img_size = img_size
        grid = img_size // patch_size
        # Registration order matters for state_dict order: patch_embed, pos_embed, blocks, neck
        # (a module's own parameters are listed before its children's).
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.pos_embed: Optional[nn.Parameter] = None
        if use_abs_pos:
            self.pos_embed = nn.Parameter(torch.zeros(1, grid, grid, embed_dim))
        self.blocks = nn.ModuleList(
            Block(
                embed_dim, num_heads, mlp_dim, qkv_bias=qkv_bias, use_rel_pos=use_rel_pos,
                window_size=0 if i in global_attn_indexes else window_size,
                input_size=(grid, grid),
            )
            for i in range(depth)
        )
        self.neck = sam_neck(embed_dim, out_chans)

    def forward(self, x: torch.Tensor, stages: Stages = None) -> torch.Tensor:
        x = self.patch_embed(x)
        _record(stages, "patch_embed", x)
        if self.pos_embed is not None:
            x = x + self.pos_embed
        _record(stages, "pos_embed_added", x)
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            _record(stages, f"block_{i}", x)
        x = x.permute(0, 3, 1, 2)
        for i, layer in enumerate(self.neck):
            x = layer(x)
            _record(stages, f"neck_{i}", x)
        return x


# ----------------------------------------------------------------------------------------------
# prompt encoder (official: modeling/prompt_encoder.py)


class PositionEmbeddingRandom(nn.Module):
    """Random Fourier features: pe(c) = [sin(2 pi (2c - 1) G), cos(...)], G is (2, C/2)."""

    def __init__(self, num_pos_feats: int = 128) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn(2, num_pos_feats))

    def _pe_encoding(self, coords: torch.Tensor) -> torch.Tensor:
        coords = 2 * coords - 1
        coords = coords @ self.positional_encoding_gaussian_matrix
        coords = 2 * math.pi * coords  # official: 2 * np.pi (same double constant)
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)

    def forward(self, size: Tuple[int, int]) -> torch.Tensor:
        """Dense PE of a (h, w) grid, cell (i, j) at ((j + 0.5) / w, (i + 0.5) / h) -> (C, h, w).
        The centres are made with cumsum of ones minus 0.5 like the official code."""
        h, w = size
        grid = torch.ones((h, w), dtype=torch.float32)
        y = (grid.cumsum(dim=0) - 0.5) / h
        x = (grid.cumsum(dim=1) - 0.5) / w
        return self._pe_encoding(torch.stack([x, y], dim=-1)).permute(2, 0, 1)

    def forward_with_coords(self, coords_in: torch.Tensor, image_size: Tuple[int, int]) -> torch.Tensor:
        """Points in padded-input pixels (x, y), divided by (W, H) of the padded input."""
        coords = coords_in.clone()
        coords[:, :, 0] = coords[:, :, 0] / image_size[1]
        coords[:, :, 1] = coords[:, :, 1] / image_size[0]
        return self._pe_encoding(coords.to(torch.float))


class PromptEncoder(nn.Module):
    """Sparse tokens for points/box corners, dense embedding for a mask (or no_mask_embed)."""

    def __init__(
        self, embed_dim: int, image_embedding_size: Tuple[int, int],
        input_image_size: Tuple[int, int], mask_in_chans: int,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.input_image_size = input_image_size
        self.image_embedding_size = image_embedding_size
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        # point_embeddings[0] negative point, [1] positive point, [2] box top-left, [3] bottom-right
        self.num_point_embeddings = 4
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_input_size = (4 * image_embedding_size[0], 4 * image_embedding_size[1])
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def get_dense_pe(self) -> torch.Tensor:
        return self.pe_layer(self.image_embedding_size).unsqueeze(0)  # (1, C, G, G)

    def _embed_points(self, points: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        points = points + 0.5  # pixel centre
        if pad:  # without a box, a (0, 0) point with label -1 is appended
            points = torch.cat([points, torch.zeros((points.shape[0], 1, 2))], dim=1)
            labels = torch.cat([labels, -torch.ones((labels.shape[0], 1))], dim=1)
        emb = self.pe_layer.forward_with_coords(points, self.input_image_size)
        emb[labels == -1] = 0.0
        emb[labels == -1] += self.not_a_point_embed.weight
        emb[labels == 0] += self.point_embeddings[0].weight
        emb[labels == 1] += self.point_embeddings[1].weight
        return emb

    def _embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        boxes = boxes + 0.5
        corners = self.pe_layer.forward_with_coords(boxes.reshape(-1, 2, 2), self.input_image_size)
        corners[:, 0, :] += self.point_embeddings[2].weight
        corners[:, 1, :] += self.point_embeddings[3].weight
        return corners

    def forward(
        self, points: Optional[Tuple[torch.Tensor, torch.Tensor]], boxes: Optional[torch.Tensor],
        masks: Optional[torch.Tensor], stages: Stages = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        if points is not None:
            bs = points[0].shape[0]
        elif boxes is not None:
            bs = boxes.shape[0]
        elif masks is not None:
            bs = masks.shape[0]
        else:
            bs = 1
        sparse = torch.empty((bs, 0, self.embed_dim))
        if points is not None:
            coords, labels = points
            sparse = torch.cat([sparse, self._embed_points(coords, labels, pad=boxes is None)], dim=1)
        if boxes is not None:
            sparse = torch.cat([sparse, self._embed_boxes(boxes)], dim=1)
        if masks is not None:
            dense = self.mask_downscaling(masks)
        else:
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(
                bs, -1, self.image_embedding_size[0], self.image_embedding_size[1]
            )
        _record(stages, "sparse", sparse)
        _record(stages, "dense", dense)
        return sparse, dense


# ----------------------------------------------------------------------------------------------
# mask decoder (official: modeling/transformer.py, modeling/mask_decoder.py)


class DecoderAttention(nn.Module):
    """Attention with q/k/v projected to embedding_dim / downsample_rate; heads are contiguous
    channel blocks; scores divided by sqrt(head_dim) after the product (official order).
    (Official class name: transformer.Attention; the name does not appear in state_dict keys.)"""

    def __init__(self, embedding_dim: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.internal_dim = embedding_dim // downsample_rate
        self.num_heads = num_heads
        assert self.internal_dim % num_heads == 0, "num_heads must divide the internal dim"
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.v_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)

    def _separate_heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q = self._separate_heads(self.q_proj(q))
        k = self._separate_heads(self.k_proj(k))
        v = self._separate_heads(self.v_proj(v))
        attn = q @ k.permute(0, 1, 3, 2)
        attn = attn / math.sqrt(q.shape[-1])
        attn = torch.softmax(attn, dim=-1)
        out = attn @ v  # (b, nh, n, hd)
        b, nh, n, hd = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, n, nh * hd))


class TwoWayAttentionBlock(nn.Module):
    """(1) token self-attn, (2) tokens->image cross-attn, (3) token MLP (ReLU),
    (4) image->tokens cross-attn; each followed by a residual add and LayerNorm (eps 1e-5).
    In the first layer (skip_first_layer_pe) self-attn gets no PE and has no residual."""

    def __init__(
        self, embedding_dim: int, num_heads: int, mlp_dim: int = 2048,
        attention_downsample_rate: int = 2, skip_first_layer_pe: bool = False,
    ) -> None:
        super().__init__()
        self.self_attn = DecoderAttention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = DecoderAttention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate)
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = MLPBlock(embedding_dim, mlp_dim, nn.ReLU)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = DecoderAttention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(self, queries, keys, query_pe, key_pe):
        if self.skip_first_layer_pe:
            queries = self.self_attn(q=queries, k=queries, v=queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q=q, k=q, v=queries)
        queries = self.norm1(queries)

        q = queries + query_pe
        k = keys + key_pe
        queries = queries + self.cross_attn_token_to_image(q=q, k=k, v=keys)
        queries = self.norm2(queries)

        queries = queries + self.mlp(queries)
        queries = self.norm3(queries)

        q = queries + query_pe
        k = keys + key_pe
        keys = keys + self.cross_attn_image_to_token(q=k, k=q, v=queries)
        keys = self.norm4(keys)
        return queries, keys


class TwoWayTransformer(nn.Module):
    """`depth` two-way blocks, then a final token->image attention + LayerNorm on the tokens."""

    def __init__(
        self, depth: int, embedding_dim: int, num_heads: int, mlp_dim: int,
        attention_downsample_rate: int = 2,
    ) -> None:
        super().__init__()
        self.depth = depth
        self.embedding_dim = embedding_dim
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(
                embedding_dim, num_heads, mlp_dim, attention_downsample_rate,
                skip_first_layer_pe=(i == 0),
            )
            for i in range(depth)
        )
        self.final_attn_token_to_image = DecoderAttention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate)
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(self, image_embedding, image_pe, point_embedding, stages: Stages = None):
        # (B, C, h, w) -> (B, hw, C)
        keys = image_embedding.flatten(2).permute(0, 2, 1)
        image_pe = image_pe.flatten(2).permute(0, 2, 1)
        queries = point_embedding
        for i, layer in enumerate(self.layers):
            queries, keys = layer(queries, keys, query_pe=point_embedding, key_pe=image_pe)
            _record(stages, f"dec_layer{i}_queries", queries)
            _record(stages, f"dec_layer{i}_keys", keys)
        q = queries + point_embedding
        k = keys + image_pe
        queries = queries + self.final_attn_token_to_image(q=q, k=k, v=keys)
        queries = self.norm_final_attn(queries)
        return queries, keys


class MLP(nn.Module):
    """num_layers Linear layers, ReLU between them, none after the last (no sigmoid in SAM)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        self.num_layers = num_layers
        dims_in = [input_dim] + [hidden_dim] * (num_layers - 1)
        dims_out = [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims_in, dims_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < self.num_layers - 1:
                x = F.relu(x)
        return x


class MaskDecoder(nn.Module):
    """Tokens [iou, mask_0..mask_{M-1}, prompts] through the two-way transformer; image tokens
    upscaled 4x (ConvT k2s2, LN2d, GELU, ConvT k2s2, GELU); mask m = hyper_mlp_m(token_m) .
    upscaled; IoU = iou_head(iou_token). Multimask returns masks 1..M-1, single returns mask 0."""

    def __init__(
        self, transformer_dim: int, transformer: TwoWayTransformer,
        num_multimask_outputs: int = 3, iou_head_depth: int = 3, iou_head_hidden_dim: int = 256,
        hypernet_depth: int = 3,
    ) -> None:
        super().__init__()
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.num_multimask_outputs = num_multimask_outputs
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.num_mask_tokens = num_multimask_outputs + 1
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, transformer_dim // 8, hypernet_depth)
            for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(
            transformer_dim, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth)

    def predict_masks(self, image_embeddings, image_pe, sparse, dense, stages: Stages = None):
        out_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        out_tokens = out_tokens.unsqueeze(0).expand(sparse.size(0), -1, -1)
        tokens = torch.cat((out_tokens, sparse), dim=1)
        _record(stages, "tokens", tokens)

        src = torch.repeat_interleave(image_embeddings, tokens.shape[0], dim=0)
        src = src + dense
        _record(stages, "src_in", src)
        pos_src = torch.repeat_interleave(image_pe, tokens.shape[0], dim=0)
        b, c, h, w = src.shape

        hs, src = self.transformer(src, pos_src, tokens, stages=stages)
        _record(stages, "decoder_hs", hs)
        _record(stages, "decoder_src", src)
        iou_token_out = hs[:, 0, :]
        mask_tokens_out = hs[:, 1:(1 + self.num_mask_tokens), :]

        src = src.transpose(1, 2).view(b, c, h, w)
        upscaled = self.output_upscaling(src)
        _record(stages, "upscaled", upscaled)
        hyper_in = torch.stack(
            [self.output_hypernetworks_mlps[i](mask_tokens_out[:, i, :])
             for i in range(self.num_mask_tokens)],
            dim=1,
        )
        _record(stages, "hyper_in", hyper_in)
        b, c, h, w = upscaled.shape
        masks = (hyper_in @ upscaled.view(b, c, h * w)).view(b, -1, h, w)
        iou_pred = self.iou_prediction_head(iou_token_out)
        _record(stages, "masks_all", masks)
        _record(stages, "iou_pred_all", iou_pred)
        return masks, iou_pred

    def forward(self, image_embeddings, image_pe, sparse_prompt_embeddings,
                dense_prompt_embeddings, multimask_output: bool, stages: Stages = None):
        masks, iou_pred = self.predict_masks(
            image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings, stages)
        sel = slice(1, None) if multimask_output else slice(0, 1)
        return masks[:, sel, :, :], iou_pred[:, sel]


# ----------------------------------------------------------------------------------------------
# whole model (official: modeling/sam.py, build_sam.py)

PIXEL_MEAN = [123.675, 116.28, 103.53]
PIXEL_STD = [58.395, 57.12, 57.375]


class Sam(nn.Module):
    mask_threshold: float = 0.0

    def __init__(self, image_encoder: ImageEncoderViT, prompt_encoder: PromptEncoder,
                 mask_decoder: MaskDecoder) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        # Not persistent: pixel_mean/std are not in the checkpoints.
        self.register_buffer("pixel_mean", torch.Tensor(PIXEL_MEAN).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.Tensor(PIXEL_STD).view(-1, 1, 1), False)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """(1, 3, h', w') uint8 resized image -> normalised, zero-padded right/bottom to img_size."""
        x = (x - self.pixel_mean) / self.pixel_std
        h, w = x.shape[-2:]
        s = self.image_encoder.img_size
        return F.pad(x, (0, s - w, 0, s - h))

    def postprocess_masks(self, masks: torch.Tensor, input_size: Tuple[int, int],
                          original_size: Tuple[int, int]) -> torch.Tensor:
        """Low-res logits -> bilinear (align_corners=False) to img_size, crop to the resized
        image, bilinear to the original size. Returns logits."""
        s = self.image_encoder.img_size
        masks = F.interpolate(masks, (s, s), mode="bilinear", align_corners=False)
        masks = masks[..., : input_size[0], : input_size[1]]
        return F.interpolate(masks, original_size, mode="bilinear", align_corners=False)


@dataclass
class SamConfig:
    img_size: int = 1024
    patch_size: int = 16
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_dim: int = 3072
    window_size: int = 14
    global_attn_indexes: List[int] = field(default_factory=lambda: [2, 5, 8, 11])
    qkv_bias: bool = True
    out_chans: int = 256           # neck width = prompt embed dim
    prompt_embed_dim: int = 256
    mask_in_chans: int = 16
    decoder_depth: int = 2
    decoder_heads: int = 8
    decoder_mlp_dim: int = 2048
    attention_downsample_rate: int = 2
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256
    hypernet_depth: int = 3
    # MobileSAM (model type "vit_t"): TinyViT kwargs (tiny_vit.TinyViT); the ViT fields above
    # are then unused, img_size stays 1024 and patch_size 16 (64 x 64 embedding grid).
    tinyvit: Optional[dict] = None

    @property
    def grid(self) -> int:
        return self.img_size // self.patch_size


# Official configs (build_sam.py); all share the prompt encoder / decoder defaults above.
OFFICIAL_CONFIGS = {
    "vit_b": dict(embed_dim=768, depth=12, num_heads=12, mlp_dim=3072, global_attn_indexes=[2, 5, 8, 11]),
    "vit_l": dict(embed_dim=1024, depth=24, num_heads=16, mlp_dim=4096, global_attn_indexes=[5, 11, 17, 23]),
    "vit_h": dict(embed_dim=1280, depth=32, num_heads=16, mlp_dim=5120, global_attn_indexes=[7, 15, 23, 31]),
}


def build_image_encoder(cfg: SamConfig) -> nn.Module:
    if cfg.tinyvit is not None:
        from tiny_vit import TinyViT  # MobileSAM's encoder (tiny_vit.py)

        return TinyViT(img_size=cfg.img_size, out_chans=cfg.out_chans, **cfg.tinyvit)
    return ImageEncoderViT(
        img_size=cfg.img_size, patch_size=cfg.patch_size, embed_dim=cfg.embed_dim,
        depth=cfg.depth, num_heads=cfg.num_heads, mlp_dim=cfg.mlp_dim,
        out_chans=cfg.out_chans, qkv_bias=cfg.qkv_bias, window_size=cfg.window_size,
        global_attn_indexes=tuple(cfg.global_attn_indexes),
    )


def build_sam(cfg: SamConfig) -> Sam:
    g = cfg.grid
    sam = Sam(
        image_encoder=build_image_encoder(cfg),
        prompt_encoder=PromptEncoder(
            embed_dim=cfg.prompt_embed_dim, image_embedding_size=(g, g),
            input_image_size=(cfg.img_size, cfg.img_size), mask_in_chans=cfg.mask_in_chans,
        ),
        mask_decoder=MaskDecoder(
            transformer_dim=cfg.prompt_embed_dim,
            transformer=TwoWayTransformer(
                depth=cfg.decoder_depth, embedding_dim=cfg.prompt_embed_dim,
                num_heads=cfg.decoder_heads, mlp_dim=cfg.decoder_mlp_dim,
                attention_downsample_rate=cfg.attention_downsample_rate,
            ),
            num_multimask_outputs=cfg.num_multimask_outputs, iou_head_depth=cfg.iou_head_depth,
            iou_head_hidden_dim=cfg.iou_head_hidden_dim, hypernet_depth=cfg.hypernet_depth,
        ),
    )
    return sam.eval()


def _count(sd: Dict[str, torch.Tensor], prefix: str) -> int:
    """Number of consecutive indexed children `prefix{i}.` present in the state dict."""
    n = 0
    while any(k.startswith(f"{prefix}{n}.") for k in sd):
        n += 1
    return n


def config_from_state_dict(sd: Dict[str, torch.Tensor], decoder_heads: int = 8,
                           encoder_heads: Optional[int] = None) -> SamConfig:
    """Infer the whole config from tensor shapes (decoder head count is not inferable)."""
    from tiny_vit import is_tiny_vit_state_dict, tiny_vit_config_from_state_dict

    if is_tiny_vit_state_dict(sd):
        tv = tiny_vit_config_from_state_dict(sd)
        out_chans = tv.pop("out_chans")
        cfg = SamConfig(img_size=1024, patch_size=16, tinyvit=tv, out_chans=out_chans)
        return _decoder_config_from_state_dict(sd, cfg, decoder_heads)
    pe_w = sd["image_encoder.patch_embed.proj.weight"]  # (C, 3, p, p)
    embed_dim, patch = pe_w.shape[0], pe_w.shape[2]
    grid = sd["image_encoder.pos_embed"].shape[1]      # (1, G, G, C)
    depth = _count(sd, "image_encoder.blocks.")
    b0 = "image_encoder.blocks.0.attn."
    head_dim = sd[b0 + "rel_pos_h"].shape[1]           # (2 * size - 1, head_dim)
    num_heads = encoder_heads or embed_dim // head_dim
    assert embed_dim % num_heads == 0
    global_idx, windows = [], set()
    for i in range(depth):
        n = sd[f"image_encoder.blocks.{i}.attn.rel_pos_h"].shape[0]
        assert n == sd[f"image_encoder.blocks.{i}.attn.rel_pos_w"].shape[0] and n % 2 == 1
        if n == 2 * grid - 1:
            global_idx.append(i)
        else:
            windows.add((n + 1) // 2)
    assert len(windows) <= 1, f"blocks disagree on the window size: {sorted(windows)}"
    window = windows.pop() if windows else 0
    mlp_dim = sd["image_encoder.blocks.0.mlp.lin1.weight"].shape[0]
    qkv_bias = b0 + "qkv.bias" in sd
    out_chans = sd["image_encoder.neck.0.weight"].shape[0]
    cfg = SamConfig(
        img_size=grid * patch, patch_size=patch, embed_dim=embed_dim, depth=depth,
        num_heads=num_heads, mlp_dim=mlp_dim, window_size=window,
        global_attn_indexes=global_idx, qkv_bias=qkv_bias, out_chans=out_chans)
    return _decoder_config_from_state_dict(sd, cfg, decoder_heads)


def _decoder_config_from_state_dict(sd: Dict[str, torch.Tensor], cfg: SamConfig,
                                    decoder_heads: int) -> SamConfig:
    """Fills the prompt encoder and mask decoder fields of cfg from the shapes."""
    prompt_dim = sd["prompt_encoder.point_embeddings.0.weight"].shape[1]
    mask_in_chans = sd["prompt_encoder.mask_downscaling.3.weight"].shape[0]
    dec = "mask_decoder.transformer."
    dec_depth = _count(sd, dec + "layers.")
    dec_mlp = sd[dec + "layers.0.mlp.lin1.weight"].shape[0]
    internal = sd[dec + "final_attn_token_to_image.q_proj.weight"].shape[0]
    num_mask_tokens = sd["mask_decoder.mask_tokens.weight"].shape[0]
    iou_depth = _count(sd, "mask_decoder.iou_prediction_head.layers.")
    iou_hidden = sd["mask_decoder.iou_prediction_head.layers.0.weight"].shape[0]
    hyper_depth = _count(sd, "mask_decoder.output_hypernetworks_mlps.0.layers.")
    cfg.prompt_embed_dim = prompt_dim
    cfg.mask_in_chans = mask_in_chans
    cfg.decoder_depth = dec_depth
    cfg.decoder_heads = decoder_heads
    cfg.decoder_mlp_dim = dec_mlp
    cfg.attention_downsample_rate = prompt_dim // internal
    cfg.num_multimask_outputs = num_mask_tokens - 1
    cfg.iou_head_depth = iou_depth
    cfg.iou_head_hidden_dim = iou_hidden
    cfg.hypernet_depth = hyper_depth
    return cfg


def build_sam_from_state_dict(sd: Dict[str, torch.Tensor], decoder_heads: int = 8,
                              encoder_heads: Optional[int] = None) -> Sam:
    """Build a Sam whose config is inferred from `sd` and load `sd` strictly."""
    cfg = config_from_state_dict(sd, decoder_heads, encoder_heads)
    sam = build_sam(cfg)
    sam.load_state_dict(sd, strict=True)
    sam.config = cfg
    return sam.eval()


def load_checkpoint(path: str, decoder_heads: int = 8, encoder_heads: Optional[int] = None) -> Sam:
    sd = torch.load(path, map_location="cpu")
    if isinstance(sd, dict) and "model" in sd and not any(k.startswith("image_encoder") for k in sd):
        sd = sd["model"]
    return build_sam_from_state_dict(sd, decoder_heads, encoder_heads)
