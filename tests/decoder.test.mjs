// Prompt encoder and mask decoder against the PyTorch reference
// (tools/sam_ref/model.py, op for op the official modules) with random
// weights at the official decoder sizes (D 256, grid 64, 4 mask tokens),
// stage by stage: sparse tokens, dense PE, dense prompt, all four masks'
// low-res logits and IoU predictions. The C side is build/tests/decoder_dump,
// which also checks that the arena sized by the scratch functions suffices.
// Every case runs on each decoder path: the straightforward transcription
// ("reference"), the rearranged attentions ("fast", src/model/
// decoder_attention.c) and, without a mask input, those plus the per-image
// state ("state", what sam_predict uses).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, BUILD, runOk, PYTHON, tmpDir } from './helpers.mjs';

const DECODER_DUMP = path.join(BUILD, 'tests', 'decoder_dump');

const CASES = {
  one_point: { points: [[400.5, 300.25]], labels: [1] },
  // 12 points: 18 tokens, where the rearrangement costs more and the fast
  // path falls back to the reference form.
  many_points: {
    points: [[10, 20], [1000, 30], [500, 500], [250.5, 750], [700, 100], [64, 64],
      [900, 900], [300, 10], [20, 1000], [600, 650], [128, 384], [1010, 512]],
    labels: [1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0],
  },
  points: { points: [[100.3, 200.7], [800, 50], [512.5, 700.25]], labels: [1, 0, 1] },
  // 24 points: 30 tokens, past what the factored form (src/model/decoder_lowrank.c)
  // pays for: with the per-image state, block 0 comes from the image's
  // products and the later blocks run on formed tokens.
  crowd: {
    points: Array.from({ length: 24 }, (_, i) => [20.5 + 41 * i, 1000 - 37.25 * i]),
    labels: Array.from({ length: 24 }, (_, i) => (i % 3 === 0 ? 0 : 1)),
  },
  points_box_mask: { points: [[300, 400], [10, 1000]], labels: [0, 1], box: [120.5, 80, 900, 620.75], mask: true },
  box: { box: [0, 0, 1023, 767] },
  mask_only: { mask: true },      // no sparse tokens at all
  nothing: {},                    // no prompt: no_mask_embed and 5 tokens
};

const REF_SCRIPT = `
import json, os, sys
import numpy as np
import torch
root, out = sys.argv[1], sys.argv[2]
cases = json.loads(sys.argv[3])
sys.path.insert(0, os.path.join(root, 'tools', 'sam_ref'))
import model as M
torch.manual_seed(0)
pe = M.PromptEncoder(256, (64, 64), (1024, 1024), 16)
dec = M.MaskDecoder(transformer_dim=256,
                    transformer=M.TwoWayTransformer(depth=2, embedding_dim=256, num_heads=8, mlp_dim=2048),
                    num_multimask_outputs=3, iou_head_depth=3, iou_head_hidden_dim=256)
# Default init leaves norms at weight 1, bias 0; randomise them so that a
# swapped or missing gamma/beta shows.
with torch.no_grad():
    for m in list(pe.modules()) + list(dec.modules()):
        if isinstance(m, torch.nn.LayerNorm) or type(m).__name__ == 'LayerNorm2d':
            m.weight.copy_(1 + 0.2 * torch.randn_like(m.weight))
            m.bias.copy_(0.2 * torch.randn_like(m.bias))
    # Scale the last layers so that logits and IoU reach the magnitudes of
    # trained models (|logit| ~ 10) and the relative tolerance means something.
    for mlp in dec.output_hypernetworks_mlps:
        mlp.layers[-1].weight.mul_(30)
    dec.iou_prediction_head.layers[-1].weight.mul_(30)
os.makedirs(f'{out}/w', exist_ok=True)
for prefix, mod in (('prompt_encoder', pe), ('mask_decoder', dec)):
    for k, v in mod.state_dict().items():
        v.detach().numpy().astype(np.float32).tofile(f'{out}/w/{prefix}.{k}.f32')
emb = torch.randn(1, 256, 64, 64)
emb.numpy().astype(np.float32).tofile(f'{out}/embedding.f32')
dense_pe = pe.get_dense_pe()
def save(name, t):
    t.detach().numpy().astype(np.float32).tofile(name)
for name, c in cases.items():
    d = f'{out}/{name}'
    os.makedirs(d, exist_ok=True)
    pts = None
    if 'points' in c:
        coords = torch.tensor([c['points']], dtype=torch.float)
        labels = torch.tensor([c['labels']], dtype=torch.int)
        coords.numpy().tofile(f'{d}/coords.f32')
        labels.numpy().astype(np.int32).tofile(f'{d}/labels.i32')
        pts = (coords, labels)
    box = None
    if 'box' in c:
        box = torch.tensor([c['box']], dtype=torch.float)
        box.numpy().tofile(f'{d}/box.f32')
    mask = None
    if c.get('mask'):
        mask = torch.randn(1, 1, 256, 256) * 6
        mask.numpy().tofile(f'{d}/mask.f32')
    with open(f'{d}/prompt.txt', 'w') as f:
        f.write(f"{len(c.get('points', []))} {int(box is not None)} {int(mask is not None)}\\n")
    with torch.no_grad():
        sparse, dense = pe(pts, box, mask)
        masks, iou = dec.predict_masks(emb, dense_pe, sparse, dense)
    save(f'{d}/ref_sparse.f32', sparse)
    save(f'{d}/ref_dense_pe.f32', dense_pe)
    save(f'{d}/ref_dense.f32', dense)
    save(f'{d}/ref_masks.f32', masks)
    save(f'{d}/ref_iou.f32', iou)
`;

function readF32(file) {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
}

// Worst |c - ref| - (atol + rtol |ref|); fails naming the element.
function assertClose(name, ours, ref, atol, rtol) {
  assert.equal(ours.length, ref.length, `${name}: ${ours.length} values, reference ${ref.length}`);
  let worst = -Infinity, at = -1, maxAbs = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(ours[i] - ref[i]);
    if (!(d <= atol + rtol * Math.abs(ref[i]))) {
      const excess = Number.isNaN(d) ? Infinity : d - (atol + rtol * Math.abs(ref[i]));
      if (excess > worst) { worst = excess; at = i; }
    }
    if (d > maxAbs) maxAbs = d;
  }
  assert.equal(at, -1, `${name}: worst at index ${at}: C ${ours[at]} reference ${ref[at]} (atol ${atol}, rtol ${rtol})`);
  return maxAbs;
}

// Tolerances. The C code computes the same float32 operations in another
// order (GEMM blocking, double-accumulated LayerNorm, libm sin/cos), so each
// op agrees to a few ulp. Measured on torch 1.13 (max |C - torch|): sparse
// and dense PE <= 3e-7 (values <= 5), dense prompt <= 1e-6, masks <= 2e-5
// (logits up to ~15), IoU <= 3e-6. The bounds leave ~10x room for faster
// GEMMs; a wrong index, head split or missing term moves values by O(1).
const TOL = {
  sparse: [2e-6, 1e-6],
  dense_pe: [2e-6, 1e-6],
  dense: [1e-5, 1e-5],
  masks: [2e-4, 2e-4],
  iou: [1e-4, 1e-4],
};

test('prompt encoder and mask decoder match the PyTorch reference', (t) => {
  const dir = tmpDir('decoder');
  runOk(PYTHON, ['-c', REF_SCRIPT, ROOT, dir, JSON.stringify(CASES)]);
  for (const [name, spec] of Object.entries(CASES)) {
    const paths = spec.mask ? ['reference', 'fast'] : ['reference', 'fast', 'state'];
    for (const decoderPath of paths) {
      const r = runOk(DECODER_DUMP, [dir, name, decoderPath]);
      t.diagnostic(`${name} (${decoderPath}): ${r.stdout.trim()}`);
      const d = path.join(dir, name);
      for (const [stage, [atol, rtol]] of Object.entries(TOL)) {
        const maxAbs = assertClose(`${name} (${decoderPath}) ${stage}`,
          readF32(path.join(d, `c_${stage}.f32`)), readF32(path.join(d, `ref_${stage}.f32`)),
          atol, rtol);
        t.diagnostic(`${name} (${decoderPath}) ${stage}: max |C - torch| ${maxAbs.toExponential(2)}`);
      }
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
});
