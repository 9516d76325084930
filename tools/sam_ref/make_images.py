"""Deterministic synthetic test images with structure (gradients, shapes, noise).

usage: /usr/bin/python3 tools/sam_ref/make_images.py --size WxH --seed S --out IMG.png
                                                      [--mode rgb|grey|rgba]

rgb:  8-bit RGB. grey: 8-bit L (tests L -> RGB conversion). rgba: RGBA with a varying alpha
(tests RGBA -> RGB conversion, which drops alpha without compositing, as PIL's convert("RGB")).
The format follows the file extension (.png recommended; .jpg/.bmp work through PIL too).
The image depends only on (size, seed, mode).
"""

import argparse

import numpy as np
from PIL import Image


def make_rgb(w: int, h: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    u, v = xx / max(w - 1, 1), yy / max(h - 1, 1)
    # Background: two-axis colour gradient with a random tilt.
    a = rng.uniform(0, 2 * np.pi)
    t = np.cos(a) * u + np.sin(a) * v
    img = np.stack([60 + 120 * t, 80 + 100 * (1 - v), 50 + 150 * u], axis=-1)
    # Shapes: filled discs, rectangles and a ring, random colours; later ones on top.
    scale = min(w, h)
    for _ in range(int(rng.integers(4, 9))):
        col = rng.uniform(0, 255, size=3)
        kind = rng.integers(0, 3)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(0.06, 0.25) * scale
        if kind == 0:
            m = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        elif kind == 1:
            rw, rh = r * rng.uniform(0.5, 1.5), r * rng.uniform(0.5, 1.5)
            m = (np.abs(xx - cx) <= rw) & (np.abs(yy - cy) <= rh)
        else:
            d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
            m = np.abs(d - r) <= 0.25 * r
        shade = 0.85 + 0.15 * np.cos(xx / max(r, 1) * 3.0)  # internal texture
        img[m] = col * shade[m, None]
    # Stripes in one corner region (high frequency: exercises the antialiased resize).
    sx, sy = int(w * 0.7), int(h * 0.7)
    stripes = (((xx + yy) // max(1, scale // 64)) % 2) * 80
    img[sy:, sx:, :] = 40 + stripes[sy:, sx:, None]
    # Noise.
    img += rng.normal(0, 6.0, size=img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", required=True, help="WxH, e.g. 640x480")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mode", choices=["rgb", "grey", "rgba"], default="rgb")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    w, h = (int(s) for s in args.size.lower().split("x"))
    rgb = make_rgb(w, h, args.seed)
    if args.mode == "rgb":
        im = Image.fromarray(rgb, "RGB")
    elif args.mode == "grey":
        im = Image.fromarray(rgb, "RGB").convert("L")
    else:
        rng = np.random.default_rng(args.seed + 1)
        yy, xx = np.mgrid[0:h, 0:w]
        alpha = (255 * (0.5 + 0.5 * np.sin(xx / max(w, 1) * 6.0 + rng.uniform(0, 6)))).astype(np.uint8)
        alpha[: h // 4] = 255
        im = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    im.save(args.out)


if __name__ == "__main__":
    main()
