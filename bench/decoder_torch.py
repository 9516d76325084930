"""PyTorch CPU peer of bench/decoder.mjs: times the official-style SamPredictor.predict path of
the reference (tools/sam_ref/predict.py Predictor: prompt encoder, mask decoder, postprocess_masks
to the original size, threshold, stability score) for one point on a precomputed embedding, in
one process after loading, and prints one JSON object on stdout.

usage: /usr/bin/python3 bench/decoder_torch.py --ckpt M.pth --embedding E.safetensors --point X,Y
           [--n 20] [--warmup 3] [--threads 1] [--out-masks masks.npy]

The original image size is read from the embedding's metadata (original_size "h,w").
"""

import argparse
import json
import struct
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools" / "sam_ref"))
from model import load_checkpoint  # noqa: E402
from predict import Predictor, get_preprocess_shape, load_embedding  # noqa: E402


def embedding_metadata(path: str) -> dict:
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n).decode("utf-8")).get("__metadata__", {})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--embedding", required=True)
    ap.add_argument("--point", required=True, help="X,Y in original pixels (foreground)")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out-masks", help="write the masks of the first prediction (uint8 .npy)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = load_checkpoint(args.ckpt)
    load_ms = (time.perf_counter() - t0) * 1e3

    h, w = (int(v) for v in embedding_metadata(args.embedding)["original_size"].split(","))
    pred = Predictor(model)
    pred.original_size = (h, w)
    pred.input_size = get_preprocess_shape(h, w, pred.long_side)
    pred.set_embedding(torch.from_numpy(np.ascontiguousarray(load_embedding(args.embedding))))

    x, y = (float(v) for v in args.point.split(",")[:2])
    coords, labels = np.array([[x, y]]), np.array([1])
    masks, scores, _, _ = pred.predict(coords, labels, None, None, multimask_output=True)
    if args.out_masks:
        np.save(args.out_masks, masks.astype(np.uint8))

    times = []
    for i in range(args.warmup + args.n):
        t = time.perf_counter()
        pred.predict(coords, labels, None, None, multimask_output=True)
        if i >= args.warmup:
            times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    print(json.dumps({
        "runtime": "pytorch", "torch": torch.__version__, "threads": torch.get_num_threads(),
        "n": args.n, "warmup": args.warmup, "median_ms": float(np.median(times)),
        "min_ms": times[0], "mean_ms": float(np.mean(times)), "load_ms": load_ms,
        "count": int(masks.shape[0]), "height": int(masks.shape[1]), "width": int(masks.shape[2]),
        "scores": [float(s) for s in scores],
    }))


if __name__ == "__main__":
    main()
