// MobileSAM (model type "vit_t", TinyViT image encoder) against the PyTorch
// reference (tools/sam_ref/tiny_vit.py), on random weights saved in the
// layout of the published mobile_sam.pt: the checkpoint is recognised from
// its tensors, BatchNorm folding at load gives the reference's embedding,
// every prompt kind of the ViT-B parity set matches natively and in WASM
// (web/sam.js setImage, with per-stage progress), converted safetensors
// (f32, f16) load, and a wrong shape is refused with a clear message.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SamPredictor } from '../web/sam.js';
import { checkpoint, image, safetensors } from './fixtures.mjs';
import { PYTHON, python, readNpy, ROOT, run, runOk, SAM, tmpDir } from './helpers.mjs';
import { checkImage, EMBEDDING_REL_L2, MASK_IOU, promptSet, SCORE_ABS } from './parity.mjs';
import { decodePng } from './png.mjs';

// f16 weights round each parameter by up to 2^-11 relative; through the 12
// TinyViT blocks and the folded BatchNorms the embedding moves ~1e-3.
const F16_EMBEDDING_REL_L2 = 5e-3;

function relL2(a, b) {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) { num += (a[i] - b[i]) ** 2; den += b[i] ** 2; }
  return Math.sqrt(num / den);
}

function readSafetensors(file) {
  const buf = fs.readFileSync(file);
  const len = Number(buf.readBigUInt64LE(0));
  return { header: JSON.parse(buf.toString('utf8', 8, 8 + len)), body: buf.subarray(8 + len) };
}

// The float32 `image_embeddings` of an embedding file.
function embeddingOf(file) {
  const { header, body } = readSafetensors(file);
  const t = header.image_embeddings;
  assert.equal(t.dtype, 'F32');
  const b = body.subarray(t.data_offsets[0], t.data_offsets[1]);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

// CLI prompt arguments (parity.mjs promptSet) as a web/sam.js prompt.
function jsPrompt(args) {
  const prompt = { points: [] };
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--point') prompt.points.push(args[++i].split(',').map(Number));
    else if (args[i] === '--box') prompt.box = args[++i].split(',').map(Number);
    else if (args[i] === '--multimask') prompt.multimask = true;
  }
  return prompt;
}

function iou(a, b) {
  let inter = 0, union = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] !== 0, y = b[i] !== 0;
    inter += x && y;
    union += x || y;
  }
  return union === 0 ? 1 : inter / union;
}

describe('MobileSAM (vit_t)', { concurrency: false }, () => {
  const dir = tmpDir('mobilesam');
  const ckpt = checkpoint('vit_t');

  test('the official mobile_sam.pt layout is recognised from its tensors', () => {
    const info = JSON.parse(runOk(SAM, ['info', '--model', ckpt]).stdout);
    assert.equal(info.model_type, 'vit_t');
    assert.match(info.model_id, /^vit_t-320x12-g64-/);
    assert.equal(info.encoder, 'tinyvit');
    assert.deepEqual(info.embed_dims, [64, 128, 160, 320]);
    assert.deepEqual(info.depths, [2, 2, 6, 2]);
    assert.deepEqual(info.stage_heads, [4, 5, 10]);
    assert.deepEqual(info.window_sizes, [7, 14, 7]);
    assert.equal(info.img_size, 1024);
    // The converted file keeps the official (unfolded) tensors and names:
    // BatchNorm statistics, num_batches_tracked, the unused classifier head;
    // attention_bias_idxs is not persistent in the official TinyViT.
    const { header } = readSafetensors(safetensors('vit_t'));
    assert.equal(header.__metadata__.model_type, 'vit_t');
    assert.match(header.__metadata__.config, /encoder=tinyvit,img_size=1024,embed_dims=64 128 160 320,depths=2 2 6 2/);
    assert.deepEqual(header['image_encoder.layers.2.blocks.5.attn.attention_biases'].shape, [5, 196]);
    assert.deepEqual(header['image_encoder.layers.1.downsample.conv2.c.weight'].shape, [160, 1, 3, 3]);
    assert.deepEqual(header['image_encoder.patch_embed.seq.0.bn.running_var'].shape, [32]);
    assert.equal(header['image_encoder.patch_embed.seq.0.bn.num_batches_tracked'].dtype, 'I64');
    assert.deepEqual(header['image_encoder.head.weight'].shape, [1000, 320]);
    assert.ok(!Object.keys(header).some((k) => k.includes('attention_bias_idxs')));
    assert.equal(Object.keys(header).filter((k) => k !== '__metadata__').length, 439);
  });

  // Same images and prompts as the ViT-B parity test, two of its sizes (the
  // reference TinyViT takes a few seconds per image), and a portrait one: the
  // encoder computes the zero padding's rows (landscape) or columns (portrait)
  // once (src/model/repeated_band.h).
  for (const [w, h] of [[640, 427], [1500, 200], [427, 640]]) {
    test(`native ${w}x${h}: embedding and every prompt kind`, () => {
      const results = checkImage(ckpt, w, h, dir);
      fs.writeFileSync(path.join(dir, `metrics_${w}x${h}.json`), JSON.stringify(results, null, 1));
    });
  }

  test('converted safetensors: f32 gives the same embedding, f16 stays close', () => {
    const img = image(640, 427, 640 * 7 + 427);
    const embs = {};
    for (const [name, model] of [['pth', ckpt], ['f32', safetensors('vit_t')], ['f16', safetensors('vit_t', 'f16')]]) {
      embs[name] = path.join(dir, `conv-${name}.safetensors`);
      runOk(SAM, ['encode', '--model', model, '--image', img, '--out', embs[name]]);
    }
    const a = embeddingOf(embs.pth);
    assert.deepEqual(Buffer.from(embeddingOf(embs.f32).buffer), Buffer.from(a.buffer));
    const e16 = relL2(embeddingOf(embs.f16), a);
    assert.ok(e16 < F16_EMBEDDING_REL_L2, `f16 embedding rel L2 ${e16}`);
    assert.ok(fs.statSync(safetensors('vit_t', 'f16')).size < 0.6 * fs.statSync(safetensors('vit_t')).size);
    // The f16 model's embedding decodes with the f32 model (same model id).
    runOk(SAM, ['predict', '--model', ckpt, '--embedding', embs.f16, '--point', '300,200,1', '--out', path.join(dir, 'f16-pred')]);
  });

  describe('WASM (web/sam.js)', () => {
    const w = 640, h = 427;
    const img = image(w, h, w * 7 + h);
    let sam;
    let refEmbedding;

    before(async () => {
      const refDir = path.join(dir, 'wasm-enc-ref');
      python('tools/sam_ref/predict.py', ['--ckpt', ckpt, '--image', img, '--point', '1,1,1', '--out', refDir]);
      refEmbedding = path.join(refDir, 'embedding.npy');
      sam = await SamPredictor.load(safetensors('vit_t', 'f32'), { cache: 'none' });
    });
    after(() => sam && sam.dispose());

    test('setImage: per-stage progress, embedding as the reference', async (t) => {
      assert.equal(sam.modelInfo.type, 'vit_t');
      assert.equal(sam.modelInfo.config.encoder, 'tinyvit');
      const events = [];
      await sam.setImage(decodePng(fs.readFileSync(img)), { onProgress: (p) => events.push(p) });
      assert.deepEqual(events.map((p) => `${p.stage} ${p.done}/${p.total}`),
        ['encode 1/5', 'encode 2/5', 'encode 3/5', 'encode 4/5', 'encode 5/5']);
      const file = path.join(dir, 'wasm-emb.safetensors');
      fs.writeFileSync(file, await sam.getEmbedding());
      const err = relL2(embeddingOf(file), readNpy(refEmbedding).data);
      assert.ok(err < EMBEDDING_REL_L2, `WASM embedding rel L2 ${err}`);
      t.diagnostic(`WASM embedding rel L2 ${err.toExponential(2)}`);
    });

    test('every prompt kind: masks and scores as the reference', async (t) => {
      for (const [name, args] of Object.entries(promptSet(w, h))) {
        const refDir = path.join(dir, `wasm-${name}-ref`);
        python('tools/sam_ref/predict.py', ['--ckpt', ckpt, '--image', img, '--embedding', refEmbedding,
          ...args, '--out', refDir]);
        const refMasks = readNpy(path.join(refDir, 'masks.npy'));
        const refScores = readNpy(path.join(refDir, 'scores.npy')).data;
        const r = await sam.predict(jsPrompt(args));
        assert.equal(r.masks.length, refMasks.shape[0], `${name}: mask count`);
        const n = w * h;
        let minIou = 1;
        r.masks.forEach((m, k) => {
          const v = iou(m.data, refMasks.data.subarray(k * n, (k + 1) * n));
          minIou = Math.min(minIou, v);
          assert.ok(v >= MASK_IOU, `${name}: mask ${k} IoU ${v}`);
          assert.ok(Math.abs(m.score - refScores[k]) < SCORE_ABS, `${name}: score ${k} ${m.score} vs ${refScores[k]}`);
        });
        t.diagnostic(`${name}: ${r.masks.length} masks, min IoU ${minIou.toFixed(6)}`);
      }
    });
  });

  test('optional tensors: without num_batches_tracked and the classifier, with attention_bias_idxs', () => {
    // Another exporter may drop the BatchNorm counters and the unused classifier head, or
    // persist the attention bias index (the official TinyViT does not): same model, same embedding.
    const py = `
import sys, torch
sys.path.insert(0, sys.argv[3])
from tiny_vit import bias_index
sd = torch.load(sys.argv[1])
out = {}
for k, v in sd.items():
    if k.endswith('num_batches_tracked') or k.startswith('image_encoder.head.') or k.startswith('image_encoder.norm_head.'):
        continue
    out[k] = v
    if k.endswith('attn.attention_biases'):
        out[k[:-len('attention_biases')] + 'attention_bias_idxs'] = bias_index(int(round(v.shape[1] ** 0.5)))
torch.save(out, sys.argv[2])
`;
    const variant = path.join(dir, 'variant.pth');
    const r = run(PYTHON, ['-c', py, ckpt, variant, path.join(ROOT, 'tools/sam_ref')]);
    assert.equal(r.status, 0, r.stderr);
    const img = image(97, 61, 11);
    const embs = [ckpt, variant].map((model, i) => {
      const out = path.join(dir, `variant-${i}.safetensors`);
      runOk(SAM, ['encode', '--model', model, '--image', img, '--out', out]);
      return embeddingOf(out);
    });
    assert.equal(JSON.parse(runOk(SAM, ['info', '--model', variant]).stdout).model_type, 'vit_t');
    assert.deepEqual(Buffer.from(embs[1].buffer), Buffer.from(embs[0].buffer));
  });

  test('a TinyViT checkpoint with a wrong or missing tensor is refused by name', () => {
    const py = `
import sys, torch
sd = torch.load(sys.argv[1])
bad = dict(sd)
bad['image_encoder.layers.2.blocks.3.attn.qkv.weight'] = torch.zeros(481, 160)
torch.save(bad, sys.argv[2])
missing = dict(sd)
del missing['image_encoder.layers.3.blocks.1.local_conv.bn.running_var']
torch.save(missing, sys.argv[3])
heads = dict(sd)
heads['image_encoder.layers.1.blocks.0.attn.attention_biases'] = torch.zeros(4, 50)
torch.save(heads, sys.argv[4])
`;
    const files = ['shape', 'missing', 'window'].map((n) => path.join(dir, `bad-${n}.pth`));
    const r = run(PYTHON, ['-c', py, ckpt, ...files]);
    assert.equal(r.status, 0, r.stderr);
    const expect = [
      /tensor 'image_encoder\.layers\.2\.blocks\.3\.attn\.qkv\.weight' has shape \[481,160\], expected \[480,160\]/,
      /missing tensor 'image_encoder\.layers\.3\.blocks\.1\.local_conv\.bn\.running_var'/,
      /attention_biases' has 50 offsets per head, expected window\^2/,
    ];
    // The release build, and the sanitizer build when it is there (npm test builds it).
    const asan = path.join(ROOT, 'build/asan/sam');
    for (const bin of [SAM, ...(fs.existsSync(asan) ? [asan] : [])]) {
      files.forEach((file, i) => {
        const out = run(bin, ['encode', '--model', file, '--image', image(97, 61, 11), '--out', path.join(dir, 'x.safetensors')]);
        assert.equal(out.status, 1, `${bin}: ${out.stdout}${out.stderr}`);
        assert.match(out.stderr, expect[i]);
      });
    }
  });
});
