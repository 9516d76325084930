// The ONNX export of the decoder (tools/sam_ref/export_onnx.py, the official SamOnnxModel
// interface, used by `npm run bench`) run in onnxruntime-node against the CLI on the same
// embedding: a tiny checkpoint (input 256, grid 16) and a 300x200 image, so that the point
// transform, the crop to the resized image and the resize to the original size are not the
// identity. Scores within 2e-3, low-res logits max abs diff small, full-size mask IoU >= 0.99.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { python, readNpy, runOk, SAM, tmpDir } from './helpers.mjs';
import { checkpoint, image } from './fixtures.mjs';
import { decodePng } from './png.mjs';

test('ONNX export of the decoder agrees with the CLI in onnxruntime-node', async () => {
  const ort = await import('onnxruntime-node');
  const dir = tmpDir('onnx');
  const ckpt = checkpoint('tiny');
  const img = image(300, 200, 21);
  const emb = path.join(dir, 'emb.safetensors');
  runOk(SAM, ['encode', '--model', ckpt, '--image', img, '--out', emb]);
  const [px, py] = [140.5, 77.25];
  runOk(SAM, ['predict', '--model', ckpt, '--embedding', emb, '--point', `${px},${py},1`, '--multimask',
    '--out', path.join(dir, 'cli')]);
  const onnx = path.join(dir, 'decoder.onnx');
  python('tools/sam_ref/export_onnx.py', ['--ckpt', ckpt, '--out', onnx]);

  // Embedding tensor (float32) from the safetensors file.
  const buf = fs.readFileSync(emb);
  const n = Number(buf.readBigUInt64LE(0));
  const t = JSON.parse(buf.toString('utf8', 8, 8 + n)).image_embeddings;
  const bytes = buf.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]);
  const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const g = t.shape[2], side = 16 * g;
  assert.equal(side, 256);
  // ResizeLongestSide: 300x200 -> 256x171.
  const [h, w] = [200, 300];
  const scale = side / Math.max(h, w);
  const nh = Math.floor(h * scale + 0.5), nw = Math.floor(w * scale + 0.5);

  const session = await ort.InferenceSession.create(onnx, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const out = await session.run({
    image_embeddings: new ort.Tensor('float32', data, t.shape),
    point_coords: new ort.Tensor('float32', new Float32Array([px * (nw / w), py * (nh / h), 0, 0]), [1, 2, 2]),
    point_labels: new ort.Tensor('float32', new Float32Array([1, -1]), [1, 2]),
    mask_input: new ort.Tensor('float32', new Float32Array(16 * g * g), [1, 1, 4 * g, 4 * g]),
    has_mask_input: new ort.Tensor('float32', new Float32Array([0]), [1]),
    orig_im_size: new ort.Tensor('float32', new Float32Array([h, w]), [2]),
  });
  // All 4 mask tokens, as the official export; the CLI's 3 multimask masks are tokens 1..3.
  assert.deepEqual(out.masks.dims, [1, 4, h, w]);
  assert.deepEqual(out.iou_predictions.dims, [1, 4]);
  assert.deepEqual(out.low_res_masks.dims, [1, 4, 4 * g, 4 * g]);
  const low = 16 * g * g;

  const result = JSON.parse(fs.readFileSync(path.join(dir, 'cli', 'result.json'), 'utf8'));
  const cliLow = readNpy(path.join(dir, 'cli', 'low_res_logits.npy')).data;
  let worst = 0, scale2 = 0;
  for (let i = 0; i < cliLow.length; i++) {
    worst = Math.max(worst, Math.abs(cliLow[i] - out.low_res_masks.data[low + i]));
    scale2 = Math.max(scale2, Math.abs(cliLow[i]));
  }
  assert.ok(worst <= 1e-3 * Math.max(1, scale2), `low-res logits differ by ${worst} (max |logit| ${scale2})`);
  for (let k = 0; k < 3; k++) {
    assert.ok(Math.abs(result.masks[k].score - out.iou_predictions.data[1 + k]) <= 2e-3,
      `score ${k}: CLI ${result.masks[k].score}, ONNX ${out.iou_predictions.data[1 + k]}`);
    const png = decodePng(fs.readFileSync(path.join(dir, 'cli', result.masks[k].file)));
    assert.deepEqual([png.width, png.height], [w, h]);
    let inter = 0, union = 0;
    for (let i = 0; i < h * w; i++) {
      const a = png.data[i * png.channels] > 127, b = out.masks.data[(1 + k) * h * w + i] > 0;
      inter += a && b; union += a || b;
    }
    const iou = union ? inter / union : 1;
    assert.ok(iou >= 0.99, `mask ${k}: IoU ${iou}`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
});
