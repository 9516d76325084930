"""Exports the prompt encoder + mask decoder of a checkpoint to ONNX, with the interface of the
official ONNX decoder (segment_anything/utils/onnx.py SamOnnxModel, scripts/export_onnx_model.py),
so that ONNX runtimes can be benchmarked against ours on the same weights (bench/decoder.mjs).

usage: /usr/bin/python3 tools/sam_ref/export_onnx.py --ckpt FILE.pth --out DECODER.onnx
           [--opset 17] [--decoder-heads 8] [--no-check]

Inputs (float32; G is the embedding grid, 64 for the official models, S = 16 G the input size):
  image_embeddings  (1, 256, G, G)
  point_coords      (1, N, 2)   x, y in the model's input frame (after ResizeLongestSide, i.e.
                                 original pixels * S / max(h, w)); N is a dynamic axis
  point_labels      (1, N)      1 foreground, 0 background, 2 / 3 box corners, -1 padding point
                                 (without a box, append a (0, 0) point with label -1, as the
                                 official ONNX example does)
  mask_input        (1, 1, 4G, 4G) low-res logits of an earlier prediction (zeros when unused)
  has_mask_input    (1,)        1 to use mask_input, 0 to use the no-mask embedding
  orig_im_size      (2,)        h, w of the original image
Outputs (K = 4: every mask token, as the official export without --return-single-mask;
K = 3 with --multimask-only: tokens 1..3, what SamPredictor.predict(multimask_output=True)
returns):
  masks             (1, K, h, w)   logits at the original size: bilinear to S x S, crop to the
                                    resized image, bilinear to h x w (Sam.postprocess_masks)
  iou_predictions   (1, K)         predicted IoU (no sigmoid)
  low_res_masks     (1, K, 4G, 4G) low-res logits
 Before writing the file, the wrapper is checked in PyTorch against the predictor path of
predict.py (sparse/dense prompt encoding + MaskDecoder + postprocess_masks) on random inputs.
"""

import argparse
import sys
import warnings
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import Sam, load_checkpoint  # noqa: E402


class DecoderForOnnx(nn.Module):
    """Prompt encoding, mask decoding and mask postprocessing of `sam`, written with tensor ops
    only (no Python branching on input values), so that tracing keeps N, the mask input switch and
    the original size as graph inputs."""

    def __init__(self, sam: Sam, multimask_only: bool = False) -> None:
        super().__init__()
        self.sam = sam
        self.multimask_only = multimask_only
        self.img_size = sam.image_encoder.img_size
        pe = sam.prompt_encoder
        # Per-label embeddings, rows in label order 0..3 (negative, positive, box corners).
        self.register_buffer(
            "label_table",
            torch.cat([pe.point_embeddings[i].weight for i in range(pe.num_point_embeddings)], 0).detach(),
            persistent=False)

    def embed_points(self, coords: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(1, N, 2) input-frame coords + (1, N) float labels -> (1, N, C) sparse tokens, as
        PromptEncoder._embed_points (the caller supplies the padding point)."""
        pe = self.sam.prompt_encoder
        enc = pe.pe_layer._pe_encoding((coords + 0.5) / self.img_size)  # (1, N, C)
        lab = labels.unsqueeze(-1)                                       # (1, N, 1)
        padding = (lab == -1).to(enc.dtype)
        out = enc * (1 - padding) + padding * pe.not_a_point_embed.weight
        for i in range(self.label_table.shape[0]):
            out = out + (lab == i).to(enc.dtype) * self.label_table[i]
        return out

    def embed_mask(self, mask_input: torch.Tensor, has_mask_input: torch.Tensor) -> torch.Tensor:
        """(1, C, G, G): mask_downscaling(mask_input) when has_mask_input is 1, else no_mask_embed."""
        pe = self.sam.prompt_encoder
        no_mask = pe.no_mask_embed.weight.reshape(1, -1, 1, 1)
        return has_mask_input * pe.mask_downscaling(mask_input) + (1 - has_mask_input) * no_mask

    def postprocess(self, masks: torch.Tensor, orig_im_size: torch.Tensor) -> torch.Tensor:
        """Sam.postprocess_masks with the sizes computed in the graph from orig_im_size (h, w):
        resized size = floor(orig * S / max(orig) + 0.5) (ResizeLongestSide.get_preprocess_shape)."""
        s = self.img_size
        masks = F.interpolate(masks, size=(s, s), mode="bilinear", align_corners=False)
        size = orig_im_size.to(torch.float32)
        resized = torch.floor(size * (s / torch.max(size)) + 0.5).to(torch.int64)
        masks = masks[..., : resized[0], : resized[1]]
        orig = size.to(torch.int64)
        return F.interpolate(masks, size=(orig[0], orig[1]), mode="bilinear", align_corners=False)

    @torch.no_grad()
    def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input,
                orig_im_size):
        sparse = self.embed_points(point_coords, point_labels)
        dense = self.embed_mask(mask_input, has_mask_input)
        masks, iou = self.sam.mask_decoder.predict_masks(
            image_embeddings, self.sam.prompt_encoder.get_dense_pe(), sparse, dense)
        # --multimask-only: mask tokens 1..3 (MaskDecoder.forward with multimask_output=True);
        # otherwise all 4, as the official SamOnnxModel.
        if self.multimask_only:
            masks, iou = masks[:, 1:, :, :], iou[:, 1:]
        return self.postprocess(masks, orig_im_size), iou, masks


def dummy_inputs(sam: Sam, n_points: int = 3, seed: int = 0, mask: bool = False):
    g = sam.prompt_encoder.image_embedding_size[0]
    c = sam.prompt_encoder.embed_dim
    s = sam.image_encoder.img_size
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (1, n_points), generator=gen).to(torch.float32)
    labels[0, -1] = -1  # padding point
    coords = torch.rand((1, n_points, 2), generator=gen) * torch.tensor([s, s * 0.6])
    coords[0, -1] = 0
    return {
        "image_embeddings": torch.randn((1, c, g, g), generator=gen),
        "point_coords": coords,
        "point_labels": labels,
        "mask_input": torch.randn((1, 1, 4 * g, 4 * g), generator=gen) if mask else torch.zeros((1, 1, 4 * g, 4 * g)),
        "has_mask_input": torch.tensor([1.0 if mask else 0.0]),
        "orig_im_size": torch.tensor([0.6 * s - 0.4, s], dtype=torch.float32).round(),
    }


@torch.no_grad()
def check_against_predictor(sam: Sam, wrapper: DecoderForOnnx) -> float:
    """Compares the wrapper with the predictor path of predict.py (PromptEncoder.forward with the
    padding point it appends itself, MaskDecoder.forward(multimask), Sam.postprocess_masks)."""
    worst = 0.0
    for seed, mask in ((1, False), (2, True)):
        x = dummy_inputs(sam, n_points=3, seed=seed, mask=mask)
        got = wrapper(**x)
        coords, labels = x["point_coords"][:, :-1], x["point_labels"][:, :-1]
        sparse, dense = sam.prompt_encoder(points=(coords, labels.to(torch.int)), boxes=None,
                                           masks=x["mask_input"] if mask else None)
        low_res, iou = sam.mask_decoder(x["image_embeddings"], sam.prompt_encoder.get_dense_pe(),
                                        sparse, dense, multimask_output=True)
        h, w = (int(v) for v in x["orig_im_size"])
        s = sam.image_encoder.img_size
        scale = s / max(h, w)
        input_size = (int(h * scale + 0.5), int(w * scale + 0.5))
        masks = sam.postprocess_masks(low_res, input_size, (h, w))
        if not wrapper.multimask_only:  # the predictor's 3 are tokens 1..3 of the 4
            got = tuple(t[:, 1:] for t in got)
        for a, b in zip(got, (masks, iou, low_res)):
            if a.shape != b.shape:
                raise SystemExit(f"export check: shape {tuple(a.shape)} != predictor {tuple(b.shape)}")
            worst = max(worst, float((a - b).abs().max()))
    if worst > 1e-4:
        raise SystemExit(f"export check: wrapper differs from the predictor path by {worst:.3g}")
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--decoder-heads", type=int, default=8)
    ap.add_argument("--no-check", action="store_true", help="skip the PyTorch self-check")
    ap.add_argument("--multimask-only", action="store_true",
                    help="output mask tokens 1..3 only (default: all 4, as the official export)")
    args = ap.parse_args()

    sam = load_checkpoint(args.ckpt, decoder_heads=args.decoder_heads)
    wrapper = DecoderForOnnx(sam, multimask_only=args.multimask_only).eval()
    if not args.no_check:
        worst = check_against_predictor(sam, wrapper)
        print(f"export check: wrapper vs predictor path max abs diff {worst:.3g}", file=sys.stderr)

    x = dummy_inputs(sam, n_points=5, seed=0, mask=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=UserWarning)
        torch.onnx.export(
            wrapper, tuple(x.values()), args.out, export_params=True, opset_version=args.opset,
            do_constant_folding=True, input_names=list(x.keys()),
            output_names=["masks", "iou_predictions", "low_res_masks"],
            dynamic_axes={"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}},
        )
    print(f"wrote {args.out} (opset {args.opset})", file=sys.stderr)


if __name__ == "__main__":
    main()
