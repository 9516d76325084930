"""Evaluate a model through the C runtime (build/sam), not PyTorch, on held-out scenes.

usage: /usr/bin/python3 tools/train/evaluate.py --model demo/models/sam_demo.safetensors
           [--scenes 200] [--first 0] [--jobs 2] [--json OUT.json] [--sam build/sam] [--keep DIR]

Scenes: scenes.make_scene(HELDOUT_SEED_BASE + first + i), sizes cycling through 640x480,
480x640, 512x512 and 800x600 (never seen in training: training seeds are < 1e9).
Objects: every whole instance (visible part, after occlusion) of at least --min-area pixels.

Per scene `sam encode` once (its wall time and the encoder time it reports are recorded),
then per object, with `sam predict --embedding`:
  click1_top    1 positive click at the object's deepest point (farthest from its boundary),
                multimask, IoU of the top-scored mask
  click1_best3  the same, IoU of the best of the 3 masks (oracle)
  box           the object's tight box, single output
  clickK        K clicks in all (K = 2..6): each corrective click at the deepest point of
                the error region of the previous result (positive on a missed pixel,
                negative on a false one), all clicks so far plus the previous result's
                low-res logits as --mask-input, single output.  click3 / click5 are "mIoU
                after 3 / 5 clicks"; click6 is the first click + 5 corrective clicks.
mIoU = mean over objects. Prints a table and writes JSON (summary + per-object rows).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
import scenes  # noqa: E402

SIZES = [(640, 480), (480, 640), (512, 512), (800, 600)]
MAX_CLICKS = 6


def deepest_point(m: np.ndarray):
    """(x, y) of the pixel of m farthest from its boundary (city-block/3x3 erosion depth),
    nearest to the centroid of the deepest layer."""
    cur = m.astype(bool)
    while True:
        p = np.pad(cur, 1)
        nxt = cur & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
        if not nxt.any():
            break
        cur = nxt
    ys, xs = np.nonzero(cur)
    i = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
    return int(xs[i]), int(ys[i])


def iou(a, b):
    u = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / u) if u else 1.0


def predict(sam, model, emb, out, points=(), box=None, mask_input=None, mask_index=0, multimask=False):
    args = [sam, "predict", "--model", model, "--embedding", emb, "--out", out]
    for x, y, l in points:
        args += ["--point", f"{x},{y},{l}"]
    if box is not None:
        args += ["--box", ",".join(str(v) for v in box)]
    if mask_input is not None:
        args += ["--mask-input", mask_input, "--mask-index", str(mask_index)]
    args.append("--multimask" if multimask else "--single")
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}\n{r.stderr}")
    res = json.load(open(os.path.join(out, "result.json")))
    masks = [np.asarray(Image.open(os.path.join(out, m["file"]))) > 127 for m in res["masks"]]
    scores = [m["score"] for m in res["masks"]]
    return masks, scores


def eval_scene(args, i, tmp):
    seed = scenes.HELDOUT_SEED_BASE + args.first + i
    w, h = SIZES[i % len(SIZES)]
    sc = scenes.make_scene(seed, w, h)
    d = os.path.join(tmp, f"s{i}")
    os.makedirs(d, exist_ok=True)
    img = os.path.join(d, "img.png")
    Image.fromarray(sc.image).save(img)
    emb = os.path.join(d, "emb.safetensors")
    t = time.time()
    r = subprocess.run([args.sam, "encode", "--model", args.model, "--image", img, "--out", emb],
                       capture_output=True, text=True)
    wall = time.time() - t
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    enc_s = None
    for tok in r.stderr.replace("\r", "\n").split("\n"):
        if tok.startswith("encoding:") and tok.strip().endswith(" s"):
            enc_s = float(tok.split(",")[-1].strip()[:-2])
    rows = []
    for oi, (inst, kind) in enumerate(zip(sc.instances, sc.kinds)):
        gt = inst[0]
        if gt.sum() < args.min_area:
            continue
        row = {"scene": i, "seed": seed, "object": oi, "kind": kind, "area": int(gt.sum()),
               "levels": len(inst)}
        out = os.path.join(d, f"o{oi}")
        x, y = deepest_point(gt)
        ys, xs = np.nonzero(gt)
        bx = (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
        if args.keep:
            # what another runtime needs to replay the first two prompts (tests/demo_model.test.mjs)
            Image.fromarray(gt.astype(np.uint8) * 255).save(os.path.join(d, f"gt{oi}.png"))
            row.update(image=img, gt=os.path.join(d, f"gt{oi}.png"), click=[x, y], box_xyxy=list(bx))
        masks, scores = predict(args.sam, args.model, emb, out, [(x, y, 1)], multimask=True)
        ious = [iou(m, gt) for m in masks]
        top = int(np.argmax(scores))
        row["click1_top"] = ious[top]
        row["click1_best3"] = max(ious)
        bm, _ = predict(args.sam, args.model, emb, out + "b", box=bx)
        row["box"] = iou(bm[0], gt)
        # corrective clicks from the top-scored first result
        points = [(x, y, 1)]
        prev = masks[top]
        logits = os.path.join(d, f"o{oi}_prev.npy")
        os.replace(os.path.join(out, "low_res_logits.npy"), logits)
        idx = top
        row["click1"] = ious[top]
        for k in range(2, MAX_CLICKS + 1):
            err = prev != gt
            if not err.any():
                row[f"click{k}"] = 1.0
                continue
            ex, ey = deepest_point(err)
            points.append((ex, ey, 1 if gt[ey, ex] else 0))
            ms, _ = predict(args.sam, args.model, emb, out, points, mask_input=logits, mask_index=idx)
            prev = ms[0]
            os.replace(os.path.join(out, "low_res_logits.npy"), logits)
            idx = 0
            row[f"click{k}"] = iou(prev, gt)
        rows.append(row)
    return rows, {"scene": i, "encode_wall_s": wall, "encode_s": enc_s, "size": [w, h]}


METRICS = ["click1_top", "click1_best3", "box", "click2", "click3", "click4", "click5", "click6"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--scenes", type=int, default=200)
    ap.add_argument("--first", type=int, default=0, help="first held-out scene index")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--min-area", type=int, default=100, help="skip objects smaller (pixels)")
    ap.add_argument("--sam", default=str(ROOT / "build" / "sam"))
    ap.add_argument("--json", help="write the summary and per-object rows here")
    ap.add_argument("--keep", help="keep scene images and ground-truth masks in this folder "
                                   "(rows then name them, with the click and the box)")
    args = ap.parse_args()

    rows, encs = [], []
    t0 = time.time()
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sam-eval-") as tmp_dir:
        tmp = args.keep or tmp_dir
        with ThreadPoolExecutor(args.jobs) as ex:
            futs = [ex.submit(eval_scene, args, i, tmp) for i in range(args.scenes)]
            for n, f in enumerate(futs):
                r, e = f.result()
                rows += r
                encs.append(e)
                el = time.time() - t0
                print(f"\r{n + 1}/{args.scenes} scenes, {len(rows)} objects, {el:.0f} s", end="",
                      file=sys.stderr, flush=True)
    print("", file=sys.stderr)
    summary = {m: float(np.mean([r[m] for r in rows])) for m in METRICS}
    enc_wall = [e["encode_wall_s"] for e in encs]
    enc_s = [e["encode_s"] for e in encs if e["encode_s"] is not None]
    summary.update({
        "objects": len(rows), "scenes": args.scenes, "min_area": args.min_area,
        "encode_wall_s_mean": float(np.mean(enc_wall)),
        "encode_s_mean": float(np.mean(enc_s)) if enc_s else None,
        "model": str(args.model),
    })
    by_kind = {}
    for k in sorted({r["kind"] for r in rows}):
        rs = [r for r in rows if r["kind"] == k]
        by_kind[k] = {"n": len(rs), **{m: float(np.mean([r[m] for r in rs])) for m in
                                       ("click1_best3", "box", "click5")}}
    summary["by_kind"] = by_kind

    print(f"{len(rows)} objects in {args.scenes} held-out scenes (area >= {args.min_area} px)")
    print("| metric | mIoU |\n|---|---|")
    names = {"click1_top": "1 click, top-scored mask", "click1_best3": "1 click, best of 3 (oracle)",
             "box": "box", "click2": "2 clicks", "click3": "3 clicks", "click4": "4 clicks",
             "click5": "5 clicks", "click6": "6 clicks (1 + 5 corrective)"}
    for m in METRICS:
        print(f"| {names[m]} | {summary[m]:.3f} |")
    print(f"| encoder, `sam encode` wall time per image (s) | {summary['encode_wall_s_mean']:.3f} |")
    print("\n| kind | n | 1-click best-of-3 | box | 5 clicks |\n|---|---|---|---|---|")
    for k, v in by_kind.items():
        print(f"| {k} | {v['n']} | {v['click1_best3']:.3f} | {v['box']:.3f} | {v['click5']:.3f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "encodes": encs, "objects": rows}, f, indent=1)


if __name__ == "__main__":
    main()
