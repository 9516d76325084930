"""Train (or fine-tune) a SAM with the recipe of the SAM paper, on top of tools/sam_ref/model.py.

Two modes, one script:

  from scratch on procedural scenes (scenes.py), the shipped demo model:
    nice -n 10 /usr/bin/python3 tools/train/train.py --out /tmp/train --minutes 55

  fine-tune a checkpoint (official .pth or one of ours) on a folder of images and masks:
    /usr/bin/python3 tools/train/train.py --init sam_vit_b_01ec64.pth --data DIR \
        --out /tmp/ft --steps 500 [--freeze-encoder] [--img-size 512]
    DIR/images/<name>.png and DIR/masks/<name>_<k>.png (0 = background, >0 = object; any
    number of masks per image; nested masks are fine)

Recipe (SAM paper, section 3 and appendix A):
  - mask loss 20 * focal (alpha 0.25, gamma 2) + 1 * dice, on logits upsampled to the input
    size; IoU head trained with MSE against the actual IoU of each predicted mask;
  - a single point prompt uses the 3 multimask outputs and only the output with the lowest
    loss gets the mask-loss gradient; boxes and several points use the single output token;
  - interactive rounds per target (sampled 1..--max-rounds per step, the paper uses 11): the
    first prompt is a uniformly sampled foreground point or a noisy box (std 10% of the side,
    at most 20 px); each later round adds a point sampled uniformly from the error region of
    the previous prediction (positive on false negatives, negative on false positives) and
    feeds the previous low-res logits back as the mask prompt; some rounds add no point
    (mask prompt alone). Prompts and masks are detached between rounds.
  - AdamW, linear warmup, cosine decay; batches of several scenes with several targets
    each (targets are wholes, parts and sub-parts).

Reproducible: scene seeds and prompt randomness come from (--seed, step); torch is seeded.
Resumable: --resume FILE continues from a checkpoint written every --save-every seconds
(OUT/last.pt; OUT/best.pt is the best on a held-out validation set, OUT/best_sam.pth its
plain state_dict, ready for `build/sam convert`).

Output checkpoints have the official key names and layout (torch.save(state_dict)).
"""

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

# Sleeping (not spinning) OpenMP workers: on a shared 2-core machine spinning threads made
# steps up to 20x slower whenever another process ran. Must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "sam_ref"))
sys.path.insert(0, str(HERE))
from model import (PIXEL_MEAN, PIXEL_STD, DecoderAttention, SamConfig, build_sam,  # noqa: E402
                   config_from_state_dict)

QK_GAIN = 1.5
import scenes  # noqa: E402

from make_checkpoint import DEMO as DEMO_CONFIG  # noqa: E402  the shipped demo model's config

MEAN = torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(PIXEL_STD).view(1, 3, 1, 1)


# ----------------------------------------------------------------------------------------------
# data


def resize_longest(img: np.ndarray, masks, size: int):
    """PIL bilinear resize to longest side `size` (what the runtime does to images); masks are
    resized the same way and thresholded at 0.5."""
    from PIL import Image

    h, w = img.shape[:2]
    s = size / max(h, w)
    nh, nw = int(h * s + 0.5), int(w * s + 0.5)
    if (nh, nw) == (h, w):
        return img, masks
    im = np.asarray(Image.fromarray(img).resize((nw, nh), Image.BILINEAR))
    out = []
    for m in masks:
        mm = np.asarray(Image.fromarray(m.astype(np.float32)).resize((nw, nh), Image.BILINEAR))
        out.append(mm > 0.5)
    return im, out


def synthetic_sample(seed: int, size: int, rng: np.random.Generator):
    """One training image (longest side == size) and its targets: a list of (mask, level)."""
    aspect = rng.uniform(0.55, 1.0)
    upscale = 1.0 if rng.random() < 0.6 else rng.uniform(1.3, 2.6)
    long = int(size * upscale)
    short = int(long * aspect)
    w, h = (long, short) if rng.random() < 0.6 else (short, long)
    sc = scenes.make_scene(seed, w, h)
    flat, levels = [], []
    for inst in sc.instances:
        for lvl, m in enumerate(inst):
            flat.append(m)
            levels.append(lvl)
    img, flat = resize_longest(sc.image, flat, size)
    targets = [(m, l) for m, l in zip(flat, levels) if m.sum() >= 6]
    return img, targets


class FolderData:
    """DIR/images/<name>.png + DIR/masks/<name>_<k>.png."""

    def __init__(self, root: str, size: int):
        from PIL import Image

        root = Path(root)
        self.items = []
        for ip in sorted((root / "images").glob("*.png")):
            img = np.asarray(Image.open(ip).convert("RGB"))
            masks = []
            for mp in sorted((root / "masks").glob(f"{ip.stem}_*.png")):
                if not mp.stem[len(ip.stem) + 1:].isdigit():
                    continue
                m = np.asarray(Image.open(mp).convert("L")) > 0
                if m.shape != img.shape[:2]:
                    sys.exit(f"{mp}: mask size {m.shape} != image size {img.shape[:2]}")
                masks.append(m)
            img, masks = resize_longest(img, masks, size)
            targets = [(m, 0) for m in masks if m.sum() >= 6]
            if targets:
                self.items.append((img, targets))
        if not self.items:
            sys.exit(f"no image with masks under {root} (images/*.png, masks/<name>_<k>.png)")

    def sample(self, rng):
        return self.items[int(rng.integers(len(self.items)))]


def to_input(img: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (h, w, 3) -> normalised (1, 3, size, size), zero-padded right/bottom."""
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()
    x = (x - MEAN) / STD
    h, w = img.shape[:2]
    return F.pad(x, (0, size - w, 0, size - h))


def pad_mask(m: np.ndarray, size: int) -> torch.Tensor:
    out = torch.zeros(size, size)
    out[: m.shape[0], : m.shape[1]] = torch.from_numpy(m.astype(np.float32))
    return out


# ----------------------------------------------------------------------------------------------
# model helpers


def decode(sam, emb, sparse, dense):
    """MaskDecoder.predict_masks for a batch of (embedding, prompt) pairs: emb is (T, C, h, w)
    (one embedding per target, unlike the official single-image batching). Returns all
    mask-token logits (T, M, 4h, 4w) and IoU predictions (T, M)."""
    md = sam.mask_decoder
    t = sparse.shape[0]
    out_tokens = torch.cat([md.iou_token.weight, md.mask_tokens.weight], dim=0)
    tokens = torch.cat((out_tokens.unsqueeze(0).expand(t, -1, -1), sparse), dim=1)
    src = emb + dense
    pe = sam.prompt_encoder.get_dense_pe()
    pos_src = pe.expand(t, -1, -1, -1)
    b, c, h, w = src.shape
    hs, src = md.transformer(src, pos_src, tokens)
    iou_tok = hs[:, 0, :]
    mask_toks = hs[:, 1:(1 + md.num_mask_tokens), :]
    src = src.transpose(1, 2).reshape(b, c, h, w)
    up = md.output_upscaling(src)
    hyper = torch.stack([md.output_hypernetworks_mlps[i](mask_toks[:, i, :])
                         for i in range(md.num_mask_tokens)], dim=1)
    b, c, h, w = up.shape
    masks = (hyper @ up.view(b, c, h * w)).view(b, -1, h, w)
    return masks, md.iou_prediction_head(iou_tok)


def focal_loss(logits, gt, alpha=0.25, gamma=2.0):
    """Per-mask mean sigmoid focal loss. logits (T, M, H, W), gt (T, 1, H, W)."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, gt.expand_as(logits), reduction="none")
    pt = p * gt + (1 - p) * (1 - gt)
    loss = ce * (1 - pt) ** gamma
    loss = (alpha * gt + (1 - alpha) * (1 - gt)) * loss
    return loss.flatten(2).mean(-1)


def dice_loss(logits, gt):
    p = torch.sigmoid(logits).flatten(2)
    g = gt.flatten(2)
    num = 2 * (p * g).sum(-1) + 1
    den = p.sum(-1) + g.sum(-1) + 1
    return 1 - num / den


def resize_model(sd, cfg: SamConfig, img_size: int):
    """Change the input size of a checkpoint: pos_embed resized bicubically to the new grid,
    the global blocks' rel-pos tables linearly (as the official get_rel_pos would)."""
    g_old, g_new = cfg.grid, img_size // cfg.patch_size
    if g_old == g_new:
        return sd
    sd = dict(sd)
    pe = sd["image_encoder.pos_embed"].permute(0, 3, 1, 2)
    sd["image_encoder.pos_embed"] = F.interpolate(
        pe, (g_new, g_new), mode="bicubic", align_corners=False).permute(0, 2, 3, 1).contiguous()
    for i in cfg.global_attn_indexes:
        for k in ("rel_pos_h", "rel_pos_w"):
            key = f"image_encoder.blocks.{i}.attn.{k}"
            r = sd[key]
            sd[key] = F.interpolate(r.t()[None], size=2 * g_new - 1, mode="linear",
                                    align_corners=False)[0].t().contiguous()
    return sd


# ----------------------------------------------------------------------------------------------
# prompts


def sample_points(weights: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One pixel per row of weights (T, H, W) drawn uniformly where weights > 0 -> (T, 2) x,y."""
    t, h, w = weights.shape
    flat = weights.reshape(t, -1).clone()
    empty = flat.sum(-1) == 0
    flat[empty] = 1.0
    idx = torch.multinomial(flat, 1, generator=gen)[:, 0]
    return torch.stack([idx % w, idx // w], dim=-1).float()


def noisy_boxes(gt: torch.Tensor, gen: torch.Generator, size: int) -> torch.Tensor:
    """GT boxes (x0, y0, x1, y1), each coordinate + N(0, 0.1 * side), noise capped at 20 px."""
    t = gt.shape[0]
    boxes = torch.zeros(t, 4)
    for i in range(t):
        ys, xs = torch.nonzero(gt[i], as_tuple=True)
        boxes[i] = torch.tensor([xs.min(), ys.min(), xs.max(), ys.max()], dtype=torch.float)
    side = torch.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], -1).repeat(1, 2)
    noise = torch.randn(t, 4, generator=gen) * 0.1 * side.clamp(min=1)
    boxes = boxes + noise.clamp(-20, 20)
    return boxes.clamp(0, size - 1)


# ----------------------------------------------------------------------------------------------
# one training step


def interactive_loss(sam, emb, gt, first_box, n_rounds, gen, size, mask_only_p=0.2, focal_w=20.0):
    """Runs n_rounds of interactive prompting for targets gt (T, S, S) on embeddings emb
    (T, C, h, w); returns (loss, stats). first_box: bool tensor (T,), box first prompt."""
    pe_enc = sam.prompt_encoder
    total = 0.0
    stats = {"mask": 0.0, "iou": 0.0, "iou_first": None, "iou_last": None}
    groups = [torch.nonzero(~first_box)[:, 0], torch.nonzero(first_box)[:, 0]]
    n_loss = 0
    for gi, idx in enumerate(groups):
        if len(idx) == 0:
            continue
        g = gt[idx]                    # (t, S, S)
        e = emb[idx]
        is_box = gi == 1
        g4 = g[:, None]
        pts = sample_points(g, gen)[:, None, :] if not is_box else torch.zeros(len(idx), 0, 2)
        lbl = torch.ones(len(idx), 1) if not is_box else torch.zeros(len(idx), 0)
        boxes = noisy_boxes(g, gen, size) if is_box else None
        prev_low = None
        for r in range(n_rounds):
            if r > 0:
                add_point = torch.rand(1, generator=gen).item() >= mask_only_p
                if add_point:
                    err_fn = (g > 0.5) & ~prev_bin
                    err_fp = (g < 0.5) & prev_bin
                    p = sample_points((err_fn | err_fp).float(), gen)
                    xi, yi = p[:, 0].long(), p[:, 1].long()
                    lab = g[torch.arange(len(idx)), yi, xi]
                    pts = torch.cat([pts, p[:, None, :]], 1)
                    lbl = torch.cat([lbl, lab[:, None]], 1)
            # the official notebook's rule (and the CLI default): multimask for one point
            # alone; the single-output token for boxes, several points or a mask prompt
            multimask = (not is_box) and pts.shape[1] == 1 and prev_low is None
            points = (pts, lbl) if pts.shape[1] > 0 else None
            sparse, dense = pe_enc(points, boxes, prev_low)
            masks, iou_pred = decode(sam, e, sparse, dense)
            sel = slice(1, None) if multimask else slice(0, 1)
            low = masks[:, sel]
            iou_pred = iou_pred[:, sel]
            up = F.interpolate(low, (size, size), mode="bilinear", align_corners=False)
            per = focal_w * focal_loss(up, g4) + dice_loss(up, g4)     # (t, m)
            best = per.argmin(1)
            ar = torch.arange(len(idx))
            mask_loss = per[ar, best].mean()
            with torch.no_grad():
                pb = up > 0
                inter = (pb & (g4 > 0.5)).flatten(2).sum(-1).float()
                union = (pb | (g4 > 0.5)).flatten(2).sum(-1).float()
                iou = inter / union.clamp(min=1)
            iou_loss = F.mse_loss(iou_pred, iou)
            total = total + mask_loss + iou_loss
            n_loss += 1
            stats["mask"] += mask_loss.item()
            stats["iou"] += iou_loss.item()
            it = iou[ar, best].mean().item()
            if r == 0:
                stats["iou_first"] = (stats["iou_first"] or 0) + it * len(idx)
            if r == n_rounds - 1:
                stats["iou_last"] = (stats["iou_last"] or 0) + it * len(idx)
            prev_low = low[ar, best][:, None].detach()
            prev_bin = up[ar, best].detach() > 0
    t = gt.shape[0]
    stats["mask"] /= n_loss
    stats["iou"] /= n_loss
    stats["iou_first"] /= t
    stats["iou_last"] /= t
    return total / n_loss, stats


# ----------------------------------------------------------------------------------------------
# validation (PyTorch, quick; the real evaluation goes through the C runtime: evaluate.py)


@torch.no_grad()
def validate(sam, size, n_scenes=24, seed0=scenes.HELDOUT_SEED_BASE + 500_000):
    """1-click best-of-3 IoU (click at the deepest interior point) and box IoU on whole
    objects of held-out scenes."""
    sam.eval()
    one, box = [], []
    for s in range(n_scenes):
        rng = np.random.default_rng(s)
        sc = scenes.make_scene(seed0 + s, 320, 240)
        wholes = [inst[0] for inst in sc.instances]
        img, wholes = resize_longest(sc.image, wholes, size)
        emb = sam.image_encoder(to_input(img, size))
        for m in wholes:
            if m.sum() < 6:
                continue
            g = pad_mask(m, size)
            ys, xs = np.nonzero(deepest(m))
            pt = torch.tensor([[[float(xs[0]), float(ys[0])]]])
            sp, de = sam.prompt_encoder((pt, torch.ones(1, 1)), None, None)
            lm, _ = decode(sam, emb, sp, de)
            up = F.interpolate(lm[:, 1:], (size, size), mode="bilinear", align_corners=False)[0] > 0
            one.append(max(_iou(u, g > 0.5) for u in up))
            yy, xx = np.nonzero(m)
            bx = torch.tensor([[xx.min(), yy.min(), xx.max(), yy.max()]], dtype=torch.float)
            sp, de = sam.prompt_encoder(None, bx, None)
            lm, _ = decode(sam, emb, sp, de)
            up = F.interpolate(lm[:, :1], (size, size), mode="bilinear", align_corners=False)[0, 0] > 0
            box.append(_iou(up, g > 0.5))
    return float(np.mean(one)), float(np.mean(box))


def _iou(a, b):
    u = (a | b).sum().item()
    return (a & b).sum().item() / u if u else 1.0


def deepest(m: np.ndarray) -> np.ndarray:
    """A one-pixel mask at the point of m farthest from its boundary (iterated 3x3 erosion;
    the last pixel standing, first in raster order)."""
    cur = m.astype(bool)
    while True:
        p = np.pad(cur, 1)
        nxt = (cur & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:])
        if not nxt.any():
            break
        cur = nxt
    ys, xs = np.nonzero(cur)
    # of the last ring, the pixel nearest the centroid of the ring (a stable choice)
    cy, cx = ys.mean(), xs.mean()
    i = int(np.argmin((ys - cy) ** 2 + (xs - cx) ** 2))
    out = np.zeros_like(cur)
    out[ys[i], xs[i]] = True
    return out


# ----------------------------------------------------------------------------------------------
# main


def lr_at(step, total, base, warmup):
    if step < warmup:
        return base * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


def fmt_time(s):
    s = int(max(0, s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (last.pt, best.pt, best_sam.pth, final_sam.pth)")
    ap.add_argument("--init", help="start from this checkpoint (.pth state_dict, official layout)")
    ap.add_argument("--data", help="fine-tune on DIR/images/*.png + DIR/masks/<name>_<k>.png")
    ap.add_argument("--resume", help="continue from OUT/last.pt (or the given file)")
    ap.add_argument("--img-size", type=int, help="input size (resizes --init's pos_embed/rel-pos)")
    ap.add_argument("--patch-size", type=int, help="from-scratch only: patch size (default 16)")
    ap.add_argument("--embed-dim", type=int, help="from-scratch only: encoder width")
    ap.add_argument("--depth", type=int, help="from-scratch only: encoder depth")
    ap.add_argument("--freeze-encoder", action="store_true", help="train prompt encoder + decoder only")
    ap.add_argument("--steps", type=int, help="total steps (default: estimated from --minutes)")
    ap.add_argument("--minutes", type=float, default=60.0, help="time budget (stops cleanly)")
    ap.add_argument("--batch", type=int, default=4, help="images per step")
    ap.add_argument("--targets", type=int, default=4, help="targets (masks) per image")
    ap.add_argument("--max-rounds", type=int, default=4, help="interactive rounds per step: 1..N")
    ap.add_argument("--lr", type=float, default=8e-4)
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--save-every", type=float, default=120.0, help="seconds between last.pt saves")
    ap.add_argument("--val-every", type=float, default=300.0, help="seconds between validations (0: never)")
    ap.add_argument("--val-scenes", type=int, default=24)
    ap.add_argument("--log-json", help="append one JSON line per step (loss, lr, ...) here")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # model
    if args.init:
        sd = torch.load(args.init, map_location="cpu")
        if isinstance(sd, dict) and "model" in sd and not any(k.startswith("image_encoder") for k in sd):
            sd = sd["model"]
        cfg = config_from_state_dict(sd)
        if args.img_size and args.img_size != cfg.img_size:
            sd = resize_model(sd, cfg, args.img_size)
            cfg.img_size = args.img_size
        sam = build_sam(cfg)
        sam.load_state_dict(sd, strict=True)
    else:
        c = dict(DEMO_CONFIG)
        if args.img_size:
            c["img_size"] = args.img_size
        if args.patch_size:
            c["patch_size"] = args.patch_size
        if args.embed_dim:
            c["embed_dim"], c["mlp_dim"] = args.embed_dim, 4 * args.embed_dim
            c["num_heads"] = args.embed_dim // 32
        if args.depth:
            c["depth"] = args.depth
            c["global_attn_indexes"] = [i for i in c["global_attn_indexes"] if i < args.depth] or [args.depth - 1]
        cfg = SamConfig(**c)
        sam = build_sam(cfg)
        _init_weights(sam)
    size = cfg.img_size
    sam.train()
    if args.freeze_encoder:
        for p in sam.image_encoder.parameters():
            p.requires_grad_(False)
    params = [p for p in sam.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    n_params = sum(p.numel() for p in sam.state_dict().values())

    step, best, total_steps, elapsed0 = 0, -1.0, args.steps, 0.0
    if args.resume:
        rp = Path(args.resume)
        if rp.is_dir():
            rp = rp / "last.pt"
        ck = torch.load(rp, map_location="cpu")
        sam.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, best, total_steps, elapsed0 = ck["step"], ck["best"], ck["total_steps"], ck.get("elapsed", 0.0)
        torch.set_rng_state(ck["torch_rng"])
        print(f"resumed from {rp} at step {step}", file=sys.stderr)

    data = FolderData(args.data, size) if args.data else None
    print(f"config {json.dumps(cfg.__dict__)} params {n_params}", file=sys.stderr)

    def save(path, extra=None):
        ck = {"model": sam.state_dict(), "opt": opt.state_dict(), "step": step, "best": best,
              "total_steps": total_steps, "config": cfg.__dict__, "torch_rng": torch.get_rng_state(),
              "elapsed": elapsed0 + time.time() - t0}
        if extra:
            ck.update(extra)
        tmp = str(path) + ".tmp"
        torch.save(ck, tmp)
        os.replace(tmp, path)

    t0 = time.time()
    last_save = last_val = t0
    budget = args.minutes * 60 - elapsed0
    ema = None
    first_losses, losses = [], []
    frozen_cache = {}
    logf = open(args.log_json, "a") if args.log_json else None
    while True:
        if total_steps is not None and step >= total_steps:
            break
        if time.time() - t0 > budget:
            print("\ntime budget reached", file=sys.stderr)
            break
        ts = time.time()
        rng = np.random.default_rng([args.seed, step])
        gen = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
        imgs, gts, owners = [], [], []
        for b in range(args.batch):
            if data:
                img, targets = data.sample(rng)
            else:
                img, targets = synthetic_sample(
                    scenes.TRAIN_SEED_BASE + (args.seed * 10_000_000 + step * args.batch + b) % 900_000_000,
                    size, rng)
            if not targets:
                continue
            # prefer wholes a little, sample without replacement
            wts = np.array([1.5 if l == 0 else 1.0 for _, l in targets])
            k = min(args.targets, len(targets))
            pick = rng.choice(len(targets), k, replace=False, p=wts / wts.sum())
            bi = len(imgs)
            imgs.append(img)
            for j in pick:
                gts.append(pad_mask(targets[j][0], size))
                owners.append(bi)
        x = torch.cat([to_input(im, size) for im in imgs])
        if args.freeze_encoder:
            with torch.no_grad():
                key = tuple(id(im) for im in imgs)
                emb = frozen_cache.get(key) if data else None
                if emb is None:
                    emb = sam.image_encoder(x)
                    if data and len(frozen_cache) < 64:
                        frozen_cache[key] = emb
        else:
            emb = sam.image_encoder(x)
        emb_t = emb[torch.tensor(owners)]
        gt = torch.stack(gts)
        first_box = torch.rand(len(gts), generator=gen) < 0.5
        n_rounds = int(torch.randint(1, args.max_rounds + 1, (1,), generator=gen).item())
        loss, st = interactive_loss(sam, emb_t, gt, first_box, n_rounds, gen, size)
        if args.steps:
            lr = lr_at(step, args.steps, args.lr, args.warmup)
        else:
            # time budget: the cosine follows the elapsed fraction of the budget, so the
            # schedule ends when the time does, however fast the machine is at the moment
            frac = (elapsed0 + time.time() - t0) / (args.minutes * 60)
            lr = lr_at(max(step, args.warmup + int(frac * 100000)), args.warmup + 100000, args.lr, args.warmup) \
                if step >= args.warmup else lr_at(step, 10 ** 9, args.lr, args.warmup)
        for gparam in opt.param_groups:
            gparam["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        dt = time.time() - ts
        lv = loss.item()
        losses.append(lv)
        if step <= 5:
            first_losses.append(lv)
        ema = lv if ema is None else 0.98 * ema + 0.02 * lv
        tot = total_steps or 0
        el = time.time() - t0
        eta = (tot - step) * el / step if tot else budget - el
        bar_n = int(30 * step / tot) if tot else min(30, int(30 * (elapsed0 + el) / (args.minutes * 60)))
        print(f"\r[{'#' * bar_n}{'.' * (30 - bar_n)}] {step}/{tot or '?'} loss {lv:.3f} (ema {ema:.3f}) "
              f"iou1 {st['iou_first']:.2f} iouN {st['iou_last']:.2f} r{n_rounds} lr {lr:.2e} "
              f"{dt:.2f}s/it ETA {fmt_time(eta)}   ", end="", file=sys.stderr, flush=True)
        if step % 50 == 0:
            print("", file=sys.stderr, flush=True)
        if logf:
            logf.write(json.dumps({"step": step, "loss": lv, "lr": lr, "rounds": n_rounds, **st}) + "\n")
            logf.flush()
        now = time.time()
        if args.val_every and now - last_val > args.val_every and not data:
            v1, vb = validate(sam, size, args.val_scenes)
            sam.train()
            score = v1 + vb
            print(f"\nval step {step}: 1-click best-of-3 {v1:.3f} box {vb:.3f}", file=sys.stderr, flush=True)
            if score > best:
                best = score
                save(out / "best.pt", {"val": [v1, vb]})
                torch.save(sam.state_dict(), out / "best_sam.pth")
            last_val = time.time()
        if now - last_save > args.save_every:
            save(out / "last.pt")
            last_save = time.time()
    save(out / "last.pt")
    torch.save(sam.state_dict(), out / "final_sam.pth")
    summary = {"steps": step, "first_loss": float(np.mean(first_losses)) if first_losses else None,
               "last_loss": float(np.mean(losses[-5:])) if losses else None,
               "seconds": time.time() - t0, "params": n_params}
    if not data and args.val_every:
        v1, vb = validate(sam, size, args.val_scenes)
        summary["val"] = [v1, vb]
        if v1 + vb > best:
            best = v1 + vb
            save(out / "best.pt", {"val": [v1, vb]})
            torch.save(sam.state_dict(), out / "best_sam.pth")
    if not (out / "best_sam.pth").exists() or data:
        torch.save(sam.state_dict(), out / "best_sam.pth")
    print("\n" + json.dumps(summary), flush=True)


def _init_weights(sam):
    """From-scratch init: trunc-normal 0.02 for Linear/Conv (ViT style), pos_embed 0.02,
    rel-pos 0, LayerNorm 1/0, embeddings N(0, 1)."""
    import torch.nn as nn

    for name, m in sam.named_modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    # 2D sin-cos absolute position embedding (as MAE), trainable: with a tiny random pos_embed
    # the image embedding carries almost no position and masks stay empty for many steps
    pe = sam.image_encoder.pos_embed
    g, c = pe.shape[1], pe.shape[3]
    q = c // 4
    omega = 1.0 / (10000 ** (torch.arange(q, dtype=torch.float32) / q))
    ys, xs = torch.meshgrid(torch.arange(g, dtype=torch.float32), torch.arange(g, dtype=torch.float32), indexing="ij")
    oy, ox = ys.reshape(-1, 1) * omega, xs.reshape(-1, 1) * omega
    table = torch.cat([torch.sin(ox), torch.cos(ox), torch.sin(oy), torch.cos(oy)], 1)
    with torch.no_grad():
        pe.zero_()
        pe[0, :, :, : 4 * q] = table.reshape(g, g, 4 * q)
    # the decoder's hypernetwork/upscaling path: default PyTorch init trains faster there
    for m in sam.mask_decoder.modules():
        if isinstance(m, (nn.Linear, nn.ConvTranspose2d, nn.Conv2d)):
            m.reset_parameters()
    for m in sam.prompt_encoder.mask_downscaling.modules():
        if isinstance(m, nn.Conv2d):
            m.reset_parameters()
    # Decoder attention: q_proj and k_proj start equal (N(0, qk_gain^2 / dim)), so q.k starts
    # as a scaled dot product of the inputs: the point PE . image PE kernel (a bump around the
    # point) is there from step 0 instead of being learnt from two independent projections.
    # From scratch this shortens the initial plateau (all masks empty) a lot.
    for m in sam.mask_decoder.modules():
        if isinstance(m, DecoderAttention):
            with torch.no_grad():
                nn.init.normal_(m.q_proj.weight, std=QK_GAIN / m.embedding_dim ** 0.5)
                m.k_proj.weight.copy_(m.q_proj.weight)


if __name__ == "__main__":
    main()
