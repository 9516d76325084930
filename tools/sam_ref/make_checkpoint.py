"""Write a SAM checkpoint with random weights and exactly the official keys, shapes and order.

usage: /usr/bin/python3 tools/sam_ref/make_checkpoint.py --type vit_b|vit_l|vit_h|vit_t|tiny|demo
           [--depth N] [--global-attn 2,5,...] [--window W] [--img-size S] [--embed-dim C]
           [--heads H] [--patch-size P] [--mlp-dim M] [--prompt-dim D] [--decoder-mlp M]
           [--mask-in-chans C] [--iou-hidden H] --seed S --out FILE.pth

vit_b / vit_l / vit_h: the official architectures (build_sam.py); --depth N keeps widths and
heads and then needs --global-attn (block indexes with global attention).
vit_t: MobileSAM (build_sam_vit_t): the TinyViT image encoder (tiny_vit.py) with exactly the
keys and shapes of the published mobile_sam.pt, BatchNorm running statistics included (and
num_batches_tracked; attention_bias_idxs is not persistent, so not saved), and SAM's prompt
encoder and mask decoder. The encoder overrides below do not apply to it.
tiny: a small config of the same architecture for fast tests: img_size 256 (patch 16, grid
16), embed 96, depth 2, 2 heads (head_dim 48), window 4, global block [1]; the prompt encoder
and mask decoder are the official ones (prompt dim 256). Every field is overridable.
demo: the config of the shipped demo model (demo/models/sam_demo.safetensors, trained by
tools/train/train.py): img_size 256, patch 16 (grid 16, low-res masks 64x64), embed 160,
depth 6, 5 heads (head_dim 32), mlp 640, window 8, global blocks [2, 5]; prompt/decoder
width 128 (neck out_chans = prompt dim = transformer dim, IoU head hidden 128), mask_in_chans
16, decoder MLP 1024, cross-attention internal dim 64 (8 heads of 8).
--prompt-dim D sets the neck width, the prompt embedding and the decoder width together (and
the IoU head hidden width, unless --iou-hidden); D / 2 must divide by the 8 decoder heads.

Saved like the official files: torch.save(model.state_dict(), path) (zip format).

Random values (each tensor from its own generator seeded by (seed, key name), so a tensor's
values do not depend on which other tensors exist):
  Linear / Conv weights  N(0, gain / sqrt(fan_in)); gain 1, except the encoder's residual
                         branch outputs (attn.proj, mlp.lin2) with gain 1/sqrt(2) so the
                         residual stream grows slowly over 32 blocks.
  ConvTranspose weights  [in, out, k, k], fan_in = in (one tap per output pixel); a value
                         shared by the k x k taps plus 10% per-tap noise (smooth masks).
  biases                 N(0, 0.05)      (non-zero: every parameter matters)
  LayerNorm weight/bias  1 + N(0, 0.1) / N(0, 0.1)
  rel_pos_h / rel_pos_w  N(0, 0.1);  pos_embed N(0, 0.1)
  embeddings             N(0, 0.5) (tokens, point embeddings, no_mask_embed)
  PE gaussian matrix     N(0, 1) (the official buffer is torch.randn)
  BatchNorm (vit_t)      weight N(1, 0.2), bias N(0, 0.1), running_mean N(0, 0.2), running_var
                         0.5 + U(0, 1): far from the identity, so folding them is exercised
  attention_biases       N(0, 0.5) (vit_t)
  vit_t residual branch outputs (attn.proj, mlp.fc2, MBConv conv3) gain 1/sqrt(2) as above
  mask decoder           the hypernetwork output layers get gain 5, the last upscaling
                         ConvTranspose gain 2 and a bias of N(-0.8, 0.05), so its GELU outputs
                         are sparse and mask logits take both signs over the image (tuned over
                         seeds and prompts: ~70% of masks cover 5-95% of the image).
"""

import argparse
import sys
import zlib
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import OFFICIAL_CONFIGS, LayerNorm2d, SamConfig, build_sam  # noqa: E402
from tiny_vit import VIT_T  # noqa: E402

TINY = dict(img_size=256, patch_size=16, embed_dim=96, depth=2, num_heads=2, mlp_dim=384,
            window_size=4, global_attn_indexes=[1])
# The shipped demo model's config (tools/train/train.py trains it; keep the two in sync).
DEMO = dict(img_size=256, patch_size=16, embed_dim=160, depth=6, num_heads=5, mlp_dim=640,
            window_size=8, global_attn_indexes=[2, 5], out_chans=128, prompt_embed_dim=128,
            mask_in_chans=16, decoder_depth=2, decoder_heads=8, decoder_mlp_dim=1024,
            iou_head_hidden_dim=128)


def make_config(args) -> SamConfig:
    if args.type == "vit_t":
        return SamConfig(img_size=1024, patch_size=16, tinyvit=dict(VIT_T))
    if args.type == "tiny":
        base = dict(TINY)
    elif args.type == "demo":
        base = dict(DEMO)
    else:
        base = dict(OFFICIAL_CONFIGS[args.type])
    if args.depth is not None and args.depth != base["depth"]:
        if args.global_attn is None:
            sys.exit("--depth with a non-default value needs --global-attn")
        base["depth"] = args.depth
    if args.global_attn is not None:
        base["global_attn_indexes"] = [int(s) for s in args.global_attn.split(",") if s != ""]
    if args.window is not None:
        base["window_size"] = args.window
    if args.img_size is not None:
        base["img_size"] = args.img_size
    if args.embed_dim is not None:
        base["embed_dim"] = args.embed_dim
        base["mlp_dim"] = 4 * args.embed_dim
    if args.heads is not None:
        base["num_heads"] = args.heads
    if args.patch_size is not None:
        base["patch_size"] = args.patch_size
    if args.mlp_dim is not None:
        base["mlp_dim"] = args.mlp_dim
    if args.prompt_dim is not None:
        base["prompt_embed_dim"] = base["out_chans"] = args.prompt_dim
        base["iou_head_hidden_dim"] = args.prompt_dim
    if args.iou_hidden is not None:
        base["iou_head_hidden_dim"] = args.iou_hidden
    if args.decoder_mlp is not None:
        base["decoder_mlp_dim"] = args.decoder_mlp
    if args.mask_in_chans is not None:
        base["mask_in_chans"] = args.mask_in_chans
    cfg = SamConfig(**base)
    if (cfg.prompt_embed_dim // cfg.attention_downsample_rate) % cfg.decoder_heads or cfg.prompt_embed_dim % 8:
        sys.exit("--prompt-dim must be a multiple of 16 (8 decoder heads on half the width)")
    if cfg.mask_in_chans % 4:
        sys.exit("--mask-in-chans must be a multiple of 4")
    if any(i < 0 or i >= cfg.depth for i in cfg.global_attn_indexes):
        sys.exit(f"--global-attn indexes must be in [0, {cfg.depth})")
    if cfg.embed_dim % cfg.num_heads or cfg.img_size % cfg.patch_size:
        sys.exit("embed_dim must divide by heads and img_size by the patch size")
    return cfg


def _gen(seed: int, name: str) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))


def _normal(shape, mean: float, std: float, g: torch.Generator) -> torch.Tensor:
    return torch.randn(shape, generator=g) * std + mean


@torch.no_grad()
def randomize(model: nn.Module, seed: int) -> None:
    for mname, mod in model.named_modules():
        for pname, p in list(mod.named_parameters(recurse=False)) + list(mod.named_buffers(recurse=False)):
            full = f"{mname}.{pname}" if mname else pname
            if full in ("pixel_mean", "pixel_std") or pname in ("attention_bias_idxs", "num_batches_tracked"):
                continue
            g = _gen(seed, full)
            shape = p.shape
            if isinstance(mod, nn.BatchNorm2d):
                if pname == "running_var":
                    v = 0.5 + torch.rand(shape, generator=g)
                else:
                    mean, std = {"weight": (1.0, 0.2), "bias": (0.0, 0.1), "running_mean": (0.0, 0.2)}[pname]
                    v = _normal(shape, mean, std, g)
            elif pname == "attention_biases":
                v = _normal(shape, 0.0, 0.5, g)
            elif isinstance(mod, (nn.LayerNorm, LayerNorm2d)):
                v = _normal(shape, 1.0 if pname == "weight" else 0.0, 0.1, g)
            elif isinstance(mod, (nn.Linear, nn.Conv2d)) and pname == "weight":
                fan_in = shape[1] * (shape[2] * shape[3] if p.dim() == 4 else 1)
                gain = 1.0
                if full.startswith("image_encoder.blocks.") and (".attn.proj." in full or ".mlp.lin2." in full):
                    gain = 0.5 ** 0.5
                if full.startswith("image_encoder.layers.") and (
                        ".attn.proj." in full or ".mlp.fc2." in full or ".conv3.c." in full and ".blocks." in full):
                    gain = 0.5 ** 0.5
                if full.startswith("mask_decoder.output_hypernetworks_mlps.") and ".layers.2." in full:
                    gain = 5.0
                v = _normal(shape, 0.0, gain / fan_in ** 0.5, g)
            elif isinstance(mod, nn.ConvTranspose2d) and pname == "weight":
                # Mostly shared across the 2x2 taps (+ 10% per-tap noise): independent taps
                # would stamp a 4x4 checkerboard on every mask.
                std = (2.0 if full == "mask_decoder.output_upscaling.3.weight" else 1.0) / shape[0] ** 0.5
                shared = _normal((shape[0], shape[1], 1, 1), 0.0, std, g)
                v = shared + _normal(shape, 0.0, 0.1 * std, g)
            elif pname == "bias":
                mean = -0.8 if full == "mask_decoder.output_upscaling.3.bias" else 0.0
                v = _normal(shape, mean, 0.05, g)
            elif isinstance(mod, nn.Embedding):
                v = _normal(shape, 0.0, 0.5, g)
            elif pname in ("rel_pos_h", "rel_pos_w", "pos_embed"):
                v = _normal(shape, 0.0, 0.1, g)
            elif pname == "positional_encoding_gaussian_matrix":
                v = _normal(shape, 0.0, 1.0, g)
            else:
                raise RuntimeError(f"no init rule for {full}")
            p.copy_(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--type", required=True, choices=["vit_b", "vit_l", "vit_h", "vit_t", "tiny", "demo"])
    ap.add_argument("--depth", type=int)
    ap.add_argument("--global-attn", help="comma-separated block indexes with global attention")
    ap.add_argument("--window", type=int, help="window size of the windowed blocks")
    ap.add_argument("--img-size", type=int, help="input size (multiple of 16)")
    ap.add_argument("--embed-dim", type=int, help="encoder width (mlp = 4x)")
    ap.add_argument("--heads", type=int, help="encoder heads")
    ap.add_argument("--patch-size", type=int, help="patch size (img_size must divide by it)")
    ap.add_argument("--mlp-dim", type=int, help="encoder MLP width (after --embed-dim's 4x)")
    ap.add_argument("--prompt-dim", type=int, help="neck / prompt / decoder width (official 256)")
    ap.add_argument("--decoder-mlp", type=int, help="two-way transformer MLP width (official 2048)")
    ap.add_argument("--mask-in-chans", type=int, help="mask prompt conv width (official 16)")
    ap.add_argument("--iou-hidden", type=int, help="IoU head hidden width (default: prompt dim)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    cfg = make_config(args)
    model = build_sam(cfg)
    randomize(model, args.seed)
    torch.save(model.state_dict(), args.out)


if __name__ == "__main__":
    main()
