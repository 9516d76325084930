"""Reference prediction: mirrors the official SamPredictor (segment_anything/predictor.py)
step for step, on our model.py.

usage: /usr/bin/python3 tools/sam_ref/predict.py --ckpt FILE.pth --image IMG
           [--point X,Y,LABEL]... [--box X0,Y0,X1,Y1] [--mask-input LOGITS.npy [--mask-index I]]
           [--multimask | --single] [--embedding EMB.npy|EMB.safetensors]
           [--decoder-heads 8] --out DIR [--dump-stages]

Points and boxes are in original-image pixels (x, y); LABEL 1 foreground, 0 background.
Default multimask: True for exactly one point and no box (official notebook), else False.
--mask-input: float32 .npy of low-res logits, shape (4G, 4G), (1, 4G, 4G), (1, 1, 4G, 4G) or
(K, 4G, 4G) (then --mask-index picks one, default 0), e.g. a previous low_res_logits.npy.
--embedding: skip the image encoder and use this (1, 256, G, G) embedding (.npy, or the
'image_embeddings' tensor of a safetensors file); the image is still read for its size.

Pipeline (official facts, see /work/shared/FIDELITY.md):
  image  = PIL open -> convert("RGB") -> uint8 HWC (predictor.set_image, RGB format)
  resize = ResizeLongestSide.apply_image: target (int(h*s+0.5), int(w*s+0.5)), s = S/max(h,w),
           torchvision resize on the PIL image = PIL BILINEAR (antialiased, fixed point)
  input  = (x - mean) / std, zero pad right/bottom to S x S (Sam.preprocess)
  points = apply_coords: x * (new_w/old_w), y * (new_h/old_h) in float64, then float32
  box    = apply_boxes (same per corner), box tensor (1, 1, 4)
  masks  = postprocess_masks(low_res) > 0

Files written to DIR (float32 unless stated):
  embedding.npy        (1, 256, G, G) image embedding (neck output)
  low_res_logits.npy   (K, 4G, 4G) selected low-res mask logits
  scores.npy           (K,) predicted IoU of the selected masks (no sigmoid)
  stability.npy        (K,) stability score on the full-size logits, offset 1.0, threshold 0
                       (automatic_mask_generator's calculate_stability_score)
  masks.npy            (K, h, w) uint8 0/1 at the original size
  input.npy            (1, 3, S, S) normalised, padded encoder input (absent with --embedding)
  resized.npy          (h', w', 3) uint8 PIL-resized image
  meta.json            sizes, transformed prompts, multimask flag, inferred config
With --dump-stages, also stage_<name>.npy:
  stage_patch_embed        (1, G, G, C) patch conv output, channels last
  stage_pos_embed_added    (1, G, G, C) after + pos_embed
  stage_block_<i>          (1, G, G, C) output of encoder block i
  stage_neck_<0..3>        (1, 256, G, G) after neck conv1x1, LN2d, conv3x3, LN2d (= embedding)
  stage_sparse             (1, N, 256) sparse prompt tokens (points + pad, then box corners)
  stage_dense              (1, 256, G, G) dense prompt embedding (mask_downscaling or no_mask)
  stage_dense_pe           (1, 256, G, G) dense positional encoding (get_dense_pe)
  stage_tokens             (1, 5 + N, 256) decoder input tokens [iou, mask x4, sparse]
  stage_src_in             (1, 256, G, G) embedding + dense
  stage_dec_layer<i>_queries / _keys   (1, T, 256) / (1, G*G, 256) after two-way block i
  stage_decoder_hs         (1, T, 256) tokens after the final attention + LayerNorm
  stage_decoder_src        (1, G*G, 256) image tokens after the transformer
  stage_upscaled           (1, 32, 4G, 4G) output_upscaling result
  stage_hyper_in           (1, 4, 32) hypernetwork outputs of the 4 mask tokens
  stage_masks_all          (1, 4, 4G, 4G) logits of all 4 mask tokens
  stage_iou_pred_all       (1, 4) IoU predictions of all 4 mask tokens
"""

import argparse
import json
import sys
from copy import deepcopy
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.functional import resize, to_pil_image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import read_safetensors  # noqa: E402
from model import Sam, load_checkpoint  # noqa: E402


# ----------------------------------------------------------------------------------------------
# ResizeLongestSide (official: utils/transforms.py)


def get_preprocess_shape(oldh: int, oldw: int, long_side: int) -> Tuple[int, int]:
    scale = long_side * 1.0 / max(oldh, oldw)
    return int(oldh * scale + 0.5), int(oldw * scale + 0.5)


def apply_image(image: np.ndarray, long_side: int) -> np.ndarray:
    """uint8 HWC -> uint8 HWC resized with PIL BILINEAR through torchvision (as the official)."""
    size = get_preprocess_shape(image.shape[0], image.shape[1], long_side)
    return np.array(resize(to_pil_image(image), list(size)))


def apply_coords(coords: np.ndarray, original_size: Tuple[int, int], long_side: int) -> np.ndarray:
    old_h, old_w = original_size
    new_h, new_w = get_preprocess_shape(old_h, old_w, long_side)
    coords = deepcopy(coords).astype(float)  # float64, like the official numpy path
    coords[..., 0] = coords[..., 0] * (new_w / old_w)
    coords[..., 1] = coords[..., 1] * (new_h / old_h)
    return coords


def apply_boxes(boxes: np.ndarray, original_size: Tuple[int, int], long_side: int) -> np.ndarray:
    return apply_coords(boxes.reshape(-1, 2, 2), original_size, long_side).reshape(-1, 4)


# ----------------------------------------------------------------------------------------------
# stability score (official: utils/amg.py calculate_stability_score)


def stability_score(logits: torch.Tensor, threshold: float = 0.0, offset: float = 1.0) -> torch.Tensor:
    inter = (logits > (threshold + offset)).sum(-1, dtype=torch.int16).sum(-1, dtype=torch.int32)
    union = (logits > (threshold - offset)).sum(-1, dtype=torch.int16).sum(-1, dtype=torch.int32)
    return inter / union


# ----------------------------------------------------------------------------------------------
# predictor (official: predictor.py SamPredictor)


class Predictor:
    def __init__(self, model: Sam) -> None:
        self.model = model
        self.long_side = model.image_encoder.img_size
        self.features: Optional[torch.Tensor] = None
        self.stages: Optional[Dict[str, torch.Tensor]] = None

    def set_image(self, image: np.ndarray, compute_embedding: bool = True) -> None:
        """image: uint8 HWC RGB."""
        self.original_size = image.shape[:2]
        self.resized = apply_image(image, self.long_side)
        x = torch.as_tensor(self.resized).permute(2, 0, 1).contiguous()[None, :, :, :]
        self.input_size = tuple(x.shape[-2:])
        if compute_embedding:
            with torch.no_grad():
                self.input = self.model.preprocess(x)
                self.features = self.model.image_encoder(self.input, stages=self.stages)

    def set_embedding(self, emb: torch.Tensor) -> None:
        self.features = emb

    @torch.no_grad()
    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None,
                multimask_output: bool = True):
        coords_t = labels_t = box_t = mask_t = None
        if point_coords is not None:
            pc = apply_coords(point_coords, self.original_size, self.long_side)
            coords_t = torch.as_tensor(pc, dtype=torch.float)[None, :, :]
            labels_t = torch.as_tensor(point_labels, dtype=torch.int)[None, :]
        if box is not None:
            b = apply_boxes(box, self.original_size, self.long_side)
            box_t = torch.as_tensor(b, dtype=torch.float)[None, :]
        if mask_input is not None:
            mask_t = torch.as_tensor(mask_input, dtype=torch.float)[None, :, :, :]
        self.prompt_tensors = (coords_t, labels_t, box_t)

        points = (coords_t, labels_t) if coords_t is not None else None
        pe = self.model.prompt_encoder
        sparse, dense = pe(points=points, boxes=box_t, masks=mask_t, stages=self.stages)
        dense_pe = pe.get_dense_pe()
        if self.stages is not None:
            self.stages["dense_pe"] = dense_pe.clone()
        low_res, iou = self.model.mask_decoder(
            image_embeddings=self.features, image_pe=dense_pe,
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
            multimask_output=multimask_output, stages=self.stages,
        )
        logits = self.model.postprocess_masks(low_res, self.input_size, self.original_size)
        stab = stability_score(logits, self.model.mask_threshold, 1.0)
        masks = logits > self.model.mask_threshold
        return masks[0].numpy(), iou[0].numpy(), low_res[0].numpy(), stab[0].numpy()


# ----------------------------------------------------------------------------------------------
# CLI


def load_embedding(path: str) -> np.ndarray:
    if path.endswith(".safetensors"):
        return read_safetensors(path)["image_embeddings"]
    return np.load(path).astype(np.float32)


def parse_floats(s: str, n: int, what: str):
    parts = s.split(",")
    if len(parts) != n:
        sys.exit(f"{what} wants {n} comma-separated numbers, got {s!r}")
    return [float(p) for p in parts]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--point", action="append", default=[], help="X,Y,LABEL (repeatable)")
    ap.add_argument("--box", help="X0,Y0,X1,Y1")
    ap.add_argument("--mask-input", help="low-res logits .npy")
    ap.add_argument("--mask-index", type=int, default=0)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--multimask", dest="multimask", action="store_true", default=None)
    g.add_argument("--single", dest="multimask", action="store_false")
    ap.add_argument("--embedding", help="precomputed embedding (.npy or .safetensors)")
    ap.add_argument("--decoder-heads", type=int, default=8)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dump-stages", action="store_true")
    args = ap.parse_args()

    model = load_checkpoint(args.ckpt, decoder_heads=args.decoder_heads)
    cfg = model.config
    g4 = 4 * cfg.grid

    image = np.array(Image.open(args.image).convert("RGB"))
    pred = Predictor(model)
    pred.stages = {} if args.dump_stages else None
    pred.set_image(image, compute_embedding=args.embedding is None)
    if args.embedding is not None:
        emb = load_embedding(args.embedding)
        want = (1, cfg.out_chans, cfg.grid, cfg.grid)
        if tuple(emb.shape) != want:
            sys.exit(f"embedding shape {emb.shape}, expected {want}")
        pred.set_embedding(torch.from_numpy(np.ascontiguousarray(emb)))

    point_coords = point_labels = box = mask_input = None
    if args.point:
        pts = [parse_floats(p, 3, "--point") for p in args.point]
        point_coords = np.array([[p[0], p[1]] for p in pts])
        point_labels = np.array([int(p[2]) for p in pts])
    if args.box:
        box = np.array(parse_floats(args.box, 4, "--box"))
    if args.mask_input:
        m = np.load(args.mask_input).astype(np.float32)
        if m.ndim == 3 and m.shape[0] > 1:
            m = m[args.mask_index]
        if m.size != g4 * g4:
            sys.exit(f"mask input has shape {m.shape}, expected {g4}x{g4} values")
        mask_input = m.reshape(1, g4, g4)
    multimask = args.multimask
    if multimask is None:
        multimask = len(args.point) == 1 and box is None

    masks, scores, low_res, stab = pred.predict(point_coords, point_labels, box, mask_input, multimask)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "embedding.npy", pred.features.numpy().astype(np.float32))
    np.save(out / "low_res_logits.npy", low_res.astype(np.float32))
    np.save(out / "scores.npy", scores.astype(np.float32))
    np.save(out / "stability.npy", stab.astype(np.float32))
    np.save(out / "masks.npy", masks.astype(np.uint8))
    np.save(out / "resized.npy", pred.resized.astype(np.uint8))
    if args.embedding is None:
        np.save(out / "input.npy", pred.input.numpy().astype(np.float32))
    coords_t, labels_t, box_t = pred.prompt_tensors
    meta = {
        "image_size": list(pred.original_size),
        "input_size": list(pred.input_size),
        "multimask": multimask,
        "points": coords_t[0].tolist() if coords_t is not None else None,
        "labels": labels_t[0].tolist() if labels_t is not None else None,
        "box": box_t[0, 0].tolist() if box_t is not None else None,
        "mask_input": args.mask_input is not None,
        "config": vars(cfg),
    }
    with open(out / "meta.json", "w") as f:
        json.dump(meta, f, indent=1)
    if pred.stages is not None:
        for name, t in pred.stages.items():
            np.save(out / f"stage_{name}.npy", t.numpy().astype(np.float32))


if __name__ == "__main__":
    main()
