"""PyTorch CPU peer of bench/encoder.mjs: times the reference's SamPredictor.set_image path
(tools/sam_ref/predict.py Predictor: ResizeLongestSide through PIL, normalise, pad, image encoder)
on one image, in one process after loading, and prints one JSON object on stdout.

usage: /usr/bin/python3 bench/encoder_torch.py --ckpt M.pth --image IMG.png
           [--n 5] [--warmup 1] [--threads 1] [--out-embedding E.npy]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools" / "sam_ref"))
from model import load_checkpoint  # noqa: E402
from predict import Predictor  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--n", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out-embedding", help="write the first embedding (float32 .npy)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = load_checkpoint(args.ckpt)
    load_ms = (time.perf_counter() - t0) * 1e3
    image = np.array(Image.open(args.image).convert("RGB"))
    pred = Predictor(model)
    times = []
    for i in range(args.warmup + args.n):
        t = time.perf_counter()
        pred.set_image(image)
        dt = (time.perf_counter() - t) * 1e3
        if i == 0 and args.out_embedding:
            np.save(args.out_embedding, pred.features.numpy().astype(np.float32))
        if i >= args.warmup:
            times.append(dt)
    times.sort()
    print(json.dumps({
        "runtime": "pytorch", "torch": torch.__version__, "threads": torch.get_num_threads(),
        "n": args.n, "warmup": args.warmup, "median_ms": float(np.median(times)),
        "min_ms": times[0], "mean_ms": float(np.mean(times)), "load_ms": load_ms,
    }))


if __name__ == "__main__":
    main()
