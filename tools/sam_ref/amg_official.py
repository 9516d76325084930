"""Runs the official SamAutomaticMaskGenerator (from a checkout of facebookresearch/segment-anything,
not part of this repository) on one of our checkpoints and writes its records in the layout of
`sam everything --output-mode uncompressed_rle`, to check `build/sam everything` and amg.py
against the official code itself.

usage: /usr/bin/python3 tools/sam_ref/amg_official.py --official-src DIR --ckpt F.pth --image IMG
           --out OUT.json [--options '{"points_per_side": 16, "pred_iou_thresh": 0, ...}']

DIR holds the `segment_anything` package (e.g. `git clone https://github.com/facebookresearch/
segment-anything`). The official Sam is built with the config inferred from the checkpoint's
shapes (model.py config_from_state_dict), so the random-weight test checkpoints load too.
Limits: output_mode stays binary_mask (coco_rle needs pycocotools) and min_mask_region_area
needs OpenCV; neither is installed here.
"""

import argparse
import json
import sys
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from amg import rle_encode  # noqa: E402
from model import config_from_state_dict  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official-src", required=True)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--options", default="{}", help="SamAutomaticMaskGenerator keyword arguments (JSON)")
    args = ap.parse_args()
    sys.path.insert(0, args.official_src)
    from segment_anything import SamAutomaticMaskGenerator
    from segment_anything.modeling import (ImageEncoderViT, MaskDecoder, PromptEncoder, Sam,
                                           TwoWayTransformer)

    sd = torch.load(args.ckpt, map_location="cpu")
    c = config_from_state_dict(sd)
    if c.tinyvit is not None:
        sys.exit("TinyViT (MobileSAM) checkpoints are not built here")
    g = c.img_size // c.patch_size
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=c.depth, embed_dim=c.embed_dim, img_size=c.img_size, mlp_ratio=c.mlp_dim / c.embed_dim,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=c.num_heads,
            patch_size=c.patch_size, qkv_bias=c.qkv_bias, use_rel_pos=True,
            global_attn_indexes=c.global_attn_indexes, window_size=c.window_size, out_chans=c.out_chans),
        prompt_encoder=PromptEncoder(
            embed_dim=c.prompt_embed_dim, image_embedding_size=(g, g),
            input_image_size=(c.img_size, c.img_size), mask_in_chans=c.mask_in_chans),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=c.num_multimask_outputs,
            transformer=TwoWayTransformer(depth=c.decoder_depth, embedding_dim=c.prompt_embed_dim,
                                          mlp_dim=c.decoder_mlp_dim, num_heads=c.decoder_heads),
            transformer_dim=c.prompt_embed_dim, iou_head_depth=c.iou_head_depth,
            iou_head_hidden_dim=c.iou_head_hidden_dim),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])
    sam.load_state_dict(sd)
    sam.eval()
    image = np.array(Image.open(args.image).convert("RGB"))
    recs = SamAutomaticMaskGenerator(sam, **json.loads(args.options)).generate(image)
    for r in recs:
        r["segmentation"] = rle_encode(r["segmentation"])
    with open(args.out, "w") as f:
        json.dump(recs, f)
    print(len(recs))


if __name__ == "__main__":
    main()
