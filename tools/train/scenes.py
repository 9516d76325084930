"""Procedural scenes with exact ground-truth masks, for training and evaluating a small SAM.

    from scenes import make_scene
    s = make_scene(seed, width, height)
    s.image        (H, W, 3) uint8
    s.instances    list of instances, in painting order; each a list of nested bool masks
                   [whole, part, sub-part] (1 to 3 levels; every level is the *visible* region,
                   after occlusion by later objects; part is inside whole, sub-part inside part)
    s.kinds        the shape kind of each instance ('ellipse', 'polygon', 'star', 'rrect',
                   'blob', 'thin', 'small')

Everything is numpy and deterministic from the seed (numpy Generator PCG64). Training uses
seeds from TRAIN_SEED_BASE up; held-out scenes (evaluation, the demo sample, the regression
test) use seeds from HELDOUT_SEED_BASE, a range training never reaches.

What a scene has: a background that is a linear gradient, low-frequency noise, stripes or a
checker (low contrast, plus pixel noise); 2-8 objects of the kinds above, each filled with a
colour and a texture (flat, stripes, noise, checker) and shaded (linear light or radial
darkening); some objects have a distinct part of another colour (a disc, polygon or band
clipped to the object), and some parts have a sub-part, so that a click is ambiguous between
sub-part, part and whole. Later objects occlude earlier ones. Thin rods and small objects are
included on purpose. ~1-3 ms per 256x256 scene.

CLI: python3 scenes.py --seed S [--size WxH] --out IMG.png [--masks-dir DIR]
writes the image (and DIR/<stem>_<k>.png for every mask, the fine-tuning folder layout).
"""

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import List

import numpy as np

TRAIN_SEED_BASE = 0
HELDOUT_SEED_BASE = 1_000_000_000

KINDS = ["ellipse", "polygon", "star", "rrect", "blob", "thin", "small"]
KIND_P = np.array([0.18, 0.16, 0.12, 0.16, 0.18, 0.10, 0.10])


@dataclass
class Scene:
    image: np.ndarray
    instances: List[List[np.ndarray]] = field(default_factory=list)
    kinds: List[str] = field(default_factory=list)


def _smooth_noise(rng, h, w, cell):
    """Bilinearly interpolated value noise in [0, 1], features of about `cell` pixels."""
    gh, gw = h // cell + 2, w // cell + 2
    g = rng.random((gh, gw)).astype(np.float32)
    ys = np.arange(h, dtype=np.float32) / cell
    xs = np.arange(w, dtype=np.float32) / cell
    y0, x0 = ys.astype(np.int32), xs.astype(np.int32)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    a = g[y0][:, x0]
    b = g[y0][:, x0 + 1]
    c = g[y0 + 1][:, x0]
    d = g[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def _rand_colour(rng, avoid=None):
    for _ in range(8):
        c = rng.random(3).astype(np.float32) * 255
        if avoid is None or np.abs(c - avoid).sum() > 90:
            return c
    return c


def _texture(rng, h, w, base, strength):
    """(h, w, 3) float texture around colour `base`."""
    kind = rng.choice(["flat", "stripes", "noise", "checker"], p=[0.35, 0.25, 0.25, 0.15])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "flat":
        t = np.zeros((h, w), np.float32)
    elif kind == "stripes":
        a = rng.random() * math.pi
        period = rng.uniform(4, 24)
        t = np.sin((xx * math.cos(a) + yy * math.sin(a)) * 2 * math.pi / period)
        if rng.random() < 0.5:
            t = np.sign(t)
    elif kind == "noise":
        t = _smooth_noise(rng, h, w, int(rng.integers(3, 16))) * 2 - 1
    else:
        s = int(rng.integers(3, 14))
        t = (((xx // s) + (yy // s)) % 2) * 2 - 1
    second = _rand_colour(rng)
    mix = (t * 0.5 + 0.5)[..., None] * strength
    return base[None, None, :] * (1 - mix) + second[None, None, :] * mix


def _background(rng, h, w):
    kind = rng.choice(["gradient", "noise", "stripes", "checker"], p=[0.4, 0.3, 0.15, 0.15])
    c0, c1 = _rand_colour(rng), _rand_colour(rng)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "gradient":
        a = rng.random() * 2 * math.pi
        t = xx * math.cos(a) + yy * math.sin(a)
        t = (t - t.min()) / max(1e-6, t.max() - t.min())
    elif kind == "noise":
        t = _smooth_noise(rng, h, w, int(rng.integers(8, 48)))
    elif kind == "stripes":
        a = rng.random() * math.pi
        t = 0.5 + 0.5 * np.sin((xx * math.cos(a) + yy * math.sin(a)) * 2 * math.pi / rng.uniform(10, 60))
    else:
        s = int(rng.integers(8, 40))
        t = (((xx // s) + (yy // s)) % 2).astype(np.float32)
    contrast = rng.uniform(0.15, 0.6) if kind in ("stripes", "checker") else rng.uniform(0.3, 1.0)
    t = t[..., None] * contrast
    return c0 * (1 - t) + c1 * t


def _radial_shape(rng, kind, X, Y, r, scale):
    """Boolean mask on the local grid (X, Y centred at the object centre, rotated); scale is
    the scene's size over 256, which every size follows."""
    ang = np.arctan2(Y, X)
    rad = np.sqrt(X * X + Y * Y)
    if kind == "ellipse" or kind == "small":
        ax = rng.uniform(0.5, 1.0)
        return (X / r) ** 2 + (Y / (r * ax)) ** 2 <= 1
    if kind == "polygon":
        n = int(rng.integers(3, 9))
        # irregular polygon: random radii at sorted random angles, point-in-polygon by the
        # radial function interpolated between vertices (star-shaped, so exact enough)
        if rng.random() < 0.5:  # regular
            sector = 2 * math.pi / n
            th = np.mod(ang, sector) - sector / 2
            return rad <= r * math.cos(math.pi / n) / np.cos(th)
        angles = np.sort(rng.uniform(0, 2 * math.pi, n))
        radii = r * rng.uniform(0.6, 1.0, n)
        return _polygon_mask(X, Y, np.cos(angles) * radii, np.sin(angles) * radii)
    if kind == "star":
        n = int(rng.integers(4, 8))
        inner = rng.uniform(0.35, 0.6)
        ang_o = np.linspace(0, 2 * math.pi, n, endpoint=False)
        ang_i = ang_o + math.pi / n
        a = np.empty(2 * n)
        a[0::2], a[1::2] = ang_o, ang_i
        rr = np.empty(2 * n)
        rr[0::2], rr[1::2] = r, r * inner
        return _polygon_mask(X, Y, np.cos(a) * rr, np.sin(a) * rr)
    if kind == "rrect":
        hw, hh = r, r * rng.uniform(0.4, 1.0)
        cr = min(hw, hh) * rng.uniform(0.0, 0.6)
        dx = np.maximum(np.abs(X) - (hw - cr), 0)
        dy = np.maximum(np.abs(Y) - (hh - cr), 0)
        return (np.abs(X) <= hw) & (np.abs(Y) <= hh) & (dx * dx + dy * dy <= cr * cr + 1e-6)
    if kind == "blob":
        f = np.ones_like(ang)
        for k in range(2, 6):
            f += rng.uniform(0, 0.35 / k * 2) * np.cos(k * ang + rng.uniform(0, 2 * math.pi))
        return rad <= r * f / 1.35
    if kind == "thin":
        hw = r
        hh = rng.uniform(1.0, 3.0) * scale
        return (np.abs(X) <= hw) & (np.abs(Y) <= hh)
    raise ValueError(kind)


def _polygon_mask(X, Y, px, py):
    """Even-odd point-in-polygon, vectorised over the grid."""
    inside = np.zeros(X.shape, bool)
    n = len(px)
    for i in range(n):
        x0, y0, x1, y1 = px[i], py[i], px[(i + 1) % n], py[(i + 1) % n]
        cond = (y0 > Y) != (y1 > Y)
        xint = x0 + (Y - y0) * (x1 - x0) / (y1 - y0 + 1e-12)
        inside ^= cond & (X < xint)
    return inside


def _local_grid(cx, cy, r, rot, h, w):
    """Bounding box (clipped) and rotated local coordinates of a disc of radius r."""
    x0, x1 = max(0, int(cx - r - 2)), min(w, int(cx + r + 3))
    y0, y1 = max(0, int(cy - r - 2)), min(h, int(cy + r + 3))
    if x1 <= x0 or y1 <= y0:
        return None
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = xx + 0.5 - cx, yy + 0.5 - cy
    c, s = math.cos(rot), math.sin(rot)
    return (y0, y1, x0, x1), dx * c + dy * s, -dx * s + dy * c


def _shape_mask(rng, kind, cx, cy, r, h, w, scale=1.0):
    g = _local_grid(cx, cy, r, rng.uniform(0, 2 * math.pi), h, w)
    m = np.zeros((h, w), bool)
    if g is None:
        return m
    (y0, y1, x0, x1), X, Y = g
    m[y0:y1, x0:x1] = _radial_shape(rng, kind, X, Y, r, scale)
    return m


def _shade(rng, img, mask, cx, cy, r):
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return
    if rng.random() < 0.5:  # linear light
        a = rng.random() * 2 * math.pi
        t = ((xs - cx) * math.cos(a) + (ys - cy) * math.sin(a)) / max(r, 1)
        f = 1 + rng.uniform(0.05, 0.3) * np.clip(t, -1, 1)
    else:  # radial darkening towards the rim
        d = np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2) / max(r, 1)
        f = 1 - rng.uniform(0.05, 0.35) * np.clip(d, 0, 1) ** 2
    img[ys, xs] *= f[:, None].astype(np.float32)


def _part_mask(rng, whole, cx, cy, r, h, w):
    """A part clipped to `whole`: a disc/polygon off-centre, or a band across the object."""
    if rng.random() < 0.3:
        a = rng.random() * math.pi
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        t = (xx - cx) * math.cos(a) + (yy - cy) * math.sin(a)
        lo = rng.uniform(-0.6, 0.2) * r
        m = (t > lo) & (t < lo + rng.uniform(0.25, 0.5) * r)
    else:
        pr = r * rng.uniform(0.3, 0.6)
        off = r - pr
        a = rng.random() * 2 * math.pi
        d = rng.uniform(0, 0.7) * off
        kind = rng.choice(["ellipse", "polygon", "rrect", "blob"])
        m = _shape_mask(rng, kind, cx + d * math.cos(a), cy + d * math.sin(a), pr, h, w)
    return m & whole


def make_scene(seed: int, width: int = 256, height: int = 256, n_objects=None) -> Scene:
    rng = np.random.default_rng(seed)
    h, w = height, width
    scale = min(h, w) / 256.0
    img = _background(rng, h, w).astype(np.float32)
    n = int(rng.integers(2, 9)) if n_objects is None else n_objects
    objs = []  # (kind, [masks])
    for _ in range(n):
        kind = str(rng.choice(KINDS, p=KIND_P))
        if kind == "small":
            r = rng.uniform(4, 9) * scale
        elif kind == "thin":
            r = rng.uniform(25, 80) * scale
        else:
            r = rng.uniform(14, 70) * scale
        cx, cy = rng.uniform(0.05, 0.95) * w, rng.uniform(0.05, 0.95) * h
        whole = _shape_mask(rng, kind, cx, cy, r, h, w, scale)
        if whole.sum() < 12:
            continue
        # work inside the object's bounding box (textures, parts): a few ms per scene
        ys, xs = np.nonzero(whole)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        bh, bw = y1 - y0, x1 - x0
        lw = whole[y0:y1, x0:x1]
        view = img[y0:y1, x0:x1]
        base = _rand_colour(rng)
        view[lw] = _texture(rng, bh, bw, base, rng.uniform(0.1, 0.6))[lw]
        masks = [whole]
        if kind not in ("thin", "small") and r > 20 * scale and rng.random() < 0.45:
            lp = _part_mask(rng, lw, cx - x0, cy - y0, r, bh, bw)
            if lp.sum() >= 30 and lp.sum() < 0.8 * lw.sum():
                pc = _rand_colour(rng, avoid=base)
                view[lp] = _texture(rng, bh, bw, pc, rng.uniform(0.0, 0.4))[lp]
                part = np.zeros((h, w), bool)
                part[y0:y1, x0:x1] = lp
                masks.append(part)
                if rng.random() < 0.5:
                    pys, pxs = np.nonzero(lp)
                    i = rng.integers(len(pys))
                    sr = r * rng.uniform(0.12, 0.25)
                    ls = _shape_mask(rng, "ellipse", pxs[i], pys[i], sr, bh, bw) & lp
                    if ls.sum() >= 15 and ls.sum() < 0.7 * lp.sum():
                        view[ls] = _rand_colour(rng, avoid=pc)
                        sub = np.zeros((h, w), bool)
                        sub[y0:y1, x0:x1] = ls
                        masks.append(sub)
        _shade(rng, view, lw, cx - x0, cy - y0, r)
        objs.append((kind, masks))
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(0, 6))
    image = np.clip(img, 0, 255).astype(np.uint8)

    # occlusion: later objects cover earlier ones; keep the visible parts
    covered = np.zeros((h, w), bool)
    scene = Scene(image)
    for kind, masks in reversed(objs):
        vis = [m & ~covered for m in masks]
        covered |= masks[0]
        keep = [vis[0]]
        if vis[0].sum() < 12:
            continue
        for v in vis[1:]:
            if v.sum() >= 12 and v.sum() < 0.9 * keep[-1].sum():
                keep.append(v)
            else:
                break
        scene.instances.append(keep)
        scene.kinds.append(kind)
    scene.instances.reverse()
    scene.kinds.reverse()
    return scene


def main():
    from PIL import Image

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--size", default="256x256")
    ap.add_argument("--out", required=True)
    ap.add_argument("--masks-dir")
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.split("x"))
    s = make_scene(a.seed, w, h)
    Image.fromarray(s.image).save(a.out)
    if a.masks_dir:
        d = Path(a.masks_dir)
        d.mkdir(parents=True, exist_ok=True)
        k = 0
        for inst in s.instances:
            for m in inst:
                Image.fromarray(m.astype(np.uint8) * 255).save(d / f"{Path(a.out).stem}_{k}.png")
                k += 1


if __name__ == "__main__":
    main()
