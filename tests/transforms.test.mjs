// Pre/post-processing against the libraries the official code runs:
//  - the resize against Pillow's Image.resize(size, BILINEAR) (what
//    ResizeLongestSide.apply_image calls through torchvision), byte for byte;
//  - Sam.postprocess_masks against torch.nn.functional.interpolate.
// Inputs are random arrays made by /usr/bin/python3 + numpy; the C side runs
// the test tools build/tests/resize_dump and build/tests/postprocess_dump.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { BUILD, runOk, PYTHON, tmpDir } from './helpers.mjs';

const RESIZE_DUMP = path.join(BUILD, 'tests', 'resize_dump');
const POSTPROCESS_DUMP = path.join(BUILD, 'tests', 'postprocess_dump');

// Writes one random RGB8 image per case (raw, row-major HWC) and Pillow's
// resize of it; half the cases are noise (every tap matters), half smooth
// gradients (rounding near .5 matters).
const PIL_SCRIPT = `
import json, sys
import numpy as np
from PIL import Image
cases = json.loads(sys.argv[1]); out = sys.argv[2]
rng = np.random.default_rng(1234)
for i, c in enumerate(cases):
    w, h, ow, oh = c['w'], c['h'], c['ow'], c['oh']
    if i % 2 == 0:
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    else:
        yy, xx = np.mgrid[0:h, 0:w]
        a = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1),
                      (xx * 7 + yy * 3) % 256], -1).astype(np.uint8)
    a.tofile(f'{out}/in{i}.rgb')
    im = Image.fromarray(a)
    box = c.get('box')
    r = im.resize((ow, oh), Image.BILINEAR, box=tuple(box)) if box else im.resize((ow, oh), Image.BILINEAR)
    np.asarray(r, dtype=np.uint8).tofile(f'{out}/ref{i}.rgb')
`;

function resizeCase(w, h, ow, oh, box) {
  return box ? { w, h, ow, oh, box } : { w, h, ow, oh };
}

// The official target is the longest side to 1024 (get_preprocess_shape);
// the others exercise one-axis passes, upscales, huge shrink factors (more
// taps than the C code caches) and Pillow's box argument.
const RESIZE_CASES = [
  resizeCase(1500, 200, 1024, 137),   // strong downscale, wide support
  resizeCase(1500, 200, 1024, 137),
  resizeCase(97, 61, 1024, 644),      // strong upscale
  resizeCase(640, 427, 1024, 683),
  resizeCase(300, 500, 614, 1024),
  resizeCase(2000, 1999, 1024, 1023),
  resizeCase(1, 1, 1024, 1024),
  resizeCase(1023, 7, 1024, 7),       // only the width changes: horizontal pass only
  resizeCase(7, 1023, 7, 1024),       // only the height changes: vertical pass only
  resizeCase(1024, 700, 1024, 700),   // longest side already 1024: a copy
  resizeCase(1024, 500, 1024, 300),
  resizeCase(5, 5, 3, 3),
  resizeCase(3, 3, 5, 5),
  resizeCase(3000, 2, 5, 2),          // 600x shrink: taps beyond the cache
  resizeCase(2, 3000, 2, 4),
  resizeCase(1500, 200, 1024, 137, [10.5, 3.25, 900.75, 190]),
  resizeCase(1500, 200, 300, 200, [0.3, 0, 1499.9, 200]),
  resizeCase(1500, 200, 1024, 137, [100, 20, 1124, 157]),  // integer box of the output size: a crop
];

test('resize_pil_bilinear_rgb equals Pillow Image.resize(BILINEAR) byte for byte', () => {
  const dir = tmpDir('resize');
  runOk(PYTHON, ['-c', PIL_SCRIPT, JSON.stringify(RESIZE_CASES), dir]);
  RESIZE_CASES.forEach((c, i) => {
    const args = [path.join(dir, `in${i}.rgb`), c.w, c.h, c.ow, c.oh, path.join(dir, `out${i}.rgb`)];
    if (c.box) args.push(...c.box);
    runOk(RESIZE_DUMP, args.map(String));
    const ours = fs.readFileSync(path.join(dir, `out${i}.rgb`));
    const ref = fs.readFileSync(path.join(dir, `ref${i}.rgb`));
    assert.equal(ours.length, ref.length, `case ${i} size`);
    let diff = 0, first = -1;
    for (let k = 0; k < ref.length; k++) {
      if (ours[k] !== ref[k]) {
        if (first < 0) first = k;
        diff++;
      }
    }
    const where = first < 0 ? '' : ` first at byte ${first}: ours ${ours[first]} Pillow ${ref[first]}`;
    assert.equal(diff, 0, `${JSON.stringify(c)}: ${diff} bytes differ from Pillow${where}`);
  });
  fs.rmSync(dir, { recursive: true, force: true });
});

// Random 256x256 logits as the decoder makes them, through
// Sam.postprocess_masks (interpolate to 1024, crop, interpolate to the
// original size) for a (1, C, 256, 256) tensor: C = 3 is multimask output,
// C = 1 single-mask output; PyTorch picks a different kernel for each.
const TORCH_SCRIPT = `
import json, sys
import numpy as np
import torch
import torch.nn.functional as F
cases = json.loads(sys.argv[1]); out = sys.argv[2]
torch.manual_seed(0)
for i, c in enumerate(cases):
    x = torch.randn(1, c['channels'], 256, 256) * 8
    x[0, 0].numpy().astype(np.float32).tofile(f'{out}/lr{i}.f32')
    up = F.interpolate(x, (1024, 1024), mode='bilinear', align_corners=False)
    up = up[..., : c['rh'], : c['rw']]
    y = F.interpolate(up, (c['h'], c['w']), mode='bilinear', align_corners=False)
    y[0, 0].numpy().astype(np.float32).tofile(f'{out}/ref{i}.f32')
`;

const POST_CASES = [];
for (const channels of [3, 1]) {
  for (const [rh, rw, h, w] of [
    [683, 1024, 427, 640],   // landscape: the crop keeps whole rows
    [1024, 683, 1500, 1000], // portrait, upscale to the original
    [1024, 1024, 1024, 1024],// square 1024: second interpolate is the identity
    [137, 1024, 200, 1500],
    [1024, 7, 1023, 7],
    [644, 1024, 61, 97],     // shrink back to a small original
  ]) {
    POST_CASES.push({ channels, rh, rw, h, w });
  }
}

test('postprocess_logits matches F.interpolate (bilinear, align_corners=False)', (t) => {
  const dir = tmpDir('postprocess');
  runOk(PYTHON, ['-c', TORCH_SCRIPT, JSON.stringify(POST_CASES), dir]);
  let exact = 0, total = 0;
  POST_CASES.forEach((c, i) => {
    const outPath = path.join(dir, `out${i}.f32`);
    runOk(POSTPROCESS_DUMP, [path.join(dir, `lr${i}.f32`), 256, 1024, c.rh, c.rw, c.h, c.w, c.channels, outPath].map(String));
    const buf = fs.readFileSync(outPath), rbuf = fs.readFileSync(path.join(dir, `ref${i}.f32`));
    const ours = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
    const ref = new Float32Array(rbuf.buffer, rbuf.byteOffset, rbuf.length / 4);
    assert.equal(ours.length, c.h * c.w);
    assert.equal(ref.length, c.h * c.w);
    // Tolerance: the C code reproduces torch 1.13's AVX2 kernels to the bit
    // (fma contraction, double accumulation on the channels-last path); a
    // torch built differently may round each of the ~3 multiply-adds per
    // output differently, i.e. by a few ulp of logits of magnitude <= ~40
    // (ulp 3.8e-6): 1e-5 absolute plus 1e-6 relative covers that and
    // nothing coarser (a wrong tap or lambda moves values by ~1e-2).
    let worst = 0, worstAt = -1;
    for (let k = 0; k < ref.length; k++) {
      const d = Math.abs(ours[k] - ref[k]);
      const excess = d - (1e-5 + 1e-6 * Math.abs(ref[k]));
      if (excess > worst) { worst = excess; worstAt = k; }
      // Masks are logits > 0: the sign must agree except within 1e-5 of 0.
      if (Math.abs(ref[k]) > 1e-5) {
        assert.equal(ours[k] > 0, ref[k] > 0, `${JSON.stringify(c)} sign differs at ${k}: ours ${ours[k]} torch ${ref[k]}`);
      }
      if (ours[k] === ref[k]) exact++;
      total++;
    }
    assert.equal(worstAt, -1, `${JSON.stringify(c)}: at ${worstAt} ours ${ours[worstAt]} torch ${ref[worstAt]}`);
  });
  t.diagnostic(`bit-identical outputs: ${exact} of ${total}`);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('preprocess shape, coordinate transform and stability score (tests/c/test_transforms.c)', () => {
  runOk(path.join(BUILD, 'tests', 'test_transforms'), []);
});
