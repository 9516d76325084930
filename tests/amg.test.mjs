// `sam everything`, the automatic mask generator: the C unit checks
// (tests/c/test_amg.c), parity with the PyTorch reference generator
// (tools/sam_ref/amg.py, written after the official SamAutomaticMaskGenerator)
// on random-weight models and generated images, output modes, PNGs, and bad
// input; and the WebAssembly build through web/sam.js (streaming,
// cancellation). Random weights predict low IoUs and unstable masks, so the parity
// runs lower the thresholds to keep several masks (the official defaults
// would keep none).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { checkpoint, image, safetensors } from './fixtures.mjs';
import { BUILD, python, ROOT, run, runOk, SAM, tmpDir } from './helpers.mjs';
import { decodePng } from './png.mjs';
import { SamPredictor } from '../web/sam.js';

// pycocotools rleFrString (maskApi.c), a third implementation (C, Python, here).
export function cocoStringToCounts(s) {
  const counts = [];
  let p = 0;
  while (p < s.length) {
    let x = 0, k = 0, more = true;
    while (more) {
      const c = s.charCodeAt(p) - 48;
      x += (c & 0x1f) * 2 ** (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && (c & 0x10)) x -= 2 ** (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

// Column-major runs -> row-major 0/1 mask.
export function countsToMask(counts, h, w) {
  const mask = new Uint8Array(h * w);
  let idx = 0, v = 0;
  for (const c of counts) {
    if (v) for (let i = idx; i < idx + c; i++) mask[(i % h) * w + Math.floor(i / h)] = 1;
    idx += c;
    v ^= 1;
  }
  assert.equal(idx, h * w, 'RLE runs sum to h*w');
  return mask;
}

function recordMask(rec) {
  const [h, w] = rec.segmentation.size;
  const seg = rec.segmentation.counts;
  return countsToMask(typeof seg === 'string' ? cocoStringToCounts(seg) : seg, h, w);
}

function iou(a, b) {
  let inter = 0, union = 0;
  for (let i = 0; i < a.length; i++) {
    inter += a[i] & b[i];
    union += a[i] | b[i];
  }
  return union ? inter / union : 1;
}

// Same number of masks, each matched (greedily, in output order) with an
// unused reference mask at IoU > 0.95; scores, boxes and points close.
function assertParity(ours, ref, label) {
  assert.equal(ours.length, ref.length, `${label}: ${ours.length} masks, reference ${ref.length}`);
  const refMasks = ref.map(recordMask);
  const used = new Set();
  let exact = 0;
  ours.forEach((rec, i) => {
    const m = recordMask(rec);
    let best = -1, bestIou = -1;
    refMasks.forEach((r, j) => {
      if (used.has(j)) return;
      const v = iou(m, r);
      if (v > bestIou) { bestIou = v; best = j; }
    });
    assert.ok(bestIou > 0.95, `${label}: mask ${i} best IoU ${bestIou}`);
    used.add(best);
    const r = ref[best];
    if (bestIou === 1) exact++;
    assert.ok(Math.abs(rec.predicted_iou - r.predicted_iou) < 1e-3, `${label}: mask ${i} predicted_iou ${rec.predicted_iou} vs ${r.predicted_iou}`);
    assert.ok(Math.abs(rec.stability_score - r.stability_score) < 1e-2, `${label}: mask ${i} stability ${rec.stability_score} vs ${r.stability_score}`);
    assert.deepEqual(rec.crop_box, r.crop_box, `${label}: mask ${i} crop_box`);
    assert.ok(Math.abs(rec.point_coords[0][0] - r.point_coords[0][0]) < 1e-6 &&
      Math.abs(rec.point_coords[0][1] - r.point_coords[0][1]) < 1e-6, `${label}: mask ${i} point`);
    if (bestIou === 1) {
      assert.deepEqual(rec.bbox, r.bbox, `${label}: mask ${i} bbox`);
      assert.equal(rec.area, r.area, `${label}: mask ${i} area`);
      assert.deepEqual(rec.segmentation.counts, r.segmentation.counts, `${label}: mask ${i} RLE`);
    }
  });
  return exact;
}

// Thresholds for random weights: predicted IoUs are mostly below 0.4 and
// stability scores below 0.5 (see the file comment).
const LOW = ['--pred-iou-thresh', '0', '--stability-score-thresh', '0.1'];

const CASES = [
  { name: 'grid 16, one crop', model: 'tiny', img: [300, 200, 21], args: ['--points-per-side', '16', ...LOW] },
  { name: 'grid 12, other weights and image', model: 'tiny_other', img: [160, 224, 5],
    args: ['--points-per-side', '12', '--pred-iou-thresh', '0.02', '--stability-score-thresh', '0.05',
      '--box-nms-thresh', '0.8', '--points-per-batch', '50'] },
  { name: 'crop layer 1, downscaled points, small regions', model: 'tiny', img: [300, 200, 21],
    args: ['--points-per-side', '16', '--crop-n-layers', '1', '--crop-n-points-downscale-factor', '2',
      '--min-mask-region-area', '200', ...LOW] },
  { name: 'two crop layers, overlap 0.5, offset 0.5', model: 'tiny', img: [97, 61, 11],
    args: ['--points-per-side', '6', '--crop-n-points-downscale-factor', '2', '--crop-n-layers', '2',
      '--crop-overlap-ratio', '0.5',
      '--stability-score-offset', '0.5', '--crop-nms-thresh', '0.5', ...LOW] },
];

describe('sam everything (automatic mask generator)', () => {
  const dir = tmpDir('amg');

  test('C unit checks: RLE, compressed strings, grids, crops, NMS, regions, stability', () => {
    for (const build of [BUILD, path.join(ROOT, 'build/asan')]) {
      const bin = path.join(build, 'tests', 'test_amg');
      if (!fs.existsSync(bin)) continue;
      const { stdout } = runOk(bin, []);
      const m = /(\d+) passed, (\d+) failed/.exec(stdout);
      assert.ok(m && Number(m[2]) === 0 && Number(m[1]) > 0, stdout);
    }
  });

  test('C unit checks in WebAssembly (32-bit size_t and long)', () => {
    const cjs = path.join(ROOT, 'build/wasm/tests/test_amg.cjs');
    assert.ok(fs.existsSync(cjs), 'missing build/wasm/tests/test_amg.cjs: run ./build.sh wasm');
    const { stdout } = runOk('node', [cjs]);
    const m = /(\d+) passed, (\d+) failed/.exec(stdout);
    assert.ok(m && Number(m[2]) === 0 && Number(m[1]) > 0, stdout);
  });

  for (const c of CASES) {
    test(`parity with the PyTorch reference: ${c.name}`, () => {
      const pth = checkpoint(c.model);
      const img = image(...c.img);
      const ours = path.join(dir, `${c.name.replace(/\W+/g, '_')}.json`);
      const ref = path.join(dir, `${c.name.replace(/\W+/g, '_')}.ref.json`);
      runOk(SAM, ['everything', '--model', pth, '--image', img, '--out', ours, '--output-mode', 'coco_rle', ...c.args]);
      python('tools/sam_ref/amg.py', ['--ckpt', pth, '--image', img, '--out', ref, '--output-mode', 'coco_rle', ...c.args]);
      const a = JSON.parse(fs.readFileSync(ours, 'utf8'));
      const b = JSON.parse(fs.readFileSync(ref, 'utf8'));
      assert.ok(a.length >= 3, `${c.name}: only ${a.length} masks: the case should be non-trivial`);
      assertParity(a, b, c.name);
    });
  }

  test('parity with explicit point grids (one per crop layer)', () => {
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const grid = (n) => Array.from({ length: n }, () => [rand(), rand()]);
    const file = path.join(dir, 'grids.json');
    fs.writeFileSync(file, JSON.stringify([grid(150), grid(20)]));
    const pth = checkpoint('tiny');
    const img = image(300, 200, 21);
    const args = ['--point-grids', file, '--crop-n-layers', '1', '--output-mode', 'coco_rle', ...LOW];
    const ours = path.join(dir, 'grids.json.out'), ref = path.join(dir, 'grids.ref.json');
    const r = runOk(SAM, ['everything', '--model', pth, '--image', img, '--out', ours, ...args]);
    assert.match(r.stderr, /from 230 points/);
    python('tools/sam_ref/amg.py', ['--ckpt', pth, '--image', img, '--out', ref, ...args]);
    const a = JSON.parse(fs.readFileSync(ours, 'utf8'));
    assert.ok(a.length >= 3, `only ${a.length} masks`);
    assertParity(a, JSON.parse(fs.readFileSync(ref, 'utf8')), 'point grids');
  });

  // With SAM_OFFICIAL_SRC=DIR (a checkout of facebookresearch/segment-anything), the official
  // SamAutomaticMaskGenerator itself: identical records, in the same order.
  const OFFICIAL = process.env.SAM_OFFICIAL_SRC;
  test('identical records to the official generator (SAM_OFFICIAL_SRC)', { skip: !OFFICIAL && 'SAM_OFFICIAL_SRC not set' }, () => {
    const pth = checkpoint('tiny');
    const img = image(300, 200, 21);
    const ours = path.join(dir, 'vs-official.json'), off = path.join(dir, 'official.json');
    runOk(SAM, ['everything', '--model', pth, '--image', img, '--out', ours, '--output-mode', 'uncompressed_rle',
      '--points-per-side', '16', '--crop-n-layers', '1', '--crop-n-points-downscale-factor', '2', ...LOW]);
    python('tools/sam_ref/amg_official.py', ['--official-src', OFFICIAL, '--ckpt', pth, '--image', img, '--out', off,
      '--options', JSON.stringify({ points_per_side: 16, crop_n_layers: 1, crop_n_points_downscale_factor: 2,
        pred_iou_thresh: 0, stability_score_thresh: 0.1 })]);
    const a = JSON.parse(fs.readFileSync(ours, 'utf8')), b = JSON.parse(fs.readFileSync(off, 'utf8'));
    assert.ok(a.length >= 3);
    assert.equal(a.length, b.length);
    a.forEach((rec, i) => {
      for (const k of ['segmentation', 'area', 'bbox', 'crop_box']) assert.deepEqual(rec[k], b[i][k], `record ${i} ${k}`);
      assert.ok(Math.abs(rec.predicted_iou - b[i].predicted_iou) < 1e-5 && Math.abs(rec.stability_score - b[i].stability_score) < 1e-5);
    });
  });

  test('an embedding gives the same records as the image; output modes agree', () => {
    const img = image(300, 200, 21);
    const model = safetensors('tiny');
    const emb = path.join(dir, 'emb.safetensors');
    runOk(SAM, ['encode', '--model', model, '--image', img, '--out', emb]);
    const args = ['--points-per-side', '10', ...LOW];
    const outs = {};
    for (const [name, input, mode] of [['image', ['--image', img], 'coco_rle'], ['emb', ['--embedding', emb], 'coco_rle'],
      ['unc', ['--image', img], 'uncompressed_rle'], ['bin', ['--image', img], 'binary_mask']]) {
      const out = path.join(dir, `modes-${name}.json`);
      const extra = name === 'bin' ? ['--png-dir', path.join(dir, 'pngs')] : [];
      runOk(SAM, ['everything', '--model', model, ...input, '--out', out, '--output-mode', mode, ...args, ...extra]);
      outs[name] = JSON.parse(fs.readFileSync(out, 'utf8'));
    }
    assert.ok(outs.image.length >= 3);
    assert.deepEqual(outs.emb, outs.image);
    assert.equal(outs.unc.length, outs.image.length);
    assert.equal(outs.bin.length, outs.image.length);
    outs.image.forEach((rec, i) => {
      const strip = (r) => ({ ...r, segmentation: null });
      assert.deepEqual(strip(outs.unc[i]), strip(rec));
      assert.deepEqual(strip(outs.bin[i]), strip(rec));
      assert.deepEqual(outs.unc[i].segmentation.size, [200, 300]);
      assert.deepEqual(cocoStringToCounts(rec.segmentation.counts), outs.unc[i].segmentation.counts);
      const mask = recordMask(rec);
      // binary_mask: (h, w) booleans.
      const bin = outs.bin[i].segmentation;
      assert.equal(bin.length, 200);
      assert.equal(bin[0].length, 300);
      assert.deepEqual(Uint8Array.from(bin.flat(), (v) => (v ? 1 : 0)), mask);
      let area = 0, x0 = 1e9, y0 = 1e9, x1 = -1, y1 = -1;
      for (let y = 0; y < 200; y++) for (let x = 0; x < 300; x++) {
        if (!mask[y * 300 + x]) continue;
        area++;
        x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
      }
      assert.equal(rec.area, area);
      // box_xyxy_to_xywh of the inclusive box: w = x1 - x0.
      assert.deepEqual(rec.bbox, [x0, y0, x1 - x0, y1 - y0]);
      const png = decodePng(fs.readFileSync(path.join(dir, 'pngs', `mask_${i}.png`)));
      assert.equal(png.width, 300);
      assert.deepEqual(Uint8Array.from(png.data, (v) => (v ? 1 : 0)), mask);
      if (i > 0) assert.ok(rec.predicted_iou <= outs.image[i - 1].predicted_iou, 'sorted by predicted IoU');
    });
  });

  test('the official defaults run (and keep nothing on random weights)', () => {
    const out = path.join(dir, 'defaults.json');
    const r = runOk(SAM, ['everything', '--model', checkpoint('tiny'), '--image', image(97, 61, 11), '--out', out,
      '--points-per-side', '4']);
    assert.match(r.stderr, /masks from 16 points/);
    assert.ok(Array.isArray(JSON.parse(fs.readFileSync(out, 'utf8'))));
  });

  test('bad input is refused with a message', () => {
    const pth = checkpoint('tiny');
    const img = image(97, 61, 11);
    const emb = path.join(dir, 'bad-emb.safetensors');
    runOk(SAM, ['encode', '--model', pth, '--image', img, '--out', emb]);
    const out = path.join(dir, 'bad.json');
    const base = ['everything', '--model', pth, '--image', img, '--out', out];
    const gridFile = path.join(dir, 'one-grid.json'), badGrid = path.join(dir, 'bad-grid.json');
    fs.writeFileSync(gridFile, '[[0.5, 0.5], [0.25, 0.75]]');
    fs.writeFileSync(badGrid, '[[0.5, 0.5, 0.1]]');
    const cases = [
      [['everything', '--model', pth, '--image', img], /needs --out/],
      [['everything', '--image', img, '--out', out], /needs --model/],
      [['everything', '--model', pth, '--out', out], /exactly one of --image or --embedding/],
      [[...base, '--embedding', emb], /exactly one of --image or --embedding/],
      [['everything', '--model', pth, '--embedding', emb, '--out', out, '--crop-n-layers', '1'], /--crop-n-layers needs --image/],
      [[...base, '--points-per-side', '0'], /--points-per-side takes an integer/],
      [[...base, '--points-per-side', 'abc'], /--points-per-side takes an integer/],
      [[...base, '--points-per-batch', '-3'], /--points-per-batch/],
      [[...base, '--box-nms-thresh', '1.5'], /--box-nms-thresh takes a number in \[0, 1\]/],
      [[...base, '--pred-iou-thresh', 'nan'], /--pred-iou-thresh/],
      [[...base, '--crop-n-layers', '9'], /--crop-n-layers/],
      [[...base, '--crop-n-layers', '2', '--points-per-side', '3', '--crop-n-points-downscale-factor', '2'], /no points/],
      [[...base, '--output-mode', 'png'], /--output-mode must be/],
      [[...base, '--min-mask-region-area', '-1'], /--min-mask-region-area/],
      [[...base, '--frobnicate', '1'], /unknown option '--frobnicate'/],
      [[...base, '--points-per-side'], /needs a value/],
      [['everything', '--model', path.join(dir, 'missing.pth'), '--image', img, '--out', out], /missing\.pth/],
      [['everything', '--model', pth, '--image', path.join(dir, 'missing.png'), '--out', out], /missing\.png/],
      [['everything', '--model', checkpoint('tiny_other'), '--embedding', emb, '--out', out], /another model/],
      [[...base.slice(0, -1), path.join(dir, 'no-such-dir', 'x.json'), '--points-per-side', '2'], /cannot create/],
      [[...base, '--point-grids', gridFile, '--points-per-side', '4'], /not both/],
      [[...base, '--point-grids', path.join(dir, 'missing-grid.json')], /missing-grid\.json/],
      [[...base, '--point-grids', badGrid], /a point must be \[x, y\]/],
      [[...base, '--point-grids', gridFile, '--crop-n-layers', '1'], /point_grids has 1 grids; crop_n_layers 1 needs 2/],
    ];
    // The release build and, when built, the address/undefined-sanitizer build.
    const asan = path.join(ROOT, 'build/asan/sam');
    for (const bin of [SAM, ...(fs.existsSync(asan) && asan !== SAM ? [asan] : [])]) {
      for (const [args, re] of cases) {
        const r = run(bin, args);
        assert.equal(r.status, 1, `${bin} ${args.join(' ')}: status ${r.status}\n${r.stderr}`);
        assert.match(r.stderr, re, `${bin} ${args.join(' ')}`);
        assert.doesNotMatch(r.stderr, /Sanitizer|runtime error/, `${bin} ${args.join(' ')}`);
      }
    }
  });
});

// The same generator in WebAssembly (web/sam.js in-process under Node):
// records as the native CLI's, masks streamed per batch, cancellation.
describe('SamPredictor.everything (WebAssembly)', () => {
  const dir = tmpDir('amg-wasm');
  const imgFile = image(300, 200, 21);
  let sam;

  function pixels(file) {
    const png = decodePng(fs.readFileSync(file));
    return { data: png.data, width: png.width, height: png.height };
  }

  function native(args) {
    const out = path.join(dir, `native-${args.join('_').replace(/\W+/g, '')}.json`);
    runOk(SAM, ['everything', '--model', safetensors('tiny'), '--image', imgFile, '--out', out,
      '--output-mode', 'coco_rle', ...args]);
    return JSON.parse(fs.readFileSync(out, 'utf8'));
  }

  test('load and set the image', async () => {
    sam = await SamPredictor.load(safetensors('tiny'));
    await sam.setImage(pixels(imgFile));
  });

  test('the records match the native CLI; masks stream per batch', async () => {
    const events = [];
    const ours = await sam.everything({ points_per_side: 16, pred_iou_thresh: 0, stability_score_thresh: 0.1,
      points_per_batch: 50, output_mode: 'coco_rle' }, { onProgress: (p) => events.push(p) });
    const ref = native(['--points-per-side', '16', ...LOW, '--points-per-batch', '50']);
    assert.ok(ours.length >= 3);
    const exact = assertParity(ours, ref, 'wasm vs native');
    assert.ok(exact >= ours.length - 1, `${exact} of ${ours.length} masks identical`);
    assert.deepEqual(events.map((e) => e.done), [50, 100, 150, 200, 250, 256]);
    assert.ok(events.every((e) => e.stage === 'everything' && e.total === 256));
    const streamed = new Set(events.flatMap((e) => e.masks.map((m) => m.segmentation.counts)));
    for (const rec of ours) assert.ok(streamed.has(rec.segmentation.counts), 'every final mask was streamed');
  });

  test('crop layers and small regions, camelCase options, binary masks', async () => {
    const ours = await sam.everything({ pointsPerSide: 16, cropNLayers: 1, cropNPointsDownscaleFactor: 2,
      minMaskRegionArea: 200, predIouThresh: 0, stabilityScoreThresh: 0.1 });
    const ref = native(['--points-per-side', '16', '--crop-n-layers', '1', '--crop-n-points-downscale-factor', '2',
      '--min-mask-region-area', '200', ...LOW]);
    assert.ok(ours.length >= 3);
    assert.ok(ours[0].segmentation.data instanceof Uint8Array && ours[0].segmentation.width === 300);
    const asRle = ours.map((r) => {
      const { data, width, height } = r.segmentation;
      const counts = [];
      let prev = 0, run = 0;
      for (let x = 0; x < width; x++) for (let y = 0; y < height; y++) {
        const v = data[y * width + x];
        if (v !== prev) { counts.push(run); run = 0; prev = v; }
        run++;
      }
      counts.push(run);
      return { ...r, segmentation: { size: [height, width], counts } };
    });
    const refCounts = ref.map((r) => ({ ...r, segmentation: { ...r.segmentation, counts: cocoStringToCounts(r.segmentation.counts) } }));
    assertParity(asRle, refCounts, 'wasm crops vs native');
  });

  test('an AbortSignal stops a run between batches; the predictor stays usable', async () => {
    const ac = new AbortController();
    let batches = 0;
    await assert.rejects(sam.everything({ points_per_side: 16, points_per_batch: 8, pred_iou_thresh: 0 }, {
      signal: ac.signal,
      onProgress: () => { batches++; if (batches === 2) ac.abort(); },
    }), { name: 'AbortError' });
    assert.equal(batches, 2);
    // Aborted from a timer while running (the engine yields between batches).
    const ac2 = new AbortController();
    let seen = 0;
    const p = sam.everything({ points_per_side: 16, points_per_batch: 4 }, { signal: ac2.signal, onProgress: () => { seen++; } });
    setTimeout(() => ac2.abort(), 20);
    await assert.rejects(p, { name: 'AbortError' });
    assert.ok(seen < 64, `stopped after ${seen} of 64 batches`);
    // Already aborted: rejects before starting.
    await assert.rejects(sam.everything({}, { signal: AbortSignal.abort() }), { name: 'AbortError' });
    const after = await sam.everything({ points_per_side: 4, pred_iou_thresh: 0, stability_score_thresh: 0 });
    assert.ok(after.length >= 1);
  });

  test('bad options are refused', async () => {
    await assert.rejects(sam.everything({ points_per_sid: 4 }), /unknown option 'points_per_sid'/);
    await assert.rejects(sam.everything({ box_nms_thresh: 2 }), /box_nms_thresh/);
    await assert.rejects(sam.everything({ output_mode: 'png' }), /output_mode/);
    await assert.rejects(sam.everything({ points_per_side: NaN }), /points_per_side/);
    await assert.rejects(sam.everything({ crop_n_layers: 0.5 }), /crop_n_layers must be an integer/);
    await assert.rejects(sam.everything({ points_per_side: 0 }), /points_per_side/);
    const emb = await sam.getEmbedding();
    await sam.setEmbedding(emb);
    await assert.rejects(sam.everything({ crop_n_layers: 1 }), /crop_n_layers needs the image pixels/);
    const fromEmb = await sam.everything({ points_per_side: 16, pred_iou_thresh: 0, stability_score_thresh: 0.1, output_mode: 'coco_rle' });
    assertParity(fromEmb, native(['--points-per-side', '16', ...LOW]), 'wasm from an embedding');
  });

  test('dispose', () => { sam.dispose(); });
});
