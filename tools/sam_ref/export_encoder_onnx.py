"""Exports the image encoder of a checkpoint (SAM's ViT or MobileSAM's TinyViT) to ONNX, so that
ONNX runtimes can be benchmarked against ours on the same weights (bench/encoder.mjs).

usage: /usr/bin/python3 tools/sam_ref/export_encoder_onnx.py --ckpt FILE.pth --out ENCODER.onnx
           [--opset 17] [--no-check]

Input:  input             (1, 3, S, S) float32, the normalised and zero-padded image
                          (Sam.preprocess: (x - pixel_mean) / pixel_std, padded right/bottom)
Output: image_embeddings  (1, 256, S/16, S/16)

Before writing, the module is traced and the trace is compared in PyTorch with the eager encoder
on a random input; bench/encoder.mjs then checks every runtime's embedding against ours.
BatchNorm layers are exported in eval mode (the exporter folds them into the convolutions).
"""

import argparse
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import load_checkpoint  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--no-check", action="store_true")
    args = ap.parse_args()

    sam = load_checkpoint(args.ckpt)
    enc = sam.image_encoder.eval()
    s = enc.img_size
    x = torch.randn(1, 3, s, s, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        if not args.no_check:
            traced = torch.jit.trace(enc, (x,), check_trace=False)
            diff = (traced(x) - enc(x)).abs().max().item()
            if diff > 1e-5:
                sys.exit(f"traced encoder differs from the eager one by {diff}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(enc, (x,), args.out, input_names=["input"],
                              output_names=["image_embeddings"], opset_version=args.opset,
                              do_constant_folding=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
