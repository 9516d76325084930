// Mask decoder benchmark: our runtime side by side with its peers in one run.
//
//   node bench/decoder.mjs [--n 20] [--warmup 3] [--point X,Y] [--only a,b] [--skip a,b]
//                          [--json FILE]
//
// Fixtures, made once and cached in build/bench-cache/ (delete it to remake them): a
// random-weight ViT-B checkpoint in the official layout (tools/sam_ref/make_checkpoint.py,
// seed 1), a generated 1024x683 image, its image embedding (`build/sam encode`) and an ONNX
// export of the prompt encoder + mask decoder (tools/sam_ref/export_onnx.py, the official
// SamOnnxModel interface and outputs: all 4 mask tokens at the original size).
//
// Each runtime decodes the same prompt, one foreground click inside the image, into 3 masks at
// the original size (1024x683), on one thread, in its own process after loading, `warmup`
// untimed runs then `n` timed ones:
//   ours-wasm-node     build/wasm through web/sam.js in Node (SamPredictor.predict)
//   ours-wasm-chromium the same in headless Chromium (web/sam.js default: a Web Worker)
//   ours-native        build/bench/decode_bench (bench/c/decode_bench.c, public C API)
//   ort-web-node       onnxruntime-web (wasm backend, SIMD, numThreads 1) in Node on the ONNX export
//   ort-web-chromium   onnxruntime-web the same in headless Chromium
//   ort-node           onnxruntime-node (CPU, intra/inter-op threads 1)
//   pytorch            tools/sam_ref Predictor.predict (SamPredictor path), torch.set_num_threads(1)
// The ONNX runs get the official ONNX example's inputs: the click transformed into the
// model's input frame plus a (0, 0) padding point with label -1, mask_input zeros,
// has_mask_input 0, orig_im_size (h, w); their time covers building the inputs, session.run
// (the 4 tokens' full-size logits, as the official export computes them) and thresholding the
// 3 multimask outputs (tokens 1..3) into masks, what a page does before drawing them. Ours and
// PyTorch threshold the same 3 and also compute the stability scores.
//
// Before the table, every runtime's output is checked against ours (WASM in Node, or native
// when that did not run): IoU of each thresholded mask >= 0.99 and predicted IoU scores within
// 1e-3. A failed check is marked in the table and makes the exit status 1.
//
// The runtimes run one after another in child processes (this file with --peer NAME), so each
// process holds one runtime and one model.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, runOk, once, summarize, timeLoop, ortWebSession, serveForBrowser, CHROMIUM, CHROMIUM_ARGS } from './common.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BUILD = path.join(ROOT, 'build');
const CACHE = path.resolve(ROOT, process.env.SAM_BENCH_CACHE || 'build/bench-cache');
const PYTHON = process.env.SAM_PYTHON || '/usr/bin/python3';
const IMAGE_W = 1024, IMAGE_H = 683;
const DEFAULT_POINT = [600, 350];  // original pixels, inside the image
const PEER_TIMEOUT_MS = 300e3;     // per runtime, fixtures excluded
const MIN_IOU = 0.99, MAX_SCORE_DIFF = 1e-3;
const PEERS = ['ours-wasm-node', 'ours-wasm-chromium', 'ours-native', 'ort-web-node', 'ort-web-chromium',
  'ort-node', 'pytorch'];
const OURS = ['ours-wasm-node', 'ours-native'];   // ratio columns

// ---------------------------------------------------------------------------------------------
// small helpers






// .npy (version 1.0, C order) of uint8 values.
function writeNpyU8(file, shape, data) {
  let header = `{'descr': '|u1', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1; pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

function readNpyU8(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${file} is not .npy`);
  const v1 = buf[6] === 1;
  const len = v1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (v1 ? 10 : 12) + len;
  const header = buf.toString('latin1', v1 ? 10 : 12, start);
  if (!/'descr':\s*'(\|u1|\|b1)'/.test(header)) throw new Error(`${file}: expected uint8, header ${header}`);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').filter((s) => s.trim()).map(Number);
  return { shape, data: new Uint8Array(buf.subarray(start)) };
}

// Header (JSON) and the image_embeddings tensor (float32) of an embedding file.
function readEmbedding(file) {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.toString('utf8', 8, 8 + n));
  const t = header.image_embeddings;
  if (!t || t.dtype !== 'F32') throw new Error(`${file}: expected a float32 image_embeddings tensor`);
  const [s, e] = t.data_offsets;
  const bytes = buf.subarray(8 + n + s, 8 + n + e);
  const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const [h, w] = header.__metadata__.original_size.split(',').map(Number);
  return { shape: t.shape, data, height: h, width: w, meta: header.__metadata__ };
}

// ResizeLongestSide.apply_coords for one point: original pixels -> model input frame.
function toInputFrame([x, y], h, w, longSide) {
  const scale = longSide / Math.max(h, w);
  const nh = Math.floor(h * scale + 0.5), nw = Math.floor(w * scale + 0.5);
  return [x * (nw / w), y * (nh / h)];
}

// ---------------------------------------------------------------------------------------------
// fixtures

function fixtures() {
  fs.mkdirSync(CACHE, { recursive: true });
  const sam = path.join(BUILD, 'sam');
  if (!fs.existsSync(sam)) throw new Error('build/sam is missing: run ./build.sh');
  const say = (what) => process.stderr.write(`bench: making ${what} (cached in ${path.relative(ROOT, CACHE)}/)\n`);
  const model = once(path.join(CACHE, 'vit_b_seed1.pth'), (out) => {
    say('a random-weight ViT-B checkpoint');
    runOk(PYTHON, [path.join(ROOT, 'tools/sam_ref/make_checkpoint.py'), '--type', 'vit_b', '--seed', '1', '--out', out]);
  });
  const image = once(path.join(CACHE, `img_${IMAGE_W}x${IMAGE_H}_seed7.png`), (out) => {
    say(`a ${IMAGE_W}x${IMAGE_H} image`);
    runOk(PYTHON, [path.join(ROOT, 'tools/sam_ref/make_images.py'), '--size', `${IMAGE_W}x${IMAGE_H}`, '--seed', '7', '--out', out]);
  });
  const embedding = once(path.join(CACHE, `img_${IMAGE_W}x${IMAGE_H}_seed7.vit_b_seed1.emb.safetensors`), (out) => {
    say('the image embedding (build/sam encode)');
    runOk(sam, ['encode', '--model', model, '--image', image, '--out', out]);
  });
  const onnx = once(path.join(CACHE, 'vit_b_seed1.decoder_official.onnx'), (out) => {
    say('the ONNX export of the decoder');
    runOk(PYTHON, [path.join(ROOT, 'tools/sam_ref/export_onnx.py'), '--ckpt', model, '--out', out]);
  });
  return { model, image, embedding, onnx };
}

// ---------------------------------------------------------------------------------------------
// peers (each runs in a child process: node bench/decoder.mjs --peer NAME --ctx JSON)
// ctx: {model, embedding, onnx, point: [x, y], n, warmup, out: folder for masks}
// Each returns an array of results {runtime, n, median_ms, min_ms, mean_ms, scores, masks
// (file of the uint8 masks (3, h, w) of the first prediction), info, stages}.


// Median of each stage over the timed predictions ({prompt, transformer,
// upscale, postprocess} ms, web/sam.js stageMs).
function medianStages(runs) {
  if (!runs.length || !runs[0]) return null;
  const out = {};
  for (const key of Object.keys(runs[0])) {
    const v = runs.map((r) => r[key]).sort((a, b) => a - b);
    out[key] = v[v.length >> 1];
  }
  return out;
}

function concatMasks(masks) {
  const n = masks[0].data.length;
  const all = new Uint8Array(masks.length * n);
  masks.forEach((m, k) => all.set(m.data, k * n));
  return all;
}

// The multimask outputs of the official export's 4 tokens (1..3), thresholded.
function thresholdLogits(logits, k, h, w) {
  const n = h * w, out = new Uint8Array((k - 1) * n);
  for (let i = 0; i < out.length; i++) out[i] = logits[n + i] > 0 ? 1 : 0;
  return out;
}

// The ONNX inputs of one click, as the official ONNX example builds them.
function onnxFeeds(ort, emb, point, longSide) {
  const [x, y] = toInputFrame(point, emb.height, emb.width, longSide);
  const g = emb.shape[2];
  return {
    image_embeddings: new ort.Tensor('float32', emb.data, emb.shape),
    point_coords: new ort.Tensor('float32', new Float32Array([x, y, 0, 0]), [1, 2, 2]),
    point_labels: new ort.Tensor('float32', new Float32Array([1, -1]), [1, 2]),
    mask_input: new ort.Tensor('float32', new Float32Array(16 * g * g), [1, 1, 4 * g, 4 * g]),
    has_mask_input: new ort.Tensor('float32', new Float32Array([0]), [1]),
    orig_im_size: new ort.Tensor('float32', new Float32Array([emb.height, emb.width]), [2]),
  };
}

const peers = {
  async 'ours-wasm-node'(ctx) {
    const { SamPredictor } = await import('../web/sam.js');
    const sam = await SamPredictor.load(ctx.model);
    await sam.setEmbedding(fs.readFileSync(ctx.embedding));
    const prompt = { points: [[ctx.point[0], ctx.point[1], 1]], multimask: true };
    const first = await sam.predict(prompt);
    const m = first.masks;
    writeNpyU8(path.join(ctx.out, 'ours-wasm-node.npy'), [m.length, m[0].height, m[0].width], concatMasks(m));
    const stageRuns = [];
    const stats = await timeLoop(ctx, async () => { stageRuns.push((await sam.predict(prompt)).stageMs); });
    sam.dispose();
    return [{ runtime: 'ours-wasm-node', ...stats, scores: m.map((k) => k.score), masks: 'ours-wasm-node.npy',
      info: `web/sam.js in-process, gemm ${sam.gemm}`, stages: medianStages(stageRuns.slice(ctx.warmup)) }];
  },

  async 'ours-native'(ctx) {
    const bin = path.join(BUILD, 'bench', 'decode_bench');
    if (!fs.existsSync(bin)) throw new Error('build/bench/decode_bench is missing: run make bench');
    const masks = path.join(ctx.out, 'ours-native.npy');
    const r = runOk(bin, ['--model', ctx.model, '--embedding', ctx.embedding, '--point', `${ctx.point[0]},${ctx.point[1]},1`,
      '--n', String(ctx.n), '--warmup', String(ctx.warmup), '--out-masks', masks]);
    const j = JSON.parse(r.stdout.trim().split('\n').pop());
    return [{ runtime: 'ours-native', n: j.n, median_ms: j.median_ms, min_ms: j.min_ms, mean_ms: j.mean_ms,
      scores: j.scores, masks: 'ours-native.npy', info: 'build/bench/decode_bench, sam_predict', stages: j.stages }];
  },

  async 'ort-web-node'(ctx) {
    const { ort, session } = await ortWebSession(ctx.onnx);
    return [await runOrt(ctx, ort, session, 'ort-web-node', `onnxruntime-web ${ort.env.versions?.web ?? ''} wasm (SIMD), 1 thread`)];
  },

  async 'ort-node'(ctx) {
    const ort = await import('onnxruntime-node');
    const session = await ort.InferenceSession.create(ctx.onnx,
      { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
    return [await runOrt(ctx, ort, session, 'ort-node', `onnxruntime-node ${ort.env.versions?.node ?? ''} cpu, 1 thread`)];
  },

  async pytorch(ctx) {
    const masks = path.join(ctx.out, 'pytorch.npy');
    const r = runOk(PYTHON, [path.join(ROOT, 'bench/decoder_torch.py'), '--ckpt', ctx.model, '--embedding', ctx.embedding,
      '--point', `${ctx.point[0]},${ctx.point[1]}`, '--n', String(ctx.n), '--warmup', String(ctx.warmup),
      '--threads', '1', '--out-masks', masks], { env: { ...process.env, OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' } });
    const j = JSON.parse(r.stdout.trim().split('\n').pop());
    return [{ runtime: 'pytorch', n: j.n, median_ms: j.median_ms, min_ms: j.min_ms, mean_ms: j.mean_ms, scores: j.scores,
      masks: 'pytorch.npy', info: `torch ${j.torch}, ${j.threads} thread, Predictor.predict` }];
  },

  // Both browser runtimes in one Chromium (one page each, one after the other).
  async chromium(ctx, which) {
    const { chromium } = await import('playwright-core');
    const server = await serveForBrowser(ROOT, { '/data/model.pth': ctx.model,
      '/data/embedding.safetensors': ctx.embedding, '/data/decoder.onnx': ctx.onnx });
    let browser = null;
    const results = [];
    try {
      browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
      const version = browser.version();
      for (const name of which) {
        const page = await browser.newPage();
        const errors = [];
        page.on('pageerror', (e) => errors.push(String(e)));
        await page.goto(`${server.url}/`);
        const fn = name === 'ours-wasm-chromium' ? browserOurs : browserOrt;
        let r;
        try {
          r = await page.evaluate(fn, { point: ctx.point, n: ctx.n, warmup: ctx.warmup });
        } catch (e) {
          throw new Error(`${name}: ${e.message}${errors.length ? `\n${errors.join('\n')}` : ''}`);
        }
        await page.close();
        const masks = Buffer.from(r.masksB64, 'base64');
        writeNpyU8(path.join(ctx.out, `${name}.npy`), [r.count, r.height, r.width], masks);
        results.push({ runtime: name, ...summarize(r.times), scores: r.scores, masks: `${name}.npy`,
          info: `Chromium ${version}, ${r.info}`, stages: r.stages ?? null });
      }
    } finally {
      if (browser) await browser.close();
      server.close();
    }
    return results;
  },
};

async function runOrt(ctx, ort, session, name, info) {
  const emb = readEmbedding(ctx.embedding);
  const longSide = 16 * emb.shape[2];
  const run = () => session.run(onnxFeeds(ort, emb, ctx.point, longSide));
  const first = await run();
  const [, k, h, w] = first.masks.dims;
  writeNpyU8(path.join(ctx.out, `${name}.npy`), [k - 1, h, w], thresholdLogits(first.masks.data, k, h, w));
  const stats = await timeLoop(ctx, async () => {
    const r = await run();
    thresholdLogits(r.masks.data, k, h, w);
  });
  return { runtime: name, ...stats, scores: [...first.iou_predictions.data].slice(1), masks: `${name}.npy`, info };
}

// Runs in the page: ours through web/sam.js (default transport: a module Worker).
async function browserOurs({ point, n, warmup }) {
  const { SamPredictor } = await import('/web/sam.js');
  const sam = await SamPredictor.load('/data/model.pth', { cache: 'none' });
  const emb = await (await fetch('/data/embedding.safetensors')).arrayBuffer();
  await sam.setEmbedding(new Uint8Array(emb));
  const prompt = { points: [[point[0], point[1], 1]], multimask: true };
  const first = await sam.predict(prompt);
  for (let i = 0; i < warmup; i++) await sam.predict(prompt);
  const times = [], stageRuns = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    stageRuns.push((await sam.predict(prompt)).stageMs);
    times.push(performance.now() - t);
  }
  const stages = {};
  for (const key of Object.keys(stageRuns[0])) {
    const v = stageRuns.map((r) => r[key]).sort((a, b) => a - b);
    stages[key] = v[v.length >> 1];
  }
  const m = first.masks, size = m[0].data.length;
  const all = new Uint8Array(m.length * size);
  m.forEach((k, i) => all.set(k.data, i * size));
  let bin = '';
  for (let i = 0; i < all.length; i += 0x8000) bin += String.fromCharCode.apply(null, all.subarray(i, i + 0x8000));
  sam.dispose();
  return { times, scores: m.map((k) => k.score), count: m.length, width: m[0].width, height: m[0].height,
    masksB64: btoa(bin), info: `web/sam.js in a Worker, gemm ${sam.gemm}`, stages };
}

// Runs in the page: onnxruntime-web (wasm, 1 thread) on the ONNX export.
async function browserOrt({ point, n, warmup }) {
  const ort = await import('/ort/ort.wasm.min.mjs');
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = '/ort/';
  const session = await ort.InferenceSession.create('/data/decoder.onnx',
    { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  const buf = await (await fetch('/data/embedding.safetensors')).arrayBuffer();
  const hlen = Number(new DataView(buf).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 8, hlen)));
  const t = header.image_embeddings;
  const data = new Float32Array(buf.slice(8 + hlen + t.data_offsets[0], 8 + hlen + t.data_offsets[1]));
  const [h, w] = header.__metadata__.original_size.split(',').map(Number);
  const g = t.shape[2], longSide = 16 * g;
  const scale = longSide / Math.max(h, w);
  const nh = Math.floor(h * scale + 0.5), nw = Math.floor(w * scale + 0.5);
  const run = () => {
    const x = point[0] * (nw / w), y = point[1] * (nh / h);
    return session.run({
      image_embeddings: new ort.Tensor('float32', data, t.shape),
      point_coords: new ort.Tensor('float32', new Float32Array([x, y, 0, 0]), [1, 2, 2]),
      point_labels: new ort.Tensor('float32', new Float32Array([1, -1]), [1, 2]),
      mask_input: new ort.Tensor('float32', new Float32Array(16 * g * g), [1, 1, 4 * g, 4 * g]),
      has_mask_input: new ort.Tensor('float32', new Float32Array([0]), [1]),
      orig_im_size: new ort.Tensor('float32', new Float32Array([h, w]), [2]),
    });
  };
  const first = await run();
  for (let i = 0; i < warmup; i++) await run();
  // Tokens 1..3 (the multimask outputs) of the official export's 4, thresholded.
  const threshold = (logits, k, hw) => {
    const out = new Uint8Array((k - 1) * hw);
    for (let i = 0; i < out.length; i++) out[i] = logits[hw + i] > 0 ? 1 : 0;
    return out;
  };
  const [, k, mh, mw] = first.masks.dims;
  const times = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = await run();
    threshold(r.masks.data, k, mh * mw);
    times.push(performance.now() - t0);
  }
  const all = threshold(first.masks.data, k, mh * mw);
  let bin = '';
  for (let i = 0; i < all.length; i += 0x8000) bin += String.fromCharCode.apply(null, all.subarray(i, i + 0x8000));
  return { times, scores: [...first.iou_predictions.data].slice(1), count: k - 1, width: mw, height: mh, masksB64: btoa(bin),
    info: `onnxruntime-web ${ort.env.versions?.web ?? ''} wasm (SIMD), 1 thread` };
}

async function peerMain(name, ctx) {
  const chromiumPeers = ['ours-wasm-chromium', 'ort-web-chromium'];
  const which = name.split(',');
  try {
    const results = which.every((p) => chromiumPeers.includes(p))
      ? await peers.chromium(ctx, which)
      : await peers[name](ctx);
    process.stdout.write(`\n@@RESULT ${JSON.stringify(results)}\n`);
  } catch (e) {
    process.stdout.write(`\n@@ERROR ${JSON.stringify(String(e.message || e).split('\n').slice(0, 8).join('\n'))}\n`);
    process.exitCode = 1;
  }
}

// ---------------------------------------------------------------------------------------------
// parent: fixtures, one child per runtime, checks, table

function runPeer(name, ctx) {
  const t = performance.now();
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--peer', name, '--ctx', JSON.stringify(ctx)],
    { encoding: 'utf8', maxBuffer: 1 << 26, env: { ...process.env, OMP_NUM_THREADS: '1' }, timeout: PEER_TIMEOUT_MS });
  const lines = (r.stdout || '').split('\n');
  const line = lines.find((l) => l.startsWith('@@RESULT '));
  const error = lines.find((l) => l.startsWith('@@ERROR '));
  if (error) return { error: JSON.parse(error.slice(8)).replace(/\n/g, '\n    ') };
  if (r.status !== 0 || !line) {
    const why = `${r.stderr || ''}${r.stdout || ''}`.trim().split('\n').slice(-6).join('\n  ');
    return { error: `exited ${r.status ?? r.signal}: ${why}` };
  }
  return { results: JSON.parse(line.slice(9)), seconds: (performance.now() - t) / 1e3 };
}

function compareMasks(a, b) {
  if (a.shape.join() !== b.shape.join()) return { ok: false, why: `shape ${a.shape} vs ${b.shape}` };
  const [k, h, w] = a.shape, n = h * w, ious = [];
  let differ = 0;
  for (let m = 0; m < k; m++) {
    let inter = 0, union = 0;
    for (let i = m * n; i < (m + 1) * n; i++) {
      const x = a.data[i] !== 0, y = b.data[i] !== 0;
      if (x && y) inter++;
      if (x || y) union++;
      if (x !== y) differ++;
    }
    ious.push(union ? inter / union : 1);
  }
  return { ok: true, ious, differ };
}

// Fraction of the image each mask covers.
function coverage({ shape, data }) {
  const [k, h, w] = shape, n = h * w, out = [];
  for (let m = 0; m < k; m++) {
    let c = 0;
    for (let i = m * n; i < (m + 1) * n; i++) c += data[i] !== 0;
    out.push(c / n);
  }
  return out;
}

function check(result, ref, out) {
  if (result === ref) return { ok: true, text: 'reference' };
  const cmp = compareMasks(readNpyU8(path.join(out, result.masks)), readNpyU8(path.join(out, ref.masks)));
  if (!cmp.ok) return { ok: false, text: cmp.why };
  const dScore = Math.max(...result.scores.map((s, i) => Math.abs(s - ref.scores[i])));
  const minIou = Math.min(...cmp.ious);
  const ok = minIou >= MIN_IOU && dScore <= MAX_SCORE_DIFF && result.scores.length === ref.scores.length;
  return { ok, minIou, dScore, text: `IoU ${cmp.ious.map((v) => v.toFixed(4)).join(' ')} (${cmp.differ} pixels differ), ` +
    `|dscore| max ${dScore.toExponential(1)}` };
}

function pad(s, n, right = false) { s = String(s); return right ? s.padStart(n) : s.padEnd(n); }

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.peer) return peerMain(args.peer, JSON.parse(args.ctx));

  const n = Number(args.n ?? 20), warmup = Number(args.warmup ?? 3);
  const point = args.point ? String(args.point).split(',').map(Number).slice(0, 2) : DEFAULT_POINT;
  let wanted = PEERS;
  if (args.only) wanted = String(args.only).split(',');
  if (args.skip) wanted = wanted.filter((p) => !String(args.skip).split(',').includes(p));
  for (const p of wanted) if (!PEERS.includes(p)) throw new Error(`unknown runtime ${p}; runtimes: ${PEERS.join(', ')}`);

  const t0 = performance.now();
  const fx = fixtures();
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'sam-bench-'));
  const ctx = { model: fx.model, embedding: fx.embedding, onnx: fx.onnx, point, n, warmup, out };
  const emb = readEmbedding(fx.embedding);
  console.log(`decoder benchmark: ViT-B (random weights, official layout), image ${emb.width}x${emb.height}, ` +
    `1 click at (${point.join(', ')}), 3 masks at ${emb.width}x${emb.height}; median of ${n} after ${warmup} warm-up, 1 thread each`);
  console.log(`machine: ${os.cpus()[0].model}, ${os.cpus().length} cores, load ${os.loadavg().map((v) => v.toFixed(1)).join(' ')}; node ${process.version}`);

  // One child per runtime; the two Chromium runtimes share one browser.
  const jobs = [];
  const browserSet = wanted.filter((p) => p.endsWith('-chromium'));
  for (const p of wanted) {
    if (p.endsWith('-chromium')) { if (p === browserSet[0]) jobs.push(browserSet.join(',')); } else jobs.push(p);
  }
  const results = [], failures = [];
  for (const job of jobs) {
    process.stderr.write(`bench: ${job} ...`);
    const r = runPeer(job, ctx);
    if (r.error) {
      process.stderr.write(' failed\n');
      for (const p of job.split(',')) failures.push({ runtime: p, error: r.error });
    } else {
      process.stderr.write(` ${r.seconds.toFixed(1)} s\n`);
      results.push(...r.results);
    }
  }

  results.sort((a, b) => PEERS.indexOf(a.runtime) - PEERS.indexOf(b.runtime));
  const byName = Object.fromEntries(results.map((r) => [r.runtime, r]));
  const ref = byName['ours-wasm-node'] || byName['ours-native'];
  let failed = failures.length > 0;
  console.log(`\nchecks against ${ref ? ref.runtime : '(no run of ours)'} (mask IoU >= ${MIN_IOU}, scores within ${MAX_SCORE_DIFF}):`);
  if (ref) {
    const cov = coverage(readNpyU8(path.join(out, ref.masks)));
    console.log(`  (the reference's masks cover ${cov.map((c) => `${(100 * c).toFixed(1)}%`).join(', ')} of the image; ` +
      `scores ${ref.scores.map((v) => v.toFixed(4)).join(', ')})`);
  }
  for (const r of results) {
    r.check = ref ? check(r, ref, out) : { ok: false, text: 'no reference' };
    if (!r.check.ok) failed = true;
    console.log(`  ${pad(r.runtime, 20)} ${r.check.ok ? 'ok  ' : 'FAIL'} ${r.check.text}   [${r.info}]`);
  }
  for (const f of failures) console.log(`  ${pad(f.runtime, 20)} did not run: ${f.error}`);

  const cols = OURS.filter((o) => byName[o]);
  console.log('');
  const head = `${pad('runtime', 20)} ${pad('median ms', 10, true)} ${pad('min ms', 9, true)} ` +
    cols.map((c) => pad(`x ${c.replace('ours-', '')}`, 11, true)).join(' ') + '  check';
  console.log(head);
  console.log('-'.repeat(head.length));
  for (const r of results) {
    const ratios = cols.map((c) => pad((r.median_ms / byName[c].median_ms).toFixed(2), 11, true)).join(' ');
    console.log(`${pad(r.runtime, 20)} ${pad(r.median_ms.toFixed(1), 10, true)} ${pad(r.min_ms.toFixed(1), 9, true)} ${ratios}  ${r.check.ok ? 'ok' : 'FAIL'}`);
  }
  console.log(`(x ours: the runtime's median / ours' median; above 1 is slower than ours)`);

  // Per-stage breakdown of ours, when the runtime reports one.
  const staged = results.filter((r) => r.stages && typeof r.stages === 'object');
  if (staged.length) {
    console.log('\nper-stage breakdown (ms):');
    for (const r of staged) {
      console.log(`  ${r.runtime}: ${Object.entries(r.stages).map(([k, v]) => `${k} ${Number(v).toFixed(2)}`).join(', ')}`);
    }
  } else {
    console.log('\nper-stage breakdown: none reported');
  }
  console.log(`total ${((performance.now() - t0) / 1e3).toFixed(0)} s`);

  if (args.json) {
    fs.writeFileSync(String(args.json), JSON.stringify({ point, n, warmup, image: [emb.width, emb.height],
      machine: os.cpus()[0].model, node: process.version, results, failures }, null, 1));
  }
  fs.rmSync(out, { recursive: true, force: true });
  if (failed) process.exitCode = 1;
}

await main();
