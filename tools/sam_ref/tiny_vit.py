"""PyTorch reference of MobileSAM's image encoder (TinyViT, model type "vit_t"), written for
this project.

It computes what ChaoningZhang/MobileSAM mobile_sam/modeling/tiny_vit_sam.py (TinyViT as
built by build_sam.py build_sam_vit_t) computes in eval mode, in the same op order. Module
and attribute names follow the official code, so `state_dict()` keys, shapes and order
equal the published mobile_sam.pt:

  image_encoder.patch_embed.seq.{0,2}.{c.weight, bn.*}          conv3x3 s2 stem
  image_encoder.layers.0.blocks.{i}.conv{1,2,3}.{c,bn}            MBConv
  image_encoder.layers.{0,1,2}.downsample.conv{1,2,3}.{c,bn}      PatchMerging
  image_encoder.layers.{1,2,3}.blocks.{i}.attn.{attention_biases, norm, qkv, proj}
                                         .mlp.{norm, fc1, fc2}
                                         .local_conv.{c, bn}
  image_encoder.norm_head, image_encoder.head                     classifier (unused)
  image_encoder.neck.{0,1,2,3}                                    as SAM's neck
  (bn.* = weight, bias, running_mean, running_var, num_batches_tracked)

attention_bias_idxs is a non-persistent buffer in the official code (register_buffer(...,
persistent=False)), so it is not in mobile_sam.pt; it is rebuilt here from the window size.

Facts (see /work/shared/FIDELITY.md):
  - Conv2d_BN = Conv2d(bias=False) + BatchNorm2d (eval: running stats, eps 1e-5).
  - GELU is exact (nn.GELU default). LayerNorms in the blocks use eps 1e-5 (nn.LayerNorm
    default); the neck's LayerNorm2d uses 1e-6.
  - PatchMerging's depthwise conv has stride 1 when its output width is 320, 448 or 576
    (the official rule, keyed on the width), else 2.
  - Stage resolutions: img/4 for the stem and stage 0, then img/8, img/16, img/16.
  - Block: windows are zero-padded at the bottom/right BEFORE the attention's own
    LayerNorm, so padded tokens are norm.bias and take part as keys and values; x += attn;
    then the depthwise local conv (no residual); then x += mlp(x).
  - Attention: qkv channels per head [q (kd), k (kd), v (kd)]; attn = (q k^T) * kd**-0.5
    + attention_biases[h, |dy| * ws + |dx|]. The official code caches these biases in
    eval(); MobileSAM's README calls eval() after loading, so the loaded biases apply.
"""

import itertools
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

Stages = Optional[Dict[str, torch.Tensor]]


def _record(stages: Stages, name: str, x: torch.Tensor) -> None:
    if stages is not None:
        stages[name] = x.detach().clone()


class Conv2d_BN(nn.Sequential):
    """Conv2d without bias ('c') followed by BatchNorm2d ('bn')."""

    def __init__(self, cin: int, cout: int, ks: int = 1, stride: int = 1, pad: int = 0,
                 groups: int = 1) -> None:
        super().__init__()
        self.add_module("c", nn.Conv2d(cin, cout, ks, stride, pad, 1, groups, bias=False))
        self.add_module("bn", nn.BatchNorm2d(cout))


class PatchEmbed(nn.Module):
    """conv3x3 s2 (3 -> C/2), GELU, conv3x3 s2 (C/2 -> C): img/4 resolution."""

    def __init__(self, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.seq = nn.Sequential(
            Conv2d_BN(in_chans, embed_dim // 2, 3, 2, 1),
            nn.GELU(),
            Conv2d_BN(embed_dim // 2, embed_dim, 3, 2, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(x)


class MBConv(nn.Module):
    """1x1 expand, GELU, depthwise 3x3, GELU, 1x1, + shortcut, GELU (NCHW in and out)."""

    def __init__(self, dim: int, expand_ratio: float) -> None:
        super().__init__()
        hidden = int(dim * expand_ratio)
        self.conv1 = Conv2d_BN(dim, hidden, ks=1)
        self.act1 = nn.GELU()
        self.conv2 = Conv2d_BN(hidden, hidden, ks=3, stride=1, pad=1, groups=hidden)
        self.act2 = nn.GELU()
        self.conv3 = Conv2d_BN(hidden, dim, ks=1)
        self.act3 = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act1(self.conv1(x))
        y = self.act2(self.conv2(y))
        y = self.conv3(y)
        return self.act3(y + x)


def merge_stride(out_dim: int) -> int:
    # tiny_vit_sam.py PatchMerging.__init__: stride_c = 1 if out_dim in (320, 448, 576) else 2
    return 1 if out_dim in (320, 448, 576) else 2


class PatchMerging(nn.Module):
    """1x1 (dim -> out), GELU, depthwise 3x3 (stride 2, or 1 for the widths above), GELU, 1x1.
    Input NCHW or tokens (B, H*W, dim) at `resolution`; output tokens (B, H'*W', out)."""

    def __init__(self, resolution: Tuple[int, int], dim: int, out_dim: int) -> None:
        super().__init__()
        self.input_resolution = resolution
        self.act = nn.GELU()
        self.conv1 = Conv2d_BN(dim, out_dim, 1, 1, 0)
        self.conv2 = Conv2d_BN(out_dim, out_dim, 3, merge_stride(out_dim), 1, groups=out_dim)
        self.conv3 = Conv2d_BN(out_dim, out_dim, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            h, w = self.input_resolution
            x = x.view(x.shape[0], h, w, -1).permute(0, 3, 1, 2)
        x = self.act(self.conv1(x))
        x = self.act(self.conv2(x))
        x = self.conv3(x)
        return x.flatten(2).transpose(1, 2)


class ConvLayer(nn.Module):
    """Stage 0: MBConv blocks, then patch merging."""

    def __init__(self, dim: int, resolution: Tuple[int, int], depth: int, out_dim: int,
                 expand_ratio: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(MBConv(dim, expand_ratio) for _ in range(depth))
        self.downsample = PatchMerging(resolution, dim, out_dim)

    def forward(self, x: torch.Tensor, stages: Stages = None, prefix: str = "") -> torch.Tensor:
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            _record(stages, f"{prefix}block_{i}", x)
        return self.downsample(x)


class Mlp(nn.Module):
    """LayerNorm, fc1, GELU, fc2."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


def bias_index(ws: int) -> torch.Tensor:
    """(N, N) index into attention_biases[h] for a ws x ws window (N = ws * ws).

    The official code numbers each offset (|dy|, |dx|) by first appearance over all pairs
    of points in row-major order; the first point (0, 0) meets every offset first in
    row-major order, so the number is |dy| * ws + |dx| and there are ws * ws of them.
    """
    points = list(itertools.product(range(ws), range(ws)))
    idx = [abs(p[0] - q[0]) * ws + abs(p[1] - q[1]) for p in points for q in points]
    n = len(points)
    return torch.tensor(idx, dtype=torch.long).view(n, n)


class Attention(nn.Module):
    def __init__(self, dim: int, key_dim: int, num_heads: int, ws: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.scale = key_dim ** -0.5
        self.d = key_dim  # attn_ratio 1
        self.dh = key_dim * num_heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, self.dh + 2 * key_dim * num_heads)
        self.proj = nn.Linear(self.dh, dim)
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, ws * ws))
        self.register_buffer("attention_bias_idxs", bias_index(ws), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        x = self.norm(x)
        qkv = self.qkv(x)
        q, k, v = qkv.view(b, n, self.num_heads, -1).split([self.key_dim, self.key_dim, self.d], dim=3)
        q, k, v = q.permute(0, 2, 1, 3), k.permute(0, 2, 1, 3), v.permute(0, 2, 1, 3)
        ab = self.attention_biases[:, self.attention_bias_idxs]
        attn = (q @ k.transpose(-2, -1)) * self.scale + ab
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(b, n, self.dh)
        return self.proj(x)


class TinyViTBlock(nn.Module):
    def __init__(self, dim: int, resolution: Tuple[int, int], num_heads: int, ws: int,
                 mlp_ratio: float, local_conv_size: int = 3) -> None:
        super().__init__()
        self.input_resolution = resolution
        self.window_size = ws
        self.attn = Attention(dim, dim // num_heads, num_heads, ws)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.local_conv = Conv2d_BN(dim, dim, ks=local_conv_size, stride=1,
                                    pad=local_conv_size // 2, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.input_resolution
        b, n, c = x.shape
        ws = self.window_size
        res = x
        if h == ws and w == ws:
            x = self.attn(x)
        else:
            x = x.view(b, h, w, c)
            pad_b = (ws - h % ws) % ws
            pad_r = (ws - w % ws) % ws
            if pad_b or pad_r:
                x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
            ph, pw = h + pad_b, w + pad_r
            nh, nw = ph // ws, pw // ws
            x = x.view(b, nh, ws, nw, ws, c).transpose(2, 3).reshape(b * nh * nw, ws * ws, c)
            x = self.attn(x)
            x = x.view(b, nh, nw, ws, ws, c).transpose(2, 3).reshape(b, ph, pw, c)
            if pad_b or pad_r:
                x = x[:, :h, :w].contiguous()
            x = x.view(b, n, c)
        x = res + x
        x = x.transpose(1, 2).reshape(b, c, h, w)
        x = self.local_conv(x)
        x = x.view(b, c, n).transpose(1, 2)
        return x + self.mlp(x)


class BasicLayer(nn.Module):
    """Stages 1-3: TinyViT blocks, then patch merging (except the last stage)."""

    def __init__(self, dim: int, resolution: Tuple[int, int], depth: int, num_heads: int,
                 ws: int, mlp_ratio: float, out_dim: Optional[int]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            TinyViTBlock(dim, resolution, num_heads, ws, mlp_ratio) for _ in range(depth))
        self.downsample = PatchMerging(resolution, dim, out_dim) if out_dim is not None else None

    def forward(self, x: torch.Tensor, stages: Stages = None, prefix: str = "") -> torch.Tensor:
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            _record(stages, f"{prefix}block_{i}", x)
        if self.downsample is not None:
            x = self.downsample(x)
        return x


# build_sam.py build_sam_vit_t
VIT_T = dict(embed_dims=[64, 128, 160, 320], depths=[2, 2, 6, 2], num_heads=[2, 4, 5, 10],
             window_sizes=[7, 7, 14, 7], mlp_ratio=4.0, mbconv_expand_ratio=4.0)


class TinyViT(nn.Module):
    """MobileSAM's image encoder: (B, 3, S, S) normalised input -> (B, out_chans, S/16, S/16)."""

    def __init__(self, img_size: int = 1024, in_chans: int = 3, num_classes: int = 1000,
                 embed_dims: List[int] = VIT_T["embed_dims"], depths: List[int] = VIT_T["depths"],
                 num_heads: List[int] = VIT_T["num_heads"],
                 window_sizes: List[int] = VIT_T["window_sizes"], mlp_ratio: float = 4.0,
                 mbconv_expand_ratio: float = 4.0, out_chans: int = 256) -> None:
        super().__init__()
        from model import sam_neck  # model.py imports this module lazily

        self.img_size = img_size
        self.patch_embed = PatchEmbed(in_chans, embed_dims[0])
        r0 = img_size // 4
        self.layers = nn.ModuleList()
        for i in range(len(depths)):
            # Official: input_resolution = r0 // 2 ** (i - 1 if i == 3 else i).
            r = r0 // (2 ** (i - 1 if i == 3 else i))
            out_dim = embed_dims[i + 1] if i < len(depths) - 1 else None
            if i == 0:
                layer = ConvLayer(embed_dims[0], (r, r), depths[0], out_dim, mbconv_expand_ratio)
            else:
                layer = BasicLayer(embed_dims[i], (r, r), depths[i], num_heads[i],
                                   window_sizes[i], mlp_ratio, out_dim)
            self.layers.append(layer)
        self.norm_head = nn.LayerNorm(embed_dims[-1])
        self.head = nn.Linear(embed_dims[-1], num_classes)
        self.neck = sam_neck(embed_dims[-1], out_chans)

    def forward(self, x: torch.Tensor, stages: Stages = None) -> torch.Tensor:
        x = self.patch_embed(x)
        _record(stages, "stem", x)
        for i, layer in enumerate(self.layers):
            x = layer(x, stages, prefix=f"stage{i}_")
            _record(stages, f"stage_{i}", x)
        b, _, c = x.shape
        g = self.img_size // 16  # official: x.view(B, 64, 64, C) for img_size 1024
        x = x.view(b, g, g, c).permute(0, 3, 1, 2)
        for i, layer in enumerate(self.neck):
            x = layer(x)
            _record(stages, f"neck_{i}", x)
        return x


def is_tiny_vit_state_dict(sd: Dict[str, torch.Tensor]) -> bool:
    return "image_encoder.patch_embed.seq.0.c.weight" in sd


def tiny_vit_config_from_state_dict(sd: Dict[str, torch.Tensor]) -> dict:
    """embed_dims, depths, num_heads (stage 0: not in the shapes, official 2), window sizes,
    mlp ratio and out_chans from the tensor shapes. img_size is fixed at 1024 (build_sam_vit_t)."""
    p = "image_encoder."
    n_layers = 0
    while any(k.startswith(f"{p}layers.{n_layers}.") for k in sd):
        n_layers += 1
    dims, depths, heads, windows = [], [], [], []
    for i in range(n_layers):
        d = 0
        while any(k.startswith(f"{p}layers.{i}.blocks.{d}.") for k in sd):
            d += 1
        depths.append(d)
        if i == 0:
            dims.append(sd[f"{p}layers.0.blocks.0.conv1.c.weight"].shape[1])
            heads.append(VIT_T["num_heads"][0])
            windows.append(VIT_T["window_sizes"][0])
            expand = sd[f"{p}layers.0.blocks.0.conv1.c.weight"].shape[0] / dims[0]
        else:
            ab = sd[f"{p}layers.{i}.blocks.0.attn.attention_biases"]
            dims.append(sd[f"{p}layers.{i}.blocks.0.attn.norm.weight"].shape[0])
            heads.append(ab.shape[0])
            windows.append(int(round(ab.shape[1] ** 0.5)))
            mlp_ratio = sd[f"{p}layers.{i}.blocks.0.mlp.fc1.weight"].shape[0] / dims[-1]
    return dict(embed_dims=dims, depths=depths, num_heads=heads, window_sizes=windows,
                mlp_ratio=mlp_ratio, mbconv_expand_ratio=expand,
                num_classes=sd[f"{p}head.weight"].shape[0],
                out_chans=sd[f"{p}neck.0.weight"].shape[0])
