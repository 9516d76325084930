"""Compare the C CLI's `sam predict` output with a predict.py reference directory.

usage: python3 tools/sam_ref/compare.py REF_DIR C_OUT_DIR [--embedding C_EMB.safetensors|.npy]

Needs only numpy and PIL: run it with /usr/bin/python3 (the python3 first on PATH lacks numpy).
REF_DIR:   written by predict.py (low_res_logits.npy, scores.npy, masks.npy, embedding.npy,
           stability.npy).
C_OUT_DIR: result.json {"image_size":[h,w],"masks":[{"file","score","stability","area","bbox"}]},
           mask_K.png (8-bit grey 0/255 at the original size), low_res_logits.npy [K,4G,4G].
--embedding: the C image embedding, a safetensors file with 'image_embeddings' [1,256,G,G]
           (F32, F16 or BF16), or a .npy.

Masks are compared in order (mask i of C against mask i of the reference; the official
predictor returns them in token order, unsorted).

Prints one JSON object:
  embedding_rel_l2      ||c - ref|| / ||ref|| over the embedding (null without --embedding)
  logits_rel_l2         per mask, same on the low-res logits
  logits_max_abs_diff   per mask
  score_abs_diff        per mask, |IoU prediction difference|
  stability_abs_diff    per mask (null where C gives no stability)
  mask_iou              per mask, IoU of the binary masks (two empty masks: 1)
  mask_pixels_differ    per mask, number of differing pixels
  n_masks_ref, n_masks_c
  image_size_match      result.json image_size == the reference mask size
  area_match            every C area equals the reference mask's pixel count
  bbox_match            every C bbox equals the reference mask's bbox, official XYWH
                        ([xmin, ymin, xmax - xmin, ymax - ymin], inclusive max; empty [0,0,0,0])
  area_c, area_ref, bbox_c, bbox_ref
  c_self_consistent     C's area/bbox agree with its own mask PNGs
"""

import argparse
import json
import struct
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np
from PIL import Image


def read_safetensors(path: str) -> Dict[str, np.ndarray]:
    """u64 little-endian header length N, N bytes of JSON header, then the raw tensor bytes;
    data_offsets are relative to the end of the header. Returns float tensors as float32."""
    kinds = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I8": "i1", "U8": "u1",
             "I16": "<i2", "I32": "<i4", "I64": "<i8"}
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = memoryview(blob)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        s, e = info["data_offsets"]
        if info["dtype"] == "BF16":
            bits = np.frombuffer(data[s:e], dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        else:
            arr = np.frombuffer(data[s:e], dtype=kinds[info["dtype"]])
        arr = arr.reshape(info["shape"])
        out[name] = arr.astype(np.float32) if arr.dtype.kind == "f" else arr.copy()
    return out


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    nb = np.linalg.norm(b)
    d = np.linalg.norm(a - b)
    return float(d / nb) if nb > 0 else (0.0 if d == 0 else float("inf"))


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def mask_bbox(m: np.ndarray) -> List[int]:
    """Official amg: batched_mask_to_box (XYXY, inclusive max) then box_xyxy_to_xywh."""
    ys = np.flatnonzero(m.any(axis=1))
    xs = np.flatnonzero(m.any(axis=0))
    if len(xs) == 0:
        return [0, 0, 0, 0]
    return [int(xs[0]), int(ys[0]), int(xs[-1] - xs[0]), int(ys[-1] - ys[0])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ref_dir")
    ap.add_argument("c_dir")
    ap.add_argument("--embedding")
    args = ap.parse_args()
    ref, cdir = Path(args.ref_dir), Path(args.c_dir)

    ref_logits = np.load(ref / "low_res_logits.npy")
    ref_scores = np.load(ref / "scores.npy")
    ref_masks = np.load(ref / "masks.npy").astype(bool)
    ref_stab = np.load(ref / "stability.npy") if (ref / "stability.npy").exists() else None
    with open(cdir / "result.json") as f:
        res = json.load(f)
    c_entries = res["masks"]
    c_logits = np.load(cdir / "low_res_logits.npy") if (cdir / "low_res_logits.npy").exists() else None
    c_masks = [np.array(Image.open(cdir / e["file"]).convert("L")) > 127 for e in c_entries]

    k = min(len(ref_scores), len(c_entries))
    out = {
        "embedding_rel_l2": None,
        "logits_rel_l2": [], "logits_max_abs_diff": [], "score_abs_diff": [],
        "stability_abs_diff": [], "mask_iou": [], "mask_pixels_differ": [],
        "n_masks_ref": int(len(ref_scores)), "n_masks_c": int(len(c_entries)),
        "image_size_match": list(res.get("image_size", [])) == list(ref_masks.shape[1:]),
    }
    if args.embedding:
        ce = (read_safetensors(args.embedding)["image_embeddings"] if args.embedding.endswith(".safetensors")
              else np.load(args.embedding))
        re_ = np.load(ref / "embedding.npy")
        out["embedding_rel_l2"] = rel_l2(ce.reshape(re_.shape), re_) if ce.size == re_.size else None
        if ce.size != re_.size:
            out["embedding_shape_mismatch"] = [list(ce.shape), list(re_.shape)]

    area_c, area_ref, bbox_c, bbox_ref, self_ok = [], [], [], [], True
    for i in range(k):
        e, cm, rm = c_entries[i], c_masks[i], ref_masks[i]
        if c_logits is not None and i < len(c_logits):
            out["logits_rel_l2"].append(rel_l2(c_logits[i], ref_logits[i]))
            out["logits_max_abs_diff"].append(float(np.abs(c_logits[i].astype(np.float64) - ref_logits[i]).max()))
        out["score_abs_diff"].append(abs(float(e["score"]) - float(ref_scores[i])))
        if ref_stab is not None and "stability" in e:
            # The official score is 0/0 = NaN when no logit exceeds -offset; the
            # runtime reports 0 there (it filters the same way and is valid JSON).
            ref_value = float(np.nan_to_num(ref_stab[i], nan=0.0))
            out["stability_abs_diff"].append(abs(float(e["stability"]) - ref_value))
        else:
            out["stability_abs_diff"].append(None)
        if cm.shape != rm.shape:
            out["mask_iou"].append(0.0)
            out["mask_pixels_differ"].append(None)
        else:
            out["mask_iou"].append(mask_iou(cm, rm))
            out["mask_pixels_differ"].append(int((cm != rm).sum()))
        area_c.append(int(e.get("area", -1)))
        area_ref.append(int(rm.sum()))
        bbox_c.append([int(round(v)) for v in e.get("bbox", [])])
        bbox_ref.append(mask_bbox(rm))
        self_ok = self_ok and area_c[-1] == int(cm.sum()) and bbox_c[-1] == mask_bbox(cm)
    out["area_match"] = area_c == area_ref and len(c_entries) == len(ref_scores)
    out["bbox_match"] = bbox_c == bbox_ref and len(c_entries) == len(ref_scores)
    out["area_c"], out["area_ref"], out["bbox_c"], out["bbox_ref"] = area_c, area_ref, bbox_c, bbox_ref
    out["c_self_consistent"] = self_ok
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
