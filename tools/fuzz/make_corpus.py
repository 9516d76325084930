"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/).

Small, valid (and a few nearly valid) inputs for each parser, made here with
torch, numpy and PIL, so that the fuzzer starts from the formats' real
structure. The committed corpus is this script's output:
    /usr/bin/python3 tools/fuzz/make_corpus.py [--sam build/sam]
"""
import argparse
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
import torch
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")


def put(target, name, data):
    folder = os.path.join(OUT, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def safetensors_bytes(tensors, metadata=None, dtype_names=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def torch_save_bytes(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def state_dicts():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, 4, generator=g)
    return {
        "plain": {"a.weight": w, "a.bias": torch.randn(3, generator=g)},
        # A transposed view (copied by the reader) and a shared storage.
        "views": {"t": w.t(), "row": w[1], "same": w},
        "dtypes": {"h": torch.randn(2, 2, generator=g).half(), "b": torch.randn(2, generator=g).bfloat16(),
                   "d": torch.randn(2, generator=g).double(), "i": torch.arange(3), "u": torch.ones(2, dtype=torch.uint8),
                   "z": torch.zeros(0, 2), "s": torch.tensor(1.5)},
        "nested": {"model": {"x": torch.randn(2, 3, generator=g)}, "epoch": 3},
        "ordered": __import__("collections").OrderedDict([("image_encoder.pos_embed", torch.randn(1, 2, 2, 4, generator=g))]),
    }


def make_checkpoints():
    for name, sd in state_dicts().items():
        data = torch_save_bytes(sd)
        put("pth", f"{name}.pth", data)
        put("zip", f"{name}.pth", data)
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            pkl = [n for n in z.namelist() if n.endswith("data.pkl")][0]
            put("pickle", f"{name}.pkl", z.read(pkl))
    # A plain zip with a deflated entry (refused by the reader) and an empty one.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        z.writestr("archive/empty", b"")
    put("zip", "deflated.zip", buf.getvalue())
    # A pickle that names a forbidden global (must be refused, never run).
    put("pickle", "forbidden_global.pkl", b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.")


def make_safetensors():
    rng = np.random.default_rng(0)
    f32 = rng.standard_normal((2, 3)).astype("<f4")
    put("safetensors", "f32.safetensors", safetensors_bytes({"w": ("F32", f32.shape, f32.tobytes())}))
    f16 = rng.standard_normal(4).astype("<f2")
    bf16 = (rng.standard_normal(3).astype("<f4").view("<u4") >> 16).astype("<u2")
    put("safetensors", "mixed.safetensors", safetensors_bytes(
        {"h": ("F16", f16.shape, f16.tobytes()), "b": ("BF16", bf16.shape, bf16.tobytes()),
         "i": ("I64", (2,), np.arange(2, dtype="<i8").tobytes()), "e": ("F32", (0, 3), b"")},
        metadata={"format": "pt", "note": "seed"}))
    pe = rng.standard_normal((1, 2, 2, 4)).astype("<f4")
    put("safetensors", "model_keys.safetensors", safetensors_bytes(
        {"image_encoder.pos_embed": ("F32", pe.shape, pe.tobytes()),
         "mask_decoder.iou_token.weight": ("F32", (1, 4), rng.standard_normal(4).astype("<f4").tobytes())}))


def make_npy():
    rng = np.random.default_rng(1)
    for name, arr in {"lowres": rng.standard_normal((1, 8, 8)).astype("<f4"),
                      "scalar": np.float32(2.5).reshape(()), "f64": rng.standard_normal(3),
                      "fortran": np.asfortranarray(rng.standard_normal((2, 3)).astype("<f4")),
                      "bigendian": rng.standard_normal(2).astype(">f4")}.items():
        buf = io.BytesIO()
        np.save(buf, arr)
        put("npy", f"{name}.npy", buf.getvalue())
    buf = io.BytesIO()
    np.lib.format.write_array(buf, rng.standard_normal((2, 2)).astype("<f4"), version=(2, 0))
    put("npy", "v2.npy", buf.getvalue())


def make_images():
    rng = np.random.default_rng(2)
    rgb = Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8), "RGB")
    for fmt, ext, img, kw in [("PNG", "png", rgb, {}), ("PNG", "grey.png", rgb.convert("L"), {}),
                              ("PNG", "rgba.png", rgb.convert("RGBA"), {}), ("PNG", "palette.png", rgb.convert("P"), {}),
                              ("PNG", "i16.png", rgb.convert("L").convert("I").convert("I;16"), {}),
                              ("JPEG", "jpg", rgb, {"quality": 90}), ("JPEG", "progressive.jpg", rgb, {"progressive": True}),
                              ("JPEG", "grey.jpg", rgb.convert("L"), {}), ("BMP", "bmp", rgb, {}),
                              ("TGA", "tga", rgb, {}), ("GIF", "gif", rgb.convert("P"), {})]:
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        put("image", f"seed.{ext}", buf.getvalue())


def rle_string(counts):
    # pycocotools rleToString, as the runtime writes it.
    out = []
    for i, c in enumerate(counts):
        x = c - counts[i - 2] if i > 2 else c
        more = True
        while more:
            ch = x & 0x1F
            x >>= 5
            more = (x != -1) if ch & 0x10 else (x != 0)
            if more:
                ch |= 0x20
            out.append(chr(ch + 48))
    return "".join(out).encode()


def make_rle():
    rng = np.random.default_rng(3)
    for k, (h, w) in enumerate([(4, 4), (7, 5), (16, 9), (64, 64)]):
        mask = (rng.random((h, w)) < 0.5).astype(np.uint8)
        flat = mask.T.reshape(-1)  # column-major, as COCO
        counts, prev, run = [], 0, 0
        for v in flat:
            if v != prev:
                counts.append(run)
                run, prev = 0, v
            run += 1
        counts.append(run)
        put("rle", f"mask{k}", bytes([h - 1, w - 1]) + rle_string(counts))
    put("rle", "large_counts", bytes([63, 63]) + rle_string([0, 4000000000, 5, 3]))


def make_cli_args():
    for name, args in {"point": ["--point", "10,20,1"],
                       "points_box": ["--point", "1.5,2e1,0", "--point", "-3,4,1", "--box", "0,0,50.25,60", "--multimask"],
                       "options": ["--model", "m.pth", "--image", "a.png", "--out", "o", "--threads", "2",
                                   "--mask-input", "l.npy", "--mask-index", "1", "--dtype", "f16", "--single"],
                       "bad": ["--point", "nan,1,1", "--box", "1,2,3"]}.items():
        put("cli_args", name, b"\0".join(a.encode() for a in args))


def make_embeddings(sam):
    model = os.path.join(ROOT, "demo", "models", "sam_demo.safetensors")
    with tempfile.TemporaryDirectory() as tmp:
        img = os.path.join(tmp, "img.png")
        Image.fromarray(np.random.default_rng(4).integers(0, 256, (24, 40, 3), dtype=np.uint8)).save(img)
        emb = os.path.join(tmp, "emb.safetensors")
        subprocess.run([sam, "encode", "--model", model, "--image", img, "--out", emb, "--dtype", "f16"],
                       check=True, capture_output=True)
        data = open(emb, "rb").read()
    put("embedding", "demo_f16.safetensors", data)
    put("embedding", "header_only.safetensors", data[:8 + struct.unpack("<Q", data[:8])[0]])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sam", default=os.path.join(ROOT, "build", "sam"))
    args = ap.parse_args()
    make_checkpoints()
    make_safetensors()
    make_npy()
    make_images()
    make_rle()
    make_cli_args()
    make_embeddings(args.sam)
    for target in sorted(os.listdir(OUT)):
        files = os.listdir(os.path.join(OUT, target))
        size = sum(os.path.getsize(os.path.join(OUT, target, f)) for f in files)
        print(f"{target}: {len(files)} files, {size} bytes")


if __name__ == "__main__":
    sys.exit(main())
