// Automatic mask generator ("segment everything") benchmark: a 32x32 grid on a 1024x683
// image with a random-weight ViT-B, decode side only (the embedding is computed once).
//
//   node bench/amg.mjs [--only native,wasm,pytorch] [--json FILE]
//
// Fixtures (shared with bench/decoder.mjs, made once in build/bench-cache/): the ViT-B
// checkpoint (make_checkpoint.py --type vit_b --seed 1), the generated 1024x683 image (seed 7)
// and its embedding (`build/sam encode`).
//
// Two settings: the official defaults (pred_iou_thresh 0.88, stability_score_thresh 0.95; on
// random weights almost every mask fails the IoU filter, so this times the decoder), and low
// thresholds (pred_iou_thresh 0 = off, stability_score_thresh 0.05) where many masks go
// through the full-size post-processing, stability, RLE and NMS. Each runs on one thread:
//   native   build/sam everything --embedding (decode time as the CLI reports it)
//   wasm     build/wasm through web/sam.js in Node (SamPredictor.everything), wall time
//   pytorch  tools/sam_ref/amg.py --embedding --threads 1 (the official generator's pipeline:
//            batches of 64 points, predict_torch with full-size logits), its decode time
// Before the table, every runtime's records are checked against native's: the same number of
// masks, each matched at IoU > 0.95. A failed check makes the exit status 1.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { once, runOk } from './common.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BUILD = path.join(ROOT, 'build');
const CACHE = path.resolve(ROOT, process.env.SAM_BENCH_CACHE || 'build/bench-cache');
const PYTHON = process.env.SAM_PYTHON || '/usr/bin/python3';
const SETTINGS = {
  defaults: [],
  low: ['--pred-iou-thresh', '0', '--stability-score-thresh', '0.05'],
};



function fixtures() {
  const sam = path.join(BUILD, 'sam');
  const model = once(path.join(CACHE, 'vit_b_seed1.pth'), (out) =>
    runOk(PYTHON, [path.join(ROOT, 'tools/sam_ref/make_checkpoint.py'), '--type', 'vit_b', '--seed', '1', '--out', out]));
  const image = once(path.join(CACHE, 'img_1024x683_seed7.png'), (out) =>
    runOk(PYTHON, [path.join(ROOT, 'tools/sam_ref/make_images.py'), '--size', '1024x683', '--seed', '7', '--out', out]));
  const embedding = once(path.join(CACHE, 'img_1024x683_seed7.vit_b_seed1.emb.safetensors'), (out) =>
    runOk(sam, ['encode', '--model', model, '--image', image, '--out', out]));
  return { sam, model, image, embedding };
}

// --- RLE (pycocotools rleFrString) and matching ------------------------------------------

function countsOf(s) {
  const counts = [];
  for (let p = 0; p < s.length;) {
    let x = 0, k = 0, more = true;
    while (more) {
      const c = s.charCodeAt(p++) - 48;
      x += (c & 0x1f) * 2 ** (5 * k++);
      more = (c & 0x20) !== 0;
      if (!more && (c & 0x10)) x -= 2 ** (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

function maskOf(rec) {
  const [h, w] = rec.segmentation.size;
  const m = new Uint8Array(h * w);
  let idx = 0;
  countsOf(rec.segmentation.counts).forEach((c, k) => { if (k & 1) m.fill(1, idx, idx + c); idx += c; });
  return m;  // column-major is fine for IoU
}

function check(ours, ref) {
  if (ours.length !== ref.length) return `${ours.length} masks vs ${ref.length}`;
  const a = ours.map(maskOf), b = ref.map(maskOf), used = new Set();
  let worst = 1;
  for (const m of a) {
    let best = -1, bi = -1;
    b.forEach((r, j) => {
      if (used.has(j)) return;
      let inter = 0, union = 0;
      for (let i = 0; i < m.length; i++) { inter += m[i] & r[i]; union += m[i] | r[i]; }
      const v = union ? inter / union : 1;
      if (v > best) { best = v; bi = j; }
    });
    used.add(bi);
    worst = Math.min(worst, best);
  }
  return worst > 0.95 ? null : `worst matched IoU ${worst.toFixed(3)}`;
}

// --- runtimes --------------------------------------------------------------------------------

function runNative(fx, args, out) {
  const r = runOk(fx.sam, ['everything', '--model', fx.model, '--embedding', fx.embedding, '--out', out,
    '--output-mode', 'coco_rle', ...args]);
  const m = /(\d+) masks from (\d+) points in [\d.]+ s \(encode [\d.]+ s, decode ([\d.]+) s/.exec(r.stderr);
  if (!m) throw new Error(`no timing line in\n${r.stderr}`);
  return { masks: Number(m[1]), points: Number(m[2]), seconds: Number(m[3]) };
}

async function runWasm(fx, args, out) {
  const { SamPredictor } = await import('../web/sam.js');
  const sam = await SamPredictor.load(fx.model);
  try {
    await sam.setEmbedding(fs.readFileSync(fx.embedding));
    const options = { points_per_side: 32, output_mode: 'coco_rle' };
    for (let i = 0; i < args.length; i += 2) options[args[i].slice(2).replace(/-/g, '_')] = Number(args[i + 1]);
    const t0 = performance.now();
    const recs = await sam.everything(options);
    const seconds = (performance.now() - t0) / 1e3;
    fs.writeFileSync(out, JSON.stringify(recs));
    return { masks: recs.length, points: 1024, seconds };
  } finally {
    sam.dispose();
  }
}

function runPytorch(fx, args, out) {
  const r = runOk(PYTHON, [path.join(ROOT, 'tools/sam_ref/amg.py'), '--ckpt', fx.model, '--image', fx.image,
    '--embedding', fx.embedding, '--out', out, '--output-mode', 'coco_rle', '--threads', '1', '--time', ...args]);
  const t = JSON.parse(r.stdout.trim().split('\n').pop());
  return { masks: t.masks, points: t.points, seconds: t.decode_s };
}

async function main() {
  const argv = process.argv.slice(2);
  const opt = (name) => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : null; };
  const only = (opt('--only') || 'native,wasm,pytorch').split(',');
  const fx = fixtures();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sam-bench-amg-'));
  const rows = [];
  let failed = false;
  for (const [setting, args] of Object.entries(SETTINGS)) {
    const results = {};
    for (const name of ['native', 'wasm', 'pytorch']) {
      if (!only.includes(name)) continue;
      const out = path.join(dir, `${setting}-${name}.json`);
      console.error(`${setting}: ${name}...`);
      const r = name === 'native' ? runNative(fx, args, out) : name === 'wasm' ? await runWasm(fx, args, out)
        : runPytorch(fx, args, out);
      r.file = out;
      results[name] = r;
    }
    const base = results.native;
    for (const [name, r] of Object.entries(results)) {
      r.check = base && name !== 'native'
        ? check(JSON.parse(fs.readFileSync(r.file, 'utf8')), JSON.parse(fs.readFileSync(base.file, 'utf8'))) : null;
      if (r.check) failed = true;
      rows.push({ setting, runtime: name, masks: r.masks, points: r.points, seconds: r.seconds,
        points_per_s: r.points / r.seconds, masks_per_s: r.masks / r.seconds,
        vs_pytorch: results.pytorch ? results.pytorch.seconds / r.seconds : null, check: r.check || 'ok' });
    }
  }
  const cpu = (os.cpus()[0] || {}).model || 'unknown CPU';
  console.log(`automatic mask generator, ViT-B (random weights), 32x32 grid, 1024x683, one thread; ${cpu}`);
  console.log('setting   runtime   masks  points  decode s  points/s  masks/s  x pytorch  check');
  for (const r of rows) {
    console.log(`${r.setting.padEnd(9)} ${r.runtime.padEnd(9)} ${String(r.masks).padStart(5)}  ${String(r.points).padStart(6)}  ` +
      `${r.seconds.toFixed(2).padStart(8)}  ${r.points_per_s.toFixed(1).padStart(8)}  ${r.masks_per_s.toFixed(2).padStart(7)}  ` +
      `${r.vs_pytorch == null ? '-'.padStart(9) : r.vs_pytorch.toFixed(2).padStart(9)}  ${r.check}`);
  }
  const json = opt('--json');
  if (json) fs.writeFileSync(json, JSON.stringify({ cpu, rows }, null, 1));
  if (failed) process.exit(1);
}

main().catch((e) => { console.error(e); process.exit(1); });
