"""Reference automatic mask generator: the semantics of the official SamAutomaticMaskGenerator
(segment_anything/automatic_mask_generator.py and utils/amg.py, commit dca509f), written
anew on top of our model.py / predict.py, for parity tests of `sam everything`.

usage: /usr/bin/python3 tools/sam_ref/amg.py --ckpt FILE.pth --image IMG --out OUT.json
           [--embedding EMB.safetensors|EMB.npy] [--points-per-side 32] [--points-per-batch 64]
           [--pred-iou-thresh 0.88] [--stability-score-thresh 0.95]
           [--stability-score-offset 1.0] [--box-nms-thresh 0.7] [--crop-n-layers 0]
           [--crop-nms-thresh 0.7] [--crop-overlap-ratio 0.3413...]
           [--crop-n-points-downscale-factor 1] [--min-mask-region-area 0]
           [--output-mode binary_mask|uncompressed_rle|coco_rle] [--threads N] [--time]
           [--point-grids GRIDS.json]  (official point_grids instead of --points-per-side:
                                       [[x, y], ...] for layer 0, or one such list per layer)

Writes the list of records as JSON (the C CLI's layout): segmentation, area, bbox (XYWH),
predicted_iou, point_coords, stability_score, crop_box (XYWH). --time prints the decode-side
time (everything after the image embedding) as JSON on stdout.

Pipeline (official facts, see /work/shared/FIDELITY.md):
  points   = build_point_grid(n): linspace(1/2n, 1 - 1/2n, n), x fastest, * (crop w, crop h)
  batch    = points_per_batch points, predict_torch(multimask=True, return_logits=True):
             apply_coords in float64, the prompt encoder casts to float32 after / 1024
  filter   = iou > pred_iou_thresh (if > 0); stability = #(l > 0 + off) / #(l > 0 - off)
             (int16 row sums, int32 totals, float32 divide) >= stability_score_thresh (if > 0)
  boxes    = batched_mask_to_box (XYXY, max inclusive), drop boxes within 20 px of a crop edge
             that is not an image edge; uncrop (zero pad), RLE (column-major)
  NMS      = torchvision batched_nms (one category) by iou per crop (box_nms_thresh), then by
             1 / crop area between crops (crop_nms_thresh)
  regions  = min_mask_region_area > 0: holes then islands (8-connected components, like
             cv2.connectedComponentsWithStats), NMS preferring unchanged masks with
             max(box_nms_thresh, crop_nms_thresh); kept changed masks get new RLE and box
pycocotools and cv2 are not used: the RLE string (maskApi.c rleToString) and the component
labelling are reimplemented here.
"""

import argparse
import json
import math
import sys
import time
from collections import deque
from itertools import product
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from PIL import Image
from torchvision.ops.boxes import batched_nms, box_area

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import load_checkpoint  # noqa: E402
from predict import Predictor, apply_coords, load_embedding  # noqa: E402


# ----------------------------------------------------------------------------------------------
# grids and crops


def point_grid(n: int) -> np.ndarray:
    """(n*n, 2) points (x, y) in [0, 1], x varying fastest."""
    off = 1 / (2 * n)
    side = np.linspace(off, 1 - off, n)
    xs = np.tile(side[None, :], (n, 1))
    ys = np.tile(side[:, None], (1, n))
    return np.stack([xs, ys], axis=-1).reshape(-1, 2)


def layer_grids(n: int, n_layers: int, factor: int) -> List[np.ndarray]:
    return [point_grid(int(n / (factor ** i))) for i in range(n_layers + 1)]


def crop_boxes(h: int, w: int, n_layers: int, overlap_ratio: float) -> Tuple[List[List[int]], List[int]]:
    boxes, layers = [[0, 0, w, h]], [0]
    short = min(h, w)
    for layer in range(n_layers):
        per_side = 2 ** (layer + 1)
        overlap = int(overlap_ratio * short * (2 / per_side))
        cw = int(math.ceil((overlap * (per_side - 1) + w) / per_side))
        ch = int(math.ceil((overlap * (per_side - 1) + h) / per_side))
        x0s = [int((cw - overlap) * i) for i in range(per_side)]
        y0s = [int((ch - overlap) * i) for i in range(per_side)]
        for x0, y0 in product(x0s, y0s):
            boxes.append([x0, y0, min(x0 + cw, w), min(y0 + ch, h)])
            layers.append(layer + 1)
    return boxes, layers


# ----------------------------------------------------------------------------------------------
# masks, boxes, RLE


def stability(logits: torch.Tensor, threshold: float, offset: float) -> torch.Tensor:
    hi = (logits > (threshold + offset)).sum(-1, dtype=torch.int16).sum(-1, dtype=torch.int32)
    lo = (logits > (threshold - offset)).sum(-1, dtype=torch.int16).sum(-1, dtype=torch.int32)
    return hi / lo


def mask_boxes(masks: torch.Tensor) -> torch.Tensor:
    """(N, h, w) bool -> (N, 4) int64 XYXY with inclusive max; zeros for an empty mask."""
    n, h, w = masks.shape
    if n == 0:
        return torch.zeros((0, 4), dtype=torch.int64)
    rows = masks.any(dim=2)  # (N, h)
    cols = masks.any(dim=1)  # (N, w)
    ys = torch.arange(h)[None, :]
    xs = torch.arange(w)[None, :]
    y1 = torch.where(rows, ys, torch.full_like(ys, -1)).max(dim=1).values
    y0 = torch.where(rows, ys, torch.full_like(ys, h)).min(dim=1).values
    x1 = torch.where(cols, xs, torch.full_like(xs, -1)).max(dim=1).values
    x0 = torch.where(cols, xs, torch.full_like(xs, w)).min(dim=1).values
    out = torch.stack([x0, y0, x1, y1], dim=1)
    empty = ~rows.any(dim=1)
    out[empty] = 0
    return out


def near_crop_edge(boxes: torch.Tensor, crop: List[int], orig: List[int]) -> torch.Tensor:
    off = torch.tensor([crop[0], crop[1], crop[0], crop[1]])
    b = (boxes + off).float()
    c = torch.tensor(crop, dtype=torch.float)
    o = torch.tensor(orig, dtype=torch.float)
    near_c = (b - c).abs() <= 20.0
    near_o = (b - o).abs() <= 20.0
    return (near_c & ~near_o).any(dim=1)


def rle_encode(mask: np.ndarray) -> Dict:
    """(h, w) bool -> uncompressed COCO RLE, column-major, first run of 0s."""
    h, w = mask.shape
    flat = np.asarray(mask, dtype=bool).T.reshape(-1)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    edges = np.concatenate([[0], change, [h * w]])
    runs = np.diff(edges).tolist()
    counts = runs if not flat[0] else [0] + runs
    return {"size": [h, w], "counts": [int(c) for c in counts]}


def rle_decode(rle: Dict) -> np.ndarray:
    h, w = rle["size"]
    flat = np.zeros(h * w, dtype=bool)
    idx, val = 0, False
    for c in rle["counts"]:
        flat[idx: idx + c] = val
        idx += c
        val = not val
    return flat.reshape(w, h).T


def rle_area(rle: Dict) -> int:
    return int(sum(rle["counts"][1::2]))


def rle_to_string(counts: List[int]) -> str:
    """pycocotools maskApi.c rleToString: 5 value bits + 1 continuation bit per char, + 48;
    from the 4th count on, the difference with the count two before."""
    out = []
    for i, c in enumerate(counts):
        x = int(c) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            ch = x & 0x1F
            x >>= 5  # Python's >> is arithmetic, like the C long
            more = (x != -1) if (ch & 0x10) else (x != 0)
            if more:
                ch |= 0x20
            out.append(chr(ch + 48))
    return "".join(out)


def string_to_rle(s: str) -> List[int]:
    """pycocotools rleFrString."""
    counts: List[int] = []
    p = 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            ch = ord(s[p]) - 48
            x |= (ch & 0x1F) << (5 * k)
            more = bool(ch & 0x20)
            p += 1
            k += 1
            if not more and (ch & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


# ----------------------------------------------------------------------------------------------
# small regions (cv2.connectedComponentsWithStats, 8-connectivity)


def components(binary: np.ndarray) -> Tuple[np.ndarray, List[int]]:
    """Labels 8-connected components of True pixels, 1.. in raster order of their first pixel.
    Returns (labels, sizes) with sizes[0] unused."""
    h, w = binary.shape
    labels = np.zeros((h, w), dtype=np.int32)
    sizes = [0]
    ys, xs = np.nonzero(binary)
    for y0, x0 in zip(ys.tolist(), xs.tolist()):
        if labels[y0, x0]:
            continue
        lab = len(sizes)
        labels[y0, x0] = lab
        q = deque([(y0, x0)])
        n = 0
        while q:
            y, x = q.pop()
            n += 1
            for yy in (y - 1, y, y + 1):
                if yy < 0 or yy >= h:
                    continue
                for xx in (x - 1, x, x + 1):
                    if 0 <= xx < w and binary[yy, xx] and not labels[yy, xx]:
                        labels[yy, xx] = lab
                        q.append((yy, xx))
        sizes.append(n)
    return labels, sizes


def remove_small_regions(mask: np.ndarray, area: float, holes: bool) -> Tuple[np.ndarray, bool]:
    working = ~mask if holes else mask
    labels, sizes = components(working)
    n = len(sizes)
    small = [i for i in range(1, n) if sizes[i] < area]
    if not small:
        return mask, False
    fill = [0] + small
    if not holes:
        fill = [i for i in range(n) if i not in fill]
        if not fill:
            fill = [int(np.argmax(sizes[1:])) + 1]
    return np.isin(labels, fill), True


# ----------------------------------------------------------------------------------------------
# the generator


class Generator:
    def __init__(self, model, points_per_side: Optional[int] = 32, points_per_batch: int = 64,
                 pred_iou_thresh: float = 0.88, stability_score_thresh: float = 0.95,
                 stability_score_offset: float = 1.0, box_nms_thresh: float = 0.7,
                 crop_n_layers: int = 0, crop_nms_thresh: float = 0.7,
                 crop_overlap_ratio: float = 512 / 1500, crop_n_points_downscale_factor: int = 1,
                 point_grids: Optional[List[np.ndarray]] = None, min_mask_region_area: int = 0):
        assert (points_per_side is None) != (point_grids is None)
        self.grids = (layer_grids(points_per_side, crop_n_layers, crop_n_points_downscale_factor)
                      if points_per_side is not None else point_grids)
        self.model = model
        self.predictor = Predictor(model)
        self.points_per_batch = points_per_batch
        self.pred_iou_thresh = pred_iou_thresh
        self.stability_score_thresh = stability_score_thresh
        self.stability_score_offset = stability_score_offset
        self.box_nms_thresh = box_nms_thresh
        self.crop_n_layers = crop_n_layers
        self.crop_nms_thresh = crop_nms_thresh
        self.crop_overlap_ratio = crop_overlap_ratio
        self.min_mask_region_area = min_mask_region_area
        self.decode_s = 0.0
        self.encode_s = 0.0

    @torch.no_grad()
    def generate(self, image: np.ndarray, embedding: Optional[torch.Tensor] = None) -> List[Dict]:
        h, w = image.shape[:2]
        boxes, layers = crop_boxes(h, w, self.crop_n_layers, self.crop_overlap_ratio)
        recs: List[Dict] = []
        for crop, layer in zip(boxes, layers):
            recs += self._crop(image, crop, layer, (h, w), embedding if crop == boxes[0] else None)
        t0 = time.perf_counter()
        if len(boxes) > 1 and recs:
            scores = 1 / box_area(torch.tensor([r["crop_box"] for r in recs]))
            keep = batched_nms(torch.tensor([r["box"] for r in recs]).float(), scores,
                               torch.zeros(len(recs)), iou_threshold=self.crop_nms_thresh)
            recs = [recs[i] for i in keep.tolist()]
        if self.min_mask_region_area > 0 and recs:
            recs = self._small_regions(recs, max(self.box_nms_thresh, self.crop_nms_thresh))
        self.decode_s += time.perf_counter() - t0
        return recs

    def _crop(self, image, crop, layer, orig, embedding) -> List[Dict]:
        x0, y0, x1, y1 = crop
        cropped = image[y0:y1, x0:x1, :]
        ch, cw = cropped.shape[:2]
        t0 = time.perf_counter()
        self.predictor.set_image(cropped, compute_embedding=embedding is None)
        if embedding is not None:
            self.predictor.set_embedding(embedding)
        t1 = time.perf_counter()
        self.encode_s += t1 - t0
        points = self.grids[layer] * np.array([cw, ch])[None, :]
        recs: List[Dict] = []
        for b in range(0, len(points), self.points_per_batch):
            recs += self._batch(points[b: b + self.points_per_batch], (ch, cw), crop, orig)
        if recs:
            keep = batched_nms(torch.tensor([r["box"] for r in recs]).float(),
                               torch.tensor([r["predicted_iou"] for r in recs], dtype=torch.float32),
                               torch.zeros(len(recs)), iou_threshold=self.box_nms_thresh)
            recs = [recs[i] for i in keep.tolist()]
        for r in recs:  # back to the original frame
            r["box"] = [r["box"][0] + x0, r["box"][1] + y0, r["box"][2] + x0, r["box"][3] + y0]
            r["point"] = [r["point"][0] + x0, r["point"][1] + y0]
            r["crop_box"] = list(crop)
        self.decode_s += time.perf_counter() - t1
        return recs

    def _batch(self, points, im_size, crop, orig) -> List[Dict]:
        pred, model = self.predictor, self.model
        oh, ow = orig
        tp = apply_coords(points, im_size, pred.long_side)
        coords = torch.as_tensor(tp)[:, None, :]  # float64, as the official predict_torch
        labels = torch.ones(coords.shape[0], dtype=torch.int)[:, None]
        pe = model.prompt_encoder
        sparse, dense = pe(points=(coords, labels), boxes=None, masks=None)
        low_res, iou = model.mask_decoder(
            image_embeddings=pred.features, image_pe=pe.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=True)
        logits = model.postprocess_masks(low_res, pred.input_size, im_size)  # (B, 3, h, w)
        k = logits.shape[1]
        logits = logits.flatten(0, 1)
        iou = iou.flatten(0, 1)
        pts = torch.as_tensor(points.repeat(k, axis=0))
        keep = torch.ones(len(iou), dtype=torch.bool)
        if self.pred_iou_thresh > 0.0:
            keep = iou > self.pred_iou_thresh
        logits, iou, pts = logits[keep], iou[keep], pts[keep]
        stab = stability(logits, model.mask_threshold, self.stability_score_offset)
        if self.stability_score_thresh > 0.0:
            keep = stab >= self.stability_score_thresh
            logits, iou, pts, stab = logits[keep], iou[keep], pts[keep], stab[keep]
        masks = logits > model.mask_threshold
        boxes = mask_boxes(masks)
        keep = ~near_crop_edge(boxes, crop, [0, 0, ow, oh])
        masks, iou, pts, stab, boxes = masks[keep], iou[keep], pts[keep], stab[keep], boxes[keep]
        x0, y0, x1, y1 = crop
        recs = []
        for i in range(masks.shape[0]):
            full = np.zeros((oh, ow), dtype=bool)
            full[y0:y1, x0:x1] = masks[i].numpy()
            recs.append({"rle": rle_encode(full), "box": boxes[i].tolist(),
                         "predicted_iou": float(iou[i]), "stability_score": float(stab[i]),
                         "point": pts[i].tolist()})
        return recs

    def _small_regions(self, recs: List[Dict], nms_thresh: float) -> List[Dict]:
        masks, scores = [], []
        for r in recs:
            m = rle_decode(r["rle"])
            m, c1 = remove_small_regions(m, self.min_mask_region_area, holes=True)
            m, c2 = remove_small_regions(m, self.min_mask_region_area, holes=False)
            masks.append(torch.as_tensor(m)[None])
            scores.append(float(not (c1 or c2)))
        masks_t = torch.cat(masks, dim=0)
        boxes = mask_boxes(masks_t)
        keep = batched_nms(boxes.float(), torch.as_tensor(scores), torch.zeros(len(recs)),
                           iou_threshold=nms_thresh)
        out = []
        for i in keep.tolist():
            r = recs[i]
            if scores[i] == 0.0:
                r["rle"] = rle_encode(masks_t[i].numpy())
                r["box"] = boxes[i].tolist()
            out.append(r)
        return out


def to_records(recs: List[Dict], mode: str) -> List[Dict]:
    out = []
    for r in recs:
        if mode == "coco_rle":
            seg = {"size": r["rle"]["size"], "counts": rle_to_string(r["rle"]["counts"])}
        elif mode == "uncompressed_rle":
            seg = r["rle"]
        else:
            seg = rle_decode(r["rle"]).tolist()
        b, c = r["box"], r["crop_box"]
        out.append({
            "segmentation": seg,
            "area": rle_area(r["rle"]),
            "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
            "predicted_iou": r["predicted_iou"],
            "point_coords": [r["point"]],
            "stability_score": r["stability_score"],
            "crop_box": [c[0], c[1], c[2] - c[0], c[3] - c[1]],
        })
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--embedding")
    ap.add_argument("--out", required=True)
    ap.add_argument("--points-per-side", type=int, default=None)
    ap.add_argument("--point-grids")
    ap.add_argument("--points-per-batch", type=int, default=64)
    ap.add_argument("--pred-iou-thresh", type=float, default=0.88)
    ap.add_argument("--stability-score-thresh", type=float, default=0.95)
    ap.add_argument("--stability-score-offset", type=float, default=1.0)
    ap.add_argument("--box-nms-thresh", type=float, default=0.7)
    ap.add_argument("--crop-n-layers", type=int, default=0)
    ap.add_argument("--crop-nms-thresh", type=float, default=0.7)
    ap.add_argument("--crop-overlap-ratio", type=float, default=512 / 1500)
    ap.add_argument("--crop-n-points-downscale-factor", type=int, default=1)
    ap.add_argument("--min-mask-region-area", type=int, default=0)
    ap.add_argument("--output-mode", default="coco_rle",
                    choices=["binary_mask", "uncompressed_rle", "coco_rle"])
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--time", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_checkpoint(args.ckpt)
    image = np.array(Image.open(args.image).convert("RGB"))
    emb = None
    if args.embedding:
        emb = torch.from_numpy(np.ascontiguousarray(load_embedding(args.embedding)))
        assert args.crop_n_layers == 0, "--embedding covers the whole image only"
    grids = None
    if args.point_grids:
        with open(args.point_grids) as f:
            g = json.load(f)
        grids = [np.array(g, dtype=np.float64)] if np.ndim(g[0][0]) == 0 else [np.array(x, dtype=np.float64) for x in g]
    elif args.points_per_side is None:
        args.points_per_side = 32
    gen = Generator(
        model, points_per_side=args.points_per_side, points_per_batch=args.points_per_batch,
        point_grids=grids,
        pred_iou_thresh=args.pred_iou_thresh, stability_score_thresh=args.stability_score_thresh,
        stability_score_offset=args.stability_score_offset, box_nms_thresh=args.box_nms_thresh,
        crop_n_layers=args.crop_n_layers, crop_nms_thresh=args.crop_nms_thresh,
        crop_overlap_ratio=args.crop_overlap_ratio,
        crop_n_points_downscale_factor=args.crop_n_points_downscale_factor,
        min_mask_region_area=args.min_mask_region_area)
    recs = gen.generate(image, emb)
    with open(args.out, "w") as f:
        json.dump(to_records(recs, args.output_mode), f)
    if args.time:
        n_points = sum(len(gen.grids[l]) for l in crop_boxes(*image.shape[:2], args.crop_n_layers,
                                                             args.crop_overlap_ratio)[1])
        print(json.dumps({"masks": len(recs), "points": n_points, "decode_s": gen.decode_s,
                          "encode_s": gen.encode_s, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
